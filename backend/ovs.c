// SPDX-License-Identifier: MIT
/*
 * Open vSwitch ports for the vifs pvio-backd attaches itself (a vif
 * without a hotplug script whose bridge is not a Linux bridge): what
 * `ovs-vsctl --may-exist add-port BR VIF tag=VLAN` and `ovs-vsctl
 * --if-exists del-port VIF` do, as OVSDB transactions (RFC 7047's
 * JSON-RPC, json-c) on ovsdb-server's unix socket.
 *
 * Why not run ovs-vsctl: a confined pvio-backd execs nothing and has
 * dropped every capability but CAP_NET_ADMIN (backend/confine.c); a unix
 * socket and connect() are all this needs, and ovsdb-server's db.sock
 * belongs to root, as pvio-backd's uid. ovs-vswitchd applies the new row
 * itself, as after ovs-vsctl (we bump next_cfg as it does, without
 * waiting for cur_cfg: the guest's first packets come later anyway).
 *
 * Each call is one short synchronous exchange with ovsdb-server, bounded
 * by OVS_TIMEOUT_MS: ovsdb-server is a local daemon that answers in well
 * under a millisecond; a hung one costs an attach that much, then the vif
 * fails with an error node and pvio-backd goes on.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "net.h"

#define OVS_TIMEOUT_MS	3000
#define OVS_MAX_REPLY	(4u << 20)	/* a select of one bridge's row */

static void seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* a JSON value's string, "" for null (whatever ovsdb-server sends) */
static const char *jstr(struct json_object *o)
{
	const char *s = json_object_get_string(o);

	return s ? s : "";
}

/*
 * BR[.VLAN][:TRUNK[:TRUNK...]], as Xen's vif-openvswitch reads the bridge
 * node: BR has neither '.' nor ':'; VLAN and trunks are OVS's 0..4095.
 */
int ovs_parse_bridge(const char *spec, struct ovs_bridge_spec *o,
		     char *err, size_t len)
{
	const char *p = spec, *e;
	unsigned long n;
	char *end;

	memset(o, 0, sizeof(*o));
	o->tag = -1;
	e = p + strcspn(p, ".:");
	if (e == p || (size_t)(e - p) >= sizeof(o->name)) {
		seterr(err, len, "bad bridge '%s' (BR[.VLAN][:TRUNK...], BR 1..15 characters)",
		       spec);
		return -EINVAL;
	}
	memcpy(o->name, p, (size_t)(e - p));
	o->name[e - p] = 0;
	if (!pvio_name_chars_ok(o->name)) {
		seterr(err, len, "bad bridge name '%s'", o->name);
		return -EINVAL;
	}
	p = e;
	while (*p) {
		bool vlan = *p == '.';

		if ((vlan && (o->tag >= 0 || o->nr_trunks)) ||
		    p[1] < '0' || p[1] > '9') {
			seterr(err, len, "bad bridge '%s' (BR[.VLAN][:TRUNK...])", spec);
			return -EINVAL;
		}
		errno = 0;
		n = strtoul(p + 1, &end, 10);
		if (errno || n > 4095 || (*end && *end != ':')) {
			seterr(err, len, *end && *end != ':' ?
			       "bad bridge '%s' (BR[.VLAN][:TRUNK...])" :
			       "bad bridge '%s': VLAN %s out of range (0..4095)",
			       spec, p + 1);
			return -ERANGE;
		}
		if (vlan) {
			o->tag = (int)n;
		} else {
			if (o->nr_trunks == OVS_MAX_TRUNKS) {
				seterr(err, len, "bad bridge '%s': more than %u trunks",
				       spec, OVS_MAX_TRUNKS);
				return -E2BIG;
			}
			o->trunks[o->nr_trunks++] = (uint16_t)n;
		}
		p = end;
	}
	return 0;
}

/* ---- one JSON-RPC exchange ------------------------------------------ */

static int wait_fd(int fd, short ev, uint64_t deadline_ms)
{
	struct pollfd p = { .fd = fd, .events = ev };
	uint64_t now = pvio_now_ms();
	int n;

	if (now >= deadline_ms)
		return -ETIMEDOUT;
	n = poll(&p, 1, (int)(deadline_ms - now));
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	return n ? 0 : -ETIMEDOUT;
}

