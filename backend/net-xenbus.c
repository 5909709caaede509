// SPDX-License-Identifier: MIT
/*
 * The vif control path: the TAP device vif<domid>.<devid> (in a bridge
 * when the toolstack names one), netback's feature keys before InitWait,
 * and at the frontend's Connected: its features and rings, parsed with
 * range checks, one dataplane queue per frontend queue.
 */
#include "config.h"

#include <errno.h>
#include <linux/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "net.h"

#define IFNAMSIZ_PVIO	16	/* IFNAMSIZ, with its NUL */
#include "toolstack.h"

static struct vif *VIF(struct device *d)
{
	return d->priv;
}

static bool valid_ifname(const char *s)
{
	return pvio_name_chars_ok(s) && strlen(s) < IFNAMSIZ_PVIO &&
	       strcmp(s, ".") && strcmp(s, "..");
}

/*
 * netback's hotplug protocol: with a "script" node, the toolstack runs the
 * script (vif-bridge, vif-openvswitch, vif-route, ...) on our TAP once we
 * are in InitWait, and the device connects only after the script wrote
 * hotplug-status=connected; hotplug-error, or no answer in time, fails it.
 */
static void vif_hotplug_check(struct device *d)
{
	struct vif *v = VIF(d);
	char *s = NULL;

	if (!v || !v->hotplug || v->hotplug_ok || d->failed || d->opening)
		return;
	if (device_hotplug_error(d, v->script))
		return;
	if (device_read_str(d, "hotplug-status", &s) >= 0 &&
	    strcmp(s, "connected") == 0) {
		free(s);
		v->hotplug_ok = true;
		log_info("%s: hotplug script %s set up %s", d->path, v->script,
			 v->ifname);
		device_recheck(d);	/* a frontend that waited connects now */
		return;
	}
	free(s);
	if (pvio_now_ns() - v->hotplug_since_ns >
	    (uint64_t)d->bd->o.hotplug_timeout_s * 1000000000u)
		device_setup_fail(d, -ETIMEDOUT,
				  "hotplug script %s did not answer in %u s "
				  "(no hotplug-status=connected)", v->script,
				  d->bd->o.hotplug_timeout_s);
}

/*
 * `rate` = "BYTES,USECS", parsed as xen_net_read_rate: absent means no
 * limit; a malformed value is reported and means no limit, as netback
 * ("Traffic unlimited"). Read at probe and whenever the node changes.
 */
static void vif_limits(struct device *d, const char *key)
{
	struct vif *v = VIF(d);
	unsigned long long b = 0, u = 0;
	char *s = NULL, *e;
	int rc;

	if (!v || (key && strcmp(key, "rate")))
		return;
	rc = device_read_str(d, "rate", &s);
	if (rc >= 0) {
		b = strtoull(s, &e, 10);
		if (e == s || *e != ',' || s[0] == '-') {
			b = 0;
		} else {
			char *u0 = e + 1;

			u = strtoull(u0, &e, 10);
			if (e == u0 || *e || *u0 == '-')
				b = u = 0;
		}
		if (!b && strcmp(s, "0,0"))
			log_warn("%s: cannot parse rate '%s': traffic unlimited",
				 d->path, s);
		free(s);
	}
	if (b == __atomic_load_n(&v->credit_bytes, __ATOMIC_RELAXED) &&
	    u == __atomic_load_n(&v->credit_usec, __ATOMIC_RELAXED))
		return;
	__atomic_store_n(&v->credit_usec, (uint64_t)u, __ATOMIC_RELAXED);
	__atomic_store_n(&v->credit_bytes, (uint64_t)b, __ATOMIC_RELAXED);
	if (b)
		log_info("%s: rate %llu bytes per %llu us", d->path, b, u);
	else
		log_info("%s: rate unlimited", d->path);
}

/* "pvio-backd SPEC PATH" on the TAP: whose it is (tap_set_alias()). */
static void vif_set_alias(struct device *d)
{
	struct vif *v = VIF(d);
	char spec[PVIO_PLATFORM_SPEC_MAX], alias[IFALIASZ];
	int rc;

	if (pvio_platform_spec(d->bd->plat, spec, sizeof(spec)))
		snprintf(spec, sizeof(spec), "?");
	/* a path is ~40 characters: the spec takes the rest, cut if need be */
	snprintf(alias, sizeof(alias), "pvio-backd %.180s %.63s", spec, d->path);
	rc = tap_set_alias(v->ifname, alias);
	if (rc)
		log_warn("%s: cannot label %s (alias): %s", d->path, v->ifname,
			 strerror(-rc));
}

