#!/bin/bash
# SPDX-License-Identifier: MIT
# The chaos frontend: a randomized hostile guest (t-chaos: random and
# mutated blkif and netif requests, index games, bad grant refs, hostile
# values for every frontend key, state flapping, watch storms, dying
# mid-I/O and coming back) against pvio-backd for PVIO_CHAOS_SECONDS (20 by
# default), seeded by PVIO_CHAOS_SEED (a fixed one by default, "random"
# for a new draw; printed: a failing seed reproduces). Meanwhile a
# well-behaved neighbour writes and reads back checksummed blocks and sends
# frames, and must see no error; pvio-backd must stay up (no sanitizer
# report), and its fd count and RSS must not grow beyond a small bound.
# PVIO_CHAOS_VERBOSE=1 logs every episode.
. "$(dirname "$0")/lib.sh"
CHAOS="$B/tests/integration/t-chaos"
BLK="$B/tests/integration/t-blkclient"
NET="$B/tests/integration/t-netclient"
SECS=${PVIO_CHAOS_SECONDS:-20}
# a fixed seed by default (make check replays the same episodes: a red
# run is the code's doing, not the draw's); PVIO_CHAOS_SEED=random explores
SEED=${PVIO_CHAOS_SEED:-20261205}
[ "$SEED" = random ] && SEED=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
[ "$(id -u)" = 0 ] || t_skip "needs root (TAP devices)"
[ -c /dev/net/tun ] || t_skip "no /dev/net/tun"
t_log "chaos seed $SEED ($SECS s): PVIO_CHAOS_SEED=$SEED reproduces it"

# under ASan, freed memory waits in its quarantine (256 MB by default)
# before it is reused: RSS would measure the quarantine, not us
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=8"
t_world_up
D1=71 D2=72
ctl create g1 --domid $D1 >/dev/null && ctl create g2 --domid $D2 >/dev/null || t_fail "create"
truncate -s 16M "$W/d1.img" && truncate -s 64M "$W/d2.img" || t_fail "images"
ctl vbd-attach g1 "$W/d1.img" >/dev/null && ctl vbd-attach g2 "$W/d2.img" >/dev/null || t_fail "vbd-attach"
ctl vif-attach g1 >/dev/null && ctl vif-attach g2 >/dev/null || t_fail "vif-attach"
t_backd_up --workers 2
for g in g1 g2; do
	t_wait_states $g 51712 "Initialising InitWait"
	t_wait_states $g 0 "Initialising InitWait"
done
run() { "$PVIO_CTL" -w "$W" run "$1" -- "${@:2}"; }

# warm up: every path once, then the baseline
run g2 "$BLK" 51712 io 20 >"$W/out" 2>&1 || t_fail "neighbour blk: $(cat "$W/out")"
run g2 "$NET" 0 tx 20 1400 >"$W/out" 2>&1 || t_fail "neighbour net: $(cat "$W/out")"
fds() { ls "/proc/$BACKD_PID/fd" | wc -l; }
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$BACKD_PID/status"; }
FD0=$(fds) RSS0=$(rss_kb)
RSS_SLACK=$((16 * 1024))
grep -q 'libasan' "/proc/$BACKD_PID/maps" && RSS_SLACK=$((96 * 1024))

# the neighbour: verified I/O in rounds until the chaos ends
neighbour() {	# blk|net
	local n=0
	while [ ! -e "$W/stop" ]; do
		if [ "$1" = blk ]; then
			run g2 "$BLK" 51712 io 100 >"$W/n-$1" 2>&1 || { echo "round $n: $(cat "$W/n-$1")"; return 1; }
		else
			run g2 "$NET" 0 tx 200 1400 >"$W/n-$1" 2>&1 || { echo "round $n: $(cat "$W/n-$1")"; return 1; }
		fi
		n=$((n + 1))
	done
	echo "OK $n rounds"
}
neighbour blk >"$W/nb" 2>&1 &
NB=$!
neighbour net >"$W/nn" 2>&1 &
NN=$!

run g1 "$CHAOS" "$SECS" "$SEED" 51712 0 >"$W/chaos" 2>&1
CRC=$?
touch "$W/stop"
[ -n "${PVIO_CHAOS_VERBOSE:-}" ] && cat "$W/chaos" >&2
wait $NB; NBRC=$?
wait $NN; NNRC=$?
t_log "$(tail -1 "$W/chaos"); $(grep -c "index game" "$W/chaos") index games"
ctl stats --json >"$W/stats.json" 2>/dev/null && python3 - "$W/stats.json" $D1 <<'PY' >&2
import json, sys
for x in json.load(open(sys.argv[1]))["devices"]:
    if x["domid"] == int(sys.argv[2]):
        print("chaos guest's %s: %d connects, errors %s%s" % (x["kind"],
              x["connects"], x["errors"],
              (", drops %s" % x["drops"]) if "drops" in x else ""))
PY
[ $CRC = 0 ] || t_fail "seed $SEED: the chaos guest: $(tail -5 "$W/chaos")"
kill -0 "$BACKD_PID" 2>/dev/null || t_fail "seed $SEED: pvio-backd died: $(grep -A30 "ERROR: AddressSanitizer" "$W/backd.log" | head -40)"
grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$W/backd.log" &&
	t_fail "seed $SEED: sanitizer: $(grep -A30 "ERROR: AddressSanitizer\|runtime error:" "$W/backd.log" | head -40)"
[ $NBRC = 0 ] || t_fail "seed $SEED: the neighbour's block I/O failed: $(cat "$W/nb")"
[ $NNRC = 0 ] || t_fail "seed $SEED: the neighbour's frames failed: $(cat "$W/nn")"
t_pass "seed $SEED: pvio-backd up; the neighbour's verified I/O went on ($(tail -1 "$W/nb" | sed 's/OK //') of block I/O, $(tail -1 "$W/nn" | sed 's/OK //') of frames)"

# the chaos guest's devices back to Closed: what it held is released
run g1 "$BLK" 51712 close >/dev/null 2>&1
for _ in $(seq 40); do [ "$(fds)" -le $((FD0 + 4)) ] && break; sleep 0.1; done
FD1=$(fds) RSS1=$(rss_kb)
t_log "pvio-backd: fds $FD0 -> $FD1, RSS $RSS0 -> $RSS1 kB"
[ "$FD1" -le $((FD0 + 4)) ] || t_fail "seed $SEED: pvio-backd's fds grew from $FD0 to $FD1: $(ls -l /proc/$BACKD_PID/fd)"
[ "$RSS1" -le $((RSS0 + RSS_SLACK)) ] || t_fail "seed $SEED: pvio-backd's RSS grew from $RSS0 to $RSS1 kB"
t_pass "seed $SEED: pvio-backd's fds ($FD0 -> $FD1) and RSS ($RSS0 -> $RSS1 kB) bounded"

# and it still serves both guests
run g2 "$BLK" 51712 io 20 >"$W/out" 2>&1 || t_fail "neighbour after the chaos: $(cat "$W/out")"
run g1 "$BLK" 51712 io 20 >"$W/out" 2>&1 || t_fail "the chaos guest's disk, reconnected: $(cat "$W/out")"
t_pass "both guests' disks work after the chaos"
t_backd_down
