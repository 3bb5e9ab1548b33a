/* Sealed files: chunked AES-256-GCM with the header bound into every chunk (sealed.h). */
#include "ccgate/sealed.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#define HKDF_INFO_CHUNK "ccgate-seal v1 chunk key"
#define HKDF_INFO_CHECK "ccgate-seal v1 key check"
#define SEAL_IO_MAX (1u << 20)   /* largest single read or write */
#define CACHE_PIECE (128u << 10) /* decrypt and hash this much at a time, in L2 */

struct cg_unseal {
    EVP_CIPHER_CTX *ctx;
    EVP_MD_CTX *sha;
    const struct cg_seal_header *h;
    uint8_t digest[32];
    uint64_t next; /* index of the next chunk */
    int failed;    /* a chunk failed: the digest state is spoilt, nothing more is accepted */
};

static void put16(uint8_t *p, uint16_t x)
{
    p[0] = (uint8_t)(x >> 8);
    p[1] = (uint8_t)x;
}

static void put32(uint8_t *p, uint32_t x)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(x >> (24 - 8 * i));
}

static void put64(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(x >> (56 - 8 * i));
}

static uint64_t get(const uint8_t *p, int n)
{
    uint64_t x = 0;
    for (int i = 0; i < n; i++)
        x = x << 8 | p[i];
    return x;
}

static int printable(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return 0;
    return 1;
}

/* HKDF-SHA256(key, salt, info) -> out (32 bytes). */
static int derive(const uint8_t key[CG_SEAL_KEY_LEN], const uint8_t salt[32], const char *info,
                  uint8_t out[32])
{
    int rc = CG_ECRYPTO;
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    EVP_KDF_CTX *kc = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
    if (kc == NULL)
        goto out;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)key, CG_SEAL_KEY_LEN),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, 32),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)info, strlen(info)),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_KDF_derive(kc, out, 32, params) == 1)
        rc = 0;
out:
    EVP_KDF_CTX_free(kc);
    EVP_KDF_free(kdf);
    return rc;
}

size_t cg_seal_chunk_plain_len(const struct cg_seal_header *h, uint64_t i)
{
    if (i >= h->n_chunks)
        return 0;
    if (i + 1 < h->n_chunks)
        return h->chunk_size;
    return (size_t)(h->plain_len - (h->n_chunks - 1) * (uint64_t)h->chunk_size);
}

int cg_seal_header_parse(const uint8_t *buf, size_t len, struct cg_seal_header *h,
                         struct cg_verdict *v)
{
    memset(h, 0, sizeof(*h));
    if (len < 8 || memcmp(buf, CG_SEAL_MAGIC, 8) != 0)
        return cg_reject(v, CG_EEVIDENCE, "sealed.magic", "a sealed file (CCGSEAL)",
                         "other bytes (%zu)", len);
    if (len < CG_SEAL_FIXED_LEN + 2)
        return cg_reject(v, CG_EEVIDENCE, "sealed.header_len", "a complete header", "%zu bytes",
                         len);
    h->format = (uint32_t)get(buf + 8, 2);
    if (h->format != CG_SEAL_FORMAT)
        return cg_reject(v, CG_EEVIDENCE, "sealed.format", "1", "%u", h->format);
    h->header_len = (size_t)get(buf + 10, 2);
    h->chunk_size = (uint32_t)get(buf + 12, 4);
    h->version = get(buf + 16, 8);
    h->plain_len = get(buf + 24, 8);
    memcpy(h->plain_sha256, buf + 32, 32);
    memcpy(h->salt, buf + 64, 32);
    memcpy(h->key_check, buf + 96, 32);
    if (h->chunk_size < CG_SEAL_MIN_CHUNK || h->chunk_size > CG_SEAL_MAX_CHUNK)
        return cg_reject(v, CG_EEVIDENCE, "sealed.chunk_size", "64 B to 64 MiB", "%u",
                         h->chunk_size);
    size_t kid_len = buf[CG_SEAL_FIXED_LEN];
    if (kid_len > CG_SEAL_MAX_KID)
        return cg_reject(v, CG_EEVIDENCE, "sealed.kid", "at most 64 printable ASCII bytes",
                         "%zu bytes", kid_len);
    size_t name_at = CG_SEAL_FIXED_LEN + 1 + kid_len;
    if (len < name_at + 1)
        return cg_reject(v, CG_EEVIDENCE, "sealed.header_len", "a complete header", "%zu bytes",
                         len);
    if (!printable(buf + CG_SEAL_FIXED_LEN + 1, kid_len))
        return cg_reject(v, CG_EEVIDENCE, "sealed.kid", "printable ASCII", "other bytes");
    size_t name_len = buf[name_at];
    if (h->header_len != name_at + 1 + name_len)
        return cg_reject(v, CG_EEVIDENCE, "sealed.header_len", "the fields' total", "%zu",
                         h->header_len);
    if (len < h->header_len)
        return cg_reject(v, CG_EEVIDENCE, "sealed.header_len", "a complete header", "%zu bytes",
                         len);
    if (!printable(buf + name_at + 1, name_len))
        return cg_reject(v, CG_EEVIDENCE, "sealed.name", "printable ASCII", "other bytes");
    memcpy(h->kid, buf + CG_SEAL_FIXED_LEN + 1, kid_len);
    memcpy(h->name, buf + name_at + 1, name_len);