/*
 * The OVSDB exchanges of a vif (backend/ovs.c) wait on ovsdb-server, up
 * to its 3 s bound: they run on ctlwork.c's serial lane, in order (a
 * port's removal never overtakes its addition, nor a re-created vif's
 * addition its predecessor's removal), while the main thread serves every
 * other device. The device is "opening" until ovs_done() goes on.
 */
enum ovs_op { OVS_ADD, OVS_QUERY, OVS_DEL };

struct ovs_job {
	struct ctl_job j;
	struct device *d;		/* main thread only (done); NULL: OVS_DEL */
	enum ovs_op op;
	const char *db;			/* backd_opts': lives as long as we do */
	struct ovs_port p;		/* its strings point into the job */
	char name[16];
	char mac[18];
	char vm_name[256];
	char path[PVIO_XS_PATH_MAX];
	char bridge[16];
	int rc;
	char err[256];
};

static void ovs_run(struct ctl_job *j)
{
	struct ovs_job *o = (struct ovs_job *)j;

	switch (o->op) {
	case OVS_ADD:
		o->rc = ovs_add_port(o->db, &o->p, o->err, sizeof(o->err));
		break;
	case OVS_QUERY:
		o->rc = ovs_bridge_userspace(o->db, o->p.br.name,
					     &o->p.userspace, o->err,
					     sizeof(o->err));
		break;
	case OVS_DEL:
		o->rc = ovs_del_port(o->db, o->name, o->err, sizeof(o->err));
		if (o->rc)
			log_warn("%s: %s stays a port of Open vSwitch bridge %s: %s",
				 o->path, o->name, o->bridge, o->err);
		break;
	}
}

/* Cancelled (the vif went) or nothing to act on: a port added stays for
 * the removal queued behind it (vif_destroy) */
static void ovs_drop(struct ctl_job *j)
{
	free(j);
}

static void ovs_done(struct ctl_job *j);

static struct ovs_job *ovs_job_new(struct device *d, enum ovs_op op)
{
	struct ovs_job *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->j.run = ovs_run;
	o->j.done = ovs_done;
	o->j.drop = ovs_drop;
	o->d = op == OVS_DEL ? NULL : d;
	o->op = op;
	o->db = d->bd->o.ovsdb;
	snprintf(o->path, sizeof(o->path), "%s", d->path);
	snprintf(o->name, sizeof(o->name), "%s", VIF(d)->ifname);
	o->p.name = o->name;
	return o;
}

/* -EINPROGRESS: the job goes on, ovs_done() finishes the probe */
static int ovs_job_start(struct device *d, struct ovs_job *o)
{
	struct vif *v = VIF(d);
	int rc = ctl_job_start(d->bd, &o->j, true);

	if (rc && o->op == OVS_DEL) {	/* the device is going: no node */
		log_warn("%s: %s stays a port of Open vSwitch bridge %s: %s",
			 d->path, o->name, o->bridge, strerror(-rc));
		free(o);
		return rc;
	}
	if (rc) {
		free(o);
		return pvio_xenbus_fatal(d->xb, rc, "cannot reach Open vSwitch: %s",
					 strerror(-rc));
	}
	if (o->op == OVS_DEL)
		return 0;
	v->ovs_job = o;
	return -EINPROGRESS;
}

/*
 * Without a script, pvio-backd puts the TAP in its bridge itself: a Linux
 * bridge of that name (as vif-bridge), else a port on an Open vSwitch
 * bridge, BR[.VLAN][:TRUNK...] as vif-openvswitch reads the node
 * (backend/ovs.c). A bridge that is neither fails the device.
 * -EINPROGRESS: OVSDB is asked, ovs_done() goes on.
 */
