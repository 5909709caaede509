#!/bin/bash
# SPDX-License-Identifier: MIT
# One hung target hurts nobody else (no head-of-line blocking). Four
# guests on ONE worker; the fourth's disk is a file on a FUSE file system
# (t-hangfs) where every call blocks until told (reads and writes, and
# getattr, open and flush: as a dead NFS server's fstat and close); a
# fifth guest's disk, idle, is on another such mount:
#  - the hung target is submitted through io-wq, the others inline;
#  - a disk whose open waits on its file system, removed meanwhile by the
#    toolstack: what pvio-backd then writes does not bring its directory
#    back (feature nodes, a state: a device kept, its file open);
#  - on that mount, whose closes take 1.5 s: the disk detached and attached
#    again at once waits for its own close's lock instead of being refused,
#    and closes nothing on the main thread meanwhile;
#  - while its guest's I/O hangs, the three others' verified I/O runs to
#    the end, pvio-ctl stats answers, the stuck device is logged, and so
#    is its file that no longer answers fstat (the once-a-second size
#    check, off the main thread: it held the main thread, and every other
#    guest's control path, from the first check after the hang);
#  - the idle disk on the hung file system detached: its close (FUSE's
#    flush, NFS's write-back) is off the main thread too: stats answer;
#  - the hung guest's frontend dies (kill -9): the backend fails that
#    device without waiting for its drain; stats still answer and a new
#    guest connects and does verified I/O;
#  - SIGTERM: pvio-backd stops within 2 s (--drain-timeout's 1.5 s; 3 s
#    in a sanitizer build), the hung device abandoned and logged, the
#    host's lock free; the process exits (status 0) once the file system
#    answers (the kernel's close of its files waits for it).
. "$(dirname "$0")/lib.sh"
BLK="$B/tests/integration/t-blkclient"
t_hangfs_need
command -v xenstore-exists >/dev/null || t_skip "xenstore-utils not installed"

t_world_up
MNT="$W/mnt"
MNT2="$W/mnt2"
mkdir "$MNT" "$MNT2"
T_EXTRA_CLEANUP="rm -f '$W/hang'; fusermount3 -u '$MNT' 2>/dev/null; fusermount3 -u '$MNT2' 2>/dev/null"
truncate -s 64M "$W/hang.img" "$W/idle.img"
T_HANGFS_ATTR=1 t_hangfs "$W/hang.img" "$W/hang" "$MNT"
T_HANGFS_ALL=1 t_hangfs "$W/idle.img" "$W/hang" "$MNT2"

for g in g1 g2 g3 gh gi; do ctl create $g >/dev/null || t_fail "create $g"; done
for k in 1 2 3; do
	truncate -s 64M "$W/d$k.img"
	ctl vbd-attach g$k "$W/d$k.img" >/dev/null || t_fail "attach g$k"
done
ctl vbd-attach gh "$MNT/disk" >/dev/null || t_fail "attach gh"
ctl vbd-attach gi "$MNT2/disk" >/dev/null || t_fail "attach gi"
t_backd_up -w 1 --stall-timeout 2
t_wait_states gh 51712 "Initialising InitWait"
t_wait_states gi 51712 "Initialising InitWait"
grep -q "$MNT/disk.*submitted through io-wq" "$W/backd.log" ||
	t_fail "the FUSE target is not submitted through io-wq"
grep -q "$W/d1.img.*submitted inline" "$W/backd.log" ||
	t_fail "a local file is not submitted inline"
t_pass "FUSE target through io-wq, local files inline"

# ---- removed while its open waits on the file system ---------------------------------------
# A third mount whose open hangs holds the open of a file target (off the
# main thread: test-backd-deadfs.sh). The toolstack removes the backend
# directory meanwhile (xenstore-rm); once the open returns, what
# pvio-backd writes must not bring the directory back (feature nodes, a
# state node: a device kept, its file open and locked), and the file is
# closed (with its lock).
MNT3="$W/mnt3"
mkdir "$MNT3"
T_EXTRA_CLEANUP="rm -f '$W/hang3'; fusermount3 -u '$MNT3' 2>/dev/null; $T_EXTRA_CLEANUP"
truncate -s 16M "$W/gone.img"
touch "$W/hang3"
T_HANGFS_OPEN=1 T_HANGFS_FLUSH_MS=1500 T_HANGFS_ORDER="$W/opens" \
	t_hangfs "$W/gone.img" "$W/hang3" "$MNT3"
