/*
 * agents.c: the shared areas of the monitored processes (see agents.h and
 * common/shm.h). One struct agent_map per file: attached when the watch
 * (or a scan) names it and /proc/<pid> vouches for it, drained every
 * drain period (which adapts to the rings' fill: agents.h), sampled from
 * /proc every sample_s, retired when its pidfd says the process is gone:
 * a last drain, the final counters, the exit data, then the file is
 * unlinked. Reads of a mapping go through
 * agents_guarded(), so a process that truncates its own file under us
 * costs us that process, not the daemon (SIGBUS).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "agents.h"
#include "allow.h"
#include "clock.h"
#include "place.h"
#include "procfs.h"
#include "requests.h"
#include "shm.h"

#define AGENTS_NAME_MAX	64
#define AGENTS_MEM_GC_S	1.0	/* post-gen-2 smaps reads: one per s */

struct agent_map {
	LIST_ENTRY(agent_map) link;	/* in agents->maps */
	struct agents *owner;
	char name[AGENTS_NAME_MAX];
	void *map;
	struct shm_info info;
	uint64_t tail;
	uint64_t last_head;
	uint64_t drained;		/* records in the last drain */
	struct agents_stk stk;
	struct agents_req req;
	struct agg_proc *proc;
	struct place place;		/* where it runs; place.pid: here */
	uid_t owner_uid;		/* the file's, as the kernel says */
	int fd;				/* the file: its lock is asked on it */
	int pidfd;
	uv_poll_t poll;			/* on pidfd; its close frees this */
	int polling;
	int proc_poll;			/* its end learnt from /proc polls */
	int lock_poll;			/* ... from its lock (PLACE_UNSEEN) */
	double next_sample;		/* Unix seconds */
	double next_mem_gc;		/* no post-gen-2 read before (Unix s) */
};

/* ---- reading a mapping that may be truncated under us ---------------- */

static sigjmp_buf *volatile agents_jmp;

static void agents_on_sigbus(int sig, siginfo_t *si, void *uctx)
{
	(void)si;
	(void)uctx;
	if (agents_jmp != NULL)
		siglongjmp(*agents_jmp, 1);
	signal(sig, SIG_DFL);	/* not ours: die as we would have */
	raise(sig);
}

static int agents_install_sigbus(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = agents_on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGBUS, &sa, NULL) < 0 ? -errno : 0;
}

/* Runs fn(m, arg), turning a SIGBUS inside it into -EFAULT. fn only
 * copies out of the mapping (and writes the tail). */
static int agents_guarded(int (*fn)(struct agent_map *, void *),
    struct agent_map *m, void *arg)
{
	sigjmp_buf jb;
	int ret;

	if (sigsetjmp(jb, 1) != 0) {
		agents_jmp = NULL;
		return -EFAULT;
	}
	agents_jmp = &jb;
	ret = fn(m, arg);
	agents_jmp = NULL;
	return ret;
}

static int agents_gc_mark(struct agent_map *m, void *arg)
{
	*(uint64_t *)arg = shm_gc_mark(m->map);
	return 0;
}

/* Its smaps_rollup, into agg (a refusal too), with whether the process
 * collected while the kernel walked its pages. */
static void agents_mem(struct agents *a, struct agent_map *m)
{
	uint64_t mark0 = SHM_GC_BUSY, mark1 = SHM_GC_BUSY;
	struct agg_mem mem;
	int err;

	if (m->place.kind == PLACE_UNSEEN)
		return;		/* agg_place said why there are no figures */
	(void)agents_guarded(agents_gc_mark, m, &mark0);
	err = procfs_smaps(m->place.pid, &mem);
	(void)agents_guarded(agents_gc_mark, m, &mark1);
	agg_mem_read(a->agg, m->proc, &mem, clock_mono_ns(), err,
	    mark0 != SHM_GC_BUSY && mark0 == mark1);
}

/* RSS, peak RSS and CPU of a live (or zombie) process, into agg; with
 * mem, its smaps_rollup too (a zombie has none). */
