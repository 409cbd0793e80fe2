// SPDX-License-Identifier: GPL-2.0
/*
 * Allocation failures (failslab and fail_page_alloc) on the reboot path and
 * on every step of getting the state back in the next kernel.
 *
 * HARNESS: impls=rust-debug warn_alloc=ok
 *
 * Stage 1 preserves memfds in three sessions (one empty), then calls
 * reboot(KEXEC) with the n-th allocation made under liveupdate_reboot()
 * failing, for n = 1, 2, 3, ... (luo_fault.h; allocations of the rest of the
 * kexec path are not counted). Each failing reboot must return an error and
 * leave every session usable; the first n past the last allocation kexecs.
 *
 * Stage 2 does the same, one step at a time, for the first open of
 * /dev/liveupdate (which builds the incoming sessions), RETRIEVE_SESSION and
 * FINISH: each failing call returns a clean error, the next attempt
 * succeeds, and in the end every file has its contents.
 *
 * RETRIEVE_FD is different: a file handler's retrieve consumes what the
 * previous kernel handed over even when it fails (memfd's frees it), so the
 * LUO records the error and returns it for that file from then on (the C
 * contract, retrieve_status). Session "faults-fd" holds one file per
 * allocation point: file k is retrieved with the k-th allocation failing,
 * must fail cleanly, and a retry must either get it whole (the failure came
 * before the handler ran) or the same error again; the files past the last
 * allocation point come back whole and the session still finishes.
 *
 * Only on rust-debug: the C core fails the first open with EIO when an
 * allocation of its deserialization fails, and every later open with the
 * same error (the incoming sessions are gone for this boot), so on c-debug
 * the outcome depends on whether an absorbed failure (a slab refill's
 * opportunistic high-order attempt, say) ends the sweep before that
 * allocation is reached: not a result that can be listed as expected.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "../luo_test_common.h"
#include "../luo_fault.h"

#define MAX_N 5000
#define PAGES 24

static const char *const names[] = { "faults-a", "faults-b", "faults-empty", "faults-fd" };
static const int nfiles[] = { 3, 1, 0, 40 };
#define NSESS 4
#define FD_SESSION 3

static void fail(const char *what)
{
	printf("FAULTS: FAIL: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

/* Page p of file `token` of session s starts with this text. */
static void text(char *buf, size_t len, int s, int token, int p)
{
	snprintf(buf, len, "s%d-t%d-p%d", s, token, p);
}

/* Tokens are 100 * session + file, so a file read back is the one it should be. */
static int token_of(int s, int f)
{
	return 100 * s + f;
}

static long kexec_reboot(void)
{
	fflush(stdout);
	return syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
		       LINUX_REBOOT_CMD_KEXEC, NULL);
}

/* Every session still answers and the device still creates and drops a session. */
static void check_usable(int dev, const int *fds)
{
	for (int s = 0; s < NSESS; s++) {
		struct liveupdate_session_get_name g = { .size = sizeof(g) };

		if (ioctl(fds[s], LIVEUPDATE_SESSION_GET_NAME, &g) ||
		    strcmp((char *)g.name, names[s]))
			fail("GET_NAME after a failed reboot");
	}
	if (luo_name_free(dev, "faults-scratch"))
		fail("a new session after a failed reboot");
}

