// SPDX-License-Identifier: MIT
/*
 * The sim platform through a real pvio-simhv: the grant table's rules
 * (wrong domain, read-only, revoked, out of range, end-access while
 * mapped, per-element failure), event channels, and what happens when a
 * domain's process dies, including in the middle of a ring exchange.
 */
#include "config.h"

#include <check.h>
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include <pvio/gntio.h>
#include <pvio/platform.h>
#include <pvio/ring.h>

#include "t-world.h"
#include "t-check.h"

static void setup(void)
{
	t_world_start();
	t_world_guard();
}

static void teardown(void)
{
	t_world_stop();
}

/* domU @u shares @n pages with @to; returns the area, refs in @refs */
static void *t_share(struct pvio_platform *u, unsigned int to, unsigned int n,
		     bool writable, pvio_gref_t *refs)
{
	void *a = NULL;

	ck_assert_int_eq(pvio_gnt_share(u, to, n, writable, refs, &a), 0);
	ck_assert_ptr_nonnull(a);
	return a;
}

static int t_copy1(struct pvio_platform *p, unsigned int dom, pvio_gref_t ref,
		   unsigned int off, unsigned int len, void *buf, bool to_guest)
{
	struct pvio_gnt_copy_seg s = { 0 };

	if (to_guest) {
		s.source.virt = buf;
		s.dest.foreign.ref = ref;
		s.dest.foreign.offset = (uint16_t)off;
		s.dest.foreign.domid = (uint16_t)dom;
		s.flags = PVIO_GNTCOPY_DEST_GREF;
	} else {
		s.source.foreign.ref = ref;
		s.source.foreign.offset = (uint16_t)off;
		s.source.foreign.domid = (uint16_t)dom;
		s.dest.virt = buf;
		s.flags = PVIO_GNTCOPY_SOURCE_GREF;
	}
	s.len = (uint16_t)len;
	ck_assert_int_eq(pvio_gnt_copy(p, &s, 1), 0);
	return s.status;
}

/* ---- grants ----------------------------------------------------------------- */

START_TEST(t_share_map_copy)
{
	struct pvio_platform *u = t_attach(3), *d0 = t_attach(0);
	pvio_gref_t refs[2];
	char *g = t_share(u, 0, 2, true, refs), buf[16] = { 0 };
	char *m = NULL;

	strcpy(g, "from-domU");
	ck_assert_int_eq(pvio_gnt_map(d0, 3, 2, refs, true, (void **)&m), 0);
	ck_assert_str_eq(m, "from-domU");
	strcpy(m + PVIO_PAGE_SIZE, "from-dom0");
	ck_assert_str_eq(g + PVIO_PAGE_SIZE, "from-dom0");
	/* grant copy both ways */
	ck_assert_int_eq(t_copy1(d0, 3, refs[0], 0, 10, buf, false), 0);
	ck_assert_str_eq(buf, "from-domU");
	ck_assert_int_eq(t_copy1(d0, 3, refs[1], 100, 6, "copy!", true), 0);
	ck_assert_str_eq(g + PVIO_PAGE_SIZE + 100, "copy!");
	ck_assert_int_eq(pvio_gnt_unmap(d0, m, 2), 0);
	ck_assert_int_eq(pvio_gnt_unshare(u, g, 2), 0);
	pvio_platform_close(d0);
	pvio_platform_close(u);
}
END_TEST

START_TEST(t_wrong_domain)
{
	struct pvio_platform *u = t_attach(3), *d0 = t_attach(0);
	pvio_gref_t ref;
	char buf[8];
	void *m;

	t_share(u, 7, 1, true, &ref);	/* granted to dom7, not to us */
	ck_assert_int_eq(pvio_gnt_map(d0, 3, 1, &ref, false, &m), -EPERM);
	ck_assert_int_eq(t_copy1(d0, 3, ref, 0, 8, buf, false), -EPERM);
	pvio_platform_close(d0);
	pvio_platform_close(u);
}
END_TEST

