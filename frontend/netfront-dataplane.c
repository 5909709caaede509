// SPDX-License-Identifier: MIT
/*
 * netfront's dataplane: per queue a tx and an rx ring (one page each), one
 * or two event channels, and two pools of pages granted once; the hot path
 * over them (send, recv, arm). No xenstore, no lock, no malloc and no
 * logging after pvio__nf_queue_create(); the control path meets it at the
 * pvio__nf_queue_* calls.
 *
 * tx: slot id i (0..255) owns tx pool page i, granted read-only. A frame is
 * copied from offset 0 of as many pages as it needs, so a slot never
 * crosses a page and only the last one is partial. Ids come from a free
 * stack; a response must name an id in flight (Linux netfront: "response
 * for inactive request"). Extra-info slots carry no id and are answered
 * NETIF_RSP_NULL: we count them so that a NULL cannot free a data slot.
 *
 * Zero copy (tx_reserve/commit/push): the caller writes a frame straight
 * into reserved pool pages; the pages are then laid out as above. Open
 * reservations hold their ids and ring room (tx_resv_*).
 *
 * rx: ring position p owns rx pool page p % 256 and request id p % 256
 * (Linux: responses are matched by position, and netback echoes the id).
 * Responses are copied once into a private stage as they are published;
 * packets are taken from the stage only when complete, so a slow backend
 * that publishes half a packet costs nothing. Positions go back on the
 * ring once their packet is taken (copied out), or, taken in place
 * (recv_zc), once the caller releases it: rx_released trails rx_done by
 * the frames still out, whose end positions wait in a FIFO.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <pvio/ring.h>

#include "netfront-private.h"

/* netif tx and rx slots in one page */
#define NF_RING			256u
#define NF_MASK			(NF_RING - 1)
#define NF_PAGE			PVIO_PAGE_SIZE
#define NF_REAP_BATCH		64u
#define NF_RX_REFILL_MIN	32u
/* Linux netfront's rx limit: XEN_NETIF_NR_SLOTS_MIN, +1 for a small
 * first slot (RX_COPY_THRESHOLD). */
#define NF_RX_MAX_DATA		(XEN_NETIF_NR_SLOTS_MIN + 1)
#define NF_RX_MAX_EXTRAS	(XEN_NETIF_EXTRA_TYPE_MAX - 1)

_Static_assert(PVIO_NETFRONT_MAX_RX_FRAME == NF_RX_MAX_DATA * NF_PAGE,
	       "the largest rx frame is 19 full slots");
_Static_assert(sizeof(struct netif_extra_info) ==
		       sizeof(struct netif_rx_response),
	       "an rx extra-info slot is read from a response slot");
_Static_assert((PVIO_NETFRONT_MAX_TX_FRAME + NF_PAGE - 1) / NF_PAGE + 1 <=
		       XEN_NETIF_NR_SLOTS_MIN,
	       "a 64 KiB frame and its extra slot fit what a backend accepts");

struct pvio_netfront_queue {
	struct pvio_ring_front tx;	/* own cache lines */
	struct pvio_ring_front rx;

	/* hot */
	struct pvio_netfront *dev;
	struct pvio_platform *plat;
	pvio_port_t tx_port, rx_port;
	uint32_t features;
	uint8_t *tx_pool;
	uint8_t *rx_pool;
	uint32_t tx_nr_free;
	uint32_t tx_extras;	/* extra-info slots owed a NULL response */
	uint32_t rx_done;	/* ring positions whose packet was taken */
	uint32_t rx_released;	/* ... and whose pages may be posted again */
	uint32_t tx_resv_slots;	/* ring room held by open reservations */
	uint32_t tx_resv_ids;	/* ids (pages) held by them */
	uint32_t rx_out;	/* frames taken in place, not yet released */
	uint32_t rx_out_head;	/* FIFO of their end positions */
	struct fe_wait wait;		/* the queue's pollable fd, the kick */
	struct pvio_netfront_stats st;
	uint16_t tx_free[NF_RING];
	uint8_t tx_busy[NF_RING];
	pvio_gref_t tx_refs[NF_RING];
	pvio_gref_t rx_refs[NF_RING];
	struct netif_rx_response rx_stage[NF_RING];
	uint32_t rx_out_end[NF_RING];

	/* cold */
	unsigned int idx;
	void *rings;		/* tx sring, rx sring: two pages */
	pvio_gref_t ring_refs[2];
	bool tx_port_open, rx_port_open;
};

