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

#endif
