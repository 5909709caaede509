// SPDX-License-Identifier: MIT
/*
 * The file target: a regular file or a block device, driven by the
 * worker's io_uring (readv/writev/fsync/fallocate, one SQE per request,
 * a barrier as a linked fsync-write-fsync chain). O_DIRECT where the
 * target allows it, with one buffered retry for alignments it refuses.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blk.h"

static int file_size(struct vbd *v, uint64_t *size)
{
	struct stat st;

	if (v->is_blockdev)
		return ioctl(v->fd_buffered, BLKGETSIZE64, size) < 0 ? -errno : 0;
	if (fstat(v->fd_buffered, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int file_open(struct device *d, struct vbd *v)
{
	int flags = (v->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	int rc;

	if (v->params[0] != '/') {
		snprintf(v->why, sizeof(v->why), "'%.400s' is not an absolute path",
			 v->params);
		return -EINVAL;
	}
	v->fd_buffered = open(v->params, flags);
	if (v->fd_buffered < 0)
		goto fail_errno;
	if (fstat(v->fd_buffered, &st) < 0)
		goto fail_errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
		snprintf(v->why, sizeof(v->why),
			 "%.400s is neither a file nor a block device", v->params);
		return -EINVAL;
	}
	v->is_blockdev = S_ISBLK(st.st_mode);
	v->logical = 512;
	v->physical = v->is_blockdev ? 512 : 4096;
	if (v->is_blockdev) {
		int ss = 0;
		unsigned int pbs = 0;

		if (ioctl(v->fd_buffered, BLKSSZGET, &ss) == 0 && ss >= 512)
			v->logical = (unsigned int)ss;
		if (ioctl(v->fd_buffered, BLKPBSZGET, &pbs) == 0 &&
		    pbs >= v->logical)
			v->physical = pbs;
	}
	rc = file_size(v, &v->size_bytes);
	if (rc) {
		errno = -rc;
		goto fail_errno;
	}
	v->fd_direct = -1;
	if (v->want_direct) {
		v->fd_direct = open(v->params, flags | O_DIRECT);
		if (v->fd_direct < 0)
			log_info("%s: %s refuses O_DIRECT (%s): buffered I/O",
				 d->path, v->params, strerror(errno));
	}
	v->feat_flush = true;
	v->feat_barrier = true;
	v->feat_discard = !v->readonly;
	v->discard_granularity = v->is_blockdev ? v->physical : 4096;
	return 0;
fail_errno:
	rc = -errno;
	snprintf(v->why, sizeof(v->why), "cannot open %.400s: %s", v->params,
		 strerror(errno));
	return rc;
}

static void file_close(struct vbd *v)
{
	if (v->fd_direct >= 0)
		close(v->fd_direct);
	if (v->fd_buffered >= 0)
		close(v->fd_buffered);
	v->fd_direct = v->fd_buffered = -1;
}

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
	sqe->flags |= flags;
	r->pending++;
	dp_sqe_own(&q->dq, sqe, &r->tag);
}

static void submit_fsync(struct blk_queue *q, struct blk_req *r, uint8_t flags)
{
	struct io_uring_sqe *sqe = worker_sqe(q->dq.w);

	io_uring_prep_fsync(sqe, q->vbd->fd_buffered, IORING_FSYNC_DATASYNC);
	dp_sqe_file(sqe, q->slot_buffered);
	sqe->flags |= flags;
	r->pending++;
	dp_sqe_own(&q->dq, sqe, &r->tag);
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
		r->pending++;
		dp_sqe_own(&q->dq, sqe, &r->tag);
		break;
	case BK_BARRIER:
		/* everything before it has completed (the queue drained):
		 * flush, the write, flush again, in order */
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
	.open = file_open,
	.size = file_size,
	.close = file_close,
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
