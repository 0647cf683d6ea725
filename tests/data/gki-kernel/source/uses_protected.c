// SPDX-License-Identifier: GPL-2.0
/* An unsigned module using arc4_crypt: libarc4's export outside the KMI list */
#include <linux/module.h>
#include <crypto/arc4.h>

static int __init uses_protected_init(void)
{
	struct arc4_ctx ctx = {};
	u8 byte = 0;

	arc4_crypt(&ctx, &byte, &byte, 1);
	return 0;
}
module_init(uses_protected_init);
MODULE_LICENSE("GPL");
