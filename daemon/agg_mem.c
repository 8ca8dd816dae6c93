/*
 * agg_mem.c: part of agg.h's module, the memory of a process as gcmond
 * reads it from outside (smaps_rollup, through agents.c): its last
 * reading, the few before it, and the private memory its gen-2
 * collections unshared from its parent (agg_mem_read). Called by
 * agents.c; read by json.c, rules.c, metrics.c. No I/O, no clock (the
 * caller says when it read).
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>

#include "agg.h"
#include "gcmodel.h"

uint64_t agg_mem_shared(const struct agg_mem *m)
{
	return m->shared_clean_bytes + m->shared_dirty_bytes;
}

uint64_t agg_mem_private(const struct agg_mem *m)
{
	return m->private_clean_bytes + m->private_dirty_bytes;
}

/* Its collections that trace the old objects (gcmodel_traces_old): on
 * classic its gen 2s, on incremental its increments too. */
static uint64_t agg_gen2_count(const struct agg_proc *p)
{
	uint64_t n = 0;
	unsigned g;

	for (g = 0; g < p->ngen; g++)
		if (gcmodel_traces_old(p->gc_model, g, p->ngen))
			n += p->c[g].count;
	return n;
}

int agg_mem_due(const struct agg_proc *p)
{
	return p->mem_state == AGG_MEM_READ && p->nmem_reads > 0 &&
	    agg_gen2_count(p) > p->mem_gen2;
}

/* Private bytes of the last read of p before mono_ns (the oldest kept
 * when none is). p has been read at least once. */
static uint64_t agg_mem_before(const struct agg_proc *p, uint64_t mono_ns)
{
	unsigned n = p->nmem_reads < AGG_MEM_READS ? p->nmem_reads :
	    AGG_MEM_READS, i, k = 0;

	for (i = 1; i <= n; i++) {
		k = (p->nmem_reads - i) % AGG_MEM_READS;
		if (p->mem_reads[k].mono_ns < mono_ns)
			break;
	}
	return p->mem_reads[k].private_bytes;
}

void agg_mem_read(struct agg *a, struct agg_proc *p, const struct agg_mem *m,
    uint64_t mono_ns, int err, int quiet)
{
	uint64_t before, after = agg_mem_private(m);
	unsigned k;

	(void)a;
	if (err == -EACCES || err == -EPERM) {
		p->mem_state = AGG_MEM_REFUSED;
		return;
	}
	if (err < 0)
		return;
	if (!quiet) {
		/* Pages half copied: the figures, not a before or after. */
		p->mem = *m;
		p->mem_state = AGG_MEM_READ;
		return;
	}
	if (agg_mem_due(p) && p->origin == ORIGIN_FORK) {
		/* Its start unknown (the ring dropped the event): the last
		 * read is the best "before" there is. */
		before = agg_mem_before(p, p->mem_gc_start_ns != 0 ?
		    p->mem_gc_start_ns : UINT64_MAX);
		if (after > before)
			p->unshared_by_gc_bytes += after - before;
	}
	k = p->nmem_reads++ % AGG_MEM_READS;
	p->mem_reads[k].mono_ns = mono_ns;
	p->mem_reads[k].private_bytes = after;
	p->mem = *m;
	p->mem_gen2 = agg_gen2_count(p);
	p->mem_gc_start_ns = 0;
	p->mem_state = AGG_MEM_READ;
}

