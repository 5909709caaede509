/* SPDX-License-Identifier: MIT */
/*
 * Control steps that wait on one device's remote peer, off the main
 * thread: opening an NBD export or an RBD image (connect, handshake,
 * exclusive lock) and the OVSDB exchanges of a vif on an Open vSwitch
 * bridge. Bounded by their own timeouts, they would still hold every other
 * guest's handshake and pvio-ctl stats while they wait.
 *
 * A job runs on a thread of its own (opens: several at once, each
 * waiting on its own peer), or on the serial lane (OVSDB: one thread
 * while there is work, in order, so that a port's removal never overtakes
 * its addition). Its result is posted back to the main thread through the
 * loop's done_efd; device state changes only there. A job cancelled (its
 * device removed) is dropped by whichever thread holds it when it ends:
 * what run() took is released, nothing reaches the device.
 *
 * Jobs of one key (private.h: a remote target's params) run one after
 * another, in the order they were started: a close on the cluster's
 * side still running, the re-attach's open waits for it on its own
 * thread (not the main one), so it never meets our own old handle's
 * exclusive lock or lock file. Bounded: the close is, by the target's
 * --remote-timeout.
 *
 * Threads exist only while there is work: an idle daemon has none of
 * these.
 */
#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "private.h"

enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

static pthread_mutex_t cw_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cw_idle = PTHREAD_COND_INITIALIZER;
static pthread_cond_t cw_keys = PTHREAD_COND_INITIALIZER;	/* keyed */

static void post(struct backd *bd, struct ctl_job *j)
{
	uint64_t one = 1;

	j->next = NULL;
	*bd->cw_done_tail = j;
	bd->cw_done_tail = &j->next;
	if (write(bd->done_efd, &one, sizeof(one)) < 0)
		log_debug("done_efd: cannot post a control step");
}

/*
 * After run(): hand the result to the main thread, or drop it (the
 * device went). Called with cw_lock not held; the job is not touched
 * after this unless it was dropped here.
 */
static void finish(struct backd *bd, struct ctl_job *j)
{
	bool drop;

	pthread_mutex_lock(&cw_lock);
	drop = j->cancelled;
	if (!drop) {
		j->state = JOB_DONE;
		post(bd, j);
	}
	pthread_mutex_unlock(&cw_lock);
	if (drop)
		j->drop(j);
}

static void thread_begin(struct backd *bd, const char *name)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct none[2] = { { 0 } };

	pthread_setname_np(pthread_self(), name);
	/* nothing here needs CAP_NET_ADMIN (sockets and files only), and
	 * it talks to remote peers: this thread's sets emptied. One capset
	 * (the filter allows it, it can only lower), not libcap-ng's
	 * capget+capset: these threads start after the filter. */
	if (!bd->o.no_confine &&
	    syscall(SYS_capset, &h, none) < 0)
		log_warn("%s: cannot drop its capabilities: %s", name,
			 strerror(errno));
}

static void thread_end(struct backd *bd)
{
	pthread_mutex_lock(&cw_lock);
	bd->cw_threads--;
	pthread_cond_broadcast(&cw_idle);
	pthread_mutex_unlock(&cw_lock);
}

/*
 * A job on a thread of its own. Its key's place in line (bd->cw_keyed)
 * is this, not the job: the job may be freed (done(), drop()) before the
 * place is given up, which is after what the job took was released
 * (a cancelled open's drop() closes too).
 */
struct cw_slot {
	struct backd *bd;
	struct ctl_job *j;
	char *key;			/* a copy; NULL: not keyed */
	struct cw_slot *next;		/* bd->cw_keyed, in start order */
};

/* cw_lock held: a job of @s's key started before it is not done yet */
static bool key_behind(struct backd *bd, struct cw_slot *s)
{
	struct cw_slot *k;

	for (k = bd->cw_keyed; k && k != s; k = k->next)
		if (!strcmp(k->key, s->key))
			return true;
	return false;
}

/* Wait for the jobs of @s's key before it; false: cancelled meanwhile. */
static bool key_wait(struct backd *bd, struct cw_slot *s)
{
	bool go, logged = false;

	pthread_mutex_lock(&cw_lock);
	while (!s->j->cancelled && key_behind(bd, s)) {
		if (!logged)
			log_info("%s: waits for an earlier open or close of it",
				 s->key);
		logged = true;
		pthread_cond_wait(&cw_keys, &cw_lock);
	}
	go = !s->j->cancelled;
	pthread_mutex_unlock(&cw_lock);
	return go;
}

