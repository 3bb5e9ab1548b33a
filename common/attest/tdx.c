/*
 * Intel TDX DCAP quote parsing and offline verification (shared/ATTESTATION.md section 2,
 * following the order of checks of Intel's QVL and Phala's dcap-qvl).
 */
#include "ccgate/tdx.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "ccgate/roots.h"

#define ROOT_NAME "intel/sgx_root_ca.pem"
#define MAX_CHAIN 4
#define TDX_TEE_TYPE 0x81u
#define ATT_KEY_ECDSA_P256 2
#define CERT_TYPE_PCK_CHAIN 5
#define CERT_TYPE_QE_REPORT 6
/* Offsets in the signature data (att_key_type 2). */
#define SIG_QUOTE 0
#define SIG_KEY 64
#define SIG_CERT_TYPE 128
#define SIG_CERT_SIZE 130
#define SIG_CERT_DATA 134

static const uint8_t intel_qe_vendor[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                            0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* ---- quote parsing ------------------------------------------------------------------- */

static void parse_body(const uint8_t *b, struct cg_tdx_quote *q)
{
    memcpy(q->tee_tcb_svn, b + 0x00, 16);
    memcpy(q->mrseam, b + 0x10, 48);
    memcpy(q->mrsignerseam, b + 0x40, 48);
    q->seam_attributes = le64(b + 0x70);
    q->td_attributes = le64(b + 0x78);
    q->xfam = le64(b + 0x80);
    memcpy(q->mrtd, b + 0x88, 48);
    memcpy(q->mrconfigid, b + 0xB8, 48);
    memcpy(q->mrowner, b + 0xE8, 48);
    memcpy(q->mrownerconfig, b + 0x118, 48);
    for (int i = 0; i < 4; i++)
        memcpy(q->rtmr[i], b + 0x148 + 48 * i, 48);
    memcpy(q->report_data, b + 0x208, 64);
    if (q->body_type == 3) {
        memcpy(q->tee_tcb_svn2, b + 0x248, 16);
        memcpy(q->mrservicetd, b + 0x258, 48);
    }
}

static void parse_qe_report(const uint8_t *r, struct cg_tdx_qe_report *qe)
{
    memcpy(qe->cpusvn, r, 16);
    qe->miscselect = le32(r + 16);
    memcpy(qe->attributes, r + 48, 16);
    memcpy(qe->mrenclave, r + 64, 32);
    memcpy(qe->mrsigner, r + 128, 32);
    qe->isvprodid = le16(r + 256);
    qe->isvsvn = le16(r + 258);
    memcpy(qe->report_data, r + 320, 64);
}

/* Parses the certification data of type 6 (cd[0..n)): every length must add up exactly. */
static int parse_qe_cert_data(const uint8_t *cd, size_t n, struct cg_tdx_quote *q,
                              struct cg_verdict *v)
{
    const size_t fixed = CG_TDX_QE_REPORT_SIZE + 64 + 2;
    if (n < fixed)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.qe_cert_data", ">= 450 bytes", "%zu", n);
    memcpy(q->qe_report_raw, cd, CG_TDX_QE_REPORT_SIZE);
    parse_qe_report(cd, &q->qe_report);
    memcpy(q->qe_report_sig, cd + CG_TDX_QE_REPORT_SIZE, 64);
    size_t auth_len = le16(cd + CG_TDX_QE_REPORT_SIZE + 64);
    size_t off = fixed;
    if (auth_len > n - off || n - off - auth_len < 6)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.qe_auth_size", "within the QE cert data",
                         "%zu", auth_len);
    q->qe_auth = cd + off;
    q->qe_auth_len = auth_len;
    off += auth_len;
    uint16_t type = le16(cd + off);
    if (type != CERT_TYPE_PCK_CHAIN)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.pck_cert_type", "5", "%u", type);
    size_t chain_len = le32(cd + off + 2);
    off += 6;
    if (chain_len != n - off)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.pck_chain_size", "rest of the QE cert data",
                         "%zu of %zu", chain_len, n - off);
    /* The PEM text may be NUL-terminated; a chain that is all NULs is no chain. */
    while (chain_len > 0 && cd[off + chain_len - 1] == 0)
        chain_len--;
    if (chain_len == 0)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.pck_chain_size", "> 0", "0");
    q->pck_chain = (const char *)cd + off;
    q->pck_chain_len = chain_len;
    return 0;
}

int cg_tdx_quote_parse(const uint8_t *buf, size_t len, struct cg_tdx_quote *q, struct cg_verdict *v)
{
    memset(q, 0, sizeof(*q));
    if (buf == NULL || len < CG_TDX_HEADER_SIZE || len > CG_TDX_QUOTE_MAX)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.size", "48 to 65536 bytes", "%zu", len);
    q->version = le16(buf);
    q->att_key_type = le16(buf + 2);
    q->tee_type = le32(buf + 4);
    memcpy(q->qe_vendor_id, buf + 12, 16);
    memcpy(q->user_data, buf + 28, 20);
    if (q->version != 4 && q->version != 5)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.version", "4 or 5", "%u", q->version);
    if (q->att_key_type != ATT_KEY_ECDSA_P256)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.att_key_type", "2 (ECDSA P-256)", "%u",
                         q->att_key_type);
    if (q->tee_type != TDX_TEE_TYPE)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.tee_type", "0x81 (TDX)", "0x%x", q->tee_type);
    if (memcmp(q->qe_vendor_id, intel_qe_vendor, 16) != 0) {
        char hex[33];
        cg_hex(hex, sizeof(hex), q->qe_vendor_id, 16);
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.qe_vendor_id",
                         "939a7233f79c4ca9940a0db3957f0607", "%s", hex);
    }

    size_t body_off = CG_TDX_HEADER_SIZE, body_size = CG_TDX_BODY10_SIZE;
    q->body_type = 2;
    if (q->version == 5) {
        if (len < CG_TDX_HEADER_SIZE + 6)
            return cg_reject(v, CG_EEVIDENCE, "tdx.quote.size", ">= 54 bytes", "%zu", len);
        q->body_type = le16(buf + CG_TDX_HEADER_SIZE);
        uint32_t declared = le32(buf + CG_TDX_HEADER_SIZE + 2);
        if (q->body_type == 3)
            body_size = CG_TDX_BODY15_SIZE;
        else if (q->body_type != 2)
            return cg_reject(v, CG_EEVIDENCE, "tdx.quote.body_type", "2 or 3 (TDX)", "%u",
                             q->body_type);
        if (declared != body_size)
            return cg_reject(v, CG_EEVIDENCE, "tdx.quote.body_size",
                             q->body_type == 3 ? "648" : "584", "%u", declared);
        body_off += 6;
    }
    q->signed_len = body_off + body_size;
    if (len < q->signed_len + 4)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.size", "header, body and signature length",
                         "%zu", len);
    parse_body(buf + body_off, q);

    size_t sig_len = le32(buf + q->signed_len);
    const uint8_t *sd = buf + q->signed_len + 4;
    if (sig_len > len - q->signed_len - 4)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.sig_len", "within the quote", "%zu", sig_len);
    if (sig_len < SIG_CERT_DATA)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.sig_len", ">= 134", "%zu", sig_len);
    memcpy(q->signature, sd + SIG_QUOTE, 64);
    memcpy(q->attest_key, sd + SIG_KEY, 64);
    uint16_t cert_type = le16(sd + SIG_CERT_TYPE);
    if (cert_type != CERT_TYPE_QE_REPORT)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.cert_type", "6 (QE report)", "%u", cert_type);
    size_t cert_size = le32(sd + SIG_CERT_SIZE);
    if (cert_size != sig_len - SIG_CERT_DATA)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.cert_size", "rest of the signature data",
                         "%zu of %zu", cert_size, sig_len - SIG_CERT_DATA);
    return parse_qe_cert_data(sd + SIG_CERT_DATA, cert_size, q, v);
}

/* ---- crypto helpers ------------------------------------------------------------------ */

/* Verifies an ECDSA P-256/SHA-256 raw r||s signature: 1 valid, 0 invalid, <0 error. */
static int ecdsa_verify_raw(EVP_PKEY *key, const uint8_t *msg, size_t n, const uint8_t sig[64])
{
    int rc = CG_ECRYPTO;
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL);
    BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *der = NULL;
    if (es == NULL || r == NULL || s == NULL || md == NULL)
        goto out;
    if (ECDSA_SIG_set0(es, r, s) != 1)
        goto out;
    r = s = NULL; /* owned by es */
    int der_len = i2d_ECDSA_SIG(es, &der);
    if (der_len <= 0)
        goto out;
    if (EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1)
        goto out;
    rc = EVP_DigestVerify(md, der, (size_t)der_len, msg, n) == 1 ? 1 : 0;
