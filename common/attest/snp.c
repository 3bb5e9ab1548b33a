#include "ccgate/snp.h"
#include "ccgate/x509.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/evidence.h"

/* AMD's VCEK/VLEK extensions (ATTESTATION.md 1.4), below 1.3.6.1.4.1.3704.1. */
#define OID_PRODUCT_NAME "1.3.6.1.4.1.3704.1.2"
#define OID_BL_SPL "1.3.6.1.4.1.3704.1.3.1"
#define OID_TEE_SPL "1.3.6.1.4.1.3704.1.3.2"
#define OID_SNP_SPL "1.3.6.1.4.1.3704.1.3.3"
#define OID_UCODE_SPL "1.3.6.1.4.1.3704.1.3.8"
#define OID_FMC_SPL "1.3.6.1.4.1.3704.1.3.9"
#define OID_HWID "1.3.6.1.4.1.3704.1.4"
#define OID_CSP_ID "1.3.6.1.4.1.3704.1.5"

#define SIG_R_OFF 0x2A0
#define SIG_S_OFF 0x2E8
#define SIG_RS_LEN 72
#define SIG_END (SIG_S_OFF + SIG_RS_LEN)

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t x)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

static void put64(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

/* The checks verify() needs before it can know what the signature covers. */
static int check_header(const uint8_t *buf, size_t len, struct cg_verdict *v)
{
    if (len != CG_SNP_REPORT_SIZE)
        return cg_reject(v, CG_EEVIDENCE, "snp.report.size", "1184", "%zu", len);
    uint32_t version = get32(buf);
    if (version < 2 || version > 5)
        return cg_reject(v, CG_EEVIDENCE, "snp.report.version", "2 to 5", "%u", version);
    uint32_t algo = get32(buf + 0x34);
    if (algo != 1)
        return cg_reject(v, CG_EEVIDENCE, "snp.report.signature_algo", "1 (ECDSA P-384 SHA-384)",
                         "%u", algo);
    return 0;
}

/* Reserved ranges [lo, hi) that are zero in every report version that defines them. */
static int check_mbz(const uint8_t *buf, uint32_t version, struct cg_verdict *v)
{
    const size_t ranges[][2] = {
        {0x04C, 0x050},
        {version >= 3 ? 0x18B : 0x188, 0x1A0}, /* CPUID_FAM/MOD/STEP exist from v3 */
        {0x1EB, 0x1EC},
        {0x1EF, 0x1F0},
        {version >= 5 ? 0x208 : 0x1F8, 0x2A0}, /* the mitigation vectors exist from v5 */
        {SIG_END, CG_SNP_REPORT_SIZE},         /* beyond R and S of an ECDSA P-384 signature */
    };
    for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
        for (size_t o = ranges[i][0]; o < ranges[i][1]; o++)
            if (buf[o] != 0)
                return cg_reject(v, CG_EEVIDENCE, "snp.report.reserved", "zero",
                                 "byte 0x%03zx = 0x%02x", o, buf[o]);
    return 0;
}

int cg_snp_report_parse(const uint8_t *buf, size_t len, struct cg_snp_report *r,
                        struct cg_verdict *v)
{
    int rc = check_header(buf, len, v);
    if (rc != 0)
        return rc;
    memset(r, 0, sizeof(*r));
    r->version = get32(buf + 0x000);
    r->guest_svn = get32(buf + 0x004);
    r->policy = get64(buf + 0x008);
    memcpy(r->family_id, buf + 0x010, 16);
    memcpy(r->image_id, buf + 0x020, 16);
    r->vmpl = get32(buf + 0x030);
    r->signature_algo = get32(buf + 0x034);
    r->current_tcb = get64(buf + 0x038);
    r->platform_info = get64(buf + 0x040);
    r->signer_info = get32(buf + 0x048);
    memcpy(r->report_data, buf + 0x050, 64);
    memcpy(r->measurement, buf + 0x090, 48);
    memcpy(r->host_data, buf + 0x0C0, 32);
    memcpy(r->id_key_digest, buf + 0x0E0, 48);
    memcpy(r->author_key_digest, buf + 0x110, 48);
    memcpy(r->report_id, buf + 0x140, 32);
    memcpy(r->report_id_ma, buf + 0x160, 32);
    r->reported_tcb = get64(buf + 0x180);
    r->cpuid_fam_id = buf[0x188];
    r->cpuid_mod_id = buf[0x189];
    r->cpuid_step = buf[0x18A];
    memcpy(r->chip_id, buf + 0x1A0, 64);
    r->committed_tcb = get64(buf + 0x1E0);
    r->current_build = buf[0x1E8];
    r->current_minor = buf[0x1E9];
    r->current_major = buf[0x1EA];
    r->committed_build = buf[0x1EC];
    r->committed_minor = buf[0x1ED];
    r->committed_major = buf[0x1EE];
    r->launch_tcb = get64(buf + 0x1F0);
    r->launch_mit_vector = get64(buf + 0x1F8);
    r->current_mit_vector = get64(buf + 0x200);
    memcpy(r->sig_r, buf + SIG_R_OFF, SIG_RS_LEN);
    memcpy(r->sig_s, buf + SIG_S_OFF, SIG_RS_LEN);

    /* Guest policy: bit 17 is reserved-must-be-one, bits 63:26 are undefined and MBZ. */
    if ((r->policy & CG_SNP_POLICY_RESERVED1) == 0)
        return cg_reject(v, CG_EEVIDENCE, "snp.report.policy", "bit 17 set", "0x%016llx",
                         (unsigned long long)r->policy);
    if ((r->policy >> 26) != 0)
        return cg_reject(v, CG_EEVIDENCE, "snp.report.policy", "bits 63:26 zero", "0x%016llx",
                         (unsigned long long)r->policy);
    if (r->vmpl > 3)
        return cg_reject(v, CG_EEVIDENCE, "snp.report.vmpl", "0 to 3", "%u", r->vmpl);
    if ((r->signer_info >> 5) != 0)
        return cg_reject(v, CG_EEVIDENCE, "snp.report.signer_info", "bits 31:5 zero", "0x%08x",
                         r->signer_info);
    uint32_t key = (r->signer_info >> 2) & 7;
    if (key > 1)
        return cg_reject(v, CG_EEVIDENCE, "snp.report.signing_key", "0 (VCEK) or 1 (VLEK)", "%u",
                         key);
    return check_mbz(buf, r->version, v);
}

void cg_snp_report_write(const struct cg_snp_report *r, uint8_t out[CG_SNP_REPORT_SIZE])
{
    memset(out, 0, CG_SNP_REPORT_SIZE);
    put32(out + 0x000, r->version);
    put32(out + 0x004, r->guest_svn);
    put64(out + 0x008, r->policy);
    memcpy(out + 0x010, r->family_id, 16);
    memcpy(out + 0x020, r->image_id, 16);
    put32(out + 0x030, r->vmpl);
    put32(out + 0x034, r->signature_algo);
    put64(out + 0x038, r->current_tcb);
    put64(out + 0x040, r->platform_info);
    put32(out + 0x048, r->signer_info);
    memcpy(out + 0x050, r->report_data, 64);
    memcpy(out + 0x090, r->measurement, 48);
    memcpy(out + 0x0C0, r->host_data, 32);
    memcpy(out + 0x0E0, r->id_key_digest, 48);
    memcpy(out + 0x110, r->author_key_digest, 48);
    memcpy(out + 0x140, r->report_id, 32);
    memcpy(out + 0x160, r->report_id_ma, 32);
    put64(out + 0x180, r->reported_tcb);
    out[0x188] = r->cpuid_fam_id;
    out[0x189] = r->cpuid_mod_id;
    out[0x18A] = r->cpuid_step;
    memcpy(out + 0x1A0, r->chip_id, 64);
    put64(out + 0x1E0, r->committed_tcb);
    out[0x1E8] = r->current_build;
    out[0x1E9] = r->current_minor;
    out[0x1EA] = r->current_major;
    out[0x1EC] = r->committed_build;
    out[0x1ED] = r->committed_minor;
    out[0x1EE] = r->committed_major;
    put64(out + 0x1F0, r->launch_tcb);
    put64(out + 0x1F8, r->launch_mit_vector);
    put64(out + 0x200, r->current_mit_vector);
    memcpy(out + SIG_R_OFF, r->sig_r, SIG_RS_LEN);
    memcpy(out + SIG_S_OFF, r->sig_s, SIG_RS_LEN);
}

void cg_snp_tcb_decode(uint64_t raw, enum cg_snp_product p, struct cg_snp_tcb *out)
{
    memset(out, 0, sizeof(*out));
    out->raw = raw;
    out->microcode = (uint8_t)(raw >> 56);
    if (p == CG_SNP_TURIN) {
        out->fmc = (uint8_t)raw;
        out->bootloader = (uint8_t)(raw >> 8);
        out->tee = (uint8_t)(raw >> 16);
        out->snp = (uint8_t)(raw >> 24);
    } else {
        out->bootloader = (uint8_t)raw;
        out->tee = (uint8_t)(raw >> 8);
        out->snp = (uint8_t)(raw >> 48);
    }
}

/* The bytes of a TCB_VERSION that no SPL uses in p's layout. */
static uint64_t tcb_reserved(uint64_t raw, enum cg_snp_product p)
{
    return raw & (p == CG_SNP_TURIN ? 0x00FFFFFF00000000ull : 0x0000FFFFFFFF0000ull);
}

static const struct {
    enum cg_snp_product product;
    const char *name; /* as in the productName extension and AMD's CNs */
    const char *file; /* certs/amd/<kind>_<file>.pem */
} products[] = {
    {CG_SNP_MILAN, "Milan", "milan"},
    {CG_SNP_GENOA, "Genoa", "genoa"},
    {CG_SNP_TURIN, "Turin", "turin"},
};

const char *cg_snp_product_name(enum cg_snp_product p)
{
    for (size_t i = 0; i < sizeof(products) / sizeof(products[0]); i++)
        if (products[i].product == p)
            return products[i].name;
    return "unknown";
}

static const char *product_file(enum cg_snp_product p)
{
    for (size_t i = 0; i < sizeof(products) / sizeof(products[0]); i++)
        if (products[i].product == p)
            return products[i].file;
    return "unknown";
}

/* "Milan", "Milan-B0", "Genoa", "Turin-..." (the name, optionally a stepping after '-'). */
static enum cg_snp_product product_from_name(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(products) / sizeof(products[0]); i++) {
        size_t k = strlen(products[i].name);
        if (n >= k && memcmp(s, products[i].name, k) == 0 && (n == k || s[k] == '-'))
            return products[i].product;
    }
    return CG_SNP_PRODUCT_UNKNOWN;
}

