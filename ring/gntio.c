// SPDX-License-Identifier: MIT
/* Batched grant copy with segment checks (include/pvio/gntio.h). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>

#include <pvio/gntio.h>

#include "private.h"

int pvio_gcopy_init(struct pvio_gcopy *b, struct pvio_platform *p,
		    unsigned int domid, unsigned int cap)
{
	memset(b, 0, sizeof(*b));
	if (!p || cap == 0 || domid >= PVIO_DOMID_SELF)
		return -EINVAL;
	b->segs = calloc(cap, sizeof(*b->segs));
	if (!b->segs)
		return -ENOMEM;
	b->plat = p;
	b->cap = cap;
	b->domid = (uint16_t)domid;
	return 0;
}

void pvio_gcopy_destroy(struct pvio_gcopy *b)
{
	if (!b)
		return;
	free(b->segs);
	b->segs = NULL;
	b->cap = b->n = 0;
}

static int gcopy_add(struct pvio_gcopy *b, pvio_gref_t ref,
		     unsigned int offset, unsigned int len, void *local,
		     bool from_guest)
{
	struct pvio_gnt_copy_seg *s;

	/* Checked here, on private values, before the platform sees them;
	 * the platform checks once more against the grant itself. */
	if (len == 0 || offset >= PVIO_PAGE_SIZE ||
	    len > PVIO_PAGE_SIZE - offset)
		return -EINVAL;
	if (b->n == b->cap)
		return -ENOSPC;
	s = &b->segs[b->n];
	if (from_guest) {
		s->source.foreign.ref = ref;
		s->source.foreign.offset = (uint16_t)offset;
		s->source.foreign.domid = b->domid;
		s->dest.virt = local;
		s->flags = PVIO_GNTCOPY_SOURCE_GREF;
	} else {
		s->source.virt = local;
		s->dest.foreign.ref = ref;
		s->dest.foreign.offset = (uint16_t)offset;
		s->dest.foreign.domid = b->domid;
		s->flags = PVIO_GNTCOPY_DEST_GREF;
	}
	s->len = (uint16_t)len;
	s->status = 0;
	return (int)b->n++;
}

int pvio_gcopy_from_guest(struct pvio_gcopy *b, pvio_gref_t ref,
			  unsigned int offset, unsigned int len, void *dst)
{
	return gcopy_add(b, ref, offset, len, dst, true);
}

int pvio_gcopy_to_guest(struct pvio_gcopy *b, pvio_gref_t ref,
			unsigned int offset, unsigned int len, const void *src)
{
	return gcopy_add(b, ref, offset, len, (void *)src, false);
}

int pvio_gcopy_flush(struct pvio_gcopy *b)
{
	unsigned int i, failed = 0;
	int rc;

	if (b->n == 0)
		return 0;
	rc = pvio_gnt_copy(b->plat, b->segs, b->n);
	b->nr_flushes++;
	b->nr_segs += b->n;
	for (i = 0; i < b->n; i++) {
		if (rc < 0)
			b->segs[i].status = (int16_t)rc;
		if (b->segs[i].status)
			failed++;
		else
			b->nr_bytes += b->segs[i].len;
	}
	b->nr_failed += failed;
	return rc < 0 ? rc : (int)failed;
}
