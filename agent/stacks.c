/*
 * stacks.c: the Python stack behind an expensive collection (common/shm.h,
 * "Stacks"). At "stop", for the few collections that qualify (callback.c
 * decides: generation 2+, the pause threshold, the sample), the callback's
 * agent_stacks_capture()
 * walks the collecting thread's frames into a stack slot; the names of
 * the code objects met are resolved later, outside the callback, by a
 * pending call (or at stop()) and appended to the area by area.c. Started
 * by _gcmon.c, which reads which collections qualify (agent_state.stack_*,
 * set here) inline. The walk never leaves an exception set, takes no lock and
 * does no I/O; the only allocations are the frame objects CPython 3.11+
 * materialises on first access (once per frame's life).
 *
 * Code identities: a fixed table allocated at start, open addressing on
 * the code object's address, each entry holding a strong reference, so an
 * id (its index) never dangles and is never reused for another code. A
 * full table (SHM_CODES - 1 codes) gives id 0, "unknown".
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "agent.h"

#define STACKS_PROBES	32	/* slots tried before a code is "unknown" */

struct stacks_code {
	PyObject *code;		/* a strong reference; NULL: free */
	int published;		/* its name is in this process's area (2:
				 * encoded, not yet written) */
};

/* SHM_CODES entries (64 KiB), pages of zeros the kernel gives on first
 * touch: a calloc'd table was 16 page faults at every start, and a
 * program whose pauses never take a stack touches none. */
static struct stacks_code *stacks_table;
static uint32_t stacks_used;		/* entries taken: none, no loop */
static PyObject *stacks_str_f_back;
static int stacks_pending;		/* a pending call is scheduled */
static int stacks_unpublished;		/* a stack used an unpublished name */

static unsigned long stacks_env(const char *name, unsigned long dflt,
    unsigned long max)
{
	const char *s = getenv(name);
	unsigned long v;
	char *end;

	if (s == NULL || *s == '\0')
		return dflt;
	errno = 0;
	v = strtoul(s, &end, 10);
	return errno != 0 || *end != '\0' || v > max ? dflt : v;
}

