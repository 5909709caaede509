// SPDX-License-Identifier: MIT
/*
 * The sim world's xenstore engine (see xs-store.h for the contract).
 *
 * The tree is stored flat, as C xenstored stores it in TDB: a hash map from
 * full path to node, each node listing its children's names. That makes a
 * transaction cheap to express: an overlay map from path to the
 * transaction's own version of the node (or "deleted"), plus, for every
 * path the transaction looked at, the generation the node had then. A
 * commit checks those generations against the store (xenstored's
 * conflict rule) and then moves the overlay in.
 *
 * Generations: every change of a node (value, permissions or children)
 * gives it a fresh, store-wide generation; 0 means "absent".
 *
 * Accounting: struct dom counts per domain the nodes it owns, its watches,
 * transactions, connections, and the bytes its pending events and its
 * transactions' overlays take. A record lives at least while the domain
 * has a connection or owns a node, so accounting does not allocate in the
 * middle of a change.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <xen/io/xs_wire.h>

#include "xs-store.h"

#define PERM_READ	1u
#define PERM_WRITE	2u
#define PERM_OWNER	4u
#define PERM_ALL	(PERM_READ | PERM_WRITE | PERM_OWNER)

#define container_of(p, type, member) \
	((type *)(void *)((char *)(p) - offsetof(type, member)))

/* ---- hashing: SipHash-2-4, keyed per store (guests choose the paths) ----- */

static inline uint64_t rotl64(uint64_t x, int b)
{
	return (x << b) | (x >> (64 - b));
}

static inline void sipround(uint64_t v[4])
{
	v[0] += v[1];
	v[1] = rotl64(v[1], 13);
	v[1] ^= v[0];
	v[0] = rotl64(v[0], 32);
	v[2] += v[3];
	v[3] = rotl64(v[3], 16);
	v[3] ^= v[2];
	v[0] += v[3];
	v[3] = rotl64(v[3], 21);
	v[3] ^= v[0];
	v[2] += v[1];
	v[1] = rotl64(v[1], 17);
	v[1] ^= v[2];
	v[2] = rotl64(v[2], 32);
}

