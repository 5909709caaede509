// SPDX-License-Identifier: MIT
/* libxl's xenstore writing, for pvio-ctl and the tests. */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pvio/base.h>

#include "private.h"
#include "toolstack.h"
#include "util.h"	/* PVIO_PATH_BUF */

int pvio_ts_vdev_number(const char *vdev, unsigned int *devid)
{
	unsigned long v;
	char *end;

	if (!vdev || !*vdev)
		return -EINVAL;
	if (vdev[0] >= '0' && vdev[0] <= '9') {
		v = strtoul(vdev, &end, 10);
		if (*end || v == 0 || v > 0xfffffff)
			return -EINVAL;
		*devid = (unsigned int)v;
		return 0;
	}
	/* xvd[a-p][1-15]: (202 << 8) | (disk << 4) | partition */
	if (strncmp(vdev, "xvd", 3) || vdev[3] < 'a' || vdev[3] > 'p')
		return -EINVAL;
	v = 0;
	if (vdev[4]) {
		v = strtoul(vdev + 4, &end, 10);
		if (*end || vdev[4] == '0' || v > 15)
			return -EINVAL;
	}
	*devid = (202u << 8) | ((unsigned int)(vdev[3] - 'a') << 4) |
		 (unsigned int)v;
	return 0;
}

int pvio_ts_parse_mac(const char *s, uint8_t mac[6])
{
	if (!s || pvio_xb_parse_mac(s, mac))
		return -EINVAL;
	if (mac[0] & 1)
		return -EINVAL;	/* multicast */
	return 0;
}

/* Retry a transaction body on EAGAIN, as every xenstore user must. */
#define TX_RETRY(x, tx, rc, body)					\
	do {								\
		int tries_ = 0;						\
		do {							\
			rc = pvio_xs_tx_start(x, &tx);			\
			if (rc)						\
				break;					\
			body;						\
			if (rc) {					\
				pvio_xs_tx_end(x, tx, true);		\
				break;					\
			}						\
			rc = pvio_xs_tx_end(x, tx, false);		\
		} while (rc == -EAGAIN && ++tries_ < 100);		\
	} while (0)

static int mkdir_perms(struct pvio_xs *x, pvio_xs_tx_t tx, const char *path,
		       unsigned int owner, char access, unsigned int reader)
{
	char p0[16], p1[16];
	const char *perms[2] = { p0, p1 };
	int rc = pvio_xs_mkdir(x, tx, path);

	if (rc)
		return rc;
	snprintf(p0, sizeof(p0), "n%u", owner);
	snprintf(p1, sizeof(p1), "%c%u", access, reader);
	return pvio_xs_set_perms(x, tx, path, perms, owner == reader ? 1 : 2);
}

