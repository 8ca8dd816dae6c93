/*
 * allow.h: whom gcmond serves, the one place that decides it. A peer of
 * the control socket and the owner of an agent's shared area are served
 * when their uid is root's, gcmond's own or one named by --allow-uid, or
 * when the process runs with a group named by --allow-group (its
 * effective gid or one of its supplementary groups, as the kernel sees
 * them: SO_PEERGROUPS for a peer, /proc/<pid>/status for an area's
 * process; never the user database, which may block). Called by
 * server.c and agents.c; filled once by gcmond.c's option parsing.
 */
#ifndef GCMON_ALLOW_H
#define GCMON_ALLOW_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define ALLOW_MAX	64		/* users, and groups, at most */

struct allow {
	uid_t self;			/* gcmond's effective uid */
	uid_t uid[ALLOW_MAX];		/* --allow-uid */
	unsigned nuid;
	gid_t gid[ALLOW_MAX];		/* --allow-group */
	unsigned ngid;
};

/* 1 if uid is root, gcmond's own or listed. */
int allow_uid(const struct allow *a, uid_t uid);
/* 1 if one of the n groups is listed. */
int allow_groups(const struct allow *a, const gid_t *groups, size_t n);
/* A connected peer (fd, with SO_PEERCRED's uid and gid): 1 if served. */
int allow_peer(const struct allow *a, int fd, uid_t uid, gid_t gid);
/* The process pid owned by uid: 1 if served. */
int allow_process(const struct allow *a, uint32_t pid, uid_t uid);

#endif /* GCMON_ALLOW_H */
