/* Shared by the libFuzzer targets and the corpus replay. */
#ifndef PC_TESTS_FUZZ_FUZZ_H
#define PC_TESTS_FUZZ_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant: abort, so libFuzzer and the replay both see it. */
static inline void
fuzz_check(bool ok)
{
    if (!ok) {
        abort();
    }
}

#endif
