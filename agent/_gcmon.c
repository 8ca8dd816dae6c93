/*
 * _gcmon.c: the agent's CPython extension (Limited API 3.10, one abi3
 * shared object for CPython 3.10 and later). Its gc.callbacks callback
 * records every collection into the ring and the cumulative counters;
 * start(), stop(), flush(), stats() and _after_fork_child() are called by
 * agent/bootstrap/sitecustomize.py (and stats()/callback by tests and
 * benchmarks). The callback never does I/O, takes no lock, allocates
 * nothing, creates no Python object and leaves no exception set; nothing
 * here calls gc.collect, gc.freeze, gc.set_threshold or gc.get_objects.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "codec.h"
#include "flusher.h"
#include "ring.h"

PyMODINIT_FUNC PyInit__gcmon(void);

struct agent agent_state;

/* Created once at import; compared and looked up on the hot path. */
static PyObject *gcmon_str_start, *gcmon_str_stop;
static PyObject *gcmon_key_generation, *gcmon_key_collected;
static PyObject *gcmon_key_uncollectable, *gcmon_key_duration;
static int gcmon_has_duration;		/* 3.15+: "duration" in the info dict */

/* The "start" time of the collection in progress; one at a time. */
static uint64_t gcmon_t0;
static int gcmon_t0_valid;
static int gcmon_atfork_registered;
static int gcmon_in_fork_wrapper;	/* under the GIL */

uint64_t agent_clock_ns(int clock_id)
{
	struct timespec ts;

	clock_gettime(clock_id, &ts);	/* cannot fail for these clocks */
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void agent_counters_snapshot(struct proto_counters *out)
{
	struct agent_counters *c = &agent_state.counters;
	unsigned i, ngen;

	memset(out, 0, sizeof *out);
	ngen = atomic_load_explicit(&c->ngen, memory_order_acquire);
	if (ngen < agent_state.id.hello.ngen)
		ngen = agent_state.id.hello.ngen;
	if (ngen < 1)
		ngen = 1;
	if (ngen > PROTO_MAX_GEN)
		ngen = PROTO_MAX_GEN;
	out->ngen = (uint8_t)ngen;
	out->dropped = atomic_load_explicit(&c->dropped, memory_order_relaxed);
	for (i = 0; i < ngen; i++) {
		struct agent_gen_counters *g = &c->gen[i];

		out->gen[i].count = atomic_load_explicit(&g->count,
		    memory_order_relaxed);
		out->gen[i].pause_ns = atomic_load_explicit(&g->pause_ns,
		    memory_order_relaxed);
		out->gen[i].max_pause_ns = atomic_load_explicit(
		    &g->max_pause_ns, memory_order_relaxed);
		out->gen[i].collected = atomic_load_explicit(&g->collected,
		    memory_order_relaxed);
		out->gen[i].uncollectable = atomic_load_explicit(
		    &g->uncollectable, memory_order_relaxed);
	}
}

/* One producer: plain load + store, no read-modify-write needed. */
#define GCMON_ADD(field, v) atomic_store_explicit(&(field), \
	atomic_load_explicit(&(field), memory_order_relaxed) + (v), \
	memory_order_relaxed)

static void gcmon_record(const struct proto_event *ev)
{
	struct agent_counters *c = &agent_state.counters;
	struct agent_gen_counters *g = &c->gen[ev->generation];

	GCMON_ADD(g->count, 1);
	GCMON_ADD(g->pause_ns, ev->pause_ns);
	if (ev->pause_ns > atomic_load_explicit(&g->max_pause_ns,
	    memory_order_relaxed))
		atomic_store_explicit(&g->max_pause_ns, ev->pause_ns,
		    memory_order_relaxed);
	GCMON_ADD(g->collected, ev->collected);
	GCMON_ADD(g->uncollectable, ev->uncollectable);
	if (ev->generation >= atomic_load_explicit(&c->ngen,
	    memory_order_relaxed))
		atomic_store_explicit(&c->ngen, ev->generation + 1u,
		    memory_order_release);
	/* The counters are published by the ring head's release below, so a
	 * batch never carries counters older than its records. */
	if (ring_push(&agent_state.ring, ev) < 0)
		GCMON_ADD(c->dropped, 1);
}

