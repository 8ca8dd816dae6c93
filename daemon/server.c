/*
 * server.c: gcmond's Unix socket and its connections (see server.h).
 * One proto_reader per connection; the first frame says what the peer is
 * (HELLO: an agent, CONTROL: a control client, whose requests control.c
 * answers; the socket file itself is sock.c's). A bad frame closes that
 * one connection and is logged once; nothing a peer sends can stall the
 * loop or another peer: input is bounded by the reader, output by
 * per-connection queue caps, and a slow watcher loses objects (counted,
 * then reported to it) rather than holding back ingestion.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agents.h"
#include "clock.h"
#include "codec.h"
#include "control.h"
#include "json.h"
#include "server.h"
#include "sock.h"


enum srv_kind { CONN_NEW = 0, CONN_CONTROL };

struct srv_write;

struct srv_conn {
	uv_pipe_t pipe;			/* first: handle->data is the conn */
	struct srv *s;
	LIST_ENTRY(srv_conn) link;	/* in srv->conns */
	enum srv_kind kind;
	pid_t peer_pid;
	uid_t peer_uid;
	struct proto_reader rd;
	uint64_t accepted_ms;		/* CONN_NEW past SRV_NEW_IDLE_MS: closed */
	int closing, close_after_write;
	size_t out_bytes;
	/* control */
	int watching;
	char *watch_run;		/* NULL: every run */
	uint64_t lost;			/* watch objects not sent */
	uint8_t *pend;			/* watch frames of this drain, unsent */
	size_t pend_len, pend_cap;
	int watch_binary;		/* collections as WATCH_EVENTS records */
	struct proto_watch_event *recs;	/* the open WATCH_EVENTS frame's */
	uint32_t nrecs, recs_cap;
	int waiting;			/* the requests behind it wait too */
	char *wait_run;
	uint64_t wait_deadline_ms;
	unsigned wait_min;
	int in_frames, resume;		/* srv_frames' */
	/* While srv_frames runs: what it sends, written at its end in one
	 * write (a client that pipelines wakes once, not once a request). */
	int corked;
	struct srv_write *cork;		/* its len: bytes held; NULL: none */
	size_t cork_len, cork_cap;	/* cork_len mirrors cork->len */
	int read_paused;		/* SRV_HELD_MAX held behind a wait */
};

struct srv_write {
	uv_write_t req;
	struct srv_conn *c;
	size_t len;
	uint8_t data[];
};

static void srv_conn_close(struct srv_conn *c);
static void srv_check_waits(struct srv *s);
static void srv_frames(struct srv_conn *c);
static void srv_send_answer(struct srv_conn *c, json_t *o);

void srv_health(const struct srv *s, uint64_t *nconns, uint64_t *nbad,
    uint64_t *nrefused)
{
	*nconns = s->nconns;
	*nbad = s->nbad;
	*nrefused = s->nrefused;
}

/* ---- output ------------------------------------------------------------ */

static void srv_send_json(struct srv_conn *c, json_t *o, int droppable);
static void srv_flush_watch(struct srv_conn *c);
static void srv_write_frames(struct srv_conn *c, const uint8_t *frame,
    size_t len);

/* Appends a frame to c's cork: 0 or -ENOMEM. The cork is the write
 * it will be, so that ending it copies nothing. */
static int srv_cork_add(struct srv_conn *c, const uint8_t *frame, size_t len)
{
	struct srv_write *nw;
	size_t cap;

	if (len > c->cork_cap - c->cork_len) {
		cap = c->cork_cap > 0 ? c->cork_cap : 4096 - sizeof *nw;
		while (cap - c->cork_len < len)
			cap *= 2;
		if ((nw = realloc(c->cork, sizeof *nw + cap)) == NULL)
			return -ENOMEM;
		c->cork = nw;
		c->cork_cap = cap;
	}
	memcpy(c->cork->data + c->cork_len, frame, len);
	c->cork_len += len;
	c->cork->len = c->cork_len;
	return 0;
}

