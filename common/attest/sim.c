#include "ccgate/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ccgate/err.h"
#include "ccgate/file.h"
#include "ccgate/log.h"
#include "ccgate/snp.h"

/*
 * The sim platform's TCB (Milan layout) and firmware version: fixed, so that the VCEK's SPL
 * extensions written at sim-init and every report signed later agree.
 */
#define SIM_BL_SPL 3
#define SIM_TEE_SPL 0
#define SIM_SNP_SPL 20
#define SIM_UCODE_SPL 209
#define SIM_TCB                                                                                    \
    ((uint64_t)SIM_BL_SPL | (uint64_t)SIM_TEE_SPL << 8 | (uint64_t)SIM_SNP_SPL << 48 |             \
     (uint64_t)SIM_UCODE_SPL << 56)
#define SIM_FW_MAJOR 1
#define SIM_FW_MINOR 55
#define SIM_FW_BUILD 0

/* RSA-4096 like AMD's ARK and ASK: about a second each to generate, once per state folder. */
#define SIM_RSA_BITS 4096
#define SIM_ROOT_DAYS (25 * 365)
#define SIM_VCEK_DAYS (7 * 365)
#define SIM_KEY_MAX_BYTES (16 * 1024)

struct sim_state {
    X509 *ark, *ask, *vcek;
    EVP_PKEY *ark_key, *ask_key, *vcek_key;
    uint8_t chip_id[64];
};

static void state_free(struct sim_state *s)
{
    X509_free(s->ark);
    X509_free(s->ask);
    X509_free(s->vcek);
    EVP_PKEY_free(s->ark_key);
    EVP_PKEY_free(s->ask_key);
    EVP_PKEY_free(s->vcek_key);
    OPENSSL_cleanse(s->chip_id, sizeof(s->chip_id));
    memset(s, 0, sizeof(*s));
}

static int join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap ? 0 : CG_ELIMIT;
}

/* Creates path with mode, failing if it exists: the state is never overwritten. */
int cg__sim_write_new(const char *path, const void *data, size_t len, unsigned mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
    if (fd < 0) {
        int err = -errno;
        cg_log_error("sim_write", "path=%s err=\"%s\"", path, strerror(errno));
        return err;
    }
    const uint8_t *p = data;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    int ok = done == len && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = 0;
    if (!ok) {
        cg_log_error("sim_write", "path=%s err=\"short write\"", path);
        (void)unlink(path);
        return CG_ECONFIG;
    }
    return 0;
}

