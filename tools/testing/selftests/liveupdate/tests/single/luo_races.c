// SPDX-License-Identifier: GPL-2.0
/*
 * Threads and processes racing on shared LUO fds, for a bounded time:
 * create and close of sessions against PRESERVE_FD and GET_NAME on the same
 * fd numbers, and forks that try to open /dev/liveupdate while it is held.
 * Passes when nothing unexpected comes back, the kernel log stays clean (the
 * harness checks it), and afterwards every session name is free and the
 * memfds' memory is released.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "kselftest_harness.h"
#include "../luo_test_common.h"

#define DEV "/dev/liveupdate"
#define SECONDS 3
#define SLOTS 4

static int dev;
static atomic_int slot[SLOTS];
static atomic_int stop, unexpected;
static long page;

static void odd(const char *what, int err)
{
	printf("# %s: unexpected %s\n", what, strerror(err));
	atomic_fetch_add(&unexpected, 1);
}

static void *creator(void *arg)
{
	long id = (long)arg;

	while (!atomic_load(&stop)) {
		struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };
		int i = rand() % SLOTS, old;

		snprintf((char *)c.name, sizeof(c.name), "race-%ld-%d", id, i);
		if (ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c)) {
			if (errno != EEXIST && errno != EMFILE)
				odd("CREATE_SESSION", errno);
			continue;
		}
		old = atomic_exchange(&slot[i], c.fd);
		if (old > 0)
			close(old);
	}
	return NULL;
}

static void *preserver(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct liveupdate_session_preserve_fd p = { .size = sizeof(p) };
		int s = atomic_load(&slot[rand() % SLOTS]);
		int m = memfd_create("race", 0);

		if (m < 0 || ftruncate(m, page))
			continue;
		p.fd = m;
		p.token = rand() % 8;
		/* The fd number may be closed or reused by any file meanwhile. */
		if (s > 0 && ioctl(s, LIVEUPDATE_SESSION_PRESERVE_FD, &p) &&
		    errno != EBADF && errno != EEXIST && errno != ENOTTY &&
		    errno != EINVAL && errno != ENOENT && errno != EBUSY)
			odd("PRESERVE_FD", errno);
		close(m);
	}
	return NULL;
}

static void *namer(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		struct liveupdate_session_get_name g = { .size = sizeof(g) };
		int s = atomic_load(&slot[rand() % SLOTS]);

		if (s > 0 && ioctl(s, LIVEUPDATE_SESSION_GET_NAME, &g) &&
		    errno != EBADF && errno != ENOTTY && errno != EINVAL)
			odd("GET_NAME", errno);
	}
	return NULL;
}

FIXTURE(races) {
	int unused;
};

FIXTURE_SETUP(races)
{
}

FIXTURE_TEARDOWN(races)
{
}

/* Debug kernels under TCG are slow: allow ten minutes. */
TEST_F_TIMEOUT(races, shared_fds, 600)
{
	pthread_t t[6];
	long before;
	time_t end;

	dev = open(DEV, O_RDWR);
	if (dev < 0 && errno == ENOENT)
		SKIP(return, DEV " does not exist");
	ASSERT_GE(dev, 0);
	page = getpagesize();
	before = luo_shmem_kb();
	ASSERT_EQ(0, pthread_create(&t[0], NULL, creator, (void *)0L));
	ASSERT_EQ(0, pthread_create(&t[1], NULL, creator, (void *)1L));
	ASSERT_EQ(0, pthread_create(&t[2], NULL, preserver, NULL));
	ASSERT_EQ(0, pthread_create(&t[3], NULL, preserver, NULL));
	ASSERT_EQ(0, pthread_create(&t[4], NULL, namer, NULL));
	ASSERT_EQ(0, pthread_create(&t[5], NULL, namer, NULL));

	/* Meanwhile, processes that share the device fd or try to open it. */
	end = time(NULL) + SECONDS;
	while (time(NULL) < end) {
		pid_t pid = fork();

		if (pid == 0) {
			int fd = open(DEV, O_RDWR);
			struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };

			if (fd >= 0 || errno != EBUSY)
				_exit(1);
			snprintf((char *)c.name, sizeof(c.name), "child-%d", getpid());
			if (ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c))
				_exit(2);
			_exit(0);
		}
		if (pid > 0) {
			int st;

			waitpid(pid, &st, 0);
			EXPECT_EQ(0, WEXITSTATUS(st));
		}
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	EXPECT_EQ(0, atomic_load(&unexpected));

	for (int i = 0; i < SLOTS; i++)
		if (slot[i] > 0)
			close(slot[i]);
	close(dev);
	usleep(100000);

	/* Every session is gone and every preserved memfd released. */
	dev = open(DEV, O_RDWR);
	ASSERT_GE(dev, 0);
	for (int id = 0; id < 2; id++)
		for (int i = 0; i < SLOTS; i++) {
			char name[32];

			snprintf(name, sizeof(name), "race-%d-%d", id, i);
			EXPECT_EQ(0, luo_name_free(dev, name));
		}
	close(dev);
	EXPECT_TRUE(luo_memory_released(before));
}

TEST_HARNESS_MAIN