static void srv_submit(struct srv_conn *c, struct srv_write *w);

/* Ends the cork: what it holds, in one write. */
static void srv_uncork(struct srv_conn *c)
{
	struct srv_write *w = c->cork;

	c->corked = 0;
	if (c->cork_len == 0 || c->closing)
		return;		/* nothing held, or no one to write to */
	c->cork = NULL;
	c->cork_len = c->cork_cap = 0;
	srv_submit(c, w);
}

static void srv_on_write(uv_write_t *req, int status)
{
	struct srv_write *w = (struct srv_write *)req;
	struct srv_conn *c = w->c;
	json_t *lost;

	(void)status;	/* a failed write shows up as a read error too */
	c->out_bytes -= w->len;
	free(w);
	if (c->closing)
		return;
	if (c->close_after_write && c->out_bytes == 0) {
		srv_conn_close(c);
		return;
	}
	if (c->lost > 0 && c->out_bytes < SRV_WATCH_QUEUE_MAX / 2) {
		lost = djson_lost(c->lost);
		c->lost = 0;
		if (lost != NULL)
			srv_send_json(c, lost, 0);
		json_decref(lost);
	}
}

/* Queues one frame (copied). droppable: a watch object, counted as lost
 * when the watcher is behind. An answer beyond the cap closes the peer. */
static void srv_send_frame(struct srv_conn *c, const uint8_t *frame,
    size_t len, int droppable)
{
	if (c->closing)
		return;
	if (!droppable)
		srv_flush_watch(c);	/* in the order they were made */
	if (droppable && c->out_bytes + c->cork_len + len >
	    SRV_WATCH_QUEUE_MAX) {
		c->lost++;
		return;
	}
	if (c->out_bytes + c->cork_len + len > SRV_ANSWER_QUEUE_MAX) {
		log_warn(c->s->log, "pid %d: %zu bytes unread, closing",
		    (int)c->peer_pid, c->out_bytes + c->cork_len);
		srv_conn_close(c);
		return;
	}
	if (c->corked) {
		if (srv_cork_add(c, frame, len) < 0) {
			if (droppable)
				c->lost++;
			else
				srv_conn_close(c);
		}
		return;
	}
	srv_write_frames(c, frame, len);
}

/* Writes len bytes of whole frames (copied), or closes c. */
static void srv_write_frames(struct srv_conn *c, const uint8_t *frame,
    size_t len)
{
	struct srv_write *w;

	if ((w = malloc(sizeof *w + len)) == NULL) {
		srv_conn_close(c);
		return;
	}
	memcpy(w->data, frame, len);
	w->len = len;
	srv_submit(c, w);
}

/* Writes w (w->len bytes, freed once written), or closes c. */
static void srv_submit(struct srv_conn *c, struct srv_write *w)
{
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);

	w->c = c;
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1,
	    srv_on_write) < 0) {
		free(w);
		srv_conn_close(c);
		return;
	}
	c->out_bytes += w->len;
}

static void srv_close_recs(struct srv_conn *c);

/* Sends the watch frames queued since the last flush, in one write. */
static void srv_flush_watch(struct srv_conn *c)
{
	size_t len;

	srv_close_recs(c);
	len = c->pend_len;
	if (len == 0 || c->closing)
		return;
	c->pend_len = 0;
	srv_send_frame(c, c->pend, len, 0);
}

/* Room for len more bytes in c->pend. 0 or -ENOMEM. */
static int srv_pend_reserve(struct srv_conn *c, size_t len)
{
	uint8_t *nb;
	size_t cap;

	if (c->pend_len + len <= c->pend_cap)
		return 0;
	cap = c->pend_len + len > SRV_WATCH_BATCH ? c->pend_len + len :
	    SRV_WATCH_BATCH;
	if ((nb = realloc(c->pend, cap)) == NULL)
		return -ENOMEM;
	c->pend = nb;
	c->pend_cap = cap;
	return 0;
}

