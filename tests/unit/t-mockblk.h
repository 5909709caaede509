/* SPDX-License-Identifier: MIT */
/*
 * A mock blkif backend for the blkfront tests: a thread attached as dom0
 * to a sim world that runs the backend side of the XenBus handshake (as
 * Linux blkback: features, InitWait, rings at the frontend's Initialised,
 * Connected; Closing/Closed; reconnect from Closed) and serves requests
 * from a file descriptor with grant copy. It checks what the frontend sends
 * as a strict backend would, counts it, and can be told to misbehave.
 */
#ifndef PVIO_T_MOCKBLK_H
#define PVIO_T_MOCKBLK_H

#include <stdbool.h>
#include <stdint.h>

enum t_evil {
	T_EVIL_NONE = 0,
	T_EVIL_BOGUS_ID,	/* answer with an id never issued */
	T_EVIL_DUP_ID,		/* answer the previous request's id */
	T_EVIL_BAD_OP,		/* echo the wrong operation */
	T_EVIL_RSP_OVERFLOW,	/* rsp_prod far beyond what was asked */
	T_EVIL_HOLD,		/* take requests, answer none */
};

struct t_mockblk_cfg {
	const char *spec;		/* "sim:DIR" */
	unsigned int fe;		/* frontend domain */
	unsigned int devid;
	const char *type;		/* backend kind; NULL: "vbd" */
	int fd;				/* the disk */
	uint64_t sectors;		/* 512-byte units; 0: the fd's size */
	unsigned int sector_size;	/* 0: 512 */
	unsigned int max_ring_order;	/* max-ring-page-order */
	unsigned int max_queues;	/* multi-queue-max-queues, if > 0 */
	unsigned int max_indirect;	/* feature-max-indirect-segments */
	bool flush, barrier;
	bool discard, discard_secure;
	unsigned int discard_gran, discard_align;	/* bytes */
	bool readonly;			/* VDISK_READONLY, refuses */
	bool refuse_writes;		/* refuses writes without saying */
	bool skip_initwait;		/* Initialising -> Connected */
	bool dup_events;		/* write each state three times */
	enum t_evil evil;
	unsigned int evil_after;	/* requests served well first */
};

struct t_mockblk_stats {
	unsigned int connects, disconnects;
	unsigned int nr_queues, ring_pages;
	uint64_t requests, reads, writes, flushes, barriers, discards;
	uint64_t indirect, errors, eopnotsupp;
	unsigned int max_segs;		/* largest request seen */
	uint64_t last_discard_sector, last_discard_nr;
	unsigned int last_discard_flag;
	uint64_t discard_bytes;
	unsigned int held;		/* requests taken and not answered */
	unsigned int distinct_grefs;	/* data and indirect pages seen */
	char protocol[32];
	char last_error[256];		/* what the frontend got wrong */
};

struct t_mockblk;

/* Start the thread; returns when the backend has written its features
 * and reached InitWait (or Connected). 0 or -errno. */
int t_mockblk_start(struct t_mockblk **out, const struct t_mockblk_cfg *cfg);
/* Stop the thread (the backend's nodes stay as they are). */
void t_mockblk_stop(struct t_mockblk *m);
void t_mockblk_stats(struct t_mockblk *m, struct t_mockblk_stats *st);
/* The backend's XenBus state. */
int t_mockblk_state(struct t_mockblk *m);
/* Resize as blkback does: `sectors` and `state` in one transaction. */
void t_mockblk_resize(struct t_mockblk *m, uint64_t sectors);
/* The toolstack detaches: backend Closing (then Closed on the
 * frontend's Closed). */
void t_mockblk_close(struct t_mockblk *m);
/* Change the misbehaviour from now on. */
void t_mockblk_set_evil(struct t_mockblk *m, enum t_evil evil,
			unsigned int after);
/* Wait up to @ms for the backend state @st; 0 or -ETIMEDOUT. */
int t_mockblk_wait_state(struct t_mockblk *m, int st, int ms);

#endif
