# Helpers shared by bench/tunnel.sh and bench/adaptive.sh (sourced, not run).
# The caller sets `state` (a temp directory) and a `cleanup` that calls
# stop_started; every process started through `start` is stopped there,
# newest first, by its own pid (never by name).
# shellcheck shell=bash disable=SC2154  # repo and state are the caller's

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

stop_started() {
	local i p kids
	for ((i = ${#started[@]} - 1; i >= 0; i--)); do
		p=${started[i]}
		kill -0 "$p" 2>/dev/null || continue
		kids=$(descendants "$p")
		kill -TERM "$p" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null || true
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
