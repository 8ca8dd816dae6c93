/*
 * http.h: gcmond's HTTP listener (--http-listen, alias --metrics-listen):
 * libmicrohttpd driven from the libuv loop, so gcmond stays one thread,
 * and a table of routes by path: /metrics, the dashboard (/ and its
 * static files), /api/... (control.c's answers, verbatim) and
 * /api/events (the watch stream as Server-Sent Events). Called by
 * gcmond.c (and server.c through its tap); renders through metrics.c
 * and control.c. Never prints, never exits, never writes to the
 * aggregates.
 */
#ifndef GCMON_HTTP_H
#define GCMON_HTTP_H

#include <sys/queue.h>
#include <sys/socket.h>
#include <uv.h>

#include <jansson.h>

#include "agg.h"
#include "control.h"
#include "metrics.h"

#define HTTP_DEFAULT_ADDR	"127.0.0.1"
#define HTTP_MAX_CONNECTIONS	64	/* scrapers at once */
#define HTTP_TIMEOUT_S		10	/* an idle connection is closed */
#define HTTP_SSE_QUEUE_MAX	(256u << 10)	/* bytes queued to a browser */
#define HTTP_SSE_MAX		16	/* event streams at once */
#define HTTP_SSE_KEEPALIVE_MS	5000	/* a comment to every stream */

struct MHD_Daemon;
struct mhd_api;
struct http_sse;

/* A static file of the dashboard (daemon/www/), compiled in by
 * daemon/www/embed.py into www_files.c. */
struct http_file {
	const char *path;	/* "/index.html"... */
	const char *type;
	const unsigned char *data;
	size_t len;
};
extern const struct http_file http_files[];
extern const size_t http_nfiles;

struct http {
	const struct mhd_api *api;	/* loaded (mhd_load) before http_start */
	uv_loop_t *loop;
	struct MHD_Daemon *mhd;
	uv_poll_t poll;			/* MHD's epoll fd */
	uv_timer_t timer;		/* MHD_get_timeout's deadline */
	int started;
	int stopping;			/* event streams end */
	struct agg *agg;
	struct metrics *metrics;
	/* Fills what gcmond knows of its own health (rss_bytes is http's). */
	void (*health)(void *arg, struct metrics_health *h);
	void *health_arg;
	/* Fills the context control.c's handlers are run with. */
	void (*control)(void *arg, struct control_ctx *ctx);
	void *control_arg;
	uv_timer_t keepalive;		/* /api/events comments */
	LIST_HEAD(http_sses, http_sse) sse;	/* the event streams */
	unsigned nsse;			/* read by server.c's tap */
	uint64_t sse_lost;		/* objects not sent to slow browsers */
};

/*
 * "ADDR:PORT", "[V6ADDR]:PORT" or "PORT" (then HTTP_DEFAULT_ADDR) to a
 * socket address. 0 or -EINVAL.
 */
int http_parse_listen(const char *s, struct sockaddr_storage *ss,
    socklen_t *len);
/* Binds, listens and starts serving on loop. h's api, agg, metrics and
 * health must be set. 0 or a negative errno (bind's: -EADDRINUSE...). */
int http_start(struct http *h, uv_loop_t *loop, const struct sockaddr *sa,
    socklen_t salen);
/* server.c's tap: o (borrowed) to every event stream, as one "data:"
 * line; a stream whose queue is full loses it (counted, then told). */
void http_sse_push(void *arg, json_t *o, const char *run);
/* Closes the listener and every connection; the handles close in the
 * loop. Safe to call twice or after a failed start. */
void http_stop(struct http *h);

#endif /* GCMON_HTTP_H */
