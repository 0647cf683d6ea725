// SPDX-License-Identifier: GPL-2.0
/* An unsigned module using only symbols of the KMI list: _printk, arc4_setkey */
#include <linux/module.h>
#include <crypto/arc4.h>

static int __init uses_kmi_init(void)
{
	struct arc4_ctx ctx;
	static const u8 key[5] = "abcde";

	pr_info("uses_kmi: arc4_setkey %d\n", arc4_setkey(&ctx, key, sizeof(key)));
	return 0;
}
module_init(uses_kmi_init);
MODULE_LICENSE("GPL");
