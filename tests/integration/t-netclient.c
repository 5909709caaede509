// SPDX-License-Identifier: MIT
/*
 * t-netclient: a raw netif frontend for tests, which can also misbehave on
 * purpose. Runs as a sim domain (under `pvio-ctl run`).
 *
 *   t-netclient DEVID tx N SIZE       send N frames of SIZE bytes (ethertype
 *                                     0x88b5, payload: frame number), in
 *                                     slots of at most 2048 bytes
 *   t-netclient DEVID rx N            receive N frames, print their sizes
 *                                     and first payload bytes (with T_NO_SG
 *                                     in the environment: no feature-sg)
 *   t-netclient DEVID drop KIND       a malformed packet the backend must
 *                                     drop (ERROR responses), then a good one
 *   t-netclient DEVID fatal KIND      a packet the backend must treat as
 *                                     fatal: it disconnects us
 *   t-netclient DEVID noroom FILE     post no rx buffers until FILE exists,
 *                                     then some: nothing crashes, stalls drop
 *   t-netclient DEVID hold FILE       connected, no rx buffers posted, until
 *                                     FILE exists; then close
 *   t-netclient DEVID flap N          N rounds as fast as the backend
 *                                     answers: a frame, then Closing, Closed,
 *                                     Initialising, Connected again
 *   t-netclient DEVID mq-mixed N      two queues, one event channel for
 *                                     queue 0, split ones for queue 1;
 *                                     receive N UDP frames to port 9999,
 *                                     each queue's ring read only when its
 *                                     own rx port fires (as netfront's
 *                                     interrupt handlers); both queues must
 *                                     get some
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "t-xb.h"

#define NPAGES 64

static struct pvio_platform *plat;
static struct pvio_xs *xs;
static char fe[PVIO_XS_PATH_MAX], be[PVIO_XS_PATH_MAX];
static struct pvio_ring_front tx, rx;
static void *tx_mem, *rx_mem, *pages;
static pvio_gref_t tx_ref, rx_ref, refs[NPAGES];
static int port;
static uint8_t mac[6];

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

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
	return t_xb_wait_state(xs, be, 1u << want, 10, ms);
}

static char *page(unsigned int i)
{
	return (char *)pages + (size_t)i * 4096;
}

static void connect_dev(void)
{
	char p[PVIO_XS_PATH_MAX + 16], *m = NULL;

	snprintf(p, sizeof(p), "%s/mac", fe);
	if (pvio_xs_read(xs, 0, p, &m) < 0 ||
	    sscanf(m, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &mac[0], &mac[1],
		   &mac[2], &mac[3], &mac[4], &mac[5]) != 6)
		FAIL("mac");
	free(m);
	wr("state", "1");
	if (!wait_be(2, 5000))
		FAIL("backend not in InitWait");
	/* what netfront refuses to go on without (a stale backend dir, not
	 * probed again after a re-attach, has none) */
	snprintf(p, sizeof(p), "%s/feature-rx-copy", be);
	if (pvio_xs_read(xs, 0, p, &m) < 0)
		FAIL("backend %s does not offer feature-rx-copy", be);
	free(m);
	if (pvio_gnt_share(plat, 0, 1, true, &tx_ref, &tx_mem) ||
	    pvio_gnt_share(plat, 0, 1, true, &rx_ref, &rx_mem) ||
	    pvio_gnt_share(plat, 0, NPAGES, true, refs, &pages))
		FAIL("share");
	pvio_netif_tx_front_init(&tx, tx_mem, 1);
	pvio_netif_rx_front_init(&rx, rx_mem, 1);
	port = pvio_evtchn_alloc_unbound(plat, 0);
	wr("tx-ring-ref", "%u", tx_ref);
	wr("rx-ring-ref", "%u", rx_ref);
	wr("event-channel", "%d", port);
	wr("request-rx-copy", "1");
	wr("feature-rx-notify", getenv("T_NO_RX_NOTIFY") ? "0" : "1");
	wr("feature-sg", getenv("T_NO_SG") ? "0" : "1");
	wr("state", "4");
	if (!wait_be(4, 5000))
		FAIL("backend not Connected (%lu)", be_state());
	printf("OK connected\n");
}

static void kick_tx(void)
{
	if (pvio_ring_front_push(&tx))
		pvio_evtchn_notify(plat, (pvio_port_t)port);
}

static void wait_ev(int ms)
{
	struct pollfd p = { .fd = pvio_evtchn_fd(plat), .events = POLLIN };

	poll(&p, 1, ms);
	while (pvio_evtchn_pending(plat) >= 0)
		;
}