static int stage1(int dev)
{
	long page = getpagesize();
	int fds[NSESS], n, failed = 0;

	for (int s = 0; s < NSESS; s++) {
		struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };

		strcpy((char *)c.name, names[s]);
		if (ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c))
			fail("CREATE_SESSION");
		fds[s] = c.fd;
		for (int f = 0; f < nfiles[s]; f++) {
			struct liveupdate_session_preserve_fd a = {
				.size = sizeof(a), .token = token_of(s, f),
			};
			int m = memfd_create("faults", 0);
			char buf[32];

			if (m < 0 || ftruncate(m, PAGES * page))
				fail("memfd");
			for (int p = 0; p < PAGES; p += 3) {
				text(buf, sizeof(buf), s, a.token, p);
				if (pwrite(m, buf, strlen(buf) + 1, p * page) < 0)
					fail("memfd write");
			}
			a.fd = m;
			if (ioctl(fds[s], LIVEUPDATE_SESSION_PRESERVE_FD, &a))
				fail("PRESERVE_FD");
			close(m);
		}
	}

	if (luo_fault_setup("liveupdate_reboot"))
		fail("fault injection setup");
	for (n = 1; n < MAX_N; n++) {
		long r;
		int injected;

		printf("FAULTS: reboot(KEXEC) with allocation %d under liveupdate_reboot failing\n", n);
		if (luo_fault_arm(n))
			fail("arming fail-nth");
		r = kexec_reboot();
		injected = luo_fault_disarm();
		/* Still here: the reboot failed. */
		if (injected != 1) {
			printf("FAULTS: FAIL: reboot(KEXEC) returned %ld (%s) with no fault injected\n",
			       r, strerror(errno));
			exit(1);
		}
		if (r == 0 || errno != ENOMEM) {
			printf("FAULTS: FAIL: allocation %d under liveupdate_reboot: reboot(KEXEC) returned %ld (%s), expected ENOMEM\n",
			       n, r, strerror(errno));
			exit(1);
		}
		failed++;
		check_usable(dev, fds);
	}
	printf("FAULTS: FAIL: still no kexec after %d allocation failures\n", failed);
	return 1;
}

/*
 * Runs `call` with allocation n failing for n = 1, 2, ... until it succeeds:
 * every failure must be ENOMEM, `want` or EMFILE (when the fd table could
 * not grow). Returns the call's result.
 */
static int with_faults(const char *what, int (*call)(void *), void *arg, int want)
{
	int n, r = -1, failed = 0, absorbed = 0;

	for (n = 1; n < MAX_N; n++) {
		int injected;

		if (luo_fault_arm(n))
			fail("arming fail-nth");
		r = call(arg);
		injected = luo_fault_disarm();
		if (injected < 0)
			fail("reading fail-nth");
		if (r >= 0) {
			/* Done, unless the failure was absorbed (the call cannot be undone). */
			absorbed = injected;
			break;
		}
		if (!injected) {
			printf("FAULTS: FAIL: %s failed with no fault injected: %s\n", what,
			       strerror(-r));
			exit(1);
		}
		if (r != -ENOMEM && r != -want && r != -EMFILE) {
			printf("FAULTS: FAIL: %s, allocation %d: %s\n", what, n, strerror(-r));
			exit(1);
		}
		failed++;
	}
	if (n == MAX_N)
		fail(what);
	printf("FAULTS: %s: failed cleanly %d times, then succeeded%s\n", what, failed,
	       absorbed ? " (with a failure the kernel absorbed)" : "");
	return r;
}

static int open_dev(void *unused)
{
	int fd = open("/dev/liveupdate", O_RDWR);

	return fd < 0 ? -errno : fd;
}

struct call {
	int fd;
	const char *name;
	int token;
};

static int retrieve_session(void *p)
{
	struct call *c = p;
	struct liveupdate_ioctl_retrieve_session r = { .size = sizeof(r) };

	strcpy((char *)r.name, c->name);
	return ioctl(c->fd, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &r) ? -errno : r.fd;
}

static int retrieve_fd(void *p)
{
	struct call *c = p;
	struct liveupdate_session_retrieve_fd r = { .size = sizeof(r), .token = c->token };

	return ioctl(c->fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &r) ? -errno : r.fd;
}

static int finish(void *p)
{
	struct call *c = p;
	struct liveupdate_session_finish f = { .size = sizeof(f) };

	return ioctl(c->fd, LIVEUPDATE_SESSION_FINISH, &f) ? -errno : 0;
}

/* File `token` of session s has its pages back. */
static void check_file(int m, int s, int token)
{
	long page = getpagesize();
	char want[32], got[32];

	for (int p = 0; p < PAGES; p++) {
		memset(got, 0, sizeof(got));
		if (pread(m, got, sizeof(got) - 1, p * page) < 0)
			fail("memfd read");
		if (p % 3) {
			if (got[0])
				fail("a page that was never written has data");
			continue;
		}
		text(want, sizeof(want), s, token, p);
		if (strcmp(got, want)) {
			printf("FAULTS: FAIL: file %d page %d: '%s', expected '%s'\n", token, p, got,
			       want);
			exit(1);
		}
	}
}

