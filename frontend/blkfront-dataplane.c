// SPDX-License-Identifier: MIT
/*
 * blkfront's dataplane: one ring, one event channel and one granted data
 * pool per queue, and the hot path over them (prep, submit, reap, arm,
 * wait). No xenstore, no lock, no malloc and no logging after
 * pvio__bf_queue_start(); the control path meets it at the pvio__bf_queue_*
 * calls.
 *
 * Slots: a queue has `depth` slots; slot i owns max_segs data pages and
 * its indirect pages, granted once. A request's id is (generation << 32) |
 * slot: a response must name a slot that is in flight with the same
 * generation and echo the operation, or the backend is broken and the
 * device dies (Linux blkfront's XSA-376 checks, made exact).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <pvio/ring.h>

#include "blkfront-private.h"

enum bf_slot_state {
	SLOT_FREE = 0,
	SLOT_PREPPED,		/* in the ring, not yet published */
	SLOT_INFLIGHT,		/* published: a response is owed */
	SLOT_LOCAL,		/* completed without the backend */
};

struct bf_slot {
	struct pvio_blkfront_io *io;
	uint32_t gen;
	uint8_t state;
	uint8_t rsp_op;		/* what the response must echo */
	bool in_place;		/* on a granted buffer: nothing to copy */
	int local_res;
	char *data;		/* max_segs pages, contiguous */
	const pvio_gref_t *refs;
	struct blkif_request_segment *ind;	/* indirect pages */
	const pvio_gref_t *ind_refs;
};

struct bf_share {
	void *addr;
	unsigned int pages;
};

/* A pvio_blkfront_buf_alloc() buffer: its pages and their grants. */
struct bf_buf {
	char *addr;
	size_t len;
	pvio_gref_t *refs;
};

/* A request as built in private memory, then copied to its ring slot. */
union bf_req {
	struct blkif_request rw;
	struct blkif_request_indirect ind;
	struct blkif_request_discard dis;
};
_Static_assert(sizeof(union bf_req) == sizeof(struct blkif_request),
	       "every blkif request fits a ring slot");
_Static_assert(BF_SEGS_PER_PAGE * sizeof(struct blkif_request_segment) ==
		       PVIO_PAGE_SIZE,
	       "512 segments per indirect page");

struct pvio_blkfront_queue {
	struct pvio_ring_front ring;	/* own cache lines */

	/* hot */
	struct pvio_blkfront *dev;
	struct pvio_platform *plat;
	pvio_port_t port;
	uint32_t depth;
	uint32_t max_io;		/* bytes per read/write request */
	uint16_t handle;
	bool indirect;			/* may send BLKIF_OP_INDIRECT */
	bool started;
	struct bf_slot *slots;
	uint32_t *free_ids;
	uint32_t nr_free;
	uint32_t *prepped;		/* ids since the last submit */
	uint32_t nr_prepped;
	uint32_t *local;		/* ids completed without a trip */
	uint32_t nr_local;
	uint32_t busy;			/* slots not free */
	struct fe_wait wait;		/* the queue's pollable fd, the kick */
	uint64_t spin_ns;
	uint64_t gap_ns;		/* usual wait from an empty ring to a response */
	struct pvio_blkfront_queue_stats st;
	unsigned int nr_bufs;
	struct bf_buf bufs[PVIO_BLKFRONT_MAX_BUFS];

	/* cold */
	unsigned int idx;
	unsigned int ring_pages;
	void *ring_area;
	pvio_gref_t ring_refs[PVIO_RING_MAX_PAGES];
	bool port_open;
	struct bf_share *shares;
	unsigned int nr_shares;
	pvio_gref_t *data_refs;
	pvio_gref_t *ind_refs;
	void *ids_mem;
	/* freed buffers the backend still maps: unshared at destroy */
	unsigned int nr_retired;
	struct bf_buf retired[PVIO_BLKFRONT_MAX_BUFS];
};

#define BF_REAP_BATCH	32u

/* ---- set-up and tear-down (cold) ----------------------------------------- */

