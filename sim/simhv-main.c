// SPDX-License-Identifier: MIT
/*
 * pvio-simhv: runs a sim world. Listens on WORLD/hv.sock for processes
 * attaching as domains; one event loop, one thread.
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
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <pvio/platform.h>

#include "simhv.h"
#include "sim-util.h"
#include "util.h"
#include "world.h"

#ifdef PVIO_SIMHV_XENSTORE
int pvio__simxs_start(struct hv *hv);
void pvio__simxs_stop(struct hv *hv);
#endif

struct conn_io {
	struct hv_io io;
	struct hv_conn conn;
};

int hv_io_add(struct hv *hv, int fd, hv_io_fn fn, void *data)
{
	struct hv_io *io = malloc(sizeof(*io));
	struct epoll_event ev = { .events = EPOLLIN };

	if (!io)
		return -ENOMEM;
	io->fd = fd;
	io->fn = fn;
	io->data = data;
	ev.data.ptr = io;
	if (epoll_ctl(hv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int rc = -errno;

		free(io);
		return rc;
	}
	io->next = hv->ios;
	hv->ios = io;
	return 0;
}

static void conn_read(struct hv *hv, void *data, uint32_t events)
{
	struct hv_conn *c = data;
	static char buf[SIM_MAX_MSG];
	int fds[SIM_MAX_FDS];
	unsigned int nfds = 0, i;
	ssize_t n;

	if (c->dead)
		return;
	n = pvio__sim_recv(c->fd, buf, sizeof(buf), fds, &nfds);
	/* processes never send us descriptors */
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	if (n == -EAGAIN)
		return;
	if (n <= 0) {
		hv_conn_reap(hv, c);
		return;
	}
	hv_dispatch(hv, c, buf, (size_t)n);
}

