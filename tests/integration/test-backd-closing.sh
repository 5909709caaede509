#!/bin/bash
# SPDX-License-Identifier: MIT
# Nothing on pvio-backd's main thread waits on a remote peer when a vbd
# goes either (issue 14): an RBD image's close (exclusive lock given back,
# image and cluster session closed) runs on a thread of its own
# (backend/ctlwork.c), on a one-mon, one-OSD cluster (ceph-lib.sh):
#  - the cluster stopped (SIGSTOP), an RBD vbd detached: the detach is
#    done at once, pvio-ctl stats answers and another guest's file disk
#    does verified I/O while the close waits on the cluster;
#  - the same image re-attached to another guest meanwhile: its open
#    waits for the old close (no "exclusive lock is held by another
#    client" from our own old handle), and once the cluster is back the
#    close finishes, the new disk does verified I/O;
#  - once closed, pvio-backd's fds and threads are back where they were;
#  - a vbd removed while its I/O waits on the stopped cluster closes only
#    once that I/O has drained; the same image re-attached meanwhile
#    waits for that drain and close too (before the fix its open went
#    ahead and met the old handle's exclusive lock);
#  - SIGTERM with a close hung on the stopped cluster exits within the
#    drain bound.
# Needs root and Ceph's mon/osd/rbd: SKIPs otherwise (tools/install-deps.sh
# installs them).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ceph-lib.sh"
[ "$(id -u)" -eq 0 ] || t_skip "not root"
for tool in ceph-mon ceph-osd ceph rbd python3 timeout; do
	command -v "$tool" >/dev/null 2>&1 ||
		t_skip "$tool not found (tools/install-deps.sh installs it)"
done
"$BACKD" --help | grep -q "targets:.*rbd" ||
	t_skip "pvio-backd was built without librbd (librbd-dev)"
CLIENT="$B/tests/integration/t-blkclient"
TMO=30		# --remote-timeout: the close outlasts every step below

t_world_up
trap 'rc=$?; for p in $T_PIDS; do kill "$p" 2>/dev/null; done; ceph_down; (exit $rc); t_cleanup' EXIT
ceph_image_up "$W/ceph" 6789 16M
IMG="rbd:rbd/disk1:conf=$CEPH_CONF"
stop_cluster() { kill -STOP "$CEPH_OSD_PID" "$CEPH_MON_PID"; }
cont_cluster() { kill -CONT "$CEPH_MON_PID" "$CEPH_OSD_PID"; }

D1=$(ctl create g1) && ctl create g2 >/dev/null && D3=$(ctl create g3) ||
	t_fail "create"
truncate -s 32M "$W/file.img" || t_fail "truncate"
ctl vbd-attach g2 "$W/file.img" --vdev xvda >/dev/null || t_fail "attach file"
t_backd_up --workers 1 --remote-timeout $TMO

