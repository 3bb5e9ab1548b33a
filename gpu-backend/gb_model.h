#ifndef GB_MODEL_H
#define GB_MODEL_H

#include <stddef.h>
#include <stdint.h>

struct gb_gguf;
struct gb_tok;

/* A weight matrix of n_out rows of n_in elements, in its file type (borrowed data). */
struct gb_wt {
    uint32_t type;
    uint64_t n_in, n_out;
    size_t row_bytes;
    const void *data;
};

struct gb_layer {
    float *attn_norm, *ffn_norm;
    float *bq, *bk, *bv; /* qwen2: QKV bias; NULL otherwise */
    struct gb_wt wq, wk, wv, wo, w_gate, w_up, w_down;
};

struct gb_hparams {
    char arch[32];
    uint32_t n_vocab, dim, n_layer, n_head, n_kv_head, head_dim, n_ff, n_rot, n_ctx_train;
    float eps, rope_base, rope_scale; /* rope_scale: positions are multiplied by it */
    int rope_neox;
};

struct gb_model {
    struct gb_hparams hp;
    struct gb_wt tok_embd, output;
    float *out_norm;
    struct gb_layer *layers;
    struct gb_gguf *gguf;
    struct gb_tok *tok;
    char name[128];
    char *chat_template; /* tokenizer.chat_template, or NULL */
};

/*
 * Builds a model over a parsed GGUF (ownership of g passes to the model, also on error).
 * Checks architecture, shapes and tensor types; anything unsupported is CG_ECONFIG with
 * a message naming it. Caller frees *out with gb_model_free().
 */
int gb_model_load(struct gb_gguf *g, struct gb_model **out, char *err, size_t errlen);

/* Opens "builtin:tiny" or a GGUF file path. */
int gb_model_open(const char *spec, struct gb_model **out, char *err, size_t errlen);

void gb_model_free(struct gb_model *m);

/* Bytes of all weight matrices (what one decode step reads). */
uint64_t gb_model_weight_bytes(const struct gb_model *m);

#endif
