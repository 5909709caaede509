/* SPDX-License-Identifier: MIT */
/*
 * Persistent grants, mapped: a bounded per-queue cache from grant ref to a
 * page of the guest mapped into the worker. A frontend that negotiated
 * feature-persistent reuses a fixed set of granted pages, so after warm-up
 * every segment is found here and I/O goes straight to and from the
 * guest's pages (no bounce buffer, no grant copy).
 *
 * Bounded (docs/protocol.md rule 3): at most @cap pages mapped; pages no
 * request uses are evicted least recently used first; at most a few new
 * maps per pass, so a guest spraying fresh refs cannot stall the worker in
 * map calls. What does not fit goes the grant-copy way.
 */
#ifndef PVIO_BACKEND_PGRANT_H
#define PVIO_BACKEND_PGRANT_H

#include <stdbool.h>
#include <stdint.h>

#include <pvio/platform.h>

struct pg_ent {
	uint32_t gref;
	uint32_t refs;		/* requests using it now */
	void *addr;
	uint32_t hnext;		/* hash chain (index + 1) */
	uint32_t prev, next;	/* LRU of unused entries (index + 1) */
	bool rw;
	bool live;
};

struct pg_cache {
	struct pvio_platform *plat;
	unsigned int domid;
	struct pg_ent *ents;
	uint32_t *buckets;	/* index + 1, 0: empty */
	uint32_t nbuckets;
	uint32_t cap, used;
	uint32_t free_head;	/* unused slots, through .next */
	uint32_t fresh;		/* slots [fresh, cap) never used yet */
	uint32_t lru_head, lru_tail;	/* evictable, oldest at head */
	uint32_t maps_left;	/* this pass's map budget */
	uint64_t hits, misses, maps, unmaps, refused;
};

int pg_cache_init(struct pg_cache *c, struct pvio_platform *p,
		  unsigned int domid, uint32_t cap);
/* Unmap everything (no request may hold an entry). */
void pg_cache_destroy(struct pg_cache *c);
/* A new pass: a fresh budget of new maps. */
static inline void pg_cache_pass(struct pg_cache *c, uint32_t budget)
{
	c->maps_left = budget;
}
/*
 * The page of @gref, mapped (writable if @write), and one more user of
 * it. Return its entry index, or -errno: -ENOSPC (full of pages in use,
 * or this pass's map budget spent), or the map's error (the grant is bad,
 * or read-only for a write into it: the caller goes the copy way, which
 * reports the error per segment).
 */
int pg_cache_get(struct pg_cache *c, uint32_t gref, bool write);
static inline void *pg_cache_addr(struct pg_cache *c, int idx)
{
	return c->ents[idx].addr;
}
/* One user less. */
void pg_cache_put(struct pg_cache *c, int idx);

#endif
