/*
 * flusher.c: the agent's sender thread. Drains the ring in batches into
 * EVENTS frames, sends a SAMPLE every interval, and keeps a non-blocking
 * connection to gcmond, reconnecting with exponential backoff and sending
 * HELLO and the cumulative counters again so that totals stay exact.
 * Called by _gcmon.c. Never takes the GIL, never calls Python, never
 * blocks the program: a missing, slow or dead daemon costs event detail
 * (counted), never a hang or a signal.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "codec.h"
#include "flusher.h"

#define FLUSHER_BATCH		4096u		/* records per EVENTS frame */
#define FLUSHER_OUT_CAP		(2u << 20)	/* bytes queued for the socket */
#define FLUSHER_MAX_PENDING	64u		/* frames queued */
#define FLUSHER_BACKOFF_MIN_NS	(50ull * 1000000)
#define FLUSHER_BACKOFF_MAX_NS	(2000ull * 1000000)
#define FLUSHER_SMALL_BUF	1024u

struct flusher_pending {
	size_t end;		/* offset in out just past this frame */
	uint32_t nrec;
};

struct flusher {
	pthread_mutex_t lock;
	pthread_cond_t wake;	/* to the thread */
	pthread_cond_t done;	/* from the thread: final flush, flush request */
	pthread_t thread;
	int running;		/* a thread exists in this process */
	int stop;
	int pause;		/* end the thread without the final flush */
	int finished;
	uint64_t flush_req, flush_done;
	int fd;			/* changed under lock; -1 when not connected */
	uint8_t *extra;		/* frames to send before BYE */
	size_t extra_len;

	/* The thread's own state below (reset in a forked child). */
	uint8_t *out;
	size_t out_len, out_off;
	struct flusher_pending pending[FLUSHER_MAX_PENDING];
	unsigned npending;
	struct proto_event *batch;
	int ever_connected;
	uint64_t backoff_ns, next_connect_ns, next_sample_ns;
	struct proto_counters last;
	_Atomic uint64_t lost;
	_Atomic uint32_t reconnects;
	_Atomic int connected;
	_Atomic uint64_t frames_sent, bytes_sent;
};

static struct flusher fl = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.wake = PTHREAD_COND_INITIALIZER,
	.done = PTHREAD_COND_INITIALIZER,
	.fd = -1,
};

static uint64_t flusher_mono(void)
{
	return agent_clock_ns(CLOCK_MONOTONIC);
}

/* Timed waits on the monotonic clock: a wall-clock step is no wake-up.
 * Memory writes only, so the forked child may call it too. */
static void flusher_init_conds(void)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&fl.wake, &ca);
	pthread_cond_init(&fl.done, &ca);
	pthread_condattr_destroy(&ca);
}

int flusher_init(void)
{
	if (fl.out != NULL)
		return 0;
	fl.out = malloc(FLUSHER_OUT_CAP);
	fl.batch = calloc(FLUSHER_BATCH, sizeof *fl.batch);
	if (fl.out == NULL || fl.batch == NULL) {
		free(fl.out);
		free(fl.batch);
		fl.out = NULL;
		fl.batch = NULL;
		return -ENOMEM;
	}
	pthread_cond_destroy(&fl.wake);
	pthread_cond_destroy(&fl.done);
	flusher_init_conds();
	fl.backoff_ns = FLUSHER_BACKOFF_MIN_NS;
	return 0;
}

static void flusher_abs_time(struct timespec *ts, uint64_t mono_ns)
{
	ts->tv_sec = (time_t)(mono_ns / 1000000000u);
	ts->tv_nsec = (long)(mono_ns % 1000000000u);
}

/* Queue one encoded frame (already in out at out_len); nrec for lost. */
static void flusher_commit(size_t len, uint32_t nrec)
{
	fl.out_len += len;
	fl.pending[fl.npending].end = fl.out_len;
	fl.pending[fl.npending].nrec = nrec;
	fl.npending++;
}

static int flusher_room(size_t need)
{
	return fl.npending < FLUSHER_MAX_PENDING &&
	    need <= FLUSHER_OUT_CAP - fl.out_len;
}

