// SPDX-License-Identifier: MIT
/*
 * Unit tests of pvio-backd's OVSDB client (backend/ovs.c) against a
 * scripted server on a unix socket: the bridge syntax BR[.VLAN][:TRUNK...],
 * the transactions ovs_add_port() and ovs_del_port() send (checked op by
 * op), replies in pieces after an "echo" request (answered), a port that
 * exists already (here and on another bridge), a missing bridge, a failed
 * operation, garbage, no server and a server that never answers.
 * tests/integration/test-backd-ovs.sh runs the same against the real
 * ovsdb-server.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../../backend/net.h"
#include "t-check.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the bridge syntax ----------------------------------------------------------- */

static const struct {
	const char *s, *name;
	int tag;
	unsigned int nr;
	uint16_t t0, t1;
} good[] = {
	{ "br-int", "br-int", -1, 0, 0, 0 },
	{ "br-int.10", "br-int", 10, 0, 0, 0 },
	{ "ovsbr0.0", "ovsbr0", 0, 0, 0, 0 },
	{ "ovsbr0.4095", "ovsbr0", 4095, 0, 0, 0 },
	{ "br0:10:20", "br0", -1, 2, 10, 20 },
	{ "br0.5:10", "br0", 5, 1, 10, 0 },
};

static const char *const bad[] = {
	"", ".10", ":10", "br0.", "br0:", "br0.x", "br0.10.20", "br0:1.2",
	"br0.4096", "br0:4096", "br0.99999999999999999999", "br0.-1", "br0.+1",
	"br 0", "br0/x", "a-very-long-bridge-name.1",
	"br0:1:2:3:4:5:6:7:8:9:10:11:12:13:14:15:16:17",
};

START_TEST(test_parse_good)
{
	struct ovs_bridge_spec o;
	char err[256];

	ck_assert_int_eq(ovs_parse_bridge(good[_i].s, &o, err, sizeof(err)), 0);
	ck_assert_str_eq(o.name, good[_i].name);
	ck_assert_int_eq(o.tag, good[_i].tag);
	ck_assert_uint_eq(o.nr_trunks, good[_i].nr);
	if (o.nr_trunks > 0)
		ck_assert_uint_eq(o.trunks[0], good[_i].t0);
	if (o.nr_trunks > 1)
		ck_assert_uint_eq(o.trunks[1], good[_i].t1);
}
END_TEST

START_TEST(test_parse_bad)
{
	struct ovs_bridge_spec o;
	char err[256] = "";

	ck_assert_int_lt(ovs_parse_bridge(bad[_i], &o, err, sizeof(err)), 0);
	ck_assert_msg(strstr(err, "bridge") != NULL, "'%s': message '%s'", bad[_i], err);
}
END_TEST

START_TEST(test_parse_range_message)
{
	struct ovs_bridge_spec o;
	char err[256];

	ck_assert_int_eq(ovs_parse_bridge("br-int.4096", &o, err, sizeof(err)), -ERANGE);
	ck_assert_str_eq(err, "bad bridge 'br-int.4096': VLAN 4096 out of range (0..4095)");
}
END_TEST

/* ---- a scripted ovsdb-server ------------------------------------------------------- */

/*
 * For each connection in turn: read one request, check it (check()),
 * answer reply (printf format, %lld: the request's id), or nothing when
 * NULL (and hold the connection until the client goes).
 */
struct step {
	void (*check)(struct json_object *params);
	const char *reply;
	bool echo_first;	/* an "echo" request first, reply 1 byte at a time */
};

static struct {
	char dir[64], path[108];
	int lfd;
	pthread_t thr;
	const struct step *steps;
	unsigned int nsteps, served;
	bool echo_answered;
} srv;

static struct json_object *read_msg(int fd)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = NULL;
	char c;

	/* a byte at a time: what follows the message stays in the socket */
	while (!o && read(fd, &c, 1) == 1) {
		o = json_tokener_parse_ex(tok, &c, 1);
		if (!o && json_tokener_get_error(tok) != json_tokener_continue)
			break;
	}
	json_tokener_free(tok);
	return o;
}

