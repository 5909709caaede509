// SPDX-License-Identifier: MIT
/*
 * The sim world's xenstore server: Xen's xenstore wire protocol
 * (xen/io/xs_wire.h) on unix sockets, around the pure engine of
 * xs-store.c, in pvio-simhv's single-threaded event loop. libxenstore and
 * the xenstore-* tools talk to it unchanged (XENSTORED_PATH names the
 * socket).
 *
 * One listening socket per domain, WORLD/xs/dom<N>.sock: it exists from
 * the domain's introduction to its release, and a connection on it acts
 * as domain N. Guests are hostile: every length is checked before use, a
 * malformed message closes that connection only, a client that does not
 * read its replies is not read from (its output is bounded), its watch
 * events wait in the engine's capped queue, and an unprivileged domain
 * gets a bounded number of connections.
 *
 * Objects die in the middle of an epoll batch that may still hold events
 * for them; they are freed two reaper wakeups later (see sx_reap()).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <xen/io/xs_wire.h>

#include "simhv.h"
#include "util.h"
#include "xs-store.h"
#include "xs-wire.h"

int pvio__simxs_start(struct hv *hv);
void pvio__simxs_stop(struct hv *hv);

#define SX_DIR		"xs"
#define SX_OUT_HIGH	(64u * 1024)	/* unsent: stop reading above */
#define SX_BATCH	64		/* requests per client per wakeup */
#define SX_MAX_CONNS	32		/* per unprivileged domain */
#define SX_LOG_BURST	20		/* guest-caused warnings / 10 s */


/* Something to free once no epoll event can refer to it any more. */
struct sx_dead {
	struct sx_dead *next;
	void *obj;
};

struct sx_out {
	struct sx_out *next;
	size_t len, off;
	char data[];		/* header and payload */
};

struct sx_conn {
	struct hv_io io;
	struct simxs *xs;
	struct sx_conn *prev, *next;
	struct sx_dead dead;
	struct xs_conn *xc;
	unsigned int domid;
	int fd;
	uint32_t events;	/* what epoll waits for */
	bool gone;
	/* input: a header, then hdr.len <= XENSTORE_PAYLOAD_MAX bytes */
	struct xsd_sockmsg hdr;
	size_t got;
	char *body;		/* XENSTORE_PAYLOAD_MAX + 1 bytes */
	/* output */
	struct sx_out *out, **out_tail;
	size_t out_bytes;
	unsigned long dropped;	/* watch events lost (queue full) */
};

struct sx_listener {
	struct hv_io io;
	struct simxs *xs;
	struct sx_listener *next;
	struct sx_dead dead;
	unsigned int domid;
	int fd;
	bool gone;
	bool full;		/* refusing connections (logged once) */
	char path[];
};

struct simxs {
	struct hv *hv;
	struct xs_store *store;
	char *dir;
	struct sx_listener *listeners;
	struct sx_conn *conns;
	struct hv_io reap_io;
	int reap_fd;
	struct sx_dead *dead_new, *dead_old;
	int spare_fd;		/* given up to shed connections */
	time_t log_window;
	unsigned int log_count, log_suppressed;
};

/* ---- plumbing ------------------------------------------------------------ */

static int sx_epoll(struct simxs *xs, int op, int fd, struct hv_io *io,
		    uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	return epoll_ctl(xs->hv->epfd, op, fd, &ev) < 0 ? -errno : 0;
}

/* Guests can trigger warnings: at most SX_LOG_BURST per 10 seconds. */
static bool sx_log_ok(struct simxs *xs)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec - xs->log_window >= 10) {
		if (xs->log_suppressed)
			log_warn("xenstore: %u warnings suppressed",
				 xs->log_suppressed);
		xs->log_window = ts.tv_sec;
		xs->log_count = xs->log_suppressed = 0;
	}
	if (xs->log_count < SX_LOG_BURST) {
		xs->log_count++;
		return true;
	}
	xs->log_suppressed++;
	return false;
}

#define sx_warn(xs, ...)					\
	do {							\
		if (pvio_log_level >= PVIO_LOG_WARN &&		\
		    sx_log_ok(xs))				\
			log_warn(__VA_ARGS__);			\
	} while (0)

