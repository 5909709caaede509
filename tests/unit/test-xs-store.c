// SPDX-License-Identifier: MIT
/*
 * Unit tests of the sim world's xenstore engine (sim/xs-store.c):
 * paths, Xen's permission rules, node operations, transactions, watches,
 * quotas, domain introduction and release, and a randomised run that
 * checks the tree's consistency after every operation.
 *
 * Every test starts from the engine's initial tree plus domains 5 and 6
 * set up as libxl does: /local/domain/N readable by N ("n0 rN") and
 * /local/domain/N/data owned by N ("nN").
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xen/io/xs_wire.h>

#include "xs-store.h"
#include "t-check.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static struct xs_store *s;
static struct xs_conn *c0, *c5, *c6;

/* ---- helpers ------------------------------------------------------------- */

/* "n0 r5" -> "n0\0r5\0" */
static unsigned int t_perm_str(const char *spaced, char *buf, size_t size)
{
	size_t len = strlen(spaced) + 1, i;

	ck_assert_uint_lt(len, size);
	memcpy(buf, spaced, len);
	for (i = 0; i < len; i++)
		if (buf[i] == ' ')
			buf[i] = 0;
	return (unsigned int)len;
}

static int t_set_perms(struct xs_conn *c, uint32_t tx, const char *path,
		       const char *spaced)
{
	char buf[256];
	unsigned int len = t_perm_str(spaced, buf, sizeof(buf));

	return pvio__xs_set_perms(c, tx, path, buf, len);
}

static void t_perms_are(struct xs_conn *c, const char *path,
			const char *spaced)
{
	char want[256], *got;
	unsigned int wlen = t_perm_str(spaced, want, sizeof(want)), len;

	ck_assert_int_eq(pvio__xs_get_perms(c, 0, path, &got, &len), 0);
	ck_assert_uint_eq(len, wlen);
	ck_assert_mem_eq(got, want, len);
	free(got);
}

static void t_write(struct xs_conn *c, uint32_t tx, const char *path,
		    const char *val)
{
	ck_assert_int_eq(pvio__xs_write(c, tx, path, val, strlen(val)), 0);
}

static int t_read(struct xs_conn *c, uint32_t tx, const char *path,
		  const char *want)
{
	unsigned int len;
	char *v;
	int rc = pvio__xs_read(c, tx, path, &v, &len);

	if (rc)
		return rc;
	ck_assert_str_eq(v, want);
	ck_assert_uint_eq(len, strlen(want));
	free(v);
	return 0;
}

static void t_dir_is(struct xs_conn *c, const char *path, const char *want,
		     unsigned int wlen)
{
	unsigned int len;
	char *v;

	ck_assert_int_eq(pvio__xs_directory(c, 0, path, &v, &len), 0);
	ck_assert_uint_eq(len, wlen);
	if (len)
		ck_assert_mem_eq(v, want, len);
	free(v);
}

static void t_event_is(struct xs_conn *c, const char *path,
		       const char *token)
{
	unsigned int len;
	char *m;

	ck_assert_int_eq(pvio__xs_event_pop(c, &m, &len), 0);
	ck_assert_str_eq(m, path);
	ck_assert_str_eq(m + strlen(m) + 1, token);
	ck_assert_uint_eq(len, strlen(path) + strlen(token) + 2);
	free(m);
}

static void t_no_event(struct xs_conn *c)
{
	unsigned int len;
	char *m = NULL;

	ck_assert_int_eq(pvio__xs_event_pop(c, &m, &len), -EAGAIN);
}

static void t_drain(struct xs_conn *c)
{
	unsigned int len;
	char *m;

	while (pvio__xs_event_pop(c, &m, &len) == 0)
		free(m);
	pvio__xs_events_dropped(c);
}

/* A guest as libxl makes one. */
static void t_domain(unsigned int domid)
{
	char path[64], perms[16];

	snprintf(path, sizeof(path), "/local/domain/%u", domid);
	t_write(c0, 0, path, "");
	snprintf(perms, sizeof(perms), "n0 r%u", domid);
	ck_assert_int_eq(t_set_perms(c0, 0, path, perms), 0);
	snprintf(path, sizeof(path), "/local/domain/%u/data", domid);
	t_write(c0, 0, path, "");
	snprintf(perms, sizeof(perms), "n%u", domid);
	ck_assert_int_eq(t_set_perms(c0, 0, path, perms), 0);
	ck_assert_int_eq(pvio__xs_domain_introduce(s, domid), 0);
}

static void t_world(const struct xs_limits *lim)
{
	ck_assert_int_eq(pvio__xs_store_new(&s, lim), 0);
	ck_assert_int_eq(pvio__xs_conn_new(s, 0, &c0), 0);
	ck_assert_int_eq(pvio__xs_domain_introduce(s, 0), 0);
	t_domain(5);
	t_domain(6);
	ck_assert_int_eq(pvio__xs_conn_new(s, 5, &c5), 0);
	ck_assert_int_eq(pvio__xs_conn_new(s, 6, &c6), 0);
}

static void setup(void)
{
	t_world(NULL);
}

static void teardown(void)
{
	pvio__xs_conn_free(c6);
	pvio__xs_conn_free(c5);
	pvio__xs_conn_free(c0);
	pvio__xs_store_free(s);
	s = NULL;
	c0 = c5 = c6 = NULL;
}

static void t_world_with(void (*tweak)(struct xs_limits *))
{
	struct xs_limits lim;

	teardown();
	pvio__xs_limits_default(&lim);
	tweak(&lim);
	t_world(&lim);
}

/* ---- the initial tree and paths ------------------------------------------ */

START_TEST(test_initial_tree)
{
	struct xs_store *fresh;
	struct xs_conn *c;

	ck_assert_int_eq(pvio__xs_store_new(&fresh, NULL), 0);
	ck_assert_uint_eq(pvio__xs_store_nodes(fresh), 5);
	ck_assert_int_eq(pvio__xs_conn_new(fresh, 0, &c), 0);
	t_dir_is(c, "/", "local\0tool", 11);
	t_dir_is(c, "/local", "domain", 7);
	t_dir_is(c, "/local/domain", "0", 2);
	t_dir_is(c, "/tool", "", 0);
	t_perms_are(c, "/", "n0");
	t_perms_are(c, "/local/domain/0", "n0");
	ck_assert(!pvio__xs_domain_introduced(fresh, 0));
	pvio__xs_conn_free(c);
	pvio__xs_store_free(fresh);
}
END_TEST

static const char *const bad_paths[] = {
	"", "/a/", "//a", "/a//b", "/a b", "/a\x01", "/a.b", "/local/domain/5/",
	"data/", "/tool/\xc3\xa9",
};

START_TEST(test_invalid_paths)
{
	const char *p = bad_paths[_i];
	unsigned int len;
	char *v;

	ck_assert_int_eq(pvio__xs_write(c0, 0, p, "x", 1), -EINVAL);
	ck_assert_int_eq(pvio__xs_read(c0, 0, p, &v, &len), -EINVAL);
	ck_assert_int_eq(pvio__xs_mkdir(c5, 0, p), -EINVAL);
	ck_assert_int_eq(pvio__xs_rm(c0, 0, p), -EINVAL);
	ck_assert_int_eq(pvio__xs_directory(c5, 0, p, &v, &len), -EINVAL);
	ck_assert_int_eq(pvio__xs_watch(c0, p, "t"), -EINVAL);
}
END_TEST

