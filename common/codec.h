/*
 * codec.h: bounds-checked encoder and decoder of the frames specified in
 * protocol.h. Used by the agent (encode HELLO into its shared area,
 * OBJECTS/GARBAGE into its exit area), gcmond (decode those out of an
 * area through shm.c and agents.c; encode and decode CONTROL) and
 * gcmonctl/pygcprofiler (CONTROL; gcmond encodes and pygcprofiler
 * decodes WATCH_EVENTS, the binary watch). Also home of the in-memory
 * forms of a GC event and of the counters, which the shared area (shm.h)
 * holds as native structs. No I/O; the only allocation is the
 * proto_reader's buffer.
 *
 * Errors are negative errno values, each with one meaning here:
 *   -EAGAIN           need more bytes (not an error for a stream)
 *   -EMSGSIZE         frame length below the header or above the maximum
 *   -EPROTONOSUPPORT  another protocol version
 *   -ENOMSG           unknown or retired frame type
 *   -EBADMSG          payload shorter than its fields say
 *   -EPROTO           payload malformed: bytes after the last field, a
 *                     count of generations of 0 or above PROTO_MAX_GEN, a
 *                     frame of the wrong type for the decoder called
 *   -E2BIG            a count or a string above its cap
 *   -EILSEQ           a string that is not UTF-8 or holds a NUL
 *   -ENOBUFS          (encoder) the output buffer is too small
 *   -EINVAL           (encoder) an argument outside what the format holds
 *   -ENOMEM           (reader) out of memory
 *   -ERANGE           a record index past the decoded frame's
 * proto_strerror() names each one.
 */
#ifndef GCMON_CODEC_H
#define GCMON_CODEC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "protocol.h"

/* A string borrowed from a frame buffer: not NUL-terminated. */
struct proto_str {
	const char *ptr;
	uint32_t len;
};

struct frame_hdr {
	uint32_t len;		/* whole frame, header included */
	uint16_t type;
	uint8_t version;
	uint8_t flags;
};

/* A complete frame; payload is borrowed from wherever the bytes are. */
struct proto_frame {
	struct frame_hdr hdr;
	const uint8_t *payload;
	size_t payload_len;
};

/* One generation's counters, cumulative since the agent started in this
 * process (a forked child starts at zero). Also the layout of struct
 * shm_gen (shm.h), PROTO_GEN_COUNTER_SIZE bytes. */
struct proto_gen_counters {
	uint64_t count;		/* collections seen by the callback */
	uint64_t pause_ns;	/* sum of pauses */
	uint64_t max_pause_ns;	/* largest pause */
	uint64_t collected;	/* objects collected */
	uint64_t uncollectable;	/* objects found uncollectable */
};

/* The counters of a process as copied out of its area (shm_snapshot).
 * Cumulative, so the last copy is the truth: a record lost to a full ring
 * loses detail, never totals. */
struct proto_counters {
	uint64_t dropped;	/* records refused by a full ring */
	uint8_t ngen;		/* 1..PROTO_MAX_GEN */
	struct proto_gen_counters gen[PROTO_MAX_GEN];
};

struct proto_baseline {
	uint64_t collections;
	uint64_t collected;
	uint64_t uncollectable;
	uint32_t threshold;
};

struct proto_hello {
	uint32_t pid;
	uint32_t ppid;
	uint64_t start_mono_ns;
	uint64_t clock_real_ns;
	uint64_t clock_mono_ns;
	uint32_t py_hexversion;
	uint8_t origin;		/* enum proto_origin */
	uint8_t gc_model;	/* enum proto_gc_model */
	uint16_t flags;		/* PROTO_HELLO_* */
	uint32_t reconnects;	/* 0, reserved (protocol.h) */
	uint8_t ngen;
	struct proto_baseline base[PROTO_MAX_GEN];
	struct proto_str run_id;
	struct proto_str py_version;
	struct proto_str executable;
	uint32_t argc;
	struct proto_str argv[PROTO_MAX_ARGC];
	struct proto_str service;	/* with PROTO_HELLO_SERVICE only */
	/* With PROTO_HELLO_PLACE only (protocol.h). */
	uint64_t pidns_ino, pidns_dev;
	struct proto_str hostname, cgroup, pod, pod_namespace;
	/* With PROTO_HELLO_PRIOR only, ngen entries (threshold unused): what
	 * earlier areas of this process counted, inside base. */
	struct proto_baseline prior[PROTO_MAX_GEN];
};

/* One collection: the slot of the shared area's ring (shm.h),
 * PROTO_EVENT_SIZE bytes, native byte order. */
struct proto_event {
	uint64_t start_ns;	/* CLOCK_MONOTONIC at the "start" callback */
	uint64_t pause_ns;	/* "stop" minus "start" */
	uint64_t collector_ns;	/* the collector's "duration" (3.15+), or 0 */
	uint64_t collected;
	uint32_t uncollectable;
	uint16_t generation;	/* a small integer; never assume three */
	uint16_t flags;		/* PROTO_EVENT_* */
};

/* One record of a WATCH_EVENTS frame (protocol.h): a collection as the
 * watch stream carries it. */
struct proto_watch_event {
	uint32_t pid;
	uint16_t generation;
	uint8_t gc_model;	/* enum proto_gc_model */
	uint8_t flags;		/* PROTO_WATCH_* */
	uint64_t time_ns;	/* CLOCK_REALTIME, Unix ns */
	uint64_t pause_ns;
	uint64_t collector_ns;	/* with PROTO_WATCH_COLLECTOR */
	uint64_t collected;
	uint32_t uncollectable;
};

