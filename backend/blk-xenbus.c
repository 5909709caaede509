// SPDX-License-Identifier: MIT
/*
 * The vbd control path: open the target, advertise features (before
 * InitWait: blk-mq frontends read some of them early), negotiate rings and
 * queues with range checks, start one dataplane queue per frontend queue,
 * announce the disk, follow online resize.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "blk.h"

static struct vbd *VBD(struct device *d)
{
	return d->priv;
}

static int target_size(int fd, bool blockdev, uint64_t *size)
{
	struct stat st;

	if (blockdev)
		return ioctl(fd, BLKGETSIZE64, size) < 0 ? -errno : 0;
	if (fstat(fd, &st) < 0)
		return -errno;
	*size = (uint64_t)st.st_size;
	return 0;
}

static int open_target(struct device *d, struct vbd *v, bool want_direct)
{
	int flags = (v->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct stat st;
	int rc;

	v->fd_buffered = open(v->params, flags);
	if (v->fd_buffered < 0)
		return -errno;
	if (fstat(v->fd_buffered, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -EINVAL;
	v->is_blockdev = S_ISBLK(st.st_mode);
	v->logical = 512;
	v->physical = v->is_blockdev ? 512 : 4096;
	if (v->is_blockdev) {
		int ss = 0;
		unsigned int pbs = 0;

		if (ioctl(v->fd_buffered, BLKSSZGET, &ss) == 0 && ss >= 512)
			v->logical = (unsigned int)ss;
		if (ioctl(v->fd_buffered, BLKPBSZGET, &pbs) == 0 &&
		    pbs >= v->logical)
			v->physical = pbs;
	}
	rc = target_size(v->fd_buffered, v->is_blockdev, &v->size_bytes);
	if (rc)
		return rc;
	/* whole logical blocks only */
	v->size_bytes -= v->size_bytes % v->logical;
	v->fd_direct = -1;
	if (want_direct) {
		v->fd_direct = open(v->params, flags | O_DIRECT);
		if (v->fd_direct < 0)
			log_info("%s: %s refuses O_DIRECT (%s): buffered I/O",
				 d->path, v->params, strerror(errno));
	}
	return 0;
}

static int vbd_probe(struct device *d)
{
	struct backd *bd = d->bd;
	struct vbd *v = calloc(1, sizeof(*v));
	char *s = NULL;
	unsigned long safe;
	int rc;

	if (!v)
		return -ENOMEM;
	v->fd_direct = v->fd_buffered = -1;
	d->priv = v;
	rc = device_read_str(d, "params", &s);
	if (rc < 0) {
		log_warn("%s: no params: %s", d->path, strerror(-rc));
		return rc;
	}
	/* libxl's qdisk writes "format:path"; only raw is served here */
	if (strncmp(s, "raw:", 4) == 0)
		memmove(s, s + 4, strlen(s + 4) + 1);
	if (s[0] != '/' || strlen(s) >= sizeof(v->params)) {
		log_warn("%s: params '%s' is not an absolute path", d->path, s);
		free(s);
		return -EINVAL;
	}
	snprintf(v->params, sizeof(v->params), "%s", s);
	free(s);
	rc = device_read_str(d, "mode", &s);
	if (rc >= 0) {
		v->readonly = s[0] != 'w';
		free(s);
	}
	device_read_uint(d, "direct-io-safe", 0, 1, 1, false, &safe);
	rc = open_target(d, v, !bd->o.buffered && safe);
	if (rc) {
		log_warn("%s: cannot open %s: %s", d->path, v->params,
			 strerror(-rc));
		return rc;
	}
	v->feat_flush = true;
	v->feat_barrier = true;
	v->feat_discard = !v->readonly;
	v->discard_granularity = v->is_blockdev ? v->physical : 4096;
	v->max_indirect = bd->o.max_indirect;
	/* features before InitWait */
	rc = device_write(d, "feature-flush-cache", "1");
	if (!rc)
		rc = device_write(d, "feature-barrier", "1");
	if (!rc)
		rc = device_write(d, "feature-discard", v->feat_discard ? "1" : "0");
	if (!rc && v->feat_discard) {
		rc = device_write(d, "discard-granularity", "%u",
				  v->discard_granularity);
		if (!rc)
			rc = device_write(d, "discard-alignment", "0");
		if (!rc)
			rc = device_write(d, "discard-secure", "0");
	}
	if (!rc)
		rc = device_write(d, "feature-persistent", "1");
	if (!rc)
		rc = device_write(d, "feature-max-indirect-segments", "%u",
				  v->max_indirect);
	if (!rc)
		rc = device_write(d, "max-ring-page-order", "%u",
				  bd->o.max_ring_order);
	if (!rc)
		rc = device_write(d, "multi-queue-max-queues", "%u",
				  bd->o.max_queues);
	if (rc)
		return rc;
	log_info("%s: %s, %llu bytes, %s%s, sector %u/%u", d->path, v->params,
		 (unsigned long long)v->size_bytes, v->readonly ? "read-only" : "read-write",
		 v->fd_direct >= 0 ? ", O_DIRECT" : ", buffered", v->logical,
		 v->physical);
	return 0;
}

