// SPDX-License-Identifier: MIT
/*
 * The mock blkif backend (see t-mockblk.h). One thread: xenstore watch
 * events, event channels and commands from the test through one poll().
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pvio/gntio.h>
#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "t-mockblk.h"

#define T_MAX_Q		16
#define T_MAX_HELD	512

struct t_held {
	uint64_t id;
	uint8_t op;
};

struct t_mq {
	struct pvio_ring_back ring;
	void *area;
	unsigned int pages;
	int port;
	struct t_held held[T_MAX_HELD];
	unsigned int nheld;
	uint64_t last_id;
	uint8_t last_op;
};

struct t_mockblk {
	struct t_mockblk_cfg cfg;
	pthread_t th;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int cmdfd;
	bool started, stop;
	int start_rc;
	/* commands, under lock */
	bool cmd_close;
	uint64_t cmd_resize;
	/* thread-owned */
	struct pvio_platform *p;
	struct pvio_xs *x;
	struct pvio_xenbus *xb;
	char be[PVIO_XS_PATH_MAX];
	char fe[PVIO_XS_PATH_MAX];
	struct t_mq q[T_MAX_Q];
	unsigned int nq;
	bool attached;
	struct pvio_gcopy gc;
	char *buf;
	size_t buflen;
	uint64_t served;
	uint8_t *seen;			/* [65536]: grant refs seen */
	int state;			/* mirror of our state, under lock */
	enum t_evil evil;
	unsigned int evil_after;
	struct t_mockblk_stats st;	/* under lock */
};

static void __attribute__((format(printf, 2, 3)))
fe_error(struct t_mockblk *m, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&m->lock);
	m->st.errors++;
	va_start(ap, fmt);
	vsnprintf(m->st.last_error, sizeof(m->st.last_error), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&m->lock);
}

/* Count the distinct pages a frontend hands us (a persistent pool: few). */
static void saw_gref(struct t_mockblk *m, pvio_gref_t ref)
{
	uint32_t i = ref & 0xffff;

	if (m->seen[i])
		return;
	m->seen[i] = 1;
	pthread_mutex_lock(&m->lock);
	m->st.distinct_grefs++;
	pthread_mutex_unlock(&m->lock);
}

static void set_state(struct t_mockblk *m, enum pvio_xb_state s)
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
	m->state = s;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
}

static int wr(struct t_mockblk *m, pvio_xs_tx_t tx, const char *k,
	      unsigned long long v)
{
	char key[PVIO_XS_PATH_MAX + 64];

	snprintf(key, sizeof(key), "%s/%s", m->be, k);
	return pvio_xs_printf(m->x, tx, key, "%llu", v);
}

static int write_features(struct t_mockblk *m)
{
	const struct t_mockblk_cfg *c = &m->cfg;
	pvio_xs_tx_t tx;
	int rc, tries = 0;

	do {
		rc = pvio_xs_tx_start(m->x, &tx);
		if (rc)
			return rc;
		rc = wr(m, tx, "max-ring-page-order", c->max_ring_order);
		if (!rc && c->max_queues)
			rc = wr(m, tx, "multi-queue-max-queues", c->max_queues);
		if (!rc && c->max_indirect)
			rc = wr(m, tx, "feature-max-indirect-segments",
				c->max_indirect);
		if (!rc && c->flush)
			rc = wr(m, tx, "feature-flush-cache", 1);
		if (!rc && c->barrier)
			rc = wr(m, tx, "feature-barrier", 1);
		if (!rc && c->discard) {
			rc = wr(m, tx, "feature-discard", 1);
			if (!rc)
				rc = wr(m, tx, "discard-granularity",
					c->discard_gran ? c->discard_gran
							: c->sector_size);
			if (!rc)
				rc = wr(m, tx, "discard-alignment",
					c->discard_align);
			if (!rc && c->discard_secure)
				rc = wr(m, tx, "discard-secure", 1);
		}
		if (!rc)
			rc = wr(m, tx, "feature-persistent", 1);
		if (rc) {
			pvio_xs_tx_end(m->x, tx, true);
			return rc;
		}
		rc = pvio_xs_tx_end(m->x, tx, false);
	} while (rc == -EAGAIN && ++tries < 100);
	return rc;
}