static uint64_t siphash(const uint64_t k[2], const char *p, size_t len)
{
	uint64_t v[4] = {
		0x736f6d6570736575ull ^ k[0], 0x646f72616e646f6dull ^ k[1],
		0x6c7967656e657261ull ^ k[0], 0x7465646279746573ull ^ k[1],
	};
	uint64_t m, last = (uint64_t)len << 56;
	size_t i, whole = len & ~(size_t)7;

	for (i = 0; i < whole; i += 8) {
		memcpy(&m, p + i, 8);	/* host order: a hash, not a MAC */
		v[3] ^= m;
		sipround(v);
		sipround(v);
		v[0] ^= m;
	}
	for (i = 0; i < (len & 7); i++)
		last |= (uint64_t)(unsigned char)p[whole + i] << (8 * i);
	v[3] ^= last;
	sipround(v);
	sipround(v);
	v[0] ^= last;
	v[2] ^= 0xff;
	for (i = 0; i < 4; i++)
		sipround(v);
	return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- a string-keyed hash map of intrusive entries ------------------------ */

struct hent {
	struct hent *next;
	uint64_t hash;
	const char *key;
	size_t klen;
};

struct map {
	struct hent **b;
	size_t mask;		/* buckets - 1, a power of two minus one */
	size_t n;
	const uint64_t *seed;
};

static int map_init(struct map *m, const uint64_t *seed, size_t buckets)
{
	m->b = calloc(buckets, sizeof(*m->b));
	if (!m->b)
		return -ENOMEM;
	m->mask = buckets - 1;
	m->n = 0;
	m->seed = seed;
	return 0;
}

static struct hent *map_find(const struct map *m, const char *key,
			     size_t klen)
{
	uint64_t h = siphash(m->seed, key, klen);
	struct hent *e;

	for (e = m->b[h & m->mask]; e; e = e->next)
		if (e->hash == h && e->klen == klen &&
		    memcmp(e->key, key, klen) == 0)
			return e;
	return NULL;
}

/* Double the table; on allocation failure keep the old one (chains get
 * longer, lookups stay correct): inserting never fails. */
static void map_grow(struct map *m)
{
	size_t nb = (m->mask + 1) * 2, i;
	struct hent **b, *e, *next;

	b = calloc(nb, sizeof(*b));
	if (!b)
		return;
	for (i = 0; i <= m->mask; i++)
		for (e = m->b[i]; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	free(m->b);
	m->b = b;
	m->mask = nb - 1;
}

static void map_insert(struct map *m, struct hent *e)
{
	e->hash = siphash(m->seed, e->key, e->klen);
	if (m->n > m->mask)
		map_grow(m);
	e->next = m->b[e->hash & m->mask];
	m->b[e->hash & m->mask] = e;
	m->n++;
}

static void map_remove(struct map *m, struct hent *e)
{
	struct hent **pp = &m->b[e->hash & m->mask];

	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = e->next;
		m->n--;
	}
}

/* ---- data ---------------------------------------------------------------- */

struct xs_perm {
	uint32_t id;
	uint8_t bits;		/* PERM_READ | PERM_WRITE */
};

struct perms {
	unsigned int n;		/* >= 1; [0]: owner and default */
	struct xs_perm *p;
};

struct node {
	struct hent h;		/* key: path */
	uint64_t gen;
	struct perms perms;
	char *value;
	unsigned int vlen;
	char *kids;		/* children names, each NUL-terminated */
	unsigned int klen;
	char path[];
};

struct dom {
	struct dom *next;
	unsigned int domid;
	unsigned int nodes;	/* owned */
	unsigned int watches;
	unsigned int txs;
	unsigned int conns;
	size_t ev_bytes;	/* pending events, all connections */
	size_t tx_bytes;	/* transaction overlays, all connections */
	bool introduced;
};

struct watch {
	struct watch *next;
	char *token;
	size_t rel;		/* bytes of path not reported (relative) */
	char path[];		/* absolute, or @special */
};

struct event {
	struct event *next;
	unsigned int len;
	char *data;		/* "path\0token\0" */
};

/* A path a transaction touched. */
struct tent {
	struct hent h;		/* key: path */
	struct tent *lnext;	/* in order of first access */
	uint64_t seen;		/* gen. at first access; 0: absent */
	bool modified;
	bool exact;		/* deleted as a descendant: fire exactly */
	struct node *node;	/* modified: our version, NULL: deleted */
	struct node *old;	/* during commit: the version replaced */
	char path[];
};

struct tx {
	struct tx *next;
	uint32_t id;
	struct map map;
	struct tent *first, **last;
	unsigned int n;
	int delta;		/* nodes our domain gains as owner */
	size_t bytes;		/* charged to our domain's tx_bytes */
};

enum { SPECIAL_INTRODUCE, SPECIAL_RELEASE, NR_SPECIAL };

static const char *const special_name[NR_SPECIAL] = {
	"@introduceDomain", "@releaseDomain",
};

struct xs_store {
	struct xs_limits lim;
	uint64_t seed[2];
	uint64_t gen;
	struct map nodes;
	struct perms special[NR_SPECIAL];
	struct dom *doms;
	struct xs_conn *conns;
};

struct xs_conn {
	struct xs_conn *next, *prev;
	struct xs_store *s;
	struct dom *dom;
	unsigned int domid;
	struct watch *watches;
	struct tx *txs;
	uint32_t next_tx;
	struct event *ev_head, **ev_tail;
	unsigned int nev;
	unsigned int dropped;
};

/* One operation: who asks, in which transaction. */
struct op {
	struct xs_store *s;
	struct dom *dom;
	struct tx *tx;
	unsigned int domid;
	bool priv;
};

/* ---- small helpers ------------------------------------------------------- */

static void *memdup0(const void *src, size_t len)
{
	char *p = malloc(len + 1);

	if (!p)
		return NULL;
	if (len)
		memcpy(p, src, len);
	p[len] = 0;
	return p;
}

/* Length of the parent of path[0..len) ("/" for top-level nodes). */
static size_t parent_len(const char *path, size_t len)
{
	while (len > 1 && path[len - 1] != '/')
		len--;
	return len > 1 ? len - 1 : 1;
}

/* The last component of path[0..len) (len > 1). */
static const char *last_name(const char *path, size_t len, size_t *nlen)
{
	size_t pl = parent_len(path, len), start = pl > 1 ? pl + 1 : 1;

	*nlen = len - start;
	return path + start;
}

static unsigned int perm_for(unsigned int domid, const struct perms *p)
{
	unsigned int i;

	/* dom0 and owners get it all; else the first entry naming the
	 * domain, else the default (xenstored's perm_for_conn) */
	if (domid == PVIO_XS_PRIV_DOMID || p->p[0].id == domid)
		return PERM_ALL;
	for (i = 1; i < p->n; i++)
		if (p->p[i].id == domid)
			return p->p[i].bits;
	return p->p[0].bits;
}

static int perms_copy(struct perms *dst, const struct perms *src)
{
	dst->p = malloc(src->n * sizeof(*dst->p));
	if (!dst->p)
		return -ENOMEM;
	memcpy(dst->p, src->p, src->n * sizeof(*dst->p));
	dst->n = src->n;
	return 0;
}

static unsigned int owner(const struct node *n)
{
	return n->perms.p[0].id;
}

/* ---- domains ------------------------------------------------------------- */

static struct dom *dom_find(const struct xs_store *s, unsigned int domid)
{
	struct dom *d;

	for (d = s->doms; d; d = d->next)
		if (d->domid == domid)
			return d;
	return NULL;
}

static struct dom *dom_get(struct xs_store *s, unsigned int domid)
{
	struct dom *d = dom_find(s, domid);

	if (d)
		return d;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->domid = domid;
	d->next = s->doms;
	s->doms = d;
	return d;
}

/* Forget a domain nothing refers to any more. */
static void dom_put(struct xs_store *s, struct dom *d)
{
	struct dom **pp;

	if (d->nodes || d->watches || d->txs || d->conns || d->introduced)
		return;
	for (pp = &s->doms; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			free(d);
			return;
		}
}

/* Count a node gained or lost by its owner. The record exists (see the
 * top of this file); should it not, a count is lost, never wrapped. */
static void acct(struct xs_store *s, unsigned int domid, int delta)
{
	struct dom *d = delta > 0 ? dom_get(s, domid) : dom_find(s, domid);

	if (!d)
		return;
	if (delta > 0)
		d->nodes++;
	else if (d->nodes)
		d->nodes--;
}

/* ---- nodes --------------------------------------------------------------- */

static void node_free(struct node *n)
{
	if (!n)
		return;
	free(n->value);
	free(n->perms.p);
	free(n->kids);
	free(n);
}

static struct node *node_new(const char *path, size_t plen,
			     const struct perms *perms, const void *val,
			     unsigned int vlen)
{
	struct node *n = calloc(1, sizeof(*n) + plen + 1);

	if (!n)
		return NULL;
	memcpy(n->path, path, plen);
	n->h.key = n->path;
	n->h.klen = plen;
	if (perms_copy(&n->perms, perms))
		goto fail;
	if (vlen) {
		n->value = memdup0(val, vlen);
		if (!n->value)
			goto fail;
		n->vlen = vlen;
	}
	return n;
fail:
	node_free(n);
	return NULL;
}

static struct node *node_dup(const struct node *o)
{
	struct node *n = node_new(o->path, o->h.klen, &o->perms, o->value,
				  o->vlen);

	if (!n)
		return NULL;
	if (o->klen) {
		n->kids = memdup0(o->kids, o->klen);
		if (!n->kids) {
			node_free(n);
			return NULL;
		}
		n->klen = o->klen;
	}
	n->gen = o->gen;
	return n;
}

static bool kid_listed(const struct node *n, const char *name, size_t len)
{
	size_t off, l;

	for (off = 0; off < n->klen; off += l + 1) {
		l = strlen(n->kids + off);
		if (l == len && memcmp(n->kids + off, name, len) == 0)
			return true;
	}
	return false;
}

/*
 * A name is listed once. A transaction's copy of a parent may still list a
 * child removed outside the transaction; the child re-created inside it
 * must not be listed twice (rm_tree would collect, and free, it twice).
 */
static int kid_add(struct node *n, const char *name, size_t len)
{
	char *k;

	if (kid_listed(n, name, len))
		return 0;
	k = realloc(n->kids, n->klen + len + 1);
	if (!k)
		return -ENOMEM;
	memcpy(k + n->klen, name, len);
	k[n->klen + len] = 0;
	n->kids = k;
	n->klen += (unsigned int)len + 1;
	return 0;
}

static void kid_del(struct node *n, const char *name, size_t len)
{
	size_t off = 0, l;

	for (; off < n->klen; off += l + 1) {
		l = strlen(n->kids + off);
		if (l == len && memcmp(n->kids + off, name, len) == 0) {
			memmove(n->kids + off, n->kids + off + l + 1,
				n->klen - off - l - 1);
			n->klen -= (unsigned int)l + 1;
			return;
		}
	}
}

static struct node *main_find(const struct xs_store *s, const char *path,
			      size_t len)
{
	struct hent *e = map_find(&s->nodes, path, len);

	return e ? container_of(e, struct node, h) : NULL;
}

/* ---- paths --------------------------------------------------------------- */

static bool valid_chars(const char *p)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "abcdefghijklmnopqrstuvwxyz0123456789-/_@";

	return p[strspn(p, ok)] == 0;
}

/* Bytes of a leading "/local/domain/<id>/", else 0. */
static size_t local_prefix_len(const char *p)
{
	static const char pre[] = "/local/domain/";
	size_t i = sizeof(pre) - 1, digits = 0;

	if (strncmp(p, pre, i) != 0)
		return 0;
	while (p[i] >= '0' && p[i] <= '9' && digits < 5) {
		i++;
		digits++;
	}
	return digits && p[i] == '/' ? i + 1 : 0;
}

