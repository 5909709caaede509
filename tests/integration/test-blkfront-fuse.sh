#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test-blkfront-fuse.sh: a real filesystem on the userspace blkfront.
# pvio-blkfront exports a vbd (served by the mock backend t-mockblk from an
# image file) through FUSE as MOUNTPOINT/xvda; a loop device goes on it,
# then mkfs.ext4, mount, copy files, umount, mount again and verify,
# fstrim (discards through loop -> fallocate(PUNCH_HOLE)), umount,
# fsck.ext4 -f on the loop device and on the image itself. The first
# frontend stops with fusermount -u, the second with SIGTERM: both exit
# 0 and leave the device Closed.
#
# Needs root, /dev/fuse, fusermount3 and loop devices: exits 77 with a
# SKIP line otherwise. Every exit path unmounts, detaches the loop
# device, stops the frontend, the mock backend and the world, and removes
# what the test made.

set -u

me=test-blkfront-fuse
fail() { echo "$me: FAIL: $*" >&2; exit 1; }
skip() { echo "$me: SKIP: $*" >&2; echo "SKIP: $me: $*"; exit 77; }
pass() { echo "$me: ok: $*"; }

[ "$(id -u)" -eq 0 ] || skip "not root (loop devices and mounts need it)"
for tool in mktemp truncate losetup mkfs.ext4 fsck.ext4 mount umount \
	mountpoint fusermount3 sha256sum diff du; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool not found"
done
[ -c /dev/fuse ] || skip "no /dev/fuse"
(exec 3<>/dev/fuse) 2>/dev/null || skip "cannot open /dev/fuse"
grep -qw fuse /proc/filesystems || skip "no fuse filesystem in this kernel"
losetup -f >/dev/null 2>&1 || skip "no free loop device (losetup -f)"

top=${PVIO_BUILDDIR:-$(pwd)}
ctl=$top/pvio-ctl
bf=$top/pvio-blkfront
mock=$top/tests/integration/t-mockblk
export PVIO_SIMHV=${PVIO_SIMHV:-$top/pvio-simhv}
for prog in "$ctl" "$bf" "$mock" "$PVIO_SIMHV"; do
	[ -x "$prog" ] || fail "$prog is not built (run: make check)"
done
"$bf" --help | grep -q "^  fuse " || fail "pvio-blkfront has no fuse mode"
"$bf" fuse /nonexistent-$$ 2>&1 | grep -q "without FUSE" &&
	skip "pvio-blkfront was built without FUSE (libfuse3-dev)"

