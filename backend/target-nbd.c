// SPDX-License-Identifier: MIT
/*
 * The NBD target: an export of nbdkit, qemu-nbd (qcow2, vmdk, ...) or any
 * NBD server, through libnbd's asynchronous calls, driven from the worker
 * loop: the connection's socket is polled by the worker's io_uring (one
 * one-shot poll per direction libnbd asks for), readiness goes back to
 * libnbd (nbd_aio_notify_read/write), which runs our completion callbacks
 * on the worker thread. No libnbd call here waits on the network.
 *
 * params: nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH (the
 * NBD URI specification, as qemu and nbdinfo take them).
 *
 * Failures: a connection that dies fails what it had in flight; a request
 * that waited --remote-timeout seconds (in flight or for a connection) is
 * answered with an error. While the export is unreachable the queue
 * reconnects (once a second at most); requests wait for it, each at most
 * the timeout.
 *
 * Fencing: NBD has no lock protocol. A writable NBD vbd takes an OFD lock
 * on a file named after the URI in --lock-dir for as long as the device
 * exists: a second writer to the same URI on this host (another device of
 * this daemon, or another pvio-backd) is refused. Writers on other hosts,
 * or through a different URI for the same export, are not fenced here:
 * that is the server's part (qemu-nbd locks its image against a second
 * qemu-nbd; nbdkit does not).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libnbd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "blk.h"
#include "target-remote.h"

enum { NT_READ, NT_WRITE };	/* the two poll tags */

/*
 * An NBD command's length is 32 bits (without extended headers, which
 * libnbd 1.14 lacks), a blkif discard's 64: a longer discard is sent as
 * parts of the most whole discard extents a command holds (Linux's
 * largest, 4 GiB less one extent, is one), one after the other, each
 * with the timeout of its own, answered once the last is done.
 */
static uint32_t trim_max(const struct vbd *v)
{
	uint32_t g = v->discard_granularity ? v->discard_granularity : 512;

	return UINT32_MAX / g * g;
}

struct nbd_cmd {
	struct blk_req *r;
	struct nbd_tgt *t;
	void *stage;		/* contiguous buffer of a multi-segment request */
	uint64_t deadline_ns;
	uint64_t trimmed;	/* a discard's bytes done (trim_max() parts) */
	uint32_t part;		/* the part in flight */
	bool live;		/* libnbd holds it; its callback answers it */
	struct nbd_cmd *prev, *next;	/* in flight or waiting, oldest first */
};

struct nbd_tgt {
	struct nbd_handle *h;	/* NULL: no connection */
	struct blk_queue *q;	/* the one queue (max_queues = 1) */
	struct remote_lock lock;
	uint64_t timeout_ns;
	uint64_t size;
	/* worker state */
	struct dp_tag tags[2];
	bool armed[2], cancel_sent[2];
	int armed_fd;
	bool connecting;
	bool stopping;		/* the queue quiesces: no new polls */
	bool tls;		/* nbds: libnbd may read buffered records */
	/* read notifications given to libnbd, and their count when the
	 * read poll was armed: equal, nothing has read the socket since */
	uint64_t reads, reads_at_arm;
	uint64_t connect_deadline_ns, next_try_ns;
	struct nbd_cmd *cmds;	/* one per request slot */
	char *stage;		/* one max-sized buffer per slot (reserved) */
	size_t stage_bytes;	/* per slot */
	uint32_t nr_cmds;
	struct nbd_cmd *head, *tail;	/* in flight: oldest first */
	struct nbd_cmd *whead, *wtail;	/* waiting for a connection */
	uint64_t reconnects;
	bool test_stale;	/* PVIO_TEST_NBD_STALE_READ: see tn_poll */
	bool test_nomem;	/* PVIO_TEST_NBD_QUEUE_NOMEM: queue_start fails */
	uint64_t test_stale_hits;
	bool test_stale_done;
};

static struct nbd_tgt *T(const struct vbd *v)
{
	return v->tpriv;
}

/* ---- main thread: open, close --------------------------------------------------- */