/* Xen's is_valid_nodename(), with 4.17's path-length quota. */
static bool valid_path(const struct op *o, const char *p)
{
	size_t len = strlen(p);

	if (p[0] != '/' || (len > 1 && p[len - 1] == '/'))
		return false;
	if (len > XENSTORE_ABS_PATH_MAX || strstr(p, "//") || !valid_chars(p))
		return false;
	if (!o->priv && len - local_prefix_len(p) > o->s->lim.path)
		return false;
	return true;
}

int pvio__xs_domain_path(unsigned int domid, char *buf, size_t size)
{
	int n = snprintf(buf, size, "/local/domain/%u", domid);

	return n < 0 || (size_t)n >= size ? -ENOSPC : n;
}

/*
 * Canonicalise @in for the caller: a relative path lives under
 * /local/domain/<caller>/. *out is a malloc'd absolute path, *rel (if not
 * NULL) the bytes of it a relative watch does not report.
 */
static int canon(const struct op *o, const char *in, char **out, size_t *rel)
{
	char pre[32];
	size_t inlen, plen = 0;
	char *p;

	if (!in || in[0] == '@')	/* special paths are not nodes */
		return -EINVAL;
	inlen = strnlen(in, XENSTORE_ABS_PATH_MAX + 1);
	if (inlen > XENSTORE_ABS_PATH_MAX)
		return -EINVAL;
	if (in[0] != '/') {
		int n = pvio__xs_domain_path(o->domid, pre, sizeof(pre) - 1);

		if (n < 0)
			return -EINVAL;
		pre[n++] = '/';
		plen = (size_t)n;
	}
	p = malloc(plen + inlen + 1);
	if (!p)
		return -ENOMEM;
	memcpy(p, pre, plen);
	memcpy(p + plen, in, inlen + 1);
	if (!valid_path(o, p)) {
		free(p);
		return -EINVAL;
	}
	*out = p;
	if (rel)
		*rel = plen;
	return 0;
}

static int special_index(const char *path)
{
	int i;

	for (i = 0; i < NR_SPECIAL; i++)
		if (strcmp(path, special_name[i]) == 0)
			return i;
	return -1;
}

/* ---- events and watches -------------------------------------------------- */

static void queue_event(struct xs_conn *c, const char *path,
			const char *token)
{
	size_t pl = strlen(path), tl = strlen(token), len = pl + tl + 2;
	bool priv = c->domid == PVIO_XS_PRIV_DOMID;
	struct event *e;

	if (len > XENSTORE_PAYLOAD_MAX)
		return;	/* cannot be sent: xenstored drops it too */
	/* XSA-349: a client that never reads its events must not make us
	 * grow without bound */
	if (c->nev >= (priv ? c->s->lim.events_priv : c->s->lim.events) ||
	    (!priv && c->dom->ev_bytes + len > c->s->lim.event_bytes)) {
		c->dropped++;
		return;
	}
	e = malloc(sizeof(*e));
	if (e)
		e->data = malloc(pl + tl + 2);
	if (!e || !e->data) {
		free(e);
		c->dropped++;
		return;
	}
	memcpy(e->data, path, pl + 1);
	memcpy(e->data + pl + 1, token, tl + 1);
	e->len = (unsigned int)len;
	e->next = NULL;
	*c->ev_tail = e;
	c->ev_tail = &e->next;
	c->nev++;
	c->dom->ev_bytes += len;
}

static void events_clear(struct xs_conn *c)
{
	struct event *e;

	while ((e = c->ev_head)) {
		c->ev_head = e->next;
		c->dom->ev_bytes -= e->len;
		free(e->data);
		free(e);
	}
	c->ev_tail = &c->ev_head;
	c->nev = 0;
}

/* Is @path @parent or below it? "/" is everyone's parent. */
static bool is_child(const char *path, const char *parent)
{
	size_t len = strlen(parent);

	if (strcmp(parent, "/") == 0)
		return true;
	return strncmp(path, parent, len) == 0 &&
	       (path[len] == '/' || path[len] == 0);
}

/*
 * May @domid hear about a change of @path? If it may read the node now or
 * before the change (a watcher losing access learns of it), or its parent
 * (xenstored's watch_permitted).
 */
static bool can_see(const struct xs_store *s, unsigned int domid,
		    const char *path, const struct perms *now,
		    const struct perms *before)
{
	size_t len = strlen(path);
	struct node *parent;

	if (domid == PVIO_XS_PRIV_DOMID)
		return true;
	if ((before && (perm_for(domid, before) & PERM_READ)) ||
	    (now && (perm_for(domid, now) & PERM_READ)))
		return true;
	if (len <= 1)
		return false;
	parent = main_find(s, path, parent_len(path, len));
	return parent && (perm_for(domid, &parent->perms) & PERM_READ);
}

/*
 * A node changed: queue events for the watches on it and, unless @exact,
 * on its ancestors.
 */
static void fire(struct xs_store *s, const char *path,
		 const struct perms *now, const struct perms *before,
		 bool exact)
{
	struct xs_conn *c;
	struct watch *w;

	for (c = s->conns; c; c = c->next) {
		int allowed = -1;

		for (w = c->watches; w; w = w->next) {
			if (exact ? strcmp(path, w->path) != 0
				  : !is_child(path, w->path))
				continue;
			if (allowed < 0)
				allowed = can_see(s, c->domid, path, now,
						  before);
			if (!allowed)
				break;
			queue_event(c, path + w->rel, w->token);
		}
	}
}

static void fire_special(struct xs_store *s, int which)
{
	struct xs_conn *c;
	struct watch *w;

	for (c = s->conns; c; c = c->next) {
		if (!(perm_for(c->domid, &s->special[which]) & PERM_READ))
			continue;
		for (w = c->watches; w; w = w->next)
			if (strcmp(w->path, special_name[which]) == 0)
				queue_event(c, w->path, w->token);
	}
}

/* ---- transactions: the overlay ------------------------------------------- */

static struct tx *tx_find(const struct xs_conn *c, uint32_t id)
{
	struct tx *t;

	for (t = c->txs; t; t = t->next)
		if (t->id == id)
			return t;
	return NULL;
}

static struct tent *tent_find(const struct tx *t, const char *path,
			      size_t len)
{
	struct hent *e = map_find(&t->map, path, len);

	return e ? container_of(e, struct tent, h) : NULL;
}

static struct tent *tent_add(struct tx *t, const char *path, size_t len)
{
	struct tent *e = calloc(1, sizeof(*e) + len + 1);

	if (!e)
		return NULL;
	memcpy(e->path, path, len);
	e->h.key = e->path;
	e->h.klen = len;
	map_insert(&t->map, &e->h);
	*t->last = e;
	t->last = &e->lnext;
	t->n++;
	return e;
}

static void tx_free(struct dom *d, struct tx *t)
{
	struct tent *e, *next;

	d->tx_bytes -= t->bytes;

	for (e = t->first; e; e = next) {
		next = e->lnext;
		if (e->modified)
			node_free(e->node);
		free(e);
	}
	free(t->map.b);
	free(t);
}

/* ---- the operation's view: the store, or the store under an overlay ------ */

