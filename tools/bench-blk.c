// SPDX-License-Identifier: MIT
/*
 * pvio-bench blk: a sim domU's blkfront -> pvio-backd -> a file on tmpfs
 * (or in the page cache), against the same workload issued directly with
 * io_uring on the same file from one process: the cost of storage with no
 * virtualization. With --target an NBD export or an RBD image instead,
 * against the field's own client doing the same I/O from one process
 * (fio --ioengine=nbd / rbd, same block size and queue depth). Runs alternate (pvio, baseline, pvio, ...) and each
 * ratio is the median of the pairs' ratios. The baseline runs on the CPU
 * pvio-backd has (CPU 1), the guest on CPU 0.
 *
 * --journal-cost: the baseline is a second world whose pvio-backd keeps no
 * in-flight records (--no-journal), driven by its own guest, alternating
 * with the first: the cost of crash recovery.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <liburing.h>

#include <pvio/blkfront.h>
#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "bench.h"
#include "guard.h"
#include "toolstack.h"

struct workload {
	const char *name;
	bool write, random;
	unsigned int bs, qd;
	bool named;		/* run only when --load names it */
};

static const struct workload loads[] = {
	{ "randread-4k-qd1", false, true, 4096, 1, false },
	{ "randread-4k-qd32", false, true, 4096, 32, false },
	{ "randread-4k-qd128", false, true, 4096, 128, false },
	{ "randwrite-4k-qd1", true, true, 4096, 1, false },
	{ "randwrite-4k-qd32", true, true, 4096, 32, false },
	{ "randwrite-4k-qd128", true, true, 4096, 128, false },
	{ "seqread-128k-qd16", false, false, 131072, 16, false },
	{ "seqwrite-128k-qd16", true, false, 131072, 16, false },
	/* indirect requests (256 segments) */
	{ "seqread-1m-qd4", false, false, 1u << 20, 4, true },
	{ "seqwrite-1m-qd4", true, false, 1u << 20, 4, true },
};
#define NR_LOADS (sizeof(loads) / sizeof(loads[0]))

struct run_result {
	int error;
	uint64_t ios, ns;
	uint64_t notifies;	/* sent by the frontend (pvio) */
	uint32_t nlat;
	uint32_t lat[];		/* ns, sampled */
};

#define MAX_LAT 200000u

struct gen {
	uint64_t rng, next, blocks;
	const struct workload *w;
};

static uint64_t gen_off(struct gen *g)
{
	uint64_t b;

	if (g->w->random) {
		g->rng ^= g->rng << 13;
		g->rng ^= g->rng >> 7;
		g->rng ^= g->rng << 17;
		b = g->rng % g->blocks;
	} else {
		b = g->next++ % g->blocks;
	}
	return b * g->w->bs;
}

/* ---- the guest side: blkfront ------------------------------------------------------ */

struct fjob {
	struct pvio_blkfront_io io;
	uint64_t t0;
	bool busy;
};

static struct run_result *res_g;
static uint64_t deadline_g;

static void fjob_done(struct pvio_blkfront_io *io, int r)
{
	struct fjob *j = io->user_data;
	uint64_t t = pvio_now_ns();

	j->busy = false;
	if (r) {
		res_g->error = r;
		return;
	}
	res_g->ios++;
	if (res_g->nlat < MAX_LAT)
		res_g->lat[res_g->nlat++] = (uint32_t)(t - j->t0);
}

static void front_run(struct pvio_blkfront_queue *q, const struct workload *w,
		      uint64_t size, uint64_t dur_ns, struct run_result *r,
		      char *bufs)
{
	struct fjob *jobs = calloc(w->qd, sizeof(*jobs));
	struct pvio_blkfront_queue_stats s0, s1;
	struct gen g = { .rng = 88172645463325252ull, .blocks = size / w->bs, .w = w };
	uint64_t t0;
	unsigned int i;

	res_g = r;
	pvio_blkfront_queue_stats(q, &s0);
	t0 = pvio_now_ns();
	deadline_g = t0 + dur_ns;
	for (;;) {
		uint64_t now = pvio_now_ns();
		bool more = now < deadline_g && !r->error;
		unsigned int busy = 0;

		for (i = 0; i < w->qd; i++) {
			struct fjob *j = &jobs[i];

			if (j->busy) {
				busy++;
				continue;
			}
			if (!more)
				continue;
			j->io.op = w->write ? PVIO_BLKFRONT_OP_WRITE
					    : PVIO_BLKFRONT_OP_READ;
			j->io.len = w->bs;
			j->io.offset = gen_off(&g);
			j->io.buf = bufs + (size_t)i * w->bs;
			j->io.done = fjob_done;
			j->io.user_data = j;
			j->t0 = now;
			if (pvio_blkfront_prep(q, &j->io) == 0) {
				j->busy = true;
				busy++;
			}
		}
		if (!busy)
			break;
		pvio_blkfront_submit(q);
		if (pvio_blkfront_wait(q, 1, 2000) < 0 && !r->error)
			r->error = -EIO;
	}
	r->ns = pvio_now_ns() - t0;
	pvio_blkfront_queue_stats(q, &s1);
	r->notifies = s1.notifies - s0.notifies;
	free(jobs);
}