static void listen_ready(struct hv *hv, void *data, uint32_t events)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP };
	struct conn_io *ci;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	int fd;

	fd = accept4(hv->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	ci = calloc(1, sizeof(*ci));
	if (!ci) {
		close(fd);
		return;
	}
	ci->conn.fd = fd;
	ci->conn.id = ++hv->next_conn_id;
	if (ci->conn.id == 0 || ci->conn.id == SIM_HV_OWNER)
		ci->conn.id = hv->next_conn_id = 1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
		ci->conn.pid = cred.pid;
	ci->io.fd = fd;
	ci->io.fn = conn_read;
	ci->io.data = &ci->conn;
	ev.data.ptr = &ci->io;
	if (epoll_ctl(hv->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		free(ci);
		return;
	}
	ci->conn.next = hv->conns;
	hv->conns = &ci->conn;
}

/* Free connections reaped during the last batch of events. */
static void conns_sweep(struct hv *hv)
{
	struct hv_conn **pp = &hv->conns, *c;

	while ((c = *pp)) {
		if (!c->dead) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		epoll_ctl(hv->epfd, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		free((char *)c - offsetof(struct conn_io, conn));
	}
}

static void signal_ready(struct hv *hv, void *data, uint32_t events)
{
	struct signalfd_siginfo si;

	if (read(hv->sig_fd, &si, sizeof(si)) != sizeof(si))
		return;
	log_info("signal %u: stopping the world", si.ssi_signo);
	hv->stop = true;
}

static int make_world_dir(const char *dir)
{
	char path[4096], *p;

	if (snprintf(path, sizeof(path), "%s", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	for (p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static int listen_world(struct hv *hv, const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir,
			     SIM_HV_SOCK) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	/* A socket nobody answers on is stale: a world that crashed. */
	if (pvio_world_running(dir))
		return -EADDRINUSE;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 64) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	hv->listen_fd = fd;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: pvio-simhv [options]\n"
		"Run a sim world: a simulated hypervisor for pvio on one Linux host.\n\n"
		"  -w, --world DIR      world directory (default: $PVIO_SIM_DIR or /run/pvio-sim)\n"
		"  -d, --daemon         detach once the world accepts connections\n"
		"  -m, --mem SIZE       guest memory per domain (default 256M)\n"
		"  -g, --grants N       grant entries per domain (default 32768)\n"
		"  -l, --log-level L    err|warn|info|debug (default info)\n"
		"  -L, --log-file PATH  log here (default with --daemon: WORLD/simhv.log)\n"
		"      --version\n"
		"  -h, --help\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "world", required_argument, NULL, 'w' },
		{ "daemon", no_argument, NULL, 'd' },
		{ "mem", required_argument, NULL, 'm' },
		{ "grants", required_argument, NULL, 'g' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "log-file", required_argument, NULL, 'L' },
		PVIO_VERSION_OPTION,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hv hv = { .listen_fd = -1, .sig_fd = -1 };
	const char *dir = pvio_sim_default_dir();
	bool daemonize = false, failed = false;
	const char *log_file = NULL;
	char log_buf[PVIO_PATH_BUF];
	struct hv_dom *dom0;
	char pidfile[4096], sockpath[4096];
	sigset_t mask;
	uint64_t mem = (uint64_t)SIM_DEFAULT_MEM_PAGES * PVIO_PAGE_SIZE;
	unsigned int grants = SIM_GT_DEFAULT_ENTS;
	int level = PVIO_LOG_INFO, c, rc, ready[2] = { -1, -1 };
	FILE *pf;

	opterr = 0;	/* our own one-line messages */
	while ((c = getopt_long(argc, argv, ":w:dm:g:l:L:h", opts, NULL)) != -1) {
		switch (c) {
		case 'w':
			dir = optarg;
			break;
		case 'd':
			daemonize = true;
			break;
		case 'm':
			if (pvio_parse_size(optarg, &mem) || mem < (1u << 20) ||
			    mem > (64ull << 30) || mem % PVIO_PAGE_SIZE)
				pvio_usage_error("pvio-simhv",
						 "bad --mem '%s' (1M..64G, whole pages)",
						 optarg);
			break;
		case 'g':
			if (pvio_parse_uint(optarg, 64, 1u << 20, &grants))
				pvio_usage_error("pvio-simhv",
						 "bad --grants '%s' (64..1048576)",
						 optarg);
			break;
		case 'l':
			level = pvio_log_parse_level(optarg);
			if (level < 0)
				pvio_usage_error("pvio-simhv",
						 "bad --log-level '%s'", optarg);
			break;
		case PVIO_OPT_VERSION:
			pvio_version("pvio-simhv");
		case 'L':
			log_file = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			pvio_usage_bad_option("pvio-simhv", c, argv);
		}
	}
	if (optind != argc)
		pvio_usage_error("pvio-simhv", "unexpected argument '%s'",
				 argv[optind]);
	pvio_log_init("pvio-simhv", level);
	hv.dir = dir;
	hv.default_pages = (uint32_t)(mem / PVIO_PAGE_SIZE);
	hv.default_ents = grants;

	rc = make_world_dir(dir);
	if (rc) {
		log_err("cannot create world directory %s: %s", dir,
			strerror(-rc));
		return 1;
	}
	if (!log_file && daemonize) {
		snprintf(log_buf, sizeof(log_buf), "%s/simhv.log", dir);
		log_file = log_buf;
	}
	if (log_file) {
		int lfd = open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
			       0644);

		if (lfd < 0) {
			log_err("cannot open log file %s: %s", log_file,
				strerror(errno));
			return 1;
		}
		dup2(lfd, STDERR_FILENO);
		close(lfd);
	}
	rc = listen_world(&hv, dir);
	if (rc) {
		log_err("cannot listen in %s: %s%s", dir, strerror(-rc),
			rc == -EADDRINUSE ? " (a world is running there)" : "");
		return 1;
	}
	if (daemonize) {
		pid_t pid;
		char b;

		if (pipe2(ready, O_CLOEXEC) < 0)
			return 1;
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid > 0) {	/* wait for the child to be ready */
			close(ready[1]);
			return read(ready[0], &b, 1) == 1 ? 0 : 1;
		}
		close(ready[0]);
		setsid();
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	hv.sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	hv.epfd = epoll_create1(EPOLL_CLOEXEC);
	hv.doms = calloc(SIM_MAX_DOMID + 1, sizeof(*hv.doms));
	if (hv.sig_fd < 0 || hv.epfd < 0 || !hv.doms) {
		log_err("cannot set up the event loop: %s", strerror(errno));
		return 1;
	}
	if (hv_io_add(&hv, hv.listen_fd, listen_ready, NULL) ||
	    hv_io_add(&hv, hv.sig_fd, signal_ready, NULL)) {
		log_err("cannot set up the event loop");
		return 1;
	}
#ifdef PVIO_SIMHV_XENSTORE
	rc = pvio__simxs_start(&hv);
	if (rc) {
		log_err("cannot start the world's xenstore: %s", strerror(-rc));
		return 1;
	}
#endif
	rc = hv_dom_create(&hv, 0, "Domain-0", 0, true, &dom0);
	if (rc) {
		log_err("cannot create dom0: %s", strerror(-rc));
		return 1;
	}
	snprintf(pidfile, sizeof(pidfile), "%s/%s", dir, SIM_HV_PIDFILE);
	pf = fopen(pidfile, "w");
	if (pf) {
		fprintf(pf, "%d\n", (int)getpid());
		fclose(pf);
	}
	log_info("world %s running (pid %d)", dir, (int)getpid());
	if (daemonize) {
		int nul = open("/dev/null", O_RDWR);

		if (nul >= 0) {
			dup2(nul, STDIN_FILENO);
			dup2(nul, STDOUT_FILENO);
			close(nul);
		}
		/* EPIPE: whoever started the world went while it started
		 * (pvio_world_start()): it is nobody's, it does not run */
		if (write(ready[1], "R", 1) < 0) {
			log_err("the world's starter is gone: stopping (%s)",
				strerror(errno));
			unlink(pidfile);
			return 1;
		}
		close(ready[1]);
	}

	while (!hv.stop) {
		struct epoll_event evs[64];
		int n, i;

		n = epoll_wait(hv.epfd, evs, 64, -1);
		if (n < 0 && errno != EINTR) {
			/* torn down as at SIGTERM, but a failure: exit 1 */
			log_err("epoll_wait: %s: stopping the world", strerror(errno));
			failed = true;
			break;
		}
		for (i = 0; i < n; i++) {
			struct hv_io *io = evs[i].data.ptr;

			io->fn(&hv, io->data, evs[i].events);
		}
		conns_sweep(&hv);
		hv_graveyard(&hv);
	}

	/* Tear down: every process is detached, every domain released. */
	{
		struct hv_conn *cn;
		uint32_t d;

		for (cn = hv.conns; cn; cn = cn->next)
			hv_conn_reap(&hv, cn);
		conns_sweep(&hv);
		for (d = 0; d <= SIM_MAX_DOMID; d++)
			if (hv.doms[d]) {
				hv.doms[d]->persistent = false;
				hv_dom_kill(&hv, hv.doms[d]);
			}
		hv_graveyard(&hv);
	}
#ifdef PVIO_SIMHV_XENSTORE
	pvio__simxs_stop(&hv);
#endif
	snprintf(sockpath, sizeof(sockpath), "%s/%s", dir, SIM_HV_SOCK);
	unlink(sockpath);
	unlink(pidfile);
	while (hv.ios) {
		struct hv_io *io = hv.ios;

		hv.ios = io->next;
		free(io);
	}
	free(hv.doms);
	close(hv.epfd);
	close(hv.sig_fd);
	close(hv.listen_fd);
	log_info("world %s stopped", dir);
	return failed ? 1 : 0;
}
