/* SPDX-License-Identifier: MIT */
/*
 * pvio shared rings: Xen's sring layout (xen/io/ring.h), 1 to 16 pages, for
 * any fixed-size request/response pair, with a consumer that treats shared
 * memory as hostile.
 *
 * Layout: the shared page starts with req_prod, req_event, rsp_prod,
 * rsp_event, 48 bytes of padding, then the slots; a slot is the union of
 * request and response, and the slot count is what fits, rounded down to a
 * power of two. Identical to DEFINE_RING_TYPES (checked at compile time).
 *
 * Consumer rules (docs/protocol.md rules 1-3):
 *  - the producer index is read once per pass, with acquire ordering;
 *  - each request is copied out once into private memory and only the copy
 *    is looked at;
 *  - an index that claims more messages than slots, or moves backwards,
 *    halts the ring for good: every later call returns -EPROTO and the
 *    owner disconnects that device. Nothing is ever trusted enough to crash.
 *
 * Notification rules are ring.h's: the producer publishes once per batch and
 * notifies only if the consumer's event index lies in the newly published
 * range; the consumer sets its event index and re-checks before sleeping.
 * Setting the event index further ahead asks to be woken only after a batch.
 *
 * The functions are static inline and always_inline with compile-time slot
 * sizes, so a copy is a fixed-size move; use the typed wrappers made by
 * PVIO_RING_DEFINE (blkif, netif_tx and netif_rx are defined below).
 */
#ifndef PVIO_RING_H
#define PVIO_RING_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <pvio/base.h>
#include <pvio/platform.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PVIO_RING_MAX_PAGES	16u	/* max-ring-page-order 4 */
#define PVIO_RING_HDR_SIZE	64u

/* The shared page header, laid out as Xen's struct __name##_sring. */
struct pvio_sring {
	uint32_t req_prod, req_event;
	uint32_t rsp_prod, rsp_event;
	uint8_t pvt[4];
	uint8_t pad[44];
	unsigned char ring[];
};

/* Why a ring was halted (pvio_ring_*_halted()). */
enum pvio_ring_halt {
	PVIO_RING_LIVE = 0,
	PVIO_RING_REQ_OVERFLOW,	/* req_prod claims more requests than slots */
	PVIO_RING_REQ_BACKWARDS,	/* req_prod moved behind what we consumed */
	PVIO_RING_RSP_OVERFLOW,	/* rsp_prod claims responses never asked for */
	PVIO_RING_BAD_ATTACH,	/* indices inconsistent when attaching */
};

/*
 * The back end's private state. Keep it on its own cache lines, away from
 * the front end's: indices that share a line with the peer's cost 5-25x.
 */
struct pvio_ring_back {
	struct pvio_sring *sring;
	uint32_t nr_ents;	/* cached at attach; never re-read */
	uint32_t req_cons;
	uint32_t req_snap;	/* validated req_prod of the current pass */
	uint32_t rsp_prod_pvt;
	uint32_t rsp_pushed;	/* our own copy of the published rsp_prod */
	uint32_t halted;	/* enum pvio_ring_halt */
} __attribute__((aligned(PVIO_CACHELINE)));

struct pvio_ring_front {
	struct pvio_sring *sring;
	uint32_t nr_ents;
	uint32_t req_prod_pvt;
	uint32_t rsp_cons;
	uint32_t rsp_snap;	/* validated rsp_prod of the current pass */
	uint32_t req_pushed;
	uint32_t halted;
} __attribute__((aligned(PVIO_CACHELINE)));

/* ---- sizes ----------------------------------------------------------- */

/* Slots in a ring of @pages pages for slots of @slot_size bytes:
 * __CONST_RING_SIZE's rule (what fits, rounded down to a power of two). */
