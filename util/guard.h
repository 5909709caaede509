/* SPDX-License-Identifier: MIT */
/*
 * A guard for programs that build a world of their own (pvio-bench,
 * pvio-ringbench): a process that outlives the program and undoes what the
 * program leaves behind when it ends without cleaning up (SIGKILL, ^C, an
 * early error return): its sim worlds (pvio-simhv is a daemon, so nothing
 * else stops it), their directories, its files and its network namespaces.
 * libguestfs's recovery process does the same for its appliance.
 *
 * Everything registered is undone when the program's last handle on the
 * guard closes, in the reverse order of registration, whether or not the
 * program undid it itself: each step is harmless when there is nothing left
 * to undo. Children that should not outlive the program are forked with
 * pvio_guard_fork().
 */
#ifndef PVIO_UTIL_GUARD_H
#define PVIO_UTIL_GUARD_H

#include <sys/types.h>

/*
 * Fork the guard; @prog names the program in the guard's one message (a
 * world it had to stop). Call it before any other child is forked. Returns
 * 0 or -errno; without a guard the registrations below do nothing.
 */
int pvio_guard_start(const char *prog);
/*
 * Register a thing before it has its name, never after: a SIGKILL that
 * lands between naming and registering leaves the thing behind.
 */
/* At the end: stop the sim world in @dir if it still runs (or is still
 * starting), remove @dir. Call it before the world is started. */
void pvio_guard_world(const char *dir);
/* mkdtemp(3) for a world's directory, registered (pvio_guard_world())
 * before it is made. Returns 0 or -errno. */
int pvio_guard_mkdtemp(char *templ);
/* Create @path (O_RDWR, which must not exist: -EEXIST) as a file
 * unlinked at the end if it is still there: made unnamed (O_TMPFILE),
 * registered, then named, so that no moment's kill leaves it. Returns
 * its fd (close-on-exec) or -errno. */
int pvio_guard_create(const char *path, mode_t mode);
/* At the end: unlink @path, if it is still the file it is now (call it
 * once the file is made; pvio_guard_create() leaves no moment between). */
void pvio_guard_file(const char *path);
/* At the end: run this shell command (e.g. "ip netns del NAME"), its
 * output discarded. Call it before the thing it undoes is made, and
 * pvio_guard_cmd_cancel() with the same command if making it failed
 * because the thing exists: it is not ours. */
void pvio_guard_cmd(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pvio_guard_cmd_cancel(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
/* A test's hook: with PVIO_TEST_GUARD_PAUSE=@what in the environment,
 * the program stops itself (SIGSTOP) here, once @what ("file", "world")
 * is made, for the test to kill it at that moment. */
void pvio_guard_test_pause(const char *what);
/*
 * fork() for a child that must not outlive this process: it is killed
 * (SIGKILL) when this process ends, and it holds no handle on the guard.
 * A child that wants a gentler end sets its own PR_SET_PDEATHSIG. Call it
 * from the main thread: the signal comes when the thread that forked ends.
 */
pid_t pvio_guard_fork(void);

#endif
