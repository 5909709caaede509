// SPDX-License-Identifier: MIT
/*
 * The userspace blkfront against a mock backend (t-mockblk.c) in a private
 * sim world: the handshake to Connected and back to Closed, reconnects,
 * ring and queue negotiation, indirect requests, data integrity across
 * ring wrap-around, flush, discard, read-only disks, a hostile backend,
 * a backend that closes under I/O, resize, timeouts and bad arguments.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pvio/blkfront.h>
#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "sim-toolstack.h"
#include "t-mockblk.h"
#include "t-world.h"
#include "toolstack.h"
#include "t-check.h"

#define FE_DOM		5u
#define DEVID		51712u		/* xvda */
#define DISK_SIZE	(8u << 20)

static struct pvio_platform *t_d0, *t_u;
static struct pvio_xs *t_x0, *t_xu;
static int t_fd = -1;
static struct t_mockblk *t_mock;
static char t_fe[PVIO_XS_PATH_MAX], t_be[PVIO_XS_PATH_MAX];

static void setup(void)
{
	struct pvio_ts_vbd v;
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
	snprintf(v.vdev, sizeof(v.vdev), "xvda");
	snprintf(v.target, sizeof(v.target), "/dev/null");
	ck_assert_int_eq(pvio_ts_vbd_add(t_x0, &v), 0);
	pvio_xb_frontend_path(t_fe, FE_DOM, "vbd", DEVID);
	pvio_xb_backend_path(t_be, 0, "vbd", FE_DOM, DEVID);
	t_fd = memfd_create("disk", MFD_CLOEXEC);
	ck_assert_int_ge(t_fd, 0);
	ck_assert_int_eq(ftruncate(t_fd, DISK_SIZE), 0);
	t_u = NULL;
	t_xu = NULL;
	t_mock = NULL;
}

static void teardown(void)
{
	t_mockblk_stop(t_mock);
	pvio_xs_close(t_xu);
	pvio_platform_close(t_u);
	pvio_xs_close(t_x0);
	pvio_platform_close(t_d0);
	if (t_fd >= 0)
		close(t_fd);
	t_world_stop();
}

/* ---- helpers ------------------------------------------------------------- */

static void t_mock_cfg(struct t_mockblk_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->spec = t_world_spec;
	c->fe = FE_DOM;
	c->devid = DEVID;
	c->fd = t_fd;
	c->max_ring_order = 4;
	c->flush = true;
}

static void t_mock_start(const struct t_mockblk_cfg *c)
{
	int rc = t_mockblk_start(&t_mock, c);

	ck_assert_msg(rc == 0, "mock backend: %s", strerror(-rc));
}

/* This process as the guest (once). */
static void t_guest(void)
{
	int rc;

	if (t_u)
		return;
	rc = pvio_platform_open(&t_u, t_world_spec, FE_DOM, 0);
	ck_assert_msg(rc == 0, "attach as dom%u: %s", FE_DOM, strerror(-rc));
	ck_assert_int_eq(pvio_xs_open(&t_xu, t_u), 0);
}

static struct pvio_blkfront *t_open(const struct pvio_blkfront_opts *o)
{
	struct pvio_blkfront *dev = NULL;
	char err[PVIO_BLKFRONT_ERR_MAX];
	int rc;

	t_guest();
	rc = pvio_blkfront_open(&dev, t_u, t_xu, DEVID, o, err, sizeof(err));
	ck_assert_msg(rc == 0, "open: %s (%s)", strerror(-rc), err);
	return dev;
}

/* A node of the sim world, read as dom0; NULL if absent (free it). */
static char *t_read(const char *dir, const char *key)
{
	char path[2 * PVIO_XS_PATH_MAX], *v = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	if (pvio_xs_read(t_x0, 0, path, &v) < 0)
		return NULL;
	return v;
}

static void t_expect_node(const char *dir, const char *key, const char *want)
{
	char *v = t_read(dir, key);

	if (!want) {
		ck_assert_msg(v == NULL, "%s/%s: '%s', want none", dir, key, v);
		return;
	}
	ck_assert_msg(v != NULL, "%s/%s is missing", dir, key);
	ck_assert_msg(strcmp(v, want) == 0, "%s/%s: '%s', want '%s'", dir,
		      key, v, want);
	free(v);
}

static int t_state(const char *dir)
{
	char *v = t_read(dir, "state");
	int s = v ? atoi(v) : -1;

	free(v);
	return s;
}

static void t_pattern(void *buf, size_t len, uint64_t off, unsigned int seed)
{
	uint8_t *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = (uint8_t)((off + i) * 2654435761u >> 13) ^ (uint8_t)seed;
}

static uint64_t t_now_ms(void)
{
	return pvio_now_ns() / 1000000u;
}

/* Until dir/state is @st (the sim world moves in other processes). */
static bool t_wait_state(const char *dir, int st, int ms)
{
	uint64_t end = t_now_ms() + (uint64_t)ms;

	while (t_state(dir) != st) {
		if (t_now_ms() > end)
			return false;
		usleep(5000);
	}
	return true;
}

static unsigned int t_events[3];

static void t_event(struct pvio_blkfront *dev, enum pvio_blkfront_event ev,
		    void *opaque)
{
	(void)dev;
	(void)opaque;
	__atomic_add_fetch(&t_events[ev], 1, __ATOMIC_SEQ_CST);
}

struct t_done {
	unsigned int n;
	int res[1024];
};

static void t_count(struct pvio_blkfront_io *io, int res)
{
	struct t_done *d = io->user_data;

	d->res[d->n++] = res;
}

/* Until the mock backend holds @n requests (T_EVIL_HOLD), 5 s at most. */
static void t_wait_held(unsigned int n)
{
	struct t_mockblk_stats st;
	uint64_t end = t_now_ms() + 5000;

	for (;;) {
		t_mockblk_stats(t_mock, &st);
		if (st.held >= n || t_now_ms() >= end)
			break;
		usleep(2000);
	}
	ck_assert_uint_eq(st.held, n);
}

/* ---- handshake ----------------------------------------------------------- */

START_TEST(t_handshake)
{
	struct pvio_blkfront_info info;
	struct t_mockblk_stats st;
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	char buf[4096], back[4096], *v;
	struct pvio_blkfront_queue *q;

	t_mock_cfg(&c);
	c.discard = true;
	t_mock_start(&c);
	dev = t_open(NULL);
	ck_assert_int_eq(t_state(t_fe), PVIO_XB_CONNECTED);
	ck_assert_int_eq(t_state(t_be), PVIO_XB_CONNECTED);
	ck_assert_int_eq(pvio_blkfront_info(dev, &info), 0);
	ck_assert_uint_eq(info.sectors, DISK_SIZE / 512);
	ck_assert_uint_eq(info.size, DISK_SIZE);
	ck_assert_uint_eq(info.sector_size, 512);
	ck_assert_uint_eq(info.physical_sector_size, 512);
	ck_assert(!info.readonly);
	ck_assert(info.features & PVIO_BLKFRONT_FEAT_FLUSH);
	ck_assert(info.features & PVIO_BLKFRONT_FEAT_DISCARD);
	ck_assert(info.features & PVIO_BLKFRONT_FEAT_PERSISTENT);
	ck_assert(!(info.features & PVIO_BLKFRONT_FEAT_INDIRECT));
	ck_assert_uint_eq(info.nr_queues, 1);
	ck_assert_uint_eq(info.queue_depth, 64);	/* the default */
	ck_assert_uint_eq(info.ring_pages, 2);	/* holds 64 */
	ck_assert_uint_eq(info.max_segments, 11);
	ck_assert_uint_eq(info.max_io, 11 * 4096);
	ck_assert_str_eq(info.backend, t_be);
	ck_assert_str_eq(pvio_blkfront_error(dev), "");

	/* what the frontend published, as Linux blkfront does */
	t_expect_node(t_fe, "protocol", "x86_64-abi");
	t_expect_node(t_fe, "feature-persistent", "1");
	t_expect_node(t_fe, "ring-page-order", "1");
	t_expect_node(t_fe, "ring-ref", NULL);
	v = t_read(t_fe, "ring-ref0");
	ck_assert_ptr_nonnull(v);
	free(v);
	v = t_read(t_fe, "ring-ref1");
	ck_assert_ptr_nonnull(v);
	free(v);
	t_expect_node(t_fe, "ring-ref2", NULL);
	v = t_read(t_fe, "event-channel");
	ck_assert_ptr_nonnull(v);
	free(v);
	t_expect_node(t_fe, "multi-queue-num-queues", NULL);
	t_mockblk_stats(t_mock, &st);
	ck_assert_str_eq(st.protocol, "x86_64-abi");
	ck_assert_uint_eq(st.ring_pages, 2);
	ck_assert_uint_eq(st.connects, 1);

	q = pvio_blkfront_queue(dev, 0);
	ck_assert_ptr_nonnull(q);
	ck_assert_ptr_null(pvio_blkfront_queue(dev, 1));
	t_pattern(buf, sizeof(buf), 8192, 1);
	ck_assert_int_eq(pvio_blkfront_pwrite(q, buf, sizeof(buf), 8192),
			 4096);
	ck_assert_int_eq(pread(t_fd, back, sizeof(back), 8192), 4096);
	ck_assert(memcmp(buf, back, sizeof(buf)) == 0);
	memset(back, 0, sizeof(back));
	ck_assert_int_eq(pvio_blkfront_pread(q, back, sizeof(back), 8192),
			 4096);
	ck_assert(memcmp(buf, back, sizeof(buf)) == 0);

	/* and back to Closed, the backend following */
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
	ck_assert_int_eq(t_state(t_fe), PVIO_XB_CLOSED);
	ck_assert_int_eq(t_mockblk_wait_state(t_mock, PVIO_XB_CLOSED, 5000), 0);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.disconnects, 1);
	ck_assert_uint_eq(st.errors, 0);
}
END_TEST

