// SPDX-License-Identifier: MIT
/*
 * pvio-bench: block and network benchmarks of the whole PV path in a sim
 * world, each against a baseline without virtualization measured in the
 * same run.
 */
#include "config.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "guard.h"
#include "sim-toolstack.h"
#include "toolstack.h"
#include "world.h"

void bench_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0 || cpu >= CPU_SETSIZE)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

int bench_read(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		got += (size_t)n;
	}
	return 0;
}

int bench_write(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_u(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

struct bench_stat3 bench_stat3(double *v, unsigned int n)
{
	struct bench_stat3 s = { 0, 0, 0 };

	if (!n)
		return s;
	qsort(v, n, sizeof(*v), cmp_d);
	s.min = v[0];
	s.max = v[n - 1];
	s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return s;
}

void bench_percentiles(uint32_t *lat, uint32_t n, double *p50, double *p99)
{
	*p50 = *p99 = 0;
	if (!lat || !n)
		return;
	qsort(lat, n, sizeof(*lat), cmp_u);
	*p50 = lat[n / 2] / 1e3;
	*p99 = lat[(uint32_t)((uint64_t)n * 99 / 100)] / 1e3;
}

const char *bench_prog_path(const char *name, const char *env)
{
	static char p[PVIO_PATH_BUF];
	const char *e = env ? getenv(env) : NULL;
	char *slash;
	ssize_t n;

	if (e && *e)
		return e;
	n = readlink("/proc/self/exe", p, sizeof(p) - 64);
	if (n > 0) {
		p[n] = 0;
		slash = strrchr(p, '/');
		if (slash) {
			snprintf(slash + 1, 64, "%s", name);
			if (access(p, X_OK) == 0)
				return p;
		}
	}
	return name;
}

static const char *backd_path(void)
{
	return bench_prog_path("pvio-backd", "PVIO_BACKD");
}

int bench_world_up(struct bench_world *bw, unsigned int spin_us, bool grant_map)
{
	return bench_world_up_workers(bw, spin_us, grant_map, 1);
}

int bench_world_up_workers(struct bench_world *bw, unsigned int spin_us,
			   bool grant_map, unsigned int workers)
{
	return bench_world_up_opt(bw, spin_us, grant_map, workers, NULL);
}

/* pvio-backd on CPU 1, its log in the world's directory (appended to:
 * a restart's goes after the first's); 0 once its socket is there */
static int backd_start(struct bench_world *bw, bool append)
{
	char sock[4300];
	int i;

	snprintf(sock, sizeof(sock), "%s/backd.sock", bw->dir);
	unlink(sock);	/* a killed one's: not a sign of the new one */
	fflush(NULL);
	bw->backd = pvio_guard_fork();
	if (bw->backd == 0) {
		char logp[PVIO_PATH_BUF];
		const char *argv[16];
		FILE *f;
		int n = 0;

		/* its own orderly end, should pvio-bench end first */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		snprintf(logp, sizeof(logp), "%s/backd.log", bw->dir);
		f = freopen(logp, append ? "a" : "w", stderr);
		(void)f;
		bench_pin(1);
		argv[n++] = "pvio-backd";
		argv[n++] = "-p";
		argv[n++] = bw->spec;
		argv[n++] = "--workers";
		argv[n++] = bw->workers;
		argv[n++] = "--spin-us";
		argv[n++] = bw->spin;
		argv[n++] = "-l";
		argv[n++] = bw->grant_map && getenv("PVIO_BENCH_DEBUG") ? "debug" : "warn";
		if (bw->grant_map)
			argv[n++] = "--grant-map";
		if (bw->extra)
			argv[n++] = bw->extra;
		argv[n] = NULL;
		execv(backd_path(), (char *const *)argv);
		_exit(127);
	}
	/* a restart's re-attaches come first: 256 guests' take seconds */
	for (i = 0; i < 6000 && access(sock, F_OK); i++)
		usleep(5000);
	if (access(sock, F_OK)) {
		fprintf(stderr, "pvio-bench: pvio-backd (%s) did not start\n", backd_path());
		return -EIO;
	}
	return 0;
}

int bench_world_up_opt(struct bench_world *bw, unsigned int spin_us,
		       bool grant_map, unsigned int workers, const char *extra)
{
	int rc;

	memset(bw, 0, sizeof(*bw));
	snprintf(bw->dir, sizeof(bw->dir), "%s/pvio-bench.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	rc = pvio_guard_mkdtemp(bw->dir);
	if (rc)
		return rc;
	rc = pvio_world_start(bw->dir, NULL);
	if (rc) {
		fprintf(stderr, "pvio-bench: cannot start a sim world (%s): %s\n",
			pvio_world_simhv_path(), strerror(-rc));
		pvio_world_remove(bw->dir);
		return rc;
	}
	snprintf(bw->spec, sizeof(bw->spec), "sim:%s", bw->dir);
	rc = pvio_platform_open(&bw->dom0, bw->spec, 0, 0);
	if (!rc)
		rc = pvio_xs_open(&bw->xs, bw->dom0);
	if (rc)
		return rc;
	snprintf(bw->spin, sizeof(bw->spin), "%u", spin_us);
	snprintf(bw->workers, sizeof(bw->workers), "%u", workers);
	bw->grant_map = grant_map;
	bw->extra = extra;
	return backd_start(bw, false);
}

/* "stopped; N devices abandoned ..." in the log from @from on, or 0 */
static unsigned int log_abandoned(const struct bench_world *bw, long from)
{
	char p[PVIO_PATH_BUF], line[512];
	unsigned int n = 0;
	FILE *f;

	snprintf(p, sizeof(p), "%s/backd.log", bw->dir);
	f = fopen(p, "r");
	if (!f)
		return 0;
	if (fseek(f, from, SEEK_SET) == 0)
		while (fgets(line, sizeof(line), f)) {
			const char *s = strstr(line, "stopped; ");

			if (s && strstr(s, "abandoned with I/O"))
				n = (unsigned int)strtoul(s + 9, NULL, 10);
		}
	fclose(f);
	return n;
}

int bench_backd_restart(struct bench_world *bw, int sig, uint64_t *up_ns,
			unsigned int *abandoned)
{
	char p[PVIO_PATH_BUF];
	struct stat st;
	long from;
	int rc;

	snprintf(p, sizeof(p), "%s/backd.log", bw->dir);
	from = stat(p, &st) == 0 ? (long)st.st_size : 0;
	if (bw->backd > 0) {
		kill(bw->backd, sig);
		waitpid(bw->backd, NULL, 0);
	}
	*abandoned = log_abandoned(bw, from);
	bw->backd = 0;
	rc = backd_start(bw, true);
	/* up: its main loop answers (the socket is there before its start's
	 * re-attaches, and a signal meanwhile waits for them) */
	while (!rc) {
		char buf[256];

		if (bench_backd_stats(bw, 0, 0, buf, sizeof(buf)) == 0 && buf[0])
			break;
		if (waitpid(bw->backd, NULL, WNOHANG) != 0)
			rc = -EIO;
		usleep(2000);
	}
	*up_ns = pvio_now_ns();
	return rc;
}

void bench_world_down(struct bench_world *bw)
{
	int rc;

	if (bw->backd > 0) {
		kill(bw->backd, SIGTERM);
		waitpid(bw->backd, NULL, 0);
	}
	pvio_xs_close(bw->xs);
	pvio_platform_close(bw->dom0);
	if (bw->dir[0]) {
		pvio_world_stop(bw->dir, 5000);
		rc = pvio_world_remove(bw->dir);
		if (rc)
			fprintf(stderr, "pvio-bench: cannot remove %s: %s\n",
				bw->dir, strerror(-rc));
	}
}

static int make_domain(struct bench_world *bw, unsigned int domid)
{
	char path[64];
	int rc;

	snprintf(path, sizeof(path), "/local/domain/%u/name", domid);
	if (pvio_xs_exists(bw->xs, 0, path))
		return 0;
	rc = pvio__sim_domain_create(bw->dom0, domid, "bench", 0, NULL);
	if (!rc)
		rc = pvio_ts_domain_add(bw->xs, domid, "bench");
	return rc;
}

int bench_attach_vbd(struct bench_world *bw, unsigned int domid,
		     const char *path)
{
	return bench_attach_vbd_mode(bw, domid, path, false);
}

int bench_attach_vbd_mode(struct bench_world *bw, unsigned int domid,
			  const char *path, bool readonly)
{
	struct pvio_ts_vbd v = { .fe = domid, .be = 0 };
	int rc = make_domain(bw, domid);

	if (rc)
		return rc;
	snprintf(v.vdev, sizeof(v.vdev), "xvda");
	snprintf(v.target, sizeof(v.target), "%s", path);
	v.buffered = true;	/* the page cache, as the baseline */
	v.readonly = readonly;
	return pvio_ts_vbd_add(bw->xs, &v);
}

int bench_attach_vif(struct bench_world *bw, unsigned int domid)
{
	struct pvio_ts_vif v = { .fe = domid, .be = 0, .devid = 0,
				 .mac = { 0x00, 0x16, 0x3e, 0x00, 0x00, 0x01 } };
	int rc = make_domain(bw, domid);

	if (rc)
		return rc;
	v.mac[5] = (uint8_t)domid;
	return pvio_ts_vif_add(bw->xs, &v);
}

int bench_backd_stats(struct bench_world *bw, int domid, int devid, char *buf,
		      size_t len)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[64];
	size_t got = 0;
	ssize_t n;
	int fd, rl;

	buf[0] = 0;
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/backd.sock",
			     bw->dir) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	rl = snprintf(req, sizeof(req), "stats-json %d %d\n", domid, devid);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    write(fd, req, (size_t)rl) != rl) {
		close(fd);
		return -EIO;
	}
	while (got < len - 1 && (n = read(fd, buf + got, len - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = 0;
	close(fd);
	return 0;
}

uint64_t bench_json_sum(const char *json, const char *key)
{
	char k[64];
	uint64_t sum = 0;
	size_t kl;
	const char *p;

	kl = (size_t)snprintf(k, sizeof(k), "\"%s\": ", key);
	for (p = json; (p = strstr(p, k)); p += kl)
		sum += strtoull(p + kl, NULL, 10);
	return sum;
}

uint64_t bench_backd_notifies(struct bench_world *bw)
{
	static char buf[1 << 16];

	if (bench_backd_stats(bw, -1, -1, buf, sizeof(buf)))
		return 0;
	return bench_json_sum(buf, "notifications_sent");
}

bool bench_opt_common(int argc, char **argv, int *i, unsigned int *ms,
		      unsigned int *runs, unsigned int *spin_us, bool *json)
{
	const char *a = argv[*i];

	if (!strcmp(a, "--json")) {
		*json = true;
		return true;
	}
	if (*i + 1 >= argc)
		return false;
	if (!strcmp(a, "--time")) {
		if (pvio_parse_uint(argv[++*i], 50, 600000, ms))
			pvio_usage_error("pvio-bench", "bad --time '%s'", argv[*i]);
	} else if (!strcmp(a, "--runs")) {
		if (pvio_parse_uint(argv[++*i], 1, 31, runs))
			pvio_usage_error("pvio-bench", "bad --runs '%s'", argv[*i]);
	} else if (!strcmp(a, "--spin-us")) {
		if (pvio_parse_uint(argv[++*i], 0, 1000000, spin_us))
			pvio_usage_error("pvio-bench", "bad --spin-us '%s'", argv[*i]);
	} else {
		return false;
	}
	return true;
}

void bench_usage(FILE *f)
{
	fprintf(f,
"usage: pvio-bench blk|net [options]\n"
"Benchmarks of the whole PV path in a private sim world, each against a\n"
"baseline without virtualization measured in the same run (paired runs).\n\n"
"pvio-bench blk [--time MS] [--runs N] [--size SIZE] [--dir DIR] [--load NAME]\n"
"               [--spin-us N] [--copy] [--pool] [--journal-cost] [--json]\n"
"               [--target T --size S [--base T2] [--base-busy-cpu0]]\n"
"    4 KiB random read/write at QD 1, 32, 128 and 128 KiB sequential\n"
"    read/write (--load seqread-1m-qd4, seqwrite-1m-qd4: 1 MiB, only when\n"
"    named); baseline: io_uring on the same file from one process.\n"
"    --copy: pvio-backd grant-copies (default: maps persistent grants);\n"
"    --pool: the guest's buffers are copied through blkfront's pool\n"
"    (default: granted buffers, read and written in place);\n"
"    --journal-cost: the baseline is the same guest I/O through a second\n"
"    pvio-backd with --no-journal (the cost of crash recovery)\n"
"    --target T --size S: a remote disk instead (T: nbd://...,\n"
"    nbd+unix:///...?socket=..., rbd:POOL/IMAGE[:conf=PATH]), S at most its\n"
"    size; baseline: fio --ioengine=nbd|rbd on T2 (--base; default T: an\n"
"    RBD image pvio-backd holds is locked, give fio another of that size)\n"
"    --base-busy-cpu0: fio runs beside a process keeping CPU 0 busy, as\n"
"    the polling guest keeps it in pvio's runs (default: CPU 0 idle)\n"
"pvio-bench blk --guests N [--qd N] [--workers N] [--vif] [--time MS] [--runs N]\n"
"               [--size SIZE] [--dir DIR] [--spin-us N] [--copy] [--restart]\n"
"               [--backd-opt OPT] [--json]\n"
"    N guests (own domains, vbds, rings, grants and event channels), up to\n"
"    256 per driver process: connect time, pvio-backd RSS/fds/idle CPU, then 4 KiB\n"
"    random reads from the first 8 guests and from all N, alternating:\n"
"    total IOPS, per-guest min/median/max, fairness spread, ratio N/8;\n"
"    --restart: then pvio-backd killed (SIGKILL) and stopped (SIGTERM) under\n"
"    every guest's reads, started again each time: each guest's outage;\n"
"    --backd-opt OPT: one more pvio-backd option (e.g. --drain-timeout=300)\n"
"pvio-bench blk --noisy [--time MS] [--runs N] [--size SIZE] [--dir DIR]\n"
"               [--spin-us N] [--copy] [--json]\n"
"    8 guests on one worker: 7 read 4 KiB at QD 1 alone, then beside a\n"
"    guest writing 4 KiB at QD 128: the quiet guests' p99, and the ratio\n"
"pvio-bench net [--time MS] [--runs N] [--test NAME] [--spin-us N] [--json]\n"
"    packets/s of 64 and 1514-byte frames both ways (tx-64, tx-1514,\n"
"    rx-64, rx-1514), one TCP stream each way between the guest's\n"
"    namespace and dom0 (tcp-guest-to-dom0, tcp-dom0-to-guest);\n"
"    baselines: io_uring on a plain TAP, TCP over a veth pair\n");
}

int main(int argc, char **argv)
{
	pvio_log_init("pvio-bench", PVIO_LOG_WARN);
	signal(SIGPIPE, SIG_IGN);
	/* what a killed run leaves (a world, an image, a namespace) goes too */
	if (argc >= 2 && (!strcmp(argv[1], "blk") || !strcmp(argv[1], "net"))) {
		int rc = pvio_guard_start("pvio-bench");

		if (rc) {
			fprintf(stderr, "pvio-bench: cannot fork: %s\n", strerror(-rc));
			return 1;
		}
	}
	if (argc < 2)
		pvio_usage_error("pvio-bench", "which benchmark? (blk or net)");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		bench_usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version"))
		pvio_version("pvio-bench");
	if (!strcmp(argv[1], "blk"))
		return bench_blk(argc - 1, argv + 1);
	if (!strcmp(argv[1], "net"))
		return bench_net(argc - 1, argv + 1);
	pvio_usage_error("pvio-bench", "unknown benchmark '%s' (blk or net)", argv[1]);
}
