#!/bin/bash
# SPDX-License-Identifier: MIT
# vifs on Open vSwitch bridges, two "hosts" joined by a VXLAN tunnel.
# Each host is a network namespace with its own sim world, pvio-backd and
# Open vSwitch (ovsdb-server + ovs-vswitchd on private run/db dirs, the
# userspace datapath: no openvswitch kernel module needed); the hosts'
# underlay is a veth pair on OVS's br-phy (userspace tunnelling), guests'
# vifs are on br-int with the VXLAN port. pvio-backd puts each TAP on
# br-int itself, through OVSDB (no hotplug script), BR.VLAN as a tag.
#  - ping and a checksummed TCP transfer between guests on the two hosts;
#  - one vif (g4's) through Xen's stock vif-openvswitch script instead
#    (the hotplug protocol), the others through pvio-backd's own attach;
#  - VLANs (bridge=br-int.10 / .20): same tag across the tunnel reach each
#    other, different tags on one host do not; br-int:10:20 a trunk port
#    whose guest's tagged frames reach the access ports of their VLAN
#    (across the tunnel too) untagged, and which gets theirs tagged;
#    other VLANs and untagged frames do not pass it;
#  - a restarted pvio-backd finds its port in place (no second one), the
#    guest's traffic goes on; vif-detach removes the port;
#  - bad configuration fails the device with an error node: no such
#    bridge, VLAN out of range, a malformed BR.VLAN, a port of that name
#    on another bridge (left alone); so does an
#    ovsdb-server that does not answer (after 3 s), the other vifs'
#    traffic going on meanwhile;
#  - nothing left behind: namespaces, OVS daemons, TAPs.
. "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || t_skip "needs root (namespaces, TAP devices)"
[ -c /dev/net/tun ] || t_skip "no /dev/net/tun"
for c in ip nc ping sha256sum ovsdb-tool ovsdb-server ovs-vswitchd ovs-vsctl \
	 xenstore-read; do
	command -v $c >/dev/null ||
		t_skip "$c is not installed (openvswitch-switch: tools/install-deps.sh)"
done
SCHEMA=/usr/share/openvswitch/vswitch.ovsschema
[ -f $SCHEMA ] || t_skip "no $SCHEMA (openvswitch-common)"
NF="$B/pvio-netfront"
HA=pvio-ovsa-$$ HB=pvio-ovsb-$$
G=""			# guest namespaces
for n in 1 2 3 4 5; do G="$G pvio-ovsg$n-$$"; done
g_ns() { echo "pvio-ovsg$1-$$"; }
NF_PIDS=""
BE=/local/domain/0/backend
T_EXTRA_CLEANUP='for n in $HA $HB $G; do ip netns del $n 2>/dev/null; done
[ -n "${WB:-}" ] && { "$PVIO_CTL" -w "$WB" world stop >/dev/null 2>&1; rm -rf "$WB"; }'
START=$(date +%s)

ip netns add "$HA" && ip netns add "$HB" || t_skip "cannot create network namespaces"
for n in $G; do ip netns add "$n" || t_fail "netns $n"; done

# ---- two hosts: a world, OVS and pvio-backd each ---------------------------------
t_world_up
WA=$W
WB=$(mktemp -d "${TMPDIR:-/tmp}/pvio-it.XXXXXX")
"$PVIO_CTL" -w "$WB" world start >/dev/null || t_fail "world start B"

