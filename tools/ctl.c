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
 *   pvio-ctl vbd-limit DOM VDEV [--iops N] [--bytes N] | vif-rate DOM DEVID R
 *   pvio-ctl devices [DOM]
 *   pvio-ctl stats [DOM [DEVID]] [--json | --prometheus]
 *   pvio-ctl top [DOM] [-b] [-n N] [-d SECS]
 *
 * Bad input: one line on stderr, exit status 2, nothing created. A
 * runtime failure (a missing image, a device the backend failed, no
 * pvio-backd to ask): one line, exit status 1.
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <math.h>
#include <signal.h>

#include <pvio/platform.h>
#include <pvio/ring.h>
#include <pvio/xenbus.h>

#include "sim-toolstack.h"
#include "toolstack.h"
#include "util.h"
#include "world.h"

static const char *prog = "pvio-ctl";
static const char *world;
static const char *platform_spec;	/* "sim:DIR" or "xen" */
static char spec_buf[PVIO_PLATFORM_SPEC_MAX];
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
			/* pvio-simhv's own bounds: a one-line error here,
			 * not its failure to start */
			if (pvio_parse_size(argv[3], &mem) || mem < (1u << 20) ||
			    mem > (64ull << 30) || mem % 4096)
				die_usage("bad --mem '%s' (1M..64G)", argv[3]);
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
	return pvio_name_chars_ok(s) && strlen(s) <= 63 &&
	       !(s[0] >= '0' && s[0] <= '9');
}

