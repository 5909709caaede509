// SPDX-License-Identifier: MIT
/*
 * XenBus on top of the xenstore client: paths, one end of a device (one
 * writer of our state, one dispatcher of the peer's), and the negotiation
 * helpers. Everything the peer wrote is parsed with range checks.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pvio/base.h>

#include "private.h"

struct pvio_xenbus {
	struct pvio_xs *xs;
	char path[PVIO_XS_PATH_MAX];
	char other[PVIO_XS_PATH_MAX];
	char other_state_path[PVIO_XS_PATH_MAX + 8];
	unsigned int other_id;
	enum pvio_xb_state state;
	bool backend;		/* our end is a backend (other end "frontend") */
	int watch;
	pvio_xb_changed_fn changed;
	pvio_xb_trace_fn trace;
	void *opaque;
	char last_error[256];
};

const char *pvio_xb_state_name(enum pvio_xb_state s)
{
	static const char *const names[] = {
		"Unknown", "Initialising", "InitWait", "Initialised",
		"Connected", "Closing", "Closed", "Reconfiguring",
		"Reconfigured",
	};

	return (unsigned int)s < sizeof(names) / sizeof(names[0]) ? names[s]
								   : "invalid";
}

int pvio_xb_backend_path(char *buf, unsigned int be, const char *type,
			 unsigned int fe, unsigned int devid)
{
	int n = snprintf(buf, PVIO_XS_PATH_MAX, "/local/domain/%u/backend/%s/%u/%u",
			 be, type, fe, devid);

	return n > 0 && n < PVIO_XS_PATH_MAX ? 0 : -ENAMETOOLONG;
}

int pvio_xb_frontend_path(char *buf, unsigned int fe, const char *type,
			  unsigned int devid)
{
	int n = snprintf(buf, PVIO_XS_PATH_MAX, "/local/domain/%u/device/%s/%u",
			 fe, type, devid);

	return n > 0 && n < PVIO_XS_PATH_MAX ? 0 : -ENAMETOOLONG;
}

/* A state node as the protocol means it: Unknown, absent or garbage all
 * read as Closed (there is nobody to talk to). */
static enum pvio_xb_state read_state(struct pvio_xs *x, const char *path)
{
	unsigned long v;

	if (pvio_xs_read_uint(x, 0, path, PVIO_XB_INITIALISING,
			      PVIO_XB_RECONFIGURED, &v))
		return PVIO_XB_CLOSED;
	return (enum pvio_xb_state)v;
}

static void other_state_fired(struct pvio_xs *x, const char *path,
			      void *opaque)
{
	struct pvio_xenbus *xb = opaque;

	/* the dispatcher reads the node itself: a duplicated or late event
	 * sees the current value */
	xb->changed(xb, read_state(x, xb->other_state_path), xb->opaque);
}

/* "/local/domain/<id>/..." and <id> is the one the other-id node names. */
static bool path_of_domain(const char *path, unsigned int id)
{
	char prefix[40];
	int n = snprintf(prefix, sizeof(prefix), "/local/domain/%u/", id);

	return strncmp(path, prefix, (size_t)n) == 0 && path[n] &&
	       !strstr(path, "/../") && !strstr(path, "//");
}