# OVS of host NS, in DIR: its database, sockets, logs
ovs_up() {
	local ns=$1 d=$2
	mkdir -p "$d"
	ovsdb-tool create "$d/conf.db" $SCHEMA || t_fail "ovsdb-tool create"
	ip netns exec "$ns" env OVS_RUNDIR="$d" OVS_LOGDIR="$d" OVS_DBDIR="$d" \
		ovsdb-server "$d/conf.db" --remote=punix:"$d/db.sock" \
		--unixctl="$d/ovsdb-server.ctl" --log-file="$d/ovsdb-server.log" \
		-vconsole:off &
	T_PIDS="$T_PIDS $!" OVSDB_PID=$!
	for _ in $(seq 100); do [ -S "$d/db.sock" ] && break; sleep 0.05; done
	ovs-vsctl --db=unix:"$d/db.sock" --no-wait init || t_fail "ovsdb-server of $ns"
	ip netns exec "$ns" env OVS_RUNDIR="$d" OVS_LOGDIR="$d" OVS_DBDIR="$d" \
		ovs-vswitchd unix:"$d/db.sock" --unixctl="$d/ovs-vswitchd.ctl" \
		--log-file="$d/ovs-vswitchd.log" -vconsole:off &
	T_PIDS="$T_PIDS $!"
}
OA=$WA/ovs OB=$WB/ovs
vsa() { ovs-vsctl --timeout=10 --db=unix:"$OA/db.sock" "$@"; }
vsb() { ovs-vsctl --timeout=10 --db=unix:"$OB/db.sock" "$@"; }
ovs_up "$HA" "$OA"
OVSDB_A=$OVSDB_PID
ovs_up "$HB" "$OB"

ip link add pvu$$a type veth peer name pvu$$b || t_fail "veth"
ip link set pvu$$a netns "$HA" && ip link set pvu$$b netns "$HB" || t_fail "veth"
# host NS (vsctl function), underlay port, address, the other's address
host_net() {
	local ns=$1 vs=$2 phys=$3 ip=$4 rem=$5
	ip netns exec "$ns" ip link set lo up
	ip netns exec "$ns" ip link set "$phys" up
	$vs add-br br-phy -- set bridge br-phy datapath_type=netdev \
		-- add-port br-phy "$phys" || t_fail "$ns: br-phy"
	ip netns exec "$ns" ip addr add "$ip/24" dev br-phy
	ip netns exec "$ns" ip link set br-phy up
	$vs add-br br-int -- set bridge br-int datapath_type=netdev \
		-- add-port br-int vx0 -- set interface vx0 type=vxlan \
		options:remote_ip="$rem" options:key=5001 || t_fail "$ns: br-int"
}
host_net "$HA" vsa pvu$$a 192.168.93.1 192.168.93.2
host_net "$HB" vsb pvu$$b 192.168.93.2 192.168.93.1
ip netns exec "$HA" ping -c 3 -i 0.2 -W 5 192.168.93.2 >/dev/null || t_fail "underlay ping"

# each host's pvio-backd runs in the host's namespace (its TAPs are there)
cat >"$WA/backd-ns" <<EOF
#!/bin/sh
exec ip netns exec "\$PVIO_HOST_NS" "$B/pvio-backd" "\$@"
EOF
chmod +x "$WA/backd-ns"
BACKD="$WA/backd-ns"
backd_a() { W=$WA PVIO_HOST_NS=$HA t_backd_up --ovsdb unix:"$OA/db.sock"; BA=$BACKD_PID; }
backd_b() { W=$WB PVIO_HOST_NS=$HB t_backd_up --ovsdb unix:"$OB/db.sock"; BB=$BACKD_PID; }
export PVIO_HOST_NS
backd_a
backd_b
ca() { "$PVIO_CTL" -w "$WA" "$@"; }
cb() { "$PVIO_CTL" -w "$WB" "$@"; }

