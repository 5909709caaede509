/* SPDX-License-Identifier: MIT */
/*
 * The vbd backend: blk-xenbus.c (control path: target, features,
 * negotiation, resize) and blk-dataplane.c (rings -> io_uring -> rings).
 * They meet at blk_queue_create() / blk_queue_free().
 */
#ifndef PVIO_BACKEND_BLK_H
#define PVIO_BACKEND_BLK_H

#include <sys/types.h>
#include <sys/uio.h>

#include "bucket.h"
#include "journal.h"
#include "lazy.h"
#include "pgrant.h"
#include "private.h"
#include "target.h"

#define BLK_MAX_DIRECT	BLKIF_MAX_SEGMENTS_PER_REQUEST	/* 11 */
#define BLK_SEGS_PER_INDIRECT_PAGE \
	(PVIO_PAGE_SIZE / sizeof(struct blkif_request_segment))	/* 512 */
#define BLK_MAX_INDIRECT	256u	/* what we advertise at most */
#define BLK_POOL_MAX_PAGES	8192u	/* bounce pages per queue (32 MiB) */

/* What the device is and what it offers, shared by its queues. */
struct vbd {
	char params[4096];	/* the target opened */
	char script[256];	/* the hotplug script, when the toolstack runs one */
	bool hotplug;		/* wait for the script's physical-device */
	bool plugged;		/* a remote target: we answer for the script */
	bool opened;		/* the target is open (and locked) */
	bool want_direct;	/* O_DIRECT allowed (direct-io-safe) */
	bool discard_enable;	/* discard-enable: offer feature-discard */
	uint64_t hotplug_since_ns;
	uint64_t lock_deadline_ns;	/* waiting for the target's lock until */
	bool lock_wait;		/* open again on the next change or tick */
	const struct blk_target_ops *tops;
	void *tpriv;		/* the target's own state (remote kinds) */
	void *open_job;		/* opening off the main thread (blk-xenbus.c) */
	uint64_t open_since_ns;	/* ... started then */
	bool open_slow;		/* ... a file's, not back within --stall-timeout */
	void *look_job;		/* a may-block file's fstat, off it (vbd_tick) */
	unsigned int look_idx;	/* ... its entry there (one job per file system) */
	bool look_due;		/* ... to be started at this tick's end */
	uint64_t look_since_ns;	/* ... started then */
	bool look_slow;		/* ... not back within --stall-timeout (logged) */
	struct cw_slot *close_hold;	/* removed, draining: the close's place */
	char why[512];		/* the target's one-line failure reason */
	/* served without its target (target-absent.c): the remote kind
	 * tried again (vbd_revive() in blk-xenbus.c), when, how often */
	const struct blk_target_ops *revive_tops;
	uint64_t revive_at_ns;
	unsigned int revive_tries;
	bool revive_mismatch;	/* ... it came back different (logged) */
	int fd_direct;		/* O_DIRECT, or -1 */
	int fd_buffered;
	bool readonly;
	bool is_blockdev;
	dev_t st_dev;		/* the inode the open found */
	ino_t st_ino;
	/* IOSQE_ASYNC for a target that may block its submitter (see
	 * target_may_block() in blk-xenbus.c), else 0 */
	uint8_t sqe_flags;
	char io_why[64];
	bool deleted;		/* st_nlink 0 seen (reported) */
	uint64_t size_bytes;	/* as announced to the frontend */
	unsigned int logical;	/* sector-size, bytes */
	unsigned int physical;	/* physical-sector-size */
	bool feat_flush;
	bool feat_barrier;
	bool feat_discard;
	unsigned int discard_granularity;
	unsigned int max_indirect;	/* advertised; 0: none */
	bool persistent;	/* this connection maps persistent grants */
	/* per-device limits, per second (0: none): the toolstack's
	 * pvio-iops-limit and pvio-bytes-limit, set by the main thread,
	 * read by the workers; each of nr_queues queues gets its share */
	uint64_t iops_limit;
	uint64_t bytes_limit;
	unsigned int nr_queues;
	uint32_t flush_unsupported;	/* set by a worker: withdraw the key */
	uint32_t discard_unsupported;
};

enum blk_kind { BK_READ, BK_WRITE, BK_FLUSH, BK_BARRIER, BK_DISCARD };

struct blk_req {
	struct dp_tag tag;		/* the SQE's user_data */
	struct blk_req *next;		/* free, parked or done lists */
	uint64_t id;
	uint8_t op;			/* echoed (indirect: its indirect_op) */
	uint8_t kind;			/* enum blk_kind */
	uint8_t stage;			/* barrier: pre-flush, write, post-flush */
	bool retried;			/* re-issued without O_DIRECT */
	bool indirect;
	bool mapped;			/* segments in pg cache entries */
	bool answered;			/* the guest has its (error) answer; the
					 * target still holds the buffers */
	bool pages_set;			/* pages[] filled with UINT32_MAX */
	uint16_t nseg;
	uint16_t nr_indirect;
	int16_t status;
	int32_t pending;		/* SQEs in flight */
	uint32_t gidx;			/* its first segment in a copy batch */
	uint64_t *err_counter;		/* why status is not OKAY */
	uint64_t sector;		/* 512-byte units */
	uint64_t bytes;
	uint64_t taken_ns;		/* for the latency histogram */
	uint32_t *pages;		/* bounce page, or pg entry, per segment */
	struct iovec *iov;
	struct blkif_request_segment *seg;	/* the private copy */
	grant_ref_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
};

