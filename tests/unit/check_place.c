/*
 * check_place.c: Check suite for daemon/ingest/place.c and what it reads: the
 * container id of cgroup paths (docker, containerd/CRI, CRI-O, podman,
 * systemd-nspawn, bare hosts), the cgroup line a /proc/<pid>/cgroup text
 * yields (common/shm.c), the NSpid/PPid parser (procfs.c), the area lock
 * as another process holds and drops it, and the resolution of a claim
 * of gcmond's own namespace and of another one.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "place.h"
#include "procfs.h"
#include "shm.h"
#include "unit.h"

#define ID64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static const struct {
	const char *path;
	const char *want;		/* "": none */
} container_rows[] = {
	{ "/system.slice/docker-" ID64 ".scope", ID64 },
	{ "/docker/" ID64, ID64 },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-"
	  "pod1234_5678.slice/cri-containerd-" ID64 ".scope", ID64 },
	{ "/kubepods/burstable/pod12345678-aaaa-bbbb/" ID64, ID64 },
	{ "/kubepods.slice/kubepods-pod1.slice/crio-" ID64 ".scope", ID64 },
	{ "/machine.slice/libpod-" ID64 ".scope/container", ID64 },
	{ "/user.slice/user-1000.slice/user@1000.service/user.slice/"
	  "libpod-payload-" ID64, ID64 },
	{ "/machine.slice/machine-web1.scope/payload", "web1" },
	{ "/", "" },
	{ "", "" },
	{ "/user.slice/user-1000.slice/session-3.scope", "" },
	{ "/system.slice/gunicorn.service", "" },
	/* Not 64 hex: not an id. */
	{ "/system.slice/docker-0123abc.scope", "" },
	{ "/docker/" ID64 "0", "" },
	{ "/system.slice/docker-" ID64 "x.scope", "" },
};

START_TEST(test_container_id_of_cgroup_paths)
{
	char out[PLACE_CONTAINER_MAX + 1];
	const char *p = container_rows[_i].path;
	int found = place_container_id(p, strlen(p), out, sizeof out);

	ck_assert_msg(found == (*container_rows[_i].want != '\0'), "%s", p);
	ck_assert_str_eq(out, container_rows[_i].want);
}
END_TEST

static const struct {
	const char *text, *want;
} cgroup_rows[] = {
	{ "0::/system.slice/gunicorn.service\n", "/system.slice/gunicorn.service" },
	/* Hybrid: a container in the v1 controllers, the unified root. */
	{ "9:name=systemd:/docker/abc\n8:pids:/docker/abc\n0::/\n", "/docker/abc" },
	{ "9:name=systemd:/\n4:memory:/x/y\n0::/\n", "/x/y" },
	{ "4:memory:/x\n0::/own\n", "/own" },
	{ "0::/\n", "/" },
	{ "1:cpu:/a:b\n", "/a:b" },		/* a path may hold ':' */
	{ "garbage\nno colon here", "" },
	{ "", "" },
	{ "0::/no-newline", "/no-newline" },
};

START_TEST(test_cgroup_path_of_a_cgroup_file)
{
	const char *t = cgroup_rows[_i].text, *path;
	size_t len;

	shm_parse_cgroup_path(t, strlen(t), &path, &len);
	ck_assert_msg(len == strlen(cgroup_rows[_i].want) &&
	    memcmp(path, cgroup_rows[_i].want, len) == 0, "%s -> %.*s", t,
	    (int)len, path);
}
END_TEST

static const struct {
	const char *status;
	int want;
	uint32_t pid, ppid, ns_pid;
	unsigned nlevels;
} ids_rows[] = {
	{ "Name:\tpython3\nPid:\t4242\nPPid:\t4200\nNSpid:\t4242\n", 0,
	  4242, 4200, 4242, 1 },
	{ "Name:\tpython3\nPPid:\t17\nNSpid:\t24189\t2\n", 0, 24189, 17, 2, 2 },
	{ "PPid:\t0\nNSpid:\t900\t31\t1\n", 0, 900, 0, 1, 3 },
	{ "Name:\tx\nPPid:\t1\n", -EBADMSG, 0, 1, 0, 0 },	/* Linux < 4.1 */
	{ "NSpid:\t5\n", -EBADMSG, 0, 0, 0, 0 },
	{ "PPid:\t1\nNSpid:\t\n", -EBADMSG, 0, 1, 0, 0 },
	/* A key inside another line is not the key. */
	{ "XNSpid:\t7\nPPid:\t1\nNSpid:\t8\t9\n", 0, 8, 1, 9, 2 },
};

START_TEST(test_parse_status_ids)
{
	struct procfs_ids ids;

	ck_assert_int_eq(procfs_parse_status_ids(ids_rows[_i].status, &ids),
	    ids_rows[_i].want);
	if (ids_rows[_i].want != 0)
		return;
	ck_assert_uint_eq(ids.pid, ids_rows[_i].pid);
	ck_assert_uint_eq(ids.ppid, ids_rows[_i].ppid);
	ck_assert_uint_eq(ids.ns_pid, ids_rows[_i].ns_pid);
	ck_assert_uint_eq(ids.nlevels, ids_rows[_i].nlevels);
}
END_TEST

/* A child that locks fd's byte as the agent does, then waits for a byte
 * on the pipe (or its end) and exits. */