PVIO_INLINE uint32_t pvio_ring_nr_ents(unsigned int pages, size_t slot_size)
{
	size_t n = ((size_t)pages * PVIO_PAGE_SIZE - PVIO_RING_HDR_SIZE) /
		   slot_size;

	if (n == 0)
		return 0;
	return (uint32_t)1u << (31 - __builtin_clz((uint32_t)n));
}

PVIO_INLINE void *pvio__ring_slot(struct pvio_sring *s, uint32_t idx,
				  uint32_t nr_ents, size_t slot_size)
{
	return s->ring + (size_t)(idx & (nr_ents - 1)) * slot_size;
}

/* ---- set-up (ring.c) --------------------------------------------------- */

/*
 * Front: initialise the shared header (SHARED_RING_INIT: indices 0, events
 * 1) and attach. @pages is 1..16. Return 0 or -EINVAL.
 */
PVIO_API int pvio_ring_front_init(struct pvio_ring_front *r, void *sring,
				  unsigned int pages, size_t slot_size);
/*
 * Front: attach to a ring whose shared indices are live (FRONT_RING_ATTACH),
 * e.g. after a restart. Return 0, -EINVAL, or -EPROTO if the indices are
 * inconsistent (rsp_prod ahead of req_prod or further than a ring apart).
 */
PVIO_API int pvio_ring_front_attach(struct pvio_ring_front *r, void *sring,
				    unsigned int pages, size_t slot_size);
/*
 * Back: attach at the live indices (BACK_RING_ATTACH at rsp_prod), so that
 * a restarting backend continues where the last one stopped. Reads each
 * index once; refuses (-EPROTO) req_prod - rsp_prod > ring size.
 */
PVIO_API int pvio_ring_back_attach(struct pvio_ring_back *r, void *sring,
				   unsigned int pages, size_t slot_size);
/* Halt (cold path); returns -EPROTO. Called by the inline consumers. */
PVIO_API int pvio_ring_back_halt(struct pvio_ring_back *r,
				 enum pvio_ring_halt why);
PVIO_API int pvio_ring_front_halt(struct pvio_ring_front *r,
				  enum pvio_ring_halt why);
PVIO_API const char *pvio_ring_halt_str(enum pvio_ring_halt why);

/* ---- back end: consume requests, produce responses --------------------- */

/* Requests published but not consumed (a hint: consume validates). */
PVIO_INLINE uint32_t pvio_ring_back_unconsumed(const struct pvio_ring_back *r)
{
	return __atomic_load_n(&r->sring->req_prod, __ATOMIC_RELAXED) -
	       r->req_cons;
}

/*
 * A pass starts when the requests of the last snapshot are used up: read
 * req_prod once, validate it, keep it. Callers may take a pass's requests
 * a few at a time (answering each while its slot is still in cache)
 * without touching the shared index again.
 */
PVIO_INLINE int pvio__ring_back_snapshot(struct pvio_ring_back *r)
{
	uint32_t prod, owed;

	/* Acquire: the slots it covers are read after it (pairs with the
	 * producer's release store). */
	prod = __atomic_load_n(&r->sring->req_prod, __ATOMIC_ACQUIRE);
	/* Requests we owe responses for: never more than the ring holds,
	 * never fewer than we already took. */
	owed = prod - r->rsp_prod_pvt;
	if (pvio_unlikely(owed > r->nr_ents))
		return pvio_ring_back_halt(r, PVIO_RING_REQ_OVERFLOW);
	if (pvio_unlikely(owed < r->req_cons - r->rsp_prod_pvt))
		return pvio_ring_back_halt(r, PVIO_RING_REQ_BACKWARDS);
	r->req_snap = prod;
	return 0;
}

/*
 * Start or continue a pass: return how many requests (<= @max) may be
 * copied from slot index *@cons on, or -EPROTO. The typed consume copies
 * them and advances req_cons.
 */
