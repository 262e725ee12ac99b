#!/usr/bin/env bash
# Adaptive compression benchmark: a tunnel over a link shaped to 50 Mbit/s,
# bulk transfers of compressible (text-like) and random data with
# [tunnel] compression = none, adaptive, lz4 and zstd, next to the raw TCP
# rate of the same link measured in the same run.  Prints figures; it is not
# a test and has no pass/fail threshold.  See docs/bench-tunnel.md.
#
#   bench/adaptive.sh [--build DIR] [--rate RATE] [--text-mb N]
#                     [--random-mb N] [--modes LIST] [--repeat N]
#
#   --rate RATE      tc tbf rate of each direction of the link (default 50mbit)
#   --text-mb N      megabytes (10^6) of compressible data per transfer (200)
#   --random-mb N    megabytes of random data per transfer (100)
#   --mixed-mb N     megabytes of 2 MiB text and random pieces in turn (100):
#                    how fast adaptive notices that the data changed
#   --modes LIST     compression settings to run (none,adaptive,lz4,zstd)
#   --repeat N       transfers per cell; the median is shown (default 1)
#
# Two network namespaces made for the run, joined by a veth pair
# (10.99.0.1/24 gateway side, 10.99.0.2/24 client side), both directions
# shaped with tc tbf.  The signaling server, the gateway and a TCP sink run
# in the gateway's namespace, the client agent and the sender in the
# client's.  Nothing leaves the two namespaces; both are deleted on exit.
# Needs root.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/common.sh
. "$repo/bench/common.sh"
build=${BUILD:-$repo/build}
rate=50mbit
text_mb=200
random_mb=100
mixed_mb=100
modes=none,adaptive,lz4,zstd
repeat=1
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--rate) rate=$2; shift 2 ;;
	--text-mb) text_mb=$2; shift 2 ;;
	--random-mb) random_mb=$2; shift 2 ;;
	--mixed-mb) mixed_mb=$2; shift 2 ;;
	--modes) modes=$2; shift 2 ;;
	--repeat) repeat=$2; shift 2 ;;
	-h|--help) sed -n '2,24p' "$0"; exit 0 ;;
	*) die "unknown option $1 (--help)" ;;
	esac
done

need_build
[ "$(id -u)" = 0 ] || die "run as root: it creates network namespaces"
need_tools bench ip tc ss

# Unique names, so two runs (or other work) never meet.
ns_gw=ppb-gw-$$
ns_cl=ppb-cl-$$
veth_gw=ppbg$$
veth_cl=ppbc$$
gw_ip=10.99.0.1
cl_ip=10.99.0.2
state=$(mktemp -d "${TMPDIR:-/tmp}/peerpipe-adaptive.XXXXXX")
made_ns=()
# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
	stop_started
	for n in "${made_ns[@]}"; do ip netns del "$n" 2>/dev/null || true; done
	rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# (`ip netns exec` execs the command, so a background one's $! is its pid;
# a shell function in the background would be a subshell instead.)
in_gw() { ip netns exec "$ns_gw" "$@"; }
in_cl() { ip netns exec "$ns_cl" "$@"; }

echo "== PeerPipe adaptive compression benchmark =="
machine_info
echo "link       veth $gw_ip <-> $cl_ip, tc tbf $rate each direction"
echo "data       $text_mb MB compressible (text-like), $random_mb MB random, $mixed_mb MB mixed, client -> gateway"

# ---- the link ----
ip netns add "$ns_gw"
made_ns+=("$ns_gw")
ip netns add "$ns_cl"
made_ns+=("$ns_cl")
ip link add "$veth_gw" netns "$ns_gw" type veth peer name "$veth_cl" netns "$ns_cl"
in_gw ip link set lo up
in_cl ip link set lo up
in_gw ip addr add "$gw_ip/24" dev "$veth_gw"
in_cl ip addr add "$cl_ip/24" dev "$veth_cl"
in_gw ip link set "$veth_gw" up
in_cl ip link set "$veth_cl" up
# burst: a few ms at the rate (tbf needs at least rate/HZ); the queue holds
# 50 ms, about what a home router's buffer does.
for side in gw cl; do
	if [ $side = gw ]; then dev=$veth_gw; exe=in_gw; else dev=$veth_cl; exe=in_cl; fi
	$exe tc qdisc add dev "$dev" root tbf rate "$rate" burst 32kb latency 50ms
done
echo "qdisc      $(in_gw tc qdisc show dev "$veth_gw" | head -n1)"

# ---- data ----
# Text-like: web server log lines, JSON API records and SQL inserts with
# varying ids, times, addresses and values, as a database dump or log
# shipping would carry; 32 MiB, cycled by the sender.  Per 16 KiB message
# (what the agent reads at once) it compresses about 3x with lz4.
"$py" - "$state/text.dat" <<'EOF'
import random, sys, json
r = random.Random(42)
paths = ["/api/v1/orders", "/api/v1/users/%d", "/static/app.%s.js", "/login",
         "/api/v1/search?q=%s", "/healthz", "/api/v1/items/%d/reviews"]