static int vif_bridge(struct device *d, struct vif *v)
{
	struct ovs_job *o;
	char err[256], path[64], *name = NULL;
	int rc;

	if (valid_ifname(v->bridge)) {
		rc = tap_bridge_add(v->ifname, v->bridge);
		if (rc != -ENODEV && rc != -EOPNOTSUPP) {
			if (rc)
				return pvio_xenbus_fatal(d->xb, rc, "cannot put %s in bridge %s: %s",
							 v->ifname, v->bridge,
							 strerror(-rc));
			v->br.tag = -1;
			/* valid_ifname(): it fits */
			memcpy(v->br.name, v->bridge, strlen(v->bridge) + 1);
			return 0;
		}
	}
	/* an OVS port cannot be a Linux bridge's too */
	rc = tap_leave_other_bridge(v->ifname, NULL);
	if (rc)
		return pvio_xenbus_fatal(d->xb, rc, "cannot take %s out of its old bridge: %s",
					 v->ifname, strerror(-rc));
	o = ovs_job_new(d, OVS_ADD);
	if (!o)
		return pvio_xenbus_fatal(d->xb, -ENOMEM, "no memory");
	rc = ovs_parse_bridge(v->bridge, &o->p.br, err, sizeof(err));
	if (rc) {
		free(o);
		return pvio_xenbus_fatal(d->xb, rc, "%s", err);
	}
	snprintf(o->mac, sizeof(o->mac), "%02x:%02x:%02x:%02x:%02x:%02x",
		 v->mac[0], v->mac[1], v->mac[2], v->mac[3], v->mac[4],
		 v->mac[5]);
	o->p.mac = o->mac;
	snprintf(path, sizeof(path), "/local/domain/%u/name", d->fe);
	if (pvio_xs_read(d->bd->xs, 0, path, &name) >= 0) {
		snprintf(o->vm_name, sizeof(o->vm_name), "%s", name);
		o->p.vm_name = o->vm_name;
		free(name);
	}
	return ovs_job_start(d, o);
}

/* The answer of OVSDB to vif_bridge() */
static int vif_bridge_done(struct device *d, struct vif *v,
			   struct ovs_job *o)
{
	int rc = o->rc;

	/* no such OVS bridge, or no OVS at all */
	if (rc == -ENODEV || rc == -ENOENT || rc == -ECONNREFUSED)
		return pvio_xenbus_fatal(d->xb, rc, "no bridge %s: not a Linux bridge; %s",
					 v->bridge, o->err);
	if (rc)
		return pvio_xenbus_fatal(d->xb, rc, "cannot put %s on Open vSwitch bridge %s: %s",
					 v->ifname, o->p.br.name, o->err);
	v->br = o->p.br;
	v->ovs = true;
	v->tap_no_offload = o->p.userspace;
	return 0;
}

/*
 * A script (vif-openvswitch) puts the TAP on the bridge, but whether the
 * guest may send offloads is decided before InitWait, when the frontend
 * reads our features: on an OVS bridge of the userspace datapath it may
 * not (vif->tap_no_offload). Anything else (a Linux bridge, no OVS, a
 * name the script will refuse) changes nothing. -EINPROGRESS: OVSDB is
 * asked, ovs_done() goes on; 0: nothing to ask.
 */
static int vif_script_bridge(struct device *d, struct vif *v)
{
	struct ovs_bridge_spec br;
	struct ovs_job *o;
	char err[256], *s = NULL;
	int rc = 0;

	if (device_read_str(d, "bridge", &s) < 0)
		return 0;
	if (strlen(s) < sizeof(v->bridge) &&
	    !ovs_parse_bridge(s, &br, err, sizeof(err))) {
		o = ovs_job_new(d, OVS_QUERY);
		if (o) {
			o->p.br = br;
			rc = ovs_job_start(d, o);
		}
	}
	free(s);
	return rc;
}

static int vif_offer(struct device *d, struct vif *v);
static void vif_untap(struct vif *v);

static int ovs_offer(struct device *d)
{
	return vif_offer(d, VIF(d));
}

