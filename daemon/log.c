/*
 * log.c: stderr lines and the JSON lines log of gcmond (see log.h).
 * Called from the event loop only (not thread-safe, no signal handler
 * calls it). Never exits the daemon (but for log_fatal*, which main()
 * calls at start-up) and never blocks it for long: the log file is a
 * regular file written with one write(2) per line.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

void log_init(struct log *l, int quiet, int verbose)
{
	memset(l, 0, sizeof *l);
	l->fd = -1;
	l->quiet = quiet;
	l->verbose = verbose;
}

static int log_open_fd(const char *path)
{
	/* Read too, to see how the file ends (log_ends_torn); a file we
	 * may only write is still fine. */
	int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	if (fd < 0 && errno == EACCES)
		fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

	return fd < 0 ? -errno : fd;
}

/* Whether the file ends in part of a line (the same file reopened after
 * a full disk): the next line must start on a new one. */
static int log_ends_torn(int fd)
{
	struct stat st;
	char last;

	if (fstat(fd, &st) < 0 || st.st_size == 0)
		return 0;
	return pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n';
}

int log_open(struct log *l, const char *path)
{
	free(l->path);
	if ((l->path = strdup(path)) == NULL)
		return -ENOMEM;
	return log_reopen(l);
}

int log_reopen(struct log *l)
{
	int fd;

	if (l->path == NULL)
		return 0;
	/* Keep writing to the old file if the new one cannot be opened. */
	if ((fd = log_open_fd(l->path)) < 0)
		return fd;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = fd;
	l->failing = 0;
	l->torn = log_ends_torn(fd);
	return 0;
}

void log_close(struct log *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	free(l->path);
	l->path = NULL;
}

static void log_vline(const char *level, const char *fmt, va_list ap)
{
	char stamp[32], msg[2048], line[4 * sizeof msg + 96];
	const char *p;
	struct timespec ts;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
	n = (size_t)snprintf(line, sizeof line, "gcmond: %s.%03ld %s", stamp,
	    ts.tv_nsec / 1000000, level);
	/* Peer strings (run ids) are in lines: no control byte goes raw, so
	 * none can forge a line or drive the terminal. */
	vsnprintf(msg, sizeof msg, fmt, ap);
	for (p = msg; *p != '\0'; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			n += (size_t)snprintf(line + n, sizeof line - n, "\\x%02x",
			    (unsigned char)*p);
		else
			line[n++] = *p;
	}
	line[n++] = '\n';
	/* One write: stderr is unbuffered, and a line written a byte at a
	 * time was a system call a byte and could be read half written. */
	fwrite(line, 1, n, stderr);
}

void log_warn(struct log *l, const char *fmt, ...)
{
	va_list ap;

	if (l->quiet)
		return;
	va_start(ap, fmt);
	log_vline("warning: ", fmt, ap);
	va_end(ap);
}

void log_info(struct log *l, const char *fmt, ...)
{
	va_list ap;

	if (l->quiet)
		return;
	va_start(ap, fmt);
	log_vline("", fmt, ap);
	va_end(ap);
}

void log_debug(struct log *l, const char *fmt, ...)
{
	va_list ap;

	if (!l->verbose)
		return;
	va_start(ap, fmt);
	log_vline("debug: ", fmt, ap);
	va_end(ap);
}

void log_event(struct log *l, uint32_t pid, const struct proto_event *e,
    int alert)
{
	if (l->quiet || !l->verbose)	/* one line a collection: --verbose */
		return;
	fprintf(stderr, "gcmond: pid %u gen %u pause %.3f ms collected %llu "
	    "uncollectable %u%s\n", (unsigned)pid, (unsigned)e->generation,
	    (double)e->pause_ns / 1e6, (unsigned long long)e->collected,
	    (unsigned)e->uncollectable, alert ? " ALERT" : "");
}

