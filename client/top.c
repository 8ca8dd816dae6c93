/*
 * top.c: `gcmonctl top`: every interval asks gcmond for `summary` and
 * `processes` (the control protocol's answers, doc/control.md) and draws
 * one row per process; a `watch` subscription on a second connection
 * gives each interval's pauses (max and p99 per process over the
 * interval, exact, from the events) and the last alerts. Collections
 * per second come from the deltas of the cumulative answers. Drawn with
 * ncurses without clear(), so curses sends only the cells that changed;
 * --once prints one frame (cumulative figures) to stdout. Called by
 * gcmonctl.c. Never sends a command that changes gcmond; restores the
 * terminal on every way out (q, SIGINT, SIGTERM, a lost daemon).
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curses.h>
#include <jansson.h>

#include "ctl.h"
#include "report.h"
#include "top.h"

#define TOP_MAX_PROCS	4096
#define TOP_MAX_ALERTS	3
#define TOP_KEY_MS	100	/* how often keys and signals are looked at */

enum top_sort { TOP_SORT_GC, TOP_SORT_PID, TOP_SORT_RATE, TOP_SORT_MAX,
	TOP_SORT_RSS, TOP_NSORTS };

/* The keys that pick a sort, and what the header calls it. */
static const struct top_sort_key {
	int key;
	const char *name;
} top_sort_keys[TOP_NSORTS] = {
	[TOP_SORT_GC] = { 'g', "GC share" },
	[TOP_SORT_PID] = { 'p', "pid" },
	[TOP_SORT_RATE] = { 'c', "collections/s" },
	[TOP_SORT_MAX] = { 'm', "max pause" },
	[TOP_SORT_RSS] = { 'r', "RSS" },
};

struct top_row {
	long long pid, coll[3], total;
	double rate[3];		/* collections/s by generation; NAN: unknown */
	double gc_pct, max_ms, p99_ms, rss, pss, unshared;	/* NAN: none */
	char role[16], state[16], cmd[512];
	char place[REPORT_PLACE_WIDTH + 1];	/* CONTAINER or POD */
};

/* One interval's pauses, from the watch stream. */
struct top_pauses {
	long long *pid;
	double *ms;
	size_t n, cap;
};

struct top {
	const struct top_args *a;
	int ctl, watch;			/* fds; watch < 0: no stream */
	struct top_row *rows, *prev;
	size_t nrows, nprev;
	enum report_place place;	/* its column, when a process has one */
	char head[256];
	double prev_t;
	struct top_pauses pauses;
	char alerts[TOP_MAX_ALERTS][160];
	char totals[256];
	char legend[256];		/* what GEN0-2 are, if not plain */
	enum top_sort sort;
};

static volatile sig_atomic_t top_stop;

static void top_on_signal(int sig)
{
	(void)sig;
	top_stop = 1;
}

static double top_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double top_num(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : NAN;
}

static void top_row_fill(struct top_row *r, const json_t *p)
{
	const json_t *gens = json_object_get(p, "generations"), *g, *a;
	size_t i, off = 0;
	char arg[256];

	memset(r, 0, sizeof *r);
	r->pid = json_integer_value(json_object_get(p, "pid"));
	r->total = json_integer_value(json_object_get(p, "collections"));
	for (i = 0; i < 3; i++) {
		g = json_array_get(gens, i);
		r->coll[i] = json_integer_value(json_object_get(g,
		    "collections"));
		r->rate[i] = NAN;
	}
	r->gc_pct = top_num(p, "gc_wall_pct");
	r->max_ms = top_num(p, "max_pause_ms");
	r->p99_ms = top_num(p, "p99_ms");
	r->rss = top_num(p, "rss_bytes");
	r->pss = top_num(p, "pss_bytes");
	r->unshared = top_num(p, "unshared_by_gc_bytes");
	report_clean(r->role, sizeof r->role,
	    json_string_value(json_object_get(p, "role")) ?: "?");
	report_clean(r->state, sizeof r->state,
	    json_string_value(json_object_get(p, "state")) ?: "?");
	json_array_foreach(json_object_get(p, "argv"), i, a) {
		report_clean(arg, sizeof arg, json_string_value(a) ?: "?");
		off += (size_t)snprintf(r->cmd + off, sizeof r->cmd - off,
		    "%s%s", i ? " " : "", arg);
		if (off >= sizeof r->cmd)
			break;
	}
}

