#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ccgate/cbor.h"
#include "ccgate/evidence.h"
#include "ccgate/policy.h"
#include "ccgate/ratls.h"
#include "ccgate/sim.h"
#include "ccgate/tdx.h"

/* One sim state for the whole binary: creating its RSA-4096 ARK and ASK takes seconds. */
static struct {
    char dir[64];
    uint8_t ark[32];
    uint8_t measurement[48];
    struct cg_provider *prov;
    struct cg_ratls_key *key, *other_key;
} F;

static const char *measured_file(void)
{
    return CG_SOURCE_DIR "/CMakeLists.txt";
}

static void sha384_file(const char *path, uint8_t out[48])
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestInit_ex(md, EVP_sha384(), NULL), 1);
    uint8_t buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        assert_int_equal(EVP_DigestUpdate(md, buf, n), 1);
    assert_int_equal(EVP_DigestFinal_ex(md, out, NULL), 1);
    EVP_MD_CTX_free(md);
    fclose(f);
}

static void sha256(const uint8_t *d, size_t n, uint8_t out[32])
{
    assert_int_equal(EVP_Digest(d, n, out, NULL, EVP_sha256(), NULL), 1);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    snprintf(F.dir, sizeof(F.dir), "/tmp/cg-test-ratls-XXXXXX");
    if (mkdtemp(F.dir) == NULL)
        return -1;
    if (cg_sim_init(F.dir, F.ark) != 0 || cg_sim_provider_new(F.dir, measured_file(), &F.prov) != 0)
        return -1;
    sha384_file(measured_file(), F.measurement);
    if (cg_ratls_key_new(&F.key) != 0 || cg_ratls_key_new(&F.other_key) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (F.prov != NULL)
        F.prov->free(F.prov);
    cg_ratls_key_free(F.key);
    cg_ratls_key_free(F.other_key);
    return nftw(F.dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A policy that accepts this binary's sim TEE and measured file (and, having an snp
 * section, real SNP evidence of that measurement). */
static void sim_policy(struct cg_policy *p)
{
    char ark[65], meas[97], json[1024], err[256];
    cg_hex(ark, sizeof(ark), F.ark, 32);
    cg_hex(meas, sizeof(meas), F.measurement, 48);
    snprintf(json, sizeof(json),
             "{\"sim\": {\"allow\": true, \"root_sha256\": \"%s\"},"
             " \"snp\": {\"measurements\": [\"%s\"]}}",
             ark, meas);
    if (cg_policy_parse(json, strlen(json), p, err, sizeof(err)) != 0)
        fail_msg("policy: %s", err);
    assert_int_equal(p->freshness.mode, CG_FRESH_NONCE);
    assert_int_equal(p->freshness.max_age_s, 600);
}

struct spec {
    const struct cg_ratls_key *claims_key; /* default: the certificate's key */
    const uint8_t *nonce;                  /* one nonce in the claims, or none */
    int64_t iat;
    int corrupt_report_data;
    uint32_t tag; /* default: what the provider says */
};

static void make_cert(const struct cg_ratls_key *key, const struct spec *s, uint8_t **der,
                      size_t *der_len)
{
    uint8_t *claims = NULL;
    size_t claims_len = 0;
    uint8_t rd[CG_REPORT_DATA_LEN];
    const uint8_t(*nonces)[CG_NONCE_LEN] = (const uint8_t(*)[CG_NONCE_LEN])s->nonce;
    assert_int_equal(cg_ratls_claims(s->claims_key ? s->claims_key : key, nonces,
                                     s->nonce != NULL ? 1 : 0, s->iat, &claims, &claims_len, rd),
                     0);
    if (s->corrupt_report_data)
        rd[0] ^= 1;
    struct cg_evidence ev = {0};
    assert_int_equal(F.prov->get(F.prov, rd, &ev), 0);
    if (s->tag != 0)
        ev.tag = s->tag;
    assert_int_equal(cg_ratls_cert_new(key, claims, claims_len, &ev, s->iat, 3600, der, der_len),
                     0);
    cg_evidence_clear(&ev);
    free(claims);
}

static int verify(const uint8_t *der, size_t len, const struct cg_policy *p, const uint8_t *nonce,
                  struct cg_attestation *att, struct cg_verdict *v)
{
    memset(v, 0, sizeof(*v));
    return cg_ratls_verify(der, len, p, nonce, time(NULL), att, v);
}

static void expect_reject(const uint8_t *der, size_t len, const struct cg_policy *p,
                          const uint8_t *nonce, int rc, const char *check)
{
    struct cg_attestation att;
    struct cg_verdict v;
    int got = verify(der, len, p, nonce, &att, &v);
    if (got != rc || strcmp(v.check, check) != 0)
        fail_msg("want %d %s, got %d %s (expected %s, actual %s)", rc, check, got, v.check,
                 v.expected, v.actual);
    assert_int_equal(att.tag, 0); /* nothing learnt from a rejected certificate */
}

static const uint8_t NONCE[CG_NONCE_LEN] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

static void test_claims_binding(void **state)
{
    (void)state;
    uint8_t *claims = NULL;
    size_t len = 0;
    uint8_t rd[CG_REPORT_DATA_LEN], want[32], spki[32];
    assert_int_equal(cg_ratls_claims(F.key, &NONCE, 1, 1234, &claims, &len, rd), 0);
    sha256(claims, len, want);
    assert_memory_equal(rd, want, 32);
    for (int i = 32; i < CG_REPORT_DATA_LEN; i++)
        assert_int_equal(rd[i], 0);
    struct cg_claims c;
    assert_int_equal(cg_claims_decode(claims, len, &c), 0);
    cg_ratls_key_spki_hash(F.key, spki);
    assert_memory_equal(c.pubkey_hash, spki, 32);
    assert_int_equal(c.n_nonces, 1);
    assert_memory_equal(c.nonces[0], NONCE, CG_NONCE_LEN);
    assert_int_equal(c.iat, 1234);
    free(claims);

    /* The SPKI hash is over the DER SubjectPublicKeyInfo. */
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(cg__ratls_key_pkey(F.key), &der);
    assert_true(n > 0);
    sha256(der, (size_t)n, want);
    OPENSSL_free(der);
    assert_memory_equal(spki, want, 32);
}

static void test_cert_shape(void **state)
{
    (void)state;
    time_t now = time(NULL);
    struct spec s = {.nonce = NONCE, .iat = now};
    uint8_t *der;
    size_t len;
    make_cert(F.key, &s, &der, &len);
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    assert_int_equal(X509_get_version(x), X509_VERSION_3);
    char cn[64];
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) > 0);
    assert_string_equal(cn, "ccgate-server");
    assert_int_equal(X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)), 0);
    assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &(time_t){now - 61}), 1);
    assert_int_equal(X509_cmp_time(X509_get0_notBefore(x), &(time_t){now - 59}), -1);
    assert_int_equal(X509_cmp_time(X509_get0_notAfter(x), &(time_t){now + 3599}), 1);
    const ASN1_INTEGER *serial = X509_get0_serialNumber(x);
    assert_true(ASN1_STRING_length(serial) >= 8);
    const char *oids[] = {CG_OID_CMW, CG_OID_ENDORSEMENTS};
    for (int i = 0; i < 2; i++) {
        ASN1_OBJECT *obj = OBJ_txt2obj(oids[i], 1);
        int at = X509_get_ext_by_OBJ(x, obj, -1);
        assert_true(at >= 0);
        assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(x, at)), 0);
        ASN1_OBJECT_free(obj);
    }
    X509_free(x);

    /* Two certificates never share a serial. */
    uint8_t *der2;
    size_t len2;
    make_cert(F.key, &s, &der2, &len2);
    p = der2;
    X509 *y = d2i_X509(NULL, &p, (long)len2);
    p = der;
    x = d2i_X509(NULL, &p, (long)len);
    assert_int_not_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(x), X509_get0_serialNumber(y)), 0);
    X509_free(x);
    X509_free(y);
    free(der);
    free(der2);
}