out:
    ERR_clear_error();
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(es);
    return rc;
}

/* The attestation key (raw X||Y) as a P-256 public key, or NULL if not a curve point. */
static EVP_PKEY *p256_key(const uint8_t xy[64])
{
    uint8_t point[65];
    EVP_PKEY *key = NULL;
    point[0] = 0x04;
    memcpy(point + 1, xy, 64);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (bld == NULL || ctx == NULL)
        goto out;
    if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)) != 1)
        goto out;
    params = OSSL_PARAM_BLD_to_param(bld);
    if (params == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1)
        key = NULL;
out:
    ERR_clear_error();
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    return key;
}

/* 1 when key is an EC key on P-256. */
static int is_p256(EVP_PKEY *key)
{
    char group[32];
    if (key == NULL || EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
        return 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       NULL) != 1)
        return 0;
    return strcmp(group, "prime256v1") == 0;
}

/* ---- certificates -------------------------------------------------------------------- */

static X509 *pinned_root(void)
{
    for (const struct cg_root *r = cg_roots; r->name != NULL; r++) {
        if (strcmp(r->name, ROOT_NAME) != 0)
            continue;
        BIO *bio = BIO_new_mem_buf(r->pem, (int)r->len);
        X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        return x;
    }
    return NULL;
}

/* Reads up to MAX_CHAIN PEM certificates from pem[0..n); returns how many, or -1. */
static int read_pem_chain(const char *pem, size_t n, X509 *out[MAX_CHAIN])
{
    int count = 0;
    if (n == 0 || n > CG_TDX_COLLATERAL_MAX)
        return -1;
    BIO *bio = BIO_new_mem_buf(pem, (int)n);
    if (bio == NULL)
        return -1;
    for (;;) {
        X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x == NULL) {
            unsigned long e = ERR_peek_last_error();
            /* Only a clean end of input (no further BEGIN line) ends the chain. */
            if (count == 0 || ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
                count = -1;
            break;
        }
        if (count == MAX_CHAIN) {
            X509_free(x);
            count = -1;
            break;
        }
        out[count++] = x;
    }
    ERR_clear_error();
    BIO_free(bio);
    if (count < 0) {
        for (int i = 0; i < MAX_CHAIN; i++) {
            X509_free(out[i]);
            out[i] = NULL;
        }
    }
    return count;
}

static void free_chain(X509 *c[MAX_CHAIN])
{
    for (int i = 0; i < MAX_CHAIN; i++) {
        X509_free(c[i]);
        c[i] = NULL;
    }
}

static int is_self_signed(X509 *x)
{
    return X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0;
}

static int subject_cn_is(X509 *x, const char *const *names)
{
    char cn[128];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) <= 0)
        return 0;
    for (; *names != NULL; names++)
        if (strcmp(cn, *names) == 0)
            return 1;
    return 0;
}

/*
 * Verifies chain[0] up to the pinned root at `at` (strict X.509, exactly `depth` certs
 * including the root). A self-signed cert carried in the chain must be the pinned root
 * itself. check names the chain in verdicts ("tdx.pck_chain", "tdx.tcb_chain"). On success
 * *ca_out (when not NULL) holds a reference to the certificate above chain[0]: caller frees.
 */
static int verify_chain(X509 *chain[MAX_CHAIN], int n, X509 *root, time_t at, int depth,
                        const char *check, X509 **ca_out, struct cg_verdict *v)
{
    char name[64];
    int rc = CG_EEVIDENCE;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    if (store == NULL || ctx == NULL || untrusted == NULL) {
        rc = CG_ECRYPTO;
        goto out;
    }
    for (int i = 1; i < n; i++) {
        if (is_self_signed(chain[i])) {
            if (X509_cmp(chain[i], root) != 0) {
                snprintf(name, sizeof(name), "%s.root", check);
                rc = cg_reject(v, CG_EEVIDENCE, name, "the pinned Intel SGX Root CA",
                               "another self-signed certificate");
                goto out;
            }
            continue;
        }
        if (sk_X509_push(untrusted, chain[i]) <= 0) {
            rc = CG_ECRYPTO;
            goto out;
        }
    }
    if (X509_STORE_add_cert(store, root) != 1 ||
        X509_STORE_CTX_init(ctx, store, chain[0], untrusted) != 1) {
        rc = CG_ECRYPTO;
        goto out;
    }
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT | X509_V_FLAG_CHECK_SS_SIGNATURE);
    X509_STORE_CTX_set_time(ctx, 0, at);
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        rc = cg_reject(v, CG_EEVIDENCE, check, "valid chain to the Intel SGX Root CA",
                       "%s (depth %d)", X509_verify_cert_error_string(err),
                       X509_STORE_CTX_get_error_depth(ctx));
        goto out;
    }
    STACK_OF(X509) *built = X509_STORE_CTX_get0_chain(ctx);
    if (sk_X509_num(built) != depth) {
        char want[16];
        snprintf(want, sizeof(want), "%d", depth);
        snprintf(name, sizeof(name), "%s.length", check);
        rc = cg_reject(v, CG_EEVIDENCE, name, want, "%d", sk_X509_num(built));
        goto out;
    }
    if (ca_out != NULL) {
        *ca_out = sk_X509_value(built, 1);
        X509_up_ref(*ca_out);
    }
    rc = 0;
out:
    ERR_clear_error();
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

/* ---- the PCK certificate's SGX extension --------------------------------------------- */

/* DER content of OID 1.2.840.113741.1.13.1: the SGX extension and prefix of its members. */
static const uint8_t sgx_oid[] = {0x2a, 0x86, 0x48, 0x86, 0xf8, 0x4d, 0x01, 0x0d, 0x01};

struct der {
    const uint8_t *p;
    long len;
    int tag;
};

/* Reads one DER TLV from *pp (at most *left bytes): 0, or -1 if malformed. */
static int der_next(const uint8_t **pp, long *left, struct der *out)
{
    const unsigned char *p = *pp;
    int tag, cls;
    long len;
    int r = ASN1_get_object(&p, &len, &tag, &cls, *left);
    if ((r & 0x80) || (r & 0x01) || cls != V_ASN1_UNIVERSAL)
        return -1;
    if (len > *left - (long)(p - *pp))
        return -1;
    out->p = p;
    out->len = len;
    out->tag = tag;
    *left -= (long)(p - *pp) + len;
    *pp = p + len;
    return 0;
}

/* Reads SEQUENCE { OID, value } and returns the OID arc after the SGX prefix (e.g. ".2.17"
 * as {2, 17}); arcs holds up to 2 numbers, *narcs how many. */
static int der_sgx_member(const uint8_t **pp, long *left, uint8_t arcs[2], int *narcs,
                          struct der *value)
{
    struct der seq, oid;
    if (der_next(pp, left, &seq) != 0 || seq.tag != V_ASN1_SEQUENCE)
        return -1;
    const uint8_t *p = seq.p;
    long l = seq.len;
    if (der_next(&p, &l, &oid) != 0 || oid.tag != V_ASN1_OBJECT || der_next(&p, &l, value) != 0 ||
        l != 0)
        return -1;
    if (oid.len < (long)sizeof(sgx_oid) + 1 || oid.len > (long)sizeof(sgx_oid) + 2 ||
        memcmp(oid.p, sgx_oid, sizeof(sgx_oid)) != 0)
        return -1;
    *narcs = (int)(oid.len - (long)sizeof(sgx_oid));
    for (int i = 0; i < *narcs; i++) {
        if (oid.p[sizeof(sgx_oid) + i] & 0x80)
            return -1;
        arcs[i] = oid.p[sizeof(sgx_oid) + i];
    }
    return 0;
}

/* A small non-negative DER INTEGER (content bytes) into *out. */
static int der_small_int(const struct der *d, unsigned *out)
{
    if (d->tag != V_ASN1_INTEGER || d->len < 1 || d->len > 3 || (d->p[0] & 0x80))
        return -1;
    unsigned val = 0;
    for (long i = 0; i < d->len; i++)
        val = val << 8 | d->p[i];
    if (val > 0xFFFF)
        return -1;
    *out = val;
    return 0;
}

