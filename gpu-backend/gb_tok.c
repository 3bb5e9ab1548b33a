#include "gb_tok.h"

#include "ccgate/err.h"
#include "gb_gguf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_USER = 4, TT_UNUSED = 5, TT_BYTE = 6 };

#define MAX_EOG 8

struct gb_tok {
    enum gb_tok_kind kind;
    uint32_t n_vocab;
    struct gb_gguf_str *text; /* borrowed from the GGUF image, which outlives us (copied) */
    char *pool;               /* our copy of all token texts */
    float *score;
    int32_t *ttype;
    int32_t *slots; /* text -> id, open addressing */
    uint32_t n_slots;
    uint64_t *mkeys; /* (left id << 32 | right id) + 1 -> rank, open addressing */
    int32_t *mrank;
    uint32_t n_mslots;
    int32_t bos, eos, unk;
    int add_bos;
    int digits_max; /* pre-tokenizer: \p{N}{1,digits_max} */
    int32_t byte_tok[256];
    int32_t eog[MAX_EOG];
    int n_eog;
    int32_t *special; /* control and user-defined tokens, longest first */
    uint32_t n_special;
    uint16_t byte_to_cp[256]; /* byte-level BPE mapping */
};

int gb_ids_push(struct gb_ids *ids, int32_t id)
{
    if (ids->n == ids->cap) {
        size_t cap = ids->cap ? ids->cap * 2 : 64;
        int32_t *v = realloc(ids->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        ids->v = v;
        ids->cap = cap;
    }
    ids->v[ids->n++] = id;
    return 0;
}

void gb_ids_free(struct gb_ids *ids)
{
    free(ids->v);
    ids->v = NULL;
    ids->n = ids->cap = 0;
}

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 1099511628211ull;
    return h;
}

static int32_t find_text(const struct gb_tok *t, const char *p, size_t n)
{
    uint32_t mask = t->n_slots - 1;
    for (uint32_t i = (uint32_t)hash_bytes(p, n) & mask;; i = (i + 1) & mask) {
        int32_t id = t->slots[i];
        if (id < 0)
            return -1;
        if (t->text[id].len == n && memcmp(t->text[id].p, p, n) == 0)
            return id;
    }
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return x;
}

static int32_t find_merge(const struct gb_tok *t, int32_t l, int32_t r)
{
    if (t->n_mslots == 0)
        return -1;
    uint64_t key = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
    uint32_t mask = t->n_mslots - 1;
    for (uint32_t i = (uint32_t)mix64(key) & mask;; i = (i + 1) & mask) {
        if (t->mkeys[i] == 0)
            return -1;
        if (t->mkeys[i] == key)
            return t->mrank[i];
    }
}

enum gb_tok_kind gb_tok_kind(const struct gb_tok *t)
{
    return t->kind;
}

uint32_t gb_tok_n_vocab(const struct gb_tok *t)
{
    return t->n_vocab;
}

int32_t gb_tok_bos(const struct gb_tok *t)
{
    return t->bos;
}

int32_t gb_tok_eos(const struct gb_tok *t)
{
    return t->eos;
}

int gb_tok_add_bos(const struct gb_tok *t)
{
    return t->add_bos && t->bos >= 0;
}

int32_t gb_tok_find(const struct gb_tok *t, const char *s)
{
    return find_text(t, s, strlen(s));
}

int gb_tok_is_eog(const struct gb_tok *t, int32_t id)
{
    for (int i = 0; i < t->n_eog; i++)
        if (t->eog[i] == id)
            return 1;
    return 0;
}

void gb_tok_free(struct gb_tok *t)
{
    if (t == NULL)
        return;
    free(t->text);
    free(t->pool);
    free(t->score);
    free(t->ttype);
    free(t->slots);
    free(t->mkeys);
    free(t->mrank);
    free(t->special);
    free(t);
}

static int cmp_special_len(const void *a, const void *b, void *arg)
{
    const struct gb_tok *t = arg;
    uint64_t la = t->text[*(const int32_t *)a].len, lb = t->text[*(const int32_t *)b].len;
    return la < lb ? 1 : la > lb ? -1 : 0;
}