/* A non-negative integer from the info dict, 0 when absent or bad. */
static uint64_t gcmon_info_u64(PyObject *info, PyObject *key)
{
	PyObject *v = PyDict_GetItemWithError(info, key);	/* borrowed */
	unsigned long long n;

	if (v == NULL) {
		PyErr_Clear();
		return 0;
	}
	n = PyLong_AsUnsignedLongLong(v);
	if (n == (unsigned long long)-1 && PyErr_Occurred()) {
		PyErr_Clear();
		return 0;
	}
	return n;
}

static void gcmon_on_stop(PyObject *info, uint64_t t1)
{
	struct proto_event ev;
	PyObject *v;
	uint64_t gen;
	double d;

	ev.start_ns = gcmon_t0_valid ? gcmon_t0 : t1;
	ev.pause_ns = gcmon_t0_valid ? t1 - gcmon_t0 : 0;
	gcmon_t0_valid = 0;
	gen = gcmon_info_u64(info, gcmon_key_generation);
	ev.generation = (uint16_t)(gen < PROTO_MAX_GEN ? gen : PROTO_MAX_GEN - 1);
	ev.collected = gcmon_info_u64(info, gcmon_key_collected);
	ev.uncollectable = (uint32_t)gcmon_info_u64(info,
	    gcmon_key_uncollectable);
	ev.collector_ns = 0;
	ev.flags = 0;
	if (gcmon_has_duration) {
		v = PyDict_GetItemWithError(info, gcmon_key_duration);
		if (v != NULL) {
			d = PyFloat_AsDouble(v);
			if (d >= 0 && d < 1e9) {
				ev.collector_ns = (uint64_t)(d * 1e9);
				ev.flags |= PROTO_EVENT_HAS_COLLECTOR_NS;
			}
		}
		if (PyErr_Occurred())
			PyErr_Clear();
	}
	gcmon_record(&ev);
}

/* callback(phase, info): registered in gc.callbacks. */
static PyObject *gcmon_callback(PyObject *self, PyObject *const *args,
    Py_ssize_t nargs)
{
	uint64_t now = agent_clock_ns(CLOCK_MONOTONIC);	/* first */
	PyObject *phase;
	Py_UCS4 ch;

	(void)self;
	if (nargs != 2 || !agent_state.started)
		Py_RETURN_NONE;
	phase = args[0];
	if (phase == gcmon_str_start)
		ch = 'a';
	else if (phase == gcmon_str_stop)
		ch = 'o';
	else if ((ch = PyUnicode_ReadChar(phase, 2)) == (Py_UCS4)-1)
		PyErr_Clear();	/* not a string of 3+ characters */
	if (ch == 'a') {
		gcmon_t0 = now;
		gcmon_t0_valid = 1;
	} else if (ch == 'o') {
		gcmon_on_stop(args[1], now);
	}
	Py_RETURN_NONE;
}

static PyMethodDef gcmon_callback_def = {
	"callback", (PyCFunction)(void (*)(void))gcmon_callback, METH_FASTCALL,
	"callback(phase, info): the gc.callbacks entry of the gcmon agent."
};

/* pthread_atfork: the child's counters start at zero, and its baseline
 * is the parent's plus the parent's counters, which is the child's own
 * gc.get_stats() at the fork. Memory writes and close() only. */
static void gcmon_atfork_prepare(void)
{
	if (agent_state.started)
		flusher_atfork_prepare();
}

static void gcmon_atfork_parent(void)
{
	if (agent_state.started)
		flusher_atfork_parent();
}

