// SPDX-License-Identifier: MIT
/*
 * Dataplane workers. Each worker thread owns an io_uring and a platform
 * handle, and serves its queues in passes:
 *
 *   reap completions -> consume every queue's ring(s) and submit I/O ->
 *   publish responses and notify once per queue -> if nothing happened,
 *   spin for a bounded time, then arm the rings' event indices (final
 *   check) and sleep in io_uring until an I/O completion, an event channel
 *   or a command wakes us.
 *
 * Event channels and commands arrive through multishot polls on the same
 * io_uring, so one wait covers everything.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "private.h"

enum { WK_EVTCHN = 1, WK_CMD = 2 };

static struct dp_tag evtchn_tag = { .kind = WK_EVTCHN };
static struct dp_tag cmd_tag = { .kind = WK_CMD };

#define IOWQ_BOUND_MAX	256u		/* io-wq bounded workers per ring */
#define STORM_SPURIOUS	20000u		/* per second, then throttle */
#define STORM_PAUSE_NS	10000000u	/* 10 ms */

void dp_stat_batch(struct dp_stats *st, unsigned int n)
{
	unsigned int b = 0;

	while (b < NR_BATCH_BUCKETS - 1 && (2u << b) <= n)
		b++;
	__atomic_store_n(&st->batch[b], st->batch[b] + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&st->passes, st->passes + 1, __ATOMIC_RELAXED);
}

void dp_stat_latency(struct dp_stats *st, uint64_t ns)
{
	uint64_t us = ns / 1000u;
	unsigned int b = us ? 63u - (unsigned int)__builtin_clzll(us) : 0;

	if (b >= NR_LAT_BUCKETS)
		b = NR_LAT_BUCKETS - 1;
	__atomic_store_n(&st->lat[b], st->lat[b] + 1, __ATOMIC_RELAXED);
	__atomic_store_n(&st->lat_sum_ns, st->lat_sum_ns + ns, __ATOMIC_RELAXED);
}

void dp_queue_halt(struct dp_queue *q, int err, const char *fmt, ...)
{
	va_list ap;

	if (q->halted)
		return;
	va_start(ap, fmt);
	vsnprintf(q->halt_why, sizeof(q->halt_why), fmt, ap);
	va_end(ap);
	q->halt_err = err;
	__atomic_store_n(&q->halted, true, __ATOMIC_RELEASE);
	/* the main thread fails the device */
	uint64_t one = 1;

	if (write(q->w->bd->done_efd, &one, sizeof(one)) < 0)
		return;
}

void dp_queue_notify(struct dp_queue *q, unsigned int i)
{
	if (q->w->in_pass) {
		q->notify_owed |= (uint8_t)(1u << i);
		return;
	}
	q->notify_owed &= (uint8_t)~(1u << i);
	if (pvio_evtchn_notify(q->w->plat, q->ports[i]) == 0)
		STAT_ADD(q, notify_tx, 1);
}

/* The end of a pass: what its publications owe, one event per port. */
static void send_owed_notifications(struct worker *w)
{
	struct dp_queue *q;
	unsigned int i;

	w->in_pass = false;
	for (q = w->queues; q; q = q->next)
		for (i = 0; q->notify_owed && i < q->nr_ports; i++)
			if (q->notify_owed & (1u << i))
				dp_queue_notify(q, i);
}

