// SPDX-License-Identifier: MIT
/*
 * t-xenplat: the xen platform provider on real Xen, through the public API
 * only (tests/xen/run.sh, scenario "platform"). One program, two halves:
 *
 *   domU:  t-xenplat front          the granting side (a frontend)
 *   dom0:  t-xenplat back DOMID     the mapping side (a backend)
 *
 * They meet in xenstore under the domU's data/pvio-test/ (the node a guest
 * may write): the front end publishes a one-page blkif ring, data pages, a
 * copy page, a read-only page, a page granted to another domain, one that
 * was shared and revoked, and an unbound port for dom0.
 *
 * The back end checks pvio_domain_info() and pvio_evtchn_status(), maps and
 * copies both ways, then asks real Xen the negative questions whose answers
 * platform.h documents (and the sim provider gives): each "NEG" line shows
 * what the xen provider returned next to the documented value. Then the two
 * exchange NR_REQ blkif requests in event mode (each side sleeps in poll()
 * on the event-channel fd, so every wake-up is a real event), the back end
 * moving the data with grant copies. Finally the front end closes its port
 * and the back end looks at what became of its own.
 *
 * Each check prints "CHECK <name>: ok ..." or "CHECK <name>: FAIL ...";
 * the last line is "RESULT PASS" or "RESULT FAIL <first failure>" (exit
 * status 0 or 1). The front end's result reaches the back end through
 * xenstore, so the back end's RESULT covers both halves.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xenstore.h>

#include <pvio/platform.h>
#include <pvio/ring.h>

#define NR_DATA		4	/* data pages: 8 sectors each */
#define NR_REQ		96	/* three times round the ring */
#define SECT		512u
#define PUSH_BATCH	8	/* requests per push: many kicks */
#define NEVER_REF	7	/* reserved by Linux, granted by nobody */
#define BAD_REF		(1u << 20)	/* past any grant table */
#define OTHER_DOMID	2000	/* the page granted to someone else */
#define NO_DOMID	4000	/* a domain that does not exist */
#define T_READY_MS	45000	/* the domU boots meanwhile */
#define T_WAIT_MS	20000
#define T_EVENT_MS	10000

static const char *t_side = "t-xenplat";
static int t_failed;
static char t_first[200];

/* ---- reporting ----------------------------------------------------------- */

static const char *t_errname(int err)
{
	static char buf[24];

	switch (-err) {
	case 0:		return "0";
	case EPERM:	return "EPERM";
	case ENOENT:	return "ENOENT";
	case ESRCH:	return "ESRCH";
	case EIO:	return "EIO";
	case EAGAIN:	return "EAGAIN";
	case ENOMEM:	return "ENOMEM";
	case EFAULT:	return "EFAULT";
	case EBUSY:	return "EBUSY";
	case EINVAL:	return "EINVAL";
	case ENOSPC:	return "ENOSPC";
	case ENOSYS:	return "ENOSYS";
	case EPROTO:	return "EPROTO";
	}
	snprintf(buf, sizeof(buf), "errno %d", -err);
	return buf;
}

static __attribute__((format(printf, 3, 4))) void
t_check(int ok, const char *name, const char *fmt, ...)
{
	char msg[160] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
	}
	printf("%s: CHECK %s: %s%s%s\n", t_side, name, ok ? "ok" : "FAIL",
	       *msg ? " " : "", msg);
	if (!ok && !t_failed++)
		snprintf(t_first, sizeof(t_first), "%s: %s %s", t_side, name,
			 msg);
}

/* A negative case: what Xen said next to what platform.h documents. */
static void t_neg(const char *name, int got, int want)
{
	printf("%s: NEG %s: xen provider returned %d (%s), platform.h: %d (%s)"
	       "\n", t_side, name, got, t_errname(got), want,
	       t_errname(want));
	t_check(got == want, name, "%s", t_errname(got));
}

static int t_result(void)
{
	if (t_failed)
		printf("%s: RESULT FAIL %s (%d failed)\n", t_side, t_first,
		       t_failed);
	else
		printf("%s: RESULT PASS\n", t_side);
	return t_failed ? 1 : 0;
}

/* ---- xenstore: the rendezvous -------------------------------------------- */

static struct xs_handle *t_xs;
static char t_base[96];		/* the domU's data/pvio-test */