static void gcmon_atfork_child(void)
{
	struct proto_hello *h = &agent_state.id.hello;
	struct agent_counters *c = &agent_state.counters;
	struct proto_counters snap;
	unsigned i;

	if (!agent_state.started)
		return;
	flusher_atfork_child();
	agent_counters_snapshot(&snap);
	for (i = h->ngen; i < snap.ngen; i++)
		memset(&h->base[i], 0, sizeof h->base[i]);
	if (snap.ngen > h->ngen)
		h->ngen = snap.ngen;
	for (i = 0; i < snap.ngen; i++) {
		h->base[i].collections += snap.gen[i].count;
		h->base[i].collected += snap.gen[i].collected;
		h->base[i].uncollectable += snap.gen[i].uncollectable;
	}
	for (i = 0; i < PROTO_MAX_GEN; i++) {
		atomic_store_explicit(&c->gen[i].count, 0, memory_order_relaxed);
		atomic_store_explicit(&c->gen[i].pause_ns, 0, memory_order_relaxed);
		atomic_store_explicit(&c->gen[i].max_pause_ns, 0,
		    memory_order_relaxed);
		atomic_store_explicit(&c->gen[i].collected, 0, memory_order_relaxed);
		atomic_store_explicit(&c->gen[i].uncollectable, 0,
		    memory_order_relaxed);
	}
	atomic_store_explicit(&c->dropped, 0, memory_order_relaxed);
	atomic_store_explicit(&c->ngen, 0, memory_order_relaxed);
	ring_reset(&agent_state.ring);
	h->pid = (uint32_t)getpid();
	h->ppid = (uint32_t)getppid();
	h->start_mono_ns = agent_clock_ns(CLOCK_MONOTONIC);
	h->origin = ORIGIN_FORK;
	h->flags |= PROTO_HELLO_BASELINE_INHERITED;
	h->reconnects = 0;
}

static char *gcmon_strndup(const char *s, Py_ssize_t n)
{
	char *p = malloc((size_t)n + 1);

	if (p != NULL) {
		memcpy(p, s, (size_t)n);
		p[n] = '\0';
	}
	return p;
}

static int gcmon_set_str(struct proto_str *dst, char **owner, const char *s,
    Py_ssize_t n, uint32_t cap, const char *what)
{
	if ((size_t)n > cap) {
		PyErr_Format(PyExc_ValueError, "%s longer than %u bytes", what,
		    (unsigned)cap);
		return -1;
	}
	if ((*owner = gcmon_strndup(s, n)) == NULL) {
		PyErr_NoMemory();
		return -1;
	}
	dst->ptr = *owner;
	dst->len = (uint32_t)n;
	return 0;
}

static int gcmon_parse_argv(PyObject *list, struct proto_hello *h)
{
	struct agent_identity *id = &agent_state.id;
	Py_ssize_t n, i, len;
	size_t total = 0;
	char *s;

	if (!PyList_Check(list)) {
		PyErr_SetString(PyExc_TypeError, "argv must be a list of bytes");
		return -1;
	}
	n = PyList_Size(list);
	if (n < 0 || (size_t)n > PROTO_MAX_ARGC) {
		PyErr_SetString(PyExc_ValueError, "argv too long");
		return -1;
	}
	if ((id->argv = calloc((size_t)n + 1, sizeof *id->argv)) == NULL) {
		PyErr_NoMemory();
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (PyBytes_AsStringAndSize(PyList_GetItem(list, i), &s, &len) < 0)
			return -1;
		total += (size_t)len;
		if (total > PROTO_MAX_ARGV) {
			PyErr_SetString(PyExc_ValueError, "argv too long");
			return -1;
		}
		if (gcmon_set_str(&h->argv[i], &id->argv[i], s, len,
		    PROTO_MAX_STR, "argument") < 0)
			return -1;
	}
	h->argc = (uint32_t)n;
	return 0;
}

static int gcmon_parse_baseline(PyObject *base, PyObject *thresholds,
    struct proto_hello *h)
{
	unsigned long long a, b, c;
	Py_ssize_t n, nt, i;
	PyObject *t;

	if (!PyList_Check(base) || !PyList_Check(thresholds)) {
		PyErr_SetString(PyExc_TypeError,
		    "baseline and thresholds must be lists");
		return -1;
	}
	n = PyList_Size(base);
	nt = PyList_Size(thresholds);
	if (n < 1 || (size_t)n > PROTO_MAX_GEN) {
		PyErr_Format(PyExc_ValueError, "baseline needs 1..%u generations",
		    (unsigned)PROTO_MAX_GEN);
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (!PyArg_ParseTuple(PyList_GetItem(base, i), "KKK", &a, &b, &c))
			return -1;
		h->base[i].collections = a;
		h->base[i].collected = b;
		h->base[i].uncollectable = c;
		h->base[i].threshold = 0;
		if (i < nt) {
			t = PyList_GetItem(thresholds, i);
			h->base[i].threshold = (uint32_t)PyLong_AsUnsignedLong(t);
			if (PyErr_Occurred())
				return -1;
		}
	}
	h->ngen = (uint8_t)n;
	return 0;
}

