#!/bin/bash
# SPDX-License-Identifier: MIT
# pvio-backd serving disks from NBD servers (libnbd, driven from the worker
# loop), with a real filesystem on them in a sim guest:
#  - nbdkit's memory plugin: pvio-blkfront exports the disk through FUSE,
#    mkfs.ext4, files copied, remount and verify, fsck -f clean, and the
#    export's bytes read back through another NBD client match;
#  - a second writer to the same export is refused (its device fails with
#    a clear error node), the first goes on;
#  - qemu-nbd serving a qcow2 image, attached with a hotplug script as xl
#    does (/bin/true: nothing to answer): the same filesystem checks, then the
#    qcow2 image itself compares equal to what the guest saw, and checks;
#  - the server stopped (SIGSTOP) mid-I/O: the guest's writes fail after
#    --remote-timeout, while another guest's file disk on the same worker
#    does verified I/O throughout; a write while it is stopped waits for a
#    connection whose handshake does not come, fails at the timeout, and the
#    log says where the attempt hangs; the server back (SIGCONT): new I/O
#    works;
#  - the server killed mid-I/O: errors, no hang; a new server on the same
#    socket: the disk works again;
#  - a guest gone (its ring broken) with a write waiting for a server that
#    is gone too: its queue drains at once, the device closes and the
#    export can be attached again;
#  - a 6 GiB discard (longer than an NBD command can say): done in parts;
#  - a queue that cannot start (no memory, PVIO_TEST_NBD_QUEUE_NOMEM) with
#    requests in the ring: none is taken, the device fails and closes.
# Needs root, FUSE, loop devices, nbdkit, qemu-nbd and qemu-img: SKIPs
# otherwise (tools/install-deps.sh installs them).
. "$(dirname "$0")/lib.sh"
me=test-backd-nbd
[ "$(id -u)" -eq 0 ] || t_skip "not root (loop devices and mounts need it)"
for tool in nbdkit qemu-nbd qemu-img losetup mkfs.ext4 fsck.ext4 mount \
	umount mountpoint fusermount3 sha256sum cmp timeout; do
	command -v "$tool" >/dev/null 2>&1 ||
		t_skip "$tool not found (tools/install-deps.sh installs it)"
done
[ -c /dev/fuse ] || t_skip "no /dev/fuse"
(exec 3<>/dev/fuse) 2>/dev/null || t_skip "cannot open /dev/fuse"
losetup -f >/dev/null 2>&1 || t_skip "no free loop device (losetup -f)"
"$BACKD" --help | grep -q "targets:.*nbd" ||
	t_skip "pvio-backd was built without libnbd (libnbd-dev)"
BF="$B/pvio-blkfront"
CLIENT="$B/tests/integration/t-blkclient"
"$BF" fuse /nonexistent-$$ 2>&1 | grep -q "without FUSE" &&
	t_skip "pvio-blkfront was built without FUSE (libfuse3-dev)"

t_world_up
MNT=$W/fuse
FS=$W/fs
mkdir "$MNT" "$FS" || t_fail "mkdir"
LOOP=
FE=
SRV=
extra_cleanup() {
	mountpoint -q "$FS" && umount "$FS"
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	mountpoint -q "$MNT" && fusermount3 -u "$MNT" 2>/dev/null
	[ -n "$FE" ] && kill -TERM "$FE" 2>/dev/null
	[ -n "$SRV" ] && kill -CONT "$SRV" 2>/dev/null
	mountpoint -q "$MNT" && umount -l "$MNT"
	true
}
trap 'rc=$?; extra_cleanup; (exit $rc); t_cleanup' EXIT

# start_server NAME CMD...: an NBD server in the foreground, until its
# socket is there
start_server() {
	local sock=$W/$1.sock
	shift
	rm -f "$sock"
	"$@" >>"$W/server.log" 2>&1 &
	SRV=$!
	T_PIDS="$T_PIDS $SRV"
	for _ in $(seq 100); do [ -S "$sock" ] && return 0; sleep 0.05; done
	t_fail "NBD server did not start: $*"
}

