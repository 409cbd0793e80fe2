// SPDX-License-Identifier: GPL-2.0
/*
 * Concurrency and lifetime findings of the review of 48182d1, one variant
 * each (the kernel command line says which: luo_review=<variant>).
 *
 * HARNESS: impls=rust cmdline=luo_review=%v
 * HARNESS: variants=finish_direction_race,retrieve_fd_direction_race,recreate_after_finish,create_efault_invisible,can_preserve_flb,flb_module_unload,close_vs_reboot,serialized_incoming_ebusy,freeze_data,freeze_data_retry
 * HARNESS: impls.finish_direction_race=c,rust impls.retrieve_fd_direction_race=c,rust
 * HARNESS: impls.recreate_after_finish=c,rust,c-to-rust,rust-to-c stages.recreate_after_finish=3
 * HARNESS: module.can_preserve_flb=luo_test_mod module.flb_module_unload=luo_test_mod
 * HARNESS: module.freeze_data=luo_test_mod module.freeze_data_retry=luo_test_mod
 * HARNESS: cmdline.freeze_data_retry="luo_review=%v luo_rs_fail_freeze=2"
 * HARNESS: cmdline.close_vs_reboot="luo_review=%v luo_rs_release_delay_ms=3000"
 * HARNESS: stages.serialized_incoming_ebusy=3
 * HARNESS: cmdline.serialized_incoming_ebusy="luo_review=%v luo_rs_fail_after_serialize=2"
 *
 * finish_direction_race, retrieve_fd_direction_race: a FINISH (or
 *   RETRIEVE_FD) stops while writing its answer (the answer's page is
 *   write-protected with userfaultfd); meanwhile another thread FINISHes the
 *   session and tries to PRESERVE_FD into it. A session fd never changes
 *   kind: the PRESERVE_FD is refused, the stopped call acts on an incoming
 *   session only, and the memfd is not left half preserved.
 * recreate_after_finish: a daemon's flow: stage 2 retrieves "vm-1",
 *   FINISHes it, keeps its fd and creates "vm-1" again for the next update;
 *   stage 3 finds the new "vm-1" with its file, not the finished one.
 * create_efault_invisible: while a CREATE_SESSION of "x" stops writing its
 *   answer, another CREATE_SESSION of "x" succeeds (the first one is not
 *   visible before it answered), and the first one then fails.
 * can_preserve_flb: a file handler (tests/modules/luo_test_mod.c) whose
 *   can_preserve() calls liveupdate_flb_get_outgoing/incoming is asked about
 *   a file: no deadlock.
 * flb_module_unload: stage 1 preserves a memfd while the module's FLB is
 *   linked to memfd's handler; stage 2 loads the module before the first
 *   open of /dev/liveupdate, unloads it, then retrieves and finishes the
 *   memfd: the finish must not reach the unloaded module's FLB.
 * close_vs_reboot: a session's close sleeps (luo_rs_release_delay_ms) after
 *   leaving the session tables and before unpreserving its files, and the
 *   test calls reboot(KEXEC) meanwhile: reboot waits for the close, so the
 *   FLB counts it hands over match the files it hands over.
 * serialized_incoming_ebusy: stage 2's reboot(KEXEC) serializes and then
 *   reports ECANCELED (luo_rs_fail_after_serialize=2), as if the kexec were
 *   still to come: incoming sessions refuse FINISH and RETRIEVE_FD with
 *   EBUSY, like everything else; stage 3 gets the session stage 2 created.
 * freeze_data: stage 1 preserves a pipe (the module's handler, whose freeze
 *   changes the data its preserve returned) and a memfd; stage 2's retrieve
 *   of the pipe succeeds only if the handler gets the data of the freeze.
 * freeze_data_retry: the same, but the first reboot(KEXEC) fails in the
 *   memfd's freeze (luo_rs_fail_freeze=2) after the pipe was frozen and is
 *   undone; the second one kexecs, its freeze given the first one's data.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/reboot.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/liveupdate.h>

#include "../luo_test_common.h"

static int failures;

#define CHECK(cond, ...) do {						\
	if (!(cond)) {							\
		printf("REVIEW: FAIL line %d: ", __LINE__);		\
		printf(__VA_ARGS__);					\
		printf(" (errno %s)\n", strerror(errno));		\
		failures++;						\
	}								\
} while (0)

static void __attribute__((noreturn)) die(const char *what)
{
	printf("REVIEW: FAIL: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int dev_fd = -1;

static int dev(void)
{
	if (dev_fd < 0) {
		dev_fd = open("/dev/liveupdate", O_RDWR);
		if (dev_fd < 0)
			die("open /dev/liveupdate");
	}
	return dev_fd;
}

/* 0 or -errno */
static int create(const char *name)
{
	return luo_create(dev(), name);
}

