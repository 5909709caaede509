// SPDX-License-Identifier: MIT
/* pvio-bench net: written once the userspace netfront is in the tree. */
#include "config.h"

#include <stdio.h>

#include "bench.h"

int bench_net(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "pvio-bench: the net benchmark is not built yet\n");
	return 1;
}