static void flusher_disconnect(void)
{
	uint64_t lost = 0;
	unsigned i;

	for (i = 0; i < fl.npending; i++) {
		if (fl.pending[i].end > fl.out_off)
			lost += fl.pending[i].nrec;
	}
	atomic_fetch_add_explicit(&fl.lost, lost, memory_order_relaxed);
	fl.out_len = fl.out_off = 0;
	fl.npending = 0;
	pthread_mutex_lock(&fl.lock);
	if (fl.fd >= 0)
		close(fl.fd);	/* nothing to do if it fails */
	fl.fd = -1;
	pthread_mutex_unlock(&fl.lock);
	atomic_store_explicit(&fl.connected, 0, memory_order_relaxed);
	fl.next_connect_ns = flusher_mono() + fl.backoff_ns;
}

static void flusher_counters(struct proto_counters *c)
{
	agent_counters_snapshot(c);
	c->dropped += atomic_load_explicit(&fl.lost, memory_order_relaxed);
}

/* EVENTS with the cumulative counters and up to nrec records. */
static int flusher_queue_events(const struct proto_event *rec, uint32_t nrec)
{
	struct proto_counters c;
	ssize_t n;

	flusher_counters(&c);
	n = proto_encode_events(fl.out + fl.out_len,
	    FLUSHER_OUT_CAP - fl.out_len, &c, rec, nrec);
	if (n < 0)
		return (int)n;
	flusher_commit((size_t)n, nrec);
	fl.last = c;
	return 0;
}

static int flusher_queue_hello(void)
{
	struct proto_hello *h = &agent_state.id.hello;
	ssize_t n;

	h->reconnects = atomic_load_explicit(&fl.reconnects,
	    memory_order_relaxed);
	h->clock_real_ns = agent_clock_ns(CLOCK_REALTIME);
	h->clock_mono_ns = flusher_mono();
	n = proto_encode_hello(fl.out + fl.out_len,
	    FLUSHER_OUT_CAP - fl.out_len, h);
	if (n < 0)
		return (int)n;
	flusher_commit((size_t)n, 0);
	return 0;
}

static int flusher_connect(void)
{
	struct sockaddr_un sa;
	size_t plen = strlen(agent_state.config.socket_path);
	int fd, err;

	if (plen >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, agent_state.config.socket_path, plen);

	pthread_mutex_lock(&fl.lock);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		goto out_unlock;
	}
	/* A Unix connect completes at once or fails (EAGAIN: backlog full). */
	while (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (errno == EINTR)
			continue;
		err = -errno;
		goto out_close;
	}
	fl.fd = fd;
	pthread_mutex_unlock(&fl.lock);

	if (fl.ever_connected)
		atomic_fetch_add_explicit(&fl.reconnects, 1,
		    memory_order_relaxed);
	fl.ever_connected = 1;
	fl.backoff_ns = FLUSHER_BACKOFF_MIN_NS;
	atomic_store_explicit(&fl.connected, 1, memory_order_relaxed);
	fl.out_len = fl.out_off = 0;
	fl.npending = 0;
	err = flusher_queue_hello();
	if (err == 0)
		err = flusher_queue_events(NULL, 0);
	if (err < 0) {
		flusher_disconnect();
		return err;
	}
	return 0;
out_close:
	close(fd);
out_unlock:
	pthread_mutex_unlock(&fl.lock);
	return err;
}

static void flusher_try_connect(uint64_t now)
{
	if (fl.fd >= 0 || now < fl.next_connect_ns)
		return;
	if (flusher_connect() == 0)
		return;
	fl.next_connect_ns = now + fl.backoff_ns;
	fl.backoff_ns *= 2;
	if (fl.backoff_ns > FLUSHER_BACKOFF_MAX_NS)
		fl.backoff_ns = FLUSHER_BACKOFF_MAX_NS;
}