START_TEST(t_read_only)
{
	struct pvio_platform *u = t_attach(3), *d0 = t_attach(0);
	pvio_gref_t ref;
	char *g = t_share(u, 0, 1, false, &ref), buf[8];
	char *m;

	strcpy(g, "ro");
	ck_assert_int_eq(pvio_gnt_map(d0, 3, 1, &ref, true, (void **)&m), -EPERM);
	ck_assert_int_eq(pvio_gnt_map(d0, 3, 1, &ref, false, (void **)&m), 0);
	ck_assert_str_eq(m, "ro");
	ck_assert_int_eq(t_copy1(d0, 3, ref, 0, 3, buf, false), 0);
	ck_assert_int_eq(t_copy1(d0, 3, ref, 0, 3, "xx", true), -EPERM);
	ck_assert_str_eq(g, "ro");
	ck_assert_int_eq(pvio_gnt_unmap(d0, m, 1), 0);
	pvio_platform_close(d0);
	pvio_platform_close(u);
}
END_TEST

START_TEST(t_revoked)
{
	struct pvio_platform *u = t_attach(3), *d0 = t_attach(0);
	pvio_gref_t ref;
	void *g = t_share(u, 0, 1, true, &ref), *m;
	char buf[8];

	ck_assert_int_eq(pvio_gnt_unshare(u, g, 1), 0);
	ck_assert_int_eq(pvio_gnt_map(d0, 3, 1, &ref, false, &m), -ENOENT);
	ck_assert_int_eq(t_copy1(d0, 3, ref, 0, 8, buf, false), -ENOENT);
	/* unsharing twice, or what was never shared */
	ck_assert_int_eq(pvio_gnt_unshare(u, g, 1), -EINVAL);
	ck_assert_int_eq(pvio_gnt_unshare(u, buf, 1), -EINVAL);
	pvio_platform_close(d0);
	pvio_platform_close(u);
}
END_TEST

START_TEST(t_out_of_range)
{
	struct pvio_platform *u = t_attach(3), *d0 = t_attach(0);
	pvio_gref_t ref, bad = 1u << 30, never = 5000, reserved = 0;
	char buf[PVIO_PAGE_SIZE];
	void *m;

	t_share(u, 0, 1, true, &ref);
	ck_assert_int_eq(pvio_gnt_map(d0, 3, 1, &bad, false, &m), -EINVAL);
	ck_assert_int_eq(pvio_gnt_map(d0, 3, 1, &never, false, &m), -ENOENT);
	ck_assert_int_eq(pvio_gnt_map(d0, 3, 1, &reserved, false, &m), -ENOENT);
	ck_assert_int_eq(t_copy1(d0, 3, bad, 0, 8, buf, false), -EINVAL);
	/* offset + len past the page */
	ck_assert_int_eq(t_copy1(d0, 3, ref, 4000, 200, buf, false), -EINVAL);
	ck_assert_int_eq(t_copy1(d0, 3, ref, 0, PVIO_PAGE_SIZE, buf, false), 0);
	/* no such domain */
	ck_assert_int_eq(t_copy1(d0, 77, ref, 0, 8, buf, false), -ESRCH);
	ck_assert_int_eq(pvio_gnt_map(d0, 77, 1, &ref, false, &m), -ESRCH);
	pvio_platform_close(d0);
	pvio_platform_close(u);
}
END_TEST

START_TEST(t_end_access_while_mapped)
{
	struct pvio_platform *u = t_attach(3), *d0 = t_attach(0);
	pvio_gref_t refs[3];
	void *g = t_share(u, 0, 3, true, refs), *m;

	ck_assert_int_eq(pvio_gnt_map(d0, 3, 1, &refs[1], true, &m), 0);
	/* one page of three still mapped: nothing is revoked */
	ck_assert_int_eq(pvio_gnt_unshare(u, g, 3), -EBUSY);
	ck_assert_int_eq(t_copy1(d0, 3, refs[0], 0, 4, "abc", true), 0);
	ck_assert_int_eq(pvio_gnt_unmap(d0, m, 1), 0);
	ck_assert_int_eq(pvio_gnt_unshare(u, g, 3), 0);
	pvio_platform_close(d0);
	pvio_platform_close(u);
}
END_TEST