static void *serve(void *arg)
{
	unsigned int i;

	(void)arg;
	for (i = 0; i < srv.nsteps; i++) {
		const struct step *s = &srv.steps[i];
		int fd = accept(srv.lfd, NULL, NULL);
		struct json_object *req, *v, *params;
		char out[4096];
		long long id;
		size_t k, n;

		if (fd < 0)
			return NULL;
		req = read_msg(fd);
		if (!req) {
			close(fd);
			return NULL;
		}
		json_object_object_get_ex(req, "method", &v);
		ck_assert_str_eq(json_object_get_string(v), "transact");
		json_object_object_get_ex(req, "id", &v);
		id = json_object_get_int64(v);
		json_object_object_get_ex(req, "params", &params);
		ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(params, 0)),
				 "Open_vSwitch");
		if (s->check)
			s->check(params);
		json_object_put(req);
		srv.served++;
		if (!s->reply) {
			while (read(fd, out, sizeof(out)) > 0)
				;
			close(fd);
			continue;
		}
		if (s->echo_first) {
			static const char echo[] = "{\"method\":\"echo\",\"params\":[],\"id\":\"echo\"}";

			ck_assert_int_eq(write(fd, echo, strlen(echo)), (int)strlen(echo));
		}
		/* the replies are this file's own formats */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
		n = (size_t)snprintf(out, sizeof(out), s->reply, id);
#pragma GCC diagnostic pop
		for (k = 0; k < n; k += s->echo_first ? 1 : n - k)
			ck_assert_int_gt(write(fd, out + k, s->echo_first ? 1 : n - k), 0);
		if (s->echo_first) {
			struct json_object *a = read_msg(fd);

			ck_assert_ptr_nonnull(a);
			json_object_object_get_ex(a, "id", &v);
			ck_assert_str_eq(json_object_get_string(v), "echo");
			ck_assert(json_object_object_get_ex(a, "result", &v));
			json_object_put(a);
			srv.echo_answered = true;
		}
		close(fd);
	}
	return NULL;
}