/* ---- set-up and tear-down (cold) ----------------------------------------- */

static void rx_refill(struct pvio_netfront_queue *q, bool force);

__attribute__((cold)) int
pvio__nf_queue_create(struct pvio_netfront *dev, unsigned int idx, bool split,
		      struct pvio_netfront_queue **out)
{
	struct pvio_netfront_queue *q;
	void *pool;
	unsigned int i;
	int rc;

	*out = NULL;
	if (pvio_netif_tx_ring_size(1) != NF_RING ||
	    pvio_netif_rx_ring_size(1) != NF_RING)
		return -EINVAL;	/* cannot happen with Xen's layout */
	if (posix_memalign((void **)&q, PVIO_CACHELINE, sizeof(*q)))
		return -ENOMEM;
	memset(q, 0, sizeof(*q));
	q->dev = dev;
	q->idx = idx;
	q->wait = FE_WAIT_INIT;

	/* A handle of our own: its event-channel fd carries this queue's
	 * ports only, so that each queue's thread sleeps on its own fd. */
	rc = pvio_platform_open(&q->plat, dev->fe.spec, dev->fe.self, 0);
	if (rc)
		goto fail;
	rc = pvio_gnt_share(q->plat, dev->fe.backend_id, 2, true, q->ring_refs,
			    &q->rings);
	if (rc)
		goto fail;
	memset(q->rings, 0, 2 * NF_PAGE);
	rc = pvio_netif_tx_front_init(&q->tx, q->rings, 1);
	if (!rc)
		rc = pvio_netif_rx_front_init(&q->rx,
					      (char *)q->rings + NF_PAGE, 1);
	if (rc)
		goto fail;
	/* tx pages: the backend only reads them (GNTMAP_readonly, as Linux) */
	rc = pvio_gnt_share(q->plat, dev->fe.backend_id, NF_RING, false,
			    q->tx_refs, &pool);
	if (rc)
		goto fail;
	q->tx_pool = pool;
	rc = pvio_gnt_share(q->plat, dev->fe.backend_id, NF_RING, true,
			    q->rx_refs, &pool);
	if (rc)
		goto fail;
	q->rx_pool = pool;
	/* Pages recycled from earlier shares must not show old data. */
	memset(q->tx_pool, 0, (size_t)NF_RING * NF_PAGE);
	memset(q->rx_pool, 0, (size_t)NF_RING * NF_PAGE);

	rc = pvio_evtchn_alloc_unbound(q->plat, dev->fe.backend_id);
	if (rc < 0)
		goto fail;
	q->tx_port = q->rx_port = (pvio_port_t)rc;
	q->tx_port_open = true;
	if (split) {
		/* As Linux: a failed second channel falls back to one. */
		rc = pvio_evtchn_alloc_unbound(q->plat, dev->fe.backend_id);
		if (rc > 0) {
			q->rx_port = (pvio_port_t)rc;
			q->rx_port_open = true;
		}
	}

	rc = fe_wait_open(&q->wait, q->plat);
	if (rc)
		goto fail;

	for (i = 0; i < NF_RING; i++)
		q->tx_free[i] = (uint16_t)(NF_RING - 1 - i);
	q->tx_nr_free = NF_RING;
	/* Every rx buffer on the ring before the backend looks. */
	rx_refill(q, true);
	q->st.rx_refills = 0;
	q->st.rx_notifies = 0;
	*out = q;
	return 0;
fail:
	pvio__nf_queue_destroy(q);
	return rc;
}

void pvio__nf_queue_refs(const struct pvio_netfront_queue *q,
			 pvio_gref_t *tx_ref, pvio_gref_t *rx_ref,
			 pvio_port_t *tx_port, pvio_port_t *rx_port)
{
	*tx_ref = q->ring_refs[0];
	*rx_ref = q->ring_refs[1];
	*tx_port = q->tx_port;
	*rx_port = q->rx_port;
}

void pvio__nf_queue_set_features(struct pvio_netfront_queue *q,
				 uint32_t features)
{
	q->features = features;
}

void pvio__nf_queue_notify_all(struct pvio_netfront_queue *q)
{
	pvio_evtchn_notify(q->plat, q->tx_port);
	if (q->rx_port != q->tx_port)
		pvio_evtchn_notify(q->plat, q->rx_port);
}

void pvio__nf_queue_kick(struct pvio_netfront_queue *q)
{
	if (q)
		fe_wait_kick(&q->wait);
}

