/* SPDX-License-Identifier: MIT */
/*
 * pvio netfront: a userspace Xen PV network frontend. It speaks the protocol
 * of Linux's xen-netfront (xen/io/netif.h) to any netif backend: Linux
 * xen-netback, pvio-backd, on Xen or in a sim world.
 *
 *  - pvio_netfront_open() runs the XenBus handshake for one vif of this
 *    domain as Linux does (Initialising, then Connected as soon as the
 *    backend is in InitWait) and returns with the rings live. The backend
 *    reaching Connected is the link state (pvio_netfront_link_up()).
 *    close() runs Closing -> Closed and gives every grant back.
 *  - Each queue is one tx ring, one rx ring (a page each, 256 slots) and one
 *    or two event channels, used by one thread at a time with no lock,
 *    malloc or logging on its path: send a batch of frames, receive a
 *    batch, arm, sleep on the queue's fd. Each batch is published once and
 *    notifies the backend at most once, and only if it asked.
 *  - Data goes through pages granted once: 256 tx pages (read-only to the
 *    backend; tx slot id i owns page i) and 256 rx pages (rx ring position
 *    i owns page i % 256) per queue. Frames are copied in and out; no grant
 *    operation happens per packet.
 *  - The backend is not trusted. A response for a request never made or no
 *    longer pending, an rx slot whose offset + size leaves its page, a slot
 *    chain longer than the protocol allows, or a producer index that claims
 *    more responses than requests halts the device (never the process):
 *    every queue call returns -EPROTO and pvio_netfront_error() says why.
 *
 * Offloads: struct pvio_net_offload (pvio/netif.h) is netif's view of one
 * packet; pvio_net_to_vnet()/pvio_net_from_vnet() turn it into a TAP's
 * virtio-net header and back. What each direction may carry is negotiated
 * (pvio_netfront_info().features).
 *
 * Threads: the control path (the backend's state) runs from
 * pvio_xs_dispatch() on the caller's pvio_xs, or from a library thread with
 * PVIO_NETFRONT_F_THREAD. Queues are independent. Everything returns 0 (or
 * a count) or -errno; nothing prints.
 */
#ifndef PVIO_NETFRONT_H
#define PVIO_NETFRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <pvio/netif.h>
#include <pvio/platform.h>
#include <pvio/xenbus.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pvio_netfront;
struct pvio_netfront_queue;

#define PVIO_NETFRONT_MAX_QUEUES	8u
/* A sent frame: the first tx slot's size field is 16 bits
 * (XEN_NETIF_MAX_TX_SIZE). */
#define PVIO_NETFRONT_MAX_TX_FRAME	65535u
/* A received frame: at most 19 slots of a page (Linux netfront's limit).
 * A receive buffer of this size is never too small. */
#define PVIO_NETFRONT_MAX_RX_FRAME	(19u * 4096u)
#define PVIO_NETFRONT_MIN_FRAME		14u	/* Ethernet header */
/* a roomy error buffer */
#define PVIO_NETFRONT_ERR_MAX		512u

/* Something the application may want to act on (opts.event). */
enum pvio_netfront_event {
	/* The backend's state moved into or out of Connected: read
	 * pvio_netfront_link_up() (a carrier). */
	PVIO_NETFRONT_EV_LINK = 1,
	/*
	 * The backend went Closing/Closed (or its directory vanished): we
	 * went Closed too (as Linux netfront). Frames already received can
	 * still be taken; after that each queue call returns -ENOTCONN and
	 * every queue fd is readable. Call pvio_netfront_close().
	 */
	PVIO_NETFRONT_EV_DEAD = 2,
};

/*
 * Called from the thread running the control path (pvio_xs_dispatch() or
 * the library thread), never from a queue call; and once (EV_LINK) from
 * the end of pvio_netfront_open() itself when the backend reached Connected
 * while it ran. Must not call pvio_netfront_close().
 */
typedef void (*pvio_netfront_event_fn)(struct pvio_netfront *dev,
				       enum pvio_netfront_event ev,
				       void *opaque);