START_TEST(t_per_element_status)
{
	struct pvio_platform *u = t_attach(3), *d0 = t_attach(0);
	pvio_gref_t refs[2], other;
	char *g = t_share(u, 0, 2, true, refs), a[4], b[4], c[4];
	struct pvio_gcopy gc;
	void *m;
	pvio_gref_t mix[2];

	t_share(u, 9, 1, true, &other);
	strcpy(g, "one");
	strcpy(g + PVIO_PAGE_SIZE, "two");
	ck_assert_int_eq(pvio_gcopy_init(&gc, d0, 3, 8), 0);
	ck_assert_int_eq(pvio_gcopy_from_guest(&gc, refs[0], 0, 4, a), 0);
	ck_assert_int_eq(pvio_gcopy_from_guest(&gc, other, 0, 4, b), 1);
	ck_assert_int_eq(pvio_gcopy_from_guest(&gc, refs[1], 0, 4, c), 2);
	/* checked before the platform sees them */
	ck_assert_int_eq(pvio_gcopy_from_guest(&gc, refs[0], 4090, 8, c), -EINVAL);
	ck_assert_int_eq(pvio_gcopy_from_guest(&gc, refs[0], 0, 0, c), -EINVAL);
	ck_assert_int_eq(pvio_gcopy_flush(&gc), 1);
	ck_assert_int_eq(pvio_gcopy_status(&gc, 0), 0);
	ck_assert_int_eq(pvio_gcopy_status(&gc, 1), -EPERM);
	ck_assert_int_eq(pvio_gcopy_status(&gc, 2), 0);
	ck_assert_str_eq(a, "one");
	ck_assert_str_eq(c, "two");
	pvio_gcopy_reset(&gc);
	while (pvio_gcopy_room(&gc))
		pvio_gcopy_to_guest(&gc, refs[0], 0, 1, "x");
	ck_assert_int_eq(pvio_gcopy_to_guest(&gc, refs[0], 0, 1, "x"), -ENOSPC);
	pvio_gcopy_destroy(&gc);
	/* maps are all or nothing: the good ref is not left pinned */
	mix[0] = refs[0];
	mix[1] = other;
	ck_assert_int_eq(pvio_gnt_map(d0, 3, 2, mix, false, &m), -EPERM);
	ck_assert_int_eq(pvio_gnt_unshare(u, g, 2), 0);
	pvio_platform_close(d0);
	pvio_platform_close(u);
}
END_TEST

/* ---- event channels ---------------------------------------------------------------- */

static bool t_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

START_TEST(t_evtchn)
{
	struct pvio_platform *u = t_attach(4), *d0 = t_attach(0);
	struct pvio_evtchn_status st;
	int up, dp;

	up = pvio_evtchn_alloc_unbound(u, 0);
	ck_assert_int_gt(up, 0);
	ck_assert_int_eq(pvio_evtchn_status(u, (pvio_port_t)up, &st), 0);
	ck_assert_int_eq(st.state, PVIO_EVTCHN_UNBOUND);
	/* sending on an unbound port goes nowhere, as on Xen */
	ck_assert_int_eq(pvio_evtchn_notify(u, (pvio_port_t)up), 0);
	dp = pvio_evtchn_bind(d0, 4, (pvio_port_t)up);
	ck_assert_int_gt(dp, 0);
	ck_assert_int_eq(pvio_evtchn_pending(d0), -EAGAIN);
	ck_assert_int_eq(pvio_evtchn_status(u, (pvio_port_t)up, &st), 0);
	ck_assert_int_eq(st.state, PVIO_EVTCHN_INTERDOMAIN);
	ck_assert_uint_eq(st.remote_dom, 0);
	ck_assert_uint_eq(st.remote_port, (unsigned int)dp);

	ck_assert(!t_readable(pvio_evtchn_fd(u), 0));
	ck_assert_int_eq(pvio_evtchn_notify(d0, (pvio_port_t)dp), 0);
	ck_assert(t_readable(pvio_evtchn_fd(u), 1000));
	ck_assert_int_eq(pvio_evtchn_pending(u), up);
	ck_assert_int_eq(pvio_evtchn_unmask(u, (pvio_port_t)up), 0);
	ck_assert_int_eq(pvio_evtchn_pending(u), -EAGAIN);
	/* several notifications before a look are one event */
	pvio_evtchn_notify(u, (pvio_port_t)up);
	pvio_evtchn_notify(u, (pvio_port_t)up);
	ck_assert(t_readable(pvio_evtchn_fd(d0), 1000));
	ck_assert_int_eq(pvio_evtchn_pending(d0), dp);
	ck_assert_int_eq(pvio_evtchn_pending(d0), -EAGAIN);

	/* closing one end: the other reverts to unbound and is kicked */
	ck_assert_int_eq(pvio_evtchn_close(u, (pvio_port_t)up), 0);
	ck_assert(t_readable(pvio_evtchn_fd(d0), 1000));
	ck_assert_int_eq(pvio_evtchn_pending(d0), dp);
	ck_assert_int_eq(pvio_evtchn_status(d0, (pvio_port_t)dp, &st), 0);
	ck_assert_int_eq(st.state, PVIO_EVTCHN_UNBOUND);
	ck_assert_int_eq(pvio_evtchn_notify(d0, (pvio_port_t)dp), 0);
	ck_assert_int_eq(pvio_evtchn_close(u, (pvio_port_t)up), -EINVAL);
	pvio_platform_close(d0);
	pvio_platform_close(u);
}
END_TEST

