// SPDX-License-Identifier: MIT
/*
 * t-chaos: a randomized hostile guest. It runs as a sim domain (under
 * `pvio-ctl run`) with a vbd and a vif, and for a bounded time plays
 * episodes picked by a seeded generator, each in a child process of its
 * own (so that one can die mid-I/O, as a crashing guest does):
 *
 *   blk    connect the vbd (sometimes with a hostile ring order), then
 *          random, mutated and well-formed requests, indirect ones with
 *          garbage pages, bad and foreign grant refs, index games
 *          (req_prod jumping ahead, backwards, past the ring), event
 *          storms; close, stay, or die
 *   net    the same on the vif's tx ring (slot chains, extra-info, sizes,
 *          offsets) and rx ring (random rx requests)
 *   xs     hostile values for every frontend key of the vbd or the vif,
 *          then Initialised/Connected
 *   flap   the vbd's or vif's state flapping, garbage states included
 *   storm  a watch storm: the same state written thousands of times
 *
 *   t-chaos SECONDS SEED VBD_DEVID VIF_DEVID
 *
 * Everything it does is allowed to fail (the backend may refuse and
 * disconnect it: that is its job); what the test checks is the backend
 * and the neighbour. Prints the seed and each episode's kind and seed: a
 * failing seed reproduces the same sequence of episodes.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "t-xb.h"

#define NDATA		16	/* data pages per session */
#define EPISODE_MS	4000	/* a child running longer is killed */

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static uint64_t rng_state;

static uint64_t rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static uint32_t below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

static bool chance(unsigned int pct)
{
	return below(100) < pct;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- one session's handles (in the episode's child) ---------------------- */

static unsigned int domid;
static struct pvio_platform *plat;
static struct pvio_xs *xs;
static char fe[PVIO_XS_PATH_MAX], be[PVIO_XS_PATH_MAX];

static void attach(const char *type, unsigned int devid)
{
	char p[PVIO_XS_PATH_MAX + 16], *b = NULL;

	if (pvio_platform_open(&plat, NULL, domid, 0))
		FAIL("attach as domain %u", domid);
	if (pvio_xs_open(&xs, plat))
		FAIL("xenstore");
	pvio_xb_frontend_path(fe, domid, type, devid);
	snprintf(p, sizeof(p), "%s/backend", fe);
	if (pvio_xs_read(xs, 0, p, &b) < 0)
		FAIL("no %s %u", type, devid);
	snprintf(be, sizeof(be), "%s", b);
	free(b);
}

