/*
 * boot.c: loading the agent into this interpreter, in C: the settings
 * from the environment, the identity (argv, version, executable, the
 * gc.get_stats() baseline, the collector model), start(), the callback
 * into gc.callbacks, the exit handler, os._exit's stand-in. The one
 * implementation of loading: _gcmon.load() is called by the environment's
 * way in (gcmon/__init__.py's _autoload, from sitecustomize.py and the
 * .pth hook) and by gcmon.start() (gcmon/_boot.py), so that a program
 * started with the agent's environment pays for the package's __init__
 * and the extension only, not for _boot.py. Never calls gc.collect,
 * gc.freeze or gc.set_threshold; gc.get_objects only through _boot.py's
 * dump at exit, when asked. Warnings are one stderr line each, starting
 * "gcmon:".
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "protocol.h"
#include "shm.h"

/* What load() was told, for agent() and the exit handler. */
static struct {
	int loaded;
	int exit_done;			/* for the current area */
	int origin;			/* ORIGIN_*: kept across a detach */
	int dump_objects, dump_garbage;
	PyObject *via, *socket, *service;	/* owned; service may be None */
	PyObject *path;
} boot;

static void boot_warn(int on, PyObject *msg)
{
	const char *s;

	if (msg == NULL) {
		PyErr_Clear();
		return;
	}
	if (on && (s = PyUnicode_AsUTF8AndSize(msg, NULL)) != NULL)
		PySys_WriteStderr("gcmon: %.900s\n", s);
	PyErr_Clear();
	Py_DECREF(msg);
}

/* os.environ.get(name) as a str, or NULL (unset; no error set). */
static PyObject *boot_env(PyObject *environ, const char *name)
{
	PyObject *v = PyMapping_GetItemString(environ, name);

	if (v == NULL)
		PyErr_Clear();
	return v;
}

/* _boot.py's _bytes: UTF-8 (backslashreplace, NUL as "\x00") of at most
 * cap bytes, cut at a character's start. New reference, or NULL. */
static PyObject *boot_bytes(PyObject *s, Py_ssize_t cap)
{
	PyObject *u = PyObject_Str(s), *b, *r;
	const char *p;
	Py_ssize_t n;

	if (u == NULL)
		return NULL;
	b = PyUnicode_AsEncodedString(u, "utf-8", "backslashreplace");
	Py_DECREF(u);
	if (b == NULL)
		return NULL;
	p = PyBytes_AsString(b);
	n = PyBytes_Size(b);
	if (memchr(p, '\0', (size_t)n) != NULL) {
		r = PyObject_CallMethod(b, "replace", "y#y#", "\0", (Py_ssize_t)1,
		    "\\x00", (Py_ssize_t)4);
		Py_DECREF(b);
		if ((b = r) == NULL)
			return NULL;
		p = PyBytes_AsString(b);
		n = PyBytes_Size(b);
	}
	if (n <= cap)
		return b;
	while (cap > 0 && ((unsigned char)p[cap] & 0xc0) == 0x80)
		cap--;
	r = PyBytes_FromStringAndSize(p, cap);
	Py_DECREF(b);
	return r;
}

/* GCMON_RING: the default when unset or blank, else a power of 2 in
 * [SHM_RING_MIN, SHM_RING_MAX], or the default with a warning. */
static unsigned long boot_ring(PyObject *environ, int warn)
{
	PyObject *raw = boot_env(environ, "GCMON_RING"), *v;
	const char *s;
	long long n;

	if (raw == NULL)
		return SHM_RING_DEFAULT;
	s = PyUnicode_AsUTF8AndSize(raw, NULL);
	if (s == NULL) {
		PyErr_Clear();
		s = "?";
	}
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0') {
		Py_DECREF(raw);
		return SHM_RING_DEFAULT;
	}
	/* int(raw) as Python reads it (whitespace, a sign, underscores). */
	v = PyNumber_Long(raw);
	n = v != NULL ? PyLong_AsLongLong(v) : -1;
	Py_XDECREF(v);
	if (PyErr_Occurred() || n < SHM_RING_MIN || n > SHM_RING_MAX) {
		PyErr_Clear();
		boot_warn(warn, PyUnicode_FromFormat("GCMON_RING=%R is not a "
		    "number in [%u, %u]; using %u", raw, (unsigned)SHM_RING_MIN,
		    (unsigned)SHM_RING_MAX, (unsigned)SHM_RING_DEFAULT));
		n = SHM_RING_DEFAULT;
	} else if (n & (n - 1)) {
		boot_warn(warn, PyUnicode_FromFormat("GCMON_RING=%R is not a "
		    "power of 2; using %u", raw, (unsigned)SHM_RING_DEFAULT));
		n = SHM_RING_DEFAULT;
	}
	Py_DECREF(raw);
	return (unsigned long)n;
}

