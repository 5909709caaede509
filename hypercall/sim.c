// SPDX-License-Identifier: MIT
/*
 * The sim platform provider: this process attached to a pvio-simhv world as
 * a domain.
 *
 * Control operations are calls to pvio-simhv over a SOCK_SEQPACKET socket.
 * The two operations that must be cheap are not: notify writes the peer's
 * eventfd (one system call, like the hypercall), and grant copy runs here
 * against the granter's shared grant table under each entry's active lock
 * (see sim-gnttab.h), like the hypervisor's copy.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <pvio/base.h>

#include "private.h"
#include "sim-gnttab.h"
#include "sim-proto.h"
#include "sim-toolstack.h"
#include "sim-util.h"

struct sim_port {
	int recv_fd;		/* -1: not ours */
	int send_fd;
};

/* Another domain's grant table and memory, mapped for copies and maps. */
struct sim_foreign {
	uint32_t domid;
	uint64_t generation;
	int mem_fd;
	void *gt_base;
	size_t gt_len;
	void *mem_base;
	size_t mem_len;
	struct sim_gt gt;
	struct sim_foreign *open_next;		/* c->open: published views */
	struct sim_foreign *retired_next;
};

struct sim_mapping {
	struct sim_mapping *next;
	void *addr;
	uint32_t count;
	uint32_t dom;
	uint64_t generation;
	bool writable;
	uint32_t refs[];
};

struct sim_share {
	struct sim_share *next;
	uint32_t first_page;
	uint32_t count;
};

struct sim_ctx {
	char dir[4096];
	int sock;
	pthread_mutex_t lock;	/* calls, tables; not the copy fast path */
	uint32_t conn_id;
	uint64_t generation;
	int epfd;
	struct sim_port ports[SIM_MAX_PORTS];
	int pend[64];
	unsigned int npend, pend_pos;

	int mem_fd;
	void *mem_base;
	size_t mem_len;
	uint32_t nr_pages;

	struct sim_share *shares;
	struct sim_mapping *maps;
	struct sim_foreign **foreign;	/* [SIM_MAX_DOMID + 1] */
	struct sim_foreign *open;	/* every view in foreign[] */
	/*
	 * Views no longer published (their domain died, or came back) that
	 * a copy running on another thread may still read: freed once no
	 * copy is running (copiers == 0 after they were unpublished).
	 */
	struct sim_foreign *retired;
	uint32_t nr_retired;
	uint32_t copiers;		/* sim_gnt_copy calls running */

	union {
		struct sim_msg_hdr hdr;
		char buf[SIM_MAX_MSG];
	} msg;
};

static inline struct sim_ctx *CTX(struct pvio_platform *p)
{
	return p->ctx;
}

static void foreign_reap_locked(struct sim_ctx *c);

static void close_fds(int *fds, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

/*
 * One call to simhv; hold c->lock. The request payload is @req; the reply
 * payload is copied to @rep (up to @repcap bytes). Return the reply's rc
 * (>= 0 is success) or -errno for transport errors.
 */
static int sim_call(struct sim_ctx *c, uint32_t op, const void *req,
		    size_t reqlen, void *rep, size_t repcap, int *fds,
		    unsigned int *nfds)
{
	int lfds[SIM_MAX_FDS];
	unsigned int n = 0;
	ssize_t got;
	int rc;

	if (sizeof(struct sim_msg_hdr) + reqlen > sizeof(c->msg))
		return -E2BIG;
	c->msg.hdr.op = op;
	c->msg.hdr.len = (uint32_t)(sizeof(struct sim_msg_hdr) + reqlen);
	c->msg.hdr.rc = 0;
	c->msg.hdr.pad = 0;
	if (reqlen)
		memcpy(c->msg.buf + sizeof(struct sim_msg_hdr), req, reqlen);
	rc = pvio__sim_send(c->sock, c->msg.buf, c->msg.hdr.len, NULL, 0);
	if (rc)
		return rc == -EPIPE ? -ENOTCONN : rc;
	got = pvio__sim_recv(c->sock, c->msg.buf, sizeof(c->msg), lfds, &n);
	if (got == 0)
		return -ENOTCONN;
	if (got < 0)
		return (int)got;
	if ((size_t)got < sizeof(struct sim_msg_hdr) ||
	    c->msg.hdr.op != op) {
		close_fds(lfds, n);
		return -EPROTO;
	}
	if (rep && repcap) {
		size_t plen = (size_t)got - sizeof(struct sim_msg_hdr);

		memset(rep, 0, repcap);
		memcpy(rep, c->msg.buf + sizeof(struct sim_msg_hdr),
		       plen < repcap ? plen : repcap);
	}
	if (fds) {
		memcpy(fds, lfds, sizeof(lfds));
		*nfds = n;
	} else {
		close_fds(lfds, n);
	}
	return c->msg.hdr.rc;
}

/* ---- event channels ---------------------------------------------------- */

static int sim_evtchn_fd(struct pvio_platform *p)
{
	return CTX(p)->epfd;
}

static int port_install(struct sim_ctx *c, uint32_t port, int *fds,
			unsigned int nfds)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = port };

	if (nfds != 2 || port == 0 || port >= SIM_MAX_PORTS ||
	    c->ports[port].recv_fd >= 0) {
		close_fds(fds, nfds);
		return -EPROTO;
	}
	if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fds[0], &ev) < 0) {
		int rc = -errno;

		close_fds(fds, nfds);
		return rc;
	}
	c->ports[port].recv_fd = fds[0];
	c->ports[port].send_fd = fds[1];
	return (int)port;
}

