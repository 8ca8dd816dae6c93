/*
 * check_attach.c: Check suite for client/attach_id.c: which interpreter a
 * file name says (the executables and libraries /proc/PID/exe and maps
 * show), which way each CPython version is attached (gdb for 3.10-3.13,
 * sys.remote_exec for 3.14+: the one test of the 3.14 path this machine
 * can run, having no 3.14), and the permission messages.
 */
#include <check.h>
#include <string.h>

#include "attach.h"
#include "unit.h"

static const struct {
	const char *name;
	int found;
	enum attach_kind kind;
	int major, minor, ft;
} names[] = {
	{ "python3.11", 1, ATTACH_PY_CPYTHON, 3, 11, 0 },
	{ "python3.10", 1, ATTACH_PY_CPYTHON, 3, 10, 0 },
	{ "python3.13t", 1, ATTACH_PY_CPYTHON, 3, 13, 1 },
	{ "python3.14", 1, ATTACH_PY_CPYTHON, 3, 14, 0 },
	{ "python3.9", 1, ATTACH_PY_CPYTHON, 3, 9, 0 },
	{ "python2.7", 1, ATTACH_PY_CPYTHON, 2, 7, 0 },
	{ "python3.12d", 1, ATTACH_PY_CPYTHON, 3, 12, 0 },
	{ "libpython3.12.so.1.0", 1, ATTACH_PY_CPYTHON, 3, 12, 0 },
	{ "libpython3.13t.so.1.0", 1, ATTACH_PY_CPYTHON, 3, 13, 1 },
	{ "libpython3.11.so", 1, ATTACH_PY_CPYTHON, 3, 11, 0 },
	{ "pypy3.10", 1, ATTACH_PY_PYPY, 3, 10, 0 },
	{ "libpypy3.10-c.so", 1, ATTACH_PY_PYPY, 3, 10, 0 },
	/* Names that say no version, or are something else. */
	{ "python3", 0, ATTACH_PY_NONE, 0, 0, 0 },
	{ "libpython3.so", 0, ATTACH_PY_NONE, 0, 0, 0 },
	{ "python3.11-config", 0, ATTACH_PY_NONE, 0, 0, 0 },
	{ "python3.11.py", 0, ATTACH_PY_NONE, 0, 0, 0 },
	{ "bash", 0, ATTACH_PY_NONE, 0, 0, 0 },
	{ "sleep", 0, ATTACH_PY_NONE, 0, 0, 0 },
	{ "_gcmon.abi3.so", 0, ATTACH_PY_NONE, 0, 0, 0 },
	{ "", 0, ATTACH_PY_NONE, 0, 0, 0 },
	{ "python3.", 0, ATTACH_PY_NONE, 0, 0, 0 },
	{ "python.11", 0, ATTACH_PY_NONE, 0, 0, 0 },
};

START_TEST(test_identify_reads_interpreter_names)
{
	struct attach_py py;
	int got = attach_identify(names[_i].name, &py);

	ck_assert_msg(got == names[_i].found, "%s: found %d", names[_i].name,
	    got);
	ck_assert_msg(py.kind == names[_i].kind && py.major == names[_i].major &&
	    py.minor == names[_i].minor && py.free_threaded == names[_i].ft,
	    "%s: kind %d %d.%d ft %d", names[_i].name, py.kind, py.major,
	    py.minor, py.free_threaded);
}
END_TEST

static const struct {
	int major, minor, ft;
	enum attach_method want;
} versions[] = {
	{ 2, 7, 0, ATTACH_TOO_OLD },
	{ 3, 6, 0, ATTACH_TOO_OLD },
	{ 3, 9, 0, ATTACH_TOO_OLD },
	{ 3, 10, 0, ATTACH_GDB },
	{ 3, 11, 0, ATTACH_GDB },
	{ 3, 12, 0, ATTACH_GDB },
	{ 3, 13, 0, ATTACH_GDB },
	{ 3, 13, 1, ATTACH_FREE_THREADED },
	{ 3, 14, 0, ATTACH_REMOTE_EXEC },
	{ 3, 14, 1, ATTACH_FREE_THREADED },
	{ 3, 15, 0, ATTACH_REMOTE_EXEC },
	{ 3, 99, 0, ATTACH_REMOTE_EXEC },
	{ 4, 0, 0, ATTACH_REMOTE_EXEC },
	{ 3, 9, 1, ATTACH_TOO_OLD },
};

START_TEST(test_method_by_version)
{
	ck_assert_msg(attach_method_for(versions[_i].major, versions[_i].minor,
	    versions[_i].ft) == versions[_i].want, "%d.%d%s",
	    versions[_i].major, versions[_i].minor, versions[_i].ft ? "t" : "");
}
END_TEST

static const struct {
	const char *name;
	int yama, cap, same_uid, subset;
	int refused;
	const char *says;
} perms[] = {
	{ "no yama, same uid", -1, 0, 1, 1, 0, NULL },
	{ "yama 0, same uid", 0, 0, 1, 1, 0, NULL },
	{ "yama 1, no cap", 1, 0, 1, 1, 1, "ptrace_scope is 1" },
	{ "yama 1, cap", 1, 1, 0, 0, 0, NULL },
	{ "yama 2, no cap", 2, 0, 1, 1, 1, "ptrace_scope is 2" },
	{ "yama 2, cap", 2, 1, 1, 1, 0, NULL },
	{ "yama 3, cap", 3, 1, 1, 1, 1, "ptrace_scope is 3" },
	{ "other uid, no cap", 0, 0, 0, 1, 1, "runs as uid 1000" },
	{ "other uid, cap", 0, 1, 0, 0, 0, NULL },
	{ "more caps, no cap", -1, 0, 1, 0, 1, "CAP_SYS_PTRACE" },
};

START_TEST(test_ptrace_refusal_names_the_setting)
{
	char buf[512] = "";
	int got = attach_ptrace_refusal(perms[_i].yama, perms[_i].cap,
	    perms[_i].same_uid, perms[_i].subset, 1000, 0, buf, sizeof buf);

	ck_assert_msg(got == perms[_i].refused, "%s: %d", perms[_i].name, got);
	if (perms[_i].says)
		ck_assert_msg(strstr(buf, perms[_i].says) != NULL, "%s: %s",
		    perms[_i].name, buf);
}
END_TEST

static Suite *attach_suite(void)
{
	Suite *s = suite_create("attach");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_identify_reads_interpreter_names, 0,
	    (int)(sizeof names / sizeof names[0]));
	tcase_add_loop_test(tc, test_method_by_version, 0,
	    (int)(sizeof versions / sizeof versions[0]));
	tcase_add_loop_test(tc, test_ptrace_refusal_names_the_setting, 0,
	    (int)(sizeof perms / sizeof perms[0]));
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(attach_suite, UNIT_NOFORK_UNDER_ASAN);
