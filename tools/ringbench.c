// SPDX-License-Identifier: MIT
/*
 * pvio-ringbench: request/response round trips over one shared ring.
 *
 * A frontend and a backend, on two pinned threads or (--sim) in two
 * processes attached to a sim world as domU and dom0 (ring pages granted,
 * notifications through event channels). blkif messages: 112-byte requests,
 * 16-byte responses.
 *
 * Two implementations run in the same process, in the same run, over the
 * same notification mechanism:
 *   pvio        include/pvio/ring.h, in poll, event or spin-then-sleep mode;
 *   xen_macros  the textbook use of Xen's ring.h macros as Linux 6.1's
 *               blkfront/blkback use them (RING_PUSH_*_AND_CHECK_NOTIFY,
 *               RING_FINAL_CHECK_FOR_*, RING_COPY_*, the *_OVERFLOW checks),
 *               in poll and event mode: the baseline.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pvio/platform.h>
#include <pvio/ring.h>

#include "guard.h"
#include "util.h"
#include "world.h"

/* Xen's macros need the includer's barriers: Linux's virt_* on x86. */
#define xen_mb()	pvio_mb()
#define xen_rmb()	__asm__ __volatile__("" ::: "memory")
#define xen_wmb()	__asm__ __volatile__("" ::: "memory")

#define OP_STOP		0xff	/* the frontend's last request */
#define OP_IDLE		0xfe	/* from here until OP_STOP the ring is idle */
#define MAX_BATCH	256u
#define BACK_CHUNK	8u	/* requests copied out at a time */

enum mode { MODE_POLL, MODE_EVENT, MODE_SPIN, NR_MODES };
enum impl { IMPL_PVIO, IMPL_XEN, NR_IMPLS };
static const char *const mode_name[] = { "poll", "event", "spin" };
static const char *const impl_name[] = { "pvio", "xen_macros" };

struct cfg {
	enum impl impl;
	enum mode mode;
	unsigned int pages;
	unsigned int batch;	/* 1: QD1 latency run */
	bool qd1;
	uint64_t duration_ns;
	uint64_t spin_ns;
	unsigned int wake_batch;	/* pvio event mode: responses per wake-up */
	unsigned int budget;	/* back end: requests answered per pass */
	uint64_t work_ns;	/* back end: service time per request */
	unsigned int qd1_samples;
	uint64_t idle_ns;	/* spin mode: measure an idle ring this long */
};

struct result {
	int error;
	uint64_t ops;
	uint64_t ns;
	uint64_t notifies;	/* sent by this side */
	uint64_t cpu_idle_ns;	/* CPU time used while the ring was idle */
	uint64_t idle_wall_ns;
	uint32_t nsamples;
	uint32_t samples[];	/* QD1 round trips, ns (front only) */
};

/* How a side tells the other one and waits for it. */
struct ends {
	struct pvio_sring *sring;
	unsigned int pages;
	/* threads */
	int efd_notify;		/* the peer's eventfd */
	int efd_wait;		/* ours */
	/* sim */
	struct pvio_platform *plat;
	int port;
};

static void notify(struct ends *e)
{
	uint64_t one = 1;

	if (e->plat) {
		pvio_evtchn_notify(e->plat, (pvio_port_t)e->port);
		return;
	}
	if (write(e->efd_notify, &one, sizeof(one)) < 0)
		abort();
}

/* Block until the peer notifies (or a stale notification is consumed). */
static void wait_peer(struct ends *e)
{
	uint64_t v;

	if (e->plat) {
		struct pollfd pfd = { .fd = pvio_evtchn_fd(e->plat),
				      .events = POLLIN };
		int port;

		for (;;) {
			while ((port = pvio_evtchn_pending(e->plat)) >= 0)
				if (port == e->port)
					return;
			if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
				return;
			if (pfd.revents == 0) {
				/* a peer that died kicks us; a silent one is
				 * checked once a second */
				struct pvio_evtchn_status st;

				if (pvio_evtchn_status(e->plat, e->port, &st) ||
				    st.state != PVIO_EVTCHN_INTERDOMAIN)
					return;
			}
		}
	}
	if (read(e->efd_wait, &v, sizeof(v)) < 0 && errno != EINTR)
		abort();
}

/* As wait_peer(), for at most @ms milliseconds. */
static void wait_peer_timeout(struct ends *e, int ms)
{
	struct pollfd pfd = { .events = POLLIN };
	uint64_t v;

	pfd.fd = e->plat ? pvio_evtchn_fd(e->plat) : e->efd_wait;
	if (poll(&pfd, 1, ms) <= 0)
		return;
	if (e->plat) {
		while (pvio_evtchn_pending(e->plat) >= 0)
			;
	} else if (read(e->efd_wait, &v, sizeof(v)) < 0) {
		abort();
	}
}

