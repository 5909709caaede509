/* SPDX-License-Identifier: MIT */
/* Message and fd passing shared by the sim provider and pvio-simhv. */
#ifndef PVIO_SIM_UTIL_H
#define PVIO_SIM_UTIL_H

#include <stddef.h>
#include <sys/types.h>

#define SIM_MAX_FDS	4

/* Send one message with up to SIM_MAX_FDS fds. Return 0 or -errno. */
int pvio__sim_send(int sock, const void *buf, size_t len, const int *fds,
		   unsigned int nfds);
/*
 * Receive one message into @buf (@cap bytes) and its fds (set to -1 when
 * absent). Return the message length, 0 on orderly shutdown, or -errno;
 * -EMSGSIZE for a truncated message (its fds are closed).
 */
ssize_t pvio__sim_recv(int sock, void *buf, size_t cap, int *fds,
		       unsigned int *nfds);

#endif
