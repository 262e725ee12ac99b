#!/usr/bin/env bash
# Builds usrsctp for PeerPipe from Debian's own source package: the version of
# libusrsctp-dev installed on this machine, with Debian's patches and Debian's
# compiler flags (dpkg-buildflags: -O2, hardening), as a static library that
# cmake/deps.cmake then prefers over Debian's shared one.
#
# Why: Debian's libusrsctp2 binary is built with the upstream autotools
# default --enable-debug, which means -O0 (objdump -d of any function shows
# every argument spilled to the stack).  SCTP is on every byte the tunnel
# carries; built with -O2 it takes about a tenth less CPU per byte moved
# (docs/bench-tunnel.md).  Same source, same version, same options otherwise
# (SCTP_DEBUG kept, as Debian has it).
#
# The source comes from the machine's own bookworm mirror through a private
# apt configuration (a deb-src source derived from the existing bookworm
# source, never written to /etc/apt; apt checks the files against the signed
# index).  Idempotent: nothing to do when PREFIX already holds this version.
#
# Usage: build-usrsctp.sh [PREFIX]    default /usr/local/lib/peerpipe-usrsctp
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib/apt-mirror.sh"

prefix=${1:-/usr/local/lib/peerpipe-usrsctp}
say() { echo "build-usrsctp: $*" >&2; }

version=$(dpkg-query -W -f='${Version}' libusrsctp-dev 2>/dev/null) || {
	say "libusrsctp-dev is not installed (scripts/install-deps.sh build)"
	exit 1
}
have() {
	[ -f "$prefix/VERSION" ] && [ "$(cat "$prefix/VERSION")" = "$version" ] &&
		[ -f "$prefix/lib/libusrsctp.a" ]
}
have && exit 0
# One build at a time (parallel test runs share the prefix).
mkdir -p "$(dirname "$prefix")"
exec 9>"$prefix.lock"
flock 9
have && exit 0
for t in cmake cc dpkg-source dpkg-buildflags; do
	command -v "$t" >/dev/null || { say "$t not found (scripts/install-deps.sh build)"; exit 1; }
done
bookworm_mirror || {
	say "no 'bookworm' apt source to derive the mirror from; Debian's unoptimised libusrsctp2 stays in use"
	exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/peerpipe-usrsctp.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/parts" "$work/lists/partial" "$work/cache/archives/partial" "$work/src"
deb822_stanza deb-src bookworm > "$work/parts/debian-src.sources"
apt_cfg=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/parts"
	-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
	-o APT::Sandbox::User=root -o Debug::NoLocking=1)
say "fetching Debian's source of libusrsctp $version"
apt-get "${apt_cfg[@]}" update -qq
(cd "$work/src" && apt-get "${apt_cfg[@]}" source -qq --download-only "libusrsctp=$version" >/dev/null)
dsc=$(ls "$work"/src/*.dsc)
# The files were checked against the signed Sources index by apt already.
if ! dpkg-source -x "$dsc" "$work/src/tree" >/dev/null 2>&1; then
	rm -rf "$work/src/tree"
	dpkg-source --no-check -x "$dsc" "$work/src/tree" >/dev/null
fi

cflags="$(cd "$work/src/tree" && dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
say "building with: $cflags -fPIC"
cmake -S "$work/src/tree" -B "$work/build" -DCMAKE_BUILD_TYPE=None \
	-DCMAKE_C_FLAGS="$cflags -fPIC -Wno-address-of-packed-member" \
	-DBUILD_SHARED_LIBS=OFF -Dsctp_build_programs=OFF -Dsctp_werror=OFF \
	-Dsctp_debug=ON -DCMAKE_INSTALL_PREFIX="$prefix.new" \
	-DCMAKE_INSTALL_LIBDIR=lib -DCMAKE_INSTALL_INCLUDEDIR=include >/dev/null
cmake --build "$work/build" -j"$(nproc)" >/dev/null
rm -rf "$prefix.new"
cmake --install "$work/build" >/dev/null
echo "$version" > "$prefix.new/VERSION"
rm -rf "$prefix"
mv "$prefix.new" "$prefix"
say "installed usrsctp $version (optimised, static) in $prefix"