static int parse_sgx_tcb(const struct der *tcb, struct cg_tdx_pck_info *pck, unsigned *seen)
{
    const uint8_t *p = tcb->p;
    long left = tcb->len;
    if (tcb->tag != V_ASN1_SEQUENCE)
        return -1;
    while (left > 0) {
        uint8_t arcs[2];
        int narcs;
        struct der val;
        unsigned n;
        if (der_sgx_member(&p, &left, arcs, &narcs, &val) != 0 || narcs != 2 || arcs[0] != 2)
            return -1;
        if (arcs[1] >= 1 && arcs[1] <= 16) {
            if (der_small_int(&val, &n) != 0 || n > 255)
                return -1;
            pck->sgx_tcb[arcs[1] - 1] = (uint8_t)n;
        } else if (arcs[1] == 17) {
            if (der_small_int(&val, &n) != 0)
                return -1;
            pck->pcesvn = (uint16_t)n;
        } else if (arcs[1] == 18) {
            if (val.tag != V_ASN1_OCTET_STRING || val.len != 16)
                return -1;
            memcpy(pck->cpusvn, val.p, 16);
        } else {
            return -1;
        }
        if (*seen & (1u << arcs[1]))
            return -1;
        *seen |= 1u << arcs[1];
    }
    return *seen == 0x7FFFEu ? 0 : -1; /* arcs 1..18 each exactly once */
}

int cg__tdx_pck_extension_parse(const uint8_t *data, size_t len, struct cg_tdx_pck_info *pck)
{
    const uint8_t *p = data;
    long left = len > LONG_MAX ? 0 : (long)len;
    struct der top;
    if (len == 0 || der_next(&p, &left, &top) != 0 || top.tag != V_ASN1_SEQUENCE || left != 0)
        return -1;
    p = top.p;
    left = top.len;
    unsigned seen = 0, tcb_seen = 0;
    while (left > 0) {
        uint8_t arcs[2];
        int narcs;
        struct der val;
        if (der_sgx_member(&p, &left, arcs, &narcs, &val) != 0 || narcs != 1)
            return -1;
        if (arcs[0] < 32 && (seen & (1u << arcs[0])))
            return -1;
        switch (arcs[0]) {
        case 1:
            if (val.tag != V_ASN1_OCTET_STRING || val.len != 16)
                return -1;
            memcpy(pck->ppid, val.p, 16);
            break;
        case 2:
            if (parse_sgx_tcb(&val, pck, &tcb_seen) != 0)
                return -1;
            break;
        case 3:
            if (val.tag != V_ASN1_OCTET_STRING || val.len != 2)
                return -1;
            memcpy(pck->pceid, val.p, 2);
            break;
        case 4:
            if (val.tag != V_ASN1_OCTET_STRING || val.len != 6)
                return -1;
            memcpy(pck->fmspc, val.p, 6);
            break;
        default:
            break; /* SGX type, platform instance, configuration: not used for TDX */
        }
        if (arcs[0] < 32)
            seen |= 1u << arcs[0];
    }
    return (seen & 0x1E) == 0x1E ? 0 : -1;
}

/* Fills pck from the leaf's SGX extension: PPID, TCB, PCE-ID and FMSPC are required. */
static int parse_pck_extension(X509 *leaf, struct cg_tdx_pck_info *pck, struct cg_verdict *v)
{
    int rc = CG_EEVIDENCE;
    ASN1_OBJECT *obj = OBJ_txt2obj("1.2.840.113741.1.13.1", 1);
    if (obj == NULL)
        return CG_ECRYPTO;
    int idx = X509_get_ext_by_OBJ(leaf, obj, -1);
    if (idx >= 0 && X509_get_ext_by_OBJ(leaf, obj, idx) < 0) {
        ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(leaf, idx));
        if (cg__tdx_pck_extension_parse(ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os),
                                        pck) == 0)
            rc = 0;
    }
    ASN1_OBJECT_free(obj);
    ERR_clear_error();
    if (rc != 0)
        return cg_reject(v, rc, "tdx.pck.sgx_extension", "well-formed SGX extension",
                         "missing or malformed");
    return 0;
}

/* ---- CRLs ---------------------------------------------------------------------------- */

static X509_CRL *read_crl(const uint8_t *buf, size_t n)
{
    X509_CRL *crl = NULL;
    if (n == 0 || n > CG_TDX_COLLATERAL_MAX)
        return NULL;
    const unsigned char *p = buf;
    crl = d2i_X509_CRL(NULL, &p, (long)n);
    if (crl != NULL && p != buf + n) {
        X509_CRL_free(crl);
        crl = NULL;
    }
    if (crl == NULL) {
        BIO *bio = BIO_new_mem_buf(buf, (int)n);
        if (bio != NULL)
            crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
        BIO_free(bio);
    }
    ERR_clear_error();
    return crl;
}

/*
 * Applies one CRL: its issuer must be one of the CA certificates in cas[] (which verified
 * it), it must be valid at `at`, and none of the certificates in certs[] it covers may be
 * listed. names[] name the certificates for verdicts.
 */
static int apply_crl(const uint8_t *buf, size_t n, X509 *const *cas, size_t n_cas,
                     X509 *const *certs, const char *const *names, size_t n_certs, time_t at,
                     size_t *issuer_idx, struct cg_verdict *v)
{
    int rc = CG_EEVIDENCE;
    X509_CRL *crl = read_crl(buf, n);
    if (crl == NULL)
        return cg_reject(v, CG_EEVIDENCE, "tdx.crl.parse", "a DER or PEM CRL", "unreadable");
    X509 *issuer = NULL;
    for (size_t i = 0; i < n_cas && issuer == NULL; i++) {
        if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(cas[i])) == 0) {
            issuer = cas[i];
            *issuer_idx = i;
        }
    }
    char iname[128] = "?";
    X509_NAME_oneline(X509_CRL_get_issuer(crl), iname, sizeof(iname));
    if (issuer == NULL) {
        rc = cg_reject(v, CG_EEVIDENCE, "tdx.crl.issuer", "Intel SGX Root CA or the PCK CA", "%s",
                       iname);
        goto out;
    }
    EVP_PKEY *ikey = X509_get0_pubkey(issuer);
    if (ikey == NULL || X509_CRL_verify(crl, ikey) != 1) {
        rc = cg_reject(v, CG_EEVIDENCE, "tdx.crl.signature", "signed by its issuer",
                       "bad signature (%s)", iname);
        goto out;
    }
    const ASN1_TIME *last = X509_CRL_get0_lastUpdate(crl);
    const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
    if (last == NULL || X509_cmp_time(last, &at) > 0) {
        rc = cg_reject(v, CG_EEVIDENCE, "tdx.crl.not_yet_valid", "thisUpdate <= now", "%s", iname);
        goto out;
    }
    if (next == NULL || X509_cmp_time(next, &at) <= 0) {
        rc = cg_reject(v, CG_EEVIDENCE, "tdx.crl.expired", "now < nextUpdate", "%s", iname);
        goto out;
    }
    for (size_t i = 0; i < n_certs; i++) {
        X509_REVOKED *entry = NULL;
        if (certs[i] == NULL ||
            X509_NAME_cmp(X509_get_issuer_name(certs[i]), X509_get_subject_name(issuer)) != 0)
            continue;
        if (X509_CRL_get0_by_cert(crl, &entry, certs[i]) == 1) {
            char check[64], serial[80] = "?";
            const ASN1_INTEGER *sn = X509_get0_serialNumber(certs[i]);
            cg_hex(serial, sizeof(serial), ASN1_STRING_get0_data(sn),
                   (size_t)ASN1_STRING_length(sn));
            snprintf(check, sizeof(check), "tdx.%s.revoked", names[i]);
            rc = cg_reject(v, CG_EEVIDENCE, check, "not revoked", "serial %s listed by %s", serial,
                           iname);
            goto out;
        }
    }
    rc = 0;
out:
    ERR_clear_error();
    X509_CRL_free(crl);
    return rc;
}

int cg__tdx_crl_check(const uint8_t *crl, size_t crl_len, const char *ca_pem, size_t ca_len,
                      const char *cert_pem, size_t cert_len, time_t at, struct cg_verdict *v)
{
    static const char *const names[] = {"pck"};
    X509 *ca[MAX_CHAIN] = {NULL}, *cert[MAX_CHAIN] = {NULL};
    size_t issuer;
    int rc = CG_ECONFIG;
    if (read_pem_chain(ca_pem, ca_len, ca) == 1 && read_pem_chain(cert_pem, cert_len, cert) == 1)
        rc = apply_crl(crl, crl_len, ca, 1, cert, names, 1, at, &issuer, v);
    free_chain(ca);
    free_chain(cert);
    return rc;
}

/* ---- statuses and dates -------------------------------------------------------------- */