static void gpt2_byte_map(uint16_t *map)
{
    int n = 0;
    for (int b = 0; b < 256; b++) {
        if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))
            map[b] = (uint16_t)b;
        else
            map[b] = (uint16_t)(256 + n++);
    }
}

static int32_t meta_id(const struct gb_gguf *g, const char *key, uint32_t n_vocab)
{
    uint64_t v;
    if (gb_gguf_get_u64(g, key, &v) != 0 || v >= n_vocab)
        return -1;
    return (int32_t)v;
}

static void add_eog(struct gb_tok *t, int32_t id)
{
    if (id < 0 || t->n_eog == MAX_EOG || gb_tok_is_eog(t, id))
        return;
    t->eog[t->n_eog++] = id;
}

static uint32_t pow2_above(uint64_t n)
{
    uint32_t c = 16;
    while (c < n * 2)
        c *= 2;
    return c;
}

int gb_tok_load(const struct gb_gguf *g, struct gb_tok **out, char *err, size_t errlen)
{
    int rc = CG_ECONFIG;
    char *model = gb_gguf_get_str(g, "tokenizer.ggml.model");
    char *pre = gb_gguf_get_str(g, "tokenizer.ggml.pre");
    const struct gb_gguf_kv *toks = gb_gguf_find(g, "tokenizer.ggml.tokens");
    const struct gb_gguf_kv *scores = gb_gguf_find(g, "tokenizer.ggml.scores");
    const struct gb_gguf_kv *types = gb_gguf_find(g, "tokenizer.ggml.token_type");
    const struct gb_gguf_kv *merges = gb_gguf_find(g, "tokenizer.ggml.merges");
    struct gb_tok *t = calloc(1, sizeof(*t));
    *out = NULL;
    if (t == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (model == NULL) {
        snprintf(err, errlen, "tokenizer: tokenizer.ggml.model missing");
        goto out;
    }
    if (strcmp(model, "llama") == 0) {
        t->kind = GB_TOK_SPM;
    } else if (strcmp(model, "gpt2") == 0) {
        t->kind = GB_TOK_BPE;
    } else {
        snprintf(err, errlen, "tokenizer: unsupported tokenizer.ggml.model \"%s\" (llama, gpt2)",
                 model);
        goto out;
    }
    if (toks == NULL || toks->type != GB_GGUF_ARR || toks->arr_type != GB_GGUF_STR ||
        toks->arr_n == 0 || toks->arr_n > (1u << 22)) {
        snprintf(err, errlen, "tokenizer: tokenizer.ggml.tokens missing or not a string array");
        goto out;
    }
    t->n_vocab = (uint32_t)toks->arr_n;
    if (scores != NULL &&
        (scores->type != GB_GGUF_ARR || scores->arr_data == NULL || scores->arr_n != t->n_vocab)) {
        snprintf(err, errlen, "tokenizer: tokenizer.ggml.scores does not match the vocabulary");
        goto out;
    }
    if (types != NULL &&
        (types->type != GB_GGUF_ARR || types->arr_data == NULL || types->arr_n != t->n_vocab)) {
        snprintf(err, errlen, "tokenizer: tokenizer.ggml.token_type does not match the vocabulary");
        goto out;
    }
    size_t total = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++)
        total += toks->arr_str[i].len;
    t->text = calloc(t->n_vocab, sizeof(*t->text));
    t->pool = malloc(total + 1);
    t->score = calloc(t->n_vocab, sizeof(float));
    t->ttype = calloc(t->n_vocab, sizeof(int32_t));
    t->n_slots = pow2_above(t->n_vocab);
    t->slots = malloc(t->n_slots * sizeof(int32_t));
    t->special = malloc(t->n_vocab * sizeof(int32_t));
    if (!t->text || !t->pool || !t->score || !t->ttype || !t->slots || !t->special) {
        rc = -ENOMEM;
        goto out;
    }
    memset(t->slots, 0xff, t->n_slots * sizeof(int32_t));
    for (int b = 0; b < 256; b++)
        t->byte_tok[b] = -1;
    size_t off = 0;
    for (uint32_t i = 0; i < t->n_vocab; i++) {
        memcpy(t->pool + off, toks->arr_str[i].p, toks->arr_str[i].len);
        t->text[i].p = t->pool + off;
        t->text[i].len = toks->arr_str[i].len;
        off += toks->arr_str[i].len;
        t->score[i] = scores ? (float)gb_gguf_arr_num(scores, i) : 0.0f;
        t->ttype[i] = types ? (int32_t)gb_gguf_arr_num(types, i) : TT_NORMAL;
        /* first occurrence wins for duplicate texts */
        if (find_text(t, t->text[i].p, t->text[i].len) < 0) {
            uint32_t mask = t->n_slots - 1;
            uint32_t s = (uint32_t)hash_bytes(t->text[i].p, t->text[i].len) & mask;
            while (t->slots[s] >= 0)
                s = (s + 1) & mask;
            t->slots[s] = (int32_t)i;
        }
        if ((t->ttype[i] == TT_CONTROL || t->ttype[i] == TT_USER) && t->text[i].len > 0)
            t->special[t->n_special++] = (int32_t)i;
        unsigned bv;
        if (t->ttype[i] == TT_BYTE && t->text[i].len == 6 &&
            sscanf(t->text[i].p, "<0x%02X>", &bv) == 1 && bv < 256)
            t->byte_tok[bv] = (int32_t)i;
    }
    qsort_r(t->special, t->n_special, sizeof(int32_t), cmp_special_len, t);

    if (t->kind == GB_TOK_BPE) {
        if (merges == NULL || merges->type != GB_GGUF_ARR || merges->arr_type != GB_GGUF_STR) {
            snprintf(err, errlen, "tokenizer: gpt2 tokenizer without tokenizer.ggml.merges");
            goto out;
        }
        gpt2_byte_map(t->byte_to_cp);
        t->n_mslots = pow2_above(merges->arr_n);
        t->mkeys = calloc(t->n_mslots, sizeof(uint64_t));
        t->mrank = calloc(t->n_mslots, sizeof(int32_t));
        if (!t->mkeys || !t->mrank) {
            rc = -ENOMEM;
            goto out;
        }
        for (uint64_t i = 0; i < merges->arr_n; i++) {
            const struct gb_gguf_str *m = &merges->arr_str[i];
            const char *sp = memchr(m->p, ' ', m->len);
            if (sp == NULL)
                continue;
            int32_t l = find_text(t, m->p, (size_t)(sp - m->p));
            int32_t r = find_text(t, sp + 1, m->len - (size_t)(sp - m->p) - 1);
            if (l < 0 || r < 0 || find_merge(t, l, r) >= 0)
                continue;
            uint64_t key = (((uint64_t)(uint32_t)l << 32) | (uint32_t)r) + 1;
            uint32_t mask = t->n_mslots - 1;
            uint32_t s = (uint32_t)mix64(key) & mask;
            while (t->mkeys[s] != 0)
                s = (s + 1) & mask;
            t->mkeys[s] = key;
            t->mrank[s] = (int32_t)i;
        }
        t->digits_max = (pre != NULL && strncmp(pre, "qwen2", 5) == 0) ? 1 : 3;
    }
    t->bos = meta_id(g, "tokenizer.ggml.bos_token_id", t->n_vocab);
    t->eos = meta_id(g, "tokenizer.ggml.eos_token_id", t->n_vocab);
    t->unk = meta_id(g, "tokenizer.ggml.unknown_token_id", t->n_vocab);
    uint64_t ab;
    if (gb_gguf_get_u64(g, "tokenizer.ggml.add_bos_token", &ab) == 0)
        t->add_bos = ab != 0;
    else
        t->add_bos = t->kind == GB_TOK_SPM;
    add_eog(t, t->eos);
    add_eog(t, meta_id(g, "tokenizer.ggml.eot_token_id", t->n_vocab));
    static const char *const eog_texts[] = {"<|eot_id|>", "<|im_end|>", "<|end_of_text|>",
                                            "<|endoftext|>", "<|eom_id|>"};
    for (size_t i = 0; i < sizeof(eog_texts) / sizeof(eog_texts[0]); i++) {
        int32_t id = gb_tok_find(t, eog_texts[i]);
        if (id >= 0 && (t->ttype[id] == TT_CONTROL || t->ttype[id] == TT_USER))
            add_eog(t, id);
    }
    *out = t;
    t = NULL;
    rc = 0;
out:
    free(model);
    free(pre);
    gb_tok_free(t);
    return rc;
}

