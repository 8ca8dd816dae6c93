/*
 * gcmonctl.c: main() of gcmonctl, the command line client of gcmond: one
 * control request per run (summary, processes, runs, recommendations,
 * stacks, requests, ping, stop), a live stream (watch) or a live view (top, in top.c).
 * Talks through ctl.c, renders
 * human output through report.c and prints --json answers itself. Never
 * changes what the daemon sent.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "report.h"
#include "requests_report.h"
#include "stacks_report.h"
#include "top.h"

#define GCMONCTL_WAKE_MS	1000	/* watch: how often the flag is read */

static volatile sig_atomic_t gcmonctl_interrupted;

static void gcmonctl_usage(FILE *out)
{
	fprintf(out,
"usage: gcmonctl [--socket PATH] [--json] [--timeout S] COMMAND [ARGS]\n"
"Queries gcmond, the daemon that aggregates Python garbage collections.\n"
"\n"
"Commands:\n"
"  summary [--run ID | --pid PID]          totals of the host, a run or a process\n"
"  processes [--run ID]                    one line per process\n"
"  runs                                    one line per run\n"
"  recommendations [--run ID | --pid PID]  what to tune, with the figures\n"
"  stacks [--run ID | --pid PID]           where the pauses land: the Python\n"
"                                          code paths behind gen-2 and long\n"
"                                          collections, by pause and by count\n"
"  requests [--run ID | --pid PID] [--service NAME]\n"
"                                          what GC costs the requests served:\n"
"                                          requests delayed, latency p50-p99.9\n"
"                                          as served and without GC, by route\n"
"                                          and worker, the slowest requests;\n"
"                                          --service: that service's processes\n"
"                                          only (its service_label)\n"
"  watch [--run ID]                        stream collections and alerts\n"
"                                          until interrupted\n"
"  top [--run ID] [--once] [--interval S]  a live view, one row per process\n"
"                                          (keys: g p c m r sort by GC share,\n"
"                                          pid, collections/s, max pause, RSS;\n"
"                                          q quits); --once prints one frame\n"
"  ping                                    check that gcmond answers\n"
"  stop                                    ask gcmond to drain and exit\n"
"\n"
"Options:\n"
"  --socket PATH   gcmond's socket (default: $GCMON_SOCKET; else the one\n"
"                  your own gcmond uses, if it is there: $XDG_RUNTIME_DIR/\n"
"                  gcmon.sock, else /tmp/gcmon-UID/gcmon.sock (root:\n"
"                  /run/gcmon/gcmon.sock); else the host gcmond's,\n"
"                  /run/gcmon/gcmon.sock, if it is there)\n"
"  --json          print the daemon's JSON answer (watch: one object a line)\n"
"  --timeout S     give up waiting for an answer after S seconds (default 10)\n"
"  --interval S    top: seconds between refreshes (default 2)\n"
"  --once          top: print one frame to stdout and exit\n"
"  --help          print this help and exit\n"
"  --version       print the version and exit\n"
"\n"
"Exit status: 0 ok, 1 the daemon answered with an error (or did not\n"
"answer in time), 2 bad usage or bad request, 3 no gcmond at the socket.\n");
}

static int gcmonctl_bad_usage(const char *msg, const char *arg)
{
	fprintf(stderr, "gcmonctl: %s%s%s\n", msg, arg ? " " : "", arg ? arg : "");
	fprintf(stderr, "Try 'gcmonctl --help'.\n");
	return CTL_EXIT_USAGE;
}

static void gcmonctl_on_sigint(int sig)
{
	(void)sig;
	gcmonctl_interrupted = 1;
}

static void gcmonctl_print_json(const json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(15));

	if (s != NULL) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	fflush(stdout);
}

/* Prints an error answer; returns the exit status it means. */
static int gcmonctl_error_answer(const json_t *ans, int json)
{
	const char *code = json_string_value(json_object_get(ans, "code"));
	const char *msg = json_string_value(json_object_get(ans, "error"));

	if (json)
		gcmonctl_print_json(ans);
	fprintf(stderr, "gcmonctl: gcmond: %s\n", msg ? msg : "error");
	return code != NULL && strcmp(code, "bad_request") == 0 ?
	    CTL_EXIT_USAGE : CTL_EXIT_FAILURE;
}

/* A string of o, escaped for the terminal (report_clean); "?" if absent. */
static const char *gcmonctl_clean(char *buf, size_t len, const json_t *o,
    const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return report_clean(buf, len, v != NULL ? v : "?");
}

