/*
 * options.c: pygcprofiler's command line. One table per command (run and
 * exec: pgp_optdefs; attach and detach: attach_optdefs) is what both the
 * one parser (opts_one) and --help are made from, as tmux's usage and
 * tmux.1 agree: an option is one row. Called by main (pygcprofiler.c) and
 * attach.c; parses and checks values only: it prints nothing but --help,
 * starts nothing.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgp.h"

enum pgp_opt_kind {
	PGP_OPT_FLAG,		/* sets the int at field to 1 */
	PGP_OPT_PATH,		/* a non-empty string into the pointer at field */
	PGP_OPT_TEXT,		/* the same, and no newline in it */
	PGP_OPT_VALUE,		/* the row's set() checks and stores it */
	PGP_OPT_OPTVALUE,	/* set() too; the value only as --opt=VALUE */
	PGP_OPT_HELP,
	PGP_OPT_VERSION,
};

struct pgp_optdef {
	const char *name;
	const char *metavar;	/* the value's name in --help, or "" */
	const char *help;
	enum pgp_opt_kind kind;
	size_t field;		/* PGP_OPT_FLAG, _PATH, _TEXT */
	/* PGP_OPT_VALUE: 0, or a negative errno with the reason in *why;
	 * o is the table's options (struct pgp_opts, struct attach_opts). */
	int (*set)(void *o, const char *val, const char **why);
	int not_detach;		/* attach_optdefs: no option of detach */
};

/* The rows of one command, and the mode it is parsed in (detach: the
 * rows with not_detach are no option). */
struct pgp_optset {
	const struct pgp_optdef *defs;
	size_t n;
	int detach;
};

static int opts_parse_double(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (errno || end == s || *end != '\0' || !isfinite(*v))
		return -EINVAL;
	return 0;
}

static int opts_parse_buckets(const char *s, struct pgp_opts *o)
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
		if (opts_parse_double(tok, &v) < 0 || v <= 0)
			return -EINVAL;
		if (o->nbuckets > 0 && v <= o->buckets[o->nbuckets - 1])
			return -EDOM;
		if (o->nbuckets == PGP_MAX_BUCKETS)
			return -E2BIG;
		o->buckets[o->nbuckets++] = v;
	}
	return o->nbuckets > 0 ? 0 : -EINVAL;
}

static int opts_set_interval(void *arg, const char *val, const char **why)
{
	struct pgp_opts *o = arg;

	if (opts_parse_double(val, &o->interval_s) < 0 ||
	    !(o->interval_s >= 0.01) || o->interval_s > 86400)
		return *why = "must be a number of seconds from 0.01 to 86400",
		    -EINVAL;
	return 0;
}

static int opts_set_alert(void *arg, const char *val, const char **why)
{
	struct pgp_opts *o = arg;

	if (opts_parse_double(val, &o->alert_ms) < 0 || o->alert_ms <= 0)
		return *why = "must be a number of milliseconds above 0",
		    -EINVAL;
	return 0;
}

static int opts_set_flame_bucket(void *arg, const char *val, const char **why)
{
	struct pgp_opts *o = arg;

	if (opts_parse_double(val, &o->flame_bucket_s) < 0 ||
	    o->flame_bucket_s < 0.1 || o->flame_bucket_s > 86400)
		return *why = "must be a number of seconds, at least 0.1",
		    -EINVAL;
	return 0;
}

static int opts_set_stacks_by(void *arg, const char *val, const char **why)
{
	struct pgp_opts *o = arg;

	if (strcmp(val, "count") != 0 && strcmp(val, "time") != 0)
		return *why = "must be count or time", -EINVAL;
	o->stacks_by_count = strcmp(val, "count") == 0;
	return 0;
}

static int opts_set_width(void *arg, const char *val, const char **why)
{
	struct pgp_opts *o = arg;
	char *end;
	long w;

	errno = 0;
	w = strtol(val, &end, 10);
	if (errno || end == val || *end || w < 20 || w > 1000)
		return *why = "must be an integer from 20 to 1000", -EINVAL;
	o->term_width = w;
	return 0;
}

static int opts_set_buckets(void *arg, const char *val, const char **why)
{
	struct pgp_opts *o = arg;
	int err = opts_parse_buckets(val, o);

	if (err == -EDOM)
		*why = "edges must be strictly ascending";
	else if (err == -E2BIG)
		*why = "at most " PROTO_STR(PROTO_MAX_EDGES) " edges";
	else if (err < 0)
		*why = "must be a comma-separated list of milliseconds above 0";
	return err;
}