/* The records queued since the last frame, as one WATCH_EVENTS frame at
 * the end of c->pend: before any other frame, so the order holds. */
static void srv_close_recs(struct srv_conn *c)
{
	size_t len;
	ssize_t n;

	if (c->nrecs == 0)
		return;
	len = proto_watch_events_size(c->nrecs);
	if (srv_pend_reserve(c, len) < 0 ||
	    (n = proto_encode_watch_events(c->pend + c->pend_len,
	    c->pend_cap - c->pend_len, c->recs, c->nrecs)) < 0)
		c->lost += c->nrecs;
	else
		c->pend_len += (size_t)n;
	c->nrecs = 0;
}

/* Queues one collection for a binary watcher: a record of the open
 * WATCH_EVENTS frame, lost as a JSON object would be when it is behind. */
static void srv_queue_rec(struct srv_conn *c,
    const struct proto_watch_event *rec)
{
	struct proto_watch_event *nr;
	uint32_t cap;

	if (c->closing)
		return;
	if (c->out_bytes + c->pend_len + proto_watch_events_size(c->nrecs + 1) >
	    SRV_WATCH_QUEUE_MAX) {
		c->lost++;
		return;
	}
	if (c->nrecs == c->recs_cap) {
		cap = c->recs_cap ? c->recs_cap * 2 : 64;
		if ((nr = realloc(c->recs, cap * sizeof *nr)) == NULL) {
			c->lost++;
			return;
		}
		c->recs = nr;
		c->recs_cap = cap;
	}
	c->recs[c->nrecs++] = *rec;
	if (proto_watch_events_size(c->nrecs) >= SRV_WATCH_BATCH)
		srv_flush_watch(c);
}

/* Queues one watch frame (copied) for the next flush: a drain's events
 * go out in a few writes of up to SRV_WATCH_BATCH bytes, not one write
 * an event. Counted as lost when the watcher is behind, as before. */
static void srv_queue_watch(struct srv_conn *c, const uint8_t *frame,
    size_t len)
{
	if (c->closing)
		return;
	srv_close_recs(c);
	if (c->out_bytes + c->pend_len + len > SRV_WATCH_QUEUE_MAX) {
		c->lost++;
		return;
	}
	if (srv_pend_reserve(c, len) < 0) {
		c->lost++;
		return;
	}
	memcpy(c->pend + c->pend_len, frame, len);
	c->pend_len += len;
	if (c->pend_len >= SRV_WATCH_BATCH)
		srv_flush_watch(c);
}

/* Every watcher's queued frames: at the end of each area's drain, and
 * before any answer, so that a `wait` answered on one connection never
 * overtakes the events and ends streamed on another. */
static void srv_flush_watchers(struct srv *s)
{
	struct srv_conn *c;

	if (s->nwatchers == 0)
		return;
	LIST_FOREACH(c, &s->conns, link)
		if (c->watching)
			srv_flush_watch(c);
}

/* Encodes o into a CONTROL frame; *len set; free() it. NULL if too big. */
static uint8_t *srv_encode(json_t *o, size_t *len)
{
	char *js = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));
	uint8_t *buf;
	ssize_t n;
	size_t jl;

	if (js == NULL)
		return NULL;
	jl = strlen(js);
	if ((buf = malloc(jl + PROTO_HDR_SIZE)) == NULL) {
		free(js);
		return NULL;
	}
	n = proto_encode_control(buf, jl + PROTO_HDR_SIZE, js, jl);
	free(js);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	*len = (size_t)n;
	return buf;
}