static int t_put(const char *key, const char *fmt, ...)
{
	char path[160], val[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	snprintf(path, sizeof(path), "%s/%s", t_base, key);
	return xs_write(t_xs, XBT_NULL, path, val, strlen(val)) ? 0 : -errno;
}

static char *t_get(const char *key)
{
	char path[160];
	unsigned int len;

	snprintf(path, sizeof(path), "%s/%s", t_base, key);
	return xs_read(t_xs, XBT_NULL, path, &len);
}

/*
 * Wait until @key exists (and equals @want, if given); NULL on timeout, or
 * at once when the peer wrote "failed" there. A watch, not polling: the
 * other domain is booting or working on the same emulated CPUs meanwhile.
 */
static char *t_wait(const char *key, const char *want, int ms)
{
	uint64_t end = pvio_now_ns() + (uint64_t)ms * 1000000u;
	char path[160], *v = NULL;
	bool watching;

	snprintf(path, sizeof(path), "%s/%s", t_base, key);
	watching = xs_watch(t_xs, path, "t-wait");
	for (;;) {
		struct pollfd pfd = { .fd = xs_fileno(t_xs), .events = POLLIN };
		uint64_t now;

		v = t_get(key);
		if (v && (!want || !strcmp(v, want)))
			break;
		if (v && want && !strcmp(v, "failed")) {
			free(v);
			v = NULL;
			break;
		}
		free(v);
		v = NULL;
		now = pvio_now_ns();
		if (now >= end)
			break;
		if (!watching) {
			usleep(20000);
			continue;
		}
		if (poll(&pfd, 1, (int)((end - now) / 1000000u) + 1) > 0) {
			unsigned int n;

			free(xs_read_watch(t_xs, &n));
		}
	}
	if (watching)
		xs_unwatch(t_xs, path, "t-wait");
	return v;
}

static int t_get_uint(const char *key, unsigned int *out)
{
	char *v = t_get(key), *end;
	unsigned long n;
	int rc = -ENOENT;

	if (v) {
		errno = 0;
		n = strtoul(v, &end, 10);
		rc = errno || end == v || *end || n > UINT32_MAX ? -EINVAL : 0;
		if (!rc)
			*out = (unsigned int)n;
	}
	free(v);
	return rc;
}

/* ---- the data pattern ---------------------------------------------------- */

/* A request's sector: written by the front end for BLKIF_OP_WRITE, by the
 * back end for BLKIF_OP_READ; the other side checks it. */
static void t_pattern(unsigned char *buf, uint64_t id, bool write)
{
	unsigned int k;

	for (k = 0; k < SECT; k++)
		buf[k] = (unsigned char)(id * 31u + k * (write ? 7u : 11u) +
					 (write ? 1u : 0x55u));
}

static bool t_pattern_ok(const unsigned char *buf, uint64_t id, bool write)
{
	unsigned char want[SECT];

	t_pattern(want, id, write);
	return memcmp(buf, want, SECT) == 0;
}

/* Sleep on the event channel until our port fires; 0, or -errno. */
static int t_wait_event(struct pvio_platform *p, pvio_port_t port,
			unsigned int *wakes)
{
	struct pollfd pfd = { .fd = pvio_evtchn_fd(p), .events = POLLIN };
	int rc, got;

	rc = poll(&pfd, 1, T_EVENT_MS);
	if (rc < 0)
		return -errno;
	if (rc == 0)
		return -ETIMEDOUT;
	got = pvio_evtchn_pending(p);
	if (got < 0)
		return got;
	rc = pvio_evtchn_unmask(p, (pvio_port_t)got);
	if (rc)
		return rc;
	if ((pvio_port_t)got != port)
		return -EPROTO;
	(*wakes)++;
	return 0;
}

/* ---- grant helpers ------------------------------------------------------- */

/* One segment; *@batch gets pvio_gnt_copy()'s own return value. */
static int t_copy1b(struct pvio_platform *p, unsigned int dom, pvio_gref_t ref,
		    unsigned int off, unsigned int len, void *buf,
		    bool to_guest, int *batch)
{
	struct pvio_gnt_copy_seg s = { 0 };

	if (to_guest) {
		s.source.virt = buf;
		s.dest.foreign.ref = ref;
		s.dest.foreign.offset = (uint16_t)off;
		s.dest.foreign.domid = (uint16_t)dom;
		s.flags = PVIO_GNTCOPY_DEST_GREF;
	} else {
		s.source.foreign.ref = ref;
		s.source.foreign.offset = (uint16_t)off;
		s.source.foreign.domid = (uint16_t)dom;
		s.dest.virt = buf;
		s.flags = PVIO_GNTCOPY_SOURCE_GREF;
	}
	s.len = (uint16_t)len;
	*batch = pvio_gnt_copy(p, &s, 1);
	return *batch ? *batch : s.status;
}

/* 0 or the error, whether the segment or the whole batch failed. */
static int t_copy1(struct pvio_platform *p, unsigned int dom, pvio_gref_t ref,
		   unsigned int off, unsigned int len, void *buf, bool to_guest)
{
	int batch;

	return t_copy1b(p, dom, ref, off, len, buf, to_guest, &batch);
}

/* A negative copy: the batch must go through and the segment fail. */
static void t_neg_copy(struct pvio_platform *p, const char *name,
		       unsigned int dom, pvio_gref_t ref, unsigned int off,
		       unsigned int len, void *buf, bool to_guest, int want)
{
	int batch, st = t_copy1b(p, dom, ref, off, len, buf, to_guest, &batch);

	if (batch) {
		printf("%s: NEG %s: xen provider failed the whole batch: %d "
		       "(%s), platform.h: batch 0, segment status %d (%s)\n",
		       t_side, name, batch, t_errname(batch), want,
		       t_errname(want));
		t_check(0, name, "batch failed: %s", t_errname(batch));
		return;
	}
	t_neg(name, st, want);
}

static int t_map(struct pvio_platform *p, unsigned int dom, pvio_gref_t ref,
		 bool writable)
{
	void *m = NULL;
	int rc = pvio_gnt_map(p, dom, 1, &ref, writable, &m);

	if (rc == 0)
		pvio_gnt_unmap(p, m, 1);
	return rc;
}

/* ---- front end (domU) ---------------------------------------------------- */

struct t_front {
	struct pvio_platform *p;
	struct pvio_ring_front ring;
	pvio_port_t port;
	pvio_gref_t ring_ref, data_refs[NR_DATA], copy_ref, ro_ref, rev_ref,
		other_ref;
	void *sring;
	unsigned char *data, *copy, *ro, *other;
};

static int t_share1(struct t_front *f, const char *name, unsigned int dom,
		    unsigned int n, bool writable, pvio_gref_t *refs,
		    void **addr)
{
	int rc = pvio_gnt_share(f->p, dom, n, writable, refs, addr);

	t_check(rc == 0, name, "%u page(s) to dom%u %s: %s, first ref %u", n,
		dom, writable ? "rw" : "ro", t_errname(rc),
		rc ? 0 : refs[0]);
	return rc;
}

static int t_front_share(struct t_front *f)
{
	pvio_gref_t rref;
	void *rev;
	int rc;

	if (t_share1(f, "share-ring", 0, 1, true, &f->ring_ref, &f->sring) ||
	    t_share1(f, "share-data", 0, NR_DATA, true, f->data_refs,
		     (void **)&f->data) ||
	    t_share1(f, "share-copy", 0, 1, true, &f->copy_ref,
		     (void **)&f->copy) ||
	    t_share1(f, "share-ro", 0, 1, false, &f->ro_ref,
		     (void **)&f->ro) ||
	    t_share1(f, "share-other", OTHER_DOMID, 1, true, &f->other_ref,
		     (void **)&f->other) ||
	    t_share1(f, "share-revoked", 0, 1, true, &rref, &rev))
		return -1;
	/* Unshared at once: the ref then points at nothing for dom0. */
	rc = pvio_gnt_unshare(f->p, rev, 1);
	t_check(rc == 0, "unshare-revoked", "%s", t_errname(rc));
	f->rev_ref = rref;
	return rc ? -1 : 0;
}

static void t_front_fill(struct t_front *f)
{
	unsigned int i;

	for (i = 0; i < NR_DATA; i++)
		snprintf((char *)f->data + i * PVIO_PAGE_SIZE, 32,
			 "pvio-data-page-%u", i);
	strcpy((char *)f->copy, "domU->dom0 grant copy");
	strcpy((char *)f->ro, "RO-PAGE-CONTENT");
	strcpy((char *)f->other, "NOT-FOR-DOM0");
}

static int t_front_publish(struct t_front *f)
{
	char refs[NR_DATA * 12] = "";
	size_t off = 0;
	unsigned int i;
	int rc = 0;

	for (i = 0; i < NR_DATA; i++)
		off += (size_t)snprintf(refs + off, sizeof(refs) - off, "%s%u",
					i ? " " : "", f->data_refs[i]);
	rc |= t_put("ring-ref", "%u", f->ring_ref);
	rc |= t_put("event-channel", "%u", f->port);
	rc |= t_put("data-refs", "%s", refs);
	rc |= t_put("copy-ref", "%u", f->copy_ref);
	rc |= t_put("ro-ref", "%u", f->ro_ref);
	rc |= t_put("revoked-ref", "%u", f->rev_ref);
	rc |= t_put("other-ref", "%u", f->other_ref);
	rc |= t_put("nr-requests", "%u", NR_REQ);
	/* last: the back end starts when it sees this */
	rc |= t_put("state", "ready");
	t_check(rc == 0, "xenstore-publish", "under %s: %s", t_base,
		rc ? strerror(errno) : "ok");
	return rc ? -1 : 0;
}

static void t_front_request(struct t_front *f, uint64_t id)
{
	struct blkif_request *rq = pvio_blkif_front_req(&f->ring);
	unsigned int pg = (unsigned int)(id / 8) % NR_DATA;
	unsigned int sec = (unsigned int)id % 8;
	bool write = !(id & 1);

	/* Requests id and id + 32 share a sector; a ring of 32 slots never
	 * has both in flight. */
	if (write)
		t_pattern(f->data + pg * PVIO_PAGE_SIZE + sec * SECT, id, true);
	rq->operation = write ? BLKIF_OP_WRITE : BLKIF_OP_READ;
	rq->nr_segments = 1;
	rq->handle = 0;
	rq->id = id;
	rq->sector_number = id;
	rq->seg[0].gref = f->data_refs[pg];
	rq->seg[0].first_sect = (uint8_t)sec;
	rq->seg[0].last_sect = (uint8_t)sec;
	pvio_ring_front_req_commit(&f->ring);
}

/* Check one response; return 0 or -1. */
static int t_front_response(struct t_front *f, const struct blkif_response *r,
			    uint64_t sent)
{
	bool write = !(r->id & 1);
	unsigned int pg = (unsigned int)(r->id / 8) % NR_DATA;
	unsigned int sec = (unsigned int)r->id % 8;

	if (r->id >= sent || r->status != BLKIF_RSP_OKAY ||
	    r->operation != (write ? BLKIF_OP_WRITE : BLKIF_OP_READ)) {
		t_check(0, "ring-response", "id %llu op %u status %d",
			(unsigned long long)r->id, r->operation, r->status);
		return -1;
	}
	if (!write &&
	    !t_pattern_ok(f->data + pg * PVIO_PAGE_SIZE + sec * SECT, r->id,
			  false)) {
		t_check(0, "ring-read-data", "request %llu: wrong bytes",
			(unsigned long long)r->id);
		return -1;
	}
	return 0;
}

static void t_front_exchange(struct t_front *f)
{
	struct blkif_response rsp[32];
	unsigned int kicks = 0, wakes = 0, done = 0, i;
	uint64_t sent = 0;
	uint64_t t0 = pvio_now_ns();
	int n, rc;

	while (done < NR_REQ) {
		unsigned int batch = 0;

		while (sent < NR_REQ && pvio_ring_front_free(&f->ring) &&
		       batch < PUSH_BATCH) {
			t_front_request(f, sent++);
			batch++;
		}
		if (pvio_ring_front_push(&f->ring)) {
			rc = pvio_evtchn_notify(f->p, f->port);
			if (rc) {
				t_check(0, "ring-notify", "%s", t_errname(rc));
				return;
			}
			kicks++;
		}
		n = pvio_blkif_front_consume(&f->ring, rsp, 32);
		if (n < 0) {
			t_check(0, "ring-consume", "%s", t_errname(n));
			return;
		}
		for (i = 0; i < (unsigned int)n; i++)
			if (t_front_response(f, &rsp[i], sent))
				return;
		done += (unsigned int)n;
		if (n > 0 || batch > 0 || done == NR_REQ)
			continue;
		if (pvio_ring_front_final_check(&f->ring, 1))
			continue;
		rc = t_wait_event(f->p, f->port, &wakes);
		if (rc) {
			t_check(0, "ring-wait", "%s after %u responses",
				t_errname(rc), done);
			return;
		}
	}
	t_check(kicks > 0 && wakes > 0, "ring-exchange",
		"%u requests answered; %u notifications sent, %u events "
		"woke us; %.1f ms", done, kicks, wakes,
		(double)(pvio_now_ns() - t0) / 1e6);
}

/*
 * The other way round: dom0 granted us pages; we map and copy them. A domU
 * has no libxenctrl, so the xen provider explains refusals with its
 * fallback, a one-byte read copy.
 */
static void t_front_reverse(struct t_front *f)
{
	pvio_gref_t rw = 0, ro = 0;
	char buf[16] = "";
	void *m = NULL;
	int rc;

	if (t_get_uint("dom0-rw-ref", &rw) || t_get_uint("dom0-ro-ref", &ro)) {
		t_check(0, "reverse-keys", "%s", "dom0's refs are missing");
		return;
	}
	rc = pvio_gnt_map(f->p, 0, 1, &rw, true, &m);
	t_check(rc == 0 && !strcmp(m, "DOM0-RW"), "reverse-map",
		"dom0's ref %u rw: %s", rw, t_errname(rc));
	if (rc == 0) {
		strcpy((char *)m + 100, "domU-was-here");
		rc = pvio_gnt_unmap(f->p, m, 1);
		t_check(rc == 0, "reverse-unmap", "%s", t_errname(rc));
	}
	t_neg("reverse-map-ro-grant-writable", t_map(f->p, 0, ro, true),
	      -EPERM);
	t_neg("reverse-map-never-granted", t_map(f->p, 0, NEVER_REF, false),
	      -ENOENT);
	t_neg("reverse-map-ref-out-of-range", t_map(f->p, 0, BAD_REF, false),
	      -EINVAL);
	rc = t_copy1(f->p, 0, ro, 0, 8, buf, false);
	t_check(rc == 0 && !strcmp(buf, "DOM0-RO"), "reverse-copy-from-ro",
		"%s '%s'", t_errname(rc), buf);
	t_neg_copy(f->p, "reverse-copy-to-ro-grant", 0, ro, 0, 3, "xx", true,
		   -EPERM);
	t_neg_copy(f->p, "reverse-copy-never-granted", 0, NEVER_REF, 0, 8,
		   buf, false, -ENOENT);
	t_neg_copy(f->p, "reverse-copy-ref-out-of-range", 0, BAD_REF, 0, 8,
		   buf, false, -EINVAL);
	t_neg_copy(f->p, "reverse-copy-past-page-end", 0, rw, 4000, 200, buf,
		   false, -EINVAL);
}

static int t_front_main(void)
{
	struct t_front f = { 0 };
	struct pvio_evtchn_status st;
	char *v;
	int rc, port;

	t_side = "t-xenplat[front]";
	rc = pvio_platform_open(&f.p, "xen", 0, 0);
	t_check(rc == 0, "open", "pvio_platform_open(xen): %s", t_errname(rc));
	if (rc)
		return t_result();
	t_check(strcmp(pvio_platform_name(f.p), "xen") == 0 &&
			pvio_platform_domid(f.p) != 0,
		"self", "provider %s, domid %u", pvio_platform_name(f.p),
		pvio_platform_domid(f.p));
	t_xs = xs_open(0);
	if (!t_xs) {
		t_check(0, "xs_open", "%s", strerror(errno));
		goto out;
	}
	snprintf(t_base, sizeof(t_base), "data/pvio-test");
	if (t_front_share(&f))
		goto fail;
	t_front_fill(&f);
	rc = pvio_blkif_front_init(&f.ring, f.sring, 1);
	t_check(rc == 0, "ring-init", "%u slots: %s", pvio_blkif_ring_size(1),
		t_errname(rc));
	port = pvio_evtchn_alloc_unbound(f.p, 0);
	t_check(port > 0, "evtchn-alloc-unbound", "port %d", port);
	if (rc || port <= 0)
		goto fail;
	f.port = (pvio_port_t)port;
	/* A domU has no privcmd: the xen provider cannot tell (ENOSYS). */
	rc = pvio_evtchn_status(f.p, f.port, &st);
	printf("%s: evtchn-status in the domU: %d (%s)\n", t_side, rc,
	       t_errname(rc));
	t_check(rc == -ENOSYS || (rc == 0 && st.state == PVIO_EVTCHN_UNBOUND &&
				  st.remote_dom == 0),
		"evtchn-status-domU", "%s", t_errname(rc));
	if (t_front_publish(&f))
		goto fail;

	v = t_wait("back-state", "connected", T_WAIT_MS);
	t_check(v != NULL, "back-connected", "%s", "");
	free(v);
	if (!v)
		goto fail;
	t_front_reverse(&f);
	t_front_exchange(&f);

	/* What the back end's grant copy left, and did not touch. */
	t_check(strcmp((char *)f.copy + 100, "dom0->domU grant copy") == 0,
		"copy-to-guest-landed", "'%.32s'", (char *)f.copy + 100);
	t_check(strcmp((char *)f.ro, "RO-PAGE-CONTENT") == 0,
		"ro-page-intact", "'%.32s'", (char *)f.ro);
	t_check(strcmp((char *)f.other, "NOT-FOR-DOM0") == 0,
		"other-page-intact", "'%.32s'", (char *)f.other);

	/* Close our end: the back end looks at what became of its port. */
	rc = pvio_evtchn_close(f.p, f.port);
	t_check(rc == 0, "evtchn-close", "%s", t_errname(rc));
	t_put("state", "closed");
	v = t_wait("back-state", "done", T_WAIT_MS);
	t_check(v != NULL, "back-done", "%s", "");
	free(v);
	/* The back end has unmapped everything: unsharing must succeed. */
	rc = pvio_gnt_unshare(f.p, f.sring, 1);
	t_check(rc == 0, "unshare-ring", "%s", t_errname(rc));
	rc = pvio_gnt_unshare(f.p, f.data, NR_DATA);
	t_check(rc == 0, "unshare-data", "%s", t_errname(rc));
	rc = pvio_gnt_unshare(f.p, f.data, NR_DATA);
	t_check(rc == -EINVAL, "unshare-twice", "%s", t_errname(rc));
	goto out;
fail:
	t_put("state", "failed");
out:
	if (t_xs) {
		if (t_failed)
			t_put("front-result", "FAIL %s", t_first);
		else
			t_put("front-result", "PASS");
		xs_close(t_xs);
	}
	pvio_platform_close(f.p);
	return t_result();
}

/* ---- back end (dom0) ----------------------------------------------------- */

struct t_back {
	struct pvio_platform *p;
	unsigned int dom;
	struct pvio_ring_back ring;
	void *sring;
	pvio_port_t port, rport;
	pvio_gref_t ring_ref, data_refs[NR_DATA], copy_ref, ro_ref, rev_ref,
		other_ref;
	char *to_domU_rw, *to_domU_ro;	/* dom0's grants to the domU */
};

static int t_back_read_keys(struct t_back *b)
{
	unsigned int nreq = 0, port = 0, i;
	char *v, *s, *end;
	int rc = 0;

	rc |= t_get_uint("ring-ref", &b->ring_ref);
	rc |= t_get_uint("event-channel", &port);
	rc |= t_get_uint("copy-ref", &b->copy_ref);
	rc |= t_get_uint("ro-ref", &b->ro_ref);
	rc |= t_get_uint("revoked-ref", &b->rev_ref);
	rc |= t_get_uint("other-ref", &b->other_ref);
	rc |= t_get_uint("nr-requests", &nreq);
	v = t_get("data-refs");
	for (i = 0, s = v; v && i < NR_DATA; i++, s = end) {
		unsigned long r = strtoul(s, &end, 10);

		if (end == s) {
			rc = -EINVAL;
			break;
		}
		b->data_refs[i] = (pvio_gref_t)r;
	}
	free(v);
	b->rport = port;
	t_check(rc == 0 && v && nreq == NR_REQ, "xenstore-read",
		"ring-ref %u port %u data-refs %u.. copy %u ro %u revoked %u "
		"other %u", b->ring_ref, port, b->data_refs[0], b->copy_ref,
		b->ro_ref, b->rev_ref, b->other_ref);
	return rc == 0 && v && nreq == NR_REQ ? 0 : -1;
}

static void t_back_domain_info(struct t_back *b)
{
	struct pvio_dominfo di;
	int rc;

	rc = pvio_domain_info(b->p, b->dom, &di);
	printf("%s: domain-info dom%u: %d (%s) domid=%u dying=%d shutdown=%d"
	       "\n", t_side, b->dom, rc, t_errname(rc), di.domid, di.dying,
	       di.shutdown);
	t_check(rc == 0 && di.domid == b->dom && !di.dying && !di.shutdown,
		"domain-info", "%s", t_errname(rc));
	rc = pvio_domain_info(b->p, NO_DOMID, &di);
	t_neg("domain-info-no-such-domain", rc, -ESRCH);
}

static int t_back_connect(struct t_back *b)
{
	struct pvio_evtchn_status st = { 0 };
	unsigned char *m = NULL;
	unsigned int i;
	int rc, port;
	bool ok = true;

	rc = pvio_gnt_map(b->p, b->dom, 1, &b->ring_ref, true, &b->sring);
	t_check(rc == 0, "map-ring", "ref %u rw: %s", b->ring_ref,
		t_errname(rc));
	if (rc)
		return -1;
	rc = pvio_blkif_back_attach(&b->ring, b->sring, 1);
	t_check(rc == 0, "ring-attach", "%s", t_errname(rc));
	if (rc)
		return -1;
	/* Several refs at once, contiguously, read-only. */
	rc = pvio_gnt_map(b->p, b->dom, NR_DATA, b->data_refs, false,
			  (void **)&m);
	for (i = 0; rc == 0 && i < NR_DATA; i++) {
		char want[32];

		snprintf(want, sizeof(want), "pvio-data-page-%u", i);
		ok &= strcmp((char *)m + i * PVIO_PAGE_SIZE, want) == 0;
	}
	t_check(rc == 0 && ok, "map-data", "%u refs ro: %s%s", NR_DATA,
		t_errname(rc), ok ? "" : ", wrong contents");
	if (rc == 0) {
		rc = pvio_gnt_unmap(b->p, m, NR_DATA);
		t_check(rc == 0, "unmap-data", "%s", t_errname(rc));
	}

	port = pvio_evtchn_bind(b->p, b->dom, b->rport);
	t_check(port > 0, "evtchn-bind", "dom%u port %u -> local %d (%s)",
		b->dom, b->rport, port, port < 0 ? t_errname(port) : "ok");
	if (port <= 0)
		return -1;
	b->port = (pvio_port_t)port;
	rc = pvio_evtchn_status(b->p, b->port, &st);
	printf("%s: evtchn-status port %u: %d (%s) state=%d remote dom%u "
	       "port %u\n", t_side, b->port, rc, t_errname(rc), st.state,
	       st.remote_dom, st.remote_port);
	t_check(rc == 0 && st.state == PVIO_EVTCHN_INTERDOMAIN &&
			st.remote_dom == b->dom && st.remote_port == b->rport,
		"evtchn-status", "%s", t_errname(rc));
	return 0;
}

/* Both directions in one batch, each segment's status checked. */
static void t_back_copy(struct t_back *b)
{
	struct pvio_gnt_copy_seg s[2] = { 0 };
	char in[64] = "", out[] = "dom0->domU grant copy";
	int rc;

	s[0].source.foreign.ref = b->copy_ref;
	s[0].source.foreign.domid = (uint16_t)b->dom;
	s[0].dest.virt = in;
	s[0].len = sizeof(in);
	s[0].flags = PVIO_GNTCOPY_SOURCE_GREF;
	s[1].source.virt = out;
	s[1].dest.foreign.ref = b->copy_ref;
	s[1].dest.foreign.offset = 100;
	s[1].dest.foreign.domid = (uint16_t)b->dom;
	s[1].len = sizeof(out);
	s[1].flags = PVIO_GNTCOPY_DEST_GREF;
	rc = pvio_gnt_copy(b->p, s, 2);
	t_check(rc == 0 && s[0].status == 0 && s[1].status == 0 &&
			strcmp(in, "domU->dom0 grant copy") == 0,
		"grant-copy", "batch %s, from guest %s '%s', to guest %s",
		t_errname(rc), t_errname(s[0].status), in,
		t_errname(s[1].status));
}

static void t_back_negative(struct t_back *b)
{
	struct pvio_gnt_copy_seg s[4] = { 0 };
	char buf[PVIO_PAGE_SIZE], a[16] = "", c[16] = "";
	void *m = NULL;
	int rc;

	/* maps */
	t_neg("map-never-granted", t_map(b->p, b->dom, NEVER_REF, false),
	      -ENOENT);
	t_neg("map-revoked", t_map(b->p, b->dom, b->rev_ref, false), -ENOENT);
	t_neg("map-granted-to-other-domain",
	      t_map(b->p, b->dom, b->other_ref, false), -EPERM);
	t_neg("map-ro-grant-writable", t_map(b->p, b->dom, b->ro_ref, true),
	      -EPERM);
	t_neg("map-ref-out-of-range", t_map(b->p, b->dom, BAD_REF, false),
	      -EINVAL);
	t_neg("map-no-such-domain", t_map(b->p, NO_DOMID, b->ro_ref, false),
	      -ESRCH);
	rc = pvio_gnt_map(b->p, b->dom, 1, &b->ro_ref, false, &m);
	t_check(rc == 0 && strcmp(m, "RO-PAGE-CONTENT") == 0, "map-ro-grant",
		"read-only: %s", t_errname(rc));
	if (rc == 0)
		pvio_gnt_unmap(b->p, m, 1);

	/* copies, one segment each */
	t_neg_copy(b->p, "copy-to-ro-grant", b->dom, b->ro_ref, 0, 3, "xx",
		   true, -EPERM);
	t_neg_copy(b->p, "copy-past-page-end", b->dom, b->copy_ref, 4000, 200,
		   buf, false, -EINVAL);
	t_neg_copy(b->p, "copy-past-page-end-to-guest", b->dom, b->copy_ref,
		   4095, 2, "xx", true, -EINVAL);
	t_neg_copy(b->p, "copy-never-granted", b->dom, NEVER_REF, 0, 8, buf,
		   false, -ENOENT);
	t_neg_copy(b->p, "copy-revoked", b->dom, b->rev_ref, 0, 8, buf, false,
		   -ENOENT);
	t_neg_copy(b->p, "copy-granted-to-other-domain", b->dom, b->other_ref,
		   0, 8, buf, false, -EPERM);
	t_neg_copy(b->p, "copy-ref-out-of-range", b->dom, BAD_REF, 0, 8, buf,
		   false, -EINVAL);
	t_neg_copy(b->p, "copy-no-such-domain", NO_DOMID, b->ro_ref, 0, 8, buf,
		   false, -ESRCH);
	rc = t_copy1(b->p, b->dom, b->ro_ref, 0, 16, buf, false);
	t_check(rc == 0 && strcmp(buf, "RO-PAGE-CONTENT") == 0,
		"copy-from-ro-grant", "%s", t_errname(rc));
	rc = t_copy1(b->p, b->dom, b->copy_ref, 0, PVIO_PAGE_SIZE, buf, false);
	t_check(rc == 0, "copy-whole-page", "%s", t_errname(rc));

	/* one batch, good and bad segments mixed: each fails on its own */
	s[0].source.foreign.ref = b->copy_ref;
	s[0].source.foreign.domid = (uint16_t)b->dom;
	s[0].dest.virt = a;
	s[0].len = 10;
	s[0].flags = PVIO_GNTCOPY_SOURCE_GREF;
	s[1] = s[0];
	s[1].source.foreign.offset = 4090;
	s[1].dest.virt = buf;
	s[2] = s[0];
	s[2].dest.virt = c;
	s[3].source.virt = "xx";
	s[3].dest.foreign.ref = b->ro_ref;
	s[3].dest.foreign.domid = (uint16_t)b->dom;
	s[3].len = 3;
	s[3].flags = PVIO_GNTCOPY_DEST_GREF;
	rc = pvio_gnt_copy(b->p, s, 4);
	printf("%s: NEG copy-mixed-batch: xen provider returned %d (%s), "
	       "statuses %d %d %d %d; platform.h: 0, statuses 0 -22 0 -1\n",
	       t_side, rc, t_errname(rc), s[0].status, s[1].status,
	       s[2].status, s[3].status);
	t_check(rc == 0 && s[0].status == 0 && s[1].status == -EINVAL &&
			s[2].status == 0 && s[3].status == -EPERM &&
			!strcmp(a, "domU->dom0") && !strcmp(c, "domU->dom0"),
		"copy-mixed-batch", "%s: %s %s %s %s", t_errname(rc),
		t_errname(s[0].status), t_errname(s[1].status),
		t_errname(s[2].status), t_errname(s[3].status));
}

/* For t_front_reverse(): dom0 grants the domU a page rw and one ro. */
static int t_back_share(struct t_back *b)
{
	pvio_gref_t rw, ro;
	int rc;

	rc = pvio_gnt_share(b->p, b->dom, 1, true, &rw,
			    (void **)&b->to_domU_rw);
	t_check(rc == 0, "share-to-domU-rw", "%s", t_errname(rc));
	if (rc)
		return -1;
	rc = pvio_gnt_share(b->p, b->dom, 1, false, &ro,
			    (void **)&b->to_domU_ro);
	t_check(rc == 0, "share-to-domU-ro", "%s", t_errname(rc));
	if (rc)
		return -1;
	strcpy(b->to_domU_rw, "DOM0-RW");
	strcpy(b->to_domU_ro, "DOM0-RO");
	return t_put("dom0-rw-ref", "%u", rw) || t_put("dom0-ro-ref", "%u", ro)
		       ? -1 : 0;
}

/* Serve one request with grant copies: BLKIF_RSP_OKAY or _ERROR. */
static int t_back_serve1(struct t_back *b, const struct blkif_request *rq)
{
	unsigned char buf[SECT];
	bool write = rq->operation == BLKIF_OP_WRITE, known = false;
	const struct blkif_request_segment *sg = &rq->seg[0];
	unsigned int i;
	int rc;

	for (i = 0; i < NR_DATA; i++)
		known |= sg->gref == b->data_refs[i];
	if ((!write && rq->operation != BLKIF_OP_READ) ||
	    rq->nr_segments != 1 || !known || sg->first_sect != sg->last_sect ||
	    sg->last_sect >= PVIO_PAGE_SIZE / SECT) {
		t_check(0, "ring-request", "id %llu: malformed",
			(unsigned long long)rq->id);
		return BLKIF_RSP_ERROR;
	}
	if (write) {
		rc = t_copy1(b->p, b->dom, sg->gref, sg->first_sect * SECT,
			     SECT, buf, false);
		if (rc == 0 && !t_pattern_ok(buf, rq->id, true))
			rc = -EILSEQ;
	} else {
		t_pattern(buf, rq->id, false);
		rc = t_copy1(b->p, b->dom, sg->gref, sg->first_sect * SECT,
			     SECT, buf, true);
	}
	if (rc) {
		t_check(0, "ring-request", "id %llu: grant copy %s",
			(unsigned long long)rq->id, t_errname(rc));
		return BLKIF_RSP_ERROR;
	}
	return BLKIF_RSP_OKAY;
}

static void t_back_exchange(struct t_back *b)
{
	struct blkif_request rq[32];
	unsigned int kicks = 0, wakes = 0, served = 0, i;
	uint64_t t0 = pvio_now_ns();
	int n, rc;

	while (served < NR_REQ) {
		n = pvio_blkif_back_consume(&b->ring, rq, 32);
		if (n < 0) {
			t_check(0, "ring-consume", "%s (%s)", t_errname(n),
				pvio_ring_halt_str(b->ring.halted));
			return;
		}
		for (i = 0; i < (unsigned int)n; i++) {
			struct blkif_response *r;

			r = pvio_blkif_back_rsp(&b->ring);

			r->id = rq[i].id;
			r->operation = rq[i].operation;
			r->status = (int16_t)t_back_serve1(b, &rq[i]);
			pvio_ring_back_rsp_commit(&b->ring);
		}
		served += (unsigned int)n;
		if (pvio_ring_back_push(&b->ring)) {
			rc = pvio_evtchn_notify(b->p, b->port);
			if (rc) {
				t_check(0, "ring-notify", "%s", t_errname(rc));
				return;
			}
			kicks++;
		}
		if (n > 0 || served == NR_REQ)
			continue;
		if (pvio_ring_back_final_check(&b->ring, 1))
			continue;
		rc = t_wait_event(b->p, b->port, &wakes);
		if (rc) {
			t_check(0, "ring-wait", "%s after %u requests",
				t_errname(rc), served);
			return;
		}
	}
	t_check(kicks > 0 && wakes > 0, "ring-exchange",
		"%u requests served with grant copies; %u notifications sent, "
		"%u events woke us; %.1f ms", served, kicks, wakes,
		(double)(pvio_now_ns() - t0) / 1e6);
}

/* The front end closed its port: what does ours look like now? */
static void t_back_peer_closed(struct t_back *b)
{
	struct pvio_evtchn_status st = { 0 };
	struct pollfd pfd = { .fd = pvio_evtchn_fd(b->p), .events = POLLIN };
	char *v = t_wait("state", "closed", T_WAIT_MS);
	int rc, kicked;

	t_check(v != NULL, "front-closed", "%s", "");
	free(v);
	if (!v)
		return;
	/* Xen sends nothing on close; the sim kicks once. Tell, not judge. */
	kicked = poll(&pfd, 1, 300) == 1;
	if (kicked) {
		rc = pvio_evtchn_pending(b->p);
		if (rc >= 0)
			pvio_evtchn_unmask(b->p, (pvio_port_t)rc);
	}
	rc = pvio_evtchn_status(b->p, b->port, &st);
	printf("%s: evtchn-status after the peer closed: %d (%s) state=%d "
	       "remote dom%u; peer's close %s an event\n", t_side, rc,
	       t_errname(rc), st.state, st.remote_dom,
	       kicked ? "sent" : "did not send");
	t_check(rc == 0 && st.state == PVIO_EVTCHN_UNBOUND &&
			st.remote_dom == b->dom,
		"evtchn-status-peer-closed", "%s, state %d", t_errname(rc),
		st.state);
	rc = pvio_evtchn_notify(b->p, b->port);
	t_check(rc == 0, "notify-unbound-port", "%s", t_errname(rc));
	rc = pvio_evtchn_close(b->p, b->port);
	t_check(rc == 0, "evtchn-close", "%s", t_errname(rc));
	rc = pvio_evtchn_status(b->p, b->port, &st);
	printf("%s: evtchn-status of a closed port: %d (%s) state=%d\n",
	       t_side, rc, t_errname(rc), st.state);
}

static int t_back_main(unsigned int dom)
{
	struct t_back b = { .dom = dom };
	char *v;
	int rc;

	t_side = "t-xenplat[back]";
	rc = pvio_platform_open(&b.p, "xen", 0, 0);
	t_check(rc == 0, "open", "pvio_platform_open(xen): %s", t_errname(rc));
	if (rc)
		return t_result();
	t_check(pvio_platform_domid(b.p) == 0, "self", "provider %s, domid %u",
		pvio_platform_name(b.p), pvio_platform_domid(b.p));
	t_xs = xs_open(0);
	if (!t_xs) {
		t_check(0, "xs_open", "%s", strerror(errno));
		goto out;
	}
	snprintf(t_base, sizeof(t_base), "/local/domain/%u/data/pvio-test",
		 dom);
	v = t_wait("state", NULL, T_READY_MS);
	t_check(v && !strcmp(v, "ready"), "front-ready", "state '%s'",
		v ? v : "(timeout)");
	if (!v || strcmp(v, "ready")) {
		free(v);
		goto front_result;
	}
	free(v);
	t_back_domain_info(&b);
	if (t_back_read_keys(&b) || t_back_connect(&b))
		goto fail;
	t_back_copy(&b);
	t_back_negative(&b);
	if (t_back_share(&b))
		goto fail;

	t_put("back-state", "connected");
	t_back_exchange(&b);
	t_back_peer_closed(&b);
	rc = pvio_gnt_unmap(b.p, b.sring, 1);
	t_check(rc == 0, "unmap-ring", "%s", t_errname(rc));
	t_put("back-state", "done");
front_result:
	v = t_wait("front-result", NULL, T_WAIT_MS);
	printf("%s: front end says: %s\n", t_side, v ? v : "(nothing)");
	t_check(v && !strcmp(v, "PASS"), "front-result", "%s",
		v ? v : "(timeout)");
	free(v);
	if (b.to_domU_rw) {
		t_check(!strcmp(b.to_domU_rw + 100, "domU-was-here"),
			"reverse-map-wrote", "'%.16s'", b.to_domU_rw + 100);
		rc = pvio_gnt_unshare(b.p, b.to_domU_rw, 1);
		t_check(rc == 0, "unshare-to-domU", "%s", t_errname(rc));
	}
	goto out;
fail:
	t_put("back-state", "failed");
out:
	if (t_xs)
		xs_close(t_xs);
	pvio_platform_close(b.p);
	return t_result();
}

int main(int argc, char **argv)
{
	unsigned long dom;
	char *end;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && !strcmp(argv[1], "front"))
		return t_front_main();
	if (argc == 3 && !strcmp(argv[1], "back")) {
		errno = 0;
		dom = strtoul(argv[2], &end, 10);
		if (errno || end == argv[2] || *end || dom == 0 ||
		    dom >= PVIO_DOMID_SELF) {
			fprintf(stderr, "t-xenplat: bad domid '%s'\n",
				argv[2]);
			return 2;
		}
		return t_back_main((unsigned int)dom);
	}
	fprintf(stderr, "usage: t-xenplat front | t-xenplat back DOMID\n");
	return 2;
}