__attribute__((cold)) int
pvio__bf_queue_create(struct pvio_blkfront *dev, unsigned int idx,
		      unsigned int ring_pages, struct pvio_blkfront_queue **out)
{
	struct pvio_blkfront_queue *q;
	int rc;

	*out = NULL;
	if (posix_memalign((void **)&q, PVIO_CACHELINE, sizeof(*q)))
		return -ENOMEM;
	memset(q, 0, sizeof(*q));
	q->dev = dev;
	q->idx = idx;
	q->wait = FE_WAIT_INIT;
	q->handle = dev->handle;
	q->ring_pages = ring_pages;

	/* A handle of our own: its event-channel fd carries this queue's
	 * port only, so each queue's thread sleeps on its own fd (QEMU's
	 * dataplanes open one xenevtchn each for the same reason). */
	rc = pvio_platform_open(&q->plat, dev->fe.spec, dev->fe.self, 0);
	if (rc)
		goto fail;
	rc = pvio_gnt_share(q->plat, dev->fe.backend_id, ring_pages, true,
			    q->ring_refs, &q->ring_area);
	if (rc)
		goto fail;
	rc = pvio_blkif_front_init(&q->ring, q->ring_area, ring_pages);
	if (rc)
		goto fail;
	rc = pvio_evtchn_alloc_unbound(q->plat, dev->fe.backend_id);
	if (rc < 0)
		goto fail;
	q->port = (pvio_port_t)rc;
	q->port_open = true;

	rc = fe_wait_open(&q->wait, q->plat);
	if (rc)
		goto fail;
	*out = q;
	return 0;
fail:
	pvio__bf_queue_destroy(q);
	return rc;
}

void pvio__bf_queue_ring(const struct pvio_blkfront_queue *q,
			 const pvio_gref_t **refs, unsigned int *pages,
			 pvio_port_t *port)
{
	*refs = q->ring_refs;
	*pages = q->ring_pages;
	*port = q->port;
}

unsigned int pvio__bf_queue_index(const struct pvio_blkfront_queue *q)
{
	return q->idx;
}

struct pvio_blkfront *pvio__bf_queue_dev(const struct pvio_blkfront_queue *q)
{
	return q->dev;
}

/* Grant @n slots' worth of @per_slot pages in chunks of whole slots. */
static int share_pool(struct pvio_blkfront_queue *q, unsigned int per_slot,
		      pvio_gref_t *refs, bool indirect)
{
	unsigned int spc = BF_SHARE_CHUNK / per_slot, s, k, n;
	void *addr;
	int rc;

	if (spc == 0)
		spc = 1;
	for (s = 0; s < q->depth; s += n) {
		n = q->depth - s < spc ? q->depth - s : spc;
		/* Writable even for indirect pages: a persistent-grant
		 * backend maps every grant writable (blkif.h note 8). */
		rc = pvio_gnt_share(q->plat, q->dev->fe.backend_id,
				    n * per_slot, true,
				    refs + (size_t)s * per_slot, &addr);
		if (rc)
			return rc;
		q->shares[q->nr_shares].addr = addr;
		q->shares[q->nr_shares].pages = n * per_slot;
		q->nr_shares++;
		for (k = 0; k < n; k++) {
			struct bf_slot *sl = &q->slots[s + k];
			char *base = (char *)addr +
				     (size_t)k * per_slot * PVIO_PAGE_SIZE;
			const pvio_gref_t *r =
				refs + (size_t)(s + k) * per_slot;

			if (indirect) {
				sl->ind = (struct blkif_request_segment *)base;
				sl->ind_refs = r;
			} else {
				sl->data = base;
				sl->refs = r;
			}
		}
	}
	return 0;
}

