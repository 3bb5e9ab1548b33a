#ifndef GB_TOK_H
#define GB_TOK_H

#include <stddef.h>
#include <stdint.h>

struct gb_gguf;

/*
 * Tokenizers read from GGUF metadata: SentencePiece-style BPE with scores and byte
 * fallback ("llama": llama, mistral) and byte-level BPE with merges ("gpt2": llama3,
 * qwen2). Special tokens (control and user-defined) are recognised in text only when the
 * caller asks, so user content cannot forge them.
 */

enum gb_tok_kind { GB_TOK_SPM, GB_TOK_BPE };

/* A growable token list. */
struct gb_ids {
    int32_t *v;
    size_t n, cap;
};

int gb_ids_push(struct gb_ids *ids, int32_t id);
void gb_ids_free(struct gb_ids *ids);

struct gb_tok;

/* Builds the tokenizer of the model in g. Returns 0 or CG_ECONFIG (reason in err). */
int gb_tok_load(const struct gb_gguf *g, struct gb_tok **out, char *err, size_t errlen);
void gb_tok_free(struct gb_tok *t);

enum gb_tok_kind gb_tok_kind(const struct gb_tok *t);
uint32_t gb_tok_n_vocab(const struct gb_tok *t);
int32_t gb_tok_bos(const struct gb_tok *t);
int32_t gb_tok_eos(const struct gb_tok *t);
/* Whether the model wants BOS at the start of a prompt. */
int gb_tok_add_bos(const struct gb_tok *t);
/* The id of the token whose text is exactly s, or -1. */
int32_t gb_tok_find(const struct gb_tok *t, const char *s);
/* Whether id ends generation (EOS, end-of-turn tokens). */
int gb_tok_is_eog(const struct gb_tok *t, int32_t id);

/*
 * Appends the tokens of text[0..len) to ids. parse_special: recognise special-token texts.
 * space_prefix: SentencePiece's leading-space convention for the start of a text (ignored
 * by byte-level BPE). Returns 0 or -ENOMEM.
 */
int gb_tok_encode(const struct gb_tok *t, const char *text, size_t len, int parse_special,
                  int space_prefix, struct gb_ids *ids);

/* Like gb_tok_encode, with special tokens recognised only where special_ok[byte] is set. */
int gb_tok_encode_masked(const struct gb_tok *t, const char *text, size_t len,
                         const unsigned char *special_ok, int space_prefix, struct gb_ids *ids);

/*
 * The bytes token id stands for in output text (control tokens: none). Writes at most cap
 * bytes to buf and returns the full length. A piece may be part of a UTF-8 character.
 */
size_t gb_tok_piece(const struct gb_tok *t, int32_t id, char *buf, size_t cap);

/* Length of the longest prefix of s[0..len) that does not end inside a UTF-8 character. */
size_t gb_utf8_complete(const char *s, size_t len);
/* Copies s to dst replacing invalid UTF-8 by U+FFFD; dst needs 3*len bytes; returns length. */
size_t gb_utf8_sanitize(const char *s, size_t len, char *dst);

#endif