START_TEST(t_single_page)
{
	struct pvio_blkfront_opts o = { .max_ring_pages = 1 };
	struct pvio_blkfront_info info;
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	char *v;

	t_mock_cfg(&c);
	c.max_ring_order = 0;	/* a backend without multi-page rings */
	t_mock_start(&c);
	o.queue_depth = 128;
	dev = t_open(&o);
	pvio_blkfront_info(dev, &info);
	ck_assert_uint_eq(info.ring_pages, 1);
	ck_assert_uint_eq(info.queue_depth, 32);	/* one page's worth */
	/* one page: ring-ref, and no ring-page-order at all */
	v = t_read(t_fe, "ring-ref");
	ck_assert_ptr_nonnull(v);
	free(v);
	t_expect_node(t_fe, "ring-page-order", NULL);
	t_expect_node(t_fe, "ring-ref0", NULL);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

/* A guest process that writes and dies without closing (a crash). */
static void t_child_writes_and_dies(void)
{
	struct pvio_blkfront *dev = NULL;
	struct pvio_platform *u;
	struct pvio_xs *x;
	char buf[65536];
	int rc;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (pvio_platform_open(&u, t_world_spec, FE_DOM, 0) ||
	    pvio_xs_open(&x, u))
		_exit(10);
	rc = pvio_blkfront_open(&dev, u, x, DEVID, NULL, NULL, 0);
	if (rc)
		_exit(11);
	t_pattern(buf, sizeof(buf), 0, 7);
	if (pvio_blkfront_pwrite(pvio_blkfront_queue(dev, 0), buf,
				 sizeof(buf), 0) != (ssize_t)sizeof(buf))
		_exit(12);
	_exit(0);	/* no close: the state stays Connected */
}

START_TEST(t_reconnect)
{
	char buf[65536], want[65536];
	struct t_mockblk_stats st;
	struct t_mockblk_cfg c;
	struct pvio_blkfront_queue *q;
	struct pvio_blkfront *dev;
	int status, i;
	pid_t pid;

	t_mock_cfg(&c);
	t_mock_start(&c);
	/* the child runs a fresh image of this program: the forked copy of
	 * a process with threads (the mock backend, libxenstore's) may
	 * inherit a lock another thread held, and hang on its first malloc
	 * (ASan's allocator: 1 run in 3 of this case under ASan) */
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setenv("T_CHILD_WRITES_AND_DIES", t_world_spec, 1);
		execl("/proc/self/exe", "test-blkfront", (char *)NULL);
		_exit(127);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "the first frontend failed: status %#x", status);
	ck_assert_int_eq(t_state(t_fe), PVIO_XB_CONNECTED);	/* stale */
	t_pattern(want, sizeof(want), 0, 7);

	/* a new frontend process: closes the stale session first */
	for (i = 0; i < 2; i++) {
		dev = t_open(NULL);
		memset(buf, 0, sizeof(buf));
		q = pvio_blkfront_queue(dev, 0);
		ck_assert_int_eq(pvio_blkfront_pread(q, buf, sizeof(buf), 0),
				 (ssize_t)sizeof(buf));
		ck_assert(memcmp(buf, want, sizeof(buf)) == 0);
		/* the second round starts from a clean Closed */
		ck_assert_int_eq(pvio_blkfront_close(dev), 0);
		ck_assert_int_eq(t_state(t_fe), PVIO_XB_CLOSED);
	}
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.connects, 3);
	ck_assert_uint_eq(st.disconnects, 3);
	ck_assert_uint_eq(st.errors, 0);
}
END_TEST

