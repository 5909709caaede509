/* SPDX-License-Identifier: MIT */
/*
 * netif packet helpers shared by the network backend and frontend: the
 * offload information a netif packet carries (NETTXF/NETRXF checksum flags
 * and a GSO extra-info slot) turned into the virtio-net header that a TAP
 * device with IFF_VNET_HDR reads and writes, and back.
 *
 * netif carries no checksum start/offset: for a packet whose checksum is
 * still to be computed the receiver finds the transport header itself, as
 * Linux netback does (skb_checksum_setup). The parser below does that for
 * TCP and UDP over IPv4 and IPv6 (extension headers skipped), with every
 * length checked against the frame.
 */
#ifndef PVIO_NETIF_H
#define PVIO_NETIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
/* linux/virtio_net.h is not C++ (a field is named "class"); only pointers
 * to the header are used here. */
struct virtio_net_hdr;
#else
#include <linux/virtio_net.h>
#endif

#include <pvio/platform.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What netif says about one packet's offloads. */
struct pvio_net_offload {
	bool csum_blank;	/* checksum to be filled in (partial) */
	bool data_validated;	/* checksum known to be good */
	uint8_t gso_type;	/* XEN_NETIF_GSO_TYPE_NONE / _TCPV4 / _TCPV6 */
	uint16_t gso_size;	/* MSS */
};

/* Where a frame's headers are. */
struct pvio_net_hdrs {
	uint16_t l3_off;	/* after Ethernet (and one VLAN tag) */
	uint16_t l4_off;
	uint16_t l4_hdr_len;	/* TCP: with options */
	uint32_t l4_len;	/* transport header + payload, per the IP
				 * header (Ethernet padding excluded) */
	uint8_t l4_proto;	/* IPPROTO_TCP, IPPROTO_UDP, or other */
	bool ipv6;
};

/*
 * Parse an Ethernet frame's IPv4/IPv6 and TCP/UDP headers.
 * Return 0, -EINVAL for a truncated or malformed frame, -EPROTONOSUPPORT
 * for a protocol we do not offload (the caller then computes nothing).
 */
PVIO_API int pvio_net_parse(const void *frame, size_t len,
			    struct pvio_net_hdrs *h);
/* The same for a frame of @total bytes whose first @len bytes (holding
 * every header) are at @frame and the rest elsewhere (scatter-gather).
 * Nothing past @len is read. */
PVIO_API int pvio_net_parse_head(const void *frame, size_t len, size_t total,
				 struct pvio_net_hdrs *h);

/*
 * netif -> virtio-net header, for a frame going into a TAP.
 * Return 0, or -EINVAL if the offload request does not fit the frame (a
 * GSO type on a frame that is not TCP of that IP version, a checksum
 * request on a frame without TCP/UDP): the caller drops the packet.
 */
PVIO_API int pvio_net_to_vnet(const void *frame, size_t len,
			      const struct pvio_net_offload *o,
			      struct virtio_net_hdr *vh);
/* For a scattered frame: see pvio_net_parse_head(). */
PVIO_API int pvio_net_to_vnet_head(const void *frame, size_t len, size_t total,
				   const struct pvio_net_offload *o,
				   struct virtio_net_hdr *vh);

/*
 * virtio-net header -> netif, for a frame read from a TAP. Return 0, or
 * -EOPNOTSUPP for a GSO type netif cannot carry (UDP, ECN) or a checksum
 * position that is not the TCP/UDP one.
 */
PVIO_API int pvio_net_from_vnet(const struct virtio_net_hdr *vh,
				const void *frame, size_t len,
				struct pvio_net_offload *o);
/* For a scattered frame: see pvio_net_parse_head(). */
PVIO_API int pvio_net_from_vnet_head(const struct virtio_net_hdr *vh,
				     const void *frame, size_t len,
				     size_t total, struct pvio_net_offload *o);

/* The TAP offloads that pvio_net_from_vnet() can carry (TUNSETOFFLOAD). */
#define PVIO_NET_TUN_OFFLOADS	0x7u	/* TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 */

/* Compute and store a frame's TCP/UDP checksum in software (a peer
 * without checksum offload). Return 0 or -EINVAL. */
PVIO_API int pvio_net_csum_fill(void *frame, size_t len);

#ifdef __cplusplus
}
#endif
#endif