/* ---- the baseline: io_uring on the file, one process -------------------------------- */

static void base_run(int fd, const struct workload *w, uint64_t size,
		     uint64_t dur_ns, struct run_result *r, char *bufs)
{
	struct io_uring ring;
	struct gen g = { .rng = 88172645463325252ull, .blocks = size / w->bs, .w = w };
	uint64_t *t0s = calloc(w->qd, sizeof(*t0s)), start, deadline;
	unsigned int inflight = 0, i;

	if (io_uring_queue_init(256, &ring, 0)) {
		r->error = -EIO;
		free(t0s);
		return;
	}
	start = pvio_now_ns();
	deadline = start + dur_ns;
	for (i = 0; i < w->qd; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		if (w->write)
			io_uring_prep_write(sqe, fd, bufs + (size_t)i * w->bs, w->bs,
					    gen_off(&g));
		else
			io_uring_prep_read(sqe, fd, bufs + (size_t)i * w->bs, w->bs,
					   gen_off(&g));
		io_uring_sqe_set_data64(sqe, i);
		t0s[i] = pvio_now_ns();
		inflight++;
	}
	while (inflight) {
		struct io_uring_cqe *cqe;
		unsigned int head, n = 0;
		uint64_t now;

		io_uring_submit_and_wait(&ring, 1);
		now = pvio_now_ns();
		io_uring_for_each_cqe(&ring, head, cqe) {
			unsigned int k = (unsigned int)io_uring_cqe_get_data64(cqe);

			n++;
			inflight--;
			if (cqe->res != (int)w->bs) {
				r->error = cqe->res < 0 ? cqe->res : -EIO;
				continue;
			}
			r->ios++;
			if (r->nlat < MAX_LAT)
				r->lat[r->nlat++] = (uint32_t)(now - t0s[k]);
			if (now < deadline && !r->error) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

				if (w->write)
					io_uring_prep_write(sqe, fd, bufs + (size_t)k * w->bs,
							    w->bs, gen_off(&g));
				else
					io_uring_prep_read(sqe, fd, bufs + (size_t)k * w->bs,
							   w->bs, gen_off(&g));
				io_uring_sqe_set_data64(sqe, k);
				t0s[k] = now;
				inflight++;
			}
		}
		io_uring_cq_advance(&ring, n);
	}
	r->ns = pvio_now_ns() - start;
	io_uring_queue_exit(&ring);
	free(t0s);
}

/* ---- orchestration --------------------------------------------------------------------- */

struct blk_opts {
	uint64_t size;
	unsigned int ms, runs;
	const char *dir;
	bool json;
	bool copy;		/* grant copy instead of mapped persistent grants */
	bool pool;		/* guest buffers copied through blkfront's pool */
	unsigned int only;	/* bitmask of loads, 0: the default ones */
	unsigned int spin_us;
	bool jcost;		/* baseline: pvio-backd --no-journal */
	const char *target;	/* remote: an NBD URI or rbd:POOL/IMAGE */
	const char *base;	/* fio's target (default: the same) */
	bool busy0;		/* the baseline beside a busy CPU 0 */
};

/* Is load @li run: named by --load, or by default if none is. */
static bool load_on(const struct blk_opts *o, unsigned int li)
{
	return o->only ? o->only & (1u << li) : !loads[li].named;
}

/* ---- the remote baseline: fio with the engine's own client ---------------------------- */

/*
 * The number after "KEY" : inside the JSON object that follows @section
 * ("read" or "write") in fio's output; 0 if absent.
 */
