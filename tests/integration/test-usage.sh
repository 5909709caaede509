#!/bin/sh
# SPDX-License-Identifier: MIT
# Bad command lines of every program: one line on stderr, exit status 2,
# nothing started (no world, no sockets).
set -u
B=${PVIO_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
err=$(mktemp)
trap 'rm -f "$err"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
n=0

bad() {	# EXPECTED-TEXT PROGRAM ARGS...
	want=$1
	prog=$2
	shift 2
	"$B/$prog" "$@" >/dev/null 2>"$err" </dev/null
	rc=$?
	[ $rc -eq 2 ] || fail "$prog $*: exit $rc, want 2: $(cat "$err")"
	[ "$(wc -l <"$err")" -eq 1 ] || fail "$prog $*: not one line: $(cat "$err")"
	grep -q -- "$want" "$err" || fail "$prog $*: '$(cat "$err")' lacks '$want'"
	n=$((n + 1))
}

bad "unknown option '--bogus'" pvio-backd --bogus
bad "option '-w' needs a value" pvio-backd -w
bad "option '--workers' needs a value" pvio-backd --workers
# a bundle of short options: the one refused, not the word before it
bad "unknown option '-X'" pvio-backd -Xw 2
bad "unknown option '-X'" pvio-backd --buffered -Xw 2
bad "option '-n' needs a value" pvio-ctl -w /nonexistent top -bn
bad "unknown option '-X'" pvio-ctl -w /nonexistent top -bXn 1
bad "bad --workers" pvio-backd --workers 0
bad "bad --max-ring-order" pvio-backd --max-ring-order 5
bad "unknown kind 'vbd4'" pvio-backd --kinds vbd,vbd4
bad "'vbd' twice" pvio-backd --kinds vbd,vif,vbd
bad "not both" pvio-backd --kinds vbd3 --no-vif
# kinds: at most 15 characters (a device's type[16]), each once, and
# served as one of vbd and vif
bad "kind 'abcdefghijklmnop' is longer than 15" \
	pvio-backd -p sim:/nonexistent --vbd-types vbd,abcdefghijklmnop
bad "bad --vif-types: kind 'abcdefghijklmnop' is longer" \
	pvio-backd -p sim:/nonexistent --vif-types abcdefghijklmnop
bad "bad --vbd-types: 'vbd' twice" \
	pvio-backd -p sim:/nonexistent --vbd-types vbd,vbd3,vbd
bad "kind 'vif' in both --vbd-types and --vif-types" \
	pvio-backd -p sim:/nonexistent --vbd-types vif --vif-types vif
bad "kind 'vbd3' in both" \
	pvio-backd -p sim:/nonexistent --vbd-types vbd,vbd3 --vif-types vbd3,vif
bad "kind 'vif' in both" pvio-backd -p sim:/nonexistent --vbd-types vbd,vif
bad "bad --vbd-types 'vbd,,vbd3'" \
	pvio-backd -p sim:/nonexistent --vbd-types vbd,,vbd3
bad "bad --kinds 'vbd,,vif'" pvio-backd -p sim:/nonexistent --kinds vbd,,vif
bad "bad --hotplug-timeout" pvio-backd --hotplug-timeout 0
bad "bad --mtu" pvio-ctl -w /nonexistent vif-attach g --mtu 20
bad "bad --vifname" pvio-ctl -w /nonexistent vif-attach g --vifname "a/b"
bad "bad --journal-dir" pvio-backd --journal-dir relative/dir
# -p sim:/nonexistent: should a case be taken, no world is there to serve
bad "bad --platform 'sim:'" pvio-backd -p sim:
bad "bad --ctl-sock '' (a path of 1..107 bytes)" \
	pvio-backd -p sim:/nonexistent -s ""
bad "bad --ctl-sock '/0000" \
	pvio-backd -p sim:/nonexistent --ctl-sock "/$(printf '%0107d' 0)"
bad "choose one" pvio-backd --no-journal --journal-dir /run/j
bad "unknown option '--bogus'" pvio-simhv --bogus
bad "unknown option '--bogus'" pvio-ringbench --bogus
bad "option '-b' needs a value" pvio-ringbench -b
bad "bad --pages" pvio-ringbench -p 17
bad "unknown option '--bogus'" pvio-netfront --bogus
bad "option '-p' needs a value" pvio-netfront -p
bad "unknown option '--bogus'" pvio-blkfront --bogus
bad "unknown benchmark" pvio-bench foo
bad "which benchmark" pvio-bench
bad "the quiet guests read at QD 1" pvio-bench blk --noisy --qd 4
bad "the 8 guests share one worker" pvio-bench blk --noisy --workers 2
bad "disks only" pvio-bench blk --noisy --vif
bad "bad --mem '1k' (1M..64G)" pvio-ctl -w /nonexistent world start --mem 1k
bad "bad --runs" pvio-bench net --runs 0
bad "no workload" pvio-bench blk --load nope
bad "--base-busy-cpu0 goes with --target" pvio-bench blk --base-busy-cpu0
bad "--base goes with --target" pvio-bench blk --base nbd://h/
bad "unknown command" pvio-ctl bogus
# an argument's control characters print as '?': still one line
bad "bad --kinds 'vbd?x'" pvio-backd --kinds "$(printf 'vbd\nx')"
bad "bad domain name 'a?b'" pvio-ctl -w /nonexistent create "$(printf 'a\nb')"
bad "unknown command 'x?y'" pvio-ctl "$(printf 'x\033y')"
bad "unknown option '--bogus'" pvio-ctl -w /nonexistent create g --bogus
bad "-w (a sim world) and --xen (real Xen): choose one" \
	pvio-ctl -w /nonexistent --xen devices
bad "choose one" pvio-ctl --xen --world /nonexistent stats
bad "unknown command 'bogus'" pvio-ctl bogus --help
bad "option '--domid' needs a value" pvio-ctl -w /nonexistent create g --domid
bad "unknown option '--zz'" pvio-ctl -w /nonexistent vif-attach g --zz
# numbers: a digit first, after 0x too (strtoull takes a sign or spaces)
bad "bad --bytes '0x-1'" pvio-ctl -w /nonexistent vbd-limit g1 xvda --bytes 0x-1
bad "bad --bytes '0x+1'" pvio-ctl -w /nonexistent vbd-limit g1 xvda --bytes 0x+1
bad "bad --iops '0x 1'" pvio-ctl -w /nonexistent vbd-limit g1 xvda --iops "0x 1"
bad "bad --iops '?5'" pvio-ctl -w /nonexistent vbd-limit g1 xvda --iops "$(printf '\t5')"
bad "bad --bytes '0x0x1'" pvio-ctl -w /nonexistent vbd-limit g1 xvda --bytes 0x0x1
bad "bad --workers" pvio-backd --workers 0x-1
# vbd-limit: no more than pvio-backd takes (2^63 - 1)
bad "bad --iops '9223372036854775808' (0..9223372036854775807)" \
	pvio-ctl -w /nonexistent vbd-limit g1 xvda --iops 9223372036854775808
bad "bad --bytes '8388608T' (0..9223372036854775807)" \
	pvio-ctl -w /nonexistent vbd-limit g1 xvda --bytes 8388608T
bad "bad --backend-type" pvio-ctl -w /nonexistent vbd-attach g /dev/null --backend-type "a b"
echo "PASS: $n bad command lines: one line each, exit 2"

# --version: every program, one line "PROG (pvio) VERSION", exit 0
v=0
for prog in pvio-backd pvio-simhv pvio-ctl pvio-blkfront pvio-netfront \
	    pvio-ringbench pvio-bench; do
	out=$("$B/$prog" --version 2>"$err" </dev/null)
	rc=$?
	[ $rc -eq 0 ] || fail "$prog --version: exit $rc: $(cat "$err")"
	echo "$out" | grep -Eq "^$prog \(pvio\) [0-9]+\.[0-9]+\.[0-9]+\$" ||
		fail "$prog --version printed '$out'"
	[ -s "$err" ] && fail "$prog --version wrote to stderr: $(cat "$err")"
	v=$((v + 1))
done
echo "PASS: --version on $v programs"

# --help: every program (and each of pvio-bench's benchmarks and pvio-ctl's
# commands), its usage on stdout, exit 0
h=0
for cmd in pvio-backd pvio-simhv pvio-ctl pvio-blkfront pvio-netfront \
	   pvio-ringbench pvio-bench "pvio-bench blk" "pvio-bench net" \
	   "pvio-ctl vbd-attach" "pvio-ctl -w /nonexistent vif-attach g" \
	   "pvio-ctl world start" "pvio-ctl top -b" "pvio-ctl stats"; do
	set -- $cmd
	prog=$1
	shift
	out=$("$B/$prog" "$@" --help 2>"$err" </dev/null)
	rc=$?
	[ $rc -eq 0 ] || fail "$cmd --help: exit $rc: $(cat "$err")"
	echo "$out" | grep -q "$prog" || fail "$cmd --help printed '$out'"
	[ -s "$err" ] && fail "$cmd --help wrote to stderr: $(cat "$err")"
	h=$((h + 1))
done
echo "PASS: --help on $h command lines"

# ... but not the --help of the program pvio-ctl run starts: that goes to
# run, which finds no world (exit 1)
"$B/pvio-ctl" -w /nonexistent run g -- prog --help >/dev/null 2>"$err"
rc=$?
[ $rc -eq 1 ] || fail "pvio-ctl run g -- prog --help: exit $rc, want 1"
grep -q "no sim world" "$err" ||
	fail "pvio-ctl run g -- prog --help: '$(cat "$err")'"
echo "PASS: run's command keeps its --help"
