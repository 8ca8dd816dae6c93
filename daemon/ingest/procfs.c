/*
 * procfs.c: gcmond's reads of /proc/<pid> (see procfs.h). Small files read
 * in one read(2) into a stack buffer; fields counted from the last ')'
 * of stat, since a command name may hold spaces and parentheses.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "procfs.h"
#include "shm.h"

static int procfs_read(uint32_t pid, const char *file, char *buf, size_t cap,
    size_t *len)
{
	char path[64];
	ssize_t n;
	int fd, err = 0;

	snprintf(path, sizeof path, "/proc/%u/%s", (unsigned)pid, file);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	do
		n = read(fd, buf, cap - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		err = -errno;
	close(fd);
	if (err < 0)
		return err;
	buf[n] = '\0';
	*len = (size_t)n;
	return 0;
}

int procfs_identity(uint32_t pid, uint64_t *start_ticks, uid_t *uid)
{
	char path[64], buf[2048];
	struct stat st;
	size_t len;
	int err;

	snprintf(path, sizeof path, "/proc/%u", (unsigned)pid);
	if (stat(path, &st) < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	*uid = st.st_uid;
	if ((err = procfs_read(pid, "stat", buf, sizeof buf, &len)) < 0)
		return err;
	return shm_parse_start_ticks(buf, len, start_ticks) < 0 ? -EBADMSG : 0;
}

char procfs_parse_state(const char *stat)
{
	const char *p = strrchr(stat, ')');

	return p != NULL && p[1] == ' ' ? p[2] : 0;
}

int procfs_running(uint32_t pid, uint64_t start_ticks)
{
	char buf[2048], state;
	uint64_t ticks;
	size_t len;

	if (procfs_read(pid, "stat", buf, sizeof buf, &len) < 0 ||
	    shm_parse_start_ticks(buf, len, &ticks) < 0 || ticks != start_ticks)
		return 0;
	state = procfs_parse_state(buf);
	return state != 0 && state != 'Z' && state != 'X';
}

/* The value of a "Key:" line that starts a line of text, or NULL. */
static const char *procfs_line(const char *text, const char *key)
{
	size_t klen = strlen(key);
	const char *p = text;

	while ((p = strstr(p, key)) != NULL) {
		if (p == text || p[-1] == '\n')
			return p + klen;
		p += klen;
	}
	return NULL;
}

uint64_t procfs_status_kb(const char *status, const char *key)
{
	const char *p = procfs_line(status, key);

	return p != NULL ? strtoull(p, NULL, 10) * 1024u : 0;
}

int procfs_parse_cpu(const char *stat, uint64_t *user, uint64_t *sys)
{
	const char *p = strrchr(stat, ')');
	unsigned field;
	char *end;

	if (p == NULL)
		return -EINVAL;
	p++;
	for (field = 3; field < 14; field++) {	/* to field 14, utime */
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return -EINVAL;
		while (*p != ' ' && *p != '\0')
			p++;
	}
	*user = strtoull(p, &end, 10);
	if (end == p)
		return -EINVAL;
	p = end;
	*sys = strtoull(p, &end, 10);
	return end == p ? -EINVAL : 0;
}

int procfs_sample(uint32_t pid, struct agg_sample *out)
{
	char buf[4096];
	uint64_t user, sys;
	long hz = sysconf(_SC_CLK_TCK);
	size_t len;
	int err;

	memset(out, 0, sizeof *out);
	if ((err = procfs_read(pid, "stat", buf, sizeof buf, &len)) < 0)
		return err;
	if (procfs_parse_cpu(buf, &user, &sys) < 0 || hz <= 0)
		return -EBADMSG;
	out->cpu_ns = (user + sys) * (1000000000u / (uint64_t)hz);
	/* Gone already (a zombie has no memory): CPU time is all there is. */
	if (procfs_read(pid, "status", buf, sizeof buf, &len) == 0) {
		out->rss_bytes = procfs_status_kb(buf, "VmRSS:");
		out->peak_rss_bytes = procfs_status_kb(buf, "VmHWM:");
	}
	return 0;
}

