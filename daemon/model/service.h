/*
 * service.h: the service name of a monitored process (service.c).
 */
#ifndef GCMON_SERVICE_H
#define GCMON_SERVICE_H

#include <stddef.h>

#include "agg.h"

/*
 * p->service if the agent named one, else derived from its command line:
 * "gunicorn app:app" for python -m gunicorn ... app:app (the module and
 * its last WSGI/ASGI "module:attr" argument), the script's basename for
 * python x.py (plus such an argument: gunicorn's console script), "python
 * -c" for -c, else the program's basename (uwsgi). Writes a NUL-terminated
 * string of at most len - 1 bytes to buf; returns buf.
 */
const char *service_name(const struct agg_proc *p, char *buf, size_t len);

/* The buffer service_name() is given by its callers: /metrics' service
 * label and the JSON's service_label are the same name, cut alike. */
#define SERVICE_NAME_MAX	128

#endif /* GCMON_SERVICE_H */
