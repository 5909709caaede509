/* SPDX-License-Identifier: MIT */
/* Test helpers: a private sim world per test (Check fork mode). */
#ifndef PVIO_T_WORLD_H
#define PVIO_T_WORLD_H

#include <check.h>
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

static inline void t_world_stop(void)
{
	char cmd[400];

	if (!t_world_dir[0])
		return;
	pvio_world_stop(t_world_dir, 5000);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t_world_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", t_world_dir);
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
