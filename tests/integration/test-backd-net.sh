#!/bin/bash
# SPDX-License-Identifier: MIT
# pvio-backd's network path with a raw netif client, as separate processes:
#  - the TAP vif<dom>.<dev> is created, in a bridge when asked, and removed;
#    it outlives pvio-backd (SIGTERM, SIGKILL) with its bridge and address;
#    a vif moved to another bridge while pvio-backd was down has its TAP
#    moved there when pvio-backd comes back; a TAP deleted under a
#    connected vif fails that vif (it used to spin its worker), the other
#    vif goes on; a two-queue frontend with one event channel for queue 0
#    and split ones for queue 1 gets its rx events on each queue's own
#    port (the layout was once taken per vif, from the last queue read);
#  - tx: single- and multi-slot frames arrive whole on the vif;
#  - rx: frames injected on the vif reach the guest whole (multi-slot too);
#    a frontend without feature-sg has its MTU lowered to 1500 at connect,
#    and a larger frame is dropped and counted (it was handed over in
#    slots such a guest cannot put together);
#  - every malformed tx packet is dropped with error responses and counted,
#    and the vif goes on; every fatal one disconnects that vif only, while a
#    second guest's traffic continues; the next connection works;
#  - a guest that posts no rx buffers: packets wait, then drop (XSA-392),
#    memory bounded, and it recovers.
. "$(dirname "$0")/lib.sh"
CLIENT="$B/tests/integration/t-netclient"
PKT="$S/tests/integration/pkt.py"
[ "$(id -u)" = 0 ] || t_skip "needs root (TAP devices)"
[ -c /dev/net/tun ] || t_skip "no /dev/net/tun"
command -v python3 >/dev/null || t_skip "no python3"
BR=pviotbr$$ BR2=pviotbs$$
T_EXTRA_CLEANUP="ip link del $BR 2>/dev/null; ip link del $BR2 2>/dev/null; ip link del vif42.0 2>/dev/null; ip link del vif43.0 2>/dev/null"

t_world_up
# domids of their own: TAP names (vif<domid>.<devid>, as on Xen) are
# host-wide, other worlds may run beside this one
D1=41 D2=42
ctl create g1 --domid $D1 >/dev/null && ctl create g2 --domid $D2 >/dev/null || t_fail "create"
ip link add "$BR" type bridge 2>/dev/null || t_skip "cannot create a bridge"
ip link set "$BR" up
ctl vif-attach g1 >/dev/null || t_fail "vif-attach g1"
ctl vif-attach g2 --bridge "$BR" >/dev/null || t_fail "vif-attach g2"
t_backd_up
t_wait_states g1 0 "Initialising InitWait"
t_wait_states g2 0 "Initialising InitWait"
ip link show vif$D1.0 >/dev/null 2>&1 || t_fail "no vif$D1.0"
[ "$(cat /sys/class/net/vif$D2.0/master/ifindex 2>/dev/null)" = \
  "$(cat /sys/class/net/$BR/ifindex)" ] || t_fail "vif$D2.0 is not in $BR"
t_pass "TAP vif$D1.0 created, vif$D2.0 in bridge $BR"

run() { "$PVIO_CTL" -w "$W" run "$1" -- "$CLIENT" "${@:2}"; }
# The carrier goes on before the backend says Connected, but the kernel
# swaps in the vif's qdisc later, from its link-watch work (delayed up to a
# second after recent flaps): until then a frame sent on the vif is dropped.
wait_oper_up() {
	for _ in $(seq 200); do
		[ "$(cat /sys/class/net/$1/operstate 2>/dev/null)" = up ] && return 0
		sleep 0.05
	done
	t_fail "$1: operstate $(cat /sys/class/net/$1/operstate 2>/dev/null), want up"
}

