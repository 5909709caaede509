/* SPDX-License-Identifier: MIT */
/*
 * What a vbd is served from: a target kind behind a small ops table, so
 * that a file, an RBD image or an NBD export lives in the same worker loop
 * and the same batching. The dataplane (blk-dataplane.c) parses, validates
 * and moves the guest's data; a target starts each validated request and
 * reports its end through blk_req_done(), once per request.
 *
 * Threads: open and close run on control-work threads (ctlwork.c: they
 * may wait on a remote peer; close on its own, or on the open's when the
 * device went while it opened), size on the main thread (the control
 * path); queue_start, submit, event, poll, quiesce and busy on the queue's
 * worker thread and must never block it.
 */
#ifndef PVIO_BACKEND_TARGET_H
#define PVIO_BACKEND_TARGET_H

#include <stdbool.h>
#include <stdint.h>

struct device;
struct vbd;
struct blk_queue;
struct blk_req;
struct dp_tag;

/* dp_tag.kind of a target's own io_uring operations (polls) */
#define BLK_TAG_TARGET	1u

/*
 * What a target's open needs of the daemon. The open runs on a thread of
 * its own (ctlwork.c), not on the main thread: it touches only its @v (a
 * private copy, handed to the device when it is done) and this.
 */
struct blk_open_env {
	const char *path;		/* the device's, for its messages */
	unsigned int remote_timeout_s;	/* --remote-timeout */
	const char *lock_dir;		/* --lock-dir */
};

struct blk_target_ops {
	const char *kind;	/* "file", "rbd", "nbd" */
	/*
	 * Open v->params (a control-work thread; may block, bounded by
	 * --remote-timeout): fill size_bytes, logical, physical,
	 * discard_granularity and the feat_* the target can serve. Return
	 * -errno; on failure v->why says why in one line, and close()
	 * releases what was taken. NULL for the file target, whose control
	 * path is blk-xenbus.c's (image lock, hotplug scripts); so are size
	 * and close.
	 */
	int (*open)(const struct blk_open_env *env, struct vbd *v);
	/* The target's current size in bytes (main thread, resize). */
	int (*size)(struct vbd *v, uint64_t *bytes);
	/*
	 * Release everything open() took (a control-work thread, queues
	 * stopped; may block, bounded by the cluster's/server's timeouts).
	 * It touches only v->tpriv: the rest of @v is a copy.
	 */
	void (*close)(struct vbd *v);
	/* The queue's first pass on its worker (register files, arm polls). */
	void (*queue_start)(struct blk_queue *q);
	/* Start @r (its kind, sector, bytes and iov are set). */
	void (*submit)(struct blk_queue *q, struct blk_req *r);
	/*
	 * A failed SQE of @r that the target can start again differently
	 * (the file target: O_DIRECT refused an alignment). True: it did.
	 */
	bool (*retry)(struct blk_queue *q, struct blk_req *r, int res);
	/* A completion of the target's own SQE (tag kind BLK_TAG_TARGET). */
	void (*event)(struct blk_queue *q, struct dp_tag *tag, int res);
	/* Every pass, before taking requests: progress, deadlines (or NULL). */
	void (*poll)(struct blk_queue *q);
	/* The queue stops: cancel what the target keeps armed (or NULL). */
	void (*quiesce)(struct blk_queue *q);
	/* Does the target still hold SQEs or requests of the queue? */
	bool (*busy)(const struct blk_queue *q);
	/* Most queues per device the target can serve safely. */
	unsigned int max_queues;
	/*
	 * Reads never land straight in mapped guest pages (persistent
	 * grants): they go through bounce pages. For a target that answers a
	 * request before it lets go of its buffers (blk_req_answer_now): a
	 * read answered early must not fill a guest page later. Writes may
	 * still use mapped pages: such a target must be done reading a
	 * write's buffers when submit() returns.
	 */
	bool no_map_reads;
	/*
	 * Completions come from a server through a polled fd, hundreds of
	 * microseconds away, and the server may share our CPU: a worker
	 * serving only such queues sleeps when idle rather than spin
	 * (--spin-us), and the guest notifies it of new requests.
	 */
	bool no_spin;
};

extern const struct blk_target_ops blk_target_file;
extern const struct blk_target_ops blk_target_nbd;	/* HAVE_LIBNBD */
extern const struct blk_target_ops blk_target_rbd;	/* HAVE_LIBRBD */
/* none: a re-attach's target that cannot be opened (target-absent.c) */
extern const struct blk_target_ops blk_target_absent;

/*
 * The target kind @params names ("rbd:...", "nbd://...", "nbd+unix://...",
 * else a file), or NULL if it names a kind this build does not have; then
 * *@missing is the kind's name.
 */
const struct blk_target_ops *blk_target_find(const char *params,
					     const char **missing);

/*
 * The end of one start of @r: @res is bytes done (reads and writes), 0
 * (flush, discard) or -errno. Called by targets on the worker thread.
 */
void blk_req_done(struct blk_queue *q, struct blk_req *r, int res);

/*
 * A target that cannot take back a started request (librbd has no
 * cancel) but must not keep the guest waiting: answer @r with an I/O
 * error now. Its buffers stay the target's until blk_req_done().
 */
void blk_req_answer_now(struct blk_queue *q, struct blk_req *r);

#endif