# guests: g1 (A) and g2 (B) untagged; g3 (A, VLAN 10), g4 (B, VLAN 10),
# g5 (A, VLAN 20)
ca create g1 --domid 61 >/dev/null && cb create g2 --domid 62 >/dev/null &&
ca create g3 --domid 63 >/dev/null && cb create g4 --domid 64 >/dev/null &&
ca create g5 --domid 65 >/dev/null || t_fail "create"
ca vif-attach g1 --bridge br-int >/dev/null || t_fail "vif-attach g1"
cb vif-attach g2 --bridge br-int >/dev/null || t_fail "vif-attach g2"
ca vif-attach g3 --bridge br-int.10 >/dev/null || t_fail "vif-attach g3"
# g4's vif through Xen's stock vif-openvswitch script instead (the
# hotplug protocol; pvio-ctl runs it as libxl does), on host B
VIFOVS=/etc/xen/scripts/vif-openvswitch
if [ -x $VIFOVS ] && command -v xenstore-write >/dev/null; then
	# what libxl writes for a domain and the script reads: its VM
	U=00000000-0000-4000-8000-000000000064
	for kv in "/vm/$U/name g4" "/vm/$U/uuid $U" "/local/domain/64/vm /vm/$U"; do
		XENSTORED_PATH="$WB/xs/dom0.sock" xenstore-write $kv || t_fail "xenstore-write $kv"
	done
	OVS_RUNDIR=$OB ip netns exec "$HB" "$PVIO_CTL" -w "$WB" vif-attach g4 \
		--bridge br-int.10 --script $VIFOVS >/dev/null 2>"$WB/vifovs.err" ||
		t_fail "vif-attach g4 with vif-openvswitch: $(cat "$WB/vifovs.err")"
else
	t_log "NOTE: no $VIFOVS (xen-utils-common): g4 attached by pvio-backd too"
	VIFOVS=""
	cb vif-attach g4 --bridge br-int.10 >/dev/null || t_fail "vif-attach g4"
fi
ca vif-attach g5 --bridge br-int.20 >/dev/null || t_fail "vif-attach g5"
# a trunk: g5's second vif; its guest sends and reads 802.1Q frames on a
# raw socket (pkt.py), not through a VLAN interface (this kernel may lack
# the 8021q module)
ca vif-attach g5 --devid 1 --bridge br-int:10:20 >/dev/null || t_fail "vif-attach g5 trunk"

# guest N of world WORLD as eth0 with ADDR, MTU 1400: the VXLAN's 50 bytes
guest() {
	local n=$1 world=$2 addr=$3 ns
	ns=$(g_ns "$n")
	ip netns exec "$ns" "$PVIO_CTL" -w "$world" run "g$n" -- \
		"$NF" --ifname eth0 >>"$world/nf-g$n.log" 2>&1 &
	T_PIDS="$T_PIDS $!" NF_PIDS="$NF_PIDS $!"
	for _ in $(seq 200); do
		ip netns exec "$ns" ip link show eth0 >/dev/null 2>&1 && break
		sleep 0.05
	done
	ip netns exec "$ns" ip link set lo up
	ip netns exec "$ns" ip addr add "$addr" dev eth0 ||
		t_fail "no eth0 in $ns: $(cat "$world/nf-g$n.log")"
	ip netns exec "$ns" ip link set eth0 mtu 1400 up
}
guest 1 "$WA" 10.93.1.1/24
guest 2 "$WB" 10.93.1.2/24
guest 3 "$WA" 10.93.2.3/24
guest 4 "$WB" 10.93.2.4/24
guest 5 "$WA" 10.93.2.5/24
W=$WA t_wait_states g1 0 "Connected Connected"
W=$WB t_wait_states g2 0 "Connected Connected"
W=$WA t_wait_states g3 0 "Connected Connected"
W=$WB t_wait_states g4 0 "Connected Connected"
W=$WA t_wait_states g5 0 "Connected Connected"
[ "$(vsa get port vif61.0 tag)" = "[]" ] || t_fail "vif61.0: tag $(vsa get port vif61.0 tag)"
[ "$(vsa get port vif63.0 tag)" = 10 ] || t_fail "vif63.0: tag $(vsa get port vif63.0 tag)"
[ "$(vsa get port vif65.0 tag)" = 20 ] || t_fail "vif65.0: tag $(vsa get port vif65.0 tag)"
[ "$(vsb get port vif64.0 tag)" = 10 ] || t_fail "vif64.0: tag $(vsb get port vif64.0 tag)"
[ "$(vsa get port vif65.1 trunks)" = "[10, 20]" ] && [ "$(vsa get port vif65.1 tag)" = "[]" ] ||
	t_fail "vif65.1: trunks $(vsa get port vif65.1 trunks) tag $(vsa get port vif65.1 tag)"
