/*
 * The TDX verifier's X.509 side: ECDSA helpers, the PCK and TCB signing chains to the pinned
 * Intel SGX Root CA, the PCK certificate's SGX extension (PPID, TCB, PCE-ID, FMSPC) and CRLs.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

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

#include "ccgate/x509.h"
#include "tdx_int.h"

/* ---- crypto helpers ------------------------------------------------------------------ */

/* Verifies an ECDSA P-256/SHA-256 raw r||s signature: 1 valid, 0 invalid, <0 error. */
int cg__tdx_ecdsa_verify(EVP_PKEY *key, const uint8_t *msg, size_t n, const uint8_t sig[64])
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
EVP_PKEY *cg__tdx_p256_key(const uint8_t xy[64])
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
int cg__tdx_is_p256(EVP_PKEY *key)
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

X509 *cg__tdx_pinned_root(void)
{
    return cg_x509_pinned(CG__TDX_ROOT_NAME);
}

/* Reads up to CG__TDX_MAX_CHAIN PEM certificates from pem[0..n); returns how many, or -1. */
int cg__tdx_read_chain(const char *pem, size_t n, X509 *out[CG__TDX_MAX_CHAIN])
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
        if (count == CG__TDX_MAX_CHAIN) {
            X509_free(x);
            count = -1;
            break;
        }
        out[count++] = x;
    }
    ERR_clear_error();
    BIO_free(bio);
    if (count < 0) {
        for (int i = 0; i < CG__TDX_MAX_CHAIN; i++) {
            X509_free(out[i]);
            out[i] = NULL;
        }
    }
    return count;
}

void cg__tdx_free_chain(X509 *c[CG__TDX_MAX_CHAIN])
{
    for (int i = 0; i < CG__TDX_MAX_CHAIN; i++) {
        X509_free(c[i]);
        c[i] = NULL;
    }
}

static int is_self_signed(X509 *x)
{
    return X509_NAME_cmp(X509_get_subject_name(x), X509_get_issuer_name(x)) == 0;
}

int cg__tdx_subject_cn_is(X509 *x, const char *const *names)
{
    char cn[128];
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn)) <= 0)
        return 0;
    for (; *names != NULL; names++)
        if (strcmp(cn, *names) == 0)
            return 1;
    return 0;
}

/* 1 when a and b have the same DER encoding. */
static int same_der(X509 *a, X509 *b)
{
    unsigned char *da = NULL, *db = NULL;
    int na = i2d_X509(a, &da), nb = i2d_X509(b, &db);
    int same = na > 0 && na == nb && memcmp(da, db, (size_t)na) == 0;
    OPENSSL_free(da);
    OPENSSL_free(db);
    return same;
}

/*
 * Verifies chain[0] up to the pinned root at `at` (strict X.509, exactly `depth` certs
 * including the root). A self-signed cert carried in the chain must be the pinned root
 * itself. check names the chain in verdicts ("tdx.pck_chain", "tdx.tcb_chain"). On success
 * *ca_out (when not NULL) holds a reference to the certificate above chain[0]: caller frees.
 */
int cg__tdx_verify_chain(X509 *chain[CG__TDX_MAX_CHAIN], int n, X509 *root, time_t at, int depth,
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
    /* As Intel's QVL: each certificate carried is the one at its place in the chain that was
     * built (no extra or unused ones), and a carried root is the pinned one byte for byte. */
    for (int i = 0; i < n; i++) {
        if (i < depth && same_der(chain[i], sk_X509_value(built, i)))
            continue;
        if (i >= depth) {
            char want[48];
            snprintf(want, sizeof(want), "at most %d certificates", depth);
            snprintf(name, sizeof(name), "%s.extra", check);
            rc = cg_reject(v, CG_EEVIDENCE, name, want, "%d", n);
        } else if (i == depth - 1) {
            snprintf(name, sizeof(name), "%s.root", check);
            rc = cg_reject(v, CG_EEVIDENCE, name, "the pinned Intel SGX Root CA, byte for byte",
                           "another encoding or certificate");
        } else {
            snprintf(name, sizeof(name), "%s.order", check);
            rc = cg_reject(v, CG_EEVIDENCE, name, "leaf, then its issuers up to the root",
                           "certificate %d is not in the verified chain at that place", i);
        }
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
int cg__tdx_pck_extension(X509 *leaf, struct cg_tdx_pck_info *pck, struct cg_verdict *v)
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
int cg__tdx_apply_crl(const uint8_t *buf, size_t n, X509 *const *cas, size_t n_cas,
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
    X509 *ca[CG__TDX_MAX_CHAIN] = {NULL}, *cert[CG__TDX_MAX_CHAIN] = {NULL};
    size_t issuer;
    int rc = CG_ECONFIG;
    if (cg__tdx_read_chain(ca_pem, ca_len, ca) == 1 &&
        cg__tdx_read_chain(cert_pem, cert_len, cert) == 1)
        rc = cg__tdx_apply_crl(crl, crl_len, ca, 1, cert, names, 1, at, &issuer, v);
    cg__tdx_free_chain(ca);
    cg__tdx_free_chain(cert);
    return rc;
}