/* The daemon never writes to an agent: readable means closed or gone. */
static void flusher_check_peer(void)
{
	struct pollfd p = { .fd = fl.fd, .events = POLLIN };
	uint8_t junk[256];
	ssize_t n;

	if (fl.fd < 0 || poll(&p, 1, 0) <= 0)
		return;
	if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) {
		flusher_disconnect();
		return;
	}
	n = recv(fl.fd, junk, sizeof junk, MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		flusher_disconnect();
}

/*
 * Writes queued bytes. deadline 0: only what goes without waiting;
 * otherwise poll until everything is written or deadline passes.
 * 0 when out is empty, -EAGAIN when bytes remain, -EPIPE when the
 * connection was lost.
 */
static int flusher_write(uint64_t deadline)
{
	struct pollfd p;
	uint64_t now;
	ssize_t n;
	unsigned i, k;

	while (fl.fd >= 0 && fl.out_off < fl.out_len) {
		n = send(fl.fd, fl.out + fl.out_off, fl.out_len - fl.out_off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			fl.out_off += (size_t)n;
			atomic_fetch_add_explicit(&fl.bytes_sent, (uint64_t)n,
			    memory_order_relaxed);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (deadline == 0)
				break;
			now = flusher_mono();
			if (now >= deadline)
				break;
			p.fd = fl.fd;
			p.events = POLLOUT;
			p.revents = 0;
			if (poll(&p, 1, (int)((deadline - now) / 1000000u) + 1) < 0 &&
			    errno != EINTR)
				break;
			continue;
		}
		flusher_disconnect();	/* EPIPE, ECONNRESET: an answer */
		return -EPIPE;
	}
	if (fl.fd < 0)
		return -EPIPE;
	for (k = 0; k < fl.npending && fl.pending[k].end <= fl.out_off; k++)
		;
	atomic_fetch_add_explicit(&fl.frames_sent, k, memory_order_relaxed);
	for (i = k; i < fl.npending; i++)
		fl.pending[i - k] = fl.pending[i];
	fl.npending -= k;
	if (fl.out_off == fl.out_len) {
		fl.out_off = fl.out_len = 0;
		fl.npending = 0;
		return 0;
	}
	if (fl.out_off > FLUSHER_OUT_CAP / 2) {
		memmove(fl.out, fl.out + fl.out_off, fl.out_len - fl.out_off);
		for (i = 0; i < fl.npending; i++)
			fl.pending[i].end -= fl.out_off;
		fl.out_len -= fl.out_off;
		fl.out_off = 0;
	}
	return -EAGAIN;
}

static int flusher_counters_changed(void)
{
	struct proto_counters c;

	flusher_counters(&c);
	return memcmp(&c, &fl.last, sizeof c) != 0;
}

/*
 * Ring -> EVENTS frames while there is room. With deadline, writes as it
 * goes so the whole ring can be sent; without, stops when out is full
 * and the ring fills up (counted as dropped) while the daemon is slow.
 */
static void flusher_drain(uint64_t deadline)
{
	size_t need = proto_events_size(PROTO_MAX_GEN, FLUSHER_BATCH);
	uint32_t n;

	while (fl.fd >= 0) {
		if (!flusher_room(need)) {
			if (deadline == 0 || flusher_write(deadline) < 0 ||
			    !flusher_room(need))
				return;
		}
		n = ring_pop(&agent_state.ring, fl.batch, FLUSHER_BATCH);
		if (n == 0 && !flusher_counters_changed())
			return;
		if (flusher_queue_events(fl.batch, n) < 0)
			return;	/* cannot happen: room was checked */
		if (n < FLUSHER_BATCH)
			return;
	}
}

static int flusher_read_sample(struct proto_sample *s)
{
	char buf[128];
	unsigned long long size, resident;
	struct rusage ru;
	ssize_t n;
	int fd;

	memset(s, 0, sizeof *s);
	s->mono_ns = flusher_mono();
	fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			if (sscanf(buf, "%llu %llu", &size, &resident) == 2)
				s->rss_bytes = resident *
				    (unsigned long long)sysconf(_SC_PAGESIZE);
		}
	}
	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return -errno;
	s->cpu_user_ns = (uint64_t)ru.ru_utime.tv_sec * 1000000000u +
	    (uint64_t)ru.ru_utime.tv_usec * 1000u;
	s->cpu_sys_ns = (uint64_t)ru.ru_stime.tv_sec * 1000000000u +
	    (uint64_t)ru.ru_stime.tv_usec * 1000u;
	return 0;
}