START_TEST(t_evtchn_bad_bind)
{
	struct pvio_platform *u = t_attach(4), *d0 = t_attach(0);
	int p5 = pvio_evtchn_alloc_unbound(u, 5);	/* offered to dom5 */

	ck_assert_int_gt(p5, 0);
	ck_assert_int_eq(pvio_evtchn_bind(d0, 4, (pvio_port_t)p5), -EINVAL);
	ck_assert_int_eq(pvio_evtchn_bind(d0, 4, 999), -EINVAL);
	ck_assert_int_eq(pvio_evtchn_bind(d0, 4, 0), -EINVAL);
	ck_assert_int_eq(pvio_evtchn_bind(d0, 33, 1), -ESRCH);
	ck_assert_int_eq(pvio_evtchn_notify(d0, 1), -EINVAL);
	ck_assert_int_eq(pvio_evtchn_notify(d0, 1u << 20), -EINVAL);
	ck_assert_int_eq(pvio_evtchn_close(d0, 5), -EINVAL);
	pvio_platform_close(d0);
	pvio_platform_close(u);
}
END_TEST

/* ---- domains ---------------------------------------------------------------------- */

START_TEST(t_attach_rules)
{
	struct pvio_platform *p = NULL;

	ck_assert_int_eq(pvio_platform_open(&p, t_world_spec, 12, 0), -ESRCH);
	ck_assert_int_eq(pvio_platform_open(&p, t_world_spec, 0x7ff5, 0), -EINVAL);
	ck_assert_int_eq(pvio_platform_open(&p, "nonsense", 0, 0), -EINVAL);
	ck_assert_int_eq(pvio_platform_open(&p, "sim:/nonexistent/world", 0, 0),
			 -ENOENT);
	ck_assert_ptr_null(p);
	p = t_attach(0);
	ck_assert_str_eq(pvio_platform_name(p), "sim");
	ck_assert_uint_eq(pvio_platform_domid(p), 0);
	pvio_platform_close(p);
	pvio_platform_close(NULL);
}
END_TEST

struct t_child_msg {
	pvio_gref_t ref;
	int port;
};

/* A domU process that shares a page and offers a port, then waits. */
static pid_t t_spawn_domu(unsigned int domid, struct t_child_msg *m)
{
	int pfd[2];
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct pvio_platform *u = NULL;
		struct t_child_msg cm;
		char *g;

		if (pvio_platform_open(&u, t_world_spec, domid,
				       PVIO_PLATFORM_CREATE) ||
		    pvio_gnt_share(u, 0, 1, true, &cm.ref, (void **)&g))
			_exit(1);
		strcpy(g, "alive");
		cm.port = pvio_evtchn_alloc_unbound(u, 0);
		if (write(pfd[1], &cm, sizeof(cm)) != sizeof(cm))
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], m, sizeof(*m)), sizeof(*m));
	close(pfd[0]);
	return pid;
}

