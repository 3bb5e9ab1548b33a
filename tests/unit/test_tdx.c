/*
 * TDX quote verifier against the real vectors in tests/vectors (go-tdx-guest, trustee) and
 * the outcomes their MANIFEST.md files give.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ccgate/roots.h"
#include "ccgate/tdx.h"

#define GO "go-tdx-guest/"
#define TR "trustee/tdx/"

struct blob {
    uint8_t *p;
    size_t n;
};

static struct blob load_path(const char *path)
{
    struct blob b = {NULL, 0};
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    b.p = malloc((size_t)n + 1);
    assert_non_null(b.p);
    assert_int_equal(fread(b.p, 1, (size_t)n, f), (size_t)n);
    b.p[n] = 0;
    b.n = (size_t)n;
    fclose(f);
    return b;
}

/* A vector file below CG_VECTORS, NUL-terminated (not counted in n). */
static struct blob load(const char *rel)
{
    char path[1024];
    const char *dir = getenv("CG_VECTORS");
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/vectors", rel);
    return load_path(path);
}

static struct blob load_abs(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return load_path(path);
}

static time_t at(const char *s)
{
    time_t t;
    assert_int_equal(cg_tdx_time_parse(s, &t), 0);
    return t;
}

/* Collateral from vector files; caller frees with col_free(). */
struct col {
    struct cg_tdx_collateral c;
    struct blob tcb, qe, chain, crl[CG_TDX_MAX_CRLS];
};

/* Points the collateral at the blobs again (after a blob was reallocated). */
static void col_sync(struct col *c)
{
    c->c.tcb_info = (const char *)c->tcb.p;
    c->c.tcb_info_len = c->tcb.n;
    c->c.qe_identity = (const char *)c->qe.p;
    c->c.qe_identity_len = c->qe.n;
}

static void col_load(struct col *c, const char *tcb, const char *qe, const char *chain)
{
    memset(c, 0, sizeof(*c));
    if (tcb != NULL) {
        c->tcb = load(tcb);
        c->qe = load(qe);
        c->chain = load(chain);
        c->c.tcb_info = (const char *)c->tcb.p;
        c->c.tcb_info_len = c->tcb.n;
        c->c.qe_identity = (const char *)c->qe.p;
        c->c.qe_identity_len = c->qe.n;
        c->c.tcb_chain = (const char *)c->chain.p;
        c->c.tcb_chain_len = c->chain.n;
    }
}

static void col_add_crl(struct col *c, const char *rel)
{
    size_t i = c->c.n_crls++;
    c->crl[i] = load(rel);
    c->c.crls[i] = c->crl[i].p;
    c->c.crl_lens[i] = c->crl[i].n;
}

static void col_free(struct col *c)
{
    free(c->tcb.p);
    free(c->qe.p);
    free(c->chain.p);
    for (size_t i = 0; i < CG_TDX_MAX_CRLS; i++)
        free(c->crl[i].p);
}

/* The quote's true length: header, body, u32 length and the signature data. */
static size_t quote_len(const uint8_t *p)
{
    size_t off = p[0] == 5 ? 0x2BE : 0x278;
    return off + 4 +
           ((size_t)p[off] | (size_t)p[off + 1] << 8 | (size_t)p[off + 2] << 16 |
            (size_t)p[off + 3] << 24);
}

/* A vector quote without what some files carry after it (go-tdx-guest's "extra bytes",
 * the zero padding of the legacy GET_QUOTE buffer): the verifier refuses those bytes. */
static struct blob load_quote(const char *rel)
{
    struct blob b = load(rel);
    b.n = quote_len(b.p);
    return b;
}

/* Verifies a vector quote; returns rc and fills q/st/v. The quote blob is returned in *b. */
static int verify_file(const char *rel, const struct cg_tdx_collateral *c, const char *when,
                       struct blob *b, struct cg_tdx_quote *q, struct cg_tdx_status *st,
                       struct cg_verdict *v)
{
    *b = load_quote(rel);
    memset(v, 0, sizeof(*v));
    return cg_tdx_verify(b->p, b->n, c, at(when), q, st, v);
}

static void expect_ok(const char *rel, const struct cg_tdx_collateral *c, const char *when)
{
    struct blob b;
    struct cg_tdx_quote q;
    struct cg_tdx_status st;
    struct cg_verdict v;
    int rc = verify_file(rel, c, when, &b, &q, &st, &v);
    if (rc != 0)
        fail_msg("%s: %s expected %s actual %s", rel, v.check, v.expected, v.actual);
    free(b.p);
}

static void expect_reject(const char *rel, const struct cg_tdx_collateral *c, const char *when,
                          const char *check)
{
    struct blob b;
    struct cg_tdx_quote q;
    struct cg_tdx_status st;
    struct cg_verdict v;
    int rc = verify_file(rel, c, when, &b, &q, &st, &v);
    assert_int_equal(rc, CG_EEVIDENCE);
    assert_string_equal(v.check, check);
    free(b.p);
}

static void hex_eq(const uint8_t *got, size_t n, const char *want)
{
    char hex[257];
    cg_hex(hex, sizeof(hex), got, n);
    assert_string_equal(hex, want);
}

/* ---- pinned root --------------------------------------------------------------------- */

static void test_root_pinned(void **state)
{
    (void)state;
    const struct cg_root *r;
    for (r = cg_roots; r->name != NULL; r++)
        if (strcmp(r->name, "intel/sgx_root_ca.pem") == 0)
            break;
    assert_non_null(r->name);
    /* Same bytes as the vector copy, whose fingerprint MANIFEST.md gives. */
    struct blob b = load(GO "trusted_root.pem");
    assert_int_equal(r->len, b.n);
    assert_memory_equal(r->pem, b.p, b.n);
    free(b.p);

    /* Fingerprint of the DER inside the PEM, recomputed here with the openssl CLI. */
    char cmd[1200], line[256] = "";
    const char *src = getenv("CG_SOURCE_DIR");
    snprintf(cmd, sizeof(cmd),
             "openssl x509 -in '%s/certs/intel/sgx_root_ca.pem' -noout -fingerprint -sha256",
             src ? src : ".");
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof(line), p));
    assert_int_equal(pclose(p), 0);
    assert_non_null(strstr(line, "44:A0:19:6B:2B:99:F8:89:B8:E1:49:E9:5B:80:7A:35:0E:74:24:96:"
                                 "43:99:E8:85:A7:CB:B8:CC:FA:B6:74:D3"));
}

/* ---- parsing ------------------------------------------------------------------------- */

static void test_parse_spr_e4_fields(void **state)
{
    (void)state;
    struct blob b = load_quote(GO "tdx_prod_quote_SPR_E4.dat");
    struct cg_tdx_quote q;
    struct cg_verdict v;
    assert_int_equal(cg_tdx_quote_parse(b.p, b.n, &q, &v), 0);
    assert_int_equal(q.version, 4);
    assert_int_equal(q.body_type, 2);
    assert_int_equal(q.signed_len, 0x278);
    hex_eq(q.tee_tcb_svn, 16, "03000400000000000000000000000000");
    hex_eq(q.mrseam, 48,
           "2fd279c16164a93dd5bf373d834328d46008c2b693af9ebb865b08b2ced320c9a89b4869a9fab60fbe9d"
           "0c5a5363c656");
    assert_int_equal(q.td_attributes, 0x40000000);
    assert_int_equal(q.xfam, 0x61ae7);
    hex_eq(q.mrtd, 48,
           "6363b8043668a3ad953278e10389574d326c6749fb78aa810ecd9336923db86f22fc00b8dcd404bc10d5"
           "e119d7215cbb");
    hex_eq(q.report_data, 64,
           "6c62dec1b8191749a31dab490be532a35944dea47caef1f980863993d9899545eb7406a38d1eed313b98"
           "7a467dacead6f0c87a6d766c66f6f29f8acb281f1113");
    hex_eq(q.qe_report.mrsigner, 32,
           "dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5");
    assert_int_equal(q.qe_report.isvprodid, 2);
    assert_int_equal(q.qe_report.isvsvn, 4);
    assert_int_equal(q.qe_auth_len, 32);
    for (size_t i = 0; i < 32; i++)
        assert_int_equal(q.qe_auth[i], i);
    assert_non_null(strstr(q.pck_chain, "-----BEGIN CERTIFICATE-----"));
    free(b.p);
}

