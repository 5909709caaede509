#!/bin/bash
# SPDX-License-Identifier: MIT
# A disk whose target cannot be opened again when pvio-backd restarts
# under its connected guest (docs/protocol.md rule 11; backend/
# target-absent.c): a Closing would leave the requests the guest has in
# flight unanswered for ever (Linux's blkfront does not fail them).
#  - a file: pvio-backd SIGKILLed under a guest's crash-record load, the
#    image moved away before the restart. Every request in flight, those
#    the killed process left first, is answered exactly once, with an I/O
#    error; the device stays Connected with an error node saying why;
#    stats show the target "absent" and the errors; another guest's disk
#    goes on; every record acknowledged before is intact in the image; a
#    detach releases the device and the image attaches and serves again;
#    after the drain, 8 writes each followed by a barrier are answered at
#    once (none left parked behind a barrier the target answered inside
#    its submit);
#  - a hotplug script's device (a loop device, as the stock block script
#    makes) gone at the restart: the same, and the script's device is
#    released at the detach;
#  - an NBD export whose server is gone at the restart (with nbdkit): the
#    same answer once the open fails (refused, or after --remote-timeout);
#    the server back, the disk is served again under the running guest
#    (the failed open's writer lock was released: the new open takes it),
#    its error node gone, and the guest's load runs again, every record
#    acknowledged before the crash and after read back intact;
#  - an export that comes back smaller stays absent (another disk is not
#    put under a running guest), said once, and is still tried; one whose
#    writer lock another program holds by then is not tried again.
. "$(dirname "$0")/lib.sh"
CLIENT="$B/tests/integration/t-blkclient"
command -v xenstore-read >/dev/null || t_skip "xenstore-utils not installed"
BE=/local/domain/0/backend

t_world_up
ctl create g1 >/dev/null || t_fail "create g1"
DG2=$(ctl create g2) || t_fail "create g2"
truncate -s 16M "$W/d1.img" "$W/d2.img"
ctl vbd-attach g1 "$W/d1.img" >/dev/null || t_fail "attach d1"
ctl vbd-attach g2 "$W/d2.img" >/dev/null || t_fail "attach d2"
mkdir -p "$W/locks"
ARGS=(--workers 1 --remote-timeout 2 --lock-dir "$W/locks")
t_backd_up "${ARGS[@]}"

# kill pvio-backd under a guest's load ($1: its client's stop file: from
# now on it accepts I/O errors); $2 runs before the restart
kill_restart() {
	touch "$1.killed"
	kill -KILL "$BACKD_PID"
	wait "$BACKD_PID" 2>/dev/null
	T_PIDS=${T_PIDS/ $BACKD_PID/}
	eval "$2"
	t_backd_up "${ARGS[@]}"
}

# a crash-record load on guest $1's disk (t-blkclient crash --gone, its
# output in $W/$1.out): I/O errors are allowed once $W/stop-$1.killed
# exists (kill_restart); its pid in LOAD, a second after it began
load_on() {
	"$PVIO_CTL" -w "$W" run "$1" -- "$CLIENT" 51712 crash "$W/stop-$1" \
		--gone "$W/acked-$1" "${@:2}" >"$W/$1.out" 2>&1 &
	LOAD=$!
	t_wait_states "$1" 51712 "Connected Connected"
	sleep 1
}

# the absent disk of guest $1 in stats: its kind, reason $2, its errors
check_absent() {
	local st
	st=$("$PVIO_CTL" -w "$W" stats "$1" --json) || t_fail "stats $1"
	python3 - "$st" "$2" <<'PY' || t_fail "stats of $1's absent disk: $st"
import json, sys
d = json.loads(sys.argv[1])
devs = d["devices"] if isinstance(d, dict) and "devices" in d else d
v = [x for x in devs if x.get("kind") == "vbd"][0]
assert v["target_kind"] == "absent", v
assert sys.argv[2] in v["target_error"], v
def find(o, k):
    if isinstance(o, dict):
        for kk, vv in o.items():
            if kk == k and isinstance(vv, int):
                return vv
            r = find(vv, k)
            if r is not None:
                return r
    if isinstance(o, list):
        for x in o:
            r = find(x, k)
            if r is not None:
                return r
    return None
assert (find(v, "io") or 0) >= 16, v	# at least the client's train
PY
}

