#!/bin/bash
# SPDX-License-Identifier: MIT
# pvio's demo, in a sim world on this machine (root: loop devices, mounts,
# network namespaces):
#   1. a guest domain gets a disk (a sparse file in dom0) served by
#      pvio-backd over io_uring; inside the guest, pvio-blkfront exports it
#      through FUSE, and ext4 is made, used and checked on it;
#   2. the same guest gets a network interface: its netfront TAP lives in
#      the guest's own network namespace, pvio-backd's vif TAP in dom0; the
#      guest pings dom0 and sends a file over TCP;
#   3. the counters pvio-backd keeps, and a short ring benchmark.
# Everything is cleaned up at the end, also on failure or Ctrl-C.
set -euo pipefail
B=$(cd "$(dirname "$0")/.." && pwd)
for p in pvio-simhv pvio-ctl pvio-backd pvio-blkfront pvio-ringbench; do
	[ -x "$B/$p" ] || { echo "demo: $B/$p missing: build first (make)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "demo: needs root (loop devices, mounts, namespaces)" >&2; exit 1; }
export PVIO_SIMHV="$B/pvio-simhv"

W=$(mktemp -d /tmp/pvio-demo.XXXXXX)
MNT=$W/fuse DISKMNT=$W/ext4 NS=pvio-demo-$$
BACKD=""; FRONT=""; NETFRONT=""; LOOP=""
ctl() { "$B/pvio-ctl" -w "$W" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
	set +e
	mountpoint -q "$DISKMNT" 2>/dev/null && umount "$DISKMNT"
	[ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
	mountpoint -q "$MNT" 2>/dev/null && fusermount3 -u "$MNT" 2>/dev/null
	[ -n "$FRONT" ] && kill "$FRONT" 2>/dev/null && wait "$FRONT" 2>/dev/null
	[ -n "$NETFRONT" ] && kill "$NETFRONT" 2>/dev/null && wait "$NETFRONT" 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	[ -n "$BACKD" ] && kill -TERM "$BACKD" 2>/dev/null && wait "$BACKD" 2>/dev/null
	ctl world stop >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "A sim world: pvio-simhv plays the hypervisor (grants, event channels, xenstore)"
ctl world start
ctl create guest1 >/dev/null
ctl list

say "A disk for guest1: a 512 MiB sparse file in dom0, served by pvio-backd"
truncate -s 512M "$W/disk.img"
ctl vbd-attach guest1 "$W/disk.img" --vdev xvda >/dev/null
"$B/pvio-backd" -p "sim:$W" >"$W/backd.log" 2>&1 &
BACKD=$!
for _ in $(seq 100); do [ -S "$W/backd.sock" ] && break; sleep 0.05; done

say "Inside guest1: pvio-blkfront exports xvda through FUSE"
mkdir -p "$MNT" "$DISKMNT"
ctl run guest1 -- "$B/pvio-blkfront" fuse "$MNT" --vdev xvda --queues 2 \
	>"$W/blkfront.log" 2>&1 &
FRONT=$!
for _ in $(seq 200); do [ -e "$MNT/xvda" ] && break; sleep 0.05; done
[ -e "$MNT/xvda" ] || { cat "$W/blkfront.log"; exit 1; }
ctl devices
LOOP=$(losetup -f --show "$MNT/xvda")
echo "loop device on the PV disk: $LOOP"

say "mkfs.ext4, mount, copy files, unmount, fsck -f: all through the PV path"
mkfs.ext4 -q -F "$LOOP"
mount "$LOOP" "$DISKMNT"
head -c 64M /dev/urandom >"$W/random.bin"
cp "$W/random.bin" "$DISKMNT/"
cp -r /usr/share/doc/e2fsprogs "$DISKMNT/" 2>/dev/null || true
SUM=$(sha256sum <"$W/random.bin" | cut -d' ' -f1)
sync
df -h "$DISKMNT" | tail -1
umount "$DISKMNT"
fsck.ext4 -f -n "$LOOP"
losetup -d "$LOOP"; LOOP=""
fusermount3 -u "$MNT"
wait "$FRONT"; FRONT=""

say "dom0 reads the same bytes from the backing file"
LOOP=$(losetup -f --show -r "$W/disk.img")
mount -o ro "$LOOP" "$DISKMNT"
GOT=$(sha256sum <"$DISKMNT/random.bin" | cut -d' ' -f1)
umount "$DISKMNT"; losetup -d "$LOOP"; LOOP=""
echo "sha256 written in the guest: $SUM"
echo "sha256 read in dom0:         $GOT"
[ "$SUM" = "$GOT" ] || { echo "demo: MISMATCH" >&2; exit 1; }

if [ -x "$B/pvio-netfront" ]; then
	say "A network interface for guest1: netfront TAP in the guest's namespace"
	ctl vif-attach guest1 >/dev/null
	ip netns add "$NS"
	ip netns exec "$NS" ip link set lo up
	for _ in $(seq 100); do ip link show vif1.0 >/dev/null 2>&1 && break; sleep 0.05; done
	ip addr add 10.77.0.1/24 dev vif1.0
	ip netns exec "$NS" "$B/pvio-ctl" -w "$W" run guest1 -- \
		"$B/pvio-netfront" --ifname eth0 >"$W/netfront.log" 2>&1 &
	NETFRONT=$!
	for _ in $(seq 200); do ip netns exec "$NS" ip link show eth0 >/dev/null 2>&1 && break; sleep 0.05; done
	ip netns exec "$NS" ip addr add 10.77.0.2/24 dev eth0
	ip netns exec "$NS" ip link set eth0 up
	ctl devices
	say "guest1 pings dom0 over the PV path"
	ip netns exec "$NS" ping -c 3 -W 2 10.77.0.1
	say "guest1 sends a 32 MiB file to dom0 over TCP (nc), checksummed"
	head -c 32M /dev/urandom >"$W/net.bin"
	nc -d -l -p 7777 >"$W/net.recv" 2>"$W/nc.err" &
	NC=$!
	sleep 0.3
	ip netns exec "$NS" nc -q 1 10.77.0.1 7777 <"$W/net.bin"
	wait $NC
	echo "sent:     $(sha256sum <"$W/net.bin" | cut -d' ' -f1)"
	echo "received: $(sha256sum <"$W/net.recv" | cut -d' ' -f1)"
	cmp -s "$W/net.bin" "$W/net.recv" || { echo "demo: MISMATCH" >&2; cat "$W/nc.err" >&2; exit 1; }
fi

say "pvio-backd's counters (pvio-ctl stats)"
ctl stats

say "Ring benchmark: frontend domU and backend dom0 as two processes, sim event channels"
"$B/pvio-ringbench" --sim="$W" -m spin,event -b 32 -p 4 -t 300 -r 1 --idle-ms 200
say "Done: everything below $W is cleaned up"