/* A 0/1 variable: unset, "" and "0" are 0, "1" is 1, others 0 warned. */
static int boot_flag(PyObject *environ, const char *name, int warn)
{
	PyObject *raw = boot_env(environ, name);
	const char *s;
	int v = 0;

	if (raw == NULL)
		return 0;
	if ((s = PyUnicode_AsUTF8AndSize(raw, NULL)) == NULL)
		PyErr_Clear();		/* not UTF-8 (surrogates): not "1" */
	if (s != NULL && strcmp(s, "1") == 0)
		v = 1;
	else if (s == NULL || (*s != '\0' && strcmp(s, "0") != 0))
		boot_warn(warn, PyUnicode_FromFormat("%s=%R is not 0 or 1; "
		    "using 0", name, raw));
	PyErr_Clear();
	Py_DECREF(raw);
	return v;
}

/* sys.orig_argv (or sys.argv, or [sys.executable]) as capped bytes. */
static PyObject *boot_argv(void)
{
	PyObject *src = PySys_GetObject("orig_argv");	/* borrowed */
	PyObject *out, *b;
	Py_ssize_t i, n, total = 0;

	if (src == NULL || !PyList_Check(src) || PyList_Size(src) == 0)
		src = PySys_GetObject("argv");
	if ((out = PyList_New(0)) == NULL)
		return NULL;
	if (src == NULL || !PyList_Check(src) || PyList_Size(src) == 0) {
		src = PySys_GetObject("executable");
		if (src == NULL)
			return out;
		if ((b = boot_bytes(src, PROTO_MAX_STR)) == NULL ||
		    PyList_Append(out, b) < 0)
			goto out_err;
		Py_DECREF(b);
		return out;
	}
	n = PyList_Size(src);
	for (i = 0; i < n; i++) {
		if ((b = boot_bytes(PyList_GetItem(src, i), PROTO_MAX_STR)) == NULL)
			goto out_list;
		if (PyList_Size(out) >= PROTO_MAX_ARGC ||
		    total + PyBytes_Size(b) > PROTO_MAX_ARGV) {
			Py_DECREF(b);
			break;
		}
		total += PyBytes_Size(b);
		if (PyList_Append(out, b) < 0)
			goto out_err;
		Py_DECREF(b);
	}
	return out;
out_err:
	Py_XDECREF(b);
out_list:
	Py_DECREF(out);
	return NULL;
}

/* The collector model of an interpreter: sys.hexversion,
 * sys._is_gil_enabled() (true before 3.13), Py_GIL_DISABLED. A
 * free-threaded build keeps its collector with the GIL turned back on
 * (PYTHON_GIL=1); 3.14.0-3.14.4 shipped the incremental collector, 3.14.5
 * brought the generational one back. The one home of this rule. */
static int boot_model_of(unsigned long hexversion, int gil_enabled,
    int gil_disabled_build)
{
	if (gil_disabled_build || !gil_enabled)
		return GC_MODEL_FREE_THREADED;
	if (hexversion >= 0x030E0000 && hexversion < 0x030E0500)
		return GC_MODEL_INCREMENTAL;
	return GC_MODEL_CLASSIC;
}

/* This interpreter's model ("t" in sys.abiflags: Py_GIL_DISABLED,
 * without importing sysconfig). */
static int boot_gc_model(unsigned long hexversion)
{
	PyObject *f = PySys_GetObject("_is_gil_enabled"), *r;
	const char *flags;
	int gil = 1;

	if (f != NULL && (r = PyObject_CallNoArgs(f)) != NULL) {
		gil = PyObject_IsTrue(r);
		Py_DECREF(r);
	}
	PyErr_Clear();
	r = PySys_GetObject("abiflags");
	flags = r != NULL && PyUnicode_Check(r) ?
	    PyUnicode_AsUTF8AndSize(r, NULL) : "";
	if (flags == NULL)
		flags = "", PyErr_Clear();
	return boot_model_of(hexversion, gil != 0,
	    f != NULL && strchr(flags, 't') != NULL);
}