vsa get interface vif61.0 external_ids | grep -q 'attached-mac="00:16:3e:00:3d:00"' ||
	t_fail "vif61.0 external_ids: $(vsa get interface vif61.0 external_ids)"
t_pass "pvio-backd put each vif on its host's OVS bridge, BR.VLAN as the port's tag, BR:T1:T2 as trunks"

# the first packets may wait for OVS to learn the tunnel's neighbour
png() {
	local i
	for i in 1 2 3; do
		ip netns exec "$(g_ns "$1")" ping -c 3 -i 0.2 -W 2 "$2" >/dev/null 2>&1 &&
			return 0
	done
	return 1
}
# no answer to any of 3 pings
no_png() { ! ip netns exec "$(g_ns "$1")" ping -c 3 -i 0.2 -W 2 "$2" >/dev/null 2>&1; }
png 1 10.93.1.2 || t_fail "g1 (A) -> g2 (B) ping across the tunnel"
png 2 10.93.1.1 || t_fail "g2 (B) -> g1 (A) ping across the tunnel"
t_pass "ping between guests on two hosts, across the VXLAN tunnel"

# receiver guest, sender guest, address, size
xfer() {
	local rns sns port=$((20000 + RANDOM % 20000))
	rns=$(g_ns "$1") sns=$(g_ns "$2")
	head -c "$4" /dev/urandom >"$WA/send.bin"
	ip netns exec "$rns" nc -d -l -p $port >"$WA/recv.bin" 2>/dev/null &
	local lpid=$!
	t_wait_listen "$rns" $port
	timeout 30 ip netns exec "$sns" nc -q 1 -w 10 "$3" $port <"$WA/send.bin"
	for _ in $(seq 100); do kill -0 $lpid 2>/dev/null || break; sleep 0.1; done
	kill $lpid 2>/dev/null
	[ "$(sha256sum <"$WA/send.bin")" = "$(sha256sum <"$WA/recv.bin")" ]
}
xfer 2 1 10.93.1.2 8M || t_fail "TCP g1 -> g2: $(stat -c %s "$WA/recv.bin") bytes arrived"
xfer 1 2 10.93.1.1 8M || t_fail "TCP g2 -> g1: $(stat -c %s "$WA/recv.bin") bytes arrived"
t_pass "TCP across the tunnel both ways, 8 MiB each, checksums match"

png 3 10.93.2.4 || t_fail "g3 (A, VLAN 10) -> g4 (B, VLAN 10)"
png 4 10.93.2.3 || t_fail "g4 (B, VLAN 10) -> g3 (A, VLAN 10)"
xfer 4 3 10.93.2.4 2M || t_fail "TCP g3 -> g4 on VLAN 10"
no_png 5 10.93.2.3 || t_fail "g5 (VLAN 20) reached g3 (VLAN 10) on its host"
no_png 5 10.93.2.4 || t_fail "g5 (VLAN 20) reached g4 (VLAN 10) across the tunnel"
no_png 3 10.93.2.5 || t_fail "g3 (VLAN 10) reached g5 (VLAN 20)"
t_pass "VLANs: same tag across the tunnel reach each other, different tags do not"

# ---- the trunk, with traffic: g5's eth1 on br-int:10:20 -------------------------
PKT="$S/tests/integration/pkt.py"
ip netns exec "$(g_ns 5)" "$PVIO_CTL" -w "$WA" run g5 -- \
	"$NF" --devid 1 --ifname eth1 >>"$WA/nf-g5.1.log" 2>&1 &
