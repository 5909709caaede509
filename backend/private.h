/* SPDX-License-Identifier: MIT */
/*
 * pvio-backd internals.
 *
 * Threads: the main thread runs the control path (xenstore watches, the
 * XenBus state machines, the control socket, signals, resize checks).
 * Worker threads run dataplanes: each worker owns one io_uring, one
 * platform handle (its event channels and grant operations) and the queues
 * the main thread gave it. Main and worker meet at a narrow start/stop
 * call (worker_start_queue / worker_stop_queue).
 */
#ifndef PVIO_BACKEND_PRIVATE_H
#define PVIO_BACKEND_PRIVATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include <liburing.h>

#include <pvio/gntio.h>
#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "util.h"

struct backd;
struct worker;
struct device;
struct dp_queue;
struct json_object;

/* ---- counters ---------------------------------------------------------------- */

/* A backend kind's name ("vbd", "vbd3", "vif"), at most: --vbd-types and
 * --vif-types refuse longer ones. */
#define BACKEND_KIND_MAX 15
#define NR_BATCH_BUCKETS 10	/* 1, 2-3, 4-7, ..., 256+ */
#define NR_LAT_BUCKETS	24	/* <2 us, 2-3 us, 4-7 us, ..., 8.4 s+ */

/*
 * One queue's counters: written by its worker only (relaxed stores, no
 * lock), read by the main thread for the control socket.
 */
struct dp_stats {
	uint64_t req[8];	/* by blkif op, or net: [0] tx [1] rx */
	uint64_t bytes_in;	/* from the guest (blk writes, net tx) */
	uint64_t bytes_out;	/* to the guest (blk reads, net rx) */
	uint64_t errors;	/* answered with an error status */
	uint64_t err_bad_req;	/* malformed, refused */
	uint64_t err_io;	/* the device failed */
	uint64_t err_grant;	/* grant copy or map failed */
	uint64_t err_unsupp;	/* EOPNOTSUPP */
	uint64_t drops[8];	/* net: by reason */
	uint64_t notify_tx;	/* notifications sent to the guest */
	uint64_t notify_rx;	/* event-channel kicks received */
	uint64_t spurious;	/* kicks that brought no work */
	uint64_t passes;
	uint64_t batch[NR_BATCH_BUCKETS];	/* requests per pass */
	uint64_t inflight_max;
	uint64_t inflight;	/* taken, not answered (a gauge, per pass) */
	uint64_t pg_hits, pg_maps, pg_refused;	/* persistent grants */
	/* blk: taken-to-answered time, log2 microsecond buckets; the sum
	 * gives the mean queue depth over an interval (Little's law) */
	uint64_t lat[NR_LAT_BUCKETS];
	uint64_t lat_sum_ns;
};

#define STAT_ADD(q, field, n) \
	__atomic_store_n(&(q)->st.field, (q)->st.field + (n), __ATOMIC_RELAXED)
#define STAT_MAX(q, field, v)						\
	do {								\
		if ((uint64_t)(v) > (q)->st.field)			\
			__atomic_store_n(&(q)->st.field, (uint64_t)(v),	\
					 __ATOMIC_RELAXED);		\
	} while (0)
void dp_stat_batch(struct dp_stats *st, unsigned int n);
/* One request answered @ns after it was taken (worker thread). */
void dp_stat_latency(struct dp_stats *st, uint64_t ns);

/* ---- dataplane queues ---------------------------------------------------------- */

/* SQE user_data points at one of these: the queue and its own tag. */
struct dp_tag {
	struct dp_queue *q;
	void *ptr;
	uint32_t kind;
};

