// SPDX-License-Identifier: MIT
/*
 * The xen platform provider: libxenevtchn for event channels, libxengnttab
 * for grant map and grant copy (dom0, or any domain with gntdev),
 * xengntshr (gntalloc) for granting pages, libxenctrl for domain
 * information, event-channel status and the grant table's frames (dom0
 * only): the three things no stable Xen library offers (see each call). Each library's
 * -1/errno convention is turned into -errno here, at the boundary, and
 * their loggers are silenced: errors travel as return values.
 *
 * What real Xen (4.17, Linux gntdev) answers, and how it is made to match
 * platform.h (checked by tests/xen, scenario "platform"):
 *  - Xen reports GNTST_general_error alike for an entry that is unused or
 *    revoked, granted to another domain, or read-only for a write; gntdev
 *    turns any failed map into EINVAL from mmap(). xen_gnt_why() finds out
 *    which, on the error path only.
 *  - gntdev refuses a whole copy batch (EINVAL, no status written) if one
 *    segment crosses the end of a granted page; xen_gnt_copy() fails such
 *    segments alone and issues the others.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>
#include <xentoollog.h>

#include "private.h"

_Static_assert(sizeof(struct pvio_gnt_copy_seg) ==
	       sizeof(xengnttab_grant_copy_segment_t), "copy segment");
_Static_assert(offsetof(struct pvio_gnt_copy_seg, len) ==
	       offsetof(xengnttab_grant_copy_segment_t, len), "copy len");
_Static_assert(offsetof(struct pvio_gnt_copy_seg, flags) ==
	       offsetof(xengnttab_grant_copy_segment_t, flags), "copy flags");
_Static_assert(offsetof(struct pvio_gnt_copy_seg, status) ==
	       offsetof(xengnttab_grant_copy_segment_t, status), "status");
_Static_assert(PVIO_GNTCOPY_SOURCE_GREF == GNTCOPY_source_gref, "src");
_Static_assert(PVIO_GNTCOPY_DEST_GREF == GNTCOPY_dest_gref, "dst");

struct xen_share {
	struct xen_share *next;
	void *addr;
	unsigned int count;
};

struct xen_ctx {
	xenevtchn_handle *xce;
	xengnttab_handle *xgt;	/* NULL without gntdev */
	xengntshr_handle *xgs;	/* NULL without gntalloc */
	xc_interface *xch;	/* NULL outside dom0 */
	pthread_mutex_t lock;
	struct xen_share *shares;
};

static inline struct xen_ctx *XCTX(struct pvio_platform *p)
{
	return p->ctx;
}

static int neg_errno(void)
{
	return errno ? -errno : -EIO;
}

/* The libraries log to stderr unless given a logger: give them one that
 * drops everything. */
static void quiet_vmessage(struct xentoollog_logger *logger,
			   xentoollog_level level, int errnoval,
			   const char *context, const char *format, va_list al)
{
}

static void quiet_destroy(struct xentoollog_logger *logger)
{
}

static xentoollog_logger quiet_logger = {
	.vmessage = quiet_vmessage,
	.destroy = quiet_destroy,
};

/* GNTST_general_error is left to xen_gnt_why(): it means several things. */
static int gntst_to_errno(int16_t st)
{
	switch (st) {
	case GNTST_okay:
		return 0;
	case GNTST_bad_domain:
		return -ESRCH;
	case GNTST_bad_gntref:		/* past the granter's table */
		return -EINVAL;
	case GNTST_permission_denied:
		return -EPERM;
	case GNTST_bad_copy_arg:
	case GNTST_bad_page:
		return -EINVAL;
	case GNTST_eagain:
		return -EAGAIN;
	case GNTST_no_space:
	case GNTST_no_device_space:
		return -ENOSPC;
	default:
		return -EIO;
	}
}

/* ---- event channels ------------------------------------------------------ */

static int xen_evtchn_fd(struct pvio_platform *p)
{
	return xenevtchn_fd(XCTX(p)->xce);
}

static int xen_evtchn_alloc_unbound(struct pvio_platform *p, unsigned int rdom)
{
	int port = xenevtchn_bind_unbound_port(XCTX(p)->xce, rdom);

	return port < 0 ? neg_errno() : port;
}