static int uri_ok(const char *p)
{
	return !strncmp(p, "nbd://", 6) || !strncmp(p, "nbd+unix://", 11) ||
	       !strncmp(p, "nbds://", 7) || !strncmp(p, "nbds+unix://", 12);
}

/*
 * Connect and negotiate within @timeout_ns without blocking anyone
 * forever: libnbd's own blocking connect has no deadline.
 */
static int connect_bounded(struct nbd_handle *h, const char *uri,
			   uint64_t timeout_ns, char *why, size_t len)
{
	uint64_t end = pvio_now_ns() + timeout_ns;

	if (nbd_aio_connect_uri(h, uri) < 0) {
		snprintf(why, len, "cannot connect to %.300s: %s", uri,
			 nbd_get_error());
		return -(nbd_get_errno() ? nbd_get_errno() : EIO);
	}
	while (nbd_aio_is_connecting(h)) {
		unsigned int dir = nbd_aio_get_direction(h);
		struct pollfd pfd = { .fd = nbd_aio_get_fd(h) };
		uint64_t now = pvio_now_ns();
		int n;

		if (now >= end) {
			snprintf(why, len, "%.300s: no answer within %llu s", uri,
				 (unsigned long long)(timeout_ns / 1000000000u));
			return -ETIMEDOUT;
		}
		if (dir & LIBNBD_AIO_DIRECTION_READ)
			pfd.events |= POLLIN;
		if (dir & LIBNBD_AIO_DIRECTION_WRITE)
			pfd.events |= POLLOUT;
		n = poll(&pfd, 1, (int)((end - now) / 1000000u) + 1);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		if ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) &&
		    nbd_aio_notify_read(h) < 0)
			break;
		if ((pfd.revents & POLLOUT) && nbd_aio_notify_write(h) < 0)
			break;
	}
	if (!nbd_aio_is_ready(h)) {
		snprintf(why, len, "cannot connect to %.300s: %s", uri,
			 nbd_get_error() ? nbd_get_error() : "connection closed");
		return -ECONNREFUSED;
	}
	return 0;
}

static struct nbd_handle *new_handle(void)
{
	struct nbd_handle *h = nbd_create();

	if (!h)
		return NULL;
	/* the export's size and flags are what we serve: no options to list */
	nbd_set_uri_allow_local_file(h, false);
	/*
	 * No zeroing of read buffers before each read (libnbd's guard
	 * for callers that ignore errors, a memset of the whole buffer:
	 * a twentieth of the worker's time at 128 KiB). A failed read's
	 * buffer never reaches the guest unless it is the guest's own
	 * mapped page, which then holds its own data or the export's.
	 */
	nbd_set_pread_initialize(h, false);
	return h;
}

