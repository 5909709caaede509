#!/bin/bash
# SPDX-License-Identifier: MIT
# pvio-backd killed at any instant (docs/architecture.md, "Crash recovery"):
#  - a guest writes numbered, checksummed records, reads them back, discards
#    and flushes, in direct and indirect requests (up to 16 records) and
#    barriers, 48 requests in flight, on an O_DIRECT image; pvio-backd is
#    killed with SIGKILL at random moments 20 times and restarted with the
#    same arguments, and once aborts itself inside a worker's completion
#    path (PVIO_FAULT): every response answers a request in flight, once,
#    without error, every acknowledged record reads back intact, and the
#    frontend never sees a xenstore state change;
#  - the same with the responses' fault point (a response written, not
#    counted) and with mapped grants;
#  - in-flight records that are corrupt, from another boot, of other rings
#    or of a device that is gone are refused with a log line, and the
#    device reconnects cleanly.
. "$(dirname "$0")/lib.sh"
CLIENT="$B/tests/integration/t-blkclient"
command -v xenstore-read >/dev/null || t_skip "xenstore-utils not installed"

t_world_up
ctl create g1 >/dev/null || t_fail "create"
# the image on the test's file system (not tmpfs): O_DIRECT and real
# flushes, so that kills land with I/O in flight
truncate -s 16M "$W/d1.img"
ctl vbd-attach g1 "$W/d1.img" >/dev/null || t_fail "attach d1"
J="$W/journal"

# a pvio-backd that was killed and waited for: its pid may be reused, so it
# leaves the cleanup list
reaped() { T_PIDS=${T_PIDS/ $BACKD_PID/}; }

# kill pvio-backd (signal $1) $2 times at random moments, restarting it
kill_loop() {
	local sig=$1 n=$2 i
	for i in $(seq "$n"); do
		sleep "0.$(( (RANDOM % 40) + 5 ))"
		kill -"$sig" "$BACKD_PID" 2>/dev/null
		wait "$BACKD_PID" 2>/dev/null
		reaped
		[ "$(t_states g1 51712)" = "Connected Connected" ] ||
			t_fail "kill $i: states $(t_states g1 51712)"
		t_backd_up "${BACKD_ARGS[@]}"
	done
}

# one load run: the client until $W/stop, with kills meanwhile
crash_run() {	# name kills backd-args...
	local name=$1 kills=$2
	shift 2
	BACKD_ARGS=("$@")
	rm -f "$W/stop"
	t_backd_up "${BACKD_ARGS[@]}"
	"$PVIO_CTL" -w "$W" run g1 -- "$CLIENT" 51712 crash "$W/stop" --order 1 \
		>"$W/crash.out" 2>&1 &
	CPID=$!
	t_wait_states g1 51712 "Connected Connected"
	sleep 0.3
	kill_loop KILL "$kills"
	# once more: pvio-backd aborts itself in a worker's hot path
	if [ -n "${FAULT:-}" ]; then
		kill -TERM "$BACKD_PID"; wait "$BACKD_PID" 2>/dev/null
		reaped
		PVIO_FAULT="$FAULT" t_backd_up "${BACKD_ARGS[@]}"
		for _ in $(seq 200); do kill -0 "$BACKD_PID" 2>/dev/null || break; sleep 0.05; done
		kill -0 "$BACKD_PID" 2>/dev/null && t_fail "$name: the fault point $FAULT was not hit"
		wait "$BACKD_PID" 2>/dev/null
		[ $? -eq 134 ] || t_fail "$name: pvio-backd did not abort at $FAULT"
		reaped
		t_backd_up "${BACKD_ARGS[@]}"
	fi
	sleep 0.5
	touch "$W/stop"
	wait $CPID || t_fail "$name: $(cat "$W/crash.out")"
	grep -q "acknowledged records read back intact" "$W/crash.out" ||
		t_fail "$name: $(cat "$W/crash.out")"
	# indirect requests (up to 16 records) and barriers were in the mix
	grep -q "([1-9][0-9]* indirect, [1-9][0-9]* barriers)" "$W/crash.out" ||
		t_fail "$name: no indirect request or no barrier: $(grep 'crash load' "$W/crash.out")"
	t_wait_states g1 51712 "Closed Closed"
	grep -q "in-flight record kept" "$W/backd.log" ||
		t_fail "$name: no in-flight record was ever used"
	t_backd_down
	reaped
	[ -z "$(ls "$J")" ] || t_fail "$name: records left after a clean close: $(ls "$J")"
	# nothing stalled here: a report is false (a completion stamped after
	# the tick's clock read made the difference wrap: 18446744073 s)
	grep -q "no I/O completed for" "$W/backd.log" &&
		t_fail "$name: a stall reported under load: $(grep "no I/O completed for" "$W/backd.log" | head -1)"
	t_log "$name: $(grep 'crash load' "$W/crash.out" | sed 's/^OK //')"
	t_log "$name: $(grep -c 'in-flight record kept' "$W/backd.log") restarts with a record, $(grep -o '[0-9]* run again' "$W/backd.log" | awk '{s += $1} END {print s + 0}') requests run again"
	: >"$W/backd.log"
}

