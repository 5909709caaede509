#!/bin/bash
# SPDX-License-Identifier: MIT
# An idle NBD connection told "readable" with nothing to read (a poll's
# result can be stale by the time it is acted on): libnbd 1.14, notified
# then, waits in its reply states and holds back the next command, so the
# first request after an idle spell got no answer until --remote-timeout
# failed it (test-backd-nbd.sh, under load). pvio-backd's test knob
# PVIO_TEST_NBD_STALE_READ delivers such a readiness on every idle pass;
# verified I/O must still work, with no timeout.
# Needs nbdkit: SKIPs otherwise (tools/install-deps.sh installs it).
. "$(dirname "$0")/lib.sh"
me=test-backd-nbd-idle
command -v nbdkit >/dev/null 2>&1 ||
	t_skip "nbdkit not found (tools/install-deps.sh installs it)"
"$BACKD" --help | grep -q "targets:.*nbd" ||
	t_skip "pvio-backd was built without libnbd (libnbd-dev)"
CLIENT="$B/tests/integration/t-blkclient"

t_world_up
nbdkit --foreground --exit-with-parent --unix "$W/mem.sock" memory 16M \
	>>"$W/server.log" 2>&1 &
T_PIDS="$T_PIDS $!"
for _ in $(seq 100); do [ -S "$W/mem.sock" ] && break; sleep 0.05; done
[ -S "$W/mem.sock" ] || t_fail "nbdkit did not start: $(cat "$W/server.log")"
ctl create g1 >/dev/null || t_fail "create"
ctl vbd-attach g1 "nbd+unix:///?socket=$W/mem.sock" --vdev xvda >/dev/null ||
	t_fail "attach"
# --grant-map: the guest's pages mapped (a request's pages one buffer when
# they were mapped together, else staged)
PVIO_TEST_NBD_STALE_READ=1 t_backd_up --workers 1 --remote-timeout 5 \
	--lock-dir "$W/locks" --grant-map
t_wait_states g1 51712 "Initialising InitWait"

for round in 1 2; do
	# a frontend, verified I/O; then the connection idles a while
	timeout 60 "$PVIO_CTL" -w "$W" run g1 -- "$CLIENT" 51712 io 64 \
		>"$W/io.$round" 2>&1 ||
		t_fail "round $round: $(tail -3 "$W/io.$round"; grep -m2 "no answer\|unreachable" "$W/backd.log")"
	grep -q "OK 64 write+read" "$W/io.$round" || t_fail "round $round: $(cat "$W/io.$round")"
	sleep 0.5
done
grep -q "test: a stale read readiness" "$W/backd.log" ||
	t_fail "the test knob did not act: the test proves nothing"
grep -q "no answer within the timeout" "$W/backd.log" &&
	t_fail "a request timed out: $(grep -m1 "no answer" "$W/backd.log")"
t_pass "stale read readiness on an idle NBD connection: verified I/O, no timeout"
exit 0
