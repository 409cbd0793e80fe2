// SPDX-License-Identifier: GPL-2.0
/*
 * PID 1 of the harness's VMs (nolibc, static).
 *
 * The kernel log goes to the first serial port; this program and the test it
 * runs write to the second one (/dev/ttyS1), so test output is never mixed
 * with kernel messages. Every line of its own starts with "LUO-HARNESS: ".
 *
 * Command line:
 *   luo_harness=single   run /test_binary with the arguments in /test_args,
 *                        report its exit status, power off.
 *   luo_harness=kexec    stage K (luo_stage=K, none for 1) of N (luo_stages=N,
 *                        default 2): unless K is the last stage, write this
 *                        initramfs again (the files of /initrd.list) to
 *                        /tmp/next.img, kexec_file_load(/kernel, /tmp/next.img)
 *                        with this command line and luo_stage=K+1, run
 *                        "/test_binary -s K", then reboot(KEXEC) (the flow of
 *                        upstream's tools/testing/selftests/liveupdate/init.c).
 *                        The last stage runs "/test_binary -s N", reports and
 *                        powers off. Every stage's initramfs is the same size.
 *   luo_kexec_retry=1    if reboot(KEXEC) fails, report the error, run
 *                        "/test_binary -s K -r" and try reboot(KEXEC) again.
 */
#include <fcntl.h>
#include <linux/kexec.h>
#include <linux/reboot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define CMDLINE_SIZE 2048
#define MAX_ARGS 32

static char cmdline[CMDLINE_SIZE];

static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "LUO-HARNESS: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	write(1, buf, n);
}

static void power_off(void)
{
	/* QEMU runs with -no-reboot: a restart ends it (there may be no ACPI power-off). */
	syscall(__NR_sync);
	reboot(LINUX_REBOOT_CMD_RESTART);
	for (;;)
		syscall(__NR_pause);
}

static int read_file(const char *path, char *buf, size_t size)
{
	ssize_t len;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	len = read(fd, buf, size - 1);
	close(fd);
	if (len < 0)
		return -1;
	buf[len] = 0;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = 0;
	return len;
}

static int has_param(const char *param)
{
	size_t len = strlen(param);
	const char *p = cmdline;

	while ((p = strstr(p, param))) {
		if ((p == cmdline || p[-1] == ' ') && (p[len] == ' ' || !p[len]))
			return 1;
		p += len;
	}
	return 0;
}

/* Runs /test_binary with argv[1..] = args; returns its exit status or -1. */
static int run_test(char **args)
{
	char *argv[MAX_ARGS + 2] = { "/test_binary" };
	int status, i;
	pid_t pid;

	for (i = 0; args[i] && i < MAX_ARGS; i++)
		argv[i + 1] = args[i];
	argv[i + 1] = NULL;

	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		char *envp[] = { "PATH=/", "HOME=/", NULL };

		execve(argv[0], argv, envp);
		say("execve(%s) failed: errno %d", argv[0], errno);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -1;
	/* Decoded by hand: nolibc's WIFSIGNALED() is true for exit status 0. */
	if ((status & 0x7f) && (status & 0x7f) != 0x7f) {
		say("test killed by signal %d", status & 0x7f);
		return 128 + (status & 0x7f);
	}
	return (status >> 8) & 0xff;
}

static long kexec_file_load(int kernel_fd, int initrd_fd, unsigned long cmdline_len,
			    const char *cmdline, unsigned long flags)
{
	return syscall(__NR_kexec_file_load, kernel_fd, initrd_fd, cmdline_len, cmdline, flags);
}

/* The value of "name=" on the command line (a number), or def. */
static int param_int(const char *name, int def)
{
	size_t len = strlen(name);
	const char *p = cmdline;

	while ((p = strstr(p, name))) {
		if ((p == cmdline || p[-1] == ' ') && p[len] == '=')
			return atoi(p + len + 1);
		p += len;
	}
	return def;
}

/* Appends one newc cpio record; data (len bytes) may be NULL for none. */
static int cpio_record(int out, const char *name, unsigned int mode, unsigned int rdev_major,
		       unsigned int rdev_minor, int in, unsigned long len)
{
	static unsigned int ino = 1;
	char hdr[112], buf[4096];
	const char zero[4] = { 0 };
	size_t nlen = strlen(name) + 1;
	unsigned long left = len;

	const unsigned long fields[13] = { ino++, mode, 0, 0, 1, 0, len, 0, 0, rdev_major,
					   rdev_minor, nlen, 0 };

	/* nolibc's printf has no field widths: the 8-digit hex fields by hand. */
	memcpy(hdr, "070701", 6);
	for (int f = 0; f < 13; f++)
		for (int d = 0; d < 8; d++)
			hdr[6 + f * 8 + d] = "0123456789ABCDEF"[(fields[f] >> (28 - 4 * d)) & 0xf];
	if (write(out, hdr, 110) != 110 || write(out, name, nlen) != (ssize_t)nlen ||
	    write(out, zero, (4 - (110 + nlen) % 4) % 4) < 0)
		return -1;
	while (left) {
		ssize_t n = read(in, buf, left < sizeof(buf) ? left : sizeof(buf));

		if (n <= 0 || write(out, buf, n) != n)
			return -1;
		left -= n;
	}
	return write(out, zero, (4 - len % 4) % 4) < 0 ? -1 : 0;
}

