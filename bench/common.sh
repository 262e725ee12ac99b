# Helpers shared by bench/tunnel.sh, bench/ips.sh and bench/adaptive.sh
# (sourced, not run).  The caller sets `repo`, `build`, `state` (a temp
# directory) and a `cleanup` that calls stop_started; every process started
# through `start` is stopped there, newest first, by its own pid (never by
# name).
# shellcheck shell=bash disable=SC2154  # repo, build and state are the caller's

py=/usr/bin/python3
started=()	# pids we started, oldest first

# start LOGFILE CMD...: runs CMD in the background, stdout+stderr to LOGFILE;
# the pid is in $last_pid.
start() {
	local log=$1
	shift
	"$@" </dev/null >"$log" 2>&1 &
	last_pid=$!
	started+=("$last_pid")
}

# Descendants of a pid (sshd forks one process per session).
descendants() {
	local c
	for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
		echo "$c"
		descendants "$c"
	done
}

# term_kill PID: SIGTERM, up to 5 s to exit, then SIGKILL.
term_kill() {
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$1" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
}

# stop_pid PID: stops one process we started, now, and forgets it.
stop_pid() {
	local p=$1 i keep=()
	term_kill "$p"
	wait "$p" 2>/dev/null || true
	for i in "${started[@]}"; do [ "$i" = "$p" ] || keep+=("$i"); done
	started=("${keep[@]}")
}

