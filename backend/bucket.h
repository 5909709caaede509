/* SPDX-License-Identifier: MIT */
/*
 * Token buckets for the per-device limits (pvio-iops-limit,
 * pvio-bytes-limit). Tokens are 1/1000 of a request or byte. A request is
 * taken while the balance is positive and charged as it is taken, so the
 * balance may go below zero by a request: the bucket then waits until it
 * is positive again, however long that is (a request worth seconds of the
 * rate waits those seconds). It holds at most 50 ms of its rate (at least
 * @min units), so an idle guest does not save up a burst. Any rate and
 * any charge are safe: sums in 128 bits, the balance within +-2^62.
 */
#ifndef PVIO_BACKEND_BUCKET_H
#define PVIO_BACKEND_BUCKET_H

#include <stdint.h>

struct blk_bucket {
	uint64_t rate;		/* per second, this queue's share (0: none) */
	int64_t tokens;		/* in 1/1000 of a request or byte */
};

#define BUCKET_TOKENS_MAX	((int64_t)1 << 62)
#define BUCKET_WAIT_MAX_NS	((uint64_t)1 << 62)

/* Credit @dt_ns of @rate (a changed rate starts from an empty balance). */
static inline void bucket_refill(struct blk_bucket *b, uint64_t rate,
				 uint64_t dt_ns, uint64_t min)
{
	unsigned __int128 cap, add;
	__int128 t;

	if (b->rate != rate) {	/* set, changed or lifted */
		b->rate = rate;
		b->tokens = 0;
	}
	if (!rate)
		return;
	cap = (unsigned __int128)rate * 50;	/* 50 ms, in 1/1000 */
	if (cap < (unsigned __int128)min * 1000)
		cap = (unsigned __int128)min * 1000;
	if (cap > BUCKET_TOKENS_MAX)
		cap = BUCKET_TOKENS_MAX;
	/* rate * dt * 1000: below 2^128 / 10^6, so the sum fits too */
	add = (unsigned __int128)rate * dt_ns / 1000000u;
	t = (__int128)b->tokens + (__int128)add;
	b->tokens = t > (__int128)cap ? (int64_t)cap : (int64_t)t;
}

/* @units (requests or bytes) taken. */
static inline void bucket_charge(struct blk_bucket *b, uint64_t units)
{
	__int128 t = (__int128)b->tokens - (__int128)units * 1000;

	if (b->rate)
		b->tokens = t < -BUCKET_TOKENS_MAX ? -BUCKET_TOKENS_MAX : (int64_t)t;
}

/* When will @b have a positive balance? 0: now. */
static inline uint64_t bucket_wait_ns(const struct blk_bucket *b)
{
	unsigned __int128 w;

	if (!b->rate || b->tokens > 0)
		return 0;
	w = (unsigned __int128)(-(__int128)b->tokens) * 1000000u / b->rate +
	    1000u;
	return w > BUCKET_WAIT_MAX_NS ? BUCKET_WAIT_MAX_NS : (uint64_t)w;
}

#endif
