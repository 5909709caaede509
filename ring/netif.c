// SPDX-License-Identifier: MIT
/* netif offloads <-> virtio-net headers (include/pvio/netif.h). */
#include "config.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/netif.h>

#include <pvio/netif.h>

#define NET_ETH_HLEN	14
#define NET_ETH_P_IP	0x0800
#define NET_ETH_P_IPV6	0x86dd
#define NET_ETH_P_8021Q	0x8100

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

int pvio_net_parse(const void *frame, size_t len, struct pvio_net_hdrs *h)
{
	return pvio_net_parse_head(frame, len, len, h);
}

/* Reads stay within @len (the bytes at @frame); lengths the headers claim
 * are checked against @total (the whole frame, maybe scattered further). */
int pvio_net_parse_head(const void *frame, size_t len, size_t total,
			struct pvio_net_hdrs *h)
{
	const uint8_t *f = frame;
	size_t off = NET_ETH_HLEN, end;
	uint16_t proto;
	uint8_t next;

	memset(h, 0, sizeof(*h));
	if (len < NET_ETH_HLEN)
		return -EINVAL;
	proto = be16(f + 12);
	if (proto == NET_ETH_P_8021Q) {
		if (len < NET_ETH_HLEN + 4)
			return -EINVAL;
		proto = be16(f + 16);
		off += 4;
	}
	h->l3_off = (uint16_t)off;
	if (proto == NET_ETH_P_IP) {
		size_t ihl;

		if (len < off + 20 || (f[off] >> 4) != 4)
			return -EINVAL;
		ihl = (size_t)(f[off] & 0xf) * 4;
		if (ihl < 20 || len < off + ihl)
			return -EINVAL;
		/* fragments carry no transport header to fix up */
		if (be16(f + off + 6) & 0x3fff)
			return -EPROTONOSUPPORT;
		end = off + be16(f + off + 2);
		if (end > total || end < off + ihl)
			return -EINVAL;
		next = f[off + 9];
		off += ihl;
	} else if (proto == NET_ETH_P_IPV6) {
		unsigned int hops = 0;

		if (len < off + 40 || (f[off] >> 4) != 6)
			return -EINVAL;
		h->ipv6 = true;
		next = f[off + 6];
		end = off + 40 + be16(f + off + 4);
		if (end > total)
			return -EINVAL;
		off += 40;
		/* hop-by-hop, routing, destination options */
		while (next == 0 || next == 43 || next == 60) {
			size_t elen;

			if (++hops > 8 || len < off + 8)
				return -EINVAL;
			elen = ((size_t)f[off + 1] + 1) * 8;
			next = f[off];
			off += elen;
		}
		if (next == 44)		/* a fragment */
			return -EPROTONOSUPPORT;
	} else {
		return -EPROTONOSUPPORT;
	}
	if (off > 0xffff || off > end)
		return -EINVAL;
	h->l4_off = (uint16_t)off;
	h->l4_proto = next;
	h->l4_len = (uint32_t)(end - off);
	if (next == IPPROTO_TCP) {
		size_t thl;

		if (end < off + 20 || len < off + 20)
			return -EINVAL;
		thl = (size_t)(f[off + 12] >> 4) * 4;
		if (thl < 20 || end < off + thl)
			return -EINVAL;
		h->l4_hdr_len = (uint16_t)thl;
	} else if (next == IPPROTO_UDP) {
		if (end < off + 8)
			return -EINVAL;
		h->l4_hdr_len = 8;
	} else {
		return -EPROTONOSUPPORT;
	}
	return 0;
}

static uint16_t csum_offset_of(uint8_t proto)
{
	return proto == IPPROTO_TCP ? 16 : 6;	/* offsetof(tcphdr/udphdr, check) */
}

int pvio_net_to_vnet(const void *frame, size_t len,
		     const struct pvio_net_offload *o, struct virtio_net_hdr *vh)
{
	return pvio_net_to_vnet_head(frame, len, len, o, vh);
}

int pvio_net_to_vnet_head(const void *frame, size_t len, size_t total,
			  const struct pvio_net_offload *o,
			  struct virtio_net_hdr *vh)
{
	struct pvio_net_hdrs h;
	int rc;

