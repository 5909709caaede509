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
#include <stddef.h>
#include <sys/sysmacros.h>
#include <linux/fs.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
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

/* The domain's VM (its /local/domain/D/vm node): "" if none. */
static void dom_vm(struct device *d, unsigned int dom, char *out, size_t len)
{
	char key[64], *s = NULL;

	out[0] = 0;
	snprintf(key, sizeof(key), "/local/domain/%u/vm", dom);
	if (pvio_xs_read(d->bd->xs, 0, key, &s) >= 0) {
		snprintf(out, len, "%s", s);
		free(s);
	}
}

/*
 * A device of ours on the same file, of another domain of the same VM:
 * xl migrate localhost (and a restore beside the saved domain's
 * remains) runs the old and the new domain side by side for a moment,
 * as the stock block script's sharing check allows.
 */
static struct device *same_vm_holder(struct device *d, struct vbd *v)
{
	char mine[128], theirs[128];
	struct device *o;

	dom_vm(d, d->fe, mine, sizeof(mine));
	if (!mine[0])
		return NULL;
	for (o = d->bd->devices; o; o = o->next) {
		struct vbd *ov = o->ops == d->ops ? o->priv : NULL;

		/* the inodes their opens found: no fstat of another
		 * device's file here (its server may hang); an open that
		 * waits for the lock (fds kept) holds nothing to share */
		if (o == d || !ov || !ov->opened || ov->fd_buffered < 0 ||
		    o->fe == d->fe ||
		    ov->st_dev != v->st_dev || ov->st_ino != v->st_ino)
			continue;
		dom_vm(d, o->fe, theirs, sizeof(theirs));
		if (strcmp(mine, theirs) == 0)
			return o;
	}
	return NULL;
}

/*
 * Image exclusivity, as QEMU's image locking: an open file description
 * lock (F_OFD_SETLK) on the whole target, exclusive for read-write use,
 * shared for read-only. OFD locks conflict between any two opens, also
 * two devices of this process, and go with the last fd of the open. The
 * open's job tries it (file_open_run()); a conflict is decided here, on
 * the main thread, which knows the other devices and our own closes.
 */
#define LOCK_WAIT_NS	(10ull * 1000000000u)
/* an absent remote target tried again (vbd_revive()): after this, then
 * at doubling intervals up to the second */
#define REVIVE_FIRST_NS	(1ull * 1000000000u)
#define REVIVE_MAX_NS	(10ull * 1000000000u)

static bool closing_file(dev_t dev, ino_t ino);

/*
 * The file's lock is ours until a close still to come: a close job that
 * runs (closing_file(): its file system may block), or a device of ours
 * removed while its queues still drain (I/O in flight on a target that
 * does not answer), which closes the file once the drain ends.
 */
static bool close_to_come(struct backd *bd, dev_t dev, ino_t ino)
{
	const struct device *o;

	if (closing_file(dev, ino))
		return true;
	for (o = bd->dying; o; o = o->next) {
		const struct vbd *ov = o->ops == &vbd_ops ? o->priv : NULL;

		if (ov && ov->fd_buffered >= 0 && ov->st_dev == dev &&
		    ov->st_ino == ino)
			return true;
	}
	return false;
}

/* Files of ours closed (file_released()): main thread only */
static unsigned long file_closes_done;

/*
 * The lock is held by another open (of type @held, F_UNLCK: unknown):
 * 0, ours to share; -EAGAIN, try again later; or the device fails.
 * @raced: a close of ours ended while the open's job ran, maybe the one
 * whose lock it met (the job tries the lock; the main thread sees the
 * close end only later).
 */
static int lock_decide(struct device *d, struct vbd *v, short held,
		       bool raced)
{
	struct device *o;

	o = same_vm_holder(d, v);
	if (o) {
		log_info("%s: %s is also domain %u's, of the same VM (migration): shared",
			 d->path, v->params, o->fe);
		return 0;
	}
	/* A pvio-backd killed with I/O in flight: its io_uring lets go of
	 * the files (and their locks) only when that I/O completes. When
	 * re-attaching (the device is Connected: we served it before a
	 * restart), wait a little for the lock (tried again on the next
	 * change or tick) before calling the target someone else's. A new
	 * device is refused at once. */
	if (raced || close_to_come(d->bd, v->st_dev, v->st_ino)) {
		/* our own close of it still runs (close_off(): its file
		 * system may block), or comes once a removed device's queues
		 * drained; the lock goes with it: a detach and attach of the
		 * same image, a re-created device */
		if (v->lock_deadline_ns <= 1)
			v->lock_deadline_ns = pvio_now_ns() + LOCK_WAIT_NS;
	} else if (pvio_xenbus_state(d->xb) != PVIO_XB_CONNECTED) {
		v->lock_deadline_ns = 1;	/* no wait */
	} else if (!v->lock_deadline_ns) {
		v->lock_deadline_ns = pvio_now_ns() + LOCK_WAIT_NS;
	}
	if (pvio_now_ns() < v->lock_deadline_ns)
		return -EAGAIN;
	snprintf(v->why, sizeof(v->why),
		 "%.400s is in use (%s lock held by another device or program): %s use refused",
		 v->params, held == F_RDLCK ? "a read-only" : "a read-write",
		 v->readonly ? "read-only" : "read-write");
	return -EBUSY;
}

/*
 * May a submission to this target block the worker that submits it? A
 * worker serves many guests: one that sleeps in a submission (FUSE with a
 * full background queue, NFS, a network block device) stalls them all.
 * The rule: a file on ext2/3/4, xfs, btrfs or tmpfs, or a block device
 * that is a disk or a partition (SCSI/SATA/NVMe, virtio, xen, device
 * mapper, md, mmc) is submitted inline: io_uring's non-blocking attempt
 * either completes it or punts it to io-wq itself. Anything else (FUSE,
 * NFS, CIFS, 9p, overlay, the kernel's /dev/nbdN and /dev/rbdN, loop
 * devices whose backing file may be anywhere, unknown majors) goes to
 * io-wq at once with IOSQE_ASYNC: the worker never waits on it. @why gets
 * the reason for the log. Only file targets (target-file.c) are
 * submitted through io_uring: the remote ones (nbd:, rbd:) have their
 * own asynchronous clients and never block a worker.
 */
static bool target_may_block(int fd, const struct stat *st, char *why,
			     size_t len)
{
	static const struct { unsigned long magic; const char *name; } local_fs[] = {
		{ 0xEF53, "ext4" }, { 0x58465342, "xfs" },
		{ 0x9123683E, "btrfs" }, { 0x01021994, "tmpfs" },
	};
	/* disks: sd, ide, md, mmc, dm (dynamic: 252-254), nvme and
	 * virtio-blk (dynamic: 259 blkext, 250-253), xvd */
	static const unsigned int local_major[] = {
		3, 8, 9, 22, 65, 66, 67, 68, 69, 70, 71, 128, 129, 130, 131, 132,
		133, 134, 135, 179, 202, 250, 251, 252, 253, 254, 259,
	};
	struct statfs sf;
	unsigned int i, maj;

	if (S_ISBLK(st->st_mode)) {
		maj = major(st->st_rdev);
		for (i = 0; i < sizeof(local_major) / sizeof(local_major[0]); i++)
			if (maj == local_major[i]) {
				snprintf(why, len, "local block device (major %u)", maj);
				return false;
			}
		snprintf(why, len, "block device of major %u (not known to be local)",
			 maj);
		return true;
	}
	if (fstatfs(fd, &sf) < 0) {
		snprintf(why, len, "statfs failed");
		return true;
	}
	for (i = 0; i < sizeof(local_fs) / sizeof(local_fs[0]); i++)
		if ((unsigned long)sf.f_type == local_fs[i].magic) {
			snprintf(why, len, "file on %s", local_fs[i].name);
			return false;
		}
	snprintf(why, len, "file system 0x%lx (not known to be local)",
		 (unsigned long)sf.f_type);
	return true;
}