# ---- a file moved away -------------------------------------------------------------
load_on g1
C1=$LOAD
kill_restart "$W/stop-g1" 'mv "$W/d1.img" "$W/d1.away"'
# answered: the client drains, checks the backend is still Connected, and
# holds (or fails: an answer twice, or none)
answered() {	# client-pid out-file what
	for _ in $(seq 100); do
		grep -q "requests answered with an I/O error" "$2" && break
		t_ours "$1" || break
		sleep 0.1
	done
	grep -q "^OK [1-9][0-9]* requests answered with an I/O error, each once" "$2" && return
	t_ours "$1" && t_fail "$3's requests not answered 10 s after the restart: $(tail -2 "$2")"
	t_fail "$3: $(tail -2 "$2")"
}
answered $C1 "$W/g1.out" g1
[ "$(t_states g1 51712)" = "Connected Connected" ] ||
	t_fail "g1's disk went through $(t_states g1 51712): Closing hangs Linux's blkfront"
DG1=$(ctl devices g1 | awk '$3 == 51712 { print $1 }')
err=$(ctl run 0 -- xenstore-read "$BE/vbd/$DG1/51712/error" 2>/dev/null)
case $err in
*"d1.img: No such file or directory: every request answered with an I/O error") ;;
*) t_fail "g1's error node: '$err'" ;;
esac
check_absent g1 "No such file"
"$PVIO_CTL" -w "$W" run g2 -- "$CLIENT" 51712 io 50 >"$W/g2.out" 2>&1 ||
	t_fail "g2 beside the absent disk: $(tail -2 "$W/g2.out")"
"$CLIENT" - verify-image "$W/d1.away" "$W/acked-g1" >"$W/verify.out" 2>&1 ||
	t_fail "$(tail -1 "$W/verify.out")"
touch "$W/stop-g1"
wait $C1 || t_fail "g1 at its end: $(tail -2 "$W/g1.out")"
t_pass "image gone at a restart: $(sed -n 's/^OK \([0-9]*\) requests.*/\1/p' "$W/g1.out") requests answered once with an I/O error, the disk still Connected with its reason; g2 served; $(sed 's/^OK //' "$W/verify.out")"

ctl vbd-detach g1 xvda >/dev/null || t_fail "detach the absent disk"
for _ in $(seq 50); do
	ctl run 0 -- xenstore-exists "$BE/vbd/$DG1/51712" 2>/dev/null || break
	sleep 0.1
done
mv "$W/d1.away" "$W/d1.img"
ctl vbd-attach g1 "$W/d1.img" >/dev/null || t_fail "attach d1 again"
"$PVIO_CTL" -w "$W" run g1 -- "$CLIENT" 51712 io 50 >"$W/g1b.out" 2>&1 ||
	t_fail "g1 after the image came back: $(tail -2 "$W/g1b.out")"
t_pass "the absent disk detached; the image attached again and served 50 verified write+read"

# ---- a hotplug script's device gone ---------------------------------------------------
if [ "$(id -u)" = 0 ] && losetup -f >/dev/null 2>&1; then
	mkdir -p "$W/scripts"
	cat >"$W/scripts/block" <<'SH'
#!/bin/sh
# as the stock block script: a loop device for the file, its major:minor
case $1 in
add)
	p=$(xenstore-read "$XENBUS_PATH/params") || exit 1
	l=$(losetup -f --show "$p") || exit 1
	xenstore-write "$XENBUS_PATH/node" "$l" \
		"$XENBUS_PATH/physical-device" "$(stat -L -c '%t:%T' "$l")" \
		"$XENBUS_PATH/hotplug-status" connected ;;
remove)
	l=$(xenstore-read "$XENBUS_PATH/node") && losetup -d "$l" ;;
