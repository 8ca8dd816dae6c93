/*
 * check_procfs.c: Check suite for daemon/ingest/procfs.c: the /proc/<pid>/stat
 * and status parsers on tables of texts (command names with spaces and
 * parentheses, short and malformed lines), and the readers on this very
 * process (its identity, running, a sample, its smaps_rollup) and on a
 * zombie and a pid that is gone; and daemon/ingest/allow.c, whom gcmond serves,
 * on this process's own groups and a socketpair's peer.
 */
#include <check.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "allow.h"
#include "procfs.h"
#include "unit.h"

static const struct {
	const char *stat;
	int want;
	uint64_t user, sys;
	char state;
} stat_rows[] = {
	{ "42 (python3) S 1 42 42 0 -1 4194304 100 0 0 0 5 3 0 0 20 0 1 0 "
	  "123456 1000 10", 0, 5, 3, 'S' },
	{ "42 (a b) c)) R 1 42 42 0 -1 4194304 100 0 0 0 70 9 0 0 20 0 1 0 "
	  "77 1000 10", 0, 70, 9, 'R' },
	{ "42 (x) Z 1 42 42 0 -1 4194304 100 0 0 0 7 1", 0, 7, 1, 'Z' },
	{ "42 (python3) S 1 42", -EINVAL, 0, 0, 'S' },
	{ "no parenthesis", -EINVAL, 0, 0, 0 },
	{ "42 (x) S 1 42 42 0 -1 4194304 100 0 0 0 x y", -EINVAL, 0, 0, 'S' },
};

START_TEST(test_parse_cpu_and_state)
{
	uint64_t user = 0, sys = 0;

	ck_assert_int_eq(procfs_parse_cpu(stat_rows[_i].stat, &user, &sys),
	    stat_rows[_i].want);
	if (stat_rows[_i].want == 0) {
		ck_assert_uint_eq(user, stat_rows[_i].user);
		ck_assert_uint_eq(sys, stat_rows[_i].sys);
	}
	ck_assert_int_eq(procfs_parse_state(stat_rows[_i].stat),
	    stat_rows[_i].state);
}
END_TEST

START_TEST(test_status_kb_matches_whole_keys_only)
{
	const char *status = "Name:\tpython3\nVmHWM:\t  20480 kB\n"
	    "VmRSS:\t   10240 kB\nRssAnon:\t 5 kB\n";

	ck_assert_uint_eq(procfs_status_kb(status, "VmHWM:"), 20480u * 1024);
	ck_assert_uint_eq(procfs_status_kb(status, "VmRSS:"), 10240u * 1024);
	ck_assert_uint_eq(procfs_status_kb(status, "Anon:"), 0);
	ck_assert_uint_eq(procfs_status_kb(status, "VmSwap:"), 0);
}
END_TEST

START_TEST(test_parse_smaps_reads_every_figure)
{
	static const char text[] =
	    "55d0c0000000-7ffd00000000 ---p 00000000 00:00 0   [rollup]\n"
	    "Rss:              172032 kB\n"
	    "Pss:              100000 kB\n"
	    "Pss_Anon:          90000 kB\n"
	    "Shared_Clean:       4000 kB\n"
	    "Shared_Dirty:      80000 kB\n"
	    "Private_Clean:        32 kB\n"
	    "Private_Dirty:     88000 kB\n"
	    "Anonymous:        168000 kB\n";
	struct agg_mem m;

	ck_assert_int_eq(procfs_parse_smaps(text, &m), 0);
	ck_assert_uint_eq(m.rss_bytes, 172032u * 1024);
	ck_assert_uint_eq(m.pss_bytes, 100000u * 1024);
	ck_assert_uint_eq(m.shared_clean_bytes, 4000u * 1024);
	ck_assert_uint_eq(m.shared_dirty_bytes, 80000u * 1024);
	ck_assert_uint_eq(m.private_clean_bytes, 32u * 1024);
	ck_assert_uint_eq(m.private_dirty_bytes, 88000u * 1024);
	ck_assert_uint_eq(m.anon_bytes, 168000u * 1024);
	ck_assert_int_eq(procfs_parse_smaps("", &m), -EBADMSG);
	ck_assert_int_eq(procfs_parse_smaps("Pss: 1 kB\n", &m), -EBADMSG);
}
END_TEST

START_TEST(test_readers_on_this_process)
{
	struct agg_sample s;
	struct agg_mem m;
	uint64_t ticks;
	uid_t uid;

	ck_assert_int_eq(procfs_identity((uint32_t)getpid(), &ticks, &uid), 0);
	ck_assert_uint_eq(uid, geteuid());
	ck_assert_int_eq(procfs_running((uint32_t)getpid(), ticks), 1);
	ck_assert_int_eq(procfs_running((uint32_t)getpid(), ticks + 1), 0);
	ck_assert_int_eq(procfs_sample((uint32_t)getpid(), &s), 0);
	ck_assert_uint_gt(s.rss_bytes, 0);
	ck_assert_uint_ge(s.peak_rss_bytes, s.rss_bytes);
	ck_assert_double_gt(procfs_start_real(ticks), 1.5e9);
	ck_assert_int_eq(procfs_smaps((uint32_t)getpid(), &m), 0);
	ck_assert_uint_gt(m.rss_bytes, 0);
	ck_assert_uint_gt(m.private_dirty_bytes, 0);
	ck_assert_uint_le(m.pss_bytes, m.rss_bytes);
}
END_TEST

