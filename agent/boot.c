/*
 * boot.c: loading the agent into this interpreter, in C: the settings
 * from the environment, the identity (argv, version, executable, the
 * gc.get_stats() baseline, the collector model) written straight into
 * the hello, the shared area, the callback into gc.callbacks, the exit
 * handler, os._exit's stand-in. The one implementation of loading:
 * _gcmon.load() is called by the environment's way in (gcmon/__init__.py's
 * _autoload, from sitecustomize.py and the .pth hook) and by gcmon.start()
 * (gcmon/_boot.py), so that a program started with the agent's
 * environment pays for the package's __init__ and the extension only, not
 * for _boot.py. It runs at every start of every monitored interpreter:
 * modules come from sys.modules, not the import system, and the identity
 * is copied from the objects CPython already has (a str's UTF-8), since
 * each CPython code path a plain start never runs costs a page fault.
 * Never calls gc.collect, gc.freeze or gc.set_threshold; gc.get_objects
 * only through _boot.py's dump at exit, when asked. Warnings are one
 * stderr line each, starting "gcmon:".
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
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
	r = PyBytes_FromStringAndSize(p,
	    (Py_ssize_t)proto_utf8_cut(p, (size_t)n, (size_t)cap));
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

/* A copy of n bytes at s, NUL-terminated, as *dst (owned by *owner). */
static int boot_copy(struct proto_str *dst, char **owner, const char *s,
    size_t n)
{
	if ((*owner = malloc(n + 1)) == NULL) {
		PyErr_NoMemory();
		return -1;
	}
	memcpy(*owner, s, n);
	(*owner)[n] = '\0';
	dst->ptr = *owner;
	dst->len = (uint32_t)n;
	return 0;
}

/* boot_bytes(o, cap) copied into *dst: a str's own UTF-8 when it has one
 * without NUL (every argument and path but the odd one), else
 * boot_bytes' encoding. 0, or -1 with an exception. */
static int boot_text(PyObject *o, size_t cap, struct proto_str *dst,
    char **owner)
{
	PyObject *b = NULL;
	const char *p = NULL;
	Py_ssize_t n = 0;
	int err;

	if (PyUnicode_CheckExact(o)) {
		p = PyUnicode_AsUTF8AndSize(o, &n);
		if (p == NULL)
			PyErr_Clear();	/* surrogates: backslashreplace */
		else if (memchr(p, '\0', (size_t)n) != NULL)
			p = NULL;
	}
	if (p == NULL) {
		if ((b = boot_bytes(o, (Py_ssize_t)cap)) == NULL)
			return -1;
		p = PyBytes_AsString(b);
		n = PyBytes_Size(b);
	}
	err = boot_copy(dst, owner, p, proto_utf8_cut(p, (size_t)n, cap));
	Py_XDECREF(b);
	return err;
}

/* sys.orig_argv (or sys.argv, or [sys.executable]) into the hello, as
 * many arguments as PROTO_MAX_ARGC and PROTO_MAX_ARGV allow. */
