// SPDX-License-Identifier: MIT
/*
 * The xenstore client: libxenstore on both platforms. On sim it connects to
 * the world's per-domain socket; on Xen to xenstored (or /dev/xen/xenbus).
 * libxenstore's errno convention becomes -errno here, at the boundary.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <xenstore.h>

#include "private.h"

struct xs_watch_ent {
	struct xs_watch_ent *next;
	int id;
	char token[24];
	char *path;
	pvio_xs_watch_fn fn;
	void *opaque;
};

struct pvio_xs {
	struct xs_handle *h;
	pthread_mutex_t lock;		/* the watch table */
	struct xs_watch_ent *watches;
	int next_id;
};

/*
 * Events one pvio_xs_dispatch() drains at most: the rest wait for the
 * next call (the fd stays readable), so that a flood cannot hold the
 * caller's loop.
 */
#define XS_DISPATCH_BUDGET	4096

static int neg_errno(void)
{
	return errno ? -errno : -EIO;
}

static xs_transaction_t TX(pvio_xs_tx_t tx)
{
	return tx ? (xs_transaction_t)tx : XBT_NULL;
}

/* libxenstore takes its socket from the environment: set it for the
 * moment of the connect only. */
static pthread_mutex_t env_lock = PTHREAD_MUTEX_INITIALIZER;

static int xs_connect(struct pvio_xs **out, const char *sock)
{
	struct pvio_xs *x = calloc(1, sizeof(*x));
	char *saved = NULL;
	const char *old;
	int rc = 0;

	if (!x)
		return -ENOMEM;
	pthread_mutex_init(&x->lock, NULL);
	pthread_mutex_lock(&env_lock);
	if (sock) {
		old = getenv("XENSTORED_PATH");
		saved = old ? strdup(old) : NULL;
		setenv("XENSTORED_PATH", sock, 1);
	}
	errno = 0;
	x->h = xs_open(sock ? XS_OPEN_SOCKETONLY : 0);
	if (!x->h)
		rc = errno == ECONNREFUSED || errno == 0 ? -ENOENT : -errno;
	if (sock) {
		if (saved)
			setenv("XENSTORED_PATH", saved, 1);
		else
			unsetenv("XENSTORED_PATH");
		free(saved);
	}
	pthread_mutex_unlock(&env_lock);
	if (rc) {
		pthread_mutex_destroy(&x->lock);
		free(x);
		return rc;
	}
	*out = x;
	return 0;
}

int pvio_xs_open_path(struct pvio_xs **out, const char *socket_path)
{
	*out = NULL;
	if (!socket_path || !*socket_path)
		return -EINVAL;
	return xs_connect(out, socket_path);
}

int pvio_xs_open(struct pvio_xs **out, struct pvio_platform *p)
{
	char sock[PATH_MAX];
	int rc;

	*out = NULL;
	rc = pvio_platform_xs_path(p, sock, sizeof(sock));
	if (rc)
		return rc;
	return xs_connect(out, *sock ? sock : NULL);
}

void pvio_xs_close(struct pvio_xs *x)
{
	struct xs_watch_ent *w;

	if (!x)
		return;
	while ((w = x->watches)) {
		x->watches = w->next;
		free(w->path);
		free(w);
	}
	xs_close(x->h);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

int pvio_xs_read(struct pvio_xs *x, pvio_xs_tx_t tx, const char *path,
		 char **val)
{
	unsigned int len = 0;
	char *v;

	errno = 0;
	v = xs_read(x->h, TX(tx), path, &len);
	if (!v)
		return neg_errno();
	*val = v;	/* libxenstore NUL-terminates */
	return (int)len;
}

int pvio_xs_write(struct pvio_xs *x, pvio_xs_tx_t tx, const char *path,
		  const char *val)
{
	errno = 0;
	return xs_write(x->h, TX(tx), path, val, (unsigned int)strlen(val))
		       ? 0 : neg_errno();
}

int pvio_xs_printf(struct pvio_xs *x, pvio_xs_tx_t tx, const char *path,
		   const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || n >= (int)sizeof(buf))
		return -E2BIG;
	return pvio_xs_write(x, tx, path, buf);
}

