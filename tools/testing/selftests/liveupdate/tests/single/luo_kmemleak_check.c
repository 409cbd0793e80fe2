// SPDX-License-Identifier: GPL-2.0
/*
 * The leak checks can see a leak: a sensitivity check of the suite itself.
 *
 * HARNESS: impls=rust-debug cmdline=luo_rs_leak=8
 *
 * With luo_rs_leak=8 (CONFIG_LIVEUPDATE_RUST_FAULT_INJECT) each of the first
 * eight CREATE_SESSIONs leaks a small allocation on purpose. The kmemleak
 * count that luo_fuzz, luo_races and the others require to be 0 must find
 * them; if it did not, their "no leak" verdicts would mean nothing.
 *
 * kmemleak scans conservatively: a stale copy of a pointer (in a cached
 * kernel stack, say) hides that object, so the last leak or two may go
 * unseen. Eight calls overwrite each other's stack slots; at least six of
 * the eight leaks must be found.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "kselftest_harness.h"
#include "../luo_test_common.h"

TEST(kmemleak_finds_a_leak_of_ours)
{
	int status;
	pid_t pid;

	if (access("/sys/kernel/debug/kmemleak", F_OK))
		SKIP(return, "no kmemleak in this kernel");
	/*
	 * A child makes the leaking call and exits, so that no stale copy of
	 * the pointer stays on a live kernel stack (kmemleak scans those).
	 */
	pid = fork();
	ASSERT_GE(pid, 0);
	if (!pid) {
		struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };
		int dev = open("/dev/liveupdate", O_RDWR);

		if (dev < 0)
			_exit(1);
		for (int i = 0; i < 8; i++) {
			snprintf((char *)c.name, sizeof(c.name), "leaky-%d", i);
			if (ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c))
				_exit(1);
			close(c.fd);
		}
		_exit(0);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_EQ(0, status);
	EXPECT_GE(luo_kmemleak_count(), 6) {
		/* Ask kmemleak about the first leaked object (the kernel logged where). */
		char rec[512], *p;
		int k = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);

		while (k >= 0 && read(k, rec, sizeof(rec) - 1) > 0) {
			p = strstr(rec, "leaked 120 bytes at ");
			if (p) {
				char cmd[64];
				FILE *w = fopen("/sys/kernel/debug/kmemleak", "w");

				snprintf(cmd, sizeof(cmd), "dump=%.18s", p + 20);
				printf("# %s\n", cmd);
				if (w) {
					fputs(cmd, w);
					fclose(w);
				}
				break;
			}
		}
		if (k >= 0)
			close(k);

		char line[256];
		FILE *f = fopen("/sys/kernel/debug/kmemleak", "r");

		for (int i = 0; f && i < 30 && fgets(line, sizeof(line), f); i++)
			printf("# %s", line);
		if (f)
			fclose(f);
	}
}

TEST_HARNESS_MAIN