START_TEST(t_skip_initwait)
{
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	char buf[4096];

	/* Initialising -> Connected, and every state written three times
	 * (duplicate watch events) */
	t_mock_cfg(&c);
	c.skip_initwait = true;
	c.dup_events = true;
	t_mock_start(&c);
	dev = t_open(NULL);
	t_pattern(buf, sizeof(buf), 0, 3);
	ck_assert_int_eq(pvio_blkfront_pwrite(pvio_blkfront_queue(dev, 0), buf,
					      sizeof(buf), 4096), 4096);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
	/* and again, from Closed */
	dev = t_open(NULL);
	ck_assert_int_eq(pvio_blkfront_pread(pvio_blkfront_queue(dev, 0), buf,
					     sizeof(buf), 4096), 4096);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

START_TEST(t_timeout)
{
	struct pvio_blkfront_opts o = { .timeout_ms = 400 };
	char err[PVIO_BLKFRONT_ERR_MAX];
	struct pvio_blkfront *dev = NULL;
	uint64_t t0;
	int rc;

	/* no backend: its state stays Initialising */
	t_guest();
	t0 = t_now_ms();
	rc = pvio_blkfront_open(&dev, t_u, t_xu, DEVID, &o, err, sizeof(err));
	ck_assert_int_eq(rc, -ETIMEDOUT);
	ck_assert_ptr_null(dev);
	ck_assert_msg(t_now_ms() - t0 < 3000, "took %llu ms",
		      (unsigned long long)(t_now_ms() - t0));
	ck_assert_msg(strstr(err, "timed out after 400 ms") &&
			      strstr(err, "InitWait"),
		      "error: %s", err);
	ck_assert_int_eq(t_state(t_fe), PVIO_XB_INITIALISING);

	/* a vbd that does not exist */
	rc = pvio_blkfront_open(&dev, t_u, t_xu, 51728, &o, err, sizeof(err));
	ck_assert_int_eq(rc, -ENODEV);
	ck_assert_msg(strstr(err, "no vbd 51728"), "error: %s", err);
	/* bad options */
	o.max_ring_pages = 3;
	rc = pvio_blkfront_open(&dev, t_u, t_xu, DEVID, &o, err, sizeof(err));
	ck_assert_int_eq(rc, -EINVAL);
	o.max_ring_pages = 0;
	o.max_queues = 17;
	rc = pvio_blkfront_open(&dev, t_u, t_xu, DEVID, &o, NULL, 0);
	ck_assert_int_eq(rc, -EINVAL);
}
END_TEST

START_TEST(t_bad_sector_size)
{
	struct pvio_blkfront_opts o = { .timeout_ms = 3000 };
	char err[PVIO_BLKFRONT_ERR_MAX], path[PVIO_XS_PATH_MAX + 16];
	struct pvio_blkfront *dev = NULL;
	struct t_mockblk_cfg c;
	char *e;
	int rc;

	/* a hostile backend value fails the device, as xenbus_dev_fatal */
	t_mock_cfg(&c);
	c.skip_initwait = true;
	t_mock_start(&c);
	snprintf(path, sizeof(path), "%s/sector-size", t_be);
	ck_assert_int_eq(pvio_xs_write(t_x0, 0, path, "1000"), 0);
	t_guest();
	rc = pvio_blkfront_open(&dev, t_u, t_xu, DEVID, &o, err, sizeof(err));
	ck_assert_int_eq(rc, -EINVAL);
	ck_assert_msg(strstr(err, "sector-size"), "error: %s", err);
	e = t_read(t_fe, "error");
	ck_assert_ptr_nonnull(e);
	free(e);
	ck_assert_int_eq(t_state(t_fe), PVIO_XB_CLOSING);
}
END_TEST

START_TEST(t_backend_refuses)
{
	struct pvio_blkfront_opts o = { .timeout_ms = 5000 };
	char err[PVIO_BLKFRONT_ERR_MAX], path[PVIO_XS_PATH_MAX + 32];
	struct pvio_blkfront *dev = NULL;
	struct t_mockblk_cfg c;
	int rc;

	/* it says 2 ring pages but maps 1 at most: our 2-page ring makes it
	 * fail the device (xenbus_dev_fatal: error node, Closing) */
	t_mock_cfg(&c);
	c.max_ring_order = 0;
	t_mock_start(&c);
	snprintf(path, sizeof(path), "%s/max-ring-page-order", t_be);
	ck_assert_int_eq(pvio_xs_write(t_x0, 0, path, "1"), 0);
	t_guest();
	rc = pvio_blkfront_open(&dev, t_u, t_xu, DEVID, &o, err, sizeof(err));
	ck_assert_int_eq(rc, -ENODEV);
	ck_assert_ptr_null(dev);
	ck_assert_msg(strstr(err, "went Closing during the handshake") &&
			      strstr(err, "mapping rings"),
		      "error: %s", err);
	ck_assert_int_eq(t_state(t_fe), PVIO_XB_CLOSED);
}
END_TEST

/* ---- rings, queues, indirect --------------------------------------------- */

/*
 * Random writes (lengths from one sector to the largest request) into
 * regions that are never written twice at once, then everything read back
 * and compared with a shadow copy and with the backend's disk.
 */
struct t_wrap {
	struct pvio_blkfront_queue *q;
	uint8_t *shadow;
	uint64_t base;
	unsigned int region, nregions;
	uint32_t max_io;
	unsigned int todo, inflight, errors;
	uint64_t rnd;
	bool busy[64];
	struct pvio_blkfront_io ios[64];
	uint8_t *bufs;
	int free_io[64];
	unsigned int nfree;
};

static uint64_t t_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void t_wrap_issue(struct t_wrap *w);

static void t_wrap_done(struct pvio_blkfront_io *io, int res)
{
	struct t_wrap *w = io->user_data;
	unsigned int r = (unsigned int)((io->offset - w->base) / w->region);

	if (res)
		w->errors++;
	else
		memcpy(w->shadow + (io->offset - w->base), io->buf, io->len);
	w->busy[r] = false;
	w->inflight--;
	w->free_io[w->nfree++] = (int)(io - w->ios);
	t_wrap_issue(w);	/* prep from the callback, submit later */
}

static void t_wrap_issue(struct t_wrap *w)
{
	while (w->todo && w->nfree && pvio_blkfront_queue_space(w->q)) {
		struct pvio_blkfront_io *io;
		unsigned int r, tries;
		uint32_t len, off;

		r = (unsigned int)(t_rand(&w->rnd) % w->nregions);
		for (tries = 0; w->busy[r] && tries < w->nregions; tries++)
			r = (r + 1) % w->nregions;
		if (w->busy[r])
			return;
		len = (uint32_t)(t_rand(&w->rnd) % (w->max_io / 512) + 1) * 512;
		if (len > w->region)
			len = w->region;
		off = (uint32_t)(t_rand(&w->rnd) %
				 ((w->region - len) / 512 + 1)) * 512;
		io = &w->ios[w->free_io[--w->nfree]];
		memset(io, 0, sizeof(*io));
		io->op = PVIO_BLKFRONT_OP_WRITE;
		io->offset = w->base + (uint64_t)r * w->region + off;
		io->len = len;
		io->buf = w->bufs + (size_t)r * w->region;
		t_pattern(io->buf, len, io->offset, (unsigned int)w->todo);
		io->done = t_wrap_done;
		io->user_data = w;
		ck_assert_int_eq(pvio_blkfront_prep(w->q, io), 0);
		w->busy[r] = true;
		w->inflight++;
		w->todo--;
	}
}

/* @granted: the I/O buffers come from pvio_blkfront_buf_alloc() (the
 * data goes in place), else from malloc (copied through the pool). */
static void t_wrap_run_buf(struct pvio_blkfront *dev, unsigned int qi,
			   uint64_t base, unsigned int nreq, uint64_t seed,
			   uint32_t region, unsigned int nregions,
			   bool granted)
{
	struct pvio_blkfront_info info;
	struct t_wrap *w = calloc(1, sizeof(*w));
	uint8_t *back;
	unsigned int i;
	size_t span;

	ck_assert_ptr_nonnull(w);
	pvio_blkfront_info(dev, &info);
	w->q = pvio_blkfront_queue(dev, qi);
	ck_assert_uint_le(nregions, 64);
	w->region = region;
	w->nregions = nregions;
	span = (size_t)w->region * w->nregions;
	if (granted)
		ck_assert_int_eq(pvio_blkfront_buf_alloc(w->q, span,
							 (void **)&w->bufs), 0);
	else
		w->bufs = malloc(span);
	ck_assert_ptr_nonnull(w->bufs);
	w->base = base;
	w->max_io = info.max_io;
	w->todo = nreq;
	w->rnd = seed;
	w->shadow = malloc(span);
	back = malloc(span);
	ck_assert(w->shadow && back);
	for (i = 0; i < 64; i++)
		w->free_io[i] = (int)i;
	w->nfree = 64;
	memset(w->shadow, 0, span);
	/* start from zeroes */
	ck_assert_int_eq(pvio_blkfront_pwrite(w->q, w->shadow, span, base),
			 (ssize_t)span);
	t_wrap_issue(w);
	pvio_blkfront_submit(w->q);
	while (w->inflight) {
		int n = pvio_blkfront_wait(w->q, 1, 10000);

		ck_assert_msg(n > 0, "wait: %d", n);
		pvio_blkfront_submit(w->q);	/* the callbacks' preps */
	}
	ck_assert_uint_eq(w->errors, 0);
	ck_assert_int_eq(pvio_blkfront_pread(w->q, back, span, base),
			 (ssize_t)span);
	ck_assert_msg(memcmp(back, w->shadow, span) == 0,
		      "queue %u: read back differs", qi);
	ck_assert_int_eq(pread(t_fd, back, span, (off_t)base), (ssize_t)span);
	ck_assert_msg(memcmp(back, w->shadow, span) == 0,
		      "queue %u: the backend's disk differs", qi);
	free(back);
	if (granted)
		ck_assert_int_eq(pvio_blkfront_buf_free(w->q, w->bufs), 0);
	else
		free(w->bufs);
	free(w->shadow);
	free(w);
}

static void t_wrap_run(struct pvio_blkfront *dev, unsigned int qi,
		       uint64_t base, unsigned int nreq, uint64_t seed,
		       uint32_t region, unsigned int nregions)
{
	t_wrap_run_buf(dev, qi, base, nreq, seed, region, nregions, false);
}

START_TEST(t_wraparound)
{
	struct pvio_blkfront_opts o = { .max_ring_pages = 1 };
	struct pvio_blkfront_queue_stats qs;
	struct t_mockblk_stats st;
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;

	t_mock_cfg(&c);
	t_mock_start(&c);
	dev = t_open(&o);	/* 32 slots */
	t_wrap_run(dev, 0, 0, 3000, 0x1234567, 1 << 16, 32);
	pvio_blkfront_queue_stats(pvio_blkfront_queue(dev, 0), &qs);
	ck_assert_uint_ge(qs.requests, 3000);
	ck_assert_uint_eq(qs.requests, qs.completions);
	/* batching: fewer publications than requests */
	ck_assert_uint_lt(qs.batches, qs.requests);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.errors, 0);
	/* every request used the pool granted at connect: 32 slots of 11
	 * pages, whatever the number of requests */
	ck_assert_uint_le(st.distinct_grefs, 32 * 11);
	ck_assert_uint_ge(st.distinct_grefs, 11);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

START_TEST(t_multipage)
{
	struct pvio_blkfront_opts o = { .queue_depth = 256,
					.max_ring_pages = 8 };
	struct pvio_blkfront_info info;
	struct t_mockblk_stats st;
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	char key[16];
	int i;

	t_mock_cfg(&c);
	c.max_ring_order = 3;
	t_mock_start(&c);
	dev = t_open(&o);
	pvio_blkfront_info(dev, &info);
	ck_assert_uint_eq(info.ring_pages, 8);
	ck_assert_uint_eq(info.queue_depth, 256);
	t_expect_node(t_fe, "ring-page-order", "3");
	for (i = 0; i < 8; i++) {
		char *v;

		snprintf(key, sizeof(key), "ring-ref%d", i);
		v = t_read(t_fe, key);
		ck_assert_msg(v != NULL, "%s missing", key);
		free(v);
	}
	t_expect_node(t_fe, "ring-ref8", NULL);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.ring_pages, 8);
	t_wrap_run(dev, 0, 0, 2000, 99, 1 << 15, 64);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);

	/* a backend offering less than asked: order 1 */
	t_mockblk_stop(t_mock);
	t_mock = NULL;
	/* the backend restarts and is Closed: reset its state first */
	{
		char path[PVIO_XS_PATH_MAX + 16];

		snprintf(path, sizeof(path), "%s/state", t_be);
		ck_assert_int_eq(pvio_xs_write(t_x0, 0, path, "1"), 0);
	}
	c.max_ring_order = 1;
	t_mock_start(&c);
	dev = t_open(&o);
	pvio_blkfront_info(dev, &info);
	ck_assert_uint_eq(info.ring_pages, 2);
	ck_assert_uint_eq(info.queue_depth, 64);
	t_expect_node(t_fe, "ring-page-order", "1");
	t_expect_node(t_fe, "ring-ref2", NULL);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

