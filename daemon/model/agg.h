/*
 * agg.h: gcmond's aggregates, per process, per run and per host, fed by
 * agents.c with what it reads of each process's shared area and read by
 * json.c, rules.c and control.c; the one home of every figure derived from them (totals over
 * generations, percentile sets, shares of wall time). No I/O, no clock:
 * the caller says what time it is (agg->now_real).
 *
 * Totals come from the agents' cumulative counters plus the HELLO
 * baseline, never from adding up events, so they stay exact when a full
 * ring drops event detail or an area is attached again. A forked child's
 * baseline is inherited from its parent and is left out of run and host
 * totals (its parent counted those collections).
 *
 * Memory is bounded: a process has a fixed-size state, its compact
 * histograms (one per generation, 256 bytes per octave of pauses seen:
 * hist.h) and a ring of its AGG_RECENT last events, a few KiB in all
 * (agg_proc_bytes; a live 3-generation process with pauses of 1 us to
 * 50 ms stays under 16 KiB); when it
 * ends (agg_bye) its histograms are folded into its run and freed. A run keeps
 * at most AGG_RUN_MAX_PROCS process records (the oldest ended ones are
 * folded into the run's "evicted" totals); a run whose processes have all
 * ended expires run_expiry_s later (folded into the host's totals).
 */
#ifndef GCMON_AGG_H
#define GCMON_AGG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "codec.h"
#include "hist.h"
#include "stacks.h"

struct req_proc;

#define AGG_RECENT		32	/* events kept per process */
#define AGG_RUN_MAX_PROCS	4096	/* process records kept per run */
#define AGG_MAX_TYPES		32	/* OBJECTS/GARBAGE entries kept */
#define AGG_MAX_ARGV		4096	/* argv bytes kept per process */
#define AGG_NPCTS		PROTO_NPCTS	/* the percentile set, agg_pcts */
#define AGG_MEM_READS		16	/* smaps reads kept per process */

/* The percentiles every answer gives (PROTO_PCTS: 50, 90, 99, 99.9). */
extern const double agg_pcts[AGG_NPCTS];

/* What a process is to its run (agg_proc_role). */
enum agg_role {
	AGG_ROLE_MASTER = 0,
	AGG_ROLE_WORKER,
	AGG_ROLE_CHILD,
	AGG_NROLES
};

enum agg_state {
	AGG_LIVE = 0,
	AGG_ENDED,		/* ended (agg_bye), read to the end */
	AGG_LOST		/* area given up while live: unreadable */
};

struct agg_types {
	uint64_t total;
	uint32_t n;
	struct {
		uint64_t count;
		char name[PROTO_MAX_ID + 1];
	} e[AGG_MAX_TYPES];		/* largest first */
};

/* What gcmond read of a process's /proc/<pid>/smaps_rollup, in bytes. */
struct agg_mem {
	uint64_t rss_bytes, pss_bytes;
	uint64_t shared_clean_bytes, shared_dirty_bytes;
	uint64_t private_clean_bytes, private_dirty_bytes;
	uint64_t anon_bytes;
};

/* A process's memory as read from outside (agg_mem_read). */
enum agg_mem_state {
	AGG_MEM_NONE = 0,		/* never read */
	AGG_MEM_READ,			/* mem is its last reading */
	AGG_MEM_REFUSED,		/* not readable: permission */
	AGG_MEM_UNSEEN			/* its PID namespace is not gcmond's to see */
};

struct agg_proc {
	TAILQ_ENTRY(agg_proc) link;	/* in its run, by arrival */
	struct agg_run *run;

