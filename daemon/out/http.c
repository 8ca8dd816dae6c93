/*
 * http.c: the HTTP listener of gcmond (--http-listen, alias
 * --metrics-listen): /metrics, the dashboard's static files, /api/...
 * (control.c's answers, run through control_request as a socket client's
 * would be: one schema) and /api/events (Server-Sent Events fed by
 * server.c's tap; each browser has a bounded queue: a slow one loses
 * events, counted and told, and never slows the loop). libmicrohttpd
 * runs without a thread of its own (MHD_USE_EPOLL): its epoll fd is
 * watched by a uv_poll_t, MHD_run is called when it is readable and
 * when MHD_get_timeout's deadline passes (a uv_timer_t), so requests
 * are served on the loop thread and read the aggregates without a lock.
 * Every libmicrohttpd call goes through h->api (mhd_load.c: the library
 * is dlopened only when gcmond serves HTTP).
 * Called by gcmond.c; renders through metrics.c. Never prints, never
 * exits, never blocks: a request is answered from memory. Only GET and
 * HEAD: nothing over HTTP changes the daemon.
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
#include "mhd_load.h"

static void http_on_timer(uv_timer_t *t);

/* A path and what serves it; cmd: the control command an /api/ route
 * answers with (control.c's answer, verbatim). */
struct http_route {
	const char *path;
	enum MHD_Result (*serve)(struct http *h, struct MHD_Connection *c,
	    const char *cmd);
	const char *cmd;
};

static enum MHD_Result http_serve_metrics(struct http *h,
    struct MHD_Connection *c, const char *cmd);
static enum MHD_Result http_serve_control(struct http *h,
    struct MHD_Connection *c, const char *cmd);
static enum MHD_Result http_serve_events(struct http *h,
    struct MHD_Connection *c, const char *cmd);

static const struct http_route http_routes[] = {
	{ "/metrics", http_serve_metrics, NULL },
	{ "/api/summary", http_serve_control, "summary" },
	{ "/api/processes", http_serve_control, "processes" },
	{ "/api/recommendations", http_serve_control, "recommendations" },
	{ "/api/runs", http_serve_control, "runs" },
	{ "/api/requests", http_serve_control, "requests" },
	{ "/api/events", http_serve_events, NULL },
};

/* A browser's event stream: what is queued for it, from off to len. */
struct http_sse {
	LIST_ENTRY(http_sse) link;	/* in http->sse */
	struct http *h;
	struct MHD_Connection *c;
	char *run;		/* only this run's objects; NULL: all */
	char *buf;
	size_t off, len, cap;
	uint64_t lost;		/* not sent, not yet told */
	int suspended;
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

static enum MHD_Result http_send(struct http *h, struct MHD_Connection *c,
    unsigned status, const char *type, char *body, size_t len,
    enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = h->api->create_response_from_buffer(len, body, mode);
	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	if (h->api->add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    type) != MHD_YES) {
		h->api->destroy_response(r);
		return MHD_NO;
	}
	ret = h->api->queue_response(c, status, r);
	h->api->destroy_response(r);
	return ret;
}

static enum MHD_Result http_send_text(struct http *h,
    struct MHD_Connection *c, unsigned status, const char *msg)
{
	return http_send(h, c, status, "text/plain; charset=utf-8", (char *)msg,
	    strlen(msg), MHD_RESPMEM_PERSISTENT);
}

static enum MHD_Result http_serve_metrics(struct http *h,
    struct MHD_Connection *c, const char *cmd)
{
	struct metrics_health health;
	enum metrics_format f;
	char *body;
	size_t len;

	(void)cmd;
	memset(&health, 0, sizeof health);
	if (h->health != NULL)
		h->health(h->health_arg, &health);
	health.rss_bytes = http_self_rss();
	f = metrics_negotiate(h->api->lookup_connection_value(c,
	    MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT));
	if (metrics_render(h->metrics, h->agg, &health, f, &body, &len) < 0)
		return http_send_text(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
		    "out of memory\n");
	return http_send(h, c, MHD_HTTP_OK, metrics_content_type(f), body, len,
	    MHD_RESPMEM_MUST_FREE);
}

