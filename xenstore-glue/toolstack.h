/* SPDX-License-Identifier: MIT */
/*
 * What a toolstack writes into xenstore, as libxl does, so that the same
 * backend serves the sim world and Xen: a domain's nodes, and a device's
 * frontend and backend directories in one transaction with libxl's
 * permissions. Used by pvio-ctl and the tests (and, on Xen, to attach a
 * device to a userspace backend by hand, as `xl block-attach` would).
 */
#ifndef PVIO_TOOLSTACK_H
#define PVIO_TOOLSTACK_H

#include <stdbool.h>
#include <stdint.h>

#include <pvio/xenbus.h>

struct pvio_ts_vbd {
	unsigned int fe, be;
	unsigned int devid;		/* virtual-device; 0: from @vdev */
	char vdev[16];			/* "xvda" */
	char target[4096];		/* file or block device */
	char type[16];			/* backend kind, default "vbd" */
	bool readonly;
	bool buffered;			/* per-device: no O_DIRECT */
	bool no_discard;		/* discard-enable 0 (xl's no-discard) */
	char script[256];		/* hotplug script ("": none) */
};

struct pvio_ts_vif {
	unsigned int fe, be;
	unsigned int devid;
	uint8_t mac[6];
	char bridge[64];		/* "" for none; BR[.VLAN][:TRUNK...] */
	char type[16];			/* backend kind, default "vif" */
	char script[256];		/* hotplug script ("": none) */
	char vifname[16];		/* the TAP's name ("": vif<dom>.<dev>) */
	char ip[256];			/* for the scripts (vif-route) */
	unsigned int mtu;		/* 0: none written */
};

/* xvda -> 51712, xvdb -> 51728, xvda1 -> 51713, "51712" -> 51712;
 * -EINVAL for anything else. */
int pvio_ts_vdev_number(const char *vdev, unsigned int *devid);
/* "00:16:3e:12:34:56"; -EINVAL for anything else (multicast refused). */
int pvio_ts_parse_mac(const char *s, uint8_t mac[6]);
/*
 * A vif's `rate` as xl takes it: "BYTES,USECS" (the node's own form), or
 * "N{,K,M,G}{B,b}/s[@N{s,ms,us}]" (bytes or bits per second, credited
 * every 50 ms unless said). Return 0 or -EINVAL.
 */
int pvio_ts_parse_rate(const char *s, uint64_t *bytes, uint64_t *usec);

/* /local/domain/<domid> with name, domid and the guest-writable dirs. */
int pvio_ts_domain_add(struct pvio_xs *x, unsigned int domid, const char *name);
/* Remove the domain's nodes and every backend directory that serves it. */
int pvio_ts_domain_rm(struct pvio_xs *x, unsigned int domid);
/* Find a domain by name or number in /local/domain. */
int pvio_ts_domain_lookup(struct pvio_xs *x, const char *name_or_id,
			  unsigned int *domid);

/* Both directories, one transaction; -EEXIST if the device is there. */
int pvio_ts_vbd_add(struct pvio_xs *x, const struct pvio_ts_vbd *v);
int pvio_ts_vif_add(struct pvio_xs *x, const struct pvio_ts_vif *v);
/*
 * As libxl's device remove: backend online=0 and state Closing, wait up to
 * @timeout_ms for the backend to reach Closed, then remove both
 * directories. Return 0, or -ETIMEDOUT after removing them anyway.
 */
int pvio_ts_dev_remove(struct pvio_xs *x, const char *type, unsigned int be,
		       unsigned int fe, unsigned int devid, int timeout_ms);
/*
 * Its two halves, for a toolstack that runs the hotplug script's remove
 * (offline) step in between, as libxl does, while the backend directory
 * (the script's XENBUS_PATH) is still there: close (0, -ENOENT if there is
 * no such device, -ETIMEDOUT if the backend did not reach Closed), and
 * remove both directories.
 */
int pvio_ts_dev_close(struct pvio_xs *x, const char *type, unsigned int be,
		      unsigned int fe, unsigned int devid, int timeout_ms);
void pvio_ts_dev_rm(struct pvio_xs *x, const char *type, unsigned int be,
		    unsigned int fe, unsigned int devid);

#endif
