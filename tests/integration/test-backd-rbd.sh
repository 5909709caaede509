#!/bin/bash
# SPDX-License-Identifier: MIT
# pvio-backd serving a disk from Ceph RBD (librbd, completions through an
# eventfd polled by the worker's io_uring), on a one-mon, one-OSD cluster
# this test starts on loopback and tears down (ceph-lib.sh):
#  - a sim guest (pvio-blkfront's FUSE export) makes ext4 on the RBD disk,
#    copies files, remounts and verifies them, fsck -f is clean, and the
#    image's bytes read back through librbd (rbd export) match;
#  - the image's exclusive lock refuses a second writer: its device fails
#    with a clear error node, the first goes on;
#  - the cluster stopped (SIGSTOP) mid-I/O: the guest's writes fail after
#    --remote-timeout while another guest's file disk on the same worker
#    does verified I/O; the cluster back: I/O works again;
#  - pvio-backd SIGKILLed: its restart breaks the dead client's lock (noted
#    in this host's lock file) and serves the guest at once, not after the
#    cluster's 30 s watch timeout;
#  - the cluster stopped at a restart: the disk is re-attached without its
#    image (errors); the cluster back, it is served again by itself.
# With --grant-map: writes go to librbd straight from the guest's mapped
# pages (librbd copies them before rbd_aio_writev returns, which an option
# turning that off would break: refused), reads through bounce pages.
# Needs root, FUSE, loop devices and Ceph's mon/osd/rbd: SKIPs otherwise
# (tools/install-deps.sh installs them).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/ceph-lib.sh"
[ "$(id -u)" -eq 0 ] || t_skip "not root (loop devices and mounts need it)"
for tool in ceph-mon ceph-osd ceph rbd losetup mkfs.ext4 fsck.ext4 mount \
	umount mountpoint fusermount3 sha256sum cmp timeout; do
	command -v "$tool" >/dev/null 2>&1 ||
		t_skip "$tool not found (tools/install-deps.sh installs it)"
done
[ -c /dev/fuse ] || t_skip "no /dev/fuse"
(exec 3<>/dev/fuse) 2>/dev/null || t_skip "cannot open /dev/fuse"
losetup -f >/dev/null 2>&1 || t_skip "no free loop device (losetup -f)"
"$BACKD" --help | grep -q "targets:.*rbd" ||
	t_skip "pvio-backd was built without librbd (librbd-dev)"
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
extra_cleanup() {
	mountpoint -q "$FS" && umount "$FS"
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	mountpoint -q "$MNT" && fusermount3 -u "$MNT" 2>/dev/null
	[ -n "$FE" ] && kill -TERM "$FE" 2>/dev/null
	mountpoint -q "$MNT" && umount -l "$MNT"
	true
}
# the daemons first (pvio-backd holds the image), then the cluster
trap 'rc=$?; extra_cleanup; for p in $T_PIDS; do kill "$p" 2>/dev/null; done; ceph_down; (exit $rc); t_cleanup' EXIT

# a 4 KiB-aligned cluster on this namespace's loopback
ceph_image_up "$W/ceph" 6789 48M
t_pass "Ceph cluster up (one mon, one memstore OSD)"

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

# what the cluster and librbd say, for a failure's message
cluster_state() {
	echo "lock: $(timeout 10 rbd lock ls rbd/disk1 2>&1 | tail -2)"
	echo "status: $(timeout 10 rbd status rbd/disk1 2>&1)"
	echo "blocklist: $(timeout 10 ceph osd blocklist ls 2>&1 | head -5)"
	echo "client log: $(grep -v "^$" "$W"/ceph/log/client.admin.log 2>/dev/null | tail -20)"
	echo "cluster: $(timeout 10 ceph -s 2>&1)"
	echo "osd.0: $(timeout 10 ceph osd dump 2>&1 | grep "^osd\.0")"
	echo "processes: $(ps -o pid=,stat=,etime=,comm= -p "$CEPH_MON_PID,$CEPH_OSD_PID")"
	echo "osd log:"; grep -v "^$" "$W"/ceph/log/osd.0.log | tail -25
	echo "mon log:"; grep -v "^$" "$W"/ceph/log/mon.a.log | grep -v rocksdb | tail -15
}

err_node() { ctl run 0 -- xenstore-read "/local/domain/0/backend/vbd/$1/$2/error" 2>/dev/null; }