/* CPUID family/model of v3+ reports (trustee get_processor_generation). */
static enum cg_snp_product product_from_cpuid(uint8_t fam, uint8_t model)
{
    if (fam == 0x19 && model <= 0x0F)
        return CG_SNP_MILAN;
    if (fam == 0x19 && ((model >= 0x10 && model <= 0x1F) || (model >= 0xA0 && model <= 0xAF)))
        return CG_SNP_GENOA;
    if (fam == 0x1A && model <= 0x11)
        return CG_SNP_TURIN;
    return CG_SNP_PRODUCT_UNKNOWN;
}

/* A certificate carried with the evidence: one DER certificate, at most the evidence cap. */
static X509 *parse_der(const uint8_t *der, size_t len)
{
    return len > CG_EVIDENCE_MAX_BYTES ? NULL : cg_x509_der(der, len);
}

/*
 * The content of x's extension oid: 1 found, 0 absent, -1 when it appears more than once
 * (X.509 forbids it, and a second copy could disagree with the first).
 */
static int get_ext(const X509 *x, const char *oid, const uint8_t **data, int *len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    if (obj == NULL)
        return -1;
    int i = X509_get_ext_by_OBJ(x, obj, -1);
    int again = i >= 0 ? X509_get_ext_by_OBJ(x, obj, i) : -1;
    ASN1_OBJECT_free(obj);
    if (i < 0)
        return 0;
    if (again >= 0)
        return -1;
    const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(X509_get_ext(x, i));
    *data = ASN1_STRING_get0_data(os);
    *len = ASN1_STRING_length(os);
    return 1;
}