int agent_stacks_init(void)
{
	void *t;

	if (stacks_table == NULL) {
		t = mmap(NULL, SHM_CODES * sizeof *stacks_table, PROT_READ |
		    PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (t == MAP_FAILED)
			return -ENOMEM;
		stacks_table = t;
	}
	if (stacks_str_f_back == NULL &&
	    (stacks_str_f_back = PyUnicode_InternFromString("f_back")) == NULL)
		return -ENOMEM;
	agent_state.stack_min_ns = (uint64_t)stacks_env(
	    "GCMON_STACK_MIN_PAUSE_MS", SHM_STACK_MIN_PAUSE_NS / 1000000u,
	    3600000u) * 1000000u;
	agent_state.stack_sample_n = (unsigned)stacks_env("GCMON_STACK_SAMPLE",
	    0, 1000000000u);
	agent_state.stack_sample_left = agent_state.stack_sample_n;
	agent_state.stacks_on = 1;
	return 0;
}

/* The id of code (borrowed), entered on first sight; 0 if the table is
 * full around its place. */
static uint32_t stacks_code_id(PyObject *code)
{
	uintptr_t h = (uintptr_t)code;
	uint32_t i, k;

	h = (h >> 4) * (uintptr_t)0x9e3779b97f4a7c15ull;
	for (k = 0; k < STACKS_PROBES; k++) {
		i = (uint32_t)((h + k) % (SHM_CODES - 1)) + 1;
		if (stacks_table[i].code == code) {
			if (!stacks_table[i].published)
				stacks_unpublished = 1;
			return i;
		}
		if (stacks_table[i].code == NULL) {
			Py_INCREF(code);
			stacks_used++;
			stacks_table[i].code = code;
			stacks_table[i].published = 0;
			stacks_unpublished = 1;
			return i;
		}
	}
	return 0;
}

static int stacks_on_pending(void *arg)
{
	(void)arg;
	stacks_pending = 0;
	agent_stacks_publish_names();
	return 0;
}

int agent_stacks_capture(struct shm_header *area, uint64_t start_ns)
{
	struct shm_stack st;
	PyFrameObject *f = PyEval_GetFrame();	/* borrowed */
	PyObject *owned = NULL, *next;
	PyCodeObject *code;
	uint16_t n = 0;

	st.start_ns = start_ns;
	st.flags = 0;
	st.reserved = 0;
	while (f != NULL && n < SHM_STACK_DEPTH) {
		code = PyFrame_GetCode(f);	/* new */
		st.frame[n].code_id = stacks_code_id((PyObject *)code);
		Py_DECREF(code);
		st.frame[n].line = (uint32_t)PyFrame_GetLineNumber(f);
		n++;
		/* PyFrame_GetBack is not in the Limited API. */
		next = PyObject_GetAttr((PyObject *)f, stacks_str_f_back);
		Py_XDECREF(owned);
		owned = next == Py_None ? NULL : next;
		if (next == NULL)
			PyErr_Clear();
		else if (next == Py_None)
			Py_DECREF(next);
		f = (PyFrameObject *)owned;
	}
	if (f != NULL)
		st.flags |= SHM_STACK_TRUNCATED;
	Py_XDECREF(owned);
	st.depth = n;
	if (stacks_unpublished && !stacks_pending &&
	    Py_AddPendingCall(stacks_on_pending, NULL) == 0)
		stacks_pending = 1;	/* a full queue: the next capture retries */
	return shm_record_stack(area, &st);
}

/* The UTF-8 of attribute name of code, at most SHM_NAME_MAX bytes (a
 * truncation may cut a character: names are labels). */
static const char *stacks_attr_utf8(PyObject *code, const char *name,
    PyObject **owned, Py_ssize_t *len)
{
	const char *s;

	*owned = PyObject_GetAttrString(code, name);
	if (*owned == NULL || !PyUnicode_Check(*owned) ||
	    (s = PyUnicode_AsUTF8AndSize(*owned, len)) == NULL) {
		PyErr_Clear();
		*len = 1;
		return "?";
	}
	if (*len > (Py_ssize_t)SHM_NAME_MAX)
		*len = SHM_NAME_MAX;
	return s;
}

/* Appends the name record of table entry id to buf (of cap bytes, at
 * *len); 0, or -ENOSPC when it does not fit. */
static int stacks_encode_name(uint32_t id, uint8_t *buf, size_t cap,
    size_t *len)
{
	PyObject *code = stacks_table[id].code, *fo, *qo, *lo;
	struct shm_name_rec rec;
	const char *file, *func;
	Py_ssize_t flen, qlen;
	size_t need;
	long line;
	int err = -ENOSPC;

	file = stacks_attr_utf8(code, "co_filename", &fo, &flen);
	func = stacks_attr_utf8(code, PyObject_HasAttrString(code,
	    "co_qualname") ? "co_qualname" : "co_name", &qo, &qlen);
	lo = PyObject_GetAttrString(code, "co_firstlineno");
	line = lo != NULL ? PyLong_AsLong(lo) : 0;
	if (PyErr_Occurred())
		PyErr_Clear();
	need = SHM_NAME_REC_SIZE((size_t)flen, (size_t)qlen);
	if (need <= cap - *len) {
		memset(buf + *len, 0, need);
		rec.code_id = id;
		rec.first_line = line > 0 ? (uint32_t)line : 0;
		rec.file_len = (uint16_t)flen;
		rec.func_len = (uint16_t)qlen;
		memcpy(buf + *len, &rec, sizeof rec);
		memcpy(buf + *len + sizeof rec, file, (size_t)flen);
		memcpy(buf + *len + sizeof rec + flen, func, (size_t)qlen);
		*len += need;
		err = 0;
	}
	Py_XDECREF(fo);
	Py_XDECREF(qo);
	Py_XDECREF(lo);
	return err;
}

/* Entries encoded into the buffer (published 2) become published (1)
 * once written, or go back to unpublished (0). */
static void stacks_mark(int written)
{
	uint32_t i;

	for (i = 1; i < SHM_CODES; i++)
		if (stacks_table[i].published == 2)
			stacks_table[i].published = written ? 1 : 0;
}

void agent_stacks_publish_names(void)
{
	enum { BUF = 64u << 10 };
	uint8_t *buf;
	size_t len = 0;
	uint32_t i;

	if (stacks_table == NULL || !stacks_unpublished ||
	    agent_state.area == NULL || (buf = malloc(BUF)) == NULL)
		return;
	stacks_unpublished = 0;
	/* Reading the names runs Python code that may collect, and the
	 * callback may then enter new codes (published 0): not marked here. */
	for (i = 1; i < SHM_CODES; i++) {
		if (stacks_table[i].code == NULL || stacks_table[i].published)
			continue;
		if (stacks_encode_name(i, buf, BUF, &len) == 0) {
			stacks_table[i].published = 2;
			continue;
		}
		/* A full buffer: out with it, then this one again. */
		if (len == 0 || agent_area_add_names(buf, len) < 0)
			break;
		stacks_mark(1);
		len = 0;
		i--;
	}
	/* A full region leaves the rest unpublished ("?" in gcmond) and
	 * is not retried until a new code is met. */
	stacks_mark(len > 0 && agent_area_add_names(buf, len) == 0);
	free(buf);
}

void agent_stacks_atfork_child(void)
{
	uint32_t i;

	if (stacks_table == NULL)
		return;
	for (i = 1; stacks_used > 0 && i < SHM_CODES; i++)
		stacks_table[i].published = 0;
	stacks_pending = 0;
	stacks_unpublished = 1;
}