/* Runs control command cmd (with ?run= and ?pid= of the URL) through
 * control.c and sends its answer as is. */
static enum MHD_Result http_serve_control(struct http *h,
    struct MHD_Connection *c, const char *cmd)
{
	const char *run = h->api->lookup_connection_value(c,
	    MHD_GET_ARGUMENT_KIND, "run");
	const char *pid = h->api->lookup_connection_value(c,
	    MHD_GET_ARGUMENT_KIND, "pid");
	struct control_answer ans = { 0 };
	struct control_ctx ctx;
	json_t *req;
	char *js = NULL, *body = NULL, *end;
	long long v;
	unsigned status;

	if ((req = json_pack("{s:s}", "cmd", cmd)) == NULL)
		goto out_oom;
	if (run != NULL)
		json_object_set_new(req, "run", json_string(run));
	if (pid != NULL) {
		v = strtoll(pid, &end, 10);
		json_object_set_new(req, "pid", *pid != '\0' && *end == '\0' ?
		    json_integer(v) : json_string(pid));	/* control.c says */
	}
	js = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (js == NULL)
		goto out_oom;
	memset(&ctx, 0, sizeof ctx);
	h->control(h->control_arg, &ctx);
	control_request(&ctx, js, strlen(js), &ans);
	free(js);
	if (ans.obj != NULL)
		body = json_dumps(ans.obj, JSON_COMPACT | JSON_REAL_PRECISION(15));
	status = ans.kind == CONTROL_ANSWER ? MHD_HTTP_OK :
	    MHD_HTTP_BAD_REQUEST;
	control_answer_fini(&ans);
	if (body == NULL)
		goto out_oom;
	return http_send(h, c, status, "application/json", body, strlen(body),
	    MHD_RESPMEM_MUST_FREE);
out_oom:
	return http_send_text(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
	    "out of memory\n");
}

/* ---- /api/events ------------------------------------------------------- */

/* Queues n bytes for sse; -ENOBUFS when its queue would pass the cap. */
static int http_sse_append(struct http_sse *sse, const char *data, size_t n)
{
	size_t need = sse->len - sse->off + n, cap;
	char *nb;

	if (need > HTTP_SSE_QUEUE_MAX)
		return -ENOBUFS;
	if (sse->off > 0) {
		memmove(sse->buf, sse->buf + sse->off, sse->len - sse->off);
		sse->len -= sse->off;
		sse->off = 0;
	}
	if (need > sse->cap) {
		cap = sse->cap ? sse->cap : 4096;
		while (cap < need)
			cap *= 2;
		if ((nb = realloc(sse->buf, cap)) == NULL)
			return -ENOMEM;
		sse->buf = nb;
		sse->cap = cap;
	}
	memcpy(sse->buf + sse->len, data, n);
	sse->len += n;
	return 0;
}

/* Has MHD write what is queued: a waiting stream is resumed, and MHD_run
 * is due now. */
static void http_sse_wake(struct http_sse *sse)
{
	if (!sse->suspended)
		return;
	sse->suspended = 0;
	sse->h->api->resume_connection(sse->c);
	(void)uv_timer_start(&sse->h->timer, http_on_timer, 0, 0);
}

/* Tells sse what it lost (the watch stream's LOST object) once there is
 * room; 0 when it is told (or had nothing to be told). */
static int http_sse_tell_lost(struct http_sse *sse)
{
	char line[96];
	int n;

	if (sse->lost == 0)
		return 0;
	n = snprintf(line, sizeof line,
	    "data: {\"type\":\"lost\",\"events\":%llu}\n\n",
	    (unsigned long long)sse->lost);
	if (http_sse_append(sse, line, (size_t)n) < 0)
		return -ENOBUFS;
	sse->lost = 0;
	return 0;
}