__attribute__((cold)) int pvio__bf_queue_start(struct pvio_blkfront_queue *q,
					       unsigned int depth,
					       unsigned int max_segs,
					       bool indirect)
{
	unsigned int ind_pages = 0, spc, chunks, i;
	uint32_t *ids;
	int rc;

	if (depth == 0 || depth > q->ring.nr_ents || max_segs == 0 ||
	    max_segs > PVIO_BLKFRONT_MAX_SEGMENTS || q->started)
		return -EINVAL;
	if (indirect)
		ind_pages = (max_segs + BF_SEGS_PER_PAGE - 1) /
			    BF_SEGS_PER_PAGE;
	q->depth = depth;
	q->max_io = max_segs * PVIO_PAGE_SIZE;
	q->indirect = indirect && max_segs > BF_DIRECT_SEGS;

	q->slots = calloc(depth, sizeof(*q->slots));
	ids = calloc(3 * (size_t)depth, sizeof(*ids));
	q->ids_mem = ids;
	q->data_refs = calloc((size_t)depth * max_segs, sizeof(pvio_gref_t));
	if (ind_pages)
		q->ind_refs = calloc((size_t)depth * ind_pages,
				     sizeof(pvio_gref_t));
	spc = BF_SHARE_CHUNK / max_segs ? BF_SHARE_CHUNK / max_segs : 1;
	chunks = (depth + spc - 1) / spc;
	if (ind_pages) {
		spc = BF_SHARE_CHUNK / ind_pages;
		chunks += (depth + spc - 1) / spc;
	}
	q->shares = calloc(chunks, sizeof(*q->shares));
	if (!q->slots || !ids || !q->data_refs || !q->shares ||
	    (ind_pages && !q->ind_refs))
		return -ENOMEM;
	q->free_ids = ids;
	q->prepped = ids + depth;
	q->local = ids + 2 * (size_t)depth;

	rc = share_pool(q, max_segs, q->data_refs, false);
	if (!rc && ind_pages)
		rc = share_pool(q, ind_pages, q->ind_refs, true);
	if (rc)
		return rc;
	/* popped from the end: slot 0 goes first */
	for (i = 0; i < depth; i++)
		q->free_ids[i] = depth - 1 - i;
	q->nr_free = depth;
	q->started = true;
	return 0;
}

void pvio__bf_queue_kick(struct pvio_blkfront_queue *q)
{
	if (q)
		fe_wait_kick(&q->wait);
}

__attribute__((cold)) void pvio__bf_queue_destroy(struct pvio_blkfront_queue *q)
{
	unsigned int i;

	if (!q)
		return;
	/* -EBUSY (the backend still maps a page) is not fatal: closing the
	 * handle ends what is left (sim), or the kernel frees the pages
	 * once unmapped (gntalloc). */
	for (i = 0; i < q->nr_shares; i++)
		pvio_gnt_unshare(q->plat, q->shares[i].addr,
				 q->shares[i].pages);
	for (i = 0; i < q->nr_bufs; i++) {
		pvio_gnt_unshare(q->plat, q->bufs[i].addr,
				 (unsigned int)(q->bufs[i].len >> PVIO_PAGE_SHIFT));
		free(q->bufs[i].refs);
	}
	for (i = 0; i < q->nr_retired; i++) {
		pvio_gnt_unshare(q->plat, q->retired[i].addr,
				 (unsigned int)(q->retired[i].len >> PVIO_PAGE_SHIFT));
		free(q->retired[i].refs);
	}
	if (q->ring_area)
		pvio_gnt_unshare(q->plat, q->ring_area, q->ring_pages);
	if (q->port_open)
		pvio_evtchn_close(q->plat, q->port);
	fe_wait_close(&q->wait);
	pvio_platform_close(q->plat);
	free(q->shares);
	free(q->data_refs);
	free(q->ind_refs);
	free(q->ids_mem);
	free(q->slots);
	free(q);
}

/* ---- the hot path -------------------------------------------------------- */

int pvio_blkfront_queue_fd(struct pvio_blkfront_queue *q)
{
	return q->wait.epfd;
}

unsigned int pvio_blkfront_queue_inflight(const struct pvio_blkfront_queue *q)
{
	return q->busy;
}

unsigned int pvio_blkfront_queue_space(const struct pvio_blkfront_queue *q)
{
	return q->nr_free;
}

void pvio_blkfront_queue_set_spin(struct pvio_blkfront_queue *q, uint64_t ns)
{
	q->spin_ns = ns;
}

void pvio_blkfront_queue_stats(const struct pvio_blkfront_queue *q,
			       struct pvio_blkfront_queue_stats *st)
{
	*st = q->st;
}

int pvio_blkfront_buf_alloc(struct pvio_blkfront_queue *q, size_t len,
			    void **out)
{
	struct bf_buf *b;
	void *addr;
	int rc;

	*out = NULL;
	if (len == 0 || len > PVIO_BLKFRONT_BUF_MAX ||
	    (len & (PVIO_PAGE_SIZE - 1)))
		return -EINVAL;
	if (q->nr_bufs + q->nr_retired >= PVIO_BLKFRONT_MAX_BUFS)
		return -ENOSPC;
	b = &q->bufs[q->nr_bufs];
	b->refs = calloc(len >> PVIO_PAGE_SHIFT, sizeof(*b->refs));
	if (!b->refs)
		return -ENOMEM;
	/* writable: a persistent-grant backend maps every grant so */
	rc = pvio_gnt_share(q->plat, q->dev->fe.backend_id,
			    (unsigned int)(len >> PVIO_PAGE_SHIFT), true,
			    b->refs, &addr);
	if (rc) {
		free(b->refs);
		b->refs = NULL;
		return rc;
	}
	b->addr = addr;
	b->len = len;
	q->nr_bufs++;
	*out = addr;
	return 0;
}