static PyObject *gcmon_start(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "socket", "run_id", "py_version",
		"executable", "argv", "baseline", "thresholds", "hexversion",
		"origin", "gc_model", "flags", "flush_ms", "interval", "ring",
		"exit_timeout_ms", NULL };
	struct agent_identity *id = &agent_state.id;
	struct proto_hello *h = &id->hello;
	const char *sock, *run_id, *pyver, *exe;
	Py_ssize_t run_id_len, pyver_len, exe_len;
	PyObject *argv, *base, *thr;
	unsigned long hexversion;
	int origin, gc_model, flags, err;
	unsigned flush_ms, exit_ms;
	unsigned long long ring_cap;
	double interval;
	struct sockaddr_un sa;

	(void)self;
	if (agent_state.started) {
		PyErr_SetString(PyExc_RuntimeError, "gcmon agent already started");
		return NULL;
	}
	if (!PyArg_ParseTupleAndKeywords(args, kw, "sy#y#y#OOOkiiiIdKI", kwlist,
	    &sock, &run_id, &run_id_len, &pyver, &pyver_len, &exe, &exe_len,
	    &argv, &base, &thr, &hexversion, &origin, &gc_model, &flags,
	    &flush_ms, &interval, &ring_cap, &exit_ms))
		return NULL;
	if (strlen(sock) == 0 || strlen(sock) >= sizeof sa.sun_path) {
		PyErr_Format(PyExc_ValueError,
		    "socket path must be 1 to %u bytes",
		    (unsigned)sizeof sa.sun_path - 1);
		return NULL;
	}
	if (flush_ms < 1 || flush_ms > 3600000 || !(interval > 0.0) ||
	    interval > 86400.0 || exit_ms > 3600000 || ring_cap < 1 ||
	    ring_cap > RING_MAX_CAPACITY || origin < 0 || origin > ORIGIN_EXEC ||
	    gc_model < 0 || gc_model > GC_MODEL_FREE_THREADED ||
	    flags < 0 || flags > 0xffff) {
		PyErr_SetString(PyExc_ValueError, "gcmon setting out of range");
		return NULL;
	}
	memset(h, 0, sizeof *h);
	if (gcmon_set_str(&h->run_id, &id->run_id, run_id, run_id_len,
	    PROTO_MAX_ID, "run id") < 0 ||
	    gcmon_set_str(&h->py_version, &id->py_version, pyver, pyver_len,
	    PROTO_MAX_STR, "version") < 0 ||
	    gcmon_set_str(&h->executable, &id->executable, exe, exe_len,
	    PROTO_MAX_STR, "executable") < 0 ||
	    gcmon_parse_argv(argv, h) < 0 ||
	    gcmon_parse_baseline(base, thr, h) < 0)
		return NULL;	/* what was copied stays: start is once */
	if ((agent_state.config.socket_path = strdup(sock)) == NULL)
		return PyErr_NoMemory();
	agent_state.config.flush_ms = flush_ms;
	agent_state.config.interval_ns = (uint64_t)(interval * 1e9);
	agent_state.config.exit_timeout_ms = exit_ms;
	h->pid = (uint32_t)getpid();
	h->ppid = (uint32_t)getppid();
	h->start_mono_ns = agent_clock_ns(CLOCK_MONOTONIC);
	h->py_hexversion = (uint32_t)hexversion;
	h->origin = (uint8_t)origin;
	h->gc_model = (uint8_t)gc_model;
	h->flags = (uint16_t)flags;
	gcmon_has_duration = hexversion >= 0x030f0000;

	if (agent_state.ring.slots == NULL &&
	    (err = ring_init(&agent_state.ring, ring_cap)) < 0)
		goto out_errno;
	if ((err = flusher_init()) < 0)
		goto out_errno;
	if (!gcmon_atfork_registered) {
		if ((err = -pthread_atfork(gcmon_atfork_prepare,
		    gcmon_atfork_parent, gcmon_atfork_child)) < 0)
			goto out_errno;
		gcmon_atfork_registered = 1;
	}
	agent_state.started = 1;
	if ((err = flusher_start()) < 0) {
		agent_state.started = 0;
		goto out_errno;
	}
	Py_RETURN_NONE;
