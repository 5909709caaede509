// SPDX-License-Identifier: MIT
/*
 * t-mockblk: the unit tests' mock blkif backend as a program, for the
 * integration tests of pvio-blkfront (pvio-backd is tested elsewhere).
 *
 *   t-mockblk --world DIR --fe DOMID --file PATH [--devid N]
 *             [--sector-size N] [--flush] [--discard] [--discard-gran N]
 *             [--max-queues N] [--max-ring-order N] [--max-indirect N]
 *             [--readonly]
 *
 * Serves the vbd that `pvio-ctl vbd-attach` made, as dom0, from PATH;
 * says "ready" on stdout; stops on SIGTERM or SIGINT.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pvio/platform.h>

#include "../unit/t-mockblk.h"

static void usage_error(const char *what)
{
	fprintf(stderr, "t-mockblk: %s\n", what);
	exit(2);
}

static unsigned int num(const char *s)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || v > 0xffffffffu)
		usage_error("bad number");
	return (unsigned int)v;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "world", required_argument, NULL, 'w' },
		{ "fe", required_argument, NULL, 'f' },
		{ "devid", required_argument, NULL, 'd' },
		{ "file", required_argument, NULL, 'F' },
		{ "sector-size", required_argument, NULL, 's' },
		{ "flush", no_argument, NULL, 'x' },
		{ "discard", no_argument, NULL, 'D' },
		{ "discard-gran", required_argument, NULL, 'g' },
		{ "max-queues", required_argument, NULL, 'q' },
		{ "max-ring-order", required_argument, NULL, 'o' },
		{ "max-indirect", required_argument, NULL, 'i' },
		{ "readonly", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct t_mockblk_cfg c = { .devid = 51712, .fe = 0 };
	const char *world = NULL, *file = NULL;
	struct t_mockblk *m;
	char spec[PVIO_PLATFORM_SPEC_MAX];
	sigset_t sigs;
	int opt, rc, sig;

	while ((opt = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (opt) {
		case 'w': world = optarg; break;
		case 'f': c.fe = num(optarg); break;
		case 'd': c.devid = num(optarg); break;
		case 'F': file = optarg; break;
		case 's': c.sector_size = num(optarg); break;
		case 'x': c.flush = true; break;
		case 'D': c.discard = true; break;
		case 'g': c.discard_gran = num(optarg); break;
		case 'q': c.max_queues = num(optarg); break;
		case 'o': c.max_ring_order = num(optarg); break;
		case 'i': c.max_indirect = num(optarg); break;
		case 'r': c.readonly = true; break;
		default: usage_error("unknown option");
		}
	}
	if (!world || !file || !c.fe || optind != argc)
		usage_error("--world DIR --fe DOMID --file PATH [options]");
	snprintf(spec, sizeof(spec), "sim:%s", world);
	c.spec = spec;
	c.fd = open(file, (c.readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (c.fd < 0) {
		fprintf(stderr, "t-mockblk: %s: %s\n", file, strerror(errno));
		return 1;
	}
	/* signals for sigwait only, in every thread */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	rc = t_mockblk_start(&m, &c);
	if (rc) {
		fprintf(stderr, "t-mockblk: cannot start: %s\n", strerror(-rc));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	sigwait(&sigs, &sig);
	t_mockblk_stop(m);
	close(c.fd);
	return 0;
}
