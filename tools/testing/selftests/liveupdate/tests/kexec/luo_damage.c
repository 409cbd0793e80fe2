// SPDX-License-Identifier: GPL-2.0
/*
 * A hand-over damaged on its way to the next kernel.
 *
 * HARNESS: impls=rust variants=compat,count,chain,name,flbcount,bootnum,flbcount_max,shared_block,foreign_page
 * HARNESS: cmdline="luo_rs_damage=%v panic_on_warn=1" log="invalid hand-over" flb=no
 * HARNESS: log.foreign_page="is also a file's or an FLB's data"
 *
 * Stage 1 preserves a memfd in session "damaged"; the kernel, built with
 * CONFIG_LIVEUPDATE_RUST_FAULT_INJECT and booted with luo_rs_damage=<field>,
 * damages that field of what it hands over. The next kernel must log the
 * problem (the harness checks the log), boot without a splat, and leave live
 * update usable: the damaged session is not there, a new session takes a
 * file.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "../luo_test_common.h"

static void fail(const char *what)
{
	printf("DAMAGE: FAIL: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int create(int dev, const char *name)
{
	int s = luo_create(dev, name);

	errno = -s;
	if (s < 0)
		fail("CREATE_SESSION");
	return s;
}

/* Whether the kernel command line has `param`. */
static int cmdline_has(const char *param)
{
	char buf[2048] = "";
	FILE *f = fopen("/proc/cmdline", "r");

	if (f && !fgets(buf, sizeof(buf), f))
		buf[0] = 0;
	if (f)
		fclose(f);
	return strstr(buf, param) != NULL;
}

static void preserve(int s)
{
	int fd, r;

	/*
	 * foreign_page links a session block to the memfd's own preserved page
	 * (its memfd_luo_ser): empty and at position 0, that page reads as a
	 * valid empty block, so a reader that takes pages while it checks them
	 * takes memfd's page too.
	 */
	fd = luo_memfd("damage", cmdline_has("luo_rs_damage=foreign_page") ? NULL : "data");
	errno = -fd;
	if (fd < 0)
		fail("memfd");
	r = luo_preserve(s, fd, 1);
	errno = -r;
	if (r)
		fail("PRESERVE_FD");
	close(fd);
}

static int stage1(int dev)
{
	preserve(create(dev, "damaged"));
	printf("DAMAGE: stage 1 preserved a memfd in session \"damaged\"\n");
	close(dev);
	luo_hold_fds_until_kexec();
	return 0;
}

static int stage2(int dev)
{
	struct liveupdate_ioctl_retrieve_session r = { .size = sizeof(r) };

	strcpy((char *)r.name, "damaged");
	if (!ioctl(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &r) || errno != ENOENT)
		fail("the damaged session was not refused with ENOENT");
	preserve(create(dev, "fresh"));
	printf("DAMAGE TEST PASSED (damaged hand-over refused, live update usable)\n");
	return 0;
}

int main(int argc, char **argv)
{
	return luo_two_stage_main(argc, argv, stage1, stage2);
}
