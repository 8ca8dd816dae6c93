/*
 * pygcprofiler.c: the launcher users type, `pygcprofiler run [options]
 * script.py|-m module [args...]` or `pygcprofiler exec [options] --
 * command [args...]` (also installed as gc-monitor). In
 * embedded mode it starts a private gcmond, runs the program with the
 * agent on PYTHONPATH, streams the run's events, and prints the report of
 * every process of the run when the program ends; in shared mode it only
 * points the agent at a running gcmond. Talks to gcmond through ctl.c,
 * renders through report.c. It must never touch the program's stdout,
 * argv, cwd or stdin, and never outlive or hide the program's exit status.
 *
 * This file is main and the wiring; the parts live beside it (pgp.h):
 * options.c, launch.c, command.c, watch.c, flame.c, prompt.c.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "attach.h"
#include "ctl.h"
#include "pgp.h"
#include "report.h"
#include "requests_report.h"
#include "stacks_report.h"

static json_t *pgp_command_json(const struct pgp_opts *o)
{
	json_t *a = json_array();
	int i;

	if (!o->exec)
		json_array_append_new(a, json_string(o->python));
	if (o->module)
		json_array_append_new(a, json_string("-m"));
	for (i = 0; i < o->nprog; i++)
		json_array_append_new(a, json_string(o->prog[i]));
	return a;
}

/* The --duration-buckets rows gcmond counted (borrowed), or NULL. */
static json_t *pgp_durations_json(const struct pgp_run *r)
{
	return json_object_get(r->durations, "durations");
}

static void pgp_print_types(FILE *out, const char *title, const json_t *arr)
{
	const json_t *e, *t;
	char name[512];
	size_t i, j;

	json_array_foreach(arr, i, e) {
		fprintf(out, "\n=== %s (pid %lld, %lld objects) ===\n", title,
		    (long long)json_integer_value(json_object_get(e, "pid")),
		    (long long)json_integer_value(json_object_get(e, "total")));
		json_array_foreach(json_object_get(e, "types"), j, t) {
			if (j >= 25) {
				fprintf(out, "  ... %zu more types\n",
				    json_array_size(json_object_get(e, "types")) - j);
				break;
			}
			fprintf(out, "  %10lld  %s\n",
			    (long long)json_integer_value(json_object_get(t, "count")),
			    report_clean(name, sizeof name,
			    json_string_value(json_object_get(t, "type")) ?
			    json_string_value(json_object_get(t, "type")) : "?"));
		}
	}
}


/*
 * Why Python processes of the run may not have loaded the agent, into
 * buf: what the command line says (command.c), or when no process
 * reported and it says nothing, the usual causes. 0: nothing to say.
 */
static int pgp_not_monitored(const struct pgp_run *r, char *buf, size_t len)
{
	if (r->o->exec && command_why_no_agent(r->o->prog, r->o->nprog, buf,
	    len))
		return 1;
	if (r->nproc_run != 0)
		return 0;
	snprintf(buf, len, "%s", r->o->exec ? "the command may start no "
	    "Python, or start it without the environment (site disabled by "
	    "python -S/-I or uWSGI --no-site, PYTHONPATH or GCMON_SOCKET "
	    "replaced), or an interpreter older than 3.10 (which says so on "
	    "the program's stderr)" : "an interpreter that refuses it says why "
	    "on the program's stderr");
	return 1;
}