/* One queue's ring: the device dir, or its queue-N directory. */
static int connect_queue(struct device *d, struct vbd *v, unsigned int i,
			 unsigned int nr_queues)
{
	const char *fe = pvio_xenbus_otherend(d->xb);
	char dir[PVIO_XS_PATH_MAX + 16];
	pvio_gref_t refs[PVIO_RING_MAX_PAGES];
	struct blk_queue *q;
	pvio_port_t port;
	int n, rc;

	if (nr_queues > 1)
		snprintf(dir, sizeof(dir), "%s/queue-%u", fe, i);
	else
		snprintf(dir, sizeof(dir), "%s", fe);
	n = pvio_xb_read_ring(d->bd->xs, dir, fe, d->bd->o.max_ring_order,
			      refs, NULL, &port);
	if (n < 0) {
		pvio_xenbus_fatal(d->xb, n, "reading ring of queue %u from %s: %s",
				  i, dir, strerror(-n));
		return n;
	}
	rc = blk_queue_create(d, v, backd_pick_worker(d->bd), i, refs,
			      (unsigned int)n, port, v->persistent, d->reattach,
			      &q);
	if (rc) {
		pvio_xenbus_fatal(d->xb, rc,
				  "mapping ring (%d pages, port %u) of queue %u: %s",
				  n, port, i, strerror(-rc));
		return rc;
	}
	d->queues[i] = &q->dq;
	d->nr_queues = i + 1;
	return 0;
}

static int vbd_connect(struct device *d)
{
	struct vbd *v = VBD(d);
	const char *fe = pvio_xenbus_otherend(d->xb);
	unsigned int nq, i;
	pvio_xs_tx_t tx;
	int rc;

	rc = pvio_xb_read_protocol(d->bd->xs, fe);
	if (rc < 0)
		return pvio_xenbus_fatal(d->xb, rc, "unsupported protocol");
	rc = pvio_xb_read_queues(d->bd->xs, fe, d->bd->o.max_queues, &nq);
	if (rc)
		return pvio_xenbus_fatal(d->xb, rc,
					 "bad multi-queue-num-queues (max %u)",
					 d->bd->o.max_queues);
	/* persistent grants mapped: when asked for, and the frontend reuses
	 * its grants (feature-persistent) */
	{
		char key[PVIO_XS_PATH_MAX + 32];
		bool fp = false;

		snprintf(key, sizeof(key), "%s/feature-persistent", fe);
		if (pvio_xs_read_bool(d->bd->xs, 0, key, false, &fp))
			fp = false;
		v->persistent = d->bd->o.grant_map && fp;
	}
	d->queues = calloc(nq, sizeof(*d->queues));
	if (!d->queues)
		return pvio_xenbus_fatal(d->xb, -ENOMEM, "no memory");
	d->nr_queues = 0;
	for (i = 0; i < nq; i++) {
		rc = connect_queue(d, v, i, nq);
		if (rc) {
			device_stop_queues(d);
			return rc;
		}
	}
	/* the disk, announced in one transaction */
	do {
		rc = pvio_xs_tx_start(d->bd->xs, &tx);
		if (rc)
			break;
		{
			char key[PVIO_XS_PATH_MAX + 32];

			snprintf(key, sizeof(key), "%s/sectors", d->path);
			rc = pvio_xs_printf(d->bd->xs, tx, key, "%llu",
					    (unsigned long long)(v->size_bytes / 512u));
			snprintf(key, sizeof(key), "%s/info", d->path);
			if (!rc)
				rc = pvio_xs_printf(d->bd->xs, tx, key, "%u",
						    v->readonly ? VDISK_READONLY : 0u);
			snprintf(key, sizeof(key), "%s/sector-size", d->path);
			if (!rc)
				rc = pvio_xs_printf(d->bd->xs, tx, key, "%u",
						    v->logical);
			snprintf(key, sizeof(key), "%s/physical-sector-size",
				 d->path);
			if (!rc)
				rc = pvio_xs_printf(d->bd->xs, tx, key, "%u",
						    v->physical);
		}
		if (rc) {
			pvio_xs_tx_end(d->bd->xs, tx, true);
			break;
		}
		rc = pvio_xs_tx_end(d->bd->xs, tx, false);
	} while (rc == -EAGAIN);
	if (rc) {
		device_stop_queues(d);
		return pvio_xenbus_fatal(d->xb, rc, "writing disk properties");
	}
	for (i = 0; i < d->nr_queues; i++)
		worker_start_queue(d->queues[i]->w, d->queues[i]);
	log_info("%s: connected, %u queue%s, %u-page ring%s, grants %s", d->path,
		 d->nr_queues, d->nr_queues > 1 ? "s" : "",
		 BQ(d->queues[0])->ring_pages, d->nr_queues > 1 ? "s" : "",
		 v->persistent ? "mapped (persistent)" : "copied");
	return 0;
}

