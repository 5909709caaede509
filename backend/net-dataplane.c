// SPDX-License-Identifier: MIT
/*
 * The vif dataplane: netif tx ring -> TAP, TAP -> netif rx ring, through
 * io_uring (many packets per submission) and grant copy (one batch per
 * pass), with one notification per batch each way.
 *
 * TX (guest to host): a packet is a first slot carrying the total size,
 * extra-info slots after it (GSO), more_data slots after those. Each
 * packet's slots are copied out once and validated as Linux netback does:
 * what netback treats as fatal halts the ring (the device is
 * disconnected), what it drops is answered with errors. One response per
 * slot, NETIF_RSP_NULL for extra-info slots.
 *
 * RX (host to guest): NET_RX_BUFS reads are posted on the TAP; a packet
 * read waits (bounded by the number of buffers: XSA-392) until the guest
 * has posted enough rx requests, is copied into them slot by slot (its GSO
 * extra after the first data slot), and answered in ring order. A guest
 * that stops posting buffers for longer than the drain time loses the
 * waiting packets, not our memory.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "net.h"

enum { TAG_TX = 1, TAG_RX, TAG_CANCEL };

#define TX_BATCH	16	/* packets per grant-copy batch */
#define RX_BATCH	16

/* ---- tx: guest -> TAP ------------------------------------------------------------ */

/* The record's entry of the slot consumed at ring index @idx. */
static unsigned int ent_of(const struct pvio_ring_back *r, uint32_t idx)
{
	return idx & (r->nr_ents - 1);
}

/* Answer the slot consumed at ring index @cons (the record's entry). */
static void tx_rsp(struct net_queue *q, uint32_t cons, uint16_t id,
		   int16_t status)
{
	struct netif_tx_response *r = pvio_netif_tx_back_rsp(&q->tx);

	if (q->jtx)
		jrnl_answer_begin(q->jtx, ent_of(&q->tx, cons),
				  q->tx.rsp_prod_pvt);
	r->id = id;
	r->status = status;
	pvio_fault("net-tx-respond");
	pvio_ring_back_rsp_commit(&q->tx);
	if (q->jtx)
		jrnl_answered(q->jtx, ent_of(&q->tx, cons), q->tx.rsp_prod_pvt,
			      false);
	q->tx_dirty = true;
}

/* In ring order: the first slot, its extra-info slots, the others. */
static void tx_answer(struct net_queue *q, const struct tx_pkt *p,
		      int16_t status)
{
	uint32_t at = p->cons;
	unsigned int i;

	tx_rsp(q, at++, p->slot[0].id, status);
	for (i = 0; i < p->nextra; i++)
		tx_rsp(q, at++, 0, NETIF_RSP_NULL);
	for (i = 1; i < p->nslots; i++)
		tx_rsp(q, at++, p->slot[i].id, status);
}

/* A packet taken: its slots' ids go to the record (extra-info slots
 * tagged), then the consumed index. */
static void tx_journal(struct net_queue *q, struct tx_pkt *p)
{
	struct netif_tx_request none = { 0 };
	uint32_t n = p->nslots + p->nextra, at;
	unsigned int i;

	at = q->tx.req_cons - n;
	p->cons = at;
	if (!q->jtx)
		return;
	jrnl_take(q->jtx, ent_of(&q->tx, at), at, &p->slot[0],
		  sizeof(p->slot[0]), 0);
	at++;
	for (i = 0; i < p->nextra; i++, at++)
		jrnl_take(q->jtx, ent_of(&q->tx, at), at, &none, sizeof(none), 1);
	for (i = 1; i < p->nslots; i++, at++)
		jrnl_take(q->jtx, ent_of(&q->tx, at), at, &p->slot[i],
			  sizeof(p->slot[i]), 0);
	jrnl_consumed(q->jtx, q->tx.req_cons);
}

static void tx_drop(struct net_queue *q, const struct tx_pkt *p, int why)
{
	STAT_ADD(&q->dq, drops[why], 1);
	STAT_ADD(&q->dq, errors, 1);
	tx_answer(q, p, NETIF_RSP_ERROR);
}

struct tx_job {
	struct tx_pkt p;
	struct net_buf *b;
};

static void tx_publish(struct net_queue *q)
{
	if (!q->tx_dirty)
		return;
	q->tx_dirty = false;
	if (pvio_ring_back_push(&q->tx))
		dp_queue_notify(&q->dq, 0);
}

/*
 * The TAP's reader takes no offloads (vif->tap_no_offload): finish the
 * checksum here; GSO was not offered, a guest that sends it anyway loses
 * the packet. Return 0 or -1 to drop it.
 */