static void gcmonctl_stream_line(const json_t *o)
{
	const char *type = json_string_value(json_object_get(o, "type"));
	const json_t *p = json_object_get(o, "process");
	char run[256], what[32];

	if (type == NULL)
		return;
	if (strcmp(type, "event") == 0) {
		report_event_line(stdout, o, 1);
	} else if (strcmp(type, "alert") == 0) {
		report_alert_line(stdout, o, 1);
	} else if (strcmp(type, "process_start") == 0 ||
	    strcmp(type, "process_end") == 0) {
		printf("GMEM PID %lld | %s | run %s | %s\n",
		    (long long)json_integer_value(json_object_get(p, "pid")),
		    type[8] == 's' ? "started" : "ended",
		    gcmonctl_clean(run, sizeof run, p, "run"),
		    gcmonctl_clean(what, sizeof what, p,
		    type[8] == 's' ? "role" : "state"));
	} else if (strcmp(type, "lost") == 0) {
		fprintf(stderr, "gcmonctl: %lld objects not shown: this "
		    "terminal fell behind\n",
		    (long long)json_integer_value(json_object_get(o, "events")));
	}
	fflush(stdout);
}

/* Says the daemon did not answer in time; the exit status for it. */
static int gcmonctl_timed_out(const char *sock, double timeout_s)
{
	fprintf(stderr, "gcmonctl: gcmond at %s did not answer within %g s\n",
	    sock, timeout_s);
	return CTL_EXIT_FAILURE;
}

static int gcmonctl_watch(int fd, json_t *req, int json, const char *sock,
    double timeout_s)
{
	struct sigaction sa;
	json_t *ans = NULL, *o;
	int err;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = gcmonctl_on_sigint;	/* no SA_RESTART: poll wakes */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	err = ctl_request(fd, req, &ans, (int)(timeout_s * 1000));
	if (err == -ETIMEDOUT)
		return gcmonctl_timed_out(sock, timeout_s);
	if (err < 0)
		goto out_err;
	if (!json_is_true(json_object_get(ans, "ok"))) {
		err = gcmonctl_error_answer(ans, json);
		json_decref(ans);
		return err;
	}
	json_decref(ans);
	while (!gcmonctl_interrupted) {
		/* A signal landing between the flag test and poll() would
		 * not wake it: wake each second to look at the flag. */
		err = ctl_read(fd, &o, GCMONCTL_WAKE_MS);
		if (err == -EINTR || err == -ETIMEDOUT)
			continue;
		if (err == -ECONNRESET) {
			fprintf(stderr, "gcmonctl: gcmond at %s closed the "
			    "stream\n", sock);
			return CTL_EXIT_OK;
		}
		if (err < 0)
			goto out_err;
		if (json)
			gcmonctl_print_json(o);
		else
			gcmonctl_stream_line(o);
		json_decref(o);
	}
	return CTL_EXIT_OK;
out_err:
	fprintf(stderr, "gcmonctl: %s: %s\n", sock, strerror(-err));
	return CTL_EXIT_FAILURE;
}

static void gcmonctl_human(const char *cmd, const json_t *ans)
{
	struct report_opts o;
	const json_t *sum;

	if (strcmp(cmd, "summary") == 0) {
		memset(&o, 0, sizeof o);
		sum = json_object_get(ans, "summary");
		o.alert_threshold_ms = json_number_value(
		    json_object_get(sum, "alert_threshold_ms"));
		report_summary(stdout, sum, NULL, NULL, &o);
	} else if (strcmp(cmd, "processes") == 0) {
		report_processes_table(stdout, json_object_get(ans, "processes"));
	} else if (strcmp(cmd, "runs") == 0) {
		report_runs_table(stdout, json_object_get(ans, "runs"));
	} else if (strcmp(cmd, "recommendations") == 0) {
		report_recommendations(stdout,
		    json_object_get(ans, "recommendations"));
	} else if (strcmp(cmd, "stacks") == 0) {
		stacks_report(stdout, json_object_get(ans, "stacks"), 0);
	} else if (strcmp(cmd, "requests") == 0) {
		report_requests(stdout, json_object_get(ans, "requests"));
	} else if (strcmp(cmd, "ping") == 0) {
		printf("gcmond %s, pid %lld, up %.0f s, %lld live processes, "
		    "%lld runs\n",
		    json_string_value(json_object_get(ans, "version")) ?
		    json_string_value(json_object_get(ans, "version")) : "?",
		    (long long)json_integer_value(json_object_get(ans, "pid")),
		    json_number_value(json_object_get(ans, "uptime_s")),
		    (long long)json_integer_value(json_object_get(ans,
		    "processes")),
		    (long long)json_integer_value(json_object_get(ans, "runs")));
	} else if (strcmp(cmd, "stop") == 0) {
		printf("gcmond is stopping\n");
	}
}

