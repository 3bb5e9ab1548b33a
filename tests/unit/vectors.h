#ifndef VECTORS_H
#define VECTORS_H

/* Shared by the verifier tests: reading a vendor vector below tests/vectors. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

struct blob {
    uint8_t *data;
    size_t len;
};

/* The first max bytes of rel, a path below $CG_VECTORS (else the source tree's tests/vectors);
 * the test fails when the file cannot be opened. Caller frees data. */
static inline struct blob vectors_load(const char *rel, size_t max)
{
    char path[1024];
    const char *base = getenv("CG_VECTORS");
    snprintf(path, sizeof(path), "%s/%s", base != NULL ? base : CG_SOURCE_DIR "/tests/vectors",
             rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct blob b = {malloc(max), 0};
    assert_non_null(b.data);
    b.len = fread(b.data, 1, max, f);
    fclose(f);
    return b;
}

#endif
