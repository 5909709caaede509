// SPDX-License-Identifier: MIT
/*
 * netfront: the device (open, close, info) and its death. The handshake is
 * in netfront-xenbus.c, the rings and the hot path in netfront-dataplane.c
 * (blkfront's shape).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pvio/ring.h>

#include "netfront-private.h"

#define NF_KNOWN_FLAGS							\
	(PVIO_NETFRONT_F_THREAD | PVIO_NETFRONT_F_NO_SPLIT |		\
	 PVIO_NETFRONT_F_NO_SG | PVIO_NETFRONT_F_NO_GSO |		\
	 PVIO_NETFRONT_F_NO_CSUM)

/* ---- the device ---------------------------------------------------------- */

static void copy_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

static int check_opts(struct pvio_netfront_opts *o, char *why, size_t len)
{
	if (o->max_queues == 0)
		o->max_queues = 1;
	if (o->timeout_ms == 0)
		o->timeout_ms = NF_DEFAULT_TIMEOUT_MS;
	if (o->max_queues > PVIO_NETFRONT_MAX_QUEUES)
		snprintf(why, len, "max_queues %u: at most %u", o->max_queues,
			 PVIO_NETFRONT_MAX_QUEUES);
	else if (o->flags & ~(unsigned int)NF_KNOWN_FLAGS)
		snprintf(why, len, "unknown flags %#x", o->flags);
	else
		return 0;
	return -EINVAL;
}

static void free_dev(struct pvio_netfront *dev)
{
	unsigned int i;

	for (i = 0; i < PVIO_NETFRONT_MAX_QUEUES; i++)
		pvio__nf_queue_destroy(dev->queues[i]);
	pvio__nf_xb_release(dev);
	free(dev);
}

int pvio_netfront_open(struct pvio_netfront **out, struct pvio_platform *p,
		       struct pvio_xs *x, unsigned int devid,
		       const struct pvio_netfront_opts *opts, char *err,
		       size_t errlen)
{
	struct pvio_netfront *dev;
	char why[128];
	int rc;

	*out = NULL;
	if (!p || !x) {
		copy_err(err, errlen, "no platform or xenstore handle");
		return -EINVAL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		copy_err(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (opts)
		dev->opts = *opts;
	rc = check_opts(&dev->opts, why, sizeof(why));
	if (!rc) {
		/* the queues' threads open their own handles with it */
		rc = pvio_platform_spec(p, dev->spec, sizeof(dev->spec));
		if (rc)
			snprintf(why, sizeof(why), "the platform's spec: %s",
				 strerror(-rc));
	}
	if (rc) {
		copy_err(err, errlen, why);
		free(dev);
		return rc;
	}
	dev->plat = p;
	dev->xs = x;
	dev->self = pvio_platform_domid(p);
	dev->devid = devid;
	dev->mtu = 1500;

	rc = pvio__nf_xb_open(dev);
	if (!rc) {
		dev->live = true;
		if (dev->opts.flags & PVIO_NETFRONT_F_THREAD) {
			rc = pvio_xs_thread_start(dev->xs, &dev->ctl_thread);
			if (rc)
				snprintf(dev->msg, sizeof(dev->msg),
					 "cannot start the control thread: %s",
					 strerror(-rc));
		}
	}
	if (rc) {
		copy_err(err, errlen, dev->msg[0] ? dev->msg : strerror(-rc));
		/* Rings that were published are withdrawn properly. */
		if (dev->phase == NF_CONNECTED) {
			dev->phase = NF_CLOSING;
			pvio__nf_xb_close(dev);
		}
		free_dev(dev);
		return rc;
	}
	*out = dev;
	return 0;
}

int pvio_netfront_close(struct pvio_netfront *dev)
{
	int rc;

	if (!dev)
		return 0;
	pvio_xs_thread_stop(dev->ctl_thread);
	dev->ctl_thread = NULL;
	dev->phase = NF_CLOSING;
	dev->live = false;
	/* A broken backend: say so where the toolstack looks (Linux only
	 * marks the device dead; xenbus_dev_fatal's node is more useful). */
	if (nf_dead(dev) == -EPROTO && dev->xb)
		pvio_xenbus_fatal(dev->xb, -EPROTO, "%s", dev->dead_msg);
	rc = pvio__nf_xb_close(dev);
	free_dev(dev);
	return rc;
}

void pvio_netfront_info(const struct pvio_netfront *dev,
			struct pvio_netfront_info *info)
{
	memset(info, 0, sizeof(*info));
	memcpy(info->mac, dev->mac, sizeof(info->mac));
	info->mtu = dev->mtu;
	info->features = dev->features;
	info->nr_queues = dev->nr_queues;
	info->tx_ring_size = pvio_netif_tx_ring_size(1);
	info->rx_ring_size = pvio_netif_rx_ring_size(1);
	info->devid = dev->devid;
	info->backend_id = dev->backend_id;
	snprintf(info->backend, sizeof(info->backend), "%s", dev->be_path);
}

bool pvio_netfront_link_up(const struct pvio_netfront *dev)
{
	return __atomic_load_n(&dev->link, __ATOMIC_ACQUIRE) != 0;
}

int pvio_netfront_dead(const struct pvio_netfront *dev)
{
	return nf_dead(dev);
}

const char *pvio_netfront_error(const struct pvio_netfront *dev)
{
	return nf_dead(dev) ? dev->dead_msg : "";
}

struct pvio_netfront_queue *pvio_netfront_queue(struct pvio_netfront *dev,
						unsigned int idx)
{
	return idx < dev->nr_queues ? dev->queues[idx] : NULL;
}

/* ---- death --------------------------------------------------------------- */

bool pvio__nf_kill(struct pvio_netfront *dev, int err, const char *fmt, ...)
{
	unsigned int i;
	va_list ap;

	if (__atomic_exchange_n(&dev->dying, 1, __ATOMIC_ACQ_REL))
		return false;
	va_start(ap, fmt);
	vsnprintf(dev->dead_msg, sizeof(dev->dead_msg), fmt, ap);
	va_end(ap);
	/* Release: whoever sees dead sees the message. */
	__atomic_store_n(&dev->dead, err, __ATOMIC_RELEASE);
	for (i = 0; i < PVIO_NETFRONT_MAX_QUEUES; i++)
		pvio__nf_queue_kick(dev->queues[i]);
	return true;
}
