// SPDX-License-Identifier: MIT
/*
 * blkif request validation (docs/protocol.md rule 4): pure functions over
 * the private copy of a request (rule 1), the device's limits and its size.
 * No ring, no I/O, no statistics: blk-dataplane.c calls them on every
 * request, fuzz/fuzz-blkif.c on whatever libFuzzer makes up.
 */
#include "config.h"

#include <string.h>

#include "blk.h"

unsigned int blk_op_stat(uint8_t op)
{
	switch (op) {
	case BLKIF_OP_READ:
	case BLKIF_OP_WRITE:
	case BLKIF_OP_WRITE_BARRIER:
	case BLKIF_OP_FLUSH_DISKCACHE:
	case BLKIF_OP_DISCARD:
	case BLKIF_OP_INDIRECT:
		return op;
	default:
		return 7;
	}
}

int16_t blk_check_segs(const struct vbd *v, uint64_t dev_sectors,
		       struct blk_req *r)
{
	const unsigned int L = v->logical;
	uint64_t sectors = 0;
	unsigned int i;

	for (i = 0; i < r->nseg; i++) {
		const struct blkif_request_segment *s = &r->seg[i];
		unsigned int len;

		if (s->last_sect > 7 || s->first_sect > s->last_sect)
			return BLKIF_RSP_ERROR;
		len = (s->last_sect - s->first_sect + 1u) * 512u;
		if ((s->first_sect * 512u) % L || len % L)
			return BLKIF_RSP_ERROR;	/* not on sector-size */
		sectors += len / 512u;
	}
	if ((r->sector * 512u) % L)
		return BLKIF_RSP_ERROR;
	/* inside the device, without wrapping around */
	if (r->sector + sectors < r->sector ||
	    r->sector + sectors > dev_sectors)
		return BLKIF_RSP_ERROR;
	if (r->kind == BK_WRITE && v->readonly)
		return BLKIF_RSP_ERROR;
	r->bytes = sectors * 512u;
	return BLKIF_RSP_OKAY;
}

int16_t blk_parse(const struct vbd *v, uint32_t max_segs,
		  uint64_t dev_sectors, const struct blkif_request *c,
		  struct blk_req *r)
{
	r->id = c->id;
	r->op = c->operation;
	r->indirect = false;
	r->retried = false;
	r->mapped = false;
	r->stage = 0;
	r->status = BLKIF_RSP_OKAY;
	r->pending = 0;
	r->nseg = 0;
	r->bytes = 0;
	switch (c->operation) {
	case BLKIF_OP_READ:
	case BLKIF_OP_WRITE:
		r->kind = c->operation == BLKIF_OP_READ ? BK_READ : BK_WRITE;
		if (c->nr_segments == 0 ||
		    c->nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST)
			return BLKIF_RSP_ERROR;
		r->nseg = c->nr_segments;
		r->sector = c->sector_number;
		memcpy(r->seg, c->seg, sizeof(c->seg[0]) * r->nseg);
		return blk_check_segs(v, dev_sectors, r);
	case BLKIF_OP_FLUSH_DISKCACHE:
		r->kind = BK_FLUSH;
		if (!v->feat_flush)
			return BLKIF_RSP_EOPNOTSUPP;
		/* a flush carries no data (segments, if any, are ignored as
		 * by Linux blkback) */
		return BLKIF_RSP_OKAY;
	case BLKIF_OP_WRITE_BARRIER:
		r->kind = BK_BARRIER;
		if (!v->feat_barrier)
			return BLKIF_RSP_EOPNOTSUPP;
		if (c->nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST)
			return BLKIF_RSP_ERROR;
		r->nseg = c->nr_segments;
		r->sector = c->sector_number;
		memcpy(r->seg, c->seg, sizeof(c->seg[0]) * r->nseg);
		if (r->nseg) {
			int16_t st;

			r->kind = BK_WRITE;	/* for the checks */
			st = blk_check_segs(v, dev_sectors, r);
			r->kind = BK_BARRIER;
			return st;
		}
		return v->readonly ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY;
	case BLKIF_OP_DISCARD: {
		const struct blkif_request_discard *d =
			(const struct blkif_request_discard *)c;
		const unsigned int L = v->logical;

		r->kind = BK_DISCARD;
		if (!v->feat_discard)
			return BLKIF_RSP_EOPNOTSUPP;
		r->sector = d->sector_number;
		if (v->readonly || d->nr_sectors == 0 ||
		    d->nr_sectors > UINT64_MAX / 512u ||
		    d->sector_number + d->nr_sectors < d->sector_number ||
		    d->sector_number + d->nr_sectors > dev_sectors ||
		    (d->sector_number * 512u) % L ||
		    (d->nr_sectors * 512u) % L)
			return BLKIF_RSP_ERROR;
		r->bytes = d->nr_sectors * 512u;
		return BLKIF_RSP_OKAY;
	}
	case BLKIF_OP_INDIRECT: {
		const struct blkif_request_indirect *in =
			(const struct blkif_request_indirect *)c;
		unsigned int i;

		r->kind = BK_READ;
		if (!v->max_indirect)
			return BLKIF_RSP_EOPNOTSUPP;
		r->id = in->id;
		/* Linux blkfront wants the indirect_op echoed */
		r->op = in->indirect_op;
		if (in->indirect_op != BLKIF_OP_READ &&
		    in->indirect_op != BLKIF_OP_WRITE) {
			r->op = BLKIF_OP_INDIRECT;
			return BLKIF_RSP_EOPNOTSUPP;
		}
		r->kind = in->indirect_op == BLKIF_OP_READ ? BK_READ : BK_WRITE;
		if (in->nr_segments == 0 || in->nr_segments > max_segs)
			return BLKIF_RSP_ERROR;
		r->indirect = true;
		r->nseg = in->nr_segments;
		r->sector = in->sector_number;
		r->nr_indirect = (uint16_t)((r->nseg + BLK_SEGS_PER_INDIRECT_PAGE - 1) /
					    BLK_SEGS_PER_INDIRECT_PAGE);
		for (i = 0; i < r->nr_indirect; i++)
			r->indirect_grefs[i] = in->indirect_grefs[i];
		return BLKIF_RSP_OKAY;
	}
	default:
		r->kind = BK_FLUSH;	/* no data */
		/* unknown: docs/protocol.md rule 4 */
		return BLKIF_RSP_EOPNOTSUPP;
	}
}