    uint64_t n = h->plain_len / h->chunk_size + (h->plain_len % h->chunk_size != 0);
    h->n_chunks = n == 0 ? 1 : n;
    /* plain_len + tags + header must fit in 63 bits (an off_t). */
    if (h->plain_len > (uint64_t)INT64_MAX / 2)
        return cg_reject(v, CG_EEVIDENCE, "sealed.plain_len", "under 2^62", "%llu",
                         (unsigned long long)h->plain_len);
    h->sealed_len = h->header_len + CG_SEAL_TAG_LEN + h->plain_len + h->n_chunks * CG_SEAL_TAG_LEN;
    unsigned int dl = 0;
    if (EVP_Digest(buf, h->header_len, h->digest, &dl, EVP_sha256(), NULL) != 1)
        return CG_ECRYPTO;
    return 0;
}

/* The header's bytes for h's fields; returns its length. */
static size_t header_write(const struct cg_seal_header *h, uint8_t out[CG_SEAL_HEADER_MAX])
{
    size_t kid_len = strlen(h->kid), name_len = strlen(h->name);
    size_t len = CG_SEAL_FIXED_LEN + 2 + kid_len + name_len;
    memset(out, 0, CG_SEAL_FIXED_LEN);
    memcpy(out, CG_SEAL_MAGIC, 8); /* with its NUL */
    put16(out + 8, CG_SEAL_FORMAT);
    put16(out + 10, (uint16_t)len);
    put32(out + 12, h->chunk_size);
    put64(out + 16, h->version);
    put64(out + 24, h->plain_len);
    memcpy(out + 32, h->plain_sha256, 32);
    memcpy(out + 64, h->salt, 32);
    memcpy(out + 96, h->key_check, 32);
    out[CG_SEAL_FIXED_LEN] = (uint8_t)kid_len;
    memcpy(out + CG_SEAL_FIXED_LEN + 1, h->kid, kid_len);
    out[CG_SEAL_FIXED_LEN + 1 + kid_len] = (uint8_t)name_len;
    memcpy(out + CG_SEAL_FIXED_LEN + 2 + kid_len, h->name, name_len);
    return len;
}

static void chunk_nonce(uint8_t nonce[12], uint32_t domain, uint64_t index)
{
    put32(nonce, domain);
    put64(nonce + 4, index);
}

/* GCM over one piece; enc 1 seals (writes tag), 0 opens (checks tag). With sha, the output
 * is hashed piece by piece while it is still in the cache (opening: before the tag is
 * known, so a failed tag leaves sha unusable). */
