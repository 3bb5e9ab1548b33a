#include "gb_tiny.h"

#include "ccgate/err.h"
#include "gb_gguf.h"
#include "gb_quant.h"
#include "gb_sample.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { DIM = 64, N_LAYER = 2, N_HEAD = 4, N_KV = 2, N_FF = 160, N_CTX = 1024 };

/* Words whose every prefix becomes a token, so merging can reach the whole word. */
static const char *const words[] = {
    "the",     "and",   "hello",  "world", "is",   "of",    "to",     "in",    "it",    "you",
    "that",    "was",   "for",    "on",    "are",  "with",  "as",     "this",  "be",    "at",
    "have",    "from",  "or",     "one",   "had",  "by",    "word",   "but",   "not",   "what",
    "all",     "were",  "we",     "when",  "your", "can",   "said",   "there", "use",   "an",
    "each",    "which", "she",    "do",    "how",  "their", "if",     "will",  "up",    "other",
    "about",   "out",   "many",   "then",  "them", "these", "so",     "some",  "her",   "would",
    "make",    "like",  "him",    "into",  "time", "has",   "look",   "two",   "more",  "write",
    "go",      "see",   "number", "no",    "way",  "could", "people", "my",    "than",  "first",
    "water",   "been",  "call",   "who",   "oil",  "its",   "now",    "find",  "long",  "down",
    "day",     "did",   "get",    "come",  "made", "may",   "part",   "model", "token", "secure",
    "enclave", "ing",   "ed",     "er"};

struct vocab {
    char **text;
    float *score;
    int32_t *type;
    size_t n, cap;
    char **merges;
    size_t n_merges, cap_merges;
};

static int has(const struct vocab *v, const char *s)
{
    for (size_t i = 0; i < v->n; i++)
        if (strcmp(v->text[i], s) == 0)
            return 1;
    return 0;
}

/* Appends a piece known not to be in the vocabulary yet. */
static int add_new(struct vocab *v, const char *s, float score, int32_t type)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 512;
        char **t = realloc(v->text, cap * sizeof(*t));
        if (t == NULL)
            return -ENOMEM;
        v->text = t;
        float *sc = realloc(v->score, cap * sizeof(*sc));
        if (sc == NULL)
            return -ENOMEM;
        v->score = sc;
        int32_t *ty = realloc(v->type, cap * sizeof(*ty));
        if (ty == NULL)
            return -ENOMEM;
        v->type = ty;
        v->cap = cap;
    }
    if ((v->text[v->n] = strdup(s)) == NULL)
        return -ENOMEM;
    v->score[v->n] = score;
    v->type[v->n] = type;
    v->n++;
    return 0;
}

static int add(struct vocab *v, const char *s, float score, int32_t type)
{
    return has(v, s) ? 0 : add_new(v, s, score, type);
}

static int add_merge(struct vocab *v, const char *l, const char *r)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s %s", l, r);
    for (size_t i = 0; i < v->n_merges; i++)
        if (strcmp(v->merges[i], buf) == 0)
            return 0;
    if (v->n_merges == v->cap_merges) {
        size_t cap = v->cap_merges ? v->cap_merges * 2 : 256;
        char **m = realloc(v->merges, cap * sizeof(*m));
        if (m == NULL)
            return -ENOMEM;
        v->merges = m;
        v->cap_merges = cap;
    }
    if ((v->merges[v->n_merges] = strdup(buf)) == NULL)
        return -ENOMEM;
    v->n_merges++;
    return 0;
}

static void vocab_free(struct vocab *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->text[i]);
    for (size_t i = 0; i < v->n_merges; i++)
        free(v->merges[i]);
    free(v->text);
    free(v->score);
    free(v->type);
    free(v->merges);
}

/* gpt2's byte -> printable code point mapping, as UTF-8. */
static void byte_char(uint8_t b, char *out)
{
    int n = 0;
    uint32_t cp = b;
    if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174))) {
        for (int x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174)))
                n++;
        cp = 256 + (uint32_t)n;
    }
    if (cp < 0x80) {
        out[0] = (char)cp, out[1] = 0;
    } else {
        out[0] = (char)(0xc0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3f)), out[2] = 0;
    }
}

