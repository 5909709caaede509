// SPDX-License-Identifier: MIT
/*
 * t-xsflood: a guest flooding xenstore with writes to its own node, as fast
 * as the store takes them: CONNS connections, each pipelining DEPTH writes
 * before it reads their replies (the xs_wire protocol by hand: libxenstore
 * waits for each reply). Runs as a sim domain (under `pvio-ctl run`, which
 * sets XENSTORED_PATH to the domain's xenstore socket).
 *
 *   t-xsflood PATH SECONDS flood [CONNS]   write "1" again and again
 *   t-xsflood PATH SECONDS flap [CONNS]    cycle through every XenBus state
 *                                          (and some garbage)
 *
 * Prints "OK N writes in S s" and exits 0; a write refused by the store
 * (its quota) is counted, not fatal.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <xen/io/xs_wire.h>

#define DEPTH		64
#define MAX_CONNS	64

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int xs_sock(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path) >=
	    (int)sizeof(sa.sun_path) ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		FAIL("connect %s: %s", path, strerror(errno));
	return fd;
}

static void write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			FAIL("write: %s", strerror(errno));
		p += n;
		len -= (size_t)n;
	}
}

static void read_all(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			FAIL("read: %s", n ? strerror(errno) : "closed");
		p += n;
		len -= (size_t)n;
	}
}

/* One reply: 1 if it was an error. */
static int reply(int fd)
{
	struct xsd_sockmsg h;
	char body[XENSTORE_PAYLOAD_MAX];

	read_all(fd, &h, sizeof(h));
	if (h.len > sizeof(body))
		FAIL("reply of %u bytes", h.len);
	read_all(fd, body, h.len);
	return h.type == XS_ERROR;
}

int main(int argc, char **argv)
{
	static const char *const flap[] = { "1", "3", "4", "5", "6", "2", "4",
					    "0", "7", "8", "99", "", "5", "6" };
	const char *sock = getenv("XENSTORED_PATH"), *path, *mode;
	int fds[MAX_CONNS], conns = 16, c, k;
	unsigned long long writes = 0, refused = 0, seq = 0;
	double secs, t0, end;
	size_t plen;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 4 || !sock)
		FAIL("usage: t-xsflood PATH SECONDS flood|flap [CONNS] (under pvio-ctl run)");
	path = argv[1];
	secs = atof(argv[2]);
	mode = argv[3];
	if (strcmp(mode, "flood") && strcmp(mode, "flap"))
		FAIL("bad mode %s", mode);
	if (argc > 4)
		conns = atoi(argv[4]);
	if (conns < 1 || conns > MAX_CONNS)
		FAIL("bad CONNS");
	plen = strlen(path) + 1;
	if (plen > 1024)
		FAIL("path too long");
	for (c = 0; c < conns; c++)
		fds[c] = xs_sock(sock);
	t0 = now_s();
	end = t0 + secs;
	printf("OK flooding %s (%s, %d connections)\n", path, mode, conns);
	while (now_s() < end) {
		for (c = 0; c < conns; c++) {
			char msg[DEPTH * (sizeof(struct xsd_sockmsg) + 1100)];
			size_t off = 0;

			for (k = 0; k < DEPTH; k++) {
				struct xsd_sockmsg h = { .type = XS_WRITE };
				const char *v = strcmp(mode, "flap") ? "1" :
					flap[seq++ % (sizeof(flap) / sizeof(flap[0]))];
				size_t vlen = strlen(v);

				h.req_id = (uint32_t)k;
				h.len = (uint32_t)(plen + vlen);
				memcpy(msg + off, &h, sizeof(h));
				off += sizeof(h);
				memcpy(msg + off, path, plen);
				off += plen;
				memcpy(msg + off, v, vlen);
				off += vlen;
			}
			write_all(fds[c], msg, off);
		}
		for (c = 0; c < conns; c++)
			for (k = 0; k < DEPTH; k++) {
				refused += (unsigned long long)reply(fds[c]);
				writes++;
			}
	}
	for (c = 0; c < conns; c++)
		close(fds[c]);
	printf("OK %llu writes in %.1f s (%llu refused)\n", writes,
	       now_s() - t0, refused);
	return 0;
}