out_errno:
	errno = -err;
	return PyErr_SetFromErrno(PyExc_OSError);
}

/* Appends one OBJECTS/GARBAGE frame for spec = (total, [(name, count)]). */
static int gcmon_encode_types(PyObject *spec, enum proto_frame_type type,
    uint8_t **buf, size_t *len)
{
	struct proto_type_count *tc = NULL;
	unsigned long long total, count;
	PyObject *list;
	Py_ssize_t n, i, nlen;
	const char *name;
	size_t cap;
	ssize_t w;
	uint8_t *nb;
	int ret = -1;

	if (spec == Py_None)
		return 0;
	if (!PyArg_ParseTuple(spec, "KO", &total, &list))
		return -1;
	if (!PyList_Check(list) || (n = PyList_Size(list)) < 0 ||
	    (size_t)n > PROTO_MAX_TYPES) {
		PyErr_SetString(PyExc_ValueError, "bad type histogram");
		return -1;
	}
	if ((tc = calloc((size_t)n + 1, sizeof *tc)) == NULL) {
		PyErr_NoMemory();
		return -1;
	}
	cap = PROTO_HDR_SIZE + 12;
	for (i = 0; i < n; i++) {
		if (!PyArg_ParseTuple(PyList_GetItem(list, i), "y#K", &name,
		    &nlen, &count))
			goto out_free;
		if ((size_t)nlen > PROTO_MAX_ID)
			nlen = PROTO_MAX_ID;
		tc[i].count = count;
		tc[i].name.ptr = name;	/* borrowed from the list: kept alive */
		tc[i].name.len = (uint32_t)nlen;
		cap += 12 + (size_t)nlen;
	}
	if ((nb = realloc(*buf, *len + cap)) == NULL) {
		PyErr_NoMemory();
		goto out_free;
	}
	*buf = nb;
	w = proto_encode_types(nb + *len, cap, type, total, tc, (uint32_t)n);
	if (w < 0) {
		PyErr_Format(PyExc_ValueError, "cannot encode %s: %s",
		    proto_frame_type_name(type), proto_strerror((int)w));
		goto out_free;
	}
	*len += (size_t)w;
	ret = 0;
out_free:
	free(tc);
	return ret;
}

static PyObject *gcmon_stop(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "objects", "garbage", NULL };
	PyObject *objects = Py_None, *garbage = Py_None;
	uint8_t *frames = NULL;
	size_t len = 0;
	unsigned timeout = agent_state.config.exit_timeout_ms;
	int err;

	(void)self;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|OO", kwlist, &objects,
	    &garbage))
		return NULL;
	if (!agent_state.started)
		Py_RETURN_FALSE;
	if (gcmon_encode_types(objects, FRAME_OBJECTS, &frames, &len) < 0 ||
	    gcmon_encode_types(garbage, FRAME_GARBAGE, &frames, &len) < 0) {
		free(frames);
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	err = flusher_stop(frames, len, timeout);
	Py_END_ALLOW_THREADS
	return PyBool_FromLong(err == 0);
}

static PyObject *gcmon_flush(PyObject *self, PyObject *args)
{
	unsigned timeout = 1000;
	int err;

	(void)self;
	if (!PyArg_ParseTuple(args, "|I", &timeout))
		return NULL;
	if (!agent_state.started)
		Py_RETURN_FALSE;
	Py_BEGIN_ALLOW_THREADS
	err = flusher_flush(timeout);
	Py_END_ALLOW_THREADS
	return PyBool_FromLong(err == 0);
}

