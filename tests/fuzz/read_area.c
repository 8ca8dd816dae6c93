/*
 * read_area.c: drives common/shm.c's readers over one area built from
 * arbitrary bytes, as daemon/ingest/agents.c uses them: check, HELLO, snapshot,
 * start tail, drain to the head in batches, validate each record. Test
 * code only: one thread, static scratch space.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "read_area.h"
#include "shm.h"

static _Alignas(64) uint8_t ra_map[READ_AREA_MAX];
static uint8_t ra_hello_buf[SHM_HELLO_CAP];
static struct proto_hello ra_hello;
static struct proto_event ra_ev[64];
static volatile uint64_t ra_sink;

/* The stack ring and the names region, as agents_stacks.c reads them. */
static void read_area_stacks(const struct shm_info *in,
    const struct shm_snapshot *snap)
{
	static struct shm_name name;
	struct shm_stack st;
	uint64_t tail = shm_start_stack_tail(ra_map, in);
	uint32_t off = 0, prev;
	unsigned i;
	int n;

	if ((uint64_t)in->stack_off + (uint64_t)in->stack_cap *
	    sizeof(struct shm_stack) > in->size ||
	    (uint64_t)in->names_off + in->names_cap > in->size)
		abort();	/* check passed what it must refuse */
	for (i = 0; i <= in->stack_cap; i++) {
		n = shm_drain_stack(ra_map, in, &tail, UINT64_MAX, &st);
		if (n < 0)
			break;
		if (n > 0 && st.depth > SHM_STACK_DEPTH)
			abort();
		ra_sink += (uint64_t)n;
	}
	for (i = 0; i <= in->names_cap / sizeof(struct shm_name_rec); i++) {
		prev = off;
		if ((n = shm_next_name(ra_map, in, snap->names_len, &off,
		    &name)) <= 0)
			break;
		if (off <= prev || off > in->names_cap ||
		    strlen(name.file) > SHM_NAME_MAX)
			abort();
		ra_sink += name.code_id;
	}
}

int read_area(const uint8_t *data, size_t len)
{
	struct shm_snapshot snap;
	struct shm_info in;
	uint64_t claimed = 0, tail, head;
	size_t size = len;
	int err, n, i;

	if (len > READ_AREA_MAX)
		return -EMSGSIZE;
	if (len >= 24)
		memcpy(&claimed, data + 16, sizeof claimed);	/* total_size */
	if (claimed > size && claimed <= READ_AREA_MAX)
		size = (size_t)claimed;
	memset(ra_map, 0, size);
	memcpy(ra_map, data, len);
	if ((err = shm_check(ra_map, size, &in)) < 0)
		return err;
	if (in.ring_off + (uint64_t)in.ring_cap * sizeof(struct proto_event) >
	    size || in.hello_off + (uint64_t)in.hello_len > size ||
	    in.hello_len > SHM_HELLO_CAP)
		abort();	/* check passed what it must refuse */
	if (shm_read_hello(ra_map, &in, ra_hello_buf, &ra_hello) == 0)
		ra_sink += ra_hello.argc + ra_hello.ngen;
	shm_snapshot(ra_map, &snap);
	if (snap.counters.ngen < 1 || snap.counters.ngen > PROTO_MAX_GEN)
		abort();
	head = snap.head;
	tail = shm_start_tail(ra_map, &in, head);
	if (tail > head || head - tail > in.ring_cap)
		abort();
	do {
		n = shm_drain(ra_map, &in, head, &tail, ra_ev, 64);
		if (n < 0)
			abort();	/* start_tail gave a bound drain refuses */
		for (i = 0; i < n; i++)
			ra_sink += (uint64_t)shm_event_valid(&ra_ev[i]);
	} while (n == 64);
	if (tail != head)
		abort();
	read_area_stacks(&in, &snap);
	return 0;
}