void http_sse_push(void *arg, json_t *o, const char *run)
{
	struct http *h = arg;
	struct http_sse *sse;
	char *js, *line;
	size_t n;

	if (h->nsse == 0 || h->stopping)
		return;
	if ((js = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15))) ==
	    NULL)
		return;
	n = strlen(js) + 8;
	if ((line = malloc(n + 1)) != NULL)
		snprintf(line, n + 1, "data: %s\n\n", js);
	free(js);
	LIST_FOREACH(sse, &h->sse, link) {
		if (sse->run != NULL && run != NULL && strcmp(sse->run, run) != 0)
			continue;
		if (line == NULL || http_sse_tell_lost(sse) < 0 ||
		    http_sse_append(sse, line, n) < 0) {
			sse->lost++;
			h->sse_lost++;
			continue;
		}
		http_sse_wake(sse);
	}
	free(line);
}

static ssize_t http_sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct http_sse *sse = cls;
	size_t n = sse->len - sse->off;

	(void)pos;
	if (n == 0 && sse->lost > 0 && http_sse_tell_lost(sse) == 0)
		n = sse->len - sse->off;	/* drained: now it is told */
	if (n == 0 && sse->h->stopping)
		return MHD_CONTENT_READER_END_OF_STREAM;
	if (n == 0) {
		/* Nothing to send: out of MHD's loop until a push. */
		sse->suspended = 1;
		sse->h->api->suspend_connection(sse->c);
		return 0;
	}
	if (n > max)
		n = max;
	memcpy(buf, sse->buf + sse->off, n);
	sse->off += n;
	if (sse->off == sse->len)
		sse->off = sse->len = 0;
	return (ssize_t)n;
}

static void http_sse_free(void *cls)
{
	struct http_sse *sse = cls;

	LIST_REMOVE(sse, link);
	sse->h->nsse--;
	free(sse->run);
	free(sse->buf);
	free(sse);
}

static void http_on_keepalive(uv_timer_t *t)
{
	struct http *h = t->data;
	struct http_sse *sse;

	LIST_FOREACH(sse, &h->sse, link)
		if (http_sse_append(sse, ":\n\n", 3) == 0)
			http_sse_wake(sse);
}

static enum MHD_Result http_serve_events(struct http *h,
    struct MHD_Connection *c, const char *cmd)
{
	static const char hello[] = "retry: 2000\n\n";
	const char *run = h->api->lookup_connection_value(c,
	    MHD_GET_ARGUMENT_KIND, "run");
	struct MHD_Response *r;
	struct http_sse *sse;
	enum MHD_Result ret;

	(void)cmd;
	if (h->nsse >= HTTP_SSE_MAX)
		return http_send_text(h, c, MHD_HTTP_SERVICE_UNAVAILABLE,
		    "too many event streams\n");
	if ((sse = calloc(1, sizeof *sse)) == NULL ||
	    (run != NULL && (sse->run = strdup(run)) == NULL) ||
	    http_sse_append(sse, hello, sizeof hello - 1) < 0)
		goto out_oom;
	sse->h = h;
	sse->c = c;
	r = h->api->create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
	    http_sse_read, sse, http_sse_free);
	if (r == NULL)
		goto out_oom;
	/* From here on, http_sse_free frees it. */
	LIST_INSERT_HEAD(&h->sse, sse, link);
	h->nsse++;
	(void)h->api->add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    "text/event-stream");
	(void)h->api->add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
	    "no-cache");
	ret = h->api->queue_response(c, MHD_HTTP_OK, r);
	h->api->destroy_response(r);
	return ret;
out_oom:
	if (sse != NULL) {
		free(sse->run);
		free(sse->buf);
		free(sse);
	}
	return http_send_text(h, c, MHD_HTTP_INTERNAL_SERVER_ERROR,
	    "out of memory\n");
}

/* A file of the dashboard; "/" is /index.html. */
static enum MHD_Result http_serve_file(struct http *h,
    struct MHD_Connection *c, const char *url)
{
	const struct http_file *f;
	struct MHD_Response *r;
	enum MHD_Result ret;
	size_t i;