/* ---- UTF-8 ---- */

static size_t utf8_len(uint8_t c)
{
    if (c < 0x80)
        return 1;
    if ((c & 0xe0) == 0xc0)
        return 2;
    if ((c & 0xf0) == 0xe0)
        return 3;
    if ((c & 0xf8) == 0xf0)
        return 4;
    return 1; /* stray continuation or invalid: one byte */
}

/* Decodes one code point at s (n bytes available); sets *adv (>= 1). Invalid: 0xFFFD. */
static uint32_t utf8_decode(const char *s, size_t n, size_t *adv)
{
    const uint8_t *u = (const uint8_t *)s;
    size_t l = utf8_len(u[0]);
    if (l == 1 || l > n) {
        *adv = 1;
        return u[0] < 0x80 ? u[0] : 0xfffd;
    }
    uint32_t cp = u[0] & (0x7f >> l);
    for (size_t i = 1; i < l; i++) {
        if ((u[i] & 0xc0) != 0x80) {
            *adv = 1;
            return 0xfffd;
        }
        cp = (cp << 6) | (u[i] & 0x3f);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[l] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        *adv = 1;
        return 0xfffd;
    }
    *adv = l;
    return cp;
}

static size_t utf8_encode(uint32_t cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

size_t gb_utf8_complete(const char *s, size_t len)
{
    /* look back at most 3 bytes for a lead byte whose sequence runs past the end */
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        uint8_t c = (uint8_t)s[len - back];
        if ((c & 0xc0) == 0x80)
            continue;
        if (c >= 0xc0 && utf8_len(c) > back)
            return len - back;
        break;
    }
    return len;
}

