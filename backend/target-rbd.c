// SPDX-License-Identifier: MIT
/*
 * The RBD target: a Ceph RBD image through librbd's asynchronous calls
 * (rbd_aio_readv/writev/flush/discard), completions delivered through an
 * eventfd (rbd_set_image_notification) that the worker's io_uring polls,
 * then collected with rbd_poll_io_events(), as SPDK's bdev_rbd and fio's
 * rbd engine do. The queue lives in the worker loop like a file queue.
 *
 * params: rbd:POOL/IMAGE[@SNAP][:conf=PATH][:id=USER][:KEY=VALUE...] (the
 * syntax QEMU takes: other keys go to the Ceph configuration). A snapshot
 * is read-only.
 *
 * The worker never waits in librbd: rbd_non_blocking_aio (set here, the
 * default) queues every aio call to librbd's own thread, so a throttled or
 * unreachable cluster does not block its caller. Bounded failure: the
 * cluster client's own timeouts are set to --remote-timeout
 * (rados_osd_op_timeout: an I/O not done by then completes with
 * -ETIMEDOUT; rados_mon_op_timeout and client_mount_timeout bound the
 * connection at set-up, on the main thread).
 *
 * Fencing: the image's exclusive lock is taken at set-up
 * (rbd_lock_acquire EXCLUSIVE, which also stops librbd from handing it to
 * another client that asks) and released when the device goes. A second
 * writer, on any host, fails its device: nothing is written.
 *
 * A crash leaves the lock with a client that is gone, and librbd gives it
 * to the next one only once the cluster has timed that client's watch out
 * (osd_client_watch_timeout, 30 s): a restarted pvio-backd's disks would
 * stall that long. So a writer also holds this host's lock file for the
 * image (target-remote.c, in --lock-dir) and notes there which client it
 * is. A restarted pvio-backd that takes the file (no live process of
 * this host has the image) and finds the image's lock held by exactly
 * the client noted breaks it (librbd blocklists that client, so nothing
 * it sent can land later) and takes it at once. Any other holder is
 * another writer, and is refused as before.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <rados/librados.h>
#include <rbd/librbd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "blk.h"
#include "target-remote.h"

#define RBD_POLL_BATCH	64
#define RBD_SCAN_NS	100000000u	/* timed-out I/O looked for every 100 ms */

struct rbd_tgt {
	rados_t cluster;
	bool connected;
	rados_ioctx_t io;
	bool have_io;
	rbd_image_t img;
	bool locked;
	struct remote_lock hostlock;	/* this host's lock file (above) */
	int efd;
	uint64_t timeout_ns;
	/* worker state */
	struct blk_queue *q;
	struct dp_tag tag;
	bool armed, cancel_sent, stopping;
	uint32_t inflight;		/* completions librbd owes */
	uint64_t *started_ns;		/* per slot: for the stuck-I/O warning */
	uint32_t nr_slots;
	uint64_t warned_ns, next_scan_ns;
	/* a write of several pieces, made one before librbd copies it */
	char *flat;
	size_t flat_cap;
};

static struct rbd_tgt *T(const struct vbd *v)
{
	return v->tpriv;
}

/* ---- main thread: open, size, close ------------------------------------------------- */

/*
 * Split "rbd:POOL/IMAGE[@SNAP][:k=v...]" in place: QEMU's syntax, where
 * "\:" is a literal colon. Return -EINVAL with @why on bad syntax.
 */
static int parse(char *s, char **pool, char **image, char **snap,
		 char **opts, char *why, size_t len)
{
	char *p, *w;

	s += 4;	/* "rbd:" */
	*opts = NULL;
	for (p = w = s; *p; p++, w++) {
		if (p[0] == '\\' && p[1]) {
			*w = *++p;
			continue;
		}
		if (*p == ':') {
			*w = 0;
			*opts = p + 1;
			break;
		}
		*w = *p;
	}
	*w = 0;
	*pool = s;
	*image = strchr(s, '/');
	if (!*image || *image == s || !(*image)[1]) {
		snprintf(why, len, "rbd target needs POOL/IMAGE");
		return -EINVAL;
	}
	*(*image)++ = 0;
	*snap = strchr(*image, '@');
	if (*snap)
		*(*snap)++ = 0;
	return 0;
}