/* open() flags */
enum {
	/*
	 * Run a control thread that dispatches the watch events of the
	 * pvio_xs given to open() (all of them, the caller's own included)
	 * until close(). Without it the caller must call pvio_xs_dispatch()
	 * whenever pvio_xs_fd() is readable, or the device never learns of
	 * the backend's Connected (link) or its closing.
	 */
	PVIO_NETFRONT_F_THREAD = 1u << 0,
	/* One event channel per queue even if the backend offers
	 * feature-split-event-channels. */
	PVIO_NETFRONT_F_NO_SPLIT = 1u << 1,
	/* Do not write feature-sg: one slot per frame both ways (MTU at
	 * most 1500), hence no GSO either. */
	PVIO_NETFRONT_F_NO_SG = 1u << 2,
	/* Do not write feature-gso-tcpv4/6 and send no GSO frames. */
	PVIO_NETFRONT_F_NO_GSO = 1u << 3,
	/* No checksum offload either way: write feature-no-csum-offload=1
	 * (the backend fills checksums before sending to us), no
	 * feature-ipv6-csum-offload, and send() refuses csum_blank. Implies
	 * NO_GSO. */
	PVIO_NETFRONT_F_NO_CSUM = 1u << 4,
};

/* open() options; zero (or a NULL pointer) means the default for each. */
struct pvio_netfront_opts {
	/* Queues to ask for: 1..PVIO_NETFRONT_MAX_QUEUES, at most the
	 * backend's multi-queue-max-queues. Default 1. */
	unsigned int max_queues;
	/* Each handshake wait (open: the backend's InitWait; close: its
	 * Closing and Closed; a stale session's reset). Default 10000 ms. */
	unsigned int timeout_ms;
	unsigned int flags;		/* PVIO_NETFRONT_F_* */
	pvio_netfront_event_fn event;	/* may be NULL */
	void *opaque;
};

/**
 * pvio_netfront_open - connect to vif @devid of this domain
 * @out:    the device, on success
 * @p:      this domain's platform handle; it must outlive the device. Each
 *          queue opens a private handle on the same platform (its own
 *          event-channel fd), through which its rings and pools are
 *          granted.
 * @x:      this domain's xenstore connection; it must outlive the device
 * @devid:  the directory /local/domain/<self>/device/vif/<devid> the
 *          toolstack made (with backend, backend-id, state and mac)
 * @opts:   NULL for the defaults
 * @err:    if not NULL, a one-line reason on failure (@errlen bytes)
 *
 * As xen-netfront: an earlier process's session is closed first (Closing,
 * Closed, each waiting for the backend), then Initialising; at the
 * backend's InitWait, which must offer feature-rx-copy, the rings, pools
 * and event channels (split when offered and not refused) are made,
 * published in one transaction with request-rx-copy, feature-rx-notify and
 * the features the options allow (multi-queue-num-queues and queue-N/ when
 * more than one queue is used), rx buffers posted, and the state goes
 * Connected. The `mac` node is parsed strictly. Duplicate watch events and
 * a missing backend state (read as Closed) are harmless.
 *
 * Runs pvio_xs_dispatch(@x) while it waits: callbacks of the caller's
 * other watches on @x may run from this call.
 *
 * Memory: each queue grants 2 + 512 pages (2 MiB) once. (On Xen, gntalloc's
 * `limit` module parameter, 1024 by default, caps the pages a process may
 * grant: raise it for more than one queue.)
 *
 * Return: 0; -ENODEV (no such vif, the backend does not offer
 * feature-rx-copy, or it closed during the handshake); -ETIMEDOUT (the
 * backend did not move in time); -EINVAL (bad options, or unusable values
 * such as a malformed mac: the device is failed in xenstore, as Linux
 * does); -ENOMEM; other -errno from the platform or xenstore.
 */
PVIO_API int pvio_netfront_open(struct pvio_netfront **out,
				struct pvio_platform *p, struct pvio_xs *x,
				unsigned int devid,
				const struct pvio_netfront_opts *opts,
				char *err, size_t errlen);

/**
 * pvio_netfront_close - disconnect and free the device
 *
 * No queue may be in use and no other thread may run pvio_xs_dispatch()
 * on the device's pvio_xs during the call. Frames in flight are abandoned.
 * A device halted by a protocol violation writes <dir>/error first (as
 * xenbus_dev_fatal). Runs Closing -> Closed (waiting up to the handshake
 * timeout for the backend each time), then ends the grants and closes the
 * event channels and queue handles. Accepts NULL.
 *
 * Return: 0; -ETIMEDOUT if the backend did not follow (everything is
 * released anyway).
 */
