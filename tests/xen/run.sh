#!/bin/bash
# SPDX-License-Identifier: MIT
# tests/xen/run.sh [SCENARIO...]: pvio on real Xen.
#
# Boots Xen 4.17 with Debian's kernel as PV dom0 and one PV domU under QEMU
# (TCG) with the lab kit in ../shared/xenlab: its setup.sh provides the
# packages, kernel and hypervisor (it runs on first use, and again when the
# kit changed or something it provides is missing); the images are our own
# (build-initramfs.sh here) with pvio's programs and tests/xen/{dom0,domU}-init
# inside. Scenarios (default: all, i.e. each scenario_* function in
# dom0-init, '_' read as '-') run in the order dom0-init defines them, in
# at most two boots: one with the kernel's xen-blkback and xen-netback
# loaded for the scenarios named *-linuxback, one without them (pvio-backd
# serves) for all others. Exit 0 only if each one printed
# "PVIO-XEN <name>: PASS"; 1 if one failed, 77 (skip) when the lab cannot
# run here, 99 on a harness error. On a failure: the failed scenarios' part
# of the console, the domU's console and pvio-backd's log.
#
# Environment:
#   PVIO_SRCDIR, PVIO_BUILDDIR  the trees (default: this script's tree; the
#                         current directory if it was configured)
#   XENLAB_KIT            the lab kit (default $PVIO_SRCDIR/../shared/xenlab)
#   XENLAB_WORK           the kit's work dir (default ${TMPDIR:-/tmp}/xenlab)
#   PVIO_XEN_TIMEOUT      seconds for each boot (default 540; about 130 on an
#                         idle 2-CPU machine)
#   PVIO_XEN_JOBS=1|2     boots at a time (default 2 when 3 GiB of memory
#                         are available: each QEMU takes ~1.3 GB; the boots
#                         wait on their guests much of the time, so two
#                         share even two CPUs well)
#   PVIO_XEN_NOBUILD=1    do not run make first (make check-xen just did)
#   PVIO_XEN_SETUP=always run setup.sh even when its output is current
#   PVIO_XEN_VERBOSE=1    print the whole console log
# Output: $PVIO_BUILDDIR/tests/xen-lab/: images/, logs/<scenarios>.log (the
# serial console of one boot: Xen, dom0, pvio-backd's log, and at the end
# the domU's console); PVIO-XEN-FIGURES lines (the block counters) are
# repeated on stdout.
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
KNOWN=$(sed -n 's/^scenario_\([A-Za-z0-9_]*\)() {.*/\1/p' "$HERE/dom0-init" | tr _ -)
if [ $# -gt 0 ]; then ASKED=" $* "; else ASKED=" $(echo $KNOWN) "; fi
for s in $ASKED; do
	case " $(echo $KNOWN) " in
	*" $s "*) ;;
	*) die "no scenario '$s' (known: $(echo $KNOWN))" ;;
	esac
done
# dom0-init's order; the kernel backends' scenarios in a boot of their own
SCEN= BOOT_US= BOOT_KB=
for s in $KNOWN; do
	case $ASKED in *" $s "*) ;; *) continue ;; esac
	SCEN="$SCEN $s"
	case $s in
	*-linuxback) BOOT_KB="$BOOT_KB $s" ;;
	*) BOOT_US="$BOOT_US $s" ;;
	esac
done
SCEN=$(echo $SCEN)

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

