// SPDX-License-Identifier: MIT
/*
 * netfront's XenBus handshake as Linux's xen-netfront runs it:
 * Initialising, then at the backend's InitWait talk_to_netback (rings,
 * event channels and features in one transaction) and straight to
 * Connected; the backend's Connected is the carrier; its Closing/Closed
 * ends the device (xenbus_frontend_closed). One dispatcher (backend_changed) for the
 * backend's state; our state has one writer (pvio_xenbus_switch).
 * Everything the backend wrote is parsed with range checks.
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

#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "netfront-private.h"

#define M(s)		(1u << PVIO_XB_##s)

static const char *sname(enum pvio_xb_state s)
{
	return pvio_xb_state_name(s);
}

static void emit(struct pvio_netfront *dev, enum pvio_netfront_event ev)
{
	if (dev->fe.live && dev->opts.event)
		dev->opts.event(dev, ev, dev->opts.opaque);
}

/* ---- reading the backend ------------------------------------------------- */

/* A feature flag: nonzero is on (Linux: xenbus_read_unsigned() != 0);
 * absent or garbage is off. */
static bool be_flag(struct pvio_netfront *dev, const char *key)
{
	unsigned long v;

	return pvio_xenbus_read_other_uint(dev->fe.xb, key, 0, ULONG_MAX, 0,
					   false, &v) == 0 && v != 0;
}

static bool be_has(struct pvio_netfront *dev, const char *key)
{
	char path[2 * PVIO_XS_PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dev->fe.be_path, key);
	return pvio_xs_exists(dev->fe.xs, 0, path);
}

static int read_own(struct pvio_netfront *dev)
{
	char key[PVIO_XS_PATH_MAX + 16], *v = NULL;
	unsigned long mtu;
	int rc;

	snprintf(key, sizeof(key), "%s/mac", dev->fe.path);
	rc = pvio_xs_read(dev->fe.xs, 0, key, &v);
	if (rc >= 0) {
		rc = pvio_xb_parse_mac(v, dev->mac);	/* xen_net_read_mac */
		free(v);
	}
	if (rc) {
		fe_fatal(&dev->fe, -EINVAL, "parsing %s: %s", key,
			 rc == -EINVAL ? "not xx:xx:xx:xx:xx:xx"
				       : strerror(-rc));
		return -EINVAL;
	}
	/* libxl writes `mtu` (read-only to us) when it is not 1500 */
	snprintf(key, sizeof(key), "%s/mtu", dev->fe.path);
	if (pvio_xs_read_uint_default(dev->fe.xs, 0, key, 68, 65535, 1500,
				      &mtu))
		mtu = 1500;
	dev->mtu = (unsigned int)mtu;
	return 0;
}

/* ---- InitWait: talk_to_netback ------------------------------------------- */

static void destroy_queues(struct pvio_netfront *dev)
{
	unsigned int i;

	for (i = 0; i < PVIO_NETFRONT_MAX_QUEUES; i++) {
		pvio__nf_queue_destroy(dev->queues[i]);
		dev->queues[i] = NULL;
	}
	dev->nr_queues = 0;
}

/* Keys of an earlier connection (ours or a dead process's). */
static bool stale_key(const char *k)
{
	static const char *const keys[] = {
		"tx-ring-ref", "rx-ring-ref", "multi-queue-num-queues",
		"request-rx-copy", "feature-rx-notify", "feature-sg",
		"feature-gso-tcpv4", "feature-gso-tcpv6",
		"feature-ipv6-csum-offload", "feature-no-csum-offload",
	};
	unsigned int i;

	if (strncmp(k, "event-channel", 13) == 0 ||
	    strncmp(k, "queue-", 6) == 0)
		return true;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strcmp(k, keys[i]) == 0)
			return true;
	return false;
}

static int __attribute__((format(printf, 5, 6)))
wr(struct pvio_netfront *dev, pvio_xs_tx_t tx, const char *dir,
   const char *key, const char *fmt, ...)
{
	char path[3 * PVIO_XS_PATH_MAX], val[64];
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	return pvio_xs_write(dev->fe.xs, tx, path, val);
}

/* write_queue_xenstore_keys */
static int write_queue(struct pvio_netfront *dev, pvio_xs_tx_t tx,
		       const char *dir, const struct pvio_netfront_queue *q)
{
	pvio_gref_t txr, rxr;
	pvio_port_t txp, rxp;
	int rc;

	pvio__nf_queue_refs(q, &txr, &rxr, &txp, &rxp);
	rc = wr(dev, tx, dir, "tx-ring-ref", "%u", txr);
	if (!rc)
		rc = wr(dev, tx, dir, "rx-ring-ref", "%u", rxr);
	if (!rc && txp == rxp)
		rc = wr(dev, tx, dir, "event-channel", "%u", txp);
	if (!rc && txp != rxp) {
		rc = wr(dev, tx, dir, "event-channel-tx", "%u", txp);
		if (!rc)
			rc = wr(dev, tx, dir, "event-channel-rx", "%u", rxp);
	}
	return rc;
}

