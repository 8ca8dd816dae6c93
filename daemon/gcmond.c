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
	uv_signal_t sig_hup, sig_term, sig_int;
	uv_timer_t tick;
	const char *pidfile;
	int stopping;
};

static void gcmond_usage(FILE *out)
{
	fprintf(out,
"usage: gcmond [OPTION]...\n"
"Collects the garbage collections of monitored Python processes (agents)\n"
"and answers gcmonctl and pygcprofiler. Stays in the foreground.\n"
"\n"
"  --socket PATH             listen on PATH (default: $GCMON_SOCKET,\n"
"                            $XDG_RUNTIME_DIR/gcmon.sock,\n"
"                            /run/gcmon/gcmon.sock for root, else\n"
"                            /tmp/gcmon-UID/gcmon.sock)\n"
"  --pidfile PATH            write the daemon's pid to PATH\n"
"  --log-file PATH           append JSON lines (collections, alerts,\n"
"                            processes, summaries) to PATH; SIGHUP reopens it\n"
"  --log-events WHAT         what the log carries besides process start/end\n"
"                            and summaries: alerts (default), all (also a\n"
"                            line per collection) or none\n"
"  --summary-interval S      a summary line every S seconds (default 60;\n"
"                            0: only the final one)\n"
"  --alert-threshold-ms MS   alert on pauses longer than MS (default 50):\n"
"                            the first, then a count per --alert-window\n"
"  --alert-window S          window of the alerts below and of the pause\n"
"                            alerts' rate limit (default 60)\n"
"  --alert-p99-ms MS         alert when a process's p99 pause over the\n"
"                            window is over MS (default 20; 0: off)\n"
"  --alert-gc-share PCT      alert when GC takes over PCT%% of a process's\n"
"                            wall time over the window (default 5; 0: off)\n"
"  --alert-gen2-per-min N    alert on over N gen-2 collections per minute\n"
"                            in a process (default 60; 0: off)\n"
"  --alert-outlier-factor F  alert when a worker's max pause is over F times\n"
"                            the median of its siblings' (default 3; 0: off)\n"
"  --socket-group GROUP      make the socket 0660 and owned by GROUP\n"
"  --allow-uid UID           also serve this user (repeatable)\n"
"  --allow-group GROUP       also serve processes running with this group\n"
"                            (effective or supplementary; repeatable)\n"
"  --run-expiry S            forget a run S seconds after its last process\n"
"                            ended (default 3600)\n"
"  --http-listen [ADDR:]PORT serve the dashboard at http://ADDR:PORT/\n"
"                            (its JSON under /api/, live events at\n"
"                            /api/events) and Prometheus/OpenMetrics at\n"
"                            /metrics (ADDR: 127.0.0.1; [::1]:PORT for\n"
"                            IPv6); off by default\n"
"  --metrics-listen [ADDR:]PORT  the same as --http-listen\n"
"  --metrics-per-process N   also export per-process series (a pid\n"
"                            label) for at most N live processes\n"
"  --sample-interval S       read each process's RSS, CPU time and\n"
"                            smaps_rollup from /proc every S seconds\n"
"                            (default 5)\n"
"  --ready-fd N              once the socket listens, write one byte to file\n"
"                            descriptor N and close it (for a parent that\n"
"                            starts gcmond and waits for it on a pipe)\n"
"  --quiet                   no alerts or notices on stderr\n"
"  --verbose                 debug lines and a line per collection on stderr\n"
"  --help                    print this help and exit\n"
"  --version                 print the version and exit\n"
"\n"
"Exit status: 0 after SIGTERM, SIGINT or `gcmonctl stop'; 1 if it cannot\n"
"start (a daemon already listens on the socket, an unsafe directory);\n"
"2 for bad options.\n");
}

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

