#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# toolchain.sh VERSION   (e.g. 1.85.0, the kernel's minimum rustc)
#
# Puts Debian's Rust toolchain of that upstream version into
# $LUO_CACHE/toolchains/rustc-VERSION without touching the system's packages:
# rustc-web, libstd-rust-web-X.Y, libstd-rust-web-dev, rust-web-src,
# rust-web-clippy, rustfmt-web and cargo-web are fetched with `apt-get download` through
# a private apt configuration (bookworm and bookworm-security, the newest
# Debian revision of VERSION) and unpacked with `dpkg-deb -x`. bin/ holds
# wrappers (rustc, rustdoc, clippy-driver, rustfmt, cargo) that find the
# unpacked shared libraries (cargo's own, libgit2 and the like, are the
# system's: cargo-web is one of the Rust packages set-up installs); rustc finds its sysroot (rust-src included) next to itself.
# Prints the toolchain directory.
set -euo pipefail
. "$(dirname "$0")/common.sh"

ver=${1:?usage: toolchain.sh VERSION}
tc="$LUO_CACHE/toolchains/rustc-$ver"
# A toolchain unpacked before cargo was part of it is fetched again.
if [ -e "$tc/.complete" ] && [ -x "$tc/bin/cargo" ]; then
	echo "$tc"
	exit 0
fi

apt="$LUO_CACHE/apt-rust"
mkdir -p "$apt/lists/partial" "$tc"
cat >"$apt/sources.list" <<EOF
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security bookworm-security main
EOF
opts=(-o Dir::Etc::sourcelist="$apt/sources.list" -o Dir::Etc::sourceparts=-
      -o Dir::State::Lists="$apt/lists" -o APT::Get::List-Cleanup=0
      -o APT::Sandbox::User=root)
msg "fetching Debian's rustc $ver (bookworm, bookworm-security) into $tc"
apt-get "${opts[@]}" update >"$tc/apt-update.log" 2>&1 ||
	die "could not read Debian bookworm's package lists (see $tc/apt-update.log)"
deb_ver=$(apt-cache "${opts[@]}" madison rustc-web | awk -F' *[|] *' -v v="$ver" \
	'index($2, v "+") == 1 { print $2 }' | sort -V | tail -n 1)
[ -n "$deb_ver" ] || die "Debian bookworm has no rustc-web $ver (apt-cache madison rustc-web: $(apt-cache "${opts[@]}" madison rustc-web | awk -F' *[|] *' '{print $2}' | tr '\n' ' '))"
mm=${ver%.*}
pkgs=(rustc-web "libstd-rust-web-$mm" libstd-rust-web-dev rust-web-src rust-web-clippy rustfmt-web
      cargo-web)
rm -rf "$tc/debs" "$tc/root"
mkdir -p "$tc/debs" "$tc/root" "$tc/bin"
(cd "$tc/debs" && apt-get "${opts[@]}" download "${pkgs[@]/%/=$deb_ver}") >"$tc/apt-download.log" 2>&1 ||
	die "apt-get download of rustc $deb_ver failed (see $tc/apt-download.log)"
# Libraries of that cargo that the system may lack (1.85's needs libpcre3
# and libhttp-parser2.9, 1.96's installed one does not): unpacked beside it.
libs=$(apt-cache "${opts[@]}" show "cargo-web=$deb_ver" | sed -n 's/^Depends: //p' | tr ',' '\n' |
	sed -E 's/^ *//; s/[ (].*//' | grep -E '^lib' | sort -u)
for l in $libs; do
	[ -n "$(dpkg-query -W -f '${db:Status-Abbrev}' "$l" 2>/dev/null | grep '^ii')" ] && continue
	(cd "$tc/debs" && apt-get "${opts[@]}" download "$l") >>"$tc/apt-download.log" 2>&1 ||
		die "apt-get download of $l (for cargo $deb_ver) failed (see $tc/apt-download.log)"
done
for d in "$tc"/debs/*.deb; do
	dpkg-deb -x "$d" "$tc/root"
done
rm -rf "$tc/debs"

libdir="$tc/root/usr/lib/x86_64-linux-gnu"
rm -f "$tc/.complete"
for t in rustc rustdoc clippy-driver rustfmt cargo; do
	cat >"$tc/bin/$t" <<EOF
#!/bin/sh
# Debian's $t $deb_ver, unpacked by toolchain.sh.
LD_LIBRARY_PATH="$libdir:$tc/root/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$tc/root/usr/bin/$t" "\$@"
EOF
	chmod +x "$tc/bin/$t"
done
got=$("$tc/bin/rustc" --version) || die "the unpacked rustc does not run (see $tc)"
case "$got" in
"rustc $ver "*) ;;
*) die "unpacked $got, wanted rustc $ver" ;;
esac
[ -d "$("$tc/bin/rustc" --print sysroot)/lib/rustlib/src/rust/library" ] ||
	die "rust-web-src $deb_ver did not unpack its library sources"
echo "$deb_ver" >"$tc/.complete"
msg "rustc $ver: $got"
echo "$tc"
