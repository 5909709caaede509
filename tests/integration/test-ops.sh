#!/bin/bash
# SPDX-License-Identifier: MIT
# What an operator runs against pvio-backd, as separate processes:
#  - pvio-ctl's exit status: 2 for a bad command line, 1 at runtime (a
#    missing image, a device the backend fails: vif-attach to a missing
#    bridge says "failed" and exits 1; vbd-attach says "ready");
#  - stats --json for targets with hostile names (quotes, backslashes,
#    control characters, non-UTF-8 bytes), parsed back by python's json;
#  - stats --prometheus, checked by a strict parser of the text format;
#  - the text columns say read/written;
#  - top -b -n N while a guest does I/O: IOPS, MB/s, latency, queue depth.
. "$(dirname "$0")/lib.sh"
CLIENT="$B/tests/integration/t-blkclient"
command -v python3 >/dev/null || t_skip "no python3"

t_world_up
ctl create g1 >/dev/null && ctl create g2 >/dev/null || t_fail "create"
# the failed vif below keeps its TAP (persistent) past pvio-backd's SIGTERM
# (a failed device stays until the toolstack removes it): not for the
# tests after this one
G1=$(ctl list | awk '$2 == "g1" { print $1 }')
T_EXTRA_CLEANUP="ip link del vif${G1:-1}.7 2>/dev/null"
t_backd_up

# ---- exit status --------------------------------------------------------------
ctl vbd-attach g1 "$W/missing.img" >/dev/null 2>"$W/err"
rc=$?
[ $rc -eq 1 ] || t_fail "a missing image: exit $rc, want 1: $(cat "$W/err")"
grep -q "missing.img" "$W/err" || t_fail "a missing image: '$(cat "$W/err")'"
ctl vbd-attach g1 "$W/x.img" --mode x >/dev/null 2>&1
[ $? -eq 2 ] || t_fail "bad --mode: not exit 2"
ctl vbd-attach g1 "$W/x.img" --timeout 0 >/dev/null 2>&1
[ $? -eq 2 ] || t_fail "bad --timeout: not exit 2"
if [ "$(id -u)" = 0 ] && [ -c /dev/net/tun ]; then
	ctl vif-attach g1 --devid 7 --bridge nosuchbr$$ >/dev/null 2>"$W/err"
	rc=$?
	[ $rc -eq 1 ] || t_fail "vif-attach to a missing bridge: exit $rc, want 1"
	grep -q "failed" "$W/err" || t_fail "vif-attach: '$(cat "$W/err")' lacks 'failed'"
	t_log "vif-attach to a missing bridge: $(cat "$W/err")"
fi
truncate -s 16M "$W/plain.img"
ctl vbd-attach g1 "$W/plain.img" --vdev xvda >"$W/out" 2>"$W/err" ||
	t_fail "vbd-attach: $(cat "$W/err")"
grep -q "ready" "$W/err" || t_fail "vbd-attach did not say ready: $(cat "$W/err")"
ctl vbd-attach g1 "$W/plain.img" --vdev xvda >/dev/null 2>&1
[ $? -eq 1 ] || t_fail "a second xvda: not exit 1"
t_pass "exit status: 2 for bad command lines, 1 at runtime; attaches wait and say which"

# ---- JSON with hostile file names ------------------------------------------------
i=0
python3 - "$W" >"$W/names" <<'PYEOF'
import os, sys
d = os.fsencode(sys.argv[1])
names = [b'q"uote.img', b'back\\slash.img', b'ctl\x01\x1f\x7f.img',
	 b'bad\xff\xfeutf8.img', b'half\xe2\x82.img',
	 b'snow\xe2\x98\x83.img', b'tab\there.img', b'\\u0022.img']
for n in names:
	p = d + b'/' + n
	with open(p, 'wb') as f:
		f.truncate(1 << 20)
	sys.stdout.buffer.write(p.hex().encode() + b'\n')
PYEOF
vds=(b c d e f g h i j k l m)
while read -r hex; do
	f=$(printf '%s' "$hex" | python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read()))')
	ctl vbd-attach g2 "$f" --vdev "xvd${vds[$i]}" >/dev/null 2>"$W/err" ||
		t_fail "attach a hostile name: $(cat "$W/err")"
	i=$((i + 1))
done <"$W/names"
printf 'x' >"$W/nl
line.img"
ctl vbd-attach g2 "$W/nl
line.img" --vdev xvdp >/dev/null 2>"$W/err"
[ $? -eq 2 ] || t_fail "a newline in a target: not refused with exit 2: $(cat "$W/err")"
grep -q "newline" "$W/err" || t_fail "a newline in a target: '$(cat "$W/err")'"
ctl stats --json >"$W/stats.json" || t_fail "stats --json"
python3 - "$W/stats.json" "$W/names" <<'PYEOF' || t_fail "JSON: $(head -c 2000 "$W/stats.json")"
import json, sys
raw = open(sys.argv[1], 'rb').read()
doc = json.loads(raw.decode('utf-8'))	# strict: valid UTF-8, valid JSON
want = {bytes.fromhex(l.strip()) for l in open(sys.argv[2]) if l.strip()}
got = set()
for d in doc['devices']:
	if d['kind'] != 'vbd' or d['domid'] != 2:
		continue
	if 'target_hex' in d:
		b = bytes.fromhex(d['target_hex'])
		assert '\ufffd' in d['target'], d
	else:
		b = d['target'].encode('utf-8')
	got.add(b)
	assert isinstance(d['bytes_read'], int) and isinstance(d['bytes_written'], int)