START_TEST(test_path_lengths)
{
	char *p = malloc(XENSTORE_ABS_PATH_MAX + 2);
	size_t pre;

	/* dom0: up to XENSTORE_ABS_PATH_MAX bytes */
	memset(p, 'a', XENSTORE_ABS_PATH_MAX + 1);
	p[0] = '/';
	p[XENSTORE_ABS_PATH_MAX] = 0;
	ck_assert_int_eq(pvio__xs_write(c0, 0, p, "", 0), 0);
	p[XENSTORE_ABS_PATH_MAX] = 'a';
	p[XENSTORE_ABS_PATH_MAX + 1] = 0;
	ck_assert_int_eq(pvio__xs_write(c0, 0, p, "", 0), -EINVAL);
	/* a guest: XENSTORE_REL_PATH_MAX beyond its /local/domain/5/ */
	pre = strlen("/local/domain/5/");
	memcpy(p, "/local/domain/5/data/", strlen("/local/domain/5/data/"));
	p[pre + XENSTORE_REL_PATH_MAX] = 0;
	ck_assert_int_eq(pvio__xs_write(c5, 0, p, "", 0), 0);
	p[pre + XENSTORE_REL_PATH_MAX] = 'a';
	p[pre + XENSTORE_REL_PATH_MAX + 1] = 0;
	ck_assert_int_eq(pvio__xs_write(c5, 0, p, "", 0), -EINVAL);
	free(p);
}
END_TEST

START_TEST(test_relative_paths)
{
	char buf[32];

	t_write(c5, 0, "data/rel", "r");
	ck_assert_int_eq(t_read(c0, 0, "/local/domain/5/data/rel", "r"), 0);
	ck_assert_int_eq(t_read(c5, 0, "data/rel", "r"), 0);
	/* dom0's relative paths are under /local/domain/0 */
	t_write(c0, 0, "x", "0");
	ck_assert_int_eq(t_read(c0, 0, "/local/domain/0/x", "0"), 0);
	/* a relative watch reports relative paths */
	ck_assert_int_eq(pvio__xs_watch(c5, "data", "tok"), 0);
	t_event_is(c5, "data", "tok");
	t_write(c0, 0, "/local/domain/5/data/rel", "s");
	t_event_is(c5, "data/rel", "tok");
	ck_assert_int_eq(pvio__xs_unwatch(c5, "/local/domain/5/data", "tok"),
			 0);
	ck_assert_int_eq(pvio__xs_domain_path(5, buf, sizeof(buf)), 15);
	ck_assert_str_eq(buf, "/local/domain/5");
	ck_assert_int_eq(pvio__xs_domain_path(65535, buf, 8), -ENOSPC);
}
END_TEST

/* ---- permissions --------------------------------------------------------- */

START_TEST(test_domu_confined)
{
	unsigned int len;
	char *v;

	/* dom0's area, another guest's, the tools' */
	ck_assert_int_eq(pvio__xs_read(c5, 0, "/local/domain/0", &v, &len),
			 -EACCES);
	ck_assert_int_eq(pvio__xs_write(c5, 0, "/local/domain/0/x", "1", 1),
			 -EACCES);
	ck_assert_int_eq(pvio__xs_read(c5, 0, "/local/domain/6", &v, &len),
			 -EACCES);
	ck_assert_int_eq(pvio__xs_read(c5, 0, "/local/domain/6/data", &v,
				       &len), -EACCES);
	ck_assert_int_eq(pvio__xs_write(c5, 0, "/local/domain/6/data/x", "1",
					1), -EACCES);
	ck_assert_int_eq(pvio__xs_mkdir(c5, 0, "/tool/x"), -EACCES);
	ck_assert_int_eq(pvio__xs_rm(c5, 0, "/local/domain/6/data"), -EACCES);
	ck_assert_int_eq(pvio__xs_rm(c5, 0, "/"), -EACCES);
	ck_assert_int_eq(pvio__xs_directory(c5, 0, "/local/domain", &v, &len),
			 -EACCES);
	/* a missing node tells nothing where the guest may not look... */
	ck_assert_int_eq(pvio__xs_read(c5, 0, "/local/domain/6/data/nope", &v,
				       &len), -EACCES);
	/* ...but is plainly missing where it may */
	ck_assert_int_eq(pvio__xs_read(c5, 0, "data/nope", &v, &len),
			 -ENOENT);
	/* its own directory is read-only to it, its data is its own */
	ck_assert_int_eq(t_read(c5, 0, "/local/domain/5", ""), 0);
	ck_assert_int_eq(pvio__xs_write(c5, 0, "/local/domain/5", "x", 1),
			 -EACCES);
	ck_assert_int_eq(pvio__xs_write(c5, 0, "name", "x", 1), -EACCES);
	t_write(c5, 0, "data/mine", "ok");
}
END_TEST

static const struct {
	const char *perms;
	int read, write;	/* expected for domain 5 */
} perm_cases[] = {
	{ "n0", -EACCES, -EACCES },
	{ "r0", 0, -EACCES },
	{ "w0", -EACCES, 0 },
	{ "b0", 0, 0 },
	{ "n5", 0, 0 },			/* the owner has full access */
	{ "n0 r5", 0, -EACCES },
	{ "n0 w5", -EACCES, 0 },
	{ "n0 b5", 0, 0 },
	{ "b0 n5", -EACCES, -EACCES },	/* a specific entry overrides */
	{ "r0 w5", -EACCES, 0 },
	{ "n0 r6", -EACCES, -EACCES },
	{ "n0 r5 w5", 0, -EACCES },	/* the first match counts */
	{ "n6 b5", 0, 0 },
	{ "b6 n6 n7", 0, 0 },
};

START_TEST(test_perm_entries)
{
	ck_assert_int_eq(pvio__xs_write(c0, 0, "/test/node", "v", 1), 0);
	ck_assert_int_eq(t_set_perms(c0, 0, "/test/node", perm_cases[_i].perms),
			 0);
	ck_assert_int_eq(t_read(c5, 0, "/test/node", "v"),
			 perm_cases[_i].read);
	ck_assert_int_eq(pvio__xs_write(c5, 0, "/test/node", "v", 1),
			 perm_cases[_i].write);
	/* dom0 bypasses them all */
	ck_assert_int_eq(t_read(c0, 0, "/test/node", "v"), 0);
	ck_assert_int_eq(pvio__xs_write(c0, 0, "/test/node", "v", 1), 0);
}
END_TEST

START_TEST(test_set_perms_owner_only)
{
	t_write(c0, 0, "/test/n", "");
	ck_assert_int_eq(t_set_perms(c0, 0, "/test/n", "n5 b6"), 0);
	/* dom6 may read and write, but it does not own the node */
	ck_assert_int_eq(t_set_perms(c6, 0, "/test/n", "n5 b6 r7"), -EACCES);
	ck_assert_int_eq(t_set_perms(c5, 0, "/test/n", "n5 r6"), 0);
	t_perms_are(c5, "/test/n", "n5 r6");
	/* an unprivileged owner keeps what it owns */
	ck_assert_int_eq(t_set_perms(c5, 0, "/test/n", "n6"), -EPERM);
	/* dom0 may give it away */
	ck_assert_int_eq(t_set_perms(c0, 0, "/test/n", "n6"), 0);
	t_perms_are(c6, "/test/n", "n6");
	ck_assert_int_eq(t_set_perms(c5, 0, "/test/n", "n5"), -EACCES);
}
END_TEST

