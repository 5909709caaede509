#!/bin/bash
# SPDX-License-Identifier: MIT
# The network path end to end, real programs on both sides: two sim domUs,
# each with pvio-netfront as eth0 in its own network namespace, pvio-backd's
# vif TAPs in a dom0 bridge.
#  - ping both ways between each guest and dom0, IPv4 and IPv6;
#  - the two guests reach each other through the bridge;
#  - TCP: guest -> dom0 and dom0 -> guest, checksummed, with offloads (GSO,
#    checksum) and without them (a second vif of one guest);
#  - everything is cleaned up: namespaces, TAPs, processes, the bridge.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || t_skip "needs root (namespaces, TAP devices)"
[ -c /dev/net/tun ] || t_skip "no /dev/net/tun"
for c in ip nc ping sha256sum; do
	command -v $c >/dev/null || t_skip "$c is not installed"
done
NF="$B/pvio-netfront"
BR=pvioe2e$$ NS1=pvio-e2e1-$$ NS2=pvio-e2e2-$$
D1=51 D2=52		# TAP names are host-wide: domids of our own
T_EXTRA_CLEANUP="ip netns del $NS1 2>/dev/null; ip netns del $NS2 2>/dev/null; ip link del $BR 2>/dev/null"

t_world_up
ctl create g1 --domid $D1 >/dev/null && ctl create g2 --domid $D2 >/dev/null || t_fail "create"
ip link add "$BR" type bridge 2>/dev/null || t_skip "cannot create a bridge"
ip addr add 10.91.0.1/24 dev "$BR"
ip -6 addr add fd91::1/64 dev "$BR" nodad
ip link set "$BR" up
ctl vif-attach g1 --bridge "$BR" >/dev/null || t_fail "vif-attach g1"
ctl vif-attach g2 --bridge "$BR" >/dev/null || t_fail "vif-attach g2"
ctl vif-attach g1 --devid 1 >/dev/null || t_fail "vif-attach g1 vif 1"
t_backd_up
ip netns add "$NS1" && ip netns add "$NS2" || t_skip "cannot create network namespaces"

# guest NS, domain DOM, vif DEVID as IFNAME with ADDR/PREFIX [pvio-netfront options]
guest_if() {
	local ns=$1 dom=$2 devid=$3 ifn=$4 addr=$5 addr6=$6
	shift 6
	ip netns exec "$ns" "$PVIO_CTL" -w "$W" run "$dom" -- \
		"$NF" --devid "$devid" --ifname "$ifn" "$@" >>"$W/nf-$ns-$ifn.log" 2>&1 &
	T_PIDS="$T_PIDS $!"
	for _ in $(seq 200); do
		ip netns exec "$ns" ip link show "$ifn" >/dev/null 2>&1 && break
		sleep 0.05
	done
	ip netns exec "$ns" ip link set lo up
	ip netns exec "$ns" ip addr add "$addr" dev "$ifn" || t_fail "no $ifn in $ns: $(cat "$W/nf-$ns-$ifn.log")"
	[ -n "$addr6" ] && ip netns exec "$ns" ip -6 addr add "$addr6" dev "$ifn" nodad
	ip netns exec "$ns" ip link set "$ifn" up
}
guest_if "$NS1" $D1 0 eth0 10.91.0.2/24 fd91::2/64
guest_if "$NS2" $D2 0 eth0 10.91.0.3/24 fd91::3/64
t_wait_states g1 0 "Connected Connected"
t_wait_states g2 0 "Connected Connected"

png() { ip netns exec "$1" ping -c 3 -i 0.2 -W 2 "$2" >/dev/null 2>&1; }
png "$NS1" 10.91.0.1 || t_fail "g1 -> dom0 ping"
png "$NS2" 10.91.0.1 || t_fail "g2 -> dom0 ping"
ping -c 3 -i 0.2 -W 2 10.91.0.2 >/dev/null || t_fail "dom0 -> g1 ping"
ping -c 3 -i 0.2 -W 2 10.91.0.3 >/dev/null || t_fail "dom0 -> g2 ping"
png "$NS1" fd91::1 || t_fail "g1 -> dom0 ping6"
ping -c 3 -i 0.2 -W 2 fd91::2 >/dev/null || t_fail "dom0 -> g1 ping6"
t_pass "ping both ways between each guest and dom0, IPv4 and IPv6"

png "$NS1" 10.91.0.3 || t_fail "g1 -> g2 ping through the bridge"
png "$NS2" fd91::2 || t_fail "g2 -> g1 ping6 through the bridge"
t_pass "two guests reach each other through the dom0 bridge"