D1=$(ctl create g1) && ctl create g2 >/dev/null || t_fail "create"
# librbd's own I/O timeout, normally --remote-timeout, set far beyond it:
# the guest's errors when the cluster stops must come from pvio-backd's
# bound, which holds also for an I/O librbd keeps without an answer (one
# waiting for the image's lock or a monitor, which no timeout of librbd's
# ends): an I/O taken when nothing else was in flight once waited with no
# timer armed, until librbd let go
IMG="rbd:rbd/disk1:conf=$CEPH_CONF:rados_osd_op_timeout=120"
ctl vbd-attach g1 "$IMG" --vdev xvda >/dev/null || t_fail "attach rbd"
truncate -s 32M "$W/file.img" || t_fail "truncate"
ctl vbd-attach g2 "$W/file.img" --vdev xvda >/dev/null || t_fail "attach file"
# 10 s: a loaded machine (CI, two cores) never trips it during the
# filesystem phases (as 3 s did once in the NBD test)
t_backd_up --workers 1 --remote-timeout 10 --grant-map
t_wait_states g1 51712 "Initialising InitWait" 30

# ---- a filesystem on RBD; the image's bytes through librbd -------------------------
export_disk g1 xvda
grep -q "51712: connected, .*grants mapped (persistent)" "$W/backd.log" ||
	t_fail "the RBD disk's grants are not mapped: $(grep 51712 "$W/backd.log" | tail -3)"
[ "$(stat -c %s "$MNT/xvda")" -eq 50331648 ] || t_fail "size $(stat -c %s "$MNT/xvda")"
LOOP=$(losetup -f --show "$MNT/xvda") || t_fail "losetup"
mkfs.ext4 -q -F "$LOOP" >"$W/mkfs.log" 2>&1 || t_fail "mkfs.ext4: $(cat "$W/mkfs.log")"
mount "$LOOP" "$FS" || t_fail "mount"
head -c 8M /dev/urandom >"$FS/big" || t_fail "writing a file"
mkdir "$FS/tree" && cp -r /usr/include/linux "$FS/tree/" || t_fail "cp -r"
(cd "$FS" && sha256sum big) >"$W/big.sum" || t_fail "sha256sum"
umount "$FS" || t_fail "umount"
mount "$LOOP" "$FS" || t_fail "mount again"
(cd "$FS" && sha256sum -c --quiet "$W/big.sum") || t_fail "big: checksum"
diff -r /usr/include/linux "$FS/tree/linux" >/dev/null || t_fail "the copied tree differs"
umount "$FS" || t_fail "umount"
fsck.ext4 -f -n "$LOOP" >"$W/fsck.log" 2>&1 || t_fail "fsck.ext4 -f: $(cat "$W/fsck.log")"
losetup -d "$LOOP" || t_fail "losetup -d"
LOOP=
timeout 60 rbd export --no-progress rbd/disk1 "$W/export.raw" >/dev/null 2>&1 ||
	t_fail "rbd export"
cmp "$MNT/xvda" "$W/export.raw" || t_fail "the image's bytes differ from the guest's disk"
t_pass "RBD: ext4 made, files verified, fsck clean, rbd export matches the guest's disk"

# ---- the exclusive lock refuses a second writer -------------------------------------
# pvio-ctl waits for the backend: it reports the failure
out=$(ctl vbd-attach g1 "$IMG" --vdev xvdb 2>&1) &&
	t_fail "a second writer was attached: $out"
echo "$out" | grep -q "exclusive lock is held by another client" || t_fail "pvio-ctl: $out"
for _ in $(seq 300); do err_node "$D1" 51728 | grep -q . && break; sleep 0.05; done
err=$(err_node "$D1" 51728)
echo "$err" | grep -q "exclusive lock is held by another client" ||
	t_fail "second writer: error node '$err'"
head -c 1M /dev/urandom >"$W/blk1" &&
	dd if="$W/blk1" of="$MNT/xvda" bs=1M seek=8 conv=fsync,notrunc status=none ||
	t_fail "the first writer cannot write any more"
ctl vbd-detach g1 xvdb >/dev/null || t_fail "detach xvdb"
t_pass "a second writer: refused with '$err'; the first goes on"
# writes come from the guest's pages: librbd must copy them
out=$(ctl vbd-attach g1 "$IMG:rbd_disable_zero_copy_writes=false" --vdev xvdc 2>&1) &&
	t_fail "librbd's zero-copy writes were accepted: $out"
echo "$out" | grep -q "rbd_disable_zero_copy_writes=false' is not supported" ||
	t_fail "zero-copy writes: $out"
ctl vbd-detach g1 xvdc >/dev/null || t_fail "detach xvdc"

# ---- the cluster stopped mid-I/O ------------------------------------------------------------
"$PVIO_CTL" -w "$W" run g2 -- "$CLIENT" 51712 io 4000 >"$W/healthy" 2>&1 &
HPID=$!
# writes until one fails (the loop ends only then)
(while dd if=/dev/urandom of="$MNT/xvda" bs=64k count=600 oflag=direct \
	conv=notrunc status=none 2>"$W/dd.err"; do :; done) &
