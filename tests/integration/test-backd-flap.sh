#!/bin/bash
# SPDX-License-Identifier: MIT
# A vif's queue stopping in every state a guest can put it in; pvio-backd
# must stay up (under ASan: no use-after-free of a stopped queue when a
# completion of its own, such as the cancel of its TAP reads, comes later):
#  - a guest that posts no rx buffers while the TAP fills every read
#    pvio-backd posted (nothing left to cancel: the queue is idle at once)
#    closes; 3 rounds;
#  - a guest flapping its vif's state as fast as pvio-backd answers (a
#    frame, Closing, Closed, Initialising, Connected), PVIO_FLAP_ROUNDS
#    rounds (30 by default), whose messages stay within the device's log
#    rate limit;
# and the vif still works.
. "$(dirname "$0")/lib.sh"
CLIENT="$B/tests/integration/t-netclient"
PKT="$S/tests/integration/pkt.py"
ROUNDS=${PVIO_FLAP_ROUNDS:-30}
[ "$(id -u)" = 0 ] || t_skip "needs root (TAP devices)"
[ -c /dev/net/tun ] || t_skip "no /dev/net/tun"
command -v python3 >/dev/null || t_skip "no python3"

t_world_up
D1=81		# TAP names are host-wide: a domid of our own
# the TAP outlives pvio-backd (persistent): not for the next test
T_EXTRA_CLEANUP="ip link del vif$D1.0 2>/dev/null"
ctl create g1 --domid $D1 >/dev/null || t_fail "create"
ctl vif-attach g1 >/dev/null || t_fail "vif-attach"
# the worker pauses 3 ms after it lets queues go, as a preempted worker
# would on a busy machine: a late completion then meets a freed queue
PVIO_BACKD_TEST_RETIRE_DELAY_US=3000 t_backd_up
t_wait_states g1 0 "Initialising InitWait"
run() { "$PVIO_CTL" -w "$W" run "$1" -- "$CLIENT" "${@:2}"; }

sanitizer_clean() {
	kill -0 "$BACKD_PID" 2>/dev/null || t_fail "pvio-backd died: $(grep -A40 "ERROR: AddressSanitizer" "$W/backd.log" | head -40)"
	grep -q "ERROR: AddressSanitizer\|runtime error:" "$W/backd.log" &&
		t_fail "sanitizer: $(grep -A40 "ERROR: AddressSanitizer\|runtime error:" "$W/backd.log" | head -40)"
	return 0
}

for r in 1 2 3; do
	rm -f "$W/go"
	run g1 0 hold "$W/go" >"$W/out" 2>&1 &
	HPID=$!
	t_wait_states g1 0 "Connected Connected"
	for _ in $(seq 60); do
		[ "$(cat /sys/class/net/vif$D1.0/operstate 2>/dev/null)" = up ] && break
		sleep 0.05
	done
	# more frames than pvio-backd has reads posted (64): all complete
	python3 "$PKT" inject vif$D1.0 100 200 || t_fail "inject"
	sleep 0.3
	touch "$W/go"
	wait $HPID || t_fail "round $r: holding guest: $(cat "$W/out")"
	sleep 0.2
	sanitizer_clean
done
t_pass "3 closes of a vif whose TAP reads had all completed: pvio-backd up, no sanitizer report"

L0=$(grep -c "/vif/$D1/0" "$W/backd.log")
T0=$(date +%s)
run g1 0 flap "$ROUNDS" >"$W/out" 2>&1 || t_fail "flapping guest: $(tail -3 "$W/out")"
sleep 0.2
sanitizer_clean
t_pass "$ROUNDS rounds of vif state flapping: pvio-backd up, no sanitizer report"

# a flapping guest's messages: at most 10 per 5 s and a "N messages
# suppressed" line per interval (each round is ~5 lines without the limit)
L=$(($(grep -c "/vif/$D1/0" "$W/backd.log") - L0))
WINDOWS=$((($(date +%s) - T0) / 5 + 2))
t_log "pvio-backd wrote $L lines about the flapping vif in $(($(date +%s) - T0)) s"
[ "$L" -le $((WINDOWS * 11)) ] ||
	t_fail "$L log lines about the flapping vif (at most $((WINDOWS * 11))): $(grep "/vif/$D1/0" "$W/backd.log" | tail -5)"
# the summary: when the interval ends (at most 5 s, then a tick)
t_wait_log "/vif/$D1/0: [0-9]* messages suppressed" 7 ||
	t_fail "no 'messages suppressed' summary for the flapping vif"
t_pass "the flapping vif: $L log lines, the rest counted as suppressed"

run g1 0 tx 20 1400 >"$W/out" 2>&1 || t_fail "tx after flapping: $(cat "$W/out")"
t_pass "the vif works after the flapping"
t_backd_down
