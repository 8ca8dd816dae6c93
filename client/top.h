/*
 * top.h: `gcmonctl top`, a refreshing full-screen view of gcmond's
 * processes (ncurses), or one frame on stdout (--once). Called by
 * gcmonctl.c. Reads only: never sends a command that changes gcmond.
 */
#ifndef GCMON_TOP_H
#define GCMON_TOP_H

struct top_args {
	const char *sock;
	const char *run;	/* NULL: the host */
	double interval_s;	/* between refreshes */
	double timeout_s;	/* for each answer */
	int once;		/* one frame to stdout, no curses */
};

/* Runs the view until q, SIGINT or SIGTERM; the exit status. */
int top_main(const struct top_args *a);

#endif /* GCMON_TOP_H */
