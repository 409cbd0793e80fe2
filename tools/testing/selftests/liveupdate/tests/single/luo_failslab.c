// SPDX-License-Identifier: GPL-2.0
/*
 * Memory allocation failures (failslab) in CREATE_SESSION and PRESERVE_FD.
 *
 * HARNESS: impls=rust-debug
 *
 * For k = 0, 1, 2, ... the first slab allocation after 16 * k bytes of the
 * call fails (failslab with task-filter, space 16 * k, times 1), until the
 * call succeeds without hitting one: every allocation of the call fails
 * once. Every failing call must return a clean error (ENOMEM, or
 * EMFILE when the fd table could not grow) and leave nothing behind: the
 * same name can be created and the same memfd preserved right after. The
 * harness checks the kernel log for splats.
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

#define FS "/sys/kernel/debug/failslab/"

static int put(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	int ok = fd >= 0 && write(fd, val, strlen(val)) == (ssize_t)strlen(val);

	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/*
 * The knobs stay open, so arming and disarming allocate nothing (opening a
 * file would allocate, and could take the injected failure itself).
 */
static int space_fd = -1, times_fd = -1, mif_fd = -1;

static int set(int fd, const char *val)
{
	/* Some knobs are not seekable; they take every write whole. */
	lseek(fd, 0, SEEK_SET);
	if (write(fd, val, strlen(val)) != (ssize_t)strlen(val)) {
		printf("# writing %s to fd %d: %s\n", val, fd, strerror(errno));
		return -1;
	}
	return 0;
}

/* Arms failslab: the first allocation of this task after 16 * k bytes fails, once. */
static int arm(int k)
{
	char v[16];

	snprintf(v, sizeof(v), "%d", 16 * k);
	return set(space_fd, v) || set(times_fd, "1") || set(mif_fd, "1");
}

static void disarm(void)
{
	set(mif_fd, "0");
}

static int create(int dev, const char *name)
{
	struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };

	snprintf((char *)c.name, sizeof(c.name), "%s", name);
	return ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c) ? -errno : c.fd;
}

static int preserve(int s, int fd, int token)
{
	struct liveupdate_session_preserve_fd p = {
		.size = sizeof(p), .fd = fd, .token = token,
	};

	return ioctl(s, LIVEUPDATE_SESSION_PRESERVE_FD, &p) ? -errno : 0;
}

FIXTURE(failslab) {
	int dev;
};

FIXTURE_SETUP(failslab)
{
	if (access(FS "probability", F_OK))
		SKIP(return, "no failslab in this kernel");
	ASSERT_EQ(0, put(FS "probability", "100"));
	ASSERT_EQ(0, put(FS "task-filter", "Y"));
	ASSERT_EQ(0, put(FS "verbose", "0"));
	ASSERT_EQ(0, put(FS "ignore-gfp-wait", "N"));
	ASSERT_EQ(0, put(FS "interval", "1"));
	space_fd = open(FS "space", O_WRONLY);
	times_fd = open(FS "times", O_WRONLY);
	mif_fd = open("/proc/thread-self/make-it-fail", O_WRONLY);
	ASSERT_GE(space_fd, 0);
	ASSERT_GE(times_fd, 0);
	ASSERT_GE(mif_fd, 0);
	self->dev = open("/dev/liveupdate", O_RDWR);
	ASSERT_GE(self->dev, 0);
}

FIXTURE_TEARDOWN(failslab)
{
	disarm();
	put(FS "probability", "0");
	close(self->dev);
}

TEST_F_TIMEOUT(failslab, create_session, 300)
{
	int k, s, failed = 0;

	for (k = 0; k < 1000; k++) {
		ASSERT_EQ(0, arm(k));
		s = create(self->dev, "failslab");
		disarm();
		if (s >= 0)
			break;
		failed++;
		EXPECT_TRUE(s == -ENOMEM || s == -EMFILE) {
			printf("# allocation %d: %s\n", k, strerror(-s));
		}
		/* Nothing was left behind: the name is free. */
		EXPECT_EQ(0, luo_name_free(self->dev, "failslab"));
	}
	printf("# CREATE_SESSION failed cleanly %d times, at every allocation up to %d bytes\n",
	       failed, 16 * k);
	EXPECT_GT(failed, 0);
	EXPECT_LT(k, 1000);
	close(s);
}

TEST_F_TIMEOUT(failslab, preserve_fd, 300)
{
	int s = create(self->dev, "failslab-preserve");
	int m = memfd_create("failslab", 0);
	int k, ret = -1, failed = 0;

	ASSERT_GE(s, 0);
	ASSERT_EQ(0, ftruncate(m, getpagesize()));
	for (k = 0; k < 1000; k++) {
		ASSERT_EQ(0, arm(k));
		ret = preserve(s, m, 1);
		disarm();
		if (!ret)
			break;
		failed++;
		EXPECT_EQ(-ENOMEM, ret) {
			printf("# allocation %d: %s\n", k, strerror(-ret));
		}
	}
	printf("# PRESERVE_FD failed cleanly %d times, at every allocation up to %d bytes\n",
	       failed, 16 * k);
	EXPECT_GT(failed, 0);
	EXPECT_EQ(0, ret);
	/* The last attempt preserved it once: the same token and file are now taken. */
	EXPECT_EQ(-EEXIST, preserve(s, m, 1));
	EXPECT_EQ(-EBUSY, preserve(s, m, 2));
	close(s);
	close(m);
}

TEST_HARNESS_MAIN