/* a bridge's name, with vif-openvswitch's .VLAN and :TRUNK suffixes */
static bool bridge_chars_ok(const char *s)
{
	char t[64];
	size_t i;

	if (strlen(s) >= sizeof(t))
		return false;
	memcpy(t, s, strlen(s) + 1);
	for (i = 0; t[i]; i++)
		if (t[i] == ':')
			t[i] = '.';
	return pvio_name_chars_ok(t);
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

static int detach_dev(const char *kind, const char *type, unsigned int be,
		      unsigned int domid, unsigned int devid, int timeout_ms);

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
	if (detach_dev(kind, type, be, d->domid, devid, 3000) > 0)
		d->failed++;
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
	char v[PVIO_PATH_BUF];
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

/*
 * Is a pvio-backd listening on its control socket? Then an attach waits
 * for it by default; a device for another backend (a mock, Linux's
 * blkback) or written before pvio-backd starts does not wait unless asked.
 */
static bool backd_answers(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ok;

	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", backd_sock) >=
	    (int)sizeof(sa.sun_path))
		return false;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

enum attach_wait { WAIT_AUTO, WAIT_YES, WAIT_NO };

/*
 * Wait until the backend at @be_dir is ready for its frontend (InitWait or
 * Connected; with a hotplug script also hotplug-status=connected) or has
 * failed (a hotplug-error node, or Closing / Closed with its error node),
 * as xl waits for a device it adds. @initwait: only until the backend is
 * in InitWait (the moment libxl runs the script). Print which; 0, or
 * exit 1.
 */
static int attach_wait(const char *be_dir, const char *what, unsigned int secs,
		       bool hotplug, bool initwait)
{
	char key[PVIO_XS_PATH_MAX + 32], *e = NULL, *hs = NULL;
	uint64_t deadline = pvio_now_ms() + (uint64_t)secs * 1000u;
	unsigned long st = 0;

	for (;;) {
		snprintf(key, sizeof(key), "%s/hotplug-error", be_dir);
		if (pvio_xs_read(xs(), 0, key, &e) >= 0) {
			fprintf(stderr, "%s: %s failed: hotplug script: %s\n",
				prog, what, e);
			free(e);
			exit(1);
		}
		snprintf(key, sizeof(key), "%s/state", be_dir);
		if (pvio_xs_read_uint(xs(), 0, key, 0, 8, &st) < 0)
			st = 0;
		if (st == PVIO_XB_CLOSING || st == PVIO_XB_CLOSED) {
			snprintf(key, sizeof(key), "%s/error", be_dir);
			if (pvio_xs_read(xs(), 0, key, &e) < 0)
				e = NULL;
			fprintf(stderr, "%s: %s failed: %s\n", prog, what,
				e ? e : "the backend closed it");
			free(e);
			exit(1);
		}
		if (st == PVIO_XB_INITWAIT || st == PVIO_XB_CONNECTED) {
			bool ok = !hotplug || initwait;

			if (!ok) {
				snprintf(key, sizeof(key), "%s/hotplug-status", be_dir);
				if (pvio_xs_read(xs(), 0, key, &hs) >= 0) {
					ok = strcmp(hs, "connected") == 0;
					free(hs);
				}
			}
			if (ok && initwait)
				return 0;
			if (ok) {
				fprintf(stderr, "%s: %s %s\n", prog, what,
					st == PVIO_XB_CONNECTED ? "connected"
						: "ready (backend InitWait: waiting for the frontend)");
				return 0;
			}
		}
		if (pvio_now_ms() >= deadline) {
			fprintf(stderr, "%s: %s failed: %s within %u s (state %s; is a "
				"backend serving %s?)\n", prog, what,
				st >= PVIO_XB_INITWAIT ? "no hotplug-status=connected"
						      : "no backend took it",
				secs, pvio_xb_state_name((enum pvio_xb_state)st),
				be_dir);
			exit(1);
		}
		usleep(20000);
	}
}

/*
 * Run a hotplug script as libxl does with run_hotplug_scripts=1 (there is
 * no udev in the sim world): XENBUS_PATH and friends in the environment,
 * ACTION as its argument ("add" or "remove" for disks; "online" or
 * "offline", then "type_if=vif", for vifs: libxl_linux.c), killed after
 * @secs. Return its exit status, or -errno.
 */
static int run_hotplug(const char *script, const char *action,
		       const char *be_dir, const char *kind, const char *vif,
		       unsigned int secs)
{
	uint64_t deadline = pvio_now_ms() + (uint64_t)secs * 1000u;
	char sock[4200];
	int status;
	pid_t pid, r;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		setenv("XENBUS_PATH", be_dir, 1);
		setenv("XENBUS_TYPE", kind, 1);
		setenv("XENBUS_BASE_PATH", "backend", 1);
		setenv("script", script, 1);
		if (vif)
			setenv("vif", vif, 1);
		if (is_sim()) {
			snprintf(sock, sizeof(sock), "%s/xs/dom0.sock", world);
			setenv("XENSTORED_PATH", sock, 1);
		}
		if (vif)
			execl(script, script, action, "type_if=vif", (char *)NULL);
		else
			execl(script, script, action, (char *)NULL);
		fprintf(stderr, "%s: cannot run %s: %s\n", prog, script,
			strerror(errno));
		_exit(127);
	}
	while ((r = waitpid(pid, &status, WNOHANG)) == 0) {
		if (pvio_now_ms() >= deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -ETIMEDOUT;
		}
		usleep(20000);
	}
	if (r < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* After the add: the script once the backend is in InitWait, then wait. */
static void attach_finish(const char *be_dir, const char *what,
			  const char *script, const char *kind, const char *vif,
			  unsigned int secs)
{
	int rc;

	if (script[0]) {
		attach_wait(be_dir, what, secs, true, true);
		rc = run_hotplug(script, strcmp(kind, "vif") == 0 ? "online" : "add",
				 be_dir, kind, vif, secs);
		if (rc == -ETIMEDOUT)
			die("%s failed: hotplug script %s did not finish in %u s",
			    what, script, secs);
		if (rc) {
			char key[PVIO_XS_PATH_MAX + 32], *e = NULL;

			/* the script's own words, when it left some */
			snprintf(key, sizeof(key), "%s/hotplug-error", be_dir);
			if (pvio_xs_read(xs(), 0, key, &e) >= 0)
				die("%s failed: hotplug script %s: %s", what,
				    script, e);
			die("%s failed: hotplug script %s: %s %d", what, script,
			    rc < 0 ? strerror(-rc) : "exit status", rc);
		}
	}
	attach_wait(be_dir, what, secs, script[0] != 0, false);
}

/* libxl's LIBXL_HOTPLUG_TIMEOUT: seconds a script may take */
#define HOTPLUG_SECS	40

/*
 * Detach one device as libxl does (libxl_device.c): online=0 and Closing,
 * wait up to @timeout_ms for Closed; then the hotplug script's last step
 * ("remove" for a disk: the stock block script frees its loop device;
 * "offline" for a vif: out of its bridge, routes and firewall rules)
 * while the backend directory, which the script reads, is still there;
 * then both directories go. As libxl, the script runs and the directories
 * go also when the backend did not close in time or the script fails.
 * 0; -ENOENT if there is no such device; 1 after saying on stderr what
 * failed.
 */
static int detach_dev(const char *kind, const char *type, unsigned int be,
		      unsigned int domid, unsigned int devid, int timeout_ms)
{
	char be_dir[PVIO_XS_PATH_MAX], key[PVIO_XS_PATH_MAX + 16];
	char ifname[32], *script = NULL, *vn = NULL;
	bool vif = strcmp(kind, "vif") == 0;
	int rc, bad = 0;

	pvio_xb_backend_path(be_dir, be, type, domid, devid);
	snprintf(key, sizeof(key), "%s/script", be_dir);
	if (pvio_xs_read(xs(), 0, key, &script) < 0)
		script = NULL;
	/* the TAP's name, as vif-attach gave it to the script */
	snprintf(key, sizeof(key), "%s/vifname", be_dir);
	if (vif && pvio_xs_read(xs(), 0, key, &vn) >= 0 && vn[0])
		snprintf(ifname, sizeof(ifname), "%s", vn);
	else
		snprintf(ifname, sizeof(ifname), "vif%u.%u", domid, devid);
	free(vn);
	rc = pvio_ts_dev_close(xs(), type, be, domid, devid, timeout_ms);
	if (rc == -ENOENT) {
		free(script);
		return rc;
	}
	if (rc == -ETIMEDOUT) {
		fprintf(stderr, "%s: %s %u of domain %u: the backend did not close in %d s; removed anyway\n",
			prog, kind, devid, domid, timeout_ms / 1000);
		bad = 1;
	}
	if (script && script[0]) {
		rc = run_hotplug(script, vif ? "offline" : "remove", be_dir,
				 vif ? "vif" : type, vif ? ifname : NULL,
				 HOTPLUG_SECS);
		if (rc) {
			fprintf(stderr, "%s: %s %u of domain %u: hotplug script %s %s: %s",
				prog, kind, devid, domid, script,
				vif ? "offline" : "remove",
				rc == -ETIMEDOUT ? "did not finish" :
				rc < 0 ? strerror(-rc) : "exit status");
			if (rc == -ETIMEDOUT)
				fprintf(stderr, " in %u s", HOTPLUG_SECS);
			else if (rc > 0)
				fprintf(stderr, " %d", rc);
			fprintf(stderr, "; removed anyway\n");
			bad = 1;
		}
	}
	pvio_ts_dev_rm(xs(), type, be, domid, devid);
	free(script);
	return bad;
}

static void wait_opt(int c, const char *arg, enum attach_wait *w,
		     unsigned int *secs)
{
	if (c == 'W') {
		*w = WAIT_YES;
	} else if (c == 'N') {
		*w = WAIT_NO;
	} else {
		if (pvio_parse_uint(arg, 1, 3600, secs))
			die_usage("bad --timeout '%s' (1..3600 seconds)", arg);
		*w = WAIT_YES;
	}
}

/* --script PATH: an absolute path, or a name in /etc/xen/scripts (xl) */
static void script_opt(const char *arg, char *out, size_t len)
{
	int n;

	if (!arg[0] || strchr(arg, '\n'))
		die_usage("bad --script '%s'", arg);
	n = snprintf(out, len, "%s%s", strchr(arg, '/') ? "" : "/etc/xen/scripts/",
		     arg);
	if (n < 0 || (size_t)n >= len)
		die_usage("bad --script '%s': too long", arg);
	if (access(out, X_OK))
		die("hotplug script %s: %s", out, strerror(errno));
}

static bool want_wait(enum attach_wait w)
{
	return w == WAIT_YES || (w == WAIT_AUTO && backd_answers());
}

static bool is_remote_target(const char *t)
{
	return !strncmp(t, "rbd:", 4) || !strncmp(t, "nbd://", 6) ||
	       !strncmp(t, "nbd+unix://", 11) || !strncmp(t, "nbds://", 7) ||
	       !strncmp(t, "nbds+unix://", 12);
}

static int cmd_vbd_attach(int argc, char **argv)
{
	static const struct option o[] = {
		{ "vdev", required_argument, NULL, 'v' },
		{ "mode", required_argument, NULL, 'm' },
		{ "buffered", no_argument, NULL, 'b' },
		{ "backend-type", required_argument, NULL, 't' },
		{ "backend", required_argument, NULL, 'B' },
		{ "wait", no_argument, NULL, 'W' },
		{ "no-wait", no_argument, NULL, 'N' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "script", required_argument, NULL, 's' },
		{ "no-discard", no_argument, NULL, 'D' },
		{ NULL, 0, NULL, 0 },
	};
	struct pvio_ts_vbd v = { .be = 0 };
	enum attach_wait wait = WAIT_AUTO;
	unsigned int secs = 10;
	char real[4096], be_dir[PVIO_XS_PATH_MAX], what[64];
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
		case 'W':
		case 'N':
		case 'T':
			wait_opt(c, optarg, &wait, &secs);
			break;
		case 's':
			script_opt(optarg, v.script, sizeof(v.script));
			break;
		case 'D':
			v.no_discard = true;
			break;
		default:
			pvio_usage_bad_option(prog, c, argv);
		}
	}
	if (optind != argc - 2)
		die_usage("vbd-attach DOM TARGET [--vdev V] [--mode r|w] [--buffered]");
	/* the target is the world's state, not the command line's: runtime;
	 * with a hotplug script, the script's to interpret (block-iscsi, ...) */
	if (v.script[0] || is_remote_target(argv[optind + 1])) {
		/* pvio-backd opens a remote one itself: rbd:POOL/IMAGE...,
		 * nbd://..., nbd+unix://... */
		if (strlen(argv[optind + 1]) >= sizeof(real) ||
		    strchr(argv[optind + 1], '\n'))
			die_usage("bad target '%s'", argv[optind + 1]);
		snprintf(real, sizeof(real), "%s", argv[optind + 1]);
	} else if (!realpath(argv[optind + 1], real) || stat(real, &st) < 0)
		die("cannot use target '%s': %s", argv[optind + 1],
		    strerror(errno));
	else if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		die("target '%s' is neither a file nor a block device",
		    argv[optind + 1]);
	if (strchr(real, '\n'))	/* xenstore values are read line-wise by scripts */
		die_usage("target '%s': a newline in its name cannot go into xenstore",
			  real);
	snprintf(v.target, sizeof(v.target), "%s", real);
	v.fe = lookup_dom(argv[optind]);
	if (!v.devid)
		pvio_ts_vdev_number(v.vdev, &v.devid);
	rc = pvio_ts_vbd_add(xs(), &v);
	if (rc == -EEXIST)
		die("domain %u already has %s", v.fe, v.vdev);
	if (rc)
		die("cannot attach: %s", strerror(-rc));
	printf("%u\n", v.devid);
	fflush(stdout);
	if (v.script[0] || want_wait(wait)) {
		pvio_xb_backend_path(be_dir, v.be, v.type[0] ? v.type : "vbd",
				     v.fe, v.devid);
		snprintf(what, sizeof(what), "vbd %s of domain %u", v.vdev, v.fe);
		attach_finish(be_dir, what, v.script, v.type[0] ? v.type : "vbd",
			      NULL, secs);
	}
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
		{ "wait", no_argument, NULL, 'W' },
		{ "no-wait", no_argument, NULL, 'N' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "script", required_argument, NULL, 's' },
		{ "mtu", required_argument, NULL, 'M' },
		{ "vifname", required_argument, NULL, 'V' },
		{ "ip", required_argument, NULL, 'I' },
		{ NULL, 0, NULL, 0 },
	};
	struct pvio_ts_vif v = { .be = 0 };
	enum attach_wait wait = WAIT_AUTO;
	unsigned int secs = 10;
	char be_dir[PVIO_XS_PATH_MAX], what[64];
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
			/* a bridge, or Open vSwitch's BR[.VLAN][:TRUNK...]
			 * as vif-openvswitch reads it (pvio-backd checks the
			 * numbers) */
			if (strlen(optarg) == 0 || strlen(optarg) >= sizeof(v.bridge) ||
			    strcspn(optarg, ".:") >= 16 || !bridge_chars_ok(optarg))
				die_usage("bad --bridge '%s' (BR[.VLAN][:TRUNK...], BR 1..15 of a-z A-Z 0-9 - _)",
					  optarg);
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
		case 'W':
		case 'N':
		case 'T':
			wait_opt(c, optarg, &wait, &secs);
			break;
		case 's':
			script_opt(optarg, v.script, sizeof(v.script));
			break;
		case 'M':
			if (pvio_parse_uint(optarg, 68, 65521, &v.mtu))
				die_usage("bad --mtu '%s' (68..65521)", optarg);
			break;
		case 'V':
			if (strlen(optarg) >= sizeof(v.vifname) || !valid_name(optarg))
				die_usage("bad --vifname '%s' (1..15 of a-z A-Z 0-9 - _ .)",
					  optarg);
			snprintf(v.vifname, sizeof(v.vifname), "%s", optarg);
			break;
		case 'I':
			if (strlen(optarg) >= sizeof(v.ip) || strpbrk(optarg, "\n\"'$`;&|"))
				die_usage("bad --ip '%s'", optarg);
			snprintf(v.ip, sizeof(v.ip), "%s", optarg);
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
		die("domain %u already has vif %u", v.fe, v.devid);
	if (rc)
		die("cannot attach: %s", strerror(-rc));
	printf("%u\n", v.devid);
	fflush(stdout);
	if (v.script[0] || want_wait(wait)) {
		char ifname[32];

		if (v.vifname[0])
			snprintf(ifname, sizeof(ifname), "%s", v.vifname);
		else
			snprintf(ifname, sizeof(ifname), "vif%u.%u", v.fe, v.devid);
		pvio_xb_backend_path(be_dir, v.be, v.type[0] ? v.type : "vif",
				     v.fe, v.devid);
		snprintf(what, sizeof(what), "vif %u of domain %u", v.devid, v.fe);
		attach_finish(be_dir, what, v.script, "vif", ifname, secs);
	}
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
	rc = detach_dev(kind, type, be, domid, devid, 10000);
	if (rc == -ENOENT)
		die_usage("domain %u has no %s %s", domid, kind, argv[2]);
	return rc ? 1 : 0;
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

