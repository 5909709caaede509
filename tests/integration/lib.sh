# SPDX-License-Identifier: MIT
# Shared by the integration tests: a private sim world, pvio-backd, cleanup.
# Source it; call t_world_up, then use $PVIO_CTL, $W (the world dir).
set -u
B=${PVIO_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
S=${PVIO_SRCDIR:-$B}
PVIO_CTL="$B/pvio-ctl"
BACKD="$B/pvio-backd"
export PVIO_SIMHV=${PVIO_SIMHV:-$B/pvio-simhv}
T_PIDS=""
T_FAILED=0

# each verdict says when it came (seconds since the test began): a
# step that was slow before a failure shows in the log
t_log() { printf '%s\n' "$*" >&2; }
t_fail() { t_log "FAIL: $* [at ${SECONDS} s]"; T_FAILED=1; exit 1; }
t_skip() { t_log "SKIP: $* [at ${SECONDS} s]"; exit 77; }
t_pass() { t_log "PASS: $* [at ${SECONDS} s]"; }

# Is $1 still a live child of this shell? A pid that exited (and was waited
# for) may belong to anyone by now: another test's shell, another daemon.
t_ours() {
	local st
	st=$(ps -o ppid=,stat= -p "$1" 2>/dev/null) || return 1
	set -- $st
	[ "${1:-}" = "$$" ] && [ "${2#Z}" = "${2:-}" ]
}

t_cleanup() {
	local rc=$? live=""
	# only the test's own shell cleans up: a subshell that exits must
	# not take the world away from the test that goes on
	[ "$BASHPID" = "$$" ] || exit $rc
	for p in $T_PIDS; do t_ours "$p" && live="$live $p"; done
	for p in $live; do kill "$p" 2>/dev/null; done
	for p in $live; do
		for _ in $(seq 50); do t_ours "$p" || break; sleep 0.1; done
		t_ours "$p" && kill -9 "$p" 2>/dev/null
	done
	if [ -n "${W:-}" ] && [ -d "$W" ]; then
		if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
			t_log "---- pvio-backd log ----"; tail -40 "$W/backd.log" >&2 2>/dev/null
			t_log "---- simhv log ----"; tail -15 "$W/simhv.log" >&2 2>/dev/null
		fi
		"$PVIO_CTL" -w "$W" world stop >/dev/null 2>&1
		[ -n "${T_KEEP:-}" ] || rm -rf "$W"
	fi
	[ -n "${T_EXTRA_CLEANUP:-}" ] && eval "$T_EXTRA_CLEANUP"
	exit $rc
}
trap t_cleanup EXIT
trap 'exit 1' INT TERM

t_world_up() {
	W=$(mktemp -d "${TMPDIR:-/tmp}/pvio-it.XXXXXX")
	"$PVIO_CTL" -w "$W" world start >/dev/null || t_fail "world start"
}

# Start pvio-backd in the background; waits until it is up: its startup
# line logged (after the devices already in xenstore are re-attached and
# stale in-flight records swept). The socket of a killed pvio-backd is
# removed first: it would say "up" before the new one has even started.
T_BACKD_READY=', control socket '
t_backd_up() {
	local n
	[ -d "$W" ] || t_fail "pvio-backd: the world directory $W is gone"
	rm -f "$W/backd.sock"
	n=$(grep -c -- "$T_BACKD_READY" "$W/backd.log" 2>/dev/null)
	"$BACKD" -p "sim:$W" "$@" >>"$W/backd.log" 2>&1 &
	BACKD_PID=$!
	T_PIDS="$T_PIDS $BACKD_PID"
	for _ in $(seq 600); do
		[ "$(grep -c -- "$T_BACKD_READY" "$W/backd.log" 2>/dev/null)" \
			-gt "${n:-0}" ] && return 0
		# started, then died (a fault point): the caller looks at it
		kill -0 "$BACKD_PID" 2>/dev/null || {
			[ -S "$W/backd.sock" ] && return 0
			t_fail "pvio-backd exited at start: $(tail -5 "$W/backd.log")"
		}
		sleep 0.05
	done
	t_fail "pvio-backd did not start in 30 s"
}

t_backd_down() {
	kill -TERM "$BACKD_PID"
	for _ in $(seq 100); do kill -0 "$BACKD_PID" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$BACKD_PID" 2>/dev/null && t_fail "pvio-backd did not stop on SIGTERM"
	wait "$BACKD_PID" 2>/dev/null
	local rc=$?
	[ $rc -eq 0 ] || t_fail "pvio-backd exited with $rc"
}

ctl() { "$PVIO_CTL" -w "$W" "$@"; }

# State of a device as "frontend backend" names.
t_states() { ctl devices "$1" | awk -v id="$2" '$3 == id { print $4, $5 }'; }

t_wait_states() {	# dom devid "Fe Be" [timeout-s]
	local i
	for i in $(seq $((${4:-10} * 20))); do
		[ "$(t_states "$1" "$2")" = "$3" ] && return 0
		sleep 0.05
	done
	t_fail "device $1/$2: states '$(t_states "$1" "$2")', want '$3'"
}

# True once pvio-backd's log has a line matching REGEX (grep's), waiting up
# to SECONDS (5) for it.
t_wait_log() {	# regex [timeout-s]
	local i
	for i in $(seq $((${2:-5} * 20))); do
		grep -q -- "$1" "$W/backd.log" && return 0
		sleep 0.05
	done
	grep -q -- "$1" "$W/backd.log"
}

# t-hangfs (a FUSE file system that hangs when told): SKIP where it cannot
# run; t_hangfs IMAGE FLAG MOUNTPOINT mounts one in the background (its
# T_HANGFS_* settings from the caller's environment), made and unmounted
# by the caller.
HANGFS="$B/tests/integration/t-hangfs"
t_hangfs_need() {
	[ "$(id -u)" = 0 ] || t_skip "needs root (FUSE mount)"
	[ -x "$HANGFS" ] || t_skip "t-hangfs not built (libfuse3-dev missing)"
	[ -c /dev/fuse ] || t_skip "no /dev/fuse"
	command -v fusermount3 >/dev/null || t_skip "no fusermount3"
	command -v mountpoint >/dev/null || t_skip "no mountpoint"
}
t_hangfs() {	# image flag mountpoint
	"$HANGFS" "$1" "$2" "$3" 2>>"$W/hangfs.log" &
	T_PIDS="$T_PIDS $!"
	for _ in $(seq 100); do mountpoint -q "$3" && return 0; sleep 0.05; done
	t_skip "cannot mount FUSE at $3: $(cat "$W/hangfs.log")"
}

# Wait until a TCP listener is up on PORT in namespace NS ("" for dom0).
t_wait_listen() {	# ns port
	for _ in $(seq 100); do
		${1:+ip netns exec "$1"} ss -Hltn "sport = :$2" 2>/dev/null |
			grep -q . && return 0
		sleep 0.05
	done
}

# A systemd notification socket at SOCK (for NOTIFY_SOCKET=SOCK): what
# arrives goes to LOG, one line a field, until READY=1 (then it exits 0;
# 40 s without: non-zero). Its pid: T_NOTIFY_PID.
t_notify_listen() {	# sock log
	python3 - "$1" >"$2" 2>&1 <<'PYEOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(40)
print('listening', flush=True)
while True:
	m = s.recv(4096).decode()
	for line in m.split('\n'):
		print(line, flush=True)
	if 'READY=1' in m.split('\n'):
		break
PYEOF
	T_NOTIFY_PID=$!
	T_PIDS="$T_PIDS $T_NOTIFY_PID"
	for _ in $(seq 100); do grep -q listening "$2" && return 0; sleep 0.05; done
	t_fail "the notification socket's listener did not start: $(cat "$2")"
}
