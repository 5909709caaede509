#!/bin/bash
# SPDX-License-Identifier: MIT
# pvio-backd's block path, as separate processes in a sim world:
#  - the handshake to Connected and back to Closed, and again (reconnect);
#  - a frontend process that dies: the backend notices, the next one connects;
#  - data integrity over ring wrap-around and multi-page rings;
#  - every malformed request answered with an error, the device still usable;
#  - hostile negotiation values, ring overflow, event storm, state flapping:
#    that one device is refused while a second guest's I/O runs on;
#  - read-only disk, flush/barrier/discard, online resize;
#  - a domU cannot read or write another domain's xenstore area;
#  - SIGTERM with writes in flight: nothing acknowledged is lost, and a
#    restarted pvio-backd re-attaches to the live rings.
. "$(dirname "$0")/lib.sh"
CLIENT="$B/tests/integration/t-blkclient"
command -v xenstore-read >/dev/null || t_skip "xenstore-utils not installed"

t_world_up
ctl create g1 >/dev/null && ctl create g2 >/dev/null || t_fail "create"
truncate -s 64M "$W/d1.img" && truncate -s 256M "$W/d2.img" && truncate -s 16M "$W/ro.img"
ctl vbd-attach g1 "$W/d1.img" >/dev/null || t_fail "attach d1"
ctl vbd-attach g2 "$W/d2.img" >/dev/null || t_fail "attach d2"
ctl vbd-attach g2 "$W/ro.img" --vdev xvdb --mode r >/dev/null || t_fail "attach ro"
t_backd_up
t_wait_states g1 51712 "Initialising InitWait"

# pvio-ctl execs the client: in the background, $! is the client itself
run() { "$PVIO_CTL" -w "$W" run "$1" -- "$CLIENT" "${@:2}"; }

# handshake, I/O across ring wrap-around, close; then reconnect
run g1 51712 io 300 >"$W/out" || t_fail "io: $(cat "$W/out")"
t_wait_states g1 51712 "Closed Closed"
run g1 51712 io 100 --order 4 >"$W/out" || t_fail "reconnect: $(cat "$W/out")"
t_pass "handshake to Connected and Closed, reconnect, 1- and 16-page rings"

# a frontend process killed while connected: the backend notices
"$PVIO_CTL" -w "$W" run g1 -- "$CLIENT" 51712 connect >"$W/out" 2>&1 &
CPID=$!
t_wait_states g1 51712 "Connected Connected"
kill -9 $CPID; wait $CPID 2>/dev/null
for _ in $(seq 60); do
	[ "$(t_states g1 51712 | cut -d' ' -f2)" = Closing ] && break; sleep 0.05
done
[ "$(t_states g1 51712 | cut -d' ' -f2)" = Closing ] || t_fail "backend did not notice the dead frontend: $(t_states g1 51712)"
run g1 51712 io 20 >"$W/out" || t_fail "reconnect after a dead frontend: $(cat "$W/out")"
t_pass "a dead frontend is noticed; the next one connects"

# a second, healthy guest keeps doing I/O while g1 misbehaves
run g2 51712 io 3000 >"$W/healthy" 2>&1 &
HPID=$!
for c in bad overflow storm "xs-hostile order" "xs-hostile protocol" \
	 "xs-hostile evtchn" "xs-hostile refs" "xs-hostile queues" \
	 "xs-hostile deadref" "flap 60" bad; do
	run g1 51712 $c >"$W/out" 2>&1 || t_fail "hostile '$c': $(cat "$W/out")"
done
wait $HPID || t_fail "the healthy guest failed while another misbehaved: $(cat "$W/healthy")"
grep -q "OK 3000 write+read" "$W/healthy" || t_fail "healthy guest: $(cat "$W/healthy")"
kill -0 "$BACKD_PID" || t_fail "pvio-backd died"
grep -q "broke the ring protocol" "$W/backd.log" || t_fail "ring overflow not logged"
t_pass "hostile frontend refused (malformed requests, values, overflow, storm, flapping); other guest unaffected"

