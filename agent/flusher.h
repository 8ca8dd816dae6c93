/*
 * flusher.h: the agent's native sender thread. Called by _gcmon.c: start
 * it once counting begins, stop it at interpreter exit, and drive it
 * through fork. The thread never takes the GIL and never calls Python;
 * none of these functions may be called from the GC callback.
 */
#ifndef GCMON_FLUSHER_H
#define GCMON_FLUSHER_H

#include <stddef.h>
#include <stdint.h>

struct flusher_stats {
	int running;
	int connected;
	uint32_t reconnects;
	uint64_t frames_sent;
	uint64_t bytes_sent;
	uint64_t lost;		/* records queued to a connection that died */
};

/* Once, before flusher_start(): buffers. 0 or -ENOMEM. */
int flusher_init(void);
/* Starts the thread (not running yet in this process). 0 or -errno. */
int flusher_start(void);
/*
 * Asks the thread to send what is left, then frames (already encoded;
 * taken whatever the result, may be NULL), then BYE, and close; waits up
 * to timeout_ms. Call without the GIL. 0, or -ETIMEDOUT (the thread is
 * left to finish or die with the process), or -ESRCH (no thread).
 */
int flusher_stop(uint8_t *frames, size_t len, unsigned timeout_ms);
/* Wakes the thread for a flush now; waits up to timeout_ms for the ring
 * to be drained and the bytes written. 0 or -ETIMEDOUT. No GIL. */
int flusher_flush(unsigned timeout_ms);
void flusher_get_stats(struct flusher_stats *st);
/*
 * Ends the thread, keeping the connection and everything queued, and
 * waits (bounded) until the kernel no longer counts it: CPython 3.12+
 * warns at os.fork() in a process with more than one thread, and the
 * program must see the same warnings as without the agent. Called from
 * an os.register_at_fork(before=) hook; flusher_start() resumes.
 */
void flusher_pause(void);

/* pthread_atfork handlers; the child one only writes memory and close()s. */
void flusher_atfork_prepare(void);
void flusher_atfork_parent(void);
void flusher_atfork_child(void);

#endif /* GCMON_FLUSHER_H */
