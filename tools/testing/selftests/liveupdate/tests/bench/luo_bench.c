// SPDX-License-Identifier: GPL-2.0
/*
 * The benchmark's guest program (bench.sh runs it; it is not a pass/fail test).
 *
 * The scenario comes from the kernel command line:
 *
 *   luo_bench=kexec:S:F[:M]
 *                         two kernels (luo_harness=kexec). Stage 1 creates S
 *                         sessions of F one-page memfds each (of M MiB each
 *                         with :M, every page written), timing every
 *                         CREATE_SESSION, PRESERVE_FD and GET_NAME (and, with
 *                         luo_bench_close=K, K closes of an outgoing session
 *                         with one file first), reads the TSC and calls
 *                         reboot(KEXEC) itself. Stage 2 reads the TSC first,
 *                         then times the first open of /dev/liveupdate and
 *                         every RETRIEVE_SESSION, RETRIEVE_FD and FINISH,
 *                         and checks every file (with :M, a word in every
 *                         page).
 *   luo_bench=scale:N     one kernel (luo_harness=single): the time of the
 *                         n-th CREATE_SESSION for n = 1..N, then of the n-th
 *                         PRESERVE_FD of an empty memfd into one session
 *                         (100,000 pinned pages would not fit: what is
 *                         measured is the LUO's cost, not memfd's); each
 *                         phase stops early
 *                         when it has used its time budget (a quadratic
 *                         implementation would otherwise run for hours).
 *
 * Output lines start with "BENCH ": "BENCH <op> n=<samples> median=<ns>
 * p99=<ns>" for timed operations, "BENCH scale_<op> N=<n> median=<ns>" for the
 * median of operations n/2+1..n, "BENCH first_open ns=<ns>", "BENCH retrieve_all
 * ns=<ns>" (every session and file retrieved, back to back), and "BENCH tsc
 * stage1=<ticks>", "BENCH tsc stage2=<ticks>"
 * and "BENCH tsc mhz=<MHz>" for the whole cycle, reboot(KEXEC) to stage 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#define SCALE_BUDGET_S 60

static void fail(const char *what)
{
	printf("BENCH FAIL: %s: %s\n", what, strerror(errno));
	fflush(stdout);
	exit(1);
}

static inline uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + t.tv_nsec;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Prints the median and 99th percentile of n samples (sorts a copy). */
static void stat(const char *name, const uint64_t *v, size_t n)
{
	uint64_t *s;

	if (!n)
		return;
	s = malloc(n * sizeof(*s));
	if (!s)
		fail("malloc");
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_u64);
	printf("BENCH %s n=%zu median=%llu p99=%llu\n", name, n,
	       (unsigned long long)s[n / 2], (unsigned long long)s[(n * 99) / 100]);
	free(s);
}

static uint64_t *samples(size_t n)
{
	uint64_t *v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		fail("calloc");
	return v;
}

static void raise_nofile(void)
{
	struct rlimit r = { .rlim_cur = 300000, .rlim_max = 300000 };

	if (setrlimit(RLIMIT_NOFILE, &r))
		fail("setrlimit(RLIMIT_NOFILE)");
}

/* Size of each memfd beyond its first page (luo_bench=kexec:S:F:M), bytes. */
static size_t payload;

/* The word written at page p of a payload memfd. */
static uint64_t payload_word(unsigned long id, size_t p)
{
	return ((uint64_t)id << 40) ^ p ^ 0x5a5a5a5aull;
}

/* Writes (or checks) a word in every page of a payload memfd. */
static void payload_pages(int m, unsigned long id, int check)
{
	size_t pg = getpagesize(), p;
	uint64_t *v = mmap(NULL, payload, PROT_READ | PROT_WRITE, MAP_SHARED, m, 0);

	if (v == MAP_FAILED)
		fail("mmap payload");
	for (p = 1; p < payload / pg; p++) {
		uint64_t *w = v + p * (pg / sizeof(*v));

		if (!check)
			*w = payload_word(id, p);
		else if (*w != payload_word(id, p))
			fail("payload contents");
	}
	munmap(v, payload);
}

static int memfd_page(unsigned long id)
{
	int m = memfd_create("bench", 0);
	size_t size = payload ? payload : (size_t)getpagesize();

	if (m < 0 || ftruncate(m, size) || pwrite(m, &id, sizeof(id), 0) != sizeof(id))
		fail("memfd");
	if (payload)
		payload_pages(m, id, 0);
	return m;
}

static void name_of(char *buf, size_t len, const char *prefix, unsigned long i)
{
	snprintf(buf, len, "%s-%08lu", prefix, i);
}

static int create_timed(int dev, const char *name, uint64_t *t)
{
	struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };
	uint64_t t0;

	snprintf((char *)c.name, sizeof(c.name), "%s", name);
	t0 = now_ns();
	if (ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c))
		fail("CREATE_SESSION");
	*t = now_ns() - t0;
	return c.fd;
}