static bool peer_gone(struct ends *e)
{
	struct pvio_evtchn_status st;

	return e->plat && (pvio_evtchn_status(e->plat, e->port, &st) ||
			   st.state != PVIO_EVTCHN_INTERDOMAIN);
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void fill_req(struct blkif_request *q, uint64_t id)
{
	q->operation = BLKIF_OP_READ;
	q->nr_segments = 1;
	q->handle = 0;
	q->id = id;
	q->sector_number = id << 3;
	q->seg[0].gref = 8;
	q->seg[0].first_sect = 0;
	q->seg[0].last_sect = 7;
}

/*
 * What any blkback does with each request's private copy, in both
 * implementations: operation whitelist, segment count, sector ranges.
 */
/* A back end that does I/O takes time per request: spin it away. */
static inline void service_time(uint64_t ns)
{
	uint64_t until;

	if (!ns)
		return;
	until = pvio_now_ns() + ns;
	while (pvio_now_ns() < until)
		pvio_cpu_relax();
}

static inline int16_t check_req(const struct blkif_request *q)
{
	uint64_t sectors = 0;
	unsigned int i;

	switch (q->operation) {
	case BLKIF_OP_READ:
	case BLKIF_OP_WRITE:
		break;
	case OP_STOP:
	case OP_IDLE:
		return BLKIF_RSP_OKAY;
	default:
		return BLKIF_RSP_EOPNOTSUPP;
	}
	if (q->nr_segments == 0 ||
	    q->nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST)
		return BLKIF_RSP_ERROR;
	for (i = 0; i < q->nr_segments; i++) {
		if (q->seg[i].last_sect > 7 ||
		    q->seg[i].first_sect > q->seg[i].last_sect)
			return BLKIF_RSP_ERROR;
		sectors += q->seg[i].last_sect - q->seg[i].first_sect + 1u;
	}
	if (q->sector_number + sectors < q->sector_number)
		return BLKIF_RSP_ERROR;
	return BLKIF_RSP_OKAY;
}

/* ---- pvio ------------------------------------------------------------------ */

static void front_pvio(const struct cfg *c, struct ends *e, struct result *res)
{
	struct pvio_ring_front r;
	struct blkif_response rsp[MAX_BATCH];
	struct pvio_spin spin;
	uint64_t produced = 0, completed = 0, t0, deadline, t_req = 0;
	unsigned int b, i;
	bool stopping = false;
	int n;

	pvio_blkif_front_attach(&r, e->sring, e->pages);
	b = c->batch < r.nr_ents ? c->batch : r.nr_ents;
	pvio_spin_init(&spin, c->spin_ns);
	t0 = pvio_now_ns();
	deadline = t0 + c->duration_ns;
	for (;;) {
		while (!stopping && pvio_ring_front_free(&r) >= b &&
		       (!c->qd1 || produced == completed)) {
			for (i = 0; i < b; i++) {
				fill_req(pvio_blkif_front_req(&r), produced++);
				pvio_ring_front_req_commit(&r);
			}
			if (c->qd1)
				t_req = pvio_now_ns();
			if (pvio_ring_front_push(&r)) {
				notify(e);
				res->notifies++;
			}
			if (c->qd1 ? res->nsamples >= c->qd1_samples
				   : (produced & 1023) < b &&
					     pvio_now_ns() >= deadline)
				stopping = true;
		}
		n = pvio_blkif_front_consume(&r, rsp, MAX_BATCH);
		if (n < 0) {
			res->error = n;
			return;
		}
		if (n > 0) {
			if (rsp[0].id != completed || rsp[n - 1].status) {
				res->error = -EPROTO;
				return;
			}
			completed += (unsigned int)n;
			if (c->qd1 && res->nsamples < c->qd1_samples)
				res->samples[res->nsamples++] =
					(uint32_t)(pvio_now_ns() - t_req);
			pvio_spin_reset(&spin);
			continue;
		}
		if (stopping && completed == produced)
			break;
		if (c->mode == MODE_POLL ||
		    (c->mode == MODE_SPIN && pvio_spin_continue(&spin))) {
			if (c->mode == MODE_POLL)
				pvio_cpu_relax();
			if (c->mode == MODE_POLL && (completed & 0xffff) == 0 &&
			    peer_gone(e)) {
				res->error = -EPIPE;
				return;
			}
			continue;
		}
		/* Sleep until enough responses for a useful wake-up are in:
		 * one batch, or all that is in flight. */
		{
			uint32_t inflight = pvio_ring_front_inflight(&r);
			uint32_t ahead = c->wake_batch < inflight ? c->wake_batch
								  : inflight;

			if (!pvio_ring_front_final_check(&r, ahead ? ahead : 1)) {
				if (peer_gone(e)) {
					res->error = -EPIPE;
					return;
				}
				wait_peer(e);
			}
		}
	}
	res->ops = completed;
	res->ns = pvio_now_ns() - t0;

	if (c->mode == MODE_SPIN && c->idle_ns) {
		/* An idle ring: mark the start, then leave it alone. Both
		 * sides count their CPU time from the marker's round trip. */
		uint64_t cpu0, w0;

		fill_req(pvio_blkif_front_req(&r), produced);
		pvio_blkif_front_req(&r)->operation = OP_IDLE;
		pvio_ring_front_req_commit(&r);
		if (pvio_ring_front_push(&r))
			notify(e);
		while (pvio_blkif_front_consume(&r, rsp, MAX_BATCH) == 0)
			pvio_cpu_relax();
		cpu0 = thread_cpu_ns();
		w0 = pvio_now_ns();
		pvio_spin_reset(&spin);
		while (pvio_now_ns() - w0 < c->idle_ns) {
			if (pvio_spin_continue(&spin))
				continue;
			if (!pvio_ring_front_final_check(&r, 1))
				wait_peer_timeout(e, 50);
		}
		res->cpu_idle_ns = thread_cpu_ns() - cpu0;
		res->idle_wall_ns = pvio_now_ns() - w0;
	}
	/* tell the backend to stop */
	fill_req(pvio_blkif_front_req(&r), produced);
	pvio_blkif_front_req(&r)->operation = OP_STOP;
	pvio_ring_front_req_commit(&r);
	pvio_ring_front_push(&r);
	notify(e);
	for (;;) {
		n = pvio_blkif_front_consume(&r, rsp, MAX_BATCH);
		if (n != 0)
			break;
		if (!pvio_ring_front_final_check(&r, 1)) {
			if (peer_gone(e))
				break;
			wait_peer(e);
		}
	}
}

/* Answer up to @budget requests of one pass; return how many, or -EPROTO. */
static int back_pvio_pass(struct pvio_ring_back *r, unsigned int budget,
			  uint64_t work_ns, bool *stop, uint64_t *cpu0,
			  uint64_t *t0)
{
	struct blkif_request req[BACK_CHUNK];
	int n, i, total = 0;

	/* Taken a few at a time and answered while the slots are still in
	 * cache; published once, by the caller. */
	do {
		unsigned int left = budget - (unsigned int)total;

		n = pvio_blkif_back_consume(r, req,
					    left < BACK_CHUNK ? left : BACK_CHUNK);
		if (n < 0)
			return n;
		for (i = 0; i < n; i++) {
			struct blkif_response *p = pvio_blkif_back_rsp(r);

			/* field by field: no padding goes to shared memory */
			p->id = req[i].id;
			p->operation = req[i].operation;
			p->status = check_req(&req[i]);
			service_time(work_ns);
			pvio_ring_back_rsp_commit(r);
			if (req[i].operation == OP_STOP)
				*stop = true;
			if (req[i].operation == OP_IDLE) {
				*cpu0 = thread_cpu_ns();
				*t0 = pvio_now_ns();
			}
		}
		total += n;
	} while (n > 0 && (unsigned int)total < budget &&
		 !pvio_ring_back_pass_done(r));
	return total;
}

static void back_pvio(const struct cfg *c, struct ends *e, struct result *res)
{
	struct pvio_ring_back r;
	struct pvio_spin spin;
	uint64_t done = 0, cpu0 = 0, idle_t0 = 0;
	bool stop = false;
	int n;

	if (pvio_blkif_back_attach(&r, e->sring, e->pages)) {
		res->error = -EPROTO;
		return;
	}
	pvio_spin_init(&spin, c->spin_ns);
	while (!stop) {
		n = back_pvio_pass(&r, c->budget, c->work_ns, &stop, &cpu0,
				   &idle_t0);
		if (n < 0) {
			res->error = n;
			return;
		}
		if (n > 0) {
			done += (unsigned int)n;
			if (pvio_ring_back_push(&r)) {
				notify(e);
				res->notifies++;
			}
			pvio_spin_reset(&spin);
			continue;
		}
		if (c->mode == MODE_POLL) {
			pvio_cpu_relax();
			if ((done & 0xffff) == 0 && peer_gone(e))
				return;
			continue;
		}
		if (c->mode == MODE_SPIN && pvio_spin_continue(&spin))
			continue;
		if (!pvio_ring_back_final_check(&r, 1)) {
			if (peer_gone(e))
				return;
			wait_peer(e);
		}
	}
	res->ops = done;
	if (idle_t0) {
		res->cpu_idle_ns = thread_cpu_ns() - cpu0;
		res->idle_wall_ns = pvio_now_ns() - idle_t0;
	}
}

/* ---- the baseline: Xen's macros, as Linux 6.1 uses them ------------------ */

static void front_xen(const struct cfg *c, struct ends *e, struct result *res)
{
	blkif_front_ring_t r;
	struct blkif_response rsp;
	uint64_t produced = 0, completed = 0, t0, deadline, t_req = 0;
	unsigned int b, i;
	bool stopping = false;
	int notify_needed, more;

	FRONT_RING_INIT(&r, (blkif_sring_t *)e->sring, e->pages * 4096);
	b = c->batch < RING_SIZE(&r) ? c->batch : RING_SIZE(&r);
	t0 = pvio_now_ns();
	deadline = t0 + c->duration_ns;
	for (;;) {
		RING_IDX rp, k;

		while (!stopping && RING_FREE_REQUESTS(&r) >= b &&
		       (!c->qd1 || produced == completed)) {
			for (i = 0; i < b; i++) {
				fill_req(RING_GET_REQUEST(&r, r.req_prod_pvt),
					 produced++);
				r.req_prod_pvt++;
			}
			if (c->qd1)
				t_req = pvio_now_ns();
			RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(&r, notify_needed);
			if (notify_needed) {
				notify(e);
				res->notifies++;
			}
			if (c->qd1 ? res->nsamples >= c->qd1_samples
				   : (produced & 1023) < b &&
					     pvio_now_ns() >= deadline)
				stopping = true;
		}
		/* blkif_interrupt() */
		rp = __atomic_load_n(&r.sring->rsp_prod, __ATOMIC_RELAXED);
		xen_rmb();
		if (RING_RESPONSE_PROD_OVERFLOW(&r, rp)) {
			res->error = -EPROTO;
			return;
		}
		for (k = r.rsp_cons; k != rp; k++) {
			RING_COPY_RESPONSE(&r, k, &rsp);
			if (rsp.id != completed || rsp.status) {
				res->error = -EPROTO;
				return;
			}
			completed++;
		}
		if (rp != r.rsp_cons) {
			r.rsp_cons = rp;
			if (c->qd1 && res->nsamples < c->qd1_samples)
				res->samples[res->nsamples++] =
					(uint32_t)(pvio_now_ns() - t_req);
			continue;
		}
		if (stopping && completed == produced)
			break;
		if (c->mode == MODE_POLL) {
			pvio_cpu_relax();
			continue;
		}
		RING_FINAL_CHECK_FOR_RESPONSES(&r, more);
		if (!more) {
			if (peer_gone(e)) {
				res->error = -EPIPE;
				return;
			}
			wait_peer(e);
		}
	}
	res->ops = completed;
	res->ns = pvio_now_ns() - t0;
	fill_req(RING_GET_REQUEST(&r, r.req_prod_pvt), produced);
	RING_GET_REQUEST(&r, r.req_prod_pvt)->operation = OP_STOP;
	r.req_prod_pvt++;
	RING_PUSH_REQUESTS(&r);
	notify(e);
	for (;;) {
		if (RING_HAS_UNCONSUMED_RESPONSES(&r))
			break;
		RING_FINAL_CHECK_FOR_RESPONSES(&r, more);
		if (!more) {
			if (peer_gone(e))
				break;
			wait_peer(e);
		}
	}
}

static void back_xen(const struct cfg *c, struct ends *e, struct result *res)
{
	blkif_back_ring_t r;
	struct blkif_request req;
	uint64_t done = 0;
	bool stop = false;
	int notify_needed, more;

	BACK_RING_INIT(&r, (blkif_sring_t *)e->sring, e->pages * 4096);
	while (!stop) {
		/* __do_block_io_op(), with the same budget per pass */
		RING_IDX rc = r.req_cons, rp;
		unsigned int budget = c->budget;

		rp = __atomic_load_n(&r.sring->req_prod, __ATOMIC_RELAXED);
		xen_rmb();
		if (RING_REQUEST_PROD_OVERFLOW(&r, rp)) {
			res->error = -EPROTO;
			return;
		}
		while (rc != rp && budget--) {
			struct blkif_response *p;

			if (RING_REQUEST_CONS_OVERFLOW(&r, rc))
				break;
			RING_COPY_REQUEST(&r, rc, &req);
			r.req_cons = ++rc;
			p = RING_GET_RESPONSE(&r, r.rsp_prod_pvt);
			p->id = req.id;
			p->operation = req.operation;
			p->status = check_req(&req);
			service_time(c->work_ns);
			r.rsp_prod_pvt++;
			done++;
			if (req.operation == OP_STOP)
				stop = true;
		}
		if (r.rsp_prod_pvt != r.sring->rsp_prod) {
			RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(&r, notify_needed);
			if (notify_needed) {
				notify(e);
				res->notifies++;
			}
			continue;
		}
		if (c->mode == MODE_POLL) {
			pvio_cpu_relax();
			if ((done & 0xffff) == 0 && peer_gone(e))
				return;
			continue;
		}
		RING_FINAL_CHECK_FOR_REQUESTS(&r, more);
		if (!more) {
			if (peer_gone(e))
				return;
			wait_peer(e);
		}
	}
	res->ops = done;
}

static void run_front(const struct cfg *c, struct ends *e, struct result *r)
{
	if (c->impl == IMPL_PVIO)
		front_pvio(c, e, r);
	else
		front_xen(c, e, r);
}

static void run_back(const struct cfg *c, struct ends *e, struct result *r)
{
	if (c->impl == IMPL_PVIO)
		back_pvio(c, e, r);
	else
		back_xen(c, e, r);
}

/* ---- transports ------------------------------------------------------------- */

static int cpu_front = 0, cpu_back = 1;

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static size_t result_size(const struct cfg *c)
{
	return sizeof(struct result) +
	       (c->qd1 ? sizeof(uint32_t) * c->qd1_samples : 0);
}

struct thr {
	const struct cfg *c;
	struct ends e;
	struct result *res;
};

static void *back_thread(void *arg)
{
	struct thr *t = arg;

	pin(cpu_back);
	run_back(t->c, &t->e, t->res);
	return NULL;
}

static int run_threads(const struct cfg *c, struct result *fres,
		       struct result *bres)
{
	size_t len = (size_t)c->pages * PVIO_PAGE_SIZE;
	struct thr bt = { .c = c, .res = bres };
	struct ends fe = { 0 };
	struct pvio_ring_front init;
	pthread_t th;
	int f2b, b2f;
	void *ring;

	ring = mmap(NULL, len, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	f2b = eventfd(0, EFD_CLOEXEC);
	b2f = eventfd(0, EFD_CLOEXEC);
	if (ring == MAP_FAILED || f2b < 0 || b2f < 0)
		return -errno;
	pvio_ring_front_init(&init, ring, c->pages,
			     sizeof(union pvio_blkif_slot));
	fe.sring = bt.e.sring = ring;
	fe.pages = bt.e.pages = c->pages;
	fe.efd_notify = f2b;
	fe.efd_wait = b2f;
	bt.e.efd_notify = b2f;
	bt.e.efd_wait = f2b;
	pthread_create(&th, NULL, back_thread, &bt);
	pin(cpu_front);
	run_front(c, &fe, fres);
	pthread_join(th, NULL);
	munmap(ring, len);
	close(f2b);
	close(b2f);
	return fres->error ? fres->error : bres->error;
}

/* --sim: the frontend is domU 1, the backend dom0, each its own process. */
static const char *sim_dir;
static unsigned int sim_domu = 1;

struct setup_msg {
	int error;
	uint32_t port;
	uint32_t refs[PVIO_RING_MAX_PAGES];
};

static int read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		got += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len) == (ssize_t)len ? 0 : -EIO;
}

