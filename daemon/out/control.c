/*
 * control.c: the control commands of doc/control.md (see control.h).
 * Called by server.c for each CONTROL frame and by check_control. A
 * request is checked once, by ctl_parse, against its command's row of
 * ctl_cmds (the keys it allows and needs) and the value rules of
 * ctl_keys; a handler then only computes its answer, built by json.c.
 * No I/O, no clock, never changes the aggregates. A new command is one
 * row and one handler.
 */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.h"
#include "json.h"
#include "protocol.h"
#include "requests_answer.h"
#include "stacks_answer.h"

enum ctl_key { CTL_RUN, CTL_PID, CTL_TIMEOUT_MS, CTL_MIN_PROCESSES, CTL_LE_MS,
	CTL_EVENTS, CTL_SERVICE, CTL_NKEYS };
enum ctl_kind { CTL_INT, CTL_STRING, CTL_EDGES, CTL_WORD };

/* "events" of watch: its index is the answer's watch_events. */
static const char *const ctl_events_words[] = { "json", "binary", NULL };
#define CTL_K(k)	(1u << (k))

/* How each request key is checked, whatever the command. */
static const struct ctl_key_spec {
	const char *name;
	enum ctl_kind kind;	/* CTL_INT: an integer from min to max;
				 * CTL_EDGES: min to max numbers;
				 * CTL_WORD: one of words (num: its index) */
	json_int_t min, max;
	const char *bad;	/* the error when the value is not that */
	const char *const *words;
} ctl_keys[CTL_NKEYS] = {
	[CTL_RUN] = { "run", CTL_STRING, 0, 0, "\"run\" must be a string" },
	[CTL_SERVICE] = { "service", CTL_STRING, 0, 0,
	    "\"service\" must be a string" },
	/* Any integer: one no process has is "not_found", as in 0.1. */
	[CTL_PID] = { "pid", CTL_INT, LLONG_MIN, LLONG_MAX,
	    "\"pid\" must be an integer" },
	[CTL_TIMEOUT_MS] = { "timeout_ms", CTL_INT, 0, PROTO_WAIT_MAX_MS,
	    "\"timeout_ms\" must be an integer from 0 to "
	    PROTO_STR(PROTO_WAIT_MAX_MS) },
	[CTL_MIN_PROCESSES] = { "min_processes", CTL_INT, 0, 1000000,
	    "\"min_processes\" must be a non-negative integer" },
	[CTL_LE_MS] = { "le_ms", CTL_EDGES, 1, PROTO_MAX_EDGES,
	    "\"le_ms\" must be an array of 1 to " PROTO_STR(PROTO_MAX_EDGES)
	    " ascending numbers of "
	    "milliseconds above 0 and at most " PROTO_STR(PROTO_MAX_EDGE_MS) },
	[CTL_EVENTS] = { "events", CTL_WORD, 0, 0,
	    "\"events\" must be \"json\" or \"binary\"", ctl_events_words },
};

/* A request's keys once checked. */
struct ctl_args {
	unsigned have;			/* CTL_K() of each key given */
	const char *str[CTL_NKEYS];	/* CTL_STRING keys, borrowed */
	json_int_t num[CTL_NKEYS];
	double le_ms[PROTO_MAX_EDGES];	/* CTL_LE_MS, ascending */
	size_t nle;
	struct agg_run *r;		/* resolved (rows with resolve set) */
	struct agg_proc *p;
};

typedef enum control_kind ctl_handler(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans);

struct ctl_cmd {
	const char *name;
	unsigned keys;		/* allowed */
	unsigned need;		/* required */
	int resolve;		/* "run"/"pid" must name what exists */
	ctl_handler *fn;
};

