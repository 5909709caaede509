// SPDX-License-Identifier: MIT
/*
 * netif tx size checks (backend/net-parse.c net_tx_check) against Linux
 * netback's order: a packet netback drops (a size chain that does not add
 * up, too many slots, shorter than an Ethernet header) is dropped here
 * too, even when its first slot also crosses its page; only a packet kept
 * so far whose first slot crosses its page, or any later slot that
 * crosses its own, is fatal (the vif is disconnected).
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <string.h>

#include "net.h"

static struct tx_pkt pkt;

/* slots as (offset, size) pairs; more_data on all but the last */
static void t_pkt(unsigned int n, const unsigned int *os)
{
	unsigned int i;

	memset(&pkt, 0, sizeof(pkt));
	pkt.nslots = (uint16_t)n;
	for (i = 0; i < n; i++) {
		pkt.slot[i].offset = (uint16_t)os[2 * i];
		pkt.slot[i].size = (uint16_t)os[2 * i + 1];
		pkt.slot[i].flags = i + 1 < n ? NETTXF_more_data : 0;
	}
}

static int t_check(uint32_t *first_len)
{
	const char *why = NULL;
	int rc = net_tx_check(&pkt, first_len, &why);

	if (rc < 0)
		ck_assert_ptr_nonnull(why);
	return rc;
}

START_TEST(t_good)
{
	static const unsigned int os[] = { 100, 3000, 0, 1000 };
	uint32_t first = 0;

	t_pkt(2, os);
	ck_assert_int_eq(t_check(&first), 0);
	ck_assert_uint_eq(first, 2000);
}
END_TEST

/* A frame of 64 KiB or more: the first size wrapped, later slots look
 * larger than the frame. Netback drops it ("buggy frontends"), before it
 * looks at the first slot's page, which here it would cross. */
START_TEST(t_size_chain_drop_before_page)
{
	static const unsigned int os[] = { 3500, 1000, 0, 4096 };
	uint32_t first;

	t_pkt(2, os);
	ck_assert_int_eq(t_check(&first), 1 + DROP_MALFORMED);
}
END_TEST

/* Shorter than an Ethernet header: dropped, though it crosses its page. */
START_TEST(t_short_drop_before_page)
{
	static const unsigned int os[] = { 4090, 10 };
	uint32_t first;

	t_pkt(1, os);
	ck_assert_int_eq(t_check(&first), 1 + DROP_MALFORMED);
}
END_TEST

/* More slots than a frontend may use (18), fewer than the fatal 20. */
START_TEST(t_too_many_drop_before_page)
{
	unsigned int os[2 * 19], i;
	uint32_t first;

	for (i = 0; i < 19; i++) {
		os[2 * i] = 0;
		os[2 * i + 1] = 100;
	}
	os[0] = 4000;
	os[1] = 19 * 100;
	t_pkt(19, os);
	ck_assert_int_eq(t_check(&first), 1 + DROP_TOO_BIG);
}
END_TEST

/* Kept so far, and its first slot crosses its page: fatal. */
START_TEST(t_first_crosses_fatal)
{
	static const unsigned int os[] = { 4090, 100 };
	uint32_t first;

	t_pkt(1, os);
	ck_assert_int_eq(t_check(&first), -EPROTO);
}
END_TEST

/* A later slot crossing its page is fatal, whatever else is wrong. */
START_TEST(t_later_crosses_fatal)
{
	static const unsigned int os[] = { 0, 100, 4000, 200 };
	uint32_t first;

	t_pkt(2, os);
	ck_assert_int_eq(t_check(&first), -EPROTO);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("net-parse");
	TCase *tc = tcase_create("tx-check");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, t_good);
	tcase_add_test(tc, t_size_chain_drop_before_page);
	tcase_add_test(tc, t_short_drop_before_page);
	tcase_add_test(tc, t_too_many_drop_before_page);
	tcase_add_test(tc, t_first_crosses_fatal);
	tcase_add_test(tc, t_later_crosses_fatal);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
