#!/bin/bash
# SPDX-License-Identifier: MIT
# A vif across pvio-backd crashes (docs/architecture.md, "Crash recovery"):
# a routed vif (dom0's address on the TAP, as tools/demo.sh sets it up) and
# a guest running pvio-netfront in its own namespace; TCP transfers both
# ways while pvio-backd is killed with SIGKILL and restarted, three times
# each way, then aborts itself between writing a response and counting it
# (PVIO_FAULT): the TAP keeps its address, the connections survive (a frame
# lost at a kill is sent again by TCP), the checksums match, the guest's
# rings are neither leaked nor answered twice (pvio-netfront checks every
# response), and the frontend never sees a state change.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || t_skip "needs root (namespaces, TAP devices)"
[ -c /dev/net/tun ] || t_skip "no /dev/net/tun"
for c in ip nc sha256sum ss; do
	command -v $c >/dev/null || t_skip "$c is not installed"
done
NF="$B/pvio-netfront"
NS=pvio-nc-$$
D1=61		# TAP names are host-wide: a domid of our own
# pvio-backd keeps a vif's TAP when it stops (a restart finds it): the
# test's own go with it
T_EXTRA_CLEANUP="ip netns del $NS 2>/dev/null; ip link del vif$D1.0 2>/dev/null; ip link del vif$D1.1 2>/dev/null"

ip link del vif$D1.0 2>/dev/null	# a run killed before its cleanup
t_world_up
ctl create g1 --domid $D1 >/dev/null || t_fail "create"
ctl vif-attach g1 >/dev/null || t_fail "vif-attach"
t_backd_up
ip netns add "$NS" || t_skip "cannot create a network namespace"
for _ in $(seq 100); do ip link show vif$D1.0 >/dev/null 2>&1 && break; sleep 0.05; done
ip addr add 10.93.0.1/24 dev vif$D1.0 || t_fail "no vif$D1.0"
ip netns exec "$NS" "$PVIO_CTL" -w "$W" run g1 -- "$NF" --devid 0 --ifname eth0 \
	>>"$W/nf.log" 2>&1 &
NFPID=$!
T_PIDS="$T_PIDS $NFPID"
for _ in $(seq 200); do ip netns exec "$NS" ip link show eth0 >/dev/null 2>&1 && break; sleep 0.05; done
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip addr add 10.93.0.2/24 dev eth0 || t_fail "no eth0: $(cat "$W/nf.log")"
ip netns exec "$NS" ip link set eth0 up
t_wait_states g1 0 "Connected Connected"
for _ in $(seq 100); do
	ip netns exec "$NS" ping -c 1 -W 1 10.93.0.1 >/dev/null 2>&1 && break; sleep 0.1
done

reaped() { T_PIDS=${T_PIDS/ $BACKD_PID/}; }

