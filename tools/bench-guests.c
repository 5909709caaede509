// SPDX-License-Identifier: MIT
/*
 * pvio-bench blk --guests N: many sim domUs against one pvio-backd.
 *
 * Every guest is its own domain (its own platform handle, xenstore
 * connection, vbd, ring, grants and event channel: pvio-backd sees N
 * independent domains), but one driver process runs up to 256 guests in
 * one loop, so that they fit on the guests' CPU and the guests' side is
 * fair by construction (a process per 32 guests made the CPU scheduler's
 * share per process show as a ±45 % spread between guests): a driver keeps
 * each active guest's requests in flight and sleeps in epoll over their
 * queues' fds when none has anything to reap.
 *
 * Measured: the time from the first attach to the last guest Connected
 * (handshakes run in parallel: one thread per guest while connecting),
 * pvio-backd's RSS, fds and CPU with everyone connected and idle; then
 * 4 KiB random reads from the first 8 guests (the baseline) and from all N,
 * alternating, with each guest's IOPS: total, min/median/max and the
 * fairness spread (the largest distance from the mean, in % of it).
 *
 * --restart: then, with every guest reading, pvio-backd killed with
 * SIGKILL (a crash) and, in the same run, stopped with SIGTERM (a clean
 * stop), each time started again with the same arguments: the longest
 * time each guest went without a completion (its outage), and how long
 * pvio-backd took to come up again.
 *
 * --noisy: 8 guests; guest 1 floods (4 KiB random writes, QD 128) while
 * the 7 others do QD 1 random reads: each quiet guest's p99 alone, then
 * beside the flood, in the same run.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <pvio/blkfront.h>
#include <pvio/netfront.h>
#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "bench.h"
#include "guard.h"

#define GUESTS_MAX	1024u
#define PER_DRIVER	256u	/* guests per driver process */
#define LAT_MAX		20000u	/* samples per guest and run */
#define BS		4096u
/*
 * Guest i is domain DOMID_BASE + i: above the fixed domids the
 * integration tests give their guests, whose TAPs (vif<domid>.<devid>) are
 * named host-wide, so that a --guests run beside them (make -j check)
 * makes no TAP of theirs
 */
#define DOMID_BASE	1001u

struct gopts {
	unsigned int guests, qd, ms, runs, spin_us, workers, base;
	uint64_t size;
	const char *dir;
	bool json, vif, noisy, copy, restart;
	const char *backd_opt;	/* one more pvio-backd option, or NULL */
};

/* parent -> driver */
struct gcmd {
	uint32_t op;		/* CMD_* */
	uint32_t ms;
	uint64_t start_ns;	/* CLOCK_MONOTONIC: every driver starts then */
	uint32_t active;	/* guests [0, active) run ... */
	uint32_t flood;		/* ... and the flooder, if set */
	uint64_t kill_ns;	/* --restart: pvio-backd goes then (0: no) */
};

/* CMD_STOP: during a --restart run, its end (everyone is back) */
enum { CMD_CONNECT = 1, CMD_RUN, CMD_EXIT, CMD_STOP };

/* driver -> parent, one per guest of the driver after a run */
struct gres {
	uint32_t idx;
	int32_t error;
	uint64_t ios;
	double p50, p99;
	double gap_ms;		/* the longest time without a completion */
};

struct guest {
	unsigned int idx, domid;
	bool flooder;		/* --noisy: QD 128 writes */
	unsigned int qd;
	struct pvio_platform *p;
	struct pvio_xs *x;
	struct pvio_blkfront *blk;
	struct pvio_netfront *net;
	struct pvio_blkfront_queue *q;
	char *bufs;
	struct gjob *jobs;
	uint64_t rng;
	uint64_t ios;
	uint64_t last_ns, max_gap_ns;	/* completions: the last, the longest gap */
	int error;
	uint32_t nlat;
	uint32_t *lat;
	const struct gopts *o;
	char err[PVIO_BLKFRONT_ERR_MAX];
};

struct gjob {
	struct pvio_blkfront_io io;
	struct guest *g;
	uint64_t t0;
	bool busy;
};

static uint64_t run_end_ns;	/* completions after this do not count */

/* ---- the driver: many guests in one process ----------------------------------- */