__attribute__((cold)) void pvio__nf_queue_destroy(struct pvio_netfront_queue *q)
{
	if (!q)
		return;
	if (q->rx_port_open)
		pvio_evtchn_close(q->plat, q->rx_port);
	if (q->tx_port_open)
		pvio_evtchn_close(q->plat, q->tx_port);
	/* -EBUSY (the backend still maps a page) revokes nothing; closing
	 * the handle below then leaves the pages to the hypervisor until
	 * the backend lets go (sim), or the kernel defers the free (xen). */
	if (q->rx_pool)
		pvio_gnt_unshare(q->plat, q->rx_pool, NF_RING);
	if (q->tx_pool)
		pvio_gnt_unshare(q->plat, q->tx_pool, NF_RING);
	if (q->rings)
		pvio_gnt_unshare(q->plat, q->rings, 2);
	fe_wait_close(&q->wait);
	pvio_platform_close(q->plat);
	free(q);
}

/* ---- the backend broke the protocol (cold) ------------------------------- */

static __attribute__((cold, noinline, format(printf, 2, 3))) int
broken(struct pvio_netfront_queue *q, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* Both rings stop for good: no later call looks at shared memory. */
	if (!q->tx.halted)
		pvio_ring_front_halt(&q->tx, PVIO_RING_RSP_OVERFLOW);
	if (!q->rx.halted)
		pvio_ring_front_halt(&q->rx, PVIO_RING_RSP_OVERFLOW);
	pvio__nf_kill(q->dev, -EPROTO,
		      "the backend broke the protocol on queue %u: %s", q->idx,
		      why);
	return -EPROTO;
}

static __attribute__((cold, noinline)) int
ring_broken(struct pvio_netfront_queue *q, const char *which, uint32_t why)
{
	return broken(q, "%s ring: %s", which,
		      pvio_ring_halt_str((enum pvio_ring_halt)why));
}

/* Stopped for good: halted by a violation, or the backend closed. */
static inline int q_dead(const struct pvio_netfront_queue *q)
{
	return nf_dead(q->dev);
}

/* ---- tx ------------------------------------------------------------------ */

/* Take the tx responses published so far: their ids and pages are free. */
static int tx_reap(struct pvio_netfront_queue *q)
{
	struct netif_tx_response rsp[NF_REAP_BATCH];
	int n, i;

	do {
		n = pvio_netif_tx_front_consume(&q->tx, rsp, NF_REAP_BATCH);
		if (pvio_unlikely(n < 0))
			return ring_broken(q, "tx", q->tx.halted);
		for (i = 0; i < n; i++) {
			unsigned int id = rsp[i].id;
			int st = rsp[i].status;

			if (st == NETIF_RSP_NULL) {
				/* an extra-info slot's answer: no id */
				if (pvio_unlikely(q->tx_extras == 0))
					return broken(q, "tx: a NULL response "
						      "with no extra-info slot "
						      "in flight");
				q->tx_extras--;
				continue;
			}
			if (pvio_unlikely(id >= NF_RING || !q->tx_busy[id]))
				return broken(q, "tx: response for id %u, "
					      "which is not in flight", id);
			q->tx_busy[id] = 0;
			q->tx_free[q->tx_nr_free++] = (uint16_t)id;
			if (pvio_unlikely(st != NETIF_RSP_OKAY))
				q->st.tx_errors++;
		}
	} while (n == (int)NF_REAP_BATCH);
	/* Everything answered: every id must be back. (A NULL for a data
	 * slot paired with an OKAY for an extra would leak one, and a
	 * queue without ids would spin on an empty ring.) */
	if (pvio_unlikely(q->tx.rsp_cons == q->tx.req_prod_pvt &&
			  (q->tx_nr_free + q->tx_resv_ids != NF_RING ||
			   q->tx_extras)))
		return broken(q, "tx: %u slots still in flight after every "
			      "request was answered",
			      NF_RING - q->tx_nr_free - q->tx_resv_ids +
				      q->tx_extras);
	return 0;
}

