// SPDX-License-Identifier: MIT
/*
 * t-xsclient DOM0SOCK DOMUSOCK DOMID: Xen's own client library,
 * libxenstore, against pvio-simhv's xenstore (run by test-simxs.sh).
 * Transactions (a conflict gives EAGAIN, then the usual retry commits;
 * abort), watches through xs_watch/xs_read_watch, a directory too big
 * for one message (XS_DIRECTORY_PART), a domU's view (relative paths,
 * denials, privileged requests), and malformed input on a raw socket.
 * Exit 0 when every check passes.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <xenstore.h>

static int failures;

#define CHECK(cond, ...)						\
	do {								\
		if (!(cond)) {						\
			fprintf(stderr, "t-xsclient:%d: ", __LINE__);	\
			fprintf(stderr, __VA_ARGS__);			\
			fputc('\n', stderr);				\
			failures++;					\
		}							\
	} while (0)

/* libxenstore connects to $XENSTORED_PATH. */
static struct xs_handle *open_at(const char *sock)
{
	struct xs_handle *h;

	setenv("XENSTORED_PATH", sock, 1);
	h = xs_open(0);
	if (!h) {
		fprintf(stderr, "t-xsclient: xs_open %s: %s\n", sock,
			strerror(errno));
		exit(1);
	}
	return h;
}

/* Does @path read as @want? NULL @want: must fail with @err. */
static bool read_is(struct xs_handle *h, xs_transaction_t t,
		    const char *path, const char *want, int err)
{
	unsigned int len;
	char *v;
	bool ok;

	errno = 0;
	v = xs_read(h, t, path, &len);
	if (!want)
		ok = !v && errno == err;
	else
		ok = v && len == strlen(want) && strcmp(v, want) == 0;
	if (!ok)
		fprintf(stderr, "t-xsclient: read %s: got %s (%s)\n", path,
			v ? v : "nothing", v ? "" : strerror(errno));
	free(v);
	return ok;
}

static void expect_event(struct xs_handle *h, const char *path,
			 const char *token)
{
	unsigned int n;
	char **ev = xs_read_watch(h, &n);

	CHECK(ev && n >= 2, "no watch event (%s)", strerror(errno));
	if (!ev || n < 2)
		return;
	CHECK(strcmp(ev[XS_WATCH_PATH], path) == 0 &&
	      strcmp(ev[XS_WATCH_TOKEN], token) == 0,
	      "event %s/%s, want %s/%s", ev[XS_WATCH_PATH],
	      ev[XS_WATCH_TOKEN], path, token);
	free(ev);
}

static void test_transactions(struct xs_handle *a, struct xs_handle *b)
{
	unsigned int len, tries;
	xs_transaction_t t;
	char *v;
	bool ok;

	CHECK(xs_write(a, XBT_NULL, "/test/tx/a", "1", 1), "write a");
	t = xs_transaction_start(a);
	CHECK(t != XBT_NULL, "transaction start: %s", strerror(errno));
	free(xs_read(a, t, "/test/tx/a", &len));
	/* someone else changes what the transaction read */
	CHECK(xs_write(b, XBT_NULL, "/test/tx/a", "2", 1), "write a again");
	CHECK(xs_write(a, t, "/test/tx/b", "stale", 5), "write b in tx");
	CHECK(read_is(a, t, "/test/tx/b", "stale", 0), "tx sees its write");
	CHECK(read_is(b, XBT_NULL, "/test/tx/b", NULL, ENOENT),
	      "others do not see it before commit");
	errno = 0;
	ok = xs_transaction_end(a, t, false);
	CHECK(!ok && errno == EAGAIN, "conflicting commit: %s, want EAGAIN",
	      ok ? "success" : strerror(errno));
	CHECK(read_is(b, XBT_NULL, "/test/tx/b", NULL, ENOENT),
	      "a failed commit changes nothing");

	/* the retry loop every xenstore client has */
	for (tries = 0; tries < 5; tries++) {
		t = xs_transaction_start(a);
		v = xs_read(a, t, "/test/tx/a", &len);
		CHECK(v, "read a in tx");
		CHECK(xs_write(a, t, "/test/tx/b", v ? v : "", v ? len : 0),
		      "write b in tx");
		free(v);
		if (xs_transaction_end(a, t, false))
			break;
		CHECK(errno == EAGAIN, "commit: %s", strerror(errno));
	}
	CHECK(tries == 0, "retry needed %u more attempts", tries);
	CHECK(read_is(b, XBT_NULL, "/test/tx/b", "2", 0), "committed value");

	t = xs_transaction_start(a);
	CHECK(xs_write(a, t, "/test/tx/c", "x", 1), "write c in tx");
	CHECK(xs_transaction_end(a, t, true), "abort");
	CHECK(read_is(a, XBT_NULL, "/test/tx/c", NULL, ENOENT),
	      "aborted write is gone");
	errno = 0;
	CHECK(!xs_transaction_end(a, t, false) && errno == ENOENT,
	      "ending a finished transaction: %s", strerror(errno));
}