static const char *const status_names[] = {
    [CG_TDX_TCB_NOT_EVALUATED] = "NotEvaluated",
    [CG_TDX_TCB_UP_TO_DATE] = "UpToDate",
    [CG_TDX_TCB_SW_HARDENING_NEEDED] = "SWHardeningNeeded",
    [CG_TDX_TCB_CONFIGURATION_NEEDED] = "ConfigurationNeeded",
    [CG_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED] = "ConfigurationAndSWHardeningNeeded",
    [CG_TDX_TCB_OUT_OF_DATE] = "OutOfDate",
    [CG_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED] = "OutOfDateConfigurationNeeded",
    [CG_TDX_TCB_REVOKED] = "Revoked",
};

const char *cg_tdx_tcb_status_name(enum cg_tdx_tcb_status s)
{
    if ((unsigned)s >= sizeof(status_names) / sizeof(status_names[0]))
        return "?";
    return status_names[s];
}

int cg_tdx_tcb_status_parse(const char *name, enum cg_tdx_tcb_status *out)
{
    for (unsigned i = CG_TDX_TCB_UP_TO_DATE; i <= CG_TDX_TCB_REVOKED; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (enum cg_tdx_tcb_status)i;
            return 0;
        }
    }
    return CG_ECONFIG;
}

/* Intel's convergence of two statuses: the worse one, keeping "configuration needed". */
static enum cg_tdx_tcb_status merge_status(enum cg_tdx_tcb_status a, enum cg_tdx_tcb_status b)
{
    if (a == CG_TDX_TCB_REVOKED || b == CG_TDX_TCB_REVOKED)
        return CG_TDX_TCB_REVOKED;
#define HAS(s, x) ((a) == (x) || (b) == (x))
    int ood = HAS(a, CG_TDX_TCB_OUT_OF_DATE) || HAS(a, CG_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED);
    int conf = HAS(a, CG_TDX_TCB_CONFIGURATION_NEEDED) ||
               HAS(a, CG_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED) ||
               HAS(a, CG_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED);
    int sw = HAS(a, CG_TDX_TCB_SW_HARDENING_NEEDED) ||
             HAS(a, CG_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
#undef HAS
    if (ood)
        return conf ? CG_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED : CG_TDX_TCB_OUT_OF_DATE;
    if (conf)
        return sw ? CG_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED
                  : CG_TDX_TCB_CONFIGURATION_NEEDED;
    return sw ? CG_TDX_TCB_SW_HARDENING_NEEDED : CG_TDX_TCB_UP_TO_DATE;
}

int cg_tdx_time_parse(const char *s, time_t *out)
{
    struct tm tm;
    int y, mo, d, h, mi, se, used = 0;
    if (s == NULL || strlen(s) != 20 ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &se, &used) != 6 ||
        used != 20)
        return CG_ECONFIG;
    for (int i = 0; i < 20; i++) {
        static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return CG_ECONFIG;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59)
        return CG_ECONFIG;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    struct tm back;
    /* timegm() normalizes (Feb 31 -> Mar 3): only dates that exist are accepted. */
    if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL || back.tm_mday != d ||
        back.tm_mon != mo - 1 || back.tm_sec != se)
        return CG_ECONFIG;
    *out = t;
    return 0;
}

/* ---- signed PCS JSON ----------------------------------------------------------------- */

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

/* s[i] is '"': returns the index after the closing quote, or 0. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return 0;
}

/* Returns the index after the JSON value starting at s[i], or 0. Never reads outside
 * s[0..n), whatever s holds; the answer is exact when s is valid JSON. */
static size_t skip_value(const char *s, size_t n, size_t i)
{
    if (i >= n)
        return 0;
    if (s[i] == '"')
        return skip_string(s, n, i);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        for (; i < n; i++) {
            if (s[i] == '"') {
                size_t e = skip_string(s, n, i);
                if (e == 0)
                    return 0;
                i = e - 1;
            } else if (s[i] == '{' || s[i] == '[') {
                depth++;
            } else if (s[i] == '}' || s[i] == ']') {
                if (--depth == 0)
                    return i + 1;
            }
        }
        return 0;
    }
    while (i < n && strchr(",}] \t\r\n", s[i]) == NULL)
        i++;
    return i;
}

/*
 * Finds the raw text of the top-level member `key` of the JSON object in s[0..n): the
 * bytes Intel signed, exactly as transmitted. Keys are compared unescaped-as-written, so a
 * key spelled with escapes is not found (and the document is refused).
 */
static int raw_member(const char *s, size_t n, const char *key, const char **val, size_t *vlen)
{
    size_t klen = strlen(key);
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{')
        return -1;
    i = skip_ws(s, n, i + 1);
    while (i < n && s[i] == '"') {
        size_t kend = skip_string(s, n, i);
        if (kend == 0)
            return -1;
        int match = kend - i - 2 == klen && memcmp(s + i + 1, key, klen) == 0;
        i = skip_ws(s, n, kend);
        if (i >= n || s[i] != ':')
            return -1;
        i = skip_ws(s, n, i + 1);
        size_t vend = skip_value(s, n, i);
        if (vend == 0)
            return -1;
        if (match) {
            *val = s + i;
            *vlen = vend - i;
            return 0;
        }
        i = skip_ws(s, n, vend);
        if (i < n && s[i] == ',')
            i = skip_ws(s, n, i + 1);
    }
    return -1;
}

/*
 * Checks a PCS response {"<member>": {...}, "signature": "<hex r||s>"} signed by key and
 * returns in *out the member parsed from the very bytes that were signed (caller frees).
 * what names the document in verdicts ("tcb_info", "qe_identity").
 */
static int verify_signed_json(const char *doc, size_t n, const char *member, EVP_PKEY *key,
                              const char *what, json_t **out, struct cg_verdict *v)
{
    char check[64];
    uint8_t sig[64];
    const char *raw = NULL;
    size_t raw_len = 0;
    json_error_t jerr;
    int rc = CG_EEVIDENCE;
    *out = NULL;
    json_t *top = NULL;
    if (n > CG_TDX_COLLATERAL_MAX) {
        snprintf(check, sizeof(check), "tdx.%s.size", what);
        return cg_reject(v, CG_EEVIDENCE, check, "<= 262144 bytes", "%zu", n);
    }
    top = json_loadb(doc, n, JSON_REJECT_DUPLICATES, &jerr);
    snprintf(check, sizeof(check), "tdx.%s.json", what);
    if (top == NULL || !json_is_object(top) || json_object_size(top) != 2 ||
        !json_is_object(json_object_get(top, member))) {
        rc = cg_reject(v, CG_EEVIDENCE, check, "{member, signature}", "%s",
                       top == NULL ? jerr.text : "other members");
        goto out;
    }
    const char *sig_hex = json_string_value(json_object_get(top, "signature"));
    snprintf(check, sizeof(check), "tdx.%s.signature", what);
    if (sig_hex == NULL || cg_unhex(sig, sizeof(sig), sig_hex) != 0) {
        rc = cg_reject(v, CG_EEVIDENCE, check, "128 hex digits", "malformed");
        goto out;
    }
    if (raw_member(doc, n, member, &raw, &raw_len) != 0) {
        rc = cg_reject(v, CG_EEVIDENCE, check, "signed member found", "not found verbatim");
        goto out;
    }
    int ok = ecdsa_verify_raw(key, (const uint8_t *)raw, raw_len, sig);
    if (ok != 1) {
        rc = ok < 0 ? ok
                    : cg_reject(v, CG_EEVIDENCE, check, "signed by Intel SGX TCB Signing",
                                "bad signature");
        goto out;
    }
    *out = json_loadb(raw, raw_len, JSON_REJECT_DUPLICATES, &jerr);
    if (*out == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        snprintf(check, sizeof(check), "tdx.%s.json", what);
        rc = cg_reject(v, CG_EEVIDENCE, check, "an object", "unparsable");
        goto out;
    }
    rc = 0;
out:
    json_decref(top);
    return rc;
}

/* Reads obj[key] as hex of exactly n bytes. */
static int json_hex(json_t *obj, const char *key, uint8_t *out, size_t n)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL && cg_unhex(out, n, s) == 0 ? 0 : -1;
}

/* Reads obj[key] as an integer in [0, max]. */
static int json_uint(json_t *obj, const char *key, json_int_t max, unsigned *out)
{
    json_t *j = json_object_get(obj, key);
    if (!json_is_integer(j) || json_integer_value(j) < 0 || json_integer_value(j) > max)
        return -1;
    *out = (unsigned)json_integer_value(j);
    return 0;
}