static void srv_start(const struct step *steps, unsigned int n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	snprintf(srv.dir, sizeof(srv.dir), "/tmp/pvio-ovs.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(srv.dir));
	snprintf(srv.path, sizeof(srv.path), "unix:%s/db.sock", srv.dir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/db.sock", srv.dir);
	srv.lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(srv.lfd, 0);
	ck_assert_int_eq(bind(srv.lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	ck_assert_int_eq(listen(srv.lfd, 4), 0);
	srv.steps = steps;
	srv.nsteps = n;
	srv.served = 0;
	srv.echo_answered = false;
	ck_assert_int_eq(pthread_create(&srv.thr, NULL, serve, NULL), 0);
}

static void srv_stop(unsigned int want_served)
{
	char p[128];

	shutdown(srv.lfd, SHUT_RDWR);
	pthread_join(srv.thr, NULL);
	close(srv.lfd);
	snprintf(p, sizeof(p), "%s/db.sock", srv.dir);
	unlink(p);
	rmdir(srv.dir);
	ck_assert_uint_eq(srv.served, want_served);
}

/* params[1 + i] */
static struct json_object *op(struct json_object *params, size_t i)
{
	struct json_object *o = json_object_array_get_idx(params, 1 + i);

	ck_assert_ptr_nonnull(o);
	return o;
}

static const char *field(struct json_object *o, const char *key)
{
	struct json_object *v;

	ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s in %s", key,
		      json_object_to_json_string(o));
	return json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
}

static void check_lookup(struct json_object *params)
{
	ck_assert_uint_eq(json_object_array_length(params), 3);
	ck_assert_str_eq(field(op(params, 0), "table"), "\"Bridge\"");
	ck_assert_str_eq(field(op(params, 0), "where"), "[[\"name\",\"==\",\"br-int\"]]");
	ck_assert_str_eq(field(op(params, 1), "table"), "\"Port\"");
	ck_assert_str_eq(field(op(params, 1), "where"), "[[\"name\",\"==\",\"vif1.0\"]]");
}

static void check_insert(struct json_object *params)
{
	struct json_object *o;

	ck_assert_uint_eq(json_object_array_length(params), 5);
	o = op(params, 0);
	ck_assert_str_eq(field(o, "op"), "\"insert\"");
	ck_assert_str_eq(field(o, "table"), "\"Interface\"");
	ck_assert_str_eq(field(o, "row"),
			 "{\"name\":\"vif1.0\",\"external_ids\":[\"map\",[[\"attached-mac\",\"00:16:3e:00:01:00\"],[\"xen-vm-name\",\"guest1\"]]]}");
	o = op(params, 1);
	ck_assert_str_eq(field(o, "table"), "\"Port\"");
	ck_assert_str_eq(field(o, "row"),
			 "{\"name\":\"vif1.0\",\"interfaces\":[\"named-uuid\",\"iface\"],\"trunks\":[\"set\",[]],\"tag\":10}");
	o = op(params, 2);
	ck_assert_str_eq(field(o, "op"), "\"mutate\"");
	ck_assert_str_eq(field(o, "table"), "\"Bridge\"");
	ck_assert_str_eq(field(o, "where"), "[[\"_uuid\",\"==\",[\"uuid\",\"b0000000-0000-0000-0000-000000000001\"]]]");
	ck_assert_str_eq(field(o, "mutations"), "[[\"ports\",\"insert\",[\"set\",[[\"named-uuid\",\"port\"]]]]]");
	o = op(params, 3);
	ck_assert_str_eq(field(o, "table"), "\"Open_vSwitch\"");
	ck_assert_str_eq(field(o, "mutations"), "[[\"next_cfg\",\"+=\",1]]");
}

#define BRIDGE_ROW(ports) \
	"{\"_uuid\":[\"uuid\",\"b0000000-0000-0000-0000-000000000001\"]," \
	"\"ports\":" ports ",\"datapath_type\":\"netdev\"}"
#define PORT_UUID "p0000000-0000-0000-0000-000000000001"

static struct ovs_port port(int tag)
{
	struct ovs_port p = { .name = "vif1.0", .mac = "00:16:3e:00:01:00",
			      .vm_name = "guest1" };

	snprintf(p.br.name, sizeof(p.br.name), "br-int");
	p.br.tag = tag;
	return p;
}

START_TEST(test_add_new)
{
	static const struct step steps[] = {
		{ check_lookup, "{\"id\":%lld,\"result\":[{\"rows\":[" BRIDGE_ROW("[\"set\",[]]")
				"]},{\"rows\":[]}],\"error\":null}", true },
		{ check_insert, "{\"id\":%lld,\"result\":[{\"uuid\":[\"uuid\",\"x\"]},"
				"{\"uuid\":[\"uuid\",\"y\"]},{\"count\":1},{\"count\":1}],"
				"\"error\":null}", false },
	};
	struct ovs_port p = port(10);
	char err[256] = "";

	srv_start(steps, ARRAY_SIZE(steps));
	ck_assert_int_eq(ovs_add_port(srv.path, &p, err, sizeof(err)), 0);
	ck_assert(p.userspace);
	srv_stop(2);
	ck_assert(srv.echo_answered);
}
END_TEST

static void check_update(struct json_object *params)
{
	ck_assert_uint_eq(json_object_array_length(params), 3);
	ck_assert_str_eq(field(op(params, 0), "op"), "\"update\"");
	ck_assert_str_eq(field(op(params, 0), "where"),
			 "[[\"_uuid\",\"==\",[\"uuid\",\"" PORT_UUID "\"]]]");
	/* no VLAN tag (the empty set), trunks 10 and 20 (br-int:10:20) */
	ck_assert_str_eq(field(op(params, 0), "row"),
			 "{\"trunks\":[\"set\",[10,20]],\"tag\":[\"set\",[]]}");
}

START_TEST(test_add_exists)
{
	/* a one-element set comes as the atom itself */
	static const struct step steps[] = {
		{ NULL, "{\"id\":%lld,\"result\":[{\"rows\":[" BRIDGE_ROW("[\"uuid\",\"" PORT_UUID "\"]")
			"]},{\"rows\":[{\"_uuid\":[\"uuid\",\"" PORT_UUID "\"]}]}],\"error\":null}", false },
		{ check_update, "{\"id\":%lld,\"result\":[{\"count\":1},{\"count\":1}],\"error\":null}", false },
	};
	struct ovs_port p = port(-1);
	char err[256] = "";

	p.br.trunks[0] = 10;
	p.br.trunks[1] = 20;
	p.br.nr_trunks = 2;
	srv_start(steps, ARRAY_SIZE(steps));
	ck_assert_int_eq(ovs_add_port(srv.path, &p, err, sizeof(err)), 0);
	srv_stop(2);
}
END_TEST

/* ovs_add_port() against replies that fail it: the error and message */
static const struct step other_bridge[] = {
	{ NULL, "{\"id\":%lld,\"result\":[{\"rows\":[" BRIDGE_ROW("[\"set\",[[\"uuid\",\"q\"]]]")
		"]},{\"rows\":[{\"_uuid\":[\"uuid\",\"" PORT_UUID "\"]}]}],\"error\":null}", false },
};
static const struct step no_bridge[] = {
	{ NULL, "{\"id\":%lld,\"result\":[{\"rows\":[]},{\"rows\":[]}],\"error\":null}", false },
};
static const struct step op_fails[] = {
	{ NULL, "{\"id\":%lld,\"result\":[{\"rows\":[" BRIDGE_ROW("[\"set\",[]]")
		"]},{\"rows\":[]}],\"error\":null}", false },
	{ NULL, "{\"id\":%lld,\"result\":[{\"uuid\":[\"uuid\",\"x\"]},"
		"{\"error\":\"constraint violation\",\"details\":\"tag out of range\"}],"
		"\"error\":null}", false },
};
static const struct step garbage[] = {
	{ NULL, "{\"id\":%lld,\"result\":[}}}", false },
};
static const struct {
	const struct step *steps;
	unsigned int n;
	int rc;
	const char *err;
} failing[] = {
	{ other_bridge, ARRAY_SIZE(other_bridge), -EEXIST,
	  "vif1.0 is a port of another Open vSwitch bridge" },
	{ no_bridge, ARRAY_SIZE(no_bridge), -ENODEV, "no Open vSwitch bridge br-int" },
	{ op_fails, ARRAY_SIZE(op_fails), -EIO,
	  "Open vSwitch database: constraint violation: tag out of range" },
	{ garbage, ARRAY_SIZE(garbage), -EBADMSG, "" },
};

START_TEST(test_add_fails)
{
	struct ovs_port p = port(3);
	char err[256] = "";

	srv_start(failing[_i].steps, failing[_i].n);
	ck_assert_int_eq(ovs_add_port(srv.path, &p, err, sizeof(err)), failing[_i].rc);
	ck_assert_msg(strstr(err, failing[_i].err) != NULL, "%s", err);
	srv_stop(failing[_i].n);
}
END_TEST

static void check_del(struct json_object *params)
{
	ck_assert_str_eq(field(op(params, 0), "table"), "\"Bridge\"");
	ck_assert_str_eq(field(op(params, 0), "where"),
			 "[[\"ports\",\"includes\",[\"uuid\",\"" PORT_UUID "\"]]]");
	ck_assert_str_eq(field(op(params, 0), "mutations"),
			 "[[\"ports\",\"delete\",[\"set\",[[\"uuid\",\"" PORT_UUID "\"]]]]]");
}

START_TEST(test_del)
{
	static const struct step steps[] = {
		{ NULL, "{\"id\":%lld,\"result\":[{\"rows\":[{\"_uuid\":[\"uuid\",\"" PORT_UUID
			"\"]}]}],\"error\":null}", false },
		{ check_del, "{\"id\":%lld,\"result\":[{\"count\":1},{\"count\":1}],\"error\":null}", false },
		/* gone already: nothing more to do */
		{ NULL, "{\"id\":%lld,\"result\":[{\"rows\":[]}],\"error\":null}", false },
	};
	char err[256] = "";

	srv_start(steps, ARRAY_SIZE(steps));
	ck_assert_int_eq(ovs_del_port(srv.path, "vif1.0", err, sizeof(err)), 0);
	ck_assert_int_eq(ovs_del_port(srv.path, "vif1.0", err, sizeof(err)), 0);
	srv_stop(3);
}
END_TEST

START_TEST(test_no_server)
{
	struct ovs_port p = port(3);
	char err[256] = "";

	ck_assert_int_eq(ovs_add_port("unix:/nonexistent/pvio/db.sock", &p, err,
				      sizeof(err)), -ENOENT);
	ck_assert_str_eq(err, "Open vSwitch database unix:/nonexistent/pvio/db.sock: "
			 "No such file or directory");
}
END_TEST

START_TEST(test_no_answer)
{
	static const struct step steps[] = { { NULL, NULL, false } };
	struct ovs_port p = port(3);
	char err[256] = "";
	uint64_t t0 = pvio_now_ms();

	srv_start(steps, ARRAY_SIZE(steps));
	ck_assert_int_eq(ovs_add_port(srv.path, &p, err, sizeof(err)), -ETIMEDOUT);
	ck_assert_uint_ge(pvio_now_ms() - t0, 2900);
	ck_assert_uint_lt(pvio_now_ms() - t0, 6000);
	ck_assert_msg(strstr(err, "no answer in 3 s") != NULL, "%s", err);
	srv_stop(1);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("ovs");
	TCase *tp = tcase_create("bridge-syntax"), *tc = tcase_create("ovsdb");

	tcase_add_loop_test(tp, test_parse_good, 0, ARRAY_SIZE(good));
	tcase_add_loop_test(tp, test_parse_bad, 0, ARRAY_SIZE(bad));
	tcase_add_test(tp, test_parse_range_message);
	suite_add_tcase(su, tp);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_add_new);
	tcase_add_test(tc, test_add_exists);
	tcase_add_loop_test(tc, test_add_fails, 0, ARRAY_SIZE(failing));
	tcase_add_test(tc, test_del);
	tcase_add_test(tc, test_no_server);
	tcase_add_test(tc, test_no_answer);
	suite_add_tcase(su, tc);
	return t_run_suite(su, false);
}
