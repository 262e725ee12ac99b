#!/usr/bin/env bash
# Tunnel benchmark: the full path client -> peerpipe connect -> WebRTC ->
# peerpipe gateway -> service on loopback, next to the direct loopback path
# and `ssh -L` through a throw-away sshd, all measured in the same run.
# Prints figures; it is not a test and has no pass/fail threshold.  See
# docs/bench-tunnel.md.
#
#   bench/tunnel.sh [--build DIR] [--seconds S] [--rr-seconds S]
#                   [--conns N] [--compression C] [--paths LIST]
#
#   --seconds S      iperf3 -t per cell (default 10)
#   --rr-seconds S   rounds of 1 s of round trips and of connections/s per
#                    path, paths in turn (default 5)
#   --conns N        idle connections for the memory figure (default 500)
#   --compression C  [tunnel] compression of both agents (default none)
#   --paths LIST     any of direct,ssh,peerpipe (default all three)
#   --perf           record the agents with `perf record -g` during the
#                    single-stream peerpipe iperf3 cell; reports under $PERF_DIR
#
# Everything listens on 127.0.0.1 / 127.0.1.x, on ports the kernel picks.
# Needs root for sshd (its privilege separation).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=bench/common.sh
. "$repo/bench/common.sh"
build=${BUILD:-$repo/build}
secs=10
rr_secs=5
conns=500
comp=none
paths=direct,ssh,peerpipe
perf=no
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--seconds) secs=$2; shift 2 ;;
	--rr-seconds) rr_secs=$2; shift 2 ;;
	--conns) conns=$2; shift 2 ;;
	--compression) comp=$2; shift 2 ;;
	--paths) paths=$2; shift 2 ;;
	--perf) perf=yes; shift ;;
	-h|--help) sed -n '2,21p' "$0"; exit 0 ;;
	*) die "unknown option $1 (--help)" ;;
	esac
done

need_build
need_tools bench iperf3 sshd ssh ssh-keygen ss
[ "$(id -u)" = 0 ] || die "run as root: sshd needs it"
if [ "$perf" = yes ]; then
	command -v perf >/dev/null || die "--perf: perf not found"
	perf_dir=${PERF_DIR:-/tmp/peerpipe-perf}
	mkdir -p "$perf_dir"
fi

# Three descriptors per held connection in the agents, two in sshd/ssh.
need=$((conns * 3 + 256))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
	die "ulimit -Hn is $hard, below the $need descriptors --conns $conns needs"
fi
ulimit -n "$hard"

state=$(mktemp -d "${TMPDIR:-/tmp}/peerpipe-tunbench.XXXXXX")
made_run_sshd=no
# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
	stop_started
	[ "$made_run_sshd" = yes ] && rmdir /run/sshd 2>/dev/null
	rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

has_path() { [[ ",$paths," == *",$1,"* ]]; }

echo "== PeerPipe tunnel benchmark =="
machine_info
echo "tools      $(iperf3 --version | head -n1 | cut -d' ' -f1-2), $(ssh -V 2>&1 | cut -d, -f1)"
echo "settings   iperf3 -t $secs, round trips $rr_secs x 1 s, $conns idle connections, compression $comp"

# ---- services ----
start_services

declare -A ip_addr echo_addr fwd_pids
ip_addr[direct]=127.0.0.1:$iperf_port
echo_addr[direct]=127.0.0.1:$echo_port
fwd_pids[direct]=

# ---- ssh -L ----
if has_path ssh; then
	ssh_port=$(free_port)
	ssh_ip=$(free_port)
	ssh_echo=$(free_port)
	ssh-keygen -q -t ed25519 -N '' -f "$state/host_key"
	ssh-keygen -q -t ed25519 -N '' -f "$state/client_key"
	cp "$state/client_key.pub" "$state/authorized_keys"
	cat >"$state/sshd_config" <<EOF