struct gcmonctl_args {
	const char *sock, *cmd, *run, *pid_arg, *service;
	double timeout_s, interval_s;
	long long pid;
	int json, once;
};

/* The value of a --socket/--timeout/--run/--pid/--interval/--service
 * option (row k of with_arg). */
static int gcmonctl_set(struct gcmonctl_args *g, int k, const char *val)
{
	char *end;

	errno = 0;
	if (k == 0) {
		g->sock = val;
	} else if (k == 1) {
		g->timeout_s = strtod(val, &end);
		if (errno || end == val || *end != '\0' ||
		    !(g->timeout_s > 0) || g->timeout_s > 86400)
			return gcmonctl_bad_usage("--timeout needs seconds "
			    "(above 0, at most 86400), not", val);
	} else if (k == 2) {
		g->run = val;
	} else if (k == 5) {
		if (*val == '\0')
			return gcmonctl_bad_usage("--service needs a name, not",
			    "\"\"");
		g->service = val;
	} else if (k == 4) {
		g->interval_s = strtod(val, &end);
		if (errno || end == val || *end != '\0' ||
		    !(g->interval_s >= 0.1) || g->interval_s > 3600)
			return gcmonctl_bad_usage("--interval needs seconds "
			    "(0.1 to 3600), not", val);
	} else {
		g->pid_arg = val;
		g->pid = strtoll(val, &end, 10);
		if (errno || end == val || *end != '\0' || g->pid <= 0 ||
		    g->pid > INT_MAX)
			return gcmonctl_bad_usage("--pid needs a process id, not",
			    val);
	}
	return -1;
}

/* The command line into g. -1 to go on, else the exit status. */
static int gcmonctl_parse(int argc, char **argv, struct gcmonctl_args *g)
{
	static const char *const cmds[] = { "summary", "processes", "runs",
	    "recommendations", "watch", "top", "ping", "stop", "stacks", "requests", NULL };
	static const char *const with_arg[] = { "--socket", "--timeout",
	    "--run", "--pid", "--interval", "--service", NULL };
	int i, k, rc;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		size_t n = strcspn(a, "=");

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			gcmonctl_usage(stdout);
			return CTL_EXIT_OK;
		}
		if (strcmp(a, "--version") == 0) {
			printf("gcmonctl %s\n", PACKAGE_VERSION);
			return CTL_EXIT_OK;
		}
		if (strcmp(a, "--json") == 0) {
			g->json = 1;
			continue;
		}
		if (strcmp(a, "--once") == 0) {
			g->once = 1;
			continue;
		}
		if (strncmp(a, "--", 2) == 0) {
			for (k = 0; with_arg[k] != NULL; k++)
				if (strlen(with_arg[k]) == n &&
				    strncmp(a, with_arg[k], n) == 0)
					break;
			if (with_arg[k] == NULL)
				return gcmonctl_bad_usage("unknown option", a);
			if (a[n] != '=' && i + 1 >= argc)
				return gcmonctl_bad_usage("missing value for", a);
			rc = gcmonctl_set(g, k, a[n] == '=' ? a + n + 1 : argv[++i]);
			if (rc >= 0)
				return rc;
			continue;
		}
		if (g->cmd != NULL)
			return gcmonctl_bad_usage("unexpected argument", a);
		for (k = 0; cmds[k] != NULL; k++)
			if (strcmp(a, cmds[k]) == 0)
				break;
		if (cmds[k] == NULL)
			return gcmonctl_bad_usage("unknown command", a);
		g->cmd = a;
	}
	return -1;
}

