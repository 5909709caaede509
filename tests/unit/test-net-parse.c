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
#include "t-check.h"

/* A packet as (offset, size) pairs, more_data on all but the last slot. */
struct t_case {
	const char *what;
	unsigned int n;
	unsigned int os[2 * 19];
	int want;		/* net_tx_check()'s return */
	uint32_t first;		/* the first slot's own length, if kept */
};

static const struct t_case cases[] = {
	{ "good: two slots", 2, { 100, 3000, 0, 1000 }, 0, 2000 },
	/* a frame of 64 KiB or more: the first size wrapped, a later slot
	 * looks larger than the frame; netback drops it ("buggy
	 * frontends") before it looks at the first slot's page, which here
	 * it would cross */
	{ "size chain: dropped before the page check", 2,
	  { 3500, 1000, 0, 4096 }, 1 + DROP_MALFORMED, 0 },
	{ "shorter than a header: dropped, though it crosses its page", 1,
	  { 4090, 10 }, 1 + DROP_MALFORMED, 0 },
	/* more slots than a frontend may use (18), fewer than the fatal 20 */
	{ "19 slots: dropped before the page check", 19,
	  { 4000, 1900, 0, 100, 0, 100, 0, 100, 0, 100, 0, 100, 0, 100, 0, 100,
	    0, 100, 0, 100, 0, 100, 0, 100, 0, 100, 0, 100, 0, 100, 0, 100,
	    0, 100, 0, 100, 0, 100 }, 1 + DROP_TOO_BIG, 0 },
	{ "kept so far, the first slot crosses its page: fatal", 1,
	  { 4090, 100 }, -EPROTO, 0 },
	{ "a later slot crosses its page: fatal", 2, { 0, 100, 4000, 200 },
	  -EPROTO, 0 },
};

START_TEST(t_tx_check)
{
	const struct t_case *c = &cases[_i];
	struct tx_pkt pkt;
	const char *why = NULL;
	uint32_t first = 0;
	unsigned int i;
	int rc;

	memset(&pkt, 0, sizeof(pkt));
	pkt.nslots = (uint16_t)c->n;
	for (i = 0; i < c->n; i++) {
		pkt.slot[i].offset = (uint16_t)c->os[2 * i];
		pkt.slot[i].size = (uint16_t)c->os[2 * i + 1];
		pkt.slot[i].flags = i + 1 < c->n ? NETTXF_more_data : 0;
	}
	rc = net_tx_check(&pkt, &first, &why);
	ck_assert_msg(rc == c->want, "%s: %d, want %d", c->what, rc, c->want);
	if (rc < 0)
		ck_assert_ptr_nonnull(why);
	if (rc == 0)
		ck_assert_uint_eq(first, c->first);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("net-parse");
	TCase *tc = tcase_create("tx-check");

	tcase_add_loop_test(tc, t_tx_check, 0,
			    (int)(sizeof(cases) / sizeof(cases[0])));
	suite_add_tcase(s, tc);
	return t_run_suite(s, false);
}