static int op_init(struct op *o, struct xs_conn *c, uint32_t txid)
{
	o->s = c->s;
	o->dom = c->dom;
	o->domid = c->domid;
	o->priv = c->domid == PVIO_XS_PRIV_DOMID;
	o->tx = NULL;
	if (txid) {
		o->tx = tx_find(c, txid);
		if (!o->tx)
			return -ENOENT;
	}
	return 0;
}

/*
 * A transaction is about to hold @bytes more: within the budget of an
 * unprivileged domain? Charged until the transaction ends; what it frees
 * before is not given back (an overestimate, never an under-).
 */
static int tx_charge(struct op *o, size_t bytes)
{
	if (!o->tx)
		return 0;
	if (!o->priv && o->dom->tx_bytes + bytes > o->s->lim.trans_bytes)
		return -ENOSPC;
	o->dom->tx_bytes += bytes;
	o->tx->bytes += bytes;
	return 0;
}

static size_t node_bytes(const struct node *n)
{
	return sizeof(*n) + n->h.klen + 1 + n->vlen + n->klen +
	       n->perms.n * sizeof(*n->perms.p);
}

/*
 * Look path[0..len) up as this operation sees it; *n is NULL when it does
 * not exist. A transaction remembers the generation on first access; that
 * is also where its size is capped.
 */
static int get(struct op *o, const char *path, size_t len, struct node **n)
{
	struct node *m = main_find(o->s, path, len);
	struct tent *e;

	*n = m;
	if (!o->tx)
		return 0;
	e = tent_find(o->tx, path, len);
	if (e) {
		if (e->modified)
			*n = e->node;
		return 0;
	}
	if (!o->priv && o->tx->n >= o->s->lim.trans_nodes)
		return -ENOSPC;
	if (tx_charge(o, sizeof(*e) + len + 1))
		return -ENOSPC;
	e = tent_add(o->tx, path, len);
	if (!e)
		return -ENOMEM;
	e->seen = m ? m->gen : 0;
	return 0;
}

/*
 * get() plus the access check. A missing node is -EACCES rather than
 * -ENOENT when its nearest existing ancestor denies @need: a domain must
 * not learn what exists where it may not look (xenstored's
 * errno_from_parents).
 */
static int get_checked(struct op *o, const char *path, unsigned int need,
		       struct node **n)
{
	size_t len = strlen(path);
	struct node *a;
	int rc;

	rc = get(o, path, len, n);
	if (rc)
		return rc;
	if (*n)
		return (perm_for(o->domid, &(*n)->perms) & need) == need ?
		       0 : -EACCES;
	while (len > 1) {
		len = parent_len(path, len);
		rc = get(o, path, len, &a);
		if (rc)
			return rc;
		if (a)
			return perm_for(o->domid, &a->perms) & need ?
			       -ENOENT : -EACCES;
	}
	return -ENOENT;
}

/*
 * The version of @n this operation may change: in a transaction its own
 * copy, made on the first change; else the node itself. Either way the
 * node gets a new generation.
 */
static int writable(struct op *o, struct node *n, struct node **w)
{
	struct tent *e;
	struct node *copy;

	if (!o->tx) {
		n->gen = ++o->s->gen;
		*w = n;
		return 0;
	}
	e = tent_find(o->tx, n->path, n->h.klen);
	if (!e)		/* get() put every node we hold there */
		return -EIO;
	if (!e->modified) {
		if (tx_charge(o, node_bytes(n)))
			return -ENOSPC;
		copy = node_dup(n);
		if (!copy)
			return -ENOMEM;
		e->modified = true;
		e->node = copy;
	}
	e->node->gen = ++o->s->gen;
	*w = e->node;
	return 0;
}

/*
 * Add @n, whose path is absent from this operation's view; the store (or
 * the transaction) takes it. Only fails if the transaction never looked
 * the path up, which create() does first.
 */
static int insert(struct op *o, struct node *n)
{
	struct tent *e;

	n->gen = ++o->s->gen;
	if (!o->tx) {
		map_insert(&o->s->nodes, &n->h);
		acct(o->s, owner(n), 1);
		return 0;
	}
	e = tent_find(o->tx, n->path, n->h.klen);
	if (!e) {
		node_free(n);
		return -EIO;
	}
	if (e->modified)
		node_free(e->node);
	e->modified = true;
	e->exact = false;
	e->node = n;
	if (owner(n) == o->domid)
		o->tx->delta++;
	return 0;
}

/* Remove @n from this operation's view (its children are gone already). */
static void delete(struct op *o, struct node *n, bool exact)
{
	struct tent *e;

	if (!o->tx) {
		map_remove(&o->s->nodes, &n->h);
		acct(o->s, owner(n), -1);
		node_free(n);
		return;
	}
	e = tent_find(o->tx, n->path, n->h.klen);
	if (!e)
		return;
	if (owner(n) == o->domid)
		o->tx->delta--;
	if (e->modified)
		node_free(e->node);	/* ours, not the store's */
	e->modified = true;
	e->exact = exact;
	e->node = NULL;
}

static int check_node_quota(const struct op *o, unsigned int more)
{
	const struct dom *d;
	long owned;

	if (o->priv)
		return 0;
	d = o->dom;
	owned = (long)d->nodes + (o->tx ? o->tx->delta : 0);
	return owned + (long)more > (long)o->s->lim.nodes ? -ENOSPC : 0;
}

/*
 * Create @path and its missing ancestors; the leaf gets @val. The caller
 * found @path missing and its nearest existing ancestor writable. A new
 * node inherits its parent's permissions; an unprivileged creator owns it.
 * On failure the nodes made so far stay (the tree is consistent after each
 * step) and watches hear of them.
 */
static int create(struct op *o, const char *path, const void *val,
		  unsigned int vlen)
{
	size_t len = strlen(path), top = len, end, nlen;
	struct node *parent, *n, *last = NULL;
	unsigned int missing = 1;
	const char *name;
	int rc;

	for (;;) {	/* find the nearest existing ancestor */
		rc = get(o, path, parent_len(path, top), &parent);
		if (rc)
			return rc;
		if (parent)
			break;
		top = parent_len(path, top);
		missing++;
	}
	rc = check_node_quota(o, missing);
	if (!rc)
		rc = writable(o, parent, &parent);
	/* top-down, one path component at a time */
	for (end = top; !rc; end += 1 + strcspn(path + end + 1, "/")) {
		bool leaf = end == len;

		/* the node, and its name in the parent's list */
		rc = tx_charge(o, sizeof(*n) + 2 * end + 2 +
				  (leaf ? vlen : 0) +
				  parent->perms.n * sizeof(*parent->perms.p));
		if (rc)
			break;
		n = node_new(path, end, &parent->perms, leaf ? val : NULL,
			     leaf ? vlen : 0);
		if (!n) {
			rc = -ENOMEM;
			break;
		}
		if (!o->priv)
			n->perms.p[0].id = o->domid;
		name = last_name(path, end, &nlen);
		rc = kid_add(parent, name, nlen);
		if (rc) {
			node_free(n);
			break;
		}
		rc = insert(o, n);
		if (rc)
			break;
		last = parent = n;
		if (leaf)
			break;
	}
	/* the deepest new node: watchers of it and above hear of the lot */
	if (last && !o->tx)
		fire(o->s, last->path, &last->perms, NULL, false);
	return rc;
}

