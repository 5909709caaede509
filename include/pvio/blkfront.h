/* SPDX-License-Identifier: MIT */
/*
 * pvio blkfront: a userspace Xen PV block frontend. It speaks the protocol
 * of Linux's xen-blkfront (xen/io/blkif.h) to any blkif backend: Linux
 * xen-blkback, QEMU's qdisk, pvio-backd, on Xen or in a sim world.
 *
 *  - pvio_blkfront_open() runs the XenBus handshake for one vbd of this
 *    domain and returns once the backend is Connected. close() runs the
 *    Closing -> Closed handshake and gives every grant back.
 *  - Each queue is one ring and one event channel, used by one thread at a
 *    time, with no lock, malloc or logging on its path: prep requests,
 *    submit them (one publication and at most one notification per
 *    batch), reap completions (callbacks), sleep on the queue's fd.
 *  - Data goes through a pool of pages granted once to the backend (slot i
 *    of a queue owns its segment pages and its indirect pages), so no grant
 *    operation happens per request; user buffers are copied in and out.
 *  - The backend is not trusted: a response with an unknown or duplicate
 *    id, a wrong operation echo, or an index that claims responses never
 *    asked for kills the device (never the process): every outstanding and
 *    later I/O fails with -EIO.
 *
 * Units: offsets and lengths are bytes. On the wire every sector field is
 * in 512-byte units whatever the disk's sector-size (the 2024 blkif rule);
 * sector-size only says to what offsets and lengths must be aligned.
 *
 * Threads: the control path (handshake, backend state, resize) runs from
 * pvio_xs_dispatch() on the caller's pvio_xs, or from a library thread with
 * PVIO_BLKFRONT_F_THREAD. A queue belongs to one thread at a time; queues
 * are independent. Everything returns 0 (or a count) or -errno; nothing
 * prints.
 */
#ifndef PVIO_BLKFRONT_H
#define PVIO_BLKFRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <pvio/platform.h>
#include <pvio/xenbus.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pvio_blkfront;
struct pvio_blkfront_queue;

#define PVIO_BLKFRONT_SECTOR		512u	/* the wire's unit */
#define PVIO_BLKFRONT_MAX_QUEUES	16u
#define PVIO_BLKFRONT_MAX_DEPTH		512u	/* a 16-page ring */
#define PVIO_BLKFRONT_MAX_SEGMENTS	1024u	/* per request (4 MiB) */
#define PVIO_BLKFRONT_NO_INDIRECT	UINT32_MAX /* opts: direct only */
#define PVIO_BLKFRONT_ERR_MAX		512u	/* an error buffer */
#define PVIO_BLKFRONT_MAX_BUFS		16u	/* granted buffers per queue */
#define PVIO_BLKFRONT_BUF_MAX		(4u << 20)	/* bytes per buffer */

/* Something the application may want to act on (opts.event). */
enum pvio_blkfront_event {
	/* The backend changed `sectors` (online resize): re-read info. */
	PVIO_BLKFRONT_EV_RESIZE = 1,
	/*
	 * The device is dead: the backend went Closing/Closed or broke the
	 * protocol. Outstanding I/O completes with -EIO on its queue's next
	 * reap (each queue's fd turns readable); pvio_blkfront_error() says
	 * why. The only thing left to do is pvio_blkfront_close().
	 */
	PVIO_BLKFRONT_EV_DEAD = 2,
};

/*
 * Called from the thread running the control path (pvio_xs_dispatch() or
 * the library thread) or, for EV_DEAD after a protocol violation, from the
 * queue thread that saw it. Must not call pvio_blkfront_close().
 */
typedef void (*pvio_blkfront_event_fn)(struct pvio_blkfront *dev,
				       enum pvio_blkfront_event ev,
				       void *opaque);

enum {
	/*
	 * Run a control thread that dispatches the watch events of the
	 * pvio_xs given to open() (all of them, the caller's own watches
	 * included) until close(). Without it, the caller must call
	 * pvio_xs_dispatch() whenever pvio_xs_fd() is readable, or the
	 * device never learns that the backend closed or resized.
	 */
	PVIO_BLKFRONT_F_THREAD = 1u << 0,
};

