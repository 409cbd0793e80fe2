/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by this project's selftests: the LUO ioctls, two-stage
 * mains, and what the kernel still holds after a test closed everything.
 */
#ifndef LUO_TEST_COMMON_H
#define LUO_TEST_COMMON_H

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <linux/liveupdate.h>

/*
 * The LUO ioctls with full-size structs: each returns the new fd (or 0) on
 * success and -errno on failure.
 */
static inline int luo_create(int dev, const char *name)
{
	struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };

	snprintf((char *)c.name, sizeof(c.name), "%s", name);
	return ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c) ? -errno : c.fd;
}

static inline int luo_retrieve(int dev, const char *name)
{
	struct liveupdate_ioctl_retrieve_session r = { .size = sizeof(r) };

	snprintf((char *)r.name, sizeof(r.name), "%s", name);
	return ioctl(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &r) ? -errno : r.fd;
}

static inline int luo_preserve(int s, int fd, uint64_t token)
{
	struct liveupdate_session_preserve_fd p = {
		.size = sizeof(p), .fd = fd, .token = token,
	};

	return ioctl(s, LIVEUPDATE_SESSION_PRESERVE_FD, &p) ? -errno : 0;
}

static inline int luo_retrieve_fd(int s, uint64_t token)
{
	struct liveupdate_session_retrieve_fd r = { .size = sizeof(r), .token = token };

	return ioctl(s, LIVEUPDATE_SESSION_RETRIEVE_FD, &r) ? -errno : r.fd;
}

static inline int luo_finish(int s)
{
	struct liveupdate_session_finish f = { .size = sizeof(f) };

	return ioctl(s, LIVEUPDATE_SESSION_FINISH, &f) ? -errno : 0;
}

/*
 * A new memfd named `name` holding `text` with its NUL (empty if `text` is
 * NULL); -errno on failure.
 */
static inline int luo_memfd(const char *name, const char *text)
{
	int fd = memfd_create(name, 0);

	if (fd < 0)
		return -errno;
	if (text && write(fd, text, strlen(text) + 1) != (ssize_t)strlen(text) + 1) {
		int e = -errno;

		close(fd);
		return e ? e : -EIO;
	}
	return fd;
}

/*
 * main() of a two-kernel test: "-s 1" (the default) or "-s 2", as the
 * harness's init passes it, runs that stage with /dev/liveupdate open.
 */
static inline int luo_two_stage_main(int argc, char **argv, int (*stage1)(int dev),
				     int (*stage2)(int dev))
{
	int stage = 1, opt, dev;

	while ((opt = getopt(argc, argv, "s:")) != -1)
		if (opt == 's')
			stage = atoi(optarg);
	dev = open("/dev/liveupdate", O_RDWR);
	if (dev < 0) {
		printf("FAIL: open /dev/liveupdate: %s\n", strerror(errno));
		return 1;
	}
	return stage == 2 ? stage2(dev) : stage1(dev);
}

/*
 * Sessions live as long as their fds: a child keeps this process's fds
 * open until the kexec, while the caller returns to init.
 */
static inline void luo_hold_fds_until_kexec(void)
{
	fflush(stdout);
	if (fork() == 0) {
		setsid();
		for (;;)
			pause();
	}
}

/* The "Shmem:" line of /proc/meminfo (memfd pages), in kB; -1 if unknown. */
static inline long luo_shmem_kb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Shmem: %ld kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

/* 0 if an outgoing session named `name` can be created (the name is free), else errno. */
static inline int luo_name_free(int dev, const char *name)
{
	int s = luo_create(dev, name);

	if (s < 0) {
		printf("# session name %s is still taken: %s\n", name, strerror(-s));
		return -s;
	}
	close(s);
	return 0;
}

/*
 * Asks kmemleak (debug kernels) for unreferenced objects allocated by the
 * live update code; returns how many it reports, 0 without kmemleak.
 */
/*
 * Shrinks every slab cache. SLUB's per-CPU sheaves are kmalloc'd arrays that
 * keep stale pointers to objects already handed out, and kmemleak scans them:
 * until they are flushed and freed, a leaked object looks referenced.
 */
static inline void luo_slab_shrink(void)
{
	char path[512];
	struct dirent *e;
	DIR *d = opendir("/sys/kernel/slab");

	while (d && (e = readdir(d))) {
		int fd;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/slab/%s/shrink", e->d_name);
		fd = open(path, O_WRONLY);
		if (fd >= 0) {
			if (write(fd, "1", 1) != 1)
				printf("# shrinking %s: %s\n", e->d_name, strerror(errno));
			close(fd);
		}
	}
	if (d)
		closedir(d);
}

static inline int luo_kmemleak_count(void)
{
	const char *path = "/sys/kernel/debug/kmemleak";
	char line[256];
	int leaks = 0, ours = 0;
	FILE *f;

	if (access(path, F_OK))
		return 0;
	luo_slab_shrink();
	/* Objects younger than about 5 s are not reported. */
	sleep(6);
	for (int i = 0; i < 2; i++) {
		f = fopen(path, "w");
		if (!f)
			return 0;
		fputs("scan", f);
		fclose(f);
	}
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (strstr(line, "unreferenced object")) {
			leaks += ours;
			ours = 0;
		}
		if (strstr(line, "liveupdate") || strstr(line, "luo_") || strstr(line, "memfd"))
			ours = 1;
	}
	leaks += ours;
	if (f)
		fclose(f);
	printf("# kmemleak: %d unreferenced objects from live update code\n", leaks);
	return leaks;
}

/*
 * Whether what a test's memfds used (Shmem, `before` kB at the start) was
 * released (two pages of slack) and kmemleak finds nothing of ours.
 */
static inline int luo_memory_released(long before)
{
	long after;

	usleep(100000);
	after = luo_shmem_kb();
	printf("# Shmem before %ld kB, after %ld kB\n", before, after);
	return after <= before + 8 && luo_kmemleak_count() == 0;
}

#endif /* LUO_TEST_COMMON_H */