static int opts_set_python(void *arg, const char *val, const char **why)
{
	struct pgp_opts *o = arg;

	if (*val == '\0')
		return *why = "needs a path", -EINVAL;
	o->python = val;
	o->python_given = 1;
	return 0;
}

static int opts_set_live(void *arg, const char *val, const char **why)
{
	struct pgp_opts *o = arg;
	char *end;
	long port;

	o->live = 1;
	o->live_port = 0;
	if (val == NULL)
		return 0;
	errno = 0;
	port = strtol(val, &end, 10);
	if (errno || end == val || *end || port < 1 || port > 65535)
		return *why = "must be a TCP port from 1 to 65535", -EINVAL;
	o->live_port = (unsigned)port;
	return 0;
}

#define PGP_FLAG(name, help, member) \
	{ name, "", help, PGP_OPT_FLAG, offsetof(struct pgp_opts, member), \
	    NULL, 0 }
#define PGP_PATH(name, help, member) \
	{ name, " PATH", help, PGP_OPT_PATH, offsetof(struct pgp_opts, member), \
	    NULL, 0 }
#define PGP_VALUE(name, metavar, help, set) \
	{ name, metavar, help, PGP_OPT_VALUE, 0, set, 0 }

static const struct pgp_optdef pgp_optdefs[] = {
	PGP_VALUE("--interval", " S",
	    "RSS/CPU snapshot interval in seconds (5.0)", opts_set_interval),
	PGP_FLAG("--json", "JSON objects, one per line, instead of text", json),
	PGP_FLAG("--stats-only", "no per-collection lines, only the report",
	    stats_only),
	PGP_FLAG("--dump-objects",
	    "object counts by type at each process's exit", dump_objects),
	PGP_FLAG("--dump-garbage",
	    "list the objects gc.DEBUG_SAVEALL keeps (sets it)", dump_garbage),
	PGP_FLAG("--requests",
	    "record the requests gunicorn/uvicorn/uWSGI (--module) workers "
	    "serve; report what GC adds to them", requests),
	PGP_PATH("--log-file", "write the output to PATH (mode 0600)",
	    log_file),
	PGP_VALUE("--alert-threshold-ms", " MS",
	    "alert on pauses longer than MS ("
	    PROTO_STR(PROTO_PAUSE_THRESHOLD_MS) ".0)", opts_set_alert),
	PGP_PATH("--flamegraph-file",
	    "folded stacks for flamegraph.pl/speedscope", flame_file),
	PGP_VALUE("--flamegraph-bucket", " S",
	    "flame graph time bucket in seconds (5.0)", opts_set_flame_bucket),
	PGP_FLAG("--terminal-flamegraph", "ASCII flame graph: time x generation",
	    term_flame),
	PGP_VALUE("--terminal-flamegraph-width", " N", "width of its bars (80)",
	    opts_set_width),
	PGP_FLAG("--terminal-flamegraph-color", "ANSI colours in it",
	    term_color),
	PGP_VALUE("--duration-buckets", " LIST",
	    "pause histogram edges in ms (1,5,20,50,100)", opts_set_buckets),
	PGP_PATH("--stacks-file", "folded Python stacks of the gen-2 and long "
	    "pauses", stacks_file),
	PGP_VALUE("--stacks-by", " count|time",
	    "--stacks-file weight: pause µs or collections (time)",
	    opts_set_stacks_by),
	PGP_FLAG("--prompt", "print an optimisation prompt with the figures",
	    prompt),
	PGP_PATH("--socket", "shared mode: report to the gcmond at PATH",
	    socket),
	PGP_VALUE("--python", " PATH", "interpreter to run (python3); not "
	    "with exec", opts_set_python),
	{ "--live", "[=PORT]", "dashboard on 127.0.0.1:PORT (or a free port) "
	    "while it runs",
	    PGP_OPT_OPTVALUE, 0, opts_set_live, 0 },
	{ "--help", "", "this text", PGP_OPT_HELP, 0, NULL, 0 },
	{ "--version", "", "print the version", PGP_OPT_VERSION, 0, NULL, 0 },
};

static const struct pgp_optset pgp_run_opts = {
	pgp_optdefs, sizeof pgp_optdefs / sizeof pgp_optdefs[0], 0
};

static int opts_set_timeout(void *arg, const char *val, const char **why)
{
	struct attach_opts *o = arg;
	char *end;

	o->timeout_s = strtod(val, &end);
	if (end == val || *end || !(o->timeout_s > 0) || o->timeout_s > 3600)
		return *why = "must be a number of seconds above 0, at most "
		    "3600", -EINVAL;
	return 0;
}