int procfs_parse_groups(const char *status, gid_t *out, size_t cap)
{
	const char *p = procfs_line(status, "Gid:");
	unsigned long v;
	size_t n = 0;
	char *end;

	if (p == NULL)
		return -EBADMSG;
	/* Real, then effective: the second number. */
	v = strtoul(p, &end, 10);
	if (end == p || *end == '\n')
		return -EBADMSG;
	p = end;
	v = strtoul(p, &end, 10);
	if (end == p)
		return -EBADMSG;
	if (cap > 0)
		out[n++] = (gid_t)v;
	if ((p = procfs_line(status, "Groups:")) == NULL)
		return (int)n;
	while (n < cap) {
		v = strtoul(p, &end, 10);
		if (end == p)
			break;
		out[n++] = (gid_t)v;
		p = end;
		if (*p == '\n')
			break;
	}
	return (int)n;
}

int procfs_groups(uint32_t pid, gid_t *out, size_t cap)
{
	char buf[16384];	/* a long Groups: line too */
	size_t len;
	int err;

	if ((err = procfs_read(pid, "status", buf, sizeof buf, &len)) < 0)
		return err;
	return procfs_parse_groups(buf, out, cap);
}

int procfs_parse_smaps(const char *text, struct agg_mem *out)
{
	memset(out, 0, sizeof *out);
	if (strstr(text, "Rss:") == NULL)
		return -EBADMSG;
	out->rss_bytes = procfs_status_kb(text, "Rss:");
	out->pss_bytes = procfs_status_kb(text, "Pss:");
	out->shared_clean_bytes = procfs_status_kb(text, "Shared_Clean:");
	out->shared_dirty_bytes = procfs_status_kb(text, "Shared_Dirty:");
	out->private_clean_bytes = procfs_status_kb(text, "Private_Clean:");
	out->private_dirty_bytes = procfs_status_kb(text, "Private_Dirty:");
	out->anon_bytes = procfs_status_kb(text, "Anonymous:");
	return 0;
}

int procfs_smaps(uint32_t pid, struct agg_mem *out)
{
	char buf[4096];
	size_t len;
	int err;

	memset(out, 0, sizeof *out);
	/* The kernel checks PTRACE_MODE_READ at open: -EACCES. A zombie's
	 * read fails with ESRCH: gone. */
	if ((err = procfs_read(pid, "smaps_rollup", buf, sizeof buf, &len)) < 0)
		return err;
	return procfs_parse_smaps(buf, out);
}

double procfs_start_real(uint64_t start_ticks)
{
	struct timespec boot, real;
	long hz = sysconf(_SC_CLK_TCK);
	double age;

	if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &boot) < 0 ||
	    clock_gettime(CLOCK_REALTIME, &real) < 0)
		return 0;
	age = (double)boot.tv_sec + (double)boot.tv_nsec / 1e9 -
	    (double)start_ticks / (double)hz;
	if (age < 0)
		age = 0;
	return (double)real.tv_sec + (double)real.tv_nsec / 1e9 - age;
}

int procfs_parse_status_ids(const char *status, struct procfs_ids *out)
{
	const char *p;
	unsigned long v;
	char *end;

	memset(out, 0, sizeof *out);
	if ((p = procfs_line(status, "PPid:")) == NULL)
		return -EBADMSG;
	out->ppid = (uint32_t)strtoul(p, NULL, 10);
	/* "NSpid:\t<here>\t...\t<own>": one per namespace level, ours
	 * first, the process's own last (Linux 4.1+). */
	if ((p = procfs_line(status, "NSpid:")) == NULL)
		return -EBADMSG;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p < '0' || *p > '9')	/* strtoul would skip '\n' */
			break;
		v = strtoul(p, &end, 10);
		if (end == p)
			break;
		if (out->nlevels == 0)
			out->pid = (uint32_t)v;
		out->ns_pid = (uint32_t)v;
		out->nlevels++;
		p = end;
	}
	return out->nlevels > 0 ? 0 : -EBADMSG;
}

int procfs_ids(uint32_t pid, struct procfs_ids *out)
{
	char buf[4096];
	size_t len;
	int err;

	if ((err = procfs_read(pid, "status", buf, sizeof buf, &len)) < 0)
		return err;
	return procfs_parse_status_ids(buf, out);
}

int procfs_pidns(uint32_t pid, uint64_t *ino, uint64_t *dev)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof path, "/proc/%u/ns/pid", (unsigned)pid);
	if (stat(path, &st) < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	*ino = (uint64_t)st.st_ino;
	*dev = (uint64_t)st.st_dev;
	return 0;
}

int procfs_cgroup(uint32_t pid, char *buf, size_t cap, const char **path,
    size_t *len)
{
	size_t n;
	int err;

	if ((err = procfs_read(pid, "cgroup", buf, cap, &n)) < 0)
		return err;
	shm_parse_cgroup_path(buf, n, path, len);
	return 0;
}
