// SPDX-License-Identifier: GPL-2.0
/*
 * Files found by token in large sessions whatever order their tokens were
 * preserved in. The Rust reader searches a session of more than 8 files whose
 * tokens rise in place and sorts a token index for any other: this checks
 * both, and the small session that is scanned, across a real kexec: every
 * file is retrieved by its token, in an order unlike the preserving one, with
 * its own content, and tokens between and beyond the preserved ones are
 * refused with ENOENT.
 *
 * HARNESS: impls=rust,c-to-rust
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "../luo_test_common.h"

#define FILES 20

static const char *const names[] = { "rising", "falling", "shuffled", "small" };
#define SESSIONS (sizeof(names) / sizeof(names[0]))

static int failures;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		printf("TOKEN ORDER: FAIL line %d: ", __LINE__);	\
		printf(__VA_ARGS__);					\
		printf("\n");						\
		failures++;						\
	}								\
} while (0)

/* The number of files of session s. */
static int files_of(unsigned int s)
{
	return s == 3 ? 5 : FILES;
}

/* The token of the i-th file session s preserves: odd, so even ones are missing. */
static uint64_t token_of(unsigned int s, int i)
{
	int n = files_of(s);

	switch (s) {
	case 0:
		return 1000 + 2 * i + 1;
	case 1:
		return 1000 + 2 * (n - 1 - i) + 1;
	default:
		/* 7 is prime to 20 and 5: a permutation, not in order. */
		return 1000 + 2 * ((i * 7) % n) + 1;
	}
}

static void text_of(char *buf, size_t len, unsigned int s, uint64_t token)
{
	snprintf(buf, len, "%s/%llu", names[s], (unsigned long long)token);
}

static int stage1(int dev)
{
	char text[64];

	for (unsigned int s = 0; s < SESSIONS; s++) {
		int sfd = luo_create(dev, names[s]);

		if (sfd < 0) {
			printf("TOKEN ORDER: FAIL: CREATE_SESSION %s: %s\n", names[s],
			       strerror(-sfd));
			return 1;
		}
		for (int i = 0; i < files_of(s); i++) {
			uint64_t token = token_of(s, i);
			int fd, ret;

			text_of(text, sizeof(text), s, token);
			fd = luo_memfd("token-order", text);
			ret = fd < 0 ? fd : luo_preserve(sfd, fd, token);
			if (ret) {
				printf("TOKEN ORDER: FAIL: PRESERVE_FD %s %llu: %s\n", names[s],
				       (unsigned long long)token, strerror(-ret));
				return 1;
			}
		}
	}
	printf("TOKEN ORDER: preserved %zu sessions\n", SESSIONS);
	luo_hold_fds_until_kexec();
	return 0;
}

static int stage2(int dev)
{
	char want[64], got[64];

	for (unsigned int s = 0; s < SESSIONS; s++) {
		int sfd = luo_retrieve(dev, names[s]), n = files_of(s);

		if (sfd < 0) {
			printf("TOKEN ORDER: FAIL: RETRIEVE_SESSION %s: %s\n", names[s],
			       strerror(-sfd));
			return 1;
		}
		/* Every token, in an order that is not the preserving one. */
		for (int k = 0; k < n; k++) {
			uint64_t token = 1000 + 2 * ((k * 3 + 1) % n) + 1;
			int fd = luo_retrieve_fd(sfd, token);
			ssize_t r;

			CHECK(fd >= 0, "RETRIEVE_FD %s %llu: %s", names[s],
			      (unsigned long long)token, strerror(fd < 0 ? -fd : 0));
			if (fd < 0)
				continue;
			text_of(want, sizeof(want), s, token);
			memset(got, 0, sizeof(got));
			r = pread(fd, got, sizeof(got) - 1, 0);
			CHECK(r == (ssize_t)strlen(want) + 1 && !strcmp(got, want),
			      "file %llu of %s holds \"%s\", not \"%s\"",
			      (unsigned long long)token, names[s], got, want);
			close(fd);
		}
		/* Below, between and beyond the preserved tokens. */
		uint64_t missing[] = { 0, 1000, 1000 + 2 * (n / 2), 1000 + 2 * n + 1, UINT64_MAX };

		for (size_t k = 0; k < sizeof(missing) / sizeof(missing[0]); k++) {
			int fd = luo_retrieve_fd(sfd, missing[k]);

			CHECK(fd == -ENOENT, "RETRIEVE_FD %s %llu gave %d, not -ENOENT", names[s],
			      (unsigned long long)missing[k], fd);
			if (fd >= 0)
				close(fd);
		}
		CHECK(!luo_finish(sfd), "FINISH %s", names[s]);
		close(sfd);
	}
	if (failures)
		return 1;
	printf("TOKEN ORDER TEST PASSED (%zu sessions)\n", SESSIONS);
	return 0;
}

int main(int argc, char **argv)
{
	return luo_two_stage_main(argc, argv, stage1, stage2);
}