static void vbd_disconnect(struct device *d)
{
	device_stop_queues(d);
}

static void vbd_destroy(struct device *d)
{
	struct vbd *v = VBD(d);

	if (!v)
		return;
	if (v->fd_direct >= 0)
		close(v->fd_direct);
	if (v->fd_buffered >= 0)
		close(v->fd_buffered);
	free(v);
	d->priv = NULL;
}

/* Once a second: a bigger target is announced; failed features go. */
static void vbd_tick(struct device *d)
{
	struct vbd *v = VBD(d);
	uint64_t size;
	unsigned int i;

	if (!v || v->fd_buffered < 0)
		return;
	if (__atomic_exchange_n(&v->flush_unsupported, 0, __ATOMIC_RELAXED) &&
	    v->feat_flush) {
		char key[PVIO_XS_PATH_MAX + 32];

		log_warn("%s: flush not supported by %s: withdrawing the feature",
			 d->path, v->params);
		v->feat_flush = v->feat_barrier = false;
		snprintf(key, sizeof(key), "%s/feature-flush-cache", d->path);
		pvio_xs_rm(d->bd->xs, 0, key);
		snprintf(key, sizeof(key), "%s/feature-barrier", d->path);
		pvio_xs_rm(d->bd->xs, 0, key);
	}
	if (__atomic_exchange_n(&v->discard_unsupported, 0, __ATOMIC_RELAXED) &&
	    v->feat_discard) {
		log_warn("%s: discard not supported by %s: withdrawing it",
			 d->path, v->params);
		v->feat_discard = false;
		device_write(d, "feature-discard", "0");
	}
	if (target_size(v->fd_buffered, v->is_blockdev, &size) || !d->connected)
		return;
	size -= size % v->logical;
	if (size <= v->size_bytes)
		return;	/* shrinking under a guest is not followed */
	log_info("%s: %s grew to %llu bytes: telling the frontend", d->path,
		 v->params, (unsigned long long)size);
	v->size_bytes = size;
	for (i = 0; i < d->nr_queues; i++)
		blk_queue_resize(BQ(d->queues[i]), size / 512u);
	/* as Linux blkback: new sectors, then state rewritten to fire the
	 * frontend's watch */
	device_write(d, "sectors", "%llu", (unsigned long long)(size / 512u));
	pvio_xenbus_touch(d->xb);
}

static void vbd_describe(struct device *d, struct json_object *o)
{
	struct vbd *v = VBD(d);

	if (!v) {
		json_object_object_add(o, "target", NULL);
		return;
	}
	json_add_name(o, "target", v->params);
	json_object_object_add(o, "size_bytes",
			       json_object_new_uint64(v->size_bytes));
	json_object_object_add(o, "read_only",
			       json_object_new_boolean(v->readonly));
	json_object_object_add(o, "o_direct",
			       json_object_new_boolean(v->fd_direct >= 0));
	json_object_object_add(o, "sector_size",
			       json_object_new_uint64(v->logical));
}

const struct device_ops vbd_ops = {
	.kind = "vbd",
	.probe = vbd_probe,
	.connect = vbd_connect,
	.disconnect = vbd_disconnect,
	.destroy = vbd_destroy,
	.tick = vbd_tick,
	.describe = vbd_describe,
};