static int retrieve(const char *name)
{
	return luo_retrieve(dev(), name);
}

#define preserve luo_preserve
#define retrieve_fd luo_retrieve_fd
#define finish luo_finish

static int memfd_with(const char *text)
{
	int fd = luo_memfd("review", text);

	if (fd < 0)
		die("memfd");
	return fd;
}

/* Whether the file at fd holds text. */
static int holds(int fd, const char *text)
{
	char got[64] = "";

	return fd >= 0 && pread(fd, got, sizeof(got) - 1, 0) > 0 && !strcmp(got, text);
}

static void __attribute__((noreturn)) hold_and_exit(void)
{
	luo_hold_fds_until_kexec();
	exit(0);
}

static void __attribute__((noreturn)) passed(void)
{
	if (failures)
		exit(1);
	printf("REVIEW TEST PASSED\n");
	exit(0);
}

/* ---------------------------------------------------------- userfaultfd -- */

/*
 * A page whose reads work and whose writes stop the writer (the kernel
 * writing an ioctl's answer, too) until wp_release().
 */
struct wp_page {
	void *page;
	int uffd;
	long size;
};

static void wp_setup(struct wp_page *w)
{
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = { 0 };

	w->size = sysconf(_SC_PAGESIZE);
	w->page = mmap(NULL, w->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (w->page == MAP_FAILED)
		die("mmap");
	memset(w->page, 0, w->size);
	w->uffd = syscall(__NR_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (w->uffd < 0 || ioctl(w->uffd, UFFDIO_API, &api))
		die("userfaultfd");
	reg.range.start = (unsigned long)w->page;
	reg.range.len = w->size;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	if (ioctl(w->uffd, UFFDIO_REGISTER, &reg))
		die("UFFDIO_REGISTER (WP)");
}

static void wp_protect(struct wp_page *w)
{
	struct uffdio_writeprotect wp = { .range = { (unsigned long)w->page, w->size },
					  .mode = UFFDIO_WRITEPROTECT_MODE_WP };

	if (ioctl(w->uffd, UFFDIO_WRITEPROTECT, &wp))
		die("UFFDIO_WRITEPROTECT");
}

/* Waits until a writer stopped on the page; 0 if one did within 10 s. */
static int wp_wait(struct wp_page *w)
{
	struct pollfd p = { .fd = w->uffd, .events = POLLIN };
	struct uffd_msg msg;

	if (poll(&p, 1, 10000) != 1 || read(w->uffd, &msg, sizeof(msg)) != sizeof(msg))
		return -1;
	return msg.event == UFFD_EVENT_PAGEFAULT ? 0 : -1;
}

/* Lets the stopped writer go on. */
static void wp_release(struct wp_page *w)
{
	struct uffdio_writeprotect wp = { .range = { (unsigned long)w->page, w->size } };

	if (ioctl(w->uffd, UFFDIO_WRITEPROTECT, &wp))
		die("UFFDIO_WRITEPROTECT (release)");
}

/* ---------------------------------------------------------------- races -- */

struct call {
	int s, fd, result, result2;
	unsigned long cmd;
	void *arg;
	volatile int done;
};

static void *do_ioctl(void *p)
{
	struct call *c = p;

	c->result = ioctl(c->s, c->cmd, c->arg) ? -errno : 0;
	c->done = 1;
	return NULL;
}

/* The other thread: FINISH, then PRESERVE_FD of a fresh memfd. */
static void *finish_then_preserve(void *p)
{
	struct call *c = p;

	c->result = finish(c->s);
	c->result2 = preserve(c->s, c->fd, 77);
	c->done = 1;
	return NULL;
}

static void wait_done(struct call *c, int ms)
{
	while (!c->done && ms-- > 0)
		usleep(1000);
}

static void __attribute__((noreturn)) stage1_one_session(const char *name, const char *text)
{
	int s = create(name), fd = memfd_with(text);

	if (s < 0 || preserve(s, fd, 1))
		die("stage 1 session");
	close(fd);
	printf("REVIEW: stage 1 preserved a memfd in \"%s\"\n", name);
	hold_and_exit();
}

/* finish_direction_race and retrieve_fd_direction_race, stage 2. */
static void direction_race(int retrieve_first)
{
	struct call stopped = { 0 }, other = { 0 };
	struct wp_page w;
	pthread_t t1, t2;
	int s = retrieve("race"), newfd;

	CHECK(s >= 0, "RETRIEVE_SESSION race");
	wp_setup(&w);
	if (retrieve_first) {
		struct liveupdate_session_retrieve_fd *r = w.page;

		r->size = sizeof(*r);
		r->token = 1;
		stopped.cmd = LIVEUPDATE_SESSION_RETRIEVE_FD;
	} else {
		struct liveupdate_session_finish *f = w.page;

		f->size = sizeof(*f);
		stopped.cmd = LIVEUPDATE_SESSION_FINISH;
	}
	wp_protect(&w);
	stopped.s = s;
	stopped.arg = w.page;
	pthread_create(&t1, NULL, do_ioctl, &stopped);
	CHECK(!wp_wait(&w), "the first call stops writing its answer");

	other.s = s;
	other.fd = memfd_with("late");
	pthread_create(&t2, NULL, finish_then_preserve, &other);
	/* C holds the session's lock while answering: the other thread waits. */
	wait_done(&other, 2000);
	wp_release(&w);
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);

	if (retrieve_first) {
		struct liveupdate_session_retrieve_fd *r = w.page;

		/* Before the FINISH (C) or after it (Rust): a file, or nothing. */
		CHECK(stopped.result == 0 ? holds(r->fd, "early") : stopped.result == -ENOENT,
		      "the stopped RETRIEVE_FD got a file or ENOENT, got %d", stopped.result);
	} else {
		CHECK(stopped.result == 0, "the stopped FINISH: %d", stopped.result);
	}
	CHECK(other.result == 0, "the other FINISH: %d", other.result);
	CHECK(other.result2 == -EINVAL, "PRESERVE_FD into the finished incoming session: %d, want EINVAL",
	      other.result2);
	/* The memfd was not left preserved: a new session takes it. */
	newfd = create("after-race");
	CHECK(newfd >= 0 && preserve(newfd, other.fd, 1) == 0, "the memfd is free to preserve");
	close(newfd);
	close(s);
	passed();
}

/* ------------------------------------------------------------- variants -- */

static void recreate_after_finish(int stage)
{
	int s1, s2, fd;

	switch (stage) {
	case 1:
		stage1_one_session("vm-1", "one");
	case 2:
		s1 = retrieve("vm-1");
		CHECK(s1 >= 0, "RETRIEVE_SESSION vm-1");
		fd = retrieve_fd(s1, 1);
		CHECK(holds(fd, "one"), "the memfd of stage 1");
		close(fd);
		CHECK(finish(s1) == 0, "FINISH vm-1");
		/* The daemon keeps s1 and creates vm-1 again for the next update. */
		s2 = create("vm-1");
		CHECK(s2 >= 0, "CREATE_SESSION vm-1 after FINISH, with its fd open: %d", s2);
		CHECK(retrieve("vm-1") == -EINVAL, "RETRIEVE_SESSION vm-1 again");
		fd = memfd_with("two");
		CHECK(s2 < 0 || preserve(s2, fd, 1) == 0, "PRESERVE_FD into the new vm-1");
		close(fd);
		CHECK(preserve(s1, memfd_with("no"), 2) == -EINVAL, "PRESERVE_FD into the finished one");
		if (failures)
			exit(1);
		printf("REVIEW: stage 2 finished vm-1 and created it again\n");
		hold_and_exit();
	default:
		s1 = retrieve("vm-1");
		CHECK(s1 >= 0, "RETRIEVE_SESSION vm-1 in stage 3");
		fd = retrieve_fd(s1, 1);
		CHECK(holds(fd, "two"), "stage 3 gets the vm-1 created in stage 2");
		CHECK(retrieve_fd(s1, 2) == -ENOENT, "and nothing else");
		close(fd);
		CHECK(finish(s1) == 0, "FINISH");
		passed();
	}
}

static void create_efault_invisible(void)
{
	struct liveupdate_ioctl_create_session *c;
	struct call stopped = { 0 };
	struct wp_page w;
	pthread_t t;
	int s, fd;

	wp_setup(&w);
	c = w.page;
	c->size = sizeof(*c);
	strcpy((char *)c->name, "x");
	wp_protect(&w);
	stopped.s = dev();
	stopped.cmd = LIVEUPDATE_IOCTL_CREATE_SESSION;
	stopped.arg = w.page;
	pthread_create(&t, NULL, do_ioctl, &stopped);
	CHECK(!wp_wait(&w), "the first CREATE_SESSION stops writing its answer");
	s = create("x");
	CHECK(s >= 0, "a second CREATE_SESSION of x while the first one answers: %d", s);
	/* The first one cannot write its answer: EFAULT (or EEXIST, had it written it). */
	munmap(w.page, w.size);
	close(w.uffd);
	pthread_join(t, NULL);
	CHECK(stopped.result == -EFAULT || stopped.result == -EEXIST,
	      "the first CREATE_SESSION fails, got %d", stopped.result);
	fd = memfd_with("x");
	CHECK(s >= 0 && preserve(s, fd, 1) == 0, "PRESERVE_FD into x");
	close(fd);
	if (failures)
		exit(1);
	hold_and_exit();
}

static void load_module(void)
{
	int fd = open("/luo_test_mod.ko", O_RDONLY);

	if (fd < 0 || syscall(__NR_finit_module, fd, "", 0))
		die("finit_module(luo_test_mod.ko)");
	close(fd);
}

static void can_preserve_flb(int stage)
{
	int s, fd;

	if (stage == 1) {
		load_module();
		s = create("cp");
		fd = open("/dev/null", O_RDONLY);
		/* memfd's handler refuses /dev/null; the module's asks its FLB, refuses. */
		CHECK(preserve(s, fd, 1) == -ENOENT, "PRESERVE_FD of /dev/null");
		close(fd);
		fd = memfd_with("cp");
		CHECK(preserve(s, fd, 2) == 0, "PRESERVE_FD of a memfd");
		close(fd);
		if (failures)
			exit(1);
		hold_and_exit();
	}
	s = retrieve("cp");
	fd = retrieve_fd(s, 2);
	CHECK(holds(fd, "cp"), "the memfd");
	CHECK(finish(s) == 0, "FINISH");
	passed();
}

static void flb_module_unload(int stage)
{
	int s, fd;

	if (stage == 1) {
		load_module();
		stage1_one_session("fm", "fm");
	}
	/* Loaded before the first open, which builds the incoming sessions. */
	load_module();
	dev();
	CHECK(!syscall(__NR_delete_module, "luo_test_mod", O_NONBLOCK), "unloading the module");
	s = retrieve("fm");
	CHECK(s >= 0, "RETRIEVE_SESSION fm");
	fd = retrieve_fd(s, 1);
	CHECK(holds(fd, "fm"), "the memfd");
	close(fd);
	CHECK(finish(s) == 0, "FINISH after the FLB's module is gone");
	close(s);
	passed();
}

static void *close_it(void *p)
{
	close(*(int *)p);
	return NULL;
}

static void close_vs_reboot(int stage)
{
	int a, b, fd;
	pthread_t t;

	if (stage == 2) {
		CHECK(retrieve("a") == -ENOENT, "the closed session was not handed over");
		b = retrieve("b");
		fd = retrieve_fd(b, 1);
		CHECK(holds(fd, "B"), "session b's memfd");
		close(fd);
		CHECK(finish(b) == 0, "FINISH b");
		passed();
	}
	a = create("a");
	b = create("b");
	fd = memfd_with("A");
	if (a < 0 || b < 0 || preserve(a, fd, 1))
		die("session a");
	close(fd);
	fd = memfd_with("B");
	if (preserve(b, fd, 1))
		die("session b");
	close(fd);
	/* The close sleeps 3 s between leaving the tables and unpreserving. */
	pthread_create(&t, NULL, close_it, &a);
	sleep(1);
	printf("REVIEW: reboot(KEXEC) while session a is being closed\n");
	fflush(stdout);
	reboot(LINUX_REBOOT_CMD_KEXEC);
	die("reboot(KEXEC)");
}

static void serialized_incoming_ebusy(int stage)
{
	int in, out, fd;

	switch (stage) {
	case 1:
		stage1_one_session("in", "in");
	case 2:
		in = retrieve("in");
		out = create("out");
		fd = memfd_with("out");
		if (in < 0 || out < 0 || preserve(out, fd, 1))
			die("stage 2 sessions");
		CHECK(reboot(LINUX_REBOOT_CMD_KEXEC) && errno == ECANCELED,
		      "reboot(KEXEC) serializes, then reports ECANCELED (fault injection)");
		/* Serialized: nothing may change before the kexec. */
		CHECK(finish(in) == -EBUSY, "FINISH of an incoming session after serialization");
		CHECK(retrieve_fd(in, 1) == -EBUSY, "RETRIEVE_FD after serialization");
		CHECK(preserve(out, fd, 2) == -EBUSY, "PRESERVE_FD after serialization");
		CHECK(create("late") == -EBUSY, "CREATE_SESSION after serialization");
		close(fd);
		close(in);
		if (failures)
			exit(1);
		printf("REVIEW: stage 2 saw EBUSY after serialization\n");
		hold_and_exit();
	default:
		CHECK(retrieve("in") == -ENOENT, "incoming sessions are not handed over again");
		out = retrieve("out");
		fd = retrieve_fd(out, 1);
		CHECK(holds(fd, "out"), "stage 3 gets what stage 2 serialized");
		close(fd);
		CHECK(finish(out) == 0, "FINISH out");
		passed();
	}
}

static void freeze_data(int stage, int retry)
{
	int s, fd, p[2];

	if (stage == 1) {
		load_module();
		s = create("fz");
		if (s < 0 || pipe(p))
			die("stage 1 session or pipe");
		CHECK(preserve(s, p[0], 1) == 0, "PRESERVE_FD of a pipe");
		fd = memfd_with("fz");
		CHECK(preserve(s, fd, 2) == 0, "PRESERVE_FD of a memfd");
		close(fd);
		close(p[0]);
		close(p[1]);
		if (failures)
			exit(1);
		if (!retry)
			hold_and_exit();
		fflush(stdout);
		CHECK(reboot(LINUX_REBOOT_CMD_KEXEC) && errno == EAGAIN,
		      "the first reboot(KEXEC) fails in the memfd's freeze");
		if (failures)
			exit(1);
		printf("REVIEW: the first reboot(KEXEC) failed as injected\n");
		fflush(stdout);
		reboot(LINUX_REBOOT_CMD_KEXEC);
		die("the second reboot(KEXEC)");
	}
	/* Loaded before the first open, which builds the incoming sessions. */
	load_module();
	s = retrieve("fz");
	CHECK(s >= 0, "RETRIEVE_SESSION fz");
	fd = retrieve_fd(s, 1);
	CHECK(fd >= 0, "RETRIEVE_FD of the pipe: its handler got the data its freeze returned");
	close(fd);
	fd = retrieve_fd(s, 2);
	CHECK(holds(fd, "fz"), "the memfd");
	close(fd);
	CHECK(finish(s) == 0, "FINISH fz");
	passed();
}

/* The variant named by luo_review= on the kernel command line. */
static const char *variant(void)
{
	static char cmdline[2048];
	char *p, *end;
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, cmdline, sizeof(cmdline) - 1);

	if (n <= 0)
		die("/proc/cmdline");
	cmdline[n] = 0;
	p = strstr(cmdline, "luo_review=");
	if (!p)
		die("no luo_review= on the command line");
	p += strlen("luo_review=");
	end = strpbrk(p, " \n");
	if (end)
		*end = 0;
	return p;
}

