// SPDX-License-Identifier: MIT
/*
 * pvio-blkfront: the userspace blkfront as a program, run as a domain
 * (`pvio-ctl run DOM -- pvio-blkfront ...` sets $PVIO_PLATFORM and
 * $PVIO_DOMID; on Xen it runs in the domU itself).
 *
 *   pvio-blkfront [options] info
 *   pvio-blkfront [options] read OFFSET LEN          to stdout
 *   pvio-blkfront [options] write OFFSET             from stdin, to EOF
 *   pvio-blkfront [options] flush
 *   pvio-blkfront [options] discard OFFSET LEN [--secure]
 *   pvio-blkfront [options] fuse MOUNTPOINT          MOUNTPOINT/<vdev>
 *
 * Bad input: one line on stderr, exit status 2. Runtime failures: exit 1.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pvio/blkfront.h>
#include <pvio/platform.h>
#include <pvio/xenbus.h>

#include "blkfront-prog.h"
#include "toolstack.h"
#include "util.h"

static const char *prog = "pvio-blkfront";

#define die_usage(...) pvio_usage_error(prog, __VA_ARGS__)

#define ZCHUNK	(1u << 20)

/* ---- the disk as bytes --------------------------------------------------- */

static struct bfp_queue *bfp_get(struct bfp *b)
{
	static unsigned int next;
	static __thread int mine = -1;
	struct bfp_queue *bq;

	if (mine < 0)
		mine = (int)(__atomic_fetch_add(&next, 1, __ATOMIC_RELAXED) %
			     b->nq);
	bq = &b->qs[mine];
	pthread_mutex_lock(&bq->lock);
	return bq;
}

static void bfp_put(struct bfp_queue *bq)
{
	pthread_mutex_unlock(&bq->lock);
}

static uint64_t bfp_size(struct bfp *b)
{
	return __atomic_load_n(&b->size, __ATOMIC_RELAXED);
}

ssize_t bfp_read(struct bfp *b, void *buf, size_t len, uint64_t off)
{
	uint64_t size = bfp_size(b), a0, a1;
	struct bfp_queue *bq;
	ssize_t rc;
	char *bounce;

	if (off >= size || len == 0)
		return 0;
	if (len > size - off)
		len = (size_t)(size - off);
	a0 = off & ~(uint64_t)(b->ss - 1);
	a1 = (off + len + b->ss - 1) & ~(uint64_t)(b->ss - 1);
	bq = bfp_get(b);
	if (a0 == off && a1 == off + len) {
		rc = pvio_blkfront_pread(bq->q, buf, len, off);
	} else {
		bounce = malloc(a1 - a0);
		if (!bounce) {
			bfp_put(bq);
			return -ENOMEM;
		}
		rc = pvio_blkfront_pread(bq->q, bounce, a1 - a0, a0);
		if (rc >= 0) {
			memcpy(buf, bounce + (off - a0), len);
			rc = (ssize_t)len;
		}
		free(bounce);
	}
	bfp_put(bq);
	return rc;
}

ssize_t bfp_write(struct bfp *b, const void *buf, size_t len, uint64_t off)
{
	uint64_t size = bfp_size(b), a0, a1;
	struct bfp_queue *bq;
	ssize_t rc = 0;
	char *bounce;

	if (len == 0)
		return 0;
	if (off > size || len > size - off)
		return -ENOSPC;
	a0 = off & ~(uint64_t)(b->ss - 1);
	a1 = (off + len + b->ss - 1) & ~(uint64_t)(b->ss - 1);
	if (a0 == off && a1 == off + len) {
		pthread_rwlock_rdlock(&b->rmw);
		bq = bfp_get(b);
		rc = pvio_blkfront_pwrite(bq->q, buf, len, off);
		bfp_put(bq);
		pthread_rwlock_unlock(&b->rmw);
		return rc;
	}
	/* read-modify-write of the partial sectors, alone */
	bounce = malloc(a1 - a0);
	if (!bounce)
		return -ENOMEM;
	pthread_rwlock_wrlock(&b->rmw);
	bq = bfp_get(b);
	if (off != a0)
		rc = pvio_blkfront_pread(bq->q, bounce, b->ss, a0);
	if (rc >= 0 && off + len != a1 && (a1 - b->ss != a0 || off == a0))
		rc = pvio_blkfront_pread(bq->q, bounce + (a1 - a0 - b->ss),
					 b->ss, a1 - b->ss);
	if (rc >= 0) {
		memcpy(bounce + (off - a0), buf, len);
		rc = pvio_blkfront_pwrite(bq->q, bounce, a1 - a0, a0);
	}
	bfp_put(bq);
	pthread_rwlock_unlock(&b->rmw);
	free(bounce);
	return rc < 0 ? rc : (ssize_t)len;
}