static int set_conf(struct rbd_tgt *t, const char *k, const char *val,
		    char *why, size_t len)
{
	int rc = rados_conf_set(t->cluster, k, val);

	if (rc < 0)
		snprintf(why, len, "rbd option %.60s=%.100s: %s", k, val,
			 strerror(-rc));
	return rc;
}

/* The one owner of the image's exclusive lock, or "" (none, or several) */
static void lock_owner(struct rbd_tgt *t, char *out, size_t len)
{
	char *owners[4];
	size_t n = 4;
	rbd_lock_mode_t mode;

	out[0] = 0;
	if (rbd_lock_get_owners(t->img, &mode, owners, &n) < 0)
		return;
	if (n == 1 && mode == RBD_LOCK_MODE_EXCLUSIVE)
		snprintf(out, len, "%s", owners[0]);
	rbd_lock_get_owners_cleanup(owners, n);
}

/*
 * This host's lock file for the image of this cluster (@key: its name):
 * -EBUSY if another writer of this host holds it. A file that cannot be
 * made costs only the takeover (the cluster's lock still fences).
 */
static int host_lock(const struct blk_open_env *e, struct rbd_tgt *t,
		     const char *pool, const char *image, char *key,
		     size_t klen, struct vbd *v)
{
	char fsid[64] = "", why[sizeof(v->why)];
	int rc;

	if (rados_cluster_fsid(t->cluster, fsid, sizeof(fsid)) < 0)
		fsid[0] = 0;
	snprintf(key, klen, "rbd:%s/%s/%s", fsid, pool, image);
	rc = remote_lock_take(&t->hostlock, e->lock_dir, key, why, sizeof(why));
	if (rc == -EBUSY) {	/* as the cluster's lock would say */
		snprintf(v->why, sizeof(v->why),
			 "rbd image %.100s/%.100s: its exclusive lock is held by another client (a writer on this host: %.200s held): not writing",
			 pool, image, t->hostlock.path);
		return rc;
	}
	if (rc)
		log_warn("%s: %s: no crash takeover for it", e->path, why);
	return 0;
}

/* Our client's addresses contain @owner (an address with its nonce) */
static bool owner_is_us(struct rbd_tgt *t, const char *owner)
{
	char *addrs = NULL, *p;
	size_t n = strlen(owner);
	bool us = false;

	if (!n || !strchr(owner, '/') ||
	    rados_getaddrs(t->cluster, &addrs) < 0 || !addrs)
		return false;
	/* one whole address of the list ("[v2:IP:PORT/NONCE,v1:...]") */
	for (p = strstr(addrs, owner); p && !us; p = strstr(p + 1, owner))
		us = (p == addrs || strchr("[,:", p[-1])) &&
		     (p[n] == 0 || strchr("],", p[n]));
	rados_buffer_free(addrs);
	return us;
}

/* Does breaking a lock blocklist its holder? Without that, what a dead
 * client's sockets still carry could land after our writes. */
static bool break_fences(struct rbd_tgt *t)
{
	char val[16];

	return rados_conf_get(t->cluster, "rbd_blocklist_on_break_lock", val,
			      sizeof(val)) == 0 && !strcmp(val, "true");
}

/* The image's lock held by the client our last holder of the file noted:
 * that process is gone (we hold the file), its lock is broken */
static void take_over(const struct blk_open_env *e, struct rbd_tgt *t,
		      const char *pool, const char *image)
{
	char owner[128];
	int rc;

	if (t->hostlock.fd < 0 || !t->hostlock.note[0])
		return;
	lock_owner(t, owner, sizeof(owner));
	if (!owner[0] || strcmp(owner, t->hostlock.note))
		return;
	if (!break_fences(t)) {
		log_warn("%s: rbd %s/%s: held by %s, this host's last writer of it, which is gone; not broken: rbd_blocklist_on_break_lock is off (waiting for the cluster to time it out)",
			 e->path, pool, image, owner);
		return;
	}
	rc = rbd_lock_break(t->img, RBD_LOCK_MODE_EXCLUSIVE, owner);
	log_info("%s: rbd %s/%s: its lock was held by %s, this host's last writer of it, which is gone: %s%s",
		 e->path, pool, image, owner, rc < 0 ? "breaking it failed: " : "broken",
		 rc < 0 ? strerror(-rc) : "");
}