static void *guest_connect(void *arg)
{
	struct guest *g = arg;
	const struct gopts *o = g->o;
	struct pvio_blkfront_opts fo = {
		.max_queues = 1, .queue_depth = g->qd,
		.max_indirect_segments = PVIO_BLKFRONT_NO_INDIRECT,
		.timeout_ms = 30000,
	};
	struct pvio_netfront_opts no = { .max_queues = 1, .timeout_ms = 30000 };
	int rc;

	rc = pvio_platform_open(&g->p, o->dir, g->domid, 0);
	if (!rc)
		rc = pvio_xs_open(&g->x, g->p);
	if (!rc)
		rc = pvio_blkfront_open(&g->blk, g->p, g->x, 51712, &fo, g->err,
					sizeof(g->err));
	if (!rc && o->vif)
		rc = pvio_netfront_open(&g->net, g->p, g->x, 0, &no, g->err,
					sizeof(g->err));
	if (!rc) {
		g->q = pvio_blkfront_queue(g->blk, 0);
		rc = pvio_blkfront_buf_alloc(g->q, (size_t)g->qd * BS,
					     (void **)&g->bufs);
	}
	if (!rc) {
		g->jobs = calloc(g->qd, sizeof(*g->jobs));
		g->lat = malloc(LAT_MAX * sizeof(*g->lat));
		if (!g->jobs || !g->lat)
			rc = -ENOMEM;
	}
	if (rc && !g->err[0])
		snprintf(g->err, sizeof(g->err), "%s", strerror(-rc));
	g->error = rc;
	return NULL;
}

static void job_done(struct pvio_blkfront_io *io, int r)
{
	struct gjob *j = io->user_data;
	struct guest *g = j->g;
	uint64_t t = pvio_now_ns();

	j->busy = false;
	if (r) {
		g->error = r;
		return;
	}
	if (t - g->last_ns > g->max_gap_ns)
		g->max_gap_ns = t - g->last_ns;
	g->last_ns = t;
	if (t > run_end_ns)
		return;
	g->ios++;
	if (g->nlat < LAT_MAX)
		g->lat[g->nlat++] = (uint32_t)(t - j->t0);
}

/* Fill the guest's free slots; return how many went on its ring. */
static unsigned int guest_fill(struct guest *g, uint64_t now, uint64_t blocks)
{
	unsigned int i, n = 0;

	for (i = 0; i < g->qd && !g->error; i++) {
		struct gjob *j = &g->jobs[i];

		if (j->busy)
			continue;
		g->rng ^= g->rng << 13;
		g->rng ^= g->rng >> 7;
		g->rng ^= g->rng << 17;
		j->g = g;
		j->io.op = g->flooder ? PVIO_BLKFRONT_OP_WRITE
				      : PVIO_BLKFRONT_OP_READ;
		j->io.len = BS;
		j->io.offset = (g->rng % blocks) * BS;
		j->io.buf = g->bufs + (size_t)i * BS;
		j->io.done = job_done;
		j->io.user_data = j;
		j->t0 = now;
		if (pvio_blkfront_prep(g->q, &j->io))
			break;
		j->busy = true;
		n++;
	}
	if (n)
		pvio_blkfront_submit(g->q);
	return n;
}

/* --restart: has the parent said CMD_STOP (pvio-backd is up again and
 * everyone had the time to be back)? */
static bool stop_said(int cmd_r)
{
	struct pollfd p = { .fd = cmd_r, .events = POLLIN };
	struct gcmd c;

	return poll(&p, 1, 0) > 0 && bench_read(cmd_r, &c, sizeof(c)) == 0 &&
	       c.op == CMD_STOP;
}

static void driver_run(struct guest *gs, unsigned int ng, const struct gcmd *c,
		       int ep, int cmd_r, const struct gopts *o)
{
	uint64_t looked = 0;
	bool stopped = false;
	uint64_t blocks = o->size / BS, now;
	struct guest *act[PER_DRIVER];
	unsigned int na = 0, i;
	bool running = true;

	for (i = 0; i < ng; i++) {
		struct guest *g = &gs[i];

		g->ios = 0;
		g->nlat = 0;
		g->max_gap_ns = 0;
		if (!g->error && (g->idx < c->active || (c->flood && g->flooder))) {
			struct epoll_event ev = { .events = EPOLLIN };

			ev.data.u32 = na;
			epoll_ctl(ep, EPOLL_CTL_ADD, pvio_blkfront_queue_fd(g->q),
				  &ev);
			act[na++] = g;
		}
	}
	while ((now = pvio_now_ns()) < c->start_ns)
		usleep((useconds_t)((c->start_ns - now) / 1000u + 1));
	/* the window from when this driver really starts: on a loaded
	 * machine the command may come after the agreed start */
	run_end_ns = (now > c->start_ns ? now : c->start_ns) +
		     (uint64_t)c->ms * 1000000u;
	for (i = 0; i < na; i++) {
		act[i]->last_ns = now;
		guest_fill(act[i], pvio_now_ns(), blocks);
	}
	while (na) {
		unsigned int busy = 0;
		int got = 0;

		now = pvio_now_ns();
		/* --restart: over when the parent says (run_end_ns is the
		 * limit), looked for every 10 ms */
		if (c->kill_ns && !stopped && now - looked > 10000000u) {
			looked = now;
			stopped = stop_said(cmd_r);
		}
		running = now < run_end_ns && !stopped;
		for (i = 0; i < na; i++) {
			struct guest *g = act[i];
			int n = pvio_blkfront_reap(g->q, 0);

			if (n < 0 && !g->error)
				g->error = n;
			if (n > 0)
				got += n;
			if (running && !g->error)
				guest_fill(g, now, blocks);
			busy += pvio_blkfront_queue_inflight(g->q) ? 1 : 0;
		}
		if (!busy)
			break;
		if (got)
			continue;
		/* nothing answered: sleep until a queue's fd says so */
		for (i = 0; i < na; i++)
			if (pvio_blkfront_arm(act[i]->q) > 0)
				got = 1;
		if (!got) {
			struct epoll_event ev[64];

			if (epoll_wait(ep, ev, 64, 1000) == 0 && !running) {
				for (i = 0; i < na; i++)	/* stuck: give up */
					if (pvio_blkfront_queue_inflight(act[i]->q))
						act[i]->error = -ETIMEDOUT;
				break;
			}
		}
	}
	for (i = 0; i < na; i++)
		epoll_ctl(ep, EPOLL_CTL_DEL, pvio_blkfront_queue_fd(act[i]->q), NULL);
}