/* Slots a frame needs, or -errno for a frame that cannot go. */
static inline int tx_slots(const struct pvio_netfront_queue *q,
			   const struct pvio_netfront_frame *f)
{
	const struct pvio_net_offload *o = &f->off;
	uint32_t feat = q->features;
	unsigned int slots;

	if (pvio_unlikely(f->len < PVIO_NETFRONT_MIN_FRAME || !f->data))
		return -EINVAL;
	if (pvio_unlikely(f->len > PVIO_NETFRONT_MAX_TX_FRAME))
		return -EMSGSIZE;
	slots = (f->len + NF_PAGE - 1) / NF_PAGE;
	if (pvio_unlikely(slots > 1 && !(feat & PVIO_NETFRONT_FEAT_SG)))
		return -EMSGSIZE;
	if (pvio_unlikely(o->csum_blank &&
			  !(feat & PVIO_NETFRONT_FEAT_TX_CSUM)))
		return -EINVAL;
	if (o->gso_type != XEN_NETIF_GSO_TYPE_NONE) {
		uint32_t need = o->gso_type == XEN_NETIF_GSO_TYPE_TCPV4
					? PVIO_NETFRONT_FEAT_TX_GSO_TCPV4
				: o->gso_type == XEN_NETIF_GSO_TYPE_TCPV6
					? PVIO_NETFRONT_FEAT_TX_GSO_TCPV6
					: 0;

		/* netback: a GSO size of 0 or an unknown type is fatal */
		if (!need || !(feat & need) || o->gso_size == 0 ||
		    !o->csum_blank)
			return -EINVAL;
	}
	return (int)slots;
}

/* One data slot: the next reserved id (@ids, the data is in its page
 * already), or a fresh id whose page gets @len bytes of @src. */
static inline struct netif_tx_request *
tx_data_slot(struct pvio_netfront_queue *q, const uint16_t *ids,
	     unsigned int *k, const uint8_t *src, uint32_t len, uint16_t flags)
{
	struct netif_tx_request *req = pvio_netif_tx_front_req(&q->tx);
	unsigned int id;

	if (ids) {
		id = ids[(*k)++];
	} else {
		id = q->tx_free[--q->tx_nr_free];
		memcpy(q->tx_pool + (size_t)id * NF_PAGE, src, len);
	}
	q->tx_busy[id] = 1;
	/* field by field: no private padding reaches shared memory */
	req->gref = q->tx_refs[id];
	req->offset = 0;
	req->flags = flags;
	req->id = (uint16_t)id;
	req->size = (uint16_t)len;
	pvio_ring_front_req_commit(&q->tx);
	return req;
}

/* xennet_start_xmit's layout: first slot (total size), the GSO extra,
 * then the rest, NETTXF_more_data on every data slot but the last. With
 * @ids the frame is in those pages already. */
static inline void tx_place(struct pvio_netfront_queue *q,
			    const struct pvio_netfront_frame *f,
			    const uint16_t *ids)
{
	const struct pvio_net_offload *o = &f->off;
	const uint8_t *src = f->data;
	uint32_t left = f->len, chunk = left < NF_PAGE ? left : NF_PAGE;
	struct netif_tx_request *first;
	uint16_t flags = 0;
	unsigned int k = 0;

	if (o->csum_blank)
		flags |= NETTXF_csum_blank | NETTXF_data_validated;
	else if (o->data_validated)
		flags |= NETTXF_data_validated;
	if (o->gso_type != XEN_NETIF_GSO_TYPE_NONE)
		flags |= NETTXF_extra_info;
	if (left > chunk)
		flags |= NETTXF_more_data;
	first = tx_data_slot(q, ids, &k, src, chunk, flags);
	first->size = (uint16_t)f->len;
	if (o->gso_type != XEN_NETIF_GSO_TYPE_NONE) {
		/* the slot holds an extra-info, not a request */
		struct netif_extra_info *ex = (struct netif_extra_info *)
			pvio_netif_tx_front_req(&q->tx);

		ex->type = XEN_NETIF_EXTRA_TYPE_GSO;
		ex->flags = 0;
		ex->u.gso.size = o->gso_size;
		ex->u.gso.type = o->gso_type;
		ex->u.gso.pad = 0;
		ex->u.gso.features = 0;
		pvio_ring_front_req_commit(&q->tx);
		q->tx_extras++;
		q->st.tx_gso++;
		q->st.tx_slots++;
	}
	src += chunk;
	left -= chunk;
	q->st.tx_slots++;
	while (left) {
		chunk = left < NF_PAGE ? left : NF_PAGE;
		tx_data_slot(q, ids, &k, src, chunk,
			     left > chunk ? NETTXF_more_data : 0);
		src += chunk;
		left -= chunk;
		q->st.tx_slots++;
	}
	q->st.tx_frames++;
	q->st.tx_bytes += f->len;
}