/* gc_model_of(hexversion, gil_enabled, gil_disabled_build) -> GC_MODEL_* */
PyObject *agent_boot_model_of(PyObject *self, PyObject *args)
{
	unsigned long hexversion;
	int gil, ft;

	(void)self;
	if (!PyArg_ParseTuple(args, "kpp:gc_model_of", &hexversion, &gil, &ft))
		return NULL;
	return PyLong_FromLong(boot_model_of(hexversion, gil, ft));
}

/* getattr(import(module), name): new reference, or NULL. */
static PyObject *boot_attr(const char *module, const char *name)
{
	PyObject *m = PyImport_ImportModule(module), *v;

	if (m == NULL)
		return NULL;
	v = PyObject_GetAttrString(m, name);
	Py_DECREF(m);
	return v;
}

/* [(collections, collected, uncollectable)] of gc.get_stats() and the
 * thresholds, at most PROTO_MAX_GEN each, into *base and *thr. */
static int boot_baseline(PyObject *gc, PyObject **base, PyObject **thr)
{
	PyObject *stats, *t, *d, *item, *v[3];
	static const char *const keys[3] = { "collections", "collected",
	    "uncollectable" };
	Py_ssize_t i, n;
	int k;

	*base = *thr = NULL;
	if ((stats = PyObject_CallMethod(gc, "get_stats", NULL)) == NULL)
		return -1;
	if ((*base = PyList_New(0)) == NULL)
		goto out_err;
	n = PySequence_Size(stats);
	for (i = 0; i < n && i < PROTO_MAX_GEN; i++) {
		if ((d = PySequence_GetItem(stats, i)) == NULL)
			goto out_err;
		for (k = 0; k < 3; k++) {
			v[k] = PyMapping_GetItemString(d, keys[k]);
			if (v[k] == NULL) {
				PyErr_Clear();
				v[k] = PyLong_FromLong(0);
			}
		}
		Py_DECREF(d);
		item = v[0] && v[1] && v[2] ? PyTuple_Pack(3, v[0], v[1], v[2]) :
		    NULL;
		for (k = 0; k < 3; k++)
			Py_XDECREF(v[k]);
		if (item == NULL || PyList_Append(*base, item) < 0) {
			Py_XDECREF(item);
			goto out_err;
		}
		Py_DECREF(item);
	}
	Py_CLEAR(stats);
	if ((t = PyObject_CallMethod(gc, "get_threshold", NULL)) == NULL)
		goto out_err;
	*thr = PySequence_GetSlice(t, 0, PROTO_MAX_GEN);
	Py_DECREF(t);
	if (*thr == NULL)
		goto out_err;
	t = PySequence_List(*thr);
	Py_DECREF(*thr);
	if ((*thr = t) == NULL)
		goto out_err;
	return 0;
out_err:
	Py_XDECREF(stats);
	Py_CLEAR(*base);
	Py_CLEAR(*thr);
	return -1;
}

/* start() of this module with the identity, gc.callbacks gaining the
 * callback, automatic collection off in between so that no collection
 * falls between the baseline and the first callback. */
static PyObject *boot_register(PyObject *self, PyObject *gc, PyObject *kw)
{
	PyObject *r, *base = NULL, *thr = NULL, *path = NULL, *start = NULL;
	PyObject *cbs = NULL, *cb = NULL, *args = NULL;
	int enabled;

	if ((r = PyObject_CallMethod(gc, "isenabled", NULL)) == NULL)
		return NULL;
	enabled = PyObject_IsTrue(r);
	Py_DECREF(r);
	if ((r = PyObject_CallMethod(gc, "disable", NULL)) == NULL)
		return NULL;
	Py_DECREF(r);
	if (boot_baseline(gc, &base, &thr) < 0 ||
	    PyDict_SetItemString(kw, "baseline", base) < 0 ||
	    PyDict_SetItemString(kw, "thresholds", thr) < 0 ||
	    (start = PyObject_GetAttrString(self, "start")) == NULL ||
	    (args = PyTuple_New(0)) == NULL ||
	    (path = PyObject_Call(start, args, kw)) == NULL ||
	    (cbs = PyObject_GetAttrString(gc, "callbacks")) == NULL ||
	    (cb = PyObject_GetAttrString(self, "callback")) == NULL ||
	    PyList_Append(cbs, cb) < 0)
		Py_CLEAR(path);
	Py_XDECREF(base);
	Py_XDECREF(thr);
	Py_XDECREF(start);
	Py_XDECREF(args);
	Py_XDECREF(cbs);
	Py_XDECREF(cb);
	if (enabled) {
		/* Re-enabled whatever happened: an exception stays set. */
		PyObject *et, *ev, *tb;

		PyErr_Fetch(&et, &ev, &tb);
		r = PyObject_CallMethod(gc, "enable", NULL);
		Py_XDECREF(r);
		PyErr_Restore(et, ev, tb);
	}
	return path;
}

