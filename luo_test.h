/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The in-kernel API of the Rust LUO's test kernels for test modules
 * (luo_test_glue.c, CONFIG_LIVEUPDATE_RUST_FAULT_INJECT): the functions of
 * <linux/liveupdate.h> under luo_rs_test_* names, and a handler lookup.
 * Included by luo_test_glue.c and by tools/testing/selftests/liveupdate/
 * tests/modules/ (the harness copies it next to them).
 */
#ifndef LUO_TEST_H
#define LUO_TEST_H

#include <linux/liveupdate.h>

struct liveupdate_file_handler *luo_rs_test_file_handler(const char *compatible);
int luo_rs_test_register_file_handler(struct liveupdate_file_handler *fh);
void luo_rs_test_unregister_file_handler(struct liveupdate_file_handler *fh);
int luo_rs_test_register_flb(struct liveupdate_file_handler *fh, struct liveupdate_flb *flb);
void luo_rs_test_unregister_flb(struct liveupdate_file_handler *fh, struct liveupdate_flb *flb);
int luo_rs_test_flb_get_incoming(struct liveupdate_flb *flb, void **objp);
void luo_rs_test_flb_put_incoming(struct liveupdate_flb *flb);
int luo_rs_test_flb_get_outgoing(struct liveupdate_flb *flb, void **objp);
void luo_rs_test_flb_put_outgoing(struct liveupdate_flb *flb);

#endif /* LUO_TEST_H */
