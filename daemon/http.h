/*
 * http.h: gcmond's HTTP listener (--metrics-listen): libmicrohttpd
 * driven from the libuv loop, so gcmond stays one thread, and a table
 * of routes by path (/metrics today; a dashboard later). Called by
 * gcmond.c; renders through metrics.c. Never prints, never exits.
 */
#ifndef GCMON_HTTP_H
#define GCMON_HTTP_H

#include <sys/socket.h>
#include <uv.h>

#include "agg.h"
#include "metrics.h"

#define HTTP_DEFAULT_ADDR	"127.0.0.1"
#define HTTP_MAX_CONNECTIONS	64	/* scrapers at once */
#define HTTP_TIMEOUT_S		10	/* an idle connection is closed */

struct MHD_Daemon;

struct http {
	uv_loop_t *loop;
	struct MHD_Daemon *mhd;
	uv_poll_t poll;			/* MHD's epoll fd */
	uv_timer_t timer;		/* MHD_get_timeout's deadline */
	int started;
	struct agg *agg;
	struct metrics *metrics;
	/* Fills what gcmond knows of its own health (rss_bytes is http's). */
	void (*health)(void *arg, struct metrics_health *h);
	void *health_arg;
};

/*
 * "ADDR:PORT", "[V6ADDR]:PORT" or "PORT" (then HTTP_DEFAULT_ADDR) to a
 * socket address. 0 or -EINVAL.
 */
int http_parse_listen(const char *s, struct sockaddr_storage *ss,
    socklen_t *len);
/* Binds, listens and starts serving on loop. h's agg, metrics and
 * health must be set. 0 or a negative errno (bind's: -EADDRINUSE...). */
int http_start(struct http *h, uv_loop_t *loop, const struct sockaddr *sa,
    socklen_t salen);
/* Closes the listener and every connection; the handles close in the
 * loop. Safe to call twice or after a failed start. */
void http_stop(struct http *h);

#endif /* GCMON_HTTP_H */
