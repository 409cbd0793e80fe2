// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl contract of incoming sessions (stage 2 of a live update):
 * RETRIEVE_SESSION, RETRIEVE_FD and FINISH size rules and errno, the
 * direction checks, FINISH leaving the session incoming and empty until it is
 * closed (as in C), the implicit finish on close, and two threads racing to
 * retrieve the same session and to finish one while its files are being
 * retrieved.
 *
 * HARNESS: impls=c,rust,c-to-rust
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "../luo_test_common.h"

#define SESSIONS 8
#define FILES 3

static int failures;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		printf("INCOMING: FAIL line %d: ", __LINE__);		\
		printf(__VA_ARGS__);					\
		printf(" (errno %s)\n", strerror(errno));		\
		failures++;						\
	}								\
} while (0)

static int call(int fd, unsigned long cmd, void *proto, size_t ksize, size_t len, int tail)
{
	uint8_t *buf = calloc(1, len + 16);
	uint32_t size = len;
	int ret;

	memcpy(buf, proto, ksize < len ? ksize : len);
	memcpy(buf, &size, 4);
	if (tail && len > ksize)
		buf[len - 1] = 1;
	ret = ioctl(fd, cmd, buf) ? -errno : 0;
	if (!ret)
		memcpy(proto, buf, ksize < len ? ksize : len);
	free(buf);
	return ret;
}

static int retrieve(int dev, int i, size_t len, int tail)
{
	struct liveupdate_ioctl_retrieve_session r = { 0 };
	int ret;

	snprintf((char *)r.name, sizeof(r.name), "in-%d", i);
	ret = call(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &r, sizeof(r), len, tail);
	return ret ? ret : r.fd;
}

static int retrieve_fd(int s, uint64_t token, size_t len, int tail)
{
	struct liveupdate_session_retrieve_fd r = { .token = token };
	int ret = call(s, LIVEUPDATE_SESSION_RETRIEVE_FD, &r, sizeof(r), len, tail);

	return ret ? ret : r.fd;
}

static int finish(int s, uint32_t reserved, size_t len, int tail)
{
	struct liveupdate_session_finish f = { .reserved = reserved };

	return call(s, LIVEUPDATE_SESSION_FINISH, &f, sizeof(f), len, tail);
}

static int stage1(int dev)
{
	for (int i = 0; i < SESSIONS; i++) {
		struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };

		snprintf((char *)c.name, sizeof(c.name), "in-%d", i);
		if (ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c))
			return 1;
		for (int t = 0; t < FILES; t++) {
			struct liveupdate_session_preserve_fd p = { .size = sizeof(p), .token = t };
			char text[32];

			p.fd = memfd_create("in", 0);
			snprintf(text, sizeof(text), "%d-%d", i, t);
			if (p.fd < 0 || write(p.fd, text, strlen(text) + 1) < 0 ||
			    ioctl(c.fd, LIVEUPDATE_SESSION_PRESERVE_FD, &p))
				return 1;
			close(p.fd);
		}
	}
	printf("INCOMING: stage 1 preserved %d sessions of %d files\n", SESSIONS, FILES);
	close(dev);
	luo_hold_fds_until_kexec();
	return 0;
}

struct race {
	int dev, s, result;
};

static void *race_retrieve(void *arg)
{
	struct race *r = arg;

	r->result = retrieve(r->dev, 7, sizeof(struct liveupdate_ioctl_retrieve_session), 0);
	return NULL;
}

static void *race_retrieve_fds(void *arg)
{
	struct race *r = arg;

	for (int n = 0; n < 200; n++) {
		int fd = retrieve_fd(r->s, n % FILES, sizeof(struct liveupdate_session_retrieve_fd), 0);

		if (fd >= 0)
			close(fd);
		else if (fd != -ENOENT && fd != -EINVAL)
			r->result = fd;
	}
	return NULL;
}

