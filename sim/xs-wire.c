// SPDX-License-Identifier: MIT
/*
 * The sim world's xenstore: one xs_wire.h request -> one reply, around the
 * pure engine of xs-store.c. No sockets and no I/O (simxs.c reads and
 * writes the messages): every byte of a request comes from a client that
 * may be a hostile guest, so every argument is checked here before the
 * engine sees it. fuzz/fuzz-xs-wire.c drives it directly.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xen/io/xs_wire.h>

#include "util.h"
#include "xs-store.h"
#include "xs-wire.h"

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

/* Who asks: the engine's connection, its domain, the message's header. */
struct sx_req {
	struct xs_store *store;
	struct xs_conn *xc;
	unsigned int domid;
	struct xsd_sockmsg hdr;
};

typedef int (*sx_op_fn)(struct sx_req *c, char *b, unsigned int len,
			struct xs_wire_reply *r);

static int reply_ok(struct xs_wire_reply *r)
{
	r->data = "OK";
	r->len = sizeof("OK");
	return 0;
}

static int reply_str(struct xs_wire_reply *r, const char *s)
{
	r->data = s;
	r->len = (unsigned int)strlen(s) + 1;
	return 0;
}

static int reply_heap(struct xs_wire_reply *r, int rc)
{
	r->data = r->heap;
	return rc;
}

/* The whole payload is one NUL-terminated string. */
static const char *one_arg(const char *b, unsigned int len)
{
	return len && memchr(b, 0, len) == b + len - 1 ? b : NULL;
}

/* The whole payload is exactly @n NUL-terminated strings. */
static int args(const char *b, unsigned int len, const char **v,
		unsigned int n)
{
	unsigned int i = 0, off = 0;

	if (!len || b[len - 1])
		return -EINVAL;
	while (off < len) {
		if (i == n)
			return -EINVAL;
		v[i++] = b + off;
		off += (unsigned int)strlen(b + off) + 1;
	}
	return i == n ? 0 : -EINVAL;
}

/* The first string and what follows it (binary data). */
static int split(const char *b, unsigned int len, unsigned int *rest)
{
	const char *nul = memchr(b, 0, len);

	if (!nul)
		return -EINVAL;
	*rest = (unsigned int)(nul - b) + 1;
	return 0;
}

static int parse_domid(const char *s, unsigned int *domid)
{
	return s ? pvio_parse_uint(s, 0, PVIO_XS_MAX_DOMID, domid) : -EINVAL;
}

static int op_read(struct sx_req *c, char *b, unsigned int len,
		   struct xs_wire_reply *r)
{
	return reply_heap(r, pvio__xs_read(c->xc, c->hdr.tx_id,
					   one_arg(b, len), &r->heap,
					   &r->len));
}

static int op_write(struct sx_req *c, char *b, unsigned int len,
		    struct xs_wire_reply *r)
{
	unsigned int off;
	int rc = split(b, len, &off);

	if (!rc)
		rc = pvio__xs_write(c->xc, c->hdr.tx_id, b, b + off,
				    len - off);
	return rc ? rc : reply_ok(r);
}

static int op_mkdir(struct sx_req *c, char *b, unsigned int len,
		    struct xs_wire_reply *r)
{
	int rc = pvio__xs_mkdir(c->xc, c->hdr.tx_id, one_arg(b, len));

	return rc ? rc : reply_ok(r);
}

static int op_rm(struct sx_req *c, char *b, unsigned int len,
		 struct xs_wire_reply *r)
{
	int rc = pvio__xs_rm(c->xc, c->hdr.tx_id, one_arg(b, len));

	return rc ? rc : reply_ok(r);
}

/* A list longer than a message is E2BIG: libxenstore then pages it. */
static int op_directory(struct sx_req *c, char *b, unsigned int len,
			struct xs_wire_reply *r)
{
	return reply_heap(r, pvio__xs_directory(c->xc, c->hdr.tx_id,
						one_arg(b, len), &r->heap,
						&r->len));
}

static int op_directory_part(struct sx_req *c, char *b, unsigned int len,
			     struct xs_wire_reply *r)
{
	const char *v[2];
	unsigned int off;
	int rc;