/* cg_file_read() of a state file, logging why it cannot be used; -ENOENT when absent. */
int cg__sim_read_all(const char *path, size_t max, uint8_t **out, size_t *out_len)
{
    int rc = cg_file_read(path, max, out, out_len);
    if (rc != 0 && rc != -ENOENT) {
        cg_log_error("sim_read", "path=%s err=\"%s (at most %zu bytes)\"", path, cg_strerror(rc),
                     max);
        return CG_ECONFIG;
    }
    return rc;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static X509 *pem_to_cert(const uint8_t *pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return x;
}

static EVP_PKEY *pem_to_key(const uint8_t *pem, size_t len)
{
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *k = b != NULL ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return k;
}

/* Writes cert, or else key, as PEM into a new file (keys 0600). */
static int write_pem(const char *path, X509 *cert, EVP_PKEY *key)
{
    BIO *b = BIO_new(BIO_s_mem());
    int rc = CG_ECRYPTO;
    if (b == NULL)
        return rc;
    int ok = cert != NULL ? PEM_write_bio_X509(b, cert)
                          : PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    char *data = NULL;
    long len = BIO_get_mem_data(b, &data);
    if (ok == 1 && len > 0)
        rc = cg__sim_write_new(path, data, (size_t)len, cert != NULL ? 0644 : 0600);
    BIO_free(b);
    return rc;
}

static int add_ext_nid(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    int ok = ex != NULL && X509_add_ext(x, ex, -1) == 1;
    X509_EXTENSION_free(ex);
    return ok;
}

/* Adds a non-critical extension whose OCTET STRING holds der[0..len). */
static int add_ext_raw(X509 *x, const char *oid, const uint8_t *der, int len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    X509_EXTENSION *ex = NULL;
    int ok = obj != NULL && os != NULL && ASN1_OCTET_STRING_set(os, der, len) == 1 &&
             (ex = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) != NULL &&
             X509_add_ext(x, ex, -1) == 1;
    X509_EXTENSION_free(ex);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
    return ok;
}

static int add_ext_int(X509 *x, const char *oid, long value)
{
    ASN1_INTEGER *ai = ASN1_INTEGER_new();
    unsigned char *der = NULL;
    int len = ai != NULL && ASN1_INTEGER_set(ai, value) == 1 ? i2d_ASN1_INTEGER(ai, &der) : -1;
    int ok = len > 0 && add_ext_raw(x, oid, der, len);
    OPENSSL_free(der);
    ASN1_INTEGER_free(ai);
    return ok;
}

static int add_ext_ia5(X509 *x, const char *oid, const char *value)
{
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    unsigned char *der = NULL;
    int len = s != NULL && ASN1_STRING_set(s, value, -1) == 1 ? i2d_ASN1_IA5STRING(s, &der) : -1;
    int ok = len > 0 && add_ext_raw(x, oid, der, len);
    OPENSSL_free(der);
    ASN1_IA5STRING_free(s);
    return ok;
}

/* AMD's VCEK extensions (ATTESTATION.md 1.4) for the sim platform. */
static int add_vcek_exts(X509 *x, const uint8_t chip_id[64])
{
    return add_ext_int(x, "1.3.6.1.4.1.3704.1.1", 0) &&
           add_ext_ia5(x, "1.3.6.1.4.1.3704.1.2", "Milan-B0") &&
           add_ext_int(x, "1.3.6.1.4.1.3704.1.3.1", SIM_BL_SPL) &&
           add_ext_int(x, "1.3.6.1.4.1.3704.1.3.2", SIM_TEE_SPL) &&
           add_ext_int(x, "1.3.6.1.4.1.3704.1.3.4", 0) &&
           add_ext_int(x, "1.3.6.1.4.1.3704.1.3.5", 0) &&
           add_ext_int(x, "1.3.6.1.4.1.3704.1.3.6", 0) &&
           add_ext_int(x, "1.3.6.1.4.1.3704.1.3.7", 0) &&
           add_ext_int(x, "1.3.6.1.4.1.3704.1.3.3", SIM_SNP_SPL) &&
           add_ext_int(x, "1.3.6.1.4.1.3704.1.3.8", SIM_UCODE_SPL) &&
           add_ext_raw(x, "1.3.6.1.4.1.3704.1.4", chip_id, 64);
}

/* Signs x like AMD's KDS: RSASSA-PSS, SHA-384, MGF1-SHA-384, salt length 48. */
static int sign_pss(X509 *x, EVP_PKEY *key)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    int ok = md != NULL && EVP_DigestSignInit(md, &pctx, EVP_sha384(), NULL, key) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) == 1 && X509_sign_ctx(x, md) > 0;
    EVP_MD_CTX_free(md);
    return ok;
}

enum sim_kind { SIM_ARK, SIM_ASK, SIM_VCEK };