/* The report as JSON lines (--json). */
static void pgp_report_json(struct pgp_run *r, json_t *dur, const char *prompt)
{
	const struct pgp_opts *o = r->o;
	char why[1024];

	watch_json_line(r->out, json_pack("{s:s,s:O?,s:O?,s:O?,s:O?,s:I,s:s?}",
	    "type", "summary", "summary", json_object_get(r->report, "summary"),
	    "processes", json_object_get(r->report, "processes"),
	    "durations", dur, "pauses", json_object_get(r->durations,
	    "pauses"), "lost", (json_int_t)r->lost, "not_monitored",
	    pgp_not_monitored(r, why, sizeof why) ? why : NULL));
	watch_json_line(r->out, json_pack("{s:s,s:O?}", "type",
	    "recommendations", "recommendations",
	    json_object_get(r->report, "recommendations")));
	if (o->dump_objects)
		watch_json_line(r->out, json_pack("{s:s,s:O?}", "type",
		    "objects", "objects", json_object_get(r->report, "objects")));
	if (o->dump_garbage)
		watch_json_line(r->out, json_pack("{s:s,s:O?}", "type",
		    "garbage", "garbage", json_object_get(r->report, "garbage")));
	if (o->term_flame)
		watch_json_line(r->out, flame_terminal_json(r));
	if (r->stacks != NULL)
		watch_json_line(r->out, json_pack("{s:s,s:O}", "type", "stacks",
		    "stacks", r->stacks));
	if (r->requests != NULL)
		watch_json_line(r->out, json_pack("{s:s,s:O}", "type",
		    "requests", "requests", r->requests));
	if (prompt)
		watch_json_line(r->out, json_pack("{s:s,s:s}", "type",
		    "prompt", "text", prompt));
}

/* The summary block, or why there is none. */
static void pgp_report_summary(struct pgp_run *r, json_t *dur)
{
	const json_t *sum = json_object_get(r->report, "summary");
	struct report_opts ro;
	char why[1024];
	int note = pgp_not_monitored(r, why, sizeof why);

	memset(&ro, 0, sizeof ro);
	ro.alert_threshold_ms = r->o->alert_ms;
	ro.duration_buckets_ms = r->o->buckets;
	ro.nbuckets = r->o->nbuckets;
	ro.color = r->o->term_color;
	ro.pauses = r->durations;
	if (sum)
		report_summary(r->out, sum, json_object_get(r->report,
		    "processes"), dur, &ro);
	else if (r->nproc_run == 0)
		fprintf(r->out, "\nGMEM No Python process loaded the agent: "
		    "%s\n", why);
	else
		fprintf(r->out, "\n=== GC MONITORING SUMMARY ===\nNo "
		    "report from gcmond: %s\n", r->report_err);
	if (note && r->nproc_run != 0)
		fprintf(r->out, "\nGMEM Python processes started this way are "
		    "not in this report: %s\n", why);
}

/* What the flame graphs are built from, when that is not every pause
 * gcmond received (the watch stream drops what the launcher is too slow
 * to read; the totals and the durations table do not). */
static void pgp_flame_note(const struct pgp_run *r)
{
	json_int_t all = json_integer_value(json_object_get(r->durations,
	    "pauses"));

	if (r->durations != NULL && (json_int_t)r->nevents < all)
		fprintf(r->out, "(the flame graphs are built from %llu of the "
		    "%lld pauses gcmond received: the event stream lost %llu "
		    "objects)\n", r->nevents, (long long)all, r->lost);
	else if (r->durations == NULL && r->lost > 0)
		fprintf(r->out, "(the flame graphs miss %llu objects the "
		    "event stream lost)\n", r->lost);
}

/* The report as the text users read. */
static void pgp_report_text(struct pgp_run *r, json_t *dur, const char *prompt)
{
	const struct pgp_opts *o = r->o;

	pgp_report_summary(r, dur);
	if (r->report)
		report_recommendations(r->out, json_object_get(r->report,
		    "recommendations"));
	if (o->dump_objects)
		pgp_print_types(r->out, "OBJECT TYPES AT EXIT",
		    json_object_get(r->report, "objects"));
	if (o->dump_garbage)
		pgp_print_types(r->out, "OBJECTS KEPT BY gc.DEBUG_SAVEALL "
		    "(gc.garbage)", json_object_get(r->report, "garbage"));
	if (o->term_flame)
		flame_print_terminal(r, r->out);
	if (o->term_flame || o->flame_file)
		pgp_flame_note(r);
	if (r->stacks != NULL)
		stacks_report(r->out, r->stacks, 1);
	if (r->requests != NULL)
		report_requests(r->out, r->requests);
	if ((o->term_flame || o->flame_file) && r->flame_skipped)
		fprintf(r->out, "(the flame graphs stop after %d time "
		    "buckets: %llu later collections are not in them)\n",
		    PGP_MAX_FLAME_ROWS, r->flame_skipped);
	if (prompt) {
		fputs("\n=== AI OPTIMIZATION PROMPT ===\nCopy the "
		    "following prompt to an AI assistant:\n\n", r->out);
		fputs(prompt, r->out);
	}
}

