#!/bin/bash
# SPDX-License-Identifier: MIT
# A benchmark leaves nothing behind, however it ends. pvio-bench blk is
# killed (SIGKILL) and interrupted (^C: SIGINT to its process group) while
# its guest does I/O, killed twice more at random moments and the moment
# its image and its world's directory are made; pvio-bench
# net is killed in its TCP phase (its guest's namespace and a veth pair
# exist); pvio-ringbench --sim is killed mid-run; pvio-bench blk is
# killed while its world starts (its pvio-simhv held stopped, then let go).
# Within 20 s of each: no
# process of the run (its group, and its pvio-simhv, a daemon of its own),
# no world directory, no image, no namespace, no veth and no TAP of its
# world. pvio-ringbench --sim and tools/bench-remote.sh nbd (pvio-bench blk
# --target), run to their end, leave nothing either (in a sanitizer build,
# their leak checks at exit pass), nor does pvio-bench blk --target killed
# while fio runs its baseline (fio's report was a file in /tmp, which
# stayed).
. "$(dirname "$0")/lib.sh"
BENCH="$B/pvio-bench"
RING="$B/pvio-ringbench"
D=$(mktemp -d "${TMPDIR:-/tmp}/pvio-kill.XXXXXX")
# what a failed check found is stopped, not left to the next test
T_EXTRA_CLEANUP='pkill -f "$D/tmp/"; sleep 0.5; rm -rf "$D"'
mkdir "$D/tmp" "$D/img"
NET=0
[ "$(id -u)" = 0 ] && [ -c /dev/net/tun ] && NET=1

# start WHAT...: the program in a process group of its own (as a shell
# with job control starts it), SIGINT at its default (a script's
# background job ignores it); sets RUN to its pid, which is the group's
start() {
	TMPDIR="$D/tmp" setsid env --default-signal=INT "$@" \
		>"$D/out" 2>&1 </dev/null &
	RUN=$!
	T_PIDS="$T_PIDS $RUN"
	disown "$RUN"	# no "Killed" from this shell: it is what we did
}

# wait_for WHAT CMD...: until CMD succeeds (20 s), the run still going
wait_for() {
	local what=$1 i
	shift
	for i in $(seq 200); do
		"$@" && return 0
		kill -0 "$RUN" 2>/dev/null ||
			t_fail "$what: the run ended first: $(tail -3 "$D/out")"
		sleep 0.1
	done
	t_fail "$what: not within 20 s: $(tail -3 "$D/out")"
}

world_up() { compgen -G "$D/tmp/pvio-*/backd.sock" >/dev/null ||
	     compgen -G "$D/tmp/pvio-ringbench.*/simhv.pid" >/dev/null; }
netns_up() { ip netns list | grep -q "^pvio-bench-$RUN\b"; }