static enum control_kind ctl_fail(struct control_answer *ans,
    const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static enum control_kind ctl_fail(struct control_answer *ans,
    const char *code, const char *fmt, ...)
{
	char msg[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_decref(ans->obj);
	ans->obj = djson_error(code, msg);
	return ans->kind = CONTROL_ERROR;
}

/* ---- handlers ------------------------------------------------------------ */

static enum control_kind ctl_ping(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans)
{
	(void)args;
	ans->obj = djson_ping(ctx->agg, ctx->daemon_pid,
	    ctx->agg->now_real - ctx->start_real);
	return CONTROL_ANSWER;
}

static enum control_kind ctl_summary(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans)
{
	ans->obj = djson_keyed("summary",
	    djson_summary(ctx->agg, args->r, args->p));
	return CONTROL_ANSWER;
}

static enum control_kind ctl_processes(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans)
{
	ans->obj = djson_keyed("processes", djson_processes(ctx->agg, args->r));
	return CONTROL_ANSWER;
}

static enum control_kind ctl_runs(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans)
{
	(void)args;
	ans->obj = djson_keyed("runs", djson_runs(ctx->agg));
	return CONTROL_ANSWER;
}

static enum control_kind ctl_recommendations(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans)
{
	ans->obj = djson_keyed("recommendations",
	    djson_recommendations(ctx->agg, args->r, args->p));
	return CONTROL_ANSWER;
}

static enum control_kind ctl_report(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans)
{
	ans->obj = djson_report(ctx->agg, args->r);
	return CONTROL_ANSWER;
}

static enum control_kind ctl_stacks(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans)
{
	ans->obj = djson_keyed("stacks",
	    stacks_answer(ctx->agg, args->r, args->p));
	return CONTROL_ANSWER;
}

static enum control_kind ctl_requests(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans)
{
	ans->obj = djson_keyed("requests",
	    requests_answer(ctx->agg, args->r, args->p,
	    args->str[CTL_SERVICE]));
	return CONTROL_ANSWER;
}

static enum control_kind ctl_durations(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans)
{
	ans->obj = djson_durations(ctx->agg, args->r, args->le_ms, args->nle);
	return CONTROL_ANSWER;
}

/* Deferred: server.c answers when the run has ended or time is up. With
 * min_processes 0, a run with no live process (none at all: its agents
 * never loaded) is answered now, not at the timeout. */
static enum control_kind ctl_wait(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans)
{
	const struct agg_run *r;

	if (ctx->waiting)
		return ctl_fail(ans, "busy",
		    "a wait is already pending on this connection");
	if ((args->have & CTL_K(CTL_MIN_PROCESSES)) &&
	    args->num[CTL_MIN_PROCESSES] == 0 &&
	    ((r = agg_run_find(ctx->agg, args->str[CTL_RUN])) == NULL ||
	    r->nlive == 0)) {
		ans->obj = djson_wait(ctx->agg, args->str[CTL_RUN], 0);
		return CONTROL_ANSWER;
	}
	if ((ans->run = strdup(args->str[CTL_RUN])) == NULL)
		return ctl_fail(ans, "busy", "out of memory");
	ans->wait_ms = args->have & CTL_K(CTL_TIMEOUT_MS) ?
	    (uint64_t)args->num[CTL_TIMEOUT_MS] : CONTROL_WAIT_DEFAULT_MS;
	ans->wait_min = args->have & CTL_K(CTL_MIN_PROCESSES) ?
	    (unsigned)args->num[CTL_MIN_PROCESSES] : 1;
	return CONTROL_WAIT;
}

/* A subscription: server.c streams the run's objects after this answer. */
static enum control_kind ctl_watch(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans)
{
	(void)ctx;
	if (args->str[CTL_RUN] != NULL &&
	    (ans->run = strdup(args->str[CTL_RUN])) == NULL)
		return ctl_fail(ans, "busy", "out of memory");
	ans->watch_events = args->have & CTL_K(CTL_EVENTS) ?
	    (enum control_watch_events)args->num[CTL_EVENTS] :
	    CONTROL_EVENTS_JSON;
	ans->obj = djson_keyed("watching", json_true());
	return CONTROL_WATCH;
}

static enum control_kind ctl_stop(const struct control_ctx *ctx,
    const struct ctl_args *args, struct control_answer *ans)
{
	(void)args;
	if (ctx->peer_uid != ctx->daemon_uid && ctx->peer_uid != 0)
		return ctl_fail(ans, "forbidden",
		    "only the daemon's own user (or root) may stop it");
	ans->obj = djson_keyed(NULL, NULL);
	return CONTROL_STOP;
}

#define CTL_SCOPE	(CTL_K(CTL_RUN) | CTL_K(CTL_PID))
#define CTL_WAIT_KEYS	(CTL_K(CTL_RUN) | CTL_K(CTL_TIMEOUT_MS) | \
			    CTL_K(CTL_MIN_PROCESSES))

static const struct ctl_cmd ctl_cmds[] = {
	{ "ping", 0, 0, 0, ctl_ping },
	{ "summary", CTL_SCOPE, 0, 1, ctl_summary },
	{ "processes", CTL_K(CTL_RUN), 0, 1, ctl_processes },
	{ "runs", 0, 0, 0, ctl_runs },
	{ "recommendations", CTL_SCOPE, 0, 1, ctl_recommendations },
	{ "report", CTL_K(CTL_RUN), CTL_K(CTL_RUN), 1, ctl_report },
	{ "durations", CTL_K(CTL_RUN) | CTL_K(CTL_LE_MS),
	    CTL_K(CTL_RUN) | CTL_K(CTL_LE_MS), 1, ctl_durations },
	{ "wait", CTL_WAIT_KEYS, CTL_K(CTL_RUN), 0, ctl_wait },
	{ "watch", CTL_K(CTL_RUN) | CTL_K(CTL_EVENTS), 0, 0, ctl_watch },
	{ "stop", 0, 0, 0, ctl_stop },
	{ "stacks", CTL_SCOPE, 0, 1, ctl_stacks },
	{ "requests", CTL_SCOPE | CTL_K(CTL_SERVICE), 0, 1, ctl_requests },
};

/* ---- the one validation path --------------------------------------------- */

/* An array of min to max ascending numbers in (0, PROTO_MAX_EDGE_MS]. */
static int ctl_edges(const struct ctl_key_spec *k, json_t *v,
    struct ctl_args *args)
{
	size_t i, n = json_array_size(v);
	double ms;

	if (!json_is_array(v) || n < (size_t)k->min || n > (size_t)k->max)
		return -1;
	for (i = 0; i < n; i++) {
		if (!json_is_number(json_array_get(v, i)))
			return -1;
		ms = json_number_value(json_array_get(v, i));
		if (!(ms > 0 && ms <= PROTO_MAX_EDGE_MS) ||
		    (i > 0 && ms <= args->le_ms[i - 1]))
			return -1;
		args->le_ms[i] = ms;
	}
	args->nle = n;
	return 0;
}

static int ctl_value(const struct ctl_key_spec *k, json_t *v,
    struct ctl_args *args)
{
	if (k->kind == CTL_STRING)
		return json_is_string(v) ? 0 : -1;
	if (k->kind == CTL_EDGES)
		return ctl_edges(k, v, args);
	if (k->kind == CTL_WORD) {
		const char *w = json_string_value(v);
		json_int_t i;

		for (i = 0; w != NULL && k->words[i] != NULL; i++)
			if (strcmp(w, k->words[i]) == 0) {
				args->num[k - ctl_keys] = i;
				return 0;
			}
		return -1;
	}
	if (!json_is_integer(v) || json_integer_value(v) < k->min ||
	    json_integer_value(v) > k->max)
		return -1;
	return 0;
}

/* Looks up what "run" or "pid" names. */
static int ctl_resolve(const struct control_ctx *ctx, struct ctl_args *args,
    struct control_answer *ans)
{
	json_int_t pid = args->num[CTL_PID];

	if (args->str[CTL_RUN] != NULL &&
	    (args->r = agg_run_find(ctx->agg, args->str[CTL_RUN])) == NULL) {
		ctl_fail(ans, "not_found", "no run \"%.256s\"",
		    args->str[CTL_RUN]);
		return -1;
	}
	if ((args->have & CTL_K(CTL_PID)) && (pid <= 0 || pid > UINT32_MAX ||
	    (args->p = agg_proc_find(ctx->agg, (uint32_t)pid)) == NULL)) {
		ctl_fail(ans, "not_found", "no process %lld", (long long)pid);
		return -1;
	}
	return 0;
}

/* Checks req's keys and values against cmd. 0, or -1 with *ans the error. */
static int ctl_parse(const struct control_ctx *ctx, const struct ctl_cmd *cmd,
    json_t *req, struct ctl_args *args, struct control_answer *ans)
{
	const char *k;
	json_t *v;
	unsigned i;

	memset(args, 0, sizeof *args);
	json_object_foreach(req, k, v) {
		if (strcmp(k, "cmd") == 0)
			continue;
		for (i = 0; i < CTL_NKEYS; i++)
			if (strcmp(k, ctl_keys[i].name) == 0)
				break;
		if (i == CTL_NKEYS || !(cmd->keys & CTL_K(i))) {
			ctl_fail(ans, "bad_request", "unknown argument \"%.64s\"", k);
			return -1;
		}
		if (ctl_value(&ctl_keys[i], v, args) < 0) {
			ctl_fail(ans, "bad_request", "%s", ctl_keys[i].bad);
			return -1;
		}
		args->have |= CTL_K(i);
		if (ctl_keys[i].kind == CTL_STRING)
			args->str[i] = json_string_value(v);
		else if (ctl_keys[i].kind == CTL_INT)
			args->num[i] = json_integer_value(v);
	}
	for (i = 0; i < CTL_NKEYS; i++)
		if ((cmd->need & CTL_K(i)) && !(args->have & CTL_K(i))) {
			ctl_fail(ans, "bad_request", "%s needs \"%s\"", cmd->name,
			    ctl_keys[i].name);
			return -1;
		}
	if ((args->have & CTL_SCOPE) == CTL_SCOPE) {
		ctl_fail(ans, "bad_request", "give \"run\" or \"pid\", not both");
		return -1;
	}
	if ((args->have & CTL_K(CTL_SERVICE)) && (args->have & CTL_K(CTL_PID))) {
		ctl_fail(ans, "bad_request", "a process is of one service: give "
		    "\"service\" alone or with \"run\", not with \"pid\"");
		return -1;
	}
	return cmd->resolve ? ctl_resolve(ctx, args, ans) : 0;
}

static const struct ctl_cmd *ctl_find(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof ctl_cmds / sizeof ctl_cmds[0]; i++)
		if (strcmp(ctl_cmds[i].name, name) == 0)
			return &ctl_cmds[i];
	return NULL;
}

