// SPDX-License-Identifier: GPL-2.0
/*
 * Torture: random concurrent session work, cut by reboot(KEXEC) at a random
 * moment, checked in the next kernel; one seeded round per stage.
 *
 * HARNESS: impls=c,rust stages=15 stages@rust-debug=7 stages@c=2 flb=no
 *
 * Each stage but the last runs a round: it creates session "log" holding a
 * memfd that is the round's log (mapped shared, so its content at the kexec
 * is what crosses), starts 8 worker threads that create, fill, preserve into,
 * name and close sessions on shared fds, and retrieve, finish and close the
 * previous round's incoming sessions, each writing what it is about to do
 * and what came of it to the log, and a ninth thread that calls
 * reboot(KEXEC) at a random moment. Round k's seed is base * 1000 + k: the
 * base is random, or luo_torture_base= on the kernel command line to replay
 * a run; every round prints its seed. 14 rounds on rust, 6 on rust-debug,
 * one on c.
 *
 * Each stage after the first reads the previous round's log and checks the
 * hand-over against it: a session whose creation succeeded and whose close
 * had not started when reboot was called is there; a session whose close
 * ended before that (before the reboot record was taken: a close that
 * returns while reboot serializes leaves the session as handed over) is not; a session that is there holds exactly the files
 * whose PRESERVE_FD returned 0 (and, for calls still in flight, perhaps
 * those), each with its content intact; nothing else is there. Operations
 * logged after the reboot call may or may not have made it. The last stage
 * finishes everything and checks that the memory is released.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "../luo_test_common.h"

#define WORKERS 8
#define SLOTS 24
#define LOG_BYTES (2 << 20)
#define MAX_SESSIONS 1024
#define MAX_FILES 512

enum op { OP_CREATE = 1, OP_PRESERVE, OP_CLOSE, OP_REBOOT };

/* One log record: written whole, then `done` set (0: intent only). */
struct rec {
	uint32_t seq;		/* position + 1 */
	uint8_t op, done;
	uint16_t thread;
	int32_t result;		/* 0 or -errno, valid once done */
	uint32_t session;	/* session id: round-unique, names "t<round>-<id>" */
	uint32_t pages;		/* PRESERVE: memfd size in pages */
	uint64_t token;
	uint32_t done_at;	/* records begun when it ended (lg->next), valid once done */
};

struct log {
	uint64_t magic;
	uint64_t seed;
	_Atomic uint32_t next;
	uint32_t round;
	struct rec recs[];
};

#define LOG_MAGIC 0x4c554f546f727475ULL
#define MAX_RECS ((LOG_BYTES - sizeof(struct log)) / sizeof(struct rec))

static int dev;
static struct log *lg;
static int failures;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		printf("TORTURE: FAIL line %d: ", __LINE__);		\
		printf(__VA_ARGS__);					\
		printf("\n");						\
		failures++;						\
	}								\
} while (0)

static void __attribute__((noreturn)) die(const char *what)
{
	printf("TORTURE: FAIL: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The byte at offset i of the file (session, token) holds. */
static uint8_t pattern(uint32_t session, uint64_t token, size_t i)
{
	uint64_t x = (session * 0x9e3779b97f4a7c15ULL) ^ token ^ (i / 8 * 0xbf58476d1ce4e5b9ULL);

	x ^= x >> 31;
	return x >> (8 * (i % 8));
}

static struct rec *log_intent(enum op op, int thread, uint32_t session, uint64_t token,
			      uint32_t pages)
{
	uint32_t n = atomic_fetch_add(&lg->next, 1);
	struct rec *r;

	if (n >= MAX_RECS)
		return NULL;
	r = &lg->recs[n];
	r->op = op;
	r->thread = thread;
	r->session = session;
	r->token = token;
	r->pages = pages;
	atomic_thread_fence(memory_order_release);
	r->seq = n + 1;
	return r;
}

static void log_done(struct rec *r, int result)
{
	r->result = result;
	r->done_at = atomic_load(&lg->next);
	atomic_thread_fence(memory_order_release);
	r->done = 1;
}

static void session_name(char *name, size_t len, uint32_t round, uint32_t id)
{
	snprintf(name, len, "t%u-%u", round, id);
}

/* ---------------------------------------------------------------- round -- */

struct slot {
	pthread_rwlock_t lock;
	int fd;			/* -1: empty */
	uint32_t session;
	int incoming;
};

static struct slot slots[SLOTS];
static _Atomic uint32_t next_session = 1;
static _Atomic int stop;
static uint64_t seed;

static void do_create(int t, struct slot *sl)
{
	struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };
	uint32_t id = atomic_fetch_add(&next_session, 1);
	struct rec *r;

	if (sl->fd >= 0 || id >= MAX_SESSIONS)
		return;
	session_name((char *)c.name, sizeof(c.name), lg->round, id);
	r = log_intent(OP_CREATE, t, id, 0, 0);
	if (!r)
		return;
	if (ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c)) {
		log_done(r, -errno);
		return;
	}
	sl->fd = c.fd;
	sl->session = id;
	sl->incoming = 0;
	log_done(r, 0);
}