/* Write (or with @val NULL remove) node @key of a device's backend. */
static void backend_node(const char *kind, const char *dom, const char *dev,
			 const char *key, const char *val)
{
	char fe_dir[PVIO_XS_PATH_MAX], be_dir[PVIO_XS_PATH_MAX + 64], type[64];
	unsigned int domid, devid, be;
	int rc;

	domid = lookup_dom(dom);
	if (strcmp(kind, "vbd") == 0 ? pvio_ts_vdev_number(dev, &devid)
				     : pvio_parse_uint(dev, 0, 255, &devid))
		die_usage("bad device '%s'", dev);
	pvio_xb_frontend_path(fe_dir, domid, kind, devid);
	if (backend_of(fe_dir, &be, type, sizeof(type)))
		die_usage("domain %u has no %s %s", domid, kind, dev);
	pvio_xb_backend_path(be_dir, be, type, domid, devid);
	strcat(be_dir, "/");
	strcat(be_dir, key);
	rc = val ? pvio_xs_write(xs(), 0, be_dir, val) : pvio_xs_rm(xs(), 0, be_dir);
	if (rc && !(rc == -ENOENT && !val))
		die("cannot write %s: %s", be_dir, strerror(-rc));
}

/* The largest limit pvio-backd takes (blk-xenbus.c vbd_limits()): it
 * ignores a larger one, with a log line nobody running us reads. */
