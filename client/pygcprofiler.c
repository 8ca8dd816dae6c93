/*
 * pygcprofiler.c: the launcher users type, `pygcprofiler run [options]
 * script.py|-m module [args...]` (also installed as gc-monitor). In
 * embedded mode it starts a private gcmond, runs the program with the
 * agent on PYTHONPATH, streams the run's events, and prints the report of
 * every process of the run when the program ends; in shared mode it only
 * points the agent at a running gcmond. Talks to gcmond through ctl.c,
 * renders through report.c. It must never touch the program's stdout,
 * argv, cwd or stdin, and never outlive or hide the program's exit status.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "protocol.h"
#include "report.h"

#define PGP_MAX_BUCKETS		32
#define PGP_MAX_GEN		PROTO_MAX_GEN
#define PGP_PING_TIMEOUT_MS	10000	/* gcmond start-up */
#define PGP_WAIT_TIMEOUT_MS	5000	/* last batches after the program ends */
#define PGP_DRAIN_MS		300	/* watch quiet this long: drained */
#define PGP_POLL_MS		200
#define PGP_MAX_FLAME_ROWS	20000	/* x 2 KiB; 27 h of 5 s buckets */

struct pgp_opts {
	double interval_s;
	int json;
	int stats_only;
	int dump_objects;
	int dump_garbage;
	const char *log_file;
	double alert_ms;
	const char *flame_file;
	double flame_bucket_s;
	int term_flame;
	long term_width;
	int term_color;
	double buckets[PGP_MAX_BUCKETS];
	size_t nbuckets;
	int prompt;
	const char *socket;
	const char *python;
	int module;		/* prog[0] is a module name */
	char **prog;		/* script or module, then its arguments */
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
	int child_status;
	int child_done;
	int exec_failed;
	int watch_fd;
	int ctl_fd;
	/* From the event stream. */
	pid_t pids[64];
	size_t npids;			/* distinct processes seen, capped */
	unsigned long long nevents;
	unsigned long long lost;
	unsigned long long dur_count[PGP_MAX_BUCKETS + 1];
	struct pgp_flame_row *flame;
	size_t nflame;
	unsigned long long flame_skipped;	/* beyond PGP_MAX_FLAME_ROWS */
	unsigned ngen_seen;
	json_t *report;			/* the daemon's `report` answer */
	char report_err[256];		/* why there is none */
	char agent_dir[PATH_MAX];
	json_t *thresholds;		/* borrowed from report */
};

static volatile sig_atomic_t pgp_sig_pending[NSIG];
static volatile sig_atomic_t pgp_sig_any;
static volatile sig_atomic_t pgp_sigchld;

static const char *const pgp_usage_text =
"Usage: pygcprofiler run [options] script.py [script args...]\n"
"       pygcprofiler run [options] -m module [module args...]\n"
"       pygcprofiler help run | --help | --version\n"
"\n"
"Runs a Python program and reports every garbage collection of every\n"
"Python process it starts (forked workers and exec'd interpreters too).\n"
"Every option comes before the script or -m; what follows is the program's.\n"
"\n"
"Options (--opt VALUE or --opt=VALUE):\n"
"  --interval S                  RSS/CPU snapshot interval in seconds (5.0)\n"
"  --json                        JSON objects, one per line, instead of text\n"
"  --stats-only                  no per-collection lines, only the report\n"
"  --dump-objects                object counts by type at each process's exit\n"
"  --dump-garbage                list uncollectable objects (sets DEBUG_SAVEALL)\n"
"  --log-file PATH               write the output to PATH (mode 0600)\n"
"  --alert-threshold-ms MS       alert on pauses longer than MS (50.0)\n"
"  --flamegraph-file PATH        folded stacks for flamegraph.pl/speedscope\n"
"  --flamegraph-bucket S         flame graph time bucket in seconds (5.0)\n"
"  --terminal-flamegraph         ASCII flame graph: time x generation\n"
"  --terminal-flamegraph-width N width of its bars (80)\n"
"  --terminal-flamegraph-color   ANSI colours in it\n"
"  --duration-buckets LIST       pause histogram edges in ms (1,5,20,50,100)\n"
"  --prompt                      print an optimisation prompt with the figures\n"
"  --socket PATH                 shared mode: report to the gcmond at PATH\n"
"  --python PATH                 interpreter to run (python3)\n"
"  --help                        this text\n"
"  --version                     print the version\n"
"\n"
"Environment: GCMON_SOCKET (shared mode), GCMON_PYTHON, GCMON_GCMOND,\n"
"GCMON_AGENT_DIR. Exit status: the program's (128+N if killed by signal N);\n"
"2 for bad usage. See pygcprofiler(1).\n";

static void pgp_on_signal(int sig, siginfo_t *si, void *uctx)
{
	(void)uctx;
	if (sig == SIGCHLD) {
		pgp_sigchld = 1;
		return;
	}
	/* A terminal's ^C already reached the program (same process group);
	 * forward only what was sent to us alone. */
	if (si != NULL && si->si_code == SI_KERNEL)
		return;
	pgp_sig_pending[sig] = 1;
	pgp_sig_any = 1;
}

static int pgp_install_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGCHLD };
	struct sigaction sa;
	size_t i;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = pgp_on_signal;
	sa.sa_flags = SA_SIGINFO;	/* no SA_RESTART: poll() must wake */
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return -errno;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* In a child before exec: what a program started from a shell expects. */
static void pgp_reset_signals(void)
{
	sigset_t none;
	int s;

	for (s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);	/* fails for 32/33 (libc's): fine */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* ---- option parsing ---------------------------------------------------- */

static int pgp_parse_double(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !isfinite(*v))
		return -EINVAL;
	return 0;
}

static int pgp_parse_buckets(const char *s, struct pgp_opts *o)
{
	char buf[1024], *tok, *save = NULL;
	double v;

	if (strlen(s) >= sizeof buf)
		return -E2BIG;
	strcpy(buf, s);
	o->nbuckets = 0;
	for (tok = strtok_r(buf, ",", &save); tok;
	    tok = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*tok))
			tok++;
		if (pgp_parse_double(tok, &v) < 0 || v <= 0)
			return -EINVAL;
		if (o->nbuckets > 0 && v <= o->buckets[o->nbuckets - 1])
			return -EDOM;
		if (o->nbuckets == PGP_MAX_BUCKETS)
			return -E2BIG;
		o->buckets[o->nbuckets++] = v;
	}
	return o->nbuckets > 0 ? 0 : -EINVAL;
}

enum pgp_opt_kind { PGP_FLAG, PGP_VALUE };

struct pgp_optdef {
	const char *name;
	enum pgp_opt_kind kind;
};

