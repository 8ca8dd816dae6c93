/*
 * agents.h: how gcmond finds, reads and retires the shared areas of the
 * monitored processes (common/shm.h): the agent directory (made and
 * checked here, watched with inotify), one mapping and one pidfd per
 * process, a drain timer, /proc/<pid> samples (RSS, peak RSS, CPU). What
 * is read goes to agg.c and, through the sink, to events.c (log, alerts,
 * watch streams, waits). Called by gcmond.c. Never prints except through
 * log.c, never exits, and never believes the area: see shm.h, "Trust".
 */
#ifndef GCMON_AGENTS_H
#define GCMON_AGENTS_H

#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <uv.h>

#include "agents_requests.h"
#include "agents_stacks.h"
#include "agg.h"
#include "log.h"
#include "place.h"
#include "shm.h"

#define AGENTS_MAX		65536	/* areas mapped at once */
/* The drain period adapts to the fullest ring: AGENTS_DRAIN_MIN_MS as soon
 * as a drain finds a ring a quarter full, doubling up to AGENTS_DRAIN_MAX_MS
 * while every ring stays under a sixteenth full; no timer at all while no
 * area is mapped. A 4096-slot ring then holds a sudden burst of 160,000
 * collections/s from idle, and a quiet host costs 40 wakeups a second. */
#define AGENTS_DRAIN_MS		10u	/* the period a first area starts at */
#define AGENTS_DRAIN_MIN_MS	5u
#define AGENTS_DRAIN_MAX_MS	25u
#define AGENTS_BATCH		512u	/* records copied out at a time */
#define AGENTS_PROC_POLL_S	0.1	/* without pidfds: /proc this often */

struct agent_map;

/* What happens with what was read (server.c); each may be NULL. */
struct agents_sink {
	void (*started)(void *data, struct agg_proc *p);
	void (*event)(void *data, struct agg_proc *p,
	    const struct proto_event *e, int alert);
	void (*ended)(void *data, struct agg_proc *p);
	/* After each drain of p's area (its names read too). */
	void (*drained)(void *data, struct agg_proc *p);
	void *data;
	/* Each request read (requests.h), with what the join made of it. */
	agents_request_fn *request;
};

struct allow;

struct agents_config {
	const char *dir;		/* the agent directory: <socket>.d */
	const struct allow *allow;	/* whom it serves (allow.h) */
	int have_gid;			/* --socket-group: 03770 and the group */
	gid_t gid;
	unsigned drain_ms;		/* 0: adapt (AGENTS_DRAIN_*) */
	double sample_s;		/* /proc sample period of each process */
};

struct agents_stats {
	uint64_t attached;		/* areas ever attached */
	uint64_t refused;		/* files refused (owner, pid, layout) */
	uint64_t refused_place;		/* ... of them, a namespace claim */
	unsigned unseen;		/* live areas of PLACE_UNSEEN */
	uint64_t broken;		/* areas that went bad while read */
	uint64_t events;		/* records drained */
	unsigned live;			/* areas mapped now */
};

struct agents {
	uv_loop_t *loop;
	struct agg *agg;
	struct log *log;
	struct agents_config cfg;
	struct agents_sink sink;
	uid_t uid;			/* gcmond's */
	struct place_self place;	/* gcmond's PID namespace */
	int dirfd;
	uv_fs_event_t watch;
	uv_timer_t drain;
	LIST_HEAD(agent_maps, agent_map) maps;
	unsigned period_ms;		/* the drain timer's, 0: stopped */
	double next_proc_poll;		/* Unix s */
	struct agents_stats st;
	int started, stopping;
};

/*
 * Makes or checks the directory (a real directory, not a link, owned by
 * gcmond; 0700, or 03770 with the group), attaches every area already
 * there (a restarted gcmond), then watches it. 0 or a negative errno;
 * -EPERM with *why set when the directory is unsafe.
 */
int agents_start(struct agents *a, uv_loop_t *loop, struct agg *agg,
    struct log *log, const struct agents_config *cfg,
    const struct agents_sink *sink, const char **why);
/* Attaches files the watch has not reported yet (before answering that a
 * run has ended, so a just-forked child is not missed). */
void agents_rescan(struct agents *a);
/* Drains every area one last time and closes every handle; the files of
 * live processes stay for the next gcmond. */
void agents_stop(struct agents *a);

#endif /* GCMON_AGENTS_H */
