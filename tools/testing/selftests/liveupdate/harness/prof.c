// SPDX-License-Identifier: GPL-2.0
/*
 * A QEMU TCG plugin for `lu bench -p`: counts the guest instructions executed in windows of
 * a kernel's run, per instruction address.
 *
 * Arguments: start=A[:A...] (a window opens when a translation block starting at one of these
 * addresses executes), stop=A[:A...] (it closes after a block whose last instruction is at one
 * of these, a function's returns, executes on the same vCPU), out=PATH. Windows do not nest;
 * instructions of other vCPUs are not counted. PATH gets, for each window, a line
 * "# window N vcpu V start ADDR total T translated B I" and then "ADDR COUNT" lines
 * (hexadecimal address, decimal count). A block left early by an interrupt is counted whole.
 * B and I are the blocks and instructions QEMU translated while the window was open: code
 * run for the first time, which under TCG costs far more than running it. PATH.tb gets a line
 * "N ADDR I" for each of those blocks (window, first address, instructions).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prof_qemu_plugin.h"

EXPORT int qemu_plugin_version = 1;

#define MAX_ADDRS 64
#define SLOTS (1u << 20)

static uint64_t starts[MAX_ADDRS], stops[MAX_ADDRS];
static int n_starts, n_stops;
static FILE *out, *tbs;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* The window's counts, by address (open addressing; far more slots than a window uses). */
static uint64_t slot_pc[SLOTS], slot_n[SLOTS];
static int active = -1, window;
static uint64_t total, opened_at, translated_blocks, translated_insns;

struct block {
	size_t n;
	bool starts, stops;
	uint64_t pc[];
};

static void count(uint64_t pc)
{
	uint32_t h = (uint32_t)((pc * 0x9E3779B97F4A7C15ull) >> 44) & (SLOTS - 1);

	while (slot_pc[h] && slot_pc[h] != pc)
		h = (h + 1) & (SLOTS - 1);
	slot_pc[h] = pc;
	slot_n[h]++;
	total++;
}

static void close_window(void)
{
	fprintf(out, "# window %d vcpu %d start %llx total %llu translated %llu %llu\n", window,
		active, (unsigned long long)opened_at, (unsigned long long)total,
		(unsigned long long)translated_blocks, (unsigned long long)translated_insns);
	for (uint32_t i = 0; i < SLOTS; i++) {
		if (!slot_pc[i])
			continue;
		fprintf(out, "%llx %llu\n", (unsigned long long)slot_pc[i],
			(unsigned long long)slot_n[i]);
		slot_pc[i] = 0;
		slot_n[i] = 0;
	}
	fflush(out);
	total = 0;
	translated_blocks = 0;
	translated_insns = 0;
	window++;
	active = -1;
}

static void executed(unsigned int vcpu, void *data)
{
	struct block *b = data;

	pthread_mutex_lock(&lock);
	if (active < 0 && b->starts) {
		active = vcpu;
		opened_at = b->pc[0];
	}
	if (active == (int)vcpu) {
		for (size_t i = 0; i < b->n; i++)
			count(b->pc[i]);
		if (b->stops)
			close_window();
	}
	pthread_mutex_unlock(&lock);
}

static bool listed(const uint64_t *list, int n, uint64_t pc)
{
	for (int i = 0; i < n; i++)
		if (list[i] == pc)
			return true;
	return false;
}

static void translated(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);
	struct block *b;

	if (!n)
		return;
	/* Kept for as long as QEMU may run the block: never freed. */
	b = calloc(1, sizeof(*b) + n * sizeof(uint64_t));
	if (!b)
		return;
	b->n = n;
	for (size_t i = 0; i < n; i++)
		b->pc[i] = qemu_plugin_insn_vaddr(qemu_plugin_tb_get_insn(tb, i));
	b->starts = listed(starts, n_starts, b->pc[0]);
	b->stops = listed(stops, n_stops, b->pc[n - 1]);
	/*
	 * Translation happens just before the block's first run, on the vCPU that runs it: a
	 * block translated while a window is open (or the one that opens it) is the window's.
	 */
	pthread_mutex_lock(&lock);
	if (active >= 0 || b->starts) {
		translated_blocks++;
		translated_insns += n;
		fprintf(tbs, "%d %llx %zu\n", window, (unsigned long long)b->pc[0], n);
	}
	pthread_mutex_unlock(&lock);
	qemu_plugin_register_vcpu_tb_exec_cb(tb, executed, QEMU_PLUGIN_CB_NO_REGS, b);
}

static void finished(qemu_plugin_id_t id, void *data)
{
	fclose(out);
	fclose(tbs);
}

static int addrs(const char *s, uint64_t *list, int *n)
{
	char *end;

	while (*s) {
		if (*n == MAX_ADDRS)
			return -1;
		list[(*n)++] = strtoull(s, &end, 16);
		if (end == s)
			return -1;
		s = *end == ':' ? end + 1 : end;
	}
	return 0;
}

EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc,
			       char **argv)
{
	const char *path = NULL;
	char tb_path[4096];

	for (int i = 0; i < argc; i++) {
		if (!strncmp(argv[i], "start=", 6)) {
			if (addrs(argv[i] + 6, starts, &n_starts))
				return 1;
		} else if (!strncmp(argv[i], "stop=", 5)) {
			if (addrs(argv[i] + 5, stops, &n_stops))
				return 1;
		} else if (!strncmp(argv[i], "out=", 4)) {
			path = argv[i] + 4;
		} else {
			return 1;
		}
	}
	if (!path || !n_starts || !n_stops)
		return 1;
	out = fopen(path, "w");
	if (!out)
		return 1;
	if (snprintf(tb_path, sizeof(tb_path), "%s.tb", path) >= (int)sizeof(tb_path))
		return 1;
	tbs = fopen(tb_path, "w");
	if (!tbs)
		return 1;
	qemu_plugin_register_vcpu_tb_trans_cb(id, translated);
	qemu_plugin_register_atexit_cb(id, finished, NULL);
	return 0;
}
