/* SPDX-License-Identifier: MIT */
/*
 * A mock netif backend for the netfront tests: a thread attached as dom0 to
 * a sim world that runs the backend half of the XenBus handshake as Linux
 * netback does (features, InitWait; rings and event channels at the
 * frontend's Connected, then Connected; Closing/Closed; InitWait again when
 * a closed frontend comes back as Initialising) and serves the rings with
 * grant copy: tx packets are copied out, checked as a strict netback checks
 * them and handed to the test; rx frames the test gives it are copied into
 * the posted buffers (waiting for buffers when there are not enough). It
 * can be told to misbehave. Also the engine of t-mocknetback (a switch).
 */
#ifndef PVIO_T_MOCKNET_H
#define PVIO_T_MOCKNET_H

#include <stdbool.h>
#include <stdint.h>

#include <pvio/netif.h>

#define T_NET_MAX_Q	8
#define T_NET_MAX_SLOTS	32

enum t_nevil {
	T_NEVIL_NONE = 0,
	T_NEVIL_TX_BAD_ID,	/* a tx response with id 0xffff */
	T_NEVIL_TX_INACTIVE_ID,	/* a tx response, id not in flight */
	T_NEVIL_TX_NULL,	/* a data slot answered NETIF_RSP_NULL */
	T_NEVIL_RX_BAD_OFFSET,	/* rx offset + size beyond the page */
	T_NEVIL_RX_BAD_SIZE,	/* rx status 5000 */
	T_NEVIL_RX_BAD_ID,	/* an rx response id not the request's */
	T_NEVIL_RX_OVERFLOW,	/* rx rsp_prod far beyond req_prod */
	T_NEVIL_RX_LONG_CHAIN,	/* more_data on 30 slots */
	T_NEVIL_RX_HALF,	/* publish the first half of a packet only */
	T_NEVIL_MAX,
};

/* A packet, either way. */
struct t_netpkt {
	unsigned int queue;
	uint32_t len;
	uint8_t *data;			/* malloc'd */
	struct pvio_net_offload off;
	/* tx layout as the frontend sent it */
	unsigned int slots;		/* data slots */
	unsigned int extras;
	uint16_t first_flags;
	uint16_t first_size;		/* the first slot's size field */
	uint16_t seg_off[T_NET_MAX_SLOTS];
	uint16_t seg_len[T_NET_MAX_SLOTS];
	struct t_netpkt *next;
};

struct t_mocknet;

struct t_mocknet_cfg {
	const char *spec;		/* "sim:DIR" */
	unsigned int fe;		/* frontend domain */
	unsigned int devid;
	const char *type;		/* backend kind; NULL: "vif" */
	bool no_rx_copy;		/* omit feature-rx-copy */
	bool sg, gso4, gso6, ipv6_csum;	/* features offered */
	bool split;			/* feature-split-event-channels */
	unsigned int max_queues;	/* multi-queue-max-queues if > 0 */
	unsigned int rx_offset;		/* rx data's offset in a page */
	bool dup_events;		/* write each state three times */
	/* Each tx packet goes here (from the mock's thread; the packet
	 * is freed after the call) instead of the queue of tx_pop. */
	void (*on_tx)(struct t_mocknet *m, struct t_netpkt *p, void *opaque);
	void *opaque;
	unsigned int rx_queue_max;	/* rx frames waiting; 0: unbounded */
	enum t_nevil evil;
	unsigned int evil_after;	/* packets served well first */
};

struct t_mocknet_stats {
	unsigned int connects, disconnects;
	unsigned int nr_queues;
	bool split;			/* the frontend wrote -tx and -rx */
	bool mq_key;			/* multi-queue-num-queues written */
	/* the frontend's keys */
	bool fe_rx_copy, fe_rx_notify, fe_sg, fe_gso4, fe_gso6;
	bool fe_ipv6_csum, fe_no_csum;
	uint64_t tx_packets, tx_slots, tx_gso;
	uint64_t rx_packets, rx_slots, rx_gso, rx_waits, rx_dropped;
	uint64_t notifies_sent;
	uint64_t missed_notify;		/* work found without an event */
	uint64_t errors;		/* what the frontend got wrong */
	char last_error[256];
};

/* Start the thread; returns when the backend has written its features
 * and reached InitWait. 0 or -errno. */
int t_mocknet_start(struct t_mocknet **out, const struct t_mocknet_cfg *cfg);
/* Stop the thread (unmaps; the backend's nodes stay). Accepts NULL. */
void t_mocknet_stop(struct t_mocknet *m);
void t_mocknet_stats(struct t_mocknet *m, struct t_mocknet_stats *st);
/* The backend's XenBus state; wait up to @ms for @st (0 or -ETIMEDOUT). */
int t_mocknet_state(struct t_mocknet *m);
int t_mocknet_wait_state(struct t_mocknet *m, int st, int ms);
/* The toolstack detaches: backend Closing (Closed on the frontend's
 * Closed). */
void t_mocknet_close(struct t_mocknet *m);
void t_mocknet_set_evil(struct t_mocknet *m, enum t_nevil evil,
			unsigned int after);
/* Give the frontend a frame on queue @q (copied). -ENOBUFS when
 * rx_queue_max frames wait already (dropped). */
int t_mocknet_rx_push(struct t_mocknet *m, unsigned int q, const void *data,
		      uint32_t len, const struct pvio_net_offload *off);
/* Queues of the current connection (0 when not connected). */
unsigned int t_mocknet_nr_queues(struct t_mocknet *m);
/* Frames given and not yet delivered. */
unsigned int t_mocknet_rx_pending(struct t_mocknet *m);
/* The next tx packet (wait up to @ms): 0 or -ETIMEDOUT. Free it with
 * t_netpkt_free(). */
int t_mocknet_tx_pop(struct t_mocknet *m, struct t_netpkt *p, int ms);
void t_netpkt_free(struct t_netpkt *p);

#endif