static int build_spm(struct vocab *v)
{
    char buf[64];
    int rc = 0;
    rc |= add(v, "<unk>", 0, 2);
    rc |= add(v, "<s>", 0, 3);
    rc |= add(v, "</s>", 0, 3);
    for (int b = 0; b < 256; b++) {
        snprintf(buf, sizeof(buf), "<0x%02X>", b);
        rc |= add(v, buf, 0, 6);
    }
    rc |= add(v, "<|im_start|>", 0, 3);
    rc |= add(v, "<|im_end|>", 0, 3);
    rc |= add(v, "\xe2\x96\x81", -1, 1);
    for (int c = 33; c < 127; c++) {
        buf[0] = (char)c, buf[1] = 0;
        rc |= add(v, buf, -2, 1);
    }
    float score = -3;
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
        /* "▁word" and every prefix of it of two characters or more */
        char piece[64] = "\xe2\x96\x81";
        size_t wl = strlen(words[w]);
        for (size_t k = 0; k < wl; k++) {
            size_t pl = strlen(piece);
            piece[pl] = words[w][k];
            piece[pl + 1] = 0;
            rc |= add(v, piece, score, 1);
            score -= 0.01f;
        }
    }
    return rc != 0 ? -ENOMEM : 0;
}

static int build_bpe(struct vocab *v)
{
    char c[4];
    int rc = 0;
    for (int b = 0; b < 256; b++) {
        byte_char((uint8_t)b, c);
        rc |= add(v, c, 0, 1);
    }
    char space[4];
    byte_char(' ', space);
    /* "Ġword" then "word", merged left to right one character at a time; the "Ġ" merges
     * rank first so that a word after a space becomes one token */
    for (int lead = 1; lead >= 0 && rc == 0; lead--) {
        for (size_t w = 0; w < sizeof(words) / sizeof(words[0]) && rc == 0; w++) {
            char cur[128];
            snprintf(cur, sizeof(cur), "%s", lead ? space : "");
            size_t wl = strlen(words[w]);
            for (size_t k = 0; k < wl && rc == 0; k++) {
                char ch[2] = {words[w][k], 0};
                if (cur[0] == 0) {
                    snprintf(cur, sizeof(cur), "%s", ch);
                    continue;
                }
                rc |= add_merge(v, cur, ch);
                size_t cl = strlen(cur);
                cur[cl] = ch[0];
                cur[cl + 1] = 0;
                rc |= add(v, cur, 0, 1);
            }
        }
    }
    rc |= add(v, "<|endoftext|>", 0, 3);
    rc |= add(v, "<|im_start|>", 0, 3);
    rc |= add(v, "<|im_end|>", 0, 3);
    return rc != 0 ? -ENOMEM : 0;
}

/* Uniform in [offset - scale, offset + scale). */
static void fill(struct gb_rng *st, float *x, size_t n, float scale, float offset)
{
    for (size_t i = 0; i < n; i++)
        x[i] = offset + scale * (float)(gb_rng_uniform(st) * 2.0 - 1.0);
}

/* Rows in [damp_lo, damp_hi) are scaled down (the output rows of byte tokens, so that the
 * demo prints words more often than stray bytes). */
static int add_matrix(struct gb_gguf_writer *w, struct gb_rng *st, const char *name, uint32_t type,
                      uint64_t n_in, uint64_t n_out, float scale, uint64_t damp_lo,
                      uint64_t damp_hi)
{
    size_t rb = gb_type_row_bytes(type, n_in);
    float *x = malloc(n_in * n_out * sizeof(float));
    uint8_t *q = malloc(rb * n_out);
    uint64_t ne[2] = {n_in, n_out};
    int rc = -ENOMEM;
    if (x == NULL || q == NULL)
        goto out;
    fill(st, x, n_in * n_out, scale, 0);
    for (uint64_t r = damp_lo; r < damp_hi && r < n_out; r++)
        for (uint64_t i = 0; i < n_in; i++)
            x[r * n_in + i] *= 0.1f;
    for (uint64_t r = 0; r < n_out; r++)
        if ((rc = gb_quant_row(type, x + r * n_in, q + r * rb, n_in)) != 0)
            goto out;
    rc = gb_gguf_w_tensor(w, name, type, 2, ne, q);
out:
    free(x);
    free(q);
    return rc;
}

static int add_vector(struct gb_gguf_writer *w, struct gb_rng *st, const char *name, uint64_t n,
                      float scale, float offset)
{
    float x[DIM * 2];
    uint64_t ne[1] = {n};
    fill(st, x, n, scale, offset);
    return gb_gguf_w_tensor(w, name, GB_F32, 1, ne, x);
}

