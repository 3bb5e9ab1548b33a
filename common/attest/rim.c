#include "ccgate/rim.h"
#include "ccgate/x509.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/openssl/evp.h>
#include <xmlsec/templates.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/xmltree.h>

#define RIM_ROOT "nvidia/rim_root.pem"
#define SWID_NS "http://standards.iso.org/iso/19770/-2/2015/schema.xsd"
#define SHA384_NS "http://www.w3.org/2001/04/xmlenc#sha384"
#define PARSE_OPTS (XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_rc = -1;

/* xmlsec reports every failure through this: the verdict says what failed instead. */
static void quiet(const char *file, int line, const char *func, const char *object,
                  const char *subject, int reason, const char *msg)
{
    (void)file, (void)line, (void)func, (void)object, (void)subject, (void)reason, (void)msg;
}

static void init(void)
{
    xmlInitParser();
    if (xmlSecInit() < 0 || xmlSecCheckVersion() != 1 || xmlSecCryptoAppInit(NULL) < 0 ||
        xmlSecCryptoInit() < 0)
        return;
    xmlSecErrorsSetCallback(quiet);
    init_rc = 0;
}

static int ready(struct cg_verdict *v)
{
    pthread_once(&init_once, init);
    return init_rc == 0 ? 0 : cg_reject(v, CG_ECRYPTO, "gpu.rim", "xmlsec", "failed to start");
}

void cg_rim_clear(struct cg_rim *r)
{
    for (size_t i = 0; i < r->n_chain; i++)
        free(r->chain[i]);
    memset(r, 0, sizeof(*r));
}

static xmlDocPtr read_doc(const uint8_t *xml, size_t len, struct cg_verdict *v)
{
    if (len > CG_RIM_MAX_BYTES) {
        cg_reject(v, CG_EEVIDENCE, "gpu.rim.size", "at most 262144 bytes", "%zu", len);
        return NULL;
    }
    xmlDocPtr doc = xmlReadMemory((const char *)xml, (int)len, NULL, NULL, PARSE_OPTS);
    if (doc == NULL) {
        cg_reject(v, CG_EEVIDENCE, "gpu.rim.xml", "well-formed XML", "unparsable");
        return NULL;
    }
    if (doc->intSubset != NULL || doc->extSubset != NULL) {
        xmlFreeDoc(doc);
        cg_reject(v, CG_EEVIDENCE, "gpu.rim.xml", "no DOCTYPE", "a DOCTYPE");
        return NULL;
    }
    return doc;
}

static int is_el(const xmlNode *n, const char *name, const char *ns)
{
    return n->type == XML_ELEMENT_NODE && xmlStrEqual(n->name, BAD_CAST name) && n->ns != NULL &&
           xmlStrEqual(n->ns->href, BAD_CAST ns);
}

/* An attribute's value copied into out; 0, or -1 when absent or too long. */
static int attr(xmlNode *n, const char *name, const char *ns, char *out, size_t cap)
{
    xmlChar *s =
        ns != NULL ? xmlGetNsProp(n, BAD_CAST name, BAD_CAST ns) : xmlGetNoNsProp(n, BAD_CAST name);
    int rc = -1;
    if (s != NULL && strlen((const char *)s) < cap) {
        strcpy(out, (const char *)s);
        rc = 0;
    }
    xmlFree(s);
    return rc;
}

static int parse_uint(const char *s, unsigned max, unsigned *out)
{
    if (*s == '\0' || strlen(s) > 5)
        return -1;
    unsigned x = 0;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        x = x * 10 + (unsigned)(*s - '0');
    }
    if (x > max)
        return -1;
    *out = x;
    return 0;
}