struct dp_queue_ops {
	/* Consume the ring(s) and submit I/O; return requests taken. */
	int (*process)(struct dp_queue *q);
	/* One io_uring completion of this queue. */
	void (*complete)(struct dp_queue *q, struct dp_tag *tag, int res);
	/* After a worker pass: publish responses, notify once if asked. */
	void (*flush)(struct dp_queue *q);
	/* Before the worker sleeps: arm event indices; true = work waiting. */
	bool (*final_check)(struct dp_queue *q);
	/* A halted queue's turn (optional): it takes nothing, but what it
	 * holds must still be answered in time (a remote target's timers),
	 * so that it drains and its device can go. */
	void (*halted)(struct dp_queue *q);
	/* Anything in flight that a stop must wait for? */
	bool (*busy)(const struct dp_queue *q);
	/* The worker stops the queue: stop taking new work. */
	void (*quiesce)(struct dp_queue *q);
	/* Unmap, unbind, free (main thread; the worker let go of it). */
	void (*free)(struct dp_queue *q);
};

enum dp_queue_state {
	DPQ_NEW = 0,
	DPQ_RUNNING,
	DPQ_STOPPING,	/* draining in-flight I/O */
	DPQ_STOPPED,	/* the worker let go; the main thread may free it */
};

#define DP_QUEUE_FILES	2	/* registered files per queue */

struct dp_queue {
	const struct dp_queue_ops *ops;
	struct worker *w;
	struct device *dev;
	unsigned int index;		/* queue number within the device */
	pvio_port_t ports[2];		/* local ports (net: tx, rx) */
	unsigned int nr_ports;
	uint32_t state;			/* enum dp_queue_state */
	bool started;			/* handed to its worker */
	bool kicked;			/* an event arrived */
	/* its final_check found nothing and re-armed the guest's
	 * notification: only a kick, a completion, a timer or a start can
	 * give it work, so passes skip it until one does (worker.c) */
	bool idle;
	uint8_t notify_owed;		/* ports (bits) to notify at the pass end */
	bool halted;			/* the guest broke the protocol */
	int halt_err;
	char halt_why[128];
	/* event-storm guard (docs/protocol.md rule 6) */
	uint64_t storm_window_ns;
	uint32_t storm_spurious;
	uint64_t throttle_until_ns;
	uint64_t peer_checked_ns;	/* last look at the ports' status */
	uint64_t timer_ns;		/* wake the worker by then (0: none) */
	/* its I/O completes through a polled fd, far away (a remote
	 * target): no reason for the worker to spin (worker.c) */
	bool no_spin;
	/* SQEs of this queue whose CQEs are not reaped yet (dp_sqe_own): the
	 * queue is not retired, so not freed, before they all are */
	uint32_t sqes;
	/* requests (net: packets) the queue may take in this pass: the
	 * worker's fair share (worker.c) */
	unsigned int budget;
	/* a per-device limit holds the queue back until then (0: it does
	 * not): its requests wait in the ring, kicks meanwhile are no storm */
	uint64_t limit_until_ns;
	struct dp_stats st;
	/* stall watch: target I/O in flight and the last completion (or the
	 * start of a busy spell), written by the worker, read by the main
	 * thread */
	uint32_t io_busy;
	uint64_t progress_ns;
	bool stall_logged;		/* main thread */
	struct dp_queue *next;		/* the worker's list */
	/* the worker's registered-file slots this queue holds */
	int files[DP_QUEUE_FILES];
	unsigned int nr_files;
};

/* Called by a dataplane that finds the guest hostile: stop serving this
 * queue and let the main thread fail the device. */
