/*
 * attach_id.c: the pure parts of `pygcprofiler attach` (attach.c): which
 * interpreter a file name says, how a CPython of a version is attached
 * (gdb for 3.10-3.13, sys.remote_exec for 3.14+, refused before 3.10 and
 * free-threaded), and why the kernel would refuse ptrace. No I/O; tests/
 * unit/check_attach.c drives them over tables.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"

/* "M.N" then optional ABI letters at s; the rest must be end or, with
 * so_ok, ".so" or "-c.so" (PyPy) and anything after. */
static int attach_parse_version(const char *s, struct attach_py *py, int so_ok)
{
	char *end;
	long major, minor;

	if (!isdigit((unsigned char)*s))
		return 0;
	major = strtol(s, &end, 10);
	if (*end != '.' || !isdigit((unsigned char)end[1]))
		return 0;
	minor = strtol(end + 1, &end, 10);
	if (major < 2 || major > 9 || minor < 0 || minor > 99)
		return 0;
	py->major = (int)major;
	py->minor = (int)minor;
	py->free_threaded = 0;
	/* ABI flags (PEP 3149): t (free-threaded), d (debug), m (<3.8). */
	while (*end == 't' || *end == 'd' || *end == 'm') {
		if (*end == 't')
			py->free_threaded = 1;
		end++;
	}
	if (*end == '\0')
		return 1;
	if (so_ok && (strncmp(end, ".so", 3) == 0 ||
	    strncmp(end, "-c.so", 5) == 0))
		return 1;
	return 0;
}

int attach_identify(const char *base, struct attach_py *py)
{
	static const struct {
		const char *prefix;
		enum attach_kind kind;
		int so;
	} names[] = {
		{ "libpython", ATTACH_PY_CPYTHON, 1 },
		{ "python", ATTACH_PY_CPYTHON, 0 },
		{ "libpypy", ATTACH_PY_PYPY, 1 },
		{ "pypy", ATTACH_PY_PYPY, 0 },
	};
	size_t i, n;

	memset(py, 0, sizeof *py);
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		n = strlen(names[i].prefix);
		if (strncmp(base, names[i].prefix, n) == 0 &&
		    attach_parse_version(base + n, py, names[i].so)) {
			py->kind = names[i].kind;
			return 1;
		}
	}
	memset(py, 0, sizeof *py);
	return 0;
}

enum attach_method attach_method_for(int major, int minor, int free_threaded)
{
	if (major < 3 || (major == 3 && minor < 10))
		return ATTACH_TOO_OLD;
	if (free_threaded)
		return ATTACH_FREE_THREADED;
	if (major == 3 && minor <= 13)
		return ATTACH_GDB;
	return ATTACH_REMOTE_EXEC;
}

int attach_ptrace_refusal(int yama_scope, int have_cap, int same_uid,
    int caps_subset, unsigned target_uid, unsigned our_uid, char *buf,
    size_t len)
{
	if (yama_scope >= 3) {
		snprintf(buf, len, "kernel.yama.ptrace_scope is %d (/proc/sys/"
		    "kernel/yama/ptrace_scope): no process may be attached "
		    "with ptrace until the next boot", yama_scope);
		return 1;
	}
	if (have_cap)
		return 0;
	if (yama_scope == 2) {
		snprintf(buf, len, "kernel.yama.ptrace_scope is 2 (/proc/sys/"
		    "kernel/yama/ptrace_scope): only a process with "
		    "CAP_SYS_PTRACE may attach; run it as root (sudo "
		    "pygcprofiler attach ...)");
		return 1;
	}
	if (yama_scope == 1) {
		snprintf(buf, len, "kernel.yama.ptrace_scope is 1 (/proc/sys/"
		    "kernel/yama/ptrace_scope): only a parent may attach to "
		    "its descendants without CAP_SYS_PTRACE; run it as root "
		    "(sudo pygcprofiler attach ...), or allow it with: sudo "
		    "sysctl kernel.yama.ptrace_scope=0");
		return 1;
	}
	if (!same_uid) {
		snprintf(buf, len, "it runs as uid %u and this runs as uid %u "
		    "without CAP_SYS_PTRACE; run it as uid %u or as root",
		    target_uid, our_uid, target_uid);
		return 1;
	}
	if (!caps_subset) {
		snprintf(buf, len, "it holds capabilities this process lacks, "
		    "and this process has no CAP_SYS_PTRACE (in a container: "
		    "give it CAP_SYS_PTRACE, e.g. docker run --cap-add="
		    "SYS_PTRACE, or attach from the host as root)");
		return 1;
	}
	return 0;
}