static void test_parse_v5_fields(void **state)
{
    (void)state;
    struct blob b = load_quote(GO "quote_v5_sample.dat");
    struct cg_tdx_quote q;
    struct cg_verdict v;
    assert_int_equal(cg_tdx_quote_parse(b.p, b.n, &q, &v), 0);
    assert_int_equal(q.version, 5);
    assert_int_equal(q.body_type, 3);
    assert_int_equal(q.signed_len, 0x2BE);
    hex_eq(q.tee_tcb_svn, 4, "0b010400");
    hex_eq(q.tee_tcb_svn2, 4, "0d010400");
    assert_int_equal(q.td_attributes, 0x10000000);
    hex_eq(q.mrtd, 48,
           "7348651a34b2d2d3462822e3a750ec6110125f36757c78480bbfc69cc0d21fb001a1ced3ee19747dda8f"
           "750c3bc8f876");
    hex_eq(q.report_data, 64,
           "945eaacf5abc1f719d8666a942fda03d1edcb4490277396093dc5a5289ab9f1e094aed63060cd4a4933a"
           "4dd537ed1255c9c79ecb3ed82cd1b486233e31c25c3a");
    free(b.p);

    b = load_quote(TR "tdx_quote_6.dat");
    assert_int_equal(cg_tdx_quote_parse(b.p, b.n, &q, &v), 0);
    hex_eq(q.mrconfigid, 48,
           "889abf4718f037e38d74464c11e7c91a6e9890b5546409e1e7df9de7a51ca93152bf847bd2440328e90a"
           "db18b150ed67");
    free(b.p);
}

/* Every prefix shorter than the quote is refused cleanly; the exact quote parses. */
static void test_truncation(void **state)
{
    (void)state;
    static const char *const files[] = {GO "tdx_prod_quote_SPR_E4.dat", GO "quote_v5_sample.dat",
                                        GO "cos-113-tdx-quote.dat",     TR "tdx_quote_4.dat",
                                        TR "tdx_quote_5.dat",           TR "tdx_quote_6.dat"};
    for (size_t f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
        struct blob b = load(files[f]);
        size_t n = quote_len(b.p);
        assert_true(n <= b.n);
        for (size_t len = 0; len < n; len++) {
            /* A fresh copy of exactly len bytes, so ASan sees any read past the end. */
            uint8_t *cut = malloc(len ? len : 1);
            memcpy(cut, b.p, len);
            struct cg_tdx_quote q;
            struct cg_verdict v;
            assert_int_equal(cg_tdx_quote_parse(cut, len, &q, &v), CG_EEVIDENCE);
            free(cut);
        }
        struct cg_tdx_quote q;
        struct cg_verdict v;
        uint8_t *exact = malloc(n);
        memcpy(exact, b.p, n);
        assert_int_equal(cg_tdx_quote_parse(exact, n, &q, &v), 0);
        free(exact);
        free(b.p);
    }
}

static void put32(uint8_t *p, uint32_t x)
{
    p[0] = (uint8_t)x;
    p[1] = (uint8_t)(x >> 8);
    p[2] = (uint8_t)(x >> 16);
    p[3] = (uint8_t)(x >> 24);
}

/* Bytes after the signature data are refused unless they are zero padding: the genuine file
 * with go-tdx-guest's appended text, and the exact quote with one 0x01 byte more. */
