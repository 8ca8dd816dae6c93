/*
 * service.c: the service a monitored process belongs to, for labels and
 * summaries: the name its agent gave (agg_proc.service), else one
 * derived from its command line. Called by metrics.c (and any module
 * that groups processes by service). Pure: no I/O, never prints.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "service.h"

/* The i-th string of p's argv, or NULL. */
static const char *service_arg(const struct agg_proc *p, uint32_t i)
{
	const char *s = p->argv;
	uint32_t k;

	if (s == NULL || i >= p->argc)
		return NULL;
	for (k = 0; k < i; k++)
		s += strlen(s) + 1;
	return s;
}

static const char *service_basename(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL && slash[1] != '\0' ? slash + 1 : path;
}

/* The last argument from i on that names a WSGI/ASGI application
 * ("module:app", as gunicorn, uvicorn and hypercorn take it), not a
 * host:port; NULL if none. */
static const char *service_app_spec(const struct agg_proc *p, uint32_t i)
{
	const char *a, *colon, *found = NULL;

	static const char word[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_";
	static const char mod[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789.";

	/* module.path:attr, attr maybe a call: app:create_app() */
	for (; (a = service_arg(p, i)) != NULL; i++) {
		if ((colon = strchr(a, ':')) == NULL || strchr(word, a[0]) ==
		    NULL || a[0] == '\0' || strspn(a, mod) != (size_t)(colon - a) ||
		    colon[1] == '\0' || strchr(word, colon[1]) == NULL ||
		    strspn(colon + 1, mod) + strspn(colon + 1 +
		    strspn(colon + 1, mod), "()") != strlen(colon + 1))
			continue;
		found = a;
	}
	return found;
}

/* Index of the first argument after the interpreter's own options
 * (python -u -X dev -W error x.py: the index of x.py). */
static uint32_t service_skip_pyopts(const struct agg_proc *p)
{
	const char *a;
	uint32_t i = 1;

	while ((a = service_arg(p, i)) != NULL && a[0] == '-' &&
	    strcmp(a, "-") != 0 && strcmp(a, "-c") != 0 &&
	    strcmp(a, "-m") != 0 && strncmp(a, "-m", 2) != 0) {
		if (strcmp(a, "-X") == 0 || strcmp(a, "-W") == 0 ||
		    strcmp(a, "--check-hash-based-pycs") == 0)
			i++;
		i++;
	}
	return i;
}

const char *service_name(const struct agg_proc *p, char *buf, size_t len)
{
	const char *a0 = service_arg(p, 0), *a, *app = NULL, *name;
	uint32_t i;

	if (len == 0)
		return buf;
	if (p->service != NULL && p->service[0] != '\0') {
		snprintf(buf, len, "%s", p->service);
		return buf;
	}
	if (a0 == NULL) {
		name = p->executable != NULL && p->executable[0] != '\0' ?
		    service_basename(p->executable) : "python";
	} else if (strncmp(service_basename(a0), "python", 6) != 0) {
		name = service_basename(a0);	/* uwsgi, a frozen app */
		app = service_app_spec(p, 1);
	} else if ((a = service_arg(p, i = service_skip_pyopts(p))) ==
	    NULL || strcmp(a, "-") == 0) {
		name = "python";
	} else if (strcmp(a, "-c") == 0) {
		name = "python -c";
	} else if (strncmp(a, "-m", 2) == 0) {
		name = a[2] != '\0' ? a + 2 : service_arg(p, ++i);
		if (name == NULL)
			name = "python -m";
		app = service_app_spec(p, i + 1);
	} else {
		name = service_basename(a);		/* a script */
		app = service_app_spec(p, i + 1);
	}
	if (app != NULL)
		snprintf(buf, len, "%s %s", name, app);
	else
		snprintf(buf, len, "%s", name);
	return buf;
}
