// SPDX-License-Identifier: MIT
/*
 * pvio-ctl: the toolstack of the sim world (what xl is on Xen), and on Xen
 * the tool that attaches devices to pvio-backd and reads its counters.
 *
 *   pvio-ctl world start|stop
 *   pvio-ctl create NAME [--domid N] [--mem SIZE]
 *   pvio-ctl destroy DOM
 *   pvio-ctl list
 *   pvio-ctl run DOM -- CMD [ARGS...]
 *   pvio-ctl vbd-attach DOM TARGET [--vdev xvda] [--mode r|w] [--buffered]
 *   pvio-ctl vif-attach DOM [--mac MAC] [--bridge BR] [--devid N]
 *   pvio-ctl vbd-detach DOM VDEV | vif-detach DOM DEVID
 *   pvio-ctl devices [DOM]
 *   pvio-ctl stats [DOM [DEVID]] [--json]
 *
 * Bad input: one line on stderr, exit status 2, nothing created.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <pvio/platform.h>
#include <pvio/xenbus.h>

#include "sim-toolstack.h"
#include "toolstack.h"
#include "util.h"
#include "world.h"

static const char *prog = "pvio-ctl";
static const char *world;
static const char *platform_spec;	/* "sim:DIR" or "xen" */
static char spec_buf[4200];
static const char *backd_sock;

#define die_usage(...) pvio_usage_error(prog, __VA_ARGS__)

static void __attribute__((noreturn, format(printf, 1, 2))) die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static bool is_sim(void)
{
	return strncmp(platform_spec, "sim", 3) == 0;
}

static struct pvio_platform *g_plat;
static struct pvio_xs *g_xs;

/* Every path out closes what it opened (exit() included). */
static void close_handles(void)
{
	pvio_xs_close(g_xs);
	pvio_platform_close(g_plat);
	g_xs = NULL;
	g_plat = NULL;
}

static struct pvio_platform *dom0(void)
{
	struct pvio_platform *p = g_plat;
	int rc;

	if (p)
		return p;
	rc = pvio_platform_open(&p, platform_spec, 0, 0);
	if (rc == -ENOENT && is_sim())
		die("no sim world running in %s (pvio-ctl world start)", world);
	if (rc)
		die("cannot attach to the %s platform as dom0: %s",
		    platform_spec, strerror(-rc));
	g_plat = p;
	return p;
}

static struct pvio_xs *xs(void)
{
	struct pvio_xs *x = g_xs;
	int rc;

	if (x)
		return x;
	rc = pvio_xs_open(&x, dom0());
	if (rc)
		die("cannot connect to xenstore: %s", strerror(-rc));
	g_xs = x;
	return x;
}

static unsigned int lookup_dom(const char *s)
{
	unsigned int d;

	if (pvio_ts_domain_lookup(xs(), s, &d))
		die_usage("no domain '%s'", s);
	return d;
}

static void need_sim(const char *what)
{
	if (!is_sim())
		die_usage("'%s' is for the sim world; on Xen use xl", what);
}

/* ---- world ---------------------------------------------------------------- */

static int cmd_world(int argc, char **argv)
{
	const char *args[4] = { NULL };
	uint64_t mem;
	int rc;

	if (argc < 2)
		die_usage("world: start or stop?");
	need_sim("world");
	if (strcmp(argv[1], "start") == 0) {
		if (argc == 4 && strcmp(argv[2], "--mem") == 0) {
			if (pvio_parse_size(argv[3], &mem))
				die_usage("bad --mem '%s'", argv[3]);
			args[0] = "--mem";
			args[1] = argv[3];
		} else if (argc != 2) {
			die_usage("world start [--mem SIZE]");
		}
		if (pvio_world_pid(world) > 0 && access(world, F_OK) == 0) {
			struct pvio_platform *p;

			if (pvio_platform_open(&p, platform_spec, 0, 0) == 0) {
				pvio_platform_close(p);
				die("a world is already running in %s", world);
			}
		}
		rc = pvio_world_start(world, args);
		if (rc)
			die("cannot start pvio-simhv (%s) in %s: %s",
			    pvio_world_simhv_path(), world, strerror(-rc));
		printf("world %s running\n", world);
		return 0;
	}
	if (strcmp(argv[1], "stop") == 0) {
		if (argc != 2)
			die_usage("world stop takes no arguments");
		rc = pvio_world_stop(world, 10000);
		if (rc == -ENOENT)
			die("no world in %s", world);
		if (rc)
			die("cannot stop the world in %s: %s", world,
			    strerror(-rc));
		printf("world %s stopped\n", world);
		return 0;
	}
	die_usage("world: unknown action '%s'", argv[1]);
}