/* What no single option can check. -1 to go on, else the exit status. */
static int gcmonctl_check(struct gcmonctl_args *g, char *defsock, size_t len)
{
	const char *cmd = g->cmd;

	if (cmd == NULL)
		return gcmonctl_bad_usage("a command is needed", NULL);
	if (g->run != NULL && g->pid_arg != NULL)
		return gcmonctl_bad_usage("give --run or --pid, not both", NULL);
	if (g->pid_arg != NULL && strcmp(cmd, "summary") != 0 &&
	    strcmp(cmd, "recommendations") != 0 && strcmp(cmd, "stacks") != 0 &&
	    strcmp(cmd, "requests") != 0)
		return gcmonctl_bad_usage("--pid does not apply to", cmd);
	if (g->run != NULL && strcmp(cmd, "summary") != 0 &&
	    strcmp(cmd, "recommendations") != 0 &&
	    strcmp(cmd, "processes") != 0 && strcmp(cmd, "watch") != 0 &&
	    strcmp(cmd, "top") != 0 && strcmp(cmd, "stacks") != 0 &&
	    strcmp(cmd, "requests") != 0)
		return gcmonctl_bad_usage("--run does not apply to", cmd);
	if (g->service != NULL && strcmp(cmd, "requests") != 0)
		return gcmonctl_bad_usage("--service does not apply to", cmd);
	if (g->service != NULL && g->pid_arg != NULL)
		return gcmonctl_bad_usage("a process is of one service: give "
		    "--service alone or with --run, not with --pid", NULL);
	if ((g->once || g->interval_s > 0) && strcmp(cmd, "top") != 0)
		return gcmonctl_bad_usage(g->once ? "--once does not apply to" :
		    "--interval does not apply to", cmd);
	if (g->json && strcmp(cmd, "top") == 0)
		return gcmonctl_bad_usage("--json does not apply to top (use "
		    "processes --json)", NULL);
	if (g->sock == NULL &&
	    (g->sock = ctl_default_socket(defsock, len)) == NULL)
		return gcmonctl_bad_usage("the default socket path is too long;"
		    " use --socket PATH", NULL);
	return -1;
}

/* Connects to g->sock; the exit status when that fails, else -1. */
static int gcmonctl_connect(const struct gcmonctl_args *g, int *fd)
{
	const char *sock = g->sock;
	int err = ctl_connect(sock, fd);

	if (err == 0)
		return -1;
	if (err == -ENOENT || err == -ECONNREFUSED) {
		fprintf(stderr, "gcmonctl: no gcmond at %s (start one: "
		    "gcmond --socket %s)\n", sock, sock);
		return CTL_EXIT_NO_DAEMON;
	}
	fprintf(stderr, "gcmonctl: cannot connect to %s: %s\n", sock,
	    strerror(-err));
	return err == -ENAMETOOLONG ? CTL_EXIT_USAGE :
	    err == -EACCES ? CTL_EXIT_FAILURE : CTL_EXIT_NO_DAEMON;
}

/* One request, its answer printed; the exit status. Takes req. */
static int gcmonctl_request(const struct gcmonctl_args *g, int fd, json_t *req)
{
	json_t *ans = NULL;
	int err, rc;

	err = ctl_request(fd, req, &ans, (int)(g->timeout_s * 1000));
	json_decref(req);
	ctl_close(fd);
	if (err == -ETIMEDOUT)
		return gcmonctl_timed_out(g->sock, g->timeout_s);
	if (err < 0) {
		fprintf(stderr, "gcmonctl: %s: %s\n", g->sock,
		    err == -ECONNRESET ? "gcmond closed the connection (is "
		    "this user allowed? see gcmond --allow-uid)" :
		    strerror(-err));
		return CTL_EXIT_FAILURE;
	}
	if (!json_is_true(json_object_get(ans, "ok"))) {
		rc = gcmonctl_error_answer(ans, g->json);
		json_decref(ans);
		return rc;
	}
	if (g->json)
		gcmonctl_print_json(ans);
	else
		gcmonctl_human(g->cmd, ans);
	json_decref(ans);
	return CTL_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct gcmonctl_args g = { .timeout_s = 10 };
	char defsock[PATH_MAX];
	json_t *req;
	int fd, rc;

	if ((rc = gcmonctl_parse(argc, argv, &g)) >= 0 ||
	    (rc = gcmonctl_check(&g, defsock, sizeof defsock)) >= 0)
		return rc;
	if (strcmp(g.cmd, "top") == 0) {
		struct top_args ta = { .sock = g.sock, .run = g.run,
		    .interval_s = g.interval_s > 0 ? g.interval_s : 2,
		    .timeout_s = g.timeout_s, .once = g.once };

		signal(SIGPIPE, SIG_IGN);
		return top_main(&ta);
	}
	if ((req = json_pack("{s:s}", "cmd", g.cmd)) == NULL) {
		fprintf(stderr, "gcmonctl: out of memory\n");
		return CTL_EXIT_FAILURE;
	}
	if (g.run != NULL)
		json_object_set_new(req, "run", json_string(g.run));
	if (g.pid_arg != NULL)
		json_object_set_new(req, "pid", json_integer(g.pid));
	if (g.service != NULL)
		json_object_set_new(req, "service", json_string(g.service));
	if ((rc = gcmonctl_connect(&g, &fd)) >= 0) {
		json_decref(req);
		return rc;
	}
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(g.cmd, "watch") == 0) {
		rc = gcmonctl_watch(fd, req, g.json, g.sock, g.timeout_s);
		json_decref(req);
		ctl_close(fd);
		return rc;
	}
	return gcmonctl_request(&g, fd, req);
}
