#include "ccgate/ratls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ccgate/err.h"

/* A certificate larger than this is not one of ours (evidence + endorsements + overhead). */
#define CERT_MAX_BYTES                                                                             \
    (CG_EVIDENCE_MAX_BYTES + CG_CLAIMS_MAX_BYTES + CG_ENDORSEMENTS_MAX_BYTES + 4096)

struct cg_ratls_key {
    EVP_PKEY *pkey;
    uint8_t spki_sha256[32];
};

/* Not X509_pubkey_digest(), which hashes only the BIT STRING contents. */
int cg__ratls_spki_sha256(EVP_PKEY *pkey, uint8_t out[32])
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pkey, &der);
    if (len <= 0)
        return CG_ECRYPTO;
    int ok = EVP_Digest(der, (size_t)len, out, NULL, EVP_sha256(), NULL);
    OPENSSL_free(der);
    return ok == 1 ? 0 : CG_ECRYPTO;
}

int cg_ratls_key_new(struct cg_ratls_key **out)
{
    struct cg_ratls_key *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return -ENOMEM;
    k->pkey = EVP_EC_gen("P-256");
    if (k->pkey == NULL || cg__ratls_spki_sha256(k->pkey, k->spki_sha256) != 0) {
        cg_ratls_key_free(k);
        return CG_ECRYPTO;
    }
    *out = k;
    return 0;
}

int cg_ratls_identity_load_pem(const char *cert_path, const char *key_path,
                               struct cg_ratls_key **key, uint8_t **der, size_t *der_len)
{
    int rc = CG_ECONFIG;
    X509 *x = NULL;
    unsigned char *d = NULL;
    struct cg_ratls_key *k = calloc(1, sizeof(*k));
    FILE *f = fopen(cert_path, "r");
    *key = NULL;
    *der = NULL;
    if (k == NULL || f == NULL)
        goto out;
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    f = fopen(key_path, "r");
    if (x == NULL || f == NULL)
        goto out;
    k->pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    int n = i2d_X509(x, &d);
    if (k->pkey == NULL || n <= 0 || X509_check_private_key(x, k->pkey) != 1 ||
        cg__ratls_spki_sha256(k->pkey, k->spki_sha256) != 0)
        goto out;
    *der = malloc((size_t)n);
    if (*der == NULL)
        goto out;
    memcpy(*der, d, (size_t)n);
    *der_len = (size_t)n;
    *key = k;
    k = NULL;
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    ERR_clear_error();
    OPENSSL_free(d);
    X509_free(x);
    cg_ratls_key_free(k);
    return rc;
}

void cg_ratls_key_free(struct cg_ratls_key *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    free(k);
}

void cg_ratls_key_spki_hash(const struct cg_ratls_key *k, uint8_t out[32])
{
    memcpy(out, k->spki_sha256, 32);
}

struct evp_pkey_st *cg__ratls_key_pkey(const struct cg_ratls_key *k)
{
    return k->pkey;
}

int cg_ratls_claims(const struct cg_ratls_key *k, const uint8_t (*nonces)[CG_NONCE_LEN],
                    size_t n_nonces, int64_t iat, uint8_t **claims, size_t *claims_len,
                    uint8_t report_data[CG_REPORT_DATA_LEN])
{
    return cg_ratls_claims_ext(k, nonces, n_nonces, iat, NULL, 0, NULL, claims, claims_len,
                               report_data);
}

int cg_ratls_claims_ext(const struct cg_ratls_key *k, const uint8_t (*nonces)[CG_NONCE_LEN],
                        size_t n_nonces, int64_t iat, const uint8_t *gpu, size_t gpu_len,
                        const struct cg_model_claim *model, uint8_t **claims, size_t *claims_len,
                        uint8_t report_data[CG_REPORT_DATA_LEN])
{
    if (n_nonces > CG_MAX_NONCES || gpu_len > CG_CLAIMS_GPU_MAX_BYTES)
        return CG_ELIMIT;
    struct cg_claims *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    memcpy(c->pubkey_hash, k->spki_sha256, 32);
    c->n_nonces = n_nonces;
    if (n_nonces > 0)
        memcpy(c->nonces, nonces, n_nonces * CG_NONCE_LEN);
    c->iat = iat;
    c->gpu = gpu_len > 0 ? gpu : NULL;
    c->gpu_len = gpu_len;
    if (model != NULL && model->present)
        c->model = *model;
    int rc = cg_claims_encode(c, claims, claims_len);
    free(c);
    if (rc != 0)
        return rc;
    memset(report_data, 0, CG_REPORT_DATA_LEN);
    if (EVP_Digest(*claims, *claims_len, report_data, NULL, EVP_sha256(), NULL) != 1) {
        free(*claims);
        *claims = NULL;
        return CG_ECRYPTO;
    }
    return 0;
}

