// SPDX-License-Identifier: MIT
/*
 * The guard of pvio-bench and pvio-ringbench (util/guard.c): what a
 * program registered is undone once it is gone, newest first; a file or a
 * world's directory is registered before it has its name, so that no
 * moment's SIGKILL leaves it (one that landed between open() and the
 * record once left a benchmark's image behind in CI); what was not ours
 * (a name that existed, a cancelled record) is left alone.
 *
 * A world that says it is ready just as the program is killed (between
 * the program's files closing, which wakes the guard, and its starter's
 * death) runs on with its pid file written after the guard looked: the
 * guard waits for it and stops it (2 of 80 random kills under load left
 * such a world running).
 *
 * Each test forks the "program": it starts its guard, registers, ends.
 * Its first registration touches DONE, so the guard's last step says that
 * it has finished.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guard.h"
#include "t-check.h"

static char dir[PATH_MAX];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "%s/pvio-guard.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static const char *at(const char *name)
{
	static char path[4][PATH_MAX + 64];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir, name);
	return path[i];
}

static int exists(const char *name)
{
	struct stat st;

	return lstat(at(name), &st) == 0;
}

static char *slurp(const char *name)
{
	static char buf[256];
	FILE *f = fopen(at(name), "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

/* The program: its guard, the marker, then @body; it ends (exit 0) or
 * stops itself in @body. Returns its pid. */
static pid_t program(void (*body)(void))
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (pvio_guard_start("test-guard"))
			_exit(3);
		pvio_guard_cmd("touch '%s'", at("DONE"));
		body();
		_exit(0);
	}
	return pid;
}

/* The program ended (or was killed): wait for its guard's last step. */
static void guard_done(pid_t pid)
{
	int status, i;

	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(!WIFEXITED(status) || WEXITSTATUS(status) == 0);
	for (i = 0; i < 1000 && !exists("DONE"); i++)
		usleep(10000);
	ck_assert_msg(exists("DONE"), "the guard did not finish in 10 s");
}

static void body_create(void)
{
	int fd = pvio_guard_create(at("img"), 0600);

	if (fd < 0 || write(fd, "ours", 4) != 4 || !exists("img"))
		_exit(4);
}

START_TEST(t_create_removed)
{
	guard_done(program(body_create));
	ck_assert(!exists("img"));
}
END_TEST

static void body_create_theirs(void)
{
	if (pvio_guard_create(at("img"), 0600) != -EEXIST)
		_exit(4);
}

START_TEST(t_create_not_theirs)
{
	FILE *f = fopen(at("img"), "w");

	ck_assert_ptr_nonnull(f);
	fputs("theirs", f);
	fclose(f);
	guard_done(program(body_create_theirs));
	ck_assert_str_eq(slurp("img"), "theirs");
}
END_TEST

/* killed the moment the file is made: it has no name yet (where the
 * file system has O_TMPFILE; without, the file is named, then registered) */
START_TEST(t_create_killed)
{
	int status, fd = open(dir, O_TMPFILE | O_RDWR, 0600);
	pid_t pid;

	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR)) {
		fprintf(stderr, "SKIP: t_create_killed: no O_TMPFILE in %s\n", dir);
		return;
	}
	ck_assert_int_ge(fd, 0);
	close(fd);
	setenv("PVIO_TEST_GUARD_PAUSE", "file", 1);
	pid = program(body_create);
	unsetenv("PVIO_TEST_GUARD_PAUSE");
	ck_assert_int_eq(waitpid(pid, &status, WUNTRACED), pid);
	ck_assert(WIFSTOPPED(status));
	ck_assert(!exists("img"));
	kill(pid, SIGKILL);
	guard_done(pid);
	ck_assert(!exists("img"));
}
END_TEST

static void body_mkdtemp(void)
{
	char templ[PATH_MAX], bad[PATH_MAX];
	FILE *f;

	snprintf(templ, sizeof(templ), "%s", at("world.XXXXXX"));
	snprintf(bad, sizeof(bad), "%s", at("world.XXXXX"));
	if (pvio_guard_mkdtemp(bad) != -EINVAL ||
	    pvio_guard_mkdtemp(templ) || !strcmp(templ, at("world.XXXXXX")))
		_exit(4);
	f = fopen(at("name"), "w");
	if (!f)
		_exit(5);
	fputs(templ, f);
	fclose(f);
	/* a world's directory has files in it by the end */
	strcat(templ, "/hv.log");
	f = fopen(templ, "w");
	if (!f)
		_exit(6);
	fclose(f);
}

START_TEST(t_mkdtemp)
{
	struct stat st;

	guard_done(program(body_mkdtemp));
	ck_assert_ptr_nonnull(slurp("name"));
	ck_assert_int_eq(lstat(slurp("name"), &st), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

static const char *world_dir;

static void body_world(void)
{
	pvio_guard_world(world_dir);
}

/* A world that answers at once and has its pid file only 300 ms later */
START_TEST(t_world_starting)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char dirbuf[PATH_MAX + 64];
	pid_t world;
	int status, i, rc = -1;

	snprintf(dirbuf, sizeof(dirbuf), "%s", at("world"));
	world_dir = dirbuf;
	ck_assert_int_eq(mkdir(world_dir, 0700), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/hv.sock", world_dir);
	world = fork();
	ck_assert_int_ge(world, 0);
	if (world == 0) {
		int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
		char pidfile[PATH_MAX + 80];
		FILE *f;

		signal(SIGTERM, SIG_DFL);	/* not Check's handler */
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
		    listen(fd, 16))
			_exit(1);
		usleep(300000);
		snprintf(pidfile, sizeof(pidfile), "%s/simhv.pid", world_dir);
		f = fopen(pidfile, "w");
		if (f) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
		for (;;)
			pause();	/* until stopped (SIGTERM) */
	}
	for (i = 0; i < 100 && access(sa.sun_path, F_OK); i++)
		usleep(10000);
	guard_done(program(body_world));
	/* stopped by the guard, not left running */
	for (i = 0; i < 500 && rc == -1; i++) {
		rc = waitpid(world, &status, WNOHANG) == world ? 0 : -1;
		if (rc)
			usleep(10000);
	}
	if (rc) {
		kill(world, SIGKILL);
		waitpid(world, &status, 0);
	}
	ck_assert_msg(rc == 0, "the world was left running");
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM);
	ck_assert(!exists("world"));
}
END_TEST

static void body_cancel(void)
{
	pvio_guard_cmd("echo a >> '%s'", at("out"));
	pvio_guard_cmd("echo b >> '%s'", at("out"));
	pvio_guard_cmd("echo b >> '%s'", at("out"));
	pvio_guard_cmd("echo c >> '%s'", at("out"));
	/* the newest "b" only, and "a"; a cancel of nothing does nothing */
	pvio_guard_cmd_cancel("echo b >> '%s'", at("out"));
	pvio_guard_cmd_cancel("echo a >> '%s'", at("out"));
	pvio_guard_cmd_cancel("echo z >> '%s'", at("out"));
}

START_TEST(t_cancel_newest_first)
{
	guard_done(program(body_cancel));
	ck_assert_str_eq(slurp("out"), "c\nb\n");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("guard");
	TCase *tc = tcase_create("undo");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, t_create_removed);
	tcase_add_test(tc, t_create_not_theirs);
	tcase_add_test(tc, t_create_killed);
	tcase_add_test(tc, t_mkdtemp);
	tcase_add_test(tc, t_cancel_newest_first);
	tcase_add_test(tc, t_world_starting);
	suite_add_tcase(s, tc);
	return t_run_suite(s, false);
}