struct nodevec {
	struct node **v;
	size_t n, cap;
	char *buf;		/* scratch: a child's path */
	size_t bcap;
};

static int nv_push(struct nodevec *nv, struct node *x)
{
	struct node **v;
	size_t cap;

	if (nv->n == nv->cap) {
		cap = nv->cap ? nv->cap * 2 : 16;
		v = realloc(nv->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		nv->v = v;
		nv->cap = cap;
	}
	nv->v[nv->n++] = x;
	return 0;
}

/* Push the children of @x, as this operation sees them. */
static int nv_push_kids(struct op *o, struct nodevec *nv,
			const struct node *x)
{
	size_t plen = x->h.klen > 1 ? x->h.klen : 0, off, l;
	struct node *kid;
	char *b;
	int rc;

	for (off = 0; off < x->klen; off += l + 1) {
		l = strlen(x->kids + off);
		if (plen + l + 2 > nv->bcap) {
			b = realloc(nv->buf, plen + l + 2);
			if (!b)
				return -ENOMEM;
			nv->buf = b;
			nv->bcap = plen + l + 2;
		}
		memcpy(nv->buf, x->path, plen);
		nv->buf[plen] = '/';
		memcpy(nv->buf + plen + 1, x->kids + off, l + 1);
		rc = get(o, nv->buf, plen + 1 + l, &kid);
		if (!rc && kid)
			rc = nv_push(nv, kid);
		if (rc)
			return rc;
	}
	return 0;
}

/* @root and its subtree, breadth first: parents before children. */
static int collect(struct op *o, struct node *root, struct nodevec *nv)
{
	size_t i;
	int rc;

	memset(nv, 0, sizeof(*nv));
	rc = nv_push(nv, root);
	for (i = 0; !rc && i < nv->n; i++)
		rc = nv_push_kids(o, nv, nv->v[i]);
	free(nv->buf);
	if (rc)
		free(nv->v);
	return rc;
}

/*
 * Remove @root (not "/") and its subtree. Watches fire for @root and its
 * ancestors, and exactly for each removed descendant, while the nodes can
 * still be seen (xenstored's order). Nothing changes before the last step
 * that can fail.
 */
static int rm_tree(struct op *o, struct node *root)
{
	struct nodevec nv;
	struct node *parent;
	const char *name;
	size_t nlen, i;
	int rc;

	rc = get(o, root->path, parent_len(root->path, root->h.klen),
		 &parent);
	if (!rc && !parent)
		rc = -EIO;
	if (!rc)
		rc = collect(o, root, &nv);
	if (rc)
		return rc;
	rc = writable(o, parent, &parent);
	if (rc) {
		free(nv.v);
		return rc;
	}
	name = last_name(root->path, root->h.klen, &nlen);
	kid_del(parent, name, nlen);
	if (!o->tx)
		fire(o->s, root->path, &root->perms, NULL, false);
	for (i = nv.n; i-- > 0;) {	/* children first */
		if (!o->tx && i)
			fire(o->s, nv.v[i]->path, &nv.v[i]->perms, NULL, true);
		delete(o, nv.v[i], i != 0);
	}
	free(nv.v);
	return 0;
}

static int set_value(struct op *o, struct node *n, const char *path,
		     const void *val, unsigned int len)
{
	struct node *w;
	char *v = NULL;
	int rc;

	rc = tx_charge(o, len);
	if (rc)
		return rc;
	if (len) {
		v = memdup0(val, len);
		if (!v)
			return -ENOMEM;
	}
	rc = writable(o, n, &w);
	if (rc) {
		free(v);
		return rc;
	}
	free(w->value);
	w->value = v;
	w->vlen = len;
	if (!o->tx)
		fire(o->s, path, &w->perms, NULL, false);
	return 0;
}

/* ---- permission lists ---------------------------------------------------- */

static const char perm_letter[] = "nrwb";	/* index: PERM_READ|WRITE */

/* One "<r|w|b|n><domid>" string. */
static int perm_parse(const char *s, struct xs_perm *p)
{
	const char *l = s[0] ? strchr(perm_letter, s[0]) : NULL;
	unsigned long v = 0;
	size_t i;

	if (!l)
		return -EINVAL;
	for (i = 1; s[i]; i++) {
		if (s[i] < '0' || s[i] > '9' || i > 5)
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 1 || v > PVIO_XS_MAX_DOMID)
		return -EINVAL;
	p->bits = (uint8_t)(l - perm_letter);
	p->id = (uint32_t)v;
	return 0;
}

/* @len bytes of NUL-terminated permission strings. */
static int perms_parse(const char *s, unsigned int len, struct perms *out)
{
	unsigned int n = 0, i, off;
	int rc = 0;

	if (!s || !len || s[len - 1] != 0)
		return -EINVAL;
	for (i = 0; i < len; i++)
		n += s[i] == 0;
	out->p = calloc(n, sizeof(*out->p));
	if (!out->p)
		return -ENOMEM;
	out->n = n;
	for (off = 0, i = 0; !rc && off < len; i++) {
		rc = perm_parse(s + off, &out->p[i]);
		off += (unsigned int)strlen(s + off) + 1;
	}
	if (rc)
		free(out->p);
	return rc;
}

static char *perms_format(const struct perms *p, unsigned int *len)
{
	size_t size = (size_t)p->n * 8, off = 0;	/* "b65535\0" fits */
	char *buf = malloc(size);
	unsigned int i;
	int n;

	if (!buf)
		return NULL;
	for (i = 0; i < p->n; i++) {
		n = snprintf(buf + off, size - off, "%c%u",
			     perm_letter[p->p[i].bits & 3], p->p[i].id);
		if (n < 0 || (size_t)n >= size - off) {
			free(buf);
			return NULL;
		}
		off += (size_t)n + 1;
	}
	*len = (unsigned int)off;
	return buf;
}

/* Drop @domid from a list; what it owned passes to domain 0. */
static bool perms_revoke(struct perms *p, unsigned int domid, bool *owned)
{
	unsigned int i = 1;
	bool changed = false;

	*owned = p->p[0].id == domid;
	if (*owned) {
		p->p[0].id = PVIO_XS_PRIV_DOMID;
		changed = true;
	}
	while (i < p->n) {
		if (p->p[i].id != domid) {
			i++;
			continue;
		}
		memmove(&p->p[i], &p->p[i + 1],
			(p->n - i - 1) * sizeof(*p->p));
		p->n--;
		changed = true;
	}
	return changed;
}

static void perms_swap(struct perms *a, struct perms *b)
{
	struct perms t = *a;

	*a = *b;
	*b = t;
}

static int set_special_perms(struct op *o, const char *path,
			     struct perms *np)
{
	int i = special_index(path);
	struct perms *sp;

	if (i < 0)
		return -ENOENT;
	sp = &o->s->special[i];
	if (!(perm_for(o->domid, sp) & PERM_OWNER))
		return -EACCES;
	if (!o->priv && np->p[0].id != sp->p[0].id)
		return -EPERM;
	perms_swap(sp, np);
	return 0;
}

/* On success *np holds the old list. */
static int set_node_perms(struct op *o, const char *path, struct perms *np)
{
	struct node *n, *w;
	unsigned int was;
	char *p;
	int rc;

	rc = canon(o, path, &p, NULL);
	if (rc)
		return rc;
	rc = get_checked(o, p, PERM_WRITE | PERM_OWNER, &n);
	if (!rc && !o->priv && np->p[0].id != owner(n))
		rc = -EPERM;	/* an unprivileged owner keeps its nodes */
	/* a new owner needs its accounting record before anything changes */
	if (!rc && !dom_get(o->s, np->p[0].id))
		rc = -ENOMEM;
	if (!rc)
		rc = tx_charge(o, np->n * sizeof(*np->p));
	if (!rc)
		rc = writable(o, n, &w);
	if (!rc) {
		was = owner(w);
		perms_swap(&w->perms, np);
		if (!o->tx) {
			acct(o->s, was, -1);
			acct(o->s, owner(w), 1);
			fire(o->s, p, &w->perms, np, false);
		}
	}
	free(p);
	return rc;
}

/* ---- node operations ----------------------------------------------------- */

/* The node at @path for a read: canonical name, permission checked. */
static int get_readable(struct op *o, struct xs_conn *c, uint32_t tx,
			const char *path, struct node **n)
{
	char *p;
	int rc;

	rc = op_init(o, c, tx);
	if (!rc)
		rc = canon(o, path, &p, NULL);
	if (rc)
		return rc;
	rc = get_checked(o, p, PERM_READ, n);
	free(p);
	return rc;
}

/* A copy of a node's value, or of its list of children. */
static int read_copy(struct xs_conn *c, uint32_t tx, const char *path,
		     bool kids, char **out, unsigned int *len)
{
	struct op o;
	struct node *n;
	int rc;

	rc = get_readable(&o, c, tx, path, &n);
	if (rc)
		return rc;
	*out = memdup0(kids ? n->kids : n->value, kids ? n->klen : n->vlen);
	if (!*out)
		return -ENOMEM;
	*len = kids ? n->klen : n->vlen;
	return 0;
}

int pvio__xs_read(struct xs_conn *c, uint32_t tx, const char *path,
		  char **val, unsigned int *len)
{
	return read_copy(c, tx, path, false, val, len);
}

int pvio__xs_write(struct xs_conn *c, uint32_t tx, const char *path,
		   const void *val, unsigned int len)
{
	struct op o;
	struct node *n;
	char *p;
	int rc;

	rc = op_init(&o, c, tx);
	if (rc)
		return rc;
	if (len > o.s->lim.value)
		return -E2BIG;
	rc = canon(&o, path, &p, NULL);
	if (rc)
		return rc;
	rc = get_checked(&o, p, PERM_WRITE, &n);
	if (rc == -ENOENT)
		rc = create(&o, p, val, len);
	else if (!rc)
		rc = set_value(&o, n, p, val, len);
	free(p);
	return rc;
}

int pvio__xs_mkdir(struct xs_conn *c, uint32_t tx, const char *path)
{
	struct op o;
	struct node *n;
	char *p;
	int rc;

	rc = op_init(&o, c, tx);
	if (!rc)
		rc = canon(&o, path, &p, NULL);
	if (rc)
		return rc;
	rc = get_checked(&o, p, PERM_WRITE, &n);
	if (rc == -ENOENT)
		rc = create(&o, p, NULL, 0);
	free(p);
	return rc;
}

int pvio__xs_rm(struct xs_conn *c, uint32_t tx, const char *path)
{
	struct op o;
	struct node *n, *parent;
	char *p;
	int rc;

	rc = op_init(&o, c, tx);
	if (!rc)
		rc = canon(&o, path, &p, NULL);
	if (rc)
		return rc;
	rc = get_checked(&o, p, PERM_WRITE, &n);
	if (rc == -ENOENT) {
		/* removing what is not there is fine if its parent is */
		rc = get(&o, p, parent_len(p, strlen(p)), &parent);
		if (!rc)
			rc = parent ? 0 : -ENOENT;
	} else if (!rc) {
		rc = strcmp(p, "/") == 0 ? -EINVAL : rm_tree(&o, n);
	}
	free(p);
	return rc;
}

int pvio__xs_directory(struct xs_conn *c, uint32_t tx, const char *path,
		       char **list, unsigned int *len)
{
	return read_copy(c, tx, path, true, list, len);
}

/* Whole names from @offset that fit in @room bytes. */
static size_t names_fitting(const struct node *n, size_t offset, size_t room)
{
	size_t take = 0, l;

	while (offset + take < n->klen) {
		l = strlen(n->kids + offset + take);
		if (take + l + 1 > room)
			break;
		take += l + 1;
	}
	return take;
}

int pvio__xs_directory_part(struct xs_conn *c, uint32_t tx,
			    const char *path, unsigned int offset,
			    unsigned int max, char **out, unsigned int *len)
{
	struct op o;
	struct node *n;
	char gen[24], *buf;
	size_t glen, take = 0;
	int rc;

	rc = get_readable(&o, c, tx, path, &n);
	if (rc)
		return rc;
	glen = (size_t)snprintf(gen, sizeof(gen), "%llu",
				(unsigned long long)n->gen) + 1;
	if (max < glen + 1)
		return -E2BIG;
	if (offset < n->klen) {
		/* keep a byte for the NUL that ends the list */
		take = names_fitting(n, offset, max - glen - 1);
		if (!take)
			return -E2BIG;
	}
	buf = malloc(glen + take + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, gen, glen);
	if (take)
		memcpy(buf + glen, n->kids + offset, take);
	*len = (unsigned int)(glen + take);
	if (offset + take >= n->klen)
		buf[(*len)++] = 0;
	*out = buf;
	return 0;
}

int pvio__xs_get_perms(struct xs_conn *c, uint32_t tx, const char *path,
		       char **perms, unsigned int *len)
{
	const struct perms *pl;
	struct op o;
	struct node *n;
	char *p;
	int rc, i;

	rc = op_init(&o, c, tx);
	if (rc)
		return rc;
	if (path && path[0] == '@') {
		i = special_index(path);
		if (i < 0)
			return -ENOENT;
		pl = &o.s->special[i];
		if (!(perm_for(o.domid, pl) & PERM_READ))
			return -EACCES;
	} else {
		rc = canon(&o, path, &p, NULL);
		if (rc)
			return rc;
		rc = get_checked(&o, p, PERM_READ, &n);
		free(p);
		if (rc)
			return rc;
		pl = &n->perms;
	}
	*perms = perms_format(pl, len);
	return *perms ? 0 : -ENOMEM;
}

int pvio__xs_set_perms(struct xs_conn *c, uint32_t tx, const char *path,
		       const char *perms, unsigned int len)
{
	struct perms np;
	struct op o;
	int rc;

	rc = op_init(&o, c, tx);
	if (!rc)
		rc = perms_parse(perms, len, &np);
	if (rc)
		return rc;
	if (!o.priv && np.n > o.s->lim.perms)
		rc = -ENOSPC;
	else if (path && path[0] == '@')
		rc = set_special_perms(&o, path, &np);
	else
		rc = set_node_perms(&o, path, &np);
	free(np.p);	/* the old list on success */
	return rc;
}

/* ---- transactions -------------------------------------------------------- */

int pvio__xs_tx_check(const struct xs_conn *c, uint32_t tx)
{
	return !tx || tx_find(c, tx) ? 0 : -ENOENT;
}

int pvio__xs_tx_start(struct xs_conn *c, uint32_t *id)
{
	struct dom *d = c->dom;
	struct tx *t;

	if (c->domid != PVIO_XS_PRIV_DOMID &&
	    d->txs >= c->s->lim.transactions)
		return -ENOSPC;
	t = calloc(1, sizeof(*t));
	if (!t || map_init(&t->map, c->s->seed, 16)) {
		free(t);
		return -ENOMEM;
	}
	t->last = &t->first;
	do
		t->id = c->next_tx++;
	while (t->id == 0 || tx_find(c, t->id));
	t->next = c->txs;
	c->txs = t;
	d->txs++;
	*id = t->id;
	return 0;
}

/* Has anything the transaction looked at changed since it looked? */
static int tx_conflict(const struct xs_store *s, const struct tx *t)
{
	const struct tent *e;
	const struct node *m;

	for (e = t->first; e; e = e->lnext) {
		m = main_find(s, e->path, e->h.klen);
		if ((m ? m->gen : 0) != e->seen)
			return -EAGAIN;
	}
	return 0;
}

/*
 * How many more nodes @domid would own after the commit; and make sure
 * every new owner has an accounting record, so that applying cannot fail.
 */
static int tx_owners(struct xs_store *s, const struct tx *t,
		     unsigned int domid, long *delta)
{
	const struct tent *e;
	const struct node *m;

	*delta = 0;
	for (e = t->first; e; e = e->lnext) {
		if (!e->modified)
			continue;
		m = main_find(s, e->path, e->h.klen);
		if (m && owner(m) == domid)
			(*delta)--;
		if (!e->node)
			continue;
		if (owner(e->node) == domid)
			(*delta)++;
		if (!dom_get(s, owner(e->node)))
			return -ENOMEM;
	}
	return 0;
}

/* Replace the store's version of one path by the transaction's. */
static void tx_apply(struct xs_store *s, struct tent *e)
{
	e->old = main_find(s, e->path, e->h.klen);
	if (e->old) {
		map_remove(&s->nodes, &e->old->h);
		acct(s, owner(e->old), -1);
	}
	if (e->node) {
		e->node->gen = ++s->gen;
		map_insert(&s->nodes, &e->node->h);
		acct(s, owner(e->node), 1);
	}
}

static int tx_commit(struct xs_conn *c, struct tx *t)
{
	struct xs_store *s = c->s;
	struct tent *e;
	long delta;
	int rc;

	rc = tx_conflict(s, t);
	if (!rc)
		rc = tx_owners(s, t, c->domid, &delta);
	if (rc)
		return rc;
	if (c->domid != PVIO_XS_PRIV_DOMID && delta > 0 &&
	    c->dom->nodes + delta > s->lim.nodes)
		return -ENOSPC;
	for (e = t->first; e; e = e->lnext)
		if (e->modified)
			tx_apply(s, e);
	/* watches fire once everything is in, like xenstored's */
	for (e = t->first; e; e = e->lnext)
		if (e->modified && (e->node || e->old))
			fire(s, e->path, e->node ? &e->node->perms : NULL,
			     e->old ? &e->old->perms : NULL, e->exact);
	for (e = t->first; e; e = e->lnext) {
		if (!e->modified)
			continue;
		node_free(e->old);	/* the new version is the store's */
		e->old = e->node = NULL;
		e->modified = false;
	}
	return 0;
}

int pvio__xs_tx_end(struct xs_conn *c, uint32_t id, bool commit)
{
	struct tx **pp, *t;
	int rc = 0;

	for (pp = &c->txs; *pp && (*pp)->id != id; pp = &(*pp)->next)
		;
	t = *pp;
	if (!id || !t)
		return -ENOENT;
	*pp = t->next;
	c->dom->txs--;
	if (commit)
		rc = tx_commit(c, t);
	tx_free(c->dom, t);
	return rc;
}

/* ---- watches ------------------------------------------------------------- */

static int watch_path(const struct op *o, const char *path, char **abs,
		      size_t *rel)
{
	size_t len;

	if (!path || path[0] != '@')
		return canon(o, path, abs, rel);
	len = strnlen(path, XENSTORE_REL_PATH_MAX + 1);
	if (len > XENSTORE_REL_PATH_MAX || !valid_chars(path))
		return -EINVAL;
	*abs = memdup0(path, len);
	*rel = 0;
	return *abs ? 0 : -ENOMEM;
}

static void watch_free(struct xs_conn *c, struct watch *w)
{
	c->dom->watches--;
	free(w->token);
	free(w);
}

static struct watch *watch_new(const char *abs, size_t rel,
			       const char *token)
{
	size_t plen = strlen(abs);
	struct watch *w = malloc(sizeof(*w) + plen + 1);

	if (!w)
		return NULL;
	w->token = memdup0(token, strlen(token));
	if (!w->token) {
		free(w);
		return NULL;
	}
	memcpy(w->path, abs, plen + 1);
	w->rel = rel;
	w->next = NULL;
	return w;
}

int pvio__xs_watch(struct xs_conn *c, const char *path, const char *token)
{
	struct dom *d = c->dom;
	struct watch **pp, *w = NULL;
	struct op o;
	size_t rel;
	char *abs;
	int rc;

	if (!token || op_init(&o, c, 0))
		return -EINVAL;
	rc = watch_path(&o, path, &abs, &rel);
	if (rc)
		return rc;
	/* the events of this watch must fit in a message */
	if (strlen(abs) - rel + strlen(token) + 2 > XENSTORE_PAYLOAD_MAX)
		rc = -E2BIG;
	for (pp = &c->watches; !rc && *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->path, abs) == 0 &&
		    strcmp((*pp)->token, token) == 0)
			rc = -EEXIST;
	if (!rc && !o.priv && d->watches >= c->s->lim.watches)
		rc = -ENOSPC;
	if (!rc) {
		w = watch_new(abs, rel, token);
		rc = w ? 0 : -ENOMEM;
	}
	free(abs);
	if (rc)
		return rc;
	*pp = w;
	d->watches++;
	/* fire once up front: clients read the node's initial state then */
	queue_event(c, w->path + w->rel, w->token);
	return 0;
}

