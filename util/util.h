/* SPDX-License-Identifier: MIT */
/*
 * Support for pvio's programs (not the library): a level-gated logger and
 * strict parsing of numbers from command lines, config and xenstore.
 */
#ifndef PVIO_UTIL_H
#define PVIO_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* A path buffer of the programs: a world or state directory (up to
 * PATH_MAX) and a file name in it. */
#define PVIO_PATH_BUF	4200u

enum pvio_log_level {
	PVIO_LOG_ERR = 0,
	PVIO_LOG_WARN,
	PVIO_LOG_INFO,
	PVIO_LOG_DEBUG,
};

extern int pvio_log_level;

void pvio_log_init(const char *ident, int level);
/* Parse "err|warn|info|debug"; -EINVAL otherwise. */
int pvio_log_parse_level(const char *s);
void pvio__log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The level is checked before anything is formatted (redis serverLog). */
#define pvio_log(level, ...)						\
	do {								\
		if ((level) <= pvio_log_level)				\
			pvio__log((level), __VA_ARGS__);		\
	} while (0)
/*
 * A rate limit for one source of messages (a device: one guest flapping
 * its state must not fill dom0's journal), as the kernel's
 * printk_ratelimit: at most PVIO_RATELIMIT_BURST messages in each
 * PVIO_RATELIMIT_INTERVAL; the others are counted, and one "N messages
 * suppressed" line says so when the next interval begins. One thread per
 * limit.
 */
#define PVIO_RATELIMIT_INTERVAL_NS	5000000000ull	/* 5 s */
#define PVIO_RATELIMIT_BURST		10u

struct pvio_ratelimit {
	uint64_t begin_ns;	/* this interval's start (0: none yet) */
	unsigned int printed;	/* in this interval */
	unsigned int missed;	/* suppressed in this interval */
};

/* May a message about @who go now? Reports the last interval's
 * suppressed count first, if any. */
bool pvio_ratelimit(struct pvio_ratelimit *rl, const char *who);
/* The interval is over: report what it suppressed now rather than at the
 * next message (call it from a periodic tick). */
void pvio_ratelimit_flush(struct pvio_ratelimit *rl, const char *who);

/* pvio_log() of a message about @who, within @rl. */
#define pvio_log_rl(rl, who, level, ...)				\
	do {								\
		if ((level) <= pvio_log_level &&			\
		    pvio_ratelimit((rl), (who)))			\
			pvio__log((level), __VA_ARGS__);		\
	} while (0)

#define log_err(...)	pvio_log(PVIO_LOG_ERR, __VA_ARGS__)
#define log_warn(...)	pvio_log(PVIO_LOG_WARN, __VA_ARGS__)
#define log_info(...)	pvio_log(PVIO_LOG_INFO, __VA_ARGS__)
#define log_debug(...)	pvio_log(PVIO_LOG_DEBUG, __VA_ARGS__)

/*
 * Parse a whole string as an unsigned decimal (or 0x hex) in [min, max].
 * Digits only (after the 0x): no sign, no white space, no trailing
 * garbage, no empty string. Return 0 or -EINVAL / -ERANGE.
 */
int pvio_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int pvio_parse_uint(const char *s, unsigned int min, unsigned int max,
		    unsigned int *out);
/*
 * Is every byte of @s in [A-Za-z0-9._-] (and @s not empty)? The portable
 * file-name characters: what interface, domain and backend-type names may
 * hold; the callers add their own length and position rules.
 */
bool pvio_name_chars_ok(const char *s);
/* "4096", "64k", "16M", "2G" (binary units). */
int pvio_parse_size(const char *s, uint64_t *out);

/*
 * Command-line errors: one line on stderr, exit status 2. Control
 * characters in the message (from the arguments it quotes) print as '?'.
 */
void pvio_usage_error(const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/*
 * What getopt_long() refused (its return @c: '?' or, with a leading ':' in
 * the option string, ':'), as one pvio_usage_error() line naming the
 * option as it was given: "-X" (alone or in a bundle such as -Xw) or
 * "--name". Call it right after getopt_long() returned. Set opterr = 0 so
 * that getopt prints nothing of its own.
 */
void pvio_usage_bad_option(const char *prog, int c, char *const *argv)
	__attribute__((noreturn));
/* --version: "PROG (pvio) VERSION" on stdout, exit status 0. */
void pvio_version(const char *prog) __attribute__((noreturn));
/* The long option every program takes, and its getopt value. */
#define PVIO_OPT_VERSION	0x7656
#define PVIO_VERSION_OPTION	{ "version", no_argument, NULL, PVIO_OPT_VERSION }

#endif