/* Ours now: noted for this host's next writer (a restart after a crash);
 * only if the owner is this client (not one that took it meanwhile) */
static void note_owner(struct rbd_tgt *t, const char *key)
{
	char owner[128];

	if (t->hostlock.fd < 0)
		return;
	lock_owner(t, owner, sizeof(owner));
	remote_lock_note(&t->hostlock, key, owner_is_us(t, owner) ? owner : "");
}

static int rbd_topen(const struct blk_open_env *e, struct vbd *v)
{
	char spec[sizeof(v->params)], *pool, *image, *snap, *opts;
	char *conf = NULL, *id = NULL, *kv, *save = NULL, tmo[16];
	struct rbd_tgt *t;
	rbd_image_info_t info;
	uint64_t size;
	int rc;

	snprintf(spec, sizeof(spec), "%s", v->params);
	rc = parse(spec, &pool, &image, &snap, &opts, v->why, sizeof(v->why));
	if (rc)
		return rc;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	v->tpriv = t;
	t->efd = -1;
	t->hostlock.fd = -1;
	t->timeout_ns = (uint64_t)e->remote_timeout_s * 1000000000u;
	/* conf= and id= first: they choose the configuration */
	for (kv = opts ? strtok_r(opts, ":", &save) : NULL; kv;
	     kv = strtok_r(NULL, ":", &save)) {
		if (!strncmp(kv, "conf=", 5))
			conf = kv + 5;
		else if (!strncmp(kv, "id=", 3))
			id = kv + 3;
	}
	rc = rados_create(&t->cluster, id);
	if (rc < 0) {
		snprintf(v->why, sizeof(v->why), "rados_create: %s", strerror(-rc));
		return rc;
	}
	/* conf=PATH, else the default search ($CEPH_CONF, /etc/ceph) */
	rc = rados_conf_read_file(t->cluster, conf);
	if (rc < 0 && conf) {
		snprintf(v->why, sizeof(v->why), "ceph configuration %.300s: %s",
			 conf, strerror(-rc));
		goto fail;
	}
	rados_conf_parse_env(t->cluster, NULL);
	/* bounded: the cluster's own timeouts are ours */
	snprintf(tmo, sizeof(tmo), "%u", e->remote_timeout_s);
	rc = set_conf(t, "rados_osd_op_timeout", tmo, v->why, sizeof(v->why));
	if (!rc)
		rc = set_conf(t, "rados_mon_op_timeout", tmo, v->why,
			      sizeof(v->why));
	if (!rc)
		rc = set_conf(t, "client_mount_timeout", tmo, v->why,
			      sizeof(v->why));
	/* aio calls queue to librbd's thread: the worker never waits */
	if (!rc)
		rc = set_conf(t, "rbd_non_blocking_aio", "true", v->why,
			      sizeof(v->why));
	/* librbd copies a write's data before rbd_aio_write(v) returns:
	 * writes may come straight from mapped guest pages, which the guest
	 * may reuse once a timed-out write is answered (.no_map_reads) */
	if (!rc)
		rc = set_conf(t, "rbd_disable_zero_copy_writes", "true", v->why,
			      sizeof(v->why));
	/* no write-back cache by default: a write is answered when the
	 * cluster has it (and an unreachable cluster shows as errors, not
	 * as a cache filling up); :rbd_cache=true asks for it, as in QEMU */
	if (!rc)
		rc = set_conf(t, "rbd_cache", "false", v->why, sizeof(v->why));
	if (rc)
		goto fail;
	/* the other KEY=VALUE options, as QEMU passes them */
	if (opts) {
		char *o = opts;
		size_t n = strlen(v->params);

		/* strtok_r cut the string: walk the pieces by hand */
		while (o < spec + n && *o) {
			char *eq = strchr(o, '=');
			size_t l = strlen(o);

			if (!eq) {
				snprintf(v->why, sizeof(v->why),
					 "rbd option '%.100s' is not KEY=VALUE", o);
				rc = -EINVAL;
				goto fail;
			}
			if (!strncmp(o, "rbd_disable_zero_copy_writes=", 29) &&
			    strcmp(eq + 1, "true")) {
				snprintf(v->why, sizeof(v->why),
					 "rbd option '%.100s' is not supported: writes come from the guest's pages, which librbd must copy",
					 o);
				rc = -EINVAL;
				goto fail;
			}
			if (strncmp(o, "conf=", 5) && strncmp(o, "id=", 3)) {
				*eq = 0;
				rc = set_conf(t, o, eq + 1, v->why, sizeof(v->why));
				*eq = '=';
				if (rc < 0)
					goto fail;
			}
			o += l + 1;
		}
	}
	rc = rados_connect(t->cluster);
	if (rc < 0) {
		snprintf(v->why, sizeof(v->why), "cannot reach the Ceph cluster: %s",
			 strerror(-rc));
		goto fail;
	}
	t->connected = true;
	rc = rados_ioctx_create(t->cluster, pool, &t->io);
	if (rc < 0) {
		snprintf(v->why, sizeof(v->why), "rbd pool '%.100s': %s", pool,
			 strerror(-rc));
		goto fail;
	}
	t->have_io = true;
	if (snap)
		v->readonly = true;	/* a snapshot cannot be written */
	if (v->readonly)
		rc = rbd_open_read_only(t->io, image, &t->img, snap);
	else
		rc = rbd_open(t->io, image, &t->img, NULL);
	if (rc < 0) {
		snprintf(v->why, sizeof(v->why), "rbd image %.100s/%.100s%s%.60s: %s",
			 pool, image, snap ? "@" : "", snap ? snap : "",
			 strerror(-rc));
		t->img = NULL;
		goto fail;
	}
	if (!v->readonly) {
		char key[sizeof(v->params) + 80];

		rc = host_lock(e, t, pool, image, key, sizeof(key), v);
		if (rc)
			goto fail;
		take_over(e, t, pool, image);
		/* fencing: one writer; librbd will not hand it over on request */
		rc = rbd_lock_acquire(t->img, RBD_LOCK_MODE_EXCLUSIVE);
		if (rc < 0) {
			snprintf(v->why, sizeof(v->why),
				 "rbd image %.100s/%.100s: its exclusive lock is held by another client (%s): not writing",
				 pool, image, strerror(-rc));
			rc = rc == -EROFS || rc == -EBUSY ? -EBUSY : rc;
			goto fail;
		}
		t->locked = true;
		note_owner(t, key);
	}
	rc = rbd_get_size(t->img, &size);
	if (rc == 0)
		rc = rbd_stat(t->img, &info, sizeof(info));
	if (rc < 0) {
		snprintf(v->why, sizeof(v->why), "rbd image size: %s",
			 strerror(-rc));
		goto fail;
	}
	t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->efd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = rbd_set_image_notification(t->img, t->efd, EVENT_TYPE_EVENTFD);
	if (rc < 0) {
		snprintf(v->why, sizeof(v->why), "rbd_set_image_notification: %s",
			 strerror(-rc));
		goto fail;
	}
	v->size_bytes = size;
	v->logical = 512;
	v->physical = 4096;
	v->feat_flush = true;
	v->feat_barrier = false;	/* blkfront uses flush */
	v->feat_discard = !v->readonly;
	/* librbd discards whole objects' worth at once, zeroes partial ones;
	 * a granularity below the object keeps the guest's trims useful */
	v->discard_granularity = info.obj_size >= 65536 ? 65536 : 4096;
	log_info("%s: rbd %s/%s%s%s: %llu bytes, objects of %llu bytes%s",
		 e->path, pool, image, snap ? "@" : "", snap ? snap : "",
		 (unsigned long long)size, (unsigned long long)info.obj_size,
		 t->locked ? ", exclusive lock held" : "");
	return 0;
fail:
	/* rbd_tclose() releases what was taken */
	return rc < 0 ? rc : -EIO;
}