static void agents_sample(struct agents *a, struct agent_map *m, int mem)
{
	struct agg_sample s;

	if (m->place.kind != PLACE_UNSEEN &&
	    procfs_sample(m->place.pid, &s) == 0)
		agg_sample(a->agg, m->proc, &s);
	if (mem)
		agents_mem(a, m);
}

/* ---- draining --------------------------------------------------------- */

struct agents_batch {
	struct shm_snapshot snap;
	struct proto_event rec[AGENTS_BATCH];
	int n;
};

static int agents_copy_batch(struct agent_map *m, void *arg)
{
	struct agents_batch *b = arg;

	shm_snapshot(m->map, &b->snap);
	b->n = shm_drain(m->map, &m->info, b->snap.head, &m->tail, b->rec,
	    AGENTS_BATCH);
	if (b->n < 0)
		return b->n;	/* else names too: stop() may add some last */
	agents_stacks_read(m->map, &m->info, &m->stk, &b->snap, b->rec, b->n,
	    m->proc);
	return 0;
}

static void agents_detach(struct agents *a, struct agent_map *m, int ended);
static void agents_end(struct agents *a, struct agent_map *m);

/* Requests (agents_requests.c): the head before the events, the records
 * after them. */
static int agents_req_mark(struct agent_map *m, void *arg)
{
	(void)arg;
	agents_requests_mark(m->map, &m->info, &m->req, m->proc);
	return 0;
}

static int agents_req_read(struct agent_map *m, void *arg)
{
	(void)arg;
	agents_requests_read(m->map, &m->info, &m->req, m->proc,
	    m->owner->sink.request, m->owner->sink.data);
	return 0;
}

/* Moves every record published so far into the aggregates; then the
 * counters, which are at least as new (and into *snap if not NULL).
 * 0 or -EFAULT/-EBADMSG (the area is broken). */
static int agents_drain_one(struct agents *a, struct agent_map *m,
    struct shm_snapshot *snap)
{
	static struct agents_batch b;	/* one loop thread; 20 KiB */
	int err, i, alert;

	m->drained = 0;
	if ((err = agents_guarded(agents_req_mark, m, NULL)) < 0)
		return err;
	do {
		if ((err = agents_guarded(agents_copy_batch, m, &b)) < 0)
			return err;
		for (i = 0; i < b.n; i++) {
			if (!shm_event_valid(&b.rec[i]))
				return -EBADMSG;
			alert = agg_event(a->agg, m->proc, &b.rec[i]);
			(void)requests_pause(m->proc, &b.rec[i],
			    b.rec[i].flags & PROTO_EVENT_HAS_STACK);
			if (a->sink.event != NULL)
				a->sink.event(a->sink.data, m->proc, &b.rec[i],
				    alert);
		}
		a->st.events += (uint64_t)b.n;
		m->drained += (uint64_t)b.n;
	} while (b.n == (int)AGENTS_BATCH);
	if ((err = agents_guarded(agents_req_read, m, NULL)) < 0)
		return err;
	m->last_head = b.snap.head;
	agg_counters(a->agg, m->proc, &b.snap.counters);
	if (a->sink.drained != NULL)
		a->sink.drained(a->sink.data, m->proc);
	if (snap != NULL)
		*snap = b.snap;
	return 0;
}

/* The clock of the aggregates (read once a drain, not once an event). */
static void agents_now(struct agents *a)
{
	clock_now(a->agg);
}

static void agents_broken(struct agents *a, struct agent_map *m, int err)
{
	a->st.broken++;
	log_warn(a->log, "pid %u: shared area %s %s; no longer read",
	    (unsigned)m->place.pid, m->name, err == -EFAULT ?
	    "was truncated under gcmond" : "is inconsistent (ring indexes)");
	/* Removed, as a refused file is: a later event on its name (a write
	 * by its hostile owner) must not attach it again. */
	agents_detach(a, m, 1);
}

static void agents_on_drain(uv_timer_t *t);

