/* SPDX-License-Identifier: MIT */
/* hypercall/: the platform ops table and its providers. */
#ifndef PVIO_HYPERCALL_PRIVATE_H
#define PVIO_HYPERCALL_PRIVATE_H

#include <pvio/platform.h>

struct pvio_platform;

/*
 * One provider. Every operation returns 0/count or -errno; a provider that
 * lacks one leaves it NULL and the wrapper returns -ENOSYS.
 */
struct pvio_platform_ops {
	const char *name;
	void (*close)(struct pvio_platform *p);

	int (*evtchn_fd)(struct pvio_platform *p);
	int (*evtchn_alloc_unbound)(struct pvio_platform *p, unsigned int rdom);
	int (*evtchn_bind)(struct pvio_platform *p, unsigned int rdom,
			   pvio_port_t rport);
	int (*evtchn_close)(struct pvio_platform *p, pvio_port_t port);
	int (*evtchn_notify)(struct pvio_platform *p, pvio_port_t port);
	int (*evtchn_pending)(struct pvio_platform *p);
	int (*evtchn_unmask)(struct pvio_platform *p, pvio_port_t port);
	int (*evtchn_status)(struct pvio_platform *p, pvio_port_t port,
			     struct pvio_evtchn_status *st);

	int (*gnt_share)(struct pvio_platform *p, unsigned int dom,
			 unsigned int count, bool writable, pvio_gref_t *refs,
			 void **addr);
	int (*gnt_unshare)(struct pvio_platform *p, void *addr,
			   unsigned int count);
	int (*gnt_map)(struct pvio_platform *p, unsigned int dom,
		       unsigned int count, const pvio_gref_t *refs,
		       bool writable, void **addr);
	int (*gnt_unmap)(struct pvio_platform *p, void *addr,
			 unsigned int count);
	int (*gnt_copy)(struct pvio_platform *p,
			struct pvio_gnt_copy_seg *segs, unsigned int count);

	int (*domain_info)(struct pvio_platform *p, unsigned int domid,
			   struct pvio_dominfo *info);
	/* pvio_platform_tidy(); NULL: nothing to do */
	int (*tidy)(struct pvio_platform *p);

	/* pvio_platform_spec()/_xs_path(); NULL: the name, and "" */
	int (*spec)(const struct pvio_platform *p, char *buf, size_t size);
	int (*xs_path)(const struct pvio_platform *p, char *buf, size_t size);
};

struct pvio_platform {
	const struct pvio_platform_ops *ops;
	void *ctx;
	unsigned int self;	/* our domid */
};

extern const struct pvio_platform_ops pvio_sim_platform_ops;
extern const struct pvio_platform_ops pvio_xen_platform_ops;

/* Provider constructors: fill @p (ops, ctx, self) or return -errno. */
int pvio__sim_open(struct pvio_platform *p, const char *dir,
		   unsigned int domid, unsigned int flags);
int pvio__xen_open(struct pvio_platform *p, unsigned int flags);

#endif
