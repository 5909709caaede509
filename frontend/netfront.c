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

/* ---- death --------------------------------------------------------------- */

bool pvio__nf_kill(struct pvio_netfront *dev, int err, const char *fmt, ...)
{
	unsigned int i;

	if (!FE_KILL(&dev->fe, &dev->dead, err, fmt))
		return false;
	for (i = 0; i < PVIO_NETFRONT_MAX_QUEUES; i++)
		pvio__nf_queue_kick(dev->queues[i]);
	return true;
}

/* ---- the device ---------------------------------------------------------- */

static int check_opts(void *opts, char *why, size_t len)
{
	struct pvio_netfront_opts *o = opts;

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
	static const struct fe_kind kind = {
		.size = sizeof(struct pvio_netfront),
		.fe_off = offsetof(struct pvio_netfront, fe),
		.opts_off = offsetof(struct pvio_netfront, opts),
		.opts_size = sizeof(struct pvio_netfront_opts),
		.check_opts = check_opts,
	};
	struct pvio_netfront *dev;
	int rc;

	*out = NULL;
	dev = fe_open_alloc(&kind, p, x, devid, opts, err, errlen, &rc);
	if (!dev)
		return rc;
	dev->mtu = 1500;

	rc = pvio__nf_xb_open(dev);
	if (!rc) {
		pvio__nf_xb_live(dev);
		if (dev->opts.flags & PVIO_NETFRONT_F_THREAD)
			rc = fe_thread_start(&dev->fe);
	}
	if (rc) {
		fe_open_error(&dev->fe, rc, err, errlen);
		/* Rings that were published are withdrawn properly. */
		if (dev->fe.phase == FE_CONNECTED) {
			dev->fe.phase = FE_CLOSING;
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
	fe_thread_stop(&dev->fe);
	dev->fe.phase = FE_CLOSING;
	dev->fe.live = false;
	/* A broken backend: say so where the toolstack looks (Linux only
	 * marks the device dead; xenbus_dev_fatal's node is more useful). */
	if (nf_dead(dev) == -EPROTO && dev->fe.xb)
		pvio_xenbus_fatal(dev->fe.xb, -EPROTO, "%s", dev->fe.dead_msg);
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
	info->devid = dev->fe.devid;
	info->backend_id = dev->fe.backend_id;
	snprintf(info->backend, sizeof(info->backend), "%s", dev->fe.be_path);
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
	return nf_dead(dev) ? dev->fe.dead_msg : "";
}

struct pvio_netfront_queue *pvio_netfront_queue(struct pvio_netfront *dev,
						unsigned int idx)
{
	return idx < dev->nr_queues ? dev->queues[idx] : NULL;
}
