#include "gb_model.h"

#include "ccgate/err.h"
#include "gb_gguf.h"
#include "gb_quant.h"
#include "gb_tiny.h"
#include "gb_tok.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void gb_model_free(struct gb_model *m)
{
    if (m == NULL)
        return;
    for (uint32_t l = 0; m->layers != NULL && l < m->hp.n_layer; l++) {
        struct gb_layer *L = &m->layers[l];
        free(L->attn_norm);
        free(L->ffn_norm);
        free(L->bq);
        free(L->bk);
        free(L->bv);
    }
    free(m->layers);
    free(m->out_norm);
    free(m->chat_template);
    gb_tok_free(m->tok);
    gb_gguf_free(m->gguf);
    free(m);
}

static int get_u32(const struct gb_gguf *g, const char *arch, const char *key, uint32_t *out,
                   int required, char *err, size_t errlen)
{
    char k[128];
    uint64_t v;
    snprintf(k, sizeof(k), "%s.%s", arch, key);
    if (gb_gguf_get_u64(g, k, &v) != 0) {
        if (!required)
            return 0;
        snprintf(err, errlen, "model: metadata %s missing or not an integer", k);
        return CG_ECONFIG;
    }
    if (v == 0 || v > (1u << 24)) {
        snprintf(err, errlen, "model: metadata %s = %llu out of range", k, (unsigned long long)v);
        return CG_ECONFIG;
    }
    *out = (uint32_t)v;
    return 0;
}

static float get_f(const struct gb_gguf *g, const char *arch, const char *key, float dflt)
{
    char k[128];
    double v;
    snprintf(k, sizeof(k), "%s.%s", arch, key);
    return gb_gguf_get_f64(g, k, &v) == 0 ? (float)v : dflt;
}

