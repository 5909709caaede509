// SPDX-License-Identifier: MIT
/*
 * pvio-simhv: the simulated hypervisor's state and its "hypercalls".
 *
 * Domains own a grant table and guest memory (memfds), and event-channel
 * ports. Processes attach to a domain over a socket; what a process
 * acquired (ports it bound, pages it shared, grants it mapped, active locks
 * it holds) is released when its socket closes, and a domain that only
 * lived for its processes dies with the last of them. Pages still mapped by
 * a grantee outlive their granter (as on Xen, where a dying domain stays a
 * zombie until its pages are unmapped).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <pvio/platform.h>

#include "simhv.h"
#include "sim-util.h"
#include "util.h"

/* ---- domains ------------------------------------------------------------ */

struct hv_dom *hv_dom_get(struct hv *hv, uint32_t domid)
{
	return domid <= SIM_MAX_DOMID ? hv->doms[domid] : NULL;
}

static void dom_free(struct hv_dom *d)
{
	unsigned int i;

	if (d->ports) {
		for (i = 0; i < SIM_MAX_PORTS; i++) {
			if (d->ports[i].e_recv >= 0)
				close(d->ports[i].e_recv);
			if (d->ports[i].e_peer >= 0)
				close(d->ports[i].e_peer);
		}
		free(d->ports);
	}
	if (d->gt_base)
		munmap(d->gt_base, d->gt_len);
	if (d->gt_fd >= 0)
		close(d->gt_fd);
	if (d->mem_fd >= 0)
		close(d->mem_fd);
	free(d->refs);
	free(d->ref_free);
	free(d->page_used);
	free(d->page_ref);
	free(d);
}

int hv_dom_create(struct hv *hv, uint32_t domid, const char *name,
		  uint32_t nr_pages, bool persistent, struct hv_dom **out)
{
	struct hv_dom *d;
	char nm[64];
	uint32_t i, n = hv->default_ents;
	int rc = -ENOMEM;

	if (domid > SIM_MAX_DOMID)
		return -EINVAL;
	if (hv->doms[domid])
		return -EEXIST;
	if (nr_pages == 0)
		nr_pages = hv->default_pages;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->gt_fd = d->mem_fd = -1;
	d->domid = domid;
	d->generation = ++hv->next_generation;
	d->persistent = persistent;
	d->nr_pages = nr_pages;
	snprintf(d->name, sizeof(d->name), "%s", name && *name ? name : "");
	d->refs = calloc(n, sizeof(*d->refs));
	d->ref_free = calloc(n, sizeof(*d->ref_free));
	d->page_used = calloc((nr_pages + 63) / 64, sizeof(uint64_t));
	d->page_ref = calloc(nr_pages, sizeof(uint32_t));
	d->ports = calloc(SIM_MAX_PORTS, sizeof(*d->ports));
	if (!d->refs || !d->ref_free || !d->page_used || !d->page_ref ||
	    !d->ports)
		goto fail;
	for (i = 0; i < SIM_MAX_PORTS; i++)
		d->ports[i].e_recv = d->ports[i].e_peer = -1;
	/* lowest refs first; the first 8 are reserved, as on Xen */
	for (i = n; i-- > SIM_GT_NR_RESERVED;)
		d->ref_free[d->nr_ref_free++] = i;

	snprintf(nm, sizeof(nm), "pvio-dom%u-gnttab", domid);
	d->gt_fd = memfd_create(nm, MFD_CLOEXEC);
	if (d->gt_fd < 0)
		goto fail_errno;
	d->gt_len = sim_gt_size(n);
	if (ftruncate(d->gt_fd, (off_t)d->gt_len) < 0)
		goto fail_errno;
	d->gt_base = mmap(NULL, d->gt_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			  d->gt_fd, 0);
	if (d->gt_base == MAP_FAILED) {
		d->gt_base = NULL;
		goto fail_errno;
	}
	((struct sim_gt_hdr *)d->gt_base)->magic = SIM_GT_MAGIC;
	((struct sim_gt_hdr *)d->gt_base)->nr_ents = n;
	((struct sim_gt_hdr *)d->gt_base)->nr_pages = nr_pages;
	((struct sim_gt_hdr *)d->gt_base)->domid = domid;
	((struct sim_gt_hdr *)d->gt_base)->generation = d->generation;
	sim_gt_view(&d->gt, d->gt_base);

	snprintf(nm, sizeof(nm), "pvio-dom%u-mem", domid);
	d->mem_fd = memfd_create(nm, MFD_CLOEXEC);
	if (d->mem_fd < 0)
		goto fail_errno;
	/* sparse: only touched pages take memory */
	if (ftruncate(d->mem_fd, (off_t)nr_pages * PVIO_PAGE_SIZE) < 0)
		goto fail_errno;

	hv->doms[domid] = d;
	log_info("domain %u%s%s created (%u pages, %u grant entries)", domid,
		 d->name[0] ? " " : "", d->name, nr_pages, n);
	if (hv->dom_introduced)
		hv->dom_introduced(hv, d);
	*out = d;
	return 0;

fail_errno:
	rc = -errno;
fail:
	dom_free(d);
	return rc;
}

