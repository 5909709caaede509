// SPDX-License-Identifier: MIT
/*
 * Devices of pvio-backd: discovery under /local/domain/<self>/backend/<kind>,
 * the backend half of the XenBus state machine (one writer, one
 * dispatcher), failing a device whose guest broke the protocol without
 * touching the others, and the counters.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "private.h"

/* ---- helpers ------------------------------------------------------------------ */

/*
 * Outside a transaction, only into our directory as it still is
 * (pvio_xenbus_write): a write just after the toolstack removed it would
 * bring it back, a directory of feature nodes and a device kept for it.
 * In one (d->tx: device_opened), the transaction checked it.
 */
int device_write(struct device *d, const char *key, const char *fmt, ...)
{
	char path[PVIO_XS_PATH_MAX + 64], val[4096];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	if (!d->tx && d->xb)
		return pvio_xenbus_write(d->xb, key, val);
	snprintf(path, sizeof(path), "%s/%s", d->path, key);
	return pvio_xs_write(d->bd->xs, d->tx, path, val);
}

int device_read_uint(struct device *d, const char *key, unsigned long min,
		     unsigned long max, unsigned long dflt, bool required,
		     unsigned long *out)
{
	char path[PVIO_XS_PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", d->path, key);
	if (required)
		return pvio_xs_read_uint(d->bd->xs, d->tx, path, min, max, out);
	return pvio_xs_read_uint_default(d->bd->xs, d->tx, path, min, max,
					 dflt, out);
}

int device_read_str(struct device *d, const char *key, char **val)
{
	char path[PVIO_XS_PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", d->path, key);
	return pvio_xs_read(d->bd->xs, d->tx, path, val);
}

struct worker *backd_pick_worker(struct backd *bd)
{
	struct worker *best = NULL;
	uint32_t best_load = UINT32_MAX;
	unsigned int i;

	/* least loaded, so that detaches and re-attaches do not pile
	 * devices on one worker as round robin would */
	for (i = 0; i < bd->nr_workers; i++) {
		unsigned int k = (bd->next_worker + i) % bd->nr_workers;
		struct worker *w = &bd->workers[k];
		uint32_t load = __atomic_load_n(&w->placed, __ATOMIC_RELAXED);

		if (load < best_load) {
			best = w;
			best_load = load;
		}
	}
	bd->next_worker = (unsigned int)(best - bd->workers + 1) % bd->nr_workers;
	__atomic_add_fetch(&best->placed, 1, __ATOMIC_RELAXED);
	return best;
}

void worker_unplace(struct worker *w)
{
	__atomic_sub_fetch(&w->placed, 1, __ATOMIC_RELAXED);
}

static void add_stats(struct dp_stats *s, const struct dp_stats *q);

bool device_stop_queues(struct device *d)
{
	bool left = false;
	unsigned int i;

	for (i = 0; i < d->nr_queues; i++) {
		struct dp_queue *q = d->queues[i];
		uint32_t st;

		if (!q)
			continue;
		if (q->started) {
			st = __atomic_load_n(&q->state, __ATOMIC_ACQUIRE);
			if (st != DPQ_STOPPED) {
				/* the worker drains what is in flight and
				 * says so on done_efd: never waited for here
				 * (one hung target must not stop the main
				 * loop) */
				if (st != DPQ_STOPPING)
					worker_stop_queue(q->w, q);
				left = true;
				continue;
			}
		}
		add_stats(&d->retired, &q->st);
		q->ops->free(q);
		d->queues[i] = NULL;
	}
	if (left)
		return false;
	free(d->queues);
	d->queues = NULL;
	d->nr_queues = 0;
	return true;
}

/* ---- the state machine ------------------------------------------------------------- */

static void trace(struct pvio_xenbus *xb, enum pvio_xb_state from,
		  enum pvio_xb_state to, void *opaque)
{
	struct device *d = opaque;

	dev_info(d, "%s: %s -> %s", pvio_xenbus_path(xb),
		 pvio_xb_state_name(from), pvio_xb_state_name(to));
}

/* Has every started queue of @d stopped (drained, handed back)? */
static bool queues_stopped(const struct device *d)
{
	unsigned int i;

	for (i = 0; d->queues && i < d->nr_queues; i++) {
		const struct dp_queue *q = d->queues[i];

		if (q && q->started &&
		    __atomic_load_n(&q->state, __ATOMIC_ACQUIRE) != DPQ_STOPPED)
			return false;
	}
	return true;
}

/*
 * Stop the dataplanes: begin it, or look again how far it got. True when
 * every queue has been freed; false while some still drain, and then the
 * device's XenBus steps wait: devices_reap_stopped() resumes them when a
 * worker reports a queue stopped.
 */
static bool disconnect(struct device *d)
{
	if (d->connected) {
		d->connected = false;
		d->drain_ns = pvio_now_ns();
		d->ops->disconnect(d);
	}
	if (d->nr_queues && !device_stop_queues(d)) {
		d->draining = true;
		return false;
	}
	d->draining = false;
	return true;
}

static void do_connect(struct device *d)
{
	int rc;

	if (d->connected || d->failed || d->draining)
		return;
	rc = d->ops->connect(d);
	if (rc == -EAGAIN)	/* not ready (the ops said why): the ops call
				 * device_recheck() when it is */
		return;
	if (rc) {
		/* the ops wrote the reason with pvio_xenbus_fatal() */
		dev_warn(d, "%s: cannot connect domain %u: %s", d->path, d->fe,
			 pvio_xenbus_last_error(d->xb));
		d->failed = true;
		return;
	}
	d->connected = true;
	d->connects++;
	pvio_xenbus_switch(d->xb, PVIO_XB_CONNECTED);
}

/*
 * A device is an instance, not a name: the toolstack may remove the
 * backend directory and write a new one with the same kind, domid and
 * devid between two of our scans (detach; attach NEW.img). The new one
 * starts with state Initialising (libxl and pvio-ctl write it in the
 * creating transaction), which only the toolstack writes: once we have
 * probed, our state node holds what we wrote (InitWait or later) or
 * libxl's Closing. So Initialising in the node while we are past it
 * means a new instance: a fresh probe, a new target, a new TAP.
 */
/* Ours while a set-up is off the main thread (device_probe_done) */
#define OPENING_NODE	"pvio-opening"

static bool device_recreated(struct device *d)
{
	enum pvio_xb_state mine = pvio_xenbus_state(d->xb);
	unsigned long node;

	if (d->recreated)
		return true;
	if (d->opening && d->marked) {
		char *v = NULL;

		/* our marker gone with the directory it was in */
		if (device_read_str(d, OPENING_NODE, &v) != -ENOENT) {
			free(v);
			return false;
		}
		d->recreated = true;
		return true;
	}
	if (mine == PVIO_XB_INITIALISING || mine == PVIO_XB_UNKNOWN)
		return false;
	if (device_read_uint(d, "state", 0, 8, PVIO_XB_CLOSED, false, &node) ||
	    node != PVIO_XB_INITIALISING)
		return false;
	d->recreated = true;
	return true;
}

static bool disconnect_if_draining(struct device *d)
{
	return !d->draining || disconnect(d);
}

/* The one dispatcher of the frontend's state. */
static void frontend_changed(struct pvio_xenbus *xb, enum pvio_xb_state fe,
			     void *opaque)
{
	struct device *d = opaque;
	enum pvio_xb_state be = pvio_xenbus_state(xb);

	/* the frontend of a re-created device: not ours to answer with the
	 * old instance (the scan its creation fired replaces the device) */
	if (device_recreated(d)) {
		disconnect(d);
		return;
	}
	/* the old connection still drains: decided again when it is over */
	if (!disconnect_if_draining(d))
		return;
	/* set-up still off the main thread: decided when it is done */
	if (d->opening)
		return;
	switch (fe) {
	case PVIO_XB_INITIALISING:
		/* a frontend (re)starting after we closed: offer again; not
		 * when our own set-up failed (a guest without a driver sits in
		 * Initialising: its first watch event is no restart) */
		if (d->setup_failed)
			break;
		if (be == PVIO_XB_CLOSED || be == PVIO_XB_CLOSING) {
			if (!disconnect(d))
				break;
			d->failed = false;
			pvio_xenbus_switch(xb, PVIO_XB_INITWAIT);
		}
		break;
	case PVIO_XB_INITIALISED:
		if (strcmp(d->ops->kind, "vif") == 0)
			break;	/* netback waits for Connected */
		/* fall through */
	case PVIO_XB_CONNECTED:
		if (be == PVIO_XB_CLOSED || be == PVIO_XB_CLOSING)
			break;	/* it must go through Closed first */
		do_connect(d);
		break;
	case PVIO_XB_CLOSING:
		if (disconnect(d))
			pvio_xenbus_switch(xb, PVIO_XB_CLOSING);
		break;
	case PVIO_XB_CLOSED:	/* also Unknown and absent */
		/* Closed only once nothing of the guest's is mapped */
		if (disconnect(d))
			pvio_xenbus_switch(xb, PVIO_XB_CLOSED);
		break;
	default:
		break;	/* InitWait, Reconfiguring: not ours to act on */
	}
}

void device_setup_fail(struct device *d, int err, const char *fmt, ...)
{
	char why[200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warn("%s: domain %u: %s", d->path, d->fe, why);
	pvio_xenbus_fatal(d->xb, err, "%s", why);
	disconnect(d);
	d->failed = true;
	d->setup_failed = true;
}

/*
 * A backend restarting under a connected guest: attach at the live ring
 * indices (or where its in-flight record says the last process was), do
 * not go through Closing (docs/protocol.md rule 11). -EAGAIN: the ops
 * wait for something (a lock, a hotplug script) and call
 * device_recheck() when it is there.
 */
static void reattach(struct device *d)
{
	int rc;

	d->reattach = true;
	rc = d->ops->connect(d);
	d->reattach = false;
	if (rc == -EAGAIN)
		return;
	if (rc) {
		log_warn("%s: cannot re-attach: %s", d->path,
			 pvio_xenbus_last_error(d->xb));
		d->failed = true;
		return;
	}
	d->connected = true;
	log_info("%s: re-attached to domain %u at its live rings", d->path,
		 d->fe);
}

int device_hotplug_error(struct device *d, const char *script)
{
	char *s = NULL;

	if (device_read_str(d, "hotplug-error", &s) < 0)
		return 0;
	device_setup_fail(d, -EIO, "hotplug script %s failed: %s", script, s);
	free(s);
	return 1;
}

void device_recheck(struct device *d)
{
	enum pvio_xb_state other = pvio_xenbus_other_state(d->xb);

	if (d->connected || d->failed)
		return;
	if (pvio_xenbus_state(d->xb) != PVIO_XB_CONNECTED ||
	    (other != PVIO_XB_CONNECTED && other != PVIO_XB_INITIALISED)) {
		frontend_changed(d->xb, other, d);
		return;
	}
	/* a restart under a connected guest whose connect had to wait (the
	 * target's lock, a script's answer): re-attach at the live rings */
	reattach(d);
}

/* ---- discovery -------------------------------------------------------------------- */

static struct device *dev_find(struct backd *bd, const char *type,
			       unsigned int fe, unsigned int devid)
{
	struct device *d;

	for (d = bd->devices; d; d = d->next)
		if (d->fe == fe && d->devid == devid && !strcmp(d->type, type))
			return d;
	return NULL;
}

static bool dev_dying(struct backd *bd, const char *type, unsigned int fe,
		      unsigned int devid)
{
	struct device *d;

	for (d = bd->dying; d; d = d->next)
		if (d->fe == fe && d->devid == devid && !strcmp(d->type, type))
			return true;
	return false;
}

/* Unlinked from bd->devices: free it now, or once its queues drained. */
static void dev_free(struct device *d)
{
	struct backd *bd = d->bd;

	pvio_xenbus_close(d->xb);
	d->xb = NULL;
	if (!disconnect(d)) {
		d->next = bd->dying;
		bd->dying = d;
		if (d->ops->going)
			d->ops->going(d);
		return;
	}
	d->ops->destroy(d);
	free(d);
}

static void dev_create(struct backd *bd, const struct device_ops *ops,
		       const char *type, unsigned int fe, unsigned int devid)
{
	struct device *d;
	int rc;

	/* its old instance still drains (its TAP, its target): created when
	 * that one is freed (devices_reap_stopped scans again) */
	if (dev_dying(bd, type, fe, devid))
		return;
	d = calloc(1, sizeof(*d));
	if (!d)
		return;
	d->bd = bd;
	d->ops = ops;
	d->fe = fe;
	d->devid = devid;
	d->seen = true;
	snprintf(d->type, sizeof(d->type), "%s", type);
	pvio_xb_backend_path(d->path, bd->self, type, fe, devid);
	rc = pvio_xenbus_open(&d->xb, bd->xs, d->path, "frontend",
			      "frontend-id", frontend_changed, d);
	if (rc) {
		/* a half-written device (the toolstack is still at it) or a
		 * bogus one: look again on the next change */
		log_debug("%s: not ready: %s", d->path, strerror(-rc));
		free(d);
		return;
	}
	pvio_xenbus_set_trace(d->xb, trace);
	d->next = bd->devices;
	bd->devices = d;
	log_info("%s: new %s for domain %u", d->path, ops->kind, fe);
	rc = ops->probe(d);
	if (rc == -EINPROGRESS) {
		/* a step off the main thread: device_probe_done() goes on;
		 * the marker tells this instance from a re-created one
		 * (device_recreated) while our state node is still the
		 * toolstack's Initialising */
		d->opening = true;
		d->opening_ns = pvio_now_ns();
		rc = device_write(d, OPENING_NODE, "1");
		d->marked = rc == 0;
		/* removed (and maybe written anew) while it probed: whatever
		 * is there is not ours (device_opened() offers nothing) */
		if (rc == -ENOENT || rc == -ESTALE)
			d->recreated = true;
		else if (rc)
			log_warn("%s: cannot write %s: a removal while it opens is not seen",
				 d->path, OPENING_NODE);
		return;
	}
	device_probe_done(d, rc);
}

static void check_online(struct device *d);

bool device_reattaching(struct device *d)
{
	enum pvio_xb_state other;

	if (pvio_xenbus_state(d->xb) != PVIO_XB_CONNECTED)
		return false;
	other = pvio_xenbus_other_state(d->xb);
	return other == PVIO_XB_CONNECTED || other == PVIO_XB_INITIALISED;
}

void device_probe_done(struct device *d, int rc)
{
	enum pvio_xb_state other;
	bool was_opening = d->opening;

	d->opening = false;
	if (was_opening) {
		char key[PVIO_XS_PATH_MAX + 32];

		snprintf(key, sizeof(key), "%s/%s", d->path, OPENING_NODE);
		pvio_xs_rm(d->bd->xs, 0, key);
	}
	if (rc) {
		/* the ops' own reason when they wrote one */
		if (!pvio_xenbus_last_error(d->xb)[0])
			pvio_xenbus_fatal(d->xb, rc, "backend set-up failed");
		log_warn("%s: set-up failed: %s", d->path,
			 pvio_xenbus_last_error(d->xb));
		d->failed = true;
		d->setup_failed = true;
		return;
	}
	/* already re-attached (by device_recheck() from a step that ended
	 * first): a second attach of the same rings fails, and its Closing
	 * would kill the guest's disk */
	if (d->connected || d->failed)
		return;
	if (device_reattaching(d)) {
		/* a backend restarting under a connected guest: attach at the
		 * live ring indices (or where its in-flight record says the
		 * last process was), do not go through Closing
		 * (docs/protocol.md rule 11) */
		reattach(d);
		return;
	}
	pvio_xenbus_switch(d->xb, PVIO_XB_INITWAIT);
	/* the frontend's events while we were opening were not acted on
	 * (frontend_changed): the state they left, now, as the first watch
	 * event is after a probe on the main thread */
	if (was_opening) {
		other = pvio_xenbus_other_state(d->xb);
		frontend_changed(d->xb, other, d);
		check_online(d);
	}
}

void device_opened(struct device *d, int (*offer)(struct device *d))
{
	struct pvio_xs *xs = d->bd->xs;
	char key[PVIO_XS_PATH_MAX + 32];
	int rc, end, tries = 0;

	snprintf(key, sizeof(key), "%s/%s", d->path, OPENING_NODE);
	/*
	 * The removal may come at any moment, also between two of @offer's
	 * writes, and each write would bring the directory back (xenstored
	 * makes the missing parents): a directory of feature nodes, and the
	 * device kept for it. Removed and written anew, the new instance's
	 * Initialising would be overwritten, and the old device (its old
	 * target) would serve it. In one transaction with the marker, the
	 * removal makes the commit fail, and the next round sees it.
	 */
	if (d->recreated) {	/* gone before its marker was written */
		log_info("%s: removed while it was being set up: nothing offered",
			 d->path);
		d->opening = false;
		return;
	}
	do {
		char *v = NULL;

		rc = pvio_xs_tx_start(xs, &d->tx);
		if (rc) {
			d->tx = 0;
			break;
		}
		/* without our marker (its write failed): the directory */
		if (d->marked)
			rc = pvio_xs_read(xs, d->tx, key, &v);
		else
			rc = pvio_xs_exists(xs, d->tx, d->path) ? 0 : -ENOENT;
		free(v);
		if (rc == -ENOENT) {
			pvio_xs_tx_end(xs, d->tx, true);
			d->tx = 0;
			log_info("%s: removed while it was being set up: nothing offered",
				 d->path);
			d->opening = false;
			d->recreated = true;	/* whatever is there is not ours */
			return;
		}
		if (rc >= 0)
			rc = offer(d);
		/* a failed offer writes nothing: the device fails */
		end = pvio_xs_tx_end(xs, d->tx, rc < 0);
		d->tx = 0;
		if (rc >= 0)
			rc = end;
	} while (rc == -EAGAIN && ++tries < 100);
	if (tries && rc != -EAGAIN)
		log_debug("%s: offered in %d round(s) (the directory changed)",
			  d->path, tries + 1);
	device_probe_done(d, rc);
}

unsigned int devices_opening(const struct backd *bd, uint64_t for_ns)
{
	uint64_t now = pvio_now_ns();
	const struct device *d;
	unsigned int n = 0;

	for (d = bd->devices; d; d = d->next)
		n += (d->opening || d->open_pending) &&
		     (!for_ns || now - d->opening_ns < for_ns);
	return n;
}

static void scan_kind(struct backd *bd, const struct device_ops *ops,
		      const char *type)
{
	char path[PVIO_XS_PATH_MAX], **doms = NULL, **ids = NULL;
	int nd, ni, i, j;

	snprintf(path, sizeof(path), "/local/domain/%u/backend/%s", bd->self,
		 type);
	nd = pvio_xs_directory(bd->xs, 0, path, &doms);
	for (i = 0; i < nd; i++) {
		unsigned long fe;
		char *end;

		fe = strtoul(doms[i], &end, 10);
		if (*end || end == doms[i] || fe > 0x7fef)
			continue;
		snprintf(path, sizeof(path), "/local/domain/%u/backend/%s/%lu",
			 bd->self, type, fe);
		ni = pvio_xs_directory(bd->xs, 0, path, &ids);
		for (j = 0; j < ni; j++) {
			unsigned long id = strtoul(ids[j], &end, 10);
			struct device *d;

			if (*end || end == ids[j] || id > 0xfffffff)
				continue;
			d = dev_find(bd, type, (unsigned int)fe, (unsigned int)id);
			if (d)
				d->seen = true;
			else if (!bd->stopping)
				dev_create(bd, ops, type, (unsigned int)fe,
					   (unsigned int)id);
		}
		free(ids);
		ids = NULL;
	}
	free(doms);
}

static void scan_types(struct backd *bd, const struct device_ops *ops,
		       const char *list)
{
	char buf[256], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save))
		scan_kind(bd, ops, tok);
}

/* libxl's remove: online=0 and Closing written into our state node; it
 * waits for us to write Closed there (once drained) */
static void check_online(struct device *d)
{
	unsigned long online = 1, node = PVIO_XB_CLOSED;

	if (device_read_uint(d, "online", 0, 1, 1, false, &online) || online)
		return;
	if (d->opening) {
		/* removed while its target opens: the open's result goes
		 * nowhere, what it took is released where it is */
		d->ops->abort(d);
		d->opening = false;
		d->failed = true;
		d->setup_failed = true;
		log_info("%s: removed while it was being set up: set-up abandoned",
			 d->path);
	}
	device_read_uint(d, "state", 0, 8, PVIO_XB_CLOSED, false, &node);
	if (pvio_xenbus_state(d->xb) != PVIO_XB_CLOSED) {
		if (disconnect(d))
			pvio_xenbus_switch(d->xb, PVIO_XB_CLOSED);
	} else if (node != PVIO_XB_CLOSED) {
		pvio_xenbus_touch(d->xb);	/* Closed again */
	}
}

/*
 * Look at known device *@pp after a change: gone (@present false), removed
 * and re-created, or libxl's remove protocol. Unlinks and frees it when it
 * goes; return true then (*@pp is the next device).
 */
static bool dev_review(struct backd *bd, struct device **pp, bool present)
{
	struct device *d = *pp;

	if (!present) {
		/* the toolstack removed it */
		*pp = d->next;
		log_info("%s: removed", d->path);
		dev_free(d);
		return true;
	}
	if (device_recreated(d)) {
		const struct device_ops *ops = d->ops;
		char type[sizeof(d->type)];
		unsigned int fe = d->fe, devid = d->devid;

		/* removed and written anew since the last scan */
		*pp = d->next;
		log_info("%s: removed and re-created: a new device", d->path);
		snprintf(type, sizeof(type), "%s", d->type);
		dev_free(d);
		if (!bd->stopping)
			dev_create(bd, ops, type, fe, devid);
		return true;
	}
	if (d->ops->changed)	/* hotplug nodes, a lock to try again */
		d->ops->changed(d);
	check_online(d);
	return false;
}

void devices_scan(struct backd *bd)
{
	struct device **pp, *d;

	for (d = bd->devices; d; d = d->next)
		d->seen = false;
	if (!bd->o.no_vbd)
		scan_types(bd, &vbd_ops, bd->o.types_vbd);
	if (!bd->o.no_vif)
		scan_types(bd, &vif_ops, bd->o.types_vif);
	pp = &bd->devices;
	while ((d = *pp))
		if (!dev_review(bd, pp, d->seen))
			pp = &d->next;
}

/* Is @type in the comma-separated @list? */
static bool type_listed(const char *list, const char *type, size_t len)
{
	const char *p = list;

	while (*p) {
		size_t n = strcspn(p, ",");

		if (n == len && !strncmp(p, type, len))
			return true;
		p += n;
		if (*p == ',')
			p++;
	}
	return false;
}

/* The devices of one frontend domain: its directory changed. */
static void scan_fe(struct backd *bd, const struct device_ops *ops,
		    const char *type, unsigned int fe)
{
	char path[PVIO_XS_PATH_MAX], **ids = NULL;
	struct device **pp, *d;
	int ni, j;

	for (d = bd->devices; d; d = d->next)
		if (d->fe == fe && !strcmp(d->type, type))
			d->seen = false;
	snprintf(path, sizeof(path), "/local/domain/%u/backend/%s/%u", bd->self,
		 type, fe);
	ni = pvio_xs_directory(bd->xs, 0, path, &ids);
	for (j = 0; j < ni; j++) {
		char *end;
		unsigned long id = strtoul(ids[j], &end, 10);

		if (*end || end == ids[j] || id > 0xfffffff)
			continue;
		d = dev_find(bd, type, fe, (unsigned int)id);
		if (d)
			d->seen = true;
		else if (!bd->stopping)
			dev_create(bd, ops, type, fe, (unsigned int)id);
	}
	free(ids);
	pp = &bd->devices;
	while ((d = *pp))
		if (d->fe != fe || strcmp(d->type, type) ||
		    !dev_review(bd, pp, d->seen))
			pp = &d->next;
}

/*
 * A kind's directory changed: its frontend domains come and go. Only
 * domains we know nothing of are listed (a new device of a known domain
 * fires an event of its own); devices of domains no longer listed go.
 */
static void scan_kind_dirs(struct backd *bd, const struct device_ops *ops,
			   const char *type)
{
	char path[PVIO_XS_PATH_MAX], **doms = NULL;
	struct device **pp, *d;
	int nd, i;

	snprintf(path, sizeof(path), "/local/domain/%u/backend/%s", bd->self,
		 type);
	nd = pvio_xs_directory(bd->xs, 0, path, &doms);
	if (nd < 0 && nd != -ENOENT)
		return;	/* cannot tell: keep what we have */
	for (d = bd->devices; d; d = d->next)
		if (!strcmp(d->type, type))
			d->seen = false;
	for (i = 0; i < nd; i++) {
		unsigned long fe;
		char *end;
		bool known = false;

		fe = strtoul(doms[i], &end, 10);
		if (*end || end == doms[i] || fe > 0x7fef)
			continue;
		for (d = bd->devices; d; d = d->next)
			if (d->fe == fe && !strcmp(d->type, type)) {
				d->seen = true;
				known = true;
			}
		if (!known)
			scan_fe(bd, ops, type, (unsigned int)fe);
	}
	free(doms);
	pp = &bd->devices;
	while ((d = *pp))
		if (strcmp(d->type, type) || d->seen || !dev_review(bd, pp, false))
			pp = &d->next;
}

/* One device's directory or a node in it changed. */
static void scan_dev(struct backd *bd, const struct device_ops *ops,
		     const char *type, unsigned int fe, unsigned int devid,
		     const char *rest)
{
	struct device **pp, *d;

	for (pp = &bd->devices; (d = *pp); pp = &d->next)
		if (d->fe == fe && d->devid == devid && !strcmp(d->type, type))
			break;
	if (!d) {
		/* new, or still half-written: dev_create looks */
		if (!bd->stopping)
			dev_create(bd, ops, type, fe, devid);
		return;
	}
	/* rate limits, changed at any time */
	if (d->ops->limits && (!strcmp(rest, "pvio-iops-limit") ||
			       !strcmp(rest, "pvio-bytes-limit") ||
			       !strcmp(rest, "rate"))) {
		d->ops->limits(d, rest);
		return;
	}
	/* the nodes that change what the device is: its directory (created
	 * or removed), `online` and `state` (libxl's remove, re-creation);
	 * the rest (our own features, the toolstack's params) do not */
	if (*rest && strcmp(rest, "online") && strcmp(rest, "state")) {
		if (d->ops->changed)	/* hotplug nodes, a lock to try again */
			d->ops->changed(d);
		return;
	}
	dev_review(bd, pp, pvio_xs_exists(bd->xs, 0, d->path));
}

/*
 * A watch under .../backend/<kind> fired: look at what the path names
 * only. A scan of everything costs two xenstore round trips per device,
 * and every node written under the backend fires an event: with hundreds
 * of devices, full scans made the handshakes wait for each other.
 */
static void watch_fired(struct pvio_xs *x, const char *path, void *opaque)
{
	struct backd *bd = opaque;
	const struct device_ops *ops;
	char prefix[64], type[BACKEND_KIND_MAX + 1];
	unsigned long fe, id;
	const char *p, *slash;
	char *end;
	size_t len;

	snprintf(prefix, sizeof(prefix), "/local/domain/%u/backend/", bd->self);
	len = strlen(prefix);
	if (strncmp(path, prefix, len)) {
		devices_scan(opaque);	/* not a path we know: everything */
		return;
	}
	p = path + len;
	slash = strchr(p, '/');
	if (!slash)
		slash = p + strlen(p);
	if ((size_t)(slash - p) >= sizeof(type))
		return;
	memcpy(type, p, (size_t)(slash - p));
	type[slash - p] = 0;
	if (!bd->o.no_vbd && type_listed(bd->o.types_vbd, type, strlen(type)))
		ops = &vbd_ops;
	else if (!bd->o.no_vif && type_listed(bd->o.types_vif, type, strlen(type)))
		ops = &vif_ops;
	else
		return;
	if (!*slash) {
		scan_kind_dirs(bd, ops, type);
		return;
	}
	p = slash + 1;
	fe = strtoul(p, &end, 10);
	if (end == p || fe > 0x7fef || (*end && *end != '/'))
		return;
	if (!*end) {
		scan_fe(bd, ops, type, (unsigned int)fe);
		return;
	}
	p = end + 1;
	id = strtoul(p, &end, 10);
	if (end == p || id > 0xfffffff || (*end && *end != '/'))
		return;
	scan_dev(bd, ops, type, (unsigned int)fe, (unsigned int)id,
		 *end ? end + 1 : "");
}

static int watch_types(struct backd *bd, const char *list)
{
	char buf[256], path[PVIO_XS_PATH_MAX], *tok, *save = NULL;
	int rc;

	snprintf(buf, sizeof(buf), "%s", list);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		snprintf(path, sizeof(path), "/local/domain/%u/backend/%s",
			 bd->self, tok);
		rc = pvio_xs_watch(bd->xs, path, watch_fired, bd);
		if (rc < 0)
			return rc;
		log_info("serving %s devices under %s", tok, path);
	}
	return 0;
}