void control_request(const struct control_ctx *ctx, const char *js,
    size_t len, struct control_answer *ans)
{
	const struct ctl_cmd *cmd;
	struct ctl_args args;
	json_error_t jerr;
	const char *name;
	json_t *req;

	memset(ans, 0, sizeof *ans);
	req = json_loadb(js, len, JSON_REJECT_DUPLICATES, &jerr);
	if (req == NULL || !json_is_object(req)) {
		ctl_fail(ans, "bad_request", "the request is not a JSON object%s%.120s",
		    req == NULL ? ": " : "", req == NULL ? jerr.text : "");
		goto out;
	}
	if ((name = json_string_value(json_object_get(req, "cmd"))) == NULL) {
		ctl_fail(ans, "bad_request", "\"cmd\" (a string) is missing");
		goto out;
	}
	if ((cmd = ctl_find(name)) == NULL) {
		ctl_fail(ans, "bad_request", "unknown command \"%.64s\"", name);
		goto out;
	}
	if (ctl_parse(ctx, cmd, req, &args, ans) < 0)
		goto out;
	ans->kind = cmd->fn(ctx, &args, ans);
	if (ans->kind == CONTROL_ERROR || ans->kind == CONTROL_WAIT)
		goto out;
	if ((ans->obj = djson_ok(ans->obj)) == NULL) {
		free(ans->run);
		ans->run = NULL;
		ctl_fail(ans, "busy", "out of memory");
	}
out:
	json_decref(req);
}

void control_answer_fini(struct control_answer *ans)
{
	json_decref(ans->obj);
	ans->obj = NULL;
	free(ans->run);
	ans->run = NULL;
}