/* Metadata and vocabulary shared by builtin:tiny and the full-size shapes. */
static int put_meta(struct gb_gguf_writer *w, const struct gb_tiny_opts *o, const char *arch,
                    const char *name, const struct gb_tiny_shape *sh, const struct vocab *v)
{
    char key[128];
    int qwen = strcmp(arch, "qwen2") == 0, rc = 0;
#define KEY(k) (snprintf(key, sizeof(key), "%s." k, arch), key)
    rc |= gb_gguf_w_str(w, "general.architecture", arch);
    rc |= gb_gguf_w_str(w, "general.name", name);
    rc |= gb_gguf_w_u32(w, "general.alignment", 32);
    rc |= gb_gguf_w_u32(w, KEY("context_length"), sh->n_ctx);
    rc |= gb_gguf_w_u32(w, KEY("embedding_length"), sh->dim);
    rc |= gb_gguf_w_u32(w, KEY("block_count"), sh->n_layer);
    rc |= gb_gguf_w_u32(w, KEY("feed_forward_length"), sh->n_ff);
    rc |= gb_gguf_w_u32(w, KEY("attention.head_count"), sh->n_head);
    rc |= gb_gguf_w_u32(w, KEY("attention.head_count_kv"), sh->n_kv);
    rc |= gb_gguf_w_u32(w, KEY("rope.dimension_count"), sh->dim / sh->n_head);
    rc |= gb_gguf_w_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
    rc |= gb_gguf_w_f32(w, KEY("rope.freq_base"), qwen ? 1000000.0f : 10000.0f);
    if (o->rope_linear > 0) {
        rc |= gb_gguf_w_str(w, KEY("rope.scaling.type"), "linear");
        rc |= gb_gguf_w_f32(w, KEY("rope.scaling.factor"), o->rope_linear);
    }
#undef KEY
    rc |= gb_gguf_w_str(w, "tokenizer.ggml.model", o->bpe ? "gpt2" : "llama");
    if (o->bpe)
        rc |= gb_gguf_w_str(w, "tokenizer.ggml.pre", qwen ? "qwen2" : "llama-bpe");
    rc |= gb_gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->text, v->n);
    rc |= gb_gguf_w_arr_f32(w, "tokenizer.ggml.scores", v->score, v->n);
    rc |= gb_gguf_w_arr_i32(w, "tokenizer.ggml.token_type", v->type, v->n);
    if (o->bpe) {
        rc |= gb_gguf_w_arr_str(w, "tokenizer.ggml.merges", (const char *const *)v->merges,
                                v->n_merges);
        rc |= gb_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", (uint32_t)(v->n - 1));
        rc |= gb_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)(v->n - 3));
        rc |= gb_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 0);
    } else {
        rc |= gb_gguf_w_u32(w, "tokenizer.ggml.bos_token_id", 1);
        rc |= gb_gguf_w_u32(w, "tokenizer.ggml.eos_token_id", 2);
        rc |= gb_gguf_w_u32(w, "tokenizer.ggml.unknown_token_id", 0);
        rc |= gb_gguf_w_bool(w, "tokenizer.ggml.add_bos_token", 1);
    }
    rc |= gb_gguf_w_str(w, "tokenizer.chat_template",
                        "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' "
                        "+ message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "
                        "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}");
    return rc != 0 ? -ENOMEM : 0;
}

