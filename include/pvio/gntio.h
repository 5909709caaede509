/* SPDX-License-Identifier: MIT */
/*
 * Grant-resolved data access: a request segment (grant ref, offset, length)
 * becomes bytes only through the platform's grant copy (batched here) or
 * grant map, after length/offset checks. Dataplanes never turn a guest
 * value into an address.
 */
#ifndef PVIO_GNTIO_H
#define PVIO_GNTIO_H

#include <pvio/platform.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A batch of grant-copy segments against one foreign domain, issued with
 * one pvio_gnt_copy() (one hypercall on Xen). Not thread-safe: one per
 * dataplane thread.
 */
struct pvio_gcopy {
	struct pvio_platform *plat;
	struct pvio_gnt_copy_seg *segs;
	unsigned int n;
	unsigned int cap;
	uint16_t domid;
	/* counters */
	uint64_t nr_flushes;
	uint64_t nr_segs;
	uint64_t nr_bytes;
	uint64_t nr_failed;
};

/* Return 0, -ENOMEM, -EINVAL (cap 0). */
PVIO_API int pvio_gcopy_init(struct pvio_gcopy *b, struct pvio_platform *p,
			     unsigned int domid, unsigned int cap);
PVIO_API void pvio_gcopy_destroy(struct pvio_gcopy *b);

/* Later segments name domain @domid (one batch may serve many guests). */
static inline void pvio_gcopy_set_domain(struct pvio_gcopy *b,
					 unsigned int domid)
{
	b->domid = (uint16_t)domid;
}

/*
 * Queue a copy from the granted page @ref, bytes [@offset, @offset+@len),
 * into @dst (from_guest) or from @src into it (to_guest).
 * Return: the segment's index in the batch (to read its status after the
 * flush); -EINVAL if @len is 0 or the range leaves the page; -ENOSPC if the
 * batch is full (flush first).
 */
PVIO_API int pvio_gcopy_from_guest(struct pvio_gcopy *b, pvio_gref_t ref,
				   unsigned int offset, unsigned int len,
				   void *dst);
PVIO_API int pvio_gcopy_to_guest(struct pvio_gcopy *b, pvio_gref_t ref,
				 unsigned int offset, unsigned int len,
				 const void *src);
/*
 * Issue the queued segments. Return: the number of failed segments (read
 * each one's status with pvio_gcopy_status()), or -errno if the batch could
 * not be issued (then every status is that error). The batch keeps its
 * segments until pvio_gcopy_reset().
 */
PVIO_API int pvio_gcopy_flush(struct pvio_gcopy *b);

static inline int pvio_gcopy_status(const struct pvio_gcopy *b,
				    unsigned int idx)
{
	return b->segs[idx].status;
}

static inline unsigned int pvio_gcopy_room(const struct pvio_gcopy *b)
{
	return b->cap - b->n;
}

static inline void pvio_gcopy_reset(struct pvio_gcopy *b)
{
	b->n = 0;
}

#ifdef __cplusplus
}
#endif
#endif /* PVIO_GNTIO_H */