int pvio_netfront_send(struct pvio_netfront_queue *q,
		       const struct pvio_netfront_frame *f, unsigned int n)
{
	unsigned int i;
	int rc = 0, d = q_dead(q);

	if (pvio_unlikely(d))
		return d;
	rc = tx_reap(q);
	if (pvio_unlikely(rc))
		return rc;
	for (i = 0; i < n; i++) {
		int slots = tx_slots(q, &f[i]);
		unsigned int need;

		if (pvio_unlikely(slots < 0)) {
			rc = slots;
			break;
		}
		need = (unsigned int)slots +
		       (f[i].off.gso_type != XEN_NETIF_GSO_TYPE_NONE);
		if (pvio_ring_front_free(&q->tx) < q->tx_resv_slots + need ||
		    q->tx_nr_free < (unsigned int)slots) {
			rc = -EAGAIN;
			break;
		}
		tx_place(q, &f[i], NULL);
	}
	/* One publication per batch; a notification only if asked. */
	if (pvio_ring_front_push(&q->tx)) {
		pvio_evtchn_notify(q->plat, q->tx_port);
		q->st.tx_notifies++;
	}
	return i ? (int)i : rc;
}

int pvio_netfront_tx_reserve(struct pvio_netfront_queue *q,
			     struct pvio_netfront_txbuf *b, uint32_t max)
{
	unsigned int pages, i;
	int rc = q_dead(q);

	b->nr = 0;
	if (pvio_unlikely(rc))
		return rc;
	if (max < PVIO_NETFRONT_MIN_FRAME ||
	    max > PVIO_NETFRONT_TX_PAGES * NF_PAGE)
		return -EINVAL;
	pages = (max + NF_PAGE - 1) / NF_PAGE;
	if (pages > 1 && !(q->features & PVIO_NETFRONT_FEAT_SG))
		return -EINVAL;
	rc = tx_reap(q);
	if (pvio_unlikely(rc))
		return rc;
	/* the frame's slots and a GSO extra */
	if (pvio_ring_front_free(&q->tx) < q->tx_resv_slots + pages + 1 ||
	    q->tx_nr_free < pages)
		return -EAGAIN;
	for (i = 0; i < pages; i++) {
		uint16_t id = q->tx_free[--q->tx_nr_free];

		b->id_[i] = id;
		b->iov[i].iov_base = q->tx_pool + (size_t)id * NF_PAGE;
		b->iov[i].iov_len = NF_PAGE;
	}
	b->nr = pages;
	q->tx_resv_slots += pages + 1;
	q->tx_resv_ids += pages;
	return 0;
}

/* Close a reservation; ids from @from on go back to the pool. */
static void tx_unreserve(struct pvio_netfront_queue *q,
			 struct pvio_netfront_txbuf *b, unsigned int from)
{
	unsigned int i;

	if (!b->nr)
		return;
	for (i = from; i < b->nr; i++)
		q->tx_free[q->tx_nr_free++] = b->id_[i];
	q->tx_resv_slots -= b->nr + 1;
	q->tx_resv_ids -= b->nr;
	b->nr = 0;
}

void pvio_netfront_tx_cancel(struct pvio_netfront_queue *q,
			     struct pvio_netfront_txbuf *b)
{
	tx_unreserve(q, b, 0);
}

int pvio_netfront_tx_commit(struct pvio_netfront_queue *q,
			    struct pvio_netfront_txbuf *b, uint32_t len,
			    const struct pvio_net_offload *off)
{
	struct pvio_netfront_frame f = { .len = len };
	int slots, d = q_dead(q);

	if (pvio_unlikely(d)) {
		tx_unreserve(q, b, 0);
		return d;
	}
	if (pvio_unlikely(!b->nr))
		return -EINVAL;
	f.data = b->iov[0].iov_base;
	if (off)
		f.off = *off;
	slots = tx_slots(q, &f);
	if (pvio_unlikely(slots < 0 || (unsigned int)slots > b->nr)) {
		tx_unreserve(q, b, 0);
		return slots < 0 ? slots : -EMSGSIZE;
	}
	tx_place(q, &f, b->id_);
	tx_unreserve(q, b, (unsigned int)slots);
	return 0;
}

int pvio_netfront_tx_push(struct pvio_netfront_queue *q)
{
	int d = q_dead(q);

	if (pvio_unlikely(d))
		return d;
	if (pvio_ring_front_push(&q->tx)) {
		pvio_evtchn_notify(q->plat, q->tx_port);
		q->st.tx_notifies++;
	}
	return 0;
}

/* ---- rx ------------------------------------------------------------------ */