run g2 51728 ro >"$W/out" || t_fail "read-only: $(cat "$W/out")"
run g2 51712 ops >"$W/out" || t_fail "ops: $(cat "$W/out")"
t_pass "read-only refusal; flush, barrier and discard"

run g1 51712 resize >"$W/out" 2>&1 &
RPID=$!
for _ in $(seq 200); do grep -q "waiting for a resize" "$W/out" && break; sleep 0.05; done
truncate -s 96M "$W/d1.img"
wait $RPID || t_fail "resize: $(cat "$W/out")"
t_pass "online resize announced to the connected frontend"

# xenstore isolation, through libxenstore as the guest
ctl run g1 -- xenstore-read /local/domain/2/name >/dev/null 2>&1 && t_fail "g1 read g2's area"
ctl run g1 -- xenstore-write /local/domain/0/backend/vbd/1/51712/params /etc/shadow \
	>/dev/null 2>&1 && t_fail "g1 wrote its backend's params"
ctl run g1 -- xenstore-write /local/domain/2/device/vbd/51712/state 6 \
	>/dev/null 2>&1 && t_fail "g1 wrote g2's device"
ctl run g1 -- xenstore-read /local/domain/1/name >/dev/null || t_fail "g1 cannot read its own name"
t_pass "a domU cannot read or write another domain's area"

ctl stats --json >"$W/stats.json" || t_fail "stats"
python3 - "$W/stats.json" <<'EOF' || t_fail "counters: $(cat "$W/stats.json")"
import json, sys
d = json.load(open(sys.argv[1]))
g2 = [x for x in d["devices"] if x["domid"] == 2 and x["devid"] == 51712][0]
assert g2["requests"]["write"] >= 3000 and g2["requests"]["read"] >= 3000, g2
assert g2["bytes_written"] > 0 and g2["bytes_read"] > 0, g2
assert g2["notifications_sent"] > 0 and g2["notifications_received"] > 0, g2
assert sum(g2["batch_sizes"].values()) == g2["passes"] > 0, g2
g1 = [x for x in d["devices"] if x["domid"] == 1][0]
assert g1["errors"]["bad_request"] >= 10 and g1["errors"]["unsupported"] >= 2, g1
EOF
t_pass "per-device counters readable with pvio-ctl stats"

# SIGTERM with writes in flight; a new pvio-backd re-attaches
N=40000
run g2 51712 stress $N "$W/acked" >"$W/stress" 2>&1 &
SPID=$!
for _ in $(seq 300); do
	[ "$(wc -l <"$W/acked" 2>/dev/null || echo 0)" -gt 2000 ] && break; sleep 0.01
done
t_backd_down
n=$(wc -l <"$W/acked")
[ "$n" -lt $N ] || t_fail "the writes were over before SIGTERM"
# every acknowledged write is in the image (block i holds i)
python3 - "$W/d2.img" "$W/acked" <<'EOF' || t_fail "acknowledged writes missing after SIGTERM"
import struct, sys
img = open(sys.argv[1], 'rb')
for line in open(sys.argv[2]):
    i = int(line)
    img.seek(i * 4096)
    v = struct.unpack('<Q', img.read(8))[0]
    if v != i:
        print("block %d holds %d" % (i, v)); sys.exit(1)
EOF
[ "$(t_states g2 51712)" = "Connected Connected" ] || t_fail "SIGTERM closed the device: $(t_states g2 51712)"
t_backd_up
wait $SPID || t_fail "stress after restart: $(cat "$W/stress")"
grep -q "re-attached" "$W/backd.log" || t_fail "no re-attach logged"
t_pass "SIGTERM with writes in flight: $n acknowledged, none lost; restart re-attached and finished all $N"
t_backd_down
exit 0