T_PIDS="$T_PIDS $!" NF_PIDS="$NF_PIDS $!"
W=$WA t_wait_states g5 1 "Connected Connected"
ip netns exec "$(g_ns 5)" ip link set eth1 up || t_fail "no eth1 in g5: $(cat "$WA/nf-g5.1.log")"
# listen on GUEST:IFACE pairs, into $WA/vl-GUEST-IFACE, until heard_all
# (at most 30 s): a loaded machine may take seconds to send the frames
listen() {
	local gi
	L_PIDS=""
	rm -f "$WA/vl-stop"
	for gi in "$@"; do
		ip netns exec "$(g_ns "${gi%:*}")" python3 "$PKT" vlans "${gi#*:}" 30 \
			"$WA/vl-stop" >"$WA/vl-${gi%:*}-${gi#*:}" 2>&1 &
		L_PIDS="$L_PIDS $!"
	done
	for gi in "$@"; do
		for _ in $(seq 200); do
			grep -q ready "$WA/vl-${gi%:*}-${gi#*:}" && break
			sleep 0.05
		done
	done
}
# every frame sent: what is still on its way has a second to arrive
heard_all() {
	sleep 1
	touch "$WA/vl-stop"
	wait $L_PIDS
}
inject() {	# GUEST IFACE VLAN MARK
	ip netns exec "$(g_ns "$1")" python3 "$PKT" inject "$2" 20 100 "$3" "$4" ||
		t_fail "inject from g$1 $2"
}
heard() {	# GUEST:IFACE "frames K marks [..] tags [..]"
	local got
	got=$(grep frames "$WA/vl-${1%:*}-${1#*:}")
	[ "$got" = "$2" ] || t_fail "g${1%:*} ${1#*:}: heard '$got', want '$2'"
}
# the guest's tagged frames leave the trunk for their VLAN's access
# ports (the tag taken off), on this host and across the tunnel; VLAN
# 30 and untagged frames go nowhere. g1's port has neither tag nor
# trunks, which OVS makes a port of every VLAN (Xen's vif-openvswitch
# adds an untagged vif the same way): it gets VLAN 10 and 20 tagged
listen 3:eth0 4:eth0 5:eth0 1:eth0
inject 5 eth1 10 10
inject 5 eth1 20 20
inject 5 eth1 30 30
inject 5 eth1 0 0
heard_all
heard 3:eth0 "frames 20 marks [10] tags []"
heard 4:eth0 "frames 20 marks [10] tags []"
heard 5:eth0 "frames 20 marks [20] tags []"
heard 1:eth0 "frames 40 marks [10, 20] tags [10, 20]"
# and the access ports' frames come to the trunk tagged with theirs; the
# untagged network's do not
listen 5:eth1
inject 3 eth0 0 1
inject 5 eth0 0 2
inject 1 eth0 0 3
heard_all
heard 5:eth1 "frames 40 marks [1, 2] tags [10, 20]"
t_pass "trunk br-int:10:20: its guest's VLAN 10/20 frames reach those VLANs' guests untagged (across the tunnel too) and the untagged port tagged, the guests' frames come back tagged; VLAN 30 and untagged frames do not pass"

# ---- a restarted pvio-backd: the port is there, once --------------------------------
kill -TERM "$BA"; wait "$BA" 2>/dev/null
vsa list-ports br-int | grep -qx vif61.0 || t_fail "SIGTERM took vif61.0 off br-int"
backd_a
W=$WA t_wait_states g1 0 "Connected Connected"
[ "$(vsa list-ports br-int | grep -c '^vif61\.0$')" = 1 ] ||
	t_fail "after a restart: $(vsa list-ports br-int)"
[ "$(vsa get port vif63.0 tag)" = 10 ] || t_fail "vif63.0 after a restart: tag $(vsa get port vif63.0 tag)"
png 1 10.93.1.2 || t_fail "g1 -> g2 after pvio-backd's restart"
t_pass "a restarted pvio-backd finds its ports in place; traffic goes on"