int pvio_blkfront_buf_free(struct pvio_blkfront_queue *q, void *buf)
{
	unsigned int i;
	struct bf_buf b;

	for (i = 0; i < q->nr_bufs && q->bufs[i].addr != buf; i++)
		;
	if (i == q->nr_bufs)
		return -EINVAL;
	b = q->bufs[i];
	q->bufs[i] = q->bufs[--q->nr_bufs];
	if (pvio_gnt_unshare(q->plat, b.addr,
			     (unsigned int)(b.len >> PVIO_PAGE_SHIFT)) == -EBUSY) {
		q->retired[q->nr_retired++] = b;	/* still mapped */
		return 0;
	}
	free(b.refs);
	return 0;
}

/*
 * Is [@buf, @buf + @len) inside a granted buffer, sector-aligned? Then
 * its grants (from the page holding @buf) and @buf's offset in that page.
 */
static inline bool in_place(const struct pvio_blkfront_queue *q,
			    const void *buf, uint32_t len,
			    const pvio_gref_t **refs, uint32_t *first)
{
	uintptr_t a = (uintptr_t)buf;
	unsigned int i;

	if (!q->nr_bufs || (a & (PVIO_BLKFRONT_SECTOR - 1)))
		return false;
	for (i = 0; i < q->nr_bufs; i++) {
		const struct bf_buf *b = &q->bufs[i];
		uintptr_t base = (uintptr_t)b->addr;

		if (a >= base && a - base <= b->len && len <= b->len - (a - base)) {
			*refs = b->refs + ((a - base) >> PVIO_PAGE_SHIFT);
			*first = (uint32_t)(a & (PVIO_PAGE_SIZE - 1));
			return true;
		}
	}
	return false;
}

static inline uint32_t slot_take(struct pvio_blkfront_queue *q,
				 struct pvio_blkfront_io *io)
{
	uint32_t id = q->free_ids[--q->nr_free];
	struct bf_slot *s = &q->slots[id];

	s->io = io;
	s->gen++;
	q->busy++;
	return id;
}

static inline void slot_put(struct pvio_blkfront_queue *q, uint32_t id)
{
	struct bf_slot *s = &q->slots[id];

	s->io = NULL;
	s->state = SLOT_FREE;
	q->free_ids[q->nr_free++] = id;
	q->busy--;
}

/* Free the slot first: the callback may prep into it at once. */
static inline void complete(struct pvio_blkfront_queue *q, uint32_t id,
			    int res)
{
	struct pvio_blkfront_io *io = q->slots[id].io;

	slot_put(q, id);
	q->st.completions++;
	io->res = res;
	if (io->done)
		io->done(io, res);
}

/*
 * Trim a discard to whole extents: boundaries lie at discard_align modulo
 * discard_gran. Return false if nothing is left.
 */
static inline bool discard_trim(const struct pvio_blkfront *dev,
				uint64_t *start, uint64_t *end)
{
	uint64_t g = dev->discard_gran, a = dev->discard_align;
	uint64_t s = *start, e = *end;

	if (g > dev->sector_size || a) {
		s += (a + g - s % g) % g;
		e -= (e % g + g - a) % g;
	}
	if (s >= e)
		return false;
	*start = s;
	*end = e;
	return true;
}

/* Segment @i of data starting @first bytes into its first page (a
 * sector multiple), @len bytes in all. */
static inline struct blkif_request_segment seg_of(pvio_gref_t gref,
						  uint32_t i, uint32_t first,
						  uint32_t len)
{
	struct blkif_request_segment seg;
	uint32_t start = i ? 0 : first;
	/* bytes of the request before this page's data */
	uint32_t before = i ? i * PVIO_PAGE_SIZE - first : 0;
	uint32_t n = len - before;

	if (n > PVIO_PAGE_SIZE - start)
		n = PVIO_PAGE_SIZE - start;
	memset(&seg, 0, sizeof(seg));	/* no stale padding into the ring */
	seg.gref = gref;
	seg.first_sect = (uint8_t)(start >> 9);
	seg.last_sect = (uint8_t)(((start + n) >> 9) - 1);
	return seg;
}