static const char *const bad_perms[] = {
	"x5", "r", "5", "r-1", "r+1", "r65536", "r5a", "r123456", "R5",
};

START_TEST(test_set_perms_invalid)
{
	char buf[16];

	t_write(c5, 0, "data/p", "");
	ck_assert_int_eq(t_set_perms(c5, 0, "data/p", bad_perms[_i]), -EINVAL);
	/* without the terminating NUL */
	snprintf(buf, sizeof(buf), "n5");
	ck_assert_int_eq(pvio__xs_set_perms(c5, 0, "data/p", buf, 2), -EINVAL);
	ck_assert_int_eq(pvio__xs_set_perms(c5, 0, "data/p", buf, 0), -EINVAL);
	t_perms_are(c5, "data/p", "n5");
}
END_TEST

START_TEST(test_inheritance)
{
	/* dom0 creates: children copy the parent's list, owner and all */
	t_write(c0, 0, "/test/a", "");
	ck_assert_int_eq(t_set_perms(c0, 0, "/test/a", "n0 r5"), 0);
	t_write(c0, 0, "/test/a/b/c", "v");
	t_perms_are(c0, "/test/a/b", "n0 r5");
	t_perms_are(c0, "/test/a/b/c", "n0 r5");
	/* a guest creates: it becomes the owner, the rest is inherited */
	ck_assert_int_eq(t_set_perms(c0, 0, "/local/domain/5/data",
				     "n5 r6"), 0);
	t_write(c5, 0, "data/x/y", "v");
	t_perms_are(c0, "/local/domain/5/data/x", "n5 r6");
	t_perms_are(c0, "/local/domain/5/data/x/y", "n5 r6");
	t_write(c0, 0, "/test/shared", "");
	ck_assert_int_eq(t_set_perms(c0, 0, "/test/shared", "n0 b5"), 0);
	t_write(c5, 0, "/test/shared/new", "v");
	t_perms_are(c0, "/test/shared/new", "n5 b5");
	/* dom0 writing into a guest's node leaves the guest its owner */
	t_write(c0, 0, "/local/domain/5/data/by0", "v");
	t_perms_are(c0, "/local/domain/5/data/by0", "n5 r6");
}
END_TEST

START_TEST(test_special_perms)
{
	char *v;
	unsigned int len;

	t_perms_are(c0, "@releaseDomain", "n0");
	t_perms_are(c0, "@introduceDomain", "n0");
	ck_assert_int_eq(pvio__xs_get_perms(c5, 0, "@releaseDomain", &v, &len),
			 -EACCES);
	ck_assert_int_eq(pvio__xs_get_perms(c0, 0, "@nope", &v, &len),
			 -ENOENT);
	ck_assert_int_eq(t_set_perms(c5, 0, "@releaseDomain", "n5"), -EACCES);
	ck_assert_int_eq(t_set_perms(c0, 0, "@releaseDomain", "n0 r5"), 0);
	t_perms_are(c5, "@releaseDomain", "n0 r5");
	ck_assert_int_eq(t_set_perms(c0, 0, "@nope", "n0"), -ENOENT);
	/* special paths are for watches and permissions only */
	ck_assert_int_eq(pvio__xs_write(c0, 0, "@releaseDomain", "x", 1),
			 -EINVAL);
}
END_TEST

/* ---- node operations ----------------------------------------------------- */

START_TEST(test_values)
{
	static const char bin[] = { 'a', 0, 'b', 0, (char)0xff };
	char *big = calloc(1, XENSTORE_PAYLOAD_MAX + 1), *v;
	unsigned int len;

	ck_assert_int_eq(pvio__xs_write(c5, 0, "data/bin", bin, sizeof(bin)),
			 0);
	ck_assert_int_eq(pvio__xs_read(c5, 0, "data/bin", &v, &len), 0);
	ck_assert_uint_eq(len, sizeof(bin));
	ck_assert_mem_eq(v, bin, sizeof(bin));
	ck_assert_int_eq(v[len], 0);
	free(v);
	ck_assert_int_eq(pvio__xs_write(c5, 0, "data/big", big,
					XENSTORE_PAYLOAD_MAX), 0);
	ck_assert_int_eq(pvio__xs_write(c5, 0, "data/big", big,
					XENSTORE_PAYLOAD_MAX + 1), -E2BIG);
	ck_assert_int_eq(pvio__xs_write(c0, 0, "/test/big", big,
					XENSTORE_PAYLOAD_MAX + 1), -E2BIG);
	/* an empty value */
	t_write(c5, 0, "data/bin", "");
	ck_assert_int_eq(t_read(c5, 0, "data/bin", ""), 0);
	free(big);
}
END_TEST

START_TEST(test_mkdir_rm_directory)
{
	unsigned int before = pvio__xs_store_nodes(s);

	t_write(c5, 0, "data/d/keep", "k");
	ck_assert_int_eq(pvio__xs_mkdir(c5, 0, "data/d"), 0); /* exists */
	ck_assert_int_eq(pvio__xs_mkdir(c5, 0, "data/e/f"), 0);
	ck_assert_int_eq(t_read(c5, 0, "data/e/f", ""), 0);
	t_write(c5, 0, "data/d/a", "");
	t_write(c5, 0, "data/d/b/c", "");
	t_dir_is(c5, "/local/domain/5/data/d", "keep\0a\0b", 9);
	ck_assert_int_eq(pvio__xs_rm(c5, 0, "data/d/a"), 0);
	t_dir_is(c5, "/local/domain/5/data/d", "keep\0b", 7);
	ck_assert_int_eq(pvio__xs_rm(c5, 0, "data/d"), 0);
	ck_assert_int_eq(t_read(c5, 0, "data/d/b/c", ""), -ENOENT);
	ck_assert_int_eq(t_read(c5, 0, "data/d", ""), -ENOENT);
	t_dir_is(c5, "/local/domain/5/data", "e", 2);
	/* removing what is missing is fine if the parent exists */
	ck_assert_int_eq(pvio__xs_rm(c5, 0, "data/d"), 0);
	ck_assert_int_eq(pvio__xs_rm(c5, 0, "data/d/x"), -ENOENT);
	ck_assert_int_eq(pvio__xs_rm(c0, 0, "/"), -EINVAL);
	ck_assert_int_eq(pvio__xs_rm(c0, 0, "/local/domain/5/data/e"), 0);
	ck_assert_uint_eq(pvio__xs_store_nodes(s), before);
}
END_TEST

/* Page through a directory the way libxenstore does. */
static unsigned int t_page(struct xs_conn *c, const char *path,
			   unsigned int max, char *all, size_t size,
			   char *gen)
{
	unsigned int off = 0, len, glen, n;
	char *part;

	for (;;) {
		ck_assert_int_eq(pvio__xs_directory_part(c, 0, path, off, max,
							 &part, &len), 0);
		ck_assert_uint_le(len, max);
		glen = (unsigned int)strlen(part) + 1;
		if (off == 0)
			strcpy(gen, part);
		ck_assert_str_eq(part, gen);
		n = len - glen;
		ck_assert_uint_le(off + n, size);
		memcpy(all + off, part + glen, n);
		free(part);
		off += n;
		if (off <= 1 || all[off - 2] == 0)
			break;
	}
	return off > 1 ? off - 1 : off;
}