	memset(vh, 0, sizeof(*vh));
	if (!o->csum_blank && o->gso_type == XEN_NETIF_GSO_TYPE_NONE) {
		if (o->data_validated)
			vh->flags = VIRTIO_NET_HDR_F_DATA_VALID;
		return 0;
	}
	rc = pvio_net_parse_head(frame, len, total, &h);
	if (rc)
		return -EINVAL;
	if (o->csum_blank) {
		vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		vh->csum_start = h.l4_off;
		vh->csum_offset = csum_offset_of(h.l4_proto);
	} else if (o->data_validated) {
		vh->flags = VIRTIO_NET_HDR_F_DATA_VALID;
	}
	switch (o->gso_type) {
	case XEN_NETIF_GSO_TYPE_NONE:
		vh->gso_type = VIRTIO_NET_HDR_GSO_NONE;
		return 0;
	case XEN_NETIF_GSO_TYPE_TCPV4:
	case XEN_NETIF_GSO_TYPE_TCPV6:
		if (h.l4_proto != IPPROTO_TCP ||
		    h.ipv6 != (o->gso_type == XEN_NETIF_GSO_TYPE_TCPV6) ||
		    o->gso_size == 0 || !o->csum_blank)
			return -EINVAL;
		vh->gso_type = h.ipv6 ? VIRTIO_NET_HDR_GSO_TCPV6
				      : VIRTIO_NET_HDR_GSO_TCPV4;
		vh->gso_size = o->gso_size;
		vh->hdr_len = (uint16_t)(h.l4_off + h.l4_hdr_len);
		return 0;
	default:
		return -EINVAL;
	}
}

int pvio_net_from_vnet(const struct virtio_net_hdr *vh, const void *frame,
		       size_t len, struct pvio_net_offload *o)
{
	return pvio_net_from_vnet_head(vh, frame, len, len, o);
}

int pvio_net_from_vnet_head(const struct virtio_net_hdr *vh,
			    const void *frame, size_t len, size_t total,
			    struct pvio_net_offload *o)
{
	memset(o, 0, sizeof(*o));
	if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		struct pvio_net_hdrs h;

		/* netif can only say "the usual place": check it is */
		if (pvio_net_parse_head(frame, len, total, &h) ||
		    vh->csum_start != h.l4_off ||
		    vh->csum_offset != csum_offset_of(h.l4_proto))
			return -EOPNOTSUPP;
		o->csum_blank = true;
		o->data_validated = true;	/* as Linux netback */
	} else if (vh->flags & VIRTIO_NET_HDR_F_DATA_VALID) {
		o->data_validated = true;
	}
	switch (vh->gso_type) {
	case VIRTIO_NET_HDR_GSO_NONE:
		return 0;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		o->gso_type = XEN_NETIF_GSO_TYPE_TCPV4;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		o->gso_type = XEN_NETIF_GSO_TYPE_TCPV6;
		break;
	default:	/* UDP, ECN: not in netif */
		return -EOPNOTSUPP;
	}
	if (!o->csum_blank || vh->gso_size == 0)
		return -EOPNOTSUPP;
	o->gso_size = vh->gso_size;
	return 0;
}

/* RFC 1071, over a byte range, folded by the caller. */
static uint32_t sum16(const uint8_t *p, size_t n, uint32_t s)
{
	while (n > 1) {
		s += (uint32_t)(p[0] << 8 | p[1]);
		p += 2;
		n -= 2;
	}
	if (n)
		s += (uint32_t)p[0] << 8;
	return s;
}

int pvio_net_csum_fill(void *frame, size_t len)
{
	struct pvio_net_hdrs h;
	uint8_t *f = frame, *l4;
	uint32_t s = 0;
	size_t l4len;
	uint16_t c, off;

	if (pvio_net_parse(frame, len, &h))
		return -EINVAL;
	l4 = f + h.l4_off;
	l4len = h.l4_len;
	off = csum_offset_of(h.l4_proto);
	/* pseudo header */
	if (h.ipv6)
		s = sum16(f + h.l3_off + 8, 32, s);
	else
		s = sum16(f + h.l3_off + 12, 8, s);
	s += h.l4_proto;
	s += (uint32_t)l4len;
	l4[off] = l4[off + 1] = 0;
	s = sum16(l4, l4len, s);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	c = (uint16_t)~s;
	if (c == 0 && h.l4_proto == IPPROTO_UDP)
		c = 0xffff;
	l4[off] = (uint8_t)(c >> 8);
	l4[off + 1] = (uint8_t)c;
	return 0;
}