static int tx_no_offload(char *frame, size_t len, struct virtio_net_hdr *vh)
{
	if (vh->gso_type != VIRTIO_NET_HDR_GSO_NONE)
		return -1;
	if ((vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    pvio_net_csum_fill(frame, len))
		return -1;
	vh->flags = 0;
	return 0;
}

static void tx_submit(struct net_queue *q, struct tx_job *jobs, unsigned int n)
{
	struct pvio_gcopy *gc = &q->dq.w->gcopy;
	unsigned int i, k, queued = 0;
	int failed = 0;

	if (gc->n)
		failed = worker_gcopy_flush(q->dq.w);
	for (i = 0; i < n; i++) {
		struct tx_job *j = &jobs[i];
		struct net_buf *b = j->b;
		struct pvio_net_offload o = { 0 };
		char *frame = b->data + NET_VNET_HDR;
		bool ok = true;

		for (k = 0; failed && k < b->nsegs; k++)
			if (pvio_gcopy_status(gc, b->gidx + k))
				ok = false;
		if (!ok) {
			tx_drop(q, &j->p, DROP_GRANT);
			STAT_ADD(&q->dq, err_grant, 1);
			goto free_buf;
		}
		o.csum_blank = j->p.slot[0].flags & NETTXF_csum_blank;
		o.data_validated = j->p.slot[0].flags & NETTXF_data_validated;
		if (j->p.has_gso) {
			o.gso_type = j->p.gso.u.gso.type;
			o.gso_size = j->p.gso.u.gso.size;
		}
		if (pvio_net_to_vnet(frame, b->len - NET_VNET_HDR, &o,
				     (struct virtio_net_hdr *)b->data)) {
			/* offloads that do not fit the packet: dropped, the
			 * slots answered OKAY as netback does */
			STAT_ADD(&q->dq, drops[DROP_MALFORMED], 1);
			tx_answer(q, &j->p, NETIF_RSP_OKAY);
			goto free_buf;
		}
		if (q->vif->tap_no_offload &&
		    tx_no_offload(frame, b->len - NET_VNET_HDR,
				  (struct virtio_net_hdr *)b->data)) {
			STAT_ADD(&q->dq, drops[DROP_MALFORMED], 1);
			tx_answer(q, &j->p, NETIF_RSP_OKAY);
			goto free_buf;
		}
		tx_answer(q, &j->p, NETIF_RSP_OKAY);
		STAT_ADD(&q->dq, req[0], 1);
		STAT_ADD(&q->dq, bytes_in, b->len - NET_VNET_HDR);
		{
			struct io_uring_sqe *sqe = worker_sqe(q->dq.w);

			io_uring_prep_write(sqe, q->tap_fd, b->data, b->len, 0);
			dp_sqe_file(sqe, q->tap_slot);
			dp_sqe_own(&q->dq, sqe, &b->tag);
			q->tx_writing++;
			queued++;
		}
		continue;
free_buf:
		b->next = q->tx_free;
		q->tx_free = b;
		q->nr_tx_free++;
	}
	worker_gcopy_end(q->dq.w);
	/* The data is ours now: give the guest its slots back batch by
	 * batch, and write the batch into the TAP now, not at the end of a
	 * long pass: a sender with a full ring sees its slots come back
	 * while we work, instead of waiting for (or falling asleep during)
	 * a pass's worth of TAP writes. */
	tx_publish(q);
	if (queued)
		io_uring_submit(&q->dq.w->ring);
}

/* ---- tx credit: xen-netback's scheduler --------------------------------------- */

/* netback's tx_add_credit: a burst big enough for a 128 KiB packet */
static void tx_add_credit(struct net_queue *q)
{
	uint64_t max_burst = q->credit_bytes > 131072 ? q->credit_bytes : 131072;
	uint64_t max_credit = q->remaining_credit + q->credit_bytes;

	if (max_credit < q->remaining_credit)
		max_credit = UINT64_MAX;
	q->remaining_credit = max_credit < max_burst ? max_credit : max_burst;
}

/* The rate the toolstack set, as this queue's: at connect and on change
 * (as xen_net_rate_changed: the credit left is capped at the new size). */
static void tx_credit_update(struct net_queue *q, uint64_t now)
{
	uint64_t bytes = __atomic_load_n(&q->vif->credit_bytes, __ATOMIC_RELAXED);
	uint64_t usec = __atomic_load_n(&q->vif->credit_usec, __ATOMIC_RELAXED);

	if (bytes == q->credit_bytes && usec == q->credit_usec)
		return;
	if (!q->credit_bytes) {		/* from unlimited: a fresh window */
		q->remaining_credit = bytes;
		q->credit_window_ns = now;
	} else if (q->remaining_credit > bytes) {
		q->remaining_credit = bytes;
	}
	q->credit_bytes = bytes;
	q->credit_usec = usec;
	if (!bytes) {
		q->credit_timer_ns = 0;
		q->dq.limit_until_ns = 0;
	}
}

/*
 * netback's tx_credit_exceeded: a new window's credit once the last one
 * is over; a packet bigger than what is left waits for the next window
 * (the worker wakes then: the timer). The packet is held, not dropped.
 */
static bool tx_credit_exceeded(struct net_queue *q, uint64_t size, uint64_t now)
{
	uint64_t next;

	if (q->credit_timer_ns) {
		if (now < q->credit_timer_ns)
			return true;	/* the timer is pending */
		q->credit_timer_ns = 0;	/* it fired: tx_credit_callback */
		q->dq.limit_until_ns = 0;
		tx_add_credit(q);
	}
	next = q->credit_window_ns + q->credit_usec * 1000u;
	if (now >= next) {
		q->credit_window_ns = now;
		tx_add_credit(q);
	}
	if (size > q->remaining_credit) {
		q->credit_timer_ns = next;
		q->credit_window_ns = next;
		q->dq.limit_until_ns = next;
		return true;
	}
	return false;
}

static int tx_process(struct net_queue *q)
{
	struct pvio_gcopy *gc = &q->dq.w->gcopy;
	struct tx_job jobs[TX_BATCH];
	unsigned int nj = 0, taken = 0, k;
	const char *why = NULL;
	uint64_t now = 0;

	worker_gcopy_begin(q->dq.w, q->domid);
	if (q->credit_bytes || q->vif->credit_bytes) {
		now = pvio_now_ns();
		tx_credit_update(q, now);
	}
	while (taken < q->dq.budget && q->nr_tx_free) {
		struct tx_job *j;
		struct tx_pkt p;
		uint32_t first_len = 0, off;
		int rc;

		/* room for a whole packet in this batch, or flush it first */
		if (nj == TX_BATCH || pvio_gcopy_room(gc) < NET_FATAL_SLOTS) {
			tx_submit(q, jobs, nj);
			nj = 0;
			worker_gcopy_begin(q->dq.w, q->domid);
		}
		if (q->has_held) {
			p = q->held;
			rc = 1;
		} else {
			rc = net_tx_take(&q->tx, &p, &why);
		}
		if (rc == 0)
			break;
		if (rc < 0) {
			dp_queue_halt(&q->dq, -EPROTO, "tx: %s", why ? why :
				      pvio_ring_halt_str(q->tx.halted));
			break;
		}
		if (!q->has_held)	/* a held packet was recorded when taken */
			tx_journal(q, &p);
		/* the guest's rate: as netback, before the packet goes on */
		if (q->credit_bytes) {
			if (q->remaining_credit < p.slot[0].size &&
			    tx_credit_exceeded(q, p.slot[0].size, now)) {
				if (!q->has_held) {
					q->held = p;
					q->has_held = true;
				}
				break;
			}
			q->remaining_credit -= p.slot[0].size;
		}
		q->has_held = false;
		taken++;
		rc = net_tx_check(&p, &first_len, &why);
		if (rc < 0) {
			dp_queue_halt(&q->dq, -EPROTO, "tx: %s", why);
			break;
		}
		if (rc > 0 || (!q->vif->fe_sg && p.nslots > 1)) {
			tx_drop(q, &p, rc > 0 ? rc - 1 : DROP_MALFORMED);
			continue;
		}
		j = &jobs[nj++];
		j->p = p;
		j->b = q->tx_free;
		q->tx_free = j->b->next;
		q->nr_tx_free--;
		j->b->gidx = gc->n;
		j->b->nsegs = 0;
		j->b->len = NET_VNET_HDR + p.slot[0].size;
		off = NET_VNET_HDR;
		pvio_gcopy_from_guest(gc, p.slot[0].gref, p.slot[0].offset,
				      first_len, j->b->data + off);
		j->b->nsegs++;
		off += first_len;
		for (k = 1; k < p.nslots; k++) {
			const struct netif_tx_request *s = &p.slot[k];

			if (!s->size)
				continue;	/* nothing to copy */
			pvio_gcopy_from_guest(gc, s->gref, s->offset, s->size,
					      j->b->data + off);
			j->b->nsegs++;
			off += s->size;
		}
	}
	if (nj)
		tx_submit(q, jobs, nj);
	return (int)taken;
}

/* ---- rx: TAP -> guest -------------------------------------------------------------- */

static void rx_post(struct net_queue *q, struct net_buf *b)
{
	struct io_uring_sqe *sqe = worker_sqe(q->dq.w);

	io_uring_prep_read(sqe, q->tap_fd, b->data, NET_BUF_SIZE, 0);
	dp_sqe_file(sqe, q->tap_slot);
	dp_sqe_own(&q->dq, sqe, &b->tag);
	b->reading = true;
	b->cancelling = false;
	q->rx_reading++;
}

static void rx_rsp_begin(struct net_queue *q, uint32_t cons)
{
	if (q->jrx)
		jrnl_answer_begin(q->jrx, ent_of(&q->rx, cons),
				  q->rx.rsp_prod_pvt);
}

static void rx_rsp_done(struct net_queue *q)
{
	pvio_ring_back_rsp_commit(&q->rx);
	q->rx_dirty = true;
}

/*
 * The frame answered in the slots consumed at [@first, @end) is whole:
 * only now does the record count its responses. A frame's responses are
 * one unit for the guest (more_data chains them): a record counting
 * them one by one let a restarted pvio-backd publish the first slots of
 * a frame cut by the crash, and the guest joined them to the next frame
 * (with data_validated set, a TCP stream took the mix: checksums
 * differed in test-backd-net-crash). The slots of a cut frame stay in
 * flight and are taken again.
 */
static void rx_frame_done(struct net_queue *q, uint32_t first, uint32_t end)
{
	uint32_t c;

	if (!q->jrx)
		return;
	jrnl_answered(q->jrx, ent_of(&q->rx, end - 1), q->rx.rsp_prod_pvt,
		      false);
	for (c = first; c != end - 1; c++)
		q->jrx->ent[ent_of(&q->rx, c)].state = JE_FREE;
}

/* Answer the request consumed at ring index @cons. */
static void rx_rsp(struct net_queue *q, uint32_t cons, uint16_t id,
		   uint16_t flags, int16_t status)
{
	struct netif_rx_response *r = pvio_netif_rx_back_rsp(&q->rx);

	rx_rsp_begin(q, cons);
	r->id = id;
	r->offset = 0;
	r->flags = flags;
	r->status = status;
	pvio_fault("net-rx-respond");
	if (flags & NETRXF_more_data)
		pvio_fault("net-rx-respond-mid");	/* inside a frame */
	rx_rsp_done(q);
}

static void rx_extra(struct net_queue *q, uint32_t cons,
		     const struct pvio_net_offload *o)
{
	/* the extra-info goes in the response slot, field by field */
	struct netif_extra_info *e =
		(struct netif_extra_info *)pvio_netif_rx_back_rsp(&q->rx);

	rx_rsp_begin(q, cons);
	e->type = XEN_NETIF_EXTRA_TYPE_GSO;
	e->flags = 0;
	e->u.gso.size = o->gso_size;
	e->u.gso.type = o->gso_type;
	e->u.gso.pad = 0;
	e->u.gso.features = 0;
	rx_rsp_done(q);
}

/* Offloads of a packet read from the TAP, as this guest can take them.
 * Return 0 or -1 to drop it. */
static int rx_offloads(struct net_queue *q, struct net_buf *b,
		       struct pvio_net_offload *o)
{
	const struct virtio_net_hdr *vh = (const struct virtio_net_hdr *)b->data;
	char *frame = b->data + NET_VNET_HDR;
	size_t len = b->len - NET_VNET_HDR;
	struct pvio_net_hdrs h;
	bool ipv6;

	if (pvio_net_from_vnet(vh, frame, len, o)) {
		/* nothing netif can say: finish the checksum here */
		if (vh->gso_type != VIRTIO_NET_HDR_GSO_NONE)
			return -1;
		memset(o, 0, sizeof(*o));
		if ((vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
		    pvio_net_csum_fill(frame, len))
			return -1;
		return 0;
	}
	ipv6 = o->csum_blank && pvio_net_parse(frame, len, &h) == 0 && h.ipv6;
	if (o->csum_blank && (!q->vif->fe_csum || (ipv6 && !q->vif->fe_ipv6_csum))) {
		if (o->gso_type || pvio_net_csum_fill(frame, len))
			return -1;
		o->csum_blank = false;
		o->data_validated = true;
	}
	if ((o->gso_type == XEN_NETIF_GSO_TYPE_TCPV4 && !q->vif->fe_gso4) ||
	    (o->gso_type == XEN_NETIF_GSO_TYPE_TCPV6 && !q->vif->fe_gso6))
		return -1;
	return 0;
}

static void rx_recycle(struct net_queue *q, struct net_buf *b)
{
	if (q->quiesced)
		return;	/* left to the free list */
	rx_post(q, b);
}

static struct net_buf *rx_pop(struct net_queue *q)
{
	struct net_buf *b = q->rx_ready;

	q->rx_ready = b->next;
	if (!q->rx_ready)
		q->rx_ready_tail = &q->rx_ready;
	q->nr_rx_ready--;
	return b;
}

struct rx_job {
	struct net_buf *b;
	struct pvio_net_offload o;
	struct netif_rx_request req[NET_MAX_SLOTS + 1];
	uint16_t ndata;
	uint16_t nreq;
	uint32_t cons;			/* ring index of req[0] */
};

static void rx_finish(struct net_queue *q, struct rx_job *jobs, unsigned int n)
{
	struct pvio_gcopy *gc = &q->dq.w->gcopy;
	unsigned int i, k;
	int failed = gc->n ? worker_gcopy_flush(q->dq.w) : 0;

	for (i = 0; i < n; i++) {
		struct rx_job *j = &jobs[i];
		uint32_t len = j->b->len - NET_VNET_HDR, left = len;
		bool copy_failed = false;
		unsigned int r = 0, seg = j->b->gidx;

		for (k = 0; k < j->ndata; k++) {
			uint32_t bytes = left < PVIO_PAGE_SIZE ? left : PVIO_PAGE_SIZE;
			uint16_t flags = 0;
			int16_t st = (int16_t)bytes;

			if (failed && pvio_gcopy_status(gc, seg + k)) {
				st = NETIF_RSP_ERROR;
				copy_failed = true;
			}
			left -= bytes;
			if (left)
				flags |= NETRXF_more_data;
			if (k == 0) {
				if (j->o.csum_blank)
					flags |= NETRXF_csum_blank |
						 NETRXF_data_validated;
				else if (j->o.data_validated)
					flags |= NETRXF_data_validated;
				if (j->o.gso_type)
					flags |= NETRXF_extra_info;
			}
			rx_rsp(q, j->cons + r, j->req[r].id, flags, st);
			r++;
			if (k == 0 && j->o.gso_type) {
				/* after the first data slot */
				rx_extra(q, j->cons + r, &j->o);
				r++;
			}
		}
		rx_frame_done(q, j->cons, j->cons + r);
		if (copy_failed) {
			STAT_ADD(&q->dq, drops[DROP_GRANT], 1);
			STAT_ADD(&q->dq, err_grant, 1);
		} else {
			STAT_ADD(&q->dq, req[1], 1);
			STAT_ADD(&q->dq, bytes_out, len);
		}
		rx_recycle(q, j->b);
	}
	worker_gcopy_end(q->dq.w);
}

static int rx_deliver(struct net_queue *q)
{
	struct pvio_gcopy *gc = &q->dq.w->gcopy;
	struct rx_job jobs[RX_BATCH];
	unsigned int nj = 0, done = 0;
	uint64_t now = 0;

	worker_gcopy_begin(q->dq.w, q->domid);
	q->rx_need = 0;
	while (q->rx_ready) {
		struct net_buf *b = q->rx_ready;
		struct pvio_net_offload o;
		uint32_t len = b->len - NET_VNET_HDR, need, got = 0, k;
		uint16_t ndata;
		struct rx_job *j;

		if (rx_offloads(q, b, &o)) {
			STAT_ADD(&q->dq, drops[DROP_MALFORMED], 1);
			rx_recycle(q, rx_pop(q));
			continue;
		}
		ndata = (uint16_t)((len + PVIO_PAGE_SIZE - 1) / PVIO_PAGE_SIZE);
		if (ndata > 1 && !q->vif->fe_sg) {
			/* one slot is all such a frontend takes: the MTU
			 * (lowered at connect) was raised by hand since */
			STAT_ADD(&q->dq, drops[DROP_TOO_BIG], 1);
			rx_recycle(q, rx_pop(q));
			continue;
		}
		need = ndata + (o.gso_type ? 1u : 0u);
		if (pvio_ring_back_unconsumed(&q->rx) < need) {
			/* The guest has no room: packets wait, up to the drain
			 * time since they were queued. The clock is read only
			 * now, and stamps every packet waiting so far. */
			if (!now) {
				struct net_buf *w;

				now = pvio_now_ns();
				for (w = b; w; w = w->next)
					if (!w->since_ns)
						w->since_ns = now;
			}
			if (now - b->since_ns < q->drain_ns) {
				q->rx_need = need;
				q->dq.timer_ns = b->since_ns + q->drain_ns;
				break;
			}
			STAT_ADD(&q->dq, drops[DROP_RX_STALL], 1);
			rx_recycle(q, rx_pop(q));
			continue;
		}
		if (nj == RX_BATCH || pvio_gcopy_room(gc) < ndata) {
			rx_finish(q, jobs, nj);
			nj = 0;
			worker_gcopy_begin(q->dq.w, q->domid);
		}
		j = &jobs[nj];
		j->cons = q->rx.req_cons;
		while (got < need) {
			int c = pvio_netif_rx_back_consume(&q->rx, j->req + got,
							    need - got);

			if (c <= 0)
				break;
			/* the copies to the record, then the index */
			for (k = 0; q->jrx && k < (uint32_t)c; k++)
				jrnl_take(q->jrx, ent_of(&q->rx, j->cons + got + k),
					  j->cons + got + k, &j->req[got + k],
					  sizeof(j->req[0]), 0);
			if (q->jrx)
				jrnl_consumed(q->jrx, q->rx.req_cons);
			got += (uint32_t)c;
		}
		if (got < need) {
			/* a hostile index: answer what we took, stop */
			for (k = 0; k < got; k++) {
				rx_rsp(q, j->cons + k, j->req[k].id, 0,
				       NETIF_RSP_ERROR);
				rx_frame_done(q, j->cons + k, j->cons + k + 1);
			}
			dp_queue_halt(&q->dq, -EPROTO, "rx: %s",
				      q->rx.halted ? pvio_ring_halt_str(q->rx.halted)
						   : "requests vanished");
			break;
		}
		rx_pop(q);
		nj++;
		b->since_ns = 0;
		j->b = b;
		j->o = o;
		j->ndata = ndata;
		j->nreq = (uint16_t)need;
		b->gidx = gc->n;
		for (k = 0; k < ndata; k++) {
			uint32_t off = k * PVIO_PAGE_SIZE;
			uint32_t bytes = len - off < PVIO_PAGE_SIZE ? len - off
								  : PVIO_PAGE_SIZE;
			/* data slot k sits in request k, or k+1 after the
			 * GSO extra */
			unsigned int r = (k == 0 || !o.gso_type) ? k : k + 1;

			pvio_gcopy_to_guest(gc, j->req[r].gref, 0, bytes,
					    b->data + NET_VNET_HDR + off);
		}
		done++;
	}
	if (nj)
		rx_finish(q, jobs, nj);
	if (!q->rx_ready)
		q->dq.timer_ns = 0;
	return (int)done;
}

/* ---- the queue --------------------------------------------------------------------- */

static int net_process(struct dp_queue *dq)
{
	struct net_queue *q = NQ(dq);
	int n;

	if (q->quiesced)
		return 0;
	if (!q->reads_posted) {
		unsigned int i;

		/* The TAP is not a registered file (q->tap_slot stays -1):
		 * the reads wait on it for as long as the guest is idle,
		 * and before Linux 6.7 io_uring drops the files unregistered
		 * later only once every request older than them is done, so
		 * an idle vif kept every removed vif's TAP (and loop
		 * device) alive: xl network-detach left vif<D>.<N> behind
		 * (the lab's xl-lifecycle, dom0 on Linux 6.1). */
		for (i = 0; i < NET_RX_BUFS; i++)
			rx_post(q, &q->rxb[i]);
		q->reads_posted = true;
	}
	n = tx_process(q);
	if (q->rx_ready)
		n += rx_deliver(q);
	if (n)
		dp_stat_batch(&dq->st, (unsigned int)n);
	return n;
}

static void net_complete(struct dp_queue *dq, struct dp_tag *tag, int res)
{
	struct net_queue *q = NQ(dq);
	struct net_buf *b = tag->ptr;

	if (tag->kind == TAG_CANCEL)
		return;
	if (tag->kind == TAG_TX) {
		q->tx_writing--;
		if (res < 0)
			STAT_ADD(dq, drops[DROP_TAP], 1);
		b->next = q->tx_free;
		q->tx_free = b;
		q->nr_tx_free++;
		return;
	}
	q->rx_reading--;
	b->reading = false;
	if (res <= (int)NET_VNET_HDR || q->quiesced) {
		if (res == -ECANCELED || q->quiesced)
			return;
		if (res < 0 && res != -EAGAIN && res != -EINTR) {
			/* the TAP is gone (deleted under us: -EBADFD): every
			 * read posted again would fail at once, for ever */
			dp_queue_halt(dq, res, "TAP read: %s", strerror(-res));
			return;
		}
		rx_recycle(q, b);	/* an empty read */
		return;
	}
	b->len = (uint32_t)res;
	b->since_ns = 0;
	b->next = NULL;
	*q->rx_ready_tail = b;
	q->rx_ready_tail = &b->next;
	q->nr_rx_ready++;
	dq->kicked = true;	/* deliver it this pass */
}

static void net_flush(struct dp_queue *dq)
{
	struct net_queue *q = NQ(dq);

	if (q->rx_ready && !q->quiesced)
		rx_deliver(q);
	if (pvio_unlikely(q->kick_guest))
		q->tx_dirty = q->rx_dirty = true;
	tx_publish(q);
	if (q->rx_dirty) {
		q->rx_dirty = false;
		if (pvio_ring_back_push(&q->rx) || q->kick_guest)
			dp_queue_notify(dq, dq->nr_ports > 1 ? 1 : 0);
	}
	if (pvio_unlikely(q->kick_guest)) {
		/* re-attached after a crash: what the last process published
		 * may be owed an event; a spurious one is harmless */
		dp_queue_notify(dq, 0);
		q->kick_guest = false;
	}
}

static bool net_final_check(struct dp_queue *dq)
{
	struct net_queue *q = NQ(dq);
	bool work = false;

	if (q->quiesced)
		return false;
	if (q->nr_tx_free && !q->has_held)	/* held: the credit timer wakes us */
		work = pvio_ring_back_final_check(&q->tx, 1);
	if (q->rx_ready && q->rx_need)
		work |= pvio_ring_back_wait_for(&q->rx, q->rx_need);
	return work;
}

static bool net_busy(const struct dp_queue *dq)
{
	const struct net_queue *q = (const struct net_queue *)dq;

	return q->tx_writing || q->rx_reading;
}

static void net_quiesce(struct dp_queue *dq)
{
	struct net_queue *q = NQ(dq);
	struct io_uring_sqe *sqe;
	unsigned int i;

	if (!q->quiesced) {
		q->quiesced = true;
		/* a packet waiting for credit: the device goes, answer it
		 * (every request gets its response) */
		if (q->has_held) {
			tx_answer(q, &q->held, NETIF_RSP_DROPPED);
			q->has_held = false;
			tx_publish(q);
		}
	}
	/*
	 * Posted reads would wait for traffic forever: cancel them, each by
	 * its own tag (a read that ended meanwhile: -ENOENT). One cancel of
	 * every read on the TAP's fd made the kernel walk every armed poll
	 * of the ring for each read it cancelled: 256 vifs took seconds to
	 * stop, past the drain bound (test-backd-stop256.sh). Each cancel is
	 * the queue's own SQE (counted until reaped), and it and the read it
	 * ends are two CQEs: a worker sends at most its pass's share (called
	 * again each pass while the queue stops), so that hundreds of idle
	 * vifs stopped at once do not overflow its completion queue.
	 */
	for (i = 0; i < NET_RX_BUFS && dq->w->cancels_left; i++) {
		struct net_buf *b = &q->rxb[i];

		if (!b->reading || b->cancelling)
			continue;
		sqe = worker_sqe(dq->w);
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)&b->tag, 0);
		dp_sqe_own(dq, sqe, &q->cancel_tag);
		b->cancelling = true;
		dq->w->cancels_left--;
	}
}

