/* SPDX-License-Identifier: MIT */
/*
 * pvio-simhv internals: the simulated hypervisor's domains, grant tables,
 * event channels and attached processes. Single-threaded: one event loop.
 */
#ifndef PVIO_SIMHV_H
#define PVIO_SIMHV_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sim-gnttab.h"
#include "sim-proto.h"

struct hv;
struct hv_conn;

struct hv_port {
	uint8_t state;		/* enum pvio_evtchn_state */
	struct hv_conn *owner;
	uint32_t remote_dom;
	uint32_t remote_port;
	int e_recv;		/* our dup of the eventfd the owner reads */
	int e_peer;		/* our dup of the eventfd a binder reads */
};

enum hv_ref_state {
	HV_REF_FREE = 0,
	HV_REF_SHARED,		/* granted by a live process */
	HV_REF_ORPHAN,		/* its process is gone, a grantee still maps it */
};

struct hv_ref {
	uint8_t state;
	uint32_t conn_id;	/* the sharing process */
	uint32_t page;
};

struct hv_dom {
	uint32_t domid;
	uint64_t generation;
	char name[64];
	bool persistent;	/* made by the toolstack: lives until destroyed */
	bool dying;
	unsigned int nr_conns;
	uint64_t foreign_pins;	/* maps of our grants held by others */

	int gt_fd;
	void *gt_base;
	size_t gt_len;
	struct sim_gt gt;
	struct hv_ref *refs;
	uint32_t *ref_free;
	uint32_t nr_ref_free;

	int mem_fd;
	uint32_t nr_pages;
	uint64_t *page_used;	/* bitmap */
	uint32_t *page_ref;	/* page -> ref (0: none) */
	uint32_t page_hint;

	struct hv_port *ports;	/* [SIM_MAX_PORTS] */
	struct hv_dom *grave_next;
};

/* Pins one connection holds on one granter incarnation's grants. */
struct hv_pins {
	struct hv_pins *next;
	struct hv_dom *dom;
	uint64_t generation;
	uint16_t *rd;
	uint16_t *wr;
	uint64_t total;
};

struct hv_conn {
	struct hv_conn *next;
	int fd;
	uint32_t id;
	pid_t pid;
	struct hv_dom *dom;	/* NULL until HELLO */
	struct hv_pins *pins;
	bool dead;
};

/* Event-loop callbacks: the xenstore server plugs in here too. */
typedef void (*hv_io_fn)(struct hv *hv, void *data, uint32_t events);

struct hv_io {
	int fd;
	hv_io_fn fn;
	void *data;
	struct hv_io *next;	/* hv_io_add()'s, freed at exit */
};

struct hv {
	const char *dir;
	int epfd;
	int listen_fd;
	int sig_fd;
	bool stop;
	uint32_t next_conn_id;
	uint64_t next_generation;
	struct hv_dom **doms;	/* [SIM_MAX_DOMID + 1] */
	struct hv_dom *grave;	/* freed at the top of the loop */
	struct hv_conn *conns;
	struct hv_io *ios;
	uint32_t default_pages;
	uint32_t default_ents;
	/* xenstore hooks (set by the xenstore server) */
	void *xs;
	void (*dom_introduced)(struct hv *hv, struct hv_dom *d);
	void (*dom_released)(struct hv *hv, struct hv_dom *d);
};

/* Watch @fd for input for the life of the world. */
int hv_io_add(struct hv *hv, int fd, hv_io_fn fn, void *data);

/* simhv.c: the hypervisor proper */
struct hv_dom *hv_dom_get(struct hv *hv, uint32_t domid);
int hv_dom_create(struct hv *hv, uint32_t domid, const char *name,
		  uint32_t nr_pages, bool persistent, struct hv_dom **out);
void hv_dom_kill(struct hv *hv, struct hv_dom *d);
void hv_conn_reap(struct hv *hv, struct hv_conn *c);
void hv_graveyard(struct hv *hv);
void hv_dispatch(struct hv *hv, struct hv_conn *c, const void *msg,
		 size_t len);

#endif
