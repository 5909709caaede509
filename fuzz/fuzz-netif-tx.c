// SPDX-License-Identifier: MIT
/*
 * netif tx from a hostile frontend: a one-page tx ring whose indices and
 * slots the input writes, round after round; packets taken as pvio-backd
 * takes them (net_tx_take: the slot chain, extra-info slots, rule 2's
 * index checks), their sizes checked (net_tx_check), every slot answered,
 * and an accepted packet's offloads turned into a virtio-net header
 * (pvio_net_to_vnet) over a frame of the claimed size from the input.
 *
 * Invariants: a taken packet has 1..NET_FATAL_SLOTS data slots and at most
 * 4 extra-info slots, a GSO extra of a known type and non-zero size; an
 * accepted one fits each slot in its page, its slot sizes add up to the
 * first slot's total, at most NET_MAX_SLOTS slots, at least a header.
 */
#include "config.h"

#include <errno.h>

#include "net.h"
#include "fuzz.h"

#define RING_SLOTS	256

static void check_taken(const struct tx_pkt *p)
{
	FZ_CHECK(p->nslots >= 1 && p->nslots <= NET_FATAL_SLOTS);
	FZ_CHECK(p->nextra <= 4);
	if (p->has_gso) {
		FZ_CHECK(p->gso.type == XEN_NETIF_EXTRA_TYPE_GSO);
		FZ_CHECK(p->gso.u.gso.size != 0);
		FZ_CHECK(p->gso.u.gso.type == XEN_NETIF_GSO_TYPE_TCPV4 ||
			 p->gso.u.gso.type == XEN_NETIF_GSO_TYPE_TCPV6);
	}
}

static void check_accepted(const struct tx_pkt *p, uint32_t first_len)
{
	uint32_t sum = first_len;
	unsigned int i;

	FZ_CHECK(p->nslots <= NET_MAX_SLOTS);
	FZ_CHECK(first_len >= 14);
	FZ_CHECK(p->slot[0].offset + first_len <= PVIO_PAGE_SIZE);
	for (i = 1; i < p->nslots; i++) {
		FZ_CHECK(p->slot[i].offset + (uint32_t)p->slot[i].size <=
			 PVIO_PAGE_SIZE);
		sum += p->slot[i].size;
	}
	FZ_CHECK(sum == p->slot[0].size);
}

/* What tx_submit() does with an accepted packet's offloads. */
static void offloads(struct fz *f, const struct tx_pkt *p)
{
	struct pvio_net_offload o = { 0 };
	struct virtio_net_hdr vh;
	size_t len = p->slot[0].size;
	uint8_t *buf;

	o.csum_blank = p->slot[0].flags & NETTXF_csum_blank;
	o.data_validated = p->slot[0].flags & NETTXF_data_validated;
	if (p->has_gso) {
		o.gso_type = p->gso.u.gso.type;
		o.gso_size = p->gso.u.gso.size;
	}
	/* its own allocation: a read past the frame is an ASan report */
	buf = calloc(1, len);
	if (!buf)
		abort();
	fz_bytes(f, buf, len < 256 ? len : 256);	/* the headers */
	if (pvio_net_to_vnet(buf, len, &o, &vh) == 0 &&
	    (vh.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) {
		FZ_CHECK(vh.csum_start + vh.csum_offset + 2u <= len);
		if (vh.gso_type != VIRTIO_NET_HDR_GSO_NONE)
			FZ_CHECK(vh.hdr_len <= len && vh.gso_size);
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static void *page;
	struct fz f = { data, size };
	struct pvio_ring_back ring;
	struct pvio_sring *s;
	unsigned int rounds = 0;
	uint32_t start;

	if (!page && posix_memalign(&page, PVIO_PAGE_SIZE, PVIO_PAGE_SIZE))
		abort();
	s = page;
	start = fz_u32(&f);
	memset(s, 0, PVIO_PAGE_SIZE);
	s->req_prod = s->rsp_prod = start;
	if (pvio_netif_tx_back_attach(&ring, s, 1))
		abort();
	FZ_CHECK(ring.nr_ents == RING_SLOTS);
	while (f.left && rounds++ < 64) {
		uint8_t n = fz_u8(&f) % 48, k;
		uint32_t prod = s->req_prod;
		const char *why = NULL;
		int rc = 0;

		for (k = 0; k < n; k++)
			fz_bytes(&f, pvio__ring_slot(s, prod + k, RING_SLOTS,
						     sizeof(struct netif_tx_request)),
				 sizeof(struct netif_tx_request));
		s->req_prod = prod + n + (int8_t)(fz_u8(&f) & 0x83);
		for (;;) {
			struct tx_pkt p;
			uint32_t first_len = 0, before = ring.req_cons;
			unsigned int i;

			rc = net_tx_take(&ring, &p, &why);
			if (rc <= 0)
				break;
			check_taken(&p);
			FZ_CHECK(ring.req_cons - before ==
				 (uint32_t)p.nslots + p.nextra);
			rc = net_tx_check(&p, &first_len, &why);
			if (rc < 0)
				break;
			FZ_CHECK(rc <= 1 + DROP_TOO_BIG);
			if (rc == 0) {
				check_accepted(&p, first_len);
				offloads(&f, &p);
			}
			/* tx_answer(): one response per slot */
			for (i = 0; i < (unsigned int)p.nslots + p.nextra; i++) {
				struct netif_tx_response *r =
					pvio_netif_tx_back_rsp(&ring);

				r->id = i < p.nslots ? p.slot[i].id : 0;
				r->status = NETIF_RSP_OKAY;
				pvio_ring_back_rsp_commit(&ring);
			}
			pvio_ring_back_push(&ring);
		}
		if (rc < 0) {	/* fatal: pvio-backd halts the ring */
			FZ_CHECK(rc == -EPROTO);
			FZ_CHECK(why || ring.halted != PVIO_RING_LIVE);
			break;
		}
	}
	return 0;
}
