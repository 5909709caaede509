#!/bin/bash
# SPDX-License-Identifier: MIT
# Build the lab's dom0 and domU initramfs images with pvio's programs inside.
# Adapted from shared/xenlab/build-initramfs.sh (which stays untouched): the
# kernel, its modules and the domU's uncompressed vmlinux come from what
# shared/xenlab/setup.sh left in $XENLAB_WORK; our own /init scripts
# (tests/xen/dom0-init, tests/xen/domU-init) replace the kit's.
#
# env: XENLAB_WORK (the kit's work dir), XENLAB_KIT, PVIO_SRCDIR,
#      PVIO_BUILDDIR, LAB (output dir; images go to $LAB/images),
#      KEEP_ROOTS=1 (keep the image trees next to the cpio files)
# Called by tests/xen/run.sh; standalone use is for debugging.
set -euo pipefail
: "${XENLAB_WORK:?}" "${XENLAB_KIT:?}" "${PVIO_SRCDIR:?}" "${PVIO_BUILDDIR:?}" "${LAB:?}"
HERE=$PVIO_SRCDIR/tests/xen
B=$PVIO_BUILDDIR
KVER=$(cat "$XENLAB_WORK/kver")
KMOD=$XENLAB_WORK/kernel/lib/modules/$KVER/kernel
OUT=$LAB/images
mkdir -p "$OUT"

