/*
 * launch.c: pygcprofiler's processes: the program (environment, spawned,
 * or exec'd in the launcher's place in shared mode; signals forwarded,
 * reaped), the private gcmond of embedded mode (started, ready through a
 * pipe, stopped) and the waiting for the end of a run
 * (launch_wait_run_end). Called by pygcprofiler.c; reads the event
 * stream through watch.c while it waits, when there is one. Signal
 * handlers only set flags and wake the loop through a self-pipe. It must
 * never touch the program's stdout, argv, cwd or stdin, and never leave
 * the private gcmond running.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "paths.h"
#include "pgp.h"

extern char **environ;

static volatile sig_atomic_t pgp_sig_pending[NSIG];
static volatile sig_atomic_t pgp_sig_any;
static volatile sig_atomic_t pgp_sigchld;
/* Self-pipe: a signal that lands just before poll() still wakes it (the
 * program's end must not wait for a poll timeout). */
static int pgp_sig_pipe[2] = { -1, -1 };

static void launch_on_signal(int sig, siginfo_t *si, void *uctx)
{
	int saved = errno;
	ssize_t n;

	(void)uctx;
	/* EAGAIN: the pipe is full, a wake-up is already pending. */
	n = pgp_sig_pipe[1] >= 0 ? write(pgp_sig_pipe[1], "s", 1) : 0;
	(void)n;
	errno = saved;
	if (sig == SIGCHLD) {
		pgp_sigchld = 1;
		return;
	}
	/* A terminal's ^C already reached the program (same process group);
	 * forward only what was sent to us alone. */
	if (si != NULL && si->si_code == SI_KERNEL)
		return;
	pgp_sig_pending[sig] = 1;
	pgp_sig_any = 1;
}

