// SPDX-License-Identifier: MIT
/*
 * The userspace netfront against a mock netback (t-mocknet.c) in a private
 * sim world: the handshake to Connected and back to Closed, reconnects, a
 * stale session, duplicate events, Unknown as Closed; tx layouts (one slot,
 * page-end boundaries, 64 KiB GSO with its extra slot, ring wrap-around);
 * rx chains with extra info and nonzero offsets, refill under pressure;
 * checksum flags both ways; split event channels and multiple queues; a
 * hostile backend; a backend that closes; bad arguments.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pvio/netfront.h>
#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "sim-toolstack.h"
#include "t-mocknet.h"
#include "t-world.h"
#include "toolstack.h"
#include "t-check.h"

#define FE_DOM		5u
#define DEVID		0u
#define BIG		PVIO_NETFRONT_MAX_RX_FRAME

static struct pvio_platform *t_d0, *t_u;
static struct pvio_xs *t_x0, *t_xu;
static struct t_mocknet *t_mock;
static struct pvio_netfront *t_dev;
static char t_fe[PVIO_XS_PATH_MAX], t_be[PVIO_XS_PATH_MAX];
static const uint8_t t_mac[6] = { 0x00, 0x16, 0x3e, 0x00, 0x05, 0x00 };
static int t_ev_link, t_ev_dead;

static void setup(void)
{
	struct pvio_ts_vif v;
	unsigned int got;
	int rc;

	t_world_start();
	t_world_guard();
	t_d0 = t_attach(0);
	ck_assert_int_eq(pvio_xs_open(&t_x0, t_d0), 0);
	rc = pvio__sim_domain_create(t_d0, FE_DOM, "guest", 0, &got);
	ck_assert_msg(rc == 0, "domain create: %s", strerror(-rc));
	ck_assert_int_eq(pvio_ts_domain_add(t_x0, FE_DOM, "guest"), 0);
	memset(&v, 0, sizeof(v));
	v.fe = FE_DOM;
	v.be = 0;
	v.devid = DEVID;
	memcpy(v.mac, t_mac, 6);
	ck_assert_int_eq(pvio_ts_vif_add(t_x0, &v), 0);
	pvio_xb_frontend_path(t_fe, FE_DOM, "vif", DEVID);
	pvio_xb_backend_path(t_be, 0, "vif", FE_DOM, DEVID);
	t_u = t_attach(FE_DOM);
	ck_assert_int_eq(pvio_xs_open(&t_xu, t_u), 0);
	t_mock = NULL;
	t_dev = NULL;
	t_ev_link = t_ev_dead = 0;
}

static void teardown(void)
{
	pvio_netfront_close(t_dev);
	t_mocknet_stop(t_mock);
	pvio_xs_close(t_xu);
	pvio_platform_close(t_u);
	pvio_xs_close(t_x0);
	pvio_platform_close(t_d0);
	t_world_stop();
}

/* ---- helpers ------------------------------------------------------------- */

static void t_cfg(struct t_mocknet_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->spec = t_world_spec;
	c->fe = FE_DOM;
	c->devid = DEVID;
	c->sg = c->gso4 = c->gso6 = c->ipv6_csum = c->split = true;
}

static void t_mock_start(const struct t_mocknet_cfg *c)
{
	int rc = t_mocknet_start(&t_mock, c);

	ck_assert_msg(rc == 0, "mock backend: %s", strerror(-rc));
}

static void t_event(struct pvio_netfront *dev, enum pvio_netfront_event ev,
		    void *opaque)
{
	(void)dev;
	(void)opaque;
	if (ev == PVIO_NETFRONT_EV_LINK)
		__atomic_add_fetch(&t_ev_link, 1, __ATOMIC_RELAXED);
	else if (ev == PVIO_NETFRONT_EV_DEAD)
		__atomic_add_fetch(&t_ev_dead, 1, __ATOMIC_RELAXED);
}

static int t_try_open(unsigned int max_queues, unsigned int flags,
		      unsigned int timeout_ms, char *err, size_t errlen)
{
	struct pvio_netfront_opts o = {
		.max_queues = max_queues,
		.timeout_ms = timeout_ms ? timeout_ms : 5000,
		.flags = flags | PVIO_NETFRONT_F_THREAD,
		.event = t_event,
	};

	return pvio_netfront_open(&t_dev, t_u, t_xu, DEVID, &o, err, errlen);
}

static void t_open(unsigned int max_queues, unsigned int flags)
{
	char err[PVIO_NETFRONT_ERR_MAX] = "";
	int rc = t_try_open(max_queues, flags, 0, err, sizeof(err));

	ck_assert_msg(rc == 0, "open: %s (%s)", strerror(-rc), err);
}

static void t_close(void)
{
	ck_assert_int_eq(pvio_netfront_close(t_dev), 0);
	t_dev = NULL;
}

static void t_wait_link(bool up)
{
	uint64_t end = pvio_now_ms() + 5000;

	while (pvio_netfront_link_up(t_dev) != up && pvio_now_ms() < end)
		poll(NULL, 0, 5);
	ck_assert_msg(pvio_netfront_link_up(t_dev) == up, "link is not %s",
		      up ? "up" : "down");
}

/* A node of our frontend dir, or "" */
static const char *t_fe_key(const char *key)
{
	static char val[256];
	char path[PVIO_XS_PATH_MAX + 64], *v = NULL;

	snprintf(path, sizeof(path), "%s/%s", t_fe, key);
	val[0] = 0;
	if (pvio_xs_read(t_x0, 0, path, &v) >= 0) {
		snprintf(val, sizeof(val), "%s", v);
		free(v);
	}
	return val;
}

static int t_fe_state(void)
{
	return atoi(t_fe_key("state"));
}

/* A frame: our header, a sequence number, a pattern from it. */
static void t_fill(uint8_t *b, uint32_t len, uint32_t seq)
{
	uint32_t i;

	memset(b, 0xff, 6);
	memcpy(b + 6, t_mac, 6);
	b[12] = 0x88;
	b[13] = 0xb5;
	for (i = 14; i < len; i++)
		b[i] = (uint8_t)(seq * 7 + i * 13 + (i >> 8));
	if (len >= 18)
		memcpy(b + 14, &seq, 4);
}

static bool t_check(const uint8_t *b, uint32_t len, uint32_t seq)
{
	uint8_t *want = malloc(len);
	bool ok;

	t_fill(want, len, seq);
	ok = memcmp(want, b, len) == 0;
	free(want);
	return ok;
}

/* Send all @n frames, waiting for room. */
static void t_send_all(struct pvio_netfront_queue *q,
		       const struct pvio_netfront_frame *f, unsigned int n)
{
	uint64_t end = pvio_now_ms() + 10000;
	unsigned int done = 0;

	while (done < n) {
		int rc = pvio_netfront_send(q, f + done, n - done);

		if (rc == -EAGAIN) {
			struct pollfd p = { .fd = pvio_netfront_queue_fd(q),
					    .events = POLLIN };

			ck_assert_msg(pvio_now_ms() < end, "no room to send");
			if (pvio_netfront_arm(q, PVIO_NETFRONT_ARM_TX) == 0)
				poll(&p, 1, 100);
			continue;
		}
		ck_assert_msg(rc > 0, "send: %s", strerror(-rc));
		done += (unsigned int)rc;
	}
}

/* Receive until @n frames came or @ms passed; return the count or the
 * first error. */
static int t_recv(struct pvio_netfront_queue *q, struct pvio_netfront_frame *f,
		  unsigned int n, int ms)
{
	uint64_t end = pvio_now_ms() + (uint64_t)ms;
	unsigned int got = 0;

	while (got < n) {
		int rc = pvio_netfront_recv(q, f + got, n - got);
		uint64_t now;

		if (rc < 0)
			return rc;
		got += (unsigned int)rc;
		if (got == n || rc > 0)
			continue;
		now = pvio_now_ms();
		if (now >= end)
			break;
		rc = pvio_netfront_arm(q, PVIO_NETFRONT_ARM_RX);
		if (rc < 0)
			return rc;
		if (rc == 0) {
			struct pollfd p = { .fd = pvio_netfront_queue_fd(q),
					    .events = POLLIN };

			poll(&p, 1, (int)(end - now));
		}
	}
	return (int)got;
}

static struct pvio_netfront_frame *t_bufs(unsigned int n, uint32_t size)
{
	struct pvio_netfront_frame *f = calloc(n, sizeof(*f));
	unsigned int i;

	for (i = 0; i < n; i++) {
		f[i].data = malloc(size);
		f[i].size = size;
	}
	return f;
}

static void t_free_bufs(struct pvio_netfront_frame *f, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		free(f[i].data);
	free(f);
}

