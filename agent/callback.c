/*
 * callback.c: the agent's gc.callbacks entry, the hot path. At "start" it
 * reads the monotonic clock and stores it in the area as the collection
 * in progress (gc_start_ns, cleared at "stop", so gcmond can tell a
 * memory reading taken during one); at "stop" the clock again, three entries of
 * the info dict (four on 3.15+), and writes the counters and one ring slot
 * of the shared area (shm_record); for a collection of generation 2, one
 * over the pause threshold or a sampled one, the Python stack first
 * (stacks.c). Called by the interpreter around every
 * collection; created by _gcmon.c. It does no I/O and no system call
 * (clock_gettime is a vDSO read), takes no lock, allocates nothing,
 * creates no Python object (but for the frame objects a stack walk makes
 * CPython 3.11+ materialise) and leaves no exception set.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <time.h>

#include "agent.h"

/* Created once; compared and looked up on the hot path. */
static PyObject *cb_str_start, *cb_str_stop;
static PyObject *cb_key_generation, *cb_key_collected;
static PyObject *cb_key_uncollectable, *cb_key_duration;

/* The "start" time of the collection in progress; one at a time. */
static uint64_t cb_t0;
static int cb_t0_valid;

/* A non-negative integer from the info dict, 0 when absent or bad. */
static uint64_t cb_info_u64(PyObject *info, PyObject *key)
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

/* 3.15+: the collector's own "duration" (seconds). */
static void cb_collector_ns(PyObject *info, struct proto_event *ev)
{
	PyObject *v = PyDict_GetItemWithError(info, cb_key_duration);
	double d;

	if (v != NULL) {
		d = PyFloat_AsDouble(v);
		if (d >= 0 && d < 1e9) {
			ev->collector_ns = (uint64_t)(d * 1e9);
			ev->flags |= PROTO_EVENT_HAS_COLLECTOR_NS;
		}
	}
	if (PyErr_Occurred())
		PyErr_Clear();
}

/* Whether this collection's stack is taken: generation 2 or more, a
 * pause at gcmond's threshold (the agent's default until gcmond wrote
 * it), or one in GCMON_STACK_SAMPLE of the others. Young collections pay
 * two compares and a relaxed load here, nothing more. */
static inline int cb_stack_wanted(const struct shm_header *area,
    const struct proto_event *ev)
{
	struct agent *a = &agent_state;
	uint64_t min_ns = atomic_load_explicit(&area->stack_min_pause_ns,
	    memory_order_relaxed);

	if (ev->generation >= 2 || ev->pause_ns >= (min_ns ? min_ns :
	    a->stack_min_ns))
		return a->stacks_on;
	if (a->stack_sample_n == 0 || --a->stack_sample_left > 0)
		return 0;
	a->stack_sample_left = a->stack_sample_n;
	return a->stacks_on;
}

static void cb_on_stop(struct shm_header *area, PyObject *info, uint64_t t1)
{
	struct proto_event ev;
	uint64_t gen;

	ev.start_ns = cb_t0_valid ? cb_t0 : t1;
	ev.pause_ns = cb_t0_valid ? t1 - cb_t0 : 0;
	cb_t0_valid = 0;
	gen = cb_info_u64(info, cb_key_generation);
	ev.generation = (uint16_t)(gen < PROTO_MAX_GEN ? gen : PROTO_MAX_GEN - 1);
	ev.collected = cb_info_u64(info, cb_key_collected);
	ev.uncollectable = (uint32_t)cb_info_u64(info, cb_key_uncollectable);
	ev.collector_ns = 0;
	ev.flags = 0;
	if (agent_state.id.hello.py_hexversion >= 0x030f0000)
		cb_collector_ns(info, &ev);
	/* The rare expensive ones: the stack goes out before its event. */
	if (cb_stack_wanted(area, &ev) &&
	    agent_stacks_capture(area, ev.start_ns))
		ev.flags |= PROTO_EVENT_HAS_STACK;
	shm_record(area, &ev);
	/* After the counters: a reader that sees 0 sees them counted. */
	atomic_store_explicit(&area->gc_start_ns, 0, memory_order_release);
}

/* callback(phase, info) */
static PyObject *cb_callback(PyObject *self, PyObject *const *args,
    Py_ssize_t nargs)
{
	uint64_t now = agent_clock_ns(CLOCK_MONOTONIC);	/* first */
	struct shm_header *area = agent_state.area;
	PyObject *phase;
	Py_UCS4 ch;

	(void)self;
	if (nargs != 2 || area == NULL)
		Py_RETURN_NONE;
	phase = args[0];
	if (phase == cb_str_start)
		ch = 'a';
	else if (phase == cb_str_stop)
		ch = 'o';
	else if ((ch = PyUnicode_ReadChar(phase, 2)) == (Py_UCS4)-1)
		PyErr_Clear();	/* not a string of 3+ characters */
	if (ch == 'a') {
		cb_t0 = now;
		cb_t0_valid = 1;
		/* Relaxed: the collection's first write to a page it shares
		 * with its parent faults, which drains the store first. */
		atomic_store_explicit(&area->gc_start_ns, now,
		    memory_order_relaxed);
	} else if (ch == 'o') {
		cb_on_stop(area, args[1], now);
	}
	Py_RETURN_NONE;
}

static PyMethodDef cb_def = {
	"callback", (PyCFunction)(void (*)(void))cb_callback, METH_FASTCALL,
	"callback(phase, info): the gc.callbacks entry of the gcmon agent."
};

PyObject *agent_callback_new(PyObject *module)
{
	if (cb_str_start == NULL) {
		cb_str_start = PyUnicode_InternFromString("start");
		cb_str_stop = PyUnicode_InternFromString("stop");
		cb_key_generation = PyUnicode_InternFromString("generation");
		cb_key_collected = PyUnicode_InternFromString("collected");
		cb_key_uncollectable = PyUnicode_InternFromString("uncollectable");
		cb_key_duration = PyUnicode_InternFromString("duration");
		if (cb_str_start == NULL || cb_str_stop == NULL ||
		    cb_key_generation == NULL || cb_key_collected == NULL ||
		    cb_key_uncollectable == NULL || cb_key_duration == NULL)
			return NULL;
	}
	return PyCFunction_NewEx(&cb_def, NULL, module);
}