/* Main thread: OVSDB answered (or its bound passed); the probe goes on. */
static void ovs_done(struct ctl_job *j)
{
	struct ovs_job *o = (struct ovs_job *)j;
	struct device *d = o->d;
	struct vif *v;
	int rc = 0;

	if (!d) {	/* OVS_DEL: reported by ovs_run() */
		free(o);
		return;
	}
	v = VIF(d);
	v->ovs_job = NULL;
	if (o->op == OVS_QUERY) {
		if (!o->rc && o->p.userspace) {
			v->tap_no_offload = true;
			log_info("%s: bridge %s: Open vSwitch's userspace datapath: no offloads",
				 d->path, o->p.br.name);
		}
	} else {
		rc = vif_bridge_done(d, v, o);
	}
	free(o);
	if (!rc) {
		device_opened(d, ovs_offer);
		/* the TAP goes with a failed offer only: not with a failed
		 * connect or re-attach after it (the guest's port, and its
		 * OVSDB record, which vif_destroy removes through it) */
		if (d->setup_failed)
			vif_untap(v);
		return;
	}
	vif_untap(v);
	device_probe_done(d, rc);
}

static int vif_probe(struct device *d)
{
	struct vif *v = calloc(1, sizeof(*v));
	unsigned long mtu;
	char *s = NULL;
	int rc;

	if (!v)
		return -ENOMEM;
	v->tap0 = -1;
	d->priv = v;
	if (device_read_str(d, "script", &s) >= 0) {
		v->hotplug = s[0] != 0;
		snprintf(v->script, sizeof(v->script), "%s", s);
		free(s);
	}
	if (device_read_str(d, "mac", &s) >= 0) {
		rc = pvio_ts_parse_mac(s, v->mac);
		if (rc)
			pvio_xenbus_fatal(d->xb, rc, "bad mac '%s' (xx:xx:xx:xx:xx:xx, unicast)", s);
		free(s);
		if (rc)
			return rc;
	}
	snprintf(v->ifname, sizeof(v->ifname), "vif%u.%u", d->fe, d->devid);
	if (device_read_str(d, "vifname", &s) >= 0) {
		rc = valid_ifname(s) ? 0 : -EINVAL;
		if (rc)
			pvio_xenbus_fatal(d->xb, rc, "bad vifname (1..15 of a-z A-Z 0-9 - _ .)");
		else
			snprintf(v->ifname, sizeof(v->ifname), "%s", s);
		free(s);
		if (rc)
			return rc;
	}
	/* the bridge is the script's business when there is one; only
	 * whether it is of OVS's userspace datapath is ours (asked once the
	 * TAP is there) */
	if (!v->hotplug && device_read_str(d, "bridge", &s) >= 0) {
		rc = strlen(s) < sizeof(v->bridge) ? 0 : -EINVAL;
		if (rc)
			pvio_xenbus_fatal(d->xb, rc, "bad bridge name (too long)");
		else
			snprintf(v->bridge, sizeof(v->bridge), "%s", s);
		free(s);
		if (rc)
			return rc;
	}
	if (device_read_uint(d, "mtu", 68, 65521, 0, false, &mtu))
		return pvio_xenbus_fatal(d->xb, -EINVAL, "bad mtu (68..65521)");
	v->mtu = (unsigned int)mtu;
	rc = tap_open(v->ifname, true, true, &v->tap0);
	if (!rc) {
		vif_set_alias(d);	/* first: a TAP failed below is still ours */
		rc = tap_setup(v->tap0, v->ifname, NULL);
	}
	if (!rc && v->mtu)
		rc = tap_set_mtu(v->ifname, v->mtu);
	if (rc) {
		pvio_xenbus_fatal(d->xb, rc, "cannot set up %s%s: %s",
				  v->ifname, v->mtu ? " (mtu)" : "",
				  strerror(-rc));
		vif_untap(v);
		return rc;
	}
	if (v->hotplug)
		rc = vif_script_bridge(d, v);
	else if (v->bridge[0])
		rc = vif_bridge(d, v);
	if (rc == -EINPROGRESS)
		return rc;	/* ovs_done() goes on */
	if (!rc)
		rc = vif_offer(d, v);
	if (rc)
		vif_untap(v);
	return rc;
}