static int rbd_tsize(struct vbd *v, uint64_t *bytes)
{
	struct rbd_tgt *t = T(v);

	if (!t || !t->img)
		return -ENODEV;
	return rbd_get_size(t->img, bytes);
}

static void rbd_tclose(struct vbd *v)
{
	struct rbd_tgt *t = T(v);

	if (!t)
		return;
	if (t->img) {
		if (t->locked)
			rbd_lock_release(t->img);
		rbd_close(t->img);
	}
	remote_lock_drop(&t->hostlock);	/* after the image's lock */
	if (t->have_io)
		rados_ioctx_destroy(t->io);
	if (t->cluster)
		rados_shutdown(t->cluster);
	if (t->efd >= 0)
		close(t->efd);
	free(t->started_ns);
	free(t->flat);
	free(t);
	v->tpriv = NULL;
}

/* ---- worker ------------------------------------------------------------------------ */

static void arm(struct rbd_tgt *t)
{
	struct io_uring_sqe *sqe;

	if (t->armed || t->stopping)
		return;
	sqe = worker_sqe(t->q->dq.w);
	io_uring_prep_poll_add(sqe, t->efd, POLLIN);
	dp_sqe_own(&t->q->dq, sqe, &t->tag);
	t->armed = true;
	t->cancel_sent = false;
}