int pvio_xs_mkdir(struct pvio_xs *x, pvio_xs_tx_t tx, const char *path)
{
	errno = 0;
	return xs_mkdir(x->h, TX(tx), path) ? 0 : neg_errno();
}

int pvio_xs_rm(struct pvio_xs *x, pvio_xs_tx_t tx, const char *path)
{
	errno = 0;
	if (xs_rm(x->h, TX(tx), path))
		return 0;
	return errno == ENOENT ? 0 : neg_errno();
}

bool pvio_xs_exists(struct pvio_xs *x, pvio_xs_tx_t tx, const char *path)
{
	char *v = NULL;

	if (pvio_xs_read(x, tx, path, &v) < 0)
		return false;
	free(v);
	return true;
}

int pvio_xs_directory(struct pvio_xs *x, pvio_xs_tx_t tx, const char *path,
		      char ***names)
{
	unsigned int n = 0;
	char **v;

	errno = 0;
	v = xs_directory(x->h, TX(tx), path, &n);
	if (!v)
		return errno == 0 ? 0 : neg_errno();
	*names = v;
	return (int)n;
}

int pvio_xs_set_perms(struct pvio_xs *x, pvio_xs_tx_t tx, const char *path,
		      const char *const *perms, unsigned int nr)
{
	struct xs_permissions p[16];
	unsigned int i;

	if (nr == 0 || nr > 16)
		return -EINVAL;
	for (i = 0; i < nr; i++) {
		unsigned long id;
		char *end;

		switch (perms[i][0]) {
		case 'n': p[i].perms = XS_PERM_NONE; break;
		case 'r': p[i].perms = XS_PERM_READ; break;
		case 'w': p[i].perms = XS_PERM_WRITE; break;
		case 'b': p[i].perms = XS_PERM_READ | XS_PERM_WRITE; break;
		default: return -EINVAL;
		}
		errno = 0;
		id = strtoul(perms[i] + 1, &end, 10);
		if (errno || *end || end == perms[i] + 1 || id >= 0x7ff0)
			return -EINVAL;
		p[i].id = (unsigned int)id;
	}
	errno = 0;
	return xs_set_permissions(x->h, TX(tx), path, p, nr) ? 0 : neg_errno();
}

int pvio_xs_tx_start(struct pvio_xs *x, pvio_xs_tx_t *tx)
{
	xs_transaction_t t;

	errno = 0;
	t = xs_transaction_start(x->h);
	if (t == XBT_NULL)
		return neg_errno();
	*tx = t;
	return 0;
}

int pvio_xs_tx_end(struct pvio_xs *x, pvio_xs_tx_t tx, bool abort)
{
	errno = 0;
	return xs_transaction_end(x->h, TX(tx), abort) ? 0 : neg_errno();
}