/* One frame through tx: returns what the mock saw. */
static void t_tx1(struct pvio_netfront_queue *q, uint32_t len, uint32_t seq,
		  const struct pvio_net_offload *off, struct t_netpkt *p)
{
	struct pvio_netfront_frame f = { .len = len };
	int rc;

	f.data = malloc(len);
	t_fill(f.data, len, seq);
	if (off)
		f.off = *off;
	t_send_all(q, &f, 1);
	rc = t_mocknet_tx_pop(t_mock, p, 5000);
	ck_assert_msg(rc == 0, "the mock got nothing (len %u)", len);
	ck_assert_uint_eq(p->len, len);
	ck_assert_msg(t_check(p->data, len, seq), "tx data differ (len %u)",
		      len);
	free(f.data);
}

static void t_no_mock_errors(void)
{
	struct t_mocknet_stats st;

	t_mocknet_stats(t_mock, &st);
	ck_assert_msg(st.errors == 0, "the mock saw %llu errors, last: %s",
		      (unsigned long long)st.errors, st.last_error);
	ck_assert_msg(st.missed_notify == 0, "%llu missed notifications",
		      (unsigned long long)st.missed_notify);
}

/* ---- handshake ----------------------------------------------------------- */

START_TEST(t_handshake)
{
	struct pvio_netfront_info info;
	struct t_mocknet_cfg c;
	struct t_mocknet_stats st;
	uint32_t want = PVIO_NETFRONT_FEAT_SG | PVIO_NETFRONT_FEAT_TX_CSUM |
			PVIO_NETFRONT_FEAT_TX_CSUM_IPV6 |
			PVIO_NETFRONT_FEAT_TX_GSO_TCPV4 |
			PVIO_NETFRONT_FEAT_TX_GSO_TCPV6 |
			PVIO_NETFRONT_FEAT_RX_CSUM |
			PVIO_NETFRONT_FEAT_RX_GSO_TCPV4 |
			PVIO_NETFRONT_FEAT_RX_GSO_TCPV6 |
			PVIO_NETFRONT_FEAT_SPLIT_EVTCHN;

	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, 0);
	ck_assert_int_eq(t_fe_state(), PVIO_XB_CONNECTED);
	ck_assert_int_eq(t_mocknet_wait_state(t_mock, PVIO_XB_CONNECTED, 5000),
			 0);
	t_wait_link(true);
	/* the event follows the state change (from open() itself when the
	 * backend got there while open() ran) */
	{
		uint64_t end = pvio_now_ms() + 5000;

		while (!__atomic_load_n(&t_ev_link, __ATOMIC_RELAXED) &&
		       pvio_now_ms() < end)
			poll(NULL, 0, 5);
	}
	ck_assert_int_ge(__atomic_load_n(&t_ev_link, __ATOMIC_RELAXED), 1);
	pvio_netfront_info(t_dev, &info);
	ck_assert_mem_eq(info.mac, t_mac, 6);
	ck_assert_uint_eq(info.mtu, 1500);
	ck_assert_uint_eq(info.nr_queues, 1);
	ck_assert_uint_eq(info.tx_ring_size, 256);
	ck_assert_uint_eq(info.rx_ring_size, 256);
	ck_assert_msg(info.features == want, "features %#x, want %#x",
		      info.features, want);
	ck_assert_str_eq(info.backend, t_be);
	/* the keys Linux netfront writes, in our own directory */
	ck_assert_str_eq(t_fe_key("request-rx-copy"), "1");
	ck_assert_str_eq(t_fe_key("feature-rx-notify"), "1");
	ck_assert_str_eq(t_fe_key("feature-sg"), "1");
	ck_assert_str_eq(t_fe_key("feature-gso-tcpv4"), "1");
	ck_assert_str_eq(t_fe_key("feature-gso-tcpv6"), "1");
	ck_assert_str_eq(t_fe_key("feature-ipv6-csum-offload"), "1");
	ck_assert_str_eq(t_fe_key("feature-no-csum-offload"), "");
	ck_assert_str_eq(t_fe_key("multi-queue-num-queues"), "");
	ck_assert_str_ne(t_fe_key("tx-ring-ref"), "");
	ck_assert_str_ne(t_fe_key("rx-ring-ref"), "");
	ck_assert_str_ne(t_fe_key("event-channel-tx"), "");
	ck_assert_str_ne(t_fe_key("event-channel-rx"), "");
	ck_assert_str_eq(t_fe_key("event-channel"), "");
	t_mocknet_stats(t_mock, &st);
	ck_assert_uint_eq(st.connects, 1);
	ck_assert(st.fe_rx_copy && st.fe_rx_notify && st.fe_sg);
	ck_assert(st.fe_gso4 && st.fe_gso6);
	ck_assert(st.fe_ipv6_csum && !st.fe_no_csum);
	ck_assert(st.split);
	ck_assert(!st.mq_key);
	ck_assert_int_eq(pvio_netfront_dead(t_dev), 0);
	ck_assert_str_eq(pvio_netfront_error(t_dev), "");
	t_close();
	ck_assert_int_eq(t_fe_state(), PVIO_XB_CLOSED);
	/* the mock notes its state once its write is done: after the
	 * frontend may have seen it */
	ck_assert_int_eq(t_mocknet_wait_state(t_mock, PVIO_XB_CLOSED, 5000),
			 0);
	t_mocknet_stats(t_mock, &st);
	ck_assert_uint_eq(st.disconnects, 1);
	t_no_mock_errors();
}
END_TEST

START_TEST(t_reconnect)
{
	struct t_mocknet_cfg c;
	struct t_mocknet_stats st;
	struct t_netpkt p;
	int i;

	t_cfg(&c);
	t_mock_start(&c);
	for (i = 0; i < 3; i++) {
		t_open(1, 0);
		t_wait_link(true);
		t_tx1(pvio_netfront_queue(t_dev, 0), 1000, (uint32_t)i, NULL,
		      &p);
		t_netpkt_free(&p);
		t_close();
		ck_assert_int_eq(t_fe_state(), PVIO_XB_CLOSED);
		ck_assert_int_eq(t_mocknet_wait_state(t_mock, PVIO_XB_CLOSED,
						      2000), 0);
	}
	t_mocknet_stats(t_mock, &st);
	ck_assert_uint_eq(st.connects, 3);
	ck_assert_uint_eq(st.disconnects, 3);
	t_no_mock_errors();
}
END_TEST

/* An earlier frontend process died while Connected: the next one closes
 * that session with the backend, then connects. */
START_TEST(t_stale_session)
{
	struct t_mocknet_cfg c;
	struct t_mocknet_stats st;
	struct t_netpkt p;
	int status, go[2];
	pid_t pid;

	t_cfg(&c);
	t_mock_start(&c);
	ck_assert_int_eq(pipe(go), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct pvio_platform *u = NULL;
		struct pvio_xs *x = NULL;
		struct pvio_netfront *d = NULL;
		char ch;

		close(go[1]);
		if (pvio_platform_open(&u, t_world_spec, FE_DOM, 0) ||
		    pvio_xs_open(&x, u) ||
		    pvio_netfront_open(&d, u, x, DEVID, NULL, NULL, 0))
			_exit(1);
		/* die once the backend has mapped our rings */
		if (read(go[0], &ch, 1) < 0)
			_exit(2);
		_exit(0);	/* no close: the session stays */
	}
	close(go[0]);
	ck_assert_int_eq(t_mocknet_wait_state(t_mock, PVIO_XB_CONNECTED, 5000),
			 0);
	close(go[1]);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_int_eq(t_fe_state(), PVIO_XB_CONNECTED);
	t_open(1, 0);
	t_wait_link(true);
	t_mocknet_stats(t_mock, &st);
	ck_assert_uint_eq(st.connects, 2);
	ck_assert_uint_eq(st.disconnects, 1);
	t_tx1(pvio_netfront_queue(t_dev, 0), 300, 1, NULL, &p);
	t_netpkt_free(&p);
	t_close();
	t_no_mock_errors();
}
END_TEST

START_TEST(t_dup_events)
{
	struct t_mocknet_cfg c;
	struct t_netpkt p;

	t_cfg(&c);
	c.dup_events = true;
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	t_tx1(pvio_netfront_queue(t_dev, 0), 2000, 1, NULL, &p);
	t_netpkt_free(&p);
	t_close();
	ck_assert_int_eq(t_mocknet_wait_state(t_mock, PVIO_XB_CLOSED, 2000), 0);
	t_open(1, 0);
	t_wait_link(true);
	t_close();
	t_no_mock_errors();
}
END_TEST

START_TEST(t_no_rx_copy)
{
	char err[PVIO_NETFRONT_ERR_MAX] = "";
	struct t_mocknet_cfg c;

	t_cfg(&c);
	c.no_rx_copy = true;
	t_mock_start(&c);
	ck_assert_int_eq(t_try_open(1, 0, 2000, err, sizeof(err)), -ENODEV);
	ck_assert_msg(strstr(err, "feature-rx-copy"), "err: %s", err);
	ck_assert_ptr_null(t_dev);
	/* as Linux: nothing published, still Initialising */
	ck_assert_int_eq(t_fe_state(), PVIO_XB_INITIALISING);
	ck_assert_str_eq(t_fe_key("tx-ring-ref"), "");
}
END_TEST

