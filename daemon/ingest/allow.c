/*
 * allow.c: whom gcmond serves (see allow.h). Reads only what the kernel
 * says of a process: the peer's groups by SO_PEERGROUPS, an area owner's
 * from /proc/<pid>/status (procfs.c). Never prints, never blocks on the
 * user database.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "allow.h"
#include "procfs.h"

#define ALLOW_PEER_GROUPS	256	/* read on the stack; more: malloc */

int allow_uid(const struct allow *a, uid_t uid)
{
	unsigned i;

	if (uid == 0 || uid == a->self)
		return 1;
	for (i = 0; i < a->nuid; i++)
		if (a->uid[i] == uid)
			return 1;
	return 0;
}

int allow_groups(const struct allow *a, const gid_t *groups, size_t n)
{
	unsigned i;
	size_t j;

	for (i = 0; i < a->ngid; i++)
		for (j = 0; j < n; j++)
			if (groups[j] == a->gid[i])
				return 1;
	return 0;
}

int allow_peer(const struct allow *a, int fd, uid_t uid, gid_t gid)
{
	gid_t some[ALLOW_PEER_GROUPS], *groups = some;
	socklen_t len = sizeof some;
	int ok = 0;

	if (allow_uid(a, uid))
		return 1;
	if (a->ngid == 0)
		return 0;
	if (allow_groups(a, &gid, 1))
		return 1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0) {
		/* ERANGE: len is now the size the peer's groups need. */
		if (errno != ERANGE || len <= sizeof some ||
		    (groups = malloc(len)) == NULL)
			return 0;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups,
		    &len) < 0)
			len = 0;
	}
	ok = allow_groups(a, groups, len / sizeof groups[0]);
	if (groups != some)
		free(groups);
	return ok;
}

int allow_process(const struct allow *a, uint32_t pid, uid_t uid)
{
	gid_t groups[ALLOW_PEER_GROUPS];
	int n;

	if (allow_uid(a, uid))
		return 1;
	/* Past ALLOW_PEER_GROUPS the rest of its groups are not seen. */
	if (a->ngid == 0 ||
	    (n = procfs_groups(pid, groups, ALLOW_PEER_GROUPS)) <= 0)
		return 0;
	return allow_groups(a, groups, (size_t)n);
}