PVIO_INLINE int pvio__ring_back_avail(struct pvio_ring_back *r,
				      unsigned int max, uint32_t *cons)
{
	uint32_t n;

	if (pvio_unlikely(r->halted))
		return -EPROTO;
	*cons = r->req_cons;
	if (*cons == r->req_snap) {
		int rc = pvio__ring_back_snapshot(r);

		if (pvio_unlikely(rc))
			return rc;
	}
	n = r->req_snap - *cons;
	return (int)(n < max ? n : max);
}

/*
 * True when the requests of the current pass (one read of req_prod) are
 * all taken: the next consume reads the index again.
 */
PVIO_INLINE bool pvio_ring_back_pass_done(const struct pvio_ring_back *r)
{
	return r->req_cons == r->req_snap;
}

/* Response slots the back end may still fill (consumed, not answered). */
PVIO_INLINE uint32_t pvio_ring_back_owed(const struct pvio_ring_back *r)
{
	return r->req_cons - r->rsp_prod_pvt;
}

PVIO_INLINE void *pvio__ring_back_rsp(struct pvio_ring_back *r,
				      size_t slot_size)
{
	return pvio__ring_slot(r->sring, r->rsp_prod_pvt, r->nr_ents,
			       slot_size);
}

/* After filling the slot from pvio_*_back_rsp() field by field. */
PVIO_INLINE void pvio_ring_back_rsp_commit(struct pvio_ring_back *r)
{
	r->rsp_prod_pvt++;
}

/*
 * Publish all committed responses at once.
 * Return: true if the front end asked to be notified (rsp_event in range).
 */
PVIO_INLINE bool pvio_ring_back_push(struct pvio_ring_back *r)
{
	uint32_t old = r->rsp_pushed, new_ = r->rsp_prod_pvt, ev;

	if (old == new_)
		return false;
	/* Release: the responses are visible before the index. */
	__atomic_store_n(&r->sring->rsp_prod, new_, __ATOMIC_RELEASE);
	r->rsp_pushed = new_;
	/* Full barrier: the front end sees the new index before we read its
	 * event index (pairs with the barrier in its final check). */
	pvio_mb();
	ev = __atomic_load_n(&r->sring->rsp_event, __ATOMIC_RELAXED);
	return (uint32_t)(new_ - ev) < (uint32_t)(new_ - old);
}

/*
 * Before sleeping: ask to be woken once @ahead (>= 1) more requests than
 * consumed so far are published, then look again.
 * Return: true if requests are waiting (do not sleep).
 */
PVIO_INLINE bool pvio_ring_back_final_check(struct pvio_ring_back *r,
					    uint32_t ahead)
{
	if (pvio_ring_back_unconsumed(r))
		return true;
	__atomic_store_n(&r->sring->req_event, r->req_cons + ahead,
			 __ATOMIC_RELAXED);
	/* Full barrier: the producer sees our event index before we look at
	 * its producer index once more (pairs with the barrier in push). */
	pvio_mb();
	return pvio_ring_back_unconsumed(r) != 0;
}

/*
 * Before sleeping until at least @n requests are there (e.g. rx buffers
 * for a packet that needs n slots): ask to be woken when the n-th arrives.
 * Return: true if n are there already (do not sleep).
 */
PVIO_INLINE bool pvio_ring_back_wait_for(struct pvio_ring_back *r, uint32_t n)
{
	if (pvio_ring_back_unconsumed(r) >= n)
		return true;
	__atomic_store_n(&r->sring->req_event, r->req_cons + n,
			 __ATOMIC_RELAXED);
	pvio_mb();	/* as in pvio_ring_back_final_check() */
	return pvio_ring_back_unconsumed(r) >= n;
}

/* ---- front end: produce requests, consume responses ------------------- */

PVIO_INLINE uint32_t pvio_ring_front_free(const struct pvio_ring_front *r)
{
	return r->nr_ents - (r->req_prod_pvt - r->rsp_cons);
}

