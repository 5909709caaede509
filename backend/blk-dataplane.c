// SPDX-License-Identifier: MIT
/*
 * The vbd dataplane: blkif rings -> io_uring -> blkif rings.
 *
 * One pass over a queue (worker thread):
 *   1. take requests (a few at a time, as many as there are free request
 *      structs), each copied out of the ring once; validate the copy;
 *      answer a bad one at once with an error status;
 *   2. grant-copy the indirect pages of indirect requests into private
 *      memory (copy-once, XSA-155) and validate their segments;
 *   3. grant-copy the data of writes into bounce pages;
 *   4. hand each request to the vbd's target (target.h: a file through
 *      io_uring, or a remote image), which reports through blk_req_done().
 * Completions of reads grant-copy the bounce pages to the guest; then every
 * response of the pass is published at once, with one notification if the
 * guest asked for one. Grant operations are batched per pass (one
 * pvio_gnt_copy call, one hypercall on Xen) and checked per segment.
 *
 * Nothing here allocates, locks or logs per request.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "blk.h"

#define TAKE_CHUNK	8
#define PROGRESS_BYTES	(128u << 10)	/* data started between publications */

/* ---- responses ----------------------------------------------------------------- */

static unsigned int slot_of(const struct blk_queue *q, const struct blk_req *r)
{
	return (unsigned int)(r - q->reqs);
}

/* The guest sees @status for @r (published with the pass). */
static void answer(struct blk_queue *q, struct blk_req *r, int16_t status)
{
	struct blkif_response *p = pvio_blkif_back_rsp(&q->ring);

	/* the record names the slot first: a response torn by a crash is
	 * written again, never counted (journal.h) */
	if (q->j)
		jrnl_answer_begin(q->j, slot_of(q, r), q->ring.rsp_prod_pvt);
	/* field by field: no padding of ours reaches shared memory
	 * (docs/protocol.md rule 8) */
	p->id = r->id;
	p->operation = r->op;
	p->status = status;
	pvio_fault("blk-respond");
	pvio_ring_back_rsp_commit(&q->ring);
	if (q->j)
		jrnl_answered(q->j, slot_of(q, r), q->ring.rsp_prod_pvt,
			      status == BLKIF_RSP_OKAY &&
			      (r->kind == BK_WRITE || r->kind == BK_BARRIER));
	q->dirty = true;
	if (status != BLKIF_RSP_OKAY)
		STAT_ADD(&q->dq, errors, 1);
	dp_stat_latency(&q->dq.st, pvio_now_ns() - r->taken_ns);
	if (r == q->barrier)
		q->barrier = NULL;
}

/* The request struct and its pages go back. */
static void release(struct blk_queue *q, struct blk_req *r)
{
	if (r->nseg && r->kind != BK_DISCARD) {
		unsigned int i, n;

		for (n = 0; n < r->nseg && r->pages[n] != UINT32_MAX; n++)
			;
		/* last first: the next request takes them in order, and
		 * pages taken in order are one buffer (target-nbd.c) */
		for (i = n; i--;) {
			if (r->mapped)
				pg_cache_put(&q->pg, r->pages[i]);
			else
				q->free_pages[q->nr_free_pages++] = r->pages[i];
			r->pages[i] = UINT32_MAX;
		}
		r->mapped = false;
	}
	r->next = q->free_reqs;
	q->free_reqs = r;
	q->nr_free++;
	q->inflight--;
	r->answered = false;
}

static void respond(struct blk_queue *q, struct blk_req *r, int16_t status)
{
	answer(q, r, status);
	release(q, r);
}

void blk_req_answer_now(struct blk_queue *q, struct blk_req *r)
{
	if (r->answered)
		return;
	STAT_ADD(&q->dq, err_io, 1);
	answer(q, r, BLKIF_RSP_ERROR);
	r->answered = true;
}

static void fail(struct blk_queue *q, struct blk_req *r, int16_t status,
		 uint64_t *counter)
{
	__atomic_store_n(counter, *counter + 1, __ATOMIC_RELAXED);
	respond(q, r, status);
}

/* ---- submission ------------------------------------------------------------------------ */

static bool has_data(const struct blk_req *r);

/* The request's data buffers as an iovec, for the target. */
static void fill_iov(struct blk_queue *q, struct blk_req *r)
{
	unsigned int i;

	for (i = 0; i < r->nseg; i++) {
		const struct blkif_request_segment *s = &r->seg[i];

		if (r->mapped)	/* straight into or out of the guest's page */
			r->iov[i].iov_base = (char *)pg_cache_addr(&q->pg,
								 r->pages[i]) +
					     s->first_sect * 512u;
		else
			r->iov[i].iov_base = q->pool +
					     (size_t)r->pages[i] * PVIO_PAGE_SIZE;
		r->iov[i].iov_len = (s->last_sect - s->first_sect + 1u) * 512u;
	}
}

static void submit(struct blk_queue *q, struct blk_req *r)
{
	if (has_data(r))
		fill_iov(q, r);
	q->tops->submit(q, r);
}

static bool has_data(const struct blk_req *r)
{
	return (r->kind == BK_READ || r->kind == BK_WRITE ||
		r->kind == BK_BARRIER) && r->nseg;
}