int devices_init(struct backd *bd)
{
	int rc = 0;

	if (!bd->o.no_vbd)
		rc = watch_types(bd, bd->o.types_vbd);
	if (!rc && !bd->o.no_vif)
		rc = watch_types(bd, bd->o.types_vif);
	return rc;
}

/* Fail one device: this guest only, the others keep running
 * (docs/protocol.md rule 9). */
static void device_fail(struct device *d, int err, unsigned int queue,
			const char *why)
{
	dev_warn(d, "%s: domain %u, queue %u: %s: disconnecting it", d->path,
		 d->fe, queue, why);
	pvio_xenbus_fatal(d->xb, err ? err : -EPROTO, "queue %u: %s", queue, why);
	disconnect(d);
	d->failed = true;
}

/* A frontend that went away without closing (its process died): its
 * event channel is no longer bound to ours. */
static void check_peers(struct device *d)
{
	struct pvio_evtchn_status st;
	unsigned int i, k;

	for (i = 0; d->connected && i < d->nr_queues; i++) {
		struct dp_queue *q = d->queues[i];

		for (k = 0; k < q->nr_ports; k++)
			if (pvio_evtchn_status(d->bd->plat, q->ports[k], &st) == 0 &&
			    st.state != PVIO_EVTCHN_INTERDOMAIN) {
				device_fail(d, -ENOTCONN, i,
					    "the frontend closed its event channel");
				return;
			}
	}
}

