/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entry points of the Rust Live Update Orchestrator called from luo_glue.c
 * and luo_test_glue.c, defined in liveupdate.rs, fault.rs and exports.rs.
 */
#ifndef _LUO_GLUE_H
#define _LUO_GLUE_H

#include <linux/init.h>
#include <linux/types.h>

struct liveupdate_file_handler;

int __init luo_rs_early_init(bool enabled);
int luo_rs_late_init(void);
void luo_rs_set_fail_freeze(unsigned int n);
void luo_rs_set_damage(const char *value);
void luo_rs_set_leak(unsigned int n);
void luo_rs_set_release_delay(unsigned int ms);
void luo_rs_set_fail_after_serialize(unsigned int n);
struct liveupdate_file_handler *luo_rs_find_file_handler(const char *compatible);

#endif /* _LUO_GLUE_H */