static int parse_resource(xmlNode *n, struct cg_rim *r, struct cg_verdict *v)
{
    char buf[2 * CG_RIM_HASH_LEN + 1], name[16];
    unsigned index, alts, size;
    if (attr(n, "index", NULL, buf, sizeof(buf)) != 0 || parse_uint(buf, 255, &index) != 0)
        return cg_reject(v, CG_EEVIDENCE, "gpu.rim.measurement.index", "0 to 255",
                         "absent or malformed");
    for (size_t i = 0; i < r->n; i++)
        if (r->m[i].index == index)
            return cg_reject(v, CG_EEVIDENCE, "gpu.rim.measurement.index", "each index once",
                             "%u twice", index);
    if (r->n == CG_RIM_MAX_MEASUREMENTS)
        return cg_reject(v, CG_EEVIDENCE, "gpu.rim.measurements", "at most 256", "more");
    struct cg_rim_measurement *m = &r->m[r->n];
    memset(m, 0, sizeof(*m));
    m->index = index;
    if (attr(n, "active", NULL, buf, sizeof(buf)) != 0 ||
        (strcmp(buf, "True") != 0 && strcmp(buf, "False") != 0))
        return cg_reject(v, CG_EEVIDENCE, "gpu.rim.measurement.active", "True or False",
                         "index %u: absent or other", index);
    m->active = strcmp(buf, "True") == 0;
    if (attr(n, "size", NULL, buf, sizeof(buf)) != 0 || parse_uint(buf, 1024, &size) != 0 ||
        size != CG_RIM_HASH_LEN)
        return cg_reject(v, CG_EEVIDENCE, "gpu.rim.measurement.size", "48",
                         "index %u: absent or other", index);
    if (attr(n, "alternatives", NULL, buf, sizeof(buf)) != 0 ||
        parse_uint(buf, CG_RIM_MAX_ALTERNATIVES, &alts) != 0 || alts == 0)
        return cg_reject(v, CG_EEVIDENCE, "gpu.rim.measurement.alternatives", "1 to 8",
                         "index %u: absent or other", index);
    for (unsigned k = 0; k < alts; k++) {
        snprintf(name, sizeof(name), "Hash%u", k);
        if (attr(n, name, SHA384_NS, buf, sizeof(buf)) != 0 ||
            cg_unhex(m->alts[k], CG_RIM_HASH_LEN, buf) != 0)
            return cg_reject(v, CG_EEVIDENCE, "gpu.rim.measurement.hash",
                             "96 hex digits per alternative", "index %u: %s absent or malformed",
                             index, name);
    }
    m->n_alts = alts;
    r->n++;
    return 0;
}

static int parse_swid(xmlDocPtr doc, struct cg_rim *r, struct cg_verdict *v)
{
    xmlNode *root = xmlDocGetRootElement(doc);
    if (root == NULL || !is_el(root, "SoftwareIdentity", SWID_NS))
        return cg_reject(v, CG_EEVIDENCE, "gpu.rim.swid", "a SoftwareIdentity root",
                         "another document");
    if (attr(root, "tagId", NULL, r->tag_id, sizeof(r->tag_id)) != 0)
        return cg_reject(v, CG_EEVIDENCE, "gpu.rim.tag_id", "a tagId under 128 characters",
                         "absent or longer");
    int metas = 0, payloads = 0;
    for (xmlNode *n = root->children; n != NULL; n = n->next) {
        if (is_el(n, "Meta", SWID_NS)) {
            if (metas++ > 0 ||
                attr(n, "colloquialVersion", NULL, r->version, sizeof(r->version)) != 0)
                return cg_reject(v, CG_EEVIDENCE, "gpu.rim.version",
                                 "one Meta with a colloquialVersion", "absent, long or repeated");
            if (attr(n, "product", NULL, r->product, sizeof(r->product)) != 0)
                r->product[0] = '\0';
        } else if (is_el(n, "Payload", SWID_NS)) {
            if (payloads++ > 0)
                return cg_reject(v, CG_EEVIDENCE, "gpu.rim.payload", "one Payload", "several");
            for (xmlNode *c = n->children; c != NULL; c = c->next) {
                char type[32];
                if (!is_el(c, "Resource", SWID_NS) ||
                    attr(c, "type", NULL, type, sizeof(type)) != 0 ||
                    strcmp(type, "Measurement") != 0)
                    continue;
                int rc = parse_resource(c, r, v);
                if (rc != 0)
                    return rc;
            }
        }
    }
    if (metas == 0)
        return cg_reject(v, CG_EEVIDENCE, "gpu.rim.version", "one Meta with a colloquialVersion",
                         "no Meta");
    if (r->n == 0)
        return cg_reject(v, CG_EEVIDENCE, "gpu.rim.measurements", "at least one", "none");
    return 0;
}