/* An SPL extension: a DER INTEGER 0..255 inside the OCTET STRING. 1 ok, 0 absent, -1 bad. */
static int ext_spl(const X509 *x, const char *oid, unsigned *out)
{
    const uint8_t *data;
    int len;
    int rc = get_ext(x, oid, &data, &len);
    if (rc <= 0)
        return rc;
    const unsigned char *p = data;
    ASN1_INTEGER *ai = d2i_ASN1_INTEGER(NULL, &p, len);
    int64_t val = -1;
    int ok = ai != NULL && p == data + len && ASN1_INTEGER_get_int64(&val, ai) == 1 && val >= 0 &&
             val <= 255;
    ASN1_INTEGER_free(ai);
    *out = (unsigned)val;
    return ok ? 1 : -1;
}

/* The common name of n into out; 0, or -1 when absent, repeated or not plain text. */
static int get_cn(const X509_NAME *n, char *out, size_t cap)
{
    int i = X509_NAME_get_index_by_NID(n, NID_commonName, -1);
    if (i < 0 || X509_NAME_get_index_by_NID(n, NID_commonName, i) >= 0)
        return -1;
    const ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i));
    int len = ASN1_STRING_length(s);
    const uint8_t *d = ASN1_STRING_get0_data(s);
    if (len < 0 || (size_t)len >= cap || memchr(d, 0, (size_t)len) != NULL)
        return -1;
    memcpy(out, d, (size_t)len);
    out[len] = '\0';
    return 0;
}