static void sim_front_proc(const struct cfg *c, int setup_w, int go_r,
			   int res_w)
{
	struct setup_msg m = { 0 };
	struct result *res = calloc(1, result_size(c));
	struct pvio_ring_front init;
	struct ends e = { 0 };
	char spec[PVIO_PLATFORM_SPEC_MAX];
	void *ring = NULL;
	char go;

	pin(cpu_front);
	snprintf(spec, sizeof(spec), "sim:%s", sim_dir);
	m.error = pvio_platform_open(&e.plat, spec, sim_domu,
				     PVIO_PLATFORM_CREATE);
	if (!m.error)
		m.error = pvio_gnt_share(e.plat, 0, c->pages, true, m.refs,
					 &ring);
	if (!m.error) {
		pvio_ring_front_init(&init, ring, c->pages,
				     sizeof(union pvio_blkif_slot));
		e.port = pvio_evtchn_alloc_unbound(e.plat, 0);
		if (e.port < 0)
			m.error = e.port;
		m.port = (uint32_t)e.port;
	}
	write_full(setup_w, &m, sizeof(m));
	if (m.error || read_full(go_r, &go, 1) || go != 'g')
		_exit(1);
	e.sring = ring;
	e.pages = c->pages;
	run_front(c, &e, res);
	write_full(res_w, res, result_size(c));
	pvio_platform_close(e.plat);
	_exit(0);
}

