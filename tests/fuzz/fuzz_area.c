/*
 * fuzz_area.c: libFuzzer entry point over a process's shared area as
 * gcmond reads it (read_area.h); built and run by `make fuzz`. Never part
 * of gcmon itself.
 */
#include <stddef.h>
#include <stdint.h>

#include "read_area.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)read_area(data, size);
	return 0;
}