#define VBD_LIMIT_MAX	(UINT64_MAX >> 1)

/* vbd-limit DOM VDEV [--iops N] [--bytes N]: 0 lifts a limit */
static int cmd_vbd_limit(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "iops", required_argument, NULL, 'i' },
		{ "bytes", required_argument, NULL, 'b' },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const keys[2] = { "pvio-iops-limit", "pvio-bytes-limit" };
	bool set[2] = { false, false };		/* --iops, --bytes */
	uint64_t val[2];
	int c, k;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'i' && c != 'b')
			die_usage("vbd-limit DOM VDEV [--iops N] [--bytes N]");
		k = c == 'b';
		if (pvio_parse_size(optarg, &val[k]) || val[k] > VBD_LIMIT_MAX)
			die_usage("bad --%s '%s' (0..%llu)", k ? "bytes" : "iops",
				  optarg, (unsigned long long)VBD_LIMIT_MAX);
		set[k] = true;
	}
	if (argc - optind != 2 || (!set[0] && !set[1]))
		die_usage("vbd-limit DOM VDEV [--iops N] [--bytes N]");
	for (k = 0; k < 2; k++) {
		char buf[32];

		if (!set[k])
			continue;
		snprintf(buf, sizeof(buf), "%llu", (unsigned long long)val[k]);
		/* 0: the node goes, and with it the limit */
		backend_node("vbd", argv[optind], argv[optind + 1], keys[k],
			     val[k] ? buf : NULL);
	}
	return 0;
}

/* vif-rate DOM DEVID RATE|off */
static int cmd_vif_rate(int argc, char **argv)
{
	uint64_t bytes, usec;
	char buf[64];

	if (argc != 4)
		die_usage("vif-rate DOM DEVID RATE|off");
	if (strcmp(argv[3], "off") == 0) {
		backend_node("vif", argv[1], argv[2], "rate", NULL);
		return 0;
	}
	if (pvio_ts_parse_rate(argv[3], &bytes, &usec))
		die_usage("bad rate '%s' (BYTES,USECS or e.g. 10Mb/s[@20ms])", argv[3]);
	snprintf(buf, sizeof(buf), "%llu,%llu", (unsigned long long)bytes,
		 (unsigned long long)usec);
	backend_node("vif", argv[1], argv[2], "rate", buf);
	return 0;
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

/*
 * Send @req to pvio-backd, its whole answer in *@out (malloc'd, NUL
 * terminated). Failure to reach it is a runtime error: exit 1.
 */
static size_t backd_ask(const char *req, char **out)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	size_t len = 0, cap = 65536;
	char *buf;
	ssize_t n;
	int fd;

	if (snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", backd_sock) >=
	    (int)sizeof(sa.sun_path))
		die_usage("control socket path too long");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("cannot reach pvio-backd at %s: %s", backd_sock,
		    strerror(errno));
	/* a daemon that accepted but does not answer is stuck: say so */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = (ssize_t)strlen(req);
	/* a daemon that closed on us is an error to report, not a signal
	 * (SIGPIPE stays as it is: `pvio-ctl top | head` must end) */
	if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n)
		die("cannot talk to pvio-backd: %s", strerror(errno));
	buf = malloc(cap);
	if (!buf)
		die("out of memory");
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				die("out of memory");
			buf = nb;
			cap *= 2;
		}
	}
	if (n < 0)
		die("pvio-backd at %s did not answer: %s", backd_sock,
		    errno == EAGAIN ? "no reply in 5 s" : strerror(errno));
	close(fd);
	buf[len] = 0;
	*out = buf;
	return len;
}

