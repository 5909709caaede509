// SPDX-License-Identifier: MIT
/*
 * The ring layer: geometry against Xen's own macros, batching, event
 * suppression, wrap-around of the 32-bit indices, hostile indices (halt),
 * copy-once, one index read per pass, restart attach, the spin budget.
 */
#include "config.h"

#include <check.h>
#include <stdlib.h>
#include <sys/mman.h>

#include <pvio/ring.h>

#include "t-check.h"

#define PAGES_MAX PVIO_RING_MAX_PAGES

static void *t_ring_alloc(unsigned int pages)
{
	void *p = mmap(NULL, (size_t)pages * PVIO_PAGE_SIZE,
		       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);

	ck_assert_ptr_ne(p, MAP_FAILED);
	return p;
}

/* A front and a back over one blkif ring, its indices started at @start. */
struct t_pair {
	void *mem;
	unsigned int pages;
	struct pvio_ring_front f;
	struct pvio_ring_back b;
};

static void t_pair_init(struct t_pair *t, unsigned int pages, uint32_t start)
{
	struct pvio_sring *s;

	t->pages = pages;
	t->mem = t_ring_alloc(pages);
	ck_assert_int_eq(pvio_blkif_front_init(&t->f, t->mem, pages), 0);
	if (start) {
		/* as a front that has been running for a while */
		s = t->mem;
		s->req_prod = s->rsp_prod = start;
		s->req_event = s->rsp_event = start + 1;
		ck_assert_int_eq(pvio_blkif_front_attach(&t->f, t->mem, pages), 0);
	}
	ck_assert_int_eq(pvio_blkif_back_attach(&t->b, t->mem, pages), 0);
}

static void t_pair_fini(struct t_pair *t)
{
	munmap(t->mem, (size_t)t->pages * PVIO_PAGE_SIZE);
}

static void t_produce(struct t_pair *t, unsigned int n, uint64_t first_id)
{
	unsigned int i;

	ck_assert_uint_ge(pvio_ring_front_free(&t->f), n);
	for (i = 0; i < n; i++) {
		struct blkif_request *q = pvio_blkif_front_req(&t->f);

		memset(q, 0, sizeof(*q));
		q->operation = BLKIF_OP_READ;
		q->nr_segments = 1;
		q->id = first_id + i;
		pvio_ring_front_req_commit(&t->f);
	}
}

static void t_answer(struct t_pair *t, const struct blkif_request *q,
		     unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		struct blkif_response *p = pvio_blkif_back_rsp(&t->b);

		p->id = q[i].id;
		p->operation = q[i].operation;
		p->status = BLKIF_RSP_OKAY;
		pvio_ring_back_rsp_commit(&t->b);
	}
}

/* ---- geometry ----------------------------------------------------------- */

START_TEST(t_geometry)
{
	unsigned int pages = (unsigned int)_i;
	size_t sz = (size_t)pages * PVIO_PAGE_SIZE;
	void *mem = t_ring_alloc(pages);
	blkif_back_ring_t xb;
	netif_tx_back_ring_t xt;
	netif_rx_back_ring_t xr;
	struct pvio_ring_front f;

	/* Xen's own macros on the same memory are the reference */
	BACK_RING_INIT(&xb, (blkif_sring_t *)mem, sz);
	BACK_RING_INIT(&xt, (netif_tx_sring_t *)mem, sz);
	BACK_RING_INIT(&xr, (netif_rx_sring_t *)mem, sz);
	ck_assert_uint_eq(pvio_blkif_ring_size(pages), RING_SIZE(&xb));
	ck_assert_uint_eq(pvio_netif_tx_ring_size(pages), RING_SIZE(&xt));
	ck_assert_uint_eq(pvio_netif_rx_ring_size(pages), RING_SIZE(&xr));
	ck_assert_int_eq(pvio_blkif_front_init(&f, mem, pages), 0);
	ck_assert_uint_eq(f.nr_ents, RING_SIZE(&xb));
	/* SHARED_RING_INIT */
	ck_assert_uint_eq(((struct pvio_sring *)mem)->req_event, 1);
	ck_assert_uint_eq(((struct pvio_sring *)mem)->rsp_event, 1);
	munmap(mem, sz);
}
END_TEST