struct t_qthread {
	struct pvio_blkfront *dev;
	unsigned int qi;
};

static void *t_queue_worker(void *arg)
{
	struct t_qthread *t = arg;

	t_wrap_run(t->dev, t->qi, (uint64_t)t->qi << 21, 1000, 7 + t->qi,
		   1 << 16, 32);
	return NULL;
}

START_TEST(t_multiqueue)
{
	struct pvio_blkfront_opts o = { .max_queues = 3, .queue_depth = 32 };
	struct pvio_blkfront_info info;
	struct t_qthread t[3];
	pthread_t th[3];
	struct t_mockblk_stats st;
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	char dir[PVIO_XS_PATH_MAX + 16];
	unsigned int i;
	int fds[3];

	t_mock_cfg(&c);
	c.max_queues = 4;
	t_mock_start(&c);
	dev = t_open(&o);
	pvio_blkfront_info(dev, &info);
	ck_assert_uint_eq(info.nr_queues, 3);
	t_expect_node(t_fe, "multi-queue-num-queues", "3");
	t_expect_node(t_fe, "ring-ref", NULL);
	t_expect_node(t_fe, "event-channel", NULL);
	for (i = 0; i < 3; i++) {
		char *v;

		snprintf(dir, sizeof(dir), "%s/queue-%u", t_fe, i);
		v = t_read(dir, "ring-ref");
		ck_assert_msg(v != NULL, "%s/ring-ref missing", dir);
		free(v);
		v = t_read(dir, "event-channel");
		ck_assert_msg(v != NULL, "%s/event-channel missing", dir);
		free(v);
		/* one fd per queue */
		fds[i] = pvio_blkfront_queue_fd(pvio_blkfront_queue(dev, i));
		ck_assert_int_ge(fds[i], 0);
	}
	ck_assert(fds[0] != fds[1] && fds[1] != fds[2]);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.nr_queues, 3);
	/* one thread per queue, no lock between them */
	for (i = 0; i < 3; i++) {
		t[i].dev = dev;
		t[i].qi = i;
		ck_assert_int_eq(pthread_create(&th[i], NULL, t_queue_worker,
						&t[i]), 0);
	}
	for (i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.errors, 0);
}
END_TEST

START_TEST(t_indirect)
{
	struct pvio_blkfront_opts o = { .max_indirect_segments = 64 };
	struct pvio_blkfront_queue_stats qs;
	struct pvio_blkfront_info info;
	struct t_mockblk_stats st;
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	struct pvio_blkfront_queue *q;
	size_t len = 1 << 20;
	char *buf = malloc(len), *back = malloc(len);

	ck_assert(buf && back);
	t_mock_cfg(&c);
	c.max_indirect = 256;	/* more than asked: we take 64 */
	t_mock_start(&c);
	dev = t_open(&o);
	q = pvio_blkfront_queue(dev, 0);
	pvio_blkfront_info(dev, &info);
	ck_assert(info.features & PVIO_BLKFRONT_FEAT_INDIRECT);
	ck_assert_uint_eq(info.max_segments, 64);
	ck_assert_uint_eq(info.max_io, 64 * 4096);
	t_pattern(buf, len, 4096, 5);
	ck_assert_int_eq(pvio_blkfront_pwrite(q, buf, len, 4096), (ssize_t)len);
	ck_assert_int_eq(pvio_blkfront_pread(q, back, len, 4096), (ssize_t)len);
	ck_assert(memcmp(buf, back, len) == 0);
	/* a request that ends inside a page: last_sect < 7 */
	ck_assert_int_eq(pvio_blkfront_pwrite(q, buf, 100 * 1024 + 512,
					      6 << 20), 100 * 1024 + 512);
	ck_assert_int_eq(pread(t_fd, back, 100 * 1024 + 512, 6 << 20),
			 100 * 1024 + 512);
	ck_assert(memcmp(buf, back, 100 * 1024 + 512) == 0);
	pvio_blkfront_queue_stats(q, &qs);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.max_segs, 64);
	ck_assert_uint_ge(st.indirect, 8);
	/* 64 slots of 64 data pages and one indirect page, at most */
	ck_assert_uint_le(st.distinct_grefs, 64 * 65);
	ck_assert_uint_eq(st.indirect, qs.indirect);
	ck_assert_uint_eq(st.errors, 0);
	t_wrap_run(dev, 0, 1 << 21, 300, 3, 1 << 18, 8);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);

	/* direct only when asked */
	o.max_indirect_segments = PVIO_BLKFRONT_NO_INDIRECT;
	dev = t_open(&o);
	pvio_blkfront_info(dev, &info);
	ck_assert(!(info.features & PVIO_BLKFRONT_FEAT_INDIRECT));
	ck_assert_uint_eq(info.max_segments, 11);
	ck_assert_int_eq(pvio_blkfront_pread(pvio_blkfront_queue(dev, 0), back,
					     len, 4096), (ssize_t)len);
	ck_assert(memcmp(buf, back, len) == 0);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
	free(buf);
	free(back);
}
END_TEST

/*
 * Granted buffers: reads and writes that name the buffer's own pages
 * (sector-aligned anywhere in a page, across pages, direct and indirect)
 * move the data with no copy on our side; the rest falls back to the pool.
 */
