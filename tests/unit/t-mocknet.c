// SPDX-License-Identifier: MIT
/*
 * The mock netif backend (see t-mocknet.h). One thread: xenstore watch
 * events, event channels and commands from the test through one poll().
 * It checks what the frontend sends as Linux netback does
 * (xenvif_tx_build_gops, xenvif_count_requests, xenvif_get_extras) and
 * records each violation; it serves rx as netback's rx.c does (data slot,
 * then extras, then more data; the response in the request's ring slot).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <pvio/gntio.h>
#include <pvio/netif.h>
#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "t-mocknet.h"

#define T_RING		256u
#define T_TXQ		(T_RING + T_NET_MAX_SLOTS)
#define T_PAGE		4096u

struct t_nq {
	struct pvio_ring_back tx, rx;
	void *tx_area, *rx_area;
	int tx_port, rx_port;		/* local; rx == tx if shared */
	bool dead;			/* the frontend broke this ring */
	/* consumed tx requests of a packet not yet complete */
	struct netif_tx_request txq[T_TXQ];
	unsigned int ntxq;
	bool rx_waiting;		/* short of rx buffers */
	bool rx_frozen;			/* rsp_prod left broken (RX_OVERFLOW) */
};

/* rx frames to deliver to one queue, under m->lock */
struct t_rxq {
	struct t_netpkt *head, *tail;
	unsigned int n;
};

struct t_mocknet {
	struct t_mocknet_cfg cfg;
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int cmdfd;
	bool started, stop;
	int start_rc;
	/* commands, under lock */
	bool cmd_close;
	enum t_nevil evil;
	unsigned int evil_after;
	struct t_netpkt *tx_head, *tx_tail;	/* for tx_pop */
	struct t_rxq rxq[T_NET_MAX_Q];
	struct t_mocknet_stats st;
	int state;				/* mirror of ours */
	/* thread-owned */
	struct pvio_platform *p;
	struct pvio_xs *x;
	struct pvio_xenbus *xb;
	char be[PVIO_XS_PATH_MAX];
	char fe[PVIO_XS_PATH_MAX];
	struct t_nq q[T_NET_MAX_Q];
	unsigned int nq;
	bool attached;
	bool fe_sg, fe_gso4, fe_gso6, fe_no_csum;
	struct pvio_gcopy gc;
	uint8_t *buf;
	uint64_t served;
};

static void __attribute__((format(printf, 2, 3)))
fe_error(struct t_mocknet *m, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&m->lock);
	m->st.errors++;
	va_start(ap, fmt);
	vsnprintf(m->st.last_error, sizeof(m->st.last_error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&m->lock);
}

#define ST_ADD(m, field, v)						\
	do {								\
		pthread_mutex_lock(&(m)->lock);				\
		(m)->st.field += (v);					\
		pthread_mutex_unlock(&(m)->lock);			\
	} while (0)

