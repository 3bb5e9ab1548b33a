#include "gb_chat.h"

#include "gb_model.h"
#include "gb_tok.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum gb_chat_family gb_chat_detect(const struct gb_model *m)
{
    const char *t = m->chat_template;
    if (t != NULL) {
        if (strstr(t, "<|start_header_id|>") != NULL)
            return GB_CHAT_LLAMA3;
        if (strstr(t, "<|im_start|>") != NULL)
            return GB_CHAT_CHATML;
        if (strstr(t, "[INST]") != NULL)
            return strstr(t, "<<SYS>>") != NULL ? GB_CHAT_LLAMA2 : GB_CHAT_MISTRAL;
    }
    if (gb_tok_find(m->tok, "<|start_header_id|>") >= 0)
        return GB_CHAT_LLAMA3;
    if (gb_tok_find(m->tok, "<|im_start|>") >= 0)
        return GB_CHAT_CHATML;
    return gb_tok_kind(m->tok) == GB_TOK_SPM ? GB_CHAT_LLAMA2 : GB_CHAT_CHATML;
}

const char *gb_chat_family_name(enum gb_chat_family f)
{
    switch (f) {
    case GB_CHAT_CHATML:
        return "chatml";
    case GB_CHAT_LLAMA2:
        return "llama2";
    case GB_CHAT_LLAMA3:
        return "llama3";
    case GB_CHAT_MISTRAL:
        return "mistral";
    }
    return "unknown";
}

/* The prompt text with a mask of the bytes where special tokens may be recognised. */
struct text {
    char *s;
    unsigned char *tmpl;
    size_t len, cap;
    int oom;
};

static void put(struct text *t, const char *s, size_t n, int tmpl)
{
    if (t->oom)
        return;
    if (t->cap - t->len < n) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap - t->len < n)
            cap *= 2;
        char *ns = realloc(t->s, cap);
        if (ns != NULL)
            t->s = ns;
        unsigned char *nm = realloc(t->tmpl, cap);
        if (nm != NULL)
            t->tmpl = nm;
        if (ns == NULL || nm == NULL) {
            t->oom = 1;
            return;
        }
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    memset(t->tmpl + t->len, tmpl, n);
    t->len += n;
}

static void lit(struct text *t, const char *s)
{
    put(t, s, strlen(s), 1);
}

static void content(struct text *t, const struct gb_chat_msg *m, int trim)
{
    const char *s = m->content;
    size_t n = m->content_len;
    if (trim) {
        while (n > 0 && strchr(" \t\r\n", *s) != NULL)
            s++, n--;
        while (n > 0 && strchr(" \t\r\n", s[n - 1]) != NULL)
            n--;
    }
    put(t, s, n, 0);
}

static int is_role(const struct gb_chat_msg *m, const char *r)
{
    return strcmp(m->role, r) == 0;
}

/* Llama 2 and Mistral: [INST] turns; the system prompt joins the first user turn. */
static void render_inst(struct text *t, int llama2, const struct gb_chat_msg *msgs, size_t n)
{
    const struct gb_chat_msg *sys = NULL;
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        const struct gb_chat_msg *m = &msgs[i];
        if (is_role(m, "system")) {
            sys = m;
            continue;
        }
        if (is_role(m, "assistant")) {
            lit(t, " ");
            content(t, m, 1);
            lit(t, llama2 ? " </s><s>" : "</s>");
            continue;
        }
        lit(t, "[INST] ");
        if (sys != NULL && first) {
            if (llama2) {
                lit(t, "<<SYS>>\n");
                content(t, sys, 1);
                lit(t, "\n<</SYS>>\n\n");
            } else {
                content(t, sys, 1);
                lit(t, "\n\n");
            }
        }
        first = 0;
        content(t, m, 1);
        lit(t, " [/INST]");
    }
}

int gb_chat_render(const struct gb_model *mdl, enum gb_chat_family f,
                   const struct gb_chat_msg *msgs, size_t n, struct gb_ids *out)
{
    struct text t = {0};
    const struct gb_tok *tok = mdl->tok;
    int rc = 0;
    int bos = gb_tok_add_bos(tok);
    switch (f) {
    case GB_CHAT_LLAMA3:
        bos = gb_tok_bos(tok) >= 0;
        for (size_t i = 0; i < n; i++) {
            lit(&t, "<|start_header_id|>");
            put(&t, msgs[i].role, strlen(msgs[i].role), 0);
            lit(&t, "<|end_header_id|>\n\n");
            content(&t, &msgs[i], 1);
            lit(&t, "<|eot_id|>");
        }
        lit(&t, "<|start_header_id|>assistant<|end_header_id|>\n\n");
        break;
    case GB_CHAT_LLAMA2:
    case GB_CHAT_MISTRAL:
        bos = gb_tok_bos(tok) >= 0;
        render_inst(&t, f == GB_CHAT_LLAMA2, msgs, n);
        break;
    case GB_CHAT_CHATML:
        for (size_t i = 0; i < n; i++) {
            lit(&t, "<|im_start|>");
            put(&t, msgs[i].role, strlen(msgs[i].role), 0);
            lit(&t, "\n");
            content(&t, &msgs[i], 0);
            lit(&t, "<|im_end|>\n");
        }
        lit(&t, "<|im_start|>assistant\n");
        break;
    }
    if (t.oom) {
        rc = -ENOMEM;
        goto out;
    }
    if (bos && (rc = gb_ids_push(out, gb_tok_bos(tok))) != 0)
        goto out;
    rc = gb_tok_encode_masked(tok, t.s, t.len, t.tmpl, 1, out);
out:
    free(t.s);
    free(t.tmpl);
    return rc;
}
