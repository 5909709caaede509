// SPDX-License-Identifier: MIT
/*
 * blkfront: the device (open, close, info), its death, and synchronous
 * helpers on top of the asynchronous queue API. The handshake is in
 * blkfront-xenbus.c, the rings and the hot path in blkfront-dataplane.c.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blkfront-private.h"

static int check_opts(void *opts, char *why, size_t len)
{
	struct pvio_blkfront_opts *o = opts;

	if (o->max_queues == 0)
		o->max_queues = BF_DEFAULT_QUEUES;
	if (o->queue_depth == 0)
		o->queue_depth = BF_DEFAULT_DEPTH;
	if (o->max_ring_pages == 0)
		o->max_ring_pages = BF_DEFAULT_RING_PAGES;
	if (o->max_indirect_segments == 0)
		o->max_indirect_segments = BF_DEFAULT_INDIRECT;
	if (o->timeout_ms == 0)
		o->timeout_ms = BF_DEFAULT_TIMEOUT_MS;
	if (o->max_queues > PVIO_BLKFRONT_MAX_QUEUES)
		snprintf(why, len, "max_queues %u: at most %u", o->max_queues,
			 PVIO_BLKFRONT_MAX_QUEUES);
	else if (o->queue_depth > PVIO_BLKFRONT_MAX_DEPTH)
		snprintf(why, len, "queue_depth %u: at most %u", o->queue_depth,
			 PVIO_BLKFRONT_MAX_DEPTH);
	else if (o->max_ring_pages > 16 ||
		 (o->max_ring_pages & (o->max_ring_pages - 1)))
		snprintf(why, len, "max_ring_pages %u: a power of two <= 16",
			 o->max_ring_pages);
	else if (o->max_indirect_segments != PVIO_BLKFRONT_NO_INDIRECT &&
		 o->max_indirect_segments > PVIO_BLKFRONT_MAX_SEGMENTS)
		snprintf(why, len, "max_indirect_segments %u: at most %u",
			 o->max_indirect_segments, PVIO_BLKFRONT_MAX_SEGMENTS);
	else if (o->flags & ~(unsigned int)PVIO_BLKFRONT_F_THREAD)
		snprintf(why, len, "unknown flags %#x", o->flags);
	else
		return 0;
	return -EINVAL;
}

static void free_dev(struct pvio_blkfront *dev)
{
	unsigned int i;

	for (i = 0; i < PVIO_BLKFRONT_MAX_QUEUES; i++)
		pvio__bf_queue_destroy(dev->queues[i]);
	pvio__bf_xb_release(dev);
	pthread_mutex_destroy(&dev->lock);
	free(dev);
}

int pvio_blkfront_open(struct pvio_blkfront **out, struct pvio_platform *p,
		       struct pvio_xs *x, unsigned int devid,
		       const struct pvio_blkfront_opts *opts, char *err,
		       size_t errlen)
{
	static const struct fe_kind kind = {
		.size = sizeof(struct pvio_blkfront),
		.fe_off = offsetof(struct pvio_blkfront, fe),
		.opts_off = offsetof(struct pvio_blkfront, opts),
		.opts_size = sizeof(struct pvio_blkfront_opts),
		.check_opts = check_opts,
	};
	struct pvio_blkfront *dev;
	int rc;

	*out = NULL;
	fe_copy_err(err, errlen, "");
	dev = fe_open_alloc(&kind, p, x, devid, opts, err, errlen, &rc);
	if (!dev)
		return rc;
	pthread_mutex_init(&dev->lock, NULL);
	/* info->handle: the device directory's name, as Linux */
	dev->handle = (uint16_t)devid;

	rc = pvio__bf_xb_open(dev);
	if (!rc && (dev->opts.flags & PVIO_BLKFRONT_F_THREAD))
		rc = fe_thread_start(&dev->fe);
	if (rc) {
		fe_open_error(&dev->fe, rc, err, errlen);
		free_dev(dev);
		return rc;
	}
	/* Nothing that happened during the handshake is news. */
	__atomic_store_n(&dev->pending_events, 0, __ATOMIC_RELAXED);
	pthread_mutex_lock(&dev->lock);
	dev->fe.live = true;
	pthread_mutex_unlock(&dev->lock);
	*out = dev;
	return 0;
}

int pvio_blkfront_close(struct pvio_blkfront *dev)
{
	int rc;

	if (!dev)
		return 0;
	fe_thread_stop(&dev->fe);
	pthread_mutex_lock(&dev->lock);
	dev->fe.live = false;
	dev->fe.phase = FE_CLOSING;
	pthread_mutex_unlock(&dev->lock);
	rc = pvio__bf_xb_close(dev);
	free_dev(dev);
	return rc;
}

