/*
 * check_paths.c: Check suite for common/paths.c: gcmond's default socket
 * from the environment and the uid, and a client's choice between its
 * user's own socket and the host-wide one, on real sockets bound in a
 * private directory.
 */
#include <check.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "paths.h"
#include "unit.h"

static char dir[] = "/tmp/check_paths.XXXXXX";

static void paths_setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

/* A bound Unix socket at dir/name (a file of type socket). */
static void paths_bind(const char *name, char *path, size_t len)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(path, len, "%s/%s", dir, name);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	close(fd);
}

START_TEST(test_pick_prefers_the_own_socket_then_the_host_one)
{
	char own[PATH_MAX], host[PATH_MAX], file[PATH_MAX], buf[PATH_MAX];
	FILE *f;

	paths_setup();
	snprintf(own, sizeof own, "%s/own.sock", dir);
	snprintf(host, sizeof host, "%s/host.sock", dir);
	/* Neither there: the own one, whose absence the client reports. */
	ck_assert_str_eq(paths_pick_socket(own, host, buf, sizeof buf), own);
	paths_bind("host.sock", host, sizeof host);
	ck_assert_str_eq(paths_pick_socket(own, host, buf, sizeof buf), host);
	paths_bind("own.sock", own, sizeof own);
	ck_assert_str_eq(paths_pick_socket(own, host, buf, sizeof buf), own);
	/* A regular file is no socket. */
	snprintf(file, sizeof file, "%s/file", dir);
	ck_assert_ptr_nonnull(f = fopen(file, "w"));
	fclose(f);
	ck_assert_str_eq(paths_pick_socket(file, host, buf, sizeof buf), host);
	/* Too long for buf. */
	ck_assert_ptr_null(paths_pick_socket(own, host, buf, strlen(own)));
	/* buf may be own itself. */
	snprintf(buf, sizeof buf, "%s", file);
	ck_assert_str_eq(paths_pick_socket(buf, host, buf, sizeof buf), host);
	unlink(own);
	unlink(host);
	unlink(file);
	rmdir(dir);
}
END_TEST

START_TEST(test_daemon_socket_from_the_environment_and_the_uid)
{
	char buf[PATH_MAX], want[64];

	setenv("GCMON_SOCKET", "/x/y.sock", 1);
	ck_assert_str_eq(paths_daemon_socket(buf, sizeof buf), "/x/y.sock");
	ck_assert_str_eq(paths_default_socket(buf, sizeof buf), "/x/y.sock");
	ck_assert_ptr_null(paths_daemon_socket(buf, 5));
	setenv("GCMON_SOCKET", "", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/7", 1);
	ck_assert_str_eq(paths_daemon_socket(buf, sizeof buf),
	    "/run/user/7/gcmon.sock");
	/* A relative XDG_RUNTIME_DIR is not believed. */
	setenv("XDG_RUNTIME_DIR", "rel", 1);
	if (geteuid() == 0)
		snprintf(want, sizeof want, "%s", PATHS_HOST_SOCKET);
	else
		snprintf(want, sizeof want, "/tmp/gcmon-%u/gcmon.sock",
		    (unsigned)geteuid());
	ck_assert_str_eq(paths_daemon_socket(buf, sizeof buf), want);
	unsetenv("XDG_RUNTIME_DIR");
	ck_assert_str_eq(paths_daemon_socket(buf, sizeof buf), want);
}
END_TEST

/* An install tree moved as a whole: the way from bindir to each
 * directory, applied to where the program really is. */
static const struct {
	const char *from, *to, *want;
} relocate_rows[] = {
	{ "/usr/local/bin", "/usr/local/bin", "/venv/bin" },
	{ "/usr/local/bin", "/usr/local/lib/gcmon", "/venv/bin/../lib/gcmon" },
	{ "/usr/bin", "/usr/sbin", "/venv/bin/../sbin" },
	{ "/ab", "/abc", "/venv/bin/../abc" },
	{ "/opt/x/bin", "/srv/lib", "/venv/bin/../../../srv/lib" },
	{ "/usr/local/bin", "/usr/local", "/venv/bin/.." },
};

START_TEST(test_relocate_follows_the_tree_that_moved)
{
	char buf[PATH_MAX];

	ck_assert_str_eq(paths_relocate("/venv/bin", relocate_rows[_i].from,
	    relocate_rows[_i].to, buf, sizeof buf), relocate_rows[_i].want);
}
END_TEST

START_TEST(test_relocate_refuses_relative_or_too_long)
{
	char buf[PATH_MAX];

	ck_assert_ptr_null(paths_relocate("/v/bin", "bin", "/usr/sbin", buf,
	    sizeof buf));
	ck_assert_ptr_null(paths_relocate("/v/bin", "/usr/bin", "sbin", buf,
	    sizeof buf));
	/* "/v/bin/../sbin" is 14 bytes and its '\0': 15 fits, 14 not. */
	ck_assert_ptr_nonnull(paths_relocate("/v/bin", "/usr/bin", "/usr/sbin",
	    buf, 15));
	ck_assert_ptr_null(paths_relocate("/v/bin", "/usr/bin", "/usr/sbin",
	    buf, 14));
	ck_assert_ptr_null(paths_relocate("/v/bin", "/usr/bin", "/usr/sbin",
	    buf, 8));
	ck_assert_ptr_null(paths_relocate("/v/bin", "/usr/bin", "/usr/sbin",
	    buf, 3));
}
END_TEST

static Suite *paths_suite(void)
{
	Suite *s = suite_create("paths");
	TCase *tc = tcase_create("paths");

	tcase_add_test(tc, test_pick_prefers_the_own_socket_then_the_host_one);
	tcase_add_test(tc, test_daemon_socket_from_the_environment_and_the_uid);
	tcase_add_loop_test(tc, test_relocate_follows_the_tree_that_moved, 0,
	    (int)(sizeof relocate_rows / sizeof relocate_rows[0]));
	tcase_add_test(tc, test_relocate_refuses_relative_or_too_long);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(paths_suite, UNIT_FORK);
