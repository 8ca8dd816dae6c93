/*
 * place.c: which process an area belongs to, across PID namespaces, and
 * its container (see place.h and common/shm.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "place.h"
#include "procfs.h"
#include "shm.h"

#define PLACE_CGROUP_READ	4096

void place_self_init(struct place_self *self)
{
	struct stat st;

	memset(self, 0, sizeof *self);
	if (stat("/proc/self/ns/pid", &st) == 0) {
		self->pidns_ino = (uint64_t)st.st_ino;
		self->pidns_dev = (uint64_t)st.st_dev;
		self->known = 1;
	}
}

int place_lock_holder(int fd, uint32_t *holder)
{
	struct flock fl;

	shm_lock_range(&fl);
	if (fcntl(fd, F_GETLK, &fl) < 0)
		return -errno;
	if (fl.l_type == F_UNLCK)
		return 0;
	/* 0: a holder in no namespace of ours; -1 (an OFD lock): the same. */
	*holder = fl.l_pid > 0 ? (uint32_t)fl.l_pid : 0;
	return 1;
}

static int place_hex(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return n > 0;
}

static int place_set(char *out, size_t cap, const char *s, size_t n)
{
	if (n == 0 || n >= cap)
		return 0;
	memcpy(out, s, n);
	out[n] = '\0';
	return 1;
}

/* One path component c (n bytes): 1 and the id into out if it names a
 * container. */
static int place_component(const char *c, size_t n, char *out, size_t cap)
{
	static const char *const prefix[] = {
		"docker-", "cri-containerd-", "crio-", "libpod-payload-",
		"libpod-", "containerd-", NULL
	};
	static const char scope[] = ".scope";
	const size_t sl = sizeof scope - 1;
	size_t i, pl;

	if (n > sl && memcmp(c + n - sl, scope, sl) == 0) {
		n -= sl;
		if (n > 8 && memcmp(c, "machine-", 8) == 0)
			return place_set(out, cap, c + 8, n - 8);
	}
	for (i = 0; prefix[i] != NULL; i++) {
		pl = strlen(prefix[i]);
		if (n > pl && memcmp(c, prefix[i], pl) == 0 &&
		    place_hex(c + pl, n - pl) && n - pl == 64)
			return place_set(out, cap, c + pl, n - pl);
	}
	/* cgroupfs drivers: "/docker/<id>", "/kubepods/<qos>/pod<uid>/<id>". */
	if (n == 64 && place_hex(c, n))
		return place_set(out, cap, c, n);
	return 0;
}

int place_container_id(const char *path, size_t len, char *out, size_t cap)
{
	const char *end = path + len, *c;

	if (cap > 0)
		out[0] = '\0';
	/* The innermost component that names one: libpod nests its payload
	 * ("libpod-<id>.scope/container"). */
	while (end > path) {
		for (c = end; c > path && c[-1] != '/'; c--)
			;
		if (place_component(c, (size_t)(end - c), out, cap))
			return 1;
		end = c > path ? c - 1 : path;
	}
	return 0;
}

/* The container from /proc/<pid>/cgroup as gcmond sees it (the full path
 * from a host's cgroup namespace), else from the area's own view. */
static void place_container(uint32_t pid, const struct place_claim *c,
    struct place *out)
{
	char buf[PLACE_CGROUP_READ];
	const char *path;
	size_t len;

	if (pid != 0 && procfs_cgroup(pid, buf, sizeof buf, &path, &len) == 0 &&
	    place_container_id(path, len, out->container, sizeof out->container))
		return;
	if (c->cgroup != NULL)
		(void)place_container_id(c->cgroup, c->cgroup_len,
		    out->container, sizeof out->container);
}

/* pid (here) must be the process that started at the claim's start time,
 * run by the file's owner: 1, 0 (another process now, or none), <0. */
static int place_check(const struct place_claim *c, uint32_t pid,
    const char **why)
{
	uint64_t ticks;
	uid_t uid;
	int err;

	if ((err = procfs_identity(pid, &ticks, &uid)) == -ESRCH)
		return 0;
	if (err < 0) {
		*why = "names a process that cannot be examined in /proc";
		return err;
	}
	if (ticks != c->start_ticks)
		return 0;
	if (uid != c->owner) {
		*why = "claims a process of another user than its file's owner";
		return -EPERM;
	}
	return 1;
}

/* A holder in a namespace below ours: it must be the process the area
 * names, in the namespace it names. */
static int place_seen(const struct place_claim *c, uint32_t holder,
    struct place *out, const char **why)
{
	struct procfs_ids ids;
	uint64_t ino, dev;
	int err;

	if ((err = procfs_ids(holder, &ids)) == -ESRCH)
		return 0;
	if (err < 0) {
		*why = "is locked by a process that cannot be examined in /proc";
		return err;
	}
	if (ids.nlevels < 2 || ids.ns_pid != c->ns_pid) {
		*why = "is locked by a process whose own pid is not the one it "
		    "names";
		return -EPERM;
	}
	/* Without the right to look (another user's process and no
	 * CAP_SYS_PTRACE), NSpid and the start time decide. */
	if (procfs_pidns(holder, &ino, &dev) == 0 &&
	    (ino != c->pidns_ino || dev != c->pidns_dev)) {
		*why = "is locked by a process of another PID namespace than "
		    "the one it names";
		return -EPERM;
	}
	if ((err = place_check(c, holder, why)) <= 0) {
		if (err == 0)	/* alive, locked, but not that process */
			*why = "is locked by a process that started at another "
			    "time than it says (a time namespace?)";
		return err == 0 ? -EPERM : err;
	}
	out->kind = PLACE_SEEN;
	out->pid = holder;
	out->ppid = ids.ppid;
	return 1;
}

int place_resolve(const struct place_self *self, int fd,
    const struct place_claim *c, struct place *out, const char **why)
{
	uint32_t holder = 0;
	int err;

	memset(out, 0, sizeof *out);
	out->pid = c->ns_pid;
	out->ppid = c->ns_ppid;
	if (!c->has_ns || !self->known || (c->pidns_ino == self->pidns_ino &&
	    c->pidns_dev == self->pidns_dev)) {
		out->kind = PLACE_OURS;
		if ((err = place_check(c, c->ns_pid, why)) > 0)
			place_container(c->ns_pid, c, out);
		return err;
	}
	out->foreign = 1;
	if (!c->locked) {
		*why = "is of another PID namespace and holds no lock to find "
		    "its process by (a filesystem without POSIX locks?)";
		return -EPERM;
	}
	if ((err = place_lock_holder(fd, &holder)) < 0) {
		*why = "cannot be asked for its lock (F_GETLK)";
		return err;
	}
	if (err == 0)
		return 0;	/* ended: the kernel dropped its lock */
	if (holder == 0) {
		out->kind = PLACE_UNSEEN;
		place_container(0, c, out);
		return 1;
	}
	if ((err = place_seen(c, holder, out, why)) > 0)
		place_container(holder, c, out);
	return err;
}