	uint32_t pid, ppid;
	uint64_t start_mono_ns;		/* identity, with pid */
	uint64_t clock_real_ns, clock_mono_ns;
	uint32_t py_hexversion;
	uint8_t origin, gc_model;
	uint8_t spawned;		/* exec'd worker: agg_proc_role */
	uint8_t detached;		/* ended by gcmon.stop(): it lives on */
	uint16_t hello_flags;
	uint32_t reconnects;
	unsigned nconn;			/* areas attached for it */
	enum agg_state state;
	int clean_exit;			/* its exit handler ran (agg_exit_info) */
	int os_exit;			/* ... os._exit's, with exit_code */
	int exit_code;
	uint64_t freeze_count;		/* gc.get_freeze_count() at its exit */

	uint8_t ngen;
	struct proto_baseline base[PROTO_MAX_GEN];
	/* In base, what earlier records of this process (areas before a
	 * detach) counted: left out of run and host totals. nprior entries
	 * (PROTO_HELLO_PRIOR), else NULL: most processes have none. */
	struct proto_baseline *prior;
	uint8_t nprior;
	struct proto_gen_counters c[PROTO_MAX_GEN];	/* last cumulative */
	uint64_t dropped;
	uint64_t alerts;
	struct hist_compact *hist;	/* ngen, NULL once folded */
	double pct_ms[PROTO_MAX_GEN][AGG_NPCTS];	/* agg_pcts, kept at fold */
	double pct_all_ms[AGG_NPCTS];	/* the same over all generations */
	uint64_t nrecorded[PROTO_MAX_GEN];	/* events in hist (or folded) */
	/* 3.15+: the interpreter's own "duration" of the events that carried
	 * one (PROTO_EVENT_HAS_COLLECTOR_NS), summed, and how many did.
	 * Beside pause_ns (the agent's clock), never instead of it. */
	uint64_t collector_ns[PROTO_MAX_GEN], ncollector[PROTO_MAX_GEN];

	double start_real, end_real;	/* Unix seconds; end 0 while live */
	int have_sample;
	uint64_t rss_bytes, cpu_ns;
	uint64_t max_rss_bytes;		/* peak: VmHWM, or the largest sample */
	enum agg_mem_state mem_state;
	struct agg_mem mem;		/* last smaps_rollup read */
	uint64_t mem_gen2;		/* its gen-2 collections at that read */
	uint64_t mem_gc_start_ns;	/* first gen-2 since then (0: none) */
	struct {
		uint64_t mono_ns, private_bytes;
	} mem_reads[AGG_MEM_READS];	/* the last reads, a ring */
	unsigned nmem_reads;		/* total ever */
	uint64_t unshared_by_gc_bytes;	/* forked only: agg_mem_read */

	struct proto_event recent[AGG_RECENT];
	unsigned nrecent;		/* total ever, ring index = n % size */

	struct stacks_proc *stacks;	/* stacks.h; NULL until one came */
	struct req_proc *requests;	/* requests.h; NULL until a pause */
	char *py_version, *executable;
	char *argv;			/* argc strings, each NUL-terminated */
	char *service;			/* the agent's service name; NULL: none
					 * given (service_name derives one) */
	/* Where it runs (agg_place): its pid in its own PID namespace,
	 * whether gcmond can see it, and its container and pod. */
	uint32_t ns_pid;
	uint64_t pidns_ino;		/* 0: unknown (an older agent) */
	int unseen;
	char *container, *hostname, *pod, *pod_namespace;	/* NULL: none */
	uint32_t argc;
	struct agg_types *objects, *garbage;
};

/* Per-generation sums of a scope. */
struct agg_gen_sum {
	uint64_t collections, seen, unseen, collected, uncollectable;
	uint64_t pause_ns, max_pause_ns;
	uint64_t collector_ns, ncollector;	/* agg_proc's, summed */
};

