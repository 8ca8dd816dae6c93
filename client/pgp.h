/*
 * pgp.h: pygcprofiler's internal header, shared by its modules only:
 * pygcprofiler.c (main and the wiring), options.c (the option tables:
 * run, exec, attach, detach), attach.c (attach and detach),
 * launch.c (spawn, signals, private gcmond, waiting), command.c (exec's
 * command lookup, why no agent loaded), watch.c (the event
 * stream), flame.c (flame graphs) and prompt.c (the optimisation prompt).
 * gcmonctl and gcmond never include it.
 */
#ifndef GCMON_PGP_H
#define GCMON_PGP_H

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#include "ctl.h"
#include "protocol.h"

#define PGP_MAX_BUCKETS		PROTO_MAX_EDGES	/* --buckets edges */
#define PGP_MAX_GEN		PROTO_MAX_GEN
#define PGP_PING_TIMEOUT_MS	10000	/* gcmond start-up */
#define PGP_WAIT_TIMEOUT_MS	5000	/* last batches after the program ends */
#define PGP_DRAIN_MS		300	/* a watcher that lost objects: quiet */
#define PGP_POLL_MS		200
#define PGP_MAX_FLAME_ROWS	20000	/* x 2 KiB; 27 h of 5 s buckets */

struct pgp_opts {
	double interval_s;
	int json;
	int stats_only;
	int dump_objects;
	int dump_garbage;
	int requests;		/* --requests: GCMON_REQUESTS=1 */
	const char *log_file;
	double alert_ms;
	const char *flame_file;
	double flame_bucket_s;
	int term_flame;
	long term_width;
	int term_color;
	const char *stacks_file;	/* --stacks-file */
	int stacks_by_count;		/* --stacks-by count */
	double buckets[PGP_MAX_BUCKETS];
	size_t nbuckets;
	int prompt;
	const char *socket;
	int live;		/* --live: the private gcmond serves the dashboard */
	unsigned live_port;	/* its port; 0: a free one */
	const char *python;
	int python_given;	/* --python on the command line */
	int module;		/* prog[0] is a module name */
	int exec;		/* `exec`: prog is a command, run as given */
	char **prog;		/* script, module or command, then arguments */
	int nprog;
};

/* GC time (ms) of one flame graph time bucket, by generation and pause
 * duration bucket. */
struct pgp_flame_row {
	double ms[PGP_MAX_GEN][PGP_MAX_BUCKETS + 1];
};

struct pgp_run {
	struct pgp_opts *o;
	FILE *out;
	char run_id[64];
	double start_real;		/* Unix seconds, launcher start */
	pid_t child;
	pid_t daemon;
	char gcmond[PATH_MAX];		/* its executable */
	int ready_fd;			/* its --ready-fd pipe until ready */
	int child_status;
	int child_done;
	int exec_failed;		/* the launcher's status then: 127/126 */
	int watch_fd;
	struct ctl_stream watch;	/* what watch_fd sent, not yet handled */
	int ctl_fd;
	int stop_sent;			/* with the report's requests */
	/* From the event stream. */
	pid_t pids[64];
	size_t npids;			/* distinct processes seen, capped */
	unsigned long nended;		/* process_end objects received */
	unsigned long nended_want;	/* processes `wait` saw ended */
	unsigned long long nevents;
	unsigned long long lost;
	int watch_err;			/* why the stream was cut (codec.h) */
	long nproc_run;			/* from `wait`; -1: no answer */
	json_t *durations;		/* the daemon's `durations` answer */
	struct pgp_flame_row *flame;
	size_t nflame;
	unsigned long long flame_skipped;	/* beyond PGP_MAX_FLAME_ROWS */
	unsigned ngen_seen;
	json_t *report;			/* the daemon's `report` answer */
	json_t *stacks;			/* its `stacks` answer (the body) */
	json_t *requests;		/* its `requests` answer (the body) */
	char report_err[256];		/* why there is none */
	char agent_dir[PATH_MAX];
};

/* `attach` and `detach` (attach.c), as options.c parses them. */
struct attach_opts {
	const char *socket;
	const char *service;
	int tree;
	double timeout_s;
	int detach;		/* detach: its options only */
};

/* ---- options.c: one table makes both the parser and --help ---------- */

enum pgp_parse_result { PGP_RUN, PGP_HELP, PGP_VERSION };

/* The defaults (GCMON_PYTHON read here). */
void opts_init(struct pgp_opts *o);
/* argv after "run". Returns a pgp_parse_result, or -EINVAL with the
 * reason in msg (printed by main). */
int opts_parse_run(int argc, char **argv, struct pgp_opts *o, char *msg,
    size_t msglen);
/* argv after "exec": options, an optional "--", then the command. The
 * same results; refuses --python. */
int opts_parse_exec(int argc, char **argv, struct pgp_opts *o, char *msg,
    size_t msglen);
/* Shared mode's refusals of the report's options (from_env: the socket
 * came from GCMON_SOCKET). 0, or -EINVAL with msg set. */
