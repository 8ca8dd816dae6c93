/*
 * gcmond.c: main() of gcmond, the daemon that aggregates the garbage
 * collections of every monitored Python process: options, the pidfile,
 * signals (through the libuv loop: SIGHUP reopens the log, SIGTERM and
 * SIGINT drain and exit 0) and the final summary. Stays in the
 * foreground (systemd style). The only file of daemon/ that prints
 * start-up errors and exits.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "agents.h"
#include "agg.h"
#include "clock.h"
#include "events.h"
#include "http.h"
#include "metrics.h"
#include "mhd_load.h"
#include "log.h"
#include "paths.h"
#include "server.h"
#include "shm.h"

struct gcmond {
	uv_loop_t loop;
	struct srv srv;
	struct events events;
	struct agents agents;
	char agent_dir[PATH_MAX];
	double sample_s;
	struct log log;
	struct agg *agg;
	struct metrics *metrics;
	struct http http;
	struct mhd_api mhd;		/* loaded only to serve HTTP */
	uv_signal_t sig_hup, sig_term, sig_int;
	uv_timer_t tick;
	const char *pidfile;
	int stopping;
};

static int gcmond_parse_double(const char *s, double min, double max,
    double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= min) || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A user or group given as a number; 0, or -EINVAL if s is a name. */
static int gcmond_parse_id(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v >= UINT_MAX ||
	    *s == '-')
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

static int gcmond_parse_uid(const char *s, uid_t *out)
{
	struct passwd *pw;
	unsigned v;

	if (gcmond_parse_id(s, &v) == 0) {
		*out = (uid_t)v;
		return 0;
	}
	if ((pw = getpwnam(s)) == NULL)
		return -ENOENT;
	*out = pw->pw_uid;
	return 0;
}

static int gcmond_parse_gid(const char *s, gid_t *out)
{
	struct group *gr;
	unsigned v;

	if (gcmond_parse_id(s, &v) == 0) {
		*out = (gid_t)v;
		return 0;
	}
	if ((gr = getgrnam(s)) == NULL)
		return -ENOENT;
	*out = gr->gr_gid;
	return 0;
}