struct nf_publish {
	struct pvio_netfront *dev;
	bool mq_key;	/* the backend has multi-queue-max-queues */
};

static int publish(void *arg, pvio_xs_tx_t tx)
{
	struct pvio_netfront *dev = ((struct nf_publish *)arg)->dev;
	bool mq_key = ((struct nf_publish *)arg)->mq_key;
	unsigned int fl = dev->opts.flags, i;
	char dir[PVIO_XS_PATH_MAX + 32];
	bool csum = !(fl & PVIO_NETFRONT_F_NO_CSUM);
	bool sg = !(fl & PVIO_NETFRONT_F_NO_SG);
	bool gso = sg && csum && !(fl & PVIO_NETFRONT_F_NO_GSO);
	int rc;

	rc = fe_clean_keys(&dev->fe, tx, stale_key);
	/* Linux: only if the backend has the key, even for one queue */
	if (!rc && mq_key)
		rc = wr(dev, tx, dev->fe.path, "multi-queue-num-queues", "%u",
			dev->nr_queues);
	if (dev->nr_queues == 1) {
		if (!rc)
			rc = write_queue(dev, tx, dev->fe.path, dev->queues[0]);
	} else {
		for (i = 0; i < dev->nr_queues && !rc; i++) {
			snprintf(dir, sizeof(dir), "%s/queue-%u", dev->fe.path,
				 i);
			rc = write_queue(dev, tx, dir, dev->queues[i]);
		}
	}
	if (!rc)
		rc = wr(dev, tx, dev->fe.path, "request-rx-copy", "1");
	/* without it Linux netback turns rx stall detection off and drops
	 * queued packets after 30 ms */
	if (!rc)
		rc = wr(dev, tx, dev->fe.path, "feature-rx-notify", "1");
	if (!rc && sg)
		rc = wr(dev, tx, dev->fe.path, "feature-sg", "1");
	if (!rc && gso)
		rc = wr(dev, tx, dev->fe.path, "feature-gso-tcpv4", "1");
	if (!rc && gso)
		rc = wr(dev, tx, dev->fe.path, "feature-gso-tcpv6", "1");
	if (!rc && csum)
		rc = wr(dev, tx, dev->fe.path, "feature-ipv6-csum-offload",
			"1");
	if (!rc && !csum)
		rc = wr(dev, tx, dev->fe.path, "feature-no-csum-offload", "1");
	return rc;
}

static uint32_t negotiate(struct pvio_netfront *dev, bool split)
{
	unsigned int fl = dev->opts.flags;
	bool csum = !(fl & PVIO_NETFRONT_F_NO_CSUM);
	bool sg = !(fl & PVIO_NETFRONT_F_NO_SG) && be_flag(dev, "feature-sg");
	bool gso = sg && csum && !(fl & PVIO_NETFRONT_F_NO_GSO);
	uint32_t f = 0;

	if (sg)
		f |= PVIO_NETFRONT_FEAT_SG;
	if (csum)
		f |= PVIO_NETFRONT_FEAT_TX_CSUM | PVIO_NETFRONT_FEAT_RX_CSUM;
	if (csum && be_flag(dev, "feature-ipv6-csum-offload"))
		f |= PVIO_NETFRONT_FEAT_TX_CSUM_IPV6;
	if (gso && be_flag(dev, "feature-gso-tcpv4"))
		f |= PVIO_NETFRONT_FEAT_TX_GSO_TCPV4;
	/* netdev_fix_features: no TSO6 without IPv6 checksum offload */
	if (gso && be_flag(dev, "feature-gso-tcpv6") &&
	    (f & PVIO_NETFRONT_FEAT_TX_CSUM_IPV6))
		f |= PVIO_NETFRONT_FEAT_TX_GSO_TCPV6;
	/* what we asked for (written whatever the backend's SG) */
	if (!(fl & (PVIO_NETFRONT_F_NO_SG | PVIO_NETFRONT_F_NO_GSO |
		    PVIO_NETFRONT_F_NO_CSUM)))
		f |= PVIO_NETFRONT_FEAT_RX_GSO_TCPV4 |
		     PVIO_NETFRONT_FEAT_RX_GSO_TCPV6;
	if (split)
		f |= PVIO_NETFRONT_FEAT_SPLIT_EVTCHN;
	/* xennet_fix_features: no SG, no jumbo frames */
	if (!sg && dev->mtu > 1500)
		dev->mtu = 1500;
	return f;
}