agents = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 Version/17.2 Safari/605.1.15",
          "curl/7.88.1", "python-requests/2.31.0", "Go-http-client/1.1"]
words = ("alpha beta gamma delta invoice customer shipping pending paid refund "
         "warehouse berlin paris tokyo lisbon widget gadget premium basic").split()
names = ["Alice", "Bob", "Chen", "Dara", "Emil", "Farah", "Goran", "Hiro", "Ines"]
out = []
size = 0
t = 1700000000
while size < 32 * 1024 * 1024:
    k = r.random()
    t += r.randint(0, 3)
    if k < 0.4:
        p = r.choice(paths)
        if "%d" in p: p = p % r.randint(1, 99999)
        elif "%s" in p: p = p % r.choice(words)
        line = '%d.%d.%d.%d - - [%d] "GET %s HTTP/1.1" %d %d "-" "%s"\n' % (
            r.randint(1, 223), r.randint(0, 255), r.randint(0, 255), r.randint(1, 254),
            t, p, r.choice([200, 200, 200, 304, 404, 500]), r.randint(120, 90000),
            r.choice(agents))
    elif k < 0.7:
        line = json.dumps({"id": r.randint(1, 10**9), "ts": t,
                           "user": {"name": r.choice(names), "id": r.randint(1, 50000)},
                           "status": r.choice(["pending", "paid", "shipped", "refunded"]),
                           "amount": round(r.uniform(1, 5000), 2),
                           "tags": r.sample(words, 3)}) + "\n"
    else:
        line = ("INSERT INTO orders (id, customer_id, created_at, status, total, "
                "city, note) VALUES (%d, %d, to_timestamp(%d), '%s', %.2f, '%s', '%s');\n" % (
                    r.randint(1, 10**9), r.randint(1, 50000), t,
                    r.choice(["pending", "paid", "shipped"]), r.uniform(1, 5000),
                    r.choice(words), " ".join(r.sample(words, 4))))
    out.append(line)
    size += len(line)
open(sys.argv[1], "w").write("".join(out))
EOF
head -c $((32 * 1024 * 1024)) /dev/urandom >"$state/random.dat"
for i in $(seq 0 7); do
	dd if="$state/text.dat" bs=2M skip="$i" count=1 status=none
	dd if="$state/random.dat" bs=2M skip="$i" count=1 status=none
done >"$state/mixed.dat"
# What a codec makes of one 16 KiB message (the first 4 MiB, cut in 16 KiB
# pieces, each compressed alone as the tunnel does).
chunk_ratio() {	# chunk_ratio FILE CMD...
	local f=$1 d=$state/chunks tot=0 comp=0 c
	shift
	mkdir -p "$d"
	head -c $((4 * 1024 * 1024)) "$f" | split -b 16384 - "$d/c"
	for c in "$d"/c*; do
		tot=$((tot + $(stat -c %s "$c")))
		comp=$((comp + $("$@" <"$c" | wc -c)))
	done
	rm -rf "$d"
	awk -v a="$tot" -v b="$comp" 'BEGIN { printf "%.2f", a / b }'
}
if command -v lz4 >/dev/null && command -v zstd >/dev/null; then
	echo "text data  per 16 KiB message: lz4 $(chunk_ratio "$state/text.dat" lz4 -c -1)x," \
		"zstd -1 $(chunk_ratio "$state/text.dat" zstd -c -1)x," \
		"zstd -3 $(chunk_ratio "$state/text.dat" zstd -c -3)x smaller"
fi

# ---- services in the gateway's namespace ----
start "$state/sink.out" ip netns exec "$ns_gw" "$tb" sink 127.0.0.1:0
wait_for "$state/sink.out" '^port [0-9]+' 10 "the sink" "$last_pid"
sink_port=$(awk '/^port/ { print $2 }' "$state/sink.out")
# The same sink reached over the shaped link without a tunnel: the
# reference: a second sink on the veth address.
start "$state/sink2.out" ip netns exec "$ns_gw" "$tb" sink "$gw_ip:0"
wait_for "$state/sink2.out" '^port [0-9]+' 10 "the sink" "$last_pid"
raw_port=$(awk '/^port/ { print $2 }' "$state/sink2.out")

start_signaling "$gw_ip" "$ns_gw"

# send KIND MB ADDR: one transfer from the client's namespace; MB/s
send() {
	local kind=$1 mb=$2 addr=$3 line
	if ! line=$(in_cl "$tb" send "$addr" "$state/$kind.dat" "$((mb * 1000000))" 2>&1); then
		echo "send failed: $line" >&2
		echo fail
		return
	fi
	sed -n 's/.* MBps=\([^ ]*\).*/\1/p' <<<"$line"
}