ctl create gr >/dev/null || t_fail "create gr"
D6=$(ctl domid gr 2>/dev/null || echo 6)
ctl vbd-attach gr "$MNT3/disk" --no-wait >/dev/null || t_fail "attach gr"
for _ in $(seq 100); do grep -q "^O" "$W/opens" 2>/dev/null && break; sleep 0.05; done
grep -q "^O" "$W/opens" || t_fail "pvio-backd did not open $MNT3/disk"
ctl run 0 -- xenstore-rm "/local/domain/0/backend/vbd/$D6/51712" ||
	t_fail "xenstore-rm the backend directory"
rm -f "$W/hang3"
t_wait_log "vbd/$D6/51712: removed"
sleep 0.5	# anything still to come would have come
ctl run 0 -- xenstore-exists "/local/domain/0/backend/vbd/$D6/51712" &&
	t_fail "the removed directory is back: $(ctl run 0 -- xenstore-ls "/local/domain/0/backend/vbd/$D6/51712" | tr '\n' ' ')"
grep -q "vbd/$D6/51712: removed" "$W/backd.log" ||
	t_fail "pvio-backd kept the removed device: $(grep "vbd/$D6/" "$W/backd.log" | tail -3)"
t_pass "removed while its open waited on the file system: nothing written back, the device gone"

# ---- detached and attached again while its close still runs --------------------------------
# Every close on this mount takes 1.5 s (its flush), and runs off the main
# thread; the image's lock goes with it. The same image attached again
# meanwhile must wait for our own close, not be refused as in use.
t_wait_log "vbd/$D6/51712: .*mnt3/disk closed"
# (xvdb: the removal above left xvda's frontend directory)
ctl vbd-attach gr "$MNT3/disk" --vdev xvdb >/dev/null || t_fail "attach gr again"
timeout 10 "$PVIO_CTL" -w "$W" vbd-detach gr xvdb >/dev/null || t_fail "detach gr"
ctl vbd-attach gr "$MNT3/disk" --vdev xvdb >/dev/null ||
	t_fail "attached again while its close ran: $(grep "vbd/$D6/" "$W/backd.log" | tail -2)"
t_wait_states gr 51728 "Initialising InitWait"
grep -q "vbd/$D6/51728: .*mnt3/disk is locked: waiting" "$W/backd.log" ||
	t_fail "the new attach did not meet the old close's lock (the test proves nothing)"
# while it waits, nothing of it is closed (nor opened) on the main thread:
# each try closed its new fd there, 1.5 s of flush each time
for _ in 1 2 3 4 5 6; do
	timeout 1 "$PVIO_CTL" -w "$W" stats >/dev/null ||
		t_fail "stats unanswered (1 s) while the attach waits for our own close"
	sleep 0.3
done
ctl run gr -- "$BLK" 51728 io 20 >"$W/gr.out" 2>&1 || t_fail "gr's I/O: $(cat "$W/gr.out")"
timeout 10 "$PVIO_CTL" -w "$W" vbd-detach gr xvdb >/dev/null || t_fail "detach gr again"
t_pass "detached and attached again while its close (1.5 s) ran off the main thread: waited for it, then served"

run() { "$PVIO_CTL" -w "$W" run "$1" -- "$BLK" "${@:2}"; }
# the three guests' verified I/O, at once; each one's wall time in ms
three() {	# tag
	local k
	for k in 1 2 3; do
		( s=$(date +%s%N); run g$k 51712 io 1500 >"$W/g$k.out" 2>&1
		  rc=$?; echo $(( ($(date +%s%N) - s) / 1000000 )) >"$W/g$k.ms"
		  exit $rc ) &
		eval "P$k=\$!"
	done
	for k in 1 2 3; do
		eval "wait \$P$k" || t_fail "g$k's I/O failed ($1): $(cat "$W/g$k.out")"
		grep -q "OK 1500 write+read" "$W/g$k.out" || t_fail "g$k ($1): $(cat "$W/g$k.out")"
	done
	echo "$(cat "$W/g1.ms") $(cat "$W/g2.ms") $(cat "$W/g3.ms")"
}
# the same I/O before anything hangs: the figure to compare with (not a
# bound: performance lives in benchmarks)
base=$(three "before the hang")
touch "$W/hang"
# pvio-ctl itself in the background (not the function): it execs the
# client, so $! is the client
"$PVIO_CTL" -w "$W" run gh -- "$BLK" 51712 io 50 >"$W/hung.out" 2>&1 &
HUNG=$!
t_wait_states gh 51712 "Connected Connected"
hung=$(three "beside the hung target")
t_log "3 guests x 1500 verified write+read (ms each): before the hang $base, beside the hung target $hung"
kill -0 $HUNG 2>/dev/null || t_fail "the hung guest's I/O completed: $(cat "$W/hung.out")"
timeout 2 "$PVIO_CTL" -w "$W" stats >/dev/null || t_fail "stats unanswered while a target hangs"
t_wait_log "backend/vbd/4/51712.*no I/O completed for" ||
	t_fail "the stuck device was not logged"
