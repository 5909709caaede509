/* SPDX-License-Identifier: MIT */
/*
 * pvio base: what every layer uses and nothing else (as liburing keeps
 * barrier.h apart): the export marker, branch hints, barriers, the
 * monotonic clock and the bounded spin. No Xen headers, no I/O; platform.h
 * and ring.h sit on top of it.
 */
#ifndef PVIO_BASE_H
#define PVIO_BASE_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libpvio's exported functions (the library builds -fvisibility=hidden). */
#ifndef PVIO_API
#define PVIO_API __attribute__((visibility("default")))
#endif

#define pvio_likely(x)		__builtin_expect(!!(x), 1)
#define pvio_unlikely(x)	__builtin_expect(!!(x), 0)
#define PVIO_INLINE		static inline __attribute__((always_inline))

/* What the two sides of a ring must not share (indices 5-25x slower). */
#define PVIO_CACHELINE		64

/* ---- barriers ---------------------------------------------------------- */

/* Full barrier: our earlier store is visible before our later load. */
PVIO_INLINE void pvio_mb(void)
{
#if defined(__x86_64__)
	/* As Linux's smp_mb(): cheaper than mfence, and adding 0 leaves the
	 * red-zone word unchanged. */
	__asm__ __volatile__("lock; addl $0,-4(%%rsp)" ::: "memory", "cc");
#else
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
}

PVIO_INLINE void pvio_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ __volatile__("pause" ::: "memory");
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* ---- the clock ----------------------------------------------------------- */

/* CLOCK_MONOTONIC in ns, from the library: for callers that do not see
 * clock_gettime(), which is POSIX, not ISO C. */
PVIO_API uint64_t pvio_clock_ns(void);

#ifdef CLOCK_MONOTONIC
PVIO_INLINE uint64_t pvio_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#else
/* A strict ISO C build (e.g. -std=c11 without _POSIX_C_SOURCE): the same
 * clock, one call further away. */
PVIO_INLINE uint64_t pvio_now_ns(void)
{
	return pvio_clock_ns();
}
#endif

PVIO_INLINE uint64_t pvio_now_ms(void)
{
	return pvio_now_ns() / 1000000u;
}

/*
 * Time from @then to @now, 0 when @then is the later: a time another
 * thread stored after @now was read (a worker's heartbeat) would make the
 * difference wrap to centuries.
 */
PVIO_INLINE uint64_t pvio_since_ns(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

/* ---- spin-then-sleep --------------------------------------------------- */

/*
 * A bounded spin: poll for up to @budget_ns after the last work, then go to
 * sleep (with the final check). Under load the consumer never sleeps, so
 * its event index stays behind and the producer sends no notifications; an
 * idle ring sleeps after one budget and costs no CPU. A budget near the
 * cost of a wake-up (~20 us here) bounds the waste at 2x the optimum.
 */
struct pvio_spin {
	uint64_t budget_ns;
	uint64_t deadline_ns;
	uint32_t iter;
};

#define PVIO_SPIN_DEFAULT_NS	50000u

PVIO_INLINE void pvio_spin_init(struct pvio_spin *s, uint64_t budget_ns)
{
	s->budget_ns = budget_ns;
	s->deadline_ns = 0;
	s->iter = 0;
}

/* Work was found: the next idle period starts a fresh budget. */
PVIO_INLINE void pvio_spin_reset(struct pvio_spin *s)
{
	s->deadline_ns = 0;
	s->iter = 0;
}

/* The clock's part of a spin: the first look starts the budget. */
PVIO_INLINE bool pvio__spin_in_budget(struct pvio_spin *s)
{
	uint64_t now = pvio_now_ns();

	if (s->deadline_ns == 0) {
		s->deadline_ns = now + s->budget_ns;
		return true;
	}
	if (now < s->deadline_ns)
		return true;
	pvio_spin_reset(s);
	return false;
}

/*
 * Idle: pause once and return true while the budget lasts, false to sleep.
 * Short idle gaps (the common case under load) never read the clock: it is
 * read first after 128 pauses (which start the budget) and then once every
 * 64.
 */
PVIO_INLINE bool pvio_spin_continue(struct pvio_spin *s)
{
	pvio_cpu_relax();
	if (pvio_likely(++s->iter & 63) || s->iter < 128)
		return true;
	return pvio__spin_in_budget(s);
}

/*
 * The same for a loop whose every round costs microseconds (a pass over
 * many queues, a system call): the clock is read each round, so the spin
 * lasts its budget, not 128 such rounds and then some. The cost of the
 * read is small beside the round's own.
 */
PVIO_INLINE bool pvio_spin_continue_timed(struct pvio_spin *s)
{
	pvio_cpu_relax();
	s->iter++;
	return pvio__spin_in_budget(s);
}

#ifdef __cplusplus
}
#endif

#endif /* PVIO_BASE_H */