/* open() options; zero (or a NULL pointer) means the default for each. */
struct pvio_blkfront_opts {
	/* Queues to ask for: 1..16, at most the backend's
	 * multi-queue-max-queues. Default 1. */
	unsigned int max_queues;
	/* Requests in flight per queue: 1..512, at most what the ring
	 * holds. Default 64. */
	unsigned int queue_depth;
	/* Ring pages per queue: a power of two 1..16; the ring is the
	 * smallest that holds queue_depth within this, the backend's
	 * max-ring-page-order. Default 16. */
	unsigned int max_ring_pages;
	/* Segments per indirect request, 12..1024 (at most the backend's
	 * feature-max-indirect-segments), or PVIO_BLKFRONT_NO_INDIRECT.
	 * Default 32 (128 KiB), as Linux. */
	unsigned int max_indirect_segments;
	/* Handshake deadlines: open waits this long for a stale session
	 * to close, then this long for InitWait..Connected; close waits
	 * this long for each of Closing and Closed. Default 10000 ms. */
	unsigned int timeout_ms;
	unsigned int flags;		/* PVIO_BLKFRONT_F_* */
	pvio_blkfront_event_fn event;	/* may be NULL */
	void *opaque;
};

/**
 * pvio_blkfront_open - connect to vbd @devid of this domain
 * @out:    the device, on success
 * @p:      this domain's platform handle; it must outlive the device. Each
 *          queue opens a private handle on the same platform (its own
 *          event-channel fd), through which its ring and pool are granted.
 * @x:      this domain's xenstore connection; it must outlive the device
 * @devid:  the `virtual-device` number (xvda = 51712), the directory
 *          /local/domain/<self>/device/vbd/<devid> the toolstack made
 * @opts:   NULL for the defaults
 * @err:    if not NULL, a one-line reason on failure (@errlen bytes)
 *
 * Runs the handshake as xen-blkfront does: a stale session of an earlier
 * process is closed first (Closing/Closed, waiting for the backend); then
 * Initialising; at the backend's InitWait (or Connected, if it skipped
 * InitWait) rings and event channels are allocated and published in one
 * transaction and the state goes Initialised; at Connected the disk's
 * properties and features are read, the data pools granted, and the state
 * goes Connected. Duplicate watch events are harmless.
 *
 * Runs pvio_xs_dispatch(@x) while it waits: callbacks of the caller's
 * other watches on @x may run from this call.
 *
 * Pool memory: every queue grants depth * (segments + indirect pages)
 * pages once, e.g. 64 * 33 pages (8.3 MiB) with the defaults and a backend
 * that offers indirect descriptors. (On Xen, gntalloc's `limit` module
 * parameter caps the pages a process may grant.)
 *
 * Return: 0; -ENODEV (no such vbd in xenstore, or the backend closed
 * during the handshake); -ETIMEDOUT (the backend did not move in time);
 * -EINVAL (bad options, or the backend's values are unusable: the device
 * is failed in xenstore as Linux does); -ENOMEM; other -errno from the
 * platform or xenstore.
 */
PVIO_API int pvio_blkfront_open(struct pvio_blkfront **out,
				struct pvio_platform *p, struct pvio_xs *x,
				unsigned int devid,
				const struct pvio_blkfront_opts *opts,
				char *err, size_t errlen);

/**
 * pvio_blkfront_close - disconnect and free the device
 *
 * No queue may be in use and no other thread may run pvio_xs_dispatch()
 * on the device's pvio_xs during the call. Requests still in flight are
 * abandoned (their callbacks are not called). Runs Closing -> Closed
 * (waiting up to the handshake timeout for the backend each time), then
 * ends the grants, closes the event channels and queue handles.
 * Accepts NULL.
 *
 * Return: 0; -ETIMEDOUT if the backend did not follow (everything is
 * released anyway).
 */
PVIO_API int pvio_blkfront_close(struct pvio_blkfront *dev);