static int sim_evtchn_open_port(struct pvio_platform *p, uint32_t op,
				unsigned int rdom, uint32_t rport)
{
	struct sim_ctx *c = CTX(p);
	struct sim_evtchn_req req = { .remote_dom = rdom, .port = rport };
	struct sim_evtchn_reply rep;
	int fds[SIM_MAX_FDS];
	unsigned int nfds = 0;
	int rc;

	if (rdom == PVIO_DOMID_SELF)
		req.remote_dom = p->self;
	pthread_mutex_lock(&c->lock);
	rc = sim_call(c, op, &req, sizeof(req), &rep, sizeof(rep), fds, &nfds);
	if (rc >= 0)
		rc = port_install(c, rep.port, fds, nfds);
	else
		close_fds(fds, nfds);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

static int sim_evtchn_alloc_unbound(struct pvio_platform *p, unsigned int rdom)
{
	if (rdom > SIM_MAX_DOMID && rdom != PVIO_DOMID_SELF)
		return -EINVAL;
	return sim_evtchn_open_port(p, SIM_OP_EVTCHN_ALLOC, rdom, 0);
}

static int sim_evtchn_bind(struct pvio_platform *p, unsigned int rdom,
			   pvio_port_t rport)
{
	if ((rdom > SIM_MAX_DOMID && rdom != PVIO_DOMID_SELF) || rport == 0 ||
	    rport >= SIM_MAX_PORTS)
		return -EINVAL;
	return sim_evtchn_open_port(p, SIM_OP_EVTCHN_BIND, rdom, rport);
}

static int sim_evtchn_close(struct pvio_platform *p, pvio_port_t port)
{
	struct sim_ctx *c = CTX(p);
	struct sim_evtchn_req req = { .port = port };
	unsigned int i;
	int rc;

	if (port == 0 || port >= SIM_MAX_PORTS)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	if (c->ports[port].recv_fd < 0) {
		pthread_mutex_unlock(&c->lock);
		return -EINVAL;
	}
	rc = sim_call(c, SIM_OP_EVTCHN_CLOSE, &req, sizeof(req), NULL, 0,
		      NULL, NULL);
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, c->ports[port].recv_fd, NULL);
	close(c->ports[port].recv_fd);
	close(c->ports[port].send_fd);
	c->ports[port].recv_fd = c->ports[port].send_fd = -1;
	/* drop it from the pending queue */
	for (i = c->pend_pos; i < c->npend; i++)
		if (c->pend[i] == (int)port)
			c->pend[i] = -1;
	/* a backend letting go of a guest: the guest may be dead */
	foreign_reap_locked(c);
	pthread_mutex_unlock(&c->lock);
	return rc < 0 ? rc : 0;
}