START_TEST(t_bad_geometry)
{
	void *mem = t_ring_alloc(1);
	struct pvio_ring_front f;
	struct pvio_ring_back b;

	ck_assert_int_eq(pvio_blkif_front_init(&f, mem, 0), -EINVAL);
	ck_assert_int_eq(pvio_blkif_front_init(&f, mem, 17), -EINVAL);
	ck_assert_int_eq(pvio_blkif_back_attach(&b, NULL, 1), -EINVAL);
	ck_assert_int_eq(pvio_ring_front_init(&f, mem, 1, 8192), -EINVAL);
	munmap(mem, PVIO_PAGE_SIZE);
}
END_TEST

/* ---- batching and event suppression ---------------------------------------- */

START_TEST(t_batching)
{
	struct t_pair t;
	struct blkif_request q[64];
	struct blkif_response p[64];

	t_pair_init(&t, 1, 0);
	/* many requests, one publish, one notification (req_event is 1) */
	t_produce(&t, 10, 0);
	ck_assert_uint_eq(((struct pvio_sring *)t.mem)->req_prod, 0);
	ck_assert(pvio_ring_front_push(&t.f));
	ck_assert_uint_eq(((struct pvio_sring *)t.mem)->req_prod, 10);
	ck_assert(!pvio_ring_front_push(&t.f));	/* nothing new */
	/* the back end never asked again: the next batch is silent */
	t_produce(&t, 5, 10);
	ck_assert(!pvio_ring_front_push(&t.f));
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 64), 15);
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q + 15, 64), 0);
	t_answer(&t, q, 15);
	ck_assert(pvio_ring_back_push(&t.b));	/* rsp_event was 1 */
	ck_assert_int_eq(pvio_blkif_front_consume(&t.f, p, 64), 15);
	ck_assert_uint_eq(p[14].id, 14);
	t_pair_fini(&t);
}
END_TEST

START_TEST(t_event_suppression)
{
	struct t_pair t;
	struct blkif_request q[32];
	struct blkif_response p[32];

	t_pair_init(&t, 1, 0);
	t_produce(&t, 1, 0);
	ck_assert(pvio_ring_front_push(&t.f));
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 32), 1);
	/* pending work: the final check says "don't sleep" */
	t_produce(&t, 1, 1);
	pvio_ring_front_push(&t.f);
	ck_assert(pvio_ring_back_final_check(&t.b, 1));
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 32), 1);
	/* wake me after a batch of 5 */
	ck_assert(!pvio_ring_back_final_check(&t.b, 5));
	ck_assert_uint_eq(((struct pvio_sring *)t.mem)->req_event, 2 + 5);
	t_produce(&t, 4, 2);
	ck_assert(!pvio_ring_front_push(&t.f));	/* 4 < 5: no notification */
	t_produce(&t, 1, 6);
	ck_assert(pvio_ring_front_push(&t.f));	/* the 5th: notify */
	t_produce(&t, 3, 7);
	ck_assert(!pvio_ring_front_push(&t.f));	/* already told */

	/* the same on the response side */
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 32), 8);
	t_answer(&t, q, 8);
	pvio_ring_back_push(&t.b);
	ck_assert_int_eq(pvio_blkif_front_consume(&t.f, p, 32), 10 - 2 + 0);
	ck_assert(!pvio_ring_front_final_check(&t.f, 3));
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 32), 0);
	t_produce(&t, 3, 10);
	pvio_ring_front_push(&t.f);
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 32), 3);
	t_answer(&t, q, 2);
	ck_assert(!pvio_ring_back_push(&t.b));	/* 2 < 3 */
	t_answer(&t, q + 2, 1);
	ck_assert(pvio_ring_back_push(&t.b));
	t_pair_fini(&t);
}
END_TEST

/* ---- the 32-bit indices wrap ---------------------------------------------- */

static const uint32_t wrap_starts[] = {
	0xffffffe0u, 0xfffffff0u, 0xffffffffu, 0x7ffffff0u, 0xfffffe00u,
};