static void test_verify_nonce(void **state)
{
    (void)state;
    struct cg_policy p;
    sim_policy(&p);
    struct spec s = {.nonce = NONCE, .iat = time(NULL)};
    uint8_t *der;
    size_t len;
    make_cert(F.key, &s, &der, &len);
    struct cg_attestation att;
    struct cg_verdict v;
    int rc = verify(der, len, &p, NONCE, &att, &v);
    if (rc != 0)
        fail_msg("%s: expected %s, actual %s", v.check, v.expected, v.actual);
    uint8_t want[32];
    assert_int_equal(att.tag, CG_TAG_SIM);
    assert_string_equal(cg_ratls_tee_name(att.tag), "sim");
    assert_true(att.insecure);
    assert_true(att.nonce_matched);
    sha256(der, len, want);
    assert_memory_equal(att.cert_sha256, want, 32);
    cg_ratls_key_spki_hash(F.key, want);
    assert_memory_equal(att.spki_sha256, want, 32);
    assert_int_equal(att.iat, s.iat);
    assert_memory_equal(att.snp.measurement, F.measurement, 48);

    /* One byte less, one byte more: not one certificate. */
    expect_reject(der, len - 1, &p, NONCE, CG_EEVIDENCE, "cert.parse");
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    expect_reject(longer, len + 1, &p, NONCE, CG_EEVIDENCE, "cert.parse");
    free(longer);

    /* Another client's nonce. */
    uint8_t other[CG_NONCE_LEN] = {9};
    expect_reject(der, len, &p, other, CG_EEVIDENCE, "freshness.nonce");
    free(der);
}