/* Free the domain once nothing refers to it any more. */
static void dom_maybe_bury(struct hv *hv, struct hv_dom *d)
{
	if (!d->dying || d->nr_conns || d->foreign_pins)
		return;
	if (hv->doms[d->domid] == d) {
		hv->doms[d->domid] = NULL;
		log_info("domain %u released", d->domid);
		if (hv->dom_released)
			hv->dom_released(hv, d);
		d->grave_next = hv->grave;
		hv->grave = d;
	}
}

void hv_graveyard(struct hv *hv)
{
	struct hv_dom *d;

	while ((d = hv->grave)) {
		hv->grave = d->grave_next;
		dom_free(d);
	}
}

/* ---- active locks --------------------------------------------------------- */

static struct hv_conn *conn_by_id(struct hv *hv, uint32_t id)
{
	struct hv_conn *c;

	for (c = hv->conns; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static bool conn_gone(struct hv_conn *c)
{
	struct pollfd pfd = { .fd = c->fd, .events = POLLRDHUP };

	return c->dead || (poll(&pfd, 1, 0) == 1 &&
			   (pfd.revents & (POLLHUP | POLLRDHUP | POLLERR)));
}

/*
 * Take an entry's active lock. A holder keeps it for one page copy; if it
 * takes long, the holder may have died with it: reap that process now
 * (which breaks its locks) or take over a lock whose owner is unknown.
 */
static void hv_act_lock(struct hv *hv, struct sim_gt_active *a)
{
	unsigned long spins = 0;

	while (!sim_gt_trylock(a, SIM_HV_OWNER)) {
		uint32_t owner;
		struct hv_conn *c;

		if (++spins < 100000)
			continue;
		owner = __atomic_load_n(&a->lock, __ATOMIC_RELAXED);
		c = conn_by_id(hv, owner);
		if (!c) {
			__atomic_compare_exchange_n(&a->lock, &owner, 0, false,
						    __ATOMIC_ACQUIRE,
						    __ATOMIC_RELAXED);
		} else if (conn_gone(c)) {
			hv_conn_reap(hv, c);
		} else {
			sched_yield();
		}
		spins = 0;
	}
}

/* ---- grant table: granting side ---------------------------------------- */

static int page_alloc(struct hv_dom *d, uint32_t count, uint32_t *first)
{
	uint32_t start, i, run = 0, tries;

	if (count == 0 || count > d->nr_pages)
		return -EINVAL;
	/* first fit from the hint, wrapping once */
	start = d->page_hint;
	for (tries = 0, i = start; tries < d->nr_pages * 2u; tries++, i++) {
		if (i == d->nr_pages) {
			i = 0;
			run = 0;
		}
		if (d->page_used[i / 64] & (1ull << (i % 64))) {
			run = 0;
			continue;
		}
		if (++run == count) {
			uint32_t f = i + 1 - count, k;

			for (k = f; k <= i; k++)
				d->page_used[k / 64] |= 1ull << (k % 64);
			d->page_hint = (i + 1) % d->nr_pages;
			*first = f;
			return 0;
		}
	}
	return -ENOMEM;
}

static void page_free(struct hv_dom *d, uint32_t page)
{
	d->page_used[page / 64] &= ~(1ull << (page % 64));
	d->page_ref[page] = 0;
	/* give the memory back and hand out zeroed pages next time */
	fallocate(d->mem_fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		  (off_t)page * PVIO_PAGE_SIZE, PVIO_PAGE_SIZE);
}

/* End access and free ref and page; the entry must be unpinned. */
static void ref_release(struct hv_dom *d, uint32_t ref)
{
	struct hv_ref *r = &d->refs[ref];
	grant_entry_v1_t *e = &d->gt.ents[ref];

	__atomic_store_n(&e->flags, 0, __ATOMIC_RELEASE);
	e->domid = 0;
	e->frame = 0;
	page_free(d, r->page);
	r->state = HV_REF_FREE;
	r->conn_id = 0;
	d->ref_free[d->nr_ref_free++] = ref;
}

static int op_share(struct hv *hv, struct hv_conn *c,
		    const struct sim_gnt_share_req *req,
		    struct sim_gnt_share_reply *rep, size_t *replen)
{
	struct hv_dom *d = c->dom;
	uint32_t first, i;
	int rc;

	if (req->count == 0 || req->count > SIM_MAX_REFS ||
	    req->dom > SIM_MAX_DOMID)
		return -EINVAL;
	if (d->nr_ref_free < req->count)
		return -ENOMEM;
	rc = page_alloc(d, req->count, &first);
	if (rc)
		return rc;
	for (i = 0; i < req->count; i++) {
		uint32_t ref = d->ref_free[--d->nr_ref_free];
		grant_entry_v1_t *e = &d->gt.ents[ref];

		d->refs[ref].state = HV_REF_SHARED;
		d->refs[ref].conn_id = c->id;
		d->refs[ref].page = first + i;
		d->page_ref[first + i] = ref;
		e->domid = (domid_t)req->dom;
		e->frame = first + i;
		/* domid and frame before flags: the grant goes live last */
		__atomic_store_n(&e->flags,
				 (uint16_t)(GTF_permit_access |
					    (req->writable ? 0 : GTF_readonly)),
				 __ATOMIC_RELEASE);
		rep->refs[i] = ref;
	}
	rep->first_page = first;
	rep->count = req->count;
	*replen = sizeof(*rep) + sizeof(uint32_t) * req->count;
	return 0;
}

static int op_unshare(struct hv *hv, struct hv_conn *c,
		      const struct sim_gnt_unshare_req *req)
{
	struct hv_dom *d = c->dom;
	uint32_t i, ref;
	int rc = 0;

	if (req->count == 0 || req->first_page >= d->nr_pages ||
	    req->count > d->nr_pages - req->first_page)
		return -EINVAL;
	for (i = 0; i < req->count; i++) {
		ref = d->page_ref[req->first_page + i];
		if (!ref || d->refs[ref].state != HV_REF_SHARED ||
		    d->refs[ref].conn_id != c->id)
			return -EINVAL;
	}
	/* All or nothing: lock every entry (ascending refs are not
	 * guaranteed, but clients take at most two locks and never wait on
	 * simhv), refuse if any is still mapped. */
	for (i = 0; i < req->count; i++)
		hv_act_lock(hv, &d->gt.act[d->page_ref[req->first_page + i]]);
	for (i = 0; i < req->count; i++) {
		struct sim_gt_active *a;

		a = &d->gt.act[d->page_ref[req->first_page + i]];
		if (a->pin_rd || a->pin_wr)
			rc = -EBUSY;
	}
	for (i = 0; i < req->count; i++) {
		ref = d->page_ref[req->first_page + i];
		if (!rc)
			ref_release(d, ref);
		sim_gt_unlock(&d->gt.act[ref]);
	}
	return rc;
}

/* A process went away: end its grants; mapped ones wait for the unmap. */
static void revoke_conn_refs(struct hv *hv, struct hv_dom *d, uint32_t cid,
			     bool all)
{
	uint32_t ref;

	for (ref = SIM_GT_NR_RESERVED; ref < d->gt.nr_ents; ref++) {
		struct hv_ref *r = &d->refs[ref];
		struct sim_gt_active *a = &d->gt.act[ref];

		if (r->state != HV_REF_SHARED || (!all && r->conn_id != cid))
			continue;
		hv_act_lock(hv, a);
		if (a->pin_rd || a->pin_wr)
			r->state = HV_REF_ORPHAN;
		else
			ref_release(d, ref);
		sim_gt_unlock(a);
	}
}

/* ---- grant table: mapping side ------------------------------------------ */

static struct hv_pins *pins_get(struct hv_conn *c, struct hv_dom *g,
				bool create)
{
	struct hv_pins *pn;

	for (pn = c->pins; pn; pn = pn->next)
		if (pn->dom == g && pn->generation == g->generation)
			return pn;
	if (!create)
		return NULL;
	pn = calloc(1, sizeof(*pn));
	if (!pn)
		return NULL;
	pn->rd = calloc(g->gt.nr_ents, sizeof(uint16_t));
	pn->wr = calloc(g->gt.nr_ents, sizeof(uint16_t));
	if (!pn->rd || !pn->wr) {
		free(pn->rd);
		free(pn->wr);
		free(pn);
		return NULL;
	}
	pn->dom = g;
	pn->generation = g->generation;
	pn->next = c->pins;
	c->pins = pn;
	return pn;
}

static void unpin_one(struct hv *hv, struct hv_pins *pn, uint32_t ref,
		      bool writable)
{
	struct hv_dom *g = pn->dom;
	struct sim_gt_active *a = &g->gt.act[ref];

	hv_act_lock(hv, a);
	a->pin_rd--;
	pn->rd[ref]--;
	if (writable) {
		a->pin_wr--;
		pn->wr[ref]--;
	}
	sim_gt_update_busy(&g->gt, ref);
	if (!a->pin_rd && !a->pin_wr &&
	    (g->refs[ref].state == HV_REF_ORPHAN ||
	     (g->dying && g->refs[ref].state == HV_REF_SHARED)))
		ref_release(g, ref);
	sim_gt_unlock(a);
	pn->total--;
	g->foreign_pins--;
}

/* A record with no pins left goes at once: its domain may be buried next. */
static void pins_put(struct hv_conn *c, struct hv_pins *pn)
{
	struct hv_pins **pp;

	if (pn->total)
		return;
	for (pp = &c->pins; *pp; pp = &(*pp)->next)
		if (*pp == pn) {
			*pp = pn->next;
			break;
		}
	free(pn->rd);
	free(pn->wr);
	free(pn);
}

static void pins_drop_all(struct hv *hv, struct hv_conn *c)
{
	struct hv_pins *pn;
	uint32_t ref;

	while ((pn = c->pins)) {
		struct hv_dom *g = pn->dom;

		c->pins = pn->next;
		for (ref = 0; pn->total && ref < g->gt.nr_ents; ref++) {
			while (pn->wr[ref])
				unpin_one(hv, pn, ref, true);
			while (pn->rd[ref])
				unpin_one(hv, pn, ref, false);
		}
		free(pn->rd);
		free(pn->wr);
		free(pn);
		dom_maybe_bury(hv, g);
	}
}

static int op_map(struct hv *hv, struct hv_conn *c,
		  const struct sim_gnt_map_req *req, size_t reqlen,
		  struct sim_gnt_map_reply *rep)
{
	struct hv_dom *g = hv_dom_get(hv, req->dom);
	struct hv_pins *pn;
	bool w = req->writable != 0;
	uint32_t i;
	int rc = 0;

	if (req->count == 0 || req->count > SIM_MAX_REFS ||
	    reqlen < sizeof(*req) + sizeof(uint32_t) * req->count)
		return -EINVAL;
	if (!g || g->dying)
		return -ESRCH;
	pn = pins_get(c, g, true);
	if (!pn)
		return -ENOMEM;
	rep->generation = g->generation;
	rep->count = req->count;
	for (i = 0; i < req->count; i++) {
		uint32_t ref = req->refs[i];
		struct sim_gt_active *a;
		int64_t frame;

		if (ref >= g->gt.nr_ents) {
			rep->status[i] = -EINVAL;
			rc = rc ? rc : -EINVAL;
			continue;
		}
		a = &g->gt.act[ref];
		hv_act_lock(hv, a);
		frame = sim_gt_check(&g->gt, ref, c->dom->domid, w);
		if (frame >= 0 && (a->pin_rd == UINT16_MAX ||
				   pn->rd[ref] == UINT16_MAX))
			frame = -EBUSY;
		if (frame >= 0) {
			a->pin_rd++;
			pn->rd[ref]++;
			if (w) {
				a->pin_wr++;
				pn->wr[ref]++;
			}
			sim_gt_update_busy(&g->gt, ref);
			pn->total++;
			g->foreign_pins++;
			rep->frames[i] = (uint32_t)frame;
			rep->status[i] = 0;
		} else {
			rep->status[i] = (int32_t)frame;
			rc = rc ? rc : (int)frame;
		}
		sim_gt_unlock(a);
	}
	if (rc) {
		/* all or nothing, as xengnttab_map_domain_grant_refs */
		for (i = 0; i < req->count; i++)
			if (rep->status[i] == 0)
				unpin_one(hv, pn, req->refs[i], w);
		pins_put(c, pn);
	}
	return rc;
}

static int op_unmap(struct hv *hv, struct hv_conn *c,
		    const struct sim_gnt_unmap_req *req, size_t reqlen)
{
	struct hv_pins *pn;
	struct hv_dom *g;
	bool w = req->writable != 0;
	uint32_t i;

	if (req->count == 0 || req->count > SIM_MAX_REFS ||
	    reqlen < sizeof(*req) + sizeof(uint32_t) * req->count)
		return -EINVAL;
	for (pn = c->pins; pn; pn = pn->next)
		if (pn->dom->domid == req->dom &&
		    pn->generation == req->generation)
			break;
	if (!pn)
		return -EINVAL;
	for (i = 0; i < req->count; i++) {
		uint32_t ref = req->refs[i];

		if (ref >= pn->dom->gt.nr_ents || !pn->rd[ref] ||
		    (w && !pn->wr[ref]))
			return -EINVAL;
	}
	for (i = 0; i < req->count; i++)
		unpin_one(hv, pn, req->refs[i], w);
	g = pn->dom;
	pins_put(c, pn);
	dom_maybe_bury(hv, g);
	return 0;
}

/* ---- event channels ------------------------------------------------------ */

static int port_alloc(struct hv_dom *d)
{
	uint32_t p;

	for (p = 1; p < SIM_MAX_PORTS; p++)
		if (d->ports[p].state == PVIO_EVTCHN_CLOSED &&
		    d->ports[p].e_recv < 0)
			return (int)p;
	return -ENOSPC;
}

static void kick(int efd)
{
	uint64_t one = 1;

	if (efd >= 0 && write(efd, &one, sizeof(one)) < 0)
		return;
}

static void drain(int efd)
{
	uint64_t v;

	if (read(efd, &v, sizeof(v)) < 0)
		return;
}

static void port_free(struct hv_port *pt)
{
	if (pt->e_recv >= 0)
		close(pt->e_recv);
	if (pt->e_peer >= 0)
		close(pt->e_peer);
	memset(pt, 0, sizeof(*pt));
	pt->e_recv = pt->e_peer = -1;
}

/* Close port @p of @d: an interdomain peer reverts to unbound, kicked. */
static void port_close(struct hv *hv, struct hv_dom *d, uint32_t p)
{
	struct hv_port *pt = &d->ports[p];

	if (pt->state == PVIO_EVTCHN_INTERDOMAIN) {
		struct hv_dom *rd = hv_dom_get(hv, pt->remote_dom);

		if (rd && pt->remote_port < SIM_MAX_PORTS) {
			struct hv_port *rp = &rd->ports[pt->remote_port];

			if (rp->state == PVIO_EVTCHN_INTERDOMAIN &&
			    rp->remote_dom == d->domid &&
			    rp->remote_port == p) {
				rp->state = PVIO_EVTCHN_UNBOUND;
				rp->remote_port = 0;
				kick(rp->e_recv);
			}
		}
	}
	port_free(pt);
}

static int reply_port(struct hv_port *pt, uint32_t port,
		      struct sim_evtchn_reply *rep, int *fds)
{
	rep->port = port;
	rep->state = pt->state;
	rep->remote_dom = pt->remote_dom;
	rep->remote_port = pt->remote_port;
	fds[0] = pt->e_recv;
	fds[1] = pt->e_peer;
	return 0;
}

static int op_evtchn_alloc(struct hv *hv, struct hv_conn *c,
			   const struct sim_evtchn_req *req,
			   struct sim_evtchn_reply *rep, int *fds)
{
	struct hv_dom *d = c->dom;
	struct hv_port *pt;
	int p;

	if (req->remote_dom > SIM_MAX_DOMID)
		return -EINVAL;
	p = port_alloc(d);
	if (p < 0)
		return p;
	pt = &d->ports[p];
	pt->e_recv = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pt->e_peer = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pt->e_recv < 0 || pt->e_peer < 0) {
		int rc = -errno;

		port_free(pt);
		return rc;
	}
	pt->state = PVIO_EVTCHN_UNBOUND;
	pt->owner = c;
	pt->remote_dom = req->remote_dom;
	pt->remote_port = 0;
	return reply_port(pt, (uint32_t)p, rep, fds);
}

static int op_evtchn_bind(struct hv *hv, struct hv_conn *c,
			  const struct sim_evtchn_req *req,
			  struct sim_evtchn_reply *rep, int *fds)
{
	struct hv_dom *d = c->dom, *rd = hv_dom_get(hv, req->remote_dom);
	struct hv_port *pt, *rp;
	int p;