# tx: the guest connects, the vif comes up (as for rx below: frames written
# before its qdisc is in place are dropped), the capture starts, then the
# guest sends; the capture's timeout counts from then, not from connecting
for size in 60 1400 5000 30000; do
	rm -f "$W/tx.go"
	run g1 0 tx 50 $size "$W/tx.go" >"$W/out" &
	TPID=$!
	t_wait_states g1 0 "Connected Connected"
	wait_oper_up vif$D1.0
	# not the last round's file: its "ready" would be seen before the
	# new capture's shell truncates it, and the frames sent unheard
	rm -f "$W/cap"
	python3 "$PKT" capture vif$D1.0 50 >"$W/cap" &
	CAP=$!
	for _ in $(seq 200); do grep -q ready "$W/cap" && break; sleep 0.05; done
	grep -q ready "$W/cap" || t_fail "tx $size: the capture did not start"
	touch "$W/tx.go"
	wait $TPID || t_fail "tx $size: $(cat "$W/out")"
	wait $CAP
	grep -q "captured 50 sizes \[$size\]" "$W/cap" || t_fail "tx $size: $(cat "$W/cap")"
done
t_pass "tx: 50 frames each of 60, 1400, 5000 and 30000 bytes (up to 15 slots) arrive whole"

ip link set vif$D1.0 mtu 9000
run g1 0 rx 30 >"$W/out" 2>&1 &
RPID=$!
t_wait_states g1 0 "Connected Connected"
wait_oper_up vif$D1.0
python3 "$PKT" inject vif$D1.0 10 60
python3 "$PKT" inject vif$D1.0 10 1400
python3 "$PKT" inject vif$D1.0 10 9000
wait $RPID || t_fail "rx: $(cat "$W/out")"
[ "$(grep -c "^RX 9000 bytes" "$W/out")" = 10 ] || t_fail "rx: $(cat "$W/out")"
t_pass "rx: 60, 1400 and 9000-byte frames (3 slots) reach the guest whole"

# a frontend without feature-sg takes a frame in one slot: its vif's MTU
# is lowered to 1500 at connect (netback's rule), and a larger frame, sent
# once the MTU was raised again by hand, is dropped and counted, not handed
# over in slots the guest cannot put together
drops() {
	ctl stats --json | python3 -c 'import json, sys
print([x for x in json.load(sys.stdin)["devices"] if x["domid"] == '"$1"'][0]["drops"]["'"$2"'"])'
}
TB0=$(drops $D1 too_big)
T_NO_SG=1 run g1 0 rx 10 >"$W/out" 2>&1 &
RPID=$!
t_wait_states g1 0 "Connected Connected"
wait_oper_up vif$D1.0
mtu=$(cat /sys/class/net/vif$D1.0/mtu)
[ "$mtu" = 1500 ] || t_fail "no feature-sg: MTU $mtu at connect, want 1500"
ip link set vif$D1.0 mtu 9000
python3 "$PKT" inject vif$D1.0 5 9000
python3 "$PKT" inject vif$D1.0 10 1400
wait $RPID || t_fail "rx without sg: $(cat "$W/out")"
[ "$(grep -c "^RX 1400 bytes" "$W/out")" = 10 ] ||
	t_fail "rx without sg: $(cat "$W/out")"
tb=$(( $(drops $D1 too_big) - TB0 ))
[ $tb -ge 5 ] || t_fail "rx without sg: $tb frames counted too big, want 5"
t_pass "no feature-sg: MTU 9000 lowered to 1500 at connect; 9000-byte frames dropped and counted, 1400-byte ones delivered"

# g2 sends all along; g1 misbehaves
run g2 0 tx 20000 200 >"$W/healthy" 2>&1 &
HPID=$!
for k in short chain slots19 gref; do
	run g1 0 drop $k >"$W/out" 2>&1 || t_fail "drop $k: $(cat "$W/out")"
done
for k in cross slots21 extra gso0 unpublished overflow; do
	run g1 0 fatal $k >"$W/out" 2>&1 || t_fail "fatal $k: $(cat "$W/out")"
done
run g1 0 tx 5 100 >"$W/out" || t_fail "reconnect after fatal: $(cat "$W/out")"
wait $HPID || t_fail "g2 stopped while g1 misbehaved: $(cat "$W/healthy")"
grep -q "OK 20000 frames" "$W/healthy" || t_fail "g2: $(cat "$W/healthy")"
kill -0 "$BACKD_PID" || t_fail "pvio-backd died"
t_pass "malformed tx packets dropped, fatal ones disconnect only that vif; the other guest's 20000 frames went on"