static struct netif_tx_request *slot(uint16_t id, pvio_gref_t gref,
				     uint16_t off, uint16_t size,
				     uint16_t flags)
{
	struct netif_tx_request *r = pvio_netif_tx_front_req(&tx);

	r->gref = gref;
	r->offset = off;
	r->size = size;
	r->flags = flags;
	r->id = id;
	pvio_ring_front_req_commit(&tx);
	return r;
}

/* Collect @n tx responses; return how many had status @want. */
static unsigned int tx_responses(unsigned int n, int16_t want)
{
	struct netif_tx_response r[256];
	unsigned int got = 0, match = 0;
	int waited = 0;

	while (got < n) {
		int c = pvio_netif_tx_front_consume(&tx, r, n - got), i;

		if (c < 0)
			FAIL("tx ring halted");
		for (i = 0; i < c; i++)
			if (r[i].status == want || (want == NETIF_RSP_OKAY &&
						    r[i].status == NETIF_RSP_NULL))
				match++;
		got += (unsigned int)c;
		if (got < n && !pvio_ring_front_final_check(&tx, 1)) {
			wait_ev(100);
			if ((waited += 100) > 5000)
				FAIL("tx responses: %u of %u", got, n);
		}
	}
	return match;
}

/* A frame in page @pg: broadcast, from our MAC, ethertype 0x88b5. */
static void frame(unsigned int pg, unsigned int len, uint32_t num)
{
	char *f = page(pg);
	unsigned int i;

	memset(f, 0xff, 6);
	memcpy(f + 6, mac, 6);
	f[12] = (char)0x88;
	f[13] = (char)0xb5;
	memcpy(f + 14, &num, 4);
	for (i = 18; i < len && i < 4096; i++)
		f[i] = (char)(i ^ num);
}

/* One frame at a time (its pages are reused by the next one). */
static void send_frames(unsigned int n, unsigned int size)
{
	unsigned int i, nslots = (size + 2047) / 2048;

	if (nslots > 18)
		FAIL("%u bytes need more than 18 slots", size);
	for (i = 0; i < n; i++) {
		unsigned int left = size, k;

		/* the first slot holds the total size; slots of at most
		 * 2048 bytes, each in its own page */
		frame(0, size < 2048 ? size : 2048, i);
		for (k = 0; k < nslots; k++) {
			unsigned int len = left < 2048 ? left : 2048;

			if (k)
				memset(page(k), (int)k, len);
			slot((uint16_t)k, refs[k], 0,
			     k ? (uint16_t)len : (uint16_t)size,
			     k + 1 < nslots ? NETTXF_more_data : 0);
			left -= len;
		}
		kick_tx();
		if (tx_responses(nslots, NETIF_RSP_OKAY) != nslots)
			FAIL("frame %u not OKAY", i);
	}
	printf("OK %u frames of %u bytes sent\n", n, size);
}

static void post_rx(unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n && pvio_ring_front_free(&rx); i++) {
		struct netif_rx_request *r = pvio_netif_rx_front_req(&rx);
		unsigned int idx = rx.req_prod_pvt % 32;

		r->id = (uint16_t)(rx.req_prod_pvt & 0xff);
		r->gref = refs[NPAGES - 32 + idx];
		pvio_ring_front_req_commit(&rx);
	}
	if (pvio_ring_front_push(&rx))
		pvio_evtchn_notify(plat, (pvio_port_t)port);
}

/* Receive @n test frames (ethertype 0x88b5; other traffic, such as IPv6
 * neighbour discovery from the dom0 side, is skipped). Each must be
 * whole: its payload is (byte index ^ frame number) after the number. */
