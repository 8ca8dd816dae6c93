/*
 * gcmodel.c: the facts of each CPython collector model (see gcmodel.h).
 * Called by json.c, rules.c, alerts.c and agg.c; pure: no I/O, no
 * state, no allocation.
 */
#include "config.h"

#include "codec.h"
#include "gcmodel.h"

#define GCMODEL_UNKNOWN_BIT	(1u << 3)

unsigned gcmodel_bit(unsigned m)
{
	return m <= GC_MODEL_FREE_THREADED ? 1u << m : GCMODEL_UNKNOWN_BIT;
}

unsigned gcmodel_of_bits(unsigned bits)
{
	unsigned m;

	if (bits == 0 || bits == GCMODEL_UNKNOWN_BIT)
		return GCMODEL_UNKNOWN;
	for (m = GC_MODEL_CLASSIC; m <= GC_MODEL_FREE_THREADED; m++)
		if (bits == 1u << m)
			return m;
	return GCMODEL_MIXED;
}

const char *gcmodel_name(unsigned m)
{
	switch (m) {
	case GC_MODEL_CLASSIC:
		return "classic";
	case GC_MODEL_INCREMENTAL:
		return "incremental";
	case GC_MODEL_FREE_THREADED:
		return "free-threaded";
	case GCMODEL_MIXED:
		return "mixed";
	default:
		return "unknown";
	}
}

/* The table is the protocol's: a client decoding the binary watch
 * stream labels the records with the same one. */
const char *gcmodel_gen_label(unsigned m, unsigned gen)
{
	return proto_gen_label(m, gen);
}

int gcmodel_traces_old(unsigned m, unsigned gen, unsigned ngen)
{
	switch (m) {
	case GC_MODEL_INCREMENTAL:
		return gen >= 1;
	case GC_MODEL_FREE_THREADED:
		return 1;
	default:
		return ngen > 0 && gen == ngen - 1;
	}
}

const char *gcmodel_old_name(unsigned m)
{
	return m == GC_MODEL_INCREMENTAL ? "old-generation (increment or "
	    "full)" : m == GC_MODEL_FREE_THREADED ? "whole-heap" : "gen-2";
}

int gcmodel_auto_full(unsigned m)
{
	return m != GC_MODEL_INCREMENTAL && m != GC_MODEL_FREE_THREADED;
}

unsigned gcmodel_nthresholds(unsigned m)
{
	return m == GC_MODEL_INCREMENTAL ? 2 :
	    m == GC_MODEL_FREE_THREADED ? 1 : 3;
}

unsigned gcmodel_auto_gen(unsigned m)
{
	return m == GC_MODEL_INCREMENTAL ? 1 : 0;
}
