#!/bin/bash
# SPDX-License-Identifier: MIT
# Per-device limits, set by the toolstack at any time (pvio-ctl):
#  - a vbd's pvio-iops-limit and pvio-bytes-limit hold its requests back
#    (they wait in the ring, none is refused or lost), indirect requests
#    (more than 11 segments) as any other;
#  - a vif's `rate` (BYTES,USECS, netback's credit scheduler) holds the
#    guest's frames back the same way;
#  - lifting a limit lets the device run at full speed again.
# The tolerance is about correctness (never above the limit by more than
# 5%, never starved below half of it); the precise figures come from
# pvio-bench (docs/benchmarks.md).
. "$(dirname "$0")/lib.sh"
BLK="$B/tests/integration/t-blkclient"
NET="$B/tests/integration/t-netclient"
command -v python3 >/dev/null || t_skip "no python3"

t_world_up
D=61
ctl create g1 --domid $D >/dev/null || t_fail "create"
truncate -s 64M "$W/d1.img"
ctl vbd-attach g1 "$W/d1.img" >/dev/null || t_fail "attach"
HAVE_TAP=0
if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ]; then
	ctl vif-attach g1 >/dev/null || t_fail "vif-attach"
	HAVE_TAP=1
fi
t_backd_up

now_ns() { date +%s%N; }
# rate LIMIT AMOUNT T0 T1: fail unless AMOUNT/(T1-T0) is in [LIMIT/2, LIMIT*1.05]
check_rate() {
	python3 - "$@" <<'PY'
import sys
what, limit, amount, t0, t1 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rate = amount / ((t1 - t0) / 1e9)
print("%s: %.0f/s against a limit of %.0f/s (%.2fx)" % (what, rate, limit, rate / limit))
sys.exit(0 if limit * 0.5 <= rate <= limit * 1.05 else 1)
PY
}
stat_of() {	# KIND KEY: one device's counter
	ctl stats --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
dev = [x for x in d["devices"] if x["domid"] == int(sys.argv[1]) and x["kind"] == sys.argv[2]][0]
v = dev
for k in sys.argv[3].split("."):
	v = v[k]
print(v)' "$D" "$1" "$2"
}

# IOPS: 300 write+read pairs at QD 1 (600 requests) at 200/s: about 3 s
ctl vbd-limit g1 xvda --iops 200 || t_fail "vbd-limit"
T0=$(now_ns)
ctl run g1 -- "$BLK" 51712 io 300 >"$W/out" || t_fail "io: $(cat "$W/out")"
T1=$(now_ns)
R=$(stat_of vbd requests.read) && Wr=$(stat_of vbd requests.write)
[ $((R + Wr)) -ge 600 ] || t_fail "requests: $R reads, $Wr writes"
check_rate "vbd iops" 200 600 "$T0" "$T1" || t_fail "iops limit not kept"
t_pass "vbd pvio-iops-limit 200: kept, nothing refused"

# bytes: 110 pairs of 1..11 pages: 5.4 MB at 2 MiB/s, about 2.6 s
ctl vbd-limit g1 xvda --iops 0 --bytes 2M || t_fail "vbd-limit bytes"
B0=$(( $(stat_of vbd bytes_read) + $(stat_of vbd bytes_written) ))
T0=$(now_ns)
ctl run g1 -- "$BLK" 51712 io 110 >"$W/out" || t_fail "io: $(cat "$W/out")"
T1=$(now_ns)
B1=$(( $(stat_of vbd bytes_read) + $(stat_of vbd bytes_written) ))
check_rate "vbd bytes" 2097152 $((B1 - B0)) "$T0" "$T1" || t_fail "bytes limit not kept"
t_pass "vbd pvio-bytes-limit 2 MiB/s: kept"

# indirect requests count too (more than 11 segments: what Linux's
# blkfront sends for anything over 44 KiB; once charged nothing): 4 MiB
# in 128 KiB writes at 2 MiB/s, about 2 s
head -c 4M /dev/urandom >"$W/payload"
B0=$(stat_of vbd bytes_written)
T0=$(now_ns)
ctl run g1 -- "$B/pvio-blkfront" --indirect 32 write 0 <"$W/payload" >"$W/out" 2>&1 ||
	t_fail "indirect writes: $(cat "$W/out")"
T1=$(now_ns)
B1=$(stat_of vbd bytes_written)
[ $((B1 - B0)) -ge 4194304 ] || t_fail "indirect writes: $((B1 - B0)) bytes written"
check_rate "vbd bytes, indirect" 2097152 $((B1 - B0)) "$T0" "$T1" ||
	t_fail "bytes limit not kept for indirect requests"
t_pass "vbd pvio-bytes-limit 2 MiB/s: kept for indirect requests too"

# a discard moves no data: it counts as one sector, as in Linux's
# blk-throttle (its whole range once made this disk wait 32 s, a mkfs of a
# large one minutes)
T0=$(now_ns)
timeout 20 "$PVIO_CTL" -w "$W" run g1 -- "$BLK" 51712 discard-io 131072 >"$W/out" 2>&1 ||
	t_fail "a discard of the disk, then I/O, under a bytes limit: $(cat "$W/out")"
T1=$(now_ns)
[ $(( (T1 - T0) / 1000000 )) -lt 10000 ] ||
	t_fail "a discard and I/O took $(( (T1 - T0) / 1000000 )) ms under 2 MiB/s"
t_pass "a discard of the whole disk under a bytes limit: no wait for its range"

# lifted: the same work well above the limit
ctl vbd-limit g1 xvda --bytes 0 || t_fail "vbd-limit off"
T0=$(now_ns)
ctl run g1 -- "$BLK" 51712 io 110 >"$W/out" || t_fail "io: $(cat "$W/out")"
T1=$(now_ns)
[ $(( (T1 - T0) / 1000000 )) -lt 2000 ] || t_fail "still limited: $(( (T1 - T0) / 1000000 )) ms"
t_pass "limits lifted: full speed again"

[ $HAVE_TAP = 1 ] || t_skip "vif rate: needs root and /dev/net/tun"
# vif: 20000 bytes per 50 ms (400 kB/s); 800 frames of 1400 bytes, about 2.8 s
ctl vif-rate g1 0 20000,50000 || t_fail "vif-rate"
T0=$(now_ns)
ctl run g1 -- "$NET" 0 tx 800 1400 >"$W/out" || t_fail "tx: $(cat "$W/out")"
T1=$(now_ns)
check_rate "vif rate" 400000 $((800 * 1400)) "$T0" "$T1" || t_fail "vif rate not kept"
t_pass "vif rate 20000,50000: kept, every frame answered OKAY"
ctl vif-rate g1 0 off || t_fail "vif-rate off"
T0=$(now_ns)
ctl run g1 -- "$NET" 0 tx 800 1400 >"$W/out" || t_fail "tx: $(cat "$W/out")"
T1=$(now_ns)
[ $(( (T1 - T0) / 1000000 )) -lt 2000 ] || t_fail "vif still limited: $(( (T1 - T0) / 1000000 )) ms"
t_pass "vif rate off: full speed again"
ctl vif-rate g1 0 10Mb/s@20ms && grep -q . "$W/backd.log" || t_fail "xl-style rate"
ctl vif-rate g1 0 nonsense 2>/dev/null && t_fail "a bad rate was accepted"
t_pass "pvio-ctl vif-rate takes xl's form and refuses nonsense"