START_TEST(t_granted_bufs)
{
	struct pvio_blkfront_opts o = { .max_indirect_segments = 64 };
	struct pvio_blkfront_queue_stats q0, q1;
	struct pvio_blkfront_info info;
	struct t_mockblk_stats st;
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	struct pvio_blkfront_queue *q;
	static const struct {
		uint32_t at, len;
		bool in_place;
	} cases[] = {
		{ 0, 65536, true },		/* whole pages, direct */
		{ 512, 8192 + 1024, true },	/* starts and ends mid-page */
		{ 3 * 4096 + 3584, 512, true },	/* a page's last sector */
		{ 4096 + 512, 200 * 1024, true },	/* indirect, 51 pages */
		{ 512, 64 * 4096, false },	/* would need 65 segments */
		{ 256, 4096, false },		/* not sector-aligned */
	};
	char *buf, *back = malloc(1 << 20), *bufs[PVIO_BLKFRONT_MAX_BUFS];
	unsigned int i, k;
	uint64_t copied;

	ck_assert_ptr_nonnull(back);
	t_mock_cfg(&c);
	c.max_indirect = 64;
	t_mock_start(&c);
	dev = t_open(&o);
	q = pvio_blkfront_queue(dev, 0);
	pvio_blkfront_info(dev, &info);
	ck_assert_uint_eq(info.max_io, 64 * 4096);
	ck_assert_int_eq(pvio_blkfront_buf_alloc(q, 1 << 20, (void **)&buf), 0);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq((uintptr_t)buf % 4096, 0);
	for (i = 0; i < 1 << 20; i++)
		ck_assert_msg(buf[i] == 0, "not zeroed at %u", i);
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t off = (uint64_t)(i + 1) << 20;
		char *p = buf + cases[i].at;

		pvio_blkfront_queue_stats(q, &q0);
		t_pattern(p, cases[i].len, off, i + 11);
		ck_assert_int_eq(pvio_blkfront_pwrite(q, p, cases[i].len, off),
				 (ssize_t)cases[i].len);
		ck_assert_int_eq(pread(t_fd, back, cases[i].len, (off_t)off),
				 (ssize_t)cases[i].len);
		ck_assert_msg(memcmp(back, p, cases[i].len) == 0,
			      "case %u: the disk differs", i);
		memset(p, 0, cases[i].len);
		ck_assert_int_eq(pvio_blkfront_pread(q, p, cases[i].len, off),
				 (ssize_t)cases[i].len);
		ck_assert_msg(memcmp(back, p, cases[i].len) == 0,
			      "case %u: read back differs", i);
		pvio_blkfront_queue_stats(q, &q1);
		copied = q1.bytes_copied - q0.bytes_copied;
		if (cases[i].in_place) {
			ck_assert_msg(copied == 0 && q1.in_place - q0.in_place == 2,
				      "case %u: copied %llu, in place %llu", i,
				      (unsigned long long)copied,
				      (unsigned long long)(q1.in_place - q0.in_place));
		} else {
			ck_assert_uint_eq(copied, 2 * cases[i].len);
			ck_assert_uint_eq(q1.in_place, q0.in_place);
		}
	}
	/* heavy random traffic straight from granted memory */
	t_wrap_run_buf(dev, 0, 0, 500, 77, 1 << 16, 32, true);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.errors, 0);

	/* the API's edges */
	ck_assert_int_eq(pvio_blkfront_buf_alloc(q, 0, (void **)&bufs[0]), -EINVAL);
	ck_assert_int_eq(pvio_blkfront_buf_alloc(q, 4097, (void **)&bufs[0]), -EINVAL);
	ck_assert_int_eq(pvio_blkfront_buf_alloc(q, PVIO_BLKFRONT_BUF_MAX + 4096,
						 (void **)&bufs[0]), -EINVAL);
	for (k = 0; k < PVIO_BLKFRONT_MAX_BUFS - 1; k++)
		ck_assert_int_eq(pvio_blkfront_buf_alloc(q, 4096, (void **)&bufs[k]), 0);
	ck_assert_int_eq(pvio_blkfront_buf_alloc(q, 4096, (void **)&bufs[k]), -ENOSPC);
	for (k = 0; k < PVIO_BLKFRONT_MAX_BUFS - 1; k++)
		ck_assert_int_eq(pvio_blkfront_buf_free(q, bufs[k]), 0);
	ck_assert_int_eq(pvio_blkfront_buf_free(q, buf), 0);
	ck_assert_int_eq(pvio_blkfront_buf_free(q, buf), -EINVAL);
	ck_assert_int_eq(pvio_blkfront_buf_free(q, back), -EINVAL);
	/* a freed buffer is plain memory to us now: copied */
	pvio_blkfront_queue_stats(q, &q0);
	ck_assert_int_eq(pvio_blkfront_pread(q, back, 4096, 1 << 20), 4096);
	pvio_blkfront_queue_stats(q, &q1);
	ck_assert_uint_eq(q1.in_place, q0.in_place);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
	free(back);
}
END_TEST

START_TEST(t_sector_4k)
{
	struct pvio_blkfront_info info;
	struct t_mockblk_stats st;
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	struct pvio_blkfront_queue *q;
	char buf[8192], back[8192];

	t_mock_cfg(&c);
	c.sector_size = 4096;
	t_mock_start(&c);
	dev = t_open(NULL);
	q = pvio_blkfront_queue(dev, 0);
	pvio_blkfront_info(dev, &info);
	ck_assert_uint_eq(info.sector_size, 4096);
	/* sectors stay in 512-byte units */
	ck_assert_uint_eq(info.sectors, DISK_SIZE / 512);
	ck_assert_int_eq(pvio_blkfront_pwrite(q, buf, 4096, 512), -EINVAL);
	ck_assert_int_eq(pvio_blkfront_pwrite(q, buf, 512, 4096), -EINVAL);
	t_pattern(buf, sizeof(buf), 0, 9);
	ck_assert_int_eq(pvio_blkfront_pwrite(q, buf, 8192, 3 * 4096), 8192);
	ck_assert_int_eq(pread(t_fd, back, 8192, 3 * 4096), 8192);
	ck_assert(memcmp(buf, back, 8192) == 0);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.errors, 0);	/* sector_number * 512 */
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

/* ---- flush, discard, read-only ------------------------------------------- */

START_TEST(t_flush)
{
	struct pvio_blkfront_info info;
	struct t_mockblk_stats st;
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	char path[PVIO_XS_PATH_MAX + 32];

	t_mock_cfg(&c);
	t_mock_start(&c);
	dev = t_open(NULL);
	ck_assert_int_eq(pvio_blkfront_flush(pvio_blkfront_queue(dev, 0)), 0);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.flushes, 1);
	ck_assert_uint_eq(st.barriers, 0);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
	t_mockblk_stop(t_mock);
	t_mock = NULL;

	/* only WRITE_BARRIER on offer: flush with an empty barrier */
	snprintf(path, sizeof(path), "%s/state", t_be);
	pvio_xs_write(t_x0, 0, path, "1");
	snprintf(path, sizeof(path), "%s/feature-flush-cache", t_be);
	pvio_xs_rm(t_x0, 0, path);
	c.flush = false;
	c.barrier = true;
	t_mock_start(&c);
	dev = t_open(NULL);
	pvio_blkfront_info(dev, &info);
	ck_assert_uint_eq(info.features & (PVIO_BLKFRONT_FEAT_FLUSH |
					   PVIO_BLKFRONT_FEAT_BARRIER),
			  PVIO_BLKFRONT_FEAT_BARRIER);
	ck_assert_int_eq(pvio_blkfront_flush(pvio_blkfront_queue(dev, 0)), 0);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.barriers, 1);
	ck_assert_uint_eq(st.flushes, 0);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
	t_mockblk_stop(t_mock);
	t_mock = NULL;

	/* offered but answered EOPNOTSUPP: withdrawn, as Linux */
	snprintf(path, sizeof(path), "%s/state", t_be);
	pvio_xs_write(t_x0, 0, path, "1");
	snprintf(path, sizeof(path), "%s/feature-barrier", t_be);
	pvio_xs_rm(t_x0, 0, path);
	c.barrier = false;
	t_mock_start(&c);
	snprintf(path, sizeof(path), "%s/feature-flush-cache", t_be);
	ck_assert_int_eq(pvio_xs_write(t_x0, 0, path, "1"), 0);
	dev = t_open(NULL);
	pvio_blkfront_info(dev, &info);
	ck_assert(info.features & PVIO_BLKFRONT_FEAT_FLUSH);
	ck_assert_int_eq(pvio_blkfront_flush(pvio_blkfront_queue(dev, 0)),
			 -EOPNOTSUPP);
	pvio_blkfront_info(dev, &info);
	ck_assert(!(info.features & PVIO_BLKFRONT_FEAT_FLUSH));
	ck_assert_int_eq(pvio_blkfront_flush(pvio_blkfront_queue(dev, 0)),
			 -EOPNOTSUPP);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.eopnotsupp, 1);	/* the 2nd stayed here */
	ck_assert_int_eq(pvio_blkfront_dead(dev), 0);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