/* A matrix of n_out rows of n_in; name is formatted with the layer index. */
static int load_wt(const struct gb_gguf *g, const char *name, uint64_t n_in, uint64_t n_out,
                   struct gb_wt *w, char *err, size_t errlen)
{
    const struct gb_gguf_tensor *t = gb_gguf_tensor(g, name);
    if (t == NULL) {
        snprintf(err, errlen, "model: tensor %s missing", name);
        return CG_ECONFIG;
    }
    if (t->data == NULL) {
        snprintf(err, errlen,
                 "model: tensor %s has unsupported type %u (%s); supported: f32, "
                 "f16, bf16, q8_0, q4_0",
                 name, t->type, gb_type_name(t->type));
        return CG_ECONFIG;
    }
    if (t->n_dims != 2 || t->ne[0] != n_in || t->ne[1] != n_out) {
        snprintf(err, errlen, "model: tensor %s has shape [%llu, %llu], expected [%llu, %llu]",
                 name, (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                 (unsigned long long)n_in, (unsigned long long)n_out);
        return CG_ECONFIG;
    }
    w->type = t->type;
    w->n_in = n_in;
    w->n_out = n_out;
    w->row_bytes = gb_type_row_bytes(t->type, n_in);
    w->data = t->data;
    return 0;
}

/* A vector of n floats (norm weights, biases), decoded into a new array. */
static int load_vec(const struct gb_gguf *g, const char *name, uint64_t n, float **out,
                    int required, char *err, size_t errlen)
{
    const struct gb_gguf_tensor *t = gb_gguf_tensor(g, name);
    *out = NULL;
    if (t == NULL) {
        if (!required)
            return 0;
        snprintf(err, errlen, "model: tensor %s missing", name);
        return CG_ECONFIG;
    }
    if (t->data == NULL || t->n_dims != 1 || t->ne[0] != n) {
        snprintf(err, errlen, "model: tensor %s: expected %llu elements of a supported type", name,
                 (unsigned long long)n);
        return CG_ECONFIG;
    }
    *out = malloc(n * sizeof(float));
    if (*out == NULL)
        return -ENOMEM;
    gb_dequant_row(t->type, t->data, *out, n);
    return 0;
}

int gb_model_load(struct gb_gguf *g, struct gb_model **out, char *err, size_t errlen)
{
    int rc = CG_ECONFIG;
    char name[GB_GGUF_MAX_NAME];
    struct gb_model *m = calloc(1, sizeof(*m));
    char *arch = gb_gguf_get_str(g, "general.architecture");
    struct gb_hparams *hp;
    *out = NULL;
    if (m == NULL) {
        gb_gguf_free(g);
        free(arch);
        return -ENOMEM;
    }
    m->gguf = g;
    hp = &m->hp;
    if (arch == NULL) {
        snprintf(err, errlen, "model: general.architecture missing");
        goto out;
    }
    if (strcmp(arch, "llama") != 0 && strcmp(arch, "mistral") != 0 && strcmp(arch, "qwen2") != 0) {
        snprintf(err, errlen, "model: unsupported architecture \"%.40s\" (llama, mistral, qwen2)",
                 arch);
        goto out;
    }
    snprintf(hp->arch, sizeof(hp->arch), "%s", arch);
    hp->rope_neox = strcmp(arch, "qwen2") == 0;
    if ((rc = get_u32(g, arch, "embedding_length", &hp->dim, 1, err, errlen)) ||
        (rc = get_u32(g, arch, "block_count", &hp->n_layer, 1, err, errlen)) ||
        (rc = get_u32(g, arch, "feed_forward_length", &hp->n_ff, 1, err, errlen)) ||
        (rc = get_u32(g, arch, "attention.head_count", &hp->n_head, 1, err, errlen)))
        goto out;
    hp->n_kv_head = hp->n_head;
    hp->n_ctx_train = 2048;
    if ((rc = get_u32(g, arch, "attention.head_count_kv", &hp->n_kv_head, 0, err, errlen)) ||
        (rc = get_u32(g, arch, "context_length", &hp->n_ctx_train, 0, err, errlen)))
        goto out;
    rc = CG_ECONFIG;
    if (hp->dim % hp->n_head != 0 || hp->n_head % hp->n_kv_head != 0 || hp->n_layer > 1024) {
        snprintf(err, errlen, "model: inconsistent heads: dim %u, %u heads, %u kv heads", hp->dim,
                 hp->n_head, hp->n_kv_head);
        goto out;
    }
    hp->head_dim = hp->dim / hp->n_head;
    hp->n_rot = hp->head_dim;
    if ((rc = get_u32(g, arch, "rope.dimension_count", &hp->n_rot, 0, err, errlen)))
        goto out;
    rc = CG_ECONFIG;
    if (hp->n_rot > hp->head_dim || hp->n_rot % 2 != 0) {
        snprintf(err, errlen, "model: rope.dimension_count %u invalid", hp->n_rot);
        goto out;
    }
    hp->eps = get_f(g, arch, "attention.layer_norm_rms_epsilon", 1e-5f);
    hp->rope_base = get_f(g, arch, "rope.freq_base", 10000.0f);
    hp->rope_scale = 1.0f;
    char key[128];
    snprintf(key, sizeof(key), "%s.rope.scaling.type", arch);
    char *stype = gb_gguf_get_str(g, key);
    if (stype != NULL && strcmp(stype, "none") != 0) {
        float factor = get_f(g, arch, "rope.scaling.factor", 1.0f);
        if (strcmp(stype, "linear") != 0 || !(factor >= 1.0f)) {
            snprintf(err, errlen, "model: unsupported rope scaling \"%.30s\" factor %g (linear)",
                     stype, (double)factor);
            free(stype);
            goto out;
        }
        hp->rope_scale = 1.0f / factor;
    }
    free(stype);
    if (!(hp->eps > 0) || !(hp->rope_base > 0)) {
        snprintf(err, errlen, "model: bad rms epsilon or rope base");
        goto out;
    }
    if ((rc = gb_tok_load(g, &m->tok, err, errlen)) != 0)
        goto out;
    hp->n_vocab = gb_tok_n_vocab(m->tok);
    uint32_t kvd = hp->n_kv_head * hp->head_dim;
    if ((rc = load_wt(g, "token_embd.weight", hp->dim, hp->n_vocab, &m->tok_embd, err, errlen)))
        goto out;
    if (gb_gguf_tensor(g, "output.weight") != NULL) {
        if ((rc = load_wt(g, "output.weight", hp->dim, hp->n_vocab, &m->output, err, errlen)))
            goto out;
    } else {
        m->output = m->tok_embd; /* tied embeddings */
    }
    if ((rc = load_vec(g, "output_norm.weight", hp->dim, &m->out_norm, 1, err, errlen)))
        goto out;
    m->layers = calloc(hp->n_layer, sizeof(*m->layers));
    if (m->layers == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint32_t l = 0; l < hp->n_layer; l++) {
        struct gb_layer *L = &m->layers[l];
        int bias = strcmp(arch, "qwen2") == 0;
#define W(field, nm, nin, nout)                                                                    \
    snprintf(name, sizeof(name), "blk.%u." nm ".weight", l);                                       \
    if ((rc = load_wt(g, name, nin, nout, &L->field, err, errlen)))                                \
        goto out;
#define V(field, nm, n, req)                                                                       \
    snprintf(name, sizeof(name), "blk.%u." nm, l);                                                 \
    if ((rc = load_vec(g, name, n, &L->field, req, err, errlen)))                                  \
        goto out;
        V(attn_norm, "attn_norm.weight", hp->dim, 1)
        V(ffn_norm, "ffn_norm.weight", hp->dim, 1)
        W(wq, "attn_q", hp->dim, hp->dim)
        W(wk, "attn_k", hp->dim, kvd)
        W(wv, "attn_v", hp->dim, kvd)
        W(wo, "attn_output", hp->dim, hp->dim)
        W(w_gate, "ffn_gate", hp->dim, hp->n_ff)
        W(w_up, "ffn_up", hp->dim, hp->n_ff)
        W(w_down, "ffn_down", hp->n_ff, hp->dim)
        V(bq, "attn_q.bias", hp->dim, bias)
        V(bk, "attn_k.bias", kvd, bias)
        V(bv, "attn_v.bias", kvd, bias)
#undef W
#undef V
    }
    char *nm = gb_gguf_get_str(g, "general.name");
    snprintf(m->name, sizeof(m->name), "%s", nm != NULL ? nm : arch);
    free(nm);
    m->chat_template = gb_gguf_get_str(g, "tokenizer.chat_template");
    *out = m;
    m = NULL;
    rc = 0;
out:
    free(arch);
    gb_model_free(m);
    return rc;
}

int gb_model_open(const char *spec, struct gb_model **out, char *err, size_t errlen)
{
    struct gb_gguf *g;
    int rc;
    *out = NULL;
    if (strncmp(spec, "builtin:", 8) == 0) {
        if (strcmp(spec, "builtin:tiny") != 0) {
            snprintf(err, errlen, "unknown built-in model %s (builtin:tiny)", spec);
            return CG_ECONFIG;
        }
        struct gb_tiny_opts o = {0};
        uint8_t *img;
        size_t len;
        if ((rc = gb_tiny_build(&o, &img, &len)) != 0) {
            snprintf(err, errlen, "cannot build builtin:tiny: error %d", rc);
            return rc;
        }
        rc = gb_gguf_parse(img, len, 1, &g, err, errlen);
    } else {
        rc = gb_gguf_open(spec, &g, err, errlen);
    }
    if (rc != 0)
        return rc;
    return gb_model_load(g, out, err, errlen);
}

uint64_t gb_model_weight_bytes(const struct gb_model *m)
{
    uint64_t n = (uint64_t)m->output.row_bytes * m->output.n_out;
    for (uint32_t l = 0; l < m->hp.n_layer; l++) {
        const struct gb_layer *L = &m->layers[l];
        const struct gb_wt *w[] = {&L->wq,     &L->wk,   &L->wv,    &L->wo,
                                   &L->w_gate, &L->w_up, &L->w_down};
        for (size_t i = 0; i < 7; i++)
            n += (uint64_t)w[i]->row_bytes * w[i]->n_out;
    }
    return n;
}