# ---- bad configuration: an error node each, the others go on -----------------------
export XENSTORED_PATH="$WA/xs/dom0.sock"
bad() {	# devid bridge error-text
	ca vif-attach g1 --devid "$1" --bridge "$2" --no-wait >/dev/null ||
		t_fail "vif-attach --bridge $2"
	for _ in $(seq 100); do
		xenstore-read "$BE/vif/61/$1/error" >/dev/null 2>&1 && break
		sleep 0.05
	done
	xenstore-read "$BE/vif/61/$1/error" 2>/dev/null | grep -q -- "$3" ||
		t_fail "bridge $2: error node '$(xenstore-read "$BE/vif/61/$1/error" 2>&1)', want '$3'"
	t_log "bridge $2: $(xenstore-read "$BE/vif/61/$1/error")"
}
bad 1 br-nope "no bridge br-nope: not a Linux bridge; no Open vSwitch bridge br-nope"
bad 2 br-int.4096 "VLAN 4096 out of range (0..4095)"
bad 3 br-int.x "bad bridge 'br-int.x'"
bad 4 br-nope.10 "no Open vSwitch bridge br-nope"
# a port of that name on another bridge (an operator's) is not taken over
vsa add-port br-phy vif61.6 || t_fail "add-port br-phy vif61.6"
bad 6 br-int "vif61.6 is a port of another Open vSwitch bridge"
vsa list-ports br-phy | grep -qx vif61.6 || t_fail "the operator's port vif61.6 went"
vsa list-ports br-int | grep -q "vif61\.[1-6]" && t_fail "a failed vif is a port: $(vsa list-ports br-int)"
png 1 10.93.1.2 || t_fail "g1's working vif after its neighbours' failures"
t_pass "bad bridges (none, VLAN out of range, malformed) fail their device with an error node"
for d in 1 2 3 4 6; do ca vif-detach g1 $d >/dev/null 2>&1; done
vsa del-port br-phy vif61.6

# an ovsdb-server that does not answer: that vif fails after 3 s, the
# others' traffic goes on meanwhile
kill -STOP "$OVSDB_A"
ca vif-attach g1 --devid 5 --bridge br-int --no-wait >/dev/null || t_fail "vif-attach 5"
png 1 10.93.1.2 || { kill -CONT "$OVSDB_A"; t_fail "g1's vif while ovsdb-server hangs"; }
for _ in $(seq 200); do
	xenstore-read "$BE/vif/61/5/error" >/dev/null 2>&1 && break
	sleep 0.05
done
kill -CONT "$OVSDB_A"
xenstore-read "$BE/vif/61/5/error" 2>/dev/null | grep -q "no answer in 3 s" ||
	t_fail "hung ovsdb-server: error node '$(xenstore-read "$BE/vif/61/5/error" 2>&1)'"
ca vif-detach g1 5 >/dev/null 2>&1
t_pass "a hung ovsdb-server fails the vif being attached after 3 s; the others go on"

# ---- detach: the port goes with the vif ---------------------------------------------
for p in $NF_PIDS; do kill "$p" 2>/dev/null; done
# g4's port: its script's offline step takes it away (vif-detach runs it
# as libxl does, where the script reaches host B's OVS)
ca vif-detach g1 0 && ca vif-detach g3 0 && ca vif-detach g5 0 && ca vif-detach g5 1 &&
	cb vif-detach g2 0 || t_fail "vif-detach"
OVS_RUNDIR=$OB ip netns exec "$HB" "$PVIO_CTL" -w "$WB" vif-detach g4 0 ||
	t_fail "vif-detach g4 (vif-openvswitch offline)"
for _ in $(seq 200); do
	vsa list-ports br-int | grep -q '^vif' || vsb list-ports br-int | grep -q '^vif' ||
		break
	sleep 0.05
done
vsa list-ports br-int | grep -q '^vif' && t_fail "ports left on A: $(vsa list-ports br-int)"
vsb list-ports br-int | grep -q '^vif' && t_fail "ports left on B: $(vsb list-ports br-int)"
for _ in $(seq 200); do
	ip netns exec "$HA" ip link show | grep -q 'vif6' ||
		ip netns exec "$HB" ip link show | grep -q 'vif6' || break
	sleep 0.05
done
ip netns exec "$HA" ip link show | grep -q 'vif6' && t_fail "TAPs left on A"
W=$WA BACKD_PID=$BA t_backd_down
W=$WB BACKD_PID=$BB t_backd_down
t_pass "vif-detach takes the port off the bridge; the TAPs go"
t_log "took $(($(date +%s) - START)) s"
exit 0