Port $ssh_port
ListenAddress 127.0.0.1
HostKey $state/host_key
PidFile none
AuthorizedKeysFile $state/authorized_keys
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
AllowTcpForwarding yes
MaxSessions 10
LogLevel ERROR
EOF
	if [ ! -d /run/sshd ]; then
		mkdir -m 0755 /run/sshd
		made_run_sshd=yes
	fi
	start "$state/sshd.log" "$(command -v sshd)" -D -e -f "$state/sshd_config"
	sshd_pid=$last_pid
	wait_listen "$ssh_port" 10 "sshd"
	start "$state/ssh.log" ssh -F /dev/null -i "$state/client_key" \
		-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o BatchMode=yes -o ExitOnForwardFailure=yes -o LogLevel=ERROR \
		-N -T -p "$ssh_port" \
		-L "127.0.0.1:$ssh_ip:127.0.0.1:$iperf_port" \
		-L "127.0.0.1:$ssh_echo:127.0.0.1:$echo_port" root@127.0.0.1
	ssh_pid=$last_pid
	wait_listen "$ssh_echo" 20 "ssh -L"
	wait_listen "$ssh_ip" 20 "ssh -L"
	# The session's processes are the ones that carry data.
	ip_addr[ssh]=127.0.0.1:$ssh_ip
	echo_addr[ssh]=127.0.0.1:$ssh_echo
	cipher=$(ssh -F /dev/null -G 127.0.0.1 2>/dev/null | awk '$1 == "ciphers" { split($2, c, ","); print c[1] }')
	echo "ssh        OpenSSH client and sshd on 127.0.0.1:$ssh_port, default cipher order (first: $cipher)"
fi

# ---- peerpipe ----
if has_path peerpipe; then
	start_signaling 127.0.0.1
	room=$(cat /proc/sys/kernel/random/uuid)
	agent_conf bench-gw "$url" "$room" 127.0.0.1 "$comp" \
		"iperf:$iperf_port:127.0.0.1:$iperf_port" \
		"echo:$echo_port:127.0.0.1:$echo_port" >"$state/gw.conf"
	agent_conf bench-cl "$url" "$room" 127.0.0.1 "$comp" >"$state/cl.conf"
	"$agent_bin" check-config -c "$state/gw.conf" >/dev/null
	"$agent_bin" check-config -c "$state/cl.conf" >/dev/null
	# stdout (the listener lines) and stderr (the log) apart
	"$agent_bin" gateway -c "$state/gw.conf" >"$state/gw.out" 2>"$state/gw.log" &
	gw_pid=$!
	started+=("$gw_pid")
	"$agent_bin" connect -c "$state/cl.conf" >"$state/cl.out" 2>"$state/cl.log" &
	cl_pid=$!
	started+=("$cl_pid")
	wait_for "$state/cl.out" "^peer bench-gw port $iperf_port/TCP -> " 60 \
		"the client agent" "$cl_pid"
	wait_for "$state/cl.out" "^peer bench-gw port $echo_port/TCP -> " 60 \
		"the client agent" "$cl_pid"
	ip_addr[peerpipe]=$(listener "$state/cl.out" bench-gw "$iperf_port")
	echo_addr[peerpipe]=$(listener "$state/cl.out" bench-gw "$echo_port")
	fwd_pids[peerpipe]="$gw_pid $cl_pid"
	path_json=$("$agent_bin" status --json --control "$state/bench-cl.sock")
	echo "peerpipe   $($py -c '
import json, sys
p = json.loads(sys.argv[1])["peers"][0]
t = p["tunnel"]
print("peer %s, path %s %s -> %s, tunnel v%d compression %s%s, setup %d ms" % (
    p["name"], p["path"]["type"], p["path"]["local_type"],
    p["path"]["remote_type"], t["version"], t["compression"],
    " (flow)" if t["flow"] else "", p["setup_ms"]))' "$path_json")"
fi
if has_path ssh; then
	# sshd forked the session's processes by now
	fwd_pids[ssh]="$ssh_pid $(descendants "$sshd_pid" | tr '\n' ' ')"
fi
echo

declare -A R	# R[path,metric]

# iperf_cell PATH NAME ARGS...: one iperf3 run; Gbit/s and forwarder CPU.
iperf_cell() {
	local p=$1 name=$2 perf_pid=
	if [ "$perf" = yes ] && [ "$p" = peerpipe ] && [ "$name" = 1 ]; then
		perf record -g -o "$perf_dir/peerpipe-agents.data" \
			-p "${fwd_pids[peerpipe]// /,}" -- sleep "$secs" \
			>"$state/perf.log" 2>&1 &
		perf_pid=$!
	fi
	if ! iperf_measure "$@"; then
		R[$p,$name]=fail
		return
	fi
	[ -n "$perf_pid" ] && wait "$perf_pid"
	R[$p,$name]=$gbps
	R[$p,$name.cpu]=$spgb
	iperf_line 8 "$p" "$name"
}

run_path() {
	local p=$1
	echo "-- $p --"
	iperf_cell "$p" 1
	iperf_cell "$p" 4 -P 4
	iperf_cell "$p" 1R -R
	iperf_cell "$p" 4R -R -P 4
}