size_t gb_utf8_sanitize(const char *s, size_t len, char *dst)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t adv;
        uint32_t cp = utf8_decode(s + i, len - i, &adv);
        if (cp == 0xfffd && !(adv == 3 && memcmp(s + i, "\xef\xbf\xbd", 3) == 0))
            o += utf8_encode(0xfffd, dst + o);
        else {
            memcpy(dst + o, s + i, adv);
            o += adv;
        }
        i += adv;
    }
    return o;
}

/* ---- BPE merging over a list of symbols (shared by both tokenizer kinds) ---- */

struct sym {
    const char *p;
    size_t len;
    int prev, next;
};

struct cand {
    float score; /* higher merges first */
    int left, right;
    size_t len;
};

struct heap {
    struct cand *v;
    size_t n, cap;
};

static int cand_before(const struct cand *a, const struct cand *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(struct heap *h, struct cand c)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        struct cand *v = realloc(h->v, cap * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    while (i > 0 && cand_before(&c, &h->v[(i - 1) / 2])) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = c;
    return 0;
}

static struct cand heap_pop(struct heap *h)
{
    struct cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && cand_before(&h->v[c + 1], &h->v[c]))
            c++;
        if (!cand_before(&h->v[c], &last))
            break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n > 0)
        h->v[i] = last;
    return top;
}

/* Scores merging symbols l and r; returns 0 and sets *score when they may merge. */
static int pair_score(const struct gb_tok *t, const struct sym *s, int l, int r, float *score)
{
    if (t->kind == GB_TOK_SPM) {
        int32_t id = find_text(t, s[l].p, s[l].len + s[r].len);
        if (id < 0)
            return -1;
        *score = t->score[id];
        return 0;
    }
    int32_t il = find_text(t, s[l].p, s[l].len), ir = find_text(t, s[r].p, s[r].len);
    if (il < 0 || ir < 0)
        return -1;
    int32_t rank = find_merge(t, il, ir);
    if (rank < 0)
        return -1;
    *score = -(float)rank;
    return 0;
}

