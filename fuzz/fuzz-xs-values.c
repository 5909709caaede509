// SPDX-License-Identifier: MIT
/*
 * Every xenstore value a frontend negotiates with, through the real
 * xenstore-glue code (xs.c, xenbus.c) over a fake libxenstore whose nodes
 * the input writes: ring-page-order, ring-ref / ring-ref%u, the event
 * channels, protocol, multi-queue-num-queues, feature-* booleans, state,
 * tx-/rx-ring-ref (docs/protocol.md rule 5).
 *
 * Invariants: a number is accepted only if the whole value is "decimal, or
 * 0x hex" (no sign, no space, no NUL inside), equals that number and lies
 * in range; the ring reader returns 1 << order references and a port in
 * range; the queue count is within what was offered.
 *
 * Input: a configuration byte, then nodes: a key index, a length, bytes.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>

#include <xenstore.h>

#include <pvio/xenbus.h>

#include "fuzz.h"

/* ---- the fake libxenstore: a few nodes, read-only -------------------------- */

#define NODES_MAX	32

static const char *const keys[] = {
	"fe/ring-page-order", "fe/ring-ref", "fe/event-channel",
	"fe/event-channel-tx", "fe/event-channel-rx", "fe/protocol",
	"fe/multi-queue-num-queues", "fe/feature-persistent", "fe/state",
	"fe/tx-ring-ref", "fe/rx-ring-ref", "fe/request-rx-copy",
	"fe/feature-sg", "fe/feature-rx-notify", "fe/feature-gso-tcpv4",
	"fe/ring-ref0", "fe/ring-ref1", "fe/ring-ref2", "fe/ring-ref3",
	"fe/ring-ref4", "fe/ring-ref5", "fe/ring-ref6", "fe/ring-ref7",
	"fe/ring-ref8", "fe/ring-ref9", "fe/ring-ref10", "fe/ring-ref11",
	"fe/ring-ref12", "fe/ring-ref13", "fe/ring-ref14", "fe/ring-ref15",
};
#define NR_KEYS	(sizeof(keys) / sizeof(keys[0]))

static struct node {
	bool set;
	unsigned int len;
	char val[256];
} nodes[NR_KEYS];

static int key_index(const char *path)
{
	unsigned int i;

	for (i = 0; i < NR_KEYS; i++)
		if (strcmp(path, keys[i]) == 0)
			return (int)i;
	return -1;
}

struct xs_handle *xs_open(unsigned long flags)
{
	static int dummy;

	return (struct xs_handle *)&dummy;
}

void xs_close(struct xs_handle *h)
{
}

void *xs_read(struct xs_handle *h, xs_transaction_t t, const char *path,
	      unsigned int *len)
{
	int i = key_index(path);
	char *v;

	if (i < 0 || !nodes[i].set) {
		errno = ENOENT;
		return NULL;
	}
	/* as libxenstore: the bytes, NUL-terminated, their length */
	v = malloc(nodes[i].len + 1);
	if (!v)
		abort();
	memcpy(v, nodes[i].val, nodes[i].len);
	v[nodes[i].len] = 0;
	if (len)
		*len = nodes[i].len;
	return v;
}

#define REFUSE(decl)	decl { errno = EACCES; return 0; }
REFUSE(bool xs_write(struct xs_handle *h, xs_transaction_t t, const char *p,
		     const void *d, unsigned int l))
REFUSE(bool xs_mkdir(struct xs_handle *h, xs_transaction_t t, const char *p))
REFUSE(bool xs_rm(struct xs_handle *h, xs_transaction_t t, const char *p))
REFUSE(char **xs_directory(struct xs_handle *h, xs_transaction_t t,
			   const char *p, unsigned int *n))
REFUSE(bool xs_set_permissions(struct xs_handle *h, xs_transaction_t t,
			       const char *p, struct xs_permissions *pm,
			       unsigned int n))
REFUSE(bool xs_watch(struct xs_handle *h, const char *p, const char *t))
REFUSE(bool xs_unwatch(struct xs_handle *h, const char *p, const char *t))
REFUSE(xs_transaction_t xs_transaction_start(struct xs_handle *h))
REFUSE(bool xs_transaction_end(struct xs_handle *h, xs_transaction_t t,
			       bool abort))
REFUSE(char **xs_check_watch(struct xs_handle *h))

int xs_fileno(struct xs_handle *h)
{
	return -1;
}

/* hypercall/: pvio_xs_open()'s, never called here (pvio_xs_open_path is) */
int pvio_platform_xs_path(const struct pvio_platform *p, char *buf,
			  size_t size)
{
	return -ENOSYS;
}

