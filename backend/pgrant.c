// SPDX-License-Identifier: MIT
/* The persistent-grant cache (pgrant.h). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "lazy.h"
#include "pgrant.h"

#define NIL 0u
/* pg_cache_get(): the k-th page to map, in @idx until it is mapped */
#define NEW(k)		(UINT32_MAX - (k))
#define IS_NEW(i)	((i) > UINT32_MAX - PG_MAP_MAX)

static uint32_t hash(const struct pg_cache *c, uint32_t gref)
{
	return (gref * 2654435761u) & (c->nbuckets - 1);
}

int pg_cache_init(struct pg_cache *c, struct pvio_platform *p,
		  unsigned int domid, uint32_t cap)
{

	memset(c, 0, sizeof(*c));
	if (!cap)
		return -EINVAL;
	c->plat = p;
	c->domid = domid;
	c->cap = cap;
	c->nbuckets = 1;
	while (c->nbuckets < cap * 2)
		c->nbuckets <<= 1;
	/* 384 KiB per queue by default: only the pages a guest's grants
	 * reach are ever touched (lazy.h) */
	c->ents = lazy_zalloc(cap * sizeof(*c->ents));
	c->buckets = lazy_zalloc(c->nbuckets * sizeof(*c->buckets));
	if (!c->ents || !c->buckets) {
		lazy_free(c->ents, cap * sizeof(*c->ents));
		lazy_free(c->buckets, c->nbuckets * sizeof(*c->buckets));
		c->ents = NULL;
		c->buckets = NULL;
		return -ENOMEM;
	}
	/* entries never used are taken in order (c->fresh), not threaded
	 * on the free list here: a list through all of them would touch
	 * cap * 40 bytes (320 KiB by default) of every queue at connect,
	 * most of it never used by a guest with few grants */
	c->free_head = NIL;
	c->fresh = 0;
	return 0;
}

static void lru_unlink(struct pg_cache *c, uint32_t i)
{
	struct pg_ent *e = &c->ents[i];

	c->lru_pages -= e->count;
	if (e->prev)
		c->ents[e->prev - 1].next = e->next;
	else
		c->lru_head = e->next;
	if (e->next)
		c->ents[e->next - 1].prev = e->prev;
	else
		c->lru_tail = e->prev;
	e->prev = e->next = NIL;
}

static void lru_append(struct pg_cache *c, uint32_t i)
{
	struct pg_ent *e = &c->ents[i];

	c->lru_pages += e->count;
	e->next = NIL;
	e->prev = c->lru_tail;
	if (c->lru_tail)
		c->ents[c->lru_tail - 1].next = i + 1;
	else
		c->lru_head = i + 1;
	c->lru_tail = i + 1;
}

static void hash_remove(struct pg_cache *c, uint32_t i)
{
	uint32_t *pp = &c->buckets[hash(c, c->ents[i].gref)];

	while (*pp && *pp != i + 1)
		pp = &c->ents[*pp - 1].hnext;
	if (*pp)
		*pp = c->ents[i].hnext;
}

static int lookup(const struct pg_cache *c, uint32_t gref)
{
	uint32_t i;

	for (i = c->buckets[hash(c, gref)]; i; i = c->ents[i - 1].hnext)
		if (c->ents[i - 1].gref == gref)
			return (int)(i - 1);
	return -1;
}

/* Unmap the mapping headed by @h, its pages back on the free list. */
static void drop(struct pg_cache *c, uint32_t h)
{
	uint32_t i = h, n = c->ents[h].count;

	pvio_gnt_unmap(c->plat, c->ents[h].addr, n);
	c->unmaps += n;
	while (i != UINT32_MAX) {
		struct pg_ent *e = &c->ents[i];
		uint32_t next = e->gnext ? e->gnext - 1 : UINT32_MAX;

		hash_remove(c, i);
		memset(e, 0, sizeof(*e));
		e->next = c->free_head;
		c->free_head = i + 1;
		c->used--;
		i = next;
	}
}

static void hold(struct pg_cache *c, uint32_t i)
{
	uint32_t h = c->ents[i].head - 1;

	if (c->ents[h].refs++ == 0)
		lru_unlink(c, h);
}

void pg_cache_put(struct pg_cache *c, uint32_t idx)
{
	uint32_t h = c->ents[idx].head - 1;

	if (--c->ents[h].refs == 0)
		lru_append(c, h);
}

static uint32_t take_slot(struct pg_cache *c)
{
	uint32_t i;

	if (c->free_head) {
		i = c->free_head - 1;
		c->free_head = c->ents[i].next;
	} else {
		i = c->fresh++;
	}
	c->used++;
	return i;
}

/* Room for @n more pages: whole mappings no request uses, oldest first. */
static void make_room(struct pg_cache *c, uint32_t n)
{
	while (c->cap - c->used < n) {
		uint32_t h = c->lru_head - 1;	/* there: see map_new() */

		lru_unlink(c, h);
		drop(c, h);
	}
}

static int map_each(struct pg_cache *c, unsigned int n, const uint32_t *grefs,
		    bool write, uint32_t *idx);

