#!/usr/bin/env bash
# IPS benchmark: the tunnel (client -> peerpipe connect -> WebRTC -> peerpipe
# gateway -> service, on loopback) with the gateway's IPS off, inline with
# PeerPipe's own rules, and inline with all of ET Open, in one run, next to
# the direct loopback path; then the time from an alert to the cut of the
# attacking connection.  Prints figures; it is not a test and has no
# pass/fail threshold.  See docs/bench-ips.md.
#
#   bench/ips.sh [--build DIR] [--seconds S] [--rounds N] [--rr-seconds S]
#                [--attacks N] [--et-open DIR] [--configs LIST]
#
#   --seconds S      iperf3 -t per cell (default 10)
#   --rounds N       each throughput cell N times, configurations in turn;
#                    the figure is the median (default 3)
#   --rr-seconds S   rounds of 1 s of round trips and of connections/s,
#                    configurations in turn (default 5)
#   --attacks N      attack requests per inline configuration, each from a
#                    fresh client agent (default 5)
#   --et-open DIR    the ET Open rules directory (default
#                    <repo>/../shared/data/et-open)
#   --configs LIST   any of direct,off,demo,et (default all four)
#
# Everything listens on 127.0.0.1 / 127.0.1.x, on ports the kernel picks.
# Needs root (netfilter NFQUEUE rules for the inline IPS) and Suricata 7
# (scripts/install-deps.sh ips), iperf3 (scripts/install-deps.sh bench).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/common.sh
. "$repo/bench/common.sh"
build=${BUILD:-$repo/build}
secs=10
rounds=3
rr_secs=5
attacks=5
et_dir=$repo/../shared/data/et-open
configs=direct,off,demo,et
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--rr-seconds) rr_secs=$2; shift 2 ;;
	--attacks) attacks=$2; shift 2 ;;
	--et-open) et_dir=$2; shift 2 ;;
	--configs) configs=$2; shift 2 ;;
	-h|--help) sed -n '2,25p' "$0"; exit 0 ;;
	*) die "unknown option $1 (--help)" ;;
	esac
done

need_build
need_tools bench iperf3 ss
has() { [[ ",$configs," == *",$1,"* ]]; }
if has demo || has et; then
	[ "$(id -u)" = 0 ] || die "run as root: the inline IPS installs netfilter rules"
	need_tools ips suricata iptables
fi
if has et; then
	[ -f "$et_dir/classification.config" ] ||
		die "no ET Open rules in $et_dir (--et-open DIR)"
	et_dir=$(cd "$et_dir" && pwd)
fi

state=$(mktemp -d "${TMPDIR:-/tmp}/peerpipe-ipsbench.XXXXXX")
# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
	stop_started
	rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# NFQUEUE numbers must be unique on the host (tests and other gateways may
# run): two unused ones, starting at a random place.
free_queue() {
	local q used
	used=$(awk '{ print $1 }' /proc/net/netfilter/nfnetlink_queue 2>/dev/null || true)
	q=$((40000 + RANDOM % 20000))
	while grep -qx "$q" <<<"$used" || [[ " ${queues_taken:-} " == *" $q "* ]]; do
		q=$((q + 1))
	done
	queues_taken="${queues_taken:-} $q"
	echo "$q"
}

label() {
	case $1 in
	direct) echo "direct loopback" ;;
	off) echo "tunnel, IPS off" ;;
	demo) echo "tunnel, inline, PeerPipe rules" ;;
	et) echo "tunnel, inline, PeerPipe + ET Open" ;;
	esac
}

echo "== PeerPipe IPS benchmark =="
machine_info
echo "tools      $(iperf3 --version | head -n1 | cut -d' ' -f1-2)$(command -v suricata >/dev/null && echo ", $(suricata -V 2>&1 | sed -n 's/.*Suricata version \([^ ]*\).*/Suricata \1/p')")"
echo "settings   iperf3 -t $secs x $rounds rounds, round trips $rr_secs x 1 s, $attacks attacks per inline configuration"

# ---- services ----
start_services

declare -A ip_addr echo_addr fwd_pids room
ip_addr[direct]=127.0.0.1:$iperf_port
echo_addr[direct]=127.0.0.1:$echo_port
fwd_pids[direct]=

