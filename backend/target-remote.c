// SPDX-License-Identifier: MIT
/*
 * What the remote targets share: single-writer lock files, and the
 * copies between a request's pages and one buffer.
 *
 * Single-writer lock files for remote targets. OFD locks (F_OFD_SETLK)
 * belong to the open file description, not the process: two devices of
 * one pvio-backd conflict as two daemons do, and the lock goes when the
 * file is closed (or the daemon dies), so a crash leaves no stale lock.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "target-remote.h"

/* FNV-1a, 64 bits: a file name for any URI */
static uint64_t hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ull;
	}
	return h;
}

/* mkdir -p for the lock directory (mode 0700) */
static int make_dir(const char *dir)
{
	char p[400];
	size_t i, n = strlen(dir);

	if (n >= sizeof(p))
		return -ENAMETOOLONG;
	memcpy(p, dir, n + 1);
	for (i = 1; i <= n; i++) {
		if (p[i] != '/' && p[i] != 0)
			continue;
		p[i] = 0;
		if (mkdir(p, 0700) < 0 && errno != EEXIST)
			return -errno;
		p[i] = dir[i];
	}
	return 0;
}

int remote_lock_take(struct remote_lock *l, const char *dir, const char *name,
		     char *why, size_t len)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	int rc;

	l->fd = -1;
	rc = make_dir(dir);
	if (rc) {
		snprintf(why, len, "lock directory %.300s: %s", dir,
			 strerror(-rc));
		return rc;
	}
	snprintf(l->path, sizeof(l->path), "%.400s/%016llx.lock", dir,
		 (unsigned long long)hash(name));
	l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (l->fd < 0) {
		rc = -errno;
		snprintf(why, len, "lock file %.400s: %s", l->path,
			 strerror(errno));
		return rc;
	}
	if (fcntl(l->fd, F_OFD_SETLK, &fl) < 0) {
		rc = errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
		snprintf(why, len,
			 "%.300s has a writer already on this host (lock %.150s held)",
			 name, l->path);
		close(l->fd);
		l->fd = -1;
		return rc;
	}
	/* the last holder's note: the line after the name */
	{
		char buf[4096 + sizeof(l->note)], *nl, *end;
		ssize_t n = pread(l->fd, buf, sizeof(buf) - 1, 0);

		l->note[0] = 0;
		buf[n > 0 ? n : 0] = 0;
		nl = strchr(buf, '\n');
		if (nl) {
			end = strchr(nl + 1, '\n');
			if (end)
				*end = 0;
			snprintf(l->note, sizeof(l->note), "%s", nl + 1);
		}
	}
	/* for operators: which target the file stands for (the note stays
	 * until its holder writes its own) */
	remote_lock_note(l, name, l->note);
	return 0;
}

void remote_lock_note(struct remote_lock *l, const char *name,
		      const char *note)
{
	char buf[4096 + 160];
	int n = snprintf(buf, sizeof(buf), "%s\n%s%s", name, note,
			 note[0] ? "\n" : "");

	if (l->fd < 0 || n < 0 || (size_t)n >= sizeof(buf))
		return;
	/* only a label and a hint: a failure costs a later takeover */
	if (ftruncate(l->fd, 0) == 0 && pwrite(l->fd, buf, (size_t)n, 0) < 0)
		return;
}

void remote_lock_drop(struct remote_lock *l)
{
	if (l->fd < 0)
		return;
	/* the lock goes with the descriptor; the file stays (unlinking it
	 * would race with the next holder opening it) */
	close(l->fd);
	l->fd = -1;
}

size_t remote_gather(void *dst, const struct iovec *iov, unsigned int n)
{
	size_t off = 0;

	for (unsigned int i = 0; i < n; i++) {
		memcpy((char *)dst + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	return off;
}

#ifdef __SSE2__
/*
 * @len bytes (a multiple of 64; both ends 16-byte aligned) with
 * non-temporal stores: the guest's page is not read here again, so its
 * lines need not be fetched before they are written (memcpy's stores do)
 * nor evict the server's, which shares the CPU's cache.
 */
static void copy_stream(void *dst, const void *src, size_t len)
{
	__m128i *d = dst;
	const __m128i *s = src;

	for (size_t i = 0; i < len / 16; i += 4) {
		__m128i a = _mm_load_si128(s + i), b = _mm_load_si128(s + i + 1);
		__m128i c = _mm_load_si128(s + i + 2), e = _mm_load_si128(s + i + 3);

		_mm_stream_si128(d + i, a);
		_mm_stream_si128(d + i + 1, b);
		_mm_stream_si128(d + i + 2, c);
		_mm_stream_si128(d + i + 3, e);
	}
}
#endif

bool remote_contiguous(const struct iovec *iov, unsigned int n)
{
	for (unsigned int i = 1; i < n; i++)
		if ((char *)iov[i - 1].iov_base + iov[i - 1].iov_len !=
		    iov[i].iov_base)
			return false;
	return true;
}

void remote_scatter(const struct iovec *iov, unsigned int n, const void *src)
{
	size_t off = 0;
#ifdef __SSE2__
	bool streamed = false;
#endif

	for (unsigned int i = 0; i < n; i++) {
		const char *from = (const char *)src + off;
		size_t len = iov[i].iov_len;

#ifdef __SSE2__
		if (!(((uintptr_t)iov[i].iov_base | (uintptr_t)from | len) & 63)) {
			copy_stream(iov[i].iov_base, from, len);
			streamed = true;
			off += len;
			continue;
		}
#endif
		memcpy(iov[i].iov_base, from, len);
		off += len;
	}
#ifdef __SSE2__
	/* ordered before the response that tells the guest it is there */
	if (streamed)
		_mm_sfence();
#endif
}
