#ifndef CCGATE_SEALED_H
#define CCGATE_SEALED_H

#include <stddef.h>
#include <stdint.h>

#include "ccgate/err.h"

/*
 * Sealed files (docs/model-protection.md): a model encrypted in chunks with AES-256-GCM.
 *
 *   header (big-endian)                       then, at offset header_len:
 *     0  8  magic "CCGSEAL\0"                   16  header tag: GCM tag over an empty
 *     8  2  format (1)                              plaintext, AAD = the header bytes,
 *    10  2  header_len (bytes up to the tag)        nonce 00000001 || 0^8
 *    12  4  chunk_size                          chunks: ciphertext (chunk_size bytes, the
 *    16  8  model version                           last one shorter, 0 for an empty file)
 *    24  8  plaintext length                        || 16-byte tag; nonce 0^4 || index (u64),
 *    32 32  SHA-256 of the plaintext                AAD = SHA-256(header) || index (u64) ||
 *    64 32  salt (random per file)                  last (1 byte)
 *    96 32  key check
 *   128  1  key id length k, then k bytes
 *     .  1  name length n, then n bytes
 *
 * The file key K (32 bytes) never encrypts directly: HKDF-SHA256(K, salt) gives the chunk
 * key and the key check, so nonces never repeat under one key (a fresh salt per file, a
 * unique index per chunk), a chunk from another file under the same K fails, and a wrong K
 * is told apart from an edited header. There is always at least one chunk.
 */
#define CG_SEAL_MAGIC "CCGSEAL"
#define CG_SEAL_FORMAT 1
#define CG_SEAL_KEY_LEN 32
#define CG_SEAL_TAG_LEN 16
#define CG_SEAL_FIXED_LEN 128
#define CG_SEAL_MAX_KID 64
#define CG_SEAL_MAX_NAME 255
#define CG_SEAL_HEADER_MAX (CG_SEAL_FIXED_LEN + 2 + CG_SEAL_MAX_KID + CG_SEAL_MAX_NAME)
#define CG_SEAL_MIN_CHUNK 64
#define CG_SEAL_MAX_CHUNK (64u << 20)
#define CG_SEAL_DEFAULT_CHUNK (4u << 20)

struct cg_seal_header {
    uint32_t format;
    uint32_t chunk_size;
    uint64_t version;
    uint64_t plain_len;
    uint8_t plain_sha256[32];
    uint8_t salt[32];
    uint8_t key_check[32];
    char kid[CG_SEAL_MAX_KID + 1];
    char name[CG_SEAL_MAX_NAME + 1];
    /* Derived by cg_seal_header_parse(): */
    size_t header_len;   /* bytes before the header tag */
    uint8_t digest[32];  /* SHA-256 of those bytes */
    uint64_t n_chunks;   /* at least 1 */
    uint64_t sealed_len; /* the whole file: header, tag, chunks and their tags */
};

/*
 * Parses the header at the start of buf (len bytes available, the tag need not be).
 * Checks magic, format, lengths, chunk size range, text fields (printable ASCII) and that
 * the sizes add up without overflow. Nothing is authenticated here: that needs the key
 * (cg_unseal_begin). Returns 0, or CG_EEVIDENCE with v naming the field ("sealed.magic",
 * "sealed.format", "sealed.header_len", "sealed.chunk_size", "sealed.kid", "sealed.name").
 */
int cg_seal_header_parse(const uint8_t *buf, size_t len, struct cg_seal_header *h,
                         struct cg_verdict *v);

/* What `ccgate seal` is asked for. kid may be NULL (derived from the key). */
struct cg_seal_params {
    const char *name;
    const char *kid;
    uint64_t version;
    uint32_t chunk_size; /* 0: CG_SEAL_DEFAULT_CHUNK */
};

/*
 * Seals the regular file at in_fd (read twice: once for its digest, once to encrypt) into
 * out_fd with key. Fills h (may be NULL). Returns 0, CG_ECONFIG (bad parameter, with err
 * saying which), CG_ECRYPTO, or a negative errno from reading or writing (err says which).
 */
int cg_seal_fd(int in_fd, int out_fd, const uint8_t key[CG_SEAL_KEY_LEN],
               const struct cg_seal_params *p, struct cg_seal_header *h, char *err, size_t errlen);

/* Decryption of one sealed file, chunk by chunk, in order. */
struct cg_unseal;

/*
 * Starts decrypting the file whose header is h (parsed from hdr, which holds at least
 * h->header_len + CG_SEAL_TAG_LEN bytes): checks the key ("sealed.key"), the header tag
 * ("sealed.header") and h->version >= min_version ("sealed.version"), in that order.
 * Returns 0 with *out (free with cg_unseal_free), CG_EEVIDENCE / CG_EPOLICY with v set, or
 * CG_ECRYPTO.
 */
int cg_unseal_begin(const struct cg_seal_header *h, const uint8_t *hdr,
                    const uint8_t key[CG_SEAL_KEY_LEN], uint64_t min_version,
                    struct cg_unseal **out, struct cg_verdict *v);

/* Plaintext bytes of chunk i (0 when i is past the end). */
size_t cg_seal_chunk_plain_len(const struct cg_seal_header *h, uint64_t i);

/*
 * Decrypts the next chunk: ct_len bytes of ciphertext and its tag, into out (room for
 * ct_len bytes; out may equal ct, so a loader reads the ciphertext straight into the
 * memory the plaintext is to occupy). On a failure out is zeroed. Returns 0, or
 * CG_EEVIDENCE with v naming "sealed.chunk" (actual: the index) when authentication fails,
 * "sealed.length" when ct_len is not what the header says for this chunk, or
 * "sealed.chunks" past the last chunk.
 */
int cg_unseal_chunk(struct cg_unseal *u, const uint8_t *ct, size_t ct_len,
                    const uint8_t tag[CG_SEAL_TAG_LEN], uint8_t *out, struct cg_verdict *v);

/*
 * After the last chunk: every chunk was seen ("sealed.truncated") and the plaintext's
 * SHA-256 equals the header's ("sealed.digest"). Returns 0 or CG_EEVIDENCE with v set.
 */
int cg_unseal_finish(struct cg_unseal *u, struct cg_verdict *v);

void cg_unseal_free(struct cg_unseal *u);

/*
 * Reads and parses the header of the file at fd from its current offset; hdr receives
 * the header bytes and tag. Errors of cg_seal_header_parse(), "sealed.truncated" for a
 * short file, or -errno.
 */
int cg_seal_read_header(int fd, struct cg_seal_header *h,
                        uint8_t hdr[CG_SEAL_HEADER_MAX + CG_SEAL_TAG_LEN], struct cg_verdict *v);

/*
 * Decrypts the rest of the file at fd (positioned just after the header tag, as
 * cg_seal_read_header() leaves it) into dst (h->plain_len bytes), reading each chunk's
 * ciphertext straight into its place in dst. A regular file must be exactly
 * h->sealed_len bytes ("sealed.length"); a stream that ends early is "sealed.truncated",
 * one with bytes after the last chunk "sealed.length". On any failure dst is zeroed.
 * Returns 0, CG_EEVIDENCE / CG_EPOLICY with v set, CG_ECRYPTO or -errno.
 */
int cg_unseal_fd(int fd, const struct cg_seal_header *h, const uint8_t *hdr,
                 const uint8_t key[CG_SEAL_KEY_LEN], uint64_t min_version, uint8_t *dst,
                 struct cg_verdict *v);

#endif