static const struct pgp_optdef pgp_optdefs[] = {
	{ "--interval", PGP_VALUE }, { "--json", PGP_FLAG },
	{ "--stats-only", PGP_FLAG }, { "--dump-objects", PGP_FLAG },
	{ "--dump-garbage", PGP_FLAG }, { "--log-file", PGP_VALUE },
	{ "--alert-threshold-ms", PGP_VALUE },
	{ "--flamegraph-file", PGP_VALUE },
	{ "--flamegraph-bucket", PGP_VALUE },
	{ "--terminal-flamegraph", PGP_FLAG },
	{ "--terminal-flamegraph-width", PGP_VALUE },
	{ "--terminal-flamegraph-color", PGP_FLAG },
	{ "--duration-buckets", PGP_VALUE }, { "--prompt", PGP_FLAG },
	{ "--socket", PGP_VALUE }, { "--python", PGP_VALUE },
	{ "--help", PGP_FLAG }, { "--version", PGP_FLAG },
};

/* Applies one option; a message for main in *why on error. */
static int pgp_apply(struct pgp_opts *o, const char *name, const char *val,
    const char **why)
{
	double d;
	int err;

	*why = NULL;
	if (strcmp(name, "--interval") == 0) {
		if (pgp_parse_double(val, &d) < 0 || d <= 0 || d > 86400)
			return *why = "must be a number of seconds above 0", -EINVAL;
		o->interval_s = d;
	} else if (strcmp(name, "--json") == 0) {
		o->json = 1;
	} else if (strcmp(name, "--stats-only") == 0) {
		o->stats_only = 1;
	} else if (strcmp(name, "--dump-objects") == 0) {
		o->dump_objects = 1;
	} else if (strcmp(name, "--dump-garbage") == 0) {
		o->dump_garbage = 1;
	} else if (strcmp(name, "--log-file") == 0) {
		if (*val == '\0')
			return *why = "needs a path", -EINVAL;
		o->log_file = val;
	} else if (strcmp(name, "--alert-threshold-ms") == 0) {
		if (pgp_parse_double(val, &d) < 0 || d <= 0)
			return *why = "must be a number of milliseconds above 0",
			    -EINVAL;
		o->alert_ms = d;
	} else if (strcmp(name, "--flamegraph-file") == 0) {
		if (*val == '\0')
			return *why = "needs a path", -EINVAL;
		o->flame_file = val;
	} else if (strcmp(name, "--flamegraph-bucket") == 0) {
		if (pgp_parse_double(val, &d) < 0 || d < 0.1 || d > 86400)
			return *why = "must be a number of seconds, at least 0.1",
			    -EINVAL;
		o->flame_bucket_s = d;
	} else if (strcmp(name, "--terminal-flamegraph") == 0) {
		o->term_flame = 1;
	} else if (strcmp(name, "--terminal-flamegraph-width") == 0) {
		char *end;
		long w;

		errno = 0;
		w = strtol(val, &end, 10);
		if (errno || end == val || *end || w < 20 || w > 1000)
			return *why = "must be an integer from 20 to 1000",
			    -EINVAL;
		o->term_width = w;
	} else if (strcmp(name, "--terminal-flamegraph-color") == 0) {
		o->term_color = 1;
	} else if (strcmp(name, "--duration-buckets") == 0) {
		err = pgp_parse_buckets(val, o);
		if (err == -EDOM)
			return *why = "edges must be strictly ascending", err;
		if (err == -E2BIG)
			return *why = "at most 32 edges", err;
		if (err < 0)
			return *why = "must be a comma-separated list of "
			    "milliseconds above 0", err;
	} else if (strcmp(name, "--prompt") == 0) {
		o->prompt = 1;
	} else if (strcmp(name, "--socket") == 0) {
		if (*val == '\0')
			return *why = "needs a path", -EINVAL;
		o->socket = val;
	} else if (strcmp(name, "--python") == 0) {
		if (*val == '\0')
			return *why = "needs a path", -EINVAL;
		o->python = val;
	}
	return 0;
}

enum pgp_parse_result { PGP_RUN, PGP_HELP, PGP_VERSION };

/* argv after "run". Returns a pgp_parse_result or -EINVAL with *msg (a
 * static or malloc'd-never message; printed by main). */
static int pgp_parse_run(int argc, char **argv, struct pgp_opts *o,
    char *msg, size_t msglen)
{
	int i = 0;

	while (i < argc) {
		const char *a = argv[i], *eq, *val = NULL, *why;
		const struct pgp_optdef *def = NULL;
		size_t n, k;

		if (strcmp(a, "-m") == 0) {
			if (i + 1 >= argc || argv[i + 1][0] == '\0') {
				snprintf(msg, msglen, "-m needs a module name");
				return -EINVAL;
			}
			o->module = 1;
			o->prog = argv + i + 1;
			o->nprog = argc - i - 1;
			return PGP_RUN;
		}
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		eq = strchr(a, '=');
		n = eq ? (size_t)(eq - a) : strlen(a);
		for (k = 0; k < sizeof pgp_optdefs / sizeof pgp_optdefs[0]; k++)
			if (strlen(pgp_optdefs[k].name) == n &&
			    strncmp(pgp_optdefs[k].name, a, n) == 0)
				def = &pgp_optdefs[k];
		if (def == NULL) {
			snprintf(msg, msglen, "unknown option '%.*s' (options "
			    "come before the script; see pygcprofiler --help)",
			    (int)n, a);
			return -EINVAL;
		}
		if (def->kind == PGP_FLAG && eq) {
			snprintf(msg, msglen, "option %s takes no value",
			    def->name);
			return -EINVAL;
		}
		if (def->kind == PGP_VALUE) {
			if (eq) {
				val = eq + 1;
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				snprintf(msg, msglen, "option %s needs a value",
				    def->name);
				return -EINVAL;
			}
		}
		if (strcmp(def->name, "--help") == 0)
			return PGP_HELP;
		if (strcmp(def->name, "--version") == 0)
			return PGP_VERSION;
		if (pgp_apply(o, def->name, val, &why) < 0) {
			snprintf(msg, msglen, "invalid value '%s' for %s: %s",
			    val, def->name, why);
			return -EINVAL;
		}
		i++;
	}
	if (i >= argc) {
		snprintf(msg, msglen, "no script given (pygcprofiler run "
		    "[options] script.py [args...] or -m module [args...])");
		return -EINVAL;
	}
	o->module = 0;
	o->prog = argv + i;
	o->nprog = argc - i;
	return PGP_RUN;
}

/* A name that is no file but could be a module or a console script. */
static int pgp_looks_like_module(const char *name)
{
	const char *p, *path;
	char buf[PATH_MAX];
	size_t n;

	if (strchr(name, '/'))
		return 0;
	for (p = name; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' &&
		    *p != '-')
			return 0;
	n = strlen(name);
	if (n > 3 && strcmp(name + n - 3, ".py") == 0)
		return 0;
	path = getenv("PATH");
	while (path && *path) {
		const char *colon = strchr(path, ':');
		size_t dl = colon ? (size_t)(colon - path) : strlen(path);

		if (dl > 0 && snprintf(buf, sizeof buf, "%.*s/%s", (int)dl,
		    path, name) < (int)sizeof buf && access(buf, X_OK) == 0)
			return 1;
		path = colon ? colon + 1 : NULL;
	}
	/* Not on PATH: an identifier-like dotted name still reads as one. */
	return strchr(name, '-') == NULL;
}