static void rbd_queue_start(struct blk_queue *q)
{
	struct rbd_tgt *t = T(q->vbd);

	t->q = q;
	q->tq = t;
	t->stopping = false;
	t->tag = (struct dp_tag){ .q = &q->dq, .ptr = t, .kind = BLK_TAG_TARGET };
	free(t->started_ns);
	t->nr_slots = q->nr_reqs;
	t->started_ns = calloc(q->nr_reqs, sizeof(*t->started_ns));
	if (!t->started_ns) {
		dp_queue_halt(&q->dq, -ENOMEM, "no memory for the RBD queue");
		return;
	}
	arm(t);
}

/*
 * A write of several pieces (a guest's pages mapped apart, or bounce
 * pages out of order) as one buffer. librbd copies a write before
 * rbd_aio_write returns (rbd_disable_zero_copy_writes), so one buffer
 * serves every write.
 * Handed the pieces (rbd_aio_writev), librbd built a bufferlist of as
 * many pieces and spent 4x fio's CPU per 128 KiB write on the message's
 * CRC32C and 5x on malloc (docs/benchmarks.md): this copy costs less.
 */
static int rbd_twrite(struct rbd_tgt *t, struct blk_req *r, uint64_t off,
		      rbd_completion_t c)
{
	if (remote_contiguous(r->iov, r->nseg))
		return rbd_aio_write(t->img, off, r->bytes, r->iov[0].iov_base,
				     c);
	if (t->flat_cap < r->bytes) {
		char *b = aligned_alloc(4096, (r->bytes + 4095) & ~(size_t)4095);

		if (!b)	/* the pieces then, as before */
			return rbd_aio_writev(t->img, r->iov, r->nseg, off, c);
		free(t->flat);
		t->flat = b;
		t->flat_cap = r->bytes;
	}
	return rbd_aio_write(t->img, off, remote_gather(t->flat, r->iov, r->nseg),
			     t->flat, c);
}

static void rbd_tsubmit(struct blk_queue *q, struct blk_req *r)
{
	struct rbd_tgt *t = q->tq;
	rbd_completion_t c;
	uint64_t off = r->sector * 512u;
	int rc;

	r->pending++;
	rc = rbd_aio_create_completion(r, NULL, &c);
	if (rc < 0) {
		blk_req_done(q, r, rc);
		return;
	}
	switch (r->kind) {
	case BK_READ:
		rc = rbd_aio_readv(t->img, r->iov, r->nseg, off, c);
		break;
	case BK_WRITE:
		rc = rbd_twrite(t, r, off, c);
		break;
	case BK_FLUSH:
		rc = rbd_aio_flush(t->img, c);
		break;
	case BK_DISCARD:
		rc = rbd_aio_discard(t->img, off, r->bytes, c);
		break;
	default:
		rc = -EOPNOTSUPP;
		break;
	}
	if (rc < 0) {	/* not queued: no completion comes */
		rbd_aio_release(c);
		blk_req_done(q, r, rc);
		return;
	}
	t->started_ns[r - q->reqs] = pvio_now_ns();
	t->inflight++;
	/* its timeout is looked for even if no pass comes before the
	 * worker sleeps */
	if (!q->dq.timer_ns)
		q->dq.timer_ns = t->started_ns[r - q->reqs] + RBD_SCAN_NS;
}

