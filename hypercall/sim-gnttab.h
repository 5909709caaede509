/* SPDX-License-Identifier: MIT */
/*
 * The sim world's grant tables.
 *
 * Each domain has a grant-table file (a memfd made by pvio-simhv):
 *
 *   page 0            struct sim_gt_hdr
 *   entries           grant_entry_v1_t[nr_ents]   (Xen's v1 layout)
 *   active            struct sim_gt_active[nr_ents]
 *
 * and a guest-memory file of nr_pages pages; a grant's frame is a page
 * index in it. pvio-simhv writes the entries (share/unshare, on the
 * granter's behalf, as gntalloc does on Xen) and keeps the map pins.
 * Mappers map the whole file: grant copy runs in the mapper's process, as
 * the hypervisor's copy would, under the entry's active lock, so that an
 * end-access cannot race a copy (Xen pins the entry for the copy).
 *
 * The active lock word holds the locking connection's id, so that simhv
 * can break a lock left by a process that died holding it.
 */
#ifndef PVIO_SIM_GNTTAB_H
#define PVIO_SIM_GNTTAB_H

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>

#include <xen/xen.h>
#include <xen/grant_table.h>

#define SIM_GT_MAGIC		0x53677670u	/* "pvgS" */
#define SIM_GT_NR_RESERVED	8u		/* GNTTAB_NR_RESERVED_ENTRIES */
#define SIM_GT_DEFAULT_ENTS	32768u		/* 64 frames of v1 entries */
#define SIM_DEFAULT_MEM_PAGES	65536u		/* 256 MiB, sparse */

struct sim_gt_hdr {
	uint32_t magic;
	uint32_t nr_ents;
	uint32_t nr_pages;
	uint32_t domid;
	uint64_t generation;	/* unique per domain incarnation */
	uint32_t dead;		/* set once by simhv: the domain is gone */
	uint32_t pad;
};

struct sim_gt_active {
	uint32_t lock;		/* 0, or the id of the locking connection */
	uint16_t pin_rd;	/* mappings (simhv) */
	uint16_t pin_wr;
};

_Static_assert(sizeof(grant_entry_v1_t) == 8, "grant_entry_v1");
_Static_assert(sizeof(struct sim_gt_active) == 8, "active");

static inline size_t sim_gt_ents_off(void)
{
	return 4096;
}

static inline size_t sim_gt_active_off(uint32_t nr_ents)
{
	return 4096 + (size_t)nr_ents * sizeof(grant_entry_v1_t);
}

static inline size_t sim_gt_size(uint32_t nr_ents)
{
	size_t sz = sim_gt_active_off(nr_ents) +
		    (size_t)nr_ents * sizeof(struct sim_gt_active);

	return (sz + 4095) & ~(size_t)4095;
}

/* A mapped grant table. */
struct sim_gt {
	struct sim_gt_hdr *hdr;
	grant_entry_v1_t *ents;
	struct sim_gt_active *act;
	uint32_t nr_ents;
	uint32_t nr_pages;
};

static inline void sim_gt_view(struct sim_gt *gt, void *base)
{
	gt->hdr = base;
	gt->nr_ents = gt->hdr->nr_ents;
	gt->nr_pages = gt->hdr->nr_pages;
	gt->ents = (grant_entry_v1_t *)((char *)base + sim_gt_ents_off());
	gt->act = (struct sim_gt_active *)((char *)base +
					   sim_gt_active_off(gt->nr_ents));
}

static inline bool sim_gt_dead(const struct sim_gt *gt)
{
	return __atomic_load_n(&gt->hdr->dead, __ATOMIC_ACQUIRE) != 0;
}

/* Try once; true if we now hold the entry. */
static inline bool sim_gt_trylock(struct sim_gt_active *a, uint32_t owner)
{
	uint32_t expect = 0;

	return __atomic_compare_exchange_n(&a->lock, &expect, owner, false,
					   __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

/* Clients spin: holders keep the lock for one page copy at most. A lock
 * left by a dead process is broken by simhv when it reaps the process. */
static inline void sim_gt_lock(struct sim_gt_active *a, uint32_t owner)
{
	unsigned int spins = 0;

	while (!sim_gt_trylock(a, owner)) {
		if (++spins > 1000)
			sched_yield();
#if defined(__x86_64__)
		__asm__ __volatile__("pause" ::: "memory");
#endif
	}
}

static inline void sim_gt_unlock(struct sim_gt_active *a)
{
	__atomic_store_n(&a->lock, 0, __ATOMIC_RELEASE);
}

/*
 * May domain @grantee access grant @ref (for writing if @write)? Call with
 * the entry's active lock held, so the entry cannot change under us.
 * Return: the frame, or -EINVAL (ref or frame out of range), -ENOENT (not
 * granted, or revoked), -EPERM (someone else's, or read-only).
 */
static inline int64_t sim_gt_check(const struct sim_gt *gt, uint32_t ref,
				   uint32_t grantee, bool write)
{
	const grant_entry_v1_t *e = &gt->ents[ref];
	uint16_t flags;
	uint32_t frame;

	/* flags last: the granter writes domid and frame before it. */
	flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);
	if ((flags & GTF_type_mask) != GTF_permit_access)
		return -ENOENT;
	if (e->domid != grantee)
		return -EPERM;
	if (write && (flags & GTF_readonly))
		return -EPERM;
	/* sub-page grants are not offered by the sim world */
	if (flags & GTF_sub_page)
		return -EINVAL;
	frame = e->frame;
	if (frame >= gt->nr_pages)
		return -EINVAL;
	return frame;
}

/* Set GTF_reading/GTF_writing while mapped, as Xen does. */
static inline void sim_gt_update_busy(struct sim_gt *gt, uint32_t ref)
{
	grant_entry_v1_t *e = &gt->ents[ref];
	const struct sim_gt_active *a = &gt->act[ref];
	uint16_t f = __atomic_load_n(&e->flags, __ATOMIC_RELAXED), nf;

	do {
		nf = f & (uint16_t)~(GTF_reading | GTF_writing);
		if (a->pin_rd)
			nf |= GTF_reading;
		if (a->pin_wr)
			nf |= GTF_writing;
	} while (nf != f &&
		 !__atomic_compare_exchange_n(&e->flags, &f, nf, false,
					      __ATOMIC_RELEASE,
					      __ATOMIC_RELAXED));
}

#endif
