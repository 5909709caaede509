// SPDX-License-Identifier: MIT
/*
 * t-blkclient: a raw blkif frontend for tests, which can also misbehave
 * on purpose. It runs as a sim domain (PVIO_PLATFORM / PVIO_DOMID, as
 * `pvio-ctl run` sets them) and drives one vbd by hand.
 *
 *   t-blkclient DEVID connect [--order N]   handshake, then hold it
 *   t-blkclient DEVID io N                  N write+read-back checks
 *   t-blkclient DEVID bad                   every malformed request once:
 *                                           each must be answered with an
 *                                           error status; then good I/O
 *   t-blkclient DEVID overflow              publish a bogus req_prod
 *   t-blkclient DEVID prefill               8 writes in the ring before
 *                                           Initialised; the backend fails
 *                                           the device (a queue that cannot
 *                                           start): it must still close
 *   t-blkclient DEVID halt-pending          a write left unanswered (its
 *                                           target's server is gone), then
 *                                           a bogus req_prod and Closed:
 *                                           the backend must still drain
 *                                           and close (exits once Closed)
 *   t-blkclient DEVID storm                 10^5 empty notifications
 *   t-blkclient DEVID xs-hostile KIND       hostile negotiation values:
 *                                           order, protocol, evtchn,
 *                                           refs, queues
 *   t-blkclient DEVID flap N                state flapping
 *   t-blkclient DEVID close                 Closing -> Closed
 *   t-blkclient DEVID ro                    a read-only disk refuses writes
 *   t-blkclient DEVID ops                   flush, barrier, discard
 *   t-blkclient DEVID barriers N            N barrier writes of 4 KiB, one
 *                                           after the other
 *   t-blkclient DEVID discard-io SECTORS    a discard of SECTORS at 0, then
 *                                           write+read checks (one session)
 *   t-blkclient DEVID resize                wait for the disk to grow
 *   t-blkclient DEVID mark I                write block I filled with
 *                                           (I & 0xff) | 1, read it back
 *   t-blkclient DEVID beyond SECTOR         a read and a write there fail
 *   t-blkclient DEVID stress N LOG          N writes, 32 in flight; the id
 *                                           of each acknowledged one goes
 *                                           to LOG; all read back at the end
 *   t-blkclient DEVID crash STOP [--order N] numbered, checksummed records
 *                                           written, read back, discarded
 *                                           and flushed, 48 in flight, until
 *                                           the file STOP exists (the backend
 *                                           is killed meanwhile): every
 *                                           response must answer a request
 *                                           in flight, once, without error;
 *                                           all acknowledged records are
 *                                           read back at the end; while
 *                                           STOP.pause exists it drains and
 *                                           holds (STOP.paused says so);
 *                                           with --gone ACKED, I/O errors
 *                                           are allowed (its target is
 *                                           gone): at the first it stops
 *                                           issuing, waits for every answer
 *                                           and writes the records it may
 *                                           expect to ACKED; the backend
 *                                           must stay Connected; then it
 *                                           holds until STOP exists; with
 *                                           --back too, it waits instead
 *                                           for a read to succeed (the
 *                                           target back, within 60 s) and
 *                                           runs the load again, errors
 *                                           not allowed, until STOP
 *   t-blkclient - verify-image IMG ACKED    every record in ACKED intact in
 *                                           the image file IMG (no domain)
 *
 * Prints "OK ..." lines and exits 0 when the backend behaved as it must.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "t-xb.h"
#include "util.h"	/* PVIO_PATH_BUF */

#define NDATA 64	/* data pages, granted once */

static struct pvio_platform *plat;
static struct pvio_xs *xs;
static char fe[PVIO_XS_PATH_MAX], be[PVIO_XS_PATH_MAX];
static unsigned int domid, devid;
static struct pvio_ring_front ring;
static void *ring_mem, *data;
static pvio_gref_t ring_refs[16], data_refs[NDATA];
static int port;
static unsigned int order;

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static int rd_uint(const char *dir, const char *key, unsigned long *v)
{
	char p[PVIO_XS_PATH_MAX + 64];

	snprintf(p, sizeof(p), "%s/%s", dir, key);
	return pvio_xs_read_uint(xs, 0, p, 0, ~0ul, v);
}

