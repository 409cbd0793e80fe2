// SPDX-License-Identifier: GPL-2.0
/*
 * A bounded, seeded random walk over /dev/liveupdate and session fds.
 *
 * Each step opens, closes, dups or forks over device and session fds, or
 * issues one of the six LUO ioctls (or an unknown one) on a random fd of any
 * kind (pipes, sockets, directories, O_PATH, /dev/null, eventfd, memfds,
 * session fds, /dev/liveupdate, closed numbers), with a random size (0 to two
 * pages), a random or zero tail, and a good, NULL, unmapped or read-only
 * pointer. Every errno on a LUO fd must be in the documented set of that
 * call. At the end everything is closed and the kernel must hold nothing of
 * the run: every session name is free again, /dev/liveupdate opens, and the
 * shared memory of the preserved memfds was released.
 *
 * The seed is printed (and can be given with -S) so a failure replays.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "kselftest_harness.h"
#include "../luo_test_common.h"

#define DEV "/dev/liveupdate"
#define CALLS 120000
#define NAMES 16
#define MAXFD 64

enum kind { K_NONE, K_DEV, K_SESSION, K_MEMFD, K_OTHER };

static uint64_t rng;
static long n_ioctl, n_ok, n_create, n_preserve;
static int fds[MAXFD];
static enum kind kinds[MAXFD];
static uint8_t *rw, *ro, *unmapped;
static long page;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static unsigned int pick(unsigned int n)
{
	return rnd() % n;
}

static int slot_free(void)
{
	for (int i = 0; i < MAXFD; i++)
		if (kinds[i] == K_NONE)
			return i;
	return -1;
}

static void add(int fd, enum kind k)
{
	int i = slot_free();

	if (fd < 0)
		return;
	if (i < 0) {
		close(fd);
		return;
	}
	fds[i] = fd;
	kinds[i] = k;
}

static void drop(int i)
{
	if (kinds[i] != K_NONE)
		close(fds[i]);
	kinds[i] = K_NONE;
}

/* A random slot holding an fd of kind `k`, or -1. */
static int any_of(enum kind k)
{
	int n = pick(MAXFD);

	for (int i = 0; i < MAXFD; i++) {
		int j = (n + i) % MAXFD;

		if (kinds[j] == k)
			return j;
	}
	return -1;
}

static int new_other(void)
{
	int p[2], fd = -1;

	switch (pick(6)) {
	case 0:
		if (!pipe(p)) {
			close(p[1]);
			fd = p[0];
		}
		break;
	case 1:
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		break;
	case 2:
		fd = open("/", O_RDONLY | O_DIRECTORY);
		break;
	case 3:
		fd = open("/dev/null", O_PATH);
		break;
	case 4:
		fd = open("/dev/null", O_RDWR);
		break;
	default:
		fd = eventfd(0, 0);
	}
	return fd;
}

static int new_memfd(void)
{
	int fd = memfd_create("fuzz", 0);

	if (fd >= 0 && ftruncate(fd, page) == 0) {
		void *m = mmap(NULL, page, PROT_WRITE, MAP_SHARED, fd, 0);

		if (m != MAP_FAILED) {
			memset(m, 0x42, page);
			munmap(m, page);
		}
	}
	return fd;
}

/* The errno a LUO call may return, per fd kind and command. */
static int allowed(enum kind k, unsigned long cmd, int err)
{
	/* Size and copy rules, on every command of the fd. */
	static const int common[] = { EFAULT, EINVAL, E2BIG };
	static const int create[] = { EMFILE, ENOMEM, EEXIST, ENOSPC, EBUSY };
	static const int retrieve[] = { EMFILE, ENOENT, EBUSY };
	static const int preserve[] = { EEXIST, EBADF, ENOENT, EBUSY, ENOMEM, ENOSPC,
					EOPNOTSUPP, EFBIG, EPERM };
	static const int retrieve_fd[] = { EMFILE, ENOENT };
	static const int finish[] = { EBUSY };
	const int *extra = NULL;
	size_t n = 0;

#define SET(a) do { extra = a; n = sizeof(a) / sizeof(a[0]); } while (0)
	if (k == K_DEV && cmd == LIVEUPDATE_IOCTL_CREATE_SESSION)
		SET(create);
	else if (k == K_DEV && cmd == LIVEUPDATE_IOCTL_RETRIEVE_SESSION)
		SET(retrieve);
	else if (k == K_SESSION && cmd == LIVEUPDATE_SESSION_PRESERVE_FD)
		SET(preserve);
	else if (k == K_SESSION && cmd == LIVEUPDATE_SESSION_RETRIEVE_FD)
		SET(retrieve_fd);
	else if (k == K_SESSION && cmd == LIVEUPDATE_SESSION_FINISH)
		SET(finish);
	else if (k == K_SESSION && cmd == LIVEUPDATE_SESSION_GET_NAME)
		n = 0;
	else
		return err == ENOTTY;	/* not a command of this fd */
#undef SET
	for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		if (err == common[i])
			return 1;
	for (size_t i = 0; i < n; i++)
		if (err == extra[i])
			return 1;
	return 0;
}