int pvio_blkfront_info(struct pvio_blkfront *dev,
		       struct pvio_blkfront_info *info)
{
	memset(info, 0, sizeof(*info));
	info->sectors = __atomic_load_n(&dev->sectors, __ATOMIC_RELAXED);
	info->size = info->sectors << 9;
	info->sector_size = dev->sector_size;
	info->physical_sector_size = dev->physical_sector_size;
	info->vdisk_info = dev->vdisk_info;
	info->readonly = dev->readonly;
	info->features = __atomic_load_n(&dev->features, __ATOMIC_RELAXED);
	if (info->features & PVIO_BLKFRONT_FEAT_DISCARD) {
		info->discard_granularity = dev->discard_gran;
		info->discard_alignment = dev->discard_align;
	}
	info->nr_queues = dev->nr_queues;
	info->ring_pages = dev->ring_pages;
	info->queue_depth = dev->depth;
	info->max_segments = dev->max_segs;
	info->max_io = dev->max_segs * PVIO_PAGE_SIZE;
	info->devid = dev->fe.devid;
	info->backend_id = dev->fe.backend_id;
	snprintf(info->backend, sizeof(info->backend), "%s", dev->fe.be_path);
	return 0;
}

int pvio_blkfront_dead(const struct pvio_blkfront *dev)
{
	return bf_dead(dev);
}

const char *pvio_blkfront_error(struct pvio_blkfront *dev)
{
	return bf_dead(dev) ? dev->fe.dead_msg : "";
}

struct pvio_blkfront_queue *pvio_blkfront_queue(struct pvio_blkfront *dev,
						unsigned int idx)
{
	return idx < dev->nr_queues ? dev->queues[idx] : NULL;
}

/* ---- death --------------------------------------------------------------- */

bool pvio__bf_kill(struct pvio_blkfront *dev, int err, const char *fmt, ...)
{
	unsigned int i;

	if (!FE_KILL(&dev->fe, &dev->dead, err, fmt))
		return false;
	for (i = 0; i < dev->nr_queues; i++)
		pvio__bf_queue_kick(dev->queues[i]);
	__atomic_or_fetch(&dev->pending_events, 1u << PVIO_BLKFRONT_EV_DEAD,
			  __ATOMIC_RELAXED);
	return true;
}

void pvio__bf_deliver_events(struct pvio_blkfront *dev)
{
	unsigned int ev;

	if (!__atomic_load_n(&dev->fe.live, __ATOMIC_ACQUIRE) ||
	    !dev->opts.event)
		return;
	ev = __atomic_exchange_n(&dev->pending_events, 0, __ATOMIC_ACQ_REL);
	if (ev & (1u << PVIO_BLKFRONT_EV_RESIZE))
		dev->opts.event(dev, PVIO_BLKFRONT_EV_RESIZE, dev->opts.opaque);
	if (ev & (1u << PVIO_BLKFRONT_EV_DEAD))
		dev->opts.event(dev, PVIO_BLKFRONT_EV_DEAD, dev->opts.opaque);
}

void pvio__bf_protocol_error(struct pvio_blkfront *dev, const char *fmt, ...)
{
	char msg[FE_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!pvio__bf_kill(dev, -EPROTO, "the backend broke the protocol: %s",
			   msg))
		return;
	/* Linux only marks the disk dead; we also say so in xenstore
	 * (<path>/error, Closing) so that the backend and the toolstack
	 * know. */
	pvio__bf_xb_fatal(dev, -EPROTO, dev->fe.dead_msg);
	pvio__bf_deliver_events(dev);
}

/* ---- synchronous helpers ------------------------------------------------- */

#define BF_SYNC_WINDOW	32u

struct bf_sync {
	unsigned int pending;
	int err;
};

static void sync_done(struct pvio_blkfront_io *io, int res)
{
	struct bf_sync *s = io->user_data;

	s->pending--;
	if (res && !s->err)
		s->err = res;
}

/* Wait until none of ours is in flight. */
static int sync_drain(struct pvio_blkfront_queue *q, struct bf_sync *s)
{
	while (s->pending) {
		int rc = pvio_blkfront_wait(q, s->pending, -1);

		if (rc < 0 && s->pending)
			return rc;	/* cannot happen: dead fails ours */
	}
	return 0;
}

/*
 * Run [off, off+len) as requests of at most @chunk bytes, up to
 * BF_SYNC_WINDOW of them in flight.
 */