static int write_disk(struct t_mockblk *m)
{
	const struct t_mockblk_cfg *c = &m->cfg;
	pvio_xs_tx_t tx;
	int rc, tries = 0;

	do {
		rc = pvio_xs_tx_start(m->x, &tx);
		if (rc)
			return rc;
		rc = wr(m, tx, "sectors", c->sectors);
		if (!rc)
			rc = wr(m, tx, "info",
				c->readonly ? VDISK_READONLY : 0);
		if (!rc)
			rc = wr(m, tx, "sector-size", c->sector_size);
		if (!rc)
			rc = wr(m, tx, "physical-sector-size", c->sector_size);
		if (rc) {
			pvio_xs_tx_end(m->x, tx, true);
			return rc;
		}
		rc = pvio_xs_tx_end(m->x, tx, false);
	} while (rc == -EAGAIN && ++tries < 100);
	return rc;
}

static void detach(struct t_mockblk *m)
{
	unsigned int i;

	if (!m->attached)
		return;
	for (i = 0; i < m->nq; i++) {
		struct t_mq *q = &m->q[i];

		if (q->port > 0)
			pvio_evtchn_close(m->p, (pvio_port_t)q->port);
		if (q->area)
			pvio_gnt_unmap(m->p, q->area, q->pages);
		q->area = NULL;
		q->port = 0;
		q->nheld = 0;
	}
	m->nq = 0;
	m->attached = false;
	pthread_mutex_lock(&m->lock);
	m->st.disconnects++;
	m->st.held = 0;
	pthread_mutex_unlock(&m->lock);
}

static int attach(struct t_mockblk *m)
{
	char dir[PVIO_XS_PATH_MAX + 16], key[PVIO_XS_PATH_MAX + 16], *proto;
	unsigned int nq, i;
	pvio_gref_t refs[16];
	pvio_port_t port;
	int rc, n;

	nq = m->cfg.max_queues ? m->cfg.max_queues : 1;
	rc = pvio_xb_read_queues(m->x, m->fe, nq, &nq);
	if (rc)
		return rc;
	if (pvio_xb_read_protocol(m->x, m->fe) < 0)
		return -EPROTONOSUPPORT;
	for (i = 0; i < nq; i++) {
		struct t_mq *q = &m->q[i];

		if (nq > 1)
			snprintf(dir, sizeof(dir), "%s/queue-%u", m->fe, i);
		else
			snprintf(dir, sizeof(dir), "%s", m->fe);
		n = pvio_xb_read_ring(m->x, dir, m->fe, m->cfg.max_ring_order,
				      refs, NULL, &port);
		if (n < 0) {
			rc = n;
			goto fail;
		}
		memset(q, 0, sizeof(*q));
		rc = pvio_gnt_map(m->p, m->cfg.fe, (unsigned int)n, refs, true,
				  &q->area);
		if (rc)
			goto fail;
		q->pages = (unsigned int)n;
		rc = pvio_blkif_back_attach(&q->ring, q->area, (unsigned int)n);
		if (rc)
			goto fail;
		rc = pvio_evtchn_bind(m->p, m->cfg.fe, port);
		if (rc < 0)
			goto fail;
		q->port = rc;
		m->nq = i + 1;
	}
	m->attached = true;
	pthread_mutex_lock(&m->lock);
	m->st.connects++;
	m->st.nr_queues = nq;
	m->st.ring_pages = m->q[0].pages;
	snprintf(key, sizeof(key), "%s/protocol", m->fe);
	if (pvio_xs_read(m->x, 0, key, &proto) >= 0) {
		snprintf(m->st.protocol, sizeof(m->st.protocol), "%s", proto);
		free(proto);
	}
	pthread_mutex_unlock(&m->lock);
	return 0;
fail:
	m->nq = i + 1;
	m->attached = true;
	detach(m);
	return rc;
}

/* ---- requests ------------------------------------------------------------ */