static int launch_install_signals(void)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGCHLD };
	struct sigaction sa;
	size_t i;

	if (pgp_sig_pipe[0] < 0 && pipe2(pgp_sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = launch_on_signal;
	sa.sa_flags = SA_SIGINFO;	/* no SA_RESTART: poll() must wake */
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		if (sigaction(sigs[i], &sa, NULL) < 0)
			return -errno;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* In a child before exec: what a program started from a shell expects. */
static void launch_reset_signals(void)
{
	sigset_t none;
	int s;

	for (s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);	/* fails for 32/33 (libc's): fine */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* ---- paths ------------------------------------------------------------- */

static int launch_exe_dir(char *buf, size_t len)
{
	ssize_t n = readlink("/proc/self/exe", buf, len - 1);
	char *slash;

	if (n < 0)
		return -errno;
	buf[n] = '\0';
	slash = strrchr(buf, '/');
	if (slash == NULL)
		return -ENOENT;
	*slash = '\0';
	return 0;
}

/* The gcmond and agent of this launcher's own install: in a build tree,
 * beside client/; installed, where configure put them relative to
 * BINDIR, applied to the directory this executable really is in (a
 * wheel's bin/ and lib/gcmon/ land under whatever prefix pip installs
 * into: a venv, ~/.local, an image's /usr/local); last, the configured
 * absolute path. Never PATH: another install's gcmond would speak
 * another version of the area. */
static void launch_find_gcmond(char *buf, size_t len)
{
	const char *env = getenv("GCMON_GCMOND");
	char dir[PATH_MAX];

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	if (launch_exe_dir(dir, sizeof dir) == 0) {
		if (snprintf(buf, len, "%s/../daemon/gcmond", dir) < (int)len &&
		    access(buf, X_OK) == 0)
			return;
		if (paths_relocate(dir, BINDIR, SBINDIR, buf, len) != NULL &&
		    strlen(buf) + sizeof "/gcmond" <= len) {
			strcat(buf, "/gcmond");
			if (access(buf, X_OK) == 0)
				return;
		}
	}
	snprintf(buf, len, "%s/gcmond", SBINDIR);
}

void launch_find_agent_dir(char *buf, size_t len)
{
	const char *env = getenv("GCMON_AGENT_DIR");
	char dir[PATH_MAX], probe[PATH_MAX + 32];

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	if (launch_exe_dir(dir, sizeof dir) == 0) {
		snprintf(probe, sizeof probe, "%s/../agent/sitecustomize.py",
		    dir);
		if (access(probe, R_OK) == 0 &&
		    snprintf(buf, len, "%s/../agent", dir) < (int)len)
			return;
		if (paths_relocate(dir, BINDIR, PKGLIBDIR, buf, len) != NULL &&
		    snprintf(probe, sizeof probe, "%s/sitecustomize.py", buf) <
		    (int)sizeof probe && access(probe, R_OK) == 0)
			return;
	}
	snprintf(buf, len, "%s", PKGLIBDIR);
}

/* ---- the program ------------------------------------------------------- */

/* Sets the environment the program inherits; the launcher's own copy is
 * the one passed on (fork copies it). */
static int launch_program_env(const struct pgp_opts *o, const char *sock,
    const char *run_id, char *agent, size_t agent_len)
{
	char *pp = NULL;
	const char *old = getenv("PYTHONPATH");
	int err = 0;

	launch_find_agent_dir(agent, agent_len);
	if (old && *old) {
		if (asprintf(&pp, "%s:%s", agent, old) < 0)
			return -ENOMEM;
	} else if ((pp = strdup(agent)) == NULL) {
		return -ENOMEM;
	}
	if (setenv("PYTHONPATH", pp, 1) < 0 ||
	    setenv("GCMON_SOCKET", sock, 1) < 0 ||
	    setenv("GCMON_RUN_ID", run_id, 1) < 0)
		err = -errno;
	free(pp);
	if (err == 0 && o->dump_objects && setenv("GCMON_DUMP_OBJECTS", "1", 1) < 0)
		err = -errno;
	if (err == 0 && o->dump_garbage && setenv("GCMON_DUMP_GARBAGE", "1", 1) < 0)
		err = -errno;
	if (err == 0 && o->requests && setenv("GCMON_REQUESTS", "1", 1) < 0)
		err = -errno;
	return err;
}

/* The program's argv (malloc'd, NULL-terminated): run's interpreter
 * and script or -m module, or exec's command as given. */
static char **launch_argv(const struct pgp_opts *o)
{
	char **argv = calloc((size_t)o->nprog + 3, sizeof *argv);
	int i, n = 0;

	if (argv == NULL)
		return NULL;
	if (!o->exec)
		argv[n++] = (char *)o->python;
	if (o->module)
		argv[n++] = (char *)"-m";
	for (i = 0; i < o->nprog; i++)
		argv[n++] = o->prog[i];
	return argv;
}

/* A file without "#!" (ENOEXEC): what execvp(3) does, but posix_spawnp
 * does not (glibc 2.27 and later): /bin/sh runs it. 0 or an errno. */
static int launch_spawn_sh(const posix_spawnattr_t *at, char **argv,
    pid_t *pid_out)
{
	char path[PATH_MAX], **sh;
	int n, e;

	if (command_find(argv[0], path, sizeof path) < 0)
		return ENOEXEC;
	for (n = 0; argv[n] != NULL; n++)
		;
	if ((sh = calloc((size_t)n + 2, sizeof *sh)) == NULL)
		return ENOMEM;
	sh[0] = (char *)"/bin/sh";
	sh[1] = path;
	memcpy(sh + 2, argv + 1, (size_t)n * sizeof *sh);	/* and NULL */
	e = posix_spawn(pid_out, sh[0], NULL, at, sh, environ);
	free(sh);
	return e;
}

/*
 * Starts the program: posix_spawnp, every signal at its default action
 * and none blocked, as a program started from a shell expects. glibc
 * spawns with CLONE_VM | CLONE_VFORK: no copy of the launcher's page
 * tables and no copy-on-write faults after it (fork + exec cost ~0.7 ms
 * more here), and an exec failure comes back as its errno, its child
 * reaped already: then *exec_errno is set and *pid_out is -1. Failing
 * to create a process at all (EAGAIN) is an error returned.
 */
static int launch_spawn(const struct pgp_opts *o, pid_t *pid_out,
    int *exec_errno)
{
	posix_spawnattr_t at;
	sigset_t all, none;
	char **argv;
	int e;

	if ((argv = launch_argv(o)) == NULL)
		return -ENOMEM;
	if ((e = posix_spawnattr_init(&at)) != 0) {
		free(argv);
		return -e;
	}
	sigfillset(&all);
	sigemptyset(&none);
	if ((e = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGDEF |
	    POSIX_SPAWN_SETSIGMASK)) == 0 &&
	    (e = posix_spawnattr_setsigdefault(&at, &all)) == 0 &&
	    (e = posix_spawnattr_setsigmask(&at, &none)) == 0) {
		fflush(NULL);
		*exec_errno = 0;
		e = posix_spawnp(pid_out, argv[0], NULL, &at, argv, environ);
		if (e == ENOEXEC)
			e = launch_spawn_sh(&at, argv, pid_out);
		if (e != 0 && e != EAGAIN) {
			*exec_errno = e;
			*pid_out = -1;
			e = 0;
		}
	}
	posix_spawnattr_destroy(&at);
	free(argv);
	return -e;
}

static void launch_forward_signals(pid_t child)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP };
	size_t i;

	if (!pgp_sig_any)
		return;
	pgp_sig_any = 0;
	for (i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		if (!pgp_sig_pending[sigs[i]])
			continue;
		pgp_sig_pending[sigs[i]] = 0;
		if (child > 0)
			kill(child, sigs[i]);	/* ESRCH: it just ended */
	}
}

