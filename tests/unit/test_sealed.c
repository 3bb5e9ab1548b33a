/* Sealed files: round trips and every tampering, each with its own check name. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccgate/sealed.h"

#define CHUNK 4096u

static const uint8_t key1[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
static const uint8_t key2[32] = {2, 2, 3, 4, 5, 6, 7, 8, 9, 10};

static int memfd_with(const uint8_t *p, size_t n)
{
    int fd = memfd_create("sealed-test", 0);
    assert_true(fd >= 0);
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, p + off, n - off);
        assert_true(w > 0);
        off += (size_t)w;
    }
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static uint8_t *slurp(int fd, size_t *n)
{
    off_t end = lseek(fd, 0, SEEK_END);
    assert_true(end >= 0);
    uint8_t *p = malloc((size_t)end + 1);
    assert_non_null(p);
    assert_int_equal(pread(fd, p, (size_t)end, 0), end);
    *n = (size_t)end;
    return p;
}

static uint8_t *plain_bytes(size_t n, uint8_t seed)
{
    uint8_t *p = malloc(n + 1);
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(i * 31 + seed);
    return p;
}

/* Seals plain[0..n) with key and version; returns the sealed bytes. */
static uint8_t *seal(const uint8_t *plain, size_t n, const uint8_t *key, uint64_t version,
                     size_t *out_len)
{
    int in = memfd_with(plain, n);
    int out = memfd_create("sealed-out", 0);
    assert_true(out >= 0);
    struct cg_seal_params p = {.name = "tiny", .version = version, .chunk_size = CHUNK};
    char err[256] = "";
    struct cg_seal_header h;
    int rc = cg_seal_fd(in, out, key, &p, &h, err, sizeof(err));
    if (rc != 0)
        fail_msg("seal: %d %s", rc, err);
    uint8_t *s = slurp(out, out_len);
    assert_int_equal(*out_len, h.sealed_len);
    close(in);
    close(out);
    return s;
}

/* Unseals sealed[0..n); returns the rc, v filled, plaintext in *plain (caller frees). */
static int unseal(const uint8_t *sealed, size_t n, const uint8_t *key, uint64_t min_version,
                  int as_pipe, uint8_t **plain, struct cg_verdict *v)
{
    int fd;
    if (as_pipe) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        assert_true(n < 60000); /* fits the pipe buffer */
        assert_int_equal(write(pfd[1], sealed, n), (ssize_t)n);
        close(pfd[1]);
        fd = pfd[0];
    } else {
        fd = memfd_with(sealed, n);
    }
    struct cg_seal_header h;
    uint8_t hdr[CG_SEAL_HEADER_MAX + CG_SEAL_TAG_LEN];
    memset(v, 0, sizeof(*v));
    *plain = NULL;
    int rc = cg_seal_read_header(fd, &h, hdr, v);
    if (rc == 0) {
        *plain = malloc(h.plain_len + 1);
        assert_non_null(*plain);
        rc = cg_unseal_fd(fd, &h, hdr, key, min_version, *plain, v);
    }
    close(fd);
    return rc;
}

static void expect(const uint8_t *sealed, size_t n, const uint8_t *key, uint64_t min_version,
                   int as_pipe, int want_rc, const char *check)
{
    struct cg_verdict v;
    uint8_t *plain;
    int rc = unseal(sealed, n, key, min_version, as_pipe, &plain, &v);
    free(plain);
    if (rc != want_rc || strcmp(v.check, check) != 0)
        fail_msg("want %d %s, got %d %s (%s)", want_rc, check, rc, v.check, v.actual);
}

static void test_round_trip(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17};
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        size_t n = sizes[k], sn;
        uint8_t *plain = plain_bytes(n, (uint8_t)k);
        uint8_t *sealed = seal(plain, n, key1, 7, &sn);
        for (int as_pipe = 0; as_pipe < 2; as_pipe++) {
            struct cg_verdict v;
            uint8_t *back;
            int rc = unseal(sealed, sn, key1, 7, as_pipe, &back, &v);
            if (rc != 0)
                fail_msg("size %zu: %s %s", n, v.check, v.actual);
            assert_memory_equal(back, plain, n);
            free(back);
        }
        /* The ciphertext does not show the plaintext. */
        if (n >= 64)
            assert_null(memmem(sealed, sn, plain, 64));
        free(plain);
        free(sealed);
    }
}

