// SPDX-License-Identifier: MIT
/*
 * A frontend queue's pollable fd, shared by blkfront and netfront: an
 * epoll set over the platform's event-channel fd and a "kick" eventfd
 * that tells a waiter the device died.
 */
#ifndef PVIO_FRONTEND_FE_WAIT_H
#define PVIO_FRONTEND_FE_WAIT_H

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <pvio/platform.h>

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