/* (Re)arms the drain timer at period_ms (0 stops it). */
static void agents_arm(struct agents *a, unsigned period_ms)
{
	if (period_ms == a->period_ms)
		return;
	a->period_ms = period_ms;
	if (period_ms == 0)
		(void)uv_timer_stop(&a->drain);
	else
		(void)uv_timer_start(&a->drain, agents_on_drain, period_ms,
		    period_ms);	/* fails only for a NULL callback */
}

/* The next period from the fullest ring of this drain (agents.h). */
static unsigned agents_next_period(const struct agents *a, double fill)
{
	unsigned p = a->period_ms;

	if (a->cfg.drain_ms != 0)
		return a->cfg.drain_ms;		/* fixed by the caller */
	if (LIST_EMPTY(&a->maps))
		return 0;
	if (fill >= 0.25)
		return AGENTS_DRAIN_MIN_MS;
	if (fill < 1.0 / 16 && p < AGENTS_DRAIN_MAX_MS)
		return p * 2 > AGENTS_DRAIN_MAX_MS ? AGENTS_DRAIN_MAX_MS : p * 2;
	return p;
}

/* 0 once a process watched without a pidfd is known to be gone. */
static int agents_running(struct agent_map *m)
{
	uint32_t holder;

	if (m->lock_poll)	/* the kernel drops the lock at the end */
		return place_lock_holder(m->fd, &holder) != 0;
	if (m->proc_poll)
		return procfs_running(m->place.pid, m->info.start_ticks);
	return 1;
}

static void agents_on_drain(uv_timer_t *t)
{
	struct agents *a = t->data;
	struct agent_map *m, *next;
	struct shm_snapshot snap;
	double now, fill = 0, f;
	int err, poll_proc;

	agents_now(a);
	now = a->agg->now_real;
	if ((poll_proc = now >= a->next_proc_poll))
		a->next_proc_poll = now + AGENTS_PROC_POLL_S;
	for (m = LIST_FIRST(&a->maps); m != NULL; m = next) {
		next = LIST_NEXT(m, link);
		/* Without a pidfd, /proc or the lock says when it is gone. */
		if (poll_proc && !agents_running(m)) {
			agents_end(a, m);
			continue;
		}
		if ((err = agents_drain_one(a, m, &snap)) < 0) {
			agents_broken(a, m, err);
			continue;
		}
		/* gcmon.stop() (a detach): the area is final while the
		 * process lives on; ended now, as if the process had. */
		if (snap.state == SHM_STATE_EXITED &&
		    snap.exit_via == SHM_EXIT_DETACHED) {
			agents_end(a, m);
			continue;
		}
		if ((f = (double)m->drained / m->info.ring_cap) > fill)
			fill = f;
		if (now >= m->next_sample) {
			m->next_sample = now + a->cfg.sample_s;
			agents_sample(a, m, 1);	/* gone: the pidfd says */
		} else if (agg_mem_due(m->proc) && now >= m->next_mem_gc) {
			/* Just after a gen-2 collection, at most once per
			 * AGENTS_MEM_GC_S: a read costs ~0.6 ms per 250 MB;
			 * one skipped is counted at the next read. */
			m->next_mem_gc = now + AGENTS_MEM_GC_S;
			agents_mem(a, m);
		}
	}
	agents_arm(a, agents_next_period(a, fill));
}

/* ---- the end of a process --------------------------------------------- */

struct agents_exit {
	uint8_t *buf;
	uint32_t len;
};

static int agents_copy_exit(struct agent_map *m, void *arg)
{
	struct agents_exit *x = arg;

	memcpy(x->buf, (const char *)m->map + m->info.exit_off, x->len);
	return 0;
}

