// SPDX-License-Identifier: MIT
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"
#include "world.h"

/*
 * The program writes records to the guard through a pipe, one per line,
 * each shorter than PIPE_BUF (so that a write is whole or not at all):
 * "W dir", "F dev ino path", "C command", or "U record": the newest
 * earlier record that reads "record" is not undone. The pipe's write end
 * is close-on-exec and closed in pvio_guard_fork()'s children, so the
 * guard reads EOF when the program is gone, however it went.
 *
 * A thing is registered before it has its name, never after: a SIGKILL
 * can land between any two instructions, and one that lands after the
 * name is made and before the record is written would leave the thing
 * behind for good (an image, once, in CI).
 */
#define REC_MAX		PIPE_BUF

static int guard_fd = -1;

static void guard_send(const char *rec, size_t len)
{
	ssize_t n;

	if (guard_fd < 0 || len >= REC_MAX)
		return;		/* no path of ours is that long */
	do
		n = write(guard_fd, rec, len);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EPIPE) {
		/* the guard is gone: nothing more to tell it */
		close(guard_fd);
		guard_fd = -1;
	}
}

static void guard_record(char kind, const char *prefix, const char *arg)
{
	char rec[REC_MAX];
	int n;

	if (strchr(arg, '\n'))
		return;
	n = snprintf(rec, sizeof(rec), "%c %s%s\n", kind, prefix, arg);
	if (n > 0 && n < (int)sizeof(rec))
		guard_send(rec, (size_t)n);
}

void pvio_guard_world(const char *dir)
{
	guard_record('W', "", dir);
}

static void guard_file_record(const struct stat *st, const char *path)
{
	char id[64];

	snprintf(id, sizeof(id), "%llu %llu ", (unsigned long long)st->st_dev,
		 (unsigned long long)st->st_ino);
	guard_record('F', id, path);
}

void pvio_guard_file(const char *path)
{
	struct stat st;

	/* the file itself, not whatever has its name by the end */
	if (lstat(path, &st) == 0)
		guard_file_record(&st, path);
}

void pvio_guard_test_pause(const char *what)
{
	const char *want = getenv("PVIO_TEST_GUARD_PAUSE");

	if (want && !strcmp(want, what))
		raise(SIGSTOP);
}

/* Give the unnamed file @fd the name @path (which must not exist). */
static int link_tmpfile(int fd, const char *path)
{
	char proc[32];

	/* AT_EMPTY_PATH wants CAP_DAC_READ_SEARCH; /proc does without */
	if (linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOENT && errno != EPERM)
		return -errno;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	return -errno;
}

int pvio_guard_create(const char *path, mode_t mode)
{
	const char *slash = strrchr(path, '/');
	char dir[PATH_MAX];
	struct stat st;
	int fd, rc;

	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if ((size_t)snprintf(dir, sizeof(dir), "%.*s",
				  slash == path ? 1 : (int)(slash - path),
				  path) >= sizeof(dir))
		return -ENAMETOOLONG;
	/* made unnamed, registered, then named: whenever the program is
	 * killed, the file is either still unnamed (the kernel frees it) or
	 * already registered */
	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
	if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR)
		return -errno;
	if (fd < 0) {
		/* a file system without O_TMPFILE: named, then registered,
		 * and a kill between the two leaves the file */
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
		if (fd < 0)
			return -errno;
		pvio_guard_test_pause("file");
		pvio_guard_file(path);
		return fd;
	}
	pvio_guard_test_pause("file");
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	/* should @path exist by now, it is not ours: the record names our
	 * file's inode, which the guard will not find there */
	guard_file_record(&st, path);
	rc = link_tmpfile(fd, path);
	if (rc) {
		close(fd);
		return rc;
	}
	return fd;
}

