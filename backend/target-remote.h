/* SPDX-License-Identifier: MIT */
/*
 * What the remote targets (target-nbd.c, target-rbd.c) share: the
 * single-writer lock file of a target that has no lock protocol of its
 * own, and the copies between a request's pages and one buffer (their
 * clients take one buffer per call; a guest's pages are mapped apart).
 */
#ifndef PVIO_BACKEND_TARGET_REMOTE_H
#define PVIO_BACKEND_TARGET_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

struct remote_lock {
	int fd;		/* -1: not held */
	char path[512];
	/* what the last holder noted (remote_lock_note()), read at the take:
	 * no process holds the lock now, so that holder is gone */
	char note[128];
};

/*
 * An OFD write lock on DIR/<kind>-<hash of @name>.lock, held until
 * remote_lock_drop(): a second holder (this process or another) gets
 * -EBUSY and @why says who holds it. The file holds @name for operators.
 */
int remote_lock_take(struct remote_lock *l, const char *dir, const char *name,
		     char *why, size_t len);
/* Note @note in the held lock's file, after @name, for its next holder */
void remote_lock_note(struct remote_lock *l, const char *name,
		      const char *note);
void remote_lock_drop(struct remote_lock *l);

/* @iov's @n pieces, in order, into @dst (which holds them all): bytes */
size_t remote_gather(void *dst, const struct iovec *iov, unsigned int n);
/* The pieces follow each other in our address space: one buffer already
 * (a single segment; pages mapped together or bounce pages taken in
 * order), for a target whose calls take one buffer. */
bool remote_contiguous(const struct iovec *iov, unsigned int n);
/* and back: @src's bytes out to @iov's @n pieces */
void remote_scatter(const struct iovec *iov, unsigned int n, const void *src);

#endif