/* RETRIEVE_FD failures that a retry recovered from (see fail_once()). */
static int retryable;

/*
 * RETRIEVE_FD with its k-th allocation failing. Returns the fd if the call
 * has no k-th allocation; else the call must have failed cleanly, and a
 * retry without faults must either return the file whole (the failure came
 * before the handler ran) or fail with the same error (the handler consumed
 * the file). Returns -errno then.
 */
static int fail_once(struct call *r, int k)
{
	int m, again, injected;

	if (luo_fault_arm(k))
		fail("arming fail-nth");
	m = retrieve_fd(r);
	injected = luo_fault_disarm();
	if (!injected) {
		if (m < 0) {
			printf("FAULTS: FAIL: RETRIEVE_FD %d failed with no fault injected: %s\n",
			       r->token, strerror(-m));
			exit(1);
		}
		return m;
	}
	if (m >= 0)
		return m; /* absorbed */
	/*
	 * The handler picks the errno: memfd's retrieve reports a failed inode
	 * allocation as ENOSPC (shmem) and a failed kho_restore_vmalloc() as
	 * EINVAL.
	 */
	if (m != -ENOMEM && m != -ENOSPC && m != -EINVAL && m != -EMFILE) {
		printf("FAULTS: FAIL: RETRIEVE_FD %d, allocation %d: %s\n", r->token, k,
		       strerror(-m));
		exit(1);
	}
	/*
	 * A failure before the handler ran left the file as it was: the retry
	 * gets it whole. One inside the handler is final: the same error.
	 */
	again = retrieve_fd(r);
	if (again >= 0) {
		retryable++;
		check_file(again, FD_SESSION, r->token);
		close(again);
	} else if (again != m) {
		printf("FAULTS: FAIL: RETRIEVE_FD %d failed with %s at allocation %d, then with %s\n",
		       r->token, strerror(-m), k, strerror(-again));
		exit(1);
	}
	return m;
}

static int stage2(void)
{
	char what[64];
	int dev;

	if (luo_fault_setup(NULL))
		fail("fault injection setup");
	dev = with_faults("first open of /dev/liveupdate", open_dev, NULL, ENOMEM);
	for (int s = 0; s < NSESS; s++) {
		struct call c = { .fd = dev, .name = names[s] };
		int sfd, sticky = 0, whole = 0;

		snprintf(what, sizeof(what), "RETRIEVE_SESSION %s", names[s]);
		sfd = with_faults(what, retrieve_session, &c, ENOMEM);
		for (int f = 0; f < nfiles[s]; f++) {
			struct call r = { .fd = sfd, .token = token_of(s, f) };
			int m;

			if (s == FD_SESSION && !whole) {
				m = fail_once(&r, f + 1);
				if (m < 0) {
					sticky++;
					continue;
				}
				/* No k-th allocation: this and the later files come back whole. */
				whole = 1;
			} else {
				/* Without faults: see fail_once(). */
				m = retrieve_fd(&r);
				if (m < 0) {
					errno = -m;
					fail("RETRIEVE_FD");
				}
			}
			check_file(m, s, r.token);
			close(m);
		}
		if (s == FD_SESSION) {
			printf("FAULTS: RETRIEVE_FD: %d allocation points, each failed cleanly; %d then retrieved whole, %d consumed by the handler (same error again); %d files retrieved without faults\n",
			       sticky, retryable, sticky - retryable, nfiles[s] - sticky);
			if (!whole)
				fail("RETRIEVE_FD: every file met an allocation failure");
		}
		c.fd = sfd;
		snprintf(what, sizeof(what), "FINISH %s", names[s]);
		with_faults(what, finish, &c, ENOMEM);
		close(sfd);
	}
	printf("FAULTS TEST PASSED (4 sessions, 44 files)\n");
	return 0;
}

int main(int argc, char **argv)
{
	int opt, stage = 1;

	while ((opt = getopt(argc, argv, "s:")) != -1)
		if (opt == 's')
			stage = atoi(optarg);
	if (stage == 2)
		return stage2();
	return luo_two_stage_main(argc, argv, stage1, NULL);
}
