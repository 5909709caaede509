// SPDX-License-Identifier: MIT
/*
 * blkfront's control path: the XenBus handshake as Linux's xen-blkfront
 * runs it (talk_to_blkback at the backend's InitWait, blkfront_connect at
 * its Connected), the backend's death (blkfront_closing), online resize,
 * and the Closing -> Closed teardown. One dispatcher (backend_changed)
 * for the backend's state; our state has one writer (pvio_xenbus_switch).
 * Everything the backend wrote is parsed with range checks; a value we
 * cannot use fails this device only (xenbus_dev_fatal).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <xen/io/protocols.h>

#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "blkfront-private.h"

#define M(s)		(1u << PVIO_XB_##s)

static const char *sname(enum pvio_xb_state s)
{
	return pvio_xb_state_name(s);
}

void pvio__bf_xb_fatal(struct pvio_blkfront *dev, int err, const char *msg)
{
	pthread_mutex_lock(&dev->lock);
	if (dev->fe.xb && dev->fe.phase != FE_CLOSING)
		pvio_xenbus_fatal(dev->fe.xb, err, "%s", msg);
	pthread_mutex_unlock(&dev->lock);
}

/* A backend key that must be there, in [min, max]. */
static int be_req(struct pvio_blkfront *dev, const char *key, unsigned long min,
		  unsigned long max, unsigned long *out)
{
	return pvio_xenbus_read_other_uint(dev->fe.xb, key, min, max, 0, true,
					   out);
}

/* An optional key: absent is @dflt; garbage is an error. */
static int be_opt(struct pvio_blkfront *dev, const char *key,
		  unsigned long max, unsigned long dflt, unsigned long *out)
{
	return pvio_xenbus_read_other_uint(dev->fe.xb, key, 0, max, dflt, false,
					   out);
}

/* A feature flag: nonzero is on (Linux: xenbus_read_unsigned() != 0). */
static bool be_flag(struct pvio_blkfront *dev, const char *key)
{
	unsigned long v;

	return be_opt(dev, key, ULONG_MAX, 0, &v) == 0 && v != 0;
}

static int unusable(int rc)
{
	return rc == -ENOENT || rc == -ERANGE ? -EINVAL : rc;
}

static void destroy_queues(struct pvio_blkfront *dev)
{
	unsigned int i;

	for (i = 0; i < PVIO_BLKFRONT_MAX_QUEUES; i++) {
		pvio__bf_queue_destroy(dev->queues[i]);
		dev->queues[i] = NULL;
	}
	dev->nr_queues = 0;
}

/* ---- InitWait: rings and event channels (talk_to_blkback) ---------------- */

/* Keys of an earlier connection that must not confuse the backend. */
static bool stale_key(const char *k)
{
	return strncmp(k, "ring-ref", 8) == 0 ||
	       strcmp(k, "ring-page-order") == 0 ||
	       strncmp(k, "event-channel", 13) == 0 ||
	       strcmp(k, "multi-queue-num-queues") == 0 ||
	       strncmp(k, "queue-", 6) == 0;
}

/* write_per_ring_nodes: ring-ref or ring-ref%u, then event-channel. */
static int write_ring(struct pvio_blkfront *dev, pvio_xs_tx_t tx,
		      const char *dir, const struct pvio_blkfront_queue *q)
{
	char key[2 * PVIO_XS_PATH_MAX];
	const pvio_gref_t *refs;
	unsigned int pages, i;
	pvio_port_t port;
	int rc = 0;

	pvio__bf_queue_ring(q, &refs, &pages, &port);
	if (pages == 1) {
		snprintf(key, sizeof(key), "%s/ring-ref", dir);
		rc = pvio_xs_printf(dev->fe.xs, tx, key, "%u", refs[0]);
	} else {
		for (i = 0; i < pages && !rc; i++) {
			snprintf(key, sizeof(key), "%s/ring-ref%u", dir, i);
			rc = pvio_xs_printf(dev->fe.xs, tx, key, "%u", refs[i]);
		}
	}
	if (!rc) {
		snprintf(key, sizeof(key), "%s/event-channel", dir);
		rc = pvio_xs_printf(dev->fe.xs, tx, key, "%u", port);
	}
	return rc;
}