/* What the report is rendered from. */
struct pgp_report_args {
	json_t *dur;			/* borrowed */
	const char *prompt;		/* may be NULL */
};

static void pgp_render_report(struct pgp_run *r, const void *arg)
{
	const struct pgp_report_args *a = arg;

	if (r->o->json)
		pgp_report_json(r, a->dur, a->prompt);
	else
		pgp_report_text(r, a->dur, a->prompt);
}

/*
 * render(r, arg) into memory, then written at once: stderr is
 * unbuffered, and every fputs to it is a system call (a report's
 * hundred lines, a hundred; a log file, fully buffered, gets it
 * directly, and so does stderr when memory is short).
 */
static void pgp_print_once(struct pgp_run *r,
    void (*render)(struct pgp_run *, const void *), const void *arg)
{
	FILE *out = r->out, *mem = NULL;
	char *buf = NULL;
	size_t len = 0;

	if (out == stderr && (mem = open_memstream(&buf, &len)) != NULL) {
		r->out = mem;
		render(r, arg);
		r->out = out;
		if (fclose(mem) == 0)
			fwrite(buf, 1, len, out);
		else
			mem = NULL;	/* out of memory: directly, then */
		free(buf);
	}
	if (mem == NULL)
		render(r, arg);
	fflush(out);
}

static void pgp_print_report(struct pgp_run *r)
{
	char *prompt = NULL;
	struct pgp_report_args a;

	if (r->o->prompt && r->report)
		prompt = prompt_build(r);
	a.dur = pgp_durations_json(r);
	a.prompt = prompt;
	pgp_print_once(r, pgp_render_report, &a);
	free(prompt);
}

/* The --duration-buckets table from gcmond's histograms of the run. */
static json_t *pgp_durations_request(const struct pgp_run *r)
{
	json_t *edges = json_array();
	size_t i;

	for (i = 0; i < r->o->nbuckets; i++)
		json_array_append_new(edges, json_real(r->o->buckets[i]));
	return json_pack("{s:s,s:s,s:o}", "cmd", "durations", "run",
	    r->run_id, "le_ms", edges);
}

static void pgp_take_durations(struct pgp_run *r, json_t *ans)
{
	if (json_is_true(json_object_get(ans, "ok")))
		r->durations = json_incref(ans);
}

/* Where the run's pauses land (gcmond's `stacks`). */
static void pgp_take_stacks(struct pgp_run *r, json_t *ans)
{
	if (json_is_true(json_object_get(ans, "ok")))
		r->stacks = json_incref(json_object_get(ans, "stacks"));
}

/* What GC cost the run's requests (gcmond's `requests`): kept when any
 * request was recorded (--requests, or the middlewares in the code). */
static void pgp_take_requests(struct pgp_run *r, json_t *ans)
{
	json_t *body = json_object_get(ans, "requests");

	if (json_is_true(json_object_get(ans, "ok")) &&
	    json_integer_value(json_object_get(body, "requests")) > 0)
		r->requests = json_incref(body);
}

static void pgp_take_report(struct pgp_run *r, json_t *ans)
{
	const char *msg;

	if (json_is_true(json_object_get(ans, "ok"))) {
		r->report = json_incref(ans);
		return;
	}
	msg = json_string_value(json_object_get(ans, "error"));
	snprintf(r->report_err, sizeof r->report_err, "%s",
	    msg != NULL ? msg : "error without a message");
}

/* --stacks-file: the folded stacks; 0 or a negative errno. */
static int pgp_write_stacks(const struct pgp_run *r, const char *path)
{
	FILE *f;
	int fd, n;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if ((f = fdopen(fd, "w")) == NULL) {
		close(fd);
		return -ENOMEM;
	}
	n = r->stacks != NULL ? stacks_report_folded(f, r->stacks,
	    r->o->stacks_by_count) : 0;
	if (fclose(f) != 0 || n < 0)
		return -EIO;
	return 0;
}