	if (strcmp(url, "/") == 0)
		url = "/index.html";
	for (i = 0; i < http_nfiles; i++)
		if (strcmp(url, http_files[i].path) == 0)
			break;
	if (i == http_nfiles)
		return http_send_text(h, c, MHD_HTTP_NOT_FOUND, "not found "
		    "(gcmond serves /, /api/{summary,processes,"
		    "recommendations,runs,requests,events} and /metrics)\n");
	f = &http_files[i];
	r = h->api->create_response_from_buffer(f->len, (void *)f->data,
	    MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	(void)h->api->add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
	    f->type);
	/* Only our own files run; peer strings are never markup. */
	(void)h->api->add_response_header(r, "Content-Security-Policy",
	    "default-src 'self'");
	(void)h->api->add_response_header(r, "X-Content-Type-Options",
	    "nosniff");
	ret = h->api->queue_response(c, MHD_HTTP_OK, r);
	h->api->destroy_response(r);
	return ret;
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
		return http_send_text(h, c, MHD_HTTP_METHOD_NOT_ALLOWED,
		    "only GET and HEAD\n");
	for (i = 0; i < sizeof http_routes / sizeof http_routes[0]; i++)
		if (strcmp(url, http_routes[i].path) == 0)
			return http_routes[i].serve(h, c, http_routes[i].cmd);
	return http_serve_file(h, c, url);
}

/* After every MHD_run: wake again when MHD's next deadline is due
 * (0 ms when it has work pending, such as a response to write). */
static void http_schedule(struct http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (h->api->get_timeout(h->mhd, &ms) == MHD_YES)
		(void)uv_timer_start(&h->timer, http_on_timer,
		    ms > 60000 ? 60000 : (uint64_t)ms, 0);
	else
		(void)uv_timer_stop(&h->timer);
}

static void http_on_timer(uv_timer_t *t)
{
	struct http *h = t->data;

	(void)h->api->run(h->mhd);
	http_schedule(h);
}

static void http_on_poll(uv_poll_t *p, int status, int events)
{
	struct http *h = p->data;

	(void)status;
	(void)events;
	(void)h->api->run(h->mhd);
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
	LIST_INIT(&h->sse);
	if ((fd = http_listen_fd(sa, salen)) < 0)
		return fd;
	h->mhd = h->api->start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME,
	    0, NULL, NULL,
	    http_on_request, h,
	    MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)HTTP_MAX_CONNECTIONS,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_TIMEOUT_S,
	    MHD_OPTION_END);
	if (h->mhd == NULL) {
		close(fd);
		return -ENOMEM;	/* MHD says no more; the socket was fine */
	}
	info = h->api->get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (info == NULL) {
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
	if ((err = uv_timer_init(loop, &h->keepalive)) < 0) {
		uv_close((uv_handle_t *)&h->poll, NULL);
		uv_close((uv_handle_t *)&h->timer, NULL);
		goto out_stop;
	}
	h->keepalive.data = h;
	(void)uv_timer_start(&h->keepalive, http_on_keepalive,
	    HTTP_SSE_KEEPALIVE_MS, HTTP_SSE_KEEPALIVE_MS);
	h->started = 1;
	if ((err = uv_poll_start(&h->poll, UV_READABLE, http_on_poll)) < 0) {
		http_stop(h);
		return err;
	}
	http_schedule(h);
	return 0;
out_stop:
	h->api->stop_daemon(h->mhd);	/* closes fd */
	h->mhd = NULL;
	return err;
}

void http_stop(struct http *h)
{
	struct http_sse *sse;

	if (!h->started)
		return;
	h->started = 0;
	/* MHD must not be stopped with a connection suspended: each stream
	 * is resumed and, with nothing left, ends. */
	h->stopping = 1;
	LIST_FOREACH(sse, &h->sse, link) {
		sse->off = sse->len = 0;
		if (sse->suspended) {
			sse->suspended = 0;
			h->api->resume_connection(sse->c);
		}
	}
	(void)h->api->run(h->mhd);
	uv_close((uv_handle_t *)&h->keepalive, NULL);
	/* libuv lets go of the epoll fd before MHD closes it. */
	(void)uv_poll_stop(&h->poll);
	uv_close((uv_handle_t *)&h->poll, NULL);
	uv_close((uv_handle_t *)&h->timer, NULL);
	h->api->stop_daemon(h->mhd);
	h->mhd = NULL;
}