static void srv_send_json(struct srv_conn *c, json_t *o, int droppable)
{
	uint8_t *buf;
	size_t len;
	json_t *err;

	if ((buf = srv_encode(o, &len)) == NULL) {
		if (droppable) {
			c->lost++;
			return;
		}
		err = djson_error("busy",
		    "the answer does not fit in one frame");
		if (err == NULL || (buf = srv_encode(err, &len)) == NULL) {
			json_decref(err);
			srv_conn_close(c);
			return;
		}
		json_decref(err);
	}
	srv_send_frame(c, buf, len, droppable);
	free(buf);
}

/* o (may be NULL for a collection no JSON watcher wants) to the tap and
 * the watchers of run; rec, when given, to the binary ones instead. */
static void srv_broadcast_to(struct srv *s, json_t *o,
    const struct proto_watch_event *rec, const char *run)
{
	struct srv_conn *c;
	uint8_t *buf = NULL;
	size_t len = 0;

	if (o != NULL && s->tap != NULL && s->tap_clients != NULL &&
	    *s->tap_clients > 0)
		s->tap(s->tap_arg, o, run);
	if (s->nwatchers == 0)
		return;
	LIST_FOREACH(c, &s->conns, link) {
		if (!c->watching || c->closing)
			continue;
		if (c->watch_run != NULL && strcmp(c->watch_run, run) != 0)
			continue;
		if (rec != NULL && c->watch_binary) {
			srv_queue_rec(c, rec);
			continue;
		}
		if (o == NULL || (buf == NULL &&
		    (buf = srv_encode(o, &len)) == NULL)) {
			c->lost++;
			continue;
		}
		srv_queue_watch(c, buf, len);
	}
	free(buf);
}

void srv_broadcast(void *arg, json_t *o, const char *run)
{
	srv_broadcast_to(arg, o, NULL, run);
}

void srv_broadcast_gc(void *arg, json_t *o,
    const struct proto_watch_event *rec, const char *run)
{
	srv_broadcast_to(arg, o, rec, run);
}

int srv_watched_json(void *arg)
{
	const struct srv *s = arg;

	return s->nwatchers > s->nwatchers_binary ||
	    (s->tap_clients != NULL && *s->tap_clients > 0);
}

int srv_watched(void *arg)
{
	const struct srv *s = arg;

	return s->nwatchers > 0 ||
	    (s->tap_clients != NULL && *s->tap_clients > 0);
}

static void srv_unwatch(struct srv_conn *c)
{
	if (c->watching) {
		c->s->nwatchers--;
		if (c->watch_binary)
			c->s->nwatchers_binary--;
	}
	c->watching = 0;
	c->watch_binary = 0;
}

/* ---- waits, for events.c ------------------------------------------------ */

void srv_flush(void *arg)
{
	srv_flush_watchers(arg);
}

void srv_process_ended(void *arg)
{
	srv_check_waits(arg);
}

/* ---- control: control.c decides, this side does the connection's part -- */

/* Sends o (steals); NULL (out of memory) is said as "busy". */
static void srv_send_answer(struct srv_conn *c, json_t *o)
{
	srv_flush_watchers(c->s);
	if (o == NULL)
		o = djson_error("busy", "out of memory");
	if (o != NULL)
		srv_send_json(c, o, 0);
	json_decref(o);
}

static void srv_check_waits(struct srv *s)
{
	struct srv_conn *c;
	struct agg_run *r;
	uint64_t now = clock_mono_ms();
	int done, timed_out, rescanned = 0;

	LIST_FOREACH(c, &s->conns, link) {
		if (!c->waiting || c->closing)
			continue;
		r = agg_run_find(s->agg, c->wait_run);
		/* A child forked just before its parent ended may not have
		 * been reported by the watch yet: look before saying "over". */
		if (r != NULL && r->nproc >= c->wait_min && r->nlive == 0 &&
		    s->agents != NULL && !rescanned) {
			rescanned = 1;
			agents_rescan(s->agents);
			r = agg_run_find(s->agg, c->wait_run);
		}
		done = r != NULL && r->nproc >= c->wait_min && r->nlive == 0;
		timed_out = !done && now >= c->wait_deadline_ms;
		if (!done && !timed_out)
			continue;
		c->waiting = 0;
		srv_send_answer(c, djson_wait(s->agg, c->wait_run, timed_out));
		free(c->wait_run);
		c->wait_run = NULL;
		c->resume = 1;
	}
	/* The requests that came behind each answered wait, in order. */
	LIST_FOREACH(c, &s->conns, link)
		if (c->resume) {
			c->resume = 0;
			srv_frames(c);
		}
}