/*
 * Waits for the end of the run, then takes the report (or why not). All
 * is asked in one write: the wait, what the report is made of, and the
 * stop of the private gcmond, which answers each in order once the wait
 * is over; its answers are read while the watch stream is drained.
 */
static void pgp_collect(struct pgp_run *r)
{
	enum { WAIT, DURATIONS, STACKS, REQUESTS, REPORT, STOP, NASK };
	json_t *req[NASK] = { NULL }, *ans[NASK] = { NULL }, *send[NASK];
	size_t i, n = 0, at[NASK];
	int err = -ENOMEM;

	r->nproc_run = -1;
	if (r->ctl_fd < 0 || r->exec_failed)
		return;		/* nothing to ask: pgp_report_summary says so */
	req[WAIT] = launch_wait_request(r);
	req[DURATIONS] = r->o->nbuckets > 0 ? pgp_durations_request(r) : NULL;
	req[STACKS] = json_pack("{s:s,s:s}", "cmd", "stacks", "run", r->run_id);
	req[REQUESTS] = json_pack("{s:s,s:s}", "cmd", "requests", "run",
	    r->run_id);
	req[REPORT] = json_pack("{s:s,s:s}", "cmd", "report", "run", r->run_id);
	req[STOP] = json_pack("{s:s}", "cmd", "stop");
	for (i = 0; i < NASK; i++) {
		if (req[i] != NULL) {
			at[n] = i;
			send[n++] = req[i];
		} else if (i != DURATIONS || r->o->nbuckets > 0) {
			break;		/* out of memory */
		}
	}
	if (i == NASK)
		err = ctl_send_all(r->ctl_fd, send, n);
	for (i = 0; i < NASK; i++)
		json_decref(req[i]);
	if (err == 0) {
		r->stop_sent = 1;
		do
			err = ctl_read(r->ctl_fd, &ans[WAIT],
			    PGP_WAIT_TIMEOUT_MS + 5000);
		while (err == -EINTR);
	}
	launch_wait_run_end(r, ans[WAIT]);
	for (i = 1; i < n && err == 0; i++)
		do
			err = ctl_read(r->ctl_fd, &ans[at[i]], 10000);
		while (err == -EINTR);
	if (err < 0)
		snprintf(r->report_err, sizeof r->report_err, "%s",
		    strerror(-err));
	else if (r->nproc_run != 0) {
		/* A run no agent reached has no report: its summary says so. */
		if (ans[DURATIONS] != NULL)
			pgp_take_durations(r, ans[DURATIONS]);
		pgp_take_stacks(r, ans[STACKS]);
		pgp_take_requests(r, ans[REQUESTS]);
		pgp_take_report(r, ans[REPORT]);
	}
	for (i = 0; i < NASK; i++)
		json_decref(ans[i]);
}

/* ---- modes ------------------------------------------------------------- */

/* A "forbidden" answer: gcmond does not serve our uid (--allow-uid). */
static int pgp_is_forbidden(const json_t *ans)
{
	const char *code = json_string_value(json_object_get(ans, "code"));

	return json_is_false(json_object_get(ans, "ok")) && code != NULL &&
	    strcmp(code, "forbidden") == 0;
}

