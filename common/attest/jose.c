/* JWK, flattened JWE, ES256 JWT and JCS for the KBS protocol (jose.h). */
#include "ccgate/jose.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#define ALG_ECDH "ECDH-ES+A256KW"
#define ALG_RSA "RSA-OAEP-256"
#define ENC_GCM "A256GCM"
#define P256_LEN 32

struct cg_jose_key {
    enum cg_jose_kty kty;
    EVP_PKEY *pkey; /* EC or RSA */
    int has_private;
    uint8_t *oct;
    size_t oct_len;
};

/* ---- base64 ---- */

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64_encode(const uint8_t *p, size_t n, const char *alpha, int pad)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1);
    if (out == NULL)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = alpha[x >> 18];
        out[o++] = alpha[(x >> 12) & 63];
        out[o++] = alpha[(x >> 6) & 63];
        out[o++] = alpha[x & 63];
    }
    if (n - i == 1) {
        uint32_t x = (uint32_t)p[i] << 16;
        out[o++] = alpha[x >> 18];
        out[o++] = alpha[(x >> 12) & 63];
        if (pad) {
            out[o++] = '=';
            out[o++] = '=';
        }
    } else if (n - i == 2) {
        uint32_t x = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        out[o++] = alpha[x >> 18];
        out[o++] = alpha[(x >> 12) & 63];
        out[o++] = alpha[(x >> 6) & 63];
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return out;
}

char *cg_b64url_encode(const uint8_t *p, size_t n)
{
    return b64_encode(p, n, B64URL, 0);
}

char *cg_b64_encode(const uint8_t *p, size_t n)
{
    return b64_encode(p, n, B64, 1);
}

