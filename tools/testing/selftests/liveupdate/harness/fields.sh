# SPDX-License-Identifier: GPL-2.0
# The HARNESS: line of this project's own tests, parsed once. Sourced by
# run.sh.
# Own tests describe how they run in a comment line "HARNESS: key=value ..."
# (a value with spaces in double quotes), parsed once into HF[<test>|<key>]:
#   impls=a,b       implementations (and variants: c-to-rust, ...) it runs on;
#                   a -debug variant runs what its implementation runs
#   variants=x,y    run once per variant, named <test>.<variant>; %v in
#                   cmdline= is replaced by the variant's name
#   cmdline=...     added to the kernel command line
#   stages=N        stages of a two-kernel test (default 2)
#   module=NAME     tests/modules/NAME.ko, built for the kernel, in /NAME.ko
#   warn_alloc=ok   allocation-failure reports allowed in the kernel log
#   log="text"      a line the kernel log must contain
#   flb=no          no FLB check
#   files="a b"     more programs of $BIN in the initramfs, as /a and /b
# key.<variant>=value sets key for one variant only (impls., cmdline., stages.,
# module.), key@<impl>=value for one implementation (a -debug variant first
# looks for its own name, then its implementation's).
declare -A HF HF_FILE
harness_parse() { # test file
	local t=$1 line key
	HF_FILE[$t]=$2
	line=$(sed -n 's/.*HARNESS: //p' "$2" | tr '\n' ' ')
	while [[ $line =~ ^[[:space:]]*([a-z_]+(\.[a-z0-9_]+)?(@[a-z0-9.-]+)?)=(\"([^\"]*)\"|([^[:space:]\"]*))(.*)$ ]]; do
		key=${BASH_REMATCH[1]}
		HF[$t|$key]=${BASH_REMATCH[5]}${BASH_REMATCH[6]}
		line=${BASH_REMATCH[7]}
	done
}
for f in "$LUO_TESTS"/tests/kexec/*.c "$LUO_TESTS"/tests/single/*.c; do
	[ -e "$f" ] && harness_parse "$(basename "$f" .c)" "$f"
done
# The luod tests, programs of the user-space workspace (programs.sh).
for f in "$LUO_REPO"/tools/liveupdate/vmtests/src/bin/luod_*.rs; do
	[ -e "$f" ] && harness_parse "$(basename "$f" .rs)" "$f"
done
# The implementation a checking variant (-debug, -kcsan) is built from.
base_impl() { # impl
	case "$1" in
	*-debug) echo "${1%-debug}" ;;
	*-kcsan) echo "${1%-kcsan}" ;;
	*) echo "$1" ;;
	esac
}
# A HARNESS field of a test, for one of its variants and one implementation
# if given (the most specific setting wins), empty if unset.
hf() { # test key [variant] [impl]
	local k v=${3:-} i=${4:-} b
	b=$(base_impl "$i")
	for k in ${v:+$2.$v@$i} ${v:+$2.$v@$b} ${i:+$2@$i} ${i:+$2@$b} ${v:+$2.$v} $2; do
		case "$k" in *@) continue ;; esac
		if [ -n "${HF[$1|$k]+x}" ]; then
			printf '%s' "${HF[$1|$k]}"
			return
		fi
	done
}
harness_allows() { # test impl-or-mode [variant]
	local impls
	impls=$(hf "$1" impls "${3:-}")
	# A -debug (or -kcsan) variant runs what its implementation runs.
	[ -z "$impls" ] || [[ ",$impls," == *",$2,"* ]] || [[ ",$impls," == *",$(base_impl "$2"),"* ]]
}
harness_cmdline() { # test [variant]
	local c
	c=$(hf "$1" cmdline "${2:-}")
	printf '%s' "${c//%v/${2:-}}"
}