static int prep_rw(struct pvio_blkfront_queue *q, struct pvio_blkfront_io *io,
		   union bf_req *r, uint32_t id, uint64_t gid)
{
	struct bf_slot *s = &q->slots[id];
	const pvio_gref_t *refs = s->refs;
	uint32_t len = io->len, first = 0, nsegs, i;
	uint8_t op = io->op == PVIO_BLKFRONT_OP_WRITE ? BLKIF_OP_WRITE
						      : BLKIF_OP_READ;

	s->in_place = in_place(q, io->buf, len, &refs, &first) &&
		      first + len <= q->max_io;
	if (s->in_place) {
		q->st.in_place++;
	} else {
		refs = s->refs;
		first = 0;
		if (op == BLKIF_OP_WRITE)
			memcpy(s->data, io->buf, len);
		q->st.bytes_copied += len;
	}
	nsegs = (first + len + PVIO_PAGE_SIZE - 1) >> PVIO_PAGE_SHIFT;
	s->rsp_op = op;
	if (nsegs <= BF_DIRECT_SEGS) {
		r->rw.operation = op;
		r->rw.nr_segments = (uint8_t)nsegs;
		r->rw.handle = q->handle;
		r->rw.id = gid;
		r->rw.sector_number = io->offset >> 9;
		for (i = 0; i < nsegs; i++)
			r->rw.seg[i] = seg_of(refs[i], i, first, len);
		return 0;
	}
	/* Indirect (Linux: more than 11 grants and the backend offers it).
	 * The segment list goes into this slot's granted indirect pages. */
	r->ind.operation = BLKIF_OP_INDIRECT;
	r->ind.indirect_op = op;
	r->ind.nr_segments = (uint16_t)nsegs;
	r->ind.id = gid;
	r->ind.sector_number = io->offset >> 9;
	r->ind.handle = q->handle;
	for (i = 0; i < nsegs; i++)
		s->ind[i] = seg_of(refs[i], i, first, len);
	for (i = 0; i < (nsegs + BF_SEGS_PER_PAGE - 1) / BF_SEGS_PER_PAGE; i++)
		r->ind.indirect_grefs[i] = s->ind_refs[i];
	q->st.indirect++;
	return 0;
}

int pvio_blkfront_prep(struct pvio_blkfront_queue *q,
		       struct pvio_blkfront_io *io)
{
	struct pvio_blkfront *dev = q->dev;
	uint64_t size, start = io->offset, end;
	uint32_t feat = 0, ss = dev->sector_size, id;
	union bf_req r;
	uint64_t gid;
	int rc;

	rc = bf_dead(dev);
	if (pvio_unlikely(rc))
		return rc;
	if (pvio_unlikely(!q->started || io->rsvd ||
			  (io->flags & ~PVIO_BLKFRONT_IO_SECURE)))
		return -EINVAL;
	switch (io->op) {
	case PVIO_BLKFRONT_OP_READ:
	case PVIO_BLKFRONT_OP_WRITE:
		if (pvio_unlikely(io->flags || io->len == 0 ||
				  io->len > q->max_io ||
				  ((io->offset | io->len) & (ss - 1))))
			return -EINVAL;
		size = __atomic_load_n(&dev->sectors, __ATOMIC_RELAXED) << 9;
		if (pvio_unlikely(io->offset > size ||
				  io->len > size - io->offset))
			return -EINVAL;
		if (pvio_unlikely(io->op == PVIO_BLKFRONT_OP_WRITE &&
				  dev->readonly))
			return -EROFS;
		break;
	case PVIO_BLKFRONT_OP_FLUSH:
		feat = __atomic_load_n(&dev->features, __ATOMIC_RELAXED);
		if (pvio_unlikely(io->flags))
			return -EINVAL;
		if (pvio_unlikely(!(feat & (PVIO_BLKFRONT_FEAT_FLUSH |
					    PVIO_BLKFRONT_FEAT_BARRIER))))
			return -EOPNOTSUPP;
		break;
	case PVIO_BLKFRONT_OP_DISCARD:
		feat = __atomic_load_n(&dev->features, __ATOMIC_RELAXED);
		if (!(feat & PVIO_BLKFRONT_FEAT_DISCARD) ||
		    ((io->flags & PVIO_BLKFRONT_IO_SECURE) &&
		     !(feat & PVIO_BLKFRONT_FEAT_SECURE_DISCARD)))
			return -EOPNOTSUPP;
		if (io->len == 0 || ((io->offset | io->len) & (ss - 1)))
			return -EINVAL;
		size = __atomic_load_n(&dev->sectors, __ATOMIC_RELAXED) << 9;
		if (io->offset > size || io->len > size - io->offset)
			return -EINVAL;
		if (dev->readonly)
			return -EROFS;
		break;
	default:
		return -EINVAL;
	}
	if (pvio_unlikely(q->nr_free == 0))
		return -EAGAIN;