# ---- signaling ----
start_signaling 127.0.0.1

# conf NAME ROOM [SERVICE ...]: an agent config with its own state dir.
conf() {
	local name=$1 rm=$2
	shift 2
	agent_conf_ips=own agent_conf "$name" "$url" "$rm" 127.0.0.1 none "$@" |
		sed "s|^log_level = info\$|log_level = info\nstate_dir = $state/$name|"
}

# ---- gateways: one per configuration, each in its own room, all started
# at once (ET Open takes a while to load), then one client each ----
tunnels=()
for c in off demo et; do has "$c" && tunnels+=("$c"); done
for c in "${tunnels[@]}"; do
	room[$c]=$(cat /proc/sys/kernel/random/uuid)
	gw=ips-gw-$c
	conf "$gw" "${room[$c]}" "iperf:$iperf_port:127.0.0.1:$iperf_port" \
		"echo:$echo_port:127.0.0.1:$echo_port" >"$state/$gw.conf"
	case $c in
	off) printf '\n[ips]\nmode = off\n' ;;
	demo) printf '\n[ips]\nmode = inline\nqueue = %s\nrules = %s\n' \
		"$(free_queue)" "$repo/rules/peerpipe.rules" ;;
	et) printf '\n[ips]\nmode = inline\nqueue = %s\nrules = %s\net_open = %s\n' \
		"$(free_queue)" "$repo/rules/peerpipe.rules" "$et_dir" ;;
	esac >>"$state/$gw.conf"
	"$agent_bin" check-config -c "$state/$gw.conf" >/dev/null
	"$agent_bin" gateway -c "$state/$gw.conf" >"$state/$gw.out" 2>"$state/$gw.log" &
	started+=("$!")
	declare -g "gwpid_$c=$!"
done
for c in "${tunnels[@]}"; do
	[ "$c" = off ] && continue
	p=gwpid_$c
	wait_for "$state/ips-gw-$c.log" 'IPS ready \(inline\)' 600 \
		"gateway ips-gw-$c (Suricata loading its rules)" "${!p}"
done
for c in "${tunnels[@]}"; do
	cl=ips-cl-$c
	p=gwpid_$c
	conf "$cl" "${room[$c]}" >"$state/$cl.conf"
	"$agent_bin" connect -c "$state/$cl.conf" >"$state/$cl.out" 2>"$state/$cl.log" &
	started+=("$!")
	clp=$!
	wait_for "$state/$cl.out" "^peer ips-gw-$c port $iperf_port/TCP -> " 60 \
		"the client agent $cl" "$clp"
	wait_for "$state/$cl.out" "^peer ips-gw-$c port $echo_port/TCP -> " 60 \
		"the client agent $cl" "$clp"
	ip_addr[$c]=$(listener "$state/$cl.out" "ips-gw-$c" "$iperf_port")
	echo_addr[$c]=$(listener "$state/$cl.out" "ips-gw-$c" "$echo_port")
	fwd_pids[$c]="${!p} $clp"
	if [ "$c" != off ]; then
		spid=$(cat "$state/ips-gw-$c/ips/suricata.pid" 2>/dev/null || true)
		[ -n "$spid" ] && kill -0 "$spid" 2>/dev/null &&
			fwd_pids[$c]+=" $spid"
		# Suricata's own count of the rules it loaded
		rules=$(grep -hoE '[0-9]+ rules successfully loaded, [0-9]+ rules failed' \
			"$state/ips-gw-$c/ips/"*.out "$state/ips-gw-$c/ips/"*.log 2>/dev/null |
			tail -n 1 || true)
		echo "ips-gw-$c  $(label "$c"): ${rules:-rule count not found}; gateway + client + Suricata pids ${fwd_pids[$c]}"
	else
		echo "ips-gw-$c   $(label "$c"); gateway + client pids ${fwd_pids[$c]}"
	fi
done
echo

declare -A R	# R[config,metric]: the figures of the summary
declare -A T	# T[config,cell]: one figure per round

# iperf_cell CONFIG NAME ARGS...: one iperf3 run; Gbit/s and the CPU of the
# forwarders (gateway, client agent, Suricata).
iperf_cell() {
	local p=$1 name=$2
	if ! iperf_measure "$@"; then
		T[$p,$name.fail]+=x
		return
	fi
	T[$p,$name]+="$gbps "
	T[$p,$name.cpu]+="$spgb "
	iperf_line 6 "$p" "$name"
}

