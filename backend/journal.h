/* SPDX-License-Identifier: MIT */
/*
 * The in-flight record of one ring (docs/architecture.md, "Crash
 * recovery"): a file under /run, mapped MAP_SHARED, that survives the
 * process but not the host. It holds what a restarted pvio-backd needs to
 * give every request exactly one response:
 *
 *  - req_cons: how far the ring was consumed (the shared ring has no such
 *    index: the frontend's view is only rsp_prod);
 *  - one entry per request struct (at most one ring's worth in flight):
 *    the copy of a consumed, unanswered request, its sequence number (the
 *    order it was taken in), and whether its I/O completed (then its
 *    status);
 *  - rsp_prod_pvt: responses written into ring slots (published or not);
 *    a response being written names its slot in its entry (rsp_idx), and
 *    moving rsp_prod_pvt past it is the one store that makes it answered.
 *
 * Only the stores' program order matters: nobody reads the record while
 * the process lives, and a killed process's executed stores all reach the
 * page cache (no msync: a host crash loses the guests too). Compiler
 * barriers keep that order; every mutable field is one aligned 32-bit
 * store, never torn.
 */
#ifndef PVIO_BACKEND_JOURNAL_H
#define PVIO_BACKEND_JOURNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <pvio/ring.h>

#include "util.h"	/* PVIO_PATH_BUF */

#define JRNL_REQ_MAX	112u	/* the biggest request copied (blkif) */

enum jrnl_state {
	JE_FREE = 0,
	JE_INFLIGHT = 1,	/* consumed (once req_cons passed cons_idx) */
	JE_COMPLETE = 2,	/* with INFLIGHT: I/O done, status kept */
	JE_ANSWERING = 4,	/* with INFLIGHT: response at rsp_idx */
};

struct jrnl_ent {
	uint32_t seq;		/* taken in this order (wraps) */
	uint32_t cons_idx;	/* the ring index it was consumed at */
	uint32_t rsp_idx;	/* its response's ring index (ANSWERING) */
	uint8_t state;		/* enum jrnl_state bits */
	uint8_t tag;		/* the ring's own (net tx: an extra-info slot) */
	int16_t status;		/* COMPLETE: the status to answer */
	uint8_t req[JRNL_REQ_MAX];	/* the private copy, as consumed */
};

/* What the record belongs to: written once, covered by the checksum. */
struct jrnl_ident {
	char kind[8];		/* "vbd", "vif" (the device kind) */
	uint32_t domid, devid, queue;
	uint32_t nr_pages;
	uint32_t refs[PVIO_RING_MAX_PAGES];
	uint32_t port;		/* the frontend's event channel */
	uint32_t nr_ents;	/* entries (request structs) */
	uint32_t req_size;
};

struct jrnl_hdr {
	uint32_t magic;
	uint32_t version;
	uint32_t crc;		/* of boot_id and ident */
	uint32_t hdr_size;
	char boot_id[40];
	struct jrnl_ident id;
	/* mutable, on its own cache line */
	uint32_t req_cons __attribute__((aligned(64)));
	uint32_t rsp_prod_pvt;
	uint32_t seq;		/* the last seq given */
	uint32_t write_ack_seq;	/* seq taken last when a write was answered */
};

#define JRNL_HDR_BYTES	4096u

struct jrnl {
	struct jrnl_hdr *h;
	struct jrnl_ent *ent;	/* nr_ents of them */
	size_t map_len;
	struct jrnl *next;	/* the open records (main thread) */
	char path[PVIO_PATH_BUF];
};

/* Keep the program order of the record's stores (see the top). */
#define jrnl_order()	__atomic_signal_fence(__ATOMIC_SEQ_CST)

/* Consumed at ring index @cons_idx into entry @slot (blk: its request
 * struct; net: the ring index, whose responses are all published before
 * the frontend may reuse it). */