	id = slot_take(q, io);
	gid = (uint64_t)q->slots[id].gen << 32 | id;
	memset(&r, 0, sizeof(r));	/* no stale bytes in the slot */
	switch (io->op) {
	case PVIO_BLKFRONT_OP_READ:
	case PVIO_BLKFRONT_OP_WRITE:
		prep_rw(q, io, &r, id, gid);
		break;
	case PVIO_BLKFRONT_OP_FLUSH:
		/* Linux: an empty FLUSH_DISKCACHE, or an empty WRITE_BARRIER
		 * when that is all the backend offers. */
		r.rw.operation = feat & PVIO_BLKFRONT_FEAT_FLUSH
					 ? BLKIF_OP_FLUSH_DISKCACHE
					 : BLKIF_OP_WRITE_BARRIER;
		r.rw.nr_segments = 0;
		r.rw.handle = q->handle;
		r.rw.id = gid;
		q->slots[id].rsp_op = r.rw.operation;
		break;
	case PVIO_BLKFRONT_OP_DISCARD:
		end = start + io->len;
		if (!discard_trim(dev, &start, &end)) {
			q->slots[id].state = SLOT_LOCAL;
			q->slots[id].local_res = 0;
			q->local[q->nr_local++] = id;
			return 0;
		}
		r.dis.operation = BLKIF_OP_DISCARD;
		r.dis.flag = io->flags & PVIO_BLKFRONT_IO_SECURE
				     ? BLKIF_DISCARD_SECURE : 0;
		r.dis.handle = q->handle;
		r.dis.id = gid;
		r.dis.sector_number = start >> 9;
		r.dis.nr_sectors = (end - start) >> 9;
		q->slots[id].rsp_op = BLKIF_OP_DISCARD;
		break;
	}
	memcpy(pvio_blkif_front_req(&q->ring), &r, sizeof(r));
	pvio_ring_front_req_commit(&q->ring);
	q->slots[id].state = SLOT_PREPPED;
	q->prepped[q->nr_prepped++] = id;
	return 0;
}

int pvio_blkfront_submit(struct pvio_blkfront_queue *q)
{
	uint32_t n = q->nr_prepped, i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++)
		q->slots[q->prepped[i]].state = SLOT_INFLIGHT;
	q->nr_prepped = 0;
	q->st.requests += n;
	q->st.batches++;
	if (pvio_ring_front_push(&q->ring)) {
		int rc = pvio_evtchn_notify(q->plat, q->port);

		q->st.notifies++;
		if (pvio_unlikely(rc < 0))
			return rc;
	}
	return (int)n;
}

int pvio_blkfront_submit_ios(struct pvio_blkfront_queue *q,
			     struct pvio_blkfront_io *const *ios,
			     unsigned int n)
{
	unsigned int i;
	int rc = 0;

	for (i = 0; i < n; i++) {
		rc = pvio_blkfront_prep(q, ios[i]);
		if (rc)
			break;
	}
	if (i > 0) {
		int s = pvio_blkfront_submit(q);

		if (s < 0 && i == n)
			return s;
		return (int)i;
	}
	return rc;
}

/*
 * The device is dead: complete everything of this queue that is not free
 * (-EIO; local completions keep their result). Return the count, or the
 * device's error if there was nothing.
 */
static __attribute__((cold)) int fail_all(struct pvio_blkfront_queue *q)
{
	uint32_t id;
	int n = 0;

	q->nr_prepped = 0;
	q->nr_local = 0;
	for (id = 0; id < q->depth; id++) {
		struct bf_slot *s = &q->slots[id];

		if (s->state == SLOT_FREE)
			continue;
		complete(q, id, s->state == SLOT_LOCAL ? s->local_res : -EIO);
		n++;
	}
	return n ? n : bf_dead(q->dev);
}

