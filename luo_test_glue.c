// SPDX-License-Identifier: GPL-2.0
/*
 * Test kernels only (CONFIG_LIVEUPDATE_RUST_FAULT_INJECT): the fault-injection
 * boot parameters (luo_fault.rs), and the LUO's in-kernel API for the test
 * modules in tools/testing/selftests/liveupdate/tests/modules/ (the C LUO
 * exports none of <linux/liveupdate.h>; these wrappers are exported instead,
 * each after its function, so no production kernel exports anything).
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/errno.h>
#include <linux/export.h>
#include <linux/init.h>
#include <linux/kstrtox.h>
#include <linux/liveupdate.h>

#include "luo_glue.h"
#include "luo_test.h"

/* Parses an unsigned number for one of the fault-injection setters. */
static int __init luo_uint_param(char *buf, void (*set)(unsigned int))
{
	unsigned int n;
	int err;

	err = kstrtouint(buf, 0, &n);
	if (err)
		return err;

	set(n);

	return 0;
}

static int __init luo_fail_freeze_param(char *buf)
{
	return luo_uint_param(buf, luo_rs_set_fail_freeze);
}
early_param("luo_rs_fail_freeze", luo_fail_freeze_param);

static int __init luo_damage_param(char *buf)
{
	if (!buf)
		return -EINVAL;

	luo_rs_set_damage(buf);

	return 0;
}
early_param("luo_rs_damage", luo_damage_param);

static int __init luo_leak_param(char *buf)
{
	return luo_uint_param(buf, luo_rs_set_leak);
}
early_param("luo_rs_leak", luo_leak_param);

static int __init luo_release_delay_param(char *buf)
{
	return luo_uint_param(buf, luo_rs_set_release_delay);
}
early_param("luo_rs_release_delay_ms", luo_release_delay_param);

static int __init luo_fail_after_serialize_param(char *buf)
{
	return luo_uint_param(buf, luo_rs_set_fail_after_serialize);
}
early_param("luo_rs_fail_after_serialize", luo_fail_after_serialize_param);

int luo_rs_test_register_file_handler(struct liveupdate_file_handler *fh)
{
	return liveupdate_register_file_handler(fh);
}
EXPORT_SYMBOL_GPL(luo_rs_test_register_file_handler);

void luo_rs_test_unregister_file_handler(struct liveupdate_file_handler *fh)
{
	liveupdate_unregister_file_handler(fh);
}
EXPORT_SYMBOL_GPL(luo_rs_test_unregister_file_handler);

int luo_rs_test_register_flb(struct liveupdate_file_handler *fh, struct liveupdate_flb *flb)
{
	return liveupdate_register_flb(fh, flb);
}
EXPORT_SYMBOL_GPL(luo_rs_test_register_flb);

void luo_rs_test_unregister_flb(struct liveupdate_file_handler *fh, struct liveupdate_flb *flb)
{
	liveupdate_unregister_flb(fh, flb);
}
EXPORT_SYMBOL_GPL(luo_rs_test_unregister_flb);

int luo_rs_test_flb_get_incoming(struct liveupdate_flb *flb, void **objp)
{
	return liveupdate_flb_get_incoming(flb, objp);
}
EXPORT_SYMBOL_GPL(luo_rs_test_flb_get_incoming);

void luo_rs_test_flb_put_incoming(struct liveupdate_flb *flb)
{
	liveupdate_flb_put_incoming(flb);
}
EXPORT_SYMBOL_GPL(luo_rs_test_flb_put_incoming);

int luo_rs_test_flb_get_outgoing(struct liveupdate_flb *flb, void **objp)
{
	return liveupdate_flb_get_outgoing(flb, objp);
}
EXPORT_SYMBOL_GPL(luo_rs_test_flb_get_outgoing);

void luo_rs_test_flb_put_outgoing(struct liveupdate_flb *flb)
{
	liveupdate_flb_put_outgoing(flb);
}
EXPORT_SYMBOL_GPL(luo_rs_test_flb_put_outgoing);

/* The registered file handler whose compatible string is @compatible, or NULL. */
struct liveupdate_file_handler *luo_rs_test_file_handler(const char *compatible)
{
	return luo_rs_find_file_handler(compatible);
}
EXPORT_SYMBOL_GPL(luo_rs_test_file_handler);