/* The stalled-I/O report, once a second: a queue with I/O in flight and
 * nothing completed for the stall timeout names its device. */
static void check_stalls(struct device *d, uint64_t now)
{
	uint64_t limit = (uint64_t)d->bd->o.stall_s * 1000000000u;
	unsigned int i;

	for (i = 0; limit && i < d->nr_queues; i++) {
		struct dp_queue *q = d->queues[i];
		uint32_t n;
		uint64_t since, idle;

		if (!q || !q->started)
			continue;
		n = __atomic_load_n(&q->io_busy, __ATOMIC_RELAXED);
		since = __atomic_load_n(&q->progress_ns, __ATOMIC_RELAXED);
		/* the worker may have stamped a completion after @now was
		 * read: no negative time (it wrapped: 18446744073 s) */
		idle = since ? pvio_since_ns(now, since) : 0;
		if (n && idle >= limit) {
			if (!q->stall_logged)
				log_warn("%s: domain %u, queue %u (worker %u): no I/O completed for %llu s, %u in flight: its target is stuck",
					 d->path, d->fe, i, q->w->idx,
					 (unsigned long long)(idle / 1000000000u),
					 n);
			q->stall_logged = true;
		} else if (q->stall_logged) {
			log_info("%s: queue %u: I/O completes again", d->path, i);
			q->stall_logged = false;
		}
	}
}

