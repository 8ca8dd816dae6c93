/*
 * attach.c: `pygcprofiler attach [--socket PATH] [--service NAME] [--tree]
 * PID...` and `pygcprofiler detach PID...`: load the agent into running
 * CPython processes and start it as gcmon.start() does, or stop it.
 * Called by main (pygcprofiler.c).
 *
 * What runs in the target: a short loader (agent/bootstrap/gcmon/_attach.py,
 * copied into a fresh 0700 directory of the target's own filesystem view,
 * /proc/PID/root/tmp) run by the target's main thread at a safe point
 * (between two bytecodes, GIL held). On 3.10-3.13 gdb (batch mode) stops
 * the target, maps one anonymous page, writes a one-statement Python
 * snippet there and queues it with Py_AddPendingCall(PyRun_SimpleString,
 * page), then detaches at once: the target is stopped only for that, and
 * the loader runs when the interpreter next checks its eval breaker. On
 * 3.14+ sys.remote_exec (PEP 768), run by the target's own interpreter,
 * does the same without stopping it. A target that does not reach a safe
 * point in time is cancelled (the loader finds its request gone and does
 * nothing).
 *
 * It must never harm the target: everything that can be checked from
 * outside (the interpreter, its version and build, the permission to
 * ptrace) is checked before gdb touches it, and the loader never raises
 * into the program, never prints, binds no name in __main__.
 */
#include "config.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "attach.h"
#include "ctl.h"
#include "pgp.h"

#define ATTACH_MAX_TARGETS	1024
#define ATTACH_GDB_TIMEOUT_MS	30000	/* gdb itself, per target */
#define ATTACH_GRACE_MS		5000	/* a loader already running */
#define ATTACH_OUT_MAX		65536	/* what we keep of gdb's output */
#define CAP_SYS_PTRACE_BIT	19
#define ATTACH_TMP_DIRS		{ "tmp", "dev/shm", "var/tmp" }

enum attach_state {
	AT_PENDING,		/* checked, not injected yet */
	AT_WAITING,		/* queued in the target, waiting for its result */
	AT_DONE,		/* result read */
	AT_FAILED,		/* msg says why */
};

struct attach_target {
	pid_t pid;
	int named;			/* on the command line (not --tree) */
	enum attach_state state;
	unsigned long long start_ticks;
	unsigned uid, gid;
	char exe[PATH_MAX];
	struct attach_py py;
	enum attach_method method;
	char dir[PATH_MAX];		/* our path of its directory */
	int tmp_fd;			/* its parent (/proc/PID/root/tmp), -1 */
	int dir_fd;			/* it, -1 */
	const char *dir_in;		/* the same, in the target's view */
	double t_injected;		/* monotonic s */
	long long stopped_ns;		/* -1: not measured */
	char msg[1024];
	/* From the result file. */
	char r_state[32], r_path[PATH_MAX], r_socket[PATH_MAX];
	char r_error[512], r_version[32], r_via[32];
	long long r_before, r_held_ns;
	int r_ok, r_again;
};

/* ---- /proc ------------------------------------------------------------- */

static double attach_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The whole of a small file into buf (NUL-terminated); bytes or -errno.
 * path relative to dirfd (AT_FDCWD), never through a symlink at its end. */
static ssize_t attach_read_at(int dirfd, const char *path, char *buf,
    size_t len)
{
	ssize_t n, got = 0;
	int fd = openat(dirfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	while ((size_t)got < len - 1) {
		n = read(fd, buf + got, len - 1 - (size_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			close(fd);
			return err;
		}
		if (n == 0)
			break;
		got += n;
	}
	close(fd);
	buf[got] = '\0';
	return got;
}

/* State letter, ppid and start time of pid; 0 or -errno. */
static int attach_proc_stat(pid_t pid, char *state, pid_t *ppid,
    unsigned long long *ticks)
{
	char path[64], buf[4096], *p;
	unsigned long long v;
	int field;

	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (attach_read_at(AT_FDCWD, path, buf, sizeof buf) < 0)
		return -ESRCH;
	/* comm may hold anything: the fields start after its last ')'. */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return -EPROTO;
	p += 2;
	*state = *p;
	for (field = 3; *p; field++) {
		if (field == 4 && ppid)
			*ppid = (pid_t)strtol(p, NULL, 10);
		if (field == 22) {
			v = strtoull(p, NULL, 10);
			*ticks = v;
			return 0;
		}
		if ((p = strchr(p, ' ')) == NULL)
			break;
		p++;
	}
	return -EPROTO;
}

/* Whether pid is still the process we looked at (not ended, not reused). */
static int attach_alive(const struct attach_target *t)
{
	unsigned long long ticks;
	char st;

	return attach_proc_stat(t->pid, &st, NULL, &ticks) == 0 &&
	    ticks == t->start_ticks && st != 'Z' && st != 'X';
}

/* The value after "Key:" in a /proc/PID/status text, or NULL. */
static const char *attach_status_field(const char *text, const char *key)
{
	size_t n = strlen(key);
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, key, n) == 0 && p[n] == ':')
			return p + n + 1;
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
	return NULL;
}

static unsigned long long attach_hex_field(const char *text, const char *key)
{
	const char *v = attach_status_field(text, key);

	return v ? strtoull(v, NULL, 16) : 0;
}

static int attach_yama_scope(void)
{
	char buf[32];

	if (attach_read_at(AT_FDCWD, "/proc/sys/kernel/yama/ptrace_scope", buf,
	    sizeof buf) <= 0)
		return -1;
	return atoi(buf);
}

/* Our effective and permitted capabilities. */
static void attach_own_caps(unsigned long long *eff, unsigned long long *prm)
{
	char buf[8192];

	*eff = *prm = 0;
	if (attach_read_at(AT_FDCWD, "/proc/self/status", buf, sizeof buf) > 0) {
		*eff = attach_hex_field(buf, "CapEff");
		*prm = attach_hex_field(buf, "CapPrm");
	}
}

/* ---- inspecting a target ----------------------------------------------- */

