/* SPDX-License-Identifier: MIT */
/* ring/: internals shared by the ring layer's files. */
#ifndef PVIO_RING_PRIVATE_H
#define PVIO_RING_PRIVATE_H

#include <pvio/ring.h>
#include <pvio/gntio.h>

#endif
