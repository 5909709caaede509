#!/bin/bash
# SPDX-License-Identifier: MIT
# The stalled-I/O report names a device only when its target stalls: a
# busy guest's disk, checked once a second after 105 idle devices'
# ticks (the list is newest first: the busy one, created first, comes
# last), under a crash-record load for 5 s with --stall-timeout 1. A
# completion the worker stamps after the tick read its clock must not
# make the elapsed time wrap ("no I/O completed for 18446744073 s").
. "$(dirname "$0")/lib.sh"
BLK="$B/tests/integration/t-blkclient"
command -v xenstore-read >/dev/null || t_skip "xenstore-utils not installed"

t_world_up
ctl create gb >/dev/null || t_fail "create gb"
truncate -s 16M "$W/busy.img"
ctl vbd-attach gb "$W/busy.img" --no-wait >/dev/null || t_fail "attach gb"
for g in 1 2 3 4 5 6 7; do
	ctl create i$g >/dev/null || t_fail "create i$g"
	for k in $(seq 0 14); do
		truncate -s 1M "$W/i$g-$k.img"
		ctl vbd-attach i$g "$W/i$g-$k.img" --vdev "xvd$(printf "\\x$(printf %x $((98 + k)))")" \
			--no-wait >/dev/null || t_fail "attach i$g #$k"
	done
done
t_backd_up -w 1 --stall-timeout 1
for _ in $(seq 200); do
	[ "$(ctl devices | grep -c InitWait)" -ge 100 ] && break; sleep 0.05
done
[ "$(ctl devices | grep -c InitWait)" -ge 100 ] ||
	t_fail "the idle devices are not all set up: $(ctl devices | grep -vc InitWait)"
rm -f "$W/stop"
"$PVIO_CTL" -w "$W" run gb -- "$BLK" 51712 crash "$W/stop" >"$W/load.out" 2>&1 &
L=$!
t_wait_states gb 51712 "Connected Connected"
sleep 5
touch "$W/stop"
wait $L || t_fail "the load: $(cat "$W/load.out")"
grep -q "acknowledged records read back intact" "$W/load.out" || t_fail "the load: $(cat "$W/load.out")"
grep -q "no I/O completed for" "$W/backd.log" &&
	t_fail "a stall reported while I/O completed: $(grep "no I/O completed for" "$W/backd.log" | head -2)"
t_log "$(grep 'crash load' "$W/load.out" | sed 's/^OK //')"
t_pass "5 s of load beside 105 idle devices, --stall-timeout 1: no stall reported"
exit 0