/*
 * Map @n new grefs as one mapping, no request using it yet (not on the
 * LRU either); its pages' entries in @idx.
 */
static int map_new(struct pg_cache *c, unsigned int n, const uint32_t *grefs,
		   bool write, uint32_t *idx)
{
	uint32_t k, prev = 0, left = c->maps_left;
	bool rw = true;
	void *addr;
	int rc;

	/* nothing is evicted for a request that cannot fit anyway */
	if (c->cap - c->used + c->lru_pages < n)
		return -ENOSPC;
	/* the budget pays for the attempt: a guest's bad grefs must not buy
	 * it a fresh budget of map calls for every request of a pass */
	c->maps_left = n < c->maps_left ? c->maps_left - n : 0;
	/* writable when it can be: the same page serves reads and writes */
	rc = pvio_gnt_map(c->plat, c->domid, n, grefs, true, &addr);
	if (rc == -EPERM && !write) {
		/* a read-only grant among them: only it is mapped so; the
		 * budget gets this attempt's charge back, map_each() charges
		 * each page (they were paid for twice) */
		if (n > 1) {
			c->maps_left = left;
			return map_each(c, n, grefs, write, idx);
		}
		rc = pvio_gnt_map(c->plat, c->domid, n, grefs, false, &addr);
		rw = false;
	}
	if (rc)
		return rc;	/* and nothing evicted for it */
	make_room(c, n);
	c->maps += n;
	c->map_calls++;
	for (k = 0; k < n; k++) {
		uint32_t i = take_slot(c), b = hash(c, grefs[k]);
		struct pg_ent *e = &c->ents[i];

		memset(e, 0, sizeof(*e));
		e->gref = grefs[k];
		e->addr = (char *)addr + (size_t)k * PVIO_PAGE_SIZE;
		e->rw = rw;
		e->live = true;
		e->hnext = c->buckets[b];
		c->buckets[b] = i + 1;
		if (prev)
			c->ents[prev - 1].gnext = i + 1;
		else
			e->count = (uint16_t)n;
		e->head = k ? idx[0] + 1 : i + 1;
		idx[k] = i;
		prev = i + 1;
	}
	return 0;
}

/* ... page by page: a mapping each. */
static int map_each(struct pg_cache *c, unsigned int n, const uint32_t *grefs,
		    bool write, uint32_t *idx)
{
	unsigned int k;
	int rc;

	for (k = 0; k < n; k++) {
		rc = map_new(c, 1, &grefs[k], write, &idx[k]);
		if (rc) {
			while (k--)
				drop(c, idx[k]);
			return rc;
		}
	}
	return 0;
}

int pg_cache_get(struct pg_cache *c, unsigned int n, const uint32_t *grefs,
		 bool write, uint32_t *idx)
{
	uint32_t miss[PG_MAP_MAX], mi[PG_MAP_MAX];
	unsigned int i, k, nmiss = 0, room;
	int rc = 0;

	/* the pass's budget, or a whole request if it is the pass's first
	 * to map (pgrant.h) */
	room = c->budget && c->maps_left == c->budget ? PG_MAP_MAX
						      : c->maps_left;

	for (i = 0; i < n; i++) {
		int e = lookup(c, grefs[i]);

		if (e >= 0) {
			if (write && !c->ents[e].rw) {
				rc = -EPERM;	/* mapped read-only: copy */
				break;
			}
			hold(c, (uint32_t)e);
			idx[i] = (uint32_t)e;
			c->hits++;
			continue;
		}
		/* new: the same gref twice in a request is mapped once */
		for (k = 0; k < nmiss && miss[k] != grefs[i]; k++)
			;
		if (k == nmiss) {
			if (nmiss == room || nmiss == PG_MAP_MAX) {
				rc = -ENOSPC;
				break;
			}
			miss[nmiss++] = grefs[i];
			c->misses++;
		}
		idx[i] = NEW(k);
	}
	if (!rc && nmiss)
		rc = map_new(c, nmiss, miss, write, mi);
	if (rc) {
		if (rc == -ENOSPC)
			c->refused++;
		while (i--)
			if (!IS_NEW(idx[i]))
				pg_cache_put(c, idx[i]);
		return rc;
	}
	/* the new pages' mappings are not on the LRU: no unlink */
	for (i = 0; i < n && nmiss; i++) {
		if (IS_NEW(idx[i])) {
			idx[i] = mi[NEW(idx[i])];
			c->ents[c->ents[idx[i]].head - 1].refs++;
		}
	}
	return 0;
}

void pg_cache_destroy(struct pg_cache *c)
{
	uint32_t i;

	if (!c->ents)
		return;
	for (i = 0; i < c->fresh; i++)	/* never-used ones are not live */
		if (c->ents[i].live && c->ents[i].head == i + 1) {
			pvio_gnt_unmap(c->plat, c->ents[i].addr,
				       c->ents[i].count);
			c->unmaps += c->ents[i].count;
		}
	lazy_free(c->ents, c->cap * sizeof(*c->ents));
	lazy_free(c->buckets, c->nbuckets * sizeof(*c->buckets));
	c->ents = NULL;
	c->buckets = NULL;
}
