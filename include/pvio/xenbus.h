/* SPDX-License-Identifier: MIT */
/*
 * pvio xenstore-glue: one xenstore client for backends and frontends, on
 * top of libxenstore on both platforms (real xenstored on Xen, the sim
 * world's xenstore otherwise), and the XenBus protocol on top of it.
 *
 *  - pvio_xs: a connection, an fd for the caller's event loop, watches
 *    dispatched to callbacks from that fd;
 *  - paths as Xen lays them out: /local/domain/<be>/backend/<type>/<fe>/<id>
 *    and /local/domain/<fe>/device/<type>/<id>;
 *  - pvio_xenbus: one device end: the one writer of its `state` node (a
 *    repeat is ignored, every change traced old -> new) and the one
 *    dispatcher of the other end's state (Unknown treated like Closed;
 *    duplicate and reordered watch events are harmless);
 *  - negotiation helpers that parse with range checks: a hostile value is
 *    an error for that one device, never a crash.
 *
 * Functions return 0 (or a value) on success and -errno on failure.
 */
#ifndef PVIO_XENBUS_H
#define PVIO_XENBUS_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include <pvio/platform.h>

#ifdef __cplusplus
extern "C" {
#endif

/* xenbus.h's XenbusState, without pulling the header into users */
enum pvio_xb_state {
	PVIO_XB_UNKNOWN = 0,
	PVIO_XB_INITIALISING = 1,
	PVIO_XB_INITWAIT = 2,
	PVIO_XB_INITIALISED = 3,
	PVIO_XB_CONNECTED = 4,
	PVIO_XB_CLOSING = 5,
	PVIO_XB_CLOSED = 6,
	PVIO_XB_RECONFIGURING = 7,
	PVIO_XB_RECONFIGURED = 8,
};
PVIO_API const char *pvio_xb_state_name(enum pvio_xb_state s);

#define PVIO_XS_PATH_MAX	256

struct pvio_xs;
typedef uint64_t pvio_xs_tx_t;	/* 0: no transaction */

/* ---- the client ------------------------------------------------------------ */

/*
 * Connect as the domain of @p: on xen through libxenstore's default (the
 * xenstored socket or /dev/xen/xenbus), on sim to the world's socket for
 * that domain. -ENOENT when there is no xenstore to talk to.
 */
PVIO_API int pvio_xs_open(struct pvio_xs **out, struct pvio_platform *p);
/* Connect to the xenstore at @socket_path (tests, tools). */
PVIO_API int pvio_xs_open_path(struct pvio_xs **out, const char *socket_path);
PVIO_API void pvio_xs_close(struct pvio_xs *x);

/* Read a node; *@val is malloc'd and NUL-terminated (free it). */
PVIO_API int pvio_xs_read(struct pvio_xs *x, pvio_xs_tx_t tx,
			  const char *path, char **val);
PVIO_API int pvio_xs_write(struct pvio_xs *x, pvio_xs_tx_t tx,
			   const char *path, const char *val);
PVIO_API int pvio_xs_printf(struct pvio_xs *x, pvio_xs_tx_t tx,
			    const char *path, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
PVIO_API int pvio_xs_mkdir(struct pvio_xs *x, pvio_xs_tx_t tx,
			   const char *path);
/* Remove a subtree; a missing node is not an error. */
PVIO_API int pvio_xs_rm(struct pvio_xs *x, pvio_xs_tx_t tx, const char *path);
PVIO_API bool pvio_xs_exists(struct pvio_xs *x, pvio_xs_tx_t tx,
			     const char *path);
/* Child names; *@names is one malloc'd block (free it), count returned. */
PVIO_API int pvio_xs_directory(struct pvio_xs *x, pvio_xs_tx_t tx,
			       const char *path, char ***names);
/*
 * Permissions, in xenstore-chmod's notation: "n0" "rDOMID" ... the first
 * entry names the owner and everyone else's access.
 */
PVIO_API int pvio_xs_set_perms(struct pvio_xs *x, pvio_xs_tx_t tx,
			       const char *path, const char *const *perms,
			       unsigned int nr);

PVIO_API int pvio_xs_tx_start(struct pvio_xs *x, pvio_xs_tx_t *tx);
/* Commit (or abort); -EAGAIN: a conflict, start over. */
PVIO_API int pvio_xs_tx_end(struct pvio_xs *x, pvio_xs_tx_t tx, bool abort);

/*
 * Parse a node as an unsigned integer in [min, max] (decimal, or 0x hex).
 * -ENOENT if absent, -EINVAL if not a number, -ERANGE outside the range.
 */
PVIO_API int pvio_xs_read_uint(struct pvio_xs *x, pvio_xs_tx_t tx,
			       const char *path, unsigned long min,
			       unsigned long max, unsigned long *out);
/*
 * The parser of pvio_xs_read_uint(), for a value at hand: strictly decimal
 * digits, or "0x"/"0X" and hex digits; no sign, no white space, nothing
 * after. -EINVAL if not such a number, -ERANGE if outside [min, max] or
 * above ULONG_MAX.
 */
PVIO_API int pvio_xs_parse_uint(const char *s, unsigned long min,
				unsigned long max, unsigned long *out);
/* The same with a default when the node is absent. */
PVIO_API int pvio_xs_read_uint_default(struct pvio_xs *x, pvio_xs_tx_t tx,
				       const char *path, unsigned long min,
				       unsigned long max, unsigned long dflt,
				       unsigned long *out);
/* "1" is true, absent is @dflt, anything else but "0" is -EINVAL. */
PVIO_API int pvio_xs_read_bool(struct pvio_xs *x, pvio_xs_tx_t tx,
			       const char *path, bool dflt, bool *out);

/* ---- watches ---------------------------------------------------------------- */

typedef void (*pvio_xs_watch_fn)(struct pvio_xs *x, const char *path,
				 void *opaque);

/*
 * Watch @path and everything below it. The callback runs from
 * pvio_xs_dispatch(), once at once (xenstore's initial fire) and after
 * each change; events may repeat, and events waiting at once for the
 * same watch and the same path are coalesced: the callback runs once for
 * them, so it must read the values it cares about itself.
 * Return a watch id (> 0).
 */
PVIO_API int pvio_xs_watch(struct pvio_xs *x, const char *path,
			   pvio_xs_watch_fn fn, void *opaque);
PVIO_API int pvio_xs_unwatch(struct pvio_xs *x, int id);
/*
 * Forget every watch here, without telling xenstored (an unwatch is a
 * round trip each): for a process about to close the connection, whose
 * watches xenstored drops with it. pvio_xs_dispatch() runs none of their
 * callbacks from now on (a pvio_xs_thread's, already on its way, may run
 * once more); pvio_xs_unwatch() of one of them is -ENOENT, at no cost.
 */
PVIO_API void pvio_xs_drop_watches(struct pvio_xs *x);
/* Readable when watch events are waiting. */
PVIO_API int pvio_xs_fd(struct pvio_xs *x);
/*
 * Take the waiting events (at most a few thousand: a flood does not hold
 * the caller; the fd stays readable for the rest) and run the callbacks
 * once per distinct (watch, path). Return how many callbacks ran.
 */
PVIO_API int pvio_xs_dispatch(struct pvio_xs *x);
/* Wait up to @ms for watch events, then run what came (pvio_xs_dispatch).
 * For loops that wait on xenstore without an event loop of their own. */
PVIO_API int pvio_xs_pump(struct pvio_xs *x, int ms);
/*
 * A thread that runs pvio_xs_dispatch() whenever watch events wait (the
 * callbacks then run on it): for users without an event loop of their
 * own. Stop (NULL is fine) before closing @x.
 */
struct pvio_xs_thread;
PVIO_API int pvio_xs_thread_start(struct pvio_xs *x,
				  struct pvio_xs_thread **out);
PVIO_API void pvio_xs_thread_stop(struct pvio_xs_thread *t);

/* ---- XenBus paths ------------------------------------------------------------ */

PVIO_API int pvio_xb_backend_path(char *buf, unsigned int be,
				  const char *type, unsigned int fe,
				  unsigned int devid);
PVIO_API int pvio_xb_frontend_path(char *buf, unsigned int fe,
				   const char *type, unsigned int devid);
/* Our domid, from xenstore's relative "domid" node. */
PVIO_API int pvio_xs_self_domid(struct pvio_xs *x, unsigned int *domid);

/* ---- one end of a device ------------------------------------------------------- */

struct pvio_xenbus;

/*
 * The one dispatcher: called with the other end's state whenever it may
 * have changed (duplicates included). PVIO_XB_UNKNOWN never reaches it:
 * a missing or unreadable state is passed as PVIO_XB_CLOSED.
 */
typedef void (*pvio_xb_changed_fn)(struct pvio_xenbus *xb,
				   enum pvio_xb_state other, void *opaque);
/* Every state change of ours: "path: old -> new" for the caller's log. */
typedef void (*pvio_xb_trace_fn)(struct pvio_xenbus *xb,
				 enum pvio_xb_state from,
				 enum pvio_xb_state to, void *opaque);

/*
 * Open our end at @path (our device directory) whose peer directory is in
 * the node @other_key ("frontend" or "backend") and whose peer domid is
 * in @other_id_key. Watches the peer's state; @changed runs from
 * pvio_xs_dispatch(). Our state starts as what @path/state holds.
 * -EINVAL if the peer path is absent or not under /local/domain/<id>/.
 */
PVIO_API int pvio_xenbus_open(struct pvio_xenbus **out, struct pvio_xs *x,
			      const char *path, const char *other_key,
			      const char *other_id_key,
			      pvio_xb_changed_fn changed, void *opaque);
PVIO_API void pvio_xenbus_close(struct pvio_xenbus *xb);
PVIO_API void pvio_xenbus_set_trace(struct pvio_xenbus *xb,
				    pvio_xb_trace_fn fn);

PVIO_API const char *pvio_xenbus_path(const struct pvio_xenbus *xb);
PVIO_API const char *pvio_xenbus_otherend(const struct pvio_xenbus *xb);
PVIO_API unsigned int pvio_xenbus_otherend_id(const struct pvio_xenbus *xb);
PVIO_API enum pvio_xb_state pvio_xenbus_state(const struct pvio_xenbus *xb);
PVIO_API enum pvio_xb_state pvio_xenbus_other_state(struct pvio_xenbus *xb);

/* The one writer of our state: a repeat is not written again. */
PVIO_API int pvio_xenbus_switch(struct pvio_xenbus *xb, enum pvio_xb_state s);
/*
 * Write @key of our directory only while it exists and is still the
 * instance we opened (checked and written in one transaction): -ENOENT
 * if it was removed, -ESTALE if re-created since. A plain write would
 * bring a removed directory back (xenstored makes missing parents).
 */
PVIO_API int pvio_xenbus_write(struct pvio_xenbus *xb, const char *key,
			       const char *val);
/* Write our (unchanged) state again, so that the peer's watch fires: how a
 * backend tells a connected frontend to look at a changed property. */
PVIO_API int pvio_xenbus_touch(struct pvio_xenbus *xb);
/*
 * Fail this device: write "<errno> <message>" to <path>/error (and to
 * /local/domain/<self>/error/<path>/error where allowed, as Linux's
 * xenbus_dev_fatal), then switch to Closing. Return @err.
 */
PVIO_API int pvio_xenbus_fatal(struct pvio_xenbus *xb, int err,
			       const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The last error written by pvio_xenbus_fatal(), or "". */
PVIO_API const char *pvio_xenbus_last_error(const struct pvio_xenbus *xb);

/* Helpers on the peer's directory, with the negotiation's range checks. */
PVIO_API int pvio_xenbus_read_other_uint(struct pvio_xenbus *xb,
					 const char *key, unsigned long min,
					 unsigned long max, unsigned long dflt,
					 bool required, unsigned long *out);
PVIO_API struct pvio_xs *pvio_xenbus_xs(const struct pvio_xenbus *xb);
/*
 * Wait up to @timeout_ms for the other end's state to be in @mask (bit
 * 1u << state), pumping the connection's watch events meanwhile (callbacks
 * run, ours included). The state is read again each round, so events that
 * another thread dispatches do not matter. *@last: the state seen last.
 * Return 0 or -ETIMEDOUT.
 */
PVIO_API int pvio_xenbus_wait_other(struct pvio_xenbus *xb, unsigned int mask,
				    unsigned int timeout_ms,
				    enum pvio_xb_state *last);
/*
 * A frontend's orderly close: Closing, until the backend follows (Closing
 * or Closed), then Closed, until the backend is Closed (or back at
 * InitWait/Initialising): a backend unmaps the rings when it sees Closed,
 * so only then are the frontend's grants free. Each wait is bounded by
 * @timeout_ms; a backend that did not answer Closing is not waited for a
 * second time. Return 0, or -ETIMEDOUT.
 */
PVIO_API int pvio_xenbus_frontend_close(struct pvio_xenbus *xb,
					unsigned int timeout_ms);

/* ---- negotiation ------------------------------------------------------------------ */

#define PVIO_XB_PROTO_NATIVE	0	/* "x86_64-abi" here */

/*
 * The ring of one queue from the frontend directory @dir (the device dir,
 * or its queue-N): `ring-page-order` (at most @max_order; absent means a
 * single `ring-ref`) then `ring-ref` or `ring-ref0`.. `ring-ref<2^order-1>`,
 * and `event-channel` (or @evtchn_key). Refs must be plausible grant refs.
 * Return the number of pages, or -errno (the caller fails the device).
 */
PVIO_API int pvio_xb_read_ring(struct pvio_xs *x, const char *dir,
			       const char *order_dir, unsigned int max_order,
			       pvio_gref_t *refs, const char *evtchn_key,
			       pvio_port_t *port);
/* `protocol`: "x86_64-abi" (or absent) is native; others -EPROTONOSUPPORT. */
PVIO_API int pvio_xb_read_protocol(struct pvio_xs *x, const char *dir);
/* `multi-queue-num-queues` in [1, max]; absent means 1. */
PVIO_API int pvio_xb_read_queues(struct pvio_xs *x, const char *dir,
				 unsigned int max, unsigned int *nr);
/* A vif's `mac` as Linux's xen_net_read_mac() takes it, but exactly
 * "xx:xx:xx:xx:xx:xx" (hex digits, either case); -EINVAL otherwise. */
PVIO_API int pvio_xb_parse_mac(const char *s, uint8_t mac[6]);

#ifdef __cplusplus
}
#endif
#endif /* PVIO_XENBUS_H */