int cg_rim_parse(const uint8_t *xml, size_t len, struct cg_rim *r, struct cg_verdict *v)
{
    memset(r, 0, sizeof(*r));
    int rc = ready(v);
    if (rc != 0)
        return rc;
    xmlDocPtr doc = read_doc(xml, len, v);
    if (doc == NULL)
        return CG_EEVIDENCE;
    rc = parse_swid(doc, r, v);
    xmlFreeDoc(doc);
    return rc;
}

/* Counts dsig:Signature elements below n (n included). */
static int count_signatures(const xmlNode *n)
{
    int k = 0;
    for (; n != NULL; n = n->next) {
        if (n->type != XML_ELEMENT_NODE)
            continue;
        k += is_el(n, "Signature", (const char *)xmlSecDSigNs);
        k += count_signatures(n->children);
    }
    return k;
}

/* The KeyInfo certificates, in document order, into r->chain (DER). */
static int keyinfo_certs(xmlNode *sig, struct cg_rim *r, struct cg_verdict *v)
{
    const char *ns = (const char *)xmlSecDSigNs;
    for (xmlNode *ki = sig->children; ki != NULL; ki = ki->next) {
        if (!is_el(ki, "KeyInfo", ns))
            continue;
        for (xmlNode *xd = ki->children; xd != NULL; xd = xd->next) {
            if (!is_el(xd, "X509Data", ns))
                continue;
            for (xmlNode *c = xd->children; c != NULL; c = c->next) {
                if (!is_el(c, "X509Certificate", ns))
                    continue;
                if (r->n_chain == CG_RIM_MAX_CHAIN)
                    return cg_reject(v, CG_EEVIDENCE, "gpu.rim.chain", "at most 5 certificates",
                                     "more");
                xmlChar *b64 = xmlNodeGetContent(c);
                size_t n = b64 != NULL ? strlen((const char *)b64) : 0;
                uint8_t *der = malloc(n / 4 * 3 + 3);
                EVP_ENCODE_CTX *e = EVP_ENCODE_CTX_new();
                int out1 = 0, out2 = 0, ok = b64 != NULL && der != NULL && e != NULL && n < 65536;
                if (ok) {
                    EVP_DecodeInit(e);
                    ok = EVP_DecodeUpdate(e, der, &out1, b64, (int)n) >= 0 &&
                         EVP_DecodeFinal(e, der + out1, &out2) == 1 && out1 + out2 > 0;
                }
                EVP_ENCODE_CTX_free(e);
                xmlFree(b64);
                if (!ok) {
                    free(der);
                    return cg_reject(v, CG_EEVIDENCE, "gpu.rim.chain", "base64 certificates",
                                     "certificate %zu malformed", r->n_chain);
                }
                r->chain[r->n_chain] = der;
                r->chain_lens[r->n_chain++] = (size_t)(out1 + out2);
            }
        }
    }
    if (r->n_chain == 0)
        return cg_reject(v, CG_EEVIDENCE, "gpu.rim.chain", "the signing chain in KeyInfo",
                         "no certificate");
    return 0;
}