static int send_all(int fd, const char *s, size_t n, uint64_t deadline_ms)
{
	while (n) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
		int rc;

		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (w > 0) {
			s += w;
			n -= (size_t)w;
			continue;
		}
		rc = wait_fd(fd, POLLOUT, deadline_ms);
		if (rc)
			return rc;
	}
	return 0;
}

static int send_json(int fd, struct json_object *o, uint64_t deadline_ms)
{
	const char *s;

	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);

	return s ? send_all(fd, s, strlen(s), deadline_ms) : -ENOMEM;
}

/*
 * Read messages until the reply to @id; ovsdb-server's "echo" requests
 * (its inactivity probe) are answered, anything else is skipped.
 */
static int read_reply(int fd, int64_t id, uint64_t deadline_ms,
		      struct json_object **reply)
{
	struct json_tokener *tok = json_tokener_new();
	size_t total = 0;
	char buf[4096];
	int rc = 0;

	if (!tok)
		return -ENOMEM;
	*reply = NULL;
	while (!*reply && !rc) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);
		size_t off = 0;

		if (r == 0) {
			rc = -ECONNRESET;
			break;
		}
		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR)
				rc = -errno;
			else
				rc = wait_fd(fd, POLLIN, deadline_ms);
			continue;
		}
		total += (size_t)r;
		if (total > OVS_MAX_REPLY) {
			rc = -EMSGSIZE;
			break;
		}
		while (off < (size_t)r && !*reply && !rc) {
			struct json_object *m, *v;
			enum json_tokener_error je;

			m = json_tokener_parse_ex(tok, buf + off,
						  (int)((size_t)r - off));
			je = json_tokener_get_error(tok);
			if (!m && je == json_tokener_continue)
				break;
			if (!m) {
				rc = -EBADMSG;
				break;
			}
			off += json_tokener_get_parse_end(tok);
			json_tokener_reset(tok);
			if (json_object_object_get_ex(m, "method", &v) &&
			    !strcmp(jstr(v), "echo") &&
			    json_object_object_get_ex(m, "id", &v)) {
				struct json_object *a, *p = NULL;

				a = json_object_new_object();

				json_object_object_get_ex(m, "params", &p);
				json_object_object_add(a, "id", json_object_get(v));
				json_object_object_add(a, "result", json_object_get(p));
				json_object_object_add(a, "error", NULL);
				rc = send_json(fd, a, deadline_ms);
				json_object_put(a);
			} else if (json_object_object_get_ex(m, "id", &v) &&
				   json_object_is_type(v, json_type_int) &&
				   json_object_get_int64(v) == id) {
				*reply = json_object_get(m);
			}
			json_object_put(m);
		}
	}
	json_tokener_free(tok);
	return rc;
}

static int db_connect(const char *db, int *fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *path = db + strlen("unix:");
	int f, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	f = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (f < 0)
		return -errno;
	if (connect(f, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		rc = -errno;
		close(f);
		return rc;
	}
	*fd = f;
	return 0;
}

/*
 * transact @ops (an array, consumed) on the Open_vSwitch database; *res:
 * the result array. A failed operation is -EIO with OVSDB's error and
 * details in @err.
 */
static int transact(const char *db, struct json_object *ops,
		    struct json_object **res, char *err, size_t len)
{
	static int64_t next_id;
	struct json_object *req = json_object_new_object(), *params, *v;
	struct json_object *reply = NULL;
	int64_t id = ++next_id;
	uint64_t deadline = pvio_now_ms() + OVS_TIMEOUT_MS;
	size_t i, n;
	int fd = -1, rc;

	params = json_object_new_array();
	json_object_array_add(params, json_object_new_string("Open_vSwitch"));
	n = json_object_array_length(ops);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(ops, i);
		json_object_array_add(params, json_object_get(v));
	}
	json_object_put(ops);
	json_object_object_add(req, "method", json_object_new_string("transact"));
	json_object_object_add(req, "params", params);
	json_object_object_add(req, "id", json_object_new_int64(id));
	*res = NULL;
	rc = db_connect(db, &fd);
	if (rc) {
		seterr(err, len, "Open vSwitch database %s: %s", db, strerror(-rc));
		goto out_req;
	}
	rc = send_json(fd, req, deadline);
	if (!rc)
		rc = read_reply(fd, id, deadline, &reply);
	if (rc) {
		seterr(err, len, "Open vSwitch database %s: %s", db,
		       rc == -ETIMEDOUT ? "no answer in 3 s" : strerror(-rc));
		goto out_fd;
	}
	if (json_object_object_get_ex(reply, "error", &v) && v) {
		seterr(err, len, "Open vSwitch database: %s",
		       json_object_to_json_string_ext(v,
						      JSON_C_TO_STRING_PLAIN));
		rc = -EIO;
		goto out_reply;
	}
	if (!json_object_object_get_ex(reply, "result", &v) ||
	    !json_object_is_type(v, json_type_array)) {
		seterr(err, len, "Open vSwitch database: a reply without a result");
		rc = -EBADMSG;
		goto out_reply;
	}
	/* one result per operation; a failed one has "error" (and the
	 * transaction was not committed) */
	n = json_object_array_length(v);
	for (i = 0; i < n; i++) {
		struct json_object *r, *e, *d = NULL;

		r = json_object_array_get_idx(v, i);
		if (r && json_object_object_get_ex(r, "error", &e) && e) {
			json_object_object_get_ex(r, "details", &d);
			seterr(err, len, "Open vSwitch database: %s%s%s",
			       jstr(e), d ? ": " : "", jstr(d));
			rc = -EIO;
			goto out_reply;
		}
	}
	*res = json_object_get(v);
out_reply:
	json_object_put(reply);
out_fd:
	close(fd);
out_req:
	json_object_put(req);
	return rc;
}

