// SPDX-License-Identifier: MIT
/*
 * The platform seam: pick a provider once, in pvio_platform_open(), then
 * dispatch through its ops table.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "private.h"

const char *pvio_sim_default_dir(void)
{
	const char *d = getenv("PVIO_SIM_DIR");

	return d && *d ? d : "/run/pvio-sim";
}

int pvio_platform_open(struct pvio_platform **out, const char *spec,
		       unsigned int domid, unsigned int flags)
{
	struct pvio_platform *p;
	int rc;

	*out = NULL;
	if (!spec || !*spec)
		spec = getenv("PVIO_PLATFORM");
	if (!spec || !*spec)
		spec = "sim";
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (strcmp(spec, "sim") == 0)
		rc = pvio__sim_open(p, pvio_sim_default_dir(), domid, flags);
	else if (strncmp(spec, "sim:", 4) == 0 && spec[4])
		rc = pvio__sim_open(p, spec + 4, domid, flags);
	else if (strcmp(spec, "xen") == 0)
		rc = pvio__xen_open(p, flags);
	else
		rc = -EINVAL;
	if (rc) {
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

void pvio_platform_close(struct pvio_platform *p)
{
	if (!p)
		return;
	if (p->ops && p->ops->close)
		p->ops->close(p);
	free(p);
}

const char *pvio_platform_name(const struct pvio_platform *p)
{
	return p->ops->name;
}

unsigned int pvio_platform_domid(const struct pvio_platform *p)
{
	return p->self;
}

/* What a provider without its own answer says: its name, and "". */
static int platform_copy(char *buf, size_t size, const char *s)
{
	size_t n = strlen(s);

	if (size == 0 || n >= size)
		return -ENAMETOOLONG;
	memcpy(buf, s, n + 1);
	return 0;
}

int pvio_platform_spec(const struct pvio_platform *p, char *buf, size_t size)
{
	if (p->ops->spec)
		return p->ops->spec(p, buf, size);
	return platform_copy(buf, size, p->ops->name);
}

int pvio_platform_xs_path(const struct pvio_platform *p, char *buf,
			  size_t size)
{
	if (p->ops->xs_path)
		return p->ops->xs_path(p, buf, size);
	return platform_copy(buf, size, "");
}

#define CALL(p, op, ...) \
	((p)->ops->op ? (p)->ops->op((p), ##__VA_ARGS__) : -ENOSYS)

int pvio_evtchn_fd(struct pvio_platform *p)
{
	return CALL(p, evtchn_fd);
}

int pvio_evtchn_alloc_unbound(struct pvio_platform *p, unsigned int remote)
{
	return CALL(p, evtchn_alloc_unbound, remote);
}

int pvio_evtchn_bind(struct pvio_platform *p, unsigned int remote,
		     pvio_port_t rport)
{
	return CALL(p, evtchn_bind, remote, rport);
}

int pvio_evtchn_close(struct pvio_platform *p, pvio_port_t port)
{
	return CALL(p, evtchn_close, port);
}

int pvio_evtchn_notify(struct pvio_platform *p, pvio_port_t port)
{
	return CALL(p, evtchn_notify, port);
}

int pvio_evtchn_pending(struct pvio_platform *p)
{
	return CALL(p, evtchn_pending);
}

int pvio_evtchn_unmask(struct pvio_platform *p, pvio_port_t port)
{
	return CALL(p, evtchn_unmask, port);
}

int pvio_evtchn_status(struct pvio_platform *p, pvio_port_t port,
		       struct pvio_evtchn_status *st)
{
	return CALL(p, evtchn_status, port, st);
}

int pvio_gnt_share(struct pvio_platform *p, unsigned int dom,
		   unsigned int count, bool writable, pvio_gref_t *refs,
		   void **addr)
{
	*addr = NULL;
	if (count == 0 || !refs)
		return -EINVAL;
	return CALL(p, gnt_share, dom, count, writable, refs, addr);
}

int pvio_gnt_unshare(struct pvio_platform *p, void *addr, unsigned int count)
{
	if (!addr || count == 0)
		return -EINVAL;
	return CALL(p, gnt_unshare, addr, count);
}

int pvio_gnt_map(struct pvio_platform *p, unsigned int dom,
		 unsigned int count, const pvio_gref_t *refs, bool writable,
		 void **addr)
{
	*addr = NULL;
	if (count == 0 || !refs)
		return -EINVAL;
	return CALL(p, gnt_map, dom, count, refs, writable, addr);
}

int pvio_gnt_unmap(struct pvio_platform *p, void *addr, unsigned int count)
{
	if (!addr || count == 0)
		return -EINVAL;
	return CALL(p, gnt_unmap, addr, count);
}

int pvio_gnt_copy(struct pvio_platform *p, struct pvio_gnt_copy_seg *segs,
		  unsigned int count)
{
	if (count == 0)
		return 0;
	if (!segs)
		return -EINVAL;
	return CALL(p, gnt_copy, segs, count);
}

int pvio_domain_info(struct pvio_platform *p, unsigned int domid,
		     struct pvio_dominfo *info)
{
	memset(info, 0, sizeof(*info));
	return CALL(p, domain_info, domid, info);
}

int pvio_platform_tidy(struct pvio_platform *p)
{
	return p->ops->tidy ? p->ops->tidy(p) : 0;
}

#ifndef HAVE_XEN
int pvio__xen_open(struct pvio_platform *p, unsigned int flags)
{
	(void)p;
	(void)flags;
	return -ENOSYS;
}
#endif