/* pvio_blkfront_info() features */
enum {
	PVIO_BLKFRONT_FEAT_FLUSH = 1u << 0,	/* FLUSH_DISKCACHE */
	PVIO_BLKFRONT_FEAT_BARRIER = 1u << 1,	/* WRITE_BARRIER */
	PVIO_BLKFRONT_FEAT_DISCARD = 1u << 2,
	PVIO_BLKFRONT_FEAT_SECURE_DISCARD = 1u << 3,
	PVIO_BLKFRONT_FEAT_INDIRECT = 1u << 4,	/* negotiated, in use */
	PVIO_BLKFRONT_FEAT_PERSISTENT = 1u << 5,	/* the backend's word */
};

struct pvio_blkfront_info {
	uint64_t sectors;		/* 512-byte units, as of now */
	uint64_t size;			/* bytes: sectors * 512 */
	uint32_t sector_size;		/* logical: I/O alignment */
	uint32_t physical_sector_size;
	uint32_t vdisk_info;		/* VDISK_* from `info` */
	bool readonly;			/* VDISK_READONLY */
	uint32_t features;		/* PVIO_BLKFRONT_FEAT_* */
	uint32_t discard_granularity;	/* bytes (default sector_size) */
	uint32_t discard_alignment;	/* bytes */
	unsigned int nr_queues;
	unsigned int ring_pages;	/* per queue */
	unsigned int queue_depth;	/* requests in flight per queue */
	unsigned int max_segments;	/* per request: 11 or indirect's */
	uint32_t max_io;		/* bytes per read/write request */
	unsigned int devid;
	unsigned int backend_id;
	char backend[PVIO_XS_PATH_MAX];	/* the backend's directory */
};

/* Return: 0; the device's state as of the call. */
PVIO_API int pvio_blkfront_info(struct pvio_blkfront *dev,
				struct pvio_blkfront_info *info);
/* 0 while the device works; -EIO (backend closed) or -EPROTO (backend
 * broke the protocol) once it is dead. Any thread. */
PVIO_API int pvio_blkfront_dead(const struct pvio_blkfront *dev);
/* Why the device died, or "" (valid until close). */
PVIO_API const char *pvio_blkfront_error(struct pvio_blkfront *dev);
/* Queue @idx (0..nr_queues-1), or NULL. */
PVIO_API struct pvio_blkfront_queue *
pvio_blkfront_queue(struct pvio_blkfront *dev, unsigned int idx);

/* ---- the asynchronous per-queue API -------------------------------------- */

enum pvio_blkfront_op {
	PVIO_BLKFRONT_OP_READ = 0,
	PVIO_BLKFRONT_OP_WRITE = 1,
	/* Make completed writes durable: FLUSH_DISKCACHE, or WRITE_BARRIER
	 * when the backend only offers that. No data; ignores len/offset. */
	PVIO_BLKFRONT_OP_FLUSH = 2,
	/* Unmap [offset, offset+len). The request is trimmed to the
	 * backend's discard-granularity/alignment (what remains may be
	 * nothing: then it completes with 0 without reaching the backend).
	 * Discarded data reads back as unspecified. */
	PVIO_BLKFRONT_OP_DISCARD = 3,
};

#define PVIO_BLKFRONT_IO_SECURE	(1u << 0)	/* DISCARD: secure */

/*
 * One I/O. The caller owns the memory; it must stay valid (and @buf too)
 * from a successful prep until @done has run.
 */
struct pvio_blkfront_io {
	uint8_t op;			/* enum pvio_blkfront_op */
	uint8_t flags;			/* PVIO_BLKFRONT_IO_* */
	uint16_t rsvd;			/* 0 */
	uint32_t len;			/* bytes, sector_size multiple */
	uint64_t offset;		/* bytes, multiple of sector_size */
	void *buf;			/* READ: filled; WRITE: sent. Inside a
					 * pvio_blkfront_buf_alloc() buffer and
					 * 512-byte aligned: used in place (the
					 * backend moves the data); else copied
					 * through the queue's pool */
	/* Called from reap/wait on the queue's thread, exactly once per
	 * successful prep. It may prep and submit on the same queue, but
	 * not reap, wait or close. */
	void (*done)(struct pvio_blkfront_io *io, int res);
	void *user_data;
	int res;			/* out: 0 or -errno, before done */
};