static void sim_back_proc(const struct cfg *c, int setup_r, int go_w,
			  int res_w)
{
	struct setup_msg m;
	struct result *res = calloc(1, result_size(c));
	struct ends e = { 0 };
	char spec[PVIO_PLATFORM_SPEC_MAX];
	void *ring = NULL;
	int rc;

	pin(cpu_back);
	snprintf(spec, sizeof(spec), "sim:%s", sim_dir);
	if (read_full(setup_r, &m, sizeof(m)) || m.error)
		_exit(1);
	rc = pvio_platform_open(&e.plat, spec, 0, 0);
	if (!rc)
		rc = pvio_gnt_map(e.plat, sim_domu, c->pages, m.refs, true,
				  &ring);
	if (!rc) {
		e.port = pvio_evtchn_bind(e.plat, sim_domu, m.port);
		rc = e.port < 0 ? e.port : 0;
	}
	if (rc) {
		fprintf(stderr, "pvio-ringbench: backend set-up: %s\n",
			strerror(-rc));
		_exit(1);
	}
	write_full(go_w, "g", 1);
	e.sring = ring;
	e.pages = c->pages;
	run_back(c, &e, res);
	pvio_gnt_unmap(e.plat, ring, c->pages);
	/* no samples: only the frontend measures latency */
	write_full(res_w, res, sizeof(*res));
	pvio_platform_close(e.plat);
	_exit(0);
}