static void srv_on_request(struct srv_conn *c, const char *js, size_t len)
{
	struct srv *s = c->s;
	struct control_ctx ctx = { .agg = s->agg, .start_real = s->start_real,
	    .daemon_pid = getpid(), .daemon_uid = s->uid,
	    .peer_uid = c->peer_uid, .waiting = c->waiting };
	struct control_answer ans;

	clock_now(s->agg);
	control_request(&ctx, js, len, &ans);
	switch (ans.kind) {
	case CONTROL_WAIT:
		c->wait_run = ans.run;
		ans.run = NULL;
		c->waiting = 1;
		c->wait_min = ans.wait_min;
		c->wait_deadline_ms = clock_mono_ms() + ans.wait_ms;
		srv_check_waits(s);
		break;
	case CONTROL_WATCH:
		free(c->watch_run);
		c->watch_run = ans.run;
		ans.run = NULL;
		srv_send_answer(c, ans.obj);
		ans.obj = NULL;
		/* After the answer: a stream object never comes first. */
		srv_unwatch(c);
		if (!c->closing) {
			s->nwatchers++;
			c->watching = 1;
			c->watch_binary = ans.watch_events ==
			    CONTROL_EVENTS_BINARY;
			if (c->watch_binary)
				s->nwatchers_binary++;
		}
		break;
	case CONTROL_STOP:
		srv_send_answer(c, ans.obj);
		ans.obj = NULL;
		log_info(s->log, "stop requested by pid %d", (int)c->peer_pid);
		if (s->on_stop != NULL)
			s->on_stop(s);
		break;
	case CONTROL_ANSWER:
	case CONTROL_ERROR:
	default:
		srv_send_answer(c, ans.obj);
		ans.obj = NULL;
		break;
	}
	control_answer_fini(&ans);
}

/* ---- connections ------------------------------------------------------- */

static void srv_on_close(uv_handle_t *h)
{
	struct srv_conn *c = h->data;
	struct srv *s = c->s;

	LIST_REMOVE(c, link);
	s->nconns--;
	proto_reader_fini(&c->rd);
	free(c->watch_run);
	free(c->wait_run);
	free(c->pend);
	free(c->recs);
	free(c->cork);
	free(c);
}

static void srv_conn_close(struct srv_conn *c)
{
	if (c->closing)
		return;
	srv_unwatch(c);
	c->closing = 1;
	c->waiting = 0;
	uv_close((uv_handle_t *)&c->pipe, srv_on_close);
}

static const char *srv_kind_name(enum srv_kind k)
{
	return k == CONN_NEW ? "new" : "control";
}

/* One frame of c. 0, or a negative errno: close c. */
static int srv_on_frame(struct srv_conn *c, const struct proto_frame *f)
{
	const char *js;
	size_t len;
	int err;

	switch (c->kind) {
	case CONN_NEW:
		/* Agents report through shared memory (agents.c): a HELLO
		 * here is an agent of gcmon 0.1, or a stranger. */
		if (f->hdr.type != FRAME_CONTROL)
			return -EPROTO;
		c->kind = CONN_CONTROL;
		/* fall through */
	case CONN_CONTROL:
		if (f->hdr.type != FRAME_CONTROL)
			return -EPROTO;
		if ((err = proto_decode_control(f, &js, &len)) < 0)
			return err;
		srv_on_request(c, js, len);
		return 0;
	default:
		return -EPROTO;
	}
}