static const unsigned long cmds[] = {
	LIVEUPDATE_IOCTL_CREATE_SESSION, LIVEUPDATE_IOCTL_RETRIEVE_SESSION,
	LIVEUPDATE_SESSION_PRESERVE_FD, LIVEUPDATE_SESSION_RETRIEVE_FD,
	LIVEUPDATE_SESSION_FINISH, LIVEUPDATE_SESSION_GET_NAME,
	_IO(LIVEUPDATE_IOCTL_TYPE, 0x02), _IO(LIVEUPDATE_IOCTL_TYPE, 0x44),
	_IOW(LIVEUPDATE_IOCTL_TYPE, 0x00, int),
};

/* Fills the struct with plausible or random contents; returns the pointer. */
static void *make_arg(unsigned long cmd, uint32_t *size)
{
	uint8_t *buf = rw;
	uint32_t len;
	int which = pick(16);

	switch (pick(6)) {
	case 0:
		len = pick(2 * page + 1);
		break;
	case 1:
		len = pick(80);
		break;
	default:	/* the right size, mostly */
		len = cmd == LIVEUPDATE_SESSION_FINISH ? 8 :
		      (cmd == LIVEUPDATE_SESSION_PRESERVE_FD ||
		       cmd == LIVEUPDATE_SESSION_RETRIEVE_FD) ? 16 : 72;
	}
	memset(buf, 0, 2 * page);
	if (pick(8) == 0)
		for (uint32_t i = 0; i < len && i < 2 * page; i++)
			buf[i] = rnd();
	memcpy(buf, &len, 4);
	if (cmd == LIVEUPDATE_IOCTL_CREATE_SESSION || cmd == LIVEUPDATE_IOCTL_RETRIEVE_SESSION) {
		if (pick(4))
			snprintf((char *)buf + 8, 64, "f%d", pick(NAMES));
	} else if (cmd == LIVEUPDATE_SESSION_PRESERVE_FD) {
		int m = any_of(K_MEMFD);
		int32_t fd = pick(2) && m >= 0 ? fds[m] : pick(4) ? fds[pick(MAXFD)] : (int32_t)rnd();
		uint64_t token = pick(8);

		memcpy(buf + 4, &fd, 4);
		memcpy(buf + 8, &token, 8);
	} else if (cmd == LIVEUPDATE_SESSION_RETRIEVE_FD) {
		uint64_t token = pick(8);

		memcpy(buf + 8, &token, 8);
	}
	if (pick(6) == 0 && len > 8 && len <= 2 * page)
		buf[len - 1] = 1;	/* non-zero tail (or last byte) */
	*size = len;
	if (which == 0)
		return NULL;
	if (which == 1)
		return unmapped;
	if (which == 2) {
		mprotect(ro, 2 * page, PROT_READ | PROT_WRITE);
		memcpy(ro, buf, 2 * page);
		mprotect(ro, 2 * page, PROT_READ);
		return ro + pick(page);
	}
	return buf;
}

