/*
 * http.c: the HTTP listener of gcmond (--metrics-listen). libmicrohttpd
 * runs without a thread of its own (MHD_USE_EPOLL): its epoll fd is
 * watched by a uv_poll_t, MHD_run is called when it is readable and
 * when MHD_get_timeout's deadline passes (a uv_timer_t), so requests
 * are served on the loop thread and read the aggregates without a lock.
 * Called by gcmond.c; renders through metrics.c. Never prints, never
 * exits, never blocks: a request is answered from memory.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "http.h"

struct http_route {
	const char *path;
	enum MHD_Result (*serve)(struct http *h, struct MHD_Connection *c);
};

static enum MHD_Result http_serve_metrics(struct http *h,
    struct MHD_Connection *c);

static const struct http_route http_routes[] = {
	{ "/metrics", http_serve_metrics },
};

static int http_parse_port(const char *s, in_port_t *port)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v == 0 ||
	    v > 65535)
		return -EINVAL;
	*port = htons((in_port_t)v);
	return 0;
}

int http_parse_listen(const char *s, struct sockaddr_storage *ss,
    socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	char host[64];
	const char *colon = strrchr(s, ':'), *port;
	size_t n;

	memset(ss, 0, sizeof *ss);
	if (colon == NULL) {
		port = s;
		snprintf(host, sizeof host, "%s", HTTP_DEFAULT_ADDR);
	} else {
		port = colon + 1;
		n = (size_t)(colon - s);
		if (n >= 2 && s[0] == '[' && s[n - 1] == ']') {
			s++;
			n -= 2;
		}
		if (n == 0 || n >= sizeof host)
			return -EINVAL;
		memcpy(host, s, n);
		host[n] = '\0';
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		*len = sizeof *sin;
		return http_parse_port(port, &sin->sin_port);
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		*len = sizeof *sin6;
		return http_parse_port(port, &sin6->sin6_port);
	}
	return -EINVAL;
}

/* gcmond's own resident set, from /proc/self/statm; 0 if unknown. */
static uint64_t http_self_rss(void)
{
	unsigned long long size, resident;
	long page = sysconf(_SC_PAGESIZE);
	FILE *f = fopen("/proc/self/statm", "re");
	int n;

	if (f == NULL)
		return 0;
	n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	return n == 2 && page > 0 ? resident * (uint64_t)page : 0;
}

static enum MHD_Result http_send(struct MHD_Connection *c, unsigned status,
    const char *type, char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	if ((r = MHD_create_response_from_buffer(len, body, mode)) == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type) !=
	    MHD_YES) {
		MHD_destroy_response(r);
		return MHD_NO;
	}
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result http_send_text(struct MHD_Connection *c,
    unsigned status, const char *msg)
{
	return http_send(c, status, "text/plain; charset=utf-8", (char *)msg,
	    strlen(msg), MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result http_serve_metrics(struct http *h,
    struct MHD_Connection *c)
{
	struct metrics_health health;
	enum metrics_format f;
	char *body;
	size_t len;

	memset(&health, 0, sizeof health);
	if (h->health != NULL)
		h->health(h->health_arg, &health);
	health.rss_bytes = http_self_rss();
	f = metrics_negotiate(MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	    MHD_HTTP_HEADER_ACCEPT));
	if (metrics_render(h->metrics, h->agg, &health, f, &body, &len) < 0)
		return http_send_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "out of memory\n");
	return http_send(c, MHD_HTTP_OK, metrics_content_type(f), body, len,
	    MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result http_on_request(void *cls, struct MHD_Connection *c,
    const char *url, const char *method, const char *version,
    const char *upload, size_t *upload_size, void **req)
{
	struct http *h = cls;
	size_t i;

	(void)version;
	(void)upload;
	(void)req;
	if (*upload_size != 0) {
		*upload_size = 0;	/* a body is not for us: ignored */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return http_send_text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "only GET and HEAD\n");
	for (i = 0; i < sizeof http_routes / sizeof http_routes[0]; i++)
		if (strcmp(url, http_routes[i].path) == 0)
			return http_routes[i].serve(h, c);
	return http_send_text(c, MHD_HTTP_NOT_FOUND,
	    "not found (gcmond serves /metrics)\n");
}

static void http_on_timer(uv_timer_t *t);

/* After every MHD_run: wake again when MHD's next deadline is due
 * (0 ms when it has work pending, such as a response to write). */
static void http_schedule(struct http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(h->mhd, &ms) == MHD_YES)
		(void)uv_timer_start(&h->timer, http_on_timer,
		    ms > 60000 ? 60000 : (uint64_t)ms, 0);
	else
		(void)uv_timer_stop(&h->timer);
}

static void http_on_timer(uv_timer_t *t)
{
	struct http *h = t->data;

	(void)MHD_run(h->mhd);
	http_schedule(h);
}

static void http_on_poll(uv_poll_t *p, int status, int events)
{
	struct http *h = p->data;

	(void)status;
	(void)events;
	(void)MHD_run(h->mhd);
	http_schedule(h);
}

/* A non-blocking listening socket for MHD, bound here so that a bind
 * error comes back as an errno the caller can name. */
static int http_listen_fd(const struct sockaddr *sa, socklen_t salen)
{
	int fd, one = 1, err;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    0);
	if (fd < 0)
		return -errno;
	/* Failing only costs a restart's TIME_WAIT wait. */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(fd, sa, salen) < 0 || listen(fd, 64) < 0)
		goto out_close;
	return fd;
out_close:
	err = -errno;
	close(fd);
	return err;
}

int http_start(struct http *h, uv_loop_t *loop, const struct sockaddr *sa,
    socklen_t salen)
{
	const union MHD_DaemonInfo *info;
	int fd, err;

	h->loop = loop;
	if ((fd = http_listen_fd(sa, salen)) < 0)
		return fd;
	h->mhd = MHD_start_daemon(MHD_USE_EPOLL, 0, NULL, NULL,
	    http_on_request, h,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
	    MHD_OPTION_END);
	if (h->mhd == NULL) {
		close(fd);
		return -ENOMEM;	/* MHD says no more; the socket was fine */
	}
	if ((info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD)) ==
	    NULL) {
		err = -ENOTSUP;
		goto out_stop;
	}
	if ((err = uv_poll_init(loop, &h->poll, info->epoll_fd)) < 0)
		goto out_stop;
	h->poll.data = h;
	if ((err = uv_timer_init(loop, &h->timer)) < 0) {
		uv_close((uv_handle_t *)&h->poll, NULL);
		goto out_stop;
	}
	h->timer.data = h;
	h->started = 1;
	if ((err = uv_poll_start(&h->poll, UV_READABLE, http_on_poll)) < 0) {
		http_stop(h);
		return err;
	}
	http_schedule(h);
	return 0;
out_stop:
	MHD_stop_daemon(h->mhd);	/* closes fd */
	h->mhd = NULL;
	return err;
}

void http_stop(struct http *h)
{
	if (!h->started)
		return;
	h->started = 0;
	/* libuv lets go of the epoll fd before MHD closes it. */
	(void)uv_poll_stop(&h->poll);
	uv_close((uv_handle_t *)&h->poll, NULL);
	uv_close((uv_handle_t *)&h->timer, NULL);
	MHD_stop_daemon(h->mhd);
	h->mhd = NULL;
}