/* kw[key] = v, stealing v (NULL: the error of making it). */
static int boot_set(PyObject *kw, const char *key, PyObject *v)
{
	int err;

	if (v == NULL)
		return -1;
	err = PyDict_SetItemString(kw, key, v);
	Py_DECREF(v);
	return err;
}

/* What the agent says of itself to gcmond: start()'s keywords but the
 * baseline and thresholds (boot_register's). */
static int boot_identity(PyObject *kw, PyObject *environ, PyObject *socket,
    PyObject *service, int origin, int flags, unsigned long ring)
{
	PyObject *v, *lines, *exe;
	unsigned long hexversion;

	v = boot_env(environ, "GCMON_RUN_ID");
	if (v == NULL && (v = PyUnicode_FromString("")) == NULL)
		return -1;
	if (boot_set(kw, "run_id", boot_bytes(v, PROTO_MAX_ID)) < 0) {
		Py_DECREF(v);
		return -1;
	}
	Py_DECREF(v);
	if ((v = PySys_GetObject("version")) == NULL ||
	    (lines = PyObject_CallMethod(v, "splitlines", NULL)) == NULL)
		return -1;
	v = PyList_Size(lines) > 0 ? boot_bytes(PyList_GetItem(lines, 0),
	    PROTO_MAX_STR) : PyBytes_FromString("");
	Py_DECREF(lines);
	if (boot_set(kw, "py_version", v) < 0)
		return -1;
	exe = PySys_GetObject("executable");
	if (boot_set(kw, "executable", exe != NULL && exe != Py_None &&
	    PyObject_IsTrue(exe) == 1 ? boot_bytes(exe, PROTO_MAX_STR) :
	    PyBytes_FromString("")) < 0 ||
	    boot_set(kw, "argv", boot_argv()) < 0 ||
	    boot_set(kw, "service", service != Py_None &&
	    PyObject_IsTrue(service) == 1 ? boot_bytes(service, PROTO_MAX_ID) :
	    PyBytes_FromString("")) < 0)
		return -1;
	if ((v = PySys_GetObject("hexversion")) == NULL)
		return -1;
	hexversion = PyLong_AsUnsignedLong(v);
	if (PyErr_Occurred())
		return -1;
	if (PyDict_SetItemString(kw, "socket", socket) < 0 ||
	    boot_set(kw, "hexversion", PyLong_FromUnsignedLong(hexversion)) < 0 ||
	    boot_set(kw, "origin", PyLong_FromLong(origin)) < 0 ||
	    boot_set(kw, "gc_model",
	    PyLong_FromLong(boot_gc_model(hexversion))) < 0 ||
	    boot_set(kw, "flags", PyLong_FromLong(flags)) < 0 ||
	    boot_set(kw, "ring", PyLong_FromUnsignedLong(ring)) < 0)
		return -1;
	return 0;
}

/* The exec'd interpreters' mark (forked children need none: the
 * extension gives them their own area before any Python runs), the exit
 * handler (registered first when loaded at start-up, so it runs after
 * the program's own; only the exit data depends on it, counts survive
 * any end) and os._exit's stand-in (billiard's and multiprocessing's
 * workers end by it; posix._exit stays the real one). */
static int boot_install(PyObject *self, PyObject *os, PyObject *environ,
    int again)
{
	PyObject *key, *pid, *fn, *r;
	int err;

	if (again)
		goto os_exit;	/* the mark and the handler are there */
	key = PyUnicode_FromString("GCMON_AGENT_PID");
	pid = PyUnicode_FromFormat("%ld", (long)getpid());
	err = key != NULL && pid != NULL ? PyObject_SetItem(environ, key, pid) :
	    -1;
	Py_XDECREF(key);
	Py_XDECREF(pid);
	if (err < 0 || (fn = PyObject_GetAttrString(self, "exit_data")) == NULL)
		return -1;
	r = boot_attr("atexit", "register");
	pid = r != NULL ? PyObject_CallFunctionObjArgs(r, fn, NULL) : NULL;
	Py_XDECREF(r);
	Py_DECREF(fn);
	if (pid == NULL)
		return -1;
	Py_DECREF(pid);
os_exit:
	if ((fn = PyObject_GetAttrString(self, "_exit")) == NULL)
		return -1;
	err = PyObject_SetAttrString(os, "_exit", fn);
	Py_DECREF(fn);
	return err;
}