/* Requests pushed and not yet answered. */
PVIO_INLINE uint32_t pvio_ring_front_inflight(const struct pvio_ring_front *r)
{
	return r->req_pushed - r->rsp_cons;
}

PVIO_INLINE void *pvio__ring_front_req(struct pvio_ring_front *r,
				       size_t slot_size)
{
	return pvio__ring_slot(r->sring, r->req_prod_pvt, r->nr_ents,
			       slot_size);
}

/* After filling the slot from pvio_*_front_req(); needs a free slot. */
PVIO_INLINE void pvio_ring_front_req_commit(struct pvio_ring_front *r)
{
	r->req_prod_pvt++;
}

/* Publish all committed requests. Return: true if the back end asked to
 * be notified. */
PVIO_INLINE bool pvio_ring_front_push(struct pvio_ring_front *r)
{
	uint32_t old = r->req_pushed, new_ = r->req_prod_pvt, ev;

	if (old == new_)
		return false;
	/* Release: the requests are visible before the index. */
	__atomic_store_n(&r->sring->req_prod, new_, __ATOMIC_RELEASE);
	r->req_pushed = new_;
	/* Full barrier: as in pvio_ring_back_push(). */
	pvio_mb();
	ev = __atomic_load_n(&r->sring->req_event, __ATOMIC_RELAXED);
	return (uint32_t)(new_ - ev) < (uint32_t)(new_ - old);
}

PVIO_INLINE uint32_t pvio_ring_front_unconsumed(const struct pvio_ring_front *r)
{
	return __atomic_load_n(&r->sring->rsp_prod, __ATOMIC_RELAXED) -
	       r->rsp_cons;
}

PVIO_INLINE int pvio__ring_front_avail(struct pvio_ring_front *r,
				       unsigned int max, uint32_t *cons)
{
	uint32_t n;

	if (pvio_unlikely(r->halted))
		return -EPROTO;
	*cons = r->rsp_cons;
	if (*cons == r->rsp_snap) {
		uint32_t prod = __atomic_load_n(&r->sring->rsp_prod,
						__ATOMIC_ACQUIRE);

		/* A response for a request we never published is a broken
		 * back end (RING_RESPONSE_PROD_OVERFLOW, made exact). */
		if (pvio_unlikely(prod - *cons > r->req_pushed - *cons))
			return pvio_ring_front_halt(r, PVIO_RING_RSP_OVERFLOW);
		r->rsp_snap = prod;
	}
	n = r->rsp_snap - *cons;
	return (int)(n < max ? n : max);
}

/* Before sleeping: be woken once @ahead more responses are published. */
PVIO_INLINE bool pvio_ring_front_final_check(struct pvio_ring_front *r,
					     uint32_t ahead)
{
	if (pvio_ring_front_unconsumed(r))
		return true;
	__atomic_store_n(&r->sring->rsp_event, r->rsp_cons + ahead,
			 __ATOMIC_RELAXED);
	pvio_mb();
	return pvio_ring_front_unconsumed(r) != 0;
}

/* ---- typed wrappers ----------------------------------------------------- */

/*
 * Copy a slot out once (RING_COPY_REQUEST): through a volatile lvalue, so
 * that the compiler cannot fetch it again later (XSA-155). C++ has no
 * assignment from a volatile struct: a copy, then a compiler barrier,
 * after which the copy is all the compiler may read.
 */
#ifdef __cplusplus
#define PVIO__COPY_ONCE(dst, src, type)					\
	do {								\
		__builtin_memcpy(&(dst), (const void *)(src), sizeof(type)); \
		__asm__ __volatile__("" ::: "memory");			\
	} while (0)
#else
#define PVIO__COPY_ONCE(dst, src, type)	((dst) = *(volatile type *)(src))
#endif