/*
 * Event-channel lookups per tick for vanished peers: a frontend that dies
 * normally kicks us through the hypervisor (the worker looks then); this
 * is the fallback. Each lookup is a hypervisor call: with hundreds of
 * devices, all of them every second would cost pvio-backd ~1% of a core
 * while every guest is idle. So a slice per tick, round robin: every
 * device within (ports / PEER_CHECKS) seconds.
 */
#define PEER_CHECKS	64u

void devices_tick(struct backd *bd)
{
	struct device *d;
	unsigned int n = 0, ports = 0, i = 0;
	uint64_t now = pvio_now_ns();

	for (d = bd->devices; d; d = d->next) {
		n++;
		check_stalls(d, now);
		if (d->ops->tick)
			d->ops->tick(d);
		pvio_ratelimit_flush(&d->log_rl[0], d->path);
		pvio_ratelimit_flush(&d->log_rl[1], d->path);
	}
	if (vbd_ops.tick_end)
		vbd_ops.tick_end(bd);
	if (vif_ops.tick_end)
		vif_ops.tick_end(bd);
	if (!n)
		return;
	if (bd->peer_cursor >= n)
		bd->peer_cursor = 0;
	for (d = bd->devices; d && i < bd->peer_cursor; d = d->next)
		i++;
	for (i = 0; i < n && ports < PEER_CHECKS; i++) {
		unsigned int k;

		if (!d)
			d = bd->devices;
		for (k = 0; d->connected && k < d->nr_queues; k++)
			ports += d->queues[k]->nr_ports;
		check_peers(d);
		d = d->next;
	}
	bd->peer_cursor += i;
}