PVIO_API int pvio_netfront_close(struct pvio_netfront *dev);

/* pvio_netfront_info() features: what each direction may carry. */
enum {
	/* Frames of several slots, both ways (both sides: feature-sg). */
	PVIO_NETFRONT_FEAT_SG = 1u << 0,
	/* send(): csum_blank on IPv4 TCP/UDP (Linux netback always accepts
	 * it; off only with F_NO_CSUM). */
	PVIO_NETFRONT_FEAT_TX_CSUM = 1u << 1,
	/* send(): csum_blank on IPv6 too (backend feature-ipv6-csum-offload).
	 * The library does not parse frames: without this flag the caller
	 * must not send a csum_blank IPv6 frame (fill it in software with
	 * pvio_net_csum_fill()). */
	PVIO_NETFRONT_FEAT_TX_CSUM_IPV6 = 1u << 2,
	/* send(): GSO of that type (backend feature-gso-tcpv4/6, and SG;
	 * TCPV6 also needs TX_CSUM_IPV6). */
	PVIO_NETFRONT_FEAT_TX_GSO_TCPV4 = 1u << 3,
	PVIO_NETFRONT_FEAT_TX_GSO_TCPV6 = 1u << 4,
	/* recv(): frames may come csum_blank (we did not refuse it). */
	PVIO_NETFRONT_FEAT_RX_CSUM = 1u << 5,
	/* recv(): frames may come with GSO of that type (we asked). */
	PVIO_NETFRONT_FEAT_RX_GSO_TCPV4 = 1u << 6,
	PVIO_NETFRONT_FEAT_RX_GSO_TCPV6 = 1u << 7,
	/* Separate tx and rx event channels per queue. */
	PVIO_NETFRONT_FEAT_SPLIT_EVTCHN = 1u << 8,
};

struct pvio_netfront_info {
	uint8_t mac[6];			/* from our `mac` node */
	unsigned int mtu;		/* `mtu` or 1500; <= 1500 without SG */
	uint32_t features;		/* PVIO_NETFRONT_FEAT_* */
	unsigned int nr_queues;
	unsigned int tx_ring_size;	/* slots per ring: 256 */
	unsigned int rx_ring_size;
	unsigned int devid;
	unsigned int backend_id;
	char backend[PVIO_XS_PATH_MAX];	/* the backend's directory */
};

/* Fixed at open(). */
PVIO_API void pvio_netfront_info(const struct pvio_netfront *dev,
				 struct pvio_netfront_info *info);
/* The backend's state is Connected (a carrier). Any thread. */
PVIO_API bool pvio_netfront_link_up(const struct pvio_netfront *dev);
/* 0 while usable; -ENOTCONN (the backend closed) or -EPROTO (it broke the
 * protocol) once dead. Any thread. */
PVIO_API int pvio_netfront_dead(const struct pvio_netfront *dev);
/* Why it died, or "". Any thread; stable once dead. */
PVIO_API const char *pvio_netfront_error(const struct pvio_netfront *dev);

/* Queue @idx (< nr_queues), or NULL. */
PVIO_API struct pvio_netfront_queue *
pvio_netfront_queue(struct pvio_netfront *dev, unsigned int idx);

/* ---- the hot path: one thread per queue at a time ------------------------ */

/* One frame of a batch. */
struct pvio_netfront_frame {
	/* send: the Ethernet frame (not modified); recv: the caller's
	 * buffer of @size bytes */
	void *data;
	/* send: the frame's length; recv (out): the frame's length */
	uint32_t len;
	/* recv: the buffer's size (a frame that does not fit is dropped
	 * and counted); ignored by send */
	uint32_t size;
	/* send: what the frame asks of the backend; recv (out): what the
	 * backend said about it */
	struct pvio_net_offload off;
};