static void gcmond_close_handle(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void gcmond_shutdown(struct gcmond *d)
{
	struct agg_totals t;
	struct agg_sum *s;

	if (d->stopping)
		return;
	d->stopping = 1;
	agents_stop(&d->agents);	/* the last records first */
	events_stop(&d->events, (double)clock_mono_ms() / 1e3);
	srv_shutdown(&d->srv);
	http_stop(&d->http);
	events_log_summary(&d->events, 1);
	if (!d->log.quiet && (s = agg_sum_new()) != NULL) {
		agg_sum_host(d->agg, s);
		agg_sum_totals(s, &t);
		fprintf(stderr, "gcmond: exiting: %u processes, %llu "
		    "collections, %llu alerts\n", s->nproc,
		    (unsigned long long)t.collections,
		    (unsigned long long)s->alerts);
		agg_sum_free(s);
	}
	uv_close((uv_handle_t *)&d->tick, NULL);
	uv_close((uv_handle_t *)&d->sig_hup, NULL);
	uv_close((uv_handle_t *)&d->sig_term, NULL);
	uv_close((uv_handle_t *)&d->sig_int, NULL);
}

static void gcmond_on_stop(struct srv *s)
{
	gcmond_shutdown(s->data);
}

static void gcmond_on_signal(uv_signal_t *sig, int signum)
{
	struct gcmond *d = sig->data;
	int err;

	if (signum != SIGHUP) {
		log_info(&d->log, "signal %d: draining and exiting", signum);
		gcmond_shutdown(d);
		return;
	}
	if (d->log.path == NULL)
		return;
	/* logrotate moved the file: write to a new one at the same path. */
	if ((err = log_reopen(&d->log)) < 0)
		log_error(err, "cannot reopen %s", d->log.path);
	else
		log_info(&d->log, "reopened %s", d->log.path);
}

static void gcmond_on_tick(uv_timer_t *t)
{
	struct gcmond *d = t->data;

	srv_tick(&d->srv);
	events_tick(&d->events, (double)clock_mono_ms() / 1e3);
}

static void gcmond_health(void *arg, struct metrics_health *h)
{
	struct gcmond *d = arg;

	srv_health(&d->srv, &h->connections, &h->decode_errors, &h->refused);
	h->areas = d->agents.st.live;
	h->areas_refused = d->agents.st.refused;
	h->areas_broken = d->agents.st.broken;
	h->areas_refused_place = d->agents.st.refused_place;
	h->areas_unseen = d->agents.st.unseen;
}

/* What http.c's /api/... run control.c's handlers with: a local reader
 * with the daemon's own uid (no command over HTTP writes). */
static void gcmond_control_ctx(void *arg, struct control_ctx *ctx)
{
	struct gcmond *d = arg;

	clock_now(d->agg);
	ctx->agg = d->agg;
	ctx->start_real = d->srv.start_real;
	ctx->daemon_pid = getpid();
	ctx->daemon_uid = d->srv.uid;
	ctx->peer_uid = d->srv.uid;
}

/* --http-listen: 0, or 1 after printing why it cannot start. */
static int gcmond_start_http(struct gcmond *d, const char *listen_on,
    const char *opt)
{
	struct sockaddr_storage ss;
	socklen_t sslen;
	char why[512];
	int err;

	if (listen_on == NULL)
		return 0;
	if (mhd_load(&d->mhd, why, sizeof why) < 0) {
		log_errorx("%s: %s", opt, why);
		return 1;
	}
	d->http.api = &d->mhd;
	(void)http_parse_listen(listen_on, &ss, &sslen);	/* checked */
	d->http.agg = d->agg;
	d->http.metrics = d->metrics;
	d->http.health = gcmond_health;
	d->http.health_arg = d;
	d->http.control = gcmond_control_ctx;
	d->http.control_arg = d;
	d->srv.tap = http_sse_push;
	d->srv.tap_arg = &d->http;
	d->srv.tap_clients = &d->http.nsse;
	if ((err = http_start(&d->http, &d->loop, (struct sockaddr *)&ss,
	    sslen)) < 0) {
		log_error(err, "%s: cannot listen on %s", opt, listen_on);
		return 1;
	}
	log_info(&d->log, "serving the dashboard and /metrics on http://%s",
	    listen_on);
	return 0;
}

/* Room for SRV_MAX_CLIENTS connections: raise the soft limit on open
 * files to the hard one; with less, serve fewer clients rather than
 * fail accept(). */
static unsigned gcmond_max_clients(void)
{
	struct rlimit rl;
	rlim_t want = SRV_MAX_CLIENTS + 64;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return SRV_MAX_CLIENTS;
	if (rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		/* Failing leaves the old limit, which the clamp covers. */
		(void)setrlimit(RLIMIT_NOFILE, &rl);
		if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
			return SRV_MAX_CLIENTS;
	}
	if (rl.rlim_cur >= want)
		return SRV_MAX_CLIENTS;
	return rl.rlim_cur > 96 ? (unsigned)(rl.rlim_cur - 64) : 32;
}

/* The agent directory beside the socket (<socket>.d, common/shm.h). */
static int gcmond_start_agents(struct gcmond *d, const char *sock,
    const char **why)
{
	static const struct agents_sink sink = { events_started,
	    events_gc, events_ended, events_drained, NULL, events_request };
	struct agents_sink sk = sink;
	struct agents_config cfg;
	int n;

	n = snprintf(d->agent_dir, sizeof d->agent_dir, "%s%s", sock,
	    SHM_DIR_SUFFIX);
	if (n < 0 || (size_t)n >= sizeof d->agent_dir) {
		*why = "the path is too long";
		return -ENAMETOOLONG;
	}
	memset(&cfg, 0, sizeof cfg);
	cfg.dir = d->agent_dir;
	cfg.allow = &d->srv.cfg.allow;
	cfg.have_gid = d->srv.cfg.have_gid;
	cfg.gid = d->srv.cfg.socket_gid;
	cfg.sample_s = d->sample_s;
	sk.data = &d->events;
	d->srv.agents = &d->agents;
	return agents_start(&d->agents, &d->loop, d->agg, &d->log, &cfg, &sk,
	    why);
}

static int gcmond_write_pidfile(const char *path)
{
	char buf[32];
	int fd, n, err = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n)
		err = -errno;
	if (close(fd) < 0 && err == 0)
		err = -errno;
	return err;
}

