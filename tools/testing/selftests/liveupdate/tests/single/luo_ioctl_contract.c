// SPDX-License-Identifier: GPL-2.0
/*
 * The ioctl contract of /dev/liveupdate and session fds, as documented in
 * Documentation/liveupdate-rust.rst: the size header of every command
 * (too short, exact, longer with a zero tail, longer with a non-zero tail,
 * in the way iommufd's TEST_LENGTH checks it) and the errno of each
 * documented failure. Where the C implementation differs, its results are
 * listed as expected failures of c/luo_ioctl_contract.* only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "kselftest_harness.h"
#include "../luo_test_common.h"

#define DEV "/dev/liveupdate"

static int page_size(void)
{
	return getpagesize();
}

/* A buffer of two pages: the struct sits at the end of the first one, so a
 * tail can run into the second page (or into an unmapped one).
 */
static uint8_t *two_pages(void)
{
	uint8_t *p = mmap(NULL, 2 * page_size(), PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int new_memfd(const char *text)
{
	return luo_memfd("contract", text);
}

/*
 * Calls `cmd` with a struct of `len` bytes copied from `proto` (cut or
 * zero-extended), with `size` set to `len` and, if `tail_byte`, a non-zero
 * last byte when `len` is beyond the kernel's struct. Returns 0 or -errno.
 */
static int sized_call(int fd, unsigned long cmd, const void *proto, size_t ksize,
		      size_t len, int tail_byte)
{
	size_t map = (len / page_size() + 1) * page_size();
	uint32_t size32 = len;
	uint8_t *arg;
	int ret;

	arg = mmap(NULL, map, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arg == MAP_FAILED)
		return -ENOMEM;
	memcpy(arg, proto, ksize < len ? ksize : len);
	memcpy(arg, &size32, 4);
	if (tail_byte && len > ksize)
		arg[len - 1] = 0x5a;
	ret = ioctl(fd, cmd, arg) ? -errno : 0;
	munmap(arg, map);
	return ret;
}

FIXTURE(contract) {
	int dev;
	int s;
};

FIXTURE_SETUP(contract)
{
	self->dev = open(DEV, O_RDWR);
	if (self->dev < 0 && errno == ENOENT)
		SKIP(return, DEV " does not exist");
	ASSERT_GE(self->dev, 0);
	self->s = luo_create(self->dev, "contract");
	ASSERT_GE(self->s, 0);
}

FIXTURE_TEARDOWN(contract)
{
	if (self->s >= 0)
		close(self->s);
	if (self->dev >= 0)
		close(self->dev);
}

/* CREATE_SESSION: every size class. */
TEST_F(contract, create_session_sizes)
{
	struct liveupdate_ioctl_create_session a = { 0 };
	size_t k = sizeof(a);
	int i = 0;

	for (size_t len = 0; len < k; len++) {
		snprintf((char *)a.name, sizeof(a.name), "short-%d", i++);
		EXPECT_EQ(-EINVAL, sized_call(self->dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &a, k, len, 0));
	}
	snprintf((char *)a.name, sizeof(a.name), "exact");
	EXPECT_EQ(0, sized_call(self->dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &a, k, k, 0));
	snprintf((char *)a.name, sizeof(a.name), "zero-tail");
	EXPECT_EQ(0, sized_call(self->dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &a, k, k + 8, 0));
	snprintf((char *)a.name, sizeof(a.name), "page-tail");
	EXPECT_EQ(0, sized_call(self->dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &a, k,
				page_size() + 8, 0));
	snprintf((char *)a.name, sizeof(a.name), "nonzero-tail");
	EXPECT_EQ(-E2BIG, sized_call(self->dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &a, k, k + 8, 1));
	/* The E2BIG one was not created: its name is free. */
	EXPECT_GE(luo_create(self->dev, "nonzero-tail"), 0);
}

/* RETRIEVE_SESSION: no incoming session in a single boot, so ENOENT once the
 * size rules pass.
 */
TEST_F(contract, retrieve_session_sizes)
{
	struct liveupdate_ioctl_retrieve_session a = { 0 };
	size_t k = sizeof(a);

	snprintf((char *)a.name, sizeof(a.name), "nothing-here");
	for (size_t len = 0; len < k; len++)
		EXPECT_EQ(-EINVAL, sized_call(self->dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &a, k, len, 0));
	EXPECT_EQ(-ENOENT, sized_call(self->dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &a, k, k, 0));
	EXPECT_EQ(-ENOENT, sized_call(self->dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &a, k, k + 8, 0));
	EXPECT_EQ(-E2BIG, sized_call(self->dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &a, k, k + 8, 1));
}

/* PRESERVE_FD: every size class. */
TEST_F(contract, preserve_fd_sizes)
{
	struct liveupdate_session_preserve_fd a = { 0 };
	size_t k = sizeof(a);

	a.fd = new_memfd("x");
	ASSERT_GE(a.fd, 0);
	for (size_t len = 0; len < k; len++) {
		a.token = 100 + len;
		EXPECT_EQ(-EINVAL, sized_call(self->s, LIVEUPDATE_SESSION_PRESERVE_FD, &a, k, len, 0));
	}
	a.token = 1;
	EXPECT_EQ(-E2BIG, sized_call(self->s, LIVEUPDATE_SESSION_PRESERVE_FD, &a, k, k + 8, 1));
	EXPECT_EQ(0, sized_call(self->s, LIVEUPDATE_SESSION_PRESERVE_FD, &a, k, k, 0));
	a.fd = new_memfd("y");
	a.token = 2;
	EXPECT_EQ(0, sized_call(self->s, LIVEUPDATE_SESSION_PRESERVE_FD, &a, k, k + 8, 0));
}

/* GET_NAME: every size class; the answer is cut to the user's size. */
TEST_F(contract, get_name_sizes)
{
	struct liveupdate_session_get_name a = { 0 };
	size_t k = sizeof(a);

	for (size_t len = 0; len < k; len++)
		EXPECT_EQ(-EINVAL, sized_call(self->s, LIVEUPDATE_SESSION_GET_NAME, &a, k, len, 0));
	EXPECT_EQ(0, sized_call(self->s, LIVEUPDATE_SESSION_GET_NAME, &a, k, k, 0));
	EXPECT_EQ(0, sized_call(self->s, LIVEUPDATE_SESSION_GET_NAME, &a, k, k + 16, 0));
	EXPECT_EQ(-E2BIG, sized_call(self->s, LIVEUPDATE_SESSION_GET_NAME, &a, k, k + 16, 1));
}

/* RETRIEVE_FD and FINISH are for incoming sessions: EINVAL on an outgoing
 * one, whatever the size.
 */
TEST_F(contract, incoming_only_ops_on_outgoing_session)
{
	struct liveupdate_session_retrieve_fd r = { 0 };
	struct liveupdate_session_finish f = { 0 };

	for (size_t len = 0; len <= sizeof(r) + 8; len++)
		EXPECT_EQ(-EINVAL, sized_call(self->s, LIVEUPDATE_SESSION_RETRIEVE_FD, &r,
					      sizeof(r), len, 0));
	for (size_t len = 0; len <= sizeof(f) + 8; len++)
		EXPECT_EQ(-EINVAL, sized_call(self->s, LIVEUPDATE_SESSION_FINISH, &f,
					      sizeof(f), len, 0));
}

/* A struct whose size header cannot be read. */
TEST_F(contract, unreadable_argument_is_efault)
{
	EXPECT_EQ(-1, ioctl(self->dev, LIVEUPDATE_IOCTL_CREATE_SESSION, NULL));
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(-1, ioctl(self->s, LIVEUPDATE_SESSION_GET_NAME, NULL));
	EXPECT_EQ(EFAULT, errno);
}

/* A tail that runs into unmapped memory. */
TEST_F(contract, unmapped_tail_is_efault)
{
	struct liveupdate_ioctl_create_session a = { .size = 0 };
	uint8_t *pages = two_pages();
	uint8_t *arg;

	ASSERT_NE(NULL, pages);
	ASSERT_EQ(0, munmap(pages + page_size(), page_size()));
	arg = pages + page_size() - sizeof(a);
	a.size = sizeof(a) + 64;
	snprintf((char *)a.name, sizeof(a.name), "efault-tail");
	memcpy(arg, &a, sizeof(a));
	EXPECT_EQ(-1, ioctl(self->dev, LIVEUPDATE_IOCTL_CREATE_SESSION, arg));
	EXPECT_EQ(EFAULT, errno);
	munmap(pages, page_size());
}

/* Unknown commands: ENOTTY, on both kinds of fd (the C implementation says
 * EINVAL for numbers outside its tables).
 */
TEST_F(contract, unknown_commands_are_enotty)
{
	struct liveupdate_session_get_name a = { .size = sizeof(a) };

	EXPECT_EQ(-1, ioctl(self->dev, _IO(LIVEUPDATE_IOCTL_TYPE, 0x02), &a));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->dev, LIVEUPDATE_SESSION_GET_NAME, &a));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->s, _IO(LIVEUPDATE_IOCTL_TYPE, 0x44), &a));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->s, LIVEUPDATE_IOCTL_CREATE_SESSION, &a));
	EXPECT_EQ(ENOTTY, errno);
	/* The right number with the wrong type or direction bits. */
	EXPECT_EQ(-1, ioctl(self->dev, _IO(0xBB, 0x00), &a));
	EXPECT_EQ(ENOTTY, errno);
	EXPECT_EQ(-1, ioctl(self->dev, _IOW(LIVEUPDATE_IOCTL_TYPE, 0x00, int), &a));
	EXPECT_EQ(ENOTTY, errno);
}

