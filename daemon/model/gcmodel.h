/*
 * gcmodel.h: what each collector model of CPython (enum proto_gc_model,
 * declared by the agent in its HELLO) means to gcmond: its name, the
 * label of each generation, which collections trace the old objects,
 * which generation a storm of full collections counts, and which
 * gc.set_threshold() values the interpreter reads. The one home of these
 * facts: json.c, rules.c, alerts.c and agg.c ask here and never test a
 * model or a generation number themselves. No I/O, no state.
 *
 *   classic        3.10-3.13 and 3.14.5+ with the GIL: three generations;
 *                  automatic collections of any generation; a full
 *                  (gen 2) collection traces every object.
 *   incremental    3.14.0-3.14.4: every automatic collection is reported
 *                  as generation 1 (the young objects and an increment of
 *                  the old ones); generation 2 is only gc.collect() (full,
 *                  explicit); generation 0 only gc.collect(0); threshold0
 *                  sets how often it runs, threshold1 how fast the old
 *                  generation is scanned, threshold2 is ignored.
 *   free-threaded  3.13t/3.14t: one stop-the-world collection of the whole
 *                  heap, reported as generation 0 when automatic (1 or 2
 *                  only from gc.collect()); only threshold0 is read.
 * A scope (run, host) whose processes declare several models is "mixed"
 * and gets the plain "generation N" labels.
 */
#ifndef GCMON_GCMODEL_H
#define GCMON_GCMODEL_H

#include "protocol.h"

/* Beyond enum proto_gc_model: what a scope's set of models comes to. */
#define GCMODEL_MIXED		0xfeu	/* several models in one scope */
#define GCMODEL_UNKNOWN		0xffu	/* none, or a value we do not know */

/* The bit of model m in a scope's set (agg_sum.models); unknown values
 * share one bit. */
unsigned gcmodel_bit(unsigned m);
/* The model a set of bits stands for: one model, GCMODEL_MIXED or
 * GCMODEL_UNKNOWN (empty, or only unknown values). */
unsigned gcmodel_of_bits(unsigned bits);

/* "classic", "incremental", "free-threaded", "mixed" or "unknown". */
const char *gcmodel_name(unsigned m);
/* The label of generation gen under model m (static): "generation 1" on
 * classic, "young+incremental" for generation 1 on incremental. */
const char *gcmodel_gen_label(unsigned m, unsigned gen);
/* 1 when a collection of generation gen traces the old objects (the
 * collections whose copy-on-write a forked worker pays): classic, its
 * oldest of ngen; incremental, 1 (an increment) and 2; free-threaded,
 * every collection. */
int gcmodel_traces_old(unsigned m, unsigned gen, unsigned ngen);
/* What the collections of gcmodel_traces_old are called in a sentence:
 * "gen-2" (classic, mixed, unknown), "old-generation (increment or
 * full)", "whole-heap". */
const char *gcmodel_old_name(unsigned m);
/* 1 when automatic collections reach the full generation (classic, or a
 * model not known), 0 when only gc.collect() does (incremental,
 * free-threaded): a storm of them is the program's own calls. */
int gcmodel_auto_full(unsigned m);
/* How many gc.set_threshold() values the interpreter reads: 3 classic
 * (or unknown), 2 incremental, 1 free-threaded. */
unsigned gcmodel_nthresholds(unsigned m);
/* The generation automatic collections are reported as, whose rate the
 * threshold advice reads: 0 classic and free-threaded, 1 incremental. */
unsigned gcmodel_auto_gen(unsigned m);

#endif /* GCMON_GCMODEL_H */