START_TEST(test_directory_part)
{
	char want[512], all[512], gen[24], gen2[24], name[32], *part;
	unsigned int i, wlen = 0, len;

	for (i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "data/dir/child-%02u", i);
		t_write(c5, 0, name, "");
		wlen += (unsigned int)snprintf(want + wlen,
					       sizeof(want) - wlen,
					       "child-%02u", i) + 1;
	}
	/* 40 bytes per message: a few names at a time */
	ck_assert_uint_eq(t_page(c5, "data/dir", 40, all, sizeof(all), gen),
			  wlen);
	ck_assert_mem_eq(all, want, wlen);
	/* a new child changes the generation: clients start over */
	t_write(c5, 0, "data/dir/late", "");
	t_page(c5, "data/dir", 4096, all, sizeof(all), gen2);
	ck_assert_str_ne(gen, gen2);
	/* past the end: the generation and an empty list */
	ck_assert_int_eq(pvio__xs_directory_part(c5, 0, "data/dir", 9999,
						 4096, &part, &len), 0);
	ck_assert_uint_eq(len, strlen(part) + 2);
	ck_assert_int_eq(part[len - 1], 0);
	free(part);
	/* room for no name at all */
	ck_assert_int_eq(pvio__xs_directory_part(c5, 0, "data/dir", 0,
						 (unsigned int)strlen(gen2) + 4,
						 &part, &len), -E2BIG);
	ck_assert_int_eq(pvio__xs_directory_part(c6, 0,
						 "/local/domain/5/data/dir", 0,
						 4096, &part, &len), -EACCES);
}
END_TEST

/* ---- transactions -------------------------------------------------------- */

START_TEST(test_tx_commit_abort)
{
	uint32_t t;

	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	ck_assert_uint_ne(t, 0);
	t_write(c5, t, "data/a/b", "1");
	ck_assert_int_eq(t_read(c5, t, "data/a/b", "1"), 0);
	ck_assert_int_eq(t_read(c5, 0, "data/a/b", "1"), -ENOENT);
	ck_assert_int_eq(t_read(c0, 0, "/local/domain/5/data/a", ""), -ENOENT);
	ck_assert_int_eq(pvio__xs_tx_end(c5, t, true), 0);
	ck_assert_int_eq(t_read(c0, 0, "/local/domain/5/data/a/b", "1"), 0);
	t_perms_are(c0, "/local/domain/5/data/a/b", "n5");
	ck_assert_int_eq(pvio__xs_tx_end(c5, t, true), -ENOENT);

	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	t_write(c5, t, "data/c", "2");
	ck_assert_int_eq(pvio__xs_rm(c5, t, "data/a"), 0);
	ck_assert_int_eq(t_read(c5, t, "data/a/b", ""), -ENOENT);
	ck_assert_int_eq(pvio__xs_tx_end(c5, t, false), 0);
	ck_assert_int_eq(t_read(c5, 0, "data/a/b", "1"), 0);
	ck_assert_int_eq(t_read(c5, 0, "data/c", ""), -ENOENT);
}
END_TEST

START_TEST(test_tx_rm_and_create)
{
	unsigned int before;
	uint32_t t;

	t_write(c0, 0, "/test/tree/a/b", "");
	t_write(c0, 0, "/test/tree/c", "");
	before = pvio__xs_store_nodes(s);
	ck_assert_int_eq(pvio__xs_tx_start(c0, &t), 0);
	ck_assert_int_eq(pvio__xs_rm(c0, t, "/test/tree"), 0);
	ck_assert_int_eq(pvio__xs_mkdir(c0, t, "/test/tree/new"), 0);
	ck_assert_int_eq(pvio__xs_rm(c0, t, "/test/gone"), 0);
	t_write(c0, t, "/test/other/x", "x");
	ck_assert_int_eq(pvio__xs_tx_end(c0, t, true), 0);
	t_dir_is(c0, "/test/tree", "new", 4);
	ck_assert_int_eq(t_read(c0, 0, "/test/tree/a", ""), -ENOENT);
	ck_assert_int_eq(t_read(c0, 0, "/test/other/x", "x"), 0);
	/* -tree -a -a/b -c, +tree +new +other +other/x */
	ck_assert_uint_eq(pvio__xs_store_nodes(s), before);
}
END_TEST

/*
 * An unprivileged guest, five operations: the transaction's copy of the
 * parent still lists a child removed outside it; re-creating the child
 * inside must not list it twice (rm_tree collected it twice: a
 * use-after-free that killed pvio-simhv).
 */
START_TEST(test_tx_recreate_removed_child)
{
	uint32_t t;

	t_write(c5, 0, "data/p/c", "1");
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	t_write(c5, t, "data/p/x", "2");	/* the tx copies data/p */
	ck_assert_int_eq(pvio__xs_rm(c5, 0, "data/p/c"), 0);
	t_write(c5, t, "data/p/c", "3");
	{
		unsigned int len;
		char *v;

		/* listed once */
		ck_assert_int_eq(pvio__xs_directory(c5, t, "data/p", &v, &len),
				 0);
		ck_assert_uint_eq(len, 4);
		ck_assert_mem_eq(v, "c\0x", 4);
		free(v);
	}
	ck_assert_int_eq(pvio__xs_rm(c5, t, "data/p"), 0);
	ck_assert_int_eq(pvio__xs_tx_end(c5, t, true), -EAGAIN);
	ck_assert_int_eq(t_read(c5, 0, "data/p/c", ""), -ENOENT);
}
END_TEST

