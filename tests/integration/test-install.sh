#!/bin/sh
# SPDX-License-Identifier: MIT
# libpvio as an outside user gets it: `make install` into a temporary
# DESTDIR, pkg-config on the installed libpvio.pc, then t-extern.c (every
# public header) built as C with -std=c11 and as C++, linked and run.
set -u
B=${PVIO_BUILDDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
S=${PVIO_SRCDIR:-$B}
fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "SKIP: $*" >&2; exit 77; }

CC=${CC:-cc}
CXX=${CXX:-c++}
command -v pkg-config >/dev/null || skip "no pkg-config (tools/install-deps.sh)"
command -v "$CC" >/dev/null || skip "no C compiler"
command -v "$CXX" >/dev/null || skip "no C++ compiler (g++: tools/install-deps.sh)"

D=$(mktemp -d "${TMPDIR:-/tmp}/pvio-install.XXXXXX")
trap 'rm -rf "$D"' EXIT
make -s -C "$B" install DESTDIR="$D/root" >"$D/install.log" 2>&1 ||
	{ cat "$D/install.log" >&2; fail "make install"; }

libdir=$(pkg-config --variable=libdir "$B/libpvio.pc") || fail "libdir"
pcdir=$D/root$libdir/pkgconfig
[ -f "$pcdir/libpvio.pc" ] || fail "no libpvio.pc in $pcdir"
# the library uses no io_uring: its users must not need liburing
grep -q liburing "$pcdir/libpvio.pc" && fail "libpvio.pc requires liburing"
PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$D/root
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
cflags=$(pkg-config --cflags libpvio) || fail "pkg-config --cflags libpvio"
libs=$(pkg-config --libs libpvio) || fail "pkg-config --libs libpvio"
pkg-config --static --libs libpvio >/dev/null ||
	fail "pkg-config --static --libs libpvio (Requires.private)"
case $cflags in *"$D/root"*) ;; *) fail "cflags '$cflags' miss the install" ;; esac

# a sanitizer build's library needs its runtime in the program too
W="-Wall -Wextra -Werror ${PVIO_SAN_FLAGS:-}"
# shellcheck disable=SC2086
$CC -std=c11 $W $cflags -o "$D/t-extern-c" "$S/tests/integration/t-extern.c" \
	$libs || fail "C (-std=c11) build against the installed headers"
# shellcheck disable=SC2086
$CXX -std=c++17 $W -x c++ $cflags -o "$D/t-extern-cxx" \
	"$S/tests/integration/t-extern.c" $libs ||
	fail "C++ build against the installed headers"
for t in t-extern-c t-extern-cxx; do
	LD_LIBRARY_PATH=$D/root$libdir "$D/$t" || fail "$t"
done
echo "PASS: C (-std=c11) and C++ against the installed libpvio"