int main(int argc, char **argv)
{
	const char *v = variant();
	int stage = 1, opt;

	while ((opt = getopt(argc, argv, "s:")) != -1)
		if (opt == 's')
			stage = atoi(optarg);
	printf("REVIEW: %s, stage %d\n", v, stage);
	if (!strcmp(v, "finish_direction_race") || !strcmp(v, "retrieve_fd_direction_race")) {
		if (stage == 1)
			stage1_one_session("race", "early");
		direction_race(!strcmp(v, "retrieve_fd_direction_race"));
	}
	if (!strcmp(v, "recreate_after_finish"))
		recreate_after_finish(stage);
	if (!strcmp(v, "create_efault_invisible")) {
		if (stage == 1)
			create_efault_invisible();
		int s = retrieve("x");

		CHECK(s >= 0, "the created x was handed over");
		CHECK(finish(s) == 0, "FINISH x");
		passed();
	}
	if (!strcmp(v, "can_preserve_flb"))
		can_preserve_flb(stage);
	if (!strcmp(v, "flb_module_unload"))
		flb_module_unload(stage);
	if (!strcmp(v, "close_vs_reboot"))
		close_vs_reboot(stage);
	if (!strcmp(v, "serialized_incoming_ebusy"))
		serialized_incoming_ebusy(stage);
	if (!strcmp(v, "freeze_data") || !strcmp(v, "freeze_data_retry"))
		freeze_data(stage, !strcmp(v, "freeze_data_retry"));
	die("unknown variant");
}