/* ---- OVSDB's values ------------------------------------------------- */

static struct json_object *jpair(const char *a, struct json_object *b)
{
	struct json_object *o = json_object_new_array();

	json_object_array_add(o, json_object_new_string(a));
	json_object_array_add(o, b);
	return o;
}

static struct json_object *juuid(const char *u)
{
	return jpair("uuid", json_object_new_string(u));
}

/* [[col, fn, value]] */
static struct json_object *jwhere(const char *col, const char *fn,
				  struct json_object *val)
{
	struct json_object *w = json_object_new_array();
	struct json_object *c = json_object_new_array();

	json_object_array_add(c, json_object_new_string(col));
	json_object_array_add(c, json_object_new_string(fn));
	json_object_array_add(c, val);
	json_object_array_add(w, c);
	return w;
}

static struct json_object *jop(const char *op, const char *table)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "op", json_object_new_string(op));
	json_object_object_add(o, "table", json_object_new_string(table));
	return o;
}

static struct json_object *jselect(const char *table, const char *name,
				   const char *c1, const char *c2,
				   const char *c3)
{
	struct json_object *o = jop("select", table), *cols = json_object_new_array();

	json_object_object_add(o, "where",
			       jwhere("name", "==", json_object_new_string(name)));
	json_object_array_add(cols, json_object_new_string(c1));
	if (c2)
		json_object_array_add(cols, json_object_new_string(c2));
	if (c3)
		json_object_array_add(cols, json_object_new_string(c3));
	json_object_object_add(o, "columns", cols);
	return o;
}

/* mutate @table's rows matching @where (consumed): [[col, mutator, val]] */
static struct json_object *jmutate(const char *table, struct json_object *where,
				   const char *col, const char *mutator,
				   struct json_object *val)
{
	struct json_object *o = jop("mutate", table), *m, *mm;

	json_object_object_add(o, "where", where);
	m = json_object_new_array();
	mm = json_object_new_array();
	json_object_array_add(mm, json_object_new_string(col));
	json_object_array_add(mm, json_object_new_string(mutator));
	json_object_array_add(mm, val);
	json_object_array_add(m, mm);
	json_object_object_add(o, "mutations", m);
	return o;
}

/* a Bridge's ports, @mutator (insert, delete) the one port @port */
static struct json_object *jmutate_ports(struct json_object *where,
					 const char *mutator,
					 struct json_object *port)
{
	struct json_object *set = json_object_new_array();

	json_object_array_add(set, port);
	return jmutate("Bridge", where, "ports", mutator, jpair("set", set));
}

/* ovs-vswitchd's cue, as ovs-vsctl gives it */
static struct json_object *jnext_cfg(void)
{
	return jmutate("Open_vSwitch", json_object_new_array(), "next_cfg",
		       "+=", json_object_new_int(1));
}

/* the rows of result @i, or NULL */
static struct json_object *rows(struct json_object *res, size_t i)
{
	struct json_object *r = json_object_array_get_idx(res, i), *v;