static int try_pair(const struct gb_tok *t, struct sym *s, int l, int r, struct heap *h)
{
    float sc;
    if (l < 0 || r < 0 || pair_score(t, s, l, r, &sc) != 0)
        return 0;
    struct cand c = {sc, l, r, s[l].len + s[r].len};
    return heap_push(h, c);
}

/* Merges the UTF-8 characters of text[0..n) and emits the ids of the final symbols. */
static int bpe_segment(const struct gb_tok *t, const char *text, size_t n, struct gb_ids *ids)
{
    struct sym *s = malloc((n + 1) * sizeof(*s));
    struct heap h = {0};
    int ns = 0, rc = 0;
    if (s == NULL)
        return -ENOMEM;
    for (size_t i = 0; i < n;) {
        size_t l = utf8_len((uint8_t)text[i]);
        if (l > n - i)
            l = n - i;
        s[ns] = (struct sym){text + i, l, ns - 1, ns + 1};
        ns++;
        i += l;
    }
    if (ns > 0)
        s[ns - 1].next = -1;
    for (int i = 0; rc == 0 && i + 1 < ns; i++)
        rc = try_pair(t, s, i, i + 1, &h);
    while (rc == 0 && h.n > 0) {
        struct cand c = heap_pop(&h);
        if (s[c.left].len == 0 || s[c.right].len == 0 || s[c.left].next != c.right ||
            s[c.left].len + s[c.right].len != c.len)
            continue;
        s[c.left].len += s[c.right].len;
        s[c.right].len = 0;
        s[c.left].next = s[c.right].next;
        if (s[c.right].next >= 0)
            s[s[c.right].next].prev = c.left;
        rc = try_pair(t, s, s[c.left].prev, c.left, &h);
        if (rc == 0)
            rc = try_pair(t, s, c.left, s[c.left].next, &h);
    }
    for (int i = 0; rc == 0 && ns > 0 && i >= 0; i = s[i].next) {
        int32_t id = find_text(t, s[i].p, s[i].len);
        if (id >= 0) {
            rc = gb_ids_push(ids, id);
            continue;
        }
        for (size_t b = 0; rc == 0 && b < s[i].len; b++) {
            uint8_t byte = (uint8_t)s[i].p[b];
            if (t->kind == GB_TOK_SPM) {
                int32_t bt = t->byte_tok[byte];
                rc = gb_ids_push(ids, bt >= 0 ? bt : (t->unk >= 0 ? t->unk : 0));
            } else {
                /* a lone mapped character missing from the vocabulary: unknown */
                rc = gb_ids_push(ids, t->unk >= 0 ? t->unk : 0);
                break;
            }
        }
    }
    free(h.v);
    free(s);
    return rc;
}

/* ---- SentencePiece ---- */

static int spm_encode(const struct gb_tok *t, const char *text, size_t len, int space_prefix,
                      struct gb_ids *ids)
{
    /* spaces become U+2581 (3 bytes) */
    char *buf = malloc(len * 3 + 4);
    size_t o = 0;
    int rc;
    if (buf == NULL)
        return -ENOMEM;
    if (space_prefix && len > 0) {
        memcpy(buf, "\xe2\x96\x81", 3);
        o = 3;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(buf + o, "\xe2\x96\x81", 3);
            o += 3;
        } else {
            buf[o++] = text[i];
        }
    }
    rc = bpe_segment(t, buf, o, ids);
    free(buf);
    return rc;
}

/* ---- byte-level BPE: pre-tokenizer (llama3 / qwen2 pattern) ---- */

/*
 * Unicode classes without tables: ASCII exactly; beyond ASCII, general punctuation,
 * symbols, arrows, CJK punctuation, fullwidth forms and emoji count as punctuation,
 * a few code points as spaces, and everything else as a letter.
 */
static int is_space_cp(uint32_t c)
{
    return c == ' ' || (c >= 9 && c <= 13) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f ||
           c == 0x205f || c == 0x3000;
}

static int is_digit_cp(uint32_t c)
{
    return (c >= '0' && c <= '9') || (c >= 0xff10 && c <= 0xff19);
}