_Static_assert(PG_MAP_MAX >= BLK_MAX_INDIRECT, "a request maps in one call");

/* Every segment from the persistent-grant cache, or none of them. */
static bool map_segs(struct blk_queue *q, struct blk_req *r)
{
	uint32_t grefs[BLK_MAX_INDIRECT];
	unsigned int i;

	for (i = 0; i < r->nseg; i++)
		grefs[i] = r->seg[i].gref;
	if (pg_cache_get(&q->pg, r->nseg, grefs, r->kind == BK_READ,
			 r->pages)) {
		for (i = 0; i < r->nseg; i++)
			r->pages[i] = UINT32_MAX;
		return false;
	}
	r->mapped = true;
	return true;
}

/* Data buffers for every segment: the guest's own pages (persistent
 * grants, mapped) or bounce pages. True if it has them (now or before). */
static bool take_pages(struct blk_queue *q, struct blk_req *r)
{
	unsigned int i;

	if (!has_data(r) || r->pages[0] != UINT32_MAX)
		return true;
	if (q->persistent &&
	    !(r->kind == BK_READ && q->tops->no_map_reads) && map_segs(q, r))
		return true;
	if (q->nr_free_pages < r->nseg)
		return false;
	for (i = 0; i < r->nseg; i++)
		r->pages[i] = q->free_pages[--q->nr_free_pages];
	return true;
}

static void park(struct blk_queue *q, struct blk_req *r)
{
	r->next = NULL;
	*q->parked_tail = r;
	q->parked_tail = &r->next;
	q->nr_parked++;
}

static struct blk_req *unpark_head(struct blk_queue *q)
{
	struct blk_req *r = q->parked;

	q->parked = r->next;
	if (!q->parked)
		q->parked_tail = &q->parked;
	q->nr_parked--;
	return r;
}

/* Requests started together: one grant copy for the data of their writes. */
#define BLK_BATCH_MAX	64u
/* Persistent grants newly mapped per pass at most (pgrant.h: bounded). */
#define BLK_PG_NEW_MAPS	64u

/*
 * Requests with their segments validated and pages taken: grant-copy the
 * data of writes into the bounce pages (one batch), then submit them all.
 */
static void start_batch(struct blk_queue *q, struct blk_req **batch,
			unsigned int n)
{
	struct pvio_gcopy *gc = &q->dq.w->gcopy;
	unsigned int i, k, first[BLK_BATCH_MAX];
	int failed = 0;

	worker_gcopy_begin(q->dq.w, q->domid);
	for (i = 0; i < n; i++) {
		struct blk_req *r = batch[i];

		first[i] = gc->n;
		if ((r->kind != BK_WRITE && r->kind != BK_BARRIER) || r->mapped)
			continue;
		for (k = 0; k < r->nseg; k++) {
			const struct blkif_request_segment *s = &r->seg[k];

			/* room is guaranteed: see the caller's budget */
			pvio_gcopy_from_guest(gc, s->gref, s->first_sect * 512u,
					      (s->last_sect - s->first_sect + 1u) * 512u,
					      q->pool + (size_t)r->pages[k] * PVIO_PAGE_SIZE);
		}
	}
	if (gc->n)
		failed = worker_gcopy_flush(q->dq.w);
	for (i = 0; i < n; i++) {
		struct blk_req *r = batch[i];
		bool ok = true;

		if (failed && !r->mapped &&
		    (r->kind == BK_WRITE || r->kind == BK_BARRIER)) {
			for (k = 0; k < r->nseg; k++)
				if (pvio_gcopy_status(gc, first[i] + k))
					ok = false;
		}
		if (!ok) {	/* docs/protocol.md rule 7: answer, go on */
			fail(q, r, BLKIF_RSP_ERROR, &q->dq.st.err_grant);
			continue;
		}
		if (r->kind == BK_WRITE || r->kind == BK_BARRIER)
			STAT_ADD(&q->dq, bytes_in, r->bytes);
		submit(q, r);
	}
	worker_gcopy_end(q->dq.w);
}

/* Grant copies this many segments at most per batch. */
static unsigned int batch_room(const struct blk_queue *q)
{
	return q->dq.w->gcopy.cap;
}

struct batch {
	struct blk_req *r[BLK_BATCH_MAX];
	unsigned int n, segs;
};

static void batch_add(struct blk_queue *q, struct batch *b, struct blk_req *r)
{
	if (b->n == BLK_BATCH_MAX || b->segs + r->nseg > batch_room(q)) {
		start_batch(q, b->r, b->n);
		b->n = b->segs = 0;
	}
	b->r[b->n++] = r;
	b->segs += r->nseg;
}

/*
 * Parked requests go first, in order. A barrier starts once everything
 * taken before it has been answered, and everything after it waits until
 * it is answered (blkif's WRITE_BARRIER ordering).
 */