/* The TAP is set up (and bridged): netback's keys, then InitWait. */
static int vif_offer(struct device *d, struct vif *v)
{
	struct backd *bd = d->bd;
	int rc;

	tap_set_carrier(v->tap0, false);
	/* netback's keys, before InitWait */
	rc = device_write(d, "feature-sg", "1");
	if (!rc)
		rc = device_write(d, "feature-gso-tcpv4", v->tap_no_offload ? "0" : "1");
	if (!rc)
		rc = device_write(d, "feature-gso-tcpv6", v->tap_no_offload ? "0" : "1");
	if (!rc)
		rc = device_write(d, "feature-ipv6-csum-offload", "1");
	if (!rc)
		rc = device_write(d, "feature-rx-copy", "1");
	if (!rc)
		rc = device_write(d, "feature-rx-flip", "0");
	if (!rc)
		rc = device_write(d, "feature-split-event-channels", "1");
	if (!rc)
		rc = device_write(d, "multi-queue-max-queues", "%u",
				  bd->o.max_queues);
	/* without a script we are the hotplug script: the TAP exists, in
	 * its bridge, the vif is usable */
	if (!rc && !v->hotplug)
		rc = device_write(d, "hotplug-status", "connected");
	if (rc)
		return rc;
	vif_limits(d, NULL);
	if (v->hotplug) {
		v->hotplug_since_ns = pvio_now_ns();
		log_info("%s: %s; waiting for hotplug script %s", d->path,
			 v->ifname, v->script);
		vif_hotplug_check(d);	/* a restarted pvio-backd: answered */
		return d->failed ? -EIO : 0;
	}
	log_info("%s: %s%s%s%s%s", d->path, v->ifname,
		 !v->bridge[0] ? "" : v->ovs ? " on Open vSwitch bridge " :
		 " in bridge ", v->bridge[0] ? v->br.name : "",
		 v->ovs && v->br.tag >= 0 ? " (VLAN tag)" : "",
		 v->tap_no_offload ? ", userspace datapath: no offloads" : "");
	return 0;
}

/* A vif that cannot be set up leaves no TAP behind: a persistent one
 * would outlive the failed device (and pvio-backd) for nothing */
static void vif_untap(struct vif *v)
{
	if (v->tap0 >= 0) {
		tap_remove(v->tap0);
		close(v->tap0);
		v->tap0 = -1;
	}
}

static void vif_tick(struct device *d)
{
	vif_hotplug_check(d);
}

static int fe_flag(struct device *d, const char *key, bool dflt, bool *out)
{
	char path[2 * PVIO_XS_PATH_MAX];
	int rc;

	snprintf(path, sizeof(path), "%s/%s", pvio_xenbus_otherend(d->xb), key);
	rc = pvio_xs_read_bool(d->bd->xs, 0, path, dflt, out);
	if (rc)
		pvio_xenbus_fatal(d->xb, rc, "bad %s", key);
	return rc;
}

static int read_queue(struct device *d, struct vif *v, unsigned int i,
		      unsigned int nr)
{
	const char *fe = pvio_xenbus_otherend(d->xb);
	char dir[PVIO_XS_PATH_MAX + 16], key[2 * PVIO_XS_PATH_MAX];
	unsigned long tx, rx, ptx, prx;
	struct net_queue *q;
	int rc;

	if (nr > 1)
		snprintf(dir, sizeof(dir), "%s/queue-%u", fe, i);
	else
		snprintf(dir, sizeof(dir), "%s", fe);
	snprintf(key, sizeof(key), "%s/tx-ring-ref", dir);
	rc = pvio_xs_read_uint(d->bd->xs, 0, key, 0, UINT32_MAX, &tx);
	if (!rc) {
		snprintf(key, sizeof(key), "%s/rx-ring-ref", dir);
		rc = pvio_xs_read_uint(d->bd->xs, 0, key, 0, UINT32_MAX, &rx);
	}
	if (rc)
		return pvio_xenbus_fatal(d->xb, rc, "reading ring refs of queue %u: %s",
					 i, strerror(-rc));
	/* split event channels, or one for both */
	snprintf(key, sizeof(key), "%s/event-channel-tx", dir);
	rc = pvio_xs_read_uint(d->bd->xs, 0, key, 1, (1u << 17) - 1, &ptx);
	if (rc == -ENOENT) {
		snprintf(key, sizeof(key), "%s/event-channel", dir);
		rc = pvio_xs_read_uint(d->bd->xs, 0, key, 1, (1u << 17) - 1, &ptx);
		prx = ptx;
	} else if (!rc) {
		snprintf(key, sizeof(key), "%s/event-channel-rx", dir);
		rc = pvio_xs_read_uint(d->bd->xs, 0, key, 1, (1u << 17) - 1, &prx);
	}
	/* per queue (net_queue_create); the vif's for its log and stats:
	 * any queue split */
	if (i == 0)
		v->split = false;
	v->split |= !rc && prx != ptx;
	if (rc)
		return pvio_xenbus_fatal(d->xb, rc, "reading event channels of queue %u: %s",
					 i, strerror(-rc));
	rc = net_queue_create(d, v, backd_pick_worker(d->bd), i,
			      (pvio_gref_t)tx, (pvio_gref_t)rx, (pvio_port_t)ptx,
			      (pvio_port_t)prx, d->reattach, &q);
	if (rc)
		return pvio_xenbus_fatal(d->xb, rc, "mapping rings of queue %u: %s",
					 i, strerror(-rc));
	d->queues[i] = &q->dq;
	d->nr_queues = i + 1;
	return 0;
}

