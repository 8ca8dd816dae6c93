/*
 * server.h: gcmond's socket and connections: the listening Unix socket
 * (its directory and permission checks), the control clients on it,
 * peer credential checks, output queues, pending waits and the watch
 * stream; and the sink of agents.c (what the shared areas said, to the
 * log, the watchers and the waits). Control requests go to control.c,
 * whose answers it sends. Called by gcmond.c; feeds agg.c, writes
 * through log.c. Never prints except through log.c, never builds JSON
 * (json.c does), never exits.
 */
#ifndef GCMON_SERVER_H
#define GCMON_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>
#include <uv.h>

#include "agg.h"
#include "alert_hold.h"
#include "alerts.h"
#include "allow.h"
#include "log.h"

#define SRV_MAX_CLIENTS		4096
#define SRV_BACKLOG		512	/* listen(2) */
#define SRV_WATCH_QUEUE_MAX	(1u << 20)	/* bytes queued to a watcher */
#define SRV_WATCH_BATCH		(64u << 10)	/* watch bytes a write */
#define SRV_ANSWER_QUEUE_MAX	(64u << 20)	/* bytes queued to any client */
#define SRV_TICK_MS		100
#define SRV_SUMMARY_DEFAULT_S	60		/* periodic summary in the log */
#define SRV_NEW_IDLE_MS		10000u	/* to send a whole first frame */

struct srv_conn;
struct agents;

/* What the JSON lines log carries besides lifecycle and summaries. */
enum srv_log_events {
	SRV_LOG_ALERTS = 0,		/* alerts (alerts.c) */
	SRV_LOG_ALL,			/* alerts and every collection */
	SRV_LOG_NONE			/* neither */
};

struct srv_config {
	const char *socket_path;
	struct allow allow;		/* whom it serves (self set at start) */
	int have_gid;			/* --socket-group given */
	gid_t socket_gid;
	unsigned max_clients;
	enum srv_log_events log_events;
	double summary_interval_s;	/* 0: only the final summary */
	struct alerts_config alerts;
};

struct srv {
	uv_loop_t *loop;
	struct srv_config cfg;
	struct agg *agg;
	struct log *log;
	struct alerts *alerts;		/* NULL after srv_shutdown */
	struct agents *agents;		/* rescanned before a wait ends */
	uid_t uid;			/* the daemon's */
	uv_pipe_t listener;
	int listening;
	dev_t sock_dev;			/* what we bound, to unlink only it */
	ino_t sock_ino;
	uint64_t ticks;
	double last_summary;		/* agg->now_real of the last one */
	struct srv_conn *conns;
	unsigned nconns, nrefused, nwatchers;
	uint64_t nbad;			/* peers closed for bad data */
	double start_real;
	int stopping;
	/* The event alerts.c is told about, for its pause line's stack. */
	const struct agg_proc *cur_p;
	const struct proto_event *cur_e;
	struct alert_hold held;		/* pause lines awaiting names */
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
 * errno: -ENOMEM, -EINVAL (cfg.alerts.window_s not > 0), -EADDRINUSE (a
 * daemon answers there), -EPERM (unsafe
 * directory: *why says how), -EEXIST (not a socket), or bind's. */
int srv_start(struct srv *s, uv_loop_t *loop, struct agg *agg,
    struct log *log, const char **why);
/* Stops accepting, removes the socket, writes what is queued and closes
 * every connection; the loop then ends. */
void srv_shutdown(struct srv *s);
/* The summary object (host + runs) for the log. final: at shutdown. */
void srv_log_summary(struct srv *s, int final);
/* Every SRV_TICK_MS (gcmond.c's timer): answers due waits, expires
 * runs, ticks the alerts, writes the summary every summary_interval_s. */
void srv_tick(struct srv *s);
/* For /metrics: connections open, peers closed for bad data, peers
 * refused at the client cap. */
void srv_health(const struct srv *s, uint64_t *nconns, uint64_t *nbad,
    uint64_t *nrefused);
/* Sets agg->now_real from the clock. */
void srv_now(struct srv *s);
/* The sink of agents.c (data: the struct srv): a process appeared, one
 * of its collections, its end, a drain of its area. */
void srv_agent_started(void *data, struct agg_proc *p);
void srv_agent_event(void *data, struct agg_proc *p,
    const struct proto_event *e, int alert);
void srv_agent_ended(void *data, struct agg_proc *p);
/* After each drain of p's area: pause alert lines held for its names. */
void srv_agent_drained(void *data, struct agg_proc *p);
/* A request read: a log line with --log-events all. */
struct shm_request;
struct req_result;
void srv_agent_request(void *data, struct agg_proc *p,
    const struct shm_request *r, const struct req_result *res);

#endif /* GCMON_SERVER_H */