void dp_queue_halt(struct dp_queue *q, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * Notify the guest through the queue's port @i. Within a worker's pass the
 * notification is owed and sent once when the pass ends: what a pass
 * publishes early (so that a polling guest sees it at once) costs an
 * interrupt-driven guest one event, not one per publication.
 */
void dp_queue_notify(struct dp_queue *q, unsigned int i);
/*
 * On the worker thread: @fd as a registered file of the worker's ring
 * (IOSQE_FIXED_FILE: no file lookup per SQE), held until the queue is
 * retired. Return its slot, or -1 to go on with @fd itself (no room, or
 * a kernel without sparse file tables).
 */
int dp_queue_file(struct dp_queue *q, int fd);
/*
 * Every SQE a queue submits, of whatever kind (I/O, cancels), is counted
 * here when its user_data is one of the queue's tags; the worker uncounts
 * it when it reaps the CQE, and keeps the queue until none is left.
 */
void dp_sqe_own(struct dp_queue *q, struct io_uring_sqe *sqe,
		struct dp_tag *tag);
/*
 * The stall watch (blk I/O on targets): an I/O of @q submitted, one
 * completed. Not for waits that may last (a TAP read waits for packets).
 */
static inline void dp_io_start(struct dp_queue *q)
{
	if (!q->io_busy)	/* a busy spell begins */
		__atomic_store_n(&q->progress_ns, pvio_now_ns(),
				 __ATOMIC_RELAXED);
	__atomic_store_n(&q->io_busy, q->io_busy + 1, __ATOMIC_RELAXED);
}

static inline void dp_io_done(struct dp_queue *q, uint64_t now)
{
	__atomic_store_n(&q->progress_ns, now, __ATOMIC_RELAXED);
	__atomic_store_n(&q->io_busy, q->io_busy - 1, __ATOMIC_RELAXED);
}

/* Point @sqe at @slot if >= 0 (registered), else leave its fd. */
static inline void dp_sqe_file(struct io_uring_sqe *sqe, int slot)
{
	if (slot >= 0) {
		sqe->fd = slot;
		sqe->flags |= IOSQE_FIXED_FILE;
	}
}

/* ---- workers ------------------------------------------------------------------------ */

#define WORKER_FILES	512u	/* registered files per worker ring */
#define WORKER_CQ_ENTRIES	4096u	/* completions a worker ring holds */
/*
 * Requests a queue may take in one pass while other queues of its worker
 * are busy too: a flooding guest waits for the next pass instead of
 * holding everybody else's requests behind its own (QD 128 of 4 KiB
 * writes is ~130 us of work in one pass; 16 is ~15 us). Alone, a queue
 * takes up to 256.
 */
#define WORKER_QUANTUM	16u
#define WORKER_BUDGET	256u

struct worker {
	struct backd *bd;
	unsigned int idx;
	/* cancels stopping queues may still send in this pass (each and
	 * what it ends: two CQEs); set by retire() */
	unsigned int cancels_left;
	pthread_t thread;
	struct pvio_platform *plat;
	struct io_uring ring;
	unsigned int sq_entries;
	unsigned int test_chain_fill;	/* PVIO_TEST_CHAIN_FILL: worker_sqe_room */
	int cmd_efd;
	pthread_mutex_t lock;		/* the command lists */
	struct dp_queue *to_start;
	struct dp_queue *queues;	/* running, the worker's own */
	struct dp_queue *rr;		/* the next pass starts here */
	unsigned int busy_queues;	/* that took work in the last pass */
	/* queues placed here (main thread: placement; any thread: free) */
	uint32_t placed;
	/* local port -> queue, for event dispatch (the worker's own) */
	struct dp_queue **by_port;
	unsigned int nr_by_port;
	bool exit;			/* drain everything and return */
	int init_rc;			/* 0 pending, 1 ok, -errno */
	pthread_cond_t init_cond;
	uint64_t spin_ns;
	uint32_t inflight;		/* SQEs not completed */
	bool in_pass;			/* notifications are owed, not sent */
	struct pvio_gcopy gcopy;	/* one batch of grant copies */
	uint64_t loops, sleeps;
	useconds_t test_retire_delay_us;	/* tests only (worker_init) */
	/* stall watch, read by the main thread: the last loop, asleep in
	 * io_uring (not stuck), the queue being served */
	uint64_t beat_ns;
	bool asleep;
	struct dp_queue *cur_q;
	bool stall_logged;		/* main thread */
	bool abandon;			/* exit even with queues left */
	/* the ring's registered-file table: free slots */
	unsigned int nr_file_free;
	uint16_t file_free[WORKER_FILES];
};

int worker_init(struct worker *w, struct backd *bd, unsigned int idx);
int worker_run(struct worker *w);
void worker_join(struct worker *w);
/* Hand a set-up queue to the worker (main thread). */
void worker_start_queue(struct worker *w, struct dp_queue *q);
/* Ask the worker to drain and drop a queue; it becomes DPQ_STOPPED. */
void worker_stop_queue(struct worker *w, struct dp_queue *q);
/* Ask the worker to drain everything and exit; with @abandon, exit
 * even with queues whose I/O never completes (SIGTERM's bound passed). */
void worker_shutdown(struct worker *w, bool abandon);
/* Main thread, once a second: log a worker that made no progress for
 * @limit_ns and the device it is stuck on. */
void worker_check_stall(struct worker *w, uint64_t now, uint64_t limit_ns);
/* An SQE from the worker's ring, submitting what is queued if full. */
struct io_uring_sqe *worker_sqe(struct worker *w);
/* Before a linked chain of @n: the queue gets room for all of it (a
 * chain split by worker_sqe()'s submit loses its order across the split) */
void worker_sqe_room(struct worker *w, unsigned int n);
/*
 * In the middle of a long pass: submit what is queued, reap what has
 * completed (cached reads complete inside the submit) and publish the
 * responses, so the guest refills while we go on.
 * Re-entrant by design: it runs the worker loop's submit-and-reap from
 * inside a dataplane's process(), so completions (this queue's and other
 * queues') and every queue's flush() run before process() returns. A
 * caller keeps its own state consistent across the call.
 */
void worker_progress(struct worker *w);
/*
 * w->gcopy, the worker's one grant-copy batch, has one user at a time: a
 * dataplane opens it for its guest (worker_gcopy_begin), adds segments,
 * flushes, reads the statuses and closes it (worker_gcopy_end) within one
 * call of its own; nobody else resets it or changes its domain.
 */
static inline void worker_gcopy_begin(struct worker *w, unsigned int domid)
{
	pvio_gcopy_reset(&w->gcopy);
	pvio_gcopy_set_domain(&w->gcopy, domid);
}

static inline void worker_gcopy_end(struct worker *w)
{
	pvio_gcopy_reset(&w->gcopy);
}

/* Flush w->gcopy and report failures: return failed segments or -errno. */
int worker_gcopy_flush(struct worker *w);

/* ---- devices -------------------------------------------------------------------------- */

enum dev_kind { DEV_VBD, DEV_VIF };

struct device_ops {
	const char *kind;		/* "vbd", "vif" */
	/* Backend set-up at discovery: features, then InitWait. */
	int (*probe)(struct device *d);
	/* Frontend is Initialised/Connected: negotiate, start dataplanes. */
	int (*connect)(struct device *d);
	/* Stop dataplanes (blocking until drained), unmap. */
	void (*disconnect)(struct device *d);
	void (*destroy)(struct device *d);
	/* Once a second from the main loop (resize checks, ...). */
	void (*tick)(struct device *d);
	/* ... then once for the kind, after every device's tick: work
	 * gathered across its devices (NULL: none) */
	void (*tick_end)(struct backd *bd);
	/* Something changed under the backend directory (hotplug nodes). */
	void (*changed)(struct device *d);
	/* The toolstack changed a rate-limit node (@key): read it again. */
	void (*limits)(struct device *d, const char *key);
	/* The toolstack removes a device whose probe is still off the main
	 * thread (-EINPROGRESS): cancel that step, nothing reaches the
	 * device any more (NULL: the kind never returns -EINPROGRESS). */
	void (*abort)(struct device *d);
	/* Removed while its queues still drain: destroy() comes once they
	 * have (NULL: nothing to prepare). */
	void (*going)(struct device *d);
	/* Extra JSON fields for the stats dump, added to @o. */
	void (*describe)(struct device *d, struct json_object *o);
};

struct device {
	struct backd *bd;
	const struct device_ops *ops;
	char type[BACKEND_KIND_MAX + 1];	/* xenstore backend kind */
	unsigned int fe;		/* frontend domid */
	unsigned int devid;
	char path[PVIO_XS_PATH_MAX];	/* our backend directory */
	struct pvio_xenbus *xb;
	bool connected;
	bool failed;			/* fatal: wait for the frontend to close */
	bool setup_failed;		/* probe failed: nothing to offer until
					 * the toolstack re-creates the device */
	struct dp_queue **queues;
	unsigned int nr_queues;
	void *priv;			/* vbd / vif state */
	struct device *next;
	bool seen;			/* discovery sweep mark */
	bool recreated;			/* the toolstack wrote a new instance */
	bool reattach;			/* connecting under a connected guest */
	bool detaching;			/* SIGTERM: keep what a restart reuses
					 * (the vif's TAP) */
	bool draining;			/* queues stopping; XenBus steps wait */
	bool opening;			/* set-up waits for a control step off
					 * the main thread (ctlwork.c): XenBus
					 * steps wait for device_probe_done() */
	bool marked;			/* its "pvio-opening" marker written */
	uint64_t opening_ns;		/* ... since then */
	bool open_pending;		/* a target's open off the main thread
					 * after the probe (a hotplug script's
					 * device, a lock's next try): READY=1
					 * waits for it as for an opening one */
	pvio_xs_tx_t tx;		/* device_write()'s and device_read_*()'s
					 * (device_opened()), else 0 */
	uint64_t drain_ns;		/* when the stop began */
	uint64_t connects;
	struct dp_stats retired;	/* counters of queues already freed */
	/* its messages (main thread): warnings, and the rest (so that a
	 * flapping guest's transitions do not hide its protocol errors) */
	struct pvio_ratelimit log_rl[2];
};

/* Messages about a device a guest can trigger again and again: within
 * the device's rate limits. */
#define dev_log(d, level, ...)						\
	pvio_log_rl(&(d)->log_rl[(level) > PVIO_LOG_WARN], (d)->path,	\
		    (level), __VA_ARGS__)
#define dev_warn(d, ...)	dev_log((d), PVIO_LOG_WARN, __VA_ARGS__)
#define dev_info(d, ...)	dev_log((d), PVIO_LOG_INFO, __VA_ARGS__)
#define dev_debug(d, ...)	dev_log((d), PVIO_LOG_DEBUG, __VA_ARGS__)

int device_write(struct device *d, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int device_read_uint(struct device *d, const char *key, unsigned long min,
		     unsigned long max, unsigned long dflt, bool required,
		     unsigned long *out);
int device_read_str(struct device *d, const char *key, char **val);
/* @s (a file or device name: any bytes) as the JSON string @key of @o. */
void json_add_name(struct json_object *o, const char *key, const char *s);
/*
 * Set-up failed after InitWait (a hotplug script's error or timeout, the
 * target it named): log, error node, Closing; the device waits for the
 * toolstack to remove it. Other devices are untouched.
 */
void device_setup_fail(struct device *d, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* A hotplug-error node: fail the device with it (1), or 0. */
int device_hotplug_error(struct device *d, const char *script);
/*
 * The end of a probe that returned -EINPROGRESS (its set-up went off the
 * main thread): @rc 0 goes on to InitWait (or re-attaches), else the
 * device fails as a failed probe does.
 */
void device_probe_done(struct device *d, int rc);
/*
 * Is @d a restarted pvio-backd's device under a guest still connected
 * (our state Connected, the frontend's Connected or Initialised)? Such a
 * device re-attaches at the live rings and never goes through Closing
 * (docs/protocol.md rule 11).
 */
bool device_reattaching(struct device *d);
/*
 * The end of such a probe when it went well: @offer writes what the
 * device offers (device_write()), in one transaction with the check that
 * the directory is still the one the probe marked; then as
 * device_probe_done(@offer's result). A directory the toolstack removed
 * meanwhile (or removed and wrote anew) gets nothing: the scan its
 * removal fired frees (or replaces) the device.
 */
void device_opened(struct device *d, int (*offer)(struct device *d));
/* Devices whose set-up is still off the main thread, for less than
 * @for_ns (0: however long). */
unsigned int devices_opening(const struct backd *bd, uint64_t for_ns);
/* Act on the frontend's state again (connect was deferred: -EAGAIN). */
void device_recheck(struct device *d);
/*
 * Pick a worker for a device's next queue: the one with the fewest queues
 * placed (ties: the next after the last pick). The queue's free function
 * gives the place back with worker_unplace().
 */
struct worker *backd_pick_worker(struct backd *bd);
void worker_unplace(struct worker *w);
/*
 * Stop and free a device's queues (main thread, never blocking): ask the
 * workers to drain the started ones, free those stopped. True when none is
 * left; call again (on done_efd) until then.
 */
bool device_stop_queues(struct device *d);

extern const struct device_ops vbd_ops;
extern const struct device_ops vif_ops;

/* ---- the daemon ------------------------------------------------------------------------- */

struct backd_opts {
	const char *platform;
	unsigned int nr_workers;
	uint64_t spin_ns;
	unsigned int max_ring_order;	/* 0..4 */
	unsigned int max_queues;
	unsigned int max_indirect;	/* 0: no indirect */
	bool buffered;			/* no O_DIRECT by default */
	bool grant_map;			/* map (persistent) instead of copy */
	unsigned int pgrant_max;	/* persistent grants per queue */
	const char *ctl_sock;
	unsigned int hotplug_timeout_s;	/* a script's answer, at most */
	const char *types_vbd;		/* backend kinds served */
	const char *types_vif;
	bool no_vif, no_vbd;
	const char *journal_dir;	/* in-flight records; NULL: none */
	bool no_confine;		/* --no-confine: debugging only */
	unsigned int remote_timeout_s;	/* RBD/NBD: answer an error after */
	const char *lock_dir;		/* single-writer lock files */
	unsigned int stall_s;		/* report stuck I/O after (0: never) */
	unsigned int drain_ms;		/* at SIGTERM, then abandon */
	char ovsdb[128];		/* unix:PATH, Open vSwitch's database */
};

struct cw_slot;

/* A control-socket client (ctlsock.c). */
#define CTL_CONNS	32u
#define CTL_EV_BASE	64u	/* its epoll data: CTL_EV_BASE + place */
struct ctl_conn {
	int fd;			/* -1: a free place */
	bool answering, polling_out;
	uint64_t start_ms;
	size_t got;		/* of the request */
	char req[128];
	char *out;		/* the answer */
	size_t len, off;
};

struct backd {
	struct backd_opts o;
	struct pvio_platform *plat;	/* the main thread's handle */
	struct pvio_xs *xs;
	unsigned int self;
	struct worker *workers;
	unsigned int nr_workers;
	unsigned int next_worker;
	unsigned int peer_cursor;	/* devices_tick's round robin */
	struct device *devices;
	struct device *dying;		/* removed, their queues still drain */
	int ctl_fd;
	struct ctl_conn ctl[CTL_CONNS];
	uint64_t ctl_refused, ctl_evicted;	/* places all taken */
	uint64_t ctl_refused_told, ctl_evicted_told;
	int ep;				/* the main loop's epoll set */
	int lock_fd;			/* one pvio-backd per host */
	int done_efd;			/* workers: a queue stopped */
	bool stopping;
	/* SIGTERM's drain is over with nothing left in flight: the process
	 * exits now, and what it releases anyway is left to it
	 * (devices_shutdown()) */
	bool exit_fast;
	uint64_t started_ns;
	bool ready_sent;		/* READY=1: every device set up */
	/* ctlwork.c's (under its lock) */
	struct ctl_job *cw_queue;	/* the serial lane, in order */
	struct ctl_job **cw_queue_tail;
	struct ctl_job *cw_done;	/* for the main thread */
	struct ctl_job **cw_done_tail;
	struct cw_slot *cw_keyed;	/* keyed jobs not done, in order */
	unsigned int cw_threads;	/* running */
	bool cw_serial_running;
};

/*
 * ctlwork.c: control steps that wait on a device's remote peer (an NBD or
 * RBD open or close, an OVSDB exchange) run off the main thread; their
 * results come back on done_efd and are acted on by the main thread
 * (ctlwork_reap()). run() touches only the job (copies of what it needs);
 * done() runs on the main thread and frees the job; drop() releases what
 * run() took and frees the job, on whichever thread holds it when it is
 * cancelled.
 *
 * @key (own threads only; NULL: none): jobs of one key run one after
 * another, in the order they were started. A remote target's open and
 * close are keyed by its params: a re-attach of an image opens only once
 * the close of its previous holder (our own old handle: its exclusive
 * lock, its lock file) is done. A later job waits on its own thread, so
 * the main thread never does; cancelled while it waits, it never runs.
 */
struct ctl_job {
	void (*run)(struct ctl_job *j);
	void (*done)(struct ctl_job *j);
	void (*drop)(struct ctl_job *j);
	const char *key;
	const char *name;		/* its own thread's; NULL: pvio-open */
	struct ctl_job *next;
	int state;
	bool cancelled;
	bool dropped_here;		/* drop() runs on the main thread (it had
					 * finished: ctl_job_cancel()) */
};

void ctlwork_init(struct backd *bd);
/* Start @j on a thread of its own, or on the serial lane (in order). */
int ctl_job_start(struct backd *bd, struct ctl_job *j, bool serial);
/*
 * A place in @key's line taken now for a job that starts later (NULL: no
 * memory, no place): a vbd removed while its queues still drain closes
 * its target only once they have drained, and an open of the same target
 * started meanwhile must wait for that close, not meet its lock. Given
 * to ctl_job_start_held() (@j runs there, after the jobs of its key
 * started before the hold was taken; with a NULL hold it takes its place
 * now, as ctl_job_start() does), or given up: ctl_key_release().
 */
struct cw_slot *ctl_key_hold(struct backd *bd, const char *key);
int ctl_job_start_held(struct backd *bd, struct ctl_job *j,
		       struct cw_slot *hold);
void ctl_key_release(struct backd *bd, struct cw_slot *hold);
/* Main thread: done() will not run; drop() runs now or when run() ends. */
void ctl_job_cancel(struct backd *bd, struct ctl_job *j);
/* Main thread, on done_efd: done() of every job that finished. */
void ctlwork_reap(struct backd *bd);
/* Exit: wait for every job's thread until @deadline_ms (pvio_now_ms());
 * return the number of threads still waiting on a peer (abandoned). */
unsigned int ctlwork_shutdown(struct backd *bd, uint64_t deadline_ms);

/*
 * confine.c. confine_caps(): no_new_privs, every capability but
 * CAP_NET_ADMIN dropped (bounding set too), before the threads start.
 * confine_worker(): a worker thread drops its own. confine_filter(): the
 * seccomp allow-list, on every thread. Each returns 0 or -errno.
 * confine_test_fault(): the test's forbidden system call, if asked for.
 */
int confine_caps(void);
void confine_worker(void);
int confine_filter(void);
void confine_test_fault(void);

/*
 * ctlsock.c: the control socket, served by the main loop without waiting
 * on a client. ctlsock_open() logs its own errors; ctlsock_event() takes
 * the place of an event (its data less CTL_EV_BASE); ctlsock_tick() once
 * a second; ctlsock_close() at exit removes the socket.
 */
int ctlsock_open(struct backd *bd, const char *path);
void ctlsock_accept(struct backd *bd);
void ctlsock_event(struct backd *bd, unsigned int place, uint32_t events);
void ctlsock_tick(struct backd *bd);
void ctlsock_close(struct backd *bd, const char *path);

int devices_init(struct backd *bd);
/* A watch under .../backend/<kind> fired: add/remove devices. */
void devices_scan(struct backd *bd);
void devices_tick(struct backd *bd);
/* Dataplanes that halted: fail their devices (main thread). */
void devices_reap_halted(struct backd *bd);
/* A worker stopped a queue: resume what waited for the drain. */
void devices_reap_stopped(struct backd *bd);
/* SIGTERM: drain every queue and detach without closing the devices, for
 * up to @bound_ms once all were told (*@deadline_ms: until then); return
 * the number of devices abandoned. */
unsigned int devices_shutdown(struct backd *bd, unsigned int bound_ms,
			      uint64_t *deadline_ms);
/* The stats dump for the control socket. */
size_t devices_stats(struct backd *bd, char *buf, size_t len, bool json,
		     int dom, int devid);

#endif