/* What the target decides (discard), written once it is open. */
static int target_features(struct device *d, struct vbd *v)
{
	int rc;

	rc = device_write(d, "feature-discard", v->feat_discard ? "1" : "0");
	if (!rc && v->feat_discard) {
		rc = device_write(d, "discard-granularity", "%u",
				  v->discard_granularity);
		if (!rc)
			rc = device_write(d, "discard-alignment", "0");
		if (!rc)
			rc = device_write(d, "discard-secure", "0");
	}
	return rc;
}


/*
 * A remote target (target.h: NBD, RBD) opens itself, on a thread of its
 * own (ctlwork.c): a connect, a handshake, a cluster's monitors or an
 * exclusive lock wait on one peer, up to --remote-timeout, and the main
 * thread serves every other device meanwhile. The device is "opening"
 * (device_probe_done() goes on); the open works on a copy of the vbd,
 * handed over on the main thread when it is done. A device removed
 * while it opens cancels the job: what the open took is released by the
 * thread that took it.
 *
 * Its close waits on the same peer (librbd gives back the exclusive lock,
 * closes the image's watch, shuts its cluster session down): a close
 * job, on a thread of its own too, with the vbd's target handed over
 * (close_off()). The rule that keeps a re-attach from meeting our own
 * old handle: opens and closes are keyed by the target's params
 * (ctlwork.c), so an open of an image whose previous holder still closes
 * starts once that close is done.
 */
struct open_job {
	struct ctl_job j;
	struct device *d;		/* main thread only (done) */
	struct blk_open_env env;
	char path[PVIO_XS_PATH_MAX];
	int rc;
	/* a file's (file_open_start()) */
	bool probing;			/* the probe's: device_opened() goes on */
	bool busy;			/* the lock is held by another open */
	short held;			/* ... of this type (F_OFD_GETLK) */
	unsigned long closes_seen;	/* file_closes_done at its start */
	unsigned int test_busy_ms;	/* PVIO_TEST_LOCK_BUSY_MS */
	int direct_err;			/* O_DIRECT refused: errno */
	struct vbd v;			/* the open's own */
};

static void open_run(struct ctl_job *j)
{
	struct open_job *o = (struct open_job *)j;

	o->rc = o->v.tops->open(&o->env, &o->v);
	if (o->rc && !o->v.why[0])
		snprintf(o->v.why, sizeof(o->v.why), "cannot open %.400s: %s",
			 o->v.params, strerror(-o->rc));
}

static void open_drop(struct ctl_job *j)
{
	struct open_job *o = (struct open_job *)j;

	if (o->v.tops->close)
		o->v.tops->close(&o->v);
	free(o);
}

static int vbd_offer(struct device *d, struct vbd *v);

/* What an opened target offers (device_opened(): may run more than once) */
static int opened_offer(struct device *d)
{
	struct vbd *v = VBD(d);
	int rc = target_features(d, v);

	if (rc)
		return rc;
	v->opened = true;
	return vbd_offer(d, v);
}

static bool remote_held(const struct vbd *v);
static void close_off(struct device *d, struct vbd *v);

/* A property the guest was given, read back: @dflt if unreadable */
static unsigned long given(struct device *d, const char *key, unsigned long min,
			   unsigned long max, unsigned long dflt)
{
	unsigned long v;

	return device_read_uint(d, key, min, max, dflt, false, &v) ? dflt : v;
}

/*
 * The target cannot be opened (@v->why says why): a new device fails
 * (its error node, Closing). A restarted pvio-backd's device under a
 * guest still connected serves without its target instead
 * (target-absent.c): the guest's requests in flight, those the last
 * process left and every later one, are answered with an I/O error. A
 * Closing would leave them unanswered for ever (docs/protocol.md rule
 * 11). 0: it does; what the target's device properties were comes back
 * from our directory, as the guest saw them.
 */
/* An open failure worth a later try (vbd_revive()): not another writer
 * (the operator gave the target to another VM), not read-only now */
static bool revive_worth(int rc)
{
	return rc != -EBUSY && rc != -EROFS;
}

static int vbd_open_failed(struct device *d, struct vbd *v, int rc)
{
	char err[sizeof(v->why) + 64];

	if (!device_reattaching(d)) {
		log_warn("%s: %s", d->path, v->why);
		return pvio_xenbus_fatal(d->xb, rc, "%s", v->why);
	}
	log_warn("%s: %s: re-attached without it, every request answered with an I/O error",
		 d->path, v->why);
	if (remote_held(v))	/* what the failed open took (its lock) */
		close_off(d, v);
	/* a server or cluster may come back: tried again (vbd_revive()) */
	v->revive_tops = revive_worth(rc) && v->tops && v->tops->open ?
			 v->tops : NULL;
	v->revive_tries = 0;
	v->revive_at_ns = pvio_now_ns() + REVIVE_FIRST_NS;
	if (v->revive_tops)
		log_info("%s: %s (%s) tried again after %llu s, then up to every %llu s",
			 d->path, v->params, v->tops->kind,
			 REVIVE_FIRST_NS / 1000000000u, REVIVE_MAX_NS / 1000000000u);
	v->tops = &blk_target_absent;
	v->tpriv = NULL;
	v->logical = (unsigned int)given(d, "sector-size", 512, 4096, 512);
	if (v->logical & (v->logical - 1))
		v->logical = 512;
	v->physical = (unsigned int)given(d, "physical-sector-size", v->logical,
					  1u << 20, v->logical);
	v->size_bytes = (uint64_t)given(d, "sectors", 0, UINT64_MAX / 512u, 0) * 512u;
	v->size_bytes -= v->size_bytes % v->logical;
	v->feat_flush = given(d, "feature-flush-cache", 0, 1, 0);
	v->feat_barrier = given(d, "feature-barrier", 0, 1, 0);
	v->feat_discard = given(d, "feature-discard", 0, 1, 0);
	v->discard_granularity = (unsigned int)given(d, "discard-granularity",
						     512, 1u << 30, 4096);
	snprintf(err, sizeof(err), "%d %s: every request answered with an I/O error",
		 -rc, v->why);
	pvio_xenbus_write(d->xb, "error", err);
	return 0;
}

/* Main thread: the open's result is the device's now. */
static void open_done(struct ctl_job *j)
{
	struct open_job *o = (struct open_job *)j;
	struct device *d = o->d;
	struct vbd *v = VBD(d);
	int rc = o->rc;

	v->open_job = NULL;
	/* what open() fills (target.h) */
	v->tpriv = o->v.tpriv;
	v->readonly = o->v.readonly;
	v->size_bytes = o->v.size_bytes;
	v->logical = o->v.logical;
	v->physical = o->v.physical;
	v->feat_flush = o->v.feat_flush;
	v->feat_barrier = o->v.feat_barrier;
	v->feat_discard = o->v.feat_discard;
	v->discard_granularity = o->v.discard_granularity;
	memcpy(v->why, o->v.why, sizeof(v->why));
	free(o);
	if (rc) {
		rc = vbd_open_failed(d, v, rc);
		if (rc)
			device_probe_done(d, rc);
		else
			device_opened(d, opened_offer);
		return;
	}
	/* whole logical blocks only */
	v->size_bytes -= v->size_bytes % v->logical;
	v->feat_discard = v->feat_discard && v->discard_enable;
	log_info("%s: %s (%s), %llu bytes, %s, sector %u/%u%s", d->path,
		 v->params, v->tops->kind, (unsigned long long)v->size_bytes,
		 v->readonly ? "read-only" : "read-write", v->logical,
		 v->physical, v->feat_discard ? "" : ", no discard");
	device_opened(d, opened_offer);
}

/*
 * A remote target absent since a restart (its server or cluster was
 * unreachable) is tried again while its guest is connected, on a thread
 * as every open: after 1 s, then at doubling intervals up to
 * REVIVE_MAX_NS. When it opens as the guest knew it (at least its size,
 * its sector size, read-only or not, its queues), every queue switches
 * to it (blk_queue_retarget()): the requests from then on are served, as
 * after a reconnection at run time. A target that comes back different
 * is not served (another disk under a running guest): logged once, still
 * tried. One that has another writer now (the operator gave it to
 * another VM) or became read-only is not tried again: the guest's disk
 * must never be taken back from under the new holder (revive_worth()).
 */