static int b64_decode(const char *s, size_t max, const char *alpha, int pad, uint8_t **out,
                      size_t *out_len)
{
    size_t len = strlen(s);
    *out = NULL;
    *out_len = 0;
    if (pad) {
        if (len % 4 != 0)
            return CG_EEVIDENCE;
        if (len > 0 && s[len - 1] == '=')
            len--;
        if (len > 0 && s[len - 1] == '=')
            len--;
    }
    if (len % 4 == 1)
        return CG_EEVIDENCE;
    size_t n = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    if (n > max)
        return CG_ELIMIT;
    uint8_t *p = malloc(n + 1);
    if (p == NULL)
        return -ENOMEM;
    uint32_t acc = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        const char *c = s[i] != '\0' ? strchr(alpha, s[i]) : NULL;
        if (c == NULL) {
            free(p);
            return CG_EEVIDENCE;
        }
        acc = acc << 6 | (uint32_t)(c - alpha);
        if (i % 4 == 3) {
            p[o++] = (uint8_t)(acc >> 16);
            p[o++] = (uint8_t)(acc >> 8);
            p[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    /* The tail, whose unused low bits must be zero (one encoding per byte string). */
    if (len % 4 == 2) {
        if (acc & 0xf)
            goto bad;
        p[o++] = (uint8_t)(acc >> 4);
    } else if (len % 4 == 3) {
        if (acc & 0x3)
            goto bad;
        p[o++] = (uint8_t)(acc >> 10);
        p[o++] = (uint8_t)(acc >> 2);
    }
    p[o] = 0;
    *out = p;
    *out_len = o;
    return 0;
bad:
    free(p);
    return CG_EEVIDENCE;
}

int cg_b64url_decode(const char *s, size_t max, uint8_t **out, size_t *out_len)
{
    return b64_decode(s, max, B64URL, 0, out, out_len);
}

int cg_b64_decode(const char *s, size_t max, uint8_t **out, size_t *out_len)
{
    return b64_decode(s, max, B64, 1, out, out_len);
}

/* ---- keys ---- */

enum cg_jose_kty cg_jose_key_type(const struct cg_jose_key *k)
{
    return k->kty;
}

const uint8_t *cg_jose_key_oct(const struct cg_jose_key *k, size_t *len)
{
    *len = k->oct_len;
    return k->kty == CG_JOSE_OCT ? k->oct : NULL;
}

void cg_jose_key_free(struct cg_jose_key *k)
{
    if (k == NULL)
        return;
    EVP_PKEY_free(k->pkey);
    if (k->oct != NULL)
        OPENSSL_clear_free(k->oct, k->oct_len);
    free(k);
}

int cg_jose_key_from_oct(const uint8_t *p, size_t n, struct cg_jose_key **out)
{
    struct cg_jose_key *k = calloc(1, sizeof(*k));
    if (k == NULL || (k->oct = malloc(n ? n : 1)) == NULL) {
        free(k);
        return -ENOMEM;
    }
    memcpy(k->oct, p, n);
    k->oct_len = n;
    k->kty = CG_JOSE_OCT;
    k->has_private = 1;
    *out = k;
    return 0;
}

int cg_jose_key_generate(enum cg_jose_kty kty, struct cg_jose_key **out)
{
    struct cg_jose_key *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return -ENOMEM;
    k->kty = kty;
    k->has_private = 1;
    if (kty == CG_JOSE_EC)
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    else if (kty == CG_JOSE_RSA)
        k->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
    if (k->pkey == NULL) {
        free(k);
        return kty == CG_JOSE_OCT ? CG_ECONFIG : CG_ECRYPTO;
    }
    *out = k;
    return 0;
}

/* A base64url member of a JWK decoded; NULL-safe for optional members (rc 1 = absent). */
static int member_bytes(const json_t *o, const char *name, size_t max, uint8_t **p, size_t *n)
{
    const json_t *m = json_object_get(o, name);
    *p = NULL;
    if (m == NULL)
        return 1;
    if (!json_is_string(m))
        return CG_ECONFIG;
    return cg_b64url_decode(json_string_value(m), max, p, n) == 0 ? 0 : CG_ECONFIG;
}

static int ec_from_jwk(const json_t *jwk, struct cg_jose_key *k, char *err, size_t errlen)
{
    uint8_t *x = NULL, *y = NULL, *d = NULL, pub[1 + 2 * P256_LEN];
    size_t xn, yn, dn = 0;
    int rc = CG_ECONFIG;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL, *chk = NULL;
    BIGNUM *dbn = NULL;
    const char *crv = json_string_value(json_object_get(jwk, "crv"));
    if (crv == NULL || strcmp(crv, "P-256") != 0) {
        cg_errf(err, errlen, rc, "jwk.crv: expected P-256");
        goto out;
    }
    if (member_bytes(jwk, "x", 64, &x, &xn) != 0 || xn != P256_LEN ||
        member_bytes(jwk, "y", 64, &y, &yn) != 0 || yn != P256_LEN) {
        cg_errf(err, errlen, rc, "jwk.x/y: expected 32 bytes each, base64url");
        goto out;
    }
    int drc = member_bytes(jwk, "d", 64, &d, &dn);
    if (drc < 0 || (drc == 0 && dn != P256_LEN)) {
        cg_errf(err, errlen, rc, "jwk.d: expected 32 bytes, base64url");
        goto out;
    }
    pub[0] = 4;
    memcpy(pub + 1, x, P256_LEN);
    memcpy(pub + 1 + P256_LEN, y, P256_LEN);
    bld = OSSL_PARAM_BLD_new();
    if (bld == NULL ||
        !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)))
        goto crypto;
    if (d != NULL) {
        dbn = BN_bin2bn(d, (int)dn, NULL);
        if (dbn == NULL || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, dbn))
            goto crypto;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &k->pkey, d != NULL ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                          params) != 1) {
        cg_errf(err, errlen, rc, "jwk: not a P-256 key");
        goto out;
    }
    /* Off-curve points would leak the private key through ECDH: refuse them. */
    chk = EVP_PKEY_CTX_new_from_pkey(NULL, k->pkey, NULL);
    if (chk == NULL || EVP_PKEY_public_check(chk) != 1 ||
        (d != NULL && EVP_PKEY_pairwise_check(chk) != 1)) {
        cg_errf(err, errlen, rc, "jwk: point not on P-256 or private key not matching");
        goto out;
    }
    k->has_private = d != NULL;
    rc = 0;
    goto out;
crypto:
    rc = cg_errf(err, errlen, CG_ECRYPTO, "jwk: OpenSSL failed");
out:
    if (d != NULL)
        OPENSSL_clear_free(d, dn);
    BN_clear_free(dbn);
    free(x);
    free(y);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_CTX_free(chk);
    return rc;
}

