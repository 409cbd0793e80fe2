#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Wires this repository into the downloaded kernel tree. Idempotent: a second
# run changes nothing (and touches no file whose content is unchanged, so
# make rebuilds only what changed).
#
#  - syncs the repo's kernel sources into kernel/liveupdate/rust_luo/
#  - kernel/liveupdate/Kconfig: sources our Kconfig (the C/Rust choice)
#  - kernel/liveupdate/Makefile: luo.o for the C choice, rust_luo/ for Rust
#  - rust/bindings/bindings_helper.h: the headers the Rust side binds to
#  - rust/helpers/: our helpers for static inline C functions
set -euo pipefail
. "$(dirname "$0")/common.sh"

src=${1:-$(luo_src_dir)} || die "no kernel source; run: $LUO_TESTS/lu setup"
dst="$src/$LUO_TREE_SUBDIR"

# 1. Our kernel sources (only those: tests and docs stay in the repo).
mkdir -p "$dst"
rsync -r --checksum --delete --prune-empty-dirs \
	--include='/Kconfig' --include='/Makefile' --include='/*.rs' \
	--include='/*.c' --include='/*.h' --include='/uapi/' --include='/uapi/**' \
	--exclude='*' "$LUO_REPO/" "$dst/"

# Appends or inserts a line once; a marker keeps it idempotent.
once() {
	local file=$1 marker=$2
	grep -qF -- "$marker" "$file"
}

# 2. Kconfig: inside the LUO menu, before its endmenu.
kc="$src/kernel/liveupdate/Kconfig"
if ! once "$kc" "$LUO_TREE_SUBDIR/Kconfig"; then
	line=$(grep -n '^endmenu' "$kc" | tail -n 1 | cut -d: -f1)
	[ -n "$line" ] || die "$kc: no endmenu to insert before"
	sed -i "${line}i source \"$LUO_TREE_SUBDIR/Kconfig\"\n" "$kc"
fi

# 3. Makefile: the C objects only for the C choice.
mk="$src/kernel/liveupdate/Makefile"
if ! once "$mk" "rust_luo/"; then
	grep -qE '^obj-\$\(CONFIG_LIVEUPDATE\)[[:space:]]+\+= luo.o' "$mk" ||
		die "$mk: the luo.o line is not where it is expected"
	sed -i -E 's|^obj-\$\(CONFIG_LIVEUPDATE\)([[:space:]]+)\+= luo.o|obj-$(CONFIG_LIVEUPDATE_IMPL_C)\1+= luo.o\nobj-$(CONFIG_LIVEUPDATE_IMPL_RUST)\1+= rust_luo/|' "$mk"
fi

# 4. Bindings.
bh="$src/rust/bindings/bindings_helper.h"
for h in linux/anon_inodes.h linux/kexec_handover.h linux/liveupdate.h; do
	if ! once "$bh" "#include <$h>"; then
		# After the first #include <linux/...> line, keeping the list's order loose.
		line=$(grep -n '^#include <linux/' "$bh" | head -n 1 | cut -d: -f1)
		sed -i "${line}i #include <$h>" "$bh"
	fi
done

# 5. Helpers for static inline functions (rust_helpers.c in the repo).
if [ -e "$LUO_REPO/rust_helpers.c" ]; then
	cmp -s "$LUO_REPO/rust_helpers.c" "$src/rust/helpers/liveupdate.c" ||
		cp "$LUO_REPO/rust_helpers.c" "$src/rust/helpers/liveupdate.c"
	hc="$src/rust/helpers/helpers.c"
	if ! once "$hc" '#include "liveupdate.c"'; then
		line=$(grep -n '^#include "[l-z]' "$hc" | head -n 1 | cut -d: -f1)
		sed -i "${line}i #include \"liveupdate.c\"" "$hc"
	fi
fi

# 6. Benchmark hook (CONFIG_LIVEUPDATE_BENCH, our Kconfig): kernel_kexec() logs
# how long liveupdate_reboot() took, the same for both implementations.
kx="$src/kernel/kexec_core.c"
if ! once "$kx" "CONFIG_LIVEUPDATE_BENCH"; then
	grep -qx $'\t\terror = liveupdate_reboot();' "$kx" ||
		die "$kx: the liveupdate_reboot() call is not where it is expected"
	sed -i $'s|^\t\terror = liveupdate_reboot();$|#ifdef CONFIG_LIVEUPDATE_BENCH\\\n\t\tu64 luo_bench_t0 = ktime_get_ns();\\\n#endif\\\n\t\terror = liveupdate_reboot();\\\n#ifdef CONFIG_LIVEUPDATE_BENCH\\\n\t\tpr_notice("liveupdate-bench: reboot %llu ns err %d\\\\n",\\\n\t\t\tktime_get_ns() - luo_bench_t0, error);\\\n#endif|' "$kx"
fi

# 7. Benchmark hook in the C core: its early initcall logs how long it took, as
# our luo_glue.c does under the same option.
lc="$src/kernel/liveupdate/luo_core.c"
if ! once "$lc" "liveupdate_early_init_bench"; then
	grep -qx 'early_initcall(liveupdate_early_init);' "$lc" ||
		die "$lc: the early_initcall line is not where it is expected"
	sed -i 's|^early_initcall(liveupdate_early_init);$|#ifdef CONFIG_LIVEUPDATE_BENCH\
static int __init liveupdate_early_init_bench(void)\
{\
\tcycles_t t0 = get_cycles();\
\tint ret = liveupdate_early_init();\
\
\tpr_notice("liveupdate-bench: early_init %llu cycles\\n",\
\t\t  (unsigned long long)(get_cycles() - t0));\
\treturn ret;\
}\
early_initcall(liveupdate_early_init_bench);\
#else\
early_initcall(liveupdate_early_init);\
#endif|' "$lc"
fi
