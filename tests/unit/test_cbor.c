#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccgate/cbor.h"
#include "ccgate/err.h"

/* A hand-written CBOR writer, independent of the encoder under test. */
struct buf {
    uint8_t b[8192];
    size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof(b->b));
    memcpy(b->b + b->n, p, n);
    b->n += n;
}

static void head(struct buf *b, unsigned major, uint64_t v)
{
    uint8_t h[9];
    size_t n;
    h[0] = (uint8_t)(major << 5);
    if (v < 24) {
        h[0] |= (uint8_t)v;
        n = 1;
    } else if (v <= 0xff) {
        h[0] |= 24;
        h[1] = (uint8_t)v;
        n = 2;
    } else if (v <= 0xffff) {
        h[0] |= 25;
        h[1] = (uint8_t)(v >> 8);
        h[2] = (uint8_t)v;
        n = 3;
    } else if (v <= 0xffffffffu) {
        h[0] |= 26;
        for (int i = 0; i < 4; i++)
            h[1 + i] = (uint8_t)(v >> (24 - 8 * i));
        n = 5;
    } else {
        h[0] |= 27;
        for (int i = 0; i < 8; i++)
            h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
        n = 9;
    }
    put(b, h, n);
}

static void text(struct buf *b, const char *s)
{
    head(b, 3, strlen(s));
    put(b, s, strlen(s));
}

static void bytes(struct buf *b, uint8_t fill, size_t n)
{
    head(b, 2, n);
    for (size_t i = 0; i < n; i++)
        put(b, &fill, 1);
}

static void pubkey_hash(struct buf *b, uint64_t alg, size_t len)
{
    text(b, "pubkey-hash");
    head(b, 4, 2);
    head(b, 0, alg);
    bytes(b, 0xab, len);
}

static void fill_claims(struct cg_claims *c, size_t n_nonces, const uint8_t *gpu, size_t gpu_len)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < sizeof(c->pubkey_hash); i++)
        c->pubkey_hash[i] = (uint8_t)i;
    c->n_nonces = n_nonces;
    for (size_t i = 0; i < n_nonces; i++)
        memset(c->nonces[i], (int)(i + 1), CG_NONCE_LEN);
    c->iat = 1795000000;
    c->gpu = gpu;
    c->gpu_len = gpu_len;
}

static void test_claims_round_trip(void **state)
{
    (void)state;
    static const uint8_t gpu[300] = {1, 2, 3};
    const size_t counts[] = {0, 1, 2, CG_MAX_NONCES};
    for (size_t k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
        for (int with_gpu = 0; with_gpu < 2; with_gpu++) {
            struct cg_claims in, out;
            uint8_t *enc = NULL;
            size_t len = 0;
            fill_claims(&in, counts[k], with_gpu ? gpu : NULL, with_gpu ? sizeof(gpu) : 0);
            assert_int_equal(cg_claims_encode(&in, &enc, &len), 0);
            assert_int_equal(cg_claims_decode(enc, len, &out), 0);
            assert_memory_equal(out.pubkey_hash, in.pubkey_hash, 32);
            assert_int_equal(out.n_nonces, in.n_nonces);
            for (size_t i = 0; i < in.n_nonces; i++)
                assert_memory_equal(out.nonces[i], in.nonces[i], CG_NONCE_LEN);
            assert_int_equal(out.iat, in.iat);
            assert_int_equal(out.gpu_len, in.gpu_len);
            if (with_gpu) {
                assert_true(out.gpu >= enc && out.gpu + out.gpu_len <= enc + len);
                assert_memory_equal(out.gpu, gpu, sizeof(gpu));
            } else {
                assert_null(out.gpu);
            }
            /* Every strict prefix is truncated input and must be rejected. */
            for (size_t cut = 0; cut < len; cut++)
                assert_int_equal(cg_claims_decode(enc, cut, &out), CG_ECBOR);
            free(enc);
        }
    }
}

