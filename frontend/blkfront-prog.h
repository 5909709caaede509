/* SPDX-License-Identifier: MIT */
/*
 * pvio-blkfront (the program): the disk as byte-addressed storage for the
 * CLI modes and the FUSE export. Reads and writes at any offset and
 * length (read-modify-write around the sector size), one queue per
 * thread where there are enough, a mutex per queue where threads share.
 */
#ifndef PVIO_BLKFRONT_PROG_H
#define PVIO_BLKFRONT_PROG_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <pvio/blkfront.h>

struct bfp_queue {
	pthread_mutex_t lock;
	struct pvio_blkfront_queue *q;
};

struct bfp {
	struct pvio_blkfront *dev;
	struct pvio_blkfront_info info;	/* as of open */
	uint64_t size;			/* atomic: bytes, after resizes */
	uint32_t ss;			/* sector size */
	unsigned int nq;
	struct bfp_queue qs[PVIO_BLKFRONT_MAX_QUEUES];
	/* unaligned writes (read-modify-write) exclude all other writes */
	pthread_rwlock_t rmw;
	bool discard_zeroes;		/* trust discarded data to read 0 */
	char vdev[32];
};

/* All: bytes done or -errno. Reads stop at the end of the disk. */
ssize_t bfp_read(struct bfp *b, void *buf, size_t len, uint64_t off);
/* -ENOSPC past the end. */
ssize_t bfp_write(struct bfp *b, const void *buf, size_t len, uint64_t off);
int bfp_flush(struct bfp *b);
/* Discard what the backend can, as a hint (-EOPNOTSUPP if never). */
int bfp_discard(struct bfp *b, uint64_t off, uint64_t len);
/* Make [off, off+len) read as zeroes; @unmap: discard first and write
 * zeroes only where the backend did not leave them. */
int bfp_zero(struct bfp *b, uint64_t off, uint64_t len, bool unmap);

#ifdef HAVE_FUSE
/* Serve MOUNTPOINT/<vdev> until unmounted or signalled. 0 or -errno. */
int bfp_fuse_run(struct bfp *b, const char *mountpoint,
		 const char *fuse_opts, unsigned int threads);
#endif

#endif