# ---- the lab's other host: blk-rbd's Ceph cluster, blk-nbd-net's NBD server ----------
# On this machine, on 10.99.9.1 (an address of lo while the lab runs): a
# boot with blk-rbd or blk-nbd-net gets an e1000 on QEMU's user-mode
# network, which makes dom0's connections to 10.99.9.1 this machine's
# own. blk-rbd: one mon and one memstore OSD (tests/integration/ceph-lib.sh),
# the mon's address on dom0's command line (pvio.ceph=). blk-nbd-net:
# nbdkit's memory plugin (64 MiB) on port 10810 (pvio.nbd=). "none" if
# one could not start: the scenario fails with the reason printed here.
CEPH_ARG=
NBD_ARG=
LAB_NBD_PID=
LAB_ADDR_ADDED=
CEPH_DIR=$LAB/ceph
lab_host_down() {
	if [ -n "${CEPH_MON_PID:-}${CEPH_OSD_PID:-}" ]; then
		ceph_down
		echo "tests/xen: the Ceph cluster stopped"
	fi
	if [ -n "$LAB_NBD_PID" ]; then
		kill "$LAB_NBD_PID" 2>/dev/null
		wait "$LAB_NBD_PID" 2>/dev/null
		LAB_NBD_PID=
	fi
	[ -z "$LAB_ADDR_ADDED" ] || ip addr del 10.99.9.1/32 dev lo 2>/dev/null
	LAB_ADDR_ADDED=
}
lab_addr_up() {	# SCENARIO
	ip -o addr show dev lo | grep -q ' 10\.99\.9\.1/' && return 0
	ip addr add 10.99.9.1/32 dev lo ||
		{ echo "tests/xen: $1: cannot give lo the address 10.99.9.1"; return 1; }
	LAB_ADDR_ADDED=1
}
lab_ceph_up() {
	local b t0
	for b in ceph-mon ceph-osd ceph rbd; do
		command -v $b >/dev/null || { echo "tests/xen: blk-rbd: no $b (ceph-mon, ceph-osd, ceph-common: tools/install-deps.sh)"; return 1; }
	done
	# shellcheck source=../integration/ceph-lib.sh
	. "$PVIO_SRCDIR/tests/integration/ceph-lib.sh"
	lab_addr_up blk-rbd || return 1
	t0=$(date +%s.%N)
	CEPH_ADDR=10.99.9.1 ceph_up "$CEPH_DIR" 6795 > "$LAB/logs/ceph.log" 2>&1 &&
		timeout 30 ceph osd pool create rbd 8 >> "$LAB/logs/ceph.log" 2>&1 &&
		timeout 30 rbd pool init rbd >> "$LAB/logs/ceph.log" 2>&1 ||
		{ echo "tests/xen: blk-rbd: the Ceph cluster did not start:"; tail -n 5 "$LAB/logs/ceph.log"; return 1; }
	CEPH_ARG="pvio.ceph=$(sed -n 's/^mon host = //p' "$CEPH_CONF")"
	echo "tests/xen: a Ceph cluster for blk-rbd on ${CEPH_ARG#*=} ($(elapsed "$t0") s; log: $CEPH_DIR/log)"
}
lab_nbd_up() {
	local i
	command -v nbdkit >/dev/null || { echo "tests/xen: blk-nbd-net: no nbdkit (tools/install-deps.sh)"; return 1; }
	lab_addr_up blk-nbd-net || return 1
	# its connections (not its requests) logged, with the wall clock as
	# pvio-backd's lines in dom0's log have it: when a reconnection is
	# slow, whether it reached the server, and when
	nbdkit --foreground --exit-with-parent -v -D nbdkit.backend.datapath=0 \
		-i 10.99.9.1 -p 10810 memory 64M \
		> >(python3 -u -c 'import sys, time
for l in sys.stdin:
    t = time.time()
    sys.stdout.write(time.strftime("%H:%M:%S", time.gmtime(t)) + ".%03d " % (t % 1 * 1000) + l)' \
		> "$LAB/logs/nbdkit.log") 2>&1 &
	LAB_NBD_PID=$!
	for i in $(seq 100); do
		ss -ltn | grep -q ' 10\.99\.9\.1:10810 ' && break
		sleep 0.05
	done
	ss -ltn | grep -q ' 10\.99\.9\.1:10810 ' ||
		{ echo "tests/xen: blk-nbd-net: nbdkit did not start: $(tail -n 1 "$LAB/logs/nbdkit.log")"; return 1; }
	NBD_ARG=pvio.nbd=10.99.9.1:10810
	echo "tests/xen: nbdkit for blk-nbd-net on 10.99.9.1:10810 (pid $LAB_NBD_PID)"
}
trap lab_host_down EXIT
case " $BOOT_US " in
*" blk-rbd "*) lab_ceph_up || CEPH_ARG=pvio.ceph=none ;;
esac
case " $BOOT_US " in
*" blk-nbd-net "*) lab_nbd_up || NBD_ARG=pvio.nbd=none ;;
esac

# ---- boots -----------------------------------------------------------------------
TIMEOUT=${PVIO_XEN_TIMEOUT:-540}
# No commas in the dom0 command line: they separate QEMU's multiboot modules.
# dom0_mem: dom0 unpacks its initramfs (pvio-backd with librbd's closure and the
# domU's image, ~180 MB uncompressed) into RAM: 512 MB no longer holds it.
XENARGS="console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=1 loglvl=all guest_loglvl=all"
TS=cat
command -v python3 >/dev/null && TS="python3 -u $XENLAB_KIT/tsfilter.py"

