/*
 * sock.h: the file gcmond listens on: its directory's safety, a live
 * daemon never replaced, a stale socket replaced, the mode it is born
 * with. Called by server.c's srv_start (which hands the descriptor to
 * libuv). Plain POSIX calls; never prints, never exits.
 */
#ifndef GCMON_SOCK_H
#define GCMON_SOCK_H

#include <sys/stat.h>
#include <sys/types.h>

/*
 * Checks path's directory (made PATHS_DIR_MODE if missing; it must be
 * uid's or root's and not writable by others unless sticky and uid's),
 * refuses a live daemon, replaces a stale socket, binds (0600, or 0660
 * and group *gid when gid is not NULL) and listens with backlog. Returns
 * the listening descriptor with *st the socket file's, or a negative
 * errno: -EADDRINUSE (a daemon answers there), -EPERM or -ENOTDIR (the
 * directory: *why says how), -EEXIST (not a socket), -ENAMETOOLONG, or
 * what bind or listen said. *why is set to a sentence where one helps.
 */
int sock_bind(const char *path, uid_t uid, const gid_t *gid, int backlog,
    struct stat *st, const char **why);

#endif /* GCMON_SOCK_H */