static int tn_open(const struct blk_open_env *e, struct vbd *v)
{
	struct nbd_tgt *t;
	int64_t sz, bs;
	int rc;

	if (!uri_ok(v->params)) {
		snprintf(v->why, sizeof(v->why), "'%.400s' is not an NBD URI",
			 v->params);
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	v->tpriv = t;
	t->lock.fd = -1;
	t->armed_fd = -1;
	t->test_stale = getenv("PVIO_TEST_NBD_STALE_READ") != NULL;
	t->test_nomem = getenv("PVIO_TEST_NBD_QUEUE_NOMEM") != NULL;
	t->tls = !strncmp(v->params, "nbds", 4);
	t->timeout_ns = (uint64_t)e->remote_timeout_s * 1000000000u;
	if (!v->readonly) {
		rc = remote_lock_take(&t->lock, e->lock_dir, v->params,
				      v->why, sizeof(v->why));
		if (rc)
			return rc;
	}
	t->h = new_handle();
	if (!t->h) {
		snprintf(v->why, sizeof(v->why), "libnbd: %s", nbd_get_error());
		return -ENOMEM;
	}
	rc = connect_bounded(t->h, v->params, t->timeout_ns, v->why,
			     sizeof(v->why));
	if (rc)
		return rc;
	sz = nbd_get_size(t->h);
	if (sz < 0) {
		snprintf(v->why, sizeof(v->why), "%.300s: no size: %s",
			 v->params, nbd_get_error());
		return -EIO;
	}
	if (!v->readonly && nbd_is_read_only(t->h) == 1) {
		snprintf(v->why, sizeof(v->why),
			 "%.300s is a read-only export but the disk is writable (mode w)",
			 v->params);
		return -EROFS;
	}
	t->size = (uint64_t)sz;
	v->size_bytes = t->size;
	v->logical = 512;
	bs = nbd_get_block_size(t->h, LIBNBD_SIZE_MINIMUM);
	if (bs > 512 && bs <= 4096)
		v->logical = (unsigned int)bs;
	v->physical = 4096;
	bs = nbd_get_block_size(t->h, LIBNBD_SIZE_PREFERRED);
	if (bs >= v->logical && bs <= 65536)
		v->physical = (unsigned int)bs;
	v->feat_flush = nbd_can_flush(t->h) == 1;
	v->feat_barrier = false;	/* blkfront uses flush */
	v->feat_discard = !v->readonly && nbd_can_trim(t->h) == 1;
	v->discard_granularity = v->physical;
	log_info("%s: %s: %llu bytes, flush %s, trim %s", e->path, v->params,
		 (unsigned long long)t->size, v->feat_flush ? "yes" : "no",
		 v->feat_discard ? "yes" : "no");
	return 0;
}

static int tn_size(struct vbd *v, uint64_t *bytes)
{
	/* NBD exports do not change size under a connection */
	*bytes = T(v)->size;
	return 0;
}

static void free_cmds(struct nbd_tgt *t);

static void tn_close(struct vbd *v)
{
	struct nbd_tgt *t = T(v);

	if (!t)
		return;
	if (t->h)
		nbd_close(t->h);
	free_cmds(t);
	remote_lock_drop(&t->lock);
	free(t);
	v->tpriv = NULL;
}

/* ---- worker: the connection -------------------------------------------------------- */

static void list_del(struct nbd_cmd **head, struct nbd_cmd **tail,
		     struct nbd_cmd *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		*head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		*tail = c->prev;
	c->prev = c->next = NULL;
}

static void list_add(struct nbd_cmd **head, struct nbd_cmd **tail,
		     struct nbd_cmd *c)
{
	c->next = NULL;
	c->prev = *tail;
	if (*tail)
		(*tail)->next = c;
	else
		*head = c;
	*tail = c;
}

static void arm(struct nbd_tgt *t, unsigned int which)
{
	struct io_uring_sqe *sqe;

	if (t->armed[which] || !t->h || t->armed_fd < 0 || t->stopping)
		return;
	if (which == NT_READ)
		t->reads_at_arm = t->reads;
	sqe = worker_sqe(t->q->dq.w);
	io_uring_prep_poll_add(sqe, t->armed_fd,
			       which == NT_READ ? POLLIN : POLLOUT);
	dp_sqe_own(&t->q->dq, sqe, &t->tags[which]);
	t->armed[which] = true;
	t->cancel_sent[which] = false;
}

static void cancel_polls(struct nbd_tgt *t)
{
	unsigned int i;

	for (i = 0; i < 2; i++) {
		struct io_uring_sqe *sqe;

		if (!t->armed[i] || t->cancel_sent[i])
			continue;
		sqe = worker_sqe(t->q->dq.w);
		io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&t->tags[i]);
		io_uring_sqe_set_data(sqe, NULL);	/* its own CQE: ignored */
		t->cancel_sent[i] = true;
	}
}

/* What libnbd waits for, polled. */
static void rearm(struct nbd_tgt *t)
{
	unsigned int dir;

	if (!t->h)
		return;
	dir = nbd_aio_get_direction(t->h);
	if (dir & LIBNBD_AIO_DIRECTION_READ)
		arm(t, NT_READ);
	if (dir & LIBNBD_AIO_DIRECTION_WRITE)
		arm(t, NT_WRITE);
}

