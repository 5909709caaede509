// SPDX-License-Identifier: MIT
/*
 * The control socket: pvio-ctl's stats requests, served by the main loop
 * without ever waiting on a client. A connection is read and written only
 * when epoll says it can be, so a client that connects and sends nothing,
 * or reads its answer slowly, holds one of CTL_CONNS places until its
 * deadline, never the loop: xenstore events, device set-up and teardown,
 * signals go on. When every place is taken, the client that has waited
 * longest without sending its request gives its place to the new one (a
 * real client sends its request as it connects); if every place is
 * answering, the new client is turned away (closed at once).
 *
 * Protocol: one line, "stats [DOM [DEVID]]" or "stats-json [DOM [DEVID]]"
 * (-1: every domain or device), answered with the dump, then the
 * connection is closed; anything else is answered "error: ...".
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "private.h"

/* A request must arrive within this time, and the answer leave. */
#define CTL_READ_MS	2000u
#define CTL_TOTAL_MS	10000u

static int sock_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (snprintf(sa->sun_path, sizeof(sa->sun_path), "%s", path) >=
	    (int)sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

/*
 * What is at @path may go: nothing, or a socket nobody answers on (a
 * killed pvio-backd's). A live socket or anything else stays.
 */
static int clear_path(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_err("cannot open the control socket %s: something else is there (not a socket)",
			path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (rc == 0) {
		log_err("cannot open the control socket %s: a process answers there (another pvio-backd?)",
			path);
		return -EADDRINUSE;
	}
	return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
}

int ctlsock_open(struct backd *bd, const char *path)
{
	struct sockaddr_un sa;
	char dir[sizeof(sa.sun_path)], *slash;
	unsigned int i;
	int fd, rc;

	for (i = 0; i < CTL_CONNS; i++)
		bd->ctl[i].fd = -1;
	rc = sock_addr(&sa, path);
	if (rc) {
		log_err("cannot open the control socket %s: %s", path,
			strerror(-rc));
		return rc;
	}
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		mkdir(dir, 0755);
	}
	rc = clear_path(path, &sa);
	if (rc)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0) {
		rc = -errno;
		log_err("cannot open the control socket %s: %s", path,
			strerror(-rc));
		if (fd >= 0)
			close(fd);
		return rc;
	}
	chmod(path, 0600);
	bd->ctl_fd = fd;
	return 0;
}