TEST_F(contract, create_session_errors)
{
	struct liveupdate_ioctl_create_session a = { .size = sizeof(a) };

	EXPECT_EQ(-EEXIST, luo_create(self->dev, "contract"));
	EXPECT_EQ(-EINVAL, luo_create(self->dev, ""));
	memset(a.name, 'X', sizeof(a.name));
	EXPECT_EQ(-1, ioctl(self->dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &a));
	EXPECT_EQ(EINVAL, errno);
	/* Bytes after the NUL are ignored. */
	memset(a.name, 'Y', sizeof(a.name));
	memcpy(a.name, "tail-ignored", 13);
	ASSERT_EQ(0, ioctl(self->dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &a));
	EXPECT_EQ(-EEXIST, luo_create(self->dev, "tail-ignored"));
	close(a.fd);
	/* A closed session's name is free again. */
	EXPECT_GE(luo_create(self->dev, "tail-ignored"), 0);
}

TEST_F(contract, retrieve_session_errors)
{
	struct liveupdate_ioctl_retrieve_session a = { .size = sizeof(a) };

	EXPECT_EQ(-1, ioctl(self->dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &a));
	EXPECT_EQ(ENOENT, errno);
	memset(a.name, 'X', sizeof(a.name));
	EXPECT_EQ(-1, ioctl(self->dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &a));
	EXPECT_EQ(ENOENT, errno);
	/* Outgoing sessions are not retrievable. */
	snprintf((char *)a.name, sizeof(a.name), "contract");
	EXPECT_EQ(-1, ioctl(self->dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &a));
	EXPECT_EQ(ENOENT, errno);
}