static void test_trailing_bytes(void **state)
{
    (void)state;
    struct blob b = load(GO "tdx_prod_quote_SPR_E4.dat");
    size_t n = quote_len(b.p);
    struct cg_tdx_quote q;
    struct cg_verdict v;
    assert_true(b.n > n);
    assert_int_equal(cg_tdx_quote_parse(b.p, b.n, &q, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.quote.trailing");
    assert_string_equal(v.actual, "39 bytes, byte 0 = 0x0a");
    uint8_t *more = calloc(1, n + 70);
    memcpy(more, b.p, n);
    assert_int_equal(cg_tdx_quote_parse(more, n + 70, &q, &v), 0); /* zero padding */
    more[n] = 1;
    assert_int_equal(cg_tdx_quote_parse(more, n + 1, &q, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.quote.trailing");
    assert_string_equal(v.actual, "1 bytes, byte 0 = 0x01");
    assert_int_equal(cg_tdx_quote_parse(more, n, &q, &v), 0);
    free(more);
    free(b.p);
}

/* Each header field and length field, corrupted alone, is named in the verdict. */
static void test_parse_fields_rejected(void **state)
{
    (void)state;
    struct blob b = load_quote(GO "tdx_prod_quote_SPR_E4.dat");
    const size_t sd = 0x278 + 4, cd = sd + 134;
    const size_t auth = cd + 384 + 64, chain_hdr = auth + 2 + 32;
    struct {
        size_t off;
        uint32_t val;
        int width;
        const char *check;
    } cases[] = {
        {0x00, 3, 2, "tdx.quote.version"},
        {0x02, 3, 2, "tdx.quote.att_key_type"},
        {0x04, 0, 4, "tdx.quote.tee_type"},
        {0x0C, 0x42, 1, "tdx.quote.qe_vendor_id"},
        {0x278, 0x10, 4, "tdx.quote.sig_len"}, /* upstream: "size of certificate data" */
        {0x278, 0xFFFFFFFF, 4, "tdx.quote.sig_len"},
        {sd + 128, 5, 2, "tdx.quote.cert_type"},
        {sd + 130, 0xFFFFFFF0, 4, "tdx.quote.cert_size"},
        {auth, 0xFFFF, 2, "tdx.quote.qe_auth_size"},
        {chain_hdr, 4, 2, "tdx.quote.pck_cert_type"},
        {chain_hdr + 2, 0x7FFFFFFF, 4, "tdx.quote.pck_chain_size"},
        {chain_hdr + 2, 10, 4, "tdx.quote.pck_chain_size"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *m = malloc(b.n);
        memcpy(m, b.p, b.n);
        if (cases[i].width == 4)
            put32(m + cases[i].off, cases[i].val);
        else if (cases[i].width == 2) {
            m[cases[i].off] = (uint8_t)cases[i].val;
            m[cases[i].off + 1] = (uint8_t)(cases[i].val >> 8);
        } else {
            m[cases[i].off] = (uint8_t)cases[i].val;
        }
        struct cg_tdx_quote q;
        struct cg_verdict v;
        assert_int_equal(cg_tdx_quote_parse(m, b.n, &q, &v), CG_EEVIDENCE);
        assert_string_equal(v.check, cases[i].check);
        free(m);
    }
    /* v5 body type and size. */
    struct blob b5 = load_quote(GO "quote_v5_sample.dat");
    struct cg_tdx_quote q;
    struct cg_verdict v;
    b5.p[48] = 1;
    assert_int_equal(cg_tdx_quote_parse(b5.p, b5.n, &q, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.quote.body_type");
    b5.p[48] = 3;
    put32(b5.p + 50, 584);
    assert_int_equal(cg_tdx_quote_parse(b5.p, b5.n, &q, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.quote.body_size");
    free(b5.p);
    free(b.p);
}

/* ---- signatures and chains ----------------------------------------------------------- */

static void test_genuine_quotes_verify(void **state)
{
    (void)state;
    /* Times from the manifests: upstream tests' times, or inside every cert's validity. */
    expect_ok(GO "tdx_prod_quote_SPR_E4.dat", NULL, "2023-07-01T01:00:00Z");
    expect_ok(GO "quote_v5_sample.dat", NULL, "2026-02-03T01:00:00Z");
    expect_ok(GO "cos-113-tdx-quote.dat", NULL, "2024-08-26T00:00:00Z");
    expect_ok(TR "tdx_quote_4.dat", NULL, "2024-06-24T00:00:00Z");
    expect_ok(TR "tdx_quote_5.dat", NULL, "2024-06-24T00:00:00Z");
    expect_ok(TR "tdx_quote_6.dat", NULL, "2025-11-01T00:00:00Z");
}

static void test_pck_fields(void **state)
{
    (void)state;
    struct blob b;
    struct cg_tdx_quote q;
    struct cg_tdx_status st;
    struct cg_verdict v;
    assert_int_equal(
        verify_file(GO "tdx_prod_quote_SPR_E4.dat", NULL, "2023-07-01T01:00:00Z", &b, &q, &st, &v),
        0);
    hex_eq(q.pck.fmspc, 6, "50806f000000");
    hex_eq(q.pck.pceid, 2, "0000");
    hex_eq(q.pck.ppid, 16, "089ddfdb9c0359c82a3bc7719239574e");
    assert_int_equal(q.pck.pcesvn, 11);
    hex_eq(q.pck.sgx_tcb, 16, "03030202020100020000000000000000");
    assert_int_equal(st.collateral, 0);
    assert_int_equal(st.tcb_status, CG_TDX_TCB_NOT_EVALUATED);
    free(b.p);
}

static void test_tampered_vectors(void **state)
{
    (void)state;
    expect_reject(GO "tdx_prod_quote_SPR_E4.TAMPERED_body_0x3C.dat", NULL, "2023-07-01T01:00:00Z",
                  "tdx.quote_signature");
    expect_reject(GO "tdx_prod_quote_SPR_E4.TAMPERED_pckcert_0xB77.dat", NULL,
                  "2023-07-01T01:00:00Z", "tdx.pck_chain");
}

/* XORs one byte of a genuine quote with mask and expects the named check to fail. */
static void flip_expect(const char *rel, size_t off, uint8_t mask, const char *when,
                        const char *check)
{
    struct blob b = load_quote(rel);
    struct cg_tdx_quote q;
    struct cg_tdx_status st;
    struct cg_verdict v;
    assert_true(off < b.n);
    assert_int_not_equal(mask, 0);
    b.p[off] ^= mask;
    int rc = cg_tdx_verify(b.p, b.n, NULL, at(when), &q, &st, &v);
    if (rc != CG_EEVIDENCE || strcmp(v.check, check) != 0)
        fail_msg("offset 0x%zx: got %s (%s), want %s", off, v.check, v.actual, check);
    free(b.p);
}

static void test_negative_mutations(void **state)
{
    (void)state;
    const char *t = "2023-07-01T01:00:00Z";
    const char *spr = GO "tdx_prod_quote_SPR_E4.dat";
    const size_t sd = 0x278 + 4, cd = sd + 134;
    /* Upstream go-tdx-guest TestNegativeVerification: header byte. */
    flip_expect(spr, 0x1E, 0x01, t, "tdx.quote_signature");
    /* The signature itself; the attestation key (the QE report binds it). */
    flip_expect(spr, sd + 5, 0x01, t, "tdx.quote_signature");
    flip_expect(spr, sd + 64 + 10, 0x01, t, "tdx.qe_report_data");
    /* QE report body (MRENCLAVE): its PCK signature fails. */
    flip_expect(spr, cd + 64, 0x01, t, "tdx.qe_report_signature");
    /* QE auth data: the binding of the attestation key fails. */
    flip_expect(spr, cd + 384 + 64 + 2 + 3, 0x40, t, "tdx.qe_report_data");
    /* Upstream: PCK chain bytes (0x1343), intermediate (0xF5F), root (0x1329). */
    flip_expect(spr, 0x1343, 0x01, t, "tdx.pck_chain.parse");
    flip_expect(spr, 0xF5F, 0x01, t, "tdx.pck_chain");
    flip_expect(spr, 0x1329, 0x01, t, "tdx.pck_chain.root");
    /* v5: a body byte (MRSEAM), signed from offset 0 to 0x2BE. */
    flip_expect(GO "quote_v5_sample.dat", 0x100, 0x01, "2026-02-03T01:00:00Z",
                "tdx.quote_signature");
}

static void test_pck_time(void **state)
{
    (void)state;
    /* Upstream TestNegativeVerifyPckChainWithoutRevocation: 2053, after the PCK's notAfter. */
    expect_reject(GO "tdx_prod_quote_SPR_E4.dat", NULL, "2053-07-01T01:00:00Z", "tdx.pck_chain");
    /* Before the PCK was issued (2022-09-20). */
    expect_reject(GO "tdx_prod_quote_SPR_E4.dat", NULL, "2022-09-01T00:00:00Z", "tdx.pck_chain");
}

/* ---- CRLs ---------------------------------------------------------------------------- */

static void test_crls(void **state)
{
    (void)state;
    struct col c;
    col_load(&c, NULL, NULL, NULL);
    col_add_crl(&c, GO "pckcrl");
    col_add_crl(&c, GO "rootcrl.der");
    struct blob b;
    struct cg_tdx_quote q;
    struct cg_tdx_status st;
    struct cg_verdict v;
    assert_int_equal(
        verify_file(GO "tdx_prod_quote_SPR_E4.dat", &c.c, "2023-07-01T01:00:00Z", &b, &q, &st, &v),
        0);
    assert_int_equal(st.n_crls, 2);
    free(b.p);
    /* The root CRL's nextUpdate is 2024-04-02; the PCK CRL's 2023-07-08. */
    expect_reject(GO "tdx_prod_quote_SPR_E4.dat", &c.c, "2023-07-09T00:00:00Z", "tdx.crl.expired");
    expect_reject(GO "tdx_prod_quote_SPR_E4.dat", &c.c, "2023-06-01T00:00:00Z",
                  "tdx.crl.not_yet_valid");
    /* A tampered CRL signature (last byte of s). */
    c.crl[0].p[c.crl[0].n - 1] ^= 0x01;
    expect_reject(GO "tdx_prod_quote_SPR_E4.dat", &c.c, "2023-07-01T01:00:00Z",
                  "tdx.crl.signature");
    c.crl[0].p[c.crl[0].n - 1] ^= 0x01;
    /* A revoked entry changed: the signature over the list fails. */
    c.crl[0].p[c.crl[0].n / 2] ^= 0x01;
    expect_reject(GO "tdx_prod_quote_SPR_E4.dat", &c.c, "2023-07-01T01:00:00Z",
                  "tdx.crl.signature");
    c.crl[0].p[c.crl[0].n / 2] ^= 0x01;
    /* Not a CRL at all. */
    c.crl[1].p[0] = 0x00;
    expect_reject(GO "tdx_prod_quote_SPR_E4.dat", &c.c, "2023-07-01T01:00:00Z", "tdx.crl.parse");
    col_free(&c);
}

/* A CRL whose issuer is neither the root nor the chain's PCK CA. */
static void test_crl_unknown_issuer(void **state)
{
    (void)state;
    struct col c;
    col_load(&c, NULL, NULL, NULL);
    col_add_crl(&c, GO "pckcrl");
    /* Rename the issuer CN inside the DER ("Platform" -> "Plotform"): unknown issuer. */
    uint8_t *hit = NULL;
    for (size_t i = 0; i + 8 <= c.crl[0].n && hit == NULL; i++)
        if (memcmp(c.crl[0].p + i, "Platform", 8) == 0)
            hit = c.crl[0].p + i;
    assert_non_null(hit);
    hit[2] = 'o';
    expect_reject(GO "tdx_prod_quote_SPR_E4.dat", &c.c, "2023-07-01T01:00:00Z", "tdx.crl.issuer");
    col_free(&c);
}

/*
 * Revocation itself, which no Intel-signed CRL in the vectors exercises: a CA made here
 * with the openssl CLI issues a leaf, then a CRL without it and a CRL listing it.
 */
static void test_crl_revocation(void **state)
{
    (void)state;
    char dir[] = "/tmp/test_tdx_crl_XXXXXX", cmd[2048];
    assert_non_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd),
             "set -e; cd '%s'; exec 2>/dev/null; "
             "openssl ecparam -name prime256v1 -genkey -noout -out ca.key; "
             "openssl req -new -x509 -key ca.key -subj '/CN=Test PCK CA' -days 30 -out ca.pem; "
             "openssl ecparam -name prime256v1 -genkey -noout -out leaf.key; "
             "openssl req -new -key leaf.key -subj '/CN=Test PCK' -out leaf.csr; "
             "openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -set_serial 0x1234 "
             "-days 30 -out leaf.pem; "
             ": > index.txt; "
             "printf '[ca]\\ndefault_ca=c\\n[c]\\ndatabase=index.txt\\ndefault_md=sha256\\n"
             "default_crl_days=30\\n' > ca.cnf; "
             "openssl ca -config ca.cnf -keyfile ca.key -cert ca.pem -gencrl -out clean.pem; "
             "openssl ca -config ca.cnf -keyfile ca.key -cert ca.pem -revoke leaf.pem; "
             "openssl ca -config ca.cnf -keyfile ca.key -cert ca.pem -gencrl -out revoked.pem; "
             "openssl crl -in revoked.pem -outform DER -out revoked.der",
             dir);
    assert_int_equal(system(cmd), 0);
    struct blob ca = load_abs(dir, "ca.pem"), leaf = load_abs(dir, "leaf.pem");
    struct blob clean = load_abs(dir, "clean.pem"), revoked = load_abs(dir, "revoked.pem");
    struct blob der = load_abs(dir, "revoked.der");
    struct cg_verdict v;
    time_t now = time(NULL);
    const char *cap = (const char *)ca.p, *lp = (const char *)leaf.p;

    assert_int_equal(cg__tdx_crl_check(clean.p, clean.n, cap, ca.n, lp, leaf.n, now, &v), 0);
    assert_int_equal(cg__tdx_crl_check(revoked.p, revoked.n, cap, ca.n, lp, leaf.n, now, &v),
                     CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.pck.revoked");
    assert_non_null(strstr(v.actual, "serial 1234"));
    assert_int_equal(cg__tdx_crl_check(der.p, der.n, cap, ca.n, lp, leaf.n, now, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.pck.revoked");
    /* Outside the CRL's validity (30 days from now). */
    assert_int_equal(
        cg__tdx_crl_check(clean.p, clean.n, cap, ca.n, lp, leaf.n, now + 31 * 86400, &v),
        CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.crl.expired");
    assert_int_equal(cg__tdx_crl_check(clean.p, clean.n, cap, ca.n, lp, leaf.n, now - 86400, &v),
                     CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.crl.not_yet_valid");
    /* The same CRL bytes with the signature broken (last byte of the DER signature). */
    der.p[der.n - 1] ^= 0x01;
    assert_int_equal(cg__tdx_crl_check(der.p, der.n, cap, ca.n, lp, leaf.n, now, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.crl.signature");
    /* Intel's PCK CRL applied under the test CA: issuer unknown. */
    struct blob intel = load(GO "pckcrl");
    assert_int_equal(cg__tdx_crl_check(intel.p, intel.n, cap, ca.n, lp, leaf.n, now, &v),
                     CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.crl.issuer");

    free(intel.p);
    free(ca.p);
    free(leaf.p);
    free(clean.p);
    free(revoked.p);
    free(der.p);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

/* ---- the PCK chain carried in the quote ---------------------------------------------- */

/* A v4 quote q (exact length) whose PCK chain is replaced by pem: every length field that
 * frames it is rewritten. The chain is signed by nothing in the quote, so the quote and QE
 * report signatures still hold. Caller frees. */
static struct blob with_pck_chain(const struct blob *q, const char *pem)
{
    const size_t sd = 0x278 + 4, cd = sd + 134, auth = cd + 384 + 64;
    size_t auth_len = q->p[auth] | (size_t)q->p[auth + 1] << 8;
    size_t chain_hdr = auth + 2 + auth_len, n = strlen(pem);
    struct blob b = {malloc(chain_hdr + 6 + n), chain_hdr + 6 + n};
    assert_non_null(b.p);
    memcpy(b.p, q->p, chain_hdr + 2);
    put32(b.p + chain_hdr + 2, (uint32_t)n);
    memcpy(b.p + chain_hdr + 6, pem, n);
    put32(b.p + sd + 130, (uint32_t)(b.n - cd));
    put32(b.p + 0x278, (uint32_t)(b.n - sd));
    return b;
}

/* The i-th PEM certificate of text (0-based), as a new string. */
static char *pem_cert(const char *text, int i)
{
    const char *s = text;
    for (int k = 0; k < i; k++)
        s = strstr(s, "-----END CERTIFICATE-----") + 25;
    s = strstr(s, "-----BEGIN CERTIFICATE-----");
    assert_non_null(s);
    const char *e = strstr(s, "-----END CERTIFICATE-----") + 25;
    char *out = strndup(s, (size_t)(e - s));
    assert_non_null(out);
    return out;
}

/* pem with one byte of its issuer name changed (no longer self-signed), re-encoded. */
static char *issuer_byte_changed(const char *pem)
{
    BIO *in = BIO_new_mem_buf(pem, -1);
    X509 *x = PEM_read_bio_X509(in, NULL, NULL, NULL);
    assert_non_null(x);
    unsigned char *der = NULL;
    int n = i2d_X509(x, &der);
    X509_free(x);
    BIO_free(in);
    /* The issuer comes before the subject: the first "Intel SGX Root CA" is the issuer's. */
    unsigned char *hit = NULL;
    for (int i = 0; i + 17 <= n && hit == NULL; i++)
        if (memcmp(der + i, "Intel SGX Root CA", 17) == 0)
            hit = der + i;
    assert_non_null(hit);
    hit[10] = 'r'; /* "Root" -> "root" */
    const unsigned char *p = der;
    x = d2i_X509(NULL, &p, n);
    assert_non_null(x);
    BIO *out = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_X509(out, x), 1);
    char *text;
    long len = BIO_get_mem_data(out, &text);
    char *copy = strndup(text, (size_t)len);
    BIO_free(out);
    X509_free(x);
    OPENSSL_free(der);
    return copy;
}

static void expect_chain(const struct blob *q, const char *pem, const char *check)
{
    struct blob b = with_pck_chain(q, pem);
    struct cg_tdx_quote out;
    struct cg_tdx_status st;
    struct cg_verdict v;
    memset(&v, 0, sizeof(v));
    int rc = cg_tdx_verify(b.p, b.n, NULL, at("2023-07-01T01:00:00Z"), &out, &st, &v);
    if (check == NULL && rc != 0)
        fail_msg("want success, got %s (%s)", v.check, v.actual);
    if (check != NULL && (rc != CG_EEVIDENCE || strcmp(v.check, check) != 0))
        fail_msg("want %s, got %d %s (%s)", check, rc, v.check, v.actual);
    free(b.p);
}

/* The carried chain is leaf, CA and the pinned root byte for byte, nothing else. */
static void test_pck_chain_strict(void **state)
{
    (void)state;
    struct blob q = load_quote(GO "tdx_prod_quote_SPR_E4.dat");
    struct cg_tdx_quote parsed;
    struct cg_verdict v;
    assert_int_equal(cg_tdx_quote_parse(q.p, q.n, &parsed, &v), 0);
    char *chain = strndup(parsed.pck_chain, parsed.pck_chain_len);
    char *leaf = pem_cert(chain, 0), *ca = pem_cert(chain, 1), *root = pem_cert(chain, 2);
    struct blob tcb = load(GO "tcbsigning_issuer_chain.pem");
    char *other = pem_cert((const char *)tcb.p, 0);
    char *bad_root = issuer_byte_changed(root);
    char buf[16384];

    /* The chain as carried, rebuilt by the helper: verifies. Without the root: the pinned
     * one completes it. */
    snprintf(buf, sizeof(buf), "%s\n%s\n%s\n", leaf, ca, root);
    expect_chain(&q, buf, NULL);
    snprintf(buf, sizeof(buf), "%s\n%s\n", leaf, ca);
    expect_chain(&q, buf, NULL);
    /* A root that differs in one byte of its issuer (so not self-signed any more). */
    snprintf(buf, sizeof(buf), "%s\n%s\n%s\n", leaf, ca, bad_root);
    expect_chain(&q, buf, "tdx.pck_chain.root");
    /* A fourth certificate the chain does not use. */
    snprintf(buf, sizeof(buf), "%s\n%s\n%s\n%s\n", leaf, ca, root, other);
    expect_chain(&q, buf, "tdx.pck_chain.extra");
    /* The right certificates out of order. */
    snprintf(buf, sizeof(buf), "%s\n%s\n%s\n", leaf, root, ca);
    expect_chain(&q, buf, "tdx.pck_chain.order");

    free(bad_root);
    free(other);
    free(tcb.p);
    free(leaf);
    free(ca);
    free(root);
    free(chain);
    free(q.p);
}

/* ---- collateral ---------------------------------------------------------------------- */

static void test_trustee_collateral_out_of_date(void **state)
{
    (void)state;
    struct col c;
    col_load(&c, TR "tcbInfo.json", TR "enclaveIdentity.json", TR "tcb_signing_chain_2025.pem");
    struct blob b;
    struct cg_tdx_quote q;
    struct cg_tdx_status st;
    struct cg_verdict v;
    int rc = verify_file(TR "tdx_quote_6.dat", &c.c, "2025-11-01T00:00:00Z", &b, &q, &st, &v);
    if (rc != 0)
        fail_msg("%s: %s / %s", v.check, v.expected, v.actual);
    assert_int_equal(st.collateral, 1);
    assert_int_equal(st.platform_status, CG_TDX_TCB_OUT_OF_DATE);
    assert_int_equal(st.module_status, CG_TDX_TCB_UP_TO_DATE);
    assert_int_equal(st.qe_status, CG_TDX_TCB_UP_TO_DATE);
    assert_int_equal(st.tcb_status, CG_TDX_TCB_OUT_OF_DATE);
    assert_string_equal(st.tcb_date, "2018-01-04T00:00:00Z");
    assert_int_equal(st.tcb_evaluation_data_number, 17);
    assert_int_equal(st.n_advisories, 0);
    hex_eq(q.pck.fmspc, 6, "00a06d080000");
    free(b.p);

    /* The verification window is [2025-10-28T06:45:09Z, 2025-11-26T13:07:17Z). */
    expect_reject(TR "tdx_quote_6.dat", &c.c, "2025-11-27T00:00:00Z", "tdx.tcb_info.expired");
    expect_reject(TR "tdx_quote_6.dat", &c.c, "2025-10-27T00:00:00Z", "tdx.tcb_info.not_yet_valid");
    expect_reject(TR "tdx_quote_6.dat", &c.c, "2025-10-28T00:00:00Z",
                  "tdx.qe_identity.not_yet_valid");
    /* After the TCB signing cert's notAfter (2032-05-06), before the PCK's (2032-04-08)? No:
     * the PCK expires first, so its chain is what fails. */
    expect_reject(TR "tdx_quote_6.dat", &c.c, "2032-04-09T00:00:00Z", "tdx.pck_chain");
    col_free(&c);
}

/* Replaces the first occurrence of from by to (same length) in a blob. */
static void patch(struct blob *b, const char *from, const char *to)
{
    size_t n = strlen(from);
    assert_int_equal(strlen(to), n);
    for (size_t i = 0; i + n <= b->n; i++) {
        if (memcmp(b->p + i, from, n) == 0) {
            memcpy(b->p + i, to, n);
            return;
        }
    }
    fail_msg("%s not found", from);
}

/* Replaces the first occurrence of from by to (any length) in a collateral blob. */
static void replace(struct blob *b, const char *from, const char *to)
{
    size_t nf = strlen(from), nt = strlen(to);
    for (size_t i = 0; i + nf <= b->n; i++) {
        if (memcmp(b->p + i, from, nf) != 0)
            continue;
        uint8_t *p = malloc(b->n - nf + nt + 1);
        assert_non_null(p);
        memcpy(p, b->p, i);
        memcpy(p + i, to, nt);
        memcpy(p + i + nt, b->p + i + nf, b->n - i - nf + 1);
        free(b->p);
        b->p = p;
        b->n = b->n - nf + nt;
        return;
    }
    fail_msg("%s not found", from);
}

static void test_collateral_tampered(void **state)
{
    (void)state;
    const char *t = "2025-11-01T00:00:00Z";
    const char *qf = TR "tdx_quote_6.dat";
    struct col c;
    col_load(&c, TR "tcbInfo.json", TR "enclaveIdentity.json", TR "tcb_signing_chain_2025.pem");
    /* The second level's status rewritten: the signed bytes change. */
    patch(&c.tcb, "\"tcbStatus\":\"OutOfDate\"}]}", "\"tcbStatus\":\"UpToDate\"}] }");
    expect_reject(qf, &c.c, t, "tdx.tcb_info.signature");
    col_free(&c);

    col_load(&c, TR "tcbInfo.json", TR "enclaveIdentity.json", TR "tcb_signing_chain_2025.pem");
    patch(&c.tcb, "\"signature\":\"2b", "\"signature\":\"2c");
    expect_reject(qf, &c.c, t, "tdx.tcb_info.signature");
    col_free(&c);

    col_load(&c, TR "tcbInfo.json", TR "enclaveIdentity.json", TR "tcb_signing_chain_2025.pem");
    patch(&c.qe, "\"isvsvn\":4", "\"isvsvn\":9");
    expect_reject(qf, &c.c, t, "tdx.qe_identity.signature");
    col_free(&c);

    /* The signed bytes are the member as transmitted: whitespace around it changes nothing,
     * whitespace inside it breaks the signature although the JSON means the same. */
    col_load(&c, TR "tcbInfo.json", TR "enclaveIdentity.json", TR "tcb_signing_chain_2025.pem");
    replace(&c.tcb, "{\"tcbInfo\":", " {\n \"tcbInfo\" :\t");
    col_sync(&c);
    replace(&c.tcb, "},\"signature\"", "} , \"signature\"");
    col_sync(&c);
    expect_ok(qf, &c.c, t);
    replace(&c.tcb, "\"id\":\"TDX\"", "\"id\": \"TDX\"");
    col_sync(&c);
    expect_reject(qf, &c.c, t, "tdx.tcb_info.signature");
    col_free(&c);

    /* A second copy of the member, or any other member, is refused. */
    col_load(&c, TR "tcbInfo.json", TR "enclaveIdentity.json", TR "tcb_signing_chain_2025.pem");
    replace(&c.tcb, "{\"tcbInfo\":", "{\"tcbInfo\":{\"id\":\"TDX\"},\"tcbInfo\":");
    col_sync(&c);
    expect_reject(qf, &c.c, t, "tdx.tcb_info.json");
    col_free(&c);
    col_load(&c, TR "tcbInfo.json", TR "enclaveIdentity.json", TR "tcb_signing_chain_2025.pem");
    replace(&c.tcb, "{\"tcbInfo\":", "{\"x\":1,\"tcbInfo\":");
    col_sync(&c);
    expect_reject(qf, &c.c, t, "tdx.tcb_info.json");
    col_free(&c);

    /* Wrong signer: the PCK CRL issuer chain (Platform CA) instead of the TCB signing chain. */
    col_load(&c, TR "tcbInfo.json", TR "enclaveIdentity.json", GO "pckcrl_issuer_chain.pem");
    expect_reject(qf, &c.c, t, "tdx.tcb_chain.subject");
    col_free(&c);

    /* The old TCB signing cert expired on 2025-05-21. */
    col_load(&c, TR "tcbInfo.json", TR "enclaveIdentity.json", GO "tcbsigning_issuer_chain.pem");
    expect_reject(qf, &c.c, t, "tdx.tcb_chain");
    col_free(&c);

    /* Incomplete collateral. */
    col_load(&c, TR "tcbInfo.json", TR "enclaveIdentity.json", TR "tcb_signing_chain_2025.pem");
    c.c.qe_identity = NULL;
    expect_reject(qf, &c.c, t, "tdx.collateral");
    col_free(&c);
}

static void test_collateral_mismatch(void **state)
{
    (void)state;
    struct col c;
    /* SPR_E4 (FMSPC 50806f000000) against the FMSPC 00A06D080000 TCB info. */
    col_load(&c, TR "tcbInfo.json", TR "enclaveIdentity.json", TR "tcb_signing_chain_2025.pem");
    expect_reject(GO "tdx_prod_quote_SPR_E4.dat", &c.c, "2025-11-01T00:00:00Z",
                  "tdx.tcb_info.fmspc");
    col_free(&c);

    /* Manifest: SPR_E4 vs its own 2023 sample -> no TCB level matches (TCB not supported). */
    col_load(&c, GO "sample_tcbInfo_response", GO "sample_qeIdentity_response",
             GO "tcbsigning_issuer_chain.pem");
    expect_reject(GO "tdx_prod_quote_SPR_E4.dat", &c.c, "2023-07-01T01:00:00Z",
                  "tdx.tcb_info.tcb_level");
    /* Upstream TestNegativeObtainAndVerifyCollateral at 2053: the chain fails first here. */
    expect_reject(GO "tdx_prod_quote_SPR_E4.dat", &c.c, "2053-07-01T01:00:00Z", "tdx.pck_chain");
    col_free(&c);
}

static void test_v5_collateral(void **state)
{
    (void)state;
    struct col c;
    /*
     * sample_tcbinfo_response_v5 is valid 2026-02-01..03-03; the only QE identities stored
     * are from 2023 and 2025, so the QE identity is expired: platform and module statuses
     * are already decided when that check fails.
     */
    col_load(&c, GO "sample_tcbinfo_response_v5", GO "sample_qeIdentity_response",
             TR "tcb_signing_chain_2025.pem");
    struct blob b;
    struct cg_tdx_quote q;
    struct cg_tdx_status st;
    struct cg_verdict v;
    int rc = verify_file(GO "quote_v5_sample.dat", &c.c, "2026-02-03T01:00:00Z", &b, &q, &st, &v);
    assert_int_equal(rc, CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.qe_identity.expired");
    assert_int_equal(st.platform_status, CG_TDX_TCB_UP_TO_DATE);
    assert_string_equal(st.tcb_date, "2024-11-13T00:00:00Z");
    assert_int_equal(st.module_status, CG_TDX_TCB_UP_TO_DATE);
    assert_int_equal(st.collateral, 0);
    free(b.p);

    /*
     * trustee's v5 quote has the same FMSPC (90c06f000000) but PCK SGX components
     * 01 01 02 02 03 01 00 03 ..., below the 02 02 ... of every level of this TCB info:
     * TCB not supported.
     */
    int rc5 = verify_file(TR "tdx_quote_5.dat", &c.c, "2026-02-03T01:00:00Z", &b, &q, &st, &v);
    assert_int_equal(rc5, CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.tcb_info.tcb_level");
    hex_eq(q.pck.sgx_tcb, 8, "0101020203010003");
    free(b.p);
    col_free(&c);
}

/*
 * The content checks of TCB info and QE identity, which Intel's signatures put out of reach
 * of tampering tests: the signed objects of trustee's collateral, edited, are applied to
 * tdx_quote_6 through cg__tdx_apply_collateral() (the same code cg_tdx_verify() runs once
 * the signatures hold).
 */
struct edit {
    const char *from, *to;
};

/* The signed member's text of a PCS response file (malloc'd, NUL-terminated). */
static char *member_text(const char *rel, const char *member)
{
    struct blob b = load(rel);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "{\"%s\":", member);
    assert_memory_equal(b.p, prefix, strlen(prefix));
    char *end = NULL;
    for (char *p = strstr((char *)b.p, ",\"signature\""); p != NULL;
         p = strstr(p + 1, ",\"signature\""))
        end = p;
    assert_non_null(end);
    size_t n = (size_t)(end - (char *)b.p) - strlen(prefix);
    char *out = malloc(n + 1);
    assert_non_null(out);
    memcpy(out, b.p + strlen(prefix), n);
    out[n] = 0;
    free(b.p);
    return out;
}

static void edit_text(char **s, const struct edit *e)
{
    for (; e != NULL && e->from != NULL; e++) {
        struct blob b = {(uint8_t *)*s, strlen(*s)};
        replace(&b, e->from, e->to);
        *s = (char *)b.p;
    }
}

/* Applies the edited collateral to q; returns rc with st and v filled. */
static int apply_edited(const struct cg_tdx_quote *q, const struct edit *tcb_edits,
                        const struct edit *qe_edits, struct cg_tdx_status *st, struct cg_verdict *v)
{
    char *tcb = member_text(TR "tcbInfo.json", "tcbInfo");
    char *qe = member_text(TR "enclaveIdentity.json", "enclaveIdentity");
    edit_text(&tcb, tcb_edits);
    edit_text(&qe, qe_edits);
    memset(st, 0, sizeof(*st));
    memset(v, 0, sizeof(*v));
    int rc = cg__tdx_apply_collateral(tcb, strlen(tcb), qe, strlen(qe), q,
                                      at("2025-11-01T00:00:00Z"), st, v);
    free(tcb);
    free(qe);
    return rc;
}

#define Z96                                                                                        \
    "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"   \
    "000000"
#define LEVEL_2018 "\"tcbDate\":\"2018-01-04T00:00:00Z\",\"tcbStatus\":\"OutOfDate\""
#define TDX03_LEVEL "\"isvsvn\":3},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":\"UpToDate\""

static void test_collateral_checks(void **state)
{
    (void)state;
    struct blob b;
    struct cg_tdx_quote q;
    struct cg_tdx_status st;
    struct cg_verdict v;
    assert_int_equal(
        verify_file(TR "tdx_quote_6.dat", NULL, "2025-11-01T00:00:00Z", &b, &q, &st, &v), 0);

    /* Unedited: the same result as through the signatures. */
    assert_int_equal(apply_edited(&q, NULL, NULL, &st, &v), 0);
    assert_int_equal(st.tcb_status, CG_TDX_TCB_OUT_OF_DATE);

    struct {
        struct edit tcb[3], qe[2];
        const char *check;
    } bad[] = {
        {{{"\"id\":\"TDX\"", "\"id\":\"SGX\""}}, {{0}}, "tdx.tcb_info.id"},
        {{{"\"version\":3", "\"version\":2"}}, {{0}}, "tdx.tcb_info.version"},
        {{{"\"pceId\":\"0000\"", "\"pceId\":\"0001\""}}, {{0}}, "tdx.tcb_info.pceid"},
        {{{"\"fmspc\":\"00A06D080000\"", "\"fmspc\":\"00A06D080001\""}},
         {{0}},
         "tdx.tcb_info.fmspc"},
        {{{"\"tcbType\":0", "\"tcbType\":1"}}, {{0}}, "tdx.tcb_info.json"},
        {{{"\"issueDate\":\"2025-10-27T13:07:17Z\"", "\"issueDate\":\"2025-10-27\""}},
         {{0}},
         "tdx.tcb_info.dates"},
        /* PCESVN 11 below both levels (13, then 12): TCB not supported. */
        {{{"\"pcesvn\":5,", "\"pcesvn\":12,"}}, {{0}}, "tdx.tcb_info.tcb_level"},
        {{{LEVEL_2018, "\"tcbDate\":\"2018-01-04T00:00:00Z\",\"tcbStatus\":\"Fine\""}},
         {{0}},
         "tdx.tcb_info.tcb_level"},
        {{{"{\"svn\":0}]}", "{\"svn\":0},{\"svn\":0}]}"}}, {{0}}, "tdx.tcb_info.tcb_level"},
        /* TDX module: TEE_TCB_SVN 05 03 -> TDX_03, isvsvn 5. */
        {{{"\"id\":\"TDX_03\"", "\"id\":\"TDX_04\""}}, {{0}}, "tdx.tdx_module.identity"},
        {{{"\"id\":\"TDX_03\",\"mrsigner\":\"00", "\"id\":\"TDX_03\",\"mrsigner\":\"01"}},
         {{0}},
         "tdx.tdx_module.mrsigner"},
        {{{"\"id\":\"TDX_03\",\"mrsigner\":\"" Z96 "\",\"attributes\":\"00",
           "\"id\":\"TDX_03\",\"mrsigner\":\"" Z96 "\",\"attributes\":\"01"}},
         {{0}},
         "tdx.tdx_module.attributes"},
        {{{"\"isvsvn\":3}", "\"isvsvn\":6}"}}, {{0}}, "tdx.tdx_module.tcb"},
        /* QE identity: QE ISVSVN 7, ISVPRODID 2. */
        {{{0}}, {{"\"id\":\"TD_QE\"", "\"id\":\"QE\""}}, "tdx.qe_identity.id"},
        {{{0}}, {{"\"version\":2", "\"version\":1"}}, "tdx.qe_identity.version"},
        {{{0}}, {{"\"mrsigner\":\"DC9E", "\"mrsigner\":\"DC9F"}}, "tdx.qe_identity.mrsigner"},
        {{{0}}, {{"\"isvprodid\":2", "\"isvprodid\":3"}}, "tdx.qe_identity.isvprodid"},
        {{{0}},
         {{"\"miscselect\":\"00000000\"", "\"miscselect\":\"00000001\""}},
         "tdx.qe_identity.miscselect"},
        {{{0}}, {{"\"attributes\":\"11", "\"attributes\":\"13"}}, "tdx.qe_identity.attributes"},
        {{{0}}, {{"\"isvsvn\":4", "\"isvsvn\":8"}}, "tdx.qe_identity.tcb"},
        {{{0}},
         {{"\"nextUpdate\":\"2025-11-27T06:45:09Z\"", "\"nextUpdate\":\"2025-10-30T00:00:00Z\""}},
         "tdx.qe_identity.expired"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = apply_edited(&q, bad[i].tcb, bad[i].qe, &st, &v);
        if (rc != CG_EEVIDENCE || strcmp(v.check, bad[i].check) != 0)
            fail_msg("case %zu: rc %d check %s (%s), want %s", i, rc, v.check, v.actual,
                     bad[i].check);
    }

    /* Platform level choice and merging of statuses. */
    struct edit up[] = {{"\"pcesvn\":13", "\"pcesvn\":11"}, {0}};
    assert_int_equal(apply_edited(&q, up, NULL, &st, &v), 0);
    assert_int_equal(st.platform_status, CG_TDX_TCB_UP_TO_DATE);
    assert_int_equal(st.tcb_status, CG_TDX_TCB_UP_TO_DATE);
    assert_string_equal(st.tcb_date, "2024-03-13T00:00:00Z");

    /* TDX component 0 (module SVN) is the module identity's to grade at major version 3. */
    struct edit skip0[] = {
        {"\"pcesvn\":13", "\"pcesvn\":11"},
        {"\"tdxtcbcomponents\":[{\"svn\":5,", "\"tdxtcbcomponents\":[{\"svn\":9,"},
        {0}};
    assert_int_equal(apply_edited(&q, skip0, NULL, &st, &v), 0);
    assert_int_equal(st.platform_status, CG_TDX_TCB_UP_TO_DATE);
    /* Component 2 is the platform's: the first level is missed, the second matches. */
    struct edit miss2[] = {
        {"\"pcesvn\":13", "\"pcesvn\":11"},
        {"\"svn\":2,\"category\":\"OS/VMM\",\"type\":\"TDX Late Microcode Update\"",
         "\"svn\":3,\"category\":\"OS/VMM\",\"type\":\"TDX Late Microcode Update\""},
        {0}};
    assert_int_equal(apply_edited(&q, miss2, NULL, &st, &v), 0);
    assert_int_equal(st.platform_status, CG_TDX_TCB_OUT_OF_DATE);
    assert_string_equal(st.tcb_date, "2018-01-04T00:00:00Z");

    /* Module identity ids match case-insensitively (QVL findTdxModuleIdentity). */
    struct edit lower[] = {{"\"id\":\"TDX_03\"", "\"id\":\"tdx_03\""}, {0}};
    assert_int_equal(apply_edited(&q, lower, NULL, &st, &v), 0);
    assert_int_equal(st.module_status, CG_TDX_TCB_UP_TO_DATE);

    struct edit revoked[] = {
        {LEVEL_2018, "\"tcbDate\":\"2018-01-04T00:00:00Z\",\"tcbStatus\":\"Revoked\""}, {0}};
    assert_int_equal(apply_edited(&q, revoked, NULL, &st, &v), 0);
    assert_int_equal(st.tcb_status, CG_TDX_TCB_REVOKED);

    struct edit conf_ood[] = {
        {LEVEL_2018, "\"tcbDate\":\"2018-01-04T00:00:00Z\",\"tcbStatus\":\"ConfigurationNeeded\""},
        {TDX03_LEVEL, "\"isvsvn\":3},\"tcbDate\":\"2024-03-13T00:00:00Z\",\"tcbStatus\":"
                      "\"OutOfDate\""},
        {0}};
    assert_int_equal(apply_edited(&q, conf_ood, NULL, &st, &v), 0);
    assert_int_equal(st.platform_status, CG_TDX_TCB_CONFIGURATION_NEEDED);
    assert_int_equal(st.module_status, CG_TDX_TCB_OUT_OF_DATE);
    assert_int_equal(st.tcb_status, CG_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED);

    struct edit qe_swh[] = {{"\"tcbStatus\":\"UpToDate\"", "\"tcbStatus\":\"SWHardeningNeeded\""},
                            {0}};
    assert_int_equal(apply_edited(&q, up, qe_swh, &st, &v), 0);
    assert_int_equal(st.qe_status, CG_TDX_TCB_SW_HARDENING_NEEDED);
    assert_int_equal(st.tcb_status, CG_TDX_TCB_SW_HARDENING_NEEDED);

    /* Advisory IDs of every matching level, each once. */
    struct edit adv[] = {{LEVEL_2018, LEVEL_2018 ",\"advisoryIDs\":[\"INTEL-SA-00001\","
                                                 "\"INTEL-SA-00002\"]"},
                         {0}};
    struct edit qe_adv[] = {{"\"tcbStatus\":\"UpToDate\"", "\"tcbStatus\":\"UpToDate\","
                                                           "\"advisoryIDs\":[\"INTEL-SA-00002\","
                                                           "\"INTEL-SA-00003\"]"},
                            {0}};
    assert_int_equal(apply_edited(&q, adv, qe_adv, &st, &v), 0);
    assert_int_equal(st.n_advisories, 3);
    assert_string_equal(st.advisories[0], "INTEL-SA-00001");
    assert_string_equal(st.advisories[1], "INTEL-SA-00002");
    assert_string_equal(st.advisories[2], "INTEL-SA-00003");

    assert_int_equal(cg__tdx_apply_collateral("[]", 2, "{}", 2, &q, 0, &st, &v), CG_ECONFIG);
    free(b.p);
}

/* Endorsement blobs in any order are sorted into collateral that verifies as the files do. */
static void test_collateral_from_blobs(void **state)
{
    (void)state;
    struct blob files[5] = {load(GO "rootcrl.der"), load(TR "enclaveIdentity.json"),
                            load(TR "tcb_signing_chain_2025.pem"), load(TR "tcbInfo.json"),
                            load(GO "pckcrl")};
    const uint8_t *blobs[6];
    size_t lens[6];
    for (size_t i = 0; i < 5; i++) {
        blobs[i] = files[i].p;
        lens[i] = files[i].n;
    }
    struct cg_tdx_collateral col;
    struct cg_verdict v;
    assert_int_equal(cg_tdx_collateral_from_blobs(blobs, lens, 5, &col, &v), 0);
    assert_ptr_equal(col.tcb_info, files[3].p);
    assert_ptr_equal(col.qe_identity, files[1].p);
    assert_ptr_equal(col.tcb_chain, files[2].p);
    assert_int_equal(col.n_crls, 2);
    assert_ptr_equal(col.crls[0], files[0].p);
    assert_ptr_equal(col.crls[1], files[4].p);

    /* Without the CRLs (they are not from the quote's time), quote 6 verifies. */
    assert_int_equal(cg_tdx_collateral_from_blobs(blobs + 1, lens + 1, 3, &col, &v), 0);
    struct blob b;
    struct cg_tdx_quote q;
    struct cg_tdx_status st;
    assert_int_equal(
        verify_file(TR "tdx_quote_6.dat", &col, "2025-11-01T00:00:00Z", &b, &q, &st, &v), 0);
    assert_int_equal(st.tcb_status, CG_TDX_TCB_OUT_OF_DATE);
    free(b.p);

    /* A second TCB info, or something else entirely. */
    blobs[5] = files[3].p;
    lens[5] = files[3].n;
    assert_int_equal(cg_tdx_collateral_from_blobs(blobs, lens, 6, &col, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.collateral");
    static const uint8_t junk[] = "{\"other\":1}";
    blobs[5] = junk;
    lens[5] = sizeof(junk) - 1;
    assert_int_equal(cg_tdx_collateral_from_blobs(blobs, lens, 6, &col, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "tdx.collateral");
    for (size_t i = 0; i < 5; i++)
        free(files[i].p);
}

/* ---- policy -------------------------------------------------------------------------- */

static int policy_from(const char *text, struct cg_tdx_policy *p, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (j == NULL)
        fail_msg("bad test JSON: %s", je.text);
    int rc = cg_tdx_policy_parse(j, p, err, errlen);
    json_decref(j);
    return rc;
}

static void test_policy_parse(void **state)
{
    (void)state;
    struct cg_tdx_policy p;
    char err[256];
    assert_int_equal(policy_from("{}", &p, err, sizeof(err)), 0);
    assert_int_equal(p.allow_debug, 0);
    assert_int_equal(p.require_sept_ve_disable, 1);
    assert_int_equal(p.require_crls, 1);
    assert_int_equal(p.accepted_tcb, 1u << CG_TDX_TCB_UP_TO_DATE);
    struct {
        const char *json, *err;
    } bad[] = {
        {"{\"colour\":1}", "tdx.colour: unknown key"},
        {"{\"mrtd\":\"00\"}", "tdx.mrtd: expected 96 hex digits"},
        {"{\"mrtd\":[]}", "tdx.mrtd: expected a hex string or a non-empty array"},
        {"{\"rtmr4\":\"00\"}", "tdx.rtmr4: unknown key"},
        {"{\"rtmr1\":[1]}", "tdx.rtmr1[0]: expected 96 hex digits"},
        {"{\"allow_debug\":1}", "tdx.allow_debug: expected true or false"},
        {"{\"require_crls\":null}", "tdx.require_crls: expected true or false"},
        {"{\"xfam\":\"e71a06\"}", "tdx.xfam: expected 16 hex digits"},
        {"{\"accepted_tcb_statuses\":[\"Fine\"]}", "tdx.accepted_tcb_statuses[0]: unknown status"},
        {"{\"accepted_tcb_statuses\":[\"UpToDate\",\"Revoked\"]}",
         "tdx.accepted_tcb_statuses[1]: Revoked is never acceptable"},
        {"{\"accepted_tcb_statuses\":[]}", "tdx.accepted_tcb_statuses: expected a non-empty array"},
        {"[]", "tdx: expected an object"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = 0;
        assert_int_equal(policy_from(bad[i].json, &p, err, sizeof(err)), CG_ECONFIG);
        assert_string_equal(err, bad[i].err);
    }
}

/* tdx_quote_6 with its collateral: the base for the policy cases. */
struct fixture {
    struct blob b;
    struct cg_tdx_quote q;
    struct cg_tdx_status st;
};

static void fixture_q6(struct fixture *f)
{
    struct col c;
    struct cg_verdict v;
    col_load(&c, TR "tcbInfo.json", TR "enclaveIdentity.json", TR "tcb_signing_chain_2025.pem");
    assert_int_equal(
        verify_file(TR "tdx_quote_6.dat", &c.c, "2025-11-01T00:00:00Z", &f->b, &f->q, &f->st, &v),
        0);
    col_free(&c);
}

static void appraise_expect(const struct fixture *f, const char *policy, const char *check)
{
    struct cg_tdx_policy p;
    struct cg_verdict v;
    char err[256];
    if (policy_from(policy, &p, err, sizeof(err)) != 0)
        fail_msg("policy %s: %s", policy, err);
    memset(&v, 0, sizeof(v));
    int rc = cg_tdx_appraise(&p, &f->q, &f->st, &v);
    if (check == NULL) {
        if (rc != 0)
            fail_msg("%s: rejected by %s (%s vs %s)", policy, v.check, v.expected, v.actual);
    } else {
        assert_int_equal(rc, CG_EPOLICY);
        if (strcmp(v.check, check) != 0)
            fail_msg("%s: got %s, want %s", policy, v.check, check);
    }
}

#define Q6_MRTD                                                                                    \
    "21e8dead92d6c69d7cbba79816686c03a48485c7df0c11f6f04792d5e1d378f6b8c46615ba6946adccac6becffbb" \
    "1e88"
#define Q6_OK "\"accepted_tcb_statuses\":[\"UpToDate\",\"OutOfDate\"],\"require_crls\":false"
#define OTHER48                                                                                    \
    "110000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"   \
    "000000"

static void test_policy_fields(void **state)
{
    (void)state;
    struct fixture f;
    char hex[97], json[2048];
    fixture_q6(&f);
    /* Default policy: no CRLs were given; OutOfDate is not accepted. */
    appraise_expect(&f, "{}", "tdx.crls");
    appraise_expect(&f, "{\"require_crls\":false}", "tdx.tcb_status");
    appraise_expect(&f, "{" Q6_OK "}", NULL);
    appraise_expect(&f, "{\"mrtd\":[\"" OTHER48 "\",\"" Q6_MRTD "\"]," Q6_OK "}", NULL);
    appraise_expect(&f, "{\"mrtd\":\"" OTHER48 "\"," Q6_OK "}", "tdx.mrtd");

    /* Each 48-byte field: its true value passes, another fails with its own check. */
    struct {
        const char *key;
        const uint8_t *val;
    } fields[] = {
        {"rtmr0", f.q.rtmr[0]},           {"rtmr1", f.q.rtmr[1]},
        {"rtmr2", f.q.rtmr[2]},           {"rtmr3", f.q.rtmr[3]},
        {"mrseam", f.q.mrseam},           {"mrconfigid", f.q.mrconfigid},
        {"mrowner", f.q.mrowner},         {"mrownerconfig", f.q.mrownerconfig},
        {"mrservicetd", f.q.mrservicetd},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        char check[32];
        cg_hex(hex, sizeof(hex), fields[i].val, 48);
        snprintf(json, sizeof(json), "{\"%s\":\"%s\"," Q6_OK "}", fields[i].key, hex);
        appraise_expect(&f, json, NULL);
        hex[0] = hex[0] == 'f' ? 'e' : 'f';
        snprintf(json, sizeof(json), "{\"%s\":\"%s\"," Q6_OK "}", fields[i].key, hex);
        snprintf(check, sizeof(check), "tdx.%s", fields[i].key);
        appraise_expect(&f, json, check);
    }

    /* XFAM, as the quote's bytes. */
    uint8_t x[8];
    for (int i = 0; i < 8; i++)
        x[i] = (uint8_t)(f.q.xfam >> (8 * i));
    cg_hex(hex, sizeof(hex), x, 8);
    snprintf(json, sizeof(json), "{\"xfam\":\"%s\"," Q6_OK "}", hex);
    appraise_expect(&f, json, NULL);
    appraise_expect(&f, "{\"xfam\":\"0000000000000000\"," Q6_OK "}", "tdx.xfam");

    /* MRSERVICETD absent from the policy: it must be zero. */
    f.q.mrservicetd[5] = 1;
    appraise_expect(&f, "{" Q6_OK "}", "tdx.mrservicetd");
    f.q.mrservicetd[5] = 0;

    /* Attribute bits on the parsed quote (appraisal never re-reads the quote). */
    uint64_t attr = f.q.td_attributes;
    f.q.td_attributes = attr | (1ull << 5);
    appraise_expect(&f, "{" Q6_OK "}", "tdx.attributes.reserved");
    f.q.td_attributes = attr & ~CG_TDX_ATTR_SEPT_VE_DISABLE;
    appraise_expect(&f, "{" Q6_OK "}", "tdx.attributes.sept_ve_disable");
    appraise_expect(&f, "{\"require_sept_ve_disable\":false," Q6_OK "}", NULL);
    f.q.td_attributes = attr;

    /* A Revoked status can never pass, whatever the list says. */
    f.st.tcb_status = CG_TDX_TCB_REVOKED;
    appraise_expect(&f,
                    "{\"accepted_tcb_statuses\":[\"UpToDate\",\"SWHardeningNeeded\","
                    "\"ConfigurationNeeded\",\"ConfigurationAndSWHardeningNeeded\",\"OutOfDate\","
                    "\"OutOfDateConfigurationNeeded\"],\"require_crls\":false}",
                    "tdx.tcb_status");
    free(f.b.p);
}

static void test_policy_debug_td(void **state)
{
    (void)state;
    struct fixture f;
    struct cg_verdict v;
    /* trustee tdx_quote_4: signatures and chain pass; it is a debug TD. */
    assert_int_equal(
        verify_file(TR "tdx_quote_4.dat", NULL, "2024-06-24T00:00:00Z", &f.b, &f.q, &f.st, &v), 0);
    assert_int_equal(f.q.td_attributes, 0x10000001);
    appraise_expect(&f, "{}", "tdx.attributes.debug");
    /* Allowing debug, it passes the attributes and stops at the (unevaluated) TCB status. */
    appraise_expect(&f, "{\"allow_debug\":true,\"require_crls\":false}", "tdx.tcb_status");
    /* A policy that accepts NotEvaluated explicitly lets the quote without collateral pass. */
    appraise_expect(&f,
                    "{\"allow_debug\":true,\"require_crls\":false,"
                    "\"accepted_tcb_statuses\":[\"UpToDate\",\"NotEvaluated\"]}",
                    NULL);
    /* ... and only that: with collateral evaluated to OutOfDate it still fails. */
    f.st.tcb_status = CG_TDX_TCB_OUT_OF_DATE;
    appraise_expect(&f,
                    "{\"allow_debug\":true,\"require_crls\":false,"
                    "\"accepted_tcb_statuses\":[\"NotEvaluated\"]}",
                    "tdx.tcb_status");
    free(f.b.p);

    /* SPR_E4 has SEPT_VE_DISABLE = 0: the default policy rejects it (manifest note). */
    assert_int_equal(verify_file(GO "tdx_prod_quote_SPR_E4.dat", NULL, "2023-07-01T01:00:00Z", &f.b,
                                 &f.q, &f.st, &v),
                     0);
    appraise_expect(&f, "{}", "tdx.attributes.sept_ve_disable");
    free(f.b.p);
}

/* require_crls: both Intel CRLs applied to SPR_E4 (no TCB info matches it, so its status is
 * set by hand: this case is about the CRL requirement alone). */
static void test_policy_crls(void **state)
{
    (void)state;
    struct fixture f;
    struct cg_verdict v;
    struct col c;
    const char *pol = "{\"require_sept_ve_disable\":false}";
    col_load(&c, NULL, NULL, NULL);
    col_add_crl(&c, GO "pckcrl");
    assert_int_equal(verify_file(GO "tdx_prod_quote_SPR_E4.dat", &c.c, "2023-07-01T01:00:00Z", &f.b,
                                 &f.q, &f.st, &v),
                     0);
    f.st.tcb_status = CG_TDX_TCB_UP_TO_DATE;
    assert_int_equal(f.st.pck_crl, 1);
    assert_int_equal(f.st.root_crl, 0);
    appraise_expect(&f, pol, "tdx.crls");
    free(f.b.p);
    col_add_crl(&c, GO "rootcrl.der");
    assert_int_equal(verify_file(GO "tdx_prod_quote_SPR_E4.dat", &c.c, "2023-07-01T01:00:00Z", &f.b,
                                 &f.q, &f.st, &v),
                     0);
    f.st.tcb_status = CG_TDX_TCB_UP_TO_DATE;
    appraise_expect(&f, pol, NULL);
    free(f.b.p);
    col_free(&c);
}

static void test_status_names(void **state)
{
    (void)state;
    enum cg_tdx_tcb_status s;
    for (unsigned i = CG_TDX_TCB_UP_TO_DATE; i <= CG_TDX_TCB_REVOKED; i++) {
        assert_int_equal(cg_tdx_tcb_status_parse(cg_tdx_tcb_status_name(i), &s), 0);
        assert_int_equal(s, i);
    }
    assert_int_equal(cg_tdx_tcb_status_parse("NotEvaluated", &s), CG_ECONFIG);
    time_t t;
    assert_int_equal(cg_tdx_time_parse("2025-11-26T13:07:17Z", &t), 0);
    assert_int_equal(t, 1764162437);
    assert_int_equal(cg_tdx_time_parse("2025-11-26T13:07:17", &t), CG_ECONFIG);
    assert_int_equal(cg_tdx_time_parse("2025-11-26 13:07:17Z", &t), CG_ECONFIG);
    assert_int_equal(cg_tdx_time_parse("2025-13-26T13:07:17Z", &t), CG_ECONFIG);
    assert_int_equal(cg_tdx_time_parse("+025-11-26T13:07:17Z", &t), CG_ECONFIG);
    assert_int_equal(cg_tdx_time_parse("2025-02-31T00:00:00Z", &t), CG_ECONFIG);
    assert_int_equal(cg_tdx_time_parse("2024-02-29T00:00:00Z", &t), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_root_pinned),
        cmocka_unit_test(test_parse_spr_e4_fields),
        cmocka_unit_test(test_parse_v5_fields),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_parse_fields_rejected),
        cmocka_unit_test(test_genuine_quotes_verify),
        cmocka_unit_test(test_pck_fields),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_pck_chain_strict),
        cmocka_unit_test(test_tampered_vectors),
        cmocka_unit_test(test_negative_mutations),
        cmocka_unit_test(test_pck_time),
        cmocka_unit_test(test_crls),
        cmocka_unit_test(test_crl_unknown_issuer),
        cmocka_unit_test(test_crl_revocation),
        cmocka_unit_test(test_trustee_collateral_out_of_date),
        cmocka_unit_test(test_collateral_tampered),
        cmocka_unit_test(test_collateral_mismatch),
        cmocka_unit_test(test_v5_collateral),
        cmocka_unit_test(test_collateral_checks),
        cmocka_unit_test(test_collateral_from_blobs),
        cmocka_unit_test(test_policy_parse),
        cmocka_unit_test(test_policy_fields),
        cmocka_unit_test(test_policy_debug_td),
        cmocka_unit_test(test_policy_crls),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