/* Reaps the program (and notices the daemon ending); non-blocking. */
static void launch_reap(struct pgp_run *r, FILE *err_out)
{
	pid_t p;
	int st;

	pgp_sigchld = 0;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == r->child) {
			r->child_status = st;
			r->child_done = 1;
		} else if (p == r->daemon) {
			r->daemon = 0;
			if (err_out)
				fprintf(err_out, "pygcprofiler: gcmond ended "
				    "early (%s %d); the report will be "
				    "incomplete\n", WIFSIGNALED(st) ?
				    "signal" : "status", WIFSIGNALED(st) ?
				    WTERMSIG(st) : WEXITSTATUS(st));
		}
	}
}

int launch_exit_status(int st)
{
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return 1;
}

/* ---- the daemon -------------------------------------------------------- */

/*
 * gcmond's child, between vfork and exec: its own process group (the
 * terminal's ^C is for the program; the daemon must live on to answer
 * `report`), ended with the launcher, stdin/stdout on /dev/null, the
 * ready pipe and its two client sockets kept open across exec. It runs
 * on the launcher's memory and stack, started with every signal blocked
 * so that none of the launcher's handlers runs here; it only makes
 * system calls, says why it failed in *eno, and never returns.
 */
static void launch_daemon_child(const char *gcmond, char **argv,
    const int *keep, size_t nkeep, volatile int *eno)
{
	int devnull, fl;
	size_t i;

	launch_reset_signals();	/* unblocked once no handler is ours */
	if (setpgid(0, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGTERM) < 0)
		goto fail;
	if (getppid() == 1) {		/* the launcher died before the prctl */
		*eno = ESRCH;
		_exit(127);
	}
	for (i = 0; i < nkeep; i++)
		if (keep[i] >= 0 && ((fl = fcntl(keep[i], F_GETFD)) < 0 ||
		    fcntl(keep[i], F_SETFD, fl & ~FD_CLOEXEC) < 0))
			goto fail;
	/* Without a /dev/null (a bare chroot), gcmond keeps ours. */
	if ((devnull = open("/dev/null", O_RDWR)) >= 0) {
		dup2(devnull, STDIN_FILENO);
		dup2(devnull, STDOUT_FILENO);
		if (devnull > STDERR_FILENO)
			close(devnull);
	}
	execv(gcmond, argv);
fail:
	*eno = errno ? errno : EIO;
	_exit(127);
}

