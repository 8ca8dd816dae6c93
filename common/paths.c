/*
 * paths.c: the default socket path (see paths.h). Called by gcmond.c and
 * client/ctl.c. Never creates anything: gcmond's server.c makes the
 * directory when it binds.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "paths.h"

const char *paths_default_socket(char *buf, size_t len)
{
	const char *env = getenv("GCMON_SOCKET");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	int n;

	if (env != NULL && *env != '\0')
		n = snprintf(buf, len, "%s", env);
	else if (xdg != NULL && *xdg == '/')
		n = snprintf(buf, len, "%s/gcmon.sock", xdg);
	else if (geteuid() == 0)
		n = snprintf(buf, len, "/run/gcmon.sock");
	else
		n = snprintf(buf, len, "/tmp/gcmon-%u/gcmon.sock",
		    (unsigned)geteuid());
	if (n < 0 || (size_t)n >= len)
		return NULL;
	return buf;
}