/* OBJECTS and GARBAGE frames the process left in its exit area. */
static void agents_exit_data(struct agents *a, struct agent_map *m,
    uint32_t len)
{
	struct agents_exit x = { NULL, len };
	struct proto_frame f;
	struct proto_types t;
	size_t off = 0;

	if (len == 0 || len > m->info.exit_cap ||
	    (x.buf = malloc(len)) == NULL)
		return;
	if (agents_guarded(agents_copy_exit, m, &x) < 0)
		goto out;
	while (off < len && proto_decode_header(x.buf + off, len - off, 0,
	    &f.hdr) == 0 && f.hdr.len <= len - off) {
		f.payload = x.buf + off + PROTO_HDR_SIZE;
		f.payload_len = f.hdr.len - PROTO_HDR_SIZE;
		if ((f.hdr.type != FRAME_OBJECTS && f.hdr.type != FRAME_GARBAGE) ||
		    proto_decode_types(&f, &t) < 0 ||
		    agg_types(a->agg, m->proc, f.hdr.type == FRAME_GARBAGE, &t) < 0)
			break;
		off += f.hdr.len;
	}
	if (off != len)
		log_warn(a->log, "pid %u: exit data malformed at byte %zu",
		    (unsigned)m->place.pid, off);
out:
	free(x.buf);
}

static void agents_end(struct agents *a, struct agent_map *m)
{
	struct shm_snapshot snap;
	struct proto_bye bye;
	int err;

	agents_now(a);
	agents_sample(a, m, 0);	/* a zombie still has its CPU time */
	if ((err = agents_drain_one(a, m, &snap)) < 0) {
		agents_broken(a, m, err);
		return;
	}
	memset(&bye, 0, sizeof bye);
	if (snap.state == SHM_STATE_EXITED) {
		agents_exit_data(a, m, snap.exit_len);
		agg_exit_info(a->agg, m->proc, snap.exit_cpu_ns,
		    snap.exit_maxrss, snap.exit_freeze_count);
		if (snap.exit_via == SHM_EXIT_OS_EXIT)
			agg_exit_code(m->proc, snap.exit_code);
		else if (snap.exit_via == SHM_EXIT_DETACHED)
			agg_exit_detached(m->proc);
		bye.mono_ns = snap.exit_mono_ns;
	}
	if (bye.mono_ns == 0)	/* killed: it ended about now */
		bye.mono_ns = clock_mono_ns();
	bye.counters = snap.counters;
	requests_proc_end(m->proc);
	agg_bye(a->agg, m->proc, &bye);
	agents_detach(a, m, 1);
}

/* A pidfd can be reported readable for other reasons than the exit (an
 * error on the poll), and ending a live process would lose its tail:
 * /proc must agree that the process is gone. */
static void agents_on_exit(uv_poll_t *h, int status, int events)
{
	struct agent_map *m = h->data;
	struct agents *a = m->owner;

	if (procfs_running(m->place.pid, m->info.start_ticks)) {
		/* Never again from this pidfd (an error would repeat at every
		 * loop turn): the drain timer asks /proc instead. */
		log_debug(a->log, "pid %u: pidfd ready (status %d, events %d) "
		    "but the process runs", (unsigned)m->place.pid, status,
		    events);
		uv_poll_stop(h);
		m->proc_poll = 1;
		return;
	}
	agents_end(a, m);
}

/* ---- attach and detach ------------------------------------------------ */

static void agents_on_poll_close(uv_handle_t *h)
{
	struct agent_map *m = h->data;

	close(m->pidfd);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
}

/* ended: the process is gone or its area broken (its file is removed);
 * otherwise gcmond stops (the file stays for the next gcmond). */
static void agents_detach(struct agents *a, struct agent_map *m, int ended)
{
	struct agg_proc *p = m->proc;

	LIST_REMOVE(m, link);
	a->st.live--;
	if (m->lock_poll)
		a->st.unseen--;
	if (ended && unlinkat(a->dirfd, m->name, 0) < 0 && errno != ENOENT)
		log_warn(a->log, "cannot remove %s: %s", m->name, strerror(errno));
	munmap(m->map, m->info.size);
	if (p != NULL) {
		agg_disconnect(a->agg, p);
		if (!a->stopping && a->sink.ended != NULL)
			a->sink.ended(a->sink.data, p);
	}
	if (m->polling) {
		uv_close((uv_handle_t *)&m->poll, agents_on_poll_close);
	} else {
		if (m->pidfd >= 0)
			close(m->pidfd);
		if (m->fd >= 0)
			close(m->fd);
		free(m);
	}
}