static void unpark(struct blk_queue *q)
{
	struct batch b = { .n = 0 };

	while (q->parked && !q->barrier) {
		struct blk_req *r = q->parked;

		/* what this pass took is started before a barrier, or when
		 * pages run out; a target that answers inside its submit
		 * (target-absent.c) gives them back at once, and no
		 * completion would come to call this again: look again */
		if (b.n && (r->kind == BK_BARRIER || !take_pages(q, r))) {
			start_batch(q, b.r, b.n);
			b.n = b.segs = 0;
			continue;
		}
		/* a barrier starts when only parked requests are taken */
		if (r->kind == BK_BARRIER && q->inflight != q->nr_parked)
			break;
		if (!take_pages(q, r))
			break;
		unpark_head(q);
		if (r->kind == BK_BARRIER) {
			if (b.n)
				start_batch(q, b.r, b.n);
			b.n = b.segs = 0;
			q->barrier = r;
			start_batch(q, &r, 1);
			/* still in flight: the rest waits for it (the loop's
			 * test); answered at once (a target that fails it
			 * inside its submit): they go on now, as no completion
			 * will come to call this again */
			continue;
		}
		batch_add(q, &b, r);
	}
	if (b.n)
		start_batch(q, b.r, b.n);
}

/* Newly taken, validated requests: start them, or park them in order. */
static void start_ready(struct blk_queue *q, struct blk_req **list,
			unsigned int n)
{
	struct batch b = { .n = 0 };
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct blk_req *r = list[i];

		if (q->barrier || q->parked || r->kind == BK_BARRIER ||
		    !take_pages(q, r)) {
			park(q, r);
			continue;
		}
		batch_add(q, &b, r);
	}
	if (b.n)
		start_batch(q, b.r, b.n);
	if (q->parked && !q->barrier)
		unpark(q);
}

/* Indirect requests: copy their segment pages in, then validate. */
static void load_indirect(struct blk_queue *q, struct blk_req **list,
			  unsigned int n)
{
	struct pvio_gcopy *gc = &q->dq.w->gcopy;
	unsigned int i, k, first[TAKE_CHUNK];
	int failed = 0;

	worker_gcopy_begin(q->dq.w, q->domid);
	for (i = 0; i < n; i++) {
		struct blk_req *r = list[i];
		size_t left = (size_t)r->nseg * sizeof(r->seg[0]);

		first[i] = gc->n;
		for (k = 0; k < r->nr_indirect; k++) {
			size_t len = left < PVIO_PAGE_SIZE ? left : PVIO_PAGE_SIZE;

			pvio_gcopy_from_guest(gc, r->indirect_grefs[k], 0,
					      (unsigned int)len,
					      (char *)r->seg + k * PVIO_PAGE_SIZE);
			left -= len;
		}
	}
	failed = worker_gcopy_flush(q->dq.w);
	for (i = 0; i < n; i++) {
		struct blk_req *r = list[i];

		for (k = 0; failed && k < r->nr_indirect; k++)
			if (pvio_gcopy_status(gc, first[i] + k)) {
				r->status = BLKIF_RSP_ERROR;
				r->err_counter = &q->dq.st.err_grant;
			}
		/* only now, on our own copy */
		if (r->status == BLKIF_RSP_OKAY)
			r->status = blk_check_segs(q->vbd,
						   __atomic_load_n(&q->sectors,
								   __ATOMIC_RELAXED),
						   r);
	}
	worker_gcopy_end(q->dq.w);
}

/* Parse the private copy @c into @r, counted; r->status says what next. */
static void take_one(struct blk_queue *q, const struct blkif_request *c,
		     struct blk_req *r)
{
	if (pvio_unlikely(!r->pages_set)) {	/* the slot's first use */
		memset(r->pages, 0xff, q->max_segs * sizeof(uint32_t));
		r->pages_set = true;
	}
	r->status = blk_parse(q->vbd, q->max_segs,
			      __atomic_load_n(&q->sectors, __ATOMIC_RELAXED),
			      c, r);
	r->err_counter = &q->dq.st.err_bad_req;
	STAT_ADD(&q->dq, req[blk_op_stat(c->operation)], 1);
	if (r->status == BLKIF_RSP_EOPNOTSUPP)
		r->err_counter = &q->dq.st.err_unsupp;
}

/*
 * Requests just taken (parsed; @ind: the indirect ones among them): load
 * indirect pages, answer the bad ones, start or park the rest in order.
 */
static void limits_charge_bytes(struct blk_queue *q, uint64_t bytes);

static void run_taken(struct blk_queue *q, struct blk_req **ready,
		      unsigned int nr, struct blk_req **ind, unsigned int ni)
{
	unsigned int i, j;

	if (ni) {
		load_indirect(q, ind, ni);
		/* their size is known only now (limits_charge: counted as
		 * requests when taken) */
		for (i = 0; i < ni; i++)
			if (ind[i]->status == BLKIF_RSP_OKAY)
				limits_charge_bytes(q, ind[i]->bytes);
	}
	/* answer the bad ones now; start or park the rest, in order */
	for (i = 0, j = 0; i < nr; i++) {
		struct blk_req *r = ready[i];

		if (r->status != BLKIF_RSP_OKAY)
			fail(q, r, r->status, r->err_counter);
		else
			ready[j++] = r;
	}
	/* start them in groups of about PROGRESS_BYTES and publish what is
	 * done after each: cached reads complete inside the submit, and a
	 * guest waiting on big ones must not wait for the whole chunk (or
	 * fall asleep meanwhile) */
	for (i = 0; i < j;) {
		uint64_t bytes = ready[i]->bytes;
		unsigned int k = i + 1;

		while (k < j && bytes + ready[k]->bytes <= PROGRESS_BYTES)
			bytes += ready[k++]->bytes;
		start_ready(q, ready + i, k - i);
		/* re-enters the worker loop: completions and every queue's
		 * flush() run here (worker_progress) */
		worker_progress(q->dq.w);
		i = k;
	}
	if (!j)	/* as above: completions and flush() run here */
		worker_progress(q->dq.w);
}