/* Checks issueDate <= at < nextUpdate of a collateral document. */
static int check_validity(json_t *doc, time_t at, const char *what, struct cg_verdict *v)
{
    char check[64], now[32];
    struct tm tm;
    if (gmtime_r(&at, &tm) == NULL || strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(now, sizeof(now), "%lld", (long long)at);
    time_t issue, next;
    const char *si = json_string_value(json_object_get(doc, "issueDate"));
    const char *sn = json_string_value(json_object_get(doc, "nextUpdate"));
    snprintf(check, sizeof(check), "tdx.%s.dates", what);
    if (cg_tdx_time_parse(si, &issue) != 0 || cg_tdx_time_parse(sn, &next) != 0)
        return cg_reject(v, CG_EEVIDENCE, check, "issueDate and nextUpdate", "malformed");
    if (at < issue) {
        snprintf(check, sizeof(check), "tdx.%s.not_yet_valid", what);
        return cg_reject(v, CG_EEVIDENCE, check, si, "now %s", now);
    }
    if (at >= next) {
        snprintf(check, sizeof(check), "tdx.%s.expired", what);
        return cg_reject(v, CG_EEVIDENCE, check, sn, "now %s", now);
    }
    return 0;
}

/* Reads a tcbLevels entry's status and appends its advisory IDs to st. */
static int level_status(json_t *level, enum cg_tdx_tcb_status *out, struct cg_tdx_status *st,
                        const char *what, struct cg_verdict *v)
{
    char check[64];
    snprintf(check, sizeof(check), "tdx.%s.tcb_level", what);
    const char *s = json_string_value(json_object_get(level, "tcbStatus"));
    if (s == NULL || cg_tdx_tcb_status_parse(s, out) != 0)
        return cg_reject(v, CG_EEVIDENCE, check, "a known tcbStatus", "%s", s ? s : "none");
    json_t *adv = json_object_get(level, "advisoryIDs");
    if (adv == NULL)
        return 0;
    if (!json_is_array(adv))
        return cg_reject(v, CG_EEVIDENCE, check, "advisoryIDs array", "other");
    size_t i;
    json_t *a;
    json_array_foreach(adv, i, a)
    {
        const char *id = json_string_value(a);
        if (id == NULL || strlen(id) >= sizeof(st->advisories[0]))
            return cg_reject(v, CG_EEVIDENCE, check, "advisory ids < 32 chars", "malformed");
        int dup = 0;
        for (size_t k = 0; k < st->n_advisories && !dup; k++)
            dup = strcmp(st->advisories[k], id) == 0;
        if (dup)
            continue;
        if (st->n_advisories == CG_TDX_MAX_ADVISORIES)
            return cg_reject(v, CG_EEVIDENCE, check, "<= 32 advisory ids", "more");
        snprintf(st->advisories[st->n_advisories++], sizeof(st->advisories[0]), "%s", id);
    }
    return 0;
}

/* QE identity (TD_QE): identity of the QE that signed the quote and its TCB status. */
static int check_qe_identity(json_t *id, const struct cg_tdx_quote *q, time_t at,
                             struct cg_tdx_status *st, struct cg_verdict *v)
{
    const struct cg_tdx_qe_report *qe = &q->qe_report;
    uint8_t mrsigner[32], attr[16], attr_mask[16], misc[4], misc_mask[4];
    unsigned version, prodid;
    char hex[65];
    const char *sid = json_string_value(json_object_get(id, "id"));
    if (sid == NULL || strcmp(sid, "TD_QE") != 0)
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.id", "TD_QE", "%s", sid ? sid : "none");
    if (json_uint(id, "version", 3, &version) != 0 || version < 2)
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.version", "2 or 3", "other");
    int rc = check_validity(id, at, "qe_identity", v);
    if (rc != 0)
        return rc;
    if (json_hex(id, "mrsigner", mrsigner, 32) != 0 || json_hex(id, "attributes", attr, 16) != 0 ||
        json_hex(id, "attributesMask", attr_mask, 16) != 0 ||
        json_hex(id, "miscselect", misc, 4) != 0 ||
        json_hex(id, "miscselectMask", misc_mask, 4) != 0 ||
        json_uint(id, "isvprodid", 0xFFFF, &prodid) != 0)
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.json", "identity fields", "malformed");
    if (memcmp(mrsigner, qe->mrsigner, 32) != 0) {
        cg_hex(hex, sizeof(hex), qe->mrsigner, 32);
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.mrsigner",
                         json_string_value(json_object_get(id, "mrsigner")), "%s", hex);
    }
    if (prodid != qe->isvprodid)
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.isvprodid", "as in QE identity",
                         "%u != %u", qe->isvprodid, prodid);
    /* miscselect is written as a big-endian number; the report holds it little-endian. */
    uint32_t want_misc =
        (uint32_t)misc[0] << 24 | (uint32_t)misc[1] << 16 | (uint32_t)misc[2] << 8 | misc[3];
    uint32_t mask_misc = (uint32_t)misc_mask[0] << 24 | (uint32_t)misc_mask[1] << 16 |
                         (uint32_t)misc_mask[2] << 8 | misc_mask[3];
    if ((qe->miscselect & mask_misc) != want_misc)
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.miscselect", "masked match", "0x%08x",
                         qe->miscselect);
    for (int i = 0; i < 16; i++) {
        if ((qe->attributes[i] & attr_mask[i]) != attr[i]) {
            cg_hex(hex, sizeof(hex), qe->attributes, 16);
            return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.attributes", "masked match", "%s",
                             hex);
        }
    }
    json_t *levels = json_object_get(id, "tcbLevels");
    size_t i;
    json_t *level;
    if (!json_is_array(levels))
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.json", "tcbLevels", "missing");
    json_array_foreach(levels, i, level)
    {
        unsigned isvsvn;
        if (json_uint(json_object_get(level, "tcb"), "isvsvn", 0xFFFF, &isvsvn) != 0)
            return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.tcb_level", "tcb.isvsvn",
                             "malformed");
        if (isvsvn <= qe->isvsvn)
            return level_status(level, &st->qe_status, st, "qe_identity", v);
    }
    return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.tcb", "a TCB level for the QE ISVSVN",
                     "isvsvn %u below every level", qe->isvsvn);
}

/* Reads a 16-entry [{"svn": n}, ...] component array. */
static int read_components(json_t *arr, uint8_t out[16])
{
    size_t i;
    json_t *c;
    unsigned svn;
    if (!json_is_array(arr) || json_array_size(arr) != 16)
        return -1;
    json_array_foreach(arr, i, c)
    {
        if (json_uint(c, "svn", 255, &svn) != 0)
            return -1;
        out[i] = (uint8_t)svn;
    }
    return 0;
}

/* Matches MRSIGNERSEAM and SEAMATTRIBUTES against a tdxModule(Identity) object. */
static int check_module_identity(json_t *m, const struct cg_tdx_quote *q, struct cg_verdict *v)
{
    uint8_t mrsigner[48], attr[8], mask[8], seam[8];
    char hex[97];
    if (json_hex(m, "mrsigner", mrsigner, 48) != 0 || json_hex(m, "attributes", attr, 8) != 0 ||
        json_hex(m, "attributesMask", mask, 8) != 0)
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.json", "tdxModule fields", "malformed");
    if (memcmp(mrsigner, q->mrsignerseam, 48) != 0) {
        cg_hex(hex, sizeof(hex), q->mrsignerseam, 48);
        return cg_reject(v, CG_EEVIDENCE, "tdx.tdx_module.mrsigner",
                         json_string_value(json_object_get(m, "mrsigner")), "%s", hex);
    }
    for (int i = 0; i < 8; i++)
        seam[i] = (uint8_t)(q->seam_attributes >> (8 * i));
    for (int i = 0; i < 8; i++) {
        if ((seam[i] & mask[i]) != attr[i]) {
            cg_hex(hex, sizeof(hex), seam, 8);
            return cg_reject(v, CG_EEVIDENCE, "tdx.tdx_module.attributes", "masked match", "%s",
                             hex);
        }
    }
    return 0;
}

