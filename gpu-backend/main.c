#include "ccgate/err.h"
#include "ccgate/log.h"
#include "gb_backend.h"
#include "gb_gguf.h"
#include "gb_model.h"
#include "gb_tiny.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_type(const char *s, uint32_t *out)
{
    static const struct {
        const char *name;
        uint32_t type;
    } types[] = {{"f32", GB_F32}, {"f16", GB_F16}, {"bf16", GB_BF16}, {"q8_0", GB_Q8_0},
                 {"q4_0", GB_Q4_0}};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(s, types[i].name) == 0) {
            *out = types[i].type;
            return 0;
        }
    return CG_ECONFIG;
}

/* gen-tiny: writes a builtin:tiny variant to a file (tests and the reference check). */
static int cmd_gen_tiny(int argc, char **argv)
{
    static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
                                         {"type", required_argument, NULL, 't'},
                                         {"arch", required_argument, NULL, 'a'},
                                         {"bpe", no_argument, NULL, 'b'},
                                         {"rope-linear", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    struct gb_tiny_opts o = {0};
    const char *path = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            path = optarg;
            break;
        case 't':
            if (parse_type(optarg, &o.wtype) != 0)
                cg_fatal("--type: unknown type %s (f32, f16, bf16, q8_0, q4_0)", optarg);
            break;
        case 'a':
            o.arch = optarg;
            break;
        case 'b':
            o.bpe = 1;
            break;
        case 'r':
            o.rope_linear = strtof(optarg, NULL);
            break;
        default:
            cg_fatal("usage: ccgate-worker gen-tiny --out FILE [--type T] [--arch A] [--bpe] "
                     "[--rope-linear F]");
        }
    }
    if (path == NULL)
        cg_fatal("gen-tiny: --out FILE is required");
    uint8_t *img;
    size_t len;
    int rc = gb_tiny_build(&o, &img, &len);
    if (rc != 0)
        cg_fatal("gen-tiny: %s", cg_strerror(rc));
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(img, 1, len, f) != len || fclose(f) != 0)
        cg_fatal("gen-tiny: cannot write %s: %s", path, strerror(errno));
    free(img);
    return 0;
}

/*
 * logits: runs the tokens through the model and prints the logits of every position, one
 * line each. --mode decode feeds one token per step (exercising the KV cache), prefill the
 * whole prompt in one step.
 */
static int cmd_logits(int argc, char **argv)
{
    static const struct option opts[] = {{"model", required_argument, NULL, 'm'},
                                         {"tokens", required_argument, NULL, 't'},
                                         {"mode", required_argument, NULL, 'M'},
                                         {"device", required_argument, NULL, 'd'},
                                         {"threads", required_argument, NULL, 'j'},
                                         {NULL, 0, NULL, 0}};
    const char *spec = "builtin:tiny", *toks = NULL, *mode = "decode", *device = "cpu";
    int threads = 0, c;
    char err[512];
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm':
            spec = optarg;
            break;
        case 't':
            toks = optarg;
            break;
        case 'M':
            mode = optarg;
            break;
        case 'd':
            device = optarg;
            break;
        case 'j':
            threads = atoi(optarg);
            break;
        default:
            cg_fatal("usage: ccgate-worker logits --model M --tokens 1,2,3 [--mode decode|prefill]");
        }
    }
    if (toks == NULL)
        cg_fatal("logits: --tokens is required");
    struct gb_model *m;
    if (gb_model_open(spec, &m, err, sizeof(err)) != 0)
        cg_fatal("%s", err);
    int32_t tok[256], pos[256], seq[256];
    uint8_t want[256];
    int n = 0;
    for (char *p = (char *)toks; *p != 0 && n < 256;) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p)
            cg_fatal("logits: bad token list");
        tok[n] = (int32_t)v, pos[n] = n, seq[n] = 0, want[n] = 1;
        n++;
        p = *end == ',' ? end + 1 : end;
    }
    struct gb_backend *b = NULL;
    int rc;
    if (strcmp(device, "cuda") == 0)
        rc = gb_cuda_new(m, 1, 512, 256, &b, err, sizeof(err));
    else
        rc = gb_cpu_new(m, 1, 512, 256, threads, &b);
    if (rc != 0)
        cg_fatal("logits: backend: %s %s", cg_strerror(rc), device[0] == 'c' ? err : "");
    uint32_t nv = m->hp.n_vocab;
    float *lg = malloc((size_t)n * nv * sizeof(float));
    if (lg == NULL)
        cg_fatal("out of memory");
    if (strcmp(mode, "prefill") == 0) {
        struct gb_batch bt = {n, tok, pos, seq, want};
        rc = b->forward(b, &bt, lg);
    } else {
        for (int i = 0; i < n && rc == 0; i++) {
            struct gb_batch bt = {1, tok + i, pos + i, seq + i, want + i};
            rc = b->forward(b, &bt, lg + (size_t)i * nv);
        }
    }
    if (rc != 0)
        cg_fatal("logits: forward failed: %s", cg_strerror(rc));
    for (int i = 0; i < n; i++) {
        for (uint32_t j = 0; j < nv; j++)
            printf(j ? " %.9g" : "%.9g", (double)lg[(size_t)i * nv + j]);
        printf("\n");
    }
    free(lg);
    gb_backend_free(b);
    gb_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    cg_log_init("ccgate-worker", CG_LOG_TEXT, CG_LOG_INFO);
    if (argc > 1 && strcmp(argv[1], "gen-tiny") == 0)
        return cmd_gen_tiny(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "logits") == 0)
        return cmd_logits(argc - 1, argv + 1);
    cg_fatal("usage: ccgate-worker --listen ADDR:PORT|unix:PATH --model builtin:tiny|FILE.gguf");
}
