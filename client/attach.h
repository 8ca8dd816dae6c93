/*
 * attach.h: `pygcprofiler attach` / `detach` (attach.c): loading the agent
 * into running CPython processes. main (pygcprofiler.c) calls
 * attach_main; the pure parts (attach_id.c) are here for tests/unit/check_attach.c.
 */
#ifndef GCMON_ATTACH_H
#define GCMON_ATTACH_H

#include <stddef.h>

enum attach_kind {
	ATTACH_PY_NONE = 0,	/* no interpreter this name says */
	ATTACH_PY_CPYTHON,
	ATTACH_PY_PYPY,
};

/* An interpreter as a file name says it: python3.11, python3.13t,
 * libpython3.12.so.1.0, pypy3.10, libpypy3.10-c.so. */
struct attach_py {
	enum attach_kind kind;
	int major, minor;
	int free_threaded;	/* the "t" ABI flag (PEP 703) */
};

/* How a CPython of that version is attached. */
enum attach_method {
	ATTACH_TOO_OLD = -2,		/* before 3.10: no agent for it */
	ATTACH_FREE_THREADED = -1,	/* cannot load abi3 extensions */
	ATTACH_GDB = 1,			/* 3.10-3.13: gdb, Py_AddPendingCall */
	ATTACH_REMOTE_EXEC = 2,		/* 3.14+: sys.remote_exec (PEP 768) */
};

/* Reads base (a file's last path component) into *py; 1 when it names
 * an interpreter (kind set), 0 when not. */
int attach_identify(const char *base, struct attach_py *py);
enum attach_method attach_method_for(int major, int minor, int free_threaded);
/* kernel.yama.ptrace_scope (-1: no Yama), whether we hold CAP_SYS_PTRACE,
 * and whether uid rules alone allow it: why ptrace is refused, into buf
 * (1), or 0 when nothing says it is. */
int attach_ptrace_refusal(int yama_scope, int have_cap, int same_uid,
    int caps_subset, unsigned target_uid, unsigned our_uid, char *buf,
    size_t len);

/* argv after "attach" / "detach"; the exit status. */
int attach_main(int argc, char **argv, int detach);

#endif /* GCMON_ATTACH_H */