/*
 * gcmond's process: its pid, or a negative errno, its exec's included.
 * vfork, not fork: no copy of the launcher's page tables, and no
 * copy-on-write fault on every page the launcher writes until gcmond
 * execs; the launcher waits only for the exec. Apart from its caller,
 * so that no local of that one lives across vfork's two returns.
 */
static pid_t launch_vfork_daemon(const char *gcmond, char **argv,
    const int *keep, size_t nkeep)
{
	volatile int eno = 0;
	sigset_t all, old;
	pid_t pid;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = vfork();
	if (pid == 0)
		launch_daemon_child(gcmond, argv, keep, nkeep, &eno);
	if (pid < 0)
		eno = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (pid > 0 && eno != 0)	/* it never became gcmond */
		waitpid(pid, NULL, 0);
	return eno != 0 ? -eno : pid;
}

/* What the launcher asks first on the watch socket: the run's events,
 * as binary records unless they are printed as JSON. New reference. */
static json_t *launch_watch_request(const struct pgp_run *r)
{
	return r->o->json ? json_pack("{s:s,s:s}", "cmd", "watch", "run",
	    r->run_id) : json_pack("{s:s,s:s,s:s}", "cmd", "watch", "run",
	    r->run_id, "events", "binary");
}

/* A connected socket pair: [0] ours, [1] gcmond's. Both close-on-exec
 * (the child clears it on gcmond's). */
static int launch_socketpair(int fds[2])
{
	return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) < 0 ?
	    -errno : 0;
}

/*
 * Starts gcmond: *ready_fd is the read end of its --ready-fd pipe;
 * r->ctl_fd and (with want_watch) r->watch_fd are sockets it serves from
 * its start (--client-fd), a ping and the watch request already written
 * in them. gcmond handles those before it reads any agent, so the watch
 * misses no event: the program can start at once, in parallel with
 * gcmond's own start, and launch_daemon_ready reads the answers later.
 */
static int launch_start_daemon(struct pgp_run *r, const char *gcmond,
    const char *sock, int want_watch, int *ready_fd)
{
	char thr[64], fdnum[16], interval[64], listen_on[32];
	char ctlnum[16], watchnum[16];
	char *argv[20];
	int fds[2] = { -1, -1 }, ctl[2] = { -1, -1 }, wat[2] = { -1, -1 };
	int keep[3], err, n;
	json_t *req = NULL;
	pid_t pid;

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	if ((err = launch_socketpair(ctl)) < 0 ||
	    (want_watch && (err = launch_socketpair(wat)) < 0))
		goto out_close;
	err = -ENOMEM;
	if ((req = json_pack("{s:s}", "cmd", "ping")) == NULL ||
	    (err = ctl_send(ctl[0], req)) < 0)
		goto out_close;
	json_decref(req);
	req = NULL;
	if (want_watch && ((req = launch_watch_request(r)) == NULL ||
	    (err = ctl_send(wat[0], req)) < 0)) {
		err = err < 0 ? err : -ENOMEM;
		goto out_close;
	}
	json_decref(req);
	req = NULL;
	snprintf(thr, sizeof thr, "%.17g", r->o->alert_ms);
	snprintf(interval, sizeof interval, "%.17g", r->o->interval_s);
	snprintf(fdnum, sizeof fdnum, "%d", fds[1]);
	snprintf(ctlnum, sizeof ctlnum, "%d", ctl[1]);
	snprintf(watchnum, sizeof watchnum, "%d", wat[1]);
	n = 0;
	argv[n++] = (char *)gcmond;
	argv[n++] = (char *)"--socket";
	argv[n++] = (char *)sock;
	argv[n++] = (char *)"--quiet";
	argv[n++] = (char *)"--alert-threshold-ms";
	argv[n++] = thr;
	argv[n++] = (char *)"--ready-fd";
	argv[n++] = fdnum;
	argv[n++] = (char *)"--sample-interval";
	argv[n++] = interval;
	argv[n++] = (char *)"--client-fd";
	argv[n++] = ctlnum;
	if (want_watch) {
		argv[n++] = (char *)"--client-fd";
		argv[n++] = watchnum;
	}
	if (r->o->live) {
		snprintf(listen_on, sizeof listen_on, "127.0.0.1:%u",
		    r->o->live_port);
		argv[n++] = (char *)"--http-listen";
		argv[n++] = listen_on;
	}
	argv[n] = NULL;
	keep[0] = fds[1];
	keep[1] = ctl[1];
	keep[2] = wat[1];
	fflush(NULL);
	if ((pid = launch_vfork_daemon(gcmond, argv, keep, 3)) < 0) {
		err = (int)pid;
		goto out_close;
	}
	close(fds[1]);		/* EOF on fds[0] once gcmond has it no more */
	close(ctl[1]);
	if (wat[1] >= 0)
		close(wat[1]);
	r->daemon = pid;
	r->ctl_fd = ctl[0];
	r->watch_fd = wat[0];
	*ready_fd = fds[0];
	return 0;
out_close:
	json_decref(req);
	for (n = 0; n < 2; n++) {
		close(fds[n]);
		if (ctl[n] >= 0)
			close(ctl[n]);
		if (wat[n] >= 0)
			close(wat[n]);
	}
	return err;
}

