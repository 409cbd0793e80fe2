// SPDX-License-Identifier: GPL-2.0
/*
 * The README's demo: a live update that carries a message in a memfd.
 *
 * Stage 1: create session "demo", preserve a memfd holding a message, keep
 * the session fd open in a daemon and let init reboot(KEXEC).
 * Stage 2: retrieve session "demo", retrieve the memfd, print the message,
 * FINISH the session.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "../luo_test_common.h"

#define SESSION "demo"
#define TOKEN 0xde70

static void die(const char *what)
{
	printf("DEMO: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int stage1(int luo)
{
	struct liveupdate_ioctl_create_session cs = { .size = sizeof(cs) };
	struct liveupdate_session_preserve_fd pf = { .size = sizeof(pf) };
	char msg[256];
	int mfd;

	snprintf(msg, sizeof(msg),
		 "Hello from the kernel before the live update (pid %d)", getpid());
	strcpy((char *)cs.name, SESSION);
	if (ioctl(luo, LIVEUPDATE_IOCTL_CREATE_SESSION, &cs))
		die("CREATE_SESSION");
	mfd = memfd_create("demo", 0);
	if (mfd < 0 || write(mfd, msg, strlen(msg) + 1) < 0)
		die("memfd");
	pf.fd = mfd;
	pf.token = TOKEN;
	if (ioctl(cs.fd, LIVEUPDATE_SESSION_PRESERVE_FD, &pf))
		die("PRESERVE_FD");
	close(mfd);
	close(luo);
	printf("DEMO: stage 1: preserved \"%s\" in session \"%s\"\n", msg, SESSION);
	fflush(stdout);

	luo_hold_fds_until_kexec();
	return 0;
}

static int stage2(int luo)
{
	struct liveupdate_ioctl_retrieve_session rs = { .size = sizeof(rs) };
	struct liveupdate_session_retrieve_fd rf = { .size = sizeof(rf) };
	struct liveupdate_session_finish fin = { .size = sizeof(fin) };
	char msg[256] = "";

	strcpy((char *)rs.name, SESSION);
	if (ioctl(luo, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &rs))
		die("RETRIEVE_SESSION");
	rf.token = TOKEN;
	if (ioctl(rs.fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &rf))
		die("RETRIEVE_FD");
	if (pread(rf.fd, msg, sizeof(msg) - 1, 0) <= 0)
		die("read memfd");
	printf("DEMO: stage 2: the memfd survived the kexec and says: \"%s\"\n", msg);
	if (ioctl(rs.fd, LIVEUPDATE_SESSION_FINISH, &fin))
		die("FINISH");
	if (strncmp(msg, "Hello from the kernel before the live update", 44)) {
		printf("DEMO: unexpected message\n");
		return 1;
	}
	printf("DEMO TEST PASSED\n");
	return 0;
}

int main(int argc, char **argv)
{
	return luo_two_stage_main(argc, argv, stage1, stage2);
}
