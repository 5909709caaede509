#!/bin/bash
# SPDX-License-Identifier: MIT
# tests/xen/run.sh [SCENARIO...]: pvio on real Xen.
#
# Boots Xen 4.17 with Debian's kernel as PV dom0 and one PV domU under QEMU
# (TCG) with the lab kit in ../shared/xenlab: its setup.sh provides the
# packages, kernel and hypervisor (it runs on first use, and again when the
# kit changed or something it provides is missing); the images are our own
# (build-initramfs.sh here) with pvio's programs and tests/xen/{dom0,domU}-init
# inside. One boot
# runs every scenario asked for (default: all, i.e. each scenario_* function
# in dom0-init). Exit 0 only if each one printed "PVIO-XEN <name>: PASS";
# 1 if one failed, 77 (skip) when the lab cannot run here, 99 on a harness
# error.
#
# Environment:
#   PVIO_SRCDIR, PVIO_BUILDDIR  the trees (default: this script's tree; the
#                         current directory if it was configured)
#   XENLAB_KIT            the lab kit (default $PVIO_SRCDIR/../shared/xenlab)
#   XENLAB_WORK           the kit's work dir (default ${TMPDIR:-/tmp}/xenlab)
#   PVIO_XEN_TIMEOUT      seconds for the whole boot (default 150)
#   PVIO_XEN_NOBUILD=1    do not run make first (make check-xen just did)
#   PVIO_XEN_SETUP=always run setup.sh even when its output is current
#   PVIO_XEN_VERBOSE=1    print the whole console log
# Output: $PVIO_BUILDDIR/tests/xen-lab/: images/, logs/<scenarios>.log (the
# serial console: Xen, dom0, and at the end the domU's console).
set -uo pipefail
T0=$(date +%s.%N)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PVIO_SRCDIR=$(cd "${PVIO_SRCDIR:-$HERE/../..}" && pwd)
if [ -z "${PVIO_BUILDDIR:-}" ]; then
	if [ -e "$PWD/config.status" ]; then PVIO_BUILDDIR=$PWD; else PVIO_BUILDDIR=$PVIO_SRCDIR; fi
fi
PVIO_BUILDDIR=$(cd "$PVIO_BUILDDIR" && pwd)
export PVIO_SRCDIR PVIO_BUILDDIR

skip() {
	echo "======================================================================"
	echo "SKIP: tests/xen (real Xen): $*"
	echo "======================================================================"
	exit 77
}
die() {
	echo "ERROR: tests/xen: $*" >&2
	exit 99
}
elapsed() { echo "$(date +%s.%N) $1" | awk '{ printf "%.1f", $1 - $2 }'; }

# ---- scenarios --------------------------------------------------------------
case ${1:-} in
-h|--help) sed -n '3,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
esac
KNOWN=$(sed -n 's/^scenario_\([A-Za-z0-9_]*\)() {.*/\1/p' "$HERE/dom0-init")
if [ $# -gt 0 ]; then SCEN="$*"; else SCEN=$(echo $KNOWN); fi
for s in $SCEN; do
	case " $(echo $KNOWN) " in
	*" $s "*) ;;
	*) die "no scenario '$s' (known: $(echo $KNOWN))" ;;
	esac
done

# ---- the lab's prerequisites --------------------------------------------------
XENLAB_KIT=${XENLAB_KIT:-$PVIO_SRCDIR/../shared/xenlab}
[ -x "$XENLAB_KIT/setup.sh" ] || skip "no lab kit at $XENLAB_KIT (set XENLAB_KIT)"
XENLAB_KIT=$(cd "$XENLAB_KIT" && pwd)
export XENLAB_KIT XENLAB_WORK=${XENLAB_WORK:-${TMPDIR:-/tmp}/xenlab}
LAB=$PVIO_BUILDDIR/tests/xen-lab
mkdir -p "$LAB/logs" "$XENLAB_WORK" || die "cannot create $LAB or $XENLAB_WORK"

# One lab run per build tree at a time (the images are rebuilt each run).
exec 8>"$LAB/.lock"
flock -n 8 || { echo "tests/xen: waiting for another lab run in $LAB"; flock 8; }