START_TEST(t_bad_mac)
{
	char err[PVIO_NETFRONT_ERR_MAX] = "", path[PVIO_XS_PATH_MAX + 8];
	static const char *const bad[] = {
		"zz:16:3e:00:05:00", "00:16:3e:00:05", "00-16-3e-00-05-00",
		"00:16:3e:00:05:00:", "",
	};
	struct t_mocknet_cfg c;
	unsigned int i;

	t_cfg(&c);
	t_mock_start(&c);
	snprintf(path, sizeof(path), "%s/mac", t_fe);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_int_eq(pvio_xs_write(t_x0, 0, path, bad[i]), 0);
		ck_assert_int_eq(t_try_open(1, 0, 2000, err, sizeof(err)),
				 -EINVAL);
		ck_assert_msg(strstr(err, "mac"), "err: %s", err);
		ck_assert_str_ne(t_fe_key("error"), "");
		ck_assert_int_eq(t_fe_state(), PVIO_XB_CLOSING);
	}
	/* the backend answers the failed session's Closing (asynchronously:
	 * an open that looked first would see it go Closing mid-handshake) */
	snprintf(path, sizeof(path), "%s/state", t_be);
	for (i = 0; i < 500; i++) {
		unsigned long st = 0;

		if (pvio_xs_read_uint(t_x0, 0, path, 0, 8, &st) == 0 &&
		    st == PVIO_XB_CLOSING)
			break;
		usleep(10000);
	}
	ck_assert_msg(i < 500, "the backend did not answer Closing");
	/* a good one again: the failed session is reset */
	snprintf(path, sizeof(path), "%s/mac", t_fe);
	ck_assert_int_eq(pvio_xs_write(t_x0, 0, path, "00:16:3E:00:05:00"), 0);
	t_open(1, 0);
	t_wait_link(true);
	t_close();
}
END_TEST

START_TEST(t_timeout)
{
	char err[PVIO_NETFRONT_ERR_MAX] = "";
	uint64_t t0 = pvio_now_ms();

	/* no backend: its state stays Initialising */
	ck_assert_int_eq(t_try_open(1, 0, 300, err, sizeof(err)), -ETIMEDOUT);
	ck_assert_msg(strstr(err, "InitWait"), "err: %s", err);
	ck_assert_uint_lt(pvio_now_ms() - t0, 3000);
}
END_TEST

START_TEST(t_bad_args)
{
	struct pvio_netfront_opts o = { .max_queues = 9 };
	char err[PVIO_NETFRONT_ERR_MAX] = "";
	struct pvio_netfront *d = NULL;
	struct t_mocknet_cfg c;

	ck_assert_int_eq(pvio_netfront_open(&d, t_u, t_xu, DEVID, &o, err,
					    sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "max_queues"), "err: %s", err);
	o.max_queues = 1;
	o.flags = 1u << 20;
	ck_assert_int_eq(pvio_netfront_open(&d, t_u, t_xu, DEVID, &o, NULL, 0),
			 -EINVAL);
	ck_assert_int_eq(pvio_netfront_open(&d, NULL, t_xu, DEVID, NULL, NULL,
					    0), -EINVAL);
	/* no such vif */
	ck_assert_int_eq(pvio_netfront_open(&d, t_u, t_xu, 7, NULL, err,
					    sizeof(err)), -ENODEV);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(pvio_netfront_close(NULL), 0);

	/* frames that cannot go */
	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, 0);
	{
		struct pvio_netfront_queue *q = pvio_netfront_queue(t_dev, 0);
		static uint8_t buf[70000];
		struct pvio_netfront_frame f[3] = {
			{ .data = buf, .len = 100 },
			{ .data = buf, .len = 13 },
			{ .data = buf, .len = 100 },
		};
		struct pvio_netfront_frame g = { .data = buf, .len = 1000 };

		ck_assert_ptr_null(pvio_netfront_queue(t_dev, 1));
		t_fill(buf, sizeof(buf), 0);
		ck_assert_int_eq(pvio_netfront_send(q, f, 0), 0);
		ck_assert_int_eq(pvio_netfront_send(q, f, 3), 1);
		ck_assert_int_eq(pvio_netfront_send(q, f + 1, 2), -EINVAL);
		g.len = 0;
		ck_assert_int_eq(pvio_netfront_send(q, &g, 1), -EINVAL);
		g.len = 65536;
		ck_assert_int_eq(pvio_netfront_send(q, &g, 1), -EMSGSIZE);
		g.len = 1000;
		g.off.gso_type = XEN_NETIF_GSO_TYPE_TCPV4;
		g.off.gso_size = 0;
		g.off.csum_blank = true;
		ck_assert_int_eq(pvio_netfront_send(q, &g, 1), -EINVAL);
		g.off.gso_size = 1448;
		g.off.csum_blank = false;
		ck_assert_int_eq(pvio_netfront_send(q, &g, 1), -EINVAL);
		g.off.csum_blank = true;
		g.off.gso_type = 7;
		ck_assert_int_eq(pvio_netfront_send(q, &g, 1), -EINVAL);
		g.data = NULL;
		g.off.gso_type = 0;
		ck_assert_int_eq(pvio_netfront_send(q, &g, 1), -EINVAL);
	}
	t_close();
}
END_TEST

/* ---- tx ------------------------------------------------------------------ */

START_TEST(t_tx_single)
{
	static const uint32_t lens[] = { 14, 60, 64, 1500, 1514, 4095, 4096 };
	struct pvio_netfront_stats st;
	struct pvio_netfront_queue *q;
	struct t_mocknet_cfg c;
	struct t_netpkt p;
	unsigned int i;

	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	q = pvio_netfront_queue(t_dev, 0);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		t_tx1(q, lens[i], i, NULL, &p);
		ck_assert_uint_eq(p.slots, 1);
		ck_assert_uint_eq(p.extras, 0);
		ck_assert_uint_eq(p.first_size, lens[i]);
		ck_assert_uint_eq(p.seg_off[0], 0);
		ck_assert_uint_eq(p.seg_len[0], lens[i]);
		ck_assert_uint_eq(p.first_flags & NETTXF_more_data, 0);
		t_netpkt_free(&p);
	}
	pvio_netfront_queue_stats(q, &st);
	ck_assert_uint_eq(st.tx_frames, i);
	ck_assert_uint_eq(st.tx_slots, i);
	t_close();
	t_no_mock_errors();
}
END_TEST

/* Multi-slot frames: slots end at page ends; 64 KiB GSO with its extra. */
START_TEST(t_tx_multi)
{
	static const uint32_t lens[] = { 4097, 8191, 8192, 8193, 9014,
					 65535 };
	struct pvio_netfront_queue *q;
	struct pvio_net_offload gso;
	struct t_mocknet_cfg c;
	struct t_netpkt p;
	unsigned int i, k;

	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	q = pvio_netfront_queue(t_dev, 0);
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint32_t want = (lens[i] + 4095) / 4096;

		t_tx1(q, lens[i], i, NULL, &p);
		ck_assert_uint_eq(p.slots, want);
		ck_assert_uint_eq(p.extras, 0);
		ck_assert_uint_eq(p.first_size, lens[i]);
		ck_assert(p.first_flags & NETTXF_more_data);
		for (k = 0; k < want; k++) {
			ck_assert_uint_eq(p.seg_off[k], 0);
			ck_assert_uint_eq(p.seg_len[k],
					  k + 1 < want ? 4096
						       : lens[i] - 4096 * k);
		}
		t_netpkt_free(&p);
	}
	/* GSO, both types, the largest frame: 16 slots + the extra */
	for (i = 0; i < 2; i++) {
		memset(&gso, 0, sizeof(gso));
		gso.csum_blank = true;
		gso.gso_type = i ? XEN_NETIF_GSO_TYPE_TCPV6
				 : XEN_NETIF_GSO_TYPE_TCPV4;
		gso.gso_size = i ? 1428 : 1448;
		t_tx1(q, 65535, 100 + i, &gso, &p);
		ck_assert_uint_eq(p.slots, 16);
		ck_assert_uint_eq(p.extras, 1);
		ck_assert(p.first_flags & NETTXF_extra_info);
		ck_assert(p.first_flags & NETTXF_csum_blank);
		ck_assert(p.first_flags & NETTXF_data_validated);
		ck_assert_uint_eq(p.off.gso_type, gso.gso_type);
		ck_assert_uint_eq(p.off.gso_size, gso.gso_size);
		ck_assert_uint_eq(p.seg_len[15], 65535 - 15 * 4096);
		t_netpkt_free(&p);
	}
	/* a GSO frame of one slot still has its extra */
	gso.gso_type = XEN_NETIF_GSO_TYPE_TCPV4;
	t_tx1(q, 3000, 200, &gso, &p);
	ck_assert_uint_eq(p.slots, 1);
	ck_assert_uint_eq(p.extras, 1);
	t_netpkt_free(&p);
	t_close();
	t_no_mock_errors();
}
END_TEST