/* --ready-fd: the socket listens and every listener is up. A parent
 * that has gone (EPIPE) is no reason to stop serving. */
static void gcmond_say_ready(struct gcmond *d, int fd)
{
	ssize_t n;

	do
		n = write(fd, "R", 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		log_debug(&d->log, "--ready-fd %d: %s", fd, strerror(errno));
	close(fd);	/* nothing to undo if it fails */
}

/* ---- the command line: one table makes getopt_long's and --help ------ */

#define GCMOND_MAX_CLIENT_FDS	4

/* What the command line says, before anything starts. */
struct gcmond_opts {
	struct gcmond *d;		/* the parts of it options fill */
	struct agg_config acfg;
	struct metrics_config mcfg;
	const char *sock, *log_path, *http_on, *http_opt;
	int quiet, verbose, ready_fd;
	int client_fd[GCMOND_MAX_CLIENT_FDS];
	unsigned nclient_fds;
};

struct gcmond_optdef;
typedef void gcmond_set_fn(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg);

struct gcmond_optdef {
	const char *name;		/* without "--" */
	const char *metavar;		/* NULL: takes no value */
	const char *help;		/* its lines; "\n" starts another */
	gcmond_set_fn *set;		/* exits 2 on a bad value */
	double *(*field)(struct gcmond_opts *o);	/* gcmond_set_double's */
	double min, max;
	const char *what;		/* "a number of seconds" */
};

static const struct gcmond_optdef gcmond_optdefs[];

/* --help from the table: the option and its value in 26 columns, then
 * its help, continued 28 columns in. */
static void gcmond_usage(FILE *out)
{
	const struct gcmond_optdef *od;
	const char *h, *nl;
	char opt[64];

	fputs("usage: gcmond [OPTION]...\n"
	    "Collects the garbage collections of monitored Python processes "
	    "(agents)\nand answers gcmonctl and pygcprofiler. Stays in the "
	    "foreground.\n\n", out);
	for (od = gcmond_optdefs; od->name != NULL; od++) {
		snprintf(opt, sizeof opt, "--%s%s%s", od->name,
		    od->metavar != NULL ? " " : "",
		    od->metavar != NULL ? od->metavar : "");
		fprintf(out, strlen(opt) <= 25 ? "  %-25s " : "  %s  ", opt);
		for (h = od->help; (nl = strchr(h, '\n')) != NULL; h = nl + 1)
			fprintf(out, "%.*s\n%28s", (int)(nl - h), h, "");
		fprintf(out, "%s\n", h);
	}
	fputs("\nExit status: 0 after SIGTERM, SIGINT or `gcmonctl stop'; 1 if "
	    "it cannot\nstart (a daemon already listens on the socket, an "
	    "unsafe directory);\n2 for bad options.\n", out);
}

static void gcmond_set_double(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	if (gcmond_parse_double(arg, od->min, od->max, od->field(o)) < 0)
		log_fatalx(2, "--%s: '%s' is not %s (%g to %g)", od->name, arg,
		    od->what, od->min, od->max);
}

static double *gcmond_f_summary(struct gcmond_opts *o)
{
	return &o->d->events.cfg.summary_interval_s;
}

static double *gcmond_f_window(struct gcmond_opts *o)
{
	return &o->d->events.cfg.alerts.window_s;
}

static double *gcmond_f_p99(struct gcmond_opts *o)
{
	return &o->d->events.cfg.alerts.p99_ms;
}

static double *gcmond_f_share(struct gcmond_opts *o)
{
	return &o->d->events.cfg.alerts.gc_share_pct;
}

static double *gcmond_f_gen2(struct gcmond_opts *o)
{
	return &o->d->events.cfg.alerts.gen2_per_min;
}

static double *gcmond_f_outlier(struct gcmond_opts *o)
{
	return &o->d->events.cfg.alerts.outlier_factor;
}

static double *gcmond_f_sample(struct gcmond_opts *o)
{
	return &o->d->sample_s;
}

static void gcmond_set_socket(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	(void)od;
	o->sock = arg;
}

static void gcmond_set_pidfile(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	(void)od;
	o->d->pidfile = arg;
}

static void gcmond_set_log(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	(void)od;
	o->log_path = arg;
}

static void gcmond_set_events(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	static const char *const names[] = { [EVENTS_LOG_ALERTS] = "alerts",
	    [EVENTS_LOG_ALL] = "all", [EVENTS_LOG_NONE] = "none" };
	unsigned i;

	(void)od;
	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(arg, names[i]) == 0) {
			o->d->events.cfg.log_events = (enum events_log)i;
			return;
		}
	log_fatalx(2, "--log-events: '%s' is not all, alerts or none", arg);
}