static void preserve_timed(int s, int fd, uint64_t token, uint64_t *t)
{
	struct liveupdate_session_preserve_fd a = { .size = sizeof(a), .fd = fd, .token = token };
	uint64_t t0 = now_ns();

	if (ioctl(s, LIVEUPDATE_SESSION_PRESERVE_FD, &a))
		fail("PRESERVE_FD");
	*t = now_ns() - t0;
}

/* The value of `key` on the kernel command line, or NULL. */
static const char *param(const char *key)
{
	static char line[4096];
	char *p;
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t len = fd >= 0 ? read(fd, line, sizeof(line) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (len <= 0)
		return NULL;
	line[len] = 0;
	for (p = strtok(line, " \n"); p; p = strtok(NULL, " \n"))
		if (!strncmp(p, key, strlen(key)) && p[strlen(key)] == '=')
			return p + strlen(key) + 1;
	return NULL;
}

static void kmsg_facts(void);

static int stage1(unsigned long nsess, unsigned long nfiles, unsigned long nclose)
{
	unsigned long n = nsess * nfiles, i, f;
	uint64_t *t_create = samples(nsess), *t_pres = samples(n), *t_name = samples(nsess);
	uint64_t *t_close = samples(nclose), t0, tsc;
	int dev = open("/dev/liveupdate", O_RDWR);
	char name[64];

	if (dev < 0)
		fail("open /dev/liveupdate");
	raise_nofile();
	for (i = 0; i < nclose; i++) {
		int s, m = memfd_page(i);

		name_of(name, sizeof(name), "close", i);
		s = create_timed(dev, name, &t0);
		preserve_timed(s, m, 1, &t0);
		close(m);
		t0 = now_ns();
		close(s);
		t_close[i] = now_ns() - t0;
	}
	for (i = 0; i < nsess; i++) {
		struct liveupdate_session_get_name g = { .size = sizeof(g) };
		int s;

		name_of(name, sizeof(name), "bench", i);
		s = create_timed(dev, name, &t_create[i]);
		for (f = 0; f < nfiles; f++) {
			int m = memfd_page(i * nfiles + f);

			preserve_timed(s, m, f, &t_pres[i * nfiles + f]);
			close(m);
		}
		t0 = now_ns();
		if (ioctl(s, LIVEUPDATE_SESSION_GET_NAME, &g))
			fail("GET_NAME");
		t_name[i] = now_ns() - t0;
		/* The session fd stays open: it is preserved until the kexec. */
	}
	stat("close_session_1file", t_close, nclose);
	stat("create_session", t_create, nsess);
	stat("preserve_fd", t_pres, n);
	stat("get_name", t_name, nsess);
	fflush(stdout);
	tsc = rdtsc();
	printf("BENCH tsc stage1=%llu\n", (unsigned long long)tsc);
	fflush(stdout);
	syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_KEXEC, NULL);
	fail("reboot(KEXEC) returned");
	return 1;
}

static int stage2(unsigned long nsess, unsigned long nfiles)
{
	uint64_t tsc = rdtsc(), t0, t_open, t_all;
	unsigned long n = nsess * nfiles, i, f;
	int *sfd, *ffd;
	uint64_t *t_rs = samples(nsess), *t_rf = samples(n), *t_fin = samples(nsess);
	char name[64];
	int dev;

	printf("BENCH tsc stage2=%llu\n", (unsigned long long)tsc);
	raise_nofile();
	t0 = now_ns();
	dev = open("/dev/liveupdate", O_RDWR);
	t_open = now_ns() - t0;
	if (dev < 0)
		fail("open /dev/liveupdate");
	printf("BENCH first_open ns=%llu\n", (unsigned long long)t_open);
	/*
	 * What an agent does first: every session and every file back, timed
	 * as a whole (retrieve_all) and per call. Contents are checked and
	 * sessions finished afterwards.
	 */
	sfd = calloc(nsess, sizeof(*sfd));
	ffd = calloc(n ? n : 1, sizeof(*ffd));
	if (!sfd || !ffd)
		fail("calloc");
	t_all = now_ns();
	for (i = 0; i < nsess; i++) {
		struct liveupdate_ioctl_retrieve_session r = { .size = sizeof(r) };

		name_of(name, sizeof(name), "bench", i);
		strcpy((char *)r.name, name);
		t0 = now_ns();
		if (ioctl(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &r))
			fail("RETRIEVE_SESSION");
		t_rs[i] = now_ns() - t0;
		sfd[i] = r.fd;
		for (f = 0; f < nfiles; f++) {
			struct liveupdate_session_retrieve_fd a = { .size = sizeof(a), .token = f };

			t0 = now_ns();
			if (ioctl(r.fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &a))
				fail("RETRIEVE_FD");
			t_rf[i * nfiles + f] = now_ns() - t0;
			ffd[i * nfiles + f] = a.fd;
		}
	}
	t_all = now_ns() - t_all;
	printf("BENCH retrieve_all ns=%llu\n", (unsigned long long)t_all);
	for (i = 0; i < nsess; i++) {
		struct liveupdate_session_finish fin = { .size = sizeof(fin) };

		for (f = 0; f < nfiles; f++) {
			unsigned long id = 0;
			int fd = ffd[i * nfiles + f];

			if (pread(fd, &id, sizeof(id), 0) != sizeof(id) || id != i * nfiles + f)
				fail("file contents");
			if (payload)
				payload_pages(fd, id, 1);
			close(fd);
		}
		t0 = now_ns();
		if (ioctl(sfd[i], LIVEUPDATE_SESSION_FINISH, &fin))
			fail("FINISH");
		t_fin[i] = now_ns() - t0;
		close(sfd[i]);
	}
	stat("retrieve_session", t_rs, nsess);
	stat("retrieve_fd", t_rf, n);
	stat("finish", t_fin, nsess);
	kmsg_facts();
	printf("BENCH TEST PASSED\n");
	return 0;
}

