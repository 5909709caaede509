// SPDX-License-Identifier: MIT
/*
 * The netif header and offload parser (ring/netif.c) on frames a guest
 * makes up: pvio_net_parse_head() over the first @len bytes of a frame of
 * @total, netif offloads -> virtio-net header (tx: guest -> TAP), virtio-
 * net header -> netif offloads (rx: the frame comes from the TAP, but
 * the guest on the bridge wrote it), and the checksum fill-in. Each frame
 * is its own allocation of exactly @len bytes, so that a read past what
 * was handed over is an ASan report, not a silent read.
 *
 * Input: a flag byte, netif offloads, a virtio-net header, a claimed
 * extra length (the rest of a scattered frame), then the frame.
 */
#include "config.h"

#include <netinet/in.h>

#include <xen/xen.h>
#include <xen/io/netif.h>

#include <pvio/netif.h>

#include "fuzz.h"

static void check_hdrs(const struct pvio_net_hdrs *h, size_t len,
		       size_t total)
{
	FZ_CHECK(h->l3_off == 14 || h->l3_off == 18);
	FZ_CHECK(h->l4_off > h->l3_off && h->l4_off <= total);
	FZ_CHECK(h->l4_off + (size_t)h->l4_len <= total);
	FZ_CHECK(h->l4_hdr_len <= h->l4_len);
	FZ_CHECK(h->l4_proto == IPPROTO_TCP || h->l4_proto == IPPROTO_UDP);
	/* the TCP header length was read from the bytes we had */
	if (h->l4_proto == IPPROTO_TCP)
		FZ_CHECK(h->l4_off + 20u <= len && h->l4_hdr_len >= 20);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	struct pvio_net_offload o = { 0 }, back;
	struct virtio_net_hdr vh, out;
	struct pvio_net_hdrs h;
	size_t len, total;
	uint8_t flags, *frame;
	int rc;

	flags = fz_u8(&f);
	o.csum_blank = flags & 1;
	o.data_validated = flags & 2;
	o.gso_type = fz_u8(&f) % 4;
	o.gso_size = fz_u16(&f);
	fz_bytes(&f, &vh, sizeof(vh));
	total = fz_u16(&f) & 0x7ff;	/* scattered bytes beyond the head */
	len = f.left;
	frame = malloc(len ? len : 1);
	if (!frame)
		abort();
	fz_bytes(&f, frame, len);
	total += len;

	rc = pvio_net_parse_head(frame, len, total, &h);
	if (!rc)
		check_hdrs(&h, len, total);
	rc = pvio_net_to_vnet_head(frame, len, total, &o, &out);
	if (!rc && (out.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)) {
		FZ_CHECK(o.csum_blank);
		FZ_CHECK(out.csum_start + out.csum_offset + 2u <= total);
		if (out.gso_type != VIRTIO_NET_HDR_GSO_NONE)
			FZ_CHECK(out.gso_size && out.hdr_len <= total);
		/* and back: what we hand the TAP, netif takes again */
		FZ_CHECK(pvio_net_from_vnet_head(&out, frame, len, total,
						 &back) == 0);
		FZ_CHECK(back.csum_blank && back.gso_size == out.gso_size);
	}
	rc = pvio_net_from_vnet_head(&vh, frame, len, total, &back);
	if (!rc && back.gso_type != XEN_NETIF_GSO_TYPE_NONE)
		FZ_CHECK(back.csum_blank && back.gso_size);
	/* the whole frame here: fill in the checksum (rx path) */
	if (!(flags & 4) && pvio_net_csum_fill(frame, len) == 0)
		FZ_CHECK(pvio_net_parse(frame, len, &h) == 0);
	free(frame);
	return 0;
}