/* The interval's figures: rates from the previous answer, max and p99
 * from the interval's pauses. */
static void top_row_interval(struct top *t, struct top_row *r, double dt)
{
	double *v = NULL, tmp;
	size_t i, j, n = 0;

	for (i = 0; i < t->nprev && dt > 0; i++)
		if (t->prev[i].pid == r->pid)
			for (j = 0; j < 3; j++)
				r->rate[j] = (double)(r->coll[j] -
				    t->prev[i].coll[j]) / dt;
	r->max_ms = r->p99_ms = NAN;
	if (t->pauses.n == 0 ||
	    (v = malloc(t->pauses.n * sizeof *v)) == NULL)
		return;
	for (i = 0; i < t->pauses.n; i++)
		if (t->pauses.pid[i] == r->pid)
			v[n++] = t->pauses.ms[i];
	for (i = 1; i < n; i++)		/* few per interval: insertion sort */
		for (j = i; j > 0 && v[j - 1] > v[j]; j--) {
			tmp = v[j];
			v[j] = v[j - 1];
			v[j - 1] = tmp;
		}
	if (n > 0) {
		r->max_ms = v[n - 1];
		r->p99_ms = v[(size_t)ceil(0.99 * (double)n) - 1];
	}
	free(v);
}

static enum top_sort top_sort_by;

static double top_sort_value(const struct top_row *r)
{
	switch (top_sort_by) {
	case TOP_SORT_PID:
		return -(double)r->pid;
	case TOP_SORT_RATE:
		return isnan(r->rate[0]) ? (double)r->total :
		    r->rate[0] + r->rate[1] + r->rate[2];
	case TOP_SORT_MAX:
		return isnan(r->max_ms) ? -1 : r->max_ms;
	case TOP_SORT_RSS:
		return isnan(r->rss) ? -1 : r->rss;
	case TOP_SORT_GC:
	default:
		return isnan(r->gc_pct) ? -1 : r->gc_pct;
	}
}

/* Largest first (pid: smallest first); ties by pid. */
static int top_cmp(const void *x, const void *y)
{
	const struct top_row *a = x, *b = y;
	double va = top_sort_value(a), vb = top_sort_value(b);

	if (va != vb)
		return va > vb ? -1 : 1;
	return a->pid < b->pid ? -1 : a->pid > b->pid;
}

static void top_fmt(char *buf, size_t len, double v, double scale, int prec)
{
	if (isnan(v))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.*f", prec, v / scale);
}

static const char top_head[] =
    "ROLE    STATE   COLL  GEN0/s GEN1/s GEN2/s   GC%  MAXms"
    "  P99ms  RSSMiB  PSSMiB UNSHMiB COMMAND";

/* The header: PID, the CONTAINER or POD column when there is one, the
 * rest. */
static void top_set_head(struct top *t)
{
	snprintf(t->head, sizeof t->head, "%7s %-*s%s%s", "PID",
	    t->place != REPORT_PLACE_NONE ? report_place_width(t->place) : 0,
	    t->place != REPORT_PLACE_NONE ? report_place_title(t->place) : "",
	    t->place != REPORT_PLACE_NONE ? " " : "", top_head);
}

static void top_format_row(char *buf, size_t len, const struct top_row *r,
    enum report_place place)
{
	char f[9][24];
	int n;

