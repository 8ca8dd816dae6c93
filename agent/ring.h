/*
 * ring.h: the agent's single-producer single-consumer ring of GC event
 * records. The producer is the gc.callbacks callback (under the GIL, or
 * one thread at a time in a stop-the-world free-threaded collection); the
 * consumer is the flusher thread. Used by _gcmon.c, flusher.c and
 * tests/unit/check_ring.c. Never allocates, locks or blocks: a full ring
 * refuses the record and the caller counts it as dropped.
 */
#ifndef GCMON_RING_H
#define GCMON_RING_H

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "codec.h"

#define RING_MIN_CAPACITY	2u
#define RING_MAX_CAPACITY	(1u << 24)

struct ring {
	/* Written by the producer only; released after the slot is filled. */
	_Atomic uint64_t head;
	char pad_head[64 - sizeof(uint64_t)];
	/* Written by the consumer only; released after the slot is read. */
	_Atomic uint64_t tail;
	char pad_tail[64 - sizeof(uint64_t)];
	uint32_t mask;		/* capacity - 1; capacity is a power of 2 */
	struct proto_event *slots;
};

/* The power of 2 at or above want, within the ring's limits. */
static inline uint32_t ring_round_capacity(uint64_t want)
{
	uint32_t cap = RING_MIN_CAPACITY;

	while (cap < want && cap < RING_MAX_CAPACITY)
		cap <<= 1;
	return cap;
}

/* 0, or -ENOMEM. capacity is rounded up to a power of 2. */
static inline int ring_init(struct ring *r, uint64_t capacity)
{
	uint32_t cap = ring_round_capacity(capacity);

	r->slots = calloc(cap, sizeof *r->slots);
	if (r->slots == NULL)
		return -ENOMEM;
	r->mask = cap - 1;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	return 0;
}

static inline void ring_fini(struct ring *r)
{
	free(r->slots);
	r->slots = NULL;
}

static inline uint32_t ring_capacity(const struct ring *r)
{
	return r->mask + 1;
}

/*
 * Empties the ring. Only when neither side can run: at init, or in a
 * forked child, where the one thread left is the one that forked.
 */
static inline void ring_reset(struct ring *r)
{
	atomic_store_explicit(&r->head, 0, memory_order_relaxed);
	atomic_store_explicit(&r->tail, 0, memory_order_relaxed);
}

/* Producer. 0, or -ENOBUFS when full (the record is not stored). */
static inline int ring_push(struct ring *r, const struct proto_event *e)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	if (head - tail > r->mask)
		return -ENOBUFS;
	r->slots[head & r->mask] = *e;
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	return 0;
}

/* Consumer: moves up to max records into out, oldest first; the count. */
static inline uint32_t ring_pop(struct ring *r, struct proto_event *out,
    uint32_t max)
{
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t avail = head - tail;
	uint32_t n, i;

	n = avail < max ? (uint32_t)avail : max;
	for (i = 0; i < n; i++)
		out[i] = r->slots[(tail + i) & r->mask];
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
	return n;
}

/* Records waiting (either side; a snapshot). */
static inline uint64_t ring_count(struct ring *r)
{
	uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);

	return head - tail;
}

#endif /* GCMON_RING_H */