missing = want - got
assert not missing, 'names lost or mangled: %r' % missing
print('%d hostile names round-tripped' % len(want))
PYEOF
t_pass "stats --json: $i hostile file names parsed back exactly by python's json"

# ---- text columns ----------------------------------------------------------------
ctl stats >"$W/stats.txt" || t_fail "stats"
head -1 "$W/stats.txt" | grep -q "bytes_read.*bytes_written" ||
	t_fail "text columns: $(head -1 "$W/stats.txt")"
head -1 "$W/stats.txt" | grep -Eq "bytes_(in|out)" && t_fail "in/out columns remain"

# ---- top while a guest does I/O -----------------------------------------------------
"$PVIO_CTL" -w "$W" run g1 -- "$CLIENT" 51712 io 20000 >"$W/io.out" 2>&1 &
IOPID=$!
T_PIDS="$T_PIDS $IOPID"
ctl top -b -n 3 -d 0.5 >"$W/top.out" 2>"$W/err" || t_fail "top: $(cat "$W/err")"
wait $IOPID || t_fail "io: $(cat "$W/io.out")"
python3 - "$W/top.out" <<'PYEOF' || t_fail "top: $(cat "$W/top.out")"
import sys
reports = [r for r in open(sys.argv[1]).read().split('\n\n') if r.strip()]
assert len(reports) == 3, 'want 3 reports, got %d' % len(reports)
busy = 0
for r in reports:
	lines = r.splitlines()
	assert lines[0].startswith('pvio-ctl top'), lines[0]
	hdr = lines[1].split()
	for col in ('IOPS', 'RD_MB/s', 'WR_MB/s', 'LAT_P50', 'LAT_P99', 'QD',
		    'NOTIF/REQ', 'ERR/s'):
		assert col in hdr, col
	rows = [dict(zip(hdr, l.split())) for l in lines[2:]]
	g1 = [x for x in rows if x['DOM'] == '1' and x['DEV'] == '51712']
	assert len(g1) == 1, rows
	x = g1[0]
	if float(x['IOPS']) > 0:
		busy += 1
		assert float(x['RD_MB/s']) + float(x['WR_MB/s']) > 0, x
		assert x['LAT_P50'].endswith('us') or x['LAT_P50'].endswith('ms'), x
		assert float(x['QD']) > 0, x
		float(x['NOTIF/REQ'])
assert busy >= 1, 'no report saw the I/O'
print('top: %d reports, %d with I/O' % (len(reports), busy))
PYEOF
t_pass "top -b -n 3: IOPS, MB/s, latency p50/p99, queue depth, notifications per request"

# ---- Prometheus text format, parsed strictly ---------------------------------------
ctl stats --prometheus >"$W/prom.txt" || t_fail "stats --prometheus"
python3 "$S/tests/integration/promcheck.py" "$W/prom.txt" ||
	t_fail "prometheus format: $(head -60 "$W/prom.txt")"
grep -q '^pvio_device_read_bytes_total{kind="vbd",domid="1",devid="51712"} [1-9]' \
	"$W/prom.txt" || t_fail "no bytes read for g1's xvda"
t_pass "stats --prometheus: a strict parse of the text exposition format"

# ---- systemd readiness: READY=1 once every known device is re-attached -------------
"$PVIO_CTL" -w "$W" run g1 -- "$CLIENT" 51712 connect >"$W/hold" 2>&1 &
HOLD=$!
T_PIDS="$T_PIDS $HOLD"
t_wait_states g1 51712 "Connected Connected"
t_notify_listen "$W/notify.sock" "$W/notify.log"
t_backd_down
NOTIFY_SOCKET="$W/notify.sock" t_backd_up
wait $T_NOTIFY_PID || t_fail "no READY=1: $(cat "$W/notify.log")"
grep -q "re-attached" "$W/backd.log" || t_fail "the device was not re-attached"
# the last STATUS before READY=1 (the listener stops there): the first
# one comes with the startup line, before the re-attaches, which run off
# the main thread
st=$(grep "^STATUS=" "$W/notify.log" | tail -1)
echo "$st" | grep -Eq "STATUS=[0-9]+ devices?: [1-9][0-9]* connected" ||
	t_fail "STATUS before READY=1 does not show the re-attached device: $(cat "$W/notify.log")"
[ "$(t_states g1 51712)" = "Connected Connected" ] || t_fail "states $(t_states g1 51712)"
kill $HOLD 2>/dev/null
t_pass "sd_notify: READY=1 after the live device was re-attached ($st)"