/**
 * pvio_netfront_send - put a batch of frames on the tx ring
 *
 * Reaps tx responses first (their slots and pages become free), copies
 * each frame into pool pages, lays it out as Linux netfront does (first
 * slot: total size, NETTXF_csum_blank|data_validated or data_validated
 * from @f->off; NETTXF_extra_info and a GSO extra slot when gso_type is
 * set; NETTXF_more_data chaining up to 16 page-sized slots), then
 * publishes the batch once and notifies at most once (only if the backend
 * asked). A frame must be 14..65535 bytes, fit one page without SG, and
 * only ask for negotiated offloads (a GSO frame also needs csum_blank and
 * gso_size > 0).
 *
 * Return: frames queued, from the start of @f (sendmmsg's rule: the batch
 * stops at the first frame that cannot go: no room, or invalid); if that
 * is the first frame: -EAGAIN (ring or pool full: arm with
 * PVIO_NETFRONT_ARM_TX and wait), -EINVAL (bad length or offload),
 * -EMSGSIZE (needs more slots than allowed); -EPROTO or -ENOTCONN once
 * dead.
 */
PVIO_API int pvio_netfront_send(struct pvio_netfront_queue *q,
				const struct pvio_netfront_frame *f,
				unsigned int n);

/**
 * pvio_netfront_recv - take up to @n received frames
 *
 * Copies each complete packet (its slots chained by NETRXF_more_data, a
 * GSO extra slot after the first) into the next caller buffer and sets
 * len and off (csum_blank, data_validated, gso_type, gso_size). A packet
 * whose slot the backend failed (negative status), with an unusable GSO
 * extra, or larger than the buffer is dropped and counted. Freed rx
 * buffers go back on the ring in batches of at least 32 (one publication,
 * one notification if the backend asked). A call that returns less than
 * @n has taken all that was there (arm() also reports a whole packet left
 * behind by a full batch).
 *
 * Return: frames received (0: none yet); -EPROTO once halted; -ENOTCONN
 * once the backend closed and nothing is left.
 */
PVIO_API int pvio_netfront_recv(struct pvio_netfront_queue *q,
				struct pvio_netfront_frame *f, unsigned int n);

/* pvio_netfront_arm() what to wait for, and its result */
enum {
	PVIO_NETFRONT_ARM_RX = 1u << 0,	/* a received frame */
	PVIO_NETFRONT_ARM_TX = 1u << 1,	/* tx completions: room */
};

/**
 * pvio_netfront_arm - before sleeping on the queue's fd
 *
 * Acknowledges the queue's pending events (and unmasks its ports), then
 * asks the backend to notify for @what: the next rx response; a tx
 * completion once about half of the tx requests in flight are answered
 * (ask only when send() said -EAGAIN). Then looks again (ring.h's final
 * check).
 *
 * Return: 0: sleep on pvio_netfront_queue_fd(); else the PVIO_NETFRONT_ARM_*
 * bits that have work now (do not sleep); -EPROTO / -ENOTCONN once dead.
 */
PVIO_API int pvio_netfront_arm(struct pvio_netfront_queue *q,
			       unsigned int what);

/* ---- zero copy: frames written and read in the queue's granted pages ----- */

/* Pages a tx reservation may hold: a 65535-byte frame, and room to see
 * one that is longer (then refused). */
#define PVIO_NETFRONT_TX_PAGES	17u
/* Slots of a received frame, at most. */
#define PVIO_NETFRONT_RX_SLOTS	19u

/* Pool pages reserved for one frame to be written in place. */
struct pvio_netfront_txbuf {
	/* out: whole pages, in frame order: bytes [4096 i, 4096 (i + 1))
	 * of the frame go in iov[i] (a readv() target) */
	struct iovec iov[PVIO_NETFRONT_TX_PAGES];
	unsigned int nr;
	uint16_t id_[PVIO_NETFRONT_TX_PAGES];	/* private */
};

/**
 * pvio_netfront_tx_reserve - pool pages for a frame of up to @max bytes
 *
 * Reaps tx responses, then takes enough free tx slots (and ring room) for
 * a frame of @max bytes (14..PVIO_NETFRONT_TX_PAGES pages; one page
 * without SG). The caller writes the frame into @b->iov (for example with
 * readv() from a TAP), then commits or cancels. Several reservations may
 * be open at once.
 *
 * Return: 0; -EAGAIN (no room: arm with PVIO_NETFRONT_ARM_TX and wait);
 * -EINVAL (@max); -EPROTO / -ENOTCONN once dead.
 */