START_TEST(t_wraparound)
{
	struct t_pair t;
	struct blkif_request q[32];
	struct blkif_response p[32];
	uint64_t next_id = 0, done = 0;
	unsigned int round;

	t_pair_init(&t, 1, wrap_starts[_i]);
	for (round = 0; round < 200; round++) {
		unsigned int n = 1 + round % 32, got = 0, k;
		bool notify;
		int c;

		t_produce(&t, n, next_id);
		next_id += n;
		notify = pvio_ring_front_push(&t.f);
		/* the back end always re-armed with ahead=1: every batch of a
		 * sleeping back end is notified exactly once */
		ck_assert(notify);
		while ((c = pvio_blkif_back_consume(&t.b, q + got, 32)) > 0)
			got += (unsigned int)c;
		ck_assert_int_eq(c, 0);
		ck_assert_uint_eq(got, n);
		for (k = 0; k < n; k++)
			ck_assert_uint_eq(q[k].id, done + k);
		ck_assert(!pvio_ring_back_final_check(&t.b, 1));
		t_answer(&t, q, n);
		pvio_ring_back_push(&t.b);
		ck_assert_int_eq(pvio_blkif_front_consume(&t.f, p, 32), (int)n);
		ck_assert_uint_eq(p[n - 1].id, done + n - 1);
		done += n;
		ck_assert(!pvio_ring_front_final_check(&t.f, 1));
	}
	/* modulo 2^32 all along (most starts cross the wrap) */
	ck_assert_uint_eq(((struct pvio_sring *)t.mem)->req_prod,
			  (uint32_t)(wrap_starts[_i] + next_id));
	ck_assert(!t.b.halted && !t.f.halted);
	t_pair_fini(&t);
}
END_TEST

/* ---- a hostile peer ------------------------------------------------------------- */

START_TEST(t_overflow_halts)
{
	struct t_pair t;
	struct blkif_request q[64];
	struct pvio_sring *s;

	t_pair_init(&t, 1, (uint32_t)_i * 0x7fffffffu);
	s = t.mem;
	/* a front end claims 33 requests on a 32-slot ring */
	s->req_prod = t.b.rsp_prod_pvt + t.b.nr_ents + 1;
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 64), -EPROTO);
	ck_assert_int_eq(t.b.halted, PVIO_RING_REQ_OVERFLOW);
	/* halted for good, even once the index looks sane again */
	s->req_prod = t.b.rsp_prod_pvt + 1;
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 64), -EPROTO);
	ck_assert_str_eq(pvio_ring_halt_str(t.b.halted),
			 "req_prod claims more requests than the ring holds");
	t_pair_fini(&t);
}
END_TEST

START_TEST(t_backwards_halts)
{
	struct t_pair t;
	struct blkif_request q[64];

	t_pair_init(&t, 1, 0);
	t_produce(&t, 8, 0);
	pvio_ring_front_push(&t.f);
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 64), 8);
	((struct pvio_sring *)t.mem)->req_prod = 3;
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 64), -EPROTO);
	ck_assert_int_eq(t.b.halted, PVIO_RING_REQ_BACKWARDS);
	t_pair_fini(&t);
}
END_TEST

START_TEST(t_exactly_full_is_fine)
{
	struct t_pair t;
	struct blkif_request q[64];

	t_pair_init(&t, 1, 0xfffffff0u);
	t_produce(&t, 32, 0);
	pvio_ring_front_push(&t.f);
	ck_assert_int_eq(pvio_ring_front_free(&t.f), 0);
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 64), 32);
	t_pair_fini(&t);
}
END_TEST

START_TEST(t_front_rsp_overflow)
{
	struct t_pair t;
	struct blkif_response p[64];

	t_pair_init(&t, 1, 0);
	t_produce(&t, 2, 0);
	pvio_ring_front_push(&t.f);
	/* a back end answering three of two requests */
	((struct pvio_sring *)t.mem)->rsp_prod = 3;
	ck_assert_int_eq(pvio_blkif_front_consume(&t.f, p, 64), -EPROTO);
	ck_assert_int_eq(t.f.halted, PVIO_RING_RSP_OVERFLOW);
	t_pair_fini(&t);
}
END_TEST

