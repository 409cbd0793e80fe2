// SPDX-License-Identifier: GPL-2.0
/*
 * One session with more files than one kmalloc'd array can index.
 *
 * HARNESS: impls=rust
 *
 * The benchmark found it: the file table of a session was a kmalloc'd
 * vector, and past about 43,000 files growing it asked the page allocator for
 * more than it serves, with a WARNING, and PRESERVE_FD failed. 40,000 empty
 * memfds cross that size; every PRESERVE_FD must succeed, and closing the
 * session must give everything back. (Only on rust: the C core checks token
 * uniqueness with a list walk, which makes this quadratic there.)
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

#define FILES 40000

FIXTURE(many) {
};

FIXTURE_SETUP(many)
{
}

FIXTURE_TEARDOWN(many)
{
}

TEST_F_TIMEOUT(many, forty_thousand_files_in_one_session, 600)
{
	struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };
	int dev = open("/dev/liveupdate", O_RDWR), n;

	ASSERT_GE(dev, 0);
	strcpy((char *)c.name, "many-files");
	ASSERT_EQ(0, ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c));
	for (n = 0; n < FILES; n++) {
		struct liveupdate_session_preserve_fd p = { .size = sizeof(p), .token = n };
		int m = memfd_create("many", 0);

		ASSERT_GE(m, 0);
		p.fd = m;
		if (ioctl(c.fd, LIVEUPDATE_SESSION_PRESERVE_FD, &p)) {
			printf("# PRESERVE_FD of file %d: %s\n", n, strerror(errno));
			close(m);
			break;
		}
		close(m);
	}
	EXPECT_EQ(FILES, n);
	close(c.fd);
	EXPECT_EQ(0, luo_name_free(dev, "many-files"));
	close(dev);
}

TEST_HARNESS_MAIN