/* ---- the reference: what a strictly parsed number is ------------------------ */

static bool strict_number(int k, unsigned long min, unsigned long max,
			  unsigned long got)
{
	const struct node *n = &nodes[k];
	const char *s = n->val;
	unsigned int i = 0, base = 10;
	unsigned long long v = 0;

	if (memchr(s, 0, n->len))
		return false;
	if (n->len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		i = 2;
	}
	if (i == n->len)
		return false;
	for (; i < n->len; i++) {
		unsigned int d;

		if (base == 16 ? !isxdigit((unsigned char)s[i])
			       : !isdigit((unsigned char)s[i]))
			return false;
		d = isdigit((unsigned char)s[i]) ? (unsigned int)(s[i] - '0')
			: (unsigned int)(tolower((unsigned char)s[i]) - 'a' + 10);
		if (v > (ULLONG_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	return v == got && v >= min && v <= max && v <= ULONG_MAX;
}

static struct pvio_xs *xs;

static void read_numbers(unsigned long min, unsigned long max)
{
	unsigned int k;

	for (k = 0; k < NR_KEYS; k++) {
		unsigned long v = 0xdeadbeef;
		int rc;

		if (!nodes[k].set && k)	/* one absent key is enough */
			continue;
		rc = pvio_xs_read_uint(xs, 0, keys[k], min, max, &v);

		if (!nodes[k].set)
			FZ_CHECK(rc == -ENOENT);
		if (rc == 0)
			FZ_CHECK(strict_number((int)k, min, max, v));
		else
			FZ_CHECK(rc == -ENOENT || rc == -EINVAL ||
				 rc == -ERANGE);
		rc = pvio_xs_read_uint_default(xs, 0, keys[k], min, max, 7,
					       &v);
		if (!nodes[k].set)
			FZ_CHECK(rc == 0 && v == 7);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned long bounds[][2] = {
		{ 0, 4 }, { 0, UINT32_MAX }, { 1, (1ul << 17) - 1 },
		{ 1, 8 }, { 0, 1 }, { 0, ULONG_MAX }, { 1, 6 }, { 5, 5 },
	};
	pvio_gref_t refs[16];
	pvio_port_t port;
	unsigned int nr, max_order, max_q, i;
	struct fz f = { data, size };
	unsigned long v;
	uint8_t cfg;
	bool b;
	int n;

	if (!xs && pvio_xs_open_path(&xs, "fuzz"))
		abort();
	memset(nodes, 0, sizeof(nodes));
	cfg = fz_u8(&f);
	i = fz_u8(&f) % (sizeof(bounds) / sizeof(bounds[0]));
	max_order = cfg % 5;
	max_q = 1u + (cfg >> 3) % 16;
	while (f.left) {
		struct node *nd = &nodes[fz_u8(&f) % NR_KEYS];

		nd->len = fz_u8(&f);
		fz_bytes(&f, nd->val, nd->len);
		nd->set = true;
	}

	n = pvio_xb_read_ring(xs, "fe", "fe", max_order, refs,
			      (cfg & 0x80) ? "event-channel-tx" : NULL, &port);
	if (n > 0) {
		FZ_CHECK(n == 1 || (n & (n - 1)) == 0);
		FZ_CHECK(n <= 1 << max_order);
		FZ_CHECK(port >= 1 && port < (1u << 17));
		if (nodes[0].set) {	/* ring-page-order: ring-ref%u */
			FZ_CHECK(pvio_xs_read_uint(xs, 0, keys[0], 0,
						   max_order, &v) == 0);
			FZ_CHECK(n == 1 << v);
		}
	}
	n = pvio_xb_read_protocol(xs, "fe");
	FZ_CHECK(n == PVIO_XB_PROTO_NATIVE || n < 0);
	if (n == PVIO_XB_PROTO_NATIVE && nodes[5].set) {
		nodes[5].val[nodes[5].len] = 0;	/* as a C string */
		FZ_CHECK(strcmp(nodes[5].val, "x86_64-abi") == 0 ||
			 strcmp(nodes[5].val, "arm-abi") == 0);
	}
	nr = 0;
	if (pvio_xb_read_queues(xs, "fe", max_q, &nr) == 0)
		FZ_CHECK(nr >= 1 && nr <= max_q);
	if (pvio_xs_read_bool(xs, 0, keys[7], false, &b) == 0 && nodes[7].set)
		FZ_CHECK(strict_number(7, 0, 1, b));
	read_numbers(bounds[i][0], bounds[i][1]);
	return 0;
}