# export DOM VDEV: pvio-blkfront fuse in the background until MNT/VDEV is up
export_disk() {
	"$PVIO_CTL" -w "$W" run "$1" -- "$BF" --log-level info fuse "$MNT" \
		--vdev "$2" >>"$W/fe.log" 2>&1 &
	FE=$!
	for _ in $(seq 200); do
		[ -e "$MNT/$2" ] && return 0
		kill -0 "$FE" 2>/dev/null || t_fail "pvio-blkfront exited: $(tail -5 "$W/fe.log")"
		sleep 0.05
	done
	t_fail "no $MNT/$2 after 10 s"
}

unexport_disk() {
	[ -n "$LOOP" ] && { losetup -d "$LOOP" || t_fail "losetup -d"; LOOP=; }
	for _ in $(seq 50); do
		fusermount3 -u "$MNT" 2>/dev/null && break
		sleep 0.1
	done
	for _ in $(seq 100); do kill -0 "$FE" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$FE" 2>/dev/null && t_fail "pvio-blkfront did not exit"
	wait "$FE"
	FE=
}

# filesystem DEV: mkfs, files, remount and verify, fsck -f
filesystem() {
	LOOP=$(losetup -f --show "$1") || t_fail "losetup"
	mkfs.ext4 -q -F "$LOOP" >"$W/mkfs.log" 2>&1 || t_fail "mkfs.ext4: $(cat "$W/mkfs.log")"
	mount "$LOOP" "$FS" || t_fail "mount"
	head -c 12M /dev/urandom >"$FS/big" || t_fail "writing a file"
	mkdir "$FS/tree" && cp -r /usr/include/linux "$FS/tree/" || t_fail "cp -r"
	(cd "$FS" && sha256sum big) >"$W/big.sum" || t_fail "sha256sum"
	umount "$FS" || t_fail "umount"
	mount "$LOOP" "$FS" || t_fail "mount again"
	(cd "$FS" && sha256sum -c --quiet "$W/big.sum") || t_fail "big: checksum"
	diff -r /usr/include/linux "$FS/tree/linux" >/dev/null ||
		t_fail "the copied tree differs"
	umount "$FS" || t_fail "umount"
	fsck.ext4 -f -n "$LOOP" >"$W/fsck.log" 2>&1 ||
		t_fail "fsck.ext4 -f: $(cat "$W/fsck.log")"
	losetup -d "$LOOP" || t_fail "losetup -d"
	LOOP=
}

err_node() { ctl run 0 -- xenstore-read "/local/domain/0/backend/vbd/$1/$2/error" 2>/dev/null; }

D1=$(ctl create g1) && ctl create g2 >/dev/null || t_fail "create"
start_server mem nbdkit --foreground --exit-with-parent --unix "$W/mem.sock" \
	memory 64M
MEMSRV=$SRV
URI="nbd+unix:///?socket=$W/mem.sock"
ctl vbd-attach g1 "$URI" --vdev xvda >/dev/null || t_fail "attach nbdkit"
truncate -s 32M "$W/file.img" || t_fail "truncate"
ctl vbd-attach g2 "$W/file.img" --vdev xvda >/dev/null || t_fail "attach file"
# 10 s: long enough that a loaded machine (CI, two cores) never trips it
# during the filesystem phases (3 s did once), short enough to wait for
t_backd_up --workers 1 --remote-timeout 10 --lock-dir "$W/locks"
t_wait_states g1 51712 "Initialising InitWait"

# ---- nbdkit memory: a filesystem, and its bytes through another client ---------------
export_disk g1 xvda
[ "$(stat -c %s "$MNT/xvda")" -eq 67108864 ] || t_fail "size $(stat -c %s "$MNT/xvda")"
filesystem "$MNT/xvda"
qemu-img convert -f raw -O raw "$URI" "$W/mem.raw" || t_fail "qemu-img convert from nbdkit"
cmp "$MNT/xvda" "$W/mem.raw" || t_fail "the export's bytes differ from the guest's disk"
t_pass "nbdkit: ext4 made, files copied and verified, fsck clean, export's bytes match"

