/*
 * paths.h: where gcmond listens when no --socket is given, the one
 * policy gcmond, gcmonctl and pygcprofiler share. Reads the environment
 * and the effective uid; no other I/O, never prints.
 */
#ifndef GCMON_PATHS_H
#define GCMON_PATHS_H

#include <stddef.h>

/* The mode of a socket directory gcmond makes (/tmp/gcmon-<uid>, or a
 * --socket directory that does not exist yet): private to its user. */
#define PATHS_DIR_MODE		0700

/* The default socket: $GCMON_SOCKET, else $XDG_RUNTIME_DIR/gcmon.sock,
 * else /run/gcmon.sock for root, else /tmp/gcmon-<uid>/gcmon.sock (a
 * directory gcmond makes with PATHS_DIR_MODE). Returns buf, or NULL if
 * the path does not fit in len bytes. */
const char *paths_default_socket(char *buf, size_t len);

#endif /* GCMON_PATHS_H */
