#!/bin/bash
# SPDX-License-Identifier: MIT
# pvio-backd's control socket and its one-daemon-per-host rule:
#  - a second pvio-backd on the same world is refused (exit 1, naming the
#    first) and changes nothing: the first's devices keep their states and
#    its control socket still answers;
#  - -s naming something that is not a socket: refused, and left alone;
#  - the socket of a killed pvio-backd is taken over by the next one;
#  - clients that connect and send nothing do not stall the main loop:
#    with 40 of them holding connections, pvio-ctl stats answers and a new
#    vbd is offered at once (each used to cost the loop a second);
#  - a burst of 60 clients sending their requests at once: all answered;
#    pvio-ctl top in a pipeline that closes ends;
#  - requests "stats" and "stats-json", with or without numbers, are
#    answered; malformed ones get an error line.
. "$(dirname "$0")/lib.sh"
command -v python3 >/dev/null || t_skip "no python3"

t_world_up
ctl create g1 --domid 5 >/dev/null || t_fail "create"
truncate -s 8M "$W/d1.img" "$W/d2.img"
ctl vbd-attach g1 "$W/d1.img" >/dev/null || t_fail "attach"
t_backd_up
t_wait_states 5 51712 "Initialising InitWait"

# a second daemon: it waits for the first to exit (10 s), then gives up
timeout 30 "$BACKD" -p "sim:$W" >"$W/second.log" 2>&1
rc=$?
[ $rc = 1 ] || t_fail "a second pvio-backd: exit $rc, want 1: $(tail -3 "$W/second.log")"
grep -q "another pvio-backd (pid $BACKD_PID) serves this sim world" "$W/second.log" ||
	t_fail "the second's message: $(tail -1 "$W/second.log")"
[ "$(grep -c . "$W/second.log")" = 2 ] ||
	t_fail "the second did more than wait and exit: $(cat "$W/second.log")"
[ "$(t_states 5 51712)" = "Initialising InitWait" ] ||
	t_fail "the first's device: $(t_states 5 51712)"
ctl stats >/dev/null || t_fail "the first's control socket after the second"
t_pass "a second pvio-backd: refused, exit 1, the first untouched"

# clients that never send a request
python3 - "$W/backd.sock" 40 >"$W/idle.out" 2>&1 <<'PY' &
import socket, sys, time
held = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    held.append(s)
print("holding", len(held), flush=True)
time.sleep(30)
PY
IDLE=$!
T_PIDS="$T_PIDS $IDLE"
for _ in $(seq 100); do grep -q holding "$W/idle.out" && break; sleep 0.05; done
grep -q "holding 40" "$W/idle.out" || t_fail "idle clients: $(cat "$W/idle.out")"
ctl stats >/dev/null || t_fail "pvio-ctl stats beside 40 idle clients"
ctl vbd-attach g1 "$W/d2.img" --vdev xvdb >/dev/null || t_fail "attach beside idle clients"
t_wait_states 5 51728 "Initialising InitWait" 3
kill "$IDLE" 2>/dev/null
wait "$IDLE" 2>/dev/null
t_pass "40 idle clients: stats answered, a new vbd offered at once"

# a burst of more clients than places, each sending its request as it
# connects: every one answered (those not read yet were once evicted)
python3 - "$W/backd.sock" 60 <<'PY' || t_fail "a burst of 60 clients"
import socket, sys
conns = []
for _ in range(int(sys.argv[2])):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(b"stats\n")
    conns.append(s)
for i, s in enumerate(conns):
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        out += b
    assert out.startswith(b"kind "), (i, out[:60])
PY
# pvio-ctl in a pipeline that closes: it ends (SIGPIPE), as any filter
timeout 10 sh -c '"$0" -w "$1" top -b | head -1 >/dev/null' "$PVIO_CTL" "$W" ||
	t_fail "pvio-ctl top -b | head -1 did not end"
t_pass "a burst of 60 clients all answered; pvio-ctl top | head ends"

python3 - "$W/backd.sock" <<'PY' || t_fail "requests"
import socket, sys
def ask(req, shut=False):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(req)
    if shut:
        s.shutdown(socket.SHUT_WR)
    out = b""
    while True:
        b = s.recv(65536)
        if not b:
            return out
        out += b
ok = [(b"stats\n", b"kind "), (b"stats", b"kind "), (b"stats 5\n", b"vbd "),
      (b"stats 5 51712\n", b"vbd "), (b"stats-json\n", b"{"),
      (b"stats-json -1 -1\n", b"{")]
bad = [b"statsx\n", b"stats-jsonx 5 51712\n", b"stats 4294967298 -1\n",
       b"stats 1 2 3\n", b"stats 5 \n", b"x" * 300, b"\n"]
for req, want in ok:
    out = ask(req, shut=not req.endswith(b"\n"))
    assert want in out and not out.startswith(b"error"), (req, out[:80])
for req in bad:
    out = ask(req)
    assert out.startswith(b"error: unknown request"), (req, out[:80])
PY
t_pass "requests: good ones answered, malformed ones an error line"

# the next daemon takes over a killed one's socket; never a plain file
kill -KILL "$BACKD_PID"
wait "$BACKD_PID" 2>/dev/null
[ -S "$W/backd.sock" ] || t_fail "the killed daemon's socket is gone already"
echo precious >"$W/precious"
timeout 30 "$BACKD" -p "sim:$W" -s "$W/precious" >"$W/third.log" 2>&1
rc=$?
[ $rc = 1 ] || t_fail "-s at a plain file: exit $rc, want 1"
grep -q "not a socket" "$W/third.log" || t_fail "-s at a plain file: $(tail -1 "$W/third.log")"
[ "$(cat "$W/precious")" = precious ] || t_fail "-s at a plain file: the file was touched"
"$BACKD" -p "sim:$W" >>"$W/backd.log" 2>&1 &
BACKD_PID=$!
T_PIDS="$T_PIDS $BACKD_PID"
for _ in $(seq 200); do ctl stats >/dev/null 2>&1 && break; sleep 0.05; done
ctl stats | grep -q "^vbd " || t_fail "the restarted daemon does not answer on the old socket"
t_backd_down
t_pass "a killed daemon's socket taken over; -s at a plain file refused, file intact"