static int boot_argv(struct agent_identity *id)
{
	PyObject *src = PySys_GetObject("orig_argv");	/* borrowed */
	PyObject *one = NULL;
	struct proto_hello *h = &id->hello;
	Py_ssize_t i, n;
	size_t total = 0;

	if (src == NULL || !PyList_Check(src) || PyList_Size(src) == 0)
		src = PySys_GetObject("argv");
	if (src == NULL || !PyList_Check(src) || PyList_Size(src) == 0) {
		if ((src = PySys_GetObject("executable")) == NULL)
			return 0;
		if ((one = PyList_New(1)) == NULL)
			return -1;
		Py_INCREF(src);
		PyList_SetItem(one, 0, src);
		src = one;
	}
	n = PyList_Size(src);
	if (n > (Py_ssize_t)PROTO_MAX_ARGC)
		n = PROTO_MAX_ARGC;
	if ((id->argv = calloc((size_t)n + 1, sizeof *id->argv)) == NULL) {
		Py_XDECREF(one);
		PyErr_NoMemory();
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (boot_text(PyList_GetItem(src, i), PROTO_MAX_STR,
		    &h->argv[i], &id->argv[i]) < 0) {
			Py_XDECREF(one);
			return -1;
		}
		if (total + h->argv[i].len > PROTO_MAX_ARGV) {
			free(id->argv[i]);
			id->argv[i] = NULL;
			h->argv[i].ptr = NULL;
			h->argv[i].len = 0;
			break;
		}
		total += h->argv[i].len;
	}
	h->argc = (uint32_t)i;
	Py_XDECREF(one);
	return 0;
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

/* sys.modules[name], else import(name): new reference, or NULL. The
 * import system's own call (PyImport_ImportModule) is a Python-level
 * __import__ even for a module already there. */
static PyObject *boot_module(const char *name)
{
	PyObject *m = PyDict_GetItemString(PyImport_GetModuleDict(), name);

	if (m != NULL) {
		Py_INCREF(m);
		return m;
	}
	return PyImport_ImportModule(name);
}

/* getattr(import(module), name): new reference, or NULL. */
static PyObject *boot_attr(const char *module, const char *name)
{
	PyObject *m = boot_module(module), *v;

	if (m == NULL)
		return NULL;
	v = PyObject_GetAttrString(m, name);
	Py_DECREF(m);
	return v;
}

/* sys.<name>, borrowed, or NULL with an exception. */
static PyObject *boot_sys(const char *name)
{
	PyObject *v = PySys_GetObject(name);

	if (v == NULL)
		PyErr_Format(PyExc_RuntimeError, "sys.%s is missing", name);
	return v;
}

/* mod.<name>(): new reference, or NULL. */
static PyObject *boot_call(PyObject *mod, const char *name)
{
	PyObject *f = PyObject_GetAttrString(mod, name), *r;

	if (f == NULL)
		return NULL;
	r = PyObject_CallNoArgs(f);
	Py_DECREF(f);
	return r;
}

/* gc.get_stats() (collections, collected, uncollectable; a key it lacks
 * is 0) and gc.get_threshold(), at most PROTO_MAX_GEN generations, into
 * the hello's baseline. */
static int boot_baseline(PyObject *gc, struct proto_hello *h)
{
	static const char *const keys[3] = { "collections", "collected",
	    "uncollectable" };
	PyObject *stats, *thr = NULL, *d, *v;
	unsigned long long c[3];
	Py_ssize_t i, n, nt;
	int k;

	if ((stats = boot_call(gc, "get_stats")) == NULL)
		return -1;
	if ((n = PySequence_Size(stats)) < 0)
		goto out_err;
	if (n > (Py_ssize_t)PROTO_MAX_GEN)
		n = PROTO_MAX_GEN;
	if (n == 0) {
		PyErr_SetString(PyExc_ValueError,
		    "gc.get_stats() has no generation");
		goto out_err;
	}
	for (i = 0; i < n; i++) {
		if ((d = PySequence_GetItem(stats, i)) == NULL)
			goto out_err;
		for (k = 0; k < 3; k++) {
			c[k] = 0;
			if ((v = PyMapping_GetItemString(d, keys[k])) == NULL) {
				PyErr_Clear();
				continue;
			}
			c[k] = PyLong_AsUnsignedLongLongMask(v);
			Py_DECREF(v);
			if (PyErr_Occurred()) {
				Py_DECREF(d);
				goto out_err;
			}
		}
		Py_DECREF(d);
		h->base[i].collections = c[0];
		h->base[i].collected = c[1];
		h->base[i].uncollectable = c[2];
		h->base[i].threshold = 0;
	}
	h->ngen = (uint8_t)n;
	if ((thr = boot_call(gc, "get_threshold")) == NULL ||
	    (nt = PySequence_Size(thr)) < 0)
		goto out_err;
	for (i = 0; i < n && i < nt; i++) {
		if ((v = PySequence_GetItem(thr, i)) == NULL)
			goto out_err;
		h->base[i].threshold = (uint32_t)PyLong_AsUnsignedLong(v);
		Py_DECREF(v);
		if (PyErr_Occurred())
			goto out_err;
	}
	Py_DECREF(stats);
	Py_DECREF(thr);
	return 0;
out_err:
	Py_DECREF(stats);
	Py_XDECREF(thr);
	return -1;
}

/* Frees what a failed or detached start copied, so that a later one can
 * run. */
static void boot_undo(struct agent *a)
{
	struct agent_identity *id = &a->id;
	char **v;

	for (v = id->argv; v != NULL && *v != NULL; v++)
		free(*v);
	free(id->argv);
	free(id->run_id);
	free(id->py_version);
	free(id->executable);
	free(id->service);
	agent_place_free(id);
	free(a->dir);
	free(a->hello_buf);
	memset(id, 0, sizeof *id);
	a->dir = NULL;
	a->hello_buf = NULL;
}

/* The agent directory of a gcmond socket: the path with ".d" appended. */
static char *boot_agent_dir(const char *sock, size_t n)
{
	char *dir;

	if ((dir = malloc(n + sizeof SHM_DIR_SUFFIX)) == NULL)
		return NULL;
	memcpy(dir, sock, n);
	memcpy(dir + n, SHM_DIR_SUFFIX, sizeof SHM_DIR_SUFFIX);
	return dir;
}

/* The area for the identity in agent_state.id (the place, the stacks'
 * table, the fork handlers): its path, or NULL with an exception and
 * the identity undone. */
static PyObject *boot_area(PyObject *socket, unsigned long ring)
{
	struct agent *a = &agent_state;
	struct sockaddr_un sa;
	const char *sock;
	Py_ssize_t n;
	int err;

	if ((sock = PyUnicode_AsUTF8AndSize(socket, &n)) == NULL)
		goto out_undo;
	if (n == 0 || (size_t)n >= sizeof sa.sun_path ||
	    memchr(sock, '\0', (size_t)n) != NULL) {
		PyErr_Format(PyExc_ValueError,
		    "socket path must be 1 to %u bytes without NUL",
		    (unsigned)sizeof sa.sun_path - 1);
		goto out_undo;
	}
	a->ring_cap = (uint32_t)ring;
	if (agent_place_read(&a->id) < 0 ||
	    (a->dir = boot_agent_dir(sock, (size_t)n)) == NULL ||
	    (a->hello_buf = malloc(SHM_HELLO_CAP)) == NULL ||
	    agent_stacks_init() < 0) {
		PyErr_NoMemory();
		goto out_undo;
	}
	if (!a->atfork_registered) {
		if ((err = pthread_atfork(agent_area_atfork_prepare, NULL,
		    agent_area_atfork_child)) != 0)
			goto out_errno;
		a->atfork_registered = 1;
	}
	if ((err = -agent_area_open(a->dir)) != 0)
		goto out_errno;
	return PyUnicode_FromString(a->path);
out_errno:
	errno = err;
	PyErr_SetFromErrnoWithFilename(PyExc_OSError, a->dir);
out_undo:
	boot_undo(a);
	return NULL;
}

/* The baseline, the area and gc.callbacks gaining the callback, with
 * automatic collection off in between so that no collection falls
 * between the baseline and the first callback. The area's path, or NULL
 * with an exception and the identity undone. */
static PyObject *boot_register(PyObject *self, PyObject *gc,
    PyObject *socket, unsigned long ring)
{
	PyObject *path = NULL, *cbs = NULL, *cb = NULL;
	int enabled = PyGC_Disable();

	if (boot_baseline(gc, &agent_state.id.hello) < 0)
		boot_undo(&agent_state);
	else if ((path = boot_area(socket, ring)) != NULL &&
	    ((cbs = PyObject_GetAttrString(gc, "callbacks")) == NULL ||
	    (cb = PyObject_GetAttrString(self, "callback")) == NULL ||
	    PyList_Append(cbs, cb) < 0))
		Py_CLEAR(path);
	Py_XDECREF(cbs);
	Py_XDECREF(cb);
	if (enabled)
		PyGC_Enable();	/* whatever happened: an exception stays set */
	return path;
}

/* What the agent says of itself to gcmond, into agent_state.id: all but
 * the baseline (boot_register's) and the place (boot_area's). */
static int boot_identity(PyObject *environ, PyObject *service, int origin,
    int flags)
{
	struct agent_identity *id = &agent_state.id;
	struct proto_hello *h = &id->hello;
	PyObject *v;
	const char *s;
	unsigned long hexversion;
	int err;

	/* All but argv[] past the first entries, never read (the encoder
	 * stops at argc): 16 KiB, four pages faulted at each start. */
	memset(h, 0, offsetof(struct proto_hello, argv));
	memset(&h->service, 0, sizeof *h - offsetof(struct proto_hello,
	    service));
	v = boot_env(environ, "GCMON_RUN_ID");
	if (v == NULL && (v = PyUnicode_FromString("")) == NULL)
		return -1;
	err = boot_text(v, PROTO_MAX_ID, &h->run_id, &id->run_id);
	Py_DECREF(v);
	if (err < 0)
		return -1;
	/* sys.version's first line (str.splitlines' ASCII breaks). */
	if ((v = boot_sys("version")) == NULL ||
	    (s = PyUnicode_AsUTF8AndSize(v, NULL)) == NULL)
		return -1;
	if (boot_copy(&h->py_version, &id->py_version, s,
	    proto_utf8_cut(s, strcspn(s, "\n\r\v\f\x1c\x1d\x1e"),
	    PROTO_MAX_STR)) < 0)
		return -1;
	v = PySys_GetObject("executable");
	if (v != NULL && v != Py_None && PyObject_IsTrue(v) == 1) {
		if (boot_text(v, PROTO_MAX_STR, &h->executable,
		    &id->executable) < 0)
			return -1;
	} else if (boot_copy(&h->executable, &id->executable, "", 0) < 0) {
		return -1;
	}
	PyErr_Clear();
	if (boot_argv(id) < 0)
		return -1;
	if (service != Py_None && PyObject_IsTrue(service) == 1) {
		if (boot_text(service, PROTO_MAX_ID, &h->service,
		    &id->service) < 0)
			return -1;
		flags |= PROTO_HELLO_SERVICE;
	}
	PyErr_Clear();
	if ((v = boot_sys("hexversion")) == NULL)
		return -1;
	hexversion = PyLong_AsUnsignedLong(v);
	if (PyErr_Occurred())
		return -1;
	h->py_hexversion = (uint32_t)hexversion;
	h->origin = (uint8_t)origin;
	h->gc_model = (uint8_t)boot_gc_model(hexversion);
	h->flags = (uint16_t)flags;
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
 * GCMON_AGENT_PID to its pid: decimal digits), else ORIGIN_ROOT. */
static int boot_origin(PyObject *environ)
{
	PyObject *v = boot_env(environ, "GCMON_AGENT_PID");
	const char *s;
	int origin = ORIGIN_ROOT;

	if (v == NULL)
		return origin;
	if ((s = PyUnicode_AsUTF8AndSize(v, NULL)) == NULL)
		PyErr_Clear();
	else if (*s != '\0' && s[strspn(s, "0123456789")] == '\0')
		origin = ORIGIN_EXEC;
	Py_DECREF(v);
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
	struct agent *a = &agent_state;
	PyObject *socket, *service = Py_None, *via = NULL;
	PyObject *os = NULL, *environ = NULL, *gc = NULL;
	PyObject *path = NULL;
	int warn_all = 0, origin, flags = 0, warn, again;
	int dump_objects, dump_garbage;
	unsigned long ring;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "U|OpU:load", kwlist,
	    &socket, &service, &warn_all, &via))
		return NULL;
	if (a->area != NULL || (boot.loaded && !a->detached)) {
		PyErr_SetString(PyExc_RuntimeError, "gcmon agent already started");
		return NULL;
	}
	/* After gcmon.stop(): the next area of the same process, which stays
	 * what it was (GCMON_AGENT_PID is its own pid now). */
	again = boot.loaded;
	if (a->detached)
		boot_undo(a);	/* the last area's identity */
	if ((os = boot_module("os")) == NULL ||
	    (environ = PyObject_GetAttrString(os, "environ")) == NULL ||
	    (gc = boot_module("gc")) == NULL)
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
	if (boot_identity(environ, service, origin, flags) < 0) {
		boot_undo(a);
		goto out;
	}
	if ((path = boot_register(self, gc, socket, ring)) == NULL)
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