int pvio__xs_unwatch(struct xs_conn *c, const char *path, const char *token)
{
	struct watch **pp, *w;
	struct op o;
	size_t rel;
	char *abs;
	int rc;

	if (!token || op_init(&o, c, 0))
		return -EINVAL;
	rc = watch_path(&o, path, &abs, &rel);
	if (rc)
		return rc;
	rc = -ENOENT;
	for (pp = &c->watches; *pp; pp = &(*pp)->next) {
		w = *pp;
		if (strcmp(w->path, abs) == 0 && strcmp(w->token, token) == 0) {
			*pp = w->next;
			watch_free(c, w);
			rc = 0;
			break;
		}
	}
	free(abs);
	return rc;
}

void pvio__xs_reset(struct xs_conn *c)
{
	struct watch *w;
	struct tx *t;

	while ((w = c->watches)) {
		c->watches = w->next;
		watch_free(c, w);
	}
	while ((t = c->txs)) {
		c->txs = t->next;
		c->dom->txs--;
		tx_free(c->dom, t);
	}
}

int pvio__xs_event_pop(struct xs_conn *c, char **msg, unsigned int *len)
{
	struct event *e = c->ev_head;

	if (!e)
		return -EAGAIN;
	c->ev_head = e->next;
	if (!c->ev_head)
		c->ev_tail = &c->ev_head;
	c->nev--;
	c->dom->ev_bytes -= e->len;
	*msg = e->data;
	*len = e->len;
	free(e);
	return 0;
}