/* "<pid>-<hex>.gcmon" and nothing else. */
static int agents_name_ok(const char *name)
{
	size_t n = strlen(name), sl = sizeof SHM_SUFFIX - 1, i = 0;

	if (n <= sl || n >= AGENTS_NAME_MAX ||
	    strcmp(name + n - sl, SHM_SUFFIX) != 0)
		return 0;
	while (i < n - sl && name[i] >= '0' && name[i] <= '9')
		i++;
	if (i == 0 || i >= n - sl || name[i++] != '-' || i == n - sl)
		return 0;
	for (; i < n - sl; i++)
		if (!((name[i] >= '0' && name[i] <= '9') ||
		    (name[i] >= 'a' && name[i] <= 'f')))
			return 0;
	return 1;
}

static struct agent_map *agents_find(const struct agents *a, const char *name)
{
	struct agent_map *m;

	LIST_FOREACH(m, &a->maps, link)
		if (strcmp(m->name, name) == 0)
			return m;
	return NULL;
}

static int agents_check_area(struct agent_map *m, void *arg)
{
	(void)arg;
	return shm_check(m->map, m->info.size, &m->info);
}

struct agents_hello {
	uint8_t *buf;
	struct proto_hello *h;
	uint64_t head;
};

static int agents_copy_hello(struct agent_map *m, void *arg)
{
	struct agents_hello *x = arg;
	struct shm_snapshot snap;
	int err;

	if ((err = shm_read_hello(m->map, &m->info, x->buf, x->h)) < 0)
		return err;
	shm_snapshot(m->map, &snap);
	x->head = snap.head;
	m->tail = shm_start_tail(m->map, &m->info, snap.head);
	agents_stacks_attach(m->map, &m->info, &m->stk,
	    m->owner->agg->cfg.alert_threshold_ns);
	agents_requests_attach(m->map, &m->info, &m->req, m->tail == 0);
	return 0;
}

/* Opens, checks and maps one file, which stays open (m->fd): 0, or a
 * negative errno with *why. */
