// SPDX-License-Identifier: GPL-2.0
/*
 * The leak checks can see a leak: a sensitivity check of the suite itself.
 *
 * HARNESS: impls=rust-debug cmdline=luo_rs_leak=1
 *
 * With luo_rs_leak=1 (CONFIG_LIVEUPDATE_RUST_FAULT_INJECT) the first
 * CREATE_SESSION leaks a small allocation on purpose. The kmemleak count
 * that luo_fuzz, luo_races and the others require to be 0 must find it; if
 * it did not, their "no leak" verdicts would mean nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "kselftest_harness.h"
#include "../luo_test_common.h"

TEST(kmemleak_finds_a_leak_of_ours)
{
	struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };
	int dev = open("/dev/liveupdate", O_RDWR);

	if (access("/sys/kernel/debug/kmemleak", F_OK))
		SKIP(return, "no kmemleak in this kernel");
	ASSERT_GE(dev, 0);
	strcpy((char *)c.name, "leaky");
	ASSERT_EQ(0, ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c));
	close(c.fd);
	close(dev);
	EXPECT_GE(luo_kmemleak_count(), 1);
}

TEST_HARNESS_MAIN