stop_started() {
	local i p kids
	for ((i = ${#started[@]} - 1; i >= 0; i--)); do
		p=${started[i]}
		kill -0 "$p" 2>/dev/null || continue
		kids=$(descendants "$p")
		term_kill "$p"
		# shellcheck disable=SC2086  # one pid per word
		[ -n "$kids" ] && kill -TERM $kids 2>/dev/null || true
	done
	wait 2>/dev/null || true
	started=()
}

die() {
	echo "$(basename "$0"): $*" >&2
	exit 1
}

# need_build: the programs a benchmark runs, from $build: server_bin,
# agent_bin and tb (bench/tcpbench); says how to build them if missing.
need_build() {
	local b
	server_bin=$build/server/peerpipe-server
	agent_bin=$build/agent/peerpipe
	tb=$build/bench/tcpbench
	for b in "$server_bin" "$agent_bin" "$tb"; do
		[ -x "$b" ] || die "$b not found: build first, e.g.
  cmake -S $repo -B $build -DCMAKE_BUILD_TYPE=Release -DPP_BENCH=ON && cmake --build $build -j2
  (or point --build / BUILD at your build directory)"
	done
}

# need_tools GROUP TOOL...: each TOOL is installed, else which group of
# scripts/install-deps.sh brings it.
need_tools() {
	local group=$1 b
	shift
	for b in "$@"; do
		command -v "$b" >/dev/null || die "$b not found (scripts/install-deps.sh $group)"
	done
}

# free_port [NETNS]: a TCP port nobody listens on (the kernel picks it).
# shellcheck disable=SC2120  # the argument is optional
free_port() {
	local ns=()
	[ -n "${1:-}" ] && ns=(ip netns exec "$1")
	"${ns[@]}" "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_for FILE REGEX SECONDS WHAT PID: polls FILE for REGEX; gives up
# (showing the log) when PID exits or SECONDS pass.
wait_for() {
	local i
	for ((i = 0; i < $3 * 20; i++)); do
		grep -qE "$2" "$1" 2>/dev/null && return 0
		if ! kill -0 "$5" 2>/dev/null; then
			echo "$(basename "$0"): $4 exited; its log ($1):" >&2
			tail -n 20 "$1" >&2
			exit 1
		fi
		sleep 0.05
	done
	echo "$(basename "$0"): $4: no /$2/ in $3 s; its log ($1):" >&2
	tail -n 20 "$1" >&2
	exit 1
}

# wait_listen PORT SECONDS WHAT [NETNS]: polls until something listens on
# TCP PORT (ss, so the service sees no probe connection).
wait_listen() {
	local i ns=()
	[ -n "${4:-}" ] && ns=(ip netns exec "$4")
	for ((i = 0; i < $2 * 20; i++)); do
		[ -n "$("${ns[@]}" ss -Hltn "sport = :$1")" ] && return 0
		sleep 0.05
	done
	die "$3: nothing listens on port $1 after $2 s"
}

# start_services: iperf3 -s and the tcpbench echo service on 127.0.0.1, on
# ports the kernel picks: iperf_port and echo_port.
# shellcheck disable=SC2034  # echo_port is the caller's
start_services() {
	local iperf_pid
	iperf_port=$(free_port)
	start "$state/iperf3.log" iperf3 -s -B 127.0.0.1 -p "$iperf_port"
	iperf_pid=$last_pid
	start "$state/echo.out" "$tb" echo 127.0.0.1:0
	wait_for "$state/echo.out" '^port [0-9]+' 10 "the echo service" "$last_pid"
	echo_port=$(awk '/^port/ { print $2 }' "$state/echo.out")
	wait_listen "$iperf_port" 10 "iperf3 -s"
	kill -0 "$iperf_pid" || die "iperf3 -s exited: $(cat "$state/iperf3.log")"
}

# start_signaling ADDR [NETNS]: peerpipe-server on ADDR, a port the kernel
# picks, inside NETNS if given; its URL in $url.
start_signaling() {
	local addr=$1 re=${1//./\\.} ns=() port
	[ -n "${2:-}" ] && ns=(ip netns exec "$2")
	mkdir -p "$state/server"
	start "$state/server.log" "${ns[@]}" "$server_bin" --listen "$addr:0" \
		--state-dir "$state/server" --log-level info
	wait_for "$state/server.log" "listening on wss://$re:[0-9]+/ws" 10 \
		"peerpipe-server" "$last_pid"
	port=$(sed -n "s#.*listening on wss://$re:\([0-9]*\)/ws.*#\1#p" \
		"$state/server.log" | head -n1)
	url=wss://$addr:$port/ws
}

# sum_status KEY PID...: sum of a /proc/PID/status field (kB), e.g. VmRSS.
sum_status() {
	local k=$1 p s=0 v
	shift
	for p in "$@"; do
		v=$(awk -v k="$k:" '$1 == k { print $2 }' "/proc/$p/status" 2>/dev/null)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}

# cpu_ticks PID...: user + system clock ticks used so far, summed.
cpu_ticks() {
	local p s=0 v
	for p in "$@"; do
		# fields after the ")" of the command name: utime is the 12th
		v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null |
			awk '{ print $12 + $13 }')
		s=$((s + ${v:-0}))
	done
	echo "$s"
}

# busy_ticks: clock ticks all CPUs spent busy so far (/proc/stat, not idle
# or iowait).
busy_ticks() {
	awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat
}

machine_info() {
	local cpu
	cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
	echo "date       $(date -u +%Y-%m-%dT%H:%M:%SZ)"
	echo "machine    $(nproc) CPUs ($cpu), $(awk '/MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) RAM"
	echo "kernel     $(uname -sr)"
	echo "commit     $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?)$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo ' (+ local changes)')"
	echo "load avg   $(cut -d' ' -f1-3 /proc/loadavg) before the run (other work on the machine skews figures)"
	[ -n "${agent_bin:-}" ] && echo "usrsctp    $(usrsctp_info)"
}

# usrsctp_info: which usrsctp the agent runs on (docs/architecture.md,
# "Libraries"): Debian's -O0 shared library costs the tunnel about a tenth
# more CPU per byte than the optimised static build.
usrsctp_info() {
	local dir
	if ldd "$agent_bin" 2>/dev/null | grep -q libusrsctp; then
		echo "Debian's libusrsctp2 (built -O0; scripts/build-usrsctp.sh builds an optimised one)"
		return
	fi
	dir=$(sed -n 's/^PP_USRSCTP_DIR:PATH=//p' "$build/CMakeCache.txt" 2>/dev/null)
	echo "static, optimised (scripts/build-usrsctp.sh) $(cat "$dir/VERSION" 2>/dev/null)"
}

# agent_conf NAME URL ROOM ICE_ADDR COMPRESSION [SERVICE:PORT:TARGET ...]
# writes a config for `peerpipe gateway|connect` to stdout.  The gateway's
# IPS is on by default; these configs turn it off (`[ips] mode = off`)
# unless agent_conf_ips=own says the caller appends its own [ips] section.
agent_conf() {
	local name=$1 url=$2 room=$3 addr=$4 comp=$5 s
	shift 5
	cat <<EOF
[agent]
name = $name
control = $state/$name.sock
log_level = info

[signaling]
url = $url
insecure = yes

[room]
name = bench
uuid = $room

[ice]
address = $addr

[tunnel]
compression = $comp
EOF
	for s in "$@"; do
		IFS=: read -r sname sport thost tport <<<"$s"
		printf '\n[service %s]\nport = %s\nproto = tcp\ntarget = %s:%s\n' \
			"$sname" "$sport" "$thost" "$tport"
	done
	[ "${agent_conf_ips:-}" = own ] || printf '\n[ips]\nmode = off\n'
}

# listener OUTFILE PEER PORT: the "peer PEER port PORT/TCP -> ADDR" address.
listener() {
	sed -n "s|^peer $2 port $3/TCP -> ||p" "$1" | tail -n 1
}

# ---- figures ----
# The callers keep them in an associative array R[NAME,METRIC], declared
# (declare -A R) before these run.

# iperf_measure NAME CELL ARGS...: one iperf3 run of $secs seconds to
# ${ip_addr[NAME]} (ARGS: more iperf3 options), with the CPU the
# forwarders ${fwd_pids[NAME]} used meanwhile.  Sets gbps, spgb (forwarders'
# CPU seconds per GB), cores (theirs), icores (both iperf3s') and others
# (the rest of the machine); spgb and cores are - without forwarders.
# Returns 1, having said why, if iperf3 failed.
iperf_measure() {
	local p=$1 name=$2 t0 t1 b0 b1 js out
	shift 2
	# shellcheck disable=SC2086  # pid lists
	t0=$(cpu_ticks ${fwd_pids[$p]})
	b0=$(busy_ticks)
	js=$state/iperf-$p-$name.json
	if ! iperf3 -c "${ip_addr[$p]%:*}" -p "${ip_addr[$p]##*:}" -t "$secs" \
		-J "$@" >"$js" 2>&1; then
		echo "  $p iperf3 $name: failed: $($py -c 'import json,sys; print(json.load(open(sys.argv[1])).get("error","?"))' "$js" 2>/dev/null || tail -n 3 "$js")"
		return 1
	fi
	# shellcheck disable=SC2086  # a pid list
	t1=$(cpu_ticks ${fwd_pids[$p]})
	b1=$(busy_ticks)
	# others: cores busy machine-wide minus the forwarders and both iperf3s
	out=$($py -c '
import json, sys
d = json.load(open(sys.argv[1]))["end"]
e, u = d["sum_received"], d["cpu_utilization_percent"]
clk, secs = int(sys.argv[2]), e["seconds"]
cpu = int(sys.argv[3]) / clk
busy = int(sys.argv[4]) / clk / secs
iperf = (u["host_total"] + u["remote_total"]) / 100
print("%.3f %.2f %.2f %.2f %.2f" % (e["bits_per_second"] / 1e9,
      cpu / (e["bytes"] / 1e9) if e["bytes"] else 0, cpu / secs, iperf,
      max(0.0, busy - cpu / secs - iperf)))' \
		"$js" "$(getconf CLK_TCK)" "$((t1 - t0))" "$((b1 - b0))")
	read -r gbps spgb cores icores others <<<"$out"
	if [ -z "${fwd_pids[$p]}" ]; then spgb=-; cores=-; fi
}

# iperf_line WIDTH NAME CELL: the line of one iperf_measure.
iperf_line() {
	printf "  %-${1}s iperf3 %-3s %7s Gbit/s | forwarders %5s CPU s/GB, %4s cores | iperf3 %s cores | others %s cores\n" \
		"$2" "$3" "$gbps" "$spgb" "$cores" "$icores" "$others"
}

# kv LINE KEY: the value of KEY=... in a tcpbench result line.
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

# median: of the numbers on stdin, one a line; - for none.
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'; }

# median_of LIST: the median of a space-separated list; - if empty.
median_of() { tr ' ' '\n' <<<"$1" | { grep . || true; } | median; }

# round_trips ROUNDS WIDTH NAME...: 64-byte round trips and connections/s
# to each ${echo_addr[NAME]}, in rounds of one second with the NAMEs taking
# turns, so that other work on the machine hits them alike; the medians go
# to R[NAME,p50], R[NAME,p99], R[NAME,cps] and R[NAME,cps50].
round_trips() {
	local rounds=$1 width=$2 r p line a b
	local -A l50 l99 c50 cr
	shift 2
	for ((r = 0; r < rounds; r++)); do
		for p in "$@"; do
			if line=$("$tb" rr "${echo_addr[$p]}" 64 1 2>&1); then
				l50[$p]+="$(kv "$line" p50_us) "
				l99[$p]+="$(kv "$line" p99_us) "
			else
				echo "  $p round trips failed: $line"
			fi
			if line=$("$tb" cps "${echo_addr[$p]}" 1 2>&1); then
				cr[$p]+="$(kv "$line" per_s) "
				c50[$p]+="$(kv "$line" p50_us) "
			else
				echo "  $p connections failed: $line"
			fi
		done
	done
	# shellcheck disable=SC2004  # R is the caller's associative array
	for p in "$@"; do
		R[$p,p50]=$(median_of "${l50[$p]:-}")
		R[$p,p99]=$(median_of "${l99[$p]:-}")
		R[$p,cps]=$(median_of "${cr[$p]:-}")
		R[$p,cps50]=$(median_of "${c50[$p]:-}")
		a=${l50[$p]:-} b=${cr[$p]:-}
		printf "  %-${width}s round trip p50 %s us (rounds: %s), p99 %s us; %s connections/s (rounds: %s)\n" \
			"$p" "${R[$p,p50]}" "${a% }" "${R[$p,p99]}" "${R[$p,cps]}" "${b% }"
	done
}

# val NAME METRIC: R[NAME,METRIC] or -.
val() { echo "${R[$1,$2]:--}"; }

# ratio A B: A/B or -.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'
}