/* ---- paths ------------------------------------------------------------- */

static int pgp_exe_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash == NULL)
		return -ENOENT;
	*slash = '\0';
	return 0;
}

static void pgp_find_gcmond(char *buf, size_t len)
{
	const char *env = getenv("GCMON_GCMOND");
	char dir[PATH_MAX];

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	if (pgp_exe_dir(dir, sizeof dir) == 0 &&
	    snprintf(buf, len, "%s/../daemon/gcmond", dir) < (int)len &&
	    access(buf, X_OK) == 0)
		return;
	snprintf(buf, len, "%s/gcmond", SBINDIR);
}

static void pgp_find_agent_dir(char *buf, size_t len)
{
	const char *env = getenv("GCMON_AGENT_DIR");
	char dir[PATH_MAX], probe[PATH_MAX + 32];

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	if (pgp_exe_dir(dir, sizeof dir) == 0) {
		snprintf(probe, sizeof probe, "%s/../agent/sitecustomize.py",
		    dir);
		if (access(probe, R_OK) == 0 &&
		    snprintf(buf, len, "%s/../agent", dir) < (int)len)
			return;
	}
	snprintf(buf, len, "%s", PKGLIBDIR);
}

/* ---- output helpers ---------------------------------------------------- */

static void pgp_json_line(FILE *out, json_t *obj)
{
	json_dumpf(obj, out, JSON_COMPACT | JSON_ENSURE_ASCII);
	fputc('\n', out);
	fflush(out);
	json_decref(obj);
}

/* Shell-quotes one word into out when it needs it. */
static void pgp_put_quoted(FILE *out, const char *w)
{
	const char *p;
	int plain = *w != '\0';

	for (p = w; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("@%+=:,./_-", *p))
			plain = 0;
	if (plain) {
		fputs(w, out);
		return;
	}
	fputc('\'', out);
	for (p = w; *p; p++) {
		if (*p == '\'')
			fputs("'\\''", out);
		else
			fputc(*p, out);
	}
	fputc('\'', out);
}

static json_t *pgp_command_json(const struct pgp_opts *o)
{
	json_t *a = json_array();
	int i;

	json_array_append_new(a, json_string(o->python));
	if (o->module)
		json_array_append_new(a, json_string("-m"));
	for (i = 0; i < o->nprog; i++)
		json_array_append_new(a, json_string(o->prog[i]));
	return a;
}

static void pgp_print_command(FILE *out, const struct pgp_opts *o)
{
	int i;

	pgp_put_quoted(out, o->python);
	if (o->module)
		fputs(" -m", out);
	for (i = 0; i < o->nprog; i++) {
		fputc(' ', out);
		pgp_put_quoted(out, o->prog[i]);
	}
}

/* ---- the program ------------------------------------------------------- */

static int pgp_setenv_num(const char *name, double v)
{
	char buf[64];

	snprintf(buf, sizeof buf, "%g", v);
	return setenv(name, buf, 1) < 0 ? -errno : 0;
}

/* Sets the environment the program inherits; the launcher's own copy is
 * the one passed on (fork copies it). */
static int pgp_program_env(const struct pgp_opts *o, const char *sock,
    const char *run_id, char *agent, size_t agent_len)
{
	char *pp = NULL;
	const char *old = getenv("PYTHONPATH");
	int err = 0;

	pgp_find_agent_dir(agent, agent_len);
	if (old && *old) {
		if (asprintf(&pp, "%s:%s", agent, old) < 0)
			return -ENOMEM;
	} else if ((pp = strdup(agent)) == NULL) {
		return -ENOMEM;
	}
	if (setenv("PYTHONPATH", pp, 1) < 0 ||
	    setenv("GCMON_SOCKET", sock, 1) < 0 ||
	    setenv("GCMON_RUN_ID", run_id, 1) < 0)
		err = -errno;
	free(pp);
	if (err == 0)
		err = pgp_setenv_num("GCMON_INTERVAL", o->interval_s);
	if (err == 0 && o->dump_objects && setenv("GCMON_DUMP_OBJECTS", "1", 1) < 0)
		err = -errno;
	if (err == 0 && o->dump_garbage && setenv("GCMON_DUMP_GARBAGE", "1", 1) < 0)
		err = -errno;
	return err;
}

/* Forks and execs the program. The child reports an exec failure's errno
 * through a close-on-exec pipe, so the parent knows before anything is
 * printed as if the program ran. */
static int pgp_spawn(const struct pgp_opts *o, pid_t *pid_out, int *exec_errno)
{
	char **argv;
	int fds[2], i, n = 0, e = 0;
	ssize_t r;
	pid_t pid;

	argv = calloc((size_t)o->nprog + 3, sizeof *argv);
	if (argv == NULL)
		return -ENOMEM;
	argv[n++] = (char *)o->python;
	if (o->module)
		argv[n++] = (char *)"-m";
	for (i = 0; i < o->nprog; i++)
		argv[n++] = o->prog[i];
	if (pipe2(fds, O_CLOEXEC) < 0) {
		e = -errno;
		free(argv);
		return e;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		e = -errno;
		close(fds[0]);
		close(fds[1]);
		free(argv);
		return e;
	}
	if (pid == 0) {
		pgp_reset_signals();
		execvp(o->python, argv);
		e = errno;
		if (write(fds[1], &e, sizeof e) < 0)
			_exit(127);
		_exit(127);
	}
	close(fds[1]);
	free(argv);
	*exec_errno = 0;
	do
		r = read(fds[0], &e, sizeof e);
	while (r < 0 && errno == EINTR);
	if (r == (ssize_t)sizeof e)
		*exec_errno = e;
	close(fds[0]);
	*pid_out = pid;
	return 0;
}

static void pgp_forward_signals(pid_t child)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	size_t i;

	if (!pgp_sig_any)
		return;
	pgp_sig_any = 0;
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		if (!pgp_sig_pending[sigs[i]])
			continue;
		pgp_sig_pending[sigs[i]] = 0;
		if (child > 0)
			kill(child, sigs[i]);	/* ESRCH: it just ended */
	}
}

/* Reaps the program (and notices the daemon ending); non-blocking. */
static void pgp_reap(struct pgp_run *r, FILE *err_out)
{
	pid_t p;
	int st;

	pgp_sigchld = 0;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == r->child) {
			r->child_status = st;
			r->child_done = 1;
		} else if (p == r->daemon) {
			r->daemon = 0;
			if (err_out)
				fprintf(err_out, "pygcprofiler: gcmond ended "
				    "early (%s %d); the report will be "
				    "incomplete\n", WIFSIGNALED(st) ?
				    "signal" : "status", WIFSIGNALED(st) ?
				    WTERMSIG(st) : WEXITSTATUS(st));
		}
	}
}