/* The encoding is deterministic: shortest heads, keys ordered by their encoding. */
static void test_claims_deterministic(void **state)
{
    (void)state;
    struct cg_claims c;
    uint8_t *enc = NULL;
    size_t len = 0;
    fill_claims(&c, 1, NULL, 0);
    c.iat = 23;
    assert_int_equal(cg_claims_encode(&c, &enc, &len), 0);

    struct buf want = {.n = 0};
    head(&want, 5, 3);
    text(&want, "iat");
    head(&want, 0, 23);
    text(&want, "nonces");
    head(&want, 4, 1);
    head(&want, 2, CG_NONCE_LEN);
    put(&want, c.nonces[0], CG_NONCE_LEN);
    text(&want, "pubkey-hash");
    head(&want, 4, 2);
    head(&want, 0, 1);
    head(&want, 2, 32);
    put(&want, c.pubkey_hash, 32);
    assert_int_equal(len, want.n);
    assert_memory_equal(enc, want.b, want.n);
    free(enc);
}

static void test_claims_encode_rejects(void **state)
{
    (void)state;
    struct cg_claims c;
    uint8_t *enc = NULL;
    size_t len = 0;
    fill_claims(&c, CG_MAX_NONCES, NULL, 0);
    c.n_nonces = CG_MAX_NONCES + 1;
    assert_int_equal(cg_claims_encode(&c, &enc, &len), CG_ECBOR);
    fill_claims(&c, 0, NULL, 0);
    c.iat = -1;
    assert_int_equal(cg_claims_encode(&c, &enc, &len), CG_ECBOR);
}

static void fill_model(struct cg_model_claim *m)
{
    memset(m, 0, sizeof(*m));
    m->present = 1;
    snprintf(m->name, sizeof(m->name), "llama-3-8b-instruct");
    m->version = 7;
    memset(m->sha256, 0x5a, sizeof(m->sha256));
}

/* The model claim round-trips and sits between "iat" and "nonces" (deterministic order). */
static void test_claims_model(void **state)
{
    (void)state;
    struct cg_claims in, out;
    uint8_t *enc = NULL;
    size_t len = 0;
    fill_claims(&in, 1, NULL, 0);
    in.iat = 23;
    fill_model(&in.model);
    assert_int_equal(cg_claims_encode(&in, &enc, &len), 0);
    assert_int_equal(cg_claims_decode(enc, len, &out), 0);
    assert_true(out.model.present);
    assert_string_equal(out.model.name, in.model.name);
    assert_int_equal(out.model.version, 7);
    assert_memory_equal(out.model.sha256, in.model.sha256, 32);

    struct buf want = {.n = 0};
    head(&want, 5, 4);
    text(&want, "iat");
    head(&want, 0, 23);
    text(&want, "model");
    head(&want, 5, 3);
    text(&want, "name");
    text(&want, "llama-3-8b-instruct");
    text(&want, "sha256");
    bytes(&want, 0x5a, 32);
    text(&want, "version");
    head(&want, 0, 7);
    text(&want, "nonces");
    head(&want, 4, 1);
    head(&want, 2, CG_NONCE_LEN);
    put(&want, in.nonces[0], CG_NONCE_LEN);
    text(&want, "pubkey-hash");
    head(&want, 4, 2);
    head(&want, 0, 1);
    head(&want, 2, 32);
    put(&want, in.pubkey_hash, 32);
    assert_int_equal(len, want.n);
    assert_memory_equal(enc, want.b, want.n);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(cg_claims_decode(enc, cut, &out), CG_ECBOR);
    free(enc);

    /* The encoder refuses a name the decoder would refuse. */
    fill_model(&in.model);
    in.model.name[0] = '\0';
    assert_int_equal(cg_claims_encode(&in, &enc, &len), CG_ECBOR);
    fill_model(&in.model);
    in.model.name[3] = '\n';
    assert_int_equal(cg_claims_encode(&in, &enc, &len), CG_ECBOR);
}