# boot KBACK SCENARIO...: one machine; its console in $LAB/logs/<names>.log,
# QEMU's exit status in the .rc file beside it
boot() {
	local kback=$1 name log t0 rc nic ceph
	shift
	name=$(echo "$@" | tr ' ' '+')
	log=$LAB/logs/$name.log
	echo "tests/xen: booting Xen + dom0 + domU for: $* (kernel backends: $([ "$kback" = 1 ] && echo loaded || echo not loaded); log: $log)"
	t0=$(date +%s.%N)
	# -cpu: not "max" (SMAP emulation breaks a PV dom0 under TCG); +rdrand, or
	# every xl create waits ~3 s for entropy. -no-reboot: dom0's reboot ends QEMU.
	# blk-rbd's and blk-nbd-net's way to the lab's host: an e1000 on
	# QEMU's user-mode network
	nic=none host=
	case "+$name+" in
	*+blk-rbd+*) host=" $CEPH_ARG" ;;
	esac
	case "+$name+" in
	*+blk-nbd-net+*) host="$host $NBD_ARG" ;;
	esac
	case $host in
	*=10.99.9.1:*) nic=user,model=e1000 ;;
	esac
	timeout "$TIMEOUT" qemu-system-x86_64 \
		-machine pc -accel tcg,thread=multi -cpu qemu64,+rdrand -smp 2 -m 1536 \
		-display none -monitor none -serial stdio -nic $nic -no-reboot \
		-kernel "$XEN" -append "$XENARGS" \
		-initrd "$VMLINUX console=hvc0 earlyprintk=xen rdinit=/init loglevel=4 pvio.kback=$kback pvio.deadline=$((TIMEOUT - 20)) pvio.scenarios=$name$host,$LAB/images/dom0.cpio" \
		</dev/null 2>&1 |
		sed -u 's/\r*$//' | $TS | tee "$log" |
		grep --line-buffered -E '(PVIO-XEN |T\+[0-9.]+s \[dom0\])' | sed -u "s/^/  [$name] /"
	rc=${PIPESTATUS[0]}
	echo "$rc $(elapsed "$t0")" > "$log.rc"
	[ "$rc" = 124 ] && echo "tests/xen: QEMU ($name) killed after ${TIMEOUT} s"
	return 0
}

JOBS=${PVIO_XEN_JOBS:-}
if [ -z "$JOBS" ]; then
	JOBS=1
	[ "$(awk '/^MemAvailable:/ { print int($2 / 1048576) }' /proc/meminfo)" -ge 3 ] && JOBS=2
fi
T2=$(date +%s.%N)
LOGS= BOOTS=
for b in "0 $BOOT_US" "1 $BOOT_KB"; do
	set -- $b
	[ $# -gt 1 ] || continue
	LOGS="$LOGS $LAB/logs/$(echo "${*:2}" | tr ' ' '+').log"
	if [ "$JOBS" -gt 1 ]; then boot "$@" & BOOTS="$BOOTS $!"; else boot "$@"; fi
done
# (not a bare wait: the lab's Ceph daemons and nbdkit are our children too)
for p in $BOOTS; do wait "$p"; done
BOOT=$(elapsed "$T2")

# ---- verdicts --------------------------------------------------------------------------
# section LOG SCENARIO: the dom0 console of that scenario
section() {
	awk -v s="$2" '
		/T\+[0-9.]+s \[dom0\] scenario / { on = ($NF == s) }
		/===== (pvio-backd log|domU console) =====/ { on = 0 }
		on' "$1"
}
failed=0
for log in $LOGS; do
	read -r qrc secs < "$log.rc"
	bad=
	for s in $(basename "$log" .log | tr '+' ' '); do
		line=$(grep -a -o "PVIO-XEN $s: .*" "$log" | tail -n 1 | tr -d '\r')
		case $line in
		"PVIO-XEN $s: PASS") echo "PASS: $s"; continue ;;
		"") echo "FAIL: $s: no verdict (QEMU exit status $qrc)" ;;
		*) echo "FAIL: $s: ${line#PVIO-XEN $s: FAIL }" ;;
		esac
		failed=$((failed + 1))
		bad="$bad $s"
	done
	if [ -n "$bad" ] && [ "${PVIO_XEN_VERBOSE:-}" != 1 ]; then
		for s in $bad; do
			echo "----- $s: dom0's console ($log) -----"
			if grep -q "\[dom0\] scenario $s\$" "$log"; then
				section "$log" "$s"
			else
				sed -n '/PVIO-DOM0-START/,/===== pvio-backd log/p' "$log" | tail -n 60
			fi
		done
		echo "----- the domU's console -----"
		sed -n '/===== domU console =====/,/===== end of domU console/p' "$log"
		if grep -q '===== pvio-backd log =====' "$log"; then
			echo "----- pvio-backd's log -----"
			sed -n '/===== pvio-backd log =====/,/===== end of pvio-backd log/p' "$log"
		fi
		echo "----- end of the failures of this boot -----"
	fi
	echo "tests/xen: boot $(basename "$log" .log): ${secs} s"
done
grep -h -a -o 'PVIO-XEN-FIGURES .*' $LOGS | tr -d '\r'
if [ "${PVIO_XEN_VERBOSE:-}" = 1 ]; then
	for log in $LOGS; do
		echo "----- console log ($log) -----"
		cat "$log"
	done
fi
echo "tests/xen: $(echo $SCEN | wc -w) scenario(s), $failed failed; boots ${BOOT} s, total $(elapsed "$T0") s"
[ $failed -eq 0 ]
