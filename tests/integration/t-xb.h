/* SPDX-License-Identifier: MIT */
/*
 * The raw test frontends' (t-blkclient, t-netclient, t-chaos) view of a
 * device's two xenstore directories: write a key of ours, read and wait
 * for the backend's state.
 */
#ifndef PVIO_T_XB_H
#define PVIO_T_XB_H

#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include <pvio/xenbus.h>

/* @dir/@key = the formatted value; 0 or -errno (a quota may refuse). */
static inline int t_xb_vwrite(struct pvio_xs *xs, const char *dir,
			      const char *key, const char *fmt, va_list ap)
{
	char p[PVIO_XS_PATH_MAX + 64], v[4096];

	snprintf(p, sizeof(p), "%s/%s", dir, key);
	vsnprintf(v, sizeof(v), fmt, ap);
	return pvio_xs_write(xs, 0, p, v);
}

/* @dir/state; 0 (Unknown) when absent or not a state. */
static inline unsigned long t_xb_state(struct pvio_xs *xs, const char *dir)
{
	char p[PVIO_XS_PATH_MAX + 16];
	unsigned long s = 0;

	snprintf(p, sizeof(p), "%s/state", dir);
	pvio_xs_read_uint(xs, 0, p, 0, 8, &s);
	return s;
}

/* Poll @dir/state every @step ms, up to @ms: one of @mask's (bits)? */
static inline bool t_xb_wait_state(struct pvio_xs *xs, const char *dir,
				   unsigned int mask, int step, int ms)
{
	for (; ms > 0; ms -= step) {
		if (mask & (1u << t_xb_state(xs, dir)))
			return true;
		poll(NULL, 0, step);
	}
	return false;
}

#endif
