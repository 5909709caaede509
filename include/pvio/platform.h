/* SPDX-License-Identifier: MIT */
/*
 * pvio platform layer: event channels, grant tables and domain information
 * behind one ops table with two providers.
 *
 *   xen  libxenevtchn, libxengnttab (map, copy) + gntshr (share), libxenctrl
 *   sim  the simulated hypervisor pvio-simhv: processes on one Linux host play
 *        domains; the hypervisor enforces grants and event channels.
 *
 * Every function returns 0 (or a count, port, ...) on success and -errno on
 * failure. Nothing here prints. Unless stated otherwise a handle may be used
 * from several threads; the event-channel pending queue belongs to one
 * thread at a time (as xenevtchn's does).
 */
#ifndef PVIO_PLATFORM_H
#define PVIO_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <pvio/base.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PVIO_PAGE_SIZE		4096u
#define PVIO_PAGE_SHIFT		12
#define PVIO_DOMID_SELF		0x7ff0u	/* DOMID_SELF, as in xen.h */
#define PVIO_DOMID_INVALID	0x7ff4u

typedef uint32_t pvio_gref_t;
typedef uint32_t pvio_port_t;

struct pvio_platform;

/* pvio_platform_open() flags */
enum {
	/* sim: create the domain if it does not exist yet; it then dies
	 * with the last process attached to it. */
	PVIO_PLATFORM_CREATE = 1u << 0,
};

/**
 * pvio_platform_open - attach this process to a platform as a domain
 * @out:   the new handle
 * @spec:  "sim", "sim:DIR" (a sim world's directory), "xen", or NULL for
 *         $PVIO_PLATFORM, else "sim" with $PVIO_SIM_DIR or the default
 *         world directory
 * @domid: the domain this process plays (sim); ignored by xen, which asks
 *         the hypervisor. Use PVIO_DOMID_SELF to mean "dom0" on sim.
 * @flags: PVIO_PLATFORM_*
 *
 * Return: 0, -EINVAL for a bad spec, -ENOENT when the world or the Xen
 * devices are absent, -ENOSYS for "xen" in a build without it, -ESRCH when
 * the sim domain does not exist (and PVIO_PLATFORM_CREATE was not given),
 * -EEXIST when a domain of that id is dying.
 */
PVIO_API int pvio_platform_open(struct pvio_platform **out, const char *spec,
				unsigned int domid, unsigned int flags);
/* Detach: closes this process's ports, revokes its shared pages, unmaps
 * what it mapped. Accepts NULL. */
PVIO_API void pvio_platform_close(struct pvio_platform *p);
/*
 * Let go of what dead peers left behind, at a quiet moment: the sim
 * platform keeps a view of each peer's memory (mapped, its fd open)
 * while any call may use it, and releases a dead peer's at its next
 * grant or event-channel call; a handle that makes none keeps it until
 * this. A daemon calls it now and then on each handle (pvio-backd: once a
 * second). Thread-safe beside the handle's other calls. Return: 0
 * (nothing to do on Xen, whose mappings are per grant).
 */
PVIO_API int pvio_platform_tidy(struct pvio_platform *p);
PVIO_API const char *pvio_platform_name(const struct pvio_platform *p);
PVIO_API unsigned int pvio_platform_domid(const struct pvio_platform *p);
/* The default sim world directory ($PVIO_SIM_DIR or /run/pvio-sim). */
PVIO_API const char *pvio_sim_default_dir(void);

/* Room for any spec pvio_platform_spec() writes, its NUL included: "sim:"
 * and a world directory up to PATH_MAX, with margin. */
#define PVIO_PLATFORM_SPEC_MAX	4200u

/**
 * pvio_platform_spec - the spec that reaches this platform again
 *
 * Writes into @buf what pvio_platform_open() takes to attach another handle
 * to the same platform (e.g. one per thread): "sim:DIR" or "xen".
 * Return: 0, or -ENAMETOOLONG when it does not fit in @size bytes.
 */
PVIO_API int pvio_platform_spec(const struct pvio_platform *p, char *buf,
				size_t size);
/**
 * pvio_platform_xs_path - where this domain's xenstore answers
 *
 * sim: the world's xenstore socket for this domain; xen: "" (libxenstore
 * finds xenstored or the xenbus device itself).
 * Return: 0, or -ENAMETOOLONG when it does not fit in @size bytes.
 */
PVIO_API int pvio_platform_xs_path(const struct pvio_platform *p, char *buf,
				   size_t size);

/* ---- event channels -------------------------------------------------- */

/* A pollable fd: readable when pvio_evtchn_pending() has something. */
PVIO_API int pvio_evtchn_fd(struct pvio_platform *p);
/* Allocate a port that domain @remote may bind to. Return: port. */
PVIO_API int pvio_evtchn_alloc_unbound(struct pvio_platform *p,
				       unsigned int remote);
/* Bind to @remote's unbound port @rport. Return: the local port;
 * -EINVAL if @rport is not unbound for us, -ESRCH if @remote is gone. */
