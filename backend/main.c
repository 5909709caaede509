// SPDX-License-Identifier: MIT
/*
 * pvio-backd: the backend daemon. Serves vbd and vif devices of many
 * guests from dom0 userspace: discovers them in xenstore, runs the XenBus
 * handshake, and hands their rings to worker threads that move blocks and
 * packets through io_uring.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "journal.h"
#include "private.h"

static const char *prog = "pvio-backd";

static void usage(FILE *f)
{
	fprintf(f,
"usage: pvio-backd [options]\n"
"Serve Xen vbd and vif devices from dom0 userspace over io_uring.\n\n"
"  -p, --platform P       sim, sim:DIR or xen (default: $PVIO_PLATFORM, else sim)\n"
"  -w, --workers N        dataplane threads (default: CPUs - 1, at least 1)\n"
"      --spin-us N        poll this long before sleeping (default 50; 0: never)\n"
"      --max-ring-order N ring pages offered, 2^N, 0..4 (default 4)\n"
"      --max-queues N     queues per device, 1..16 (default 4)\n"
"      --max-indirect N   indirect segments, 0 or 12..256 (default 256)\n"
"      --buffered         no O_DIRECT (default: O_DIRECT where the target allows)\n"
"      --grant-map        map persistent grants (frontends with feature-\n"
"                         persistent) instead of grant copy: zero-copy I/O\n"
"      --persistent-max N pages mapped per queue at most (default 8192)\n"
"      --kinds LIST       what to serve: vbd, vbd3 (libxl's backendtype=tap on\n"
"                         newer Xen), vif; comma-separated (default: vbd,vif)\n"
"      --vbd-types LIST   backend kinds served as vbd (default: vbd)\n"
"      --vif-types LIST   backend kinds served as vif (default: vif)\n"
"      --no-vbd, --no-vif serve only one of them\n"
"      --hotplug-timeout S  wait this long for a hotplug script's answer\n"
"                         (physical-device, hotplug-status; default 40)\n"
"      --remote-timeout S RBD/NBD disks: a request not answered within S\n"
"                         seconds (1..3600, default 30) fails with an I/O error\n"
"      --lock-dir DIR     single-writer lock files of NBD disks\n"
"                         (default /run/pvio/locks)\n"
"      --stall-timeout S  log a worker or a device whose I/O made no progress\n"
"                         for S seconds (default 10; 0: never)\n"
"      --drain-timeout MS at SIGTERM, wait this long for in-flight I/O, then\n"
"                         abandon the devices whose targets hang (default 1500)\n"
"      --ovsdb unix:PATH  Open vSwitch's database, for vifs whose bridge is\n"
"                         an OVS bridge (default unix:$OVS_RUNDIR/db.sock,\n"
"                         else unix:/var/run/openvswitch/db.sock)\n"
"  -s, --ctl-sock PATH    control socket for pvio-ctl stats (default: WORLD/\n"
"                         backd.sock on sim, /run/pvio/backd.sock on xen)\n"
"      --journal-dir DIR  in-flight records, one per ring, for restarting\n"
"                         after a crash (default: WORLD/journal on sim,\n"
"                         /run/pvio/journal on xen)\n"
"      --no-journal       no in-flight records: a crash may lose or repeat\n"
"                         responses (a baseline for benchmarks)\n"
"      --no-confine       keep every capability, no system call filter\n"
"                         (debugging only; see docs/security.md)\n"
"  -l, --log-level L      err|warn|info|debug (default info)\n"
"      --version\n"
"  -h, --help\n"
"targets: file"
#ifdef HAVE_LIBRBD
" rbd"
#endif
#ifdef HAVE_LIBNBD
" nbd"
#endif
"\n");
}

static bool valid_kinds(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 200 || s[0] == ',' || s[n - 1] == ',' ||
	    strstr(s, ",,"))
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == ',' || s[i] == '_'))
			return false;
	return true;
}

/* Is the kind @name (@len bytes) in the comma-separated @list? */
static bool kind_listed(const char *list, const char *name, size_t len)
{
	size_t n;

	for (;; list += n + 1) {
		n = strcspn(list, ",");
		if (n == len && !strncmp(list, name, len))
			return true;
		if (!list[n])
			return false;
	}
}

/*
 * --vbd-types, --vif-types: each kind once, and no longer than a device's
 * type[] holds. A longer one was taken and then never served: the watch
 * on its directory cannot name it.
 */
