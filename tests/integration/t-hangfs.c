// SPDX-License-Identifier: MIT
/*
 * t-hangfs: a FUSE file system with one file, "disk", backed by IMAGE,
 * whose reads and writes block while the file HANGFLAG exists: a target
 * that never answers, for the head-of-line blocking test. A blocked
 * request ends with EINTR only when the kernel interrupts it (the process
 * that waits for it is killed: libfuse marks the request interrupted when
 * the kernel's INTERRUPT arrives, and the blocked call polls for it), as
 * an unreachable network file system mounted "intr" does.
 *
 *   t-hangfs IMAGE HANGFLAG MOUNTPOINT [FUSE options]
 *
 * Runs in the foreground, multi-threaded (a hung request holds one thread,
 * the others answer getattr and the like).
 *
 * With $T_HANGFS_ORDER=LOG, each write and fsync appends a line to LOG as
 * it begins ("W OFFSET LEN", "F") and as it ends ("w", "f"), and an fsync
 * takes 5 ms more: the order the target saw a barrier's parts in; an open
 * appends "O" as it begins.
 */
#define FUSE_USE_VERSION 31
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <fuse.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *image, *hangflag;
static int img_fd = -1;
/* $T_HANGFS_OPEN: its open hangs too; $T_HANGFS_ATTR: and its getattr, as
 * a dead NFS server's open and fstat do; $T_HANGFS_ALL: and its flush, as
 * NFS's write-back at close(2) of a file with dirty pages */
static bool hang_open, hang_attr, hang_flush;
/* $T_HANGFS_FLUSH_MS: every flush (each close(2)) takes that long */
static int flush_ms;
static int order_fd = -1;

/* @ev: O, W, w, F or f; a write's beginning says where */
static void order(char ev, unsigned long long off, unsigned long long len)
{
	char line[64];
	int n;

	if (order_fd < 0)
		return;
	n = ev == 'W' ? snprintf(line, sizeof(line), "W %llu %llu\n", off, len)
		      : snprintf(line, sizeof(line), "%c\n", ev);
	if (write(order_fd, line, (size_t)n) != n)
		abort();
}

/* Wait while the flag exists; -EINTR if the kernel gave up on us. */
static int hang(void)
{
	while (access(hangflag, F_OK) == 0) {
		if (fuse_interrupted())
			return -EINTR;
		poll(NULL, 0, 20);
	}
	return 0;
}

static int hf_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	struct stat ist;

	(void)fi;
	memset(st, 0, sizeof(*st));
	if (strcmp(path, "/") == 0) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/disk") != 0)
		return -ENOENT;
	if (hang_attr && hang())
		return -EINTR;
	if (fstat(img_fd, &ist) < 0)
		return -errno;
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_size = ist.st_size;
	return 0;
}

static int hf_readdir(const char *path, void *buf, fuse_fill_dir_t fill,
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
	fill(buf, "disk", NULL, 0, 0);
	return 0;
}

static int hf_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/disk") != 0)
		return -ENOENT;
	order('O', 0, 0);
	if (hang_open && hang())
		return -EINTR;
	fi->direct_io = 1;	/* every read and write reaches us */
	return 0;
}

static int hf_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	ssize_t n;
	int rc;

	(void)path;
	(void)fi;
	rc = hang();
	if (rc)
		return rc;
	n = pread(img_fd, buf, size, off);
	return n < 0 ? -errno : (int)n;
}

static int hf_write(const char *path, const char *buf, size_t size,
		    off_t off, struct fuse_file_info *fi)
{
	ssize_t n;
	int rc;

	(void)path;
	(void)fi;
	order('W', (unsigned long long)off, size);
	rc = hang();
	if (rc)
		return rc;
	n = pwrite(img_fd, buf, size, off);
	order('w', 0, 0);
	return n < 0 ? -errno : (int)n;
}

static int hf_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	int rc;

	(void)path;
	(void)datasync;
	(void)fi;
	order('F', 0, 0);
	rc = hang();
	if (order_fd >= 0)
		poll(NULL, 0, 5);
	order('f', 0, 0);
	return rc;
}

static int hf_flush(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	if (flush_ms)
		poll(NULL, 0, flush_ms);
	return hang_flush ? hang() : 0;
}

/* a guest's discard (FALLOC_FL_PUNCH_HOLE) and write-zeroes, as NFS 4.2's */
static int hf_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	int rc;

	(void)path;
	(void)fi;
	rc = hang();
	if (rc)
		return rc;
	return fallocate(img_fd, mode, off, len) < 0 ? -errno : 0;
}

static const struct fuse_operations ops = {
	.getattr = hf_getattr,
	.readdir = hf_readdir,
	.open = hf_open,
	.read = hf_read,
	.write = hf_write,
	.fsync = hf_fsync,
	.flush = hf_flush,
	.fallocate = hf_fallocate,
};

int main(int argc, char **argv)
{
	char *fargv[32];
	int fargc = 0, i;

	if (argc < 4 || argc > 24) {
		fprintf(stderr, "usage: t-hangfs IMAGE HANGFLAG MOUNTPOINT [FUSE options]\n");
		return 2;
	}
	image = argv[1];
	hangflag = argv[2];
	img_fd = open(image, O_RDWR | O_CLOEXEC);
	if (img_fd < 0) {
		perror(image);
		return 1;
	}
	hang_flush = getenv("T_HANGFS_ALL") != NULL;
	hang_attr = hang_flush || getenv("T_HANGFS_ATTR") != NULL;
	hang_open = hang_attr || getenv("T_HANGFS_OPEN") != NULL;
	if (getenv("T_HANGFS_FLUSH_MS"))
		flush_ms = atoi(getenv("T_HANGFS_FLUSH_MS"));
	if (getenv("T_HANGFS_ORDER")) {
		order_fd = open(getenv("T_HANGFS_ORDER"),
				O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (order_fd < 0) {
			perror(getenv("T_HANGFS_ORDER"));
			return 1;
		}
	}
	fargv[fargc++] = argv[0];
	fargv[fargc++] = "-f";
	fargv[fargc++] = argv[3];
	for (i = 4; i < argc; i++)
		fargv[fargc++] = argv[i];
	fargv[fargc] = NULL;
	return fuse_main(fargc, fargv, &ops, NULL);
}