static unsigned int max_queues(const struct vbd *v, const struct backd *bd);

static bool revive_fits(struct device *d, struct vbd *v, const struct vbd *n,
			char *why, size_t len)
{
	if (n->size_bytes < v->size_bytes)	/* bigger: announced later */
		snprintf(why, len, "%llu bytes, the guest's disk has %llu",
			 (unsigned long long)n->size_bytes,
			 (unsigned long long)v->size_bytes);
	else if (n->logical != v->logical)
		snprintf(why, len, "sector size %u, the guest's disk has %u",
			 n->logical, v->logical);
	else if (n->readonly != v->readonly)
		snprintf(why, len, "%s, the guest's disk is %s",
			 n->readonly ? "read-only" : "writable",
			 v->readonly ? "read-only" : "writable");
	else if (d->nr_queues > n->tops->max_queues)
		snprintf(why, len, "the guest has %u queues, %s serves %u",
			 d->nr_queues, n->tops->kind, n->tops->max_queues);
	else
		return true;
	return false;
}

static void withdraw_flush(struct device *d, struct vbd *v);
static void withdraw_discard(struct device *d, struct vbd *v);

/* A try that is not kept: what its open took is released */
static void revive_drop(struct device *d, struct open_job *o)
{
	if (remote_held(&o->v))
		close_off(d, &o->v);
	free(o);
}

static void revive_done(struct ctl_job *j)
{
	struct open_job *o = (struct open_job *)j;
	struct device *d = o->d;
	struct vbd *v = VBD(d);
	char why[160], key[PVIO_XS_PATH_MAX + 16];
	unsigned int i;
	uint64_t wait;

	v->open_job = NULL;
	if (!o->rc && (!v->revive_tops || !d->xb || !d->queues)) {
		/* going, or its guest gone, meanwhile */
		revive_drop(d, o);
		return;
	}
	if (o->rc && !revive_worth(o->rc)) {
		log_warn("%s: %s: not tried again", d->path, o->v.why);
		v->revive_tops = NULL;
		revive_drop(d, o);
		return;
	}
	if (o->rc || !revive_fits(d, v, &o->v, why, sizeof(why))) {
		if (o->rc)
			log_debug("%s: %s", d->path, o->v.why);
		else if (!v->revive_mismatch)
			log_warn("%s: %s is back but not as the guest's disk was (%s): still answering I/O errors",
				 d->path, v->params, why);
		v->revive_mismatch = !o->rc;
		revive_drop(d, o);
		wait = REVIVE_FIRST_NS << (v->revive_tries < 8 ? v->revive_tries : 8);
		v->revive_tries++;
		v->revive_at_ns = pvio_now_ns() +
				  (wait < REVIVE_MAX_NS ? wait : REVIVE_MAX_NS);
		return;
	}
	/* the target's state before the queues see it (release: the
	 * worker's acquire of q->retarget) */
	v->tpriv = o->v.tpriv;
	v->tops = o->v.tops;
	v->revive_tops = NULL;
	v->why[0] = 0;
	log_info("%s: %s (%s) is back after %u tries: serving it again",
		 d->path, v->params, v->tops->kind, v->revive_tries + 1);
	/* what it cannot do any more goes from the guest's features before
	 * a request reaches it (a bigger size is announced at the tick) */
	if (v->feat_flush && !o->v.feat_flush)
		withdraw_flush(d, v);
	if (v->feat_discard && !o->v.feat_discard)
		withdraw_discard(d, v);
	free(o);
	for (i = 0; i < d->nr_queues; i++)
		if (d->queues[i])
			blk_queue_retarget(BQ(d->queues[i]));
	snprintf(key, sizeof(key), "%s/error", d->path);
	pvio_xs_rm(d->bd->xs, 0, key);
	device_write(d, "multi-queue-max-queues", "%u", max_queues(v, d->bd));
}

/* A remote target's open job on a copy of @v, not started (NULL: no
 * memory); @done takes its result on the main thread */
static struct open_job *remote_job(struct device *d, const struct vbd *v,
				   void (*done)(struct ctl_job *))
{
	struct open_job *o = malloc(sizeof(*o));

	if (!o)
		return NULL;
	memset(o, 0, offsetof(struct open_job, v));
	o->j.run = open_run;
	o->j.done = done;
	o->j.drop = open_drop;
	o->d = d;
	snprintf(o->path, sizeof(o->path), "%s", d->path);
	o->env.path = o->path;
	o->env.remote_timeout_s = d->bd->o.remote_timeout_s;
	o->env.lock_dir = d->bd->o.lock_dir;
	o->v = *v;
	o->j.key = o->v.params;
	return o;
}

/* Once a second, for a disk served without its target (vbd_tick()) */
static void vbd_revive(struct device *d, struct vbd *v)
{
	struct open_job *o;

	if (!v->revive_tops || v->open_job || !d->xb || d->failed ||
	    !d->queues || pvio_now_ns() < v->revive_at_ns)
		return;
	o = remote_job(d, v, revive_done);
	if (!o)
		return;		/* the next tick */
	o->v.tops = v->revive_tops;
	o->v.tpriv = NULL;
	o->v.why[0] = 0;
	if (ctl_job_start(d->bd, &o->j, false)) {
		free(o);
		return;
	}
	v->open_job = o;
	log_debug("%s: trying %s (%s) again", d->path, v->params,
		  v->revive_tops->kind);
}

/* -EINPROGRESS: open_done() finishes the probe. */
static int remote_open(struct device *d, struct vbd *v)
{
	struct open_job *o;
	int rc;

	if (!v->tops) {	/* parse_params() said why */
		if (!v->why[0])
			snprintf(v->why, sizeof(v->why), "cannot open %.400s: %s",
				 v->params, strerror(EPROTONOSUPPORT));
		rc = vbd_open_failed(d, v, -EPROTONOSUPPORT);
		return rc ? rc : opened_offer(d);
	}
	o = remote_job(d, v, open_done);
	if (!o)
		return pvio_xenbus_fatal(d->xb, -ENOMEM, "no memory");
	rc = ctl_job_start(d->bd, &o->j, false);
	if (rc) {
		free(o);
		return pvio_xenbus_fatal(d->xb, rc, "cannot start opening %s: %s",
					 v->params, strerror(-rc));
	}
	v->open_job = o;
	log_info("%s: opening %s (%s), up to %u s", d->path, v->params,
		 v->tops->kind, d->bd->o.remote_timeout_s);
	return -EINPROGRESS;
}


/*
 * A file target's open (an image file, a block device, a hotplug
 * script's device) is a job too: open(2), fstat, the lock and the size
 * each wait on the file system's server on NFS or FUSE, and a server gone
 * would hold the main thread, every other guest's control path with it,
 * and a restarted pvio-backd's re-attach of every device after that one.
 * The job works on a copy of the vbd, the device's kept fds handed to it
 * and back; a lock conflict is decided on the main thread
 * (lock_decide()). Keyed by the path: two opens of one file run one
 * after the other, so the second sees the first's device holding it
 * (same_vm_holder()), and an open cancelled with its device (its close
 * of the file, the lock with it, on the job's thread) is over before the
 * path's next open starts. An open not back after --stall-timeout is
 * logged (vbd_tick()).
 */