static int rsa_from_jwk(const json_t *jwk, struct cg_jose_key *k, char *err, size_t errlen)
{
    static const char *names[] = {"n", "e", "d", "p", "q", "dp", "dq", "qi"};
    static const char *params_names[] = {
        OSSL_PKEY_PARAM_RSA_N,         OSSL_PKEY_PARAM_RSA_E,
        OSSL_PKEY_PARAM_RSA_D,         OSSL_PKEY_PARAM_RSA_FACTOR1,
        OSSL_PKEY_PARAM_RSA_FACTOR2,   OSSL_PKEY_PARAM_RSA_EXPONENT1,
        OSSL_PKEY_PARAM_RSA_EXPONENT2, OSSL_PKEY_PARAM_RSA_COEFFICIENT1};
    BIGNUM *bn[8] = {0};
    int rc = CG_ECONFIG, n_present = 0;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    if (bld == NULL)
        return CG_ECRYPTO;
    for (int i = 0; i < 8; i++) {
        uint8_t *p;
        size_t n;
        int r = member_bytes(jwk, names[i], 1024, &p, &n);
        if (r < 0 || (r == 1 && i < 2)) {
            cg_errf(err, errlen, rc, "jwk.%s: expected base64url", names[i]);
            goto out;
        }
        if (r == 1)
            continue;
        bn[i] = BN_bin2bn(p, (int)n, NULL);
        OPENSSL_clear_free(p, n);
        if (bn[i] == NULL || !OSSL_PARAM_BLD_push_BN(bld, params_names[i], bn[i])) {
            rc = cg_errf(err, errlen, CG_ECRYPTO, "jwk: OpenSSL failed");
            goto out;
        }
        n_present += i >= 2;
    }
    if (n_present != 0 && n_present != 6) {
        cg_errf(err, errlen, rc, "jwk: a private RSA key needs d, p, q, dp, dq and qi");
        goto out;
    }
    if (BN_num_bits(bn[0]) < CG_JOSE_RSA_MIN_BITS) {
        cg_errf(err, errlen, rc, "jwk.n: expected at least %d bits, got %d", CG_JOSE_RSA_MIN_BITS,
                BN_num_bits(bn[0]));
        goto out;
    }
    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &k->pkey, n_present ? EVP_PKEY_KEYPAIR : EVP_PKEY_PUBLIC_KEY,
                          params) != 1) {
        cg_errf(err, errlen, rc, "jwk: not an RSA key");
        goto out;
    }
    k->has_private = n_present != 0;
    rc = 0;
out:
    for (int i = 0; i < 8; i++)
        BN_clear_free(bn[i]);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    return rc;
}

