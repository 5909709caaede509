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
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "net.h"

enum { TAG_TX = 1, TAG_RX, TAG_CANCEL };

#define TX_BATCH	16	/* packets per grant-copy batch */
#define RX_BATCH	16

/* ---- tx: guest -> TAP ------------------------------------------------------------ */

static void tx_rsp(struct net_queue *q, uint16_t id, int16_t status)
{
	struct netif_tx_response *r = pvio_netif_tx_back_rsp(&q->tx);

	r->id = id;
	r->status = status;
	pvio_ring_back_rsp_commit(&q->tx);
	q->tx_dirty = true;
}

static void tx_answer(struct net_queue *q, const struct tx_pkt *p,
		      int16_t status)
{
	unsigned int i;

	tx_rsp(q, p->slot[0].id, status);
	for (i = 0; i < p->nextra; i++)
		tx_rsp(q, 0, NETIF_RSP_NULL);
	for (i = 1; i < p->nslots; i++)
		tx_rsp(q, p->slot[i].id, status);
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

static int tx_process(struct net_queue *q)
{
	struct pvio_gcopy *gc = &q->dq.w->gcopy;
	struct tx_job jobs[TX_BATCH];
	unsigned int nj = 0, taken = 0, k;
	const char *why = NULL;

	worker_gcopy_begin(q->dq.w, q->domid);
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
		rc = net_tx_take(&q->tx, &p, &why);
		if (rc == 0)
			break;
		if (rc < 0) {
			dp_queue_halt(&q->dq, -EPROTO, "tx: %s", why ? why :
				      pvio_ring_halt_str(q->tx.halted));
			break;
		}
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
	q->rx_reading++;
}

static void rx_rsp(struct net_queue *q, uint16_t id, uint16_t flags,
		   int16_t status)
{
	struct netif_rx_response *r = pvio_netif_rx_back_rsp(&q->rx);

	r->id = id;
	r->offset = 0;
	r->flags = flags;
	r->status = status;
	pvio_ring_back_rsp_commit(&q->rx);
	q->rx_dirty = true;
}

static void rx_extra(struct net_queue *q, const struct pvio_net_offload *o)
{
	/* the extra-info goes in the response slot, field by field */
	struct netif_extra_info *e =
		(struct netif_extra_info *)pvio_netif_rx_back_rsp(&q->rx);

	e->type = XEN_NETIF_EXTRA_TYPE_GSO;
	e->flags = 0;
	e->u.gso.size = o->gso_size;
	e->u.gso.type = o->gso_type;
	e->u.gso.pad = 0;
	e->u.gso.features = 0;
	pvio_ring_back_rsp_commit(&q->rx);
	q->rx_dirty = true;
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
			rx_rsp(q, j->req[r].id, flags, st);
			r++;
			if (k == 0 && j->o.gso_type) {
				rx_extra(q, &j->o);	/* after the first data slot */
				r++;
			}
		}
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
		while (got < need) {
			int c = pvio_netif_rx_back_consume(&q->rx, j->req + got,
							    need - got);

			if (c <= 0)
				break;
			got += (uint32_t)c;
		}
		if (got < need) {
			/* a hostile index: answer what we took, stop */
			for (k = 0; k < got; k++)
				rx_rsp(q, j->req[k].id, 0, NETIF_RSP_ERROR);
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

		/* from the worker: its ring, its thread */
		q->tap_slot = dp_queue_file(dq, q->tap_fd);
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
	if (res <= (int)NET_VNET_HDR || q->quiesced) {
		if (res != -ECANCELED && !q->quiesced)
			rx_recycle(q, b);	/* an empty or failed read */
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
	tx_publish(q);
	if (q->rx_dirty) {
		q->rx_dirty = false;
		if (pvio_ring_back_push(&q->rx))
			dp_queue_notify(dq, q->vif->split ? 1 : 0);
	}
}

static bool net_final_check(struct dp_queue *dq)
{
	struct net_queue *q = NQ(dq);
	bool work = false;

	if (q->quiesced)
		return false;
	if (q->nr_tx_free)
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

	if (q->quiesced)
		return;
	q->quiesced = true;
	/* posted reads would wait for traffic forever: cancel them; the
	 * cancel is the queue's own SQE (its tag, counted until reaped) */
	sqe = worker_sqe(dq->w);
	if (q->tap_slot >= 0)
		io_uring_prep_cancel_fd(sqe, q->tap_slot, IORING_ASYNC_CANCEL_ALL |
							  IORING_ASYNC_CANCEL_FD_FIXED);
	else
		io_uring_prep_cancel_fd(sqe, q->tap_fd, IORING_ASYNC_CANCEL_ALL);
	dp_sqe_own(dq, sqe, &q->cancel_tag);
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

int net_queue_create(struct device *d, struct vif *v, struct worker *w,
		     unsigned int index, pvio_gref_t tx_ref, pvio_gref_t rx_ref,
		     pvio_port_t port_tx, pvio_port_t port_rx,
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
	if (v->split) {
		rc = pvio_evtchn_bind(w->plat, d->fe, port_rx);
		if (rc < 0)
			goto fail;
		q->dq.ports[1] = (pvio_port_t)rc;
		q->dq.nr_ports = 2;
	}
	*out = q;
	return 0;
fail:
	net_queue_free(q);
	return rc;
}

void net_queue_free(struct net_queue *q)
{
	unsigned int i;

	if (!q)
		return;
	for (i = 0; i < q->dq.nr_ports; i++)
		pvio_evtchn_close(q->dq.w->plat, q->dq.ports[i]);
	if (q->tx_mem)
		pvio_gnt_unmap(q->dq.w->plat, q->tx_mem, 1);
	if (q->rx_mem)
		pvio_gnt_unmap(q->dq.w->plat, q->rx_mem, 1);
	if (q->own_fd && q->tap_fd >= 0)
		close(q->tap_fd);
	if (q->bufs)
		munmap(q->bufs, (size_t)(NET_TX_BUFS + NET_RX_BUFS) * NET_BUF_SIZE);
	worker_unplace(q->dq.w);
	free(q);
}