int bfp_flush(struct bfp *b)
{
	struct bfp_queue *bq = bfp_get(b);
	int rc = pvio_blkfront_flush(bq->q);

	bfp_put(bq);
	return rc;
}

/* The part of [*s, *e) the library sends: whole discard extents. */
static void discard_extent(const struct bfp *b, uint64_t *s, uint64_t *e)
{
	uint64_t g = b->info.discard_granularity, a = b->info.discard_alignment;

	if (!g)
		g = b->ss;
	*s += (a + g - *s % g) % g;
	*e -= (*e % g + g - a) % g;
	if (*s > *e)
		*s = *e;
}

int bfp_discard(struct bfp *b, uint64_t off, uint64_t len)
{
	uint64_t size = bfp_size(b), s, e;
	struct bfp_queue *bq;
	int rc;

	if (off >= size)
		return 0;
	if (len > size - off)
		len = size - off;
	s = (off + b->ss - 1) & ~(uint64_t)(b->ss - 1);
	e = (off + len) & ~(uint64_t)(b->ss - 1);
	if (s >= e)
		return 0;
	bq = bfp_get(b);
	rc = pvio_blkfront_discard(bq->q, s, e - s, 0);
	bfp_put(bq);
	return rc;
}

static const char zeroes[ZCHUNK];

static int write_zeroes(struct bfp *b, uint64_t off, uint64_t len)
{
	while (len) {
		size_t n = len < ZCHUNK ? (size_t)len : ZCHUNK;
		ssize_t rc = bfp_write(b, zeroes, n, off);

		if (rc < 0)
			return (int)rc;
		off += n;
		len -= n;
	}
	return 0;
}

/* After a discard: zero what does not read back as zeroes, by 4 KiB. */
static int zero_leftovers(struct bfp *b, uint64_t off, uint64_t len)
{
	char *buf = malloc(ZCHUNK);
	int rc = 0;

	if (!buf)
		return -ENOMEM;
	while (len && !rc) {
		size_t n = len < ZCHUNK ? (size_t)len : ZCHUNK, i, run = 0;
		ssize_t got = bfp_read(b, buf, n, off);

		if (got < 0) {
			rc = (int)got;
			break;
		}
		for (i = 0; i <= n && !rc; i += 4096) {
			size_t l = n - i < 4096 ? n - i : 4096;
			bool dirty = i < n && memcmp(buf + i, zeroes, l) != 0;

			if (dirty) {
				run += l;
				continue;
			}
			if (run)
				rc = write_zeroes(b, off + i - run, run);
			run = 0;
		}
		off += n;
		len -= n;
	}
	free(buf);
	return rc;
}

int bfp_zero(struct bfp *b, uint64_t off, uint64_t len, bool unmap)
{
	uint64_t size = bfp_size(b), s, e;
	int rc;

	if (off >= size)
		return 0;
	if (len > size - off)
		len = size - off;
	if (!unmap ||
	    !(b->info.features & PVIO_BLKFRONT_FEAT_DISCARD))
		return write_zeroes(b, off, len);
	rc = bfp_discard(b, off, len);
	if (rc == -EOPNOTSUPP)
		return write_zeroes(b, off, len);
	if (rc)
		return rc;
	if (!b->discard_zeroes)
		return zero_leftovers(b, off, len);
	/* trusted: only the ragged ends the discard could not cover */
	s = off;
	e = off + len;
	discard_extent(b, &s, &e);
	if (s == e)
		return write_zeroes(b, off, len);
	rc = write_zeroes(b, off, s - off);
	if (!rc)
		rc = write_zeroes(b, e, off + len - e);
	return rc;
}

