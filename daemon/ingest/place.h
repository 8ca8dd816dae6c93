/*
 * place.h: which process a shared area belongs to, seen from gcmond's PID
 * namespace (common/shm.h, "Identity across namespaces"), and the
 * container it runs in. An area of gcmond's own namespace is its pid as
 * written; one of a namespace below gcmond's is found through the lock
 * its agent holds (F_GETLK translates the holder's pid) and checked
 * against /proc (NSpid, namespace, start time, owner); one gcmond cannot
 * see is counted all the same, its end learnt from the lock. Called by
 * agents.c; reads /proc through procfs.c; never trusts a pid the area
 * writes about itself. The cgroup parser is pure (check_place).
 */
#ifndef GCMON_PLACE_H
#define GCMON_PLACE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PLACE_CONTAINER_MAX	64	/* bytes of a container id */

enum place_kind {
	PLACE_OURS = 0,		/* gcmond's PID namespace (or a version-2 area) */
	PLACE_SEEN,		/* a namespace below gcmond's: pid found here */
	PLACE_UNSEEN		/* a namespace gcmond cannot see into */
};

/* What an area claims (its header, its HELLO, its file's owner). */
struct place_claim {
	uint32_t ns_pid;		/* the pid it writes: its own namespace's */
	uint32_t ns_ppid;
	uint64_t start_ticks;
	int has_ns;			/* PROTO_HELLO_PLACE with a namespace */
	uint64_t pidns_ino, pidns_dev;
	int locked;			/* PROTO_HELLO_LOCKED */
	uid_t owner;			/* the file's, as the kernel tells us */
	const char *cgroup;		/* its own view; borrowed */
	size_t cgroup_len;
};

/* Where it is, from gcmond's side. */
struct place {
	enum place_kind kind;
	uint32_t pid;			/* here; the claim's own when unseen */
	uint32_t ppid;			/* here when seen, else the claim's */
	int foreign;			/* it claims another namespace (set
					 * even when refused) */
	char container[PLACE_CONTAINER_MAX + 1];	/* "" on a bare host */
};

/* gcmond's own PID namespace, read once at start. */
struct place_self {
	uint64_t pidns_ino, pidns_dev;
	int known;
};

void place_self_init(struct place_self *self);

/*
 * Resolves a claim. 1: a live process, *out says where; 0: the process
 * is gone (or its pid is another process's now); <0: refused, *why says
 * why in words that follow "it " (-EPERM: a claim that does not check
 * out, -errno: /proc could not be read). fd is the area file, kept open
 * by the caller (the lock is asked on it).
 */
int place_resolve(const struct place_self *self, int fd,
    const struct place_claim *c, struct place *out, const char **why);

/* The area's lock: 1 held (*holder its pid in gcmond's namespace, 0 when
 * gcmond cannot see it), 0 not held (the process ended), -errno. */
int place_lock_holder(int fd, uint32_t *holder);

/*
 * The container id of a cgroup path of len bytes into out (cap bytes,
 * NUL-terminated): the 64-hex id of docker ("docker-<id>.scope",
 * "/docker/<id>"), containerd and CRI ("cri-containerd-<id>.scope",
 * "/kubepods/.../<id>"), CRI-O ("crio-<id>.scope") and podman/libpod
 * ("libpod-<id>.scope", "libpod-payload-<id>"), or the machine's name
 * of a systemd-nspawn scope ("machine-<name>.scope"). 1 if found, else 0
 * and out is "".
 */
int place_container_id(const char *path, size_t len, char *out, size_t cap);

#endif /* GCMON_PLACE_H */
