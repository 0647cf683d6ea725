// SPDX-License-Identifier: GPL-2.0
/*
 * An indirect call each way across the module boundary: the kernel calls this module's
 * init function through mod->init (do_one_initcall()), and the init function calls the
 * kernel's kstrtoint() through a function pointer the compiler cannot see through.
 */
#include <linux/kernel.h>
#include <linux/module.h>

static int (*volatile parse)(const char *, unsigned int, int *) = kstrtoint;

static int __init cfi_call_init(void)
{
	int value = 0, err;

	pr_info("%s: init called; calling kstrtoint through a pointer\n", KBUILD_MODNAME);
	err = parse("42", 10, &value);
	pr_info("%s: kstrtoint returned %d, value %d\n", KBUILD_MODNAME, err, value);
	return 0;
}

static void __exit cfi_call_exit(void)
{
}

module_init(cfi_call_init);
module_exit(cfi_call_exit);
MODULE_LICENSE("GPL");
