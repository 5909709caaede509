#!/bin/bash
# SPDX-License-Identifier: MIT
# pvio-netfront as separate processes: two guests of a sim world, each a
# pvio-netfront TAP (eth0) in a network namespace of its own, joined by a
# mock backend that switches frames between their rings
# (t-mocknetback; it checks every tx packet as Linux netback does):
#  - the handshake, the TAP (MAC, MTU, up, carrier from the backend);
#  - ping (when installed), TCP over IPv4 and IPv6 both ways with a
#    checksummed file: with offloads (TSO/GSO and checksum offload travel
#    through the rings) and without (checksums computed in software);
#  - two queues (a multi-queue TAP); IPv6 checksums filled in software;
#  - SIGTERM: Closing -> Closed, the TAP is gone; SIGKILL: the next
#    instance resets the stale session; the backend detached: it stops;
#  - bad usage: exit status 2.
# Needs root, /dev/net/tun and `ip netns`; SKIPs loudly otherwise.
. "$(dirname "$0")/lib.sh"
NF="$B/pvio-netfront"
SWITCH="$B/tests/integration/t-mocknetback"
TYPE=mockvif
NSA="pvio-nf-a.$$"
NSB="pvio-nf-b.$$"

# usage errors first: nothing needed for them
"$NF" --queues 99 >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || t_fail "--queues 99: exit status $rc, want 2"
"$NF" --domid 3 --ifname "" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || t_fail "--ifname '': exit status $rc, want 2"
[ "$("$NF" --bogus 2>&1 | wc -l)" -eq 1 ] || t_fail "usage error is not one line"

[ "$(id -u)" -eq 0 ] || t_skip "needs root (network namespaces and TAP devices)"
[ -c /dev/net/tun ] || t_skip "no /dev/net/tun"
command -v ip >/dev/null || t_skip "ip (iproute2) not installed"
command -v nc >/dev/null || t_skip "nc (netcat-openbsd) not installed"
ip netns add "$NSA" 2>/dev/null || t_skip "cannot create network namespaces (ip netns add)"
T_EXTRA_CLEANUP='ip netns del "$NSA" 2>/dev/null; ip netns del "$NSB" 2>/dev/null'
ip netns add "$NSB" || t_fail "ip netns add $NSB"
ip -n "$NSA" link set lo up && ip -n "$NSB" link set lo up || t_fail "lo up"
# a TAP in a namespace at all?
ip netns exec "$NSA" ip tuntap add dev pviochk mode tap 2>/dev/null ||
	t_skip "cannot create TAP devices in a network namespace"
ip -n "$NSA" link del pviochk

t_world_up
DA=$(ctl create ga) && DB=$(ctl create gb) || t_fail "create"
ctl vif-attach ga --backend-type $TYPE --mac 00:16:3e:aa:00:01 >/dev/null || t_fail "vif-attach ga"
ctl vif-attach gb --backend-type $TYPE --mac 00:16:3e:bb:00:02 >/dev/null || t_fail "vif-attach gb"

# ---- before the connection: the TAP exists, but carries nothing ----
# (a frame the kernel sent then would leave with the TAP's random MAC,
# and the peer would answer that address after we set the vif's: the
# Xen lab's first pings were lost so, about one boot in five)
ip netns exec "$NSA" "$PVIO_CTL" -w "$W" run ga -- "$NF" --timeout 3000 >"$W/nf0.log" 2>&1 &
N0=$!
for _ in $(seq 100); do ip -n "$NSA" link show eth0 >/dev/null 2>&1 && break; sleep 0.05; done
ip -n "$NSA" link set eth0 up 2>/dev/null || t_fail "no eth0 before the connection: $(cat "$W/nf0.log")"
sleep 0.2
ip -n "$NSA" link show eth0 | grep -q LOWER_UP &&
	t_fail "eth0 has a carrier before the backend connected: $(ip -n "$NSA" link show eth0)"
kill -TERM $N0; wait $N0 2>/dev/null
t_pass "before the connection the TAP has no carrier (nothing leaves with a MAC not yet set)"

