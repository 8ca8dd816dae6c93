/*
 * requests_report.h: the "=== GC AND REQUESTS ===" block, from gcmond's
 * `requests` answer (daemon/out/requests_answer.c), for gcmonctl requests and
 * the launcher's report. Only formats.
 */
#ifndef GCMON_REQUESTS_REPORT_H
#define GCMON_REQUESTS_REPORT_H

#include <stdio.h>

#include <jansson.h>

void report_requests(FILE *out, const json_t *req);

#endif /* GCMON_REQUESTS_REPORT_H */