TEST_F(contract, preserve_fd_errors)
{
	int other = luo_create(self->dev, "contract-other");
	int m = new_memfd("data");
	int devnull = open("/dev/null", O_RDWR);

	ASSERT_GE(other, 0);
	ASSERT_GE(m, 0);
	EXPECT_EQ(-EBADF, luo_preserve(self->s, -1, 1));
	EXPECT_EQ(-EBADF, luo_preserve(self->s, 1000000, 1));
	EXPECT_EQ(-ENOENT, luo_preserve(self->s, devnull, 1));
	EXPECT_EQ(0, luo_preserve(self->s, m, 1));
	EXPECT_EQ(-EEXIST, luo_preserve(self->s, m, 1));
	/* The token is checked first: a bad fd with a used token is EEXIST. */
	EXPECT_EQ(-EEXIST, luo_preserve(self->s, -1, 1));
	EXPECT_EQ(-EBUSY, luo_preserve(self->s, m, 2));
	EXPECT_EQ(-EBUSY, luo_preserve(other, m, 1));
	/* Any u64 is a token, 0 and ~0 included. */
	EXPECT_EQ(0, luo_preserve(self->s, new_memfd(NULL), 0));
	EXPECT_EQ(0, luo_preserve(self->s, new_memfd(NULL), UINT64_MAX));
	/* Closing a session unpreserves its files: the memfd can go elsewhere. */
	close(self->s);
	self->s = -1;
	EXPECT_EQ(0, luo_preserve(other, m, 1));
	close(other);
	close(devnull);
	close(m);
}

