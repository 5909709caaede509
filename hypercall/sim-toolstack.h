/* SPDX-License-Identifier: MIT */
/*
 * The sim world's toolstack calls (dom0 only): the hypervisor side of xl
 * create/destroy/list, for pvio-ctl, pvio-bench and the tests. Not part of
 * libpvio's API: programs link libpvio-hypercall.la for them.
 */
#ifndef PVIO_SIM_TOOLSTACK_H
#define PVIO_SIM_TOOLSTACK_H

#include <stdbool.h>
#include <stdint.h>

#include <pvio/platform.h>

#define PVIO_SIM_NAME_MAX	64u	/* a domain's name, NUL included */

struct pvio_sim_dominfo {
	unsigned int domid;
	bool dying;
	bool persistent;
	unsigned int nr_procs;
	char name[PVIO_SIM_NAME_MAX];
};

/* Each returns -ENOSYS on a platform other than sim. */
int pvio__sim_domain_create(struct pvio_platform *p, unsigned int domid,
			    const char *name, uint64_t mem_bytes,
			    unsigned int *out_domid);
int pvio__sim_domain_destroy(struct pvio_platform *p, unsigned int domid);
/* Up to @max domains into @out; return the count. */
int pvio__sim_domain_list(struct pvio_platform *p, struct pvio_sim_dominfo *out,
			  unsigned int max);
int pvio__sim_shutdown(struct pvio_platform *p);

#endif