static double launch_now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* An answer on fd that says ok, within what is left of deadline. */
static int launch_read_ok(int fd, double deadline)
{
	json_t *ans;
	int err, ms;

	do {
		ms = (int)((deadline - launch_now_mono()) * 1000) + 1;
		err = ctl_read(fd, &ans, ms > 0 ? ms : 0);
	} while (err == -EINTR);
	if (err < 0)
		return err;
	err = json_is_true(json_object_get(ans, "ok")) ? 0 : -EPROTO;
	json_decref(ans);
	return err;
}

/* What launch_wait_ready was waiting for when it failed. */
enum launch_wait_step {
	LAUNCH_WAIT_START, LAUNCH_WAIT_PING, LAUNCH_WAIT_WATCH
};

/* Waits for gcmond's ready byte (EOF: it exited), then for the answers
 * to what launch_start_daemon wrote; *step says which failed. */
static int launch_wait_ready(struct pgp_run *r, int ready_fd,
    enum launch_wait_step *step)
{
	double deadline = launch_now_mono() + PGP_PING_TIMEOUT_MS / 1000.0;
	struct pollfd pfd = { .fd = ready_fd, .events = POLLIN };
	double left_ms;
	char byte;
	ssize_t n;
	int err;

	*step = LAUNCH_WAIT_START;
	/* One wait; a signal (SIGCHLD, ^C) only restarts it. */
	while ((left_ms = (deadline - launch_now_mono()) * 1000) > 0 &&
	    poll(&pfd, 1, (int)left_ms + 1) <= 0)
		;
	if (left_ms <= 0)
		return -ETIMEDOUT;
	do
		n = read(ready_fd, &byte, 1);
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		waitpid(r->daemon, NULL, 0);	/* it closed the pipe: ended */
		r->daemon = 0;
		return -ECHILD;
	}
	*step = LAUNCH_WAIT_PING;
	if ((err = launch_read_ok(r->ctl_fd, deadline)) < 0)
		return err;
	*step = LAUNCH_WAIT_WATCH;
	return r->watch_fd >= 0 ? launch_read_ok(r->watch_fd, deadline) : 0;
}

/*
 * Reaps pid (our child) once it ends, waiting at most ms: 1 when it did.
 * Woken by the process's end itself (a pidfd: readable when it exits;
 * the pid cannot be reused before we reap it), so the launcher ends
 * as soon as gcmond has, not at the next tick of a sleep loop; every
 * 1 ms where the kernel has no pidfd_open (before Linux 5.3).
 */