/* claims {pubkey-hash, iat, model: {...}} with the model map built by the caller's steps. */
enum model_defect {
    MD_NONE,
    MD_MISSING_VERSION,
    MD_EXTRA_MEMBER,
    MD_ORDER,
    MD_EMPTY_NAME,
    MD_CONTROL_IN_NAME,
    MD_LONG_NAME,
    MD_SHORT_DIGEST,
    MD_NEGATIVE_VERSION,
    MD_NOT_A_MAP,
    MD_TWICE
};

static void model_claims(struct buf *b, enum model_defect d)
{
    b->n = 0;
    head(b, 5, d == MD_TWICE ? 4 : 3);
    pubkey_hash(b, 1, 32);
    text(b, "iat");
    head(b, 0, 1000);
    for (int k = 0; k < (d == MD_TWICE ? 2 : 1); k++) {
        text(b, "model");
        if (d == MD_NOT_A_MAP) {
            text(b, "m");
            return;
        }
        head(b, 5, d == MD_MISSING_VERSION ? 2 : d == MD_EXTRA_MEMBER ? 4 : 3);
        if (d == MD_ORDER) {
            text(b, "sha256");
            bytes(b, 1, 32);
            text(b, "name");
            text(b, "m");
        } else {
            text(b, "name");
            if (d == MD_LONG_NAME) {
                char name[CG_MODEL_NAME_MAX + 2];
                memset(name, 'a', sizeof(name) - 1);
                name[sizeof(name) - 1] = '\0';
                text(b, name);
            } else {
                text(b, d == MD_EMPTY_NAME ? "" : d == MD_CONTROL_IN_NAME ? "a\tb" : "m");
            }
            text(b, "sha256");
            bytes(b, 1, d == MD_SHORT_DIGEST ? 31 : 32);
        }
        if (d != MD_MISSING_VERSION) {
            text(b, "version");
            if (d == MD_NEGATIVE_VERSION)
                head(b, 1, 0);
            else
                head(b, 0, 3);
        }
        if (d == MD_EXTRA_MEMBER) {
            text(b, "kid");
            text(b, "x");
        }
    }
}

static void test_claims_model_malformed(void **state)
{
    (void)state;
    struct buf b;
    struct cg_claims c;
    model_claims(&b, MD_NONE);
    assert_int_equal(cg_claims_decode(b.b, b.n, &c), 0);
    assert_true(c.model.present);
    assert_string_equal(c.model.name, "m");
    assert_int_equal(c.model.version, 3);
    for (int d = MD_MISSING_VERSION; d <= MD_TWICE; d++) {
        model_claims(&b, (enum model_defect)d);
        memset(&c, 0x55, sizeof(c));
        assert_int_equal(cg_claims_decode(b.b, b.n, &c), CG_ECBOR);
        assert_false(c.model.present);
    }
}

static void expect_claims_bad(const struct buf *b)
{
    struct cg_claims c;
    memset(&c, 0x55, sizeof(c));
    assert_int_equal(cg_claims_decode(b->b, b->n, &c), CG_ECBOR);
    assert_int_equal(c.n_nonces, 0); /* nothing half-decoded is left behind */
}

static void test_claims_valid_by_hand(void **state)
{
    (void)state;
    /* Any key order is accepted; the hand-built baseline must decode. */
    struct buf b = {.n = 0};
    struct cg_claims c;
    head(&b, 5, 2);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    head(&b, 0, 1000);
    assert_int_equal(cg_claims_decode(b.b, b.n, &c), 0);
    assert_int_equal(c.iat, 1000);
    assert_int_equal(c.pubkey_hash[0], 0xab);
    assert_int_equal(c.n_nonces, 0);
}