static int sim_evtchn_notify(struct pvio_platform *p, pvio_port_t port)
{
	struct sim_ctx *c = CTX(p);
	uint64_t one = 1;
	int fd;

	if (pvio_unlikely(port == 0 || port >= SIM_MAX_PORTS))
		return -EINVAL;
	fd = c->ports[port].send_fd;
	if (pvio_unlikely(fd < 0))
		return -EINVAL;
	/* The hypercall: one write. EAGAIN means the counter is saturated,
	 * i.e. the event is pending already. */
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

static int sim_evtchn_pending(struct pvio_platform *p)
{
	struct sim_ctx *c = CTX(p);
	struct epoll_event evs[64];
	int n, i;

	for (;;) {
		while (c->pend_pos < c->npend) {
			int port = c->pend[c->pend_pos++];

			if (port > 0)
				return port;
		}
		n = epoll_wait(c->epfd, evs, 64, 0);
		if (n < 0)
			return errno == EINTR ? -EAGAIN : -errno;
		if (n == 0)
			return -EAGAIN;
		c->npend = c->pend_pos = 0;
		for (i = 0; i < n; i++) {
			uint32_t port = evs[i].data.u32;
			uint64_t v;

			if (port >= SIM_MAX_PORTS || c->ports[port].recv_fd < 0)
				continue;
			/* Clear the event before reporting it: a notify that
			 * lands after this read raises a new one. */
			if (read(c->ports[port].recv_fd, &v, sizeof(v)) < 0 &&
			    errno == EAGAIN)
				continue;
			c->pend[c->npend++] = (int)port;
		}
	}
}

static int sim_evtchn_unmask(struct pvio_platform *p, pvio_port_t port)
{
	/* Events are edge-like counters: nothing stays masked. */
	if (port == 0 || port >= SIM_MAX_PORTS ||
	    CTX(p)->ports[port].recv_fd < 0)
		return -EINVAL;
	return 0;
}

static int sim_evtchn_status(struct pvio_platform *p, pvio_port_t port,
			     struct pvio_evtchn_status *st)
{
	struct sim_ctx *c = CTX(p);
	struct sim_evtchn_req req = { .port = port };
	struct sim_evtchn_reply rep;
	int rc;

	if (port == 0 || port >= SIM_MAX_PORTS)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	rc = sim_call(c, SIM_OP_EVTCHN_STATUS, &req, sizeof(req), &rep,
		      sizeof(rep), NULL, NULL);
	pthread_mutex_unlock(&c->lock);
	if (rc < 0)
		return rc;
	st->state = (enum pvio_evtchn_state)rep.state;
	st->remote_dom = rep.remote_dom;
	st->remote_port = rep.remote_port;
	return 0;
}

/* ---- grants: granting side --------------------------------------------- */

static int sim_gnt_share(struct pvio_platform *p, unsigned int dom,
			 unsigned int count, bool writable, pvio_gref_t *refs,
			 void **addr)
{
	struct sim_ctx *c = CTX(p);
	struct sim_gnt_share_req req = {
		.dom = dom, .count = count, .writable = writable,
	};
	struct {
		struct sim_gnt_share_reply r;
		uint32_t refs[SIM_MAX_REFS];
	} rep;
	struct sim_share *sh;
	int rc;

	if (count > SIM_MAX_REFS)
		return -E2BIG;
	if (dom > SIM_MAX_DOMID)
		return -EINVAL;
	sh = malloc(sizeof(*sh));
	if (!sh)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	rc = sim_call(c, SIM_OP_GNT_SHARE, &req, sizeof(req), &rep,
		      sizeof(rep), NULL, NULL);
	if (rc >= 0 && (rep.r.count != count ||
			rep.r.first_page >= c->nr_pages ||
			count > c->nr_pages - rep.r.first_page))
		rc = -EPROTO;
	if (rc < 0) {
		pthread_mutex_unlock(&c->lock);
		free(sh);
		return rc;
	}
	sh->first_page = rep.r.first_page;
	sh->count = count;
	sh->next = c->shares;
	c->shares = sh;
	pthread_mutex_unlock(&c->lock);
	memcpy(refs, rep.refs, sizeof(uint32_t) * count);
	*addr = (char *)c->mem_base + (size_t)sh->first_page * PVIO_PAGE_SIZE;
	return 0;
}

static int sim_gnt_unshare(struct pvio_platform *p, void *addr,
			   unsigned int count)
{
	struct sim_ctx *c = CTX(p);
	struct sim_gnt_unshare_req req;
	struct sim_share **pp, *sh;
	uintptr_t off;
	int rc;

	if ((char *)addr < (char *)c->mem_base ||
	    (char *)addr >= (char *)c->mem_base + c->mem_len)
		return -EINVAL;
	off = (uintptr_t)((char *)addr - (char *)c->mem_base);
	if (off % PVIO_PAGE_SIZE)
		return -EINVAL;
	req.first_page = (uint32_t)(off / PVIO_PAGE_SIZE);
	req.count = count;
	pthread_mutex_lock(&c->lock);
	for (pp = &c->shares; (sh = *pp); pp = &sh->next)
		if (sh->first_page == req.first_page && sh->count == count)
			break;
	if (!sh) {
		pthread_mutex_unlock(&c->lock);
		return -EINVAL;
	}
	rc = sim_call(c, SIM_OP_GNT_UNSHARE, &req, sizeof(req), NULL, 0,
		      NULL, NULL);
	if (rc >= 0) {
		*pp = sh->next;
		free(sh);
	}
	pthread_mutex_unlock(&c->lock);
	return rc < 0 ? rc : 0;
}

/* ---- grants: foreign domains --------------------------------------------- */

static void foreign_free(struct sim_foreign *f)
{
	if (f->gt_base)
		munmap(f->gt_base, f->gt_len);
	if (f->mem_base)
		munmap(f->mem_base, f->mem_len);
	if (f->mem_fd >= 0)
		close(f->mem_fd);
	free(f);
}

/*
 * Let go of the views of dead domains (hold c->lock): unpublish them,
 * then free every retired view once no copy can be reading one. A copy
 * counts itself in copiers before it looks a view up, and we look at
 * copiers after unpublishing (both sequentially consistent): a copy we do
 * not see running can only find the new pointer. Without this a backend
 * kept every dead guest's memory mapped (and its fd open) until it closed
 * its handle.
 */
static void foreign_reap_locked(struct sim_ctx *c)
{
	struct sim_foreign **pp = &c->open, *f;

	while ((f = *pp)) {
		if (!sim_gt_dead(&f->gt)) {
			pp = &f->open_next;
			continue;
		}
		*pp = f->open_next;
		__atomic_store_n(&c->foreign[f->domid], NULL, __ATOMIC_SEQ_CST);
		f->retired_next = c->retired;
		c->retired = f;
		/* sequentially consistent, as the copiers load below: a
		 * copy that ends unseen by us sees this and reaps */
		__atomic_store_n(&c->nr_retired, c->nr_retired + 1,
				 __ATOMIC_SEQ_CST);
	}
	if (!c->retired || __atomic_load_n(&c->copiers, __ATOMIC_SEQ_CST))
		return;
	while ((f = c->retired)) {
		c->retired = f->retired_next;
		foreign_free(f);
	}
	__atomic_store_n(&c->nr_retired, 0, __ATOMIC_RELAXED);
}

/* Open (or re-open) domain @dom's grant table and memory; hold c->lock. */
static int foreign_open_locked(struct sim_ctx *c, uint32_t dom,
			       struct sim_foreign **out)
{
	struct sim_foreign *old = c->foreign[dom], *f;
	struct sim_foreign_req req = { .dom = dom };
	struct sim_foreign_reply rep;
	int fds[SIM_MAX_FDS];
	unsigned int nfds = 0;
	int rc;

	if (old && !sim_gt_dead(&old->gt)) {
		*out = old;
		return 0;
	}
	rc = sim_call(c, SIM_OP_FOREIGN_OPEN, &req, sizeof(req), &rep,
		      sizeof(rep), fds, &nfds);
	if (rc < 0) {
		close_fds(fds, nfds);
		return rc;
	}
	if (nfds != 2 || rep.nr_ents == 0 || rep.nr_pages == 0) {
		close_fds(fds, nfds);
		return -EPROTO;
	}
	f = calloc(1, sizeof(*f));
	if (!f) {
		close_fds(fds, nfds);
		return -ENOMEM;
	}
	f->domid = dom;
	f->generation = rep.generation;
	f->mem_fd = fds[1];
	f->gt_len = sim_gt_size(rep.nr_ents);
	f->mem_len = (size_t)rep.nr_pages * PVIO_PAGE_SIZE;
	f->gt_base = mmap(NULL, f->gt_len, PROT_READ | PROT_WRITE, MAP_SHARED,
			  fds[0], 0);
	close(fds[0]);
	if (f->gt_base == MAP_FAILED) {
		f->gt_base = NULL;
		rc = -errno;
		goto fail;
	}
	f->mem_base = mmap(NULL, f->mem_len, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_NORESERVE, f->mem_fd, 0);
	if (f->mem_base == MAP_FAILED) {
		f->mem_base = NULL;
		rc = -errno;
		goto fail;
	}
	sim_gt_view(&f->gt, f->gt_base);
	if (f->gt.hdr->magic != SIM_GT_MAGIC ||
	    f->gt.nr_ents != rep.nr_ents || f->gt.nr_pages != rep.nr_pages) {
		rc = -EPROTO;
		goto fail;
	}
	/* Copies on other threads may still use the old view: retire it
	 * (foreign_reap_locked frees it when no copy runs). */
	if (old)
		foreign_reap_locked(c);
	__atomic_store_n(&c->foreign[dom], f, __ATOMIC_SEQ_CST);
	f->open_next = c->open;
	c->open = f;
	*out = f;
	return 0;
fail:
	foreign_free(f);
	return rc;
}

static struct sim_foreign *foreign_get(struct sim_ctx *c, uint32_t dom,
				       int *err)
{
	struct sim_foreign *f;

	if (pvio_unlikely(dom > SIM_MAX_DOMID)) {
		*err = -EINVAL;
		return NULL;
	}
	/* sequentially consistent: ordered after the copiers increment a
	 * copy made, as foreign_reap_locked() relies on */
	f = __atomic_load_n(&c->foreign[dom], __ATOMIC_SEQ_CST);
	if (pvio_likely(f && !sim_gt_dead(&f->gt)))
		return f;
	pthread_mutex_lock(&c->lock);
	*err = foreign_open_locked(c, dom, &f);
	pthread_mutex_unlock(&c->lock);
	return *err ? NULL : f;
}

/* ---- grants: mapping side ---------------------------------------------- */

static int sim_unmap_call(struct sim_ctx *c, uint32_t dom, uint64_t gen,
			  uint32_t count, const uint32_t *refs, bool writable)
{
	struct {
		struct sim_gnt_unmap_req r;
		uint32_t refs[SIM_MAX_REFS];
	} req;

	req.r.dom = dom;
	req.r.count = count;
	req.r.generation = gen;
	req.r.writable = writable;
	req.r.pad = 0;
	memcpy(req.refs, refs, sizeof(uint32_t) * count);
	return sim_call(c, SIM_OP_GNT_UNMAP, &req,
			sizeof(req.r) + sizeof(uint32_t) * count, NULL, 0,
			NULL, NULL);
}

static int sim_gnt_map(struct pvio_platform *p, unsigned int dom,
		       unsigned int count, const pvio_gref_t *refs,
		       bool writable, void **addr)
{
	struct sim_ctx *c = CTX(p);
	struct {
		struct sim_gnt_map_req r;
		uint32_t refs[SIM_MAX_REFS];
	} req;
	static __thread struct sim_gnt_map_reply rep;
	struct sim_foreign *f = NULL;
	struct sim_mapping *m;
	char *base;
	unsigned int i;
	int rc;

	if (count > SIM_MAX_REFS)
		return -E2BIG;
	if (dom > SIM_MAX_DOMID)
		return -EINVAL;
	m = malloc(sizeof(*m) + sizeof(uint32_t) * count);
	if (!m)
		return -ENOMEM;
	req.r.dom = dom;
	req.r.count = count;
	req.r.writable = writable;
	req.r.pad = 0;
	memcpy(req.refs, refs, sizeof(uint32_t) * count);

	pthread_mutex_lock(&c->lock);
	rc = foreign_open_locked(c, dom, &f);
	if (rc)
		goto out_unlock;
	rc = sim_call(c, SIM_OP_GNT_MAP, &req,
		      sizeof(req.r) + sizeof(uint32_t) * count, &rep,
		      sizeof(rep), NULL, NULL);
	if (rc < 0)
		goto out_unlock;
	if (rep.generation != f->generation) {
		/* the domain died and came back between the two calls */
		sim_unmap_call(c, dom, rep.generation, count, refs, writable);
		rc = -ESRCH;
		goto out_unlock;
	}
	base = mmap(NULL, (size_t)count * PVIO_PAGE_SIZE, PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED) {
		rc = -errno;
		goto out_unpin;
	}
	for (i = 0; i < count; i++) {
		void *pg = mmap(base + (size_t)i * PVIO_PAGE_SIZE,
				PVIO_PAGE_SIZE,
				PROT_READ | (writable ? PROT_WRITE : 0),
				MAP_SHARED | MAP_FIXED, f->mem_fd,
				(off_t)rep.frames[i] * PVIO_PAGE_SIZE);

		if (pg == MAP_FAILED) {
			rc = -errno;
			munmap(base, (size_t)count * PVIO_PAGE_SIZE);
			goto out_unpin;
		}
	}
	m->addr = base;
	m->count = count;
	m->dom = dom;
	m->generation = f->generation;
	m->writable = writable;
	memcpy(m->refs, refs, sizeof(uint32_t) * count);
	m->next = c->maps;
	c->maps = m;
	pthread_mutex_unlock(&c->lock);
	*addr = base;
	return 0;

out_unpin:
	sim_unmap_call(c, dom, f->generation, count, refs, writable);
out_unlock:
	pthread_mutex_unlock(&c->lock);
	free(m);
	return rc;
}

static int sim_gnt_unmap(struct pvio_platform *p, void *addr,
			 unsigned int count)
{
	struct sim_ctx *c = CTX(p);
	struct sim_mapping **pp, *m;
	int rc;

	pthread_mutex_lock(&c->lock);
	for (pp = &c->maps; (m = *pp); pp = &m->next)
		if (m->addr == addr && m->count == count)
			break;
	if (!m) {
		pthread_mutex_unlock(&c->lock);
		return -EINVAL;
	}
	*pp = m->next;
	munmap(m->addr, (size_t)m->count * PVIO_PAGE_SIZE);
	rc = sim_unmap_call(c, m->dom, m->generation, m->count, m->refs,
			    m->writable);
	foreign_reap_locked(c);
	pthread_mutex_unlock(&c->lock);
	free(m);
	return rc < 0 ? rc : 0;
}

/* ---- grant copy: the hypervisor's copy, run here ------------------------ */

struct copy_side {
	struct sim_foreign *f;
	uint32_t ref;
	bool write;
	char *ptr;
};

static int copy_resolve(struct sim_ctx *c, const union pvio_gnt_copy_ptr *gp,
			bool write, uint16_t len, struct copy_side *s)
{
	int err = 0;

	if (gp->foreign.offset >= PVIO_PAGE_SIZE ||
	    len > PVIO_PAGE_SIZE - gp->foreign.offset)
		return -EINVAL;
	s->f = foreign_get(c, gp->foreign.domid, &err);
	if (!s->f)
		return err;
	if (gp->foreign.ref >= s->f->gt.nr_ents)
		return -EINVAL;
	s->ref = gp->foreign.ref;
	s->write = write;
	return 0;
}

/* Locked: is the access allowed? Then point at the bytes. */
static int copy_check(struct sim_ctx *c, struct copy_side *s,
		      uint16_t offset, uint32_t self)
{
	int64_t frame;

	if (sim_gt_dead(&s->f->gt))
		return -ESRCH;
	frame = sim_gt_check(&s->f->gt, s->ref, self, s->write);
	if (frame < 0)
		return (int)frame;
	s->ptr = (char *)s->f->mem_base + (size_t)frame * PVIO_PAGE_SIZE +
		 offset;
	return 0;
}

static inline bool side_before(const struct copy_side *a,
			       const struct copy_side *b)
{
	return a->f->domid < b->f->domid ||
	       (a->f->domid == b->f->domid && a->ref < b->ref);
}

static int sim_gnt_copy(struct pvio_platform *p,
			struct pvio_gnt_copy_seg *segs, unsigned int count)
{
	struct sim_ctx *c = CTX(p);
	const uint32_t owner = c->conn_id;
	bool saw_dead = false;
	unsigned int i;

	__atomic_add_fetch(&c->copiers, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < count; i++) {
		struct pvio_gnt_copy_seg *sg = &segs[i];
		struct copy_side src = { 0 }, dst = { 0 };
		struct sim_gt_active *la = NULL, *lb = NULL;
		bool fsrc = sg->flags & PVIO_GNTCOPY_SOURCE_GREF;
		bool fdst = sg->flags & PVIO_GNTCOPY_DEST_GREF;
		int rc = 0;

		if (sg->flags & ~(PVIO_GNTCOPY_SOURCE_GREF |
				  PVIO_GNTCOPY_DEST_GREF)) {
			sg->status = -EINVAL;
			continue;
		}
		if (fsrc)
			rc = copy_resolve(c, &sg->source, false, sg->len, &src);
		if (!rc && fdst)
			rc = copy_resolve(c, &sg->dest, true, sg->len, &dst);
		if (rc) {
			sg->status = (int16_t)rc;
			continue;
		}
		/* Lock the entries in (domid, ref) order; one lock when both
		 * sides name the same entry. */
		if (fsrc)
			la = &src.f->gt.act[src.ref];
		if (fdst)
			lb = &dst.f->gt.act[dst.ref];
		if (la && lb) {
			if (la == lb)
				lb = NULL;
			else if (side_before(&dst, &src)) {
				struct sim_gt_active *t = la;

				la = lb;
				lb = t;
			}
		}
		if (la)
			sim_gt_lock(la, owner);
		if (lb)
			sim_gt_lock(lb, owner);
		if (fsrc)
			rc = copy_check(c, &src, sg->source.foreign.offset,
					p->self);
		if (!rc && fdst)
			rc = copy_check(c, &dst, sg->dest.foreign.offset,
					p->self);
		if (!rc)
			memcpy(fdst ? dst.ptr : (char *)sg->dest.virt,
			       fsrc ? src.ptr : (const char *)sg->source.virt,
			       sg->len);
		if (lb)
			sim_gt_unlock(lb);
		if (la)
			sim_gt_unlock(la);
		sg->status = (int16_t)rc;
		if (rc == -ESRCH)
			saw_dead = true;
	}
	__atomic_sub_fetch(&c->copiers, 1, __ATOMIC_SEQ_CST);
	/* a dead domain's view, or retired ones waiting for a quiet moment */
	if (pvio_unlikely(saw_dead ||
			  __atomic_load_n(&c->nr_retired, __ATOMIC_SEQ_CST)) &&
	    pthread_mutex_trylock(&c->lock) == 0) {
		foreign_reap_locked(c);
		pthread_mutex_unlock(&c->lock);
	}
	return 0;
}

/* ---- domains ------------------------------------------------------------ */

static int sim_domain_info(struct pvio_platform *p, unsigned int domid,
			   struct pvio_dominfo *info)
{
	struct sim_ctx *c = CTX(p);
	struct sim_domain_req req = { .domid = domid };
	struct sim_domain_reply rep;
	int rc;

	pthread_mutex_lock(&c->lock);
	rc = sim_call(c, SIM_OP_DOMAIN_INFO, &req, sizeof(req), &rep,
		      sizeof(rep), NULL, NULL);
	pthread_mutex_unlock(&c->lock);
	if (rc < 0)
		return rc;
	info->domid = rep.domid;
	info->dying = rep.dying;
	info->nr_procs = rep.nr_procs;
	return 0;
}

/*
 * A backend lets go of a guest (unmap, unbind) before the toolstack kills
 * it, and may make no call on this handle for long after (a worker whose
 * guests are gone): the dead guest's view (its whole memory mapped, its
 * fd open) would stay until some other guest's I/O came.
 */
static int sim_tidy(struct pvio_platform *p)
{
	struct sim_ctx *c = CTX(p);

	pthread_mutex_lock(&c->lock);
	foreign_reap_locked(c);
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* ---- toolstack ---------------------------------------------------------- */

int pvio__sim_domain_create(struct pvio_platform *p, unsigned int domid,
			    const char *name, uint64_t mem_bytes,
			    unsigned int *out_domid)
{
	struct sim_ctx *c;
	struct sim_domain_req req = { .domid = domid };
	struct sim_domain_reply rep;
	int rc;

	if (p->ops != &pvio_sim_platform_ops)
		return -ENOSYS;
	c = CTX(p);
	if (domid > SIM_MAX_DOMID || mem_bytes % PVIO_PAGE_SIZE ||
	    mem_bytes / PVIO_PAGE_SIZE > UINT32_MAX)
		return -EINVAL;
	req.nr_pages = (uint32_t)(mem_bytes / PVIO_PAGE_SIZE);
	snprintf(req.name, sizeof(req.name), "%s", name ? name : "");
	pthread_mutex_lock(&c->lock);
	rc = sim_call(c, SIM_OP_DOMAIN_CREATE, &req, sizeof(req), &rep,
		      sizeof(rep), NULL, NULL);
	pthread_mutex_unlock(&c->lock);
	if (rc >= 0 && out_domid)
		*out_domid = rep.domid;
	return rc < 0 ? rc : 0;
}

int pvio__sim_domain_destroy(struct pvio_platform *p, unsigned int domid)
{
	struct sim_domain_req req = { .domid = domid };
	struct sim_ctx *c;
	int rc;

	if (p->ops != &pvio_sim_platform_ops)
		return -ENOSYS;
	c = CTX(p);
	pthread_mutex_lock(&c->lock);
	rc = sim_call(c, SIM_OP_DOMAIN_DESTROY, &req, sizeof(req), NULL, 0,
		      NULL, NULL);
	pthread_mutex_unlock(&c->lock);
	return rc < 0 ? rc : 0;
}

int pvio__sim_domain_list(struct pvio_platform *p, struct pvio_sim_dominfo *out,
			  unsigned int max)
{
	struct sim_ctx *c;
	struct sim_domain_list_reply *lr;
	unsigned int i, n;
	int rc;

	if (p->ops != &pvio_sim_platform_ops)
		return -ENOSYS;
	c = CTX(p);
	lr = malloc(SIM_MAX_MSG);
	if (!lr)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	rc = sim_call(c, SIM_OP_DOMAIN_LIST, NULL, 0, lr, SIM_MAX_MSG, NULL,
		      NULL);
	pthread_mutex_unlock(&c->lock);
	if (rc < 0) {
		free(lr);
		return rc;
	}
	n = lr->count < max ? lr->count : max;
	for (i = 0; i < n; i++) {
		out[i].domid = lr->doms[i].domid;
		out[i].dying = lr->doms[i].dying;
		out[i].persistent = lr->doms[i].persistent;
		out[i].nr_procs = lr->doms[i].nr_procs;
		memcpy(out[i].name, lr->doms[i].name, sizeof(out[i].name));
		out[i].name[sizeof(out[i].name) - 1] = 0;
	}
	free(lr);
	return (int)n;
}

int pvio__sim_shutdown(struct pvio_platform *p)
{
	struct sim_ctx *c;
	int rc;

	if (p->ops != &pvio_sim_platform_ops)
		return -ENOSYS;
	c = CTX(p);
	pthread_mutex_lock(&c->lock);
	rc = sim_call(c, SIM_OP_SHUTDOWN, NULL, 0, NULL, 0, NULL, NULL);
	pthread_mutex_unlock(&c->lock);
	return rc < 0 ? rc : 0;
}

/* ---- open/close --------------------------------------------------------- */

static void sim_close(struct pvio_platform *p)
{
	struct sim_ctx *c = CTX(p);
	struct sim_mapping *m;
	struct sim_share *sh;
	struct sim_foreign *f;
	unsigned int i;

	if (!c)
		return;
	/* simhv releases everything of ours when the socket closes. */
	if (c->sock >= 0)
		close(c->sock);
	while ((m = c->maps)) {
		c->maps = m->next;
		munmap(m->addr, (size_t)m->count * PVIO_PAGE_SIZE);
		free(m);
	}
	while ((sh = c->shares)) {
		c->shares = sh->next;
		free(sh);
	}
	for (i = 0; i < SIM_MAX_PORTS; i++) {
		if (c->ports[i].recv_fd >= 0)
			close(c->ports[i].recv_fd);
		if (c->ports[i].send_fd >= 0)
			close(c->ports[i].send_fd);
	}
	if (c->foreign) {
		for (i = 0; i <= SIM_MAX_DOMID; i++)
			if (c->foreign[i])
				foreign_free(c->foreign[i]);
		free(c->foreign);
	}
	while ((f = c->retired)) {
		c->retired = f->retired_next;
		foreign_free(f);
	}
	if (c->mem_base)
		munmap(c->mem_base, c->mem_len);
	if (c->mem_fd >= 0)
		close(c->mem_fd);
	if (c->epfd >= 0)
		close(c->epfd);
	pthread_mutex_destroy(&c->lock);
	munmap(c, sizeof(*c));
	p->ctx = NULL;
}

int pvio__sim_open(struct pvio_platform *p, const char *dir,
		   unsigned int domid, unsigned int flags)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct sim_hello req = { .version = SIM_PROTO_VERSION };
	struct sim_hello_reply rep;
	int fds[SIM_MAX_FDS];
	unsigned int nfds = 0, i;
	struct sim_ctx *c;
	int rc;

	if (domid == PVIO_DOMID_SELF)
		domid = 0;
	if (domid > SIM_MAX_DOMID)
		return -EINVAL;
	if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir,
			     SIM_HV_SOCK) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	/* Large (ports, message buffer): page-backed, not malloc'd. */
	c = mmap(NULL, sizeof(*c), PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (c == MAP_FAILED)
		return -ENOMEM;
	c->sock = c->epfd = c->mem_fd = -1;
	snprintf(c->dir, sizeof(c->dir), "%s", dir);
	for (i = 0; i < SIM_MAX_PORTS; i++)
		c->ports[i].recv_fd = c->ports[i].send_fd = -1;
	pthread_mutex_init(&c->lock, NULL);
	p->ops = &pvio_sim_platform_ops;
	p->ctx = c;
	p->self = domid;

	c->foreign = calloc(SIM_MAX_DOMID + 1, sizeof(*c->foreign));
	if (!c->foreign) {
		rc = -ENOMEM;
		goto fail;
	}
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0) {
		rc = -errno;
		goto fail;
	}
	c->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->sock < 0) {
		rc = -errno;
		goto fail;
	}
	if (connect(c->sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = (errno == ECONNREFUSED) ? -ENOENT : -errno;
		goto fail;
	}
	req.domid = domid;
	req.flags = flags & PVIO_PLATFORM_CREATE;
	rc = sim_call(c, SIM_OP_HELLO, &req, sizeof(req), &rep, sizeof(rep),
		      fds, &nfds);
	if (rc < 0) {
		close_fds(fds, nfds);
		goto fail;
	}
	if (nfds != 1 || rep.nr_pages == 0 || rep.conn_id == 0) {
		close_fds(fds, nfds);
		rc = -EPROTO;
		goto fail;
	}
	c->conn_id = rep.conn_id;
	c->generation = rep.generation;
	c->mem_fd = fds[0];
	c->nr_pages = rep.nr_pages;
	c->mem_len = (size_t)rep.nr_pages * PVIO_PAGE_SIZE;
	c->mem_base = mmap(NULL, c->mem_len, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_NORESERVE, c->mem_fd, 0);
	if (c->mem_base == MAP_FAILED) {
		c->mem_base = NULL;
		rc = -errno;
		goto fail;
	}
	return 0;
fail:
	sim_close(p);
	return rc;
}