void cg_ratls_gpu_nonce(const struct cg_ratls_key *k, const uint8_t (*nonces)[CG_NONCE_LEN],
                        size_t n_nonces, int64_t iat, uint8_t out[CG_NONCE_LEN])
{
    cg_gpuev_nonce(k->spki_sha256, iat, nonces, n_nonces, out);
}

static int add_ext(X509 *x, const char *oid, const uint8_t *data, size_t len)
{
    int rc = CG_ECRYPTO;
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ext = NULL;
    if (obj == NULL || os == NULL || len > INT32_MAX ||
        ASN1_OCTET_STRING_set(os, data, (int)len) != 1)
        goto out;
    ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
    if (ext == NULL || X509_add_ext(x, ext, -1) != 1)
        goto out;
    rc = 0;
out:
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
    return rc;
}

static int set_name(X509 *x)
{
    X509_NAME *name = X509_get_subject_name(x);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"ccgate-server",
                                   -1, -1, 0) != 1)
        return CG_ECRYPTO;
    return X509_set_issuer_name(x, name) == 1 ? 0 : CG_ECRYPTO;
}

static int set_serial(X509 *x)
{
    unsigned char r[16];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return CG_ECRYPTO;
    r[0] = (unsigned char)((r[0] & 0x7f) | 0x01); /* positive, full length (RFC 5280 4.1.2.2) */
    BIGNUM *bn = BN_bin2bn(r, sizeof(r), NULL);
    int ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
    BN_free(bn);
    return ok ? 0 : CG_ECRYPTO;
}

int cg_ratls_cert_new(const struct cg_ratls_key *k, const uint8_t *claims, size_t claims_len,
                      const struct cg_evidence *ev, int64_t iat, uint32_t lifetime_s, uint8_t **der,
                      size_t *der_len)
{
    int rc = CG_ECRYPTO;
    uint8_t *cmw = NULL, *endorsements = NULL;
    size_t cmw_len = 0, endorsements_len = 0;
    unsigned char *buf = NULL;
    X509 *x = X509_new();
    if (x == NULL)
        goto out;
    rc = cg_cmw_encode(ev->tag, ev->evidence, ev->evidence_len, claims, claims_len, &cmw, &cmw_len);
    if (rc != 0)
        goto out;
    rc = cg_endorsements_encode(ev, &endorsements, &endorsements_len);
    if (rc != 0)
        goto out;
    rc = CG_ECRYPTO;
    if (X509_set_version(x, X509_VERSION_3) != 1 || set_serial(x) != 0 || set_name(x) != 0)
        goto out;
    if (X509_time_adj_ex(X509_getm_notBefore(x), 0, -CG_RATLS_IAT_SKEW_S, &(time_t){iat}) == NULL ||
        X509_time_adj_ex(X509_getm_notAfter(x), 0, (long)lifetime_s, &(time_t){iat}) == NULL)
        goto out;
    if (X509_set_pubkey(x, k->pkey) != 1)
        goto out;
    if (add_ext(x, CG_OID_CMW, cmw, cmw_len) != 0 ||
        add_ext(x, CG_OID_ENDORSEMENTS, endorsements, endorsements_len) != 0)
        goto out;
    if (X509_sign(x, k->pkey, EVP_sha256()) <= 0)
        goto out;
    int len = i2d_X509(x, &buf);
    if (len <= 0)
        goto out;
    *der = malloc((size_t)len);
    if (*der == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(*der, buf, (size_t)len);
    *der_len = (size_t)len;
    rc = 0;
out:
    OPENSSL_free(buf);
    free(endorsements);
    free(cmw);
    X509_free(x);
    return rc;
}

const char *cg_ratls_tee_name(uint32_t tag)
{
    switch (tag) {
    case CG_TAG_SIM:
        return "sim";
    case CG_TAG_SNP:
        return "snp";
    case CG_TAG_TDX:
        return "tdx";
    default:
        return "unknown";
    }
}

/* The data of the single extension with this OID: 0 and *data set, or -1 when absent, or
 * CG_EEVIDENCE when it occurs more than once. */
static int find_ext(X509 *x, const char *oid, const uint8_t **data, size_t *len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    if (obj == NULL)
        return CG_ECRYPTO;
    int i = X509_get_ext_by_OBJ(x, obj, -1);
    int again = i >= 0 ? X509_get_ext_by_OBJ(x, obj, i) : -1;
    ASN1_OBJECT_free(obj);
    if (i < 0)
        return -1;
    if (again >= 0)
        return CG_EEVIDENCE;
    const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(x, i));
    *data = ASN1_STRING_get0_data(os);
    *len = (size_t)ASN1_STRING_length(os);
    return 0;
}