static __attribute__((cold)) int bad_response(struct pvio_blkfront_queue *q,
					      const struct blkif_response *rsp,
					      const char *why)
{
	pvio__bf_protocol_error(q->dev, "queue %u: response id %#llx op %u: %s",
				q->idx, (unsigned long long)rsp->id,
				rsp->operation, why);
	return -EPROTO;
}

static inline int response(struct pvio_blkfront_queue *q,
			   const struct blkif_response *rsp)
{
	struct pvio_blkfront *dev = q->dev;
	uint32_t id = (uint32_t)rsp->id, gen = (uint32_t)(rsp->id >> 32);
	uint32_t withdraw = 0;
	struct bf_slot *s;
	int res;

	if (pvio_unlikely(id >= q->depth))
		return bad_response(q, rsp, "unknown id");
	s = &q->slots[id];
	if (pvio_unlikely(s->state != SLOT_INFLIGHT || s->gen != gen))
		return bad_response(q, rsp, "no such request in flight "
					    "(duplicate or stale id)");
	if (pvio_unlikely(rsp->operation != s->rsp_op))
		return bad_response(q, rsp, "operation does not match the "
					    "request's");
	switch (rsp->status) {
	case BLKIF_RSP_OKAY:
		res = 0;
		if (s->rsp_op == BLKIF_OP_READ && !s->in_place)
			memcpy(s->io->buf, s->data, s->io->len);
		break;
	case BLKIF_RSP_EOPNOTSUPP:
		/* Linux withdraws the feature for good. */
		res = -EOPNOTSUPP;
		if (s->rsp_op == BLKIF_OP_FLUSH_DISKCACHE)
			withdraw = PVIO_BLKFRONT_FEAT_FLUSH;
		else if (s->rsp_op == BLKIF_OP_WRITE_BARRIER)
			withdraw = PVIO_BLKFRONT_FEAT_BARRIER;
		else if (s->rsp_op == BLKIF_OP_DISCARD)
			withdraw = PVIO_BLKFRONT_FEAT_DISCARD |
				   PVIO_BLKFRONT_FEAT_SECURE_DISCARD;
		__atomic_and_fetch(&dev->features, ~withdraw, __ATOMIC_RELAXED);
		break;
	default:
		res = -EIO;
		break;
	}
	complete(q, id, res);
	return 0;
}

int pvio_blkfront_reap(struct pvio_blkfront_queue *q, unsigned int max)
{
	struct blkif_response rsp[BF_REAP_BATCH];
	unsigned int want;
	int done = 0, n, i;

	if (pvio_unlikely(bf_dead(q->dev)))
		return fail_all(q);
	while (q->nr_local && (!max || (unsigned int)done < max)) {
		uint32_t id = q->local[--q->nr_local];

		complete(q, id, q->slots[id].local_res);
		done++;
	}
	while (!max || (unsigned int)done < max) {
		want = BF_REAP_BATCH;
		if (max && max - (unsigned int)done < want)
			want = max - (unsigned int)done;
		n = pvio_blkif_front_consume(&q->ring, rsp, want);
		if (pvio_unlikely(n < 0)) {
			pvio__bf_protocol_error(
				q->dev, "queue %u: %s", q->idx,
				pvio_ring_halt_str(
					(enum pvio_ring_halt)q->ring.halted));
			return done + fail_all(q);
		}
		if (n == 0)
			break;
		for (i = 0; i < n; i++) {
			if (pvio_unlikely(response(q, &rsp[i])))
				return done + fail_all(q);
			done++;
		}
	}
	return done;
}

/* Take the queue's pending events (and unmask the port: Xen's evtchn
 * device masks a port once it has reported it). The kick eventfd is never
 * drained: a dead device's fd stays readable. */
static void drain(struct pvio_blkfront_queue *q)
{
	int port;

	while ((port = pvio_evtchn_pending(q->plat)) >= 0)
		pvio_evtchn_unmask(q->plat, (pvio_port_t)port);
}

/* Ask for an event once @ahead more responses are out, and look again.
 * Return 1 if there is work now. */
static int arm(struct pvio_blkfront_queue *q, uint32_t ahead)
{
	if (bf_dead(q->dev) || q->nr_local)
		return 1;
	if (ahead == 0)
		ahead = 1;
	return pvio_ring_front_final_check(&q->ring, ahead) ? 1 : 0;
}