/* The leaf's product, from its productName extension (an IA5String). */
static int leaf_product(const X509 *leaf, enum cg_snp_product *out, struct cg_verdict *v)
{
    const uint8_t *data = NULL;
    int len = 0;
    int rc = get_ext(leaf, OID_PRODUCT_NAME, &data, &len);
    if (rc == 0)
        return cg_reject(v, CG_EEVIDENCE, "snp.vcek.product", "a productName extension", "absent");
    const unsigned char *p = data;
    ASN1_IA5STRING *s = rc > 0 ? d2i_ASN1_IA5STRING(NULL, &p, len) : NULL;
    char name[32] = "";
    if (s != NULL && p == data + len && ASN1_STRING_length(s) < (int)sizeof(name)) {
        memcpy(name, ASN1_STRING_get0_data(s), (size_t)ASN1_STRING_length(s));
        name[ASN1_STRING_length(s)] = '\0';
        *out = product_from_name(name, strlen(name));
    } else {
        *out = CG_SNP_PRODUCT_UNKNOWN;
    }
    ASN1_IA5STRING_free(s);
    if (*out == CG_SNP_PRODUCT_UNKNOWN)
        return cg_reject(v, CG_EEVIDENCE, "snp.vcek.product", "Milan, Genoa or Turin", "\"%.31s\"",
                         name);
    return 0;
}

/*
 * The chain leaf -> inter -> ark at time at, ark the only trust anchor. No X509_STRICT:
 * AMD's VCEKs carry no Authority Key Identifier.
 */
static int verify_chain(X509 *leaf, X509 *inter, X509 *ark, time_t at, struct cg_verdict *v)
{
    int rc = CG_ECRYPTO;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    if (store == NULL || ctx == NULL || untrusted == NULL || X509_STORE_add_cert(store, ark) != 1 ||
        sk_X509_push(untrusted, inter) <= 0 ||
        X509_STORE_CTX_init(ctx, store, leaf, untrusted) != 1) {
        cg_reject(v, rc, "snp.chain", "verifiable", "out of memory");
        goto out;
    }
    X509_VERIFY_PARAM *pm = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(pm, at);
    X509_VERIFY_PARAM_set_flags(pm, X509_V_FLAG_CHECK_SS_SIGNATURE);
    X509_VERIFY_PARAM_set_depth(pm, 1);
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        int time_err = err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID;
        rc = cg_reject(v, CG_EEVIDENCE, time_err ? "snp.chain.validity" : "snp.chain",
                       "VCEK -> ASK -> ARK valid", "%s (depth %d)",
                       X509_verify_cert_error_string(err), X509_STORE_CTX_get_error_depth(ctx));
        goto out;
    }
    STACK_OF(X509) *chain = X509_STORE_CTX_get0_chain(ctx);
    if (chain == NULL || sk_X509_num(chain) != 3) {
        rc = cg_reject(v, CG_EEVIDENCE, "snp.chain", "3 certificates", "%d",
                       chain != NULL ? sk_X509_num(chain) : 0);
        goto out;
    }
    rc = 0;
out:
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return rc;
}

/* AMD signs every certificate with RSASSA-PSS, SHA-384, MGF1-SHA-384, salt 48. */
static int check_sigalg(const X509 *x, const char *what, struct cg_verdict *v)
{
    int mdnid = NID_undef, pknid = NID_undef, secbits = 0;
    uint32_t flags = 0;
    if (X509_get_signature_info((X509 *)x, &mdnid, &pknid, &secbits, &flags) != 1 ||
        pknid != EVP_PKEY_RSA_PSS || mdnid != NID_sha384 || (flags & X509_SIG_INFO_TLS) == 0)
        return cg_reject(v, CG_EEVIDENCE, "snp.chain.sigalg",
                         "RSASSA-PSS SHA-384 MGF1-SHA-384 salt 48", "%s: %s/%s", what,
                         OBJ_nid2sn(pknid), OBJ_nid2sn(mdnid));
    return 0;
}

static int check_leaf_key(const X509 *leaf, struct cg_verdict *v)
{
    char what[32];
    if (!cg_x509_key_p384(leaf, what, sizeof(what)))
        return cg_reject(v, CG_EEVIDENCE, "snp.vcek.key", "EC P-384", "%s", what);
    return 0;
}