/* ---- modes --------------------------------------------------------------- */

static void print_info(struct bfp *b)
{
	struct pvio_blkfront_info i;

	pvio_blkfront_info(b->dev, &i);
	printf("device: %s (%u)\n", b->vdev, i.devid);
	printf("backend: %s (domain %u)\n", i.backend, i.backend_id);
	printf("sectors: %llu\n", (unsigned long long)i.sectors);
	printf("size: %llu\n", (unsigned long long)i.size);
	printf("sector-size: %u\n", i.sector_size);
	printf("physical-sector-size: %u\n", i.physical_sector_size);
	printf("read-only: %s\n", i.readonly ? "yes" : "no");
	printf("features:%s%s%s%s%s%s\n",
	       i.features & PVIO_BLKFRONT_FEAT_FLUSH ? " flush" : "",
	       i.features & PVIO_BLKFRONT_FEAT_BARRIER ? " barrier" : "",
	       i.features & PVIO_BLKFRONT_FEAT_DISCARD ? " discard" : "",
	       i.features & PVIO_BLKFRONT_FEAT_SECURE_DISCARD
		       ? " secure-discard" : "",
	       i.features & PVIO_BLKFRONT_FEAT_INDIRECT ? " indirect" : "",
	       i.features & PVIO_BLKFRONT_FEAT_PERSISTENT ? " persistent" : "");
	if (i.features & PVIO_BLKFRONT_FEAT_DISCARD)
		printf("discard-granularity: %u\ndiscard-alignment: %u\n",
		       i.discard_granularity, i.discard_alignment);
	printf("queues: %u\n", i.nr_queues);
	printf("ring-pages: %u\n", i.ring_pages);
	printf("queue-depth: %u\n", i.queue_depth);
	printf("max-segments: %u\n", i.max_segments);
	printf("max-io: %u\n", i.max_io);
}

static int do_read(struct bfp *b, uint64_t off, uint64_t len)
{
	char *buf;
	int rc = 0;

	if (off > bfp_size(b) || len > bfp_size(b) - off) {
		fprintf(stderr, "%s: read: %llu bytes at %llu is past the end "
			"of %s (%llu bytes)\n", prog, (unsigned long long)len,
			(unsigned long long)off, b->vdev,
			(unsigned long long)bfp_size(b));
		return 1;
	}
	buf = malloc(ZCHUNK);
	if (!buf)
		return 1;
	while (len) {
		size_t n = len < ZCHUNK ? (size_t)len : ZCHUNK;
		ssize_t got = bfp_read(b, buf, n, off);

		if (got <= 0) {
			fprintf(stderr, "%s: read at %llu: %s\n", prog,
				(unsigned long long)off,
				got ? strerror((int)-got) : "end of disk");
			rc = 1;
			break;
		}
		if (fwrite(buf, 1, (size_t)got, stdout) != (size_t)got) {
			fprintf(stderr, "%s: writing to stdout: %s\n", prog,
				strerror(errno));
			rc = 1;
			break;
		}
		off += (uint64_t)got;
		len -= (uint64_t)got;
	}
	free(buf);
	if (fflush(stdout) != 0 && !rc) {
		fprintf(stderr, "%s: writing to stdout: %s\n", prog,
			strerror(errno));
		rc = 1;
	}
	return rc;
}

static int do_write(struct bfp *b, uint64_t off)
{
	char *buf = malloc(ZCHUNK);
	uint64_t total = 0;
	int rc = 0;

	if (!buf)
		return 1;
	for (;;) {
		size_t n = 0;
		ssize_t r;

		/* whole chunks where possible: fewer read-modify-writes */
		while (n < ZCHUNK) {
			r = read(STDIN_FILENO, buf + n, ZCHUNK - n);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				fprintf(stderr, "%s: reading stdin: %s\n", prog,
					strerror(errno));
				free(buf);
				return 1;
			}
			if (r == 0)
				break;
			n += (size_t)r;
		}
		if (n == 0)
			break;
		r = bfp_write(b, buf, n, off);
		if (r < 0) {
			fprintf(stderr, "%s: write at %llu: %s\n", prog,
				(unsigned long long)off,
				r == -ENOSPC ? "past the end of the disk"
					     : strerror((int)-r));
			rc = 1;
			break;
		}
		off += n;
		total += n;
		if (n < ZCHUNK)
			break;
	}
	free(buf);
	log_info("wrote %llu bytes", (unsigned long long)total);
	return rc;
}