static int launch_reap_within(pid_t pid, int ms, int *st)
{
	double deadline = launch_now_mono() + ms / 1000.0, left_ms;
	int pfd = -1, done = 0;

#ifdef SYS_pidfd_open
	pfd = (int)syscall(SYS_pidfd_open, pid, 0);
#endif
	for (;;) {
		if (waitpid(pid, st, WNOHANG) == pid) {
			done = 1;
			break;
		}
		if ((left_ms = (deadline - launch_now_mono()) * 1000) <= 0)
			break;
		if (pfd >= 0) {
			struct pollfd p = { .fd = pfd, .events = POLLIN };

			poll(&p, 1, (int)left_ms + 1);	/* EINTR: look again */
		} else {
			usleep(1000);
		}
	}
	if (pfd >= 0)
		close(pfd);
	return done;
}

static void launch_stop_daemon(struct pgp_run *r)
{
	json_t *req, *ans;
	int st;

	if (r->ctl_fd >= 0 && !r->stop_sent) {
		req = json_pack("{s:s}", "cmd", "stop");
		if (ctl_request(r->ctl_fd, req, &ans, 2000) == 0)
			json_decref(ans);
		json_decref(req);
	}
	if (r->daemon <= 0)
		return;
	if (!launch_reap_within(r->daemon, 5000, &st)) {
		kill(r->daemon, SIGKILL);
		waitpid(r->daemon, &st, 0);
	}
	r->daemon = 0;
}

/* What the program's errors name: exec's command, or run's interpreter. */
static const char *launch_program_name(const struct pgp_opts *o)
{
	return o->exec ? o->prog[0] : o->python;
}

/* The program could not be exec'd (eno): says so; its exit status. */
static int launch_exec_failed(const struct pgp_opts *o, int eno)
{
	int status = command_exec_status(eno);

	fprintf(stderr, "pygcprofiler: cannot run %s: %s (exit status %d)\n",
	    launch_program_name(o), strerror(eno), status);
	return status;
}

int launch_program(struct pgp_run *r, const char *sock)
{
	int err, eno = 0;

	err = launch_program_env(r->o, sock, r->run_id, r->agent_dir,
	    sizeof r->agent_dir);
	if (err == 0)
		err = launch_install_signals();	/* embedded: set again, same */
	if (err == 0)
		err = launch_spawn(r->o, &r->child, &eno);
	if (err < 0) {
		fprintf(stderr, "pygcprofiler: cannot start %s: %s\n",
		    launch_program_name(r->o), strerror(-err));
		return err;
	}
	if (eno) {
		r->child_done = 1;	/* reaped by posix_spawnp */
		r->exec_failed = launch_exec_failed(r->o, eno);
	}
	return 0;
}

/*
 * Shared mode: the launcher becomes the program (the environment set,
 * every signal reset as for launch_spawn's, then execvp). Nothing needs a
 * parent there (but as pid 1: pygcprofiler.c): no events to stream, no
 * report, so a second process would only add a fork, a wait and a signal
 * relay, and the program's pid, signals and exit status are its own.
 * Returns only when the exec failed: the exit status to end with (127,
 * 126), the error said.
 */
int launch_exec_program(struct pgp_run *r, const char *sock)
{
	char **argv = NULL;
	int err, eno;

	err = launch_program_env(r->o, sock, r->run_id, r->agent_dir,
	    sizeof r->agent_dir);
	if (err == 0 && (argv = launch_argv(r->o)) == NULL)
		err = -ENOMEM;
	if (err < 0) {
		fprintf(stderr, "pygcprofiler: cannot start %s: %s\n",
		    launch_program_name(r->o), strerror(-err));
		return 1;
	}
	fflush(NULL);
	launch_reset_signals();
	execvp(argv[0], argv);
	eno = errno;
	free(argv);
	return launch_exec_failed(r->o, eno);
}

/* ---- the run ----------------------------------------------------------- */