static void set_state(struct t_mocknet *m, enum pvio_xb_state s)
{
	char key[PVIO_XS_PATH_MAX + 8];
	int i;

	pvio_xenbus_switch(m->xb, s);
	if (m->cfg.dup_events) {
		/* the same value again: watch events without a change */
		snprintf(key, sizeof(key), "%s/state", m->be);
		for (i = 0; i < 2; i++)
			pvio_xs_printf(m->x, 0, key, "%d", (int)s);
	}
	pthread_mutex_lock(&m->lock);
	m->state = (int)pvio_xenbus_state(m->xb);
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

static int wr(struct t_mocknet *m, pvio_xs_tx_t tx, const char *k,
	      unsigned int v)
{
	char key[PVIO_XS_PATH_MAX + 64];

	snprintf(key, sizeof(key), "%s/%s", m->be, k);
	return pvio_xs_printf(m->x, tx, key, "%u", v);
}

/* netback_probe: every feature before InitWait, in one transaction. */
static int write_features(struct t_mocknet *m)
{
	const struct t_mocknet_cfg *c = &m->cfg;
	char key[PVIO_XS_PATH_MAX + 64];
	pvio_xs_tx_t tx;
	int rc, tries = 0;

	do {
		rc = pvio_xs_tx_start(m->x, &tx);
		if (rc)
			return rc;
		rc = wr(m, tx, "feature-rx-copy", !c->no_rx_copy);
		if (!rc)
			rc = wr(m, tx, "feature-rx-flip", 0);
		if (!rc)
			rc = wr(m, tx, "feature-sg", c->sg);
		if (!rc)
			rc = wr(m, tx, "feature-gso-tcpv4", c->gso4);
		if (!rc)
			rc = wr(m, tx, "feature-gso-tcpv6", c->gso6);
		if (!rc)
			rc = wr(m, tx, "feature-ipv6-csum-offload",
				c->ipv6_csum);
		if (!rc)
			rc = wr(m, tx, "feature-split-event-channels",
				c->split);
		if (!rc && c->max_queues) {
			rc = wr(m, tx, "multi-queue-max-queues", c->max_queues);
		} else if (!rc) {
			snprintf(key, sizeof(key), "%s/multi-queue-max-queues",
				 m->be);
			rc = pvio_xs_rm(m->x, tx, key);
		}
		if (rc) {
			pvio_xs_tx_end(m->x, tx, true);
			return rc;
		}
		rc = pvio_xs_tx_end(m->x, tx, false);
	} while (rc == -EAGAIN && ++tries < 50);
	return rc;
}

/* ---- connect / disconnect ------------------------------------------------ */

static void disconnect(struct t_mocknet *m)
{
	unsigned int i;

	if (!m->attached)
		return;
	for (i = 0; i < m->nq; i++) {
		struct t_nq *q = &m->q[i];

		if (q->rx_port > 0 && q->rx_port != q->tx_port)
			pvio_evtchn_close(m->p, (pvio_port_t)q->rx_port);
		if (q->tx_port > 0)
			pvio_evtchn_close(m->p, (pvio_port_t)q->tx_port);
		if (q->tx_area)
			pvio_gnt_unmap(m->p, q->tx_area, 1);
		if (q->rx_area)
			pvio_gnt_unmap(m->p, q->rx_area, 1);
		q->tx_area = q->rx_area = NULL;
		q->tx_port = q->rx_port = 0;
		q->ntxq = 0;
		q->dead = false;
		q->rx_waiting = false;
		q->rx_frozen = false;
	}
	pvio_gcopy_destroy(&m->gc);
	m->attached = false;
	ST_ADD(m, disconnects, 1);
}

static bool fe_flag(struct t_mocknet *m, const char *key)
{
	char path[PVIO_XS_PATH_MAX + 64];
	unsigned long v;

	snprintf(path, sizeof(path), "%s/%s", m->fe, key);
	return pvio_xs_read_uint_default(m->x, 0, path, 0, 1, 0, &v) == 0 && v;
}

static int read_uint(struct t_mocknet *m, const char *dir, const char *key,
		     unsigned long max, unsigned long *v)
{
	char path[2 * PVIO_XS_PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return pvio_xs_read_uint(m->x, 0, path, 0, max, v);
}

static int connect_queue(struct t_mocknet *m, unsigned int i, const char *dir,
			 bool *split)
{
	struct t_nq *q = &m->q[i];
	unsigned long txr, rxr, p1, p2;
	pvio_gref_t ref;
	int rc;

	rc = read_uint(m, dir, "tx-ring-ref", UINT32_MAX, &txr);
	if (!rc)
		rc = read_uint(m, dir, "rx-ring-ref", UINT32_MAX, &rxr);
	if (rc) {
		fe_error(m, "%s: tx-ring-ref/rx-ring-ref: %s", dir,
			 strerror(-rc));
		return rc;
	}
	if (read_uint(m, dir, "event-channel-tx", 1u << 17, &p1) == 0) {
		rc = read_uint(m, dir, "event-channel-rx", 1u << 17, &p2);
		*split = true;
	} else {
		rc = read_uint(m, dir, "event-channel", 1u << 17, &p1);
		p2 = p1;
	}
	if (rc) {
		fe_error(m, "%s: event channels: %s", dir, strerror(-rc));
		return rc;
	}
	ref = (pvio_gref_t)txr;
	rc = pvio_gnt_map(m->p, m->cfg.fe, 1, &ref, true, &q->tx_area);
	if (rc)
		goto fail;
	ref = (pvio_gref_t)rxr;
	rc = pvio_gnt_map(m->p, m->cfg.fe, 1, &ref, true, &q->rx_area);
	if (rc)
		goto fail;
	rc = pvio_netif_tx_back_attach(&q->tx, q->tx_area, 1);
	if (!rc)
		rc = pvio_netif_rx_back_attach(&q->rx, q->rx_area, 1);
	if (rc)
		goto fail;
	rc = pvio_evtchn_bind(m->p, m->cfg.fe, (pvio_port_t)p1);
	if (rc < 0)
		goto fail;
	q->tx_port = q->rx_port = rc;
	if (p2 != p1) {
		rc = pvio_evtchn_bind(m->p, m->cfg.fe, (pvio_port_t)p2);
		if (rc < 0)
			goto fail;
		q->rx_port = rc;
	}
	return 0;
fail:
	fe_error(m, "%s: cannot map or bind: %s", dir, strerror(-rc));
	return rc;
}

static int connect_fe(struct t_mocknet *m)
{
	char dir[PVIO_XS_PATH_MAX + 32], key[PVIO_XS_PATH_MAX + 32];
	unsigned long nq = 1;
	bool split = false, mq;
	unsigned int i;
	int rc;

	snprintf(key, sizeof(key), "%s/multi-queue-num-queues", m->fe);
	mq = pvio_xs_exists(m->x, 0, key);
	if (mq) {
		unsigned int max = m->cfg.max_queues ? m->cfg.max_queues : 1;

		rc = pvio_xs_read_uint(m->x, 0, key, 1, max, &nq);
		if (rc) {
			fe_error(m, "multi-queue-num-queues: %s",
				 strerror(-rc));
			return rc;
		}
	}
	m->fe_sg = fe_flag(m, "feature-sg");
	m->fe_gso4 = fe_flag(m, "feature-gso-tcpv4");
	m->fe_gso6 = fe_flag(m, "feature-gso-tcpv6");
	m->fe_no_csum = fe_flag(m, "feature-no-csum-offload");
	pthread_mutex_lock(&m->lock);
	m->st.mq_key = mq;
	m->st.fe_rx_copy = fe_flag(m, "request-rx-copy");
	m->st.fe_rx_notify = fe_flag(m, "feature-rx-notify");
	m->st.fe_sg = m->fe_sg;
	m->st.fe_gso4 = m->fe_gso4;
	m->st.fe_gso6 = m->fe_gso6;
	m->st.fe_ipv6_csum = fe_flag(m, "feature-ipv6-csum-offload");
	m->st.fe_no_csum = m->fe_no_csum;
	pthread_mutex_unlock(&m->lock);
	if (!m->st.fe_rx_copy)
		fe_error(m, "request-rx-copy is not 1");

	m->nq = (unsigned int)nq;
	for (i = 0; i < T_NET_MAX_Q; i++) {
		memset(&m->q[i].tx, 0, sizeof(m->q[i].tx));
		memset(&m->q[i].rx, 0, sizeof(m->q[i].rx));
		m->q[i].tx_area = m->q[i].rx_area = NULL;
		m->q[i].tx_port = m->q[i].rx_port = 0;
		m->q[i].ntxq = 0;
		m->q[i].dead = m->q[i].rx_waiting = false;
	}
	m->attached = true;	/* disconnect() undoes what was done */
	rc = pvio_gcopy_init(&m->gc, m->p, m->cfg.fe, 64);
	if (rc) {
		m->nq = 0;
		m->attached = false;
		return rc;
	}
	for (i = 0; i < m->nq; i++) {
		if (m->nq == 1)
			snprintf(dir, sizeof(dir), "%s", m->fe);
		else
			snprintf(dir, sizeof(dir), "%s/queue-%u", m->fe, i);
		rc = connect_queue(m, i, dir, &split);
		if (rc) {
			disconnect(m);
			return rc;
		}
	}
	pthread_mutex_lock(&m->lock);
	m->st.connects++;
	m->st.nr_queues = m->nq;
	m->st.split = split;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static void fe_changed(struct pvio_xenbus *xb, enum pvio_xb_state fe,
		       void *opaque)
{
	struct t_mocknet *m = opaque;
	enum pvio_xb_state me = pvio_xenbus_state(xb);

	switch (fe) {
	case PVIO_XB_INITIALISING:
		/* frontend_changed: a closed device comes back */
		if (me == PVIO_XB_CLOSED && write_features(m) == 0)
			set_state(m, PVIO_XB_INITWAIT);
		break;
	case PVIO_XB_CONNECTED:
		if (m->attached || me != PVIO_XB_INITWAIT)
			break;
		if (connect_fe(m) == 0)
			set_state(m, PVIO_XB_CONNECTED);
		else
			pvio_xenbus_fatal(xb, -EINVAL, "cannot connect");
		break;
	case PVIO_XB_CLOSING:
		/* from Closed too, as netback's set_backend_state(): a
		 * frontend that went Closed -> Initialising -> Closing
		 * faster than its events were read is seen Closing here
		 * while we are Closed, and waits for our Closing */
		disconnect(m);
		set_state(m, PVIO_XB_CLOSING);
		break;
	case PVIO_XB_CLOSED:
		disconnect(m);
		set_state(m, PVIO_XB_CLOSED);
		break;
	default:
		break;
	}
}

/* ---- tx: the frontend's packets ------------------------------------------ */

static void rsp_tx(struct t_nq *q, uint16_t id, int16_t st)
{
	struct netif_tx_response *r = pvio_netif_tx_back_rsp(&q->tx);

	r->id = id;
	r->status = st;
	pvio_ring_back_rsp_commit(&q->tx);
}

static enum t_nevil take_evil(struct t_mocknet *m, bool tx)
{
	enum t_nevil e;

	pthread_mutex_lock(&m->lock);
	e = m->evil;
	if (e != T_NEVIL_NONE &&
	    ((e <= T_NEVIL_TX_NULL) == tx) && m->served >= m->evil_after)
		m->evil = T_NEVIL_NONE;	/* once */
	else
		e = T_NEVIL_NONE;
	pthread_mutex_unlock(&m->lock);
	return e;
}

static void deliver_tx(struct t_mocknet *m, struct t_netpkt *p)
{
	if (m->cfg.on_tx) {
		m->cfg.on_tx(m, p, m->cfg.opaque);
		free(p->data);
		free(p);
		return;
	}
	pthread_mutex_lock(&m->lock);
	if (m->tx_tail)
		m->tx_tail->next = p;
	else
		m->tx_head = p;
	m->tx_tail = p;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

/*
 * The packet at the head of q->txq: the number of slots it used (answered),
 * 0 when it is incomplete, -1 when the frontend broke the ring.
 */
static int tx_packet(struct t_mocknet *m, unsigned int qi)
{
	struct t_nq *q = &m->q[qi];
	struct netif_tx_request *r = q->txq;
	unsigned int n = q->ntxq, i = 1, d, k, extras = 0;
	bool is_data[T_NET_MAX_SLOTS + 8] = { true };
	struct pvio_net_offload off = { 0 };
	uint32_t rest = 0, own, pos;
	struct t_netpkt *p;
	uint16_t flags;
	enum t_nevil evil;
	int fails = 0;

	if (n == 0)
		return 0;
	if (r[0].flags & NETTXF_extra_info) {
		for (;;) {
			struct netif_extra_info ex;

			if (i >= n)
				return 0;
			if (i > 4) {
				fe_error(m, "tx: too many extras");
				return -1;
			}
			memcpy(&ex, &r[i], sizeof(ex));
			is_data[i] = false;
			i++;
			extras++;
			if (ex.type == XEN_NETIF_EXTRA_TYPE_GSO) {
				unsigned int t = ex.u.gso.type;

				if (ex.u.gso.size == 0 ||
				    (t != XEN_NETIF_GSO_TYPE_TCPV4 &&
				     t != XEN_NETIF_GSO_TYPE_TCPV6)) {
					fe_error(m, "tx: bad GSO (size %u "
						 "type %u)", ex.u.gso.size, t);
					return -1;
				}
				off.gso_type = ex.u.gso.type;
				off.gso_size = ex.u.gso.size;
			} else if (ex.type == 0 ||
				   ex.type >= XEN_NETIF_EXTRA_TYPE_MAX) {
				fe_error(m, "tx: extra type %u", ex.type);
				return -1;
			}
			if (!(ex.flags & XEN_NETIF_EXTRA_FLAG_MORE))
				break;
		}
	}
	/* data slots after the first (xenvif_count_requests) */
	flags = r[0].flags;
	d = 1;
	while (flags & NETTXF_more_data) {
		if (i >= n)
			return 0;
		if (d >= XEN_NETIF_NR_SLOTS_MIN) {
			fe_error(m, "tx: more than %u data slots",
				 XEN_NETIF_NR_SLOTS_MIN);
			return -1;
		}
		if (r[i].size > r[0].size - rest) {
			fe_error(m, "tx: slot %u size %u > what is left of "
				 "%u", d, r[i].size, r[0].size);
			return -1;
		}
		rest += r[i].size;
		is_data[i] = true;
		flags = r[i].flags;
		i++;
		d++;
	}
	own = r[0].size - rest;
	if (r[0].size < 14 || own < 14) {
		fe_error(m, "tx: first slot %u bytes (packet %u): less than "
			 "ETH_HLEN", own, r[0].size);
		return -1;
	}
	p = calloc(1, sizeof(*p));
	p->data = malloc(r[0].size);
	p->queue = qi;
	p->len = r[0].size;
	p->slots = d;
	p->extras = extras;
	p->first_flags = r[0].flags;
	p->first_size = r[0].size;
	if (r[0].flags & NETTXF_csum_blank)
		off.csum_blank = true;
	if (r[0].flags & (NETTXF_data_validated | NETTXF_csum_blank))
		off.data_validated = true;
	p->off = off;
	/* copy every data slot out (from_guest), one batch */
	pvio_gcopy_reset(&m->gc);
	for (k = 0, d = 0, pos = 0; k < i; k++) {
		uint32_t len = k == 0 ? own : r[k].size;

		if (!is_data[k])
			continue;
		if (r[k].offset + len > T_PAGE) {
			fe_error(m, "tx: slot %u offset %u + size %u > 4096", d,
				 r[k].offset, len);
			free(p->data);
			free(p);
			return -1;
		}
		p->seg_off[d] = r[k].offset;
		p->seg_len[d] = (uint16_t)len;
		if (len && pvio_gcopy_from_guest(&m->gc, r[k].gref, r[k].offset,
						 len, p->data + pos) < 0)
			fails++;
		pos += len;
		d++;
	}
	if (pvio_gcopy_flush(&m->gc) != 0)
		fails++;
	/* one response per slot, NULL for extras (make_tx_response) */
	evil = take_evil(m, true);
	for (k = 0; k < i; k++) {
		if (!is_data[k]) {
			rsp_tx(q, 0xffff, NETIF_RSP_NULL);
			continue;
		}
		if (k == 0 && evil == T_NEVIL_TX_BAD_ID)
			rsp_tx(q, 0xffff, NETIF_RSP_OKAY);
		else if (k == 0 && evil == T_NEVIL_TX_INACTIVE_ID)
			rsp_tx(q, (uint16_t)((r[k].id + 128) & 255),
			       NETIF_RSP_OKAY);
		else if (k == 0 && evil == T_NEVIL_TX_NULL)
			rsp_tx(q, r[k].id, NETIF_RSP_NULL);
		else
			rsp_tx(q, r[k].id, fails ? NETIF_RSP_ERROR
						 : NETIF_RSP_OKAY);
	}
	if (fails) {
		fe_error(m, "tx: grant copy failed");
		free(p->data);
		free(p);
		return (int)i;
	}
	pthread_mutex_lock(&m->lock);
	m->st.tx_packets++;
	m->st.tx_slots += i;
	if (off.gso_type)
		m->st.tx_gso++;
	m->served++;
	pthread_mutex_unlock(&m->lock);
	deliver_tx(m, p);
	return (int)i;
}

/* Return the number of requests consumed. */
static int serve_tx(struct t_mocknet *m, unsigned int qi)
{
	struct t_nq *q = &m->q[qi];
	int n, used, total = 0;

	for (;;) {
		n = pvio_netif_tx_back_consume(&q->tx, &q->txq[q->ntxq],
					       T_TXQ - q->ntxq);
		if (n < 0) {
			fe_error(m, "tx ring: %s",
				 pvio_ring_halt_str(q->tx.halted));
			q->dead = true;
			break;
		}
		q->ntxq += (unsigned int)n;
		total += n;
		while ((used = tx_packet(m, qi)) > 0) {
			q->ntxq -= (unsigned int)used;
			memmove(q->txq, q->txq + used,
				q->ntxq * sizeof(q->txq[0]));
		}
		if (used < 0) {
			q->dead = true;
			break;
		}
		if (pvio_ring_back_push(&q->tx)) {
			pvio_evtchn_notify(m->p, (pvio_port_t)q->tx_port);
			ST_ADD(m, notifies_sent, 1);
		}
		if (n == 0 && !pvio_ring_back_final_check(&q->tx, 1))
			break;
	}
	if (pvio_ring_back_push(&q->tx))
		pvio_evtchn_notify(m->p, (pvio_port_t)q->tx_port);
	return total;
}

/* ---- rx: frames for the frontend ----------------------------------------- */

static struct t_netpkt *rx_peek(struct t_mocknet *m, unsigned int qi)
{
	struct t_netpkt *p;

	pthread_mutex_lock(&m->lock);
	p = m->rxq[qi].head;
	pthread_mutex_unlock(&m->lock);
	return p;
}

static void rx_pop(struct t_mocknet *m, unsigned int qi)
{
	struct t_rxq *r = &m->rxq[qi];
	struct t_netpkt *p;

	pthread_mutex_lock(&m->lock);
	p = r->head;
	r->head = p->next;
	if (!r->head)
		r->tail = NULL;
	r->n--;
	pthread_mutex_unlock(&m->lock);
	free(p->data);
	free(p);
}

static void rsp_rx(struct t_nq *q, uint16_t id, uint16_t offset, uint16_t flags,
		   int16_t status)
{
	struct netif_rx_response *r = pvio_netif_rx_back_rsp(&q->rx);

	r->id = id;
	r->offset = offset;
	r->flags = flags;
	r->status = status;
	pvio_ring_back_rsp_commit(&q->rx);
}

static void rx_push_notify(struct t_mocknet *m, struct t_nq *q)
{
	if (pvio_ring_back_push(&q->rx)) {
		pvio_evtchn_notify(m->p, (pvio_port_t)q->rx_port);
		ST_ADD(m, notifies_sent, 1);
	}
}

/* Take @need requests (they are there). */
static int rx_take_reqs(struct t_nq *q, struct netif_rx_request *reqs,
			unsigned int need)
{
	unsigned int got = 0;

	while (got < need) {
		int n = pvio_netif_rx_back_consume(&q->rx, reqs + got,
						   need - got);

		if (n <= 0)
			return -1;
		got += (unsigned int)n;
	}
	return 0;
}

/*
 * @need requests there? Else ask to be notified when they are (netback's
 * xenvif_rx_ring_slots_available) and look again. pvio_ring_back_final_
 * check() does not do for this: it returns at once, without setting the
 * event index, when a few requests (but too few) are there.
 */
static bool rx_enough(struct t_nq *q, unsigned int need)
{
	if (pvio_ring_back_unconsumed(&q->rx) >= need)
		return true;
	__atomic_store_n(&q->rx.sring->req_event, q->rx.req_cons + need,
			 __ATOMIC_RELAXED);
	/* the frontend sees the event index before we look again */
	pvio_mb();
	return pvio_ring_back_unconsumed(&q->rx) >= need;
}

/* Deliver what fits. Return true if buffers we were short of came. */
static bool serve_rx(struct t_mocknet *m, unsigned int qi)
{
	struct netif_rx_request reqs[T_NET_MAX_SLOTS + 8];
	struct t_nq *q = &m->q[qi];
	uint32_t per = T_PAGE - m->cfg.rx_offset;
	bool unblocked = false;
	struct t_netpkt *p;

	while (!q->rx_frozen && (p = rx_peek(m, qi))) {
		unsigned int ds, need, k, r, fails = 0;
		bool gso = p->off.gso_type != XEN_NETIF_GSO_TYPE_NONE;
		uint16_t off = (uint16_t)m->cfg.rx_offset, fl = 0;
		uint32_t left, pos;
		enum t_nevil evil;
		bool long_chain;

		ds = p->len ? (p->len + per - 1) / per : 1;
		if (ds > T_NET_MAX_SLOTS || (ds > 1 && !m->fe_sg) ||
		    (gso && !((p->off.gso_type == XEN_NETIF_GSO_TYPE_TCPV4 &&
			       m->fe_gso4) ||
			      (p->off.gso_type == XEN_NETIF_GSO_TYPE_TCPV6 &&
			       m->fe_gso6)))) {
			/* a real netback would segment; we drop */
			ST_ADD(m, rx_dropped, 1);
			rx_pop(m, qi);
			continue;
		}
		if (p->off.csum_blank && m->fe_no_csum) {
			if (pvio_net_csum_fill(p->data, p->len) == 0) {
				p->off.csum_blank = false;
				p->off.data_validated = true;
			}
		}
		pthread_mutex_lock(&m->lock);
		long_chain = m->evil == T_NEVIL_RX_LONG_CHAIN &&
			     m->served >= m->evil_after;
		pthread_mutex_unlock(&m->lock);
		need = ds + gso;
		if (long_chain)
			need = 30;
		if (!rx_enough(q, need)) {
			/* woken by the frontend's notification once it
			 * posted enough (feature-rx-notify) */
			if (!q->rx_waiting)
				ST_ADD(m, rx_waits, 1);
			q->rx_waiting = true;
			break;
		}
		if (q->rx_waiting)
			unblocked = true;
		q->rx_waiting = false;
		if (rx_take_reqs(q, reqs, need)) {
			fe_error(m, "rx ring: %s",
				 pvio_ring_halt_str(q->rx.halted));
			q->dead = true;
			return unblocked;
		}
		evil = take_evil(m, false);
		if (evil == T_NEVIL_RX_LONG_CHAIN) {
			for (k = 0; k < need; k++)
				rsp_rx(q, reqs[k].id, 0, NETRXF_more_data, 10);
			rx_push_notify(m, q);
			return unblocked;
		}
		/* data slot 0, the extra, then the rest (xenvif_rx_skb) */
		pvio_gcopy_reset(&m->gc);
		for (k = 0, r = 0, left = p->len, pos = 0; k < ds; k++) {
			uint32_t chunk = left < per ? left : per;

			if (k == 1 && gso)
				r++;	/* the extra's request: no data */
			if (chunk && pvio_gcopy_to_guest(&m->gc, reqs[r].gref,
							 off, chunk,
							 p->data + pos) < 0)
				fails++;
			pos += chunk;
			left -= chunk;
			r++;
		}
		if (pvio_gcopy_flush(&m->gc) != 0)
			fails++;
		if (p->off.csum_blank)
			fl = NETRXF_csum_blank | NETRXF_data_validated;
		else if (p->off.data_validated)
			fl = NETRXF_data_validated;
		for (k = 0, r = 0, left = p->len; k < ds; k++) {
			uint32_t chunk = left < per ? left : per;
			uint16_t f = (uint16_t)(k == 0 ? fl : 0);
			uint16_t id = reqs[r].id, o = off;
			int16_t st = fails ? -1 : (int16_t)chunk;

			if (k + 1 < ds)
				f |= NETRXF_more_data;
			if (k == 0 && gso)
				f |= NETRXF_extra_info;
			if (k == 0 && evil == T_NEVIL_RX_BAD_OFFSET)
				o = 4000;
			if (k == 0 && evil == T_NEVIL_RX_BAD_SIZE)
				st = 5000;
			if (k == 0 && evil == T_NEVIL_RX_BAD_ID)
				id = (uint16_t)(id ^ 1);
			rsp_rx(q, id, o, f, st);
			r++;
			if (k == 0 && gso) {
				struct netif_extra_info *ex =
					(struct netif_extra_info *)
						pvio_netif_rx_back_rsp(&q->rx);

				ex->type = XEN_NETIF_EXTRA_TYPE_GSO;
				ex->flags = 0;
				ex->u.gso.size = p->off.gso_size;
				ex->u.gso.type = p->off.gso_type;
				ex->u.gso.pad = 0;
				ex->u.gso.features = 0;
				pvio_ring_back_rsp_commit(&q->rx);
				r++;
			}
			if (k == 0 && evil == T_NEVIL_RX_HALF && ds > 1) {
				/* half a packet, for a while */
				rx_push_notify(m, q);
				poll(NULL, 0, 50);
			}
			left -= chunk;
		}
		rx_push_notify(m, q);
		if (evil == T_NEVIL_RX_OVERFLOW) {
			/* more than a ring past what we answered: beyond
			 * whatever the frontend has posted (+100 was not,
			 * with 100 rx buffers or more posted) */
			__atomic_store_n(&q->rx.sring->rsp_prod,
					 q->rx.rsp_pushed + q->rx.nr_ents + 1,
					 __ATOMIC_RELEASE);
			pvio_evtchn_notify(m->p, (pvio_port_t)q->rx_port);
			/* and it stays: the next packet's push would write a
			 * sane index over it before the frontend looked */
			q->rx_frozen = true;
		}
		pthread_mutex_lock(&m->lock);
		m->st.rx_packets++;
		m->st.rx_slots += need;
		if (gso)
			m->st.rx_gso++;
		m->served++;
		pthread_mutex_unlock(&m->lock);
		rx_pop(m, qi);
	}
	return unblocked;
}

/* ---- the thread ---------------------------------------------------------- */

static void drain_events(struct t_mocknet *m)
{
	int port;

	while ((port = pvio_evtchn_pending(m->p)) > 0)
		pvio_evtchn_unmask(m->p, (pvio_port_t)port);
}

/* Serve every live queue; return true if work showed up that needed the
 * frontend's notification. */
static bool serve_all(struct t_mocknet *m)
{
	bool work = false;
	unsigned int i;

	if (!m->attached)
		return false;
	for (i = 0; i < m->nq; i++) {
		if (m->q[i].dead)
			continue;
		if (serve_tx(m, i) > 0)
			work = true;
		if (!m->q[i].dead && serve_rx(m, i))
			work = true;
	}
	return work;
}

static void *mock_main(void *arg)
{
	struct t_mocknet *m = arg;
	int rc;

	rc = pvio_platform_open(&m->p, m->cfg.spec, 0, 0);
	if (!rc)
		rc = pvio_xs_open(&m->x, m->p);
	if (!rc)
		rc = pvio_xb_backend_path(m->be, 0,
					  m->cfg.type ? m->cfg.type : "vif",
					  m->cfg.fe, m->cfg.devid);
	if (!rc)
		rc = pvio_xb_frontend_path(m->fe, m->cfg.fe, "vif",
					   m->cfg.devid);
	if (!rc)
		rc = pvio_xenbus_open(&m->xb, m->x, m->be, "frontend",
				      "frontend-id", fe_changed, m);
	if (!rc)
		rc = write_features(m);
	if (!rc)
		set_state(m, PVIO_XB_INITWAIT);
	pthread_mutex_lock(&m->lock);
	m->start_rc = rc;
	m->started = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (rc)
		return NULL;

	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = m->cmdfd, .events = POLLIN },
			{ .fd = pvio_xs_fd(m->x), .events = POLLIN },
			{ .fd = pvio_evtchn_fd(m->p), .events = POLLIN },
		};
		bool stop, close_cmd, work;
		uint64_t v;
		int n;

		n = poll(pfd, 3, 200);
		if (pfd[0].revents && read(m->cmdfd, &v, sizeof(v)) < 0) {
			/* spurious */
		}
		pthread_mutex_lock(&m->lock);
		stop = m->stop;
		close_cmd = m->cmd_close;
		m->cmd_close = false;
		pthread_mutex_unlock(&m->lock);
		if (stop)
			break;
		if (close_cmd)
			set_state(m, PVIO_XB_CLOSING);
		if (pfd[1].revents)
			pvio_xs_dispatch(m->x);
		if (pfd[2].revents)
			drain_events(m);
		work = serve_all(m);
		if (n == 0 && work) {
			/* Found work on a timeout: a missed notification,
			 * unless its event is just late. */
			struct pollfd e = { .fd = pvio_evtchn_fd(m->p),
					    .events = POLLIN };

			if (poll(&e, 1, 100) == 0)
				ST_ADD(m, missed_notify, 1);
		}
	}
	disconnect(m);
	return NULL;
}

int t_mocknet_start(struct t_mocknet **out, const struct t_mocknet_cfg *cfg)
{
	struct t_mocknet *m = calloc(1, sizeof(*m));
	int rc;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	m->evil = cfg->evil;
	m->evil_after = cfg->evil_after;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	m->cmdfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (m->cmdfd < 0) {
		free(m);
		return -errno;
	}
	rc = pthread_create(&m->th, NULL, mock_main, m);
	if (rc) {
		close(m->cmdfd);
		free(m);
		return -rc;
	}
	pthread_mutex_lock(&m->lock);
	while (!m->started)
		pthread_cond_wait(&m->cond, &m->lock);
	rc = m->start_rc;
	pthread_mutex_unlock(&m->lock);
	if (rc) {
		pthread_join(m->th, NULL);
		pvio_xenbus_close(m->xb);
		pvio_xs_close(m->x);
		pvio_platform_close(m->p);
		close(m->cmdfd);
		free(m);
		return rc;
	}
	*out = m;
	return 0;
}

static void kick(struct t_mocknet *m)
{
	uint64_t one = 1;

	if (write(m->cmdfd, &one, sizeof(one)) < 0) {
		/* saturated: it will wake */
	}
}

static void free_list(struct t_netpkt *p)
{
	while (p) {
		struct t_netpkt *n = p->next;

		free(p->data);
		free(p);
		p = n;
	}
}

void t_mocknet_stop(struct t_mocknet *m)
{
	unsigned int i;

	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_mutex_unlock(&m->lock);
	kick(m);
	pthread_join(m->th, NULL);
	pvio_xenbus_close(m->xb);
	pvio_xs_close(m->x);
	pvio_platform_close(m->p);
	close(m->cmdfd);
	free_list(m->tx_head);
	for (i = 0; i < T_NET_MAX_Q; i++)
		free_list(m->rxq[i].head);
	free(m);
}

void t_mocknet_stats(struct t_mocknet *m, struct t_mocknet_stats *st)
{
	pthread_mutex_lock(&m->lock);
	*st = m->st;
	pthread_mutex_unlock(&m->lock);
}

int t_mocknet_state(struct t_mocknet *m)
{
	int s;

	pthread_mutex_lock(&m->lock);
	s = m->state;
	pthread_mutex_unlock(&m->lock);
	return s;
}

int t_mocknet_wait_state(struct t_mocknet *m, int st, int ms)
{
	struct timespec ts;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&m->lock);
	while (m->state != st && rc == 0)
		rc = pthread_cond_timedwait(&m->cond, &m->lock, &ts);
	rc = m->state == st ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

void t_mocknet_close(struct t_mocknet *m)
{
	pthread_mutex_lock(&m->lock);
	m->cmd_close = true;
	pthread_mutex_unlock(&m->lock);
	kick(m);
}

void t_mocknet_set_evil(struct t_mocknet *m, enum t_nevil evil,
			unsigned int after)
{
	pthread_mutex_lock(&m->lock);
	m->evil = evil;
	m->evil_after = (unsigned int)m->served + after;
	pthread_mutex_unlock(&m->lock);
	kick(m);
}

int t_mocknet_rx_push(struct t_mocknet *m, unsigned int qi, const void *data,
		      uint32_t len, const struct pvio_net_offload *off)
{
	struct t_netpkt *p;
	struct t_rxq *q;

	if (qi >= T_NET_MAX_Q)
		return -EINVAL;
	q = &m->rxq[qi];
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->data = malloc(len ? len : 1);
	if (!p->data) {
		free(p);
		return -ENOMEM;
	}
	memcpy(p->data, data, len);
	p->len = len;
	p->queue = qi;
	if (off)
		p->off = *off;
	pthread_mutex_lock(&m->lock);
	if (m->cfg.rx_queue_max && q->n >= m->cfg.rx_queue_max) {
		m->st.rx_dropped++;
		pthread_mutex_unlock(&m->lock);
		free(p->data);
		free(p);
		return -ENOBUFS;
	}
	if (q->tail)
		q->tail->next = p;
	else
		q->head = p;
	q->tail = p;
	q->n++;
	pthread_mutex_unlock(&m->lock);
	kick(m);
	return 0;
}

unsigned int t_mocknet_nr_queues(struct t_mocknet *m)
{
	unsigned int n;

	pthread_mutex_lock(&m->lock);
	n = m->st.connects > m->st.disconnects ? m->st.nr_queues : 0;
	pthread_mutex_unlock(&m->lock);
	return n;
}

unsigned int t_mocknet_rx_pending(struct t_mocknet *m)
{
	unsigned int i, n = 0;

	pthread_mutex_lock(&m->lock);
	for (i = 0; i < T_NET_MAX_Q; i++)
		n += m->rxq[i].n;
	pthread_mutex_unlock(&m->lock);
	return n;
}

int t_mocknet_tx_pop(struct t_mocknet *m, struct t_netpkt *out, int ms)
{
	struct timespec ts;
	struct t_netpkt *p;
	int rc = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&m->lock);
	while (!m->tx_head && rc == 0)
		rc = pthread_cond_timedwait(&m->cond, &m->lock, &ts);
	p = m->tx_head;
	if (p) {
		m->tx_head = p->next;
		if (!m->tx_head)
			m->tx_tail = NULL;
	}
	pthread_mutex_unlock(&m->lock);
	if (!p)
		return -ETIMEDOUT;
	*out = *p;
	out->next = NULL;
	free(p);
	return 0;
}

void t_netpkt_free(struct t_netpkt *p)
{
	free(p->data);
	p->data = NULL;
}