static int pgp_run_shared(struct pgp_opts *o, const char *sock)
{
	struct pgp_run r;
	json_t *req, *ans;
	const char *env_run = getenv("GCMON_RUN_ID");
	int fd, err, connect_err;

	memset(&r, 0, sizeof r);
	r.o = o;
	r.watch_fd = r.ctl_fd = -1;
	if (env_run && *env_run)
		snprintf(r.run_id, sizeof r.run_id, "%s", env_run);
	else
		launch_make_run_id(r.run_id, sizeof r.run_id);
	err = ctl_connect(sock, &fd);
	connect_err = err;
	if (err == 0) {
		req = json_pack("{s:s}", "cmd", "ping");
		err = ctl_request(fd, req, &ans, 2000);
		json_decref(req);
		if (err == 0 && pgp_is_forbidden(ans))
			err = -EACCES;
		if (err == 0 || err == -EACCES)
			json_decref(ans);
		ctl_close(fd);
	}
	if (err == -EACCES && connect_err == 0)
		fprintf(stderr, "pygcprofiler: gcmond at %s refused uid %u (see "
		    "gcmond --allow-uid, --allow-group); running the program "
		    "unmonitored\n", sock,
		    (unsigned)getuid());
	else if (err == -EACCES)
		fprintf(stderr, "pygcprofiler: gcmond at %s refused uid %u (the "
		    "socket's permissions: see gcmond --socket-group, "
		    "--allow-group and --allow-uid); running the program "
		    "unmonitored\n", sock,
		    (unsigned)getuid());
	else if (err < 0)
		fprintf(stderr, "pygcprofiler: no gcmond answers at %s (%s); "
		    "running the program anyway: its agent connects when the "
		    "daemon starts\n", sock, strerror(-err));
	/* As a container's first process (pid 1) the program would get no
	 * default action for SIGTERM or SIGINT and nobody would reap its
	 * orphans: the launcher stays there as their parent. */
	if (getpid() != 1)
		return launch_exec_program(&r, sock);
	if (launch_program(&r, sock) < 0)
		return 1;
	if (r.exec_failed)
		return r.exec_failed;
	launch_supervise(&r, stderr);
	return launch_exit_status(r.child_status);
}

static int pgp_open_log(const char *path, FILE **out)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	*out = fdopen(fd, "w");
	if (*out == NULL) {
		int err = -errno;

		close(fd);
		return err;
	}
	return 0;
}

/* The output files: --log-file opened, --flamegraph-file writable now
 * rather than after a long run. */
static int pgp_open_outputs(struct pgp_run *r)
{
	const struct pgp_opts *o = r->o;
	int err;

	if (o->log_file && (err = pgp_open_log(o->log_file, &r->out)) < 0) {
		fprintf(stderr, "pygcprofiler: cannot open --log-file %s: %s\n",
		    o->log_file, strerror(-err));
		return err;
	}
	if (o->flame_file && (err = flame_write_file(r, o->flame_file)) < 0) {
		fprintf(stderr, "pygcprofiler: cannot write "
		    "--flamegraph-file %s: %s\n", o->flame_file,
		    strerror(-err));
		return err;
	}
	if (o->stacks_file && (err = pgp_write_stacks(r, o->stacks_file)) < 0) {
		fprintf(stderr, "pygcprofiler: cannot write --stacks-file %s: "
		    "%s\n", o->stacks_file, strerror(-err));
		return err;
	}
	return 0;
}

/* Whether anything prints events or a flame graph: otherwise gcmond
 * streams nothing to us and the report comes from its aggregates. */
static int pgp_needs_watch(const struct pgp_opts *o)
{
	return !o->stats_only || o->term_flame || o->flame_file != NULL;
}

static void pgp_render_start(struct pgp_run *r, const void *unused)
{
	const struct pgp_opts *o = r->o;

	(void)unused;

	if (o->json) {
		watch_json_line(r->out, json_pack("{s:s,s:s,s:o,s:f,s:f,s:b,s:b,"
		    "s:i}", "type", "start", "run", r->run_id, "command",
		    pgp_command_json(o), "alert_threshold_ms", o->alert_ms,
		    "interval_s", o->interval_s, "dump_objects", o->dump_objects,
		    "dump_garbage", o->dump_garbage, "gcmond_pid", (int)r->daemon));
		return;
	}
	fprintf(r->out, "GMEM Monitoring initialized (gcmon agent; run "
	    "%s; alert threshold %.1fms)\n", r->run_id, o->alert_ms);
	if (o->dump_objects)
		fputs("GMEM --dump-objects: each process lists its "
		    "objects by type when it exits\n", r->out);
	if (o->dump_garbage)
		fputs("GMEM --dump-garbage: gc.DEBUG_SAVEALL is set in "
		    "every process; the objects it keeps in gc.garbage (all "
		    "that collections found unreachable) are listed at "
		    "exit\n", r->out);
	fputs("GMEM Running: ", r->out);
	prompt_print_command(r->out, o);
	fputc('\n', r->out);
}

