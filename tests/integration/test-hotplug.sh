#!/bin/bash
# SPDX-License-Identifier: MIT
# pvio-backd as an xl operator uses it, in a sim world (pvio-ctl runs the
# hotplug scripts, as libxl does with run_hotplug_scripts=1):
#  - image exclusivity: three attaches of one file by two guests; the
#    conflicting ones fail with an error node and a log line, the first
#    device keeps working;
#  - xl's options: direct-io-safe (absent: no O_DIRECT), discard-enable,
#    access (mode), params formats, mtu, mac, vifname, ip; each bad or
#    unsupported value fails its device with an error node;
#  - the hotplug protocol: a script that never answers (the device fails
#    after --hotplug-timeout), one that writes hotplug-error, one that
#    answers late (vbd on a loop device, a frontend already waiting; vif
#    whose TAP exists before the script runs);
#  - --kinds vbd3: only that kind is served.
. "$(dirname "$0")/lib.sh"
CLIENT="$B/tests/integration/t-blkclient"
command -v xenstore-write >/dev/null || t_skip "xenstore-utils not installed"
command -v python3 >/dev/null || t_skip "no python3"
root=0
[ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && root=1

t_world_up
ctl create g1 >/dev/null && ctl create g2 >/dev/null || t_fail "create"
export XENSTORED_PATH="$W/xs/dom0.sock"
BE=/local/domain/0/backend
run() { "$PVIO_CTL" -w "$W" run "$1" -- "$CLIENT" "${@:2}"; }
jget() {	# DOMID DEVID FIELD: from stats --json
	ctl stats --json | python3 -c 'import json, sys
d = [x for x in json.load(sys.stdin)["devices"]
     if x["domid"] == int(sys.argv[1]) and x["devid"] == int(sys.argv[2])]
print(json.dumps(d[0].get(sys.argv[3])) if d else "missing")' "$@"
}

# ---- xl's options, written before pvio-backd starts -------------------------------
truncate -s 16M "$W/o1.img" "$W/o2.img" "$W/o3.img" "$W/o4.img" "$W/o5.img"
ctl vbd-attach g1 "$W/o1.img" --vdev xvdb >/dev/null || t_fail "attach o1"
ctl vbd-attach g1 "$W/o2.img" --vdev xvdc >/dev/null || t_fail "attach o2"
xenstore-rm $BE/vbd/1/51744/direct-io-safe || t_fail "rm direct-io-safe"
ctl vbd-attach g1 "$W/o3.img" --vdev xvdd --no-discard >/dev/null || t_fail "attach o3"
ctl vbd-attach g1 "$W/o4.img" --vdev xvde >/dev/null || t_fail "attach o4"
xenstore-write $BE/vbd/1/51776/mode 'w!' || t_fail "write mode"
ctl vbd-attach g1 "$W/o5.img" --vdev xvdf >/dev/null || t_fail "attach o5"
xenstore-write $BE/vbd/1/51792/params "qcow2:$W/o5.img" || t_fail "write params"
if [ $root = 1 ]; then
	VN=pvt$$
	# the vifs' TAPs outlive a stopped pvio-backd (persistent): ours to
	# remove
	T_EXTRA_CLEANUP='for t in "$VN" vif2.4 vif2.5 vif2.6 vif2.7; do ip link del "$t" 2>/dev/null; done'
	ctl vif-attach g1 --devid 1 --mtu 1400 --vifname "$VN" --ip 10.1.2.3 \
		>/dev/null || t_fail "vif-attach mtu/vifname"
	ctl vif-attach g1 --devid 2 >/dev/null || t_fail "vif-attach 2"
	xenstore-write $BE/vif/1/2/mac 01:00:5e:00:00:01 || t_fail "write mac"
	ctl vif-attach g1 --devid 3 >/dev/null || t_fail "vif-attach 3"
	xenstore-write $BE/vif/1/3/mtu 99999 || t_fail "write mtu"
fi
t_backd_up --hotplug-timeout 2
t_wait_states g1 51728 "Initialising InitWait"
t_wait_states g1 51744 "Initialising InitWait"
t_wait_states g1 51760 "Initialising InitWait"
[ "$(jget 1 51728 o_direct)" = true ] || t_fail "direct-io-safe=1: no O_DIRECT"
[ "$(jget 1 51744 o_direct)" = false ] ||
	t_fail "direct-io-safe absent: O_DIRECT used (xl-disk-configuration(5): not safe)"
[ "$(xenstore-read $BE/vbd/1/51760/feature-discard)" = 0 ] ||
	t_fail "discard-enable=0: feature-discard offered"
[ "$(xenstore-read $BE/vbd/1/51728/feature-discard)" = 1 ] ||
	t_fail "discard-enable absent: no feature-discard"
t_wait_states g1 51776 "Initialising Closing"
xenstore-read $BE/vbd/1/51776/error | grep -q "mode 'w!' not supported" ||
	t_fail "mode w!: error node '$(xenstore-read $BE/vbd/1/51776/error)'"
t_wait_states g1 51792 "Initialising Closing"
xenstore-read $BE/vbd/1/51792/error | grep -q "format 'qcow2' not supported" ||
	t_fail "qcow2: error node '$(xenstore-read $BE/vbd/1/51792/error)'"
grep -q "51792.*qcow2" "$W/backd.log" || t_fail "qcow2 refusal not logged"
run g1 51728 io 50 >"$W/out" || t_fail "io on xvdb: $(cat "$W/out")"
if [ $root = 1 ]; then
	t_wait_states g1 1 "Initialising InitWait"
	[ "$(cat /sys/class/net/$VN/mtu 2>/dev/null)" = 1400 ] ||
		t_fail "vifname $VN with mtu 1400: $(ip link show $VN 2>&1)"
	[ "$(xenstore-read $BE/vif/1/1/ip)" = 10.1.2.3 ] || t_fail "ip not written"
	t_wait_states g1 2 "Initialising Closing"
	xenstore-read $BE/vif/1/2/error | grep -q "bad mac" || t_fail "multicast mac accepted"
	t_wait_states g1 3 "Initialising Closing"
	xenstore-read $BE/vif/1/3/error | grep -q "bad mtu" || t_fail "mtu 99999 accepted"
	ip link show vif1.2 >/dev/null 2>&1 && t_fail "a failed vif left its TAP"
fi
t_pass "xl's options: direct-io-safe, discard-enable, mode, params format, mtu, vifname, ip, mac (bad ones: error node)"

# ---- image exclusivity: three attaches of one file by two guests -------------------
truncate -s 32M "$W/shared.img"
ctl vbd-attach g1 "$W/shared.img" --vdev xvdg >/dev/null 2>"$W/err" ||
	t_fail "first attach: $(cat "$W/err")"
run g1 51808 io 20 >"$W/out" || t_fail "io on the first: $(cat "$W/out")"
"$PVIO_CTL" -w "$W" run g1 -- "$CLIENT" 51808 connect >"$W/busy" 2>&1 &
BUSY=$!
T_PIDS="$T_PIDS $BUSY"
t_wait_states g1 51808 "Connected Connected"
ctl vbd-attach g2 "$W/shared.img" --vdev xvda >/dev/null 2>"$W/err"
[ $? -eq 1 ] || t_fail "a second read-write attach succeeded"
grep -q "in use" "$W/err" || t_fail "second attach: '$(cat "$W/err")'"
ctl vbd-attach g2 "$W/shared.img" --vdev xvdb --mode r >/dev/null 2>"$W/err"
[ $? -eq 1 ] || t_fail "a read-only attach of a file in read-write use succeeded"
grep -q "in use" "$W/err" || t_fail "read-only attach: '$(cat "$W/err")'"
xenstore-read $BE/vbd/2/51712/error | grep -q "in use" || t_fail "no error node"
[ "$(grep -c "shared.img is in use" "$W/backd.log")" -ge 2 ] || t_fail "conflicts not logged"
[ "$(t_states g1 51808)" = "Connected Connected" ] ||
	t_fail "the first device was disturbed: $(t_states g1 51808)"
kill -9 $BUSY 2>/dev/null; wait $BUSY 2>/dev/null
for _ in $(seq 60); do
	[ "$(t_states g1 51808 | cut -d' ' -f2)" = Closing ] && break; sleep 0.05
done
ctl vbd-detach g2 xvda; ctl vbd-detach g2 xvdb
run g1 51808 io 50 >"$W/out" || t_fail "the first device after the conflicts: $(cat "$W/out")"
truncate -s 8M "$W/ro.img"
ctl vbd-attach g1 "$W/ro.img" --vdev xvdh --mode r >/dev/null 2>"$W/err" || t_fail "ro 1: $(cat "$W/err")"
ctl vbd-attach g2 "$W/ro.img" --vdev xvdc --mode r >/dev/null 2>"$W/err" || t_fail "ro 2 (shared): $(cat "$W/err")"
ctl vbd-attach g2 "$W/ro.img" --vdev xvdd >/dev/null 2>&1 && t_fail "read-write over two readers"
# xl migrate localhost: the new domain of the same VM opens the image
# while the old one still has it
ctl create g3 >/dev/null || t_fail "create g3"
xenstore-write /local/domain/1/vm /vm/uuid-1 /local/domain/3/vm /vm/uuid-1 || t_fail "vm"
ctl vbd-attach g3 "$W/shared.img" --vdev xvda >/dev/null 2>"$W/err" ||
	t_fail "the same VM's new domain (migration) was refused: $(cat "$W/err")"
grep -q "of the same VM (migration): shared" "$W/backd.log" || t_fail "same-VM sharing not logged"
ctl vbd-detach g3 xvda
t_pass "image locks: rw exclusive, ro shared; conflicts fail with an error node and a log line; the first device works on; the same VM's next domain (migration) shares"

# ---- the hotplug protocol ------------------------------------------------------------
mkdir -p "$W/scripts"
cat >"$W/scripts/never" <<'SH'
#!/bin/sh
exit 0
SH
cat >"$W/scripts/error" <<'SH'
#!/bin/sh
xenstore-write "$XENBUS_PATH/hotplug-error" "cannot find the volume (test)"
exit 1
SH
cat >"$W/scripts/late-block" <<'SH'
#!/bin/sh
# as the stock block script: a loop device for the file, its major:minor
p=$(xenstore-read "$XENBUS_PATH/params") || exit 1
( sleep 1
  l=$(losetup -f --show "$p") || { xenstore-write "$XENBUS_PATH/hotplug-error" "losetup failed"; exit 1; }
  echo "$l" >"$p.loop"
  xenstore-write "$XENBUS_PATH/physical-device" "$(stat -L -c '%t:%T' "$l")" \
	"$XENBUS_PATH/hotplug-status" connected ) >/dev/null 2>&1 &
exit 0
SH
cat >"$W/scripts/late-vif" <<'SH'
#!/bin/sh
# as vif-bridge: the TAP must exist already; up, then connected
ip link show "$vif" >/dev/null 2>&1 && echo exists >"$XSDIR/vif-existed"
xenstore-read "$XENBUS_PATH/ip" >"$XSDIR/vif-ip" 2>/dev/null
( sleep 1; ip link set "$vif" up && xenstore-write "$XENBUS_PATH/hotplug-status" connected ) \
	>/dev/null 2>&1 &
exit 0
SH
cat >"$W/scripts/record" <<'SH'
#!/bin/sh
# as the stock block and vif-bridge scripts, and each call recorded with
# the backend's state when it ran; "offline" fails while $XSDIR/fail exists
echo "$* state=$(xenstore-read "$XENBUS_PATH/state" 2>/dev/null || echo gone) vif=${vif:-}" \
	>>"$XSDIR/record.log"
case $1 in
add)
	p=$(xenstore-read "$XENBUS_PATH/params") || exit 1
	l=$(losetup -f --show "$p") || exit 1
	xenstore-write "$XENBUS_PATH/node" "$l" \
		"$XENBUS_PATH/physical-device" "$(stat -L -c '%t:%T' "$l")" \
		"$XENBUS_PATH/hotplug-status" connected ;;