	rc = args(b, len, v, 2);
	if (!rc)
		rc = pvio_parse_uint(v[1], 0, UINT32_MAX, &off);
	if (rc)
		return -EINVAL;
	return reply_heap(r, pvio__xs_directory_part(c->xc, c->hdr.tx_id,
						     v[0], off,
						     XENSTORE_PAYLOAD_MAX,
						     &r->heap, &r->len));
}

static int op_get_perms(struct sx_req *c, char *b, unsigned int len,
			struct xs_wire_reply *r)
{
	return reply_heap(r, pvio__xs_get_perms(c->xc, c->hdr.tx_id,
						one_arg(b, len), &r->heap,
						&r->len));
}

static int op_set_perms(struct sx_req *c, char *b, unsigned int len,
			struct xs_wire_reply *r)
{
	unsigned int off;
	int rc = split(b, len, &off);

	if (!rc)
		rc = pvio__xs_set_perms(c->xc, c->hdr.tx_id, b, b + off,
					len - off);
	return rc ? rc : reply_ok(r);
}

static int op_watch(struct sx_req *c, char *b, unsigned int len,
		    struct xs_wire_reply *r)
{
	const char *v[2];
	int rc = args(b, len, v, 2);

	if (!rc)
		rc = pvio__xs_watch(c->xc, v[0], v[1]);
	return rc ? rc : reply_ok(r);
}

static int op_unwatch(struct sx_req *c, char *b, unsigned int len,
		      struct xs_wire_reply *r)
{
	const char *v[2];
	int rc = args(b, len, v, 2);

	if (!rc)
		rc = pvio__xs_unwatch(c->xc, v[0], v[1]);
	return rc ? rc : reply_ok(r);
}

static int op_tx_start(struct sx_req *c, char *b, unsigned int len,
		       struct xs_wire_reply *r)
{
	uint32_t id;
	int rc;

	if (c->hdr.tx_id)	/* no nesting */
		return -EBUSY;
	rc = pvio__xs_tx_start(c->xc, &id);
	if (rc)
		return rc;
	snprintf(r->buf, sizeof(r->buf), "%u", id);
	return reply_str(r, r->buf);
}

static int op_tx_end(struct sx_req *c, char *b, unsigned int len,
		     struct xs_wire_reply *r)
{
	const char *arg = one_arg(b, len);
	int rc;

	if (!arg || (strcmp(arg, "T") != 0 && strcmp(arg, "F") != 0))
		return -EINVAL;
	rc = pvio__xs_tx_end(c->xc, c->hdr.tx_id, arg[0] == 'T');
	return rc ? rc : reply_ok(r);
}

static int op_domain_path(struct sx_req *c, char *b, unsigned int len,
			  struct xs_wire_reply *r)
{
	unsigned int domid;
	int n;

	if (parse_domid(one_arg(b, len), &domid))
		return -EINVAL;
	n = pvio__xs_domain_path(domid, r->buf, sizeof(r->buf));
	return n < 0 ? -EINVAL : reply_str(r, r->buf);
}

static int op_is_introduced(struct sx_req *c, char *b, unsigned int len,
			    struct xs_wire_reply *r)
{
	unsigned int domid;

	if (parse_domid(one_arg(b, len), &domid))
		return -EINVAL;
	return reply_str(r, pvio__xs_domain_introduced(c->store, domid) ?
			 "T" : "F");
}

/*
 * Domains come and go with simhv, not with these: introducing a domain
 * simhv already introduced is fine (a toolstack's xs_introduce_domain),
 * anything else is EINVAL.
 */
static int op_introduce(struct sx_req *c, char *b, unsigned int len,
			struct xs_wire_reply *r)
{
	unsigned int domid;

	if (!len || b[len - 1] || parse_domid(b, &domid) ||
	    !pvio__xs_domain_introduced(c->store, domid))
		return -EINVAL;
	return reply_ok(r);
}

static int op_release(struct sx_req *c, char *b, unsigned int len,
		      struct xs_wire_reply *r)
{
	unsigned int domid;

	if (parse_domid(one_arg(b, len), &domid) ||
	    pvio__xs_domain_introduced(c->store, domid))
		return -EINVAL;
	return reply_ok(r);	/* already gone */
}