static int talk_to_backend(struct pvio_netfront *dev)
{
	bool split, all_split = true, mq_key;
	unsigned long maxq;
	unsigned int nq, i;
	struct nf_publish pub;
	int rc;

	if (!be_flag(dev, "feature-rx-copy")) {
		/* Linux: "backend does not support copying receive path",
		 * and the device stays Initialising */
		fe_set_failed(&dev->fe, -ENODEV,
			      "the backend (%s) does not offer "
			      "feature-rx-copy",
			      dev->fe.be_path);
		return -ENODEV;
	}
	mq_key = be_has(dev, "multi-queue-max-queues");
	if (pvio_xenbus_read_other_uint(dev->fe.xb, "multi-queue-max-queues", 0,
					ULONG_MAX, 1, false, &maxq))
		maxq = 1;	/* garbage: one queue, as a missing key */
	if (maxq == 0)
		maxq = 1;
	nq = dev->opts.max_queues < maxq ? dev->opts.max_queues
					  : (unsigned int)maxq;
	split = !(dev->opts.flags & PVIO_NETFRONT_F_NO_SPLIT) &&
		be_flag(dev, "feature-split-event-channels");
	for (i = 0; i < nq; i++) {
		pvio_gref_t a, b;
		pvio_port_t txp, rxp;

		rc = pvio__nf_queue_create(dev, i, split, &dev->queues[i]);
		if (rc) {
			destroy_queues(dev);
			fe_fatal(&dev->fe, rc,
				 "allocating the rings, pools and event "
				 "channels of queue %u: %s",
				 i, strerror(-rc));
			return rc;
		}
		pvio__nf_queue_refs(dev->queues[i], &a, &b, &txp, &rxp);
		if (txp == rxp)
			all_split = false;
	}
	dev->nr_queues = nq;
	dev->features = negotiate(dev, split && all_split);
	for (i = 0; i < nq; i++)
		pvio__nf_queue_set_features(dev->queues[i], dev->features);

	pub.dev = dev;
	pub.mq_key = mq_key;
	rc = fe_publish(&dev->fe, publish, &pub);
	/* Initialising -> Connected: netfront never says Initialised */
	if (!rc)
		rc = pvio_xenbus_switch(dev->fe.xb, PVIO_XB_CONNECTED);
	if (rc) {
		destroy_queues(dev);
		fe_fatal(&dev->fe, rc, "writing the rings to %s: %s",
			 dev->fe.path, strerror(-rc));
		return rc;
	}
	dev->fe.phase = FE_CONNECTED;
	/* Harmless if the backend has not bound yet (dropped, as on Xen);
	 * a backend that has sees the rx buffers. */
	for (i = 0; i < nq; i++)
		pvio__nf_queue_notify_all(dev->queues[i]);
	return 0;
}

/* ---- the one dispatcher of the backend's state --------------------------- */

static void set_link(struct pvio_netfront *dev, bool up)
{
	unsigned int i;

	if (__atomic_load_n(&dev->link, __ATOMIC_RELAXED) == (int)up)
		return;
	__atomic_store_n(&dev->link, up, __ATOMIC_RELEASE);
	if (up) {
		/* the backend may have missed what we published before it
		 * bound: one kick per port */
		for (i = 0; i < dev->nr_queues; i++)
			pvio__nf_queue_notify_all(dev->queues[i]);
	}
	emit(dev, PVIO_NETFRONT_EV_LINK);
}

static void backend_changed_do(struct pvio_netfront *dev,
			       enum pvio_xb_state be)
{
	enum pvio_xb_state me = pvio_xenbus_state(dev->fe.xb);

	if (dev->fe.phase == FE_CLOSING || dev->fe.phase == FE_FAILED)
		return;
	switch (be) {
	case PVIO_XB_INITWAIT:
		/* Only acted on while Initialising: a repeat is ignored. */
		if (dev->fe.phase == FE_OPENING && me == PVIO_XB_INITIALISING)
			talk_to_backend(dev);
		else if (dev->fe.phase == FE_CONNECTED)
			set_link(dev, false);
		break;
	case PVIO_XB_CONNECTED:
		/* Linux: only netdev_notify_peers(); for us, the carrier */
		if (dev->fe.phase == FE_CONNECTED)
			set_link(dev, true);
		break;
	case PVIO_XB_CLOSING:
	case PVIO_XB_CLOSED:	/* so do Unknown and a vanished node */
		if (dev->fe.phase == FE_OPENING) {
			/* Not started yet, or done with an old session: it
			 * answers our Initialising. */
			if (me == PVIO_XB_INITIALISING && be == PVIO_XB_CLOSED)
				break;
			fe_set_failed(&dev->fe, -ENODEV,
				      "the backend (%s) went %s "
				      "during the handshake",
				      dev->fe.be_path, sname(be));
			pvio_xenbus_switch(dev->fe.xb, PVIO_XB_CLOSED);
			break;
		}
		/* xenbus_frontend_closed: no recovery, the device is dead
		 * (Closed first: whoever sees it dead sees us Closed) */
		set_link(dev, false);
		pvio_xenbus_switch(dev->fe.xb, PVIO_XB_CLOSED);
		if (pvio__nf_kill(dev, -ENOTCONN, "the backend (%s) went %s",
				  dev->fe.be_path, sname(be)))
			emit(dev, PVIO_NETFRONT_EV_DEAD);
		break;
	default:
		if (dev->fe.phase == FE_CONNECTED)
			set_link(dev, false);
		break;
	}
}

