// SPDX-License-Identifier: MIT
/*
 * In-flight records (journal.h): create, check, recover, sweep. Called on
 * the main thread only (queue set-up and teardown); the hot-path stores
 * are journal.h's inline functions, run by the queue's worker.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "journal.h"
#include "util.h"

#define JRNL_MAGIC	0x4a4f5650u	/* "PVOJ" */
#define JRNL_VERSION	1u

static struct jrnl *open_records;

static void boot_id(char out[40])
{
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = -1;

	memset(out, 0, 40);
	if (fd >= 0) {
		n = read(fd, out, 39);
		close(fd);
	}
	if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = 0;
	if (n <= 0)
		snprintf(out, 40, "unknown");
}

static uint32_t hdr_crc(const struct jrnl_hdr *h)
{
	uLong c = crc32(0L, Z_NULL, 0);

	c = crc32(c, (const Bytef *)h->boot_id, sizeof(h->boot_id));
	c = crc32(c, (const Bytef *)&h->id, sizeof(h->id));
	return (uint32_t)c;
}

static size_t jrnl_size(const struct jrnl_ident *id)
{
	return JRNL_HDR_BYTES + (size_t)id->nr_ents * sizeof(struct jrnl_ent);
}

static void jrnl_path(char *buf, size_t len, const char *dir,
		      const struct jrnl_ident *id)
{
	snprintf(buf, len, "%s/%s-%u-%u-q%u.journal", dir, id->kind, id->domid,
		 id->devid, id->queue);
}

/* Why a record on disk is not this ring's, or NULL if it is. */
static const char *refuse_why(const struct jrnl_hdr *h, size_t size,
			      const struct jrnl_ident *id, const char *boot)
{
	if (size < JRNL_HDR_BYTES)
		return "truncated";
	if (h->magic != JRNL_MAGIC)
		return "bad magic";
	if (h->version != JRNL_VERSION)
		return "unknown version";
	if (h->hdr_size != JRNL_HDR_BYTES || hdr_crc(h) != h->crc)
		return "bad checksum";
	if (strncmp(h->boot_id, boot, sizeof(h->boot_id)) != 0)
		return "written before the host rebooted";
	if (memcmp(h->id.kind, id->kind, sizeof(id->kind)) ||
	    h->id.domid != id->domid || h->id.devid != id->devid ||
	    h->id.queue != id->queue)
		return "of another device";
	if (h->id.nr_pages != id->nr_pages || h->id.port != id->port ||
	    memcmp(h->id.refs, id->refs, sizeof(id->refs)))
		return "of other rings (ring refs or event channel differ)";
	if (h->id.nr_ents != id->nr_ents || h->id.req_size != id->req_size ||
	    size != jrnl_size(id))
		return "of another ring geometry";
	return NULL;
}

/* @fresh: a file just made (all zeroes): its entries are not written,
 * so that the pages of slots never used are never touched (a vif's two
 * records are 72 KiB, mostly of slots an idle guest does not use) */
static void init_hdr(struct jrnl *j, const struct jrnl_ident *id,
		     const char *boot, uint32_t live_rsp, bool fresh)
{
	struct jrnl_hdr *h = j->h;

	memset(h, 0, JRNL_HDR_BYTES);
	if (!fresh)
		memset(j->ent, 0, (size_t)id->nr_ents * sizeof(*j->ent));
	h->magic = JRNL_MAGIC;
	h->version = JRNL_VERSION;
	h->hdr_size = JRNL_HDR_BYTES;
	memcpy(h->boot_id, boot, sizeof(h->boot_id));
	h->id = *id;
	h->crc = hdr_crc(h);
	h->req_cons = live_rsp;
	h->rsp_prod_pvt = live_rsp;
}

void jrnl_reset(struct jrnl *j, uint32_t live_rsp)
{
	struct jrnl_ident id = j->h->id;
	char boot[40];

	memcpy(boot, j->h->boot_id, sizeof(boot));
	init_hdr(j, &id, boot, live_rsp, false);
}

int jrnl_open(const char *dir, const struct jrnl_ident *id, bool recover,
	      uint32_t live_rsp, struct jrnl **out, bool *recovered)
{
	struct jrnl *j = calloc(1, sizeof(*j));
	size_t size = jrnl_size(id);
	char boot[40];
	struct stat st;
	void *m;
	int fd, rc;

	*recovered = false;
	if (!j)
		return -ENOMEM;
	boot_id(boot);
	jrnl_path(j->path, sizeof(j->path), dir, id);
	mkdir(dir, 0700);
	fd = open(j->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0 && recover && fstat(fd, &st) == 0) {
		const char *why = "truncated";

		m = MAP_FAILED;
		if ((size_t)st.st_size >= JRNL_HDR_BYTES) {
			m = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE,
				 MAP_SHARED, fd, 0);
			why = m == MAP_FAILED ? strerror(errno)
				: refuse_why(m, (size_t)st.st_size, id, boot);
		}
		if (!why) {
			close(fd);
			j->h = m;
			j->ent = (struct jrnl_ent *)((char *)m + JRNL_HDR_BYTES);
			j->map_len = size;
			*recovered = true;
			goto done;
		}
		log_warn("%s: refusing the in-flight record: %s; attaching at the live ring indices",
			 j->path, why);
		if (m != MAP_FAILED)
			munmap(m, (size_t)st.st_size);
	}
	if (fd >= 0)
		close(fd);
	/* a new record, put in place whole (never a half-written one) */
	unlink(j->path);
	fd = open(j->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
		  0600);
	if (fd < 0) {
		rc = -errno;
		goto fail;
	}
	if (ftruncate(fd, (off_t)size) < 0) {
		rc = -errno;
		close(fd);
		unlink(j->path);
		goto fail;
	}
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		rc = -errno;
		unlink(j->path);
		goto fail;
	}
	j->h = m;
	j->ent = (struct jrnl_ent *)((char *)m + JRNL_HDR_BYTES);
	j->map_len = size;
	init_hdr(j, id, boot, live_rsp, true);
