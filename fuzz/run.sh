#!/bin/bash
# SPDX-License-Identifier: MIT
# Run every libFuzzer harness (make fuzz; .ci/run): each for FUZZ_SECONDS
# (default 60) from a copy of its corpus in the tree, one process at a
# time. A crash, leak, timeout or broken invariant fails the run, with the
# harness's report and the input that did it in hex (also kept in
# FUZZ_ARTIFACTS, default a temporary directory).
#   run.sh BINDIR CORPUSDIR
#   FUZZ_SECONDS=N        time per harness
#   FUZZ_HARNESSES="a b"  only these (names without fuzz-)
#   FUZZ_MERGE=1          fold new coverage back into CORPUSDIR, minimized
set -u
bindir=$1 corpus=$2
secs=${FUZZ_SECONDS:-60}
art=${FUZZ_ARTIFACTS:-$(mktemp -d /tmp/pvio-fuzz-art.XXXXXX)}
mkdir -p "$art" || exit 2
names=${FUZZ_HARNESSES:-$(cd "$bindir" && ls fuzz-* | sed 's/^fuzz-//')}
failed=""
for n in $names; do
	bin=$bindir/fuzz-$n
	[ -x "$bin" ] || { echo "fuzz: no harness $bin" >&2; exit 2; }
	work=$(mktemp -d /tmp/pvio-fuzz-$n.XXXXXX)
	[ -d "$corpus/$n" ] && cp -a "$corpus/$n/." "$work/"
	log=$art/$n.log
	echo "fuzz: $n for ${secs}s from $(ls "$work" | wc -l) corpus inputs"
	nice -n 19 "$bin" -max_total_time="$secs" -timeout=10 \
		-rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$art/$n-" "$work" >"$log" 2>&1
	rc=$?
	grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 | sed "s/^/fuzz: $n: /"
	if [ $rc -ne 0 ]; then
		failed="$failed $n"
		echo "fuzz: $n FAILED (exit $rc); its report:"
		grep -vE '^#[0-9]+ ' "$log" | tail -60
		for a in "$art/$n-"*; do
			[ -f "$a" ] || continue
			echo "fuzz: $n: the input ($(wc -c <"$a") bytes, $a), hex:"
			od -An -tx1 -v "$a" | head -256
		done
	elif [ "${FUZZ_MERGE:-0}" = 1 ]; then
		mkdir -p "$corpus/$n"
		"$bin" -merge=1 "$corpus/$n" "$work" >>"$log" 2>&1
		echo "fuzz: $n: corpus now $(ls "$corpus/$n" | wc -l) inputs"
	fi
	rm -rf "$work"
done
if [ -n "$failed" ]; then
	echo "fuzz: FAILED:$failed (logs and inputs in $art)"
	exit 1
fi
echo "fuzz: every harness ran ${secs}s without a finding"
