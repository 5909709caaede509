#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test-simxs.sh: pvio-simhv's xenstore served to Debian's unmodified
# xenstore-* tools and to libxenstore (t-xsclient). Starts a sim world,
# attaches guests (t-attach), and checks reads, writes, listings, removal,
# permissions (a guest confined to its area), xenstore-watch events,
# @introduceDomain and @releaseDomain, transactions, and a clean stop.
#
# Run from the top build directory (make check does). Exit 0: pass,
# 77: skipped (a tool is missing), anything else: failure. Every exit path
# stops the world with SIGTERM and removes what the test made.

set -u

me=test-simxs
fail() { echo "$me: FAIL: $*" >&2; exit 1; }
skip() { echo "$me: SKIP: $*" >&2; exit 77; }
pass() { echo "$me: ok: $*"; }

for tool in xenstore-read xenstore-write xenstore-ls xenstore-list \
	xenstore-rm xenstore-exists xenstore-chmod xenstore-watch timeout \
	mktemp; do
	command -v "$tool" >/dev/null 2>&1 ||
		skip "$tool not found (Debian: apt-get install xenstore-utils)"
done

top=$(pwd)
simhv=$top/pvio-simhv
attach=$top/tests/integration/t-attach
client=$top/tests/integration/t-xsclient
for prog in "$simhv" "$attach" "$client"; do
	[ -x "$prog" ] || fail "$prog is not built (run: make check)"
done