/* r->chain becomes the verified path (signer first, the root last), for the OCSP checks. */
static int keep_chain(struct cg_rim *r, STACK_OF(X509) * path)
{
    int n = path != NULL ? sk_X509_num(path) : 0;
    if (n < 1 || n > CG_RIM_MAX_CHAIN)
        return -1;
    for (size_t i = 0; i < r->n_chain; i++)
        free(r->chain[i]);
    r->n_chain = 0;
    for (int i = 0; i < n; i++) {
        unsigned char *der = NULL;
        int len = i2d_X509(sk_X509_value(path, i), &der);
        r->chain[i] = len > 0 ? malloc((size_t)len) : NULL;
        if (r->chain[i] == NULL) {
            OPENSSL_free(der);
            return -1;
        }
        memcpy(r->chain[i], der, (size_t)len);
        r->chain_lens[i] = (size_t)len;
        r->n_chain++;
        OPENSSL_free(der);
    }
    return 0;
}

/* The chain leaf -> KeyInfo certificates -> root at `at`; the leaf's key into *key. */
static int check_chain(struct cg_rim *r, const uint8_t *sim_root, time_t at, EVP_PKEY **key,
                       struct cg_verdict *v)
{
    int rc = CG_ECRYPTO;
    X509 *x[CG_RIM_MAX_CHAIN] = {0}, *root = NULL;
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    if (store == NULL || ctx == NULL || untrusted == NULL)
        goto out;
    for (size_t i = 0; i < r->n_chain; i++) {
        if ((x[i] = cg_x509_der(r->chain[i], r->chain_lens[i])) == NULL) {
            rc = cg_reject(v, CG_EEVIDENCE, "gpu.rim.chain", "DER certificates",
                           "certificate %zu unparsable", i);
            goto out;
        }
        if (i > 0 && sk_X509_push(untrusted, x[i]) <= 0)
            goto out;
    }
    if (sim_root != NULL) {
        uint8_t h[32];
        for (size_t i = 0; i < r->n_chain && root == NULL; i++)
            if (EVP_Digest(r->chain[i], r->chain_lens[i], h, NULL, EVP_sha256(), NULL) == 1 &&
                memcmp(h, sim_root, 32) == 0 && X509_up_ref(x[i]))
                root = x[i];
        if (root == NULL) {
            char e[65];
            cg_hex(e, sizeof(e), sim_root, 32);
            rc = cg_reject(v, CG_EEVIDENCE, "gpu.rim.chain.root", e, "not in KeyInfo");
            goto out;
        }
    } else if ((root = cg_x509_pinned(RIM_ROOT)) == NULL) {
        rc = cg_reject(v, CG_ECRYPTO, "gpu.rim.chain.root", RIM_ROOT, "not embedded");
        goto out;
    }
    if (X509_STORE_add_cert(store, root) != 1 ||
        X509_STORE_CTX_init(ctx, store, x[0], untrusted) != 1)
        goto out;
    X509_VERIFY_PARAM *pm = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_time(pm, at);
    X509_VERIFY_PARAM_set_flags(pm, X509_V_FLAG_CHECK_SS_SIGNATURE);
    X509_VERIFY_PARAM_set_depth(pm, CG_RIM_MAX_CHAIN - 2);
    if (X509_verify_cert(ctx) != 1) {
        int err = X509_STORE_CTX_get_error(ctx);
        int time_err = err == X509_V_ERR_CERT_HAS_EXPIRED || err == X509_V_ERR_CERT_NOT_YET_VALID;
        rc = cg_reject(v, CG_EEVIDENCE, time_err ? "gpu.rim.chain.validity" : "gpu.rim.chain",
                       "signer -> ... -> the RIM root, valid", "%s (depth %d)",
                       X509_verify_cert_error_string(err), X509_STORE_CTX_get_error_depth(ctx));
        goto out;
    }
    if ((*key = X509_get_pubkey(x[0])) == NULL ||
        keep_chain(r, X509_STORE_CTX_get0_chain(ctx)) != 0)
        goto out;
    rc = 0;
out:
    sk_X509_free(untrusted);
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    X509_free(root);
    for (size_t i = 0; i < CG_RIM_MAX_CHAIN; i++)
        X509_free(x[i]);
    ERR_clear_error();
    return rc;
}