static double fio_num(const char *json, const char *section, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\" : {", section);
	p = strstr(json, pat);
	if (!p)
		return 0;
	snprintf(pat, sizeof(pat), "\"%s\" : ", key);
	p = strstr(p, pat);
	return p ? strtod(p + strlen(pat), NULL) : 0;
}

/* fio's clat percentile @pct ("50.000000") of @section, in us */
static double fio_pct(const char *json, const char *section, const char *pct)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\" : {", section);
	p = strstr(json, pat);
	if (p)
		p = strstr(p, "\"clat_ns\"");
	if (!p)
		return 0;
	snprintf(pat, sizeof(pat), "\"%s\" : ", pct);
	p = strstr(p, pat);
	return p ? strtod(p + strlen(pat), NULL) / 1e3 : 0;
}

/*
 * --base-busy-cpu0: a process that keeps CPU 0 (the guest's) busy while
 * the baseline runs, as the guest's polling blkfront keeps it in pvio's
 * runs (pause instructions, as its poll loop). On a host whose two vCPUs
 * slow each other (docs/benchmarks.md) this is the baseline's share of
 * that cost; the default baseline runs with CPU 0 idle.
 */
static pid_t busy_cpu0(void)
{
	pid_t pid = pvio_guard_fork();	/* not one moment beyond pvio-bench */

	if (pid == 0) {
		bench_pin(0);
		for (;;)
			pvio_cpu_relax();
	}
	return pid;
}

/*
 * One fio run of @w against o->base (or o->target), pinned to pvio-backd's
 * CPU. IOPS into r (ios over ns), its percentiles (us) into p50 and p99.
 */
static void fio_run(const struct blk_opts *o, const struct workload *w,
		    struct run_result *r, double *p50, double *p99)
{
	const char *t = o->base ? o->base : o->target;
	char a_out[64], a_rw[32], a_bs[32], a_qd[32], a_rt[32], a_size[48];
	char a_eng[64], a_1[4200], a_2[600], a_3[300], conf[4200];
	char *argv[24], json[65536];
	const char *sec = w->write ? "write" : "read";
	unsigned int n = 0;
	ssize_t len;
	pid_t pid, busy;
	int fd, st = 0, rc;

	/* fio's report, in memory: a file would outlive a killed run (one
	 * in /tmp did, before) */
	fd = memfd_create("pvio-bench-fio", MFD_CLOEXEC);
	if (fd < 0) {
		r->error = -errno;
		return;
	}
	conf[0] = 0;
	argv[n++] = "fio";
	argv[n++] = "--name=baseline";
	argv[n++] = "--output-format=json";
	snprintf(a_out, sizeof(a_out), "--output=/proc/self/fd/%d", fd);
	argv[n++] = a_out;
	if (!strncmp(t, "rbd:", 4)) {
		char spec[4096], *img, *opt;

		snprintf(spec, sizeof(spec), "%s", t + 4);
		opt = strchr(spec, ':');
		if (opt) {
			*opt++ = 0;
			if (!strncmp(opt, "conf=", 5))
				snprintf(conf, sizeof(conf), "%s", opt + 5);
		}
		img = strchr(spec, '/');
		if (!img) {
			r->error = -EINVAL;
			goto out;
		}
		*img++ = 0;
		snprintf(a_eng, sizeof(a_eng), "--ioengine=rbd");
		snprintf(a_1, sizeof(a_1), "--pool=%s", spec);
		snprintf(a_2, sizeof(a_2), "--rbdname=%s", img);
		snprintf(a_3, sizeof(a_3), "--clientname=admin");
	} else {
		snprintf(a_eng, sizeof(a_eng), "--ioengine=nbd");
		snprintf(a_1, sizeof(a_1), "--uri=%s", t);
		a_2[0] = a_3[0] = 0;
	}
	argv[n++] = a_eng;
	argv[n++] = a_1;
	if (a_2[0])
		argv[n++] = a_2;
	if (a_3[0])
		argv[n++] = a_3;
	snprintf(a_rw, sizeof(a_rw), "--rw=%s%s", w->random ? "rand" : "",
		 w->write ? "write" : "read");
	snprintf(a_bs, sizeof(a_bs), "--bs=%u", w->bs);
	snprintf(a_qd, sizeof(a_qd), "--iodepth=%u", w->qd);
	snprintf(a_rt, sizeof(a_rt), "--runtime=%ums", o->ms);
	snprintf(a_size, sizeof(a_size), "--size=%llu", (unsigned long long)o->size);
	argv[n++] = a_rw;
	argv[n++] = a_bs;
	argv[n++] = a_qd;
	argv[n++] = a_rt;
	argv[n++] = a_size;
	argv[n++] = "--time_based";
	argv[n++] = "--norandommap";
	argv[n++] = "--randrepeat=0";
	/* the job a thread of fio's, which dies with pvio-bench: a job
	 * process, its own session, outlived a killed run waiting for fio's
	 * main process to start it */
	argv[n++] = "--thread";
	argv[n++] = NULL;
	fflush(NULL);
	busy = o->busy0 ? busy_cpu0() : 0;
	if (busy < 0) {
		r->error = -errno;
		fprintf(stderr, "pvio-bench: cannot start the CPU 0 load: %s\n", strerror(errno));
		goto out;
	}
	pid = pvio_guard_fork();
	if (pid == 0) {
		bench_pin(1);
		/* librbd as pvio-backd runs it: no write-back cache */
		setenv("CEPH_ARGS", "--rbd_cache=false", 1);
		if (conf[0])
			setenv("CEPH_CONF", conf, 1);
		fcntl(fd, F_SETFD, 0);	/* fio's, through /proc/self/fd */
		execvp("fio", argv);
		_exit(127);
	}
	rc = pid < 0 ? -1 : waitpid(pid, &st, 0);
	if (busy > 0) {
		kill(busy, SIGKILL);
		waitpid(busy, NULL, 0);
	}
	if (rc < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
		fprintf(stderr, "pvio-bench: fio failed (installed?)\n");
		r->error = -EIO;
		goto out;
	}
	len = pread(fd, json, sizeof(json) - 1, 0);
	if (len <= 0) {
		r->error = -EIO;
		goto out;
	}
	json[len] = 0;
	r->ios = (uint64_t)(fio_num(json, sec, "iops") * 1000.0);
	r->ns = 1000000000000ull;	/* iops x 1000 over 1000 s: 3 decimals */
	*p50 = fio_pct(json, sec, "50.000000");
	*p99 = fio_pct(json, sec, "99.000000");
	if (!r->ios)
		r->error = -EIO;
out:
	close(fd);
}