/* The start lines, before the program's own output: one write. */
static void pgp_print_start(struct pgp_run *r)
{
	pgp_print_once(r, pgp_render_start, NULL);
}

/* After the program: report, flame file, exit line; the exit status. */
static int pgp_finish(struct pgp_run *r)
{
	const struct pgp_opts *o = r->o;
	int err, status, st = r->child_status;

	pgp_collect(r);
	if (r->watch_err != 0)
		fprintf(stderr, "pygcprofiler: gcmond's event stream was "
		    "cut: %s (no events shown after it)\n",
		    proto_strerror(r->watch_err));
	/* A program that never ran has no report: the error said why. */
	if (!r->exec_failed)
		pgp_print_report(r);
	if (o->flame_file && (err = flame_write_file(r, o->flame_file)) < 0)
		fprintf(stderr, "pygcprofiler: cannot write --flamegraph-file "
		    "%s: %s\n", o->flame_file, strerror(-err));
	if (o->stacks_file && (err = pgp_write_stacks(r, o->stacks_file)) < 0)
		fprintf(stderr, "pygcprofiler: cannot write --stacks-file %s: "
		    "%s\n", o->stacks_file, strerror(-err));
	status = r->exec_failed ? r->exec_failed : launch_exit_status(st);
	if (o->json)
		watch_json_line(r->out, json_pack("{s:s,s:i,s:o}", "type",
		    "exit", "status", status, "signal", WIFSIGNALED(st) &&
		    !r->exec_failed ? json_integer(WTERMSIG(st)) : json_null()));
	else if (!r->exec_failed && WIFSIGNALED(st))
		fprintf(r->out, "\nGMEM The program was killed by signal %d "
		    "(%s); exit status %d\n", WTERMSIG(st), strsignal(WTERMSIG(st)),
		    status);
	return status;
}

static int pgp_run_embedded(struct pgp_opts *o)
{
	char dir[PATH_MAX], sock[PATH_MAX + 16];
	struct pgp_run r;
	struct timespec ts;
	int status = 1;

	memset(&r, 0, sizeof r);
	r.o = o;
	r.watch_fd = r.ctl_fd = r.ready_fd = -1;
	r.nproc_run = -1;
	r.out = stderr;
	clock_gettime(CLOCK_REALTIME, &ts);
	r.start_real = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (pgp_open_outputs(&r) < 0)
		return CTL_EXIT_USAGE;
	launch_make_run_id(r.run_id, sizeof r.run_id);
	if (launch_private_dir(dir, sizeof dir, sock, sizeof sock) < 0)
		return 1;
	/* gcmond starts while the program does: it serves the watch before
	 * it reads any agent, so nothing is missed. But --live's URL is the
	 * first line, of a dashboard that answers. */
	if (launch_private_daemon(&r, sock, pgp_needs_watch(o)) < 0 ||
	    (o->live && launch_daemon_ready(&r, sock) < 0))
		goto out_stop;
	pgp_print_start(&r);
	if (launch_program(&r, sock) < 0 ||
	    (!o->live && launch_daemon_ready(&r, sock) < 0))
		goto out_stop;
	launch_supervise(&r, stderr);
	status = pgp_finish(&r);
out_stop:
	if (r.watch_fd >= 0)
		ctl_close(r.watch_fd);
	ctl_stream_free(&r.watch);
	launch_end_private(&r, dir, sock);
	json_decref(r.report);
	json_decref(r.stacks);
	json_decref(r.requests);
	json_decref(r.durations);
	free(r.flame);
	if (r.out != stderr && fclose(r.out) != 0)
		fprintf(stderr, "pygcprofiler: writing %s: %s\n", o->log_file,
		    strerror(errno));
	return status;
}

/* What run's script or exec's command must be before anything starts:
 * 0, or the exit status with the reason printed. */