static const char *attach_base(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* Whether we may ptrace t (what the kernel will say, said first). */
static int attach_check_permission(struct attach_target *t)
{
	char path[64], status[8192], why[512];
	unsigned long long eff, prm, tprm;
	unsigned ruid = 0, euid = 0, suid = 0;
	const char *v;
	int same;

	attach_own_caps(&eff, &prm);
	snprintf(path, sizeof path, "/proc/%d/status", (int)t->pid);
	if (attach_read_at(AT_FDCWD, path, status, sizeof status) < 0)
		return 0;	/* gone: said later */
	if ((v = attach_status_field(status, "Uid")) != NULL &&
	    sscanf(v, "%u %u %u", &ruid, &euid, &suid) != 3)
		ruid = euid = suid = 0;
	tprm = attach_hex_field(status, "CapPrm");
	same = ruid == geteuid() && euid == geteuid() && suid == geteuid();
	if (attach_ptrace_refusal(attach_yama_scope(),
	    (int)((eff >> CAP_SYS_PTRACE_BIT) & 1), same,
	    (tprm & ~prm) == 0, euid, (unsigned)geteuid(), why, sizeof why)) {
		snprintf(t->msg, sizeof t->msg, "not permitted to attach: %s",
		    why);
		return -1;
	}
	return 0;
}

/* The first libpython3.N (or libpypy) mapped in pid, into *lib (left as
 * it is when there is none). */
static void attach_mapped_libpython(pid_t pid, struct attach_py *lib)
{
	char path[64], line[PATH_MAX + 256], *p;
	struct attach_py py;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return;
	while (fgets(line, sizeof line, f)) {
		if ((p = strchr(line, '/')) == NULL)
			continue;
		p[strcspn(p, "\n")] = '\0';
		if (attach_identify(attach_base(p), &py) &&
		    strncmp(attach_base(p), "lib", 3) == 0) {
			*lib = py;
			break;
		}
	}
	fclose(f);
}

/* What the kernel says about t->pid: uid, exe, the interpreter its exe
 * or mapped libraries name. 0, or -1 with t->msg set. */
static int attach_inspect(struct attach_target *t)
{
	char path[64], status[8192];
	struct attach_py lib = { ATTACH_PY_NONE, 0, 0, 0 };
	const char *v;
	ssize_t n;
	char st;

	if (attach_proc_stat(t->pid, &st, NULL, &t->start_ticks) < 0 ||
	    st == 'Z' || st == 'X') {
		snprintf(t->msg, sizeof t->msg, "no such process");
		return -1;
	}
	snprintf(path, sizeof path, "/proc/%d/status", (int)t->pid);
	if (attach_read_at(AT_FDCWD, path, status, sizeof status) < 0) {
		snprintf(t->msg, sizeof t->msg, "no such process");
		return -1;
	}
	/* Uid: real effective saved fs. The kernel asks all of them. */
	if ((v = attach_status_field(status, "Uid")) != NULL)
		t->uid = (unsigned)strtoul(v, NULL, 10);
	if ((v = attach_status_field(status, "Gid")) != NULL)
		t->gid = (unsigned)strtoul(v, NULL, 10);
	/* Before /proc/PID/exe and maps, which the same rules guard. */
	if (attach_check_permission(t) < 0)
		return -1;
	snprintf(path, sizeof path, "/proc/%d/exe", (int)t->pid);
	n = readlink(path, t->exe, sizeof t->exe - 1);
	if (n < 0 && errno != ENOENT) {
		snprintf(t->msg, sizeof t->msg, "cannot read %s: %s", path,
		    strerror(errno));
		return -1;
	}
	t->exe[n > 0 ? n : 0] = '\0';
	attach_mapped_libpython(t->pid, &lib);
	/* The exe names it (python3.11); else a mapped libpython3.11.so
	 * (uWSGI, an embedding program). */
	if (!attach_identify(attach_base(t->exe), &t->py))
		t->py = lib;
	else if (lib.kind != ATTACH_PY_NONE)
		t->py = lib;
	if (t->py.kind == ATTACH_PY_NONE) {
		snprintf(t->msg, sizeof t->msg, "not a CPython process (its "
		    "executable %s is no python3.N, and no libpython3.N is "
		    "mapped in it)", *t->exe ? t->exe : "(unreadable)");
		return -1;
	}
	if (t->py.kind == ATTACH_PY_PYPY) {
		snprintf(t->msg, sizeof t->msg, "not CPython but PyPy %d.%d "
		    "(%s): the agent is a CPython extension", t->py.major,
		    t->py.minor, t->exe);
		return -1;
	}
	t->method = attach_method_for(t->py.major, t->py.minor,
	    t->py.free_threaded);
	if (t->method == ATTACH_TOO_OLD) {
		snprintf(t->msg, sizeof t->msg, "it runs Python %d.%d (%s); the "
		    "agent needs CPython 3.10 or later", t->py.major,
		    t->py.minor, t->exe);
		return -1;
	}
	if (t->method == ATTACH_FREE_THREADED) {
		snprintf(t->msg, sizeof t->msg, "it runs a free-threaded "
		    "CPython %d.%dt (%s), which cannot load abi3 extensions "
		    "such as the agent", t->py.major, t->py.minor, t->exe);
		return -1;
	}
	return 0;
}

/* ---- the target's directory -------------------------------------------- */

/* Copies from into a new file name of dirfd. */
static int attach_copy_file(const char *from, int dirfd, const char *name,
    mode_t mode)
{
	char buf[65536];
	ssize_t n, w, off;
	int in, out, err = 0;

	if ((in = open(from, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, mode);
	if (out < 0) {
		err = -errno;
		close(in);
		return err;
	}
	while (err == 0 && (n = read(in, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno != EINTR)
				err = -errno;
			continue;
		}
		for (off = 0; off < n && err == 0; off += w)
			if ((w = write(out, buf + off, (size_t)(n - off))) < 0)
				err = errno == EINTR ? (w = 0, 0) : -errno;
	}
	if (close(out) < 0 && err == 0)
		err = -errno;
	close(in);
	return err;
}

/* text into a new file name of dirfd (AT_FDCWD: a path). */
static int attach_write_file(int dirfd, const char *name, const char *text)
{
	int fd, err = 0;
	size_t len = strlen(text);

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		err = errno ? -errno : -EIO;
	if (close(fd) < 0 && err == 0)
		err = -errno;
	return err;
}

/* Removes the directory name in parent_fd and what is in it (ours, the
 * loader's files, a __pycache__). Through descriptors: the target's
 * /proc/PID/root is gone once it has exited, its directory is not. */
static void attach_remove_at(int parent_fd, const char *name)
{
	struct dirent *e;
	DIR *d;
	int fd;

	fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC);
	if (fd < 0)
		return;
	if ((d = fdopendir(fd)) == NULL) {
		close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, e->d_name, 0) < 0 && errno == EISDIR)
			attach_remove_at(fd, e->d_name);
	}
	closedir(d);		/* closes fd */
	(void)unlinkat(parent_fd, name, AT_REMOVEDIR);
}

static void attach_remove_dir(struct attach_target *t)
{
	if (t->dir_fd >= 0)
		close(t->dir_fd);
	t->dir_fd = -1;
	if (t->tmp_fd < 0)
		return;
	if (t->dir[0] != '\0')
		attach_remove_at(t->tmp_fd, attach_base(t->dir));
	close(t->tmp_fd);
	t->tmp_fd = -1;
	t->dir[0] = '\0';
}

