/*
 * gb-gen: the ccgate-worker side of bench/llama-compare. Loads a GGUF model, prefills a
 * prompt of P tokens in one step, then decodes G tokens greedily one step each (EOS is not a
 * stop), and prints one JSON line {prefill_s, decode_s, decode_steps, prompt, tokens} like
 * llama.mjs does for llama.cpp. A short warm-up run comes first (pages the weights in).
 * --write does what `ccgate-worker gen-model` does, for bench/gpu-check.sh, which builds
 * this tool without the server's libraries.
 *   gb-gen MODEL.gguf PROMPT_TOKENS GEN_TOKENS THREADS cpu|cuda
 *   gb-gen --write SHAPE TYPE MODEL.gguf
 */
#include "gb_backend.h"
#include "gb_gguf.h"
#include "gb_model.h"
#include "gb_sample.h"
#include "gb_tiny.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_PROMPT = 512, MAX_GEN = 512 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int32_t greedy(const float *logits, uint32_t n)
{
    struct gb_sample_params sp = {.temperature = 0};
    return gb_sample(logits, n, &sp, NULL, NULL);
}

/* Prefill prompt[0..np), then gen greedy tokens into out; times in *tp and *td. */
static int run(struct gb_backend *b, uint32_t nv, const int32_t *prompt, int np, int gen, float *lg,
               int32_t *out, double *tp, double *td)
{
    static int32_t pos[MAX_PROMPT], seq[MAX_PROMPT];
    static uint8_t want[MAX_PROMPT];
    for (int i = 0; i < np; i++)
        pos[i] = i, seq[i] = 0, want[i] = i == np - 1;
    struct gb_batch bt = {np, prompt, pos, seq, want};
    double t0 = now();
    int rc = b->forward(b, &bt, lg);
    if (rc != 0)
        return rc;
    out[0] = greedy(lg, nv);
    double t1 = now();
    for (int g = 1; g < gen && rc == 0; g++) {
        int32_t p = np + g - 1, s = 0;
        uint8_t w = 1;
        struct gb_batch one = {1, &out[g - 1], &p, &s, &w};
        rc = b->forward(b, &one, lg);
        out[g] = greedy(lg, nv);
    }
    *tp = t1 - t0;
    *td = now() - t1;
    return rc;
}

static int write_model(const char *shape, const char *type, const char *path)
{
    const struct gb_tiny_shape *sh = gb_tiny_shape_find(shape);
    uint32_t t;
    if (sh == NULL || gb_type_from_name(type, &t) != 0) {
        fprintf(stderr, "gb-gen: unknown shape %s (%s) or type %s\n", shape, gb_tiny_shape_names(),
                type);
        return 2;
    }
    int rc = gb_tiny_write(sh, t, 0, path);
    if (rc != 0)
        fprintf(stderr, "gb-gen: cannot write %s (%d)\n", path, rc);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    char err[512];
    if (argc == 5 && strcmp(argv[1], "--write") == 0)
        return write_model(argv[2], argv[3], argv[4]);
    if (argc != 6 || (strcmp(argv[5], "cpu") != 0 && strcmp(argv[5], "cuda") != 0)) {
        fprintf(stderr, "usage: gb-gen MODEL.gguf PROMPT_TOKENS GEN_TOKENS THREADS cpu|cuda\n"
                        "       gb-gen --write SHAPE TYPE MODEL.gguf\n");
        return 2;
    }
    int np = atoi(argv[2]), gen = atoi(argv[3]), threads = atoi(argv[4]);
    if (np < 8 || np > MAX_PROMPT || gen < 2 || gen > MAX_GEN || threads < 0) {
        fprintf(stderr, "gb-gen: prompt 8..%d, gen 2..%d, threads >= 0\n", MAX_PROMPT, MAX_GEN);
        return 2;
    }
    struct gb_model *m;
    if (gb_model_open(argv[1], &m, err, sizeof(err)) != 0) {
        fprintf(stderr, "gb-gen: %s\n", err);
        return 1;
    }
    struct gb_backend *b = NULL;
    int rc = strcmp(argv[5], "cuda") == 0 ? gb_cuda_new(m, 1, np + gen, np, &b, err, sizeof(err))
                                          : gb_cpu_new(m, 1, np + gen, np, threads, &b);
    if (rc != 0) {
        fprintf(stderr, "gb-gen: backend: %s\n", strcmp(argv[5], "cuda") == 0 ? err : "cpu");
        gb_model_free(m);
        return 1;
    }
    /* the same prompt as llama.mjs: BOS, then ids spread over ordinary pieces */
    static int32_t prompt[MAX_PROMPT], out[MAX_GEN];
    prompt[0] = 1;
    for (int i = 1; i < np; i++)
        prompt[i] = 300 + (i * 7919) % 31000;
    float *lg = malloc((size_t)m->hp.n_vocab * sizeof(float));
    double tp, td;
    rc = lg == NULL ? 1 : run(b, m->hp.n_vocab, prompt, 8, 2, lg, out, &tp, &td);
    if (rc == 0)
        rc = run(b, m->hp.n_vocab, prompt, np, gen, lg, out, &tp, &td);
    if (rc == 0) {
        printf("{\"prefill_s\":%.6f,\"decode_s\":%.6f,\"decode_steps\":%d,\"prompt\":%d,"
               "\"tokens\":[",
               tp, td, gen - 1, np);
        for (int g = 0; g < gen; g++)
            printf(g ? ",%d" : "%d", out[g]);
        printf("]}\n");
    } else {
        fprintf(stderr, "gb-gen: forward failed (%d)\n", rc);
    }
    free(lg);
    gb_backend_free(b);
    gb_model_free(m);
    return rc == 0 ? 0 : 1;
}