static int vif_connect(struct device *d)
{
	struct vif *v = VIF(d);
	const char *fe = pvio_xenbus_otherend(d->xb);
	bool rx_copy = false, no_csum = false;
	unsigned int nq, i;
	int rc;

	if (v->hotplug && !v->hotplug_ok) {
		/* netback too waits for hotplug-status */
		log_info("%s: frontend waits for the hotplug script", d->path);
		return -EAGAIN;
	}
	rc = fe_flag(d, "request-rx-copy", false, &rx_copy);
	if (rc)
		return rc;
	if (!rx_copy)
		return pvio_xenbus_fatal(d->xb, -EOPNOTSUPP,
					 "the frontend must request rx-copy");
	if (fe_flag(d, "feature-rx-notify", false, &v->fe_rx_notify) ||
	    fe_flag(d, "feature-sg", false, &v->fe_sg) ||
	    fe_flag(d, "feature-gso-tcpv4", false, &v->fe_gso4) ||
	    fe_flag(d, "feature-gso-tcpv6", false, &v->fe_gso6) ||
	    fe_flag(d, "feature-no-csum-offload", false, &no_csum) ||
	    fe_flag(d, "feature-ipv6-csum-offload", false, &v->fe_ipv6_csum))
		return -EINVAL;
	v->fe_csum = !no_csum;
	/* GSO towards the guest needs scatter-gather too */
	v->fe_gso4 = v->fe_gso4 && v->fe_sg && v->fe_csum;
	v->fe_gso6 = v->fe_gso6 && v->fe_sg && v->fe_csum && v->fe_ipv6_csum;
	rc = pvio_xb_read_queues(d->bd->xs, fe, d->bd->o.max_queues, &nq);
	if (rc)
		return pvio_xenbus_fatal(d->xb, rc, "bad multi-queue-num-queues (max %u)",
					 d->bd->o.max_queues);
	d->queues = calloc(nq, sizeof(*d->queues));
	if (!d->queues)
		return pvio_xenbus_fatal(d->xb, -ENOMEM, "no memory");
	d->nr_queues = 0;
	for (i = 0; i < nq; i++) {
		rc = read_queue(d, v, i, nq);
		if (rc) {
			device_stop_queues(d);
			return rc;
		}
	}
	v->nr_queues = nq;
	/* what the kernel may hand us for this guest */
	v->offloads = 0;
	if (v->fe_csum)
		v->offloads |= 0x1;	/* TUN_F_CSUM */
	if (v->fe_gso4)
		v->offloads |= 0x2;	/* TUN_F_TSO4 */
	if (v->fe_gso6)
		v->offloads |= 0x4;	/* TUN_F_TSO6 */
	for (i = 0; i < nq; i++) {
		rc = tap_set_offloads(NQ(d->queues[i])->tap_fd, v->offloads);
		if (rc) {
			device_stop_queues(d);
			return pvio_xenbus_fatal(d->xb, rc, "TAP offloads: %s",
						 strerror(-rc));
		}
	}
	/* netback's rule (xenvif_carrier_on()): a frontend without
	 * scatter-gather takes a frame in one slot, and dom0's stack learns
	 * it from the MTU; a larger frame is dropped on its way (rx_deliver) */
	if (!v->fe_sg) {
		unsigned int mtu;

		if (!tap_get_mtu(v->ifname, &mtu) && mtu > NET_NOSG_MTU) {
			rc = tap_set_mtu(v->ifname, NET_NOSG_MTU);
			if (rc)
				dev_warn(d, "%s: the frontend has no feature-sg, and its MTU %u cannot be lowered to %u: %s",
					 v->ifname, mtu, NET_NOSG_MTU, strerror(-rc));
			else
				dev_info(d, "%s: MTU %u lowered to %u: the frontend has no feature-sg",
					 v->ifname, mtu, NET_NOSG_MTU);
		}
	}
	for (i = 0; i < nq; i++)
		worker_start_queue(d->queues[i]->w, d->queues[i]);
	tap_set_carrier(v->tap0, true);
	dev_info(d, "%s: connected, %u queue%s, %s event channel%s, sg %d gso %d/%d csum %d",
		 d->path, nq, nq > 1 ? "s" : "", v->split ? "split" : "one",
		 v->split ? "s" : "", v->fe_sg, v->fe_gso4, v->fe_gso6, v->fe_csum);
	return 0;
}