/* Post every free position (at least NF_RX_REFILL_MIN unless @force):
 * one publication, a notification only if the backend asked. */
static void rx_refill(struct pvio_netfront_queue *q, bool force)
{
	uint32_t prod = q->rx.req_prod_pvt;
	uint32_t room = NF_RING - (prod - q->rx_released);

	if (room == 0 || (!force && room < NF_RX_REFILL_MIN))
		return;
	for (; room; room--, prod++) {
		struct netif_rx_request *req = pvio_netif_rx_front_req(&q->rx);
		unsigned int i = prod & NF_MASK;

		req->id = (uint16_t)i;
		req->pad = 0;
		req->gref = q->rx_refs[i];
		pvio_ring_front_req_commit(&q->rx);
	}
	q->st.rx_refills++;
	if (pvio_ring_front_push(&q->rx)) {
		pvio_evtchn_notify(q->plat, q->rx_port);
		q->st.rx_notifies++;
	}
}

/* Copy the responses published so far into the stage, each read once.
 * Positions in flight never exceed NF_RING, so nothing is overwritten. */
static int rx_pull(struct pvio_netfront_queue *q)
{
	int n, total = 0;

	do {
		uint32_t at = q->rx.rsp_cons & NF_MASK;

		n = pvio_netif_rx_front_consume(&q->rx, &q->rx_stage[at],
						NF_RING - at);
		if (pvio_unlikely(n < 0))
			return ring_broken(q, "rx", q->rx.halted);
		total += n;
	} while (n > 0);
	return total;
}

/* xennet_set_skb_gso: a size, and a type netif knows */
static inline bool rx_gso_ok(const struct netif_extra_info *ex)
{
	return ex->u.gso.size &&
	       (ex->u.gso.type == XEN_NETIF_GSO_TYPE_TCPV4 ||
		ex->u.gso.type == XEN_NETIF_GSO_TYPE_TCPV6);
}

static inline bool rx_extra_known(const struct netif_extra_info *ex)
{
	return ex->type != XEN_NETIF_EXTRA_TYPE_NONE &&
	       ex->type < XEN_NETIF_EXTRA_TYPE_MAX;
}

struct nf_seg {
	uint16_t page;
	uint16_t offset;
	uint16_t len;
};

struct nf_pkt {
	struct nf_seg seg[NF_RX_MAX_DATA];
	unsigned int nseg;
	uint32_t total;
	struct pvio_net_offload off;
};

/*
 * The packet at rx_done: 1 parsed into @p (a good one: its positions are
 * consumed), 0 dropped (consumed, counted), -EAGAIN incomplete (wait for
 * more responses), -EPROTO.
 */
static inline int rx_next(struct pvio_netfront_queue *q, struct nf_pkt *p)
{
	struct nf_seg *seg = p->seg;
	uint32_t pos = q->rx_done, end = q->rx.rsp_cons, total = 0;
	struct pvio_net_offload off = { 0 };
	unsigned int nseg = 0;
	bool bad = false, first = true;
	uint16_t flags;

	for (;;) {
		const struct netif_rx_response *r;
		unsigned int idx;

		if (pos == end)
			return -EAGAIN;
		idx = pos & NF_MASK;
		r = &q->rx_stage[idx];
		/* netback echoes the id we posted at this position */
		if (pvio_unlikely(r->id != idx))
			return broken(q, "rx: response at position %u has "
				      "id %u, the request had %u", pos, r->id,
				      idx);
		if (pvio_unlikely(nseg == NF_RX_MAX_DATA))
			return broken(q, "rx: a packet of more than %u slots",
				      NF_RX_MAX_DATA);
		if (r->status < 0) {
			bad = true;	/* the backend's copy failed */
		} else if (pvio_unlikely(r->offset >= NF_PAGE ||
					 r->offset + (uint32_t)r->status >
						 NF_PAGE)) {
			return broken(q, "rx: slot %u: offset %u + size %d "
				      "leaves the page", pos, r->offset,
				      r->status);
		} else {
			seg[nseg].page = (uint16_t)idx;
			seg[nseg].offset = r->offset;
			seg[nseg].len = (uint16_t)r->status;
			total += (uint32_t)r->status;
		}
		nseg++;
		flags = r->flags;
		pos++;
		if (first && (flags & NETRXF_extra_info)) {
			/* extras follow the first data slot, each in a
			 * slot of its own (xennet_get_extras) */
			unsigned int k;

			for (k = 0;; k++) {
				struct netif_extra_info ex;

				if (pos == end)
					return -EAGAIN;
				if (pvio_unlikely(k == NF_RX_MAX_EXTRAS))
					return broken(q, "rx: more than %u "
						      "extra-info slots",
						      NF_RX_MAX_EXTRAS);
				memcpy(&ex, &q->rx_stage[pos & NF_MASK],
				       sizeof(ex));
				pos++;
				if (ex.type == XEN_NETIF_EXTRA_TYPE_GSO) {
					if (rx_gso_ok(&ex)) {
						off.gso_type = ex.u.gso.type;
						off.gso_size = ex.u.gso.size;
					} else {
						bad = true;
					}
				} else if (!rx_extra_known(&ex)) {
					bad = true;	/* Linux drops it */
				}
				if (!(ex.flags & XEN_NETIF_EXTRA_FLAG_MORE))
					break;
			}
		}
		if (first) {
			if (flags & NETRXF_csum_blank)
				off.csum_blank = true;
			if (flags & (NETRXF_csum_blank | NETRXF_data_validated))
				off.data_validated = true;
			first = false;
		}
		if (!(flags & NETRXF_more_data))
			break;
	}
	q->rx_done = pos;
	q->st.rx_slots += nseg;
	if (pvio_unlikely(bad || total == 0)) {
		q->st.rx_errors++;
		return 0;
	}
	p->nseg = nseg;
	p->total = total;
	p->off = off;
	return 1;
}

