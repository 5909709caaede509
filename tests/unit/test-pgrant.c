// SPDX-License-Identifier: MIT
/*
 * The persistent-grant cache (backend/pgrant.c) against a real
 * pvio-simhv: a request's new pages mapped as one range in one call, hits
 * giving the same pages back, a gref twice in a request, eviction of whole
 * mappings (never one some request still uses), the per-pass map budget,
 * read-only and bad grants, and everything unmapped at the end (the guest
 * can then revoke its grants).
 */
#include "config.h"

#include <check.h>

#include <pvio/platform.h>

#include "pgrant.h"
#include "t-world.h"
#include "t-check.h"

#define GUEST	3u

static struct pvio_platform *u, *d0;

static void setup(void)
{
	t_world_start();
	t_world_guard();
	u = t_attach(GUEST);
	d0 = t_attach(0);
}

static void teardown(void)
{
	pvio_platform_close(d0);
	pvio_platform_close(u);
	t_world_stop();
}

/* the guest shares @n pages, page k holding "page k" */
static char *t_share(unsigned int n, bool writable, pvio_gref_t *refs)
{
	char *a = NULL;
	unsigned int k;

	ck_assert_int_eq(pvio_gnt_share(u, 0, n, writable, refs, (void **)&a),
			 0);
	for (k = 0; k < n; k++)
		snprintf(a + (size_t)k * PVIO_PAGE_SIZE, 16, "page %u", k);
	return a;
}

static void t_cache(struct pg_cache *c, uint32_t cap)
{
	ck_assert_int_eq(pg_cache_init(c, d0, GUEST, cap), 0);
	pg_cache_pass(c, 64);
}

static void t_put(struct pg_cache *c, unsigned int n, const uint32_t *idx)
{
	while (n--)
		pg_cache_put(c, idx[n]);
}

/* each entry maps the page its gref names */
static void t_check_pages(struct pg_cache *c, unsigned int n,
			  const uint32_t *idx, const pvio_gref_t *refs,
			  const pvio_gref_t *all)
{
	unsigned int i, k;
	char want[16];

	for (i = 0; i < n; i++) {
		for (k = 0; all[k] != refs[i]; k++)
			;
		snprintf(want, sizeof(want), "page %u", k);
		ck_assert_str_eq((char *)pg_cache_addr(c, idx[i]), want);
	}
}

/* Teardown of a test's cache: every mapping unmapped, once; then the
 * guest can revoke its @n pages at @g (it cannot while one is mapped). */
static void t_done(struct pg_cache *c, char *g, unsigned int n)
{
	pg_cache_destroy(c);
	ck_assert_uint_eq(c->unmaps, c->maps);
	ck_assert_int_eq(pvio_gnt_unshare(u, g, n), 0);
}

/* no request holds the page at @idx (nor any page mapped with it) */
static void t_unused(struct pg_cache *c, uint32_t idx)
{
	ck_assert_uint_eq(c->ents[c->ents[idx].head - 1].refs, 0);
}

START_TEST(t_new_request_is_one_range)
{
	struct pg_cache c;
	pvio_gref_t refs[32];
	uint32_t idx[32], idx2[32];
	char *g = t_share(32, true, refs);
	char *base;
	unsigned int k;

	t_cache(&c, 64);
	ck_assert_int_eq(pg_cache_get(&c, 32, refs, true, idx), 0);
	base = pg_cache_addr(&c, idx[0]);
	for (k = 0; k < 32; k++)
		ck_assert_ptr_eq(pg_cache_addr(&c, idx[k]),
				 base + (size_t)k * PVIO_PAGE_SIZE);
	ck_assert_uint_eq(c.map_calls, 1);
	ck_assert_uint_eq(c.maps, 32);
	t_check_pages(&c, 32, idx, refs, refs);
	/* writable: the backend's read lands in the guest's page */
	strcpy(base + 5 * PVIO_PAGE_SIZE, "from dom0");
	ck_assert_str_eq(g + 5 * PVIO_PAGE_SIZE, "from dom0");
	/* the same request again: hits, the same range, no map call */
	t_put(&c, 32, idx);
	ck_assert_int_eq(pg_cache_get(&c, 32, refs, false, idx2), 0);
	ck_assert_mem_eq(idx, idx2, sizeof(idx));
	ck_assert_uint_eq(c.map_calls, 1);
	ck_assert_uint_eq(c.hits, 32);
	t_put(&c, 32, idx2);
	ck_assert_uint_eq(c.maps, 32);
	t_done(&c, g, 32);
}
END_TEST