static int run_sim(const struct cfg *c, struct result *fres,
		   struct result *bres)
{
	int setup[2], go[2], fr[2], br[2], st, rc = 0;
	pid_t fp, bp;

	/* a fresh domain per run: the last one may still be being reaped */
	sim_domu = sim_domu % 30000 + 1;
	if (pipe2(setup, O_CLOEXEC) || pipe2(go, O_CLOEXEC) ||
	    pipe2(fr, O_CLOEXEC) || pipe2(br, O_CLOEXEC))
		return -errno;
	fflush(NULL);
	fp = pvio_guard_fork();
	if (fp == 0) {
		/* only our ends, so that a dead peer reads as EOF */
		close(setup[0]);
		close(go[1]);
		close(fr[0]);
		close(br[0]);
		close(br[1]);
		sim_front_proc(c, setup[1], go[0], fr[1]);
	}
	bp = pvio_guard_fork();
	if (bp == 0) {
		close(setup[1]);
		close(go[0]);
		close(fr[0]);
		close(fr[1]);
		close(br[0]);
		sim_back_proc(c, setup[0], go[1], br[1]);
	}
	close(setup[0]);
	close(setup[1]);
	close(go[0]);
	close(go[1]);
	close(fr[1]);
	close(br[1]);
	if (read_full(fr[0], fres, result_size(c)))
		rc = -EIO;
	if (read_full(br[0], bres, sizeof(*bres)))
		rc = -EIO;
	if (rc) {	/* one side failed: do not wait for the other forever */
		kill(fp, SIGKILL);
		kill(bp, SIGKILL);
	}
	waitpid(fp, &st, 0);
	waitpid(bp, &st, 0);
	close(fr[0]);
	close(br[0]);
	if (rc)
		return rc;
	return fres->error ? fres->error : bres->error;
}

static bool use_sim;

static int run_one(const struct cfg *c, struct result **fres,
		   struct result **bres)
{
	*fres = calloc(1, result_size(c));
	*bres = calloc(1, result_size(c));
	if (!*fres || !*bres)
		return -ENOMEM;
	return use_sim ? run_sim(c, *fres, *bres) : run_threads(c, *fres, *bres);
}

/* ---- the sweep ----------------------------------------------------------------- */

