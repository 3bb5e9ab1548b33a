#include "ccgate/gpusim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ccgate/gpu.h"
#include "ccgate/gpuev.h"
#include "ccgate/rim.h"
#include "ccgate/sim.h"
#include "ccgate/spdm.h"

#define STATE_FILE "gpu-sim.pem"
#define STATE_MAX_BYTES (32 * 1024)
#define ROOT_DAYS (25 * 365)
#define VALUE_LEN 48
/* The driver RIM covers RIM indices 20..39, the VBIOS RIM 0..19. */
#define DRIVER_FIRST 20

/* Root, device leaf and RIM signer: certificate and key each, in this order in the file. */
enum { ROOT, LEAF, RIM, N_PAIRS };

struct cg_gpusim {
    X509 *cert[N_PAIRS];
    EVP_PKEY *key[N_PAIRS];
};

void cg_gpusim_free(struct cg_gpusim *s)
{
    if (s == NULL)
        return;
    for (int i = 0; i < N_PAIRS; i++) {
        X509_free(s->cert[i]);
        EVP_PKEY_free(s->key[i]);
    }
    free(s);
}

static int add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = e != NULL && X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    return ok ? 0 : -1;
}

/* Hopper's form: SEQUENCE { INTEGER 1, SEQUENCE { OID sha384, OCTET STRING fwid } }. */
static int add_fwid(X509 *x)
{
    static const uint8_t head[] = {0x30, 0x42, 0x02, 0x01, 0x01, 0x30, 0x3d, 0x06, 0x09, 0x60,
                                   0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x04, 0x30};
    uint8_t der[sizeof(head) + CG_SPDM_FWID_LEN];
    memcpy(der, head, sizeof(head));
    if (RAND_bytes(der + sizeof(head), CG_SPDM_FWID_LEN) != 1)
        return -1;
    ASN1_OBJECT *obj = OBJ_txt2obj(CG_GPU_OID_DICE_TCB, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *e = NULL;
    int ok = obj != NULL && os != NULL && ASN1_OCTET_STRING_set(os, der, sizeof(der)) == 1 &&
             (e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) != NULL &&
             X509_add_ext(x, e, -1) == 1;
    X509_EXTENSION_free(e);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
    return ok ? 0 : -1;
}

static X509 *make_cert(int which, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
    static const char *const cn[] = {"ccgate SIM NVIDIA root (INSECURE)",
                                     "ccgate SIM GPU FMC LF (INSECURE)",
                                     "ccgate SIM RIM signer (INSECURE)"};
    X509 *x = X509_new();
    uint8_t serial[16];
    BIGNUM *bn = NULL;
    int ok = x != NULL && RAND_bytes(serial, sizeof(serial)) == 1;
    serial[0] = (uint8_t)((serial[0] & 0x7f) | 1);
    ok = ok && (bn = BN_bin2bn(serial, sizeof(serial), NULL)) != NULL &&
         BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL &&
         X509_set_version(x, X509_VERSION_3) == 1 &&
         X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                    (const unsigned char *)cn[which], -1, -1, 0) == 1 &&
         X509_set_issuer_name(x, X509_get_subject_name(issuer != NULL ? issuer : x)) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(x), -86400) != NULL &&
         X509_time_adj_ex(X509_getm_notAfter(x), ROOT_DAYS, 0, NULL) != NULL &&
         X509_set_pubkey(x, key) == 1;
    BN_free(bn);
    X509 *iss = issuer != NULL ? issuer : x;
    if (ok && which == ROOT)
        ok = add_ext(x, iss, NID_basic_constraints, "critical,CA:TRUE") == 0 &&
             add_ext(x, iss, NID_key_usage, "critical,keyCertSign,cRLSign") == 0;
    else if (ok)
        ok = add_ext(x, iss, NID_key_usage, "critical,digitalSignature") == 0 &&
             (which != LEAF || add_fwid(x) == 0);
    ok = ok && add_ext(x, iss, NID_subject_key_identifier, "hash") == 0 &&
         X509_sign(x, issuer_key != NULL ? issuer_key : key, EVP_sha384()) > 0;
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

