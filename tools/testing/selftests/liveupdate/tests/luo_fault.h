/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Allocation fault injection for this project's selftests: failslab and
 * fail_page_alloc, driven per call with /proc/thread-self/fail-nth.
 *
 * Writing N to fail-nth makes the N-th allocation of this thread that passes
 * the filters below fail (slab allocations, and page allocations of any
 * order); reading it back gives 0 once the failure was injected. Looping
 * N = 1, 2, 3, ... until a call no longer reaches the N-th allocation makes
 * every allocation of the call fail once, in order.
 *
 * With a "require" symbol, only allocations with that function on the
 * stack count (the stacktrace filter of both fault attributes), so that for
 * reboot(KEXEC) only the allocations made under liveupdate_reboot() fail,
 * not those of the rest of the kexec path.
 *
 * The debug kernels' own bookkeeping allocates too, inside every allocation:
 * kmemleak's object records (__alloc_object) and KASAN's stack depot
 * (stack_depot_save_flags). Their failures are absorbed (kmemleak falls back
 * to its pool, the depot drops a stack), so they would only use up fail-nth
 * counts: they are excluded with the reject filter of failslab and of
 * fail_page_alloc respectively.
 *
 * The injected failures are not logged (verbose=0); the allocator's own
 * failure reports (warn_alloc) are, and tests using this declare
 * "warn_alloc=ok" on their HARNESS line.
 */
#ifndef LUO_FAULT_H
#define LUO_FAULT_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LUO_FAULT_SLAB "/sys/kernel/debug/failslab/"
#define LUO_FAULT_PAGE "/sys/kernel/debug/fail_page_alloc/"

static int luo_fault_nth_fd = -1;

static inline int luo_fault_put(const char *dir, const char *knob, const char *val)
{
	char path[128];
	int fd, ok;

	snprintf(path, sizeof(path), "%s%s", dir, knob);
	fd = open(path, O_WRONLY);
	ok = fd >= 0 && write(fd, val, strlen(val)) == (ssize_t)strlen(val);
	if (!ok)
		printf("# fault injection: writing %s to %s: %s\n", val, path, strerror(errno));
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/*
 * The address range [start, end) of the text symbol `sym`: its address and
 * the next higher text symbol's, from /proc/kallsyms. 0 if found.
 */
static inline int luo_fault_symbol_range(const char *sym, unsigned long *start,
					 unsigned long *end)
{
	char line[512], name[256], type;
	unsigned long addr;
	FILE *f = fopen("/proc/kallsyms", "r");

	*start = 0;
	*end = ~0UL;
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx %c %255s", &addr, &type, name) != 3)
			continue;
		if (type != 't' && type != 'T')
			continue;
		if (!strcmp(name, sym))
			*start = addr;
	}
	if (f)
		rewind(f);
	while (*start && f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%lx %c %255s", &addr, &type, name) != 3)
			continue;
		if (addr > *start && addr < *end)
			*end = addr;
	}
	if (f)
		fclose(f);
	return *start && *end != ~0UL ? 0 : -1;
}

/*
 * Configures both fault attributes; only allocations with `require` on the
 * stack count if it is not NULL. 1 if this kernel has no fault injection,
 * -1 on error, 0 when ready.
 */
static inline int luo_fault_setup(const char *require)
{
	static const char *const dirs[] = { LUO_FAULT_SLAB, LUO_FAULT_PAGE };
	static const char *const reject[] = { "__alloc_object", "stack_depot_save_flags" };
	unsigned long start = 0, end = ~0UL, rs, re;
	char s[32], e[32];
	int err = 0;

	if (access(LUO_FAULT_SLAB "verbose", F_OK) || access(LUO_FAULT_PAGE "verbose", F_OK))
		return 1;
	if (require && luo_fault_symbol_range(require, &start, &end)) {
		printf("# fault injection: no text symbol %s in /proc/kallsyms\n", require);
		return -1;
	}
	snprintf(s, sizeof(s), "%lu", start);
	snprintf(e, sizeof(e), "%lu", end);
	for (int i = 0; i < 2; i++) {
		err |= luo_fault_put(dirs[i], "verbose", "0");
		err |= luo_fault_put(dirs[i], "ignore-gfp-wait", "N");
		err |= luo_fault_put(dirs[i], "stacktrace-depth", "32");
		/* Widen first, so start <= end holds at every step. */
		err |= luo_fault_put(dirs[i], "require-end", "18446744073709551615");
		err |= luo_fault_put(dirs[i], "require-start", s);
		err |= luo_fault_put(dirs[i], "require-end", e);
		if (!luo_fault_symbol_range(reject[i], &rs, &re)) {
			char a[32], b[32];

			snprintf(a, sizeof(a), "%lu", rs);
			snprintf(b, sizeof(b), "%lu", re);
			err |= luo_fault_put(dirs[i], "reject-end", "18446744073709551615");
			err |= luo_fault_put(dirs[i], "reject-start", a);
			err |= luo_fault_put(dirs[i], "reject-end", b);
		}
	}
	err |= luo_fault_put(LUO_FAULT_PAGE, "ignore-gfp-highmem", "N");
	err |= luo_fault_put(LUO_FAULT_PAGE, "min-order", "0");
	if (luo_fault_nth_fd < 0)
		luo_fault_nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	if (luo_fault_nth_fd < 0) {
		printf("# fault injection: /proc/thread-self/fail-nth: %s\n", strerror(errno));
		return -1;
	}
	if (require)
		printf("# fault injection: only under %s [%#lx, %#lx)\n", require, start, end);
	return err ? -1 : 0;
}

/* Makes the n-th counted allocation of this thread fail. */
static inline int luo_fault_arm(unsigned int n)
{
	char v[16];
	int len = snprintf(v, sizeof(v), "%u", n);

	return pwrite(luo_fault_nth_fd, v, len, 0) == len ? 0 : -1;
}

/* Disarms; 1 if the failure was injected since luo_fault_arm(), 0 if not. */
static inline int luo_fault_disarm(void)
{
	char v[16] = "";
	int injected;

	if (pread(luo_fault_nth_fd, v, sizeof(v) - 1, 0) <= 0)
		return -1;
	injected = atoi(v) == 0;
	if (pwrite(luo_fault_nth_fd, "0", 1, 0) != 1)
		return -1;
	return injected;
}

#endif /* LUO_FAULT_H */