static void test_header_fields(void **state)
{
    (void)state;
    size_t sn;
    uint8_t *plain = plain_bytes(CHUNK + 1, 3);
    uint8_t *sealed = seal(plain, CHUNK + 1, key1, 9, &sn);
    struct cg_seal_header h;
    struct cg_verdict v;
    assert_int_equal(cg_seal_header_parse(sealed, sn, &h, &v), 0);
    assert_int_equal(h.version, 9);
    assert_int_equal(h.plain_len, CHUNK + 1);
    assert_int_equal(h.n_chunks, 2);
    assert_int_equal(h.chunk_size, CHUNK);
    assert_string_equal(h.name, "tiny");
    assert_int_equal(strlen(h.kid), 16);
    /* Two seals of the same file under the same key differ (fresh salt). */
    size_t sn2;
    uint8_t *again = seal(plain, CHUNK + 1, key1, 9, &sn2);
    assert_int_equal(sn, sn2);
    assert_memory_not_equal(sealed + h.header_len, again + h.header_len, sn - h.header_len);
    free(again);
    free(plain);
    free(sealed);
}

static void test_flip_each_region(void **state)
{
    (void)state;
    size_t sn;
    uint8_t *plain = plain_bytes(2 * CHUNK + 5, 1);
    uint8_t *sealed = seal(plain, 2 * CHUNK + 5, key1, 3, &sn);
    struct cg_seal_header h;
    struct cg_verdict v;
    assert_int_equal(cg_seal_header_parse(sealed, sn, &h, &v), 0);
    size_t hl = h.header_len, c0 = hl + 16;
    struct {
        size_t off;
        uint8_t bit;
        int rc;
        const char *check;
    } cases[] = {
        {0, 1, CG_EEVIDENCE, "sealed.magic"},
        {9, 1, CG_EEVIDENCE, "sealed.format"},
        {11, 1, CG_EEVIDENCE, "sealed.header_len"},
        {13, 0x80, CG_EEVIDENCE, "sealed.header"},         /* chunk size, still in range */
        {12, 0x80, CG_EEVIDENCE, "sealed.chunk_size"},     /* out of range */
        {23, 1, CG_EEVIDENCE, "sealed.header"},            /* version */
        {31, 1, CG_EEVIDENCE, "sealed.header"},            /* plaintext length */
        {40, 1, CG_EEVIDENCE, "sealed.header"},            /* plaintext digest */
        {70, 1, CG_EEVIDENCE, "sealed.key"},               /* salt: the key no longer matches */
        {100, 1, CG_EEVIDENCE, "sealed.key"},              /* key check */
        {129, 1, CG_EEVIDENCE, "sealed.header"},           /* key id */
        {hl - 1, 1, CG_EEVIDENCE, "sealed.header"},        /* name */
        {hl + 3, 1, CG_EEVIDENCE, "sealed.header"},        /* header tag */
        {c0 + 5, 1, CG_EEVIDENCE, "sealed.chunk"},         /* chunk 0 ciphertext */
        {c0 + CHUNK + 2, 1, CG_EEVIDENCE, "sealed.chunk"}, /* chunk 0 tag */
        {c0 + CHUNK + 16 + 4, 1, CG_EEVIDENCE, "sealed.chunk"}, /* chunk 1 */
        {sn - 1, 1, CG_EEVIDENCE, "sealed.chunk"},              /* last chunk's tag */
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        uint8_t *t = malloc(sn);
        memcpy(t, sealed, sn);
        t[cases[k].off] ^= cases[k].bit;
        struct cg_verdict vv;
        uint8_t *back;
        int rc = unseal(t, sn, key1, 0, 0, &back, &vv);
        if (rc != cases[k].rc || strcmp(vv.check, cases[k].check) != 0)
            fail_msg("offset %zu: want %s, got %d %s (%s)", cases[k].off, cases[k].check, rc,
                     vv.check, vv.actual);
        if (back != NULL) /* nothing usable is left in the destination */
            for (size_t i = 0; i < 2 * CHUNK + 5; i++)
                assert_int_equal(back[i], 0);
        free(back);
        free(t);
    }
    free(plain);
    free(sealed);
}

static void test_truncation_and_extension(void **state)
{
    (void)state;
    size_t sn;
    uint8_t *plain = plain_bytes(3 * CHUNK, 2);
    uint8_t *sealed = seal(plain, 3 * CHUNK, key1, 1, &sn);
    struct cg_seal_header h;
    struct cg_verdict v;
    assert_int_equal(cg_seal_header_parse(sealed, sn, &h, &v), 0);
    for (uint64_t i = 0; i <= h.n_chunks; i++) {
        size_t cut = h.header_len + 16 + i * (CHUNK + 16);
        if (cut >= sn)
            cut = sn - 1;
        expect(sealed, cut, key1, 0, 0, CG_EEVIDENCE, "sealed.length");
        expect(sealed, cut, key1, 0, 1, CG_EEVIDENCE, "sealed.truncated");
    }
    expect(sealed, 100, key1, 0, 0, CG_EEVIDENCE, "sealed.header_len");
    uint8_t *longer = malloc(sn + 1);
    memcpy(longer, sealed, sn);
    longer[sn] = 0;
    expect(longer, sn + 1, key1, 0, 0, CG_EEVIDENCE, "sealed.length");
    expect(longer, sn + 1, key1, 0, 1, CG_EEVIDENCE, "sealed.length");
    free(longer);
    free(plain);
    free(sealed);
}