struct stat3 {
	double min, med, max;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static struct stat3 stat3(double *v, unsigned int n)
{
	struct stat3 s;

	qsort(v, n, sizeof(*v), cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}

struct point {
	bool valid;
	double ratio;		/* pvio/baseline, median of paired runs */
	struct stat3 mops;
	double notif_per_op;
	double qd1_p50_us, qd1_p99_us;
	double idle_cpu_pct_front, idle_cpu_pct_back;
};

static unsigned int runs = 3;

static int run_tput(struct cfg c, double *mops, double *nper, struct point *pt)
{
	struct result *f, *b;
	int rc;

	c.qd1 = false;
	rc = run_one(&c, &f, &b);
	if (rc) {
		fprintf(stderr, "pvio-ringbench: %s %s pages=%u batch=%u: %s\n",
			impl_name[c.impl], mode_name[c.mode], c.pages, c.batch,
			strerror(-rc));
	} else {
		*mops = (double)f->ops / ((double)f->ns / 1e3);
		*nper = (double)(f->notifies + b->notifies) / (double)f->ops;
		if (c.idle_ns && f->idle_wall_ns) {
			pt->idle_cpu_pct_front = 100.0 * (double)f->cpu_idle_ns /
						 (double)f->idle_wall_ns;
			pt->idle_cpu_pct_back = b->idle_wall_ns ?
				100.0 * (double)b->cpu_idle_ns / (double)b->idle_wall_ns : 0;
		}
	}
	free(f);
	free(b);
	return rc;
}

/*
 * Throughput of pvio and of the baseline for one (mode, pages, batch). The
 * runs alternate (pvio, baseline, pvio, ...) so that a slow spell of this
 * shared machine hits both; the ratio is the median of the pairs' ratios.
 */
static int measure_tput(struct cfg c, struct point *pp, struct point *px,
			double *ratio)
{
	double mp[32], mx[32], rt[32], np = 0, nx = 0, n;
	bool base = c.mode != MODE_SPIN;
	unsigned int i;
	int rc;

	for (i = 0; i < runs; i++) {
		c.impl = IMPL_PVIO;
		rc = run_tput(c, &mp[i], &n, pp);
		if (rc)
			return rc;
		np += n;
		c.idle_ns = 0;	/* once is enough */
		if (!base)
			continue;
		c.impl = IMPL_XEN;
		rc = run_tput(c, &mx[i], &n, px);
		if (rc)
			return rc;
		nx += n;
		rt[i] = mp[i] / mx[i];
	}
	pp->mops = stat3(mp, runs);
	pp->notif_per_op = np / runs;
	pp->valid = true;
	if (base) {
		px->mops = stat3(mx, runs);
		px->notif_per_op = nx / runs;
		px->valid = true;
		*ratio = stat3(rt, runs).med;
	}
	return 0;
}

static int measure_qd1(struct cfg c, struct point *pt)
{
	struct result *f, *b;
	int rc;

	c.qd1 = true;
	c.batch = 1;
	c.idle_ns = 0;
	rc = run_one(&c, &f, &b);
	if (rc)
		fprintf(stderr, "pvio-ringbench: %s %s pages=%u QD1: %s\n",
			impl_name[c.impl], mode_name[c.mode], c.pages,
			strerror(-rc));
	if (!rc && f->nsamples > 0) {
		qsort(f->samples, f->nsamples, sizeof(uint32_t), cmp_u32);
		pt->qd1_p50_us = f->samples[f->nsamples / 2] / 1e3;
		pt->qd1_p99_us = f->samples[(uint32_t)(f->nsamples * 0.99)] / 1e3;
	}
	free(f);
	free(b);
	return rc;
}

static int parse_list(const char *s, unsigned int min, unsigned int max,
		      unsigned int *out, unsigned int cap)
{
	char buf[256], *tok, *save = NULL;
	unsigned int n = 0;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -EINVAL;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		if (n == cap || pvio_parse_uint(tok, min, max, &out[n]))
			return -EINVAL;
		n++;
	}
	return n ? (int)n : -EINVAL;
}

static int parse_modes(const char *s, unsigned int *out)
{
	char buf[64], *tok, *save = NULL;
	unsigned int n = 0, m;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return -EINVAL;
	for (tok = strtok_r(buf, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (m = 0; m < NR_MODES; m++)
			if (strcmp(tok, mode_name[m]) == 0)
				break;
		if (m == NR_MODES || n == NR_MODES)
			return -EINVAL;
		out[n++] = m;
	}
	return n ? (int)n : -EINVAL;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: pvio-ringbench [options]\n"
"Round trips over one shared blkif ring: pvio against Xen's ring.h macros\n"
"(the baseline), on the same notification mechanism, in the same run.\n\n"
"  -m, --mode LIST     poll,event,spin (default: all)\n"
"  -b, --batch LIST    requests per push, 1..256 (default: 1,8,32)\n"
"  -p, --pages LIST    ring pages, 1..16 (default: 1,4)\n"
"  -t, --time MS       per run (default: 300)\n"
"  -r, --runs N        runs per configuration; median, min, max (default: 3)\n"
"      --spin-us N     spin budget before sleeping (default: 50)\n"
"      --wake-batch N  pvio event mode: wake the frontend once N responses\n"
"                      (or all in flight) are in (default: 1, as ring.h)\n"
"      --budget N      back end: requests answered per pass (default: batch)\n"
"      --work-ns N     back end: service time per request, as if doing I/O\n"
"      --qd1-samples N (default: 20000; event mode: 2000)\n"
"      --idle-ms N     spin mode: measure an idle ring's CPU (default: 500)\n"
"      --sim[=DIR]     two processes in a sim world (a private one unless DIR)\n"
"      --cpus F,B      CPUs for frontend and backend (default: 0,1)\n"
"      --json          JSON on stdout instead of the table\n"
"      --version\n"
"  -h, --help\n");
}

static void print_json_point(const char *name, const struct point *p)
{
	if (!p->valid) {
		printf("\"%s\": null", name);
		return;
	}
	printf("\"%s\": {\"mops\": %.3f, \"mops_min\": %.3f, \"mops_max\": %.3f, "
	       "\"notifications_per_op\": %.5f, \"qd1_p50_us\": %.3f, "
	       "\"qd1_p99_us\": %.3f",
	       name, p->mops.med, p->mops.min, p->mops.max, p->notif_per_op,
	       p->qd1_p50_us, p->qd1_p99_us);
	if (p->idle_cpu_pct_front || p->idle_cpu_pct_back)
		printf(", \"idle_cpu_pct_front\": %.3f, \"idle_cpu_pct_back\": %.3f",
		       p->idle_cpu_pct_front, p->idle_cpu_pct_back);
	printf("}");
}

int main(int argc, char **argv)
{
	enum { O_SPIN = 256, O_WAKE, O_QD1, O_IDLE, O_SIM, O_CPUS, O_JSON,
	       O_BUDGET, O_WORK };
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, 'm' },
		{ "batch", required_argument, NULL, 'b' },
		{ "pages", required_argument, NULL, 'p' },
		{ "time", required_argument, NULL, 't' },
		{ "runs", required_argument, NULL, 'r' },
		{ "spin-us", required_argument, NULL, O_SPIN },
		{ "wake-batch", required_argument, NULL, O_WAKE },
		{ "budget", required_argument, NULL, O_BUDGET },
		{ "work-ns", required_argument, NULL, O_WORK },
		{ "qd1-samples", required_argument, NULL, O_QD1 },
		{ "idle-ms", required_argument, NULL, O_IDLE },
		{ "sim", optional_argument, NULL, O_SIM },
		{ "cpus", required_argument, NULL, O_CPUS },
		{ "json", no_argument, NULL, O_JSON },
		PVIO_VERSION_OPTION,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned int modes[NR_MODES] = { MODE_POLL, MODE_EVENT, MODE_SPIN };
	unsigned int batches[16] = { 1, 8, 32 }, pages[16] = { 1, 4 };
	unsigned int nmodes = 3, nbatch = 3, npages = 2, ms = 300, spin_us = 50;
	unsigned int wake = 0, qd1 = 20000, idle_ms = 500, cpus[2], budgets = 0;
	unsigned int work_ns = 0;
	char world[4096] = "";
	bool json = false, own_world = false;
	struct point *pts;
	unsigned int mi, pi, bi, im;
	int c, rc = 0;

