#ifndef GB_CHAT_H
#define GB_CHAT_H

#include <stddef.h>

struct gb_model;
struct gb_ids;

/*
 * Chat prompt formats. The family comes from tokenizer.chat_template (its marker strings);
 * without a template, from the special tokens in the vocabulary; failing both, the
 * documented fallback: Llama 2 ([INST]) for SentencePiece vocabularies, ChatML as plain
 * text for byte-level BPE ones.
 */
enum gb_chat_family { GB_CHAT_CHATML, GB_CHAT_LLAMA2, GB_CHAT_LLAMA3, GB_CHAT_MISTRAL };

struct gb_chat_msg {
    const char *role; /* "system", "user", "assistant" (others pass through) */
    const char *content;
    size_t content_len;
};

enum gb_chat_family gb_chat_detect(const struct gb_model *m);
const char *gb_chat_family_name(enum gb_chat_family f);

/*
 * Appends the prompt for msgs, ending with the assistant's turn opened, to out. Special
 * tokens are recognised only in the template's own text, never inside message contents.
 * Returns 0 or -ENOMEM.
 */
int gb_chat_render(const struct gb_model *m, enum gb_chat_family f, const struct gb_chat_msg *msgs,
                   size_t n, struct gb_ids *out);

#endif