struct agg_sum {
	unsigned nproc, nlive;
	uint8_t ngen;
	unsigned models;		/* gcmodel_bit() of each process's model */
	struct agg_gen_sum gen[PROTO_MAX_GEN];
	/* The pauses of each generation: compact, so that a sum of a run
	 * with three generations and the usual spread of pauses holds a few
	 * KiB (eight struct hist were 128 KiB to clear, and to fault in, at
	 * every answer of a fresh gcmond). */
	struct hist_compact hist[PROTO_MAX_GEN];
	uint64_t dropped, alerts;
	double proc_wall_s;		/* sum of each process's wall time */
	double start, end;		/* first start, last end (0: live) */
	int have_cpu, have_rss;
	double cpu_s;
	uint64_t rss_bytes, max_rss_bytes;	/* sum of last, largest */
	/* smaps_rollup: last readings of live processes summed; unshared
	 * summed over forked processes, ended ones too; the masters' size
	 * (their Anonymous) for scale; the most frozen objects seen. */
	unsigned nmem, nmem_refused, nunshared;
	uint64_t pss_bytes, shared_bytes, private_dirty_bytes;
	uint64_t unshared_by_gc_bytes, master_anon_bytes, frozen_objects;
};

struct agg_run {
	LIST_ENTRY(agg_run) link;	/* in agg->runs */
	char *id;
	TAILQ_HEAD(agg_procs, agg_proc) procs;	/* by arrival */
	unsigned nproc, nlive;
	double last_end;		/* when its last process ended */
	/* The pauses of its folded processes (zero: none yet). */
	struct hist_compact folded[PROTO_MAX_GEN];
	struct agg_sum *evicted;	/* records dropped beyond the cap */
};

struct agg_config {
	uint64_t alert_threshold_ns;
	double run_expiry_s;
};

/*
 * Told before a process's figures leave its record, so that a reader
 * keeping totals under another key (metrics.c, by service and role)
 * never sees them go backwards: fold, before its histograms are merged
 * into its run's (p->hist non-NULL); forget, before its record is freed
 * (evicted beyond AGG_RUN_MAX_PROCS, or its run expired; p->hist may
 * still be there if it was never folded). Neither may call agg_.
 */
struct agg;

struct agg_hooks {
	void (*fold)(void *arg, const struct agg *a, const struct agg_proc *p);
	void (*forget)(void *arg, const struct agg *a,
	    const struct agg_proc *p);
	void *arg;
};

struct agg {
	struct agg_config cfg;
	struct agg_hooks hooks;		/* zero: nobody listens */
	uint64_t nevents;		/* event records ingested, ever */
	double now_real;		/* set by the caller before each call */
	double now_mono;		/* the same instant, CLOCK_MONOTONIC s */
	LIST_HEAD(agg_runs, agg_run) runs;	/* newest first */
	unsigned nruns, nlive;
	struct agg_sum *expired;	/* runs gone; NULL until one is */
};

struct agg *agg_new(const struct agg_config *cfg);
void agg_free(struct agg *a);

/*
 * A HELLO (the identity in an area). A process already known by (pid,
 * start_mono_ns) is the same process attached again: its totals
 * continue. *is_new says which.
 * 0 or -ENOMEM.
 */
int agg_hello(struct agg *a, const struct proto_hello *h,
    struct agg_proc **out, int *is_new);
/* The cumulative counters copied out of an area (shm_snapshot). */
void agg_counters(struct agg *a, struct agg_proc *p,
    const struct proto_counters *c);
/* One event record; returns 1 if its pause is above the alert threshold. */
int agg_event(struct agg *a, struct agg_proc *p, const struct proto_event *e);
/* What gcmond read of a process in /proc (or what it said at exit). */
struct agg_sample {
	uint64_t rss_bytes;		/* now */
	uint64_t peak_rss_bytes;	/* VmHWM: the kernel's high-water mark */
	uint64_t cpu_ns;		/* user + system */
};
void agg_sample(struct agg *a, struct agg_proc *p, const struct agg_sample *s);
/*
 * A read of p's smaps_rollup at mono_ns (CLOCK_MONOTONIC, the agents'
 * clock): err 0 and *m, or the negative errno of the read (-EACCES/-EPERM:
 * refused, kept as such; others, a process gone, change nothing). For a
 * forked process, when gen-2 collections finished since the previous
 * read, the growth of its private memory (clean + dirty) from the last
 * read taken before the first of them started (of the AGG_MEM_READS
 * kept; the oldest if all came later) counts as unshared by its collector
 * (the copy-on-write of the inherited objects whose headers a full
 * collection writes); a shrink counts as 0. quiet is 1 when the process
 * ran no collection during the read (shm_gc_mark); a read that is not
 * quiet updates the figures only: it is neither kept as a "before" nor
 * taken as an "after", so a collection longer than the reads kept, or
 * one that had begun unseen, is never measured from its middle.
 */