#define ATTACH_TEXT(name, metavar, help, member) \
	{ name, metavar, help, PGP_OPT_TEXT, \
	    offsetof(struct attach_opts, member), NULL, 1 }

/* attach's, and of them the ones without not_detach: detach's. */
static const struct pgp_optdef attach_optdefs[] = {
	ATTACH_TEXT("--socket", " PATH", "report to the gcmond at PATH (as "
	    "the target sees it)", socket),
	ATTACH_TEXT("--service", " NAME", "the service name gcmond files them "
	    "under", service),
	{ "--tree", "", "also every Python descendant (gunicorn workers)",
	    PGP_OPT_FLAG, offsetof(struct attach_opts, tree), NULL, 0 },
	{ "--timeout", " S", "wait S seconds for a safe point (10)",
	    PGP_OPT_VALUE, 0, opts_set_timeout, 0 },
	{ "--help", "", "this text", PGP_OPT_HELP, 0, NULL, 0 },
};

/* The rows of set, as --help lists them. */
static void opts_print_rows(FILE *out, const struct pgp_optset *set)
{
	char col[64];
	size_t k;

	fputs("Options (--opt VALUE or --opt=VALUE):\n", out);
	for (k = 0; k < set->n; k++) {
		if (set->detach && set->defs[k].not_detach)
			continue;
		snprintf(col, sizeof col, "%s%s", set->defs[k].name,
		    set->defs[k].metavar);
		fprintf(out, "  %-29s %s\n", col, set->defs[k].help);
	}
}

void opts_usage(FILE *out, int exec)
{
	fputs("Usage: pygcprofiler run [options] script.py [script args...]\n"
	    "       pygcprofiler run [options] -m module [module args...]\n"
	    "       pygcprofiler exec [options] -- command [args...]\n"
	    "       pygcprofiler attach [--socket PATH] [--service NAME] "
	    "[--tree] PID...\n"
	    "       pygcprofiler detach [--tree] PID...\n"
	    "       pygcprofiler help run | help exec | help attach | help detach\n"
	    "       pygcprofiler --help | --version\n"
	    "\n", out);
	if (exec)
		fputs("exec runs any command (a shell script, uwsgi, celery, a "
		    "console script)\nlooked up on PATH, with the environment "
		    "that makes every Python process\nit starts load the agent, "
		    "and reports their garbage collections as run\ndoes. A "
		    "command that is not found exits 127, one that cannot be "
		    "run 126.\nEvery option comes before --; what follows is "
		    "the command's.\n\n", out);
	else
		fputs("Runs a Python program and reports every garbage collection "
		    "of every\nPython process it starts (forked workers and "
		    "exec'd interpreters too).\nEvery option comes before the "
		    "script or -m; what follows is the program's.\n"
		    "exec does the same for any command (see pygcprofiler help "
		    "exec).\n\n", out);
	opts_print_rows(out, &pgp_run_opts);
	fputs("\nEnvironment: GCMON_SOCKET (shared mode), GCMON_PYTHON, "
	    "GCMON_GCMOND,\nGCMON_AGENT_DIR. Exit status: the program's "
	    "(128+N if killed by signal N);\n2 for bad usage; 127/126 when "
	    "exec's command is not found / cannot\nbe run. See "
	    "pygcprofiler(1).\n", out);
}

void opts_attach_usage(FILE *out, int detach)
{
	const struct pgp_optset set = { attach_optdefs,
	    sizeof attach_optdefs / sizeof attach_optdefs[0], detach };

	if (detach)
		fputs("Usage: pygcprofiler detach [--tree] [--timeout S] "
		    "PID...\n\nStops the agent in running processes "
		    "(gcmon.stop()): gcmond ends their records\nwith the "
		    "collections up to now; an attach again starts a new "
		    "record.\n\n", out);
	else
		fputs("Usage: pygcprofiler attach [--socket PATH] [--service "
		    "NAME] [--tree] PID...\n\nLoads the agent into running "
		    "CPython 3.10+ processes and starts it as\ngcmon.start() "
		    "does: totals are exact from then on, and the collections\n"
		    "before count as before the agent loaded. 3.10-3.13: gdb "
		    "stops the process\nfor a moment to queue a loader that "
		    "its main thread runs at a safe point;\n3.14+: "
		    "sys.remote_exec. After a detach, an attach again is a "
		    "new\nrecord: the collections since the detach count as "
		    "before the agent loaded.\n\n", out);
	opts_print_rows(out, &set);
	fputs("\nEnvironment: GCMON_SOCKET, GCMON_GDB, GCMON_AGENT_DIR. Exit "
	    "status: 0 when every\nprocess is attached (or already was), 1 "
	    "when one is not, 2 for bad usage.\nSee pygcprofiler(1).\n", out);
}