static struct json_object *backd_stats_json(int dom, int devid)
{
	struct json_object *o;
	char req[128], *txt;

	snprintf(req, sizeof(req), "stats-json %d %d\n", dom, devid);
	backd_ask(req, &txt);
	o = json_tokener_parse(txt);
	if (!o || !json_object_is_type(o, json_type_object))
		die("pvio-backd answered something that is not JSON: %.80s", txt);
	free(txt);
	return o;
}

static uint64_t ju(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v))
		return 0;
	return json_object_get_uint64(v);
}

static uint64_t ju2(struct json_object *o, const char *k1, const char *k2)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, k1, &v))
		return 0;
	return ju(v, k2);
}

static const char *js(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool is_vbd(struct json_object *d)
{
	const char *k = js(d, "kind");

	return k && strcmp(k, "vbd") == 0;
}

/* ---- Prometheus text exposition (node_exporter's textfile collector) ---- */

/* A label value: backslash, double quote and newline escaped. */
static void prom_str(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void prom_labels(FILE *f, struct json_object *d, const char *extra_k,
			const char *extra_v)
{
	fprintf(f, "{kind=\"%s\",domid=\"%llu\",devid=\"%llu\"",
		is_vbd(d) ? "vbd" : "vif", (unsigned long long)ju(d, "domid"),
		(unsigned long long)ju(d, "devid"));
	if (extra_k) {
		fprintf(f, ",%s=\"", extra_k);
		prom_str(f, extra_v);
		fputc('"', f);
	}
	fputc('}', f);
}

typedef void (*prom_fn)(FILE *f, const char *name, struct json_object *d);

/* One metric family: HELP, TYPE, then every device's samples together. */
static void prom_family(FILE *f, struct json_object *devs, const char *name,
			const char *type, const char *help, int kinds,
			prom_fn fn)
{
	size_t i, n = json_object_array_length(devs);
	bool any = false;

	for (i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(devs, i);

		if (!(kinds & (is_vbd(d) ? 1 : 2)))
			continue;
		if (!any)
			fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help,
				name, type);
		any = true;
		fn(f, name, d);
	}
}

#define PROM_SIMPLE(fnname, expr)					\
static void fnname(FILE *f, const char *name, struct json_object *d)	\
{									\
	fputs(name, f);							\
	prom_labels(f, d, NULL, NULL);					\
	fprintf(f, " %llu\n", (unsigned long long)(expr));		\
}
PROM_SIMPLE(p_read, ju(d, "bytes_read"))
PROM_SIMPLE(p_written, ju(d, "bytes_written"))
PROM_SIMPLE(p_notif_tx, ju(d, "notifications_sent"))
PROM_SIMPLE(p_notif_rx, ju(d, "notifications_received"))
PROM_SIMPLE(p_inflight, ju(d, "inflight"))
PROM_SIMPLE(p_connects, ju(d, "connects"))
PROM_SIMPLE(p_queues, ju(d, "queues"))
PROM_SIMPLE(p_connected, !strcmp(js(d, "state") ? js(d, "state") : "",
				 "Connected"))
PROM_SIMPLE(p_failed, json_object_get_boolean(
		json_object_object_get(d, "failed")))

static void p_info(FILE *f, const char *name, struct json_object *d)
{
	const char *t = js(d, is_vbd(d) ? "target" : "ifname");

	fputs(name, f);
	prom_labels(f, d, is_vbd(d) ? "target" : "ifname", t ? t : "");
	fputs(" 1\n", f);
}

static void p_requests(FILE *f, const char *name, struct json_object *d)
{
	static const char *const blk[] = { "read", "write", "flush", "barrier",
					   "discard", "unknown" };
	static const char *const net[] = { "tx", "rx" };
	const char *const *ops = is_vbd(d) ? blk : net;
	size_t i, n = is_vbd(d) ? 6 : 2;

	for (i = 0; i < n; i++) {
		fputs(name, f);
		prom_labels(f, d, "op", ops[i]);
		fprintf(f, " %llu\n", (unsigned long long)ju2(d,
			is_vbd(d) ? "requests" : "packets", ops[i]));
	}
}

/* One sample per reason of the JSON object @group. */
static void p_reasons(FILE *f, const char *name, struct json_object *d,
		      const char *group, const char *const *why, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		fputs(name, f);
		prom_labels(f, d, "reason", why[i]);
		fprintf(f, " %llu\n", (unsigned long long)ju2(d, group, why[i]));
	}
}

static void p_errors(FILE *f, const char *name, struct json_object *d)
{
	static const char *const why[] = { "bad_request", "io", "grant",
					   "unsupported" };

	p_reasons(f, name, d, "errors", why, 4);
}

static void p_drops(FILE *f, const char *name, struct json_object *d)
{
	static const char *const why[] = { "malformed", "grant", "rx_no_buffer",
					   "rx_stall", "tap", "too_big" };

	p_reasons(f, name, d, "drops", why, 6);
}