struct io_uring_sqe *worker_sqe(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

void worker_sqe_room(struct worker *w, unsigned int n)
{
	unsigned int i;

	/* tests: entries queued before the chain, as other queues' are */
	for (i = 0; pvio_unlikely(i < w->test_chain_fill); i++) {
		struct io_uring_sqe *sqe = worker_sqe(w);

		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data(sqe, NULL);	/* its CQE: ignored */
	}
	if (io_uring_sq_space_left(&w->ring) < n)
		io_uring_submit(&w->ring);
}

void dp_sqe_own(struct dp_queue *q, struct io_uring_sqe *sqe,
		struct dp_tag *tag)
{
	io_uring_sqe_set_data(sqe, tag);
	q->sqes++;
	q->w->inflight++;
}

int worker_gcopy_flush(struct worker *w)
{
	return pvio_gcopy_flush(&w->gcopy);
}

static void arm_poll(struct worker *w, int fd, struct dp_tag *tag)
{
	struct io_uring_sqe *sqe = worker_sqe(w);

	io_uring_prep_poll_multishot(sqe, fd, POLLIN);
	io_uring_sqe_set_data(sqe, tag);
}

int worker_init(struct worker *w, struct backd *bd, unsigned int idx)
{
	int rc;

	memset(w, 0, sizeof(*w));
	w->bd = bd;
	w->idx = idx;
	w->spin_ns = bd->o.spin_ns;
	w->cmd_efd = -1;
	pthread_mutex_init(&w->lock, NULL);
	/* a test knob: pause the worker after it let queues go, as a
	 * preempted worker would, so that a completion it reaps late meets
	 * a freed queue (test-backd-flap.sh) */
	if (getenv("PVIO_BACKD_TEST_RETIRE_DELAY_US"))
		w->test_retire_delay_us = (useconds_t)strtoul(
			getenv("PVIO_BACKD_TEST_RETIRE_DELAY_US"), NULL, 10);
	rc = pvio_platform_open(&w->plat, bd->o.platform, 0, 0);
	if (rc)
		return rc;
	w->cmd_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->cmd_efd < 0) {
		rc = -errno;
		goto fail_plat;
	}
	rc = pvio_gcopy_init(&w->gcopy, w->plat, 0, 1024);
	if (rc)
		goto fail_efd;
	return 0;

fail_efd:
	close(w->cmd_efd);
fail_plat:
	pvio_platform_close(w->plat);
	w->plat = NULL;
	return rc;
}

/* On the worker thread: SINGLE_ISSUER ties the ring to its creator. */
static int ring_init(struct worker *w)
{
	struct io_uring_params p;
	const char *t = getenv("PVIO_TEST_SQ_ENTRIES");
	int rc, n;

	/* tests: a small submission queue fills within one pass (a linked
	 * chain then meets worker_sqe()'s submit; see worker_sqe_room) */
	w->sq_entries = 1024;
	n = t ? atoi(t) : 0;
	if (n >= 4 && n <= 1024)
		w->sq_entries = (unsigned int)n;
	t = getenv("PVIO_TEST_CHAIN_FILL");
	n = t ? atoi(t) : 0;
	if (n > 0 && n < 4)
		w->test_chain_fill = (unsigned int)n;
	memset(&p, 0, sizeof(p));
	/* COOP_TASKRUN: no interrupting IPIs for completions; TASKRUN_FLAG:
	 * the kernel says in the SQ ring when completions wait as task work,
	 * so a spinning worker fetches them (reap) without a system call
	 * per spin */
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
		  IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SUBMIT_ALL |
		  IORING_SETUP_CQSIZE;
	p.cq_entries = WORKER_CQ_ENTRIES;
	rc = io_uring_queue_init_params(w->sq_entries, &w->ring, &p);
	if (rc == -EINVAL) {	/* an older kernel */
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = WORKER_CQ_ENTRIES;
		rc = io_uring_queue_init_params(w->sq_entries, &w->ring, &p);
	}
	/*
	 * io-wq's bounded workers (regular files, block devices) default to
	 * 4 per CPU for the whole ring: requests of one hung target that was
	 * sent there (IOSQE_ASYNC) would hold them all, and every other
	 * device's punted I/O (each fsync, each O_DIRECT write that must
	 * wait) would queue behind it. Raised to IOWQ_BOUND_MAX (idle ones
	 * exit); the unbounded limit stays.
	 */
	if (!rc) {
		unsigned int lim[2] = { IOWQ_BOUND_MAX, 0 };

		if (io_uring_register_iowq_max_workers(&w->ring, lim) < 0)
			log_info("worker %u: io-wq limits not settable (kernel < 5.15): a hung target may hold io-wq's default bounded workers",
				 w->idx);
	}
	/* registered files (dp_queue_file): optional, 5.19+ */
	if (!rc && io_uring_register_files_sparse(&w->ring, WORKER_FILES) == 0) {
		unsigned int i;

		for (i = 0; i < WORKER_FILES; i++)
			w->file_free[i] = (uint16_t)(WORKER_FILES - 1 - i);
		w->nr_file_free = WORKER_FILES;
	}
	return rc;
}