int cg_jose_key_from_jwk(const json_t *jwk, struct cg_jose_key **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!json_is_object(jwk))
        return cg_errf(err, errlen, CG_ECONFIG, "jwk: expected a JSON object");
    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    if (kty == NULL)
        return cg_errf(err, errlen, CG_ECONFIG, "jwk.kty: expected EC, RSA or oct");
    if (strcmp(kty, "oct") == 0) {
        uint8_t *p;
        size_t n;
        if (member_bytes(jwk, "k", 4096, &p, &n) != 0 || n == 0)
            return cg_errf(err, errlen, CG_ECONFIG, "jwk.k: expected base64url bytes");
        int rc = cg_jose_key_from_oct(p, n, out);
        OPENSSL_clear_free(p, n);
        return rc;
    }
    struct cg_jose_key *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return -ENOMEM;
    int rc;
    if (strcmp(kty, "EC") == 0) {
        k->kty = CG_JOSE_EC;
        rc = ec_from_jwk(jwk, k, err, errlen);
    } else if (strcmp(kty, "RSA") == 0) {
        k->kty = CG_JOSE_RSA;
        rc = rsa_from_jwk(jwk, k, err, errlen);
    } else {
        rc = cg_errf(err, errlen, CG_ECONFIG, "jwk.kty: expected EC, RSA or oct, got %.16s", kty);
    }
    if (rc != 0) {
        cg_jose_key_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

/* Sets name to base64url of bn, left-padded to width bytes (0: minimal). */
static int set_bn(json_t *o, const char *name, const EVP_PKEY *pk, const char *param, int width)
{
    BIGNUM *bn = NULL;
    if (EVP_PKEY_get_bn_param(pk, param, &bn) != 1)
        return -1;
    int n = width > 0 ? width : BN_num_bytes(bn);
    uint8_t *buf = malloc((size_t)(n > 0 ? n : 1));
    int rc = -1;
    if (buf != NULL && BN_bn2binpad(bn, buf, n) == n) {
        char *s = cg_b64url_encode(buf, (size_t)n);
        rc = s != NULL && json_object_set_new(o, name, json_string(s)) == 0 ? 0 : -1;
        free(s);
    }
    if (buf != NULL)
        OPENSSL_clear_free(buf, (size_t)(n > 0 ? n : 1));
    BN_clear_free(bn);
    return rc;
}

json_t *cg_jose_key_to_jwk(const struct cg_jose_key *k, int with_private)
{
    json_t *o = json_object();
    int rc = o == NULL ? -1 : 0;
    with_private = with_private && k->has_private;
    if (rc == 0 && k->kty == CG_JOSE_OCT) {
        char *s = cg_b64url_encode(k->oct, k->oct_len);
        rc = s == NULL || json_object_set_new(o, "kty", json_string("oct")) != 0 ||
                     json_object_set_new(o, "k", json_string(s)) != 0
                 ? -1
                 : 0;
        if (s != NULL)
            OPENSSL_clear_free(s, strlen(s));
    } else if (rc == 0 && k->kty == CG_JOSE_EC) {
        rc = json_object_set_new(o, "kty", json_string("EC")) |
             json_object_set_new(o, "crv", json_string("P-256")) |
             set_bn(o, "x", k->pkey, OSSL_PKEY_PARAM_EC_PUB_X, P256_LEN) |
             set_bn(o, "y", k->pkey, OSSL_PKEY_PARAM_EC_PUB_Y, P256_LEN);
        if (rc == 0 && with_private)
            rc = set_bn(o, "d", k->pkey, OSSL_PKEY_PARAM_PRIV_KEY, P256_LEN);
    } else if (rc == 0) {
        rc = json_object_set_new(o, "kty", json_string("RSA")) |
             set_bn(o, "n", k->pkey, OSSL_PKEY_PARAM_RSA_N, 0) |
             set_bn(o, "e", k->pkey, OSSL_PKEY_PARAM_RSA_E, 0);
        if (rc == 0 && with_private)
            rc = set_bn(o, "d", k->pkey, OSSL_PKEY_PARAM_RSA_D, 0) |
                 set_bn(o, "p", k->pkey, OSSL_PKEY_PARAM_RSA_FACTOR1, 0) |
                 set_bn(o, "q", k->pkey, OSSL_PKEY_PARAM_RSA_FACTOR2, 0) |
                 set_bn(o, "dp", k->pkey, OSSL_PKEY_PARAM_RSA_EXPONENT1, 0) |
                 set_bn(o, "dq", k->pkey, OSSL_PKEY_PARAM_RSA_EXPONENT2, 0) |
                 set_bn(o, "qi", k->pkey, OSSL_PKEY_PARAM_RSA_COEFFICIENT1, 0);
    }
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- JWE ---- */

/* Concat KDF (NIST SP 800-56A, RFC 7518 4.6.2) with SHA-256 for a 256-bit KEK. */
static int concat_kdf(const uint8_t *z, size_t zn, const uint8_t *apu, size_t apun,
                      const uint8_t *apv, size_t apvn, uint8_t kek[32])
{
    size_t alg_len = strlen(ALG_ECDH);
    size_t n = 4 + alg_len + 4 + apun + 4 + apvn + 4;
    uint8_t *info = malloc(n), *p = info;
    int rc = CG_ECRYPTO;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SSKDF", NULL);
    EVP_KDF_CTX *kc = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (info == NULL || kc == NULL)
        goto out;
#define PUT32(x)                                                                                   \
    do {                                                                                           \
        uint32_t v_ = (uint32_t)(x);                                                               \
        *p++ = (uint8_t)(v_ >> 24);                                                                \
        *p++ = (uint8_t)(v_ >> 16);                                                                \
        *p++ = (uint8_t)(v_ >> 8);                                                                 \
        *p++ = (uint8_t)v_;                                                                        \
    } while (0)
    PUT32(alg_len);
    memcpy(p, ALG_ECDH, alg_len);
    p += alg_len;
    PUT32(apun);
    if (apun)
        memcpy(p, apu, apun);
    p += apun;
    PUT32(apvn);
    if (apvn)
        memcpy(p, apv, apvn);
    p += apvn;
    PUT32(256);
#undef PUT32
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)z, zn),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, n),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_derive(kc, kek, 32, params) == 1)
        rc = 0;
out:
    free(info);
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    return rc;
}

static int ecdh(EVP_PKEY *priv, EVP_PKEY *peer, uint8_t z[P256_LEN])
{
    size_t zn = P256_LEN;
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
    int ok = c != NULL && EVP_PKEY_derive_init(c) == 1 && EVP_PKEY_derive_set_peer(c, peer) == 1 &&
             EVP_PKEY_derive(c, z, &zn) == 1 && zn == P256_LEN;
    EVP_PKEY_CTX_free(c);
    return ok ? 0 : CG_ECRYPTO;
}

/* AES-256 key wrap (RFC 3394) of a 32-byte key: wrap 1 -> 40 bytes, 0 -> unwrap. */
static int aes_kw(int wrap, const uint8_t kek[32], const uint8_t *in, size_t in_len, uint8_t *out,
                  size_t *out_len)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n1 = 0, n2 = 0, ok = 0;
    if (c != NULL) {
        EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
        ok = EVP_CipherInit_ex(c, EVP_aes_256_wrap(), NULL, kek, NULL, wrap) == 1 &&
             EVP_CipherUpdate(c, out, &n1, in, (int)in_len) == 1 &&
             EVP_CipherFinal_ex(c, out + n1, &n2) == 1;
    }
    EVP_CIPHER_CTX_free(c);
    *out_len = (size_t)(n1 + n2);
    return ok ? 0 : CG_EEVIDENCE;
}