/* cw_lock held: @s last in its key's line */
static void line_add(struct backd *bd, struct cw_slot *s)
{
	struct cw_slot **pp;

	for (pp = &bd->cw_keyed; *pp; pp = &(*pp)->next)
		;
	s->next = NULL;
	*pp = s;
}

/* cw_lock held: @s out of the line; those behind it look again */
static void line_del(struct backd *bd, struct cw_slot *s)
{
	struct cw_slot **pp;

	for (pp = &bd->cw_keyed; *pp && *pp != s; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = s->next;
	pthread_cond_broadcast(&cw_keys);
}

static void key_done(struct backd *bd, struct cw_slot *s)
{
	pthread_mutex_lock(&cw_lock);
	line_del(bd, s);
	pthread_mutex_unlock(&cw_lock);
}

static void *solo_main(void *arg)
{
	struct cw_slot *s = arg;
	struct backd *bd = s->bd;
	struct ctl_job *j = s->j;

	thread_begin(bd, j->name ? j->name : "pvio-open");
	/* a job cancelled while it waited never runs: finish() drops it */
	if (!s->key || key_wait(bd, s))
		j->run(j);
	finish(bd, j);		/* @j is not ours any more */
	if (s->key)
		key_done(bd, s);
	free(s->key);
	free(s);
	thread_end(bd);
	return NULL;
}

/* The serial lane: runs queued jobs in order, exits when none is left. */
static void *serial_main(void *arg)
{
	struct backd *bd = arg;
	struct ctl_job *j;

	thread_begin(bd, "pvio-ovsdb");
	for (;;) {
		pthread_mutex_lock(&cw_lock);
		j = bd->cw_queue;
		if (!j) {
			bd->cw_serial_running = false;
			pthread_mutex_unlock(&cw_lock);
			break;
		}
		bd->cw_queue = j->next;
		if (!bd->cw_queue)
			bd->cw_queue_tail = &bd->cw_queue;
		j->state = JOB_RUNNING;
		pthread_mutex_unlock(&cw_lock);
		j->run(j);
		finish(bd, j);
	}
	thread_end(bd);
	return NULL;
}

static int spawn(struct backd *bd, void *(*fn)(void *), void *arg)
{
	pthread_attr_t a;
	pthread_t t;
	int rc;

	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	/* these threads call a library and wait: 1 MiB of address space
	 * (what they touch is what counts) */
	pthread_attr_setstacksize(&a, 1024 * 1024);
	rc = -pthread_create(&t, &a, fn, arg);
	pthread_attr_destroy(&a);
	if (!rc)
		bd->cw_threads++;
	return rc;
}

void ctlwork_init(struct backd *bd)
{
	bd->cw_queue = NULL;
	bd->cw_queue_tail = &bd->cw_queue;
	bd->cw_done = NULL;
	bd->cw_done_tail = &bd->cw_done;
	bd->cw_keyed = NULL;
}

/*
 * cw_lock held: @j on a thread of its own, last in its key's line, or in
 * the place @hold took (ctl_key_hold(): consumed, also on failure).
 */
static int start_solo(struct backd *bd, struct ctl_job *j, struct cw_slot *hold)
{
	struct cw_slot *s = hold ? hold : calloc(1, sizeof(*s));
	int rc = -ENOMEM;

	if (!s)
		return rc;
	if (!hold && j->key && !(s->key = strdup(j->key)))
		goto free_slot;
	s->bd = bd;
	s->j = j;
	if (s->key && !hold)	/* in line before its thread looks */
		line_add(bd, s);
	rc = spawn(bd, solo_main, s);
	if (!rc)
		return 0;
	if (s->key)	/* nobody runs it: out of the line */
		line_del(bd, s);
free_slot:
	free(s->key);
	free(s);
	return rc;
}

int ctl_job_start(struct backd *bd, struct ctl_job *j, bool serial)
{
	int rc = 0;

	if (!serial)
		return ctl_job_start_held(bd, j, NULL);
	j->cancelled = false;
	j->dropped_here = false;
	j->next = NULL;
	j->state = JOB_QUEUED;
	pthread_mutex_lock(&cw_lock);
	*bd->cw_queue_tail = j;
	bd->cw_queue_tail = &j->next;
	if (!bd->cw_serial_running) {
		rc = spawn(bd, serial_main, bd);
		if (rc) {	/* take it back: nobody runs it */
			struct ctl_job **pp = &bd->cw_queue;

			while (*pp != j)
				pp = &(*pp)->next;
			*pp = NULL;
			bd->cw_queue_tail = pp;
		} else {
			bd->cw_serial_running = true;
		}
	}
	pthread_mutex_unlock(&cw_lock);
	return rc;
}

struct cw_slot *ctl_key_hold(struct backd *bd, const char *key)
{
	struct cw_slot *s = calloc(1, sizeof(*s));

	if (!s || !(s->key = strdup(key))) {
		free(s);
		return NULL;
	}
	s->bd = bd;
	pthread_mutex_lock(&cw_lock);
	line_add(bd, s);
	pthread_mutex_unlock(&cw_lock);
	return s;
}

int ctl_job_start_held(struct backd *bd, struct ctl_job *j,
		       struct cw_slot *hold)
{
	int rc;

	j->cancelled = false;
	j->dropped_here = false;
	j->next = NULL;
	j->state = JOB_RUNNING;
	pthread_mutex_lock(&cw_lock);
	rc = start_solo(bd, j, hold);
	pthread_mutex_unlock(&cw_lock);
	return rc;
}

void ctl_key_release(struct backd *bd, struct cw_slot *hold)
{
	if (!hold)
		return;
	key_done(bd, hold);
	free(hold->key);
	free(hold);
}

void ctl_job_cancel(struct backd *bd, struct ctl_job *j)
{
	struct ctl_job **pp;
	bool drop_now = false;

	pthread_mutex_lock(&cw_lock);
	j->cancelled = true;
	if (j->state == JOB_QUEUED) {
		/* never started: out of the lane, dropped here */
		for (pp = &bd->cw_queue; *pp && *pp != j; pp = &(*pp)->next)
			;
		if (*pp) {
			*pp = j->next;
			if (!*pp)
				bd->cw_queue_tail = pp;
		}
		drop_now = true;
	} else if (j->state == JOB_DONE) {
		/* posted, not reaped yet: out of the done list, dropped here */
		for (pp = &bd->cw_done; *pp && *pp != j; pp = &(*pp)->next)
			;
		if (*pp) {
			*pp = j->next;
			if (!*pp)
				bd->cw_done_tail = pp;
		}
		drop_now = true;
	}
	/* JOB_RUNNING: its thread drops it when run() returns (or, waiting
	 * for its key, at once: woken here) */
	pthread_cond_broadcast(&cw_keys);
	pthread_mutex_unlock(&cw_lock);
	if (drop_now) {
		j->dropped_here = true;
		j->drop(j);
	}
}

void ctlwork_reap(struct backd *bd)
{
	struct ctl_job *j;

	/* one at a time: a done() may cancel a job posted after its own */
	for (;;) {
		pthread_mutex_lock(&cw_lock);
		j = bd->cw_done;
		if (j) {
			bd->cw_done = j->next;
			if (!bd->cw_done)
				bd->cw_done_tail = &bd->cw_done;
		}
		pthread_mutex_unlock(&cw_lock);
		if (!j)
			break;
		j->done(j);
	}
}

unsigned int ctlwork_shutdown(struct backd *bd, uint64_t deadline_ms)
{
	unsigned int n;

	/* the queued OVSDB steps (a removed vif's port) and the closes of
	 * remote targets (a lock given back) get their chance within the
	 * drain bound; a step hung on its peer is abandoned */
	pthread_mutex_lock(&cw_lock);
	while (bd->cw_threads) {
		uint64_t now = pvio_now_ms();
		struct timespec ts;

		if (now >= deadline_ms)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)((deadline_ms - now) / 1000);
		ts.tv_nsec += (long)((deadline_ms - now) % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&cw_idle, &cw_lock, &ts);
	}
	n = bd->cw_threads;
	pthread_mutex_unlock(&cw_lock);
	/* what finished meanwhile and was not cancelled: nobody acts on it */
	ctlwork_reap(bd);
	return n;
}