TEST_F(contract, get_name_errors_and_padding)
{
	struct liveupdate_session_get_name a = { .size = sizeof(a) };

	a.reserved = 1;
	EXPECT_EQ(-1, ioctl(self->s, LIVEUPDATE_SESSION_GET_NAME, &a));
	EXPECT_EQ(EINVAL, errno);
	a.reserved = 0;
	memset(a.name, 0xff, sizeof(a.name));
	ASSERT_EQ(0, ioctl(self->s, LIVEUPDATE_SESSION_GET_NAME, &a));
	EXPECT_STREQ("contract", (char *)a.name);
	/* The rest of the field is zeroed, not an echo of what was passed in. */
	for (size_t i = strlen("contract"); i < sizeof(a.name); i++)
		EXPECT_EQ(0, a.name[i]);
}

/* An ioctl that fails with EFAULT has no effect. */
TEST_F(contract, efault_has_no_effect)
{
	struct liveupdate_session_preserve_fd a = { .size = sizeof(a), .token = 7 };
	uint8_t *pages = two_pages();
	int m = new_memfd("data");

	ASSERT_NE(NULL, pages);
	ASSERT_GE(m, 0);
	a.fd = m;
	memcpy(pages, &a, sizeof(a));
	ASSERT_EQ(0, mprotect(pages, page_size(), PROT_READ));
	EXPECT_EQ(-1, ioctl(self->s, LIVEUPDATE_SESSION_PRESERVE_FD, pages));
	EXPECT_EQ(EFAULT, errno);
	/* Nothing was preserved: the same memfd and token go in now. */
	EXPECT_EQ(0, luo_preserve(self->s, m, 7));
	munmap(pages, 2 * page_size());
	close(m);
}

/* With the fd table at its limit: EMFILE, and nothing was created. */
TEST_F(contract, fd_limit_is_emfile_and_has_no_effect)
{
	struct rlimit old, rl;
	int filler[64], n = 0, fd;

	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &old));
	/* Take every fd number up to a small limit. */
	rl.rlim_cur = 64;
	rl.rlim_max = old.rlim_max;
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &rl));
	while (n < 64 && (fd = open("/dev/null", O_RDONLY)) >= 0)
		filler[n++] = fd;
	ASSERT_GT(n, 0);
	ASSERT_EQ(-1, open("/dev/null", O_RDONLY));
	ASSERT_EQ(EMFILE, errno);
	EXPECT_EQ(-EMFILE, luo_create(self->dev, "over-the-limit"));
	/* One free number: the same name now works, so nothing was left behind. */
	close(filler[--n]);
	fd = luo_create(self->dev, "over-the-limit");
	EXPECT_GE(fd, 0);
	close(fd);
	while (n > 0)
		close(filler[--n]);
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &old));
}

TEST(single_open)
{
	int a = open(DEV, O_RDWR), b, d;

	if (a < 0 && errno == ENOENT)
		SKIP(return, DEV " does not exist");
	ASSERT_GE(a, 0);
	b = open(DEV, O_RDWR);
	EXPECT_EQ(-1, b);
	EXPECT_EQ(EBUSY, errno);
	/* A dup shares the open file: still busy after closing the original. */
	d = dup(a);
	close(a);
	EXPECT_EQ(-1, open(DEV, O_RDWR));
	EXPECT_EQ(EBUSY, errno);
	close(d);
	b = open(DEV, O_RDWR);
	EXPECT_GE(b, 0);
	close(b);
}

TEST(session_outlives_device_fd)
{
	struct liveupdate_session_get_name a = { .size = sizeof(a) };
	char link[128], path[64];
	int dev = open(DEV, O_RDWR), s;
	ssize_t n;

	if (dev < 0 && errno == ENOENT)
		SKIP(return, DEV " does not exist");
	ASSERT_GE(dev, 0);
	s = luo_create(dev, "outlives");
	ASSERT_GE(s, 0);
	close(dev);
	ASSERT_EQ(0, ioctl(s, LIVEUPDATE_SESSION_GET_NAME, &a));
	EXPECT_STREQ("outlives", (char *)a.name);
	/* The de-facto uAPI name of session files. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", s);
	n = readlink(path, link, sizeof(link) - 1);
	ASSERT_GT(n, 0);
	link[n] = 0;
	EXPECT_STREQ("anon_inode:[luo_session] outlives", link);
	/* Session fds are close-on-exec. */
	EXPECT_EQ(FD_CLOEXEC, fcntl(s, F_GETFD) & FD_CLOEXEC);
	close(s);
}

TEST_HARNESS_MAIN