static int rsa_oaep(int enc, EVP_PKEY *pk, const uint8_t *in, size_t in_len, uint8_t *out,
                    size_t *out_len)
{
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, pk, NULL);
    int ok = c != NULL && (enc ? EVP_PKEY_encrypt_init(c) : EVP_PKEY_decrypt_init(c)) == 1 &&
             EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
             EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) == 1 &&
             EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) == 1 &&
             (enc ? EVP_PKEY_encrypt(c, out, out_len, in, in_len)
                  : EVP_PKEY_decrypt(c, out, out_len, in, in_len)) == 1;
    EVP_PKEY_CTX_free(c);
    return ok ? 0 : CG_EEVIDENCE;
}

static int gcm(int enc, const uint8_t key[32], const uint8_t iv[12], const uint8_t *aad,
               size_t aad_len, const uint8_t *in, size_t n, uint8_t *out, uint8_t tag[16])
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int l = 0, ok = c != NULL && EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv, enc) == 1 &&
                    EVP_CipherUpdate(c, NULL, &l, aad, (int)aad_len) == 1 &&
                    (n == 0 || EVP_CipherUpdate(c, out, &l, in, (int)n) == 1);
    if (ok && !enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1;
    if (ok)
        ok = EVP_CipherFinal_ex(c, out + (n ? l : 0), &l) == 1;
    if (ok && enc)
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) == 1;
    EVP_CIPHER_CTX_free(c);
    return ok ? 0 : (enc ? CG_ECRYPTO : CG_EEVIDENCE);
}

static int set_b64(json_t *o, const char *name, const uint8_t *p, size_t n)
{
    char *s = cg_b64url_encode(p, n);
    int rc = s != NULL && json_object_set_new(o, name, json_string(s)) == 0 ? 0 : -1;
    free(s);
    return rc;
}

int cg_jwe_encrypt(const struct cg_jose_key *k, const uint8_t *pt, size_t n, json_t **out)
{
    uint8_t cek[32], iv[12], tag[16], ek[1024], z[P256_LEN], kek[32];
    size_t ek_len = sizeof(ek);
    struct cg_jose_key *epk = NULL;
    json_t *hdr = NULL, *jwe = NULL;
    char *hdr_txt = NULL, *prot = NULL;
    uint8_t *ct = NULL;
    int rc = CG_ECRYPTO;
    *out = NULL;
    if (k->kty == CG_JOSE_OCT)
        return CG_ECONFIG;
    if (n > CG_JOSE_MAX_INPUT)
        return CG_ELIMIT;
    if (RAND_bytes(cek, 32) != 1 || RAND_bytes(iv, 12) != 1)
        goto out;
    hdr = json_object();
    if (hdr == NULL)
        goto out;
    if (k->kty == CG_JOSE_EC) {
        if (cg_jose_key_generate(CG_JOSE_EC, &epk) != 0 || ecdh(epk->pkey, k->pkey, z) != 0 ||
            concat_kdf(z, sizeof(z), NULL, 0, NULL, 0, kek) != 0 ||
            aes_kw(1, kek, cek, 32, ek, &ek_len) != 0)
            goto out;
        json_t *e = cg_jose_key_to_jwk(epk, 0);
        if (e == NULL || json_object_set_new(hdr, "alg", json_string(ALG_ECDH)) != 0 ||
            json_object_set_new(hdr, "epk", e) != 0)
            goto out;
    } else {
        if (rsa_oaep(1, k->pkey, cek, 32, ek, &ek_len) != 0 ||
            json_object_set_new(hdr, "alg", json_string(ALG_RSA)) != 0)
            goto out;
    }
    if (json_object_set_new(hdr, "enc", json_string(ENC_GCM)) != 0)
        goto out;
    hdr_txt = json_dumps(hdr, JSON_COMPACT | JSON_SORT_KEYS);
    prot = hdr_txt != NULL ? cg_b64url_encode((const uint8_t *)hdr_txt, strlen(hdr_txt)) : NULL;
    ct = malloc(n + 1);
    if (prot == NULL || ct == NULL ||
        gcm(1, cek, iv, (const uint8_t *)prot, strlen(prot), pt, n, ct, tag) != 0)
        goto out;
    jwe = json_object();
    if (jwe == NULL || json_object_set_new(jwe, "protected", json_string(prot)) != 0 ||
        set_b64(jwe, "encrypted_key", ek, ek_len) != 0 || set_b64(jwe, "iv", iv, 12) != 0 ||
        set_b64(jwe, "ciphertext", ct, n) != 0 || set_b64(jwe, "tag", tag, 16) != 0)
        goto out;
    *out = jwe;
    jwe = NULL;
    rc = 0;
out:
    OPENSSL_cleanse(cek, sizeof(cek));
    OPENSSL_cleanse(z, sizeof(z));
    OPENSSL_cleanse(kek, sizeof(kek));
    cg_jose_key_free(epk);
    json_decref(hdr);
    json_decref(jwe);
    free(hdr_txt);
    free(prot);
    free(ct);
    return rc;
}

