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
#    same answer once the open fails (refused, or after --remote-timeout), and the
#    failed open's writer lock is released (the export, its server back,
#    serves another VM's guest).
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
		--gone "$W/acked-$1" >"$W/$1.out" 2>&1 &
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

# ---- an NBD server gone ---------------------------------------------------------------
if ! command -v nbdkit >/dev/null 2>&1 ||
   ! "$BACKD" --help | grep -q "targets:.*nbd"; then
	t_log "SKIP (part): nbdkit or pvio-backd's libnbd missing: the NBD case is not run"
	exit 0
fi
ctl create g3 >/dev/null || t_fail "create g3"
rm -f "$W/g3.sock"
nbdkit --foreground --exit-with-parent --unix "$W/g3.sock" memory 16M \
	>>"$W/nbd.log" 2>&1 &
NBD=$!
T_PIDS="$T_PIDS $NBD"
for _ in $(seq 100); do [ -S "$W/g3.sock" ] && break; sleep 0.05; done
ctl vbd-attach g3 "nbd+unix:///?socket=$W/g3.sock" >/dev/null || t_fail "attach g3"
load_on g3
C3=$LOAD
kill_restart "$W/stop-g3" 'kill $NBD; wait $NBD 2>/dev/null'
answered $C3 "$W/g3.out" g3
[ "$(t_states g3 51712)" = "Connected Connected" ] ||
	t_fail "g3's disk went through $(t_states g3 51712)"
check_absent g3 "cannot connect"
touch "$W/stop-g3"
wait $C3 || t_fail "g3 at its end: $(tail -2 "$W/g3.out")"
# the failed open took the export's writer lock: released, the export
# (its server back) attaches to another VM's guest
rm -f "$W/g3.sock"
nbdkit --foreground --exit-with-parent --unix "$W/g3.sock" memory 16M \
	>>"$W/nbd.log" 2>&1 &
T_PIDS="$T_PIDS $!"
for _ in $(seq 100); do [ -S "$W/g3.sock" ] && break; sleep 0.05; done
ctl create g4 >/dev/null || t_fail "create g4"
out=$(ctl vbd-attach g4 "nbd+unix:///?socket=$W/g3.sock" 2>&1) || t_fail "attach g4: $out"
"$PVIO_CTL" -w "$W" run g4 -- "$CLIENT" 51712 io 50 >"$W/g4.out" 2>&1 ||
	t_fail "g4 on the export g3's failed open held: $(tail -2 "$W/g4.out"); $(grep "vbd/[0-9]*/51712" "$W/backd.log" | tail -3)"
t_pass "NBD server gone at a restart: g3's requests answered once with an I/O error once its open failed, the disk still Connected; its writer lock released (the export served another guest)"
