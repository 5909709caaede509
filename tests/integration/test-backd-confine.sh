#!/bin/bash
# SPDX-License-Identifier: MIT
# pvio-backd's confinement (backend/confine.c, docs/security.md):
#  - by default: no_new_privs, a seccomp filter on every thread, only
#    CAP_NET_ADMIN left (bounding set too) in the main thread, none in the
#    workers;
#  - devices attached after confinement still work: a vbd opens its file
#    and serves I/O, a vif creates its TAP and carries frames;
#  - a forbidden system call (a test-only fault point) kills the daemon
#    with SIGSYS and names the call; with --no-confine the same call
#    merely fails and the daemon goes on.
. "$(dirname "$0")/lib.sh"
BLK="$B/tests/integration/t-blkclient"
NET="$B/tests/integration/t-netclient"
[ "$(id -u)" = 0 ] || t_skip "needs root (capabilities, TAP devices)"
[ -c /dev/net/tun ] || t_skip "no /dev/net/tun"
command -v xenstore-read >/dev/null || t_skip "xenstore-utils not installed"

status() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
wait_log() {	# pattern
	for _ in $(seq 100); do grep -q "$1" "$W/backd.log" && return 0; sleep 0.05; done
	t_fail "pvio-backd did not log '$1'"
}
run() { "$PVIO_CTL" -w "$W" run "$1" -- "${@:2}"; }

t_world_up
D1=71 D2=72	# TAP names are host-wide: domids of this test's own
# a killed pvio-backd leaves its TAPs (persistent): not for the next test
T_EXTRA_CLEANUP="ip link del vif$D1.0 2>/dev/null; ip link del vif$D2.0 2>/dev/null"
ctl create g1 --domid $D1 >/dev/null && ctl create g2 --domid $D2 >/dev/null ||
	t_fail "create"
t_backd_up
wait_log ", confined"
[ "$(status $BACKD_PID NoNewPrivs)" = 1 ] || t_fail "no_new_privs not set"
[ "$(status $BACKD_PID Seccomp)" = 2 ] || t_fail "no seccomp filter"
# CAP_NET_ADMIN is bit 12
[ "$(status $BACKD_PID CapEff)" = 0000000000001000 ] ||
	t_fail "main thread: CapEff $(status $BACKD_PID CapEff)"
[ "$(status $BACKD_PID CapBnd)" = 0000000000001000 ] ||
	t_fail "bounding set $(status $BACKD_PID CapBnd)"
nw=0
for t in /proc/$BACKD_PID/task/*; do
	grep -q '^pvio-w' "$t/comm" || continue
	nw=$((nw + 1))
	[ "$(awk '$1 == "CapEff:" { print $2 }' "$t/status")" = 0000000000000000 ] ||
		t_fail "worker $(cat "$t/comm") keeps capabilities"
	[ "$(awk '$1 == "Seccomp:" { print $2 }' "$t/status")" = 2 ] ||
		t_fail "worker $(cat "$t/comm") is not filtered"
done
[ $nw -ge 1 ] || t_fail "no worker thread found"
t_pass "confined: no_new_privs, seccomp on every thread, CAP_NET_ADMIN only ($nw workers: none)"

# devices attached now: the daemon opens a file and creates a TAP
truncate -s 16M "$W/d1.img"
ctl vbd-attach g1 "$W/d1.img" >/dev/null || t_fail "vbd-attach"
ctl vif-attach g2 >/dev/null || t_fail "vif-attach"
t_wait_states g1 51712 "Initialising InitWait"
t_wait_states g2 0 "Initialising InitWait"
ip link show vif$D2.0 >/dev/null 2>&1 || t_fail "no vif$D2.0"
run g1 "$BLK" 51712 io 100 >"$W/out" || t_fail "vbd I/O: $(cat "$W/out")"
run g2 "$NET" 0 tx 20 100 >"$W/out" || t_fail "vif tx: $(cat "$W/out")"
grep -q "forbidden system call" "$W/backd.log" && t_fail "a call was refused"
t_pass "a vbd and a vif attached after confinement: file opened, TAP created, I/O"
t_backd_down
t_pass "SIGTERM: drained and exited 0 under the filter"

# the fault point: swapoff is not on the list
rm -f "$W/backd.sock"
PVIO_BACKD_TEST_FORBIDDEN_SYSCALL=1 "$BACKD" -p "sim:$W" >>"$W/backd.log" 2>&1 &
pid=$!
for _ in $(seq 100); do kill -0 $pid 2>/dev/null || break; sleep 0.05; done
kill -0 $pid 2>/dev/null && { kill -9 $pid; t_fail "still alive after a forbidden call"; }
wait $pid
rc=$?
[ $rc -eq $((128 + 31)) ] || t_fail "exit status $rc, not SIGSYS (159)"
nr='[0-9]*'
[ "$(uname -m)" = x86_64 ] && nr=168	# swapoff
grep -q "forbidden system call $nr\$" "$W/backd.log" ||
	t_fail "the forbidden call (swapoff, $nr) is not named in the log"
t_pass "a forbidden system call kills pvio-backd with SIGSYS and is named"

rm -f "$W/backd.sock"
PVIO_BACKD_TEST_FORBIDDEN_SYSCALL=1 t_backd_up --no-confine
wait_log "not confined"
wait_log "swapoff returned -1"
kill -0 $BACKD_PID || t_fail "--no-confine: died"
[ "$(status $BACKD_PID Seccomp)" = 0 ] || t_fail "--no-confine: filtered"
t_backd_down
t_pass "--no-confine: the same call fails with an error, the daemon goes on"