	opterr = 0;	/* our own one-line messages */
	while ((c = getopt_long(argc, argv, ":m:b:p:t:r:h", opts, NULL)) != -1) {
		switch (c) {
		case PVIO_OPT_VERSION:
			pvio_version("pvio-ringbench");
		case 'm':
			if ((rc = parse_modes(optarg, modes)) < 0)
				pvio_usage_error("pvio-ringbench", "bad --mode '%s'", optarg);
			nmodes = (unsigned int)rc;
			break;
		case 'b':
			if ((rc = parse_list(optarg, 1, MAX_BATCH, batches, 16)) < 0)
				pvio_usage_error("pvio-ringbench", "bad --batch '%s' (1..256)", optarg);
			nbatch = (unsigned int)rc;
			break;
		case 'p':
			if ((rc = parse_list(optarg, 1, PVIO_RING_MAX_PAGES, pages, 16)) < 0)
				pvio_usage_error("pvio-ringbench", "bad --pages '%s' (1..16)", optarg);
			npages = (unsigned int)rc;
			break;
		case 't':
			if (pvio_parse_uint(optarg, 10, 600000, &ms))
				pvio_usage_error("pvio-ringbench", "bad --time '%s' (10..600000 ms)", optarg);
			break;
		case 'r':
			if (pvio_parse_uint(optarg, 1, 31, &runs))
				pvio_usage_error("pvio-ringbench", "bad --runs '%s' (1..31)", optarg);
			break;
		case O_SPIN:
			if (pvio_parse_uint(optarg, 0, 10000000, &spin_us))
				pvio_usage_error("pvio-ringbench", "bad --spin-us '%s'", optarg);
			break;
		case O_WAKE:
			if (pvio_parse_uint(optarg, 1, 4096, &wake))
				pvio_usage_error("pvio-ringbench", "bad --wake-batch '%s'", optarg);
			break;
		case O_BUDGET:
			if (pvio_parse_uint(optarg, 1, 4096, &budgets))
				pvio_usage_error("pvio-ringbench", "bad --budget '%s'", optarg);
			break;
		case O_WORK:
			if (pvio_parse_uint(optarg, 0, 1000000, &work_ns))
				pvio_usage_error("pvio-ringbench", "bad --work-ns '%s' (0..1000000)", optarg);
			break;
		case O_QD1:
			if (pvio_parse_uint(optarg, 1, 10000000, &qd1))
				pvio_usage_error("pvio-ringbench", "bad --qd1-samples '%s'", optarg);
			break;
		case O_IDLE:
			if (pvio_parse_uint(optarg, 0, 600000, &idle_ms))
				pvio_usage_error("pvio-ringbench", "bad --idle-ms '%s'", optarg);
			break;
		case O_SIM:
			use_sim = true;
			if (optarg)
				snprintf(world, sizeof(world), "%s", optarg);
			break;
		case O_CPUS:
			if (parse_list(optarg, 0, CPU_SETSIZE - 1, cpus, 2) != 2)
				pvio_usage_error("pvio-ringbench", "bad --cpus '%s' (F,B)", optarg);
			cpu_front = (int)cpus[0];
			cpu_back = (int)cpus[1];
			break;
		case O_JSON:
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			pvio_usage_bad_option("pvio-ringbench", c, argv);
		}
	}
	if (optind != argc)
		pvio_usage_error("pvio-ringbench", "unexpected argument '%s'", argv[optind]);
	pvio_log_init("pvio-ringbench", PVIO_LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	rc = 0;

	if (use_sim) {
		if (!world[0]) {
			snprintf(world, sizeof(world), "%s/pvio-ringbench.XXXXXX",
				 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
			/* a killed run's world goes too */
			rc = pvio_guard_start("pvio-ringbench");
			if (rc) {
				fprintf(stderr, "pvio-ringbench: cannot fork: %s\n",
					strerror(-rc));
				return 1;
			}
			rc = pvio_guard_mkdtemp(world);
			if (rc) {
				fprintf(stderr, "pvio-ringbench: mkdtemp: %s\n", strerror(-rc));
				return 1;
			}
			rc = pvio_world_start(world, NULL);
			if (rc) {
				fprintf(stderr, "pvio-ringbench: cannot start a sim world (%s): %s\n",
					pvio_world_simhv_path(), strerror(-rc));
				pvio_world_remove(world);
				return 1;
			}
			own_world = true;
		}
		sim_dir = world;
	}

	pts = calloc((size_t)NR_IMPLS * NR_MODES * 16 * 16, sizeof(*pts));
#define PT(i, m, p, b) pts[(((i) * NR_MODES + (m)) * 16 + (p)) * 16 + (b)]
	for (pi = 0; pi < npages && !rc; pi++) {
		for (mi = 0; mi < nmodes && !rc; mi++) {
			enum mode m = modes[mi];
			struct cfg cf = {
				.mode = m, .pages = pages[pi],
				.duration_ns = (uint64_t)ms * 1000000u,
				.spin_ns = (uint64_t)spin_us * 1000u,
				.budget = 1, .qd1_samples = m == MODE_EVENT ? (qd1 < 2000 ? qd1 : 2000) : qd1,
			};
			struct point q1[NR_IMPLS] = { { 0 } };

			for (im = 0; im < NR_IMPLS && !rc; im++) {
				if (im == IMPL_XEN && m == MODE_SPIN)
					continue;	/* no such thing */
				cf.impl = im;
				rc = measure_qd1(cf, &q1[im]);
			}
			for (bi = 0; bi < nbatch && !rc; bi++) {
				struct point *pp = &PT(IMPL_PVIO, m, pi, bi);
				struct point *px = &PT(IMPL_XEN, m, pi, bi);

				cf.batch = batches[bi];
				/* the back end answers one batch per pass
				 * (a budget per notification,
				 * docs/protocol.md rule 3) */
				cf.budget = budgets ? budgets : batches[bi];
				cf.work_ns = work_ns;
				cf.wake_batch = wake ? wake : 1;
				cf.idle_ns = (m == MODE_SPIN && bi == 0) ?
					(uint64_t)idle_ms * 1000000u : 0;
				rc = measure_tput(cf, pp, px, &pp->ratio);
				for (im = 0; im < NR_IMPLS; im++) {
					struct point *p = &PT(im, m, pi, bi);

					p->qd1_p50_us = q1[im].qd1_p50_us;
					p->qd1_p99_us = q1[im].qd1_p99_us;
				}
			}
		}
	}
	if (own_world) {
		pvio_world_stop(world, 5000);
		pvio_world_remove(world);
	}
	if (rc)
		goto out;

	if (json) {
		bool first = true;

		printf("{\"benchmark\": \"pvio-ringbench\", \"transport\": \"%s\", "
		       "\"message\": \"blkif\", \"time_ms\": %u, \"runs\": %u, "
		       "\"spin_us\": %u, \"configs\": [",
		       use_sim ? "sim" : "threads", ms, runs, spin_us);
		for (pi = 0; pi < npages; pi++)
			for (mi = 0; mi < nmodes; mi++)
				for (bi = 0; bi < nbatch; bi++) {
					enum mode m = modes[mi];
					struct point *pp = &PT(IMPL_PVIO, m, pi, bi);
					struct point *px = &PT(IMPL_XEN, m, pi, bi);

					printf("%s\n  {\"mode\": \"%s\", \"pages\": %u, \"batch\": %u, ",
					       first ? "" : ",", mode_name[m], pages[pi], batches[bi]);
					first = false;
					print_json_point("pvio", pp);
					printf(", ");
					print_json_point("xen_macros", px);
					if (px->valid)
						printf(", \"ratio_mops\": %.3f, \"ratio_notifications\": %.3f",
						       pp->ratio,
						       px->notif_per_op > 0 ? pp->notif_per_op / px->notif_per_op : 0.0);
					else {
						/* spin: against pvio poll and the baseline's
						 * event mode, same ring and batch */
						struct point *pp0 = &PT(IMPL_PVIO, MODE_POLL, pi, bi);
						struct point *pxe = &PT(IMPL_XEN, MODE_EVENT, pi, bi);

						if (pp0->valid)
							printf(", \"ratio_vs_pvio_poll\": %.3f",
							       pp->mops.med / pp0->mops.med);
						if (pxe->valid)
							printf(", \"ratio_vs_xen_macros_event\": %.1f",
							       pp->mops.med / pxe->mops.med);
					}
					printf("}");
				}
		printf("\n]}\n");
		goto out;
	}

	printf("pvio-ringbench: %s, blkif ring, %u ms x %u runs per point, "
	       "M round trips/s median [min..max]\n",
	       use_sim ? "two processes in a sim world" : "two pinned threads", ms, runs);
	printf("%-5s %5s %5s | %-22s %8s %13s | %-22s %8s %13s | %6s\n", "mode",
	       "pages", "batch", "pvio", "notif/op", "QD1 p50/p99us", "xen_macros",
	       "notif/op", "QD1 p50/p99us", "ratio");
	for (pi = 0; pi < npages; pi++)
		for (mi = 0; mi < nmodes; mi++)
			for (bi = 0; bi < nbatch; bi++) {
				enum mode m = modes[mi];
				struct point *pp = &PT(IMPL_PVIO, m, pi, bi);
				struct point *px = &PT(IMPL_XEN, m, pi, bi);
				struct point *pp0 = &PT(IMPL_PVIO, MODE_POLL, pi, bi);
				char a[64], b[64] = "-", lp[32], lx[32] = "-", r[16] = "-";
				char nx[16] = "-";

				snprintf(a, sizeof(a), "%.2f [%.2f..%.2f]", pp->mops.med,
					 pp->mops.min, pp->mops.max);
				snprintf(lp, sizeof(lp), "%.2f/%.2f", pp->qd1_p50_us,
					 pp->qd1_p99_us);
				if (px->valid) {
					snprintf(b, sizeof(b), "%.2f [%.2f..%.2f]", px->mops.med,
						 px->mops.min, px->mops.max);
					snprintf(nx, sizeof(nx), "%.5f", px->notif_per_op);
					snprintf(lx, sizeof(lx), "%.2f/%.2f", px->qd1_p50_us,
						 px->qd1_p99_us);
					snprintf(r, sizeof(r), "%.2fx", pp->ratio);
				} else if (pp0->valid) {
					snprintf(r, sizeof(r), "%.2fxP", pp->mops.med / pp0->mops.med);
				}
				printf("%-5s %5u %5u | %-22s %8.5f %13s | %-22s %8s %13s | %6s\n",
				       mode_name[m], pages[pi], batches[bi], a, pp->notif_per_op,
				       lp, b, nx, lx, r);
				if (m == MODE_SPIN && bi == 0 && idle_ms)
					printf("      idle ring (spin mode): frontend %.3f%%, backend %.3f%% of a core\n",
					       pp->idle_cpu_pct_front, pp->idle_cpu_pct_back);
			}
	printf("ratio: pvio/xen_macros, median of paired runs; xP: against pvio poll, same ring and batch.\n");
out:
	free(pts);	/* a sanitizer build's leak check runs at exit */
	return rc ? 1 : 0;
}