static void gcmond_set_threshold(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	double v;

	(void)od;
	if (gcmond_parse_double(arg, 0, 3.6e6, &v) < 0)
		log_fatalx(2, "--alert-threshold-ms: '%s' is not a number of "
		    "milliseconds (0 to 3600000)", arg);
	o->acfg.alert_threshold_ns = (uint64_t)(v * 1e6);
}

static void gcmond_set_group(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	(void)od;
	if (gcmond_parse_gid(arg, &o->d->srv.cfg.socket_gid) < 0)
		log_fatalx(2, "--socket-group: no group '%s'", arg);
	o->d->srv.cfg.have_gid = 1;
}

static void gcmond_set_allow_uid(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	struct allow *al = &o->d->srv.cfg.allow;

	(void)od;
	if (al->nuid >= ALLOW_MAX)
		log_fatalx(2, "--allow-uid: at most %u users", ALLOW_MAX);
	if (gcmond_parse_uid(arg, &al->uid[al->nuid]) < 0)
		log_fatalx(2, "--allow-uid: no user '%s'", arg);
	al->nuid++;
}

static void gcmond_set_allow_group(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	struct allow *al = &o->d->srv.cfg.allow;

	(void)od;
	if (al->ngid >= ALLOW_MAX)
		log_fatalx(2, "--allow-group: at most %u groups", ALLOW_MAX);
	if (gcmond_parse_gid(arg, &al->gid[al->ngid]) < 0)
		log_fatalx(2, "--allow-group: no group '%s'", arg);
	al->ngid++;
}

static void gcmond_set_expiry(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	(void)od;
	if (gcmond_parse_double(arg, 0, 1e9, &o->acfg.run_expiry_s) < 0)
		log_fatalx(2, "--run-expiry: '%s' is not a number of seconds",
		    arg);
}

static void gcmond_set_http(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	struct sockaddr_storage ss;
	socklen_t sslen;

	o->http_opt = strcmp(od->name, "http-listen") == 0 ?
	    "--http-listen" : "--metrics-listen";
	if (http_parse_listen(arg, &ss, &sslen) < 0)
		log_fatalx(2, "%s: '%s' is not PORT, ADDR:PORT or [V6ADDR]:PORT "
		    "(port 1 to 65535, a numeric address)", o->http_opt, arg);
	o->http_on = arg;
}

static void gcmond_set_per_process(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	double v;

	(void)od;
	if (gcmond_parse_double(arg, 0, METRICS_PER_PROCESS_MAX, &v) < 0 ||
	    v != (unsigned)v)
		log_fatalx(2, "--metrics-per-process: '%s' is not a whole "
		    "number from 0 to %u", arg, METRICS_PER_PROCESS_MAX);
	o->mcfg.per_process = (unsigned)v;
}