void devices_reap_halted(struct backd *bd)
{
	struct device *d;
	unsigned int i;

	for (d = bd->devices; d; d = d->next) {
		for (i = 0; d->connected && i < d->nr_queues; i++) {
			struct dp_queue *q = d->queues[i];

			if (!__atomic_load_n(&q->halted, __ATOMIC_ACQUIRE))
				continue;
			device_fail(d, q->halt_err, i, q->halt_why);
			break;
		}
	}
}

/* A worker stopped a queue: devices whose XenBus steps waited for their
 * drain go on; removed devices that drained are freed. */
void devices_reap_stopped(struct backd *bd)
{
	struct device **pp, *d;
	bool freed = false;

	for (d = bd->devices; d; d = d->next) {
		if (!d->draining || !disconnect(d))
			continue;
		log_debug("%s: drained", d->path);
		frontend_changed(d->xb, pvio_xenbus_other_state(d->xb), d);
		if (!d->recreated)
			check_online(d);
	}
	pp = &bd->dying;
	while ((d = *pp)) {
		if (!disconnect(d)) {
			pp = &d->next;
			continue;
		}
		*pp = d->next;
		log_info("%s: drained after its removal, freed", d->path);
		d->ops->destroy(d);
		free(d);
		freed = true;
	}
	/* a re-created instance waited for the old one */
	if (freed && !bd->stopping)
		devices_scan(bd);
}

