#!/bin/bash
# SPDX-License-Identifier: MIT
# A disk whose file server is dead (an NFS server gone, a FUSE server that
# does not answer) when it is attached, and when pvio-backd restarts: the
# open of its file waits on the server, and must wait off the main thread.
# One guest's disk is on t-hangfs, whose open (and I/O) blocks while told;
# the others' are local files:
#  - pvio-backd starts while that disk's open hangs: its startup line and
#    stats come at once, the other guest's disk connects and does
#    verified I/O, and so does a guest attached meanwhile; the hung open
#    is logged after --stall-timeout; once the server answers, the disk
#    opens and its guest's verified I/O runs;
#  - pvio-backd killed (SIGKILL) under both guests' load (crash records)
#    and restarted while the server is dead again: the local guest's load
#    goes on and verifies while the other's open hangs; READY=1 comes
#    after --stall-timeout (a service manager's start timeout must not
#    kill the daemon); once the server answers, that disk re-attaches at
#    its live rings and every acknowledged record reads back intact, on
#    both;
#  - a disk detached and attached again at once, its old close (the
#    image's lock with it) ending while the new open runs: the attach
#    waits for it and is served, not refused as in use;
#  - an image attached while a removed device of ours still drains with
#    it (I/O in flight on a file system that hangs): it waits for that
#    device's close, then is served;
#  - two disks of one image on a FUSE mount, looked at by one job a
#    second: both see the image grow, and the one left after a detach.
. "$(dirname "$0")/lib.sh"
BLK="$B/tests/integration/t-blkclient"
t_hangfs_need
command -v xenstore-read >/dev/null || t_skip "xenstore-utils not installed"

t_world_up
MNT="$W/mnt"
mkdir "$MNT"
T_EXTRA_CLEANUP="rm -f '$W/hang'; fusermount3 -u '$MNT' 2>/dev/null"
truncate -s 16M "$W/dead.img" "$W/d1.img" "$W/d2.img"
T_HANGFS_OPEN=1 t_hangfs "$W/dead.img" "$W/hang" "$MNT"

D1=$(ctl create g1) || t_fail "create g1"
DD=$(ctl create gd) || t_fail "create gd"
ctl vbd-attach g1 "$W/d1.img" --no-wait >/dev/null || t_fail "attach g1"
ctl vbd-attach gd "$MNT/disk" --no-wait >/dev/null || t_fail "attach gd"
run() { "$PVIO_CTL" -w "$W" run "$1" -- "$BLK" "${@:2}"; }

# ---- started while the disk's file server is dead ------------------------------------------
touch "$W/hang"
"$BACKD" -p "sim:$W" -w 1 --stall-timeout 2 >>"$W/backd.log" 2>&1 &
BACKD_PID=$!
T_PIDS="$T_PIDS $BACKD_PID"
t_wait_log "$T_BACKD_READY" 10 ||
	t_fail "pvio-backd did not start in 10 s with one disk's file server dead: $(tail -2 "$W/backd.log")"
timeout 2 "$PVIO_CTL" -w "$W" stats >/dev/null ||
	t_fail "stats unanswered while a disk's open hangs"
run g1 51712 io 200 >"$W/g1.out" 2>&1 || t_fail "g1's I/O beside the hung open: $(cat "$W/g1.out")"
D2=$(ctl create g2) || t_fail "create g2"
timeout 10 "$PVIO_CTL" -w "$W" vbd-attach g2 "$W/d2.img" >/dev/null ||
	t_fail "attach g2 while a disk's open hangs"
run g2 51712 io 200 >"$W/g2.out" 2>&1 || t_fail "g2's I/O beside the hung open: $(cat "$W/g2.out")"
t_wait_log "vbd/$DD/51712: .*does not answer: its open waiting for 2 s" 5 ||
	t_fail "the hung open was not logged: $(grep "vbd/$DD/" "$W/backd.log" | tail -2)"
[ "$(t_states gd 51712)" = "Initialising Initialising" ] ||
	t_fail "gd's disk, whose open hangs: states $(t_states gd 51712)"
t_pass "started with a disk's file server dead: startup, stats, two other guests' verified I/O; the hung open logged"

rm -f "$W/hang"
t_wait_states gd 51712 "Initialising InitWait"
t_wait_log "vbd/$DD/51712: .*answers again (its open took" 5 ||
	t_fail "the open's return was not logged"
run gd 51712 io 200 >"$W/gd.out" 2>&1 || t_fail "gd's I/O once its server answered: $(cat "$W/gd.out")"
t_pass "the server answers: the disk opens, its guest's verified I/O runs"

