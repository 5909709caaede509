/* SPDX-License-Identifier: MIT */
/*
 * The sim world's xenstore: a pure engine. A tree of nodes (value bytes and
 * a permission list), transactions, watches and per-domain quotas, with
 * Xen's rules (C xenstored: tools/xenstore/xenstored_core.c and friends).
 * No sockets and no I/O: sim/simxs.c speaks the wire protocol around
 * it, and tests/unit/test-xs-store.c drives it directly.
 *
 * Who is asking: every operation takes a connection, made for one domain
 * id with pvio__xs_conn_new(). The connection carries that domid (the
 * caller's identity for every permission check), its watches, its open
 * transactions and its queue of pending watch events. Domain 0 is the
 * privileged domain: it bypasses permission checks and quotas.
 *
 * Paths are C strings; a path not starting with '/' (or '@' for the special
 * watch paths @introduceDomain and @releaseDomain) is relative to the
 * caller's /local/domain/<domid>/. Values are byte strings.
 *
 * Every function returns 0 or -errno. The errors callers see (all of them
 * have an xsd_errors string in xs_wire.h):
 *   -EINVAL   malformed path, permission string, argument
 *   -EACCES   permission denied (also for a missing node whose nearest
 *             existing ancestor the caller may not access: no leaks)
 *   -ENOENT   no such node, transaction or watch
 *   -EEXIST   duplicate watch
 *   -EPERM    an unprivileged owner tried to give its node away
 *   -EAGAIN   transaction conflict: retry it
 *   -E2BIG    value or event too large
 *   -ENOSPC   a quota is exhausted (xs_wire.h has no EQUOTA)
 *   -ENOMEM   out of memory
 * Single-threaded: the caller serialises all calls on one store.
 */
#ifndef PVIO_XS_STORE_H
#define PVIO_XS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct xs_store;
struct xs_conn;

#define PVIO_XS_PRIV_DOMID	0u	/* the privileged (tools) domain */
#define PVIO_XS_MAX_DOMID	0xffffu	/* domids in permission lists */

/*
 * Limits: the counts are Xen 4.17's defaults; the byte budgets stand in
 * for 4.17's per-domain memory quota. Every field applies (there is no
 * "0 means unlimited"): start from pvio__xs_limits_default().
 */
struct xs_limits {
	unsigned int nodes;		/* owned by an unprivileged domain */
	unsigned int watches;		/* of an unprivileged domain */
	unsigned int transactions;	/* open, per unprivileged domain */
	unsigned int trans_nodes;	/* nodes one unprivileged transaction
					 * may touch (read or write) */
	unsigned int perms;		/* entries in a permission list an
					 * unprivileged domain sets */
	unsigned int value;		/* bytes in a value (everyone) */
	unsigned int path;		/* unprivileged: path bytes beyond
					 * /local/domain/<id>/ */
	unsigned int events;		/* pending watch events per
					 * connection of an unprivileged
					 * domain (XSA-349) */
	unsigned int events_priv;	/* ... per connection of domain 0 */
	unsigned int event_bytes;	/* pending watch events of an
					 * unprivileged domain, all its
					 * connections together */
	unsigned int trans_bytes;	/* memory the open transactions of an
					 * unprivileged domain may hold */
};

/* nodes 1000, watches 128, transactions 10, trans_nodes 1024, perms 5,
 * value XENSTORE_PAYLOAD_MAX, path XENSTORE_REL_PATH_MAX, events 1024,
 * events_priv 65536, event_bytes 1 MiB, trans_bytes 1 MiB. */
void pvio__xs_limits_default(struct xs_limits *lim);

/*
 * Create a store with the initial tree: "/", "/local", "/local/domain",
 * "/local/domain/0" and "/tool", all owned by domain 0 with no access for
 * others ("n0"). @lim NULL means the defaults. No domain is introduced.
 * Return: 0, -ENOMEM.
 */
int pvio__xs_store_new(struct xs_store **out, const struct xs_limits *lim);
/* Free the store; its connections must have been freed. Accepts NULL. */
void pvio__xs_store_free(struct xs_store *s);
/* Number of nodes in the tree (for tests and statistics). */
unsigned int pvio__xs_store_nodes(const struct xs_store *s);

/* A client of domain @domid (<= PVIO_XS_MAX_DOMID). Return: 0, -EINVAL,
 * -ENOMEM. */
int pvio__xs_conn_new(struct xs_store *s, unsigned int domid,
		      struct xs_conn **out);
/* Drop the connection with its watches, transactions (aborted) and pending
 * events. Accepts NULL. */
void pvio__xs_conn_free(struct xs_conn *c);
unsigned int pvio__xs_conn_domid(const struct xs_conn *c);

/*
 * Node operations. @tx is 0 or a transaction of this connection (-ENOENT
 * otherwise). Returned buffers are malloc'd; the caller frees them.
 */

/* The value: *val gets *len bytes plus a terminating NUL not counted. */
int pvio__xs_read(struct xs_conn *c, uint32_t tx, const char *path,
		  char **val, unsigned int *len);
/* Create or replace a value; missing ancestors are created with empty
 * values. A new node inherits its parent's permissions; when an
 * unprivileged domain creates it, that domain becomes its owner.
 * Return: also -E2BIG (value too large), -ENOSPC (node quota). */