static void srv_on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct srv_conn *c = h->data;

	(void)suggested;
	*buf = uv_buf_init(c->s->rbuf, sizeof c->s->rbuf);
}

static void srv_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

/* c sent what the protocol does not allow (err): logged once, closed. */
static void srv_conn_bad(struct srv_conn *c, int err)
{
	struct srv *s = c->s;

	s->nbad++;
	log_warn(s->log, "pid %d (uid %u, %s connection): %s, closing it",
	    (int)c->peer_pid, (unsigned)c->peer_uid, srv_kind_name(c->kind),
	    proto_strerror(err));
	if (s->log->fd >= 0) {
		json_t *o = djson_protocol_error(c->peer_pid,
		    proto_strerror(err));

		if (o != NULL)
			log_json(s->log, o);
		json_decref(o);
	}
	srv_conn_close(c);
}

/*
 * The whole frames c's peer sent, handled in order until one is a wait
 * not yet answered: the requests behind it are answered after it (so a
 * client may send a wait and what it asks next at once, and read the
 * answers in order), and from SRV_HELD_MAX bytes held behind it on,
 * reading pauses. srv_check_waits resumes; a call from within (a wait
 * answered at once) leaves it to the loop already running.
 */
static void srv_frames(struct srv_conn *c)
{
	struct proto_frame f;
	int err = 0;

	if (c->in_frames)
		return;
	c->in_frames = 1;
	c->corked = 1;
	while (!c->waiting && !c->closing &&
	    (err = proto_reader_next(&c->rd, &f)) == 1)
		if ((err = srv_on_frame(c, &f)) < 0)
			break;
	c->in_frames = 0;
	srv_uncork(c);
	if (c->closing)
		return;
	if (err < 0) {
		srv_conn_bad(c, err);
		return;
	}
	if (c->waiting && !c->read_paused &&
	    c->rd.len - c->rd.off >= SRV_HELD_MAX) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		c->read_paused = 1;
	} else if (!c->waiting && c->read_paused) {
		c->read_paused = 0;
		if (uv_read_start((uv_stream_t *)&c->pipe, srv_on_alloc,
		    srv_on_read) < 0)
			srv_conn_close(c);
	}
}

/* n bytes c's peer sent, then what they complete. */
static void srv_take(struct srv_conn *c, const char *base, size_t n)
{
	int err;

	if (c->closing || c->close_after_write)
		return;
	clock_now(c->s->agg);
	if ((err = proto_reader_feed(&c->rd, base, n)) < 0)
		srv_conn_bad(c, err);
	else
		srv_frames(c);
}

static void srv_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct srv_conn *c = st->data;

	if (n == 0)
		return;
	if (n < 0) {
		if (n != UV_EOF)
			log_debug(c->s->log, "pid %d: read: %s",
			    (int)c->peer_pid, uv_strerror((int)n));
		srv_conn_close(c);
		return;
	}
	srv_take(c, buf->base, (size_t)n);
}

/* Tells a peer we will not serve why (a control client prints it), then
 * closes it once that is written; nothing it sends is read. */
static void srv_refuse(struct srv_conn *c, const char *code, const char *msg)
{
	c->kind = CONN_CONTROL;
	srv_send_answer(c, djson_error(code, msg));
	srv_uncork(c);		/* written now, nothing after it */
	c->close_after_write = 1;
	if (c->out_bytes == 0)
		srv_conn_close(c);
}

/* A connection of s, its pipe not yet open; NULL when out of memory. */
static struct srv_conn *srv_conn_new(struct srv *s)
{
	struct srv_conn *c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;
	c->s = s;
	c->accepted_ms = clock_mono_ms();
	c->peer_pid = -1;
	c->peer_uid = (uid_t)-1;
	proto_reader_init(&c->rd, PROTO_MAX_FRAME);
	if (uv_pipe_init(s->loop, &c->pipe, 0) < 0) {
		free(c);
		return NULL;
	}
	c->pipe.data = c;
	LIST_INSERT_HEAD(&s->conns, c, link);
	s->nconns++;
	return c;
}