static int create(const char *path)
{
    struct cg_gpusim s = {0};
    int rc = CG_ECRYPTO;
    BIO *b = BIO_new(BIO_s_mem());
    for (int i = 0; i < N_PAIRS; i++)
        if ((s.key[i] = EVP_EC_gen("P-384")) == NULL ||
            (s.cert[i] = make_cert(i, s.key[i], i == ROOT ? NULL : s.cert[ROOT],
                                   i == ROOT ? NULL : s.key[ROOT])) == NULL)
            goto out;
    for (int i = 0; b != NULL && i < N_PAIRS; i++)
        if (PEM_write_bio_X509(b, s.cert[i]) != 1 ||
            PEM_write_bio_PrivateKey(b, s.key[i], NULL, NULL, 0, NULL, NULL) != 1)
            goto out;
    char *data = NULL;
    long len = b != NULL ? BIO_get_mem_data(b, &data) : 0;
    if (len > 0)
        rc = cg__sim_write_new(path, data, (size_t)len, 0600);
out:
    BIO_free(b);
    for (int i = 0; i < N_PAIRS; i++) {
        X509_free(s.cert[i]);
        EVP_PKEY_free(s.key[i]);
    }
    ERR_clear_error();
    return rc;
}

static int load(const char *path, struct cg_gpusim *s)
{
    uint8_t *pem = NULL;
    size_t len = 0;
    int rc = cg__sim_read_all(path, STATE_MAX_BYTES, &pem, &len);
    if (rc != 0)
        return rc;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    rc = 0;
    for (int i = 0; i < N_PAIRS && rc == 0; i++)
        if (b == NULL || (s->cert[i] = PEM_read_bio_X509(b, NULL, NULL, NULL)) == NULL ||
            (s->key[i] = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL)
            rc = CG_ECONFIG;
    BIO_free(b);
    OPENSSL_cleanse(pem, len);
    free(pem);
    ERR_clear_error();
    return rc;
}

static int state_path(char *out, size_t cap, const char *dir)
{
    int n = snprintf(out, cap, "%s/%s", dir, STATE_FILE);
    return n > 0 && (size_t)n < cap ? 0 : CG_ELIMIT;
}

int cg_gpusim_open(const char *state_dir, struct cg_gpusim **out)
{
    char path[4096];
    int rc = state_path(path, sizeof(path), state_dir);
    struct cg_gpusim *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return -ENOMEM;
    if (rc == 0)
        rc = load(path, s);
    if (rc != 0) {
        cg_gpusim_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int cg_gpusim_init(const char *state_dir, uint8_t root_sha256[32])
{
    char path[4096];
    int rc = state_path(path, sizeof(path), state_dir);
    struct cg_gpusim *s = NULL;
    if (rc != 0)
        return rc;
    rc = cg_gpusim_open(state_dir, &s);
    if (rc == -ENOENT && (rc = create(path)) == 0)
        rc = cg_gpusim_open(state_dir, &s);
    if (rc != 0)
        return rc;
    unsigned n = 0;
    rc = X509_digest(s->cert[ROOT], EVP_sha256(), root_sha256, &n) == 1 ? 0 : CG_ECRYPTO;
    cg_gpusim_free(s);
    return rc;
}

/* The genuine value of block index (1-based): SHA-384("ccgate sim gpu" || index). */
static void block_value(unsigned index, uint8_t out[VALUE_LEN])
{
    uint8_t in[15] = "ccgate sim gpu";
    in[14] = (uint8_t)index;
    (void)EVP_Digest(in, sizeof(in), out, NULL, EVP_sha384(), NULL);
}

static uint8_t *put16(uint8_t *p, unsigned x)
{
    p[0] = (uint8_t)x;
    p[1] = (uint8_t)(x >> 8);
    return p + 2;
}

static uint8_t *tlv(uint8_t *p, unsigned type, const void *val, unsigned len)
{
    p = put16(put16(p, type), len);
    memcpy(p, val, len);
    return p + len;
}

static uint8_t *tlv_text(uint8_t *p, unsigned type, const char *s, unsigned len)
{
    char buf[CG_SPDM_TEXT_MAX] = {0};
    memcpy(buf, s, strlen(s) < len ? strlen(s) : len);
    return tlv(p, type, buf, len);
}

int cg_gpusim_report(struct cg_gpusim *s, const struct cg_gpusim_report_opts *o, uint8_t **out,
                     size_t *len)
{
    size_t cap =
        CG_SPDM_REQ_LEN + 8 + CG_GPUSIM_BLOCKS * (7 + VALUE_LEN) + 34 + 256 + CG_SPDM_SIG_LEN;
    uint8_t *buf = calloc(1, cap), *p = buf;
    if (buf == NULL)
        return -ENOMEM;
    /* Request: SPDM 1.1 GET_MEASUREMENTS, signature requested, all blocks, slot 0. */
    *p++ = 0x11, *p++ = 0xE0, *p++ = 0x01, *p++ = 0xFF;
    memcpy(p, o->nonce, 32);
    p += 32;
    *p++ = 0;
    /* Response header; the record length is filled in below. */
    uint8_t *resp = p;
    *p++ = 0x11, *p++ = 0x60, *p++ = 0, *p++ = 0, *p++ = CG_GPUSIM_BLOCKS;
    p += 3;
    uint8_t *rec = p;
    for (unsigned i = 1; i <= CG_GPUSIM_BLOCKS; i++) {
        *p++ = (uint8_t)i, *p++ = 0x01;
        p = put16(p, 3 + VALUE_LEN);
        *p++ = 0x01;
        p = put16(p, VALUE_LEN);
        block_value(i, p);
        if (i == o->tamper_block)
            p[0] ^= 0x01;
        p += VALUE_LEN;
    }
    size_t rec_len = (size_t)(p - rec);
    resp[5] = (uint8_t)rec_len, resp[6] = (uint8_t)(rec_len >> 8), resp[7] = 0;
    int ok = RAND_bytes(p, 32) == 1;
    p += 32;
    uint8_t *olen = p, *op = p + 2;
    p = op;
    static const uint8_t vbios[8] = {0x00, 0x99, 0x00, 0x96, 0x01, 0, 0, 0};
    uint8_t nvdec = o->nvdec0_status != 0 ? o->nvdec0_status : CG_SPDM_NVDEC_DISABLED, ppcie = 0x55;
    uint8_t fwid[CG_SPDM_FWID_LEN];
    enum cg_gpu_arch arch;
    unsigned char *der = NULL;
    int der_len = i2d_X509(s->cert[LEAF], &der);
    ok = ok && der_len > 0 && cg_gpu_leaf_fwid(der, (size_t)der_len, &arch, fwid, NULL) == 0;
    OPENSSL_free(der);
    if (o->tamper_fwid)
        fwid[0] ^= 0x01;
    p = tlv(p, CG_SPDM_OPAQUE_VBIOS_VERSION, vbios, 8);
    p = tlv_text(p, CG_SPDM_OPAQUE_CHIP_SKU, "SIM", 9);
    p = tlv_text(p, CG_SPDM_OPAQUE_PROJECT, "0000", 5);
    p = tlv_text(p, CG_SPDM_OPAQUE_PROJECT_SKU, "0000", 5);
    p = tlv_text(p, CG_SPDM_OPAQUE_DRIVER_VERSION,
                 o->driver_version != NULL ? o->driver_version : CG_GPUSIM_DRIVER_VERSION, 16);
    p = tlv(p, CG_SPDM_OPAQUE_NVDEC0_STATUS, &nvdec, 1);
    p = tlv(p, CG_SPDM_OPAQUE_FWID, fwid, CG_SPDM_FWID_LEN);
    p = tlv(p, CG_SPDM_OPAQUE_PROTECTED_PCIE_STATUS, &ppcie, 1);
    put16(olen, (unsigned)(p - op));
    size_t signed_len = (size_t)(p - buf);

    ok = ok && cg_gpusim_sign(s, buf, signed_len, p) == 0;
    if (!ok) {
        free(buf);
        return CG_ECRYPTO;
    }
    *out = buf;
    *len = signed_len + CG_SPDM_SIG_LEN;
    return 0;
}

int cg_gpusim_sign(struct cg_gpusim *s, const uint8_t *data, size_t len, uint8_t sig[96])
{
    uint8_t *der = NULL;
    size_t der_len = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ECDSA_SIG *es = NULL;
    int ok = md != NULL && EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, s->key[LEAF]) == 1 &&
             EVP_DigestSign(md, NULL, &der_len, data, len) == 1 &&
             (der = OPENSSL_malloc(der_len)) != NULL &&
             EVP_DigestSign(md, der, &der_len, data, len) == 1;
    const unsigned char *q = der;
    ok = ok && (es = d2i_ECDSA_SIG(NULL, &q, (long)der_len)) != NULL &&
         BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 48) == 48 &&
         BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 48, 48) == 48;
    ECDSA_SIG_free(es);
    OPENSSL_free(der);
    EVP_MD_CTX_free(md);
    ERR_clear_error();
    return ok ? 0 : CG_ECRYPTO;
}