START_TEST(t_bad_attach)
{
	void *mem = t_ring_alloc(1);
	struct pvio_sring *s = mem;
	struct pvio_ring_back b;
	struct pvio_ring_front f;

	memset(mem, 0, PVIO_RING_HDR_SIZE);
	s->rsp_prod = 100;
	s->req_prod = 100 + 33;
	ck_assert_int_eq(pvio_blkif_back_attach(&b, mem, 1), -EPROTO);
	ck_assert_int_eq(b.halted, PVIO_RING_BAD_ATTACH);
	ck_assert_int_eq(pvio_blkif_front_attach(&f, mem, 1), -EPROTO);
	munmap(mem, PVIO_PAGE_SIZE);
}
END_TEST

/* Requests published before a back end restarted are served again. */
START_TEST(t_restart_attach)
{
	struct t_pair t;
	struct blkif_request q[64];

	t_pair_init(&t, 2, 0x1000);
	t_produce(&t, 5, 0);
	pvio_ring_front_push(&t.f);
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 2), 2);
	t_answer(&t, q, 2);
	pvio_ring_back_push(&t.b);
	/* the back end dies; a new one attaches at the live indices */
	ck_assert_int_eq(pvio_blkif_back_attach(&t.b, t.mem, 2), 0);
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 64), 3);
	ck_assert_uint_eq(q[0].id, 2);
	t_pair_fini(&t);
}
END_TEST

/* Each slot is read once into private memory: after consume, the ring can
 * change or vanish and the copies stay as they were. */
START_TEST(t_copy_once)
{
	struct t_pair t;
	struct blkif_request q[8];
	unsigned int i;

	t_pair_init(&t, 1, 0);
	t_produce(&t, 8, 100);
	pvio_ring_front_push(&t.f);
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 8), 8);
	/* the front end rewrites the slots after the fact ... */
	for (i = 0; i < 8; i++) {
		struct blkif_request *s = (struct blkif_request *)
			((struct pvio_sring *)t.mem)->ring + i;

		s->nr_segments = 200;
		s->id = 0xdead;
	}
	/* ... and then the shared page goes away entirely: using the
	 * copies must not touch it (it would fault). */
	ck_assert_int_eq(mprotect(t.mem, PVIO_PAGE_SIZE, PROT_NONE), 0);
	for (i = 0; i < 8; i++) {
		ck_assert_uint_eq(q[i].id, 100 + i);
		ck_assert_uint_eq(q[i].nr_segments, 1);
	}
	mprotect(t.mem, PVIO_PAGE_SIZE, PROT_READ | PROT_WRITE);
	t_pair_fini(&t);
}
END_TEST

/* req_prod is read once per pass: requests published in the middle of a
 * pass wait for the next one. */
START_TEST(t_index_once_per_pass)
{
	struct t_pair t;
	struct blkif_request q[64];

	t_pair_init(&t, 2, 0);
	t_produce(&t, 10, 0);
	pvio_ring_front_push(&t.f);
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 4), 4);
	ck_assert(!pvio_ring_back_pass_done(&t.b));
	t_produce(&t, 10, 10);
	pvio_ring_front_push(&t.f);
	/* the rest of the first snapshot, not the new requests */
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 64), 6);
	ck_assert(pvio_ring_back_pass_done(&t.b));
	/* the next pass reads the index again */
	ck_assert_int_eq(pvio_blkif_back_consume(&t.b, q, 64), 10);
	ck_assert_uint_eq(q[0].id, 10);
	t_pair_fini(&t);
}
END_TEST

/* netif: 256 slots a page, 12-byte requests in 12-byte slots. */
START_TEST(t_netif_tx)
{
	void *mem = t_ring_alloc(1);
	struct pvio_ring_front f;
	struct pvio_ring_back b;
	struct netif_tx_request q[300];
	unsigned int i;

	ck_assert_int_eq(pvio_netif_tx_front_init(&f, mem, 1), 0);
	ck_assert_int_eq(pvio_netif_tx_back_attach(&b, mem, 1), 0);
	ck_assert_uint_eq(f.nr_ents, 256);
	for (i = 0; i < 256; i++) {
		struct netif_tx_request *r = pvio_netif_tx_front_req(&f);

		r->gref = i;
		r->offset = 0;
		r->flags = 0;
		r->id = (uint16_t)i;
		r->size = 60;
		pvio_ring_front_req_commit(&f);
	}
	ck_assert_int_eq(pvio_ring_front_free(&f), 0);
	pvio_ring_front_push(&f);
	ck_assert_int_eq(pvio_netif_tx_back_consume(&b, q, 300), 256);
	ck_assert_uint_eq(q[255].gref, 255);
	munmap(mem, PVIO_PAGE_SIZE);
}
END_TEST