# receiver-side namespace (or "" for dom0), sender namespace, address, size
xfer() {
	local rns=$1 sns=$2 addr=$3 size=$4 port=$((20000 + RANDOM % 20000)) fam=-4
	case $addr in *:*) fam=-6 ;; esac
	head -c "$size" /dev/urandom >"$W/send.bin"
	if [ -n "$rns" ]; then
		ip netns exec "$rns" nc $fam -d -l -p $port >"$W/recv.bin" 2>/dev/null &
	else
		nc $fam -d -l -p $port >"$W/recv.bin" 2>/dev/null &
	fi
	local lpid=$!
	# until the listener is up (ss in its namespace), however slow
	t_wait_listen "$rns" $port
	if [ -n "$sns" ]; then
		timeout 60 ip netns exec "$sns" nc -q 1 -w 10 "$addr" $port <"$W/send.bin"
	else
		timeout 60 nc -q 1 -w 10 "$addr" $port <"$W/send.bin"
	fi
	for _ in $(seq 100); do kill -0 $lpid 2>/dev/null || break; sleep 0.1; done
	kill $lpid 2>/dev/null
	[ "$(sha256sum <"$W/send.bin")" = "$(sha256sum <"$W/recv.bin")" ]
}
xfer "" "$NS1" 10.91.0.1 32M || t_fail "TCP g1 -> dom0: $(stat -c %s "$W/recv.bin") bytes arrived"
xfer "$NS1" "" 10.91.0.2 32M || t_fail "TCP dom0 -> g1"
xfer "$NS2" "$NS1" 10.91.0.3 8M || t_fail "TCP g1 -> g2 through the bridge"
xfer "" "$NS2" fd91::1 8M || t_fail "TCP over IPv6 g2 -> dom0"
t_pass "TCP with offloads: 32 MiB both ways guest <-> dom0, guest -> guest, IPv6; checksums match"

# g1's second vif, without offloads (checksums in software), unbridged
ip addr add 10.92.0.1/24 dev vif$D1.1
guest_if "$NS1" $D1 1 eth1 10.92.0.2/24 "" --no-offload
t_wait_states g1 1 "Connected Connected"
png "$NS1" 10.92.0.1 || t_fail "ping over the offload-less vif"
xfer "" "$NS1" 10.92.0.1 8M || t_fail "TCP g1 -> dom0 without offloads"
xfer "$NS1" "" 10.92.0.2 8M || t_fail "TCP dom0 -> g1 without offloads"
t_pass "TCP without offloads both ways (software checksums)"

ctl stats --json >"$W/stats.json"
python3 - "$W/stats.json" $D1 <<'EOF' || t_fail "counters: $(cat "$W/stats.json")"
import json, sys
d = json.load(open(sys.argv[1]))
v = [x for x in d["devices"] if x["domid"] == int(sys.argv[2]) and x["devid"] == 0][0]
assert v["packets"]["tx"] > 500 and v["packets"]["rx"] > 500, v["packets"]
assert v["bytes_tx"] > 32 << 20 and v["bytes_rx"] > 32 << 20, v
assert sum(v["drops"].values()) == 0, v["drops"]
EOF
t_pass "counters: packets and bytes both ways, no drops"

# clean up as an operator would, and check nothing is left
for p in $T_PIDS; do [ "$p" = "$BACKD_PID" ] || kill "$p" 2>/dev/null; done
ctl vif-detach g1 0 && ctl vif-detach g2 0 && ctl vif-detach g1 1 || t_fail "vif-detach"
# a removed vif's TAP goes once pvio-backd has seen the removal (a TAP
# outlives a pvio-backd that is merely stopped: a restart reuses it)
# (however slow the machine: stopping pvio-backd before that keeps them)
for _ in $(seq 400); do
	ip link show | grep -q "vif$D1\.\|vif$D2\." || break; sleep 0.05
done
ip link show | grep -q "vif$D1\.\|vif$D2\." &&
	t_fail "vif TAPs left behind 20 s after vif-detach: $(ip -br link show | grep "vif$D1\.\|vif$D2\.")"
t_backd_down
ip link show | grep -q "vif$D1\.\|vif$D2\." && t_fail "vif TAPs left behind"
ip netns exec "$NS1" ip link show eth0 >/dev/null 2>&1 && t_fail "the guest's TAP was left behind"
t_pass "TAPs of both sides gone after detach and stop"
exit 0