static int pem_of(BIO *b, char **out, size_t *len)
{
    char *data = NULL;
    long n = BIO_get_mem_data(b, &data);
    if (n <= 0 || (*out = malloc((size_t)n + 1)) == NULL)
        return CG_ECRYPTO;
    memcpy(*out, data, (size_t)n);
    (*out)[n] = '\0';
    *len = (size_t)n;
    return 0;
}

static int chain_pem(X509 *leaf, X509 *root, char **out, size_t *len)
{
    BIO *b = BIO_new(BIO_s_mem());
    int rc = b != NULL && PEM_write_bio_X509(b, leaf) == 1 && PEM_write_bio_X509(b, root) == 1
                 ? pem_of(b, out, len)
                 : CG_ECRYPTO;
    BIO_free(b);
    return rc;
}

int cg_gpusim_chain_pem(struct cg_gpusim *s, char **out, size_t *len)
{
    return chain_pem(s->cert[LEAF], s->cert[ROOT], out, len);
}

int cg_gpusim_rim(struct cg_gpusim *s, enum cg_gpusim_rim_kind kind, uint8_t **out, size_t *len)
{
    int vbios = kind != CG_GPUSIM_RIM_DRIVER;
    unsigned end = kind == CG_GPUSIM_RIM_VBIOS_OVERLAP ? DRIVER_FIRST + 1
                   : vbios                             ? DRIVER_FIRST
                                                       : CG_GPUSIM_BLOCKS;
    size_t cap = 4096 + CG_GPUSIM_BLOCKS * 400;
    char *xml = malloc(cap), *key = NULL, *chain = NULL;
    size_t n = 0, klen = 0, clen = 0;
    int rc = CG_ECRYPTO;
    if (xml == NULL)
        return -ENOMEM;
    n += (size_t)snprintf(
        xml + n, cap - n,
        "<SoftwareIdentity xmlns=\"http://standards.iso.org/iso/19770/-2/2015/schema.xsd\" "
        "xmlns:sha384=\"http://www.w3.org/2001/04/xmlenc#sha384\" name=\"SIM\" "
        "tagId=\"%s\" version=\"1.0\">"
        "<Meta colloquialVersion=\"%s\" product=\"SIM\" edition=\"GPU\"/><Payload>",
        vbios ? "NV_GPU_VBIOS_0000_0000_SIM_960099000"
                "1"
              : "NV_GPU_DRIVER_SIM_" CG_GPUSIM_DRIVER_VERSION,
        vbios ? CG_GPUSIM_VBIOS_VERSION : CG_GPUSIM_DRIVER_VERSION);
    for (unsigned i = vbios ? 0 : DRIVER_FIRST; i < end; i++) {
        uint8_t val[VALUE_LEN];
        char hex[2 * VALUE_LEN + 1];
        block_value(i + 1, val);
        cg_hex(hex, sizeof(hex), val, VALUE_LEN);
        n += (size_t)snprintf(xml + n, cap - n,
                              "<Resource type=\"Measurement\" index=\"%u\" active=\"True\" "
                              "alternatives=\"1\" sha384:Hash0=\"%s\" size=\"48\"/>",
                              i, hex);
    }
    n += (size_t)snprintf(xml + n, cap - n, "</Payload></SoftwareIdentity>");
    BIO *b = BIO_new(BIO_s_mem());
    if (n < cap && b != NULL &&
        PEM_write_bio_PrivateKey(b, s->key[RIM], NULL, NULL, 0, NULL, NULL) == 1 &&
        pem_of(b, &key, &klen) == 0 && chain_pem(s->cert[RIM], s->cert[ROOT], &chain, &clen) == 0)
        rc = cg_rim_sign(xml, key, chain, out, len);
    BIO_free(b);
    if (key != NULL)
        OPENSSL_cleanse(key, klen);
    free(key);
    free(chain);
    free(xml);
    ERR_clear_error();
    return rc;
}

