/*
 * hello.c: a made-up process's HELLO for the unit suites (see hello.h).
 */
#include <string.h>

#include "hello.h"

void unit_hello(struct proto_hello *h, uint32_t pid, uint32_t ppid,
    const char *run, uint8_t origin)
{
	memset(h, 0, sizeof *h);
	h->pid = pid;
	h->ppid = ppid;
	h->start_mono_ns = 1000000000ull + pid;
	h->clock_real_ns = 1700000000ull * 1000000000ull;
	h->clock_mono_ns = 1000000000ull;
	h->py_hexversion = 0x030b02f0;
	h->origin = origin;
	h->ngen = 3;
	h->run_id.ptr = run;
	h->run_id.len = (uint32_t)strlen(run);
	h->py_version.ptr = "3.11.2";
	h->py_version.len = 6;
	h->executable.ptr = "/usr/bin/python3";
	h->executable.len = 16;
	h->argc = 1;
	h->argv[0].ptr = "app.py";
	h->argv[0].len = 6;
}