static void driver_main(const struct gopts *o, unsigned int first,
			unsigned int n, int cmd_r, int res_w)
{
	struct guest *gs = calloc(n, sizeof(*gs));
	pthread_t *th = calloc(n, sizeof(*th));
	struct gcmd c;
	unsigned int i;
	int ep = epoll_create1(EPOLL_CLOEXEC), rc;

	bench_pin(0);
	for (i = 0; i < n; i++) {
		struct guest *g = &gs[i];

		g->idx = first + i;
		g->domid = DOMID_BASE + first + i;
		g->flooder = o->noisy && g->idx == 0;
		g->qd = g->flooder ? 128 : o->qd;
		g->rng = 88172645463325252ull ^ ((uint64_t)g->domid << 32);
		g->o = o;
	}
	if (o->noisy)	/* the guests' CPU is not what is measured */
		for (i = 0; i < n; i++)
			if (gs[i].flooder && setpriority(PRIO_PROCESS, 0, 19))
				break;
	while (bench_read(cmd_r, &c, sizeof(c)) == 0 && c.op != CMD_EXIT) {
		if (c.op == CMD_CONNECT) {
			/* every handshake at once: the backend must not
			 * serialize them */
			for (i = 0; i < n; i++)
				if (pthread_create(&th[i], NULL, guest_connect,
						   &gs[i]))
					guest_connect(&gs[i]), th[i] = 0;
			for (i = 0; i < n; i++)
				if (th[i])
					pthread_join(th[i], NULL);
			for (i = 0; i < n; i++)
				if (gs[i].error)
					fprintf(stderr, "pvio-bench: guest %u: %s\n",
						gs[i].domid, gs[i].err);
		} else {
			driver_run(gs, n, &c, ep, cmd_r, o);
		}
		for (i = 0; i < n; i++) {
			struct gres r = { .idx = gs[i].idx, .error = gs[i].error,
					  .ios = gs[i].ios,
					  .gap_ms = (double)gs[i].max_gap_ns / 1e6 };

			bench_percentiles(gs[i].lat, gs[i].nlat, &r.p50, &r.p99);
			if (bench_write(res_w, &r, sizeof(r)))
				_exit(1);
		}
	}
	for (i = 0; i < n; i++) {
		pvio_netfront_close(gs[i].net);
		pvio_blkfront_close(gs[i].blk);
		pvio_xs_close(gs[i].x);
		pvio_platform_close(gs[i].p);
	}
	rc = 0;
	_exit(rc);
}

/* ---- the parent ------------------------------------------------------------------ */

struct driver {
	pid_t pid;
	int cmd_w, res_r;
	unsigned int first, n;
};

static int drivers_send(struct driver *d, unsigned int nd, const struct gcmd *c)
{
	unsigned int i;

	for (i = 0; i < nd; i++)
		if (bench_write(d[i].cmd_w, c, sizeof(*c)))
			return -EIO;
	return 0;
}

static int drivers_collect(struct driver *d, unsigned int nd, struct gres *res)
{
	unsigned int i, k;
	int rc = 0;

	for (i = 0; i < nd; i++)
		for (k = 0; k < d[i].n; k++) {
			struct gres r;

			if (bench_read(d[i].res_r, &r, sizeof(r)))
				return -EIO;
			if (r.idx < GUESTS_MAX)
				res[r.idx] = r;
			if (r.error && !rc)
				rc = r.error;
		}
	return rc;
}

static int drivers_cmd(struct driver *d, unsigned int nd, const struct gcmd *c,
		       struct gres *res)
{
	int rc = drivers_send(d, nd, c);

	return rc ? rc : drivers_collect(d, nd, res);
}