/* ECDSA P-384 / SHA-384 over bytes 0x000-0x29F; R and S are 72-byte little-endian. */
static int check_signature(const uint8_t *buf, const X509 *leaf, struct cg_verdict *v)
{
    int rc = CG_ECRYPTO;
    unsigned char *der = NULL;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_lebin2bn(buf + SIG_R_OFF, SIG_RS_LEN, NULL);
    BIGNUM *s = BN_lebin2bn(buf + SIG_S_OFF, SIG_RS_LEN, NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (sig == NULL || r == NULL || s == NULL || md == NULL || ECDSA_SIG_set0(sig, r, s) != 1) {
        cg_reject(v, rc, "snp.signature", "verifiable", "out of memory");
        goto out;
    }
    r = s = NULL; /* owned by sig now */
    int der_len = i2d_ECDSA_SIG(sig, &der);
    if (der_len <= 0 ||
        EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, X509_get0_pubkey(leaf)) != 1) {
        cg_reject(v, rc, "snp.signature", "verifiable", "ECDSA setup failed");
        goto out;
    }
    if (EVP_DigestVerify(md, der, (size_t)der_len, buf, CG_SNP_SIGNED_LEN) != 1) {
        rc = cg_reject(v, CG_EEVIDENCE, "snp.signature", "valid ECDSA P-384 signature by the VCEK",
                       "invalid");
        goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(sig);
    return rc;
}

/* Each SPL extension of the leaf equals its component of REPORTED_TCB. */
static int check_tcb(const X509 *leaf, const struct cg_snp_report *r, enum cg_snp_product p,
                     struct cg_verdict *v)
{
    struct cg_snp_tcb t;
    cg_snp_tcb_decode(r->reported_tcb, p, &t);
    if (tcb_reserved(r->reported_tcb, p) != 0)
        return cg_reject(v, CG_EEVIDENCE, "snp.reported_tcb", "reserved bytes zero", "0x%016llx",
                         (unsigned long long)r->reported_tcb);
    const struct {
        const char *oid, *check;
        unsigned want;
        int needed;
    } spl[] = {
        {OID_BL_SPL, "snp.vcek_tcb.bootloader", t.bootloader, 1},
        {OID_TEE_SPL, "snp.vcek_tcb.tee", t.tee, 1},
        {OID_SNP_SPL, "snp.vcek_tcb.snp", t.snp, 1},
        {OID_UCODE_SPL, "snp.vcek_tcb.microcode", t.microcode, 1},
        {OID_FMC_SPL, "snp.vcek_tcb.fmc", t.fmc, p == CG_SNP_TURIN},
    };
    for (size_t i = 0; i < sizeof(spl) / sizeof(spl[0]); i++) {
        if (!spl[i].needed)
            continue;
        char want[8];
        snprintf(want, sizeof(want), "%u", spl[i].want);
        unsigned got = 0;
        int rc = ext_spl(leaf, spl[i].oid, &got);
        if (rc == 0)
            return cg_reject(v, CG_EEVIDENCE, spl[i].check, want, "extension absent");
        if (rc < 0)
            return cg_reject(v, CG_EEVIDENCE, spl[i].check, want, "malformed extension");
        if (got != spl[i].want)
            return cg_reject(v, CG_EEVIDENCE, spl[i].check, want, "%u", got);
    }
    return 0;
}

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/*
 * VCEK only: hwID equals CHIP_ID (64 bytes; the first 8 on Turin). The value is the raw
 * bytes, or (in some VCEKs) those bytes wrapped in a DER OCTET STRING; the lengths tell.
 */
static int check_hwid(const X509 *leaf, const struct cg_snp_report *r, enum cg_snp_product p,
                      struct cg_verdict *v)
{
    if (r->signer_info & 2) {
        /* MASK_CHIP_KEY: the firmware zeroes CHIP_ID, so there is nothing to compare. */
        if (!all_zero(r->chip_id, sizeof(r->chip_id)))
            return cg_reject(v, CG_EEVIDENCE, "snp.chip_id", "zero (MASK_CHIP_KEY)", "non-zero");
        return 0;
    }
    size_t want = p == CG_SNP_TURIN ? 8 : 64;
    const uint8_t *data;
    int len;
    int rc = get_ext(leaf, OID_HWID, &data, &len);
    if (rc == 0)
        return cg_reject(v, CG_EEVIDENCE, "snp.hwid", "a hwID extension", "absent");
    if (rc > 0 && (size_t)len == want + 2 && data[0] == 0x04 && data[1] == want) {
        data += 2;
        len -= 2;
    }
    if (rc < 0 || (size_t)len != want)
        return cg_reject(v, CG_EEVIDENCE, "snp.hwid", want == 8 ? "8 bytes" : "64 bytes",
                         "malformed extension");
    if (memcmp(data, r->chip_id, want) != 0) {
        char exp[2 * 64 + 1], act[2 * 64 + 1];
        cg_hex(exp, sizeof(exp), r->chip_id, want);
        cg_hex(act, sizeof(act), data, want);
        return cg_reject(v, CG_EEVIDENCE, "snp.hwid", exp, "%s", act);
    }
    return 0;
}

int cg__snp_vcek_check(const uint8_t *der, size_t len, const struct cg_snp_report *r,
                       struct cg_verdict *v)
{
    const unsigned char *pp = der;
    X509 *leaf = d2i_X509(NULL, &pp, (long)len);
    enum cg_snp_product p;
    int rc = leaf == NULL
                 ? cg_reject(v, CG_EEVIDENCE, "snp.vcek.der", "a DER certificate", "unparsable")
                 : leaf_product(leaf, &p, v);
    if (rc == 0)
        rc = check_tcb(leaf, r, p, v);
    if (rc == 0)
        rc = check_hwid(leaf, r, p, v);
    X509_free(leaf);
    ERR_clear_error();
    return rc;
}

/* Real AMD: pins the ARK of the product, picks the ASK/ASVK, checks the names. */
static int amd_chain(const uint8_t *const *certs, const size_t *cert_lens, size_t n_certs,
                     const X509 *leaf, enum cg_snp_product p, int vlek, X509 **inter, X509 **ark,
                     struct cg_verdict *v)
{
    char name[64], cn[64];
    snprintf(name, sizeof(name), "amd/ark_%s.pem", product_file(p));
    *ark = cg_x509_pinned(name);
    if (*ark == NULL)
        return cg_reject(v, CG_ECRYPTO, "snp.ark", "a pinned ARK", "%s missing", name);
    if (n_certs >= 3) {
        unsigned char *der = NULL;
        int der_len = i2d_X509(*ark, &der);
        int same = der_len > 0 && (size_t)der_len == cert_lens[2] &&
                   memcmp(der, certs[2], cert_lens[2]) == 0;
        OPENSSL_free(der);
        if (!same)
            return cg_reject(v, CG_EEVIDENCE, "snp.ark", name, "another certificate");
    }
    if (n_certs >= 2) {
        *inter = parse_der(certs[1], cert_lens[1]);
        if (*inter == NULL)
            return cg_reject(v, CG_EEVIDENCE, "snp.ask.der", "a DER certificate", "malformed");
    } else {
        snprintf(name, sizeof(name), "amd/%s_%s.pem", vlek ? "asvk" : "ask", product_file(p));
        *inter = cg_x509_pinned(name);
        if (*inter == NULL)
            return cg_reject(v, CG_ECRYPTO, "snp.ask", "a pinned ASK", "%s missing", name);
    }
    char want[32];
    snprintf(want, sizeof(want), vlek ? "SEV-VLEK-%s" : "SEV-%s", cg_snp_product_name(p));
    if (get_cn(X509_get_subject_name(*inter), cn, sizeof(cn)) != 0 || strcmp(cn, want) != 0)
        return cg_reject(v, CG_EEVIDENCE, "snp.ask", want, "%s", cn);
    const char *leaf_cn = vlek ? "SEV-VLEK" : "SEV-VCEK";
    if (get_cn(X509_get_subject_name(leaf), cn, sizeof(cn)) != 0 || strcmp(cn, leaf_cn) != 0)
        return cg_reject(v, CG_EEVIDENCE, "snp.vcek.subject", leaf_cn, "%s", cn);
    return 0;
}

/* Simulated TEE: the ARK travels with the evidence and must be the one the policy names. */
static int sim_chain(const uint8_t *const *certs, const size_t *cert_lens, size_t n_certs,
                     const struct cg_snp_anchor *anchor, X509 **inter, X509 **ark,
                     struct cg_verdict *v)
{
    if (n_certs != 3)
        return cg_reject(v, CG_EEVIDENCE, "snp.certs", "3 (VCEK, ASK, ARK)", "%zu", n_certs);
    uint8_t h[32];
    char exp[65], act[65];
    if (cert_lens[2] > CG_EVIDENCE_MAX_BYTES ||
        EVP_Digest(certs[2], cert_lens[2], h, NULL, EVP_sha256(), NULL) != 1)
        return cg_reject(v, CG_EEVIDENCE, "snp.sim_root", "a sim ARK", "unreadable");
    if (memcmp(h, anchor->sim_ark_sha256, 32) != 0) {
        cg_hex(exp, sizeof(exp), anchor->sim_ark_sha256, 32);
        cg_hex(act, sizeof(act), h, 32);
        return cg_reject(v, CG_EEVIDENCE, "snp.sim_root", exp, "%s", act);
    }
    *ark = parse_der(certs[2], cert_lens[2]);
    if (*ark == NULL)
        return cg_reject(v, CG_EEVIDENCE, "snp.ark.der", "a DER certificate", "malformed");
    *inter = parse_der(certs[1], cert_lens[1]);
    if (*inter == NULL)
        return cg_reject(v, CG_EEVIDENCE, "snp.ask.der", "a DER certificate", "malformed");
    return 0;
}

int cg_snp_verify(const uint8_t *report, size_t len, const uint8_t *const *certs,
                  const size_t *cert_lens, size_t n_certs, const struct cg_snp_anchor *anchor,
                  time_t at, struct cg_snp_report *r, struct cg_verdict *v)
{
    X509 *leaf = NULL, *inter = NULL, *ark = NULL;
    struct cg_snp_report tmp;
    enum cg_snp_product p = CG_SNP_PRODUCT_UNKNOWN;
    const uint8_t *data;
    int data_len;
    int rc = check_header(report, len, v);
    if (rc != 0)
        goto out;
    if (n_certs < 1 || n_certs > 3) {
        rc = cg_reject(v, CG_EEVIDENCE, "snp.certs", "1 to 3 (VCEK/VLEK, ASK/ASVK, ARK)", "%zu",
                       n_certs);
        goto out;
    }
    leaf = parse_der(certs[0], cert_lens[0]);
    if (leaf == NULL) {
        rc = cg_reject(v, CG_EEVIDENCE, "snp.vcek.der", "a DER certificate", "malformed");
        goto out;
    }
    /* A VLEK carries the CSP_ID of the cloud provider it was issued to, and an ASVK issued it. */
    int vlek = get_ext(leaf, OID_CSP_ID, &data, &data_len);
    if (vlek < 0) {
        rc = cg_reject(v, CG_EEVIDENCE, "snp.vcek.csp_id", "at most once", "repeated");
        goto out;
    }
    char issuer[64];
    if (get_cn(X509_get_issuer_name(leaf), issuer, sizeof(issuer)) == 0 &&
        strncmp(issuer, "SEV-VLEK-", 9) == 0)
        vlek = 1;
    if ((rc = leaf_product(leaf, &p, v)) != 0)
        goto out;
    if (get32(report) >= 3) {
        uint8_t fam = report[0x188], model = report[0x189];
        enum cg_snp_product cp = product_from_cpuid(fam, model);
        if (cp != p) {
            rc = cg_reject(v, CG_EEVIDENCE, "snp.product", cg_snp_product_name(p),
                           "%s (CPUID family 0x%02x model 0x%02x)", cg_snp_product_name(cp), fam,
                           model);
            goto out;
        }
    }
    rc = anchor->sim ? sim_chain(certs, cert_lens, n_certs, anchor, &inter, &ark, v)
                     : amd_chain(certs, cert_lens, n_certs, leaf, p, vlek, &inter, &ark, v);
    if (rc != 0)
        goto out;
    if ((rc = verify_chain(leaf, inter, ark, at, v)) != 0 ||
        (rc = check_sigalg(leaf, "VCEK", v)) != 0 || (rc = check_sigalg(inter, "ASK", v)) != 0 ||
        (rc = check_sigalg(ark, "ARK", v)) != 0 || (rc = check_leaf_key(leaf, v)) != 0 ||
        (rc = check_signature(report, leaf, v)) != 0)
        goto out;
    /* The bytes are the signer's from here on: the remaining checks are about what they say. */
    if ((rc = cg_snp_report_parse(report, len, &tmp, v)) != 0)
        goto out;
    int signing_key = (int)((tmp.signer_info >> 2) & 7);
    if (signing_key != vlek) {
        rc = cg_reject(v, CG_EEVIDENCE, "snp.signing_key", vlek ? "1 (VLEK)" : "0 (VCEK)", "%d",
                       signing_key);
        goto out;
    }
    if ((rc = check_tcb(leaf, &tmp, p, v)) != 0)
        goto out;
    if (!vlek && (rc = check_hwid(leaf, &tmp, p, v)) != 0)
        goto out;
    tmp.product = p;
    tmp.vlek = vlek;
    cg_snp_tcb_decode(tmp.reported_tcb, p, &tmp.reported);
    cg_snp_tcb_decode(tmp.current_tcb, p, &tmp.current);
    cg_snp_tcb_decode(tmp.committed_tcb, p, &tmp.committed);
    cg_snp_tcb_decode(tmp.launch_tcb, p, &tmp.launch);
    *r = tmp;
out:
    ERR_clear_error();
    X509_free(leaf);
    X509_free(inter);
    X509_free(ark);
    return rc;
}

int cg_snp_certs_load(const uint8_t *data, size_t len, struct cg_evidence *out)
{
    int rc = 0;
    static const char pem_begin[] = "-----BEGIN";
    if (len < sizeof(pem_begin) - 1 || memcmp(data, pem_begin, sizeof(pem_begin) - 1) != 0) {
        const unsigned char *p = data;
        X509 *x = d2i_X509(NULL, &p, (long)len);
        if (x == NULL || p != data + len) {
            X509_free(x);
            ERR_clear_error();
            return CG_EEVIDENCE;
        }
        X509_free(x);
        if (out->n_certs == CG_EVIDENCE_MAX_CERTS)
            return CG_ELIMIT;
        out->certs[out->n_certs] = malloc(len);
        if (out->certs[out->n_certs] == NULL)
            return CG_ECRYPTO;
        memcpy(out->certs[out->n_certs], data, len);
        out->cert_lens[out->n_certs++] = len;
        return 0;
    }
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    if (bio == NULL)
        return CG_ECRYPTO;
    size_t before = out->n_certs;
    X509 *x;
    while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        unsigned char *der = NULL;
        int n = i2d_X509(x, &der);
        X509_free(x);
        if (n <= 0) {
            rc = CG_EEVIDENCE;
            break;
        }
        if (out->n_certs == CG_EVIDENCE_MAX_CERTS) {
            OPENSSL_free(der);
            rc = CG_ELIMIT;
            break;
        }
        out->certs[out->n_certs] = malloc((size_t)n);
        if (out->certs[out->n_certs] != NULL)
            memcpy(out->certs[out->n_certs], der, (size_t)n);
        OPENSSL_free(der);
        if (out->certs[out->n_certs] == NULL) {
            rc = CG_ECRYPTO;
            break;
        }
        out->cert_lens[out->n_certs++] = (size_t)n;
    }
    BIO_free(bio);
    ERR_clear_error();
    if (rc == 0 && out->n_certs == before)
        rc = CG_EEVIDENCE;
    return rc;
}