/* A certificate for key: the ARK self-signed, the ASK under the ARK, the VCEK under the ASK. */
static X509 *make_cert(enum sim_kind kind, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       const uint8_t chip_id[64])
{
    static const char *const cns[] = {"ARK-Milan-SIM", "SEV-Milan-SIM", "SEV-VCEK-SIM"};
    X509 *x = X509_new();
    X509_NAME *name = X509_NAME_new();
    uint64_t serial = 0;
    int ok = x != NULL && name != NULL && X509_set_version(x, 2) == 1 &&
             RAND_bytes((unsigned char *)&serial, sizeof(serial)) == 1 &&
             ASN1_INTEGER_set_uint64(X509_get_serialNumber(x), serial >> 1 | 1) == 1 &&
             X509_NAME_add_entry_by_txt(name, "C", MBSTRING_ASC, (const unsigned char *)"US", -1,
                                        -1, 0) == 1 &&
             X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                        (const unsigned char *)"ccgate SIMULATED TEE (INSECURE)",
                                        -1, -1, 0) == 1 &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cns[kind],
                                        -1, -1, 0) == 1 &&
             X509_set_subject_name(x, name) == 1 &&
             X509_set_issuer_name(x, issuer != NULL ? X509_get_subject_name(issuer) : name) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(x), -86400) != NULL &&
             X509_time_adj_ex(X509_getm_notAfter(x),
                              kind == SIM_VCEK ? SIM_VCEK_DAYS : SIM_ROOT_DAYS, 0, NULL) != NULL &&
             X509_set_pubkey(x, key) == 1;
    if (ok && kind == SIM_ARK)
        ok = add_ext_nid(x, x, NID_basic_constraints, "critical,CA:TRUE") &&
             add_ext_nid(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    else if (ok && kind == SIM_ASK)
        ok = add_ext_nid(x, issuer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
             add_ext_nid(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
    else if (ok)
        ok = add_vcek_exts(x, chip_id);
    ok = ok && sign_pss(x, issuer_key != NULL ? issuer_key : key);
    X509_NAME_free(name);
    if (!ok) {
        X509_free(x);
        return NULL;
    }
    return x;
}

/*
 * Loads one certificate and key pair (name.pem, name.key) or, with create set and both
 * absent, makes and writes them. Exactly one of the two present is an error: the pair is
 * never completed by overwriting.
 */
static int load_pair(const char *dir, const char *name, int create, enum sim_kind kind,
                     struct sim_state *s, X509 **cert, EVP_PKEY **key)
{
    char cpath[PATH_MAX], kpath[PATH_MAX], file[32];
    snprintf(file, sizeof(file), "%s.pem", name);
    if (join(cpath, sizeof(cpath), dir, file) != 0)
        return CG_ELIMIT;
    snprintf(file, sizeof(file), "%s.key", name);
    if (join(kpath, sizeof(kpath), dir, file) != 0)
        return CG_ELIMIT;
    int have_c = exists(cpath), have_k = exists(kpath);
    if (have_c && have_k) {
        uint8_t *pem = NULL;
        size_t len = 0;
        int rc = cg__sim_read_all(cpath, SIM_KEY_MAX_BYTES, &pem, &len);
        if (rc != 0)
            return rc;
        *cert = pem_to_cert(pem, len);
        free(pem);
        if ((rc = cg__sim_read_all(kpath, SIM_KEY_MAX_BYTES, &pem, &len)) != 0)
            return rc;
        *key = pem_to_key(pem, len);
        OPENSSL_cleanse(pem, len);
        free(pem);
        if (*cert == NULL || *key == NULL || X509_check_private_key(*cert, *key) != 1) {
            cg_log_error("sim_state", "dir=%s pair=%s err=\"unreadable or mismatched\"", dir, name);
            return CG_ECONFIG;
        }
        return 0;
    }
    if (have_c || have_k || !create) {
        cg_log_error("sim_state", "dir=%s pair=%s err=\"%s\"", dir, name,
                     create ? "half a pair present; remove it to regenerate"
                            : "missing; run ccgate sim-init");
        return CG_ECONFIG;
    }
    *key = kind == SIM_VCEK ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384")
                            : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)SIM_RSA_BITS);
    if (*key == NULL)
        return CG_ECRYPTO;
    X509 *issuer = kind == SIM_ASK ? s->ark : kind == SIM_VCEK ? s->ask : NULL;
    EVP_PKEY *issuer_key = kind == SIM_ASK ? s->ark_key : kind == SIM_VCEK ? s->ask_key : NULL;
    *cert = make_cert(kind, *key, issuer, issuer_key, s->chip_id);
    if (*cert == NULL)
        return CG_ECRYPTO;
    int rc = write_pem(kpath, NULL, *key);
    if (rc == 0)
        rc = write_pem(cpath, *cert, NULL);
    if (rc == 0)
        cg_log_info("sim_init", "created=%s dir=%s", name, dir);
    return rc;
}

static int load_chip_id(const char *dir, int create, uint8_t chip_id[64])
{
    char path[PATH_MAX];
    if (join(path, sizeof(path), dir, "chip_id") != 0)
        return CG_ELIMIT;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = cg__sim_read_all(path, 64, &buf, &len);
    if (rc == 0) {
        if (len == 64)
            memcpy(chip_id, buf, 64);
        free(buf);
        if (len != 64) {
            cg_log_error("sim_state", "path=%s err=\"not 64 bytes\"", path);
            return CG_ECONFIG;
        }
        return 0;
    }
    if (rc != -ENOENT || !create) {
        cg_log_error("sim_state", "path=%s err=\"%s\"", path, cg_strerror(rc));
        return rc;
    }
    if (RAND_bytes(chip_id, 64) != 1)
        return CG_ECRYPTO;
    return cg__sim_write_new(path, chip_id, 64, 0600);
}