static int op_reset_watches(struct sx_req *c, char *b, unsigned int len,
			    struct xs_wire_reply *r)
{
	pvio__xs_reset(c->xc);
	return reply_ok(r);
}

/* XS_CONTROL (XS_DEBUG): "print <text>" logs, "help" lists. */
static int op_control(struct sx_req *c, char *b, unsigned int len,
		      struct xs_wire_reply *r)
{
	unsigned int off;

	if (split(b, len, &off))
		return -EINVAL;
	if (strcmp(b, "help") == 0)
		return reply_str(r, "help\nprint <text>\n");
	if (strcmp(b, "print") != 0)
		return -EINVAL;
	/* the text: up to its NUL or the end of the payload */
	log_info("xenstore control: %.*s", (int)strnlen(b + off, len - off),
		 b + off);
	return reply_ok(r);
}

static int op_unsupported(struct sx_req *c, char *b, unsigned int len,
			  struct xs_wire_reply *r)
{
	return -ENOSYS;
}

#define SX_PRIV		1u	/* domain 0 only */
#define SX_NOTID	2u	/* tx_id is ignored */

static const struct {
	sx_op_fn fn;
	unsigned int flags;
} sx_ops[XS_TYPE_COUNT] = {
	[XS_CONTROL] = { op_control, SX_PRIV },
	[XS_DIRECTORY] = { op_directory, 0 },
	[XS_READ] = { op_read, 0 },
	[XS_GET_PERMS] = { op_get_perms, 0 },
	[XS_WATCH] = { op_watch, SX_NOTID },
	[XS_UNWATCH] = { op_unwatch, SX_NOTID },
	[XS_TRANSACTION_START] = { op_tx_start, 0 },
	[XS_TRANSACTION_END] = { op_tx_end, 0 },
	[XS_INTRODUCE] = { op_introduce, SX_PRIV },
	[XS_RELEASE] = { op_release, SX_PRIV },
	[XS_GET_DOMAIN_PATH] = { op_domain_path, 0 },
	[XS_WRITE] = { op_write, 0 },
	[XS_MKDIR] = { op_mkdir, 0 },
	[XS_RM] = { op_rm, 0 },
	[XS_SET_PERMS] = { op_set_perms, 0 },
	[XS_IS_DOMAIN_INTRODUCED] = { op_is_introduced, SX_PRIV },
	[XS_RESUME] = { op_unsupported, SX_PRIV },
	[XS_SET_TARGET] = { op_unsupported, SX_PRIV },
	[XS_RESET_WATCHES] = { op_reset_watches, 0 },
	[XS_DIRECTORY_PART] = { op_directory_part, 0 },
};

static const char *sx_errstr(int err)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(xsd_errors); i++)
		if (xsd_errors[i].errnum == err)
			return xsd_errors[i].errstring;
	return "EINVAL";	/* as xenstored does with the untranslatable */
}

void pvio__xs_wire_handle(struct xs_store *s, struct xs_conn *xc,
			  const struct xsd_sockmsg *h, char *body,
			  struct xs_wire_reply *r)
{
	struct sx_req c = { .store = s, .xc = xc,
			    .domid = pvio__xs_conn_domid(xc), .hdr = *h };
	const char *err;
	uint32_t type = h->type;
	int rc;

	memset(r, 0, sizeof(*r));
	if (type >= XS_TYPE_COUNT || !sx_ops[type].fn)
		rc = -ENOSYS;
	else if ((sx_ops[type].flags & SX_PRIV) &&
		 c.domid != PVIO_XS_PRIV_DOMID)
		rc = -EACCES;
	else if (!(sx_ops[type].flags & SX_NOTID) &&
		 pvio__xs_tx_check(xc, h->tx_id))
		rc = -ENOENT;
	else
		rc = sx_ops[type].fn(&c, body, h->len, r);
	if (!rc && r->len > XENSTORE_PAYLOAD_MAX)
		rc = -E2BIG;
	if (rc) {
		err = sx_errstr(-rc);
		type = XS_ERROR;
		r->data = err;
		r->len = (unsigned int)strlen(err) + 1;
	}
	r->type = type;
}