/* The log2 microsecond buckets as a cumulative histogram in seconds. */
static void p_latency(FILE *f, const char *name, struct json_object *d)
{
	struct json_object *l = json_object_object_get(d, "latency_us_log2");
	size_t k, n = l ? json_object_array_length(l) : 0;
	uint64_t cum = 0;
	char le[32];

	for (k = 0; k < n; k++) {
		cum += json_object_get_uint64(json_object_array_get_idx(l, k));
		if (k + 1 == n)
			break;	/* the last bucket is open-ended: +Inf */
		snprintf(le, sizeof(le), "%.9g", ldexp(1e-6, (int)k + 1));
		fprintf(f, "%s_bucket", name);
		prom_labels(f, d, "le", le);
		fprintf(f, " %llu\n", (unsigned long long)cum);
	}
	fprintf(f, "%s_bucket", name);
	prom_labels(f, d, "le", "+Inf");
	fprintf(f, " %llu\n%s_sum", (unsigned long long)cum, name);
	prom_labels(f, d, NULL, NULL);
	fprintf(f, " %.9f\n%s_count", (double)ju(d, "latency_sum_ns") / 1e9, name);
	prom_labels(f, d, NULL, NULL);
	fprintf(f, " %llu\n", (unsigned long long)cum);
}

static void prometheus(FILE *f, struct json_object *top)
{
	struct json_object *devs = json_object_object_get(top, "devices"), *u;

	if (!devs || !json_object_is_type(devs, json_type_array))
		die("pvio-backd's answer has no device list");
	u = json_object_object_get(top, "uptime_s");
	fprintf(f, "# HELP pvio_backd_uptime_seconds Time since pvio-backd started.\n"
		"# TYPE pvio_backd_uptime_seconds gauge\n"
		"pvio_backd_uptime_seconds %.1f\n", u ? json_object_get_double(u) : 0.0);
	prom_family(f, devs, "pvio_device_info", "gauge",
		    "A device pvio-backd serves; its target (vbd) or TAP (vif).", 3, p_info);
	prom_family(f, devs, "pvio_device_connected", "gauge",
		    "1 if the device is Connected.", 3, p_connected);
	prom_family(f, devs, "pvio_device_failed", "gauge",
		    "1 if pvio-backd failed the device.", 3, p_failed);
	prom_family(f, devs, "pvio_device_connects_total", "counter",
		    "Times the frontend connected.", 3, p_connects);
	prom_family(f, devs, "pvio_device_queues", "gauge",
		    "Queues (rings) in use.", 3, p_queues);
	prom_family(f, devs, "pvio_device_requests_total", "counter",
		    "Block requests by operation.", 1, p_requests);
	prom_family(f, devs, "pvio_device_packets_total", "counter",
		    "Packets: tx from the guest, rx to it.", 2, p_requests);
	prom_family(f, devs, "pvio_device_read_bytes_total", "counter",
		    "Bytes read from the target (vbd) or TAP (vif), i.e. to the guest.",
		    3, p_read);
	prom_family(f, devs, "pvio_device_written_bytes_total", "counter",
		    "Bytes written to the target (vbd) or TAP (vif), i.e. from the guest.",
		    3, p_written);
	prom_family(f, devs, "pvio_device_errors_total", "counter",
		    "Requests answered with an error, by reason.", 3, p_errors);
	prom_family(f, devs, "pvio_device_drops_total", "counter",
		    "Packets dropped, by reason.", 2, p_drops);
	prom_family(f, devs, "pvio_device_notifications_sent_total", "counter",
		    "Event-channel notifications sent to the guest.", 3, p_notif_tx);
	prom_family(f, devs, "pvio_device_notifications_received_total", "counter",
		    "Event-channel kicks received from the guest.", 3, p_notif_rx);
	prom_family(f, devs, "pvio_device_inflight_requests", "gauge",
		    "Requests taken and not yet answered (queue depth).", 1, p_inflight);
	prom_family(f, devs, "pvio_device_request_duration_seconds", "histogram",
		    "Time from taking a block request to answering it.", 1, p_latency);
}

static int cmd_stats(int argc, char **argv)
{
	bool json = false, prom = false;
	const char *dom = NULL, *dev = NULL;
	unsigned int d = 0, devid = 0;
	char req[128], *out;
	size_t len;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (strcmp(argv[i], "--prometheus") == 0)
			prom = true;
		else if (argv[i][0] == '-')
			die_usage("unknown option '%s'", argv[i]);
		else if (!dom)
			dom = argv[i];
		else if (!dev)
			dev = argv[i];
		else
			die_usage("stats [DOM [DEVID]] [--json | --prometheus]");
	}
	if (json && prom)
		die_usage("--json or --prometheus, not both");
	if (dom)
		d = lookup_dom(dom);
	if (dev && pvio_ts_vdev_number(dev, &devid) &&
	    pvio_parse_uint(dev, 0, 0xfffffff, &devid))
		die_usage("bad device '%s'", dev);
	if (prom) {
		struct json_object *o = backd_stats_json(dom ? (int)d : -1,
							 dev ? (int)devid : -1);

		prometheus(stdout, o);
		json_object_put(o);
		return fflush(stdout) ? 1 : 0;
	}
	snprintf(req, sizeof(req), "stats%s %d %d\n", json ? "-json" : "",
		 dom ? (int)d : -1, dev ? (int)devid : -1);
	len = backd_ask(req, &out);
	fwrite(out, 1, len, stdout);
	free(out);
	return 0;
}

/* ---- top: a live per-device view ------------------------------------------- */

static volatile sig_atomic_t top_stop;

static void top_sig(int sig)
{
	top_stop = 1;
}

static struct json_object *find_dev(struct json_object *devs, const char *path)
{
	size_t i, n = devs ? json_object_array_length(devs) : 0;

	for (i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(devs, i);
		const char *p = js(d, "path");

		if (p && strcmp(p, path) == 0)
			return d;
	}
	return NULL;
}

