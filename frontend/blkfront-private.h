/* SPDX-License-Identifier: MIT */
/*
 * frontend/: blkfront internals. blkfront-xenbus.c (handshake, backend
 * state, resize) and blkfront-dataplane.c (rings, pools, the hot path)
 * meet at the pvio__bf_queue_* calls below; blkfront.c holds the device,
 * its death, and the synchronous helpers.
 */
#ifndef PVIO_FRONTEND_BLKFRONT_PRIVATE_H
#define PVIO_FRONTEND_BLKFRONT_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <pvio/blkfront.h>
#include <pvio/platform.h>

#include "fe.h"

#define BF_DEFAULT_QUEUES	1u
#define BF_DEFAULT_DEPTH	64u
#define BF_DEFAULT_RING_PAGES	16u
#define BF_DEFAULT_INDIRECT	32u
#define BF_DEFAULT_TIMEOUT_MS	10000u
#define BF_DIRECT_SEGS		11u	/* segments in a request */
#define BF_SEGS_PER_PAGE	512u	/* segments per indirect page */
#define BF_MAX_IND_PAGES	8u	/* BLKIF_MAX_INDIRECT_PAGES_PER_REQ */
#define BF_SHARE_CHUNK		1024u	/* pages per grant share */

struct pvio_blkfront {
	/*
	 * Read by the hot path. Written before any queue starts, except the
	 * atomics: sectors (resize), features (a withdrawn flush or
	 * discard), dead (0 or -errno, release-stored once dead_msg is set).
	 */
	uint64_t sectors;
	uint32_t features;
	int dead;
	uint32_t sector_size;
	uint32_t discard_gran;		/* bytes, >= sector_size */
	uint32_t discard_align;		/* bytes, < discard_gran */
	bool readonly;
	uint16_t handle;

	/* ---- control path ------------------------------------------------ */
	struct fe_dev fe;		/* phase to live: under lock */
	struct pvio_blkfront_opts opts;
	pthread_mutex_t lock;		/* fe's state, everything below */
	unsigned int pending_events;	/* atomic: 1 << ev, for deliver */
	int sectors_watch;

	/* negotiated */
	unsigned int nr_queues, ring_pages, depth, max_segs;
	bool indirect;
	uint32_t vdisk_info, physical_sector_size;
	struct pvio_blkfront_queue *queues[PVIO_BLKFRONT_MAX_QUEUES];
};

static inline int bf_dead(const struct pvio_blkfront *dev)
{
	return __atomic_load_n(&dev->dead, __ATOMIC_ACQUIRE);
}

/* ---- blkfront.c ---------------------------------------------------------- */

/*
 * Kill the device (cold, any thread, no lock held or dev->lock held):
 * the first caller sets the error and message, kicks every queue so that
 * its thread fails what is in flight, and queues EV_DEAD. Return true for
 * that first caller.
 */
bool pvio__bf_kill(struct pvio_blkfront *dev, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4), cold));
/* Deliver the events queued under dev->lock; call without it. */
void pvio__bf_deliver_events(struct pvio_blkfront *dev);
/* The dataplane saw the backend break the protocol: kill with -EPROTO
 * and fail the device in xenstore (Linux: "disabled for further use"). */
void pvio__bf_protocol_error(struct pvio_blkfront *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), cold));

/* ---- blkfront-xenbus.c --------------------------------------------------- */

/* The handshake (open) and the teardown handshake (close). */
int pvio__bf_xb_open(struct pvio_blkfront *dev);
int pvio__bf_xb_close(struct pvio_blkfront *dev);
/* Unwatch and close our end (close, and open's failure paths). */
void pvio__bf_xb_release(struct pvio_blkfront *dev);
/* xenbus_dev_fatal: <path>/error and Closing. Takes dev->lock. */
void pvio__bf_xb_fatal(struct pvio_blkfront *dev, int err, const char *msg);

/* ---- blkfront-dataplane.c: the narrow start/stop seam -------------------- */

/*
 * At the backend's InitWait: queue @idx with its own platform handle, a
 * ring of @ring_pages pages granted to the backend and an unbound event
 * channel for it. Its grant refs and port go into xenstore.
 */
int pvio__bf_queue_create(struct pvio_blkfront *dev, unsigned int idx,
			  unsigned int ring_pages,
			  struct pvio_blkfront_queue **out);
void pvio__bf_queue_ring(const struct pvio_blkfront_queue *q,
			 const pvio_gref_t **refs, unsigned int *pages,
			 pvio_port_t *port);
/*
 * At the backend's Connected: grant the data pool (@depth slots of
 * @max_segs pages, plus indirect pages when @indirect) and open the queue
 * for I/O.
 */
int pvio__bf_queue_start(struct pvio_blkfront_queue *q, unsigned int depth,
			 unsigned int max_segs, bool indirect);
/* Wake the queue's thread (the device died). Any thread. */
void pvio__bf_queue_kick(struct pvio_blkfront_queue *q);
/* End the grants, close the port and the handle. Accepts NULL. */
void pvio__bf_queue_destroy(struct pvio_blkfront_queue *q);
unsigned int pvio__bf_queue_index(const struct pvio_blkfront_queue *q);
struct pvio_blkfront *pvio__bf_queue_dev(const struct pvio_blkfront_queue *q);

#endif