static void gcmond_set_routes(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	double v;

	(void)od;
	if (gcmond_parse_double(arg, 0, METRICS_ROUTES_MAX, &v) < 0 ||
	    v != (unsigned)v)
		log_fatalx(2, "--metrics-routes: '%s' is not a whole number "
		    "from 0 to %u", arg, METRICS_ROUTES_MAX);
	o->mcfg.routes = (unsigned)v;
}

static void gcmond_set_ready(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	double v;

	(void)od;
	if (gcmond_parse_double(arg, 0, INT_MAX, &v) < 0 || v != (int)v ||
	    fcntl((int)v, F_GETFD) < 0)
		log_fatalx(2, "--ready-fd: '%s' is not an open file "
		    "descriptor", arg);
	o->ready_fd = (int)v;
}

static void gcmond_set_client_fd(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	struct stat st;
	double v;

	(void)od;
	if (gcmond_parse_double(arg, 0, INT_MAX, &v) < 0 || v != (int)v ||
	    fstat((int)v, &st) < 0 || !S_ISSOCK(st.st_mode))
		log_fatalx(2, "--client-fd: '%s' is not an open socket", arg);
	if (o->nclient_fds == GCMOND_MAX_CLIENT_FDS)
		log_fatalx(2, "--client-fd: at most %d", GCMOND_MAX_CLIENT_FDS);
	o->client_fd[o->nclient_fds++] = (int)v;
}

static void gcmond_set_quiet(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	(void)od;
	(void)arg;
	o->quiet = 1;
}

static void gcmond_set_verbose(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	(void)od;
	(void)arg;
	o->verbose = 1;
}

static void gcmond_set_help(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	(void)o;
	(void)od;
	(void)arg;
	gcmond_usage(stdout);
	exit(0);
}

static void gcmond_set_version(struct gcmond_opts *o,
    const struct gcmond_optdef *od, const char *arg)
{
	(void)o;
	(void)od;
	(void)arg;
	printf("gcmond %s\n", PACKAGE_VERSION);
	exit(0);
}

#define OPT(name, metavar, help, set) \
	{ name, metavar, help, set, NULL, 0, 0, NULL }
#define OPT_DOUBLE(name, metavar, help, field, min, max, what) \
	{ name, metavar, help, gcmond_set_double, field, min, max, what }

