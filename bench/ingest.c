/*
 * ingest.c: the load generator of benchmark 3 (bench/ingest_run.py runs it
 * against a real gcmond). It speaks the wire format of common/protocol.h
 * through common/codec.c as N simulated agents: each connects, says HELLO,
 * then sends EVENTS batches as fast as gcmond takes them. When the time is
 * up it finishes the frames it started, asks gcmond (CONTROL "summary")
 * until the run's "seen" equals the events sent, and prints events/s, the
 * CPU gcmond spent (from /proc/<pid>/stat) and gcmond's RSS sampled over
 * the run, ending with one JSON line for the driver.
 * It must never hand-craft a frame (the codec does) nor claim an event
 * gcmond has not counted.
 *
 *   ingest -s SOCKET -p GCMOND_PID -n AGENTS -t SECONDS [-b BATCH] [-i SAMPLE_S]
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "codec.h"
#include "protocol.h"

#define INGEST_NGEN		3
#define INGEST_MAX_SAMPLES	256
#define INGEST_FAKE_PID		3000000u	/* above most pid_max */

struct ingest_conn {
	int fd;
	struct proto_counters c;
	uint64_t next_ns;	/* start_ns of the next event */
	uint8_t *buf;		/* the frame being written */
	size_t len, off;
	uint64_t pending;	/* events in buf */
	uint64_t sent;		/* events in frames written whole */
	uint32_t rng;
};

struct ingest_sample {
	double t_s;
	long rss_kib;
	uint64_t events;
};

struct ingest {
	const char *sock;
	pid_t pid;
	unsigned n;
	double seconds;
	uint32_t batch;
	double sample_s;
	char run_id[64];
	struct ingest_conn *conns;
	struct proto_event *scratch;
	size_t frame_cap;
	struct ingest_sample samples[INGEST_MAX_SAMPLES];
	unsigned nsamples;
};

static double ingest_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t ingest_mono_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* utime + stime of pid, in clock ticks; -errno on failure. */
static long long ingest_cpu_ticks(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields start after the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -EIO;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
	    &ut, &st) != 2)
		return -EIO;
	return (long long)(ut + st);
}

/* VmRSS of pid in KiB; -errno on failure. */
static long ingest_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -ENOENT;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return -errno;
	while (fgets(line, sizeof line, f) != NULL) {
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	}
	fclose(f);
	return kib;
}

static int ingest_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd, err;

	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
		goto out_close;
	return fd;
out_close:
	err = -errno;
	close(fd);
	return err;
}