/*
 * SIGTERM: drain every queue and detach, leaving xenstore as it is (a
 * restarted pvio-backd re-attaches at the live rings: Linux frontends do
 * not recover from a backend that closes), for up to @bound_ms once every
 * device was told to (*@deadline: then). A device whose target does not
 * answer by then is abandoned: logged, its memory left to the exit.
 * Return the number abandoned.
 */
unsigned int devices_shutdown(struct backd *bd, unsigned int bound_ms,
			      uint64_t *deadline_ms)
{
	uint64_t deadline;
	struct device *d;
	unsigned int n = 0;

	/* the exit closes the connection, and xenstored drops its watches:
	 * hundreds of unwatch round trips would only hold the stop up */
	pvio_xs_drop_watches(bd->xs);
	while ((d = bd->devices)) {
		bd->devices = d->next;
		if (d->connected)
			log_info("%s: draining, detaching (state kept)", d->path);
		d->detaching = true;
		dev_free(d);
	}
	/* the bound is the targets': telling hundreds of devices takes the
	 * main thread seconds on a busy host, and their queues drain
	 * meanwhile */
	deadline = pvio_now_ms() + bound_ms;
	*deadline_ms = deadline;
	for (;;) {
		struct pollfd p = { .fd = bd->done_efd, .events = POLLIN };
		uint64_t now = pvio_now_ms(), v;

		for (d = bd->dying; d && queues_stopped(d); d = d->next)
			;
		if (!d || now >= deadline)
			break;
		if (poll(&p, 1, (int)(deadline - now)) > 0 &&
		    read(bd->done_efd, &v, sizeof(v)) < 0)
			log_debug("done_efd: %s", strerror(errno));
	}
	/*
	 * Freed only now that it is known whether this process exits at
	 * once: then a queue's port, grants and mappings are left to the
	 * exit (one at a time they cost round trips and a TLB shootdown
	 * each: seconds for hundreds of devices). A device abandoned with
	 * I/O hung on its target may keep the process (and what it mapped)
	 * for as long as its target hangs: the others' are released.
	 */
	bd->exit_fast = !d;
	devices_reap_stopped(bd);
	for (d = bd->dying; d; d = d->next) {
		log_warn("%s: domain %u: in-flight I/O did not drain within %u ms: abandoned",
			 d->path, d->fe, bound_ms);
		n++;
	}
	return n;
}

