// SPDX-License-Identifier: GPL-2.0
/*
 * A module that uses the Live Update Orchestrator's in-kernel API, for
 * tests/kexec/luo_review.c (Rust LUO test kernels only: with
 * CONFIG_LIVEUPDATE_RUST_FAULT_INJECT they export that API to modules, as
 * luo_rs_test_* wrappers; the C LUO exports nothing).
 *
 * - An FLB, "luo-test-mod-flb", linked to memfd's file handler: preserved
 *   with memfds while the module is loaded; after a live update, the module
 *   can be unloaded while memfds that carried it are still to be finished
 *   (luo_review.flb_module_unload: finishing them must not touch the FLB).
 * - A file handler, "luo-test-mod-v1", that preserves nothing and whose
 *   can_preserve() asks for its own FLB's objects, as a handler may
 *   (luo_review.can_preserve_flb: no lock of the LUO may be held there).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/errno.h>
#include <linux/liveupdate.h>
#include <linux/module.h>

#include "luo_test.h"

#define TEST_FLB_DATA 0x10ad10ad10ad10adULL

static int flb_preserve(struct liveupdate_flb_op_args *args)
{
	pr_info("%s: preserve\n", args->flb->compatible);
	args->data = TEST_FLB_DATA;
	args->obj = (void *)TEST_FLB_DATA;
	return 0;
}

static void flb_unpreserve(struct liveupdate_flb_op_args *args)
{
	pr_info("%s: unpreserve\n", args->flb->compatible);
}

static int flb_retrieve(struct liveupdate_flb_op_args *args)
{
	pr_info("%s: retrieve\n", args->flb->compatible);
	if (args->data != TEST_FLB_DATA)
		return -EINVAL;
	args->obj = (void *)args->data;
	return 0;
}

static void flb_finish(struct liveupdate_flb_op_args *args)
{
	pr_info("%s: finish\n", args->flb->compatible);
}

static const struct liveupdate_flb_ops flb_ops = {
	.preserve = flb_preserve,
	.unpreserve = flb_unpreserve,
	.retrieve = flb_retrieve,
	.finish = flb_finish,
	.owner = THIS_MODULE,
};

static struct liveupdate_flb test_flb = {
	.ops = &flb_ops,
	.compatible = "luo-test-mod-flb",
};

static struct liveupdate_flb handler_flb = {
	.ops = &flb_ops,
	.compatible = "luo-test-mod-handler-flb",
};

static bool handler_can_preserve(struct liveupdate_file_handler *fh, struct file *file)
{
	void *obj;

	/* Both may fail (nothing preserved, nothing handed over): asking is the test. */
	if (!luo_rs_test_flb_get_outgoing(&handler_flb, &obj))
		luo_rs_test_flb_put_outgoing(&handler_flb);
	if (!luo_rs_test_flb_get_incoming(&handler_flb, &obj))
		luo_rs_test_flb_put_incoming(&handler_flb);
	pr_info("can_preserve asked its FLB\n");
	return false;
}

static int handler_preserve(struct liveupdate_file_op_args *args)
{
	return -EOPNOTSUPP;
}

static void handler_unpreserve(struct liveupdate_file_op_args *args)
{
}

static int handler_retrieve(struct liveupdate_file_op_args *args)
{
	return -EOPNOTSUPP;
}

static void handler_finish(struct liveupdate_file_op_args *args)
{
}

static const struct liveupdate_file_ops handler_ops = {
	.can_preserve = handler_can_preserve,
	.preserve = handler_preserve,
	.unpreserve = handler_unpreserve,
	.retrieve = handler_retrieve,
	.finish = handler_finish,
	.owner = THIS_MODULE,
};

static struct liveupdate_file_handler test_handler = {
	.ops = &handler_ops,
	.compatible = "luo-test-mod-v1",
};

static struct liveupdate_file_handler *memfd_handler;

static int __init luo_test_mod_init(void)
{
	int err;

	memfd_handler = luo_rs_test_file_handler("memfd-v2");
	if (!memfd_handler)
		return -ENOENT;
	err = luo_rs_test_register_flb(memfd_handler, &test_flb);
	if (err)
		return err;
	err = luo_rs_test_register_file_handler(&test_handler);
	if (!err)
		err = luo_rs_test_register_flb(&test_handler, &handler_flb);
	if (err) {
		luo_rs_test_unregister_file_handler(&test_handler);
		luo_rs_test_unregister_flb(memfd_handler, &test_flb);
		return err;
	}
	pr_info("loaded\n");
	return 0;
}

static void __exit luo_test_mod_exit(void)
{
	luo_rs_test_unregister_flb(&test_handler, &handler_flb);
	luo_rs_test_unregister_file_handler(&test_handler);
	luo_rs_test_unregister_flb(memfd_handler, &test_flb);
	pr_info("unloaded\n");
}

module_init(luo_test_mod_init);
module_exit(luo_test_mod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Live Update Orchestrator test module (FLB owner, FLB-asking handler)");