static int pgp_exit_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

/* ---- the daemon -------------------------------------------------------- */

static int pgp_start_daemon(struct pgp_run *r, const char *gcmond,
    const char *sock)
{
	char thr[64];
	char *argv[8];
	int devnull;
	pid_t pid;

	snprintf(thr, sizeof thr, "%g", r->o->alert_ms);
	argv[0] = (char *)gcmond;
	argv[1] = (char *)"--socket";
	argv[2] = (char *)sock;
	argv[3] = (char *)"--quiet";
	argv[4] = (char *)"--alert-threshold-ms";
	argv[5] = thr;
	argv[6] = NULL;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		pgp_reset_signals();
		/* Own process group: the terminal's ^C is for the program;
		 * the daemon must live on to answer `report`. */
		setpgid(0, 0);
		/* Nor may it outlive a launcher killed with SIGKILL. */
		if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() == 1)
			_exit(127);
		devnull = open("/dev/null", O_RDWR);
		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
			if (devnull > STDERR_FILENO)
				close(devnull);
		}
		execv(gcmond, argv);
		dprintf(STDERR_FILENO, "pygcprofiler: cannot run %s: %s\n",
		    gcmond, strerror(errno));
		_exit(127);
	}
	r->daemon = pid;
	return 0;
}

static double pgp_now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Connects and pings until the daemon answers, it dies, or the timeout. */
static int pgp_wait_ping(struct pgp_run *r, const char *sock, int *fd_out)
{
	double deadline = pgp_now_mono() + PGP_PING_TIMEOUT_MS / 1000.0;
	json_t *req, *ans;
	int fd, err = -ETIMEDOUT;

	for (;;) {
		pgp_reap(r, NULL);
		if (r->daemon == 0)
			return -ECHILD;
		if (ctl_connect(sock, &fd) == 0) {
			req = json_pack("{s:s}", "cmd", "ping");
			err = ctl_request(fd, req, &ans, 2000);
			json_decref(req);
			if (err == 0 && json_is_true(json_object_get(ans, "ok"))) {
				json_decref(ans);
				*fd_out = fd;
				return 0;
			}
			if (err == 0)
				json_decref(ans);
			ctl_close(fd);
		}
		if (pgp_now_mono() > deadline)
			return -ETIMEDOUT;
		usleep(20000);
	}
}

static void pgp_stop_daemon(struct pgp_run *r)
{
	json_t *req, *ans;
	double deadline;
	int st;

	if (r->ctl_fd >= 0) {
		req = json_pack("{s:s}", "cmd", "stop");
		if (ctl_request(r->ctl_fd, req, &ans, 2000) == 0)
			json_decref(ans);
		json_decref(req);
	}
	if (r->daemon <= 0)
		return;
	deadline = pgp_now_mono() + 5.0;
	while (pgp_now_mono() < deadline) {
		if (waitpid(r->daemon, &st, WNOHANG) == r->daemon) {
			r->daemon = 0;
			return;
		}
		usleep(10000);
	}
	kill(r->daemon, SIGKILL);
	waitpid(r->daemon, &st, 0);
	r->daemon = 0;
}

/* ---- the event stream -------------------------------------------------- */

static int pgp_note_pid(struct pgp_run *r, pid_t pid)
{
	size_t i;

	for (i = 0; i < r->npids; i++)
		if (r->pids[i] == pid)
			return 0;
	if (r->npids < sizeof r->pids / sizeof r->pids[0])
		r->pids[r->npids++] = pid;
	return 1;
}

static size_t pgp_bucket_of(const struct pgp_opts *o, double ms)
{
	size_t i;

	for (i = 0; i < o->nbuckets; i++)
		if (ms < o->buckets[i])
			return i;
	return o->nbuckets;
}

static void pgp_record_event(struct pgp_run *r, const json_t *ev)
{
	double ms = json_number_value(json_object_get(ev, "duration_ms"));
	double t = json_number_value(json_object_get(ev, "time"));
	json_int_t gen = json_integer_value(json_object_get(ev, "gen"));
	size_t b = pgp_bucket_of(r->o, ms), row;
	double rel;

	r->nevents++;
	r->dur_count[b]++;
	if (gen < 0 || gen >= PGP_MAX_GEN)
		return;
	if ((unsigned)gen + 1 > r->ngen_seen)
		r->ngen_seen = (unsigned)gen + 1;
	rel = t - r->start_real;
	row = rel > 0 ? (size_t)(rel / r->o->flame_bucket_s) : 0;
	if (row >= PGP_MAX_FLAME_ROWS) {
		r->flame_skipped++;
		return;
	}
	if (row >= r->nflame) {
		size_t n = row + 1 > r->nflame * 2 ? row + 1 : r->nflame * 2;
		struct pgp_flame_row *f = realloc(r->flame, n * sizeof *f);

		if (f == NULL)
			return;		/* flame graph loses this event */
		memset(f + r->nflame, 0, (n - r->nflame) * sizeof *f);
		r->flame = f;
		r->nflame = n;
	}
	r->flame[row].ms[gen][b] += ms;
}

static int pgp_with_pid(const struct pgp_run *r)
{
	return r->npids > 1;
}

/* Handles one streamed object (steals obj). */
static void pgp_on_stream(struct pgp_run *r, json_t *obj)
{
	const char *type = json_string_value(json_object_get(obj, "type"));
	const json_t *proc;

	if (type == NULL) {
		json_decref(obj);
		return;
	}
	if (strcmp(type, "process_start") == 0 ||
	    strcmp(type, "process_end") == 0) {
		proc = json_object_get(obj, "process");
		pgp_note_pid(r, (pid_t)json_integer_value(
		    json_object_get(proc, "pid")));
	} else if (strcmp(type, "event") == 0 || strcmp(type, "alert") == 0) {
		pgp_note_pid(r, (pid_t)json_integer_value(
		    json_object_get(obj, "pid")));
		if (strcmp(type, "event") == 0)
			pgp_record_event(r, obj);
	} else if (strcmp(type, "lost") == 0) {
		r->lost += (unsigned long long)json_integer_value(
		    json_object_get(obj, "events"));
	}
	if (r->o->stats_only || strcmp(type, "lost") == 0) {
		json_decref(obj);
		return;
	}
	if (r->o->json) {
		if (strcmp(type, "event") == 0 || strcmp(type, "alert") == 0 ||
		    strcmp(type, "process_start") == 0 ||
		    strcmp(type, "process_end") == 0) {
			pgp_json_line(r->out, obj);
			return;
		}
	} else if (strcmp(type, "event") == 0) {
		report_event_line(r->out, obj, pgp_with_pid(r));
		fflush(r->out);
	} else if (strcmp(type, "alert") == 0) {
		report_alert_line(r->out, obj, pgp_with_pid(r));
		fflush(r->out);
	}
	json_decref(obj);
}