int pvio_xenbus_open(struct pvio_xenbus **out, struct pvio_xs *x,
		     const char *path, const char *other_key,
		     const char *other_id_key, pvio_xb_changed_fn changed,
		     void *opaque)
{
	char key[PVIO_XS_PATH_MAX + 32], *other = NULL;
	struct pvio_xenbus *xb;
	unsigned long id, st;
	int rc;

	*out = NULL;
	if (strlen(path) >= PVIO_XS_PATH_MAX)
		return -ENAMETOOLONG;
	xb = calloc(1, sizeof(*xb));
	if (!xb)
		return -ENOMEM;
	xb->xs = x;
	xb->backend = strcmp(other_key, "frontend") == 0;
	xb->changed = changed;
	xb->opaque = opaque;
	snprintf(xb->path, sizeof(xb->path), "%s", path);

	snprintf(key, sizeof(key), "%s/%s", path, other_id_key);
	rc = pvio_xs_read_uint(x, 0, key, 0, 0x7fef, &id);
	if (rc)
		goto fail;
	snprintf(key, sizeof(key), "%s/%s", path, other_key);
	rc = pvio_xs_read(x, 0, key, &other);
	if (rc < 0)
		goto fail;
	if (strlen(other) >= sizeof(xb->other) ||
	    !path_of_domain(other, (unsigned int)id)) {
		free(other);
		rc = -EINVAL;
		goto fail;
	}
	snprintf(xb->other, sizeof(xb->other), "%s", other);
	free(other);
	xb->other_id = (unsigned int)id;
	snprintf(xb->other_state_path, sizeof(xb->other_state_path), "%s/state",
		 xb->other);
	snprintf(key, sizeof(key), "%s/state", path);
	rc = pvio_xs_read_uint(x, 0, key, 0, PVIO_XB_RECONFIGURED, &st);
	xb->state = rc ? PVIO_XB_UNKNOWN : (enum pvio_xb_state)st;
	rc = pvio_xs_watch(x, xb->other_state_path, other_state_fired, xb);
	if (rc < 0)
		goto fail;
	xb->watch = rc;
	*out = xb;
	return 0;
fail:
	free(xb);
	return rc;
}

void pvio_xenbus_close(struct pvio_xenbus *xb)
{
	if (!xb)
		return;
	if (xb->watch > 0)
		pvio_xs_unwatch(xb->xs, xb->watch);
	free(xb);
}

void pvio_xenbus_set_trace(struct pvio_xenbus *xb, pvio_xb_trace_fn fn)
{
	xb->trace = fn;
}

const char *pvio_xenbus_path(const struct pvio_xenbus *xb)
{
	return xb->path;
}

const char *pvio_xenbus_otherend(const struct pvio_xenbus *xb)
{
	return xb->other;
}

unsigned int pvio_xenbus_otherend_id(const struct pvio_xenbus *xb)
{
	return xb->other_id;
}

enum pvio_xb_state pvio_xenbus_state(const struct pvio_xenbus *xb)
{
	return xb->state;
}

enum pvio_xb_state pvio_xenbus_other_state(struct pvio_xenbus *xb)
{
	return read_state(xb->xs, xb->other_state_path);
}

struct pvio_xs *pvio_xenbus_xs(const struct pvio_xenbus *xb)
{
	return xb->xs;
}

int pvio_xenbus_wait_other(struct pvio_xenbus *xb, unsigned int mask,
			   unsigned int timeout_ms, enum pvio_xb_state *last)
{
	uint64_t deadline = pvio_now_ms() + timeout_ms;

	for (;;) {
		uint64_t now;

		*last = pvio_xenbus_other_state(xb);
		if (mask & (1u << *last))
			return 0;
		now = pvio_now_ms();
		if (now >= deadline)
			return -ETIMEDOUT;
		pvio_xs_pump(xb->xs, deadline - now < 50 ? (int)(deadline - now)
							  : 50);
	}
}

#define M(s)	(1u << PVIO_XB_##s)

int pvio_xenbus_frontend_close(struct pvio_xenbus *xb, unsigned int timeout_ms)
{
	enum pvio_xb_state me = xb->state, be;
	int rc = 0;

	if (me != PVIO_XB_CLOSED && me != PVIO_XB_UNKNOWN &&
	    me != PVIO_XB_INITIALISING) {
		if (me != PVIO_XB_CLOSING)
			pvio_xenbus_switch(xb, PVIO_XB_CLOSING);
		rc = pvio_xenbus_wait_other(xb, M(CLOSING) | M(CLOSED),
					    timeout_ms, &be);
	}
	if (pvio_xenbus_switch(xb, PVIO_XB_CLOSED) == 0 && !rc)
		rc = pvio_xenbus_wait_other(xb, M(CLOSED) | M(INITWAIT) |
					    M(INITIALISING), timeout_ms, &be);
	return rc;
}