int cg_snp_chain_pick(const uint8_t *const *certs, const size_t *cert_lens, size_t n, size_t idx[3],
                      struct cg_verdict *v)
{
    X509 *x[CG_EVIDENCE_MAX_CERTS] = {NULL};
    int rc = CG_EEVIDENCE;
    size_t found = 1;
    if (n < 1 || n > CG_EVIDENCE_MAX_CERTS)
        return cg_reject(v, CG_EEVIDENCE, "snp.certs", "1 to 8", "%zu", n);
    for (size_t i = 0; i < n; i++) {
        x[i] = parse_der(certs[i], cert_lens[i]);
        if (x[i] == NULL) {
            rc = cg_reject(v, CG_EEVIDENCE, i == 0 ? "snp.vcek.der" : "snp.certs.der",
                           "a DER certificate", "certificate %zu malformed", i);
            goto out;
        }
    }
    idx[0] = 0;
    /* Up from the leaf: the certificate named by the issuer of the one found last. */
    for (size_t level = 1; level < 3; level++) {
        size_t hit = n;
        for (size_t i = 1; i < n && hit == n; i++)
            if (X509_NAME_cmp(X509_get_issuer_name(x[idx[level - 1]]),
                              X509_get_subject_name(x[i])) == 0)
                hit = i;
        if (hit == n)
            break;
        idx[found++] = hit;
        if (X509_NAME_cmp(X509_get_issuer_name(x[hit]), X509_get_subject_name(x[hit])) == 0)
            break; /* a root: nothing above it */
    }
    if (n > 1 && found == 1) {
        char issuer[64] = "?";
        (void)get_cn(X509_get_issuer_name(x[0]), issuer, sizeof(issuer));
        rc = cg_reject(v, CG_EEVIDENCE, "snp.ask", issuer,
                       "none of the %zu other certificates given", n - 1);
        goto out;
    }
    rc = (int)found;
out:
    for (size_t i = 0; i < n; i++)
        X509_free(x[i]);
    ERR_clear_error();
    return rc;
}