static void flusher_sample(uint64_t now)
{
	struct proto_sample s;
	ssize_t n;

	if (now < fl.next_sample_ns)
		return;
	fl.next_sample_ns = now + agent_state.config.interval_ns;
	if (fl.fd < 0 || !flusher_room(FLUSHER_SMALL_BUF) ||
	    flusher_read_sample(&s) < 0)
		return;
	n = proto_encode_sample(fl.out + fl.out_len,
	    FLUSHER_OUT_CAP - fl.out_len, &s);
	if (n > 0)
		flusher_commit((size_t)n, 0);
}

static void flusher_work(void)
{
	uint64_t now = flusher_mono();

	flusher_try_connect(now);
	flusher_check_peer();
	flusher_drain(0);
	flusher_sample(now);
	flusher_write(0);
	if (fl.fd < 0)	/* lost while writing: try again soon */
		flusher_try_connect(flusher_mono());
}

/*
 * At exit, one more chance to reach the daemon. A daemon that is there
 * but busy (its accept backlog full: EAGAIN) is tried again until the
 * exit deadline; no daemon at all (ENOENT, ECONNREFUSED) is not waited
 * for, so a program without one exits at once.
 */
static void flusher_final_connect(uint64_t deadline)
{
	struct timespec ts = { 0, 10 * 1000000 };

	while (flusher_connect() == -EAGAIN && flusher_mono() < deadline)
		nanosleep(&ts, NULL);
}

static void flusher_final(uint8_t *extra, size_t extra_len)
{
	uint64_t deadline = flusher_mono() +
	    (uint64_t)agent_state.config.exit_timeout_ms * 1000000u;
	struct proto_bye bye;
	ssize_t n;

	if (fl.fd < 0)
		flusher_final_connect(deadline);
	flusher_check_peer();
	flusher_drain(deadline);
	if (fl.fd >= 0 && extra_len > 0 && extra_len <= FLUSHER_OUT_CAP) {
		if (!flusher_room(extra_len))
			flusher_write(deadline);
		if (fl.fd >= 0 && flusher_room(extra_len)) {
			memcpy(fl.out + fl.out_len, extra, extra_len);
			flusher_commit(extra_len, 0);
		}
	}
	/* A last sample: CPU time and RSS then cover the whole process, so
	 * GC time as a share of CPU time is not read against a stale one. */
	fl.next_sample_ns = 0;
	flusher_sample(flusher_mono());
	if (fl.fd >= 0 && !flusher_room(FLUSHER_SMALL_BUF))
		flusher_write(deadline);
	if (fl.fd >= 0 && flusher_room(FLUSHER_SMALL_BUF)) {
		bye.mono_ns = flusher_mono();
		flusher_counters(&bye.counters);
		n = proto_encode_bye(fl.out + fl.out_len,
		    FLUSHER_OUT_CAP - fl.out_len, &bye);
		if (n > 0)
			flusher_commit((size_t)n, 0);
	}
	flusher_write(deadline);
	if (fl.fd >= 0) {
		pthread_mutex_lock(&fl.lock);
		close(fl.fd);
		fl.fd = -1;
		pthread_mutex_unlock(&fl.lock);
		atomic_store_explicit(&fl.connected, 0, memory_order_relaxed);
	}
	free(extra);
}

static uint64_t flusher_next_wake(uint64_t now)
{
	uint64_t t = now + (uint64_t)agent_state.config.flush_ms * 1000000u;

	if (fl.fd >= 0 && fl.next_sample_ns < t)
		t = fl.next_sample_ns;
	if (fl.fd < 0 && fl.next_connect_ns < t)
		t = fl.next_connect_ns;
	if (fl.out_off < fl.out_len && now + 10000000u < t)
		t = now + 10000000u;	/* bytes waiting on a slow daemon */
	return t > now ? t : now;
}