all=()
for c in direct off demo et; do has "$c" && all+=("$c"); done

# Throughput: each cell for every configuration in turn, so that other work
# on the machine hits them alike.
echo "-- throughput: $rounds rounds, each cell for each configuration in turn --"
for ((r = 1; r <= rounds; r++)); do
	echo " round $r"
	for cell in 1 4 1R; do
		for c in "${all[@]}"; do
			case $cell in
			1) iperf_cell "$c" 1 ;;
			4) iperf_cell "$c" 4 -P 4 ;;
			1R) iperf_cell "$c" 1R -R ;;
			esac
		done
	done
done
for c in "${all[@]}"; do
	for cell in 1 4 1R 1.cpu; do
		R[$c,$cell]=$(tr ' ' '\n' <<<"${T[$c,$cell]:-}" | { grep -v '^-\?$' || true; } | median)
	done
	printf '  %-6s medians: 1 stream %s, 4 streams %s, 1 stream -R %s Gbit/s (rounds: %s| %s| %s)\n' \
		"$c" "${R[$c,1]}" "${R[$c,4]}" "${R[$c,1R]}" "${T[$c,1]:-}" "${T[$c,4]:-}" "${T[$c,1R]:-}"
done

echo "-- 64-byte round trips and connections/s: $rr_secs rounds of 1 s each, configurations in turn --"
round_trips "$rr_secs" 6 "${all[@]}"