# ---- a second writer to the same export is refused -------------------------------------
# pvio-ctl waits for the backend: it reports the failure
out=$(ctl vbd-attach g1 "$URI" --vdev xvdb 2>&1) &&
	t_fail "a second writer was attached: $out"
echo "$out" | grep -q "has a writer already" || t_fail "pvio-ctl: $out"
for _ in $(seq 100); do err_node "$D1" 51728 | grep -q . && break; sleep 0.05; done
err=$(err_node "$D1" 51728)
echo "$err" | grep -q "has a writer already" ||
	t_fail "second writer: error node '$err'"
[ "$(t_states g1 51728 | cut -d' ' -f2)" = Closing ] ||
	t_fail "second writer's device: $(t_states g1 51728)"
head -c 1M /dev/urandom >"$W/blk1" &&
	dd if="$W/blk1" of="$MNT/xvda" bs=1M seek=8 conv=fsync,notrunc status=none ||
	t_fail "the first writer cannot write any more"
ctl vbd-detach g1 xvdb >/dev/null || t_fail "detach xvdb"
t_pass "a second writer to the export: refused with '$err'; the first goes on"

# ---- the server stopped mid-I/O: errors after the timeout, others unaffected ------------
run_file_io() { "$PVIO_CTL" -w "$W" run g2 -- "$CLIENT" 51712 io "$1"; }
run_file_io 4000 >"$W/healthy" 2>&1 &
HPID=$!
# writes until one fails (the loop ends only then)
(while dd if=/dev/urandom of="$MNT/xvda" bs=64k count=800 oflag=direct \
	conv=notrunc status=none 2>"$W/dd.err"; do :; done) &
DPID=$!
sleep 0.3
kill -STOP "$MEMSRV"
t0=$(date +%s%N)
timeout 40 tail --pid=$DPID -f /dev/null || t_fail "the guest's writes hang (server stopped)"
t1=$(date +%s%N)
el=$(( (t1 - t0) / 1000000 ))
[ $el -ge 9000 ] && [ $el -le 25000 ] || t_fail "error after $el ms (timeout 10 s)"
grep -q "Input/output error" "$W/dd.err" || t_fail "dd: $(cat "$W/dd.err")"
wait $HPID || t_fail "the file disk's verified I/O failed meanwhile: $(cat "$W/healthy")"
grep -q "OK 4000 write+read" "$W/healthy" || t_fail "healthy: $(cat "$W/healthy")"
kill -0 "$BACKD_PID" || t_fail "pvio-backd died"
grep -q "no answer within the timeout" "$W/backd.log" || t_fail "no timeout logged"
# a write while it is still stopped: the new connection is accepted (the
# socket's backlog) but no handshake comes; the write fails at its timeout,
# and the log says where the attempt hangs
t0=$(date +%s%N)
dd if="$W/blk1" of="$MNT/xvda" bs=64k count=1 oflag=direct conv=notrunc \
	status=none 2>/dev/null && t_fail "a write succeeded with the server stopped"
el2=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $el2 -ge 9000 ] && [ $el2 -le 25000 ] || t_fail "no connection: error after $el2 ms (timeout 10 s)"
# where it hangs: with the requests failed, or with the attempt given up
# at its own deadline, which can come first on a busy machine (same tick)
hang=$(grep -oE "(failing requests \(an attempt began [0-9]+ ms ago; |no connection within [0-9]+ s \()libnbd: [A-Z_.]+" \
	"$W/backd.log" | tail -1)
[ -n "$hang" ] || t_fail "the hanging attempt not logged: $(grep unreachable "$W/backd.log" | tail -2)"
# nothing waits now, and the attempt is still given up at its own deadline
# (its timer was armed only while a request waited: it hung on, unlogged,
# until the next request)
last_ts() { grep "$1" "$W/backd.log" | tail -1 | cut -d' ' -f1; }
failed_at=$(last_ts "failing requests")
for _ in $(seq 60); do
	[[ ! "$(last_ts "no connection within")" < "$failed_at" ]] && break
	sleep 0.1
done
[[ ! "$(last_ts "no connection within")" < "$failed_at" ]] ||
	t_fail "the attempt was not given up at its deadline: nothing logged since the requests failed at $failed_at"
