// SPDX-License-Identifier: MIT
/*
 * t-mocknetback: a two-port switch made of two mock netif backends
 * (tests/unit/t-mocknet.c) in dom0 of a sim world. It serves vif DEVID of
 * domains A and B (backend kind TYPE), and forwards every frame one sends
 * to the other, offloads included (checksums are filled in for a frontend
 * that refused checksum offload; GSO to one that did not ask for it is
 * dropped, as this switch does not segment).
 *
 *   t-mocknetback SPEC TYPE DOMA DOMB [--devid N] [--queues N]
 *                 [--no-features] [--no-ipv6-csum] [--rx-offset N]
 *
 * Runs until SIGTERM/SIGINT, then prints its counters. Exit status 0, or 1
 * if a frontend broke the protocol (the mocks check it as netback does).
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/t-mocknet.h"
#include "util.h"

/* ports[] under lock: a port being stopped gets nothing more */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct t_mocknet *ports[2];
static uint64_t fwd[2], fwd_gso[2], drops[2];

static void forward(struct t_mocknet *m, struct t_netpkt *p, void *opaque)
{
	unsigned int from = (unsigned int)(uintptr_t)opaque, to = !from, nq;
	int rc = -ENODEV;

	(void)m;
	pthread_mutex_lock(&lock);
	if (ports[to]) {
		nq = t_mocknet_nr_queues(ports[to]);
		rc = t_mocknet_rx_push(ports[to], nq ? p->queue % nq : 0,
				       p->data, p->len, &p->off);
	}
	if (rc) {
		drops[from]++;
	} else {
		fwd[from]++;
		if (p->off.gso_type)
			fwd_gso[from]++;
	}
	pthread_mutex_unlock(&lock);
}

static void usage_die(const char *msg)
{
	fprintf(stderr, "t-mocknetback: %s\nusage: t-mocknetback SPEC TYPE "
		"DOMA DOMB [--devid N] [--queues N] [--no-features] "
		"[--no-ipv6-csum] [--rx-offset N]\n", msg);
	exit(2);
}

int main(int argc, char **argv)
{
	struct t_mocknet_cfg c[2];
	struct t_mocknet *m0, *m1;
	unsigned int dom[2], devid = 0, queues = 1, rx_offset = 0, i;
	bool features = true, ipv6_csum = true;
	int a, sig, status = 0;
	sigset_t sigs;

	if (argc < 5)
		usage_die("missing arguments");
	if (pvio_parse_uint(argv[3], 1, 0x7fef, &dom[0]) ||
	    pvio_parse_uint(argv[4], 1, 0x7fef, &dom[1]))
		usage_die("bad domain id");
	for (a = 5; a < argc; a++) {
		if (strcmp(argv[a], "--no-features") == 0)
			features = false;
		else if (strcmp(argv[a], "--no-ipv6-csum") == 0)
			ipv6_csum = false;
		else if (a + 1 < argc && strcmp(argv[a], "--devid") == 0)
			pvio_parse_uint(argv[++a], 0, 0xffff, &devid);
		else if (a + 1 < argc && strcmp(argv[a], "--queues") == 0)
			pvio_parse_uint(argv[++a], 1, 8, &queues);
		else if (a + 1 < argc && strcmp(argv[a], "--rx-offset") == 0)
			pvio_parse_uint(argv[++a], 0, 256, &rx_offset);
		else
			usage_die("bad option");
	}
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	/* before the threads start: they inherit the mask */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	for (i = 0; i < 2; i++) {
		struct t_mocknet *m;
		int rc;

		memset(&c[i], 0, sizeof(c[i]));
		c[i].spec = argv[1];
		c[i].type = argv[2];
		c[i].fe = dom[i];
		c[i].devid = devid;
		c[i].sg = c[i].gso4 = c[i].gso6 = c[i].ipv6_csum = features;
		c[i].ipv6_csum = features && ipv6_csum;
		c[i].split = true;
		c[i].max_queues = queues > 1 ? queues : 0;
		c[i].rx_offset = rx_offset;
		c[i].rx_queue_max = 1024;
		c[i].on_tx = forward;
		c[i].opaque = (void *)(uintptr_t)i;
		rc = t_mocknet_start(&m, &c[i]);
		if (rc) {
			fprintf(stderr, "t-mocknetback: port %u (domain %u): "
				"%s\n", i, dom[i], strerror(-rc));
			if (i)
				t_mocknet_stop(ports[0]);	/* no forward
								 * to it yet */
			return 1;
		}
		pthread_mutex_lock(&lock);
		ports[i] = m;
		pthread_mutex_unlock(&lock);
	}
	fprintf(stderr, "t-mocknetback: serving vif %u of domains %u and %u\n",
		devid, dom[0], dom[1]);
	sigwait(&sigs, &sig);
	pthread_mutex_lock(&lock);
	for (i = 0; i < 2; i++) {
		struct t_mocknet_stats st;
		struct t_mocknet *m = ports[i];

		t_mocknet_stats(m, &st);
		fprintf(stderr, "t-mocknetback: port %u: connects %u, "
			"forwarded %llu frames (%llu gso), dropped %llu; "
			"delivered %llu (%llu gso, %llu dropped), waits for "
			"buffers %llu, missed notifications %llu, frontend "
			"errors %llu%s%s\n", i, st.connects,
			(unsigned long long)fwd[i],
			(unsigned long long)fwd_gso[i],
			(unsigned long long)drops[i],
			(unsigned long long)st.rx_packets,
			(unsigned long long)st.rx_gso,
			(unsigned long long)st.rx_dropped,
			(unsigned long long)st.rx_waits,
			(unsigned long long)st.missed_notify,
			(unsigned long long)st.errors,
			st.errors ? ": " : "", st.last_error);
		if (st.errors)
			status = 1;
	}
	m0 = ports[0];
	m1 = ports[1];
	ports[0] = ports[1] = NULL;
	pthread_mutex_unlock(&lock);
	t_mocknet_stop(m0);
	t_mocknet_stop(m1);
	return status;
}