START_TEST(test_tx_conflicts)
{
	uint32_t t;

	/* a node read in the transaction changes */
	t_write(c0, 0, "/test/a", "1");
	ck_assert_int_eq(pvio__xs_tx_start(c0, &t), 0);
	ck_assert_int_eq(t_read(c0, t, "/test/a", "1"), 0);
	t_write(c5, 0, "data/unrelated", "");
	t_write(c0, 0, "/test/a", "2");
	t_write(c0, t, "/test/b", "stale");
	ck_assert_int_eq(pvio__xs_tx_end(c0, t, true), -EAGAIN);
	ck_assert_int_eq(t_read(c0, 0, "/test/b", ""), -ENOENT);

	/* ... is removed */
	ck_assert_int_eq(pvio__xs_tx_start(c0, &t), 0);
	ck_assert_int_eq(t_read(c0, t, "/test/a", "2"), 0);
	ck_assert_int_eq(pvio__xs_rm(c0, 0, "/test/a"), 0);
	t_write(c0, t, "/test/b", "stale");
	ck_assert_int_eq(pvio__xs_tx_end(c0, t, true), -EAGAIN);

	/* a node found missing appears */
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	ck_assert_int_eq(t_read(c5, t, "data/flag", ""), -ENOENT);
	t_write(c5, t, "data/mine", "m");
	t_write(c0, 0, "/local/domain/5/data/flag", "up");
	ck_assert_int_eq(pvio__xs_tx_end(c5, t, true), -EAGAIN);
	ck_assert_int_eq(t_read(c5, 0, "data/mine", ""), -ENOENT);

	/* a node written in the transaction changes */
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	t_write(c5, t, "data/flag", "mine");
	t_write(c6, 0, "/local/domain/6/data/x", "");	/* unrelated */
	ck_assert_int_eq(pvio__xs_tx_end(c5, t, true), 0);
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	t_write(c5, t, "data/flag", "again");
	t_write(c0, 0, "/local/domain/5/data/flag", "theirs");
	ck_assert_int_eq(pvio__xs_tx_end(c5, t, true), -EAGAIN);
	ck_assert_int_eq(t_read(c5, 0, "data/flag", "theirs"), 0);

	/* two transactions, each reading what the other writes */
	{
		uint32_t t1, t2;

		ck_assert_int_eq(pvio__xs_tx_start(c0, &t1), 0);
		ck_assert_int_eq(pvio__xs_tx_start(c0, &t2), 0);
		ck_assert_int_eq(t_read(c0, t1, "/local/domain/5/data/flag",
					"theirs"), 0);
		ck_assert_int_eq(t_read(c0, t2, "/test", ""), 0);
		t_write(c0, t1, "/test", "t1");
		t_write(c0, t2, "/local/domain/5/data/flag", "t2");
		ck_assert_int_eq(pvio__xs_tx_end(c0, t1, true), 0);
		ck_assert_int_eq(pvio__xs_tx_end(c0, t2, true), -EAGAIN);
	}
}
END_TEST

START_TEST(test_tx_ids)
{
	uint32_t t5, t6;
	unsigned int len;
	char *v;

	ck_assert_int_eq(pvio__xs_tx_start(c5, &t5), 0);
	ck_assert_int_eq(pvio__xs_tx_start(c6, &t6), 0);
	ck_assert_int_eq(pvio__xs_tx_check(c5, t5), 0);
	ck_assert_int_eq(pvio__xs_tx_check(c5, 0), 0);
	ck_assert_int_eq(pvio__xs_tx_check(c5, t5 + 100), -ENOENT);
	/* transaction ids belong to their connection */
	ck_assert_int_eq(pvio__xs_read(c5, t5 + 100, "data", &v, &len),
			 -ENOENT);
	ck_assert_int_eq(pvio__xs_tx_end(c6, t5 + 100, true), -ENOENT);
	ck_assert_int_eq(pvio__xs_tx_end(c5, 0, true), -ENOENT);
	pvio__xs_reset(c5);	/* XS_RESET_WATCHES ends them too */
	ck_assert_int_eq(pvio__xs_tx_check(c5, t5), -ENOENT);
	ck_assert_int_eq(pvio__xs_tx_end(c6, t6, false), 0);
}
END_TEST

START_TEST(test_tx_watches_fire_on_commit)
{
	uint32_t t;

	ck_assert_int_eq(pvio__xs_watch(c0, "/local/domain/5/data", "w"), 0);
	t_event_is(c0, "/local/domain/5/data", "w");
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	t_write(c5, t, "data/x", "1");
	t_no_event(c0);
	ck_assert_int_eq(pvio__xs_tx_end(c5, t, false), 0);
	t_no_event(c0);
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	t_write(c5, t, "data/x", "1");
	ck_assert_int_eq(pvio__xs_tx_end(c5, t, true), 0);
	t_event_is(c0, "/local/domain/5/data/x", "w");
	t_event_is(c0, "/local/domain/5/data", "w");	/* new child */
	t_no_event(c0);
}
END_TEST

/* ---- watches ------------------------------------------------------------- */

START_TEST(test_watch_basics)
{
	ck_assert_int_eq(pvio__xs_watch(c0, "/test", "t1"), 0);
	t_event_is(c0, "/test", "t1");	/* fired once up front */
	ck_assert_int_eq(pvio__xs_watch(c0, "/test", "t1"), -EEXIST);
	ck_assert_int_eq(pvio__xs_watch(c0, "/test", "t2"), 0);
	t_event_is(c0, "/test", "t2");
	t_write(c0, 0, "/test/a/b", "");
	t_event_is(c0, "/test/a/b", "t1");
	t_event_is(c0, "/test/a/b", "t2");
	t_write(c0, 0, "/testing", "");		/* not below /test */
	t_write(c0, 0, "/tool/x", "");
	t_no_event(c0);
	ck_assert_int_eq(pvio__xs_mkdir(c0, 0, "/test/a"), 0); /* exists */
	t_no_event(c0);
	ck_assert_int_eq(pvio__xs_unwatch(c0, "/test", "t2"), 0);
	ck_assert_int_eq(pvio__xs_unwatch(c0, "/test", "t2"), -ENOENT);
	ck_assert_int_eq(t_set_perms(c0, 0, "/test/a", "n0 r5"), 0);
	t_event_is(c0, "/test/a", "t1");
	pvio__xs_reset(c0);
	t_write(c0, 0, "/test/a", "");
	t_no_event(c0);
	ck_assert_int_eq(pvio__xs_watch(c0, "/", "all"), 0);
	t_event_is(c0, "/", "all");
	t_write(c0, 0, "/tool/y", "");
	t_event_is(c0, "/tool/y", "all");
}
END_TEST

START_TEST(test_watch_rm)
{
	t_write(c0, 0, "/test/a/b/c", "");
	ck_assert_int_eq(pvio__xs_watch(c0, "/test", "up"), 0);
	ck_assert_int_eq(pvio__xs_watch(c0, "/test/a/b", "in"), 0);
	ck_assert_int_eq(pvio__xs_watch(c0, "/test/a/zz", "none"), 0);
	t_drain(c0);
	ck_assert_int_eq(pvio__xs_rm(c0, 0, "/test/a"), 0);
	/* the removed node for its ancestors, each removed node for itself */
	t_event_is(c0, "/test/a", "up");
	t_event_is(c0, "/test/a/b", "in");
	t_no_event(c0);
}
END_TEST

START_TEST(test_watch_permissions)
{
	ck_assert_int_eq(pvio__xs_watch(c6, "/local/domain/5/data", "spy"), 0);
	t_event_is(c6, "/local/domain/5/data", "spy");	/* always */
	ck_assert_int_eq(pvio__xs_watch(c0, "/local/domain/5/data", "tool"), 0);
	t_drain(c0);
	t_write(c5, 0, "data/secret", "s");
	t_event_is(c0, "/local/domain/5/data/secret", "tool");
	t_no_event(c6);
	/* readable now: dom6 hears of the change */
	ck_assert_int_eq(t_set_perms(c5, 0, "data/secret", "n5 r6"), 0);
	t_event_is(c6, "/local/domain/5/data/secret", "spy");
	t_write(c5, 0, "data/secret", "t");
	t_event_is(c6, "/local/domain/5/data/secret", "spy");
	/* and of losing access, under the old permissions */
	ck_assert_int_eq(t_set_perms(c5, 0, "data/secret", "n5"), 0);
	t_event_is(c6, "/local/domain/5/data/secret", "spy");
	t_write(c5, 0, "data/secret", "u");
	t_no_event(c6);
	/* a readable parent is enough */
	ck_assert_int_eq(t_set_perms(c5, 0, "data", "n5 r6"), 0);
	t_drain(c6);
	t_write(c5, 0, "data/secret", "v");
	t_event_is(c6, "/local/domain/5/data/secret", "spy");
	/* removal: seen while it can still be seen */
	ck_assert_int_eq(pvio__xs_rm(c5, 0, "data/secret"), 0);
	t_event_is(c6, "/local/domain/5/data/secret", "spy");
}
END_TEST

