#!/usr/bin/env bash
# NAT traversal benchmark: per NAT flavour, connection setup time (p50/p99
# over --runs fresh agent pairs) and tunnel throughput, direct next to
# relayed, on the emulated internet of tests/integration/netns.py (network
# namespaces, nftables NAT, coturn).  Root only.  Prints figures; not a test.
# See docs/bench-nat.md.
#
#   bench/nat.sh [--build DIR] [--runs N] [--bulk-runs N] [--flavours LIST]
#                [--interleave ROUNDS] [--coturn-option LINE]...
#                [--pub-sysctl KEY=VALUE]...
#
# LIST is comma-separated A/B pairs of eim, symmetric, none, udp-block
# (default eim/eim,eim/none,symmetric/symmetric,udp-block/eim).  With
# --interleave only throughput is measured, one run of every flavour per
# round, so that direct and relayed runs see the same machine, and each
# run also reports the UDP datagrams dropped for full receive buffers at
# coturn and at each agent's host.  --coturn-option adds a turnserver.conf
# line, --pub-sysctl sets a sysctl in coturn's namespace (experiments on
# the relay).  Use a Release build: sanitizers change the figures.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD:-$repo/build}
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--build=*) build=${1#--build=}; shift ;;
	-h|--help) sed -n '2,20p' "$0"; exit 0 ;;
	*) args+=("$1"); shift ;;
	esac
done
for b in "$build/agent/peerpipe" "$build/server/peerpipe-server"; do
	if [ ! -x "$b" ]; then
		echo "nat.sh: $b not found: build it first, e.g." >&2
		echo "  cmake -S $repo -B $build -DCMAKE_BUILD_TYPE=Release &&" \
		    "cmake --build $build -j\$(nproc) --target peerpipe-agent peerpipe-server" >&2
		exit 2
	fi
done
export PP_AGENT_BIN=$build/agent/peerpipe PP_SERVER_BIN=$build/server/peerpipe-server
exec /usr/bin/python3 "$repo/bench/natbench.py" ${args[@]+"${args[@]}"}
