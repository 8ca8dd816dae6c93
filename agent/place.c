/*
 * place.c: where this process runs, as it sees itself: its PID namespace,
 * cgroup, hostname and the Kubernetes pod the environment names (the
 * PROTO_HELLO_PLACE part of the identity, protocol.h), and the lock on
 * its area file that tells gcmond, across PID namespaces, that it still
 * runs (shm.h, "Identity across namespaces"). gcmond believes none of it
 * without checking. Called by _gcmon.c at start and by area.c for each
 * area; the functions area.c calls make system calls only (fork child).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent.h"

#define PLACE_CGROUP_READ	8192	/* of /proc/self/cgroup */

/* A copy of s (n bytes) of printable ASCII, others as '?': the frame's
 * strings must be UTF-8, and a name shown to an operator plain text. */
static char *place_dup(const char *s, size_t n, size_t cap)
{
	char *d;
	size_t i;

	if (n > cap)
		n = cap;
	if ((d = malloc(n + 1)) == NULL)
		return NULL;
	for (i = 0; i < n; i++)
		d[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	d[n] = '\0';
	return d;
}

static int place_set(struct proto_str *str, char **own, const char *s,
    size_t n, size_t cap)
{
	if ((*own = place_dup(s, n, cap)) == NULL)
		return -ENOMEM;
	str->ptr = *own;
	str->len = (uint32_t)strlen(*own);
	return 0;
}

static int place_cgroup(struct agent_identity *id)
{
	char *buf;
	const char *path;
	size_t len, got = 0;
	ssize_t n;
	int fd, err;

	if ((buf = malloc(PLACE_CGROUP_READ)) == NULL)
		return -ENOMEM;
	if ((fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC)) >= 0) {
		while (got < PLACE_CGROUP_READ) {
			n = read(fd, buf + got, PLACE_CGROUP_READ - got);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		close(fd);
	}
	/* Unreadable: no cgroup, not an error. */
	shm_parse_cgroup_path(buf, got, &path, &len);
	err = place_set(&id->hello.cgroup, &id->cgroup, path, len,
	    PROTO_MAX_STR);
	free(buf);
	return err;
}

/* The first of two variables that is set and not empty, or "". */
static const char *place_env(const char *ours, const char *theirs)
{
	const char *v = getenv(ours);

	if (v == NULL || *v == '\0')
		v = getenv(theirs);
	return v != NULL ? v : "";
}

int agent_place_read(struct agent_identity *id)
{
	struct proto_hello *h = &id->hello;
	struct utsname u;
	const char *pod = place_env("GCMON_POD_NAME", "POD_NAME");
	const char *ns = place_env("GCMON_POD_NAMESPACE", "POD_NAMESPACE");
	const char *host = uname(&u) == 0 ? u.nodename : "";

	if (place_set(&h->hostname, &id->hostname, host, strlen(host),
	    PROTO_MAX_ID) < 0 ||
	    place_set(&h->pod, &id->pod, pod, strlen(pod), PROTO_MAX_ID) < 0 ||
	    place_set(&h->pod_namespace, &id->pod_namespace, ns, strlen(ns),
	    PROTO_MAX_ID) < 0 || place_cgroup(id) < 0)
		return -ENOMEM;
	h->flags |= PROTO_HELLO_PLACE;
	return 0;
}

void agent_place_free(struct agent_identity *id)
{
	free(id->hostname);
	free(id->cgroup);
	free(id->pod);
	free(id->pod_namespace);
	id->hostname = id->cgroup = id->pod = id->pod_namespace = NULL;
}

void agent_place_pidns(struct proto_hello *h)
{
	struct stat st;

	/* Read for each area: a child forked after its parent unshared
	 * CLONE_NEWPID is in another namespace than the parent. */
	if (stat("/proc/self/ns/pid", &st) == 0) {
		h->pidns_ino = (uint64_t)st.st_ino;
		h->pidns_dev = (uint64_t)st.st_dev;
	} else {
		h->pidns_ino = h->pidns_dev = 0;
	}
}

int agent_place_lock(int fd)
{
	struct flock fl;

	shm_lock_range(&fl);
	return fcntl(fd, F_SETLK, &fl) < 0 ? -errno : 0;
}
