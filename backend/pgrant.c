// SPDX-License-Identifier: MIT
/* The persistent-grant cache (pgrant.h). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "lazy.h"
#include "pgrant.h"

#define NIL 0u

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
	/* 320 KiB per queue by default: only the pages a guest's grants
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
	 * cap * 32 bytes (256 KiB by default) of every queue at connect,
	 * most of it never used by a guest with few grants */
	c->free_head = NIL;
	c->fresh = 0;
	return 0;
}

static void lru_unlink(struct pg_cache *c, uint32_t i)
{
	struct pg_ent *e = &c->ents[i];

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

static void drop(struct pg_cache *c, uint32_t i)
{
	struct pg_ent *e = &c->ents[i];

	pvio_gnt_unmap(c->plat, e->addr, 1);
	c->unmaps++;
	hash_remove(c, i);
	memset(e, 0, sizeof(*e));
	e->next = c->free_head;
	c->free_head = i + 1;
	c->used--;
}

int pg_cache_get(struct pg_cache *c, uint32_t gref, bool write)
{
	uint32_t b = hash(c, gref), i;
	struct pg_ent *e;
	bool rw = true;
	void *addr;
	int rc;

	for (i = c->buckets[b]; i; i = c->ents[i - 1].hnext) {
		e = &c->ents[i - 1];
		if (e->gref != gref)
			continue;
		if (write && !e->rw)
			return -EPERM;	/* mapped read-only: copy instead */
		if (e->refs++ == 0)
			lru_unlink(c, i - 1);
		c->hits++;
		return (int)(i - 1);
	}
	c->misses++;
	if (!c->maps_left) {
		c->refused++;
		return -ENOSPC;
	}
	if (!c->free_head && c->fresh == c->cap) {
		if (!c->lru_head) {
			c->refused++;
			return -ENOSPC;	/* every page is in use */
		}
		i = c->lru_head - 1;
		lru_unlink(c, i);
		drop(c, i);
	}
	c->maps_left--;
	/* writable when it can be: the same page serves reads and writes */
	rc = pvio_gnt_map(c->plat, c->domid, 1, &gref, true, &addr);
	if (rc == -EPERM && !write) {
		rc = pvio_gnt_map(c->plat, c->domid, 1, &gref, false, &addr);
		rw = false;
	}
	if (rc)
		return rc;
	c->maps++;
	if (c->free_head) {
		i = c->free_head - 1;
		c->free_head = c->ents[i].next;
	} else {
		i = c->fresh++;
	}
	e = &c->ents[i];
	memset(e, 0, sizeof(*e));
	e->gref = gref;
	e->addr = addr;
	e->rw = rw;
	e->refs = 1;
	e->live = true;
	e->hnext = c->buckets[b];
	c->buckets[b] = i + 1;
	c->used++;
	return (int)i;
}

void pg_cache_put(struct pg_cache *c, int idx)
{
	struct pg_ent *e = &c->ents[idx];

	if (--e->refs == 0)
		lru_append(c, (uint32_t)idx);
}

void pg_cache_destroy(struct pg_cache *c)
{
	uint32_t i;

	if (!c->ents)
		return;
	for (i = 0; i < c->fresh; i++)	/* never-used ones are not live */
		if (c->ents[i].live) {
			pvio_gnt_unmap(c->plat, c->ents[i].addr, 1);
			c->unmaps++;
		}
	lazy_free(c->ents, c->cap * sizeof(*c->ents));
	lazy_free(c->buckets, c->nbuckets * sizeof(*c->buckets));
	c->ents = NULL;
	c->buckets = NULL;
}
