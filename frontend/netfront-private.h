/* SPDX-License-Identifier: MIT */
/*
 * frontend/: netfront internals. netfront.c (the device, its death),
 * netfront-xenbus.c (the handshake, the backend's state, close) and
 * netfront-dataplane.c (rings, pools, the hot path) meet at the pvio__nf_*
 * calls below.
 */
#ifndef PVIO_FRONTEND_NETFRONT_PRIVATE_H
#define PVIO_FRONTEND_NETFRONT_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <pvio/netfront.h>
#include <pvio/platform.h>

#include "fe.h"

#define NF_DEFAULT_TIMEOUT_MS	10000u

struct pvio_netfront {
	/*
	 * Read by the hot path and by any thread: dead (0 or -errno,
	 * release-stored once dead_msg is written), link.
	 */
	int dead;
	int link;

	/* ---- control path (one thread at a time) ---- */
	struct fe_dev fe;
	struct pvio_netfront_opts opts;

	/* negotiated */
	uint8_t mac[6];
	unsigned int mtu;
	uint32_t features;
	unsigned int nr_queues;
	struct pvio_netfront_queue *queues[PVIO_NETFRONT_MAX_QUEUES];
};

static inline int nf_dead(const struct pvio_netfront *dev)
{
	return __atomic_load_n(&dev->dead, __ATOMIC_ACQUIRE);
}

/* ---- netfront.c --------------------------------------------------------- */

/*
 * Kill the device (cold, any thread): the first caller sets the error and
 * the message and kicks every queue (its fd turns readable). Return true
 * for that first caller.
 */
bool pvio__nf_kill(struct pvio_netfront *dev, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), cold));

/* ---- netfront-xenbus.c --------------------------------------------------- */

/* The handshake (open) and the teardown handshake (close). */
int pvio__nf_xb_open(struct pvio_netfront *dev);
void pvio__nf_xb_live(struct pvio_netfront *dev);
int pvio__nf_xb_close(struct pvio_netfront *dev);
/* Close our end (close, and open's failure paths). */
void pvio__nf_xb_release(struct pvio_netfront *dev);

/* ---- netfront-dataplane.c: the narrow start/stop seam -------------------- */

/*
 * At the backend's InitWait: queue @idx with its own platform handle, a tx
 * and an rx ring granted to the backend, the tx pool (read-only to it) and
 * the rx pool, and one (@split: two) unbound event channels. The rx ring
 * is filled with requests (published, not notified: nobody is bound yet).
 */
int pvio__nf_queue_create(struct pvio_netfront *dev, unsigned int idx,
			  bool split, struct pvio_netfront_queue **out);
/* What goes into xenstore. */
void pvio__nf_queue_refs(const struct pvio_netfront_queue *q,
			 pvio_gref_t *tx_ref, pvio_gref_t *rx_ref,
			 pvio_port_t *tx_port, pvio_port_t *rx_port);
/* Fixed after publication: the negotiated PVIO_NETFRONT_FEAT_* bits. */
void pvio__nf_queue_set_features(struct pvio_netfront_queue *q,
				 uint32_t features);
/* Notify the backend on every port once (it may have missed what we
 * published before it bound). Any thread. */
void pvio__nf_queue_notify_all(struct pvio_netfront_queue *q);
/* Wake the queue's user (the device died). Any thread. */
void pvio__nf_queue_kick(struct pvio_netfront_queue *q);
/* Close the ports, end the grants, close the handle. Accepts NULL. */
void pvio__nf_queue_destroy(struct pvio_netfront_queue *q);

#endif