/* ---- counters ------------------------------------------------------------------------ */

static void add_stats(struct dp_stats *s, const struct dp_stats *q)
{
	unsigned int k;

	{

#define SUM(f) s->f += __atomic_load_n(&q->f, __ATOMIC_RELAXED)
		for (k = 0; k < 8; k++) {
			SUM(req[k]);
			SUM(drops[k]);
		}
		for (k = 0; k < NR_BATCH_BUCKETS; k++)
			SUM(batch[k]);
		for (k = 0; k < NR_LAT_BUCKETS; k++)
			SUM(lat[k]);
		SUM(lat_sum_ns);
		SUM(inflight);
		SUM(bytes_in);
		SUM(bytes_out);
		SUM(errors);
		SUM(err_bad_req);
		SUM(err_io);
		SUM(err_grant);
		SUM(err_unsupp);
		SUM(notify_tx);
		SUM(notify_rx);
		SUM(spurious);
		SUM(passes);
		SUM(pg_hits);
		SUM(pg_maps);
		SUM(pg_refused);
		if (q->inflight_max > s->inflight_max)
			s->inflight_max = q->inflight_max;
#undef SUM
	}
}

static void sum_stats(const struct device *d, struct dp_stats *s)
{
	unsigned int i;

	*s = d->retired;
	for (i = 0; i < d->nr_queues; i++)
		if (d->queues[i])
			add_stats(s, &d->queues[i]->st);
}

static const char *const bucket_name[NR_BATCH_BUCKETS] = {
	"1", "2-3", "4-7", "8-15", "16-31", "32-63", "64-127", "128-255",
	"256-511", "512+",
};

#define OUT(...)							\
	do {								\
		if (n < len)						\
			n += (size_t)snprintf(buf + n, len - n, __VA_ARGS__); \
	} while (0)

static void jadd_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

/*
 * A file name as a JSON string: names are bytes, JSON strings are UTF-8.
 * Valid UTF-8 goes as it is (json-c escapes quotes, backslashes and
 * control characters); otherwise each invalid byte becomes U+FFFD and
 * "<key>_hex" carries the exact bytes.
 */