void launch_make_run_id(char *buf, size_t len)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(buf, len, "pgp-%ld-%lx%05lx", (long)getpid(),
	    (unsigned long)ts.tv_sec, (unsigned long)(ts.tv_nsec / 10000));
}

/* Waits for the program, forwarding signals and streaming events. */
/* Sleeps until a signal or the watch stream (if any) has something. */
static void launch_sleep(struct pgp_run *r)
{
	struct pollfd pfd[2] = { { .fd = pgp_sig_pipe[0], .events = POLLIN },
	    { .fd = r->watch_fd, .events = POLLIN } };
	char buf[64];

	if (poll(pfd, r->watch_fd >= 0 ? 2 : 1, PGP_POLL_MS) > 0 &&
	    (pfd[0].revents & POLLIN))
		while (read(pgp_sig_pipe[0], buf, sizeof buf) > 0)
			;
}

void launch_supervise(struct pgp_run *r, FILE *err_out)
{
	while (!r->child_done) {
		launch_forward_signals(r->child);
		launch_reap(r, err_out);
		if (r->child_done)
			break;
		launch_sleep(r);
		if (r->watch_fd >= 0)
			watch_pump(r, 0);
	}
	launch_forward_signals(0);
}


json_t *launch_wait_request(const struct pgp_run *r)
{
	return json_pack("{s:s,s:s,s:i,s:i}", "cmd", "wait", "run", r->run_id,
	    "timeout_ms", PGP_WAIT_TIMEOUT_MS, "min_processes", 0);
}

/*
 * gcmond streamed each process's end after its events and before it
 * answered the wait: reading the watch stream until every process of the
 * run has ended is exact, with no quiet period. Only a watcher that lost
 * objects (a `lost` notice) reads on until a quiet PGP_DRAIN_MS.
 */
void launch_wait_run_end(struct pgp_run *r, const json_t *ans)
{
	double deadline;
	int err;

	r->nproc_run = -1;
	if (ans == NULL || !json_is_true(json_object_get(ans, "ok")))
		return;
	r->nproc_run = (long)json_integer_value(json_object_get(ans,
	    "processes"));
	/* Those still live at the time limit will not end now. */
	r->nended_want = (unsigned long)(r->nproc_run -
	    (long)json_integer_value(json_object_get(ans, "live")));
	if (r->nproc_run == 0)
		return;		/* no agent reached gcmond: nothing will come */
	deadline = launch_now_mono() + 3.0;
	while (r->watch_fd >= 0 && launch_now_mono() < deadline) {
		if (r->lost == 0 && r->nended >= r->nended_want)
			break;
		err = watch_pump(r, r->lost ? PGP_DRAIN_MS : PGP_POLL_MS);
		if (err == -ECONNRESET || (err == -ETIMEDOUT && r->lost))
			break;
	}
}

/* ---- the private gcmond of embedded mode -------------------------------- */

/* Where the private directory goes: $TMPDIR if the user set one, else a
 * memory-backed one ($XDG_RUNTIME_DIR, /dev/shm), since the processes'
 * shared areas live there and a disk-backed file would be written back;
 * /tmp as the last resort. */
static const char *launch_tmp_base(void)
{
	static const char *const env[] = { "TMPDIR", "XDG_RUNTIME_DIR" };
	const char *v;
	size_t i;

	for (i = 0; i < sizeof env / sizeof env[0]; i++)
		if ((v = getenv(env[i])) != NULL && *v && strlen(v) < 60 &&
		    access(v, W_OK | X_OK) == 0)
			return v;
	return access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : "/tmp";
}

int launch_private_dir(char *dir, size_t dirlen, char *sock, size_t socklen)
{
	const char *tmp = launch_tmp_base();

	snprintf(dir, dirlen, "%s/pygcprofiler-XXXXXX", tmp);
	if (mkdtemp(dir) == NULL) {
		int err = -errno;

		fprintf(stderr, "pygcprofiler: cannot create a private "
		    "directory in %s: %s\n", tmp, strerror(-err));
		return err;
	}
	snprintf(sock, socklen, "%s/gcmon.sock", dir);
	return 0;
}