static int stage2(int dev)
{
	struct liveupdate_ioctl_retrieve_session rs;
	struct stat a, b;
	int s, fd, fd2;

	/* RETRIEVE_SESSION: size rules, then EINVAL once retrieved. */
	for (size_t len = 0; len < sizeof(rs); len++)
		CHECK(retrieve(dev, 0, len, 0) == -EINVAL, "short RETRIEVE_SESSION %zu", len);
	CHECK(retrieve(dev, 0, sizeof(rs) + 8, 1) == -E2BIG, "non-zero tail");
	s = retrieve(dev, 0, sizeof(rs) + 8, 0);
	CHECK(s >= 0, "RETRIEVE_SESSION with a zero tail");
	CHECK(retrieve(dev, 0, sizeof(rs), 0) == -EINVAL, "second RETRIEVE_SESSION");
	CHECK(retrieve(dev, 99, sizeof(rs), 0) == -ENOENT, "unknown session");

	/* PRESERVE_FD is for outgoing sessions. */
	{
		struct liveupdate_session_preserve_fd p = { .size = sizeof(p), .fd = 0, .token = 9 };

		CHECK(ioctl(s, LIVEUPDATE_SESSION_PRESERVE_FD, &p) && errno == EINVAL,
		      "PRESERVE_FD on an incoming session");
	}

	/* RETRIEVE_FD: size rules, unknown token, same file on every retrieve. */
	for (size_t len = 0; len < 16; len++)
		CHECK(retrieve_fd(s, 0, len, 0) == -EINVAL, "short RETRIEVE_FD %zu", len);
	CHECK(retrieve_fd(s, 0, 24, 1) == -E2BIG, "RETRIEVE_FD non-zero tail");
	CHECK(retrieve_fd(s, 42, 16, 0) == -ENOENT, "unknown token");
	fd = retrieve_fd(s, 1, 24, 0);
	fd2 = retrieve_fd(s, 1, 16, 0);
	CHECK(fd >= 0 && fd2 >= 0 && fd != fd2, "two retrieves give two fds");
	CHECK(!fstat(fd, &a) && !fstat(fd2, &b) && a.st_ino == b.st_ino, "of the same file");
	{
		char got[16] = "";

		CHECK(pread(fd, got, sizeof(got), 0) > 0 && !strcmp(got, "0-1"), "content");
	}
	close(fd);
	close(fd2);

	/* FINISH: size rules, reserved; the session stays, incoming and empty. */
	for (size_t len = 0; len < 8; len++)
		CHECK(finish(s, 0, len, 0) == -EINVAL, "short FINISH %zu", len);
	CHECK(finish(s, 1, 8, 0) == -EINVAL, "FINISH with reserved set");
	CHECK(finish(s, 0, 16, 1) == -E2BIG, "FINISH non-zero tail");
	CHECK(finish(s, 0, 16, 0) == 0, "FINISH");
	CHECK(retrieve_fd(s, 0, 16, 0) == -ENOENT, "RETRIEVE_FD after FINISH");
	CHECK(finish(s, 0, 8, 0) == 0, "FINISH again");
	{
		struct liveupdate_session_preserve_fd p = { .size = sizeof(p), .token = 9 };

		p.fd = memfd_create("again", 0);
		CHECK(ioctl(s, LIVEUPDATE_SESSION_PRESERVE_FD, &p) && errno == EINVAL,
		      "a finished session is still incoming: no PRESERVE_FD");
		close(p.fd);
	}
	CHECK(retrieve(dev, 0, sizeof(rs), 0) == -EINVAL, "RETRIEVE_SESSION of the open, finished one");
	close(s);
	CHECK(retrieve(dev, 0, sizeof(rs), 0) == -ENOENT, "gone once closed");

	/* Closing an unfinished incoming session finishes it. */
	s = retrieve(dev, 1, sizeof(rs), 0);
	CHECK(s >= 0, "RETRIEVE_SESSION in-1");
	close(s);
	CHECK(retrieve(dev, 1, sizeof(rs), 0) == -ENOENT, "in-1 is gone after close");

	/* Two threads retrieve the same session: exactly one wins. */
	{
		struct race r1 = { .dev = dev }, r2 = { .dev = dev };
		pthread_t t1, t2;

		pthread_create(&t1, NULL, race_retrieve, &r1);
		pthread_create(&t2, NULL, race_retrieve, &r2);
		pthread_join(t1, NULL);
		pthread_join(t2, NULL);
		CHECK((r1.result >= 0) != (r2.result >= 0), "one of two racing retrieves wins");
		CHECK((r1.result >= 0 ? r2.result : r1.result) == -EINVAL, "the other gets EINVAL");
		close(r1.result >= 0 ? r1.result : r2.result);
	}

	/* FINISH while another thread retrieves the session's files. */
	{
		struct race r = { .dev = dev };
		pthread_t t;
		int err;

		r.s = retrieve(dev, 2, sizeof(rs), 0);
		CHECK(r.s >= 0, "RETRIEVE_SESSION in-2");
		pthread_create(&t, NULL, race_retrieve_fds, &r);
		do
			err = finish(r.s, 0, 8, 0);
		while (err == -EBUSY);
		pthread_join(t, NULL);
		CHECK(err == 0, "FINISH racing RETRIEVE_FD");
		CHECK(r.result == 0, "RETRIEVE_FD racing FINISH: %d", r.result);
		close(r.s);
	}

	/* The rest: retrieve, check every file, finish. */
	for (int i = 3; i < 7; i++) {
		s = retrieve(dev, i, sizeof(rs), 0);
		CHECK(s >= 0, "RETRIEVE_SESSION in-%d", i);
		for (int t = 0; t < FILES; t++) {
			char want[16], got[16] = "";

			fd = retrieve_fd(s, t, 16, 0);
			snprintf(want, sizeof(want), "%d-%d", i, t);
			CHECK(fd >= 0 && pread(fd, got, sizeof(got), 0) > 0 && !strcmp(got, want),
			      "file %d of in-%d", t, i);
			close(fd);
		}
		CHECK(finish(s, 0, 8, 0) == 0, "FINISH in-%d", i);
		close(s);
	}
	if (failures)
		return 1;
	printf("INCOMING CONTRACT TEST PASSED\n");
	return 0;
}

int main(int argc, char **argv)
{
	return luo_two_stage_main(argc, argv, stage1, stage2);
}