/* Loads (or, with create, completes) the state in dir and checks that it chains. */
static int state_load(const char *dir, int create, struct sim_state *s)
{
    memset(s, 0, sizeof(*s));
    int rc;
    if ((rc = load_chip_id(dir, create, s->chip_id)) != 0 ||
        (rc = load_pair(dir, "ark", create, SIM_ARK, s, &s->ark, &s->ark_key)) != 0 ||
        (rc = load_pair(dir, "ask", create, SIM_ASK, s, &s->ask, &s->ask_key)) != 0 ||
        (rc = load_pair(dir, "vcek", create, SIM_VCEK, s, &s->vcek, &s->vcek_key)) != 0)
        goto out;
    if (X509_verify(s->ark, s->ark_key) != 1 || X509_verify(s->ask, s->ark_key) != 1 ||
        X509_verify(s->vcek, s->ask_key) != 1) {
        cg_log_error("sim_state", "dir=%s err=\"ARK, ASK and VCEK do not chain\"", dir);
        rc = CG_ECONFIG;
    }
out:
    ERR_clear_error();
    if (rc != 0)
        state_free(s);
    return rc;
}

int cg_sim_init(const char *state_dir, uint8_t ark_sha256[32])
{
    struct sim_state s;
    struct stat st;
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        int err = -errno;
        cg_log_error("sim_init", "dir=%s err=\"%s\"", state_dir, strerror(errno));
        return err;
    }
    if (stat(state_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        cg_log_error("sim_init", "dir=%s err=\"not a directory\"", state_dir);
        return CG_ECONFIG;
    }
    if ((st.st_mode & 077) != 0)
        cg_log_warn("sim_init", "dir=%s warning=\"readable by others: it holds private keys\"",
                    state_dir);
    int rc = state_load(state_dir, 1, &s);
    if (rc != 0)
        return rc;
    unsigned char *der = NULL;
    int len = i2d_X509(s.ark, &der);
    if (len <= 0 || EVP_Digest(der, (size_t)len, ark_sha256, NULL, EVP_sha256(), NULL) != 1)
        rc = CG_ECRYPTO;
    OPENSSL_free(der);
    state_free(&s);
    return rc;
}

/* Signs r (its signature fields are replaced) with key and writes the report into out. */
static int sign_report(EVP_PKEY *key, struct cg_snp_report *r, uint8_t out[CG_SNP_REPORT_SIZE])
{
    int rc = CG_ECRYPTO;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[256];
    size_t der_len = sizeof(der);
    ECDSA_SIG *sig = NULL;
    memset(r->sig_r, 0, sizeof(r->sig_r));
    memset(r->sig_s, 0, sizeof(r->sig_s));
    cg_snp_report_write(r, out);
    if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key) != 1 ||
        EVP_DigestSign(md, der, &der_len, out, CG_SNP_SIGNED_LEN) != 1)
        goto out;
    const unsigned char *p = der;
    sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    if (sig == NULL || BN_bn2lebinpad(ECDSA_SIG_get0_r(sig), r->sig_r, (int)sizeof(r->sig_r)) < 0 ||
        BN_bn2lebinpad(ECDSA_SIG_get0_s(sig), r->sig_s, (int)sizeof(r->sig_s)) < 0)
        goto out;
    cg_snp_report_write(r, out);
    rc = 0;
out:
    ECDSA_SIG_free(sig);
    EVP_MD_CTX_free(md);
    return rc;
}

int cg_sim_sign_report(const char *state_dir, const struct cg_snp_report *r,
                       uint8_t out[CG_SNP_REPORT_SIZE])
{
    struct sim_state s;
    int rc = state_load(state_dir, 0, &s);
    if (rc != 0)
        return rc;
    struct cg_snp_report copy = *r;
    rc = sign_report(s.vcek_key, &copy, out);
    state_free(&s);
    return rc;
}

struct sim_provider {
    struct cg_provider base; /* first: the provider API hands this pointer back */
    EVP_PKEY *vcek_key;
    uint8_t chip_id[64];
    uint8_t measurement[48];
    uint8_t *der[3]; /* VCEK, ASK, ARK */
    size_t der_len[3];
};