/* The @pct percentile of the interval's latency buckets, in microseconds,
 * interpolated within its bucket [2^k, 2^(k+1)); -1 if nothing completed. */
static double lat_pct(struct json_object *now, struct json_object *was, double pct)
{
	struct json_object *a = json_object_object_get(now, "latency_us_log2");
	struct json_object *b = was ? json_object_object_get(was, "latency_us_log2") : NULL;
	size_t k, n = a ? json_object_array_length(a) : 0;
	uint64_t cnt[64], total = 0, cum = 0;
	double want;

	if (n > 64)
		n = 64;
	for (k = 0; k < n; k++) {
		uint64_t x = json_object_get_uint64(json_object_array_get_idx(a, k));
		uint64_t y = b && k < json_object_array_length(b) ?
			json_object_get_uint64(json_object_array_get_idx(b, k)) : 0;

		cnt[k] = x >= y ? x - y : 0;
		total += cnt[k];
	}
	if (!total)
		return -1;
	want = pct * (double)total;
	for (k = 0; k < n; k++) {
		if ((double)(cum + cnt[k]) >= want && cnt[k]) {
			double lo = k ? ldexp(1, (int)k) : 0, hi = ldexp(1, (int)k + 1);

			return lo + (hi - lo) * (want - (double)cum) / (double)cnt[k];
		}
		cum += cnt[k];
	}
	return ldexp(1, (int)n);
}

static uint64_t dlt(struct json_object *now, struct json_object *was,
		    const char *k1, const char *k2)
{
	uint64_t a = k2 ? ju2(now, k1, k2) : ju(now, k1);
	uint64_t b = was ? (k2 ? ju2(was, k1, k2) : ju(was, k1)) : 0;

	return a >= b ? a - b : a;	/* a restarted pvio-backd: from 0 */
}

static void fmt_lat(char *buf, size_t len, double us)
{
	if (us < 0)
		snprintf(buf, len, "-");
	else if (us < 10000)
		snprintf(buf, len, "%.0fus", us);
	else
		snprintf(buf, len, "%.1fms", us / 1000);
}

static void top_report(FILE *f, struct json_object *now, struct json_object *was,
		       double secs, bool batch)
{
	struct json_object *devs = json_object_object_get(now, "devices");
	struct json_object *odevs = was ? json_object_object_get(was, "devices") : NULL;
	size_t i, n = devs ? json_object_array_length(devs) : 0;
	time_t t = time(NULL);
	char ts[32];

	strftime(ts, sizeof(ts), "%H:%M:%S", localtime(&t));
	if (!batch)
		fputs("\033[H\033[2J", f);
	fprintf(f, "pvio-ctl top - %s, %zu device%s, interval %.1f s\n", ts, n,
		n == 1 ? "" : "s", secs);
	fprintf(f, "%5s %-4s %8s %-12s %9s %9s %9s %8s %8s %6s %6s %9s %6s\n",
		"DOM", "KIND", "DEV", "STATE", "IOPS", "RD_MB/s", "WR_MB/s",
		"LAT_P50", "LAT_P99", "QD", "INFL", "NOTIF/REQ", "ERR/s");
	for (i = 0; i < n; i++) {
		struct json_object *d = json_object_array_get_idx(devs, i);
		struct json_object *o = find_dev(odevs, js(d, "path") ? js(d, "path") : "");
		bool vbd = is_vbd(d);
		uint64_t reqs = 0, notif, errs;
		char p50[16], p99[16], qd[16], npr[16];
		const char *state = js(d, "state");

		if (vbd) {
			static const char *const ops[] = { "read", "write", "flush",
				"barrier", "discard", "unknown" };
			size_t k;

			for (k = 0; k < 6; k++)
				reqs += dlt(d, o, "requests", ops[k]);
		} else {
			reqs = dlt(d, o, "packets", "tx") + dlt(d, o, "packets", "rx");
		}
		notif = dlt(d, o, "notifications_sent", NULL);
		errs = dlt(d, o, "errors", "total");
		fmt_lat(p50, sizeof(p50), vbd ? lat_pct(d, o, 0.50) : -1);
		fmt_lat(p99, sizeof(p99), vbd ? lat_pct(d, o, 0.99) : -1);
		if (vbd)	/* Little's law: busy time over elapsed time */
			snprintf(qd, sizeof(qd), "%.1f",
				 (double)dlt(d, o, "latency_sum_ns", NULL) / (secs * 1e9));
		else
			snprintf(qd, sizeof(qd), "-");
		if (reqs)
			snprintf(npr, sizeof(npr), "%.2f", (double)notif / (double)reqs);
		else
			snprintf(npr, sizeof(npr), "-");
		fprintf(f, "%5llu %-4s %8llu %-12s %9.0f %9.2f %9.2f %8s %8s %6s %6llu %9s %6.0f\n",
			(unsigned long long)ju(d, "domid"), vbd ? "vbd" : "vif",
			(unsigned long long)ju(d, "devid"),
			json_object_get_boolean(json_object_object_get(d, "failed")) ?
				"failed" : state ? state : "?",
			(double)reqs / secs,
			(double)dlt(d, o, "bytes_read", NULL) / secs / 1e6,
			(double)dlt(d, o, "bytes_written", NULL) / secs / 1e6,
			p50, p99, qd, (unsigned long long)ju(d, "inflight"), npr,
			(double)errs / secs);
	}
	if (batch)
		fputc('\n', f);
	fflush(f);
}