static void log_always(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void log_always(const char *level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(level, fmt, ap);
	va_end(ap);
}

int log_refused(struct log *l, double now_s, unsigned uid, int pid)
{
	unsigned i, slot = 0;
	unsigned long held;

	/* uid's slot, else a free one, else the one quiet longest. */
	for (i = 0; i < LOG_REFUSED_UIDS; i++) {
		if (l->refused[i].last_s != 0 && l->refused[i].uid == uid) {
			slot = i;
			break;
		}
		if (l->refused[i].last_s < l->refused[slot].last_s)
			slot = i;
	}
	if (i < LOG_REFUSED_UIDS &&
	    now_s - l->refused[slot].last_s < LOG_REFUSED_EVERY_S) {
		l->refused[slot].held++;
		return 0;
	}
	held = i < LOG_REFUSED_UIDS ? l->refused[slot].held : 0;
	l->refused[slot].uid = uid;
	l->refused[slot].last_s = now_s > 0 ? now_s : 1e-9;
	l->refused[slot].held = 0;
	if (held > 0)
		log_always("warning: ", "refused pid %d: uid %u is not "
		    "allowed (gcmond --allow-uid %u, or --allow-group); %lu more "
		    "refusals of "
		    "uid %u since the last such line", pid, uid, uid, held,
		    uid);
	else
		log_always("warning: ", "refused pid %d: uid %u is not "
		    "allowed (gcmond --allow-uid %u, or --allow-group)", pid, uid,
		    uid);
	return 1;
}

static void log_verror(int err, const char *fmt, va_list ap)
{
	char msg[8192];		/* a PATH_MAX path and its words */

	vsnprintf(msg, sizeof msg, fmt, ap);
	if (err != 0)	/* one write, as log_vline's */
		fprintf(stderr, "gcmond: %s: %s\n", msg,
		    strerror(err < 0 ? -err : err));
	else
		fprintf(stderr, "gcmond: %s\n", msg);
}

void log_error(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_verror(err, fmt, ap);
	va_end(ap);
}

void log_errorx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_verror(0, fmt, ap);
	va_end(ap);
}

void log_fatal(int status, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_verror(err, fmt, ap);
	va_end(ap);
	exit(status);
}

void log_fatalx(int status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_verror(0, fmt, ap);
	va_end(ap);
	exit(status);
}

/* Writes buf whole: 0, or the errno that stopped it (*done bytes out). */
static int log_write_all(int fd, const char *buf, size_t len, size_t *done)
{
	ssize_t n;

	*done = 0;
	while (*done < len) {
		n = write(fd, buf + *done, len - *done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : ENOSPC;
		*done += (size_t)n;
	}
	return 0;
}

void log_json(struct log *l, json_t *obj)
{
	struct timespec ts;
	char *line;
	size_t len, done;
	int err = 0;

	if (l->fd < 0)
		return;
	if (json_object_get(obj, "ts") == NULL) {
		clock_gettime(CLOCK_REALTIME, &ts);
		json_object_set_new(obj, "ts", json_real((double)ts.tv_sec +
		    (double)ts.tv_nsec / 1e9));
	}
	if ((line = json_dumps(obj, JSON_COMPACT | JSON_REAL_PRECISION(15))) == NULL) {
		err = ENOMEM;
		goto out_fail;
	}
	len = strlen(line);
	line[len++] = '\n';	/* json_dumps's NUL: the buffer holds it */
	/* A line cut short by a full disk is ended first, so that the next
	 * one is not glued to it (two lines lost to every JSON reader). */
	if (l->torn && (err = log_write_all(l->fd, "\n", 1, &done)) == 0)
		l->torn = 0;
	if (err == 0 && (err = log_write_all(l->fd, line, len, &done)) != 0 &&
	    done > 0)
		l->torn = 1;
	free(line);
	if (err == 0) {
		l->lines++;
		l->failing = 0;
		return;
	}
out_fail:
	l->lost++;
	if (!l->failing) {
		l->failing = 1;
		/* Reported even with --quiet: the operator must know. */
		fprintf(stderr, "gcmond: cannot write %s: %s (lines are lost "
		    "until it works again; SIGHUP reopens it)\n",
		    l->path ? l->path : "log", strerror(err));
	}
}