# Round trips and connection rates, the paths taking turns.
latency() {
	local p paths_on=()
	for p in direct ssh peerpipe; do has_path "$p" && paths_on+=("$p"); done
	echo "-- 64-byte round trips and connections/s: $rr_secs rounds of 1 s each, paths in turn --"
	round_trips "$rr_secs" 8 "${paths_on[@]}"
}

# Memory per idle forwarded connection, measured first, while the processes
# are fresh: freed memory stays resident in a process's heap, so after the
# throughput runs new connections would reuse it and show as free.  One
# short round-trip run first, so what a peer allocates on first use is in
# the baseline.
mem_path() {
	local p=$1 before after hold_pid
	"$tb" rr "${echo_addr[$p]}" 64 0.2 >/dev/null
	# shellcheck disable=SC2086
	before=$(sum_status VmRSS ${fwd_pids[$p]})
	"$tb" hold "${echo_addr[$p]}" "$conns" >"$state/hold-$p.out" 2>&1 &
	hold_pid=$!
	started+=("$hold_pid")
	wait_for "$state/hold-$p.out" '^ready' 120 "tcpbench hold ($p)" "$hold_pid"
	# shellcheck disable=SC2086
	after=$(sum_status VmRSS ${fwd_pids[$p]})
	kill -TERM "$hold_pid"
	wait "$hold_pid" 2>/dev/null || true
	R[$p,mem]=$(awk -v a="$after" -v b="$before" -v n="$conns" \
		'BEGIN { printf "%.1f", (a - b) / n }')
	echo "  $p VmRSS of the forwarders: $before kB idle, $after kB with" \
		"$conns connections: ${R[$p,mem]} KiB per connection"
}

echo "-- memory: $conns idle connections (one round trip each) --"
for p in ssh peerpipe; do
	has_path "$p" && mem_path "$p"
done
for p in direct ssh peerpipe; do
	has_path "$p" && run_path "$p"
done
latency
# shellcheck disable=SC2086
[ -n "${fwd_pids[ssh]:-}" ] && echo "  ssh VmHWM of the forwarders after the run: $(sum_status VmHWM ${fwd_pids[ssh]}) kB"
# shellcheck disable=SC2086
[ -n "${fwd_pids[peerpipe]:-}" ] && echo "  peerpipe VmHWM of the forwarders after the run: $(sum_status VmHWM ${fwd_pids[peerpipe]}) kB"
if has_path peerpipe; then
	st=$("$agent_bin" status --json --control "$state/bench-cl.sock")
	echo "  peerpipe client after the run: $($py -c '
import json, sys
p = json.loads(sys.argv[1])["peers"][0]
print("connections_total %d, channels %d, refused %d, state %s" % (
    p["connections_total"], p["channels"], p["refused"], p["state"]))' "$st")"
fi
echo "load avg   $(cut -d' ' -f1-3 /proc/loadavg) after the run"

# ---- summary ----
echo
echo "== summary (compression $comp) =="
printf '%-30s %9s %9s %9s %9s\n' "" direct "ssh -L" peerpipe "pp/ssh"
row() {	# row LABEL METRIC
	printf '%-30s %9s %9s %9s %9s\n' "$1" "$(val direct "$2")" "$(val ssh "$2")" \
		"$(val peerpipe "$2")" "$(ratio "$(val peerpipe "$2")" "$(val ssh "$2")")"
}
row "iperf3 1 stream, Gbit/s" 1
row "iperf3 4 streams, Gbit/s" 4
row "iperf3 1 stream -R, Gbit/s" 1R
row "iperf3 4 streams -R, Gbit/s" 4R
row "forwarders CPU s/GB (1 st.)" 1.cpu
row "64 B round trip p50, us" p50
row "64 B round trip p99, us" p99
row "connections/s" cps
row "connection p50, us" cps50
row "memory per idle conn, KiB" mem
if [ "$(val peerpipe p50)" != - ] && [ "$(val direct p50)" != - ]; then
	echo "added round-trip latency p50 over direct: peerpipe" \
		"$(awk -v a="$(val peerpipe p50)" -v b="$(val direct p50)" 'BEGIN { printf "%.1f", a - b }') us" \
		"$( [ "$(val ssh p50)" != - ] && awk -v a="$(val ssh p50)" -v b="$(val direct p50)" 'BEGIN { printf ", ssh -L %.1f us", a - b }')"
fi
[ "$perf" = yes ] && echo "perf data: $perf_dir/peerpipe-agents.data (perf report -i ...)"
exit 0
