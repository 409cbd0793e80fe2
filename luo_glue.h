/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entry points of the Rust Live Update Orchestrator called from luo_glue.c
 * and luo_test_glue.c, defined in liveupdate.rs, luo_fault.rs and ffi.rs;
 * and the test modules' exports of luo_test_glue.c.
 */
#ifndef _LUO_GLUE_H
#define _LUO_GLUE_H

#include <linux/types.h>

struct liveupdate_file_handler;
struct liveupdate_flb;

void luo_rs_set_enabled(bool enabled);
int luo_rs_early_init(void);
int luo_rs_late_init(void);
void luo_rs_set_fail_freeze(unsigned int n);
void luo_rs_set_damage(const char *value);
void luo_rs_set_leak(unsigned int n);
void luo_rs_set_release_delay(unsigned int ms);
void luo_rs_set_fail_after_serialize(unsigned int n);
struct liveupdate_file_handler *luo_rs_find_file_handler(const char *compatible);
struct liveupdate_file_handler *luo_rs_test_file_handler(const char *compatible);
int luo_rs_test_register_file_handler(struct liveupdate_file_handler *fh);
void luo_rs_test_unregister_file_handler(struct liveupdate_file_handler *fh);
int luo_rs_test_register_flb(struct liveupdate_file_handler *fh, struct liveupdate_flb *flb);
void luo_rs_test_unregister_flb(struct liveupdate_file_handler *fh, struct liveupdate_flb *flb);
int luo_rs_test_flb_get_incoming(struct liveupdate_flb *flb, void **objp);
void luo_rs_test_flb_put_incoming(struct liveupdate_flb *flb);
int luo_rs_test_flb_get_outgoing(struct liveupdate_flb *flb, void **objp);
void luo_rs_test_flb_put_outgoing(struct liveupdate_flb *flb);

#endif /* _LUO_GLUE_H */
