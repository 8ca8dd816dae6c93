/*
 * log.h: gcmond's two outputs besides the control socket: human lines on
 * stderr (warnings and alerts unless --quiet, debug lines and one line
 * per collection with --verbose) and the JSON lines log (--log-file, one
 * object per line; what it carries: --log-events, see gcmond(8)).
 * Called by gcmond.c and server.c. A log that cannot be written is
 * reported once and never stops the daemon.
 */
#ifndef GCMON_LOG_H
#define GCMON_LOG_H

#include <jansson.h>

struct log {
	char *path;		/* JSON lines file, or NULL */
	int fd;			/* -1 when closed */
	int quiet, verbose;
	int failing;		/* a write failed; reported once */
	unsigned long long lines, lost;
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

void log_warn(struct log *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_info(struct log *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_debug(struct log *l, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* GCMON_LOG_H */
