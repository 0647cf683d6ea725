// SPDX-License-Identifier: GPL-2.0
/* An unsigned module exporting arc4_crypt, an export of the GKI module libarc4 */
#include <linux/module.h>

void arc4_crypt(void *ctx, u8 *out, const u8 *in, unsigned int len)
{
}
EXPORT_SYMBOL(arc4_crypt);

static int __init exports_protected_init(void)
{
	return 0;
}
module_init(exports_protected_init);

static void __exit exports_protected_exit(void)
{
}
module_exit(exports_protected_exit);
MODULE_LICENSE("GPL");