	if (req->port == 0 || req->port >= SIM_MAX_PORTS)
		return -EINVAL;
	if (!rd || rd->dying)
		return -ESRCH;
	rp = &rd->ports[req->port];
	if (rp->state != PVIO_EVTCHN_UNBOUND || rp->remote_dom != d->domid)
		return -EINVAL;
	p = port_alloc(d);
	if (p < 0)
		return p;
	pt = &d->ports[p];
	pt->e_recv = fcntl(rp->e_peer, F_DUPFD_CLOEXEC, 0);
	pt->e_peer = fcntl(rp->e_recv, F_DUPFD_CLOEXEC, 0);
	if (pt->e_recv < 0 || pt->e_peer < 0) {
		int rc = -errno;

		port_free(pt);
		return rc;
	}
	/* whatever was sent before the bind was sent into the void */
	drain(pt->e_recv);
	pt->state = PVIO_EVTCHN_INTERDOMAIN;
	pt->owner = c;
	pt->remote_dom = rd->domid;
	pt->remote_port = req->port;
	rp->state = PVIO_EVTCHN_INTERDOMAIN;
	rp->remote_port = (uint32_t)p;
	return reply_port(pt, (uint32_t)p, rep, fds);
}

static int op_evtchn_close(struct hv *hv, struct hv_conn *c,
			   const struct sim_evtchn_req *req)
{
	struct hv_dom *d = c->dom;

	if (req->port == 0 || req->port >= SIM_MAX_PORTS ||
	    d->ports[req->port].state == PVIO_EVTCHN_CLOSED ||
	    d->ports[req->port].owner != c)
		return -EINVAL;
	port_close(hv, d, req->port);
	return 0;
}

static int op_evtchn_status(struct hv *hv, struct hv_conn *c,
			    const struct sim_evtchn_req *req,
			    struct sim_evtchn_reply *rep)
{
	struct hv_port *pt;

