#!/bin/sh
# SPDX-License-Identifier: MIT
# Install what pvio needs to build, test and run its demo, from Debian's
# packages (Debian 12). Idempotent: installs only what is missing.
#   tools/install-deps.sh          build + tests + demo
#   tools/install-deps.sh --xen    also the real-Xen lab (QEMU, Xen 4.17)
#   tools/install-deps.sh --fuzz   also clang's libFuzzer (make fuzz)
set -eu
pkgs="build-essential autoconf automake libtool pkg-config
      libxen-dev liburing-dev zlib1g-dev check libfuse3-dev fuse3 xenstore-utils
      libseccomp-dev libcap-ng-dev
      libjson-c-dev libsystemd-dev systemd
      e2fsprogs iproute2 iputils-ping netcat-openbsd python3 procps kmod
      libnbd-dev nbdkit qemu-utils librbd-dev ceph-mon ceph-osd ceph-common
      fio openvswitch-switch openvswitch-common xen-utils-common"
for arg in "$@"; do
	case $arg in
	--xen)
		pkgs="$pkgs qemu-system-x86 xen-hypervisor-4.17-amd64 xen-utils-4.17
		      busybox-static cpio strace" ;;
	--fuzz)
		pkgs="$pkgs clang libclang-rt-14-dev" ;;
	*)
		echo "install-deps: unknown option '$arg' (--xen, --fuzz)" >&2
		exit 2 ;;
	esac
done
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps: everything is installed"
	exit 0
fi
echo "install-deps: installing$missing"
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
