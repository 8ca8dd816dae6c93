/*
 * _gcmon.c: the agent's CPython extension module (Limited API 3.10, one
 * abi3 shared object for CPython 3.10 and later): the module, stop(),
 * _exit(), stats(), the request API and the limits the bootstrap must
 * respect. Loading (load(), agent(), exit_data(): the identity and the
 * area's start) is boot.c's, called by the gcmon package
 * (agent/bootstrap/gcmon/, which sitecustomize.py, the .pth hook and
 * gcmon.start() share; stats() and the callback also by tests and
 * benchmarks). The recording itself is callback.c's; the shared area is
 * area.c's. _exit() is os._exit's stand-in, which the bootstrap installs
 * (the one function of the program's the agent replaces: os._exit ends a
 * process without its exit handlers, and billiard's and
 * multiprocessing's workers end that way; posix._exit stays the real
 * one). Nothing here calls gc.collect, gc.freeze, gc.set_threshold or
 * gc.get_objects, or starts a thread.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "codec.h"
#include "paths.h"
#include "shm.h"

PyMODINIT_FUNC PyInit__gcmon(void);

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
	static char *kwlist[] = { "objects", "garbage", "freeze_count",
		"detach", NULL };
	PyObject *objects = Py_None, *garbage = Py_None;
	unsigned long long freeze_count = 0;
	uint8_t *frames = NULL;
	size_t len = 0;
	int err, detach = 0;

	(void)self;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "|OOKp", kwlist, &objects,
	    &garbage, &freeze_count, &detach))
		return NULL;
	if (agent_state.area == NULL || agent_state.stopped)
		Py_RETURN_FALSE;
	agent_stacks_publish_names();	/* the pending call may never run */
	if (gcmon_encode_types(objects, FRAME_OBJECTS, &frames, &len) < 0 ||
	    gcmon_encode_types(garbage, FRAME_GARBAGE, &frames, &len) < 0) {
		free(frames);
		return NULL;
	}
	err = detach ? agent_area_detach(frames, len, freeze_count) :
	    agent_area_exit(frames, len, freeze_count);
	free(frames);
	return PyBool_FromLong(err == 0);
}

/* gc.get_freeze_count(), or 0 (3.10+ has it; never an error here). */
static uint64_t gcmon_freeze_count(void)
{
	PyObject *gc = PyImport_ImportModule("gc"), *n = NULL;
	unsigned long long v = 0;

	if (gc != NULL)
		n = PyObject_CallMethod(gc, "get_freeze_count", NULL);
	if (n != NULL)
		v = PyLong_AsUnsignedLongLong(n);
	if (PyErr_Occurred())
		v = 0, PyErr_Clear();
	Py_XDECREF(n);
	Py_XDECREF(gc);
	return v;
}

/* os._exit(status) as posix._exit does it (_exit(2): no exit handlers,
 * no flush), after the code and the exit data are in the area. */
static PyObject *gcmon_os_exit(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "status", NULL };
	int status;

	(void)self;
	if (!PyArg_ParseTupleAndKeywords(args, kw, "i:_exit", kwlist, &status))
		return NULL;
	if (agent_state.area != NULL && !agent_state.stopped)
		(void)agent_area_os_exit(status, gcmon_freeze_count());
	_exit(status);
}

/* [{collections, collected, uncollectable}] of the first n entries. */
static PyObject *gcmon_baseline_list(const struct proto_baseline *b,
    unsigned n)
{
	PyObject *list = PyList_New(0), *item;
	unsigned i;

	for (i = 0; list != NULL && i < n; i++) {
		item = Py_BuildValue("{sKsKsK}",
		    "collections", (unsigned long long)b[i].collections,
		    "collected", (unsigned long long)b[i].collected,
		    "uncollectable", (unsigned long long)b[i].uncollectable);
		if (item == NULL || PyList_Append(list, item) < 0) {
			Py_XDECREF(item);
			Py_CLEAR(list);
			break;
		}
		Py_DECREF(item);
	}
	return list;
}