/*
 * Is the directory, read in @tx, another instance than the one we opened?
 * The toolstack writes state Initialising when it creates a device and
 * never again; a backend past it finds Initialising there only if the
 * directory was removed and written anew (detach; attach NEW.img between
 * two scans). Our writes must not land in that one: they would erase the
 * one sign of it, and the old instance (its old target) would serve the
 * new one's frontend.
 */
static bool other_instance(struct pvio_xenbus *xb, pvio_xs_tx_t tx)
{
	char path[PVIO_XS_PATH_MAX + 16];
	unsigned long v;

	if (!xb->backend || xb->state == PVIO_XB_INITIALISING ||
	    xb->state == PVIO_XB_UNKNOWN)
		return false;
	snprintf(path, sizeof(path), "%s/state", xb->path);
	return pvio_xs_read_uint(xb->xs, tx, path, 0, PVIO_XB_RECONFIGURED,
				 &v) == 0 && v == PVIO_XB_INITIALISING;
}

/*
 * Write @key of our directory only while the directory exists and is
 * still the instance we opened, checked and written in one transaction (a
 * check then a write let the toolstack act in between): a device the
 * toolstack removed must not come back to life (an empty directory
 * holding our state or error node) because we wrote to it just after the
 * removal, nor may we write into its re-created successor.
 */
static int write_existing(struct pvio_xenbus *xb, const char *key,
			  const char *val)
{
	char path[PVIO_XS_PATH_MAX + 16];
	pvio_xs_tx_t tx;
	int rc, tries = 0;

	snprintf(path, sizeof(path), "%s/%s", xb->path, key);
	do {
		rc = pvio_xs_tx_start(xb->xs, &tx);
		if (rc)
			return rc;
		if (!pvio_xs_exists(xb->xs, tx, xb->path)) {
			pvio_xs_tx_end(xb->xs, tx, true);
			return -ENOENT;
		}
		if (other_instance(xb, tx)) {
			pvio_xs_tx_end(xb->xs, tx, true);
			return -ESTALE;
		}
		rc = pvio_xs_write(xb->xs, tx, path, val);
		if (rc) {
			pvio_xs_tx_end(xb->xs, tx, true);
			return rc;
		}
		rc = pvio_xs_tx_end(xb->xs, tx, false);
	} while (rc == -EAGAIN && ++tries < 100);
	return rc;
}

int pvio_xenbus_write(struct pvio_xenbus *xb, const char *key,
		      const char *val)
{
	return write_existing(xb, key, val);
}

int pvio_xenbus_switch(struct pvio_xenbus *xb, enum pvio_xb_state s)
{
	enum pvio_xb_state old = xb->state;
	char val[16];
	int rc;

	if (s == old)
		return 0;
	snprintf(val, sizeof(val), "%d", (int)s);
	rc = write_existing(xb, "state", val);
	if (rc)
		return rc;
	xb->state = s;
	if (xb->trace)
		xb->trace(xb, old, s, xb->opaque);
	return 0;
}

int pvio_xenbus_touch(struct pvio_xenbus *xb)
{
	char val[16];

	snprintf(val, sizeof(val), "%d", (int)xb->state);
	return write_existing(xb, "state", val);
}

int pvio_xenbus_fatal(struct pvio_xenbus *xb, int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	n = snprintf(xb->last_error, sizeof(xb->last_error), "%d ",
		     err < 0 ? -err : err);
	va_start(ap, fmt);
	vsnprintf(xb->last_error + n, sizeof(xb->last_error) - (size_t)n, fmt,
		  ap);
	va_end(ap);
	write_existing(xb, "error", xb->last_error);
	pvio_xenbus_switch(xb, PVIO_XB_CLOSING);
	return err;
}