/* ---- spin-then-sleep ------------------------------------------------------------ */

START_TEST(t_spin_budget)
{
	struct pvio_spin s;
	uint64_t t0 = pvio_now_ns(), spins = 0;

	pvio_spin_init(&s, 2000000);	/* 2 ms */
	while (pvio_spin_continue(&s))
		spins++;
	ck_assert_uint_ge(pvio_now_ns() - t0, 2000000);
	ck_assert_uint_lt(pvio_now_ns() - t0, 1000000000);
	ck_assert_uint_gt(spins, 128);
	/* a reset starts a fresh budget */
	pvio_spin_reset(&s);
	ck_assert(pvio_spin_continue(&s));
}
END_TEST

/* Rounds that each cost 20 us: a 100 us budget is a handful of them,
 * not the 128 untimed rounds pvio_spin_continue() starts with. Counted in
 * rounds, so a preempted test only sees fewer. */
static unsigned int dear_rounds(bool (*cont)(struct pvio_spin *))
{
	struct pvio_spin s;
	unsigned int rounds = 0;

	pvio_spin_init(&s, 100000);
	while (cont(&s) && rounds < 1000) {
		uint64_t end = pvio_now_ns() + 20000;

		while (pvio_now_ns() < end)
			;
		rounds++;
	}
	return rounds;
}

START_TEST(t_spin_timed_budget)
{
	struct pvio_spin s;

	ck_assert_uint_le(dear_rounds(pvio_spin_continue_timed), 8);
	ck_assert_uint_ge(dear_rounds(pvio_spin_continue), 128);
	/* cheap rounds: it still spins its budget */
	{
		uint64_t t0 = pvio_now_ns();

		pvio_spin_init(&s, 2000000);
		while (pvio_spin_continue_timed(&s))
			;
		ck_assert_uint_ge(pvio_now_ns() - t0, 2000000);
	}
	/* and after its budget a fresh one starts */
	ck_assert(pvio_spin_continue_timed(&s));
}
END_TEST

/* a heartbeat stored after "now" was read is no stall of 584 years */
START_TEST(t_since)
{
	uint64_t now = pvio_now_ns();

	ck_assert_uint_eq(pvio_since_ns(now, now - 5), 5);
	ck_assert_uint_eq(pvio_since_ns(now, now), 0);
	ck_assert_uint_eq(pvio_since_ns(now, now + 1000), 0);
	ck_assert_uint_eq(pvio_since_ns(now, 0), now);
}
END_TEST

static Suite *ring_suite(void)
{
	Suite *s = suite_create("ring");
	TCase *tc = tcase_create("ring");

	tcase_add_loop_test(tc, t_geometry, 1, PAGES_MAX + 1);
	tcase_add_test(tc, t_bad_geometry);
	tcase_add_test(tc, t_since);
	tcase_add_test(tc, t_batching);
	tcase_add_test(tc, t_event_suppression);
	tcase_add_loop_test(tc, t_wraparound, 0,
			    sizeof(wrap_starts) / sizeof(wrap_starts[0]));
	tcase_add_loop_test(tc, t_overflow_halts, 0, 3);
	tcase_add_test(tc, t_backwards_halts);
	tcase_add_test(tc, t_exactly_full_is_fine);
	tcase_add_test(tc, t_front_rsp_overflow);
	tcase_add_test(tc, t_bad_attach);
	tcase_add_test(tc, t_restart_attach);
	tcase_add_test(tc, t_copy_once);
	tcase_add_test(tc, t_index_once_per_pass);
	tcase_add_test(tc, t_netif_tx);
	tcase_add_test(tc, t_spin_budget);
	tcase_add_test(tc, t_spin_timed_budget);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return t_run_suite(ring_suite(), false);
}