# ---- restarted while it is dead again, under load ------------------------------------------
# a pvio-backd killed and waited for: its pid may be reused
reaped() { T_PIDS=${T_PIDS/ $BACKD_PID/}; }
rm -f "$W/stop1" "$W/stopd"
"$PVIO_CTL" -w "$W" run g1 -- "$BLK" 51712 crash "$W/stop1" >"$W/c1.out" 2>&1 &
C1=$!
"$PVIO_CTL" -w "$W" run gd -- "$BLK" 51712 crash "$W/stopd" >"$W/cd.out" 2>&1 &
CD=$!
t_wait_states g1 51712 "Connected Connected"
t_wait_states gd 51712 "Connected Connected"
sleep 0.5
kill -KILL "$BACKD_PID"
wait "$BACKD_PID" 2>/dev/null
reaped
touch "$W/hang"
n0=$(grep -c "vbd/$DD/51712: re-attached" "$W/backd.log")
t_notify_listen "$W/notify.sock" "$W/notify.log"
NOTIFY_SOCKET="$W/notify.sock" t_backd_up -w 1 --stall-timeout 2
sleep 1
# g1's load runs to its end and verifies while gd's open still hangs
touch "$W/stop1"
for _ in $(seq 200); do kill -0 $C1 2>/dev/null || break; sleep 0.05; done
kill -0 $C1 2>/dev/null && t_fail "g1's load did not finish in 10 s while gd's open hangs"
wait $C1 || t_fail "g1's load: $(cat "$W/c1.out")"
grep -q "acknowledged records read back intact" "$W/c1.out" || t_fail "g1: $(cat "$W/c1.out")"
[ "$(grep -c "vbd/$DD/51712: re-attached" "$W/backd.log")" = "$n0" ] ||
	t_fail "gd re-attached while its server was dead: the test proves nothing"
timeout 2 "$PVIO_CTL" -w "$W" stats >/dev/null || t_fail "stats unanswered after the restart"
# READY=1 (Type=notify) waits for the re-attaches, but not for ever: a
# start timeout would kill the daemon that serves g1, at every restart
for _ in $(seq 100); do kill -0 $T_NOTIFY_PID 2>/dev/null || break; sleep 0.05; done
kill -0 $T_NOTIFY_PID 2>/dev/null &&
	t_fail "no READY=1 4 s after --stall-timeout (2 s) while gd's open hangs: $(tr '\n' ' ' <"$W/notify.log")"
wait $T_NOTIFY_PID || t_fail "no READY=1: $(cat "$W/notify.log")"
grep -q "ready, 1 device still opening after 2 s" "$W/backd.log" ||
	t_fail "READY=1 with gd still opening was not logged"
t_log "g1 across the restart: $(grep 'crash load' "$W/c1.out" | sed 's/^OK //')"
rm -f "$W/hang"
t_wait_log "vbd/$DD/51712: re-attached" 15 ||
	t_fail "gd did not re-attach once its server answered: $(grep "vbd/$DD/" "$W/backd.log" | tail -3)"
sleep 0.5
touch "$W/stopd"
wait $CD || t_fail "gd's load: $(cat "$W/cd.out")"
grep -q "acknowledged records read back intact" "$W/cd.out" || t_fail "gd: $(cat "$W/cd.out")"
t_log "gd across the restart: $(grep 'crash load' "$W/cd.out" | sed 's/^OK //')"
t_pass "killed under load, restarted with the server dead: g1 served meanwhile, gd re-attached once it answered; every acknowledged record intact on both"

# ---- our own close ends while the next open runs -------------------------------------------
# A disk on a file system whose closes take 1 s each (two fds: 2 s) is
# detached and attached again at once: the new open meets the old close's
# lock, and its job goes on for 3 s after that (PVIO_TEST_LOCK_BUSY_MS: a
# slow server's size and O_DIRECT open), while the close ends. The lock
# it met was ours: the attach waits and tries again, not refused as in
# use.
t_backd_down
MNT2="$W/mnt2"
mkdir "$MNT2"
T_EXTRA_CLEANUP="$T_EXTRA_CLEANUP; fusermount3 -u '$MNT2' 2>/dev/null"
truncate -s 16M "$W/slow.img"
T_HANGFS_FLUSH_MS=1000 t_hangfs "$W/slow.img" "$W/hang2" "$MNT2"
PVIO_TEST_LOCK_BUSY_MS=3000 t_backd_up -w 1
ctl vbd-attach g2 "$MNT2/disk" --vdev xvdb >/dev/null 2>&1 || t_fail "attach g2 xvdb"
timeout 10 "$PVIO_CTL" -w "$W" vbd-detach g2 xvdb >/dev/null || t_fail "detach g2 xvdb"
timeout 20 "$PVIO_CTL" -w "$W" vbd-attach g2 "$MNT2/disk" --vdev xvdb >/dev/null 2>"$W/err" ||
	t_fail "attached again, the old close ending while the new open ran: $(cat "$W/err")"
grep -q "vbd/$D2/51728: .*mnt2/disk is locked: waiting" "$W/backd.log" ||
	t_fail "the new open did not meet the old close's lock (the test proves nothing)"