/* Many batches around the ring: ids and pages are recycled, nothing is
 * lost, reordered or corrupted; one notification per batch at most. */
START_TEST(t_tx_wrap)
{
	enum { N = 3000, BATCH = 64 };
	struct pvio_netfront_stats st;
	struct pvio_netfront_frame *f = t_bufs(BATCH, 9014);
	struct pvio_netfront_queue *q;
	struct t_mocknet_cfg c;
	struct t_netpkt p;
	unsigned int k, sent = 0, got = 0, batches = 0;

	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	q = pvio_netfront_queue(t_dev, 0);
	while (sent < N) {
		unsigned int n = N - sent < BATCH ? N - sent : BATCH;

		for (k = 0; k < n; k++) {
			uint32_t seq = sent + k;

			f[k].len = 60 + (seq * 331) % 8954;
			t_fill(f[k].data, f[k].len, seq);
		}
		t_send_all(q, f, n);
		sent += n;
		batches++;
		/* drain what the mock has so far */
		while (got < sent && t_mocknet_tx_pop(t_mock, &p, 0) == 0) {
			ck_assert_uint_eq(p.len, 60 + (got * 331) % 8954);
			ck_assert_msg(t_check(p.data, p.len, got),
				      "frame %u differs", got);
			t_netpkt_free(&p);
			got++;
		}
	}
	for (; got < N; got++) {
		ck_assert_int_eq(t_mocknet_tx_pop(t_mock, &p, 5000), 0);
		ck_assert_uint_eq(p.len, 60 + (got * 331) % 8954);
		ck_assert_msg(t_check(p.data, p.len, got), "frame %u differs",
			      got);
		t_netpkt_free(&p);
	}
	ck_assert_int_eq(t_mocknet_tx_pop(t_mock, &p, 100), -ETIMEDOUT);
	pvio_netfront_queue_stats(q, &st);
	ck_assert_uint_eq(st.tx_frames, N);
	ck_assert_uint_eq(st.tx_errors, 0);
	/* t_send_all retries inside a batch when full: allow that */
	ck_assert_msg(st.tx_notifies <= 4 * batches, "%llu notifications "
		      "for %u batches", (unsigned long long)st.tx_notifies,
		      batches);
	t_free_bufs(f, BATCH);
	t_close();
	t_no_mock_errors();
}
END_TEST

START_TEST(t_no_sg)
{
	struct pvio_netfront_frame f = { 0 };
	struct pvio_netfront_info info;
	struct pvio_netfront_queue *q;
	struct t_mocknet_cfg c;
	struct t_netpkt p;
	static uint8_t buf[5000];

	t_cfg(&c);
	c.sg = false;
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	pvio_netfront_info(t_dev, &info);
	ck_assert_uint_eq(info.features & (PVIO_NETFRONT_FEAT_SG |
					   PVIO_NETFRONT_FEAT_TX_GSO_TCPV4 |
					   PVIO_NETFRONT_FEAT_TX_GSO_TCPV6), 0);
	ck_assert_uint_eq(info.mtu, 1500);
	q = pvio_netfront_queue(t_dev, 0);
	f.data = buf;
	f.len = 4097;
	ck_assert_int_eq(pvio_netfront_send(q, &f, 1), -EMSGSIZE);
	f.len = 1000;
	f.off.csum_blank = true;
	f.off.gso_type = XEN_NETIF_GSO_TYPE_TCPV4;
	f.off.gso_size = 500;
	ck_assert_int_eq(pvio_netfront_send(q, &f, 1), -EINVAL);
	t_tx1(q, 1514, 1, NULL, &p);
	t_netpkt_free(&p);
	t_close();
	t_no_mock_errors();
}
END_TEST


/* ---- zero copy ----------------------------------------------------------- */

/* Write @len bytes of pattern @seq into a reservation's pages. */
static void t_fill_rsv(struct pvio_netfront_txbuf *b, uint32_t len,
		       uint32_t seq)
{
	uint8_t *tmp = malloc(len);
	uint32_t done = 0;
	unsigned int i;

	t_fill(tmp, len, seq);
	for (i = 0; done < len; i++) {
		uint32_t c = len - done < 4096 ? len - done : 4096;

		ck_assert_uint_lt(i, b->nr);
		ck_assert_uint_eq(b->iov[i].iov_len, 4096);
		memcpy(b->iov[i].iov_base, tmp + done, c);
		done += c;
	}
	free(tmp);
}

/* Reserve, waiting for room. */
static void t_reserve(struct pvio_netfront_queue *q,
		      struct pvio_netfront_txbuf *b, uint32_t max)
{
	uint64_t end = pvio_now_ms() + 10000;
	int rc;

	while ((rc = pvio_netfront_tx_reserve(q, b, max)) == -EAGAIN) {
		struct pollfd p = { .fd = pvio_netfront_queue_fd(q),
				    .events = POLLIN };

		ck_assert_msg(pvio_now_ms() < end, "no room to reserve");
		if (pvio_netfront_arm(q, PVIO_NETFRONT_ARM_TX) == 0)
			poll(&p, 1, 100);
	}
	ck_assert_int_eq(rc, 0);
}

/*
 * Frames written in place: the same layout as send() (slots end at page
 * ends, GSO with its extra), the data intact, unused pages and cancelled
 * reservations back in the pool, bad frames refused, nothing leaked over
 * thousands of frames around the ring.
 */
START_TEST(t_tx_zc)
{
	static const uint32_t lens[] = { 14, 60, 1514, 4096, 4097, 9014,
					 65535 };
	struct pvio_netfront_txbuf b[1], rs[15];
	struct pvio_net_offload gso = { .csum_blank = true,
					.gso_type = XEN_NETIF_GSO_TYPE_TCPV4,
					.gso_size = 1448 };
	struct pvio_netfront_stats st;
	struct pvio_netfront_queue *q;
	struct t_mocknet_cfg c;
	struct t_netpkt p;
	unsigned int i, k, got = 0;

	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	q = pvio_netfront_queue(t_dev, 0);

	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint32_t want = (lens[i] + 4095) / 4096;

		t_reserve(q, &b[0], 17 * 4096);
		ck_assert_uint_eq(b[0].nr, 17);
		t_fill_rsv(&b[0], lens[i], i);
		ck_assert_int_eq(pvio_netfront_tx_commit(q, &b[0], lens[i], NULL), 0);
		ck_assert_uint_eq(b[0].nr, 0);
		ck_assert_int_eq(pvio_netfront_tx_push(q), 0);
		ck_assert_int_eq(t_mocknet_tx_pop(t_mock, &p, 5000), 0);
		ck_assert_uint_eq(p.len, lens[i]);
		ck_assert_msg(t_check(p.data, lens[i], i), "len %u differs", lens[i]);
		ck_assert_uint_eq(p.slots, want);
		ck_assert_uint_eq(p.extras, 0);
		for (k = 0; k < want; k++)
			ck_assert_uint_eq(p.seg_len[k], k + 1 < want ? 4096
								 : lens[i] - 4096 * k);
		t_netpkt_free(&p);
	}
	/* GSO: 16 slots and the extra */
	t_reserve(q, &b[0], 65535);
	ck_assert_uint_eq(b[0].nr, 16);
	t_fill_rsv(&b[0], 65535, 50);
	ck_assert_int_eq(pvio_netfront_tx_commit(q, &b[0], 65535, &gso), 0);
	pvio_netfront_tx_push(q);
	ck_assert_int_eq(t_mocknet_tx_pop(t_mock, &p, 5000), 0);
	ck_assert(t_check(p.data, 65535, 50));
	ck_assert_uint_eq(p.slots, 16);
	ck_assert_uint_eq(p.extras, 1);
	ck_assert_uint_eq(p.off.gso_size, 1448);
	t_netpkt_free(&p);

	/* refused: the reservation is cancelled, its pages go back */
	t_reserve(q, &b[0], 4096);
	ck_assert_int_eq(pvio_netfront_tx_commit(q, &b[0], 5000, NULL), -EMSGSIZE);
	ck_assert_uint_eq(b[0].nr, 0);
	t_reserve(q, &b[0], 4096);
	ck_assert_int_eq(pvio_netfront_tx_commit(q, &b[0], 13, NULL), -EINVAL);
	t_reserve(q, &b[0], 4096);
	gso.gso_size = 0;
	ck_assert_int_eq(pvio_netfront_tx_commit(q, &b[0], 1000, &gso), -EINVAL);
	ck_assert_int_eq(pvio_netfront_tx_commit(q, &b[0], 1000, NULL), -EINVAL);
	ck_assert_int_eq(pvio_netfront_tx_reserve(q, &b[0], 13), -EINVAL);
	ck_assert_int_eq(pvio_netfront_tx_reserve(q, &b[0], 18 * 4096), -EINVAL);

	/* open reservations hold ring room (18 slots for 17 pages each):
	 * 14 fit in 256 slots, the 15th waits */
	for (k = 0; k < 14; k++) {
		int rc, tries = 0;

		/* the frames above hold slots until the mock answers them
		 * (reserve reaps the responses): wait for those, a while */
		while ((rc = pvio_netfront_tx_reserve(q, &rs[k], 17 * 4096)) == -EAGAIN &&
		       tries++ < 500)
			usleep(10000);
		ck_assert_int_eq(rc, 0);
	}
	ck_assert_int_eq(pvio_netfront_tx_reserve(q, &rs[14], 17 * 4096), -EAGAIN);
	/* send() respects them too */
	{
		static uint8_t buf[20000];
		struct pvio_netfront_frame f = { .data = buf, .len = 20000 };

		/* 5 slots: never with 4 left */
		ck_assert_int_eq(pvio_netfront_send(q, &f, 1), -EAGAIN);
		f.len = 1000;	/* one slot goes */
		t_send_all(q, &f, 1);
		ck_assert_int_eq(t_mocknet_tx_pop(t_mock, &p, 5000), 0);
		t_netpkt_free(&p);
	}
	for (k = 0; k < 14; k++)
		pvio_netfront_tx_cancel(q, &rs[k]);

	/* thousands of frames around the ring, each reserved to its size,
	 * some cancelled: nothing lost, reordered or leaked */
	for (i = 0; i < 3000; i++) {
		uint32_t len = 60 + (i * 331) % 20000;

		t_reserve(q, &b[0], len);
		if (i % 7 == 3) {
			pvio_netfront_tx_cancel(q, &b[0]);
			continue;
		}
		t_fill_rsv(&b[0], len, i);
		ck_assert_int_eq(pvio_netfront_tx_commit(q, &b[0], len, NULL), 0);
		if (i % 16 == 15)
			ck_assert_int_eq(pvio_netfront_tx_push(q), 0);
		while (t_mocknet_tx_pop(t_mock, &p, 0) == 0) {
			while (got % 7 == 3)
				got++;
			ck_assert_uint_eq(p.len, 60 + (got * 331) % 20000);
			ck_assert_msg(t_check(p.data, p.len, got), "frame %u differs", got);
			t_netpkt_free(&p);
			got++;
		}
	}
	pvio_netfront_tx_push(q);
	while (got < 3000) {
		while (got % 7 == 3 && got < 3000)
			got++;
		if (got == 3000)
			break;
		ck_assert_int_eq(t_mocknet_tx_pop(t_mock, &p, 5000), 0);
		ck_assert_uint_eq(p.len, 60 + (got * 331) % 20000);
		ck_assert_msg(t_check(p.data, p.len, got), "frame %u differs", got);
		t_netpkt_free(&p);
		got++;
	}
	ck_assert_int_eq(t_mocknet_tx_pop(t_mock, &p, 100), -ETIMEDOUT);
	pvio_netfront_queue_stats(q, &st);
	ck_assert_uint_eq(st.tx_errors, 0);
	/* every page came back: 14 full reservations fit again */
	for (k = 0; k < 14; k++)
		t_reserve(q, &rs[k], 17 * 4096);
	for (k = 0; k < 14; k++)
		pvio_netfront_tx_cancel(q, &rs[k]);
	t_close();
	t_no_mock_errors();
}
END_TEST