static int publish(void *arg, pvio_xs_tx_t tx)
{
	struct pvio_blkfront *dev = arg;
	char key[2 * PVIO_XS_PATH_MAX];
	unsigned int i;
	int rc;

	rc = fe_clean_keys(&dev->fe, tx, stale_key);
	/* Only for multi-page rings: with the key present, even 0, Linux
	 * blkback (5.11+) reads ring-ref0 instead of ring-ref. */
	if (!rc && dev->ring_pages > 1) {
		snprintf(key, sizeof(key), "%s/ring-page-order", dev->fe.path);
		rc = pvio_xs_printf(dev->fe.xs, tx, key, "%d",
				    __builtin_ctz(dev->ring_pages));
	}
	if (!rc && dev->nr_queues == 1) {
		rc = write_ring(dev, tx, dev->fe.path, dev->queues[0]);
	} else if (!rc) {
		snprintf(key, sizeof(key), "%s/multi-queue-num-queues",
			 dev->fe.path);
		rc = pvio_xs_printf(dev->fe.xs, tx, key, "%u", dev->nr_queues);
		for (i = 0; i < dev->nr_queues && !rc; i++) {
			snprintf(key, sizeof(key), "%s/queue-%u", dev->fe.path,
				 i);
			rc = write_ring(dev, tx, key, dev->queues[i]);
		}
	}
	if (!rc) {
		snprintf(key, sizeof(key), "%s/protocol", dev->fe.path);
		rc = pvio_xs_write(dev->fe.xs, tx, key,
				   XEN_IO_PROTO_ABI_NATIVE);
	}
	if (!rc) {
		/* We always use a persistent pool (Linux 6.0+: written as
		 * the user asked, not as negotiated). */
		snprintf(key, sizeof(key), "%s/feature-persistent",
			 dev->fe.path);
		rc = pvio_xs_write(dev->fe.xs, tx, key, "1");
	}
	return rc;
}

static int talk_to_backend(struct pvio_blkfront *dev)
{
	unsigned long order, maxq;
	unsigned int nq, max_pages, pages, depth, i;
	int rc;

	rc = be_opt(dev, "max-ring-page-order", ULONG_MAX, 0, &order);
	if (!rc)
		rc = be_opt(dev, "multi-queue-max-queues", ULONG_MAX, 1, &maxq);
	if (rc) {
		fe_fatal(&dev->fe, unusable(rc),
			 "reading the backend's ring limits "
			 "in %s: %s",
			 dev->fe.be_path, strerror(-rc));
		return dev->fe.err;
	}
	if (order > 4)
		order = 4;
	if (maxq == 0)
		maxq = 1;
	nq = dev->opts.max_queues < maxq ? dev->opts.max_queues
					  : (unsigned int)maxq;
	max_pages = 1u << order;
	if (dev->opts.max_ring_pages < max_pages)
		max_pages = dev->opts.max_ring_pages;
	/* The smallest ring that holds the depth asked for. */
	depth = dev->opts.queue_depth;
	pages = 1;
	while (pages < max_pages && pvio_blkif_ring_size(pages) < depth)
		pages <<= 1;
	if (depth > pvio_blkif_ring_size(pages))
		depth = pvio_blkif_ring_size(pages);
	dev->ring_pages = pages;
	dev->depth = depth;
	dev->nr_queues = nq;
	for (i = 0; i < nq; i++) {
		rc = pvio__bf_queue_create(dev, i, pages, &dev->queues[i]);
		if (rc) {
			destroy_queues(dev);
			fe_fatal(&dev->fe, rc,
				 "allocating ring %u (%u pages) and its "
				 "event channel: %s",
				 i, pages, strerror(-rc));
			return rc;
		}
	}
	rc = fe_publish(&dev->fe, publish, dev);
	if (!rc)
		rc = pvio_xenbus_switch(dev->fe.xb, PVIO_XB_INITIALISED);
	if (rc) {
		destroy_queues(dev);
		fe_fatal(&dev->fe, rc, "writing the rings to %s: %s",
			 dev->fe.path, strerror(-rc));
		return rc;
	}
	return 0;
}

/* ---- Connected: the disk (blkfront_connect) ------------------------------ */

static bool pow2(unsigned long v)
{
	return v && !(v & (v - 1));
}

