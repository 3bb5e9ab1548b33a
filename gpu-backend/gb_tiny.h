#ifndef GB_TINY_H
#define GB_TINY_H

#include <stddef.h>
#include <stdint.h>

/*
 * builtin:tiny, a small deterministic Llama-family model the project writes itself as GGUF
 * (random weights from a fixed seed, a real SentencePiece or byte-level BPE vocabulary),
 * loaded through the ordinary loader. Variants exist for tests of every code path.
 */
struct gb_tiny_opts {
    const char *arch;  /* "llama" (default) or "qwen2" (QKV bias, NeoX RoPE, tied output) */
    uint32_t wtype;    /* type of the weight matrices: GB_F32 (default), F16, BF16, Q8_0, Q4_0 */
    int bpe;           /* byte-level BPE vocabulary instead of SentencePiece */
    float rope_linear; /* > 0: rope.scaling.type linear with this factor */
    uint64_t seed;     /* 0: the built-in seed */
};

/* Writes the model as a GGUF image; caller frees *img. */
int gb_tiny_build(const struct gb_tiny_opts *o, uint8_t **img, size_t *len);

/* A Llama model shape (n_vocab 0: builtin:tiny's own vocabulary). */
struct gb_tiny_shape {
    const char *name;
    uint32_t dim, n_layer, n_head, n_kv, n_ff, n_vocab, n_ctx;
};

/* The shapes gen-model writes: "small", "tinyllama-1.1b", "llama-8b"; NULL when unknown. */
const struct gb_tiny_shape *gb_tiny_shape_find(const char *name);
/* The names of those shapes, comma-separated (for messages). */
const char *gb_tiny_shape_names(void);

/*
 * Writes a Llama model of shape s to path, streamed (the file may exceed memory): random
 * weight matrices of type wtype (F32, F16, BF16, Q8_0, Q4_0) from seed (0: a built-in one),
 * the SentencePiece vocabulary of builtin:tiny padded to s->n_vocab with filler pieces, so
 * that llama.cpp and this worker load the same file. 0, CG_ECONFIG or -errno.
 */
int gb_tiny_write(const struct gb_tiny_shape *s, uint32_t wtype, uint64_t seed, const char *path);

#endif