static int is_letter_cp(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (is_space_cp(c) || is_digit_cp(c))
        return 0;
    if ((c >= 0x80 && c <= 0xbf && c != 0xaa && c != 0xb5 && c != 0xba) || c == 0xd7 || c == 0xf7)
        return 0;
    if ((c >= 0x2000 && c <= 0x2bff) || (c >= 0x3000 && c <= 0x303f) ||
        (c >= 0xfe30 && c <= 0xfe4f) || (c >= 0xff00 && c <= 0xff20) ||
        (c >= 0x1f000 && c <= 0x1faff) || c == 0xfffd)
        return 0;
    return 1;
}

struct cps {
    const char *s;
    size_t n;
};

static uint32_t cp_at(struct cps *c, size_t i, size_t *adv)
{
    if (i >= c->n) {
        *adv = 0;
        return 0;
    }
    return utf8_decode(c->s + i, c->n - i, adv);
}

/* Length in bytes of the pre-token starting at i. */
static size_t pretoken(const struct gb_tok *t, struct cps *c, size_t i)
{
    size_t a, a2, j;
    uint32_t cp = cp_at(c, i, &a);
    /* 's 't 're 've 'm 'll 'd, case-insensitive */
    if (cp == '\'' && i + 1 < c->n) {
        char x = (char)(c->s[i + 1] | 0x20), y = i + 2 < c->n ? (char)(c->s[i + 2] | 0x20) : 0;
        if ((x == 'r' && y == 'e') || (x == 'v' && y == 'e') || (x == 'l' && y == 'l'))
            return 3;
        if (x == 's' || x == 't' || x == 'm' || x == 'd')
            return 2;
    }
    /* [^\r\n\p{L}\p{N}]?\p{L}+ */
    j = i;
    if (!is_letter_cp(cp) && !is_digit_cp(cp) && cp != '\r' && cp != '\n')
        j = i + a;
    uint32_t n2 = cp_at(c, j, &a2);
    if (a2 > 0 && is_letter_cp(n2)) {
        while (j < c->n && is_letter_cp(cp_at(c, j, &a2)))
            j += a2;
        return j - i;
    }
    /* \p{N}{1,digits_max} */
    if (is_digit_cp(cp)) {
        j = i;
        for (int k = 0; k < t->digits_max && j < c->n && is_digit_cp(cp_at(c, j, &a2)); k++)
            j += a2;
        return j - i;
    }
    /* ' ?[^\s\p{L}\p{N}]+[\r\n]*' */
    j = i;
    if (cp == ' ')
        j++;
    size_t k = j;
    for (;;) {
        uint32_t x = cp_at(c, k, &a2);
        if (a2 == 0 || is_space_cp(x) || is_letter_cp(x) || is_digit_cp(x))
            break;
        k += a2;
    }
    if (k > j) {
        while (k < c->n && (c->s[k] == '\r' || c->s[k] == '\n'))
            k++;
        return k - i;
    }
    /* whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+ */
    j = i;
    size_t last_nl = 0;
    while (j < c->n) {
        uint32_t x = cp_at(c, j, &a2);
        if (!is_space_cp(x))
            break;
        j += a2;
        if (x == '\r' || x == '\n')
            last_nl = j;
    }
    if (j == i)
        return a; /* anything else: one character */
    if (last_nl > i)
        return last_nl - i;
    if (j < c->n && j - i > 1) {
        /* leave the last space to the next word */
        size_t back = j - 1;
        while (back > i && ((uint8_t)c->s[back] & 0xc0) == 0x80)
            back--;
        return back - i;
    }
    return j - i;
}

static int bpe_encode(const struct gb_tok *t, const char *text, size_t len, struct gb_ids *ids)
{
    struct cps c = {text, len};
    char *mapped = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < len;) {
        size_t n = pretoken(t, &c, i);
        if (n == 0)
            n = 1;
        if (cap < n * 2 + 1) {
            cap = n * 2 + 1;
            char *m = realloc(mapped, cap);
            if (m == NULL) {
                rc = -ENOMEM;
                break;
            }
            mapped = m;
        }
        size_t o = 0;
        for (size_t b = 0; b < n; b++)
            o += utf8_encode(t->byte_to_cp[(uint8_t)text[i + b]], mapped + o);
        rc = bpe_segment(t, mapped, o, ids);
        i += n;
    }
    free(mapped);
    return rc;
}