static void conn_close(struct backd *bd, struct ctl_conn *c)
{
	close(c->fd);	/* and out of the epoll set with it */
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void conn_read(struct backd *bd, struct ctl_conn *c);

/* The client that has waited longest without a request, if any. */
static struct ctl_conn *oldest_idle(struct backd *bd)
{
	struct ctl_conn *o = NULL;
	unsigned int i;

	for (i = 0; i < CTL_CONNS; i++) {
		struct ctl_conn *c = &bd->ctl[i];

		if (!c->answering && (!o || c->start_ms < o->start_ms))
			o = c;
	}
	return o;
}

void ctlsock_accept(struct backd *bd)
{
	for (;;) {
		struct epoll_event ev = { .events = EPOLLIN };
		struct ctl_conn *c = NULL;
		unsigned int i;
		int fd;

		fd = accept4(bd->ctl_fd, NULL, NULL,
			     SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;	/* EAGAIN: none waits; else the client's loss */
		for (i = 0; i < CTL_CONNS && !c; i++)
			if (bd->ctl[i].fd < 0)
				c = &bd->ctl[i];
		if (!c) {
			c = oldest_idle(bd);
			if (c) {
				bd->ctl_evicted++;
				conn_close(bd, c);
			}
		}
		if (c)
			ev.data.u32 = CTL_EV_BASE + (uint32_t)(c - bd->ctl);
		if (!c || epoll_ctl(bd->ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			bd->ctl_refused++;
			close(fd);
			continue;
		}
		c->fd = fd;
		c->start_ms = pvio_now_ms();
		/* a client sends its request as it connects: served now,
		 * it never counts as idle (a burst of more clients than
		 * places would evict those not read yet) */
		conn_read(bd, c);
	}
}

/* "stats[-json] [DOM [DEVID]]": 0, or -EINVAL. */
static int parse_request(char *req, bool *json, int *dom, int *devid)
{
	static const char *const words[] = { "stats-json", "stats" };
	char *p = req, *end;
	int *num[] = { dom, devid };
	unsigned int i;

	for (i = 0; i < 2; i++) {
		size_t n = strlen(words[i]);

		if (!strncmp(p, words[i], n) && (p[n] == ' ' || !p[n]))
			break;
	}
	if (i == 2)
		return -EINVAL;
	*json = i == 0;
	p += strlen(words[i]);
	*dom = *devid = -1;
	for (i = 0; i < 2 && *p == ' '; i++) {
		long v;

		errno = 0;
		v = strtol(p + 1, &end, 10);
		if (end == p + 1 || errno || v < -1 || v > 0x7fffffffL)
			return -EINVAL;
		*num[i] = (int)v;
		p = end;
	}
	return *p ? -EINVAL : 0;
}

static void conn_write(struct backd *bd, struct ctl_conn *c);

static void answer(struct backd *bd, struct ctl_conn *c)
{
	static char out[1 << 20];
	bool json;
	int dom, devid;
	size_t len;

	c->req[strcspn(c->req, "\r\n")] = 0;
	if (parse_request(c->req, &json, &dom, &devid))
		len = (size_t)snprintf(out, sizeof(out),
				       "error: unknown request (stats[-json] [DOM [DEVID]])\n");
	else
		len = devices_stats(bd, out, sizeof(out), json, dom, devid);
	c->out = malloc(len ? len : 1);
	if (!c->out) {
		conn_close(bd, c);
		return;
	}
	memcpy(c->out, out, len);
	c->len = len;
	c->answering = true;
	conn_write(bd, c);
}

/* Read what there is; a whole line (or the client's end) is answered. */
static void conn_read(struct backd *bd, struct ctl_conn *c)
{
	ssize_t n;

	for (;;) {
		n = read(c->fd, c->req + c->got, sizeof(c->req) - 1 - c->got);
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0 || (n == 0 && c->got == 0)) {
			conn_close(bd, c);
			return;
		}
		c->got += (size_t)n;
		c->req[c->got] = 0;
		if (n == 0 || memchr(c->req, '\n', c->got) ||
		    c->got == sizeof(c->req) - 1)
			break;
	}
	if (!memchr(c->req, '\n', c->got) && n != 0) {
		/* a line longer than any request */
		snprintf(c->req, sizeof(c->req), "?");
	}
	answer(bd, c);
}

static void conn_write(struct backd *bd, struct ctl_conn *c)
{
	while (c->off < c->len) {
		ssize_t n = send(c->fd, c->out + c->off, c->len - c->off,
				 MSG_NOSIGNAL);

		if (n < 0 && errno == EAGAIN) {
			struct epoll_event ev = {
				.events = EPOLLOUT,
				.data.u32 = CTL_EV_BASE + (uint32_t)(c - bd->ctl),
			};

			/* the rest when the client has read some */
			if (c->polling_out ||
			    epoll_ctl(bd->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0) {
				c->polling_out = true;
				return;
			}
			break;
		}
		if (n <= 0)
			break;
		c->off += (size_t)n;
	}
	if (c->off == c->len) {
		/* what the client sent past its request, read, lest the
		 * close reset the connection under the answer */
		char junk[4096];

		shutdown(c->fd, SHUT_WR);
		for (int k = 0; k < 16 && read(c->fd, junk, sizeof(junk)) > 0; k++)
			;
	}
	conn_close(bd, c);
}

void ctlsock_event(struct backd *bd, unsigned int i, uint32_t events)
{
	struct ctl_conn *c;

	if (i >= CTL_CONNS || bd->ctl[i].fd < 0)
		return;		/* closed earlier in this round of events */
	c = &bd->ctl[i];
	if (c->answering)
		conn_write(bd, c);
	else if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		conn_read(bd, c);
}

/* Once a second: clients past their deadline go; what went wrong is said
 * (at most once a second, so a flood of clients cannot flood the log). */
void ctlsock_tick(struct backd *bd)
{
	uint64_t now = pvio_now_ms();
	unsigned int i;

	if (bd->ctl_refused != bd->ctl_refused_told ||
	    bd->ctl_evicted != bd->ctl_evicted_told) {
		log_warn("control socket: all %u places taken: %llu idle client%s closed, %llu new turned away",
			 CTL_CONNS, (unsigned long long)(bd->ctl_evicted - bd->ctl_evicted_told),
			 bd->ctl_evicted - bd->ctl_evicted_told == 1 ? "" : "s",
			 (unsigned long long)(bd->ctl_refused - bd->ctl_refused_told));
		bd->ctl_refused_told = bd->ctl_refused;
		bd->ctl_evicted_told = bd->ctl_evicted;
	}

	for (i = 0; i < CTL_CONNS; i++) {
		struct ctl_conn *c = &bd->ctl[i];

		if (c->fd < 0)
			continue;
		if (now - c->start_ms >= (c->answering ? CTL_TOTAL_MS
						       : CTL_READ_MS)) {
			log_warn("control socket: a client %s in %u ms: closed",
				 c->answering ? "did not read its answer"
					      : "sent no request",
				 c->answering ? CTL_TOTAL_MS : CTL_READ_MS);
			conn_close(bd, c);
		}
	}
}

void ctlsock_close(struct backd *bd, const char *path)
{
	unsigned int i;

	for (i = 0; i < CTL_CONNS; i++)
		if (bd->ctl[i].fd >= 0)
			conn_close(bd, &bd->ctl[i]);
	if (bd->ctl_fd >= 0) {
		unlink(path);
		close(bd->ctl_fd);
		bd->ctl_fd = -1;
	}
}