START_TEST(test_special_watches)
{
	ck_assert_int_eq(pvio__xs_watch(c0, "@introduceDomain", "in"), 0);
	ck_assert_int_eq(pvio__xs_watch(c0, "@releaseDomain", "out"), 0);
	ck_assert_int_eq(pvio__xs_watch(c5, "@releaseDomain", "g"), 0);
	t_event_is(c0, "@introduceDomain", "in");
	t_event_is(c0, "@releaseDomain", "out");
	t_event_is(c5, "@releaseDomain", "g");
	ck_assert_int_eq(pvio__xs_domain_introduce(s, 9), 0);
	t_event_is(c0, "@introduceDomain", "in");
	ck_assert_int_eq(pvio__xs_domain_introduce(s, 9), 0);	/* again */
	t_no_event(c0);
	ck_assert(pvio__xs_domain_introduced(s, 9));
	pvio__xs_domain_release(s, 9);
	ck_assert(!pvio__xs_domain_introduced(s, 9));
	t_event_is(c0, "@releaseDomain", "out");
	t_no_event(c5);		/* not for guests, by default */
	ck_assert_int_eq(t_set_perms(c0, 0, "@releaseDomain", "n0 r5"), 0);
	ck_assert_int_eq(pvio__xs_domain_introduce(s, 9), 0);
	pvio__xs_domain_release(s, 9);
	pvio__xs_domain_release(s, 9);	/* once only */
	t_event_is(c5, "@releaseDomain", "g");
	t_no_event(c5);
	/* node writes never match special watches */
	t_write(c0, 0, "/test", "");
	t_drain(c0);
	ck_assert_int_eq(pvio__xs_watch(c0, "@bad path", "x"), -EINVAL);
}
END_TEST

/* ---- quotas -------------------------------------------------------------- */

static void few_nodes(struct xs_limits *l)
{
	l->nodes = 10;
}

START_TEST(test_node_quota)
{
	char path[32];
	unsigned int i;
	uint32_t t;

	t_world_with(few_nodes);
	/* dom5 owns data: 9 more */
	for (i = 0; i < 9; i++) {
		snprintf(path, sizeof(path), "data/n%u", i);
		t_write(c5, 0, path, "");
	}
	ck_assert_int_eq(pvio__xs_write(c5, 0, "data/one-too-many", "", 0),
			 -ENOSPC);
	ck_assert_int_eq(pvio__xs_mkdir(c5, 0, "data/n0/x"), -ENOSPC);
	ck_assert_int_eq(pvio__xs_rm(c5, 0, "data/n8"), 0);
	/* two missing: nothing is made when only one fits */
	ck_assert_int_eq(pvio__xs_write(c5, 0, "data/p/q", "", 0), -ENOSPC);
	ck_assert_int_eq(t_read(c5, 0, "data/p", ""), -ENOENT);
	t_write(c5, 0, "data/p", "");
	/* dom0 is exempt, even in the guest's area */
	for (i = 0; i < 20; i++) {
		snprintf(path, sizeof(path), "/test/n%u", i);
		t_write(c0, 0, path, "");
	}
	/* the check holds at commit too */
	ck_assert_int_eq(pvio__xs_rm(c5, 0, "data/p"), 0);
	ck_assert_int_eq(pvio__xs_rm(c5, 0, "data/n7"), 0);
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	t_write(c5, t, "data/n0/a", "");
	t_write(c5, t, "data/n0/b", "");
	t_write(c5, 0, "data/n1/c", "");
	ck_assert_int_eq(pvio__xs_tx_end(c5, t, true), -ENOSPC);
	ck_assert_int_eq(t_read(c5, 0, "data/n0/a", ""), -ENOENT);
	/* release passes its nodes to dom0: a new dom5 starts from zero */
	pvio__xs_domain_release(s, 5);
	ck_assert_int_eq(pvio__xs_domain_introduce(s, 5), 0);
	ck_assert_int_eq(t_set_perms(c0, 0, "/local/domain/5/data", "n5"), 0);
	for (i = 0; i < 9; i++) {
		snprintf(path, sizeof(path), "data/m%u", i);
		t_write(c5, 0, path, "");
	}
}
END_TEST

START_TEST(test_watch_quota)
{
	struct xs_conn *c5b;
	char tok[16];
	unsigned int i;

	ck_assert_int_eq(pvio__xs_conn_new(s, 5, &c5b), 0);
	for (i = 0; i < 128; i++) {
		snprintf(tok, sizeof(tok), "%u", i);
		/* per domain, across its connections */
		ck_assert_int_eq(pvio__xs_watch(i & 1 ? c5 : c5b, "data", tok),
				 0);
	}
	ck_assert_int_eq(pvio__xs_watch(c5, "data", "more"), -ENOSPC);
	ck_assert_int_eq(pvio__xs_unwatch(c5, "data", "1"), 0);
	ck_assert_int_eq(pvio__xs_watch(c5, "data", "more"), 0);
	pvio__xs_conn_free(c5b);	/* gives back its 64 */
	for (i = 0; i < 64; i++) {
		snprintf(tok, sizeof(tok), "again%u", i);
		ck_assert_int_eq(pvio__xs_watch(c5, "data", tok), 0);
	}
	ck_assert_int_eq(pvio__xs_watch(c5, "data", "last"), -ENOSPC);
	for (i = 0; i < 300; i++) {
		snprintf(tok, sizeof(tok), "%u", i);
		ck_assert_int_eq(pvio__xs_watch(c0, "/", tok), 0);
	}
}
END_TEST

START_TEST(test_tx_quota)
{
	struct xs_conn *c5b;
	uint32_t t, ids[10];
	unsigned int i;

	ck_assert_int_eq(pvio__xs_conn_new(s, 5, &c5b), 0);
	for (i = 0; i < 10; i++)
		ck_assert_int_eq(pvio__xs_tx_start(i & 1 ? c5 : c5b, &ids[i]),
				 0);
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), -ENOSPC);
	ck_assert_int_eq(pvio__xs_tx_start(c6, &t), 0);	/* per domain */
	ck_assert_int_eq(pvio__xs_tx_end(c5, ids[1], false), 0);
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	pvio__xs_conn_free(c5b);	/* its open transactions end */
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	for (i = 0; i < 50; i++)
		ck_assert_int_eq(pvio__xs_tx_start(c0, &t), 0);
}
END_TEST

static void small_tx(struct xs_limits *l)
{
	l->trans_nodes = 8;
}

