#!/usr/bin/env bash
# Signaling benchmark: a fresh peerpipe-server on 127.0.0.1 (ephemeral port,
# throw-away state directory) and sigbench against it.  Prints figures; it is
# not a test and has no pass/fail threshold.  See docs/bench-signaling.md.
#
#   bench/signaling.sh [--build DIR] [sigbench options...]
#
# Defaults: 10000 clients, relay phases at 100, 1000 and 5000 offers/s for 5 s
# each, 40 s idle (long enough to include the server's first keepalive round
# at its default --idle-timeout 30).  Anything after the options is passed to
# sigbench, e.g. --clients 2000 --rate 1000 --idle 5.  Extra server options go
# in SERVER_ARGS (e.g. SERVER_ARGS="--idle-timeout 60").
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${BUILD:-$repo/build}
clients=10000
args=()
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--build=*) build=${1#--build=}; shift ;;
	--clients) clients=$2; shift 2 ;;
	--clients=*) clients=${1#--clients=}; shift ;;
	-h|--help) sed -n '2,12p' "$0"; exit 0 ;;
	*) args+=("$1"); shift ;;
	esac
done

server_bin=$build/server/peerpipe-server
bench_bin=$build/bench/sigbench
for b in "$server_bin" "$bench_bin"; do
	if [ ! -x "$b" ]; then
		echo "signaling.sh: $b not found: build it first, e.g." >&2
		echo "  cmake -S $repo -B $build -DCMAKE_BUILD_TYPE=Release &&" \
		    "cmake --build $build -j\$(nproc) --target sigbench peerpipe-server" >&2
		echo "  (or point --build / BUILD at your build directory)" >&2
		exit 2
	fi
done

# One descriptor per client on each side.  Both processes inherit this.
need=$((clients + 256))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
	echo "signaling.sh: ulimit -Hn is $hard, below the $need descriptors" \
	    "$clients clients need; raise the hard limit or use --clients" >&2
	exit 2
fi
ulimit -n "$hard"

state=$(mktemp -d "${TMPDIR:-/tmp}/peerpipe-bench.XXXXXX")
server_pid=
# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		sleep 0.5
		kill -KILL "$server_pid" 2>/dev/null || true
	fi
	rm -rf "$state"
}
trap cleanup EXIT

rss_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status" 2>/dev/null || echo "?"; }

# ---- machine ----
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "== PeerPipe signaling benchmark =="
echo "date       $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "machine    $(nproc) CPUs ($cpu), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
echo "kernel     $(uname -sr)"
lws_version=$(pkg-config --modversion libwebsockets 2>/dev/null || echo ?)
echo "libs       libwebsockets ${lws_version%-}," \
    "libuv $(pkg-config --modversion libuv 2>/dev/null || echo ?)," \
    "$(openssl version 2>/dev/null | cut -d' ' -f1-2 || echo OpenSSL ?)"
echo "load avg   $(cut -d' ' -f1-3 /proc/loadavg) before the run (other work on the machine skews figures)"
echo "ulimit -n  $(ulimit -n)"

# ---- server ----
# Generous per-connection rate: the bench measures relay, not the limiter.
# Log level info: the readiness line is logged at info.  SERVER_ARGS is split
# into words on purpose.
# shellcheck disable=SC2086
"$server_bin" --listen 127.0.0.1:0 --state-dir "$state" --rate 10000 \
    --burst 10000 --log-level info ${SERVER_ARGS:-} 2>"$state/server.log" &
server_pid=$!

port=
for _ in $(seq 1 200); do
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "signaling.sh: the server exited during start-up:" >&2
		cat "$state/server.log" >&2
		exit 1
	fi
	port=$(sed -n 's#.*listening on wss://127\.0\.0\.1:\([0-9]*\)/ws.*#\1#p' \
	    "$state/server.log" | head -n1)
	[ -n "$port" ] && break
	sleep 0.05
done
if [ -z "$port" ]; then
	echo "signaling.sh: no 'listening on wss://127.0.0.1:PORT/ws' line from the" \
	    "server within 10 s; its log:" >&2
	cat "$state/server.log" >&2
	exit 1
fi
echo "server     $server_bin pid $server_pid on wss://127.0.0.1:$port/ws," \
    "VmRSS $(rss_kb "$server_pid" VmRSS) kB with 0 clients ${SERVER_ARGS:+(args: $SERVER_ARGS)}"

# ---- load ----
set +e
"$bench_bin" --url "wss://127.0.0.1:$port/ws" --server-pid "$server_pid" \
    --clients "$clients" --rate 100,1000,5000 --duration 5 --idle 40 \
    ${args[@]+"${args[@]}"} 2>"$state/sigbench.log"
bench_rc=$?
set -e
if [ $bench_rc -ne 0 ]; then
	echo "signaling.sh: sigbench exited with $bench_rc; its log:" >&2
	tail -n 20 "$state/sigbench.log" >&2
fi

# ---- after ----
echo
echo "-- server after the run --"
echo "VmRSS now  $(rss_kb "$server_pid" VmRSS) kB, VmHWM $(rss_kb "$server_pid" VmHWM) kB"
echo "load avg   $(cut -d' ' -f1-3 /proc/loadavg) after the run"
warns=$(grep -c -E ' (warn|error) ' "$state/server.log" || true)
echo "server log $warns warn/error lines$( [ "$warns" -gt 0 ] && echo '; the first ones:')"
grep -E ' (warn|error) ' "$state/server.log" | head -n 5 | sed 's/^/  /' || true
t0=$(date +%s%N)
kill -TERM "$server_pid"
stopped=no
for _ in $(seq 1 100); do
	if ! kill -0 "$server_pid" 2>/dev/null; then stopped=yes; break; fi
	sleep 0.05
done
if [ $stopped = yes ]; then
	wait "$server_pid" && rc=0 || rc=$?
	echo "shutdown   SIGTERM -> exit $rc in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
else
	echo "shutdown   still running 5 s after SIGTERM (killed)"
fi
server_pid=
exit $bench_rc
