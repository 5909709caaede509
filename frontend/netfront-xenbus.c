// SPDX-License-Identifier: MIT
/*
 * netfront's XenBus handshake as Linux's xen-netfront runs it: Initialising, then at
 * the backend's InitWait talk_to_netback (rings, event channels and
 * features in one transaction) and straight to Connected; the backend's
 * Connected is the carrier; its Closing/Closed ends the device
 * (xenbus_frontend_closed). One dispatcher (backend_changed) for the
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

/* The handshake failed. */
static void __attribute__((format(printf, 3, 4)))
set_failed(struct pvio_netfront *dev, int err, const char *fmt, ...)
{
	va_list ap;

	if (dev->phase == NF_FAILED)
		return;
	va_start(ap, fmt);
	vsnprintf(dev->msg, sizeof(dev->msg), fmt, ap);
	va_end(ap);
	dev->err = err;
	dev->phase = NF_FAILED;
}

/* As xenbus_dev_fatal: fail the device in xenstore too (Closing). */
#define fatal(dev, err, ...)						\
	do {								\
		set_failed((dev), (err), __VA_ARGS__);			\
		pvio_xenbus_fatal((dev)->xb, (err), "%s", (dev)->msg);	\
	} while (0)

static void emit(struct pvio_netfront *dev, enum pvio_netfront_event ev)
{
	if (dev->live && dev->opts.event)
		dev->opts.event(dev, ev, dev->opts.opaque);
}

/* ---- reading the backend ------------------------------------------------- */

/* A feature flag: nonzero is on (Linux: xenbus_read_unsigned() != 0);
 * absent or garbage is off. */
static bool be_flag(struct pvio_netfront *dev, const char *key)
{
	unsigned long v;

	return pvio_xenbus_read_other_uint(dev->xb, key, 0, ULONG_MAX, 0,
					   false, &v) == 0 && v != 0;
}