int pvio__xs_write(struct xs_conn *c, uint32_t tx, const char *path,
		   const void *val, unsigned int len);
/* Create an empty node; an existing one is left alone (0). */
int pvio__xs_mkdir(struct xs_conn *c, uint32_t tx, const char *path);
/* Remove a node and its subtree. A missing node whose parent exists is
 * not an error; "/" is -EINVAL. */
int pvio__xs_rm(struct xs_conn *c, uint32_t tx, const char *path);
/* Children names, each NUL-terminated, in creation order (*len may be 0,
 * *list is then still a valid allocation). */
int pvio__xs_directory(struct xs_conn *c, uint32_t tx, const char *path,
		       char **list, unsigned int *len);
/*
 * XS_DIRECTORY_PART: the payload for the children from byte @offset of the
 * list: "<generation>\0" then whole names that fit in @max bytes in all,
 * with one more NUL after the last name of the list (also when @offset is
 * past the end). A changed generation tells the client to start over.
 * Return: also -E2BIG if @max cannot hold a single name.
 */
int pvio__xs_directory_part(struct xs_conn *c, uint32_t tx,
			    const char *path, unsigned int offset,
			    unsigned int max, char **out, unsigned int *len);
/* Permission list in wire form: "n0\0r5\0" (owner first); needs read
 * access. @path may be @introduceDomain or @releaseDomain. */
int pvio__xs_get_perms(struct xs_conn *c, uint32_t tx, const char *path,
		       char **perms, unsigned int *len);
/*
 * Replace the permission list with @perms, @len bytes of NUL-terminated
 * strings "<r|w|b|n><domid>" (the first names the owner and what everyone
 * else gets; later ones override for one domain). Only the owner and
 * domain 0 may; an unprivileged owner may not change the owner (-EPERM).
 * Return: also -ENOSPC (more entries than the quota).
 */
int pvio__xs_set_perms(struct xs_conn *c, uint32_t tx, const char *path,
		       const char *perms, unsigned int len);

/*
 * Transactions: optimistic. Operations in a transaction see its own
 * changes; nothing is visible to others before commit. A commit fails
 * with -EAGAIN, and changes nothing, when any node the transaction looked
 * at (read, wrote, found missing) has changed since it first did: then
 * everything it saw is still current and the commit is serialisable
 * (xenstored's rule). Watches fire on commit. The transactions of an
 * unprivileged domain are bounded in nodes touched and bytes held:
 * operations beyond that fail with -ENOSPC.
 */
/* Return: also -ENOSPC (too many open for this domain). */
int pvio__xs_tx_start(struct xs_conn *c, uint32_t *tx);
/* Commit (@commit true) or abort; the transaction is gone either way.
 * Return: 0, -ENOENT, -EAGAIN, -ENOSPC (node quota at commit), -ENOMEM. */
int pvio__xs_tx_end(struct xs_conn *c, uint32_t tx, bool commit);
/* 0 for tx 0 and for an open transaction of @c, else -ENOENT. */
int pvio__xs_tx_check(const struct xs_conn *c, uint32_t tx);

/*
 * Watches: an event "path\0token\0" is queued for a watch of this
 * connection when its node or a descendant is written, created, removed
 * (removing a subtree fires for each removed node that is watched) or gets
 * new permissions, and once right away when the watch is added. An event
 * reaches a connection only if its domain may read the node (or its
 * parent, or the node under its old permissions). Events of relative
 * watches carry relative paths. Pending events are capped per connection
 * and, for an unprivileged domain, in bytes (struct xs_limits): beyond
 * that they are dropped and counted. An event too long for a message is
 * never sent (as in xenstored).
 * Return: also -EEXIST (same path and token), -ENOSPC (quota), -E2BIG
 * (the watch's own events would not fit in a message).
 */
int pvio__xs_watch(struct xs_conn *c, const char *path, const char *token);
int pvio__xs_unwatch(struct xs_conn *c, const char *path, const char *token);
/* XS_RESET_WATCHES: drop all watches and abort all transactions. */
void pvio__xs_reset(struct xs_conn *c);

/* Pop the oldest pending event: *msg is "path\0token\0", *len bytes.
 * Return: 0, -EAGAIN (none pending). */
int pvio__xs_event_pop(struct xs_conn *c, char **msg, unsigned int *len);
unsigned int pvio__xs_event_count(const struct xs_conn *c);
/* Events dropped (caps reached) since the last call. */
unsigned int pvio__xs_events_dropped(struct xs_conn *c);

/*
 * Domains. Introduction fires @introduceDomain. Release fires
 * @releaseDomain and revokes what the domain had (XSA-322): its remaining
 * connections lose their watches and transactions, the nodes it owns pass
 * to domain 0 (they are not removed: the toolstack does that) and its
 * entries in other permission lists go, so that a later domain with the
 * same id inherits nothing.
 * Return: 0, -EINVAL (domid), -ENOMEM.
 */
int pvio__xs_domain_introduce(struct xs_store *s, unsigned int domid);
void pvio__xs_domain_release(struct xs_store *s, unsigned int domid);
bool pvio__xs_domain_introduced(const struct xs_store *s, unsigned int domid);
/* "/local/domain/<domid>" into @buf. Return: the length, or -ENOSPC. */
int pvio__xs_domain_path(unsigned int domid, char *buf, size_t size);

#endif