/*
 * After a crash: the requests the last process took and did not answer,
 * in the order it took them, before anything new. Those whose I/O had
 * completed (writes, flushes, discards) are answered with the status it
 * had; the others run again: reads and writes are idempotent (the same
 * data to the same place: the guest keeps its pages until answered), a
 * flush is. A discard runs again only if no write was answered since it
 * was taken (it could erase that write); otherwise it is answered
 * without running: a discarded range's contents are undefined anyway.
 */
static void replay(struct blk_queue *q)
{
	struct blk_req *ready[TAKE_CHUNK], *ind[TAKE_CHUNK];
	unsigned int i = 0, nr, ni, redone = 0, answered = 0;

	while (i < q->nr_replay) {
		for (nr = ni = 0; nr < TAKE_CHUNK && i < q->nr_replay; i++) {
			unsigned int s = q->replay[i];
			struct blk_req *r = &q->reqs[s];
			const struct jrnl_ent *e = &q->j->ent[s];
			struct blkif_request c;

			memcpy(&c, e->req, sizeof(c));
			q->inflight++;
			r->taken_ns = pvio_now_ns();
			take_one(q, &c, r);
			if ((e->state & JE_COMPLETE) ||
			    (r->status == BLKIF_RSP_OKAY && r->kind == BK_DISCARD &&
			     (int32_t)(e->seq - q->j->h->write_ack_seq) <= 0)) {
				respond(q, r, (e->state & JE_COMPLETE) ? e->status
								       : BLKIF_RSP_OKAY);
				answered++;
				continue;
			}
			if (r->status == BLKIF_RSP_OKAY && r->indirect)
				ind[ni++] = r;
			ready[nr++] = r;
			redone++;
		}
		run_taken(q, ready, nr, ind, ni);
	}
	log_info("%s: queue %u: %u requests in flight at the crash: %u run again, %u answered as completed",
		 q->dq.dev->path, q->dq.index, q->nr_replay, redone, answered);
	q->nr_replay = 0;
}

/* ---- limits --------------------------------------------------------------------- */

/*
 * Refill the queue's buckets; false (and the worker's wake-up set) if it
 * must wait. Requests are not taken meanwhile: they wait in the ring, and
 * the guest sees its queue fill up, as with a slow disk (nothing dropped).
 */
static bool limits_allow(struct blk_queue *q, unsigned int *budget)
{
	struct vbd *v = q->vbd;
	unsigned int nq = __atomic_load_n(&v->nr_queues, __ATOMIC_RELAXED);
	uint64_t iops = __atomic_load_n(&v->iops_limit, __ATOMIC_RELAXED);
	uint64_t bytes = __atomic_load_n(&v->bytes_limit, __ATOMIC_RELAXED);
	uint64_t now, wait, w2;

	if (nq > 1) {	/* each queue its share */
		iops = iops ? (iops + nq - 1) / nq : 0;
		bytes = bytes ? (bytes + nq - 1) / nq : 0;
	}
	if (!iops && !bytes && !q->lim_iops.rate && !q->lim_bytes.rate) {
		q->dq.limit_until_ns = 0;
		return true;
	}
	now = pvio_now_ns();
	bucket_refill(&q->lim_iops, iops, q->lim_ns ? now - q->lim_ns : 0, 1);
	bucket_refill(&q->lim_bytes, bytes, q->lim_ns ? now - q->lim_ns : 0, 4096);
	q->lim_ns = now;
	wait = bucket_wait_ns(&q->lim_iops);
	w2 = bucket_wait_ns(&q->lim_bytes);
	if (w2 > wait)
		wait = w2;
	if (wait) {
		q->dq.limit_until_ns = now + wait;
		return false;
	}
	q->dq.limit_until_ns = 0;
	if (q->lim_iops.rate) {
		/* whole requests the balance covers, at least one */
		uint64_t n = (uint64_t)(q->lim_iops.tokens + 999) / 1000;

		if (n < *budget)
			*budget = (unsigned int)n;
	}
	return true;
}

static void limits_charge_bytes(struct blk_queue *q, uint64_t bytes)
{
	bucket_charge(&q->lim_bytes, bytes);
}

/*
 * A request taken: one of the IOPS, and its bytes (an indirect one's are
 * charged once its segments are read: run_taken). A discard moves no data:
 * one sector, as Linux's blk-throttle counts it (its whole range made a
 * mkfs or fstrim wait minutes).
 */