static int sim_spec(const struct pvio_platform *p, char *buf, size_t size)
{
	const struct sim_ctx *c = p->ctx;
	int n = snprintf(buf, size, "sim:%s", c->dir);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The world's xenstore server listens on one socket per domain. */
static int sim_xs_path(const struct pvio_platform *p, char *buf, size_t size)
{
	const struct sim_ctx *c = p->ctx;
	int n = snprintf(buf, size, "%s/xs/dom%u.sock", c->dir, p->self);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

const struct pvio_platform_ops pvio_sim_platform_ops = {
	.name = "sim",
	.close = sim_close,
	.evtchn_fd = sim_evtchn_fd,
	.evtchn_alloc_unbound = sim_evtchn_alloc_unbound,
	.evtchn_bind = sim_evtchn_bind,
	.evtchn_close = sim_evtchn_close,
	.evtchn_notify = sim_evtchn_notify,
	.evtchn_pending = sim_evtchn_pending,
	.evtchn_unmask = sim_evtchn_unmask,
	.evtchn_status = sim_evtchn_status,
	.gnt_share = sim_gnt_share,
	.gnt_unshare = sim_gnt_unshare,
	.gnt_map = sim_gnt_map,
	.gnt_unmap = sim_gnt_unmap,
	.gnt_copy = sim_gnt_copy,
	.domain_info = sim_domain_info,
	.tidy = sim_tidy,
	.spec = sim_spec,
	.xs_path = sim_xs_path,
};