	if (req->port == 0 || req->port >= SIM_MAX_PORTS)
		return -EINVAL;
	pt = &c->dom->ports[req->port];
	rep->port = req->port;
	rep->state = pt->state;
	rep->remote_dom = pt->remote_dom;
	rep->remote_port = pt->remote_port;
	return 0;
}

/* ---- death ------------------------------------------------------------------ */

void hv_dom_kill(struct hv *hv, struct hv_dom *d)
{
	struct hv_conn *c;
	uint32_t p;

	if (d->dying)
		return;
	d->dying = true;
	__atomic_store_n(&d->gt.hdr->dead, 1, __ATOMIC_RELEASE);
	log_info("domain %u dying", d->domid);
	/* its processes go with it (toolstack destroy) */
	for (c = hv->conns; c; c = c->next)
		if (c->dom == d && c->pid > 0 && !c->dead)
			kill(c->pid, SIGKILL);
	for (p = 1; p < SIM_MAX_PORTS; p++)
		if (d->ports[p].state != PVIO_EVTCHN_CLOSED)
			port_close(hv, d, p);
	revoke_conn_refs(hv, d, 0, true);
	dom_maybe_bury(hv, d);
}

static void break_locks(struct hv *hv, uint32_t id)
{
	uint32_t dom, ref;

	for (dom = 0; dom <= SIM_MAX_DOMID; dom++) {
		struct hv_dom *d = hv->doms[dom];

		if (!d)
			continue;
		for (ref = 0; ref < d->gt.nr_ents; ref++)
			if (__atomic_load_n(&d->gt.act[ref].lock,
					    __ATOMIC_RELAXED) == id)
				__atomic_compare_exchange_n(
					&d->gt.act[ref].lock, &id, 0, false,
					__ATOMIC_RELEASE, __ATOMIC_RELAXED);
	}
}

void hv_conn_reap(struct hv *hv, struct hv_conn *c)
{
	struct hv_dom *d = c->dom;
	uint32_t p;

	if (c->dead)
		return;
	c->dead = true;
	break_locks(hv, c->id);
	pins_drop_all(hv, c);
	if (d) {
		for (p = 1; p < SIM_MAX_PORTS; p++)
			if (d->ports[p].state != PVIO_EVTCHN_CLOSED &&
			    d->ports[p].owner == c)
				port_close(hv, d, p);
		revoke_conn_refs(hv, d, c->id, false);
		d->nr_conns--;
		log_debug("process %d of domain %u detached", (int)c->pid,
			  d->domid);
		if (!d->persistent && d->nr_conns == 0)
			hv_dom_kill(hv, d);
		dom_maybe_bury(hv, d);
	}
}

/* ---- hello, domains, toolstack --------------------------------------------- */

static int op_hello(struct hv *hv, struct hv_conn *c,
		    const struct sim_hello *req, struct sim_hello_reply *rep,
		    int *fds)
{
	struct hv_dom *d;
	int rc;

	if (c->dom)
		return -EALREADY;
	if (req->version != SIM_PROTO_VERSION)
		return -EPROTONOSUPPORT;
	if (req->domid > SIM_MAX_DOMID)
		return -EINVAL;
	d = hv_dom_get(hv, req->domid);
	if (d && d->dying)
		return -EEXIST;
	if (!d) {
		if (!(req->flags & PVIO_PLATFORM_CREATE))
			return -ESRCH;
		rc = hv_dom_create(hv, req->domid, NULL, 0, false, &d);
		if (rc)
			return rc;
	}
	c->dom = d;
	d->nr_conns++;
	rep->conn_id = c->id;
	rep->domid = d->domid;
	rep->generation = d->generation;
	rep->nr_pages = d->nr_pages;
	fds[0] = d->mem_fd;
	log_debug("process %d attached to domain %u", (int)c->pid, d->domid);
	return 1;
}

static void fill_dominfo(const struct hv_dom *d, struct sim_domain_reply *r)
{
	r->domid = d->domid;
	r->dying = d->dying;
	r->nr_procs = d->nr_conns;
	r->persistent = d->persistent;
	snprintf(r->name, sizeof(r->name), "%s", d->name);
}

static int op_domain_create(struct hv *hv, struct hv_conn *c,
			    const struct sim_domain_req *req,
			    struct sim_domain_reply *rep)
{
	struct hv_dom *d;
	char name[sizeof(req->name) + 1];
	uint32_t domid = req->domid;
	int rc;

