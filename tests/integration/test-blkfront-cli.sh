#!/bin/sh
# SPDX-License-Identifier: MIT
#
# test-blkfront-cli.sh: pvio-blkfront's CLI modes (info, read, write,
# flush, discard) as a domain of a private sim world, served by the mock
# backend t-mockblk from an image file: data lands in the image, reads
# come back from it, unaligned I/O on a 4 KiB-sector disk goes through
# read-modify-write, bad command lines exit 2, and every run leaves the
# device Closed on both ends.
#
# Run from the top build directory (make check does). Exit 0: pass,
# 77: skipped, anything else: failure. Every exit path stops the mock
# backends and the world and removes what the test made.

set -u

me=test-blkfront-cli
fail() { echo "$me: FAIL: $*" >&2; exit 1; }
skip() { echo "$me: SKIP: $*" >&2; exit 77; }
pass() { echo "$me: ok: $*"; }

for tool in mktemp truncate cmp dd head grep; do
	command -v "$tool" >/dev/null 2>&1 || skip "$tool not found"
done

top=${PVIO_BUILDDIR:-$(pwd)}
ctl=$top/pvio-ctl
bf=$top/pvio-blkfront
mock=$top/tests/integration/t-mockblk
export PVIO_SIMHV=${PVIO_SIMHV:-$top/pvio-simhv}
for prog in "$ctl" "$bf" "$mock" "$PVIO_SIMHV"; do
	[ -x "$prog" ] || fail "$prog is not built (run: make check)"
done