/* A required base64url string member of the JWE. */
static int jwe_member(const json_t *jwe, const char *name, size_t max, uint8_t **p, size_t *n,
                      char *err, size_t errlen)
{
    const char *s = json_string_value(json_object_get(jwe, name));
    if (s == NULL)
        return cg_errf(err, errlen, CG_EEVIDENCE, "jwe.%s: expected a base64url string", name);
    int rc = cg_b64url_decode(s, max, p, n);
    if (rc != 0)
        return cg_errf(err, errlen, CG_EEVIDENCE, "jwe.%s: expected base64url of at most %zu bytes",
                       name, max);
    return 0;
}

int cg_jwe_decrypt(const struct cg_jose_key *k, const json_t *jwe, uint8_t **pt, size_t *n,
                   char *err, size_t errlen)
{
    uint8_t *hdr_raw = NULL, *ek = NULL, *iv = NULL, *ct = NULL, *tag = NULL, *out = NULL;
    uint8_t *apu = NULL, *apv = NULL, cek[512], z[P256_LEN], kek[32];
    size_t hdr_n, ek_n, iv_n, ct_n, tag_n, cek_n = sizeof(cek), apu_n = 0, apv_n = 0;
    struct cg_jose_key *epk = NULL;
    json_t *hdr = NULL;
    int rc = CG_EEVIDENCE;
    *pt = NULL;
    *n = 0;
    if (!json_is_object(jwe))
        return cg_errf(err, errlen, rc, "jwe: expected a JSON object");
    if (k->kty == CG_JOSE_OCT || !k->has_private)
        return cg_errf(err, errlen, CG_ECONFIG, "jwe: a private EC or RSA key is needed");
    if (json_object_get(jwe, "aad") != NULL || json_object_get(jwe, "recipients") != NULL)
        return cg_errf(err, errlen, rc, "jwe: expected the flattened form without aad");
    if ((rc = jwe_member(jwe, "protected", 8192, &hdr_raw, &hdr_n, err, errlen)) != 0 ||
        (rc = jwe_member(jwe, "encrypted_key", 1024, &ek, &ek_n, err, errlen)) != 0 ||
        (rc = jwe_member(jwe, "iv", 64, &iv, &iv_n, err, errlen)) != 0 ||
        (rc = jwe_member(jwe, "ciphertext", CG_JOSE_MAX_INPUT, &ct, &ct_n, err, errlen)) != 0 ||
        (rc = jwe_member(jwe, "tag", 64, &tag, &tag_n, err, errlen)) != 0)
        goto out;
    rc = CG_EEVIDENCE;
    hdr = json_loadb((const char *)hdr_raw, hdr_n, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(hdr)) {
        cg_errf(err, errlen, rc, "jwe.protected: expected a JSON object");
        goto out;
    }
    /* The JOSE header is the union of the protected and unprotected ones (RFC 7516 7.2.1):
     * jwcrypto, for one, puts the recipient's epk in "header". Names must not repeat. */
    static const char *const unprot[] = {"header", "unprotected"};
    for (size_t i = 0; i < 2; i++) {
        const json_t *u = json_object_get(jwe, unprot[i]);
        const char *name;
        json_t *val;
        if (u == NULL)
            continue;
        if (!json_is_object(u)) {
            cg_errf(err, errlen, rc, "jwe.%s: expected a JSON object", unprot[i]);
            goto out;
        }
        json_object_foreach((json_t *)u, name, val)
        {
            if (json_object_get(hdr, name) != NULL) {
                cg_errf(err, errlen, rc, "jwe.%s.%.32s: also in another header", unprot[i], name);
                goto out;
            }
            json_object_set(hdr, name, val);
        }
    }
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    const char *enc = json_string_value(json_object_get(hdr, "enc"));
    const char *want = k->kty == CG_JOSE_EC ? ALG_ECDH : ALG_RSA;
    if (alg == NULL || strcmp(alg, want) != 0) {
        cg_errf(err, errlen, rc, "jwe.protected.alg: expected %s for this key, got %.32s", want,
                alg != NULL ? alg : "none");
        goto out;
    }
    if (enc == NULL || strcmp(enc, ENC_GCM) != 0) {
        cg_errf(err, errlen, rc, "jwe.protected.enc: expected A256GCM, got %.32s",
                enc != NULL ? enc : "none");
        goto out;
    }
    if (json_object_get(hdr, "zip") != NULL || json_object_get(hdr, "crit") != NULL) {
        cg_errf(err, errlen, rc, "jwe.protected: zip and crit are not supported");
        goto out;
    }
    if (iv_n != 12 || tag_n != 16) {
        cg_errf(err, errlen, rc, "jwe.iv/tag: expected 12 and 16 bytes, got %zu and %zu", iv_n,
                tag_n);
        goto out;
    }
    if (k->kty == CG_JOSE_EC) {
        char kerr[128];
        if (cg_jose_key_from_jwk(json_object_get(hdr, "epk"), &epk, kerr, sizeof(kerr)) != 0 ||
            epk->kty != CG_JOSE_EC) {
            cg_errf(err, errlen, rc, "jwe.protected.epk: expected a P-256 public key");
            goto out;
        }
        if (member_bytes(hdr, "apu", 1024, &apu, &apu_n) < 0 ||
            member_bytes(hdr, "apv", 1024, &apv, &apv_n) < 0) {
            cg_errf(err, errlen, rc, "jwe.protected.apu/apv: expected base64url");
            goto out;
        }
        if (ecdh(k->pkey, epk->pkey, z) != 0 ||
            concat_kdf(z, sizeof(z), apu, apu_n, apv, apv_n, kek) != 0) {
            rc = cg_errf(err, errlen, CG_ECRYPTO, "jwe: key agreement failed");
            goto out;
        }
        if (ek_n != 40 || aes_kw(0, kek, ek, ek_n, cek, &cek_n) != 0) {
            cg_errf(err, errlen, rc, "jwe.encrypted_key: does not unwrap with this key");
            goto out;
        }
    } else if (rsa_oaep(0, k->pkey, ek, ek_n, cek, &cek_n) != 0) {
        cg_errf(err, errlen, rc, "jwe.encrypted_key: does not decrypt with this key");
        goto out;
    }
    if (cek_n != 32) {
        cg_errf(err, errlen, rc, "jwe.encrypted_key: expected a 32-byte key, got %zu", cek_n);
        goto out;
    }
    const char *prot = json_string_value(json_object_get(jwe, "protected"));
    out = malloc(ct_n + 1);
    if (out == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (gcm(0, cek, iv, (const uint8_t *)prot, strlen(prot), ct, ct_n, out, tag) != 0) {
        cg_errf(err, errlen, rc, "jwe.tag: authentication failed");
        goto out;
    }
    out[ct_n] = 0;
    *pt = out;
    *n = ct_n;
    out = NULL;
    rc = 0;
out:
    OPENSSL_cleanse(cek, sizeof(cek));
    OPENSSL_cleanse(z, sizeof(z));
    OPENSSL_cleanse(kek, sizeof(kek));
    if (out != NULL)
        OPENSSL_clear_free(out, ct_n + 1);
    free(hdr_raw);
    free(ek);
    free(iv);
    free(ct);
    free(tag);
    free(apu);
    free(apv);
    json_decref(hdr);
    cg_jose_key_free(epk);
    return rc;
}

/* ---- JWT ---- */

static char *b64url_json(const json_t *v)
{
    char *txt = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    char *s = txt != NULL ? cg_b64url_encode((const uint8_t *)txt, strlen(txt)) : NULL;
    free(txt);
    return s;
}

int cg_jwt_sign(const struct cg_jose_key *k, const json_t *claims, char **token)
{
    int rc = CG_ECRYPTO;
    json_t *hdr = json_pack("{s:s, s:s}", "alg", "ES256", "typ", "JWT");
    char *h = hdr != NULL ? b64url_json(hdr) : NULL, *c = b64url_json(claims), *sig = NULL;
    uint8_t der[80], raw[64];
    size_t der_len = sizeof(der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    ECDSA_SIG *es = NULL;
    char *input = NULL;
    *token = NULL;
    if (k->kty != CG_JOSE_EC || !k->has_private) {
        rc = CG_ECONFIG;
        goto out;
    }
    if (h == NULL || c == NULL || md == NULL)
        goto out;
    size_t in_len = strlen(h) + 1 + strlen(c);
    input = malloc(in_len + 1);
    if (input == NULL)
        goto out;
    snprintf(input, in_len + 1, "%s.%s", h, c);
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
        EVP_DigestSign(md, der, &der_len, (const uint8_t *)input, in_len) != 1)
        goto out;
    const uint8_t *dp = der;
    es = d2i_ECDSA_SIG(NULL, &dp, (long)der_len);
    if (es == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) != 32 ||
        BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) != 32)
        goto out;
    sig = cg_b64url_encode(raw, 64);
    if (sig == NULL)
        goto out;
    *token = malloc(in_len + 1 + strlen(sig) + 1);
    if (*token == NULL)
        goto out;
    sprintf(*token, "%s.%s", input, sig);
    rc = 0;