/* --live without a port: one the kernel says is free now. */
static int launch_free_port(unsigned *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
	    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		err = -errno;
	else
		*port = ntohs(sin.sin_port);
	close(fd);
	return err;
}

int launch_private_daemon(struct pgp_run *r, const char *sock, int want_watch)
{
	int err = 0;

	launch_find_gcmond(r->gcmond, sizeof r->gcmond);
	if (r->o->live && r->o->live_port == 0 &&
	    (err = launch_free_port(&r->o->live_port)) < 0) {
		fprintf(stderr, "pygcprofiler: --live: no free port: %s\n",
		    strerror(-err));
		return err;
	}
	err = launch_install_signals();
	if (err == 0)
		err = launch_start_daemon(r, r->gcmond, sock, want_watch,
		    &r->ready_fd);
	if (err < 0)
		fprintf(stderr, "pygcprofiler: cannot start %s: %s\n",
		    r->gcmond, strerror(-err));
	return err;
}

/* The program, started while gcmond was not ready, when gcmond will not
 * be: ended, so that nothing runs unmonitored behind a failed launch. */
static void launch_stop_program(struct pgp_run *r)
{
	int st;

	if (r->child <= 0 || r->child_done)
		return;
	kill(r->child, SIGKILL);
	if (waitpid(r->child, &st, 0) == r->child) {
		r->child_status = st;
		r->child_done = 1;
	}
	fprintf(stderr, "pygcprofiler: the program (pid %d) was stopped\n",
	    (int)r->child);
}

int launch_daemon_ready(struct pgp_run *r, const char *sock)
{
	enum launch_wait_step step;
	int err = launch_wait_ready(r, r->ready_fd, &step);

	close(r->ready_fd);
	r->ready_fd = -1;
	if (err == -ECHILD)
		fprintf(stderr, "pygcprofiler: %s exited at start "
		    "(see its message above)\n", r->gcmond);
	else if (err < 0 && step == LAUNCH_WAIT_WATCH)
		fprintf(stderr, "pygcprofiler: cannot watch the run on %s: "
		    "%s\n", sock, strerror(-err));
	else if (err < 0)
		fprintf(stderr, "pygcprofiler: %s did not answer at %s: "
		    "%s\n", r->gcmond, sock, strerror(-err));
	else if (r->o->live)
		fprintf(stderr, "pygcprofiler: live dashboard at "
		    "http://127.0.0.1:%u/ (while the program runs)\n",
		    r->o->live_port);
	if (err < 0) {
		launch_stop_program(r);
		if (r->daemon > 0)
			kill(r->daemon, SIGKILL);	/* reaped by end_private */
		ctl_close(r->ctl_fd);
		r->ctl_fd = -1;
	}
	return err;
}

/* The agent directory of the private gcmond (<sock>.d): its files are
 * the shared areas of processes that outlived the run, which nobody
 * reads any more (they keep their mappings). */
static void launch_remove_agent_dir(const char *sock)
{
	char adir[PATH_MAX];
	struct dirent *e;
	DIR *d;

	if ((size_t)snprintf(adir, sizeof adir, "%s.d", sock) >= sizeof adir ||
	    (d = opendir(adir)) == NULL)
		return;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			(void)unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
	(void)rmdir(adir);	/* the check is the rmdir of its parent */
}

void launch_end_private(struct pgp_run *r, const char *dir, const char *sock)
{
	if (r->ready_fd >= 0)
		close(r->ready_fd);
	r->ready_fd = -1;
	launch_stop_daemon(r);
	if (r->ctl_fd >= 0)
		ctl_close(r->ctl_fd);
	r->ctl_fd = -1;
	unlink(sock);
	launch_remove_agent_dir(sock);
	if (rmdir(dir) < 0 && errno != ENOENT)
		fprintf(stderr, "pygcprofiler: cannot remove %s: %s\n", dir,
		    strerror(errno));
}