/* A number option; prints what was wrong. 0, or -EINVAL. */
static int gcmond_opt_double(const char *opt, const char *arg, double min,
    double max, const char *what, double *out)
{
	if (gcmond_parse_double(arg, min, max, out) == 0)
		return 0;
	log_errorx("--%s: '%s' is not %s (%g to %g)", opt, arg, what, min,
	    max);
	return -EINVAL;
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
		free(s);
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
	int err;

	if (listen_on == NULL)
		return 0;
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

int main(int argc, char **argv)
{
	enum { OPT_SOCKET = 256, OPT_PIDFILE, OPT_LOG, OPT_ALERT, OPT_GROUP,
	    OPT_ALLOW, OPT_EXPIRY, OPT_SAMPLE, OPT_QUIET, OPT_VERBOSE, OPT_HELP,
	    OPT_VERSION, OPT_METRICS, OPT_HTTP, OPT_PER_PROCESS, OPT_EVENTS, OPT_SUMMARY,
	    OPT_WINDOW, OPT_P99, OPT_SHARE, OPT_GEN2, OPT_OUTLIER, OPT_READY,
	    OPT_ALLOW_GROUP };
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, OPT_SOCKET },
		{ "pidfile", required_argument, NULL, OPT_PIDFILE },
		{ "log-file", required_argument, NULL, OPT_LOG },
		{ "alert-threshold-ms", required_argument, NULL, OPT_ALERT },
		{ "log-events", required_argument, NULL, OPT_EVENTS },
		{ "summary-interval", required_argument, NULL, OPT_SUMMARY },
		{ "alert-window", required_argument, NULL, OPT_WINDOW },
		{ "alert-p99-ms", required_argument, NULL, OPT_P99 },
		{ "alert-gc-share", required_argument, NULL, OPT_SHARE },
		{ "alert-gen2-per-min", required_argument, NULL, OPT_GEN2 },
		{ "alert-outlier-factor", required_argument, NULL, OPT_OUTLIER },
		{ "socket-group", required_argument, NULL, OPT_GROUP },
		{ "allow-uid", required_argument, NULL, OPT_ALLOW },
		{ "allow-group", required_argument, NULL, OPT_ALLOW_GROUP },
		{ "run-expiry", required_argument, NULL, OPT_EXPIRY },
		{ "metrics-listen", required_argument, NULL, OPT_METRICS },
		{ "http-listen", required_argument, NULL, OPT_HTTP },
		{ "metrics-per-process", required_argument, NULL,
		    OPT_PER_PROCESS },
		{ "sample-interval", required_argument, NULL, OPT_SAMPLE },
		{ "ready-fd", required_argument, NULL, OPT_READY },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "verbose", no_argument, NULL, OPT_VERBOSE },
		{ "help", no_argument, NULL, OPT_HELP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 }
	};
	static struct gcmond d;	/* big (the read buffer): not on the stack */
	struct agg_config acfg = { .alert_threshold_ns = 50000000,
	    .run_expiry_s = 3600 };
	const char *sock = NULL, *log_path = NULL, *why, *metrics_on = NULL;
	const char *http_opt = "--http-listen";
	struct metrics_config mcfg = { 0 };
	struct sockaddr_storage ss;
	socklen_t sslen;
	char defsock[PATH_MAX];
	struct alerts_config *al = &d.events.cfg.alerts;
	struct allow *allowed = &d.srv.cfg.allow;
	int quiet = 0, verbose = 0, ready_fd = -1, c, err;
	double v;

	memset(&d.srv, 0, sizeof d.srv);
	d.events.cfg.summary_interval_s = EVENTS_SUMMARY_DEFAULT_S;
	al->window_s = 60;
	al->p99_ms = 20;
	al->gc_share_pct = 5;
	al->gen2_per_min = 60;
	al->outlier_factor = 3;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_SOCKET:
			sock = optarg;
			break;
		case OPT_PIDFILE:
			d.pidfile = optarg;
			break;
		case OPT_LOG:
			log_path = optarg;
			break;
		case OPT_ALERT:
			if (gcmond_parse_double(optarg, 0, 3.6e6, &v) < 0)
				log_fatalx(2, "--alert-threshold-ms: '%s' is not "
				    "a number of milliseconds (0 to 3600000)",
				    optarg);
			acfg.alert_threshold_ns = (uint64_t)(v * 1e6);
			break;
		case OPT_EVENTS:
			if (strcmp(optarg, "all") == 0)
				d.events.cfg.log_events = EVENTS_LOG_ALL;
			else if (strcmp(optarg, "alerts") == 0)
				d.events.cfg.log_events = EVENTS_LOG_ALERTS;
			else if (strcmp(optarg, "none") == 0)
				d.events.cfg.log_events = EVENTS_LOG_NONE;
			else
				log_fatalx(2, "--log-events: '%s' is not all, "
				    "alerts or none", optarg);
			break;
		case OPT_SUMMARY:
			if (gcmond_opt_double("summary-interval", optarg, 0,
			    86400, "a number of seconds",
			    &d.events.cfg.summary_interval_s) < 0)
				return 2;
			break;
		case OPT_WINDOW:
			if (gcmond_opt_double("alert-window", optarg, 1, 86400,
			    "a number of seconds", &al->window_s) < 0)
				return 2;
			break;
		case OPT_P99:
			if (gcmond_opt_double("alert-p99-ms", optarg, 0, 3.6e6,
			    "a number of milliseconds", &al->p99_ms) < 0)
				return 2;
			break;
		case OPT_SHARE:
			if (gcmond_opt_double("alert-gc-share", optarg, 0, 100,
			    "a percentage", &al->gc_share_pct) < 0)
				return 2;
			break;
		case OPT_GEN2:
			if (gcmond_opt_double("alert-gen2-per-min", optarg, 0,
			    1e9, "a number per minute", &al->gen2_per_min) < 0)
				return 2;
			break;
		case OPT_OUTLIER:
			if (gcmond_opt_double("alert-outlier-factor", optarg, 0,
			    1e6, "a factor", &al->outlier_factor) < 0)
				return 2;
			break;
		case OPT_GROUP:
			if (gcmond_parse_gid(optarg, &d.srv.cfg.socket_gid) < 0)
				log_fatalx(2, "--socket-group: no group '%s'",
				    optarg);
			d.srv.cfg.have_gid = 1;
			break;
		case OPT_ALLOW:
			if (allowed->nuid >= ALLOW_MAX)
				log_fatalx(2, "--allow-uid: at most %u users",
				    ALLOW_MAX);
			if (gcmond_parse_uid(optarg,
			    &allowed->uid[allowed->nuid]) < 0)
				log_fatalx(2, "--allow-uid: no user '%s'", optarg);
			allowed->nuid++;
			break;
		case OPT_ALLOW_GROUP:
			if (allowed->ngid >= ALLOW_MAX)
				log_fatalx(2, "--allow-group: at most %u groups",
				    ALLOW_MAX);
			if (gcmond_parse_gid(optarg,
			    &allowed->gid[allowed->ngid]) < 0)
				log_fatalx(2, "--allow-group: no group '%s'",
				    optarg);
			allowed->ngid++;
			break;
		case OPT_EXPIRY:
			if (gcmond_parse_double(optarg, 0, 1e9, &v) < 0)
				log_fatalx(2, "--run-expiry: '%s' is not a number "
				    "of seconds", optarg);
			acfg.run_expiry_s = v;
			break;
		case OPT_METRICS:
		case OPT_HTTP:
			http_opt = c == OPT_HTTP ? "--http-listen" :
			    "--metrics-listen";
			if (http_parse_listen(optarg, &ss, &sslen) < 0)
				log_fatalx(2, "%s: '%s' is not PORT, "
				    "ADDR:PORT or [V6ADDR]:PORT (port 1 to 65535, "
				    "a numeric address)", http_opt, optarg);
			metrics_on = optarg;
			break;
		case OPT_PER_PROCESS:
			if (gcmond_parse_double(optarg, 0,
			    METRICS_PER_PROCESS_MAX, &v) < 0 || v != (unsigned)v)
				log_fatalx(2, "--metrics-per-process: '%s' is not "
				    "a whole number from 0 to %u", optarg,
				    METRICS_PER_PROCESS_MAX);
			mcfg.per_process = (unsigned)v;
			break;
		case OPT_SAMPLE:
			if (gcmond_opt_double("sample-interval", optarg, 0.01,
			    86400, "a number of seconds", &d.sample_s) < 0)
				return 2;
			break;
		case OPT_READY:
			if (gcmond_parse_double(optarg, 0, INT_MAX, &v) < 0 ||
			    v != (int)v || fcntl((int)v, F_GETFD) < 0)
				log_fatalx(2, "--ready-fd: '%s' is not an open file "
				    "descriptor", optarg);
			ready_fd = (int)v;
			break;
		case OPT_QUIET:
			quiet = 1;
			break;
		case OPT_VERBOSE:
			verbose = 1;
			break;
		case OPT_HELP:
			gcmond_usage(stdout);
			return 0;
		case OPT_VERSION:
			printf("gcmond %s\n", PACKAGE_VERSION);
			return 0;
		default:
			if (optopt != 0 && optopt < 256)
				log_errorx("unknown option '-%c'", optopt);
			else
				log_errorx("bad option '%s'", argv[optind - 1]);
			gcmond_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		log_errorx("unexpected argument '%s'", argv[optind]);
		gcmond_usage(stderr);
		return 2;
	}
	if (sock == NULL &&
	    (sock = paths_daemon_socket(defsock, sizeof defsock)) == NULL)
		log_fatalx(2, "the default socket path is too long; use "
		    "--socket PATH");
	al->threshold_ms = (double)acfg.alert_threshold_ns / 1e6;
	signal(SIGPIPE, SIG_IGN);
	log_init(&d.log, quiet, verbose);
	if (log_path != NULL && (err = log_open(&d.log, log_path)) < 0)
		log_error(err, "cannot open %s (serving anyway; SIGHUP tries "
		    "again)", log_path);
	if ((d.agg = agg_new(&acfg)) == NULL ||
	    (d.metrics = metrics_new(&mcfg)) == NULL)
		log_fatalx(1, "out of memory");
	metrics_watch(d.metrics, d.agg);
	if ((err = uv_loop_init(&d.loop)) < 0)
		log_fatal(1, err, "cannot start the event loop");
	/* Signals first: from the moment the socket exists, a SIGTERM
	 * must drain and exit 0, not kill us with the socket left behind. */
	if ((err = uv_signal_init(&d.loop, &d.sig_hup)) < 0 ||
	    (err = uv_signal_init(&d.loop, &d.sig_term)) < 0 ||
	    (err = uv_signal_init(&d.loop, &d.sig_int)) < 0 ||
	    (err = uv_timer_init(&d.loop, &d.tick)) < 0)
		log_fatal(1, err, "cannot start the event loop");
	d.sig_hup.data = d.sig_term.data = d.sig_int.data = d.tick.data = &d;
	if ((err = uv_signal_start(&d.sig_hup, gcmond_on_signal, SIGHUP)) < 0 ||
	    (err = uv_signal_start(&d.sig_term, gcmond_on_signal, SIGTERM)) < 0 ||
	    (err = uv_signal_start(&d.sig_int, gcmond_on_signal, SIGINT)) < 0)
		log_fatal(1, err, "cannot install signal handlers");
	clock_now(d.agg);
	if ((err = events_start(&d.events, d.agg, &d.log)) < 0)
		log_fatal(1, err, "cannot start the alerts");
	d.events.broadcast = srv_broadcast;
	d.events.watched = srv_watched;
	d.events.ended = srv_process_ended;
	d.events.arg = &d.srv;
	d.srv.cfg.socket_path = sock;
	d.srv.cfg.max_clients = gcmond_max_clients();
	d.srv.on_stop = gcmond_on_stop;
	d.srv.data = &d;
	if ((err = srv_start(&d.srv, &d.loop, d.agg, &d.log, &why)) < 0) {
		if (err == -EADDRINUSE)
			log_fatalx(1, "a daemon is already listening on %s", sock);
		if (why != NULL)
			log_fatalx(1, "cannot listen on %s: %s", sock, why);
		log_fatal(1, err, "cannot listen on %s", sock);
	}
	if (d.pidfile != NULL && (err = gcmond_write_pidfile(d.pidfile)) < 0) {
		log_error(err, "cannot write %s", d.pidfile);
		srv_shutdown(&d.srv);
		uv_walk(&d.loop, gcmond_close_handle, NULL);
		uv_run(&d.loop, UV_RUN_DEFAULT);
		return 1;
	}
	if ((err = gcmond_start_agents(&d, sock, &why)) < 0 ||
	    gcmond_start_http(&d, metrics_on, http_opt) != 0) {
		if (err < 0 && why != NULL)
			log_errorx("cannot read agents in %s: %s", d.agent_dir,
			    why);
		else if (err < 0)
			log_error(err, "cannot read agents in %s", d.agent_dir);
		agents_stop(&d.agents);
		srv_shutdown(&d.srv);
		uv_walk(&d.loop, gcmond_close_handle, NULL);
		uv_run(&d.loop, UV_RUN_DEFAULT);
		if (d.pidfile != NULL)
			unlink(d.pidfile);
		return 1;
	}
	/* Fails only for a NULL callback. */
	(void)uv_timer_start(&d.tick, gcmond_on_tick, SRV_TICK_MS, SRV_TICK_MS);
	log_info(&d.log, "gcmond %s listening on %s (pid %d)",
	    PACKAGE_VERSION, sock, (int)getpid());
	if (ready_fd >= 0)
		gcmond_say_ready(&d, ready_fd);

	uv_run(&d.loop, UV_RUN_DEFAULT);

	uv_walk(&d.loop, gcmond_close_handle, NULL);
	uv_run(&d.loop, UV_RUN_DEFAULT);
	if (uv_loop_close(&d.loop) < 0)
		log_debug(&d.log, "loop closed with handles open");
	if (d.pidfile != NULL)
		unlink(d.pidfile);
	agg_free(d.agg);
	metrics_free(d.metrics);
	log_close(&d.log);
	return 0;
}