static int sim_get(struct cg_provider *base, const uint8_t report_data[CG_REPORT_DATA_LEN],
                   struct cg_evidence *out)
{
    struct sim_provider *sp = (struct sim_provider *)base;
    struct cg_snp_report r;
    memset(&r, 0, sizeof(r));
    memset(out, 0, sizeof(*out));
    /* Version 3 with Milan's CPUID (family 0x19, model 0x01, stepping 0 = B0). */
    r.version = 3;
    r.policy = CG_SNP_POLICY_SMT | CG_SNP_POLICY_RESERVED1;
    r.signature_algo = 1;
    r.current_tcb = r.reported_tcb = r.committed_tcb = r.launch_tcb = SIM_TCB;
    r.platform_info = 1; /* SMT enabled */
    memcpy(r.report_data, report_data, CG_REPORT_DATA_LEN);
    memcpy(r.measurement, sp->measurement, sizeof(r.measurement));
    memset(r.report_id_ma, 0xff, sizeof(r.report_id_ma));
    r.cpuid_fam_id = 0x19;
    r.cpuid_mod_id = 0x01;
    r.cpuid_step = 0x00;
    memcpy(r.chip_id, sp->chip_id, sizeof(r.chip_id));
    r.current_major = r.committed_major = SIM_FW_MAJOR;
    r.current_minor = r.committed_minor = SIM_FW_MINOR;
    r.current_build = r.committed_build = SIM_FW_BUILD;
    if (RAND_bytes(r.report_id, sizeof(r.report_id)) != 1)
        return CG_ECRYPTO;
    out->tag = CG_TAG_SIM;
    out->evidence = malloc(CG_SNP_REPORT_SIZE);
    if (out->evidence == NULL)
        goto oom;
    out->evidence_len = CG_SNP_REPORT_SIZE;
    for (size_t i = 0; i < 3; i++) {
        out->certs[i] = malloc(sp->der_len[i]);
        if (out->certs[i] == NULL)
            goto oom;
        memcpy(out->certs[i], sp->der[i], sp->der_len[i]);
        out->cert_lens[i] = sp->der_len[i];
        out->n_certs = i + 1;
    }
    int rc = sign_report(sp->vcek_key, &r, out->evidence);
    if (rc != 0)
        cg_evidence_clear(out);
    return rc;
oom:
    cg_evidence_clear(out);
    return -ENOMEM;
}

static void sim_free(struct cg_provider *base)
{
    struct sim_provider *sp = (struct sim_provider *)base;
    if (sp == NULL)
        return;
    EVP_PKEY_free(sp->vcek_key);
    for (size_t i = 0; i < 3; i++)
        OPENSSL_free(sp->der[i]);
    OPENSSL_cleanse(sp, sizeof(*sp));
    free(sp);
}

/* SHA-384 of a file's bytes. */
static int hash_file(const char *path, uint8_t out[48])
{
    FILE *f = fopen(path, "rbe");
    if (f == NULL) {
        int err = -errno;
        cg_log_error("sim_measure", "path=%s err=\"%s\"", path, strerror(errno));
        return err;
    }
    int rc = CG_ECRYPTO;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md != NULL && EVP_DigestInit_ex(md, EVP_sha384(), NULL) == 1) {
        uint8_t buf[64 * 1024];
        size_t n;
        int ok = 1;
        while (ok && (n = fread(buf, 1, sizeof(buf), f)) > 0)
            ok = EVP_DigestUpdate(md, buf, n) == 1;
        if (ok && !ferror(f) && EVP_DigestFinal_ex(md, out, NULL) == 1)
            rc = 0;
    }
    EVP_MD_CTX_free(md);
    fclose(f);
    return rc;
}

int cg_sim_provider_new(const char *state_dir, const char *measured_file, struct cg_provider **out)
{
    struct sim_state s;
    struct sim_provider *sp = calloc(1, sizeof(*sp));
    if (sp == NULL)
        return -ENOMEM;
    sp->base.name = "sim";
    sp->base.get = sim_get;
    sp->base.free = sim_free;
    int rc = hash_file(measured_file, sp->measurement);
    if (rc != 0) {
        sim_free(&sp->base);
        return rc;
    }
    if ((rc = state_load(state_dir, 0, &s)) != 0) {
        sim_free(&sp->base);
        return rc;
    }
    X509 *certs[3] = {s.vcek, s.ask, s.ark};
    for (size_t i = 0; i < 3 && rc == 0; i++) {
        int len = i2d_X509(certs[i], &sp->der[i]);
        if (len <= 0)
            rc = CG_ECRYPTO;
        else
            sp->der_len[i] = (size_t)len;
    }
    memcpy(sp->chip_id, s.chip_id, sizeof(sp->chip_id));
    sp->vcek_key = s.vcek_key;
    s.vcek_key = NULL;
    state_free(&s);
    if (rc != 0) {
        sim_free(&sp->base);
        return rc;
    }
    *out = &sp->base;
    return 0;
}