/* Each option once: its value, its help (in --help's order), its parser. */
static const struct gcmond_optdef gcmond_optdefs[] = {
	OPT("socket", "PATH", "listen on PATH (default: $GCMON_SOCKET,\n"
	    "$XDG_RUNTIME_DIR/gcmon.sock,\n/run/gcmon/gcmon.sock for root, "
	    "else\n/tmp/gcmon-UID/gcmon.sock)", gcmond_set_socket),
	OPT("pidfile", "PATH", "write the daemon's pid to PATH",
	    gcmond_set_pidfile),
	OPT("log-file", "PATH", "append JSON lines (collections, alerts,\n"
	    "processes, summaries) to PATH; SIGHUP reopens it", gcmond_set_log),
	OPT("log-events", "WHAT", "what the log carries besides process "
	    "start/end\nand summaries: alerts (default), all (also a\nline per "
	    "collection) or none", gcmond_set_events),
	OPT_DOUBLE("summary-interval", "S", "a summary line every S seconds "
	    "(default 60;\n0: only the final one)", gcmond_f_summary, 0, 86400,
	    "a number of seconds"),
	OPT("alert-threshold-ms", "MS", "alert on pauses longer than MS "
	    "(default " PROTO_STR(PROTO_PAUSE_THRESHOLD_MS) "):\nthe first, "
	    "then a count per --alert-window",
	    gcmond_set_threshold),
	OPT_DOUBLE("alert-window", "S", "window of the alerts below and of the "
	    "pause\nalerts' rate limit (default 60)", gcmond_f_window, 1, 86400,
	    "a number of seconds"),
	OPT_DOUBLE("alert-p99-ms", "MS", "alert when a process's p99 pause over "
	    "the\nwindow is over MS (default 20; 0: off)", gcmond_f_p99, 0,
	    3.6e6, "a number of milliseconds"),
	OPT_DOUBLE("alert-gc-share", "PCT", "alert when GC takes over PCT% of a "
	    "process's\nwall time over the window (default 5; 0: off)",
	    gcmond_f_share, 0, 100, "a percentage"),
	OPT_DOUBLE("alert-gen2-per-min", "N", "alert on over N gen-2 "
	    "collections per minute\nin a process (default 60; 0: off)",
	    gcmond_f_gen2, 0, 1e9, "a number per minute"),
	OPT_DOUBLE("alert-outlier-factor", "F", "alert when a worker's max pause "
	    "is over F times\nthe median of its siblings' (default 3; 0: off)",
	    gcmond_f_outlier, 0, 1e6, "a factor"),
	OPT("socket-group", "GROUP", "make the socket 0660 and owned by GROUP",
	    gcmond_set_group),
	OPT("allow-uid", "UID", "also serve this user (repeatable)",
	    gcmond_set_allow_uid),
	OPT("allow-group", "GROUP", "also serve processes running with this "
	    "group\n(effective or supplementary; repeatable)",
	    gcmond_set_allow_group),
	OPT("run-expiry", "S", "forget a run S seconds after its last process\n"
	    "ended (default 3600)", gcmond_set_expiry),
	OPT("http-listen", "[ADDR:]PORT", "serve the dashboard at "
	    "http://ADDR:PORT/\n(its JSON under /api/, live events at\n"
	    "/api/events) and Prometheus/OpenMetrics at\n/metrics (ADDR: "
	    "127.0.0.1; [::1]:PORT for\nIPv6); off by default", gcmond_set_http),
	OPT("metrics-listen", "[ADDR:]PORT", "the same as --http-listen",
	    gcmond_set_http),
	OPT("metrics-per-process", "N", "also export per-process series (a pid\n"
	    "label) for at most N live processes", gcmond_set_per_process),
	OPT("metrics-routes", "N", "label the request series with route:\n"
	    "the first N routes of each service and role,\nthe rest route "
	    "\"other\" (default 0: no label)", gcmond_set_routes),
	OPT_DOUBLE("sample-interval", "S", "read each process's RSS, CPU time "
	    "and\nsmaps_rollup from /proc every S seconds\n(default 5)",
	    gcmond_f_sample, 0.01, 86400, "a number of seconds"),
	OPT("ready-fd", "N", "once the socket listens, write one byte to file\n"
	    "descriptor N and close it (for a parent that\nstarts gcmond and "
	    "waits for it on a pipe)", gcmond_set_ready),
	OPT("client-fd", "N", "serve the connected socket N (inherited) as a\n"
	    "client, what it holds handled before any agent\nis read "
	    "(repeatable, at most 4)", gcmond_set_client_fd),
	OPT("quiet", NULL, "no alerts or notices on stderr", gcmond_set_quiet),
	OPT("verbose", NULL, "debug lines and a line per collection on stderr",
	    gcmond_set_verbose),
	OPT("help", NULL, "print this help and exit", gcmond_set_help),
	OPT("version", NULL, "print the version and exit", gcmond_set_version),
	OPT(NULL, NULL, NULL, NULL)
};

#define GCMOND_NOPTS	(sizeof gcmond_optdefs / sizeof gcmond_optdefs[0] - 1)

/* The command line into o (exits 2 on a bad one, 0 after --help). */
static void gcmond_parse_args(int argc, char **argv, struct gcmond_opts *o)
{
	static struct option opts[GCMOND_NOPTS + 1];
	unsigned i;
	int c;

	for (i = 0; i < GCMOND_NOPTS; i++) {
		opts[i].name = gcmond_optdefs[i].name;
		opts[i].has_arg = gcmond_optdefs[i].metavar != NULL ?
		    required_argument : no_argument;
		opts[i].val = 256 + (int)i;
	}
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c >= 256 && c < 256 + (int)GCMOND_NOPTS) {
			gcmond_optdefs[c - 256].set(o, &gcmond_optdefs[c - 256],
			    optarg);
			continue;
		}
		if (optopt != 0 && optopt < 256)
			log_errorx("unknown option '-%c'", optopt);
		else
			log_errorx("bad option '%s'", argv[optind - 1]);
		gcmond_usage(stderr);
		exit(2);
	}
	if (optind < argc) {
		log_errorx("unexpected argument '%s'", argv[optind]);
		gcmond_usage(stderr);
		exit(2);
	}
}

