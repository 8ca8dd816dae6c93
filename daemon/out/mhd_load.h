/*
 * mhd_load.h: libmicrohttpd, loaded with dlopen only when gcmond serves
 * HTTP (--http-listen). Linked, it and what it pulls in (gnutls and a
 * dozen more, all relocated BIND_NOW, and gnutls's constructor) were
 * three quarters of every gcmond start, the launcher's private one too,
 * which never serves HTTP. The functions http.c calls are one table,
 * typed from <microhttpd.h>, each resolved and checked at load. Called
 * by gcmond.c; used by http.c. Never prints.
 */
#ifndef GCMON_MHD_LOAD_H
#define GCMON_MHD_LOAD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <microhttpd.h>

/* The library configure found (its SONAME) and the Debian package that
 * has it, for the message when it is not there. */
#define MHD_LOAD_SONAME		GCMON_MHD_SONAME
#define MHD_LOAD_PACKAGE	"libmicrohttpd12"

/* Every function of libmicrohttpd that gcmond calls: field, symbol. */
#define MHD_LOAD_FUNCS(X)						\
	X(start_daemon, MHD_start_daemon)				\
	X(stop_daemon, MHD_stop_daemon)					\
	X(get_daemon_info, MHD_get_daemon_info)				\
	X(get_timeout, MHD_get_timeout)					\
	X(run, MHD_run)							\
	X(lookup_connection_value, MHD_lookup_connection_value)		\
	X(suspend_connection, MHD_suspend_connection)			\
	X(resume_connection, MHD_resume_connection)			\
	X(create_response_from_buffer, MHD_create_response_from_buffer)	\
	X(create_response_from_callback, MHD_create_response_from_callback) \
	X(add_response_header, MHD_add_response_header)			\
	X(queue_response, MHD_queue_response)				\
	X(destroy_response, MHD_destroy_response)

struct mhd_api {
	void *lib;		/* dlopen's handle; NULL: not loaded */
#define MHD_LOAD_FIELD(field, sym)	__typeof__(sym) *field;
	MHD_LOAD_FUNCS(MHD_LOAD_FIELD)
#undef MHD_LOAD_FIELD
};

/*
 * Loads MHD_LOAD_SONAME (through gcmond's own RUNPATH first, so a wheel's
 * carried copy) and resolves every function into api. 0; or -ENOENT when
 * the library cannot be loaded, -ENOSYS when it lacks a function, with why
 * (dlerror's words) in err, api left unloaded. Loading twice is a no-op.
 */
int mhd_load(struct mhd_api *api, char *err, size_t errlen);
/* No mhd_unload: gcmond loads it once and keeps it to its exit, as it did
 * linked. A dlclose would run gnutls's destructors early and turn what
 * the libraries still hold into leaks for valgrind and LeakSanitizer. */

#endif /* GCMON_MHD_LOAD_H */