static int ingest_write_all(int fd, const uint8_t *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int ingest_hello(struct ingest *g, unsigned i)
{
	static const char *argv0 = "bench/ingest";
	struct proto_hello h;
	uint8_t buf[1024];
	ssize_t len;
	unsigned k;

	memset(&h, 0, sizeof h);
	h.pid = INGEST_FAKE_PID + i;
	h.ppid = (uint32_t)getpid();
	h.start_mono_ns = ingest_mono_ns(CLOCK_MONOTONIC);
	h.clock_real_ns = ingest_mono_ns(CLOCK_REALTIME);
	h.clock_mono_ns = ingest_mono_ns(CLOCK_MONOTONIC);
	h.py_hexversion = 0x030b02f0;
	h.origin = ORIGIN_ROOT;
	h.gc_model = GC_MODEL_CLASSIC;
	h.ngen = INGEST_NGEN;
	for (k = 0; k < INGEST_NGEN; k++)
		h.base[k].threshold = k == 0 ? 700 : 10;
	h.run_id.ptr = g->run_id;
	h.run_id.len = (uint32_t)strlen(g->run_id);
	h.py_version.ptr = "3.11.2 (simulated by bench/ingest)";
	h.py_version.len = (uint32_t)strlen(h.py_version.ptr);
	h.executable.ptr = "/usr/bin/python3";
	h.executable.len = (uint32_t)strlen(h.executable.ptr);
	h.argc = 1;
	h.argv[0].ptr = argv0;
	h.argv[0].len = (uint32_t)strlen(argv0);
	if ((len = proto_encode_hello(buf, sizeof buf, &h)) < 0)
		return (int)len;
	g->conns[i].next_ns = h.start_mono_ns;
	return ingest_write_all(g->conns[i].fd, buf, (size_t)len);
}

static uint32_t ingest_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Encodes c's next batch: mostly generation 0, some 1 and 2, pauses of
 * 20 us to 2 ms so the histograms are exercised. */
static int ingest_next_frame(struct ingest *g, struct ingest_conn *c)
{
	struct proto_event *e;
	ssize_t len;
	uint32_t i, r;

	for (i = 0; i < g->batch; i++) {
		e = &g->scratch[i];
		r = ingest_rand(&c->rng);
		e->generation = (r & 1023) == 0 ? 2 : (r & 15) == 0 ? 1 : 0;
		e->pause_ns = 20000 + (r >> 12) % 2000000;
		e->start_ns = c->next_ns;
		e->collector_ns = 0;
		e->collected = r & 255;
		e->uncollectable = 0;
		e->flags = 0;
		c->next_ns += e->pause_ns + 100000;
		c->c.gen[e->generation].count++;
		c->c.gen[e->generation].pause_ns += e->pause_ns;
		if (e->pause_ns > c->c.gen[e->generation].max_pause_ns)
			c->c.gen[e->generation].max_pause_ns = e->pause_ns;
		c->c.gen[e->generation].collected += e->collected;
	}
	if ((len = proto_encode_events(c->buf, g->frame_cap, &c->c, g->scratch,
	    g->batch)) < 0)
		return (int)len;
	c->len = (size_t)len;
	c->off = 0;
	c->pending = g->batch;
	return 0;
}

/* Writes what c's socket takes. 1: frame done; 0: more later; <0 error. */
static int ingest_push(struct ingest_conn *c)
{
	ssize_t n;

	while (c->off < c->len) {
		n = write(c->fd, c->buf + c->off, c->len - c->off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return 0;
			return -errno;
		}
		c->off += (size_t)n;
	}
	c->sent += c->pending;
	c->pending = 0;
	return 1;
}

static uint64_t ingest_total(const struct ingest *g)
{
	uint64_t t = 0;
	unsigned i;

	for (i = 0; i < g->n; i++)
		t += g->conns[i].sent;
	return t;
}

static void ingest_sample(struct ingest *g, double t0)
{
	struct ingest_sample *s;

	if (g->nsamples == INGEST_MAX_SAMPLES)
		return;
	s = &g->samples[g->nsamples++];
	s->t_s = ingest_now() - t0;
	s->rss_kib = ingest_rss_kib(g->pid);
	s->events = ingest_total(g);
}

/* The run's "seen" according to gcmond; -errno on failure. */
static long long ingest_seen(struct ingest *g)
{
	struct proto_reader r;
	struct proto_frame f;
	json_t *ans = NULL, *seen;
	char req[160];
	uint8_t buf[4096];
	const char *js;
	size_t jlen;
	long long v = -EPROTO;
	ssize_t n;
	int fd, rc;

	snprintf(req, sizeof req, "{\"cmd\":\"summary\",\"run\":\"%s\"}", g->run_id);
	if ((fd = ingest_connect(g->sock)) < 0)
		return fd;
	proto_reader_init(&r, 0);
	if ((n = proto_encode_control(buf, sizeof buf, req, strlen(req))) < 0) {
		v = n;
		goto out;
	}
	if ((rc = ingest_write_all(fd, buf, (size_t)n)) < 0) {
		v = rc;
		goto out;
	}
	for (;;) {
		rc = proto_reader_next(&r, &f);
		if (rc < 0) {
			v = rc;
			goto out;
		}
		if (rc == 1)
			break;
		if ((n = read(fd, buf, sizeof buf)) <= 0) {
			v = n == 0 ? -ECONNRESET : -errno;
			goto out;
		}
		if ((rc = proto_reader_feed(&r, buf, (size_t)n)) < 0) {
			v = rc;
			goto out;
		}
	}
	if (proto_decode_control(&f, &js, &jlen) < 0 ||
	    (ans = json_loadb(js, jlen, 0, NULL)) == NULL)
		goto out;
	seen = json_object_get(json_object_get(ans, "summary"), "seen");
	if (json_is_integer(seen))
		v = json_integer_value(seen);
	else if (json_is_false(json_object_get(ans, "ok")))
		v = -ENOENT;	/* the run is not known (yet) */
out:
	json_decref(ans);
	proto_reader_fini(&r);
	close(fd);
	return v;
}

static int ingest_bye(struct ingest_conn *c)
{
	struct proto_bye b;
	uint8_t buf[512];
	ssize_t len;
	int fl;

	b.mono_ns = c->next_ns;
	b.counters = c->c;
	if ((len = proto_encode_bye(buf, sizeof buf, &b)) < 0)
		return (int)len;
	if ((fl = fcntl(c->fd, F_GETFL)) < 0 || fcntl(c->fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return -errno;
	return ingest_write_all(c->fd, buf, (size_t)len);
}

static void ingest_usage(void)
{
	fprintf(stderr, "usage: ingest -s SOCKET -p GCMOND_PID -n AGENTS -t SECONDS"
	    " [-b BATCH] [-i SAMPLE_S]\n");
}

int main(int argc, char **argv)
{
	struct ingest g;
	struct pollfd *pfd = NULL;
	double t0, t_send, t_done, next_sample;
	long long cpu0, cpu1, seen = 0;
	long rss_idle, rss_hello;
	uint64_t sent;
	unsigned i;
	int opt, rc, fl, status = 1;

	memset(&g, 0, sizeof g);
	g.batch = 256;
	g.sample_s = 1.0;
	while ((opt = getopt(argc, argv, "s:p:n:t:b:i:")) != -1) {
		switch (opt) {
		case 's': g.sock = optarg; break;
		case 'p': g.pid = (pid_t)atoi(optarg); break;
		case 'n': g.n = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': g.seconds = strtod(optarg, NULL); break;
		case 'b': g.batch = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'i': g.sample_s = strtod(optarg, NULL); break;
		default: ingest_usage(); return 2;
		}
	}
	if (g.sock == NULL || g.pid <= 0 || g.n == 0 || g.n > 100000 ||
	    !(g.seconds > 0 && g.seconds <= 600) || g.batch == 0 ||
	    g.batch > PROTO_MAX_EVENTS || !(g.sample_s > 0)) {
		ingest_usage();
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(g.run_id, sizeof g.run_id, "bench-ingest-%u-%d", g.n, (int)getpid());
	g.frame_cap = proto_events_size(INGEST_NGEN, g.batch);
	g.conns = calloc(g.n, sizeof *g.conns);
	g.scratch = calloc(g.batch, sizeof *g.scratch);
	pfd = calloc(g.n, sizeof *pfd);
	if (g.conns == NULL || g.scratch == NULL || pfd == NULL) {
		fprintf(stderr, "ingest: out of memory\n");
		goto out;
	}
	for (i = 0; i < g.n; i++)
		g.conns[i].fd = -1;
	if ((rss_idle = ingest_rss_kib(g.pid)) < 0) {
		fprintf(stderr, "ingest: cannot read /proc/%d/status: %s\n",
		    (int)g.pid, strerror((int)-rss_idle));
		goto out;
	}
	for (i = 0; i < g.n; i++) {
		struct ingest_conn *c = &g.conns[i];

		if ((c->fd = ingest_connect(g.sock)) < 0) {
			fprintf(stderr, "ingest: connect %s (agent %u): %s\n", g.sock, i,
			    strerror(-c->fd));
			goto out;
		}
		c->c.ngen = INGEST_NGEN;
		c->rng = 2463534242u + i;
		if ((c->buf = malloc(g.frame_cap)) == NULL) {
			fprintf(stderr, "ingest: out of memory\n");
			goto out;
		}
		if ((rc = ingest_hello(&g, i)) < 0) {
			fprintf(stderr, "ingest: HELLO of agent %u: %s\n", i, strerror(-rc));
			goto out;
		}
		if ((fl = fcntl(c->fd, F_GETFL)) < 0 ||
		    fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			fprintf(stderr, "ingest: fcntl: %s\n", strerror(errno));
			goto out;
		}
		pfd[i].fd = c->fd;
		pfd[i].events = POLLOUT;
		if ((rc = ingest_next_frame(&g, c)) < 0) {
			fprintf(stderr, "ingest: encode: %s\n", proto_strerror(rc));
			goto out;
		}
	}
	usleep(200000);		/* let gcmond take the HELLOs before measuring */
	rss_hello = ingest_rss_kib(g.pid);

	cpu0 = ingest_cpu_ticks(g.pid);
	t0 = ingest_now();
	next_sample = t0 + g.sample_s;
	ingest_sample(&g, t0);
	for (;;) {
		double now = ingest_now();
		int stopping = now - t0 >= g.seconds;
		unsigned busy = 0;

		if (now >= next_sample) {
			ingest_sample(&g, t0);
			next_sample += g.sample_s;
		}
		for (i = 0; i < g.n; i++)
			pfd[i].fd = g.conns[i].pending ? g.conns[i].fd : -1;
		for (i = 0; i < g.n; i++)
			busy += g.conns[i].pending != 0;
		if (busy == 0)
			break;
		if (now - t0 > g.seconds + 60) {
			fprintf(stderr, "ingest: gcmond took no bytes for 60 s after the"
			    " end (%u agents still writing)\n", busy);
			goto out;
		}
		if (poll(pfd, g.n, 100) < 0 && errno != EINTR) {
			fprintf(stderr, "ingest: poll: %s\n", strerror(errno));
			goto out;
		}
		for (i = 0; i < g.n; i++) {
			struct ingest_conn *c = &g.conns[i];

			if (pfd[i].fd < 0 || pfd[i].revents == 0)
				continue;
			if ((rc = ingest_push(c)) < 0) {
				fprintf(stderr, "ingest: agent %u: write: %s (gcmond closed it?)\n",
				    i, strerror(-rc));
				goto out;
			}
			if (rc == 1 && !stopping &&
			    (rc = ingest_next_frame(&g, c)) < 0) {
				fprintf(stderr, "ingest: encode: %s\n", proto_strerror(rc));
				goto out;
			}
		}
	}
	t_send = ingest_now();
	sent = ingest_total(&g);
	/* Done when gcmond has counted every event written (bounded wait). */
	while (ingest_now() - t_send < 120) {
		if ((seen = ingest_seen(&g)) < 0 && seen != -ENOENT) {
			fprintf(stderr, "ingest: summary request: %s\n",
			    proto_strerror((int)seen));
			goto out;
		}
		if (seen >= 0 && (uint64_t)seen >= sent)
			break;
		usleep(2000);
	}
	t_done = ingest_now();
	cpu1 = ingest_cpu_ticks(g.pid);
	ingest_sample(&g, t0);
	if (seen < 0 || (uint64_t)seen != sent) {
		fprintf(stderr, "ingest: gcmond counted %lld of %llu events\n", seen,
		    (unsigned long long)sent);
		goto out;
	}
	{
		double cpu_s = (double)(cpu1 - cpu0) / (double)sysconf(_SC_CLK_TCK);
		double wall_s = t_done - t0;

		printf("agents %u, batch %u, %.1f s: %llu events, %.2f M events/s wall,"
		    " gcmond CPU %.2f s = %.2f M events per CPU-second, %.3f CPU-s per"
		    " million\n", g.n, g.batch, wall_s, (unsigned long long)sent,
		    sent / wall_s / 1e6, cpu_s, cpu_s > 0 ? sent / cpu_s / 1e6 : 0.0,
		    cpu_s / (sent / 1e6));
		printf("gcmond RSS: %ld KiB idle, %ld KiB after %u HELLOs (%.1f KiB per"
		    " process)\n", rss_idle, rss_hello, g.n,
		    (double)(rss_hello - rss_idle) / g.n);
		for (i = 0; i < g.nsamples; i++)
			printf("  t=%5.1f s  events %12llu  RSS %ld KiB\n", g.samples[i].t_s,
			    (unsigned long long)g.samples[i].events, g.samples[i].rss_kib);
		printf("{\"agents\": %u, \"batch\": %u, \"events\": %llu, \"wall_s\": %.3f,"
		    " \"cpu_s\": %.3f, \"rss_idle_kib\": %ld, \"rss_hello_kib\": %ld,"
		    " \"rss_kib\": [", g.n, g.batch, (unsigned long long)sent, wall_s,
		    cpu_s, rss_idle, rss_hello);
		for (i = 0; i < g.nsamples; i++)
			printf("%s[%.2f, %ld]", i ? ", " : "", g.samples[i].t_s,
			    g.samples[i].rss_kib);
		printf("]}\n");
	}
	for (i = 0; i < g.n; i++) {
		if ((rc = ingest_bye(&g.conns[i])) < 0) {
			fprintf(stderr, "ingest: BYE of agent %u: %s\n", i, strerror(-rc));
			goto out;
		}
	}
	status = 0;
out:
	if (g.conns != NULL) {
		for (i = 0; i < g.n; i++) {
			if (g.conns[i].fd >= 0)
				close(g.conns[i].fd);
			free(g.conns[i].buf);
		}
	}
	free(g.conns);
	free(g.scratch);
	free(pfd);
	return status;
}