static void test_claims_malformed(void **state)
{
    (void)state;
    struct buf b;

    /* wrong hash algorithm */
    b.n = 0;
    head(&b, 5, 2);
    pubkey_hash(&b, 2, 32);
    text(&b, "iat");
    head(&b, 0, 1);
    expect_claims_bad(&b);

    /* wrong hash length */
    b.n = 0;
    head(&b, 5, 2);
    pubkey_hash(&b, 1, 31);
    text(&b, "iat");
    head(&b, 0, 1);
    expect_claims_bad(&b);

    /* wrong nonce length */
    b.n = 0;
    head(&b, 5, 3);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    head(&b, 0, 1);
    text(&b, "nonces");
    head(&b, 4, 1);
    bytes(&b, 7, 31);
    expect_claims_bad(&b);

    /* more than 64 nonces */
    b.n = 0;
    head(&b, 5, 3);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    head(&b, 0, 1);
    text(&b, "nonces");
    head(&b, 4, CG_MAX_NONCES + 1);
    for (int i = 0; i < CG_MAX_NONCES + 1; i++)
        bytes(&b, (uint8_t)i, CG_NONCE_LEN);
    expect_claims_bad(&b);

    /* an empty nonce list is written as an absent key */
    b.n = 0;
    head(&b, 5, 3);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    head(&b, 0, 1);
    text(&b, "nonces");
    head(&b, 4, 0);
    expect_claims_bad(&b);

    /* trailing bytes */
    b.n = 0;
    head(&b, 5, 2);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    head(&b, 0, 1);
    head(&b, 0, 0);
    expect_claims_bad(&b);

    /* indefinite-length map */
    b.n = 0;
    put(&b, "\xbf", 1);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    head(&b, 0, 1);
    put(&b, "\xff", 1);
    expect_claims_bad(&b);

    /* indefinite-length byte string for the hash */
    b.n = 0;
    head(&b, 5, 2);
    text(&b, "pubkey-hash");
    head(&b, 4, 2);
    head(&b, 0, 1);
    put(&b, "\x5f", 1);
    bytes(&b, 1, 32);
    put(&b, "\xff", 1);
    text(&b, "iat");
    head(&b, 0, 1);
    expect_claims_bad(&b);

    /* duplicate key */
    b.n = 0;
    head(&b, 5, 3);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    head(&b, 0, 1);
    text(&b, "iat");
    head(&b, 0, 2);
    expect_claims_bad(&b);

    /* unknown key */
    b.n = 0;
    head(&b, 5, 3);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    head(&b, 0, 1);
    text(&b, "nonce");
    bytes(&b, 1, 32);
    expect_claims_bad(&b);

    /* missing iat */
    b.n = 0;
    head(&b, 5, 1);
    pubkey_hash(&b, 1, 32);
    expect_claims_bad(&b);

    /* iat of the wrong type (negative, text) */
    b.n = 0;
    head(&b, 5, 2);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    head(&b, 1, 5);
    expect_claims_bad(&b);
    b.n = 0;
    head(&b, 5, 2);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    text(&b, "1");
    expect_claims_bad(&b);

    /* non-shortest integer head */
    b.n = 0;
    head(&b, 5, 2);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    put(&b, "\x18\x01", 2);
    expect_claims_bad(&b);

    /* a tag where the map belongs */
    b.n = 0;
    head(&b, 6, 24);
    head(&b, 5, 2);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    head(&b, 0, 1);
    expect_claims_bad(&b);

    /* a map announcing 2^32 entries in a few bytes: rejected, nothing allocated */
    b.n = 0;
    head(&b, 5, 0xffffffffu);
    expect_claims_bad(&b);

    /* an empty gpu byte string is written as an absent key */
    b.n = 0;
    head(&b, 5, 3);
    pubkey_hash(&b, 1, 32);
    text(&b, "iat");
    head(&b, 0, 1);
    text(&b, "gpu");
    head(&b, 2, 0);
    expect_claims_bad(&b);

    /* empty input */
    b.n = 0;
    expect_claims_bad(&b);
}