/* ---- rx ------------------------------------------------------------------ */

static void t_push(unsigned int qi, uint32_t len, uint32_t seq,
		   const struct pvio_net_offload *off)
{
	uint8_t *b = malloc(len);

	t_fill(b, len, seq);
	ck_assert_int_eq(t_mocknet_rx_push(t_mock, qi, b, len, off), 0);
	free(b);
}

/* rx_offset 0 (Linux netback) and 2 (QEMU's xen_nic) */
START_TEST(t_rx_multi)
{
	static const uint32_t lens[] = { 14, 60, 1514, 4094, 4096, 4097,
					 9014, 40000, 65535, 70000 };
	enum { NL = sizeof(lens) / sizeof(lens[0]) };
	struct pvio_netfront_frame *f = t_bufs(NL + 2, BIG);
	struct pvio_netfront_stats st;
	struct pvio_netfront_queue *q;
	struct pvio_net_offload gso = { .csum_blank = true,
					.data_validated = true,
					.gso_type = XEN_NETIF_GSO_TYPE_TCPV4,
					.gso_size = 1448 };
	struct t_mocknet_cfg c;
	unsigned int i;

	t_cfg(&c);
	c.rx_offset = (unsigned int)_i * 2;
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	q = pvio_netfront_queue(t_dev, 0);
	for (i = 0; i < NL; i++)
		t_push(0, lens[i], i, NULL);
	t_push(0, 65535, 100, &gso);
	gso.gso_type = XEN_NETIF_GSO_TYPE_TCPV6;
	gso.gso_size = 1200;
	t_push(0, 20000, 101, &gso);
	ck_assert_int_eq(t_recv(q, f, NL + 2, 5000), NL + 2);
	for (i = 0; i < NL; i++) {
		ck_assert_uint_eq(f[i].len, lens[i]);
		ck_assert_msg(t_check(f[i].data, f[i].len, i),
			      "rx frame %u (%u bytes) differs", i, lens[i]);
		ck_assert(!f[i].off.csum_blank && !f[i].off.gso_type);
	}
	ck_assert_uint_eq(f[NL].len, 65535);
	ck_assert(t_check(f[NL].data, 65535, 100));
	ck_assert_uint_eq(f[NL].off.gso_type, XEN_NETIF_GSO_TYPE_TCPV4);
	ck_assert_uint_eq(f[NL].off.gso_size, 1448);
	ck_assert(f[NL].off.csum_blank && f[NL].off.data_validated);
	ck_assert_uint_eq(f[NL + 1].len, 20000);
	ck_assert(t_check(f[NL + 1].data, 20000, 101));
	ck_assert_uint_eq(f[NL + 1].off.gso_type, XEN_NETIF_GSO_TYPE_TCPV6);
	ck_assert_uint_eq(f[NL + 1].off.gso_size, 1200);
	pvio_netfront_queue_stats(q, &st);
	ck_assert_uint_eq(st.rx_frames, NL + 2);
	ck_assert_uint_eq(st.rx_gso, 2);
	ck_assert_uint_eq(st.rx_errors + st.rx_oversize, 0);

	/* a buffer too small: dropped and counted, the next one is fine */
	t_push(0, 1514, 7, NULL);
	t_push(0, 600, 8, NULL);
	f[0].size = 1000;
	ck_assert_int_eq(t_recv(q, f, 1, 5000), 1);
	ck_assert_uint_eq(f[0].len, 600);
	ck_assert(t_check(f[0].data, 600, 8));
	pvio_netfront_queue_stats(q, &st);
	ck_assert_uint_eq(st.rx_oversize, 1);
	t_free_bufs(f, NL + 2);
	t_close();
	t_no_mock_errors();
}
END_TEST

/* Receive in place until @n frames came or @ms passed. */
static int t_recv_zc(struct pvio_netfront_queue *q, struct pvio_netfront_rxbuf *b,
		     unsigned int n, int ms)
{
	uint64_t end = pvio_now_ms() + (uint64_t)ms;
	unsigned int got = 0;

	while (got < n) {
		int rc = pvio_netfront_recv_zc(q, b + got, n - got);
		struct pollfd p = { .fd = pvio_netfront_queue_fd(q), .events = POLLIN };

		if (rc < 0)
			return rc;
		got += (unsigned int)rc;
		if (got == n || rc > 0)
			continue;
		if (pvio_now_ms() >= end)
			break;
		rc = pvio_netfront_arm(q, PVIO_NETFRONT_ARM_RX);
		if (rc < 0)
			return rc;
		if (rc == 0)
			poll(&p, 1, 50);
	}
	return (int)got;
}

/* A frame received in place, gathered, against pattern @seq. */
static bool t_check_zc(const struct pvio_netfront_rxbuf *b, uint32_t len,
		       uint32_t seq)
{
	uint8_t *tmp = malloc(len + 1);
	uint32_t done = 0;
	unsigned int i;
	bool ok;

	for (i = 0; i < b->nr; i++) {
		if (done + b->iov[i].iov_len > len) {
			free(tmp);
			return false;
		}
		memcpy(tmp + done, b->iov[i].iov_base, b->iov[i].iov_len);
		done += (uint32_t)b->iov[i].iov_len;
	}
	ok = done == len && b->len == len && t_check(tmp, len, seq);
	free(tmp);
	return ok;
}

/*
 * Frames received in place: the data and offloads as recv() gives them;
 * their pages stay off the ring until released (the backend runs out of
 * buffers and waits), release frees everything before it too, a bogus
 * release is refused, and copying recv() mixes in.
 */
