// SPDX-License-Identifier: MIT
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "guard.h"
#include "world.h"

/*
 * The program writes records to the guard through a pipe, one per line,
 * each shorter than PIPE_BUF (so that a write is whole or not at all):
 * "W dir", "F path" or "C command". The pipe's write end is close-on-exec
 * and closed in pvio_guard_fork()'s children, so the guard reads EOF when
 * the program is gone, however it went.
 */
#define REC_MAX		PIPE_BUF

static int guard_fd = -1;

static void guard_send(char kind, const char *arg)
{
	char rec[REC_MAX];
	int n;

	if (guard_fd < 0)
		return;
	n = snprintf(rec, sizeof(rec), "%c %s\n", kind, arg);
	if (n <= 0 || n >= (int)sizeof(rec) || strchr(arg, '\n'))
		return;		/* no path of ours is that long */
	if (write(guard_fd, rec, (size_t)n) != n) {
		/* the guard is gone: nothing more to tell it */
		close(guard_fd);
		guard_fd = -1;
	}
}

void pvio_guard_world(const char *dir)
{
	guard_send('W', dir);
}

void pvio_guard_file(const char *path)
{
	guard_send('F', path);
}

void pvio_guard_cmd(const char *fmt, ...)
{
	char cmd[REC_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	guard_send('C', cmd);
}

pid_t pvio_guard_fork(void)
{
	pid_t parent = getpid(), pid = fork();

	if (pid == 0) {
		if (guard_fd >= 0)
			close(guard_fd);
		guard_fd = -1;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)	/* it went before the line above */
			_exit(1);
	}
	return pid;
}

/* Does a world answer in @dir? A stale pid file must not aim a signal. */
static int world_running(const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, up;

	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/hv.sock",
			     dir) >= sizeof(sa.sun_path))
		return 0;
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	up = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return up;
}

static int rm_one(const char *path, const struct stat *st, int flag,
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

static void guard_undo(const char *prog, char kind, const char *arg)
{
	int rc;

	switch (kind) {
	case 'W':
		if (world_running(arg)) {
			fprintf(stderr, "%s: ended leaving its sim world running: "
				"stopping it (%s)\n", prog, arg);
			pvio_world_stop(arg, 5000);
		}
		nftw(arg, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
		break;
	case 'F':
		unlink(arg);
		break;
	case 'C':
		rc = system(arg);
		(void)rc;
		break;
	}
}

static void __attribute__((noreturn)) guard_main(const char *prog, int fd)
{
	size_t len = 0, cap = 0;
	char *log = NULL, *end;
	ssize_t n;

	/* ^C goes to the whole process group: the guard outlives it */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "pvio-guard");
	for (;;) {
		if (cap - len < REC_MAX) {
			char *p = realloc(log, cap + 64 * REC_MAX);

			if (!p)
				break;	/* undo what it has */
			log = p;
			cap += 64 * REC_MAX;
		}
		n = read(fd, log + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	/* records whole (a write of less than PIPE_BUF is), newest first */
	while (len > 0) {
		log[--len] = 0;
		end = memrchr(log, '\n', len);
		end = end ? end + 1 : log;
		if (strlen(end) > 2 && end[1] == ' ')
			guard_undo(prog, end[0], end + 2);
		len = (size_t)(end - log);
	}
	_exit(0);
}

int pvio_guard_start(const char *prog)
{
	int p[2], i;
	pid_t pid;

	if (guard_fd >= 0)
		return 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		i = -errno;
		close(p[0]);
		close(p[1]);
		return i;
	}
	if (pid == 0) {
		/* hold nothing of the program's but the read end */
		for (i = 3; i < 1024; i++)
			if (i != p[0])
				close(i);
		guard_main(prog, p[0]);
	}
	close(p[0]);
	guard_fd = p[1];
	return 0;
}