/* ORIGIN_EXEC when a monitored process exec'd this interpreter (it set
 * GCMON_AGENT_PID), else ORIGIN_ROOT. */
static int boot_origin(PyObject *environ)
{
	PyObject *v, *r;
	int origin = ORIGIN_ROOT;

	if ((v = boot_env(environ, "GCMON_AGENT_PID")) != NULL) {
		r = PyObject_CallMethod(v, "isdigit", NULL);
		if (r != NULL && PyObject_IsTrue(r) == 1)
			origin = ORIGIN_EXEC;
		Py_XDECREF(r);
		Py_DECREF(v);
		PyErr_Clear();
	}
	return origin;
}

/* --dump-garbage: gc.DEBUG_SAVEALL added to the collector's debug
 * flags, said once (by the root process). 0, or -1 with an exception. */
static int boot_saveall(PyObject *gc, int origin)
{
	PyObject *dbg = PyObject_CallMethod(gc, "get_debug", NULL);
	PyObject *all = PyObject_GetAttrString(gc, "DEBUG_SAVEALL");
	PyObject *both = dbg && all ? PyNumber_Or(dbg, all) : NULL;
	PyObject *r = both ? PyObject_CallMethod(gc, "set_debug", "O", both) :
	    NULL;

	Py_XDECREF(dbg);
	Py_XDECREF(all);
	Py_XDECREF(both);
	if (r == NULL)
		return -1;
	Py_DECREF(r);
	if (origin == ORIGIN_ROOT)
		boot_warn(1, PyUnicode_FromString("--dump-garbage: "
		    "gc.DEBUG_SAVEALL is set for this process"));
	return 0;
}

PyObject *agent_boot_load(PyObject *self, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "socket", "service", "warn_all", "via",
		NULL };
	PyObject *socket, *service = Py_None, *via = NULL;
	PyObject *os = NULL, *environ = NULL, *gc = NULL, *kw = NULL;
	PyObject *path = NULL;
	int warn_all = 0, origin, flags = 0, warn, again;
	int dump_objects, dump_garbage;
	unsigned long ring;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "U|OpU:load", kwlist,
	    &socket, &service, &warn_all, &via))
		return NULL;
	if (boot.loaded && !agent_state.detached) {
		PyErr_SetString(PyExc_RuntimeError, "gcmon agent already started");
		return NULL;
	}
	/* After gcmon.stop(): the next area of the same process, which stays
	 * what it was (GCMON_AGENT_PID is its own pid now). */
	again = boot.loaded;
	if ((os = PyImport_ImportModule("os")) == NULL ||
	    (environ = PyObject_GetAttrString(os, "environ")) == NULL ||
	    (gc = PyImport_ImportModule("gc")) == NULL)
		goto out;
	origin = again ? boot.origin : boot_origin(environ);
	/* Exec'd children see the same settings: one warning is enough. */
	warn = warn_all || origin == ORIGIN_ROOT;
	ring = boot_ring(environ, warn);
	dump_objects = boot_flag(environ, "GCMON_DUMP_OBJECTS", warn);
	dump_garbage = boot_flag(environ, "GCMON_DUMP_GARBAGE", warn);
	if (dump_garbage) {
		if (boot_saveall(gc, origin) < 0)
			goto out;
		flags |= PROTO_HELLO_DEBUG_SAVEALL;
	}
	if ((kw = PyDict_New()) == NULL || boot_identity(kw, environ, socket,
	    service, origin, flags, ring) < 0 ||
	    (path = boot_register(self, gc, kw)) == NULL)
		goto out;
	if (again) {
		Py_CLEAR(boot.via);
		Py_CLEAR(boot.socket);
		Py_CLEAR(boot.service);
		Py_CLEAR(boot.path);
	}
	boot.loaded = 1;
	boot.exit_done = 0;
	boot.origin = origin;
	boot.dump_objects = dump_objects;
	boot.dump_garbage = dump_garbage;
	boot.via = via != NULL ? via : PyUnicode_FromString("start");
	Py_XINCREF(via);
	Py_INCREF(socket);
	boot.socket = socket;
	boot.service = service != Py_None && PyObject_IsTrue(service) == 1 ?
	    service : Py_None;
	Py_INCREF(boot.service);
	Py_INCREF(path);
	boot.path = path;
	if (boot.via == NULL || boot_install(self, os, environ, again) < 0)
		Py_CLEAR(path);
