/*
 * requests_answer.h: the "requests" control answer (doc/control.md) and
 * one request as a JSON log line, built from the model's requests
 * (requests.h). Called by control.c and events.c.
 */
#ifndef GCMON_REQUESTS_ANSWER_H
#define GCMON_REQUESTS_ANSWER_H

#include <jansson.h>

#include "agg.h"
#include "requests.h"
#include "shm.h"

/* One request as a JSON log line ({"type": "request", ...}, gcmond(8)
 * JSON LOG); NULL: out of memory. */
json_t *requests_line_json(const struct agg_proc *p,
    const struct shm_request *r, const struct req_result *res);
/* The "requests" answer's body for process p, else run r, else the
 * host; of those, service's processes only when service is not NULL.
 * NULL: out of memory. */
json_t *requests_answer(const struct agg *a, const struct agg_run *r,
    const struct agg_proc *p, const char *service);

#endif /* GCMON_REQUESTS_ANSWER_H */