int gb_tiny_build(const struct gb_tiny_opts *o, uint8_t **img, size_t *len)
{
    static const struct gb_tiny_shape tiny = {"ccgate-tiny", DIM,  N_LAYER, N_HEAD,
                                              N_KV,          N_FF, 0,       N_CTX};
    struct vocab v = {0};
    struct gb_gguf_writer *w = NULL;
    const char *arch = o->arch != NULL ? o->arch : "llama";
    int qwen = strcmp(arch, "qwen2") == 0;
    uint32_t wt = o->wtype;
    struct gb_rng st;
    char name[128];
    int rc;
    gb_rng_seed(&st, o->seed ? o->seed : 0x5eed7a11ull);
    if ((rc = o->bpe ? build_bpe(&v) : build_spm(&v)) != 0)
        goto out;
    if ((rc = gb_gguf_writer_new(&w)) != 0)
        goto out;
    if ((rc = put_meta(w, o, arch, tiny.name, &tiny, &v)) != 0)
        goto out;
    float s_in = 1.0f / sqrtf((float)DIM), s_ff = 1.0f / sqrtf((float)N_FF);
    uint32_t kvd = N_KV * (DIM / N_HEAD);
    if ((rc = add_matrix(w, &st, "token_embd.weight", wt, DIM, v.n, 1.0f, 0, 0)) != 0)
        goto out;
    for (int l = 0; l < N_LAYER && rc == 0; l++) {
#define NM(s) (snprintf(name, sizeof(name), "blk.%d." s, l), name)
        rc = add_vector(w, &st, NM("attn_norm.weight"), DIM, 0.2f, 1.0f);
        rc = rc ? rc : add_matrix(w, &st, NM("attn_q.weight"), wt, DIM, DIM, s_in, 0, 0);
        rc = rc ? rc : add_matrix(w, &st, NM("attn_k.weight"), wt, DIM, kvd, s_in, 0, 0);
        rc = rc ? rc : add_matrix(w, &st, NM("attn_v.weight"), wt, DIM, kvd, s_in, 0, 0);
        rc = rc ? rc : add_matrix(w, &st, NM("attn_output.weight"), wt, DIM, DIM, s_in, 0, 0);
        if (qwen) {
            rc = rc ? rc : add_vector(w, &st, NM("attn_q.bias"), DIM, 0.1f, 0);
            rc = rc ? rc : add_vector(w, &st, NM("attn_k.bias"), kvd, 0.1f, 0);
            rc = rc ? rc : add_vector(w, &st, NM("attn_v.bias"), kvd, 0.1f, 0);
        }
        rc = rc ? rc : add_vector(w, &st, NM("ffn_norm.weight"), DIM, 0.2f, 1.0f);
        rc = rc ? rc : add_matrix(w, &st, NM("ffn_gate.weight"), wt, DIM, N_FF, s_in, 0, 0);
        rc = rc ? rc : add_matrix(w, &st, NM("ffn_up.weight"), wt, DIM, N_FF, s_in, 0, 0);
        rc = rc ? rc : add_matrix(w, &st, NM("ffn_down.weight"), wt, N_FF, DIM, s_ff, 0, 0);
#undef NM
    }
    if (rc == 0)
        rc = add_vector(w, &st, "output_norm.weight", DIM, 0.2f, 1.0f);
    if (rc == 0 && !qwen) /* qwen2 variant: tied output */
        rc = add_matrix(w, &st, "output.weight", wt, DIM, v.n, 4.0f * s_in, o->bpe ? 0 : 3,
                        o->bpe ? 0 : 3 + 256);
    if (rc == 0)
        rc = gb_gguf_writer_finish(w, img, len);
out:
    gb_gguf_writer_free(w);
    vocab_free(&v);
    return rc;
}

static const struct gb_tiny_shape shapes[] = {
    {"small", 512, 8, 8, 4, 1408, 32000, 2048},
    {"tinyllama-1.1b", 2048, 22, 32, 4, 5632, 32000, 2048},
    {"llama-8b", 4096, 32, 32, 8, 14336, 128256, 8192},
};

const struct gb_tiny_shape *gb_tiny_shape_find(const char *name)
{
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        if (strcmp(shapes[i].name, name) == 0)
            return &shapes[i];
    return NULL;
}

const char *gb_tiny_shape_names(void)
{
    return "small, tinyllama-1.1b, llama-8b";
}

/* One tensor of a streamed model: a matrix (n_out > 0) or a vector of n_in elements. */
struct plan {
    char name[48];
    uint64_t n_in, n_out;
    float scale, offset;
};

struct stream {
    const struct plan *p;
    uint32_t wtype;
    uint64_t seed;
    float *row;
};