PVIO_API int pvio_netfront_tx_reserve(struct pvio_netfront_queue *q,
				      struct pvio_netfront_txbuf *b,
				      uint32_t max);
/**
 * pvio_netfront_tx_commit - queue the frame written into a reservation
 * @len: the frame's length, at most the reservation's
 * @off: what the frame asks of the backend, as for send(); NULL: nothing
 *
 * Lays the frame out as send() does, on the reserved pages (the first
 * ceil(@len / 4096) of them; the rest go back to the pool). Nothing is
 * published until pvio_netfront_tx_push(). The pages are the backend's to
 * read until it answers: do not touch them again.
 *
 * Return: 0; -EINVAL / -EMSGSIZE as send() (the reservation is cancelled);
 * -EPROTO / -ENOTCONN once dead (cancelled as well).
 */
PVIO_API int pvio_netfront_tx_commit(struct pvio_netfront_queue *q,
				     struct pvio_netfront_txbuf *b,
				     uint32_t len,
				     const struct pvio_net_offload *off);
/* Give a reservation's pages back unused. */
PVIO_API void pvio_netfront_tx_cancel(struct pvio_netfront_queue *q,
				      struct pvio_netfront_txbuf *b);
/* Publish the committed frames: one publication, one notification only
 * if the backend asked. Return 0, or -EPROTO / -ENOTCONN once dead. */
PVIO_API int pvio_netfront_tx_push(struct pvio_netfront_queue *q);

/* A frame received in place. */
struct pvio_netfront_rxbuf {
	struct iovec iov[PVIO_NETFRONT_RX_SLOTS];	/* out: its slots */
	unsigned int nr;				/* out */
	uint32_t len;					/* out: bytes */
	struct pvio_net_offload off;			/* out */
	uint32_t pos_;					/* private */
};

/**
 * pvio_netfront_recv_zc - take up to @n received frames, in place
 *
 * As pvio_netfront_recv(), but nothing is copied: each frame is described
 * by iovecs into the rx pool pages the backend wrote it to (the first one
 * holds at least the Ethernet header; a writev() source). The pages stay
 * out of the ring until pvio_netfront_rx_release(). The backend still has
 * the grants: treat the bytes as it sent them, untrusted.
 *
 * Return: frames taken (0: none yet), or as pvio_netfront_recv().
 */
PVIO_API int pvio_netfront_recv_zc(struct pvio_netfront_queue *q,
				   struct pvio_netfront_rxbuf *b,
				   unsigned int n);
/**
 * pvio_netfront_rx_release - give received frames' pages back
 *
 * Releases @b[0..n) and every frame received before them (frames come
 * and go in ring order). Their pages go back on the ring in batches.
 * Return: 0; -EINVAL if @b is not a frame this queue handed out and that
 * is not yet released.
 */
PVIO_API int pvio_netfront_rx_release(struct pvio_netfront_queue *q,
				      const struct pvio_netfront_rxbuf *b,
				      unsigned int n);

/* Readable when the backend notified the queue or the device died. Owned
 * by the queue. */
PVIO_API int pvio_netfront_queue_fd(const struct pvio_netfront_queue *q);

struct pvio_netfront_stats {
	uint64_t tx_frames, tx_bytes, tx_slots, tx_gso;
	uint64_t tx_errors;		/* slots answered ERROR/DROPPED */
	uint64_t tx_notifies;
	uint64_t rx_frames, rx_bytes, rx_slots, rx_gso;
	uint64_t rx_errors;		/* dropped: failed slot, bad extra */
	uint64_t rx_oversize;		/* dropped: buffer too small */
	uint64_t rx_refills;		/* publications of rx buffers */
	uint64_t rx_notifies;
	uint64_t events;		/* event-channel events acknowledged */
};

/* The queue's counters; read them from the queue's thread. */
PVIO_API void pvio_netfront_queue_stats(const struct pvio_netfront_queue *q,
					struct pvio_netfront_stats *st);

#ifdef __cplusplus
}
#endif
#endif /* PVIO_NETFRONT_H */
