/*
 * gcmodel.c: the facts of each CPython collector model (see gcmodel.h).
 * Called by json.c, rules.c, alerts.c and agg.c; pure: no I/O, no
 * state, no allocation.
 */
#include "config.h"

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

const char *gcmodel_gen_label(unsigned m, unsigned gen)
{
	static const char *const plain[PROTO_MAX_GEN] = { "generation 0",
	    "generation 1", "generation 2", "generation 3", "generation 4",
	    "generation 5", "generation 6", "generation 7" };
	static const char *const incremental[3] = { "young (explicit)",
	    "young+incremental", "full (explicit)" };
	static const char *const free_threaded[3] = { "whole heap",
	    "whole heap (explicit gen 1)", "full (explicit)" };

	if (m == GC_MODEL_INCREMENTAL && gen < 3)
		return incremental[gen];
	if (m == GC_MODEL_FREE_THREADED && gen < 3)
		return free_threaded[gen];
	return gen < PROTO_MAX_GEN ? plain[gen] : "generation ?";
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
