/* SPDX-License-Identifier: MIT */
/*
 * The vif backend: net-xenbus.c (control path: TAP device, features,
 * negotiation), net-dataplane.c (tx/rx rings <-> TAP through io_uring),
 * tap.c (the TAP device). They meet at net_queue_create()/net_queue_free().
 */
#ifndef PVIO_BACKEND_NET_H
#define PVIO_BACKEND_NET_H

#include <linux/virtio_net.h>

#include <pvio/netif.h>

#include "journal.h"
#include "private.h"

#define NET_VNET_HDR	sizeof(struct virtio_net_hdr)
#define NET_BUF_SIZE	(NET_VNET_HDR + 65536)	/* one packet */
#define NET_TX_BUFS	128	/* packets on their way into the TAP */
#define NET_RX_BUFS	64	/* TAP reads posted: also the rx queue bound */
#define NET_MAX_SLOTS	XEN_NETIF_NR_SLOTS_MIN	/* 18: Linux netfront's max */
#define NET_FATAL_SLOTS	20	/* netback's fatal_skb_slots */
#define NET_RX_DRAIN_NS	10000000000ull	/* XSA-392: 10 s, 30 ms w/o rx-notify */
#define NET_NOSG_MTU	1500	/* ETH_DATA_LEN: a frontend without feature-sg */

/* drops[] of struct dp_stats */
enum { DROP_MALFORMED, DROP_GRANT, DROP_RX_NOBUF, DROP_RX_STALL, DROP_TAP,
       DROP_TOO_BIG };

#define OVS_MAX_TRUNKS	16

/* A bridge node: BR[.VLAN][:TRUNK...] (Xen's vif-openvswitch syntax). */
struct ovs_bridge_spec {
	char name[16];
	int tag;			/* -1: none */
	uint16_t trunks[OVS_MAX_TRUNKS];
	unsigned int nr_trunks;
};

struct vif {
	char ifname[16];		/* vif<dom>.<dev>, or the vifname node */
	int tap0;			/* queue 0's fd, held for the device's life */
	uint8_t mac[6];			/* the guest's */
	char bridge[64];		/* the bridge node, as written */
	bool ovs;			/* bridge: an Open vSwitch port */
	void *ovs_job;			/* OVSDB asked (net-xenbus.c) */
	/* What we write into the TAP carries no offloads: OVS's userspace
	 * datapath reads it through a packet socket without virtio-net
	 * headers, so a checksum left to it would go out unfinished and a
	 * GSO packet would not fit its buffers (no GSO offered, checksums
	 * finished here, as the OVS FAQ's "tx off" for such ports) */
	bool tap_no_offload;
	struct ovs_bridge_spec br;	/* the bridge node, parsed */
	char script[256];		/* the toolstack's hotplug script, if any */
	bool hotplug;			/* the script bridges/routes the TAP */
	bool hotplug_ok;		/* it wrote hotplug-status=connected */
	uint64_t hotplug_since_ns;
	unsigned int mtu;		/* 0: the kernel's default */
	unsigned int nr_queues;
	/* negotiated */
	bool fe_sg, fe_gso4, fe_gso6, fe_csum, fe_ipv6_csum, fe_rx_notify;
	bool split;
	unsigned int offloads;		/* TUNSETOFFLOAD */
	/* `rate` = "BYTES,USECS" (netback's credit scheduler): each queue
	 * may send BYTES per USECS from the guest; 0 bytes: no limit. Set
	 * by the main thread, read by the workers. */
	uint64_t credit_bytes;
	uint64_t credit_usec;
};

struct net_buf {
	struct dp_tag tag;		/* its io_uring op */
	struct net_buf *next;
	char *data;			/* NET_BUF_SIZE bytes */
	uint32_t len;			/* vnet header + frame */
	uint64_t since_ns;		/* rx: waiting for guest buffers since */
	uint32_t gidx;			/* first copy segment */
	uint16_t nsegs;			/* copy segments */
	bool bad;
	bool reading;			/* rx: a read posted on the TAP */
	bool cancelling;		/* ... and its cancel sent (quiesce) */
};

/* One packet's tx slots while it is assembled. */
struct tx_pkt {
	struct netif_tx_request slot[NET_FATAL_SLOTS];
	uint16_t nslots;		/* data slots */
	uint16_t extra_ids[4];		/* extra-info slots, answered NULL */
	uint16_t nextra;
	bool has_gso;
	struct netif_extra_info gso;
	uint32_t cons;			/* ring index of its first slot */
};