static void on_event(struct pvio_blkfront *dev, enum pvio_blkfront_event ev,
		     void *opaque)
{
	struct bfp *b = opaque;
	struct pvio_blkfront_info i;

	if (ev == PVIO_BLKFRONT_EV_RESIZE) {
		pvio_blkfront_info(dev, &i);
		__atomic_store_n(&b->size, i.size, __ATOMIC_RELAXED);
		log_warn("%s: resized to %llu bytes", b->vdev,
			 (unsigned long long)i.size);
	} else if (ev == PVIO_BLKFRONT_EV_DEAD) {
		log_err("%s: the disk is dead: %s", b->vdev,
			pvio_blkfront_error(dev));
	}
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: pvio-blkfront [options] MODE ...\n"
"A userspace Xen PV block frontend (blkif), run as a domain.\n\n"
"  info                          the disk's size, sector size, features\n"
"  read OFFSET LEN               LEN bytes at OFFSET to stdout\n"
"  write OFFSET                  stdin (to EOF) at OFFSET\n"
"  flush                         make written data durable\n"
"  discard OFFSET LEN [--secure] unmap a range (sector-aligned)\n"
"  fuse MOUNTPOINT               export the disk as MOUNTPOINT/<vdev>\n"
"                                (until unmounted, SIGTERM or SIGINT)\n\n"
"  --platform SPEC    sim, sim:DIR or xen (default: $PVIO_PLATFORM, else sim)\n"
"  --domid N          the domain to be (default: $PVIO_DOMID)\n"
"  --vdev NAME        xvda (default), xvdb1, or a virtual-device number\n"
"  --queues N         queues to ask for (1..16, default 1; fuse: 4)\n"
"  --depth N          requests in flight per queue (1..512, default 64)\n"
"  --ring-pages N     at most N ring pages (1, 2, 4, 8, 16; default 16)\n"
"  --indirect N|off   segments per indirect request (12..1024, default 32)\n"
"  --timeout MS       handshake timeout (default 10000)\n"
"  --log-level L      err, warn (default), info, debug\n"
"  --version, -h, --help\n"
"  fuse: --discard-zeroes  trust discarded ranges to read back as zeroes\n"
"        --threads N       FUSE worker threads (default 8)\n"
"        -o OPTS           more FUSE mount options\n"
"OFFSET and LEN take k, M, G suffixes (binary).\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "platform", required_argument, NULL, 'P' },
		{ "domid", required_argument, NULL, 'd' },
		{ "vdev", required_argument, NULL, 'v' },
		{ "queues", required_argument, NULL, 'q' },
		{ "depth", required_argument, NULL, 'D' },
		{ "ring-pages", required_argument, NULL, 'r' },
		{ "indirect", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 't' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "secure", no_argument, NULL, 's' },
		{ "discard-zeroes", no_argument, NULL, 'z' },
		{ "threads", required_argument, NULL, 'T' },
		PVIO_VERSION_OPTION,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct pvio_blkfront_opts o = { .flags = PVIO_BLKFRONT_F_THREAD };
	const char *spec = NULL, *vdev = "xvda", *mode, *fuse_opts = NULL;
	unsigned int domid = 0, devid, threads = 8, u;
	bool have_domid = false, secure = false, dzero = false, have_q = false;
	bool have_threads = false;
	char err[PVIO_BLKFRONT_ERR_MAX];
	uint64_t off = 0, len = 0;
	struct pvio_platform *p = NULL;
	struct pvio_xs *x = NULL;
	sigset_t sigs, old;
	int c, level = PVIO_LOG_WARN, rc, ret = 1;
	struct bfp b;

	memset(&b, 0, sizeof(b));
	opterr = 0;	/* our own one-line messages */
	while ((c = getopt_long(argc, argv, ":ho:", lo, NULL)) != -1) {
		switch (c) {
		case PVIO_OPT_VERSION:
			pvio_version("pvio-blkfront");
		case 'P':
			spec = optarg;
			break;
		case 'd':
			if (pvio_parse_uint(optarg, 0, 0x7fef, &domid))
				die_usage("bad --domid '%s' (0..32751)",
					  optarg);
			have_domid = true;
			break;
		case 'v':
			vdev = optarg;
			break;
		case 'q':
			if (pvio_parse_uint(optarg, 1, PVIO_BLKFRONT_MAX_QUEUES,
					    &o.max_queues))
				die_usage("bad --queues '%s' (1..16)", optarg);
			have_q = true;
			break;
		case 'D':
			if (pvio_parse_uint(optarg, 1, PVIO_BLKFRONT_MAX_DEPTH,
					    &o.queue_depth))
				die_usage("bad --depth '%s' (1..512)", optarg);
			break;
		case 'r':
			if (pvio_parse_uint(optarg, 1, 16, &u) || (u & (u - 1)))
				die_usage("bad --ring-pages '%s' "
					  "(1, 2, 4, 8, 16)", optarg);
			o.max_ring_pages = u;
			break;
		case 'i':
			if (strcmp(optarg, "off") == 0)
				u = PVIO_BLKFRONT_NO_INDIRECT;
			else if (pvio_parse_uint(optarg, 12, 1024, &u))
				die_usage("bad --indirect '%s' "
					  "(12..1024 or off)", optarg);
			o.max_indirect_segments = u;
			break;
		case 't':
			if (pvio_parse_uint(optarg, 1, 3600000, &o.timeout_ms))
				die_usage("bad --timeout '%s' (ms)", optarg);
			break;
		case 'l':
			level = pvio_log_parse_level(optarg);
			if (level < 0)
				die_usage("bad --log-level '%s'", optarg);
			break;
		case 's':
			secure = true;
			break;
		case 'z':
			dzero = true;
			break;
		case 'T':
			if (pvio_parse_uint(optarg, 1, 64, &threads))
				die_usage("bad --threads '%s' (1..64)", optarg);
			have_threads = true;
			break;
		case 'o':
			fuse_opts = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			pvio_usage_bad_option(prog, c, argv);
		}
	}
	if (optind >= argc)
		die_usage("no mode (info, read, write, flush, discard, fuse)");
	mode = argv[optind++];
	argc -= optind;
	argv += optind;
	if (strcmp(mode, "info") == 0 || strcmp(mode, "flush") == 0) {
		if (argc != 0)
			die_usage("%s takes no arguments", mode);
	} else if (strcmp(mode, "read") == 0 || strcmp(mode, "discard") == 0) {
		if (argc != 2)
			die_usage("%s OFFSET LEN", mode);
		if (pvio_parse_size(argv[0], &off))
			die_usage("bad OFFSET '%s'", argv[0]);
		if (pvio_parse_size(argv[1], &len))
			die_usage("bad LEN '%s'", argv[1]);
	} else if (strcmp(mode, "write") == 0) {
		if (argc != 1)
			die_usage("write OFFSET (the data on stdin)");
		if (pvio_parse_size(argv[0], &off))
			die_usage("bad OFFSET '%s'", argv[0]);
	} else if (strcmp(mode, "fuse") == 0) {
#ifndef HAVE_FUSE
		die_usage("this pvio-blkfront was built without FUSE");
#endif
		if (argc != 1)
			die_usage("fuse MOUNTPOINT");
		if (access(argv[0], F_OK) != 0)
			die_usage("mount point '%s': %s", argv[0],
				  strerror(errno));
	} else {
		die_usage("unknown mode '%s'", mode);
	}
	if (secure && strcmp(mode, "discard") != 0)
		die_usage("--secure is for discard");
	if ((dzero || fuse_opts || have_threads) && strcmp(mode, "fuse") != 0)
		die_usage("--discard-zeroes, --threads and -o are for fuse");
	if (pvio_ts_vdev_number(vdev, &devid))
		die_usage("bad --vdev '%s' (xvda..xvdp[1-15] or a number)",
			  vdev);
	if (!have_domid) {
		const char *e = getenv("PVIO_DOMID");

		if (e && *e && pvio_parse_uint(e, 0, 0x7fef, &domid))
			die_usage("bad $PVIO_DOMID '%s'", e);
		have_domid = e && *e;
	}
	if (!spec)
		spec = getenv("PVIO_PLATFORM");
	if (!have_domid && (!spec || strncmp(spec, "xen", 3) != 0))
		die_usage("which domain? --domid N or $PVIO_DOMID "
			  "(pvio-ctl run DOM -- pvio-blkfront ...)");
	if (strcmp(mode, "fuse") == 0 && !have_q)
		o.max_queues = 4;	/* up to the backend's */
	pvio_log_init(prog, level);

	rc = pvio_platform_open(&p, spec, domid, 0);
	if (rc) {
		fprintf(stderr, "%s: cannot attach to the %s platform as "
			"domain %u: %s\n", prog, spec ? spec : "default",
			domid, strerror(-rc));
		return 1;
	}
	rc = pvio_xs_open(&x, p);
	if (rc) {
		fprintf(stderr, "%s: cannot connect to xenstore: %s\n", prog,
			strerror(-rc));
		goto out;
	}
	snprintf(b.vdev, sizeof(b.vdev), "%s", vdev);
	o.event = on_event;
	o.opaque = &b;
	/* The library's control thread must not take SIGTERM/SIGINT: the
	 * FUSE loop needs them in its own threads. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	rc = pvio_blkfront_open(&b.dev, p, x, devid, &o, err, sizeof(err));
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		fprintf(stderr, "%s: cannot connect %s (vbd %u): %s\n", prog,
			vdev, devid, err);
		goto out;
	}
	pvio_blkfront_info(b.dev, &b.info);
	b.size = b.info.size;
	b.ss = b.info.sector_size;
	b.nq = b.info.nr_queues;
	b.discard_zeroes = dzero;
	pthread_rwlock_init(&b.rmw, NULL);
	for (u = 0; u < b.nq; u++) {
		pthread_mutex_init(&b.qs[u].lock, NULL);
		b.qs[u].q = pvio_blkfront_queue(b.dev, u);
	}
	log_info("%s: connected: %llu bytes, %u queue(s)", vdev,
		 (unsigned long long)b.size, b.nq);

	ret = 0;
	if (strcmp(mode, "info") == 0) {
		print_info(&b);
	} else if (strcmp(mode, "read") == 0) {
		ret = do_read(&b, off, len);
	} else if (strcmp(mode, "write") == 0) {
		ret = do_write(&b, off);
	} else if (strcmp(mode, "flush") == 0) {
		rc = bfp_flush(&b);
		if (rc == -EOPNOTSUPP) {
			log_info("%s: the backend has no cache to flush", vdev);
		} else if (rc) {
			fprintf(stderr, "%s: flush: %s\n", prog, strerror(-rc));
			ret = 1;
		}
	} else if (strcmp(mode, "discard") == 0) {
		unsigned int fl = secure ? PVIO_BLKFRONT_IO_SECURE : 0;

		rc = pvio_blkfront_discard(b.qs[0].q, off, len, fl);
		if (rc) {
			fprintf(stderr, "%s: discard: %s\n", prog,
				rc == -EOPNOTSUPP
					? "the backend does not offer it"
				: rc == -EINVAL
					? "not sector-aligned, or past the end"
					: strerror(-rc));
			ret = 1;
		}
	}
#ifdef HAVE_FUSE
	else if (strcmp(mode, "fuse") == 0) {
		rc = bfp_fuse_run(&b, argv[0], fuse_opts, threads);
		ret = rc ? 1 : 0;
	}
#endif
	if (pvio_blkfront_dead(b.dev) && ret == 0) {
		fprintf(stderr, "%s: %s\n", prog, pvio_blkfront_error(b.dev));
		ret = 1;
	}
	rc = pvio_blkfront_close(b.dev);
	if (rc)
		log_warn("%s: the backend did not close in time", vdev);
	for (u = 0; u < b.nq; u++)
		pthread_mutex_destroy(&b.qs[u].lock);
	pthread_rwlock_destroy(&b.rmw);
out:
	pvio_xs_close(x);
	pvio_platform_close(p);
	return ret;
}