/* Connected and negotiated: idle (ready) or with commands in flight. */
static bool up(struct nbd_handle *h)
{
	return h && (nbd_aio_is_ready(h) == 1 || nbd_aio_is_processing(h) == 1);
}

static void cmd_finish(struct nbd_tgt *t, struct nbd_cmd *c, int res)
{
	struct blk_req *r = c->r;

	if (c->stage && res >= 0 && r->kind == BK_READ)
		remote_scatter(r->iov, r->nseg, c->stage);
	c->r = NULL;
	blk_req_done(t->q, r, res);
}

static int on_done(void *user_data, int *error)
{
	struct nbd_cmd *c = user_data;
	struct nbd_tgt *t = c->t;
	struct blk_req *r = c->r;

	if (!c->live)
		return 1;	/* answered already (timed out, connection lost) */
	c->live = false;
	list_del(&t->head, &t->tail, c);
	if (!*error && r->kind == BK_DISCARD) {
		c->trimmed += c->part;
		if (c->trimmed < r->bytes) {
			/* the next part: sent once libnbd has returned (no
			 * libnbd call from its own callback), by more(); its
			 * own timeout (the in-flight list stays oldest first) */
			c->deadline_ns = pvio_now_ns() + t->timeout_ns;
			list_add(&t->whead, &t->wtail, c);
			return 1;
		}
	}
	if (*error) {
		log_debug("%s: NBD %s of %llu bytes at %llu: %s",
			  t->q->dq.dev->path, r->kind == BK_READ ? "read" : "command",
			  (unsigned long long)r->bytes,
			  (unsigned long long)r->sector * 512u, strerror(*error));
		cmd_finish(t, c, -*error);
	}
	else
		cmd_finish(t, c, r->kind == BK_READ || r->kind == BK_WRITE ?
				 (int)r->bytes : 0);
	return 1;
}

/* Drop the connection: what it had in flight is answered with @err. */
static void drop_connection(struct nbd_tgt *t, int err, const char *why)
{
	struct nbd_cmd *c;

	if (!t->h)
		return;
	if (why)
		log_warn("%s: %s: %s: connection dropped, %d request(s) failed",
			 t->q->dq.dev->path, t->q->vbd->params, why,
			 nbd_aio_in_flight(t->h));
	cancel_polls(t);
	while ((c = t->head)) {
		c->live = false;
		list_del(&t->head, &t->tail, c);
		cmd_finish(t, c, err);
	}
	/* the polls hold the socket until their cancellations complete */
	nbd_close(t->h);
	t->h = NULL;
	t->connecting = false;
	t->next_try_ns = pvio_now_ns() + 1000000000u;
}

static void check_state(struct nbd_tgt *t);

static int start_cmd(struct nbd_tgt *t, struct nbd_cmd *c)
{
	struct blk_req *r = c->r;
	nbd_completion_callback cb = { .callback = on_done, .user_data = c };
	uint64_t off = r->sector * 512u;
	void *buf = c->stage ? c->stage : r->iov[0].iov_base;
	int64_t cookie;

	if (c->stage && r->kind == BK_WRITE)
		remote_gather(c->stage, r->iov, r->nseg);
	c->live = true;
	t->test_stale_done = false;
	list_add(&t->head, &t->tail, c);
	switch (r->kind) {
	case BK_READ:
		cookie = nbd_aio_pread(t->h, buf, r->bytes, off, cb, 0);
		break;
	case BK_WRITE:
		cookie = nbd_aio_pwrite(t->h, buf, r->bytes, off, cb, 0);
		break;
	case BK_FLUSH:
		cookie = nbd_aio_flush(t->h, cb, 0);
		break;
	case BK_DISCARD: {
		uint64_t left = r->bytes - c->trimmed, max = trim_max(t->q->vbd);

		c->part = (uint32_t)(left < max ? left : max);
		cookie = nbd_aio_trim(t->h, c->part, off + c->trimmed, cb, 0);
		break;
	}
	default:
		cookie = -1;
		break;
	}
	if (cookie < 0 && c->live) {	/* not queued: no callback comes */
		int err = nbd_get_errno();

		log_debug("%s: NBD command refused: %s", t->q->dq.dev->path,
			  nbd_get_error());

		c->live = false;
		list_del(&t->head, &t->tail, c);
		cmd_finish(t, c, r->kind == BK_BARRIER ? -EOPNOTSUPP :
				 -(err ? err : EIO));
		return -1;
	}
	/*
	 * libnbd sends a command from READY only. Told of data that was
	 * not there (or not a whole TLS record), 1.14 stays in its reply
	 * states until the next read notification, holding back what was
	 * issued meanwhile; with nothing else in flight no reply comes to
	 * notify it: the command would wait for the timeout. Ours is the
	 * only one and it is not being sent (no write wanted): tell libnbd
	 * to look again, which takes it back to READY and sends it.
	 */
	if (nbd_aio_in_flight(t->h) == 1 && nbd_aio_is_processing(t->h) == 1 &&
	    !(nbd_aio_get_direction(t->h) & LIBNBD_AIO_DIRECTION_WRITE)) {
		log_debug("%s: libnbd holds the command back (%s): looking again",
			  t->q->dq.dev->path, nbd_connection_state(t->h));
		t->reads++;
		nbd_aio_notify_read(t->h);
		check_state(t);
	}
	rearm(t);	/* the request may wait to be sent */
	return 0;
}