START_TEST(t_rx_zc)
{
	static const uint32_t lens[] = { 14, 60, 1514, 4096, 4097, 40000, 65535 };
	enum { NL = sizeof(lens) / sizeof(lens[0]) };
	static struct pvio_netfront_rxbuf b[256];
	struct pvio_net_offload gso = { .csum_blank = true,
					.data_validated = true,
					.gso_type = XEN_NETIF_GSO_TYPE_TCPV4,
					.gso_size = 1448 };
	struct pvio_netfront_frame *f = t_bufs(4, BIG);
	struct pvio_netfront_queue *q;
	struct pvio_netfront_stats st;
	struct t_mocknet_stats ms;
	struct t_mocknet_cfg c;
	unsigned int i, got, seq;
	uint64_t end;

	t_cfg(&c);
	c.rx_offset = (unsigned int)_i * 2;
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	q = pvio_netfront_queue(t_dev, 0);
	for (i = 0; i < NL; i++)
		t_push(0, lens[i], i, NULL);
	t_push(0, 30000, 100, &gso);
	ck_assert_int_eq(t_recv_zc(q, b, NL + 1, 5000), NL + 1);
	for (i = 0; i < NL; i++) {
		ck_assert_msg(t_check_zc(&b[i], lens[i], i), "frame %u (%u bytes)", i, lens[i]);
		ck_assert_uint_ge(b[i].iov[0].iov_len, 14);
		ck_assert(!b[i].off.csum_blank && !b[i].off.gso_type);
	}
	ck_assert(t_check_zc(&b[NL], 30000, 100));
	ck_assert_uint_eq(b[NL].off.gso_type, XEN_NETIF_GSO_TYPE_TCPV4);
	ck_assert_uint_eq(b[NL].off.gso_size, 1448);
	ck_assert(b[NL].off.csum_blank);
	/* a frame not handed out, or already released: refused */
	{
		struct pvio_netfront_rxbuf bogus = b[2];

		bogus.pos_ += 100000;
		ck_assert_int_eq(pvio_netfront_rx_release(q, &bogus, 1), -EINVAL);
	}
	ck_assert_int_eq(pvio_netfront_rx_release(q, b, 3), 0);	/* 0..2 */
	ck_assert_int_eq(pvio_netfront_rx_release(q, &b[1], 1), -EINVAL);
	ck_assert_int_eq(pvio_netfront_rx_release(q, &b[NL], 1), 0);	/* 3..NL */
	ck_assert_int_eq(pvio_netfront_rx_release(q, b, 0), 0);

	/* held pages are not posted again: the backend waits for buffers */
	for (i = 0; i < 400; i++)
		t_push(0, 1000 + i, 1000 + i, NULL);
	got = 0;
	end = pvio_now_ms() + 5000;
	while (got < 200 && pvio_now_ms() < end) {
		int n = t_recv_zc(q, b + got, 200 - got, 100);

		ck_assert_int_ge(n, 0);
		got += (unsigned int)n;
	}
	ck_assert_uint_eq(got, 200);
	poll(NULL, 0, 100);
	/* 256 buffers, 200 held: at most 56 more can come, whatever the
	 * wait */
	{
		int n = t_recv_zc(q, b + 200, 56, 300);

		ck_assert_int_ge(n, 0);
		got = 200 + (unsigned int)n;
	}
	ck_assert_int_eq(t_recv_zc(q, b + got, 1, 200), 0);
	t_mocknet_stats(t_mock, &ms);
	ck_assert_uint_lt(ms.rx_packets, NL + 1 + 400);
	ck_assert_msg(ms.rx_waits > 0, "the mock never ran out of buffers");
	for (i = 0; i < got; i++)
		ck_assert_msg(t_check_zc(&b[i], 1000 + i, 1000 + i), "held frame %u", i);
	/* release everything held so far, then the rest flows */
	ck_assert_int_eq(pvio_netfront_rx_release(q, &b[got - 1], 1), 0);
	for (seq = 1000 + got; seq < 1400;) {
		int n = t_recv_zc(q, b, 32, 5000), k, m;

		ck_assert_msg(n > 0, "stuck at %u", seq);
		for (k = 0; k < n; k++, seq++)
			ck_assert_msg(t_check_zc(&b[k], seq, seq), "frame %u", seq);
		if (seq % 2 && seq < 1400) {
			/* copied frames while these are held */
			m = t_recv(q, f, 1400 - seq < 4 ? 1400 - seq : 4, 5000);
			ck_assert_int_gt(m, 0);
			for (k = 0; k < m; k++, seq++)
				ck_assert_msg(f[k].len == seq && t_check(f[k].data, seq, seq),
					      "copied frame %u", seq);
		}
		ck_assert_int_eq(pvio_netfront_rx_release(q, &b[n - 1], 1), 0);
	}
	ck_assert_int_eq(t_recv_zc(q, b, 1, 200), 0);
	pvio_netfront_queue_stats(q, &st);
	ck_assert_uint_eq(st.rx_frames, NL + 1 + 400);
	ck_assert_uint_eq(st.rx_errors + st.rx_oversize, 0);
	t_free_bufs(f, 4);
	t_close();
	t_no_mock_errors();
}
END_TEST

/* Half a packet published, the rest 50 ms later: taken whole. */
START_TEST(t_rx_half)
{
	struct pvio_netfront_frame *f = t_bufs(2, BIG);
	struct pvio_netfront_queue *q;
	struct t_mocknet_cfg c;

	t_cfg(&c);
	c.evil = T_NEVIL_RX_HALF;
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	q = pvio_netfront_queue(t_dev, 0);
	t_push(0, 9014, 1, NULL);
	t_push(0, 100, 2, NULL);
	ck_assert_int_eq(t_recv(q, f, 2, 5000), 2);
	ck_assert_uint_eq(f[0].len, 9014);
	ck_assert(t_check(f[0].data, 9014, 1));
	ck_assert(t_check(f[1].data, 100, 2));
	t_free_bufs(f, 2);
	t_close();
	t_no_mock_errors();
}
END_TEST

/* A full batch leaves packets behind: arm() says so instead of letting
 * the caller sleep on them. */
START_TEST(t_rx_batch_full)
{
	struct pvio_netfront_frame *f = t_bufs(5, BIG);
	struct pvio_netfront_queue *q;
	struct t_mocknet_cfg c;
	struct pvio_net_offload gso = { .csum_blank = true,
					.gso_type = XEN_NETIF_GSO_TYPE_TCPV4,
					.gso_size = 1000 };
	uint64_t end;
	unsigned int i;

	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	q = pvio_netfront_queue(t_dev, 0);
	for (i = 0; i < 5; i++)
		t_push(0, 3000 + 3000 * i, i, i == 4 ? &gso : NULL);
	end = pvio_now_ms() + 5000;
	while (t_mocknet_rx_pending(t_mock) && pvio_now_ms() < end)
		poll(NULL, 0, 5);
	ck_assert_uint_eq(t_mocknet_rx_pending(t_mock), 0);
	ck_assert_int_eq(pvio_netfront_recv(q, f, 2), 2);
	ck_assert_int_eq(pvio_netfront_arm(q, PVIO_NETFRONT_ARM_RX),
			 PVIO_NETFRONT_ARM_RX);
	ck_assert_int_eq(pvio_netfront_recv(q, f + 2, 3), 3);
	for (i = 0; i < 5; i++) {
		ck_assert_uint_eq(f[i].len, 3000 + 3000 * i);
		ck_assert(t_check(f[i].data, f[i].len, i));
	}
	ck_assert_uint_eq(f[4].off.gso_size, 1000);
	ck_assert_int_eq(pvio_netfront_arm(q, PVIO_NETFRONT_ARM_RX), 0);
	t_free_bufs(f, 5);
	t_close();
	t_no_mock_errors();
}
END_TEST

/* More frames than posted buffers: the mock waits for buffers (asking to
 * be notified); nothing is lost or duplicated and the order is kept. */
START_TEST(t_rx_pressure)
{
	enum { N = 3000, BATCH = 48 };
	struct pvio_netfront_frame *f = t_bufs(BATCH, BIG);
	struct pvio_netfront_queue *q;
	struct pvio_netfront_stats st;
	struct t_mocknet_stats ms;
	struct t_mocknet_cfg c;
	unsigned int got = 0, k;

	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	q = pvio_netfront_queue(t_dev, 0);
	for (k = 0; k < N; k++)
		t_push(0, 60 + (k * 997) % 9000, k, NULL);
	while (got < N) {
		int n = t_recv(q, f, BATCH, 5000);

		ck_assert_msg(n > 0, "stuck after %u frames: %d", got, n);
		for (k = 0; k < (unsigned int)n; k++, got++) {
			ck_assert_uint_eq(f[k].len, 60 + (got * 997) % 9000);
			ck_assert_msg(t_check(f[k].data, f[k].len, got),
				      "frame %u differs (lost, reordered or "
				      "duplicated)", got);
		}
		if (got % 480 == 0)
			poll(NULL, 0, 20);	/* let the ring fill up */
	}
	ck_assert_int_eq(t_recv(q, f, 1, 200), 0);
	ck_assert_uint_eq(t_mocknet_rx_pending(t_mock), 0);
	t_mocknet_stats(t_mock, &ms);
	ck_assert_uint_eq(ms.rx_packets, N);
	ck_assert_msg(ms.rx_waits > 0, "the mock never ran out of buffers");
	pvio_netfront_queue_stats(q, &st);
	ck_assert_uint_eq(st.rx_frames, N);
	/* refills come in batches, not per frame */
	ck_assert_msg(st.rx_refills * 8 < N, "%llu refills for %u frames",
		      (unsigned long long)st.rx_refills, N);
	t_free_bufs(f, BATCH);
	t_close();
	t_no_mock_errors();
}
END_TEST

