#include "ccgate/err.h"
#include "ccgate/log.h"
#include "ccgate/opts.h"
#include "gb_backend.h"
#include "gb_engine.h"
#include "gb_gguf.h"
#include "gb_model.h"
#include "gb_nvml.h"
#include "gb_sealed.h"
#include "gb_server.h"
#include "gb_tiny.h"

#include <signal.h>
#include <uv.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long num_arg(const char *flag, const char *v, long lo, long hi)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == 0 || *end != 0 || n < lo || n > hi)
        cg_fatal("%s: expected an integer from %ld to %ld, got \"%s\"", flag, lo, hi, v);
    return n;
}

/*
 * gen-tiny: writes a builtin:tiny variant to a file (tests and the reference check);
 * gen-model: the same with --shape, a full-size shape with random weights, streamed
 * (benchmarks; default type f16).
 */
static int cmd_gen(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},         {"type", required_argument, NULL, 't'},
        {"arch", required_argument, NULL, 'a'},        {"bpe", no_argument, NULL, 'b'},
        {"rope-linear", required_argument, NULL, 'r'}, {"shape", required_argument, NULL, 's'},
        {"seed", required_argument, NULL, 'S'},        {NULL, 0, NULL, 0}};
    struct gb_tiny_opts o = {0};
    const struct gb_tiny_shape *sh = NULL;
    const char *path = NULL;
    int c, type_set = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            path = optarg;
            break;
        case 't':
            if (gb_type_from_name(optarg, &o.wtype) != 0)
                cg_fatal("--type: unknown type %s (f32, f16, bf16, q8_0, q4_0)", optarg);
            type_set = 1;
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
        case 's':
            if ((sh = gb_tiny_shape_find(optarg)) == NULL)
                cg_fatal("--shape: unknown shape %s (%s)", optarg, gb_tiny_shape_names());
            break;
        case 'S':
            o.seed = (uint64_t)num_arg("--seed", optarg, 0, 0x7fffffffffffffffL);
            break;
        default:
            cg_fatal("usage: ccgate-worker gen-tiny --out FILE [--type T] [--arch A] [--bpe] "
                     "[--rope-linear F] | gen-model --shape S --out FILE [--type T] [--seed N]");
        }
    }
    if (path == NULL)
        cg_fatal("%s: --out FILE is required", argv[0]);
    int rc;
    if (strcmp(argv[0], "gen-model") == 0) {
        if (sh == NULL)
            cg_fatal("gen-model: --shape is required (%s)", gb_tiny_shape_names());
        if (o.arch != NULL || o.bpe || o.rope_linear > 0)
            cg_fatal("gen-model: --arch, --bpe and --rope-linear are for gen-tiny");
        if ((rc = gb_tiny_write(sh, type_set ? o.wtype : GB_F16, o.seed, path)) != 0)
            cg_fatal("gen-model: cannot write %s: %s", path, cg_strerror(rc));
        return 0;
    }
    if (sh != NULL)
        cg_fatal("gen-tiny: --shape is for gen-model");
    uint8_t *img;
    size_t len;
    if ((rc = gb_tiny_build(&o, &img, &len)) != 0)
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
    static const struct option opts[] = {
        {"model", required_argument, NULL, 'm'},   {"tokens", required_argument, NULL, 't'},
        {"mode", required_argument, NULL, 'M'},    {"device", required_argument, NULL, 'd'},
        {"threads", required_argument, NULL, 'j'}, {NULL, 0, NULL, 0}};
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
            cg_fatal(
                "usage: ccgate-worker logits --model M --tokens 1,2,3 [--mode decode|prefill]");
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

/* The serve options: the sidecars' names and sources (flags, CCGATE_*, --config), through
 * common/base/opts.c; the old spellings stay as aliases. */