static PyObject *gcmon_after_fork_child(PyObject *self, PyObject *unused)
{
	int err;

	(void)self;
	(void)unused;
	if (!agent_state.started)
		Py_RETURN_FALSE;
	if ((err = flusher_start()) < 0) {
		errno = -err;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	Py_RETURN_TRUE;
}

static PyObject *gcmon_before_fork(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	if (agent_state.started)
		flusher_pause();	/* the GIL is kept: this takes microseconds */
	Py_RETURN_NONE;
}

static PyObject *gcmon_after_fork_parent(PyObject *self, PyObject *unused)
{
	int err;

	(void)self;
	(void)unused;
	if (!agent_state.started || gcmon_in_fork_wrapper)
		Py_RETURN_FALSE;
	err = flusher_start();
	if (err < 0 && err != -EALREADY) {
		errno = -err;
		return PyErr_SetFromErrno(PyExc_OSError);
	}
	Py_RETURN_TRUE;
}

/*
 * fork()/forkpty() wrappers: CPython 3.13+ counts the process's threads
 * before running any os.register_at_fork hook and warns when there is
 * more than one, so the flusher must be gone before the real call. Being
 * C functions they add no Python frame: a warning the program would get
 * anyway still names the program's own line.
 */
static PyObject *gcmon_call_forking(PyObject *real, PyObject *args,
    PyObject *kw)
{
	PyObject *ret;

	if (agent_state.started)
		flusher_pause();
	/* 3.13 counts threads after the after_in_parent hooks: resume here,
	 * once the call has returned, and not in the hook. */
	gcmon_in_fork_wrapper = 1;
	ret = PyObject_Call(real, args, kw);
	gcmon_in_fork_wrapper = 0;
	if (agent_state.started)
		(void)flusher_start();	/* -EALREADY in a child whose hook ran */
	return ret;
}

static PyObject *gcmon_fork_wrapper(PyObject *real, PyObject *args,
    PyObject *kw)
{
	return gcmon_call_forking(real, args, kw);
}

static PyMethodDef gcmon_fork_def = {
	"fork", (PyCFunction)(void (*)(void))gcmon_fork_wrapper,
	METH_VARARGS | METH_KEYWORDS,
	"fork(): os.fork, with the gcmon flusher paused around it."
};

static PyMethodDef gcmon_forkpty_def = {
	"forkpty", (PyCFunction)(void (*)(void))gcmon_fork_wrapper,
	METH_VARARGS | METH_KEYWORDS,
	"forkpty(): os.forkpty, with the gcmon flusher paused around it."
};

/* wrap_fork(real, name): a C callable for os.fork/os.forkpty. */
static PyObject *gcmon_wrap_fork(PyObject *self, PyObject *args)
{
	PyObject *real;
	const char *name;

	(void)self;
	if (!PyArg_ParseTuple(args, "Os", &real, &name))
		return NULL;
	if (strcmp(name, "fork") == 0)
		return PyCFunction_NewEx(&gcmon_fork_def, real, NULL);
	if (strcmp(name, "forkpty") == 0)
		return PyCFunction_NewEx(&gcmon_forkpty_def, real, NULL);
	PyErr_SetString(PyExc_ValueError, "expected fork or forkpty");
	return NULL;
}

static PyObject *gcmon_stats(PyObject *self, PyObject *unused)
{
	struct proto_hello *h = &agent_state.id.hello;
	struct proto_counters c;
	struct flusher_stats fs;
	PyObject *gens, *base, *item, *ret;
	unsigned i;

	(void)self;
	(void)unused;
	agent_counters_snapshot(&c);
	flusher_get_stats(&fs);
	if ((gens = PyList_New(0)) == NULL)
		return NULL;
	if ((base = PyList_New(0)) == NULL)
		goto out_gens;
	for (i = 0; i < c.ngen; i++) {
		item = Py_BuildValue("{sKsKsKsKsK}",
		    "count", (unsigned long long)c.gen[i].count,
		    "pause_ns", (unsigned long long)c.gen[i].pause_ns,
		    "max_pause_ns", (unsigned long long)c.gen[i].max_pause_ns,
		    "collected", (unsigned long long)c.gen[i].collected,
		    "uncollectable", (unsigned long long)c.gen[i].uncollectable);
		if (item == NULL || PyList_Append(gens, item) < 0)
			goto out_item;
		Py_DECREF(item);
	}
	for (i = 0; agent_state.started && i < h->ngen; i++) {
		item = Py_BuildValue("{sKsKsK}",
		    "collections", (unsigned long long)h->base[i].collections,
		    "collected", (unsigned long long)h->base[i].collected,
		    "uncollectable", (unsigned long long)h->base[i].uncollectable);
		if (item == NULL || PyList_Append(base, item) < 0)
			goto out_item;
		Py_DECREF(item);
	}
	ret = Py_BuildValue("{sisNsNsKsKsIsKsisisIsKsKsKsisI}",
	    "started", agent_state.started,
	    "generations", gens, "baseline", base,
	    "dropped", (unsigned long long)c.dropped,
	    "lost", (unsigned long long)fs.lost,
	    "ring_capacity", agent_state.ring.slots != NULL ?
		ring_capacity(&agent_state.ring) : 0u,
	    "ring_count", (unsigned long long)(agent_state.ring.slots != NULL ?
		ring_count(&agent_state.ring) : 0),
	    "running", fs.running, "connected", fs.connected,
	    "reconnects", fs.reconnects,
	    "frames_sent", (unsigned long long)fs.frames_sent,
	    "bytes_sent", (unsigned long long)fs.bytes_sent,
	    "pid", (unsigned long long)h->pid,
	    "origin", (int)h->origin, "hello_flags", (unsigned)h->flags);
	return ret;		/* N: gens and base are stolen, even on error */
out_item:
	Py_XDECREF(item);
	Py_DECREF(base);
out_gens:
	Py_DECREF(gens);
	return NULL;
}

static PyMethodDef gcmon_methods[] = {
	{ "start", (PyCFunction)(void (*)(void))gcmon_start,
	  METH_VARARGS | METH_KEYWORDS,
	  "start(**settings): begin counting (called once by the bootstrap)." },
	{ "stop", (PyCFunction)(void (*)(void))gcmon_stop,
	  METH_VARARGS | METH_KEYWORDS,
	  "stop(objects=None, garbage=None): final flush and BYE, bounded." },
	{ "flush", gcmon_flush, METH_VARARGS,
	  "flush(timeout_ms=1000): send what is recorded now; True if done." },
	{ "stats", gcmon_stats, METH_NOARGS,
	  "stats(): the agent's own counters and connection state." },
	{ "wrap_fork", gcmon_wrap_fork, METH_VARARGS,
	  "wrap_fork(func, name): func with the flusher paused around it." },
	{ "_before_fork", gcmon_before_fork, METH_NOARGS,
	  "Pause the flusher thread (os.register_at_fork before=)." },
	{ "_after_fork_parent", gcmon_after_fork_parent, METH_NOARGS,
	  "Resume the flusher thread (os.register_at_fork after_in_parent=)." },
	{ "_after_fork_child", gcmon_after_fork_child, METH_NOARGS,
	  "Start the forked child's flusher (os.register_at_fork)." },
	{ NULL, NULL, 0, NULL }
};

static struct PyModuleDef gcmon_module = {
	PyModuleDef_HEAD_INIT, "_gcmon",
	"gcmon agent: records every garbage collection for gcmond.",
	-1, gcmon_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit__gcmon(void)
{
	PyObject *m, *cb;

	if (gcmon_str_start == NULL) {
		gcmon_str_start = PyUnicode_InternFromString("start");
		gcmon_str_stop = PyUnicode_InternFromString("stop");
		gcmon_key_generation = PyUnicode_InternFromString("generation");
		gcmon_key_collected = PyUnicode_InternFromString("collected");
		gcmon_key_uncollectable =
		    PyUnicode_InternFromString("uncollectable");
		gcmon_key_duration = PyUnicode_InternFromString("duration");
		if (gcmon_str_start == NULL || gcmon_str_stop == NULL ||
		    gcmon_key_generation == NULL || gcmon_key_collected == NULL ||
		    gcmon_key_uncollectable == NULL || gcmon_key_duration == NULL)
			return NULL;
	}
	if ((m = PyModule_Create(&gcmon_module)) == NULL)
		return NULL;
	if ((cb = PyCFunction_NewEx(&gcmon_callback_def, NULL, m)) == NULL ||
	    PyModule_AddObject(m, "callback", cb) < 0) {
		Py_XDECREF(cb);
		Py_DECREF(m);
		return NULL;
	}
	if (PyModule_AddIntConstant(m, "PROTO_MAX_GEN", PROTO_MAX_GEN) < 0) {
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