static void test_cmw(void **state)
{
    (void)state;
    const uint8_t ev[] = {1, 2, 3, 4};
    const uint8_t cl[] = {9, 8};
    uint8_t *enc = NULL;
    size_t len = 0;
    uint32_t tag = 0;
    const uint8_t *e, *c;
    size_t el, clen;
    assert_int_equal(cg_cmw_encode(CG_TAG_SNP, ev, sizeof(ev), cl, sizeof(cl), &enc, &len), 0);
    /* tag 0x1a7504 takes a 4-byte head: 0xda 00 1a 75 04, then [h'01020304', h'0908'] */
    const uint8_t want[] = {0xda, 0x00, 0x1a, 0x75, 0x04, 0x82, 0x44, 1, 2, 3, 4, 0x42, 9, 8};
    assert_int_equal(len, sizeof(want));
    assert_memory_equal(enc, want, sizeof(want));
    assert_int_equal(cg_cmw_decode(enc, len, &tag, &e, &el, &c, &clen), 0);
    assert_int_equal(tag, CG_TAG_SNP);
    assert_int_equal(el, sizeof(ev));
    assert_memory_equal(e, ev, sizeof(ev));
    assert_int_equal(clen, sizeof(cl));
    assert_memory_equal(c, cl, sizeof(cl));
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(cg_cmw_decode(enc, cut, &tag, &e, &el, &c, &clen), CG_ECBOR);
    free(enc);

    struct buf b;
    /* trailing bytes */
    b.n = 0;
    put(&b, want, sizeof(want));
    put(&b, "\x00", 1);
    assert_int_equal(cg_cmw_decode(b.b, b.n, &tag, &e, &el, &c, &clen), CG_ECBOR);
    /* no tag */
    assert_int_equal(cg_cmw_decode(want + 5, sizeof(want) - 5, &tag, &e, &el, &c, &clen), CG_ECBOR);
    /* three elements */
    b.n = 0;
    head(&b, 6, CG_TAG_SIM);
    head(&b, 4, 3);
    bytes(&b, 1, 4);
    bytes(&b, 2, 4);
    bytes(&b, 3, 4);
    assert_int_equal(cg_cmw_decode(b.b, b.n, &tag, &e, &el, &c, &clen), CG_ECBOR);
    /* text instead of bytes */
    b.n = 0;
    head(&b, 6, CG_TAG_SIM);
    head(&b, 4, 2);
    text(&b, "report");
    bytes(&b, 2, 4);
    assert_int_equal(cg_cmw_decode(b.b, b.n, &tag, &e, &el, &c, &clen), CG_ECBOR);
    /* tag over 32 bits */
    b.n = 0;
    head(&b, 6, 0x100000000ull);
    head(&b, 4, 2);
    bytes(&b, 1, 4);
    bytes(&b, 2, 4);
    assert_int_equal(cg_cmw_decode(b.b, b.n, &tag, &e, &el, &c, &clen), CG_ECBOR);
    /* over the size limit */
    size_t big_len = CG_EVIDENCE_MAX_BYTES + 1;
    uint8_t *big = calloc(1, big_len);
    assert_non_null(big);
    assert_int_equal(cg_cmw_encode(CG_TAG_SIM, big, big_len, cl, sizeof(cl), &enc, &len),
                     CG_ELIMIT);
    assert_int_equal(cg_cmw_decode(big, big_len, &tag, &e, &el, &c, &clen), CG_ECBOR);
    free(big);
}