int dp_queue_file(struct dp_queue *q, int fd)
{
	struct worker *w = q->w;
	int slot;

	if (fd < 0 || !w->nr_file_free || q->nr_files == DP_QUEUE_FILES)
		return -1;
	slot = w->file_free[--w->nr_file_free];
	if (io_uring_register_files_update(&w->ring, (unsigned int)slot, &fd,
					   1) != 1) {
		w->file_free[w->nr_file_free++] = (uint16_t)slot;
		return -1;
	}
	q->files[q->nr_files++] = slot;
	return slot;
}

/* The queue is leaving the worker: its files go (the kernel holds a
 * reference to each until then: a TAP would outlive its close). */
static void queue_files_release(struct worker *w, struct dp_queue *q)
{
	while (q->nr_files) {
		int slot = q->files[--q->nr_files], none = -1;

		io_uring_register_files_update(&w->ring, (unsigned int)slot,
					       &none, 1);
		w->file_free[w->nr_file_free++] = (uint16_t)slot;
	}
}

static void cmd_kick(struct worker *w)
{
	uint64_t one = 1;

	if (write(w->cmd_efd, &one, sizeof(one)) < 0)
		log_warn("worker %u: cannot kick: %s", w->idx, strerror(errno));
}

void worker_start_queue(struct worker *w, struct dp_queue *q)
{
	q->w = w;
	q->started = true;
	pthread_mutex_lock(&w->lock);
	q->next = w->to_start;
	w->to_start = q;
	pthread_mutex_unlock(&w->lock);
	cmd_kick(w);
}

void worker_stop_queue(struct worker *w, struct dp_queue *q)
{
	pthread_mutex_lock(&w->lock);
	__atomic_store_n(&q->state, DPQ_STOPPING, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&w->lock);
	cmd_kick(w);
}

void worker_shutdown(struct worker *w, bool abandon)
{
	if (abandon)
		__atomic_store_n(&w->abandon, true, __ATOMIC_RELEASE);
	__atomic_store_n(&w->exit, true, __ATOMIC_RELEASE);
	cmd_kick(w);
}

void worker_check_stall(struct worker *w, uint64_t now, uint64_t limit_ns)
{
	uint64_t beat = __atomic_load_n(&w->beat_ns, __ATOMIC_RELAXED);
	struct dp_queue *q;

	if (!limit_ns)
		return;
	if (__atomic_load_n(&w->asleep, __ATOMIC_RELAXED) || !beat ||
	    pvio_since_ns(now, beat) < limit_ns) {
		if (w->stall_logged)
			log_info("worker %u: making progress again", w->idx);
		w->stall_logged = false;
		return;
	}
	if (w->stall_logged)
		return;
	w->stall_logged = true;
	/* the queue stays while the worker is inside it: freeing it needs
	 * the worker to let go (DPQ_STOPPED) */
	q = __atomic_load_n(&w->cur_q, __ATOMIC_ACQUIRE);
	if (q)
		log_warn("worker %u: no progress for %llu s, stuck in %s (domain %u, queue %u): every device on this worker waits",
			 w->idx, (unsigned long long)((now - beat) / 1000000000u),
			 q->dev->path, q->dev->fe, q->index);
	else
		log_warn("worker %u: no progress for %llu s (between queues)",
			 w->idx, (unsigned long long)((now - beat) / 1000000000u));
}

