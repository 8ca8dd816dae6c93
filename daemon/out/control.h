/*
 * control.h: the control protocol of doc/control.md, as a table of
 * commands: one JSON request in, one answer out. Called by server.c for
 * every CONTROL frame and by tests/unit/check_control.c with no socket.
 * Never sends, prints or keeps state: what a command does to its
 * connection (wait, watch, stop) it asks server.c to do through the
 * answer's kind.
 */
#ifndef GCMON_CONTROL_H
#define GCMON_CONTROL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "agg.h"

#define CONTROL_WAIT_DEFAULT_MS	10000

/* What a handler sees of the daemon and of the asking peer. */
struct control_ctx {
	struct agg *agg;		/* now_real set by the caller */
	double start_real;		/* when the daemon started */
	pid_t daemon_pid;
	uid_t daemon_uid, peer_uid;
	int waiting;			/* a wait is pending on this peer */
};

enum control_kind {
	CONTROL_ANSWER = 0,	/* send obj */
	CONTROL_ERROR,		/* send obj ({"ok": false, ...}) */
	CONTROL_WAIT,		/* deferred: answer once run has ended (or
				 * wait_ms passed) with djson_wait() */
	CONTROL_WATCH,		/* send obj, then stream run (NULL: all) */
	CONTROL_STOP		/* send obj, then stop the daemon */
};

/* How a watcher gets the collections: EVENT objects, or WATCH_EVENTS
 * frames (protocol.h); the order of ctl_events_words in control.c. */
enum control_watch_events {
	CONTROL_EVENTS_JSON = 0,
	CONTROL_EVENTS_BINARY
};

struct control_answer {
	enum control_kind kind;
	json_t *obj;		/* new reference; NULL only for CONTROL_WAIT
				 * (or out of memory: answer "busy") */
	char *run;		/* WAIT, WATCH: malloc'd, the caller takes it */
	unsigned wait_min;	/* WAIT: processes the run must have had */
	uint64_t wait_ms;	/* WAIT: how long at most */
	enum control_watch_events watch_events;	/* WATCH */
};

/* Decodes, validates and executes one request (js, len: untrusted).
 * Always fills *ans; release it with control_answer_fini(). */
void control_request(const struct control_ctx *ctx, const char *js,
    size_t len, struct control_answer *ans);
/* Frees what *ans still holds (obj and run the caller did not take). */
void control_answer_fini(struct control_answer *ans);

#endif /* GCMON_CONTROL_H */
