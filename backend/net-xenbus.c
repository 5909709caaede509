// SPDX-License-Identifier: MIT
/* The vif backend: not in this build yet (the network issue adds it). */
#include "config.h"

#include <errno.h>

#include "private.h"

static int vif_probe(struct device *d)
{
	log_warn("%s: network devices are not served by this build", d->path);
	return -ENOSYS;
}

static int vif_connect(struct device *d)
{
	return -ENOSYS;
}

static void vif_nop(struct device *d)
{
}

const struct device_ops vif_ops = {
	.kind = "vif",
	.probe = vif_probe,
	.connect = vif_connect,
	.disconnect = vif_nop,
	.destroy = vif_nop,
};