static struct cg_opt serve_opts[] = {
    {"listen", "ADDR:PORT", "loopback address or unix:PATH to serve on", NULL, NULL, NULL},
    {"model", "SPEC", "builtin:tiny or a GGUF file", NULL, NULL, NULL},
    {"device", "auto|cuda|cpu", "where to run the model", "auto", NULL, NULL},
    {"threads", "N", "CPU threads, 0 = one per core", "0", NULL, NULL},
    {"ctx", "N", "context length per slot (tokens)", "2048", NULL, NULL},
    {"max-batch", "N", "sequences decoded together", "8", NULL, NULL},
    {"seed", "N", "sampling seed", "0", NULL, NULL},
    {"max-body-bytes", "N", "request body limit (413 above)", "1048576", NULL, NULL},
    {"request-timeout-s", "N", "time for a request once begun", "30", NULL, NULL},
    {"idle-timeout-s", "N", "close idle connections after this", "300", NULL, NULL},
    {"config", "FILE", "JSON config file (keys = these option names)", NULL, NULL, NULL},
    {"log-format", "text|json", "log line format", "text", NULL, NULL},
    {"log-level", "error|warn|info|debug", "lowest level logged", "info", NULL, NULL},
    {"access-log", "on|off",
     "one info line per request: method, path, status, duration_ms, request_id, ...", "on", NULL,
     NULL},
    {"kbs", "URL", "key broker for a sealed --model (docs/model-protection.md)", NULL, NULL, NULL},
    {"kbs-resource", "REPO/TYPE/TAG", "the sealed model's key at the broker", NULL, NULL, NULL},
    {"kbs-ca", "FILE", "CA certificate(s) the broker's HTTPS certificate must chain to", NULL, NULL,
     NULL},
    {"tee", "sim|snp|tdx|auto", "evidence provider for the broker", "auto", NULL, NULL},
    {"state-dir", "DIR", "the simulated TEE's state (--tee sim)", NULL, NULL, NULL},
    {"max-body", "N", "old name of --max-body-bytes", NULL, NULL, NULL},
    {"request-timeout", "N", "old name of --request-timeout-s", NULL, NULL, NULL},
    {"idle-timeout", "N", "old name of --idle-timeout-s", NULL, NULL, NULL},
    {"help", NULL, "print this help", NULL, NULL, NULL},
    {"version", NULL, "print the version", NULL, NULL, NULL},
};
#define N_OPTS (sizeof(serve_opts) / sizeof(serve_opts[0]))

static const char usage_line[] =
    "ccgate-worker --listen ADDR:PORT|unix:PATH --model builtin:tiny|FILE.gguf [options]\n"
    "       ccgate-worker gen-tiny --out FILE [--type f32|f16|bf16|q8_0|q4_0] [--seed N] "
    "[--arch llama|qwen2] [--bpe] [--rope-linear F]\n"
    "       ccgate-worker gen-model --shape small|tinyllama-1.1b|llama-8b --out FILE\n"
    "         [--type f32|f16|bf16|q8_0|q4_0] [--seed N]\n"
    "       ccgate-worker logits --model M --tokens 1,2,3 [--mode decode|prefill] "
    "[--device cpu|cuda]";

static const char summary[] =
    "Serves GET /v1/models, POST /v1/completions, POST /v1/chat/completions (stream: SSE)\n"
    "and GET /health on a loopback address; prints \"listening on ADDR\" once ready (with\n"
    "--log-format json, the worker.listen event and its addr field say it).\n"
    "A sealed --model (ccgate seal) needs --kbs and --kbs-resource: the key comes from the\n"
    "broker after attestation (docs/model-protection.md).";

/* An integer option in [lo, hi], read under its new name or its old alias. */
static unsigned long num_opt(const char *name, const char *alias, unsigned long lo,
                             unsigned long hi)
{
    const struct cg_opt *o = cg_opts_get(serve_opts, N_OPTS, name);
    const struct cg_opt *old = alias != NULL ? cg_opts_get(serve_opts, N_OPTS, alias) : NULL;
    /* The new name wins unless only the old one was set (the new one then has its default). */
    if (old != NULL && old->value != NULL && (o->value == NULL || o->value == o->def))
        o = old;
    return cg_opts_uint_or_exit(o, lo, hi);
}