FAULT=blk-complete:3000 crash_run "SIGKILL x20 + SIGABRT in completion" 20
t_pass "20 SIGKILLs and one abort under load: one response per request, every acknowledged record intact"

FAULT=blk-respond:2500 crash_run "abort between a response and its count" 3
t_pass "abort with a response written but not counted: answered once"

FAULT= crash_run "mapped grants" 5 --grant-map
t_pass "5 SIGKILLs with mapped (persistent) grants"

# ---- records that must be refused --------------------------------------------------
# the guest drains and holds; pvio-backd is killed; its record is edited;
# a new pvio-backd refuses it (a log line), attaches at the live indices
# (nothing is in flight), and the guest carries on
refuse_case() {	# name edit expected-log
	local name=$1 edit=$2 want=$3 f
	rm -f "$W/stop" "$W/stop.pause"
	t_backd_up
	"$PVIO_CTL" -w "$W" run g1 -- "$CLIENT" 51712 crash "$W/stop" --order 1 \
		>"$W/crash.out" 2>&1 &
	CPID=$!
	t_wait_states g1 51712 "Connected Connected"
	sleep 0.3
	touch "$W/stop.pause"
	for _ in $(seq 200); do [ -e "$W/stop.paused" ] && break; sleep 0.05; done
	[ -e "$W/stop.paused" ] || t_fail "$name: the guest did not drain"
	kill -KILL "$BACKD_PID"; wait "$BACKD_PID" 2>/dev/null
	reaped
	f="$J/vbd-1-51712-q0.journal"
	[ -e "$f" ] || t_fail "$name: no record: $(ls "$J")"
	python3 - "$f" "$edit" <<'EOF' || t_fail "$name: editing the record"
import sys, zlib, struct
path, edit = sys.argv[1], sys.argv[2]
b = bytearray(open(path, 'rb').read())
# header: magic, version, crc, size; boot_id[40] at 16; ident at 56 (kind[8],
# domid, devid, queue, nr_pages, refs[16], port, nr_ents, req_size: 100
# bytes); req_cons at 192
def recrc():
    struct.pack_into('<I', b, 8, zlib.crc32(bytes(b[16:156])))
if edit == 'bytes':
    b[100] ^= 0x5a
elif edit == 'boot':
    b[16:20] = b'0000'; recrc()
elif edit == 'refs':
    struct.pack_into('<I', b, 80, struct.unpack_from('<I', b, 80)[0] + 1); recrc()
elif edit == 'indices':
    struct.pack_into('<I', b, 192, struct.unpack_from('<I', b, 192)[0] + 1000)
open(path, 'wb').write(b)
EOF
	t_backd_up
	for _ in $(seq 40); do grep -q "$want" "$W/backd.log" && break; sleep 0.05; done
	grep -q "$want" "$W/backd.log" || t_fail "$name: no log line '$want'"
	[ "$(t_states g1 51712)" = "Connected Connected" ] ||
		t_fail "$name: states $(t_states g1 51712)"
	rm -f "$W/stop.pause"
	sleep 0.5
	kill -0 "$BACKD_PID" || t_fail "$name: pvio-backd died"
	touch "$W/stop"
	wait $CPID || t_fail "$name: the guest failed after a refused record: $(cat "$W/crash.out")"
	t_wait_states g1 51712 "Closed Closed"
	t_backd_down
	reaped
	: >"$W/backd.log"
}
refuse_case "corrupt bytes" bytes "refusing the in-flight record: bad checksum"
refuse_case "another boot" boot "written before the host rebooted"
refuse_case "other ring refs" refs "of other rings"
refuse_case "inconsistent indices" indices "its consumed index disagrees"
t_pass "corrupt, other-boot, other-ring and inconsistent records refused with a log line; clean reconnect"

# a record of a device that no longer exists: removed at start
printf 'PVOJ' >"$J/vbd-9-51712-q0.journal"
printf 'junk' >"$J/not-a-record.journal"
t_backd_up
# swept before t_backd_up returns (it waits for the startup line)
grep -q "vbd-9-51712-q0.journal: removing the in-flight record of a device that no longer exists" \
	"$W/backd.log" || t_fail "record of a gone device not removed: $(cat "$W/backd.log")"
[ ! -e "$J/vbd-9-51712-q0.journal" ] && [ ! -e "$J/not-a-record.journal" ] ||
	t_fail "stale records left: $(ls "$J")"
t_backd_down
reaped
t_pass "records of devices that are gone are removed at start"
exit 0
