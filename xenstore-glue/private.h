/* SPDX-License-Identifier: MIT */
/* xenstore-glue/: internals. */
#ifndef PVIO_XSGLUE_PRIVATE_H
#define PVIO_XSGLUE_PRIVATE_H

#include <pvio/xenbus.h>

/* hypercall/: the sim world's directory, NULL on xen */
const char *pvio__platform_sim_dir(const struct pvio_platform *p);

#endif