# unix socket paths are short (108 bytes)
base=${TMPDIR:-/tmp}
[ ${#base} -le 48 ] || base=/tmp
tmp=$(mktemp -d "$base/$me.XXXXXX") || fail "mktemp"
world=$tmp/world
mocks=

cleanup() {
	rc=$?
	trap - EXIT INT TERM HUP
	for p in $mocks; do
		kill -TERM "$p" 2>/dev/null
	done
	wait 2>/dev/null
	"$ctl" -w "$world" world stop >/dev/null 2>&1
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		for f in "$tmp"/*.log "$world/simhv.log"; do
			[ -f "$f" ] || continue
			echo "$me: --- $f ---" >&2
			tail -n 20 "$f" >&2
		done
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 1' INT TERM HUP

# pvio-ctl's own commands exit with their handles open: under ASan that is
# not this test's leak. (`pvio-ctl run` execs pvio-blkfront, which stays
# fully checked.)
ctl() {
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		"$ctl" -w "$world" "$@"
}
# bf ARGS...: pvio-blkfront as the guest
bf() { "$ctl" -w "$world" run guest -- "$bf" "$@"; }

# start_mock LOG ARGS...: a backend for the guest, in the background
start_mock() {
	_log=$1
	shift
	"$mock" --world "$world" --fe "$dom" "$@" >"$tmp/$_log" 2>&1 &
	mocks="$mocks $!"
	_n=0
	until grep -q ready "$tmp/$_log" 2>/dev/null; do
		_n=$((_n + 1))
		[ $_n -lt 100 ] || fail "mock backend did not start: $(cat "$tmp/$_log")"
		sleep 0.05
	done
}

states() {	# VDEVID: "Frontend Backend"
	ctl devices guest | awk -v id="$1" '$3 == id { print $4, $5 }'
}

# ---- set-up -----------------------------------------------------------------------
ctl world start >/dev/null || fail "pvio-ctl world start"
dom=$(ctl create guest) || fail "pvio-ctl create"
truncate -s 16M "$tmp/disk.img" || fail "truncate"
truncate -s 8M "$tmp/disk4k.img" || fail "truncate"
ctl vbd-attach guest "$tmp/disk.img" --vdev xvda >/dev/null ||
	fail "vbd-attach xvda"
ctl vbd-attach guest "$tmp/disk4k.img" --vdev xvdb >/dev/null ||
	fail "vbd-attach xvdb"
start_mock mock-a.log --file "$tmp/disk.img" --devid 51712 --flush \
	--discard --discard-gran 4096 --max-ring-order 2 --max-queues 2 \
	--max-indirect 64
start_mock mock-b.log --file "$tmp/disk4k.img" --devid 51728 \
	--sector-size 4096

# ---- info --------------------------------------------------------------------------
bf info >"$tmp/info" 2>"$tmp/info.err" || fail "info: $(cat "$tmp/info.err")"
grep -qx "size: 16777216" "$tmp/info" || fail "info: $(cat "$tmp/info")"
grep -qx "sector-size: 512" "$tmp/info" || fail "info: sector size"
grep -qx "read-only: no" "$tmp/info" || fail "info: read-only"
grep -q "^features: flush discard indirect persistent$" "$tmp/info" ||
	fail "info: $(grep features "$tmp/info")"
grep -qx "max-segments: 32" "$tmp/info" || fail "info: segments"
bf --queues 2 --indirect off --ring-pages 1 info >"$tmp/info2" ||
	fail "info with options"
grep -qx "queues: 2" "$tmp/info2" || fail "info: queues: $(cat "$tmp/info2")"
grep -qx "ring-pages: 1" "$tmp/info2" || fail "info: ring pages"
grep -qx "max-segments: 11" "$tmp/info2" || fail "info: --indirect off"
[ "$(states 51712)" = "Closed Closed" ] ||
	fail "after info: states $(states 51712)"
pass "info, options, Closed on both ends afterwards"

# ---- write, read -----------------------------------------------------------------------
head -c 300000 /dev/urandom >"$tmp/data" || fail "urandom"
bf write 1000 <"$tmp/data" || fail "write"
dd if="$tmp/disk.img" of="$tmp/img-part" bs=1000 skip=1 count=300 \
	2>/dev/null || fail "dd"
cmp "$tmp/data" "$tmp/img-part" || fail "write: the image differs"
bf read 1000 300000 >"$tmp/back" || fail "read"
cmp "$tmp/data" "$tmp/back" || fail "read: differs from what was written"
bf read 16M 0 >"$tmp/empty" || fail "read of nothing at the end"
[ ! -s "$tmp/empty" ] || fail "read 0 bytes gave some"
bf read 16M 1 >/dev/null 2>"$tmp/err" && fail "read past the end"
grep -q "past the end" "$tmp/err" || fail "read past the end: $(cat "$tmp/err")"
head -c 4096 /dev/urandom | bf write 16777200 2>"$tmp/err" &&
	fail "write past the end"
pass "write and read at unaligned offsets (the image agrees)"

# ---- flush, discard -----------------------------------------------------------------------
bf flush || fail "flush"
head -c 65536 /dev/urandom | bf write 0 || fail "write before discard"
bf discard 4096 8192 || fail "discard"
dd if="$tmp/disk.img" bs=4096 skip=1 count=2 2>/dev/null >"$tmp/hole"
head -c 8192 /dev/zero | cmp -s - "$tmp/hole" || fail "discard: not punched"
bf discard 4096 100 2>"$tmp/err" && fail "discard of 100 bytes"
grep -q "sector-aligned" "$tmp/err" || fail "discard: $(cat "$tmp/err")"
bf discard 0 4096 --secure 2>"$tmp/err" && fail "secure discard"
grep -q "does not offer" "$tmp/err" || fail "secure: $(cat "$tmp/err")"
pass "flush, discard, refused discards"

# ---- a 4 KiB-sector disk: read-modify-write ------------------------------------------------
bf --vdev xvdb info >"$tmp/info4k" || fail "info xvdb"
grep -qx "sector-size: 4096" "$tmp/info4k" || fail "xvdb: $(cat "$tmp/info4k")"
head -c 10000 /dev/urandom >"$tmp/d4k" || fail "urandom"
bf --vdev xvdb write 4100 <"$tmp/d4k" || fail "unaligned write on 4k"
bf --vdev xvdb read 4100 10000 >"$tmp/b4k" || fail "read on 4k"
cmp "$tmp/d4k" "$tmp/b4k" || fail "4k: read back differs"
dd if="$tmp/disk4k.img" bs=4 skip=1025 count=2500 2>/dev/null >"$tmp/i4k"
cmp "$tmp/d4k" "$tmp/i4k" || fail "4k: the image differs"
dd if="$tmp/disk4k.img" bs=4 count=1025 2>/dev/null >"$tmp/z4k"
head -c 4100 /dev/zero | cmp -s - "$tmp/z4k" ||
	fail "4k: the bytes before the write changed"
pass "4 KiB sectors: unaligned write and read"

# ---- bad input: one line, exit status 2 -------------------------------------------------
usage() {	# DESCRIPTION ARGS...
	_what=$1
	shift
	bf "$@" >/dev/null 2>"$tmp/usage"
	_rc=$?
	[ $_rc -eq 2 ] || fail "$_what: exit $_rc, want 2"
	[ "$(wc -l <"$tmp/usage")" -eq 1 ] ||
		fail "$_what: not one line: $(cat "$tmp/usage")"
}
usage "no mode"
usage "unknown mode" frobnicate
usage "read without LEN" read 0
usage "bad offset" read x 1
usage "info with an argument" info 1
usage "bad --queues" --queues 0 info
usage "bad --depth" --depth 9999 info
usage "bad --ring-pages" --ring-pages 3 info
usage "bad --indirect" --indirect 5 info
usage "bad --vdev" --vdev xvdz info
usage "--secure with read" read 0 1 --secure
usage "--threads without fuse" --threads 2 info
usage "unknown option" --frob info
usage "fuse without a mount point" fuse
usage "fuse on a missing mount point" fuse "$tmp/nowhere"
env -u PVIO_DOMID -u PVIO_PLATFORM "$bf" info >/dev/null 2>"$tmp/usage"
[ $? -eq 2 ] || fail "no domain: not exit 2"
bf --vdev xvdc --timeout 500 info >/dev/null 2>"$tmp/err" && fail "xvdc"
grep -q "no vbd 51744" "$tmp/err" || fail "xvdc: $(cat "$tmp/err")"
pass "bad command lines exit 2 with one line; a missing vbd exits 1"

[ "$(states 51712)" = "Closed Closed" ] || fail "xvda: $(states 51712)"
[ "$(states 51728)" = "Closed Closed" ] || fail "xvdb: $(states 51728)"
pass "all devices Closed"
exit 0