static void respond(struct t_mq *q, uint64_t id, uint8_t op, int16_t status)
{
	struct blkif_response *r = pvio_blkif_back_rsp(&q->ring);

	/* field by field: no padding leaks into shared memory */
	r->id = id;
	r->operation = op;
	r->status = status;
	pvio_ring_back_rsp_commit(&q->ring);
}

/* Data of a read/write (direct or indirect): BLKIF_RSP_*. */
static int16_t do_rw(struct t_mockblk *m, const struct blkif_request *req)
{
	const struct t_mockblk_cfg *c = &m->cfg;
	struct blkif_request_segment ind[8 * 512];
	const struct blkif_request_segment *seg;
	uint64_t sector, bytes = 0, off;
	unsigned int nseg, i;
	uint8_t op;
	size_t pos;
	int rc;

	if (req->operation == BLKIF_OP_INDIRECT) {
		const struct blkif_request_indirect *r = (const void *)req;
		unsigned int npages;

		op = r->indirect_op;
		nseg = r->nr_segments;
		sector = r->sector_number;
		if ((op != BLKIF_OP_READ && op != BLKIF_OP_WRITE) ||
		    nseg == 0 || nseg > c->max_indirect) {
			fe_error(m, "indirect: op %u, %u segments", op, nseg);
			return BLKIF_RSP_ERROR;
		}
		npages = (nseg + 511) / 512;
		pvio_gcopy_reset(&m->gc);
		for (i = 0; i < npages; i++) {
			saw_gref(m, r->indirect_grefs[i]);
			pvio_gcopy_from_guest(&m->gc, r->indirect_grefs[i], 0,
					      PVIO_PAGE_SIZE, &ind[i * 512]);
		}
		if (pvio_gcopy_flush(&m->gc) != 0) {
			fe_error(m, "indirect: cannot copy the segment pages");
			return BLKIF_RSP_ERROR;
		}
		seg = ind;
		pthread_mutex_lock(&m->lock);
		m->st.indirect++;
		pthread_mutex_unlock(&m->lock);
	} else {
		op = req->operation;
		nseg = req->nr_segments;
		sector = req->sector_number;
		seg = req->seg;
		if (nseg == 0 || nseg > BLKIF_MAX_SEGMENTS_PER_REQUEST) {
			fe_error(m, "direct: %u segments", nseg);
			return BLKIF_RSP_ERROR;
		}
	}
	for (i = 0; i < nseg; i++) {
		if (seg[i].first_sect > seg[i].last_sect ||
		    seg[i].last_sect > 7) {
			fe_error(m, "segment %u: sectors %u..%u", i,
				 seg[i].first_sect, seg[i].last_sect);
			return BLKIF_RSP_ERROR;
		}
		bytes += (uint64_t)(seg[i].last_sect - seg[i].first_sect + 1)
			 << 9;
		saw_gref(m, seg[i].gref);
	}
	/* the 2024 rule: sector fields are 512-byte units, aligned to the
	 * logical block size */
	if ((sector << 9) % c->sector_size || bytes % c->sector_size) {
		fe_error(m, "sector %llu, %llu bytes: not aligned to %u",
			 (unsigned long long)sector,
			 (unsigned long long)bytes, c->sector_size);
		return BLKIF_RSP_ERROR;
	}
	if (sector > c->sectors || bytes / 512 > c->sectors - sector) {
		fe_error(m, "sector %llu + %llu bytes: outside the disk",
			 (unsigned long long)sector, (unsigned long long)bytes);
		return BLKIF_RSP_ERROR;
	}
	pthread_mutex_lock(&m->lock);
	if (nseg > m->st.max_segs)
		m->st.max_segs = nseg;
	if (op == BLKIF_OP_WRITE)
		m->st.writes++;
	else
		m->st.reads++;
	pthread_mutex_unlock(&m->lock);
	if (op == BLKIF_OP_WRITE && (c->readonly || c->refuse_writes))
		return BLKIF_RSP_ERROR;	/* as a real backend: no EROFS */
	off = sector << 9;
	if (op == BLKIF_OP_READ &&
	    pread(c->fd, m->buf, bytes, (off_t)off) != (ssize_t)bytes)
		return BLKIF_RSP_ERROR;
	pvio_gcopy_reset(&m->gc);
	for (i = 0, pos = 0; i < nseg; i++) {
		unsigned int o = (unsigned int)seg[i].first_sect << 9;
		unsigned int l = (unsigned int)(seg[i].last_sect -
						seg[i].first_sect + 1) << 9;

		if (op == BLKIF_OP_READ)
			rc = pvio_gcopy_to_guest(&m->gc, seg[i].gref, o, l,
						 m->buf + pos);
		else
			rc = pvio_gcopy_from_guest(&m->gc, seg[i].gref, o, l,
						   m->buf + pos);
		if (rc < 0) {
			fe_error(m, "segment %u: %s", i, strerror(-rc));
			return BLKIF_RSP_ERROR;
		}
		pos += l;
	}
	if (pvio_gcopy_flush(&m->gc) != 0) {
		fe_error(m, "grant copy failed (ref %u: %d)", seg[0].gref,
			 pvio_gcopy_status(&m->gc, 0));
		return BLKIF_RSP_ERROR;
	}
	if (op == BLKIF_OP_WRITE &&
	    pwrite(c->fd, m->buf, bytes, (off_t)off) != (ssize_t)bytes)
		return BLKIF_RSP_ERROR;
	return BLKIF_RSP_OKAY;
}

