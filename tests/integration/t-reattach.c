// SPDX-License-Identifier: MIT
/*
 * t-reattach: detach a device and attach it again at once, as a toolstack
 * (dom0) in one process, so that the removal and the re-creation fall
 * between two of the backend's scans as often as the timing allows.
 *
 *   t-reattach DOMID vbd DEVID TARGET    vbd-detach; vbd-attach TARGET
 *   t-reattach DOMID vif DEVID MAC       vif-detach; vif-attach --mac MAC
 *
 * Runs in the sim world named by PVIO_PLATFORM/PVIO_SIM_DIR, as dom0.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pvio/platform.h>
#include <pvio/xenbus.h>

#include "toolstack.h"

int main(int argc, char **argv)
{
	struct pvio_platform *p;
	struct pvio_xs *x;
	unsigned int fe, devid;
	int rc;

	if (argc != 5) {
		fprintf(stderr, "usage: t-reattach DOMID vbd|vif DEVID TARGET|MAC\n");
		return 2;
	}
	fe = (unsigned int)strtoul(argv[1], NULL, 10);
	devid = (unsigned int)strtoul(argv[3], NULL, 10);
	rc = pvio_platform_open(&p, NULL, 0, 0);
	if (!rc)
		rc = pvio_xs_open(&x, p);
	if (rc) {
		fprintf(stderr, "t-reattach: dom0: %s\n", strerror(-rc));
		return 1;
	}
	rc = pvio_ts_dev_remove(x, argv[2], 0, fe, devid, 5000);
	if (rc && rc != -ENOENT) {
		fprintf(stderr, "t-reattach: remove: %s\n", strerror(-rc));
		return 1;
	}
	if (strcmp(argv[2], "vbd") == 0) {
		struct pvio_ts_vbd v = { .fe = fe, .be = 0, .devid = devid };

		snprintf(v.target, sizeof(v.target), "%s", argv[4]);
		rc = pvio_ts_vbd_add(x, &v);
	} else {
		struct pvio_ts_vif v = { .fe = fe, .be = 0, .devid = devid };

		rc = pvio_ts_parse_mac(argv[4], v.mac);
		if (!rc)
			rc = pvio_ts_vif_add(x, &v);
	}
	if (rc) {
		fprintf(stderr, "t-reattach: add: %s\n", strerror(-rc));
		return 1;
	}
	pvio_xs_close(x);
	pvio_platform_close(p);
	return 0;
}