static void limits_charge(struct blk_queue *q, const struct blk_req *r)
{
	bucket_charge(&q->lim_iops, 1);
	if (r->status == BLKIF_RSP_OKAY)
		limits_charge_bytes(q, r->kind == BK_DISCARD ? 512 : r->bytes);
}

static int blk_process(struct dp_queue *dq)
{
	struct blk_queue *q = BQ(dq);
	struct blkif_request c[TAKE_CHUNK];
	struct blk_req *ready[TAKE_CHUNK], *ind[TAKE_CHUNK];
	unsigned int total = 0, budget;
	uint64_t now;
	int n, i;

	if (pvio_unlikely(__atomic_load_n(&q->retarget, __ATOMIC_ACQUIRE)) &&
	    !q->quiesced) {
		/* the target came back (blk_queue_retarget()); a queue
		 * stopping keeps the absent one, whose quiesce it had */
		__atomic_store_n(&q->retarget, false, __ATOMIC_RELAXED);
		q->tops = q->vbd->tops;
		q->dq.no_spin = q->tops->no_spin;
		q->files_done = false;
	}
	if (!q->files_done) {	/* from the worker: its ring, its thread */
		q->tops->queue_start(q);
		q->files_done = true;
		if (dq->halted)	/* it could not start: nothing is taken */
			return 0;
	}
	if (q->tops->poll)
		q->tops->poll(q);
	if (q->quiesced)
		return 0;
	if (q->persistent)
		pg_cache_pass(&q->pg, BLK_PG_NEW_MAPS);
	if (pvio_unlikely(q->nr_replay))
		replay(q);
	/* bounded work per pass and by free request structs
	 * (docs/protocol.md rule 3); a
	 * full parking lot stops taking until pages come back */
	budget = q->nr_reqs < dq->budget ? q->nr_reqs : dq->budget;
	if (!limits_allow(q, &budget))
		return 0;
	while (total < budget && q->nr_free && !q->parked) {
		unsigned int want = q->nr_free < TAKE_CHUNK ? q->nr_free : TAKE_CHUNK;
		unsigned int nr = 0, ni = 0;

		if (want > budget - total)
			want = budget - total;
		/* under a bytes limit one at a time, each only while the
		 * balance is positive: none goes over by more than a request
		 * (a chunk of 32 indirect requests is 4 MiB) */
		if (q->lim_bytes.rate)
			want = 1;
		n = pvio_blkif_back_consume(&q->ring, c, want);
		if (n < 0) {
			dp_queue_halt(dq, n, "broke the ring protocol: %s",
				      pvio_ring_halt_str(q->ring.halted));
			break;
		}
		if (n == 0)
			break;
		/* the copies go to the record, then the consumed index:
		 * before anything is answered or started */
		if (q->j) {
			struct blk_req *r = q->free_reqs;
			uint32_t at = q->ring.req_cons - (uint32_t)n;

			for (i = 0; i < n; i++, r = r->next)
				jrnl_take(q->j, slot_of(q, r), at + (uint32_t)i,
					  &c[i], sizeof(c[i]), 0);
			jrnl_consumed(q->j, q->ring.req_cons);
		}
		now = pvio_now_ns();
		for (i = 0; i < n; i++) {
			struct blk_req *r = q->free_reqs;

			q->free_reqs = r->next;
			q->nr_free--;
			q->inflight++;
			r->taken_ns = now;
			take_one(q, &c[i], r);
			limits_charge(q, r);
			if (r->status == BLKIF_RSP_OKAY && r->indirect)
				ind[ni++] = r;
			ready[nr++] = r;
		}
		run_taken(q, ready, nr, ind, ni);
		total += (unsigned int)n;
		if (q->lim_bytes.rate && q->lim_bytes.tokens <= 0)
			break;	/* the next pass looks at the balance */
	}
	if (total) {
		dp_stat_batch(&dq->st, total);
		STAT_MAX(dq, inflight_max, q->inflight);
		if (q->persistent) {
			__atomic_store_n(&dq->st.pg_hits, q->pg.hits, __ATOMIC_RELAXED);
			__atomic_store_n(&dq->st.pg_maps, q->pg.maps, __ATOMIC_RELAXED);
			__atomic_store_n(&dq->st.pg_refused, q->pg.refused,
					 __ATOMIC_RELAXED);
		}
	}
	return (int)total;
}

/*
 * A halted queue (its guest broke the ring, or died) takes nothing more,
 * but its target's timers still run: a remote target answers what it
 * holds within --remote-timeout, or at once what waits for a server, so
 * the queue drains and the device goes, with its ring, grants and lock.
 */
static void blk_halted(struct dp_queue *dq)
{
	struct blk_queue *q = BQ(dq);

	if (q->files_done && q->tops->poll)
		q->tops->poll(q);
}

/* ---- completions ------------------------------------------------------------------- */