esac
SH
	chmod 755 "$W/scripts/block"
	ctl create g5 >/dev/null || t_fail "create g5"
	truncate -s 16M "$W/d5.img"
	ctl vbd-attach g5 "$W/d5.img" --script "$W/scripts/block" >/dev/null ||
		t_fail "attach d5 through the script"
	DG5=$(ctl devices g5 | awk '$3 == 51712 { print $1 }')
	load_on g5
	C5=$LOAD
	# the volume the script made is gone at the restart (as a removed
	# logical volume): its major:minor names no device
	kill_restart "$W/stop-g5" \
		'ctl run 0 -- xenstore-write "$BE/vbd/$DG5/51712/physical-device" f0:ff'
	answered $C5 "$W/g5.out" g5
	[ "$(t_states g5 51712)" = "Connected Connected" ] ||
		t_fail "g5's disk went through $(t_states g5 51712)"
	check_absent g5 "physical-device 'f0:ff'"
	touch "$W/stop-g5"
	wait $C5 || t_fail "g5 at its end: $(tail -2 "$W/g5.out")"
	ctl vbd-detach g5 xvda >/dev/null || t_fail "detach g5's absent disk"
	for _ in $(seq 100); do
		[ -z "$(losetup -j "$W/d5.img")" ] && break; sleep 0.05
	done
	"$CLIENT" - verify-image "$W/d5.img" "$W/acked-g5" >"$W/verify5.out" 2>&1 ||
		t_fail "$(tail -1 "$W/verify5.out")"
	t_pass "a hotplug script's device gone at a restart: g5's requests answered once with an I/O error, barriers included, the disk still Connected; detached; $(sed 's/^OK //' "$W/verify5.out")"
else
	t_log "SKIP (part): not root, or no loop devices: the hotplug script case is not run"
fi

# ---- an NBD server gone, and back ------------------------------------------------------
if ! command -v nbdkit >/dev/null 2>&1 ||
   ! "$BACKD" --help | grep -q "targets:.*nbd"; then
	t_log "SKIP (part): nbdkit or pvio-backd's libnbd missing: the NBD case is not run"
	exit 0
fi
# nbdkit serving $2 (a file) on socket $1, its pid in NBD
nbd_up() {
	rm -f "$1"
	nbdkit --foreground --exit-with-parent --unix "$1" file "$2" \
		>>"$W/nbd.log" 2>&1 &
	NBD=$!
	T_PIDS="$T_PIDS $NBD"
	for _ in $(seq 100); do [ -S "$1" ] && break; sleep 0.05; done
	[ -S "$1" ] || t_fail "nbdkit on $2 did not start: $(tail -2 "$W/nbd.log")"
}
# the disk of guest $1 in stats is served from kind $2
served_from() {
	"$PVIO_CTL" -w "$W" stats "$1" --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
devs = d["devices"] if isinstance(d, dict) and "devices" in d else d
v = [x for x in devs if x.get("kind") == "vbd"][0]
sys.exit(0 if v["target_kind"] == sys.argv[1] and "target_error" not in v else 1)' "$2"
}
ctl create g3 >/dev/null || t_fail "create g3"
truncate -s 16M "$W/d3.img"
nbd_up "$W/g3.sock" "$W/d3.img"
ctl vbd-attach g3 "nbd+unix:///?socket=$W/g3.sock" >/dev/null || t_fail "attach g3"
DG3=$(ctl devices g3 | awk '$3 == 51712 { print $1 }')
# --back: once its errors are answered, the client waits for the disk to
# answer again and runs its load once more, errors not allowed
load_on g3 --back
C3=$LOAD
kill_restart "$W/stop-g3" 'kill $NBD; wait $NBD 2>/dev/null'
answered $C3 "$W/g3.out" g3
[ "$(t_states g3 51712)" = "Connected Connected" ] ||
	t_fail "g3's disk went through $(t_states g3 51712)"
check_absent g3 "cannot connect"
# the server back: the disk is served again (tried after 1 s, then at
# doubling intervals up to 10 s), the guest's load goes on
nbd_up "$W/g3.sock" "$W/d3.img"
t0=$(date +%s%N)
for _ in $(seq 250); do
	grep -q "^OK the disk answers again" "$W/g3.out" && break
	t_ours $C3 || t_fail "g3 while its server came back: $(tail -2 "$W/g3.out")"
	sleep 0.1
done
grep -q "^OK the disk answers again" "$W/g3.out" ||
	t_fail "g3's disk not served 25 s after its NBD server came back: $(tail -1 "$W/g3.out"); $(grep "vbd/$DG3/51712" "$W/backd.log" | tail -2)"
back_ms=$((($(date +%s%N) - t0) / 1000000))
served_from g3 nbd || t_fail "g3 in stats after its server came back: $("$PVIO_CTL" -w "$W" stats g3)"
! ctl run 0 -- xenstore-exists "$BE/vbd/$DG3/51712/error" 2>/dev/null ||
	t_fail "g3's error node stays after its target came back"
grep -q "vbd/$DG3/51712: .* is back after [0-9]* tries" "$W/backd.log" ||
	t_fail "no log line for g3's target back"
