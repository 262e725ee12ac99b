#!/usr/bin/env bash
# Installs what PeerPipe needs from Debian, by group, only when missing.
#   install-deps.sh build    compilers, CMake and the -dev libraries, and an
#                            optimised usrsctp from Debian's source package
#                            (scripts/build-usrsctp.sh: Debian's binary is -O0)
#   install-deps.sh test     build + cmocka, clang (fuzzing), Python test peers
#   install-deps.sh demo     what scripts/run's demo uses (python3, curl)
#   install-deps.sh bench    benchmarks: iperf3, OpenSSH (ssh -L reference)
#   install-deps.sh nat      NAT traversal tests: nftables, conntrack, coturn
#   install-deps.sh ips      Suricata 7 (bookworm-backports), iptables, and the
#                            attack tools the IPS tests run (sqlmap, nmap, dirb)
# Chromium and playwright-core come from scripts/install-browser.sh.
# Run as root (or it re-runs itself through sudo when available).
set -euo pipefail

if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null; then exec sudo -E "$0" "$@"; fi
	echo "install-deps: run as root to install packages" >&2
	exit 1
fi

here=$(cd "$(dirname "$0")" && pwd)

build_pkgs=(build-essential cmake pkg-config libssl-dev libuv1-dev
	libjansson-dev libwebsockets-dev libwebsockets-evlib-uv libnice-dev
	libglib2.0-dev libusrsctp-dev libzstd-dev liblz4-dev)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev python3 python3-pytest
	python3-websockets python3-aiortc python3-lz4 python3-zstandard procps iproute2)
# Suricata 7 comes from bookworm-backports (bookworm itself has 6.0).
ips_pkgs=(suricata iptables)
# tcpdump reads the gateway's evidence pcaps (the IPS tests check them with it)
ips_pkgs+=(tcpdump)
# the attack tools and the curl that test_ips_attacks.py runs through the tunnel
ips_pkgs+=(sqlmap nmap dirb curl)
backports_pkgs=(suricata)

want=() usrsctp=no
for g in "${@:-build}"; do
	case "$g" in
	build) want+=("${build_pkgs[@]}"); usrsctp=yes ;;
	test) want+=("${build_pkgs[@]}" "${test_pkgs[@]}"); usrsctp=yes ;;
	demo) want+=(python3 curl) ;;
	bench) want+=(iperf3 openssh-server openssh-client iproute2 procps python3 zstd lz4) ;;
	nat) want+=(iproute2 nftables conntrack coturn) ;;
	ips) want+=("${ips_pkgs[@]}") ;;
	*) echo "install-deps: unknown group '$g' (build, test, demo, bench, nat, ips)" >&2; exit 2 ;;
	esac
done

missing=()
for p in "${want[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
# build_usrsctp: the optimised usrsctp; without it the build falls back to
# Debian's libusrsctp2 (cmake says so), so a failure here only warns.
build_usrsctp() {
	[ "$usrsctp" = yes ] || return 0
	"$here/build-usrsctp.sh" ||
		echo "install-deps: WARNING: no optimised usrsctp (see above); building against Debian's -O0 libusrsctp2 instead" >&2
}

if [ ${#missing[@]} -eq 0 ]; then
	build_usrsctp
	exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another installer (a parallel test run) may hold apt's lock: wait for it.
apt_opts=(-o DPkg::Lock::Timeout=600)
from_bp=() plain=()
for p in "${missing[@]}"; do
	case " ${backports_pkgs[*]} " in
	*" $p "*) from_bp+=("$p") ;;
	*) plain+=("$p") ;;
	esac
done
[ ${#from_bp[@]} -gt 0 ] && "$here/enable-backports.sh"
apt-get "${apt_opts[@]}" update -qq
[ ${#plain[@]} -gt 0 ] &&
	apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${plain[@]}" >/dev/null
[ ${#from_bp[@]} -gt 0 ] &&
	apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends \
		-t bookworm-backports "${from_bp[@]}" >/dev/null
build_usrsctp
exit 0
