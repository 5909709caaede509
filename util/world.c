// SPDX-License-Identifier: MIT
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
	pid_t pid;
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

int pvio_world_stop(const char *dir, int timeout_ms)
{
	pid_t pid = pvio_world_pid(dir);
	int waited = 0;

	if (pid < 0)
		return pid;
	if (kill(pid, SIGTERM) < 0)
		return errno == ESRCH ? 0 : -errno;
	while (pid_alive(pid)) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };

		if (waited >= timeout_ms) {
			kill(pid, SIGKILL);
			return -ETIMEDOUT;
		}
		nanosleep(&ts, NULL);
		waited += 10;
	}
	return 0;
}