START_TEST(test_readers_on_a_zombie_and_a_gone_pid)
{
	struct agg_mem m;
	uint64_t ticks;
	uid_t uid;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(0);
	usleep(100000);		/* a zombie until we reap it */
	ck_assert_int_eq(procfs_identity((uint32_t)pid, &ticks, &uid), 0);
	ck_assert_int_eq(procfs_running((uint32_t)pid, ticks), 0);
	ck_assert_int_eq(procfs_smaps((uint32_t)pid, &m), -ESRCH);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);
	ck_assert_int_eq(procfs_identity((uint32_t)pid, &ticks, &uid), -ESRCH);
}
END_TEST

static const struct {
	const char *name, *status;
	int want;
	gid_t g[4];
} group_rows[] = {
	{ "effective gid, then groups", "Name:\tx\nUid:\t1\t1\t1\t1\n"
	  "Gid:\t5\t6\t7\t8\nFDSize:\t64\nGroups:\t20 30 \nNStgid:\t9\n",
	  3, { 6, 20, 30 } },
	{ "no supplementary groups", "Gid:\t5\t5\t5\t5\nGroups:\t\nNStgid:\t9\n",
	  1, { 5 } },
	{ "no Groups: line", "Gid:\t0\t4\t0\t0\n", 1, { 4 } },
	{ "capped at 4", "Gid:\t1\t2\t1\t1\nGroups:\t3 4 5 6 7\n", 4,
	  { 2, 3, 4, 5 } },
	{ "a key that only ends in Gid:", "XGid:\t1\t2\n", -EBADMSG, { 0 } },
	{ "Gid: with one number", "Gid:\t1\nGroups:\t3\n", -EBADMSG, { 0 } },
	{ "no Gid: line", "Groups:\t3\n", -EBADMSG, { 0 } },
};

START_TEST(test_parse_groups)
{
	gid_t got[4];
	int n = procfs_parse_groups(group_rows[_i].status, got, 4), i;

	ck_assert_msg(n == group_rows[_i].want, "%s: %d", group_rows[_i].name, n);
	for (i = 0; i < n; i++)
		ck_assert_msg(got[i] == group_rows[_i].g[i], "%s: group %d is %u",
		    group_rows[_i].name, i, (unsigned)got[i]);
}
END_TEST

/* A uid nobody has: allowed only by a group of the process. */
#define NOBODY_UID ((uid_t)4000000001u)

START_TEST(test_allow_by_uid_and_by_this_process_groups)
{
	struct allow a;
	gid_t mine[64];
	int n = getgroups(64, mine);
	int fds[2];

	memset(&a, 0, sizeof a);
	a.self = 12345;
	ck_assert(allow_uid(&a, 0) && allow_uid(&a, 12345));
	ck_assert(!allow_uid(&a, NOBODY_UID));
	a.uid[a.nuid++] = NOBODY_UID;
	ck_assert(allow_uid(&a, NOBODY_UID));
	a.nuid = 0;
	/* No group listed: a process of another uid is refused. */
	ck_assert(!allow_process(&a, (uint32_t)getpid(), NOBODY_UID));
	/* A group this process does not run with. */
	a.gid[a.ngid++] = (gid_t)4000000002u;
	ck_assert(!allow_process(&a, (uint32_t)getpid(), NOBODY_UID));
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	ck_assert(!allow_peer(&a, fds[0], NOBODY_UID, (gid_t)4000000003u));
	/* Its effective gid. */
	a.gid[a.ngid++] = getegid();
	ck_assert(allow_process(&a, (uint32_t)getpid(), NOBODY_UID));
	ck_assert(allow_peer(&a, fds[0], NOBODY_UID, getegid()));
	/* A supplementary group, seen by SO_PEERGROUPS and in /proc. */
	if (n > 0) {
		a.ngid = 0;
		a.gid[a.ngid++] = mine[n - 1];
		ck_assert(allow_process(&a, (uint32_t)getpid(), NOBODY_UID));
		ck_assert(allow_peer(&a, fds[0], NOBODY_UID,
		    (gid_t)4000000003u));
	}
	/* A pid that is gone: refused. */
	ck_assert(!allow_process(&a, 4000000000u, NOBODY_UID));
	close(fds[0]);
	close(fds[1]);
}
END_TEST

static Suite *procfs_suite(void)
{
	Suite *s = suite_create("procfs");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_parse_cpu_and_state, 0,
	    (int)(sizeof stat_rows / sizeof stat_rows[0]));
	tcase_add_test(tc, test_status_kb_matches_whole_keys_only);
	tcase_add_test(tc, test_parse_smaps_reads_every_figure);
	tcase_add_test(tc, test_readers_on_this_process);
	tcase_add_test(tc, test_readers_on_a_zombie_and_a_gone_pid);
	tcase_add_loop_test(tc, test_parse_groups, 0,
	    (int)(sizeof group_rows / sizeof group_rows[0]));
	tcase_add_test(tc, test_allow_by_uid_and_by_this_process_groups);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(procfs_suite, UNIT_FORK);