/* Whom c's open pipe connects to, and whether we serve them: 0, or -1
 * when c is refused (told why, closed once that is written). */
static int srv_conn_admit(struct srv_conn *c)
{
	struct srv *s = c->s;
	struct ucred cred;
	socklen_t clen = sizeof cred;
	uv_os_fd_t fd = -1;
	char msg[160];

	cred.gid = (gid_t)-1;
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0) {
		c->peer_pid = cred.pid;
		c->peer_uid = cred.uid;
	}
	if (s->nconns > s->cfg.max_clients) {
		if (s->nrefused++ % 1000 == 0)
			log_warn(s->log, "%u clients already: refusing pid %d "
			    "(%u refused so far)", s->cfg.max_clients,
			    (int)c->peer_pid, s->nrefused);
		snprintf(msg, sizeof msg, "gcmond serves %u clients already; "
		    "try again later", s->cfg.max_clients);
		srv_refuse(c, "busy", msg);
		return -1;
	}
	if (c->peer_uid == (uid_t)-1 ||
	    !allow_peer(&s->cfg.allow, fd, c->peer_uid, cred.gid)) {
		(void)log_refused(s->log, (double)clock_mono_ms() / 1000,
		    (unsigned)c->peer_uid, (int)c->peer_pid);
		snprintf(msg, sizeof msg, "uid %u may not use this gcmond "
		    "(gcmond --allow-uid %u, or --allow-group with one of "
		    "its groups)", (unsigned)c->peer_uid,
		    (unsigned)c->peer_uid);
		srv_refuse(c, "forbidden", msg);
		return -1;
	}
	return 0;
}

static void srv_on_connection(uv_stream_t *server, int status)
{
	struct srv *s = server->data;
	struct srv_conn *c;

	if (status < 0 || s->stopping || (c = srv_conn_new(s)) == NULL)
		return;
	if (uv_accept(server, (uv_stream_t *)&c->pipe) < 0) {
		srv_conn_close(c);
		return;
	}
	if (srv_conn_admit(c) == 0 && uv_read_start((uv_stream_t *)&c->pipe,
	    srv_on_alloc, srv_on_read) < 0)
		srv_conn_close(c);
}

int srv_adopt(struct srv *s, int fd)
{
	struct srv_conn *c;
	ssize_t n;
	int err;

	if ((c = srv_conn_new(s)) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	if ((err = uv_pipe_open(&c->pipe, fd)) < 0) {
		close(fd);
		srv_conn_close(c);
		return err;
	}
	if (srv_conn_admit(c) < 0)
		return 0;
	/* What the peer wrote before we started, at once: a watch asked
	 * that way is one before any agent is read. */
	while ((n = recv(fd, s->rbuf, sizeof s->rbuf, MSG_DONTWAIT)) > 0 &&
	    !c->closing)
		srv_take(c, s->rbuf, (size_t)n);
	if (c->closing)
		return 0;
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
		err = n == 0 ? 0 : -errno;
		srv_conn_close(c);	/* gone already: nothing to serve */
		return err;
	}
	if (!c->read_paused && (err = uv_read_start((uv_stream_t *)&c->pipe,
	    srv_on_alloc, srv_on_read)) < 0)
		srv_conn_close(c);
	return err;
}

/* ---- the socket -------------------------------------------------------- */

int srv_start(struct srv *s, uv_loop_t *loop, struct agg *agg,
    struct log *log, const char **why)
{
	struct stat st;
	int fd, err;