# receiver namespace ("" for dom0), sender namespace, address, size, kills,
# and a fault point (PVIO_FAULT) at which a last pvio-backd aborts itself
xfer_killed() {
	local rns=$1 sns=$2 addr=$3 size=$4 kills=$5 fault=$6
	local port=$((20000 + RANDOM % 20000))
	local k=0 lpid spid
	head -c "$size" /dev/urandom >"$W/send.bin"
	if [ -n "$rns" ]; then
		ip netns exec "$rns" nc -4 -d -l -p $port >"$W/recv.bin" 2>/dev/null &
	else
		nc -4 -d -l -p $port >"$W/recv.bin" 2>/dev/null &
	fi
	lpid=$!
	t_wait_listen "$rns" $port
	# slow enough that the kills land in the middle: 4 MiB/s
	if [ -n "$sns" ]; then
		ip netns exec "$sns" bash -c "python3 -c '
import sys, time
f = open(sys.argv[1], \"rb\")
while True:
    b = f.read(65536)
    if not b: break
    sys.stdout.buffer.write(b); sys.stdout.flush(); time.sleep(1 / 64)
' '$W/send.bin' | timeout 120 nc -q 1 -w 30 $addr $port" &
	else
		python3 -c '
import sys, time
f = open(sys.argv[1], "rb")
while True:
    b = f.read(65536)
    if not b: break
    sys.stdout.buffer.write(b); sys.stdout.flush(); time.sleep(1 / 64)
' "$W/send.bin" | timeout 120 nc -q 1 -w 30 "$addr" $port &
	fi
	spid=$!
	while [ $k -lt "$kills" ]; do
		sleep "0.$(( (RANDOM % 50) + 30 ))"
		kill -0 $spid 2>/dev/null || t_fail "the transfer ended before kill $((k + 1))"
		kill -KILL "$BACKD_PID"; wait "$BACKD_PID" 2>/dev/null; reaped
		[ "$(t_states g1 0)" = "Connected Connected" ] ||
			t_fail "kill $k: states $(t_states g1 0)"
		ip -4 addr show dev vif$D1.0 | grep -q 10.93.0.1/24 ||
			t_fail "vif$D1.0 lost its address at a kill"
		t_backd_up
		k=$((k + 1))
	done
	# a response written into its slot, not yet counted: abort there
	kill -TERM "$BACKD_PID"; wait "$BACKD_PID" 2>/dev/null; reaped
	PVIO_FAULT=$fault t_backd_up
	for _ in $(seq 200); do kill -0 "$BACKD_PID" 2>/dev/null || break; sleep 0.05; done
	kill -0 "$BACKD_PID" 2>/dev/null && t_fail "the fault point $fault was not hit"
	wait "$BACKD_PID" 2>/dev/null
	[ $? -eq 134 ] || t_fail "pvio-backd did not abort at $fault"
	reaped
	t_backd_up
	wait $spid || t_fail "the sender failed ($(stat -c %s "$W/recv.bin") of $size bytes arrived)"
	for _ in $(seq 100); do kill -0 $lpid 2>/dev/null || break; sleep 0.1; done
	kill $lpid 2>/dev/null
	[ "$(sha256sum <"$W/send.bin")" = "$(sha256sum <"$W/recv.bin")" ] ||
		t_fail "checksums differ ($(stat -c %s "$W/recv.bin") of $size bytes)"
}

xfer_killed "" "$NS" 10.93.0.1 16M 3 net-tx-respond:300
t_pass "TCP guest -> dom0 across 3 SIGKILLs of pvio-backd and an abort amid a tx response: checksums match"
# inside a multi-slot frame (a response with more_data): its first slots
# must not reach the guest joined to the next frame
xfer_killed "$NS" "" 10.93.0.2 16M 3 net-rx-respond-mid:100
t_pass "TCP dom0 -> guest across 3 SIGKILLs of pvio-backd and an abort inside an rx frame: checksums match"
grep -q "in-flight record kept" "$W/backd.log" || t_fail "no in-flight record was used"
kill -0 $NFPID || t_fail "pvio-netfront died: $(tail -5 "$W/nf.log")"
grep -qi "fail\|error" "$W/nf.log" && t_fail "pvio-netfront: $(grep -i "fail\|error" "$W/nf.log" | head -3)"
t_log "$(grep -c 'in-flight record kept' "$W/backd.log") rings resumed from a record"

# A vif with a hotplug script (as xl's vif line): the script's answer is in
# xenstore when a restarted pvio-backd probes the device, so the probe
# re-attaches it at once. The scan that created the device then attached
# the same rings a second time, which failed and wrote Closing: Linux's
# netfront never comes back from that (found on real Xen by the lab's
# net-linuxfront-kill). After a SIGKILL and after a SIGTERM restart.
export XENSTORED_PATH="$W/xs/dom0.sock"
cat >"$W/vif-up" <<'SH'
#!/bin/sh
ip link set "$vif" up && xenstore-write "$XENBUS_PATH/hotplug-status" connected
SH
chmod 755 "$W/vif-up"
ctl vif-attach g1 --devid 1 --script "$W/vif-up" >/dev/null 2>"$W/err" ||
	t_fail "vif-attach --script: $(cat "$W/err")"
ip netns exec "$NS" "$PVIO_CTL" -w "$W" run g1 -- "$NF" --devid 1 --ifname eth1 \
	>>"$W/nf1.log" 2>&1 &
T_PIDS="$T_PIDS $!"
t_wait_states g1 1 "Connected Connected"
for sig in KILL TERM; do
	n=$(grep -c "vif/$D1/1: re-attached" "$W/backd.log")
	kill -$sig "$BACKD_PID"; wait "$BACKD_PID" 2>/dev/null; reaped
	t_backd_up
	for _ in $(seq 100); do
		[ "$(grep -c "vif/$D1/1: re-attached" "$W/backd.log")" -gt "$n" ] && break
		sleep 0.05
	done
	[ "$(grep -c "vif/$D1/1: re-attached" "$W/backd.log")" -gt "$n" ] ||
		t_fail "SIG$sig: the scripted vif was not re-attached"
	sleep 0.3
	grep "vif/$D1/1: cannot re-attach" "$W/backd.log" &&
		t_fail "SIG$sig: the scripted vif was attached twice"
	[ "$(t_states g1 1)" = "Connected Connected" ] ||
		t_fail "SIG$sig: the scripted vif's states: $(t_states g1 1)"
done
t_pass "a vif with a hotplug script across SIGKILL and SIGTERM restarts: re-attached once, still Connected"
t_backd_down
exit 0