START_TEST(t_process_death)
{
	struct pvio_platform *d0 = t_attach(0);
	struct pvio_evtchn_status st;
	struct pvio_dominfo di;
	struct t_child_msg m;
	char *map, buf[8];
	pid_t pid = t_spawn_domu(9, &m);
	int port, status;

	port = pvio_evtchn_bind(d0, 9, (pvio_port_t)m.port);
	ck_assert_int_gt(port, 0);
	ck_assert_int_eq(pvio_gnt_map(d0, 9, 1, &m.ref, true, (void **)&map), 0);
	ck_assert_int_eq(pvio_domain_info(d0, 9, &di), 0);
	ck_assert(!di.dying);
	ck_assert_uint_eq(di.nr_procs, 1);

	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	/* the peer notices: a kick on the port, which is now unbound */
	ck_assert(t_readable(pvio_evtchn_fd(d0), 2000));
	ck_assert_int_eq(pvio_evtchn_pending(d0), port);
	ck_assert_int_eq(pvio_evtchn_status(d0, (pvio_port_t)port, &st), 0);
	ck_assert_int_eq(st.state, PVIO_EVTCHN_UNBOUND);
	/* a zombie while we map its page: the mapping still works, new
	 * accesses do not */
	ck_assert_int_eq(pvio_domain_info(d0, 9, &di), 0);
	ck_assert(di.dying);
	ck_assert_str_eq(map, "alive");
	ck_assert_int_eq(t_copy1(d0, 9, m.ref, 0, 6, buf, false), -ESRCH);
	ck_assert_int_eq(pvio_evtchn_bind(d0, 9, (pvio_port_t)m.port), -ESRCH);
	/* the last unmap releases it */
	ck_assert_int_eq(pvio_gnt_unmap(d0, map, 1), 0);
	ck_assert_int_eq(pvio_domain_info(d0, 9, &di), -ESRCH);
	/* and the id can be used again */
	pid = t_spawn_domu(9, &m);
	ck_assert_int_eq(t_copy1(d0, 9, m.ref, 0, 6, buf, false), 0);
	ck_assert_str_eq(buf, "alive");
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	pvio_platform_close(d0);
}
END_TEST

/* fds of this process open on domain @domid's memory */
static int t_mem_fds(unsigned int domid)
{
	char want[64], link[128];
	struct dirent *e;
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	ssize_t len;

	ck_assert_ptr_nonnull(d);
	snprintf(want, sizeof(want), "/memfd:pvio-dom%u-mem", domid);
	while ((e = readdir(d))) {
		len = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = 0;
		n += strncmp(link, want, strlen(want)) == 0;
	}
	closedir(d);
	return n;
}

/*
 * A backend that let go of a guest (unmapped, unbound) before the guest
 * died, then makes no grant call: the dead guest's memory (mapped, its
 * fd open) must not stay with it until some other guest's I/O comes.
 * pvio_platform_tidy() lets it go.
 */
START_TEST(t_dead_domain_view_released)
{
	struct pvio_platform *d0 = t_attach(0);
	struct pvio_dominfo di;
	struct t_child_msg m;
	char *map;
	pid_t pid = t_spawn_domu(9, &m);
	int status;

	ck_assert_int_eq(pvio_gnt_map(d0, 9, 1, &m.ref, true, (void **)&map), 0);
	ck_assert_str_eq(map, "alive");
	ck_assert_int_eq(pvio_gnt_unmap(d0, map, 1), 0);
	ck_assert_int_eq(t_mem_fds(9), 1);	/* kept for the next map */
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	while (pvio_domain_info(d0, 9, &di) == 0)	/* until it is gone */
		usleep(1000);
	ck_assert_int_eq(t_mem_fds(9), 1);	/* no call came */
	ck_assert_int_eq(pvio_platform_tidy(d0), 0);
	ck_assert_int_eq(t_mem_fds(9), 0);
	pvio_platform_close(d0);
}
END_TEST

/* A frontend process runs a ring flat out; it is killed mid-run. The
 * backend (this process) must notice, stop cleanly and lose nothing. */