static int16_t do_discard(struct t_mockblk *m, const struct blkif_request *req)
{
	const struct blkif_request_discard *d = (const void *)req;
	const struct t_mockblk_cfg *c = &m->cfg;
	uint64_t s = d->sector_number, n = d->nr_sectors;

	if (!c->discard ||
	    ((d->flag & BLKIF_DISCARD_SECURE) && !c->discard_secure)) {
		pthread_mutex_lock(&m->lock);
		m->st.eopnotsupp++;
		pthread_mutex_unlock(&m->lock);
		return BLKIF_RSP_EOPNOTSUPP;
	}
	if (s > c->sectors || n > c->sectors - s || n == 0 ||
	    (s << 9) % c->sector_size || (n << 9) % c->sector_size) {
		fe_error(m, "discard %llu+%llu: bad range",
			 (unsigned long long)s, (unsigned long long)n);
		return BLKIF_RSP_ERROR;
	}
	pthread_mutex_lock(&m->lock);
	m->st.discards++;
	m->st.last_discard_sector = s;
	m->st.last_discard_nr = n;
	m->st.last_discard_flag = d->flag;
	m->st.discard_bytes += n << 9;
	pthread_mutex_unlock(&m->lock);
	if (c->readonly)
		return BLKIF_RSP_ERROR;
	if (fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(s << 9), (off_t)(n << 9)) < 0)
		return BLKIF_RSP_ERROR;
	return BLKIF_RSP_OKAY;
}

static int16_t do_flush(struct t_mockblk *m, uint8_t op)
{
	bool on = op == BLKIF_OP_FLUSH_DISKCACHE ? m->cfg.flush
						 : m->cfg.barrier;

	pthread_mutex_lock(&m->lock);
	if (!on)
		m->st.eopnotsupp++;
	else if (op == BLKIF_OP_FLUSH_DISKCACHE)
		m->st.flushes++;
	else
		m->st.barriers++;
	pthread_mutex_unlock(&m->lock);
	if (!on)
		return BLKIF_RSP_EOPNOTSUPP;
	return fdatasync(m->cfg.fd) < 0 && errno != EINVAL ? BLKIF_RSP_ERROR
							   : BLKIF_RSP_OKAY;
}

