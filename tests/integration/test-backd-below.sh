#!/bin/bash
# SPDX-License-Identifier: MIT
# Everything below the backend is reported, never silent:
#  - a detach leaves no empty xenstore directory (backend or frontend
#    side), and pvio-backd does not bring the removed one back;
#  - a target deleted under a running device: logged, an error node;
#  - a target shrunk (truncated) under a device: logged, an error node,
#    and I/O beyond the new end fails (instead of growing the file back);
#  - the sim world's hypervisor (pvio-simhv, which also serves xenstore)
#    dies: pvio-backd logs it and exits 1, promptly.
. "$(dirname "$0")/lib.sh"
BLK="$B/tests/integration/t-blkclient"
command -v xenstore-exists >/dev/null || t_skip "xenstore-utils not installed"

t_world_up
xs() { XENSTORED_PATH="$W/xs/dom0.sock" "$@"; }
ctl create g1 >/dev/null || t_fail "create"
truncate -s 64M "$W/d1.img" && truncate -s 16M "$W/d2.img"
ctl vbd-attach g1 "$W/d1.img" >/dev/null || t_fail "attach d1"
t_backd_up
# (in the background: pvio-ctl itself, it execs the client: $! is it)
run() { "$PVIO_CTL" -w "$W" run g1 -- "$BLK" "$@"; }
t_wait_states g1 51712 "Initialising InitWait"

# detach: nothing left, not even after pvio-backd reacted
ctl vbd-detach g1 xvda >/dev/null || t_fail "detach"
sleep 0.5
for p in /local/domain/0/backend/vbd/1/51712 /local/domain/0/backend/vbd/1 \
	 /local/domain/1/device/vbd/51712 /local/domain/1/device/vbd; do
	xs xenstore-exists "$p" 2>/dev/null && t_fail "$p left after the detach: $(xs xenstore-ls "$p" 2>&1 | head -5)"
done
t_pass "a detach leaves no empty xenstore directory"

# deleted under a connected guest
ctl vbd-attach g1 "$W/d1.img" >/dev/null || t_fail "re-attach d1"
"$PVIO_CTL" -w "$W" run g1 -- "$BLK" 51712 connect >"$W/c1.out" 2>&1 &
C1=$!
t_wait_states g1 51712 "Connected Connected"
rm "$W/d1.img"
for _ in $(seq 60); do grep -q "d1.img was deleted under domain" "$W/backd.log" && break; sleep 0.05; done
grep -q "d1.img was deleted under domain" "$W/backd.log" || t_fail "the deleted target was not logged"
xs xenstore-read /local/domain/0/backend/vbd/1/51712/error | grep -q deleted ||
	t_fail "no error node for the deleted target"
kill $C1 2>/dev/null; wait $C1 2>/dev/null
t_pass "a target deleted under a running device: logged, error node"

# shrunk under a connected guest: logged, error node, I/O past the end fails
ctl vbd-attach g1 "$W/d2.img" --vdev xvdb >/dev/null || t_fail "attach d2"
"$PVIO_CTL" -w "$W" run g1 -- "$BLK" 51728 connect >"$W/c2.out" 2>&1 &
C2=$!
t_wait_states g1 51728 "Connected Connected"
truncate -s 4M "$W/d2.img"
for _ in $(seq 60); do grep -q "d2.img shrank from" "$W/backd.log" && break; sleep 0.05; done
grep -q "d2.img shrank from 16777216 to 4194304" "$W/backd.log" || t_fail "the shrink was not logged"
xs xenstore-read /local/domain/0/backend/vbd/1/51728/error | grep -q shrank ||
	t_fail "no error node for the shrunk target"
kill $C2 2>/dev/null; wait $C2 2>/dev/null
for _ in $(seq 100); do
	[ "$(t_states g1 51728 | cut -d' ' -f2)" = Closing ] && break; sleep 0.05
done
run 51728 beyond 16384 >"$W/out" 2>&1 || t_fail "I/O beyond the new end: $(cat "$W/out")"
[ "$(stat -c %s "$W/d2.img")" = 4194304 ] || t_fail "a write past the end grew the target back"
t_pass "a target shrunk under a device: logged, error node, I/O past the new end fails"

# the hypervisor (and xenstore with it) dies
kill -0 "$BACKD_PID" || t_fail "pvio-backd died early"
kill -9 "$(cat "$W/simhv.pid")" || t_fail "no simhv pid"
for _ in $(seq 100); do kill -0 "$BACKD_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$BACKD_PID" 2>/dev/null && t_fail "pvio-backd still running 5 s after the hypervisor died"
wait "$BACKD_PID"; rc=$?
[ $rc = 1 ] || t_fail "pvio-backd exited with $rc after losing the hypervisor, want 1"
grep -q "lost the connection to" "$W/backd.log" || t_fail "the lost connection was not logged"
t_pass "the hypervisor died: pvio-backd logged it and exited 1"
exit 0