remove)
	l=$(xenstore-read "$XENBUS_PATH/node") && losetup -d "$l" ;;
online)
	ip link set "$vif" up && xenstore-write "$XENBUS_PATH/hotplug-status" connected ;;
offline)
	[ ! -e "$XSDIR/fail" ] || exit 3
	ip link set "$vif" down ;;
esac
SH
chmod 755 "$W"/scripts/*
export XSDIR="$W"
truncate -s 8M "$W/h.img"
t0=$(date +%s)
ctl vbd-attach g2 "$W/h.img" --vdev xvde --script "$W/scripts/never" --timeout 10 \
	>/dev/null 2>"$W/err"
[ $? -eq 1 ] || t_fail "a script that never answers: not a failure"
grep -q "did not answer in 2 s" "$W/err" || t_fail "never: '$(cat "$W/err")'"
xenstore-read $BE/vbd/2/51776/error | grep -q "did not answer" || t_fail "never: no error node"
[ $(($(date +%s) - t0)) -le 8 ] || t_fail "never: took $(($(date +%s) - t0)) s"
ctl vbd-attach g2 "$W/h.img" --vdev xvdf --script "$W/scripts/error" >/dev/null 2>"$W/err"
[ $? -eq 1 ] || t_fail "hotplug-error: not a failure"
grep -q "cannot find the volume" "$W/err" || t_fail "hotplug-error: '$(cat "$W/err")'"
t_wait_states g2 51792 "Initialising Closing"
xenstore-read $BE/vbd/2/51792/error | grep -q "cannot find the volume" ||
	t_fail "hotplug-error: error node '$(xenstore-read $BE/vbd/2/51792/error)'"
if losetup -f >/dev/null 2>&1; then
	truncate -s 16M "$W/l.img"
	ctl vbd-attach g2 "$W/l.img" --vdev xvdg --script "$W/scripts/late-block" \
		>"$W/attach.out" 2>"$W/attach.err" &
	AP=$!
	t_wait_states g2 51808 "Initialising InitWait"
	# the frontend comes before the script's answer: it waits, then connects
	run g2 51808 io 200 >"$W/out" 2>&1 &
	IOP=$!
	wait $AP || t_fail "late-block attach: $(cat "$W/attach.err")"
	wait $IOP || t_fail "io on the script's loop device: $(cat "$W/out")"
	grep -q "frontend waits for the hotplug script" "$W/backd.log" ||
		t_fail "the frontend did not wait for the script"
	grep -q "physical-device .* is /dev/" "$W/backd.log" || t_fail "physical-device not opened"
	[ "$(jget 2 51808 target)" = "\"$(cat "$W/l.img.loop")\"" ] ||
		t_fail "target $(jget 2 51808 target), want $(cat "$W/l.img.loop")"
	ctl vbd-detach g2 xvdg
	losetup -d "$(cat "$W/l.img.loop")"
	# vbd-detach runs the script's remove step as libxl does: once the
	# backend is Closed, before its directory goes (the script reads node)
	truncate -s 8M "$W/r.img"
	ctl vbd-attach g2 "$W/r.img" --vdev xvdk --script "$W/scripts/record" \
		>/dev/null 2>"$W/err" || t_fail "record attach: $(cat "$W/err")"
	run g2 51872 io 20 >"$W/out" || t_fail "io on the record script's disk: $(cat "$W/out")"
	ctl vbd-detach g2 xvdk 2>"$W/err" || t_fail "record detach: $(cat "$W/err")"
	grep -q '^remove state=6 vif=$' "$W/record.log" ||
		t_fail "vbd-detach: the script's remove step did not run with the backend Closed: $(cat "$W/record.log")"
	for _ in $(seq 100); do
		[ -z "$(losetup -j "$W/r.img")" ] && break; sleep 0.05
	done
	[ -z "$(losetup -j "$W/r.img")" ] || t_fail "vbd-detach left the script's loop device: $(losetup -j "$W/r.img")"
	xenstore-exists $BE/vbd/2/51872 && t_fail "vbd-detach left the backend directory"
	t_pass "hotplug (vbd): never answers -> fails after the timeout; hotplug-error -> fails; late answer -> a waiting frontend connects to the loop device; vbd-detach runs the script's remove step (Closed, before the directory goes)"
else
	t_log "SKIP: no loop devices here: the late vbd script is not tried"
	t_pass "hotplug (vbd): never answers -> fails after the timeout; hotplug-error -> fails"
fi
if [ $root = 1 ]; then
	ctl vif-attach g2 --devid 4 --ip 10.9.9.9 --script "$W/scripts/late-vif" \
		>/dev/null 2>"$W/err" || t_fail "late vif: $(cat "$W/err")"
	[ -f "$W/vif-existed" ] || t_fail "the TAP did not exist when the script ran"
	[ "$(cat "$W/vif-ip")" = 10.9.9.9 ] || t_fail "the script did not see ip"
	[ "$(xenstore-read $BE/vif/2/4/hotplug-status)" = connected ] || t_fail "hotplug-status"
	[ -z "$(cat /sys/class/net/vif2.4/master/ifindex 2>/dev/null)" ] ||
		t_fail "pvio-backd bridged a vif that has a script"
	ctl vif-attach g2 --devid 5 --script "$W/scripts/error" >/dev/null 2>"$W/err"
	[ $? -eq 1 ] || t_fail "vif hotplug-error: not a failure"
	t_wait_states g2 5 "Initialising Closing"
	# vif-detach: the script's offline step, as libxl runs it
	rm -f "$W/record.log"
	ctl vif-attach g2 --devid 6 --script "$W/scripts/record" >/dev/null 2>"$W/err" ||
		t_fail "record vif: $(cat "$W/err")"
	ctl vif-detach g2 6 2>"$W/err" || t_fail "record vif detach: $(cat "$W/err")"
	[ "$(cat "$W/record.log")" = "online type_if=vif state=2 vif=vif2.6
offline type_if=vif state=6 vif=vif2.6" ] ||
		t_fail "vif-detach: the script's calls: $(cat "$W/record.log")"
	# a failing offline step: exit 1, said, and the device gone anyway
	ctl vif-attach g2 --devid 7 --script "$W/scripts/record" >/dev/null 2>"$W/err" ||
		t_fail "record vif 7: $(cat "$W/err")"
	touch "$W/fail"
	ctl vif-detach g2 7 2>"$W/err"
	[ $? -eq 1 ] || t_fail "a failed offline step: not a failure"
	rm -f "$W/fail"
	grep -q "record offline: exit status 3; removed anyway" "$W/err" ||
		t_fail "failed offline: '$(cat "$W/err")'"
	xenstore-exists $BE/vif/2/7 && t_fail "a failed offline step left the backend directory"
	t_pass "hotplug (vif): TAP before the script, connected only after hotplug-status; hotplug-error fails it; vif-detach runs the script's offline step (Closed, type_if=vif), a failing one exits 1 and the device goes"
fi
kill -0 "$BACKD_PID" || t_fail "pvio-backd died"

# ---- a device waiting for its lock holds nothing to share ---------------------------
# pvio-backd restarts while another program holds the lock of g1's image
# (a killed pvio-backd's io_uring still finishing, say): the re-attach
# waits for it. The same VM's next domain (a migration: g3, same vm node
# as g1 above) attaching the image meanwhile must not share it with the
# waiting device, which holds no lock: refused as in use.
truncate -s 8M "$W/mig.img"
ctl vbd-attach g1 "$W/mig.img" --vdev xvdm >/dev/null 2>"$W/err" ||
	t_fail "attach mig.img: $(cat "$W/err")"
"$PVIO_CTL" -w "$W" run g1 -- "$CLIENT" 51904 connect >"$W/mighold" 2>&1 &
MH=$!
T_PIDS="$T_PIDS $MH"
t_wait_states g1 51904 "Connected Connected"
t_backd_down
python3 - "$W/mig.img" "$W/mig.locked" <<'PYEOF' &
import fcntl, os, struct, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
# F_OFD_SETLK (37): a write lock on the whole file, as another program's
fcntl.fcntl(fd, 37, struct.pack('hhxxxxqqixxxx', fcntl.F_WRLCK, 0, 0, 0, 0))
open(sys.argv[2], 'w').close()
while os.path.exists(sys.argv[2]):
	time.sleep(0.05)
PYEOF
LP=$!
T_PIDS="$T_PIDS $LP"
for _ in $(seq 100); do [ -e "$W/mig.locked" ] && break; sleep 0.05; done
[ -e "$W/mig.locked" ] || t_fail "the other program did not take the lock"
t_backd_up --hotplug-timeout 2
t_wait_log "vbd/1/51904: .*mig.img is locked: waiting" ||
	t_fail "the re-attach did not wait for the lock: $(grep "vbd/1/51904" "$W/backd.log" | tail -2)"
ctl vbd-attach g3 "$W/mig.img" --vdev xvdb --timeout 5 >/dev/null 2>"$W/err"
rc=$?
grep -q "mig.img is also domain 1's" "$W/backd.log" &&
	t_fail "the same VM's next domain shared the image with a device that waits for its lock"
[ $rc -eq 1 ] && grep -q "in use" "$W/err" ||
	t_fail "the same VM's next domain, the lock held elsewhere: exit $rc, '$(cat "$W/err")'"
rm -f "$W/mig.locked"
wait $LP
t_wait_log "vbd/1/51904: re-attached" 12 ||
	t_fail "g1's xvdm did not re-attach once the lock was free: $(grep "vbd/1/51904" "$W/backd.log" | tail -2)"
[ "$(t_states g1 51904)" = "Connected Connected" ] || t_fail "g1 xvdm: states $(t_states g1 51904)"
kill $MH 2>/dev/null
ctl vbd-detach g3 xvdb >/dev/null 2>&1
t_pass "a re-attach waiting for a lock another program holds: the same VM's next domain is refused, not shared with it; the re-attach follows the lock"

# ---- --kinds vbd3: that kind only ------------------------------------------------------
t_backd_down
t_backd_up --kinds vbd3
truncate -s 8M "$W/k3.img" "$W/k1.img"
ctl vbd-attach g2 "$W/k3.img" --vdev xvdh --backend-type vbd3 >/dev/null 2>"$W/err" ||
	t_fail "vbd3 attach: $(cat "$W/err")"
run g2 51824 io 50 >"$W/out" || t_fail "io on vbd3: $(cat "$W/out")"
ctl vbd-attach g2 "$W/k1.img" --vdev xvdi --timeout 2 >/dev/null 2>"$W/err"
[ $? -eq 1 ] || t_fail "a vbd was served by --kinds vbd3"
grep -q "no backend took it" "$W/err" || t_fail "vbd under --kinds vbd3: '$(cat "$W/err")'"
grep -q "serving vbd3 devices" "$W/backd.log" || t_fail "vbd3 not announced"
t_pass "--kinds vbd3: vbd3 served, vbd left alone"