/* The defaults, before the command line. */
static void gcmond_defaults(struct gcmond_opts *o)
{
	struct alerts_config *al = &o->d->events.cfg.alerts;

	o->acfg.alert_threshold_ns = PROTO_PAUSE_THRESHOLD_MS * 1000000ull;
	o->acfg.run_expiry_s = 3600;
	o->http_opt = "--http-listen";
	o->ready_fd = -1;
	o->d->events.cfg.summary_interval_s = EVENTS_SUMMARY_DEFAULT_S;
	al->window_s = 60;
	al->p99_ms = 20;
	al->gc_share_pct = 5;
	al->gen2_per_min = 60;
	al->outlier_factor = 3;
}

/* ---- start and stop ---------------------------------------------------- */

/* Signals first: from the moment the socket exists, a SIGTERM must drain
 * and exit 0, not kill us with the socket left behind. */
static void gcmond_start_loop(struct gcmond *d)
{
	int err;

	if ((err = uv_loop_init(&d->loop)) < 0)
		log_fatal(1, err, "cannot start the event loop");
	if ((err = uv_signal_init(&d->loop, &d->sig_hup)) < 0 ||
	    (err = uv_signal_init(&d->loop, &d->sig_term)) < 0 ||
	    (err = uv_signal_init(&d->loop, &d->sig_int)) < 0 ||
	    (err = uv_timer_init(&d->loop, &d->tick)) < 0)
		log_fatal(1, err, "cannot start the event loop");
	d->sig_hup.data = d->sig_term.data = d->sig_int.data = d->tick.data = d;
	if ((err = uv_signal_start(&d->sig_hup, gcmond_on_signal, SIGHUP)) < 0 ||
	    (err = uv_signal_start(&d->sig_term, gcmond_on_signal, SIGTERM)) < 0 ||
	    (err = uv_signal_start(&d->sig_int, gcmond_on_signal, SIGINT)) < 0)
		log_fatal(1, err, "cannot install signal handlers");
}

/* The aggregates, the log and the fan-out of events (exits 1 if out of
 * memory). */
static void gcmond_start_model(struct gcmond *d, struct gcmond_opts *o)
{
	int err;

	d->events.cfg.alerts.threshold_ms =
	    (double)o->acfg.alert_threshold_ns / 1e6;
	log_init(&d->log, o->quiet, o->verbose);
	if (o->log_path != NULL && (err = log_open(&d->log, o->log_path)) < 0)
		log_error(err, "cannot open %s (serving anyway; SIGHUP tries "
		    "again)", o->log_path);
	/* The metrics' totals are kept only where /metrics is served: a
	 * gcmond without HTTP (pygcprofiler's, but with --live) would fold
	 * every ended process into a retired sum for nobody. */
	if ((d->agg = agg_new(&o->acfg)) == NULL || (o->http_on != NULL &&
	    (d->metrics = metrics_new(&o->mcfg)) == NULL))
		log_fatalx(1, "out of memory");
	if (d->metrics != NULL)
		metrics_watch(d->metrics, d->agg);
	clock_now(d->agg);
	if ((err = events_start(&d->events, d->agg, &d->log)) < 0)
		log_fatal(1, err, "cannot start the alerts");
	d->events.broadcast = srv_broadcast;
	d->events.watched = srv_watched;
	d->events.broadcast_gc = srv_broadcast_gc;
	d->events.watched_json = srv_watched_json;
	d->events.ended = srv_process_ended;
	d->events.flush = srv_flush;
	d->events.arg = &d->srv;
}