void agg_mem_read(struct agg *a, struct agg_proc *p, const struct agg_mem *m,
    uint64_t mono_ns, int err, int quiet);
/* 1 when p finished a gen-2 collection since its last quiet memory read. */
int agg_mem_due(const struct agg_proc *p);
/* Shared (clean + dirty) and private bytes of a reading. */
uint64_t agg_mem_shared(const struct agg_mem *m);
uint64_t agg_mem_private(const struct agg_mem *m);
/* The figures a process wrote at a clean exit: CPU time and peak RSS
 * (getrusage), which outlive its /proc entry, and its frozen objects. */
void agg_exit_info(struct agg *a, struct agg_proc *p, uint64_t cpu_ns,
    uint64_t peak_rss_bytes, uint64_t freeze_count);
/* After agg_exit_info: the process ended by os._exit(code). */
void agg_exit_code(struct agg_proc *p, int code);
/* Its area ended by gcmon.stop() (SHM_EXIT_DETACHED): the process lives
 * on, and a later area of it is a new record (PROTO_HELLO_PRIOR). */
void agg_exit_detached(struct agg_proc *p);
/* Where a process runs, as agents.c and place.c found it (strings
 * borrowed, copied; empty ones kept as NULL). */
struct agg_place {
	uint32_t ns_pid;
	uint64_t pidns_ino;
	int unseen;			/* no /proc figures: agg_mem_state says */
	const char *container;
	struct proto_str hostname, pod, pod_namespace;
};
/* 0 or -ENOMEM (p keeps what it had). */
int agg_place(struct agg_proc *p, const struct agg_place *pl);
/* When the process started (Unix seconds, from /proc), which its wall
 * time counts from: the agent loads later, its CPU time counts from here. */
void agg_proc_started(struct agg_proc *p, double start_real);
/* OBJECTS (garbage 0) or GARBAGE (garbage 1). 0 or -ENOMEM. */
int agg_types(struct agg *a, struct agg_proc *p, int garbage,
    const struct proto_types *t);
/* The end of p (its pidfd said so; whatever the way it ended): its final
 * counters, then its histograms are folded into its run. */
void agg_bye(struct agg *a, struct agg_proc *p, const struct proto_bye *b);
/* An area of p was detached; returns 1 if p thereby became lost (it was
 * still live: its area was unreadable, or gcmond is stopping). */
int agg_disconnect(struct agg *a, struct agg_proc *p);
/* Expires old runs; returns how many went. */
unsigned agg_expire(struct agg *a);

/* Wall-clock time (Unix seconds) of a monotonic instant of process p. */
double agg_proc_real(const struct agg_proc *p, uint64_t mono_ns);
/* Event i-th newest (0 = newest) of p's recent ring, or NULL. */
const struct proto_event *agg_proc_recent(const struct agg_proc *p,
    unsigned i);

/* Lookups; borrowed, valid until the next agg_ call that can free. */
struct agg_run *agg_run_find(const struct agg *a, const char *id);
/* The newest process with this pid (live first). */
struct agg_proc *agg_proc_find(const struct agg *a, uint32_t pid);
/* The process after p (p NULL: the first) of run r, or of every run when
 * r is NULL (runs newest first, each by arrival); NULL after the last. */
const struct agg_proc *agg_proc_next(const struct agg *a,
    const struct agg_run *r, const struct agg_proc *p);