/* Reads what the watch stream holds, waiting at most timeout_ms for the
 * first object. Returns 0, -ETIMEDOUT (quiet), or -ECONNRESET (closed). */
static int pgp_pump(struct pgp_run *r, int timeout_ms)
{
	json_t *obj;
	int err;

	if (r->watch_fd < 0) {
		poll(NULL, 0, timeout_ms);
		return -ETIMEDOUT;
	}
	err = ctl_read(r->watch_fd, &obj, timeout_ms);
	while (err == 0) {
		pgp_on_stream(r, obj);
		err = ctl_read(r->watch_fd, &obj, 0);
	}
	if (err == -ETIMEDOUT || err == -EINTR)
		return err == -EINTR ? 0 : -ETIMEDOUT;
	ctl_close(r->watch_fd);
	r->watch_fd = -1;
	return -ECONNRESET;
}

/* ---- the report -------------------------------------------------------- */

static json_t *pgp_durations_json(const struct pgp_run *r)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; i <= r->o->nbuckets; i++)
		json_array_append_new(a, json_pack("{s:o,s:I}", "le_ms",
		    i < r->o->nbuckets ? json_real(r->o->buckets[i]) :
		    json_null(), "count", (json_int_t)r->dur_count[i]));
	return a;
}

static void pgp_bucket_label(const struct pgp_opts *o, size_t b, char *buf,
    size_t len)
{
	if (b == 0)
		snprintf(buf, len, "<%gms", o->buckets[0]);
	else if (b < o->nbuckets)
		snprintf(buf, len, "%g-%gms", o->buckets[b - 1], o->buckets[b]);
	else
		snprintf(buf, len, ">=%gms", o->buckets[o->nbuckets - 1]);
}

/* Folded stacks: "T+5s;Gen 2;5-20ms 1234" (T+0.5s for buckets under 1 s)
 * with GC time in microseconds
 * as the sample weight (flamegraph.pl and speedscope want integers). */
static int pgp_write_flame_file(const struct pgp_run *r, const char *path)
{
	char label[64];
	size_t row, b;
	unsigned g;
	FILE *f;
	int fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (f == NULL) {
		int err = -errno;

		close(fd);
		return err;
	}
	for (row = 0; row < r->nflame; row++)
		for (g = 0; g < r->ngen_seen; g++)
			for (b = 0; b <= r->o->nbuckets; b++) {
				double ms = r->flame[row].ms[g][b];

				if (ms <= 0)
					continue;
				pgp_bucket_label(r->o, b, label, sizeof label);
				fprintf(f, "T+%gs;Gen %u;%s %llu\n",
				    (double)row * r->o->flame_bucket_s, g, label,
				    (unsigned long long)llround(ms * 1000.0) ?
				    (unsigned long long)llround(ms * 1000.0) : 1);
			}
	if (fclose(f) != 0)
		return -errno;
	return 0;
}

static const char pgp_gen_chars[] = ".+#@%*=-";
static const char *const pgp_gen_colors[] = {
	"\033[38;5;82m", "\033[38;5;214m", "\033[38;5;196m", "\033[38;5;125m",
	"\033[38;5;33m", "\033[38;5;93m", "\033[38;5;250m", "\033[38;5;240m",
};

/* One row per time bucket with GC time; each bar split by the share of
 * that bucket's GC time each generation took. */