/* ---- domains ---------------------------------------------------------------- */

static bool valid_name(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > 63 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_' ||
		      s[i] == '.'))
			return false;
	return true;
}

/* --backend-type T and --backend DOM, shared by vbd-attach and vif-attach */
static void backend_opt(int c, const char *arg, char *type, size_t typelen,
			unsigned int *be)
{
	if (c == 't') {
		if (!valid_name(arg) || strlen(arg) >= typelen)
			die_usage("bad --backend-type '%s'", arg);
		snprintf(type, typelen, "%s", arg);
	} else if (pvio_parse_uint(arg, 0, 0x7fef, be)) {
		die_usage("bad --backend '%s'", arg);
	}
}

static int cmd_create(int argc, char **argv)
{
	static const struct option o[] = {
		{ "domid", required_argument, NULL, 'd' },
		{ "mem", required_argument, NULL, 'm' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned int domid = 0, got;
	uint64_t mem = 0;
	const char *name;
	int c, rc;

	need_sim("create");
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", o, NULL)) != -1) {
		if (c == 'd') {
			if (pvio_parse_uint(optarg, 1, 0x7fef, &domid))
				die_usage("bad --domid '%s' (1..32751)", optarg);
		} else if (c == 'm') {
			if (pvio_parse_size(optarg, &mem) || mem < (1u << 20) ||
			    mem > (64ull << 30) || mem % 4096)
				die_usage("bad --mem '%s' (1M..64G)", optarg);
		} else {
			pvio_usage_bad_option(prog, c, argv);
		}
	}
	if (optind != argc - 1)
		die_usage("create NAME [--domid N] [--mem SIZE]");
	name = argv[optind];
	if (!valid_name(name))
		die_usage("bad domain name '%s' (letters, digits, -_.; not a number)",
			  name);
	if (pvio_ts_domain_lookup(xs(), name, &got) == 0)
		die_usage("a domain named '%s' exists (domid %u)", name, got);
	rc = pvio__sim_domain_create(dom0(), domid, name, mem, &got);
	if (rc == -EEXIST)
		die_usage("domid %u is taken", domid);
	if (rc)
		die("cannot create the domain: %s", strerror(-rc));
	rc = pvio_ts_domain_add(xs(), got, name);
	if (rc) {
		/* nothing half-created */
		pvio__sim_domain_destroy(dom0(), got);
		pvio_ts_domain_rm(xs(), got);
		die("cannot write the domain's xenstore nodes: %s", strerror(-rc));
	}
	printf("%u\n", got);
	return 0;
}

/* Backend directories serving @domid: "/local/domain/B/backend/K/D/I". */
static void for_each_device(unsigned int domid,
			    void (*fn)(const char *kind, unsigned int devid,
				       const char *fe_dir, void *arg),
			    void *arg)
{
	char path[PVIO_XS_PATH_MAX], **kinds = NULL, **ids = NULL;
	int nk, ni, i, j;

	snprintf(path, sizeof(path), "/local/domain/%u/device", domid);
	nk = pvio_xs_directory(xs(), 0, path, &kinds);
	for (i = 0; i < nk; i++) {
		snprintf(path, sizeof(path), "/local/domain/%u/device/%s", domid,
			 kinds[i]);
		ni = pvio_xs_directory(xs(), 0, path, &ids);
		for (j = 0; j < ni; j++) {
			char fe_dir[2 * PVIO_XS_PATH_MAX];

			snprintf(fe_dir, sizeof(fe_dir), "%s/%s", path, ids[j]);
			fn(kinds[i], (unsigned int)strtoul(ids[j], NULL, 10),
			   fe_dir, arg);
		}
		free(ids);
		ids = NULL;
	}
	free(kinds);
}

/* The backend directory named by a frontend directory, split up. */
static int backend_of(const char *fe_dir, unsigned int *be, char *type,
		      size_t tlen)
{
	char key[PVIO_XS_PATH_MAX + 16], *b = NULL, t[64];
	unsigned int fe, id;
	int rc = -EINVAL;

	snprintf(key, sizeof(key), "%s/backend", fe_dir);
	if (pvio_xs_read(xs(), 0, key, &b) < 0)
		return -ENOENT;
	if (sscanf(b, "/local/domain/%u/backend/%63[^/]/%u/%u", be, t, &fe,
		   &id) == 4) {
		snprintf(type, tlen, "%s", t);
		rc = 0;
	}
	free(b);
	return rc;
}

struct detach_ctx {
	unsigned int domid;
	int failed;
};

static void detach_one(const char *kind, unsigned int devid, const char *fe_dir,
		       void *arg)
{
	struct detach_ctx *d = arg;
	unsigned int be;
	char type[64];

	if (backend_of(fe_dir, &be, type, sizeof(type))) {
		pvio_xs_rm(xs(), 0, fe_dir);
		return;
	}
	if (pvio_ts_dev_remove(xs(), type, be, d->domid, devid, 3000) ==
	    -ETIMEDOUT) {
		fprintf(stderr, "%s: %s %u: the backend did not close in time; removed\n",
			prog, kind, devid);
		d->failed++;
	}
}

static int cmd_destroy(int argc, char **argv)
{
	struct detach_ctx d;
	int rc;

	need_sim("destroy");
	if (argc != 2)
		die_usage("destroy DOM");
	d.domid = lookup_dom(argv[1]);
	d.failed = 0;
	if (d.domid == 0)
		die_usage("dom0 cannot be destroyed");
	for_each_device(d.domid, detach_one, &d);
	rc = pvio__sim_domain_destroy(dom0(), d.domid);
	if (rc && rc != -ESRCH)
		die("cannot destroy domain %u: %s", d.domid, strerror(-rc));
	pvio_ts_domain_rm(xs(), d.domid);
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	struct pvio_sim_dominfo doms[256];
	int n, i;

	need_sim("list");
	if (argc != 1)
		die_usage("list takes no arguments");
	n = pvio__sim_domain_list(dom0(), doms, 256);
	if (n < 0)
		die("cannot list domains: %s", strerror(-n));
	printf("%-20s %5s %6s %s\n", "Name", "ID", "Procs", "State");
	for (i = 0; i < n; i++)
		printf("%-20s %5u %6u %s%s\n",
		       doms[i].name[0] ? doms[i].name : "(unnamed)",
		       doms[i].domid, doms[i].nr_procs,
		       doms[i].dying ? "dying" : "running",
		       doms[i].persistent ? "" : " (transient)");
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	char v[4200];
	unsigned int domid;

	need_sim("run");
	if (argc < 4 || strcmp(argv[2], "--") != 0)
		die_usage("run DOM -- CMD [ARGS...]");
	domid = lookup_dom(argv[1]);
	close_handles();	/* not inherited by the program */
	setenv("PVIO_PLATFORM", platform_spec, 1);
	snprintf(v, sizeof(v), "%u", domid);
	setenv("PVIO_DOMID", v, 1);
	setenv("PVIO_SIM_DIR", world, 1);
	snprintf(v, sizeof(v), "%s/xs/dom%u.sock", world, domid);
	setenv("XENSTORED_PATH", v, 1);
	execvp(argv[3], argv + 3);
	die("cannot run %s: %s", argv[3], strerror(errno));
}

/* ---- devices ------------------------------------------------------------------ */

static int cmd_vbd_attach(int argc, char **argv)
{
	static const struct option o[] = {
		{ "vdev", required_argument, NULL, 'v' },
		{ "mode", required_argument, NULL, 'm' },
		{ "buffered", no_argument, NULL, 'b' },
		{ "backend-type", required_argument, NULL, 't' },
		{ "backend", required_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	struct pvio_ts_vbd v = { .be = 0 };
	char real[4096];
	struct stat st;
	int c, rc;

	snprintf(v.vdev, sizeof(v.vdev), "xvda");
	optind = 1;
	while ((c = getopt_long(argc, argv, ":", o, NULL)) != -1) {
		switch (c) {
		case 'v':
			if (strlen(optarg) >= sizeof(v.vdev) ||
			    pvio_ts_vdev_number(optarg, &v.devid))
				die_usage("bad --vdev '%s' (xvda..xvdp[N])", optarg);
			snprintf(v.vdev, sizeof(v.vdev), "%s", optarg);
			break;
		case 'm':
			if (strcmp(optarg, "r") && strcmp(optarg, "w"))
				die_usage("bad --mode '%s' (r or w)", optarg);
			v.readonly = optarg[0] == 'r';
			break;
		case 'b':
			v.buffered = true;
			break;
		case 't':
		case 'B':
			backend_opt(c, optarg, v.type, sizeof(v.type), &v.be);
			break;
		default:
			pvio_usage_bad_option(prog, c, argv);
		}
	}
	if (optind != argc - 2)
		die_usage("vbd-attach DOM TARGET [--vdev V] [--mode r|w] [--buffered]");
	if (!realpath(argv[optind + 1], real) || stat(real, &st) < 0)
		die_usage("cannot use target '%s': %s", argv[optind + 1],
			  strerror(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		die_usage("target '%s' is neither a file nor a block device",
			  argv[optind + 1]);
	snprintf(v.target, sizeof(v.target), "%s", real);
	v.fe = lookup_dom(argv[optind]);
	if (!v.devid)
		pvio_ts_vdev_number(v.vdev, &v.devid);
	rc = pvio_ts_vbd_add(xs(), &v);
	if (rc == -EEXIST)
		die_usage("domain %u already has %s", v.fe, v.vdev);
	if (rc)
		die("cannot attach: %s", strerror(-rc));
	printf("%u\n", v.devid);
	return 0;
}

static int cmd_vif_attach(int argc, char **argv)
{
	static const struct option o[] = {
		{ "mac", required_argument, NULL, 'm' },
		{ "bridge", required_argument, NULL, 'b' },
		{ "devid", required_argument, NULL, 'd' },
		{ "backend-type", required_argument, NULL, 't' },
		{ "backend", required_argument, NULL, 'B' },
		{ NULL, 0, NULL, 0 },
	};
	struct pvio_ts_vif v = { .be = 0 };
	bool have_mac = false;
	int c, rc;

	optind = 1;
	while ((c = getopt_long(argc, argv, ":", o, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (pvio_ts_parse_mac(optarg, v.mac))
				die_usage("bad --mac '%s' (xx:xx:xx:xx:xx:xx, unicast)",
					  optarg);
			have_mac = true;
			break;
		case 'b':
			if (strlen(optarg) == 0 || strlen(optarg) >= 16 ||
			    !valid_name(optarg))
				die_usage("bad --bridge '%s'", optarg);
			snprintf(v.bridge, sizeof(v.bridge), "%s", optarg);
			break;
		case 'd':
			if (pvio_parse_uint(optarg, 0, 255, &v.devid))
				die_usage("bad --devid '%s' (0..255)", optarg);
			break;
		case 't':
		case 'B':
			backend_opt(c, optarg, v.type, sizeof(v.type), &v.be);
			break;
		default:
			pvio_usage_bad_option(prog, c, argv);
		}
	}
	if (optind != argc - 1)
		die_usage("vif-attach DOM [--mac MAC] [--bridge BR] [--devid N]");
	v.fe = lookup_dom(argv[optind]);
	if (!have_mac) {
		/* Xen's OUI, the rest from the domain and device */
		v.mac[0] = 0x00;
		v.mac[1] = 0x16;
		v.mac[2] = 0x3e;
		v.mac[3] = (uint8_t)(v.fe >> 8);
		v.mac[4] = (uint8_t)v.fe;
		v.mac[5] = (uint8_t)v.devid;
	}
	rc = pvio_ts_vif_add(xs(), &v);
	if (rc == -EEXIST)
		die_usage("domain %u already has vif %u", v.fe, v.devid);
	if (rc)
		die("cannot attach: %s", strerror(-rc));
	printf("%u\n", v.devid);
	return 0;
}

static int cmd_detach(int argc, char **argv, const char *kind)
{
	char fe_dir[PVIO_XS_PATH_MAX], type[64];
	unsigned int domid, devid, be;
	int rc;

	if (argc != 3)
		die_usage("%s-detach DOM %s", kind,
			  strcmp(kind, "vbd") ? "DEVID" : "VDEV");
	domid = lookup_dom(argv[1]);
	if (strcmp(kind, "vbd") == 0 ? pvio_ts_vdev_number(argv[2], &devid)
				     : pvio_parse_uint(argv[2], 0, 255, &devid))
		die_usage("bad device '%s'", argv[2]);
	pvio_xb_frontend_path(fe_dir, domid, kind, devid);
	if (backend_of(fe_dir, &be, type, sizeof(type)))
		die_usage("domain %u has no %s %s", domid, kind, argv[2]);
	rc = pvio_ts_dev_remove(xs(), type, be, domid, devid, 10000);
	if (rc == -ETIMEDOUT)
		die("the backend did not close %s %s in time; removed anyway",
		    kind, argv[2]);
	if (rc)
		die("cannot detach: %s", strerror(-rc));
	return 0;
}

static void print_device(const char *kind, unsigned int devid,
			 const char *fe_dir, void *arg)
{
	char key[PVIO_XS_PATH_MAX + 16], be_dir[PVIO_XS_PATH_MAX], *b = NULL;
	unsigned long fs = 0, bs = 0;
	unsigned int *domid = arg;

	snprintf(key, sizeof(key), "%s/state", fe_dir);
	pvio_xs_read_uint(xs(), 0, key, 0, 8, &fs);
	snprintf(key, sizeof(key), "%s/backend", fe_dir);
	if (pvio_xs_read(xs(), 0, key, &b) >= 0) {
		snprintf(be_dir, sizeof(be_dir), "%s", b);
		free(b);
		snprintf(key, sizeof(key), "%s/state", be_dir);
		pvio_xs_read_uint(xs(), 0, key, 0, 8, &bs);
	} else {
		snprintf(key, sizeof(key), "%s/state", fe_dir);
		if (!pvio_xs_exists(xs(), 0, key))
			return;	/* no split device: libxl's device/suspend */
		snprintf(be_dir, sizeof(be_dir), "-");
	}
	printf("%5u %-5s %8u  %-13s %-13s %s\n", *domid, kind, devid,
	       pvio_xb_state_name((enum pvio_xb_state)fs),
	       pvio_xb_state_name((enum pvio_xb_state)bs), be_dir);
}

static int cmd_devices(int argc, char **argv)
{
	char **doms = NULL;
	unsigned int d;
	int n, i;

	if (argc > 2)
		die_usage("devices [DOM]");
	printf("%5s %-5s %8s  %-13s %-13s %s\n", "Dom", "Kind", "DevID",
	       "Frontend", "Backend", "Backend path");
	if (argc == 2) {
		d = lookup_dom(argv[1]);
		for_each_device(d, print_device, &d);
		return 0;
	}
	n = pvio_xs_directory(xs(), 0, "/local/domain", &doms);
	for (i = 0; i < n; i++) {
		d = (unsigned int)strtoul(doms[i], NULL, 10);
		for_each_device(d, print_device, &d);
	}
	free(doms);
	return 0;
}

/* ---- counters: asked of pvio-backd on its control socket -------------------- */

static int cmd_stats(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char req[128], buf[65536];
	bool json = false;
	const char *dom = NULL, *dev = NULL;
	unsigned int d = 0, devid = 0;
	int i, fd;
	ssize_t n;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (!dom)
			dom = argv[i];
		else if (!dev)
			dev = argv[i];
		else
			die_usage("stats [DOM [DEVID]] [--json]");
	}
	if (dom)
		d = lookup_dom(dom);
	if (dev && pvio_ts_vdev_number(dev, &devid) &&
	    pvio_parse_uint(dev, 0, 0xfffffff, &devid))
		die_usage("bad device '%s'", dev);
	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", backd_sock) >=
	    (int)sizeof(sa.sun_path))
		die_usage("control socket path too long");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("cannot reach pvio-backd at %s: %s", backd_sock,
		    strerror(errno));
	/* a daemon that accepted but does not answer is stuck: say so */
	{
		struct timeval tv = { .tv_sec = 5 };

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	}
	n = snprintf(req, sizeof(req), "stats%s %d %d\n", json ? "-json" : "",
		     dom ? (int)d : -1, dev ? (int)devid : -1);
	if (write(fd, req, (size_t)n) != n)
		die("cannot talk to pvio-backd: %s", strerror(errno));
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	if (n < 0)
		die("pvio-backd at %s did not answer: %s", backd_sock,
		    errno == EAGAIN ? "no reply in 5 s" : strerror(errno));
	close(fd);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: pvio-ctl [-w DIR | --xen] [--backd-sock PATH] COMMAND ...\n"
"The sim world's toolstack, and pvio-backd's device tool on Xen.\n\n"
"  world start [--mem SIZE] | world stop          run or stop a sim world\n"
"  create NAME [--domid N] [--mem SIZE]           create a domain\n"
"  destroy DOM                                    detach its devices, kill it\n"
"  list                                           domains\n"
"  run DOM -- CMD [ARGS...]                       run a program as DOM\n"
"  vbd-attach DOM TARGET [--vdev xvda] [--mode r|w] [--buffered]\n"
"  vbd-detach DOM VDEV\n"
"  vif-attach DOM [--mac MAC] [--bridge BR] [--devid N]\n"
"  vif-detach DOM DEVID\n"
"  devices [DOM]                                  devices and XenBus states\n"
"  stats [DOM [DEV]] [--json]                     pvio-backd's counters\n\n"
"  -w, --world DIR   the sim world (default: $PVIO_SIM_DIR or /run/pvio-sim)\n"
"      --xen         real Xen (devices, stats)\n"
"      --backd-sock  pvio-backd's control socket (default: WORLD/backd.sock,\n"
"                    or /run/pvio/backd.sock on Xen)\n");
}

int main(int argc, char **argv)
{
	static char sock[4200];
	const char *cmd;
	bool xen = false;
	int i;

	world = pvio_sim_default_dir();
	opterr = 0;	/* the commands' getopt: our own one-line messages */
	/* global options come before the command */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--xen") == 0) {
			xen = true;
		} else if ((strcmp(argv[i], "-w") == 0 ||
			    strcmp(argv[i], "--world") == 0) && i + 1 < argc) {
			world = argv[++i];
		} else if (strcmp(argv[i], "--backd-sock") == 0 && i + 1 < argc) {
			backd_sock = argv[++i];
		} else {
			die_usage("unknown option '%s'", argv[i]);
		}
	}
	if (i == argc)
		die_usage("no command");
	if (xen) {
		platform_spec = "xen";
	} else {
		snprintf(spec_buf, sizeof(spec_buf), "sim:%s", world);
		platform_spec = spec_buf;
	}
	if (!backd_sock) {
		if (xen)
			backd_sock = "/run/pvio/backd.sock";
		else {
			snprintf(sock, sizeof(sock), "%s/backd.sock", world);
			backd_sock = sock;
		}
	}
	pvio_log_init(prog, PVIO_LOG_WARN);
	atexit(close_handles);
	cmd = argv[i];
	argc -= i;
	argv += i;
	if (strcmp(cmd, "world") == 0)
		return cmd_world(argc, argv);
	if (strcmp(cmd, "create") == 0)
		return cmd_create(argc, argv);
	if (strcmp(cmd, "destroy") == 0)
		return cmd_destroy(argc, argv);
	if (strcmp(cmd, "list") == 0)
		return cmd_list(argc, argv);
	if (strcmp(cmd, "run") == 0)
		return cmd_run(argc, argv);
	if (strcmp(cmd, "vbd-attach") == 0)
		return cmd_vbd_attach(argc, argv);
	if (strcmp(cmd, "vif-attach") == 0)
		return cmd_vif_attach(argc, argv);
	if (strcmp(cmd, "vbd-detach") == 0)
		return cmd_detach(argc, argv, "vbd");
	if (strcmp(cmd, "vif-detach") == 0)
		return cmd_detach(argc, argv, "vif");
	if (strcmp(cmd, "devices") == 0)
		return cmd_devices(argc, argv);
	if (strcmp(cmd, "stats") == 0)
		return cmd_stats(argc, argv);
	die_usage("unknown command '%s'", cmd);
}
