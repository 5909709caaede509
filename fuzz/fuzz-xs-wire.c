// SPDX-License-Identifier: MIT
/*
 * The sim world's xenstore as a guest reaches it: xs_wire.h messages
 * (sim/xs-wire.c) into the engine (sim/xs-store.c), from dom0 and two
 * unprivileged domains, with their connections coming and going, domains
 * released and introduced again (a guest's death), and watch events
 * popped in between. Small limits, so that quotas are reached.
 *
 * Invariants: every request gets one reply, of its own type or XS_ERROR
 * with an xsd_errors name; no reply is longer than a message; pending
 * events stay under their cap; nothing leaks (LeakSanitizer) and nothing
 * is used after it is freed (the store is freed at the end of each input).
 *
 * Input: records of a selector byte (which connection, or a world event),
 * a type, a transaction id, then the body: raw bytes (a length, then that
 * many), or, when the type's top bit is set, a message built from a few
 * paths, values, tokens and permission lists, so that requests meet on the
 * same nodes (a use-after-free in xs-store.c needed six related requests).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

#include <xen/io/xs_wire.h>

#include "util.h"
#include "xs-store.h"
#include "xs-wire.h"
#include "fuzz.h"

#define NCONN	4	/* dom0, dom1, dom2, another dom1 */

static const char *const paths[] = {
	"data/p", "data/p/c", "data/p/x", "data/p/c/d", "data/q", "device/s",
	"/local/domain/1/data/p", "/local/domain/1/data/p/c",
	"/local/domain/2/data/p", "/local/domain/1", "/local/domain", "/",
	"/tool/x", "@introduceDomain", "@releaseDomain", "data/p/", "p", "",
};
#define PERM(s)	{ s, sizeof(s) }	/* with every NUL, the last one too */
static const struct { const char *s; unsigned int len; } perms[] = {
	PERM("n0"), PERM("r1"), PERM("b2"), PERM("n1\0r2"),
	PERM("w0\0b1\0n2"), PERM("n5"), PERM("x1"),
};

/* A message of @type built from the tables: its body's length. */
static unsigned int structured(struct fz *f, uint32_t type, char *b)
{
	const char *p = paths[fz_u8(f) % (sizeof(paths) / sizeof(paths[0]))];
	unsigned int n = (unsigned int)strlen(p) + 1, v;

	memcpy(b, p, n);
	switch (type) {
	case XS_WRITE:		/* a value of up to 15 bytes */
		v = fz_u8(f) & 15;
		fz_bytes(f, b + n, v);
		return n + v;
	case XS_WATCH:
	case XS_UNWATCH:	/* a token */
		b[n] = (char)('a' + (fz_u8(f) & 3));
		b[n + 1] = 0;
		return n + 2;
	case XS_SET_PERMS:
		v = fz_u8(f) % (sizeof(perms) / sizeof(perms[0]));
		memcpy(b + n, perms[v].s, perms[v].len);
		return n + perms[v].len;
	case XS_TRANSACTION_END:
		memcpy(b, fz_u8(f) & 1 ? "T" : "F", 2);
		return 2;
	case XS_TRANSACTION_START:
		b[0] = 0;
		return 1;
	case XS_DIRECTORY_PART:
		b[n] = (char)('0' + (fz_u8(f) & 7));
		b[n + 1] = 0;
		return n + 2;
	default:
		return n;
	}
}

static const unsigned int conn_dom[NCONN] = { 0, 1, 2, 1 };