static void handle(struct t_mockblk *m, struct t_mq *q,
		   const struct blkif_request *req)
{
	uint8_t op = req->operation, rop;
	enum t_evil evil;
	bool bad;
	int16_t st;

	pthread_mutex_lock(&m->lock);
	m->st.requests++;
	evil = m->evil;
	bad = evil != T_EVIL_NONE && m->served >= m->evil_after;
	pthread_mutex_unlock(&m->lock);
	if (bad && evil == T_EVIL_HOLD &&
	    q->nheld < T_MAX_HELD) {
		q->held[q->nheld].id = req->id;
		q->held[q->nheld].op = op;
		q->nheld++;
		pthread_mutex_lock(&m->lock);
		m->st.held++;
		pthread_mutex_unlock(&m->lock);
		return;
	}
	switch (op) {
	case BLKIF_OP_READ:
	case BLKIF_OP_WRITE:
	case BLKIF_OP_INDIRECT:
		st = do_rw(m, req);
		break;
	case BLKIF_OP_FLUSH_DISKCACHE:
	case BLKIF_OP_WRITE_BARRIER:
		st = req->nr_segments ? BLKIF_RSP_ERROR : do_flush(m, op);
		break;
	case BLKIF_OP_DISCARD:
		st = do_discard(m, req);
		break;
	default:
		st = BLKIF_RSP_EOPNOTSUPP;
		break;
	}
	/* the response echoes indirect_op, not INDIRECT (as blkback) */
	rop = op;
	if (op == BLKIF_OP_INDIRECT)
		rop = ((const struct blkif_request_indirect *)req)->indirect_op;
	if (bad) {
		switch (evil) {
		case T_EVIL_BOGUS_ID:
			respond(q, req->id ^ 0x40000000u, rop, st);
			break;
		case T_EVIL_DUP_ID:
			respond(q, q->last_id, q->last_op, st);
			break;
		case T_EVIL_BAD_OP:
			respond(q, req->id, (uint8_t)(rop + 10), st);
			break;
		default:
			respond(q, req->id, rop, st);
			break;
		}
	} else {
		respond(q, req->id, rop, st);
	}
	q->last_id = req->id;
	q->last_op = rop;
	pthread_mutex_lock(&m->lock);
	m->served++;
	pthread_mutex_unlock(&m->lock);
}

static void serve(struct t_mockblk *m, struct t_mq *q)
{
	struct blkif_request reqs[32];
	bool bad;
	int n, i;

	for (;;) {
		n = pvio_blkif_back_consume(&q->ring, reqs, 32);
		if (n < 0) {
			fe_error(m, "ring halted: %s",
				 pvio_ring_halt_str((enum pvio_ring_halt)
							    q->ring.halted));
			return;
		}
		for (i = 0; i < n; i++)
			handle(m, q, &reqs[i]);
		pthread_mutex_lock(&m->lock);
		bad = m->evil == T_EVIL_RSP_OVERFLOW &&
		      m->served > m->evil_after;
		pthread_mutex_unlock(&m->lock);
		if (bad && n) {
			/* publish more than a ring of responses past ours:
			 * more than were asked for, however many are in
			 * flight (+100 was not, with 100 or more) */
			__atomic_store_n(&q->ring.sring->rsp_prod,
					 q->ring.rsp_prod_pvt +
					 q->ring.nr_ents + 1,
					 __ATOMIC_RELEASE);
			q->ring.rsp_pushed = q->ring.rsp_prod_pvt;
			pvio_evtchn_notify(m->p, (pvio_port_t)q->port);
		} else if (pvio_ring_back_push(&q->ring)) {
			pvio_evtchn_notify(m->p, (pvio_port_t)q->port);
		}
		if (n == 0 && !pvio_ring_back_final_check(&q->ring, 1))
			return;
	}
}

/* ---- state machine ------------------------------------------------------- */

