// SPDX-License-Identifier: MIT
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int pvio_log_level = PVIO_LOG_INFO;
static const char *log_ident = "pvio";
static bool log_stamp = true;

void pvio_log_init(const char *ident, int level)
{
	log_ident = ident;
	pvio_log_level = level;
	/* under systemd the journal adds its own time stamps */
	log_stamp = getenv("JOURNAL_STREAM") == NULL;
}

int pvio_log_parse_level(const char *s)
{
	static const char *const names[] = { "err", "warn", "info", "debug" };
	unsigned int i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	return -EINVAL;
}

void pvio__log(int level, const char *fmt, ...)
{
	/* syslog-style priority prefix, understood by journald */
	static const char prio[] = { '3', '4', '6', '7' };
	static const char *const tag[] = { "error", "warning", "info", "debug" };
	char line[1024];
	int n = 0, i, start;
	va_list ap;

	if (level < 0)
		level = 0;
	if (level > PVIO_LOG_DEBUG)
		level = PVIO_LOG_DEBUG;
	if (log_stamp) {
		struct timespec ts;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		n = snprintf(line, sizeof(line), "%02d:%02d:%02d.%03ld ",
			     tm.tm_hour, tm.tm_min, tm.tm_sec,
			     ts.tv_nsec / 1000000);
	} else {
		n = snprintf(line, sizeof(line), "<%c>", prio[level]);
	}
	n += snprintf(line + n, sizeof(line) - (size_t)n, "%s[%d]: %s: ",
		      log_ident, (int)getpid(), tag[level]);
	start = n;
	va_start(ap, fmt);
	if (n < (int)sizeof(line))
		n += vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 2;
	/* names from outside (files, xenstore) may hold control characters:
	 * a newline must not forge a second log line */
	for (i = start; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
			line[i] = '?';
	line[n++] = '\n';
	line[n] = 0;
	/* one write per line: lines of concurrent processes do not mix */
	if (write(STDERR_FILENO, line, (size_t)n) < 0)
		return;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The interval is over: say what it suppressed, open a new one. */
static void rl_roll(struct pvio_ratelimit *rl, const char *who, uint64_t now)
{
	if (rl->missed)
		pvio__log(PVIO_LOG_WARN, "%s: %u messages suppressed", who,
			  rl->missed);
	rl->begin_ns = now;
	rl->printed = 0;
	rl->missed = 0;
}

bool pvio_ratelimit(struct pvio_ratelimit *rl, const char *who)
{
	uint64_t now = mono_ns();

	if (!rl->begin_ns || now - rl->begin_ns >= PVIO_RATELIMIT_INTERVAL_NS)
		rl_roll(rl, who, now);
	if (rl->printed < PVIO_RATELIMIT_BURST) {
		rl->printed++;
		return true;
	}
	rl->missed++;
	return false;
}

void pvio_ratelimit_flush(struct pvio_ratelimit *rl, const char *who)
{
	uint64_t now = mono_ns();

	if (rl->missed && now - rl->begin_ns >= PVIO_RATELIMIT_INTERVAL_NS)
		rl_roll(rl, who, now);
}

static bool is_digit(char c, int base)
{
	return (c >= '0' && c <= '9') ||
	       (base == 16 && ((c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')));
}

int pvio_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	unsigned long long v;
	char *end;
	int base = 10;

	if (!s)
		return -EINVAL;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	/* strtoull() would skip white space, take a sign ("0x-1" is
	 * 2^64 - 1) and, in base 16, a second 0x: a digit must come first */
	if (!is_digit(*s, base) ||
	    (base == 16 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, base);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end || end == s)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

bool pvio_name_chars_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_' ||
		      *s == '.'))
			return false;
	return true;
}

int pvio_parse_uint(const char *s, unsigned int min, unsigned int max,
		    unsigned int *out)
{
	uint64_t v;
	int rc = pvio_parse_u64(s, min, max, &v);

	if (!rc)
		*out = (unsigned int)v;
	return rc;
}

int pvio_parse_size(const char *s, uint64_t *out)
{
	char buf[64];
	size_t len;
	unsigned int shift = 0;
	uint64_t v;
	int rc;

	if (!s || (len = strlen(s)) == 0 || len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len + 1);
	switch (buf[len - 1]) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	}
	if (shift)
		buf[len - 1] = 0;
	rc = pvio_parse_u64(buf, 0, UINT64_MAX >> shift, &v);
	if (rc)
		return rc;
	*out = v << shift;
	return 0;
}

void pvio_usage_error(const char *prog, const char *fmt, ...)
{
	char msg[512], *p;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* the message quotes the command line: a newline in an argument
	 * must not make a second line */
	for (p = msg; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	fprintf(stderr, "%s: %s (try --help)\n", prog, msg);
	exit(2);
}

/*
 * Was the option getopt_long() refused a short one? optopt says which
 * character, but it is also the value of a long option (--workers gives
 * 'w'), and 0 for an unknown long one. getopt moves optind past a long
 * option at once, past a bundle of short ones (-bX) at its last
 * character only: -Xw leaves optind at the bundle itself.
 */
static bool bad_option_short(int c, char *const *argv)
{
	const char *cur = argv[optind];

	if (optopt <= ' ' || optopt >= 0x7f)
		return false;
	if (c == '?' && cur && cur[0] == '-' && cur[1] && cur[1] != '-' &&
	    strchr(cur + 1, optopt))
		return true;	/* inside a bundle */
	return optind < 1 || strncmp(argv[optind - 1], "--", 2) != 0;
}

void pvio_usage_bad_option(const char *prog, int c, char *const *argv)
{
	char opt[3] = { '-', (char)optopt, 0 };
	const char *arg = opt;

	if (!bad_option_short(c, argv))
		arg = optind > 0 ? argv[optind - 1] : "?";
	if (c == ':')
		pvio_usage_error(prog, "option '%s' needs a value", arg);
	pvio_usage_error(prog, "unknown option '%s'", arg);
}

void pvio_version(const char *prog)
{
	printf("%s (pvio) %s\n", prog, PACKAGE_VERSION);
	exit(0);
}