void blk_req_done(struct blk_queue *q, struct blk_req *r, int res)
{
	struct dp_queue *dq = &q->dq;

	pvio_fault("blk-complete");
	r->pending--;
	if (pvio_unlikely(r->answered)) {
		/* answered already (blk_req_answer_now): only its buffers
		 * were still the target's */
		if (!r->pending)
			release(q, r);
		return;
	}
	if (res < 0 && r->status == BLKIF_RSP_OKAY) {
		if (q->tops->retry && q->tops->retry(q, r, res))
			return;
		/* (a link cut short by an earlier failure is -ECANCELED,
		 * and that failure has set the status already) */
		if (res == -EOPNOTSUPP) {
			r->status = BLKIF_RSP_EOPNOTSUPP;
			STAT_ADD(dq, err_unsupp, 1);
			/* docs/protocol.md rule 10: the feature goes (main
			 * thread) */
			if (r->kind == BK_FLUSH || r->kind == BK_BARRIER)
				__atomic_store_n(&q->vbd->flush_unsupported, 1,
						 __ATOMIC_RELAXED);
			else if (r->kind == BK_DISCARD)
				__atomic_store_n(&q->vbd->discard_unsupported,
						 1, __ATOMIC_RELAXED);
		} else {
			r->status = BLKIF_RSP_ERROR;
			STAT_ADD(dq, err_io, 1);
		}
	} else if ((r->kind == BK_READ || r->kind == BK_WRITE) &&
		   (uint64_t)res != r->bytes) {
		r->status = BLKIF_RSP_ERROR;	/* short: past the end */
		STAT_ADD(dq, err_io, 1);
	}
	if (r->pending)
		return;
	/* done: a write, flush or discard must not run again after a crash
	 * (a read must: its data may not have reached the guest yet) */
	if (q->j && r->kind != BK_READ)
		jrnl_complete(q->j, slot_of(q, r), r->status);
	if (r->kind == BK_READ && r->status == BLKIF_RSP_OKAY && r->mapped) {
		STAT_ADD(dq, bytes_out, r->bytes);	/* already in place */
		respond(q, r, BLKIF_RSP_OKAY);
		return;
	}
	if (r->kind == BK_READ && r->status == BLKIF_RSP_OKAY) {
		/* copied to the guest in flush(), with the others */
		r->next = q->reads_done;
		q->reads_done = r;
		return;
	}
	respond(q, r, r->status);
}

static void blk_complete(struct dp_queue *dq, struct dp_tag *tag, int res)
{
	struct blk_queue *q = BQ(dq);

	if (pvio_unlikely(tag->kind == BLK_TAG_TARGET)) {
		q->tops->event(q, tag, res);
		return;
	}
	blk_req_done(q, tag->ptr, res);
}

/* Reads done in this pass: one batch of copies to the guest. */
static void finish_reads(struct blk_queue *q)
{
	struct pvio_gcopy *gc = &q->dq.w->gcopy;
	struct blk_req *r, *list = q->reads_done, *next;
	int failed;

	while (list) {
		struct blk_req *batch = NULL, **tail = &batch;
		unsigned int k;

		worker_gcopy_begin(q->dq.w, q->domid);
		while (list && gc->n + list->nseg <= gc->cap) {
			r = list;
			list = r->next;
			r->gidx = gc->n;
			for (k = 0; k < r->nseg; k++) {
				const struct blkif_request_segment *s = &r->seg[k];

				pvio_gcopy_to_guest(gc, s->gref, s->first_sect * 512u,
						    (s->last_sect - s->first_sect + 1u) * 512u,
						    q->pool + (size_t)r->pages[k] * PVIO_PAGE_SIZE);
			}
			r->next = NULL;
			*tail = r;
			tail = &r->next;
		}
		failed = worker_gcopy_flush(q->dq.w);
		for (r = batch; r; r = next) {
			int16_t st = BLKIF_RSP_OKAY;

			next = r->next;
			for (k = 0; failed && k < r->nseg; k++)
				if (pvio_gcopy_status(gc, r->gidx + k))
					st = BLKIF_RSP_ERROR;
			if (st == BLKIF_RSP_OKAY)
				STAT_ADD(&q->dq, bytes_out, r->bytes);
			else
				STAT_ADD(&q->dq, err_grant, 1);
			respond(q, r, st);
		}
	}
	q->reads_done = NULL;
	worker_gcopy_end(q->dq.w);
}

static void blk_flush(struct dp_queue *dq)
{
	struct blk_queue *q = BQ(dq);

	if (q->reads_done)
		finish_reads(q);
	if (q->parked && !q->quiesced)
		unpark(q);
	if (q->dirty || pvio_unlikely(q->kick_guest)) {
		q->dirty = false;
		/* re-attached after a crash: the last process may have
		 * published without sending what it owed; one spurious
		 * event is harmless */
		if (pvio_ring_back_push(&q->ring) || q->kick_guest)
			dp_queue_notify(dq, 0);
		q->kick_guest = false;
	}
	__atomic_store_n(&dq->st.inflight, q->inflight, __ATOMIC_RELAXED);
}

static bool blk_final_check(struct dp_queue *dq)
{
	struct blk_queue *q = BQ(dq);

	if (q->quiesced || !q->nr_free || q->parked)
		return false;	/* a completion will wake us */
	if (dq->limit_until_ns)
		return false;	/* the worker wakes at the limit's time */
	return pvio_ring_back_final_check(&q->ring, 1);
}

