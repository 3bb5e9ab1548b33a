#include "ccgate/cbor.h"

#include <cbor.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/err.h"

/*
 * The RA-TLS CBOR structures have a fixed shape, so they are decoded as a sequence of
 * expected tokens pulled from libcbor's streaming decoder: nothing is allocated from
 * attacker-chosen lengths (cbor_load() would allocate an array of the announced size up
 * front), and every deviation (indefinite length, wrong type, non-shortest head, unknown or
 * repeated key, trailing byte) is an error.
 */

enum tok_type { TOK_OTHER, TOK_UINT, TOK_NEGINT, TOK_BSTR, TOK_TSTR, TOK_ARRAY, TOK_MAP, TOK_TAG };

struct tok {
    enum tok_type type;
    uint64_t val; /* integer, tag number, or element count */
    const uint8_t *data;
    size_t len; /* string length */
};

struct dec {
    const uint8_t *p;
    size_t left;
};

static void on_uint8(void *c, uint8_t v)
{
    *(struct tok *)c = (struct tok){.type = TOK_UINT, .val = v};
}
static void on_uint16(void *c, uint16_t v)
{
    *(struct tok *)c = (struct tok){.type = TOK_UINT, .val = v};
}
static void on_uint32(void *c, uint32_t v)
{
    *(struct tok *)c = (struct tok){.type = TOK_UINT, .val = v};
}
static void on_uint64(void *c, uint64_t v)
{
    *(struct tok *)c = (struct tok){.type = TOK_UINT, .val = v};
}
static void on_negint8(void *c, uint8_t v)
{
    *(struct tok *)c = (struct tok){.type = TOK_NEGINT, .val = v};
}
static void on_negint16(void *c, uint16_t v)
{
    *(struct tok *)c = (struct tok){.type = TOK_NEGINT, .val = v};
}
static void on_negint32(void *c, uint32_t v)
{
    *(struct tok *)c = (struct tok){.type = TOK_NEGINT, .val = v};
}
static void on_negint64(void *c, uint64_t v)
{
    *(struct tok *)c = (struct tok){.type = TOK_NEGINT, .val = v};
}
static void on_bstr(void *c, cbor_data d, size_t n)
{
    *(struct tok *)c = (struct tok){.type = TOK_BSTR, .data = d, .len = n, .val = n};
}
static void on_tstr(void *c, cbor_data d, size_t n)
{
    *(struct tok *)c = (struct tok){.type = TOK_TSTR, .data = d, .len = n, .val = n};
}
static void on_array(void *c, size_t n)
{
    *(struct tok *)c = (struct tok){.type = TOK_ARRAY, .val = n};
}
static void on_map(void *c, size_t n)
{
    *(struct tok *)c = (struct tok){.type = TOK_MAP, .val = n};
}
static void on_tag(void *c, uint64_t v)
{
    *(struct tok *)c = (struct tok){.type = TOK_TAG, .val = v};
}

/* Everything else (floats, simple values, indefinite starts, break) leaves TOK_OTHER. */
static const struct cbor_callbacks callbacks = {
    .uint8 = on_uint8,
    .uint16 = on_uint16,
    .uint32 = on_uint32,
    .uint64 = on_uint64,
    .negint8 = on_negint8,
    .negint16 = on_negint16,
    .negint32 = on_negint32,
    .negint64 = on_negint64,
    .byte_string_start = cbor_null_byte_string_start_callback,
    .byte_string = on_bstr,
    .string = on_tstr,
    .string_start = cbor_null_string_start_callback,
    .indef_array_start = cbor_null_indef_array_start_callback,
    .array_start = on_array,
    .indef_map_start = cbor_null_indef_map_start_callback,
    .map_start = on_map,
    .tag = on_tag,
    .float2 = cbor_null_float2_callback,
    .float4 = cbor_null_float4_callback,
    .float8 = cbor_null_float8_callback,
    .undefined = cbor_null_undefined_callback,
    .null = cbor_null_null_callback,
    .boolean = cbor_null_boolean_callback,
    .indef_break = cbor_null_indef_break_callback,
};