	top_fmt(f[0], sizeof f[0], r->rate[0], 1, 1);
	top_fmt(f[1], sizeof f[1], r->rate[1], 1, 1);
	top_fmt(f[2], sizeof f[2], r->rate[2], 1, 1);
	top_fmt(f[3], sizeof f[3], r->gc_pct, 1, 2);
	top_fmt(f[4], sizeof f[4], r->max_ms, 1, 2);
	top_fmt(f[5], sizeof f[5], r->p99_ms, 1, 2);
	top_fmt(f[6], sizeof f[6], r->rss, 1048576, 1);
	top_fmt(f[7], sizeof f[7], r->pss, 1048576, 1);
	top_fmt(f[8], sizeof f[8], r->unshared, 1048576, 1);
	n = snprintf(buf, len, "%7lld ", r->pid);
	if (place != REPORT_PLACE_NONE && n > 0 && (size_t)n < len)
		n += snprintf(buf + n, len - (size_t)n, "%-*s ",
		    report_place_width(place), r->place);
	if (n < 0 || (size_t)n >= len)
		return;
	snprintf(buf + n, len - (size_t)n, "%-7s %-6s %5lld %7s %6s %6s %5s "
	    "%6s %6s %7s %7s %7s %s", r->role, r->state, r->total, f[0], f[1],
	    f[2], f[3], f[4], f[5], f[6], f[7], f[8], r->cmd);
}

/* One request on t->ctl; the answer's value at key (new ref) or NULL. */
static json_t *top_ask(struct top *t, const char *cmd, const char *key)
{
	json_t *req = json_pack("{s:s}", "cmd", cmd), *ans = NULL, *v = NULL;

	if (req == NULL)
		return NULL;
	if (t->a->run != NULL)
		json_object_set_new(req, "run", json_string(t->a->run));
	if (ctl_request(t->ctl, req, &ans, (int)(t->a->timeout_s * 1000)) ==
	    0 && json_is_true(json_object_get(ans, "ok")))
		v = json_incref(json_object_get(ans, key));
	else if (ans != NULL)
		fprintf(stderr, "gcmonctl top: gcmond: %s\n",
		    json_string_value(json_object_get(ans, "error")) ?: "no answer");
	json_decref(req);
	json_decref(ans);
	return v;
}

/* "GEN0 young (explicit), GEN1 young+incremental, GEN2 full (explicit)":
 * the generations' labels (gcmond's, by the process's collector model)
 * of each model among procs whose labels say more than the numbers;
 * "" when none does. */
static void top_set_legend(struct top *t, const json_t *procs)
{
	const json_t *p, *gens;
	char set[128], l[64];
	size_t i, g, off = 0, n;

	t->legend[0] = '\0';
	json_array_foreach(procs, i, p) {
		gens = json_object_get(p, "generations");
		set[0] = '\0';
		for (g = n = 0; g < 3 && g < json_array_size(gens); g++) {
			report_gen_label(l, sizeof l, json_array_get(gens, g));
			if (l[0] == '\0')
				break;
			/* l is " (label)": keep the label */
			l[strlen(l) - 1] = '\0';
			n += (size_t)snprintf(set + n, sizeof set - n,
			    "%sGEN%zu %s", g ? ", " : "", g, l + 2);
			if (n >= sizeof set)
				break;
		}
		if (g < 3 || n >= sizeof set || strstr(t->legend, set) != NULL)
			continue;
		off += (size_t)snprintf(t->legend + off, sizeof t->legend - off,
		    "%s%s", off ? " | " : "generations: ", set);
		if (off >= sizeof t->legend)
			break;
	}
}