static void test_watches(struct xs_handle *a, struct xs_handle *b)
{
	xs_transaction_t t;

	CHECK(xs_watch(a, "/test/w", "tok"), "watch: %s", strerror(errno));
	expect_event(a, "/test/w", "tok");	/* fired once up front */
	CHECK(xs_write(b, XBT_NULL, "/test/w/x", "1", 1), "write w/x");
	expect_event(a, "/test/w/x", "tok");
	t = xs_transaction_start(b);
	CHECK(xs_write(b, t, "/test/w/y", "2", 1), "write w/y in tx");
	CHECK(xs_transaction_end(b, t, false), "commit");
	/* the commit changed w/y and w (a new child), in that order */
	expect_event(a, "/test/w/y", "tok");
	expect_event(a, "/test/w", "tok");
	CHECK(xs_rm(b, XBT_NULL, "/test/w"), "rm w");
	expect_event(a, "/test/w", "tok");
	CHECK(xs_unwatch(a, "/test/w", "tok"), "unwatch: %s",
	      strerror(errno));
	errno = 0;
	CHECK(!xs_unwatch(a, "/test/w", "tok") && errno == ENOENT,
	      "second unwatch: %s", strerror(errno));
}

/* 200 names of 43 bytes: more than one message, so libxenstore gets
 * E2BIG for XS_DIRECTORY and pages with XS_DIRECTORY_PART. */
static void test_big_directory(struct xs_handle *a)
{
	unsigned int i, n;
	char path[96], **list;

	for (i = 0; i < 200; i++) {
		snprintf(path, sizeof(path),
			 "/test/big/child-with-a-rather-long-name-%03u", i);
		CHECK(xs_write(a, XBT_NULL, path, "", 0), "write %s", path);
	}
	list = xs_directory(a, XBT_NULL, "/test/big", &n);
	CHECK(list && n == 200, "directory: %u entries (%s)", list ? n : 0,
	      list ? "" : strerror(errno));
	for (i = 0; list && i < n && i < 200; i++) {
		snprintf(path, sizeof(path),
			 "child-with-a-rather-long-name-%03u", i);
		CHECK(strcmp(list[i], path) == 0, "entry %u is %s", i,
		      list[i]);
	}
	free(list);
	CHECK(xs_rm(a, XBT_NULL, "/test/big"), "rm big");
}

static void test_domu(struct xs_handle *h0, struct xs_handle *hu,
		      unsigned int domid)
{
	struct xs_permissions own = { .id = domid, .perms = XS_PERM_NONE };
	struct xs_permissions give = { .id = 0, .perms = XS_PERM_NONE };
	char base[64], path[96], *v;
	xs_transaction_t t;

	/* the toolstack gives the guest a directory of its own */
	snprintf(base, sizeof(base), "/local/domain/%u/xsclient", domid);
	CHECK(xs_mkdir(h0, XBT_NULL, base), "mkdir %s", base);
	CHECK(xs_set_permissions(h0, XBT_NULL, base, &own, 1), "chown");

	/* relative paths are under /local/domain/<domid>/ */
	CHECK(xs_write(hu, XBT_NULL, "xsclient/rel", "r", 1),
	      "relative write: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/rel", base);
	CHECK(read_is(h0, XBT_NULL, path, "r", 0), "relative write landed");
	v = xs_get_domain_path(hu, domid);
	snprintf(path, sizeof(path), "/local/domain/%u", domid);
	CHECK(v && strcmp(v, path) == 0, "domain path %s", v ? v : "-");
	free(v);

	/* dom0's area: denied, and no leak of what exists there */
	CHECK(read_is(hu, XBT_NULL, "/local/domain/0", NULL, EACCES),
	      "domU reads dom0's directory");
	CHECK(read_is(hu, XBT_NULL, "/local/domain/0/nothing", NULL, EACCES),
	      "domU probes dom0's area");
	errno = 0;
	CHECK(!xs_write(hu, XBT_NULL, "/tool/x", "1", 1) && errno == EACCES,
	      "domU writes /tool: %s", strerror(errno));
	errno = 0;
	snprintf(path, sizeof(path), "%s/rel", base);
	CHECK(!xs_set_permissions(hu, XBT_NULL, path, &give, 1) &&
	      errno == EPERM, "domU gives its node away: %s",
	      strerror(errno));
	errno = 0;
	CHECK(!xs_is_domain_introduced(hu, 0) && errno == EACCES,
	      "domU uses a privileged request: %s", strerror(errno));
	CHECK(xs_is_domain_introduced(h0, domid), "domU is introduced");
	CHECK(!xs_is_domain_introduced(h0, 999), "999 is not");

	t = xs_transaction_start(hu);
	CHECK(t != XBT_NULL, "domU transaction: %s", strerror(errno));
	CHECK(xs_write(hu, t, "xsclient/in-tx", "t", 1), "write in tx");
	CHECK(xs_transaction_end(hu, t, false), "domU commit: %s",
	      strerror(errno));
	CHECK(xs_rm(h0, XBT_NULL, base), "rm %s", base);
}

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || strlen(path) >= sizeof(sa.sun_path))
		exit(1);
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "t-xsclient: connect %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
	return fd;
}