static void check_types(const char *opt, const char *list)
{
	size_t n;

	if (!valid_kinds(list))
		pvio_usage_error(prog, "bad %s '%s' (kinds of a-z 0-9 _, comma-separated)",
				 opt, list);
	for (;; list += n + 1) {
		n = strcspn(list, ",");
		if (n > BACKEND_KIND_MAX)
			pvio_usage_error(prog, "bad %s: kind '%.*s' is longer than %d characters",
					 opt, (int)n, list, BACKEND_KIND_MAX);
		if (!list[n])
			return;
		if (kind_listed(list + n + 1, list, n))
			pvio_usage_error(prog, "bad %s: '%.*s' twice", opt,
					 (int)n, list);
	}
}

/* A kind in both lists: its devices are disks or network interfaces,
 * not both; which did the user mean? */
static void check_types_apart(const struct backd_opts *o)
{
	const char *p = o->types_vbd;
	size_t n;

	if (o->no_vbd || o->no_vif)
		return;
	for (;; p += n + 1) {
		n = strcspn(p, ",");
		if (kind_listed(o->types_vif, p, n))
			pvio_usage_error(prog, "kind '%.*s' in both --vbd-types and --vif-types (defaults: vbd, vif)",
					 (int)n, p);
		if (!p[n])
			return;
	}
}

/*
 * --kinds vbd,vbd3,vif: the xenstore backend kinds pvio-backd answers.
 * vbd and vbd3 (what libxl writes for backendtype=tap on newer Xen) are
 * served as block devices, vif as network devices; a kind not named is
 * left to another backend (the kernel's blkback serves vbd, say).
 */
static void parse_kinds(struct backd_opts *o, const char *list)
{
	static char vbd[32], vif[8];
	char buf[64], *tok, *save = NULL;

	if (strlen(list) >= sizeof(buf) || !valid_kinds(list))
		pvio_usage_error(prog, "bad --kinds '%s' (vbd, vbd3, vif)", list);
	snprintf(buf, sizeof(buf), "%s", list);
	vbd[0] = vif[0] = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dst = strcmp(tok, "vif") == 0 ? vif : vbd;
		size_t len = strcmp(tok, "vif") == 0 ? sizeof(vif) : sizeof(vbd);
		char want[8];

		if (strcmp(tok, "vbd") && strcmp(tok, "vbd3") && strcmp(tok, "vif"))
			pvio_usage_error(prog, "bad --kinds: unknown kind '%s' (vbd, vbd3, vif)",
					 tok);
		snprintf(want, sizeof(want), ",%s,", tok);
		{
			char have[40];

			snprintf(have, sizeof(have), ",%s,", dst);
			if (strstr(have, want))
				pvio_usage_error(prog, "bad --kinds: '%s' twice", tok);
		}
		if (dst[0])
			strncat(dst, ",", len - strlen(dst) - 1);
		strncat(dst, tok, len - strlen(dst) - 1);
	}
	o->no_vbd = !vbd[0];
	o->no_vif = !vif[0];
	o->types_vbd = vbd[0] ? vbd : "vbd";
	o->types_vif = vif[0] ? vif : "vif";
}

/* -s PATH: a unix socket's address holds it (with its NUL), or bind fails
 * at run time; "" would be a socket nobody can reach. */
static void check_ctl_sock(const char *path)
{
	struct sockaddr_un sa;

	if (!path[0] || strlen(path) >= sizeof(sa.sun_path))
		pvio_usage_error(prog, "bad --ctl-sock '%s' (a path of 1..%zu bytes)",
				 path, sizeof(sa.sun_path) - 1);
}