static void test_verify_max_age(void **state)
{
    (void)state;
    struct cg_policy p;
    sim_policy(&p);
    p.freshness.mode = CG_FRESH_MAX_AGE;
    uint8_t *der;
    size_t len;
    struct spec s = {.iat = time(NULL) - 10};
    make_cert(F.key, &s, &der, &len);
    struct cg_attestation att;
    struct cg_verdict v;
    assert_int_equal(verify(der, len, &p, NULL, &att, &v), 0);
    assert_false(att.nonce_matched);
    /* A nonce the claims do not hold. */
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "freshness.nonce");
    free(der);

    s.iat = time(NULL) - 601;
    make_cert(F.key, &s, &der, &len);
    expect_reject(der, len, &p, NULL, CG_EEVIDENCE, "freshness.age");
    free(der);

    s.iat = time(NULL) + 3600;
    make_cert(F.key, &s, &der, &len);
    expect_reject(der, len, &p, NULL, CG_EEVIDENCE, "freshness.age");
    free(der);
}

/* ---- certificates built by hand, signed with the right key ---- */

struct ext {
    const char *oid;
    const uint8_t *data;
    size_t len;
};

static void hand_cert(EVP_PKEY *key, const struct ext *exts, size_t n, uint8_t **der,
                      size_t *der_len)
{
    X509 *x = X509_new();
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 7), 1);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"plain", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key);
    for (size_t i = 0; i < n; i++) {
        ASN1_OBJECT *obj = OBJ_txt2obj(exts[i].oid, 1);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(os, exts[i].data, (int)exts[i].len);
        X509_EXTENSION *e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
        ASN1_OCTET_STRING_free(os);
        ASN1_OBJECT_free(obj);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    unsigned char *buf = NULL;
    int len = i2d_X509(x, &buf);
    assert_true(len > 0);
    *der = malloc((size_t)len);
    memcpy(*der, buf, (size_t)len);
    *der_len = (size_t)len;
    OPENSSL_free(buf);
    X509_free(x);
}

/* A copy of the data of extension oid in der. */
static uint8_t *get_ext(const uint8_t *der, size_t len, const char *oid, size_t *out_len)
{
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    assert_non_null(x);
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    int at = X509_get_ext_by_OBJ(x, obj, -1);
    assert_true(at >= 0);
    const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(x, at));
    *out_len = (size_t)ASN1_STRING_length(os);
    uint8_t *copy = malloc(*out_len);
    memcpy(copy, ASN1_STRING_get0_data(os), *out_len);
    ASN1_OBJECT_free(obj);
    X509_free(x);
    return copy;
}