static void recv_frames(unsigned int n)
{
	static uint8_t pkt[65536];
	struct netif_rx_response r;
	unsigned int got = 0, plen = 0;
	int waited = 0;

	post_rx(32);
	printf("OK rx buffers posted\n");
	while (got < n) {
		int c = pvio_netif_rx_front_consume(&rx, &r, 1);
		unsigned int idx;

		if (c < 0)
			FAIL("rx ring halted");
		if (c == 0) {
			if (!pvio_ring_front_final_check(&rx, 1)) {
				wait_ev(100);
				if ((waited += 100) > 10000)
					FAIL("rx: %u of %u frames", got, n);
			}
			continue;
		}
		if (r.status < 0 || r.offset + r.status > 4096 ||
		    plen + (unsigned int)r.status > sizeof(pkt))
			FAIL("rx response status %d offset %u", r.status, r.offset);
		idx = (rx.rsp_cons - 1) % 32;
		memcpy(pkt + plen, page(NPAGES - 32 + idx) + r.offset,
		       (size_t)r.status);
		plen += (unsigned int)r.status;
		post_rx(1);
		if (r.flags & NETRXF_more_data)
			continue;
		if (plen >= 18 && pkt[12] == 0x88 && pkt[13] == 0xb5) {
			uint32_t num, i;

			memcpy(&num, pkt + 14, 4);
			for (i = 18; i < plen; i++)
				if (pkt[i] != (uint8_t)((i - 18) ^ num))
					FAIL("frame %u: byte %u corrupt", num, i);
			printf("RX %u bytes, frame %u\n", plen, num);
			got++;
		}
		plen = 0;
	}
	printf("OK %u frames received\n", n);
}

static void drop(const char *kind)
{
	unsigned int want;

	frame(0, 100, 7);
	if (!strcmp(kind, "short")) {		/* first slot < 14 bytes */
		slot(1, refs[0], 0, 10, 0);
		want = 1;
	} else if (!strcmp(kind, "chain")) {	/* slots bigger than the total */
		slot(1, refs[0], 0, 100, NETTXF_more_data);
		slot(2, refs[1], 0, 200, 0);
		want = 2;
	} else if (!strcmp(kind, "slots19")) {	/* 19 slots: too many, dropped */
		unsigned int k;

		slot(1, refs[0], 0, 19 * 100, NETTXF_more_data);
		for (k = 1; k < 19; k++)
			slot((uint16_t)(1 + k), refs[k], 0, 100,
			     k < 18 ? NETTXF_more_data : 0);
		want = 19;
	} else if (!strcmp(kind, "gref")) {	/* not granted */
		slot(1, 31000, 0, 100, 0);
		want = 1;
	} else {
		FAIL("unknown drop %s", kind);
	}
	kick_tx();
	if (tx_responses(want, NETIF_RSP_ERROR) != want)
		FAIL("%s: not all slots answered with an error", kind);
	send_frames(3, 300);
	printf("OK dropped: %s; the vif still works\n", kind);
}

static void fatal(const char *kind)
{
	struct netif_extra_info ex;
	struct netif_tx_request *r;

	frame(0, 100, 9);
	if (!strcmp(kind, "cross")) {		/* offset + size > 4096 */
		slot(1, refs[0], 4000, 200, 0);
	} else if (!strcmp(kind, "slots21")) {
		unsigned int k;

		slot(1, refs[0], 0, 21 * 10, NETTXF_more_data);
		for (k = 1; k < 21; k++)
			slot((uint16_t)(1 + k), refs[k], 0, 10, NETTXF_more_data);
	} else if (!strcmp(kind, "extra")) {	/* extra-info of type 0 */
		slot(1, refs[0], 0, 100, NETTXF_extra_info);
		r = pvio_netif_tx_front_req(&tx);
		memset(&ex, 0, sizeof(ex));
		memset(r, 0, sizeof(*r));
		memcpy(r, &ex, sizeof(ex));
		pvio_ring_front_req_commit(&tx);
	} else if (!strcmp(kind, "gso0")) {	/* GSO with size 0 */
		slot(1, refs[0], 0, 100, NETTXF_extra_info);
		r = pvio_netif_tx_front_req(&tx);
		memset(r, 0, sizeof(*r));
		memset(&ex, 0, sizeof(ex));
		ex.type = XEN_NETIF_EXTRA_TYPE_GSO;
		ex.u.gso.type = XEN_NETIF_GSO_TYPE_TCPV4;
		memcpy(r, &ex, sizeof(ex));
		pvio_ring_front_req_commit(&tx);
	} else if (!strcmp(kind, "unpublished")) {	/* more_data, no more */
		slot(1, refs[0], 0, 200, NETTXF_more_data);
	} else if (!strcmp(kind, "overflow")) {
		((struct pvio_sring *)tx_mem)->req_prod += 500;
		pvio_evtchn_notify(plat, (pvio_port_t)port);
		goto wait;
	} else {
		FAIL("unknown fatal %s", kind);
	}
	kick_tx();
wait:
	if (!wait_be(5, 5000))
		FAIL("%s: backend state %lu, want Closing", kind, be_state());
	printf("OK fatal: %s; the backend disconnected this vif\n", kind);
	wr("state", "6");
	wait_be(6, 5000);
}

