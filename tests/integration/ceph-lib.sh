# SPDX-License-Identifier: MIT
# A one-mon, one-OSD Ceph cluster on loopback (memstore, no auth, no
# manager), for the RBD tests: about what ceph/go-ceph's micro-osd.sh does.
# Source it after lib.sh; ceph_up DIR PORT starts it (exports CEPH_CONF;
# the mon on PORT or, if something listens there, on the next free port;
# the mon and the OSD on CEPH_ADDR, 127.0.0.1 unless set),
# ceph_image_up DIR PORT SIZE too, with pool rbd and image rbd/disk1 of
# SIZE (t_fail otherwise); ceph_down stops it. Bounded: every wait has a
# deadline.
CEPH_MON_PID=
CEPH_OSD_PID=

# The first port from PORT on with no listener; another program's
# listener on the mon's port makes ceph-mon retry its bind for 10 s and
# exit (seen once in CI on a fresh machine: "ceph: no monitor")
ceph_free_port() {	# port
	local p
	for p in $(seq "$1" $(($1 + 50))); do
		ss -Hltn "sport = :$p" 2>/dev/null | grep -q . || { echo "$p"; return 0; }
	done
	return 1
}

# Start a mon on PORT in DIR (fresh data); wait until it answers. Fails
# at once if it exits (its bind failed), after 30 s otherwise.
ceph_mon_up() {	# dir port
	local dir=$1 port=$2 fsid i
	fsid=$(cat /proc/sys/kernel/random/uuid)
	rm -rf "$dir/mon" && mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" ||
		return 1
	cat >"$dir/ceph.conf" <<CONF
[global]
fsid = $fsid
mon host = ${CEPH_ADDR:-127.0.0.1}:$port
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
osd pool default size = 1
osd pool default min size = 1
osd objectstore = memstore
memstore device bytes = 536870912
memstore page set = true
osd crush chooseleaf type = 0
run dir = $dir/run
log file = $dir/log/\$name.log
ms bind ipv6 = false
mon allow pool delete = true
mon warn on pool no redundancy = false
osd op queue = wpq
# the OSD's own crush and device-class commands at boot: sent before its
# monitor client knows the cluster's fsid they are refused and never
# answered, and the OSD waits for them forever (1 start in about 25 on a
# loaded machine); the crush entry is made by hand below
osd crush update on start = false
osd class update on start = false
# a PG's read lease (heartbeat grace x ratio, 16 s by default) outlasts
# any stop of the OSD in the tests: a lone OSD that resumes with its
# lease expired can latch the PG "laggy" for good, every op "waiting for
# readable" (ceph/ceph-container#1682; tracker.ceph.com/issues/80404);
# pvio-backd's writes after the cluster came back then timed out (1 run
# in about 8 of test-backd-rbd.sh)
osd pool default read lease ratio = 15
[mon.a]
mon data = $dir/mon
mon addr = ${CEPH_ADDR:-127.0.0.1}:$port
[osd.0]
osd data = $dir/osd
${CEPH_ADDR:+public addr = $CEPH_ADDR}
CONF
	export CEPH_CONF=$dir/ceph.conf
	ceph-mon --mkfs -i a --keyring /dev/null >"$dir/log/mkfs-mon.out" 2>&1 ||
		{ cat "$dir/log/mkfs-mon.out" >&2; return 1; }
	# each daemon in a session of its own: the tests SIGSTOP them, and a
	# stopped process in a process group the kernel finds orphaned gets
	# SIGHUP and SIGCONT (a cluster "stopped" went on serving: a test
	# runner's process group, a loop started in the background). Not for
	# benchmarks (tools/bench-remote.sh sets CEPH_SETSID empty): a session
	# is a scheduling autogroup, and a cluster in one of its own takes
	# half of the CPU it shares, busy or not (RBD 128 KiB reads fell from
	# 0.87x to 0.60x of fio's)
	: "${CEPH_SETSID=setsid}"
	$CEPH_SETSID ceph-mon -f -i a >"$dir/log/mon.out" 2>&1 &
	CEPH_MON_PID=$!
	for i in $(seq 30); do
		kill -0 "$CEPH_MON_PID" 2>/dev/null || break
		timeout 10 ceph --connect-timeout 1 mon stat >/dev/null \
			2>"$dir/log/mon-stat.err" && return 0
	done
	echo "ceph: no monitor on ${CEPH_ADDR:-127.0.0.1}:$port ($( (kill -0 "$CEPH_MON_PID" 2>/dev/null &&
		echo running) || echo exited)): $(tail -n 3 "$dir/log/mon-stat.err")" >&2
	tail -n 5 "$dir/log/mon.out" "$dir/log/mon.a.log" >&2
	kill -KILL "$CEPH_MON_PID" 2>/dev/null
	wait "$CEPH_MON_PID" 2>/dev/null
	CEPH_MON_PID=
	return 1
}