static PyObject *gcmon_stats(PyObject *self, PyObject *unused)
{
	struct proto_hello *h = &agent_state.id.hello;
	struct shm_header *area = agent_state.area;
	struct shm_snapshot snap;
	PyObject *gens, *base, *prior = NULL, *item;
	unsigned i;

	(void)self;
	(void)unused;
	memset(&snap, 0, sizeof snap);
	if (area != NULL)
		shm_snapshot(area, &snap);
	if ((gens = PyList_New(0)) == NULL)
		return NULL;
	if ((base = PyList_New(0)) == NULL)
		goto out_gens;
	if ((prior = gcmon_baseline_list(h->prior, area != NULL &&
	    (h->flags & PROTO_HELLO_PRIOR) ? h->ngen : 0)) == NULL)
		goto out_base;
	for (i = 0; area != NULL && i < snap.counters.ngen; i++) {
		const struct proto_gen_counters *g = &snap.counters.gen[i];

		item = Py_BuildValue("{sKsKsKsKsK}",
		    "count", (unsigned long long)g->count,
		    "pause_ns", (unsigned long long)g->pause_ns,
		    "max_pause_ns", (unsigned long long)g->max_pause_ns,
		    "collected", (unsigned long long)g->collected,
		    "uncollectable", (unsigned long long)g->uncollectable);
		if (item == NULL || PyList_Append(gens, item) < 0)
			goto out_item;
		Py_DECREF(item);
	}
	for (i = 0; area != NULL && i < h->ngen; i++) {
		item = Py_BuildValue("{sKsKsK}",
		    "collections", (unsigned long long)h->base[i].collections,
		    "collected", (unsigned long long)h->base[i].collected,
		    "uncollectable", (unsigned long long)h->base[i].uncollectable);
		if (item == NULL || PyList_Append(base, item) < 0)
			goto out_item;
		Py_DECREF(item);
	}
	return Py_BuildValue("{sisNsNsNsKsIsKsKsisIss}",
	    "started", area != NULL,
	    "generations", gens, "baseline", base, "prior", prior,
	    "dropped", (unsigned long long)snap.counters.dropped,
	    "ring_capacity", area != NULL ? agent_state.ring_cap : 0u,
	    "ring_count", (unsigned long long)(area != NULL ? snap.head -
		atomic_load_explicit(&area->tail, memory_order_relaxed) : 0),
	    "pid", (unsigned long long)h->pid,
	    "origin", (int)h->origin, "hello_flags", (unsigned)h->flags,
	    "path", area != NULL ? agent_state.path : "");
	/* N: gens, base and prior are stolen, even on error */
out_item:
	Py_XDECREF(item);
	Py_DECREF(prior);
out_base:
	Py_DECREF(base);
out_gens:
	Py_DECREF(gens);
	return NULL;
}

/* request_begin(route_id=0) -> token, or -1 (not recording) */
static PyObject *gcmon_request_begin(PyObject *self, PyObject *const *args,
    Py_ssize_t nargs)
{
	unsigned long route = 0;

	(void)self;
	if (nargs > 1) {
		PyErr_SetString(PyExc_TypeError, "request_begin(route_id=0)");
		return NULL;
	}
	if (nargs == 1 && ((route = PyLong_AsUnsignedLong(args[0])) ==
	    (unsigned long)-1 && PyErr_Occurred()))
		return NULL;
	return PyLong_FromLongLong(agent_requests_begin(
	    route < SHM_ROUTES ? (unsigned)route : 0));
}