/* The TSC frequency, from the kernel log buffer. */
static void kmsg_facts(void)
{
	char rec[1024], mhz[32] = "";
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK);
	ssize_t len;

	if (fd < 0)
		fail("open /dev/kmsg");
	for (;;) {
		char *msg, *p;

		len = read(fd, rec, sizeof(rec) - 1);
		if (len < 0 && errno == EPIPE)
			continue;
		if (len <= 0)
			break;
		rec[len] = 0;
		msg = strchr(rec, ';');
		if (!msg)
			continue;
		msg++;
		p = strstr(msg, "tsc: Detected ");
		if (p)
			sscanf(p, "tsc: Detected %31s MHz", mhz);
		p = strstr(msg, "Refined TSC clocksource calibration: ");
		if (p)
			sscanf(p, "Refined TSC clocksource calibration: %31s MHz", mhz);
	}
	close(fd);
	if (mhz[0])
		printf("BENCH tsc mhz=%s\n", mhz);
}

/* Median of v[lo..hi). */
static uint64_t median(const uint64_t *v, size_t lo, size_t hi)
{
	uint64_t *s = samples(hi - lo), m;

	memcpy(s, v + lo, (hi - lo) * sizeof(*s));
	qsort(s, hi - lo, sizeof(*s), cmp_u64);
	m = s[(hi - lo) / 2];
	free(s);
	return m;
}

static void report_scale(const char *op, const uint64_t *v, size_t done, size_t max)
{
	for (size_t n = 10; n <= max; n *= 10) {
		if (n > done)
			printf("BENCH scale_%s N=%zu not-reached (stopped after %zu in %d s)\n",
			       op, n, done, SCALE_BUDGET_S);
		else
			printf("BENCH scale_%s N=%zu median=%llu\n", op, n,
			       (unsigned long long)median(v, n / 2, n));
	}
}

static int scale(unsigned long max)
{
	uint64_t *t = samples(max), start;
	int dev = open("/dev/liveupdate", O_RDWR), s;
	unsigned long i, done;
	char name[64];

	if (dev < 0)
		fail("open /dev/liveupdate");
	raise_nofile();
	int *fds = calloc(max, sizeof(int));

	if (!fds)
		fail("calloc");
	start = now_ns();
	for (done = 0; done < max; done++) {
		if (!(done % 1000) && now_ns() - start > SCALE_BUDGET_S * 1000000000ull)
			break;
		name_of(name, sizeof(name), "scale", done);
		fds[done] = create_timed(dev, name, &t[done]);
	}
	report_scale("create_session", t, done, max);
	fflush(stdout);
	for (i = 0; i < done; i++)
		close(fds[i]);

	s = create_timed(dev, "scale-files", &t[0]);
	start = now_ns();
	for (done = 0; done < max; done++) {
		int m;

		if (!(done % 1000) && now_ns() - start > SCALE_BUDGET_S * 1000000000ull)
			break;
		m = memfd_create("scale", 0);
		if (m < 0)
			fail("memfd_create");
		preserve_timed(s, m, done, &t[done]);
		close(m);
	}
	report_scale("preserve_fd", t, done, max);
	close(s);
	printf("BENCH TEST PASSED\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *mode = param("luo_bench"), *c = param("luo_bench_close");
	unsigned long a = 0, b = 0, mib = 0;
	int opt, stage = 1;

	while ((opt = getopt(argc, argv, "s:")) != -1)
		if (opt == 's')
			stage = atoi(optarg);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (mode && sscanf(mode, "scale:%lu", &a) == 1)
		return scale(a);
	if (!mode || sscanf(mode, "kexec:%lu:%lu:%lu", &a, &b, &mib) < 2)
		fail("no luo_bench=kexec:S:F[:M] or luo_bench=scale:N on the command line");
	payload = mib << 20;
	if (stage == 2)
		return stage2(a, b);
	return stage1(a, b, c ? strtoul(c, NULL, 0) : 0);
}
