#!/bin/bash
# SPDX-License-Identifier: MIT
# pvio-bench blk on a remote disk, with the server or cluster this script
# starts (and stops) itself:
#   tools/bench-remote.sh nbd [pvio-bench blk options...]
#       nbdkit's memory plugin on a unix socket (pinned to CPU 1, as
#       pvio-backd and the fio baseline); pvio-backd and fio use the same
#       export
#   tools/bench-remote.sh rbd [pvio-bench blk options...]
#       a one-mon, one-OSD memstore Ceph cluster on loopback
#       (tests/integration/ceph-lib.sh), pinned to CPU 1 as nbdkit is;
#       two images of --size: one for pvio-backd (which holds its
#       exclusive lock), one for fio
# Either way the server has the same CPU in both runs of a pair: the one
# pvio-backd and fio run on (the guest has CPU 0, which fio leaves idle).
# Unpinned (PVIO_BENCH_SERVER_CPU=any), the server takes CPU 0 in fio's
# runs and shares it with the guest in pvio's.
# Run it from the build directory, under /work/tools/quiet for figures.
set -eu
kind=${1:-}
shift || true
B=$(pwd)
S=$(cd "$(dirname "$0")/.." && pwd)
size=64M
cpu=${PVIO_BENCH_SERVER_CPU:-1}
pin() {
	if [ "$cpu" = any ]; then "$@"; else taskset -c "$cpu" "$@"; fi
}
for a in "$@"; do
	case $a in --size) echo "bench-remote: the size is fixed ($size)" >&2; exit 2 ;; esac
done
d=$(mktemp -d "${TMPDIR:-/tmp}/pvio-bench-remote.XXXXXX")
pids=
# under set -e: a server's status from wait (143 after the kill) must not
# end the cleanup before the directory goes
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null || :; done
	if [ "$kind" = rbd ]; then ceph_down || :; fi
	rm -rf "$d"
}
trap cleanup EXIT
case $kind in
nbd)
	command -v nbdkit >/dev/null && command -v fio >/dev/null ||
		{ echo "bench-remote: needs nbdkit and fio (tools/install-deps.sh)" >&2; exit 2; }
	pin nbdkit --foreground --exit-with-parent --unix "$d/nbd.sock" \
		memory "$size" &
	pids=$!
	for _ in $(seq 100); do [ -S "$d/nbd.sock" ] && break; sleep 0.05; done
	"$B/pvio-bench" blk --target "nbd+unix:///?socket=$d/nbd.sock" \
		--size "$size" "$@"
	;;
rbd)
	command -v ceph-osd >/dev/null && command -v fio >/dev/null ||
		{ echo "bench-remote: needs ceph-mon, ceph-osd, ceph-common and fio" >&2; exit 2; }
	# shellcheck source=../tests/integration/ceph-lib.sh
	. "$S/tests/integration/ceph-lib.sh"
	# the mon and the OSD inherit it, and stay in our session: one
	# scheduling autogroup with pvio-backd and fio, as nbdkit is
	# (ceph-lib.sh's own session for each would give them half the CPU)
	CEPH_SETSID=
	aff=$(taskset -pc $$ | sed 's/.*: //')
	[ "$cpu" = any ] || taskset -pc "$cpu" $$ >/dev/null
	ceph_up "$d/ceph" 6790 || exit 1
	taskset -pc "$aff" $$ >/dev/null
	ceph osd pool create rbd 8 >/dev/null 2>&1
	rbd pool init rbd
	rbd create --size "$size" rbd/pvio
	rbd create --size "$size" rbd/fio
	# data in both, so that reads read something
	rbd bench --io-type write --io-size 4M --io-total "$size" rbd/pvio >/dev/null
	rbd bench --io-type write --io-size 4M --io-total "$size" rbd/fio >/dev/null
	"$B/pvio-bench" blk --target "rbd:rbd/pvio:conf=$CEPH_CONF" \
		--base "rbd:rbd/fio:conf=$CEPH_CONF" --size "$size" "$@"
	;;
*)
	echo "usage: tools/bench-remote.sh nbd|rbd [pvio-bench blk options]" >&2
	exit 2
	;;
esac