static void parse_args(struct backd_opts *o, int argc, char **argv)
{
	enum { O_SPIN = 256, O_ORDER, O_QUEUES, O_INDIRECT, O_BUFFERED,
	       O_VBDT, O_VIFT, O_NOVBD, O_NOVIF, O_MAP, O_PGMAX, O_JDIR,
	       O_NOJ, O_NOCONFINE, O_KINDS, O_HPTIMEOUT, O_RTMO, O_LOCKDIR,
	       O_STALL, O_DRAIN, O_OVSDB };
	static const struct option opts[] = {
		{ "platform", required_argument, NULL, 'p' },
		{ "workers", required_argument, NULL, 'w' },
		{ "spin-us", required_argument, NULL, O_SPIN },
		{ "max-ring-order", required_argument, NULL, O_ORDER },
		{ "max-queues", required_argument, NULL, O_QUEUES },
		{ "max-indirect", required_argument, NULL, O_INDIRECT },
		{ "buffered", no_argument, NULL, O_BUFFERED },
		{ "grant-map", no_argument, NULL, O_MAP },
		{ "persistent-max", required_argument, NULL, O_PGMAX },
		{ "vbd-types", required_argument, NULL, O_VBDT },
		{ "vif-types", required_argument, NULL, O_VIFT },
		{ "no-vbd", no_argument, NULL, O_NOVBD },
		{ "no-vif", no_argument, NULL, O_NOVIF },
		{ "no-confine", no_argument, NULL, O_NOCONFINE },
		{ "kinds", required_argument, NULL, O_KINDS },
		{ "hotplug-timeout", required_argument, NULL, O_HPTIMEOUT },
		{ "remote-timeout", required_argument, NULL, O_RTMO },
		{ "lock-dir", required_argument, NULL, O_LOCKDIR },
		{ "stall-timeout", required_argument, NULL, O_STALL },
		{ "drain-timeout", required_argument, NULL, O_DRAIN },
		{ "ovsdb", required_argument, NULL, O_OVSDB },
		{ "ctl-sock", required_argument, NULL, 's' },
		{ "journal-dir", required_argument, NULL, O_JDIR },
		{ "no-journal", no_argument, NULL, O_NOJ },
		{ "log-level", required_argument, NULL, 'l' },
		PVIO_VERSION_OPTION,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned int v;
	bool no_journal = false;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	bool kinds = false, types = false;
	int c, lvl;

	o->platform = NULL;
	o->nr_workers = ncpu > 1 ? (unsigned int)(ncpu - 1) : 1;
	o->spin_ns = 50000;
	o->max_ring_order = 4;
	o->max_queues = 4;
	o->max_indirect = 256;
	o->pgrant_max = 8192;
	o->types_vbd = "vbd";
	o->types_vif = "vif";
	o->hotplug_timeout_s = 40;
	o->remote_timeout_s = 30;
	o->lock_dir = "/run/pvio/locks";
	o->stall_s = 10;
	o->drain_ms = 1500;
	/* ovs-vsctl's default: $OVS_RUNDIR/db.sock */
	snprintf(o->ovsdb, sizeof(o->ovsdb), "unix:%s/db.sock",
		 getenv("OVS_RUNDIR") && getenv("OVS_RUNDIR")[0] == '/' &&
		 strlen(getenv("OVS_RUNDIR")) < 100 ?
		 getenv("OVS_RUNDIR") : "/var/run/openvswitch");
	opterr = 0;	/* our own one-line messages */
	while ((c = getopt_long(argc, argv, ":p:w:s:l:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (strcmp(optarg, "xen") && strcmp(optarg, "sim") &&
			    (strncmp(optarg, "sim:", 4) || !optarg[4]))
				pvio_usage_error(prog, "bad --platform '%s' (sim, sim:DIR, xen)",
						 optarg);
			o->platform = optarg;
			break;
		case 'w':
			if (pvio_parse_uint(optarg, 1, 64, &o->nr_workers))
				pvio_usage_error(prog, "bad --workers '%s' (1..64)", optarg);
			break;
		case O_SPIN:
			if (pvio_parse_uint(optarg, 0, 1000000, &v))
				pvio_usage_error(prog, "bad --spin-us '%s' (0..1000000)", optarg);
			o->spin_ns = (uint64_t)v * 1000u;
			break;
		case O_ORDER:
			if (pvio_parse_uint(optarg, 0, 4, &o->max_ring_order))
				pvio_usage_error(prog, "bad --max-ring-order '%s' (0..4)", optarg);
			break;
		case O_QUEUES:
			if (pvio_parse_uint(optarg, 1, 16, &o->max_queues))
				pvio_usage_error(prog, "bad --max-queues '%s' (1..16)", optarg);
			break;
		case O_INDIRECT:
			if (pvio_parse_uint(optarg, 0, 256, &o->max_indirect) ||
			    (o->max_indirect && o->max_indirect <= 11))
				pvio_usage_error(prog, "bad --max-indirect '%s' (0 or 12..256)",
						 optarg);
			break;
		case O_BUFFERED:
			o->buffered = true;
			break;
		case O_MAP:
			o->grant_map = true;
			break;
		case O_PGMAX:
			if (pvio_parse_uint(optarg, 16, 1u << 20, &o->pgrant_max))
				pvio_usage_error(prog, "bad --persistent-max '%s' (16..1048576)",
						 optarg);
			break;
		case O_VBDT:
			check_types("--vbd-types", optarg);
			o->types_vbd = optarg;
			types = true;
			break;
		case O_VIFT:
			check_types("--vif-types", optarg);
			o->types_vif = optarg;
			types = true;
			break;
		case O_KINDS:
			parse_kinds(o, optarg);
			kinds = true;
			break;
		case O_HPTIMEOUT:
			if (pvio_parse_uint(optarg, 1, 3600, &o->hotplug_timeout_s))
				pvio_usage_error(prog, "bad --hotplug-timeout '%s' (1..3600)",
						 optarg);
			break;
		case O_NOVBD:
			o->no_vbd = true;
			types = true;
			break;
		case O_NOVIF:
			o->no_vif = true;
			types = true;
			break;
		case O_NOCONFINE:
			o->no_confine = true;
			break;
		case O_RTMO:
			if (pvio_parse_uint(optarg, 1, 3600, &o->remote_timeout_s))
				pvio_usage_error(prog, "bad --remote-timeout '%s' (1..3600)",
						 optarg);
			break;
		case O_LOCKDIR:
			if (optarg[0] != '/' || strlen(optarg) > 300)
				pvio_usage_error(prog, "bad --lock-dir '%s' (an absolute path)",
						 optarg);
			o->lock_dir = optarg;
			break;
		case O_STALL:
			if (pvio_parse_uint(optarg, 0, 3600, &o->stall_s))
				pvio_usage_error(prog, "bad --stall-timeout '%s' (0..3600)",
						 optarg);
			break;
		case O_DRAIN:
			if (pvio_parse_uint(optarg, 0, 600000, &o->drain_ms))
				pvio_usage_error(prog, "bad --drain-timeout '%s' (0..600000)",
						 optarg);
			break;
		case O_OVSDB:
			/* ovsdb-server's local socket: tcp: and ssl: would
			 * need sockets the confinement does not grant */
			if (strncmp(optarg, "unix:/", 6) || strlen(optarg) >= 108)
				pvio_usage_error(prog, "bad --ovsdb '%s' (unix:PATH, an absolute path)",
						 optarg);
			snprintf(o->ovsdb, sizeof(o->ovsdb), "%s", optarg);
			break;
		case 's':
			check_ctl_sock(optarg);
			o->ctl_sock = optarg;
			break;
		case O_JDIR:
			if (optarg[0] != '/' || strlen(optarg) > 3800)
				pvio_usage_error(prog, "bad --journal-dir '%s' (an absolute path)",
						 optarg);
			o->journal_dir = optarg;
			break;
		case O_NOJ:
			no_journal = true;
			break;
		case 'l':
			lvl = pvio_log_parse_level(optarg);
			if (lvl < 0)
				pvio_usage_error(prog, "bad --log-level '%s'", optarg);
			pvio_log_level = lvl;
			break;
		case PVIO_OPT_VERSION:
			pvio_version(prog);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			pvio_usage_bad_option(prog, c, argv);
		}
	}
	if (optind != argc)
		pvio_usage_error(prog, "unexpected argument '%s'", argv[optind]);
	if (kinds && types)
		pvio_usage_error(prog, "--kinds or --vbd-types/--vif-types/--no-vbd/--no-vif, not both");
	if (o->no_vbd && o->no_vif)
		pvio_usage_error(prog, "--no-vbd and --no-vif: nothing to serve");
	check_types_apart(o);
	if (no_journal && o->journal_dir)
		pvio_usage_error(prog, "--no-journal and --journal-dir: choose one");
	/* "" until the platform is known: then its default */
	if (!no_journal && !o->journal_dir)
		o->journal_dir = "";
}

/* @name in /run/pvio on Xen, in the sim world's directory on sim. */
static void runtime_path(struct backd *bd, char *buf, size_t len,
			 const char *name)
{
	const char *dir = getenv("PVIO_SIM_DIR");

	if (strcmp(pvio_platform_name(bd->plat), "xen") == 0)
		snprintf(buf, len, "/run/pvio/%s", name);
	else if (bd->o.platform && strncmp(bd->o.platform, "sim:", 4) == 0)
		snprintf(buf, len, "%s/%s", bd->o.platform + 4, name);
	else
		snprintf(buf, len, "%s/%s", dir && *dir ? dir : pvio_sim_default_dir(),
			 name);
}

/* For the sweep of in-flight records: is this device still served? */
static bool device_exists(void *opaque, const char *kind, unsigned int domid,
			  unsigned int devid)
{
	struct backd *bd = opaque;
	struct device *d;

	size_t n = strcspn(kind, "_");	/* "vif_tx": a vif's */

	for (d = bd->devices; d; d = d->next)
		if (d->fe == domid && d->devid == devid &&
		    strlen(d->ops->kind) == n && !strncmp(d->ops->kind, kind, n))
			return true;
	return false;
}

/* ---- one pvio-backd per host ---------------------------------------------------- */

/* A restart right after a kill may find the old process still exiting. */
#define LOCK_WAIT_MS	10000u

/*
 * A second pvio-backd on the same host (or sim world) would fight the
 * first for every device in xenstore (the image locks refused, it would
 * fail them all), for the in-flight records and for the control socket.
 * An exclusive lock on RUNDIR/backd.lock, held for the daemon's life and
 * released by the kernel however it ends, keeps it out: it waits a little
 * for a holder that is exiting, then exits 1 naming it.
 */
static int instance_lock(struct backd *bd)
{
	const char *where = strcmp(pvio_platform_name(bd->plat), "xen") == 0
				    ? "host" : "sim world";
	char path[PVIO_PATH_BUF], parent[PVIO_PATH_BUF], pid[24];
	uint64_t until = pvio_now_ms() + LOCK_WAIT_MS;
	bool told = false;
	ssize_t n;
	int fd;

	runtime_path(bd, path, sizeof(path), "backd.lock");
	snprintf(parent, sizeof(parent), "%s", path);
	*strrchr(parent, '/') = 0;
	mkdir(parent, 0755);	/* /run/pvio may not exist yet */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0) {
		log_err("cannot open the instance lock %s: %s", path,
			strerror(errno));
		return -errno;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			log_err("cannot lock %s: %s", path, strerror(errno));
			close(fd);
			return -EIO;
		}
		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = 0;
		pid[strspn(pid, "0123456789")] = 0;
		if (pvio_now_ms() >= until) {
			log_err("another pvio-backd (pid %s) serves this %s: it holds %s",
				pid[0] ? pid : "?", where, path);
			close(fd);
			return -EBUSY;
		}
		if (!told)
			log_warn("another pvio-backd (pid %s) holds %s: waiting up to %u s for it to exit",
				 pid[0] ? pid : "?", path, LOCK_WAIT_MS / 1000);
		told = true;
		usleep(50000);
	}
	if (ftruncate(fd, 0) < 0 || dprintf(fd, "%d\n", (int)getpid()) < 0)
		log_warn("cannot write our pid into %s: %s", path,
			 strerror(errno));
	bd->lock_fd = fd;	/* open until we exit */
	return 0;
}