	if (c->dom->domid != 0)
		return -EPERM;
	memcpy(name, req->name, sizeof(req->name));
	name[sizeof(req->name)] = 0;
	if (domid == 0) {	/* pick the lowest free id */
		for (domid = 1; domid <= SIM_MAX_DOMID; domid++)
			if (!hv->doms[domid])
				break;
		if (domid > SIM_MAX_DOMID)
			return -ENOSPC;
	}
	rc = hv_dom_create(hv, domid, name, req->nr_pages, true, &d);
	if (rc)
		return rc;
	fill_dominfo(d, rep);
	return 0;
}

static int op_domain_destroy(struct hv *hv, struct hv_conn *c,
			     const struct sim_domain_req *req)
{
	struct hv_dom *d = hv_dom_get(hv, req->domid);

	if (c->dom->domid != 0)
		return -EPERM;
	if (req->domid == 0)
		return -EINVAL;
	if (!d || d->dying)
		return -ESRCH;
	d->persistent = false;
	hv_dom_kill(hv, d);
	return 0;
}

/* ---- dispatch --------------------------------------------------------------- */

void hv_dispatch(struct hv *hv, struct hv_conn *c, const void *msg,
		 size_t len)
{
	static union {
		struct sim_msg_hdr hdr;
		char buf[SIM_MAX_MSG];
	} out;
	const struct sim_msg_hdr *h = msg;
	const void *req = (const char *)msg + sizeof(*h);
	void *rep = out.buf + sizeof(out.hdr);
	size_t reqlen, replen = 0;
	int fds[SIM_MAX_FDS], nfds = 0, rc;

	if (len < sizeof(*h) || h->len != len) {
		log_warn("process %d: malformed message, dropping it",
			 (int)c->pid);
		hv_conn_reap(hv, c);
		return;
	}
	reqlen = len - sizeof(*h);
	memset(&out.hdr, 0, sizeof(out.hdr));
	out.hdr.op = h->op;

#define NEED(type) do { if (reqlen < sizeof(type)) { rc = -EINVAL; goto done; } } while (0)
	if (!c->dom && h->op != SIM_OP_HELLO) {
		rc = -EPERM;
		goto done;
	}
	switch (h->op) {
	case SIM_OP_HELLO:
		NEED(struct sim_hello);
		rc = op_hello(hv, c, req, rep, fds);
		if (rc == 1) {
			nfds = 1;
			rc = 0;
		}
		replen = sizeof(struct sim_hello_reply);
		break;
	case SIM_OP_EVTCHN_ALLOC:
		NEED(struct sim_evtchn_req);
		rc = op_evtchn_alloc(hv, c, req, rep, fds);
		nfds = rc ? 0 : 2;
		replen = sizeof(struct sim_evtchn_reply);
		break;
	case SIM_OP_EVTCHN_BIND:
		NEED(struct sim_evtchn_req);
		rc = op_evtchn_bind(hv, c, req, rep, fds);
		nfds = rc ? 0 : 2;
		replen = sizeof(struct sim_evtchn_reply);
		break;
	case SIM_OP_EVTCHN_CLOSE:
		NEED(struct sim_evtchn_req);
		rc = op_evtchn_close(hv, c, req);
		break;
	case SIM_OP_EVTCHN_STATUS:
		NEED(struct sim_evtchn_req);
		rc = op_evtchn_status(hv, c, req, rep);
		replen = sizeof(struct sim_evtchn_reply);
		break;
	case SIM_OP_GNT_SHARE:
		NEED(struct sim_gnt_share_req);
		rc = op_share(hv, c, req, rep, &replen);
		break;
	case SIM_OP_GNT_UNSHARE:
		NEED(struct sim_gnt_unshare_req);
		rc = op_unshare(hv, c, req);
		break;
	case SIM_OP_GNT_MAP:
		NEED(struct sim_gnt_map_req);
		rc = op_map(hv, c, req, reqlen, rep);
		replen = sizeof(struct sim_gnt_map_reply);
		break;
	case SIM_OP_GNT_UNMAP:
		NEED(struct sim_gnt_unmap_req);
		rc = op_unmap(hv, c, req, reqlen);
		break;
	case SIM_OP_FOREIGN_OPEN: {
		const struct sim_foreign_req *fr = req;
		struct sim_foreign_reply *fp = rep;
		struct hv_dom *g;

		NEED(struct sim_foreign_req);
		g = hv_dom_get(hv, fr->dom);
		if (!g || g->dying) {
			rc = -ESRCH;
			break;
		}
		fp->generation = g->generation;
		fp->nr_ents = g->gt.nr_ents;
		fp->nr_pages = g->nr_pages;
		fds[0] = g->gt_fd;
		fds[1] = g->mem_fd;
		nfds = 2;
		replen = sizeof(*fp);
		rc = 0;
		break;
	}
	case SIM_OP_DOMAIN_INFO: {
		const struct sim_domain_req *dr = req;
		struct hv_dom *g;

		NEED(struct sim_domain_req);
		g = hv_dom_get(hv, dr->domid);
		if (!g) {
			rc = -ESRCH;
			break;
		}
		fill_dominfo(g, rep);
		replen = sizeof(struct sim_domain_reply);
		rc = 0;
		break;
	}
	case SIM_OP_DOMAIN_CREATE:
		NEED(struct sim_domain_req);
		rc = op_domain_create(hv, c, req, rep);
		replen = sizeof(struct sim_domain_reply);
		break;
	case SIM_OP_DOMAIN_DESTROY:
		NEED(struct sim_domain_req);
		rc = op_domain_destroy(hv, c, req);
		break;
	case SIM_OP_DOMAIN_LIST: {
		struct sim_domain_list_reply *lr = rep;
		size_t max = (sizeof(out) - sizeof(out.hdr) - sizeof(*lr)) /
			     sizeof(lr->doms[0]);
		uint32_t dom;

		lr->count = 0;
		for (dom = 0; dom <= SIM_MAX_DOMID && lr->count < max; dom++)
			if (hv->doms[dom])
				fill_dominfo(hv->doms[dom],
					     &lr->doms[lr->count++]);
		replen = sizeof(*lr) + lr->count * sizeof(lr->doms[0]);
		rc = 0;
		break;
	}
	case SIM_OP_SHUTDOWN:
		if (c->dom->domid != 0) {
			rc = -EPERM;
			break;
		}
		log_info("shutdown requested by process %d", (int)c->pid);
		hv->stop = true;
		rc = 0;
		break;
	default:
		rc = -ENOSYS;
		break;
	}
#undef NEED
done:
	if (rc < 0) {
		nfds = 0;
		if (h->op != SIM_OP_GNT_MAP)
			replen = 0;
	}
	out.hdr.rc = rc;
	out.hdr.len = (uint32_t)(sizeof(out.hdr) + replen);
	if (pvio__sim_send(c->fd, out.buf, out.hdr.len, fds,
			   (unsigned int)nfds) < 0)
		hv_conn_reap(hv, c);
}