# unix socket paths are short (108 bytes): a long $TMPDIR will not do
base=${TMPDIR:-/tmp}
[ ${#base} -le 48 ] || base=/tmp
tmp=$(mktemp -d "$base/$me.XXXXXX") || fail "mktemp"
world=$tmp/world
log=$tmp/simhv.log
bgpids=
hvpid=
last=		# the pid start_dom and watch_bg started

# pvio-simhv --daemon is not our child: signal it, poll until it is gone.
stop_world() {
	[ -n "$hvpid" ] || return 0
	kill -TERM "$hvpid" 2>/dev/null
	_n=0
	while kill -0 "$hvpid" 2>/dev/null && [ $_n -lt 100 ]; do
		sleep 0.1
		_n=$((_n + 1))
	done
	if kill -0 "$hvpid" 2>/dev/null; then
		kill -KILL "$hvpid" 2>/dev/null
		hvpid=
		echo "$me: pvio-simhv ignored SIGTERM" >&2
		return 1
	fi
	hvpid=
}

# shellcheck disable=SC2317 # called by the trap
cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	for p in $bgpids; do
		kill "$p" 2>/dev/null
	done
	wait 2>/dev/null	# reap them: no zombies either
	stop_world || rc=1
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ] && [ -f "$log" ]; then
		echo "$me: --- the end of the pvio-simhv log ---" >&2
		tail -n 40 "$log" >&2
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# Helpers use _-prefixed variables: POSIX sh has no locals.

# xs DOMID CMD...: run CMD as a client of domain DOMID
xs() {
	_dom=$1
	shift
	XENSTORED_PATH=$world/xs/dom$_dom.sock "$@"
}

# wait_for CMD...: until CMD succeeds, for at most 5 seconds
wait_for() {
	_n=0
	until "$@" 2>/dev/null; do
		_n=$((_n + 1))
		[ $_n -lt 50 ] || return 1
		sleep 0.1
	done
}

expect() {
	[ "$1" = "$2" ] || fail "$3: got '$1', want '$2'"
}

# must_fail WHAT CMD...: CMD must exit non-zero
must_fail() {
	_what=$1
	shift
	if "$@" >/dev/null 2>&1; then
		fail "$_what: allowed"
	fi
}

# start_dom DOMID: a process attached as domain DOMID, created for it
start_dom() {
	"$attach" "$world" "$1" >"$tmp/attach$1.out" 2>&1 &
	last=$!
	bgpids="$bgpids $last"
	wait_for test -S "$world/xs/dom$1.sock" ||
		fail "domain $1 got no xenstore socket"
}

# watch_bg NAME DOMID TIMEOUT ARGS...: xenstore-watch in the background,
# output in $tmp/NAME.out; returns once the initial event (proof that the
# watch is registered) is out
watch_bg() {
	_name=$1 _dom=$2 _t=$3
	shift 3
	XENSTORED_PATH=$world/xs/dom$_dom.sock timeout "$_t" \
		xenstore-watch "$@" >"$tmp/$_name.out" 2>&1 &
	last=$!
	bgpids="$bgpids $last"
	wait_for grep -q . "$tmp/$_name.out" || fail "$_name: no initial event"
}

lines() { wc -l <"$1" | tr -d ' '; }

# ---- a world with dom0 ------------------------------------------------------
"$simhv" --world "$world" --daemon --log-level debug --log-file "$log" ||
	fail "pvio-simhv did not start"
hvpid=$(cat "$world/simhv.pid") || fail "no pid file"
[ -S "$world/xs/dom0.sock" ] || fail "no xenstore socket for dom0"
expect "$(xs 0 xenstore-list /)" "local
tool" "xenstore-list /"
expect "$(xs 0 xenstore-list /local/domain)" "0" "xenstore-list /local/domain"
pass "initial tree"

xs 0 xenstore-write /tool/pvio/test hello /tool/pvio/other "two words" ||
	fail "xenstore-write"
expect "$(xs 0 xenstore-read /tool/pvio/other)" "two words" "xenstore-read"
xs 0 xenstore-exists /tool/pvio/test || fail "xenstore-exists"
must_fail "xenstore-exists on a missing node" \
	xs 0 xenstore-exists /tool/pvio/nope
xs 0 xenstore-rm /tool/pvio/other || fail "xenstore-rm"
must_fail "xenstore-rm left the node" xs 0 xenstore-exists /tool/pvio/other
xs 0 xenstore-ls /tool | grep -q '^ test = "hello"' ||
	fail "xenstore-ls: $(xs 0 xenstore-ls /tool)"
pass "dom0: write, read, exists, rm, ls"

# ---- guests, set up as libxl does -------------------------------------------
start_dom 5
dom5=$last
start_dom 6
dom6=$last
for d in 5 6; do
	xs 0 xenstore-write "/local/domain/$d/name" "guest$d" \
		"/local/domain/$d/data" "" || fail "toolstack writes"
	xs 0 xenstore-chmod "/local/domain/$d" n0 "r$d" ||
		fail "toolstack chmod"
	xs 0 xenstore-chmod "/local/domain/$d/name" n0 "r$d" ||
		fail "toolstack chmod"
	xs 0 xenstore-chmod "/local/domain/$d/data" "n$d" ||
		fail "toolstack chmod"
done
expect "$(xs 5 xenstore-read name)" guest5 "dom5 reads its name"
xs 5 xenstore-write data/key v5 || fail "dom5 writes into its data"
expect "$(xs 0 xenstore-read /local/domain/5/data/key)" v5 "dom0 reads it"
xs 0 xenstore-ls -p /local/domain/5/data | grep -q '^key = "v5".*(n5)$' ||
	fail "dom5 does not own its node: \
$(xs 0 xenstore-ls -p /local/domain/5)"
pass "guest: relative paths, ownership of what it creates"

must_fail "dom5 reads dom0's directory" xs 5 xenstore-read /local/domain/0
must_fail "dom5 lists the domains" xs 5 xenstore-list /local/domain
must_fail "dom5 writes into dom0's area" \
	xs 5 xenstore-write /local/domain/0/x y
must_fail "dom5 writes /tool" xs 5 xenstore-write /tool/x y
must_fail "dom5 reads dom6's name" xs 5 xenstore-read /local/domain/6/name
must_fail "dom5 writes into dom6's data" \
	xs 5 xenstore-write /local/domain/6/data/x y
must_fail "dom5 removes dom6's data" xs 5 xenstore-rm /local/domain/6/data
must_fail "dom5 chmods dom6's data" \
	xs 5 xenstore-chmod /local/domain/6/data n5
must_fail "dom5 writes its read-only name" xs 5 xenstore-write name hacked
expect "$(xs 0 xenstore-read /local/domain/6/name)" guest6 "dom6's name"
pass "guest confined to its area"

xs 5 xenstore-chmod data/key n5 r6 || fail "dom5 chmods its node"
expect "$(xs 6 xenstore-read /local/domain/5/data/key)" v5 "granted read"
must_fail "dom6 writes with read access" \
	xs 6 xenstore-write /local/domain/5/data/key x
must_fail "dom6 chmods a node it does not own" \
	xs 6 xenstore-chmod /local/domain/5/data/key n6
must_fail "dom5 gives its node away" xs 5 xenstore-chmod data/key n6
xs 5 xenstore-rm data/key || fail "dom5 removes its node"
must_fail "removed node still there" xs 5 xenstore-exists data/key
pass "chmod: owner only, grants, no giving away"

# ---- watches ----------------------------------------------------------------
watch_bg w0 0 10 -n 3 /local/domain/5/data
w0=$last
watch_bg w6 6 3 -n 2 /local/domain/5/data
w6=$last
xs 5 xenstore-write data/w1 1 || fail "write for the watchers"
xs 5 xenstore-rm data/w1 || fail "rm for the watchers"
wait "$w0" || fail "dom0's xenstore-watch did not get its 3 events"
expect "$(cat "$tmp/w0.out")" "/local/domain/5/data
/local/domain/5/data/w1
/local/domain/5/data/w1" "dom0's watch events"
wait "$w6"
expect "$?" 124 "dom6's watch on dom5's data: must time out"
expect "$(cat "$tmp/w6.out")" "/local/domain/5/data" \
	"dom6 heard of a node it may not read"
pass "xenstore-watch: initial event, write and rm events, permissions"

watch_bg wi 0 10 -n 2 @introduceDomain
wi=$last
start_dom 7
dom7=$last
wait "$wi" || fail "no @introduceDomain event"
expect "$(lines "$tmp/wi.out")" 2 "@introduceDomain events"
watch_bg wr 0 10 -n 2 @releaseDomain
wr=$last
kill "$dom6"
wait "$wr" || fail "no @releaseDomain event when dom6 died"
expect "$(lines "$tmp/wr.out")" 2 "@releaseDomain events"
wait_for test ! -e "$world/xs/dom6.sock" || fail "dom6's socket stays"
expect "$(xs 0 xenstore-read /local/domain/6/name)" guest6 \
	"dom6's subtree (the toolstack removes it)"
xs 0 xenstore-ls -p /local/domain/6 | grep -q '^data = "".*(n0)$' ||
	fail "dom6's node not revoked: $(xs 0 xenstore-ls -p /local/domain/6)"
xs 0 xenstore-rm /local/domain/6 || fail "toolstack removes dom6's subtree"
pass "@introduceDomain, @releaseDomain, revocation on release"

# ---- libxenstore: transactions, watches, paging, a guest, bad input ---------
"$client" "$world/xs/dom0.sock" "$world/xs/dom7.sock" 7 ||
	fail "t-xsclient"
pass "libxenstore client"

# ---- a clean stop -----------------------------------------------------------
kill "$dom5" "$dom7"
wait_for test ! -e "$world/xs/dom5.sock" || fail "dom5's socket stays"
stop_world || fail "pvio-simhv did not stop"
for f in "$world/xs" "$world/hv.sock" "$world/simhv.pid"; do
	[ ! -e "$f" ] || fail "left behind: $f"
done
# Sanitizer builds: memory errors and undefined behaviour anywhere fail;
# of the leaks at exit only the xenstore server's are this test's business
if grep -E "ERROR: AddressSanitizer|runtime error" "$log" >&2; then
	fail "sanitizer report in the pvio-simhv log"
fi
if awk 'BEGIN { RS = "" } /(Direct|Indirect) leak/ &&
	/(simxs|xs-store)\.c/ { print; bad = 1 } END { exit !bad }' \
	"$log" >&2; then
	fail "the xenstore server leaks"
fi
grep -q "world $world stopped" "$log" || fail "no orderly stop in the log"
pass "SIGTERM: sockets and directory removed"
exit 0
