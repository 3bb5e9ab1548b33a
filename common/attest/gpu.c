#include "ccgate/gpu.h"
#include "ccgate/x509.h"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEVICE_ROOT "nvidia/device_identity_ca.pem"

const char *cg_gpu_arch_name(enum cg_gpu_arch a)
{
    switch (a) {
    case CG_GPU_HOPPER:
        return "hopper";
    case CG_GPU_BLACKWELL:
        return "blackwell";
    default:
        return "unknown";
    }
}

void cg_gpu_chain_clear(struct cg_gpu_chain *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->certs[i]);
    memset(c, 0, sizeof(*c));
}

int cg_gpu_chain_load(const uint8_t *pem, size_t len, struct cg_gpu_chain *c, struct cg_verdict *v)
{
    memset(c, 0, sizeof(*c));
    if (len > CG_GPU_CHAIN_MAX_BYTES)
        return cg_reject(v, CG_EEVIDENCE, "gpu.chain", "at most 16 KiB of PEM", "%zu bytes", len);
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    int rc = 0;
    X509 *x;
    while (b != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        unsigned char *der = NULL;
        int n = i2d_X509(x, &der);
        X509_free(x);
        if (n <= 0 || c->n == CG_GPU_MAX_CHAIN) {
            OPENSSL_free(der);
            rc = cg_reject(v, CG_EEVIDENCE, "gpu.chain", "at most 5 certificates", "more");
            goto out;
        }
        c->certs[c->n] = malloc((size_t)n);
        if (c->certs[c->n] == NULL) {
            OPENSSL_free(der);
            rc = CG_ECRYPTO;
            goto out;
        }
        memcpy(c->certs[c->n], der, (size_t)n);
        c->cert_lens[c->n++] = (size_t)n;
        OPENSSL_free(der);
    }
    if (c->n == 0)
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.chain", "PEM certificates", "none readable");
out:
    BIO_free(b);
    ERR_clear_error();
    if (rc != 0)
        cg_gpu_chain_clear(c);
    return rc;
}

/* ECDSA P-384 / SHA-384 over buf[0..signed_len), r || s big-endian. */
static int check_signature(const uint8_t *buf, const struct cg_spdm_report *r, X509 *leaf,
                           struct cg_verdict *v)
{
    int rc = CG_ECRYPTO;
    char what[32];
    if (!cg_x509_key_p384(leaf, what, sizeof(what)))
        return cg_reject(v, CG_EEVIDENCE, "gpu.leaf.key", "EC P-384", "%s", what);
    EVP_PKEY *pk = X509_get0_pubkey(leaf);
    unsigned char *der = NULL;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *br = BN_bin2bn(r->signature, CG_SPDM_SIG_LEN / 2, NULL);
    BIGNUM *bs = BN_bin2bn(r->signature + CG_SPDM_SIG_LEN / 2, CG_SPDM_SIG_LEN / 2, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (sig == NULL || br == NULL || bs == NULL || md == NULL || ECDSA_SIG_set0(sig, br, bs) != 1) {
        cg_reject(v, rc, "gpu.signature", "verifiable", "out of memory");
        goto out;
    }
    br = bs = NULL;
    int der_len = i2d_ECDSA_SIG(sig, &der);
    if (der_len <= 0 || EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, pk) != 1) {
        cg_reject(v, rc, "gpu.signature", "verifiable", "ECDSA setup failed");
        goto out;
    }
    if (EVP_DigestVerify(md, der, (size_t)der_len, buf, r->signed_len) != 1) {
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.signature",
                       "valid ECDSA P-384 signature by the leaf certificate", "invalid");
        goto out;
    }
    rc = 0;
out:
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    BN_free(br);
    BN_free(bs);
    ECDSA_SIG_free(sig);
    return rc;
}

/* One DER TLV at *p within end: 0 with tag, class, constructed flag and content bounds. */
static int tlv(const unsigned char **p, const unsigned char *end, int *tag, int *cls, int *cons,
               const unsigned char **content, long *len)
{
    if (*p >= end)
        return -1;
    const unsigned char *q = *p;
    int ret = ASN1_get_object(&q, len, tag, cls, (long)(end - *p));
    if ((ret & 0x80) != 0 || ret == 0x21 || *len > end - q) /* error or indefinite length */
        return -1;
    *cons = (ret & V_ASN1_CONSTRUCTED) != 0;
    *content = q;
    *p = q + *len;
    return 0;
}

