/*
 * ctl.h: a control connection to gcmond (doc/control.md): connect, send a
 * JSON request in a CONTROL frame, read JSON answers. Used by gcmonctl and
 * pygcprofiler. Never prints; returns 0 or a negative errno.
 */
#ifndef GCMON_CTL_H
#define GCMON_CTL_H

#include <stddef.h>
#include <jansson.h>

#include "codec.h"

/* Exit statuses shared by gcmonctl and pygcprofiler's own errors. */
#define CTL_EXIT_OK		0
#define CTL_EXIT_FAILURE	1	/* the daemon answered with an error */
#define CTL_EXIT_USAGE		2	/* bad flags or arguments */
#define CTL_EXIT_NO_DAEMON	3	/* nothing listening at the socket */

/* The default socket: paths_default_socket() (common/paths.h). */
const char *ctl_default_socket(char *buf, size_t len);

/* Connects to path. -ENOENT or -ECONNREFUSED: no daemon there;
 * -ENAMETOOLONG: path too long for a Unix socket. */
int ctl_connect(const char *path, int *fd_out);

/* Sends req (borrowed), whole: 0, or -EPIPE/-ECONNRESET and the like. */
int ctl_send(int fd, json_t *req);
/* Sends the n requests (borrowed) in one write; their answers are read
 * with ctl_read, in order (gcmond answers what follows a wait after it). */
int ctl_send_all(int fd, json_t *const *reqs, size_t n);

/* Sends req (borrowed) and reads one answer object (new reference in
 * *answer) within timeout_ms (< 0: no limit). -ETIMEDOUT, -EPIPE/-ECONNRESET
 * (daemon went away), -EPROTO (not a CONTROL frame or not a JSON object). */
int ctl_request(int fd, json_t *req, json_t **answer, int timeout_ms);

/* Reads the next streamed object (watch). 0 and *obj set; -ECONNRESET at
 * the end of the stream; -ETIMEDOUT after timeout_ms (< 0: no limit);
 * -EINTR if a signal arrived while waiting (so callers can check flags). */
int ctl_read(int fd, json_t **obj, int timeout_ms);

/* A stream of objects read in batches (pygcprofiler's watch): one recv
 * of whatever the socket holds, then every whole frame from the buffer,
 * so a drain's worth of events costs one read, not two per object. */
struct ctl_stream {
	unsigned char *buf;
	size_t off, len, cap;	/* unread bytes: buf[off..len) */
	int eof;		/* the peer closed: what is buffered is the rest */
};

/* Waits at most timeout_ms (< 0: no limit) for bytes on fd, then reads
 * all it holds without waiting again. 0 (bytes read, or EOF noted in
 * s->eof), -ETIMEDOUT, -EINTR (a signal), -ENOMEM or another -errno. */
int ctl_stream_fill(struct ctl_stream *s, int fd, int timeout_ms);
/* The next whole object in the buffer: 0 and *obj set (new reference),
 * -EAGAIN (no whole frame buffered; -ECONNRESET instead after EOF),
 * -EPROTO (not a CONTROL frame of a JSON object: close the stream). */
int ctl_stream_next(struct ctl_stream *s, json_t **obj);
/* The same for a binary watch (`watch` with "events": "binary",
 * doc/control.md): 0 and *obj set for a CONTROL frame; 1 and *recs set
 * for a WATCH_EVENTS frame (validated; its records borrow the buffer
 * until the next fill); -EAGAIN, -ECONNRESET; or what was wrong with the
 * next frame, which proto_strerror() names: a codec error (a bad header,
 * a short, overlong or miscounted record frame) or -EPROTO (a frame of
 * another type, a payload that is not a JSON object). */
int ctl_stream_next_any(struct ctl_stream *s, json_t **obj,
    struct proto_watch_events *recs);
/* Frees the buffer (the fd is the caller's). */
void ctl_stream_free(struct ctl_stream *s);

void ctl_close(int fd);

#endif /* GCMON_CTL_H */
