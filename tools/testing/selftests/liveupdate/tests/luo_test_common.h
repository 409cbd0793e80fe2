/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Helpers shared by this project's selftests: what the kernel still holds
 * after a test closed everything.
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
#include <sys/ioctl.h>
#include <linux/liveupdate.h>

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
	struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };

	snprintf((char *)c.name, sizeof(c.name), "%s", name);
	if (ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c)) {
		printf("# session name %s is still taken: %s\n", name, strerror(errno));
		return errno;
	}
	close(c.fd);
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