	*why = NULL;
	s->loop = loop;
	s->agg = agg;
	s->log = log;
	LIST_INIT(&s->conns);
	s->uid = geteuid();
	s->cfg.allow.self = s->uid;
	if (s->cfg.max_clients == 0)
		s->cfg.max_clients = SRV_MAX_CLIENTS;
	clock_now(s->agg);
	s->start_real = agg->now_real;
	if ((fd = sock_bind(s->cfg.socket_path, s->uid, s->cfg.have_gid ?
	    &s->cfg.socket_gid : NULL, SRV_BACKLOG, &st, why)) < 0)
		return fd;
	s->sock_dev = st.st_dev;
	s->sock_ino = st.st_ino;
	if ((err = uv_pipe_init(loop, &s->listener, 0)) < 0 ||
	    (err = uv_pipe_open(&s->listener, fd)) < 0)
		goto out_unlink;
	s->listener.data = s;
	s->listening = 1;
	if ((err = uv_listen((uv_stream_t *)&s->listener, SRV_BACKLOG,
	    srv_on_connection)) < 0)
		return err;
	return 0;
out_unlink:
	unlink(s->cfg.socket_path);
	close(fd);
	return err;
}

static void srv_on_shutdown(uv_shutdown_t *req, int status)
{
	struct srv_conn *c = req->data;

	(void)status;
	free(req);
	srv_conn_close(c);
}

static void srv_on_listener_close(uv_handle_t *h)
{
	(void)h;
}

void srv_shutdown(struct srv *s)
{
	struct srv_conn *c, *next;
	uv_shutdown_t *req;
	struct stat st;

	if (s->stopping)
		return;
	s->stopping = 1;
	clock_now(s->agg);
	if (s->listening) {
		s->listening = 0;
		uv_close((uv_handle_t *)&s->listener, srv_on_listener_close);
		/* Only the socket we made: another daemon may own the path. */
		if (stat(s->cfg.socket_path, &st) == 0 &&
		    st.st_dev == s->sock_dev && st.st_ino == s->sock_ino)
			unlink(s->cfg.socket_path);
	}
	for (c = LIST_FIRST(&s->conns); c != NULL; c = next) {
		next = LIST_NEXT(c, link);
		if (c->closing)
			continue;
		if (c->waiting)
			srv_send_answer(c, djson_wait(s->agg, c->wait_run, 0));
		c->waiting = 0;
		srv_unwatch(c);
		uv_read_stop((uv_stream_t *)&c->pipe);
		srv_uncork(c);	/* the stop answer, if it is c's */
		/* Writes what is queued (the stop answer), then closes. */
		if ((req = malloc(sizeof *req)) != NULL) {
			req->data = c;
			if (uv_shutdown(req, (uv_stream_t *)&c->pipe,
			    srv_on_shutdown) == 0)
				continue;
			free(req);
		}
		srv_conn_close(c);
	}
}

/* A peer that has not said what it is (no whole first frame) holds a
 * client slot: without a limit, idle connections alone could fill every
 * slot and lock the agents out. */
static void srv_close_idle(struct srv *s)
{
	struct srv_conn *c;
	uint64_t now = clock_mono_ms();

	LIST_FOREACH(c, &s->conns, link) {
		if (c->kind != CONN_NEW || c->closing || c->close_after_write ||
		    now - c->accepted_ms < SRV_NEW_IDLE_MS)
			continue;
		log_debug(s->log, "pid %d: no first frame in %u ms, closing",
		    (int)c->peer_pid, (unsigned)SRV_NEW_IDLE_MS);
		srv_conn_close(c);
	}
}

void srv_tick(struct srv *s)
{
	unsigned n;

	clock_now(s->agg);
	s->ticks++;
	srv_flush_watchers(s);		/* nothing is queued longer than a tick */
	srv_check_waits(s);
	srv_close_idle(s);
	if (s->ticks % (1000 / SRV_TICK_MS) == 0 &&
	    (n = agg_expire(s->agg)) > 0)
		log_info(s->log, "%u run(s) expired", n);
}
