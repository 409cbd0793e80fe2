// SPDX-License-Identifier: GPL-2.0
/*
 * The few lines of the Rust Live Update Orchestrator that Rust-for-Linux
 * cannot express: the early command-line parameter and the initcall levels.
 * Everything else is in liveupdate.rs and its modules.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/errno.h>
#include <linux/init.h>
#include <linux/kstrtox.h>
#include <linux/printk.h>
#include <linux/timex.h>

#include "luo_glue.h"

/* The "liveupdate" parameter: off by default, like the C core. */
static bool luo_enabled __initdata;

static int __init early_liveupdate_param(char *buf)
{
	return kstrtobool(buf, &luo_enabled);
}
early_param("liveupdate", early_liveupdate_param);

/* Parses the hand-over of the previous kernel, as early as the C core does. */
static int __init luo_early_init(void)
{
#ifdef CONFIG_LIVEUPDATE_BENCH
	/* The same line the harness adds to the C core's early initcall. */
	cycles_t t0 = get_cycles();
	int ret = luo_rs_early_init(luo_enabled);

	pr_notice("liveupdate-bench: early_init %llu cycles\n",
		  (unsigned long long)(get_cycles() - t0));
	return ret;
#else
	return luo_rs_early_init(luo_enabled);
#endif
}
early_initcall(luo_early_init);

/*
 * Creates the outgoing state and registers /dev/liveupdate. kernel/ links
 * before mm/, so this runs before memfd registers its file handler.
 */
static int __init luo_late_init(void)
{
	return luo_rs_late_init();
}
late_initcall(luo_late_init);