static void frontend_changed(struct pvio_xenbus *xb, enum pvio_xb_state fe,
			     void *opaque)
{
	struct t_mockblk *m = opaque;
	enum pvio_xb_state me = pvio_xenbus_state(xb);
	unsigned int i;

	switch (fe) {
	case PVIO_XB_INITIALISING:
		if (me == PVIO_XB_CLOSED) {
			/* blkback: "prepare for reconnect" */
			if (m->cfg.skip_initwait)
				set_state(m, PVIO_XB_CONNECTED);
			else
				set_state(m, PVIO_XB_INITWAIT);
		}
		break;
	case PVIO_XB_INITIALISED:
	case PVIO_XB_CONNECTED:
		/* blkback connects from any state: two watch events in a
		 * row may hide the frontend's Initialising */
		if (m->attached || me == PVIO_XB_CLOSING)
			break;
		if (attach(m)) {
			fe_error(m, "cannot attach to the frontend's rings");
			pvio_xenbus_fatal(xb, -EINVAL, "mapping rings");
			break;
		}
		if (me != PVIO_XB_CONNECTED) {
			/* blkback's connect(): the disk, then Connected */
			if (write_disk(m)) {
				fe_error(m, "cannot write the disk's nodes");
				break;
			}
			set_state(m, PVIO_XB_CONNECTED);
		}
		for (i = 0; i < m->nq; i++)
			serve(m, &m->q[i]);
		break;
	case PVIO_XB_CLOSING:
		set_state(m, PVIO_XB_CLOSING);
		break;
	case PVIO_XB_CLOSED:
		detach(m);
		set_state(m, PVIO_XB_CLOSED);
		break;
	default:
		break;
	}
}

static void do_commands(struct t_mockblk *m)
{
	uint64_t v, resize;
	bool close_;

	if (read(m->cmdfd, &v, sizeof(v)) < 0) {
		/* nothing */
	}
	pthread_mutex_lock(&m->lock);
	close_ = m->cmd_close;
	resize = m->cmd_resize;
	m->cmd_close = false;
	m->cmd_resize = 0;
	pthread_mutex_unlock(&m->lock);
	if (resize) {
		char key[PVIO_XS_PATH_MAX + 16];
		pvio_xs_tx_t tx;
		int tries = 0, rc;

		m->cfg.sectors = resize;
		do {
			if (pvio_xs_tx_start(m->x, &tx))
				break;
			rc = wr(m, tx, "sectors", resize);
			snprintf(key, sizeof(key), "%s/state", m->be);
			if (!rc)
				rc = pvio_xs_printf(
					m->x, tx, key, "%d",
					(int)pvio_xenbus_state(m->xb));
			rc = pvio_xs_tx_end(m->x, tx, rc != 0);
		} while (rc == -EAGAIN && ++tries < 100);
	}
	if (close_)
		set_state(m, PVIO_XB_CLOSING);
}

static void *mock_main(void *arg)
{
	struct t_mockblk *m = arg;
	struct pollfd fds[3];
	unsigned int i;
	int rc, port;

	rc = pvio_platform_open(&m->p, m->cfg.spec, 0, 0);
	if (!rc)
		rc = pvio_xs_open(&m->x, m->p);
	if (!rc)
		rc = pvio_gcopy_init(&m->gc, m->p, m->cfg.fe, 8 * 512 + 16);
	if (!rc) {
		pvio_xb_backend_path(m->be, 0,
				     m->cfg.type ? m->cfg.type : "vbd",
				     m->cfg.fe, m->cfg.devid);
		pvio_xb_frontend_path(m->fe, m->cfg.fe, "vbd", m->cfg.devid);
		rc = write_features(m);
	}
	if (!rc && m->cfg.skip_initwait)
		rc = write_disk(m);
	if (!rc)
		rc = pvio_xenbus_open(&m->xb, m->x, m->be, "frontend",
				      "frontend-id", frontend_changed, m);
	if (!rc) {
		set_state(m, m->cfg.skip_initwait ? PVIO_XB_CONNECTED
						  : PVIO_XB_INITWAIT);
	}
	pthread_mutex_lock(&m->lock);
	m->start_rc = rc;
	m->started = true;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	if (rc)
		return NULL;

	for (;;) {
		bool stop;

		pthread_mutex_lock(&m->lock);
		stop = m->stop;
		pthread_mutex_unlock(&m->lock);
		if (stop)
			break;
		fds[0].fd = pvio_xs_fd(m->x);
		fds[1].fd = pvio_evtchn_fd(m->p);
		fds[2].fd = m->cmdfd;
		for (i = 0; i < 3; i++) {
			fds[i].events = POLLIN;
			fds[i].revents = 0;
		}
		poll(fds, 3, 50);
		if (fds[2].revents)
			do_commands(m);
		if (fds[0].revents)
			pvio_xs_dispatch(m->x);
		while ((port = pvio_evtchn_pending(m->p)) >= 0)
			pvio_evtchn_unmask(m->p, (pvio_port_t)port);
		if (m->attached)
			for (i = 0; i < m->nq; i++)
				serve(m, &m->q[i]);
	}
	detach(m);
	return NULL;
}