/* The backend's state is one of @mask's (bits), polled each ms. */
static bool wait_be_fast(unsigned int mask, int ms)
{
	return t_xb_wait_state(xs, be, mask, 1, ms);
}

/* The vif's queue stops and starts again and again (each stop quiesces it
 * with reads posted on the TAP and a frame just written). */
static void flap(unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		send_frames(1, 60);
		wr("state", "5");
		if (!wait_be_fast(1u << 5 | 1u << 6, 5000))
			FAIL("round %u: backend not Closing (%lu)", i, be_state());
		wr("state", "6");
		if (!wait_be_fast(1u << 6, 5000))
			FAIL("round %u: backend not Closed (%lu)", i, be_state());
		wr("state", "1");
		if (!wait_be_fast(1u << 2, 5000))
			FAIL("round %u: backend not InitWait (%lu)", i, be_state());
		pvio_netif_tx_front_init(&tx, tx_mem, 1);
		pvio_netif_rx_front_init(&rx, rx_mem, 1);
		wr("state", "4");
		if (!wait_be_fast(1u << 4, 5000))
			FAIL("round %u: backend not Connected (%lu)", i, be_state());
	}
	printf("OK %u rounds of flapping\n", n);
}

/* Every exit path gives the handles back (a leak checker is watching). */
/* ---- two queues, mixed event-channel layouts --------------------------------- */

#define MQ_BUFS	16	/* rx buffers per queue: pages q * MQ_BUFS + i */

static struct pvio_ring_front mq_rx[2];

static void mq_post(unsigned int q, unsigned int i, int rx_port)
{
	struct netif_rx_request *r = pvio_netif_rx_front_req(&mq_rx[q]);

	r->id = (uint16_t)i;
	r->gref = refs[q * MQ_BUFS + i];
	pvio_ring_front_req_commit(&mq_rx[q]);
	if (pvio_ring_front_push(&mq_rx[q]))
		pvio_evtchn_notify(plat, (pvio_port_t)rx_port);
}

static void mq_connect(int *rx_port)
{
	static struct pvio_ring_front mq_tx[2];
	pvio_gref_t tref, rref;
	void *tmem, *rmem;
	char key[64];
	unsigned int q;
	int tx_port;

	wr("state", "1");
	if (!wait_be(2, 5000))
		FAIL("backend not in InitWait");
	if (pvio_gnt_share(plat, 0, NPAGES, true, refs, &pages))
		FAIL("share");
	wr("multi-queue-num-queues", "2");
	for (q = 0; q < 2; q++) {
		if (pvio_gnt_share(plat, 0, 1, true, &tref, &tmem) ||
		    pvio_gnt_share(plat, 0, 1, true, &rref, &rmem))
			FAIL("share rings");
		pvio_netif_tx_front_init(&mq_tx[q], tmem, 1);
		pvio_netif_rx_front_init(&mq_rx[q], rmem, 1);
		snprintf(key, sizeof(key), "queue-%u/tx-ring-ref", q);
		wr(key, "%u", tref);
		snprintf(key, sizeof(key), "queue-%u/rx-ring-ref", q);
		wr(key, "%u", rref);
		tx_port = pvio_evtchn_alloc_unbound(plat, 0);
		if (q == 0) {
			rx_port[q] = tx_port;
			wr("queue-0/event-channel", "%d", tx_port);
		} else {
			rx_port[q] = pvio_evtchn_alloc_unbound(plat, 0);
			wr("queue-1/event-channel-tx", "%d", tx_port);
			wr("queue-1/event-channel-rx", "%d", rx_port[q]);
		}
	}
	wr("request-rx-copy", "1");
	wr("feature-rx-notify", "1");
	wr("feature-sg", "1");
	wr("state", "4");
	if (!wait_be(4, 5000))
		FAIL("backend not Connected (%lu)", be_state());
}

/* A UDP frame to port 9999 in @q's buffer @i? */
static bool mq_frame(unsigned int q, const struct netif_rx_response *r)
{
	const uint8_t *f = (const uint8_t *)page(q * MQ_BUFS + r->id) + r->offset;

	return r->status >= 38 && !(r->flags & NETRXF_more_data) &&
	       f[12] == 0x08 && f[13] == 0x00 && f[23] == 17 &&
	       f[36] == 9999 >> 8 && f[37] == (9999 & 0xff);
}