t_wait_log "backend/vbd/4/51712.*does not answer: fstat waiting" ||
	t_fail "the file that no longer answers fstat was not logged"
t_pass "3 guests' verified I/O (1500 each) ran beside a hung target on the same worker; stats answered; the stuck device and its silent file were logged"

# the idle disk on the other hung mount goes: its close waits on the server
timeout 5 "$PVIO_CTL" -w "$W" vbd-detach gi xvda >/dev/null ||
	t_fail "detaching the idle disk on the hung file system"
t_wait_log "backend/vbd/5/51712: closing $MNT2/disk" ||
	t_fail "the idle disk's close did not start"
timeout 2 "$PVIO_CTL" -w "$W" stats >/dev/null ||
	t_fail "stats unanswered while a detached disk's close waits on its file system"
t_pass "an idle disk on the hung file system detached: its close waits off the main thread; stats answer"

kill -9 $HUNG; wait $HUNG 2>/dev/null
for _ in $(seq 100); do
	[ "$(t_states gh 51712 | cut -d' ' -f2)" = Closing ] && break; sleep 0.05
done
[ "$(t_states gh 51712 | cut -d' ' -f2)" = Closing ] ||
	t_fail "the dead frontend of the hung device was not noticed: $(t_states gh 51712)"
timeout 2 "$PVIO_CTL" -w "$W" stats >/dev/null || t_fail "stats unanswered after the hung guest died"
ctl create g5 >/dev/null && truncate -s 16M "$W/d5.img" &&
	ctl vbd-attach g5 "$W/d5.img" >/dev/null || t_fail "attach g5"
timeout 20 "$PVIO_CTL" -w "$W" run g5 -- "$BLK" 51712 io 200 >"$W/g5.out" 2>&1 ||
	t_fail "a new guest could not connect after the hung guest died: $(cat "$W/g5.out")"
run g1 51712 io 200 >"$W/g1.out" 2>&1 || t_fail "g1 after: $(cat "$W/g1.out")"
t_pass "the hung guest's frontend died: its device failed, stats answer, a new guest connects and does I/O"

# SIGTERM: pvio-backd's own part (the drain bound, the abandoned device
# logged, the host's lock released for the next pvio-backd) within
# EXIT_MS. The process itself ends only once the hung file system answers:
# the kernel closes its files at exit, and a close of the idle disk's file
# waits in FUSE's flush, which nothing interrupts (so would NFS's
# write-back of dirty pages).
EXIT_MS=2000
grep -q 'libasan\|libubsan' "/proc/$BACKD_PID/maps" && EXIT_MS=3000
t0=$(date +%s%N)
kill -TERM "$BACKD_PID"
for _ in $(seq 250); do
	grep -q "stopped; 1 device abandoned" "$W/backd.log" && break
	kill -0 "$BACKD_PID" 2>/dev/null || break
	sleep 0.02
done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
grep -q "stopped; 1 device abandoned" "$W/backd.log" ||
	t_fail "pvio-backd did not stop within ${ms} ms of SIGTERM: $(tail -3 "$W/backd.log")"
[ $ms -le $EXIT_MS ] || t_fail "SIGTERM: stopped after $ms ms (more than $EXIT_MS ms)"
grep -q "backend/vbd/4/51712.*abandoned" "$W/backd.log" || t_fail "the hung device's abandonment was not logged"
[ -e "$W/backd.lock" ] || t_fail "no $W/backd.lock"
flock -n "$W/backd.lock" true || t_fail "the host's lock is still held after the stop"
rm -f "$W/hang"
for _ in $(seq 250); do kill -0 "$BACKD_PID" 2>/dev/null || break; sleep 0.02; done
kill -0 "$BACKD_PID" 2>/dev/null && t_fail "pvio-backd still running 5 s after the file system answered again"
wait "$BACKD_PID"; rc=$?
[ $rc = 0 ] || t_fail "pvio-backd exited with $rc"
t_pass "SIGTERM: stopped in $ms ms, the hung device abandoned, the host's lock released; exit 0 once the file system answered"
exit 0
