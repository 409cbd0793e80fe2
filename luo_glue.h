/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entry points of the Rust Live Update Orchestrator called from luo_glue.c.
 * Defined in liveupdate.rs (and luo_fault.rs).
 */
#ifndef _LUO_GLUE_H
#define _LUO_GLUE_H

#include <linux/types.h>

void luo_rs_set_enabled(bool enabled);
int luo_rs_early_init(void);
int luo_rs_late_init(void);
void luo_rs_set_fail_freeze(unsigned int n);
void luo_rs_set_damage(const char *value);
void luo_rs_set_leak(unsigned int n);

#endif /* _LUO_GLUE_H */
