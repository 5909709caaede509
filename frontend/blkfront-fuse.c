// SPDX-License-Identifier: MIT
/*
 * pvio-blkfront's FUSE export: one regular file, MOUNTPOINT/<vdev>, whose
 * size is the disk's, for `losetup` (then mkfs, mount, fsck as on any
 * disk). fsync is a flush; fallocate(PUNCH_HOLE) discards (and makes sure
 * the range reads as zeroes, as a hole must: loop's discard and
 * write-zeroes both arrive as PUNCH_HOLE); ZERO_RANGE writes zeroes.
 * Multi-threaded: each worker thread uses a queue of its own while there
 * are enough.
 */
#include "config.h"

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blkfront-prog.h"
#include "util.h"

static struct bfp *B;
static char file_path[64];	/* "/<vdev>" */

static bool is_file(const char *path)
{
	return strcmp(path, file_path) == 0;
}

static uint64_t disk_size(void)
{
	return __atomic_load_n(&B->size, __ATOMIC_RELAXED);
}

static void *bf_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	/* no page cache of our own (the loop device has one), and every
	 * getattr asks us: the size follows an online resize */
	cfg->direct_io = 1;
	cfg->attr_timeout = 0;
	cfg->entry_timeout = 0;
	cfg->negative_timeout = 0;
	return B;
}

static int bf_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	st->st_uid = getuid();
	st->st_gid = getgid();
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (!is_file(path))
		return -ENOENT;
	st->st_mode = S_IFREG | (B->info.readonly ? 0400 : 0600);
	st->st_nlink = 1;
	st->st_size = (off_t)disk_size();
	st->st_blksize = (blksize_t)(B->info.physical_sector_size > 4096
					     ? B->info.physical_sector_size
					     : 4096);
	st->st_blocks = (blkcnt_t)(disk_size() / 512);
	return 0;
}

static int bf_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	(void)off;
	(void)fi;
	(void)flags;
	if (strcmp(path, "/") != 0)
		return -ENOENT;
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	fill(buf, file_path + 1, NULL, 0, 0);
	return 0;
}

static int bf_open(const char *path, struct fuse_file_info *fi)
{
	if (!is_file(path))
		return -ENOENT;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && B->info.readonly)
		return -EROFS;
	fi->direct_io = 1;
	return 0;
}

static int bf_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	ssize_t rc;

	(void)path;
	(void)fi;
	if (off < 0)
		return -EINVAL;
	rc = bfp_read(B, buf, size, (uint64_t)off);
	return (int)rc;
}

static int bf_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	ssize_t rc;

	(void)path;
	(void)fi;
	if (off < 0)
		return -EINVAL;
	rc = bfp_write(B, buf, size, (uint64_t)off);
	return rc == -ENOSPC ? -EFBIG : (int)rc;
}

static int bf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int rc;

	(void)path;
	(void)datasync;
	(void)fi;
	rc = bfp_flush(B);
	/* no flush on offer: the backend has no cache to flush */
	return rc == -EOPNOTSUPP ? 0 : rc;
}

static int bf_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	uint64_t o = (uint64_t)off, l = (uint64_t)len;

	(void)fi;
	if (!is_file(path))
		return -ENOENT;
	if (off < 0 || len <= 0)
		return -EINVAL;
	if (B->info.readonly)
		return -EROFS;
	if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
		/* the disk is all allocated; it cannot grow */
		return o > disk_size() || l > disk_size() - o ? -EFBIG : 0;
	}
	if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE))
		return bfp_zero(B, o, l, true);
	if (mode == FALLOC_FL_ZERO_RANGE ||
	    mode == (FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE))
		return bfp_zero(B, o, l, false);
	return -EOPNOTSUPP;
}

static int bf_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	(void)fi;
	if (!is_file(path))
		return -ENOENT;
	/* O_TRUNC of a disk, or the same size: nothing to do */
	return size == (off_t)disk_size() || size == 0 ? 0 : -EPERM;
}

static int bf_statfs(const char *path, struct statvfs *st)
{
	(void)path;
	memset(st, 0, sizeof(*st));
	st->f_bsize = 4096;
	st->f_frsize = 4096;
	st->f_blocks = disk_size() / 4096;
	st->f_files = 1;
	st->f_namemax = 255;
	return 0;
}

static const struct fuse_operations bf_ops = {
	.init = bf_init,
	.getattr = bf_getattr,
	.readdir = bf_readdir,
	.open = bf_open,
	.read = bf_read,
	.write = bf_write,
	.fsync = bf_fsync,
	.fallocate = bf_fallocate,
	.truncate = bf_truncate,
	.statfs = bf_statfs,
};

int bfp_fuse_run(struct bfp *b, const char *mountpoint, const char *fuse_opts,
		 unsigned int threads)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se;
	char opts[512];
	struct fuse *f;
	int rc = -EIO;

	B = b;
	snprintf(file_path, sizeof(file_path), "/%s", b->vdev);
	snprintf(opts, sizeof(opts), "fsname=pvio-blkfront:%s,subtype=pvio%s%s",
		 b->vdev, fuse_opts ? "," : "", fuse_opts ? fuse_opts : "");
	if (fuse_opt_add_arg(&args, "pvio-blkfront") ||
	    fuse_opt_add_arg(&args, "-o") || fuse_opt_add_arg(&args, opts))
		goto out_args;
	f = fuse_new(&args, &bf_ops, sizeof(bf_ops), b);
	if (!f) {
		log_err("cannot set up FUSE (options: %s)", opts);
		goto out_args;
	}
	if (fuse_mount(f, mountpoint) != 0) {
		log_err("cannot mount FUSE on %s", mountpoint);
		goto out_new;
	}
	se = fuse_get_session(f);
	if (fuse_set_signal_handlers(se) != 0) {
		log_err("cannot install signal handlers");
		goto out_mount;
	}
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		goto out_signals;
	fuse_loop_cfg_set_clone_fd(cfg, 0);
	fuse_loop_cfg_set_idle_threads(cfg, threads);
	fuse_loop_cfg_set_max_threads(cfg, threads);
	log_info("%s: serving %s%s", b->vdev, mountpoint, file_path);
	rc = fuse_loop_mt(f, cfg);
	if (rc > 0) {
		log_info("%s: stopped by signal %d", b->vdev, rc);
		rc = 0;	/* a signal: a clean stop */
	} else if (rc < 0) {
		log_err("%s: FUSE loop: %s", b->vdev, strerror(-rc));
	}
	fuse_loop_cfg_destroy(cfg);
out_signals:
	fuse_remove_signal_handlers(se);
out_mount:
	fuse_unmount(f);
out_new:
	fuse_destroy(f);
out_args:
	fuse_opt_free_args(&args);
	return rc;
}