static void mq_mixed(unsigned int n)
{
	unsigned int got[2] = { 0, 0 }, q, i;
	int rx_port[2], waited = 0, pt;

	mq_connect(rx_port);
	for (q = 0; q < 2; q++) {
		for (i = 0; i < MQ_BUFS; i++)
			mq_post(q, i, rx_port[q]);
		pvio_ring_front_final_check(&mq_rx[q], 1);
	}
	printf("OK ready\n");
	while (got[0] + got[1] < n) {
		struct pollfd p = { .fd = pvio_evtchn_fd(plat), .events = POLLIN };

		if ((waited += 100) > 10000)
			FAIL("rx: %u of %u frames (queue 0 %u, queue 1 %u): a queue's port did not fire",
			     got[0] + got[1], n, got[0], got[1]);
		poll(&p, 1, 100);
		while ((pt = pvio_evtchn_pending(plat)) >= 0) {
			q = pt == rx_port[0] ? 0 : pt == rx_port[1] ? 1 : 2;
			if (q == 2)
				continue;	/* queue 1's tx port */
			do {
				struct netif_rx_response r;

				while (pvio_netif_rx_front_consume(&mq_rx[q], &r, 1) == 1) {
					if (r.id >= MQ_BUFS)
						FAIL("rx response id %u", r.id);
					got[q] += mq_frame(q, &r);
					mq_post(q, r.id, rx_port[q]);
				}
			} while (pvio_ring_front_final_check(&mq_rx[q], 1));
		}
	}
	if (!got[0] || !got[1])
		FAIL("all %u frames on one queue (0: %u, 1: %u): nothing shown", n,
		     got[0], got[1]);
	printf("OK %u frames: queue 0 (one event channel) %u, queue 1 (split) %u\n",
	       n, got[0], got[1]);
}

static void close_handles(void)
{
	pvio_xs_close(xs);
	xs = NULL;
	pvio_platform_close(plat);
	plat = NULL;
}

int main(int argc, char **argv)
{
	char p[PVIO_XS_PATH_MAX + 16], *b = NULL;
	unsigned int devid;
	const char *cmd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3 || !getenv("PVIO_DOMID"))
		FAIL("usage: t-netclient DEVID CMD ... (under pvio-ctl run)");
	devid = (unsigned int)atoi(argv[1]);
	cmd = argv[2];
	atexit(close_handles);
	if (pvio_platform_open(&plat, NULL, (unsigned int)atoi(getenv("PVIO_DOMID")), 0) ||
	    pvio_xs_open(&xs, plat))
		FAIL("attach");
	pvio_xb_frontend_path(fe, pvio_platform_domid(plat), "vif", devid);
	snprintf(p, sizeof(p), "%s/backend", fe);
	if (pvio_xs_read(xs, 0, p, &b) < 0)
		FAIL("no vif %u", devid);
	snprintf(be, sizeof(be), "%s", b);
	free(b);
	if (!strcmp(cmd, "mq-mixed") && argc > 3) {
		mq_mixed((unsigned int)atoi(argv[3]));
		goto close;
	}
	connect_dev();
	if (!strcmp(cmd, "tx") && argc > 4) {
		/* with a go file: connected, wait for it before sending (the
		 * test waits until the vif can pass frames) */
		int waited = 0;

		if (argc > 5) {
			printf("OK connected\n");
			while (access(argv[5], F_OK) && waited++ < 6000)
				usleep(10000);
		}
		send_frames((unsigned int)atoi(argv[3]), (unsigned int)atoi(argv[4]));
	} else if (!strcmp(cmd, "rx") && argc > 3) {
		recv_frames((unsigned int)atoi(argv[3]));
	} else if (!strcmp(cmd, "drop") && argc > 3) {
		drop(argv[3]);
	} else if (!strcmp(cmd, "fatal") && argc > 3) {
		fatal(argv[3]);
		return 0;
	} else if (!strcmp(cmd, "hold") && argc > 3) {
		int waited = 0;

		printf("OK holding\n");
		while (access(argv[3], F_OK) && waited++ < 6000)
			usleep(10000);
	} else if (!strcmp(cmd, "flap") && argc > 3) {
		flap((unsigned int)atoi(argv[3]));
	} else if (!strcmp(cmd, "noroom") && argc > 3) {
		/* no rx buffers until told: the backend holds, then drops */
		int waited = 0;

		printf("OK waiting without rx buffers\n");
		while (access(argv[3], F_OK) && waited++ < 6000)
			usleep(10000);
		recv_frames(1);
	} else {
		FAIL("bad command");
	}
close:
	wr("state", "5");
	wait_be(5, 3000);
	wr("state", "6");
	if (!wait_be(6, 5000))
		FAIL("backend not Closed");
	printf("OK closed\n");
	return 0;
}