/* Asks for the figures and rebuilds the rows; 0 or -EIO. */
static int top_refresh(struct top *t)
{
	json_t *procs = top_ask(t, "processes", "processes"), *sum, *p;
	double now = top_now();
	struct top_row *tmp;
	size_t i, n;

	if (procs == NULL)
		return -EIO;
	if ((sum = top_ask(t, "summary", "summary")) == NULL) {
		json_decref(procs);
		return -EIO;
	}
	snprintf(t->totals, sizeof t->totals, "%lld processes (%lld live), "
	    "%lld collections, GC %.2f%% of wall, max pause %.2f ms, "
	    "%lld alerts",
	    json_integer_value(json_object_get(sum, "processes")),
	    json_integer_value(json_object_get(sum, "live")),
	    json_integer_value(json_object_get(sum, "collections")),
	    top_num(sum, "gc_wall_pct"), top_num(sum, "max_pause_ms"),
	    json_integer_value(json_object_get(sum, "alerts")));
	json_decref(sum);
	tmp = t->prev;			/* this answer becomes the previous */
	t->prev = t->rows;
	t->nprev = t->nrows;
	t->rows = tmp;
	n = json_array_size(procs);
	if (n > TOP_MAX_PROCS)
		n = TOP_MAX_PROCS;
	t->nrows = 0;
	t->place = report_place_kind(procs);
	top_set_head(t);
	top_set_legend(t, procs);
	json_array_foreach(procs, i, p) {
		if (i >= n)
			break;
		top_row_fill(&t->rows[t->nrows], p);
		report_place(t->rows[t->nrows].place,
		    sizeof t->rows[t->nrows].place, p, t->place);
		if (!t->a->once)
			top_row_interval(t, &t->rows[t->nrows],
			    t->nprev ? now - t->prev_t : 0);
		t->nrows++;
	}
	json_decref(procs);
	t->prev_t = now;
	t->pauses.n = 0;
	top_sort_by = t->sort;
	qsort(t->rows, t->nrows, sizeof *t->rows, top_cmp);
	return 0;
}

static void top_note_pause(struct top *t, long long pid, double ms)
{
	struct top_pauses *ps = &t->pauses;
	size_t cap = ps->cap ? ps->cap * 2 : 256;
	long long *np;
	double *nm;

	if (ps->n == ps->cap) {
		if (cap > (1u << 20) ||
		    (np = realloc(ps->pid, cap * sizeof *np)) == NULL)
			return;
		ps->pid = np;
		if ((nm = realloc(ps->ms, cap * sizeof *nm)) == NULL)
			return;
		ps->ms = nm;
		ps->cap = cap;
	}
	ps->pid[ps->n] = pid;
	ps->ms[ps->n++] = ms;
}

/* Takes what the watch stream has for us now (pauses and alerts). */
static void top_drain(struct top *t)
{
	char label[64];
	const char *type;
	json_t *o;
	int err;

	while (t->watch >= 0) {
		if ((err = ctl_read(t->watch, &o, 0)) < 0) {
			if (err != -ETIMEDOUT && err != -EINTR) {
				ctl_close(t->watch);
				t->watch = -1;
			}
			return;
		}
		type = json_string_value(json_object_get(o, "type")) ?: "";
		if (strcmp(type, "event") == 0) {
			top_note_pause(t, json_integer_value(json_object_get(o,
			    "pid")), top_num(o, "duration_ms"));
		} else if (strcmp(type, "alert") == 0) {
			memmove(t->alerts[1], t->alerts[0],
			    sizeof t->alerts[0] * (TOP_MAX_ALERTS - 1));
			snprintf(t->alerts[0], sizeof t->alerts[0],
			    "alert: pid %lld gen %lld%s paused %.2f ms "
			    "(threshold %.2f ms)",
			    json_integer_value(json_object_get(o, "pid")),
			    json_integer_value(json_object_get(o, "gen")),
			    report_gen_label(label, sizeof label, o),
			    top_num(o, "duration_ms"), top_num(o, "threshold_ms"));
		}
		json_decref(o);
	}
}

static void top_print_once(const struct top *t)
{
	char line[1024];
	size_t i;

	printf("gcmon top: %s\n", t->totals);
	if (t->legend[0] != '\0')
		printf("%s\n", t->legend);
	printf("(since each process started: MAXms and P99ms over its life; "
	    "rates need two samples)\n");
	printf("%s\n", t->head);
	for (i = 0; i < t->nrows; i++) {
		top_format_row(line, sizeof line, &t->rows[i], t->place);
		printf("%s\n", line);
	}
}