static void check_reply(const struct xsd_sockmsg *h,
			const struct xs_wire_reply *r)
{
	FZ_CHECK(r->len <= XENSTORE_PAYLOAD_MAX);
	FZ_CHECK(r->len == 0 || r->data);
	if (r->type == XS_ERROR) {
		const char *e = r->data;
		unsigned int i;
		bool known = false;

		FZ_CHECK(r->len >= 2 && e[r->len - 1] == 0);
		for (i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++)
			if (strcmp(e, xsd_errors[i].errstring) == 0)
				known = true;
		FZ_CHECK(known);
	} else {
		FZ_CHECK(r->type == h->type);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char body[XENSTORE_PAYLOAD_MAX + 1];
	struct fz f = { data, size };
	struct xs_conn *c[NCONN] = { NULL };
	struct xs_limits lim;
	struct xs_store *s;
	unsigned int i, ops = 0;
	uint32_t last_tx = 0;

	pvio_log_level = PVIO_LOG_ERR;	/* XS_CONTROL "print" logs */
	pvio__xs_limits_default(&lim);
	lim.nodes = 40;
	lim.watches = 8;
	lim.transactions = 3;
	lim.trans_nodes = 32;
	lim.events = 16;
	lim.event_bytes = 4096;
	lim.trans_bytes = 16384;
	if (pvio__xs_store_new(&s, &lim))
		abort();
	FZ_CHECK(pvio__xs_domain_introduce(s, 1) == 0);
	FZ_CHECK(pvio__xs_domain_introduce(s, 2) == 0);
	for (i = 0; i < NCONN; i++)
		if (pvio__xs_conn_new(s, conn_dom[i], &c[i]))
			abort();
	/* as a toolstack: each guest owns its data/ and device/ areas */
	for (i = 1; i <= 2; i++) {
		static const char *const area[] = { "data", "device" };
		char path[64], perm[8];
		unsigned int a;

		for (a = 0; a < 2; a++) {
			snprintf(path, sizeof(path), "/local/domain/%u/%s", i,
				 area[a]);
			snprintf(perm, sizeof(perm), "n%u", i);
			if (pvio__xs_mkdir(c[0], 0, path) ||
			    pvio__xs_set_perms(c[0], 0, path, perm,
					       (unsigned int)strlen(perm) + 1))
				abort();
		}
	}

	while (f.left && ops++ < 128) {
		uint8_t sel = fz_u8(&f);
		unsigned int k = sel % NCONN;
		struct xsd_sockmsg h = { 0 };
		struct xs_wire_reply r;
		char *msg;
		unsigned int len;

		switch (sel >> 5) {
		case 5:		/* the connection goes, a new one comes */
			pvio__xs_conn_free(c[k]);
			c[k] = NULL;
			if (pvio__xs_conn_new(s, conn_dom[k], &c[k]))
				abort();
			continue;
		case 6:		/* a domain dies (and is created again) */
			if (k == 0)
				break;
			pvio__xs_domain_release(s, conn_dom[k]);
			if (sel & 1)
				FZ_CHECK(pvio__xs_domain_introduce(
						 s, conn_dom[k]) == 0);
			continue;
		case 7:		/* the client reads its watch events */
			while (pvio__xs_event_pop(c[k], &msg, &len) == 0) {
				FZ_CHECK(len >= 4 && msg[len - 1] == 0);
				free(msg);
			}
			pvio__xs_events_dropped(c[k]);
			continue;
		}
		sel = fz_u8(&f);
		h.type = (sel & 0x7f) % (XS_TYPE_COUNT + 2);
		/* a transaction id: none, the last one started, or any */
		switch (fz_u8(&f) & 3) {
		case 0: h.tx_id = 0; break;
		case 1: case 2: h.tx_id = last_tx; break;
		default: h.tx_id = fz_u32(&f); break;
		}
		h.req_id = ops;
		if (sel & 0x80) {
			h.len = structured(&f, h.type, body);
		} else {
			h.len = fz_u16(&f) % (XENSTORE_PAYLOAD_MAX + 1);
			if (h.len > f.left)
				h.len = (uint32_t)f.left;
			fz_bytes(&f, body, h.len);
		}
		body[h.len] = 0;	/* as simxs.c reads it */
		pvio__xs_wire_handle(s, c[k], &h, body, &r);
		check_reply(&h, &r);
		if (h.type == XS_TRANSACTION_START && r.type != XS_ERROR)
			last_tx = (uint32_t)strtoul(r.data, NULL, 10);
		free(r.heap);
		FZ_CHECK(pvio__xs_event_count(c[k]) <=
			 (conn_dom[k] ? lim.events : lim.events_priv));
	}
	for (i = 0; i < NCONN; i++)
		pvio__xs_conn_free(c[i]);
	pvio__xs_store_free(s);
	return 0;
}