static bool send_all(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len) == (ssize_t)len;
}

/* Read exactly @len bytes within 5 seconds; 0 on EOF. */
static ssize_t recv_all(int fd, void *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		if (poll(&pfd, 1, 5000) != 1)
			return -1;
		n = read(fd, (char *)buf + got, len - got);
		if (n <= 0)
			return n;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* A request by hand; the reply must be an XS_ERROR with @err. */
static void expect_error(int fd, const struct xsd_sockmsg *req,
			 const char *body, const char *err)
{
	struct xsd_sockmsg rep;
	char buf[32] = "";

	CHECK(send_all(fd, req, sizeof(*req)) &&
	      send_all(fd, body, req->len), "send");
	CHECK(recv_all(fd, &rep, sizeof(rep)) == sizeof(rep), "no reply");
	CHECK(rep.type == XS_ERROR && rep.req_id == req->req_id &&
	      rep.len < sizeof(buf), "reply type %u len %u", rep.type,
	      rep.len);
	if (rep.len >= sizeof(buf))
		return;
	CHECK(recv_all(fd, buf, rep.len) == (ssize_t)rep.len, "short reply");
	CHECK(strcmp(buf, err) == 0, "error %s, want %s", buf, err);
}

static void test_malformed(const char *sock, struct xs_handle *a)
{
	struct xsd_sockmsg m = { .type = 999, .req_id = 7 };
	char c;
	int fd;

	fd = raw_connect(sock);
	expect_error(fd, &m, "", "ENOSYS");	/* unknown type */
	m = (struct xsd_sockmsg){ .type = XS_READ, .req_id = 8, .len = 3 };
	expect_error(fd, &m, "abc", "EINVAL");	/* no terminating NUL */
	m = (struct xsd_sockmsg){ .type = XS_READ, .req_id = 9, .len = 6,
				  .tx_id = 12345 };
	expect_error(fd, &m, "/tool", "ENOENT"); /* no such transaction */
	/* too long: the server hangs up on this connection only */
	m = (struct xsd_sockmsg){ .type = XS_WRITE,
				  .len = XENSTORE_PAYLOAD_MAX + 1 };
	CHECK(send_all(fd, &m, sizeof(m)), "send");
	CHECK(recv_all(fd, &c, 1) == 0, "oversized message not refused");
	close(fd);
	CHECK(read_is(a, XBT_NULL, "/test/tx/b", "2", 0),
	      "server still serves others");
}

int main(int argc, char **argv)
{
	struct xs_handle *a, *b, *u;
	unsigned int domid;

	if (argc != 4) {
		fprintf(stderr, "usage: t-xsclient DOM0SOCK DOMUSOCK DOMID\n");
		return 2;
	}
	domid = (unsigned int)atoi(argv[3]);
	alarm(60);	/* xs_read_watch blocks: never hang the test suite */
	a = open_at(argv[1]);
	b = open_at(argv[1]);
	u = open_at(argv[2]);
	test_transactions(a, b);
	test_watches(a, b);
	test_big_directory(a);
	test_domu(a, u, domid);
	test_malformed(argv[1], a);
	CHECK(xs_rm(a, XBT_NULL, "/test"), "rm /test");
	xs_close(u);
	xs_close(b);
	xs_close(a);
	printf("t-xsclient: %s (%d failed checks)\n",
	       failures ? "FAIL" : "PASS", failures);
	return failures ? 1 : 0;
}
