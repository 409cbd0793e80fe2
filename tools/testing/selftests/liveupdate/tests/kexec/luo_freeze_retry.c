// SPDX-License-Identifier: GPL-2.0
/*
 * A live update whose first reboot(KEXEC) fails in a handler's freeze.
 *
 * HARNESS: impls=rust cmdline=luo_rs_fail_freeze=2
 *
 * With luo_rs_fail_freeze=2 (CONFIG_LIVEUPDATE_RUST_FAULT_INJECT) the freeze
 * of the second file fails once. Stage 1 preserves three memfds, calls
 * reboot(KEXEC) itself and expects EAGAIN; the first file, already frozen,
 * must be unfrozen and the session usable again: a fourth memfd is
 * preserved, then reboot(KEXEC) is called again and must kexec. Stage 2
 * checks all four files.
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

#define SESSION "freeze-retry"

static void fail(const char *what)
{
	printf("FREEZE RETRY: FAIL: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static void preserve(int s, int n)
{
	char text[32];
	int fd, r;

	snprintf(text, sizeof(text), "file-%d", n);
	fd = luo_memfd("retry", text);
	errno = -fd;
	if (fd < 0)
		fail("memfd");
	r = luo_preserve(s, fd, n);
	errno = -r;
	if (r)
		fail("PRESERVE_FD");
	close(fd);
}

static long kexec_reboot(void)
{
	fflush(stdout);
	return syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2,
		       LINUX_REBOOT_CMD_KEXEC, NULL);
}

static int stage1(int dev)
{
	struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };
	struct liveupdate_session_get_name g = { .size = sizeof(g) };

	strcpy((char *)c.name, SESSION);
	if (ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c))
		fail("CREATE_SESSION");
	for (int n = 1; n <= 3; n++)
		preserve(c.fd, n);

	if (kexec_reboot() == 0 || errno != EAGAIN)
		fail("the first reboot(KEXEC) did not fail with EAGAIN");
	printf("FREEZE RETRY: first reboot(KEXEC) failed with EAGAIN as injected\n");

	/* Nothing stays frozen: the session can be used and changed again. */
	if (ioctl(c.fd, LIVEUPDATE_SESSION_GET_NAME, &g) || strcmp((char *)g.name, SESSION))
		fail("GET_NAME after the failed reboot");
	preserve(c.fd, 4);
	printf("FREEZE RETRY: session usable again; a fourth file was preserved\n");

	kexec_reboot();
	fail("the second reboot(KEXEC) returned");
	return 1;
}

static int stage2(int dev)
{
	struct liveupdate_ioctl_retrieve_session r = { .size = sizeof(r) };
	struct liveupdate_session_finish f = { .size = sizeof(f) };

	strcpy((char *)r.name, SESSION);
	if (ioctl(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &r))
		fail("RETRIEVE_SESSION");
	for (int n = 1; n <= 4; n++) {
		struct liveupdate_session_retrieve_fd a = { .size = sizeof(a), .token = n };
		char want[32], got[32] = "";

		if (ioctl(r.fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &a))
			fail("RETRIEVE_FD");
		snprintf(want, sizeof(want), "file-%d", n);
		if (pread(a.fd, got, sizeof(got) - 1, 0) <= 0 || strcmp(got, want))
			fail("file content");
		close(a.fd);
	}
	if (ioctl(r.fd, LIVEUPDATE_SESSION_FINISH, &f))
		fail("FINISH");
	printf("FREEZE RETRY TEST PASSED (4 files)\n");
	return 0;
}

int main(int argc, char **argv)
{
	return luo_two_stage_main(argc, argv, stage1, stage2);
}