/* pvio-backd's RSS (KiB), fds and CPU time (ns) */
static void backd_usage(pid_t pid, unsigned long *rss_kb, unsigned int *fds,
			unsigned long long *ticks)
{
	char path[96], line[256];
	FILE *f;

	*rss_kb = 0;
	*fds = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lu", rss_kb) == 1)
			break;
	if (f)
		fclose(f);
	/* CPU time of every thread, in ns (schedstat: finer than ticks) */
	snprintf(path, sizeof(path), "cat /proc/%d/task/*/schedstat 2>/dev/null",
		 (int)pid);
	f = popen(path, "r");
	*ticks = 0;
	while (f && fgets(line, sizeof(line), f))
		*ticks += strtoull(line, NULL, 10);
	if (f)
		pclose(f);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "ls %s 2>/dev/null | wc -l", path);
		f = popen(cmd, "r");
		if (f) {
			if (fscanf(f, "%u", fds) != 1)
				*fds = 0;
			pclose(f);
		}
	}
}

struct phase {
	double total[32], spread[32];
	double g_min, g_med, g_max, worst_spread;
	double total_med;
	double p99_med, p99_max;	/* --noisy: the quiet guests */
};

/* One run's numbers over guests [lo, hi) of @res. */
static void phase_add(struct phase *ph, unsigned int run, const struct gres *res,
		      unsigned int lo, unsigned int hi, double secs)
{
	double v[GUESTS_MAX], sum = 0, mean, dev = 0;
	struct bench_stat3 s;
	unsigned int i, n = hi - lo;

	for (i = lo; i < hi; i++) {
		v[i - lo] = (double)res[i].ios / secs;
		sum += v[i - lo];
	}
	mean = sum / n;
	for (i = 0; i < n; i++) {
		double d = v[i] > mean ? v[i] - mean : mean - v[i];

		if (d > dev)
			dev = d;
	}
	ph->total[run] = sum;
	ph->spread[run] = mean > 0 ? 100.0 * dev / mean : 0;
	s = bench_stat3(v, n);
	if (ph->spread[run] >= ph->worst_spread || !run) {
		ph->g_min = s.min;
		ph->g_med = s.med;
		ph->g_max = s.max;
		ph->worst_spread = ph->spread[run];
	}
}

/* @size bytes of real data (no holes), in the page cache */
static int make_image(const char *path, uint64_t size)
{
	char *buf = malloc(1u << 20);
	uint64_t off;
	int fd;

	fd = pvio_guard_create(path, 0600);
	if (fd < 0 || !buf) {
		fprintf(stderr, "pvio-bench: cannot create %s: %s\n", path,
			strerror(fd < 0 ? -fd : ENOMEM));
		if (fd >= 0) {
			close(fd);
			unlink(path);
		}
		free(buf);
		return -1;
	}
	memset(buf, 0xa5, 1u << 20);
	for (off = 0; off < size; off += 1u << 20)
		if (pwrite(fd, buf, 1u << 20, (off_t)off) != 1 << 20) {
			fprintf(stderr, "pvio-bench: cannot fill %s\n", path);
			close(fd);
			free(buf);
			unlink(path);
			return -1;
		}
	close(fd);
	free(buf);
	return 0;
}

#define usage_exit(...) pvio_usage_error("pvio-bench", __VA_ARGS__)