static void check_resize(struct pvio_blkfront *dev)
{
	unsigned long sectors;

	/* a transient or hostile value: keep the old size */
	if (be_req(dev, "sectors", 0, UINT64_MAX >> 9, &sectors))
		return;
	if (sectors == __atomic_load_n(&dev->sectors, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&dev->sectors, (uint64_t)sectors, __ATOMIC_RELAXED);
	__atomic_or_fetch(&dev->pending_events, 1u << PVIO_BLKFRONT_EV_RESIZE,
			  __ATOMIC_RELAXED);
}

static void read_discard(struct pvio_blkfront *dev, uint32_t *feat)
{
	unsigned long gran, align;
	uint32_t ss = dev->sector_size;

	if (!be_flag(dev, "feature-discard"))
		return;
	/* blkif.h: assume alignment 0 and granularity = sector size when
	 * absent. A value we cannot use turns discard off, not the disk. */
	if (be_opt(dev, "discard-granularity", 1ul << 30, ss, &gran) ||
	    be_opt(dev, "discard-alignment", 1ul << 30, 0, &align))
		return;
	if (gran == 0)
		gran = ss;
	if (gran % ss) {
		gran = ss;
		align = 0;
	}
	align %= gran;
	if (align % ss)
		align = 0;
	dev->discard_gran = (uint32_t)gran;
	dev->discard_align = (uint32_t)align;
	*feat |= PVIO_BLKFRONT_FEAT_DISCARD;
	if (be_flag(dev, "discard-secure"))
		*feat |= PVIO_BLKFRONT_FEAT_SECURE_DISCARD;
}

static int connect_backend(struct pvio_blkfront *dev)
{
	unsigned long sectors, info, ss, pss, ind;
	unsigned int segs, i;
	uint32_t feat = 0;
	int rc;

	if (dev->fe.phase == FE_CONNECTED) {
		/* blkback rewrites `state` with `sectors` on a resize */
		check_resize(dev);
		return 0;
	}
	rc = be_req(dev, "sectors", 0, UINT64_MAX >> 9, &sectors);
	if (!rc)
		rc = be_req(dev, "info", 0, UINT32_MAX, &info);
	if (!rc)
		rc = be_req(dev, "sector-size", 512, 1ul << 20, &ss);
	if (!rc && !pow2(ss))
		rc = -EINVAL;
	if (rc) {
		fe_fatal(&dev->fe, unusable(rc),
			 "reading backend fields at %s "
			 "(sectors, info, sector-size): %s",
			 dev->fe.be_path, strerror(-rc));
		return dev->fe.err;
	}
	if (be_opt(dev, "physical-sector-size", 1ul << 20, ss, &pss) ||
	    !pow2(pss) || pss < ss)
		pss = ss;
	dev->sector_size = (uint32_t)ss;
	dev->physical_sector_size = (uint32_t)pss;
	dev->vdisk_info = (uint32_t)info;
	dev->readonly = info & VDISK_READONLY;
	__atomic_store_n(&dev->sectors, (uint64_t)sectors, __ATOMIC_RELAXED);

	/* blkfront_gather_backend_features */
	if (be_flag(dev, "feature-barrier"))
		feat |= PVIO_BLKFRONT_FEAT_BARRIER;
	if (be_flag(dev, "feature-flush-cache"))
		feat |= PVIO_BLKFRONT_FEAT_FLUSH;
	read_discard(dev, &feat);
	if (be_flag(dev, "feature-persistent"))
		feat |= PVIO_BLKFRONT_FEAT_PERSISTENT;
	if (be_opt(dev, "feature-max-indirect-segments", ULONG_MAX, 0, &ind))
		ind = 0;
	segs = dev->opts.max_indirect_segments;
	if (segs == PVIO_BLKFRONT_NO_INDIRECT || ind <= BF_DIRECT_SEGS)
		segs = 0;
	else if (ind < segs)
		segs = (unsigned int)ind;
	dev->indirect = segs > BF_DIRECT_SEGS;
	dev->max_segs = dev->indirect ? segs : BF_DIRECT_SEGS;
	if (dev->indirect)
		feat |= PVIO_BLKFRONT_FEAT_INDIRECT;
	__atomic_store_n(&dev->features, feat, __ATOMIC_RELAXED);

	for (i = 0; i < dev->nr_queues; i++) {
		rc = pvio__bf_queue_start(dev->queues[i], dev->depth,
					  dev->max_segs, dev->indirect);
		if (rc) {
			fe_fatal(&dev->fe, rc,
				 "granting the data pool of queue %u "
				 "(%u slots of %u pages): %s",
				 i, dev->depth, dev->max_segs, strerror(-rc));
			return rc;
		}
	}
	rc = pvio_xenbus_switch(dev->fe.xb, PVIO_XB_CONNECTED);
	if (rc) {
		fe_fatal(&dev->fe, rc, "switching to Connected: %s",
			 strerror(-rc));
		return rc;
	}
	dev->fe.phase = FE_CONNECTED;
	return 0;
}

/* ---- the one dispatcher of the backend's state --------------------------- */

/* ": <the backend's error node>" (xenbus_dev_fatal writes one), or "". */
static void be_error(struct pvio_blkfront *dev, char *buf, size_t len)
{
	char key[PVIO_XS_PATH_MAX + 8], *v = NULL;

	buf[0] = 0;
	snprintf(key, sizeof(key), "%s/error", dev->fe.be_path);
	if (pvio_xs_read(dev->fe.xs, 0, key, &v) < 0)
		return;
	snprintf(buf, len, ": %s", v);
	free(v);
}

static void backend_changed_locked(struct pvio_blkfront *dev,
				   enum pvio_xb_state be)
{
	enum pvio_xb_state me = pvio_xenbus_state(dev->fe.xb);
	char why[160];

	if (dev->fe.phase == FE_CLOSING || dev->fe.phase == FE_FAILED)
		return;
	switch (be) {
	case PVIO_XB_INITWAIT:
		/* Only acted on while Initialising: a repeat is ignored. */
		if (me == PVIO_XB_INITIALISING)
			talk_to_backend(dev);
		break;
	case PVIO_XB_CONNECTED:
		/* A backend may skip InitWait: do both steps. */
		if (me == PVIO_XB_INITIALISING && talk_to_backend(dev))
			break;
		me = pvio_xenbus_state(dev->fe.xb);
		if (me == PVIO_XB_INITIALISED || me == PVIO_XB_CONNECTED)
			connect_backend(dev);
		break;
	case PVIO_XB_CLOSING:
	case PVIO_XB_CLOSED:	/* Unknown arrives as Closed */
		if (dev->fe.phase == FE_OPENING) {
			/* Closed: not started yet, or still done with an
			 * old session (it may have read our Closed before
			 * our Initialising); blkback connects from Closed
			 * when it sees Initialised. The timeout decides. */
			if (be == PVIO_XB_CLOSED)
				break;
			be_error(dev, why, sizeof(why));
			fe_set_failed(&dev->fe, -ENODEV,
				      "the backend (%s) went %s "
				      "during the handshake%s",
				      dev->fe.be_path, sname(be), why);
			pvio_xenbus_switch(dev->fe.xb, PVIO_XB_CLOSED);
			break;
		}
		/* blkfront_closing: no recovery, the disk is dead. */
		if (me == PVIO_XB_CLOSED)
			break;
		be_error(dev, why, sizeof(why));
		pvio__bf_kill(dev, -EIO, "the backend (%s) went %s%s",
			      dev->fe.be_path, sname(be), why);
		pvio_xenbus_switch(dev->fe.xb, PVIO_XB_CLOSED);
		break;
	default:
		break;
	}
}

static void backend_changed(struct pvio_xenbus *xb, enum pvio_xb_state be,
			    void *opaque)
{
	struct pvio_blkfront *dev = opaque;

	(void)xb;
	pthread_mutex_lock(&dev->lock);
	backend_changed_locked(dev, be);
	pthread_mutex_unlock(&dev->lock);
	pvio__bf_deliver_events(dev);
}

static void sectors_changed(struct pvio_xs *x, const char *path, void *opaque)
{
	struct pvio_blkfront *dev = opaque;

	(void)x;
	(void)path;
	pthread_mutex_lock(&dev->lock);
	if (dev->fe.phase == FE_CONNECTED && !bf_dead(dev))
		check_resize(dev);
	pthread_mutex_unlock(&dev->lock);
	pvio__bf_deliver_events(dev);
}

/* ---- waiting for the backend --------------------------------------------- */

int pvio__bf_xb_open(struct pvio_blkfront *dev)
{
	/* the backend states that need no reset (blkback reconnects once
	 * it sees Initialising while Closed) */
	static const struct fe_reset reset = {
		.ready = FE_XB(INITIALISING) | FE_XB(INITWAIT) |
			 FE_XB(CONNECTED),
	};
	char key[PVIO_XS_PATH_MAX + 32];
	unsigned long vdev;
	uint64_t deadline;
	enum fe_phase ph;
	int rc;

	pvio_xb_frontend_path(dev->fe.path, dev->fe.self, "vbd", dev->fe.devid);
	/* blkfront_probe: virtual-device, or virtual-device-ext */
	snprintf(key, sizeof(key), "%s/virtual-device", dev->fe.path);
	rc = pvio_xs_read_uint(dev->fe.xs, 0, key, 0, ULONG_MAX, &vdev);
	if (rc == -ENOENT) {
		snprintf(key, sizeof(key), "%s/virtual-device-ext",
			 dev->fe.path);
		rc = pvio_xs_read_uint(dev->fe.xs, 0, key, 0, ULONG_MAX, &vdev);
	}
	if (rc) {
		snprintf(dev->fe.msg, sizeof(dev->fe.msg),
			 "no vbd %u for domain %u: cannot read %s: %s",
			 dev->fe.devid, dev->fe.self, key, strerror(-rc));
		return -ENODEV;
	}
	dev->fe.phase = FE_CLOSING;	/* the dispatcher waits for reset */
	rc = pvio_xenbus_open(&dev->fe.xb, dev->fe.xs, dev->fe.path, "backend",
			      "backend-id", backend_changed, dev);
	if (rc) {
		snprintf(dev->fe.msg, sizeof(dev->fe.msg),
			 "%s: cannot find the backend (backend, backend-id): "
			 "%s",
			 dev->fe.path, strerror(-rc));
		return rc == -ENOENT || rc == -EINVAL ? -ENODEV : rc;
	}
	dev->fe.backend_id = pvio_xenbus_otherend_id(dev->fe.xb);
	snprintf(dev->fe.be_path, sizeof(dev->fe.be_path), "%s",
		 pvio_xenbus_otherend(dev->fe.xb));
	snprintf(key, sizeof(key), "%s/sectors", dev->fe.be_path);
	rc = pvio_xs_watch(dev->fe.xs, key, sectors_changed, dev);
	if (rc < 0) {
		snprintf(dev->fe.msg, sizeof(dev->fe.msg),
			 "cannot watch %s: %s", key, strerror(-rc));
		return rc;
	}
	dev->sectors_watch = rc;

	rc = fe_reset_stale(&dev->fe, dev->opts.timeout_ms, &reset);
	if (rc)
		return rc;

	pthread_mutex_lock(&dev->lock);
	dev->fe.phase = FE_OPENING;
	pthread_mutex_unlock(&dev->lock);
	deadline = pvio_now_ms() + dev->opts.timeout_ms;
	for (;;) {
		enum pvio_xb_state be = pvio_xenbus_other_state(dev->fe.xb), me;
		uint64_t now;

		/* The dispatcher runs from our pump too; evaluating the
		 * current state here as well makes lost or stolen events
		 * harmless. */
		pthread_mutex_lock(&dev->lock);
		backend_changed_locked(dev, be);
		ph = dev->fe.phase;
		me = pvio_xenbus_state(dev->fe.xb);
		pthread_mutex_unlock(&dev->lock);
		pvio__bf_deliver_events(dev);
		if (ph == FE_CONNECTED)
			return 0;
		if (ph == FE_FAILED)
			return dev->fe.err;
		now = pvio_now_ms();
		if (now >= deadline) {
			pthread_mutex_lock(&dev->lock);
			fe_set_failed(&dev->fe, -ETIMEDOUT,
				      "timed out after %u ms waiting for the "
				      "backend (%s) to reach %s: it is %s, we "
				      "are %s",
				      dev->opts.timeout_ms, dev->fe.be_path,
				      me == PVIO_XB_INITIALISING ? "InitWait"
								 : "Connected",
				      sname(be), sname(me));
			/* Rings were published: tell the backend. */
			if (me != PVIO_XB_INITIALISING)
				pvio_xenbus_fatal(dev->fe.xb, -ETIMEDOUT, "%s",
						  dev->fe.msg);
			pthread_mutex_unlock(&dev->lock);
			return -ETIMEDOUT;
		}
		pvio_xs_pump(dev->fe.xs, deadline - now < 100
					     ? (int)(deadline - now)
					     : 100);
	}
}

/* Closing -> Closed, each step waiting for the backend to follow:
 * blkback unmaps the rings when it sees our Closed, then goes Closed. */
int pvio__bf_xb_close(struct pvio_blkfront *dev)
{
	return dev->fe.xb ? pvio_xenbus_frontend_close(dev->fe.xb,
						       dev->opts.timeout_ms)
			  : 0;
}

void pvio__bf_xb_release(struct pvio_blkfront *dev)
{
	if (dev->sectors_watch > 0)
		pvio_xs_unwatch(dev->fe.xs, dev->sectors_watch);
	dev->sectors_watch = 0;
	pvio_xenbus_close(dev->fe.xb);
	dev->fe.xb = NULL;
}