/* Decoded WATCH_EVENTS: the records stay in the frame (already
 * validated); read them with proto_watch_event_get(). */
struct proto_watch_events {
	uint32_t n;
	uint32_t rec_size;
	const uint8_t *recs;
};

struct proto_type_count {
	uint64_t count;
	struct proto_str name;
};

/* Decoded OBJECTS or GARBAGE: entries stay in the frame (already
 * validated); walk them with proto_types_next(). */
struct proto_types {
	uint64_t total;
	uint32_t n;
	const uint8_t *entries;
	size_t entries_len;
};

/* The end of a process as agents.c hands it to agg_bye(): when it ended
 * and its final counters. No longer a frame (BYE is retired). */
struct proto_bye {
	uint64_t mono_ns;
	struct proto_counters counters;
};

const char *proto_strerror(int err);
const char *proto_frame_type_name(unsigned type);

/* 0: *h valid and its length within [PROTO_HDR_SIZE, max_frame]; or one
 * of -EAGAIN, -EMSGSIZE, -EPROTONOSUPPORT, -ENOMSG. max_frame of 0 means
 * PROTO_MAX_FRAME. */
int proto_decode_header(const uint8_t *buf, size_t avail, size_t max_frame,
    struct frame_hdr *h);

/* Payload decoders: f is a frame of the matching type. Pointers in the
 * result borrow from f->payload. 0 or a negative errno as above. */
int proto_decode_hello(const struct proto_frame *f, struct proto_hello *out);
int proto_decode_types(const struct proto_frame *f, struct proto_types *out);
/* CONTROL: *json and *len borrow the payload (not NUL-terminated). */
int proto_decode_control(const struct proto_frame *f, const char **json,
    size_t *len);

/* WATCH_EVENTS: -EBADMSG (fewer bytes than nrec records), -EPROTO (no
 * record, a record below PROTO_WATCH_REC_SIZE, bytes after the last),
 * -E2BIG (nrec or rec_size above its cap). */
int proto_decode_watch_events(const struct proto_frame *f,
    struct proto_watch_events *out);
/* Record i of a decoded frame. 0, or -ERANGE when i is not below b->n. */
int proto_watch_event_get(const struct proto_watch_events *b, uint32_t i,
    struct proto_watch_event *out);

/* Next entry of a decoded OBJECTS/GARBAGE frame; *off starts at 0.
 * 1: *out set; 0: no more. */
int proto_types_next(const struct proto_types *t, size_t *off,
    struct proto_type_count *out);

/* Encoders write one whole frame into buf and return its length, or
 * -ENOBUFS (nothing usable written) or -EINVAL. */
ssize_t proto_encode_hello(uint8_t *buf, size_t cap,
    const struct proto_hello *h);
ssize_t proto_encode_types(uint8_t *buf, size_t cap, enum proto_frame_type type,
    uint64_t total, const struct proto_type_count *entries, uint32_t n);
ssize_t proto_encode_control(uint8_t *buf, size_t cap, const char *json,
    size_t len);
/* n (1..PROTO_WATCH_MAX_RECS) records of PROTO_WATCH_REC_SIZE bytes. */
ssize_t proto_encode_watch_events(uint8_t *buf, size_t cap,
    const struct proto_watch_event *ev, uint32_t n);
/* The length of that frame. */
size_t proto_watch_events_size(uint32_t n);

/* How many of the len bytes at s a cap of cap bytes keeps: all of them
 * when they fit, else the most that end where a character starts, so
 * that cut UTF-8 stays UTF-8. The one rule of the protocol's caps: the
 * agent's strings (PROTO_MAX_*) and gcmond's copies of them. */
size_t proto_utf8_cut(const char *s, size_t len, size_t cap);

/* The label of generation gen under collector model m (enum
 * proto_gc_model; any other value: the plain labels), static:
 * "generation 1", or "young+incremental" for generation 1 on incremental.
 * The one table of them: gcmond's labels (gcmodel_gen_label) and a
 * client decoding WATCH_EVENTS both read it. */
const char *proto_gen_label(unsigned m, unsigned gen);

/*
 * Incremental stream decoding: feed whatever arrived, take whole frames.
 * A frame split at any byte boundary decodes the same. The buffer never
 * holds more than one maximal frame plus one feed; a header announcing a
 * frame above max_frame is reported before anything is buffered for it.
 */
struct proto_reader {
	uint8_t *buf;
	size_t len;		/* bytes held */
	size_t off;		/* start of the next frame within buf */
	size_t cap;
	size_t max_frame;
	int err;		/* sticky: once a stream is bad, it stays bad */
};

void proto_reader_init(struct proto_reader *r, size_t max_frame);
void proto_reader_fini(struct proto_reader *r);
/* Appends n bytes: 0, -ENOMEM, or the sticky error of an earlier frame. */
int proto_reader_feed(struct proto_reader *r, const void *data, size_t n);
/* 1: *f is the next frame, valid until the next feed; 0: need more;
 * <0: the stream is bad (the same error again on every later call). */
int proto_reader_next(struct proto_reader *r, struct proto_frame *f);
/* Bytes buffered and not yet returned as frames. */
size_t proto_reader_pending(const struct proto_reader *r);

#endif /* GCMON_CODEC_H */
