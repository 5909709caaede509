# SPDX-License-Identifier: MIT
# The libFuzzer harnesses: a clang build of their own, beside the tree's
# (gcc) build, so that ./configure needs no clang. `make fuzz` runs it:
#   make -f fuzz/fuzz.mk srcdir=TOP builddir=BUILD [CLANG=clang]
# builddir holds the configured tree's config.h; the binaries go to
# BUILD/fuzz/bin.
CLANG ?= clang
srcdir ?= .
builddir ?= .
out = $(builddir)/fuzz/bin
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I$(builddir) -I$(srcdir)/include -I$(srcdir)/util \
	-I$(srcdir)/ring -I$(srcdir)/hypercall -I$(srcdir)/sim \
	-I$(srcdir)/xenstore-glue -I$(srcdir)/backend -I$(srcdir)/fuzz \
	-pthread -Wall -Wno-unused-parameter

HARNESSES = blkif netif-tx netif-hdr xs-values xs-wire
src_blkif = fuzz/fuzz-blkif.c backend/blk-parse.c ring/ring.c
src_netif-tx = fuzz/fuzz-netif-tx.c backend/net-parse.c ring/ring.c \
	ring/netif.c
src_netif-hdr = fuzz/fuzz-netif-hdr.c ring/netif.c
src_xs-values = fuzz/fuzz-xs-values.c xenstore-glue/xs.c \
	xenstore-glue/xenbus.c
src_xs-wire = fuzz/fuzz-xs-wire.c sim/xs-wire.c sim/xs-store.c util/util.c

all: $(addprefix $(out)/fuzz-,$(HARNESSES))

.SECONDEXPANSION:
$(out)/fuzz-%: $$(addprefix $(srcdir)/,$$(src_$$*)) $(srcdir)/fuzz/fuzz.h \
		$(builddir)/config.h
	@mkdir -p $(out)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $(addprefix $(srcdir)/,$(src_$*))

.PHONY: all