START_TEST(t_discard)
{
	struct pvio_blkfront_info info;
	struct t_mockblk_stats st;
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	struct pvio_blkfront_queue *q;
	static char buf[65536], back[65536], zero[65536];

	t_mock_cfg(&c);
	c.discard = true;
	c.discard_gran = 4096;
	t_mock_start(&c);
	dev = t_open(NULL);
	q = pvio_blkfront_queue(dev, 0);
	pvio_blkfront_info(dev, &info);
	ck_assert(info.features & PVIO_BLKFRONT_FEAT_DISCARD);
	ck_assert(!(info.features & PVIO_BLKFRONT_FEAT_SECURE_DISCARD));
	ck_assert_uint_eq(info.discard_granularity, 4096);
	ck_assert_uint_eq(info.discard_alignment, 0);
	t_pattern(buf, sizeof(buf), 0, 11);
	ck_assert_int_eq(pvio_blkfront_pwrite(q, buf, sizeof(buf), 0),
			 (ssize_t)sizeof(buf));
	/* [1536, 42496) trimmed to whole 4 KiB extents: [4096, 40960) */
	ck_assert_int_eq(pvio_blkfront_discard(q, 1536, 40960, 0), 0);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.discards, 1);
	ck_assert_uint_eq(st.last_discard_sector, 8);
	ck_assert_uint_eq(st.last_discard_nr, (40960 - 4096) / 512);
	ck_assert_uint_eq(st.last_discard_flag, 0);
	ck_assert_int_eq(pread(t_fd, back, sizeof(back), 0),
			 (ssize_t)sizeof(back));
	ck_assert(memcmp(back, buf, 4096) == 0);
	ck_assert(memcmp(back + 4096, zero, 40960 - 4096) == 0);
	ck_assert(memcmp(back + 40960, buf + 40960, 65536 - 40960) == 0);
	/* inside one extent: nothing to send, success */
	ck_assert_int_eq(pvio_blkfront_discard(q, 49152 + 512, 1024, 0), 0);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.discards, 1);
	/* not offered */
	ck_assert_int_eq(pvio_blkfront_discard(q, 0, 4096,
					       PVIO_BLKFRONT_IO_SECURE),
			 -EOPNOTSUPP);
	ck_assert_int_eq(pvio_blkfront_discard(q, 0, 1000, 0), -EINVAL);
	ck_assert_int_eq(pvio_blkfront_discard(q, DISK_SIZE - 4096, 8192, 0),
			 -EINVAL);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
	t_mockblk_stop(t_mock);
	t_mock = NULL;

	/* extents at 1024 + k * 4096, and secure discard */
	{
		char path[PVIO_XS_PATH_MAX + 16];

		snprintf(path, sizeof(path), "%s/state", t_be);
		pvio_xs_write(t_x0, 0, path, "1");
	}
	c.discard_align = 1024;
	c.discard_secure = true;
	t_mock_start(&c);
	dev = t_open(NULL);
	q = pvio_blkfront_queue(dev, 0);
	pvio_blkfront_info(dev, &info);
	ck_assert(info.features & PVIO_BLKFRONT_FEAT_SECURE_DISCARD);
	ck_assert_uint_eq(info.discard_alignment, 1024);
	ck_assert_int_eq(pvio_blkfront_discard(q, 0, 16384,
					       PVIO_BLKFRONT_IO_SECURE), 0);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.last_discard_sector, 2);
	ck_assert_uint_eq(st.last_discard_nr, 12288 / 512);
	ck_assert_uint_eq(st.last_discard_flag, BLKIF_DISCARD_SECURE);
	ck_assert_uint_eq(st.errors, 0);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