# no rx buffers (no rx-notify: 30 ms drain): held, then dropped; the guest
# posts buffers only once the drops are counted, however slow the machine
rx_stalls() {
	ctl stats --json | python3 -c 'import json, sys
print([x for x in json.load(sys.stdin)["devices"] if x["domid"] == 41][0]["drops"]["rx_stall"])'
}
S0=$(rx_stalls)
T_NO_RX_NOTIFY=1 run g1 0 noroom "$W/go" >"$W/out" 2>&1 &
RPID=$!
t_wait_states g1 0 "Connected Connected"
wait_oper_up vif$D1.0
python3 "$PKT" inject vif$D1.0 300 1400
for _ in $(seq 100); do [ $(($(rx_stalls) - S0)) -ge 200 ] && break; sleep 0.1; done
touch "$W/go"
for _ in $(seq 100); do grep -q "buffers posted" "$W/out" && break; sleep 0.05; done
python3 "$PKT" inject vif$D1.0 3 100
wait $RPID || t_fail "no-room guest: $(cat "$W/out")"
ctl stats --json >"$W/stats.json"
python3 - "$W/stats.json" <<'EOF' || t_fail "counters: $(cat "$W/stats.json" "$W/out")"
import json, sys
d = json.load(open(sys.argv[1]))
g1 = [x for x in d["devices"] if x["domid"] == 41][0]
g2 = [x for x in d["devices"] if x["domid"] == 42][0]
assert g1["drops"]["rx_stall"] >= 200, g1["drops"]
assert g1["drops"]["malformed"] >= 2 and g1["drops"]["grant"] >= 1, g1["drops"]
assert g1["drops"]["too_big"] >= 1, g1["drops"]
assert g1["packets"]["rx"] >= 30 and g1["packets"]["tx"] >= 200, g1["packets"]
assert g2["packets"]["tx"] >= 20000 and g2["notifications_received"] > 0, g2
EOF
t_pass "a guest without rx buffers: packets held then dropped and counted; counters readable"

ctl vif-detach g1 0 || t_fail "vif-detach"
for _ in $(seq 40); do ip link show vif$D1.0 >/dev/null 2>&1 || break; sleep 0.05; done
ip link show vif$D1.0 >/dev/null 2>&1 && t_fail "vif$D1.0 left behind"
t_pass "vif-detach closes the vif and removes its TAP"

# the TAP outlives pvio-backd (persistent): stopped or killed, it keeps its
# bridge membership and addresses, and the next pvio-backd opens it again
tap_kept() {	# when
	ip link show vif$D2.0 >/dev/null 2>&1 || t_fail "vif$D2.0 gone $1"
	[ "$(cat /sys/class/net/vif$D2.0/master/ifindex 2>/dev/null)" = \
	  "$(cat /sys/class/net/$BR/ifindex)" ] || t_fail "vif$D2.0 left $BR $1"
	ip -4 addr show dev vif$D2.0 | grep -q 10.231.7.1/24 ||
		t_fail "vif$D2.0 lost its address $1"
}
ip addr add 10.231.7.1/24 dev vif$D2.0
t_backd_down
tap_kept "after SIGTERM"
t_backd_up
for _ in $(seq 60); do grep -q "vif/$D2/0: new vif" "$W/backd.log" && break; sleep 0.05; done
kill -KILL "$BACKD_PID"; wait "$BACKD_PID" 2>/dev/null
tap_kept "after SIGKILL"
t_backd_up
for _ in $(seq 60); do
	[ "$(grep -c "vif/$D2/0: new vif" "$W/backd.log")" -ge 3 ] && break; sleep 0.05
done
tap_kept "after a restart"
run g2 0 tx 5 100 >"$W/out" || t_fail "tx after restarts: $(cat "$W/out")"
ctl vif-detach g2 0 || t_fail "vif-detach g2"
for _ in $(seq 40); do ip link show vif$D2.0 >/dev/null 2>&1 || break; sleep 0.05; done
ip link show vif$D2.0 >/dev/null 2>&1 && t_fail "vif$D2.0 left behind after vif-detach"
t_pass "the TAP survives SIGTERM and SIGKILL (bridge, address kept), is reopened, and goes with vif-detach"

