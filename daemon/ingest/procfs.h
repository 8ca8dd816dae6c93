/*
 * procfs.h: what gcmond reads of a monitored process from outside it, in
 * /proc/<pid>: who it is (owner, groups, start time), whether it still runs, its
 * RSS, peak RSS and CPU time. Called by agents.c; the parsers are pure
 * and unit-tested (check_procfs). Never writes, never signals a process,
 * never trusts a pid alone: identity is (pid, start time).
 */
#ifndef GCMON_PROCFS_H
#define GCMON_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "agg.h"

/* Start time (clock ticks since boot) and owner of a live pid: 0,
 * -ESRCH when there is none, another negative errno if unreadable. */
int procfs_identity(uint32_t pid, uint64_t *start_ticks, uid_t *uid);
/* 1 if pid is still the process that started at start_ticks and is not
 * a zombie; 0 otherwise. */
int procfs_running(uint32_t pid, uint64_t start_ticks);
/* The groups a process runs with: its effective gid and its
 * supplementary groups, at most cap of them into out. The count, or a
 * negative errno (-ESRCH when gone). */
int procfs_groups(uint32_t pid, gid_t *out, size_t cap);
/* RSS, peak RSS (VmHWM) and CPU time (user + system). 0 or -errno. */
int procfs_sample(uint32_t pid, struct agg_sample *out);
/* Its smaps_rollup (Rss, Pss, Shared_*, Private_*, Anonymous): 0, -ESRCH
 * when gone, -EACCES/-EPERM when gcmond may not read it (another user's
 * process without CAP_SYS_PTRACE), -EBADMSG when it holds no Rss. */
int procfs_smaps(uint32_t pid, struct agg_mem *out);
/* Unix seconds when a process that started at start_ticks started (its
 * age on the boot clock, taken from now; to a tick), 0 if unknown. */
double procfs_start_real(uint64_t start_ticks);

/* A process's ids from its status: its pid and parent's here, and its
 * pid in its own PID namespace (NSpid's last), nlevels the namespaces
 * from ours down to its own (1: ours). */
struct procfs_ids {
	uint32_t pid, ppid, ns_pid;
	unsigned nlevels;
};
int procfs_ids(uint32_t pid, struct procfs_ids *out);
/* The inode and device of its PID namespace (/proc/<pid>/ns/pid): 0,
 * -ESRCH, or -EACCES when gcmond may not look. */
int procfs_pidns(uint32_t pid, uint64_t *ino, uint64_t *dev);
/* Its cgroup, as gcmond's cgroup namespace shows it, into *path and *len
 * (borrowed from buf, of cap bytes; not NUL-terminated): 0 or -errno. */
int procfs_cgroup(uint32_t pid, char *buf, size_t cap, const char **path,
    size_t *len);

/* Parsers, pure. utime and stime (fields 14, 15, in ticks) of a
 * /proc/<pid>/stat text: 0 or -EINVAL. */
int procfs_parse_cpu(const char *stat, uint64_t *user, uint64_t *sys);
/* The state letter (field 3) of a stat text, or 0. */
char procfs_parse_state(const char *stat);
/* A "Key:   123 kB" line of a /proc/<pid>/status text (key with its
 * colon, e.g. "VmHWM:"), in bytes; 0 when absent. */
uint64_t procfs_status_kb(const char *status, const char *key);
/* The effective gid (Gid:'s second field) and the Groups: of a
 * /proc/<pid>/status text, at most cap of them: the count, or -EBADMSG
 * without a Gid: line. */
int procfs_parse_groups(const char *status, gid_t *out, size_t cap);
/* PPid: and NSpid: of a status text: 0 or -EBADMSG. */
int procfs_parse_status_ids(const char *status, struct procfs_ids *out);
/* The figures of a smaps_rollup text: 0 or -EBADMSG (no Rss line). */
int procfs_parse_smaps(const char *text, struct agg_mem *out);

#endif /* GCMON_PROCFS_H */