/* Connected again: what waited goes out, oldest first. */
static void start_waiting(struct nbd_tgt *t)
{
	struct nbd_cmd *c;

	while ((c = t->whead) && up(t->h)) {
		list_del(&t->whead, &t->wtail, c);
		start_cmd(t, c);
	}
}

/* After libnbd ran callbacks: a discard's next part, if one waits. */
static void more(struct nbd_tgt *t)
{
	if (t->whead && !t->connecting && up(t->h))
		start_waiting(t);
}

static void try_connect(struct nbd_tgt *t, uint64_t now)
{
	struct vbd *v = t->q->vbd;

	if (t->h || now < t->next_try_ns)
		return;
	t->next_try_ns = now + 1000000000u;
	t->h = new_handle();
	if (!t->h)
		return;
	/* unix sockets and numeric addresses: nothing here blocks (a host
	 * name is resolved by getaddrinfo: see docs/deploy-xen.md) */
	if (nbd_aio_connect_uri(t->h, v->params) < 0) {
		nbd_close(t->h);
		t->h = NULL;
		return;
	}
	t->armed_fd = nbd_aio_get_fd(t->h);
	t->connecting = true;
	t->connect_deadline_ns = now + t->timeout_ns;
	t->reconnects++;
}

/* After libnbd ran: connected, still connecting, or dead. */
static void check_state(struct nbd_tgt *t)
{
	if (!t->h)
		return;
	if (t->connecting && up(t->h)) {
		int64_t sz = nbd_get_size(t->h);

		t->connecting = false;
		if (sz < 0 || (uint64_t)sz != t->size) {
			drop_connection(t, -EIO, "the export changed size");
			return;
		}
		log_info("%s: %s: connected again", t->q->dq.dev->path,
			 t->q->vbd->params);
		start_waiting(t);
	} else if (nbd_aio_is_dead(t->h) || nbd_aio_is_closed(t->h)) {
		drop_connection(t, -EIO, t->connecting ? NULL :
				"the server went away");
	}
}

static void free_cmds(struct nbd_tgt *t)
{
	if (t->stage)
		munmap(t->stage, t->stage_bytes * t->nr_cmds);
	free(t->cmds);
	t->stage = NULL;
	t->cmds = NULL;
}

/* ---- worker: the ops ----------------------------------------------------------------------- */

