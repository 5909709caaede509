// SPDX-License-Identifier: MIT
/*
 * The per-device limits' token buckets (backend/bucket.h): a debt of any
 * length is paid back in its own time (a refill once credited at most a
 * second, so a request worth D seconds of the rate waited about D^2/2),
 * no burst is saved up, and rates and charges at the ends of their ranges
 * neither wrap nor stall (a limit near 2^63 made the cap negative: the
 * disk never took another request).
 */
#include "config.h"

#include <check.h>
#include <stdint.h>

#include "bucket.h"
#include "t-check.h"

#define S	1000000000ull

/* Refill after @dt_ns at @rate; the wait that is then left. */
static uint64_t t_after(struct blk_bucket *b, uint64_t rate, uint64_t dt_ns)
{
	bucket_refill(b, rate, dt_ns, 4096);
	return bucket_wait_ns(b);
}

START_TEST(t_debt_paid_in_its_time)
{
	struct blk_bucket b = { 0 };
	uint64_t w;

	bucket_refill(&b, 256 * 1024, 0, 4096);
	bucket_charge(&b, 1024 * 1024);		/* 4 s of 256 KiB/s */
	w = bucket_wait_ns(&b);
	ck_assert_uint_ge(w, 4 * S - 1000000);
	ck_assert_uint_le(w, 4 * S + 1000000);
	/* after that wait the balance is positive: the next request goes */
	ck_assert_uint_eq(t_after(&b, 256 * 1024, w), 0);
}
END_TEST

START_TEST(t_no_burst_saved)
{
	struct blk_bucket b = { 0 };

	bucket_refill(&b, 1000000, 0, 4096);
	ck_assert_uint_eq(t_after(&b, 1000000, 3600 * S), 0);
	ck_assert_int_eq(b.tokens, 1000000 * 50);	/* 50 ms of the rate */
	bucket_charge(&b, 50001);
	ck_assert_uint_gt(bucket_wait_ns(&b), 0);
}
END_TEST

START_TEST(t_highest_rates)
{
	static const uint64_t rates[] = { UINT64_MAX >> 1, UINT64_MAX,
					  (uint64_t)1 << 58 };
	unsigned int i;

	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		struct blk_bucket b = { 0 };

		ck_assert_uint_eq(t_after(&b, rates[i], 1000000), 0);
		ck_assert_int_gt(b.tokens, 0);
		bucket_charge(&b, 1 << 20);
		ck_assert_uint_eq(t_after(&b, rates[i], 1000000), 0);
	}
}
END_TEST

START_TEST(t_huge_debt)
{
	struct blk_bucket b = { 0 };
	uint64_t w;

	bucket_refill(&b, 10 << 20, 0, 4096);
	bucket_charge(&b, 100ull << 30);	/* 100 GiB at 10 MiB/s: 10240 s */
	w = bucket_wait_ns(&b);
	ck_assert_uint_ge(w, 10240 * S - S);
	ck_assert_uint_le(w, 10240 * S + S);
	/* beyond any balance: held at the bound, the wait finite */
	bucket_charge(&b, UINT64_MAX);
	ck_assert_int_eq(b.tokens, -BUCKET_TOKENS_MAX);
	ck_assert_uint_le(bucket_wait_ns(&b), BUCKET_WAIT_MAX_NS);
}
END_TEST

START_TEST(t_rate_changed)
{
	struct blk_bucket b = { 0 };

	bucket_refill(&b, 1000, 0, 4096);
	bucket_charge(&b, 1 << 20);
	ck_assert_uint_gt(bucket_wait_ns(&b), 0);
	/* a new limit starts afresh; lifted, nothing waits */
	ck_assert_uint_eq(t_after(&b, 2000, 0), 1000);	/* empty: 1 us */
	ck_assert_uint_eq(t_after(&b, 0, 0), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bucket");
	TCase *tc = tcase_create("limits");

	tcase_add_test(tc, t_debt_paid_in_its_time);
	tcase_add_test(tc, t_no_burst_saved);
	tcase_add_test(tc, t_highest_rates);
	tcase_add_test(tc, t_huge_debt);
	tcase_add_test(tc, t_rate_changed);
	suite_add_tcase(s, tc);
	return t_run_suite(s, false);
}