int cg_gpusim_ocsp(struct cg_gpusim *s, enum cg_gpusim_cert cert, int revoked, time_t revoked_at,
                   time_t this_update, time_t next_update, uint8_t **out, size_t *len)
{
    X509 *subject = s->cert[cert == CG_GPUSIM_LEAF ? LEAF : RIM];
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    OCSP_CERTID *id = OCSP_cert_to_id(EVP_sha384(), subject, s->cert[ROOT]);
    ASN1_TIME *thisupd = ASN1_GENERALIZEDTIME_set(NULL, this_update);
    ASN1_TIME *nextupd = ASN1_GENERALIZEDTIME_set(NULL, next_update);
    ASN1_TIME *rev = revoked ? ASN1_GENERALIZEDTIME_set(NULL, revoked_at) : NULL;
    OCSP_RESPONSE *resp = NULL;
    unsigned char *der = NULL;
    int n = 0;
    int ok =
        bs != NULL && id != NULL && thisupd != NULL && nextupd != NULL &&
        (!revoked || rev != NULL) &&
        OCSP_basic_add1_status(bs, id, revoked ? V_OCSP_CERTSTATUS_REVOKED : V_OCSP_CERTSTATUS_GOOD,
                               revoked ? OCSP_REVOKED_STATUS_KEYCOMPROMISE : -1, rev, thisupd,
                               nextupd) != NULL &&
        OCSP_basic_sign(bs, s->cert[ROOT], s->key[ROOT], EVP_sha384(), NULL, OCSP_NOCERTS) == 1 &&
        (resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs)) != NULL &&
        (n = i2d_OCSP_RESPONSE(resp, &der)) > 0 && (*out = malloc((size_t)n)) != NULL;
    if (ok) {
        memcpy(*out, der, (size_t)n);
        *len = (size_t)n;
    }
    OPENSSL_free(der);
    OCSP_RESPONSE_free(resp);
    ASN1_TIME_free(rev);
    ASN1_TIME_free(thisupd);
    ASN1_TIME_free(nextupd);
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(bs);
    ERR_clear_error();
    return ok ? 0 : CG_ECRYPTO;
}

