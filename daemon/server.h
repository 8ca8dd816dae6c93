/*
 * server.h: gcmond's socket and connections: the listening Unix socket
 * (its directory and permission checks), the control clients on it,
 * peer credential checks, output queues, pending waits and the watch
 * stream (what events.c broadcasts). Control requests go to control.c,
 * whose answers it sends. Called by gcmond.c and events.c. Never prints
 * except through log.c, never builds JSON (json.c does), never exits.
 */
#ifndef GCMON_SERVER_H
#define GCMON_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <jansson.h>
#include <uv.h>

#include "agg.h"
#include "allow.h"
#include "codec.h"
#include "log.h"

#define SRV_MAX_CLIENTS		4096
#define SRV_BACKLOG		512	/* listen(2) */
#define SRV_WATCH_QUEUE_MAX	(1u << 20)	/* bytes queued to a watcher */
#define SRV_WATCH_BATCH		(64u << 10)	/* watch bytes a write */
#define SRV_ANSWER_QUEUE_MAX	(64u << 20)	/* bytes queued to any client */
#define SRV_TICK_MS		100
#define SRV_NEW_IDLE_MS		10000u	/* to send a whole first frame */
#define SRV_HELD_MAX		(64u << 10)	/* bytes behind a wait, then
						 * reading pauses */

struct srv_conn;
struct agents;

struct srv_config {
	const char *socket_path;
	struct allow allow;		/* whom it serves (self set at start) */
	int have_gid;			/* --socket-group given */
	gid_t socket_gid;
	unsigned max_clients;
};

struct srv {
	uv_loop_t *loop;
	struct srv_config cfg;
	struct agg *agg;
	struct log *log;
	struct agents *agents;		/* rescanned before a wait ends */
	uid_t uid;			/* the daemon's */
	uv_pipe_t listener;
	int listening;
	dev_t sock_dev;			/* what we bound, to unlink only it */
	ino_t sock_ino;
	uint64_t ticks;
	LIST_HEAD(srv_conns, srv_conn) conns;
	unsigned nconns, nrefused, nwatchers;
	unsigned nwatchers_binary;	/* of nwatchers: WATCH_EVENTS records */
	uint64_t nbad;			/* peers closed for bad data */
	double start_real;
	int stopping;
	/* Another consumer of the watch stream (http.c's /api/events):
	 * given every object the watchers get, while *tap_clients > 0. */
	void (*tap)(void *arg, json_t *o, const char *run);
	void *tap_arg;
	const unsigned *tap_clients;
	/* Called (once) when a control client asks to stop. */
	void (*on_stop)(struct srv *s);
	void *data;
	char rbuf[65536];		/* read buffer: the loop is one thread */
};

/* Binds and listens with sock_bind() (sock.h: the directory checks, a
 * live daemon never replaced), then serves on loop. 0 or a negative
 * errno: -EADDRINUSE (a daemon answers there), -EPERM (unsafe
 * directory: *why says how), -EEXIST (not a socket), or bind's. */
int srv_start(struct srv *s, uv_loop_t *loop, struct agg *agg,
    struct log *log, const char **why);
/* Serves fd, an inherited connected stream socket (gcmond --client-fd),
 * as a connection accepted now, its peer checked as any other: what the
 * peer wrote before gcmond started is handled at once, so a watch asked
 * that way sees every event when this runs before the agents are first
 * read. Takes fd. 0, or a negative errno (fd closed). */
int srv_adopt(struct srv *s, int fd);
/* Stops accepting, removes the socket, writes what is queued and closes
 * every connection; the loop then ends. */
void srv_shutdown(struct srv *s);
/* Every SRV_TICK_MS (gcmond.c's timer): answers due waits, expires
 * runs. */
void srv_tick(struct srv *s);
/* For /metrics: connections open, peers closed for bad data, peers
 * refused at the client cap. */
void srv_health(const struct srv *s, uint64_t *nconns, uint64_t *nbad,
    uint64_t *nrefused);
/* For events.c (arg: the struct srv): o (borrowed) to every watcher of
 * run and to the tap; whether anyone watches; a process ended (due waits
 * are answered). */
void srv_broadcast(void *arg, json_t *o, const char *run);
/* A collection: o (borrowed; NULL when srv_watched_json said no one
 * wants it) to the JSON watchers and the tap, rec to the binary ones
 * (`watch` with "events": "binary"), in the stream's order. */
void srv_broadcast_gc(void *arg, json_t *o,
    const struct proto_watch_event *rec, const char *run);
int srv_watched(void *arg);
/* Whether a watcher or the tap wants collections as JSON objects. */
int srv_watched_json(void *arg);
void srv_process_ended(void *arg);
/* For events.c: the watch frames queued by srv_broadcast, sent (a
 * drain's worth in a few writes rather than one write an event). */
void srv_flush(void *arg);

#endif /* GCMON_SERVER_H */
