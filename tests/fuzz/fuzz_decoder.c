/*
 * fuzz_decoder.c: libFuzzer entry point over everything that reads peer
 * bytes (see decode_any.h); built and run by `make fuzz`. Never part of
 * gcmon itself.
 */
#include <stddef.h>
#include <stdint.h>

#include "decode_any.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)decode_any(data, size);
	return 0;
}
