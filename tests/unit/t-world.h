/* SPDX-License-Identifier: MIT */
/* Test helpers: a private sim world per test (Check fork mode). */
#ifndef PVIO_T_WORLD_H
#define PVIO_T_WORLD_H

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pvio/platform.h>

#include "world.h"

static char t_world_dir[256];
static char t_world_spec[300];

/* Start a world in a fresh directory; "sim:DIR" is in t_world_spec. */
static inline void t_world_start(void)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	int rc;

	snprintf(t_world_dir, sizeof(t_world_dir), "%s/pvio-test.XXXXXX", tmp);
	ck_assert_ptr_nonnull(mkdtemp(t_world_dir));
	rc = pvio_world_start(t_world_dir, NULL);
	ck_assert_msg(rc == 0, "cannot start pvio-simhv (%s): %s",
		      pvio_world_simhv_path(), strerror(-rc));
	snprintf(t_world_spec, sizeof(t_world_spec), "sim:%s", t_world_dir);
}

/*
 * A process that outlives the test's: when the test dies in any way (a
 * failed assertion exits at once, without the teardown), it stops the
 * world and removes its directory. It leaves the test's process group:
 * Check's fork mode kills that whole group as soon as the test is over.
 */
static inline void t_world_guard(void)
{
	int p[2], ready[2];
	pid_t pid;
	char c;

	ck_assert_int_eq(pipe2(p, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(ready, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		setsid();
		close(p[1]);
		close(ready[0]);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		close(ready[1]);
		/* EOF: every copy of p[1] is gone with the test's processes */
		while (read(p[0], &c, 1) != 0 && errno == EINTR)
			;
		pvio_world_stop(t_world_dir, 5000);
		_exit(pvio_world_remove(t_world_dir) ? 1 : 0);
	}
	close(p[0]);
	close(ready[1]);
	/* out of reach of Check's kill before the test can end */
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	/* p[1] stays open (close-on-exec) until this process is gone */
}

static inline void t_world_stop(void)
{
	int rc;

	if (!t_world_dir[0])
		return;
	pvio_world_stop(t_world_dir, 5000);
	rc = pvio_world_remove(t_world_dir);
	if (rc)
		fprintf(stderr, "cannot remove %s: %s\n", t_world_dir,
			strerror(-rc));
	t_world_dir[0] = 0;
}

static inline struct pvio_platform *t_attach(unsigned int domid)
{
	struct pvio_platform *p = NULL;
	int rc = pvio_platform_open(&p, t_world_spec, domid,
				    domid ? PVIO_PLATFORM_CREATE : 0);

	ck_assert_msg(rc == 0, "attach as dom%u: %s", domid, strerror(-rc));
	return p;
}

#endif