/* A digit's value in base 16 (10: decimal only), or -1. */
static int digit(char c, unsigned int base)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (base == 16 && c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (base == 16 && c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Strictly "decimal, or 0x hex": no sign, no white space (strtoul takes
 * both, also after the "0x"), at least one digit, nothing after them.
 */
int pvio_xs_parse_uint(const char *s, unsigned long min, unsigned long max,
		       unsigned long *out)
{
	unsigned int base = 10;
	unsigned long v = 0;
	int d;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		d = digit(*s, base);
		if (d < 0)
			return -EINVAL;
		if (v > (ULONG_MAX - (unsigned long)d) / base) {
			/* the rest must still be digits: garbage is -EINVAL */
			while (*++s)
				if (digit(*s, base) < 0)
					return -EINVAL;
			return -ERANGE;
		}
		v = v * base + (unsigned long)d;
	}
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int pvio_xs_read_uint(struct pvio_xs *x, pvio_xs_tx_t tx, const char *path,
		      unsigned long min, unsigned long max, unsigned long *out)
{
	char *s = NULL;
	int rc = pvio_xs_read(x, tx, path, &s);

	if (rc < 0)
		return rc;
	/* a value with a NUL inside is not a number either */
	rc = strlen(s) != (size_t)rc ? -EINVAL
				     : pvio_xs_parse_uint(s, min, max, out);
	free(s);
	return rc;
}

int pvio_xs_read_uint_default(struct pvio_xs *x, pvio_xs_tx_t tx,
			      const char *path, unsigned long min,
			      unsigned long max, unsigned long dflt,
			      unsigned long *out)
{
	int rc = pvio_xs_read_uint(x, tx, path, min, max, out);

	if (rc == -ENOENT) {
		*out = dflt;
		return 0;
	}
	return rc;
}

int pvio_xs_read_bool(struct pvio_xs *x, pvio_xs_tx_t tx, const char *path,
		      bool dflt, bool *out)
{
	unsigned long v;
	int rc = pvio_xs_read_uint_default(x, tx, path, 0, 1, dflt, &v);

	if (rc == -ERANGE)
		rc = -EINVAL;
	if (!rc)
		*out = v != 0;
	return rc;
}

/* ---- watches ---------------------------------------------------------------- */

int pvio_xs_watch(struct pvio_xs *x, const char *path, pvio_xs_watch_fn fn,
		  void *opaque)
{
	struct xs_watch_ent *w = calloc(1, sizeof(*w));
	int id;

	if (!w)
		return -ENOMEM;
	w->path = strdup(path);
	if (!w->path) {
		free(w);
		return -ENOMEM;
	}
	w->fn = fn;
	w->opaque = opaque;
	pthread_mutex_lock(&x->lock);
	id = w->id = ++x->next_id;
	snprintf(w->token, sizeof(w->token), "pvio-%d", id);
	w->next = x->watches;
	x->watches = w;
	pthread_mutex_unlock(&x->lock);
	errno = 0;
	if (!xs_watch(x->h, path, w->token)) {
		int rc = neg_errno();

		pvio_xs_unwatch(x, id);
		return rc;
	}
	return id;
}

int pvio_xs_unwatch(struct pvio_xs *x, int id)
{
	struct xs_watch_ent **pp, *w;

	pthread_mutex_lock(&x->lock);
	for (pp = &x->watches; (w = *pp); pp = &w->next)
		if (w->id == id)
			break;
	if (w)
		*pp = w->next;
	pthread_mutex_unlock(&x->lock);
	if (!w)
		return -ENOENT;
	/* events still queued for the token find no entry and are dropped */
	xs_unwatch(x->h, w->path, w->token);
	free(w->path);
	free(w);
	return 0;
}

void pvio_xs_drop_watches(struct pvio_xs *x)
{
	struct xs_watch_ent *w;

	pthread_mutex_lock(&x->lock);
	while ((w = x->watches)) {
		x->watches = w->next;
		free(w->path);
		free(w);
	}
	pthread_mutex_unlock(&x->lock);
}

int pvio_xs_fd(struct pvio_xs *x)
{
	return xs_fileno(x->h);
}

/* The callback of @ev's watch, if it is still there: 1 if it ran. */
static int run_event(struct pvio_xs *x, char **ev)
{
	struct xs_watch_ent *w;
	pvio_xs_watch_fn fn = NULL;
	void *opaque = NULL;

	pthread_mutex_lock(&x->lock);
	for (w = x->watches; w; w = w->next)
		if (strcmp(w->token, ev[XS_WATCH_TOKEN]) == 0) {
			fn = w->fn;
			opaque = w->opaque;
			break;
		}
	pthread_mutex_unlock(&x->lock);
	/* outside the lock: a callback may add or remove watches */
	if (!fn)
		return 0;
	fn(x, ev[XS_WATCH_PATH], opaque);
	return 1;
}

static uint32_t ev_hash(char **ev)
{
	const char *k;
	uint32_t h = 2166136261u;	/* FNV-1a over path, NUL, token */

	for (k = ev[XS_WATCH_PATH]; *k; k++)
		h = (h ^ (uint8_t)*k) * 16777619u;
	h *= 16777619u;
	for (k = ev[XS_WATCH_TOKEN]; *k; k++)
		h = (h ^ (uint8_t)*k) * 16777619u;
	return h;
}

static bool ev_same(char **a, char **b)
{
	return !strcmp(a[XS_WATCH_PATH], b[XS_WATCH_PATH]) &&
	       !strcmp(a[XS_WATCH_TOKEN], b[XS_WATCH_TOKEN]);
}

/*
 * Coalesced: every event queued (up to the budget) is taken off
 * libxenstore's queue at once, duplicates (the same watch, the same path)
 * dropped; then the callbacks run once per distinct event, in the order
 * they first came. A callback reads the current value itself (events may
 * repeat anyway), so a guest writing its node a thousand times costs one
 * read, and its events do not pile up in our memory meanwhile (XSA-349's
 * lesson on the client side).
 */
int pvio_xs_dispatch(struct pvio_xs *x)
{
	enum { SLOTS = 2 * XS_DISPATCH_BUDGET };	/* a power of two */
	char ***evs = NULL, **ev;
	unsigned int n = 0, i;
	int32_t *table = NULL;
	int ran = 0;

	while (n < XS_DISPATCH_BUDGET && (ev = xs_check_watch(x->h))) {
		uint32_t h = ev_hash(ev), k;
		bool dup = false;

		if (!evs) {
			evs = malloc(XS_DISPATCH_BUDGET * sizeof(*evs));
			table = malloc(SLOTS * sizeof(*table));
			if (!evs || !table) {
				/* no room to coalesce: this one alone */
				free(evs);
				free(table);
				evs = NULL;
				table = NULL;
				run_event(x, ev);
				free(ev);
				return 1;
			}
			memset(table, 0xff, SLOTS * sizeof(*table));
		}
		for (k = h & (SLOTS - 1); table[k] >= 0; k = (k + 1) & (SLOTS - 1))
			if (ev_same(evs[table[k]], ev)) {
				dup = true;
				break;
			}
		if (dup) {
			free(ev);
			continue;
		}
		table[k] = (int32_t)n;
		evs[n++] = ev;
	}
	for (i = 0; i < n; i++) {
		ran += run_event(x, evs[i]);
		free(evs[i]);
	}
	free(evs);
	free(table);
	return ran;
}

int pvio_xs_pump(struct pvio_xs *x, int ms)
{
	struct pollfd pfd = { .fd = pvio_xs_fd(x), .events = POLLIN };

	if (pfd.fd < 0)
		poll(NULL, 0, ms);
	else if (poll(&pfd, 1, ms) <= 0)
		return 0;
	return pvio_xs_dispatch(x);
}

struct pvio_xs_thread {
	struct pvio_xs *xs;
	pthread_t thread;
	int stop_fd;
};

static void *xs_thread_main(void *arg)
{
	struct pvio_xs_thread *t = arg;
	struct pollfd fds[2] = {
		{ .fd = pvio_xs_fd(t->xs), .events = POLLIN },
		{ .fd = t->stop_fd, .events = POLLIN },
	};

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[1].revents)
			break;
		if (fds[0].revents)
			pvio_xs_dispatch(t->xs);
	}
	return NULL;
}

int pvio_xs_thread_start(struct pvio_xs *x, struct pvio_xs_thread **out)
{
	struct pvio_xs_thread *t;
	int rc;

	*out = NULL;
	if (pvio_xs_fd(x) < 0)
		return -EBADF;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->xs = x;
	t->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (t->stop_fd < 0) {
		rc = -errno;
		free(t);
		return rc;
	}
	rc = pthread_create(&t->thread, NULL, xs_thread_main, t);
	if (rc) {
		close(t->stop_fd);
		free(t);
		return -rc;
	}
	*out = t;
	return 0;
}

void pvio_xs_thread_stop(struct pvio_xs_thread *t)
{
	uint64_t one = 1;

	if (!t)
		return;
	if (write(t->stop_fd, &one, sizeof(one)) < 0) {
		/* cannot fail on a fresh eventfd */
	}
	pthread_join(t->thread, NULL);
	close(t->stop_fd);
	free(t);
}

int pvio_xs_self_domid(struct pvio_xs *x, unsigned int *domid)
{
	unsigned long d;
	int rc = pvio_xs_read_uint(x, 0, "domid", 0, 0x7fef, &d);

	if (!rc)
		*domid = (unsigned int)d;
	return rc;
}