/* Everything librbd has finished: answer it. */
static void reap_rbd(struct rbd_tgt *t)
{
	rbd_completion_t done[RBD_POLL_BATCH];
	uint64_t v;
	int n, i;

	if (read(t->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	do {
		n = rbd_poll_io_events(t->img, done, RBD_POLL_BATCH);
		for (i = 0; i < n; i++) {
			struct blk_req *r = rbd_aio_get_arg(done[i]);
			ssize_t res = rbd_aio_get_return_value(done[i]);

			rbd_aio_release(done[i]);
			t->inflight--;
			t->started_ns[r - t->q->reqs] = 0;
			/* reads and writes return their length, others 0 */
			blk_req_done(t->q, r, res < 0 ? (int)res :
				     (r->kind == BK_READ || r->kind == BK_WRITE) ?
				     (int)r->bytes : 0);
		}
	} while (n == RBD_POLL_BATCH);
}

static void rbd_tevent(struct blk_queue *q, struct dp_tag *tag, int res)
{
	struct rbd_tgt *t = q->tq;

	t->armed = false;
	if (res >= 0 || res == -ECANCELED)
		reap_rbd(t);
	arm(t);
}

/*
 * librbd's own timeouts (rados_osd_op_timeout) fail an I/O the cluster
 * does not answer; an I/O stuck before it reaches the cluster (librbd
 * waiting for its lock or a monitor) has no timeout there. Either way the
 * guest gets its error after --remote-timeout: the request is answered
 * now and keeps its buffers until librbd lets go of them. Looked at ten
 * times a second while anything is in flight.
 */
static void rbd_tpoll(struct blk_queue *q)
{
	struct rbd_tgt *t = q->tq;
	uint64_t now;
	uint32_t i, n = 0;

	if (!t || !t->started_ns)
		return;
	if (!t->inflight) {
		q->dq.timer_ns = 0;
		return;
	}
	now = pvio_now_ns();
	/* the next look stays booked between scans: a pass that found the
	 * queue empty cleared it, and I/O taken since must still time out
	 * (a worker sleeps with no timer otherwise, and librbd may hold an
	 * I/O forever) */
	if (now < t->next_scan_ns) {
		q->dq.timer_ns = t->next_scan_ns;
		return;
	}
	t->next_scan_ns = now + RBD_SCAN_NS;
	q->dq.timer_ns = t->next_scan_ns;
	for (i = 0; i < t->nr_slots; i++)
		if (t->started_ns[i] && now - t->started_ns[i] >= t->timeout_ns &&
		    !q->reqs[i].answered) {
			blk_req_answer_now(q, &q->reqs[i]);
			n++;
		}
	if (n && now - t->warned_ns >= 10000000000ull) {
		log_warn("%s: %s: %u I/O(s) not done by the cluster within %llu s: answered with errors",
			 q->dq.dev->path, q->vbd->params, n,
			 (unsigned long long)(t->timeout_ns / 1000000000u));
		t->warned_ns = now;
	}
}

static void rbd_tquiesce(struct blk_queue *q)
{
	struct rbd_tgt *t = q->tq;
	struct io_uring_sqe *sqe;

	if (!t || q->inflight || t->inflight)
		return;
	t->stopping = true;
	if (!t->armed || t->cancel_sent)
		return;
	sqe = worker_sqe(q->dq.w);
	io_uring_prep_poll_remove(sqe, (uint64_t)(uintptr_t)&t->tag);
	io_uring_sqe_set_data(sqe, NULL);	/* its own CQE: ignored */
	t->cancel_sent = true;
}

static bool rbd_tbusy(const struct blk_queue *q)
{
	const struct rbd_tgt *t = q->tq;

	return t && (t->armed || t->inflight);
}

const struct blk_target_ops blk_target_rbd = {
	.kind = "rbd",
	.open = rbd_topen,
	.size = rbd_tsize,
	.close = rbd_tclose,
	.queue_start = rbd_queue_start,
	.submit = rbd_tsubmit,
	.event = rbd_tevent,
	.poll = rbd_tpoll,
	.quiesce = rbd_tquiesce,
	.busy = rbd_tbusy,
	/* one eventfd per image, polled by one worker */
	.max_queues = 1,
	.no_spin = true,
	/* a read answered early (blk_req_answer_now) must not land in a
	 * guest page later: librbd reads into bounce pages. Writes come
	 * from the guest's mapped pages: librbd copies a write's data
	 * before rbd_aio_write(v) returns (rbd_disable_zero_copy_writes,
	 * held true in rbd_topen) */
	.no_map_reads = true,
};