PVIO_API int pvio_evtchn_bind(struct pvio_platform *p, unsigned int remote,
			      pvio_port_t rport);
/* Close a local port; the peer's port reverts to unbound (and is kicked
 * once so it notices). */
PVIO_API int pvio_evtchn_close(struct pvio_platform *p, pvio_port_t port);
/* Notify the peer of a local port: one system call. Sending on an
 * unbound port is silently dropped, as on Xen. */
PVIO_API int pvio_evtchn_notify(struct pvio_platform *p, pvio_port_t port);
/* Return: a port with a pending event (cleared), or -EAGAIN. */
PVIO_API int pvio_evtchn_pending(struct pvio_platform *p);
PVIO_API int pvio_evtchn_unmask(struct pvio_platform *p, pvio_port_t port);

enum pvio_evtchn_state {
	PVIO_EVTCHN_CLOSED = 0,
	PVIO_EVTCHN_UNBOUND = 1,
	PVIO_EVTCHN_INTERDOMAIN = 2,
};
struct pvio_evtchn_status {
	enum pvio_evtchn_state state;
	unsigned int remote_dom;
	pvio_port_t remote_port;
};
/* State of one of our ports: lets a peer find out that the other side
 * closed or died. -ENOSYS on providers that cannot tell. */
PVIO_API int pvio_evtchn_status(struct pvio_platform *p, pvio_port_t port,
				struct pvio_evtchn_status *st);

/* ---- grants: the granting side (a frontend in domU) ------------------ */

/**
 * pvio_gnt_share - allocate @count pages and grant them to domain @dom
 * @refs: out, @count grant references, one per page, in page order
 * @addr: out, the pages, mapped contiguously in this process
 *
 * Return: 0; -ENOMEM when the domain's memory or grant table is full.
 */
PVIO_API int pvio_gnt_share(struct pvio_platform *p, unsigned int dom,
			    unsigned int count, bool writable,
			    pvio_gref_t *refs, void **addr);
/**
 * pvio_gnt_unshare - end foreign access to pages from pvio_gnt_share()
 *
 * Return: 0; -EBUSY if a grantee still has one of them mapped (sim: nothing
 * is revoked then; xen: the kernel defers the free and this returns 0);
 * -EINVAL if @addr/@count is not a whole pvio_gnt_share() area.
 */
PVIO_API int pvio_gnt_unshare(struct pvio_platform *p, void *addr,
			      unsigned int count);

/* ---- grants: the mapping side (a backend in dom0) ------------------- */

/**
 * pvio_gnt_map - map @count pages granted by domain @dom, contiguously
 *
 * All or nothing, as xengnttab_map_domain_grant_refs.
 * Return: 0; -EPERM (granted to someone else, or read-only for a writable
 * map), -ENOENT (not granted or revoked), -EINVAL (ref out of range),
 * -ESRCH (domain gone).
 */
PVIO_API int pvio_gnt_map(struct pvio_platform *p, unsigned int dom,
			  unsigned int count, const pvio_gref_t *refs,
			  bool writable, void **addr);
PVIO_API int pvio_gnt_unmap(struct pvio_platform *p, void *addr,
			    unsigned int count);

/* pvio_gnt_copy() segment: the layout of xengnttab_grant_copy_segment_t. */
struct pvio_gnt_copy_seg {
	union pvio_gnt_copy_ptr {
		void *virt;
		struct {
			uint32_t ref;
			uint16_t offset;
			uint16_t domid;
		} foreign;
	} source, dest;
	uint16_t len;
	uint16_t flags;		/* PVIO_GNTCOPY_* */
	int16_t status;		/* out: 0 or -errno */
};
#define PVIO_GNTCOPY_SOURCE_GREF	(1u << 0)	/* GNTCOPY_source_gref */
#define PVIO_GNTCOPY_DEST_GREF		(1u << 1)	/* GNTCOPY_dest_gref */

/**
 * pvio_gnt_copy - the hypervisor copies between local memory and granted
 * pages; each segment succeeds or fails on its own
 *
 * A foreign side needs offset + len <= PVIO_PAGE_SIZE. Per-segment status:
 * 0, -EPERM, -ENOENT, -EINVAL, -ESRCH as for pvio_gnt_map().
 * Return: 0 when every segment was attempted (check each status), or a
 * -errno when the batch could not be issued at all.
 */
PVIO_API int pvio_gnt_copy(struct pvio_platform *p,
			   struct pvio_gnt_copy_seg *segs, unsigned int count);

/* ---- domains ---------------------------------------------------------- */

struct pvio_dominfo {
	unsigned int domid;
	bool dying;		/* destroyed, resources being released */
	bool shutdown;
	unsigned int nr_procs;	/* sim: processes attached */
};
/* Return: 0, -ESRCH if no such domain. */
PVIO_API int pvio_domain_info(struct pvio_platform *p, unsigned int domid,
			      struct pvio_dominfo *info);

#ifdef __cplusplus
}
#endif
#endif /* PVIO_PLATFORM_H */