struct app {
    uv_signal_t sigint, sigterm;
    struct gb_server *srv;
    int stopping;
};

static void on_server_closed(void *arg)
{
    struct app *a = arg;
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *a = h->data;
    if (a->stopping)
        return;
    a->stopping = 1;
    cg_logf(CG_LOG_INFO, "worker.stop", CG_LF_INT("signal", signum));
    gb_server_close(a->srv, on_server_closed, a);
}

/* The model id clients name: the file name without .gguf, or "tiny" for builtin:tiny. */
static void model_id(const char *spec, char *out, size_t cap)
{
    const char *base = strncmp(spec, "builtin:", 8) == 0 ? spec + 8 : strrchr(spec, '/');
    base = base == NULL ? spec : (*base == '/' ? base + 1 : base);
    snprintf(out, cap, "%s", base);
    size_t n = strlen(out);
    if (n > 5 && strcmp(out + n - 5, ".gguf") == 0)
        out[n - 5] = 0;
}

static int cmd_serve(int argc, char **argv)
{
    char err[512];
    struct cg_kbc_config kbc = {.tee = "auto"};
    if (cg_opts_startup("ccgate-worker", argc, argv, serve_opts, N_OPTS, usage_line, summary) != 0)
        return 0;
    const char *listen = cg_opts_get(serve_opts, N_OPTS, "listen")->value;
    const char *spec = cg_opts_get(serve_opts, N_OPTS, "model")->value;
    const char *device = cg_opts_get(serve_opts, N_OPTS, "device")->value;
    if (strcmp(device, "auto") != 0 && strcmp(device, "cuda") != 0 && strcmp(device, "cpu") != 0)
        cg_fatal("--device: expected auto, cuda or cpu, got \"%s\"", device);
    int threads = (int)num_opt("threads", NULL, 0, 256);
    int ctx = (int)num_opt("ctx", NULL, 16, 1 << 20);
    int max_batch = (int)num_opt("max-batch", NULL, 1, 256);
    unsigned long long seed = num_opt("seed", NULL, 0, 0x7fffffffffffffffUL);
    size_t max_body = num_opt("max-body-bytes", "max-body", 1024, 1UL << 30);
    uint64_t request_timeout = num_opt("request-timeout-s", "request-timeout", 1, 86400);
    uint64_t idle_timeout = num_opt("idle-timeout-s", "idle-timeout", 1, 86400);
    int access_log = cg_opts_onoff_or_exit(cg_opts_get(serve_opts, N_OPTS, "access-log"));
    kbc.url = cg_opts_get(serve_opts, N_OPTS, "kbs")->value;
    kbc.resource = cg_opts_get(serve_opts, N_OPTS, "kbs-resource")->value;
    kbc.ca_file = cg_opts_get(serve_opts, N_OPTS, "kbs-ca")->value;
    kbc.tee = cg_opts_get(serve_opts, N_OPTS, "tee")->value;
    kbc.state_dir = cg_opts_get(serve_opts, N_OPTS, "state-dir")->value;
    if (listen == NULL || spec == NULL)
        cg_fatal("--listen and --model are required (see --help)");
    struct gb_model *m;
    struct gb_sealed_info sealed = {0};
    char sealed_hex[65] = "";
    if (kbc.url != NULL || gb_sealed_is(spec)) {
        struct gb_gguf *g;
        if (kbc.url == NULL || kbc.resource == NULL)
            cg_fatal("--model %s is sealed: --kbs URL and --kbs-resource REPO/TYPE/TAG are "
                     "required to get its key",
                     spec);
        if (gb_sealed_open(spec, &kbc, &g, &sealed, err, sizeof(err)) != 0 ||
            gb_model_load(g, &m, err, sizeof(err)) != 0)
            cg_fatal("sealed model refused: %s", err);
        cg_hex(sealed_hex, sizeof(sealed_hex), sealed.plain_sha256, 32);
        cg_log_info("worker.sealed", "name=%s version=%llu min_version=%llu sha256=%s tee=%s",
                    sealed.name, (unsigned long long)sealed.version,
                    (unsigned long long)sealed.min_version, sealed_hex, kbc.tee);
    } else if (gb_model_open(spec, &m, err, sizeof(err)) != 0) {
        cg_fatal("%s", err);
    }
    struct gb_backend *b = NULL;
    int step = max_batch > 512 ? max_batch : 512;
    int rc = -ENODEV;
    const char *cc = "n/a";
    if (strcmp(device, "cpu") != 0) {
        rc = gb_cuda_new(m, max_batch, ctx, step, &b, err, sizeof(err));
        if (rc != 0 && strcmp(device, "cuda") == 0)
            cg_fatal("--device cuda: %s", err);
        if (rc != 0)
            cg_logf(CG_LOG_INFO, "worker.device", CG_LF_STR("cuda", "unusable"),
                    CG_LF_STR("reason", err), CG_LF_STR("using", "cpu"));
        else
            cc = gb_nvml_cc_mode();
    }
    if (rc != 0 && (rc = gb_cpu_new(m, max_batch, ctx, step, threads, &b)) != 0)
        cg_fatal("cannot set up the CPU path: %s", cg_strerror(rc));
    char id[128], bound[128];
    model_id(spec, id, sizeof(id));
    if (sealed.name[0] != '\0')
        snprintf(id, sizeof(id), "%.127s", sealed.name);
    cg_logf(CG_LOG_INFO, "worker.model", CG_LF_STR("model", id), CG_LF_STR("arch", m->hp.arch),
            CG_LF_UINT("layers", m->hp.n_layer), CG_LF_UINT("dim", m->hp.dim),
            CG_LF_UINT("vocab", m->hp.n_vocab), CG_LF_STR("device", b->device),
            CG_LF_STR("cc_mode", cc));
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    struct gb_engine_opts eo = {
        .n_slots = max_batch, .n_ctx = ctx, .step_tokens = step, .max_queue = 64, .seed = seed};
    struct gb_server_opts so = {.listen = listen,
                                .model_id = id,
                                .cc_mode = cc,
                                .max_body = max_body,
                                .max_conns = 1024,
                                .request_timeout_ms = request_timeout * 1000,
                                .idle_timeout_ms = idle_timeout * 1000,
                                .access_log = access_log,
                                .sealed_name = sealed.name[0] != '\0' ? sealed.name : NULL,
                                .sealed_version = sealed.version,
                                .sealed_sha256 = sealed_hex};
    struct app a = {0};
    if ((rc = gb_server_start(loop, m, b, &eo, &so, &a.srv, bound, sizeof(bound), err,
                              sizeof(err))) != 0)
        cg_fatal("%s", err);
    uv_signal_init(loop, &a.sigint);
    uv_signal_init(loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    cg_logf(CG_LOG_INFO, "worker.listen", CG_LF_STR("addr", bound));
    /* The readiness line scripts wait for; in JSON every line is JSON: worker.listen says it. */
    if (strcmp(cg_opts_get(serve_opts, N_OPTS, "log-format")->value, "json") != 0)
        fprintf(stderr, "listening on %s\n", bound);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    gb_backend_free(b);
    gb_model_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    cg_log_init("ccgate-worker", CG_LOG_TEXT, CG_LOG_INFO);
    if (argc > 1 && (strcmp(argv[1], "gen-tiny") == 0 || strcmp(argv[1], "gen-model") == 0))
        return cmd_gen(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "logits") == 0)
        return cmd_logits(argc - 1, argv + 1);
    return cmd_serve(argc, argv);
}
