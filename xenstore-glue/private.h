/* SPDX-License-Identifier: MIT */
/* xenstore-glue/: internals. */
#ifndef PVIO_XSGLUE_PRIVATE_H
#define PVIO_XSGLUE_PRIVATE_H

#include <pvio/xenbus.h>

#endif