START_TEST(test_tx_size_quota)
{
	char path[32];
	unsigned int i;
	uint32_t t;

	t_world_with(small_tx);
	for (i = 0; i < 10; i++) {
		snprintf(path, sizeof(path), "data/n%u", i);
		t_write(c5, 0, path, "");
	}
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	for (i = 0; i < 8; i++) {
		snprintf(path, sizeof(path), "data/n%u", i);
		ck_assert_int_eq(t_read(c5, t, path, ""), 0);
	}
	ck_assert_int_eq(t_read(c5, t, "data/n8", ""), -ENOSPC);
	ck_assert_int_eq(t_read(c5, t, "data/n0", ""), 0);	/* seen */
	ck_assert_int_eq(pvio__xs_tx_end(c5, t, true), 0);
	/* removing a big subtree in one transaction: nothing half done */
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	ck_assert_int_eq(pvio__xs_rm(c5, t, "data"), -ENOSPC);
	ck_assert_int_eq(t_read(c5, t, "data/n0", ""), 0);
	ck_assert_int_eq(pvio__xs_tx_end(c5, t, true), 0);
	ck_assert_int_eq(t_read(c5, 0, "data/n9", ""), 0);
}
END_TEST

static void small_tx_budget(struct xs_limits *l)
{
	l->trans_bytes = 8192;
}

START_TEST(test_tx_bytes_cap)
{
	char *big = calloc(1, 3000);
	uint32_t t1, t2;

	t_world_with(small_tx_budget);
	memset(big, 'v', 2999);
	t_write(c5, 0, "data/d", "");
	t_write(c5, 0, "data/e", "");
	t_write(c5, 0, "data/f", "");
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t1), 0);
	ck_assert_int_eq(pvio__xs_write(c5, t1, "data/a", big, 2999), 0);
	ck_assert_int_eq(pvio__xs_write(c5, t1, "data/b", big, 2999), 0);
	ck_assert_int_eq(pvio__xs_write(c5, t1, "data/c", big, 2999),
			 -ENOSPC);
	/* the budget is the domain's, over its transactions */
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t2), 0);
	ck_assert_int_eq(pvio__xs_write(c5, t2, "data/d", big, 2999),
			 -ENOSPC);
	/* outside transactions it does not apply */
	ck_assert_int_eq(pvio__xs_write(c5, 0, "data/f", big, 2999), 0);
	ck_assert_int_eq(pvio__xs_tx_end(c5, t1, true), 0);
	ck_assert_int_eq(t_read(c5, 0, "data/b", big), 0);
	ck_assert_int_eq(t_read(c5, 0, "data/c", ""), -ENOENT);
	/* ending it gave the budget back */
	ck_assert_int_eq(pvio__xs_write(c5, t2, "data/e", big, 2999), 0);
	ck_assert_int_eq(pvio__xs_tx_end(c5, t2, true), 0);
	/* dom0 has no such budget */
	ck_assert_int_eq(pvio__xs_tx_start(c0, &t1), 0);
	ck_assert_int_eq(pvio__xs_write(c0, t1, "/test/a", big, 2999), 0);
	ck_assert_int_eq(pvio__xs_write(c0, t1, "/test/b", big, 2999), 0);
	ck_assert_int_eq(pvio__xs_write(c0, t1, "/test/c", big, 2999), 0);
	ck_assert_int_eq(pvio__xs_tx_end(c0, t1, true), 0);
	free(big);
}
END_TEST

static void few_events(struct xs_limits *l)
{
	l->events = 16;
}

START_TEST(test_event_queue_cap)
{
	char path[32];
	unsigned int i;

	t_world_with(few_events);
	ck_assert_int_eq(pvio__xs_watch(c5, "data", "t"), 0);
	ck_assert_int_eq(pvio__xs_watch(c0, "/local/domain/5", "t"), 0);
	/* a guest that never reads its events (XSA-349) */
	for (i = 0; i < 100; i++) {
		snprintf(path, sizeof(path), "data/n%u", i % 7);
		t_write(c5, 0, path, "");
	}
	ck_assert_uint_eq(pvio__xs_event_count(c5), 16);
	ck_assert_uint_eq(pvio__xs_events_dropped(c5), 85);
	ck_assert_uint_eq(pvio__xs_events_dropped(c5), 0);
	/* dom0 has its own, larger cap */
	ck_assert_uint_eq(pvio__xs_event_count(c0), 101);
	t_drain(c5);
	t_write(c5, 0, "data/n0", "");
	t_event_is(c5, "data/n0", "t");
}
END_TEST

START_TEST(test_event_size)
{
	char *tok = malloc(XENSTORE_PAYLOAD_MAX);

	/* path + token must fit in a message */
	memset(tok, 'x', XENSTORE_PAYLOAD_MAX - 1);
	tok[XENSTORE_PAYLOAD_MAX - 1] = 0;
	ck_assert_int_eq(pvio__xs_watch(c5, "data", tok), -E2BIG);
	tok[XENSTORE_PAYLOAD_MAX - 7] = 0;	/* "data\0" + token + "\0" */
	ck_assert_int_eq(pvio__xs_watch(c5, "data", tok), 0);
	t_drain(c5);
	/* a deeper path no longer fits: it cannot be sent (xenstored) */
	t_write(c5, 0, "data/x", "");
	t_no_event(c5);
	t_write(c5, 0, "data", "");
	t_event_is(c5, "data", tok);
	free(tok);
}
END_TEST

static void few_event_bytes(struct xs_limits *l)
{
	l->event_bytes = 1000;
}

START_TEST(test_event_bytes_cap)
{
	struct xs_conn *c5b;
	char tok[100];
	unsigned int i;

	t_world_with(few_event_bytes);
	ck_assert_int_eq(pvio__xs_conn_new(s, 5, &c5b), 0);
	/* big tokens, several connections: the budget is the domain's */
	memset(tok, 't', sizeof(tok) - 1);
	tok[sizeof(tok) - 1] = 0;
	ck_assert_int_eq(pvio__xs_watch(c5, "data", tok), 0);
	ck_assert_int_eq(pvio__xs_watch(c5b, "data", tok), 0);
	for (i = 0; i < 20; i++)
		t_write(c5, 0, "data/x", "");
	/* "data\0" + token + NUL: 105 bytes, 9 fit in 1000 */
	ck_assert_uint_eq(pvio__xs_event_count(c5) +
			  pvio__xs_event_count(c5b), 9);
	ck_assert_uint_eq(pvio__xs_events_dropped(c5) +
			  pvio__xs_events_dropped(c5b), 42 - 9);
	t_drain(c5);		/* reading frees budget */
	t_write(c5, 0, "data/x", "");
	ck_assert_uint_ge(pvio__xs_event_count(c5), 1);
	pvio__xs_conn_free(c5b);	/* so does going away */
	t_drain(c5);
	for (i = 0; i < 9; i++)
		t_write(c5, 0, "data/y", "");
	ck_assert_uint_eq(pvio__xs_event_count(c5), 9);
	ck_assert_uint_eq(pvio__xs_events_dropped(c5), 0);
}
END_TEST

/* ---- domains ------------------------------------------------------------- */