static int agents_map_file(struct agents *a, struct agent_map *m,
    const char **why)
{
	struct stat st;
	int fd, err;

	fd = openat(a->dirfd, m->name, O_RDWR | O_NOFOLLOW | O_CLOEXEC |
	    O_NONBLOCK);
	if (fd < 0) {
		*why = errno == ELOOP ? "is a symbolic link" : "cannot be opened";
		return -errno;
	}
	err = -EPERM;
	if (fstat(fd, &st) < 0)
		*why = "cannot be examined";
	else if (!S_ISREG(st.st_mode))
		*why = "is not a regular file";
	else if (st.st_size < (off_t)SHM_HEADER_SIZE ||
	    st.st_size > (off_t)SHM_MAX_SIZE)
		*why = "has a size no area has";
	else
		err = 0;
	if (err == 0) {
		/* The owner as the kernel tells us, in our user namespace:
		 * the uid the area writes is its own view (a user namespace
		 * maps it), so it is never believed. */
		m->owner_uid = st.st_uid;
		m->info.size = (size_t)st.st_size;
		m->map = mmap(NULL, m->info.size, PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
		if (m->map == MAP_FAILED) {
			err = -errno;
			*why = "cannot be mapped";
			m->map = NULL;
		} else if ((err = agents_guarded(agents_check_area, m,
		    NULL)) < 0) {
			*why = "is not a valid area (magic, version or layout)";
			munmap(m->map, m->info.size);
		}
	}
	if (err < 0)
		close(fd);
	else
		m->fd = fd;
	return err;
}

/* The identity an area claims, copied out and checked for consistency
 * (its pid three times: header, HELLO, file name). 0 or <0 with *why. */
static int agents_read_hello(struct agent_map *m, struct agents_hello *x,
    const char **why)
{
	int err;

	x->buf = malloc(m->info.hello_len);
	x->h = malloc(sizeof *x->h);	/* PROTO_MAX_ARGC strings: big */
	*why = "out of memory";
	if (x->buf == NULL || x->h == NULL)
		return -ENOMEM;
	if ((err = agents_guarded(agents_copy_hello, m, x)) < 0) {
		*why = "holds no valid identity (HELLO)";
		return err;
	}
	*why = "names another pid in its identity or its file name";
	if (x->h->pid != m->info.pid ||
	    strtoul(m->name, NULL, 10) != (unsigned long)m->info.pid)
		return -EPERM;
	return 0;
}

/* Which process it is (place.c), then whether gcmond serves its owner,
 * then a pidfd where gcmond can see it. 1: live, 0: the process is gone
 * (its final counters are read all the same), <0: refused (*why). */
static int agents_vouch(struct agents *a, struct agent_map *m,
    const struct proto_hello *h, const char **why)
{
	struct place_claim c;
	uint64_t ticks;
	uid_t uid;
	int live, uid_ok;

	memset(&c, 0, sizeof c);
	c.ns_pid = m->info.pid;
	c.ns_ppid = h->ppid;
	c.start_ticks = m->info.start_ticks;
	c.has_ns = (h->flags & PROTO_HELLO_PLACE) && h->pidns_ino != 0;
	c.pidns_ino = h->pidns_ino;
	c.pidns_dev = h->pidns_dev;
	c.locked = (h->flags & PROTO_HELLO_LOCKED) != 0;
	c.owner = m->owner_uid;
	c.cgroup = h->cgroup.ptr;
	c.cgroup_len = h->cgroup.len;
	/* An owner no group can make allowed is refused as that first. */
	uid_ok = allow_uid(a->cfg.allow, m->owner_uid);
	if (!uid_ok && a->cfg.allow->ngid == 0)
		goto out_not_allowed;
	if ((live = place_resolve(&a->place, m->fd, &c, &m->place, why)) < 0) {
		if (live == -EPERM && m->place.foreign)
			a->st.refused_place++;
		return live;
	}
	/* A process gcmond cannot see has no /proc entry here to read its
	 * groups from: its owner's uid alone decides. */
	if (!uid_ok && !allow_process(a->cfg.allow, m->place.kind ==
	    PLACE_UNSEEN ? 0 : m->place.pid, m->owner_uid))
		goto out_not_allowed;
	if (live == 0)
		return 0;
	if (m->place.kind == PLACE_UNSEEN) {
		m->lock_poll = 1;	/* its lock says when it ends */
		return 1;
	}
	m->pidfd = (int)syscall(SYS_pidfd_open, (pid_t)m->place.pid, 0);
	if (m->pidfd < 0 && errno == ESRCH)
		return 0;
	if (m->pidfd < 0 && errno == ENOSYS)
		return 1;	/* no pidfds (Linux < 5.3, valgrind): /proc polls */
	if (m->pidfd < 0) {
		*why = "its process cannot be watched (pidfd_open)";
		return -errno;
	}
	/* The pid may have been reused between the check and the open. */
	if (procfs_identity(m->place.pid, &ticks, &uid) < 0 ||
	    ticks != m->info.start_ticks) {
		close(m->pidfd);
		m->pidfd = -1;
		return 0;
	}
	return 1;
out_not_allowed:
	*why = "belongs to a user not allowed (see --allow-uid, --allow-group)";
	return -EPERM;
}

/* Into the aggregates, under the pid gcmond knows it by. */
static int agents_register(struct agents *a, struct agent_map *m,
    struct agents_hello *x, const char **why)
{
	struct proto_hello *h = x->h;
	struct agg_place pl;
	int err, is_new;

	h->pid = m->place.pid;
	h->ppid = m->place.ppid;
	if ((err = agg_hello(a->agg, h, &m->proc, &is_new)) < 0) {
		*why = "out of memory";
		return err;
	}
	m->last_head = x->head;
	memset(&pl, 0, sizeof pl);
	pl.ns_pid = m->info.pid;
	pl.pidns_ino = h->flags & PROTO_HELLO_PLACE ? h->pidns_ino : 0;
	pl.unseen = m->place.kind == PLACE_UNSEEN;
	pl.container = m->place.container;
	pl.hostname = h->hostname;
	pl.pod = h->pod;
	pl.pod_namespace = h->pod_namespace;
	/* Registered already: out of memory here costs the names, not the
	 * process (agg_place keeps what it had). */
	if (agg_place(m->proc, &pl) < 0)
		log_warn(a->log, "pid %u: out of memory for its container's "
		    "names", (unsigned)h->pid);
	if (is_new)
		agg_proc_started(m->proc, procfs_start_real(m->info.start_ticks));
	if (m->place.kind == PLACE_OURS)
		log_info(a->log, "pid %u (ppid %u, run %s) %s",
		    (unsigned)h->pid, (unsigned)h->ppid, m->proc->run->id,
		    is_new ? "attached" : "attached again");
	else
		log_info(a->log, "pid %u (pid %u in its namespace%s%s, ppid "
		    "%u, run %s) %s%s", (unsigned)h->pid, (unsigned)m->info.pid,
		    *m->place.container ? ", container " : "",
		    m->place.container, (unsigned)h->ppid, m->proc->run->id,
		    is_new ? "attached" : "attached again",
		    m->place.kind == PLACE_UNSEEN ? "; its PID namespace is "
		    "not visible from gcmond's: no /proc figures, its end "
		    "learnt from its lock" : "");
	if (is_new && a->sink.started != NULL)
		a->sink.started(a->sink.data, m->proc);
	return 0;
}

static void agents_attach(struct agents *a, const char *name)
{
	struct agent_map *m;
	struct agents_hello x = { NULL, NULL, 0 };
	const char *why = NULL;
	int live, err;

	agents_now(a);
	if (!agents_name_ok(name) || agents_find(a, name) != NULL ||
	    a->st.live >= AGENTS_MAX)
		return;
	if ((m = calloc(1, sizeof *m)) == NULL)
		return;
	m->owner = a;
	m->fd = -1;
	m->pidfd = -1;
	snprintf(m->name, sizeof m->name, "%s", name);
	if ((err = agents_map_file(a, m, &why)) == -ENOENT) {
		free(m);	/* gone already (we removed it ourselves) */
		return;
	}
	if (err < 0)
		goto out_refuse;
	if ((err = agents_read_hello(m, &x, &why)) < 0 ||
	    (err = live = agents_vouch(a, m, x.h, &why)) < 0 ||
	    (err = agents_register(a, m, &x, &why)) < 0) {
		munmap(m->map, m->info.size);
		goto out_refuse;
	}
	free(x.buf);
	free(x.h);
	LIST_INSERT_HEAD(&a->maps, m, link);
	a->st.live++;
	a->st.attached++;
	if (m->lock_poll)
		a->st.unseen++;
	if (a->period_ms == 0)
		agents_arm(a, a->cfg.drain_ms ? a->cfg.drain_ms : AGENTS_DRAIN_MS);
	if (!live) {		/* ended while no gcmond was watching */
		agents_end(a, m);
		return;
	}
	m->next_sample = 0;
	m->poll.data = m;
	if (m->lock_poll)
		return;		/* agents_on_drain asks the lock */
	if (m->pidfd < 0) {
		m->proc_poll = 1;	/* agents_on_drain asks /proc instead */
		return;
	}
	/* Seen through a pidfd: the file's descriptor is not needed. */
	close(m->fd);
	m->fd = -1;
	if (uv_poll_init(a->loop, &m->poll, m->pidfd) == 0) {
		m->polling = 1;
		if (uv_poll_start(&m->poll, UV_READABLE, agents_on_exit) == 0)
			return;
	}
	log_warn(a->log, "pid %u: cannot watch its exit", (unsigned)m->place.pid);
	agents_detach(a, m, 0);
	return;
out_refuse:
	a->st.refused++;
	log_warn(a->log, "refused %s in the agent directory: it %s",
	    name, why != NULL ? why : strerror(-err));
	/* Ours to tidy: the directory is gcmond's, and a refused file would
	 * be refused again at every scan. */
	if (unlinkat(a->dirfd, name, 0) < 0 && errno != ENOENT)
		log_warn(a->log, "cannot remove %s: %s", name, strerror(errno));
	if (m->pidfd >= 0)
		close(m->pidfd);
	if (m->fd >= 0)
		close(m->fd);
	free(x.buf);
	free(x.h);
	free(m);
}

void agents_rescan(struct agents *a)
{
	DIR *d;
	struct dirent *e;
	int fd;

	if (!a->started || a->stopping)
		return;
	if ((fd = dup(a->dirfd)) < 0)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	rewinddir(d);
	while ((e = readdir(d)) != NULL)
		agents_attach(a, e->d_name);
	closedir(d);
}

static void agents_on_watch(uv_fs_event_t *h, const char *name, int events,
    int status)
{
	struct agents *a = h->data;

	(void)events;
	if (status < 0 || name == NULL) {
		agents_rescan(a);	/* the watch overflowed: look */
		return;
	}
	agents_attach(a, name);
}

/* ---- the directory ---------------------------------------------------- */

static int agents_prepare_dir(struct agents *a, const char **why)
{
	const char *dir = a->cfg.dir;
	mode_t mode = a->cfg.have_gid ? 03770 : 0700;
	struct stat st;

	if (mkdir(dir, mode) < 0 && errno != EEXIST) {
		*why = "the agent directory cannot be created";
		return -errno;
	}
	if (lstat(dir, &st) < 0) {
		*why = "the agent directory cannot be examined";
		return -errno;
	}
	if (!S_ISDIR(st.st_mode)) {
		*why = "the agent directory is not a directory (or is a link)";
		return -ENOTDIR;
	}
	if (st.st_uid != a->uid) {
		*why = "the agent directory belongs to another user";
		return -EPERM;
	}
	if ((a->cfg.have_gid && chown(dir, (uid_t)-1, a->cfg.gid) < 0) ||
	    chmod(dir, mode) < 0) {
		*why = "the agent directory's mode cannot be set";
		return -errno;
	}
	a->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (a->dirfd < 0) {
		*why = "the agent directory cannot be opened";
		return -errno;
	}
	return 0;
}

int agents_start(struct agents *a, uv_loop_t *loop, struct agg *agg,
    struct log *log, const struct agents_config *cfg,
    const struct agents_sink *sink, const char **why)
{
	int err;

	memset(a, 0, sizeof *a);
	a->loop = loop;
	a->agg = agg;
	a->log = log;
	a->cfg = *cfg;
	if (!(a->cfg.sample_s > 0))
		a->cfg.sample_s = 5.0;
	if (sink != NULL)
		a->sink = *sink;
	a->uid = geteuid();
	place_self_init(&a->place);
	LIST_INIT(&a->maps);
	a->dirfd = -1;
	*why = NULL;
	if ((err = agents_install_sigbus()) < 0) {
		*why = "cannot catch SIGBUS";
		return err;
	}
	if ((err = agents_prepare_dir(a, why)) < 0)
		return err;
	if ((err = uv_timer_init(loop, &a->drain)) < 0)
		goto out_close;
	a->drain.data = a;
	if ((err = uv_fs_event_init(loop, &a->watch)) < 0) {
		uv_close((uv_handle_t *)&a->drain, NULL);
		goto out_close;
	}
	a->watch.data = a;
	a->started = 1;
	/* Watch first, then scan: a file made in between is seen twice
	 * (the second time it is known) rather than never. */
	if ((err = uv_fs_event_start(&a->watch, agents_on_watch, cfg->dir, 0)) < 0) {
		*why = "the agent directory cannot be watched";
		agents_stop(a);
		return err;
	}
	agents_rescan(a);
	return 0;
out_close:
	close(a->dirfd);
	a->dirfd = -1;
	return err;
}

void agents_stop(struct agents *a)
{
	struct agent_map *m;
	int err;

	if (!a->started || a->stopping)
		return;
	a->stopping = 1;
	while ((m = LIST_FIRST(&a->maps)) != NULL) {
		if ((err = agents_drain_one(a, m, NULL)) < 0)
			a->st.broken++;
		agents_detach(a, m, 0);
	}
	uv_close((uv_handle_t *)&a->watch, NULL);
	uv_close((uv_handle_t *)&a->drain, NULL);
	close(a->dirfd);
	a->dirfd = -1;
}