static bool blk_busy(const struct dp_queue *dq)
{
	const struct blk_queue *q = (const struct blk_queue *)dq;

	return q->inflight != 0 || (q->tops->busy && q->tops->busy(q));
}

static void blk_quiesce(struct dp_queue *dq)
{
	struct blk_queue *q = BQ(dq);

	/* Take nothing new. Requests already taken are finished (also the
	 * parked ones, which still get their pages as others complete). */
	q->quiesced = true;
	if (q->parked)
		unpark(q);
	if (q->tops->quiesce)
		q->tops->quiesce(q);
}

static void blk_free_dq(struct dp_queue *dq)
{
	blk_queue_free(BQ(dq));
}

static const struct dp_queue_ops blk_queue_ops = {
	.process = blk_process,
	.complete = blk_complete,
	.flush = blk_flush,
	.final_check = blk_final_check,
	.halted = blk_halted,
	.busy = blk_busy,
	.quiesce = blk_quiesce,
	.free = blk_free_dq,
};

/* ---- set-up ----------------------------------------------------------------------- */

/*
 * The queue's in-flight record. Re-attaching, a valid record puts the
 * ring where the last process left it: consumed up to its req_cons,
 * responses written up to its rsp_prod_pvt (published at the first
 * flush, with a notification), its unanswered requests to replay first.
 * A record refused is logged and replaced: the live indices, as before.
 */
static int blk_journal_open(struct blk_queue *q, struct device *d,
			    const pvio_gref_t *refs, pvio_port_t port,
			    bool reattach)
{
	struct pvio_ring_back *ring = &q->ring;
	uint32_t req_prod = __atomic_load_n(&ring->sring->req_prod,
					    __ATOMIC_ACQUIRE);
	struct jrnl_ident id;
	const char *why = NULL;
	bool kept;
	unsigned int i;
	int rc;

	memset(&id, 0, sizeof(id));
	snprintf(id.kind, sizeof(id.kind), "vbd");
	id.domid = d->fe;
	id.devid = d->devid;
	id.queue = q->dq.index;
	id.nr_pages = q->ring_pages;
	for (i = 0; i < q->ring_pages; i++)
		id.refs[i] = refs[i];
	id.port = port;
	id.nr_ents = q->nr_reqs;
	id.req_size = sizeof(struct blkif_request);
	rc = jrnl_open(d->bd->o.journal_dir, &id, reattach, ring->rsp_pushed,
		       &q->j, &kept);
	if (rc) {
		log_warn("%s: cannot create the in-flight record in %s: %s",
			 d->path, d->bd->o.journal_dir, strerror(-rc));
		return rc;
	}
	if (!kept)
		return 0;
	q->replay = malloc(q->nr_reqs * sizeof(*q->replay));
	if (!q->replay)
		return -ENOMEM;
	rc = jrnl_recover(q->j, req_prod, ring->rsp_pushed, q->replay,
			  &q->nr_replay, &why);
	if (rc) {
		log_warn("%s: refusing the in-flight record %s: %s; attaching at the live ring indices",
			 d->path, q->j->path, why);
		jrnl_reset(q->j, ring->rsp_pushed);
		q->nr_replay = 0;
		return 0;
	}
	/* where the last process was, not where the guest saw it */
	ring->req_cons = ring->req_snap = q->j->h->req_cons;
	ring->rsp_prod_pvt = q->j->h->rsp_prod_pvt;
	/* the replayed requests hold their structs */
	q->free_reqs = NULL;
	q->nr_free = 0;
	for (i = q->nr_reqs; i-- > 0;) {
		if (q->j->ent[i].state & JE_INFLIGHT)
			continue;
		q->reqs[i].next = q->free_reqs;
		q->free_reqs = &q->reqs[i];
		q->nr_free++;
	}
	q->kick_guest = true;
	log_info("%s: queue %u: in-flight record kept: %u requests to run again, %u responses to publish",
		 d->path, q->dq.index, q->nr_replay,
		 ring->rsp_prod_pvt - ring->rsp_pushed);
	return 0;
}