struct net_queue {
	struct dp_queue dq;		/* first */
	struct vif *vif;
	unsigned int domid;
	struct pvio_ring_back tx, rx;
	void *tx_mem, *rx_mem;
	int tap_fd;
	int tap_slot;			/* registered file of the ring, or -1 */
	bool own_fd;			/* not queue 0's fd */

	char *bufs;			/* NET_TX_BUFS + NET_RX_BUFS buffers */
	struct net_buf txb[NET_TX_BUFS];
	struct net_buf rxb[NET_RX_BUFS];
	struct dp_tag cancel_tag;	/* the quiescing cancel's */
	struct net_buf *tx_free;
	uint32_t nr_tx_free;
	struct net_buf *rx_ready;	/* read from the TAP, for the guest */
	struct net_buf **rx_ready_tail;
	uint32_t nr_rx_ready;
	uint32_t rx_reading;		/* reads in flight */
	uint32_t tx_writing;		/* writes in flight */
	uint32_t rx_need;		/* slots the head packet waits for */
	uint64_t drain_ns;
	bool tx_dirty, rx_dirty;
	bool reads_posted;
	bool quiesced;
	/* in-flight records (crash recovery), or NULL */
	struct jrnl *jtx, *jrx;
	bool kick_guest;		/* re-attached: notify once */
	/* tx credit, as xen-netback's (tx_credit_exceeded) */
	uint64_t credit_bytes, credit_usec;	/* this queue's copy */
	uint64_t remaining_credit;
	uint64_t credit_window_ns;		/* the window's start */
	uint64_t credit_timer_ns;		/* netback's credit_timeout */
	bool has_held;			/* a packet taken, waiting for credit */
	struct tx_pkt held;
};

static inline struct net_queue *NQ(struct dp_queue *q)
{
	return (struct net_queue *)q;
}

int net_queue_create(struct device *d, struct vif *v, struct worker *w,
		     unsigned int index, pvio_gref_t tx_ref, pvio_gref_t rx_ref,
		     pvio_port_t port_tx, pvio_port_t port_rx, bool reattach,
		     struct net_queue **out);
void net_queue_free(struct net_queue *q);

/*
 * net-parse.c. net_tx_take(): take one packet's slots from @tx into @p.
 * Return 1 (a packet), 0 (ring empty) or -EPROTO with *why (fatal: the
 * caller halts the ring). net_tx_check(): its sizes; 0 (good, the first
 * slot's own length in *first_len), 1 + DROP_* (drop it), or -EPROTO.
 */
int net_tx_take(struct pvio_ring_back *tx, struct tx_pkt *p, const char **why);
int net_tx_check(const struct tx_pkt *p, uint32_t *first_len,
		 const char **why);

/* tap.c */
int tap_open(const char *name, bool multi_queue, bool persist, int *fd);
void tap_remove(int fd);
int tap_setup(int fd, const char *name, const char *bridge);
int tap_set_offloads(int fd, unsigned int offloads);
int tap_set_carrier(int fd, bool on);
void tap_unbridge(const char *name, const char *bridge);
int tap_set_mtu(const char *name, unsigned int mtu);
int tap_get_mtu(const char *name, unsigned int *mtu);
int tap_set_alias(const char *name, const char *alias);
int tap_bridge_add(const char *name, const char *bridge);
int tap_leave_other_bridge(const char *name, const char *bridge);

/* backend/ovs.c: a vif's port on an Open vSwitch bridge, through OVSDB */
struct ovs_port {
	const char *name;		/* the TAP: port and interface */
	struct ovs_bridge_spec br;
	const char *mac;		/* external_ids:attached-mac, or NULL */
	const char *vm_name;		/* external_ids:xen-vm-name, or NULL */
	bool userspace;			/* out: the bridge's datapath_type=netdev */
};
int ovs_parse_bridge(const char *spec, struct ovs_bridge_spec *o,
		     char *err, size_t len);
int ovs_add_port(const char *db, struct ovs_port *p, char *err,
		 size_t len);
int ovs_del_port(const char *db, const char *name, char *err, size_t len);
/* Is OVS bridge @bridge on the userspace datapath? -ENODEV: no such one */
int ovs_bridge_userspace(const char *db, const char *bridge, bool *userspace,
			 char *err, size_t len);

#endif