/**
 * pvio_blkfront_prep - put one I/O on the queue's ring (not yet visible)
 *
 * Validates @io, takes a free slot, copies WRITE data into the slot's
 * granted pages (unless @buf is in a pvio_blkfront_buf_alloc() buffer:
 * then its own pages go in the request) and writes the request (direct up
 * to 11 segments, indirect beyond). Nothing is published until pvio_blkfront_submit().
 *
 * Return: 0; -EAGAIN (no free slot: reap first); -EINVAL (bad op, flags,
 * alignment, zero or too long a length, or outside the disk); -EROFS (a
 * WRITE or DISCARD on a read-only disk); -EOPNOTSUPP (FLUSH, DISCARD or a
 * secure DISCARD the backend does not offer, or withdrew by answering
 * EOPNOTSUPP); -EIO/-EPROTO (the device is dead). On error @done will
 * not be called.
 */
PVIO_API int pvio_blkfront_prep(struct pvio_blkfront_queue *q,
				struct pvio_blkfront_io *io);
/**
 * pvio_blkfront_submit - publish every prepared request at once
 *
 * One store of req_prod, then one event-channel notification, and only if
 * the backend asked for it (RING_PUSH_REQUESTS_AND_CHECK_NOTIFY).
 * Return: the number of requests published (0 if none were prepared),
 * or -errno from the notification (the requests are published anyway).
 */
PVIO_API int pvio_blkfront_submit(struct pvio_blkfront_queue *q);
/*
 * prep @ios[0..n) in order until one fails, then submit. Return: how many
 * were queued; if none, the error of the first (-EAGAIN: queue full).
 */
PVIO_API int pvio_blkfront_submit_ios(struct pvio_blkfront_queue *q,
				      struct pvio_blkfront_io *const *ios,
				      unsigned int n);
/**
 * pvio_blkfront_reap - complete what the backend has answered
 * @max: completions to deliver at most; 0 for all available
 *
 * Never blocks and makes no system call (but once, to fail the device in
 * xenstore, when it finds the backend broke the protocol). READ data is
 * copied out of the pool (not for a granted buffer: it is already there),
 * then each I/O's res is set and its @done runs. A response
 * that breaks the protocol kills the device (EV_DEAD): every I/O in flight
 * on every queue then completes with -EIO.
 * Return: completions delivered; when the device is dead and nothing is
 * left in flight, pvio_blkfront_dead()'s error.
 */
PVIO_API int pvio_blkfront_reap(struct pvio_blkfront_queue *q,
				unsigned int max);
/**
 * pvio_blkfront_arm - prepare to sleep on pvio_blkfront_queue_fd()
 *
 * Clears the queue's pending events, asks the backend for a notification
 * at the next response (RING_FINAL_CHECK_FOR_RESPONSES) and looks again.
 * Return: 1 if there is something to reap now (do not sleep), 0 if the
 * caller may poll the fd: it turns readable on the next response or when
 * the device dies.
 */
PVIO_API int pvio_blkfront_arm(struct pvio_blkfront_queue *q);
/**
 * pvio_blkfront_wait - reap until @min completions or @timeout_ms
 * @min:        capped at what is in flight; 0 reaps what is there
 * @timeout_ms: < 0 waits for ever (a dying device still wakes it)
 *
 * Spins first (pvio_blkfront_queue_set_spin, default 0: no spin), then
 * sleeps with pvio_blkfront_arm() and poll(). A queue that spins at all
 * spins for its spin time or for twice the usual wait for a response it
 * has seen, if longer, up to 1 ms (adaptive polling: a remote disk's
 * responses come tens to hundreds of microseconds apart), and never past
 * @timeout_ms.
 * Return: completions delivered (maybe fewer than @min after the timeout),
 * or the device's error when it is dead and nothing was left to complete.
 */
PVIO_API int pvio_blkfront_wait(struct pvio_blkfront_queue *q,
				unsigned int min, int timeout_ms);
/* Pollable (POLLIN) fd of the queue: see pvio_blkfront_arm(). */
PVIO_API int pvio_blkfront_queue_fd(struct pvio_blkfront_queue *q);
/* Requests prepared or in flight, not yet completed. */
PVIO_API unsigned int
pvio_blkfront_queue_inflight(const struct pvio_blkfront_queue *q);
/* Free slots: how many more I/Os prep accepts now. */
PVIO_API unsigned int
pvio_blkfront_queue_space(const struct pvio_blkfront_queue *q);
/* Busy-poll for at least @ns before sleeping in pvio_blkfront_wait()
 * (adaptive above it: see there); 0: no polling. */
