// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation failures (failslab and fail_page_alloc) in CREATE_SESSION and
 * PRESERVE_FD.
 *
 * HARNESS: impls=c-debug,rust-debug warn_alloc=ok
 *
 * For n = 1, 2, 3, ... the n-th allocation of the call fails (fail-nth, see
 * luo_fault.h), until the call no longer reaches an n-th allocation: every
 * slab and page allocation of the call fails once, in order. Every failing
 * call must return a clean error (ENOMEM, or EMFILE when the fd table could
 * not grow) and leave nothing behind: the name stays free, the memfd stays
 * preservable, and the next attempt succeeds. The harness checks the kernel
 * log for splats.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "kselftest_harness.h"
#include "../luo_test_common.h"
#include "../luo_fault.h"

#define MAX_N 2000

FIXTURE(faults) {
	int dev;
};

FIXTURE_SETUP(faults)
{
	int r = luo_fault_setup(NULL);

	if (r == 1)
		SKIP(return, "no failslab/fail_page_alloc in this kernel");
	ASSERT_EQ(0, r);
	self->dev = open("/dev/liveupdate", O_RDWR);
	ASSERT_GE(self->dev, 0);
}

FIXTURE_TEARDOWN(faults)
{
	luo_fault_disarm();
	close(self->dev);
}

TEST_F_TIMEOUT(faults, create_session, 300)
{
	int n, s = -1, failed = 0, tolerated = 0, injected;

	for (n = 1; n < MAX_N; n++) {
		ASSERT_EQ(0, luo_fault_arm(n));
		s = luo_create(self->dev, "faults");
		injected = luo_fault_disarm();
		ASSERT_GE(injected, 0);
		if (!injected) {
			ASSERT_GE(s, 0) {
				printf("# no fault injected, yet: %s\n", strerror(-s));
			}
			break;
		}
		if (s >= 0) {
			/* A failure the kernel could absorb; the session is whole. */
			tolerated++;
			close(s);
			continue;
		}
		failed++;
		EXPECT_TRUE(s == -ENOMEM || s == -EMFILE) {
			printf("# allocation %d: %s\n", n, strerror(-s));
		}
		/* Nothing was left behind: the name is free. */
		EXPECT_EQ(0, luo_name_free(self->dev, "faults"));
	}
	printf("# CREATE_SESSION: %d allocations, each failed once: %d clean errors, %d absorbed\n",
	       n - 1, failed, tolerated);
	EXPECT_GT(failed, 0);
	EXPECT_LT(n, MAX_N);
	close(s);
}

TEST_F_TIMEOUT(faults, preserve_fd, 300)
{
	int s = luo_create(self->dev, "faults-preserve");
	int m = memfd_create("faults", 0);
	int n, ret = -1, failed = 0, tolerated = 0, injected;
	long page = getpagesize();

	ASSERT_GE(s, 0);
	/* Several pages, some of them written: the handler has folios to pin. */
	ASSERT_EQ(0, ftruncate(m, 16 * page));
	ASSERT_EQ(1, pwrite(m, "x", 1, 0));
	ASSERT_EQ(1, pwrite(m, "y", 1, 9 * page));
	for (n = 1; n < MAX_N; n++) {
		ASSERT_EQ(0, luo_fault_arm(n));
		ret = luo_preserve(s, m, 1);
		injected = luo_fault_disarm();
		ASSERT_GE(injected, 0);
		if (!injected)
			break;
		if (!ret) {
			/* Absorbed: start over with a fresh session. */
			tolerated++;
			close(s);
			s = luo_create(self->dev, "faults-preserve");
			ASSERT_GE(s, 0);
			continue;
		}
		failed++;
		EXPECT_EQ(-ENOMEM, ret) {
			printf("# allocation %d: %s\n", n, strerror(-ret));
		}
	}
	printf("# PRESERVE_FD: %d allocations, each failed once: %d clean errors, %d absorbed\n",
	       n - 1, failed, tolerated);
	EXPECT_GT(failed, 0);
	EXPECT_EQ(0, ret);
	/* The last attempt preserved it once: the same token and file are now taken. */
	EXPECT_EQ(-EEXIST, luo_preserve(s, m, 1));
	EXPECT_EQ(-EBUSY, luo_preserve(s, m, 2));
	close(s);
	/* And closing the session gave it back. */
	s = luo_create(self->dev, "faults-preserve");
	ASSERT_GE(s, 0);
	EXPECT_EQ(0, luo_preserve(s, m, 2));
	close(s);
	close(m);
}

TEST_HARNESS_MAIN