static int sha256(const uint8_t *d, size_t n, uint8_t out[32])
{
    return EVP_Digest(d, n, out, NULL, EVP_sha256(), NULL) == 1 ? 0 : CG_ECRYPTO;
}

static void hex32(char out[65], const uint8_t in[32])
{
    cg_hex(out, 65, in, 32);
}

int cg_ratls_verify_evidence(uint32_t tag, const uint8_t *evidence, size_t evidence_len,
                             const struct cg_evidence *endorse, const struct cg_policy *p,
                             const uint8_t want[CG_REPORT_DATA_LEN], time_t now,
                             struct cg_attestation *out, struct cg_verdict *v)
{
    char a[65], b[65];
    struct cg_snp_anchor anchor = {0};
    const uint8_t *report_data;
    int rc;

    out->tag = tag;
    out->insecure = tag == CG_TAG_SIM;
    if (tag == CG_TAG_SNP) {
        if (!p->snp.present)
            return cg_reject(v, CG_EPOLICY, "evidence.tee", "a TEE the policy allows",
                             "snp (the policy has no snp section)");
    } else if (tag == CG_TAG_TDX) {
        if (!p->tdx.present)
            return cg_reject(v, CG_EPOLICY, "evidence.tee", "a TEE the policy allows",
                             "tdx (the policy has no tdx section)");
    } else if (tag == CG_TAG_SIM) {
        if (!p->sim.allow)
            return cg_reject(v, CG_EPOLICY, "evidence.tee", "a TEE the policy allows",
                             "sim (the policy does not allow the simulated TEE)");
        if (!p->sim.has_root)
            return cg_reject(v, CG_EPOLICY, "sim.root", "a sim root in the policy", "none");
        /* The sim chain must end at the policy's ARK; cg_snp_verify() enforces it again
         * through the anchor, this names the failure plainly. */
        uint8_t ark[32];
        if (endorse->n_certs == 0 ||
            sha256(endorse->certs[endorse->n_certs - 1], endorse->cert_lens[endorse->n_certs - 1],
                   ark) != 0 ||
            memcmp(ark, p->sim.root_sha256, 32) != 0) {
            hex32(a, p->sim.root_sha256);
            if (endorse->n_certs == 0)
                return cg_reject(v, CG_EEVIDENCE, "sim.root", a, "no certificates");
            hex32(b, ark);
            return cg_reject(v, CG_EEVIDENCE, "sim.root", a, "%s", b);
        }
        anchor.sim = 1;
        memcpy(anchor.sim_ark_sha256, p->sim.root_sha256, 32);
    } else {
        return cg_reject(v, CG_EPOLICY, "evidence.tee", "a TEE the policy allows", "%s (0x%x)",
                         cg_ratls_tee_name(tag), (unsigned)tag);
    }

    if (tag == CG_TAG_TDX) {
        /* The endorsements are the collateral the server carries (TCB info, QE identity,
         * their chain, CRLs), so the client needs no network. */
        struct cg_tdx_collateral col;
        rc = cg_tdx_collateral_from_blobs((const uint8_t *const *)endorse->certs,
                                          endorse->cert_lens, endorse->n_certs, &col, v);
        if (rc == 0)
            rc = cg_tdx_verify(evidence, evidence_len, &col, now, &out->tdx, &out->tdx_status, v);
        /* Those pointed into the evidence, which the caller frees. */
        out->tdx.qe_auth = NULL;
        out->tdx.qe_auth_len = 0;
        out->tdx.pck_chain = NULL;
        out->tdx.pck_chain_len = 0;
        report_data = out->tdx.report_data;
    } else {
        rc = cg_snp_verify(evidence, evidence_len, (const uint8_t *const *)endorse->certs,
                           endorse->cert_lens, endorse->n_certs, &anchor, now, &out->snp, v);
        report_data = out->snp.report_data;
    }
    if (rc != 0)
        return rc;

