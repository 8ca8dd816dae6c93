/*
 * ctl.c: the client side of the control protocol (doc/control.md):
 * connect to gcmond's socket, send one JSON request in a CONTROL frame,
 * read JSON answers and streamed objects. Called by gcmonctl and
 * pygcprofiler. Never prints, never exits, never blocks past the timeout
 * it is given.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "codec.h"
#include "ctl.h"
#include "paths.h"

/* Once a frame has started to arrive, the rest is waited for this long
 * even when the caller asked not to wait: the daemon writes whole frames. */
#define CTL_FRAME_GRACE_MS	5000

/* gcmonctl's name for it; the policy is common/paths.c's. */
const char *ctl_default_socket(char *buf, size_t len)
{
	return paths_default_socket(buf, len);
}

int ctl_connect(const char *path, int *fd_out)
{
	struct sockaddr_un sa;
	int fd, err;

	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		goto out_close;
	*fd_out = fd;
	return 0;
out_close:
	err = -errno;
	close(fd);
	return err;
}

static int64_t ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for events or deadline (< 0: never). */
static int ctl_wait(int fd, short events, int64_t deadline)
{
	struct pollfd p = { .fd = fd, .events = events };
	int64_t left;
	int n;

	left = deadline < 0 ? -1 : deadline - ctl_now_ms();
	if (deadline >= 0 && left < 0)
		left = 0;
	n = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
	if (n < 0)
		return -errno;
	if (n == 0)
		return deadline >= 0 && ctl_now_ms() >= deadline ?
		    -ETIMEDOUT : -EAGAIN;
	return 0;
}

/* Reads exactly n bytes. started: some of this frame was read before, so
 * an empty socket is waited for (grace) rather than reported. */
static int ctl_read_exact(int fd, uint8_t *buf, size_t n, int64_t deadline,
    int started)
{
	size_t got = 0;
	ssize_t r;
	int err;

	while (got < n) {
		r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
		if (r > 0) {
			got += (size_t)r;
			if (!started) {
				started = 1;
				deadline = ctl_now_ms() + CTL_FRAME_GRACE_MS;
			}
			continue;
		}
		if (r == 0)
			return -ECONNRESET;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		err = ctl_wait(fd, POLLIN, deadline);
		if (err == -EINTR && started)
			continue;
		if (err == -EAGAIN)
			continue;
		if (err < 0)
			return err;
	}
	return 0;
}

static int ctl_read_deadline(int fd, json_t **obj, int64_t deadline)
{
	uint8_t hdr[PROTO_HDR_SIZE];
	struct proto_frame f;
	const char *js;
	size_t jlen;
	uint8_t *buf;
	json_t *o;
	int err;

	if ((err = ctl_read_exact(fd, hdr, sizeof hdr, deadline, 0)) < 0)
		return err;
	if ((err = proto_decode_header(hdr, sizeof hdr, 0, &f.hdr)) < 0)
		return -EPROTO;
	if (f.hdr.type != FRAME_CONTROL)
		return -EPROTO;
	if ((buf = malloc(f.hdr.len)) == NULL)
		return -ENOMEM;
	memcpy(buf, hdr, sizeof hdr);
	err = ctl_read_exact(fd, buf + sizeof hdr, f.hdr.len - sizeof hdr,
	    ctl_now_ms() + CTL_FRAME_GRACE_MS, 1);
	if (err < 0)
		goto out_free;
	f.payload = buf + sizeof hdr;
	f.payload_len = f.hdr.len - sizeof hdr;
	err = -EPROTO;
	if (proto_decode_control(&f, &js, &jlen) < 0)
		goto out_free;
	o = json_loadb(js, jlen, JSON_REJECT_DUPLICATES, NULL);
	if (o == NULL)
		goto out_free;
	if (!json_is_object(o)) {
		json_decref(o);
		goto out_free;
	}
	*obj = o;
	err = 0;
out_free:
	free(buf);
	return err;
}

/* Appends req's CONTROL frame to *buf (*len bytes, realloc'd). */
static int ctl_encode(json_t *req, uint8_t **buf, size_t *len)
{
	char *js;
	uint8_t *nbuf;
	size_t cap;
	ssize_t n;
	int err = -ENOMEM;

	if ((js = json_dumps(req, JSON_COMPACT)) == NULL)
		return -ENOMEM;
	cap = strlen(js) + PROTO_HDR_SIZE;
	if ((nbuf = realloc(*buf, *len + cap)) == NULL)
		goto out;
	*buf = nbuf;
	if ((n = proto_encode_control(nbuf + *len, cap, js, strlen(js))) < 0) {
		err = (int)n;
		goto out;
	}
	*len += (size_t)n;
	err = 0;
out:
	free(js);
	return err;
}