static int gcm(EVP_CIPHER_CTX *c, int enc, const uint8_t nonce[12], const uint8_t *aad,
               size_t aad_len, const uint8_t *in, size_t len, uint8_t *out, uint8_t tag[16],
               EVP_MD_CTX *sha)
{
    int n = 0;
    if (EVP_CipherInit_ex(c, NULL, NULL, NULL, nonce, enc) != 1 ||
        EVP_CipherUpdate(c, NULL, &n, aad, (int)aad_len) != 1)
        return CG_ECRYPTO;
    size_t done = 0;
    while (done < len) {
        size_t step = len - done > CACHE_PIECE ? CACHE_PIECE : len - done;
        if (EVP_CipherUpdate(c, out + done, &n, in + done, (int)step) != 1 ||
            (sha != NULL && EVP_DigestUpdate(sha, out + done, step) != 1))
            return CG_ECRYPTO;
        done += step;
    }
    if (!enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1)
        return CG_ECRYPTO;
    if (EVP_CipherFinal_ex(c, out + done, &n) != 1)
        return enc ? CG_ECRYPTO : CG_EEVIDENCE;
    if (enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)
        return CG_ECRYPTO;
    return 0;
}

static void chunk_aad(const struct cg_seal_header *h, uint64_t i, uint8_t aad[41])
{
    memcpy(aad, h->digest, 32);
    put64(aad + 32, i);
    aad[40] = i + 1 == h->n_chunks;
}

/* A GCM context keyed with the file's chunk key; enc as for gcm(). */
static EVP_CIPHER_CTX *chunk_ctx(const uint8_t key[CG_SEAL_KEY_LEN], const uint8_t salt[32],
                                 int enc)
{
    uint8_t ck[32];
    EVP_CIPHER_CTX *c = NULL;
    if (derive(key, salt, HKDF_INFO_CHUNK, ck) != 0)
        goto out;
    c = EVP_CIPHER_CTX_new();
    if (c == NULL || EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, ck, NULL, enc) != 1) {
        EVP_CIPHER_CTX_free(c);
        c = NULL;
    }
out:
    OPENSSL_cleanse(ck, sizeof(ck));
    return c;
}