/* Old pages and new ones in one request: the new ones are one mapping. */
START_TEST(t_mixed_hits_and_new)
{
	struct pg_cache c;
	pvio_gref_t refs[8], req[6];
	uint32_t idx[6];
	char *g = t_share(8, true, refs);

	t_cache(&c, 64);
	ck_assert_int_eq(pg_cache_get(&c, 2, &refs[2], true, idx), 0);
	t_put(&c, 2, idx);
	/* 0 1 [2 3] 4 5: four new pages, mapped together in order */
	memcpy(req, refs, sizeof(req));
	ck_assert_int_eq(pg_cache_get(&c, 6, req, true, idx), 0);
	ck_assert_uint_eq(c.map_calls, 2);
	ck_assert_uint_eq(c.hits, 2);
	ck_assert_ptr_eq(pg_cache_addr(&c, idx[1]),
			 (char *)pg_cache_addr(&c, idx[0]) + PVIO_PAGE_SIZE);
	ck_assert_ptr_eq(pg_cache_addr(&c, idx[4]),
			 (char *)pg_cache_addr(&c, idx[1]) + PVIO_PAGE_SIZE);
	t_check_pages(&c, 6, idx, req, refs);
	t_put(&c, 6, idx);
	t_done(&c, g, 8);
}
END_TEST

/* A gref twice in a request (a guest may): one page, two uses. */
START_TEST(t_same_gref_twice)
{
	struct pg_cache c;
	pvio_gref_t refs[5], req[5];
	uint32_t idx[5], more[2];
	char *g = t_share(5, true, refs);

	t_cache(&c, 4);
	req[0] = refs[0];
	req[1] = refs[1];
	req[2] = refs[0];
	req[3] = refs[2];
	req[4] = refs[0];
	ck_assert_int_eq(pg_cache_get(&c, 5, req, true, idx), 0);
	ck_assert_uint_eq(c.maps, 3);
	ck_assert_uint_eq(idx[0], idx[2]);
	ck_assert_uint_eq(idx[0], idx[4]);
	t_check_pages(&c, 5, idx, req, refs);
	/* four puts of five: still in use, so not evicted for two more */
	t_put(&c, 4, idx + 1);
	ck_assert_int_eq(pg_cache_get(&c, 2, &refs[3], true, more), -ENOSPC);
	ck_assert_uint_eq(c.unmaps, 0);
	/* the fifth: evictable, and the cache has room again */
	pg_cache_put(&c, idx[0]);
	t_unused(&c, idx[0]);
	pg_cache_pass(&c, 64);
	ck_assert_int_eq(pg_cache_get(&c, 2, &refs[3], true, more), 0);
	ck_assert_uint_eq(c.unmaps, 3);
	t_put(&c, 2, more);
	t_done(&c, g, 5);
}
END_TEST

/*
 * Full: the least recently used mapping no request uses goes, whole (a
 * mapping is unmapped whole, as gntdev requires); one whose page is still
 * in use stays, however old.
 */
START_TEST(t_evicts_whole_unused_mappings)
{
	struct pg_cache c;
	pvio_gref_t refs[12];
	uint32_t a[4], b[4], n[4], one;
	char *g = t_share(12, true, refs);

	t_cache(&c, 8);
	ck_assert_int_eq(pg_cache_get(&c, 4, refs, true, a), 0);
	ck_assert_int_eq(pg_cache_get(&c, 4, refs + 4, true, b), 0);
	t_put(&c, 4, a);
	t_put(&c, 4, b);
	/* A (older) has a page in use again: B is the one to go */
	ck_assert_int_eq(pg_cache_get(&c, 1, &refs[2], true, &one), 0);
	ck_assert_int_eq(pg_cache_get(&c, 4, refs + 8, true, n), 0);
	ck_assert_uint_eq(c.unmaps, 4);
	ck_assert_uint_eq(c.used, 8);
	t_check_pages(&c, 4, n, refs + 8, refs);
	/* A is all there still: hits */
	ck_assert_int_eq(pg_cache_get(&c, 4, refs, true, a), 0);
	ck_assert_uint_eq(c.map_calls, 3);
	t_check_pages(&c, 4, a, refs, refs);
	/* everything in use: nothing more fits */
	ck_assert_int_eq(pg_cache_get(&c, 1, &refs[4], true, b), -ENOSPC);
	ck_assert_uint_eq(c.refused, 1);
	t_put(&c, 4, a);
	pg_cache_put(&c, one);
	t_put(&c, 4, n);
	t_done(&c, g, 12);
}
END_TEST

