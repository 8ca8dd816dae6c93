/*
 * paths.c: the default socket paths (see paths.h). Called by gcmond.c,
 * client/ctl.c and the agent's _gcmon.default_socket(). Never creates
 * anything: gcmond's server.c makes the directory when it binds.
 * paths_relocate (the launcher's way to its own gcmond and agent) does
 * no I/O at all.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "paths.h"

const char *paths_daemon_socket(char *buf, size_t len)
{
	const char *env = getenv("GCMON_SOCKET");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (env != NULL && *env != '\0')
		n = snprintf(buf, len, "%s", env);
	else if (xdg != NULL && *xdg == '/')
		n = snprintf(buf, len, "%s/gcmon.sock", xdg);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "%s", PATHS_HOST_SOCKET);
	else
		n = snprintf(buf, len, "/tmp/gcmon-%u/gcmon.sock",
		    (unsigned)geteuid());
	if (n < 0 || (size_t)n >= len)
		return NULL;
	return buf;
}

static int paths_is_socket(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

const char *paths_pick_socket(const char *own, const char *host, char *buf,
    size_t len)
{
	const char *pick = own;

	if (!paths_is_socket(own) && paths_is_socket(host))
		pick = host;
	if (strlen(pick) >= len)
		return NULL;
	memmove(buf, pick, strlen(pick) + 1);
	return buf;
}

const char *paths_default_socket(char *buf, size_t len)
{
	const char *env = getenv("GCMON_SOCKET");

	if (paths_daemon_socket(buf, len) == NULL)
		return NULL;
	if (env != NULL && *env != '\0')
		return buf;	/* named: nothing to choose */
	return paths_pick_socket(buf, PATHS_HOST_SOCKET, buf, len);
}

/* Length of the leading whole components a and b share: "/usr/bin" and
 * "/usr/sbin" share "/usr" (4), "/ab" and "/abc" only "" (0). */
static size_t paths_common_prefix(const char *a, const char *b)
{
	size_t i = 0, last = 0;

	while (a[i] != '\0' && a[i] == b[i]) {
		if (a[i] == '/')
			last = i;
		i++;
	}
	if ((a[i] == '\0' || a[i] == '/') && (b[i] == '\0' || b[i] == '/'))
		last = i;
	return last;
}

const char *paths_relocate(const char *exe_dir, const char *from,
    const char *to, char *buf, size_t len)
{
	size_t common, off, ups = 0;
	const char *p;
	int n;

	if (from[0] != '/' || to[0] != '/')
		return NULL;
	common = paths_common_prefix(from, to);
	for (p = from + common; *p != '\0'; p++)	/* components left in from */
		if (*p != '/' && (p == from || p[-1] == '/'))
			ups++;
	n = snprintf(buf, len, "%s", exe_dir);
	if (n < 0 || (size_t)n >= len)
		return NULL;
	off = (size_t)n;
	while (ups-- > 0) {
		n = snprintf(buf + off, len - off, "/..");
		if (n < 0 || (size_t)n >= len - off)
			return NULL;
		off += (size_t)n;
	}
	n = snprintf(buf + off, len - off, "%s", to + common);
	if (n < 0 || (size_t)n >= len - off)
		return NULL;
	return buf;
}