void json_add_name(struct json_object *o, const char *key, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, n = strlen(s), k = 0;
	char *u, *hex, hkey[64];
	bool lossy = false;

	u = malloc(3 * n + 1);
	if (!u)
		return;
	while (i < n) {
		unsigned int len = 0, cp = 0, j;

		if (p[i] < 0x80)
			len = 1;
		else if ((p[i] & 0xe0) == 0xc0 && p[i] >= 0xc2)
			len = 2, cp = p[i] & 0x1f;
		else if ((p[i] & 0xf0) == 0xe0)
			len = 3, cp = p[i] & 0x0f;
		else if ((p[i] & 0xf8) == 0xf0 && p[i] <= 0xf4)
			len = 4, cp = p[i] & 0x07;
		for (j = 1; len > 1 && j < len; j++) {
			if (i + j >= n || (p[i + j] & 0xc0) != 0x80) {
				len = 0;
				break;
			}
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		/* no overlong forms, no surrogates, nothing past U+10FFFF */
		if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			len = 0;
		if (!len) {
			memcpy(u + k, "\xef\xbf\xbd", 3);
			k += 3;
			i++;
			lossy = true;
			continue;
		}
		memcpy(u + k, p + i, len);
		k += len;
		i += len;
	}
	u[k] = 0;
	json_object_object_add(o, key, json_object_new_string_len(u, (int)k));
	free(u);
	if (!lossy)
		return;
	hex = malloc(2 * n + 1);
	if (!hex)
		return;
	for (i = 0; i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", p[i]);
	snprintf(hkey, sizeof(hkey), "%s_hex", key);
	json_object_object_add(o, hkey, json_object_new_string(hex));
	free(hex);
}

static struct json_object *device_json(struct device *d, const struct dp_stats *s)
{
	struct json_object *o = json_object_new_object(), *r, *e, *b, *l;
	bool vbd = strcmp(d->ops->kind, "vbd") == 0;
	unsigned int k;

	json_object_object_add(o, "kind", json_object_new_string(d->ops->kind));
	json_object_object_add(o, "type", json_object_new_string(d->type));
	jadd_u64(o, "domid", d->fe);
	jadd_u64(o, "devid", d->devid);
	json_object_object_add(o, "path", json_object_new_string(d->path));
	json_object_object_add(o, "state", json_object_new_string(
		pvio_xb_state_name(pvio_xenbus_state(d->xb))));
	json_object_object_add(o, "frontend_state", json_object_new_string(
		pvio_xb_state_name(pvio_xenbus_other_state(d->xb))));
	json_object_object_add(o, "failed", json_object_new_boolean(d->failed));
	json_object_object_add(o, "opening", json_object_new_boolean(d->opening));
	jadd_u64(o, "connects", d->connects);
	jadd_u64(o, "queues", d->nr_queues);
	if (d->ops->describe)
		d->ops->describe(d, o);
	r = json_object_new_object();
	if (vbd) {
		jadd_u64(r, "read", s->req[BLKIF_OP_READ]);
		jadd_u64(r, "write", s->req[BLKIF_OP_WRITE]);
		jadd_u64(r, "barrier", s->req[BLKIF_OP_WRITE_BARRIER]);
		jadd_u64(r, "flush", s->req[BLKIF_OP_FLUSH_DISKCACHE]);
		jadd_u64(r, "discard", s->req[BLKIF_OP_DISCARD]);
		jadd_u64(r, "indirect", s->req[BLKIF_OP_INDIRECT]);
		jadd_u64(r, "unknown", s->req[7]);
		json_object_object_add(o, "requests", r);
		b = json_object_new_object();
		jadd_u64(b, "hits", s->pg_hits);
		jadd_u64(b, "maps", s->pg_maps);
		jadd_u64(b, "refused", s->pg_refused);
		json_object_object_add(o, "persistent_grants", b);
	} else {
		jadd_u64(r, "tx", s->req[0]);
		jadd_u64(r, "rx", s->req[1]);
		json_object_object_add(o, "packets", r);
		jadd_u64(o, "bytes_tx", s->bytes_in);
		jadd_u64(o, "bytes_rx", s->bytes_out);
		b = json_object_new_object();
		jadd_u64(b, "malformed", s->drops[0]);
		jadd_u64(b, "grant", s->drops[1]);
		jadd_u64(b, "rx_no_buffer", s->drops[2]);
		jadd_u64(b, "rx_stall", s->drops[3]);
		jadd_u64(b, "tap", s->drops[4]);
		jadd_u64(b, "too_big", s->drops[5]);
		json_object_object_add(o, "drops", b);
	}
	/* both kinds, from the backend's side: read from the target (to the
	 * guest: blk reads, net rx), written to it (blk writes, net tx) */
	jadd_u64(o, "bytes_read", s->bytes_out);
	jadd_u64(o, "bytes_written", s->bytes_in);
	e = json_object_new_object();
	jadd_u64(e, "total", s->errors);
	jadd_u64(e, "bad_request", s->err_bad_req);
	jadd_u64(e, "io", s->err_io);
	jadd_u64(e, "grant", s->err_grant);
	jadd_u64(e, "unsupported", s->err_unsupp);
	json_object_object_add(o, "errors", e);
	jadd_u64(o, "notifications_sent", s->notify_tx);
	jadd_u64(o, "notifications_received", s->notify_rx);
	jadd_u64(o, "spurious_kicks", s->spurious);
	jadd_u64(o, "passes", s->passes);
	jadd_u64(o, "inflight", s->inflight);
	jadd_u64(o, "inflight_max", s->inflight_max);
	b = json_object_new_object();
	for (k = 0; k < NR_BATCH_BUCKETS; k++)
		jadd_u64(b, bucket_name[k], s->batch[k]);
	json_object_object_add(o, "batch_sizes", b);
	if (vbd) {
		/* bucket k: [2^k, 2^(k+1)) us; bucket 0 also below 1 us */
		l = json_object_new_array();
		for (k = 0; k < NR_LAT_BUCKETS; k++)
			json_object_array_add(l, json_object_new_uint64(s->lat[k]));
		json_object_object_add(o, "latency_us_log2", l);
		jadd_u64(o, "latency_sum_ns", s->lat_sum_ns);
	}
	return o;
}

size_t devices_stats(struct backd *bd, char *buf, size_t len, bool json,
		     int dom, int devid)
{
	struct json_object *top = NULL, *arr = NULL;
	struct device *d;
	struct dp_stats s;
	size_t n = 0;
	unsigned int k;

	if (json) {
		top = json_object_new_object();
		arr = json_object_new_array();
		json_object_object_add(top, "version",
				       json_object_new_string(PACKAGE_VERSION));
		json_object_object_add(top, "uptime_s", json_object_new_double(
			(double)(pvio_now_ns() - bd->started_ns) / 1e9));
		jadd_u64(top, "time_ns", pvio_now_ns());
		json_object_object_add(top, "devices", arr);
	} else {
		OUT("%-6s %5s %8s %-10s %10s %8s %14s %14s %6s %8s %9s %9s\n",
		    "kind", "dom", "dev", "state", "requests", "errors",
		    "bytes_read", "bytes_written", "queues", "inflight",
		    "notif_tx", "notif_rx");
	}
	for (d = bd->devices; d; d = d->next) {
		uint64_t total = 0;

		if ((dom >= 0 && d->fe != (unsigned int)dom) ||
		    (devid >= 0 && d->devid != (unsigned int)devid))
			continue;
		sum_stats(d, &s);
		if (json) {
			json_object_array_add(arr, device_json(d, &s));
			continue;
		}
		for (k = 0; k < 8; k++)
			total += s.req[k];
		OUT("%-6s %5u %8u %-10s %10llu %8llu %14llu %14llu %6u %8llu %9llu %9llu\n",
		    d->ops->kind, d->fe, d->devid,
		    d->failed ? "failed" : d->opening ? "opening" :
		    pvio_xb_state_name(pvio_xenbus_state(d->xb)),
		    (unsigned long long)total, (unsigned long long)s.errors,
		    (unsigned long long)s.bytes_out, (unsigned long long)s.bytes_in,
		    d->nr_queues, (unsigned long long)s.inflight,
		    (unsigned long long)s.notify_tx,
		    (unsigned long long)s.notify_rx);
	}
	if (json) {
		size_t l;
		const char *t = json_object_to_json_string_length(top,
			JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, &l);

		if (l + 2 > len) {
			n = (size_t)snprintf(buf, len, "{\"error\": \"too many devices\"}\n");
		} else {
			memcpy(buf, t, l);
			buf[l] = '\n';
			n = l + 1;
		}
		json_object_put(top);
	}
	return n < len ? n : len - 1;
}