static void pgp_terminal_flame(const struct pgp_run *r, FILE *out, json_t **js)
{
	const struct pgp_opts *o = r->o;
	double gen_ms[PGP_MAX_GEN], total;
	json_t *rows = js ? json_array() : NULL;
	size_t row, b;
	unsigned g;
	int any = 0;

	if (!js) {
		fputs("\n=== GC FLAME GRAPH (ASCII) ===\n", out);
		fputs("Legend:", out);
		for (g = 0; g < (r->ngen_seen ? r->ngen_seen : 3); g++) {
			if (o->term_color)
				fprintf(out, " %s%c\033[0m=Gen %u", pgp_gen_colors[g],
				    pgp_gen_chars[g], g);
			else
				fprintf(out, " %c=Gen %u", pgp_gen_chars[g], g);
		}
		fprintf(out, " (bar: share of the bucket's GC time; bucket %gs)\n",
		    o->flame_bucket_s);
	}
	for (row = 0; row < r->nflame; row++) {
		long used = 0, w;
		char tl[32];

		total = 0;
		for (g = 0; g < PGP_MAX_GEN; g++) {
			gen_ms[g] = 0;
			for (b = 0; b <= o->nbuckets; b++)
				gen_ms[g] += r->flame[row].ms[g][b];
			total += gen_ms[g];
		}
		if (total <= 0)
			continue;
		any = 1;
		if (js) {
			json_t *gens = json_array();

			for (g = 0; g < r->ngen_seen; g++)
				json_array_append_new(gens, json_real(gen_ms[g]));
			json_array_append_new(rows, json_pack("{s:f,s:f,s:o}",
			    "t_s", (double)row * o->flame_bucket_s,
			    "gc_time_ms", total, "gen_ms", gens));
			continue;
		}
		snprintf(tl, sizeof tl, "T+%gs", (double)row * o->flame_bucket_s);
		fprintf(out, "%8s | ", tl);
		for (g = 0; g < r->ngen_seen; g++) {
			unsigned later = g + 1;
			long k;

			if (gen_ms[g] <= 0)
				continue;
			while (later < r->ngen_seen && gen_ms[later] <= 0)
				later++;
			w = lround(gen_ms[g] / total * (double)o->term_width);
			if (w < 1)
				w = 1;
			if (later == r->ngen_seen)	/* the last one fills the bar */
				w = o->term_width - used;
			if (w > o->term_width - used)
				w = o->term_width - used;
			if (o->term_color && w > 0)
				fputs(pgp_gen_colors[g], out);
			for (k = 0; k < w; k++)
				fputc(pgp_gen_chars[g], out);
			if (o->term_color && w > 0)
				fputs("\033[0m", out);
			used += w;
		}
		for (; used < o->term_width; used++)
			fputc(' ', out);
		fprintf(out, " | %.2fms (", total);
		for (g = 0; g < r->ngen_seen; g++)
			fprintf(out, "%sG%u:%.2fms", g ? ", " : "", g, gen_ms[g]);
		fputs(")\n", out);
	}
	if (js) {
		*js = json_pack("{s:s,s:f,s:o}", "type", "flamegraph",
		    "bucket_s", o->flame_bucket_s, "rows", rows);
		return;
	}
	if (!any)
		fputs("No GC flame graph samples collected.\n", out);
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

static double pgp_getnum(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

/* The optimisation prompt: the measured figures and the daemon's findings,
 * worded so it can be pasted into an assistant as is. */
static char *pgp_build_prompt(const struct pgp_run *r)
{
	const json_t *sum = json_object_get(r->report, "summary");
	const json_t *procs = json_object_get(r->report, "processes");
	const json_t *recs = json_object_get(r->report, "recommendations");
	const json_t *g, *p, *rec, *th;
	char *buf = NULL;
	size_t len = 0, i, j;
	FILE *f = open_memstream(&buf, &len);

	if (f == NULL)
		return NULL;
	fputs("I run a Python service and measured its garbage collector with "
	    "gcmon (pygcprofiler). Help me reduce GC pauses and GC time "
	    "without changing what the program computes.\n\n", f);
	fputs("Command: ", f);
	pgp_print_command(f, r->o);
	fprintf(f, "\nPython: %s\n", json_string_value(json_object_get(
	    json_array_get(procs, 0), "python")) ? json_string_value(
	    json_object_get(json_array_get(procs, 0), "python")) : "unknown");
	fprintf(f, "Processes: %zu; wall time %.1f s\n",
	    json_array_size(procs), pgp_getnum(sum, "wall_s"));
	fprintf(f, "Collections: %lld in total; GC time %.1f ms (%.2f%% of wall "
	    "time); mean pause %.3f ms; max pause %.1f ms; p99 %.2f ms\n",
	    (long long)json_integer_value(json_object_get(sum, "collections")),
	    pgp_getnum(sum, "gc_time_ms"), pgp_getnum(sum, "gc_wall_pct"),
	    pgp_getnum(sum, "mean_pause_ms"), pgp_getnum(sum, "max_pause_ms"),
	    pgp_getnum(json_object_get(sum, "percentiles_ms"), "p99"));
	json_array_foreach(json_object_get(sum, "generations"), i, g)
		fprintf(f, "  generation %lld: %lld collections, %.1f ms, max "
		    "%.1f ms, %lld objects collected\n",
		    (long long)json_integer_value(json_object_get(g, "gen")),
		    (long long)json_integer_value(json_object_get(g, "collections")),
		    pgp_getnum(g, "gc_time_ms"), pgp_getnum(g, "max_pause_ms"),
		    (long long)json_integer_value(json_object_get(g, "collected")));
	fprintf(f, "Pauses over the %.1f ms alert threshold: %lld\n",
	    r->o->alert_ms,
	    (long long)json_integer_value(json_object_get(sum, "alerts")));
	fprintf(f, "Uncollectable objects: %lld\n",
	    (long long)json_integer_value(json_object_get(sum, "uncollectable")));
	th = json_object_get(json_array_get(procs, 0), "thresholds");
	if (json_array_size(th) > 0) {
		fputs("gc.get_threshold(): (", f);
		json_array_foreach(th, j, g)
			fprintf(f, "%s%lld", j ? ", " : "",
			    (long long)json_integer_value(g));
		fputs(")\n", f);
	}
	if (json_array_size(procs) > 1) {
		fputs("Per process:\n", f);
		json_array_foreach(procs, i, p)
			fprintf(f, "  %s pid %lld: %lld collections, GC time "
			    "%.1f ms, max pause %.1f ms, p99 %.2f ms\n",
			    json_string_value(json_object_get(p, "role")) ?
			    json_string_value(json_object_get(p, "role")) : "?",
			    (long long)json_integer_value(json_object_get(p, "pid")),
			    (long long)json_integer_value(json_object_get(p,
			    "collections")), pgp_getnum(p, "gc_time_ms"),
			    pgp_getnum(p, "max_pause_ms"), pgp_getnum(p, "p99_ms"));
	}
	if (json_array_size(recs) > 0) {
		fputs("The tool's findings:\n", f);
		json_array_foreach(recs, i, rec)
			fprintf(f, "  - %s\n", json_string_value(json_object_get(
			    rec, "message")) ? json_string_value(json_object_get(
			    rec, "message")) : "?");
	}
	fputs("\nPlease: 1) explain what these figures say about my "
	    "allocation pattern; 2) propose concrete changes (gc.freeze() "
	    "after start-up in a prefork server, gc.set_threshold() values, "
	    "fewer reference cycles, object pooling) with code; 3) say how to "
	    "verify each change with the same measurement.\n", f);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void pgp_print_report(struct pgp_run *r)
{
	const struct pgp_opts *o = r->o;
	struct report_opts ro;
	const json_t *sum, *procs, *recs;
	json_t *dur = pgp_durations_json(r), *fl = NULL;
	char *prompt = NULL;

	memset(&ro, 0, sizeof ro);
	ro.alert_threshold_ms = o->alert_ms;
	ro.duration_buckets_ms = o->buckets;
	ro.nbuckets = o->nbuckets;
	ro.color = o->term_color;
	sum = json_object_get(r->report, "summary");
	procs = json_object_get(r->report, "processes");
	recs = json_object_get(r->report, "recommendations");
	if (o->prompt && r->report)
		prompt = pgp_build_prompt(r);
	if (o->json) {
		pgp_json_line(r->out, json_pack("{s:s,s:O?,s:O?,s:O,s:I}",
		    "type", "summary", "summary", sum, "processes", procs,
		    "durations", dur, "lost", (json_int_t)r->lost));
		pgp_json_line(r->out, json_pack("{s:s,s:O?}", "type",
		    "recommendations", "recommendations", recs));
		if (o->dump_objects)
			pgp_json_line(r->out, json_pack("{s:s,s:O?}", "type",
			    "objects", "objects",
			    json_object_get(r->report, "objects")));
		if (o->dump_garbage)
			pgp_json_line(r->out, json_pack("{s:s,s:O?}", "type",
			    "garbage", "garbage",
			    json_object_get(r->report, "garbage")));
		if (o->term_flame) {
			pgp_terminal_flame(r, r->out, &fl);
			pgp_json_line(r->out, fl);
		}
		if (prompt)
			pgp_json_line(r->out, json_pack("{s:s,s:s}", "type",
			    "prompt", "text", prompt));
	} else {
		if (sum)
			report_summary(r->out, sum, procs, dur, &ro);
		else if (r->npids == 0)
			fprintf(r->out, "\n=== GC MONITORING SUMMARY ===\nNo "
			    "Python process of this run reached gcmond (%s): is "
			    "the agent in %s?\n", r->report_err, r->agent_dir);
		else
			fprintf(r->out, "\n=== GC MONITORING SUMMARY ===\nNo "
			    "report from gcmond: %s\n", r->report_err);
		if (r->lost > 0)
			fprintf(r->out, "(%llu streamed objects were lost by "
			    "this watcher: the pause histogram and flame graph "
			    "miss them; the totals above do not)\n", r->lost);
		if (r->report)
			report_recommendations(r->out, recs);
		if (o->dump_objects)
			pgp_print_types(r->out, "OBJECT TYPES AT EXIT",
			    json_object_get(r->report, "objects"));
		if (o->dump_garbage)
			pgp_print_types(r->out, "UNCOLLECTABLE GARBAGE",
			    json_object_get(r->report, "garbage"));
		if (o->term_flame)
			pgp_terminal_flame(r, r->out, NULL);
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
	fflush(r->out);
	free(prompt);
	json_decref(dur);
}

/* Waits for the agents' last batches, drains the stream, fetches the
 * report. */
static void pgp_collect(struct pgp_run *r)
{
	json_t *req, *ans = NULL;
	double deadline;
	int err;

	if (r->ctl_fd < 0)
		return;
	if (!r->exec_failed) {
		req = json_pack("{s:s,s:s,s:i,s:i}", "cmd", "wait", "run",
		    r->run_id, "timeout_ms", PGP_WAIT_TIMEOUT_MS,
		    "min_processes", 1);
		err = ctl_request(r->ctl_fd, req, &ans, PGP_WAIT_TIMEOUT_MS + 5000);
		json_decref(req);
		if (err == 0)
			json_decref(ans);
	}
	/* What the daemon streamed before answering may still be queued. */
	deadline = pgp_now_mono() + 3.0;
	while (r->watch_fd >= 0 && pgp_now_mono() < deadline)
		if (pgp_pump(r, PGP_DRAIN_MS) != 0)
			break;
	req = json_pack("{s:s,s:s}", "cmd", "report", "run", r->run_id);
	err = ctl_request(r->ctl_fd, req, &ans, 10000);
	json_decref(req);
	if (err == 0 && json_is_true(json_object_get(ans, "ok"))) {
		r->report = ans;
		return;
	}
	if (err == 0) {
		snprintf(r->report_err, sizeof r->report_err, "%s",
		    json_string_value(json_object_get(ans, "error")) ?
		    json_string_value(json_object_get(ans, "error")) :
		    "error without a message");
		json_decref(ans);
	} else {
		snprintf(r->report_err, sizeof r->report_err, "%s",
		    strerror(-err));
	}
}

/* ---- modes ------------------------------------------------------------- */

static void pgp_make_run_id(char *buf, size_t len)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, len, "pgp-%ld-%lx%05lx", (long)getpid(),
	    (unsigned long)ts.tv_sec, (unsigned long)(ts.tv_nsec / 10000));
}

/* Waits for the program, forwarding signals and streaming events. */
static void pgp_supervise(struct pgp_run *r, FILE *err_out)
{
	while (!r->child_done) {
		pgp_forward_signals(r->child);
		pgp_reap(r, err_out);
		if (r->child_done)
			break;
		pgp_pump(r, PGP_POLL_MS);
	}
	pgp_forward_signals(0);
}

static int pgp_run_shared(struct pgp_opts *o, const char *sock)
{
	struct pgp_run r;
	json_t *req, *ans;
	const char *env_run = getenv("GCMON_RUN_ID");
	int fd, err, eno;

	memset(&r, 0, sizeof r);
	r.o = o;
	r.watch_fd = r.ctl_fd = -1;
	if (env_run && *env_run)
		snprintf(r.run_id, sizeof r.run_id, "%s", env_run);
	else
		pgp_make_run_id(r.run_id, sizeof r.run_id);
	err = ctl_connect(sock, &fd);
	if (err == 0) {
		req = json_pack("{s:s}", "cmd", "ping");
		err = ctl_request(fd, req, &ans, 2000);
		json_decref(req);
		if (err == 0)
			json_decref(ans);
		ctl_close(fd);
	}
	if (err < 0)
		fprintf(stderr, "pygcprofiler: no gcmond answers at %s (%s); "
		    "running the program anyway: its agent connects when the "
		    "daemon starts\n", sock, strerror(-err));
	err = pgp_program_env(o, sock, r.run_id, r.agent_dir,
	    sizeof r.agent_dir);
	if (err == 0)
		err = pgp_install_signals();
	if (err == 0)
		err = pgp_spawn(o, &r.child, &eno);
	if (err < 0) {
		fprintf(stderr, "pygcprofiler: cannot start %s: %s\n",
		    o->python, strerror(-err));
		return 1;
	}
	if (eno) {
		waitpid(r.child, &r.child_status, 0);
		fprintf(stderr, "pygcprofiler: cannot run %s: %s\n", o->python,
		    strerror(eno));
		return 127;
	}
	pgp_supervise(&r, stderr);
	return pgp_exit_status(r.child_status);
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

static int pgp_run_embedded(struct pgp_opts *o)
{
	char dir[PATH_MAX], sock[PATH_MAX + 16], gcmond[PATH_MAX];
	const char *tmp = getenv("TMPDIR");
	struct pgp_run r;
	struct timespec ts;
	json_t *req, *ans;
	int err, eno = 0, status;

	memset(&r, 0, sizeof r);
	r.o = o;
	r.watch_fd = r.ctl_fd = -1;
	r.out = stderr;
	clock_gettime(CLOCK_REALTIME, &ts);
	r.start_real = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	if (o->log_file && (err = pgp_open_log(o->log_file, &r.out)) < 0) {
		fprintf(stderr, "pygcprofiler: cannot open --log-file %s: %s\n",
		    o->log_file, strerror(-err));
		return CTL_EXIT_USAGE;
	}
	if (o->flame_file) {
		/* Fail now, not after a long run. */
		err = pgp_write_flame_file(&r, o->flame_file);
		if (err < 0) {
			fprintf(stderr, "pygcprofiler: cannot write "
			    "--flamegraph-file %s: %s\n", o->flame_file,
			    strerror(-err));
			return CTL_EXIT_USAGE;
		}
	}
	pgp_make_run_id(r.run_id, sizeof r.run_id);
	snprintf(dir, sizeof dir, "%s/pygcprofiler-XXXXXX",
	    tmp && *tmp && strlen(tmp) < 60 ? tmp : "/tmp");
	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "pygcprofiler: cannot create a private "
		    "directory in %s: %s\n", tmp ? tmp : "/tmp", strerror(errno));
		return 1;
	}
	snprintf(sock, sizeof sock, "%s/gcmon.sock", dir);
	pgp_find_gcmond(gcmond, sizeof gcmond);
	err = pgp_install_signals();
	if (err == 0)
		err = pgp_start_daemon(&r, gcmond, sock);
	if (err == 0) {
		err = pgp_wait_ping(&r, sock, &r.ctl_fd);
		if (err == -ECHILD)
			fprintf(stderr, "pygcprofiler: %s exited at start "
			    "(see its message above)\n", gcmond);
		else if (err < 0)
			fprintf(stderr, "pygcprofiler: %s did not answer at %s: "
			    "%s\n", gcmond, sock, strerror(-err));
	} else {
		fprintf(stderr, "pygcprofiler: cannot start %s: %s\n", gcmond,
		    strerror(-err));
	}
	if (err < 0)
		goto out_daemon;
	if ((err = ctl_connect(sock, &r.watch_fd)) == 0) {
		req = json_pack("{s:s,s:s}", "cmd", "watch", "run", r.run_id);
		err = ctl_request(r.watch_fd, req, &ans, 5000);
		json_decref(req);
		if (err == 0) {
			if (!json_is_true(json_object_get(ans, "ok")))
				err = -EPROTO;
			json_decref(ans);
		}
	}
	if (err < 0) {
		fprintf(stderr, "pygcprofiler: cannot watch the run on %s: %s\n",
		    sock, strerror(-err));
		goto out_daemon;
	}
	if (o->json) {
		pgp_json_line(r.out, json_pack("{s:s,s:s,s:o,s:f,s:f,s:b,s:b,"
		    "s:i}", "type", "start", "run", r.run_id, "command",
		    pgp_command_json(o), "alert_threshold_ms", o->alert_ms,
		    "interval_s", o->interval_s, "dump_objects", o->dump_objects,
		    "dump_garbage", o->dump_garbage, "gcmond_pid", (int)r.daemon));
	} else {
		fprintf(r.out, "GMEM Monitoring initialized (gcmon agent; run "
		    "%s; alert threshold %.1fms)\n", r.run_id, o->alert_ms);
		if (o->dump_objects)
			fputs("GMEM --dump-objects: each process lists its "
			    "objects by type when it exits\n", r.out);
		if (o->dump_garbage)
			fputs("GMEM --dump-garbage: gc.DEBUG_SAVEALL is set in "
			    "every process; uncollectable objects are listed at "
			    "exit\n", r.out);
		fputs("GMEM Running: ", r.out);
		pgp_print_command(r.out, o);
		fputc('\n', r.out);
		fflush(r.out);
	}
	err = pgp_program_env(o, sock, r.run_id, r.agent_dir,
	    sizeof r.agent_dir);
	if (err == 0)
		err = pgp_spawn(o, &r.child, &eno);
	if (err < 0) {
		fprintf(stderr, "pygcprofiler: cannot start %s: %s\n",
		    o->python, strerror(-err));
		goto out_daemon;
	}
	if (eno) {
		fprintf(stderr, "pygcprofiler: cannot run %s: %s\n", o->python,
		    strerror(eno));
		r.exec_failed = 1;
	}
	pgp_supervise(&r, stderr);
	pgp_collect(&r);
	pgp_print_report(&r);
	if (o->flame_file && (err = pgp_write_flame_file(&r, o->flame_file)) < 0)
		fprintf(stderr, "pygcprofiler: cannot write --flamegraph-file "
		    "%s: %s\n", o->flame_file, strerror(-err));
	status = r.exec_failed ? 127 : pgp_exit_status(r.child_status);
	if (o->json)
		pgp_json_line(r.out, json_pack("{s:s,s:i,s:o}", "type", "exit",
		    "status", status, "signal", WIFSIGNALED(r.child_status) &&
		    !r.exec_failed ? json_integer(WTERMSIG(r.child_status)) :
		    json_null()));
	else if (!r.exec_failed && WIFSIGNALED(r.child_status))
		fprintf(r.out, "\nGMEM The program was killed by signal %d "
		    "(%s); exit status %d\n", WTERMSIG(r.child_status),
		    strsignal(WTERMSIG(r.child_status)), status);
	err = 0;
	goto out_stop;

out_daemon:
	status = 1;
out_stop:
	if (r.watch_fd >= 0)
		ctl_close(r.watch_fd);
	pgp_stop_daemon(&r);
	if (r.ctl_fd >= 0)
		ctl_close(r.ctl_fd);
	unlink(sock);
	if (rmdir(dir) < 0 && errno != ENOENT)
		fprintf(stderr, "pygcprofiler: cannot remove %s: %s\n", dir,
		    strerror(errno));
	json_decref(r.report);
	free(r.flame);
	if (r.out != stderr && fclose(r.out) != 0)
		fprintf(stderr, "pygcprofiler: writing %s: %s\n", o->log_file,
		    strerror(errno));
	return status;
}

int main(int argc, char **argv)
{
	struct pgp_opts o;
	char msg[512], sockbuf[PATH_MAX];
	const char *env_py = getenv("GCMON_PYTHON");
	const char *env_sock = getenv("GCMON_SOCKET");
	struct stat st;
	int r;

	memset(&o, 0, sizeof o);
	o.interval_s = 5.0;
	o.alert_ms = 50.0;
	o.flame_bucket_s = 5.0;
	o.term_width = 80;
	o.buckets[0] = 1;
	o.buckets[1] = 5;
	o.buckets[2] = 20;
	o.buckets[3] = 50;
	o.buckets[4] = 100;
	o.nbuckets = 5;
	o.python = env_py && *env_py ? env_py : "python3";

	if (argc < 2) {
		fputs(pgp_usage_text, stderr);
		return CTL_EXIT_USAGE;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    (strcmp(argv[1], "help") == 0 && (argc == 2 ||
	    strcmp(argv[2], "run") == 0))) {
		fputs(pgp_usage_text, stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("pygcprofiler (gcmon) %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (strcmp(argv[1], "run") != 0) {
		fprintf(stderr, "pygcprofiler: unknown command '%s' (expected "
		    "run; see pygcprofiler --help)\n", argv[1]);
		return CTL_EXIT_USAGE;
	}
	r = pgp_parse_run(argc - 2, argv + 2, &o, msg, sizeof msg);
	if (r < 0) {
		fprintf(stderr, "pygcprofiler: %s\n", msg);
		return CTL_EXIT_USAGE;
	}
	if (r == PGP_HELP) {
		fputs(pgp_usage_text, stdout);
		return 0;
	}
	if (r == PGP_VERSION) {
		printf("pygcprofiler (gcmon) %s\n", PACKAGE_VERSION);
		return 0;
	}
	if (!o.module && stat(o.prog[0], &st) < 0) {
		if (pgp_looks_like_module(o.prog[0]))
			fprintf(stderr, "pygcprofiler: Script file not found: %s "
			    "(to run a module or console script, use: "
			    "pygcprofiler run -m %s ...)\n", o.prog[0], o.prog[0]);
		else
			fprintf(stderr, "pygcprofiler: Script file not found: "
			    "%s\n", o.prog[0]);
		return CTL_EXIT_USAGE;
	}
	if (o.socket == NULL && env_sock && *env_sock)
		o.socket = env_sock;
	if (o.socket) {
		if (strlen(o.socket) >= sizeof sockbuf) {
			fprintf(stderr, "pygcprofiler: --socket path too long\n");
			return CTL_EXIT_USAGE;
		}
		return pgp_run_shared(&o, o.socket);
	}
	return pgp_run_embedded(&o);
}
