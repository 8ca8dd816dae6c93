/*
 * gcfloor.c: the floor of a gc.callbacks callback, for bench/callback_cost.py
 * and bench/memory.py (built per interpreter by bench/run-all.sh). noop()
 * does nothing, so what it costs is what CPython spends to call any
 * callback; it must never record, allocate or touch the info dict: anything
 * it did would raise the floor the agent is measured against. record() is
 * a reference, not the agent: the least a recorder must do (clock, three
 * dict reads with interned keys, one slot of a ring), to tell what the
 * agent's hot path costs beyond that.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define GCFLOOR_RING	4096	/* a power of two */

struct gcfloor_rec {
	uint64_t start_ns, pause_ns;
	long long collected, uncollectable, generation;
};

static struct gcfloor_rec gcfloor_ring[GCFLOOR_RING];
static _Atomic uint64_t gcfloor_head;
static uint64_t gcfloor_start_ns;
static PyObject *gcfloor_k_gen, *gcfloor_k_col, *gcfloor_k_unc, *gcfloor_k_start;

static PyObject *gcfloor_noop(PyObject *self, PyObject *const *args,
    Py_ssize_t nargs)
{
	(void)self;
	(void)args;
	(void)nargs;
	Py_RETURN_NONE;
}

static uint64_t gcfloor_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long long gcfloor_get(PyObject *info, PyObject *key)
{
	PyObject *v = PyDict_GetItemWithError(info, key);	/* borrowed */

	return v != NULL ? PyLong_AsLongLong(v) : -1;
}

static PyObject *gcfloor_record(PyObject *self, PyObject *const *args,
    Py_ssize_t nargs)
{
	struct gcfloor_rec *r;
	uint64_t t, h;

	(void)self;
	t = gcfloor_now_ns();
	if (nargs != 2 || !PyDict_Check(args[1]))
		Py_RETURN_NONE;
	if (args[0] == gcfloor_k_start ||
	    PyUnicode_Compare(args[0], gcfloor_k_start) == 0) {
		gcfloor_start_ns = t;
		Py_RETURN_NONE;
	}
	h = atomic_load_explicit(&gcfloor_head, memory_order_relaxed);
	r = &gcfloor_ring[h & (GCFLOOR_RING - 1)];
	r->start_ns = gcfloor_start_ns;
	r->pause_ns = t - gcfloor_start_ns;
	r->generation = gcfloor_get(args[1], gcfloor_k_gen);
	r->collected = gcfloor_get(args[1], gcfloor_k_col);
	r->uncollectable = gcfloor_get(args[1], gcfloor_k_unc);
	PyErr_Clear();
	atomic_store_explicit(&gcfloor_head, h + 1, memory_order_release);
	Py_RETURN_NONE;
}

static PyMethodDef gcfloor_methods[] = {
	{ "noop", (PyCFunction)(void (*)(void))gcfloor_noop, METH_FASTCALL,
	    "noop(phase, info): a gc callback that does nothing" },
	{ "record", (PyCFunction)(void (*)(void))gcfloor_record, METH_FASTCALL,
	    "record(phase, info): the least a C recorder does (reference)" },
	{ NULL, NULL, 0, NULL }
};

static struct PyModuleDef gcfloor_module = {
	PyModuleDef_HEAD_INIT, "gcfloor", "The no-op gc callback (floor).", -1,
	gcfloor_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit_gcfloor(void);

PyMODINIT_FUNC PyInit_gcfloor(void)
{
	gcfloor_k_gen = PyUnicode_InternFromString("generation");
	gcfloor_k_col = PyUnicode_InternFromString("collected");
	gcfloor_k_unc = PyUnicode_InternFromString("uncollectable");
	gcfloor_k_start = PyUnicode_InternFromString("start");
	if (gcfloor_k_gen == NULL || gcfloor_k_col == NULL ||
	    gcfloor_k_unc == NULL || gcfloor_k_start == NULL)
		return NULL;
	return PyModule_Create(&gcfloor_module);
}