# Shared libraries of the binaries, found the way they will be at run time
# (libpvio.so from the build tree if a program uses it).
add_libs() {   # $1=root, rest = binaries
  local root=$1; shift
  local b l
  for b in "$@"; do
    LD_LIBRARY_PATH=$B/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} ldd "$b" 2>/dev/null |
      awk '/=>/ && $3 ~ /^\// {print $3} /^[ \t]*\/lib64\// {print $1}' |
      while read -r l; do
        case $l in
        "$B"/*) d=/usr/lib/x86_64-linux-gnu ;;  # libpvio.so.* from .libs/
        *) d=$(dirname "$l") ;;
        esac
        mkdir -p "$root$d"
        [ -e "$root$d/$(basename "$l")" ] || cp -L "$l" "$root$d/"
      done
  done
}
skeleton() {   # $1=root
  local r=$1 a
  rm -rf "$r"
  mkdir -p "$r"/{bin,sbin,etc,proc,sys,dev,tmp,run,var/log,var/lib,root,boot,usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu,usr/lib64,usr/local/bin}
  ln -s usr/lib "$r/lib"; ln -s usr/lib64 "$r/lib64"; ln -s ../run "$r/var/run"
  cp /bin/busybox "$r/bin/busybox"
  for a in $(/bin/busybox --list); do [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"; done
  mkdir -p "$r/lib/modules/$KVER/kernel"
  echo 'root:x:0:0:root:/root:/bin/sh' > "$r/etc/passwd"; echo 'root:x:0:' > "$r/etc/group"
}
add_mods() {   # $1=root, rest = module paths relative to $KMOD (no .ko)
  local r=$1 m; shift
  for m in "$@"; do
    mkdir -p "$r/lib/modules/$KVER/kernel/$(dirname "$m")"
    cp "$KMOD/$m.ko" "$r/lib/modules/$KVER/kernel/$m.ko"
  done
  /bin/busybox depmod -b "$r" "$KVER"
}
# The real binary behind a libtool wrapper script (or the file itself).
real_bin() {
  local f=$1 d n
  if head -c 2 "$f" | grep -q '^#!' && grep -q 'libtool' "$f"; then
    d=$(dirname "$f"); n=$(basename "$f")
    for c in "$d/.libs/$n" "$d/.libs/lt-$n"; do [ -x "$c" ] && { echo "$c"; return; }; done
    echo "build-initramfs: no real binary behind libtool wrapper $f" >&2; return 1
  fi
  echo "$f"
}
# pvio's programs (bin/sbin, built at the top of the build tree) and the
# lab's helpers (tests/xen/t-*), as real ELF binaries.
PROGS=()
for f in "$B"/pvio-* "$B"/tests/xen/t-*; do
  [ -f "$f" ] && [ -x "$f" ] || continue
  case $f in *.c|*.o|*.sh) continue ;; esac
  PROGS+=("$(real_bin "$f")")
done
[ ${#PROGS[@]} -gt 0 ] || { echo "build-initramfs: no programs in $B" >&2; exit 1; }
add_pvio() {   # $1=root [dom0]: a guest gets no dom0 daemon
  local p progs=()
  for p in "${PROGS[@]}"; do
    case ${2:-}:$(basename "$p") in
    :pvio-backd|:lt-pvio-backd|:pvio-simhv|:lt-pvio-simhv) continue ;;
    esac
    progs+=("$p")
  done
  # pvio-backd's closure (librbd, librados, libceph-common, ICU data:
  # ~70 MB) would otherwise ride in the domU's image, and that image again
  # inside dom0's: dom0's 512 MB could no longer unpack its initramfs.
  cp "${progs[@]}" "$1/usr/local/bin/"
  add_libs "$1" "${progs[@]}"
  # dlopen()ed by glibc's pthread_cancel (libxenstore's watch thread, libxl)
  cp -L /lib/x86_64-linux-gnu/libgcc_s.so.1 "$1/usr/lib/x86_64-linux-gnu/"
}
# No compression anywhere: decompressing under TCG costs seconds.
pack() { (cd "$1" && find . | cpio -o -H newc --quiet) > "$2"; }

# The domU's kernel: the ELF image the kit extracted (FAST=1), else ours.
VMLINUX=$XENLAB_WORK/out/vmlinux
if [ ! -s "$VMLINUX" ]; then
  VMLINUX=$OUT/vmlinux
  [ -s "$VMLINUX" ] || python3 "$XENLAB_KIT/extract-vmlinux.py" \
    "$XENLAB_WORK/kernel/boot/vmlinuz-$KVER" "$VMLINUX" >/dev/null
fi

# Both guests: ext4 (mkfs, fsck, mount), loop devices, TAP devices.
EXT4_MODS="crypto/crc32c_generic lib/crc16 fs/mbcache fs/jbd2/jbd2 fs/ext4/ext4"
add_e2fs() {   # $1=root: mkfs.ext4 and fsck.ext4 with their libraries
  local r=$1
  cp /usr/sbin/mke2fs /usr/sbin/e2fsck "$r/usr/sbin/"
  ln -sf mke2fs "$r/usr/sbin/mkfs.ext4"; ln -sf e2fsck "$r/usr/sbin/fsck.ext4"
  if [ -e /etc/mke2fs.conf ]; then cp /etc/mke2fs.conf "$r/etc/"; fi
  add_libs "$r" /usr/sbin/mke2fs /usr/sbin/e2fsck
}
add_xenstore_cli() {   # $1=root
  local r=$1 b
  for b in xenstore xenstore-read xenstore-write xenstore-ls xenstore-list xenstore-rm \
           xenstore-exists xenstore-chmod xenstore-watch; do
    cp -a "/usr/bin/$b" "$r/usr/bin/"
  done
  add_libs "$r" /usr/bin/xenstore
}

# ---------------- domU ----------------
# Linux's own frontends (blk-linuxfront, net-linuxfront), FUSE for
# pvio-blkfront's export, TAP for pvio-netfront; loaded by the scenarios
# that need them (a loaded xen-blkfront would claim pvio-blkfront's disk).
R=$OUT/domU-root
skeleton "$R"
add_mods "$R" drivers/xen/xen-evtchn drivers/xen/xen-gntdev drivers/xen/xen-gntalloc \
  drivers/block/xen-blkfront drivers/net/xen-netfront fs/fuse/fuse \
  drivers/block/loop drivers/net/tun $EXT4_MODS
add_pvio "$R"
add_e2fs "$R"
add_xenstore_cli "$R"
cp "$HERE/domU-init" "$R/init"; chmod 755 "$R/init"
pack "$R" "$OUT/domU.cpio"

# ---------------- dom0 ----------------
R=$OUT/dom0-root
skeleton "$R"
add_mods "$R" drivers/xen/xen-privcmd drivers/xen/xenfs/xenfs drivers/xen/xen-evtchn \
  drivers/xen/xen-gntdev drivers/xen/xen-gntalloc \
  drivers/block/xen-blkback/xen-blkback drivers/net/xen-netback/xen-netback \
  drivers/block/loop drivers/net/tun net/llc/llc net/802/stp net/bridge/bridge \
  $EXT4_MODS
XB=/usr/lib/xen-4.17/bin
mkdir -p "$R$XB"
BINS=()
for b in xl xenstored xenconsoled xen-init-dom0 lsevtchn xenstore-control libxl-save-helper; do
  cp "$XB/$b" "$R$XB/"; BINS+=("$XB/$b")
done
add_libs "$R" "${BINS[@]}"
add_xenstore_cli "$R"
add_pvio "$R" dom0
add_e2fs "$R"
# Xen's stock hotplug scripts (block, vif-bridge, vif-route, ...: Debian's
# xen-utils-common) and what they run: bash, and iproute2's, util-linux's
# and coreutils' own tools, as on a Debian dom0 (the scripts trap ERR:
# busybox's variants answer some of their calls differently). They are
# found first: the scripts put /usr/bin and /usr/sbin before /bin.
mkdir -p "$R/etc/xen/scripts"
cp -a /etc/xen/scripts/. "$R/etc/xen/scripts/"
cp /usr/bin/bash "$R/bin/bash"
HP=()
for b in /usr/sbin/ip /usr/sbin/bridge /usr/sbin/losetup /usr/bin/flock \
         /usr/bin/logger /usr/bin/stat /usr/bin/readlink; do
  cp "$b" "$R$b"; HP+=("$b")
done
add_libs "$R" /usr/bin/bash "${HP[@]}"
# blk-nbd's NBD server and image tool (qemu-utils, tools/install-deps.sh):
# qemu-nbd serves a qcow2 image on a UNIX socket in dom0, qemu-img makes
# and checks it (~13 MB with their libraries)
for b in /usr/bin/qemu-nbd /usr/bin/qemu-img; do
  [ -x "$b" ] || { echo "build-initramfs: no $b: blk-nbd will fail (qemu-utils)" >&2; continue; }
  cp "$b" "$R/usr/bin/"
  add_libs "$R" "$b"
done
# blk-rbd: the rbd tool (ceph-common; pvio-backd's closure has its
# libraries but boost's program_options and a few small ones: ~5 MB) and
# the e1000 that QEMU gives dom0 for the way to the cluster on the host
if [ -x /usr/bin/rbd ]; then
  cp /usr/bin/rbd "$R/usr/bin/"
  add_libs "$R" /usr/bin/rbd
else
  echo "build-initramfs: no /usr/bin/rbd: blk-rbd will fail (ceph-common)" >&2
fi
add_mods "$R" drivers/net/ethernet/intel/e1000/e1000
# net-ovs: Open vSwitch (openvswitch-switch, tools/install-deps.sh) on the
# kernel's datapath, and Xen's stock vif-openvswitch hotplug script with
# what it sources (xen-utils-common) and runs (bash); ~20 MB.
# net-ovs-tunnel: VXLAN (OVS's vxlan_sys_4789 and a Linux vxlan device in
# a network namespace, iproute2's ip above) over a veth underlay
OVS_BINS="/usr/sbin/ovsdb-server /usr/lib/openvswitch-switch/ovs-vswitchd
  /usr/bin/ovs-vsctl /usr/bin/ovsdb-tool /usr/bin/ovs-appctl /bin/bash"
if [ -e /usr/share/openvswitch/vswitch.ovsschema ] &&
   [ -e /etc/xen/scripts/vif-openvswitch ]; then
  for b in $OVS_BINS; do
    mkdir -p "$R$(dirname "$b")"
    cp "$b" "$R$b"
    add_libs "$R" "$b"
  done
  ln -sf /usr/lib/openvswitch-switch/ovs-vswitchd "$R/usr/sbin/ovs-vswitchd"
  mkdir -p "$R/usr/share/openvswitch" "$R/etc/xen/scripts"
  cp /usr/share/openvswitch/vswitch.ovsschema "$R/usr/share/openvswitch/"
  cp -a /etc/xen/scripts/. "$R/etc/xen/scripts/"
  add_mods "$R" lib/libcrc32c net/nsh/nsh net/ipv4/netfilter/nf_defrag_ipv4 \
    net/ipv6/netfilter/nf_defrag_ipv6 net/netfilter/nf_conntrack \
    net/netfilter/nf_nat net/netfilter/nf_conncount net/openvswitch/openvswitch \
    net/ipv4/udp_tunnel net/ipv6/ip6_udp_tunnel drivers/net/vxlan/vxlan \
    net/openvswitch/vport-vxlan drivers/net/veth
else
  echo "build-initramfs: no Open vSwitch or vif-openvswitch here: net-ovs will fail" >&2
fi
mkdir -p "$R/etc/xen"
cp /etc/xen/xl.conf "$R/etc/xen/"
sed -i 's/^#autoballoon=.*/autoballoon="off"/' "$R/etc/xen/xl.conf"
# ELF vmlinux and plain cpio: nothing for the domU builder to decompress
ln -f "$VMLINUX" "$R/boot/vmlinux" 2>/dev/null || cp "$VMLINUX" "$R/boot/vmlinux"
cp "$OUT/domU.cpio" "$R/boot/domU.cpio"
cp "$HERE/dom0-init" "$R/init"; chmod 755 "$R/init"
pack "$R" "$OUT/dom0.cpio"
# the trees are ~85 MB; keep them with KEEP_ROOTS=1 to look inside
[ "${KEEP_ROOTS:-}" = 1 ] || rm -rf "$OUT/dom0-root" "$OUT/domU-root"