/* TDX module: by TEE_TCB_SVN[1] (major version) in tdxModuleIdentities, else tdxModule. */
static int check_tdx_module(json_t *info, const struct cg_tdx_quote *q, struct cg_tdx_status *st,
                            struct cg_verdict *v)
{
    uint8_t version = q->tee_tcb_svn[1], isvsvn = q->tee_tcb_svn[0];
    json_t *module = json_object_get(info, "tdxModule");
    if (!json_is_object(module))
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.json", "tdxModule", "missing");
    if (version == 0) {
        st->module_status = CG_TDX_TCB_UP_TO_DATE;
        return check_module_identity(module, q, v);
    }
    char want[8];
    snprintf(want, sizeof(want), "TDX_%02X", version);
    json_t *ids = json_object_get(info, "tdxModuleIdentities"), *id, *found = NULL;
    size_t i;
    json_array_foreach(ids, i, id)
    {
        const char *s = json_string_value(json_object_get(id, "id"));
        /* Intel's QVL compares the identity ids case-insensitively. */
        if (s != NULL && strcasecmp(s, want) == 0) {
            found = id;
            break;
        }
    }
    if (found == NULL)
        return cg_reject(v, CG_EEVIDENCE, "tdx.tdx_module.identity", want, "not in TCB info");
    int rc = check_module_identity(found, q, v);
    if (rc != 0)
        return rc;
    json_t *levels = json_object_get(found, "tcbLevels"), *level;
    json_array_foreach(levels, i, level)
    {
        unsigned svn;
        if (json_uint(json_object_get(level, "tcb"), "isvsvn", 255, &svn) != 0)
            return cg_reject(v, CG_EEVIDENCE, "tdx.tdx_module.tcb_level", "tcb.isvsvn",
                             "malformed");
        if (svn <= isvsvn)
            return level_status(level, &st->module_status, st, "tdx_module", v);
    }
    return cg_reject(v, CG_EEVIDENCE, "tdx.tdx_module.tcb", "a TCB level for the module ISVSVN",
                     "%s isvsvn %u below every level", want, isvsvn);
}

/* TCB info (TDX, v3): FMSPC/PCE-ID, platform TCB level, TDX module. */
static int check_tcb_info(json_t *info, const struct cg_tdx_quote *q, time_t at,
                          struct cg_tdx_status *st, struct cg_verdict *v)
{
    uint8_t fmspc[6], pceid[2];
    unsigned version, evalnum, tcb_type;
    char hex[16];
    const char *sid = json_string_value(json_object_get(info, "id"));
    if (sid == NULL || strcmp(sid, "TDX") != 0)
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.id", "TDX", "%s", sid ? sid : "none");
    if (json_uint(info, "version", 1000, &version) != 0 || version != 3)
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.version", "3", "other");
    int rc = check_validity(info, at, "tcb_info", v);
    if (rc != 0)
        return rc;
    if (json_hex(info, "fmspc", fmspc, 6) != 0 || json_hex(info, "pceId", pceid, 2) != 0 ||
        json_uint(info, "tcbEvaluationDataNumber", UINT32_MAX, &evalnum) != 0 ||
        json_uint(info, "tcbType", 255, &tcb_type) != 0 || tcb_type != 0)
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.json", "fmspc, pceId, tcbType 0",
                         "malformed");
    st->tcb_evaluation_data_number = evalnum;
    if (memcmp(fmspc, q->pck.fmspc, 6) != 0) {
        cg_hex(hex, sizeof(hex), q->pck.fmspc, 6);
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.fmspc",
                         json_string_value(json_object_get(info, "fmspc")), "%s", hex);
    }
    if (memcmp(pceid, q->pck.pceid, 2) != 0) {
        cg_hex(hex, sizeof(hex), q->pck.pceid, 2);
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.pceid",
                         json_string_value(json_object_get(info, "pceId")), "%s", hex);
    }

    json_t *levels = json_object_get(info, "tcbLevels"), *level;
    json_t *match = NULL;
    size_t i;
    if (!json_is_array(levels))
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.json", "tcbLevels", "missing");
    /*
     * Intel's QVL (TcbLevelCheck matchTcbLevels): levels come highest first; the platform's
     * is the first one whose SGX components and PCESVN the PCK certificate meets and whose
     * TDX components TEE_TCB_SVN meets. When TEE_TCB_SVN[1] (the module's major version) is
     * not 0, components 0 and 1 are the module's and are graded by its identity instead.
     */
    int tdx_from = q->tee_tcb_svn[1] > 0 ? 2 : 0;
    json_array_foreach(levels, i, level)
    {
        json_t *tcb = json_object_get(level, "tcb");
        uint8_t sgx[16], tdx[16];
        unsigned pcesvn;
        if (read_components(json_object_get(tcb, "sgxtcbcomponents"), sgx) != 0 ||
            read_components(json_object_get(tcb, "tdxtcbcomponents"), tdx) != 0 ||
            json_uint(tcb, "pcesvn", 0xFFFF, &pcesvn) != 0)
            return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.tcb_level",
                             "sgx/tdx components and pcesvn", "malformed level %zu", i);
        int ok = q->pck.pcesvn >= pcesvn;
        for (int k = 0; k < 16 && ok; k++)
            ok = q->pck.sgx_tcb[k] >= sgx[k];
        for (int k = tdx_from; k < 16 && ok; k++)
            ok = q->tee_tcb_svn[k] >= tdx[k];
        if (ok) {
            match = level;
            break;
        }
    }
    if (match == NULL) {
        cg_hex(hex, sizeof(hex), q->tee_tcb_svn, 4);
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.tcb_level",
                         "a TCB level the platform meets (TCB not supported)",
                         "pcesvn %u, tee_tcb_svn %s...", q->pck.pcesvn, hex);
    }
    rc = level_status(match, &st->platform_status, st, "tcb_info", v);
    if (rc != 0)
        return rc;
    const char *date = json_string_value(json_object_get(match, "tcbDate"));
    snprintf(st->tcb_date, sizeof(st->tcb_date), "%s", date ? date : "");
    return check_tdx_module(info, q, st, v);
}

/* Applies authenticated TCB info and QE identity to a verified quote: statuses into st. */
static int apply_collateral(json_t *tcb_info, json_t *qe_id, const struct cg_tdx_quote *q,
                            time_t at, struct cg_tdx_status *st, struct cg_verdict *v)
{
    int rc = check_tcb_info(tcb_info, q, at, st, v);
    if (rc != 0)
        return rc;
    rc = check_qe_identity(qe_id, q, at, st, v);
    if (rc != 0)
        return rc;
    st->tcb_status =
        merge_status(merge_status(st->platform_status, st->module_status), st->qe_status);
    st->collateral = 1;
    return 0;
}

int cg__tdx_apply_collateral(const char *tcb_info, size_t tcb_info_len, const char *qe_identity,
                             size_t qe_identity_len, const struct cg_tdx_quote *q, time_t at,
                             struct cg_tdx_status *st, struct cg_verdict *v)
{
    json_error_t jerr;
    json_t *ti = json_loadb(tcb_info, tcb_info_len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *qi = json_loadb(qe_identity, qe_identity_len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = CG_ECONFIG;
    if (json_is_object(ti) && json_is_object(qi))
        rc = apply_collateral(ti, qi, q, at, st, v);
    json_decref(ti);
    json_decref(qi);
    return rc;
}

/* 1 when s[0..n) contains the NUL-free string needle. */
static int contains(const uint8_t *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            return 1;
    return 0;
}

int cg_tdx_collateral_from_blobs(const uint8_t *const *blobs, const size_t *lens, size_t n,
                                 struct cg_tdx_collateral *col, struct cg_verdict *v)
{
    memset(col, 0, sizeof(*col));
    for (size_t i = 0; i < n; i++) {
        const char *text = (const char *)blobs[i], *member;
        size_t len = lens[i], mlen, ws = skip_ws(text, len, 0);
        const char **slot = NULL;
        size_t *slot_len = NULL;
        if (ws < len && text[ws] == '{' && raw_member(text, len, "tcbInfo", &member, &mlen) == 0) {
            slot = &col->tcb_info;
            slot_len = &col->tcb_info_len;
        } else if (ws < len && text[ws] == '{' &&
                   raw_member(text, len, "enclaveIdentity", &member, &mlen) == 0) {
            slot = &col->qe_identity;
            slot_len = &col->qe_identity_len;
        } else if (contains(blobs[i], len, "-----BEGIN CERTIFICATE-----")) {
            slot = &col->tcb_chain;
            slot_len = &col->tcb_chain_len;
        } else if ((len > 0 && blobs[i][0] == 0x30) ||
                   contains(blobs[i], len, "-----BEGIN X509 CRL-----")) {
            if (col->n_crls == CG_TDX_MAX_CRLS)
                return cg_reject(v, CG_EEVIDENCE, "tdx.collateral", "<= 4 CRLs", "more");
            col->crls[col->n_crls] = blobs[i];
            col->crl_lens[col->n_crls++] = len;
            continue;
        } else {
            return cg_reject(v, CG_EEVIDENCE, "tdx.collateral",
                             "TCB info, QE identity, TCB signing chain or CRL",
                             "unrecognized blob %zu", i);
        }
        if (*slot != NULL)
            return cg_reject(v, CG_EEVIDENCE, "tdx.collateral", "one of each document",
                             "blob %zu repeats one", i);
        *slot = text;
        *slot_len = len;
    }
    return 0;
}

/* ---- verification -------------------------------------------------------------------- */

static int check_qe_binding(const struct cg_tdx_quote *q, struct cg_verdict *v)
{
    uint8_t want[64] = {0};
    char hex[129];
    unsigned int dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, q->attest_key, 64) == 1 &&
             EVP_DigestUpdate(md, q->qe_auth, q->qe_auth_len) == 1 &&
             EVP_DigestFinal_ex(md, want, &dlen) == 1 && dlen == 32;
    EVP_MD_CTX_free(md);
    if (!ok)
        return CG_ECRYPTO;
    if (memcmp(want, q->qe_report.report_data, 64) != 0) {
        cg_hex(hex, sizeof(hex), q->qe_report.report_data, 64);
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_report_data",
                         "SHA-256(attestation key || QE auth data) || 0^32", "%s", hex);
    }
    return 0;
}