kill -CONT "$MEMSRV"
dd if="$W/blk1" of="$MNT/xvda" bs=1M seek=9 conv=fsync,notrunc status=none ||
	t_fail "writes after the server came back"
dd if="$MNT/xvda" of="$W/blk1.back" bs=1M skip=9 count=1 iflag=direct status=none &&
	cmp "$W/blk1" "$W/blk1.back" || t_fail "read back after the server came back"
t_pass "server stopped mid-I/O: guest errors after $el ms, file disk verified meanwhile; a write then: error after $el2 ms, logged '$hang'; server back: I/O works"

# ---- the server killed mid-I/O, then a new one ---------------------------------------------
# writes until one fails (the loop ends only then)
(while dd if=/dev/urandom of="$MNT/xvda" bs=64k count=800 oflag=direct \
	conv=notrunc status=none 2>"$W/dd.err"; do :; done) &
DPID=$!
sleep 0.3
kill -KILL "$MEMSRV"
timeout 40 tail --pid=$DPID -f /dev/null || t_fail "the guest's writes hang (server killed)"
grep -q "Input/output error" "$W/dd.err" || t_fail "dd: $(cat "$W/dd.err")"
kill -0 "$BACKD_PID" || t_fail "pvio-backd died"
start_server mem nbdkit --foreground --exit-with-parent --unix "$W/mem.sock" \
	memory 64M
MEMSRV=$SRV
dd if="$W/blk1" of="$MNT/xvda" bs=1M seek=3 conv=fsync,notrunc status=none ||
	t_fail "writes to a new server on the same socket"
dd if="$MNT/xvda" of="$W/blk1.back" bs=1M skip=3 count=1 iflag=direct status=none &&
	cmp "$W/blk1" "$W/blk1.back" || t_fail "read back from the new server"
unexport_disk
t_pass "server killed mid-I/O: errors, no hang; a new server: I/O works again"

# ---- qemu-nbd serving qcow2 -------------------------------------------------------------
qemu-img create -q -f qcow2 "$W/disk.qcow2" 96M || t_fail "qemu-img create"
start_server qcow qemu-nbd --persistent -f qcow2 --socket="$W/qcow.sock" \
	"$W/disk.qcow2"
QSRV=$SRV
# as xl attaches it (docs/deploy-xen.md: backendtype=phy with a script, so
# that libxl writes the URI unchanged): a script that answers nothing,
# since pvio-backd opens a remote target itself
ctl vbd-attach g2 "nbd+unix:///?socket=$W/qcow.sock" --vdev xvdb --script /bin/true \
	>/dev/null || t_fail "attach qemu-nbd (with a script, as xl)"
t_wait_states g2 51728 "Initialising InitWait"
export_disk g2 xvdb
[ "$(stat -c %s "$MNT/xvdb")" -eq 100663296 ] || t_fail "qcow2 size $(stat -c %s "$MNT/xvdb")"
filesystem "$MNT/xvdb"
cp "$MNT/xvdb" "$W/guest.raw" || t_fail "reading the guest's disk"
unexport_disk
ctl vbd-detach g2 xvdb >/dev/null || t_fail "detach"
for _ in $(seq 100); do
	ctl devices g2 | awk '$3 == 51728' | grep -q . || break
	sleep 0.05
done
kill -TERM "$QSRV"; wait "$QSRV" 2>/dev/null
qemu-img check -q "$W/disk.qcow2" || t_fail "qemu-img check"
qemu-img compare -q -f raw -F qcow2 "$W/guest.raw" "$W/disk.qcow2" ||
	t_fail "the qcow2 image differs from what the guest saw"
t_pass "qemu-nbd qcow2: ext4, files verified, fsck clean; the image checks and matches"

# ---- a guest gone with a write waiting for a server that is gone too ----------------------
# Its queue halts (a broken ring here; a dead guest halts it the same way)
# and must still drain: the waiting write answered at once, the device
# closed, and the export's lock released for the next attach. A halted
# queue once never ran its target's timers: Closing for ever, holding it all.
start_server g3 nbdkit --foreground --exit-with-parent --unix "$W/g3.sock" \
	memory 64M
