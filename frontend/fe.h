// SPDX-License-Identifier: MIT
/*
 * What blkfront and netfront share: the device's lifecycle (the control
 * path's state, a failed handshake, death, the open prelude) and a queue's
 * pollable fd (an epoll set over the platform's event-channel fd and a
 * "kick" eventfd that tells a waiter the device died).
 */
#ifndef PVIO_FRONTEND_FE_H
#define PVIO_FRONTEND_FE_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <pvio/platform.h>
#include <pvio/xenbus.h>

/* ---- the device's lifecycle ---------------------------------------------- */

#define FE_MSG_MAX	1024u	/* error messages */

enum fe_phase {
	FE_OPENING,	/* handshake in progress */
	FE_CONNECTED,
	FE_FAILED,	/* the handshake failed: err/msg say why */
	FE_CLOSING,	/* close() runs (or not started): the backend is
			 * ignored */
};

/* The control path's state of a device, either frontend's. */
struct fe_dev {
	struct pvio_platform *plat;
	struct pvio_xs *xs;
	struct pvio_xenbus *xb;
	char spec[PVIO_PLATFORM_SPEC_MAX]; /* to open the queues' handles */
	unsigned int self, devid, backend_id;
	char path[PVIO_XS_PATH_MAX];
	char be_path[PVIO_XS_PATH_MAX];
	enum fe_phase phase;
	int err;			/* FE_FAILED: why */
	char msg[FE_MSG_MAX];
	int dying;			/* atomic: one killer, one message */
	char dead_msg[FE_MSG_MAX];
	bool live;			/* open returned: events go out */
	struct pvio_xs_thread *ctl_thread;	/* PVIO_*_F_THREAD */
};

/* What fe_open_alloc() needs to know of a device type. */
struct fe_kind {
	size_t size;			/* the device */
	size_t fe_off;			/* its struct fe_dev */
	size_t opts_off, opts_size;	/* its options */
	/* Fill in the defaults; -EINVAL with @why for bad options. */
	int (*check_opts)(void *opts, char *why, size_t len);
};

static inline void fe_copy_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

/*
 * The open prelude: check the handles, allocate a zeroed device, copy and
 * check @opts (NULL: the defaults), and fill in its struct fe_dev. Return
 * the device, or NULL with *@rc and @err set.
 */
static inline void *fe_open_alloc(const struct fe_kind *k,
				  struct pvio_platform *p, struct pvio_xs *x,
				  unsigned int devid, const void *opts,
				  char *err, size_t errlen, int *rc)
{
	struct fe_dev *fe;
	char why[128];
	char *dev;

	if (!p || !x) {
		fe_copy_err(err, errlen, "no platform or xenstore handle");
		*rc = -EINVAL;
		return NULL;
	}
	dev = calloc(1, k->size);
	if (!dev) {
		fe_copy_err(err, errlen, "out of memory");
		*rc = -ENOMEM;
		return NULL;
	}
	fe = (struct fe_dev *)(dev + k->fe_off);
	if (opts)
		memcpy(dev + k->opts_off, opts, k->opts_size);
	*rc = k->check_opts(dev + k->opts_off, why, sizeof(why));
	if (!*rc) {
		/* the queues' threads open their own handles with it */
		*rc = pvio_platform_spec(p, fe->spec, sizeof(fe->spec));
		if (*rc)
			snprintf(why, sizeof(why), "the platform's spec: %s",
				 strerror(-*rc));
	}
	if (*rc) {
		fe_copy_err(err, errlen, why);
		free(dev);
		return NULL;
	}
	fe->plat = p;
	fe->xs = x;
	fe->self = pvio_platform_domid(p);
	fe->devid = devid;
	return dev;
}

/* open() failed: say why, the handshake's own message first. */
static inline void fe_open_error(const struct fe_dev *fe, int rc, char *err,
				 size_t errlen)
{
	fe_copy_err(err, errlen, fe->msg[0] ? fe->msg : strerror(-rc));
}

