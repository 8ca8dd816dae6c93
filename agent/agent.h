/*
 * agent.h: the agent's process-wide state, shared by the Python glue
 * (_gcmon.c), the GC callback (callback.c) and the shared area's life
 * cycle (area.c, which defines agent_state). A process has one collector,
 * so it has one agent: the one exception to "no hidden globals" (the
 * daemon passes its state). Nothing here starts a thread or takes a lock.
 */
#ifndef GCMON_AGENT_H
#define GCMON_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec.h"
#include "shm.h"

/* Owned strings of the identity; hello's proto_str point into them. */
struct agent_identity {
	struct proto_hello hello;
	char *run_id;
	char *py_version;
	char *executable;
	char **argv;
	char *service;			/* NULL: none given */
	char *hostname, *cgroup, *pod, *pod_namespace;	/* place.c */
};

struct agent {
	/* The callback records only while this is non-NULL. */
	struct shm_header *area;
	size_t area_size;
	int fd;				/* the area's file: the exit data's way */
	uint64_t fd_ino, fd_dev;	/* which file fd was (area_fd_ours) */
	uint32_t ring_cap;
	char *dir;			/* the agent directory */
	char path[4096];		/* this process's file */
	struct agent_identity id;
	uint8_t *hello_buf;		/* SHM_HELLO_CAP bytes, kept for forks */
	/* The counters at the last fork's prepare step: a forked child's
	 * baseline, read before the parent can count another collection. */
	struct proto_counters at_fork;
	int atfork_registered;
	int stopped;			/* stop() ran: the exit data is out */
	/* gcmon.stop() detached the agent (agent_area_detach): area is NULL
	 * and a later load() makes a new one, whose hello carries prior
	 * (PROTO_HELLO_PRIOR): the totals of the areas before it. */
	int detached;
	struct proto_baseline prior[PROTO_MAX_GEN];
	/* What the area's life means to the parts that write beside it
	 * (stacks.c, requests.c), set by _gcmon.c so that area.c calls no
	 * part that calls it back: on_segment, a new area is about to be
	 * made for a new segment of the process's life (a fork child, a
	 * load() after a detach: names and routes are published again;
	 * it runs in the fork child handler: no allocation); on_area_made,
	 * an area is initialised and gcmond cannot see it yet; on_exit, the
	 * exit data is being written. Each may be NULL. */
	void (*on_segment)(void);
	void (*on_area_made)(struct shm_header *h);
	void (*on_exit)(void);
	/* Which collections get their stack (stacks.c sets, callback.c
	 * reads): stacks_on once the code table exists. */
	int stacks_on;
	uint64_t stack_min_ns;		/* until gcmond writes its own */
	unsigned stack_sample_n;	/* 1 in n others; 0: none */
	unsigned stack_sample_left;
};

extern struct agent agent_state;

uint64_t agent_clock_ns(int clock_id);

/*
 * Creates this process's file in dir, maps it and publishes the identity
 * in agent_state.id.hello; agent_state.area is set on success. After a
 * detach, the hello carries the earlier areas' totals (PROTO_HELLO_PRIOR).
 * 0 or a negative errno. Never called from the callback.
 */
int agent_area_open(const char *dir);
/* pthread_atfork handlers: the child gets a fresh area (its own pid,
 * counters from zero, the inherited counters in its baseline) before any
 * Python code runs in it; without one it is not monitored. */
void agent_area_atfork_prepare(void);
void agent_area_atfork_child(void);
/* The exit data: frames (OBJECTS/GARBAGE, may be NULL) copied into the
 * exit area if they fit, CPU, peak RSS and the objects gc.freeze() moved
 * to the permanent generation, then state EXITED. 0, or -ENOSPC when the
 * frames did not fit (the rest is still written). */
int agent_area_exit(const uint8_t *frames, size_t len, uint64_t freeze_count);
/* gcmon.stop(): the exit data as agent_area_exit() writes it, marked
 * SHM_EXIT_DETACHED, then the area is unmapped and its file closed (the
 * callback records nothing more) and its totals kept for the next area.
 * 0, -ENOSPC as agent_area_exit(), -ESRCH without a live area. With the
 * GIL, the callback out of gc.callbacks. */