/*
 * Writes this initramfs again: the directories and console node every VM
 * has, and the files /initrd.list names (one path per line; /kernel only if
 * the next stage kexecs again), so that the next stage boots from the same
 * image instead of a nested one.
 */
static int write_initrd(const char *path, int with_kernel)
{
	static const char *const dirs[] = { "dev", "proc", "sys", "tmp" };
	static char list[2048];
	int out, ret = 0;
	char *p, *end;

	if (read_file("/initrd.list", list, sizeof(list)) < 0) {
		say("cannot read /initrd.list");
		return -1;
	}
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (out < 0)
		return -1;
	for (unsigned int i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		ret |= cpio_record(out, dirs[i], 040755, 0, 0, -1, 0);
	ret |= cpio_record(out, "dev/console", 020600, 5, 1, -1, 0);
	for (p = list; *p && !ret; p = end) {
		struct stat st;
		int in;

		end = strchr(p, '\n');
		if (end)
			*end++ = 0;
		else
			end = p + strlen(p);
		if (!*p || (!with_kernel && !strcmp(p, "/kernel")))
			continue;
		in = open(p, O_RDONLY);
		if (in < 0 || fstat(in, &st)) {
			say("write_initrd: %s: errno %d", p, errno);
			ret = -1;
			break;
		}
		ret |= cpio_record(out, p + (*p == '/'), 0100755, 0, 0, in, st.st_size);
		close(in);
	}
	ret |= cpio_record(out, "TRAILER!!!", 0, 0, 0, -1, 0);
	close(out);
	return ret;
}

static int load_next_kernel(int next_stage, int stages)
{
	char next[CMDLINE_SIZE];
	const char *p = cmdline;
	size_t n = 0;
	int kfd, ifd;
	long err;

	/* This command line without its luo_stage=, then the next stage's. */
	while (*p && n < sizeof(next) - 32) {
		const char *end = strchr(p, ' ');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len && strncmp(p, "luo_stage=", 10)) {
			memcpy(next + n, p, len);
			n += len;
			next[n++] = ' ';
		}
		p += len;
		while (*p == ' ')
			p++;
	}
	snprintf(next + n, sizeof(next) - n, "luo_stage=%d", next_stage);
	if (write_initrd("/tmp/next.img", next_stage < stages)) {
		say("cannot write the next stage's initramfs");
		return -1;
	}
	kfd = open("/kernel", O_RDONLY);
	ifd = open("/tmp/next.img", O_RDONLY);
	if (kfd < 0 || ifd < 0) {
		say("missing /kernel or /tmp/next.img");
		return -1;
	}
	err = kexec_file_load(kfd, ifd, strlen(next) + 1, next, 0);
	close(kfd);
	close(ifd);
	if (err) {
		say("kexec_file_load(%d, %d) failed: %ld errno %d", kfd, ifd, err, errno);
		return -1;
	}
	return 0;
}

static void single(void)
{
	static char args_buf[1024];
	char *args[MAX_ARGS + 1];
	int n = 0, status;
	char *p;

	if (read_file("/test_args", args_buf, sizeof(args_buf)) > 0) {
		for (p = args_buf; *p && n < MAX_ARGS;) {
			while (*p == ' ' || *p == '\n')
				*p++ = 0;
			if (!*p)
				break;
			args[n++] = p;
			while (*p && *p != ' ' && *p != '\n')
				p++;
		}
	}
	args[n] = NULL;
	say("running single-boot test");
	status = run_test(args);
	say("exit=%d", status);
	power_off();
}

static void kexec_flow(void)
{
	int stage = param_int("luo_stage", 1), stages = param_int("luo_stages", 2);
	char num[12];
	char *args[] = { "-s", num, NULL, NULL };
	int status;

	snprintf(num, sizeof(num), "%d", stage);
	say("stage %d starting", stage);
	if (stage >= stages) {
		status = run_test(args);
		say("stage %d exit=%d", stage, status);
		power_off();
	}
	if (load_next_kernel(stage + 1, stages))
		power_off();
	status = run_test(args);
	say("stage %d exit=%d", stage, status);
	if (status)
		power_off();
	say("reboot(KEXEC)");
	reboot(LINUX_REBOOT_CMD_KEXEC);
	say("reboot(KEXEC) failed: errno %d", errno);
	if (!has_param("luo_kexec_retry=1"))
		power_off();
	args[2] = "-r";
	status = run_test(args);
	say("stage %d retry exit=%d", stage, status);
	if (status)
		power_off();
	say("reboot(KEXEC) again");
	reboot(LINUX_REBOOT_CMD_KEXEC);
	say("reboot(KEXEC) failed again: errno %d", errno);
	power_off();
}

int main(void)
{
	int fd;

	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	mount("tmpfs", "/tmp", "tmpfs", 0, NULL);

	fd = open("/dev/ttyS1", O_WRONLY | O_NOCTTY);
	if (fd < 0)
		fd = open("/dev/console", O_WRONLY | O_NOCTTY);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}

	if (read_file("/proc/cmdline", cmdline, sizeof(cmdline)) < 0) {
		say("cannot read /proc/cmdline");
		power_off();
	}

	if (has_param("luo_harness=kexec"))
		kexec_flow();
	single();
	return 0;
}
