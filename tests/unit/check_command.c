/*
 * check_command.c: Check suite for client/command.c: exec's command
 * lookup on PATH (found, missing, not executable, a directory, a path
 * with a slash, an empty PATH entry) in a private directory, the shell
 * statuses, and the reasons read from a command line for Python
 * processes not loading the agent (a table of command lines).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgp.h"
#include "unit.h"

static char dir[PATH_MAX];

/* dir with an executable "tool", a plain "data" and a directory "sub". */
static void command_setup(void)
{
	char path[PATH_MAX + 16];
	int fd;

	snprintf(dir, sizeof dir, "/tmp/check_command-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/tool", dir);
	ck_assert_int_ge(fd = open(path, O_CREAT | O_WRONLY, 0755), 0);
	close(fd);
	snprintf(path, sizeof path, "%s/data", dir);
	ck_assert_int_ge(fd = open(path, O_CREAT | O_WRONLY, 0644), 0);
	close(fd);
	snprintf(path, sizeof path, "%s/sub", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
}

static void command_teardown(void)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof path, "%s/tool", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/data", dir);
	unlink(path);
	snprintf(path, sizeof path, "%s/sub", dir);
	rmdir(path);
	rmdir(dir);
}

START_TEST(test_find_looks_on_path_as_execvp)
{
	char path[PATH_MAX], want[PATH_MAX + 16], env[PATH_MAX + 32];

	snprintf(env, sizeof env, "/nonexistent:%s", dir);
	ck_assert_int_eq(setenv("PATH", env, 1), 0);
	ck_assert_int_eq(command_find("tool", path, sizeof path), 0);
	snprintf(want, sizeof want, "%s/tool", dir);
	ck_assert_str_eq(path, want);
	ck_assert_int_eq(command_find("missing", path, sizeof path), -ENOENT);
	/* Found but not runnable, and nothing later on PATH runs it. */
	ck_assert_int_eq(command_find("data", path, sizeof path), -EACCES);
	ck_assert_int_eq(command_find("sub", path, sizeof path), -EISDIR);
	ck_assert_int_eq(command_find("", path, sizeof path), -ENOENT);
}
END_TEST

START_TEST(test_find_takes_a_slash_as_a_path)
{
	char path[PATH_MAX], cmd[PATH_MAX + 16];

	ck_assert_int_eq(setenv("PATH", "/nonexistent", 1), 0);
	snprintf(cmd, sizeof cmd, "%s/tool", dir);
	ck_assert_int_eq(command_find(cmd, path, sizeof path), 0);
	snprintf(cmd, sizeof cmd, "%s/data", dir);
	ck_assert_int_eq(command_find(cmd, path, sizeof path), -EACCES);
	snprintf(cmd, sizeof cmd, "%s/none", dir);
	ck_assert_int_eq(command_find(cmd, path, sizeof path), -ENOENT);
}
END_TEST

START_TEST(test_find_reads_an_empty_path_entry_as_the_cwd)
{
	char path[PATH_MAX];

	ck_assert_int_eq(chdir(dir), 0);
	ck_assert_int_eq(setenv("PATH", "/nonexistent:", 1), 0);
	ck_assert_int_eq(command_find("tool", path, sizeof path), 0);
	ck_assert_str_eq(path, "tool");
	ck_assert_int_eq(chdir("/"), 0);
}
END_TEST

START_TEST(test_exec_status_is_a_shells)
{
	ck_assert_int_eq(command_exec_status(-ENOENT), 127);
	ck_assert_int_eq(command_exec_status(ENOENT), 127);
	ck_assert_int_eq(command_exec_status(-ENOTDIR), 127);
	ck_assert_int_eq(command_exec_status(-EACCES), 126);
	ck_assert_int_eq(command_exec_status(-EISDIR), 126);
	ck_assert_int_eq(command_exec_status(-ENOEXEC), 126);
}
END_TEST