static int ctl_send_buf(int fd, const uint8_t *buf, size_t len)
{
	size_t off = 0;
	ssize_t n;

	while (off < len) {
		n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

int ctl_request(int fd, json_t *req, json_t **answer, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : ctl_now_ms() + timeout_ms;
	int err;

	if ((err = ctl_send(fd, req)) < 0) {
		/* The daemon may have answered (refused us) and closed before
		 * reading: its reason is worth more than EPIPE. */
		if ((err == -EPIPE || err == -ECONNRESET) &&
		    ctl_read_deadline(fd, answer, ctl_now_ms()) == 0)
			return 0;
		return err;
	}
	for (;;) {
		err = ctl_read_deadline(fd, answer, deadline);
		if (err == -EINTR)
			continue;
		return err;
	}
}

int ctl_send_all(int fd, json_t *const *reqs, size_t n)
{
	uint8_t *buf = NULL;
	size_t len = 0, i;
	int err = 0;

	for (i = 0; i < n && err == 0; i++)
		err = ctl_encode(reqs[i], &buf, &len);
	if (err == 0)
		err = ctl_send_buf(fd, buf, len);
	free(buf);
	return err;
}

int ctl_send(int fd, json_t *req)
{
	return ctl_send_all(fd, &req, 1);
}

int ctl_read(int fd, json_t **obj, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : ctl_now_ms() + timeout_ms;

	return ctl_read_deadline(fd, obj, deadline);
}

#define CTL_STREAM_CHUNK	(64u << 10)

int ctl_stream_fill(struct ctl_stream *s, int fd, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : ctl_now_ms() + timeout_ms;
	unsigned char *nb;
	ssize_t r;
	int err, got = 0;

	if (s->eof)
		return 0;
	if (s->off > 0) {		/* what the last batch left: to the front */
		memmove(s->buf, s->buf + s->off, s->len - s->off);
		s->len -= s->off;
		s->off = 0;
	}
	for (;;) {
		if (s->cap - s->len < CTL_STREAM_CHUNK) {
			if (got && s->len >= PROTO_MAX_FRAME)
				return 0;	/* a whole frame at least: enough */
			if ((nb = realloc(s->buf, s->len + CTL_STREAM_CHUNK)) == NULL)
				return got ? 0 : -ENOMEM;
			s->buf = nb;
			s->cap = s->len + CTL_STREAM_CHUNK;
		}
		r = recv(fd, s->buf + s->len, s->cap - s->len, MSG_DONTWAIT);
		if (r > 0) {
			s->len += (size_t)r;
			got = 1;
			continue;
		}
		if (r == 0) {
			s->eof = 1;
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return got ? 0 : -errno;
		if (got)
			return 0;
		err = ctl_wait(fd, POLLIN, deadline);
		if (err == -EAGAIN)
			continue;
		if (err < 0)
			return err;
	}
}

int ctl_stream_next_any(struct ctl_stream *s, json_t **obj,
    struct proto_watch_events *recs)
{
	struct proto_frame f;
	const char *js;
	size_t jlen;
	json_t *o;
	int err;

	if (s->len - s->off < PROTO_HDR_SIZE)
		return s->eof ? -ECONNRESET : -EAGAIN;
	err = proto_decode_header(s->buf + s->off, s->len - s->off, 0, &f.hdr);
	if (err == -EAGAIN || (err == 0 && f.hdr.len > s->len - s->off))
		return s->eof ? -ECONNRESET : -EAGAIN;
	if (err < 0)
		return err;
	f.payload = s->buf + s->off + PROTO_HDR_SIZE;
	f.payload_len = f.hdr.len - PROTO_HDR_SIZE;
	if (f.hdr.type == FRAME_WATCH_EVENTS && recs != NULL) {
		if ((err = proto_decode_watch_events(&f, recs)) < 0)
			return err;
		s->off += f.hdr.len;
		return 1;
	}
	if (f.hdr.type != FRAME_CONTROL)
		return -EPROTO;
	if ((err = proto_decode_control(&f, &js, &jlen)) < 0)
		return err;
	if ((o = json_loadb(js, jlen, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return -EPROTO;
	if (!json_is_object(o)) {
		json_decref(o);
		return -EPROTO;
	}
	s->off += f.hdr.len;
	*obj = o;
	return 0;
}

int ctl_stream_next(struct ctl_stream *s, json_t **obj)
{
	int err = ctl_stream_next_any(s, obj, NULL);

	return err == -EAGAIN || err == -ECONNRESET || err == 0 ? err :
	    -EPROTO;
}

void ctl_stream_free(struct ctl_stream *s)
{
	free(s->buf);
	memset(s, 0, sizeof *s);
}

void ctl_close(int fd)
{
	if (fd >= 0)
		close(fd);
}
