/*
 * stacks_report.h: renders gcmond's "stacks" answer (doc/control.md):
 * the "Where the pauses land" table of gcmonctl stacks and pygcprofiler's
 * report, and the folded stacks of pygcprofiler --stacks-file. Writes to
 * the FILE given; no other I/O; never changes its input.
 */
#ifndef GCMON_STACKS_REPORT_H
#define GCMON_STACKS_REPORT_H

#include <stdio.h>
#include <jansson.h>

#define STACKS_REPORT_TOP	10	/* rows of each table */

/* "=== WHERE THE PAUSES LAND ===": the top paths by total pause and by
 * count, with their share; the leaf as file:function:line. Nothing when
 * no stack was captured and quiet is set. */
void stacks_report(FILE *out, const json_t *stacks, int quiet);
/* Folded stacks, root first ("file:function;...;gen 2 WEIGHT"), the same
 * path at other lines merged; weight pause µs, or the count with
 * by_count. The number of lines, or -1 when writing failed. */
int stacks_report_folded(FILE *out, const json_t *stacks, int by_count);

#endif /* GCMON_STACKS_REPORT_H */