SW_PID=""
sw_up() {	# switch options...
	"$SWITCH" "sim:$W" $TYPE "$DA" "$DB" "$@" >"$W/switch.log" 2>&1 &
	SW_PID=$!
	T_PIDS="$T_PIDS $SW_PID"
	# both ports wrote their features and went InitWait (or Closed, to
	# answer a frontend that closed before)
	for _ in $(seq 100); do grep -q "serving vif" "$W/switch.log" && return; sleep 0.05; done
	t_fail "the mock backend did not start: $(cat "$W/switch.log")"
}
sw_down() {	# checks that no frontend broke the protocol
	kill -TERM "$SW_PID"
	wait "$SW_PID"
	local rc=$?
	[ $rc -eq 0 ] || t_fail "the mock backend saw protocol errors (exit $rc): $(tail -3 "$W/switch.log")"
}

NA_PID="" NB_PID=""
nf_up() {	# pvio-netfront options...
	# ip netns exec and pvio-ctl run exec: $! is pvio-netfront itself.
	# --timeout: a close after the backend died ends within the
	# cleanup's grace period.
	ip netns exec "$NSA" "$PVIO_CTL" -w "$W" run ga -- "$NF" --timeout 3000 "$@" >>"$W/nfa.log" 2>&1 &
	NA_PID=$!
	ip netns exec "$NSB" "$PVIO_CTL" -w "$W" run gb -- "$NF" --timeout 3000 "$@" >>"$W/nfb.log" 2>&1 &
	NB_PID=$!
	T_PIDS="$T_PIDS $NA_PID $NB_PID"
	t_wait_states ga 0 "Connected Connected"
	t_wait_states gb 0 "Connected Connected"
	local ns
	for ns in "$NSA" "$NSB"; do
		for _ in $(seq 100); do
			ip -n "$ns" link show eth0 2>/dev/null | grep -q LOWER_UP && break
			sleep 0.05
		done
		ip -n "$ns" link show eth0 | grep -q LOWER_UP ||
			t_fail "$ns: eth0 has no carrier: $(ip -n "$ns" link show eth0 2>&1)"
	done
	ip -n "$NSA" addr add 10.99.0.1/24 dev eth0 &&
	ip -n "$NSB" addr add 10.99.0.2/24 dev eth0 &&
	ip -n "$NSA" addr add fd99::1/64 dev eth0 nodad &&
	ip -n "$NSB" addr add fd99::2/64 dev eth0 nodad || t_fail "addresses"
}
nf_down() {	# SIGTERM: exit 0, Closed, the TAP gone
	local pid ns
	kill -TERM "$NA_PID" "$NB_PID"
	for pid in "$NA_PID" "$NB_PID"; do
		wait "$pid"
		local rc=$?
		[ $rc -eq 0 ] || t_fail "pvio-netfront exited with $rc on SIGTERM: $(tail -5 "$W/nfa.log" "$W/nfb.log")"
	done
	t_wait_states ga 0 "Closed Closed"
	t_wait_states gb 0 "Closed Closed"
	for ns in "$NSA" "$NSB"; do
		ip -n "$ns" link show eth0 >/dev/null 2>&1 && t_fail "$ns: eth0 is still there"
	done
	return 0
}

# TCP from namespace $1 to address $2 (in namespace $3): $4 bytes, checksummed
xfer() {
	local from=$1 to=$2 tons=$3 size=$4 port=$((5000 + RANDOM % 1000)) i fam=-4
	case $to in *:*) fam=-6 ;; esac
	head -c "$size" /dev/urandom >"$W/src"
	ip netns exec "$tons" timeout 60 nc $fam -l "$port" </dev/null >"$W/dst" 2>"$W/nc.err" &
	local lpid=$!
	for i in $(seq 50); do
		ip netns exec "$from" timeout 60 nc $fam -N "$to" "$port" <"$W/src" 2>/dev/null && break
		sleep 0.1
	done
	wait $lpid || t_fail "receiver nc failed: $(cat "$W/nc.err"); $(tail -3 "$W/nfa.log" "$W/nfb.log" "$W/switch.log")"
	[ "$(sha256sum <"$W/src")" = "$(sha256sum <"$W/dst")" ] ||
		t_fail "TCP $from -> $to: $size bytes differ ($(stat -c %s "$W/dst") received)"
}

check_link() {
	ip -n "$NSA" link show eth0 | grep -q "00:16:3e:aa:00:01" || t_fail "eth0 in $NSA: wrong MAC"
	ip -n "$NSB" link show eth0 | grep -q "00:16:3e:bb:00:02" || t_fail "eth0 in $NSB: wrong MAC"
	ip -n "$NSA" link show eth0 | grep -q "mtu 1500" || t_fail "eth0 in $NSA: MTU is not 1500"
}

