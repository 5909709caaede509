#!/bin/bash
# SPDX-License-Identifier: MIT
# Nothing on pvio-backd's main thread waits on one device's remote peer
# (issue 11): opening an NBD target and a vif's OVSDB exchange run off the
# main thread (backend/ctlwork.c), the device "opening" meanwhile.
#  - an NBD server that accepts the connection but does not answer the
#    handshake (nbdkit's delay filter, delay-open): while that vbd opens,
#    pvio-ctl stats answers (showing it opening) and another guest's file
#    vbd reaches Connected and does verified I/O; then the hung vbd fails
#    with a clear error node after --remote-timeout;
#  - a vbd detached while its open hangs: detached at once, and pvio-backd's
#    fds and threads return to where they were once the open gives up;
#  - a frozen ovsdb-server (SIGSTOP): vifs being attached wait (opening),
#    stats answers and another guest's vbd does verified I/O meanwhile;
#    they fail after 3 s each with an error node; a vif detached while
#    its port is being added leaves no port behind once OVSDB is back;
#  - READY=1 (Type=notify) after a restart only once the re-attached NBD
#    disk, whose open is slow, is connected again;
#  - a directory the toolstack removes (xenstore-rm) while pvio-backd
#    writes what a slow open found does not come back, and the device goes
#    (the writes brought it back: feature nodes, a device kept);
#  - SIGTERM with an open in flight exits within the drain bound.
# Needs root (TAPs), nbdkit and Open vSwitch's ovsdb-server: SKIPs
# otherwise (tools/install-deps.sh installs them).
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" -eq 0 ] || t_skip "needs root (TAP devices)"
[ -c /dev/net/tun ] || t_skip "no /dev/net/tun"
for c in nbdkit ovsdb-tool ovsdb-server ovs-vsctl python3 xenstore-read; do
	command -v $c >/dev/null 2>&1 ||
		t_skip "$c not found (tools/install-deps.sh installs it)"
done
nbdkit --filter=delay null --help 2>/dev/null | grep -q delay-open ||
	t_skip "nbdkit has no delay filter with delay-open"
SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
[ -f $SCHEMA ] || t_skip "no $SCHEMA (openvswitch-common)"
"$BACKD" --help | grep -q "targets:.*nbd" ||
	t_skip "pvio-backd was built without libnbd (libnbd-dev)"
CLIENT="$B/tests/integration/t-blkclient"
BE=/local/domain/0/backend
TMO=15		# --remote-timeout: long against anything else here

t_world_up
O=$W/ovs
mkdir -p "$O" "$W/locks"

# a server per socket, in the foreground until its socket is there
start_nbd() {	# NAME nbdkit-args...
	local sock=$W/$1.sock
	shift
	rm -f "$sock"
	nbdkit --foreground --exit-with-parent --unix "$sock" "$@" \
		>>"$W/nbd.log" 2>&1 &
	T_PIDS="$T_PIDS $!"
	NBD_PID=$!
	for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.05; done
	t_fail "nbdkit did not start: $*"
}
# a server that takes the connection and does not answer for 10 minutes
start_nbd hang --filter=delay memory 64M delay-open=600
HANG="nbd+unix:///?socket=$W/hang.sock"

# ovsdb-server alone: pvio-backd only talks to the database
ovsdb-tool create "$O/conf.db" $SCHEMA || t_fail "ovsdb-tool create"
OVS_RUNDIR=$O OVS_LOGDIR=$O OVS_DBDIR=$O ovsdb-server "$O/conf.db" \
	--remote=punix:"$O/db.sock" --unixctl="$O/ovsdb-server.ctl" \
	--log-file="$O/ovsdb-server.log" -vconsole:off &
OVSDB=$!
T_PIDS="$T_PIDS $OVSDB"
T_EXTRA_CLEANUP='kill -CONT $OVSDB 2>/dev/null; kill $OVSDB 2>/dev/null'
for _ in $(seq 100); do [ -S "$O/db.sock" ] && break; sleep 0.05; done
vs() { ovs-vsctl --timeout=10 --no-wait --db=unix:"$O/db.sock" "$@"; }
vs init && vs add-br br-x || t_fail "ovsdb-server"

