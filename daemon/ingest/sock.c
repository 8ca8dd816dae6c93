/*
 * sock.c: binding gcmond's Unix socket safely (see sock.h). Called by
 * server.c. Never unlinks a socket a live daemon answers on, never lets
 * the socket exist with a wider mode than asked, even for an instant.
 */
#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "paths.h"
#include "sock.h"

/* The directory must not let others replace our socket. */
static int sock_check_dir(const char *path, uid_t uid, const char **why)
{
	char *copy = strdup(path), *dir;
	struct stat st;
	int err = 0;

	if (copy == NULL)
		return -ENOMEM;
	dir = dirname(copy);
	if (stat(dir, &st) < 0) {
		/* Not there yet (the default /tmp/gcmon-UID of paths.h,
		 * or a --socket directory): made private. */
		if (errno != ENOENT || mkdir(dir, PATHS_DIR_MODE) < 0 ||
		    stat(dir, &st) < 0) {
			err = -errno;
			*why = "its directory cannot be created";
			goto out;
		}
	}
	if (!S_ISDIR(st.st_mode)) {
		err = -ENOTDIR;
		*why = "its directory is not a directory";
	} else if (st.st_uid != uid && st.st_uid != 0) {
		err = -EPERM;
		*why = "its directory belongs to another user";
	} else if ((st.st_mode & S_IWOTH) &&
	    !((st.st_mode & S_ISVTX) && st.st_uid == uid)) {
		err = -EPERM;
		*why = "its directory is writable by everyone (use a private "
		    "directory such as $XDG_RUNTIME_DIR)";
	}
out:
	free(copy);
	return err;
}

/* Refuses a live daemon at sa and removes a stale socket file. */
static int sock_clear(const struct sockaddr_un *sa, const char **why)
{
	struct stat st;
	int probe, err;

	if (lstat(sa->sun_path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		*why = "a file that is not a socket is in the way";
		return -EEXIST;
	}
	/* Never clobber a live daemon: ask it first. */
	if ((probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	err = connect(probe, (const struct sockaddr *)sa, sizeof *sa);
	close(probe);
	if (err == 0) {
		*why = "a daemon is already listening there";
		return -EADDRINUSE;
	}
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int sock_bind(const char *path, uid_t uid, const gid_t *gid, int backlog,
    struct stat *st, const char **why)
{
	struct sockaddr_un sa;
	mode_t old;
	int fd, err;

	*why = NULL;
	if (strlen(path) >= sizeof sa.sun_path)
		return -ENAMETOOLONG;
	if ((err = sock_check_dir(path, uid, why)) < 0)
		return err;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((err = sock_clear(&sa, why)) < 0)
		return err;
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	old = umask(0177);	/* born 0600: no window where others connect */
	err = bind(fd, (struct sockaddr *)&sa, sizeof sa);
	umask(old);
	if (err < 0)
		goto out_close;
	if (gid != NULL && (chown(path, (uid_t)-1, *gid) < 0 ||
	    chmod(path, 0660) < 0))
		goto out_unlink;
	if (listen(fd, backlog) < 0 || stat(path, st) < 0)
		goto out_unlink;
	return fd;
out_unlink:
	err = -errno;	/* before unlink() and close() can clobber errno */
	unlink(path);
	close(fd);
	return err;
out_close:
	err = -errno;
	close(fd);
	return err;
}