nfd() { ls /proc/"$BACKD_PID"/fd | wc -l; }
# io_uring's own workers (iou-wrk-*) come and go with the file disk's I/O
nth() { cat /proc/"$BACKD_PID"/task/*/comm | grep -vc '^iou-'; }
# COUNT lines matching RE in the daemon's log, within SECONDS
wait_log() {	# RE COUNT SECONDS
	for _ in $(seq $(($3 * 10))); do
		[ "$(grep -cE -- "$1" "$W/backd.log")" -ge "$2" ] && return 0
		sleep 0.1
	done
	t_fail "'$1' not logged $2 times within $3 s: $(tail -5 "$W/backd.log")"
}
# stats answers within 3 s
stats_ok() {
	timeout 3 "$PVIO_CTL" -w "$W" stats >/dev/null 2>"$W/stats.err" ||
		t_fail "pvio-ctl stats unanswered within 3 s $1: $(cat "$W/stats.err")"
}
io() {	# GUEST DEVID N
	"$PVIO_CTL" -w "$W" run "$1" -- "$CLIENT" "$2" io "$3" >"$W/$1.out" 2>&1 &&
		grep -q "OK $3 write+read" "$W/$1.out" ||
		t_fail "$1's I/O on $2: $(cat "$W/$1.out")"
}

# a first attach and close on each guest: librados' one-time state and
# each domain's (its memory, g2's too) are there before the count
ctl vbd-attach g3 "$IMG" --vdev xvda >/dev/null || t_fail "attach rbd"
io g3 51712 50
ctl vbd-detach g3 xvda >/dev/null || t_fail "detach"
wait_log "vbd/$D3/51712: .*closed" 1 $TMO
ctl vbd-attach g1 "$IMG" --vdev xvda >/dev/null || t_fail "attach rbd"
io g1 51712 50
ctl vbd-detach g1 xvda >/dev/null || t_fail "detach"
wait_log "vbd/$D1/51712: .*closed" 1 $TMO
io g2 51712 10
sleep 0.5
fd0=$(nfd) th0=$(nth)
fds() { ls -l /proc/"$BACKD_PID"/fd | awk '{print $9, $10, $11}' | sort; }
fds >"$W/fds0"
t_pass "RBD vbd attached, 50 verified write+read, detached and closed, twice ($fd0 fds, $th0 threads)"

# ---- the cluster stopped while the vbd goes -----------------------------------------
ctl vbd-attach g1 "$IMG" --vdev xvda >/dev/null || t_fail "attach rbd again"
io g1 51712 20
stop_cluster
t0=$(date +%s%N)
timeout 5 "$PVIO_CTL" -w "$W" vbd-detach g1 xvda >/dev/null ||
	t_fail "vbd-detach with the cluster stopped: not done within 5 s"
wait_log "vbd/$D1/51712: closing $IMG" 1 5
stats_ok "while the RBD close waits on the stopped cluster"
io g2 51712 300
stats_ok "after g2's I/O"
[ "$(grep -cE "vbd/$D1/51712: .*closed" "$W/backd.log")" -eq 1 ] ||
	t_fail "the close did not wait on the stopped cluster: the test proves nothing"
el=$(( ($(date +%s%N) - t0) / 1000000 ))
t_pass "cluster stopped: detach done, stats answers, g2 did 300 verified write+read while the close waits ($el ms)"

# ---- the same image re-attached meanwhile: its open waits for the close ----------------
ctl vbd-attach g3 "$IMG" --vdev xvda --no-wait >/dev/null || t_fail "attach g3"
wait_log "$IMG: waits for an earlier open or close of it" 1 10
stats_ok "while g3's open waits"
[ "$(grep -c "vbd/$D1/51712: .*closed" "$W/backd.log")" -eq 1 ] ||
	t_fail "closed before the cluster continued"
sleep 1
cont_cluster
wait_log "vbd/$D1/51712: .*closed" 2 $((TMO + 10))
t_wait_states g3 51712 "Initialising InitWait" $((TMO + 10))
io g3 51712 100
grep -q "exclusive lock is held" "$W/backd.log" &&
	t_fail "the re-attach met the old handle's lock: $(grep "exclusive lock" "$W/backd.log")"
t_pass "same image re-attached meanwhile: opened after the old close, 100 verified write+read"

# ---- everything released ------------------------------------------------------------
ctl vbd-detach g3 xvda >/dev/null || t_fail "detach g3"
wait_log "vbd/$D3/51712: .*closed" 2 $TMO
for _ in $(seq 100); do
	[ "$(nfd)" -eq "$fd0" ] && [ "$(nth)" -eq "$th0" ] && break
	sleep 0.1
done
[ "$(nfd)" -eq "$fd0" ] || t_fail "fds: $fd0 before, $(nfd) after: $(fds | diff "$W/fds0" -)"
[ "$(nth)" -eq "$th0" ] || t_fail "threads: $th0 before, $(nth) after"
t_pass "closed: fds $fd0 -> $(nfd), threads $th0 -> $(nth)"

# ---- removed while its I/O waits on the stopped cluster -------------------------------
ctl vbd-attach g1 "$IMG" --vdev xvda >/dev/null || t_fail "attach rbd (drain)"
io g1 51712 20
"$PVIO_CTL" -w "$W" run g1 -- "$CLIENT" 51712 io 1000000 >"$W/g1-bg.out" 2>&1 &
bg=$!
sleep 0.5
stop_cluster
sleep 0.5
kill -KILL "$bg" 2>/dev/null; wait "$bg" 2>/dev/null
# the toolstack removes the device without waiting for Closed (libxl
# does after its timeout): its queues still drain
XENSTORED_PATH="$W/xs/dom0.sock" xenstore-rm "/local/domain/0/backend/vbd/$D1/51712" ||
	t_fail "xenstore-rm the backend directory"
XENSTORED_PATH="$W/xs/dom0.sock" xenstore-rm "/local/domain/$D1/device/vbd/51712" || true
nclosed=$(grep -c "vbd/$D1/51712: .*closed" "$W/backd.log")
ndrained=$(grep -c "vbd/$D1/51712: drained after its removal" "$W/backd.log")
ctl vbd-attach g3 "$IMG" --vdev xvda --no-wait >/dev/null || t_fail "attach g3 (drain)"
wait_log "$IMG: waits for an earlier open or close of it" 2 10
stats_ok "while g3's open waits for g1's drain"
sleep 1
[ "$(grep -c "vbd/$D1/51712: drained after its removal" "$W/backd.log")" -eq "$ndrained" ] ||
	t_fail "g1's vbd drained with the cluster stopped: no I/O was in flight, the test proves nothing"
cont_cluster
wait_log "vbd/$D1/51712: drained after its removal" $((ndrained + 1)) $((TMO + 10))
wait_log "vbd/$D1/51712: .*closed" $((nclosed + 1)) $((TMO + 10))
t_wait_states g3 51712 "Initialising InitWait" $((TMO + 10))
io g3 51712 100
grep -q "exclusive lock is held" "$W/backd.log" &&
	t_fail "the re-attach met the draining handle's lock: $(grep "exclusive lock" "$W/backd.log")"
ctl vbd-detach g3 xvda >/dev/null || t_fail "detach g3 (drain)"
t_pass "removed while its I/O waited on the stopped cluster: the same image re-attached meanwhile opened after the drain and close, 100 verified write+read"

# ---- SIGTERM with a close hung -----------------------------------------------------------
ctl vbd-attach g1 "$IMG" --vdev xvda >/dev/null || t_fail "attach rbd (3)"
io g1 51712 20
stop_cluster
timeout 5 "$PVIO_CTL" -w "$W" vbd-detach g1 xvda >/dev/null ||
	t_fail "vbd-detach (3): not done within 5 s"
wait_log "vbd/$D1/51712: closing $IMG" 3 5
t0=$(date +%s%N)
kill -TERM "$BACKD_PID"
for _ in $(seq 100); do kill -0 "$BACKD_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$BACKD_PID" 2>/dev/null &&
	t_fail "pvio-backd did not exit within 5 s of SIGTERM with a close hung"
wait "$BACKD_PID" 2>/dev/null
rc=$?
el=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc -eq 0 ] || t_fail "pvio-backd exited with $rc"
grep -q "close.* abandoned, waiting on an unresponsive peer" "$W/backd.log" ||
	t_fail "the abandoned close is not logged: $(tail -3 "$W/backd.log")"
cont_cluster
t_pass "SIGTERM with a close hung: exit 0 in $el ms"
exit 0