#define PVIO_RING_DEFINE(name, req_t, rsp_t)				\
union pvio_##name##_slot {						\
	req_t req;							\
	rsp_t rsp;							\
};									\
PVIO_INLINE uint32_t pvio_##name##_ring_size(unsigned int pages)	\
{									\
	return pvio_ring_nr_ents(pages, sizeof(union pvio_##name##_slot)); \
}									\
PVIO_INLINE int pvio_##name##_front_init(struct pvio_ring_front *r,	\
					  void *s, unsigned int pages)	\
{									\
	return pvio_ring_front_init(r, s, pages,			\
				    sizeof(union pvio_##name##_slot));	\
}									\
PVIO_INLINE int pvio_##name##_front_attach(struct pvio_ring_front *r,	\
					    void *s, unsigned int pages)	\
{									\
	return pvio_ring_front_attach(r, s, pages,			\
				      sizeof(union pvio_##name##_slot));	\
}									\
PVIO_INLINE int pvio_##name##_back_attach(struct pvio_ring_back *r,	\
					   void *s, unsigned int pages)	\
{									\
	return pvio_ring_back_attach(r, s, pages,			\
				     sizeof(union pvio_##name##_slot));	\
}									\
/*								\
 * Copy up to @max requests out; return the count or -EPROTO. Each	\
 * slot is read once (PVIO__COPY_ONCE).					\
 */									\
PVIO_INLINE int pvio_##name##_back_consume(struct pvio_ring_back *r,	\
					    req_t *out, unsigned int max) \
{									\
	uint32_t cons;							\
	int n = pvio__ring_back_avail(r, max, &cons), i;		\
									\
	for (i = 0; i < n; i++)						\
		PVIO__COPY_ONCE(out[i], pvio__ring_slot(r->sring,	\
				cons + (uint32_t)i, r->nr_ents,		\
				sizeof(union pvio_##name##_slot)), req_t);	\
	if (n > 0)							\
		r->req_cons = cons + (uint32_t)n;			\
	return n;							\
}									\
/* The next response slot, in shared memory: write it field by field. */ \
PVIO_INLINE rsp_t *pvio_##name##_back_rsp(struct pvio_ring_back *r)	\
{									\
	return (rsp_t *)pvio__ring_back_rsp(r,				\
				sizeof(union pvio_##name##_slot));	\
}									\
PVIO_INLINE req_t *pvio_##name##_front_req(struct pvio_ring_front *r)	\
{									\
	return (req_t *)pvio__ring_front_req(r,				\
				sizeof(union pvio_##name##_slot));	\
}									\
PVIO_INLINE int pvio_##name##_front_consume(struct pvio_ring_front *r,	\
					     rsp_t *out, unsigned int max) \
{									\
	uint32_t cons;							\
	int n = pvio__ring_front_avail(r, max, &cons), i;		\
									\
	for (i = 0; i < n; i++)						\
		PVIO__COPY_ONCE(out[i], pvio__ring_slot(r->sring,	\
				cons + (uint32_t)i, r->nr_ents,		\
				sizeof(union pvio_##name##_slot)), rsp_t);	\
	if (n > 0)							\
		r->rsp_cons = cons + (uint32_t)n;			\
	return n;							\
}

#ifdef __cplusplus
}
#endif

/* ---- Xen's message types ------------------------------------------------ */

/* The current interface, as Xen's own tools get with __XEN_TOOLS__ (and not
 * 0, which makes ring.h want the includer's mb()). */
#if !defined(__XEN_INTERFACE_VERSION__) && !defined(__XEN_TOOLS__) && \
	!defined(__XEN__)
#define __XEN_INTERFACE_VERSION__ 0x00040e00
#endif
#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/blkif.h>
#include <xen/io/netif.h>

PVIO_RING_DEFINE(blkif, struct blkif_request, struct blkif_response)
PVIO_RING_DEFINE(netif_tx, struct netif_tx_request, struct netif_tx_response)
PVIO_RING_DEFINE(netif_rx, struct netif_rx_request, struct netif_rx_response)

#endif /* PVIO_RING_H */
