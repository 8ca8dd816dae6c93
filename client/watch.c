/*
 * watch.c: pygcprofiler's side of the run's event stream (the `watch`
 * connection to gcmond): prints each event and alert as it comes (text
 * or JSON lines), notes the processes seen and ended, and adds pauses
 * to the flame graph rows (flame.c). Opened only when something prints
 * events or a flame graph is asked for: the report's figures, the
 * --duration-buckets table included, come from gcmond's aggregates.
 * Called by launch.c while it waits. Reads only r->watch_fd; never
 * writes to gcmond. Unless --json, the collections come as WATCH_EVENTS
 * records (doc/control.md), printed as the EVENT objects would be.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl.h"
#include "pgp.h"
#include "report.h"

/* One line, unflushed: the stream flushes once a batch. */
static void watch_json_put(FILE *out, json_t *obj)
{
	json_dumpf(obj, out, JSON_COMPACT | JSON_ENSURE_ASCII);
	fputc('\n', out);
	json_decref(obj);
}

void watch_json_line(FILE *out, json_t *obj)
{
	watch_json_put(out, obj);
	fflush(out);
}


static int watch_note_pid(struct pgp_run *r, pid_t pid)
{
	size_t i;

	for (i = 0; i < r->npids; i++)
		if (r->pids[i] == pid)
			return 0;
	if (r->npids < sizeof r->pids / sizeof r->pids[0])
		r->pids[r->npids++] = pid;
	return 1;
}

static size_t watch_bucket_of(const struct pgp_opts *o, double ms)
{
	size_t i;

	for (i = 0; i < o->nbuckets; i++)
		if (ms < o->buckets[i])
			return i;
	return o->nbuckets;
}

static void watch_record_event(struct pgp_run *r, const json_t *ev)
{
	double ms = json_number_value(json_object_get(ev, "duration_ms"));
	double t = json_number_value(json_object_get(ev, "time"));
	json_int_t gen = json_integer_value(json_object_get(ev, "gen"));
	size_t b = watch_bucket_of(r->o, ms);

	r->nevents++;		/* what the flame graph is built from */
	if (gen < 0 || gen >= PGP_MAX_GEN)
		return;
	if ((unsigned)gen + 1 > r->ngen_seen)
		r->ngen_seen = (unsigned)gen + 1;
	flame_add(r, t, (unsigned)gen, b, ms);
}

static int watch_with_pid(const struct pgp_run *r)
{
	return r->npids > 1;
}

/* A WATCH_EVENTS frame (the binary watch): each record as an EVENT
 * object would have been handled, line for line. */
static void watch_on_records(struct pgp_run *r,
    const struct proto_watch_events *b)
{
	struct proto_watch_event e;
	double ms;
	uint32_t i;

	for (i = 0; proto_watch_event_get(b, i, &e) == 0; i++) {
		watch_note_pid(r, (pid_t)e.pid);
		ms = (double)e.pause_ns / 1e6;
		r->nevents++;
		if (e.generation < PGP_MAX_GEN) {
			if ((unsigned)e.generation + 1 > r->ngen_seen)
				r->ngen_seen = (unsigned)e.generation + 1;
			flame_add(r, (double)e.time_ns / 1e9, e.generation,
			    watch_bucket_of(r->o, ms), ms);
		}
		if (!r->o->stats_only && !r->o->json)
			report_event_rec_line(r->out, &e, watch_with_pid(r));
	}
}

/* Handles one streamed object (steals obj). */
static void watch_on_stream(struct pgp_run *r, json_t *obj)
{
	const char *type = json_string_value(json_object_get(obj, "type"));
	const json_t *proc;

	if (type == NULL) {
		json_decref(obj);
		return;
	}
	if (strcmp(type, "process_end") == 0)
		r->nended++;
	if (strcmp(type, "process_start") == 0 ||
	    strcmp(type, "process_end") == 0) {
		proc = json_object_get(obj, "process");
		watch_note_pid(r, (pid_t)json_integer_value(
		    json_object_get(proc, "pid")));
	} else if (strcmp(type, "event") == 0 || strcmp(type, "alert") == 0) {
		watch_note_pid(r, (pid_t)json_integer_value(
		    json_object_get(obj, "pid")));
		if (strcmp(type, "event") == 0)
			watch_record_event(r, obj);
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
			watch_json_put(r->out, obj);
			return;
		}
	} else if (strcmp(type, "event") == 0) {
		report_event_line(r->out, obj, watch_with_pid(r));
	} else if (strcmp(type, "alert") == 0) {
		report_alert_line(r->out, obj, watch_with_pid(r));
	}
	json_decref(obj);
}

/* Reads what the watch stream holds, waiting at most timeout_ms for the
 * first bytes: one read of all the socket holds, every whole object in
 * it handled, the output flushed once for the batch. Returns 0,
 * -ETIMEDOUT (quiet), or -ECONNRESET (closed). */
int watch_pump(struct pgp_run *r, int timeout_ms)
{
	struct proto_watch_events recs;
	FILE *real, *mem;
	char *text = NULL;
	size_t len = 0;
	json_t *obj;
	int err, next;

	if (r->watch_fd < 0) {
		poll(NULL, 0, timeout_ms);
		return -ETIMEDOUT;
	}
	err = ctl_stream_fill(&r->watch, r->watch_fd, timeout_ms);
	/* The batch's lines into memory, then one write: stderr is
	 * unbuffered, and a line is two or three writes there. */
	real = r->out;
	if ((mem = open_memstream(&text, &len)) != NULL)
		r->out = mem;
	while ((next = ctl_stream_next_any(&r->watch, &obj, &recs)) >= 0) {
		if (next == 0)
			watch_on_stream(r, obj);
		else
			watch_on_records(r, &recs);
	}
	if (mem != NULL) {
		r->out = real;
		if (fclose(mem) == 0 && len > 0)
			fwrite(text, 1, len, real);
		free(text);
	}
	fflush(r->out);
	if (next == -EAGAIN && (err == 0 || err == -ETIMEDOUT || err == -EINTR))
		return err == -ETIMEDOUT ? -ETIMEDOUT : 0;
	if (next != -EAGAIN && next != -ECONNRESET)
		r->watch_err = next;	/* a bad frame: pgp_finish says so */
	ctl_close(r->watch_fd);
	ctl_stream_free(&r->watch);
	r->watch_fd = -1;
	return -ECONNRESET;
}
