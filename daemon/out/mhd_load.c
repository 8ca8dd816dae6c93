/*
 * mhd_load.c: dlopen of libmicrohttpd for http.c, the first time gcmond
 * serves HTTP; each function of mhd_load.h's table resolved and checked
 * here, so a library without one fails at start, never at a request.
 * Called by gcmond.c. Never prints, never exits.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "mhd_load.h"

static const struct mhd_load_sym {
	const char *name;
	size_t off;
} mhd_load_syms[] = {
#define MHD_LOAD_SYM(field, sym) { #sym, offsetof(struct mhd_api, field) },
	MHD_LOAD_FUNCS(MHD_LOAD_SYM)
#undef MHD_LOAD_SYM
};

int mhd_load(struct mhd_api *api, char *err, size_t errlen)
{
	const char *why;
	void *lib, *fn;
	size_t i;

	if (api->lib != NULL)
		return 0;
	/* RTLD_NOW: a symbol the library cannot bind fails here, not later. */
	if ((lib = dlopen(MHD_LOAD_SONAME, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		why = dlerror();
		snprintf(err, errlen, "cannot load %s (%s): install %s",
		    MHD_LOAD_SONAME, why != NULL ? why : "no reason given",
		    MHD_LOAD_PACKAGE);
		return -ENOENT;
	}
	for (i = 0; i < sizeof mhd_load_syms / sizeof mhd_load_syms[0]; i++) {
		(void)dlerror();
		if ((fn = dlsym(lib, mhd_load_syms[i].name)) == NULL) {
			snprintf(err, errlen, "%s has no %s: install %s >= "
			    "0.9.71", MHD_LOAD_SONAME, mhd_load_syms[i].name,
			    MHD_LOAD_PACKAGE);
			(void)dlclose(lib);	/* not ours: let go */
			memset(api, 0, sizeof *api);
			return -ENOSYS;
		}
		/* POSIX: a function's address fits a void *, and dlsym's
		 * answer is one. */
		memcpy((char *)api + mhd_load_syms[i].off, &fn, sizeof fn);
	}
	api->lib = lib;
	return 0;
}
