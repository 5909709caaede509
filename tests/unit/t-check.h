/* SPDX-License-Identifier: MIT */
/* What every Check unit test's main() ends with. */
#ifndef PVIO_TESTS_T_CHECK_H
#define PVIO_TESTS_T_CHECK_H

#include <check.h>
#include <stdbool.h>

/*
 * Run @s and free it: the exit status (0: every test passed). @fork: each
 * test in a process of its own even under CK_FORK=no (tests that crash a
 * frontend or leave state behind on purpose).
 */
static inline int t_run_suite(Suite *s, bool fork)
{
	SRunner *sr = srunner_create(s);
	int failed;

	if (fork)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

#endif