    if (memcmp(want, report_data, CG_REPORT_DATA_LEN) != 0) {
        char e[2 * CG_REPORT_DATA_LEN + 1], g[2 * CG_REPORT_DATA_LEN + 1];
        cg_hex(e, sizeof(e), want, CG_REPORT_DATA_LEN);
        cg_hex(g, sizeof(g), report_data, CG_REPORT_DATA_LEN);
        return cg_reject(v, CG_EEVIDENCE, "evidence.report_data", e, "%s", g);
    }
    return 0;
}

int cg_ratls_appraise(const struct cg_policy *p, const struct cg_attestation *att,
                      struct cg_verdict *v)
{
    if (att->tag == CG_TAG_TDX)
        return cg_tdx_appraise(&p->tdx, &att->tdx, &att->tdx_status, v);
    return cg_policy_appraise_snp(p, &att->snp, v);
}

/*
 * The claims' GPU evidence, when the policy has a gpu section: its bytes are covered by the
 * CPU report already (report_data), and each GPU's SPDM nonce must be the one derived from
 * these claims, so a GPU report from another handshake or another server does not pass.
 */
static int verify_gpu(const struct cg_claims *claims, const struct cg_policy *p, time_t now,
                      struct cg_attestation *out, struct cg_verdict *v)
{
    if (!p->gpu.present)
        return 0;
    if (claims->gpu == NULL)
        return p->gpu.required
                   ? cg_reject(v, CG_EPOLICY, "gpu.required", "GPU evidence in the claims", "none")
                   : 0;
    struct cg_gpuev *e = malloc(sizeof(*e));
    if (e == NULL)
        return -ENOMEM;
    uint8_t nonce[CG_NONCE_LEN];
    cg_gpuev_nonce(claims->pubkey_hash, claims->iat, claims->nonces, claims->n_nonces, nonce);
    int rc = cg_gpuev_decode(claims->gpu, claims->gpu_len, e, v);
    if (rc == 0) {
        rc = cg_gpuev_verify(e, &p->gpu, nonce, now, out->gpus, &out->n_gpus, v);
        cg_gpuev_clear(e);
    }
    free(e);
    out->gpu_appraised = rc == 0;
    return rc;
}

/* The appraisal after the certificate's own checks: evidence and its binding, freshness,
 * policy. Split out so that cg_ratls_verify owns the parsed certificate and nothing else. */
static int verify_evidence(uint32_t tag, const uint8_t *evidence, size_t evidence_len,
                           const uint8_t *claims_buf, size_t claims_len,
                           const struct cg_claims *claims, const struct cg_evidence *endorse,
                           const struct cg_policy *p, const uint8_t *nonce, time_t now,
                           struct cg_attestation *out, struct cg_verdict *v)
{
    char a[65];
    uint8_t want[CG_REPORT_DATA_LEN] = {0};
    if (sha256(claims_buf, claims_len, want) != 0)
        return CG_ECRYPTO;
    int rc = cg_ratls_verify_evidence(tag, evidence, evidence_len, endorse, p, want, now, out, v);
    if (rc != 0)
        return rc;

    if (nonce != NULL) {
        for (size_t i = 0; i < claims->n_nonces; i++)
            if (memcmp(claims->nonces[i], nonce, CG_NONCE_LEN) == 0)
                out->nonce_matched = 1;
        if (!out->nonce_matched) {
            hex32(a, nonce);
            return cg_reject(v, CG_EEVIDENCE, "freshness.nonce", a,
                             "not among the %zu nonces of the claims", claims->n_nonces);
        }
    } else {
        int64_t age = (int64_t)now - claims->iat;
        if (age > (int64_t)p->freshness.max_age_s || age < -CG_RATLS_IAT_SKEW_S) {
            snprintf(a, sizeof(a), "iat within %us of now", (unsigned)p->freshness.max_age_s);
            return cg_reject(v, CG_EEVIDENCE, "freshness.age", a, "iat %lld s %s",
                             (long long)(age < 0 ? -age : age), age < 0 ? "ahead" : "old");
        }
    }