static void wr(const char *key, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void wr(const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	t_xb_vwrite(xs, fe, key, fmt, ap);	/* a quota may refuse: fine */
	va_end(ap);
}

static bool wait_be(unsigned int mask, int ms)
{
	return t_xb_wait_state(xs, be, mask, 5, ms);
}

#define M(s)	(1u << (s))

/* What earlier episodes left (hostile values too): a real frontend
 * removes it before it connects; mostly, so do we. */
static void clear_keys(const char *const *keys, unsigned int n)
{
	char p[PVIO_XS_PATH_MAX + 64];
	unsigned int i;

	if (chance(10))
		return;
	for (i = 0; i < n; i++) {
		if (!strcmp(keys[i], "state"))
			continue;
		snprintf(p, sizeof(p), "%s/%s", fe, keys[i]);
		pvio_xs_rm(xs, 0, p);
	}
}

/* From whatever state: Closed, then Initialising; the backend offers
 * again (InitWait) unless it gave up on us. */
static bool restart(void)
{
	wr("state", "6");
	wait_be(M(6) | M(2), 1500);
	wr("state", "1");
	return wait_be(M(2), 1500);
}

static void close_dev(void)
{
	wr("state", "5");
	wait_be(M(5) | M(6), 500);
	wr("state", "6");
	wait_be(M(6), 500);
}

/* How an episode ends: properly, left as it is, or dead mid-I/O. */
static void finish(void)
{
	switch (below(4)) {
	case 0:
		printf("  dies\n");
		fflush(stdout);
		raise(SIGKILL);
		break;
	case 1:
		printf("  exits without closing\n");
		fflush(stdout);
		_exit(0);
	default:
		close_dev();
		break;
	}
}

/* ---- values -------------------------------------------------------------- */

static const char *const hostile_vals[] = {
	"", "-1", "0x", "0x+1", "0x 1", "0x-1", "\t4", " 4", "4 ", "+4",
	"4294967295", "4294967296", "18446744073709551615",
	"99999999999999999999999999", "0xffffffffffffffff", "abc", "1e9",
	"0", "1", "2", "3", "4", "5", "16", "17", "31", "32", "1024", "65535",
	"65536", "131071", "131072", "x86_32-abi", "x86_64-abi", "arm-abi",
	"native", "%s%s%s%n", "../../../etc/passwd", "/local/domain/0",
	"\xff\xfe", "1\n2",
};

static const char *hostile_val(char *buf, size_t len)
{
	unsigned int i, n;

	switch (below(4)) {
	case 0:		/* a long run of digits or garbage */
		n = below((unsigned int)len - 1);
		for (i = 0; i < n; i++)
			buf[i] = chance(50) ? (char)('0' + below(10)) :
					      (char)(1 + below(255));
		buf[n] = 0;
		return buf;
	case 1:
		snprintf(buf, len, "%u", (unsigned int)rnd());
		return buf;
	default:
		return hostile_vals[below(sizeof(hostile_vals) /
					  sizeof(hostile_vals[0]))];
	}
}

/* ---- blk ------------------------------------------------------------------- */

static const char *const blk_keys[] = {
	"ring-ref", "ring-ref0", "ring-ref1", "ring-ref2", "ring-ref3",
	"ring-ref15", "ring-ref16", "ring-page-order", "event-channel",
	"protocol", "multi-queue-num-queues", "queue-0/ring-ref",
	"queue-0/event-channel", "queue-1/ring-ref", "queue-1/event-channel",
	"feature-persistent", "state",
};

static struct pvio_ring_front ring;
static void *ring_mem, *data;
static pvio_gref_t ring_refs[16], data_refs[NDATA];
static int port = -1;
static unsigned int order;

static bool blk_connect(void)
{
	unsigned int i, pages;
	char k[32];

	if (!restart())
		return false;
	clear_keys(blk_keys, sizeof(blk_keys) / sizeof(blk_keys[0]));
	order = chance(80) ? below(5) : 0;
	pages = 1u << order;
	if (pvio_gnt_share(plat, 0, pages, true, ring_refs, &ring_mem) ||
	    pvio_gnt_share(plat, 0, NDATA, true, data_refs, &data))
		return false;
	pvio_blkif_front_init(&ring, ring_mem, pages);
	port = pvio_evtchn_alloc_unbound(plat, 0);
	if (port < 0)
		return false;
	if (order || chance(10)) {
		/* sometimes a hostile order: more than we shared */
		wr("ring-page-order", "%u", chance(90) ? order : below(8));
		for (i = 0; i < pages; i++) {
			snprintf(k, sizeof(k), "ring-ref%u", i);
			wr(k, "%u", ring_refs[i]);
		}
	} else {
		wr("ring-ref", "%u", ring_refs[0]);
	}
	wr("event-channel", "%d", port);
	wr("protocol", "x86_64-abi");
	wr("state", "3");
	if (!wait_be(M(4), 1500))
		return false;
	wr("state", "4");
	return true;
}

static pvio_gref_t any_gref(void)
{
	switch (below(6)) {
	case 0:
		return (pvio_gref_t)rnd();		/* garbage */
	case 1:
		return below(8);			/* reserved / foreign */
	case 2:
		return ring_refs[0];			/* the ring itself */
	default:
		return data_refs[below(NDATA)];
	}
}

static void blk_fill(struct blkif_request *r)
{
	unsigned int i, nseg;

	memset(r, 0, sizeof(*r));
	r->operation = (uint8_t)(chance(85) ? below(2) : below(256));
	nseg = chance(85) ? 1 + below(BLKIF_MAX_SEGMENTS_PER_REQUEST)
			  : below(256);
	r->nr_segments = (uint8_t)nseg;
	r->handle = (uint16_t)(chance(90) ? 0 : rnd());
	r->id = rnd();
	r->sector_number = chance(80) ? below(32768) : rnd();
	for (i = 0; i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++) {
		r->seg[i].gref = any_gref();
		r->seg[i].first_sect = (uint8_t)(chance(90) ? below(8) : rnd());
		r->seg[i].last_sect = (uint8_t)(chance(90) ?
			r->seg[i].first_sect + below(8 - r->seg[i].first_sect)
			: rnd());
	}
	if (chance(10)) {	/* indirect, pages of garbage or refs */
		struct blkif_request_indirect *ind = (void *)r;

		ind->operation = BLKIF_OP_INDIRECT;
		ind->indirect_op = (uint8_t)(chance(80) ? below(2) : rnd());
		ind->nr_segments = (uint16_t)(chance(70) ? below(64) : rnd());
		for (i = 0; i < BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST; i++)
			ind->indirect_grefs[i] = any_gref();
		if (chance(50)) {
			unsigned char *pg = (unsigned char *)data +
				(size_t)below(NDATA) * PVIO_PAGE_SIZE;

			for (i = 0; i < 256; i++)
				pg[below(PVIO_PAGE_SIZE)] = (unsigned char)rnd();
		}
	}
	if (chance(15)) {	/* mutate some bytes */
		unsigned char *b = (unsigned char *)r;

		for (i = below(8); i > 0; i--)
			b[below(sizeof(*r))] = (unsigned char)rnd();
	}
}

static void index_game(struct pvio_ring_front *rf)
{
	struct pvio_sring *s = rf->sring;

	switch (below(5)) {
	case 0:
		s->req_prod += 1 + below(4 * rf->nr_ents);	/* ahead */
		break;
	case 1:
		s->req_prod -= 1 + below(64);			/* backwards */
		break;
	case 2:
		s->req_prod = (uint32_t)rnd();
		break;
	case 3:
		s->req_prod = s->rsp_prod + rf->nr_ents + 1;	/* overflow */
		break;
	default:
		s->rsp_event = (uint32_t)rnd();
		s->req_event = (uint32_t)rnd();
		break;
	}
}

static void drain_blk(void)
{
	struct blkif_response r[64];

	while (pvio_blkif_front_consume(&ring, r, 64) > 0)
		;
}

static void ep_blk(unsigned int devid)
{
	unsigned int i, n = 20 + below(300);

	attach("vbd", devid);
	if (!blk_connect()) {
		printf("  not connected\n");
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned int what = below(100);

		if (what < 80) {
			if (!pvio_ring_front_free(&ring)) {
				drain_blk();
				if (!pvio_ring_front_free(&ring)) {
					poll(NULL, 0, 2);
					continue;
				}
			}
			blk_fill(pvio_blkif_front_req(&ring));
			pvio_ring_front_req_commit(&ring);
			if (chance(30) && pvio_ring_front_push(&ring))
				pvio_evtchn_notify(plat, (pvio_port_t)port);
		} else if (what < 83) {
			index_game(&ring);
			pvio_evtchn_notify(plat, (pvio_port_t)port);
			printf("  index game\n");
		} else if (what < 86) {
			unsigned int k;

			for (k = below(5000); k > 0; k--)
				pvio_evtchn_notify(plat, (pvio_port_t)port);
		} else if (what < 95) {
			pvio_ring_front_push(&ring);
			pvio_evtchn_notify(plat, (pvio_port_t)port);
			poll(NULL, 0, (int)below(5));
			drain_blk();
		} else if (what < 97) {
			/* close the event channel under the backend */
			pvio_evtchn_close(plat, (pvio_port_t)port);
			printf("  closed its event channel\n");
			break;
		} else {
			wr("state", "%u", below(9));
		}
	}
	pvio_ring_front_push(&ring);
	pvio_evtchn_notify(plat, (pvio_port_t)port);
	finish();
}

/* ---- net ------------------------------------------------------------------- */

static const char *const net_keys[] = {
	"tx-ring-ref", "rx-ring-ref", "event-channel", "event-channel-tx",
	"event-channel-rx", "request-rx-copy", "feature-rx-notify",
	"feature-sg", "feature-gso-tcpv4", "feature-gso-tcpv6",
	"feature-ipv6-csum-offload", "feature-no-csum-offload",
	"feature-rx-flip", "multi-queue-num-queues", "queue-0/tx-ring-ref",
	"queue-0/rx-ring-ref", "queue-0/event-channel",
	"queue-1/tx-ring-ref", "queue-1/event-channel-rx", "mac", "state",
};

static struct pvio_ring_front tx, rx;
static void *tx_mem, *rx_mem;
static pvio_gref_t tx_ref, rx_ref;

static bool net_connect(void)
{
	if (!restart())
		return false;
	clear_keys(net_keys, sizeof(net_keys) / sizeof(net_keys[0]));
	if (pvio_gnt_share(plat, 0, 1, true, &tx_ref, &tx_mem) ||
	    pvio_gnt_share(plat, 0, 1, true, &rx_ref, &rx_mem) ||
	    pvio_gnt_share(plat, 0, NDATA, true, data_refs, &data))
		return false;
	ring_refs[0] = tx_ref;
	pvio_netif_tx_front_init(&tx, tx_mem, 1);
	pvio_netif_rx_front_init(&rx, rx_mem, 1);
	port = pvio_evtchn_alloc_unbound(plat, 0);
	if (port < 0)
		return false;
	wr("tx-ring-ref", "%u", tx_ref);
	wr("rx-ring-ref", "%u", rx_ref);
	wr("event-channel", "%d", port);
	wr("request-rx-copy", "1");
	wr("feature-rx-notify", "%u", below(2));
	wr("feature-sg", "%u", chance(80) ? 1 : below(3));
	wr("feature-gso-tcpv4", "%u", below(2));
	wr("state", "4");
	return wait_be(M(4), 1500);
}

static void tx_fill(struct netif_tx_request *r)
{
	static const uint16_t flags[] = {
		0, NETTXF_more_data, NETTXF_extra_info, NETTXF_csum_blank,
		NETTXF_data_validated, NETTXF_more_data | NETTXF_csum_blank,
	};

	if (chance(50)) {	/* a well-formed one-slot frame */
		r->gref = chance(95) ? data_refs[below(NDATA)] : any_gref();
		r->size = (uint16_t)(60 + below(1455));
		r->offset = (uint16_t)below(PVIO_PAGE_SIZE - r->size);
		r->flags = chance(80) ? 0 : NETTXF_csum_blank;
		r->id = (uint16_t)rnd();
		return;
	}
	r->gref = any_gref();
	r->offset = (uint16_t)(chance(80) ? below(PVIO_PAGE_SIZE) : rnd());
	r->size = (uint16_t)(chance(70) ? 14 + below(PVIO_PAGE_SIZE) : rnd());
	r->flags = chance(85) ? flags[below(sizeof(flags) / sizeof(flags[0]))]
			      : (uint16_t)rnd();
	r->id = (uint16_t)rnd();
	if (chance(10)) {	/* as an extra-info slot */
		struct netif_extra_info *ex = (void *)r;

		ex->type = (uint8_t)(chance(70) ? XEN_NETIF_EXTRA_TYPE_GSO
						: below(8));
		ex->flags = (uint8_t)(chance(20) ? XEN_NETIF_EXTRA_FLAG_MORE : 0);
		ex->u.gso.size = (uint16_t)(chance(80) ? 1 + below(9000) : 0);
		ex->u.gso.type = (uint8_t)below(4);
	}
}

static void drain_net(void)
{
	struct netif_tx_response t[64];
	struct netif_rx_response r[64];

	while (pvio_netif_tx_front_consume(&tx, t, 64) > 0)
		;
	while (pvio_netif_rx_front_consume(&rx, r, 64) > 0)
		;
}

static void ep_net(unsigned int devid)
{
	unsigned int i, n = 20 + below(300);

	attach("vif", devid);
	if (!net_connect()) {
		printf("  not connected\n");
		return;
	}
	for (i = 0; i < n; i++) {
		unsigned int what = below(100);

		if (what < 60) {
			if (!pvio_ring_front_free(&tx)) {
				drain_net();
				poll(NULL, 0, 2);
				continue;
			}
			tx_fill(pvio_netif_tx_front_req(&tx));
			pvio_ring_front_req_commit(&tx);
			if (chance(30) && pvio_ring_front_push(&tx))
				pvio_evtchn_notify(plat, (pvio_port_t)port);
		} else if (what < 75) {
			struct netif_rx_request *r;

			if (!pvio_ring_front_free(&rx)) {
				drain_net();
				continue;
			}
			r = pvio_netif_rx_front_req(&rx);
			r->id = (uint16_t)rnd();
			r->gref = any_gref();
			pvio_ring_front_req_commit(&rx);
			pvio_ring_front_push(&rx);
		} else if (what < 78) {
			index_game(chance(50) ? &tx : &rx);
			pvio_evtchn_notify(plat, (pvio_port_t)port);
			printf("  index game\n");
		} else if (what < 81) {
			unsigned int k;

			for (k = below(5000); k > 0; k--)
				pvio_evtchn_notify(plat, (pvio_port_t)port);
		} else if (what < 96) {
			pvio_ring_front_push(&tx);
			pvio_evtchn_notify(plat, (pvio_port_t)port);
			poll(NULL, 0, (int)below(5));
			drain_net();
		} else if (what < 98) {
			pvio_evtchn_close(plat, (pvio_port_t)port);
			printf("  closed its event channel\n");
			break;
		} else {
			wr("state", "%u", below(9));
		}
	}
	pvio_ring_front_push(&tx);
	pvio_evtchn_notify(plat, (pvio_port_t)port);
	finish();
}

/* ---- xenstore -------------------------------------------------------------- */

static void ep_xs(bool vif, unsigned int devid)
{
	const char *const *keys = vif ? net_keys : blk_keys;
	unsigned int nk = vif ? sizeof(net_keys) / sizeof(net_keys[0])
			      : sizeof(blk_keys) / sizeof(blk_keys[0]);
	unsigned int i, n = 1 + below(40);
	char buf[2048];

	attach(vif ? "vif" : "vbd", devid);
	restart();
	if (chance(50) && (vif ? net_connect() : blk_connect()))
		printf("  connected first\n");
	for (i = 0; i < n; i++) {
		const char *k = keys[below(nk)], *v = hostile_val(buf, sizeof(buf));

		wr(k, "%s", v);
	}
	wr("state", vif ? "4" : "3");
	wait_be(M(4) | M(5) | M(6), 500);
	finish();
}

static void ep_flap(bool vif, unsigned int devid)
{
	unsigned int i, n = 10 + below(500);

	attach(vif ? "vif" : "vbd", devid);
	if (chance(50) && (vif ? net_connect() : blk_connect()))
		printf("  connected first\n");
	for (i = 0; i < n; i++) {
		if (chance(90))
			wr("state", "%u", below(9));
		else
			wr("state", "%u", (unsigned int)rnd());
		if (chance(10))
			poll(NULL, 0, (int)below(3));
	}
	finish();
}

static void ep_storm(bool vif, unsigned int devid)
{
	unsigned int i, n = 500 + below(3000);
	unsigned int s = below(7);

	attach(vif ? "vif" : "vbd", devid);
	for (i = 0; i < n; i++)
		wr("state", "%u", s);
	finish();
}

/* ---- the run ----------------------------------------------------------------- */

enum { EP_BLK, EP_NET, EP_XS, EP_FLAP, EP_STORM, NR_EP };
static const char *const ep_name[NR_EP] = { "blk", "net", "xs", "flap",
					     "storm" };

static void episode(unsigned int kind, uint64_t seed, unsigned int vbd,
		    unsigned int vif)
{
	bool use_vif;

	rng_state = seed ? seed : 1;
	use_vif = chance(50);
	switch (kind) {
	case EP_BLK:
		ep_blk(vbd);
		break;
	case EP_NET:
		ep_net(vif);
		break;
	case EP_XS:
		ep_xs(use_vif, use_vif ? vif : vbd);
		break;
	case EP_FLAP:
		ep_flap(use_vif, use_vif ? vif : vbd);
		break;
	default:
		ep_storm(use_vif, use_vif ? vif : vbd);
		break;
	}
	fflush(stdout);
	pvio_xs_close(xs);
	pvio_platform_close(plat);
}

int main(int argc, char **argv)
{
	unsigned int vbd, vif, n = 0, killed = 0, died = 0;
	uint64_t seed, end;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 5 || !getenv("PVIO_DOMID"))
		FAIL("usage: t-chaos SECONDS SEED VBD_DEVID VIF_DEVID (under pvio-ctl run)");
	domid = (unsigned int)atoi(getenv("PVIO_DOMID"));
	end = now_ms() + (uint64_t)(atof(argv[1]) * 1000);
	seed = strtoull(argv[2], NULL, 0);
	vbd = (unsigned int)atoi(argv[3]);
	vif = (unsigned int)atoi(argv[4]);
	rng_state = seed ? seed : 1;
	printf("seed %llu\n", (unsigned long long)seed);
	while (now_ms() < end) {
		unsigned int kind = below(NR_EP);
		uint64_t es = rnd(), t0;
		int status = 0;
		pid_t pid;

		printf("episode %u: %s (seed %llu)\n", n++, ep_name[kind],
		       (unsigned long long)es);
		fflush(stdout);
		pid = fork();
		if (pid < 0)
			FAIL("fork: %s", strerror(errno));
		if (pid == 0) {
			episode(kind, es, vbd, vif);
			_exit(0);
		}
		t0 = now_ms();
		while (waitpid(pid, &status, WNOHANG) == 0) {
			if (now_ms() - t0 > EPISODE_MS) {
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				killed++;
				printf("  killed after %u ms\n", EPISODE_MS);
				break;
			}
			poll(NULL, 0, 5);
		}
		if (WIFSIGNALED(status))
			died++;
		else if (WEXITSTATUS(status))
			FAIL("episode %u: the chaos guest itself failed", n - 1);
	}
	printf("OK %u episodes (%u died, %u killed) in %.1f s, seed %llu\n", n,
	       died, killed, atof(argv[1]), (unsigned long long)seed);
	return 0;
}