static void net_free_dq(struct dp_queue *dq)
{
	net_queue_free(NQ(dq));
}

static const struct dp_queue_ops net_queue_ops = {
	.process = net_process,
	.complete = net_complete,
	.flush = net_flush,
	.final_check = net_final_check,
	.busy = net_busy,
	.quiesce = net_quiesce,
	.free = net_free_dq,
};

/* ---- set-up --------------------------------------------------------------------------- */

/*
 * The in-flight record of one of the queue's rings (docs/architecture.md,
 * "Crash recovery"). Both rings answer every slot they consumed before
 * publishing, so an entry per ring index suffices. Kept after a crash: tx
 * slots consumed and not answered are answered now (their frames are lost;
 * TCP sends them again); rx answers in the order it consumes, so the
 * unanswered requests are the ring indices from rsp_prod_pvt on: their
 * copies go back into their slots and they are taken again as fresh
 * buffers, nothing answered twice, nothing leaked.
 */
static int net_journal(struct net_queue *q, struct device *d, bool rx,
		       pvio_gref_t ref, pvio_port_t port, bool reattach)
{
	struct pvio_ring_back *ring = rx ? &q->rx : &q->tx;
	struct jrnl **jp = rx ? &q->jrx : &q->jtx, *j;
	uint32_t req_prod = __atomic_load_n(&ring->sring->req_prod,
					    __ATOMIC_ACQUIRE), pvt;
	const char *why = NULL;
	struct jrnl_ident id;
	unsigned int *slots, nr = 0, i;
	bool kept;
	int rc;

	memset(&id, 0, sizeof(id));
	snprintf(id.kind, sizeof(id.kind), rx ? "vif_rx" : "vif_tx");
	id.domid = d->fe;
	id.devid = d->devid;
	id.queue = q->dq.index;
	id.nr_pages = 1;
	id.refs[0] = ref;
	id.port = port;
	id.nr_ents = ring->nr_ents;
	id.req_size = rx ? sizeof(struct netif_rx_request)
			 : sizeof(struct netif_tx_request);
	rc = jrnl_open(d->bd->o.journal_dir, &id, reattach, ring->rsp_pushed,
		       jp, &kept);
	if (rc) {
		log_warn("%s: cannot create the in-flight record in %s: %s",
			 d->path, d->bd->o.journal_dir, strerror(-rc));
		return rc;
	}
	j = *jp;
	if (!kept)
		return 0;
	slots = malloc(ring->nr_ents * sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	rc = jrnl_recover(j, req_prod, ring->rsp_pushed, slots, &nr, &why);
	pvt = j->h->rsp_prod_pvt;
	for (i = 0; !rc && rx && i < nr; i++)
		if (j->ent[slots[i]].cons_idx != pvt + i) {
			why = "its rx requests are not the last ones taken";
			rc = -EPROTO;
		}
	if (rc) {
		log_warn("%s: refusing the in-flight record %s: %s; attaching at the live ring indices",
			 d->path, j->path, why);
		jrnl_reset(j, ring->rsp_pushed);
		free(slots);
		return 0;
	}
	ring->req_cons = ring->req_snap = j->h->req_cons;
	ring->rsp_prod_pvt = pvt;
	if (rx) {
		for (i = 0; i < nr; i++)
			memcpy(pvio__ring_slot(ring->sring, pvt + i, ring->nr_ents,
					       sizeof(union pvio_netif_rx_slot)),
			       j->ent[slots[i]].req, sizeof(struct netif_rx_request));
		jrnl_consumed(j, pvt);
		for (i = 0; i < nr; i++)
			j->ent[slots[i]].state = JE_FREE;
		ring->req_cons = ring->req_snap = pvt;
	} else {
		for (i = 0; i < nr; i++) {
			const struct jrnl_ent *e = &j->ent[slots[i]];
			struct netif_tx_request t;

			memcpy(&t, e->req, sizeof(t));
			tx_rsp(q, e->cons_idx, e->tag ? 0 : t.id,
			       e->tag ? NETIF_RSP_NULL : NETIF_RSP_OKAY);
		}
	}
	q->kick_guest = true;
	log_info("%s: queue %u %s: in-flight record kept: %u %s, %u responses to publish",
		 d->path, q->dq.index, rx ? "rx" : "tx", nr,
		 rx ? "buffers taken again" : "slots answered (frames lost)",
		 ring->rsp_prod_pvt - ring->rsp_pushed);
	free(slots);
	return 0;
}

int net_queue_create(struct device *d, struct vif *v, struct worker *w,
		     unsigned int index, pvio_gref_t tx_ref, pvio_gref_t rx_ref,
		     pvio_port_t port_tx, pvio_port_t port_rx, bool reattach,
		     struct net_queue **out)
{
	struct net_queue *q = calloc(1, sizeof(*q));
	size_t bytes = (size_t)(NET_TX_BUFS + NET_RX_BUFS) * NET_BUF_SIZE;
	unsigned int i;
	int rc;

	if (!q) {
		worker_unplace(w);
		return -ENOMEM;
	}
	q->dq.ops = &net_queue_ops;
	q->dq.dev = d;
	q->dq.w = w;
	q->dq.index = index;
	q->vif = v;
	q->domid = d->fe;
	q->tap_fd = -1;
	q->tap_slot = -1;
	q->cancel_tag.q = &q->dq;
	q->cancel_tag.kind = TAG_CANCEL;
	q->rx_ready_tail = &q->rx_ready;
	q->drain_ns = v->fe_rx_notify ? NET_RX_DRAIN_NS : 30000000u;
	rc = pvio_gnt_map(w->plat, d->fe, 1, &tx_ref, true, &q->tx_mem);
	if (rc)
		goto fail;
	rc = pvio_gnt_map(w->plat, d->fe, 1, &rx_ref, true, &q->rx_mem);
	if (rc)
		goto fail;
	if (pvio_netif_tx_back_attach(&q->tx, q->tx_mem, 1) ||
	    pvio_netif_rx_back_attach(&q->rx, q->rx_mem, 1)) {
		rc = -EPROTO;
		goto fail;
	}
	q->bufs = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (q->bufs == MAP_FAILED) {
		q->bufs = NULL;
		rc = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < NET_TX_BUFS; i++) {
		struct net_buf *b = &q->txb[i];

		b->tag = (struct dp_tag){ .q = &q->dq, .ptr = b, .kind = TAG_TX };
		b->data = q->bufs + (size_t)i * NET_BUF_SIZE;
		b->next = q->tx_free;
		q->tx_free = b;
	}
	q->nr_tx_free = NET_TX_BUFS;
	for (i = 0; i < NET_RX_BUFS; i++) {
		struct net_buf *b = &q->rxb[i];

		b->tag = (struct dp_tag){ .q = &q->dq, .ptr = b, .kind = TAG_RX };
		b->data = q->bufs + (size_t)(NET_TX_BUFS + i) * NET_BUF_SIZE;
	}
	if (index == 0) {
		q->tap_fd = v->tap0;
	} else {
		rc = tap_open(v->ifname, true, false, &q->tap_fd);
		if (rc)
			goto fail;
		q->own_fd = true;
	}
	rc = pvio_evtchn_bind(w->plat, d->fe, port_tx);
	if (rc < 0)
		goto fail;
	q->dq.ports[0] = (pvio_port_t)rc;
	q->dq.nr_ports = 1;
	/* split event channels are the queue's own choice (netback reads
	 * them per queue): a frontend may mix the two layouts */
	if (port_rx != port_tx) {
		rc = pvio_evtchn_bind(w->plat, d->fe, port_rx);
		if (rc < 0)
			goto fail;
		q->dq.ports[1] = (pvio_port_t)rc;
		q->dq.nr_ports = 2;
	}
	if (d->bd->o.journal_dir) {
		rc = net_journal(q, d, false, tx_ref, port_tx, reattach);
		if (!rc)
			rc = net_journal(q, d, true, rx_ref, port_rx, reattach);
		if (rc)
			goto fail;
	}
	/* a restart: what the last process published may be owed an event */
	q->kick_guest |= reattach;
	*out = q;
	return 0;
fail:
	net_queue_free(q);
	return rc;
}

void net_queue_free(struct net_queue *q)
{
	/* SIGTERM, drained: ports, grants and mappings are left to the
	 * exit (blk_queue_free()) */
	bool exiting = q && q->dq.w->bd->exit_fast;
	unsigned int i;

	if (!q)
		return;
	/* drained: the records go (one still owing answers stays) */
	if (q->jtx)
		jrnl_close(q->jtx, q->jtx->h->req_cons == q->jtx->h->rsp_prod_pvt,
			   !exiting);
	if (q->jrx)
		jrnl_close(q->jrx, q->jrx->h->req_cons == q->jrx->h->rsp_prod_pvt,
			   !exiting);
	if (q->own_fd && q->tap_fd >= 0)
		close(q->tap_fd);
	if (!exiting) {
		for (i = 0; i < q->dq.nr_ports; i++)
			pvio_evtchn_close(q->dq.w->plat, q->dq.ports[i]);
		if (q->tx_mem)
			pvio_gnt_unmap(q->dq.w->plat, q->tx_mem, 1);
		if (q->rx_mem)
			pvio_gnt_unmap(q->dq.w->plat, q->rx_mem, 1);
		if (q->bufs)
			munmap(q->bufs, (size_t)(NET_TX_BUFS + NET_RX_BUFS) *
					NET_BUF_SIZE);
	}
	worker_unplace(q->dq.w);
	free(q);
}