static void do_preserve(int t, struct slot *sl, uint64_t *rs, uint64_t *count)
{
	struct liveupdate_session_preserve_fd p = { .size = sizeof(p) };
	uint32_t pages = 1 + rnd(rs) % 3;
	size_t len = pages * 4096;
	struct rec *r;
	uint8_t *buf;
	int fd;

	if (sl->fd < 0 || sl->incoming)
		return;
	p.token = ((uint64_t)t << 32) | ++*count;
	fd = memfd_create("torture", 0);
	buf = malloc(len);
	if (fd < 0 || !buf)
		die("memfd");
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern(sl->session, p.token, i);
	if (write(fd, buf, len) != (ssize_t)len)
		die("write memfd");
	free(buf);
	p.fd = fd;
	r = log_intent(OP_PRESERVE, t, sl->session, p.token, pages);
	if (r)
		log_done(r, ioctl(sl->fd, LIVEUPDATE_SESSION_PRESERVE_FD, &p) ? -errno : 0);
	close(fd);
}

static void do_close(int t, struct slot *sl)
{
	struct rec *r;

	if (sl->fd < 0)
		return;
	r = sl->incoming ? NULL : log_intent(OP_CLOSE, t, sl->session, 0, 0);
	if (!sl->incoming && !r)
		return;
	close(sl->fd);
	sl->fd = -1;
	if (r)
		log_done(r, 0);
}

static void do_other(struct slot *sl, uint64_t *rs)
{
	struct liveupdate_session_get_name g = { .size = sizeof(g) };
	struct liveupdate_session_finish f = { .size = sizeof(f) };
	struct liveupdate_session_retrieve_fd rf = { .size = sizeof(rf) };

	if (sl->fd < 0)
		return;
	switch (rnd(rs) % 3) {
	case 0:
		ioctl(sl->fd, LIVEUPDATE_SESSION_GET_NAME, &g);
		break;
	case 1:
		/* Outgoing sessions refuse it (EINVAL). */
		ioctl(sl->fd, LIVEUPDATE_SESSION_FINISH, &f);
		break;
	default:
		rf.token = rnd(rs) % 4;
		if (!ioctl(sl->fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &rf))
			close(rf.fd);
	}
}

static void *worker(void *arg)
{
	int t = (int)(long)arg;
	uint64_t rs = seed * 31 + t + 1, count = 0;

	while (!stop) {
		struct slot *sl = &slots[rnd(&rs) % SLOTS];
		unsigned int what = rnd(&rs) % 100;

		if (what < 10) {
			pthread_rwlock_wrlock(&sl->lock);
			do_close(t, sl);
		} else if (what < 25) {
			pthread_rwlock_wrlock(&sl->lock);
			do_create(t, sl);
		} else if (what < 75) {
			pthread_rwlock_rdlock(&sl->lock);
			do_preserve(t, sl, &rs, &count);
		} else {
			pthread_rwlock_rdlock(&sl->lock);
			do_other(sl, &rs);
		}
		pthread_rwlock_unlock(&sl->lock);
	}
	return NULL;
}

static void *rebooter(void *arg)
{
	uint64_t rs = seed ^ 0x5eed;
	struct rec *r;

	usleep(100000 + rnd(&rs) % 300000);
	r = log_intent(OP_REBOOT, WORKERS, 0, 0, 0);
	if (!r)
		die("the log is full");
	printf("TORTURE: reboot(KEXEC) after %u log records\n", r->seq);
	fflush(stdout);
	reboot(LINUX_REBOOT_CMD_KEXEC);
	printf("TORTURE: FAIL: reboot(KEXEC): %s\n", strerror(errno));
	fflush(stdout);
	_exit(1);
}