/* request_end(token, route_id, status, flags) -> bool (recorded) */
static PyObject *gcmon_request_end(PyObject *self, PyObject *const *args,
    Py_ssize_t nargs)
{
	unsigned long v[3];
	long long token;
	Py_ssize_t i;

	(void)self;
	if (nargs != 4) {
		PyErr_SetString(PyExc_TypeError,
		    "request_end(token, route_id, status, flags)");
		return NULL;
	}
	if ((token = PyLong_AsLongLong(args[0])) == -1 && PyErr_Occurred())
		return NULL;
	for (i = 0; i < 3; i++)
		if ((v[i] = PyLong_AsUnsignedLong(args[i + 1])) ==
		    (unsigned long)-1 && PyErr_Occurred())
			return NULL;
	return PyBool_FromLong(agent_requests_end(token,
	    v[0] < SHM_ROUTES ? (unsigned)v[0] : 0,
	    v[1] <= 999 ? (unsigned)v[1] : 0, (unsigned)(v[2] & 0xffff)) == 0);
}

/* request_route(name: bytes) -> route id (0: "other") */
static PyObject *gcmon_request_route(PyObject *self, PyObject *arg)
{
	char *s;
	Py_ssize_t n;
	int id;

	(void)self;
	if (PyBytes_AsStringAndSize(arg, &s, &n) < 0)
		return NULL;
	if ((id = agent_requests_route(s, (size_t)n)) < 0) {
		PyErr_SetString(PyExc_ValueError, "a route name has no NUL");
		return NULL;
	}
	return PyLong_FromLong(id);
}

/* The socket gcmon.start() uses when given none: the one policy that
 * gcmond and gcmonctl follow too (common/paths.c). */
static PyObject *gcmon_default_socket(PyObject *self, PyObject *unused)
{
	char buf[sizeof ((struct sockaddr_un *)0)->sun_path];

	(void)self;
	(void)unused;
	if (paths_default_socket(buf, sizeof buf) == NULL) {
		PyErr_SetString(PyExc_ValueError, "the default gcmond socket "
		    "path (from GCMON_SOCKET or XDG_RUNTIME_DIR) is too long");
		return NULL;
	}
	return PyUnicode_DecodeFSDefault(buf);
}

static PyMethodDef gcmon_methods[] = {
	{ "stop", (PyCFunction)(void (*)(void))gcmon_stop,
	  METH_VARARGS | METH_KEYWORDS,
	  "stop(objects=None, garbage=None, freeze_count=0, detach=False): "
	  "the exit data (type histograms, CPU, peak RSS, "
	  "gc.get_freeze_count()) into the area; collections are still "
	  "counted, unless detach: then the area is final and unmapped, and "
	  "load() may make the next one." },
	{ "_exit", (PyCFunction)(void (*)(void))gcmon_os_exit,
	  METH_VARARGS | METH_KEYWORDS,
	  "_exit(status): os._exit's stand-in: writes the exit code and exit "
	  "data to the area, then exits as posix._exit(status)." },
	{ "stats", gcmon_stats, METH_NOARGS,
	  "stats(): the agent's counters and area, as gcmond reads them." },
	{ "request_begin", (PyCFunction)(void (*)(void))gcmon_request_begin,
	  METH_FASTCALL,
	  "request_begin(route_id=0): a token for a request starting now, or "
	  "-1 when this process records no requests." },
	{ "request_end", (PyCFunction)(void (*)(void))gcmon_request_end,
	  METH_FASTCALL,
	  "request_end(token, route_id, status, flags): records the request; "
	  "False if it was not (ring full, or ended already)." },
	{ "request_route", gcmon_request_route, METH_O,
	  "request_route(name): the id of a route name (bytes), 0 for "
	  "\"other\" (the table is full)." },
	{ "load", (PyCFunction)(void (*)(void))agent_boot_load,
	  METH_VARARGS | METH_KEYWORDS,
	  "load(socket, service=None, warn_all=False, via='start'): loads the "
	  "agent (settings from the environment, identity, the area, the "
	  "callback, the exit handler, os._exit); returns the area's path." },
	{ "agent", agent_boot_info, METH_NOARGS,
	  "agent(): None, or a dict of what load() was told and made." },
	{ "exit_data", (PyCFunction)(void (*)(void))agent_boot_exit_data,
	  METH_VARARGS | METH_KEYWORDS,
	  "exit_data(detach=False): writes the exit data once per area (the "
	  "exit handler; gcmon.stop() with detach); never raises." },
	{ "gc_model_of", agent_boot_model_of, METH_VARARGS,
	  "gc_model_of(hexversion, gil_enabled, gil_disabled_build): the "
	  "GC_MODEL_* an interpreter runs (the rule load() applies)." },
	{ "default_socket", gcmon_default_socket, METH_NOARGS,
	  "default_socket(): GCMON_SOCKET, else the socket gcmonctl would use." },
	{ NULL, NULL, 0, NULL }
};

