// SPDX-License-Identifier: MIT
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "world.h"

#ifndef PVIO_SBINDIR
#define PVIO_SBINDIR "/usr/local/sbin"
#endif

const char *pvio_world_simhv_path(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("PVIO_SIMHV");
	ssize_t n;
	char *slash;

	if (env && *env)
		return env;
	n = readlink("/proc/self/exe", path, sizeof(path) - 1);
	if (n > 0) {
		path[n] = 0;
		slash = strrchr(path, '/');
		if (slash && (size_t)(slash - path) + 12 < sizeof(path)) {
			strcpy(slash + 1, "pvio-simhv");
			if (access(path, X_OK) == 0)
				return path;
		}
	}
	snprintf(path, sizeof(path), "%s/pvio-simhv", PVIO_SBINDIR);
	return path;
}

int pvio_world_start(const char *dir, const char *const *extra_args)
{
	const char *argv[32];
	unsigned int n = 0;
	pid_t pid, parent = getpid();
	int status;

	argv[n++] = pvio_world_simhv_path();
	argv[n++] = "--world";
	argv[n++] = dir;
	argv[n++] = "--daemon";
	while (extra_args && *extra_args && n < 31)
		argv[n++] = *extra_args++;
	argv[n] = NULL;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		/* a starter that goes while the world starts takes it along:
		 * pvio-simhv --daemon dies with us, and its daemon, not
		 * ready yet, then fails to say so and exits; once ready the
		 * world is the caller's to stop */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		fprintf(stderr, "cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	/* --daemon returns once the world accepts connections */
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -ENOENT
									: -EIO;
	return 0;
}

pid_t pvio_world_pid(const char *dir)
{
	char path[PATH_MAX];
	FILE *f;
	int pid = 0;

	snprintf(path, sizeof(path), "%s/simhv.pid", dir);
	f = fopen(path, "r");
	if (!f)
		return -errno;
	if (fscanf(f, "%d", &pid) != 1 || pid <= 0)
		pid = -EINVAL;
	fclose(f);
	return pid;
}

/* Alive, and not a zombie that its reaper has not collected yet. */
static int pid_alive(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;

	if (kill(pid, 0) < 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return !(p && p[1] == ' ' && p[2] == 'Z');
}

/* Is @name's alias "pvio-backd sim:@dir ..."? */
static bool tap_of_world(const char *name, const char *dir)
{
	char path[64 + IFNAMSIZ], alias[IFALIASZ + 1], want[PATH_MAX + 32];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/ifalias", name);
	f = fopen(path, "re");
	if (!f)
		return false;
	n = fread(alias, 1, sizeof(alias) - 1, f);
	fclose(f);
	alias[n] = 0;
	snprintf(want, sizeof(want), "pvio-backd sim:%s ", dir);
	return strncmp(alias, want, strlen(want)) == 0;
}

/*
 * The world's domains are gone: so are their vifs. A vif's TAP is
 * persistent (it outlives pvio-backd, for the next one), so a pvio-backd
 * stopped before the world leaves them; pvio-backd names its TAPs
 * "pvio-backd SPEC PATH" (their alias). Each is made non-persistent
 * through its own name: it goes when its last fd closes.
 */
static void world_taps_remove(const char *dir)
{
	char real[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir("/sys/class/net");

	if (!d)
		return;
	if (!realpath(dir, real))
		real[0] = 0;
	while ((e = readdir(d))) {
		struct ifreq ifr;
		int fd;

		if (e->d_name[0] == '.' || strlen(e->d_name) >= IFNAMSIZ ||
		    !(tap_of_world(e->d_name, dir) ||
		      (real[0] && tap_of_world(e->d_name, real))))
			continue;
		fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
		if (fd < 0)
			break;
		memset(&ifr, 0, sizeof(ifr));
		ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE;
		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", e->d_name);
		if (ioctl(fd, TUNSETIFF, &ifr) == 0)
			ioctl(fd, TUNSETPERSIST, 0);
		close(fd);
	}
	closedir(d);
}

int pvio_world_stop(const char *dir, int timeout_ms)
{
	pid_t pid = pvio_world_pid(dir);
	int waited = 0;

	if (pid < 0)
		return pid;
	if (kill(pid, SIGTERM) < 0) {
		if (errno != ESRCH)
			return -errno;
		world_taps_remove(dir);
		return 0;
	}
	while (pid_alive(pid)) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (waited >= timeout_ms) {
			kill(pid, SIGKILL);
			world_taps_remove(dir);
			return -ETIMEDOUT;
		}
		nanosleep(&ts, NULL);
		waited += 10;
	}
	world_taps_remove(dir);
	return 0;
}

bool pvio_world_running(const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;
	bool up;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/hv.sock",
			     dir) >= sizeof(sa.sun_path))
		return false;
	/* non-blocking: a stopped world's full backlog answers EAGAIN */
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return false;
	up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
	     errno == EAGAIN;
	close(fd);
	return up;
}

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

int pvio_world_remove(const char *dir)
{
	/* not across mounts, not through symlinks */
	nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	return access(dir, F_OK) == 0 ? -ENOTEMPTY :
	       errno == ENOENT ? 0 : -errno;
}