static void top_draw(const struct top *t)
{
	char line[1024];
	int y = 0, i;
	size_t k;

	erase();	/* not clear(): refresh() sends only what changed */
	mvprintw(y++, 0, "gcmon top%s%s  every %gs  sort: %s  "
	    "(keys: g p c m r sort, q quit)", t->a->run ? "  run " : "",
	    t->a->run ? t->a->run : "", t->a->interval_s,
	    top_sort_keys[t->sort].name);
	mvaddnstr(y++, 0, t->totals, COLS);
	if (t->legend[0] != '\0')
		mvaddnstr(y++, 0, t->legend, COLS);
	for (i = 0; i < TOP_MAX_ALERTS; i++)
		mvaddnstr(y++, 0, t->alerts[i][0] ? t->alerts[i] :
		    (i == 0 ? (t->watch >= 0 ? "no alert" :
		    "no alerts: the watch stream is closed") : ""), COLS);
	attron(A_REVERSE);
	mvaddnstr(y++, 0, t->head, COLS);
	attroff(A_REVERSE);
	for (k = 0; k < t->nrows && y < LINES; k++) {
		top_format_row(line, sizeof line, &t->rows[k], t->place);
		mvaddnstr(y++, 0, line, COLS);
	}
	refresh();
}

/* A key: a sort, q, or nothing; 1 to quit. */
static int top_key(struct top *t, int ch)
{
	size_t i;

	if (ch == 'q' || ch == 'Q')
		return 1;
	for (i = 0; i < TOP_NSORTS; i++)
		if (ch == top_sort_keys[i].key) {
			t->sort = (enum top_sort)i;
			top_sort_by = t->sort;
			qsort(t->rows, t->nrows, sizeof *t->rows, top_cmp);
			top_draw(t);
		}
	return 0;
}

static void top_loop(struct top *t)
{
	double next = 0;
	int ch;

	while (!top_stop) {
		top_drain(t);
		if (top_now() >= next) {
			if (top_refresh(t) < 0)
				break;
			top_draw(t);
			next = top_now() + t->a->interval_s;
		}
		if ((ch = getch()) != ERR && top_key(t, ch))
			break;
	}
}

/* The watch subscription for pauses and alerts; -1 when it cannot be. */
static int top_watch(const struct top_args *a)
{
	json_t *req = json_pack("{s:s}", "cmd", "watch"), *ans = NULL;
	int fd, ok;

	if (req == NULL || ctl_connect(a->sock, &fd) < 0) {
		json_decref(req);
		return -1;
	}
	if (a->run != NULL)
		json_object_set_new(req, "run", json_string(a->run));
	ok = ctl_request(fd, req, &ans, (int)(a->timeout_s * 1000)) == 0 &&
	    json_is_true(json_object_get(ans, "ok"));
	json_decref(req);
	json_decref(ans);
	if (!ok) {
		ctl_close(fd);
		return -1;
	}
	return fd;
}

int top_main(const struct top_args *a)
{
	struct top t = { .a = a, .watch = -1, .sort = TOP_SORT_GC };
	struct sigaction sa;
	int rc = CTL_EXIT_OK, err;

	top_set_head(&t);
	t.rows = calloc(TOP_MAX_PROCS, sizeof *t.rows);
	t.prev = calloc(TOP_MAX_PROCS, sizeof *t.prev);
	if (t.rows == NULL || t.prev == NULL) {
		fprintf(stderr, "gcmonctl top: out of memory\n");
		rc = CTL_EXIT_FAILURE;
		goto out;
	}
	if ((err = ctl_connect(a->sock, &t.ctl)) < 0) {
		fprintf(stderr, "gcmonctl: no gcmond at %s: %s\n", a->sock,
		    strerror(-err));
		rc = CTL_EXIT_NO_DAEMON;
		goto out;
	}
	if (a->once) {
		if (top_refresh(&t) < 0)
			rc = CTL_EXIT_FAILURE;
		else
			top_print_once(&t);
		goto out_close;
	}
	t.watch = top_watch(a);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = top_on_signal;	/* the loop sees the flag, then the
					 * terminal is restored below */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	initscr();
	cbreak();
	noecho();
	curs_set(0);
	timeout(TOP_KEY_MS);
	top_loop(&t);
	endwin();
	if (!top_stop && t.nrows == 0 && t.prev_t == 0)
		rc = CTL_EXIT_FAILURE;
	if (t.watch >= 0)
		ctl_close(t.watch);
out_close:
	ctl_close(t.ctl);
out:
	free(t.rows);
	free(t.prev);
	free(t.pauses.pid);
	free(t.pauses.ms);
	return rc;
}