const char *pvio_xenbus_last_error(const struct pvio_xenbus *xb)
{
	return xb->last_error;
}

int pvio_xenbus_read_other_uint(struct pvio_xenbus *xb, const char *key,
				unsigned long min, unsigned long max,
				unsigned long dflt, bool required,
				unsigned long *out)
{
	char path[2 * PVIO_XS_PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", xb->other, key);
	if (required)
		return pvio_xs_read_uint(xb->xs, 0, path, min, max, out);
	return pvio_xs_read_uint_default(xb->xs, 0, path, min, max, dflt, out);
}

/* ---- negotiation ------------------------------------------------------------------ */

#define XB_MAX_PORT	((1u << 17) - 1)	/* FIFO event channels */

int pvio_xb_read_ring(struct pvio_xs *x, const char *dir, const char *order_dir,
		      unsigned int max_order, pvio_gref_t *refs,
		      const char *evtchn_key, pvio_port_t *port)
{
	char key[2 * PVIO_XS_PATH_MAX];
	unsigned long order, v;
	unsigned int i, n;
	int rc;

	if (max_order > 4)
		return -EINVAL;
	snprintf(key, sizeof(key), "%s/ring-page-order", order_dir);
	rc = pvio_xs_read_uint(x, 0, key, 0, max_order, &order);
	if (rc == -ENOENT) {
		/* a single page: "ring-ref" */
		snprintf(key, sizeof(key), "%s/ring-ref", dir);
		rc = pvio_xs_read_uint(x, 0, key, 0, UINT32_MAX, &v);
		if (rc)
			return rc;
		refs[0] = (pvio_gref_t)v;
		n = 1;
	} else if (rc) {
		return rc;	/* above what we offered, or garbage */
	} else {
		n = 1u << order;
		for (i = 0; i < n; i++) {
			snprintf(key, sizeof(key), "%s/ring-ref%u", dir, i);
			rc = pvio_xs_read_uint(x, 0, key, 0, UINT32_MAX, &v);
			if (rc)
				return rc;
			refs[i] = (pvio_gref_t)v;
		}
	}
	snprintf(key, sizeof(key), "%s/%s", dir,
		 evtchn_key ? evtchn_key : "event-channel");
	rc = pvio_xs_read_uint(x, 0, key, 1, XB_MAX_PORT, &v);
	if (rc)
		return rc;
	*port = (pvio_port_t)v;
	return (int)n;
}

int pvio_xb_read_protocol(struct pvio_xs *x, const char *dir)
{
	char key[2 * PVIO_XS_PATH_MAX], *v = NULL;
	int rc;

	snprintf(key, sizeof(key), "%s/protocol", dir);
	rc = pvio_xs_read(x, 0, key, &v);
	if (rc == -ENOENT)
		return PVIO_XB_PROTO_NATIVE;	/* as QEMU: absent is native */
	if (rc < 0)
		return rc;
#if defined(__x86_64__)
	rc = strcmp(v, "x86_64-abi") == 0 ? PVIO_XB_PROTO_NATIVE
					   : -EPROTONOSUPPORT;
#elif defined(__aarch64__)
	rc = strcmp(v, "arm-abi") == 0 ? PVIO_XB_PROTO_NATIVE
					: -EPROTONOSUPPORT;
#else
	rc = -EPROTONOSUPPORT;
#endif
	free(v);
	return rc;
}

int pvio_xb_read_queues(struct pvio_xs *x, const char *dir, unsigned int max,
			unsigned int *nr)
{
	char key[2 * PVIO_XS_PATH_MAX];
	unsigned long v;
	int rc;

	snprintf(key, sizeof(key), "%s/multi-queue-num-queues", dir);
	rc = pvio_xs_read_uint_default(x, 0, key, 1, max, 1, &v);
	if (!rc)
		*nr = (unsigned int)v;
	return rc;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int pvio_xb_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned int i;

	if (strlen(s) != 17)
		return -EINVAL;
	for (i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -EINVAL;
		mac[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}