done:
	j->next = open_records;
	open_records = j;
	*out = j;
	return 0;
fail:
	free(j);
	return rc;
}

static int by_seq(const void *a, const void *b, void *arg)
{
	const struct jrnl_ent *e = arg;
	uint32_t sa = e[*(const unsigned int *)a].seq;
	uint32_t sb = e[*(const unsigned int *)b].seq;

	return (int32_t)(sa - sb) < 0 ? -1 : (sa == sb ? 0 : 1);
}

int jrnl_recover(struct jrnl *j, uint32_t req_prod, uint32_t rsp_prod,
		 unsigned int *slots, unsigned int *nr, const char **why)
{
	struct jrnl_hdr *h = j->h;
	uint32_t n = h->id.nr_ents, cons = h->req_cons, pvt = h->rsp_prod_pvt;
	uint32_t owed = cons - pvt;
	unsigned int i, k = 0;

	*nr = 0;
	/* responses: written up to pvt, published up to rsp_prod <= pvt */
	if (pvt - rsp_prod > n) {
		*why = "its responses disagree with the ring's";
		return -EPROTO;
	}
	if (owed > n || req_prod - cons > n) {
		*why = "its consumed index disagrees with the ring's";
		return -EPROTO;
	}
	for (i = 0; i < n; i++) {
		struct jrnl_ent *e = &j->ent[i];

		if (!(e->state & JE_INFLIGHT))
			continue;
		/* consumed: only once req_cons passed it (a request may stay
		 * in flight while many later ones come and go: no lower
		 * bound) */
		if ((int32_t)(cons - e->cons_idx) <= 0) {
			e->state = JE_FREE;
			continue;
		}
		/* answered: only once rsp_prod_pvt passed its slot */
		if ((e->state & JE_ANSWERING) &&
		    (int32_t)(pvt - e->rsp_idx) > 0) {
			e->state = JE_FREE;
			continue;
		}
		e->state &= (uint8_t)~JE_ANSWERING;
		if (k < n)
			slots[k++] = i;
	}
	if (k != owed) {
		*why = "its requests in flight disagree with its indices";
		return -EPROTO;
	}
	qsort_r(slots, k, sizeof(*slots), by_seq, j->ent);
	*nr = k;
	return 0;
}

void jrnl_close(struct jrnl *j, bool remove, bool unmap)
{
	struct jrnl **pp;

	if (!j)
		return;
	for (pp = &open_records; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	if (remove)
		unlink(j->path);
	if (unmap)
		munmap(j->h, j->map_len);
	free(j);
}


static bool is_open(const char *path)
{
	struct jrnl *j;

	for (j = open_records; j; j = j->next)
		if (strcmp(j->path, path) == 0)
			return true;
	return false;
}

void jrnl_sweep(const char *dir,
		bool (*exists)(void *opaque, const char *kind,
			       unsigned int domid, unsigned int devid),
		void *opaque)
{
	DIR *dp = opendir(dir);
	struct dirent *de;

	if (!dp)
		return;
	while ((de = readdir(dp))) {
		char path[PVIO_PATH_BUF], kind[16];
		unsigned int dom, dev, q;
		size_t len = strlen(de->d_name);
		int used = 0;

		if (len < 9 || strcmp(de->d_name + len - 8, ".journal"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (is_open(path))
			continue;
		if (sscanf(de->d_name, "%15[a-z_]-%u-%u-q%u.journal%n", kind,
			   &dom, &dev, &q, &used) != 4 || (size_t)used != len) {
			log_warn("%s: removing a file that is no in-flight record",
				 path);
		} else if (exists(opaque, kind, dom, dev)) {
			continue;
		} else {
			log_warn("%s: removing the in-flight record of a device that no longer exists",
				 path);
		}
		unlink(path);
	}
	closedir(dp);
}

/* ---- fault points ---------------------------------------------------------- */

int pvio_fault_armed;
static char fault_name[32];
static long fault_left;

void pvio_fault_init(void)
{
	const char *s = getenv("PVIO_FAULT");
	const char *colon;
	char *end;

	if (!s || !*s)
		return;
	colon = strchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(fault_name))
		return;
	fault_left = strtol(colon + 1, &end, 10);
	if (*end || fault_left <= 0)
		return;
	memcpy(fault_name, s, (size_t)(colon - s));
	fault_name[colon - s] = 0;
	log_warn("test fault point armed: abort at hit %ld of '%s'", fault_left,
		 fault_name);
	pvio_fault_armed = 1;
}

void pvio__fault_hit(const char *name)
{
	if (strcmp(name, fault_name) != 0)
		return;
	if (__atomic_sub_fetch(&fault_left, 1, __ATOMIC_RELAXED) == 0)
		abort();
}