/* FWID = SEQUENCE { hashAlg OID, digest OCTET STRING } with a 48-byte digest. */
static int fwid_digest(const unsigned char *p, const unsigned char *end, uint8_t out[48])
{
    int tag, cls, cons;
    const unsigned char *c, *d;
    long len, dlen;
    if (tlv(&p, end, &tag, &cls, &cons, &c, &len) != 0 || tag != V_ASN1_SEQUENCE || !cons ||
        p != end)
        return -1;
    const unsigned char *q = c, *qend = c + len;
    if (tlv(&q, qend, &tag, &cls, &cons, &d, &dlen) != 0 || tag != V_ASN1_OBJECT ||
        tlv(&q, qend, &tag, &cls, &cons, &d, &dlen) != 0 || tag != V_ASN1_OCTET_STRING || cons ||
        q != qend || dlen != CG_SPDM_FWID_LEN)
        return -1;
    memcpy(out, d, CG_SPDM_FWID_LEN);
    return 0;
}

/*
 * The FWID in extension 2.23.133.5.4.1. Blackwell's is a TCG DiceTcbInfo (a SEQUENCE of
 * context-tagged fields; fwids is [6], a SEQUENCE OF FWID): fwids[0]. Hopper's is a SEQUENCE
 * whose last element is the FWID: its 48-byte digest, which ends the extension.
 */
static int leaf_fwid(X509 *leaf, enum cg_gpu_arch *arch, uint8_t out[48], struct cg_verdict *v)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(CG_GPU_OID_DICE_TCB, 1);
    int i = obj != NULL ? X509_get_ext_by_OBJ(leaf, obj, -1) : -1;
    int again = i >= 0 ? X509_get_ext_by_OBJ(leaf, obj, i) : -1;
    ASN1_OBJECT_free(obj);
    if (i < 0 || again >= 0)
        return cg_reject(v, CG_EEVIDENCE, "gpu.fwid", "one " CG_GPU_OID_DICE_TCB " extension",
                         "%s in the leaf certificate", i < 0 ? "none" : "more than one");
    const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(leaf, i));
    const unsigned char *p = ASN1_STRING_get0_data(os);
    const unsigned char *end = p + ASN1_STRING_length(os);
    int tag, cls, cons;
    const unsigned char *c, *e;
    long len, elen;
    if (tlv(&p, end, &tag, &cls, &cons, &c, &len) != 0 || tag != V_ASN1_SEQUENCE || !cons ||
        p != end)
        goto bad;
    const unsigned char *q = c, *qend = c + len, *last = NULL;
    while (q < qend) {
        const unsigned char *start = q;
        if (tlv(&q, qend, &tag, &cls, &cons, &e, &elen) != 0)
            goto bad;
        if (cls == V_ASN1_CONTEXT_SPECIFIC) {
            if (tag != 6)
                continue;
            /* fwids [6] IMPLICIT SEQUENCE OF FWID: take the first */
            const unsigned char *f = e, *fend = e + elen, *fstart = e;
            if (!cons || tlv(&f, fend, &tag, &cls, &cons, &c, &len) != 0 ||
                fwid_digest(fstart, f, out) != 0)
                goto bad;
            *arch = CG_GPU_BLACKWELL;
            return 0;
        }
        last = start;
    }
    if (last != NULL && fwid_digest(last, qend, out) == 0) {
        *arch = CG_GPU_HOPPER;
        return 0;
    }
bad:
    return cg_reject(v, CG_EEVIDENCE, "gpu.fwid",
                     "a Hopper TcbInfo ending in the FWID, or a DiceTcbInfo with fwids",
                     "malformed " CG_GPU_OID_DICE_TCB " extension");
}