/*
 * The pass's budget: a request with more new pages than it allows is
 * refused (it goes the copy way) and nothing of it is mapped, unless it is
 * the pass's first to map: then all its pages are, as one range, so that a
 * request larger than the budget is never mapped in pieces.
 */
START_TEST(t_budget)
{
	struct pg_cache c;
	pvio_gref_t refs[13];
	uint32_t idx[13], first;
	char *g = t_share(13, true, refs);
	unsigned int k;

	t_cache(&c, 32);
	pg_cache_pass(&c, 4);
	ck_assert_int_eq(pg_cache_get(&c, 6, refs, true, idx), 0);
	ck_assert_uint_eq(c.maps, 6);
	ck_assert_uint_eq(c.map_calls, 1);
	for (k = 1; k < 6; k++)
		ck_assert_ptr_eq(pg_cache_addr(&c, idx[k]),
				 (char *)pg_cache_addr(&c, idx[0]) +
				 k * PVIO_PAGE_SIZE);
	t_check_pages(&c, 6, idx, refs, refs);
	t_put(&c, 6, idx);
	/* that spent the pass's budget */
	ck_assert_uint_eq(c.maps_left, 0);
	ck_assert_int_eq(pg_cache_get(&c, 1, refs + 6, true, idx), -ENOSPC);
	ck_assert_uint_eq(c.refused, 1);

	/* not the pass's first: refused, and nothing of it mapped */
	pg_cache_pass(&c, 4);
	ck_assert_int_eq(pg_cache_get(&c, 1, refs + 6, true, &first), 0);
	ck_assert_int_eq(pg_cache_get(&c, 6, refs + 7, true, idx), -ENOSPC);
	ck_assert_uint_eq(c.maps, 7);
	ck_assert_uint_eq(c.refused, 2);
	pg_cache_put(&c, first);
	/* hits cost no budget: the next pass's first map is still whole */
	pg_cache_pass(&c, 4);
	ck_assert_int_eq(pg_cache_get(&c, 6, refs, true, idx), 0);
	t_put(&c, 6, idx);
	ck_assert_int_eq(pg_cache_get(&c, 6, refs + 7, true, idx), 0);
	ck_assert_uint_eq(c.maps, 13);
	ck_assert_uint_eq(c.map_calls, 3);
	t_check_pages(&c, 6, idx, refs + 7, refs);
	t_put(&c, 6, idx);
	t_done(&c, g, 13);
}
END_TEST

/* Read-only grants serve the backend's reads of them, not its writes. */
START_TEST(t_read_only)
{
	struct pg_cache c;
	pvio_gref_t refs[3];
	uint32_t idx[3];
	char *g = t_share(3, false, refs);

	t_cache(&c, 8);
	ck_assert_int_eq(pg_cache_get(&c, 3, refs, true, idx), -EPERM);
	ck_assert_uint_eq(c.maps, 0);
	ck_assert_int_eq(pg_cache_get(&c, 3, refs, false, idx), 0);
	t_check_pages(&c, 3, idx, refs, refs);
	t_put(&c, 3, idx);
	/* mapped read-only now: a write into one is refused, holding none */
	ck_assert_int_eq(pg_cache_get(&c, 2, refs + 1, true, idx), -EPERM);
	t_unused(&c, idx[0]);
	ck_assert_uint_eq(c.maps, 3);
	t_done(&c, g, 3);
}
END_TEST

/*
 * Nothing is evicted for a request that cannot fit, or whose map fails:
 * the cache is not emptied for nothing (a guest keeping pages in use, or
 * sending a bad gref, would have had every unused mapping unmapped each
 * pass).
 */