static int collateral_shape(const struct cg_tdx_collateral *col, struct cg_verdict *v)
{
    int n = (col->tcb_info != NULL) + (col->qe_identity != NULL) + (col->tcb_chain != NULL);
    if (n != 0 && n != 3)
        return cg_reject(v, CG_EEVIDENCE, "tdx.collateral",
                         "TCB info, QE identity and their chain together", "%d of 3", n);
    if (col->n_crls > CG_TDX_MAX_CRLS)
        return cg_reject(v, CG_EEVIDENCE, "tdx.collateral", "<= 4 CRLs", "%zu", col->n_crls);
    return 0;
}

int cg_tdx_verify(const uint8_t *quote, size_t len, const struct cg_tdx_collateral *col, time_t at,
                  struct cg_tdx_quote *q, struct cg_tdx_status *st, struct cg_verdict *v)
{
    static const char *const pck_leaf_cn[] = {"Intel SGX PCK Certificate", NULL};
    static const char *const pck_ca_cn[] = {"Intel SGX PCK Platform CA",
                                            "Intel SGX PCK Processor CA", NULL};
    static const char *const tcb_cn[] = {"Intel SGX TCB Signing", NULL};
    X509 *chain[MAX_CHAIN] = {NULL}, *tchain[MAX_CHAIN] = {NULL};
    X509 *root = NULL, *pck_ca = NULL;
    EVP_PKEY *ak = NULL;
    json_t *tcb_info = NULL, *qe_id = NULL;
    int rc, ok;
    memset(st, 0, sizeof(*st));
    rc = cg_tdx_quote_parse(quote, len, q, v);
    if (rc != 0)
        goto out;
    if (col != NULL && (rc = collateral_shape(col, v)) != 0)
        goto out;
    root = pinned_root();
    if (root == NULL) {
        rc = cg_reject(v, CG_ECRYPTO, "tdx.root", ROOT_NAME, "not embedded");
        goto out;
    }

    /* PCK chain, then the identity of what it certifies. */
    int n = read_pem_chain(q->pck_chain, q->pck_chain_len, chain);
    if (n < 2) {
        rc = cg_reject(v, CG_EEVIDENCE, "tdx.pck_chain.parse", "2 to 4 PEM certificates",
                       "unreadable");
        goto out;
    }
    rc = verify_chain(chain, n, root, at, 3, "tdx.pck_chain", &pck_ca, v);
    if (rc != 0)
        goto out;
    if (!subject_cn_is(chain[0], pck_leaf_cn) || !subject_cn_is(pck_ca, pck_ca_cn)) {
        rc = cg_reject(v, CG_EEVIDENCE, "tdx.pck_chain.subject",
                       "Intel SGX PCK Certificate under a PCK Platform/Processor CA", "other");
        goto out;
    }
    rc = parse_pck_extension(chain[0], &q->pck, v);
    if (rc != 0)
        goto out;

    if (col != NULL && col->tcb_chain != NULL) {
        int tn = read_pem_chain(col->tcb_chain, col->tcb_chain_len, tchain);
        if (tn < 1) {
            rc = cg_reject(v, CG_EEVIDENCE, "tdx.tcb_chain.parse", "1 to 4 PEM certificates",
                           "unreadable");
            goto out;
        }
        rc = verify_chain(tchain, tn, root, at, 2, "tdx.tcb_chain", NULL, v);
        if (rc != 0)
            goto out;
        if (!subject_cn_is(tchain[0], tcb_cn)) {
            rc = cg_reject(v, CG_EEVIDENCE, "tdx.tcb_chain.subject", "Intel SGX TCB Signing",
                           "other");
            goto out;
        }
    }

    /* CRLs: the root's covers the PCK CA and the TCB signer, the PCK CA's the PCK leaf. */
    if (col != NULL) {
        X509 *const cas[] = {root, pck_ca};
        X509 *const covered[] = {chain[0], pck_ca, tchain[0]};
        static const char *const names[] = {"pck", "pck_ca", "tcb_signing"};
        for (size_t i = 0; i < col->n_crls; i++) {
            size_t issuer = 0;
            rc = apply_crl(col->crls[i], col->crl_lens[i], cas, 2, covered, names, 3, at, &issuer,
                           v);
            if (rc != 0)
                goto out;
            *(issuer == 0 ? &st->root_crl : &st->pck_crl) = 1;
        }
        st->n_crls = col->n_crls;
    }

    /* The QE report, signed by the PCK, binds the attestation key. */
    EVP_PKEY *pck_key = X509_get0_pubkey(chain[0]);
    if (!is_p256(pck_key)) {
        rc = cg_reject(v, CG_EEVIDENCE, "tdx.pck.key", "EC P-256", "other");
        goto out;
    }
    ok = ecdsa_verify_raw(pck_key, q->qe_report_raw, CG_TDX_QE_REPORT_SIZE, q->qe_report_sig);
    if (ok != 1) {
        rc = ok < 0 ? ok
                    : cg_reject(v, CG_EEVIDENCE, "tdx.qe_report_signature",
                                "signed by the PCK leaf", "bad signature");
        goto out;
    }
    rc = check_qe_binding(q, v);
    if (rc != 0)
        goto out;
    ak = p256_key(q->attest_key);
    if (ak == NULL) {
        rc = cg_reject(v, CG_EEVIDENCE, "tdx.attestation_key", "a P-256 point", "invalid");
        goto out;
    }
    ok = ecdsa_verify_raw(ak, quote, q->signed_len, q->signature);
    if (ok != 1) {
        rc = ok < 0 ? ok
                    : cg_reject(v, CG_EEVIDENCE, "tdx.quote_signature",
                                "signed by the attestation key", "bad signature");
        goto out;
    }

    if (col != NULL && col->tcb_info != NULL) {
        EVP_PKEY *tkey = X509_get0_pubkey(tchain[0]);
        if (!is_p256(tkey)) {
            rc = cg_reject(v, CG_EEVIDENCE, "tdx.tcb_chain.key", "EC P-256", "other");
            goto out;
        }
        rc = verify_signed_json(col->tcb_info, col->tcb_info_len, "tcbInfo", tkey, "tcb_info",
                                &tcb_info, v);
        if (rc != 0)
            goto out;
        rc = verify_signed_json(col->qe_identity, col->qe_identity_len, "enclaveIdentity", tkey,
                                "qe_identity", &qe_id, v);
        if (rc != 0)
            goto out;
        rc = apply_collateral(tcb_info, qe_id, q, at, st, v);
        if (rc != 0)
            goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    json_decref(tcb_info);
    json_decref(qe_id);
    EVP_PKEY_free(ak);
    X509_free(pck_ca);
    X509_free(root);
    free_chain(chain);
    free_chain(tchain);
    return rc;
}

/* ---- policy -------------------------------------------------------------------------- */

void cg_tdx_policy_default(struct cg_tdx_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->present = 1;
    p->require_sept_ve_disable = 1;
    p->require_crls = 1;
    p->accepted_tcb = 1u << CG_TDX_TCB_UP_TO_DATE;
}

static int perr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int perr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL && errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return CG_ECONFIG;
}