/* Length of the shortest head that encodes argument v (RFC 8949 section 4.2.1). */
static size_t shortest_head(uint64_t v)
{
    if (v < 24)
        return 1;
    if (v <= UINT8_MAX)
        return 2;
    if (v <= UINT16_MAX)
        return 3;
    if (v <= UINT32_MAX)
        return 5;
    return 9;
}

static int next(struct dec *d, struct tok *t)
{
    if (d->left == 0)
        return CG_ECBOR;
    *t = (struct tok){.type = TOK_OTHER};
    struct cbor_decoder_result r = cbor_stream_decode(d->p, d->left, &callbacks, t);
    if (r.status != CBOR_DECODER_FINISHED || r.read == 0 || r.read > d->left)
        return CG_ECBOR;
    if (t->type == TOK_OTHER)
        return CG_ECBOR;
    if (r.read - t->len != shortest_head(t->val))
        return CG_ECBOR;
    d->p += r.read;
    d->left -= r.read;
    return 0;
}

static int expect(struct dec *d, enum tok_type type, struct tok *t)
{
    int rc = next(d, t);
    if (rc != 0)
        return rc;
    return t->type == type ? 0 : CG_ECBOR;
}

static int expect_bstr(struct dec *d, size_t min, size_t max, const uint8_t **data, size_t *len)
{
    struct tok t;
    if (expect(d, TOK_BSTR, &t) != 0 || t.len < min || t.len > max)
        return CG_ECBOR;
    *data = t.data;
    *len = t.len;
    return 0;
}

static int tstr_is(const struct tok *t, const char *s)
{
    return t->len == strlen(s) && memcmp(t->data, s, t->len) == 0;
}

/* A growing output buffer; the first failure sticks and is reported once at the end. */
struct enc {
    uint8_t *buf;
    size_t len, cap;
    int err;
};

static uint8_t *enc_reserve(struct enc *e, size_t n)
{
    if (e->err != 0)
        return NULL;
    if (n > CG_ENDORSEMENTS_MAX_BYTES || e->len + n > CG_ENDORSEMENTS_MAX_BYTES) {
        e->err = CG_ELIMIT;
        return NULL;
    }
    if (e->len + n > e->cap) {
        size_t cap = e->cap ? e->cap : 256;
        while (cap < e->len + n)
            cap *= 2;
        uint8_t *b = realloc(e->buf, cap);
        if (b == NULL) {
            e->err = -ENOMEM;
            return NULL;
        }
        e->buf = b;
        e->cap = cap;
    }
    return e->buf + e->len;
}

static void enc_head(struct enc *e, size_t (*fn)(size_t, unsigned char *, size_t), size_t v)
{
    uint8_t *p = enc_reserve(e, 9);
    if (p != NULL)
        e->len += fn(v, p, 9);
}

static void enc_uint(struct enc *e, uint64_t v)
{
    uint8_t *p = enc_reserve(e, 9);
    if (p != NULL)
        e->len += cbor_encode_uint(v, p, 9);
}

static void enc_tag(struct enc *e, uint64_t v)
{
    uint8_t *p = enc_reserve(e, 9);
    if (p != NULL)
        e->len += cbor_encode_tag(v, p, 9);
}

static void enc_bstr(struct enc *e, const uint8_t *data, size_t n)
{
    enc_head(e, cbor_encode_bytestring_start, n);
    uint8_t *p = enc_reserve(e, n);
    if (p != NULL && n > 0) {
        memcpy(p, data, n);
        e->len += n;
    }
}

static void enc_tstr(struct enc *e, const char *s)
{
    size_t n = strlen(s);
    enc_head(e, cbor_encode_string_start, n);
    uint8_t *p = enc_reserve(e, n);
    if (p != NULL) {
        memcpy(p, s, n);
        e->len += n;
    }
}

static int enc_finish(struct enc *e, size_t max, uint8_t **out, size_t *out_len)
{
    if (e->err == 0 && e->len > max)
        e->err = CG_ELIMIT;
    if (e->err != 0) {
        free(e->buf);
        return e->err;
    }
    *out = e->buf;
    *out_len = e->len;
    return 0;
}

