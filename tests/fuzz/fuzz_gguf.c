/*
 * libFuzzer target for the GGUF parser and the model loader behind it (scripts/fuzz-smoke.sh
 * builds and runs it with the others). Seeds: the start of a builtin:tiny variant written by
 * `ccgate-worker gen-tiny` (the smoke run reads at most 8 KiB of an input).
 */
#include "gb_gguf.h"
#include "gb_model.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    struct gb_gguf *g;
    struct gb_model *m;
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    memcpy(copy, data, size);
    if (gb_gguf_parse(copy, size, 1, &g, err, sizeof(err)) != 0)
        return 0;
    if (gb_model_load(g, &m, err, sizeof(err)) == 0)
        gb_model_free(m);
    return 0;
}