static inline void rx_count(struct pvio_netfront_queue *q,
			    const struct nf_pkt *p)
{
	q->st.rx_frames++;
	q->st.rx_bytes += p->total;
	if (p->off.gso_type)
		q->st.rx_gso++;
}

/* Nothing taken in place is out: every consumed position may go back. */
static inline void rx_release_done(struct pvio_netfront_queue *q)
{
	if (!q->rx_out)
		q->rx_released = q->rx_done;
}

/* The next packet copied into @f: as rx_next(). */
static inline int rx_take(struct pvio_netfront_queue *q,
			  struct pvio_netfront_frame *f)
{
	struct nf_pkt p;
	uint32_t total = 0;
	unsigned int i;
	int rc = rx_next(q, &p);

	if (rc >= 0)
		rx_release_done(q);
	if (rc <= 0)
		return rc;
	if (pvio_unlikely(p.total > f->size)) {
		q->st.rx_oversize++;
		return 0;
	}
	rx_count(q, &p);
	for (i = 0; i < p.nseg; i++) {
		memcpy((uint8_t *)f->data + total,
		       q->rx_pool + (size_t)p.seg[i].page * NF_PAGE +
			       p.seg[i].offset,
		       p.seg[i].len);
		total += p.seg[i].len;
	}
	f->len = total;
	f->off = p.off;
	return 1;
}

/* The next packet described in place in @b: as rx_next(). */
static inline int rx_take_zc(struct pvio_netfront_queue *q,
			     struct pvio_netfront_rxbuf *b)
{
	struct nf_pkt p;
	unsigned int i;
	int rc = rx_next(q, &p);

	if (rc == 0)
		rx_release_done(q);
	if (rc <= 0)
		return rc;
	for (i = 0; i < p.nseg; i++) {
		b->iov[i].iov_base = q->rx_pool +
				     (size_t)p.seg[i].page * NF_PAGE +
				     p.seg[i].offset;
		b->iov[i].iov_len = p.seg[i].len;
	}
	rx_count(q, &p);
	b->nr = p.nseg;
	b->len = p.total;
	b->off = p.off;
	b->pos_ = q->rx_done;
	q->rx_out_end[(q->rx_out_head + q->rx_out) & NF_MASK] = q->rx_done;
	q->rx_out++;
	return 1;
}

/*
 * Take up to @n packets, copied into @f, or in place into @b (one of the
 * two). Inlined into both callers: the choice costs nothing per packet.
 */
static inline __attribute__((always_inline)) int
rx_batch(struct pvio_netfront_queue *q, struct pvio_netfront_frame *f,
	 struct pvio_netfront_rxbuf *b, unsigned int n)
{
	unsigned int got = 0;
	int d = q_dead(q), rc = 0, pulled;

