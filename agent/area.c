/*
 * area.c: the life cycle of this process's shared area (common/shm.h):
 * created when the agent starts, replaced in a forked child by the
 * pthread_atfork child handler before any Python code runs there, and
 * completed by the exit data, or ended by gcmon.stop() (a detach: final,
 * unmapped; a later load() makes the next area). Called by boot.c,
 * _gcmon.c and stacks.c (the names region); it tells stacks.c and
 * requests.c of a new segment, a new area and the exit only through
 * agent_state's on_* hooks, which _gcmon.c sets, so no call points back
 * down here.
 * The callback (callback.c) only writes into the area through
 * shm_record(). Defines agent_state. Never starts a thread, never calls
 * Python; the fork child handler allocates nothing and makes only
 * system calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"

/* In .bss, not .data: 22 KiB that an initialiser would put in the
 * file-backed segment, each page a copy-on-write fault of the file at
 * first write; zero pages cost less and only the ones written. fd is
 * set to -1 at module init (PyInit__gcmon), before anything reads it. */
struct agent agent_state;

uint64_t agent_clock_ns(int clock_id)
{
	struct timespec ts;

	clock_gettime(clock_id, &ts);	/* cannot fail for these clocks */
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Our own start time in clock ticks since boot, as gcmond will read it. */
static int area_start_ticks(uint64_t *ticks)
{
	char buf[2048];
	ssize_t n;
	int fd, err;

	if ((fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	do
		n = read(fd, buf, sizeof buf);
	while (n < 0 && errno == EINTR);
	err = n < 0 ? -errno : 0;
	close(fd);
	if (err < 0)
		return err;
	return shm_parse_start_ticks(buf, (size_t)n, ticks);
}

/*
 * Creates, sizes, maps and fills "<dir>/.<pid>-<nonce>.tmp", then renames
 * it to "<pid>-<nonce>.gcmon" so that gcmond never sees it half made.
 * The identity (agent_state.id.hello) must be complete. System calls and
 * snprintf of integers only: this runs in fork children.
 */
/* The file's name while it is made (tmp, hidden from gcmond) and once it
 * is whole (agent_state.path): 0 or -ENAMETOOLONG. */
static int area_names(char *tmp, size_t tmplen, uint64_t nonce)
{
	struct agent *a = &agent_state;
	unsigned pid = (unsigned)a->id.hello.pid;
	int n;

	n = snprintf(tmp, tmplen, "%s/.%u-%llx" SHM_TMP_SUFFIX, a->dir, pid,
	    (unsigned long long)nonce);
	if (n < 0 || (size_t)n >= tmplen)
		return -ENAMETOOLONG;
	n = snprintf(a->path, sizeof a->path, "%s/%u-%llx" SHM_SUFFIX, a->dir,
	    pid, (unsigned long long)nonce);
	if (n < 0 || (size_t)n >= sizeof a->path)
		return -ENAMETOOLONG;
	return 0;
}

/* The file sized for a HELLO of hlen bytes, its callback-written pages
 * reserved, and its mode: 0 or a negative errno. */
static int area_reserve(int fd, uint32_t hlen, size_t *sizep)
{
	struct agent *a = &agent_state;
	size_t size = shm_area_size(hlen, a->ring_cap);
	size_t ring_off = shm_ring_off(hlen);
	size_t names_off = shm_names_off(hlen, a->ring_cap);
	struct stat st;
	int err;

	if (ftruncate(fd, (off_t)size) < 0)
		return -errno;
	/* The pages the callback writes (header, identity, ring) are
	 * reserved now: on a full filesystem a write to a hole of a shared
	 * mapping is a SIGBUS in the program, and the program must rather
	 * go unmonitored. The exit area and the names region stay holes:
	 * pwrite() fills them. */
	if ((err = posix_fallocate(fd, 0, (off_t)(ring_off - SHM_EXIT_CAP))) != 0 ||
	    (err = posix_fallocate(fd, (off_t)ring_off,
	    (off_t)(names_off - ring_off))) != 0)
		return -err;
	/* A directory of another user (a system gcmond's group): let its
	 * group read and write the file; the directory's setgid bit gave the
	 * file that group. */
	if (stat(a->dir, &st) == 0 && st.st_uid != geteuid() &&
	    fchmod(fd, 0660) < 0)
		return -errno;
	*sizep = size;
	return 0;
}

static int area_create(void)
{
	struct agent *a = &agent_state;
	struct proto_hello *h = &a->id.hello;
	char tmp[sizeof a->path];
	uint64_t ticks;
	struct stat st;
	ssize_t hlen;
	size_t size = 0;
	void *map;
	int fd, err;

	if ((err = area_start_ticks(&ticks)) < 0)
		return err;
	h->clock_real_ns = agent_clock_ns(CLOCK_REALTIME);
	h->clock_mono_ns = agent_clock_ns(CLOCK_MONOTONIC);
	agent_place_pidns(h);
	if ((err = area_names(tmp, sizeof tmp,
	    h->clock_mono_ns ^ ((uint64_t)h->pid << 40))) < 0)
		return err;
	fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	/* Held until this process ends: gcmond's way to learn that, and our
	 * pid in its namespace, when it cannot use our pid (shm.h). Not
	 * inherited by a forked child, which takes its own. */
	if (agent_place_lock(fd) == 0)
		h->flags |= PROTO_HELLO_LOCKED;
	else
		h->flags &= (uint16_t)~PROTO_HELLO_LOCKED;
	if ((hlen = proto_encode_hello(a->hello_buf, SHM_HELLO_CAP, h)) < 0) {
		err = (int)hlen;
		goto out_close;
	}
	if ((err = area_reserve(fd, (uint32_t)hlen, &size)) < 0)
		goto out_close;
	if (fstat(fd, &st) < 0)
		goto out_unlink;
	map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		goto out_unlink;
	shm_area_init(map, size, a->hello_buf, (uint32_t)hlen, a->ring_cap,
	    h->pid, (uint32_t)geteuid(), ticks);
	if (a->on_area_made != NULL)
		a->on_area_made(map);
	if (rename(tmp, a->path) < 0) {
		err = -errno;
		munmap(map, size);
		goto out_close;
	}
	a->fd = fd;
	a->fd_ino = (uint64_t)st.st_ino;
	a->fd_dev = (uint64_t)st.st_dev;
	a->area_size = size;
	atomic_thread_fence(memory_order_release);
	a->area = map;
	return 0;
out_unlink:
	err = -errno;
out_close:
	unlink(tmp);
	close(fd);
	return err;
}

int agent_area_open(const char *dir)
{
	struct agent *a = &agent_state;
	struct proto_hello *h = &a->id.hello;
	int err;

	if (a->area != NULL)
		return -EALREADY;
	/* The directory is made by gcmond; one started later adopts it. */
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	h->pid = (uint32_t)getpid();
	h->ppid = (uint32_t)getppid();
	h->start_mono_ns = agent_clock_ns(CLOCK_MONOTONIC);
	if (a->detached) {
		/* The next area after a detach: the totals of the ones before
		 * go in its hello; names and routes are published again, as
		 * in a fork child; the open requests were the last area's. */
		h->flags |= PROTO_HELLO_PRIOR;
		memcpy(h->prior, a->prior, sizeof h->prior);
		if (a->on_segment != NULL)
			a->on_segment();
		a->stopped = 0;
	}
	if ((err = area_create()) == 0)
		a->detached = 0;
	return err;
}

void agent_area_atfork_prepare(void)
{
	struct shm_snapshot snap;

	if (agent_state.area == NULL)
		return;
	/* In the forking thread, before the child exists: the child's
	 * gc.get_stats() is exactly this. */
	shm_snapshot(agent_state.area, &snap);
	agent_state.at_fork = snap.counters;
}

void agent_area_atfork_child(void)
{
	struct agent *a = &agent_state;
	struct proto_hello *h = &a->id.hello;
	const struct proto_counters *c = &a->at_fork;
	struct shm_header *old = a->area;
	size_t old_size = a->area_size;
	int old_fd = a->fd;
	unsigned i;

	if (old == NULL)
		return;
	a->area = NULL;		/* the parent's: never written from here */
	if (a->stopped) {
		/* gcmon.stop() took the callback out: a child would have an
		 * area nothing counts into, and inexact totals. */
		munmap(old, old_size);
		close(old_fd);
		return;
	}
	for (i = h->ngen; i < c->ngen; i++)
		memset(&h->base[i], 0, sizeof h->base[i]);
	if (c->ngen > h->ngen)
		h->ngen = c->ngen;
	for (i = 0; i < c->ngen; i++) {
		h->base[i].collections += c->gen[i].count;
		h->base[i].collected += c->gen[i].collected;
		h->base[i].uncollectable += c->gen[i].uncollectable;
	}
	h->pid = (uint32_t)getpid();
	h->ppid = (uint32_t)getppid();
	h->start_mono_ns = agent_clock_ns(CLOCK_MONOTONIC);
	h->origin = ORIGIN_FORK;
	/* Its whole baseline is inherited and left out of run totals: no
	 * earlier area of its own to take out. */
	h->flags |= PROTO_HELLO_BASELINE_INHERITED;
	h->flags &= (uint16_t)~PROTO_HELLO_PRIOR;
	a->stopped = 0;
	if (a->on_segment != NULL)
		a->on_segment();
	(void)area_create();	/* without an area this child is not monitored */
	munmap(old, old_size);
	close(old_fd);
}

/* 1 if agent_state.fd is still our area's file. A program that closes
 * every descriptor (a daemonizing library) closes it under us, and the
 * number may name another file of the program's by now: never pwrite()
 * there. (Closing it also dropped the area's lock: a gcmond of another
 * PID namespace then takes the process for ended; gcmond(8) says so.) */
static int area_fd_ours(void)
{
	struct stat st;

	return fstat(agent_state.fd, &st) == 0 &&
	    (uint64_t)st.st_ino == agent_state.fd_ino &&
	    (uint64_t)st.st_dev == agent_state.fd_dev;
}

/* All of buf at off of fd: 0, or -errno. */
static int area_pwrite(int fd, const uint8_t *buf, size_t len, off_t off)
{
	ssize_t n;

	while (len > 0) {
		n = pwrite(fd, buf, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENOSPC;
		buf += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int agent_area_add_names(const uint8_t *buf, size_t len)
{
	struct shm_header *h = agent_state.area;
	uint32_t used;
	int err;

	if (h == NULL)
		return -ESRCH;
	used = atomic_load_explicit(&h->names_len, memory_order_relaxed);
	if (len > h->names_cap - used)
		return -ENOSPC;
	if (!area_fd_ours())
		return -EBADF;
	/* pwrite, not the mapping: the region is a hole (see exit data). */
	if ((err = area_pwrite(agent_state.fd, buf, len,
	    (off_t)h->names_off + used)) < 0)
		return err;
	atomic_store_explicit(&h->names_len, used + (uint32_t)len,
	    memory_order_release);
	return 0;
}

int agent_area_exit(const uint8_t *frames, size_t len, uint64_t freeze_count)
{
	struct shm_header *h = agent_state.area;
	struct rusage ru;
	int err = 0;

	if (h == NULL)
		return -ESRCH;
	if (agent_state.on_exit != NULL)
		agent_state.on_exit();
	/* pwrite, not the mapping: the exit area is a hole, and a full
	 * filesystem must be an error here, not a SIGBUS. */
	if (len > 0 && len <= h->exit_cap && !area_fd_ours()) {
		err = -EBADF;
	} else if (len > 0 && len <= h->exit_cap) {
		if (area_pwrite(agent_state.fd, frames, len, h->exit_off) == 0)
			atomic_store_explicit(&h->exit_len, (uint32_t)len,
			    memory_order_release);
		else
			err = -ENOSPC;
	} else if (len > 0) {
		err = -ENOSPC;
	}
	atomic_store_explicit(&h->exit_cpu_ns,
	    agent_clock_ns(CLOCK_PROCESS_CPUTIME_ID), memory_order_relaxed);
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		atomic_store_explicit(&h->exit_maxrss,
		    (uint64_t)ru.ru_maxrss * 1024u, memory_order_relaxed);
	atomic_store_explicit(&h->exit_freeze_count, freeze_count,
	    memory_order_relaxed);
	atomic_store_explicit(&h->exit_mono_ns,
	    agent_clock_ns(CLOCK_MONOTONIC), memory_order_relaxed);
	atomic_store_explicit(&h->state, SHM_STATE_EXITED,
	    memory_order_release);
	agent_state.stopped = 1;
	return err;
}

int agent_area_detach(const uint8_t *frames, size_t len,
    uint64_t freeze_count)
{
	struct agent *a = &agent_state;
	struct shm_header *h = a->area;
	const struct proto_hello *hello = &a->id.hello;
	struct shm_snapshot snap;
	unsigned i;
	int err;

	if (h == NULL || a->stopped)
		return -ESRCH;
	/* Before agent_area_exit's release store of the state. */
	atomic_store_explicit(&h->exit_via, SHM_EXIT_DETACHED,
	    memory_order_relaxed);
	err = agent_area_exit(frames, len, freeze_count);
	/* Everything this area reported (its baseline held the earlier
	 * ones'): the next area's prior. The callback is out of
	 * gc.callbacks and we hold the GIL, so these counters are final. */
	shm_snapshot(h, &snap);
	memset(a->prior, 0, sizeof a->prior);
	for (i = 0; i < hello->ngen || i < snap.counters.ngen; i++) {
		a->prior[i].collections = (i < hello->ngen ?
		    hello->base[i].collections : 0) + snap.counters.gen[i].count;
		a->prior[i].collected = (i < hello->ngen ?
		    hello->base[i].collected : 0) +
		    snap.counters.gen[i].collected;
		a->prior[i].uncollectable = (i < hello->ngen ?
		    hello->base[i].uncollectable : 0) +
		    snap.counters.gen[i].uncollectable;
	}
	/* Nothing writes this mapping again: the callback, the request
	 * middleware and the names' pending call all see NULL first. The
	 * file (and its lock) is gcmond's to end and remove. */
	a->area = NULL;
	munmap(h, a->area_size);
	if (area_fd_ours())	/* else the number is the program's now */
		close(a->fd);
	a->fd = -1;
	a->detached = 1;
	return err;
}

int agent_area_os_exit(int status, uint64_t freeze_count)
{
	struct shm_header *h = agent_state.area;

	if (h == NULL)
		return -ESRCH;
	if (agent_state.stopped)
		return 0;	/* os._exit from an atexit handler after ours */
	/* Before agent_area_exit's release store of the state. */
	atomic_store_explicit(&h->exit_code, status & 0xff,
	    memory_order_relaxed);
	atomic_store_explicit(&h->exit_via, SHM_EXIT_OS_EXIT,
	    memory_order_relaxed);
	return agent_area_exit(NULL, 0, freeze_count);
}
