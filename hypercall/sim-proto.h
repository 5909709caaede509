/* SPDX-License-Identifier: MIT */
/*
 * Wire protocol between the sim provider (hypercall/sim.c) and pvio-simhv
 * (sim/).
 *
 * One SOCK_SEQPACKET connection per attached process at WORLD/hv.sock. A
 * call is one request message and one reply message; a reply may carry
 * file descriptors (SCM_RIGHTS): eventfds for ports, memfds for grant
 * tables and guest memory. Nothing is sent unsolicited: a peer learns of a
 * closed channel from a kick on its port and pvio_evtchn_status().
 *
 * The "hypercalls" that must be cheap do not come here: notify is a write
 * to an eventfd, grant copy runs in the caller against the shared table.
 */
#ifndef PVIO_SIM_PROTO_H
#define PVIO_SIM_PROTO_H

#include <stdint.h>

#define SIM_PROTO_VERSION	1
#define SIM_HV_SOCK		"hv.sock"
#define SIM_HV_PIDFILE		"simhv.pid"
#define SIM_MAX_MSG		16384
#define SIM_MAX_REFS		1024	/* refs per share/map message */
#define SIM_MAX_PORTS		4096	/* per domain, as 2-level evtchn */
#define SIM_MAX_DOMID		0x7fef	/* DOMID_FIRST_RESERVED - 1 */
#define SIM_HV_OWNER		0xffffffffu	/* simhv's own lock id */

enum sim_op {
	SIM_OP_HELLO = 1,		/* attach as a domain */
	SIM_OP_EVTCHN_ALLOC,		/* -> port, fds[recv, send] */
	SIM_OP_EVTCHN_BIND,		/* -> port, fds[recv, send] */
	SIM_OP_EVTCHN_CLOSE,
	SIM_OP_EVTCHN_STATUS,
	SIM_OP_GNT_SHARE,		/* -> first page, refs */
	SIM_OP_GNT_UNSHARE,
	SIM_OP_GNT_MAP,			/* -> frames, status per ref */
	SIM_OP_GNT_UNMAP,
	SIM_OP_FOREIGN_OPEN,		/* -> fds[gnttab, mem] */
	SIM_OP_DOMAIN_INFO,
	SIM_OP_DOMAIN_CREATE,		/* toolstack (dom0) */
	SIM_OP_DOMAIN_DESTROY,		/* toolstack (dom0) */
	SIM_OP_DOMAIN_LIST,		/* toolstack (dom0) */
	SIM_OP_SHUTDOWN,		/* stop the world (dom0) */
	SIM_OP_MAX,
};

struct sim_msg_hdr {
	uint32_t op;
	uint32_t len;		/* whole message, header included */
	int32_t rc;		/* reply: 0 or -errno */
	uint32_t pad;
};

struct sim_hello {
	uint32_t version;
	uint32_t domid;
	uint32_t flags;		/* PVIO_PLATFORM_CREATE */
	uint32_t pad;
};
struct sim_hello_reply {		/* fds[0]: our guest-memory file */
	uint32_t conn_id;	/* our active-lock id */
	uint32_t domid;
	uint64_t generation;
	uint32_t nr_pages;	/* size of our guest memory */
	uint32_t pad;
};

struct sim_evtchn_req {
	uint32_t remote_dom;
	uint32_t port;		/* BIND: remote port; CLOSE/STATUS: ours */
};
struct sim_evtchn_reply {
	uint32_t port;
	uint32_t state;		/* enum pvio_evtchn_state */
	uint32_t remote_dom;
	uint32_t remote_port;
};

struct sim_gnt_share_req {
	uint32_t dom;
	uint32_t count;
	uint32_t writable;
	uint32_t pad;
};
struct sim_gnt_share_reply {
	uint32_t first_page;	/* pages [first, first + count) of our memory */
	uint32_t count;
	uint32_t refs[];
};

struct sim_gnt_unshare_req {
	uint32_t first_page;
	uint32_t count;
};

struct sim_gnt_map_req {
	uint32_t dom;
	uint32_t count;
	uint32_t writable;
	uint32_t pad;
	uint32_t refs[];
};
struct sim_gnt_map_reply {
	uint64_t generation;	/* of the granter's incarnation */
	uint32_t count;
	uint32_t pad;
	int32_t status[SIM_MAX_REFS];
	uint32_t frames[SIM_MAX_REFS];
};

struct sim_gnt_unmap_req {
	uint32_t dom;
	uint32_t count;
	uint64_t generation;
	uint32_t writable;
	uint32_t pad;
	uint32_t refs[];
};

struct sim_foreign_req {
	uint32_t dom;
	uint32_t pad;
};
struct sim_foreign_reply {
	uint64_t generation;
	uint32_t nr_ents;
	uint32_t nr_pages;
};

struct sim_domain_req {
	uint32_t domid;
	uint32_t nr_pages;	/* CREATE: guest memory (0: default) */
	char name[64];		/* CREATE */
};
struct sim_domain_reply {
	uint32_t domid;
	uint32_t dying;
	uint32_t nr_procs;
	uint32_t persistent;
	char name[64];
};
struct sim_domain_list_reply {
	uint32_t count;
	uint32_t pad;
	struct sim_domain_reply doms[];
};

#endif
