/* SPDX-License-Identifier: MIT */
/*
 * Zeroed memory that costs nothing until it is touched: per-queue arrays
 * sized for the worst case (every ring slot a maximal indirect request,
 * a full persistent-grant cache) of which an idle or lightly used guest
 * touches a few pages. malloc would put them in the heap, where calloc
 * may clear (touch) all of it and a freed block is not given back: with
 * 256 guests that was most of pvio-backd's RSS (docs/benchmarks.md).
 */
#ifndef PVIO_BACKEND_LAZY_H
#define PVIO_BACKEND_LAZY_H

#include <stddef.h>
#include <sys/mman.h>

/* @bytes of zeroes, page by page on first touch, or NULL */
static inline void *lazy_zalloc(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static inline void lazy_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}

#endif