/* Creates the round's log, preserved in session "log" of this round. */
static void log_create(uint32_t round)
{
	struct liveupdate_ioctl_create_session c = { .size = sizeof(c) };
	struct liveupdate_session_preserve_fd p = { .size = sizeof(p), .token = 1 };
	int fd = memfd_create("torture-log", 0);

	/* Every page exists before it is preserved: writes land in preserved folios. */
	if (fd < 0 || ftruncate(fd, LOG_BYTES) || fallocate(fd, 0, 0, LOG_BYTES))
		die("log memfd");
	lg = mmap(NULL, LOG_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (lg == MAP_FAILED)
		die("mmap log");
	memset(lg, 0, LOG_BYTES);
	lg->magic = LOG_MAGIC;
	lg->seed = seed;
	lg->round = round;
	snprintf((char *)c.name, sizeof(c.name), "log-%u", round);
	if (ioctl(dev, LIVEUPDATE_IOCTL_CREATE_SESSION, &c))
		die("CREATE_SESSION log");
	p.fd = fd;
	if (ioctl(c.fd, LIVEUPDATE_SESSION_PRESERVE_FD, &p))
		die("PRESERVE_FD log");
	close(fd);
}

static void __attribute__((noreturn)) run_round(uint32_t round, int *incoming, int n_incoming)
{
	pthread_t w[WORKERS], rb;

	printf("# seed %llu (round %u)\n", (unsigned long long)seed, round);
	log_create(round);
	for (int i = 0; i < SLOTS; i++) {
		pthread_rwlock_init(&slots[i].lock, NULL);
		slots[i].fd = -1;
	}
	/* The previous round's sessions, retrieved and checked: raced over too. */
	for (int i = 0; i < n_incoming && i < SLOTS / 2; i++) {
		slots[i].fd = incoming[i];
		slots[i].incoming = 1;
	}
	fflush(stdout);
	for (long i = 0; i < WORKERS; i++)
		pthread_create(&w[i], NULL, worker, (void *)i);
	pthread_create(&rb, NULL, rebooter, NULL);
	pthread_join(rb, NULL);
	die("unreachable");
}

/* ---------------------------------------------------------------- check -- */

struct expect {
	uint32_t id;
	int must, may;		/* the session must / may be there */
	int n_files;
	struct {
		uint64_t token;
		uint32_t pages;
		int must;
	} files[MAX_FILES];
};

static struct expect expects[MAX_SESSIONS];

static int read_log(uint32_t round, struct log **out)
{
	struct liveupdate_ioctl_retrieve_session r = { .size = sizeof(r) };
	struct liveupdate_session_retrieve_fd f = { .size = sizeof(f), .token = 1 };
	struct log *l;

	snprintf((char *)r.name, sizeof(r.name), "log-%u", round);
	if (ioctl(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &r))
		die("RETRIEVE_SESSION log");
	f.size = sizeof(f);
	if (ioctl(r.fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &f))
		die("RETRIEVE_FD log");
	l = mmap(NULL, LOG_BYTES, PROT_READ, MAP_PRIVATE, f.fd, 0);
	if (l == MAP_FAILED || l->magic != LOG_MAGIC || l->round != round)
		die("the log of the previous round");
	close(f.fd);
	*out = l;
	return r.fd;
}

/* Checks the previous round's hand-over; returns the retrieved sessions' fds. */
static int check_round(uint32_t round, int *fds, uint64_t *base)
{
	struct log *l;
	uint32_t n, reboot_at = 0;
	int log_fd, n_fds = 0;

	log_fd = read_log(round, &l);
	n = atomic_load(&l->next);
	if (n > MAX_RECS)
		n = MAX_RECS;
	printf("TORTURE: checking round %u (seed %llu): %u log records\n", round,
	       (unsigned long long)l->seed, n);
	*base = l->seed / 1000;
	for (uint32_t i = 0; i < n; i++)
		if (l->recs[i].seq == i + 1 && l->recs[i].op == OP_REBOOT)
			reboot_at = i + 1;
	CHECK(reboot_at, "no reboot in the log");

	for (uint32_t i = 0; i < n; i++) {
		const struct rec *r = &l->recs[i];
		struct expect *e;
		/* Before the reboot call, finished: certain; otherwise: maybe. */
		int certain = r->seq == i + 1 && r->done && i + 1 < reboot_at;

		if (r->seq != i + 1 || r->session >= MAX_SESSIONS || r->op == OP_REBOOT)
			continue;
		e = &expects[r->session];
		e->id = r->session;
		switch (r->op) {
		case OP_CREATE:
			if (!r->done || r->result == 0) {
				e->may = 1;
				e->must = certain;
			}
			break;
		case OP_CLOSE:
			/*
			 * Begun: perhaps gone. Ended before the reboot call: gone. A
			 * close that ended once the reboot record was taken may have
			 * ended while reboot was serializing, which leaves the session
			 * as handed over, so "done" alone is not "before": done_at is.
			 * (A CREATE or PRESERVE_FD that succeeded did its work before
			 * the gate shut, whenever it returned.)
			 */
			e->must = 0;
			if (certain && r->done_at < reboot_at)
				e->may = 0;
			break;
		case OP_PRESERVE:
			if ((r->done && r->result) || e->n_files == MAX_FILES)
				break;
			e->files[e->n_files].token = r->token;
			e->files[e->n_files].pages = r->pages;
			e->files[e->n_files].must = certain;
			e->n_files++;
			break;
		}
	}

	for (uint32_t id = 1; id < MAX_SESSIONS; id++) {
		struct liveupdate_ioctl_retrieve_session rs = { .size = sizeof(rs) };
		struct expect *e = &expects[id];
		int found = 0;

		session_name((char *)rs.name, sizeof(rs.name), round, id);
		if (ioctl(dev, LIVEUPDATE_IOCTL_RETRIEVE_SESSION, &rs)) {
			CHECK(errno == ENOENT, "RETRIEVE_SESSION %s: %s", rs.name, strerror(errno));
			CHECK(!e->must, "session %s is missing", rs.name);
			continue;
		}
		CHECK(e->may, "session %s is there but should not be", rs.name);
		for (int k = 0; k < e->n_files; k++) {
			struct liveupdate_session_retrieve_fd f = { .size = sizeof(f),
								    .token = e->files[k].token };
			size_t len = e->files[k].pages * 4096;
			uint8_t *buf;

			if (ioctl(rs.fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &f)) {
				CHECK(errno == ENOENT, "RETRIEVE_FD %s/%llx: %s", rs.name,
				      (unsigned long long)f.token, strerror(errno));
				CHECK(!e->files[k].must, "file %llx of %s is missing",
				      (unsigned long long)f.token, rs.name);
				continue;
			}
			found++;
			buf = malloc(len + 1);
			CHECK(buf && pread(f.fd, buf, len + 1, 0) == (ssize_t)len,
			      "file %llx of %s has the wrong size", (unsigned long long)f.token, rs.name);
			for (size_t b = 0; buf && b < len; b++) {
				if (buf[b] != pattern(id, f.token, b)) {
					CHECK(0, "file %llx of %s is damaged at byte %zu",
					      (unsigned long long)f.token, rs.name, b);
					break;
				}
			}
			free(buf);
			close(f.fd);
		}
		/* Nothing else: no failed preserve, no file of another session. */
		{
			struct liveupdate_session_finish fin = { .size = sizeof(fin) };
			int extra = 0;

			for (uint32_t i = 0; i < n; i++) {
				const struct rec *r = &l->recs[i];
				struct liveupdate_session_retrieve_fd f = { .size = sizeof(f),
									    .token = r->token };
				int known = 0;

				if (r->seq != i + 1 || r->op != OP_PRESERVE ||
				    (r->session != id && (i % 64) != id % 64))
					continue;
				for (int k = 0; k < e->n_files && r->session == id; k++)
					known |= e->files[k].token == f.token;
				if (known)
					continue;
				if (!ioctl(rs.fd, LIVEUPDATE_SESSION_RETRIEVE_FD, &f)) {
					close(f.fd);
					extra++;
				}
			}
			CHECK(!extra, "session %s holds %d files nobody preserved there", rs.name, extra);
			if (id % 2)
				CHECK(!ioctl(rs.fd, LIVEUPDATE_SESSION_FINISH, &fin), "FINISH %s", rs.name);
		}
		if (n_fds < SLOTS)
			fds[n_fds++] = rs.fd;
		else
			close(rs.fd);
	}
	printf("TORTURE: round %u checked\n", round);
	munmap(l, LOG_BYTES);
	close(log_fd);
	return n_fds;
}

int main(int argc, char **argv)
{
	int stage = 1, stages = 2, opt, fds[SLOTS], n = 0;
	char cmdline[2048] = "";
	FILE *f = fopen("/proc/cmdline", "r");
	char *p;
	long shmem = luo_shmem_kb();

	while ((opt = getopt(argc, argv, "s:")) != -1)
		if (opt == 's')
			stage = atoi(optarg);
	uint64_t base = 0;

	if (f && fgets(cmdline, sizeof(cmdline), f)) {
		p = strstr(cmdline, "luo_stages=");
		if (p)
			stages = atoi(p + strlen("luo_stages="));
		p = strstr(cmdline, "luo_torture_base=");
		if (p)
			base = strtoull(p + strlen("luo_torture_base="), NULL, 0);
	}
	if (f)
		fclose(f);
	if (!base) {
		int r = open("/dev/urandom", O_RDONLY);

		if (r < 0 || read(r, &base, sizeof(base)) != sizeof(base))
			base = time(NULL);
		close(r);
		base %= 1000000000;
	}
	dev = open("/dev/liveupdate", O_RDWR);
	if (dev < 0)
		die("open /dev/liveupdate");
	if (stage > 1) {
		n = check_round(stage - 1, fds, &base);
	}
	seed = base * 1000 + stage;
	if (failures)
		return 1;
	if (stage < stages)
		run_round(stage, fds, n);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	close(dev);
	CHECK(luo_memory_released(shmem), "memory of the finished sessions released");
	if (failures)
		return 1;
	printf("TORTURE TEST PASSED (%d rounds)\n", stages - 1);
	return 0;
}