static void test_cert_checks(void **state)
{
    (void)state;
    struct cg_policy p;
    sim_policy(&p);
    EVP_PKEY *pk = cg__ratls_key_pkey(F.key);
    uint8_t *good, *der;
    size_t good_len, len, cmw_len, end_len;
    struct spec s = {.nonce = NONCE, .iat = time(NULL)};
    make_cert(F.key, &s, &good, &good_len);
    uint8_t *cmw = get_ext(good, good_len, CG_OID_CMW, &cmw_len);
    uint8_t *end = get_ext(good, good_len, CG_OID_ENDORSEMENTS, &end_len);

    /* Garbage. */
    expect_reject((const uint8_t *)"\x30\x03\x02\x01\x00", 5, &p, NONCE, CG_EEVIDENCE,
                  "cert.parse");

    /* The subject changed after signing. */
    der = malloc(good_len);
    memcpy(der, good, good_len);
    uint8_t *cn = memmem(der, good_len, "ccgate-server", 13);
    assert_non_null(cn);
    cn[0] = 'C';
    expect_reject(der, good_len, &p, NONCE, CG_EEVIDENCE, "cert.self_signature");
    free(der);

    /* Re-signed by hand with the same extensions: still accepted (the control case). */
    struct ext both[] = {{CG_OID_CMW, cmw, cmw_len}, {CG_OID_ENDORSEMENTS, end, end_len}};
    hand_cert(pk, both, 2, &der, &len);
    struct cg_attestation att;
    struct cg_verdict v;
    assert_int_equal(verify(der, len, &p, NONCE, &att, &v), 0);
    free(der);

    /* A plain self-signed certificate. */
    hand_cert(pk, NULL, 0, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "cert.extension");
    free(der);

    /* The wrapper twice. */
    struct ext twice[] = {{CG_OID_CMW, cmw, cmw_len},
                          {CG_OID_CMW, cmw, cmw_len},
                          {CG_OID_ENDORSEMENTS, end, end_len}};
    hand_cert(pk, twice, 3, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "cert.extension");
    free(der);

    /* The wrapper with a trailing byte. */
    uint8_t *longer = malloc(cmw_len + 1);
    memcpy(longer, cmw, cmw_len);
    longer[cmw_len] = 0;
    struct ext trailing[] = {{CG_OID_CMW, longer, cmw_len + 1},
                             {CG_OID_ENDORSEMENTS, end, end_len}};
    hand_cert(pk, trailing, 2, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "cert.extension");
    free(der);
    free(longer);

    /* Endorsements malformed, then missing (the chain cannot be built without them). */
    struct ext bad_end[] = {{CG_OID_CMW, cmw, cmw_len},
                            {CG_OID_ENDORSEMENTS, (const uint8_t *)"\xd9\x01\x02\x81\x01", 5}};
    hand_cert(pk, bad_end, 2, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "cert.endorsements");
    free(der);
    hand_cert(pk, both, 1, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "sim.root");
    free(der);

    /* A byte of the report (its measurement) tampered with, certificate re-signed. */
    uint32_t tag;
    const uint8_t *ev, *cl;
    size_t ev_len, cl_len;
    assert_int_equal(cg_cmw_decode(cmw, cmw_len, &tag, &ev, &ev_len, &cl, &cl_len), 0);
    uint8_t *tampered = malloc(cmw_len);
    memcpy(tampered, cmw, cmw_len);
    tampered[(size_t)(ev - cmw) + 0x90] ^= 1;
    struct ext tamp[] = {{CG_OID_CMW, tampered, cmw_len}, {CG_OID_ENDORSEMENTS, end, end_len}};
    hand_cert(pk, tamp, 2, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "snp.signature");
    free(der);
    /* ... and the claims' iat (map head, "iat", uint32 head, 4 bytes): they still decode but
     * no longer hash to the report's REPORT_DATA. */
    memcpy(tampered, cmw, cmw_len);
    assert_memory_equal(cl, "\xa3\x63iat\x1a", 6);
    tampered[(size_t)(cl - cmw) + 9] ^= 1;
    hand_cert(pk, tamp, 2, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "evidence.report_data");
    free(der);
    free(tampered);

    /* Endorsements of another TEE type. */
    struct cg_evidence e2 = {0};
    assert_int_equal(cg_endorsements_decode(end, end_len, &e2), 0);
    e2.tag = CG_TAG_SNP;
    uint8_t *end2;
    size_t end2_len;
    assert_int_equal(cg_endorsements_encode(&e2, &end2, &end2_len), 0);
    cg_evidence_clear(&e2);
    struct ext mixed[] = {{CG_OID_CMW, cmw, cmw_len}, {CG_OID_ENDORSEMENTS, end2, end2_len}};
    hand_cert(pk, mixed, 2, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "cert.endorsements");
    free(der);
    free(end2);

    /* Claims that are not a claims map. */
    uint8_t *bad_cmw;
    size_t bad_cmw_len;
    assert_int_equal(
        cg_cmw_encode(tag, ev, ev_len, (const uint8_t *)"\xa0", 1, &bad_cmw, &bad_cmw_len), 0);
    struct ext bad_claims[] = {{CG_OID_CMW, bad_cmw, bad_cmw_len},
                               {CG_OID_ENDORSEMENTS, end, end_len}};
    hand_cert(pk, bad_claims, 2, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "claims.decode");
    free(der);
    free(bad_cmw);

    /* Evidence and claims of key A in a certificate of key B. */
    hand_cert(cg__ratls_key_pkey(F.other_key), both, 2, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "claims.pubkey_hash");
    free(der);

    free(cmw);
    free(end);
    free(good);
}