void opts_init(struct pgp_opts *o)
{
	static const double buckets[] = { 1, 5, 20, 50, 100 };
	const char *env_py = getenv("GCMON_PYTHON");

	memset(o, 0, sizeof *o);
	o->interval_s = 5.0;
	o->alert_ms = PROTO_PAUSE_THRESHOLD_MS;
	o->flame_bucket_s = 5.0;
	o->term_width = 80;
	memcpy(o->buckets, buckets, sizeof buckets);
	o->nbuckets = sizeof buckets / sizeof buckets[0];
	o->python = env_py && *env_py ? env_py : "python3";
}

/* The row of set named by a[0..n), or NULL. */
static const struct pgp_optdef *opts_find(const struct pgp_optset *set,
    const char *a, size_t n)
{
	size_t k;

	for (k = 0; k < set->n; k++)
		if (strlen(set->defs[k].name) == n &&
		    strncmp(set->defs[k].name, a, n) == 0 &&
		    !(set->detach && set->defs[k].not_detach))
			return &set->defs[k];
	return NULL;
}

/* Applies one row to o (the set's options); a message for main in *why
 * on error. */
static int opts_apply(void *o, const struct pgp_optdef *def,
    const char *val, const char **why)
{
	char *base = (char *)o;

	*why = NULL;
	switch (def->kind) {
	case PGP_OPT_FLAG:
		*(int *)(void *)(base + def->field) = 1;
		return 0;
	case PGP_OPT_PATH:
		if (*val == '\0')
			return *why = "needs a path", -EINVAL;
		*(const char **)(void *)(base + def->field) = val;
		return 0;
	case PGP_OPT_TEXT:
		if (*val == '\0' || strchr(val, '\n') != NULL)
			return *why = *val ? "no newline in it" :
			    "must not be empty", -EINVAL;
		*(const char **)(void *)(base + def->field) = val;
		return 0;
	case PGP_OPT_VALUE:
	case PGP_OPT_OPTVALUE:
		return def->set(o, val, why);
	default:
		return 0;
	}
}

/* One option of set at argv[*i] (advanced past its value) into o. 0, or
 * -EINVAL with msg set (an unknown one with see, where to look), or
 * PGP_HELP / PGP_VERSION + 1 (so 0 means "go on"). */
static int opts_one(const struct pgp_optset *set, int argc, char **argv,
    int *i, void *o, const char *see, char *msg, size_t msglen)
{
	const char *a = argv[*i], *eq = strchr(a, '='), *val = NULL, *why;
	size_t n = eq ? (size_t)(eq - a) : strlen(a);
	const struct pgp_optdef *def = opts_find(set, a, n);

	if (def == NULL) {
		snprintf(msg, msglen, "unknown option '%.*s' (%s)", (int)n, a,
		    see);
		return -EINVAL;
	}
	if (*def->metavar == '\0' && eq) {
		snprintf(msg, msglen, "option %s takes no value", def->name);
		return -EINVAL;
	}
	if (def->kind == PGP_OPT_OPTVALUE) {
		val = eq ? eq + 1 : NULL;
	} else if (*def->metavar != '\0') {
		if (eq) {
			val = eq + 1;
		} else if (*i + 1 < argc) {
			val = argv[++*i];
		} else {
			snprintf(msg, msglen, "option %s needs a value",
			    def->name);
			return -EINVAL;
		}
	}
	if (def->kind == PGP_OPT_HELP)
		return PGP_HELP + 1;
	if (def->kind == PGP_OPT_VERSION)
		return PGP_VERSION + 1;
	if (opts_apply(o, def, val, &why) < 0) {
		snprintf(msg, msglen, "invalid value '%s' for %s: %s",
		    val ? val : "", def->name, why);
		return -EINVAL;
	}
	return 0;
}

int opts_attach_one(int argc, char **argv, int *i, struct attach_opts *o,
    char *msg, size_t msglen)
{
	const struct pgp_optset set = { attach_optdefs,
	    sizeof attach_optdefs / sizeof attach_optdefs[0], o->detach };
	int r;

	r = opts_one(&set, argc, argv, i, o, o->detach ? "see pygcprofiler "
	    "help detach" : "see pygcprofiler help attach", msg, msglen);
	return r == PGP_HELP + 1 ? 1 : r;
}

