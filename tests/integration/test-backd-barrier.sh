#!/bin/bash
# SPDX-License-Identifier: MIT
# A barrier keeps its order however full the worker's submission queue is.
# A file target sends a barrier write as one linked chain: fsync, the
# write, fsync. worker_sqe() submits what is queued when the queue is
# full; a chain cut there loses its order across the cut (the write may
# reach the disk before the flush that must precede it, or after the one
# that must follow it). That takes a round in which the other queues of
# the worker start about as many requests as the queue holds (1024): here
# the queue is shrunk to 4 entries (PVIO_TEST_SQ_ENTRIES) and 2 no-ops are
# queued before each chain (PVIO_TEST_CHAIN_FILL), as other queues'
# entries would be. A guest writes 200 barriers to a file on t-hangfs,
# which logs the order its writes and fsyncs begin and end in: each
# barrier must be "F f W w F f", nothing overlapping.
. "$(dirname "$0")/lib.sh"
BLK="$B/tests/integration/t-blkclient"
t_hangfs_need

t_world_up
MNT="$W/mnt"
mkdir "$MNT"
T_EXTRA_CLEANUP="fusermount3 -u '$MNT' 2>/dev/null"
truncate -s 16M "$W/bar.img"
T_HANGFS_ORDER="$W/order" t_hangfs "$W/bar.img" "$W/hang" "$MNT"

ctl create gb >/dev/null || t_fail "create"
ctl vbd-attach gb "$MNT/disk" >/dev/null || t_fail "attach"
PVIO_TEST_SQ_ENTRIES=4 PVIO_TEST_CHAIN_FILL=2 t_backd_up -w 1
t_wait_states gb 51712 "Initialising InitWait"
: >"$W/order"
"$PVIO_CTL" -w "$W" run gb -- "$BLK" 51712 barriers 200 >"$W/gb.out" 2>&1 ||
	t_fail "barriers: $(cat "$W/gb.out")"
grep -q "OK 200 barriers" "$W/gb.out" || t_fail "barriers: $(cat "$W/gb.out")"
# six events per barrier
bad=$(awk '{ ev = ev $1 " " }
	END {
		k = split(ev, e, " "); b = 0; bad = 0
		for (i = 1; i <= k; i += 6) {
			s = e[i]
			for (j = 1; j < 6; j++)
				s = s " " e[i + j]
			if (s != "F f W w F f") { bad++; if (bad == 1) first = b ": " s }
			b++
		}
		print bad " of " b " barriers out of order (the first: barrier " first ")"
	}' "$W/order")
case $bad in
"0 of 200 "*) ;;
*) t_fail "$bad" ;;
esac
kill -0 "$BACKD_PID" || t_fail "pvio-backd died"
t_pass "200 barriers, each after 2 entries queued in a 4-entry submission queue: each flush, write, flush in order"
exit 0