/* ---- systemd: readiness and status (Type=notify) ---------------------------- */

/*
 * STATUS= for systemctl status: how many devices, in which condition;
 * sent when it changes (once a second at most). sd_notify() is a no-op
 * without $NOTIFY_SOCKET.
 */
static void notify_status(struct backd *bd, const char *prefix)
{
	static char last[160];
	unsigned int n = 0, conn = 0, failed = 0;
	struct device *d;
	char st[160];

	for (d = bd->devices; d; d = d->next) {
		n++;
		conn += d->connected;
		failed += d->failed;
	}
	snprintf(st, sizeof(st), "%s%u device%s: %u connected, %u waiting, %u failed",
		 prefix, n, n == 1 ? "" : "s", conn, n - conn - failed, failed);
	if (strcmp(st, last) == 0)
		return;
	snprintf(last, sizeof(last), "%s", st);
	sd_notifyf(0, "STATUS=%s", st);
}

/*
 * READY=1 once every device found at start is set up: a restarted
 * pvio-backd has re-attached to the live rings (or failed them), the
 * targets' opens included, which finish off the main thread. Not later
 * than --stall-timeout, though: an open that waits on a dead file server
 * may wait for ever, and a service manager's start timeout would kill
 * the daemon that serves every other guest (and again at each restart).
 */