D1=$(ctl create g1) && ctl create g2 >/dev/null && D3=$(ctl create g3) &&
	D4=$(ctl create g4) && D5=$(ctl create g5) || t_fail "create"
t_backd_up --workers 1 --remote-timeout $TMO --lock-dir "$W/locks" \
	--ovsdb unix:"$O/db.sock"

# "yes" when DOM DEVID is opening, as pvio-ctl stats says, within 3 s
opening() {
	timeout 3 "$PVIO_CTL" -w "$W" stats "$1" "$2" --json 2>"$W/stats.err" |
		python3 -c '
import json, sys
d = json.load(sys.stdin)["devices"]
print("yes" if d and d[0].get("opening") else "no")' 2>>"$W/stats.err" ||
		echo "unanswered"
}
wait_opening() {	# DOM DEVID
	local o
	for _ in $(seq 40); do
		o=$(opening "$1" "$2")
		[ "$o" = yes ] && return 0
		[ "$o" = unanswered ] &&
			t_fail "pvio-ctl stats unanswered within 3 s while $1/$2 opens: $(cat "$W/stats.err")"
		sleep 0.05
	done
	t_fail "$1/$2 is not opening: $o"
}
err_node() { xenstore_read "$BE/$1/error"; }
xenstore_read() { ctl run 0 -- xenstore-read "$1" 2>/dev/null; }
wait_error() {	# KIND/DOM/DEVID SECONDS
	for _ in $(seq $(($2 * 20))); do
		err_node "$1" | grep -q . && return 0
		sleep 0.05
	done
	t_fail "no error node under $1 after $2 s"
}

# beside GUEST N DOM DEVID: while DOM/DEVID opens, GUEST's file disk
# (file-GUEST.img) reaches Connected and does N verified write+read; DOM/DEVID
# is still opening then
beside() {
	truncate -s 32M "$W/file-$1.img" || t_fail "truncate"
	ctl vbd-attach "$1" "$W/file-$1.img" --vdev xvda >/dev/null ||
		t_fail "attach $1 (while $3/$4 opens)"
	"$PVIO_CTL" -w "$W" run "$1" -- "$CLIENT" 51712 io "$2" >"$W/$1.out" 2>&1 ||
		t_fail "$1's I/O while $3/$4 opens: $(cat "$W/$1.out")"
	grep -q "OK $2 write+read" "$W/$1.out" || t_fail "$1: $(cat "$W/$1.out")"
	[ "$(opening "$3" "$4")" = yes ] ||
		t_fail "$3/$4 no longer opening when $1's I/O was done: $(opening "$3" "$4")"
}

# ---- an NBD server that never answers the handshake --------------------------------
t0=$(date +%s%N)
ctl vbd-attach g1 "$HANG" --vdev xvda --no-wait >/dev/null || t_fail "attach g1"
wait_opening g1 51712
beside g2 400 g1 51712
t_pass "NBD handshake hangs: stats answers (g1 opening), g2 connected and did 400 verified write+read meanwhile"
wait_error vbd/$D1/51712 $((TMO + 15))
t1=$(date +%s%N)
el=$(( (t1 - t0) / 1000000 ))
err=$(err_node vbd/$D1/51712)
echo "$err" | grep -q "no answer within $TMO s" || t_fail "g1's error node: '$err'"
[ $el -ge $(( (TMO - 1) * 1000 )) ] || t_fail "g1 failed after $el ms, before the timeout"
[ "$(t_states g1 51712 | cut -d' ' -f2)" = Closing ] ||
	t_fail "g1's device: $(t_states g1 51712)"
grep -q "opening $HANG" "$W/backd.log" || t_fail "no 'opening' logged"
t_pass "then it fails after $el ms (--remote-timeout $TMO): '$err'"
ctl vbd-detach g1 xvda >/dev/null || t_fail "detach g1"