/* PVIO_*_F_THREAD: the control thread dispatches watch events. */
static inline int fe_thread_start(struct fe_dev *fe)
{
	int rc = pvio_xs_thread_start(fe->xs, &fe->ctl_thread);

	if (rc)
		snprintf(fe->msg, sizeof(fe->msg),
			 "cannot start the control thread: %s", strerror(-rc));
	return rc;
}

static inline void fe_thread_stop(struct fe_dev *fe)
{
	pvio_xs_thread_stop(fe->ctl_thread);
	fe->ctl_thread = NULL;
}

/* The handshake failed: the first failure's error and message stay. */
static inline void __attribute__((format(printf, 3, 4)))
fe_set_failed(struct fe_dev *fe, int err, const char *fmt, ...)
{
	va_list ap;

	if (fe->phase == FE_FAILED)
		return;
	va_start(ap, fmt);
	vsnprintf(fe->msg, sizeof(fe->msg), fmt, ap);
	va_end(ap);
	fe->err = err;
	fe->phase = FE_FAILED;
}

/* As xenbus_dev_fatal: fail the device in xenstore too (Closing). */
#define fe_fatal(fe, err, ...)						\
	do {								\
		fe_set_failed((fe), (err), __VA_ARGS__);		\
		pvio_xenbus_fatal((fe)->xb, (err), "%s", (fe)->msg);	\
	} while (0)

/*
 * Death (cold, any thread): only the first caller writes the message and
 * then *@dead (0 or -errno, release: whoever sees it sees the message).
 * Return true for that first caller, who then wakes the queues.
 */
static inline bool fe_vkill(struct fe_dev *fe, int *dead, int err,
			    const char *fmt, va_list ap)
{
	if (__atomic_exchange_n(&fe->dying, 1, __ATOMIC_ACQ_REL))
		return false;
	vsnprintf(fe->dead_msg, sizeof(fe->dead_msg), fmt, ap);
	__atomic_store_n(dead, err, __ATOMIC_RELEASE);
	return true;
}

/* The first half of a kill(@fmt, ...): true for the first caller. */
#define FE_KILL(fe, dead, err, fmt)					\
	({								\
		va_list ap_;						\
		bool first_;						\
									\
		va_start(ap_, fmt);					\
		first_ = fe_vkill((fe), (dead), (err), (fmt), ap_);	\
		va_end(ap_);						\
		first_;							\
	})

/* ---- the handshake's common steps --------------------------------------- */

#define FE_XB(s)	(1u << PVIO_XB_##s)

/* Remove from our directory the keys @stale names (an earlier connection's,
 * which must not confuse the backend). */
static inline int fe_clean_keys(struct fe_dev *fe, pvio_xs_tx_t tx,
				bool (*stale)(const char *key))
{
	char key[2 * PVIO_XS_PATH_MAX], **names = NULL;
	int n, i, rc = 0;

	n = pvio_xs_directory(fe->xs, tx, fe->path, &names);
	if (n < 0)
		return n;
	for (i = 0; i < n && !rc; i++) {
		if (!stale(names[i]))
			continue;
		snprintf(key, sizeof(key), "%s/%s", fe->path, names[i]);
		rc = pvio_xs_rm(fe->xs, tx, key);
	}
	free(names);
	return rc;
}

/* Write our keys with @publish in one transaction, as Linux: the backend
 * sees all or nothing. Retried while xenstore says -EAGAIN. */
static inline int fe_publish(struct fe_dev *fe,
			     int (*publish)(void *arg, pvio_xs_tx_t tx),
			     void *arg)
{
	pvio_xs_tx_t tx;
	int rc, tries = 0;

	do {
		rc = pvio_xs_tx_start(fe->xs, &tx);
		if (rc)
			break;
		rc = publish(arg, tx);
		if (rc) {
			pvio_xs_tx_end(fe->xs, tx, true);
			break;
		}
		rc = pvio_xs_tx_end(fe->xs, tx, false);
	} while (rc == -EAGAIN && ++tries < 100);
	return rc;
}