/*
 * In shared mode (--socket, or GCMON_SOCKET set: from_env) pygcprofiler
 * prints nothing of its own: the options that shape or place its report
 * would be ignored, so they are refused, naming what to use instead.
 * 0, or -EINVAL with msg set.
 */
int opts_check_shared(const struct pgp_opts *o, int from_env, char *msg,
    size_t msglen)
{
	const char *how = from_env ? "in shared mode (GCMON_SOCKET is set)" :
	    "with --socket";
	const char *opt = NULL;

	if (o->stacks_file != NULL) {
		snprintf(msg, msglen, "--stacks-file is written from "
		    "pygcprofiler's own gcmond: not %s (use gcmonctl stacks "
		    "--run ID)", how);
		return -EINVAL;
	}
	if (o->live) {
		snprintf(msg, msglen, "--live serves the dashboard from "
		    "pygcprofiler's own gcmond: not %s (start that gcmond with "
		    "--http-listen)", how);
		return -EINVAL;
	}
	if (o->json)
		opt = "--json";
	else if (o->log_file != NULL)
		opt = "--log-file";
	else if (o->flame_file != NULL)
		opt = "--flamegraph-file";
	else if (o->term_flame)
		opt = "--terminal-flamegraph";
	else if (o->prompt)
		opt = "--prompt";
	if (opt == NULL)
		return 0;
	snprintf(msg, msglen, "%s is for the report pygcprofiler prints from "
	    "its own gcmond: not %s, where it prints nothing (read the shared "
	    "gcmond with gcmonctl)", opt, how);
	return -EINVAL;
}

/*
 * The options before the program: from argv[*i] on, up to the first
 * argument that is not one (or after "--", or at "-m" when module is
 * non-NULL: *module is then set). 0, a negative errno with msg set, or
 * opts_one's PGP_HELP / PGP_VERSION + 1.
 */
static int opts_leading(int argc, char **argv, int *i, struct pgp_opts *o,
    int *module, char *msg, size_t msglen)
{
	int r;

	while (*i < argc) {
		const char *a = argv[*i];

		if (module != NULL && strcmp(a, "-m") == 0) {
			*module = 1;
			break;
		}
		if (strcmp(a, "--") == 0) {
			(*i)++;
			break;
		}
		if (a[0] != '-' || a[1] == '\0')
			break;
		if ((r = opts_one(&pgp_run_opts, argc, argv, i, o, "options "
		    "come before the script, -m or exec's --; see pygcprofiler "
		    "--help", msg, msglen)) != 0)
			return r;
		(*i)++;
	}
	return 0;
}

int opts_parse_run(int argc, char **argv, struct pgp_opts *o, char *msg,
    size_t msglen)
{
	int i = 0, module = 0, r;

	if ((r = opts_leading(argc, argv, &i, o, &module, msg, msglen)) != 0)
		return r < 0 ? r : r - 1;
	if (module) {
		if (i + 1 >= argc || argv[i + 1][0] == '\0') {
			snprintf(msg, msglen, "-m needs a module name");
			return -EINVAL;
		}
		o->module = 1;
		o->prog = argv + i + 1;
		o->nprog = argc - i - 1;
		return PGP_RUN;
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

int opts_parse_exec(int argc, char **argv, struct pgp_opts *o, char *msg,
    size_t msglen)
{
	int i = 0, r;

	if ((r = opts_leading(argc, argv, &i, o, NULL, msg, msglen)) != 0)
		return r < 0 ? r : r - 1;
	if (o->python_given) {
		snprintf(msg, msglen, "--python has no meaning with exec: the "
		    "command runs as given (to choose the interpreter, name it "
		    "in the command: pygcprofiler exec -- python3.11 ...)");
		return -EINVAL;
	}
	if (i >= argc || argv[i][0] == '\0') {
		snprintf(msg, msglen, "no command given (pygcprofiler exec "
		    "[options] -- command [args...])");
		return -EINVAL;
	}
	o->exec = 1;
	o->module = 0;
	o->prog = argv + i;
	o->nprog = argc - i;
	return PGP_RUN;
}

int opts_looks_like_module(const char *name)
{
	const char *p;
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
	/* A command of that name runs: exec's lookup (command.c). */
	if (command_find(name, buf, sizeof buf) == 0)
		return 1;
	/* Not on PATH: an identifier-like dotted name still reads as one. */
	return strchr(name, '-') == NULL;
}
