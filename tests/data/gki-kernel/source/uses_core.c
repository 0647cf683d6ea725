// SPDX-License-Identifier: GPL-2.0
/* An unsigned module using kstrtouint: an export of vmlinux outside the KMI list */
#include <linux/module.h>
#include <linux/kernel.h>

static int __init uses_core_init(void)
{
	unsigned int value;

	return kstrtouint("1", 10, &value);
}
module_init(uses_core_init);
MODULE_LICENSE("GPL");