# cell KIND MB ADDR: the median of --repeat transfers
cell() {
	local i v=()
	for ((i = 0; i < repeat; i++)); do v+=("$(send "$@")"); done
	printf '%s\n' "${v[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'
}

declare -A R	# R[mode,kind] = MB/s, R[mode,kind.wire] = payload/wire
echo
echo "-- raw TCP over the shaped link (no tunnel) --"
R[raw,text]=$(cell text "$text_mb" "$gw_ip:$raw_port")
R[raw,random]=$(cell random "$random_mb" "$gw_ip:$raw_port")
R[raw,mixed]=$(cell mixed "$mixed_mb" "$gw_ip:$raw_port")
echo "  text ${R[raw,text]} MB/s, random ${R[raw,random]} MB/s, mixed ${R[raw,mixed]} MB/s"

run=0
wire_bytes() {	# the client's payload and wire bytes sent so far, and the codec
	"$agent_bin" status --json --control "$state/cl-$run.sock" |
		"$py" -c '
import json, sys
p = json.load(sys.stdin)["peers"][0]
print(p["bytes_out"], p["wire_out"], p["tunnel"]["compression"])'
}

IFS=, read -r -a mode_list <<<"$modes"
for mode in "${mode_list[@]}"; do
	run=$((run + 1))
	echo "-- compression = $mode --"
	room=$(cat /proc/sys/kernel/random/uuid)
	agent_conf "gw-$run" "$url" "$room" "$gw_ip" "$mode" \
		"sink:$sink_port:127.0.0.1:$sink_port" >"$state/gw-$run.conf"
	agent_conf "cl-$run" "$url" "$room" "$cl_ip" "$mode" >"$state/cl-$run.conf"
	ip netns exec "$ns_gw" "$agent_bin" gateway -c "$state/gw-$run.conf" \
		>"$state/gw-$run.out" 2>"$state/gw-$run.log" &
	gw_pid=$!
	started+=("$gw_pid")
	ip netns exec "$ns_cl" "$agent_bin" connect -c "$state/cl-$run.conf" \
		>"$state/cl-$run.out" 2>"$state/cl-$run.log" &
	cl_pid=$!
	started+=("$cl_pid")
	wait_for "$state/cl-$run.out" "^peer gw-$run port $sink_port/TCP -> " 60 \
		"the client agent" "$cl_pid"
	addr=$(listener "$state/cl-$run.out" "gw-$run" "$sink_port")
	for kind in text random mixed; do
		case $kind in
		text) mb=$text_mb ;;
		random) mb=$random_mb ;;
		mixed) mb=$mixed_mb ;;
		esac
		read -r b0 w0 _ <<<"$(wire_bytes)"
		R[$mode,$kind]=$(cell $kind "$mb" "$addr")
		read -r b1 w1 negotiated <<<"$(wire_bytes)"
		R[$mode,$kind.wire]=$(awk -v b=$((b1 - b0)) -v w=$((w1 - w0)) \
			'BEGIN { if (w > 0) printf "%.2f", b / w; else print "-" }')
		echo "  $kind: ${R[$mode,$kind]} MB/s, payload/wire ${R[$mode,$kind.wire]}" \
			"(negotiated: $negotiated)"
	done
	echo "  agents' CPU for the three transfers: $(awk -v t="$(cpu_ticks "$gw_pid" "$cl_pid")" \
		-v c="$(getconf CLK_TCK)" 'BEGIN { printf "%.1f", t / c }') s"
	kill -TERM "$cl_pid" "$gw_pid"
	wait "$cl_pid" "$gw_pid" 2>/dev/null || true
done
echo "load avg   $(cut -d' ' -f1-3 /proc/loadavg) after the run"

# ---- summary ----
echo
echo "== summary: MB/s over $rate (x: against compression = none) =="
x() {	# x MODE KIND
	awk -v a="${R[$1,$2]:-}" -v b="${R[none,$2]:-}" \
		'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "-" }'
}
fmt='%-10s %9s %6s %6s | %9s %6s %6s | %9s %6s %6s\n'
# shellcheck disable=SC2059
printf "$fmt" "" "text MB/s" "x" "ratio" "random" "x" "ratio" "mixed" "x" "ratio"
# shellcheck disable=SC2059
printf "$fmt" "raw TCP" "${R[raw,text]}" "" "" "${R[raw,random]}" "" "" \
	"${R[raw,mixed]}" "" ""
for mode in "${mode_list[@]}"; do
	# shellcheck disable=SC2059
	printf "$fmt" "$mode" \
		"${R[$mode,text]}" "$(x "$mode" text)" "${R[$mode,text.wire]}" \
		"${R[$mode,random]}" "$(x "$mode" random)" "${R[$mode,random.wire]}" \
		"${R[$mode,mixed]}" "$(x "$mode" mixed)" "${R[$mode,mixed.wire]}"
done
echo "(ratio: payload bytes / bytes on the data channels, from the client's status)"
exit 0