static inline void jrnl_take(struct jrnl *j, unsigned int slot,
			     uint32_t cons_idx, const void *req, size_t len,
			     uint8_t tag)
{
	struct jrnl_ent *e = &j->ent[slot];

	memcpy(e->req, req, len);
	e->tag = tag;
	e->cons_idx = cons_idx;
	e->seq = ++j->h->seq;
	jrnl_order();
	e->state = JE_INFLIGHT;
}

/* The requests taken so far are consumed: a restart does not take them
 * from the ring again. Before any of them is answered or started. */
static inline void jrnl_consumed(struct jrnl *j, uint32_t req_cons)
{
	jrnl_order();
	j->h->req_cons = req_cons;
	jrnl_order();
}

/* Its I/O is over and must not run again (writes, discards, flushes). */
static inline void jrnl_complete(struct jrnl *j, unsigned int slot,
				 int16_t status)
{
	struct jrnl_ent *e = &j->ent[slot];

	e->status = status;
	jrnl_order();
	e->state = JE_INFLIGHT | JE_COMPLETE;
}

/* Before writing its response into ring slot @rsp_idx. */
static inline void jrnl_answer_begin(struct jrnl *j, unsigned int slot,
				     uint32_t rsp_idx)
{
	struct jrnl_ent *e = &j->ent[slot];

	e->rsp_idx = rsp_idx;
	jrnl_order();
	e->state |= JE_ANSWERING;
	jrnl_order();
}

/*
 * After writing it: @rsp_prod_pvt is one past its slot. A write answered
 * OKAY first moves the write mark to the newest seq taken: a discard taken
 * before the mark may have run before that write and is never run again
 * (set before the answer: a crash in between only spares a discard; a
 * mark 2^31 takes old reads as newer: also only spares one).
 */
static inline void jrnl_answered(struct jrnl *j, unsigned int slot,
				 uint32_t rsp_prod_pvt, bool write_ok)
{
	if (write_ok)
		j->h->write_ack_seq = j->h->seq;
	jrnl_order();
	j->h->rsp_prod_pvt = rsp_prod_pvt;
	jrnl_order();
	j->ent[slot].state = JE_FREE;
}

/*
 * Open the record of @id in @dir. With @recover, an existing record is
 * checked (magic, version, checksum, this boot, the same device and ring)
 * and kept: *@recovered says so; one that fails is logged, removed and
 * replaced. Without, any old record is replaced. A new record starts at
 * @live_rsp (the shared rsp_prod): consumed and answered up to there.
 */
int jrnl_open(const char *dir, const struct jrnl_ident *id, bool recover,
	      uint32_t live_rsp, struct jrnl **out, bool *recovered);
/*
 * A kept record against the live shared indices: the record's responses
 * may be ahead of the published ones (written, not published) by at most
 * a ring, its consumed index within a ring of them, and the entries in
 * flight exactly consumed minus answered. -EPROTO (with @why) if not.
 * Entries answered or never committed are cleared; the ones to replay
 * are returned in @slots in the order they were taken.
 */
int jrnl_recover(struct jrnl *j, uint32_t req_prod, uint32_t rsp_prod,
		 unsigned int *slots, unsigned int *nr, const char **why);
/* Start afresh at @live_rsp (a record refused after opening). */
void jrnl_reset(struct jrnl *j, uint32_t live_rsp);
/* @remove: the ring is done with (drained, disconnected); @unmap: false
 * at the process's exit, which unmaps it (one munmap is a TLB shootdown
 * on every CPU the process runs on) */
void jrnl_close(struct jrnl *j, bool remove, bool unmap);
/*
 * Records in @dir that no open record claims and whose device @exists
 * says is gone are removed, each with a log line.
 */
void jrnl_sweep(const char *dir,
		bool (*exists)(void *opaque, const char *kind,
			       unsigned int domid, unsigned int devid),
		void *opaque);

/* ---- test-only fault points (PVIO_FAULT=name:N aborts at the Nth hit) ---- */

extern int pvio_fault_armed;
void pvio_fault_init(void);
void pvio__fault_hit(const char *name);
static inline void pvio_fault(const char *name)
{
	if (pvio_unlikely(pvio_fault_armed))
		pvio__fault_hit(name);
}

#endif