int pvio_blkfront_arm(struct pvio_blkfront_queue *q)
{
	/* Pending events are cleared before the final check, so a
	 * notification raised after this point leaves the fd readable. */
	drain(q);
	return arm(q, 1);
}

/*
 * Adaptive polling: a wait spins for the queue's spin time, or for twice
 * the usual wait from an empty ring to the next response if that is
 * longer, up to BF_POLL_MAX_NS. A remote disk's responses come in bursts
 * tens to hundreds of microseconds apart: a 50 us spin ran out before
 * many, and each sleep then cost a notification, a wake-up and its
 * latency (NBD 128 KiB reads 0.76x of fio with 50 us, 0.85x adaptive:
 * docs/benchmarks.md). A wait longer than the ceiling counts as zero, so
 * a slow disk brings it back down to the spin time. As blk-mq's hybrid
 * polling, for queues that spin at all.
 */
#define BF_POLL_MAX_NS	1000000u

static uint64_t spin_budget(const struct pvio_blkfront_queue *q)
{
	uint64_t b = 2 * q->gap_ns;

	if (b > BF_POLL_MAX_NS)
		b = BF_POLL_MAX_NS;
	return b > q->spin_ns ? b : q->spin_ns;
}

/* ... and no further than a wait's deadline (0: none) */
static uint64_t spin_until(const struct pvio_blkfront_queue *q,
			   uint64_t deadline)
{
	uint64_t b = q->spin_ns ? spin_budget(q) : 0, now;

	if (!b || !deadline)
		return b;
	now = pvio_now_ns();
	if (now >= deadline)
		return 0;
	return b < deadline - now ? b : deadline - now;
}

/* up fast, down slowly: responses come in bursts, and the long waits
 * between bursts are the ones a spin must outlast */
static void gap_note(struct pvio_blkfront_queue *q, uint64_t gap)
{
	uint64_t g = gap <= BF_POLL_MAX_NS ? gap : 0;

	if (g > q->gap_ns)
		q->gap_ns += (g - q->gap_ns) / 2;
	else
		q->gap_ns -= (q->gap_ns - g) / 16;
}

int pvio_blkfront_wait(struct pvio_blkfront_queue *q, unsigned int min,
		       int timeout_ms)
{
	uint64_t deadline = 0, idle_ns = 0;
	struct pvio_spin spin;
	unsigned int total = 0;
	int n;

	if (q->nr_prepped)
		pvio_blkfront_submit(q);
	if (timeout_ms >= 0)
		deadline = pvio_now_ns() + (uint64_t)timeout_ms * 1000000u;
	pvio_spin_init(&spin, spin_until(q, deadline));
	for (;;) {
		struct epoll_event ev;
		int ms = -1;

		n = pvio_blkfront_reap(q, 0);
		if (n < 0)
			return total ? (int)total : n;
		if (n && idle_ns) {
			gap_note(q, pvio_now_ns() - idle_ns);
			idle_ns = 0;
		}
		total += (unsigned int)n;
		if (total >= min || q->busy == 0)
			return (int)total;
		if (n) {	/* a new budget: the gap just seen, the time left */
			pvio_spin_init(&spin, spin_until(q, deadline));
			continue;
		}
		if (spin.budget_ns) {
			if (!idle_ns)
				idle_ns = pvio_now_ns();
			if (pvio_spin_continue(&spin))
				continue;
		}
		/* Woken once the responses we still wait for are out:
		 * fewer notifications when waiting for a batch. */
		if (arm(q, min - total < q->busy ? min - total : q->busy))
			continue;
		if (timeout_ms >= 0) {
			uint64_t now = pvio_now_ns();

			if (now >= deadline)
				return (int)total;
			ms = (int)((deadline - now + 999999) / 1000000);
		}
		/* Events are drained after the sleep, not before: one that
		 * is left over from a busy period only makes this wait
		 * return at once (a spurious round), and none is lost. */
		q->st.sleeps++;
		n = epoll_wait(q->wait.epfd, &ev, 1, ms);
		if (n > 0) {
			drain(q);
		} else if (n == 0 && timeout_ms >= 0 &&
			   pvio_now_ns() >= deadline) {
			n = pvio_blkfront_reap(q, 0);
			return n > 0 ? (int)total + n : (int)total;
		}
	}
}
