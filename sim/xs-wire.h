/* SPDX-License-Identifier: MIT */
/*
 * The sim world's xenstore protocol: one request (xen/io/xs_wire.h) of a
 * client of the engine (xs-store.h) -> its reply. Pure: simxs.c moves the
 * bytes, fuzz/fuzz-xs-wire.c feeds it whatever a guest could send.
 */
#ifndef PVIO_XS_WIRE_H
#define PVIO_XS_WIRE_H

#include <stdint.h>

#include <xen/io/xs_wire.h>

struct xs_store;
struct xs_conn;

struct xs_wire_reply {
	uint32_t type;		/* the request's, or XS_ERROR */
	const void *data;	/* len bytes: in heap, buf or static */
	unsigned int len;	/* <= XENSTORE_PAYLOAD_MAX */
	char *heap;		/* free() once sent (NULL: nothing) */
	char buf[32];		/* short replies */
};

/*
 * Answer request @h of connection @xc (of store @s): @body holds h->len
 * bytes and a NUL after them (string functions stay inside; the bytes may
 * be changed). The reply is never missing: an error is an XS_ERROR reply
 * naming it (xsd_errors).
 */
void pvio__xs_wire_handle(struct xs_store *s, struct xs_conn *xc,
			  const struct xsd_sockmsg *h, char *body,
			  struct xs_wire_reply *r);

#endif