/* Only the algorithms NVIDIA's RIMs use, and only a same-document reference. */
static int restrict_ctx(xmlSecDSigCtxPtr ctx)
{
    ctx->enabledReferenceUris = xmlSecTransformUriTypeEmpty;
    return xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformInclC14N11Id) < 0 ||
                   xmlSecDSigCtxEnableSignatureTransform(ctx, xmlSecTransformEcdsaSha384Id) < 0 ||
                   xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformEnvelopedId) < 0 ||
                   xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformInclC14N11Id) < 0 ||
                   xmlSecDSigCtxEnableReferenceTransform(ctx, xmlSecTransformSha384Id) < 0
               ? -1
               : 0;
}

static xmlSecKeyPtr key_from(EVP_PKEY *pk)
{
    xmlSecKeyPtr key = xmlSecKeyCreate();
    xmlSecKeyDataPtr data = key != NULL ? xmlSecOpenSSLEvpKeyAdopt(pk) : NULL;
    if (data == NULL || xmlSecKeySetValue(key, data) < 0) {
        if (data != NULL)
            xmlSecKeyDataDestroy(data);
        else
            EVP_PKEY_free(pk);
        if (key != NULL)
            xmlSecKeyDestroy(key);
        return NULL;
    }
    return key;
}

int cg_rim_verify(const uint8_t *xml, size_t len, const uint8_t *sim_root_sha256, time_t at,
                  struct cg_rim *r, struct cg_verdict *v)
{
    memset(r, 0, sizeof(*r));
    int rc = ready(v);
    if (rc != 0)
        return rc;
    xmlSecDSigCtxPtr ctx = NULL;
    EVP_PKEY *pk = NULL;
    xmlDocPtr doc = read_doc(xml, len, v);
    if (doc == NULL)
        return CG_EEVIDENCE;
    xmlNode *root = xmlDocGetRootElement(doc);
    xmlNode *sig = root != NULL ? xmlSecFindChild(root, xmlSecNodeSignature, xmlSecDSigNs) : NULL;
    int n_sig = root != NULL ? count_signatures(root) : 0;
    if (sig == NULL || n_sig != 1) {
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.rim.signature",
                       "one enveloped Signature, a child of the root", "%d signatures%s", n_sig,
                       sig == NULL && n_sig > 0 ? " elsewhere" : "");
        goto out;
    }
    if ((rc = keyinfo_certs(sig, r, v)) != 0 ||
        (rc = check_chain(r, sim_root_sha256, at, &pk, v)) != 0)
        goto out;
    rc = CG_ECRYPTO;
    ctx = xmlSecDSigCtxCreate(NULL);
    if (ctx == NULL || restrict_ctx(ctx) != 0 || (ctx->signKey = key_from(pk)) == NULL) {
        cg_reject(v, rc, "gpu.rim.signature", "verifiable", "xmlsec setup failed");
        goto out;
    }
    pk = NULL; /* owned by the key now */
    if (xmlSecDSigCtxVerify(ctx, sig) < 0 || ctx->status != xmlSecDSigStatusSucceeded) {
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.rim.signature",
                       "valid ecdsa-sha384 XML signature by the RIM signer", "%s",
                       ctx->status == xmlSecDSigStatusInvalid ? "invalid"
                                                              : "unsupported or malformed");
        goto out;
    }
    xmlSecDSigReferenceCtxPtr ref = xmlSecPtrListGetSize(&ctx->signedInfoReferences) == 1
                                        ? xmlSecPtrListGetItem(&ctx->signedInfoReferences, 0)
                                        : NULL;
    if (ref == NULL || (ref->uri != NULL && ref->uri[0] != '\0') ||
        ref->status != xmlSecDSigStatusSucceeded) {
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.rim.signature", "one Reference URI=\"\"",
                       "another reference set");
        goto out;
    }
    rc = parse_swid(doc, r, v);