# the toolstack moves the vif to another bridge while pvio-backd is down:
# the TAP it finds again is still in the old bridge, and must move (the
# kernel's -EBUSY for "in a bridge" was once taken for "in this one")
ip link add "$BR2" type bridge && ip link set "$BR2" up || t_fail "bridge $BR2"
ctl vif-attach g2 --bridge "$BR" >/dev/null || t_fail "vif-attach g2 to $BR"
t_wait_states g2 0 "Initialising InitWait"
t_backd_down
ctl vif-detach g2 0 >/dev/null 2>&1
ctl vif-attach g2 --bridge "$BR2" --no-wait >/dev/null || t_fail "vif-attach g2 to $BR2"
ip link show vif$D2.0 >/dev/null 2>&1 || t_fail "the TAP did not outlive pvio-backd"
t_backd_up
t_wait_states g2 0 "Initialising InitWait"
[ "$(cat /sys/class/net/vif$D2.0/master/ifindex 2>/dev/null)" = \
  "$(cat /sys/class/net/$BR2/ifindex)" ] ||
	t_fail "vif$D2.0 is in $(basename "$(readlink /sys/class/net/vif$D2.0/master)"), not $BR2"
grep -q "vif$D2.0: out of bridge $BR, where it was before" "$W/backd.log" ||
	t_fail "the move is not logged"
t_pass "a vif moved to another bridge while pvio-backd was down: its TAP moved too"

# two queues, event channels one way on queue 0 and split on queue 1; UDP
# flows from dom0 spread over both queues (the TAP's flow hash)
D3=43 MAC3=00:16:3e:00:00:43
ctl create g3 --domid $D3 >/dev/null || t_fail "create g3"
ctl vif-attach g3 --mac $MAC3 >/dev/null || t_fail "vif-attach g3"
run g3 0 mq-mixed 40 >"$W/out-mq" 2>&1 &
MQ=$!
T_PIDS="$T_PIDS $MQ"
for _ in $(seq 200); do grep -q "OK ready" "$W/out-mq" && break; sleep 0.05; done
grep -q "OK ready" "$W/out-mq" || t_fail "mq-mixed: $(cat "$W/out-mq")"
ip addr add 10.251.0.1/24 dev vif$D3.0 &&
	ip neigh replace 10.251.0.2 lladdr $MAC3 dev vif$D3.0 || t_fail "vif$D3.0 address"
python3 - <<'PY' || t_fail "sending UDP to g3"
import socket
for i in range(40):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("10.251.0.1", 40000 + i))
    s.sendto(b"x" * 64, ("10.251.0.2", 9999))
    s.close()
PY
wait "$MQ" || t_fail "mq-mixed: $(cat "$W/out-mq")"
grep -q "^OK 40 frames" "$W/out-mq" || t_fail "mq-mixed: $(cat "$W/out-mq")"
t_pass "two queues, one event channel and split ones: $(grep "^OK 40" "$W/out-mq" | cut -c4-)"

ctl vif-attach g1 >/dev/null || t_fail "vif-attach g1"
run g1 0 rx 1000000 >"$W/out-del" 2>&1 &
T_PIDS="$T_PIDS $!"
t_wait_states g1 0 "Connected Connected"
ip link del vif$D1.0 || t_fail "ip link del vif$D1.0"
for _ in $(seq 100); do
	case "$(t_states g1 0)" in *" Closing" | *" Closed") break ;; esac
	sleep 0.05
done
case "$(t_states g1 0)" in *" Closing" | *" Closed") ;;
*) t_fail "vif$D1.0 deleted: the vif is still $(t_states g1 0)" ;; esac
grep -q "TAP read: " "$W/backd.log" || t_fail "the failure is not logged"
run g2 0 tx 5 100 >"$W/out" || t_fail "the other vif after the delete: $(cat "$W/out")"
kill -0 "$BACKD_PID" || t_fail "pvio-backd died"
t_pass "a TAP deleted under a connected vif fails that vif; the other goes on"
t_backd_down
exit 0