base=${TMPDIR:-/tmp}
[ ${#base} -le 48 ] || base=/tmp
tmp=$(mktemp -d "$base/$me.XXXXXX") || fail "mktemp"
world=$tmp/world
mnt=$tmp/fuse
fs=$tmp/fs
mkdir "$mnt" "$fs" || fail "mkdir"
loop=
fe=
mockpid=

cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	mountpoint -q "$fs" && umount "$fs"
	[ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
	mountpoint -q "$mnt" && fusermount3 -u "$mnt" 2>/dev/null
	if [ -n "$fe" ] && kill -0 "$fe" 2>/dev/null; then
		kill -TERM "$fe"
		_n=0
		while kill -0 "$fe" 2>/dev/null && [ $_n -lt 50 ]; do
			sleep 0.1
			_n=$((_n + 1))
		done
		kill -KILL "$fe" 2>/dev/null
	fi
	mountpoint -q "$mnt" && umount -l "$mnt"
	[ -n "$mockpid" ] && kill -TERM "$mockpid" 2>/dev/null
	wait 2>/dev/null
	"$ctl" -w "$world" world stop >/dev/null 2>&1
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		for f in "$tmp"/*.log "$world/simhv.log"; do
			[ -f "$f" ] || continue
			echo "$me: --- $f ---" >&2
			tail -n 30 "$f" >&2
		done
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# pvio-ctl's own commands exit with their handles open: under ASan that is
# not this test's leak. (`pvio-ctl run` execs pvio-blkfront, which stays
# fully checked.)
ctl() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		"$ctl" -w "$world" "$@"
}

states() {
	ctl devices guest | awk '$3 == 51712 { print $4, $5 }'
}

# start_frontend LOG: pvio-blkfront fuse in the background, until the
# export is there
start_frontend() {
	# not through ctl(): $! must be the frontend itself (pvio-ctl
	# run execs it), not a subshell
	"$ctl" -w "$world" run guest -- "$bf" --log-level info --queues 4 \
		fuse "$mnt" --vdev xvda >>"$tmp/$1" 2>&1 &
	fe=$!
	_n=0
	until [ -f "$mnt/xvda" ]; do
		kill -0 "$fe" 2>/dev/null ||
			fail "pvio-blkfront exited: $(tail -n 5 "$tmp/$1")"
		_n=$((_n + 1))
		[ $_n -lt 200 ] || fail "no $mnt/xvda after 10 s"
		sleep 0.05
	done
}

# stop_frontend: wait for it (it must exit 0 by itself) and the states
stop_frontend() {
	_n=0
	while kill -0 "$fe" 2>/dev/null && [ $_n -lt 100 ]; do
		sleep 0.1
		_n=$((_n + 1))
	done
	kill -0 "$fe" 2>/dev/null && fail "pvio-blkfront did not exit"
	wait "$fe"
	_rc=$?
	fe=
	[ $_rc -eq 0 ] || fail "pvio-blkfront exited with $_rc"
	mountpoint -q "$mnt" && fail "$mnt still mounted"
	[ "$(states)" = "Closed Closed" ] || fail "states: $(states)"
}

# ---- a world, a guest, a disk -----------------------------------------------------
ctl world start >/dev/null || fail "pvio-ctl world start"
dom=$(ctl create guest) || fail "pvio-ctl create"
truncate -s 128M "$tmp/disk.img" || fail "truncate"
ctl vbd-attach guest "$tmp/disk.img" --vdev xvda >/dev/null ||
	fail "vbd-attach"
"$mock" --world "$world" --fe "$dom" --file "$tmp/disk.img" --flush \
	--discard --discard-gran 4096 --max-ring-order 4 --max-queues 4 \
	--max-indirect 64 >"$tmp/mock.log" 2>&1 &
mockpid=$!
_n=0
until grep -q ready "$tmp/mock.log" 2>/dev/null; do
	_n=$((_n + 1))
	[ $_n -lt 100 ] || fail "mock backend did not start"
	sleep 0.05
done

# ---- export, loop, mkfs, files ------------------------------------------------------
start_frontend fe1.log
size=$(stat -c %s "$mnt/xvda") || fail "stat"
[ "$size" -eq 134217728 ] || fail "$mnt/xvda is $size bytes"
[ "$(states)" = "Connected Connected" ] || fail "states: $(states)"
pass "exported as $mnt/xvda, $size bytes"

loop=$(losetup -f --show "$mnt/xvda") || fail "losetup"
mkfs.ext4 -q -F "$loop" >"$tmp/mkfs.log" 2>&1 || fail "mkfs.ext4"
mount "$loop" "$fs" || fail "mount"
head -c 24M /dev/urandom >"$fs/big" || fail "writing a file"
mkdir "$fs/tree" || fail "mkdir"
cp -r /usr/include/linux "$fs/tree/" || fail "cp -r"
(cd "$fs" && sha256sum big) >"$tmp/big.sum" || fail "sha256sum"
sync -f "$fs/big" || fail "sync (fsync -> flush)"
umount "$fs" || fail "umount"
pass "mkfs.ext4, mount, files copied, umount"

mount "$loop" "$fs" || fail "mount again"
(cd "$fs" && sha256sum -c --quiet "$tmp/big.sum") || fail "big: checksum"
diff -r /usr/include/linux "$fs/tree/linux" >/dev/null ||
	fail "the copied tree differs"
# fstrim: ext4 discards its free space -> loop -> fallocate(PUNCH_HOLE)
# -> blkif discards; the image gets its holes back
rm "$fs/big" && sync
used1=$(du -k "$tmp/disk.img" | cut -f1)
if command -v fstrim >/dev/null 2>&1; then
	fstrim "$fs" || fail "fstrim"
	used2=$(du -k "$tmp/disk.img" | cut -f1)
	[ "$used2" -lt "$used1" ] ||
		fail "fstrim freed nothing in the image ($used1 -> $used2 KiB)"
	pass "data verified after a remount; fstrim: $used1 -> $used2 KiB"
else
	pass "data verified after a remount (no fstrim to try)"
fi
umount "$fs" || fail "umount"
fsck.ext4 -f -n "$loop" >"$tmp/fsck.log" 2>&1 ||
	fail "fsck.ext4 -f: $(cat "$tmp/fsck.log")"
losetup -d "$loop" || fail "losetup -d"
loop=
pass "fsck.ext4 -f clean on the loop device"

# ---- fusermount -u: a clean exit ---------------------------------------------------------
# the loop device lets go of the file asynchronously after losetup -d
for _ in $(seq 50); do
	fusermount3 -u "$mnt" 2>"$tmp/umount.err" && break
	grep -q busy "$tmp/umount.err" || break
	sleep 0.1
done
mountpoint -q "$mnt" && fail "fusermount3 -u: $(cat "$tmp/umount.err")"
stop_frontend
fsck.ext4 -f -n "$tmp/disk.img" >"$tmp/fsck2.log" 2>&1 ||
	fail "fsck.ext4 of the image: $(cat "$tmp/fsck2.log")"
pass "fusermount -u: exit 0, Closed; the image itself fscks clean"

# ---- a new frontend process, stopped by SIGTERM ---------------------------------------
start_frontend fe2.log
loop=$(losetup -f --show -r "$mnt/xvda") || fail "losetup -r"
mount -o ro "$loop" "$fs" || fail "mount (second frontend)"
[ -f "$fs/tree/linux/fs.h" ] || fail "the files are gone"
umount "$fs" || fail "umount"
losetup -d "$loop" || fail "losetup -d"
loop=
kill -TERM "$fe"
stop_frontend
pass "a second frontend sees the filesystem; SIGTERM: exit 0, Closed"
exit 0