ping_check() {
	if command -v ping >/dev/null; then
		ip netns exec "$NSA" ping -c 3 -i 0.2 -W 2 10.99.0.2 >/dev/null ||
			t_fail "ping $NSA -> 10.99.0.2"
		ip netns exec "$NSB" ping -c 2 -i 0.2 -W 2 fd99::1 >/dev/null ||
			t_fail "ping $NSB -> fd99::1"
	else
		t_log "NOTE: ping is not installed: connectivity is checked with TCP only"
	fi
}

# ---- with offloads: TSO and checksum offload through the rings ----
sw_up
nf_up
check_link
ping_check
xfer "$NSA" 10.99.0.2 "$NSB" $((8 << 20))
xfer "$NSB" 10.99.0.1 "$NSA" $((8 << 20))
xfer "$NSA" fd99::2 "$NSB" $((4 << 20))
nf_down
sw_down
grep -q "forwarded [0-9]* frames ([1-9][0-9]* gso)" "$W/switch.log" ||
	t_fail "no GSO frame went through the rings: $(tail -2 "$W/switch.log")"
t_pass "offloads: handshake, MAC/MTU/carrier, TCP v4 both ways and v6 with TSO, SIGTERM -> Closed, TAP removed"

# ---- without offloads: every checksum in software ----
sw_up --no-features --rx-offset 2
nf_up --no-offload --no-split
ping_check
xfer "$NSA" 10.99.0.2 "$NSB" $((4 << 20))
xfer "$NSB" fd99::1 "$NSA" $((2 << 20))
nf_down
sw_down
grep -q "([1-9][0-9]* gso)" "$W/switch.log" && t_fail "GSO without offloads: $(tail -2 "$W/switch.log")"
t_pass "no offloads, one event channel, rx data at offset 2: TCP v4 and v6"

# ---- two queues; a backend without IPv6 checksum offload ----
sw_up --queues 2 --no-ipv6-csum
nf_up --queues 2
grep -q "2 queues" "$W/nfa.log" || t_fail "two queues not negotiated: $(grep connected "$W/nfa.log" | tail -1)"
xfer "$NSA" 10.99.0.2 "$NSB" $((4 << 20))
xfer "$NSB" 10.99.0.1 "$NSA" $((4 << 20))
xfer "$NSA" fd99::2 "$NSB" $((2 << 20))
nf_down
sw_down
grep -q "[1-9][0-9]* sw csum" "$W/nfa.log" || t_fail "no IPv6 checksum was filled in software: $(grep "queue 0" "$W/nfa.log" | tail -1)"
t_pass "two queues (a multi-queue TAP); IPv6 checksums in software"

# ---- a killed pvio-netfront: the next one resets the stale session ----
sw_up
nf_up
kill -9 "$NA_PID"; wait "$NA_PID" 2>/dev/null
[ "$(t_states ga 0)" = "Connected Connected" ] || t_fail "after SIGKILL: $(t_states ga 0)"
ip netns exec "$NSA" "$PVIO_CTL" -w "$W" run ga -- "$NF" --timeout 3000 >>"$W/nfa.log" 2>&1 &
NA_PID=$!
T_PIDS="$T_PIDS $NA_PID"
t_wait_states ga 0 "Connected Connected"
for _ in $(seq 100); do
	ip -n "$NSA" link show eth0 2>/dev/null | grep -q LOWER_UP && break
	sleep 0.05
done
ip -n "$NSA" addr add 10.99.0.1/24 dev eth0 || t_fail "address after restart"
xfer "$NSB" 10.99.0.1 "$NSA" $((1 << 20))
t_pass "a pvio-netfront killed with SIGKILL: the next one closes the stale session and connects"

# ---- the backend goes away: pvio-netfront stops cleanly ----
ctl vif-detach ga 0 || t_fail "vif-detach"
for _ in $(seq 100); do kill -0 "$NA_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$NA_PID" 2>/dev/null && t_fail "pvio-netfront did not stop when its backend closed"
wait "$NA_PID"; rc=$?
[ $rc -eq 1 ] || t_fail "pvio-netfront exited with $rc when its backend closed, want 1"
ip -n "$NSA" link show eth0 >/dev/null 2>&1 && t_fail "$NSA: eth0 is still there"
kill -TERM "$NB_PID"; wait "$NB_PID"
kill -TERM "$SW_PID"; wait "$SW_PID"
t_pass "a closing backend stops pvio-netfront and removes its TAP"
exit 0