run g2 51728 io 50 >"$W/g2b.out" 2>&1 || t_fail "g2's xvdb: $(cat "$W/g2b.out")"
t_pass "detached and attached again, the old close (2 s) ending while the new open ran: waited for, then served"

# ---- the image attached again while a removed device still drains with it ------------------
# g3's disk is on a mount whose I/O hangs while told: its guest dies with
# a request in flight, and the toolstack removes the device while that
# request still waits on the file system. The device drains (its file,
# and the image's lock, are held until that request is answered and the
# file closed). The image attached to g2 meanwhile waits for that close,
# not refused as in use; once the file system answers, the drain ends,
# the file is closed and g2's disk opens.
MNT3="$W/mnt3"
mkdir "$MNT3"
T_EXTRA_CLEANUP="rm -f '$W/hang3'; $T_EXTRA_CLEANUP; fusermount3 -u '$MNT3' 2>/dev/null"
truncate -s 16M "$W/drain.img"
t_hangfs "$W/drain.img" "$W/hang3" "$MNT3"
D3=$(ctl create g3) || t_fail "create g3"
ctl vbd-attach g3 "$MNT3/disk" >/dev/null 2>&1 || t_fail "attach g3"
touch "$W/hang3"
"$PVIO_CTL" -w "$W" run g3 -- "$BLK" 51712 io 50 >"$W/g3.out" 2>&1 &
G3=$!
t_wait_states g3 51712 "Connected Connected"
sleep 0.3	# its first request waits on the file system
kill -9 $G3
wait $G3 2>/dev/null
for _ in $(seq 100); do
	[ "$(t_states g3 51712 | cut -d' ' -f2)" = Closing ] && break; sleep 0.05
done
ctl run 0 -- xenstore-rm "/local/domain/0/backend/vbd/$D3/51712" ||
	t_fail "xenstore-rm g3's backend directory"
t_wait_log "vbd/$D3/51712: removed" || t_fail "g3's device was not removed"
timeout 10 "$PVIO_CTL" -w "$W" vbd-attach g2 "$MNT3/disk" --vdev xvdc >/dev/null 2>"$W/err" ||
	t_fail "attached while a removed device drains with it: $(cat "$W/err")"
t_wait_log "vbd/$D2/51744: .*mnt3/disk is locked: waiting" ||
	t_fail "g2's xvdc did not wait for the draining device's close: $(grep "vbd/$D2/51744" "$W/backd.log" | tail -2)"
rm -f "$W/hang3"
run g2 51744 io 50 >"$W/g2c.out" 2>&1 || t_fail "g2's xvdc after the drain: $(cat "$W/g2c.out")"
t_pass "attached while a removed device still drained with the image: waited for its close, then served"

# ---- looks at files on one file system: one job for them all ---------------------------------
# Two read-only disks of one image on a FUSE mount share their once-a-
# second look (one job per file system): the image grown, both announce
# it; one of them detached, the other still sees the next growth.
MNT4="$W/mnt4"
mkdir "$MNT4"
T_EXTRA_CLEANUP="$T_EXTRA_CLEANUP; fusermount3 -u '$MNT4' 2>/dev/null"
truncate -s 16M "$W/grow.img"
t_hangfs "$W/grow.img" "$W/hang4" "$MNT4"
ctl vbd-attach g1 "$MNT4/disk" --vdev xvdd --mode r >/dev/null 2>&1 || t_fail "attach g1 xvdd"
ctl vbd-attach g2 "$MNT4/disk" --vdev xvdd --mode r >/dev/null 2>&1 || t_fail "attach g2 xvdd"
# connected (a resize is announced to a frontend)
"$PVIO_CTL" -w "$W" run g1 -- "$BLK" 51760 connect >/dev/null 2>&1 &
H1=$!
"$PVIO_CTL" -w "$W" run g2 -- "$BLK" 51760 connect >/dev/null 2>&1 &
H2=$!
T_PIDS="$T_PIDS $H1 $H2"
t_wait_states g1 51760 "Connected Connected"
t_wait_states g2 51760 "Connected Connected"
truncate -s 32M "$W/grow.img"
t_wait_log "vbd/$D1/51760: .*mnt4/disk grew to 33554432 bytes" 5 ||
	t_fail "g1's xvdd did not see the image grow"
t_wait_log "vbd/$D2/51760: .*mnt4/disk grew to 33554432 bytes" 5 ||
	t_fail "g2's xvdd did not see the image grow"
kill $H1
ctl vbd-detach g1 xvdd >/dev/null || t_fail "detach g1 xvdd"
truncate -s 48M "$W/grow.img"
t_wait_log "vbd/$D2/51760: .*mnt4/disk grew to 50331648 bytes" 5 ||
	t_fail "g2's xvdd did not see the image grow once g1's went"
kill $H2
t_pass "two disks of one image on a FUSE mount: their shared look saw it grow, and the one left after a detach"
t_backd_down
exit 0