static int read_full(int fd, uint8_t *p, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t step = n - *got > SEAL_IO_MAX ? SEAL_IO_MAX : n - *got;
        ssize_t r = read(fd, p + *got, step);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

static int write_full(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        size_t step = n > SEAL_IO_MAX ? SEAL_IO_MAX : n;
        ssize_t w = write(fd, p, step);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cg_seal_fd(int in_fd, int out_fd, const uint8_t key[CG_SEAL_KEY_LEN],
               const struct cg_seal_params *p, struct cg_seal_header *hout, char *err,
               size_t errlen)
{
    struct cg_seal_header h = {0};
    uint8_t hdr[CG_SEAL_HEADER_MAX], tag[16], nonce[12], aad[41];
    uint8_t *buf = NULL;
    EVP_CIPHER_CTX *c = NULL;
    EVP_MD_CTX *sha = NULL;
    struct stat st;
    int rc;

    h.chunk_size = p->chunk_size != 0 ? p->chunk_size : CG_SEAL_DEFAULT_CHUNK;
    h.version = p->version;
    const char *name = p->name != NULL ? p->name : "";
    if (h.chunk_size < CG_SEAL_MIN_CHUNK || h.chunk_size > CG_SEAL_MAX_CHUNK) {
        snprintf(err, errlen, "chunk size: expected 64 to %u bytes, got %u", CG_SEAL_MAX_CHUNK,
                 h.chunk_size);
        return CG_ECONFIG;
    }
    if (strlen(name) > CG_SEAL_MAX_NAME || !printable((const uint8_t *)name, strlen(name))) {
        snprintf(err, errlen, "name: expected at most 255 printable ASCII characters");
        return CG_ECONFIG;
    }
    if (p->kid != NULL &&
        (strlen(p->kid) > CG_SEAL_MAX_KID || !printable((const uint8_t *)p->kid, strlen(p->kid)))) {
        snprintf(err, errlen, "key id: expected at most 64 printable ASCII characters");
        return CG_ECONFIG;
    }
    if (fstat(in_fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "input: expected a regular file");
        return CG_ECONFIG;
    }
    snprintf(h.name, sizeof(h.name), "%s", name);
    if (p->kid != NULL) {
        snprintf(h.kid, sizeof(h.kid), "%s", p->kid);
    } else {
        uint8_t kd[32];
        unsigned int dl = 0;
        if (EVP_Digest(key, CG_SEAL_KEY_LEN, kd, &dl, EVP_sha256(), NULL) != 1)
            return CG_ECRYPTO;
        cg_hex(h.kid, sizeof(h.kid), kd, 8);
    }
    h.plain_len = (uint64_t)st.st_size;

    rc = CG_ECRYPTO;
    buf = malloc(h.chunk_size + 16);
    sha = EVP_MD_CTX_new();
    if (buf == NULL || sha == NULL || EVP_DigestInit_ex(sha, EVP_sha256(), NULL) != 1 ||
        RAND_bytes(h.salt, 32) != 1 || derive(key, h.salt, HKDF_INFO_CHECK, h.key_check) != 0)
        goto out;
    /* Pass 1: the plaintext digest, which the header (and so every chunk) carries. */
    if (lseek(in_fd, 0, SEEK_SET) != 0) {
        rc = -errno;
        snprintf(err, errlen, "input: %s", strerror(errno));
        goto out;
    }
    for (uint64_t done = 0; done < h.plain_len;) {
        size_t want = h.plain_len - done > h.chunk_size ? h.chunk_size : h.plain_len - done, got;
        rc = read_full(in_fd, buf, want, &got);
        if (rc == 0 && got != want)
            rc = -EIO; /* the file shrank while we read it */
        if (rc < 0 || EVP_DigestUpdate(sha, buf, got) != 1) {
            snprintf(err, errlen, "input: %s", rc < 0 ? strerror(-rc) : "digest failed");
            rc = rc < 0 ? rc : CG_ECRYPTO;
            goto out;
        }
        done += got;
    }
    unsigned int dl = 0;
    rc = CG_ECRYPTO;
    if (EVP_DigestFinal_ex(sha, h.plain_sha256, &dl) != 1)
        goto out;
    size_t hlen = header_write(&h, hdr);
    struct cg_verdict v;
    if (cg_seal_header_parse(hdr, hlen, &h, &v) != 0) { /* fills the derived fields */
        snprintf(err, errlen, "header: %s: %s", v.check, v.actual);
        goto out;
    }
    c = chunk_ctx(key, h.salt, 1);
    if (c == NULL)
        goto out;
    chunk_nonce(nonce, 1, 0);
    if (gcm(c, 1, nonce, hdr, hlen, NULL, 0, NULL, tag, NULL) != 0)
        goto out;
    if ((rc = write_full(out_fd, hdr, hlen)) < 0 || (rc = write_full(out_fd, tag, 16)) < 0) {
        snprintf(err, errlen, "output: %s", strerror(-rc));
        goto out;
    }
    /* Pass 2: encrypt. */
    if (lseek(in_fd, 0, SEEK_SET) != 0) {
        rc = -errno;
        snprintf(err, errlen, "input: %s", strerror(errno));
        goto out;
    }
    for (uint64_t i = 0; i < h.n_chunks; i++) {
        size_t want = cg_seal_chunk_plain_len(&h, i), got;
        rc = read_full(in_fd, buf, want, &got);
        if (rc == 0 && got != want)
            rc = -EIO;
        if (rc < 0) {
            snprintf(err, errlen, "input: %s", strerror(-rc));
            goto out;
        }
        chunk_nonce(nonce, 0, i);
        chunk_aad(&h, i, aad);
        rc = gcm(c, 1, nonce, aad, sizeof(aad), buf, want, buf, buf + want, NULL);
        if (rc < 0)
            goto out;
        if ((rc = write_full(out_fd, buf, want + 16)) < 0) {
            snprintf(err, errlen, "output: %s", strerror(-rc));
            goto out;
        }
    }
    if (hout != NULL)
        *hout = h;
    rc = 0;
out:
    if (rc == CG_ECRYPTO && err[0] == '\0')
        snprintf(err, errlen, "OpenSSL failed");
    if (buf != NULL)
        OPENSSL_cleanse(buf, h.chunk_size + 16);
    free(buf);
    EVP_CIPHER_CTX_free(c);
    EVP_MD_CTX_free(sha);
    return rc;
}

int cg_unseal_begin(const struct cg_seal_header *h, const uint8_t *hdr,
                    const uint8_t key[CG_SEAL_KEY_LEN], uint64_t min_version,
                    struct cg_unseal **out, struct cg_verdict *v)
{
    uint8_t check[32], nonce[12], tag[16];
    int rc;
    *out = NULL;
    if (derive(key, h->salt, HKDF_INFO_CHECK, check) != 0)
        return CG_ECRYPTO;
    if (CRYPTO_memcmp(check, h->key_check, 32) != 0) {
        return cg_reject(v, CG_EEVIDENCE, "sealed.key", "the key this file was sealed with",
                         "another key (header key id %s)", h->kid);
    }
    struct cg_unseal *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return -ENOMEM;
    u->h = h;
    u->ctx = chunk_ctx(key, h->salt, 0);
    u->sha = EVP_MD_CTX_new();
    rc = CG_ECRYPTO;
    if (u->ctx == NULL || u->sha == NULL || EVP_DigestInit_ex(u->sha, EVP_sha256(), NULL) != 1)
        goto fail;
    memcpy(tag, hdr + h->header_len, 16);
    chunk_nonce(nonce, 1, 0);
    rc = gcm(u->ctx, 0, nonce, hdr, h->header_len, NULL, 0, NULL, tag, NULL);
    if (rc == CG_EEVIDENCE)
        rc = cg_reject(v, CG_EEVIDENCE, "sealed.header", "the header as sealed",
                       "the header tag does not match (edited header)");
    if (rc < 0)
        goto fail;
    if (h->version < min_version) {
        char want[32];
        snprintf(want, sizeof(want), "at least %llu", (unsigned long long)min_version);
        rc = cg_reject(v, CG_EPOLICY, "sealed.version", want, "%llu",
                       (unsigned long long)h->version);
        goto fail;
    }
    *out = u;
    return 0;
fail:
    cg_unseal_free(u);
    return rc;
}

int cg_unseal_chunk(struct cg_unseal *u, const uint8_t *ct, size_t ct_len,
                    const uint8_t tag[CG_SEAL_TAG_LEN], uint8_t *out, struct cg_verdict *v)
{
    const struct cg_seal_header *h = u->h;
    uint8_t nonce[12], aad[41], t[16];
    if (u->next >= h->n_chunks)
        return cg_reject(v, CG_EEVIDENCE, "sealed.chunks", "", "chunk %llu past the last",
                         (unsigned long long)u->next);
    size_t want = cg_seal_chunk_plain_len(h, u->next);
    if (ct_len != want)
        return cg_reject(v, CG_EEVIDENCE, "sealed.length", "", "chunk %llu: %zu bytes, not %zu",
                         (unsigned long long)u->next, ct_len, want);
    if (u->failed)
        return cg_reject(v, CG_EEVIDENCE, "sealed.chunks", "", "after a failed chunk");
    memcpy(t, tag, 16);
    chunk_nonce(nonce, 0, u->next);
    chunk_aad(h, u->next, aad);
    int rc = gcm(u->ctx, 0, nonce, aad, sizeof(aad), ct, ct_len, out, t, u->sha);
    if (rc < 0) {
        u->failed = 1;
        OPENSSL_cleanse(out, ct_len);
        if (rc == CG_EEVIDENCE)
            return cg_reject(v, rc, "sealed.chunk", "an authentic chunk", "chunk %llu",
                             (unsigned long long)u->next);
        return rc;
    }
    u->next++;
    return 0;
}

int cg_unseal_finish(struct cg_unseal *u, struct cg_verdict *v)
{
    char e[65], a[65];
    unsigned int dl = 0;
    if (u->failed || u->next != u->h->n_chunks)
        return cg_reject(v, CG_EEVIDENCE, "sealed.truncated", "", "%llu of %llu chunks",
                         (unsigned long long)u->next, (unsigned long long)u->h->n_chunks);
    if (EVP_DigestFinal_ex(u->sha, u->digest, &dl) != 1)
        return CG_ECRYPTO;
    if (memcmp(u->digest, u->h->plain_sha256, 32) != 0) {
        cg_hex(e, sizeof(e), u->h->plain_sha256, 32);
        cg_hex(a, sizeof(a), u->digest, 32);
        return cg_reject(v, CG_EEVIDENCE, "sealed.digest", e, "%s", a);
    }
    return 0;
}

void cg_unseal_free(struct cg_unseal *u)
{
    if (u == NULL)
        return;
    EVP_CIPHER_CTX_free(u->ctx);
    EVP_MD_CTX_free(u->sha);
    free(u);
}

int cg_seal_read_header(int fd, struct cg_seal_header *h,
                        uint8_t hdr[CG_SEAL_HEADER_MAX + CG_SEAL_TAG_LEN], struct cg_verdict *v)
{
    size_t got;
    /* The fixed part and the key id length, then up to the name length, then the rest. */
    int rc = read_full(fd, hdr, CG_SEAL_FIXED_LEN + 1, &got);
    if (rc < 0)
        return rc;
    if (got < CG_SEAL_FIXED_LEN + 1)
        return cg_seal_header_parse(hdr, got, h, v);
    size_t have = got, need = have + hdr[CG_SEAL_FIXED_LEN] + 1;
    if (need > CG_SEAL_FIXED_LEN + 2 + CG_SEAL_MAX_KID)
        return cg_seal_header_parse(hdr, have, h, v); /* names the key id length */
    rc = read_full(fd, hdr + have, need - have, &got);
    if (rc < 0)
        return rc;
    have += got;
    if (have == need) {
        need += hdr[need - 1] + CG_SEAL_TAG_LEN;
        rc = read_full(fd, hdr + have, need - have, &got);
        if (rc < 0)
            return rc;
        have += got;
    }
    rc = cg_seal_header_parse(hdr, have, h, v);
    if (rc == 0 && have < h->header_len + CG_SEAL_TAG_LEN)
        return cg_reject(v, CG_EEVIDENCE, "sealed.truncated", "", "inside the header");
    return rc;
}

int cg_unseal_fd(int fd, const struct cg_seal_header *h, const uint8_t *hdr,
                 const uint8_t key[CG_SEAL_KEY_LEN], uint64_t min_version, uint8_t *dst,
                 struct cg_verdict *v)
{
    struct cg_unseal *u = NULL;
    struct stat st;
    uint8_t tag[16], extra;
    size_t got;
    uint64_t off = 0;
    int rc;

    /* The header first (key, tag, version), so that an edited length is named as an edit. */
    rc = cg_unseal_begin(h, hdr, key, min_version, &u, v);
    if (rc == 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
        (uint64_t)st.st_size != h->sealed_len)
        rc = cg_reject(v, CG_EEVIDENCE, "sealed.length", "", "%lld bytes, header says %llu",
                       (long long)st.st_size, (unsigned long long)h->sealed_len);
    for (uint64_t i = 0; rc == 0 && i < h->n_chunks; i++) {
        size_t n = cg_seal_chunk_plain_len(h, i);
        rc = read_full(fd, dst + off, n, &got);
        if (rc == 0 && got == n)
            rc = read_full(fd, tag, 16, &got), got += n;
        if (rc == 0 && got != n + 16)
            rc = cg_reject(v, CG_EEVIDENCE, "sealed.truncated", "", "in chunk %llu of %llu",
                           (unsigned long long)i, (unsigned long long)h->n_chunks);
        if (rc == 0)
            rc = cg_unseal_chunk(u, dst + off, n, tag, dst + off, v);
        off += n;
    }
    if (rc == 0)
        rc = cg_unseal_finish(u, v);
    if (rc == 0 && read_full(fd, &extra, 1, &got) == 0 && got != 0)
        rc = cg_reject(v, CG_EEVIDENCE, "sealed.length", "", "bytes after the last chunk");
    if (rc != 0)
        OPENSSL_cleanse(dst, h->plain_len);
    cg_unseal_free(u);
    return rc;
}
