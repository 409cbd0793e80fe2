// SPDX-License-Identifier: GPL-2.0
/*
 * Exactly one full block of sessions, then a duplicate-name CREATE_SESSION.
 *
 * The C writer grows its session block set before checking the name and does
 * not shrink it back on EEXIST, so with 51 sessions (one full 4 KiB block) it
 * hands over an empty trailing block, which its own reader refuses with a
 * panic of the next kernel (quirk Q1 in the inventory). The Rust writer never
 * emits an empty block, and the Rust reader accepts the C writer's one.
 *
 * HARNESS: flb=no (no file is preserved, so no FLB crosses)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "../luo_test_common.h"

#define SESSIONS 51	/* (4096 - 16) / sizeof(struct luo_session_ser) */

static void fail(const char *what)
{
	printf("FULL BLOCK: FAIL: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int stage1(int dev)
{
	for (int i = 0; i < SESSIONS; i++) {
		struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };

		snprintf((char *)c.name, sizeof(c.name), "block-%d", i);
		if (ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c))
			fail("CREATE_SESSION");
	}
	struct liveupdate_ioctl_create_session dup = { .size = sizeof(dup) };

	strcpy((char *)dup.name, "block-7");
	if (!ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &dup) || errno != EEXIST)
		fail("the duplicate name was not refused with EEXIST");
	printf("FULL BLOCK: %d sessions, duplicate refused\n", SESSIONS);
	close(dev);
	luo_hold_fds_until_kexec();
	return 0;
}

static int stage2(int dev)
{
	for (int i = 0; i < SESSIONS; i++) {
		struct liveupdate_ioctl_retrieve_session r = { .size = sizeof(r) };
		struct liveupdate_session_finish f = { .size = sizeof(f) };

		snprintf((char *)r.name, sizeof(r.name), "block-%d", i);
		if (ioctl(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &r))
			fail("RETRIEVE_SESSION");
		if (ioctl(r.fd, LIVEUPDATE_SESSION_FINISH, &f))
			fail("FINISH");
		close(r.fd);
	}
	printf("FULL BLOCK TEST PASSED (%d sessions)\n", SESSIONS);
	return 0;
}

int main(int argc, char **argv)
{
	return luo_two_stage_main(argc, argv, stage1, stage2);
}
