/* SPDX-License-Identifier: MIT */
/* pvio-bench: shared scaffolding of its benchmarks. */
#ifndef PVIO_BENCH_H
#define PVIO_BENCH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include <pvio/platform.h>
#include <pvio/xenbus.h>

#include "util.h"

/* pvio-bench's usage text (--help) */
void bench_usage(FILE *f);

/* A private sim world with pvio-backd on CPU 1. */
struct bench_world {
	char dir[4096];
	char spec[PVIO_PLATFORM_SPEC_MAX];
	struct pvio_platform *dom0;
	struct pvio_xs *xs;
	pid_t backd;
	/* pvio-backd's arguments, for bench_backd_restart() */
	char spin[16], workers[16];
	bool grant_map;
	const char *extra;
};

/* @grant_map: pvio-backd maps persistent grants (else grant copy) */
int bench_world_up(struct bench_world *bw, unsigned int spin_us, bool grant_map);
/* ... with @workers dataplane threads */
int bench_world_up_workers(struct bench_world *bw, unsigned int spin_us,
			   bool grant_map, unsigned int workers);
/* ... and @extra, one more pvio-backd option (or NULL) */
int bench_world_up_opt(struct bench_world *bw, unsigned int spin_us,
		       bool grant_map, unsigned int workers, const char *extra);
void bench_world_down(struct bench_world *bw);
/*
 * Stop pvio-backd with @sig (SIGKILL: a crash; SIGTERM: a clean stop),
 * wait for it, and start it again with the same arguments; 0 once its
 * main loop answers on its control socket, its start's re-attaches done
 * (*@up_ns: then, CLOCK_MONOTONIC). *@abandoned: the devices the stopped
 * one logged as abandoned at its exit.
 */
int bench_backd_restart(struct bench_world *bw, int sig, uint64_t *up_ns,
			unsigned int *abandoned);
/* Create domain @domid and give it xvda backed by @path. */
int bench_attach_vbd(struct bench_world *bw, unsigned int domid,
		     const char *path);
/* ... read-only if @readonly (many guests may share an image then) */
int bench_attach_vbd_mode(struct bench_world *bw, unsigned int domid,
			  const char *path, bool readonly);
/* Create domain @domid (if needed) and give it vif 0. */
int bench_attach_vif(struct bench_world *bw, unsigned int domid);
/* pvio-backd's notifications sent so far, over all devices. */
uint64_t bench_backd_notifies(struct bench_world *bw);
/* pvio-backd's `stats-json DOMID DEVID` (-1: all) into @buf. */
int bench_backd_stats(struct bench_world *bw, int domid, int devid, char *buf,
		      size_t len);
/* The sum of every number under "@key" in @json. */
uint64_t bench_json_sum(const char *json, const char *key);
/* Program @name next to this executable, or $@env if set, else @name. */
const char *bench_prog_path(const char *name, const char *env);

/* The options every benchmark takes (--json, --time MS, --runs N,
 * --spin-us N): true if argv[*i] is one (*i then past its value); bad
 * values are a usage error (exit 2). */
bool bench_opt_common(int argc, char **argv, int *i, unsigned int *ms,
		      unsigned int *runs, unsigned int *spin_us, bool *json);

void bench_pin(int cpu);
int bench_read(int fd, void *buf, size_t len);
int bench_write(int fd, const void *buf, size_t len);

struct bench_stat3 {
	double min, med, max;
};
struct bench_stat3 bench_stat3(double *v, unsigned int n);
/* p50/p99 of @n samples in ns, in us; sorts @lat. */
void bench_percentiles(uint32_t *lat, uint32_t n, double *p50, double *p99);

int bench_blk(int argc, char **argv);
/* blk --guests N, blk --noisy */
int bench_guests(int argc, char **argv);
int bench_net(int argc, char **argv);

#endif