START_TEST(t_peer_killed_midrun)
{
	struct pvio_platform *d0 = t_attach(0);
	struct pvio_ring_back b;
	struct blkif_request q[32];
	struct pvio_evtchn_status st;
	struct pvio_dominfo di;
	uint64_t served = 0, next_id = 0;
	int pfd[2], port, status, n, i;
	struct t_child_msg m;
	void *ring;
	pid_t pid;

	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	if (pid == 0) {
		struct pvio_platform *u = NULL;
		struct pvio_ring_front f;
		struct blkif_response r[32];
		uint64_t id = 0;
		void *mem;

		if (pvio_platform_open(&u, t_world_spec, 6, PVIO_PLATFORM_CREATE) ||
		    pvio_gnt_share(u, 0, 1, true, &m.ref, &mem))
			_exit(1);
		pvio_blkif_front_init(&f, mem, 1);
		m.port = pvio_evtchn_alloc_unbound(u, 0);
		if (write(pfd[1], &m, sizeof(m)) != sizeof(m))
			_exit(1);
		for (;;) {	/* until killed */
			while (pvio_ring_front_free(&f)) {
				struct blkif_request *rq = pvio_blkif_front_req(&f);

				memset(rq, 0, sizeof(*rq));
				rq->operation = BLKIF_OP_READ;
				rq->id = id++;
				pvio_ring_front_req_commit(&f);
			}
			if (pvio_ring_front_push(&f))
				pvio_evtchn_notify(u, (pvio_port_t)m.port);
			if (pvio_blkif_front_consume(&f, r, 32) < 0)
				_exit(2);
		}
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &m, sizeof(m)), sizeof(m));
	port = pvio_evtchn_bind(d0, 6, (pvio_port_t)m.port);
	ck_assert_int_gt(port, 0);
	ck_assert_int_eq(pvio_gnt_map(d0, 6, 1, &m.ref, true, &ring), 0);
	ck_assert_int_eq(pvio_blkif_back_attach(&b, ring, 1), 0);
	for (;;) {
		n = pvio_blkif_back_consume(&b, q, 32);
		ck_assert_int_ge(n, 0);
		for (i = 0; i < n; i++) {
			struct blkif_response *r = pvio_blkif_back_rsp(&b);

			ck_assert_uint_eq(q[i].id, next_id++);
			r->id = q[i].id;
			r->operation = q[i].operation;
			r->status = 0;
			pvio_ring_back_rsp_commit(&b);
		}
		served += (unsigned int)n;
		pvio_ring_back_push(&b);
		if (served >= 100000 && pid > 0) {
			kill(pid, SIGKILL);	/* mid-run */
			waitpid(pid, &status, 0);
			pid = 0;
		}
		if (n == 0 && pid == 0) {
			/* not busy: is the peer there? */
			if (pvio_evtchn_status(d0, (pvio_port_t)port, &st) == 0 &&
			    st.state != PVIO_EVTCHN_INTERDOMAIN)
				break;
		}
	}
	/* every request was answered, in order (checked as they came) */
	ck_assert_uint_ge(served, 100000);
	ck_assert_int_eq(pvio_domain_info(d0, 6, &di), 0);
	ck_assert(di.dying);
	ck_assert_int_eq(pvio_gnt_unmap(d0, ring, 1), 0);
	ck_assert_int_eq(pvio_domain_info(d0, 6, &di), -ESRCH);
	pvio_platform_close(d0);
}
END_TEST

static Suite *sim_suite(void)
{
	Suite *s = suite_create("sim");
	TCase *g = tcase_create("grants"), *e = tcase_create("evtchn");
	TCase *d = tcase_create("domains");

	tcase_add_checked_fixture(g, setup, teardown);
	tcase_add_checked_fixture(e, setup, teardown);
	tcase_add_checked_fixture(d, setup, teardown);
	tcase_add_test(g, t_share_map_copy);
	tcase_add_test(g, t_wrong_domain);
	tcase_add_test(g, t_read_only);
	tcase_add_test(g, t_revoked);
	tcase_add_test(g, t_out_of_range);
	tcase_add_test(g, t_end_access_while_mapped);
	tcase_add_test(g, t_per_element_status);
	tcase_add_test(e, t_evtchn);
	tcase_add_test(e, t_evtchn_bad_bind);
	tcase_add_test(d, t_attach_rules);
	tcase_add_test(d, t_process_death);
	tcase_add_test(d, t_dead_domain_view_released);
	tcase_add_test(d, t_peer_killed_midrun);
	tcase_set_timeout(d, 30);
	suite_add_tcase(s, g);
	suite_add_tcase(s, e);
	suite_add_tcase(s, d);
	return s;
}

int main(void)
{
	return t_run_suite(sim_suite(), false);
}
