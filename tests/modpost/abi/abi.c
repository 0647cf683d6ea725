// SPDX-License-Identifier: GPL-2.0
/*
 * Exports whose CRCs genksyms derives from struct abi_config (abi.h: genksyms expands the
 * structures of headers, not those of the .c file): built once as it is and once with
 * -DABI_CHANGED (one more member), the two builds differ in exactly the symbols whose types
 * reach the structure (abi_configure, abi_apply, abi_ops), not in abi_version.
 */
#include <linux/module.h>

#include "abi.h"

int abi_configure(struct abi_config *config)
{
	return config->speed;
}
EXPORT_SYMBOL_GPL(abi_configure);

int abi_apply(struct abi_config *config, int value)
{
	return abi_configure(config) + value;
}
EXPORT_SYMBOL_GPL(abi_apply);

const struct abi_operations abi_ops = { .configure = abi_configure };
EXPORT_SYMBOL(abi_ops);

int abi_version(void)
{
	return 1;
}
EXPORT_SYMBOL(abi_version);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("two builds of one source for extract_symvers.py --diff");