static int walk(int calls, int *bad)
{
	for (int c = 0; c < calls; c++) {
		int i, op = pick(100);

		if (op < 3) {
			i = slot_free();
			if (i >= 0) {
				int fd = open(DEV, O_RDWR);

				if (fd < 0 && errno != EBUSY) {
					printf("# open %s: %s\n", DEV, strerror(errno));
					(*bad)++;
				}
				add(fd, K_DEV);
			}
		} else if (op < 8) {
			drop(pick(MAXFD));
		} else if (op < 10) {
			i = pick(MAXFD);
			if (kinds[i] != K_NONE)
				add(dup(fds[i]), kinds[i]);
		} else if (op < 13) {
			add(new_memfd(), K_MEMFD);
		} else if (op < 15) {
			add(new_other(), K_OTHER);
		} else if (op < 16) {
			pid_t pid = fork();

			if (pid == 0) {
				int b = 0;

				walk(50, &b);
				_exit(b ? 1 : 0);
			}
			if (pid > 0) {
				int st;

				waitpid(pid, &st, 0);
				if (!WIFEXITED(st) || WEXITSTATUS(st))
					(*bad)++;
			}
		} else {
			unsigned long cmd = cmds[pick(sizeof(cmds) / sizeof(cmds[0]))];
			uint32_t size;
			void *arg = make_arg(cmd, &size);
			enum kind k;
			int fd, ret;

			/* Mostly LUO fds, sometimes anything, sometimes a closed number. */
			i = pick(3) ? any_of(pick(3) ? K_SESSION : K_DEV) : pick(MAXFD + 4);
			if (i < 0 || i >= MAXFD || kinds[i] == K_NONE) {
				fd = 1000 + pick(100);	/* a closed number */
				k = K_NONE;
			} else {
				fd = fds[i];
				k = kinds[i];
			}
			ret = ioctl(fd, cmd, arg);
			n_ioctl++;
			if (ret == 0) {
				n_ok++;
				n_create += cmd == LIVEUPDATE_IOCTL_CREATE_SESSION;
				n_preserve += cmd == LIVEUPDATE_SESSION_PRESERVE_FD;
			}
			if (ret < 0 && (k == K_DEV || k == K_SESSION) && !allowed(k, cmd, errno)) {
				printf("# call %d: ioctl(%s fd, %#lx, size %u) = %s: not a documented errno\n",
				       c, k == K_DEV ? "device" : "session", cmd, size, strerror(errno));
				(*bad)++;
			}
			if (ret == 0 && arg == rw && (cmd == LIVEUPDATE_IOCTL_CREATE_SESSION ||
				     cmd == LIVEUPDATE_IOCTL_RETRIEVE_SESSION ||
				     cmd == LIVEUPDATE_SESSION_RETRIEVE_FD)) {
				int32_t nfd;

				memcpy(&nfd, rw + 4, 4);
				add(nfd, cmd == LIVEUPDATE_SESSION_RETRIEVE_FD ? K_MEMFD : K_SESSION);
			}
			if (ret < 0 && k == K_NONE && errno != EBADF) {
				printf("# ioctl on a closed fd: %s\n", strerror(errno));
				(*bad)++;
			}
		}
	}
	return *bad;
}

FIXTURE(fuzz) {
	int unused;
};

FIXTURE_SETUP(fuzz)
{
}

FIXTURE_TEARDOWN(fuzz)
{
}

/* Debug kernels under TCG are slow: allow ten minutes. */
TEST_F_TIMEOUT(fuzz, random_walk, 600)
{
	const char *seed_env = getenv("LUO_FUZZ_SEED");
	struct rlimit rl = { 4096, 4096 };
	long before;
	int bad = 0, dev;

	dev = open(DEV, O_RDWR);
	if (dev < 0 && errno == ENOENT)
		SKIP(return, DEV " does not exist");
	ASSERT_GE(dev, 0);
	close(dev);
	setrlimit(RLIMIT_NOFILE, &rl);
	page = getpagesize();
	rng = seed_env ? strtoull(seed_env, NULL, 0) : (uint64_t)time(NULL) * 2654435761u;
	if (!rng)
		rng = 1;
	printf("# seed %#llx (replay: LUO_FUZZ_SEED=%#llx), %d calls\n",
	       (unsigned long long)rng, (unsigned long long)rng, CALLS);
	rw = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ro = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	unmapped = mmap(NULL, page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, rw);
	ASSERT_NE(MAP_FAILED, ro);
	ASSERT_NE(MAP_FAILED, unmapped);
	munmap(unmapped, page);
	ASSERT_EQ(0, mprotect(ro, 2 * page, PROT_READ));
	before = luo_shmem_kb();

	walk(CALLS, &bad);
	printf("# %ld ioctls (%ld succeeded: %ld sessions created, %ld files preserved)\n",
	       n_ioctl, n_ok, n_create, n_preserve);
	EXPECT_EQ(0, bad);

	for (int i = 0; i < MAXFD; i++)
		drop(i);
	/* Session files are released when their last reference goes. */
	usleep(100000);

	/* Nothing of the run is left in the kernel. */
	dev = open(DEV, O_RDWR);
	ASSERT_GE(dev, 0);
	for (int n = 0; n < NAMES; n++) {
		char name[16];

		snprintf(name, sizeof(name), "f%d", n);
		EXPECT_EQ(0, luo_name_free(dev, name));
	}
	close(dev);
	/* Every memfd of the run was one page: none may be left behind. */
	EXPECT_TRUE(luo_memory_released(before));
}

TEST_HARNESS_MAIN