int opts_check_shared(const struct pgp_opts *o, int from_env, char *msg,
    size_t msglen);
/* --help; exec != 0: the text of `help exec`. */
void opts_usage(FILE *out, int exec);
/* The option of attach (detach with o->detach) at argv[*i], moved past
 * its value: 0, 1 (--help) or -EINVAL with the reason in msg. */
int opts_attach_one(int argc, char **argv, int *i, struct attach_opts *o,
    char *msg, size_t msglen);
/* `help attach`, `help detach` (detach != 0). */
void opts_attach_usage(FILE *out, int detach);
/* A name that is no file but could be a module or a console script. */
int opts_looks_like_module(const char *name);

/* ---- launch.c: the program, its signals, the private gcmond --------- */

/* Sets the program's environment (agent on PYTHONPATH, socket, run) and
 * starts it; says why not. An exec failure is no error here: it sets
 * r->exec_failed (127 or 126) and r->child_done, and says so. */
int launch_program(struct pgp_run *r, const char *sock);
/* Shared mode: execs the program in place of the launcher; returns only
 * when that failed, with the exit status to end with. */
int launch_exec_program(struct pgp_run *r, const char *sock);
/* Waits for the program, forwarding signals and streaming events. */
void launch_supervise(struct pgp_run *r, FILE *err_out);
/* After the program: the request to answer once no process of the run is
 * live (min 0: a run none of whose interpreters loaded the agent is
 * answered at once; the time limit is for processes not ended). */
json_t *launch_wait_request(const struct pgp_run *r);
/* Its answer (NULL: none) sets r->nproc_run (-1: no answer), and the
 * watch stream is read up to each process's end. (The one place that
 * knows how a run ends.) */
void launch_wait_run_end(struct pgp_run *r, const json_t *ans);
/* mkdtemp's the private directory, names the socket in it; says why not. */
int launch_private_dir(char *dir, size_t dirlen, char *sock, size_t socklen);
/* Starts gcmond on sock, r->ctl_fd and (want_watch) r->watch_fd its
 * clients from its start; says why not. It need not be ready for the
 * program to start: no event is lost. */
int launch_private_daemon(struct pgp_run *r, const char *sock, int want_watch);
/* Once the program started: waits until gcmond is ready and has
 * answered both; says why not, and then ends the program (and gcmond). */
int launch_daemon_ready(struct pgp_run *r, const char *sock);
/* Stops the private gcmond, closes r->ctl_fd, removes sock and dir. */
void launch_end_private(struct pgp_run *r, const char *dir, const char *sock);
/* The agent directory (sitecustomize.py, gcmon/): $GCMON_AGENT_DIR, the
 * build tree's, else PKGLIBDIR. attach.c copies from it too. */
void launch_find_agent_dir(char *buf, size_t len);
/* The launcher's exit status for a wait() status. */
int launch_exit_status(int st);
void launch_make_run_id(char *buf, size_t len);

/* ---- watch.c: the run's event stream -------------------------------- */

/* Reads what the watch stream holds, waiting at most timeout_ms for the
 * first object. Returns 0, -ETIMEDOUT (quiet), or -ECONNRESET (closed). */
int watch_pump(struct pgp_run *r, int timeout_ms);
/* Writes obj (stolen) as one line of JSON output. */
void watch_json_line(FILE *out, json_t *obj);

/* ---- command.c: exec's command and why no agent loaded -------------- */

/* Looks cmd up as execvp would (PATH when it has no '/'); the path found
 * in buf. 0, -ENOENT (nowhere), -EACCES (found, not executable) or
 * -EISDIR. */
int command_find(const char *cmd, char *buf, size_t len);
/* The shell's status for an exec failure: 127 not found, 126 otherwise. */
int command_exec_status(int err);
/* Why the processes of the command line argv[0..argc) cannot load the
 * agent when something in it says so (uWSGI --no-site, python -S/-I/-E,
 * PYTHONPATH= set on the command line), into buf; 0 when nothing does. */
int command_why_no_agent(char *const *argv, int argc, char *buf, size_t len);

/* ---- flame.c: the flame graphs -------------------------------------- */

/* Adds ms of GC time at Unix time t, generation gen, duration bucket b. */
void flame_add(struct pgp_run *r, double t, unsigned gen, size_t b, double ms);
int flame_write_file(const struct pgp_run *r, const char *path);
void flame_print_terminal(const struct pgp_run *r, FILE *out);
/* The terminal flame graph as a JSON object (new reference). */
json_t *flame_terminal_json(const struct pgp_run *r);

/* ---- prompt.c: the optimisation prompt ------------------------------ */

/* The prompt text (malloc'd), or NULL; needs r->report. */
char *prompt_build(const struct pgp_run *r);
/* The command line, shell-quoted where a word needs it. */
void prompt_print_command(FILE *out, const struct pgp_opts *o);

#endif /* GCMON_PGP_H */
