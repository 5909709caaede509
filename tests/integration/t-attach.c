// SPDX-License-Identifier: MIT
/*
 * t-attach WORLD DOMID: attach this process to the sim world in WORLD as
 * domain DOMID (creating it if need be), say "ready" on stdout, then sleep
 * until killed. The domain lives as long as this process does.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <pvio/platform.h>

int main(int argc, char **argv)
{
	struct pvio_platform *p;
	unsigned long domid;
	char *spec, *end;
	size_t len;
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: t-attach WORLD DOMID\n");
		return 2;
	}
	errno = 0;
	domid = strtoul(argv[2], &end, 10);
	if (errno || end == argv[2] || *end || domid > 0x7fef) {
		fprintf(stderr, "t-attach: bad domid '%s'\n", argv[2]);
		return 2;
	}
	len = strlen(argv[1]) + sizeof("sim:");
	spec = malloc(len);
	if (!spec)
		return 1;
	snprintf(spec, len, "sim:%s", argv[1]);
	rc = pvio_platform_open(&p, spec, (unsigned int)domid,
				PVIO_PLATFORM_CREATE);
	free(spec);
	if (rc) {
		fprintf(stderr, "t-attach: domain %lu: %s\n", domid,
			strerror(-rc));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
