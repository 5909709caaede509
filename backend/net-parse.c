// SPDX-License-Identifier: MIT
/*
 * netif tx: one packet's slot chain and extra-info slots taken from the
 * ring (each slot copied once, docs/protocol.md rule 1) and its sizes
 * checked (rule 4), as
 * Linux netback's xenvif_get_extras() and xenvif_count_requests(). Pure
 * but for the ring's memory: net-dataplane.c calls them for every packet,
 * fuzz/fuzz-netif-tx.c on a ring libFuzzer fills.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "net.h"

#define ETH_MIN		14

/*
 * Take one packet's slots. Return 1 (a packet in @p), 0 (ring empty), or
 * -EPROTO (fatal: the ring is halted by the caller).
 */
int net_tx_take(struct pvio_ring_back *tx, struct tx_pkt *p, const char **why)
{
	struct netif_tx_request s;
	int n;

	n = pvio_netif_tx_back_consume(tx, &p->slot[0], 1);
	if (n <= 0)
		return n;
	p->nslots = 1;
	p->nextra = 0;
	p->has_gso = false;
	if (p->slot[0].flags & NETTXF_extra_info) {
		struct netif_extra_info ex;

		do {
			n = pvio_netif_tx_back_consume(tx, &s, 1);
			if (n < 0)
				return n;
			if (n == 0 || p->nextra == 4) {
				*why = "missing or too many extra-info slots";
				return -EPROTO;
			}
			/* the extra-info overlays the slot: our copy of it */
			memcpy(&ex, &s, sizeof(ex));
			p->extra_ids[p->nextra++] = 0;
			if (ex.type == XEN_NETIF_EXTRA_TYPE_NONE ||
			    ex.type >= XEN_NETIF_EXTRA_TYPE_MAX) {
				*why = "bad extra-info type";
				return -EPROTO;
			}
			if (ex.type == XEN_NETIF_EXTRA_TYPE_GSO) {
				if (ex.u.gso.size == 0 ||
				    (ex.u.gso.type != XEN_NETIF_GSO_TYPE_TCPV4 &&
				     ex.u.gso.type != XEN_NETIF_GSO_TYPE_TCPV6)) {
					*why = "bad GSO extra-info";
					return -EPROTO;
				}
				p->gso = ex;
				p->has_gso = true;
			}
			/* multicast and hash extras carry nothing we use */
		} while (ex.flags & XEN_NETIF_EXTRA_FLAG_MORE);
	}
	while (p->slot[p->nslots - 1].flags & NETTXF_more_data) {
		if (p->nslots == NET_FATAL_SLOTS) {
			*why = "too many slots in a packet";
			return -EPROTO;
		}
		n = pvio_netif_tx_back_consume(tx, &p->slot[p->nslots], 1);
		if (n < 0)
			return n;
		if (n == 0) {
			*why = "a packet's slots were not all published";
			return -EPROTO;
		}
		p->nslots++;
	}
	return 1;
}

/*
 * Check sizes as netback's xenvif_count_requests() and then
 * xenvif_tx_build_gops(), in their order: a later slot crossing its page
 * is fatal; then a packet is dropped (its slots' sizes do not add up: the
 * "buggy frontends" of 64 KiB frames, too many slots, shorter than a
 * header); only a packet not dropped whose first slot crosses its page is
 * fatal. Return 0 (good, the first slot's own length in *first_len),
 * 1 + DROP_* (drop it), or -EPROTO.
 */
int net_tx_check(const struct tx_pkt *p, uint32_t *first_len,
		 const char **why)
{
	uint32_t remaining = p->slot[0].size;
	unsigned int i;
	int drop = -1;

	for (i = 1; i < p->nslots; i++) {
		const struct netif_tx_request *s = &p->slot[i];

		if (s->offset + (uint32_t)s->size > PVIO_PAGE_SIZE) {
			*why = "a slot crosses its page";
			return -EPROTO;
		}
		if (s->size > remaining)
			drop = DROP_MALFORMED;	/* "buggy frontends" */
		else
			remaining -= s->size;
	}
	if (drop >= 0)
		return 1 + drop;
	if (p->nslots > NET_MAX_SLOTS)
		return 1 + DROP_TOO_BIG;
	if (remaining < ETH_MIN)
		return 1 + DROP_MALFORMED;
	if (p->slot[0].offset + remaining > PVIO_PAGE_SIZE) {
		*why = "the first slot crosses its page";
		return -EPROTO;
	}
	*first_len = remaining;
	return 0;
}