static void *flusher_main(void *arg)
{
	struct timespec ts;
	uint64_t req, now;
	uint8_t *extra;
	size_t extra_len;

	(void)arg;
	pthread_mutex_lock(&fl.lock);
	for (;;) {
		if (fl.stop)
			break;
		if (fl.pause) {
			fl.finished = 1;
			pthread_mutex_unlock(&fl.lock);
			return NULL;
		}
		req = fl.flush_req;
		pthread_mutex_unlock(&fl.lock);
		flusher_work();
		pthread_mutex_lock(&fl.lock);
		if (req != fl.flush_done && ring_count(&agent_state.ring) == 0 &&
		    fl.out_off == fl.out_len) {
			fl.flush_done = req;
			pthread_cond_broadcast(&fl.done);
		}
		if (fl.stop || fl.pause || fl.flush_req != req)
			continue;
		now = flusher_mono();
		flusher_abs_time(&ts, flusher_next_wake(now));
		pthread_cond_timedwait(&fl.wake, &fl.lock, &ts);
	}
	extra = fl.extra;
	extra_len = fl.extra_len;
	fl.extra = NULL;
	fl.extra_len = 0;
	pthread_mutex_unlock(&fl.lock);

	flusher_final(extra, extra_len);

	pthread_mutex_lock(&fl.lock);
	fl.finished = 1;
	pthread_cond_broadcast(&fl.done);
	pthread_mutex_unlock(&fl.lock);
	return NULL;
}