static struct dp_queue *queue_by_port(struct worker *w, int port)
{
	if (port < 0 || (unsigned int)port >= w->nr_by_port)
		return NULL;
	return w->by_port[port];
}

/* Index the queue's ports (a table: hundreds of queues per worker). */
static void ports_add(struct worker *w, struct dp_queue *q)
{
	unsigned int i;

	for (i = 0; i < q->nr_ports; i++) {
		unsigned int p = q->ports[i];

		if (p >= w->nr_by_port) {
			unsigned int n = w->nr_by_port ? w->nr_by_port : 64;
			struct dp_queue **t;

			while (n <= p)
				n *= 2;
			t = realloc(w->by_port, n * sizeof(*t));
			if (!t) {
				/* the queue still runs: every pass polls its
				 * ring; only its kicks go unattributed */
				log_warn("worker %u: no memory for port %u", w->idx, p);
				continue;
			}
			memset(t + w->nr_by_port, 0,
			       (n - w->nr_by_port) * sizeof(*t));
			w->by_port = t;
			w->nr_by_port = n;
		}
		w->by_port[p] = q;
	}
}

static void ports_del(struct worker *w, struct dp_queue *q)
{
	unsigned int i;

	for (i = 0; i < q->nr_ports; i++)
		if (q->ports[i] < w->nr_by_port && w->by_port[q->ports[i]] == q)
			w->by_port[q->ports[i]] = NULL;
}