/* ---- checksum flags ------------------------------------------------------ */

START_TEST(t_csum_flags)
{
	struct pvio_netfront_frame *f = t_bufs(3, BIG);
	struct pvio_net_offload o[3] = {
		{ 0 },
		{ .data_validated = true },
		{ .csum_blank = true, .data_validated = true },
	};
	struct pvio_netfront_queue *q;
	struct t_mocknet_cfg c;
	struct t_netpkt p;
	unsigned int i;

	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	q = pvio_netfront_queue(t_dev, 0);
	/* tx: none; data_validated; csum_blank (which implies validated) */
	t_tx1(q, 100, 1, &o[0], &p);
	ck_assert_uint_eq(p.first_flags & (NETTXF_csum_blank |
					   NETTXF_data_validated), 0);
	t_netpkt_free(&p);
	t_tx1(q, 100, 2, &o[1], &p);
	ck_assert_uint_eq(p.first_flags & (NETTXF_csum_blank |
					   NETTXF_data_validated),
			  NETTXF_data_validated);
	t_netpkt_free(&p);
	o[2].data_validated = false;
	t_tx1(q, 100, 3, &o[2], &p);
	ck_assert_uint_eq(p.first_flags & (NETTXF_csum_blank |
					   NETTXF_data_validated),
			  NETTXF_csum_blank | NETTXF_data_validated);
	t_netpkt_free(&p);
	/* rx: the same three */
	o[2].data_validated = true;
	for (i = 0; i < 3; i++)
		t_push(0, 5000, i, &o[i]);
	ck_assert_int_eq(t_recv(q, f, 3, 5000), 3);
	for (i = 0; i < 3; i++) {
		ck_assert_int_eq(f[i].off.csum_blank, o[i].csum_blank);
		ck_assert_int_eq(f[i].off.data_validated, o[i].data_validated);
		ck_assert(t_check(f[i].data, 5000, i));
	}
	t_free_bufs(f, 3);
	t_close();
	t_no_mock_errors();
}
END_TEST

/* An IPv4/TCP frame whose checksum is left to the receiver. */
static uint32_t t_tcp_frame(uint8_t *b, uint32_t payload)
{
	uint32_t len = 14 + 20 + 20 + payload, i;
	uint16_t tot = (uint16_t)(20 + 20 + payload);

	memset(b, 0, len);
	memset(b, 0xff, 6);
	memcpy(b + 6, t_mac, 6);
	b[12] = 0x08;
	b[14] = 0x45;
	b[16] = (uint8_t)(tot >> 8);
	b[17] = (uint8_t)tot;
	b[22] = 64;
	b[23] = IPPROTO_TCP;
	b[26] = 10, b[29] = 1;
	b[30] = 10, b[33] = 2;
	b[34] = 0x30, b[35] = 0x39;
	b[36] = 0x00, b[37] = 0x50;
	b[46] = 0x50;	/* data offset 5 */
	b[47] = 0x18;
	for (i = 0; i < payload; i++)
		b[54 + i] = (uint8_t)i;
	return len;
}

/* F_NO_CSUM: feature-no-csum-offload; the backend fills checksums. */
START_TEST(t_no_csum)
{
	struct pvio_netfront_frame *f = t_bufs(1, BIG);
	struct pvio_net_offload blank = { .csum_blank = true,
					  .data_validated = true };
	struct pvio_netfront_frame g = { 0 };
	struct pvio_netfront_info info;
	struct pvio_netfront_queue *q;
	struct t_mocknet_cfg c;
	uint8_t frame[2000], want[2000];
	uint32_t len;

	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, PVIO_NETFRONT_F_NO_CSUM);
	t_wait_link(true);
	pvio_netfront_info(t_dev, &info);
	ck_assert_uint_eq(info.features & (PVIO_NETFRONT_FEAT_TX_CSUM |
					   PVIO_NETFRONT_FEAT_TX_CSUM_IPV6 |
					   PVIO_NETFRONT_FEAT_RX_CSUM |
					   PVIO_NETFRONT_FEAT_TX_GSO_TCPV4 |
					   PVIO_NETFRONT_FEAT_RX_GSO_TCPV4), 0);
	ck_assert_str_eq(t_fe_key("feature-no-csum-offload"), "1");
	ck_assert_str_eq(t_fe_key("feature-ipv6-csum-offload"), "");
	ck_assert_str_eq(t_fe_key("feature-gso-tcpv4"), "");
	ck_assert_str_eq(t_fe_key("feature-sg"), "1");
	q = pvio_netfront_queue(t_dev, 0);
	len = t_tcp_frame(frame, 1000);
	g.data = frame;
	g.len = len;
	g.off = blank;
	ck_assert_int_eq(pvio_netfront_send(q, &g, 1), -EINVAL);
	ck_assert_int_eq(t_mocknet_rx_push(t_mock, 0, frame, len, &blank), 0);
	ck_assert_int_eq(t_recv(q, f, 1, 5000), 1);
	ck_assert(!f[0].off.csum_blank && f[0].off.data_validated);
	memcpy(want, frame, len);
	ck_assert_int_eq(pvio_net_csum_fill(want, len), 0);
	ck_assert_uint_eq(f[0].len, len);
	ck_assert_mem_eq(f[0].data, want, len);
	t_free_bufs(f, 1);
	t_close();
	t_no_mock_errors();
}
END_TEST

/* ---- event channels and queues ------------------------------------------- */

/* 0: split offered and used; 1: offered, refused (F_NO_SPLIT); 2: not
 * offered. */
START_TEST(t_split)
{
	struct pvio_netfront_frame *f = t_bufs(1, BIG);
	struct pvio_netfront_info info;
	struct pvio_netfront_queue *q;
	struct t_mocknet_stats st;
	struct t_mocknet_cfg c;
	struct t_netpkt p;
	bool split = _i == 0;

	t_cfg(&c);
	c.split = _i != 2;
	t_mock_start(&c);
	t_open(1, _i == 1 ? PVIO_NETFRONT_F_NO_SPLIT : 0);
	t_wait_link(true);
	pvio_netfront_info(t_dev, &info);
	ck_assert_int_eq(!!(info.features & PVIO_NETFRONT_FEAT_SPLIT_EVTCHN),
			 split);
	ck_assert_int_eq(t_fe_key("event-channel")[0] != 0, !split);
	ck_assert_int_eq(t_fe_key("event-channel-tx")[0] != 0, split);
	ck_assert_int_eq(t_fe_key("event-channel-rx")[0] != 0, split);
	t_mocknet_stats(t_mock, &st);
	ck_assert_int_eq(st.split, split);
	q = pvio_netfront_queue(t_dev, 0);
	t_tx1(q, 5000, 1, NULL, &p);
	t_netpkt_free(&p);
	t_push(0, 5000, 2, NULL);
	ck_assert_int_eq(t_recv(q, f, 1, 5000), 1);
	ck_assert(t_check(f[0].data, 5000, 2));
	t_free_bufs(f, 1);
	t_close();
	t_no_mock_errors();
}
END_TEST

START_TEST(t_multiqueue)
{
	struct pvio_netfront_frame *f = t_bufs(1, BIG);
	struct pvio_netfront_info info;
	struct t_mocknet_stats st;
	struct t_mocknet_cfg c;
	struct t_netpkt p;
	unsigned int i;

	t_cfg(&c);
	c.max_queues = 4;
	t_mock_start(&c);
	/* one queue asked: the key is still written (the backend has its
	 * counterpart), the ring keys are flat */
	t_open(1, 0);
	ck_assert_str_eq(t_fe_key("multi-queue-num-queues"), "1");
	ck_assert_str_ne(t_fe_key("tx-ring-ref"), "");
	t_close();
	ck_assert_int_eq(t_mocknet_wait_state(t_mock, PVIO_XB_CLOSED, 2000), 0);

	/* more asked than offered: the backend's limit */
	t_open(8, 0);
	t_wait_link(true);
	pvio_netfront_info(t_dev, &info);
	ck_assert_uint_eq(info.nr_queues, 4);
	ck_assert_str_eq(t_fe_key("multi-queue-num-queues"), "4");
	ck_assert_str_eq(t_fe_key("tx-ring-ref"), "");
	ck_assert_str_ne(t_fe_key("queue-0/tx-ring-ref"), "");
	ck_assert_str_ne(t_fe_key("queue-3/rx-ring-ref"), "");
	ck_assert_str_ne(t_fe_key("queue-3/event-channel-rx"), "");
	t_mocknet_stats(t_mock, &st);
	ck_assert_uint_eq(st.nr_queues, 4);
	ck_assert(st.mq_key);
	for (i = 0; i < 4; i++) {
		struct pvio_netfront_queue *q = pvio_netfront_queue(t_dev, i);

		ck_assert_ptr_nonnull(q);
		t_tx1(q, 3000 + i, i, NULL, &p);
		ck_assert_uint_eq(p.queue, i);
		t_netpkt_free(&p);
		t_push(i, 7000 + i, 10 + i, NULL);
		ck_assert_int_eq(t_recv(q, f, 1, 5000), 1);
		ck_assert_uint_eq(f[0].len, 7000 + i);
		ck_assert(t_check(f[0].data, f[0].len, 10 + i));
	}
	t_free_bufs(f, 1);
	t_close();
	/* two queues in a fresh session: the stale queue-2/3 are gone */
	ck_assert_int_eq(t_mocknet_wait_state(t_mock, PVIO_XB_CLOSED, 2000), 0);
	t_open(2, 0);
	ck_assert_str_eq(t_fe_key("multi-queue-num-queues"), "2");
	ck_assert_str_eq(t_fe_key("queue-2/tx-ring-ref"), "");
	t_close();
	t_no_mock_errors();
}
END_TEST

