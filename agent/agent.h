/*
 * agent.h: the state the agent's callback (_gcmon.c) shares with its
 * flusher thread (flusher.c): the one ring, the cumulative counters kept
 * beside it, and the identity sent in HELLO. This process-wide state is
 * the documented exception to "no hidden globals" (STYLE.md): a process
 * has one collector, so it has one agent. Nothing here takes the GIL.
 */
#ifndef GCMON_AGENT_H
#define GCMON_AGENT_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "codec.h"
#include "ring.h"

/* Written by the producer (the callback) only; read by anyone, relaxed. */
struct agent_gen_counters {
	_Atomic uint64_t count;
	_Atomic uint64_t pause_ns;
	_Atomic uint64_t max_pause_ns;
	_Atomic uint64_t collected;
	_Atomic uint64_t uncollectable;
};

struct agent_counters {
	struct agent_gen_counters gen[PROTO_MAX_GEN];
	_Atomic uint64_t dropped;	/* ring full */
	_Atomic uint32_t ngen;		/* highest generation seen + 1 */
};

struct agent_config {
	char *socket_path;
	unsigned flush_ms;
	uint64_t interval_ns;		/* SAMPLE period */
	unsigned exit_timeout_ms;
};

/* Owned strings of HELLO; hello.run_id etc. point into them. */
struct agent_identity {
	struct proto_hello hello;	/* reconnects, pid... filled per send */
	char *run_id;
	char *py_version;
	char *executable;
	char **argv;
};

struct agent {
	int started;
	struct ring ring;
	struct agent_counters counters;
	struct agent_config config;
	struct agent_identity id;
};

extern struct agent agent_state;

uint64_t agent_clock_ns(int clock_id);

/* Copy of the counters, never below what any popped record implies. */
void agent_counters_snapshot(struct proto_counters *out);

#endif /* GCMON_AGENT_H */