out:
    EVP_PKEY_free(pk);
    if (ctx != NULL)
        xmlSecDSigCtxDestroy(ctx);
    xmlFreeDoc(doc);
    ERR_clear_error();
    if (rc != 0)
        cg_rim_clear(r);
    return rc;
}

/* Appends the chain's certificates as base64 X509Certificate children of x509data. */
static int add_certs(xmlNodePtr x509data, const char *chain_pem)
{
    BIO *b = BIO_new_mem_buf(chain_pem, -1);
    X509 *x;
    int n = 0, rc = 0;
    while (rc == 0 && b != NULL && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
        unsigned char *der = NULL;
        int len = i2d_X509(x, &der);
        X509_free(x);
        char *b64 = len > 0 ? malloc((size_t)len / 3 * 4 + 5) : NULL;
        xmlNodePtr node = NULL;
        if (b64 == NULL || EVP_EncodeBlock((unsigned char *)b64, der, len) <= 0 ||
            (node = xmlSecAddChild(x509data, xmlSecNodeX509Certificate, xmlSecDSigNs)) == NULL)
            rc = -1;
        else
            xmlNodeSetContent(node, BAD_CAST b64);
        free(b64);
        OPENSSL_free(der);
        n++;
    }
    BIO_free(b);
    ERR_clear_error();
    return rc == 0 && n > 0 ? 0 : -1;
}

int cg_rim_sign(const char *xml, const char *key_pem, const char *chain_pem, uint8_t **out,
                size_t *out_len)
{
    int rc = CG_ECRYPTO;
    xmlSecDSigCtxPtr ctx = NULL;
    xmlChar *buf = NULL;
    int size = 0;
    if (ready(NULL) != 0)
        return rc;
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), NULL, NULL, PARSE_OPTS);
    xmlNodePtr root = doc != NULL ? xmlDocGetRootElement(doc) : NULL;
    if (root == NULL)
        goto out;
    xmlNodePtr sig = xmlSecTmplSignatureCreate(doc, xmlSecTransformInclC14N11Id,
                                               xmlSecTransformEcdsaSha384Id, NULL);
    if (sig == NULL || xmlAddChild(root, sig) == NULL)
        goto out;
    xmlNodePtr ref =
        xmlSecTmplSignatureAddReference(sig, xmlSecTransformSha384Id, NULL, BAD_CAST "", NULL);
    if (ref == NULL || xmlSecTmplReferenceAddTransform(ref, xmlSecTransformEnvelopedId) == NULL ||
        xmlSecTmplReferenceAddTransform(ref, xmlSecTransformInclC14N11Id) == NULL)
        goto out;
    ctx = xmlSecDSigCtxCreate(NULL);
    if (ctx == NULL ||
        (ctx->signKey =
             xmlSecCryptoAppKeyLoadMemory((const xmlSecByte *)key_pem, (xmlSecSize)strlen(key_pem),
                                          xmlSecKeyDataFormatPem, NULL, NULL, NULL)) == NULL ||
        xmlSecDSigCtxSign(ctx, sig) < 0)
        goto out;
    /* KeyInfo lies inside the Signature, which the enveloped transform leaves out. */
    xmlNodePtr ki = xmlSecTmplSignatureEnsureKeyInfo(sig, NULL);
    xmlNodePtr x509 = ki != NULL ? xmlSecTmplKeyInfoAddX509Data(ki) : NULL;
    if (x509 == NULL || add_certs(x509, chain_pem) != 0)
        goto out;
    xmlDocDumpMemory(doc, &buf, &size);
    if (buf == NULL || size <= 0 || (*out = malloc((size_t)size)) == NULL)
        goto out;
    memcpy(*out, buf, (size_t)size);
    *out_len = (size_t)size;
    rc = 0;
out:
    xmlFree(buf);
    if (ctx != NULL)
        xmlSecDSigCtxDestroy(ctx);
    xmlFreeDoc(doc);
    ERR_clear_error();
    return rc;
}
