// SPDX-License-Identifier: MIT
/*
 * The xen platform provider: libxenevtchn for event channels, libxengnttab
 * for grant map and grant copy (dom0, or any domain with gntdev),
 * xengntshr (gntalloc) for granting pages, libxenctrl for domain
 * information (dom0 only). Each library's -1/errno convention is turned
 * into -errno here, at the boundary.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>

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

static int gntst_to_errno(int16_t st)
{
	switch (st) {
	case GNTST_okay:
		return 0;
	case GNTST_bad_domain:
		return -ESRCH;
	case GNTST_bad_gntref:
		return -ENOENT;
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

static int xen_gnt_map(struct pvio_platform *p, unsigned int dom,
		       unsigned int count, const pvio_gref_t *refs,
		       bool writable, void **addr)
{
	struct xen_ctx *x = XCTX(p);
	void *a;

	if (!x->xgt)
		return -ENOSYS;
	a = xengnttab_map_domain_grant_refs(x->xgt, count, dom,
					    (uint32_t *)refs,
					    PROT_READ | (writable ? PROT_WRITE : 0));
	if (!a)
		return neg_errno();
	*addr = a;
	return 0;
}

static int xen_gnt_unmap(struct pvio_platform *p, void *addr,
			 unsigned int count)
{
	return xengnttab_unmap(XCTX(p)->xgt, addr, count) < 0 ? neg_errno() : 0;
}

static int xen_gnt_copy(struct pvio_platform *p,
			struct pvio_gnt_copy_seg *segs, unsigned int count)
{
	struct xen_ctx *x = XCTX(p);
	unsigned int i;

	if (!x->xgt)
		return -ENOSYS;
	if (xengnttab_grant_copy(x->xgt, count,
				 (xengnttab_grant_copy_segment_t *)segs) < 0)
		return neg_errno();
	for (i = 0; i < count; i++)
		segs[i].status = (int16_t)gntst_to_errno(segs[i].status);
	return 0;
}

/* ---- domains ---------------------------------------------------------------- */

static int xen_domain_info(struct pvio_platform *p, unsigned int domid,
			   struct pvio_dominfo *info)
{
	struct xen_ctx *x = XCTX(p);
	xc_dominfo_t di;

	if (!x->xch)
		return -ENOSYS;
	if (xc_domain_getinfo(x->xch, domid, 1, &di) != 1 || di.domid != domid)
		return -ESRCH;
	info->domid = domid;
	info->dying = di.dying;
	info->shutdown = di.shutdown;
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
	x->xce = xenevtchn_open(NULL, 0);
	if (!x->xce) {
		rc = neg_errno();
		goto fail;
	}
	x->xgt = xengnttab_open(NULL, 0);
	x->xgs = xengntshr_open(NULL, 0);
	x->xch = xc_interface_open(NULL, NULL, 0);
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
	.gnt_share = xen_gnt_share,
	.gnt_unshare = xen_gnt_unshare,
	.gnt_map = xen_gnt_map,
	.gnt_unmap = xen_gnt_unmap,
	.gnt_copy = xen_gnt_copy,
	.domain_info = xen_domain_info,
};