# ---- detached while its open hangs: everything released ----------------------------
nfd() { ls /proc/"$BACKD_PID"/fd | wc -l; }
nth() { ls /proc/"$BACKD_PID"/task | wc -l; }
sleep 0.5
fd0=$(nfd) th0=$(nth)
ctl vbd-attach g3 "$HANG" --vdev xvdb --no-wait >/dev/null || t_fail "attach g3"
wait_opening g3 51728
[ "$(nth)" -gt "$th0" ] || t_fail "no thread of its own for the open ($(nth) threads, $th0 before)"
timeout 5 "$PVIO_CTL" -w "$W" vbd-detach g3 xvdb >/dev/null ||
	t_fail "vbd-detach while the open hangs: not done within 5 s"
xenstore_read "$BE/vbd/$D3/51728/state" >/dev/null && t_fail "g3's backend directory is still there"
grep -q "vbd/$D3/51728: removed while it was being set up" "$W/backd.log" ||
	t_fail "no 'removed while it was being set up' logged"
for _ in $(seq $(( (TMO + 10) * 10 ))); do
	[ "$(nfd)" -eq "$fd0" ] && [ "$(nth)" -eq "$th0" ] && break
	sleep 0.1
done
[ "$(nfd)" -eq "$fd0" ] || t_fail "fds: $fd0 before, $(nfd) after: $(ls -l /proc/$BACKD_PID/fd)"
[ "$(nth)" -eq "$th0" ] || t_fail "threads: $th0 before, $(nth) after"
kill -0 "$BACKD_PID" || t_fail "pvio-backd died"
t_pass "detached while its open hung: gone at once; fds $fd0 -> $(nfd), threads $th0 -> $(nth) once the open gave up"

# ---- a frozen ovsdb-server ------------------------------------------------------------
kill -STOP $OVSDB
for i in 0 1 2; do
	ctl vif-attach g4 --devid $i --bridge br-x --no-wait >/dev/null ||
		t_fail "vif-attach g4 $i"
done
wait_opening g4 2
beside g5 200 g4 2
t_pass "ovsdb-server frozen: stats answers (vifs opening), g5 connected and did 200 verified write+read meanwhile"
# one more, detached while its port is being added
ctl vif-attach g4 --devid 3 --bridge br-x --no-wait >/dev/null || t_fail "vif-attach g4 3"
wait_opening g4 3
timeout 5 "$PVIO_CTL" -w "$W" vif-detach g4 3 >/dev/null ||
	t_fail "vif-detach while OVSDB is frozen: not done within 5 s"
# the TAP goes when pvio-backd sees the directory gone, after pvio-ctl
# returned (xl's detach does not wait for it either)
for _ in $(seq 100); do
	ip link show vif$D4.3 >/dev/null 2>&1 || break
	sleep 0.05
done
ip link show vif$D4.3 >/dev/null 2>&1 && t_fail "vif$D4.3's TAP is still there 5 s after vif-detach"
for i in 0 1 2; do
	wait_error vif/$D4/$i 20
	err=$(err_node vif/$D4/$i)
	echo "$err" | grep -q "no answer in 3 s" || t_fail "vif $i's error node: '$err'"
done
kill -CONT $OVSDB
for _ in $(seq 100); do
	vs list-ports br-x | grep -q "vif$D4.3" || break
	sleep 0.1
done
vs list-ports br-x | grep -q "vif$D4.3" &&
	t_fail "vif$D4.3, detached while it was added, is still a port: $(vs list-ports br-x)"
for i in 0 1 2; do ctl vif-detach g4 $i >/dev/null 2>&1; done
for _ in $(seq 100); do
	vs list-ports br-x | grep -q . || break
	sleep 0.1
done
vs list-ports br-x | grep -q . && t_fail "ports left: $(vs list-ports br-x)"
ip link show | grep -q "vif$D4\." && t_fail "TAPs left: $(ip -br link show | grep vif)"
t_pass "then each vif fails after 3 s ('$err'); the one detached meanwhile leaves no port, no TAP"

# ---- a restart: READY=1 once the slow NBD disk is re-attached ---------------------------
start_nbd slow --filter=delay memory 64M delay-open=3
ctl vbd-attach g5 "nbd+unix:///?socket=$W/slow.sock" --vdev xvdb >/dev/null ||
	t_fail "attach g5 xvdb (slow open)"