/* How fe_reset_stale() differs between the two frontends. */
struct fe_reset {
	/* backend states (FE_XB) that need no reset while we are
	 * Initialising */
	unsigned int ready;
	/* a failed write of Closing fails the reset (else Closed is tried
	 * anyway), and a vanished directory is -ENODEV */
	bool strict;
};

/*
 * An earlier process left this device mid-session (or the backend is
 * still Closed from it): close that session first, waiting for the backend
 * at each step, so that it sees Initialising while it is Closed (Linux's
 * backends reconnect only then). fe->msg says why on failure.
 */
static inline int fe_reset_stale(struct fe_dev *fe, unsigned int timeout_ms,
				 const struct fe_reset *how)
{
	enum pvio_xb_state me = pvio_xenbus_state(fe->xb), be;
	int rc;

	be = pvio_xenbus_other_state(fe->xb);
	if (me == PVIO_XB_INITIALISING && (how->ready & (1u << be)))
		return 0;
	if (me == PVIO_XB_UNKNOWN) {
		snprintf(fe->msg, sizeof(fe->msg), "%s/state is missing",
			 fe->path);
		return -ENODEV;
	}
	if (me != PVIO_XB_INITIALISING && me != PVIO_XB_CLOSING &&
	    me != PVIO_XB_CLOSED) {
		rc = pvio_xenbus_switch(fe->xb, PVIO_XB_CLOSING);
		if (rc && how->strict)
			goto fail_switch;
		/* a backend that does not answer: try Closed anyway */
		if (!rc)
			pvio_xenbus_wait_other(fe->xb, FE_XB(CLOSING) |
					       FE_XB(CLOSED) | FE_XB(INITWAIT) |
					       FE_XB(INITIALISING), timeout_ms,
					       &be);
	}
	rc = pvio_xenbus_switch(fe->xb, PVIO_XB_CLOSED);
	if (rc)
		goto fail_switch;
	rc = pvio_xenbus_wait_other(fe->xb, FE_XB(CLOSED) | FE_XB(INITWAIT) |
				    FE_XB(INITIALISING), timeout_ms, &be);
	if (rc) {
		snprintf(fe->msg, sizeof(fe->msg),
			 "timed out after %u ms waiting for the backend (%s) "
			 "to close the previous connection: it is %s",
			 timeout_ms, fe->be_path, pvio_xb_state_name(be));
		return rc;
	}
	rc = pvio_xenbus_switch(fe->xb, PVIO_XB_INITIALISING);
	if (rc)
		goto fail_switch;
	return 0;
fail_switch:
	snprintf(fe->msg, sizeof(fe->msg), "cannot write %s/state: %s",
		 fe->path, strerror(-rc));
	return rc == -ENOENT && how->strict ? -ENODEV : rc;
}

/* ---- a queue's pollable fd ----------------------------------------------- */

struct fe_wait {
	int epfd;		/* the queue's pollable fd */
	int kickfd;		/* eventfd: the device died */
};

#define FE_WAIT_INIT	((struct fe_wait){ .epfd = -1, .kickfd = -1 })

/* Return 0 or -errno; on failure what was made stays for fe_wait_close(). */
static inline int fe_wait_open(struct fe_wait *w, struct pvio_platform *plat)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int efd;

	w->kickfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->kickfd < 0 || w->epfd < 0)
		return -errno;
	efd = pvio_evtchn_fd(plat);
	if (efd < 0)
		return efd;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, efd, &ev) < 0 ||
	    epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->kickfd, &ev) < 0)
		return -errno;
	return 0;
}

static inline void fe_wait_kick(struct fe_wait *w)
{
	uint64_t one = 1;

	if (w->kickfd >= 0 && write(w->kickfd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, the fd readable */
	}
}

static inline void fe_wait_close(struct fe_wait *w)
{
	if (w->epfd >= 0)
		close(w->epfd);
	if (w->kickfd >= 0)
		close(w->kickfd);
	*w = FE_WAIT_INIT;
}

#endif