int bench_guests(int argc, char **argv)
{
	struct gopts o = { .guests = 0, .qd = 8, .ms = 1000, .runs = 3,
			   .spin_us = 50, .workers = 1, .base = 8,
			   .size = 256ull << 20 };
	static struct gres res[GUESTS_MAX];
	struct driver d[GUESTS_MAX / PER_DRIVER + 1];
	struct phase base = { 0 }, all = { 0 };
	double qp99_alone[GUESTS_MAX] = { 0 }, qp99_flood[GUESTS_MAX] = { 0 };
	double ratio[32];
	struct bench_world bw;
	unsigned long rss0, rss1, rss2;
	unsigned long long t0 = 0, t1 = 0, tk = 0;
	unsigned int fds0, fds1, nd = 0, i, run;
	uint64_t a0, a1, c1;
	const char *img_dir = "/var/tmp";
	char img[PVIO_PATH_BUF], img_w[PVIO_PATH_BUF];
	struct gcmd c;
	struct rlimit rl;
	/* --restart: [0] SIGKILL, [1] SIGTERM; per run */
	struct rstop {
		int sig;
		const char *name;
		double up_s[32], gap_max[32];
		unsigned int abandoned[32];	/* at its exit (SIGTERM) */
		struct bench_stat3 gap[32];
	} rs[2] = { { .sig = SIGKILL, .name = "SIGKILL (crash)" },
		    { .sig = SIGTERM, .name = "SIGTERM (clean)" } };
	bool qd_given = false;
	int rc = 0;

	for (i = 1; i < (unsigned int)argc; i++) {
		int ii = (int)i;

		if (bench_opt_common(argc, argv, &ii, &o.ms, &o.runs, &o.spin_us,
				     &o.json)) {
			i = (unsigned int)ii;
			continue;
		}
		if (!strcmp(argv[i], "--guests") && i + 1 < (unsigned int)argc) {
			if (pvio_parse_uint(argv[++i], 1, GUESTS_MAX, &o.guests))
				usage_exit("bad --guests '%s' (1..1024)", argv[i]);
		} else if (!strcmp(argv[i], "--qd") && i + 1 < (unsigned int)argc) {
			if (pvio_parse_uint(argv[++i], 1, 128, &o.qd))
				usage_exit("bad --qd '%s' (1..128)", argv[i]);
			qd_given = true;
		} else if (!strcmp(argv[i], "--workers") && i + 1 < (unsigned int)argc) {
			if (pvio_parse_uint(argv[++i], 1, 64, &o.workers))
				usage_exit("bad --workers '%s' (1..64)", argv[i]);
		} else if (!strcmp(argv[i], "--dir") && i + 1 < (unsigned int)argc) {
			img_dir = argv[++i];
		} else if (!strcmp(argv[i], "--size") && i + 1 < (unsigned int)argc) {
			if (pvio_parse_size(argv[++i], &o.size) || o.size < (1u << 20) ||
			    o.size % (1u << 20))
				usage_exit("bad --size '%s' (1M.., MiB multiple)", argv[i]);
		} else if (!strcmp(argv[i], "--vif")) {
			o.vif = true;
		} else if (!strcmp(argv[i], "--noisy")) {
			o.noisy = true;
		} else if (!strcmp(argv[i], "--copy")) {
			o.copy = true;
		} else if (!strcmp(argv[i], "--restart")) {
			o.restart = true;
		} else if (!strcmp(argv[i], "--backd-opt") && i + 1 < (unsigned int)argc) {
			o.backd_opt = argv[++i];
		} else {
			usage_exit("blk --guests: unknown option '%s'", argv[i]);
		}
	}
	if (o.noisy) {
		/* its set-up is fixed: what would change it is not ignored */
		if (o.guests && o.guests != 8)
			usage_exit("--noisy runs 8 guests, not '%s'", "--guests");
		if (qd_given && o.qd != 1)
			usage_exit("--noisy: the quiet guests read at QD 1 (%s)", "--qd");
		if (o.workers != 1)
			usage_exit("--noisy: the 8 guests share one worker (%s)",
				   "--workers");
		if (o.vif)
			usage_exit("--noisy: disks only (%s)", "--vif");
		if (o.restart)
			usage_exit("--noisy: no restart (%s)", "--restart");
		o.guests = 8;
		o.qd = 1;
	}
	if (!o.guests)
		usage_exit("blk: %s needs --guests N", "--guests mode");
	if (o.base > o.guests)
		o.base = o.guests;
	/* a driver holds a few fds per guest */
	rl.rlim_cur = rl.rlim_max = 65536;
	setrlimit(RLIMIT_NOFILE, &rl);

	/* one image the readers share (read-only: pvio-backd locks a
	 * read-write image for one device); the flooder writes its own */
	snprintf(img, sizeof(img), "%s/pvio-bench-%d.img", img_dir, (int)getpid());
	snprintf(img_w, sizeof(img_w), "%s/pvio-bench-%d-w.img", img_dir,
		 (int)getpid());
	if (make_image(img, o.size) || (o.noisy && make_image(img_w, o.size))) {
		unlink(img);
		return 1;
	}
	rc = bench_world_up_opt(&bw, o.spin_us, !o.copy, o.workers, o.backd_opt);
	if (rc) {
		unlink(img);
		if (o.noisy)
			unlink(img_w);
		bench_world_down(&bw);
		return 1;
	}
	o.dir = bw.spec;
	backd_usage(bw.backd, &rss0, &fds0, &t0);

	/* the drivers: guests in groups, flooder (guest 0) alone */
	fflush(NULL);
	for (i = 0; i < o.guests; nd++) {
		int cmd[2], resp[2];
		unsigned int n = o.guests - i < PER_DRIVER ? o.guests - i : PER_DRIVER;

		if (o.noisy && i == 0)
			n = 1;
		if (pipe(cmd) || pipe(resp))
			return 1;
		d[nd].first = i;
		d[nd].n = n;
		d[nd].pid = pvio_guard_fork();
		if (d[nd].pid == 0) {
			close(cmd[1]);
			close(resp[0]);
			driver_main(&o, i, n, cmd[0], resp[1]);
		}
		close(cmd[0]);
		close(resp[1]);
		d[nd].cmd_w = cmd[1];
		d[nd].res_r = resp[0];
		i += n;
	}

	/* attach everything, then every guest connects at once */
	a0 = pvio_now_ns();
	for (i = 0; i < o.guests && !rc; i++) {
		if (o.noisy && i == 0)
			rc = bench_attach_vbd(&bw, DOMID_BASE + i, img_w);
		else
			rc = bench_attach_vbd_mode(&bw, DOMID_BASE + i, img, true);
		if (!rc && o.vif)
			rc = bench_attach_vif(&bw, DOMID_BASE + i);
	}
	a1 = pvio_now_ns();
	memset(&c, 0, sizeof(c));
	c.op = CMD_CONNECT;
	if (!rc)
		rc = drivers_cmd(d, nd, &c, res);
	/* and every backend Connected too (a netfront's open returns at its
	 * own Connected) */
	for (i = 0; i < o.guests && !rc; i++) {
		char path[128];
		unsigned long st = 0;
		int k;

		for (k = 0; k < 2; k++) {
			if (k && !o.vif)
				break;
			if (k)
				snprintf(path, sizeof(path),
					 "/local/domain/0/backend/vif/%u/0/state",
					 DOMID_BASE + i);
			else
				snprintf(path, sizeof(path),
					 "/local/domain/0/backend/vbd/%u/51712/state",
					 DOMID_BASE + i);
			while (pvio_xs_read_uint(bw.xs, 0, path, 0, 8, &st) == 0 &&
			       st != 4 && pvio_now_ns() - a0 < 60000000000ull)
				usleep(1000);
			if (st != 4)
				rc = -ETIMEDOUT;
		}
	}
	c1 = pvio_now_ns();
	if (getenv("PVIO_BENCH_DEBUG")) {	/* pvio-backd's view */
		char cmd[8400];

		snprintf(cmd, sizeof(cmd), "cp %s/backd.log %s/simhv.log /tmp/",
			 bw.dir, bw.dir);
		if (system(cmd) != 0)
			fprintf(stderr, "pvio-bench: no log\n");
	}
	if (rc) {
		fprintf(stderr, "pvio-bench: guests did not connect: %s\n", strerror(-rc));
		goto out;
	}
	/* everyone connected and idle: pvio-backd's share of a core */
	sleep(3);	/* the vifs' first (IPv6) packets come and go */
	backd_usage(bw.backd, &rss1, &fds1, &t0);
	sleep(3);
	backd_usage(bw.backd, &rss1, &fds1, &t1);
	tk = t1 - t0;
	if (getenv("PVIO_BENCH_IDLE_CMD")) {	/* e.g. smaps, perf, strace */
		char pid[16];

		snprintf(pid, sizeof(pid), "%d", (int)bw.backd);
		setenv("PVIO_BACKD_PID", pid, 1);
		if (system(getenv("PVIO_BENCH_IDLE_CMD")) != 0)
			fprintf(stderr, "pvio-bench: PVIO_BENCH_IDLE_CMD failed\n");
	}

	/* warm-up: every guest's buffers mapped by the backend, the file in
	 * the page cache */
	c.op = CMD_RUN;
	c.ms = 300;
	c.flood = 1;
	c.active = o.guests;
	c.start_ns = pvio_now_ns() + 50000000u;
	rc = drivers_cmd(d, nd, &c, res);
	for (run = 0; run < o.runs && !rc; run++) {
		double secs = o.ms / 1000.0;

		c.op = CMD_RUN;
		c.ms = o.ms;
		c.flood = 0;
		c.active = o.base;
		c.start_ns = pvio_now_ns() + 50000000u;
		rc = drivers_cmd(d, nd, &c, res);
		if (rc)
			break;
		if (o.noisy) {
			for (i = 1; i < o.guests; i++)
				qp99_alone[i] = res[i].p99 > qp99_alone[i] ?
					res[i].p99 : qp99_alone[i];
			c.flood = 1;
			c.active = o.guests;
			c.start_ns = pvio_now_ns() + 50000000u;
			/* guest 0 floods: not among the quiet ones */
			rc = drivers_cmd(d, nd, &c, res);
			if (rc)
				break;
			for (i = 1; i < o.guests; i++)
				qp99_flood[i] = res[i].p99 > qp99_flood[i] ?
					res[i].p99 : qp99_flood[i];
			phase_add(&all, run, res, 1, o.guests, secs);
			continue;
		}
		phase_add(&base, run, res, 0, o.base, secs);
		c.active = o.guests;
		c.start_ns = pvio_now_ns() + 50000000u;
		rc = drivers_cmd(d, nd, &c, res);
		if (rc)
			break;
		phase_add(&all, run, res, 0, o.guests, secs);
		if (getenv("PVIO_BENCH_DEBUG"))	/* each guest's IOPS */
			for (i = 0; i < o.guests; i++)
				fprintf(stderr, "guest %u: %.0f%s", i + 1,
					(double)res[i].ios / secs,
					i % 8 == 7 ? "\n" : "  ");
		ratio[run] = base.total[run] > 0 ? all.total[run] / base.total[run] : 0;
	}
	/* --restart: a crash and a clean stop under load, alternated */
	for (run = 0; o.restart && run < o.runs && !rc; run++) {
		unsigned int k;

		for (k = 0; k < 2 && !rc; k++) {
			struct rstop *st = &rs[(run + k) % 2];
			uint64_t kill_ns, up_ns;
			double v[GUESTS_MAX];

			memset(&c, 0, sizeof(c));
			c.op = CMD_RUN;
			c.ms = 60000;	/* the limit: over once all are back */
			c.active = o.guests;
			c.start_ns = pvio_now_ns() + 50000000u;
			c.kill_ns = c.start_ns + 500000000u;
			rc = drivers_send(d, nd, &c);
			while (!rc && (kill_ns = pvio_now_ns()) < c.kill_ns)
				usleep((useconds_t)((c.kill_ns - kill_ns) / 1000u + 1));
			if (!rc)
				rc = bench_backd_restart(&bw, st->sig, &up_ns,
							 &st->abandoned[run]);
			/* up, and its re-attaches done: a second for everyone
			 * to be answered again, then the run ends */
			if (!rc) {
				struct gcmd stop = { .op = CMD_STOP };

				sleep(1);
				rc = drivers_send(d, nd, &stop);
			}
			if (!rc)
				rc = drivers_collect(d, nd, res);
			if (rc)
				break;
			st->up_s[run] = (double)(up_ns - kill_ns) / 1e9;
			for (i = 0; i < o.guests; i++)
				v[i] = res[i].gap_ms;
			st->gap[run] = bench_stat3(v, o.guests);
			st->gap_max[run] = st->gap[run].max;
		}
	}
	backd_usage(bw.backd, &rss2, &fds1, &t1);
	if (rc)
		fprintf(stderr, "pvio-bench: a run failed: %s\n", strerror(-rc));
out:
	c.op = CMD_EXIT;
	for (i = 0; i < nd; i++)
		bench_write(d[i].cmd_w, &c, sizeof(c));
	for (i = 0; i < nd; i++)
		waitpid(d[i].pid, NULL, 0);
	bench_world_down(&bw);
	unlink(img);
	if (o.noisy)
		unlink(img_w);
	if (rc)
		return 1;

	{
		double conn_s = (double)(c1 - a0) / 1e9;
		double idle_pct = 100.0 * (double)tk / 3e9;
		double rat = 0, qa = 0, qf = 0, worst = 0, rratio = 0;
		struct { double up, min, med, max, maxmed; unsigned int ab; } rsum[2];
		struct bench_stat3 st;

		if (o.noisy) {
			double v[GUESTS_MAX];

			for (i = 1; i < o.guests; i++) {
				double r = qp99_alone[i] > 0 ? qp99_flood[i] / qp99_alone[i] : 0;

				if (r > worst)
					worst = r;
				v[i - 1] = qp99_alone[i];
			}
			qa = bench_stat3(v, o.guests - 1).med;
			for (i = 1; i < o.guests; i++)
				v[i - 1] = qp99_flood[i];
			qf = bench_stat3(v, o.guests - 1).med;
		} else {
			rat = bench_stat3(ratio, o.runs).med;
		}
		for (i = 0; o.restart && i < 2; i++) {
			double v[32];
			unsigned int r;

			rsum[i].up = bench_stat3(rs[i].up_s, o.runs).med;
			rsum[i].min = rs[i].gap[0].min;
			rsum[i].max = 0;
			for (r = 0; r < o.runs; r++) {
				v[r] = rs[i].gap[r].med;
				if (rs[i].gap[r].min < rsum[i].min)
					rsum[i].min = rs[i].gap[r].min;
				if (rs[i].gap[r].max > rsum[i].max)
					rsum[i].max = rs[i].gap[r].max;
			}
			rsum[i].med = bench_stat3(v, o.runs).med;
			rsum[i].ab = 0;
			for (r = 0; r < o.runs; r++)
				if (rs[i].abandoned[r] > rsum[i].ab)
					rsum[i].ab = rs[i].abandoned[r];
			rsum[i].maxmed = bench_stat3(rs[i].gap_max, o.runs).med;
		}
		if (o.restart && rsum[1].maxmed > 0)
			rratio = rsum[0].maxmed / rsum[1].maxmed;
		st = bench_stat3(base.total, o.runs);
		base.total_med = st.med;
		st = bench_stat3(all.total, o.runs);
		all.total_med = st.med;
		if (o.json) {
			printf("{\"benchmark\": \"pvio-bench blk --guests\", \"guests\": %u, "
			       "\"vif\": %s, \"workers\": %u, \"qd\": %u, \"time_ms\": %u, "
			       "\"runs\": %u, \"grants\": \"%s\",\n \"connect\": {\"attach_s\": %.3f, "
			       "\"all_connected_s\": %.3f, \"backd_rss_mb\": %.1f, "
			       "\"backd_rss_idle_start_mb\": %.1f, \"backd_fds\": %u, "
			       "\"backd_idle_cpu_pct\": %.2f},\n",
			       o.guests, o.vif ? "true" : "false", o.workers, o.qd, o.ms,
			       o.runs, o.copy ? "copy" : "map", (double)(a1 - a0) / 1e9,
			       conn_s, rss1 / 1024.0, rss0 / 1024.0, fds1, idle_pct);
			if (o.noisy)
				printf(" \"noisy\": {\"quiet_p99_us_alone\": %.2f, "
				       "\"quiet_p99_us_flood\": %.2f, \"worst_ratio\": %.3f, "
				       "\"quiet_iops_flood\": %.0f}}\n", qa, qf, worst,
				       all.total_med);
			else
				printf(" \"base\": {\"guests\": %u, \"iops\": %.0f, \"spread_pct\": %.1f},\n"
				       " \"all\": {\"guests\": %u, \"iops\": %.0f, \"guest_min\": %.0f, "
				       "\"guest_median\": %.0f, \"guest_max\": %.0f, "
				       "\"spread_pct\": %.1f},\n \"ratio\": %.3f, "
				       "\"backd_rss_after_mb\": %.1f",
				       o.base, base.total_med, base.worst_spread, o.guests,
				       all.total_med, all.g_min, all.g_med, all.g_max,
				       all.worst_spread, rat, rss2 / 1024.0);
			if (o.restart) {
				printf(",\n \"restart\": {\"qd\": %u", o.qd);
				for (i = 0; i < 2; i++)
					printf(", \"%s\": {\"up_s\": %.3f, \"outage_ms_min\": %.1f, "
					       "\"outage_ms_median\": %.1f, \"outage_ms_max\": %.1f, "
					       "\"abandoned\": %u}",
					       rs[i].sig == SIGKILL ? "kill" : "term", rsum[i].up,
					       rsum[i].min, rsum[i].med, rsum[i].max, rsum[i].ab);
				printf(", \"ratio_max\": %.3f}", rratio);
			}
			printf("}\n");
			return 0;
		}
		printf("pvio-bench blk --guests %u: sim domUs (%u per driver process, CPU 0), "
		       "each a vbd%s,\n-> pvio-backd (%u worker%s, CPU 1, grants %s) -> one "
		       "cached %llu MiB file in %s\n",
		       o.guests, PER_DRIVER, o.vif ? " and a vif" : "", o.workers,
		       o.workers > 1 ? "s" : "", o.copy ? "copied" : "mapped",
		       (unsigned long long)(o.size >> 20), img_dir);
		printf("connect: %u guests Connected %.2f s after the first attach "
		       "(attach took %.2f s)\npvio-backd: RSS %.1f MB (%.1f MB at start), "
		       "%u fds, idle CPU %.2f%% of a core (3 s, all connected)\n",
		       o.guests, conn_s, (double)(a1 - a0) / 1e9, rss1 / 1024.0,
		       rss0 / 1024.0, fds1, idle_pct);
		if (o.noisy) {
			printf("noisy neighbour: guest 1 writes 4 KiB at QD 128 beside 7 "
			       "guests reading 4 KiB at QD 1, one worker;\n%u ms x %u runs\n",
			       o.ms, o.runs);
			printf("%-28s | %10s\n", "quiet guests' p99 (median)", "us");
			printf("%-28s | %10.1f\n", "alone", qa);
			printf("%-28s | %10.1f\n", "beside the flood", qf);
			printf("worst quiet guest's p99 ratio (flood/alone): %.2fx\n", worst);
			return 0;
		}
		printf("4 KiB random reads, QD %u per guest; %u ms x %u runs alternating; "
		       "ratio = median of (all / first %u) pairs\n", o.qd, o.ms, o.runs, o.base);
		printf("%-10s | %11s | %9s %9s %9s | %8s\n", "guests", "total IOPS",
		       "min", "median", "max", "spread");
		printf("%-10u | %11.0f | %9.0f %9.0f %9.0f | %7.1f%%\n", o.base,
		       base.total_med, base.g_min, base.g_med, base.g_max, base.worst_spread);
		printf("%-10u | %11.0f | %9.0f %9.0f %9.0f | %7.1f%%\n", o.guests,
		       all.total_med, all.g_min, all.g_med, all.g_max, all.worst_spread);
		printf("ratio %u/%u guests: %.2fx; spread = the largest distance of a guest "
		       "from the mean (worst run)\n", o.guests, o.base, rat);
		if (o.restart) {
			printf("restart under load: every guest reading (QD %u), pvio-backd stopped "
			       "and started again\n(same arguments), %u runs each, alternated; "
			       "outage = the longest time a guest\nwent without a completion "
			       "(min and max over guests and runs, median of the runs' medians)\n",
			       o.qd, o.runs);
			printf("%-17s | %12s | %9s %9s %9s | %9s\n", "stop", "up again s",
			       "min ms", "median", "max", "abandoned");
			for (i = 0; i < 2; i++)
				printf("%-17s | %12.2f | %9.1f %9.1f %9.1f | %9u\n",
				       rs[i].name, rsum[i].up, rsum[i].min, rsum[i].med,
				       rsum[i].max, rsum[i].ab);
			printf("ratio crash/clean (median of the runs' longest outages): %.2fx\n",
			       rratio);
		}
	}
	return 0;
}
