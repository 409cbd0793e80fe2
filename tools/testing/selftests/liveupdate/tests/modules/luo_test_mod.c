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
 * - A file handler, "luo-test-mod-pipe-v1", for pipes, whose freeze()
 *   changes the data its preserve() returned, as a handler may: its
 *   retrieve() in the next kernel succeeds only with the data of the freeze
 *   (luo_review.freeze_data).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/errno.h>
#include <linux/fs.h>
#include <linux/liveupdate.h>
#include <linux/module.h>

#include "luo_test.h"

#define TEST_FLB_DATA 0x10ad10ad10ad10adULL
/* Not page addresses of a 1 GiB guest: data the LUO hands over as it is. */
#define TEST_PRESERVED_DATA 0x7e57da7a00000001ULL
#define TEST_FROZEN_DATA 0x7e57da7a00000002ULL

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

static bool pipe_can_preserve(struct liveupdate_file_handler *fh, struct file *file)
{
	return S_ISFIFO(file_inode(file)->i_mode);
}

/*
 * Whether the pipe was frozen since it was preserved (one pipe per test),
 * and whether an unfreeze got other data than the freeze's, which fails the
 * next freeze.
 */
static bool pipe_frozen, pipe_bad_unfreeze;

static int pipe_preserve(struct liveupdate_file_op_args *args)
{
	pipe_frozen = false;
	pipe_bad_unfreeze = false;
	args->serialized_data = TEST_PRESERVED_DATA;
	return 0;
}

/*
 * The first freeze gets the data of the preserve; one after a failed reboot
 * gets the data of the freeze before it, as from C's LUO (an unfreeze does
 * not give data back), and so does that unfreeze.
 */
static int pipe_freeze(struct liveupdate_file_op_args *args)
{
	u64 want = pipe_frozen ? TEST_FROZEN_DATA : TEST_PRESERVED_DATA;

	if (pipe_bad_unfreeze || args->serialized_data != want) {
		pr_err("pipe: freeze got data %#llx, not %#llx\n", args->serialized_data, want);
		return -EINVAL;
	}
	pipe_frozen = true;
	args->serialized_data = TEST_FROZEN_DATA;
	return 0;
}

static void pipe_unfreeze(struct liveupdate_file_op_args *args)
{
	if (args->serialized_data != TEST_FROZEN_DATA) {
		pr_err("pipe: unfreeze got data %#llx, not the freeze's\n",
		       args->serialized_data);
		pipe_bad_unfreeze = true;
	}
	pr_info("pipe: unfreeze\n");
}

static const struct file_operations pipe_retrieved_fops = {
	.owner = THIS_MODULE,
};

static int pipe_retrieve(struct liveupdate_file_op_args *args)
{
	struct file *file;

	if (args->serialized_data != TEST_FROZEN_DATA) {
		pr_err("pipe: retrieve got data %#llx, not the freeze's %#llx\n",
		       args->serialized_data, TEST_FROZEN_DATA);
		return -EBADMSG;
	}
	file = anon_inode_getfile("[luo-test-pipe]", &pipe_retrieved_fops, NULL, O_RDONLY);
	if (IS_ERR(file))
		return PTR_ERR(file);
	args->file = file;
	return 0;
}

static const struct liveupdate_file_ops pipe_ops = {
	.can_preserve = pipe_can_preserve,
	.preserve = pipe_preserve,
	.unpreserve = handler_unpreserve,
	.freeze = pipe_freeze,
	.unfreeze = pipe_unfreeze,
	.retrieve = pipe_retrieve,
	.finish = handler_finish,
	.owner = THIS_MODULE,
};

static struct liveupdate_file_handler pipe_handler = {
	.ops = &pipe_ops,
	.compatible = "luo-test-mod-pipe-v1",
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
	if (err)
		goto err_memfd_flb;
	err = luo_rs_test_register_flb(&test_handler, &handler_flb);
	if (err)
		goto err_handler;
	err = luo_rs_test_register_file_handler(&pipe_handler);
	if (err)
		goto err_handler_flb;
	pr_info("loaded\n");
	return 0;

err_handler_flb:
	luo_rs_test_unregister_flb(&test_handler, &handler_flb);
err_handler:
	luo_rs_test_unregister_file_handler(&test_handler);
err_memfd_flb:
	luo_rs_test_unregister_flb(memfd_handler, &test_flb);
	return err;
}

static void __exit luo_test_mod_exit(void)
{
	luo_rs_test_unregister_file_handler(&pipe_handler);
	luo_rs_test_unregister_flb(&test_handler, &handler_flb);
	luo_rs_test_unregister_file_handler(&test_handler);
	luo_rs_test_unregister_flb(memfd_handler, &test_flb);
	pr_info("unloaded\n");
}

module_init(luo_test_mod_init);
module_exit(luo_test_mod_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("Live Update Orchestrator test module (FLB owner, FLB-asking handler, pipe handler)");