#define KEY_PUBKEY_HASH "pubkey-hash"
#define KEY_NONCES "nonces"
#define KEY_IAT "iat"
#define KEY_GPU "gpu"
#define KEY_MODEL "model"
#define KEY_MODEL_NAME "name"
#define KEY_MODEL_SHA256 "sha256"
#define KEY_MODEL_VERSION "version"
#define HASH_ALG_SHA256 1

int cg_model_name_ok(const char *s, size_t n)
{
    if (n == 0 || n > CG_MODEL_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return 0;
    return 1;
}

int cg_claims_encode(const struct cg_claims *c, uint8_t **out, size_t *out_len)
{
    if (c->n_nonces > CG_MAX_NONCES || c->iat < 0 || (c->gpu == NULL) != (c->gpu_len == 0) ||
        (c->model.present &&
         !cg_model_name_ok(c->model.name, strnlen(c->model.name, sizeof(c->model.name)))))
        return CG_ECBOR;
    struct enc e = {0};
    size_t n_keys = 2 + (c->n_nonces > 0) + (c->gpu != NULL) + (c->model.present != 0);
    enc_head(&e, cbor_encode_map_start, n_keys);
    /* Keys in the deterministic order of RFC 8949 section 4.2.1 (shorter encoding first). */
    if (c->gpu != NULL) {
        enc_tstr(&e, KEY_GPU);
        enc_bstr(&e, c->gpu, c->gpu_len);
    }
    enc_tstr(&e, KEY_IAT);
    enc_uint(&e, (uint64_t)c->iat);
    if (c->model.present) {
        enc_tstr(&e, KEY_MODEL);
        enc_head(&e, cbor_encode_map_start, 3);
        enc_tstr(&e, KEY_MODEL_NAME);
        enc_tstr(&e, c->model.name);
        enc_tstr(&e, KEY_MODEL_SHA256);
        enc_bstr(&e, c->model.sha256, sizeof(c->model.sha256));
        enc_tstr(&e, KEY_MODEL_VERSION);
        enc_uint(&e, c->model.version);
    }
    if (c->n_nonces > 0) {
        enc_tstr(&e, KEY_NONCES);
        enc_head(&e, cbor_encode_array_start, c->n_nonces);
        for (size_t i = 0; i < c->n_nonces; i++)
            enc_bstr(&e, c->nonces[i], CG_NONCE_LEN);
    }
    enc_tstr(&e, KEY_PUBKEY_HASH);
    enc_head(&e, cbor_encode_array_start, 2);
    enc_uint(&e, HASH_ALG_SHA256);
    enc_bstr(&e, c->pubkey_hash, sizeof(c->pubkey_hash));
    return enc_finish(&e, CG_CLAIMS_MAX_BYTES, out, out_len);
}

static int decode_pubkey_hash(struct dec *d, struct cg_claims *c)
{
    struct tok t;
    const uint8_t *h;
    size_t n;
    if (expect(d, TOK_ARRAY, &t) != 0 || t.val != 2)
        return CG_ECBOR;
    if (expect(d, TOK_UINT, &t) != 0 || t.val != HASH_ALG_SHA256)
        return CG_ECBOR;
    if (expect_bstr(d, sizeof(c->pubkey_hash), sizeof(c->pubkey_hash), &h, &n) != 0)
        return CG_ECBOR;
    memcpy(c->pubkey_hash, h, n);
    return 0;
}

static int decode_nonces(struct dec *d, struct cg_claims *c)
{
    struct tok t;
    if (expect(d, TOK_ARRAY, &t) != 0 || t.val == 0 || t.val > CG_MAX_NONCES)
        return CG_ECBOR;
    c->n_nonces = (size_t)t.val;
    for (size_t i = 0; i < c->n_nonces; i++) {
        const uint8_t *nonce;
        size_t n;
        if (expect_bstr(d, CG_NONCE_LEN, CG_NONCE_LEN, &nonce, &n) != 0)
            return CG_ECBOR;
        memcpy(c->nonces[i], nonce, n);
    }
    return 0;
}

/* The model map: exactly its three members, in the encoder's order. */
static int decode_model(struct dec *d, struct cg_model_claim *m)
{
    struct tok t;
    const uint8_t *h;
    size_t n;
    if (expect(d, TOK_MAP, &t) != 0 || t.val != 3)
        return CG_ECBOR;
    if (expect(d, TOK_TSTR, &t) != 0 || !tstr_is(&t, KEY_MODEL_NAME) ||
        expect(d, TOK_TSTR, &t) != 0 || !cg_model_name_ok((const char *)t.data, t.len))
        return CG_ECBOR;
    memcpy(m->name, t.data, t.len);
    m->name[t.len] = '\0';
    if (expect(d, TOK_TSTR, &t) != 0 || !tstr_is(&t, KEY_MODEL_SHA256) ||
        expect_bstr(d, sizeof(m->sha256), sizeof(m->sha256), &h, &n) != 0)
        return CG_ECBOR;
    memcpy(m->sha256, h, n);
    if (expect(d, TOK_TSTR, &t) != 0 || !tstr_is(&t, KEY_MODEL_VERSION) ||
        expect(d, TOK_UINT, &t) != 0)
        return CG_ECBOR;
    m->version = t.val;
    m->present = 1;
    return 0;
}

int cg_claims_decode(const uint8_t *buf, size_t len, struct cg_claims *c)
{
    enum { HAVE_PUBKEY_HASH = 1, HAVE_NONCES = 2, HAVE_IAT = 4, HAVE_GPU = 8, HAVE_MODEL = 16 };
    struct dec d = {buf, len};
    struct tok t;
    unsigned have = 0;
    memset(c, 0, sizeof(*c));
    if (buf == NULL || len > CG_CLAIMS_MAX_BYTES)
        goto bad;
    if (expect(&d, TOK_MAP, &t) != 0 || t.val == 0 || t.val > 5)
        goto bad;
    for (uint64_t i = 0, n = t.val; i < n; i++) {
        unsigned bit;
        int rc;
        if (expect(&d, TOK_TSTR, &t) != 0)
            goto bad;
        if (tstr_is(&t, KEY_PUBKEY_HASH)) {
            bit = HAVE_PUBKEY_HASH;
            rc = decode_pubkey_hash(&d, c);
        } else if (tstr_is(&t, KEY_NONCES)) {
            bit = HAVE_NONCES;
            rc = decode_nonces(&d, c);
        } else if (tstr_is(&t, KEY_IAT)) {
            bit = HAVE_IAT;
            rc = expect(&d, TOK_UINT, &t);
            if (rc == 0 && t.val > INT64_MAX)
                rc = CG_ECBOR;
            c->iat = (int64_t)t.val;
        } else if (tstr_is(&t, KEY_GPU)) {
            bit = HAVE_GPU;
            rc = expect_bstr(&d, 1, CG_CLAIMS_GPU_MAX_BYTES, &c->gpu, &c->gpu_len);
        } else if (tstr_is(&t, KEY_MODEL)) {
            bit = HAVE_MODEL;
            rc = decode_model(&d, &c->model);
        } else {
            goto bad;
        }
        if (rc != 0 || (have & bit) != 0)
            goto bad;
        have |= bit;
    }
    if ((have & (HAVE_PUBKEY_HASH | HAVE_IAT)) != (HAVE_PUBKEY_HASH | HAVE_IAT) || d.left != 0)
        goto bad;
    return 0;
bad:
    memset(c, 0, sizeof(*c));
    return CG_ECBOR;
}

int cg_cmw_encode(uint32_t tag, const uint8_t *evidence, size_t evidence_len, const uint8_t *claims,
                  size_t claims_len, uint8_t **out, size_t *out_len)
{
    if (evidence_len == 0 || claims_len == 0)
        return CG_ECBOR;
    if (evidence_len > CG_EVIDENCE_MAX_BYTES || claims_len > CG_CLAIMS_MAX_BYTES)
        return CG_ELIMIT;
    struct enc e = {0};
    enc_tag(&e, tag);
    enc_head(&e, cbor_encode_array_start, 2);
    enc_bstr(&e, evidence, evidence_len);
    enc_bstr(&e, claims, claims_len);
    return enc_finish(&e, CG_EVIDENCE_MAX_BYTES + CG_CLAIMS_MAX_BYTES, out, out_len);
}

int cg_cmw_decode(const uint8_t *buf, size_t len, uint32_t *tag, const uint8_t **evidence,
                  size_t *evidence_len, const uint8_t **claims, size_t *claims_len)
{
    struct dec d = {buf, len};
    struct tok t;
    if (buf == NULL || len > CG_EVIDENCE_MAX_BYTES + CG_CLAIMS_MAX_BYTES)
        return CG_ECBOR;
    if (expect(&d, TOK_TAG, &t) != 0 || t.val > UINT32_MAX)
        return CG_ECBOR;
    *tag = (uint32_t)t.val;
    if (expect(&d, TOK_ARRAY, &t) != 0 || t.val != 2)
        return CG_ECBOR;
    if (expect_bstr(&d, 1, CG_EVIDENCE_MAX_BYTES, evidence, evidence_len) != 0)
        return CG_ECBOR;
    if (expect_bstr(&d, 1, CG_CLAIMS_MAX_BYTES, claims, claims_len) != 0)
        return CG_ECBOR;
    return d.left == 0 ? 0 : CG_ECBOR;
}

int cg_endorsements_encode(const struct cg_evidence *e, uint8_t **out, size_t *out_len)
{
    if (e->n_certs > CG_EVIDENCE_MAX_CERTS)
        return CG_ECBOR;
    struct enc en = {0};
    enc_tag(&en, e->tag);
    enc_head(&en, cbor_encode_array_start, e->n_certs);
    for (size_t i = 0; i < e->n_certs; i++) {
        if (e->cert_lens[i] == 0 || e->cert_lens[i] > CG_EVIDENCE_MAX_BYTES)
            en.err = CG_ECBOR;
        enc_bstr(&en, e->certs[i], e->cert_lens[i]);
    }
    return enc_finish(&en, CG_ENDORSEMENTS_MAX_BYTES, out, out_len);
}

int cg_endorsements_decode(const uint8_t *buf, size_t len, struct cg_evidence *e)
{
    struct dec d = {buf, len};
    struct tok t;
    const uint8_t *certs[CG_EVIDENCE_MAX_CERTS];
    size_t lens[CG_EVIDENCE_MAX_CERTS];
    if (buf == NULL || len > CG_ENDORSEMENTS_MAX_BYTES)
        return CG_ECBOR;
    if (expect(&d, TOK_TAG, &t) != 0 || t.val > UINT32_MAX)
        return CG_ECBOR;
    uint32_t tag = (uint32_t)t.val;
    if (expect(&d, TOK_ARRAY, &t) != 0 || t.val > CG_EVIDENCE_MAX_CERTS)
        return CG_ECBOR;
    size_t n = (size_t)t.val;
    for (size_t i = 0; i < n; i++)
        if (expect_bstr(&d, 1, CG_EVIDENCE_MAX_BYTES, &certs[i], &lens[i]) != 0)
            return CG_ECBOR;
    if (d.left != 0)
        return CG_ECBOR;
    /* Validated in full before anything is allocated, so a failure leaves e untouched. */
    uint8_t *copies[CG_EVIDENCE_MAX_CERTS] = {0};
    for (size_t i = 0; i < n; i++) {
        copies[i] = malloc(lens[i]);
        if (copies[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                free(copies[j]);
            return -ENOMEM;
        }
        memcpy(copies[i], certs[i], lens[i]);
    }
    e->tag = tag;
    for (size_t i = 0; i < n; i++) {
        e->certs[i] = copies[i];
        e->cert_lens[i] = lens[i];
    }
    e->n_certs = n;
    return 0;
}