START_TEST(t_no_discard)
{
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;

	t_mock_cfg(&c);
	t_mock_start(&c);
	dev = t_open(NULL);
	ck_assert_int_eq(pvio_blkfront_discard(pvio_blkfront_queue(dev, 0), 0,
					       4096, 0), -EOPNOTSUPP);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

START_TEST(t_readonly)
{
	struct pvio_blkfront_info info;
	struct t_mockblk_stats st;
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	struct pvio_blkfront_queue *q;
	char buf[4096], back[4096], path[PVIO_XS_PATH_MAX + 16];

	t_pattern(buf, sizeof(buf), 0, 1);
	ck_assert_int_eq(pwrite(t_fd, buf, sizeof(buf), 0), 4096);
	t_mock_cfg(&c);
	c.readonly = true;
	c.discard = true;
	t_mock_start(&c);
	dev = t_open(NULL);
	q = pvio_blkfront_queue(dev, 0);
	pvio_blkfront_info(dev, &info);
	ck_assert(info.readonly);
	ck_assert(info.vdisk_info & VDISK_READONLY);
	ck_assert_int_eq(pvio_blkfront_pread(q, back, 4096, 0), 4096);
	ck_assert(memcmp(buf, back, 4096) == 0);
	/* refused here, as set_disk_ro() does in Linux */
	ck_assert_int_eq(pvio_blkfront_pwrite(q, back, 4096, 0), -EROFS);
	ck_assert_int_eq(pvio_blkfront_discard(q, 0, 4096, 0), -EROFS);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
	t_mockblk_stop(t_mock);
	t_mock = NULL;

	/* a backend that refuses writes without saying so: BLKIF_RSP_ERROR
	 * -> -EIO, the data unchanged, the device alive */
	snprintf(path, sizeof(path), "%s/state", t_be);
	pvio_xs_write(t_x0, 0, path, "1");
	c.readonly = false;
	c.refuse_writes = true;
	t_mock_start(&c);
	dev = t_open(NULL);
	q = pvio_blkfront_queue(dev, 0);
	memset(back, 0x5a, sizeof(back));
	ck_assert_int_eq(pvio_blkfront_pwrite(q, back, 4096, 0), -EIO);
	ck_assert_int_eq(pread(t_fd, back, 4096, 0), 4096);
	ck_assert(memcmp(buf, back, 4096) == 0);
	ck_assert_int_eq(pvio_blkfront_dead(dev), 0);
	ck_assert_int_eq(pvio_blkfront_pread(q, back, 4096, 0), 4096);
	t_mockblk_stats(t_mock, &st);
	ck_assert_uint_eq(st.writes, 1);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

/* ---- a hostile backend --------------------------------------------------- */

static const enum t_evil t_evils[] = {
	T_EVIL_BOGUS_ID, T_EVIL_DUP_ID, T_EVIL_BAD_OP, T_EVIL_RSP_OVERFLOW,
};

START_TEST(t_hostile)
{
	struct pvio_blkfront_opts o = { .flags = PVIO_BLKFRONT_F_THREAD,
					.event = t_event };
	struct pvio_blkfront_io ios[8], extra;
	static char bufs[8][4096];
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	struct pvio_blkfront_queue *q;
	struct t_done d = { 0 };
	unsigned int i;
	char *e;
	int n;

	t_mock_cfg(&c);
	c.evil = t_evils[_i];
	c.evil_after = 5;
	t_mock_start(&c);
	dev = t_open(&o);
	q = pvio_blkfront_queue(dev, 0);
	for (i = 0; i < 5; i++)	/* served well */
		ck_assert_int_eq(pvio_blkfront_pwrite(q, bufs[0], 4096,
						      4096 * i), 4096);
	for (i = 0; i < 8; i++) {
		memset(&ios[i], 0, sizeof(ios[i]));
		ios[i].op = PVIO_BLKFRONT_OP_READ;
		ios[i].len = 4096;
		ios[i].offset = 4096 * i;
		ios[i].buf = bufs[i];
		ios[i].done = t_count;
		ios[i].user_data = &d;
		ck_assert_int_eq(pvio_blkfront_prep(q, &ios[i]), 0);
	}
	ck_assert_int_eq(pvio_blkfront_submit(q), 8);
	while (d.n < 8) {
		n = pvio_blkfront_wait(q, 8, 5000);
		ck_assert_msg(n > 0, "wait: %d after %u completions", n, d.n);
	}
	/* each I/O completed once, all failed */
	ck_assert_uint_eq(d.n, 8);
	for (i = 0; i < 8; i++)
		ck_assert_int_eq(d.res[i], -EIO);
	ck_assert_uint_eq(pvio_blkfront_queue_inflight(q), 0);
	ck_assert_int_eq(pvio_blkfront_dead(dev), -EPROTO);
	ck_assert_msg(strstr(pvio_blkfront_error(dev), "broke the protocol"),
		      "error: %s", pvio_blkfront_error(dev));
	ck_assert_uint_eq(__atomic_load_n(&t_events[PVIO_BLKFRONT_EV_DEAD],
					  __ATOMIC_SEQ_CST), 1);
	/* nothing more goes in */
	memset(&extra, 0, sizeof(extra));
	extra.op = PVIO_BLKFRONT_OP_READ;
	extra.len = 512;
	extra.buf = bufs[0];
	ck_assert_int_eq(pvio_blkfront_prep(q, &extra), -EPROTO);
	ck_assert_int_eq(pvio_blkfront_reap(q, 0), -EPROTO);
	ck_assert_int_eq(pvio_blkfront_pread(q, bufs[0], 512, 0), -EPROTO);
	/* said so in xenstore, and the backend let go */
	e = t_read(t_fe, "error");
	ck_assert_ptr_nonnull(e);
	free(e);
	ck_assert(t_wait_state(t_fe, PVIO_XB_CLOSED, 5000));
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

START_TEST(t_backend_closes)
{
	struct pvio_blkfront_opts o = { .flags = PVIO_BLKFRONT_F_THREAD,
					.event = t_event };
	struct pvio_blkfront_io ios[10];
	static char bufs[10][4096];
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	struct pvio_blkfront_queue *q;
	struct t_done d = { 0 };
	struct pollfd pfd;
	uint64_t end;
	unsigned int i;

	t_mock_cfg(&c);
	c.evil = T_EVIL_HOLD;
	c.evil_after = 2;
	t_mock_start(&c);
	dev = t_open(&o);
	q = pvio_blkfront_queue(dev, 0);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(pvio_blkfront_pread(q, bufs[0], 4096, 0),
				 4096);
	for (i = 0; i < 10; i++) {
		memset(&ios[i], 0, sizeof(ios[i]));
		ios[i].op = i & 1 ? PVIO_BLKFRONT_OP_WRITE
				  : PVIO_BLKFRONT_OP_READ;
		ios[i].len = 4096;
		ios[i].offset = 4096 * i;
		ios[i].buf = bufs[i];
		ios[i].done = t_count;
		ios[i].user_data = &d;
	}
	{
		struct pvio_blkfront_io *p[10];

		for (i = 0; i < 10; i++)
			p[i] = &ios[i];
		ck_assert_int_eq(pvio_blkfront_submit_ios(q, p, 10), 10);
	}
	t_wait_held(10);
	/* nothing comes back: the fd stays quiet */
	ck_assert_int_eq(pvio_blkfront_reap(q, 0), 0);
	ck_assert_int_eq(pvio_blkfront_arm(q), 0);
	pfd.fd = pvio_blkfront_queue_fd(q);
	pfd.events = POLLIN;
	ck_assert_int_eq(poll(&pfd, 1, 50), 0);

	/* the toolstack detaches: the backend goes Closing under I/O */
	t_mockblk_close(t_mock);
	ck_assert_int_eq(poll(&pfd, 1, 5000), 1);	/* the death wakes */
	ck_assert_int_eq(pvio_blkfront_reap(q, 0), 10);
	ck_assert_uint_eq(d.n, 10);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(d.res[i], -EIO);
	ck_assert_int_eq(pvio_blkfront_dead(dev), -EIO);
	ck_assert_msg(strstr(pvio_blkfront_error(dev), "went Closing"),
		      "error: %s", pvio_blkfront_error(dev));
	/* told from the control thread, just after the kick */
	end = t_now_ms() + 5000;
	while (!__atomic_load_n(&t_events[PVIO_BLKFRONT_EV_DEAD],
				__ATOMIC_SEQ_CST) && t_now_ms() < end)
		usleep(1000);
	ck_assert_uint_eq(__atomic_load_n(&t_events[PVIO_BLKFRONT_EV_DEAD],
					  __ATOMIC_SEQ_CST), 1);
	ck_assert(t_wait_state(t_fe, PVIO_XB_CLOSED, 5000));
	ck_assert_int_eq(t_mockblk_wait_state(t_mock, PVIO_XB_CLOSED, 5000), 0);
	ck_assert_int_eq(pvio_blkfront_pwrite(q, bufs[0], 512, 0), -EIO);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

/*
 * A wait's timeout bounds its spin too: a queue that polls (here for 2 s,
 * far longer than adaptive polling's 1 ms) must not overstay a 20 ms
 * timeout while the backend holds the request.
 */
START_TEST(t_wait_timeout_bounds_spin)
{
	/* the control thread notices the backend's death */
	struct pvio_blkfront_opts o = { .flags = PVIO_BLKFRONT_F_THREAD };
	struct pvio_blkfront_io io;
	static char buf[4096];
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	struct pvio_blkfront_queue *q;
	struct t_done d = { 0 };
	struct pollfd pfd;
	uint64_t t0;

	t_mock_cfg(&c);
	c.evil = T_EVIL_HOLD;	/* from the first request on */
	t_mock_start(&c);
	dev = t_open(&o);
	q = pvio_blkfront_queue(dev, 0);
	pvio_blkfront_queue_set_spin(q, 2000000000ull);
	memset(&io, 0, sizeof(io));
	io.op = PVIO_BLKFRONT_OP_READ;
	io.len = 4096;
	io.buf = buf;
	io.done = t_count;
	io.user_data = &d;
	ck_assert_int_eq(pvio_blkfront_prep(q, &io), 0);
	ck_assert_int_eq(pvio_blkfront_submit(q), 1);
	t_wait_held(1);
	t0 = t_now_ms();
	ck_assert_int_eq(pvio_blkfront_wait(q, 1, 20), 0);
	ck_assert_msg(t_now_ms() - t0 < 1000, "a 20 ms wait took %llu ms",
		      (unsigned long long)(t_now_ms() - t0));
	ck_assert_int_eq(pvio_blkfront_wait(q, 1, 0), 0);
	ck_assert_msg(t_now_ms() - t0 < 1000, "a 0 ms wait took %llu ms",
		      (unsigned long long)(t_now_ms() - t0));
	/* the toolstack detaches: the held request fails, the close ends */
	t_mockblk_close(t_mock);
	pfd.fd = pvio_blkfront_queue_fd(q);
	pfd.events = POLLIN;
	if (!pvio_blkfront_arm(q))
		ck_assert_int_eq(poll(&pfd, 1, 5000), 1);	/* the death */
	ck_assert_int_eq(pvio_blkfront_reap(q, 0), 1);
	ck_assert_uint_eq(d.n, 1);
	ck_assert_int_eq(d.res[0], -EIO);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

START_TEST(t_resize)
{
	struct pvio_blkfront_opts o = { .flags = PVIO_BLKFRONT_F_THREAD,
					.event = t_event };
	struct pvio_blkfront_info info;
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	struct pvio_blkfront_queue *q;
	char buf[4096];
	uint64_t end;

	t_mock_cfg(&c);
	t_mock_start(&c);
	dev = t_open(&o);
	q = pvio_blkfront_queue(dev, 0);
	ck_assert_int_eq(pvio_blkfront_pread(q, buf, 4096, DISK_SIZE), -EINVAL);
	ck_assert_int_eq(ftruncate(t_fd, 2 * DISK_SIZE), 0);
	t_mockblk_resize(t_mock, 2 * DISK_SIZE / 512);
	end = t_now_ms() + 5000;
	while (!__atomic_load_n(&t_events[PVIO_BLKFRONT_EV_RESIZE],
				__ATOMIC_SEQ_CST) && t_now_ms() < end)
		usleep(2000);
	ck_assert_uint_ge(t_events[PVIO_BLKFRONT_EV_RESIZE], 1);
	pvio_blkfront_info(dev, &info);
	ck_assert_uint_eq(info.sectors, 2 * DISK_SIZE / 512);
	ck_assert_int_eq(pvio_blkfront_pread(q, buf, 4096, DISK_SIZE), 4096);
	ck_assert_int_eq(pvio_blkfront_dead(dev), 0);
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

/* ---- the async API ------------------------------------------------------- */

START_TEST(t_async_api)
{
	struct pvio_blkfront_opts o = { .max_ring_pages = 1 };
	struct pvio_blkfront_queue_stats qs;
	struct pvio_blkfront_io ios[33], bad;
	static char bufs[33][4096];
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	struct pvio_blkfront_queue *q;
	struct t_done d = { 0 };
	struct pollfd pfd;
	unsigned int i;
	int n;

	t_mock_cfg(&c);
	t_mock_start(&c);
	dev = t_open(&o);
	q = pvio_blkfront_queue(dev, 0);
	ck_assert_uint_eq(pvio_blkfront_queue_space(q), 32);

	/* bad descriptors: refused at prep, no callback */
	memset(&bad, 0, sizeof(bad));
	bad.buf = bufs[0];
	bad.done = t_count;
	bad.user_data = &d;
	bad.op = PVIO_BLKFRONT_OP_READ;
	/* len 0 */
	ck_assert_int_eq(pvio_blkfront_prep(q, &bad), -EINVAL);
	bad.len = 100;
	ck_assert_int_eq(pvio_blkfront_prep(q, &bad), -EINVAL);
	bad.len = 512;
	bad.offset = 100;
	ck_assert_int_eq(pvio_blkfront_prep(q, &bad), -EINVAL);
	bad.offset = DISK_SIZE;
	ck_assert_int_eq(pvio_blkfront_prep(q, &bad), -EINVAL);
	bad.offset = 0;
	bad.len = 12 * 4096;	/* more than 11 segments, no indirect */
	ck_assert_int_eq(pvio_blkfront_prep(q, &bad), -EINVAL);
	bad.len = 512;
	bad.op = 9;
	ck_assert_int_eq(pvio_blkfront_prep(q, &bad), -EINVAL);
	bad.op = PVIO_BLKFRONT_OP_READ;
	bad.flags = PVIO_BLKFRONT_IO_SECURE;
	ck_assert_int_eq(pvio_blkfront_prep(q, &bad), -EINVAL);
	bad.flags = 0;
	bad.rsvd = 1;
	ck_assert_int_eq(pvio_blkfront_prep(q, &bad), -EINVAL);
	ck_assert_uint_eq(d.n, 0);
	ck_assert_int_eq(pvio_blkfront_submit(q), 0);

	/* a full ring in one batch: one publication, one notification */
	for (i = 0; i < 33; i++) {
		memset(&ios[i], 0, sizeof(ios[i]));
		ios[i].op = PVIO_BLKFRONT_OP_READ;
		ios[i].len = 4096;
		ios[i].offset = 4096 * i;
		ios[i].buf = bufs[i];
		ios[i].done = t_count;
		ios[i].user_data = &d;
	}
	for (i = 0; i < 32; i++)
		ck_assert_int_eq(pvio_blkfront_prep(q, &ios[i]), 0);
	ck_assert_int_eq(pvio_blkfront_prep(q, &ios[32]), -EAGAIN);
	ck_assert_uint_eq(pvio_blkfront_queue_inflight(q), 32);
	ck_assert_int_eq(pvio_blkfront_submit(q), 32);
	pvio_blkfront_queue_stats(q, &qs);
	ck_assert_uint_eq(qs.batches, 1);
	ck_assert_uint_le(qs.notifies, 1);
	while (d.n < 32) {
		n = pvio_blkfront_wait(q, 32, 5000);
		ck_assert_int_gt(n, 0);
	}
	for (i = 0; i < 32; i++)
		ck_assert_int_eq(d.res[i], 0);

	/* sleeping on the fd: arm, poll, reap */
	ck_assert_int_eq(pvio_blkfront_prep(q, &ios[32]), 0);
	ck_assert_int_eq(pvio_blkfront_submit(q), 1);
	pfd.fd = pvio_blkfront_queue_fd(q);
	pfd.events = POLLIN;
	for (n = 0; n == 0;) {
		if (!pvio_blkfront_arm(q))
			ck_assert_int_eq(poll(&pfd, 1, 5000), 1);
		n = pvio_blkfront_reap(q, 0);
	}
	ck_assert_int_eq(n, 1);
	ck_assert_uint_eq(d.n, 33);
	ck_assert_int_eq(pvio_blkfront_reap(q, 0), 0);
	ck_assert_int_eq(pvio_blkfront_wait(q, 1, 0), 0);	/* nothing */
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

/* Informative: 4 KiB reads against the mock (sim world, grant copy). */
START_TEST(t_perf)
{
	static const unsigned int depths[] = { 1, 32 };
	struct pvio_blkfront_opts o = { .queue_depth = 32 };
	struct pvio_blkfront_io ios[32];
	static char bufs[32][4096];
	struct t_mockblk_cfg c;
	struct pvio_blkfront *dev;
	struct pvio_blkfront_queue *q;
	struct t_done d;
	unsigned int k, i;

	t_mock_cfg(&c);
	t_mock_start(&c);
	dev = t_open(&o);
	q = pvio_blkfront_queue(dev, 0);
	for (k = 0; k < 2; k++) {
		uint64_t t0 = pvio_now_ns(), ops = 0, el;

		while (pvio_now_ns() - t0 < 300000000u) {
			d.n = 0;
			for (i = 0; i < depths[k]; i++) {
				memset(&ios[i], 0, sizeof(ios[i]));
				ios[i].op = PVIO_BLKFRONT_OP_READ;
				ios[i].len = 4096;
				ios[i].offset =
					4096 * (uint64_t)((ops + i) % 2048);
				ios[i].buf = bufs[i];
				ios[i].done = t_count;
				ios[i].user_data = &d;
				ck_assert_int_eq(pvio_blkfront_prep(q, &ios[i]),
						 0);
			}
			pvio_blkfront_submit(q);
			while (d.n < depths[k]) {
				int n = pvio_blkfront_wait(q, depths[k], 5000);

				ck_assert_int_ge(n, 0);
			}
			ops += depths[k];
		}
		el = pvio_now_ns() - t0;
		fprintf(stderr, "test-blkfront: perf: QD%-2u 4k reads: "
			"%.0f IOPS (%.1f us per batch)\n", depths[k],
			(double)ops * 1e9 / (double)el,
			(double)el / 1e3 / (double)(ops / depths[k]));
	}
	ck_assert_int_eq(pvio_blkfront_close(dev), 0);
}
END_TEST

static Suite *blkfront_suite(void)
{
	Suite *s = suite_create("blkfront");
	TCase *tc;

	tc = tcase_create("handshake");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_handshake);
	tcase_add_test(tc, t_single_page);
	tcase_add_test(tc, t_reconnect);
	tcase_add_test(tc, t_skip_initwait);
	tcase_add_test(tc, t_timeout);
	tcase_add_test(tc, t_bad_sector_size);
	tcase_add_test(tc, t_backend_refuses);
	suite_add_tcase(s, tc);

	tc = tcase_create("rings");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, t_wraparound);
	tcase_add_test(tc, t_multipage);
	tcase_add_test(tc, t_multiqueue);
	tcase_add_test(tc, t_indirect);
	tcase_add_test(tc, t_granted_bufs);
	tcase_add_test(tc, t_sector_4k);
	tcase_add_test(tc, t_async_api);
	suite_add_tcase(s, tc);

	tc = tcase_create("ops");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_flush);
	tcase_add_test(tc, t_discard);
	tcase_add_test(tc, t_no_discard);
	tcase_add_test(tc, t_readonly);
	tcase_add_test(tc, t_resize);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, t_hostile, 0,
			    (int)(sizeof(t_evils) / sizeof(t_evils[0])));
	tcase_add_test(tc, t_backend_closes);
	tcase_add_test(tc, t_wait_timeout_bounds_spin);
	suite_add_tcase(s, tc);

	tc = tcase_create("perf");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, t_perf);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	const char *child = getenv("T_CHILD_WRITES_AND_DIES");

	if (child) {	/* t_reconnect's crashing frontend */
		snprintf(t_world_spec, sizeof(t_world_spec), "%s", child);
		t_child_writes_and_dies();
	}
	return t_run_suite(blkfront_suite(), true);
}