int t_mockblk_start(struct t_mockblk **out, const struct t_mockblk_cfg *cfg)
{
	struct t_mockblk *m = calloc(1, sizeof(*m));
	struct stat sb;
	int rc;

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	if (!m->cfg.sector_size)
		m->cfg.sector_size = 512;
	if (!m->cfg.sectors) {
		if (fstat(cfg->fd, &sb) < 0) {
			free(m);
			return -errno;
		}
		m->cfg.sectors = (uint64_t)sb.st_size >> 9;
	}
	m->evil = cfg->evil;
	m->evil_after = cfg->evil_after;
	m->buflen = (size_t)(m->cfg.max_indirect > 11 ? m->cfg.max_indirect
						       : 11) * PVIO_PAGE_SIZE;
	m->buf = malloc(m->buflen);
	m->seen = calloc(65536, 1);
	m->cmdfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!m->buf || !m->seen || m->cmdfd < 0) {
		free(m->seen);
		free(m->buf);
		free(m);
		return -ENOMEM;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->cond, NULL);
	rc = pthread_create(&m->th, NULL, mock_main, m);
	if (rc) {
		free(m->seen);
		free(m->buf);
		free(m);
		return -rc;
	}
	pthread_mutex_lock(&m->lock);
	while (!m->started)
		pthread_cond_wait(&m->cond, &m->lock);
	rc = m->start_rc;
	pthread_mutex_unlock(&m->lock);
	if (rc) {
		t_mockblk_stop(m);
		return rc;
	}
	*out = m;
	return 0;
}

static void kick(struct t_mockblk *m)
{
	uint64_t one = 1;

	if (write(m->cmdfd, &one, sizeof(one)) < 0) {
		/* saturated */
	}
}

void t_mockblk_stop(struct t_mockblk *m)
{
	if (!m)
		return;
	pthread_mutex_lock(&m->lock);
	m->stop = true;
	pthread_mutex_unlock(&m->lock);
	kick(m);
	pthread_join(m->th, NULL);
	pvio_xenbus_close(m->xb);
	pvio_gcopy_destroy(&m->gc);
	pvio_xs_close(m->x);
	pvio_platform_close(m->p);
	close(m->cmdfd);
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m->seen);
	free(m->buf);
	free(m);
}

void t_mockblk_stats(struct t_mockblk *m, struct t_mockblk_stats *st)
{
	pthread_mutex_lock(&m->lock);
	*st = m->st;
	pthread_mutex_unlock(&m->lock);
}

int t_mockblk_state(struct t_mockblk *m)
{
	int s;

	pthread_mutex_lock(&m->lock);
	s = m->state;
	pthread_mutex_unlock(&m->lock);
	return s;
}

void t_mockblk_resize(struct t_mockblk *m, uint64_t sectors)
{
	pthread_mutex_lock(&m->lock);
	m->cmd_resize = sectors;
	pthread_mutex_unlock(&m->lock);
	kick(m);
}

void t_mockblk_close(struct t_mockblk *m)
{
	pthread_mutex_lock(&m->lock);
	m->cmd_close = true;
	pthread_mutex_unlock(&m->lock);
	kick(m);
}

void t_mockblk_set_evil(struct t_mockblk *m, enum t_evil evil,
			unsigned int after)
{
	/* the thread reads these unlocked between requests: tests change
	 * them only while no I/O is in flight */
	pthread_mutex_lock(&m->lock);
	m->evil = evil;
	m->evil_after = (unsigned int)m->served + after;
	pthread_mutex_unlock(&m->lock);
}

int t_mockblk_wait_state(struct t_mockblk *m, int st, int ms)
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
	pthread_mutex_unlock(&m->lock);
	return m->state == st ? 0 : -ETIMEDOUT;
}
