// SPDX-License-Identifier: MIT
/*
 * Unit tests of the xenstore value parser behind pvio_xs_read_uint():
 * strictly "decimal, or 0x hex", every value a guest may write into a
 * frontend key. strtoul's leniencies (a sign, white space, also after the
 * "0x") are refused.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>

#include <pvio/xenbus.h>

#include "t-check.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
	const char *s;
	unsigned long v;
} good[] = {
	{ "0", 0 }, { "4", 4 }, { "007", 7 }, { "4294967295", 4294967295ul },
	{ "0x0", 0 }, { "0x1f", 31 }, { "0X1F", 31 }, { "0xdeadBEEF", 0xdeadbeef },
	{ "18446744073709551615", ULONG_MAX },
	{ "0xffffffffffffffff", ULONG_MAX }, { "0x000000000000000000001ff", 0x1ff },
};

static const char *const bad[] = {
	"", "0x", "0X", "x1", "0x+1", "0x 1", "0x-1", "0x\t1", "\t4", " 4",
	"4 ", "4\n", "+4", "-4", "- 4", "+0x4", "1e3", "0b1", "0o7", "4k",
	"0xg", "12a", "0x1 ", "\n", " ", "0xx1", "1.0",
};

static const char *const too_big[] = {
	"18446744073709551616", "99999999999999999999999",
	"0x10000000000000000", "0x1ffffffffffffffff",
};

START_TEST(test_good)
{
	unsigned long v = 12345;

	ck_assert_int_eq(pvio_xs_parse_uint(good[_i].s, 0, ULONG_MAX, &v), 0);
	ck_assert_uint_eq(v, good[_i].v);
}
END_TEST

START_TEST(test_bad)
{
	unsigned long v = 12345;

	ck_assert_msg(pvio_xs_parse_uint(bad[_i], 0, ULONG_MAX, &v) == -EINVAL,
		      "'%s' accepted", bad[_i]);
	ck_assert_uint_eq(v, 12345);
}
END_TEST

START_TEST(test_overflow)
{
	unsigned long v = 12345;

	ck_assert_int_eq(pvio_xs_parse_uint(too_big[_i], 0, ULONG_MAX, &v),
			 -ERANGE);
	ck_assert_uint_eq(v, 12345);
}
END_TEST

START_TEST(test_range)
{
	unsigned long v = 12345;

	ck_assert_int_eq(pvio_xs_parse_uint("3", 4, 8, &v), -ERANGE);
	ck_assert_int_eq(pvio_xs_parse_uint("9", 4, 8, &v), -ERANGE);
	ck_assert_int_eq(pvio_xs_parse_uint("0x9", 4, 8, &v), -ERANGE);
	ck_assert_uint_eq(v, 12345);
	ck_assert_int_eq(pvio_xs_parse_uint("0x8", 4, 8, &v), 0);
	ck_assert_uint_eq(v, 8);
	ck_assert_int_eq(pvio_xs_parse_uint("4", 4, 8, &v), 0);
	ck_assert_uint_eq(v, 4);
	/* garbage after an overflow is garbage, not a range error */
	ck_assert_int_eq(pvio_xs_parse_uint("99999999999999999999x", 0,
					    ULONG_MAX, &v), -EINVAL);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("xs-value");
	TCase *tc = tcase_create("parse-uint");

	tcase_add_loop_test(tc, test_good, 0, ARRAY_SIZE(good));
	tcase_add_loop_test(tc, test_bad, 0, ARRAY_SIZE(bad));
	tcase_add_loop_test(tc, test_overflow, 0, ARRAY_SIZE(too_big));
	tcase_add_test(tc, test_range);
	suite_add_tcase(su, tc);
	return t_run_suite(su, false);
}