static void notify_ready(struct backd *bd)
{
	/* --stall-timeout 0 reports nothing; READY=1 still does not wait
	 * for ever */
	unsigned int s = bd->o.stall_s ? bd->o.stall_s : 10, stuck;

	if (bd->ready_sent || devices_opening(bd, (uint64_t)s * 1000000000u))
		return;
	bd->ready_sent = true;
	notify_status(bd, "");	/* what READY=1 says is up */
	stuck = devices_opening(bd, 0);
	if (stuck)
		log_warn("ready, %u device%s still opening after %u s (--stall-timeout): the others are served",
			 stuck, stuck == 1 ? "" : "s", s);
	sd_notify(0, "READY=1");
}

/* ---- the connections below us -------------------------------------------------- */

/*
 * Once a second (and when the xenstore fd hangs up): are xenstore and the
 * hypervisor still there? A xenstored or a sim world (pvio-simhv) that
 * died must not leave us serving nothing in silence: logged, exit 1.
 * A refused or missing node is an answer; only transport errors count.
 */
static bool connections_alive(struct backd *bd)
{
	struct pvio_dominfo info;
	char path[64], *v = NULL;
	int rc;

	snprintf(path, sizeof(path), "/local/domain/%u/domid", bd->self);
	rc = pvio_xs_read(bd->xs, 0, path, &v);
	free(v);
	if (rc < 0 && rc != -ENOENT && rc != -EACCES) {
		log_err("lost the connection to xenstore: %s", strerror(-rc));
		return false;
	}
	rc = pvio_domain_info(bd->plat, bd->self, &info);
	if (rc == -EPIPE || rc == -ECONNRESET || rc == -ENOTCONN ||
	    rc == -EIO || rc == -EBADF || rc == -ESHUTDOWN) {
		log_err("lost the connection to the hypervisor: %s",
			strerror(-rc));
		return false;
	}
	return true;
}