out:
    json_decref(hdr);
    free(h);
    free(c);
    free(sig);
    free(input);
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    return rc;
}

int cg_jwt_verify(const struct cg_jose_key *k, const char *token, time_t now, json_t **claims,
                  char *err, size_t errlen)
{
    int rc = CG_EEVIDENCE;
    char *copy = NULL;
    uint8_t *hraw = NULL, *craw = NULL, *sraw = NULL, *der = NULL;
    size_t hn, cn, sn;
    json_t *hdr = NULL, *c = NULL;
    ECDSA_SIG *es = NULL;
    EVP_MD_CTX *md = NULL;
    *claims = NULL;
    if (k->kty != CG_JOSE_EC)
        return cg_errf(err, errlen, CG_ECONFIG, "jwt: an EC key is needed");
    if (strlen(token) > CG_JOSE_MAX_INPUT)
        return cg_errf(err, errlen, CG_ELIMIT, "jwt: longer than %u bytes", CG_JOSE_MAX_INPUT);
    copy = strdup(token);
    if (copy == NULL)
        return -ENOMEM;
    char *dot1 = strchr(copy, '.'), *dot2 = dot1 != NULL ? strchr(dot1 + 1, '.') : NULL;
    if (dot2 == NULL || strchr(dot2 + 1, '.') != NULL) {
        cg_errf(err, errlen, rc, "jwt: expected three dot-separated parts");
        goto out;
    }
    *dot1 = *dot2 = '\0';
    if (cg_b64url_decode(copy, 4096, &hraw, &hn) != 0 ||
        cg_b64url_decode(dot1 + 1, CG_JOSE_MAX_INPUT, &craw, &cn) != 0 ||
        cg_b64url_decode(dot2 + 1, 64, &sraw, &sn) != 0 || sn != 64) {
        cg_errf(err, errlen, rc, "jwt: expected base64url parts and a 64-byte signature");
        goto out;
    }
    hdr = json_loadb((const char *)hraw, hn, JSON_REJECT_DUPLICATES, NULL);
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    if (alg == NULL || strcmp(alg, "ES256") != 0) {
        cg_errf(err, errlen, rc, "jwt.header.alg: expected ES256");
        goto out;
    }
    es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sraw, 32, NULL), *s = BN_bin2bn(sraw + 32, 32, NULL);
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        rc = CG_ECRYPTO;
        goto out;
    }
    int der_len = i2d_ECDSA_SIG(es, &der);
    md = EVP_MD_CTX_new();
    *dot1 = '.';
    if (der_len <= 0 || md == NULL ||
        EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k->pkey) != 1 ||
        EVP_DigestVerify(md, der, (size_t)der_len, (const uint8_t *)copy, strlen(copy)) != 1) {
        cg_errf(err, errlen, rc, "jwt.signature: not made by this broker's key");
        goto out;
    }
    c = json_loadb((const char *)craw, cn, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(c)) {
        cg_errf(err, errlen, rc, "jwt.claims: expected a JSON object");
        goto out;
    }
    json_t *exp = json_object_get(c, "exp"), *nbf = json_object_get(c, "nbf");
    if (!json_is_integer(exp) || json_integer_value(exp) <= (json_int_t)now) {
        cg_errf(err, errlen, rc, "jwt.exp: expired or missing");
        goto out;
    }
    if (nbf != NULL && (!json_is_integer(nbf) || json_integer_value(nbf) > (json_int_t)now)) {
        cg_errf(err, errlen, rc, "jwt.nbf: not yet valid");
        goto out;
    }
    *claims = c;
    c = NULL;
    rc = 0;