DPID=$!
sleep 0.5
kill -STOP "$CEPH_OSD_PID" "$CEPH_MON_PID"
t0=$(date +%s%N)
timeout 60 tail --pid=$DPID -f /dev/null || t_fail "the guest's writes hang (cluster stopped)"
t1=$(date +%s%N)
el=$(( (t1 - t0) / 1000000 ))
[ $el -ge 9000 ] && [ $el -le 35000 ] || t_fail "error after $el ms (timeout 10 s)"
grep -q "Input/output error" "$W/dd.err" || t_fail "dd: $(cat "$W/dd.err")"
wait $HPID || t_fail "the file disk's verified I/O failed meanwhile: $(cat "$W/healthy")"
grep -q "OK 4000 write+read" "$W/healthy" || t_fail "healthy: $(cat "$W/healthy")"
kill -0 "$BACKD_PID" || t_fail "pvio-backd died"
kill -CONT "$CEPH_MON_PID" "$CEPH_OSD_PID"
ok=0
for _ in $(seq 30); do
	dd if="$W/blk1" of="$MNT/xvda" bs=1M seek=9 conv=fsync,notrunc status=none 2>/dev/null &&
		{ ok=1; break; }
	sleep 1
done
[ $ok = 1 ] || t_fail "writes after the cluster came back: $(cluster_state)"
dd if="$MNT/xvda" of="$W/blk1.back" bs=1M skip=9 count=1 iflag=direct status=none &&
	cmp "$W/blk1" "$W/blk1.back" || t_fail "read back after the cluster came back"
t_pass "cluster stopped mid-I/O: guest errors after $el ms, file disk verified meanwhile; cluster back: I/O works"

# ---- pvio-backd killed: the restart takes the dead process's lock over ---------------------
# The image's lock stays with the killed process's client until the
# cluster times its watch out (30 s): librbd would wait that long. The
# client was noted in this host's lock file; the restart, holding the
# file, breaks that client's lock and takes it at once.
# $1: the 1 MiB block to write and read back through the guest; sets el (ms)
write_back() {
	local t0=$(date +%s%N)
	timeout 60 dd if="$W/blk1" of="$MNT/xvda" bs=1M seek="$1" conv=fsync,notrunc \
		status=none 2>"$W/dd.err" || t_fail "a write after the restart: $(cat "$W/dd.err")"
	el=$(( ($(date +%s%N) - t0) / 1000000 ))
	dd if="$MNT/xvda" of="$W/blk1.back" bs=1M skip="$1" count=1 iflag=direct status=none &&
		cmp "$W/blk1" "$W/blk1.back" || t_fail "read back after the restart"
}
kill -KILL "$BACKD_PID"
wait "$BACKD_PID" 2>/dev/null
T_PIDS=${T_PIDS/ $BACKD_PID/}
t_backd_up --workers 1 --remote-timeout 10 --grant-map
write_back 11
[ $el -lt 8000 ] || t_fail "the first write after the restart took $el ms (the dead client's lock waited for?)"
grep -q "vbd/$D1/51712: rbd rbd/disk1: its lock was held by .*which is gone: broken" "$W/backd.log" ||
	t_fail "no takeover of the dead process's lock: $(grep "vbd/$D1/51712" "$W/backd.log" | tail -4)"
t_pass "pvio-backd killed: the restart broke its dead client's lock and served the guest's write in $el ms"

# ---- the cluster unreachable at a restart, then back ---------------------------------
# The open times out (--remote-timeout): the disk is re-attached without
# its image, I/O errors; the cluster back, it is opened again by itself
# and served under the same guest
n=$(grep -c "vbd/$D1/51712: .* is back after" "$W/backd.log")
kill -STOP "$CEPH_OSD_PID" "$CEPH_MON_PID"
kill -KILL "$BACKD_PID"
wait "$BACKD_PID" 2>/dev/null
T_PIDS=${T_PIDS/ $BACKD_PID/}
t_backd_up --workers 1 --remote-timeout 10 --grant-map
for _ in $(seq 300); do
	grep -q "vbd/$D1/51712: .*re-attached without it" "$W/backd.log" && break
	sleep 0.1
done
grep -q "vbd/$D1/51712: .*re-attached without it" "$W/backd.log" ||
	t_fail "the disk was not re-attached without its image: $(grep "vbd/$D1/51712" "$W/backd.log" | tail -3)"
dd if="$W/blk1" of="$MNT/xvda" bs=1M seek=12 conv=fsync,notrunc status=none 2>"$W/dd.err" &&
	t_fail "a write succeeded with the image absent"
kill -CONT "$CEPH_MON_PID" "$CEPH_OSD_PID"
for _ in $(seq 300); do
	[ "$(grep -c "vbd/$D1/51712: .* is back after" "$W/backd.log")" -gt "$n" ] && break
	sleep 0.1
done
[ "$(grep -c "vbd/$D1/51712: .* is back after" "$W/backd.log")" -gt "$n" ] ||
	t_fail "the image not served 30 s after the cluster came back: $(grep "vbd/$D1/51712" "$W/backd.log" | tail -3); $(cluster_state)"
write_back 12
t_pass "cluster unreachable at a restart: the disk answered errors, then, the cluster back, was served again ($el ms write)"
exit 0
