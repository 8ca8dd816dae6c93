/*
 * command.c: what pygcprofiler knows about the command line it runs:
 * where `exec`'s command is (looked up as execvp does, so a missing or
 * non-executable command is an error before anything starts) and, when
 * no Python process of a run loaded the agent, what in the command line
 * explains it (uWSGI --no-site, python -S/-I/-E, PYTHONPATH=..., env -i).
 * Called by pygcprofiler.c and launch.c. Pure functions over strings and
 * stat(); it prints nothing and starts nothing.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pgp.h"

/* glibc's execvp search path when PATH is unset. */
#define COMMAND_DEFAULT_PATH	"/bin:/usr/bin"

/* 0 if path is an executable regular file; else why not. */
static int command_check(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (access(path, X_OK) < 0)
		return -errno;
	return 0;
}

int command_find(const char *cmd, char *buf, size_t len)
{
	const char *path = getenv("PATH"), *p, *colon;
	int err, seen = -ENOENT;
	size_t dl;

	if (*cmd == '\0')
		return -ENOENT;
	if (strchr(cmd, '/')) {
		if ((size_t)snprintf(buf, len, "%s", cmd) >= len)
			return -ENAMETOOLONG;
		return command_check(buf);
	}
	if (path == NULL)
		path = COMMAND_DEFAULT_PATH;
	for (p = path; p != NULL; p = colon ? colon + 1 : NULL) {
		colon = strchr(p, ':');
		dl = colon ? (size_t)(colon - p) : strlen(p);
		/* An empty entry is the current directory, as for execvp. */
		if ((size_t)snprintf(buf, len, "%.*s%s%s", (int)dl, p,
		    dl ? "/" : "", cmd) >= len)
			continue;
		err = command_check(buf);
		if (err == 0)
			return 0;
		/* execvp goes on past a file it may not run, and says so
		 * only if nothing later runs. */
		if (err != -ENOENT && err != -ENOTDIR && seen == -ENOENT)
			seen = err;
	}
	return seen;
}

int command_exec_status(int err)
{
	if (err < 0)
		err = -err;
	return err == ENOENT || err == ENOTDIR ? 127 : 126;
}

/* The last path component. */
static const char *command_base(const char *s)
{
	const char *slash = strrchr(s, '/');

	return slash ? slash + 1 : s;
}

static int command_is_python(const char *word)
{
	const char *b = command_base(word), *p;

	if (strncmp(b, "python", 6) != 0)
		return 0;
	for (p = b + 6; *p; p++)
		if ((*p < '0' || *p > '9') && *p != '.')
			return 0;
	return 1;
}

/* The site-disabling flags of a python command line's options (before
 * the script, -c or -m), as "S", "I", "E" in found[]. */
static void command_python_flags(char *const *argv, int argc, int *found)
{
	const char *w, *c;
	int i;

	for (i = 0; i < argc && (w = argv[i])[0] == '-' && w[1] != '\0' &&
	    w[1] != '-'; i++) {
		for (c = w + 1; *c; c++) {
			if (*c == 'S')
				found[0] = 1;
			else if (*c == 'I')
				found[1] = 1;
			else if (*c == 'E')
				found[2] = 1;
			else if (*c == 'c' || *c == 'm')
				return;		/* the program starts here */
			else if (*c == 'W' || *c == 'X')
				break;		/* the rest is its value */
		}
		if (*c != '\0' && c[1] == '\0')
			i++;		/* -W arg, -X opt: the next word */
	}
}

/* 1 if word holds opt as a whole word of a command line: after its start
 * or a blank, before its end, a blank or '=' (so "--no-site" is not in
 * "--no-site-packages"). */
static int command_has_opt(const char *word, const char *opt)
{
	size_t n = strlen(opt);
	const char *p;

	for (p = strstr(word, opt); p != NULL; p = strstr(p + 1, opt))
		if ((p == word || p[-1] == ' ' || p[-1] == '\t') &&
		    strchr(" \t=", p[n]) != NULL)
			return 1;
	return 0;
}

/* Appends "; " and the formatted text to buf (of len, holding *used). */
static void command_add(char *buf, size_t len, size_t *used,
    const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*used >= len)
		return;
	if (*used > 0) {
		n = snprintf(buf + *used, len - *used, "; ");
		*used += n > 0 ? (size_t)n : 0;
		if (*used >= len)
			return;
	}
	va_start(ap, fmt);
	n = vsnprintf(buf + *used, len - *used, fmt, ap);
	va_end(ap);
	*used += n > 0 ? (size_t)n : 0;
}

int command_why_no_agent(char *const *argv, int argc, char *buf, size_t len)
{
	int i, py[3] = { 0, 0, 0 }, no_site = 0, pythonpath = 0, env_i = 0;
	size_t used = 0;

	buf[0] = '\0';
	for (i = 0; i < argc; i++) {
		/* Substrings too: a `sh -c "..."` word holds a command line. */
		if (command_has_opt(argv[i], "--no-site"))
			no_site = 1;
		if (strncmp(argv[i], "PYTHONPATH=", 11) == 0 ||
		    strstr(argv[i], " PYTHONPATH=") != NULL)
			pythonpath = 1;
		if (strcmp(command_base(argv[i]), "env") == 0 && i + 1 < argc &&
		    (strcmp(argv[i + 1], "-i") == 0 ||
		    strcmp(argv[i + 1], "--ignore-environment") == 0))
			env_i = 1;
		if (command_is_python(argv[i]))
			command_python_flags(argv + i + 1, argc - i - 1, py);
	}
	if (no_site)
		command_add(buf, len, &used, "the command line has uWSGI's "
		    "--no-site, which stops its Python from importing site, so "
		    "the agent's sitecustomize never runs");
	if (py[0])
		command_add(buf, len, &used, "python -S disables site, so the "
		    "agent's sitecustomize never runs");
	if (py[1])
		command_add(buf, len, &used, "python -I (isolated mode) ignores "
		    "PYTHONPATH, where pygcprofiler puts the agent (only an "
		    "installed gcmon-autoload.pth would load it)");
	if (py[2])
		command_add(buf, len, &used, "python -E ignores PYTHONPATH, "
		    "where pygcprofiler puts the agent (only an installed "
		    "gcmon-autoload.pth would load it)");
	if (pythonpath)
		command_add(buf, len, &used, "the command line sets PYTHONPATH=, "
		    "which replaces the agent directory pygcprofiler put first "
		    "(keep it: PYTHONPATH=new:$PYTHONPATH)");
	if (env_i)
		command_add(buf, len, &used, "env -i clears the environment "
		    "the agent is loaded through");
	return used > 0;
}