/* The control socket (exits 1 if it cannot listen). */
static void gcmond_start_socket(struct gcmond *d, const char *sock)
{
	const char *why;
	int err;

	d->srv.cfg.socket_path = sock;
	d->srv.cfg.max_clients = gcmond_max_clients();
	d->srv.on_stop = gcmond_on_stop;
	d->srv.data = d;
	if ((err = srv_start(&d->srv, &d->loop, d->agg, &d->log, &why)) < 0) {
		if (err == -EADDRINUSE)
			log_fatalx(1, "a daemon is already listening on %s", sock);
		if (why != NULL)
			log_fatalx(1, "cannot listen on %s: %s", sock, why);
		log_fatal(1, err, "cannot listen on %s", sock);
	}
}

/* --client-fd: served before the agents start (a watch among them misses
 * no event); one that fails is said and the rest served. */
static void gcmond_adopt_clients(struct gcmond *d, struct gcmond_opts *o)
{
	unsigned i;
	int err;

	for (i = 0; i < o->nclient_fds; i++)
		if ((err = srv_adopt(&d->srv, o->client_fd[i])) < 0)
			log_error(err, "--client-fd %d", o->client_fd[i]);
}

/* Closes what started and runs the loop until every handle is closed. */
static void gcmond_close_all(struct gcmond *d)
{
	uv_walk(&d->loop, gcmond_close_handle, NULL);
	uv_run(&d->loop, UV_RUN_DEFAULT);
}

/* The pidfile, the agents and HTTP: 0, or 1 after saying why not (what
 * started is closed again). */
static int gcmond_start_rest(struct gcmond *d, struct gcmond_opts *o)
{
	const char *why = NULL;
	int err;

	if (d->pidfile != NULL && (err = gcmond_write_pidfile(d->pidfile)) < 0) {
		log_error(err, "cannot write %s", d->pidfile);
		srv_shutdown(&d->srv);
		gcmond_close_all(d);
		return 1;
	}
	if ((err = gcmond_start_agents(d, o->sock, &why)) < 0 ||
	    gcmond_start_http(d, o->http_on, o->http_opt) != 0) {
		if (err < 0 && why != NULL)
			log_errorx("cannot read agents in %s: %s", d->agent_dir,
			    why);
		else if (err < 0)
			log_error(err, "cannot read agents in %s", d->agent_dir);
		agents_stop(&d->agents);
		srv_shutdown(&d->srv);
		gcmond_close_all(d);
		if (d->pidfile != NULL)
			unlink(d->pidfile);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	/* Big (the read buffer): not on the stack. Zero already, and left
	 * untouched until used: each page is a fault at first touch. */
	static struct gcmond d;
	struct gcmond_opts o = { .d = &d };
	char defsock[PATH_MAX];

	gcmond_defaults(&o);
	gcmond_parse_args(argc, argv, &o);
	if (o.sock == NULL &&
	    (o.sock = paths_daemon_socket(defsock, sizeof defsock)) == NULL)
		log_fatalx(2, "the default socket path is too long; use "
		    "--socket PATH");
	signal(SIGPIPE, SIG_IGN);
	gcmond_start_model(&d, &o);
	gcmond_start_loop(&d);
	gcmond_start_socket(&d, o.sock);
	gcmond_adopt_clients(&d, &o);
	if (gcmond_start_rest(&d, &o) != 0)
		return 1;
	/* Fails only for a NULL callback. */
	(void)uv_timer_start(&d.tick, gcmond_on_tick, SRV_TICK_MS, SRV_TICK_MS);
	log_info(&d.log, "gcmond %s listening on %s (pid %d)",
	    PACKAGE_VERSION, o.sock, (int)getpid());
	if (o.ready_fd >= 0)
		gcmond_say_ready(&d, o.ready_fd);

	uv_run(&d.loop, UV_RUN_DEFAULT);

	gcmond_close_all(&d);
	if (uv_loop_close(&d.loop) < 0)
		log_debug(&d.log, "loop closed with handles open");
	if (d.pidfile != NULL)
		unlink(d.pidfile);
	agg_free(d.agg);
	metrics_free(d.metrics);
	log_close(&d.log);
	return 0;
}
