/* SPDX-License-Identifier: GPL-2.0 */
#ifndef ABI_H
#define ABI_H

struct abi_config {
	int speed;
#ifdef ABI_CHANGED
	long flags;
#endif
};

struct abi_operations {
	int (*configure)(struct abi_config *config);
};

int abi_configure(struct abi_config *config);
int abi_apply(struct abi_config *config, int value);
int abi_version(void);

#endif