# ceph_cmd ERRFILE ARGS...: a ceph command, again (3 tries) when the
# client could not even fetch the monitor's command descriptions ("Error
# EPERM: problem getting command descriptions from mon.": nothing was
# sent; seen once, on a loaded machine, right after "osd create" worked)
ceph_cmd() {
	local err=$1 i
	shift
	for i in 1 2 3; do
		timeout 30 ceph "$@" >/dev/null 2>"$err" && return 0
		grep -q "problem getting command descriptions" "$err" || return 1
		sleep 1
	done
	return 1
}

ceph_up() {	# dir port: the mon on PORT or, taken, the next free one
	local dir=$1 port=$2 try i
	for try in 1 2 3; do
		port=$(ceph_free_port "$port") ||
			{ echo "ceph: no free port from $2" >&2; return 1; }
		ceph_mon_up "$dir" "$port" && break
		[ "$try" = 3 ] && return 1
		port=$((port + 1))
	done
	ceph_cmd "$dir/log/osd-create.err" osd create ||
		{ echo "ceph: osd create: $(cat "$dir/log/osd-create.err")" >&2; return 1; }
	ceph_cmd "$dir/log/crush.err" osd crush add osd.0 1 root=default ||
		{ echo "ceph: crush add: $(cat "$dir/log/crush.err")" >&2; return 1; }
	ceph-osd --mkfs -i 0 >"$dir/log/mkfs-osd.out" 2>&1 ||
		{ cat "$dir/log/mkfs-osd.out" >&2; return 1; }
	# on a loaded machine the first boot of the OSD is sometimes not
	# seen by the monitor: one more start before giving up
	for _ in 1 2; do
		$CEPH_SETSID ceph-osd -f -i 0 >>"$dir/log/osd.out" 2>&1 &
		CEPH_OSD_PID=$!
		for i in $(seq 100); do
			timeout 10 ceph osd stat 2>/dev/null | grep -q "1 up" && return 0
			sleep 0.2
		done
		kill -KILL "$CEPH_OSD_PID" 2>/dev/null
		wait "$CEPH_OSD_PID" 2>/dev/null
	done
	echo "ceph: the OSD did not come up" >&2
	tail -n 8 "$dir/log/osd.out" "$dir/log/osd.0.log" "$dir/log/mon.a.log" >&2
	return 1
}

ceph_image_up() {	# DIR PORT SIZE
	ceph_up "$1" "$2" || t_fail "starting the Ceph cluster (above)"
	ceph_cmd "$1/log/pool.err" osd pool create rbd 8 &&
		timeout 30 rbd pool init rbd &&
		timeout 30 rbd create --size "$3" rbd/disk1 ||
		t_fail "pool and image"
}

ceph_down() {
	local p
	for p in $CEPH_OSD_PID $CEPH_MON_PID; do
		kill -CONT "$p" 2>/dev/null
		kill -TERM "$p" 2>/dev/null
	done
	for p in $CEPH_OSD_PID $CEPH_MON_PID; do
		for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	CEPH_OSD_PID=
	CEPH_MON_PID=
}