int pvio_guard_mkdtemp(char *templ)
{
	static const char set[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789";
	size_t n = strlen(templ);
	char *x = templ + n - 6;
	int tries, i, rc;

	if (n < 6 || strcmp(x, "XXXXXX"))
		return -EINVAL;
	for (tries = 0; tries < 100; tries++) {
		unsigned char r[6];

		if (getrandom(r, sizeof(r), 0) != sizeof(r))
			return -EIO;
		for (i = 0; i < 6; i++)
			x[i] = set[r[i] % (sizeof(set) - 1)];
		/* registered before it exists: undoing a world that is not
		 * there is harmless */
		guard_record('W', "", templ);
		if (mkdir(templ, 0700) == 0) {
			pvio_guard_test_pause("world");
			return 0;
		}
		rc = -errno;
		/* someone else's: not ours to remove */
		guard_record('U', "W ", templ);
		if (rc != -EEXIST)
			break;
	}
	memcpy(x, "XXXXXX", 6);
	return tries == 100 ? -EEXIST : rc;
}

static void __attribute__((format(printf, 3, 0)))
guard_cmd_v(char kind, const char *prefix, const char *fmt, va_list ap)
{
	char cmd[REC_MAX];

	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	guard_record(kind, prefix, cmd);
}

void pvio_guard_cmd(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	guard_cmd_v('C', "", fmt, ap);
	va_end(ap);
}

void pvio_guard_cmd_cancel(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	guard_cmd_v('U', "C ", fmt, ap);	/* cancels "C <cmd>" */
	va_end(ap);
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

/* ---- the guard ------------------------------------------------------------------- */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static void undo_world(const char *prog, const char *dir)
{
	int i;

	/*
	 * A world still starting (no pid file yet) goes by itself: its
	 * starter dies with the program (PR_SET_PDEATHSIG) and its daemon,
	 * told nobody waits, exits (pvio_world_start()). But the kernel kills
	 * the starter only after the program's files are closed, which is
	 * what woke us: a daemon that said "ready" in between runs on, its
	 * pid file written after we looked. So until the world answers no
	 * more or has its pid file: wait (5 s at most), then stop it.
	 */
	for (i = 0; i < 100 && pvio_world_running(dir); i++) {
		if (pvio_world_pid(dir) > 0) {
			fprintf(stderr, "%s: ended leaving its sim world running: "
				"stopping it (%s)\n", prog, dir);
			pvio_world_stop(dir, 5000);
			break;
		}
		sleep_ms(50);
	}
	/* pvio-backd may still be writing in it while it ends */
	for (i = 0; i < 20; i++) {
		if (pvio_world_remove(dir) != -ENOTEMPTY)
			break;
		sleep_ms(100);
	}
}

/* "U rec": the newest record in @log[0, @len) that reads @rec is not
 * undone (each there ends in '\n') */
static void cancel(char *log, size_t len, const char *rec)
{
	size_t rl = strlen(rec);

	while (len > 0) {
		char *nl = len > 1 ? memrchr(log, '\n', len - 1) : NULL;
		char *start = nl ? nl + 1 : log;

		if ((size_t)(log + len - 1 - start) == rl &&
		    !memcmp(start, rec, rl)) {
			start[0] = '-';
			return;
		}
		len = (size_t)(start - log);
	}
}

static void undo(const char *prog, char *rec)
{
	unsigned long long dev, ino;
	struct stat st;
	int off = 0;
	char kind = rec[0];
	char *arg = rec + 2;

	switch (kind) {
	case 'W':
		undo_world(prog, arg);
		break;
	case 'F':
		if (sscanf(arg, "%llu %llu %n", &dev, &ino, &off) == 2 && off &&
		    lstat(arg + off, &st) == 0 && st.st_dev == dev &&
		    st.st_ino == ino)
			unlink(arg + off);
		break;
	case 'C':
		if (system(arg) < 0)
			fprintf(stderr, "%s: cannot run '%s'\n", prog, arg);
		break;
	}
}

static void __attribute__((noreturn)) guard_main(const char *prog, int fd)
{
	size_t len = 0, cap = 0;
	char *log = NULL, *end, sink[REC_MAX];
	ssize_t n;
	int nul;

	/* ^C goes to the whole process group: the guard outlives it */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	prctl(PR_SET_NAME, "pvio-guard");
	/* nobody reading the program's output waits for the guard's end */
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nul >= 0) {
		dup2(nul, STDIN_FILENO);
		dup2(nul, STDOUT_FILENO);
		close(nul);
	}
	for (;;) {
		char *buf = sink;
		size_t room = sizeof(sink);

		if (cap - len < REC_MAX) {
			char *p = realloc(log, cap + 64 * REC_MAX);

			if (p) {
				log = p;
				cap += 64 * REC_MAX;
			}
		}
		/* out of memory: drain (the program must not block), keep
		 * what was whole */
		if (log && cap - len >= REC_MAX) {
			buf = log + len;
			room = cap - len;
		}
		n = read(fd, buf, room);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (buf != sink)
			len += (size_t)n;
	}
	/* whole records only (a cut one must not name "/"), newest first */
	end = len ? memrchr(log, '\n', len) : NULL;
	len = end ? (size_t)(end - log) + 1 : 0;
	while (len > 0) {
		log[--len] = 0;
		end = memrchr(log, '\n', len);
		end = end ? end + 1 : log;
		len = (size_t)(end - log);
		if (strlen(end) > 2 && end[1] == ' ' && end[0] == 'U')
			cancel(log, len, end + 2);
		else if (strlen(end) > 2 && end[1] == ' ')
			undo(prog, end);
	}
	_exit(0);
}

int pvio_guard_start(const char *prog)
{
	int p[2], rc, i;
	pid_t pid;

	if (guard_fd >= 0)
		return 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	/* above the standard fds, should one of them be closed */
	for (i = 0; i < 2; i++)
		if (p[i] <= STDERR_FILENO) {
			int fd = fcntl(p[i], F_DUPFD_CLOEXEC, STDERR_FILENO + 1);

			if (fd < 0) {
				rc = -errno;
				goto fail;
			}
			close(p[i]);
			p[i] = fd;
		}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto fail;
	}
	if (pid == 0) {
		/* hold nothing of the program's but the read end */
		if (p[0] > STDERR_FILENO + 1)
			close_range(STDERR_FILENO + 1, (unsigned int)p[0] - 1, 0);
		close_range((unsigned int)p[0] + 1, ~0u, 0);
		guard_main(prog, p[0]);
	}
	close(p[0]);
	guard_fd = p[1];
	return 0;
fail:
	close(p[0]);
	close(p[1]);
	return rc;
}