static void backend_changed(struct pvio_xenbus *xb, enum pvio_xb_state be,
			    void *opaque)
{
	(void)xb;
	backend_changed_do(opaque, be);
}

/* ---- waiting for the backend --------------------------------------------- */

int pvio__nf_xb_open(struct pvio_netfront *dev)
{
	/* netback goes back to InitWait only after Closed */
	static const struct fe_reset reset = {
		.ready = FE_XB(INITIALISING) | FE_XB(INITWAIT),
		.strict = true,
	};
	uint64_t deadline;
	int rc;

	pvio_xb_frontend_path(dev->fe.path, dev->fe.self, "vif", dev->fe.devid);
	dev->fe.phase = FE_CLOSING;	/* the dispatcher waits for reset */
	rc = pvio_xenbus_open(&dev->fe.xb, dev->fe.xs, dev->fe.path, "backend",
			      "backend-id", backend_changed, dev);
	if (rc) {
		snprintf(dev->fe.msg, sizeof(dev->fe.msg),
			 "no vif %u for domain %u: cannot read %s/backend and "
			 "backend-id: %s",
			 dev->fe.devid, dev->fe.self, dev->fe.path,
			 strerror(-rc));
		return rc == -ENOENT || rc == -EINVAL ? -ENODEV : rc;
	}
	dev->fe.backend_id = pvio_xenbus_otherend_id(dev->fe.xb);
	snprintf(dev->fe.be_path, sizeof(dev->fe.be_path), "%s",
		 pvio_xenbus_otherend(dev->fe.xb));

	rc = fe_reset_stale(&dev->fe, dev->opts.timeout_ms, &reset);
	if (rc)
		return rc;
	rc = read_own(dev);
	if (rc)
		return rc;

	dev->fe.phase = FE_OPENING;
	deadline = pvio_now_ms() + dev->opts.timeout_ms;
	for (;;) {
		enum pvio_xb_state be = pvio_xenbus_other_state(dev->fe.xb), me;
		uint64_t now;

		/* The dispatcher runs from our pump too; evaluating the
		 * current state here as well makes lost or stolen events
		 * harmless. */
		backend_changed_do(dev, be);
		if (dev->fe.phase == FE_CONNECTED)
			break;
		if (dev->fe.phase == FE_FAILED)
			return dev->fe.err;
		me = pvio_xenbus_state(dev->fe.xb);
		now = pvio_now_ms();
		if (now >= deadline) {
			fe_set_failed(
			    &dev->fe, -ETIMEDOUT,
			    "timed out after %u ms waiting for the "
			    "backend (%s) to reach InitWait: it is %s, "
			    "we are %s",
			    dev->opts.timeout_ms, dev->fe.be_path, sname(be),
			    sname(me));
			return -ETIMEDOUT;
		}
		pvio_xs_pump(dev->fe.xs, deadline - now < 100
					     ? (int)(deadline - now)
					     : 100);
	}
	/* The backend may be Connected already. */
	if (pvio_xenbus_other_state(dev->fe.xb) == PVIO_XB_CONNECTED)
		__atomic_store_n(&dev->link, 1, __ATOMIC_RELEASE);
	return 0;
}

/*
 * open() succeeded: events go out from now on. A backend that reached
 * Connected while open() ran put the link up when no event could be
 * emitted (and its watch event, if already seen, changes nothing now):
 * its EV_LINK is emitted here, before any control thread starts, so that
 * it cannot cross a later one.
 */
void pvio__nf_xb_live(struct pvio_netfront *dev)
{
	dev->fe.live = true;
	if (__atomic_load_n(&dev->link, __ATOMIC_ACQUIRE))
		emit(dev, PVIO_NETFRONT_EV_LINK);
}

/* Closing -> Closed, each step waiting for the backend to follow:
 * netback unmaps the rings when it sees our Closed, then goes Closed. */
int pvio__nf_xb_close(struct pvio_netfront *dev)
{
	return dev->fe.xb ? pvio_xenbus_frontend_close(dev->fe.xb,
						       dev->opts.timeout_ms)
			  : 0;
}

void pvio__nf_xb_release(struct pvio_netfront *dev)
{
	pvio_xenbus_close(dev->fe.xb);
	dev->fe.xb = NULL;
}