START_TEST(test_release)
{
	struct xs_conn *n5;
	uint32_t t;

	t_write(c5, 0, "data/x", "1");
	t_write(c0, 0, "/test/shared", "");
	ck_assert_int_eq(t_set_perms(c0, 0, "/test/shared", "n0 r5 w6"), 0);
	ck_assert_int_eq(pvio__xs_watch(c5, "data", "t"), 0);
	ck_assert_int_eq(pvio__xs_tx_start(c5, &t), 0);
	pvio__xs_domain_release(s, 5);
	/* the subtree stays: removing it is the toolstack's business */
	ck_assert_int_eq(t_read(c0, 0, "/local/domain/5/data/x", "1"), 0);
	/* but what dom5 had is gone: a new dom5 inherits nothing */
	t_perms_are(c0, "/local/domain/5/data", "n0");
	t_perms_are(c0, "/local/domain/5/data/x", "n0");
	t_perms_are(c0, "/local/domain/5", "n0");
	t_perms_are(c0, "/test/shared", "n0 w6");
	ck_assert_int_eq(pvio__xs_tx_check(c5, t), -ENOENT);
	ck_assert_uint_eq(pvio__xs_event_count(c5), 0);
	ck_assert_int_eq(pvio__xs_domain_introduce(s, 5), 0);
	ck_assert_int_eq(pvio__xs_conn_new(s, 5, &n5), 0);
	ck_assert_int_eq(t_read(n5, 0, "data/x", "1"), -EACCES);
	ck_assert_int_eq(t_read(n5, 0, "/test/shared", ""), -EACCES);
	pvio__xs_conn_free(n5);
	/* dom6 is untouched */
	t_perms_are(c0, "/local/domain/6/data", "n6");
}
END_TEST

/* ---- robustness: random operations keep the tree consistent -------------- */

static uint64_t rng_state;

static unsigned int rnd(unsigned int n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (unsigned int)(rng_state % n);
}

static void random_path(char *buf, size_t size)
{
	static const char *const roots[] = {
		"/local/domain/5/data", "/local/domain/6/data", "/test",
		"data", "/local/domain/5", "/tool", "x",
	};
	size_t len = (size_t)snprintf(buf, size, "%s", roots[rnd(7)]);
	unsigned int depth = rnd(4), i;

	for (i = 0; i < depth && len + 3 < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "/%c",
					"abcd"[rnd(4)]);
}

/* Every listed child exists, every node is reached once. */
static unsigned int t_walk(const char *path)
{
	unsigned int len, off, n = 1;
	char *list, child[512];

	ck_assert_int_eq(pvio__xs_directory(c0, 0, path, &list, &len), 0);
	for (off = 0; off < len; off += (unsigned int)strlen(list + off) + 1) {
		snprintf(child, sizeof(child), "%s/%s",
			 strcmp(path, "/") ? path : "", list + off);
		n += t_walk(child);
	}
	free(list);
	return n;
}

START_TEST(test_random_ops)
{
	struct xs_conn *cs[3] = { c0, c5, c6 };
	uint32_t tx[3] = { 0, 0, 0 };
	char path[128], perms[32], *v;
	unsigned int i, k, len;
	int rc;

	rng_state = 0x9e3779b97f4a7c15ull * (uint64_t)(_i + 1);
	for (i = 0; i < 2000; i++) {
		k = rnd(3);
		random_path(path, sizeof(path));
		switch (rnd(9)) {
		case 0:
		case 1:
			rc = pvio__xs_write(cs[k], tx[k], path, "v", 1);
			break;
		case 2:
			rc = pvio__xs_mkdir(cs[k], tx[k], path);
			break;
		case 3:
			rc = pvio__xs_rm(cs[k], tx[k], path);
			break;
		case 4:
			rc = pvio__xs_read(cs[k], tx[k], path, &v, &len);
			if (!rc)
				free(v);
			break;
		case 5:
			snprintf(perms, sizeof(perms), "%c%u %c%u",
				 "nrwb"[rnd(4)], rnd(2) ? 0 : 5 + rnd(2),
				 "nrwb"[rnd(4)], 5 + rnd(2));
			rc = t_set_perms(cs[k], tx[k], path, perms);
			break;
		case 6:
			if (tx[k]) {
				rc = pvio__xs_tx_end(cs[k], tx[k], rnd(4) != 0);
				tx[k] = 0;
			} else {
				rc = pvio__xs_tx_start(cs[k], &tx[k]);
				if (rc)
					tx[k] = 0;
			}
			break;
		case 7:
			rc = pvio__xs_watch(cs[k], path, "r");
			break;
		default:
			t_drain(cs[k]);
			rc = 0;
			break;
		}
		ck_assert(rc <= 0);
		if (i % 50 == 0)
			ck_assert_uint_eq(t_walk("/"), pvio__xs_store_nodes(s));
	}
	for (k = 0; k < 3; k++)
		if (tx[k])
			ck_assert_int_ne(pvio__xs_tx_end(cs[k], tx[k], true),
					 -ENOENT);
	ck_assert_uint_eq(t_walk("/"), pvio__xs_store_nodes(s));
	pvio__xs_domain_release(s, 5);
	ck_assert_uint_eq(t_walk("/"), pvio__xs_store_nodes(s));
}
END_TEST

/* ---- the suite ----------------------------------------------------------- */

static TCase *t_case(Suite *su, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_add_checked_fixture(tc, setup, teardown);
	suite_add_tcase(su, tc);
	return tc;
}

static Suite *xs_store_suite(void)
{
	Suite *su = suite_create("xs-store");
	TCase *tc;

	tc = t_case(su, "paths");
	tcase_add_test(tc, test_initial_tree);
	tcase_add_loop_test(tc, test_invalid_paths, 0, ARRAY_SIZE(bad_paths));
	tcase_add_test(tc, test_path_lengths);
	tcase_add_test(tc, test_relative_paths);

	tc = t_case(su, "permissions");
	tcase_add_test(tc, test_domu_confined);
	tcase_add_loop_test(tc, test_perm_entries, 0, ARRAY_SIZE(perm_cases));
	tcase_add_test(tc, test_set_perms_owner_only);
	tcase_add_loop_test(tc, test_set_perms_invalid, 0,
			    ARRAY_SIZE(bad_perms));
	tcase_add_test(tc, test_inheritance);
	tcase_add_test(tc, test_special_perms);

	tc = t_case(su, "nodes");
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_mkdir_rm_directory);
	tcase_add_test(tc, test_directory_part);

	tc = t_case(su, "transactions");
	tcase_add_test(tc, test_tx_commit_abort);
	tcase_add_test(tc, test_tx_rm_and_create);
	tcase_add_test(tc, test_tx_conflicts);
	tcase_add_test(tc, test_tx_recreate_removed_child);
	tcase_add_test(tc, test_tx_ids);
	tcase_add_test(tc, test_tx_watches_fire_on_commit);

	tc = t_case(su, "watches");
	tcase_add_test(tc, test_watch_basics);
	tcase_add_test(tc, test_watch_rm);
	tcase_add_test(tc, test_watch_permissions);
	tcase_add_test(tc, test_special_watches);

	tc = t_case(su, "quotas");
	tcase_add_test(tc, test_node_quota);
	tcase_add_test(tc, test_watch_quota);
	tcase_add_test(tc, test_tx_quota);
	tcase_add_test(tc, test_tx_size_quota);
	tcase_add_test(tc, test_event_queue_cap);
	tcase_add_test(tc, test_event_size);
	tcase_add_test(tc, test_event_bytes_cap);
	tcase_add_test(tc, test_tx_bytes_cap);

	tc = t_case(su, "domains");
	tcase_add_test(tc, test_release);

	tc = t_case(su, "random");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_random_ops, 0, 8);
	return su;
}

int main(void)
{
	return t_run_suite(xs_store_suite(), true);
}