static int wr(struct pvio_xs *x, pvio_xs_tx_t tx, const char *dir,
	      const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static int wr(struct pvio_xs *x, pvio_xs_tx_t tx, const char *dir,
	      const char *key, const char *fmt, ...)
{
	char path[PVIO_XS_PATH_MAX + 64], val[PVIO_PATH_BUF];
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	return pvio_xs_write(x, tx, path, val);
}

int pvio_ts_domain_add(struct pvio_xs *x, unsigned int domid, const char *name)
{
	static const char *const rw_dirs[] = {
		"data", "drivers", "feature", "attr", "error", "control/shutdown",
	};
	char dom[64], path[128];
	pvio_xs_tx_t tx;
	unsigned int i;
	int rc;

	snprintf(dom, sizeof(dom), "/local/domain/%u", domid);
	TX_RETRY(x, tx, rc, {
		/* the domain reads its own directory; dom0 owns it */
		rc = mkdir_perms(x, tx, dom, 0, 'r', domid);
		if (!rc)
			rc = wr(x, tx, dom, "name", "%s", name);
		if (!rc)
			rc = wr(x, tx, dom, "domid", "%u", domid);
		if (!rc) {
			snprintf(path, sizeof(path), "%s/device", dom);
			rc = mkdir_perms(x, tx, path, 0, 'r', domid);
		}
		if (!rc) {
			snprintf(path, sizeof(path), "%s/control", dom);
			rc = mkdir_perms(x, tx, path, 0, 'r', domid);
		}
		for (i = 0; !rc && i < sizeof(rw_dirs) / sizeof(rw_dirs[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", dom, rw_dirs[i]);
			rc = mkdir_perms(x, tx, path, domid, 'n', domid);
		}
	});
	return rc;
}

int pvio_ts_domain_rm(struct pvio_xs *x, unsigned int domid)
{
	char path[PVIO_XS_PATH_MAX + 64], **doms = NULL, **kinds = NULL;
	int nd, nk, i, j, rc;

	/* backend directories that serve this domain, in any domain */
	nd = pvio_xs_directory(x, 0, "/local/domain", &doms);
	for (i = 0; i < nd; i++) {
		snprintf(path, sizeof(path), "/local/domain/%s/backend", doms[i]);
		nk = pvio_xs_directory(x, 0, path, &kinds);
		for (j = 0; j < nk; j++) {
			snprintf(path, sizeof(path), "/local/domain/%s/backend/%s/%u",
				 doms[i], kinds[j], domid);
			pvio_xs_rm(x, 0, path);
		}
		free(kinds);
		kinds = NULL;
	}
	free(doms);
	snprintf(path, sizeof(path), "/local/domain/%u", domid);
	rc = pvio_xs_rm(x, 0, path);
	snprintf(path, sizeof(path), "/libxl/%u", domid);
	pvio_xs_rm(x, 0, path);
	return rc;
}

int pvio_ts_domain_lookup(struct pvio_xs *x, const char *name_or_id,
			  unsigned int *domid)
{
	char path[96], **doms = NULL, *nm;
	unsigned long v;
	int n, i, rc = -ESRCH;
	char *end;

	v = strtoul(name_or_id, &end, 10);
	if (*name_or_id && !*end && v <= 0x7fef) {
		snprintf(path, sizeof(path), "/local/domain/%lu", v);
		if (!pvio_xs_exists(x, 0, path))
			return -ESRCH;
		*domid = (unsigned int)v;
		return 0;
	}
	n = pvio_xs_directory(x, 0, "/local/domain", &doms);
	for (i = 0; i < n && rc; i++) {
		snprintf(path, sizeof(path), "/local/domain/%s/name", doms[i]);
		if (pvio_xs_read(x, 0, path, &nm) < 0)
			continue;
		if (strcmp(nm, name_or_id) == 0) {
			*domid = (unsigned int)strtoul(doms[i], NULL, 10);
			rc = 0;
		}
		free(nm);
	}
	free(doms);
	return rc;
}

static int add_dirs(struct pvio_xs *x, pvio_xs_tx_t tx, const char *fe_dir,
		    const char *be_dir, unsigned int fe, unsigned int be)
{
	int rc;

	if (pvio_xs_exists(x, tx, fe_dir) || pvio_xs_exists(x, tx, be_dir))
		return -EEXIST;
	/* the guest owns its frontend dir, the backend reads it */
	rc = mkdir_perms(x, tx, fe_dir, fe, 'r', be);
	if (!rc)
		rc = wr(x, tx, fe_dir, "backend", "%s", be_dir);
	if (!rc)
		rc = wr(x, tx, fe_dir, "backend-id", "%u", be);
	if (!rc)
		rc = wr(x, tx, fe_dir, "state", "1");
	/* the backend domain owns the backend dir, the guest reads it */
	if (!rc)
		rc = mkdir_perms(x, tx, be_dir, be, 'r', fe);
	if (!rc)
		rc = wr(x, tx, be_dir, "frontend", "%s", fe_dir);
	if (!rc)
		rc = wr(x, tx, be_dir, "frontend-id", "%u", fe);
	if (!rc)
		rc = wr(x, tx, be_dir, "online", "1");
	if (!rc)
		rc = wr(x, tx, be_dir, "state", "1");
	return rc;
}

int pvio_ts_vbd_add(struct pvio_xs *x, const struct pvio_ts_vbd *v)
{
	char fe_dir[PVIO_XS_PATH_MAX], be_dir[PVIO_XS_PATH_MAX];
	const char *type = v->type[0] ? v->type : "vbd";
	unsigned int devid = v->devid;
	pvio_xs_tx_t tx;
	int rc;

	if (!devid && pvio_ts_vdev_number(v->vdev, &devid))
		return -EINVAL;
	if (!v->target[0] || strchr(v->target, '\n'))
		return -EINVAL;
	pvio_xb_frontend_path(fe_dir, v->fe, "vbd", devid);
	pvio_xb_backend_path(be_dir, v->be, type, v->fe, devid);
	TX_RETRY(x, tx, rc, {
		rc = add_dirs(x, tx, fe_dir, be_dir, v->fe, v->be);
		if (!rc)
			rc = wr(x, tx, fe_dir, "virtual-device", "%u", devid);
		if (!rc)
			rc = wr(x, tx, fe_dir, "device-type", "disk");
		if (!rc)
			rc = wr(x, tx, be_dir, "params", "%s", v->target);
		if (!rc)
			rc = wr(x, tx, be_dir, "mode", v->readonly ? "r" : "w");
		if (!rc)
			rc = wr(x, tx, be_dir, "type", "%s", type);
		if (!rc)
			rc = wr(x, tx, be_dir, "dev", "%s", v->vdev[0] ? v->vdev : "xvda");
		if (!rc)
			rc = wr(x, tx, be_dir, "device-type", "disk");
		if (!rc)
			rc = wr(x, tx, be_dir, "removable", "0");
		if (!rc)
			rc = wr(x, tx, be_dir, "bootable", "1");
		if (!rc)
			rc = wr(x, tx, be_dir, "direct-io-safe", v->buffered ? "0" : "1");
		if (!rc && v->no_discard)
			rc = wr(x, tx, be_dir, "discard-enable", "0");
		if (!rc && v->script[0])
			rc = wr(x, tx, be_dir, "script", "%s", v->script);
	});
	return rc;
}

int pvio_ts_vif_add(struct pvio_xs *x, const struct pvio_ts_vif *v)
{
	char fe_dir[PVIO_XS_PATH_MAX], be_dir[PVIO_XS_PATH_MAX], mac[18];
	const char *type = v->type[0] ? v->type : "vif";
	pvio_xs_tx_t tx;
	int rc;

	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", v->mac[0],
		 v->mac[1], v->mac[2], v->mac[3], v->mac[4], v->mac[5]);
	pvio_xb_frontend_path(fe_dir, v->fe, "vif", v->devid);
	pvio_xb_backend_path(be_dir, v->be, type, v->fe, v->devid);
	TX_RETRY(x, tx, rc, {
		rc = add_dirs(x, tx, fe_dir, be_dir, v->fe, v->be);
		if (!rc)
			rc = wr(x, tx, fe_dir, "handle", "%u", v->devid);
		if (!rc)
			rc = wr(x, tx, fe_dir, "mac", "%s", mac);
		if (!rc)
			rc = wr(x, tx, be_dir, "handle", "%u", v->devid);
		if (!rc)
			rc = wr(x, tx, be_dir, "mac", "%s", mac);
		if (!rc)
			rc = wr(x, tx, be_dir, "type", "%s", type);
		/* as libxl: a script node only when the toolstack runs one */
		if (!rc && v->script[0])
			rc = wr(x, tx, be_dir, "script", "%s", v->script);
		if (!rc && v->bridge[0])
			rc = wr(x, tx, be_dir, "bridge", "%s", v->bridge);
		if (!rc && v->vifname[0])
			rc = wr(x, tx, be_dir, "vifname", "%s", v->vifname);
		if (!rc && v->ip[0])
			rc = wr(x, tx, be_dir, "ip", "%s", v->ip);
		if (!rc && v->mtu)
			rc = wr(x, tx, be_dir, "mtu", "%u", v->mtu);
		if (!rc)
			rc = wr(x, tx, be_dir, "hotplug-status", "%s", "");
	});
	return rc;
}

/*
 * Remove @path and then each parent left empty, up to the domain's own
 * directory, as libxl's libxl__xs_path_cleanup: a detach leaves no empty
 * .../backend/vbd/<domid> behind. One transaction: a parent that gains a
 * child meanwhile (an attach) is kept.
 */
static void rm_cleanup(struct pvio_xs *x, const char *path)
{
	char p[PVIO_XS_PATH_MAX], **ents = NULL, *slash;
	pvio_xs_tx_t tx;
	int rc, n;

	TX_RETRY(x, tx, rc, {
		snprintf(p, sizeof(p), "%s", path);
		rc = pvio_xs_rm(x, tx, p);
		if (rc == -ENOENT)
			rc = 0;
		while (!rc && (slash = strrchr(p, '/')) && slash != p) {
			*slash = 0;
			/* stop at /local/domain/<id> */
			if (strncmp(p, "/local/domain/", 14) == 0 &&
			    !strchr(p + 14, '/'))
				break;
			n = pvio_xs_directory(x, tx, p, &ents);
			free(ents);
			ents = NULL;
			if (n != 0)
				break;
			rc = pvio_xs_rm(x, tx, p);
		}
	});
}

int pvio_ts_dev_close(struct pvio_xs *x, const char *type, unsigned int be,
		      unsigned int fe, unsigned int devid, int timeout_ms)
{
	char be_dir[PVIO_XS_PATH_MAX], key[PVIO_XS_PATH_MAX + 16];
	uint64_t deadline = pvio_now_ms() + (uint64_t)timeout_ms;
	pvio_xs_tx_t tx;
	int rc;

	pvio_xb_backend_path(be_dir, be, type, fe, devid);
	if (!pvio_xs_exists(x, 0, be_dir))
		return -ENOENT;
	TX_RETRY(x, tx, rc, {
		rc = wr(x, tx, be_dir, "online", "0");
		if (!rc)
			rc = wr(x, tx, be_dir, "state", "5");
	});
	snprintf(key, sizeof(key), "%s/state", be_dir);
	while (pvio_now_ms() < deadline) {
		unsigned long st;

		if (pvio_xs_read_uint(x, 0, key, 0, 8, &st) || st == 6)
			return 0;
		poll(NULL, 0, 20);
	}
	return -ETIMEDOUT;
}

void pvio_ts_dev_rm(struct pvio_xs *x, const char *type, unsigned int be,
		    unsigned int fe, unsigned int devid)
{
	char be_dir[PVIO_XS_PATH_MAX], fe_dir[PVIO_XS_PATH_MAX];
	char key[PVIO_XS_PATH_MAX + 16], *fe_path = NULL;
	const char *kind = strncmp(type, "vif", 3) == 0 ? "vif" : "vbd";

	pvio_xb_backend_path(be_dir, be, type, fe, devid);
	snprintf(key, sizeof(key), "%s/frontend", be_dir);
	if (pvio_xs_read(x, 0, key, &fe_path) < 0)
		fe_path = NULL;
	rm_cleanup(x, be_dir);
	if (fe_path) {
		rm_cleanup(x, fe_path);
		free(fe_path);
	} else {
		pvio_xb_frontend_path(fe_dir, fe, kind, devid);
		rm_cleanup(x, fe_dir);
	}
}

int pvio_ts_dev_remove(struct pvio_xs *x, const char *type, unsigned int be,
		       unsigned int fe, unsigned int devid, int timeout_ms)
{
	int rc = pvio_ts_dev_close(x, type, be, fe, devid, timeout_ms);

	if (rc != -ENOENT)
		pvio_ts_dev_rm(x, type, be, fe, devid);
	return rc;
}

int pvio_ts_parse_rate(const char *s, uint64_t *bytes, uint64_t *usec)
{
	unsigned long long n, slice = 50000;
	char *e;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	n = strtoull(s, &e, 10);
	if (e == s || errno)
		return -EINVAL;
	if (*e == ',') {	/* BYTES,USECS */
		const char *u = e + 1;

		if (*u == '-' || *u == '+')
			return -EINVAL;
		slice = strtoull(u, &e, 10);
		if (e == u || *e || errno || !n || !slice)
			return -EINVAL;
		*bytes = n;
		*usec = slice;
		return 0;
	}
	switch (*e) {	/* xl: 10Mb/s@20ms */
	case 'G': n *= 1000; /* fall through */
	case 'M': n *= 1000; /* fall through */
	case 'K': n *= 1000; e++; break;
	default: break;
	}
	if (*e == 'b')
		n /= 8;
	else if (*e != 'B')
		return -EINVAL;
	if (strncmp(e + 1, "/s", 2))
		return -EINVAL;
	e += 3;
	if (*e == '@') {
		const char *t = e + 1;

		if (*t == '-' || *t == '+')
			return -EINVAL;
		slice = strtoull(t, &e, 10);
		if (e == t || errno)
			return -EINVAL;
		if (!strcmp(e, "s"))
			slice *= 1000000;
		else if (!strcmp(e, "ms"))
			slice *= 1000;
		else if (strcmp(e, "us"))
			return -EINVAL;
		e += strlen(e);
	}
	if (*e || !slice || n * slice / 1000000 == 0)
		return -EINVAL;
	*bytes = n * slice / 1000000;
	*usec = slice;
	return 0;
}