static size_t res_size(void)
{
	return sizeof(struct run_result) + sizeof(uint32_t) * MAX_LAT;
}

/*
 * The guest's queue: 128 slots of blkfront's default 32 segments (as
 * Linux's); for loads with larger requests, slots as large as they are,
 * so that a request goes in one piece, and as many as the deepest load
 * needs (each slot has its own pages).
 */
#define GUEST_POOL_PAGES	4096u
static void guest_geometry(const struct blk_opts *o, unsigned int *depth,
			   unsigned int *segs)
{
	unsigned int li;

	*depth = *segs = 0;
	for (li = 0; li < NR_LOADS; li++) {
		if (!load_on(o, li))
			continue;
		if (loads[li].qd > *depth)
			*depth = loads[li].qd;
		if (loads[li].bs / PVIO_PAGE_SIZE > *segs)
			*segs = loads[li].bs / PVIO_PAGE_SIZE;
	}
	if (*segs <= 32) {
		*depth = 128;
		*segs = 0;		/* blkfront's default */
	}
}

/* The guest: attach, open xvda, run every requested (workload, run) that
 * the parent asks for on the command pipe, answer on the result pipe. */
static void guest_proc(struct bench_world *bw, unsigned int domid,
		       const struct blk_opts *o, int cmd_r, int res_w)
{
	struct pvio_blkfront_opts fo = { .max_queues = 1 };
	struct pvio_platform *p = NULL;
	struct pvio_blkfront *dev = NULL;
	struct pvio_blkfront_queue *q;
	struct pvio_xs *x = NULL;
	struct run_result *r = malloc(res_size());
	char err[PVIO_BLKFRONT_ERR_MAX], *bufs;
	unsigned int li;
	int rc;

	guest_geometry(o, &fo.queue_depth, &fo.max_indirect_segments);
	bench_pin(0);
	rc = pvio_platform_open(&p, bw->spec, domid, 0);
	if (!rc)
		rc = pvio_xs_open(&x, p);
	if (!rc)
		rc = pvio_blkfront_open(&dev, p, x, 51712, &fo, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "pvio-bench: guest: %s\n", rc ? err : "");
		memset(r, 0, sizeof(*r));
		r->error = rc;
		bench_write(res_w, r, sizeof(*r));
		_exit(1);
	}
	q = pvio_blkfront_queue(dev, 0);
	pvio_blkfront_queue_set_spin(q, (uint64_t)o->spin_us * 1000u);
	/* qd x bs <= 4 MiB for every workload: one granted buffer holds all
	 * the requests' data, which then goes in place */
	if (o->pool) {
		bufs = aligned_alloc(4096, PVIO_BLKFRONT_BUF_MAX);
		rc = bufs ? 0 : -ENOMEM;
	} else {
		rc = pvio_blkfront_buf_alloc(q, PVIO_BLKFRONT_BUF_MAX, (void **)&bufs);
	}
	if (rc) {
		fprintf(stderr, "pvio-bench: guest: buffers: %s\n", strerror(-rc));
		memset(r, 0, sizeof(*r));
		r->error = rc;
		bench_write(res_w, r, sizeof(*r));
		_exit(1);
	}
	memset(bufs, 0x5a, PVIO_BLKFRONT_BUF_MAX);
	while (bench_read(cmd_r, &li, sizeof(li)) == 0 && li < NR_LOADS) {
		memset(r, 0, sizeof(*r));
		front_run(q, &loads[li], o->size, (uint64_t)o->ms * 1000000u, r, bufs);
		bench_write(res_w, r, sizeof(*r) + sizeof(uint32_t) * r->nlat);
	}
	pvio_blkfront_close(dev);
	pvio_xs_close(x);
	pvio_platform_close(p);
	_exit(0);
}