# ---- alert to cut ----
# attack C I: a fresh client agent intr-C-I joins C's room and sends one
# line carrying the demo marker (sid 9000001, "EVIL 0xdeadc0de") to the
# echo service.  Inline, Suricata drops it (no echo comes back), the
# gateway cuts the connection and bans the intruder.  Figures from the
# gateway's security.json: the eve alert's timestamp (Suricata's packet
# time) to the gateway's "cut" event; and the client's send to the cut and
# to the moment the client saw its connection close.
attack() {
	local c=$1 i=$2 name=intr-$1-$2 pid addr res
	conf "$name" "${room[$c]}" >"$state/$name.conf"
	"$agent_bin" connect -c "$state/$name.conf" >"$state/$name.out" 2>"$state/$name.log" &
	pid=$!
	started+=("$pid")
	wait_for "$state/$name.out" "^peer ips-gw-$c port $echo_port/TCP -> " 60 \
		"the intruder's agent $name" "$pid"
	addr=$(listener "$state/$name.out" "ips-gw-$c" "$echo_port")
	res=$($py - "$addr" "$state/ips-gw-$c/security.json" "$name" <<'EOF'
import json, socket, sys, time
from datetime import datetime

host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
# one clean round trip first: the channel is open end to end
s.sendall(b"hello\n")
got = b""
while len(got) < 6:
    d = s.recv(64)
    if not d:
        break
    got += d
if got != b"hello\n":
    print("error clean round trip failed: %r" % got)
    sys.exit(0)
t_send = time.time()
s.sendall(b"GET /x HTTP/1.1\r\nX-Note: EVIL 0xdeadc0de\r\n\r\n")
echoed, t_close = 0, None
s.settimeout(10)
try:
    while True:
        d = s.recv(4096)
        if not d:
            break
        echoed += len(d)
except OSError:
    pass
t_close = time.time()
s.close()

def ts(v):
    return datetime.strptime(v, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()

cut = None
deadline = time.time() + 10
while cut is None and time.time() < deadline:
    try:
        with open(sys.argv[2]) as f:
            for l in f:
                e = json.loads(l)
                pp = e.get("peerpipe", {})
                if pp.get("event") == "cut" and pp.get("peer") == sys.argv[3]:
                    cut = e
                    break
    except FileNotFoundError:
        pass
    if cut is None:
        time.sleep(0.05)
if cut is None:
    print("error no cut event for %s; %d bytes echoed" % (sys.argv[3], echoed))
    sys.exit(0)
t_cut, t_eve = ts(cut["timestamp"]), ts(cut["peerpipe"]["eve_timestamp"])
print("ok %.3f %.3f %.3f %d %s %s" % ((t_cut - t_eve) * 1e3,
      (t_cut - t_send) * 1e3, (t_close - t_send) * 1e3, echoed,
      cut["peerpipe"]["signature_id"], cut["peerpipe"]["action"]))
EOF
)
	stop_pid "$pid"
	echo "$res"
}

for c in demo et; do
	has "$c" || continue
	echo "-- alert to cut: $attacks attacks through ips-gw-$c, a fresh client each --"
	a2c='' s2c='' s2x='' n_ok=0 n_echo=0
	for ((i = 1; i <= attacks; i++)); do
		res=$(attack "$c" "$i")
		read -r st v1 v2 v3 echoed sid action <<<"$res"
		if [ "$st" != ok ]; then
			echo "  attack $i: $res"
			continue
		fi
		n_ok=$((n_ok + 1))
		[ "$echoed" -gt 0 ] && n_echo=$((n_echo + 1))
		a2c+="$v1 " s2c+="$v2 " s2x+="$v3 "
		printf '  attack %d: sid %s %s, %s bytes echoed; eve alert -> cut %s ms, send -> cut %s ms, send -> client sees the close %s ms\n' \
			"$i" "$sid" "$action" "$echoed" "$v1" "$v2" "$v3"
	done
	R[$c,a2c]=$(median_of "$a2c")
	R[$c,a2cmax]=$(tr ' ' '\n' <<<"$a2c" | { grep . || true; } | sort -g | tail -n 1)
	R[$c,s2c]=$(median_of "$s2c")
	R[$c,s2x]=$(median_of "$s2x")
	R[$c,cuts]="$n_ok/$attacks"
	R[$c,leaked]="$n_echo"
	bans=$("$agent_bin" bans --control "$state/ips-gw-$c.sock" 2>/dev/null | grep -c 'intr-' || true)
	echo "  ips-gw-$c: $n_ok of $attacks attacks cut, $n_echo reached the echo service, $bans intruders banned"
done

# the bench clients were never cut
for c in demo et; do
	has "$c" || continue
	if line=$("$tb" rr "${echo_addr[$c]}" 64 0.5 2>&1); then
		echo "  ips-cl-$c still works after the attacks: round trip p50 $(kv "$line" p50_us) us"
	else
		echo "  ips-cl-$c FAILS after the attacks: $line"
	fi
done
echo "load avg   $(cut -d' ' -f1-3 /proc/loadavg) after the run"

# ---- summary ----
echo
echo "== summary =="
printf '%-32s %8s %8s %8s %8s %9s %9s\n' "" direct "IPS off" "PP rules" "ET Open" "PP/off" "ET/off"
row() {
	printf '%-32s %8s %8s %8s %8s %9s %9s\n' "$1" "$(val direct "$2")" "$(val off "$2")" \
		"$(val demo "$2")" "$(val et "$2")" \
		"$(ratio "$(val demo "$2")" "$(val off "$2")")" \
		"$(ratio "$(val et "$2")" "$(val off "$2")")"
}
row "iperf3 1 stream, Gbit/s" 1
row "iperf3 4 streams, Gbit/s" 4
row "iperf3 1 stream -R, Gbit/s" 1R
row "forwarders CPU s/GB (1 st.)" 1.cpu
row "64 B round trip p50, us" p50
row "64 B round trip p99, us" p99
row "connections/s" cps
row "connection p50, us" cps50
row "eve alert -> cut p50, ms" a2c
row "eve alert -> cut max, ms" a2cmax
row "send -> cut p50, ms" s2c
row "send -> client sees close, ms" s2x
row "attacks cut" cuts
row "attacks echoed back (leaked)" leaked
if has et && has off; then
	r1=$(ratio "$(val et 1)" "$(val off 1)")
	r4=$(ratio "$(val et 4)" "$(val off 4)")
	echo "aim: with ET Open the tunnel keeps >= 70% of its IPS-off throughput:" \
		"1 stream $r1, 4 streams $r4 ->" \
		"$(awk -v a="$r1" -v b="$r4" 'BEGIN { print (a + 0 >= 0.7 && b + 0 >= 0.7) ? "met" : "NOT met" }')"
fi
exit 0
