// SPDX-License-Identifier: MIT
/*
 * blkif requests from a hostile frontend: a one-page ring whose indices
 * and slots the input writes, round after round, consumed as pvio-backd
 * does (pvio_blkif_back_consume: rule 2), each copy validated by
 * blk_parse() (rule 4), the segment pages of indirect requests (also from
 * the input) by blk_check_segs(), and answered. An accepted request must
 * lie inside the device, on its sector size, and be writable if it writes.
 *
 * Input: a configuration (features, sector size, read-only, indirect
 * limit, device size, start index), then rounds: a count of requests to
 * publish, their 112-byte slots, a req_prod adjustment; indirect pages are
 * taken from the input as they are needed.
 */
#include "config.h"

#include <assert.h>

#include "blk.h"
#include "fuzz.h"

#define RING_SLOTS	32
#define SEGS_MAX	(BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST * \
			 BLK_SEGS_PER_INDIRECT_PAGE)

static void check_accepted(const struct vbd *v, uint32_t max_segs,
			   uint64_t sectors, const struct blk_req *r)
{
	unsigned int i;

	switch (r->kind) {
	case BK_READ:
	case BK_WRITE:
		FZ_CHECK(r->nseg >= 1 && r->nseg <= max_segs);
		FZ_CHECK(r->indirect || r->nseg <= BLK_MAX_DIRECT);
		FZ_CHECK(r->kind == BK_READ || !v->readonly);
		/* fall through */
	case BK_BARRIER:
		FZ_CHECK(r->kind != BK_BARRIER || !v->readonly);
		if (!r->nseg)	/* a barrier without data: a flush */
			break;
		for (i = 0; i < r->nseg; i++) {
			FZ_CHECK(r->seg[i].first_sect <= r->seg[i].last_sect);
			FZ_CHECK(r->seg[i].last_sect <= 7);
		}
		FZ_CHECK(r->bytes % v->logical == 0);
		FZ_CHECK((r->sector * 512u) % v->logical == 0);
		FZ_CHECK(r->sector <= sectors &&
			 r->bytes / 512u <= sectors - r->sector);
		break;
	case BK_DISCARD:
		FZ_CHECK(v->feat_discard && !v->readonly);
		FZ_CHECK(r->bytes && r->bytes % v->logical == 0);
		FZ_CHECK(r->sector <= sectors &&
			 r->bytes / 512u <= sectors - r->sector);
		break;
	case BK_FLUSH:
		FZ_CHECK(v->feat_flush);
		break;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct blkif_request_segment seg[SEGS_MAX];
	static void *page;
	struct fz f = { data, size };
	struct pvio_ring_back ring;
	struct pvio_sring *s;
	struct vbd v = { .fd_direct = -1 };
	struct blk_req r = { .seg = seg };
	uint32_t max_segs, start;
	uint64_t sectors;
	uint8_t cfg, ind;
	unsigned int rounds = 0;

	if (!page && posix_memalign(&page, PVIO_PAGE_SIZE, PVIO_PAGE_SIZE))
		abort();
	s = page;
	cfg = fz_u8(&f);
	ind = fz_u8(&f);
	v.readonly = cfg & 1;
	v.feat_flush = cfg & 2;
	v.feat_barrier = cfg & 4;
	v.feat_discard = cfg & 8;
	v.logical = 512u << ((cfg >> 4) & 3);	/* 512..4096 */
	/* what pvio-backd accepts: 0 (none) or 12..256 */
	v.max_indirect = ind ? 12u + ind % (BLK_MAX_INDIRECT - 11u) : 0;
	max_segs = v.max_indirect > BLK_MAX_DIRECT ? v.max_indirect
						   : BLK_MAX_DIRECT;
	/* a size in bytes fits in 64 bits */
	sectors = fz_u64(&f) & ((1ull << 55) - 1);
	if (cfg & 0x40)
		sectors &= 0xffffff;	/* a small disk: edges are near */
	start = fz_u32(&f);

	memset(s, 0, PVIO_PAGE_SIZE);
	s->req_prod = s->rsp_prod = start;
	if (pvio_blkif_back_attach(&ring, s, 1))
		abort();
	FZ_CHECK(ring.nr_ents == RING_SLOTS);
	while (f.left && rounds++ < 64) {
		uint8_t n = fz_u8(&f) % (RING_SLOTS + 1), k;
		uint32_t prod = s->req_prod;
		struct blkif_request c[8];
		int got, i;

		for (k = 0; k < n; k++)
			fz_bytes(&f, pvio__ring_slot(s, prod + k, RING_SLOTS,
						     sizeof(c[0])),
				 sizeof(c[0]));
		/* usually what was written; sometimes an index game */
		s->req_prod = prod + n + (int8_t)(fz_u8(&f) & 0x87);
		do {
			got = pvio_blkif_back_consume(&ring, c, 8);
			for (i = 0; i < got; i++) {
				struct blkif_response *p;
				int16_t st;

				st = blk_parse(&v, max_segs, sectors, &c[i], &r);
				FZ_CHECK(blk_op_stat(c[i].operation) <= 7);
				if (st == BLKIF_RSP_OKAY && r.indirect) {
					FZ_CHECK(r.nseg <= max_segs);
					FZ_CHECK(r.nr_indirect <=
						 BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST);
					fz_bytes(&f, r.seg,
						 r.nseg * sizeof(r.seg[0]));
					st = blk_check_segs(&v, sectors, &r);
				}
				if (st == BLKIF_RSP_OKAY)
					check_accepted(&v, max_segs, sectors,
						       &r);
				p = pvio_blkif_back_rsp(&ring);
				p->id = r.id;
				p->operation = r.op;
				p->status = st;
				pvio_ring_back_rsp_commit(&ring);
			}
			pvio_ring_back_push(&ring);
		} while (got > 0);
		if (got < 0) {	/* halted: a broken ring stays broken */
			FZ_CHECK(ring.halted != PVIO_RING_LIVE);
			FZ_CHECK(pvio_blkif_back_consume(&ring, c, 8) < 0);
			break;
		}
	}
	return 0;
}