static void test_binding(void **state)
{
    (void)state;
    struct cg_policy p;
    sim_policy(&p);
    uint8_t *der;
    size_t len;

    /* Claims naming another key. */
    struct spec s = {.nonce = NONCE, .iat = time(NULL), .claims_key = F.other_key};
    make_cert(F.key, &s, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "claims.pubkey_hash");
    free(der);

    /* Evidence requested for other claims. */
    s = (struct spec){.nonce = NONCE, .iat = time(NULL), .corrupt_report_data = 1};
    make_cert(F.key, &s, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "evidence.report_data");
    free(der);
}

static void test_tee_and_root(void **state)
{
    (void)state;
    struct cg_policy p;
    uint8_t *der;
    size_t len;
    struct spec s = {.nonce = NONCE, .iat = time(NULL)};
    make_cert(F.key, &s, &der, &len);

    sim_policy(&p);
    p.sim.allow = 0;
    expect_reject(der, len, &p, NONCE, CG_EPOLICY, "evidence.tee");

    sim_policy(&p);
    p.sim.has_root = 0;
    expect_reject(der, len, &p, NONCE, CG_EPOLICY, "sim.root");

    sim_policy(&p);
    p.sim.root_sha256[5] ^= 1;
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, "sim.root");
    free(der);

    /* The sim report presented as SNP, to a policy without an snp section. */
    sim_policy(&p);
    s.tag = CG_TAG_SNP;
    make_cert(F.key, &s, &der, &len);
    p.snp.present = 0;
    expect_reject(der, len, &p, NONCE, CG_EPOLICY, "evidence.tee");
    /* With one, the chain must end at a pinned AMD ARK, which the sim ARK is not. */
    p.snp.present = 1;
    struct cg_attestation att;
    struct cg_verdict v;
    assert_int_equal(verify(der, len, &p, NONCE, &att, &v), CG_EEVIDENCE);
    assert_memory_equal(v.check, "snp.", 4);
    free(der);

    /* TDX evidence needs a tdx section; with one, a sim report is no quote. */
    sim_policy(&p);
    s.tag = CG_TAG_TDX;
    make_cert(F.key, &s, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EPOLICY, "evidence.tee");
    cg_tdx_policy_default(&p.tdx);
    assert_int_equal(verify(der, len, &p, NONCE, &att, &v), CG_EEVIDENCE);
    assert_memory_equal(v.check, "tdx.", 4);
    free(der);
}

static void test_policy_applied(void **state)
{
    (void)state;
    struct cg_policy p;
    sim_policy(&p);
    p.snp.measurements[0][0] ^= 1;
    uint8_t *der;
    size_t len;
    struct spec s = {.nonce = NONCE, .iat = time(NULL)};
    make_cert(F.key, &s, &der, &len);
    expect_reject(der, len, &p, NONCE, CG_EPOLICY, "snp.measurement");
    free(der);
}