static int pgp_check_program(const struct pgp_opts *o)
{
	char path[PATH_MAX];
	struct stat st;
	int err;

	if (o->exec) {
		if ((err = command_find(o->prog[0], path, sizeof path)) == 0)
			return 0;
		if (err == -ENOENT && strchr(o->prog[0], '/') == NULL)
			fprintf(stderr, "pygcprofiler: exec: %s: command not "
			    "found on PATH (exit status 127)\n", o->prog[0]);
		else
			fprintf(stderr, "pygcprofiler: exec: %s: %s (exit "
			    "status %d)\n", path, err == -EACCES ?
			    "not executable (Permission denied)" : strerror(-err),
			    command_exec_status(err));
		return command_exec_status(err);
	}
	if (o->module || stat(o->prog[0], &st) == 0)
		return 0;
	if (opts_looks_like_module(o->prog[0]))
		fprintf(stderr, "pygcprofiler: Script file not found: %s (to "
		    "run a module or console script, use: pygcprofiler run -m "
		    "%s ... or pygcprofiler exec -- %s ...)\n", o->prog[0],
		    o->prog[0], o->prog[0]);
	else
		fprintf(stderr, "pygcprofiler: Script file not found: %s\n",
		    o->prog[0]);
	return CTL_EXIT_USAGE;
}

/* argv[1..] is "help [run|exec|attach|detach]", "--help" or "-h": which
 * text (0 run, 1 exec, 2 attach, 3 detach), or -1. */
static int pgp_help_topic(int argc, char **argv)
{
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return 0;
	if (strcmp(argv[1], "help") != 0)
		return -1;
	if (argc == 2 || strcmp(argv[2], "run") == 0)
		return 0;
	if (strcmp(argv[2], "attach") == 0)
		return 2;
	if (strcmp(argv[2], "detach") == 0)
		return 3;
	return strcmp(argv[2], "exec") == 0 ? 1 : -1;
}

int main(int argc, char **argv)
{
	struct pgp_opts o;
	char msg[512], sockbuf[PATH_MAX];
	const char *env_sock = getenv("GCMON_SOCKET");
	int r, exec, from_env;

	opts_init(&o);
	if (argc < 2) {
		opts_usage(stderr, 0);
		return CTL_EXIT_USAGE;
	}
	if ((r = pgp_help_topic(argc, argv)) >= 2) {
		opts_attach_usage(stdout, r == 3);
		return 0;
	}
	if (r >= 0) {
		opts_usage(stdout, r);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("pygcprofiler (gcmon) %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "attach") == 0 || strcmp(argv[1], "detach") == 0)
		return attach_main(argc - 2, argv + 2, argv[1][0] == 'd');
	exec = strcmp(argv[1], "exec") == 0;
	if (strcmp(argv[1], "run") != 0 && !exec) {
		fprintf(stderr, "pygcprofiler: unknown command '%s' (expected "
		    "run, exec, attach or detach; see pygcprofiler --help)\n",
		    argv[1]);
		return CTL_EXIT_USAGE;
	}
	r = (exec ? opts_parse_exec : opts_parse_run)(argc - 2, argv + 2, &o,
	    msg, sizeof msg);
	if (r < 0) {
		fprintf(stderr, "pygcprofiler: %s\n", msg);
		return CTL_EXIT_USAGE;
	}
	if (r == PGP_HELP) {
		opts_usage(stdout, exec);
		return 0;
	}
	if (r == PGP_VERSION) {
		printf("pygcprofiler (gcmon) %s\n", PACKAGE_VERSION);
		return 0;
	}
	if ((from_env = o.socket == NULL && env_sock && *env_sock))
		o.socket = env_sock;
	if (o.socket && opts_check_shared(&o, from_env, msg, sizeof msg) < 0) {
		fprintf(stderr, "pygcprofiler: %s\n", msg);
		return CTL_EXIT_USAGE;
	}
	if ((r = pgp_check_program(&o)) != 0)
		return r;
	if (o.socket) {
		if (strlen(o.socket) >= sizeof sockbuf) {
			fprintf(stderr, "pygcprofiler: --socket path too long\n");
			return CTL_EXIT_USAGE;
		}
		return pgp_run_shared(&o, o.socket);
	}
	return pgp_run_embedded(&o);
}