int blk_queue_create(struct device *d, struct vbd *v, struct worker *w,
		     unsigned int index, const pvio_gref_t *refs,
		     unsigned int nr_pages, pvio_port_t port, bool persistent,
		     bool reattach, struct blk_queue **out)
{
	struct blk_queue *q = calloc(1, sizeof(*q));
	size_t pool_bytes;
	uint32_t i, n;
	int rc;

	if (!q) {
		worker_unplace(w);
		return -ENOMEM;
	}
	q->slot_direct = q->slot_buffered = -1;
	q->dq.ops = &blk_queue_ops;
	q->dq.dev = d;
	q->dq.w = w;
	q->dq.index = index;
	q->vbd = v;
	q->tops = v->tops;
	q->dq.no_spin = v->tops->no_spin;
	q->domid = d->fe;
	q->sectors = v->size_bytes / 512u;
	q->parked_tail = &q->parked;
	q->max_segs = v->max_indirect > BLK_MAX_DIRECT ? v->max_indirect
						       : BLK_MAX_DIRECT;

	rc = pvio_gnt_map(w->plat, d->fe, nr_pages, refs, true, &q->ring_mem);
	if (rc)
		goto fail;
	q->ring_pages = nr_pages;
	rc = pvio_blkif_back_attach(&q->ring, q->ring_mem, nr_pages);
	if (rc) {
		rc = -EPROTO;	/* inconsistent indices: a hostile ring */
		goto fail;
	}
	n = q->ring.nr_ents;
	q->nr_reqs = q->nr_free = n;
	q->reqs = calloc(n, sizeof(*q->reqs));
	if (!q->reqs) {
		rc = -ENOMEM;
		goto fail;
	}
	/* segments, iovecs and page indices of every slot, sized for a
	 * maximal indirect request each (224 KiB for 32 slots of 256):
	 * one lazily backed block, a slot's pages touched when it is
	 * first used and as far as its requests reach (take_one()) */
	q->req_mem_bytes = blk_req_mem_bytes(n, q->max_segs);
	q->req_mem = lazy_zalloc(q->req_mem_bytes);
	if (!q->req_mem) {
		rc = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < n; i++) {
		struct blk_req *r = &q->reqs[i];
		size_t k = (size_t)i * q->max_segs;

		r->seg = (struct blkif_request_segment *)q->req_mem + k;
		r->iov = (struct iovec *)((char *)q->req_mem +
			 (size_t)n * q->max_segs * sizeof(*r->seg)) + k;
		r->pages = (uint32_t *)((char *)q->req_mem +
			   (size_t)n * q->max_segs *
			   (sizeof(*r->seg) + sizeof(*r->iov))) + k;
		r->tag.q = &q->dq;
		r->tag.ptr = r;
		r->next = i + 1 < n ? &q->reqs[i + 1] : NULL;
	}
	q->free_reqs = &q->reqs[0];
	/* a restart: what the last process published may be owed an event */
	q->kick_guest = reattach;
	if (d->bd->o.journal_dir) {
		rc = blk_journal_open(q, d, refs, port, reattach);
		if (rc)
			goto fail;
	}

	/* bounce pages: enough for every slot's direct request, at most
	 * BLK_POOL_MAX_PAGES; untouched pages cost nothing */
	q->pool_pages = n * BLK_MAX_DIRECT;
	if (q->pool_pages < q->max_segs * 2)
		q->pool_pages = q->max_segs * 2;
	if (q->pool_pages > BLK_POOL_MAX_PAGES)
		q->pool_pages = BLK_POOL_MAX_PAGES;
	pool_bytes = (size_t)q->pool_pages * PVIO_PAGE_SIZE;
	q->pool = mmap(NULL, pool_bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	q->free_pages = malloc(q->pool_pages * sizeof(uint32_t));
	if (q->pool == MAP_FAILED || !q->free_pages) {
		if (q->pool == MAP_FAILED)
			q->pool = NULL;
		rc = -ENOMEM;
		goto fail;
	}
	/* LIFO: the same few pages stay warm */
	for (i = 0; i < q->pool_pages; i++)
		q->free_pages[i] = q->pool_pages - 1 - i;
	q->nr_free_pages = q->pool_pages;

	if (persistent) {
		rc = pg_cache_init(&q->pg, w->plat, d->fe, d->bd->o.pgrant_max);
		if (rc)
			goto fail;
		q->persistent = true;
	}
	rc = pvio_evtchn_bind(w->plat, d->fe, port);
	if (rc < 0)
		goto fail;
	q->dq.ports[0] = (pvio_port_t)rc;
	q->dq.nr_ports = 1;
	*out = q;
	return 0;
fail:
	blk_queue_free(q);
	return rc;
}

void blk_queue_free(struct blk_queue *q)
{
	/* SIGTERM, drained: the port, the grants and the mappings are left
	 * to the process's exit, which releases them at once
	 * (docs/architecture.md, "Stop and drain") */
	bool exiting = q && q->dq.w->bd->exit_fast;

	if (!q)
		return;
	/* drained: the record goes; with requests still owed (a queue
	 * stopped before it ran its replay) it stays for the next start */
	if (q->j)
		jrnl_close(q->j, !q->nr_replay &&
				 q->j->h->req_cons == q->j->h->rsp_prod_pvt,
			   !exiting);
	free(q->replay);
	if (!exiting) {
		if (q->dq.nr_ports)
			pvio_evtchn_close(q->dq.w->plat, q->dq.ports[0]);
		if (q->ring_mem)
			pvio_gnt_unmap(q->dq.w->plat, q->ring_mem, q->ring_pages);
		if (q->persistent)
			pg_cache_destroy(&q->pg);
		if (q->pool)
			munmap(q->pool, (size_t)q->pool_pages * PVIO_PAGE_SIZE);
		lazy_free(q->req_mem, q->req_mem_bytes);
	}
	free(q->free_pages);
	free(q->reqs);
	worker_unplace(q->dq.w);
	free(q);
}

void blk_queue_retarget(struct blk_queue *q)
{
	__atomic_store_n(&q->retarget, true, __ATOMIC_RELEASE);
}

void blk_queue_resize(struct blk_queue *q, uint64_t sectors)
{
	__atomic_store_n(&q->sectors, sectors, __ATOMIC_RELAXED);
}