	if (pvio_unlikely(d == -EPROTO))
		return d;
	/* After the backend closed, what it sent before is still good. */
	pulled = rx_pull(q);
	if (pvio_unlikely(pulled < 0))
		return pulled;
	while (got < n) {
		rc = f ? rx_take(q, &f[got]) : rx_take_zc(q, &b[got]);
		if (rc > 0) {
			got++;
		} else if (rc == -EAGAIN) {
			/* more may have come meanwhile: one more look */
			if (pulled == 0)
				break;
			pulled = rx_pull(q);
			if (pvio_unlikely(pulled < 0))
				return pulled;
		} else if (pvio_unlikely(rc < 0)) {
			return rc;
		}
	}
	if (!d)
		rx_refill(q, false);
	if (got == 0 && d)
		return d;
	return (int)got;
}

int pvio_netfront_recv(struct pvio_netfront_queue *q,
		       struct pvio_netfront_frame *f, unsigned int n)
{
	return rx_batch(q, f, NULL, n);
}

int pvio_netfront_recv_zc(struct pvio_netfront_queue *q,
			  struct pvio_netfront_rxbuf *b, unsigned int n)
{
	return rx_batch(q, NULL, b, n);
}

int pvio_netfront_rx_release(struct pvio_netfront_queue *q,
			     const struct pvio_netfront_rxbuf *b,
			     unsigned int n)
{
	uint32_t pos, k;

	if (n == 0)
		return 0;
	pos = b[n - 1].pos_;
	for (k = 0; k < q->rx_out; k++)
		if (q->rx_out_end[(q->rx_out_head + k) & NF_MASK] == pos)
			break;
	if (k == q->rx_out)
		return -EINVAL;
	q->rx_out_head += k + 1;
	q->rx_out -= k + 1;
	q->rx_released = pos;
	rx_release_done(q);
	if (!q_dead(q))
		rx_refill(q, false);
	return 0;
}

/* ---- sleeping ------------------------------------------------------------ */

/* A whole packet waits in the stage (recv() stopped at a full batch).
 * Private memory only; rx_take() validates it when it is taken. */
static bool rx_staged_packet(const struct pvio_netfront_queue *q)
{
	uint32_t pos = q->rx_done, end = q->rx.rsp_cons;
	bool first = true;

	while (pos != end) {
		const struct netif_rx_response *r = &q->rx_stage[pos & NF_MASK];
		uint16_t flags = r->flags;

		pos++;
		if (first && (flags & NETRXF_extra_info)) {
			for (;;) {
				struct netif_extra_info ex;

				if (pos == end)
					return false;
				memcpy(&ex, &q->rx_stage[pos & NF_MASK],
				       sizeof(ex));
				pos++;
				if (!(ex.flags & XEN_NETIF_EXTRA_FLAG_MORE))
					break;
			}
		}
		first = false;
		if (!(flags & NETRXF_more_data))
			return true;
	}
	return false;
}

int pvio_netfront_arm(struct pvio_netfront_queue *q, unsigned int what)
{
	bool tx_seen = false, rx_seen = false;
	int port, ready = 0, d;

	/* Drain, then unmask, then the final checks below catch whatever
	 * was published meanwhile (xenevtchn's rule). */
	while ((port = pvio_evtchn_pending(q->plat)) > 0) {
		q->st.events++;
		if ((pvio_port_t)port == q->tx_port)
			tx_seen = true;
		if ((pvio_port_t)port == q->rx_port)
			rx_seen = true;
	}
	if (tx_seen)
		pvio_evtchn_unmask(q->plat, q->tx_port);
	if (rx_seen && q->rx_port != q->tx_port)
		pvio_evtchn_unmask(q->plat, q->rx_port);
	d = q_dead(q);
	if (d)
		return d;
	if (what & PVIO_NETFRONT_ARM_RX) {
		if (rx_staged_packet(q) ||
		    pvio_ring_front_final_check(&q->rx, 1))
			ready |= PVIO_NETFRONT_ARM_RX;
	}
	if (what & PVIO_NETFRONT_ARM_TX) {
		uint32_t inflight = pvio_ring_front_inflight(&q->tx);
		uint32_t ahead = inflight / 2 ? inflight / 2 : 1;

		/* woken once about half of what is in flight is answered:
		 * one notification frees a batch */
		if (inflight == 0 || pvio_ring_front_final_check(&q->tx, ahead))
			ready |= PVIO_NETFRONT_ARM_TX;
	}
	return ready;
}

int pvio_netfront_queue_fd(const struct pvio_netfront_queue *q)
{
	return q->wait.epfd;
}

void pvio_netfront_queue_stats(const struct pvio_netfront_queue *q,
			       struct pvio_netfront_stats *st)
{
	*st = q->st;
}
