/*
 * log.h: gcmond's two outputs besides the control socket: human lines on
 * stderr (warnings and alerts unless --quiet, debug lines and one line
 * per collection with --verbose, refused peers always) and the JSON lines
 * log (--log-file, one object per line; what it carries: --log-events,
 * see gcmond(8)), and gcmond's own errors (log_error, log_fatal). Called
 * by gcmond.c, server.c, events.c and agents.c (the one header of the
 * program floor the lower floors include: doc/HACKING.md). A log that
 * cannot be written is reported once and never stops the daemon; only
 * log_fatal* exit.
 */
#ifndef GCMON_LOG_H
#define GCMON_LOG_H

#include <stdint.h>

#include <jansson.h>

#include "codec.h"

#define LOG_REFUSED_UIDS	16	/* uids whose refusals are rate-limited */
#define LOG_REFUSED_EVERY_S	60.0	/* one line per uid per this */

struct log {
	char *path;		/* JSON lines file, or NULL */
	int fd;			/* -1 when closed */
	int quiet, verbose;
	int failing;		/* a write failed; reported once */
	int torn;		/* the file ends in part of a line */
	unsigned long long lines, lost;
	struct {
		unsigned uid;
		double last_s;		/* its last line; 0: slot free */
		unsigned long held;	/* refusals since, not logged */
	} refused[LOG_REFUSED_UIDS];
};

void log_init(struct log *l, int quiet, int verbose);
/* Opens path for appending (0600). 0 or a negative errno; on error the
 * path is still kept, so that log_reopen() can try again. */
int log_open(struct log *l, const char *path);
/* SIGHUP: reopens the same path (logrotate moved it). 0 or -errno. */
int log_reopen(struct log *l);
void log_close(struct log *l);

/* Writes obj (borrowed) as one line, with "ts" (Unix seconds) added if
 * absent. A failure is counted and reported once until a write works. */
void log_json(struct log *l, json_t *obj);

/* The stderr line of one collection of pid (with --verbose). */
void log_event(struct log *l, uint32_t pid, const struct proto_event *e,
    int alert);

void log_warn(struct log *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_info(struct log *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_debug(struct log *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A peer refused for its uid (--allow-uid), on stderr whatever --quiet
 * says: the operator must learn why a program runs unmonitored. At most
 * one line per uid per LOG_REFUSED_EVERY_S (now_s: monotonic seconds),
 * saying how many refusals it held back since its last. Returns 1 if it
 * wrote the line, 0 if it held it back. */
int log_refused(struct log *l, double now_s, unsigned uid, int pid);

/* gcmond's own errors, on stderr whatever --quiet says (tmux and
 * OpenBSD style): "gcmond: <what>: <strerror(-err)>" (err a negative
 * errno or libuv error), or "gcmond: <what>" with log_errorx. */
void log_error(int err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_errorx(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
/* The same, then exit(status): only gcmond.c's start-up uses these. */
void log_fatal(int status, int err, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));
void log_fatalx(int status, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

#endif /* GCMON_LOG_H */