	if (!r || !json_object_object_get_ex(r, "rows", &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

/* the uuid string of a row's column @col (["uuid", "..."]) */
static const char *row_uuid(struct json_object *row, const char *col)
{
	struct json_object *v, *s;

	if (!row || !json_object_object_get_ex(row, col, &v) ||
	    !json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) != 2)
		return NULL;
	s = json_object_array_get_idx(v, 1);
	return json_object_is_type(s, json_type_string) ?
	       json_object_get_string(s) : NULL;
}

/* the string of a pair [type, "..."] */
static const char *atom_str(struct json_object *pair)
{
	return jstr(json_object_array_get_idx(pair, 1));
}

/* Does a set column (["set", [...]] or one atom) hold ["uuid", @u]? */
static bool set_has_uuid(struct json_object *row, const char *col,
			 const char *u)
{
	struct json_object *v, *tag, *elems;
	size_t i, n;

	if (!json_object_object_get_ex(row, col, &v) ||
	    !json_object_is_type(v, json_type_array) ||
	    json_object_array_length(v) != 2)
		return false;
	tag = json_object_array_get_idx(v, 0);
	if (!strcmp(jstr(tag), "uuid"))
		return !strcmp(atom_str(v), u);
	elems = json_object_array_get_idx(v, 1);
	if (strcmp(jstr(tag), "set") ||
	    !json_object_is_type(elems, json_type_array))
		return false;
	n = json_object_array_length(elems);
	for (i = 0; i < n; i++) {
		struct json_object *e = json_object_array_get_idx(elems, i);

		if (json_object_is_type(e, json_type_array) &&
		    json_object_array_length(e) == 2 &&
		    !strcmp(atom_str(e), u))
			return true;
	}
	return false;
}

/* the Port row's tag and trunks: OVSDB's optional value is an empty set */
static void port_vlan_cols(struct json_object *row, const struct ovs_port *p)
{
	struct json_object *set = json_object_new_array(), *trunks;
	unsigned int i;

	trunks = json_object_new_array();
	for (i = 0; i < p->br.nr_trunks; i++)
		json_object_array_add(trunks,
				      json_object_new_int(p->br.trunks[i]));
	json_object_object_add(row, "trunks", jpair("set", trunks));
	if (p->br.tag >= 0) {
		json_object_put(set);
		json_object_object_add(row, "tag", json_object_new_int(p->br.tag));
	} else {
		json_object_object_add(row, "tag", jpair("set", set));
	}
}

static struct json_object *external_ids(const struct ovs_port *p)
{
	struct json_object *m = json_object_new_array();

	/* as vif-openvswitch sets them: what OVN, controllers and an
	 * operator's `ovs-vsctl find interface` look for */
	if (p->mac)
		json_object_array_add(m, jpair("attached-mac",
					       json_object_new_string(p->mac)));
	if (p->vm_name)
		json_object_array_add(m, jpair("xen-vm-name",
				json_object_new_string(p->vm_name)));
	return jpair("map", m);
}

/* a Bridge row of the userspace datapath? */
static bool userspace_row(struct json_object *row)
{
	struct json_object *dt;

	return json_object_object_get_ex(row, "datapath_type", &dt) &&
	       !strcmp(jstr(dt), "netdev");
}

int ovs_bridge_userspace(const char *db, const char *bridge, bool *userspace,
			 char *err, size_t len)
{
	struct json_object *ops = json_object_new_array(), *res = NULL, *br;
	int rc;

	json_object_array_add(ops, jselect("Bridge", bridge, "datapath_type",
					   NULL, NULL));
	rc = transact(db, ops, &res, err, len);
	if (rc)
		return rc;
	br = rows(res, 0);
	if (!br || !json_object_array_length(br)) {
		seterr(err, len, "no Open vSwitch bridge %s (database %s)",
		       bridge, db);
		rc = -ENODEV;
	} else {
		*userspace = userspace_row(json_object_array_get_idx(br, 0));
	}
	json_object_put(res);
	return rc;
}

int ovs_add_port(const char *db, struct ovs_port *p, char *err, size_t len)
{
	struct json_object *ops = json_object_new_array(), *res = NULL;
	struct json_object *br, *pr, *o, *row;
	char bru[64];
	const char *u;
	int rc;

	/* the bridge and whether the port exists already (a restarted
	 * pvio-backd's persistent TAP is still a port) */
	json_object_array_add(ops, jselect("Bridge", p->br.name, "_uuid", "ports",
					  "datapath_type"));
	json_object_array_add(ops, jselect("Port", p->name, "_uuid", NULL, NULL));
	rc = transact(db, ops, &res, err, len);
	if (rc)
		return rc;
	br = rows(res, 0);
	pr = rows(res, 1);
	if (!br || !pr) {
		seterr(err, len, "Open vSwitch database: a select without rows");
		rc = -EBADMSG;
		goto out;
	}
	if (json_object_array_length(br) == 0) {
		seterr(err, len, "no Open vSwitch bridge %s (database %s)",
		       p->br.name, db);
		rc = -ENODEV;
		goto out;
	}
	u = row_uuid(json_object_array_get_idx(br, 0), "_uuid");
	if (!u) {
		rc = -EBADMSG;
		seterr(err, len, "Open vSwitch database: a bridge without a uuid");
		goto out;
	}
	snprintf(bru, sizeof(bru), "%s", u);
	p->userspace = userspace_row(json_object_array_get_idx(br, 0));
	ops = json_object_new_array();
	if (json_object_array_length(pr)) {
		/* --may-exist: ours if in this bridge; its VLAN as set */
		u = row_uuid(json_object_array_get_idx(pr, 0), "_uuid");
		if (!u || !set_has_uuid(json_object_array_get_idx(br, 0), "ports", u)) {
			json_object_put(ops);
			seterr(err, len, "%s is a port of another Open vSwitch bridge",
			       p->name);
			rc = -EEXIST;
			goto out;
		}
		o = jop("update", "Port");
		json_object_object_add(o, "where", jwhere("_uuid", "==", juuid(u)));
		row = json_object_new_object();
		port_vlan_cols(row, p);
		json_object_object_add(o, "row", row);
		json_object_array_add(ops, o);
	} else {
		o = jop("insert", "Interface");
		row = json_object_new_object();
		json_object_object_add(row, "name", json_object_new_string(p->name));
		json_object_object_add(row, "external_ids", external_ids(p));
		json_object_object_add(o, "row", row);
		json_object_object_add(o, "uuid-name", json_object_new_string("iface"));
		json_object_array_add(ops, o);

		o = jop("insert", "Port");
		row = json_object_new_object();
		json_object_object_add(row, "name", json_object_new_string(p->name));
		json_object_object_add(row, "interfaces",
				       jpair("named-uuid", json_object_new_string("iface")));
		port_vlan_cols(row, p);
		json_object_object_add(o, "row", row);
		json_object_object_add(o, "uuid-name", json_object_new_string("port"));
		json_object_array_add(ops, o);

		/* Port and Interface are not root tables: a Bridge must
		 * refer to them in the same transaction */
		json_object_array_add(ops, jmutate_ports(jwhere("_uuid", "==", juuid(bru)),
							 "insert",
							 jpair("named-uuid",
							       json_object_new_string("port"))));
	}
	json_object_array_add(ops, jnext_cfg());
	json_object_put(res);
	res = NULL;
	rc = transact(db, ops, &res, err, len);
out:
	json_object_put(res);
	return rc;
}

int ovs_del_port(const char *db, const char *name, char *err, size_t len)
{
	struct json_object *ops = json_object_new_array(), *res = NULL, *pr;
	const char *u;
	int rc;

	json_object_array_add(ops, jselect("Port", name, "_uuid", NULL, NULL));
	rc = transact(db, ops, &res, err, len);
	if (rc)
		return rc;
	pr = rows(res, 0);
	u = pr && json_object_array_length(pr) ?
	    row_uuid(json_object_array_get_idx(pr, 0), "_uuid") : NULL;
	if (!u) {
		json_object_put(res);
		return 0;	/* --if-exists: gone already (an operator) */
	}
	/* out of its bridge; OVSDB collects the unreferenced Port and
	 * Interface rows */
	ops = json_object_new_array();
	json_object_array_add(ops, jmutate_ports(jwhere("ports", "includes", juuid(u)),
						 "delete", juuid(u)));
	json_object_array_add(ops, jnext_cfg());
	json_object_put(res);
	res = NULL;
	rc = transact(db, ops, &res, err, len);
	json_object_put(res);
	return rc;
}