out:
	Py_XDECREF(kw);
	Py_XDECREF(gc);
	Py_XDECREF(environ);
	Py_XDECREF(os);
	return path;
}

/* agent(): None, or what load() was told and made. */
PyObject *agent_boot_info(PyObject *self, PyObject *unused)
{
	(void)self;
	(void)unused;
	if (!boot.loaded)
		Py_RETURN_NONE;
	return Py_BuildValue("{sOsOsOsOsisisi}", "via", boot.via, "socket",
	    boot.socket, "service", boot.service, "path", boot.path,
	    "dump_objects", boot.dump_objects, "dump_garbage",
	    boot.dump_garbage, "exit_done", boot.exit_done);
}

/* exit_data(detach=False): the exit data, once per area, by the exit
 * handler or gcmon.stop() (detach: the area is then final and unmapped,
 * and a later load() makes the next): the type histograms when asked
 * (gcmon/_boot.py's, imported then only), gc.get_freeze_count(), then
 * stop(). Never raises but for a bad argument: one warning. */
PyObject *agent_boot_exit_data(PyObject *self, PyObject *args_in,
    PyObject *kwds)
{
	static char *kwlist[] = { "detach", NULL };
	PyObject *objects = Py_None, *garbage = Py_None, *fc = NULL;
	PyObject *r = NULL, *dumps, *stop = NULL, *kw = NULL, *args = NULL;
	PyObject *et, *ev, *tb, *msg;
	int detach = 0;

	if (!PyArg_ParseTupleAndKeywords(args_in, kwds, "|p:exit_data", kwlist,
	    &detach))
		return NULL;
	if (!boot.loaded || boot.exit_done)
		Py_RETURN_NONE;
	boot.exit_done = 1;
	Py_INCREF(objects);
	Py_INCREF(garbage);
	if (boot.dump_objects || boot.dump_garbage) {
		if ((dumps = boot_attr("gcmon._boot", "_exit_dumps")) == NULL)
			goto out;
		r = PyObject_CallFunction(dumps, "Oii", self, boot.dump_objects,
		    boot.dump_garbage);
		Py_DECREF(dumps);
		if (r == NULL)
			goto out;
		Py_DECREF(objects);
		Py_DECREF(garbage);
		if (!PyArg_ParseTuple(r, "OO", &objects, &garbage)) {
			objects = garbage = NULL;
			goto out;
		}
		Py_INCREF(objects);
		Py_INCREF(garbage);
		Py_CLEAR(r);
	}
	if ((r = boot_attr("gc", "get_freeze_count")) == NULL ||
	    (fc = PyObject_CallNoArgs(r)) == NULL)
		goto out;
	Py_CLEAR(r);
	if ((stop = PyObject_GetAttrString(self, "stop")) == NULL ||
	    (args = PyTuple_New(0)) == NULL ||
	    (kw = Py_BuildValue("{sOsOsOsO}", "objects", objects, "garbage",
	    garbage, "freeze_count", fc, "detach",
	    detach ? Py_True : Py_False)) == NULL)
		goto out;
	r = PyObject_Call(stop, args, kw);
out:
	if (PyErr_Occurred()) {
		PyErr_Fetch(&et, &ev, &tb);
		PyErr_NormalizeException(&et, &ev, &tb);
		msg = ev != NULL ? PyObject_Str(ev) : NULL;
		if (msg != NULL)
			boot_warn(1, PyUnicode_FromFormat("exit data not written: "
			    "%U", msg));
		Py_XDECREF(msg);
		Py_XDECREF(et);
		Py_XDECREF(ev);
		Py_XDECREF(tb);
		PyErr_Clear();
	}
	Py_XDECREF(r);
	Py_XDECREF(objects);
	Py_XDECREF(garbage);
	Py_XDECREF(fc);
	Py_XDECREF(stop);
	Py_XDECREF(kw);
	Py_XDECREF(args);
	Py_RETURN_NONE;
}