static void test_endorsements(void **state)
{
    (void)state;
    uint8_t c0[] = {0x30, 1, 2}, c1[] = {0x30, 3};
    struct cg_evidence in = {.tag = CG_TAG_SIM, .n_certs = 2};
    in.certs[0] = c0;
    in.cert_lens[0] = sizeof(c0);
    in.certs[1] = c1;
    in.cert_lens[1] = sizeof(c1);
    uint8_t *enc = NULL;
    size_t len = 0;
    assert_int_equal(cg_endorsements_encode(&in, &enc, &len), 0);
    struct cg_evidence out;
    memset(&out, 0, sizeof(out));
    assert_int_equal(cg_endorsements_decode(enc, len, &out), 0);
    assert_int_equal(out.tag, CG_TAG_SIM);
    assert_int_equal(out.n_certs, 2);
    assert_int_equal(out.cert_lens[0], sizeof(c0));
    assert_memory_equal(out.certs[0], c0, sizeof(c0));
    assert_int_equal(out.cert_lens[1], sizeof(c1));
    assert_memory_equal(out.certs[1], c1, sizeof(c1));
    assert_ptr_not_equal(out.certs[0], c0); /* a copy, owned by out */
    for (size_t i = 0; i < out.n_certs; i++)
        free(out.certs[i]);
    for (size_t cut = 0; cut < len; cut++) {
        struct cg_evidence bad;
        memset(&bad, 0, sizeof(bad));
        assert_int_equal(cg_endorsements_decode(enc, cut, &bad), CG_ECBOR);
        assert_int_equal(bad.n_certs, 0);
    }
    free(enc);

    /* more certificates than a struct holds */
    struct buf b = {.n = 0};
    head(&b, 6, CG_TAG_SNP);
    head(&b, 4, CG_EVIDENCE_MAX_CERTS + 1);
    for (int i = 0; i < CG_EVIDENCE_MAX_CERTS + 1; i++)
        bytes(&b, 1, 2);
    memset(&out, 0, sizeof(out));
    assert_int_equal(cg_endorsements_decode(b.b, b.n, &out), CG_ECBOR);
    assert_int_equal(out.n_certs, 0);

    /* indefinite array */
    b.n = 0;
    head(&b, 6, CG_TAG_SNP);
    put(&b, "\x9f", 1);
    bytes(&b, 1, 2);
    put(&b, "\xff", 1);
    assert_int_equal(cg_endorsements_decode(b.b, b.n, &out), CG_ECBOR);

    /* an empty list is valid */
    in.n_certs = 0;
    assert_int_equal(cg_endorsements_encode(&in, &enc, &len), 0);
    memset(&out, 0, sizeof(out));
    assert_int_equal(cg_endorsements_decode(enc, len, &out), 0);
    assert_int_equal(out.n_certs, 0);
    free(enc);
}

/* Random one- to three-byte mutations of valid encodings: decoded or refused, never a crash, a
 * hang or a leak (ASan), and whatever decodes still satisfies the limits. */
static void test_mutations(void **state)
{
    (void)state;
    static const uint8_t gpu[40] = {7};
    struct cg_claims in, out;
    uint8_t *claims, *cmw;
    size_t claims_len, cmw_len;
    fill_claims(&in, 3, gpu, sizeof(gpu));
    assert_int_equal(cg_claims_encode(&in, &claims, &claims_len), 0);
    assert_int_equal(
        cg_cmw_encode(CG_TAG_SIM, gpu, sizeof(gpu), claims, claims_len, &cmw, &cmw_len), 0);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    uint8_t *buf = malloc(cmw_len);
    for (int i = 0; i < 20000; i++) {
        int on_cmw = i & 1;
        const uint8_t *src = on_cmw ? cmw : claims;
        size_t len = on_cmw ? cmw_len : claims_len;
        memcpy(buf, src, len);
        for (int k = 0; k < 1 + i % 3; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[(x >> 8) % len] = (uint8_t)x;
        }
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t cut = (i % 5 == 0) ? (size_t)(x % len) : len;
        if (on_cmw) {
            uint32_t tag;
            const uint8_t *e, *c;
            size_t el, cl;
            if (cg_cmw_decode(buf, cut, &tag, &e, &el, &c, &cl) == 0)
                assert_true(e >= buf && c + cl <= buf + cut);
        } else if (cg_claims_decode(buf, cut, &out) == 0) {
            assert_true(out.n_nonces <= CG_MAX_NONCES);
            assert_true(out.gpu == NULL || out.gpu + out.gpu_len <= buf + cut);
        }
    }
    free(buf);
    free(claims);
    free(cmw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claims_round_trip),     cmocka_unit_test(test_claims_deterministic),
        cmocka_unit_test(test_claims_encode_rejects), cmocka_unit_test(test_claims_valid_by_hand),
        cmocka_unit_test(test_claims_malformed),      cmocka_unit_test(test_cmw),
        cmocka_unit_test(test_claims_model),          cmocka_unit_test(test_claims_model_malformed),
        cmocka_unit_test(test_endorsements),          cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