"$PVIO_CTL" -w "$W" run g5 -- "$CLIENT" 51728 connect >"$W/hold" 2>&1 &
HOLD=$!
T_PIDS="$T_PIDS $HOLD"
t_wait_states g5 51728 "Connected Connected" 20
t_notify_listen "$W/notify.sock" "$W/notify.log"
t_backd_down
NOTIFY_SOCKET="$W/notify.sock" t_backd_up --workers 1 --remote-timeout $TMO \
	--lock-dir "$W/locks" --ovsdb unix:"$O/db.sock"
# the startup line is logged before the slow open is done
wait $T_NOTIFY_PID || t_fail "no READY=1: $(cat "$W/notify.log")"
[ "$(grep -c "vbd/.*/51728: re-attached" "$W/backd.log")" -ge 1 ] ||
	t_fail "READY=1 before g5's xvdb was re-attached: $(tail -5 "$W/backd.log")"
[ "$(t_states g5 51728)" = "Connected Connected" ] || t_fail "states $(t_states g5 51728)"
"$PVIO_CTL" -w "$W" run g5 -- "$CLIENT" 51712 io 50 >"$W/g5b.out" 2>&1 ||
	t_fail "g5's file disk after the restart: $(cat "$W/g5b.out")"
kill $HOLD 2>/dev/null
t_pass "restart: READY=1 only once the NBD disk (3 s to open) was re-attached"

# ---- removed while what the open found is offered ----------------------------------------
# The toolstack removes the directory (xenstore-rm, no Closing handshake)
# while pvio-backd writes what the open found: the world's xenstore is
# held (SIGSTOP) from before the open ends until the removal is queued
# beside pvio-backd's first write. Those writes brought the directory back
# (xenstored makes the missing parents): feature nodes and a state of
# Closed, a device pvio-backd kept, and its target open.
start_nbd gone --filter=delay memory 64M delay-open=2
ctl vbd-attach g5 "nbd+unix:///?socket=$W/gone.sock" --vdev xvdc --no-wait \
	>/dev/null || t_fail "attach g5 xvdc"
wait_opening g5 51744
HV=$(cat "$W/simhv.pid")
T_EXTRA_CLEANUP="kill -CONT $HV 2>/dev/null; $T_EXTRA_CLEANUP"
kill -STOP "$HV"
XENSTORED_PATH="$W/xs/dom0.sock" xenstore-rm "$BE/vbd/$D5/51744" &
RM=$!
sleep 3		# the open (2 s) is over: its offer waits for xenstore
kill -CONT "$HV"
wait $RM || t_fail "xenstore-rm the backend directory"
for _ in $(seq 40); do
	"$PVIO_CTL" -w "$W" stats g5 51744 --json 2>/dev/null | grep -q '"devid"' || break
	sleep 0.05
done
sleep 1		# anything still to come would have come
XENSTORED_PATH="$W/xs/dom0.sock" xenstore-exists "$BE/vbd/$D5/51744" &&
	t_fail "the removed directory is back: $(XENSTORED_PATH="$W/xs/dom0.sock" xenstore-ls "$BE/vbd/$D5/51744" | tr '\n' ' ')"
"$PVIO_CTL" -w "$W" stats g5 51744 --json 2>/dev/null | grep -q '"devid"' &&
	t_fail "pvio-backd still has the removed device"
t_pass "removed while its open's result was being offered: nothing written back, the device gone"

# ---- SIGTERM with an open in flight ------------------------------------------------------
ctl vbd-attach g1 "$HANG" --vdev xvdc --no-wait >/dev/null || t_fail "attach g1 xvdc"
wait_opening g1 51744
t0=$(date +%s%N)
kill -TERM "$BACKD_PID"
for _ in $(seq 100); do kill -0 "$BACKD_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$BACKD_PID" 2>/dev/null && t_fail "pvio-backd did not exit within 5 s of SIGTERM with an open in flight"
wait "$BACKD_PID" 2>/dev/null
rc=$?
el=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc -eq 0 ] || t_fail "pvio-backd exited with $rc"
grep -q "abandoned, waiting on an unresponsive peer" "$W/backd.log" ||
	t_fail "the abandoned open is not logged"
t_pass "SIGTERM with an open hung: exit 0 in $el ms"