int cg_gpu_leaf_fwid(const uint8_t *der, size_t len, enum cg_gpu_arch *arch,
                     uint8_t fwid[CG_SPDM_FWID_LEN], struct cg_verdict *v)
{
    X509 *x = cg_x509_der(der, len);
    if (x == NULL)
        return cg_reject(v, CG_EEVIDENCE, "gpu.leaf", "a DER certificate", "unparsable");
    int rc = leaf_fwid(x, arch, fwid, v);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

static int verify_chain(X509 *leaf, X509 *const *mid, size_t n_mid, X509 *root, time_t at,
                        struct cg_verdict *v)
{
    int rc = CG_ECRYPTO;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    if (store == NULL || ctx == NULL || untrusted == NULL || X509_STORE_add_cert(store, root) != 1)
        goto oom;
    for (size_t i = 0; i < n_mid; i++)
        if (sk_X509_push(untrusted, mid[i]) <= 0)
            goto oom;
    if (X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1)
        goto oom;
    X509_VERIFY_PARAM *pm = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(pm, at);
    X509_VERIFY_PARAM_set_flags(pm, X509_V_FLAG_CHECK_SS_SIGNATURE);
    X509_VERIFY_PARAM_set_depth(pm, CG_GPU_MAX_CHAIN - 2);
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        int time_err = err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID;
        rc = cg_reject(v, CG_EEVIDENCE, time_err ? "gpu.chain.validity" : "gpu.chain",
                       "leaf -> ... -> the pinned root, valid", "%s (depth %d)",
                       X509_verify_cert_error_string(err), X509_STORE_CTX_get_error_depth(ctx));
        goto out;
    }
    rc = 0;
    goto out;
oom:
    cg_reject(v, rc, "gpu.chain", "verifiable", "out of memory");
out:
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

/* The root the chain must end at: the pinned one, or the sim root the anchor names. */
static int check_root(X509 *last, const uint8_t *last_der, size_t last_len,
                      const struct cg_gpu_anchor *anchor, X509 **root, uint8_t sha[32],
                      struct cg_verdict *v)
{
    char e[65], a[65];
    if (EVP_Digest(last_der, last_len, sha, NULL, EVP_sha256(), NULL) != 1)
        return CG_ECRYPTO;
    cg_hex(a, sizeof(a), sha, 32);
    if (anchor->sim) {
        cg_hex(e, sizeof(e), anchor->sim_root_sha256, 32);
        if (memcmp(sha, anchor->sim_root_sha256, 32) != 0)
            return cg_reject(v, CG_EEVIDENCE, "gpu.chain.root", e, "%s", a);
        if (!X509_up_ref(last))
            return CG_ECRYPTO;
        *root = last;
        return 0;
    }
    *root = cg_x509_pinned(DEVICE_ROOT);
    if (*root == NULL)
        return cg_reject(v, CG_ECRYPTO, "gpu.chain.root", DEVICE_ROOT, "not embedded");
    uint8_t want[32];
    unsigned int n = 0;
    if (X509_digest(*root, EVP_sha256(), want, &n) != 1)
        return CG_ECRYPTO;
    cg_hex(e, sizeof(e), want, 32);
    if (memcmp(sha, want, 32) != 0)
        return cg_reject(v, CG_EEVIDENCE, "gpu.chain.root", e, "%s", a);
    return 0;
}

int cg_gpu_verify_report(const uint8_t *report, size_t len, const struct cg_gpu_chain *chain,
                         const struct cg_gpu_anchor *anchor, const uint8_t *nonce, time_t at,
                         struct cg_spdm_report *r, struct cg_gpu_device *d, struct cg_verdict *v)
{
    X509 *x[CG_GPU_MAX_CHAIN] = {0}, *root = NULL;
    int rc = cg_spdm_parse(report, len, r, v);
    memset(d, 0, sizeof(*d));
    if (rc != 0)
        return rc;
    if (chain->n < 2) {
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.chain", "leaf, intermediates and root (2 to 5)",
                       "%zu certificate", chain->n);
        goto out;
    }
    for (size_t i = 0; i < chain->n; i++)
        if ((x[i] = cg_x509_der(chain->certs[i], chain->cert_lens[i])) == NULL) {
            rc = cg_reject(v, CG_EEVIDENCE, "gpu.chain", "DER certificates",
                           "certificate %zu unparsable", i);
            goto out;
        }
    if ((rc = check_signature(report, r, x[0], v)) != 0)
        goto out;
    if ((rc = check_root(x[chain->n - 1], chain->certs[chain->n - 1],
                         chain->cert_lens[chain->n - 1], anchor, &root, d->root_sha256, v)) != 0)
        goto out;
    if ((rc = verify_chain(x[0], x + 1, chain->n - 2, root, at, v)) != 0)
        goto out;
    if ((rc = leaf_fwid(x[0], &d->arch, d->fwid, v)) != 0)
        goto out;
    char e[2 * CG_SPDM_FWID_LEN + 1], a[2 * CG_SPDM_FWID_LEN + 1];
    cg_hex(e, sizeof(e), d->fwid, CG_SPDM_FWID_LEN);
    if (!r->has_fwid) {
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.fwid", e, "no FWID in the report's opaque data");
        goto out;
    }
    if (memcmp(r->fwid, d->fwid, CG_SPDM_FWID_LEN) != 0) {
        cg_hex(a, sizeof(a), r->fwid, CG_SPDM_FWID_LEN);
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.fwid", e, "%s", a);
        goto out;
    }
    if (nonce != NULL && memcmp(nonce, r->nonce, CG_SPDM_NONCE_LEN) != 0) {
        cg_hex(e, sizeof(e), nonce, CG_SPDM_NONCE_LEN);
        cg_hex(a, sizeof(a), r->nonce, CG_SPDM_NONCE_LEN);
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.nonce", e, "%s", a);
        goto out;
    }
    const X509_NAME *subj = X509_get_subject_name(x[0]);
    if (X509_NAME_get_text_by_NID((X509_NAME *)subj, NID_commonName, d->model,
                                  (int)sizeof(d->model)) < 0)
        snprintf(d->model, sizeof(d->model), "unknown");
    rc = 0;
out:
    for (size_t i = 0; i < CG_GPU_MAX_CHAIN; i++)
        X509_free(x[i]);
    X509_free(root);
    ERR_clear_error();
    if (rc != 0)
        memset(d, 0, sizeof(*d));
    return rc;
}