/* Azure's HCL report: a 32-byte header, the SNP report, then IGVM request data. */
#define HCL_MAGIC 0x414C4348u /* "HCLA" */
#define HCL_REPORT_OFF 0x20
#define HCL_DATA_OFF (HCL_REPORT_OFF + CG_SNP_REPORT_SIZE)
#define HCL_VAR_OFF (HCL_DATA_OFF + 20)
#define HCL_REPORT_TYPE_SNP 2

int cg_snp_hcl_parse(const uint8_t *buf, size_t len, struct cg_snp_hcl *out, struct cg_verdict *v)
{
    memset(out, 0, sizeof(*out));
    if (len < 4 || get32(buf) != HCL_MAGIC)
        return 0;
    if (len < HCL_VAR_OFF)
        return cg_reject(v, CG_EEVIDENCE, "snp.hcl.size", ">= 1236 bytes (header, report, data)",
                         "%zu", len);
    uint32_t type = get32(buf + HCL_DATA_OFF + 8), hash = get32(buf + HCL_DATA_OFF + 12);
    uint32_t var_len = get32(buf + HCL_DATA_OFF + 16);
    if (type != HCL_REPORT_TYPE_SNP)
        return cg_reject(v, CG_EEVIDENCE, "snp.hcl.report_type", "2 (SNP)", "%u", type);
    if (var_len > len - HCL_VAR_OFF)
        return cg_reject(v, CG_EEVIDENCE, "snp.hcl.runtime_size", "within the HCL report",
                         "%u of %zu", var_len, len - HCL_VAR_OFF);
    out->report = buf + HCL_REPORT_OFF;
    out->runtime = buf + HCL_VAR_OFF;
    out->runtime_len = var_len;
    /* The report's REPORT_DATA starts with the hash of the runtime data (hash type 1, 2, 3:
     * SHA-256, -384, -512), zero after it. */
    const EVP_MD *md = hash == 1   ? EVP_sha256()
                       : hash == 2 ? EVP_sha384()
                       : hash == 3 ? EVP_sha512()
                                   : NULL;
    uint8_t h[64] = {0};
    unsigned int hlen = 0;
    if (md != NULL && EVP_Digest(out->runtime, var_len, h, &hlen, md, NULL) == 1)
        out->runtime_bound = memcmp(h, out->report + 0x50, sizeof(h)) == 0;
    return 1;
}
