/* SPDX-License-Identifier: MIT */
/* Start and stop a sim world (pvio-simhv) from pvio's programs and tests. */
#ifndef PVIO_UTIL_WORLD_H
#define PVIO_UTIL_WORLD_H

#include <stdbool.h>
#include <sys/types.h>

/*
 * The pvio-simhv to run: $PVIO_SIMHV, else the one beside this program's
 * executable, else the installed one.
 */
const char *pvio_world_simhv_path(void);
/*
 * Start a world in @dir and wait until it accepts connections. @extra_args
 * (NULL-terminated, may be NULL) go to pvio-simhv. Should the calling
 * thread end before the world is ready, the world does not start. Return 0
 * or -errno.
 */
int pvio_world_start(const char *dir, const char *const *extra_args);
/* The world's pid from its pid file, or -errno. */
pid_t pvio_world_pid(const char *dir);
/*
 * SIGTERM the world and wait (up to @timeout_ms) for it to go; then remove
 * the persistent TAPs its pvio-backd left (alias "pvio-backd sim:@dir ...").
 */
int pvio_world_stop(const char *dir, int timeout_ms);
/*
 * Does a world answer on its socket in @dir? (Stopped with SIGSTOP, it
 * still does.) False for a directory whose world is gone, whatever its
 * pid file says.
 */
bool pvio_world_running(const char *dir);
/*
 * Remove a world's directory and what is in it (its logs, xenstore, its
 * pvio-backd's files), once the world is stopped. Return 0, -ENOTEMPTY if
 * something (a process still writing there) left it standing, or -errno.
 */
int pvio_world_remove(const char *dir);

#endif