/* A 48-byte allowlist: one hex string or an array of them. */
static int parse_allow48(json_t *j, const char *key, struct cg_tdx_allow48 *out, char *err,
                         size_t errlen)
{
    if (json_is_string(j)) {
        if (cg_unhex(out->v[0], 48, json_string_value(j)) != 0)
            return perr(err, errlen, "tdx.%s: expected 96 hex digits", key);
        out->n = 1;
        return 0;
    }
    if (!json_is_array(j) || json_array_size(j) == 0)
        return perr(err, errlen, "tdx.%s: expected a hex string or a non-empty array", key);
    if (json_array_size(j) > CG_TDX_POLICY_MAX_VALUES)
        return perr(err, errlen, "tdx.%s: at most %d values", key, CG_TDX_POLICY_MAX_VALUES);
    size_t i;
    json_t *e;
    json_array_foreach(j, i, e)
    {
        const char *s = json_string_value(e);
        if (s == NULL || cg_unhex(out->v[i], 48, s) != 0)
            return perr(err, errlen, "tdx.%s[%zu]: expected 96 hex digits", key, i);
    }
    out->n = json_array_size(j);
    return 0;
}

/* The boolean policy keys. */
static int *bool_key(struct cg_tdx_policy *p, const char *key)
{
    if (strcmp(key, "allow_debug") == 0)
        return &p->allow_debug;
    if (strcmp(key, "require_sept_ve_disable") == 0)
        return &p->require_sept_ve_disable;
    if (strcmp(key, "require_crls") == 0)
        return &p->require_crls;
    return NULL;
}

int cg_tdx_policy_parse(const void *json_object, struct cg_tdx_policy *out, char *err,
                        size_t errlen)
{
    json_t *obj = (json_t *)json_object;
    const char *key;
    json_t *val;
    int *flag;
    cg_tdx_policy_default(out);
    if (!json_is_object(obj))
        return perr(err, errlen, "tdx: expected an object");
    json_object_foreach(obj, key, val)
    {
        struct cg_tdx_allow48 *allow = NULL;
        if (strcmp(key, "mrtd") == 0)
            allow = &out->mrtd;
        else if (strncmp(key, "rtmr", 4) == 0 && key[4] >= '0' && key[4] <= '3' && key[5] == 0)
            allow = &out->rtmr[key[4] - '0'];
        else if (strcmp(key, "mrseam") == 0)
            allow = &out->mrseam;
        else if (strcmp(key, "mrconfigid") == 0)
            allow = &out->mrconfigid;
        else if (strcmp(key, "mrowner") == 0)
            allow = &out->mrowner;
        else if (strcmp(key, "mrownerconfig") == 0)
            allow = &out->mrownerconfig;
        else if (strcmp(key, "mrservicetd") == 0)
            allow = &out->mrservicetd;
        if (allow != NULL) {
            int rc = parse_allow48(val, key, allow, err, errlen);
            if (rc != 0)
                return rc;
        } else if ((flag = bool_key(out, key)) != NULL) {
            if (!json_is_boolean(val))
                return perr(err, errlen, "tdx.%s: expected true or false", key);
            *flag = json_is_true(val);
        } else if (strcmp(key, "xfam") == 0) {
            const char *s = json_string_value(val);
            if (s == NULL || cg_unhex(out->xfam, 8, s) != 0)
                return perr(err, errlen, "tdx.xfam: expected 16 hex digits");
            out->has_xfam = 1;
        } else if (strcmp(key, "accepted_tcb_statuses") == 0) {
            size_t i;
            json_t *e;
            if (!json_is_array(val) || json_array_size(val) == 0)
                return perr(err, errlen, "tdx.accepted_tcb_statuses: expected a non-empty array");
            out->accepted_tcb = 0;
            json_array_foreach(val, i, e)
            {
                enum cg_tdx_tcb_status s;
                const char *name = json_string_value(e);
                if (name == NULL || cg_tdx_tcb_status_parse(name, &s) != 0)
                    return perr(err, errlen, "tdx.accepted_tcb_statuses[%zu]: unknown status", i);
                if (s == CG_TDX_TCB_REVOKED)
                    return perr(err, errlen,
                                "tdx.accepted_tcb_statuses[%zu]: Revoked is never acceptable", i);
                out->accepted_tcb |= 1u << s;
            }
        } else {
            return perr(err, errlen, "tdx.%s: unknown key", key);
        }
    }
    return 0;
}

/* Checks value against an allowlist (n == 0: any value, unless zero_default). */
static int check_allow48(const struct cg_tdx_allow48 *a, const uint8_t value[48], int zero_default,
                         const char *check, struct cg_verdict *v)
{
    static const uint8_t zero[48];
    char hex[97], want[256];
    if (a->n == 0 && (!zero_default || memcmp(value, zero, 48) == 0))
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (memcmp(a->v[i], value, 48) == 0)
            return 0;
    if (a->n == 0) {
        snprintf(want, sizeof(want), "all zero");
    } else {
        cg_hex(want, sizeof(want), a->v[0], 48);
        if (a->n > 1)
            snprintf(want + 96, sizeof(want) - 96, " or %zu other allowed values", a->n - 1);
    }
    cg_hex(hex, sizeof(hex), value, 48);
    return cg_reject(v, CG_EPOLICY, check, want, "%s", hex);
}

int cg_tdx_appraise(const struct cg_tdx_policy *p, const struct cg_tdx_quote *q,
                    const struct cg_tdx_status *st, struct cg_verdict *v)
{
    static const char *const rtmr_checks[4] = {"tdx.rtmr0", "tdx.rtmr1", "tdx.rtmr2", "tdx.rtmr3"};
    uint64_t attr = q->td_attributes;
    int rc;
    if (attr & CG_TDX_ATTR_RESERVED)
        return cg_reject(v, CG_EPOLICY, "tdx.attributes.reserved", "0", "0x%016llx",
                         (unsigned long long)(attr & CG_TDX_ATTR_RESERVED));
    if ((attr & CG_TDX_ATTR_DEBUG) && !p->allow_debug)
        return cg_reject(v, CG_EPOLICY, "tdx.attributes.debug", "false", "true");
    if (!(attr & CG_TDX_ATTR_SEPT_VE_DISABLE) && p->require_sept_ve_disable)
        return cg_reject(v, CG_EPOLICY, "tdx.attributes.sept_ve_disable", "true", "false");
    if (p->has_xfam) {
        uint8_t xfam[8];
        char want[17], got[17];
        for (int i = 0; i < 8; i++)
            xfam[i] = (uint8_t)(q->xfam >> (8 * i));
        if (memcmp(xfam, p->xfam, 8) != 0) {
            cg_hex(want, sizeof(want), p->xfam, 8);
            cg_hex(got, sizeof(got), xfam, 8);
            return cg_reject(v, CG_EPOLICY, "tdx.xfam", want, "%s", got);
        }
    }
    if ((rc = check_allow48(&p->mrtd, q->mrtd, 0, "tdx.mrtd", v)) != 0)
        return rc;
    for (int i = 0; i < 4; i++)
        if ((rc = check_allow48(&p->rtmr[i], q->rtmr[i], 0, rtmr_checks[i], v)) != 0)
            return rc;
    if ((rc = check_allow48(&p->mrseam, q->mrseam, 0, "tdx.mrseam", v)) != 0 ||
        (rc = check_allow48(&p->mrconfigid, q->mrconfigid, 0, "tdx.mrconfigid", v)) != 0 ||
        (rc = check_allow48(&p->mrowner, q->mrowner, 0, "tdx.mrowner", v)) != 0 ||
        (rc = check_allow48(&p->mrownerconfig, q->mrownerconfig, 0, "tdx.mrownerconfig", v)) != 0 ||
        (rc = check_allow48(&p->mrservicetd, q->mrservicetd, 1, "tdx.mrservicetd", v)) != 0)
        return rc;
    if (p->require_crls && !(st->root_crl && st->pck_crl))
        return cg_reject(v, CG_EPOLICY, "tdx.crls", "root CA CRL and PCK CA CRL applied",
                         "root CRL %s, PCK CRL %s", st->root_crl ? "applied" : "missing",
                         st->pck_crl ? "applied" : "missing");
    if (!(p->accepted_tcb & (1u << st->tcb_status))) {
        char want[256] = "";
        size_t o = 0;
        for (unsigned s = CG_TDX_TCB_UP_TO_DATE; s < CG_TDX_TCB_REVOKED; s++)
            if (p->accepted_tcb & (1u << s))
                o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%s", o ? "," : "",
                                      status_names[s]);
        return cg_reject(v, CG_EPOLICY, "tdx.tcb_status", want, "%s",
                         cg_tdx_tcb_status_name(st->tcb_status));
    }
    return 0;
}