# what the run left: one line per thing, nothing when all is gone
leftovers() {
	pgrep -g "$RUN" -a | sed 's/^/process in its group: /'
	pgrep -f -a "pvio-simhv --world $D/tmp/" | sed 's/^/world: /'
	ls -A "$D/tmp" "$D/img" | grep -v '^$\|:$' | sed 's/^/file: /'
	if [ $NET = 1 ]; then
		ip netns list | grep "^pvio-bench-$RUN\b" | sed 's/^/netns: /'
		ip -o link show | grep -E "^[0-9]+: pvbv$RUN[@:]" |
			sed 's/^/veth: /'
		grep -lF "sim:$D/tmp/" /sys/class/net/*/ifalias 2>/dev/null |
			sed 's/^/TAP: /'
	fi
}

# ended HOW: the run is gone and so is all it had, within 20 s (its world
# takes up to 5 s to stop; sanitizer builds are slower)
ended() {
	local left i
	for i in $(seq 200); do
		left=$(leftovers)
		[ -z "$left" ] && break
		sleep 0.1
	done
	[ -z "$left" ] || t_fail "$1 left: $(echo $left)"
	t_pass "$1: nothing left after $(( i / 10 )).$(( i % 10 )) s ($(grep -c 'stopping it' "$D/out") world stopped by its guard)"
}

start "$BENCH" blk --time 2000 --runs 9 --size 32M --dir "$D/img"
wait_for "pvio-bench blk's world" world_up
sleep 1
kill -KILL "$RUN"
ended "pvio-bench blk, SIGKILL"

start "$BENCH" blk --time 2000 --runs 9 --size 32M --dir "$D/img"
wait_for "pvio-bench blk's world" world_up
sleep 1
kill -INT -- "-$RUN"
ended "pvio-bench blk, ^C"

for r in 1 2; do
	start "$BENCH" blk --time 300 --runs 3 --size 32M --dir "$D/img"
	sleep "0.$(( RANDOM % 10 ))$(( RANDOM % 10 ))"
	kill -KILL "$RUN" 2>/dev/null
	ended "pvio-bench blk, SIGKILL at a random moment ($r)"
done

# killed the moment its image, then its world's directory, is made: with
# PVIO_TEST_GUARD_PAUSE=WHAT it stops itself there (SIGSTOP), the place a
# SIGKILL at a random moment can land (CI, Dec 6: an image was left)
stopped() { [ "$(ps -o stat= -p "$RUN" | cut -c1)" = T ]; }
# without O_TMPFILE (overlayfs before Linux 6.6, NFS) an image is named,
# then registered: that moment is not covered there
whats="file world"
python3 -c 'import os, sys; os.close(os.open(sys.argv[1], os.O_TMPFILE | os.O_RDWR, 0o600))' \
	"$D/img" 2>/dev/null || { whats=world; t_log "SKIP: the image's moment (no O_TMPFILE in $D/img)"; }
for what in $whats; do
	PVIO_TEST_GUARD_PAUSE=$what start "$BENCH" blk --time 300 --runs 3 \
		--size 32M --dir "$D/img"
	wait_for "pvio-bench blk, stopped once its $what is made" stopped
	kill -KILL "$RUN"
	ended "pvio-bench blk, SIGKILL the moment its $what is made"
done

# killed while its world starts: a pvio-simhv that stops itself first
mkdir "$D/slow"
cat >"$D/slow/pvio-simhv" <<EOS
#!/bin/sh
kill -STOP \$\$
exec "$PVIO_SIMHV" "\$@"
EOS
chmod +x "$D/slow/pvio-simhv"
PVIO_SIMHV="$D/slow/pvio-simhv" start "$BENCH" blk --time 300 --runs 3 \
	--size 32M --dir "$D/img"
held() { pgrep -f "^/bin/sh $D/slow/pvio-simhv" >/dev/null &&
	 ps -o stat= -p "$(pgrep -f "^/bin/sh $D/slow/pvio-simhv")" | grep -q T; }
wait_for "pvio-bench blk's world, held" held
slow=$(pgrep -f "^/bin/sh $D/slow/pvio-simhv")
kill -KILL "$RUN"
sleep 1
kill -CONT "$slow" 2>/dev/null	# had it outlived pvio-bench, it starts now
ended "pvio-bench blk, SIGKILL while its world starts"

start "$RING" --sim --time 2000 --runs 20 --mode poll --batch 8 --pages 1
wait_for "pvio-ringbench's world" world_up
sleep 1
kill -KILL "$RUN"
ended "pvio-ringbench --sim, SIGKILL"

# run to its end (in a sanitizer build, also its leak check at exit)
TMPDIR="$D/tmp" "$RING" --sim -t 50 -r 1 -m poll -b 8 -p 1 >"$D/out" 2>&1 ||
	t_fail "pvio-ringbench --sim: $(tail -3 "$D/out")"
left=$(ls -A "$D/tmp"; pgrep -f -a "pvio-simhv --world $D/tmp/")
[ -z "$left" ] || t_fail "pvio-ringbench --sim, run to its end, left: $(echo $left)"
t_pass "pvio-ringbench --sim, run to its end: nothing left"

if [ $NET = 1 ]; then
	start "$BENCH" net --time 2000 --runs 9 --test tcp-guest-to-dom0
	wait_for "pvio-bench net's namespace" netns_up
	sleep 1
	kill -KILL "$RUN"
	ended "pvio-bench net, SIGKILL in its TCP phase"
else
	t_log "SKIP: pvio-bench net (needs root and /dev/net/tun)"
fi

if command -v nbdkit >/dev/null && command -v fio >/dev/null; then
	(cd "$B" && TMPDIR="$D/tmp" "$S/tools/bench-remote.sh" nbd --runs 1 \
		--time 200 --load randread-4k-qd32) >"$D/out" 2>&1 ||
		t_fail "tools/bench-remote.sh nbd: $(tail -3 "$D/out")"
	left=$(ls -A "$D/tmp"; pgrep -f -a "nbdkit.*$D/tmp/")
	[ -z "$left" ] || t_fail "tools/bench-remote.sh nbd left: $(echo $left)"
	t_pass "tools/bench-remote.sh nbd: nothing left"

	# pvio-bench killed while fio runs its baseline: fio ends, and its
	# report goes with it (it was a file in /tmp, which stayed)
	old=$(ls -d /tmp/pvio-bench-fio-* 2>/dev/null | sort)
	(cd "$B" && TMPDIR="$D/tmp" exec setsid "$S/tools/bench-remote.sh" nbd \
		--runs 3 --time 2000 --load randread-4k-qd32) >"$D/out" 2>&1 &
	RUN=$!
	fio_of_run() { pgrep -a fio | grep -F -- "--name=baseline" | grep -F "$D/tmp/"; }
	for _ in $(seq 400); do fio_of_run >/dev/null && break; sleep 0.1; done
	fio_of_run >/dev/null || t_fail "fio's baseline did not start in 40 s: $(tail -3 "$D/out")"
	# the script's child, not its guard (a fork with the same command line)
	pkill -KILL -P "$RUN" -f "pvio-bench blk --target"
	wait "$RUN" 2>/dev/null
	for i in $(seq 200); do
		left=$(fio_of_run; pgrep -a -f "pvio-bench.*$D/tmp/"; ls -A "$D/tmp"
		       comm -13 <(echo "$old") <(ls -d /tmp/pvio-bench-fio-* 2>/dev/null | sort))
		[ -z "$left" ] && break
		sleep 0.1
	done
	[ -z "$left" ] || t_fail "pvio-bench killed while fio runs left: $(echo $left)"
	t_pass "pvio-bench blk --target, SIGKILL while fio runs: nothing left after $(( i / 10 )).$(( i % 10 )) s"
else
	t_log "SKIP: tools/bench-remote.sh nbd (needs nbdkit and fio: tools/install-deps.sh)"
fi