sleep 2	# the guest's load, on the target back
touch "$W/stop-g3"
wait $C3 || t_fail "g3 at its end: $(tail -2 "$W/g3.out")"
grep -q "^OK [0-9]* acknowledged records read back intact" "$W/g3.out" ||
	t_fail "g3's end: $(tail -1 "$W/g3.out")"
t_pass "NBD server gone at a restart: g3's requests answered once with an I/O error, the disk still Connected; the server back, the disk served again within $back_ms ms, the guest's load verified on it ($(grep -c . "$W/acked-g3") records from before the crash among $(sed -n 's/^OK \([0-9]*\) acknowledged.*/\1/p' "$W/g3.out") read back intact)"

# ---- back, but not the same disk; back, but another writer has it -------------------------
# An export that comes back smaller is not served under the running
# guest: still I/O errors, said once in the log. One whose writer lock
# another program holds now (the export given to another VM) is not
# tried again: the guest's disk is never taken back from its new holder.
ctl create g4 >/dev/null || t_fail "create g4"
ctl create g6 >/dev/null || t_fail "create g6"
truncate -s 16M "$W/d4.img" "$W/d6.img"
nbd_up "$W/g4.sock" "$W/d4.img"
NBD4=$NBD
nbd_up "$W/g6.sock" "$W/d6.img"
NBD6=$NBD
ctl vbd-attach g4 "nbd+unix:///?socket=$W/g4.sock" >/dev/null || t_fail "attach g4"
ctl vbd-attach g6 "nbd+unix:///?socket=$W/g6.sock" >/dev/null || t_fail "attach g6"
DG4=$(ctl devices g4 | awk '$3 == 51712 { print $1 }')
DG6=$(ctl devices g6 | awk '$3 == 51712 { print $1 }')
load_on g6
C6=$LOAD
load_on g4
C4=$LOAD
touch "$W/stop-g6.killed"
kill_restart "$W/stop-g4" 'kill $NBD4 $NBD6; wait $NBD4 $NBD6 2>/dev/null'
answered $C4 "$W/g4.out" g4
answered $C6 "$W/g6.out" g6
# g6's lock file (its content names the export) held by another program
lk=$(grep -l "socket=$W/g6.sock" "$W"/locks/*.lock) || t_fail "no lock file for g6's export"
python3 -c '
import fcntl, sys, time
f = open(sys.argv[1], "r+")
fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
open(sys.argv[2], "w").close()
time.sleep(120)' "$lk" "$W/g6.held" &
HOLDER=$!
T_PIDS="$T_PIDS $HOLDER"
for _ in $(seq 50); do [ -e "$W/g6.held" ] && break; sleep 0.1; done
[ -e "$W/g6.held" ] || t_fail "could not take g6's lock"
truncate -s 8M "$W/d4.img"
nbd_up "$W/g4.sock" "$W/d4.img"
nbd_up "$W/g6.sock" "$W/d6.img"
for _ in $(seq 300); do
	grep -q "vbd/$DG4/51712: .* is back but not as the guest's disk was" "$W/backd.log" &&
	grep -q "vbd/$DG6/51712: .*has a writer already.*not tried again" "$W/backd.log" && break
	sleep 0.1
done
grep -q "vbd/$DG4/51712: .* is back but not as the guest's disk was (8388608 bytes, the guest's disk has 16777216)" "$W/backd.log" ||
	t_fail "g4's export back smaller: $(grep "vbd/$DG4/51712" "$W/backd.log" | tail -2)"
grep -q "vbd/$DG6/51712: .*has a writer already.*not tried again" "$W/backd.log" ||
	t_fail "g6's export locked by another writer: $(grep "vbd/$DG6/51712" "$W/backd.log" | tail -2)"
check_absent g4 "cannot connect"
check_absent g6 "cannot connect"
"$PVIO_CTL" -w "$W" stats g4 --json | grep -q '"target_tries"' ||
	t_fail "g4's stats do not say its target is still tried"
! "$PVIO_CTL" -w "$W" stats g6 --json | grep -q '"target_tries"' ||
	t_fail "g6's target still tried after another writer took it"
kill $HOLDER
touch "$W/stop-g4" "$W/stop-g6"
wait $C4 || t_fail "g4 at its end: $(tail -2 "$W/g4.out")"
wait $C6 || t_fail "g6 at its end: $(tail -2 "$W/g6.out")"
t_pass "an export back smaller is not served under the guest (still tried, said once); one another writer locked is not tried again"