static void tn_queue_start(struct blk_queue *q)
{
	struct nbd_tgt *t = T(q->vbd);
	size_t bytes;
	uint32_t i;

	t->q = q;
	q->tq = t;
	t->stopping = false;
	t->tags[NT_READ] = (struct dp_tag){ .q = &q->dq, .ptr = t,
					    .kind = BLK_TAG_TARGET };
	t->tags[NT_WRITE] = t->tags[NT_READ];
	free_cmds(t);	/* a previous connection's queue */
	t->cmds = calloc(q->nr_reqs, sizeof(*t->cmds));
	t->stage_bytes = (size_t)q->max_segs * PVIO_PAGE_SIZE;
	bytes = t->stage_bytes * q->nr_reqs;
	/* reserved, not committed: only what multi-segment requests touch */
	t->nr_cmds = q->nr_reqs;
	t->stage = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (t->test_nomem) {	/* tests: as a failed allocation */
		free(t->cmds);
		t->cmds = NULL;
	}
	if (!t->cmds || t->stage == MAP_FAILED) {
		if (t->stage == MAP_FAILED)
			t->stage = NULL;
		free_cmds(t);	/* nothing half set up for tn_poll */
		dp_queue_halt(&q->dq, -ENOMEM, "no memory for the NBD queue");
		return;
	}
	for (i = 0; i < q->nr_reqs; i++) {
		t->cmds[i].t = t;
		t->cmds[i].stage = t->stage + t->stage_bytes * i;
	}
	if (t->h)
		t->armed_fd = nbd_aio_get_fd(t->h);
	rearm(t);
}

/*
 * libnbd takes one buffer per command, so a request whose pages are not
 * one buffer already (remote_contiguous) is staged (one copy) rather than
 * sent as a command per segment: the server's work per command is the
 * dearer part, and it shares the CPUs with us.
 */
static void tn_submit(struct blk_queue *q, struct blk_req *r)
{
	struct nbd_tgt *t = q->tq;
	struct nbd_cmd *c = &t->cmds[r - q->reqs];

	r->pending++;
	c->r = r;
	c->stage = (r->kind == BK_READ || r->kind == BK_WRITE) &&
		   !remote_contiguous(r->iov, r->nseg) ?
		   t->stage + t->stage_bytes * (size_t)(r - q->reqs) : NULL;
	c->deadline_ns = pvio_now_ns() + t->timeout_ns;
	c->trimmed = 0;
	if (t->connecting || !up(t->h)) {
		/* wait for the connection, at most the timeout */
		list_add(&t->whead, &t->wtail, c);
		try_connect(t, pvio_now_ns());
		rearm(t);
		return;
	}
	start_cmd(t, c);
}

/*
 * The poll said the socket was readable. A poll's result is a hint: it
 * may be stale by the time it is acted on. libnbd (1.14) told to read
 * when there is nothing waits in its reply states and holds back what is
 * issued next (see start_cmd): it is told only of bytes that are there.
 * Only libnbd reads the socket, and (without TLS, whose library may
 * buffer records) only when told to read: if it has not been told since
 * the poll was armed (@fresh), the bytes the poll saw are still there and
 * the check (a system call per readiness, about a tenth of the worker's
 * time at 4 KiB) is skipped.
 */
static void readable(struct nbd_tgt *t, bool fresh)
{
	struct pollfd pfd = { .fd = nbd_aio_get_fd(t->h), .events = POLLIN };

	if (!(fresh && !t->tls) && pfd.fd >= 0 && poll(&pfd, 1, 0) == 0) {
		log_debug("%s: read readiness with nothing to read: ignored",
			  t->q->dq.dev->path);
		return;	/* nothing: the poll is armed again */
	}
	t->reads++;
	nbd_aio_notify_read(t->h);
}

static void tn_event(struct blk_queue *q, struct dp_tag *tag, int res)
{
	struct nbd_tgt *t = q->tq;
	unsigned int which = tag == &t->tags[NT_READ] ? NT_READ : NT_WRITE;

	t->armed[which] = false;
	if (res < 0 || !t->h || t->cancel_sent[which]) {
		rearm(t);	/* cancelled: a new connection's poll, if any */
		return;
	}
	if (which == NT_READ)
		readable(t, t->reads == t->reads_at_arm);
	else
		nbd_aio_notify_write(t->h);
	check_state(t);
	more(t);
	rearm(t);
}