static void test_reorder_splice_key_version(void **state)
{
    (void)state;
    size_t sn, sn2;
    uint8_t *plain = plain_bytes(3 * CHUNK, 4);
    uint8_t *sealed = seal(plain, 3 * CHUNK, key1, 5, &sn);
    uint8_t *other = seal(plain, 3 * CHUNK, key1, 5, &sn2); /* same key, same content */
    struct cg_seal_header h;
    struct cg_verdict v;
    assert_int_equal(cg_seal_header_parse(sealed, sn, &h, &v), 0);
    size_t c0 = h.header_len + 16, cl = CHUNK + 16;
    uint8_t *t = malloc(sn);
    /* Reordered chunks 0 and 1. */
    memcpy(t, sealed, sn);
    memcpy(t + c0, sealed + c0 + cl, cl);
    memcpy(t + c0 + cl, sealed + c0, cl);
    expect(t, sn, key1, 0, 0, CG_EEVIDENCE, "sealed.chunk");
    /* Chunk 1 from another file sealed under the same key. */
    memcpy(t, sealed, sn);
    memcpy(t + c0 + cl, other + c0 + cl, cl);
    expect(t, sn, key1, 0, 0, CG_EEVIDENCE, "sealed.chunk");
    /* The other file's header on this file's chunks. */
    memcpy(t, sealed, sn);
    memcpy(t, other, c0);
    expect(t, sn, key1, 0, 0, CG_EEVIDENCE, "sealed.chunk");
    /* A wrong key, an older version than the minimum, the minimum itself. */
    expect(sealed, sn, key2, 0, 0, CG_EEVIDENCE, "sealed.key");
    expect(sealed, sn, key1, 6, 0, CG_EPOLICY, "sealed.version");
    expect(sealed, sn, key1, 5, 0, 0, "");
    free(t);
    free(other);
    free(plain);
    free(sealed);
}

static void test_chunk_api_limits(void **state)
{
    (void)state;
    size_t sn;
    uint8_t *plain = plain_bytes(CHUNK + 3, 5);
    uint8_t *sealed = seal(plain, CHUNK + 3, key1, 1, &sn);
    struct cg_seal_header h;
    struct cg_verdict v;
    assert_int_equal(cg_seal_header_parse(sealed, sn, &h, &v), 0);
    struct cg_unseal *u;
    assert_int_equal(cg_unseal_begin(&h, sealed, key1, 0, &u, &v), 0);
    uint8_t out[CHUNK];
    const uint8_t *c0 = sealed + h.header_len + 16;
    /* A wrong length is refused before any decryption. */
    assert_int_equal(cg_unseal_chunk(u, c0, CHUNK - 1, c0 + CHUNK, out, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "sealed.length");
    assert_int_equal(cg_unseal_chunk(u, c0, CHUNK, c0 + CHUNK, out, &v), 0);
    assert_memory_equal(out, plain, CHUNK);
    /* Finishing early is truncation. */
    assert_int_equal(cg_unseal_finish(u, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "sealed.truncated");
    const uint8_t *c1 = c0 + CHUNK + 16;
    assert_int_equal(cg_unseal_chunk(u, c1, 3, c1 + 3, out, &v), 0);
    assert_int_equal(cg_unseal_chunk(u, c1, 3, c1 + 3, out, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "sealed.chunks");
    assert_int_equal(cg_unseal_finish(u, &v), 0);
    cg_unseal_free(u);

    /* A header cut inside the key id: refused without reading past the bytes given. */
    uint8_t *cut = malloc(CG_SEAL_FIXED_LEN + 3);
    memcpy(cut, sealed, CG_SEAL_FIXED_LEN + 3);
    struct cg_seal_header h2;
    assert_int_equal(cg_seal_header_parse(cut, CG_SEAL_FIXED_LEN + 3, &h2, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "sealed.header_len");
    free(cut);

    /* Bad parameters when sealing. */
    int in = memfd_with(plain, 10), out_fd = memfd_create("x", 0);
    char err[128] = "";
    struct cg_seal_params p = {.name = "a\nb", .chunk_size = CHUNK};
    assert_int_equal(cg_seal_fd(in, out_fd, key1, &p, NULL, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "name"));
    p.name = "ok";
    p.chunk_size = 10;
    assert_int_equal(cg_seal_fd(in, out_fd, key1, &p, NULL, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "chunk size"));
    close(in);
    close(out_fd);
    free(plain);
    free(sealed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_flip_each_region),
        cmocka_unit_test(test_truncation_and_extension),
        cmocka_unit_test(test_reorder_splice_key_version),
        cmocka_unit_test(test_chunk_api_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