static int recv_result(int fd, struct run_result *r)
{
	if (bench_read(fd, r, sizeof(*r)))
		return -EIO;
	if (r->nlat > MAX_LAT)
		return -EPROTO;
	return bench_read(fd, r->lat, sizeof(uint32_t) * r->nlat);
}

struct point {
	double iops[32], base_iops[32], ratio[32];
	double mbs, base_mbs;
	struct bench_stat3 s_iops, s_base;
	double p50, p99, bp50, bp99;
	double notif_per_req;
	double ratio_med;
};

/* Fork a guest for world @bw; its command and result pipes. */
static pid_t guest_start(struct bench_world *bw, unsigned int domid,
			 const struct blk_opts *o, int cmd[2], int res[2])
{
	pid_t pid;

	if (pipe(cmd) || pipe(res))
		return -1;
	fflush(NULL);
	pid = pvio_guard_fork();
	if (pid == 0) {
		close(cmd[1]);
		close(res[0]);
		guest_proc(bw, domid, o, cmd[0], res[1]);
	}
	close(cmd[0]);
	close(res[1]);
	return pid;
}

int bench_blk(int argc, char **argv)
{
	struct blk_opts o = { .size = 1ull << 30, .ms = 1000, .runs = 3,
			      .spin_us = 50 };
	struct bench_world bw, bw2;
	struct point pts[NR_LOADS];
	struct run_result *rp = NULL, *rb = NULL;
	int cmd[2], res[2], cmd2[2], res2[2], fd, i, rc;
	unsigned int li, run, domid = 1, depth, segs;
	pid_t guest, guest2 = -1;
	char img[PVIO_PATH_BUF], img2[PVIO_PATH_BUF + 8] = "";
	int fd2 = -1;
	char *bufs = NULL;
	bool size_given = false;
	int ret = 1;
	double fp50 = 0, fp99 = 0;

	for (i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--guests") || !strcmp(argv[i], "--noisy"))
			return bench_guests(argc, argv);
	memset(pts, 0, sizeof(pts));
	/* the page cache of a disk file system: there io_uring serves cached
	 * reads inline (tmpfs reads go through io-wq on 6.x kernels) */
	o.dir = "/var/tmp";
	for (i = 1; i < argc; i++) {
		if (bench_opt_common(argc, argv, &i, &o.ms, &o.runs, &o.spin_us,
				     &o.json))
			continue;
		if (!strcmp(argv[i], "--size") && i + 1 < argc) {
			if (pvio_parse_size(argv[++i], &o.size) || o.size < (1u << 24) ||
			    o.size % 131072)
				pvio_usage_error("pvio-bench", "bad --size '%s' (16M.., 128K multiple)",
						 argv[i]);
			size_given = true;
		} else if (!strcmp(argv[i], "--copy")) {
			o.copy = true;
		} else if (!strcmp(argv[i], "--pool")) {
			o.pool = true;
		} else if (!strcmp(argv[i], "--journal-cost")) {
			o.jcost = true;
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			o.dir = argv[++i];
		} else if (!strcmp(argv[i], "--target") && i + 1 < argc) {
			o.target = argv[++i];
			if (strncmp(o.target, "rbd:", 4) && strncmp(o.target, "nbd:", 4) &&
			    strncmp(o.target, "nbd+unix:", 9))
				pvio_usage_error("pvio-bench", "bad --target '%s' (nbd://..., nbd+unix://..., rbd:POOL/IMAGE)",
						 o.target);
		} else if (!strcmp(argv[i], "--base") && i + 1 < argc) {
			o.base = argv[++i];
		} else if (!strcmp(argv[i], "--base-busy-cpu0")) {
			o.busy0 = true;
		} else if (!strcmp(argv[i], "--load") && i + 1 < argc) {
			for (li = 0; li < NR_LOADS; li++)
				if (!strcmp(argv[i + 1], loads[li].name))
					break;
			if (li == NR_LOADS)
				pvio_usage_error("pvio-bench", "no workload '%s'", argv[i + 1]);
			o.only |= 1u << li;
			i++;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			bench_usage(stdout);
			exit(0);
		} else {
			pvio_usage_error("pvio-bench", "blk: unknown option '%s'", argv[i]);
		}
	}
	guest_geometry(&o, &depth, &segs);
	if (segs && depth * segs > GUEST_POOL_PAGES)
		pvio_usage_error("pvio-bench", "1 MiB loads go without the QD 32 and 128 ones: the guest's pages would pass %u MiB",
				 GUEST_POOL_PAGES / 256);
	if ((o.base || o.busy0) && !o.target)
		pvio_usage_error("pvio-bench", "%s goes with --target",
				 o.base ? "--base" : "--base-busy-cpu0");
	if (o.target && !size_given)
		pvio_usage_error("pvio-bench", "--target needs --size (at most the target's)");
	if (o.target && (o.pool || o.jcost))
		pvio_usage_error("pvio-bench", "--pool and --journal-cost are for file targets");
	/* after the command line: its errors exit, and a sanitizer build's
	 * leak check would count what only a local pointed at */
	rp = malloc(res_size());
	rb = malloc(res_size());
	bufs = aligned_alloc(4096, 128u * 131072u);
	memset(bufs, 0xa5, 128u * 131072u);
	if (o.target) {
		fd = -1;
		snprintf(img, sizeof(img), "%s", o.target);
		goto attach;
	}
	snprintf(img, sizeof(img), "%s/pvio-bench-%d.img", o.dir, (int)getpid());
	fd = pvio_guard_create(img, 0600);
	if (fd < 0) {
		fprintf(stderr, "pvio-bench: cannot create %s: %s\n", img, strerror(-fd));
		goto out;
	}
	/* real data, in memory: no holes, no disk */
	for (uint64_t off = 0; off < o.size; off += 1u << 20)
		if (pwrite(fd, bufs, 1u << 20, (off_t)off) != 1 << 20) {
			fprintf(stderr, "pvio-bench: cannot fill %s\n", img);
			unlink(img);
			goto out;
		}
attach:
	rc = bench_world_up(&bw, o.spin_us, !o.copy);
	if (!rc)
		rc = bench_attach_vbd(&bw, domid, img);
	if (!rc && o.jcost) {
		/* its own image: pvio-backd locks a writable target */
		snprintf(img2, sizeof(img2), "%s.2", img);
		fd2 = pvio_guard_create(img2, 0600);
		for (uint64_t off = 0; fd2 >= 0 && off < o.size; off += 1u << 20)
			if (pwrite(fd2, bufs, 1u << 20, (off_t)off) != 1 << 20)
				rc = -EIO;
		if (fd2 < 0)
			rc = fd2;
	}
	if (!rc && o.jcost) {
		rc = bench_world_up_opt(&bw2, o.spin_us, !o.copy, 1, "--no-journal");
		if (!rc)
			rc = bench_attach_vbd(&bw2, domid, img2);
	}
	if (rc) {
		if (!o.target)
			unlink(img);
		if (fd2 >= 0)
			unlink(img2);
		bench_world_down(&bw);
		if (o.jcost)
			bench_world_down(&bw2);
		goto out;
	}
	guest = guest_start(&bw, domid, &o, cmd, res);
	if (o.jcost)
		guest2 = guest_start(&bw2, domid, &o, cmd2, res2);
	if (guest < 0 || (o.jcost && guest2 < 0))
		goto out;	/* the guard stops the worlds */
	bench_pin(0);
	rc = 0;
	for (li = 0; li < NR_LOADS && !rc; li++) {
		const struct workload *w = &loads[li];
		struct point *pt = &pts[li];
		double nsum = 0, reqs = 0;
		uint32_t *lp = NULL, *lb = NULL;
		uint32_t nlp = 0, nlb = 0;

		if (!load_on(&o, li))
			continue;
		for (run = 0; run < o.runs && !rc; run++) {
			uint64_t bn0 = bench_backd_notifies(&bw), bn1;

			if (bench_write(cmd[1], &li, sizeof(li)) || recv_result(res[0], rp) ||
			    rp->error) {
				fprintf(stderr, "pvio-bench: %s: the guest failed (%s)\n", w->name,
					strerror(rp->error ? -rp->error : EIO));
				rc = 1;
				break;
			}
			bn1 = bench_backd_notifies(&bw);
			memset(rb, 0, sizeof(*rb));
			if (o.jcost) {
				/* the same guest I/O, no in-flight records */
				if (bench_write(cmd2[1], &li, sizeof(li)) ||
				    recv_result(res2[0], rb) || rb->error)
					rb->error = rb->error ? rb->error : -EIO;
			} else if (o.target) {
				fio_run(&o, w, rb, &fp50, &fp99);
			} else {
				/* on pvio-backd's CPU: the same core does the I/O */
				bench_pin(1);
				base_run(fd, w, o.size, (uint64_t)o.ms * 1000000u, rb,
					 bufs);
				bench_pin(0);
			}
			if (rb->error) {
				fprintf(stderr, "pvio-bench: %s: baseline: %s\n", w->name,
					strerror(-rb->error));
				rc = 1;
				break;
			}
			pt->iops[run] = (double)rp->ios / ((double)rp->ns / 1e9);
			pt->base_iops[run] = (double)rb->ios / ((double)rb->ns / 1e9);
			pt->ratio[run] = pt->iops[run] / pt->base_iops[run];
			nsum += (double)(rp->notifies + (bn1 - bn0));
			reqs += (double)rp->ios;
			if (run == o.runs - 1) {	/* latency of the last pair */
				lp = malloc(sizeof(uint32_t) * rp->nlat);
				memcpy(lp, rp->lat, sizeof(uint32_t) * rp->nlat);
				nlp = rp->nlat;
				lb = malloc(sizeof(uint32_t) * rb->nlat);
				memcpy(lb, rb->lat, sizeof(uint32_t) * rb->nlat);
				nlb = rb->nlat;
			}
		}
		if (rc)
			break;
		pt->s_iops = bench_stat3(pt->iops, o.runs);
		pt->s_base = bench_stat3(pt->base_iops, o.runs);
		pt->ratio_med = bench_stat3(pt->ratio, o.runs).med;
		pt->mbs = pt->s_iops.med * w->bs / 1e6;
		pt->base_mbs = pt->s_base.med * w->bs / 1e6;
		pt->notif_per_req = reqs ? nsum / reqs : 0;
		bench_percentiles(lp, nlp, &pt->p50, &pt->p99);
		bench_percentiles(lb, nlb, &pt->bp50, &pt->bp99);
		if (o.target) {	/* fio's own percentiles, last run */
			pt->bp50 = fp50;
			pt->bp99 = fp99;
		}
		free(lp);
		free(lb);
	}
	if (getenv("PVIO_BENCH_DEBUG")) {	/* pvio-backd's view */
		char c[4400];

		snprintf(c, sizeof(c), "%s/pvio-ctl -w %s stats --json >&2",
			 getenv("PVIO_BUILDDIR") ? getenv("PVIO_BUILDDIR") : ".", bw.dir);
		if (system(c) != 0)
			fprintf(stderr, "pvio-bench: no stats\n");
	}
	li = NR_LOADS;
	bench_write(cmd[1], &li, sizeof(li));
	waitpid(guest, NULL, 0);
	bench_world_down(&bw);
	if (o.jcost) {
		bench_write(cmd2[1], &li, sizeof(li));
		waitpid(guest2, NULL, 0);
		bench_world_down(&bw2);
	}
	if (fd2 >= 0) {
		close(fd2);
		unlink(img2);
	}
	if (fd >= 0) {
		close(fd);
		unlink(img);
	}
	if (rc)
		goto out;
	ret = 0;

	if (o.json) {
		bool first = true;

		printf("{\"benchmark\": \"pvio-bench blk\", \"target\": \"%s\", \"size\": %llu, "
		       "\"grants\": \"%s\", \"guest_buffers\": \"%s\", \"time_ms\": %u, "
		       "\"runs\": %u, %s\"results\": [",
		       o.target ? o.target : o.dir, (unsigned long long)o.size,
		       o.copy ? "copy" : "map",
		       o.pool ? "pool" : "granted", o.ms, o.runs,
		       !o.target ? "" : o.busy0 ? "\"baseline_cpu0\": \"busy\", "
					       : "\"baseline_cpu0\": \"idle\", ");
		for (li = 0; li < NR_LOADS; li++) {
			struct point *pt = &pts[li];

			if (!load_on(&o, li))
				continue;
			printf("%s\n  {\"workload\": \"%s\", \"pvio\": {\"iops\": %.0f, "
			       "\"iops_min\": %.0f, \"iops_max\": %.0f, \"mb_s\": %.1f, "
			       "\"p50_us\": %.2f, \"p99_us\": %.2f, \"notifications_per_request\": %.4f}, "
			       "\"%s\": {\"iops\": %.0f, \"mb_s\": %.1f, \"p50_us\": %.2f, "
			       "\"p99_us\": %.2f}, \"ratio\": %.3f}",
			       first ? "" : ",", loads[li].name, pt->s_iops.med, pt->s_iops.min,
			       pt->s_iops.max, pt->mbs, pt->p50, pt->p99, pt->notif_per_req,
			       o.jcost ? "baseline_no_journal" :
			       o.target ? "baseline_fio" : "baseline_io_uring",
			       pt->s_base.med, pt->base_mbs, pt->bp50, pt->bp99, pt->ratio_med);
			first = false;
		}
		printf("\n]}\n");
		goto out;
	}
	if (o.target)
		printf("pvio-bench blk: sim domU blkfront (buffers granted, in place) -> pvio-backd -> %s;\n"
		       "baseline: fio --ioengine=%s on %s, one process, same bs and iodepth%s;\n"
		       "%u ms x %u paired runs (%llu MiB range); ratio = median of pvio/baseline pairs\n",
		       o.target, strncmp(o.target, "rbd:", 4) ? "nbd" : "rbd",
		       o.base ? o.base : o.target,
		       o.busy0 ? ",\nCPU 0 (the guest's in pvio's runs) kept busy (--base-busy-cpu0)" : "",
		       o.ms, o.runs,
		       (unsigned long long)(o.size >> 20));
	else
		printf("pvio-bench blk: sim domU blkfront (buffers %s) -> pvio-backd (grants %s) -> "
		       "a file in %s,\ncached (%llu MiB); baseline: %s;\n%u ms x %u paired runs; "
		       "ratio = median of pvio/baseline pairs\n",
		       o.pool ? "copied through the pool" : "granted, in place",
		       o.copy ? "copied" : "mapped", o.dir, (unsigned long long)(o.size >> 20),
		       o.jcost ? "the same guest I/O through a pvio-backd --no-journal (in-flight "
				 "records off)"
			       : "io_uring on the same file, one process",
		       o.ms, o.runs);
	printf("%-20s | %10s %9s %17s %8s | %10s %9s %17s | %6s\n", "workload", "pvio IOPS",
	       "MB/s", "p50/p99 us", "notif/rq", "base IOPS", "MB/s", "p50/p99 us", "ratio");
	for (li = 0; li < NR_LOADS; li++) {
		struct point *pt = &pts[li];
		char a[32], b[32];

		if (!load_on(&o, li))
			continue;
		snprintf(a, sizeof(a), "%.1f/%.1f", pt->p50, pt->p99);
		snprintf(b, sizeof(b), "%.1f/%.1f", pt->bp50, pt->bp99);
		printf("%-20s | %10.0f %9.1f %17s %8.4f | %10.0f %9.1f %17s | %5.2fx\n",
		       loads[li].name, pt->s_iops.med, pt->mbs, a, pt->notif_per_req,
		       pt->s_base.med, pt->base_mbs, b, pt->ratio_med);
	}
	/* a sanitizer build's leak check runs at exit */
out:
	free(bufs);
	free(rp);
	free(rb);
	return ret;
}