static void sx_kick_reaper(struct simxs *xs)
{
	uint64_t one = 1;

	if (write(xs->reap_fd, &one, sizeof(one)) < 0)
		log_err("xenstore: reaper eventfd: %s", strerror(errno));
}

static void sx_bury(struct simxs *xs, struct sx_dead *d, void *obj)
{
	d->obj = obj;
	d->next = xs->dead_new;
	xs->dead_new = d;
	sx_kick_reaper(xs);
}

static void sx_free_dead(struct sx_dead *d)
{
	struct sx_dead *next;

	for (; d; d = next) {
		next = d->next;
		free(d->obj);
	}
}

/*
 * The reaper's eventfd is reported at most once per epoll batch. What died
 * before the wakeup in batch b moves to dead_old and is freed at the next
 * wakeup, in a batch after b: its fd left epoll before that batch was
 * collected, so no event can name it any more.
 */
static void sx_reap(struct hv *hv, void *data, uint32_t events)
{
	struct simxs *xs = data;
	uint64_t v;

	if (read(xs->reap_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_err("xenstore: reaper eventfd: %s", strerror(errno));
	sx_free_dead(xs->dead_old);
	xs->dead_old = xs->dead_new;
	xs->dead_new = NULL;
	if (xs->dead_old)
		sx_kick_reaper(xs);
}

/* ---- connections: output ------------------------------------------------- */

static void conn_kill(struct sx_conn *c, const char *why)
{
	struct simxs *xs = c->xs;
	struct sx_out *o;

	if (c->gone)
		return;
	c->gone = true;
	if (why)
		log_debug("xenstore: dom%u connection closed: %s", c->domid,
			  why);
	if (c->dropped)
		sx_warn(xs, "xenstore: dom%u connection closed, it lost %lu "
			"watch events", c->domid, c->dropped);
	pvio__xs_conn_free(c->xc);
	c->xc = NULL;
	epoll_ctl(xs->hv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	while ((o = c->out)) {
		c->out = o->next;
		free(o);
	}
	free(c->body);
	c->body = NULL;
	if (c->prev)
		c->prev->next = c->next;
	else
		xs->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	sx_bury(xs, &c->dead, c);
}

/* Read requests only while the client takes its replies. */
static void conn_set_events(struct sx_conn *c)
{
	uint32_t ev = 0;

	if (c->out_bytes < SX_OUT_HIGH)
		ev |= EPOLLIN;
	if (c->out)
		ev |= EPOLLOUT;
	if (ev == c->events)
		return;
	if (sx_epoll(c->xs, EPOLL_CTL_MOD, c->fd, &c->io, ev))
		conn_kill(c, "epoll");
	else
		c->events = ev;
}

static int conn_queue(struct sx_conn *c, uint32_t type, uint32_t req_id,
		      uint32_t tx_id, const void *data, unsigned int len)
{
	struct xsd_sockmsg h = {
		.type = type, .req_id = req_id, .tx_id = tx_id, .len = len,
	};
	struct sx_out *o = malloc(sizeof(*o) + sizeof(h) + len);

	if (!o)
		return -ENOMEM;
	memcpy(o->data, &h, sizeof(h));
	if (len)
		memcpy(o->data + sizeof(h), data, len);
	o->len = sizeof(h) + len;
	o->off = 0;
	o->next = NULL;
	*c->out_tail = o;
	c->out_tail = &o->next;
	c->out_bytes += o->len;
	return 0;
}

static void conn_flush(struct sx_conn *c)
{
	struct sx_out *o;
	ssize_t n;

	while ((o = c->out)) {
		n = send(c->fd, o->data + o->off, o->len - o->off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			conn_kill(c, strerror(errno));
			return;
		}
		o->off += (size_t)n;
		c->out_bytes -= (size_t)n;
		if (o->off < o->len)
			continue;
		c->out = o->next;
		if (!c->out)
			c->out_tail = &c->out;
		free(o);
	}
	conn_set_events(c);
}

/* Move pending watch events to the output, as far as it has room. */
static void conn_pump(struct sx_conn *c)
{
	unsigned int len, dropped;
	char *msg;
	int rc;

	while (c->out_bytes < SX_OUT_HIGH &&
	       pvio__xs_event_pop(c->xc, &msg, &len) == 0) {
		rc = conn_queue(c, XS_WATCH_EVENT, 0, 0, msg, len);
		free(msg);
		if (rc)
			sx_warn(c->xs, "xenstore: dom%u: out of memory, "
				"dropped a watch event", c->domid);
	}
	/* XSA-349: say so once per connection, count the rest */
	dropped = pvio__xs_events_dropped(c->xc);
	if (dropped && !c->dropped)
		sx_warn(c->xs, "xenstore: dom%u does not read its watch "
			"events: dropping what does not fit", c->domid);
	c->dropped += dropped;
	if (c->out)
		conn_flush(c);
	else
		conn_set_events(c);
}

/* A request may have queued events for anyone. */
static void sx_pump(struct simxs *xs)
{
	struct sx_conn *c, *next;

	for (c = xs->conns; c; c = next) {
		next = c->next;
		conn_pump(c);
	}
}

/* ---- requests ------------------------------------------------------------ */

/* Answer the request in c->hdr / c->body (xs-wire.c). */
static void conn_handle(struct sx_conn *c)
{
	struct xs_wire_reply r;

	pvio__xs_wire_handle(c->xs->store, c->xc, &c->hdr, c->body, &r);
	if (c->gone) {
		free(r.heap);
		return;
	}
	/* without its reply the client would be out of step: give up */
	if (conn_queue(c, r.type, c->hdr.req_id, c->hdr.tx_id, r.data, r.len))
		conn_kill(c, "out of memory");
	free(r.heap);
}

/*
 * Read towards one whole message. Return 1 when one is complete, 0 when
 * the socket has nothing more for now, -1 when the connection is gone.
 */
static int conn_read_msg(struct sx_conn *c)
{
	const size_t hl = sizeof(c->hdr);
	size_t want;
	ssize_t n;
	char *dst;

	for (;;) {
		if (c->got < hl) {
			dst = (char *)&c->hdr + c->got;
			want = hl - c->got;
		} else {
			dst = c->body + (c->got - hl);
			want = hl + c->hdr.len - c->got;
		}
		if (!want)
			break;
		n = read(c->fd, dst, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		if (n <= 0) {
			conn_kill(c, n ? strerror(errno) : "closed by peer");
			return -1;
		}
		c->got += (size_t)n;
		if (c->got == hl && c->hdr.len > XENSTORE_PAYLOAD_MAX) {
			sx_warn(c->xs, "xenstore: dom%u sent a %u-byte "
				"payload: closing its connection", c->domid,
				c->hdr.len);
			conn_kill(c, NULL);
			return -1;
		}
	}
	c->body[c->hdr.len] = 0;	/* string functions stay inside */
	c->got = 0;
	return 1;
}

static void conn_input(struct sx_conn *c)
{
	unsigned int n;

	/* a bounded batch: other clients get their turn */
	for (n = 0; n < SX_BATCH && c->out_bytes < SX_OUT_HIGH; n++) {
		if (conn_read_msg(c) <= 0)
			break;
		conn_handle(c);
		if (c->gone)
			break;
	}
}

static void conn_ready(struct hv *hv, void *data, uint32_t events)
{
	struct sx_conn *c = data;
	struct simxs *xs = c->xs;

	if (c->gone)
		return;
	if (events & EPOLLERR) {
		conn_kill(c, "socket error");
		return;
	}
	/* a client that hung up may have left requests: serve them, then
	 * reading finds the end or writing fails, and it goes */
	if (events & (EPOLLIN | EPOLLHUP))
		conn_input(c);
	if (!c->gone && (events & (EPOLLOUT | EPOLLHUP)))
		conn_flush(c);
	sx_pump(xs);
}

static int conn_new(struct simxs *xs, unsigned int domid, int fd)
{
	struct sx_conn *c = calloc(1, sizeof(*c));
	int rc = -ENOMEM;

	if (!c)
		goto fail;
	c->body = malloc(XENSTORE_PAYLOAD_MAX + 1);
	if (!c->body)
		goto fail_body;
	rc = pvio__xs_conn_new(xs->store, domid, &c->xc);
	if (rc)
		goto fail_xc;
	c->xs = xs;
	c->domid = domid;
	c->fd = fd;
	c->out_tail = &c->out;
	c->io.fd = fd;
	c->io.fn = conn_ready;
	c->io.data = c;
	c->events = EPOLLIN;
	rc = sx_epoll(xs, EPOLL_CTL_ADD, fd, &c->io, c->events);
	if (rc)
		goto fail_epoll;
	c->next = xs->conns;
	if (xs->conns)
		xs->conns->prev = c;
	xs->conns = c;
	log_debug("xenstore: dom%u connected", domid);
	return 0;

fail_epoll:
	pvio__xs_conn_free(c->xc);
fail_xc:
	free(c->body);
fail_body:
	free(c);
fail:
	close(fd);
	return rc;
}

/* ---- listening sockets --------------------------------------------------- */

static unsigned int count_conns(const struct simxs *xs, unsigned int domid)
{
	const struct sx_conn *c;
	unsigned int n = 0;

	for (c = xs->conns; c; c = c->next)
		n += c->domid == domid;
	return n;
}

/* Out of descriptors: take the pending connection and drop it, or the
 * level-triggered listener would spin. */
static void shed_connection(struct simxs *xs, struct sx_listener *l)
{
	int fd;

	sx_warn(xs, "xenstore: out of file descriptors, refusing a dom%u "
		"connection", l->domid);
	if (xs->spare_fd < 0)
		return;
	close(xs->spare_fd);
	fd = accept(l->fd, NULL, NULL);
	if (fd >= 0)
		close(fd);
	xs->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void listener_ready(struct hv *hv, void *data, uint32_t events)
{
	struct sx_listener *l = data;
	struct simxs *xs = l->xs;
	int fd, rc;

	if (l->gone)
		return;
	fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			shed_connection(xs, l);
		return;
	}
	if (l->domid != PVIO_XS_PRIV_DOMID &&
	    count_conns(xs, l->domid) >= SX_MAX_CONNS) {
		if (!l->full)
			sx_warn(xs, "xenstore: dom%u has %u connections: "
				"refusing more", l->domid, SX_MAX_CONNS);
		l->full = true;
		close(fd);
		return;
	}
	l->full = false;
	rc = conn_new(xs, l->domid, fd);
	if (rc)
		log_warn("xenstore: dom%u connection: %s", l->domid,
			 strerror(-rc));
}

static int listener_open(struct simxs *xs, unsigned int domid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct sx_listener *l;
	int n, rc;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/dom%u.sock",
		     xs->dir, domid);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	l = calloc(1, sizeof(*l) + (size_t)n + 1);
	if (!l)
		return -ENOMEM;
	memcpy(l->path, sa.sun_path, (size_t)n + 1);
	l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (l->fd < 0) {
		rc = -errno;
		goto fail_socket;
	}
	unlink(l->path);	/* left by a domain of a crashed world */
	if (bind(l->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(l->fd, 64) < 0) {
		rc = -errno;
		goto fail_bind;
	}
	l->xs = xs;
	l->domid = domid;
	l->io.fd = l->fd;
	l->io.fn = listener_ready;
	l->io.data = l;
	rc = sx_epoll(xs, EPOLL_CTL_ADD, l->fd, &l->io, EPOLLIN);
	if (rc)
		goto fail_bind;
	l->next = xs->listeners;
	xs->listeners = l;
	return 0;

fail_bind:
	unlink(l->path);
	close(l->fd);
fail_socket:
	free(l);
	return rc;
}

static void listener_close(struct simxs *xs, struct sx_listener *l)
{
	struct sx_listener **pp;

	l->gone = true;
	epoll_ctl(xs->hv->epfd, EPOLL_CTL_DEL, l->fd, NULL);
	close(l->fd);
	unlink(l->path);
	for (pp = &xs->listeners; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	sx_bury(xs, &l->dead, l);
}

/* ---- domains come and go with simhv -------------------------------------- */

static void sx_dom_introduced(struct hv *hv, struct hv_dom *d)
{
	struct simxs *xs = hv->xs;
	int rc;

	/* the socket first: a watcher of @introduceDomain may connect */
	rc = listener_open(xs, d->domid);
	if (rc)
		log_warn("xenstore: no socket for domain %u: %s", d->domid,
			 strerror(-rc));
	rc = pvio__xs_domain_introduce(xs->store, d->domid);
	if (rc)
		log_warn("xenstore: cannot introduce domain %u: %s", d->domid,
			 strerror(-rc));
	else
		log_debug("xenstore: domain %u introduced", d->domid);
	sx_pump(xs);
}

/* Its connections go, its subtree stays: removing it is the toolstack's
 * job, as on Xen. */
static void sx_dom_released(struct hv *hv, struct hv_dom *d)
{
	struct simxs *xs = hv->xs;
	struct sx_listener *l;
	struct sx_conn *c, *next;

	for (l = xs->listeners; l; l = l->next)
		if (l->domid == d->domid) {
			listener_close(xs, l);
			break;
		}
	for (c = xs->conns; c; c = next) {
		next = c->next;
		if (c->domid == d->domid)
			conn_kill(c, "domain released");
	}
	pvio__xs_domain_release(xs->store, d->domid);
	log_debug("xenstore: domain %u released", d->domid);
	sx_pump(xs);
}

/* ---- start and stop ------------------------------------------------------ */

/* Sockets of domains of an earlier world that did not stop cleanly. */
static void remove_stale_sockets(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t len;

	if (!d)
		return;
	while ((e = readdir(d))) {
		len = strlen(e->d_name);
		if (strncmp(e->d_name, "dom", 3) == 0 && len > 8 &&
		    strcmp(e->d_name + len - 5, ".sock") == 0)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	closedir(d);
}

static int make_dir(struct simxs *xs, const char *world)
{
	size_t len = strlen(world) + sizeof("/" SX_DIR);
	struct sockaddr_un sa;

	xs->dir = malloc(len);
	if (!xs->dir)
		return -ENOMEM;
	snprintf(xs->dir, len, "%s/" SX_DIR, world);
	/* the longest socket name must fit in sun_path */
	if (len + sizeof("/dom65535.sock") > sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	if (mkdir(xs->dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	remove_stale_sockets(xs->dir);
	return 0;
}

static int reaper_init(struct simxs *xs)
{
	int rc;

	xs->reap_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (xs->reap_fd < 0)
		return -errno;
	xs->reap_io.fd = xs->reap_fd;
	xs->reap_io.fn = sx_reap;
	xs->reap_io.data = xs;
	rc = sx_epoll(xs, EPOLL_CTL_ADD, xs->reap_fd, &xs->reap_io, EPOLLIN);
	if (rc) {
		close(xs->reap_fd);
		xs->reap_fd = -1;
	}
	return rc;
}

int pvio__simxs_start(struct hv *hv)
{
	struct simxs *xs = calloc(1, sizeof(*xs));
	int rc = -ENOMEM;

	if (!xs)
		return -ENOMEM;
	xs->hv = hv;
	xs->reap_fd = xs->spare_fd = -1;
	rc = make_dir(xs, hv->dir);
	if (rc)
		goto fail_dir;
	rc = pvio__xs_store_new(&xs->store, NULL);
	if (rc)
		goto fail_dir;
	rc = reaper_init(xs);
	if (rc)
		goto fail_reaper;
	xs->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	hv->xs = xs;
	hv->dom_introduced = sx_dom_introduced;
	hv->dom_released = sx_dom_released;
	log_info("xenstore: domain N connects at %s/domN.sock", xs->dir);
	return 0;

fail_reaper:
	pvio__xs_store_free(xs->store);
fail_dir:
	free(xs->dir);
	free(xs);
	return rc;
}

void pvio__simxs_stop(struct hv *hv)
{
	struct simxs *xs = hv->xs;

	if (!xs)
		return;
	hv->dom_introduced = NULL;
	hv->dom_released = NULL;
	while (xs->conns)
		conn_kill(xs->conns, NULL);
	while (xs->listeners)
		listener_close(xs, xs->listeners);
	/* the loop is over: no event can name anything any more */
	sx_free_dead(xs->dead_old);
	sx_free_dead(xs->dead_new);
	epoll_ctl(hv->epfd, EPOLL_CTL_DEL, xs->reap_fd, NULL);
	close(xs->reap_fd);
	if (xs->spare_fd >= 0)
		close(xs->spare_fd);
	pvio__xs_store_free(xs->store);
	rmdir(xs->dir);
	free(xs->dir);
	free(xs);
	hv->xs = NULL;
}