static int xen_evtchn_bind(struct pvio_platform *p, unsigned int rdom,
			   pvio_port_t rport)
{
	int port = xenevtchn_bind_interdomain(XCTX(p)->xce, rdom, rport);

	return port < 0 ? neg_errno() : port;
}

static int xen_evtchn_close(struct pvio_platform *p, pvio_port_t port)
{
	return xenevtchn_unbind(XCTX(p)->xce, port) < 0 ? neg_errno() : 0;
}

static int xen_evtchn_notify(struct pvio_platform *p, pvio_port_t port)
{
	return xenevtchn_notify(XCTX(p)->xce, port) < 0 ? neg_errno() : 0;
}

static int xen_evtchn_pending(struct pvio_platform *p)
{
	int port = xenevtchn_pending(XCTX(p)->xce);

	if (port < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN
							       : neg_errno();
	return port;
}

static int xen_evtchn_unmask(struct pvio_platform *p, pvio_port_t port)
{
	return xenevtchn_unmask(XCTX(p)->xce, port) < 0 ? neg_errno() : 0;
}

/* EVTCHNOP_status through libxenctrl (privcmd): dom0 only. libxenevtchn,
 * the stable library, has no such call. */
static int xen_evtchn_status(struct pvio_platform *p, pvio_port_t port,
			     struct pvio_evtchn_status *st)
{
	struct xen_ctx *x = XCTX(p);
	xc_evtchn_status_t s = { .dom = DOMID_SELF, .port = port };

	if (!x->xch)
		return -ENOSYS;
	if (port == 0)		/* never allocated, as in the sim */
		return -EINVAL;
	if (xc_evtchn_status(x->xch, &s) < 0)
		return neg_errno();
	memset(st, 0, sizeof(*st));
	switch (s.status) {
	case EVTCHNSTAT_closed:
		st->state = PVIO_EVTCHN_CLOSED;
		break;
	case EVTCHNSTAT_unbound:
		st->state = PVIO_EVTCHN_UNBOUND;
		st->remote_dom = s.u.unbound.dom;
		break;
	case EVTCHNSTAT_interdomain:
		st->state = PVIO_EVTCHN_INTERDOMAIN;
		st->remote_dom = s.u.interdomain.dom;
		st->remote_port = s.u.interdomain.port;
		break;
	default:		/* pirq, virq, ipi: not a port of ours */
		return -EINVAL;
	}
	return 0;
}

/* ---- grants ----------------------------------------------------------------- */

static int xen_gnt_share(struct pvio_platform *p, unsigned int dom,
			 unsigned int count, bool writable, pvio_gref_t *refs,
			 void **addr)
{
	struct xen_ctx *x = XCTX(p);
	struct xen_share *sh;
	void *a;

	if (!x->xgs)
		return -ENOSYS;
	sh = malloc(sizeof(*sh));
	if (!sh)
		return -ENOMEM;
	a = xengntshr_share_pages(x->xgs, dom, (int)count, refs, writable);
	if (!a) {
		int rc = neg_errno();

		free(sh);
		return rc;
	}
	sh->addr = a;
	sh->count = count;
	pthread_mutex_lock(&x->lock);
	sh->next = x->shares;
	x->shares = sh;
	pthread_mutex_unlock(&x->lock);
	*addr = a;
	return 0;
}

static int xen_gnt_unshare(struct pvio_platform *p, void *addr,
			   unsigned int count)
{
	struct xen_ctx *x = XCTX(p);
	struct xen_share **pp, *sh;
	int rc;

	pthread_mutex_lock(&x->lock);
	for (pp = &x->shares; (sh = *pp); pp = &sh->next)
		if (sh->addr == addr && sh->count == count)
			break;
	if (!sh) {
		pthread_mutex_unlock(&x->lock);
		return -EINVAL;
	}
	*pp = sh->next;
	pthread_mutex_unlock(&x->lock);
	free(sh);
	/* gntalloc ends access itself, deferring pages still mapped */
	rc = xengntshr_unshare(x->xgs, addr, count);
	return rc < 0 ? neg_errno() : 0;
}

/*
 * Read entry @ref of @dom's grant table, as the hypervisor's check does
 * (dom0 maps the granter's v1 table read-only). Return -ENOENT, -EPERM,
 * -EINVAL, 0 if the access is allowed, or -ENOSYS if we cannot look.
 */
static int xen_gnt_entry_check(struct pvio_platform *p, unsigned int dom,
			       uint32_t ref, bool write)
{
	struct xen_ctx *x = XCTX(p);
	long pg = sysconf(_SC_PAGESIZE);
	grant_entry_v1_t *gt;
	uint16_t flags;
	int n = 0, rc;

	if (!x->xch || xc_gnttab_get_version(x->xch, dom) != 1)
		return -ENOSYS;
	gt = xc_gnttab_map_table_v1(x->xch, dom, &n);
	if (!gt || n <= 0)
		return -ENOSYS;
	if (ref >= (uint32_t)n) {
		rc = -EINVAL;
	} else {
		/* flags first: the granter writes domid and frame before */
		flags = __atomic_load_n(&gt[ref].flags, __ATOMIC_ACQUIRE);
		if ((flags & GTF_type_mask) != GTF_permit_access)
			rc = -ENOENT;
		else if (gt[ref].domid != p->self)
			rc = -EPERM;
		else if (write && (flags & GTF_readonly))
			rc = -EPERM;
		else
			rc = 0;
	}
	munmap(gt, ((size_t)n * sizeof(*gt) + (size_t)pg - 1) &
			   ~((size_t)pg - 1));
	return rc;
}

/*
 * Why may we not use grant @ref of @dom (to write it if @write)? Cold path:
 * Xen said GNTST_general_error, or gntdev said EINVAL for a map. Without
 * libxenctrl, a one-byte read copy tells missing from readable, but not
 * "someone else's" from "not granted" (both -ENOENT then).
 * Return: -ENOENT, -EPERM, -EINVAL, -ESRCH; 0 if the access looks allowed;
 * 1 if the page is readable and we cannot tell about writing.
 */
static int xen_gnt_why(struct pvio_platform *p, unsigned int dom,
		       uint32_t ref, bool write)
{
	xengnttab_grant_copy_segment_t seg = { 0 };
	unsigned char byte;
	int rc = xen_gnt_entry_check(p, dom, ref, write);

	if (rc != -ENOSYS)
		return rc;
	seg.source.foreign.ref = ref;
	seg.source.foreign.domid = (uint16_t)dom;
	seg.dest.virt = &byte;
	seg.len = 1;
	seg.flags = GNTCOPY_source_gref;
	if (xengnttab_grant_copy(XCTX(p)->xgt, 1, &seg) < 0)
		return neg_errno();
	if (seg.status == GNTST_okay)
		return write ? 1 : 0;
	if (seg.status == GNTST_general_error)
		return -ENOENT;
	return gntst_to_errno(seg.status);
}

static int xen_gnt_map(struct pvio_platform *p, unsigned int dom,
		       unsigned int count, const pvio_gref_t *refs,
		       bool writable, void **addr)
{
	struct xen_ctx *x = XCTX(p);
	bool unsure = false;
	unsigned int i;
	void *a;
	int rc;

	if (!x->xgt)
		return -ENOSYS;
	a = xengnttab_map_domain_grant_refs(x->xgt, count, dom,
					    (uint32_t *)refs,
					    PROT_READ | (writable ? PROT_WRITE : 0));
	if (a) {
		*addr = a;
		return 0;
	}
	rc = neg_errno();
	/* gntdev's mmap() says EINVAL for every refused grant: ask why. */
	if (rc != -EINVAL)
		return rc;
	for (i = 0; i < count; i++) {
		int why = xen_gnt_why(p, dom, refs[i], writable);

		if (why < 0)
			return why;
		unsure |= why == 1;
	}
	/* every page readable, one is not writable for us */
	return unsure ? -EPERM : rc;
}

static int xen_gnt_unmap(struct pvio_platform *p, void *addr,
			 unsigned int count)
{
	return xengnttab_unmap(XCTX(p)->xgt, addr, count) < 0 ? neg_errno() : 0;
}

/* Would gntdev refuse the whole batch because of this segment? */
static bool xen_copy_seg_bad(const struct pvio_gnt_copy_seg *sg)
{
	unsigned int f = sg->flags;

	if (f & ~(unsigned int)(GNTCOPY_source_gref | GNTCOPY_dest_gref))
		return true;
	if (!(f & (GNTCOPY_source_gref | GNTCOPY_dest_gref)))
		return true;	/* local to local: gntdev refuses */
	if ((f & GNTCOPY_source_gref) &&
	    sg->source.foreign.offset + sg->len > PVIO_PAGE_SIZE)
		return true;
	if ((f & GNTCOPY_dest_gref) &&
	    sg->dest.foreign.offset + sg->len > PVIO_PAGE_SIZE)
		return true;
	return false;
}

/* A segment Xen failed with GNTST_general_error: which side, and why? */
static int xen_copy_seg_why(struct pvio_platform *p,
			    const struct pvio_gnt_copy_seg *sg)
{
	int why;

	if (sg->flags & GNTCOPY_source_gref) {
		why = xen_gnt_why(p, sg->source.foreign.domid,
				  sg->source.foreign.ref, false);
		if (why < 0)
			return why;
	}
	if (sg->flags & GNTCOPY_dest_gref) {
		why = xen_gnt_why(p, sg->dest.foreign.domid,
				  sg->dest.foreign.ref, true);
		if (why < 0)
			return why;
		if (why == 1)
			return -EPERM;	/* readable, so not writable */
	}
	return -EIO;
}

/* Issue segs[0..n) in one call, then turn each status into -errno. */
static int xen_copy_run(struct pvio_platform *p,
			struct pvio_gnt_copy_seg *segs, unsigned int n)
{
	unsigned int i;

	if (n == 0)
		return 0;
	if (xengnttab_grant_copy(XCTX(p)->xgt, n,
				 (xengnttab_grant_copy_segment_t *)segs) < 0)
		return neg_errno();
	for (i = 0; i < n; i++) {
		int16_t st = segs[i].status;

		segs[i].status = (int16_t)(st == GNTST_general_error ?
					   xen_copy_seg_why(p, &segs[i]) :
					   gntst_to_errno(st));
	}
	return 0;
}

static int xen_gnt_copy(struct pvio_platform *p,
			struct pvio_gnt_copy_seg *segs, unsigned int count)
{
	struct xen_ctx *x = XCTX(p);
	unsigned int i, start = 0;
	int rc;

	if (!x->xgt)
		return -ENOSYS;
	/* Segments gntdev would fail the batch for fail alone; the runs
	 * between them go as they are (one call when all are good). */
	for (i = 0; i < count; i++) {
		if (!xen_copy_seg_bad(&segs[i]))
			continue;
		rc = xen_copy_run(p, segs + start, i - start);
		if (rc)
			return rc;
		segs[i].status = -EINVAL;
		start = i + 1;
	}
	return xen_copy_run(p, segs + start, count - start);
}

/* ---- domains ---------------------------------------------------------------- */

/*
 * Domain state through libxenctrl: XEN_DOMCTL_getdomaininfo has no
 * stable-library wrapper (libxenstore's @releaseDomain tells only that
 * some domain died; libxenevtchn, libxengnttab and libxenforeignmemory
 * do not look at domains). Xen 4.18 replaced xc_domain_getinfo() (gone)
 * by xc_domain_getinfo_single(); configure finds which one there is.
 */
static int xen_domain_info(struct pvio_platform *p, unsigned int domid,
			   struct pvio_dominfo *info)
{
	struct xen_ctx *x = XCTX(p);
#ifdef HAVE_XC_DOMAIN_GETINFO_SINGLE
	xc_domaininfo_t di;

	if (!x->xch)
		return -ENOSYS;
	if (xc_domain_getinfo_single(x->xch, domid, &di) < 0)
		return errno == ESRCH || errno == EINVAL ? -ESRCH : neg_errno();
	info->domid = domid;
	info->dying = !!(di.flags & XEN_DOMINF_dying);
	info->shutdown = !!(di.flags & XEN_DOMINF_shutdown);
#else
	xc_dominfo_t di;

	if (!x->xch)
		return -ENOSYS;
	if (xc_domain_getinfo(x->xch, domid, 1, &di) != 1 || di.domid != domid)
		return -ESRCH;
	info->domid = domid;
	info->dying = di.dying;
	info->shutdown = di.shutdown;
#endif
	return 0;
}

/* ---- open/close ----------------------------------------------------------------- */

static void xen_close(struct pvio_platform *p)
{
	struct xen_ctx *x = XCTX(p);
	struct xen_share *sh;

	if (!x)
		return;
	while ((sh = x->shares)) {
		x->shares = sh->next;
		xengntshr_unshare(x->xgs, sh->addr, sh->count);
		free(sh);
	}
	if (x->xch)
		xc_interface_close(x->xch);
	if (x->xgs)
		xengntshr_close(x->xgs);
	if (x->xgt)
		xengnttab_close(x->xgt);
	if (x->xce)
		xenevtchn_close(x->xce);
	pthread_mutex_destroy(&x->lock);
	free(x);
	p->ctx = NULL;
}

/* Our domid: xenstore's relative "domid" key, written by the toolstack. */
static int xen_self_domid(unsigned int *domid)
{
	struct xs_handle *xs = xs_open(0);
	unsigned int len = 0;
	char *v, *end;
	unsigned long d;
	int rc = -ENOENT;

	if (!xs)
		return neg_errno();
	v = xs_read(xs, XBT_NULL, "domid", &len);
	if (v) {
		errno = 0;
		d = strtoul(v, &end, 10);
		rc = (errno || *end || end == v || d >= PVIO_DOMID_SELF) ?
			     -EPROTO : 0;
		if (!rc)
			*domid = (unsigned int)d;
		free(v);
	}
	xs_close(xs);
	return rc;
}

int pvio__xen_open(struct pvio_platform *p, unsigned int flags)
{
	struct xen_ctx *x;
	int rc;

	(void)flags;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	pthread_mutex_init(&x->lock, NULL);
	p->ops = &pvio_xen_platform_ops;
	p->ctx = x;
	/* quiet loggers: we report errors through return values */
	x->xce = xenevtchn_open(&quiet_logger, 0);
	if (!x->xce) {
		rc = neg_errno();
		goto fail;
	}
	/* libxenevtchn opens /dev/xen/evtchn blocking: xenevtchn_pending()
	 * would then wait for the next event instead of saying -EAGAIN,
	 * and a loop draining the pending ports hangs once its peer is
	 * gone (platform.h: pending returns a port or -EAGAIN). */
	{
		int fd = xenevtchn_fd(x->xce);
		int fl = fcntl(fd, F_GETFL);

		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			rc = neg_errno();
			goto fail;
		}
	}
	x->xgt = xengnttab_open(&quiet_logger, 0);
	x->xgs = xengntshr_open(&quiet_logger, 0);
	x->xch = xc_interface_open(&quiet_logger, &quiet_logger, 0);
	if (!x->xgt && !x->xgs) {
		rc = -ENOENT;
		goto fail;
	}
	rc = xen_self_domid(&p->self);
	if (rc)
		goto fail;
	return 0;
fail:
	xen_close(p);
	return rc;
}

const struct pvio_platform_ops pvio_xen_platform_ops = {
	.name = "xen",
	.close = xen_close,
	.evtchn_fd = xen_evtchn_fd,
	.evtchn_alloc_unbound = xen_evtchn_alloc_unbound,
	.evtchn_bind = xen_evtchn_bind,
	.evtchn_close = xen_evtchn_close,
	.evtchn_notify = xen_evtchn_notify,
	.evtchn_pending = xen_evtchn_pending,
	.evtchn_unmask = xen_evtchn_unmask,
	.evtchn_status = xen_evtchn_status,
	.gnt_share = xen_gnt_share,
	.gnt_unshare = xen_gnt_unshare,
	.gnt_map = xen_gnt_map,
	.gnt_unmap = xen_gnt_unmap,
	.gnt_copy = xen_gnt_copy,
	.domain_info = xen_domain_info,
};