static struct PyModuleDef gcmon_module = {
	PyModuleDef_HEAD_INIT, "_gcmon",
	"gcmon agent: records every garbage collection for gcmond.",
	-1, gcmon_methods, NULL, NULL, NULL, NULL
};

/* The limits the bootstrap respects, from the one place that sets them. */
static const struct { const char *name; long value; } gcmon_consts[] = {
	{ "MAX_GEN", PROTO_MAX_GEN }, { "MAX_ID", PROTO_MAX_ID },
	{ "MAX_STR", PROTO_MAX_STR }, { "MAX_ARGC", PROTO_MAX_ARGC },
	{ "MAX_ARGV", PROTO_MAX_ARGV }, { "MAX_TYPES", PROTO_MAX_TYPES },
	{ "RING_MIN", SHM_RING_MIN }, { "RING_MAX", SHM_RING_MAX },
	{ "RING_DEFAULT", SHM_RING_DEFAULT },
	{ "STACK_DEPTH", SHM_STACK_DEPTH },
	{ "ORIGIN_ROOT", ORIGIN_ROOT }, { "ORIGIN_FORK", ORIGIN_FORK },
	{ "ORIGIN_EXEC", ORIGIN_EXEC },
	{ "GC_MODEL_CLASSIC", GC_MODEL_CLASSIC },
	{ "GC_MODEL_INCREMENTAL", GC_MODEL_INCREMENTAL },
	{ "GC_MODEL_FREE_THREADED", GC_MODEL_FREE_THREADED },
	{ "HELLO_FREE_THREADED", PROTO_HELLO_FREE_THREADED },
	{ "HELLO_DEBUG_SAVEALL", PROTO_HELLO_DEBUG_SAVEALL },
	{ "HELLO_SERVICE", PROTO_HELLO_SERVICE },
	{ "REQ_ERROR", SHM_REQ_ERROR }, { "REQ_DISCONNECT", SHM_REQ_DISCONNECT },
	{ "REQ_STREAMED", SHM_REQ_STREAMED },
	{ "ROUTES", SHM_ROUTES }, { "ROUTE_NAME_MAX", SHM_ROUTE_NAME_MAX },
};

/* The area's life, as stacks.c and requests.c follow it (agent.h). */
static void gcmon_on_segment(void)
{
	agent_stacks_atfork_child();
	agent_requests_atfork_child();
}

PyMODINIT_FUNC PyInit__gcmon(void)
{
	PyObject *m, *cb;
	size_t i;

	if ((m = PyModule_Create(&gcmon_module)) == NULL)
		return NULL;
	if (agent_state.area == NULL)	/* a second init keeps a live area */
		agent_state.fd = -1;
	agent_state.on_segment = gcmon_on_segment;
	agent_state.on_area_made = agent_requests_area_made;
	agent_state.on_exit = agent_requests_at_exit;
	if ((cb = agent_callback_new(m)) == NULL ||
	    PyModule_AddObject(m, "callback", cb) < 0) {
		Py_XDECREF(cb);
		goto out_module;
	}
	for (i = 0; i < sizeof gcmon_consts / sizeof gcmon_consts[0]; i++)
		if (PyModule_AddIntConstant(m, gcmon_consts[i].name,
		    gcmon_consts[i].value) < 0)
			goto out_module;
	return m;
out_module:
	Py_DECREF(m);
	return NULL;
}
