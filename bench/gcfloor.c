/*
 * gcfloor.c: the floor of a gc.callbacks callback, for bench/callback_cost.py
 * and bench/memory.py (built per interpreter by bench/run-all.sh). noop()
 * does nothing, so what it costs is what CPython spends to call any
 * callback. It must never record, allocate or touch the info dict: anything
 * it did would raise the floor the agent is measured against.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *gcfloor_noop(PyObject *self, PyObject *const *args,
    Py_ssize_t nargs)
{
	(void)self;
	(void)args;
	(void)nargs;
	Py_RETURN_NONE;
}

static PyMethodDef gcfloor_methods[] = {
	{ "noop", (PyCFunction)(void (*)(void))gcfloor_noop, METH_FASTCALL,
	    "noop(phase, info): a gc callback that does nothing" },
	{ NULL, NULL, 0, NULL }
};

static struct PyModuleDef gcfloor_module = {
	PyModuleDef_HEAD_INIT, "gcfloor", "The no-op gc callback (floor).", -1,
	gcfloor_methods, NULL, NULL, NULL, NULL
};

PyMODINIT_FUNC PyInit_gcfloor(void);

PyMODINIT_FUNC PyInit_gcfloor(void)
{
	return PyModule_Create(&gcfloor_module);
}