static int sync_run(struct pvio_blkfront_queue *q, uint8_t op, uint8_t flags,
		    char *buf, uint64_t len, uint64_t off, uint64_t chunk)
{
	struct pvio_blkfront_io ios[BF_SYNC_WINDOW];
	struct bf_sync s = { 0, 0 };
	uint64_t issued = 0;
	unsigned int n;
	int rc;

	do {
		for (n = 0; n < BF_SYNC_WINDOW && issued < len && !s.err; n++) {
			struct pvio_blkfront_io *io = &ios[n];
			uint64_t c = len - issued;

			if (c > chunk)
				c = chunk;

			memset(io, 0, sizeof(*io));
			io->op = op;
			io->flags = flags;
			io->len = (uint32_t)c;
			io->offset = off + issued;
			io->buf = buf ? buf + issued : NULL;
			io->done = sync_done;
			io->user_data = &s;
			rc = pvio_blkfront_prep(q, io);
			if (rc == -EAGAIN && (n || s.pending ||
					      pvio_blkfront_queue_inflight(q)))
				break;	/* full: wait for some */
			if (rc) {
				s.err = rc;
				break;
			}
			s.pending++;
			issued += c;
		}
		if (n)
			pvio_blkfront_submit(q);
		if (!s.pending && !s.err && issued < len) {
			/* our window is empty but the queue is full of
			 * the caller's own I/O: let some complete */
			rc = pvio_blkfront_wait(q, 1, -1);
			if (rc < 0)
				s.err = rc;
		}
		rc = sync_drain(q, &s);
		if (rc && !s.err)
			s.err = rc;
	} while (issued < len && !s.err);
	return s.err;
}

ssize_t pvio_blkfront_pread(struct pvio_blkfront_queue *q, void *buf,
			    size_t len, uint64_t offset)
{
	struct pvio_blkfront *dev;
	int rc;

	if (len == 0)
		return 0;
	if (len > SSIZE_MAX)
		return -EINVAL;
	dev = pvio__bf_queue_dev(q);
	rc = sync_run(q, PVIO_BLKFRONT_OP_READ, 0, buf, len, offset,
		      (uint64_t)dev->max_segs * PVIO_PAGE_SIZE);
	return rc ? rc : (ssize_t)len;
}

ssize_t pvio_blkfront_pwrite(struct pvio_blkfront_queue *q, const void *buf,
			     size_t len, uint64_t offset)
{
	struct pvio_blkfront *dev;
	int rc;

	if (len == 0)
		return 0;
	if (len > SSIZE_MAX)
		return -EINVAL;
	dev = pvio__bf_queue_dev(q);
	/* the buffer is only read (copied into the pool at prep) */
	rc = sync_run(q, PVIO_BLKFRONT_OP_WRITE, 0, (char *)(uintptr_t)buf, len,
		      offset, (uint64_t)dev->max_segs * PVIO_PAGE_SIZE);
	return rc ? rc : (ssize_t)len;
}

int pvio_blkfront_flush(struct pvio_blkfront_queue *q)
{
	return sync_run(q, PVIO_BLKFRONT_OP_FLUSH, 0, NULL, 1, 0, 1);
}

int pvio_blkfront_discard(struct pvio_blkfront_queue *q, uint64_t offset,
			  uint64_t len, unsigned int flags)
{
	struct pvio_blkfront *dev = pvio__bf_queue_dev(q);
	uint32_t feat = __atomic_load_n(&dev->features, __ATOMIC_RELAXED);
	uint64_t size, g, a, s, e, chunk;
	int rc = bf_dead(dev);

	if (rc)
		return rc;
	if (flags & ~(unsigned int)PVIO_BLKFRONT_IO_SECURE)
		return -EINVAL;
	if (!(feat & PVIO_BLKFRONT_FEAT_DISCARD) ||
	    ((flags & PVIO_BLKFRONT_IO_SECURE) &&
	     !(feat & PVIO_BLKFRONT_FEAT_SECURE_DISCARD)))
		return -EOPNOTSUPP;
	size = __atomic_load_n(&dev->sectors, __ATOMIC_RELAXED) << 9;
	if (len == 0 || ((offset | len) & (dev->sector_size - 1)) ||
	    offset > size || len > size - offset)
		return -EINVAL;
	if (dev->readonly)
		return -EROFS;
	/* Trim the whole range once, then cut it at extent boundaries, so
	 * that no piece loses an extent to its own trimming. */
	g = dev->discard_gran;
	a = dev->discard_align;
	s = offset + (a + g - offset % g) % g;
	e = offset + len;
	e -= (e % g + g - a) % g;
	if (s >= e)
		return 0;
	chunk = ((1ull << 31) / g) * g;
	return sync_run(q, PVIO_BLKFRONT_OP_DISCARD,
			(uint8_t)(flags & PVIO_BLKFRONT_IO_SECURE), NULL, e - s,
			s, chunk);
}