static bool be_has(struct pvio_netfront *dev, const char *key)
{
	char path[2 * PVIO_XS_PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", dev->be_path, key);
	return pvio_xs_exists(dev->xs, 0, path);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* xen_net_read_mac: exactly "xx:xx:xx:xx:xx:xx". */
static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int i;

	if (strlen(s) != 17)
		return -EINVAL;
	for (i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int read_own(struct pvio_netfront *dev)
{
	char key[PVIO_XS_PATH_MAX + 16], *v = NULL;
	unsigned long mtu;
	int rc;

	snprintf(key, sizeof(key), "%s/mac", dev->path);
	rc = pvio_xs_read(dev->xs, 0, key, &v);
	if (rc >= 0) {
		rc = parse_mac(v, dev->mac);
		free(v);
	}
	if (rc) {
		fatal(dev, -EINVAL, "parsing %s: %s", key,
		      rc == -EINVAL ? "not xx:xx:xx:xx:xx:xx" : strerror(-rc));
		return -EINVAL;
	}
	/* libxl writes `mtu` (read-only to us) when it is not 1500 */
	snprintf(key, sizeof(key), "%s/mtu", dev->path);
	if (pvio_xs_read_uint_default(dev->xs, 0, key, 68, 65535, 1500, &mtu))
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

static int clean_keys(struct pvio_netfront *dev, pvio_xs_tx_t tx)
{
	char key[2 * PVIO_XS_PATH_MAX], **names = NULL;
	int n, i, rc = 0;

	n = pvio_xs_directory(dev->xs, tx, dev->path, &names);
	if (n < 0)
		return n;
	for (i = 0; i < n && !rc; i++) {
		if (!stale_key(names[i]))
			continue;
		snprintf(key, sizeof(key), "%s/%s", dev->path, names[i]);
		rc = pvio_xs_rm(dev->xs, tx, key);
	}
	free(names);
	return rc;
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
	return pvio_xs_write(dev->xs, tx, path, val);
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

static int publish(struct pvio_netfront *dev, pvio_xs_tx_t tx, bool mq_key)
{
	unsigned int fl = dev->opts.flags, i;
	char dir[PVIO_XS_PATH_MAX + 32];
	bool csum = !(fl & PVIO_NETFRONT_F_NO_CSUM);
	bool sg = !(fl & PVIO_NETFRONT_F_NO_SG);
	bool gso = sg && csum && !(fl & PVIO_NETFRONT_F_NO_GSO);
	int rc;

	rc = clean_keys(dev, tx);
	/* Linux: only if the backend has the key, even for one queue */
	if (!rc && mq_key)
		rc = wr(dev, tx, dev->path, "multi-queue-num-queues", "%u",
			dev->nr_queues);
	if (dev->nr_queues == 1) {
		if (!rc)
			rc = write_queue(dev, tx, dev->path, dev->queues[0]);
	} else {
		for (i = 0; i < dev->nr_queues && !rc; i++) {
			snprintf(dir, sizeof(dir), "%s/queue-%u", dev->path, i);
			rc = write_queue(dev, tx, dir, dev->queues[i]);
		}
	}
	if (!rc)
		rc = wr(dev, tx, dev->path, "request-rx-copy", "1");
	/* without it Linux netback turns rx stall detection off and drops
	 * queued packets after 30 ms */
	if (!rc)
		rc = wr(dev, tx, dev->path, "feature-rx-notify", "1");
	if (!rc && sg)
		rc = wr(dev, tx, dev->path, "feature-sg", "1");
	if (!rc && gso)
		rc = wr(dev, tx, dev->path, "feature-gso-tcpv4", "1");
	if (!rc && gso)
		rc = wr(dev, tx, dev->path, "feature-gso-tcpv6", "1");
	if (!rc && csum)
		rc = wr(dev, tx, dev->path, "feature-ipv6-csum-offload", "1");
	if (!rc && !csum)
		rc = wr(dev, tx, dev->path, "feature-no-csum-offload", "1");
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
	pvio_xs_tx_t tx;
	int rc, tries = 0;

	if (!be_flag(dev, "feature-rx-copy")) {
		/* Linux: "backend does not support copying receive path",
		 * and the device stays Initialising */
		set_failed(dev, -ENODEV, "the backend (%s) does not offer "
			   "feature-rx-copy", dev->be_path);
		return -ENODEV;
	}
	mq_key = be_has(dev, "multi-queue-max-queues");
	if (pvio_xenbus_read_other_uint(dev->xb, "multi-queue-max-queues", 0,
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
			fatal(dev, rc, "allocating the rings, pools and event "
			      "channels of queue %u: %s", i, strerror(-rc));
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

	/* One transaction, as Linux: the backend sees all or nothing. */
	do {
		rc = pvio_xs_tx_start(dev->xs, &tx);
		if (rc)
			break;
		rc = publish(dev, tx, mq_key);
		if (rc) {
			pvio_xs_tx_end(dev->xs, tx, true);
			break;
		}
		rc = pvio_xs_tx_end(dev->xs, tx, false);
	} while (rc == -EAGAIN && ++tries < 100);
	/* Initialising -> Connected: netfront never says Initialised */
	if (!rc)
		rc = pvio_xenbus_switch(dev->xb, PVIO_XB_CONNECTED);
	if (rc) {
		destroy_queues(dev);
		fatal(dev, rc, "writing the rings to %s: %s", dev->path,
		      strerror(-rc));
		return rc;
	}
	dev->phase = NF_CONNECTED;
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
	enum pvio_xb_state me = pvio_xenbus_state(dev->xb);

	if (dev->phase == NF_CLOSING || dev->phase == NF_FAILED)
		return;
	switch (be) {
	case PVIO_XB_INITWAIT:
		/* Only acted on while Initialising: a repeat is ignored. */
		if (dev->phase == NF_OPENING && me == PVIO_XB_INITIALISING)
			talk_to_backend(dev);
		else if (dev->phase == NF_CONNECTED)
			set_link(dev, false);
		break;
	case PVIO_XB_CONNECTED:
		/* Linux: only netdev_notify_peers(); for us, the carrier */
		if (dev->phase == NF_CONNECTED)
			set_link(dev, true);
		break;
	case PVIO_XB_CLOSING:
	case PVIO_XB_CLOSED:	/* so do Unknown and a vanished node */
		if (dev->phase == NF_OPENING) {
			/* Not started yet, or done with an old session: it
			 * answers our Initialising. */
			if (me == PVIO_XB_INITIALISING && be == PVIO_XB_CLOSED)
				break;
			set_failed(dev, -ENODEV, "the backend (%s) went %s "
				   "during the handshake", dev->be_path,
				   sname(be));
			pvio_xenbus_switch(dev->xb, PVIO_XB_CLOSED);
			break;
		}
		/* xenbus_frontend_closed: no recovery, the device is dead
		 * (Closed first: whoever sees it dead sees us Closed) */
		set_link(dev, false);
		pvio_xenbus_switch(dev->xb, PVIO_XB_CLOSED);
		if (pvio__nf_kill(dev, -ENOTCONN, "the backend (%s) went %s",
				  dev->be_path, sname(be)))
			emit(dev, PVIO_NETFRONT_EV_DEAD);
		break;
	default:
		if (dev->phase == NF_CONNECTED)
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

/*
 * An earlier process left this device mid-session (our state is not
 * Initialising, or the backend is past InitWait): close that session
 * first, waiting for the backend at each step, so that it sees
 * Initialising while Closed (Linux netback goes back to InitWait only
 * then).
 */
static int reset_stale(struct pvio_netfront *dev)
{
	enum pvio_xb_state me = pvio_xenbus_state(dev->xb), be;
	unsigned int t = dev->opts.timeout_ms;
	int rc;

	be = pvio_xenbus_other_state(dev->xb);
	if (me == PVIO_XB_INITIALISING &&
	    (be == PVIO_XB_INITIALISING || be == PVIO_XB_INITWAIT))
		return 0;
	if (me == PVIO_XB_UNKNOWN) {
		snprintf(dev->msg, sizeof(dev->msg), "%s/state is missing",
			 dev->path);
		return -ENODEV;
	}
	if (me != PVIO_XB_INITIALISING && me != PVIO_XB_CLOSING &&
	    me != PVIO_XB_CLOSED) {
		rc = pvio_xenbus_switch(dev->xb, PVIO_XB_CLOSING);
		if (rc)
			goto fail_switch;
		/* a backend that does not answer: try Closed anyway */
		pvio_xenbus_wait_other(dev->xb, M(CLOSING) | M(CLOSED) |
				       M(INITWAIT) | M(INITIALISING), t, &be);
	}
	rc = pvio_xenbus_switch(dev->xb, PVIO_XB_CLOSED);
	if (rc)
		goto fail_switch;
	rc = pvio_xenbus_wait_other(dev->xb, M(CLOSED) | M(INITWAIT) |
				    M(INITIALISING), t, &be);
	if (rc) {
		snprintf(dev->msg, sizeof(dev->msg),
			 "timed out after %u ms waiting for the backend (%s) "
			 "to close the previous connection: it is %s", t,
			 dev->be_path, sname(be));
		return rc;
	}
	rc = pvio_xenbus_switch(dev->xb, PVIO_XB_INITIALISING);
	if (rc)
		goto fail_switch;
	return 0;
fail_switch:
	snprintf(dev->msg, sizeof(dev->msg), "cannot write %s/state: %s",
		 dev->path, strerror(-rc));
	return rc == -ENOENT ? -ENODEV : rc;
}

int pvio__nf_xb_open(struct pvio_netfront *dev)
{
	uint64_t deadline;
	int rc;

	pvio_xb_frontend_path(dev->path, dev->self, "vif", dev->devid);
	dev->phase = NF_CLOSING;	/* the dispatcher waits for reset */
	rc = pvio_xenbus_open(&dev->xb, dev->xs, dev->path, "backend",
			      "backend-id", backend_changed, dev);
	if (rc) {
		snprintf(dev->msg, sizeof(dev->msg),
			 "no vif %u for domain %u: cannot read %s/backend and "
			 "backend-id: %s", dev->devid, dev->self, dev->path,
			 strerror(-rc));
		return rc == -ENOENT || rc == -EINVAL ? -ENODEV : rc;
	}
	dev->backend_id = pvio_xenbus_otherend_id(dev->xb);
	snprintf(dev->be_path, sizeof(dev->be_path), "%s",
		 pvio_xenbus_otherend(dev->xb));

	rc = reset_stale(dev);
	if (rc)
		return rc;
	rc = read_own(dev);
	if (rc)
		return rc;

	dev->phase = NF_OPENING;
	deadline = pvio_now_ms() + dev->opts.timeout_ms;
	for (;;) {
		enum pvio_xb_state be = pvio_xenbus_other_state(dev->xb), me;
		uint64_t now;

		/* The dispatcher runs from our pump too; evaluating the
		 * current state here as well makes lost or stolen events
		 * harmless. */
		backend_changed_do(dev, be);
		if (dev->phase == NF_CONNECTED)
			break;
		if (dev->phase == NF_FAILED)
			return dev->err;
		me = pvio_xenbus_state(dev->xb);
		now = pvio_now_ms();
		if (now >= deadline) {
			set_failed(dev, -ETIMEDOUT,
				   "timed out after %u ms waiting for the "
				   "backend (%s) to reach InitWait: it is %s, "
				   "we are %s", dev->opts.timeout_ms,
				   dev->be_path, sname(be), sname(me));
			return -ETIMEDOUT;
		}
		pvio_xs_pump(dev->xs, deadline - now < 100 ?
					      (int)(deadline - now) : 100);
	}
	/* The backend may be Connected already. */
	if (pvio_xenbus_other_state(dev->xb) == PVIO_XB_CONNECTED)
		__atomic_store_n(&dev->link, 1, __ATOMIC_RELEASE);
	return 0;
}

/* Closing -> Closed, each step waiting for the backend to follow:
 * netback unmaps the rings when it sees our Closed, then goes Closed. */
int pvio__nf_xb_close(struct pvio_netfront *dev)
{
	return dev->xb ? pvio_xenbus_frontend_close(dev->xb,
						    dev->opts.timeout_ms) : 0;
}

void pvio__nf_xb_release(struct pvio_netfront *dev)
{
	pvio_xenbus_close(dev->xb);
	dev->xb = NULL;
}