START_TEST(t_no_eviction_in_vain)
{
	struct pg_cache c;
	pvio_gref_t refs[16], req[4];
	uint32_t a[4], b[4], n[5];
	char *g = t_share(16, true, refs);

	t_cache(&c, 8);
	ck_assert_int_eq(pg_cache_get(&c, 4, refs, true, a), 0);
	t_put(&c, 4, a);			/* A: unused */
	ck_assert_int_eq(pg_cache_get(&c, 4, refs + 4, true, b), 0);	/* B: in use */
	/* five new pages: A's four would not make room */
	ck_assert_int_eq(pg_cache_get(&c, 5, refs + 8, true, n), -ENOSPC);
	ck_assert_uint_eq(c.unmaps, 0);
	/* a bad gref among new pages: the map fails, A stays */
	memcpy(req, refs + 8, 3 * sizeof(*req));
	req[3] = 100000;
	ck_assert_int_eq(pg_cache_get(&c, 4, req, true, n), -EINVAL);
	ck_assert_uint_eq(c.unmaps, 0);
	ck_assert_int_eq(pg_cache_get(&c, 4, refs, true, a), 0);
	ck_assert_uint_eq(c.hits, 4);
	t_put(&c, 4, a);
	/* four new ones do fit: A goes, whole */
	ck_assert_int_eq(pg_cache_get(&c, 4, refs + 8, true, n), 0);
	ck_assert_uint_eq(c.unmaps, 4);
	t_check_pages(&c, 4, n, refs + 8, refs);
	t_put(&c, 4, n);
	t_put(&c, 4, b);
	t_done(&c, g, 16);
}
END_TEST

/* A read-only grant among a request's new pages: only it is read-only. */
START_TEST(t_read_only_among_new)
{
	struct pg_cache c;
	pvio_gref_t rw[2], ro, req[3];
	uint32_t idx[3], one;
	char *g = t_share(2, true, rw), *h = NULL;

	ck_assert_int_eq(pvio_gnt_share(u, 0, 1, false, &ro, (void **)&h), 0);
	strcpy(h, "read-only");
	t_cache(&c, 8);
	req[0] = rw[0];
	req[1] = ro;
	req[2] = rw[1];
	/* the guest writes: pvio-backd reads its pages */
	ck_assert_int_eq(pg_cache_get(&c, 3, req, false, idx), 0);
	ck_assert_str_eq((char *)pg_cache_addr(&c, idx[1]), "read-only");
	/* three pages from the pass's budget, once: the refused writable
	 * attempt and the page-by-page maps are one request's pages (it paid
	 * them twice) */
	ck_assert_uint_eq(c.maps_left, 64 - 3);
	t_put(&c, 3, idx);
	/* the guest reads into a writable one of them: mapped writable */
	ck_assert_int_eq(pg_cache_get(&c, 1, &rw[1], true, &one), 0);
	strcpy(pg_cache_addr(&c, one), "written");
	ck_assert_str_eq(g + PVIO_PAGE_SIZE, "written");
	pg_cache_put(&c, one);
	ck_assert_int_eq(pg_cache_get(&c, 1, &ro, true, &one), -EPERM);
	t_done(&c, g, 2);
	ck_assert_int_eq(pvio_gnt_unshare(u, h, 1), 0);
}
END_TEST

/* A bad gref among good ones: nothing mapped, nothing held. */
START_TEST(t_bad_gref)
{
	struct pg_cache c;
	pvio_gref_t refs[4], req[3];
	uint32_t idx[4];
	char *g = t_share(4, true, refs);

	t_cache(&c, 4);
	req[0] = refs[0];	/* a hit, held, then let go */
	req[1] = refs[1];
	req[2] = 100000;
	ck_assert_int_eq(pg_cache_get(&c, 1, refs, true, idx), 0);
	pg_cache_put(&c, idx[0]);
	ck_assert_int_eq(pg_cache_get(&c, 3, req, true, idx + 1), -EINVAL);
	ck_assert_uint_eq(c.maps, 1);
	t_unused(&c, idx[0]);
	/* the failed map paid from the pass's budget like any other: a
	 * guest's bad grefs buy no fresh budget for each request */
	pg_cache_pass(&c, 2);
	req[0] = 100000;
	req[1] = 100001;
	ck_assert_int_eq(pg_cache_get(&c, 2, req, true, idx), -EINVAL);
	ck_assert_int_eq(pg_cache_get(&c, 1, refs + 2, true, idx), -ENOSPC);
	t_done(&c, g, 4);
}
END_TEST

static Suite *pgrant_suite(void)
{
	Suite *s = suite_create("pgrant");
	TCase *tc = tcase_create("cache");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, t_new_request_is_one_range);
	tcase_add_test(tc, t_mixed_hits_and_new);
	tcase_add_test(tc, t_same_gref_twice);
	tcase_add_test(tc, t_evicts_whole_unused_mappings);
	tcase_add_test(tc, t_budget);
	tcase_add_test(tc, t_read_only);
	tcase_add_test(tc, t_bad_gref);
	tcase_add_test(tc, t_no_eviction_in_vain);
	tcase_add_test(tc, t_read_only_among_new);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return t_run_suite(pgrant_suite(), false);
}