static void wr(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void wr(const char *key, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = t_xb_vwrite(xs, fe, key, fmt, ap);
	va_end(ap);
	if (rc)
		FAIL("write %s/%s", fe, key);
}

static unsigned long be_state(void)
{
	return t_xb_state(xs, be);
}

static bool wait_be(unsigned long want, int ms)
{
	while (ms > 0) {
		if (be_state() == want)
			return true;
		poll(NULL, 0, 10);
		ms -= 10;
	}
	return false;
}

static void setup_ring(void)
{
	unsigned int pages = 1u << order;

	if (pvio_gnt_share(plat, 0, pages, true, ring_refs, &ring_mem))
		FAIL("share ring");
	pvio_blkif_front_init(&ring, ring_mem, pages);
	if (!data && pvio_gnt_share(plat, 0, NDATA, true, data_refs, &data))
		FAIL("share data");
	port = pvio_evtchn_alloc_unbound(plat, 0);
	if (port < 0)
		FAIL("evtchn");
}

static void publish_ring(void)
{
	static const char *const stale[] = {
		"ring-page-order", "ring-ref", "event-channel", "protocol",
		"multi-queue-num-queues",
	};
	char p[PVIO_XS_PATH_MAX + 32];
	unsigned int i;
	char k[32];

	/* what an earlier connection left */
	for (i = 0; i < sizeof(stale) / sizeof(stale[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", fe, stale[i]);
		pvio_xs_rm(xs, 0, p);
	}
	for (i = 0; i < 16; i++) {
		snprintf(p, sizeof(p), "%s/ring-ref%u", fe, i);
		pvio_xs_rm(xs, 0, p);
	}
	if (order) {
		wr("ring-page-order", "%u", order);
		for (i = 0; i < (1u << order); i++) {
			snprintf(k, sizeof(k), "ring-ref%u", i);
			wr(k, "%u", ring_refs[i]);
		}
	} else {
		wr("ring-ref", "%u", ring_refs[0]);
	}
	wr("event-channel", "%d", port);
	wr("protocol", "x86_64-abi");
}

static void connect_dev(void)
{
	wr("state", "1");
	if (!wait_be(2, 5000))
		FAIL("backend not in InitWait (state %lu)", be_state());
	setup_ring();
	publish_ring();
	wr("state", "3");
	if (!wait_be(4, 5000))
		FAIL("backend not Connected (state %lu)", be_state());
	wr("state", "4");
	printf("OK connected, %u-page ring\n", 1u << order);
}

static void teardown(void)
{
	wr("state", "5");
	wait_be(5, 3000);
	wr("state", "6");
	if (!wait_be(6, 5000))
		FAIL("backend not Closed (state %lu)", be_state());
	pvio_evtchn_close(plat, (pvio_port_t)port);
	if (pvio_gnt_unshare(plat, ring_mem, 1u << order))
		FAIL("ring still mapped by the backend after Closed");
	printf("OK closed, ring unmapped\n");
}

static void kick(void)
{
	if (pvio_ring_front_push(&ring))
		pvio_evtchn_notify(plat, (pvio_port_t)port);
}

/* Wait for @n responses; return them in @out. */
static void collect(struct blkif_response *out, unsigned int n)
{
	unsigned int got = 0;
	int waited = 0;

	while (got < n) {
		int c = pvio_blkif_front_consume(&ring, out + got, n - got);

		if (c < 0)
			FAIL("ring halted");
		got += (unsigned int)c;
		if (got < n && !pvio_ring_front_final_check(&ring, 1)) {
			struct pollfd p = { .fd = pvio_evtchn_fd(plat), .events = POLLIN };

			poll(&p, 1, 100);
			while (pvio_evtchn_pending(plat) >= 0)
				;
			if ((waited += 100) > 10000)
				FAIL("no response after 10 s (%u of %u)", got, n);
		}
	}
}

static struct blkif_request *rq(uint8_t op, uint64_t id, uint64_t sector,
				unsigned int nseg)
{
	struct blkif_request *r = pvio_blkif_front_req(&ring);
	unsigned int i;

	memset(r, 0, sizeof(*r));
	r->operation = op;
	r->id = id;
	r->sector_number = sector;
	r->nr_segments = (uint8_t)nseg;
	for (i = 0; i < nseg && i < 11; i++) {
		r->seg[i].gref = data_refs[(id + i) % NDATA];
		r->seg[i].first_sect = 0;
		r->seg[i].last_sect = 7;
	}
	pvio_ring_front_req_commit(&ring);
	return r;
}

static int16_t one(uint8_t op, uint64_t id, uint64_t sector, unsigned int nseg,
		   void (*tweak)(struct blkif_request *))
{
	struct blkif_request *r = rq(op, id, sector, nseg);
	struct blkif_response p;

	if (tweak)
		tweak(r);
	kick();
	collect(&p, 1);
	if (p.id != id)
		FAIL("response id %llu for request %llu",
		     (unsigned long long)p.id, (unsigned long long)id);
	return p.status;
}

static void io_check(unsigned int n)
{
	unsigned long sectors = 0;
	unsigned int i, k;

	rd_uint(be, "sectors", &sectors);
	for (i = 0; i < n; i++) {
		uint64_t sec = ((uint64_t)i * 8 * 3) % (sectors - 88);
		unsigned int nseg = 1 + i % 11;
		char *p = (char *)data + (size_t)(i % NDATA) * 4096;
		int16_t st;

		for (k = 0; k < nseg; k++)
			memset((char *)data + (size_t)((i + k) % NDATA) * 4096,
			       (int)(i * 7 + k) & 0xff, 4096);
		st = one(BLKIF_OP_WRITE, i, sec, nseg, NULL);
		if (st)
			FAIL("write %u: status %d", i, st);
		for (k = 0; k < nseg; k++)
			memset((char *)data + (size_t)((i + k) % NDATA) * 4096, 0, 4096);
		st = one(BLKIF_OP_READ, i, sec, nseg, NULL);
		if (st)
			FAIL("read %u: status %d", i, st);
		for (k = 0; k < nseg; k++) {
			p = (char *)data + (size_t)((i + k) % NDATA) * 4096;
			if ((unsigned char)p[0] != ((i * 7 + k) & 0xff) ||
			    (unsigned char)p[4095] != ((i * 7 + k) & 0xff))
				FAIL("read back %u seg %u: wrong data", i, k);
		}
	}
	printf("OK %u write+read checks (ring wrapped %u times)\n", n,
	       2 * n / ring.nr_ents);
}

/* ---- malformed requests -------------------------------------------------------------- */

static void t_first_gt_last(struct blkif_request *r) { r->seg[0].first_sect = 5; r->seg[0].last_sect = 2; }
static void t_last_8(struct blkif_request *r) { r->seg[0].last_sect = 8; }
static void t_bad_gref(struct blkif_request *r) { r->seg[0].gref = 31000; }
static void t_foreign_gref(struct blkif_request *r) { r->seg[0].gref = 3; }
static void t_ind_op(struct blkif_request *r)
{
	struct blkif_request_indirect *in = (struct blkif_request_indirect *)r;

	in->indirect_op = BLKIF_OP_DISCARD;
	in->nr_segments = 16;
}
static void t_ind_many(struct blkif_request *r)
{
	struct blkif_request_indirect *in = (struct blkif_request_indirect *)r;

	in->indirect_op = BLKIF_OP_READ;
	in->nr_segments = 4000;
}
static void t_ind_badpage(struct blkif_request *r)
{
	struct blkif_request_indirect *in = (struct blkif_request_indirect *)r;

	in->indirect_op = BLKIF_OP_READ;
	in->nr_segments = 16;
	in->sector_number = 0;
	in->indirect_grefs[0] = 30999;
}
static void t_ind_badseg(struct blkif_request *r)
{
	struct blkif_request_indirect *in = (struct blkif_request_indirect *)r;
	struct blkif_request_segment *s = (struct blkif_request_segment *)data;
	unsigned int i;

	for (i = 0; i < 16; i++) {
		s[i].gref = data_refs[10 + i];
		s[i].first_sect = 0;
		s[i].last_sect = 7;
	}
	s[9].first_sect = 7;
	s[9].last_sect = 1;	/* hostile, inside the indirect page */
	in->indirect_op = BLKIF_OP_WRITE;
	in->nr_segments = 16;
	in->sector_number = 0;
	in->indirect_grefs[0] = data_refs[0];
}
static void t_discard_range(struct blkif_request *r)
{
	struct blkif_request_discard *d = (struct blkif_request_discard *)r;

	d->nr_sectors = ~0ull;
}

static void bad(void)
{
	unsigned long sectors = 0;
	struct {
		const char *what;
		uint8_t op;
		uint64_t sector;
		unsigned int nseg;
		void (*tweak)(struct blkif_request *);
		int16_t want;
	} cases[] = {
		{ "unknown op 42", 42, 0, 1, NULL, BLKIF_RSP_EOPNOTSUPP },
		{ "reserved op 4", BLKIF_OP_RESERVED_1, 0, 1, NULL, BLKIF_RSP_EOPNOTSUPP },
		{ "read, 0 segments", BLKIF_OP_READ, 0, 0, NULL, BLKIF_RSP_ERROR },
		{ "read, 12 segments", BLKIF_OP_READ, 0, 12, NULL, BLKIF_RSP_ERROR },
		{ "first_sect > last_sect", BLKIF_OP_READ, 0, 1, t_first_gt_last, BLKIF_RSP_ERROR },
		{ "last_sect 8", BLKIF_OP_READ, 0, 1, t_last_8, BLKIF_RSP_ERROR },
		{ "past the end", BLKIF_OP_READ, 0, 1, NULL, BLKIF_RSP_ERROR },
		{ "sector wraps", BLKIF_OP_WRITE, ~0ull - 3, 1, NULL, BLKIF_RSP_ERROR },
		{ "grant out of range", BLKIF_OP_WRITE, 0, 1, t_bad_gref, BLKIF_RSP_ERROR },
		{ "reserved grant", BLKIF_OP_READ, 0, 1, t_foreign_gref, BLKIF_RSP_ERROR },
		{ "indirect: bad op", BLKIF_OP_INDIRECT, 0, 0, t_ind_op, BLKIF_RSP_EOPNOTSUPP },
		{ "indirect: 4000 segments", BLKIF_OP_INDIRECT, 0, 0, t_ind_many, BLKIF_RSP_ERROR },
		{ "indirect: bad page", BLKIF_OP_INDIRECT, 0, 0, t_ind_badpage, BLKIF_RSP_ERROR },
		{ "indirect: bad segment inside", BLKIF_OP_INDIRECT, 0, 0, t_ind_badseg, BLKIF_RSP_ERROR },
		{ "discard: huge", BLKIF_OP_DISCARD, 8, 0, t_discard_range, BLKIF_RSP_ERROR },
	};
	unsigned int i;

	rd_uint(be, "sectors", &sectors);
	cases[6].sector = sectors - 4;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int16_t st = one(cases[i].op, 1000 + i, cases[i].sector,
				 cases[i].nseg, cases[i].tweak);

		if (st != cases[i].want)
			FAIL("%s: status %d, want %d", cases[i].what, st, cases[i].want);
		printf("OK refused: %s (status %d)\n", cases[i].what, st);
	}
	/* and the device still works */
	io_check(3);
}

static int hostile_xs(const char *kind)
{
	wr("state", "1");
	if (!wait_be(2, 5000))
		FAIL("backend not in InitWait");
	setup_ring();
	publish_ring();
	if (!strcmp(kind, "order")) {
		wr("ring-page-order", "9");
	} else if (!strcmp(kind, "protocol")) {
		wr("protocol", "sparc-abi");
	} else if (!strcmp(kind, "evtchn")) {
		wr("event-channel", "abc");
	} else if (!strcmp(kind, "refs")) {
		wr("ring-ref", "-7");
	} else if (!strcmp(kind, "queues")) {
		wr("multi-queue-num-queues", "99");
	} else if (!strcmp(kind, "deadref")) {
		wr("ring-ref", "30000");
	} else {
		FAIL("unknown kind %s", kind);
	}
	wr("state", "3");
	/* the backend refuses this device: Closing, with an error node */
	if (!wait_be(5, 5000))
		FAIL("%s: backend state %lu, want Closing", kind, be_state());
	{
		char p[PVIO_XS_PATH_MAX + 16], *e = NULL;

		snprintf(p, sizeof(p), "%s/error", be);
		if (pvio_xs_read(xs, 0, p, &e) < 0)
			FAIL("%s: no error node", kind);
		printf("OK refused hostile %s: \"%s\"\n", kind, e);
		free(e);
	}
	wr("state", "6");
	wait_be(6, 5000);
	return 0;
}

static void ro(void)
{
	unsigned long info = 0;

	rd_uint(be, "info", &info);
	if (!(info & VDISK_READONLY))
		FAIL("info %lu lacks VDISK_READONLY", info);
	if (one(BLKIF_OP_READ, 1, 0, 2, NULL))
		FAIL("read refused on a read-only disk");
	if (one(BLKIF_OP_WRITE, 2, 0, 2, NULL) != BLKIF_RSP_ERROR)
		FAIL("write accepted on a read-only disk");
	if (one(BLKIF_OP_DISCARD, 3, 0, 0, NULL) != BLKIF_RSP_EOPNOTSUPP)
		FAIL("discard accepted on a read-only disk");
	printf("OK read-only: reads served, writes and discards refused\n");
}

static void discard_8(struct blkif_request *r)
{
	((struct blkif_request_discard *)r)->nr_sectors = 16;
}

static uint64_t discard_sectors;

static void discard_n(struct blkif_request *r)
{
	((struct blkif_request_discard *)r)->nr_sectors = discard_sectors;
}

static void ops(void)
{
	unsigned int k;
	char *p;

	/* data, a flush, a barrier write, a discard of the first 8 KiB */
	memset(data, 0x5a, 4096 * 2);
	if (one(BLKIF_OP_WRITE, 1, 0, 2, NULL))
		FAIL("write");
	if (one(BLKIF_OP_FLUSH_DISKCACHE, 2, 0, 0, NULL))
		FAIL("flush");
	if (one(BLKIF_OP_WRITE_BARRIER, 3, 16, 1, NULL))
		FAIL("barrier with data");
	if (one(BLKIF_OP_WRITE_BARRIER, 4, 0, 0, NULL))
		FAIL("barrier without data");
	if (one(BLKIF_OP_DISCARD, 5, 0, 0, discard_8))
		FAIL("discard");
	memset(data, 0x11, 4096 * 2);
	if (one(BLKIF_OP_READ, 6, 0, 2, NULL))
		FAIL("read after discard");
	for (k = 0; k < 2; k++) {
		p = (char *)data + (size_t)((6 + k) % NDATA) * 4096;
		if (p[0] != 0 || p[4095] != 0)
			FAIL("discarded range reads back non-zero");
	}
	printf("OK flush, barrier, discard (discarded range reads zeros)\n");
}

static void resize(void)
{
	unsigned long s0 = 0, s1 = 0;
	int i;

	rd_uint(be, "sectors", &s0);
	printf("OK connected, %lu sectors: waiting for a resize\n", s0);
	for (i = 0; i < 100; i++) {
		poll(NULL, 0, 100);
		rd_uint(be, "sectors", &s1);
		if (s1 > s0)
			break;
	}
	if (s1 <= s0)
		FAIL("sectors still %lu", s0);
	/* the new end is usable, and the old limit no longer applies */
	memset(data, 0x77, 4096);
	if (one(BLKIF_OP_WRITE, 1, s1 - 8, 1, NULL))
		FAIL("write at the new end");
	if (one(BLKIF_OP_READ, 2, s1, 1, NULL) != BLKIF_RSP_ERROR)
		FAIL("read past the new end accepted");
	printf("OK resized %lu -> %lu sectors, new end usable\n", s0, s1);
}

/* Block b holds its number in every byte of its first 8 bytes. */
static void stress(unsigned int n, const char *logpath)
{
	struct blkif_response rsp[32];
	unsigned int issued = 0, acked = 0, k;
	FILE *log = fopen(logpath, "w");

	if (!log)
		FAIL("log %s", logpath);
	setvbuf(log, NULL, _IOLBF, 0);
	while (acked < n) {
		int c;

		while (issued < n && issued - acked < 32 &&
		       pvio_ring_front_free(&ring)) {
			uint64_t *pg = (uint64_t *)((char *)data +
						    (size_t)(issued % NDATA) * 4096);

			for (k = 0; k < 512; k++)
				pg[k] = issued;
			/* rq() gives request i the page i % NDATA */
			rq(BLKIF_OP_WRITE, issued, (uint64_t)issued * 8, 1);
			issued++;
		}
		kick();
		c = pvio_blkif_front_consume(&ring, rsp, 32);
		if (c < 0)
			FAIL("ring halted");
		for (k = 0; k < (unsigned int)c; k++) {
			if (rsp[k].status)
				FAIL("write %llu failed: %d",
				     (unsigned long long)rsp[k].id, rsp[k].status);
			fprintf(log, "%llu\n", (unsigned long long)rsp[k].id);
			acked++;
		}
		if (!c && !pvio_ring_front_final_check(&ring, 1)) {
			struct pollfd p = { .fd = pvio_evtchn_fd(plat), .events = POLLIN };

			poll(&p, 1, 200);	/* the backend may be restarting */
			while (pvio_evtchn_pending(plat) >= 0)
				;
		}
	}
	fclose(log);
	/* everything acknowledged is there */
	for (k = 0; k < n; k++) {
		uint64_t *pg;

		if (one(BLKIF_OP_READ, k, (uint64_t)k * 8, 1, NULL))
			FAIL("read %u", k);
		pg = (uint64_t *)((char *)data + (size_t)(k % NDATA) * 4096);
		if (pg[0] != k || pg[511] != k)
			FAIL("block %u reads back %llu", k, (unsigned long long)pg[0]);
	}
	printf("OK %u writes acknowledged and read back\n", n);
}

/* ---- crash load: checked records while the backend dies --------------------------- */

#define CR_BLOCKS	2048u	/* 4 KiB records: the first 8 MiB */
#define CR_INFLIGHT	48u
#define CR_MAXSEG	16u	/* an indirect request: up to 16 records */
#define CR_MAGIC	0x7076696f52454331ull

struct cr_req {
	bool used;
	bool ind;		/* sent as BLKIF_OP_INDIRECT */
	uint64_t id;
	uint8_t op;		/* READ, WRITE, DISCARD or FLUSH_DISKCACHE */
	uint8_t rsp_op;		/* what the response says: WRITE_BARRIER for a
				 * barrier, the indirect_op for an indirect */
	uint32_t block, nblk;
	uint32_t ver[CR_MAXSEG];
	uint8_t pages[CR_MAXSEG];
};

static struct cr_req cr_tab[CR_INFLIGHT];
static uint32_t cr_acked[CR_BLOCKS];	/* version acknowledged, 0: none */
static bool cr_busy[CR_BLOCKS], cr_undef[CR_BLOCKS];
static uint8_t cr_free_pg[NDATA];
static unsigned int cr_nfree, cr_inflight;
static uint64_t cr_next_id = 1000;
/* one indirect page per request slot, when the backend takes indirect
 * requests of CR_MAXSEG segments; NULL otherwise */
static struct blkif_request_segment *cr_ind;
static pvio_gref_t cr_ind_refs[CR_INFLIGHT];
/* indirect requests and barriers acknowledged */
static uint64_t cr_nind, cr_nbar;
/* --gone: errors allowed (once STOP.killed exists), acknowledged records
 * written here; errors seen */
static const char *cr_gone;
/* --back: after the errors, the target comes back (cr_wait_back()) */
static bool cr_back;
static char cr_killed[PVIO_PATH_BUF];
static uint64_t cr_errors;
/* what the backend offers: barriers and discards only then */
static bool cr_barrier = true, cr_discard = true;

static uint64_t cr_word(uint32_t b, uint32_t v, unsigned int i)
{
	uint64_t x = ((uint64_t)b << 32 | v) * 0x9e3779b97f4a7c15ull + i;

	x ^= x >> 29;
	return x * 0xbf58476d1ce4e5b9ull;
}

static void cr_fill(uint64_t *pg, uint32_t b, uint32_t v)
{
	uint64_t sum = 0;
	unsigned int i;

	pg[0] = CR_MAGIC;
	pg[1] = b;
	pg[2] = v;
	for (i = 3; i < 511; i++)
		pg[i] = cr_word(b, v, i);
	for (i = 0; i < 511; i++)
		sum += pg[i] * (2 * i + 1);
	pg[511] = sum;
}

/* "" if @pg holds record @b version @v, else what it holds */
static const char *cr_check(const uint64_t *pg, uint32_t b, uint32_t v)
{
	static char why[128];
	uint64_t sum = 0;
	unsigned int i;

	for (i = 0; i < 511; i++)
		sum += pg[i] * (2 * i + 1);
	if (pg[0] != CR_MAGIC || sum != pg[511])
		return "no intact record";
	if (pg[1] != b || pg[2] != v) {
		snprintf(why, sizeof(why), "record of block %llu version %llu",
			 (unsigned long long)pg[1], (unsigned long long)pg[2]);
		return why;
	}
	return "";
}

static uint64_t *cr_page(unsigned int i)
{
	return (uint64_t *)((char *)data + (size_t)i * 4096);
}

static struct cr_req *cr_new(uint8_t op)
{
	unsigned int i;

	for (i = 0; i < CR_INFLIGHT; i++)
		if (!cr_tab[i].used) {
			cr_tab[i].used = true;
			cr_tab[i].id = cr_next_id++;
			cr_tab[i].op = op;
			cr_tab[i].rsp_op = op;
			cr_tab[i].ind = false;
			cr_inflight++;
			return &cr_tab[i];
		}
	FAIL("no free request slot");
}

static unsigned int cr_random(void)
{
	static uint64_t x = 88172645463325252ull;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return (unsigned int)(x >> 16);
}

/* Put one request on the ring, or return false if none fits now. */
static bool cr_issue(unsigned int nwrites)
{
	unsigned int dice = cr_random() % 100, k;
	/* reads and writes: one in six indirect, 3-16 records long */
	bool ind = cr_ind && dice >= 5 && cr_random() % 6 == 0;
	uint32_t b = cr_random() % CR_BLOCKS;
	uint32_t n = ind ? 3 + cr_random() % (CR_MAXSEG - 2) : 1 + cr_random() % 2;
	struct blkif_request_segment *seg;
	struct blkif_request *r;
	struct cr_req *c;

	if (b + n > CR_BLOCKS)
		b = CR_BLOCKS - n;
	for (k = 0; k < n; k++)
		if (cr_busy[b + k])
			return false;
	if (nwrites % 16 == 15 && dice < 10) {	/* a flush now and then */
		c = cr_new(BLKIF_OP_FLUSH_DISKCACHE);
		r = pvio_blkif_front_req(&ring);
		memset(r, 0, sizeof(*r));
		r->operation = c->op;
		r->id = c->id;
		pvio_ring_front_req_commit(&ring);
		return true;
	}
	if (dice < 5 && cr_discard) {	/* discard: the range's contents become undefined */
		struct blkif_request_discard *d;

		c = cr_new(BLKIF_OP_DISCARD);
		c->block = b;
		c->nblk = n;
		d = (struct blkif_request_discard *)pvio_blkif_front_req(&ring);
		memset(d, 0, sizeof(*d));
		d->operation = c->op;
		d->id = c->id;
		d->sector_number = (uint64_t)b * 8;
		d->nr_sectors = n * 8;
		pvio_ring_front_req_commit(&ring);
	} else if (dice < 30) {	/* read back a record acknowledged */
		for (k = 0; k < n; k++)
			if (!cr_acked[b + k] || cr_undef[b + k])
				return false;
		if (cr_nfree < n)
			return false;
		c = cr_new(BLKIF_OP_READ);
	} else {
		if (cr_nfree < n)
			return false;
		c = cr_new(BLKIF_OP_WRITE);
	}
	c->block = b;
	c->nblk = n;
	if (c->op != BLKIF_OP_DISCARD) {
		r = pvio_blkif_front_req(&ring);
		memset(r, 0, sizeof(*r));
		if (ind) {
			struct blkif_request_indirect *in =
				(struct blkif_request_indirect *)r;

			c->ind = true;
			in->operation = BLKIF_OP_INDIRECT;
			in->indirect_op = c->op;
			in->nr_segments = (uint16_t)n;
			in->id = c->id;
			in->sector_number = (uint64_t)b * 8;
			in->indirect_grefs[0] = cr_ind_refs[c - cr_tab];
			seg = cr_ind + (size_t)(c - cr_tab) * (4096 / sizeof(*seg));
		} else {
			/* a write now and then is a barrier */
			if (c->op == BLKIF_OP_WRITE && cr_barrier &&
			    cr_random() % 32 == 0)
				c->rsp_op = BLKIF_OP_WRITE_BARRIER;
			r->operation = c->rsp_op;
			r->id = c->id;
			r->sector_number = (uint64_t)b * 8;
			r->nr_segments = (uint8_t)n;
			seg = r->seg;
		}
		for (k = 0; k < n; k++) {
			unsigned int pg = cr_free_pg[--cr_nfree];

			c->pages[k] = (uint8_t)pg;
			c->ver[k] = cr_acked[b + k] + 1;
			if (c->op == BLKIF_OP_WRITE)
				cr_fill(cr_page(pg), b + k, c->ver[k]);
			else
				memset(cr_page(pg), 0xee, 4096);
			seg[k].gref = data_refs[pg];
			seg[k].first_sect = 0;
			seg[k].last_sect = 7;
		}
		pvio_ring_front_req_commit(&ring);
	}
	for (k = 0; k < n; k++)
		cr_busy[b + k] = true;
	return true;
}

static unsigned int cr_answer(const struct blkif_response *p, uint64_t *counts)
{
	struct cr_req *c = NULL;
	unsigned int i, k;

	for (i = 0; i < CR_INFLIGHT; i++)
		if (cr_tab[i].used && cr_tab[i].id == p->id)
			c = &cr_tab[i];
	if (!c)
		FAIL("a response for id %llu (op %u), which is not in flight: answered twice, or stale",
		     (unsigned long long)p->id, p->operation);
	if (p->operation != c->rsp_op)
		FAIL("the response to id %llu says op %u, want op %u",
		     (unsigned long long)p->id, p->operation, c->rsp_op);
	/* --gone: an I/O error, once the backend was killed */
	if (p->status != BLKIF_RSP_OKAY &&
	    (!cr_gone || p->status != BLKIF_RSP_ERROR || access(cr_killed, F_OK)))
		FAIL("I/O error: op %u on block %u: status %d", c->op, c->block,
		     p->status);
	if (p->status != BLKIF_RSP_OKAY) {
		/* a write (or discard) that failed may have landed before
		 * the target went, or not: its records are either */
		cr_errors++;
		for (k = 0; c->op != BLKIF_OP_FLUSH_DISKCACHE && k < c->nblk; k++) {
			cr_busy[c->block + k] = false;
			if (c->op != BLKIF_OP_READ)
				cr_undef[c->block + k] = true;
			if (c->op != BLKIF_OP_DISCARD)
				cr_free_pg[cr_nfree++] = c->pages[k];
		}
		c->used = false;
		cr_inflight--;
		return 0;
	}
	counts[c->op == BLKIF_OP_FLUSH_DISKCACHE ? 3 : c->op == BLKIF_OP_DISCARD ? 2 :
	       c->op == BLKIF_OP_READ ? 1 : 0]++;
	cr_nbar += c->rsp_op == BLKIF_OP_WRITE_BARRIER;
	cr_nind += c->ind;
	for (k = 0; c->op != BLKIF_OP_FLUSH_DISKCACHE && k < c->nblk; k++) {
		uint32_t b = c->block + k;

		cr_busy[b] = false;
		if (c->op == BLKIF_OP_DISCARD) {
			cr_undef[b] = true;
			continue;
		}
		if (c->op == BLKIF_OP_WRITE) {
			cr_acked[b] = c->ver[k];
			cr_undef[b] = false;
		} else {
			const char *why = cr_check(cr_page(c->pages[k]), b,
						   cr_acked[b]);

			if (*why)
				FAIL("block %u read back (version %u acknowledged): %s",
				     b, cr_acked[b], why);
		}
		cr_free_pg[cr_nfree++] = c->pages[k];
	}
	c->used = false;
	cr_inflight--;
	return c->op == BLKIF_OP_WRITE;
}

/* Wait for responses; the backend may be dead for a while. */
static void cr_wait(uint64_t *idle_ms)
{
	struct pollfd pf = { .fd = pvio_evtchn_fd(plat), .events = POLLIN };

	if (pvio_ring_front_final_check(&ring, 1))
		return;
	if (poll(&pf, 1, 50) == 0)
		*idle_ms += 50;
	while (pvio_evtchn_pending(plat) >= 0)
		;
	if (*idle_ms > 20000)
		FAIL("no response for 20 s (%u in flight)", cr_inflight);
}

/*
 * --gone --back: after the errors, a read of block 0 every 100 ms until
 * one is answered without error (the target came back), for at most 60 s
 */
static void cr_wait_back(void)
{
	uint64_t t0 = pvio_now_ms();
	int16_t st;

	do {
		if (pvio_now_ms() - t0 > 60000)
			FAIL("the disk still answers I/O errors 60 s after they began");
		poll(NULL, 0, 100);
		st = one(BLKIF_OP_READ, cr_next_id++, 0, 1, NULL);
		if (st != BLKIF_RSP_OKAY && st != BLKIF_RSP_ERROR)
			FAIL("a read while the target is away: status %d", st);
	} while (st != BLKIF_RSP_OKAY);
	if (be_state() != 4)
		FAIL("the backend went to state %lu", be_state());
	printf("OK the disk answers again %llu ms after its errors\n",
	       (unsigned long long)(pvio_now_ms() - t0));
}

/*
 * --gone, after the drain: 8 writes, each followed by a barrier (or a
 * flush), on the ring at once: every one must be answered, with an I/O
 * error, within 5 s (a backend whose target answers inside its submit
 * must not leave requests parked behind a barrier)
 */
static void cr_train(void)
{
	struct blkif_response rsp[32];
	unsigned int i, got = 0, waited = 0, seen = 0;

	for (i = 0; i < 16; i++) {
		struct blkif_request *r = pvio_blkif_front_req(&ring);

		memset(r, 0, sizeof(*r));
		r->id = 90000 + i;
		r->operation = i % 2 == 0 ? BLKIF_OP_WRITE :
			       cr_barrier ? BLKIF_OP_WRITE_BARRIER :
			       BLKIF_OP_FLUSH_DISKCACHE;
		if (r->operation != BLKIF_OP_FLUSH_DISKCACHE) {
			r->sector_number = (uint64_t)i * 8;
			r->nr_segments = 1;
			r->seg[0].gref = data_refs[i];
			r->seg[0].last_sect = 7;
		}
		pvio_ring_front_req_commit(&ring);
	}
	kick();
	while (got < 16) {
		int c = pvio_blkif_front_consume(&ring, rsp, 32);

		if (c < 0)
			FAIL("ring halted: %s", pvio_ring_halt_str(ring.halted));
		for (i = 0; i < (unsigned int)c; i++, got++) {
			uint64_t k = rsp[i].id - 90000;

			if (k >= 16 || (seen & (1u << k)) ||
			    rsp[i].status != BLKIF_RSP_ERROR)
				FAIL("the train's response for id %llu: %s, status %d",
				     (unsigned long long)rsp[i].id,
				     k < 16 && (seen & (1u << k)) ? "twice" : "", rsp[i].status);
			seen |= 1u << k;
		}
		if (c > 0)
			continue;
		if (waited > 5000)
			FAIL("%u of 16 requests (8 writes, each with a %s) answered in 5 s",
			     got, cr_barrier ? "barrier" : "flush");
		if (!pvio_ring_front_final_check(&ring, 1)) {
			struct pollfd pf = { .fd = pvio_evtchn_fd(plat), .events = POLLIN };

			poll(&pf, 1, 20);
			waited += 20;
			while (pvio_evtchn_pending(plat) >= 0)
				;
		}
	}
	printf("OK 8 writes, each with a %s after it, answered with an I/O error, each once\n",
	       cr_barrier ? "barrier" : "flush");
}

static void crash_load(const char *stopfile)
{
	struct blkif_response rsp[32];
	uint64_t counts[4] = { 0 }, idle = 0;
	unsigned int i, k, nwrites = 0, checked = 0;
	bool stopping = false;

	char pause[PVIO_PATH_BUF], paused[PVIO_PATH_BUF];
	bool hold;

	snprintf(pause, sizeof(pause), "%s.pause", stopfile);
	snprintf(paused, sizeof(paused), "%s.paused", stopfile);
	unsigned long max_ind = 0;

	unsigned long feat;

	snprintf(cr_killed, sizeof(cr_killed), "%s.killed", stopfile);
	cr_barrier = rd_uint(be, "feature-barrier", &feat) == 0 && feat;
	cr_discard = rd_uint(be, "feature-discard", &feat) == 0 && feat;
	for (i = 0; i < NDATA; i++)
		cr_free_pg[cr_nfree++] = (uint8_t)i;
	if (rd_uint(be, "feature-max-indirect-segments", &max_ind) == 0 &&
	    max_ind >= CR_MAXSEG &&
	    pvio_gnt_share(plat, 0, CR_INFLIGHT, false, cr_ind_refs,
			   (void **)&cr_ind))
		FAIL("share the indirect pages");
again:
	for (;;) {
		int c;

		if (!stopping && (access(stopfile, F_OK) == 0 || cr_errors))
			stopping = true;
		if (stopping && !cr_inflight)
			break;
		/* STOP.pause: drain, say so (STOP.paused), wait for its removal */
		hold = access(pause, F_OK) == 0;
		if (hold && !cr_inflight) {
			FILE *f = fopen(paused, "w");

			if (f)
				fclose(f);
			while (access(pause, F_OK) == 0)
				poll(NULL, 0, 20);
			unlink(paused);
			continue;
		}
		for (k = 0; !stopping && !hold && k < 64 &&
			    cr_inflight < CR_INFLIGHT && pvio_ring_front_free(&ring); k++)
			cr_issue(nwrites);
		kick();
		c = pvio_blkif_front_consume(&ring, rsp, 32);
		if (c < 0)
			FAIL("ring halted: %s", pvio_ring_halt_str(ring.halted));
		for (i = 0; i < (unsigned int)c; i++)
			nwrites += cr_answer(&rsp[i], counts);
		if (c > 0)
			idle = 0;
		else
			cr_wait(&idle);
	}
	/* nothing more may come */
	poll(NULL, 0, 300);
	if (pvio_blkif_front_consume(&ring, rsp, 32) != 0)
		FAIL("a response after every request was answered");
	printf("OK crash load: %llu writes, %llu reads, %llu discards, %llu flushes acknowledged (%llu indirect, %llu barriers)\n",
	       (unsigned long long)counts[0], (unsigned long long)counts[1],
	       (unsigned long long)counts[2], (unsigned long long)counts[3],
	       (unsigned long long)cr_nind, (unsigned long long)cr_nbar);
	if (cr_gone) {	/* nothing to read back through: the image is checked */
		FILE *f = fopen(cr_gone, "w");

		if (!f)
			FAIL("%s: %s", cr_gone, strerror(errno));
		for (i = 0; i < CR_BLOCKS; i++)
			if (cr_acked[i] && !cr_undef[i] && (checked++, 1))
				fprintf(f, "%u %u\n", i, cr_acked[i]);
		if (fclose(f))
			FAIL("%s: %s", cr_gone, strerror(errno));
		if (be_state() != 4)
			FAIL("the backend went to state %lu: Linux's blkfront would hang",
			     be_state());
		cr_train();
		printf("OK %llu requests answered with an I/O error, each once; %u acknowledged records to find in the image\n",
		       (unsigned long long)cr_errors, checked);
		if (cr_back) {	/* its target comes back: the load again */
			cr_wait_back();
			cr_gone = NULL;
			cr_errors = 0;
			stopping = false;
			goto again;
		}
		/* held, Connected, for the caller to look at */
		while (access(stopfile, F_OK) != 0)
			poll(NULL, 0, 20);
		if (pvio_blkif_front_consume(&ring, rsp, 32) != 0)
			FAIL("a response after every request was answered");
		return;
	}
	/* every acknowledged record is there */
	for (i = 0; i < CR_BLOCKS; i++) {
		const char *why;

		if (!cr_acked[i] || cr_undef[i])
			continue;
		if (one(BLKIF_OP_READ, cr_next_id++, (uint64_t)i * 8, 1, NULL))
			FAIL("read %u", i);
		why = cr_check(cr_page((unsigned int)(cr_next_id - 1) % NDATA),
			       i, cr_acked[i]);
		if (*why)
			FAIL("block %u (version %u acknowledged): %s", i,
			     cr_acked[i], why);
		checked++;
	}
	printf("OK %u acknowledged records read back intact\n", checked);
}

/* Every record in @acked ("BLOCK VERSION" lines) intact in the image file
 * @img, read without any backend. */
static void verify_image(const char *img, const char *acked)
{
	FILE *f = fopen(acked, "r");
	uint64_t pg[512];
	unsigned int b, v, n = 0;
	int fd = open(img, O_RDONLY);

	if (!f || fd < 0)
		FAIL("open %s / %s: %s", img, acked, strerror(errno));
	while (fscanf(f, "%u %u", &b, &v) == 2) {
		const char *why;

		if (b >= CR_BLOCKS ||
		    pread(fd, pg, sizeof(pg), (off_t)b * 4096) != sizeof(pg))
			FAIL("%s: cannot read block %u", img, b);
		why = cr_check(pg, b, v);
		if (*why)
			FAIL("%s: block %u (version %u acknowledged): %s", img, b,
			     v, why);
		n++;
	}
	fclose(f);
	close(fd);
	if (!n)
		FAIL("%s: no record to look for", acked);
	printf("OK %u acknowledged records intact in %s\n", n, img);
}

/* Every exit path gives the handles back (a leak checker is watching). */
static void close_handles(void)
{
	pvio_xs_close(xs);
	xs = NULL;
	pvio_platform_close(plat);
	plat = NULL;
}

/* A bogus req_prod (1000 requests more than the ring holds): the backend
 * must fail the device (Closing). */
static void break_ring(void)
{
	struct pvio_sring *s = ring_mem;

	s->req_prod += 1000;
	pvio_evtchn_notify(plat, (pvio_port_t)port);
	if (!wait_be(5, 5000))
		FAIL("backend state %lu after ring overflow, want Closing",
		     be_state());
}

/* Our Closed: the backend must drain what it holds and close within 5 s
 * (before any remote timeout: nothing may wait for one). */
static void closed_after_drain(void)
{
	wr("state", "6");
	if (!wait_be(6, 5000))
		FAIL("backend state %lu 5 s after our Closed: it did not drain",
		     be_state());
}

int main(int argc, char **argv)
{
	const char *cmd;
	char p[PVIO_XS_PATH_MAX + 16], *b = NULL;
	unsigned int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 5 && !strcmp(argv[2], "verify-image")) {
		verify_image(argv[3], argv[4]);
		return 0;
	}
	if (argc < 3 || !getenv("PVIO_DOMID"))
		FAIL("usage: t-blkclient DEVID CMD ... (under pvio-ctl run)");
	domid = (unsigned int)atoi(getenv("PVIO_DOMID"));
	devid = (unsigned int)atoi(argv[1]);
	cmd = argv[2];
	for (i = 3; i + 1 < (unsigned int)argc; i++)
		if (!strcmp(argv[i], "--order"))
			order = (unsigned int)atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--gone"))
			cr_gone = argv[i + 1];
	for (i = 3; i < (unsigned int)argc; i++)
		if (!strcmp(argv[i], "--back"))
			cr_back = true;
	atexit(close_handles);
	if (pvio_platform_open(&plat, NULL, domid, 0))
		FAIL("attach as domain %u", domid);
	if (pvio_xs_open(&xs, plat))
		FAIL("xenstore");
	pvio_xb_frontend_path(fe, domid, "vbd", devid);
	snprintf(p, sizeof(p), "%s/backend", fe);
	if (pvio_xs_read(xs, 0, p, &b) < 0)
		FAIL("no vbd %u", devid);
	snprintf(be, sizeof(be), "%s", b);
	free(b);

	if (!strcmp(cmd, "xs-hostile"))
		return argc > 3 ? hostile_xs(argv[3]) : 1;
	if (!strcmp(cmd, "flap")) {
		unsigned int n = argc > 3 ? (unsigned int)atoi(argv[3]) : 50;

		for (i = 0; i < n; i++) {
			wr("state", "%u", 1 + (i * 7) % 8);
			if (i % 5 == 0)
				wr("state", "%u", 99 + i);	/* garbage */
		}
		wr("state", "6");
		printf("OK flapped %u times\n", n);
		return 0;
	}
	if (!strcmp(cmd, "prefill")) {
		unsigned int k;

		wr("state", "1");
		if (!wait_be(2, 5000))
			FAIL("no InitWait");
		setup_ring();
		for (k = 0; k < 8; k++)
			rq(BLKIF_OP_WRITE, 100 + k, (uint64_t)k * 8, 1);
		pvio_ring_front_push(&ring);
		publish_ring();
		wr("state", "3");
		if (!wait_be(5, 5000))
			FAIL("backend state %lu, want Closing (a queue that cannot start)",
			     be_state());
		closed_after_drain();
		printf("OK a queue that could not start: nothing taken, Closed\n");
		return 0;
	}
	connect_dev();
	if (!strcmp(cmd, "connect")) {
		for (;;)
			pause();
	} else if (!strcmp(cmd, "io")) {
		io_check(argc > 3 ? (unsigned int)atoi(argv[3]) : 100);
		teardown();
	} else if (!strcmp(cmd, "bad")) {
		bad();
		teardown();
	} else if (!strcmp(cmd, "overflow")) {
		io_check(2);
		break_ring();
		printf("OK ring overflow: backend closed the device\n");
		wr("state", "6");
		wait_be(6, 5000);
	} else if (!strcmp(cmd, "halt-pending")) {
		struct blkif_response rsp;

		rq(BLKIF_OP_WRITE, 1, 0, 1);
		kick();
		usleep(500000);
		if (pvio_blkif_front_consume(&ring, &rsp, 1) != 0)
			FAIL("the write was answered (%d): is the server up?",
			     rsp.status);
		break_ring();
		closed_after_drain();
		printf("OK halted with a write waiting for a server: drained, Closed\n");
		return 0;
	} else if (!strcmp(cmd, "storm")) {
		for (i = 0; i < 100000; i++)
			pvio_evtchn_notify(plat, (pvio_port_t)port);
		io_check(5);
		teardown();
	} else if (!strcmp(cmd, "close")) {
		teardown();
	} else if (!strcmp(cmd, "ro")) {
		ro();
		teardown();
	} else if (!strcmp(cmd, "barriers") && argc > 3) {
		unsigned int n = (unsigned int)atoi(argv[3]);
		unsigned long sectors = 0;

		rd_uint(be, "sectors", &sectors);
		for (i = 0; i < n; i++) {
			int16_t st = one(BLKIF_OP_WRITE_BARRIER, i,
					 (i * 8ull) % (sectors - 8), 1, NULL);

			if (st)
				FAIL("barrier %u: status %d", i, st);
		}
		printf("OK %u barriers\n", n);
		teardown();
	} else if (!strcmp(cmd, "discard-io") && argc > 3) {
		int16_t st;

		discard_sectors = strtoull(argv[3], NULL, 0);
		st = one(BLKIF_OP_DISCARD, 77, 0, 0, discard_n);
		if (st)
			FAIL("discard of %llu sectors: status %d",
			     (unsigned long long)discard_sectors, st);
		io_check(2);
		printf("OK discard of %llu sectors, then I/O\n",
		       (unsigned long long)discard_sectors);
		teardown();
	} else if (!strcmp(cmd, "ops")) {
		ops();
		teardown();
	} else if (!strcmp(cmd, "resize")) {
		resize();
		teardown();
	} else if (!strcmp(cmd, "mark")) {
		unsigned int blk = argc > 3 ? (unsigned int)atoi(argv[3]) : 0;
		unsigned char *pg = (unsigned char *)data + 4096;	/* id 1 */

		memset(pg, (int)(blk & 0xff) | 1, 4096);
		if (one(BLKIF_OP_WRITE, 1, (uint64_t)blk * 8, 1, NULL))
			FAIL("mark %u: write failed", blk);
		memset(pg, 0, 4096);
		if (one(BLKIF_OP_READ, 1, (uint64_t)blk * 8, 1, NULL) ||
		    pg[4095] != ((blk & 0xff) | 1))
			FAIL("mark %u: read back", blk);
		teardown();
	} else if (!strcmp(cmd, "crash")) {
		if (argc < 4)
			FAIL("crash STOPFILE");
		crash_load(argv[3]);
		teardown();
	} else if (!strcmp(cmd, "beyond")) {
		/* a read and a write at SECTOR must fail (past the end) */
		uint64_t sec = argc > 3 ? strtoull(argv[3], NULL, 10) : 0;

		if (one(BLKIF_OP_READ, 1, sec, 1, NULL) != BLKIF_RSP_ERROR)
			FAIL("read at sector %llu did not fail",
			     (unsigned long long)sec);
		if (one(BLKIF_OP_WRITE, 2, sec, 1, NULL) != BLKIF_RSP_ERROR)
			FAIL("write at sector %llu did not fail",
			     (unsigned long long)sec);
		printf("OK I/O at sector %llu refused\n", (unsigned long long)sec);
		teardown();
	} else if (!strcmp(cmd, "stress")) {
		if (argc < 5)
			FAIL("stress N LOG");
		stress((unsigned int)atoi(argv[3]), argv[4]);
		teardown();
	} else {
		FAIL("unknown command %s", cmd);
	}
	return 0;
}