out:
    free(copy);
    free(hraw);
    free(craw);
    free(sraw);
    OPENSSL_free(der);
    json_decref(hdr);
    json_decref(c);
    ECDSA_SIG_free(es);
    EVP_MD_CTX_free(md);
    return rc;
}

/* ---- JCS ---- */

static int jcs_ok(const json_t *v, int depth)
{
    if (depth > 32)
        return 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20)
                return 0;
        return 1;
    }
    if (json_is_real(v))
        return 0;
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach((json_t *)v, i, e)
        {
            if (!jcs_ok(e, depth + 1))
                return 0;
        }
        return 1;
    }
    if (json_is_object(v)) {
        const char *key;
        json_t *e;
        json_object_foreach((json_t *)v, key, e)
        {
            for (const char *p = key; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                    return 0;
            if (!jcs_ok(e, depth + 1))
                return 0;
        }
    }
    return 1;
}

int cg_jcs(const json_t *v, char **out)
{
    *out = NULL;
    if (!jcs_ok(v, 0))
        return CG_EEVIDENCE;
    /* With only ASCII member names, integers and strings free of control characters,
     * jansson's sorted compact form is RFC 8785's: byte order equals UTF-16 order, and
     * its escapes (\" and \\ only) are the canonical ones. */
    *out = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    return *out != NULL ? 0 : -ENOMEM;
}