int flusher_start(void)
{
	sigset_t all, old;
	int err;

	if (fl.out == NULL)
		return -EINVAL;
	pthread_mutex_lock(&fl.lock);
	if (fl.running) {
		pthread_mutex_unlock(&fl.lock);
		return -EALREADY;
	}
	fl.stop = 0;
	fl.pause = 0;
	fl.finished = 0;
	fl.next_connect_ns = 0;
	fl.next_sample_ns = flusher_mono() + agent_state.config.interval_ns;
	/* Signals stay with the program's threads, not this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&fl.thread, NULL, flusher_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err == 0)
		fl.running = 1;
	pthread_mutex_unlock(&fl.lock);
	return err;
}

/* Threads of this process as the kernel counts them (field 20 of
 * /proc/self/stat, what CPython reads), or -1. */
static long flusher_nthreads(void)
{
	char buf[1024], *p;
	long n = -1;
	ssize_t len;
	int fd, field;

	if ((fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	len = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (len <= 0)
		return -1;
	buf[len] = '\0';
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	/* Field 3 follows ") "; count spaces up to field 20. */
	for (field = 2; *p != '\0' && field < 20; p++)
		if (*p == ' ')
			field++;
	if (field == 20)
		n = strtol(p, NULL, 10);
	return n;
}

void flusher_pause(void)
{
	struct timespec ts = { 0, 50000 };
	long before;
	int i;

	pthread_mutex_lock(&fl.lock);
	if (!fl.running || fl.stop) {
		pthread_mutex_unlock(&fl.lock);
		return;
	}
	fl.pause = 1;
	pthread_cond_signal(&fl.wake);
	pthread_mutex_unlock(&fl.lock);
	before = flusher_nthreads();
	pthread_join(fl.thread, NULL);
	pthread_mutex_lock(&fl.lock);
	fl.running = 0;
	fl.pause = 0;
	fl.finished = 0;
	pthread_mutex_unlock(&fl.lock);
	/* join returns when the thread clears its tid, a little before the
	 * kernel stops counting it; wait for that, at most ~50 ms. */
	for (i = 0; before > 0 && i < 1000 && flusher_nthreads() >= before; i++)
		nanosleep(&ts, NULL);
}

int flusher_stop(uint8_t *frames, size_t len, unsigned timeout_ms)
{
	struct timespec ts;
	int err = 0;

	pthread_mutex_lock(&fl.lock);
	if (!fl.running || fl.stop) {
		pthread_mutex_unlock(&fl.lock);
		free(frames);
		return -ESRCH;
	}
	fl.extra = frames;
	fl.extra_len = frames != NULL ? len : 0;
	fl.stop = 1;
	pthread_cond_signal(&fl.wake);
	/* The thread bounds its own work by the same timeout; a little more
	 * here lets it close the socket itself. */
	flusher_abs_time(&ts, flusher_mono() +
	    ((uint64_t)timeout_ms + 50) * 1000000u);
	while (!fl.finished && err == 0)
		err = -pthread_cond_timedwait(&fl.done, &fl.lock, &ts);
	if (fl.finished) {
		pthread_mutex_unlock(&fl.lock);
		pthread_join(fl.thread, NULL);
		pthread_mutex_lock(&fl.lock);
		fl.running = 0;
		err = 0;
	}
	pthread_mutex_unlock(&fl.lock);
	return err;
}

int flusher_flush(unsigned timeout_ms)
{
	struct timespec ts;
	uint64_t req;
	int err = 0;

	pthread_mutex_lock(&fl.lock);
	if (!fl.running || fl.stop) {
		pthread_mutex_unlock(&fl.lock);
		return -ESRCH;
	}
	req = ++fl.flush_req;
	pthread_cond_signal(&fl.wake);
	flusher_abs_time(&ts, flusher_mono() + (uint64_t)timeout_ms * 1000000u);
	while (fl.flush_done < req && !fl.finished && err == 0)
		err = -pthread_cond_timedwait(&fl.done, &fl.lock, &ts);
	if (fl.flush_done >= req)
		err = 0;
	pthread_mutex_unlock(&fl.lock);
	return err;
}

void flusher_get_stats(struct flusher_stats *st)
{
	pthread_mutex_lock(&fl.lock);
	st->running = fl.running && !fl.finished;
	pthread_mutex_unlock(&fl.lock);
	st->connected = atomic_load_explicit(&fl.connected, memory_order_relaxed);
	st->reconnects = atomic_load_explicit(&fl.reconnects, memory_order_relaxed);
	st->frames_sent = atomic_load_explicit(&fl.frames_sent, memory_order_relaxed);
	st->bytes_sent = atomic_load_explicit(&fl.bytes_sent, memory_order_relaxed);
	st->lost = atomic_load_explicit(&fl.lost, memory_order_relaxed);
}

/* The lock is held across fork so the child's copy is in a known state:
 * no connect or close of the parent's thread is half done. */
void flusher_atfork_prepare(void)
{
	pthread_mutex_lock(&fl.lock);
}

void flusher_atfork_parent(void)
{
	pthread_mutex_unlock(&fl.lock);
}

/*
 * The child has one thread, the one that forked, which holds the lock.
 * Plain memory writes and close() only: a _posixsubprocess child runs
 * this and then execs. The child's thread is started from Python
 * (os.register_at_fork), where pthread_create is safe.
 */
void flusher_atfork_child(void)
{
	pthread_mutex_unlock(&fl.lock);
	/* The parent's thread may have been waiting on them. */
	flusher_init_conds();
	if (fl.fd >= 0)
		close(fl.fd);	/* the parent's connection: never written */
	fl.fd = -1;
	fl.running = 0;
	fl.stop = 0;
	fl.pause = 0;
	fl.finished = 0;
	fl.flush_req = fl.flush_done = 0;
	fl.extra = NULL;	/* the parent's to free */
	fl.extra_len = 0;
	fl.out_len = fl.out_off = 0;
	fl.npending = 0;
	fl.ever_connected = 0;
	fl.backoff_ns = FLUSHER_BACKOFF_MIN_NS;
	fl.next_connect_ns = 0;
	memset(&fl.last, 0, sizeof fl.last);
	atomic_store_explicit(&fl.lost, 0, memory_order_relaxed);
	atomic_store_explicit(&fl.reconnects, 0, memory_order_relaxed);
	atomic_store_explicit(&fl.connected, 0, memory_order_relaxed);
	atomic_store_explicit(&fl.frames_sent, 0, memory_order_relaxed);
	atomic_store_explicit(&fl.bytes_sent, 0, memory_order_relaxed);
}