PVIO_API void pvio_blkfront_queue_set_spin(struct pvio_blkfront_queue *q,
					   uint64_t ns);

/**
 * pvio_blkfront_buf_alloc - memory the backend reads and writes in place
 * @q:   the queue whose requests will use it (from its thread)
 * @len: bytes, a page multiple, at most PVIO_BLKFRONT_BUF_MAX
 * @out: the buffer: page-aligned, zeroed
 *
 * The pages are granted to the backend once, writable, and used as
 * persistent grants (as the queue's own pool is): a READ or WRITE whose
 * buf lies inside such a buffer, 512-byte aligned, names these pages in its
 * segments, so the data moves between the disk and this memory with no
 * copy on our side (io_uring's registered buffers, in grant terms). Any
 * other buf still works, copied through the pool. A backend that maps
 * persistent grants (pvio-backd --grant-map, Linux blkback) keeps them
 * mapped: the I/O goes straight into these pages.
 *
 * On Xen the pages come from gntalloc and count towards its limit.
 *
 * Return: 0; -EINVAL (bad length); -ENOSPC (PVIO_BLKFRONT_MAX_BUFS in
 * use); -ENOMEM; the platform's error.
 */
PVIO_API int pvio_blkfront_buf_alloc(struct pvio_blkfront_queue *q, size_t len,
				     void **out);
/**
 * pvio_blkfront_buf_free - give a buffer back
 *
 * No request using it may be in flight. Its grants end now, or, while the
 * backend still maps its pages (persistent grants are kept until the
 * device closes), when the queue is closed: until then the memory stays
 * reserved. Return: 0; -EINVAL if @buf is not a buffer of @q.
 */
PVIO_API int pvio_blkfront_buf_free(struct pvio_blkfront_queue *q, void *buf);

struct pvio_blkfront_queue_stats {
	uint64_t requests;	/* published */
	uint64_t completions;
	uint64_t batches;	/* submits that published something */
	uint64_t notifies;	/* event-channel notifications sent */
	uint64_t sleeps;	/* polls of the fd in pvio_blkfront_wait */
	uint64_t indirect;	/* requests sent as BLKIF_OP_INDIRECT */
	uint64_t in_place;	/* reads/writes on a granted buffer (no copy) */
	uint64_t bytes_copied;	/* data copied through the pool */
};
PVIO_API void
pvio_blkfront_queue_stats(const struct pvio_blkfront_queue *q,
			  struct pvio_blkfront_queue_stats *st);

/* ---- synchronous convenience calls --------------------------------------- */

/*
 * On queue @q, from its thread (in-flight asynchronous I/O of that queue
 * is reaped, and its callbacks run, meanwhile). Any length: split into
 * requests of at most info.max_io bytes, as many in flight as the queue
 * allows. Offsets and lengths must be multiples of sector_size. They wait
 * as long as the backend takes, but return when the device dies.
 *
 * Return: pread/pwrite: @len; flush/discard: 0. Errors as for prep, and
 * -EIO when the backend answered an error (BLKIF_RSP_ERROR) or died,
 * -EOPNOTSUPP when it answered EOPNOTSUPP.
 */
PVIO_API ssize_t pvio_blkfront_pread(struct pvio_blkfront_queue *q, void *buf,
				     size_t len, uint64_t offset);
PVIO_API ssize_t pvio_blkfront_pwrite(struct pvio_blkfront_queue *q,
				      const void *buf, size_t len,
				      uint64_t offset);
PVIO_API int pvio_blkfront_flush(struct pvio_blkfront_queue *q);
/* @flags: PVIO_BLKFRONT_IO_SECURE or 0. */
PVIO_API int pvio_blkfront_discard(struct pvio_blkfront_queue *q,
				   uint64_t offset, uint64_t len,
				   unsigned int flags);

#ifdef __cplusplus
}
#endif
#endif /* PVIO_BLKFRONT_H */