/* Real Milan evidence under the SNP tag goes through the pinned AMD chain; its REPORT_DATA is
 * not our claims' hash, so the first check that can fail after the signature is the binding. */
static uint8_t *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static uint8_t *pem_first_der(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    unsigned char *buf = NULL;
    int n = i2d_X509(x, &buf);
    X509_free(x);
    uint8_t *copy = malloc((size_t)n);
    memcpy(copy, buf, (size_t)n);
    OPENSSL_free(buf);
    *len = (size_t)n;
    return copy;
}

static void real_snp(const char *report_file, const char *want_check)
{
    char path[512];
    const char *vectors = getenv("CG_VECTORS");
    assert_non_null(vectors);
    struct cg_evidence ev = {.tag = CG_TAG_SNP, .n_certs = 2};
    snprintf(path, sizeof(path), "%s/go-sev-guest/%s", vectors, report_file);
    ev.evidence = read_file(path, &ev.evidence_len);
    snprintf(path, sizeof(path), "%s/go-sev-guest/vcek.testcer", vectors);
    ev.certs[0] = read_file(path, &ev.cert_lens[0]);
    snprintf(path, sizeof(path), "%s/go-sev-guest/ask_ark_milan.pem", vectors);
    ev.certs[1] = pem_first_der(path, &ev.cert_lens[1]);

    uint8_t *claims, *der;
    size_t claims_len, len;
    uint8_t rd[CG_REPORT_DATA_LEN];
    int64_t now = time(NULL);
    assert_int_equal(cg_ratls_claims(F.key, &NONCE, 1, now, &claims, &claims_len, rd), 0);
    assert_int_equal(cg_ratls_cert_new(F.key, claims, claims_len, &ev, now, 3600, &der, &len), 0);
    struct cg_policy p;
    sim_policy(&p);
    p.sim.allow = 0;
    expect_reject(der, len, &p, NONCE, CG_EEVIDENCE, want_check);
    free(der);
    free(claims);
    cg_evidence_clear(&ev);
}

static void test_real_snp(void **state)
{
    (void)state;
    real_snp("attestation.bin", "evidence.report_data");
    real_snp("attestation.TAMPERED_report_data_0x50.bin", "snp.signature");
}

/* Real TDX evidence under the TDX tag, its collateral as endorsements (as the tsm provider
 * sends it), verified at a time inside the collateral's window: the quote, PCK chain, QE
 * report, TCB info and QE identity verify, then the binding fails (the quote's REPORTDATA is
 * not our claims' hash). Each collateral problem fails before that, by name. */
static void real_tdx(const char *quote_file, const char *const *collateral, size_t n_col,
                     const char *at, int want_rc, const char *want_check)
{
    char path[512];
    const char *vectors = getenv("CG_VECTORS");
    assert_non_null(vectors);
    struct cg_evidence ev = {.tag = CG_TAG_TDX, .n_certs = n_col};
    snprintf(path, sizeof(path), "%s/%s", vectors, quote_file);
    ev.evidence = read_file(path, &ev.evidence_len);
    /* go-tdx-guest's SPR quotes end with 39 bytes of text that the verifier refuses
     * (tdx.quote.trailing, tested in test_tdx.c): verify the quote proper. */
    if (strncmp(quote_file, "go-tdx-guest/tdx_prod_quote_SPR_E4", 34) == 0)
        ev.evidence_len -= 39;
    for (size_t i = 0; i < n_col; i++) {
        snprintf(path, sizeof(path), "%s/%s", vectors, collateral[i]);
        ev.certs[i] = read_file(path, &ev.cert_lens[i]);
    }
    uint8_t *claims, *der;
    size_t claims_len, len;
    uint8_t rd[CG_REPORT_DATA_LEN];
    time_t now;
    assert_int_equal(cg_tdx_time_parse(at, &now), 0);
    assert_int_equal(cg_ratls_claims(F.key, &NONCE, 1, now, &claims, &claims_len, rd), 0);
    assert_int_equal(cg_ratls_cert_new(F.key, claims, claims_len, &ev, now, 3600, &der, &len), 0);
    char err[256];
    struct cg_policy p;
    const char *json = "{\"tdx\": {\"accepted_tcb_statuses\": [\"UpToDate\", \"OutOfDate\"]}}";
    if (cg_policy_parse(json, strlen(json), &p, err, sizeof(err)) != 0)
        fail_msg("policy: %s", err);
    struct cg_attestation att;
    struct cg_verdict v;
    memset(&v, 0, sizeof(v));
    int rc = cg_ratls_verify(der, len, &p, NONCE, now, &att, &v);
    if (rc != want_rc || strcmp(v.check, want_check) != 0)
        fail_msg("%s at %s: want %d %s, got %d %s (expected %s, actual %s)", quote_file, at,
                 want_rc, want_check, rc, v.check, v.expected, v.actual);
    free(der);
    free(claims);
    cg_evidence_clear(&ev);
}