    rc = cg_ratls_appraise(p, out, v);
    if (rc == 0)
        rc = verify_gpu(claims, p, now, out, v);
    return rc != 0 ? rc : cg_policy_appraise_model(&p->model, &claims->model, v);
}

int cg_ratls_verify(const uint8_t *der, size_t der_len, const struct cg_policy *p,
                    const uint8_t *nonce, time_t now, struct cg_attestation *out,
                    struct cg_verdict *v)
{
    int rc;
    X509 *x = NULL;
    struct cg_evidence endorse = {0};
    struct cg_claims *claims = calloc(1, sizeof(*claims));
    const uint8_t *ext, *evidence, *claims_buf;
    size_t ext_len, evidence_len, claims_len;
    uint32_t tag;
    char a[65], b[65];

    memset(out, 0, sizeof(*out));
    if (claims == NULL)
        return -ENOMEM;
    const unsigned char *pp = der;
    if (der_len > CERT_MAX_BYTES || (x = d2i_X509(NULL, &pp, (long)der_len)) == NULL ||
        pp != der + der_len) {
        rc = cg_reject(v, CG_EEVIDENCE, "cert.parse", "one DER X.509 certificate",
                       "%zu unparsable bytes", der_len);
        goto out;
    }
    EVP_PKEY *pub = X509_get0_pubkey(x);
    if (pub == NULL || X509_verify(x, pub) != 1) {
        rc = cg_reject(v, CG_EEVIDENCE, "cert.self_signature", "signed by its own key",
                       "signature invalid");
        goto out;
    }
    rc = find_ext(x, CG_OID_CMW, &ext, &ext_len);
    if (rc != 0) {
        rc = cg_reject(v, CG_EEVIDENCE, "cert.extension", "one " CG_OID_CMW " extension", "%s",
                       rc == -1 ? "absent" : "more than one");
        goto out;
    }
    if (cg_cmw_decode(ext, ext_len, &tag, &evidence, &evidence_len, &claims_buf, &claims_len) !=
        0) {
        rc = cg_reject(v, CG_EEVIDENCE, "cert.extension", "tag(T)([evidence, claims])",
                       "malformed CBOR (%zu bytes)", ext_len);
        goto out;
    }
    rc = find_ext(x, CG_OID_ENDORSEMENTS, &ext, &ext_len);
    if (rc == 0 && cg_endorsements_decode(ext, ext_len, &endorse) != 0)
        rc = CG_ECBOR;
    if (rc != 0 && rc != -1) {
        rc = cg_reject(v, CG_EEVIDENCE, "cert.endorsements",
                       "at most one well-formed " CG_OID_ENDORSEMENTS " extension", "malformed");
        goto out;
    }
    if (rc == 0 && endorse.tag != tag) {
        rc = cg_reject(v, CG_EEVIDENCE, "cert.endorsements", cg_ratls_tee_name(tag),
                       "endorsements for %s", cg_ratls_tee_name(endorse.tag));
        goto out;
    }
    if (cg_claims_decode(claims_buf, claims_len, claims) != 0) {
        rc = cg_reject(v, CG_EEVIDENCE, "claims.decode", "a well-formed claims map",
                       "malformed CBOR (%zu bytes)", claims_len);
        goto out;
    }
    if (sha256(der, der_len, out->cert_sha256) != 0 ||
        cg__ratls_spki_sha256(pub, out->spki_sha256) != 0) {
        rc = CG_ECRYPTO;
        goto out;
    }
    if (memcmp(claims->pubkey_hash, out->spki_sha256, 32) != 0) {
        hex32(a, out->spki_sha256);
        hex32(b, claims->pubkey_hash);
        rc = cg_reject(v, CG_EEVIDENCE, "claims.pubkey_hash", a, "%s", b);
        goto out;
    }
    rc = verify_evidence(tag, evidence, evidence_len, claims_buf, claims_len, claims, &endorse, p,
                         nonce, now, out, v);
    if (rc != 0)
        goto out;
    out->tag = tag;
    out->insecure = tag == CG_TAG_SIM;
    out->iat = claims->iat;
    out->model = claims->model;
    out->n_nonces = claims->n_nonces;
    memcpy(out->nonces, claims->nonces, claims->n_nonces * CG_NONCE_LEN);
    out->verified_at = now;
out:
    if (rc != 0) {
        /* Nothing of a rejected certificate is reported as if it were learnt. */
        memset(out, 0, sizeof(*out));
    }
    cg_evidence_clear(&endorse);
    free(claims);
    X509_free(x);
    /* Failures are reported through v; leave nothing on OpenSSL's error queue for a TLS
     * handshake (this runs inside its verify callback) to misread later. */
    ERR_clear_error();
    return rc;
}