static void vif_disconnect(struct device *d)
{
	struct vif *v = VIF(d);

	if (v && v->tap0 >= 0)
		tap_set_carrier(v->tap0, false);
	device_stop_queues(d);
}

/*
 * Removed while OVSDB was asked: the answer goes nowhere; a port the
 * addition may have made is the vif's, removed with it (vif_destroy).
 */
static void vif_abort(struct device *d)
{
	struct vif *v = VIF(d);
	struct ovs_job *o = v ? v->ovs_job : NULL;

	if (!o)
		return;
	if (o->op == OVS_ADD) {
		v->ovs = true;
		v->br = o->p.br;
	}
	ctl_job_cancel(d->bd, &o->j);
	v->ovs_job = NULL;
}

static void vif_destroy(struct device *d)
{
	struct vif *v = VIF(d);
	bool ovs_port = false;
	char br[16] = "";

	if (!v)
		return;
	vif_abort(d);
	if (v->ovs) {
		ovs_port = true;
		snprintf(br, sizeof(br), "%s", v->br.name);
	}
	if (v->tap0 >= 0 && d->detaching) {
		/* SIGTERM: the TAP stays, with its addresses and bridge
		 * membership, for the next pvio-backd (as after a crash) */
		close(v->tap0);
	} else if (v->tap0 >= 0) {
		struct ovs_job *o;

		if (!ovs_port)
			tap_unbridge(v->ifname, v->br.name);
		tap_remove(v->tap0);
		close(v->tap0);	/* the TAP goes with its last fd */
		/* the port's record, as del-port: on the serial lane, after
		 * its addition and before a re-created vif's */
		o = ovs_port ? ovs_job_new(d, OVS_DEL) : NULL;
		if (o) {
			snprintf(o->bridge, sizeof(o->bridge), "%s", br);
			ovs_job_start(d, o);
		} else if (ovs_port) {
			log_warn("%s: %s stays a port of Open vSwitch bridge %s: no memory",
				 d->path, v->ifname, br);
		}
	}
	free(v);
	d->priv = NULL;
}

static void vif_describe(struct device *d, struct json_object *o)
{
	struct vif *v = VIF(d);
	char mac[18];

	if (!v) {
		json_object_object_add(o, "ifname", NULL);
		return;
	}
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", v->mac[0],
		 v->mac[1], v->mac[2], v->mac[3], v->mac[4], v->mac[5]);
	json_add_name(o, "ifname", v->ifname);
	json_add_name(o, "bridge", v->bridge);
	if (v->ovs) {
		json_object_object_add(o, "ovs_bridge",
				       json_object_new_string(v->br.name));
		json_object_object_add(o, "vlan", v->br.tag < 0 ? NULL :
				       json_object_new_int(v->br.tag));
	}
	if (v->hotplug)
		json_add_name(o, "script", v->script);
	json_object_object_add(o, "mtu", json_object_new_uint64(v->mtu));
	json_object_object_add(o, "mac", json_object_new_string(mac));
	json_object_object_add(o, "split_evtchn",
			       json_object_new_boolean(v->split));
}

const struct device_ops vif_ops = {
	.kind = "vif",
	.probe = vif_probe,
	.connect = vif_connect,
	.disconnect = vif_disconnect,
	.destroy = vif_destroy,
	.abort = vif_abort,
	.describe = vif_describe,
	.tick = vif_tick,
	.changed = vif_hotplug_check,
	.limits = vif_limits,
};