/* ---- main ------------------------------------------------------------------------------- */

/* epoll data: these, or a control-socket client's (CTL_EV_BASE + place) */
enum { EV_XS = 1, EV_CTL, EV_SIG, EV_TICK, EV_DONE };

static int ep_add(int ep, int fd, uint32_t what)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = what };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* A failure before any thread exists: what is open goes, exit 1 (and a
 * leak checker sees nothing left). */
static int early_exit(struct backd *bd)
{
	if (bd->ctl_fd >= 0)	/* its places are set up with it */
		ctlsock_close(bd, bd->o.ctl_sock);
	if (bd->lock_fd >= 0)
		close(bd->lock_fd);
	pvio_xs_close(bd->xs);
	pvio_platform_close(bd->plat);
	return 1;
}

int main(int argc, char **argv)
{
	static struct backd bd;
	char ctl_path[PVIO_PATH_BUF], journal_path[PVIO_PATH_BUF];
	struct itimerspec its = { { 1, 0 }, { 1, 0 } };
	sigset_t mask;
	int ep, sfd, tfd, rc;
	unsigned int i, abandoned, steps;
	uint64_t drain_end;
	bool lost = false, failed = false;

	pvio_log_init(prog, PVIO_LOG_INFO);
	parse_args(&bd.o, argc, argv);
	/* before any thread exists: the workers inherit the mask, so the
	 * signals reach the main loop's signalfd only */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	bd.ctl_fd = bd.lock_fd = -1;
	bd.started_ns = pvio_now_ns();
	ctlwork_init(&bd);
	signal(SIGPIPE, SIG_IGN);

	rc = pvio_platform_open(&bd.plat, bd.o.platform, 0, 0);
	if (rc) {
		const char *spec = bd.o.platform ? bd.o.platform
			: getenv("PVIO_PLATFORM") ? getenv("PVIO_PLATFORM") : "sim";

		if (strcmp(spec, "xen") == 0)
			log_err("cannot open the Xen interfaces (/dev/xen/evtchn, gntdev, privcmd): %s; "
				"is this dom0 with the xen-evtchn and xen-gntdev modules loaded?",
				strerror(-rc));
		else
			log_err("cannot attach to the %s platform as dom0: %s%s", spec,
				strerror(-rc),
				rc == -ENOENT ? " (is the sim world running? pvio-ctl world start)" : "");
		return 1;
	}
	bd.self = pvio_platform_domid(bd.plat);
	rc = pvio_xs_open(&bd.xs, bd.plat);
	if (rc) {
		log_err("cannot connect to xenstore: %s", strerror(-rc));
		return early_exit(&bd);
	}
	if (!bd.o.platform)
		bd.o.platform = strcmp(pvio_platform_name(bd.plat), "xen") == 0
					? "xen" : NULL;
	if (instance_lock(&bd))
		return early_exit(&bd);
	if (!bd.o.ctl_sock) {
		runtime_path(&bd, ctl_path, sizeof(ctl_path), "backd.sock");
		bd.o.ctl_sock = ctl_path;
	}
	if (bd.o.journal_dir && !bd.o.journal_dir[0]) {
		runtime_path(&bd, journal_path, sizeof(journal_path), "journal");
		bd.o.journal_dir = journal_path;
	}
	if (bd.o.journal_dir) {
		char parent[PVIO_PATH_BUF], *slash;

		/* /run/pvio may not exist yet (no systemd) */
		snprintf(parent, sizeof(parent), "%s", bd.o.journal_dir);
		slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = 0;
			mkdir(parent, 0755);
		}
		if (mkdir(bd.o.journal_dir, 0700) < 0 && errno != EEXIST) {
			log_err("cannot create the journal directory %s: %s",
				bd.o.journal_dir, strerror(errno));
			return early_exit(&bd);
		}
	}
	pvio_fault_init();
	if (ctlsock_open(&bd, bd.o.ctl_sock))
		return early_exit(&bd);
	/* before the first thread: the workers start with these sets */
	if (!bd.o.no_confine) {
		rc = confine_caps();
		if (rc) {
			log_err("cannot drop capabilities: %s", strerror(-rc));
			return early_exit(&bd);
		}
	}
	bd.done_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	bd.workers = calloc(bd.o.nr_workers, sizeof(*bd.workers));
	if (bd.done_efd < 0 || !bd.workers) {
		log_err("out of resources");
		return 1;
	}
	for (i = 0; i < bd.o.nr_workers; i++) {
		rc = worker_init(&bd.workers[i], &bd, i);
		if (!rc)
			rc = worker_run(&bd.workers[i]);
		if (rc) {
			log_err("cannot start worker %u: %s%s", i, strerror(-rc),
				rc == -ENOMEM || rc == -EPERM ?
					" (io_uring: check memlock limits and kernel.io_uring_disabled)" : "");
			return 1;
		}
		bd.nr_workers++;
	}

	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ep = bd.ep = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || tfd < 0 || ep < 0 || timerfd_settime(tfd, 0, &its, NULL) ||
	    ep_add(ep, pvio_xs_fd(bd.xs), EV_XS) || ep_add(ep, bd.ctl_fd, EV_CTL) ||
	    ep_add(ep, sfd, EV_SIG) || ep_add(ep, tfd, EV_TICK) ||
	    ep_add(ep, bd.done_efd, EV_DONE)) {
		log_err("cannot set up the event loop: %s", strerror(errno));
		return 1;
	}
	rc = devices_init(&bd);
	if (rc) {
		log_err("cannot watch the backend area: %s", strerror(-rc));
		sd_notifyf(0, "STATUS=cannot watch the backend area: %s\nERRNO=%d",
			   strerror(-rc), -rc);
		return 1;
	}
	if (!bd.o.no_confine) {
		rc = confine_filter();
		if (rc) {
			log_err("cannot install the system call filter: %s",
				strerror(-rc));
			return 1;
		}
	}
	/* Every device already in xenstore, now: a restarted pvio-backd
	 * re-attaches to the live rings here, so READY=1 (what
	 * Before=xendomains.service waits for) means they are served. */
	devices_scan(&bd);
	if (bd.o.journal_dir) {
		/* the devices there are now re-attached (or not): records
		 * nobody claimed are of devices that are gone */
		jrnl_sweep(bd.o.journal_dir, device_exists, &bd);
	}
	/* the startup line last: it says the daemon is up (tests wait for it) */
	log_info("domain %u on %s, %u worker%s, control socket %s, %s%s, %s",
		 bd.self, pvio_platform_name(bd.plat), bd.nr_workers,
		 bd.nr_workers > 1 ? "s" : "", bd.o.ctl_sock,
		 bd.o.journal_dir ? "in-flight records in " : "no in-flight records",
		 bd.o.journal_dir ? bd.o.journal_dir : "",
		 bd.o.no_confine ? "not confined (--no-confine)" : "confined");
	confine_test_fault();
	notify_status(&bd, "");
	notify_ready(&bd);

	while (!bd.stopping && !lost) {
		struct epoll_event evs[16];
		int n, k;

		n = epoll_wait(ep, evs, 16, -1);
		if (n < 0 && errno != EINTR) {
			/* a runtime failure: shut down as at SIGTERM, exit 1 */
			log_err("epoll_wait: %s: exiting", strerror(errno));
			failed = true;
			break;
		}
		for (k = 0; k < n; k++) {
			uint64_t v;

			switch (evs[k].data.u32) {
			case EV_XS:
				if ((evs[k].events & (EPOLLHUP | EPOLLERR)) &&
				    !connections_alive(&bd)) {
					lost = true;
					break;
				}
				pvio_xs_dispatch(bd.xs);
				break;
			case EV_CTL:
				ctlsock_accept(&bd);
				break;
			case EV_TICK:
				if (read(tfd, &v, sizeof(v)) < 0)
					break;
				if (!connections_alive(&bd)) {
					lost = true;
					break;
				}
				devices_tick(&bd);
				ctlsock_tick(&bd);
				notify_status(&bd, "");
				notify_ready(&bd);
				/* what dead guests left in each handle (the
				 * sim's view of a guest's memory): the workers'
				 * handles may see no call for long */
				pvio_platform_tidy(bd.plat);
				for (i = 0; i < bd.nr_workers; i++) {
					struct worker *w = &bd.workers[i];

					if (w->plat)
						pvio_platform_tidy(w->plat);
					worker_check_stall(w, pvio_now_ns(),
							   (uint64_t)bd.o.stall_s *
							   1000000000u);
				}
				break;
			case EV_DONE:
				if (read(bd.done_efd, &v, sizeof(v)) < 0)
					break;
				devices_reap_halted(&bd);
				devices_reap_stopped(&bd);
				ctlwork_reap(&bd);
				notify_ready(&bd);
				break;
			case EV_SIG: {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					break;
				if (si.ssi_signo == SIGHUP) {
					log_warn("SIGHUP: pvio-backd reloads nothing; restart it to change options");
					break;
				}
				log_info("signal %u: draining in-flight I/O, then exiting",
					 si.ssi_signo);
				sd_notify(0, "STOPPING=1\nSTATUS=draining in-flight I/O");
				bd.stopping = true;
				break;
			}
			default:
				ctlsock_event(&bd, evs[k].data.u32 - CTL_EV_BASE,
					      evs[k].events);
				break;
			}
		}
	}
	if (lost) {
		/* exit 1: a supervisor restarts us once the world is back, and
		 * the restart re-attaches at the live rings */
		log_err("exiting: without xenstore and the hypervisor no device can be served or changed");
		bd.stopping = true;
	}
	abandoned = devices_shutdown(&bd, bd.o.drain_ms, &drain_end);
	/* opens, closes and OVSDB steps still waiting on their peers */
	steps = ctlwork_shutdown(&bd, drain_end);
	for (i = 0; i < bd.nr_workers; i++)
		worker_shutdown(&bd.workers[i], abandoned > 0);
	for (i = 0; i < bd.nr_workers; i++)
		worker_join(&bd.workers[i]);
	free(bd.workers);
	pvio_xs_close(bd.xs);
	pvio_platform_close(bd.plat);
	ctlsock_close(&bd, bd.o.ctl_sock);
	/* the host is free for the next pvio-backd now, even if abandoned
	 * I/O keeps this process (its io-wq threads share our fds) */
	close(bd.lock_fd);
	close(ep);
	if (abandoned)
		log_warn("stopped; %u device%s abandoned with I/O still in flight on a hung target",
			 abandoned, abandoned > 1 ? "s" : "");
	else if (steps)
		log_warn("stopped; %u open%s, close%s or OVSDB step%s abandoned, waiting on an unresponsive peer",
			 steps, steps > 1 ? "s" : "", steps > 1 ? "s" : "",
			 steps > 1 ? "s" : "");
	else
		log_info("stopped");
	/* a thread still inside libnbd or librados: no exit handlers and
	 * library destructors under its feet */
	if (steps)
		_exit(lost || failed ? 1 : 0);
	return lost || failed ? 1 : 0;
}