int cg_sha256(const uint8_t *data, size_t len, uint8_t out[32])
{
    return sha256(data, len, out);
}

/* One certificate, PEM or DER; NULL when neither. */
static X509 *pem_or_der(const uint8_t *data, size_t len)
{
    static const char pem_begin[] = "-----BEGIN CERTIFICATE-----";
    if (len >= sizeof(pem_begin) - 1 && memcmp(data, pem_begin, sizeof(pem_begin) - 1) == 0) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        X509 *x = bio != NULL ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
        BIO_free(bio);
        return x;
    }
    const unsigned char *pp = data;
    return d2i_X509(NULL, &pp, (long)len);
}

int cg_ratls_inspect(const uint8_t *data, size_t len, struct cg_evidence *ev,
                     struct cg_claims *claims)
{
    X509 *x = NULL;
    const uint8_t *ext, *evidence, *claims_buf;
    size_t ext_len, evidence_len, claims_len;
    uint32_t tag;
    int rc = CG_EEVIDENCE;

    memset(ev, 0, sizeof(*ev));
    if (len > CERT_MAX_BYTES)
        return CG_ELIMIT;
    x = pem_or_der(data, len);
    if (x == NULL)
        goto out;
    if (find_ext(x, CG_OID_CMW, &ext, &ext_len) != 0 ||
        cg_cmw_decode(ext, ext_len, &tag, &evidence, &evidence_len, &claims_buf, &claims_len) !=
            0 ||
        cg_claims_decode(claims_buf, claims_len, claims) != 0)
        goto out;
    if (find_ext(x, CG_OID_ENDORSEMENTS, &ext, &ext_len) == 0 &&
        cg_endorsements_decode(ext, ext_len, ev) != 0)
        goto out;
    claims->gpu = NULL; /* it pointed into the certificate, freed below */
    claims->gpu_len = 0;
    ev->tag = tag;
    ev->evidence = malloc(evidence_len);
    if (ev->evidence == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(ev->evidence, evidence, evidence_len);
    ev->evidence_len = evidence_len;
    rc = 0;
out:
    if (rc != 0)
        cg_evidence_clear(ev);
    X509_free(x);
    ERR_clear_error();
    return rc;
}

int cg_ratls_inspect_gpu(const uint8_t *data, size_t len, uint8_t **gpu, size_t *gpu_len)
{
    struct cg_evidence ev;
    struct cg_claims *claims = calloc(1, sizeof(*claims));
    X509 *x = NULL;
    const uint8_t *ext, *evidence, *claims_buf;
    size_t ext_len, evidence_len, claims_len;
    uint32_t tag;
    *gpu = NULL;
    *gpu_len = 0;
    if (claims == NULL)
        return -ENOMEM;
    int rc = cg_ratls_inspect(data, len, &ev, claims);
    cg_evidence_clear(&ev);
    if (rc != 0)
        goto out;
    /* Parsed a second time for the claims' GPU bytes, which inspect does not keep. */
    x = pem_or_der(data, len);
    rc = CG_EEVIDENCE;
    if (x == NULL || find_ext(x, CG_OID_CMW, &ext, &ext_len) != 0 ||
        cg_cmw_decode(ext, ext_len, &tag, &evidence, &evidence_len, &claims_buf, &claims_len) !=
            0 ||
        cg_claims_decode(claims_buf, claims_len, claims) != 0)
        goto out;
    rc = 0;
    if (claims->gpu == NULL)
        goto out;
    if ((*gpu = malloc(claims->gpu_len)) == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(*gpu, claims->gpu, claims->gpu_len);
    *gpu_len = claims->gpu_len;
out:
    X509_free(x);
    free(claims);
    ERR_clear_error();
    return rc;
}