static int encode_raw(const struct gb_tok *t, const char *text, size_t len, int space_prefix,
                      struct gb_ids *ids)
{
    if (len == 0)
        return 0;
    return t->kind == GB_TOK_SPM ? spm_encode(t, text, len, space_prefix, ids)
                                 : bpe_encode(t, text, len, ids);
}

static int encode_special(const struct gb_tok *t, const char *text, size_t len, int parse_special,
                          const unsigned char *special_ok, int space_prefix, struct gb_ids *ids)
{
    size_t start = 0;
    int rc = 0;
    if (parse_special) {
        for (size_t i = 0; rc == 0 && i < len; i++) {
            if (special_ok != NULL && !special_ok[i])
                continue;
            for (uint32_t k = 0; k < t->n_special; k++) {
                const struct gb_gguf_str *s = &t->text[t->special[k]];
                if (s->len > len - i || s->p[0] != text[i] || memcmp(s->p, text + i, s->len))
                    continue;
                if (special_ok != NULL && memchr(special_ok + i, 0, s->len) != NULL)
                    continue;
                rc = encode_raw(t, text + start, i - start, space_prefix && start == 0, ids);
                if (rc == 0)
                    rc = gb_ids_push(ids, t->special[k]);
                i += s->len - 1;
                start = i + 1;
                break;
            }
        }
    }
    if (rc == 0)
        rc = encode_raw(t, text + start, len - start, space_prefix && start == 0, ids);
    return rc;
}

int gb_tok_encode(const struct gb_tok *t, const char *text, size_t len, int parse_special,
                  int space_prefix, struct gb_ids *ids)
{
    return encode_special(t, text, len, parse_special, NULL, space_prefix, ids);
}

int gb_tok_encode_masked(const struct gb_tok *t, const char *text, size_t len,
                         const unsigned char *special_ok, int space_prefix, struct gb_ids *ids)
{
    return encode_special(t, text, len, 1, special_ok, space_prefix, ids);
}

size_t gb_tok_piece(const struct gb_tok *t, int32_t id, char *buf, size_t cap)
{
    char tmp[8];
    size_t o = 0;
    if (id < 0 || (uint32_t)id >= t->n_vocab)
        return 0;
    const struct gb_gguf_str *s = &t->text[id];
    int tt = t->ttype[id];
    if (tt == TT_CONTROL || tt == TT_UNKNOWN || tt == TT_UNUSED)
        return 0;
    if (tt == TT_USER) {
        if (cap > 0)
            memcpy(buf, s->p, s->len < cap ? s->len : cap);
        return s->len;
    }
    if (t->kind == GB_TOK_SPM) {
        unsigned bv;
        if (tt == TT_BYTE && s->len == 6 && sscanf(s->p, "<0x%02X>", &bv) == 1) {
            if (cap > 0)
                buf[0] = (char)bv;
            return 1;
        }
        for (size_t i = 0; i < s->len;) {
            size_t n = 1;
            const char *src = s->p + i;
            if (s->len - i >= 3 && memcmp(s->p + i, "\xe2\x96\x81", 3) == 0) {
                src = " ";
                i += 3;
            } else {
                i++;
            }
            if (o + n <= cap)
                memcpy(buf + o, src, n);
            o += n;
        }
        return o;
    }
    for (size_t i = 0; i < s->len;) {
        size_t adv;
        uint32_t cp = utf8_decode(s->p + i, s->len - i, &adv);
        i += adv;
        int byte = -1;
        if (cp < 256 && t->byte_to_cp[cp] == cp)
            byte = (int)cp;
        else
            for (int b = 0; b < 256; b++)
                if (t->byte_to_cp[b] == cp) {
                    byte = b;
                    break;
                }
        if (byte < 0) {
            size_t n = utf8_encode(cp, tmp);
            if (o + n <= cap)
                memcpy(buf + o, tmp, n);
            o += n;
            continue;
        }
        if (o < cap)
            buf[o] = (char)byte;
        o++;
    }
    return o;
}
