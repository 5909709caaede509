// SPDX-License-Identifier: MIT
/*
 * Ring set-up and the cold paths of the inline ring API (include/pvio/ring.h).
 */
#include "config.h"

#include <pvio/ring.h>

#include "private.h"

/* ---- the ABI is Xen's own --------------------------------------------- */

#define PVIO_CHECK_SRING(tag)						\
	_Static_assert(offsetof(struct tag##_sring, req_prod) ==	\
		       offsetof(struct pvio_sring, req_prod), #tag);	\
	_Static_assert(offsetof(struct tag##_sring, req_event) ==	\
		       offsetof(struct pvio_sring, req_event), #tag);	\
	_Static_assert(offsetof(struct tag##_sring, rsp_prod) ==	\
		       offsetof(struct pvio_sring, rsp_prod), #tag);	\
	_Static_assert(offsetof(struct tag##_sring, rsp_event) ==	\
		       offsetof(struct pvio_sring, rsp_event), #tag);	\
	_Static_assert(offsetof(struct tag##_sring, ring) ==		\
		       offsetof(struct pvio_sring, ring), #tag);	\
	_Static_assert(sizeof(union tag##_sring_entry) ==		\
		       sizeof(union pvio_##tag##_slot), #tag)

PVIO_CHECK_SRING(blkif);
PVIO_CHECK_SRING(netif_tx);
PVIO_CHECK_SRING(netif_rx);
_Static_assert(sizeof(struct pvio_sring) == PVIO_RING_HDR_SIZE, "sring hdr");

/* The message layouts our dataplanes rely on (blkif.h, netif.h). */
_Static_assert(sizeof(struct blkif_request) == 112, "blkif_request");
_Static_assert(sizeof(struct blkif_response) == 16, "blkif_response");
_Static_assert(offsetof(struct blkif_request, id) == 8, "blkif id");
_Static_assert(offsetof(struct blkif_request, sector_number) == 16, "sector");
_Static_assert(offsetof(struct blkif_request, seg) == 24, "seg");
_Static_assert(sizeof(struct blkif_request_segment) == 8, "segment");
_Static_assert(sizeof(struct blkif_request_discard) <= 112, "discard");
_Static_assert(offsetof(struct blkif_request_discard, nr_sectors) == 24, "nr");
_Static_assert(offsetof(struct blkif_request_indirect, nr_segments) == 2,
	       "indirect nr_segments");
_Static_assert(offsetof(struct blkif_request_indirect, indirect_grefs) == 28,
	       "indirect grefs");
_Static_assert(sizeof(struct netif_tx_request) == 12, "netif_tx_request");
_Static_assert(sizeof(struct netif_tx_response) == 4, "netif_tx_response");
_Static_assert(sizeof(struct netif_rx_request) == 8, "netif_rx_request");
_Static_assert(sizeof(struct netif_rx_response) == 8, "netif_rx_response");
_Static_assert(sizeof(struct netif_extra_info) == 8, "netif_extra_info");
_Static_assert(__CONST_RING_SIZE(blkif, 4096) == 32, "32 blkif slots/page");
_Static_assert(__CONST_RING_SIZE(netif_tx, 4096) == 256, "256 tx slots/page");
_Static_assert(__CONST_RING_SIZE(netif_rx, 4096) == 256, "256 rx slots/page");


static int ring_geometry(void *sring, unsigned int pages, size_t slot_size,
			 uint32_t *nr_ents)
{
	if (!sring || pages == 0 || pages > PVIO_RING_MAX_PAGES ||
	    slot_size == 0 || slot_size > PVIO_PAGE_SIZE)
		return -EINVAL;
	*nr_ents = pvio_ring_nr_ents(pages, slot_size);
	return *nr_ents ? 0 : -EINVAL;
}

int pvio_ring_front_init(struct pvio_ring_front *r, void *sring,
			 unsigned int pages, size_t slot_size)
{
	struct pvio_sring *s = sring;
	uint32_t n;
	int rc;

	rc = ring_geometry(sring, pages, slot_size, &n);
	if (rc)
		return rc;
	/* SHARED_RING_INIT */
	memset(s, 0, PVIO_RING_HDR_SIZE);
	s->req_event = 1;
	s->rsp_event = 1;
	memset(r, 0, sizeof(*r));
	r->sring = s;
	r->nr_ents = n;
	return 0;
}

int pvio_ring_front_attach(struct pvio_ring_front *r, void *sring,
			   unsigned int pages, size_t slot_size)
{
	struct pvio_sring *s = sring;
	uint32_t n, req, rsp;
	int rc;

	rc = ring_geometry(sring, pages, slot_size, &n);
	if (rc)
		return rc;
	req = __atomic_load_n(&s->req_prod, __ATOMIC_ACQUIRE);
	rsp = __atomic_load_n(&s->rsp_prod, __ATOMIC_ACQUIRE);
	if (req - rsp > n)
		return -EPROTO;
	memset(r, 0, sizeof(*r));
	r->sring = s;
	r->nr_ents = n;
	r->req_prod_pvt = req;
	r->req_pushed = req;
	r->rsp_cons = rsp;
	r->rsp_snap = rsp;
	return 0;
}

int pvio_ring_back_attach(struct pvio_ring_back *r, void *sring,
			  unsigned int pages, size_t slot_size)
{
	struct pvio_sring *s = sring;
	uint32_t n, req, rsp;
	int rc;

	rc = ring_geometry(sring, pages, slot_size, &n);
	if (rc)
		return rc;
	memset(r, 0, sizeof(*r));
	/* BACK_RING_ATTACH at the live response index: requests published
	 * but not answered are consumed again (restart safety,
	 * docs/protocol.md rule 11). */
	rsp = __atomic_load_n(&s->rsp_prod, __ATOMIC_ACQUIRE);
	req = __atomic_load_n(&s->req_prod, __ATOMIC_ACQUIRE);
	r->sring = s;
	r->nr_ents = n;
	r->req_cons = rsp;
	r->req_snap = rsp;
	r->rsp_prod_pvt = rsp;
	r->rsp_pushed = rsp;
	if (req - rsp > n) {
		r->halted = PVIO_RING_BAD_ATTACH;
		return -EPROTO;
	}
	return 0;
}

__attribute__((cold)) int pvio_ring_back_halt(struct pvio_ring_back *r,
					      enum pvio_ring_halt why)
{
	if (!r->halted)
		r->halted = why;
	return -EPROTO;
}

__attribute__((cold)) int pvio_ring_front_halt(struct pvio_ring_front *r,
					       enum pvio_ring_halt why)
{
	if (!r->halted)
		r->halted = why;
	return -EPROTO;
}

const char *pvio_ring_halt_str(enum pvio_ring_halt why)
{
	switch (why) {
	case PVIO_RING_LIVE:
		return "live";
	case PVIO_RING_REQ_OVERFLOW:
		return "req_prod claims more requests than the ring holds";
	case PVIO_RING_REQ_BACKWARDS:
		return "req_prod moved backwards";
	case PVIO_RING_RSP_OVERFLOW:
		return "rsp_prod claims responses never requested";
	case PVIO_RING_BAD_ATTACH:
		return "inconsistent indices at attach";
	}
	return "unknown";
}

uint64_t pvio_clock_ns(void)
{
	return pvio_now_ns();	/* the library sees clock_gettime() */
}
