/* SPDX-License-Identifier: MIT */
/*
 * Persistent grants, mapped: a bounded per-queue cache from grant ref to a
 * page of the guest mapped into the worker. A frontend that negotiated
 * feature-persistent reuses a fixed set of granted pages, so after warm-up
 * every segment is found here and I/O goes straight to and from the
 * guest's pages (no bounce buffer, no grant copy).
 *
 * A request's pages not yet mapped are mapped together, in one call, as
 * one range (QEMU's xen-block maps each request so): a frontend that
 * reuses a buffer per request finds its pages one buffer in our address
 * space, which a target taking a single buffer (NBD) then reads or writes
 * in place rather than staged. Pages mapped together stay together: a
 * mapping is unmapped whole (as Xen's gntdev requires), when no request
 * uses any page of it.
 *
 * Bounded (docs/protocol.md rule 3): at most @cap pages mapped; pages no
 * request uses are evicted least recently used first; at most a few new
 * maps per pass, so a guest spraying fresh refs cannot stall the worker in
 * map calls: a pass's budget of pages, or one request's new pages (at most
 * PG_MAP_MAX) if it is the pass's first to map, so that a request larger
 * than the budget is still mapped as one range. What does not fit goes the
 * grant-copy way, and nothing of it is mapped (a piece mapped now would
 * stay a range of its own).
 */
#ifndef PVIO_BACKEND_PGRANT_H
#define PVIO_BACKEND_PGRANT_H

#include <stdbool.h>
#include <stdint.h>

#include <pvio/platform.h>

/* Pages mapped by one call at most (a request's new pages). */
#define PG_MAP_MAX	256u

/* A page; the first page of a mapping (its head) stands for the mapping. */
struct pg_ent {
	uint32_t gref;
	uint32_t refs;		/* head: uses of the mapping's pages now */
	void *addr;
	uint32_t hnext;		/* hash chain (index + 1) */
	uint32_t prev, next;	/* heads: LRU of unused mappings; free list */
	uint32_t head;		/* the mapping's first page (index + 1) */
	uint32_t gnext;		/* the mapping's next page (index + 1) */
	uint16_t count;		/* head: pages in the mapping */
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
	uint32_t lru_head, lru_tail;	/* evictable mappings, oldest first */
	uint32_t lru_pages;	/* their pages */
	uint32_t budget;	/* pages newly mapped per pass */
	uint32_t maps_left;	/* this pass's budget of them */
	uint64_t hits, misses, maps, unmaps, refused;	/* pages */
	uint64_t map_calls;	/* mappings made */
};

int pg_cache_init(struct pg_cache *c, struct pvio_platform *p,
		  unsigned int domid, uint32_t cap);
/* Unmap everything (no request may hold an entry). */
void pg_cache_destroy(struct pg_cache *c);
/* A new pass: a fresh budget of new maps. */
static inline void pg_cache_pass(struct pg_cache *c, uint32_t budget)
{
	c->budget = c->maps_left = budget;
}
/*
 * The pages of @n grefs (a request's segments, in order), mapped (writable
 * if @write), each with one more user; their entries in @idx. All or
 * nothing. Those not mapped yet are mapped in one call, so if every page
 * of a request is new, their addresses follow each other in @grefs' order.
 * Return 0, or -errno: -ENOSPC (full of pages in use, or this pass's map
 * budget spent: nothing mapped), or the map's error (a grant is bad, or read-only for a
 * write into it: the caller goes the copy way, which reports the error per
 * segment).
 */
int pg_cache_get(struct pg_cache *c, unsigned int n, const uint32_t *grefs,
		 bool write, uint32_t *idx);
static inline void *pg_cache_addr(struct pg_cache *c, uint32_t idx)
{
	return c->ents[idx].addr;
}
/* One user less of the page at @idx. */
void pg_cache_put(struct pg_cache *c, uint32_t idx);

#endif