/* ---- a hostile or closing backend ---------------------------------------- */

static const enum t_nevil t_evils[] = {
	T_NEVIL_TX_BAD_ID, T_NEVIL_TX_INACTIVE_ID, T_NEVIL_TX_NULL,
	T_NEVIL_RX_BAD_OFFSET, T_NEVIL_RX_BAD_SIZE, T_NEVIL_RX_BAD_ID,
	T_NEVIL_RX_OVERFLOW, T_NEVIL_RX_LONG_CHAIN,
};

START_TEST(t_hostile)
{
	enum t_nevil evil = t_evils[_i];
	bool tx = evil <= T_NEVIL_TX_NULL;
	struct pvio_netfront_frame *f = t_bufs(4, BIG);
	struct pvio_netfront_queue *q;
	struct pollfd pfd;
	struct t_mocknet_cfg c;
	struct t_netpkt p;
	uint64_t end;
	int rc = 0;

	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	q = pvio_netfront_queue(t_dev, 0);
	/* two good packets each way, then the evil one */
	t_tx1(q, 500, 1, NULL, &p);
	t_netpkt_free(&p);
	t_push(0, 500, 2, NULL);
	ck_assert_int_eq(t_recv(q, f, 1, 5000), 1);
	t_mocknet_set_evil(t_mock, evil, 0);
	end = pvio_now_ms() + 5000;
	while (pvio_now_ms() < end) {
		if (tx) {
			f[0].len = 600;
			t_fill(f[0].data, 600, 3);
			rc = pvio_netfront_send(q, f, 1);
			if (rc == -EPROTO)
				break;
			ck_assert_int_ge(rc, 0);
			poll(NULL, 0, 20);
		} else {
			t_push(0, 5000, 3, NULL);
			rc = t_recv(q, f, 1, 200);
			if (rc == -EPROTO)
				break;
			ck_assert_int_ge(rc, 0);
		}
	}
	ck_assert_msg(rc == -EPROTO, "evil %d not caught: %d", evil, rc);
	ck_assert_int_eq(pvio_netfront_dead(t_dev), -EPROTO);
	ck_assert_msg(strstr(pvio_netfront_error(t_dev), "broke the protocol"),
		      "error: %s", pvio_netfront_error(t_dev));
	/* everything fails from now on, and the fd says so */
	ck_assert_int_eq(pvio_netfront_send(q, f, 1), -EPROTO);
	ck_assert_int_eq(pvio_netfront_recv(q, f, 1), -EPROTO);
	ck_assert_int_eq(pvio_netfront_arm(q, PVIO_NETFRONT_ARM_RX), -EPROTO);
	pfd.fd = pvio_netfront_queue_fd(q);
	pfd.events = POLLIN;
	ck_assert_int_eq(poll(&pfd, 1, 0), 1);
	/* a clean teardown, with the reason where the toolstack looks */
	t_close();
	ck_assert_int_eq(t_fe_state(), PVIO_XB_CLOSED);
	ck_assert_msg(strstr(t_fe_key("error"), "broke the protocol"),
		      "error node: %s", t_fe_key("error"));
	t_free_bufs(f, 4);
}
END_TEST

START_TEST(t_backend_closes)
{
	struct pvio_netfront_frame *f = t_bufs(2, BIG);
	struct pvio_netfront_queue *q;
	struct pollfd pfd;
	uint64_t end;
	struct t_mocknet_cfg c;

	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	q = pvio_netfront_queue(t_dev, 0);
	t_push(0, 1000, 1, NULL);
	/* let it land before the backend goes */
	end = pvio_now_ms() + 5000;
	while (t_mocknet_rx_pending(t_mock) && pvio_now_ms() < end)
		poll(NULL, 0, 5);
	t_mocknet_close(t_mock);
	end = pvio_now_ms() + 5000;
	while ((!pvio_netfront_dead(t_dev) ||
		!__atomic_load_n(&t_ev_dead, __ATOMIC_RELAXED)) && pvio_now_ms() < end)
		poll(NULL, 0, 5);
	ck_assert_int_eq(pvio_netfront_dead(t_dev), -ENOTCONN);
	ck_assert_int_eq(__atomic_load_n(&t_ev_dead, __ATOMIC_RELAXED), 1);
	t_wait_link(false);
	ck_assert_int_eq(t_fe_state(), PVIO_XB_CLOSED);
	ck_assert_int_eq(t_mocknet_wait_state(t_mock, PVIO_XB_CLOSED, 2000), 0);
	pfd.fd = pvio_netfront_queue_fd(q);
	pfd.events = POLLIN;
	ck_assert_int_eq(poll(&pfd, 1, 0), 1);
	/* what came before is still there, then the end */
	ck_assert_int_eq(pvio_netfront_recv(q, f, 2), 1);
	ck_assert(t_check(f[0].data, 1000, 1));
	ck_assert_int_eq(pvio_netfront_recv(q, f, 2), -ENOTCONN);
	f[0].len = 100;
	ck_assert_int_eq(pvio_netfront_send(q, f, 1), -ENOTCONN);
	t_close();
	t_free_bufs(f, 2);
}
END_TEST

/* A backend state of Unknown (0) is Closed. */
START_TEST(t_unknown_state)
{
	char key[PVIO_XS_PATH_MAX + 8];
	struct t_mocknet_cfg c;
	uint64_t end;

	t_cfg(&c);
	t_mock_start(&c);
	t_open(1, 0);
	t_wait_link(true);
	t_mocknet_stop(t_mock);		/* the backend process is gone */
	t_mock = NULL;
	snprintf(key, sizeof(key), "%s/state", t_be);
	ck_assert_int_eq(pvio_xs_write(t_x0, 0, key, "0"), 0);
	end = pvio_now_ms() + 5000;
	while (!pvio_netfront_dead(t_dev) && pvio_now_ms() < end)
		poll(NULL, 0, 5);
	ck_assert_int_eq(pvio_netfront_dead(t_dev), -ENOTCONN);
	ck_assert_int_eq(t_fe_state(), PVIO_XB_CLOSED);
	ck_assert(!pvio_netfront_link_up(t_dev));
	ck_assert_int_eq(pvio_netfront_close(t_dev), 0);
	t_dev = NULL;
}
END_TEST

static Suite *netfront_suite(void)
{
	Suite *s = suite_create("netfront");
	TCase *tc;

	tc = tcase_create("handshake");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_handshake);
	tcase_add_test(tc, t_reconnect);
	tcase_add_test(tc, t_stale_session);
	tcase_add_test(tc, t_dup_events);
	tcase_add_test(tc, t_no_rx_copy);
	tcase_add_test(tc, t_bad_mac);
	tcase_add_test(tc, t_timeout);
	tcase_add_test(tc, t_bad_args);
	suite_add_tcase(s, tc);

	tc = tcase_create("data");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_tx_single);
	tcase_add_test(tc, t_tx_multi);
	tcase_add_test(tc, t_tx_wrap);
	tcase_add_test(tc, t_no_sg);
	tcase_add_test(tc, t_tx_zc);
	tcase_add_loop_test(tc, t_rx_multi, 0, 2);
	tcase_add_test(tc, t_rx_half);
	tcase_add_test(tc, t_rx_batch_full);
	tcase_add_test(tc, t_rx_pressure);
	tcase_add_loop_test(tc, t_rx_zc, 0, 2);
	tcase_add_test(tc, t_csum_flags);
	tcase_add_test(tc, t_no_csum);
	tcase_add_loop_test(tc, t_split, 0, 3);
	tcase_add_test(tc, t_multiqueue);
	suite_add_tcase(s, tc);

	tc = tcase_create("failure");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, t_hostile, 0,
			    sizeof(t_evils) / sizeof(t_evils[0]));
	tcase_add_test(tc, t_backend_closes);
	tcase_add_test(tc, t_unknown_state);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return t_run_suite(netfront_suite(), true);
}