struct sim_provider {
    struct cg_gpu_provider base;
    struct cg_gpusim *sim;
    uint8_t *rims[2];
    size_t rim_lens[2];
};

static int sim_get(struct cg_gpu_provider *base, const uint8_t nonce[32], struct cg_gpuev *out)
{
    struct sim_provider *p = (struct sim_provider *)base;
    struct cg_gpuev_gpu *g = &out->gpus[0];
    struct cg_gpusim_report_opts o;
    memset(&o, 0, sizeof(o));
    memcpy(o.nonce, nonce, 32);
    out->n_gpus = 1;
    snprintf(g->arch, sizeof(g->arch), "HOPPER");
    g->cc_mode = 1;
    int rc = cg_gpusim_report(p->sim, &o, &g->report, &g->report_len);
    if (rc == 0)
        rc = cg_gpusim_chain_pem(p->sim, &g->chain_pem, &g->chain_len);
    for (int i = 0; rc == 0 && i < 2; i++)
        rc = cg_gpuev_add_collateral(out, 1, p->rims[i], p->rim_lens[i]);
    time_t now = time(NULL);
    for (int c = CG_GPUSIM_LEAF; rc == 0 && c <= CG_GPUSIM_RIM_SIGNER; c++) {
        uint8_t *der = NULL;
        size_t len = 0;
        rc =
            cg_gpusim_ocsp(p->sim, (enum cg_gpusim_cert)c, 0, 0, now - 60, now + 86400, &der, &len);
        if (rc == 0)
            rc = cg_gpuev_add_collateral(out, 0, der, len);
        free(der);
    }
    return rc;
}

static void sim_free(struct cg_gpu_provider *base)
{
    struct sim_provider *p = (struct sim_provider *)base;
    cg_gpusim_free(p->sim);
    free(p->rims[0]);
    free(p->rims[1]);
    free(p);
}

int cg_gpusim_provider_new(const char *state_dir, struct cg_gpu_provider **out)
{
    struct sim_provider *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->base.name = "sim";
    p->base.get = sim_get;
    p->base.free = sim_free;
    int rc = cg_gpusim_open(state_dir, &p->sim);
    for (int i = 0; rc == 0 && i < 2; i++)
        rc = cg_gpusim_rim(p->sim, i == 0 ? CG_GPUSIM_RIM_DRIVER : CG_GPUSIM_RIM_VBIOS, &p->rims[i],
                           &p->rim_lens[i]);
    if (rc != 0) {
        sim_free(&p->base);
        return rc;
    }
    *out = &p->base;
    return 0;
}
