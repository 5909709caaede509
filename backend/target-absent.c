// SPDX-License-Identifier: MIT
/*
 * No target: what a disk is served from when a restarted pvio-backd cannot
 * open its target again under a guest that is still connected (the file
 * deleted or locked by another program meanwhile, the server or cluster
 * unreachable). The guest's rings are re-attached all the same
 * (blk-xenbus.c, vbd_open_failed()): the responses the last process
 * recorded are published, and every request, those it left in flight
 * first, is answered with an I/O error, as a disk that died answers. A
 * Closing instead would leave those requests unanswered for ever: Linux's
 * blkfront does not fail them. A remote target is tried again
 * (vbd_revive()); when it is back, each queue switches to it at its next
 * pass (blk_queue_retarget()): nothing here is ever in flight.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>

#include "blk.h"

static void absent_queue_start(struct blk_queue *q)
{
	(void)q;
}

static void absent_submit(struct blk_queue *q, struct blk_req *r)
{
	r->pending++;
	blk_req_done(q, r, -EIO);
}

/* the size announced before the restart (blk-xenbus.c read it back) */
static int absent_size(struct vbd *v, uint64_t *bytes)
{
	*bytes = v->size_bytes;
	return 0;
}

const struct blk_target_ops blk_target_absent = {
	.kind = "absent",
	.size = absent_size,
	.queue_start = absent_queue_start,
	.submit = absent_submit,
	/* however many the guest negotiated with the target it had */
	.max_queues = UINT_MAX,
	.no_spin = true,	/* nothing completes later */
};