static pid_t lock_in_child(int fd, int *release)
{
	int go[2], ready[2];
	struct flock fl;
	pid_t pid;
	char c = 0;

	ck_assert_int_eq(pipe(go), 0);
	ck_assert_int_eq(pipe(ready), 0);
	if ((pid = fork()) == 0) {
		close(go[1]);		/* or its read never sees EOF */
		close(ready[0]);
		memset(&fl, 0, sizeof fl);
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = SHM_LOCK_OFF;
		fl.l_len = SHM_LOCK_LEN;
		if (fcntl(fd, F_SETLK, &fl) < 0)
			_exit(1);
		(void)!write(ready[1], &c, 1);
		(void)!read(go[0], &c, 1);
		_exit(0);
	}
	ck_assert_int_gt(pid, 0);
	close(go[0]);
	close(ready[1]);
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	close(ready[0]);
	*release = go[1];
	return pid;
}

static int temp_file(char *path, size_t cap)
{
	int fd;

	snprintf(path, cap, "/tmp/check_place.XXXXXX");
	ck_assert_int_ge(fd = mkstemp(path), 0);
	ck_assert_int_eq(ftruncate(fd, 4096), 0);
	return fd;
}

START_TEST(test_lock_holder_is_seen_then_gone)
{
	char path[64];
	uint32_t holder = 1;
	int fd = temp_file(path, sizeof path), release, st;
	pid_t pid;

	ck_assert_int_eq(place_lock_holder(fd, &holder), 0);
	pid = lock_in_child(fd, &release);
	ck_assert_int_eq(place_lock_holder(fd, &holder), 1);
	ck_assert_uint_eq(holder, (uint32_t)pid);
	close(release);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* The kernel dropped it with the process. */
	ck_assert_int_eq(place_lock_holder(fd, &holder), 0);
	close(fd);
	unlink(path);
}
END_TEST

static void claim_of(struct place_claim *c, pid_t pid)
{
	char buf[2048], p[64];
	ssize_t n;
	int fd;

	memset(c, 0, sizeof *c);
	c->ns_pid = (uint32_t)pid;
	c->owner = geteuid();
	snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
	ck_assert_int_ge(fd = open(p, O_RDONLY), 0);
	ck_assert_int_gt(n = read(fd, buf, sizeof buf), 0);
	close(fd);
	ck_assert_int_eq(shm_parse_start_ticks(buf, (size_t)n, &c->start_ticks), 0);
}

START_TEST(test_resolve_claims_of_our_namespace_and_another)
{
	struct place_self self;
	struct place_claim c;
	struct place out;
	const char *why = NULL;
	char path[64];
	int fd = temp_file(path, sizeof path), release, st;
	pid_t pid;

	place_self_init(&self);
	ck_assert(self.known);
	/* Ours, as written. */
	pid = lock_in_child(fd, &release);
	claim_of(&c, pid);
	c.has_ns = 1;
	c.pidns_ino = self.pidns_ino;
	c.pidns_dev = self.pidns_dev;
	ck_assert_int_eq(place_resolve(&self, fd, &c, &out, &why), 1);
	ck_assert_int_eq(out.kind, PLACE_OURS);
	ck_assert_uint_eq(out.pid, (uint32_t)pid);
	/* Another owner than the process's: refused. */
	c.owner = geteuid() + 1;
	ck_assert_int_eq(place_resolve(&self, fd, &c, &out, &why), -EPERM);
	ck_assert_ptr_nonnull(why);
	c.owner = geteuid();
	/* A claim of another namespace whose lock holder lives in ours:
	 * never taken for it. */
	c.pidns_ino = self.pidns_ino + 1;
	c.locked = 1;
	why = NULL;
	ck_assert_int_eq(place_resolve(&self, fd, &c, &out, &why), -EPERM);
	ck_assert_ptr_nonnull(strstr(why, "own pid"));
	/* ... without a lock: refused, saying so. */
	c.locked = 0;
	ck_assert_int_eq(place_resolve(&self, fd, &c, &out, &why), -EPERM);
	ck_assert_ptr_nonnull(strstr(why, "no lock"));
	close(release);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	/* Its lock gone with it: the process ended. */
	c.locked = 1;
	ck_assert_int_eq(place_resolve(&self, fd, &c, &out, &why), 0);
	/* And ours again: the pid names no process now. */
	c.pidns_ino = self.pidns_ino;
	ck_assert_int_eq(place_resolve(&self, fd, &c, &out, &why), 0);
	close(fd);
	unlink(path);
}
END_TEST

static Suite *place_suite(void)
{
	Suite *s = suite_create("place");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_container_id_of_cgroup_paths, 0,
	    (int)(sizeof container_rows / sizeof container_rows[0]));
	tcase_add_loop_test(tc, test_cgroup_path_of_a_cgroup_file, 0,
	    (int)(sizeof cgroup_rows / sizeof cgroup_rows[0]));
	tcase_add_loop_test(tc, test_parse_status_ids, 0,
	    (int)(sizeof ids_rows / sizeof ids_rows[0]));
	tcase_add_test(tc, test_lock_holder_is_seen_then_gone);
	tcase_add_test(tc, test_resolve_claims_of_our_namespace_and_another);
	suite_add_tcase(s, tc);
	return s;
}

UNIT_SUITE(place_suite, UNIT_FORK);