static const struct {
	const char *name;
	const char *argv[8];
	const char *want;	/* a substring of the reason, or NULL: none */
} why_rows[] = {
	{ "uwsgi --no-site", { "uwsgi", "--master", "--no-site", "--wsgi-file",
	  "app.py" }, "uWSGI's --no-site" },
	{ "uwsgi in sh -c", { "sh", "-c", "exec uwsgi --no-site --ini a.ini" },
	  "uWSGI's --no-site" },
	{ "uwsgi --no-site=true", { "uwsgi", "--no-site=true" },
	  "uWSGI's --no-site" },
	{ "not --no-site-packages", { "virtualenv", "--no-site-packages", "v" },
	  NULL },
	{ "not x--no-site", { "sh", "-c", "echo x--no-site" }, NULL },
	{ "python -S", { "/usr/bin/python3", "-S", "app.py" }, "python -S" },
	{ "python -I", { "python3.11", "-I", "-m", "http.server" }, "python -I" },
	{ "python -E in a cluster", { "python3", "-bE", "app.py" },
	  "python -E" },
	{ "python -Sc", { "python", "-Sc", "print(1)" }, "python -S" },
	{ "-W takes a value", { "python3", "-W", "ignore", "-S", "x.py" },
	  "python -S" },
	{ "-S after the script is the script's", { "python3", "app.py", "-S" },
	  NULL },
	{ "-S after -c is the program's", { "python3", "-c", "pass", "-S" },
	  NULL },
	{ "-S after -m is the module's", { "python3", "-m", "mod", "-S" }, NULL },
	{ "not a python", { "pythonista", "-S" }, NULL },
	{ "PYTHONPATH= through env", { "env", "PYTHONPATH=/srv", "python3",
	  "app.py" }, "PYTHONPATH=" },
	{ "PYTHONPATH= in sh -c", { "sh", "-c", "cd /srv; PYTHONPATH=. python3 "
	  "app.py" }, "PYTHONPATH=" },
	{ "env -i", { "env", "-i", "python3", "app.py" }, "env -i" },
	{ "plain uwsgi", { "uwsgi", "--master", "--processes", "4" }, NULL },
	{ "plain celery", { "celery", "-A", "app", "worker" }, NULL },
};

START_TEST(test_why_no_agent_reads_the_command_line)
{
	char buf[1024];
	int argc = 0, got;

	while (argc < 8 && why_rows[_i].argv[argc] != NULL)
		argc++;
	got = command_why_no_agent((char *const *)why_rows[_i].argv, argc,
	    buf, sizeof buf);
	if (why_rows[_i].want == NULL) {
		ck_assert_msg(got == 0 && buf[0] == '\0', "%s: '%s'",
		    why_rows[_i].name, buf);
		return;
	}
	ck_assert_msg(got == 1 && strstr(buf, why_rows[_i].want) != NULL,
	    "%s: '%s'", why_rows[_i].name, buf);
}
END_TEST

START_TEST(test_why_no_agent_joins_reasons_and_stays_in_its_buffer)
{
	char *argv[] = { "env", "PYTHONPATH=x", "python3", "-S", "-E", "a.py" };
	char buf[1024], small[24];

	ck_assert_int_eq(command_why_no_agent(argv, 6, buf, sizeof buf), 1);
	ck_assert_ptr_nonnull(strstr(buf, "python -S"));
	ck_assert_ptr_nonnull(strstr(buf, "; python -E"));
	ck_assert_ptr_nonnull(strstr(buf, "; the command line sets PYTHONPATH="));
	memset(small, 'x', sizeof small);
	ck_assert_int_eq(command_why_no_agent(argv, 6, small, sizeof small), 1);
	ck_assert_uint_eq(strlen(small), sizeof small - 1);
}
END_TEST

static Suite *command_suite(void)
{
	Suite *s = suite_create("command");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, command_setup, command_teardown);
	tcase_add_test(tc, test_find_looks_on_path_as_execvp);
	tcase_add_test(tc, test_find_takes_a_slash_as_a_path);
	tcase_add_test(tc, test_find_reads_an_empty_path_entry_as_the_cwd);
	tcase_add_test(tc, test_exec_status_is_a_shells);
	tcase_add_loop_test(tc, test_why_no_agent_reads_the_command_line, 0,
	    (int)(sizeof why_rows / sizeof why_rows[0]));
	tcase_add_test(tc, test_why_no_agent_joins_reasons_and_stays_in_its_buffer);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(command_suite, UNIT_FORK);