static void take_commands(struct worker *w)
{
	struct dp_queue *q, *n;
	uint64_t v;

	if (read(w->cmd_efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("worker %u: command eventfd: %s", w->idx,
			 strerror(errno));
	pthread_mutex_lock(&w->lock);
	q = w->to_start;
	w->to_start = NULL;
	pthread_mutex_unlock(&w->lock);
	for (; q; q = n) {
		n = q->next;
		q->next = w->queues;
		w->queues = q;
		ports_add(w, q);
		q->kicked = true;	/* look at the ring once at start */
		if (__atomic_load_n(&q->state, __ATOMIC_ACQUIRE) == DPQ_NEW)
			__atomic_store_n(&q->state, DPQ_RUNNING,
					 __ATOMIC_RELEASE);
	}
}

static void events(struct worker *w)
{
	uint64_t now = 0;
	int port;

	while ((port = pvio_evtchn_pending(w->plat)) >= 0) {
		struct dp_queue *q = queue_by_port(w, port);

		if (!q) {
			pvio_evtchn_unmask(w->plat, (pvio_port_t)port);
			continue;
		}
		STAT_ADD(q, notify_rx, 1);
		if (q->throttle_until_ns) {
			if (!now)
				now = pvio_now_ns();
			if (now < q->throttle_until_ns)
				continue;	/* unmasked when the pause ends */
			q->throttle_until_ns = 0;
		}
		q->kicked = true;
	}
}

static int reap(struct worker *w)
{
	struct io_uring_cqe *cqe;
	unsigned int head, n = 0;
	uint64_t now = 0;

	/* completions waiting as task work: run it (one cheap enter) */
	if (w->inflight && (IO_URING_READ_ONCE(*w->ring.sq.kflags) &
			    IORING_SQ_TASKRUN))
		io_uring_get_events(&w->ring);

	io_uring_for_each_cqe(&w->ring, head, cqe) {
		struct dp_tag *tag = io_uring_cqe_get_data(cqe);

		n++;
		if (!tag)
			continue;
		if (tag->q) {
			struct dp_queue *q = tag->q;

			w->inflight--;
			tag->q->sqes--;
			q->idle = false;
			if (q->io_busy) {
				if (!now)
					now = pvio_now_ns();
				dp_io_done(q, now);
			}
			q->ops->complete(q, tag, cqe->res);
			continue;
		}
		if (tag->kind == WK_EVTCHN) {
			events(w);
			if (!(cqe->flags & IORING_CQE_F_MORE))
				arm_poll(w, pvio_evtchn_fd(w->plat), &evtchn_tag);
		} else if (tag->kind == WK_CMD) {
			take_commands(w);
			if (!(cqe->flags & IORING_CQE_F_MORE))
				arm_poll(w, w->cmd_efd, &cmd_tag);
		}
	}
	io_uring_cq_advance(&w->ring, n);
	return (int)n;
}

/*
 * A kick without work may be the peer closing its end (a frontend that
 * exited or died kicks us through the hypervisor): look, at most ten
 * times a second, and fail the device if nobody is there.
 */
static void check_peer(struct dp_queue *q, uint64_t now)
{
	struct pvio_evtchn_status st;
	unsigned int i;

	if (now - q->peer_checked_ns < 100000000u)
		return;
	q->peer_checked_ns = now;
	for (i = 0; i < q->nr_ports; i++)
		if (pvio_evtchn_status(q->w->plat, q->ports[i], &st) == 0 &&
		    st.state != PVIO_EVTCHN_INTERDOMAIN) {
			dp_queue_halt(q, -ENOTCONN,
				      "the frontend closed its event channel");
			return;
		}
}

/* A kick that found no work: count it; a storm gets its queue paused. */
static void spurious(struct dp_queue *q, uint64_t now)
{
	check_peer(q, now);
	STAT_ADD(q, spurious, 1);
	if (now - q->storm_window_ns > 1000000000u) {
		q->storm_window_ns = now;
		q->storm_spurious = 0;
	}
	if (++q->storm_spurious > STORM_SPURIOUS && !q->throttle_until_ns) {
		q->throttle_until_ns = now + STORM_PAUSE_NS;
		log_warn("%s: event storm from domain %u (%u kicks without work in a second): pausing its port",
			 q->dev->path, q->dev->fe, q->storm_spurious);
	}
}

void worker_progress(struct worker *w)
{
	struct dp_queue *q;

	io_uring_submit(&w->ring);
	if (reap(w))
		for (q = w->queues; q; q = q->next)
			q->ops->flush(q);
}

/* Remove stopped queues that have drained; tell the main thread. */
static void retire(struct worker *w)
{
	struct dp_queue **pp = &w->queues, *q;
	bool done = false;

	w->cancels_left = WORKER_CQ_ENTRIES / 8;
	while ((q = *pp)) {
		uint32_t st = __atomic_load_n(&q->state, __ATOMIC_ACQUIRE);

		if (st == DPQ_STOPPING) {
			q->ops->quiesce(q);
			/* not before every CQE naming it is reaped: the
			 * dataplane's own count may not cover them all */
			if (!q->ops->busy(q) && !q->sqes) {
				q->ops->flush(q);
				queue_files_release(w, q);
				ports_del(w, q);
				if (w->rr == q)
					w->rr = q->next;
				*pp = q->next;
				q->next = NULL;
				__atomic_store_n(&q->state, DPQ_STOPPED,
						 __ATOMIC_RELEASE);
				done = true;
				continue;
			}
		}
		pp = &q->next;
	}
	if (done) {
		uint64_t one = 1;

		if (write(w->bd->done_efd, &one, sizeof(one)) < 0)
			log_warn("worker %u: cannot signal: %s", w->idx,
				 strerror(errno));
		/* tests: the main thread frees the queues meanwhile */
		if (w->test_retire_delay_us)
			usleep(w->test_retire_delay_us);
	}
}

/* One queue's turn in a pass. */
static int serve(struct worker *w, struct dp_queue *q, unsigned int budget,
		 uint64_t *now)
{
	bool was_kicked = q->kicked;
	int n;

	if (q->halted) {
		if (q->ops->halted)
			q->ops->halted(q);
		return 0;
	}
	if (q->throttle_until_ns)
		return 0;
	/* idle and nothing happened to it: its ring has nothing either (the
	 * guest notifies past the event we armed), so not even a look: a
	 * wake-up for one of 512 queues no longer walks all their rings */
	if (q->idle && !was_kicked)
		return 0;
	q->idle = false;
	q->budget = budget;
	__atomic_store_n(&w->cur_q, q, __ATOMIC_RELEASE);
	n = q->ops->process(q);
	__atomic_store_n(&w->cur_q, NULL, __ATOMIC_RELEASE);
	if (n <= 0 && was_kicked && !q->limit_until_ns) {
		if (!*now)
			*now = pvio_now_ns();
		spurious(q, *now);
	}
	if (was_kicked) {
		unsigned int i;

		q->kicked = false;
		/* acknowledged after draining (docs/protocol.md rule 6) */
		for (i = 0; i < q->nr_ports; i++)
			pvio_evtchn_unmask(w->plat, q->ports[i]);
	}
	return n > 0 ? n : 0;
}

/*
 * Every queue's turn, fairly: while several queues are busy each takes at
 * most WORKER_QUANTUM requests per pass (the rest waits in its ring for
 * the next pass, nothing is lost), and each pass starts one queue further
 * along, so no queue is always first or always last behind the others.
 */
static int serve_queues(struct worker *w)
{
	unsigned int budget = w->busy_queues > 1 ? WORKER_QUANTUM : WORKER_BUDGET;
	struct dp_queue *start = w->rr ? w->rr : w->queues, *q;
	unsigned int busy = 0;
	uint64_t now = 0;
	int work = 0, n;

	for (q = start; q; q = q->next) {
		n = serve(w, q, budget, &now);
		busy += n > 0;
		work += n;
	}
	for (q = w->queues; q && q != start; q = q->next) {
		n = serve(w, q, budget, &now);
		busy += n > 0;
		work += n;
	}
	w->busy_queues = busy;
	w->rr = start ? start->next : NULL;
	return work;
}

/*
 * Spin when idle only for a queue whose I/O completes nearby (a file):
 * spinning for remote targets' queues (dp_queue.no_spin) took the CPU
 * their server needed (pvio-bench blk --target, docs/benchmarks.md).
 */
static bool worker_spins(const struct worker *w)
{
	const struct dp_queue *q;

	for (q = w->queues; q; q = q->next)
		if (!q->no_spin)
			return true;
	return false;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct pvio_spin spin;
	struct dp_queue *q;
	char name[16];
	int rc;

	snprintf(name, sizeof(name), "pvio-w%u", w->idx);
	pthread_setname_np(pthread_self(), name);
	rc = ring_init(w);
	if (!rc && !w->bd->o.no_confine)
		confine_worker();
	pthread_mutex_lock(&w->lock);
	w->init_rc = rc ? rc : 1;
	pthread_cond_signal(&w->init_cond);
	pthread_mutex_unlock(&w->lock);
	if (rc)
		return NULL;
	pvio_spin_init(&spin, w->spin_ns);
	arm_poll(w, pvio_evtchn_fd(w->plat), &evtchn_tag);
	arm_poll(w, w->cmd_efd, &cmd_tag);
	io_uring_submit(&w->ring);
	take_commands(w);

	for (;;) {
		int work = 0;
		bool exiting;

		__atomic_store_n(&w->beat_ns, pvio_now_ns(), __ATOMIC_RELAXED);
		work += reap(w);
		w->in_pass = true;
		work += serve_queues(w);
		io_uring_submit(&w->ring);
		/* an idle queue was flushed before it went idle, and nothing
		 * has happened to it since */
		for (q = w->queues; q; q = q->next)
			if (!q->idle)
				q->ops->flush(q);
		send_owed_notifications(w);
		retire(w);

		exiting = __atomic_load_n(&w->exit, __ATOMIC_ACQUIRE);
		if (exiting) {
			for (q = w->queues; q; q = q->next)
				__atomic_store_n(&q->state, DPQ_STOPPING,
						 __ATOMIC_RELEASE);
			if (!w->queues && !w->to_start)
				break;
			/* SIGTERM's bound passed: what never completes stays
			 * with the kernel, the process exits */
			if (__atomic_load_n(&w->abandon, __ATOMIC_ACQUIRE))
				break;
		}
		w->loops++;
		if (work) {
			pvio_spin_reset(&spin);
			continue;
		}
		/* throttled queues are looked at again once their pause ends */
		for (q = w->queues; q; q = q->next)
			if (q->throttle_until_ns &&
			    pvio_now_ns() >= q->throttle_until_ns) {
				q->throttle_until_ns = 0;
				q->kicked = true;
				work = 1;
			}
		if (work)
			continue;
		/* each round of this spin is a whole pass: timed per round
		 * (with 512 idle queues, 128 untimed rounds took a
		 * millisecond of a 50 us budget) */
		if (w->spin_ns && (spin.iter || worker_spins(w)) &&
		    pvio_spin_continue_timed(&spin)) {
			/* I/O punted to io-wq may need this CPU: let it run */
			if (w->inflight)
				sched_yield();
			continue;
		}
		for (q = w->queues; q; q = q->next) {
			if (q->halted || (q->idle && !q->kicked))
				continue;
			/* false also when a completion or a timer is what
			 * it waits for: either makes it not idle again */
			if (q->ops->final_check(q))
				work = 1;
			else
				q->idle = true;
		}
		if (work)
			continue;
		w->sleeps++;
		{
			/* a paused queue or a queue's timer bounds the sleep */
			uint64_t wake = 0, t;
			struct io_uring_cqe *cqe;

			for (q = w->queues; q; q = q->next) {
				t = q->throttle_until_ns;
				if (q->timer_ns && (!t || q->timer_ns < t))
					t = q->timer_ns;
				if (q->limit_until_ns && (!t || q->limit_until_ns < t))
					t = q->limit_until_ns;
				if (t && (!wake || t < wake))
					wake = t;
			}
			if (wake) {
				uint64_t t0 = pvio_now_ns();
				uint64_t d = wake > t0 ? wake - t0 : 0;
				struct __kernel_timespec ts = {
					.tv_sec = (long long)(d / 1000000000u),
					.tv_nsec = (long long)(d % 1000000000u),
				};

				__atomic_store_n(&w->asleep, true, __ATOMIC_RELAXED);
				io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1,
								 &ts, NULL);
				__atomic_store_n(&w->asleep, false, __ATOMIC_RELAXED);
				for (q = w->queues; q; q = q->next)
					if ((q->timer_ns && pvio_now_ns() >= q->timer_ns) ||
					    (q->limit_until_ns &&
					     pvio_now_ns() >= q->limit_until_ns))
						q->kicked = true;
			} else {
				__atomic_store_n(&w->asleep, true, __ATOMIC_RELAXED);
				io_uring_submit_and_wait(&w->ring, 1);
				__atomic_store_n(&w->asleep, false, __ATOMIC_RELAXED);
			}
		}
	}
	return NULL;
}

int worker_run(struct worker *w)
{
	int rc;

	pthread_cond_init(&w->init_cond, NULL);
	rc = -pthread_create(&w->thread, NULL, worker_main, w);
	if (rc)
		return rc;
	pthread_mutex_lock(&w->lock);
	while (!w->init_rc)
		pthread_cond_wait(&w->init_cond, &w->lock);
	rc = w->init_rc == 1 ? 0 : w->init_rc;
	pthread_mutex_unlock(&w->lock);
	if (rc)
		pthread_join(w->thread, NULL);
	return rc;
}

void worker_join(struct worker *w)
{
	pthread_join(w->thread, NULL);
	pvio_gcopy_destroy(&w->gcopy);
	close(w->cmd_efd);
	if (w->init_rc == 1)
		io_uring_queue_exit(&w->ring);
	pvio_platform_close(w->plat);
	pthread_mutex_destroy(&w->lock);
	free(w->by_port);
}