G3SRV=$SRV
ctl create g3 >/dev/null || t_fail "create g3"
ctl vbd-attach g3 "nbd+unix:///?socket=$W/g3.sock" --vdev xvda >/dev/null ||
	t_fail "attach g3"
t_wait_states g3 51712 "Initialising InitWait"
kill -KILL "$G3SRV"; wait "$G3SRV" 2>/dev/null
ctl run g3 -- "$B/tests/integration/t-blkclient" 51712 halt-pending >"$W/out" 2>&1 ||
	t_fail "$(cat "$W/out")"
ctl vbd-detach g3 xvda >/dev/null || t_fail "detach g3"
start_server g3 nbdkit --foreground --exit-with-parent --unix "$W/g3.sock" \
	memory 64M
ctl vbd-attach g3 "nbd+unix:///?socket=$W/g3.sock" --vdev xvda >/dev/null ||
	t_fail "the export attached again"
t_wait_states g3 51712 "Initialising InitWait"
kill -0 "$BACKD_PID" || t_fail "pvio-backd died"
t_pass "a guest gone with a write waiting for a dead server: drained at once, closed, the export free again"

# ---- a discard longer than an NBD command (4 GiB) ------------------------------------------
# blkif gives a discard 64 bits of length, an NBD command 32: a 6 GiB
# discard in one request (as t-blkclient sends it; pvio-blkfront and Linux
# send at most 4 GiB) is sent in parts. It failed whole, libnbd refusing
# the length. nbdkit's memory plugin is sparse and reads a trim as zeroes.
start_server g5 nbdkit --foreground --exit-with-parent --unix "$W/g5.sock" \
	memory 8G
ctl create g5 >/dev/null || t_fail "create g5"
ctl vbd-attach g5 "nbd+unix:///?socket=$W/g5.sock" --vdev xvda >/dev/null ||
	t_fail "attach g5"
bf5() { ctl run g5 -- "$BF" --vdev xvda "$@"; }
head -c 1M /dev/urandom >"$W/blk5" || t_fail "urandom"
for off in $((1 << 30)) $(((4 << 30) + 65536)) $((6 << 30)); do
	bf5 write "$off" <"$W/blk5" || t_fail "write at $off"
done
ctl run g5 -- "$CLIENT" 51712 discard-io $(((6 << 30) / 512)) >"$W/out" 2>&1 ||
	t_fail "a 6 GiB discard: $(cat "$W/out")"
head -c 1M /dev/zero >"$W/zero5"
for off in $((1 << 30)) $(((4 << 30) + 65536)); do
	bf5 read "$off" 1048576 | cmp -s - "$W/zero5" ||
		t_fail "not discarded at $off"
done
bf5 read $((6 << 30)) 1048576 | cmp -s - "$W/blk5" ||
	t_fail "the data after the discarded range changed"
ctl vbd-detach g5 xvda >/dev/null || t_fail "detach g5"
t_pass "a 6 GiB discard in one request on NBD: sent in parts, the range reads as zeroes, what follows is intact"

# ---- a queue that cannot start (no memory for its commands) ------------------------------
# with requests in the ring already (a restart under a busy guest): none
# may be taken (they were, and hung for ever), the device fails and closes
t_backd_down
PVIO_TEST_NBD_QUEUE_NOMEM=1 t_backd_up --workers 1 --remote-timeout 10 --lock-dir "$W/locks"
start_server g4 nbdkit --foreground --exit-with-parent --unix "$W/g4.sock" \
	memory 64M
ctl create g4 >/dev/null || t_fail "create g4"
ctl vbd-attach g4 "nbd+unix:///?socket=$W/g4.sock" --vdev xvda --no-wait >/dev/null ||
	t_fail "attach g4"
ctl run g4 -- "$B/tests/integration/t-blkclient" 51712 prefill >"$W/out" 2>&1 ||
	t_fail "$(cat "$W/out")"
grep -q "no memory for the NBD queue" "$W/backd.log" || t_fail "the failure is not logged"
kill -0 "$BACKD_PID" || t_fail "pvio-backd died"
t_pass "an NBD queue that cannot start takes nothing; its device fails and closes"
exit 0