static int file_open_blocking(struct open_job *o)
{
	struct vbd *v = &o->v;
	int flags = (v->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	struct flock fl = {
		.l_type = v->readonly ? F_RDLCK : F_WRLCK,
		.l_whence = SEEK_SET,
	};
	struct stat st;
	int rc;

	/* kept from a try that met a lock (lock_decide()) */
	if (v->fd_buffered < 0) {
		v->fd_buffered = open(v->params, flags);
		if (v->fd_buffered < 0)
			return -errno;
	}
	if (fstat(v->fd_buffered, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return -EINVAL;
	v->st_dev = st.st_dev;
	v->st_ino = st.st_ino;
	v->is_blockdev = S_ISBLK(st.st_mode);
	v->sqe_flags = target_may_block(v->fd_buffered, &st, v->io_why,
					sizeof(v->io_why)) ? IOSQE_ASYNC : 0;
	if (fcntl(v->fd_buffered, F_OFD_SETLK, &fl) < 0) {
		if (errno != EAGAIN && errno != EACCES)
			return -errno;
		/* the rest goes on: shared (a migration) or waited for,
		 * the main thread decides */
		o->busy = true;
		fl.l_type = F_WRLCK;
		fl.l_pid = 0;
		o->held = fcntl(v->fd_buffered, F_OFD_GETLK, &fl) < 0 ?
			  F_UNLCK : fl.l_type;
		/* a test's slow file system: the rest of the open takes this
		 * long once the lock was met (a close may end meanwhile) */
		if (o->test_busy_ms)
			poll(NULL, 0, (int)o->test_busy_ms);
	}
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
	if (v->want_direct && v->fd_direct < 0) {
		v->fd_direct = open(v->params, flags | O_DIRECT);
		if (v->fd_direct < 0)
			o->direct_err = errno;
	}
	return 0;
}

/* A file target's fds closed, on the calling thread (NFS writes back,
 * FUSE asks its server: at every close(2)) */
static void vbd_close_fds(struct vbd *v)
{
	if (v->fd_direct >= 0)
		close(v->fd_direct);
	if (v->fd_buffered >= 0)
		close(v->fd_buffered);
	v->fd_direct = v->fd_buffered = -1;
}

static void file_open_run(struct ctl_job *j)
{
	struct open_job *o = (struct open_job *)j;

	o->rc = file_open_blocking(o);
	if (o->rc)
		vbd_close_fds(&o->v);
}

static void close_off(struct device *d, struct vbd *v);
static bool file_may_block(const struct vbd *v);

/*
 * Cancelled with its device: on the job's thread (what it opened closed
 * before its key's next open starts), or on the main thread if it had
 * just finished, its device still there: then a file that may block is
 * closed by a close job, on closing_files (an open of it meanwhile waits
 * for that close's lock).
 */
static void file_open_drop(struct ctl_job *j)
{
	struct open_job *o = (struct open_job *)j;

	if (o->v.fd_buffered >= 0 && j->dropped_here && file_may_block(&o->v))
		close_off(o->d, &o->v);	/* its fds are the close's now */
	if (o->v.fd_buffered >= 0) {	/* or here, if no thread took them */
		vbd_close_fds(&o->v);
		log_info("%s: %s closed (its device went while it opened)",
			 o->path, o->v.params);
	}
	free(o);
}

/* The fds of an open that failed its device: closed off the main thread
 * if its file system may block */
static void file_release(struct device *d, struct vbd *v)
{
	if (file_may_block(v))
		close_off(d, v);	/* its fds are the close's now */
	vbd_close_fds(v);		/* or here, if no thread took them */
}

/* The open's result: 0 (open, locked or shared), -EAGAIN (the lock: the
 * fds kept, tried again later) or the device fails. */
static int file_opened(struct device *d, struct vbd *v, int rc)
{
	if (rc == -EAGAIN) {
		if (!v->lock_wait)
			log_info("%s: %s is locked: waiting up to %llu s for it", d->path,
				 v->params, LOCK_WAIT_NS / 1000000000u);
		v->lock_wait = true;
		return rc;
	}
	v->lock_wait = false;
	if (rc) {
		if (!v->why[0])	/* else lock_decide()'s */
			snprintf(v->why, sizeof(v->why), "cannot open %.400s: %s",
				 v->params, strerror(-rc));
		file_release(d, v);
		return vbd_open_failed(d, v, rc);
	}
	v->feat_discard = !v->readonly && v->discard_enable;
	v->discard_granularity = v->is_blockdev ? v->physical : 4096;
	log_info("%s: %s, %llu bytes, %s%s, sector %u/%u%s, %s: %s", d->path,
		 v->params, (unsigned long long)v->size_bytes,
		 v->readonly ? "read-only" : "read-write",
		 v->fd_direct >= 0 ? ", O_DIRECT" : ", buffered", v->logical,
		 v->physical, v->feat_discard ? "" : ", no discard", v->io_why,
		 v->sqe_flags ? "submitted through io-wq" : "submitted inline");
	return 0;
}

/* The probe's offer while the lock is waited for: the target's own
 * features come with the open (vbd_open_again()) */
static int waiting_offer(struct device *d)
{
	return vbd_offer(d, VBD(d));
}

static void vbd_open_again(struct device *d);

/* Main thread: what the open found is the device's now. */
static void file_open_done(struct ctl_job *j)
{
	struct open_job *o = (struct open_job *)j;
	struct device *d = o->d;
	struct vbd *v = VBD(d);
	bool probing = o->probing;
	bool raced = o->busy && o->closes_seen != file_closes_done;
	int rc = o->rc;

	v->open_job = NULL;
	d->open_pending = false;
	if (v->open_slow)
		log_info("%s: %s answers again (its open took %llu s)", d->path,
			 v->params, (unsigned long long)((pvio_now_ns() -
							  v->open_since_ns) / 1000000000u));
	v->open_slow = false;
	v->fd_buffered = o->v.fd_buffered;
	v->fd_direct = o->v.fd_direct;
	v->st_dev = o->v.st_dev;
	v->st_ino = o->v.st_ino;
	v->is_blockdev = o->v.is_blockdev;
	v->sqe_flags = o->v.sqe_flags;
	memcpy(v->io_why, o->v.io_why, sizeof(v->io_why));
	v->logical = o->v.logical;
	v->physical = o->v.physical;
	v->size_bytes = o->v.size_bytes;
	if (!rc && o->direct_err)
		log_info("%s: %s refuses O_DIRECT (%s): buffered I/O", d->path,
			 v->params, strerror(o->direct_err));
	v->why[0] = 0;
	if (!rc && o->busy)
		rc = lock_decide(d, v, o->held, raced);
	free(o);
	rc = file_opened(d, v, rc);
	if (probing) {
		if (rc && rc != -EAGAIN)
			device_probe_done(d, rc);
		else
			device_opened(d, rc ? waiting_offer : opened_offer);
		/* the close it may have met is over: at once */
		if (rc == -EAGAIN && raced && !d->recreated)
			vbd_open_again(d);
		return;
	}
	if (rc == -EAGAIN) {
		if (raced)
			vbd_open_again(d);
		return;
	}
	if (!rc)
		rc = target_features(d, v);
	if (rc) {
		d->failed = true;
		d->setup_failed = true;
		return;
	}
	v->opened = true;
	device_recheck(d);	/* a frontend that waited connects now */
}

/*
 * -EINPROGRESS: file_open_done() goes on (@probing: the probe's, which
 * then finishes through device_opened()).
 */
static int file_open_start(struct device *d, struct vbd *v, bool probing)
{
	struct open_job *o = malloc(sizeof(*o));
	int rc;

	if (!o)
		return pvio_xenbus_fatal(d->xb, -ENOMEM, "no memory");
	memset(o, 0, offsetof(struct open_job, v));
	o->j.run = file_open_run;
	o->j.done = file_open_done;
	o->j.drop = file_open_drop;
	o->d = d;
	o->probing = probing;
	o->closes_seen = file_closes_done;
	{
		const char *t = getenv("PVIO_TEST_LOCK_BUSY_MS");

		o->test_busy_ms = t ? (unsigned int)strtoul(t, NULL, 10) : 0;
	}
	snprintf(o->path, sizeof(o->path), "%s", d->path);
	o->v = *v;
	o->j.key = o->v.params;
	rc = ctl_job_start(d->bd, &o->j, false);
	if (rc) {
		free(o);
		return pvio_xenbus_fatal(d->xb, rc, "cannot start opening %s: %s",
					 v->params, strerror(-rc));
	}
	v->fd_buffered = v->fd_direct = -1;	/* the job's now */
	v->open_job = o;
	v->open_since_ns = pvio_now_ns();
	if (!probing) {		/* READY=1 waits for it (a restart's) */
		d->open_pending = true;
		d->opening_ns = v->open_since_ns;
	}
	return -EINPROGRESS;
}

/* A step of @d's in flight since @since_ns: true once, when it has been
 * for longer than --stall-timeout (the caller logs it; *@slow says so) */
static bool stalled_once(struct device *d, uint64_t since_ns, bool *slow)
{
	uint64_t limit = (uint64_t)d->bd->o.stall_s * 1000000000u;

	if (!limit || *slow || pvio_since_ns(pvio_now_ns(), since_ns) <= limit)
		return false;
	*slow = true;
	return true;
}

/* An open not back after --stall-timeout: its file system hangs */
static void file_open_stalled(struct device *d, struct vbd *v)
{
	if (!v->open_job || v->tops != &blk_target_file ||
	    !stalled_once(d, v->open_since_ns, &v->open_slow))
		return;
	log_warn("%s: %s does not answer: its open waiting for %u s (its file system hangs); the other devices go on",
		 d->path, v->params, d->bd->o.stall_s);
}

static void vbd_hotplug_check(struct device *d);

/* Open the target (again: its lock was held; a hotplug script's device);
 * a waiting frontend connects once it is open (file_open_done()). */
static void vbd_open_again(struct device *d)
{
	struct vbd *v = VBD(d);

	if (v->open_job)
		return;
	/* our own close of it still runs, or a removed device of ours
	 * still drains with it: no try until it is closed (or the wait is
	 * over), its lock would only be met again */
	if (v->fd_buffered >= 0 && pvio_now_ns() < v->lock_deadline_ns &&
	    close_to_come(d->bd, v->st_dev, v->st_ino))
		return;
	if (file_open_start(d, v, false) != -EINPROGRESS) {
		d->failed = true;
		d->setup_failed = true;
	}
}

static void vbd_changed(struct device *d)
{
	struct vbd *v = VBD(d);

	if (!v || v->opened || d->failed)
		return;
	if (v->hotplug)
		vbd_hotplug_check(d);
	else if (v->lock_wait)
		vbd_open_again(d);
}

/*
 * The device a hotplug script made: "major:minor" in hex, as blkback reads
 * physical-device. Opened through /dev/block/M:m (udev), else the name
 * the kernel gives it in /sys/dev/block/M:m/uevent.
 */
static int physical_device_path(struct device *d, const char *pd, char *out,
				size_t len)
{
	unsigned int maj, min;
	char p[64], line[256], *name = NULL;
	struct stat st;
	FILE *f;
	int n = 0;

	if (sscanf(pd, "%x:%x%n", &maj, &min, &n) != 2 || pd[n])
		return -EINVAL;
	snprintf(out, len, "/dev/block/%u:%u", maj, min);
	if (stat(out, &st) == 0 && S_ISBLK(st.st_mode) &&
	    st.st_rdev == makedev(maj, min))
		return 0;
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/uevent", maj, min);
	f = fopen(p, "re");
	if (!f)
		return -ENODEV;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "DEVNAME=", 8) == 0) {
			line[strcspn(line, "\n")] = 0;
			name = line + 8;
			break;
		}
	fclose(f);
	if (!name || strstr(name, ".."))
		return -ENODEV;
	snprintf(out, len, "/dev/%s", name);
	if (stat(out, &st) || !S_ISBLK(st.st_mode) ||
	    st.st_rdev != makedev(maj, min))
		return -ENODEV;
	return 0;
}

/*
 * The hotplug protocol (a backend node with "script"): the toolstack runs
 * the script once we are in InitWait; it writes physical-device and
 * hotplug-status=connected, or hotplug-error. Called on every change
 * under the backend directory and once a second.
 */
static void vbd_hotplug_check(struct device *d)
{
	struct vbd *v = VBD(d);
	char *s = NULL, *pd = NULL, path[sizeof(v->params)];
	int rc;

	if (!v || !v->hotplug || v->opened || d->failed)
		return;
	if (device_hotplug_error(d, v->script))
		return;
	if (device_read_str(d, "hotplug-status", &s) < 0 ||
	    strcmp(s, "connected") ||
	    device_read_str(d, "physical-device", &pd) < 0) {
		free(s);
		if (pvio_now_ns() - v->hotplug_since_ns >
		    (uint64_t)d->bd->o.hotplug_timeout_s * 1000000000u)
			device_setup_fail(d, -ETIMEDOUT,
				"hotplug script %s did not answer in %u s "
				"(no physical-device and hotplug-status=connected)",
				v->script, d->bd->o.hotplug_timeout_s);
		return;
	}
	free(s);
	rc = physical_device_path(d, pd, path, sizeof(path));
	if (rc) {
		snprintf(v->why, sizeof(v->why),
			 "physical-device '%.100s' (major:minor, hex): %s", pd,
			 strerror(-rc));
		free(pd);
		if (!device_reattaching(d)) {
			device_setup_fail(d, rc, "%s", v->why);
			return;
		}
		/* the script's device went while we were down (a volume
		 * removed): as any target that cannot be opened again */
		vbd_open_failed(d, v, rc);
		v->hotplug = false;
		v->opened = true;
		device_recheck(d);
		return;
	}
	log_info("%s: hotplug script %s: physical-device %s is %s", d->path,
		 v->script, pd, path);
	free(pd);
	snprintf(v->params, sizeof(v->params), "%s", path);
	v->hotplug = false;	/* answered: from now on, as without a script */
	vbd_open_again(d);
}

/* The target in params: "raw:" (libxl's qdisk) before a remote one is
 * dropped ("raw:/PATH" is a file's, parse_params() takes it) */
static char *target_spec(char *s)
{
	return !strncmp(s, "raw:", 4) && s[4] != '/' ? s + 4 : s;
}

/* params naming a remote target (nbd:, rbd:, also one this build lacks) */
static bool is_remote(char *s)
{
	const char *missing;

	return blk_target_find(target_spec(s), &missing) != &blk_target_file;
}

/* "raw:PATH" (libxl's qdisk) and "aio:PATH" (its tap, vbd3) are raw */
static int parse_params(struct device *d, struct vbd *v, char *s)
{
	char *colon = s[0] != '/' ? strchr(s, ':') : NULL;
	const char *missing;

	s = target_spec(s);
	v->tops = blk_target_find(s, &missing);
	if (v->tops != &blk_target_file) {
		if (strlen(s) >= sizeof(v->params))
			return pvio_xenbus_fatal(d->xb, -EINVAL, "params: too long");
		snprintf(v->params, sizeof(v->params), "%s", s);
		if (!v->tops)
			snprintf(v->why, sizeof(v->why),
				 "%s targets are not supported by this build of pvio-backd",
				 missing);
		return 0;
	}
	if (colon) {
		*colon = 0;
		if (strcmp(s, "raw") && strcmp(s, "aio"))
			return pvio_xenbus_fatal(d->xb, -EOPNOTSUPP,
				"params: format '%s' not supported (raw only)", s);
		s = colon + 1;
	}
	if (s[0] != '/' || strlen(s) >= sizeof(v->params))
		return pvio_xenbus_fatal(d->xb, -EINVAL,
			"params: not an absolute path");
	snprintf(v->params, sizeof(v->params), "%s", s);
	return 0;
}

/* Queues per device: the daemon's limit, and the target's. */
static unsigned int max_queues(const struct vbd *v, const struct backd *bd)
{
	/* absent: what the target it waits for serves (vbd_revive()) */
	const struct blk_target_ops *t = v->revive_tops ? v->revive_tops : v->tops;

	return t && t->max_queues < bd->o.max_queues ? t->max_queues
						      : bd->o.max_queues;
}

/*
 * pvio-iops-limit and pvio-bytes-limit (per second, absent or 0: none),
 * written by the toolstack into our directory, at any time. A bad value
 * is reported and leaves the limit as it was.
 */
static void vbd_limits(struct device *d, const char *key)
{
	static const char *const keys[2] = { "pvio-iops-limit", "pvio-bytes-limit" };
	struct vbd *v = VBD(d);
	unsigned int i;

	if (!v)
		return;
	for (i = 0; i < 2; i++) {
		uint64_t *lim = i ? &v->bytes_limit : &v->iops_limit;
		unsigned long val;
		int rc;

		if (key && strcmp(key, keys[i]))
			continue;
		rc = device_read_uint(d, keys[i], 0, UINT64_MAX >> 1, 0, false, &val);
		if (rc) {
			log_warn("%s: bad %s: %s (limit unchanged)", d->path, keys[i],
				 strerror(-rc));
			continue;
		}
		if (val == __atomic_load_n(lim, __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(lim, (uint64_t)val, __ATOMIC_RELAXED);
		if (val)
			log_info("%s: %s %lu/s", d->path, i ? "bytes limited to" :
				 "requests limited to", val);
		else
			log_info("%s: no %s limit", d->path, i ? "bytes" : "requests");
	}
}

static int vbd_probe(struct device *d)
{
	struct backd *bd = d->bd;
	struct vbd *v = calloc(1, sizeof(*v));
	unsigned long safe, discard;
	char *s = NULL;
	int rc;

	if (!v)
		return -ENOMEM;
	v->fd_direct = v->fd_buffered = -1;
	v->tops = &blk_target_file;
	d->priv = v;
	if (device_read_str(d, "script", &s) >= 0) {
		v->hotplug = s[0] != 0;
		snprintf(v->script, sizeof(v->script), "%s", s);
		free(s);
	}
	rc = device_read_str(d, "params", &s);
	if (rc < 0 && !v->hotplug)
		return pvio_xenbus_fatal(d->xb, rc, "no params: %s", strerror(-rc));
	if (rc >= 0 && v->hotplug && is_remote(s)) {
		/* xl writes a URI unchanged only with backendtype=phy, which
		 * always has a script (docs/deploy-xen.md): it has no device
		 * to make, the target is ours to open, and we answer for it
		 * (hotplug-status below, as a vif without a script) */
		log_info("%s: %s: opened here, hotplug script %s not waited for",
			 d->path, s, v->script);
		v->hotplug = false;
		v->plugged = true;
	}
	if (rc >= 0) {
		rc = v->hotplug ? 0 : parse_params(d, v, s);
		if (v->hotplug)	/* the script's business: shown, not opened */
			snprintf(v->params, sizeof(v->params), "%s", s);
		free(s);
		if (rc)
			return rc;
	}
	/* access: libxl writes "w" or "r" ("w!", shared writing, is refused:
	 * the image lock is exclusive) */
	if (device_read_str(d, "mode", &s) >= 0) {
		if (strcmp(s, "r") && strcmp(s, "w")) {
			rc = pvio_xenbus_fatal(d->xb, -EOPNOTSUPP,
				"mode '%s' not supported (r or w)", s);
			free(s);
			return rc;
		}
		v->readonly = s[0] == 'r';
		free(s);
	}
	/* xl-disk-configuration(5): direct-io-safe absent means the storage
	 * may not be safe for O_DIRECT (libxl's workaround: no O_DIRECT) */
	if (device_read_uint(d, "direct-io-safe", 0, 1, 0, false, &safe))
		return pvio_xenbus_fatal(d->xb, -EINVAL, "bad direct-io-safe (0 or 1)");
	v->want_direct = !bd->o.buffered && safe;
	if (!safe && !bd->o.buffered)
		log_info("%s: no direct-io-safe: buffered I/O (xl-disk-configuration(5))",
			 d->path);
	/* discard-enable (xl's discard/no-discard): absent means on */
	if (device_read_uint(d, "discard-enable", 0, 1, 1, false, &discard))
		return pvio_xenbus_fatal(d->xb, -EINVAL, "bad discard-enable (0 or 1)");
	v->discard_enable = discard;
	if (!v->hotplug && v->tops != &blk_target_file) {
		/* -EINPROGRESS: off the main thread, then vbd_offer() */
		return remote_open(d, v);
	} else if (!v->hotplug) {
		v->feat_flush = true;
		v->feat_barrier = true;
		/* -EINPROGRESS: off the main thread too, then vbd_offer() */
		return file_open_start(d, v, true);
	} else {
		v->hotplug_since_ns = pvio_now_ns();
		log_info("%s: hotplug script %s: waiting for physical-device", d->path,
			 v->script);
	}
	return vbd_offer(d, v);
}

/* The features the frontend reads, before InitWait. */
static int vbd_offer(struct device *d, struct vbd *v)
{
	struct backd *bd = d->bd;
	int rc;

	if (v->hotplug) {	/* a file or block device, the script's */
		v->feat_flush = true;
		v->feat_barrier = true;
	}
	v->max_indirect = bd->o.max_indirect;
	/* features before InitWait */
	rc = device_write(d, "feature-flush-cache", v->feat_flush ? "1" : "0");
	if (!rc && v->feat_barrier)
		rc = device_write(d, "feature-barrier", "1");
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
				  max_queues(v, bd));
	if (!rc && v->plugged)
		rc = device_write(d, "hotplug-status", "connected");
	if (rc)
		return rc;
	vbd_limits(d, NULL);
	/* a restarted pvio-backd finds the script's answer already there */
	if (v->hotplug)
		vbd_hotplug_check(d);
	return d->failed ? -EIO : 0;
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

	if (!v->opened) {
		/* the ops call device_recheck() once it is open */
		if (v->hotplug)
			log_info("%s: frontend waits for the hotplug script", d->path);
		else if (v->lock_wait)
			log_info("%s: frontend waits for the target's lock", d->path);
		else
			log_info("%s: frontend waits for the target's open", d->path);
		return -EAGAIN;
	}
	rc = pvio_xb_read_protocol(d->bd->xs, fe);
	if (rc < 0)
		return pvio_xenbus_fatal(d->xb, rc, "unsupported protocol");
	rc = pvio_xb_read_queues(d->bd->xs, fe, max_queues(v, d->bd), &nq);
	if (rc)
		return pvio_xenbus_fatal(d->xb, rc,
					 "bad multi-queue-num-queues (max %u)",
					 max_queues(v, d->bd));
	__atomic_store_n(&v->nr_queues, nq, __ATOMIC_RELAXED);
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

			/* not into a directory the toolstack removed */
			rc = pvio_xs_exists(d->bd->xs, tx, d->path) ? 0 : -ENOENT;
			snprintf(key, sizeof(key), "%s/sectors", d->path);
			if (!rc)
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
	dev_info(d, "%s: connected, %u queue%s, %u-page ring%s, grants %s",
		 d->path,
		 d->nr_queues, d->nr_queues > 1 ? "s" : "",
		 BQ(d->queues[0])->ring_pages, d->nr_queues > 1 ? "s" : "",
		 v->persistent ? "mapped (persistent)" : "copied");
	return 0;
}

static void vbd_disconnect(struct device *d)
{
	device_stop_queues(d);
}

/* Removed while it opened: the open's thread releases what it took (or
 * this thread, if it finished and was not reaped yet). */
static void look_cancel(struct device *d, struct vbd *v);

static void vbd_abort(struct device *d)
{
	struct vbd *v = VBD(d);

	if (v && v->open_job) {
		ctl_job_cancel(d->bd, &((struct open_job *)v->open_job)->j);
		v->open_job = NULL;
		d->open_pending = false;
	}
	if (v)
		look_cancel(d, v);
}

/* A remote target's close, or a may-block file's: off the main thread,
 * what it took released there; done() only says so. */
struct close_job {
	struct ctl_job j;
	struct backd *bd;
	char path[PVIO_XS_PATH_MAX];
	uint64_t t0;			/* pvio_now_ms() */
	struct close_job *next;		/* closing_files (a file's close) */
	bool file;
	struct vbd v;			/* the target handed over */
};

/* Files whose close (and with it their lock) is still running: main
 * thread only (close_off(), close_done() from ctlwork_reap()) */
static struct close_job *closing_files;

static bool closing_file(dev_t dev, ino_t ino)
{
	const struct close_job *c;

	for (c = closing_files; c; c = c->next)
		if (c->v.st_dev == dev && c->v.st_ino == ino)
			return true;
	return false;
}

static void close_run(struct ctl_job *j)
{
	struct close_job *c = (struct close_job *)j;

	if (c->v.tpriv)
		c->v.tops->close(&c->v);
	vbd_close_fds(&c->v);
}

/* A file of ours closed (its lock with it): an attach that waits for
 * that lock tries again now, not on the next tick */
static void file_released(struct backd *bd, dev_t dev, ino_t ino)
{
	struct device *d;

	file_closes_done++;	/* an open's job may have met its lock */
	if (bd->stopping || close_to_come(bd, dev, ino))
		return;
	for (d = bd->devices; d; d = d->next) {
		struct vbd *v = d->ops == &vbd_ops ? VBD(d) : NULL;

		if (v && v->lock_wait && !v->opened && !d->failed &&
		    v->fd_buffered >= 0 && v->st_dev == dev && v->st_ino == ino)
			vbd_open_again(d);
	}
}

/* after run(): on the main thread (ctlwork_reap(); a close job is never
 * cancelled, so never dropped on its own thread: closing_files is the
 * main thread's) */
static void close_done(struct ctl_job *j)
{
	struct close_job *c = (struct close_job *)j, **pp;
	struct backd *bd = c->bd;
	dev_t dev = c->v.st_dev;
	ino_t ino = c->v.st_ino;
	bool file = c->file;

	for (pp = &closing_files; c->file && *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	log_info("%s: %s closed (%llu ms)", c->path, c->v.params,
		 (unsigned long long)(pvio_now_ms() - c->t0));
	free(c);
	if (file)
		file_released(bd, dev, ino);
}

/* A remote target's handle is open: its close is a job (close_off) */
static bool remote_held(const struct vbd *v)
{
	return v->tops && v->tops->close && v->tpriv;
}

/* A file whose close may wait on its server (target_may_block): a job */
static bool file_may_block(const struct vbd *v)
{
	return !v->tpriv && v->sqe_flags &&
	       (v->fd_direct >= 0 || v->fd_buffered >= 0);
}

/* The target closed off the main thread (a remote one's after the jobs of
 * its key) */
static void close_off(struct device *d, struct vbd *v)
{
	struct close_job *c = malloc(sizeof(*c));
	int rc = -ENOMEM;

	if (c) {
		memset(&c->j, 0, sizeof(c->j));
		c->j.run = close_run;
		c->j.done = close_done;
		c->j.drop = close_done;	/* never cancelled */
		c->bd = d->bd;
		c->j.name = "pvio-close";
		snprintf(c->path, sizeof(c->path), "%s", d->path);
		c->t0 = pvio_now_ms();
		c->v = *v;
		/* a remote target's next open waits for this close; a
		 * file's close waits for nothing (its lock goes with it) */
		c->j.key = c->v.tpriv ? c->v.params : NULL;
		rc = v->close_hold ?
		     ctl_job_start_held(d->bd, &c->j, v->close_hold) :
		     ctl_job_start(d->bd, &c->j, false);
		v->close_hold = NULL;	/* consumed either way */
		if (!rc) {
			/* the job's now; a file's lock is held until it ran */
			c->file = !v->tpriv;
			if (c->file) {
				c->next = closing_files;
				closing_files = c;
			}
			v->tpriv = NULL;
			v->fd_direct = v->fd_buffered = -1;
			log_info("%s: closing %s (%s)", d->path, v->params,
				 v->tops ? v->tops->kind : "file");
			return;
		}
		free(c);
	}
	/* no thread for it: here, waiting on the peer if it must */
	log_warn("%s: cannot close %s off the main thread: %s", d->path,
		 v->params, strerror(-rc));
	if (v->tpriv)
		v->tops->close(v);
}

static void vbd_destroy(struct device *d)
{
	struct vbd *v = VBD(d);
	bool held;

	if (!v)
		return;
	vbd_abort(d);
	if (remote_held(v) || file_may_block(v))
		close_off(d, v);
	ctl_key_release(d->bd, v->close_hold);
	held = v->fd_buffered >= 0;	/* closed here, not by a job */
	vbd_close_fds(v);
	d->priv = NULL;
	if (held)
		file_released(d->bd, v->st_dev, v->st_ino);
	free(v);
}

/*
 * Removed while its queues drain (a remote target's in-flight I/O waits
 * on its peer): its close comes after the drain, and an open of the same
 * target started meanwhile (the image re-attached to another guest) must
 * wait for it, not meet our own handle's lock: the close's place in its
 * key's line is taken now.
 */
static void vbd_going(struct device *d)
{
	struct vbd *v = VBD(d);

	if (!v)
		return;
	if (remote_held(v) && !v->close_hold)
		v->close_hold = ctl_key_hold(d->bd, v->params);
	v->revive_tops = NULL;	/* an absent target stays so */
	look_cancel(d, v);	/* nothing more to report */
}

/* What a look at the target found: its links (files) and its size. */
struct target_look {
	int nlink_rc, size_rc;	/* 0, or -errno (nlink: -ENOTTY, not looked) */
	nlink_t nlink;
	uint64_t size;
};

static void look_fd(int fd, bool blockdev, struct target_look *l)
{
	struct stat st = { 0 };

	l->nlink_rc = -ENOTTY;
	if (blockdev) {
		l->size_rc = target_size(fd, true, &l->size);
		return;
	}
	l->nlink_rc = l->size_rc = fstat(fd, &st) < 0 ? -errno : 0;
	l->nlink = st.st_nlink;
	l->size = (uint64_t)st.st_size;
}

/* On the main thread: a deleted target is logged once, with an error node
 * (the guest's writes go to an inode that vanishes when we close it); a
 * bigger one is announced, a smaller one reported. */
static void look_apply(struct device *d, struct vbd *v,
		       const struct target_look *l)
{
	uint64_t size = l->size;
	unsigned int i;

	if (!l->nlink_rc && l->nlink == 0 && !v->deleted) {
		v->deleted = true;
		log_warn("%s: %s was deleted under domain %u: its writes go to an unlinked file, lost when the device goes",
			 d->path, v->params, d->fe);
		device_write(d, "error", "%d target %s deleted", ENOENT,
			     v->params);
	} else if (!l->nlink_rc && l->nlink > 0 && v->deleted) {
		v->deleted = false;	/* linked again (ln from /proc) */
		log_info("%s: %s is linked again", d->path, v->params);
	}
	if (!d->connected || l->size_rc)
		return;
	size -= size % v->logical;
	if (size < v->size_bytes) {
		/* truncated or shrunk under the guest: what it had beyond the
		 * new end is gone. Say so, and answer requests there with
		 * I/O errors (a write would otherwise grow the file back with
		 * holes where the guest's data was). */
		log_warn("%s: %s shrank from %llu to %llu bytes under domain %u: requests beyond the new end now fail",
			 d->path, v->params, (unsigned long long)v->size_bytes,
			 (unsigned long long)size, d->fe);
		device_write(d, "error", "%d target %s shrank from %llu to %llu bytes",
			     EIO, v->params, (unsigned long long)v->size_bytes,
			     (unsigned long long)size);
		v->size_bytes = size;
		for (i = 0; i < d->nr_queues; i++)
			blk_queue_resize(BQ(d->queues[i]), size / 512u);
		return;
	}
	if (size == v->size_bytes)
		return;
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

/*
 * A file on a file system that may block (NFS, FUSE, ...: sqe_flags):
 * its fstat waits on the server, and a server gone would hold the main
 * thread, and every other guest's control path with it. The looks are
 * jobs: one per file system (st_dev) per tick, for every such device on
 * it that has none in flight (vbd_tick() marks them, vbd_tick_end()
 * starts them): a thread a second per file system, not per device (256
 * disks on one NFS server). A device whose look has not come back after
 * --stall-timeout is logged once; so are the others that wait behind it
 * in its job (their file system hangs too). A device that loses its
 * xenbus handle (vbd_going(), vbd_destroy()) marks its entry gone, and
 * done() skips it: a job is never cancelled as a whole. The fstat of a
 * gone entry may still run after its fd was closed: it holds its own
 * reference to the file while it waits, and a result from a reused fd
 * number is dropped unread.
 */
struct look_ent {
	struct device *d;	/* done() only, unless gone */
	int fd;			/* the vbd's (see above) */
	bool blockdev;
	bool gone;		/* main thread: the device went */
	struct target_look l;
};

struct look_job {
	struct ctl_job j;
	unsigned int n;
	struct look_ent e[];
};

static void look_run(struct ctl_job *j)
{
	struct look_job *lj = (struct look_job *)j;
	unsigned int i;

	for (i = 0; i < lj->n; i++)
		look_fd(lj->e[i].fd, lj->e[i].blockdev, &lj->e[i].l);
}

static void look_done(struct ctl_job *j)
{
	struct look_job *lj = (struct look_job *)j;
	unsigned int i;

	for (i = 0; i < lj->n; i++) {
		struct device *d = lj->e[i].d;
		struct vbd *v;

		if (lj->e[i].gone)
			continue;
		v = VBD(d);
		v->look_job = NULL;
		if (v->look_slow)
			log_info("%s: %s answers again (fstat took %llu s)", d->path,
				 v->params, (unsigned long long)((pvio_now_ns() -
								  v->look_since_ns) / 1000000000u));
		v->look_slow = false;
		look_apply(d, v, &lj->e[i].l);
	}
	free(lj);
}

static void look_drop(struct ctl_job *j)
{
	free(j);
}

/* done() will not look at it; a fstat still waiting returns to nobody */
static void look_cancel(struct device *d, struct vbd *v)
{
	(void)d;
	v->look_due = false;
	if (v->look_job) {
		((struct look_job *)v->look_job)->e[v->look_idx].gone = true;
		v->look_job = NULL;
	}
}

/* A look wanted at this tick's end (vbd_tick_end()), or the one in flight
 * not back yet */
static void look_want(struct device *d, struct vbd *v)
{
	if (!v->look_job) {
		v->look_due = true;
		return;
	}
	if (stalled_once(d, v->look_since_ns, &v->look_slow)) {
		log_warn("%s: %s does not answer: fstat waiting for %u s (its file system hangs); the other devices go on",
			 d->path, v->params, d->bd->o.stall_s);
	}
}

/* After every vbd's tick: one look job per file system for the devices
 * that want one */
static void vbd_tick_end(struct backd *bd)
{
	uint64_t now = pvio_now_ns();
	struct device *d, *o;

	for (d = bd->devices; d; d = d->next) {
		struct vbd *v = d->ops == &vbd_ops ? VBD(d) : NULL;
		struct look_job *lj;
		unsigned int n = 0;

		if (!v || !v->look_due)
			continue;
		for (o = d; o; o = o->next) {
			struct vbd *ov = o->ops == &vbd_ops ? VBD(o) : NULL;

			n += ov && ov->look_due && ov->st_dev == v->st_dev;
		}
		lj = calloc(1, sizeof(*lj) + n * sizeof(lj->e[0]));
		if (!lj)
			return;		/* tried again at the next tick */
		lj->j.run = look_run;
		lj->j.done = look_done;
		lj->j.drop = look_drop;
		lj->j.name = "pvio-look";
		for (o = d; o && lj->n < n; o = o->next) {
			struct vbd *ov = o->ops == &vbd_ops ? VBD(o) : NULL;
			struct look_ent *e = &lj->e[lj->n];

			if (!ov || !ov->look_due || ov->st_dev != v->st_dev)
				continue;
			e->d = o;
			e->fd = ov->fd_buffered;
			e->blockdev = ov->is_blockdev;
			ov->look_due = false;
			ov->look_job = lj;
			ov->look_idx = lj->n++;
			ov->look_since_ns = now;
		}
		if (ctl_job_start(bd, &lj->j, false)) {
			unsigned int i;

			for (i = 0; i < lj->n; i++)
				VBD(lj->e[i].d)->look_job = NULL;
			free(lj);
			return;
		}
	}
}

/* The target cannot flush (a worker saw it refused, or it came back
 * without): requests say EOPNOTSUPP from now on, the keys go */
static void withdraw_flush(struct device *d, struct vbd *v)
{
	char key[PVIO_XS_PATH_MAX + 32];

	log_warn("%s: flush not supported by %s: withdrawing the feature",
		 d->path, v->params);
	v->feat_flush = v->feat_barrier = false;
	snprintf(key, sizeof(key), "%s/feature-flush-cache", d->path);
	pvio_xs_rm(d->bd->xs, 0, key);
	snprintf(key, sizeof(key), "%s/feature-barrier", d->path);
	pvio_xs_rm(d->bd->xs, 0, key);
}

static void withdraw_discard(struct device *d, struct vbd *v)
{
	log_warn("%s: discard not supported by %s: withdrawing it", d->path,
		 v->params);
	v->feat_discard = false;
	device_write(d, "feature-discard", "0");
}

/* Once a second: a bigger target is announced, a smaller or deleted one
 * reported; failed features go. */
static void vbd_tick(struct device *d)
{
	struct vbd *v = VBD(d);
	struct target_look l = { .nlink_rc = -ENOTTY };

	if (v && !v->opened) {
		file_open_stalled(d, v);
		vbd_changed(d);
	}
	if (!v || !v->opened)
		return;
	if (v->tops == &blk_target_absent)
		vbd_revive(d, v);
	if (__atomic_exchange_n(&v->flush_unsupported, 0, __ATOMIC_RELAXED) &&
	    v->feat_flush)
		withdraw_flush(d, v);
	if (__atomic_exchange_n(&v->discard_unsupported, 0, __ATOMIC_RELAXED) &&
	    v->feat_discard)
		withdraw_discard(d, v);
	if (v->tops->size) {	/* a remote target knows its own */
		l.size_rc = v->tops->size(v, &l.size);
	} else if (v->sqe_flags) {
		look_want(d, v);
		return;
	} else {
		look_fd(v->fd_buffered, v->is_blockdev, &l);
	}
	look_apply(d, v, &l);
}

static void vbd_describe(struct device *d, struct json_object *o)
{
	struct vbd *v = VBD(d);

	if (!v) {
		json_object_object_add(o, "target", NULL);
		return;
	}
	json_add_name(o, "target", v->params);
	json_add_name(o, "target_kind", v->tops ? v->tops->kind : "none");
	if (v->tops == &blk_target_absent) {	/* why (vbd_open_failed()) */
		json_add_name(o, "target_error", v->why);
		if (v->revive_tops)	/* tried again (vbd_revive()) */
			json_object_object_add(o, "target_tries",
					       json_object_new_uint64(v->revive_tries));
	}
	json_object_object_add(o, "size_bytes",
			       json_object_new_uint64(v->size_bytes));
	json_object_object_add(o, "read_only",
			       json_object_new_boolean(v->readonly));
	json_object_object_add(o, "o_direct",
			       json_object_new_boolean(v->fd_direct >= 0));
	json_object_object_add(o, "sector_size",
			       json_object_new_uint64(v->logical));
	json_object_object_add(o, "iops_limit",
			       json_object_new_uint64(v->iops_limit));
	json_object_object_add(o, "bytes_limit",
			       json_object_new_uint64(v->bytes_limit));
}

const struct device_ops vbd_ops = {
	.kind = "vbd",
	.probe = vbd_probe,
	.connect = vbd_connect,
	.disconnect = vbd_disconnect,
	.destroy = vbd_destroy,
	.abort = vbd_abort,
	.going = vbd_going,
	.tick = vbd_tick,
	.tick_end = vbd_tick_end,
	.changed = vbd_changed,
	.limits = vbd_limits,
	.describe = vbd_describe,
};