/* Whether a and b are one file. */
static int attach_same_file(const char *a, const char *b)
{
	struct stat sa, sb;

	return stat(a, &sa) == 0 && stat(b, &sb) == 0 &&
	    sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* rel (a/b) below rootfd, one component at a time and through no
 * symlink: an absolute link in the target's tree would resolve in ours,
 * and this runs as root against containers. A new descriptor, or -errno. */
static int attach_open_beneath(int rootfd, const char *rel)
{
	char buf[64], *comp, *save = NULL;
	int fd = rootfd, nfd, err;

	snprintf(buf, sizeof buf, "%s", rel);
	for (comp = strtok_r(buf, "/", &save); comp;
	    comp = strtok_r(NULL, "/", &save)) {
		nfd = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
		    O_CLOEXEC);
		err = -errno;
		if (fd != rootfd)
			close(fd);
		if (nfd < 0)
			return err;
		fd = nfd;
	}
	return fd == rootfd ? -EINVAL : fd;
}

/* Makes t's directory in tmp (relative to its root, rootfd): t->tmp_fd,
 * t->dir_fd, t->dir. 0 or -errno. */
static int attach_make_dir(struct attach_target *t, int rootfd,
    const char *tmp)
{
	char path[64];
	const char *name;
	int err;

	if ((t->tmp_fd = attach_open_beneath(rootfd, tmp)) < 0)
		return t->tmp_fd;
	snprintf(path, sizeof path, "/proc/self/fd/%d/gcmon-attach-XXXXXX",
	    t->tmp_fd);
	if (mkdtemp(path) == NULL)
		goto out_errno;
	name = attach_base(path);
	t->dir_fd = openat(t->tmp_fd, name, O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (t->dir_fd < 0) {
		err = -errno;
		(void)unlinkat(t->tmp_fd, name, AT_REMOVEDIR);
		goto out_close;
	}
	snprintf(t->dir, sizeof t->dir, "/proc/%d/root/%s/%s", (int)t->pid,
	    tmp, name);
	return 0;
out_errno:
	err = -errno;
out_close:
	close(t->tmp_fd);
	t->tmp_fd = -1;
	return err;
}

/* Hands name (in dirfd; "" for dirfd itself) to the target's user, who
 * must rename the request and write the result. */
static int attach_give(const struct attach_target *t, int dirfd,
    const char *name)
{
	if (geteuid() != 0 || t->uid == 0)
		return 0;
	if (*name == '\0')
		return fchown(dirfd, t->uid, t->gid) < 0 ? -errno : 0;
	return fchownat(dirfd, name, t->uid, t->gid, AT_SYMLINK_NOFOLLOW) < 0 ?
	    -errno : 0;
}

/* t's directory in its /tmp (or /dev/shm, /var/tmp) as it sees it:
 * t->dir, t->dir_fd, t->dir_in. 0, or -1 with t->msg set. */
static int attach_open_dir(struct attach_target *t)
{
	static const char *const tmps[] = ATTACH_TMP_DIRS;
	char root[64];
	size_t i, rootlen;
	int err = -ENOENT, rootfd;

	rootlen = (size_t)snprintf(root, sizeof root, "/proc/%d/root",
	    (int)t->pid);
	if ((rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(t->msg, sizeof t->msg, "cannot open %s: %s", root,
		    strerror(errno));
		return -1;
	}
	for (i = 0; i < sizeof tmps / sizeof tmps[0]; i++)
		if ((err = attach_make_dir(t, rootfd, tmps[i])) == 0)
			break;
	close(rootfd);
	if (err < 0) {
		snprintf(t->msg, sizeof t->msg, "cannot make a directory in "
		    "its /tmp, /dev/shm or /var/tmp (%s/%s): %s", root, tmps[0],
		    strerror(-err));
		return -1;
	}
	t->dir_in = t->dir + rootlen;
	return 0;
}

/* Every file of the gcmon package of agent_dir (not its __pycache__)
 * into t's directory, as gcmon/, given to its user. 0 or -errno. */
static int attach_copy_package(struct attach_target *t, const char *agent_dir)
{
	char path[PATH_MAX + 300];
	struct dirent *e;
	struct stat st;
	DIR *d;
	int err = 0, pkgfd;

	if (mkdirat(t->dir_fd, "gcmon", 0700) < 0)
		return -errno;
	pkgfd = openat(t->dir_fd, "gcmon", O_RDONLY | O_DIRECTORY |
	    O_NOFOLLOW | O_CLOEXEC);
	if (pkgfd < 0)
		return -errno;
	snprintf(path, sizeof path, "%s/gcmon", agent_dir);
	if ((d = opendir(path)) == NULL)
		err = -errno;
	while (d != NULL && err == 0 && (e = readdir(d)) != NULL) {
		snprintf(path, sizeof path, "%s/gcmon/%s", agent_dir,
		    e->d_name);
		if (e->d_name[0] == '.' || stat(path, &st) < 0 ||
		    !S_ISREG(st.st_mode))
			continue;
		if ((err = attach_copy_file(path, pkgfd, e->d_name, 0600)) == 0)
			err = attach_give(t, pkgfd, e->d_name);
	}
	if (d != NULL)
		closedir(d);
	close(pkgfd);
	return err < 0 ? err : attach_give(t, t->dir_fd, "gcmon");
}

/* The target's directory (attach_open_dir), holding loader.py, the
 * request and, when the agent is not at the same path in its view
 * (another mount namespace), a copy of the gcmon package. Owned by the
 * target's user, who must write there; we touch it only through
 * descriptors opened before that. 0, or -1 with t->msg set. */
static int attach_prepare(struct attach_target *t, const struct attach_opts *o,
    const char *agent_dir, const char *sock)
{
	char ours[PATH_MAX + 300], theirs[PATH_MAX * 2];
	char *req = NULL;
	const char *pkgdir = agent_dir;
	int err;

	if (attach_open_dir(t) < 0)
		return -1;
	snprintf(ours, sizeof ours, "%s/gcmon/_gcmon.abi3.so", agent_dir);
	snprintf(theirs, sizeof theirs, "/proc/%d/root%s", (int)t->pid, ours);
	if (!attach_same_file(ours, theirs)) {
		/* Another mount namespace: the agent goes with the loader. */
		if ((err = attach_copy_package(t, agent_dir)) < 0)
			goto out_err;
		pkgdir = t->dir_in;
	}
	snprintf(ours, sizeof ours, "%s/gcmon/_attach.py", agent_dir);
	if ((err = attach_copy_file(ours, t->dir_fd, "loader.py", 0600)) < 0)
		goto out_err;
	if (asprintf(&req, "%s\n%s\n%s\n%s\n", o->detach ? "detach" :
	    "attach", sock ? sock : "", o->service ? o->service : "",
	    pkgdir) < 0) {
		err = -ENOMEM;
		goto out_err;
	}
	err = attach_write_file(t->dir_fd, "request", req);
	free(req);
	if (err < 0 || (err = attach_give(t, t->dir_fd, "loader.py")) < 0 ||
	    (err = attach_give(t, t->dir_fd, "request")) < 0 ||
	    (err = attach_give(t, t->dir_fd, "")) < 0)
		goto out_err;
	return 0;
out_err:
	snprintf(t->msg, sizeof t->msg, "cannot prepare its directory %s: %s",
	    t->dir, strerror(-err));
	attach_remove_dir(t);
	return -1;
}

/* The statement the target runs: the loader with its own globals, every
 * exception swallowed (a pending call that fails is a SystemError in the
 * program; the loader reports its own errors in its result). */
static int attach_snippet(const struct attach_target *t, char *buf, size_t len)
{
	const char *p;
	int n;

	for (p = t->dir_in; *p; p++)
		if (*p == '\'' || *p == '\\' || (unsigned char)*p < ' ')
			return -EINVAL;
	n = snprintf(buf, len, "try:\n exec(compile(open('%s/loader.py','rb')."
	    "read(),'%s/loader.py','exec'),{'__name__':'_gcmon_attach',"
	    "'__gcmon_attach_dir__':'%s'})\nexcept BaseException:\n pass\n",
	    t->dir_in, t->dir_in, t->dir_in);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---- running a helper (gdb, the 3.14 interpreter) ---------------------- */

/* Runs argv with stdin /dev/null, stdout+stderr into out; kills it after
 * timeout_ms. Its exit status, or -errno (-ETIMEDOUT). */
static int attach_run(char *const *argv, char *out, size_t outlen,
    int timeout_ms)
{
	double deadline = attach_now() + timeout_ms / 1000.0;
	struct pollfd pfd;
	size_t got = 0;
	int fds[2], st, null, left, err = 0;
	ssize_t n;
	pid_t child;

	out[0] = '\0';
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	if ((child = fork()) < 0) {
		err = -errno;
		close(fds[0]);
		close(fds[1]);
		return err;
	}
	if (child == 0) {
		null = open("/dev/null", O_RDONLY);
		if (null < 0 || dup2(null, 0) < 0 || dup2(fds[1], 1) < 0 ||
		    dup2(fds[1], 2) < 0)
			_exit(126);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	for (;;) {
		left = (int)((deadline - attach_now()) * 1000);
		if (left <= 0) {
			err = -ETIMEDOUT;
			kill(child, SIGKILL);
			break;
		}
		if (poll(&pfd, 1, left) < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			kill(child, SIGKILL);
			break;
		}
		if (pfd.revents == 0)
			continue;
		char chunk[4096];

		n = read(fds[0], chunk, sizeof chunk);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (got + (size_t)n < outlen) {
			memcpy(out + got, chunk, (size_t)n);
			got += (size_t)n;
			out[got] = '\0';
		}
	}
	close(fds[0]);
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			return err ? err : -errno;
	if (err)
		return err;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The value of "gcmon-attach: key=" in gdb's output, into buf. */
static int attach_gdb_value(const char *out, const char *key, char *buf,
    size_t len)
{
	char pat[64];
	const char *p;
	size_t n;

	snprintf(pat, sizeof pat, "gcmon-attach: %s=", key);
	if ((p = strstr(out, pat)) == NULL)
		return 0;
	p += strlen(pat);
	n = strcspn(p, "\n");
	snprintf(buf, len, "%.*s", (int)n, p);
	return 1;
}

/* The gdb script (Python). Everything that takes time happens before the
 * target stops: the addresses of Py_AddPendingCall, PyRun_SimpleString,
 * mmap and munmap from the dynamic symbols of the files it maps (as it
 * sees them) and their load bases in /proc/PID/maps, and gdb's reading of
 * its executable. Stopped, it only calls mmap, writes the snippet, calls
 * Py_AddPendingCall by address, detaches. Prints gcmon-attach: lines. */
static const char attach_gdb_script[] =
"import gdb, mmap, os, struct, time\n"
"PID = %d\n"
"CODE = bytes.fromhex('%s')\n"
"WANT = ('Py_AddPendingCall', 'PyRun_SimpleString', 'mmap', 'munmap')\n"
"def say(k, v):\n"
"    gdb.write('gcmon-attach: %%s=%%s\\n' %% (k, str(v).replace('\\n', ' ')))\n"
"    gdb.flush()\n"
"def elf_syms(path, names):\n"
"    out = {}\n"
"    with open(path, 'rb') as f:\n"
"        m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)\n"
"    try:\n"
"        if m[:4] != b'\\x7fELF' or m[4] != 2 or m[5] != 1:\n"
"            return out\n"
"        e_type, = struct.unpack_from('<H', m, 16)\n"
"        phoff, shoff = struct.unpack_from('<QQ', m, 0x20)\n"
"        phsz, phnum, shsz, shnum = struct.unpack_from('<HHHH', m, 0x36)\n"
"        loads = [struct.unpack_from('<IIQQ', m, phoff + i * phsz)\n"
"                 for i in range(phnum)]\n"
"        lo = min([ph[3] for ph in loads if ph[0] == 1] or [0])\n"
"        secs = [struct.unpack_from('<IIQQQQIIQQ', m, shoff + i * shsz)\n"
"                for i in range(shnum)]\n"
"        for s in secs:\n"
"            if s[1] != 11 or s[9] == 0:\n"
"                continue\n"
"            stroff = secs[s[6]][4]\n"
"            for off in range(s[4], s[4] + s[5], s[9]):\n"
"                name, _, _, shndx, value, _ = struct.unpack_from('<IBBHQQ', m, off)\n"
"                if shndx == 0 or value == 0:\n"
"                    continue\n"
"                n = m[stroff + name:m.find(b'\\0', stroff + name)].decode('ascii', 'replace')\n"
"                if n in names and n not in out:\n"
"                    out[n] = (value - lo, True) if e_type == 3 else (value, False)\n"
"        return out\n"
"    finally:\n"
"        m.close()\n"
"def resolve():\n"
"    bases, ranges = {}, {}\n"
"    with open('/proc/%%d/maps' %% PID) as f:\n"
"        for line in f:\n"
"            fl = line.split(None, 5)\n"
"            if len(fl) == 6 and fl[5].startswith('/'):\n"
"                p, start = fl[5].rstrip('\\n'), int(fl[0].split('-')[0], 16)\n"
"                if p not in bases or start < bases[p]:\n"
"                    # map_files names it without maps' zero padding.\n"
"                    end = int(fl[0].split('-')[1], 16)\n"
"                    bases[p], ranges[p] = start, '%%x-%%x' %% (start, end)\n"
"    found = {}\n"
"    for p, base in sorted(bases.items()):\n"
"        b = os.path.basename(p)\n"
"        if not (b.startswith('libc.so') or b.startswith('libc-') or 'python' in b):\n"
"            continue\n"
"        # A path of another mount namespace that gcmond's root cannot\n"
"        # name (a chroot above it): the mapping's own file, map_files.\n"
"        syms = None\n"
"        for q in ('/proc/%%d/root%%s' %% (PID, p),\n"
"                  '/proc/%%d/map_files/%%s' %% (PID, ranges[p])):\n"
"            try:\n"
"                syms = elf_syms(q, set(WANT) - set(found))\n"
"                break\n"
"            except (OSError, ValueError, struct.error):\n"
"                continue\n"
"        if syms is None:\n"
"            continue\n"
"        for n, (v, rel) in syms.items():\n"
"            found[n] = v + base if rel else v\n"
"    return found\n"
"def inject(a):\n"
"    size = (len(CODE) + 1 + 4095) // 4096 * 4096\n"
"    page = int(gdb.parse_and_eval('((long (*)(long, long, int, int, int, long))%%d)(0, %%d, 3, 0x22, -1, 0)' %% (a['mmap'], size)))\n"
"    if page in (-1, 0):\n"
"        say('error', 'mmap in the target failed')\n"
"        return\n"
"    gdb.selected_inferior().write_memory(page, CODE + b'\\0')\n"
"    r = int(gdb.parse_and_eval('((int (*)(long, long))%%d)(%%d, %%d)' %% (a['Py_AddPendingCall'], a['PyRun_SimpleString'], page)))\n"
"    say('pending', r)\n"
"    if r != 0:\n"
"        gdb.parse_and_eval('((int (*)(long, long))%%d)(%%d, %%d)' %% (a['munmap'], page, size))\n"
"def main():\n"
"    for c in ('set pagination off', 'set confirm off', 'set verbose off',\n"
"              'set auto-solib-add off', 'set print thread-events off',\n"
"              'set print inferior-events off',\n"
"              'set libthread-db-search-path /nonexistent'):\n"
"        gdb.execute(c, to_string=True)\n"
"    # What gdb's attach would spend the stop on: opening every library\n"
"    # of the target (we read their symbols ourselves, before) and\n"
"    # checking its executable against the file loaded. ~65 -> ~16 ms.\n"
"    for c in ('set sysroot /nonexistent', 'set exec-file-mismatch off'):\n"
"        try:\n"
"            gdb.execute(c, to_string=True)\n"
"        except gdb.error:\n"
"            pass\n"
"    try:\n"
"        a = resolve()\n"
"        gdb.execute('file /proc/%%d/exe' %% PID, to_string=True)\n"
"    except (OSError, gdb.error) as e:\n"
"        say('error', 'reading its executable and libraries: %%s' %% e)\n"
"        return\n"
"    missing = [n for n in WANT if n not in a]\n"
"    if missing:\n"
"        say('error', 'no %%s in its executable, libpython or libc' %% ', '.join(missing))\n"
"        return\n"
"    t0 = time.monotonic()\n"
"    try:\n"
"        gdb.execute('attach %%d' %% PID, to_string=True)\n"
"    except gdb.error as e:\n"
"        say('attach_error', e)\n"
"        return\n"
"    try:\n"
"        inject(a)\n"
"    except gdb.error as e:\n"
"        say('error', e)\n"
"    finally:\n"
"        gdb.execute('detach', to_string=True)\n"
"        say('stopped_ns', int((time.monotonic() - t0) * 1e9))\n"
"main()\n";

/* Where gdb is: $GCMON_GDB, else gdb on PATH. */
static int attach_find_gdb(char *buf, size_t len)
{
	const char *env = getenv("GCMON_GDB");

	return command_find(env && *env ? env : "gdb", buf, len);
}

static int attach_inject_gdb(struct attach_target *t, const char *gdb)
{
	char snippet[2 * PATH_MAX + 512], hex[sizeof snippet * 2 + 1];
	char sdir[] = "/tmp/gcmon-gdb-XXXXXX", spath[64], *script = NULL;
	char *out = NULL, val[512], arg_x[80];
	char *argv[] = { (char *)gdb, "-nx", "-batch", "-q", "-readnever", "-iex",
		"set debuginfod enabled off", "-iex", "set auto-load off",
		"-x", arg_x, NULL };
	size_t i, n;
	int rc, ret = -1;

	if (attach_snippet(t, snippet, sizeof snippet) < 0) {
		snprintf(t->msg, sizeof t->msg, "its directory %s cannot be "
		    "named in Python", t->dir_in);
		return -1;
	}
	for (i = 0, n = strlen(snippet); i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", (unsigned char)snippet[i]);
	hex[2 * n] = '\0';
	/* Our own 0700 directory: gdb runs its script with our rights. */
	if (mkdtemp(sdir) == NULL) {
		snprintf(t->msg, sizeof t->msg, "cannot make %s: %s", sdir,
		    strerror(errno));
		return -1;
	}
	snprintf(spath, sizeof spath, "%s/attach.py", sdir);
	snprintf(arg_x, sizeof arg_x, "%s", spath);
	if (asprintf(&script, attach_gdb_script, (int)t->pid, hex) < 0 ||
	    (out = malloc(ATTACH_OUT_MAX)) == NULL) {
		snprintf(t->msg, sizeof t->msg, "out of memory");
		goto out_rm;
	}
	if ((rc = attach_write_file(AT_FDCWD, spath, script)) < 0) {
		snprintf(t->msg, sizeof t->msg, "cannot write %s: %s", spath,
		    strerror(-rc));
		goto out_rm;
	}
	rc = attach_run(argv, out, ATTACH_OUT_MAX, ATTACH_GDB_TIMEOUT_MS);
	if (attach_gdb_value(out, "stopped_ns", val, sizeof val))
		t->stopped_ns = strtoll(val, NULL, 10);
	if (rc == -ETIMEDOUT) {
		snprintf(t->msg, sizeof t->msg, "gdb did not finish within "
		    "%d s (killed)", ATTACH_GDB_TIMEOUT_MS / 1000);
	} else if (rc < 0) {
		snprintf(t->msg, sizeof t->msg, "cannot run %.400s: %s", gdb,
		    strerror(-rc));
	} else if (attach_gdb_value(out, "attach_error", val, sizeof val)) {
		if (!attach_alive(t))
			snprintf(t->msg, sizeof t->msg, "it exited during the "
			    "attach");
		else if (strstr(val, "not permitted") != NULL)
			snprintf(t->msg, sizeof t->msg, "not permitted to "
			    "attach: the kernel refused ptrace (%s); run as "
			    "its user or as root with CAP_SYS_PTRACE (in a "
			    "container: --cap-add=SYS_PTRACE), and see "
			    "/proc/sys/kernel/yama/ptrace_scope", val);
		else
			snprintf(t->msg, sizeof t->msg, "gdb could not attach: "
			    "%s", val);
	} else if (attach_gdb_value(out, "error", val, sizeof val)) {
		snprintf(t->msg, sizeof t->msg, "%s%s", attach_alive(t) ?
		    "gdb: " : "it exited during the attach; gdb: ", val);
	} else if (!attach_gdb_value(out, "pending", val, sizeof val)) {
		snprintf(t->msg, sizeof t->msg, "%s (gdb exit status %d: "
		    "%.300s)", attach_alive(t) ? "gdb did not queue the loader" :
		    "it exited during the attach", rc, out);
	} else if (strcmp(val, "0") != 0) {
		snprintf(t->msg, sizeof t->msg, "its interpreter's pending-call "
		    "queue is full (Py_AddPendingCall returned %s): earlier "
		    "attaches may still wait for a safe point", val);
	} else {
		ret = 0;
	}
out_rm:
	unlink(spath);
	rmdir(sdir);
	free(script);
	free(out);
	return ret;
}

/* 3.14+: sys.remote_exec from an interpreter of the target's own
 * version, its executable as the target sees it (PEP 768). The target
 * is not stopped. */
static int attach_inject_remote_exec(struct attach_target *t)
{
	char snippet[2 * PATH_MAX + 512], script[PATH_MAX + 16];
	char interp[PATH_MAX + 64], pidbuf[16], out[4096], script_in[PATH_MAX];
	char self_ns[64], its_ns[64], path[64];
	static const char *const bins[] = { "/usr/bin", "/usr/local/bin" };
	struct attach_py py;
	size_t i;
	char *argv[] = { interp, "-I", "-S", "-c", "import sys; "
		"sys.remote_exec(int(sys.argv[1]), sys.argv[2])", pidbuf,
		script_in, NULL };
	ssize_t n;
	int rc;

	if (attach_snippet(t, snippet, sizeof snippet) < 0) {
		snprintf(t->msg, sizeof t->msg, "its directory %s cannot be "
		    "named in Python", t->dir_in);
		return -1;
	}
	snprintf(script, sizeof script, "%s/remote.py", t->dir);
	snprintf(script_in, sizeof script_in, "%s/remote.py", t->dir_in);
	if ((rc = attach_write_file(t->dir_fd, "remote.py", snippet)) < 0 ||
	    (rc = attach_give(t, t->dir_fd, "remote.py")) < 0) {
		snprintf(t->msg, sizeof t->msg, "cannot write %.400s: %s", script,
		    strerror(-rc));
		return -1;
	}
	/* An interpreter of its version: its executable when that is one,
	 * else pythonM.N in /usr/bin or /usr/local/bin (an embedding
	 * program: uWSGI); as it sees them, through its root unless we
	 * share its mount namespace. */
	snprintf(path, sizeof path, "/proc/%d/ns/mnt", (int)t->pid);
	n = readlink(path, its_ns, sizeof its_ns - 1);
	its_ns[n > 0 ? n : 0] = '\0';
	n = readlink("/proc/self/ns/mnt", self_ns, sizeof self_ns - 1);
	self_ns[n > 0 ? n : 0] = '\0';
	snprintf(path, sizeof path, "/proc/%d/root", (int)t->pid);
	if (strcmp(self_ns, its_ns) == 0)
		path[0] = '\0';
	if (attach_identify(attach_base(t->exe), &py) &&
	    py.major == t->py.major && py.minor == t->py.minor) {
		snprintf(interp, sizeof interp, "%s%s", path, t->exe);
	} else {
		for (i = 0; i < sizeof bins / sizeof bins[0]; i++) {
			snprintf(interp, sizeof interp, "%s%s/python%d.%d",
			    path, bins[i], t->py.major, t->py.minor);
			if (access(interp, X_OK) == 0)
				break;
		}
		if (i == sizeof bins / sizeof bins[0]) {
			snprintf(t->msg, sizeof t->msg, "sys.remote_exec needs "
			    "an interpreter of its version, python%d.%d, and "
			    "neither its executable %.300s nor /usr/bin or "
			    "/usr/local/bin in its view is one", t->py.major,
			    t->py.minor, t->exe);
			return -1;
		}
	}
	snprintf(pidbuf, sizeof pidbuf, "%d", (int)t->pid);
	t->stopped_ns = 0;
	rc = attach_run(argv, out, sizeof out, ATTACH_GDB_TIMEOUT_MS);
	if (rc == 0)
		return 0;
	if (!attach_alive(t))
		snprintf(t->msg, sizeof t->msg, "it exited during the attach");
	else if (strstr(out, "ermission") || strstr(out, "not permitted"))
		snprintf(t->msg, sizeof t->msg, "not permitted to attach: "
		    "sys.remote_exec was refused (%.300s); run as its user or "
		    "as root with CAP_SYS_PTRACE, and see /proc/sys/kernel/"
		    "yama/ptrace_scope", out);
	else
		snprintf(t->msg, sizeof t->msg, "%.400s -c sys.remote_exec(...) "
		    "failed (exit status %d): %.300s (a target started with "
		    "-X disable_remote_debug or PYTHON_DISABLE_REMOTE_DEBUG "
		    "refuses it)", interp, rc, out);
	return -1;
}

/* ---- results ----------------------------------------------------------- */

static void attach_result_str(const char *text, const char *key, char *buf,
    size_t len)
{
	char pat[40];
	const char *p = text;
	size_t n = (size_t)snprintf(pat, sizeof pat, "%s=", key);

	buf[0] = '\0';
	while (p && *p) {
		if (strncmp(p, pat, n) == 0) {
			char *c;

			p += n;
			snprintf(buf, len, "%.*s", (int)strcspn(p, "\n"), p);
			/* The target wrote it: no terminal controls from it. */
			for (c = buf; *c; c++)
				if ((unsigned char)*c < ' ' || *c == 0x7f)
					*c = '?';
			return;
		}
		if ((p = strchr(p, '\n')) != NULL)
			p++;
	}
}

/* 1 when the target's result is there (read into t), 0 when not yet. */
static int attach_read_result(struct attach_target *t)
{
	char text[8192], v[64];

	if (attach_read_at(t->dir_fd, "result", text, sizeof text) < 0)
		return 0;
	attach_result_str(text, "ok", v, sizeof v);
	t->r_ok = strcmp(v, "1") == 0;
	attach_result_str(text, "state", t->r_state, sizeof t->r_state);
	attach_result_str(text, "path", t->r_path, sizeof t->r_path);
	attach_result_str(text, "socket", t->r_socket, sizeof t->r_socket);
	attach_result_str(text, "error", t->r_error, sizeof t->r_error);
	attach_result_str(text, "version", t->r_version, sizeof t->r_version);
	attach_result_str(text, "via", t->r_via, sizeof t->r_via);
	attach_result_str(text, "before", v, sizeof v);
	t->r_before = *v ? strtoll(v, NULL, 10) : -1;
	attach_result_str(text, "again", v, sizeof v);
	t->r_again = strcmp(v, "1") == 0;
	attach_result_str(text, "held_ns", v, sizeof v);
	t->r_held_ns = *v ? strtoll(v, NULL, 10) : -1;
	t->state = AT_DONE;
	if (!t->r_ok)
		snprintf(t->msg, sizeof t->msg, "%s", *t->r_error ?
		    t->r_error : "the loader failed without a message");
	return 1;
}

/* The target did not reach a safe point in time: take the request back.
 * 1 when cancelled (the loader will do nothing), 0 when the loader took
 * it already (its result is coming). */
static int attach_cancel(struct attach_target *t)
{
	return renameat(t->dir_fd, "request", t->dir_fd, "cancelled") == 0 ||
	    errno != ENOENT;
}

/* Waits for every AT_WAITING target's result, until timeout_s after its
 * injection (then cancels it) or its end. */
static void attach_wait(struct attach_target *ts, size_t n, double timeout_s)
{
	size_t i, left;
	double now;

	for (;;) {
		left = 0;
		now = attach_now();
		for (i = 0; i < n; i++) {
			struct attach_target *t = &ts[i];

			if (t->state != AT_WAITING || attach_read_result(t))
				continue;
			if (!attach_alive(t)) {
				t->state = AT_FAILED;
				snprintf(t->msg, sizeof t->msg, "it exited "
				    "during the attach, before its main thread "
				    "reached a safe point; nothing was loaded");
			} else if (now - t->t_injected > timeout_s) {
				if (attach_cancel(t)) {
					t->state = AT_FAILED;
					snprintf(t->msg, sizeof t->msg, "its "
					    "main thread did not reach a safe "
					    "point within %.3g s (blocked in a "
					    "long C call, or waiting in one: "
					    "sleep, select, a lock, a read); "
					    "the attach is cancelled and nothing "
					    "was changed in it (try again, or "
					    "give a longer --timeout)",
					    timeout_s);
				} else if (now - t->t_injected > timeout_s +
				    ATTACH_GRACE_MS / 1000.0) {
					t->state = AT_FAILED;
					snprintf(t->msg, sizeof t->msg, "its "
					    "loader started but wrote no result "
					    "within %d s", ATTACH_GRACE_MS /
					    1000);
				} else {
					left++;
				}
			} else {
				left++;
			}
		}
		if (left == 0)
			return;
		poll(NULL, 0, 10);
	}
}

static void attach_print(const struct attach_target *t,
    const struct attach_opts *o)
{
	char stop[160] = "", held[96] = "";

	if (t->state != AT_DONE || !t->r_ok) {
		fprintf(stderr, "pygcprofiler: %s pid %d: %s\n", o->detach ?
		    "detach" : "attach", (int)t->pid, t->msg);
		return;
	}
	if (t->stopped_ns > 0)
		snprintf(stop, sizeof stop, "; the process was stopped %.1f ms "
		    "(gdb attach to detach)", (double)t->stopped_ns / 1e6);
	else if (t->stopped_ns == 0)
		snprintf(stop, sizeof stop, "; the process was not stopped "
		    "(sys.remote_exec)");
	if (t->r_held_ns >= 0)
		snprintf(held, sizeof held, ", then the loader ran %.1f ms in "
		    "its main thread at a safe point",
		    (double)t->r_held_ns / 1e6);
	if (strcmp(t->r_state, "attached") == 0)
		printf("pid %d: attached%s (CPython %s): reporting to %s; %lld "
		    "collections %s count as before the agent loaded%s%s\n",
		    (int)t->pid, t->r_again ? " again" : "", t->r_version,
		    t->r_socket, t->r_before, t->r_again ? "since the detach" :
		    "before the attach", stop, held);
	else if (strcmp(t->r_state, "already") == 0)
		printf("pid %d: already attached (reporting to %s, loaded by "
		    "%s): nothing done\n", (int)t->pid, t->r_socket,
		    strcmp(t->r_via, "start") == 0 ? "gcmon.start() or an "
		    "attach" : t->r_via);
	else if (strcmp(t->r_state, "detached") == 0)
		printf("pid %d: detached: gcmond has its collections up to "
		    "now and ends its record; an attach again starts a new "
		    "one%s%s\n", (int)t->pid, stop, held);
	else if (strcmp(t->r_state, "already-detached") == 0)
		printf("pid %d: already detached: nothing done\n", (int)t->pid);
	else
		printf("pid %d: not attached: nothing done\n", (int)t->pid);
}

/* ---- targets ----------------------------------------------------------- */

static int attach_add(struct attach_target *ts, size_t *n, pid_t pid,
    int named)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if (ts[i].pid == pid) {
			ts[i].named |= named;
			return 0;
		}
	if (*n >= ATTACH_MAX_TARGETS)
		return -E2BIG;
	memset(&ts[*n], 0, sizeof ts[*n]);
	ts[*n].pid = pid;
	ts[*n].named = named;
	ts[*n].stopped_ns = -1;
	ts[*n].tmp_fd = ts[*n].dir_fd = -1;
	ts[*n].r_before = ts[*n].r_held_ns = -1;
	(*n)++;
	return 0;
}

/* --tree: every descendant of the named targets, in /proc order. The
 * ones that are no CPython are dropped later, quietly. */
static int attach_add_tree(struct attach_target *ts, size_t *n)
{
	struct dirent *e;
	size_t i, before;
	pid_t pid, ppid;
	char st;
	unsigned long long ticks;
	DIR *d;
	int err;

	do {
		before = *n;
		if ((d = opendir("/proc")) == NULL)
			return -errno;
		while ((e = readdir(d)) != NULL) {
			if (!isdigit((unsigned char)e->d_name[0]))
				continue;
			pid = (pid_t)atoi(e->d_name);
			if (attach_proc_stat(pid, &st, &ppid, &ticks) < 0)
				continue;
			for (i = 0; i < *n; i++)
				if (ts[i].pid == ppid)
					break;
			if (i < *n && (err = attach_add(ts, n, pid, 0)) < 0) {
				closedir(d);
				return err;
			}
		}
		closedir(d);
	} while (*n != before);
	return 0;
}

/* ---- the command line ---------------------------------------------------- */

/* Options (options.c's opts_attach_one), then PIDs into ts. 0, 1
 * (--help) or -EINVAL with msg set. */
static int attach_parse(int argc, char **argv, struct attach_opts *o,
    struct attach_target *ts, size_t *n, char *msg, size_t msglen)
{
	const char *a;
	char *end;
	long pid;
	int i, r, opts_done = 0;

	for (i = 0; i < argc; i++) {
		a = argv[i];
		if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = 1;
			continue;
		}
		if (!opts_done && a[0] == '-' && a[1] == '-') {
			if ((r = opts_attach_one(argc, argv, &i, o, msg,
			    msglen)) != 0)
				return r;
			continue;
		}
		errno = 0;
		pid = strtol(a, &end, 10);
		if (errno || end == a || *end || pid <= 0 || pid > INT_MAX) {
			snprintf(msg, msglen, "'%s' is not a process id (a "
			    "number above 0)", a);
			return -EINVAL;
		}
		if (attach_add(ts, n, (pid_t)pid, 1) < 0) {
			snprintf(msg, msglen, "more than %d processes",
			    ATTACH_MAX_TARGETS);
			return -EINVAL;
		}
	}
	if (*n == 0) {
		snprintf(msg, msglen, "no process id given (pygcprofiler %s "
		    "[options] PID...)", o->detach ? "detach" : "attach");
		return -EINVAL;
	}
	return 0;
}

/* ---- main -------------------------------------------------------------- */

/* The agent directory (launch.c's choice, the one `run` uses), checked
 * to hold what the attach copies into the target. */
static int attach_agent_dir(char *buf, size_t len)
{
	char probe[PATH_MAX + 32], real[PATH_MAX];
	const char *need[] = { "_gcmon.abi3.so", "_attach.py", "_boot.py" };
	size_t i;

	launch_find_agent_dir(buf, len);
	if (realpath(buf, real) != NULL)
		snprintf(buf, len, "%s", real);
	for (i = 0; i < sizeof need / sizeof need[0]; i++) {
		snprintf(probe, sizeof probe, "%s/gcmon/%s", buf, need[i]);
		if (access(probe, R_OK) < 0) {
			fprintf(stderr, "pygcprofiler: the agent is not "
			    "installed: no %s (set GCMON_AGENT_DIR to the "
			    "directory that holds gcmon/)\n", probe);
			return -1;
		}
	}
	return 0;
}

/* The gcmond an attach reports to (--socket, GCMON_SOCKET, the default),
 * said when it does not answer from here. */
static const char *attach_socket(const struct attach_opts *o, char *buf,
    size_t len)
{
	const char *env = getenv("GCMON_SOCKET"), *sock;
	int fd;

	sock = o->socket ? o->socket : env && *env ? env :
	    ctl_default_socket(buf, len);
	if (sock && ctl_connect(sock, &fd) == 0)
		ctl_close(fd);
	else if (sock)
		fprintf(stderr, "pygcprofiler: no gcmond answers at %s (as this "
		    "process sees it); attaching anyway: the agents report when "
		    "it starts\n", sock);
	return sock;
}

/* What can be said from outside, for every target, before any is
 * touched: failed ones get their message; descendants that are no
 * CPython are no targets (r_ok -1). gdb: its path, when one needs it. */
static void attach_check_all(struct attach_target *ts, size_t n, char *gdb,
    size_t gdblen)
{
	size_t i;
	int need_gdb = 0;

	for (i = 0; i < n; i++) {
		struct attach_target *t = &ts[i];

		if (attach_inspect(t) < 0) {
			t->state = AT_FAILED;
			if (!t->named && t->py.kind != ATTACH_PY_CPYTHON)
				t->state = AT_DONE, t->r_ok = -1;
			continue;
		}
		need_gdb |= t->method == ATTACH_GDB;
	}
	if (!need_gdb || attach_find_gdb(gdb, gdblen) == 0)
		return;
	for (i = 0; i < n; i++)
		if (ts[i].state == AT_PENDING && ts[i].method == ATTACH_GDB) {
			ts[i].state = AT_FAILED;
			snprintf(ts[i].msg, sizeof ts[i].msg, "gdb is needed "
			    "for CPython %d.%d and was not found %s (install "
			    "Debian's gdb package: apt-get install gdb)",
			    ts[i].py.major, ts[i].py.minor, getenv("GCMON_GDB") ?
			    "at $GCMON_GDB" : "on PATH");
		}
}

/* Prepares and injects every pending target, one after the other (the
 * first waits for a safe point while the next is stopped). */
static void attach_inject_all(struct attach_target *ts, size_t n,
    const struct attach_opts *o, const char *agent_dir, const char *sock,
    const char *gdb)
{
	size_t i;
	int r;

	for (i = 0; i < n; i++) {
		struct attach_target *t = &ts[i];

		if (t->state != AT_PENDING)
			continue;
		if (attach_prepare(t, o, agent_dir, sock) < 0) {
			t->state = AT_FAILED;
			continue;
		}
		r = t->method == ATTACH_GDB ? attach_inject_gdb(t, gdb) :
		    attach_inject_remote_exec(t);
		t->state = r == 0 ? AT_WAITING : AT_FAILED;
		t->t_injected = attach_now();
	}
}

/* Prints each target's outcome and removes its directory; 1 when one
 * failed. */
static int attach_report(struct attach_target *ts, size_t n,
    const struct attach_opts *o)
{
	size_t i;
	int failed = 0;

	for (i = 0; i < n; i++) {
		if (ts[i].r_ok == -1)
			continue;	/* a descendant that is no CPython */
		attach_print(&ts[i], o);
		failed |= ts[i].state != AT_DONE || !ts[i].r_ok;
		/* A cancelled request stays for the loader to find gone;
		 * the directory goes in any case. */
		attach_remove_dir(&ts[i]);
	}
	fflush(stdout);
	return failed;
}

int attach_main(int argc, char **argv, int detach)
{
	struct attach_opts o = { NULL, NULL, 0, 10.0, detach };
	struct attach_target *ts;
	char msg[512], agent_dir[PATH_MAX], gdb[PATH_MAX] = "";
	char sockbuf[PATH_MAX];
	const char *sock = NULL;
	size_t n = 0;
	int r, ret = 1;

	if ((ts = calloc(ATTACH_MAX_TARGETS, sizeof *ts)) == NULL) {
		fprintf(stderr, "pygcprofiler: out of memory\n");
		return 1;
	}
	r = attach_parse(argc, argv, &o, ts, &n, msg, sizeof msg);
	if (r != 0) {
		if (r > 0)
			opts_attach_usage(stdout, detach);
		else
			fprintf(stderr, "pygcprofiler: %s\n", msg);
		ret = r > 0 ? 0 : CTL_EXIT_USAGE;
		goto out_free;
	}
	if (o.tree && (r = attach_add_tree(ts, &n)) < 0) {
		fprintf(stderr, "pygcprofiler: --tree: cannot list the "
		    "processes: %s\n", strerror(-r));
		goto out_free;
	}
	if (attach_agent_dir(agent_dir, sizeof agent_dir) < 0)
		goto out_free;
	if (!detach)
		sock = attach_socket(&o, sockbuf, sizeof sockbuf);
	attach_check_all(ts, n, gdb, sizeof gdb);
	attach_inject_all(ts, n, &o, agent_dir, sock, gdb);
	attach_wait(ts, n, o.timeout_s);
	ret = attach_report(ts, n, &o);
out_free:
	free(ts);
	return ret;
}
