/*
 * paths.h: where gcmond listens when no --socket is given, and which
 * socket a client (gcmonctl, the agent's gcmon.start()) talks to when it
 * is given none: the one policy gcmond, gcmonctl, pygcprofiler and the
 * agent share. Reads the environment, the effective uid and whether a
 * socket exists (stat); no other I/O, never prints.
 */
#ifndef GCMON_PATHS_H
#define GCMON_PATHS_H

#include <stddef.h>

/* The mode of a socket directory gcmond makes (/tmp/gcmon-<uid>, or a
 * --socket directory that does not exist yet): private to its user. */
#define PATHS_DIR_MODE		0700

/* The host-wide gcmond's socket: where contrib/gcmond.service (the
 * Debian package's unit) and a gcmond run by root listen. */
#define PATHS_HOST_SOCKET	"/run/gcmon/gcmon.sock"

/* gcmond's own default: $GCMON_SOCKET, else $XDG_RUNTIME_DIR/gcmon.sock,
 * else PATHS_HOST_SOCKET for root, else /tmp/gcmon-<uid>/gcmon.sock (a
 * directory gcmond makes with PATHS_DIR_MODE). Returns buf, or NULL if
 * the path does not fit in len bytes. */
const char *paths_daemon_socket(char *buf, size_t len);
/* A client's default: $GCMON_SOCKET; else the user's own gcmond's socket
 * (paths_daemon_socket) if it exists; else PATHS_HOST_SOCKET if it
 * exists; else the user's own (whose absence the client then reports).
 * buf or NULL, as above. */
const char *paths_default_socket(char *buf, size_t len);
/* The choice itself, for tests: own if it is a socket, else host if it
 * is one, else own; copied into buf (NULL if it does not fit). */
const char *paths_pick_socket(const char *own, const char *host, char *buf,
    size_t len);

/* Where an installed file is when the whole install tree has moved (a
 * wheel's bin/ and lib/ land under whatever prefix pip installs into):
 * exe_dir (the directory the running program is in) joined with the way
 * from the configured directory from to the configured to, both
 * absolute and without "." or ".." components ("/usr/local/bin",
 * "/usr/local/lib/gcmon" -> "<exe_dir>/../lib/gcmon"). Returns buf, or
 * NULL if from or to is not absolute or the result does not fit. */
const char *paths_relocate(const char *exe_dir, const char *from,
    const char *to, char *buf, size_t len);

#endif /* GCMON_PATHS_H */