/* Every pass: deadlines, reconnection, what libnbd wants polled. */
static void tn_poll(struct blk_queue *q)
{
	struct nbd_tgt *t = q->tq;
	uint64_t now, next = 0;
	struct nbd_cmd *c;

	if (!t || !t->cmds)
		return;
	if (!t->head && !t->whead && !t->connecting) {
		q->dq.timer_ns = 0;
		/* tests: an idle connection gets a readiness whose data is
		 * gone, as a poll's result can be by the time it is read */
		if (t->test_stale && !t->test_stale_done && up(t->h)) {
			t->test_stale_done = true;	/* once per idle spell */
			if (!t->test_stale_hits++)
				log_info("%s: test: a stale read readiness on the idle connection",
					 q->dq.dev->path);
			readable(t, false);
		}
		rearm(t);
		return;
	}
	now = pvio_now_ns();
	/* halted (blk_halted): what waits for a connection is failed now,
	 * and nothing reconnects for it */
	while (q->dq.halted && (c = t->whead)) {
		list_del(&t->whead, &t->wtail, c);
		cmd_finish(t, c, -EIO);
	}
	/* oldest first: a request that waited the timeout is answered */
	if (t->head && t->head->deadline_ns <= now)
		drop_connection(t, -ETIMEDOUT, "no answer within the timeout");
	/* an attempt that hangs says where (TCP connect, NBD handshake) */
	if (t->connecting && t->connect_deadline_ns <= now) {
		log_warn("%s: %s: no connection within %llu s (libnbd: %s)",
			 q->dq.dev->path, q->vbd->params,
			 (unsigned long long)(t->timeout_ns / 1000000000u),
			 nbd_connection_state(t->h));
		drop_connection(t, -ETIMEDOUT, NULL);
	}
	if ((c = t->whead) && c->deadline_ns <= now) {
		char why[256] = "";

		if (t->connecting)
			snprintf(why, sizeof(why),
				 " (an attempt began %llu ms ago; libnbd: %s)",
				 (unsigned long long)((now + t->timeout_ns -
						       t->connect_deadline_ns) / 1000000u),
				 nbd_connection_state(t->h));
		log_warn("%s: %s: unreachable for %llu s: failing requests%s",
			 q->dq.dev->path, q->vbd->params,
			 (unsigned long long)(t->timeout_ns / 1000000000u), why);
	}
	while ((c = t->whead) && c->deadline_ns <= now) {
		list_del(&t->whead, &t->wtail, c);
		cmd_finish(t, c, -ETIMEDOUT);
	}
	more(t);
	if (t->whead && !t->h)
		try_connect(t, now);
	rearm(t);
	/* wake the worker for the next deadline (and the next attempt) */
	if (t->head)
		next = t->head->deadline_ns;
	if (t->whead && (!next || t->whead->deadline_ns < next))
		next = t->whead->deadline_ns;
	if (t->whead && !t->h && t->next_try_ns < next)
		next = t->next_try_ns;
	/* the attempt's own deadline, also with nothing waiting any more */
	if (t->connecting && (!next || t->connect_deadline_ns < next))
		next = t->connect_deadline_ns;
	q->dq.timer_ns = next;
}

static void tn_quiesce(struct blk_queue *q)
{
	struct nbd_tgt *t = q->tq;

	/* the polls go once nothing waits for them */
	if (t && !q->inflight) {
		t->stopping = true;
		cancel_polls(t);
	}
}

static bool tn_busy(const struct blk_queue *q)
{
	const struct nbd_tgt *t = q->tq;

	return t && (t->armed[NT_READ] || t->armed[NT_WRITE]);
}

const struct blk_target_ops blk_target_nbd = {
	.kind = "nbd",
	.open = tn_open,
	.size = tn_size,
	.close = tn_close,
	.queue_start = tn_queue_start,
	.submit = tn_submit,
	.event = tn_event,
	.poll = tn_poll,
	.quiesce = tn_quiesce,
	.busy = tn_busy,
	/* one connection, one queue: a flush covers every write before it */
	.max_queues = 1,
	.no_spin = true,
};