struct blk_queue {
	struct dp_queue dq;		/* first: dp_queue <-> blk_queue */
	struct vbd *vbd;
	const struct blk_target_ops *tops;	/* vbd->tops */
	void *tq;			/* the target's per-queue state */
	unsigned int domid;
	struct pvio_ring_back ring;
	void *ring_mem;
	unsigned int ring_pages;
	uint32_t max_segs;		/* per request (indirect or 11) */

	struct blk_req *reqs;		/* one per ring slot */
	void *req_mem;			/* their seg, iov and pages (lazy.h) */
	size_t req_mem_bytes;
	struct blk_req *free_reqs;
	uint32_t nr_reqs;
	uint32_t nr_free;

	char *pool;			/* bounce pages */
	uint32_t pool_pages;
	uint32_t *free_pages;
	uint32_t nr_free_pages;

	struct blk_req *parked;		/* taken, waiting for pages/a barrier */
	struct blk_req **parked_tail;
	uint32_t nr_parked;
	struct blk_req *reads_done;	/* to copy to the guest, then answer */
	struct blk_req *barrier;	/* started; later requests wait for it */
	uint32_t inflight;		/* taken, not answered */
	bool dirty;			/* responses to publish */
	bool quiesced;
	bool persistent;		/* map grants (feature-persistent) */
	struct pg_cache pg;
	uint64_t sectors;		/* device size in 512-byte units */
	/* token buckets of the limits: requests and bytes this queue may
	 * still start; they go below zero (a debt the next refills pay)
	 * rather than split a request */
	struct blk_bucket lim_iops, lim_bytes;	/* bucket.h */
	uint64_t lim_ns;		/* last refill */
	/* the fds as registered files of the worker's ring, or -1 */
	int slot_direct, slot_buffered;
	bool files_done;
	/* the in-flight record (crash recovery), or NULL (--no-journal) */
	struct jrnl *j;
	unsigned int *replay;		/* slots to run again, in order */
	unsigned int nr_replay;
	bool kick_guest;		/* re-attached: notify once */
	/* the vbd's target is back (blk_queue_retarget()): its worker
	 * takes vbd->tops at the next pass */
	bool retarget;
};

/* The block holding @n slots' seg, iov and pages arrays */
static inline size_t blk_req_mem_bytes(uint32_t n, uint32_t max_segs)
{
	return (size_t)n * max_segs * (sizeof(struct blkif_request_segment) +
				       sizeof(struct iovec) + sizeof(uint32_t));
}

static inline struct blk_queue *BQ(struct dp_queue *q)
{
	return (struct blk_queue *)q;
}

/*
 * Map the ring (@refs, @nr_pages) and bind @port through worker @w's
 * platform handle, allocate the request pool, open its in-flight record
 * (@reattach: a restart under a connected guest; a valid record is kept
 * and its requests run again first). The queue is not started.
 */
int blk_queue_create(struct device *d, struct vbd *v, struct worker *w,
		     unsigned int index, const pvio_gref_t *refs,
		     unsigned int nr_pages, pvio_port_t port, bool persistent,
		     bool reattach, struct blk_queue **out);
/*
 * blk-parse.c: validation of the private copy of a request
 * (docs/protocol.md rule 4), pure.
 * blk_parse() turns the copy @c into @r: BLKIF_RSP_OKAY if it goes on (an
 * indirect one once its segments are copied in and pass blk_check_segs()),
 * or the status to answer at once. @max_segs bounds indirect requests,
 * @dev_sectors is the device's size in 512-byte units.
 */
int16_t blk_parse(const struct vbd *v, uint32_t max_segs,
		  uint64_t dev_sectors, const struct blkif_request *c,
		  struct blk_req *r);
/* @r's segments and sector: in range, aligned, writable. Sets r->bytes. */
int16_t blk_check_segs(const struct vbd *v, uint64_t dev_sectors,
		       struct blk_req *r);
/* The index in dp_stats.req[] counting operation @op (7: unknown). */
unsigned int blk_op_stat(uint8_t op);

/* After the worker let go of it (DPQ_STOPPED, or never started). */
void blk_queue_free(struct blk_queue *q);
/*
 * Main thread: @q's vbd served without its target (target-absent.c) has
 * it again, in vbd->tops and the fields its open filled. The worker
 * switches before it takes the next request (the guest's notification of
 * it runs the queue); the absent target holds nothing in flight.
 */
void blk_queue_retarget(struct blk_queue *q);
/* A bigger device: later requests may use the new sectors. */
void blk_queue_resize(struct blk_queue *q, uint64_t sectors);

#endif
