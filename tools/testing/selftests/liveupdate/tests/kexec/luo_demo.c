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

	/* The session lives as long as its fd: hand it to a daemon. */
	switch (fork()) {
	case -1:
		die("fork");
	case 0:
		setsid();
		for (;;)
			pause();
	}
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
	int stage = 1, opt, luo;

	while ((opt = getopt(argc, argv, "s:")) != -1)
		if (opt == 's')
			stage = atoi(optarg);
	luo = open("/dev/liveupdate", O_RDWR);
	if (luo < 0)
		die("open /dev/liveupdate");
	return stage == 2 ? stage2(luo) : stage1(luo);
}