/* Sums. agg_sum_new returns an empty sum (or NULL); agg_sum_free frees
 * one (NULL: nothing). A histogram that cannot grow loses only detail
 * (hist.h, nlost): totals stay exact. */
struct agg_sum *agg_sum_new(void);
void agg_sum_free(struct agg_sum *s);
void agg_sum_process(const struct agg *a, const struct agg_proc *p,
    struct agg_sum *s);
void agg_sum_run(const struct agg *a, const struct agg_run *r,
    struct agg_sum *s);
void agg_sum_host(const struct agg *a, struct agg_sum *s);

/* Percentile pct (50, 90, 99 or 99.9 once folded) of generation g (-1:
 * all generations) of a process, in ms. */
double agg_proc_pct_ms(const struct agg_proc *p, int g, double pct);
/* The percentile set (agg_pcts) in ms: of process p's generation g (-1:
 * all), of a sum's generations together, of its generation g (<
 * PROTO_MAX_GEN), of the union of n compact histograms h[0..n-1]. */
void agg_proc_pcts_ms(const struct agg_proc *p, int g,
    double out[AGG_NPCTS]);
void agg_sum_pcts_ms(const struct agg_sum *s, double out[AGG_NPCTS]);
void agg_sum_gen_pcts_ms(const struct agg_sum *s, unsigned g,
    double out[AGG_NPCTS]);
void agg_compact_pcts_ms(const struct hist_compact *h, unsigned n,
    double out[AGG_NPCTS]);

/* A sum's figures over all its generations. */
struct agg_totals {
	uint64_t collections, seen, unseen, collected, uncollectable;
	uint64_t pause_ns, max_pause_ns;
	unsigned max_gen;		/* where max_pause_ns was */
};
void agg_sum_totals(const struct agg_sum *s, struct agg_totals *t);
/* Mean pause of the seen collections, in ms (0 when none). */
double agg_mean_pause_ms(uint64_t pause_ns, uint64_t seen);
/* GC time as a share of wall time, in percent (0 without wall time),
 * never above 100: pauses happen inside the wall time they are a share
 * of, so more can only be clock error between the agent and gcmond. */
double agg_gc_wall_pct(uint64_t pause_ns, double wall_s);
/* Processes of run r (all runs when NULL) by start time, then pid; *n
 * set. New array (free() it) of borrowed records; NULL out of memory. */
const struct agg_proc **agg_procs_by_start(const struct agg *a,
    const struct agg_run *r, size_t *n);

/* Heap and struct bytes the aggregates hold for process p (its record,
 * histograms, strings, type tables), excluding malloc's own overhead. */
size_t agg_proc_bytes(const struct agg_proc *p);
/* Adds p's figures to s as a run total counts them (a baseline
 * inherited at fork left out: the parent counted it). */
void agg_sum_own(const struct agg *a, const struct agg_proc *p,
    struct agg_sum *s);
/* The one home of a process's role: "master" (started by the launcher
 * or by hand), "worker" (forked from a monitored process, or exec'd by
 * one to run the same program: multiprocessing's spawn start method,
 * uvicorn --workers; see agg.c) or "child" (any other exec'd process:
 * multiprocessing's resource tracker, a subprocess). */
enum agg_role agg_proc_role(const struct agg_proc *p);
/* "master", "worker" or "child": static. */
const char *agg_role_name(enum agg_role r);
/* Event records received for p (its pauses seen in detail). */
uint64_t agg_proc_events(const struct agg_proc *p);
/* The collector model of a sum's processes (gcmodel.h): one model, or
 * GCMODEL_MIXED, or GCMODEL_UNKNOWN when it has none. */
unsigned agg_sum_model(const struct agg_sum *s);
/* Wall time of a process so far, in seconds. */
double agg_proc_wall_s(const struct agg *a, const struct agg_proc *p);

#endif /* GCMON_AGG_H */
