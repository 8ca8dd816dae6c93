/*
 * agg_role.c: part of agg.h's module, the one home of a process's role
 * (agg_proc_role: master, worker or child) and of the link between an
 * exec'd process and its monitored parent that decides it. Called by
 * agg.c (agg_hello), json.c and metrics.c. No I/O; never allocates.
 */
#include "config.h"

#include <string.h>

#include "agg.h"

/* Bytes of p's argv strings, NULs included. */
static size_t agg_argv_len(const struct agg_proc *p)
{
	size_t off = 0;
	uint32_t i;

	for (i = 0; i < p->argc; i++)
		off += strlen(p->argv + off) + 1;
	return off;
}

/*
 * Whether exec'd process c, child of monitored process par, runs par's
 * program as a worker: multiprocessing's spawn start method (uvicorn
 * --workers, spawn pools) ends its -c command with
 * "--multiprocessing-fork", and a program re-executing itself has its
 * parent's argv. The resource tracker and the forkserver
 * ("-c 'from multiprocessing.resource_tracker import main; ...'") have
 * neither, so they stay children; so does any other subprocess.
 */
static int agg_is_spawned(const struct agg_proc *c,
    const struct agg_proc *par)
{
	size_t off = 0, len = agg_argv_len(c);
	uint32_t i;

	if (c->origin != ORIGIN_EXEC || c->ppid != par->pid || c == par)
		return 0;
	for (i = 0; i < c->argc; off += strlen(c->argv + off) + 1, i++)
		if (strcmp(c->argv + off, "--multiprocessing-fork") == 0)
			return 1;
	return c->argc > 0 && c->argc == par->argc &&
	    len == agg_argv_len(par) && memcmp(c->argv, par->argv, len) == 0;
}

/* Sets the spawned flag of new p from its parent in run r, and of its
 * exec'd children that said HELLO before it did. */
void agg_role_link(struct agg_run *r, struct agg_proc *p)
{
	struct agg_proc *q;

	for (q = r->head; q != NULL; q = q->next) {
		if (q->pid == p->ppid)
			p->spawned = (uint8_t)agg_is_spawned(p, q);
		if (q->ppid == p->pid && q->origin == ORIGIN_EXEC)
			q->spawned = (uint8_t)agg_is_spawned(q, p);
	}
}

const char *agg_proc_role(const struct agg_proc *p)
{
	return p->origin == ORIGIN_FORK || p->spawned ? "worker" :
	    p->origin == ORIGIN_EXEC ? "child" : "master";
}