unsigned int pvio__xs_event_count(const struct xs_conn *c)
{
	return c->nev;
}

unsigned int pvio__xs_events_dropped(struct xs_conn *c)
{
	unsigned int n = c->dropped;

	c->dropped = 0;
	return n;
}

/* ---- connections --------------------------------------------------------- */

int pvio__xs_conn_new(struct xs_store *s, unsigned int domid,
		      struct xs_conn **out)
{
	struct xs_conn *c;
	struct dom *d;

	if (domid > PVIO_XS_MAX_DOMID)
		return -EINVAL;
	d = dom_get(s, domid);
	if (!d)
		return -ENOMEM;
	c = calloc(1, sizeof(*c));
	if (!c) {
		dom_put(s, d);
		return -ENOMEM;
	}
	c->s = s;
	c->dom = d;
	c->domid = domid;
	c->next_tx = 1;
	c->ev_tail = &c->ev_head;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	d->conns++;
	*out = c;
	return 0;
}

void pvio__xs_conn_free(struct xs_conn *c)
{
	struct dom *d;

	if (!c)
		return;
	pvio__xs_reset(c);
	events_clear(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		c->s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	d = c->dom;
	d->conns--;
	dom_put(c->s, d);
	free(c);
}

unsigned int pvio__xs_conn_domid(const struct xs_conn *c)
{
	return c->domid;
}

/* ---- domains ------------------------------------------------------------- */

int pvio__xs_domain_introduce(struct xs_store *s, unsigned int domid)
{
	struct dom *d;

	if (domid > PVIO_XS_MAX_DOMID)
		return -EINVAL;
	d = dom_get(s, domid);
	if (!d)
		return -ENOMEM;
	if (d->introduced)
		return 0;
	d->introduced = true;
	fire_special(s, SPECIAL_INTRODUCE);
	return 0;
}

/* XSA-322: a later domain with this id must inherit none of its rights. */
static void revoke(struct xs_store *s, unsigned int domid)
{
	struct hent *e;
	struct node *n;
	bool owned;
	size_t i;
	int k;

	for (i = 0; i <= s->nodes.mask; i++)
		for (e = s->nodes.b[i]; e; e = e->next) {
			n = container_of(e, struct node, h);
			if (!perms_revoke(&n->perms, domid, &owned))
				continue;
			/* transactions that saw the old list must retry */
			n->gen = ++s->gen;
			if (owned) {
				acct(s, domid, -1);
				acct(s, PVIO_XS_PRIV_DOMID, 1);
			}
		}
	for (k = 0; k < NR_SPECIAL; k++)
		perms_revoke(&s->special[k], domid, &owned);
}

void pvio__xs_domain_release(struct xs_store *s, unsigned int domid)
{
	struct dom *d = dom_find(s, domid);
	struct xs_conn *c;

	if (!d || !d->introduced)
		return;
	d->introduced = false;
	for (c = s->conns; c; c = c->next)
		if (c->domid == domid) {
			pvio__xs_reset(c);
			events_clear(c);
		}
	if (domid != PVIO_XS_PRIV_DOMID)
		revoke(s, domid);
	fire_special(s, SPECIAL_RELEASE);
	dom_put(s, d);
}

bool pvio__xs_domain_introduced(const struct xs_store *s, unsigned int domid)
{
	const struct dom *d = dom_find(s, domid);

	return d && d->introduced;
}

/* ---- the store ----------------------------------------------------------- */

void pvio__xs_limits_default(struct xs_limits *lim)
{
	lim->nodes = 1000;
	lim->watches = 128;
	lim->transactions = 10;
	lim->trans_nodes = 1024;
	lim->perms = 5;
	lim->value = XENSTORE_PAYLOAD_MAX;
	lim->path = XENSTORE_REL_PATH_MAX;
	lim->events = 1024;
	lim->events_priv = 65536;
	lim->event_bytes = 1u << 20;
	lim->trans_bytes = 1u << 20;
}

int pvio__xs_store_new(struct xs_store **out, const struct xs_limits *lim)
{
	static const struct xs_perm none = { PVIO_XS_PRIV_DOMID, 0 };
	const struct perms n0 = { 1, (struct xs_perm *)&none };
	struct op o = { .domid = PVIO_XS_PRIV_DOMID, .priv = true };
	struct xs_store *s = calloc(1, sizeof(*s));
	struct node *root;
	int i, rc = -ENOMEM;

	if (!s)
		return -ENOMEM;
	if (lim)
		s->lim = *lim;
	else
		pvio__xs_limits_default(&s->lim);
	/* without entropy the store still works, its hash is guessable */
	if (getrandom(s->seed, sizeof(s->seed), GRND_NONBLOCK) !=
	    (ssize_t)sizeof(s->seed))
		s->seed[0] = (uint64_t)(uintptr_t)s;
	if (map_init(&s->nodes, s->seed, 64))
		goto fail;
	for (i = 0; i < NR_SPECIAL; i++)
		if (perms_copy(&s->special[i], &n0))
			goto fail;
	if (!dom_get(s, PVIO_XS_PRIV_DOMID))
		goto fail;
	root = node_new("/", 1, &n0, NULL, 0);
	if (!root)
		goto fail;
	o.s = s;
	rc = insert(&o, root);
	if (!rc)
		rc = create(&o, "/local/domain/0", NULL, 0);
	if (!rc)
		rc = create(&o, "/tool", NULL, 0);
	if (rc)
		goto fail;
	*out = s;
	return 0;
fail:
	pvio__xs_store_free(s);
	return rc;
}

void pvio__xs_store_free(struct xs_store *s)
{
	struct hent *e, *next;
	struct dom *d;
	size_t i;
	int k;

	if (!s)
		return;
	while (s->conns)
		pvio__xs_conn_free(s->conns);
	for (i = 0; s->nodes.b && i <= s->nodes.mask; i++)
		for (e = s->nodes.b[i]; e; e = next) {
			next = e->next;
			node_free(container_of(e, struct node, h));
		}
	free(s->nodes.b);
	for (k = 0; k < NR_SPECIAL; k++)
		free(s->special[k].p);
	while ((d = s->doms)) {
		s->doms = d->next;
		free(d);
	}
	free(s);
}

unsigned int pvio__xs_store_nodes(const struct xs_store *s)
{
	return (unsigned int)s->nodes.n;
}
