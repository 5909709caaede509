#!/bin/bash
# SPDX-License-Identifier: MIT
# A device is an instance, not a name: the same vdev detached and attached
# again with another image, with the removal and the re-creation done back
# to back by one toolstack process (so that both often fall between two of
# pvio-backd's scans), many times; after each, the guest writes a block and
# it must land in the image attached at that time. The same for a vif: the
# re-created backend directory is probed afresh (feature-rx-copy offered)
# and the vif carries frames.
# PVIO_REATTACH_CYCLES (default 200) and PVIO_REATTACH_VIF_CYCLES (default
# 50) set the counts; the issue's figure is 1,000.
. "$(dirname "$0")/lib.sh"
BLK="$B/tests/integration/t-blkclient"
NET="$B/tests/integration/t-netclient"
RE="$B/tests/integration/t-reattach"
N=${PVIO_REATTACH_CYCLES:-200}
NV=${PVIO_REATTACH_VIF_CYCLES:-50}
command -v python3 >/dev/null || t_skip "no python3"

t_world_up
export PVIO_PLATFORM="sim:$W"
ctl create g1 >/dev/null || t_fail "create"
D=$(ctl list | awk '$2 == "g1" { print $1 }')
[ -n "$D" ] || D=1
# the vif's TAP outlives pvio-backd's SIGTERM (persistent, for a restart
# to reuse): not for the next test
T_EXTRA_CLEANUP="ip link del vif$D.0 2>/dev/null"
for k in 0 1 2; do truncate -s $(( (N + 16) * 4096 )) "$W/img$k"; done
ctl vbd-attach g1 "$W/img0" >/dev/null || t_fail "attach"
t_backd_up
run() { "$PVIO_CTL" -w "$W" run g1 -- "$@"; }

for i in $(seq 1 "$N"); do
	"$RE" "$D" vbd 51712 "$W/img$((i % 3))" || t_fail "cycle $i: re-attach"
	run "$BLK" 51712 mark "$i" >"$W/out" 2>&1 || t_fail "cycle $i: $(cat "$W/out")"
done
python3 - "$W" "$N" <<'PY' || t_fail "writes landed in the wrong image"
import sys
w, n = sys.argv[1], int(sys.argv[2])
imgs = [open("%s/img%d" % (w, k), "rb").read() for k in range(3)]
bad = 0
for i in range(1, n + 1):
    want = (i & 0xff) | 1
    for k in range(3):
        b = imgs[k][i * 4096 + 4095]
        if k == i % 3 and b != want:
            print("cycle %d: its image img%d does not hold the write" % (i, k))
            bad += 1
        elif k != i % 3 and b != 0:
            print("cycle %d: img%d (not attached then) holds %d" % (i, k, b))
            bad += 1
sys.exit(1 if bad else 0)
PY
n_re=$(grep -c "removed and re-created" "$W/backd.log")
t_pass "$N detach/attach cycles of one vdev with another image each: every write in the image attached at the time ($n_re re-creations seen within one scan)"

if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ]; then
	ctl vif-attach g1 --mac 00:16:3e:00:00:01 >/dev/null || t_fail "vif-attach"
	for i in $(seq 1 "$NV"); do
		"$RE" "$D" vif 0 "$(printf '00:16:3e:00:%02x:%02x' $((i / 256)) $((i % 256)))" ||
			t_fail "vif cycle $i: re-attach"
		run "$NET" 0 tx 1 64 >"$W/out" 2>&1 || t_fail "vif cycle $i: $(cat "$W/out")"
	done
	t_pass "$NV vif detach/attach cycles: each probed afresh and carrying frames"
else
	t_log "SKIP (part): vif cycles need root and /dev/net/tun"
fi
kill -0 "$BACKD_PID" || t_fail "pvio-backd died"
t_backd_down
exit 0