static int fill_tensor(void *arg, uint64_t i, void *dst, size_t nbytes)
{
    struct stream *s = arg;
    const struct plan *p = &s->p[i];
    struct gb_rng st;
    gb_rng_seed(&st, s->seed + i * 0x9e3779b97f4a7c15ull);
    if (p->n_out == 0) {
        fill(&st, dst, p->n_in, p->scale, p->offset);
        return 0;
    }
    size_t rb = gb_type_row_bytes(s->wtype, p->n_in);
    if (rb * p->n_out != nbytes)
        return CG_ECONFIG;
    for (uint64_t r = 0; r < p->n_out; r++) {
        fill(&st, s->row, p->n_in, p->scale, 0);
        int rc = gb_quant_row(s->wtype, s->row, (uint8_t *)dst + r * rb, p->n_in);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int gb_tiny_write(const struct gb_tiny_shape *sh, uint32_t wtype, uint64_t seed, const char *path)
{
    struct gb_tiny_opts o = {.wtype = wtype};
    struct vocab v = {0};
    struct gb_gguf_writer *w = NULL;
    struct plan *pl = NULL;
    struct stream s = {.wtype = wtype, .seed = seed ? seed : 0x5eed7a11ull};
    size_t n = 0;
    uint32_t kvd = sh->n_kv * (sh->dim / sh->n_head);
    int rc;
    if (sh->dim % 32 || sh->n_ff % 32 || sh->dim % sh->n_head || sh->n_head % sh->n_kv ||
        gb_type_row_bytes(wtype, sh->dim) == 0)
        return CG_ECONFIG;
    if ((rc = build_spm(&v)) != 0)
        goto out;
    for (uint32_t i = (uint32_t)v.n; i < sh->n_vocab && rc == 0; i++) {
        char piece[32]; /* "▁" and digits: no builtin:tiny piece looks like that */
        snprintf(piece, sizeof(piece), "\xe2\x96\x81%u", i);
        rc = add_new(&v, piece, -10.0f - 1e-4f * (float)i, 1);
    }
    if (rc != 0 || v.n != sh->n_vocab) {
        rc = rc ? rc : CG_ECONFIG; /* a vocabulary smaller than builtin:tiny's own */
        goto out;
    }
    pl = calloc(3 + 9 * (size_t)sh->n_layer, sizeof(*pl));
    s.row = malloc((sh->dim > sh->n_ff ? sh->dim : sh->n_ff) * sizeof(float));
    if (pl == NULL || s.row == NULL || (rc = gb_gguf_writer_new(&w)) != 0) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = put_meta(w, &o, "llama", sh->name, sh, &v)) != 0)
        goto out;
    float s_in = 1.0f / sqrtf((float)sh->dim), s_ff = 1.0f / sqrtf((float)sh->n_ff);
#define P(nin, nout, sc, off, ...)                                                                 \
    (snprintf(pl[n].name, sizeof(pl[n].name), __VA_ARGS__), pl[n].n_in = (nin),                    \
     pl[n].n_out = (nout), pl[n].scale = (sc), pl[n].offset = (off), n++)
    P(sh->dim, sh->n_vocab, 1.0f, 0, "token_embd.weight");
    for (uint32_t l = 0; l < sh->n_layer; l++) {
        P(sh->dim, 0, 0.2f, 1.0f, "blk.%u.attn_norm.weight", l);
        P(sh->dim, sh->dim, s_in, 0, "blk.%u.attn_q.weight", l);
        P(sh->dim, kvd, s_in, 0, "blk.%u.attn_k.weight", l);
        P(sh->dim, kvd, s_in, 0, "blk.%u.attn_v.weight", l);
        P(sh->dim, sh->dim, s_in, 0, "blk.%u.attn_output.weight", l);
        P(sh->dim, 0, 0.2f, 1.0f, "blk.%u.ffn_norm.weight", l);
        P(sh->dim, sh->n_ff, s_in, 0, "blk.%u.ffn_gate.weight", l);
        P(sh->dim, sh->n_ff, s_in, 0, "blk.%u.ffn_up.weight", l);
        P(sh->n_ff, sh->dim, s_ff, 0, "blk.%u.ffn_down.weight", l);
    }
    P(sh->dim, 0, 0.2f, 1.0f, "output_norm.weight");
    P(sh->dim, sh->n_vocab, 4.0f * s_in, 0, "output.weight");
#undef P
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint64_t ne[2] = {pl[i].n_in, pl[i].n_out};
        rc = pl[i].n_out ? gb_gguf_w_tensor_info(w, pl[i].name, wtype, 2, ne)
                         : gb_gguf_w_tensor_info(w, pl[i].name, GB_F32, 1, ne);
    }
    s.p = pl;
    if (rc == 0)
        rc = gb_gguf_writer_stream(w, path, fill_tensor, &s);
out:
    gb_gguf_writer_free(w);
    free(pl);
    free(s.row);
    vocab_free(&v);
    return rc;
}