int agent_area_detach(const uint8_t *frames, size_t len,
    uint64_t freeze_count);
/* os._exit(status) is ending this process: the code (status & 0xff, as
 * its parent will see it) and the exit data, unless the exit handler
 * already wrote them. 0, or -ESRCH without an area. */
int agent_area_os_exit(int status, uint64_t freeze_count);

/* Appends name records (shm.h) to the names region by pwrite and
 * publishes them. 0, -ENOSPC (region full or filesystem full) or -errno.
 * Never from the callback. */
int agent_area_add_names(const uint8_t *buf, size_t len);

/* stacks.c: the Python stack of the collecting thread (see shm.h,
 * "Stacks"). */
/* Allocates the code table and reads GCMON_STACK_SAMPLE and
 * GCMON_STACK_MIN_PAUSE_MS; 0 or -ENOMEM. From load(). */
int agent_stacks_init(void);
/* From the callback: walks and publishes the stack of the event that
 * started at start_ns; 1 if published (flag the event), 0 if not. No
 * exception left set; allocates only the frame objects CPython has not
 * materialised yet (3.11+); schedules the names' resolution. */
int agent_stacks_capture(struct shm_header *area, uint64_t start_ns);
/* Resolves and publishes the names not yet published (stop(), and the
 * pending call). */
void agent_stacks_publish_names(void);
/* In the fork child handler: every name is to be published again, in the
 * child's own area. No allocation, no call. */
void agent_stacks_atfork_child(void);

/* place.c: where the process runs (protocol.h, PROTO_HELLO_PLACE). */
/* Reads the hostname, the cgroup and the pod's names from the
 * environment into id (owned strings) and sets PROTO_HELLO_PLACE; 0 or
 * -ENOMEM. From load(). */
int agent_place_read(struct agent_identity *id);
void agent_place_free(struct agent_identity *id);
/* The PID namespace of the calling process into h. A system call only. */
void agent_place_pidns(struct proto_hello *h);
/* Takes the area's lock (shm.h) on fd, which this process then holds
 * until it ends or closes fd: 0 or -errno. A system call only. */
int agent_place_lock(int fd);
/* requests.c: the request ring (see shm.h, "Requests"); with the GIL. */
#define AGENT_REQ_OPEN	4096u	/* requests open at once, all threads */
/* A token (>= 0) for a request starting now (route_id until end names
 * another), or -1: no area, or AGENT_REQ_OPEN open (counted dropped). */
int64_t agent_requests_begin(unsigned route_id);
/* Records the request of token: 0, -ENOSPC (ring full, counted), -ESRCH
 * (ended already: by the exit handler), -EINVAL (not a token). */
int agent_requests_end(int64_t token, unsigned route_id, unsigned status,
    unsigned flags);
/* The id of a route name (at most SHM_ROUTE_NAME_MAX bytes kept), entered
 * and published on first sight; 0 ("other") when the table is full or
 * the name empty, -EINVAL for a NUL inside. */
int agent_requests_route(const char *name, size_t len);
/* area.c: a new area gets the routes interned so far (a fork child's);
 * the child forgets the parent's open requests; the exit handler records
 * the open ones (SHM_REQ_OPEN_AT_EXIT). No allocation, no Python. */
void agent_requests_area_made(struct shm_header *h);
void agent_requests_atfork_child(void);
void agent_requests_at_exit(void);
/* Requests open now. */
uint32_t agent_requests_open(void);

/* callback.c: the gc.callbacks entry, a new reference (NULL with a
 * Python exception set); interns the keys it looks up on first use. */
struct _object *agent_callback_new(struct _object *module);

/* boot.c: _gcmon.load(), agent(), exit_data(), gc_model_of(). */
struct _object *agent_boot_load(struct _object *self, struct _object *args,
    struct _object *kw);
struct _object *agent_boot_info(struct _object *self, struct _object *unused);
struct _object *agent_boot_exit_data(struct _object *self,
    struct _object *args, struct _object *kwds);
struct _object *agent_boot_model_of(struct _object *self, struct _object *args);

#endif /* GCMON_AGENT_H */