# setup.sh is idempotent but rebuilds the kit's own images (~5 s): run it
# when anything we take from it is missing or the kit changed since.
STAMP=$XENLAB_WORK/.pvio-setup-done
setup_needed() {
	local f kver
	[ "${PVIO_XEN_SETUP:-}" = always ] && return 0
	[ -e "$STAMP" ] || return 0
	for f in "$XENLAB_KIT"/* "$XENLAB_KIT"/src/*; do [ "$f" -nt "$STAMP" ] && return 0; done
	for f in kver xen-4.17-amd64 out/vmlinux; do [ -s "$XENLAB_WORK/$f" ] || return 0; done
	kver=$(cat "$XENLAB_WORK/kver")
	[ -d "$XENLAB_WORK/kernel/lib/modules/$kver/kernel/drivers/xen" ] || return 0
	# the packages setup.sh installs and the images are made of
	dpkg -s qemu-system-x86 xen-hypervisor-4.17-amd64 xen-utils-4.17 \
		xenstore-utils busybox-static cpio >/dev/null 2>&1 || return 0
	return 1
}
if setup_needed; then
	echo "tests/xen: preparing the lab: $XENLAB_KIT/setup.sh (log: $LAB/logs/setup.log)"
	if ( flock 9; "$XENLAB_KIT/setup.sh" ) 9>"$XENLAB_WORK/.pvio-setup-lock" \
		> "$LAB/logs/setup.log" 2>&1; then
		touch "$STAMP"
	else
		tail -n 20 "$LAB/logs/setup.log"
		command -v qemu-system-x86_64 >/dev/null ||
			skip "QEMU is missing and setup.sh could not install it (see $LAB/logs/setup.log)"
		die "$XENLAB_KIT/setup.sh failed (see $LAB/logs/setup.log)"
	fi
fi
command -v qemu-system-x86_64 >/dev/null || skip "qemu-system-x86_64 is missing"
VMLINUX=$XENLAB_WORK/out/vmlinux
XEN=$XENLAB_WORK/xen-4.17-amd64
[ -s "$VMLINUX" ] && [ -s "$XEN" ] || die "setup.sh left no $VMLINUX or $XEN"

# ---- programs and images --------------------------------------------------------
HELPERS=
for c in "$PVIO_SRCDIR"/tests/xen/t-*.c; do
	[ -e "$c" ] && HELPERS="$HELPERS tests/xen/$(basename "$c" .c)"
done
if [ "${PVIO_XEN_NOBUILD:-}" != 1 ]; then
	# the tree is shared: a step that races another make is simply rerun
	make -s -C "$PVIO_BUILDDIR" all $HELPERS >/dev/null ||
		make -s -C "$PVIO_BUILDDIR" all $HELPERS >/dev/null ||
		die "make failed in $PVIO_BUILDDIR"
fi
for h in $HELPERS; do
	[ -x "$PVIO_BUILDDIR/$h" ] || die "$PVIO_BUILDDIR/$h is not built (make check-xen builds it)"
done
T1=$(date +%s.%N)
LAB=$LAB bash "$HERE/build-initramfs.sh" > "$LAB/logs/build-initramfs.log" 2>&1 ||
	{ tail -n 20 "$LAB/logs/build-initramfs.log"; die "building the images failed"; }
echo "tests/xen: images built in $(elapsed "$T1") s"

# ---- boot --------------------------------------------------------------------------
NAME=$(echo $SCEN | tr ' ' '-')
LOG=$LAB/logs/$NAME.log
TIMEOUT=${PVIO_XEN_TIMEOUT:-150}
# No commas in the dom0 command line: they separate QEMU's multiboot modules.
XENARGS="console=com1 com1=115200,8n1 dom0_mem=512M,max:512M dom0_max_vcpus=1 loglvl=all guest_loglvl=all"
DOM0ARGS="console=hvc0 earlyprintk=xen rdinit=/init loglevel=4 pvio.scenarios=$(echo $SCEN | tr ' ' '+')"
TS=cat
command -v python3 >/dev/null && TS="python3 -u $XENLAB_KIT/tsfilter.py"
echo "tests/xen: booting Xen + dom0 + domU for: $SCEN (log: $LOG)"
T2=$(date +%s.%N)
# -cpu: not "max" (SMAP emulation breaks a PV dom0 under TCG); +rdrand, or
# every xl create waits ~3 s for entropy. -no-reboot: dom0's reboot ends QEMU.
timeout "$TIMEOUT" qemu-system-x86_64 \
	-machine pc -accel tcg,thread=multi -cpu qemu64,+rdrand -smp 2 -m 1024 \
	-display none -monitor none -serial stdio -nic none -no-reboot \
	-kernel "$XEN" -append "$XENARGS" \
	-initrd "$VMLINUX $DOM0ARGS,$LAB/images/dom0.cpio" </dev/null 2>&1 |
	sed -u 's/\r*$//' | $TS | tee "$LOG" |
	grep --line-buffered -E '(PVIO-XEN |T\+[0-9.]+s \[dom0\])' | sed -u 's/^/  /'
QRC=${PIPESTATUS[0]}
BOOT=$(elapsed "$T2")
[ "$QRC" = 124 ] && echo "tests/xen: QEMU killed after ${TIMEOUT} s"

# ---- verdicts --------------------------------------------------------------------------
failed=0
for s in $SCEN; do
	line=$(grep -a -o "PVIO-XEN $s: .*" "$LOG" | tail -n 1 | tr -d '\r')
	case $line in
	"PVIO-XEN $s: PASS") echo "PASS: $s" ;;
	"") echo "FAIL: $s: no verdict (QEMU exit status $QRC)"; failed=$((failed + 1)) ;;
	*) echo "FAIL: $s: ${line#PVIO-XEN $s: FAIL }"; failed=$((failed + 1)) ;;
	esac
done
if [ "${PVIO_XEN_VERBOSE:-}" = 1 ]; then
	echo "----- console log ($LOG) -----"
	cat "$LOG"
elif [ $failed -gt 0 ]; then
	echo "----- console log from dom0's /init on ($LOG) -----"
	if grep -q 'PVIO-DOM0-START' "$LOG"; then
		sed -n '/PVIO-DOM0-START/,$p' "$LOG"
	else
		tail -n 80 "$LOG"
	fi
	echo "----- end of console log -----"
fi
echo "tests/xen: $(echo $SCEN | wc -w) scenario(s), $failed failed; boot ${BOOT} s, total $(elapsed "$T0") s"
[ $failed -eq 0 ]