static int cmd_top(int argc, char **argv)
{
	static const struct option o[] = {
		{ "batch", no_argument, NULL, 'b' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "delay", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	struct json_object *was, *now;
	unsigned int iters = 0, i, dom_n = 0;
	double delay = 1.0;
	bool batch = false;
	uint64_t t0, t1;
	char *end;
	int c, dom = -1;

	optind = 1;
	while ((c = getopt_long(argc, argv, ":bn:d:", o, NULL)) != -1) {
		switch (c) {
		case 'b':
			batch = true;
			break;
		case 'n':
			if (pvio_parse_uint(optarg, 1, 1000000, &iters))
				die_usage("bad -n '%s' (1..1000000)", optarg);
			break;
		case 'd':
			delay = strtod(optarg, &end);
			if (*end || end == optarg || !(delay >= 0.1 && delay <= 3600))
				die_usage("bad --delay '%s' (0.1..3600 seconds)", optarg);
			break;
		default:
			pvio_usage_bad_option(prog, c, argv);
		}
	}
	if (optind < argc - 1)
		die_usage("top [DOM] [-b] [-n N] [-d SECS]");
	if (optind == argc - 1) {
		dom_n = lookup_dom(argv[optind]);
		dom = (int)dom_n;
	}
	if (!batch && !isatty(STDOUT_FILENO))
		batch = true;	/* no screen to redraw: iostat-like lines */
	signal(SIGINT, top_sig);
	signal(SIGTERM, top_sig);
	was = backd_stats_json(dom, -1);
	t0 = pvio_now_ns();
	for (i = 0; !top_stop && (!iters || i < iters); i++) {
		struct timespec ts = { (time_t)delay,
			(long)((delay - (double)(time_t)delay) * 1e9) };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !top_stop)
			;
		if (top_stop)
			break;
		now = backd_stats_json(dom, -1);
		t1 = pvio_now_ns();
		top_report(stdout, now, was, (double)(t1 - t0) / 1e9, batch);
		json_object_put(was);
		was = now;
		t0 = t1;
	}
	json_object_put(was);
	return 0;
}

static int cmd_vbd_detach(int argc, char **argv)
{
	return cmd_detach(argc, argv, "vbd");
}

static int cmd_vif_detach(int argc, char **argv)
{
	return cmd_detach(argc, argv, "vif");
}

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
} commands[] = {
	{ "world", cmd_world },
	{ "create", cmd_create },
	{ "destroy", cmd_destroy },
	{ "list", cmd_list },
	{ "run", cmd_run },
	{ "vbd-attach", cmd_vbd_attach },
	{ "vif-attach", cmd_vif_attach },
	{ "vbd-limit", cmd_vbd_limit },
	{ "vif-rate", cmd_vif_rate },
	{ "vbd-detach", cmd_vbd_detach },
	{ "vif-detach", cmd_vif_detach },
	{ "devices", cmd_devices },
	{ "stats", cmd_stats },
	{ "top", cmd_top },
};

static const struct command *find_command(const char *name)
{
	size_t k;

	for (k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (strcmp(name, commands[k].name) == 0)
			return &commands[k];
	die_usage("unknown command '%s'", name);
}

/* COMMAND ... --help: up to a "--" (run's own command may take --help) */
static bool wants_help(int argc, char **argv)
{
	int i;

	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (strcmp(argv[i], "--help") == 0)
			return true;
	return false;
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
"         TARGET: a file or block device, rbd:POOL/IMAGE[@SNAP][:conf=PATH]\n"
"         [:id=USER], nbd://HOST[:PORT]/EXPORT, nbd+unix:///EXPORT?socket=PATH\n"
"  vbd-detach DOM VDEV\n"
"  vif-attach DOM [--mac MAC] [--bridge BR] [--devid N] [--mtu N]\n"
"     [--vifname NAME] [--ip ADDRS]\n"
"     vbd-attach [--no-discard], both [--script PATH]: a hotplug script run\n"
"     as libxl runs it (XENBUS_PATH, ...); both [--backend DOMID] (default\n"
"     0); both [--backend-type T] (vbd-attach: vbd3 for backendtype=tap)\n"
"     attaches wait for the backend (ready or failed; exit 1 if failed)\n"
"     when pvio-backd answers: --wait, --no-wait, --timeout SECS (10)\n"
"  vif-detach DOM DEVID\n"
"  vbd-limit DOM VDEV [--iops N] [--bytes N]      per-device limits (0: none)\n"
"  vif-rate DOM DEVID RATE|off                    BYTES,USECS or 10Mb/s[@20ms]\n"
"  devices [DOM]                                  devices and XenBus states\n"
"  stats [DOM [DEV]] [--json | --prometheus]     pvio-backd's counters\n"
"  top [DOM] [-b] [-n N] [-d SECS]                live per-device view\n\n"
"  -w, --world DIR   the sim world (default: $PVIO_SIM_DIR or /run/pvio-sim)\n"
"      --xen         real Xen (devices, stats)\n"
"      --backd-sock  pvio-backd's control socket (default: WORLD/backd.sock,\n"
"                    or /run/pvio/backd.sock on Xen)\n");
}

int main(int argc, char **argv)
{
	static char sock[PVIO_PATH_BUF];
	const struct command *cmd;
	bool xen = false, world_set = false;
	int i;

	world = pvio_sim_default_dir();
	opterr = 0;	/* the commands' getopt: our own one-line messages */
	/* global options come before the command */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			pvio_version(prog);
		} else if (strcmp(argv[i], "--xen") == 0) {
			xen = true;
		} else if ((strcmp(argv[i], "-w") == 0 ||
			    strcmp(argv[i], "--world") == 0) && i + 1 < argc) {
			world = argv[++i];
			world_set = true;
		} else if (strcmp(argv[i], "--backd-sock") == 0 && i + 1 < argc) {
			backd_sock = argv[++i];
		} else {
			die_usage("unknown option '%s'", argv[i]);
		}
	}
	if (i == argc)
		die_usage("no command");
	cmd = find_command(argv[i]);
	if (wants_help(argc - i, argv + i)) {
		usage(stdout);
		return 0;
	}
	if (xen && world_set)
		die_usage("-w (a sim world) and --xen (real Xen): choose one");
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
	return cmd->run(argc - i, argv + i);
}
