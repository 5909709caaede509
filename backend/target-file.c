// SPDX-License-Identifier: MIT
/*
 * The file target's dataplane: a regular file or a block device, driven
 * by the worker's io_uring (readv/writev/fsync/fallocate, one SQE per request,
 * a barrier as a linked fsync-write-fsync chain). O_DIRECT where the
 * target allows it, with one buffered retry for alignments it refuses.
 * Its control path (open, the image lock, hotplug scripts, resize) is
 * blk-xenbus.c's.
 */
#include "config.h"

#include <errno.h>
#include <linux/falloc.h>
#include <string.h>

#include "blk.h"

/* From the worker: its ring, its thread. */
static void file_queue_start(struct blk_queue *q)
{
	q->slot_direct = dp_queue_file(&q->dq, q->vbd->fd_direct);
	q->slot_buffered = dp_queue_file(&q->dq, q->vbd->fd_buffered);
}

static int target_fd(struct blk_queue *q, struct blk_req *r)
{
	return (q->vbd->fd_direct >= 0 && !r->retried) ? q->vbd->fd_direct
							: q->vbd->fd_buffered;
}

/* ... and its registered-file slot, or -1 */
static int target_slot(struct blk_queue *q, struct blk_req *r)
{
	return (q->vbd->fd_direct >= 0 && !r->retried) ? q->slot_direct
							: q->slot_buffered;
}

static void submit_rw(struct blk_queue *q, struct blk_req *r, bool write,
		      uint8_t flags)
{
	struct io_uring_sqe *sqe = worker_sqe(q->dq.w);

	/* one segment: a plain read/write, no iovec for the kernel to import */
	if (r->nseg == 1 && write)
		io_uring_prep_write(sqe, target_fd(q, r), r->iov[0].iov_base,
				    (unsigned int)r->iov[0].iov_len,
				    r->sector * 512u);
	else if (r->nseg == 1)
		io_uring_prep_read(sqe, target_fd(q, r), r->iov[0].iov_base,
				   (unsigned int)r->iov[0].iov_len,
				   r->sector * 512u);
	else if (write)
		io_uring_prep_writev(sqe, target_fd(q, r), r->iov, r->nseg,
				     r->sector * 512u);
	else
		io_uring_prep_readv(sqe, target_fd(q, r), r->iov, r->nseg,
				    r->sector * 512u);
	dp_sqe_file(sqe, target_slot(q, r));
	sqe->flags |= flags | q->vbd->sqe_flags;
	r->pending++;
	dp_sqe_own(&q->dq, sqe, &r->tag);
	dp_io_start(&q->dq);
}

static void submit_fsync(struct blk_queue *q, struct blk_req *r, uint8_t flags)
{
	struct io_uring_sqe *sqe = worker_sqe(q->dq.w);

	io_uring_prep_fsync(sqe, q->vbd->fd_buffered, IORING_FSYNC_DATASYNC);
	dp_sqe_file(sqe, q->slot_buffered);
	sqe->flags |= flags | q->vbd->sqe_flags;
	r->pending++;
	dp_sqe_own(&q->dq, sqe, &r->tag);
	dp_io_start(&q->dq);
}

static void file_submit(struct blk_queue *q, struct blk_req *r)
{
	struct io_uring_sqe *sqe;

	switch (r->kind) {
	case BK_READ:
		submit_rw(q, r, false, 0);
		break;
	case BK_WRITE:
		submit_rw(q, r, true, 0);
		break;
	case BK_FLUSH:
		submit_fsync(q, r, 0);
		break;
	case BK_DISCARD:
		sqe = worker_sqe(q->dq.w);
		io_uring_prep_fallocate(sqe, q->vbd->fd_buffered,
					FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					r->sector * 512u, r->bytes);
		dp_sqe_file(sqe, q->slot_buffered);
		sqe->flags |= q->vbd->sqe_flags;
		r->pending++;
		dp_sqe_own(&q->dq, sqe, &r->tag);
		dp_io_start(&q->dq);
		break;
	case BK_BARRIER:
		/* everything before it has completed (the queue drained):
		 * flush, the write, flush again, in order */
		worker_sqe_room(q->dq.w, r->nseg ? 3 : 1);
		if (r->nseg) {
			submit_fsync(q, r, IOSQE_IO_LINK);
			submit_rw(q, r, true, IOSQE_IO_LINK);
		}
		submit_fsync(q, r, 0);
		break;
	}
}

/* O_DIRECT refused this alignment: once more, buffered. */
static bool file_retry(struct blk_queue *q, struct blk_req *r, int res)
{
	if (res != -EINVAL || r->retried || q->vbd->fd_direct < 0 ||
	    (r->kind != BK_READ && r->kind != BK_WRITE))
		return false;
	r->retried = true;
	submit_rw(q, r, r->kind == BK_WRITE, 0);
	return true;
}

const struct blk_target_ops blk_target_file = {
	.kind = "file",
	/* open, size, close: blk-xenbus.c's own (image lock, hotplug) */
	.queue_start = file_queue_start,
	.submit = file_submit,
	.retry = file_retry,
	.max_queues = 16,
};

const struct blk_target_ops *blk_target_find(const char *params,
					     const char **missing)
{
	*missing = NULL;
	if (!strncmp(params, "rbd:", 4)) {
#ifdef HAVE_LIBRBD
		return &blk_target_rbd;
#else
		*missing = "RBD (librbd)";
		return NULL;
#endif
	}
	if (!strncmp(params, "nbd:", 4) || !strncmp(params, "nbd+", 4) ||
	    !strncmp(params, "nbds:", 5) || !strncmp(params, "nbds+", 5)) {
#ifdef HAVE_LIBNBD
		return &blk_target_nbd;
#else
		*missing = "NBD (libnbd)";
		return NULL;
#endif
	}
	return &blk_target_file;
}