static void test_real_tdx(void **state)
{
    (void)state;
    static const char *const col[] = {"trustee/tdx/tcbInfo.json", "trustee/tdx/enclaveIdentity.json",
                                      "trustee/tdx/tcb_signing_chain_2025.pem"};
    const char *q6 = "trustee/tdx/tdx_quote_6.dat";
    real_tdx(q6, col, 3, "2025-11-01T00:00:00Z", CG_EEVIDENCE, "evidence.report_data");
    /* Without collateral the quote itself still verifies up to the binding. */
    real_tdx(q6, col, 0, "2025-11-01T00:00:00Z", CG_EEVIDENCE, "evidence.report_data");
    /* The collateral's window is checked at the client's time. */
    real_tdx(q6, col, 3, "2025-11-27T00:00:00Z", CG_EEVIDENCE, "tdx.tcb_info.expired");
    /* Half the collateral. */
    real_tdx(q6, col, 2, "2025-11-01T00:00:00Z", CG_EEVIDENCE, "tdx.collateral");
    /* A blob that is no collateral (a quote). */
    static const char *const junk[] = {"trustee/tdx/tdx_quote_5.dat"};
    real_tdx(q6, junk, 1, "2025-11-01T00:00:00Z", CG_EEVIDENCE, "tdx.collateral");
    /* Tampered quotes. */
    real_tdx("go-tdx-guest/tdx_prod_quote_SPR_E4.TAMPERED_body_0x3C.dat", col, 0,
             "2023-07-01T01:00:00Z", CG_EEVIDENCE, "tdx.quote_signature");
    real_tdx("go-tdx-guest/tdx_prod_quote_SPR_E4.TAMPERED_pckcert_0xB77.dat", col, 0,
             "2023-07-01T01:00:00Z", CG_EEVIDENCE, "tdx.pck_chain");
}

/* Any change to a valid certificate's bytes is refused (and never crashes or leaks). */
static void test_mutations(void **state)
{
    (void)state;
    struct cg_policy p;
    sim_policy(&p);
    uint8_t *der;
    size_t len;
    struct spec s = {.nonce = NONCE, .iat = time(NULL)};
    make_cert(F.key, &s, &der, &len);
    uint8_t *buf = malloc(len);
    uint64_t x = 0x2545f4914f6cdd1dull;
    for (int i = 0; i < 300; i++) {
        memcpy(buf, der, len);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t at = (size_t)(x >> 16) % len;
        uint8_t flip = (uint8_t)(x | 1);
        buf[at] ^= flip;
        struct cg_attestation att;
        struct cg_verdict v;
        assert_int_not_equal(verify(buf, len, &p, NONCE, &att, &v), 0);
        assert_true(v.check[0] != '\0');
    }
    free(buf);
    free(der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_claims_binding), cmocka_unit_test(test_cert_shape),
        cmocka_unit_test(test_verify_nonce),   cmocka_unit_test(test_verify_max_age),
        cmocka_unit_test(test_cert_checks),    cmocka_unit_test(test_binding),
        cmocka_unit_test(test_tee_and_root),   cmocka_unit_test(test_policy_applied),
        cmocka_unit_test(test_real_snp),       cmocka_unit_test(test_real_tdx),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
