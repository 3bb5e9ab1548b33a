/*
 * ccgate-seal-bench: what sealing costs a model load, on the calling thread only (run it
 * under `taskset -c N` for one core). For a plaintext file and its sealed copy (both read
 * from the page cache after a warm-up pass):
 *   plain:  read(2) of the whole file into one buffer (what a loader that reads does)
 *   sealed: cg_unseal_fd() into one buffer (what ccgate-worker --kbs does: read each
 *           chunk into place, AES-256-GCM decrypt in place, SHA-256 of the plaintext)
 * and prints GB/s and the ratio, from this thread's CPU time (so a busy shared machine
 * does not skew the numbers; CG_BENCH_WALL=1 for wall-clock time). Also times AES-256-GCM
 * alone and SHA-256 alone over the same bytes in memory, to show where the time goes.
 * bench/seal-bench.sh drives it.
 *
 *   ccgate-seal-bench PLAIN SEALED KEY.jwk [ROUNDS]
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ccgate/kbc.h"
#include "ccgate/sealed.h"

/* CPU time of this thread (user + system, page faults and read(2) copies included): what
 * one core spends, whatever else the machine runs. With CG_BENCH_WALL=1: wall-clock time. */
static double now_s(void)
{
    static int wall = -1;
    if (wall < 0)
        wall = getenv("CG_BENCH_WALL") != NULL;
    struct timespec ts;
    clock_gettime(wall ? CLOCK_MONOTONIC : CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double read_plain(const char *path, uint8_t *buf, size_t n)
{
    double t0 = now_s();
    int fd = open(path, O_RDONLY);
    size_t off = 0;
    while (fd >= 0 && off < n) {
        ssize_t r = read(fd, buf + off, n - off > (1u << 24) ? 1u << 24 : n - off);
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    if (fd >= 0)
        close(fd);
    if (off != n) {
        fprintf(stderr, "seal-bench: short read of %s\n", path);
        exit(1);
    }
    return now_s() - t0;
}

static double read_sealed(const char *path, const uint8_t *key, uint8_t *buf)
{
    struct cg_seal_header h;
    struct cg_verdict v = {0};
    uint8_t hdr[CG_SEAL_HEADER_MAX + CG_SEAL_TAG_LEN];
    double t0 = now_s();
    int fd = open(path, O_RDONLY);
    if (fd < 0 || cg_seal_read_header(fd, &h, hdr, &v) != 0 ||
        cg_unseal_fd(fd, &h, hdr, key, 0, buf, &v) != 0) {
        fprintf(stderr, "seal-bench: %s: %s %s\n", path, v.check, v.actual);
        exit(1);
    }
    close(fd);
    return now_s() - t0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: ccgate-seal-bench PLAIN SEALED KEY.jwk [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 4 ? atoi(argv[4]) : 3;
    char txt[4096];
    FILE *f = fopen(argv[3], "r");
    size_t tn = f != NULL ? fread(txt, 1, sizeof(txt) - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    uint8_t key[CG_SEAL_KEY_LEN];
    if (cg_kbc_seal_key_parse(txt, tn, key, NULL, 0, NULL) != 0) {
        fprintf(stderr, "seal-bench: %s: not a sealing key\n", argv[3]);
        return 2;
    }
    int fd = open(argv[1], O_RDONLY);
    off_t n = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return 2;
    uint8_t *buf = malloc((size_t)n), *out = malloc((size_t)n);
    if (buf == NULL || out == NULL)
        return 2;
    memset(buf, 1, (size_t)n); /* fault the pages in once, outside the timings */
    memset(out, 1, (size_t)n);
    double best_plain = 1e9, best_sealed = 1e9, best_gcm = 1e9, best_sha = 1e9;
    (void)read_plain(argv[1], buf, (size_t)n); /* warm the page cache */
    (void)read_sealed(argv[2], key, buf);
    for (int i = 0; i < rounds; i++) {
        double p = read_plain(argv[1], buf, (size_t)n), s = read_sealed(argv[2], key, buf);
        best_plain = p < best_plain ? p : best_plain;
        best_sealed = s < best_sealed ? s : best_sealed;
        /* The primitives alone, in memory. */
        uint8_t iv[12] = {0}, tag[16], md[32];
        int l;
        double t0 = now_s();
        EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv);
        for (size_t off = 0; off < (size_t)n; off += 1u << 22) {
            size_t step = (size_t)n - off < (1u << 22) ? (size_t)n - off : 1u << 22;
            EVP_DecryptUpdate(c, out + off, &l, buf + off, (int)step);
        }
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, memset(tag, 0, 16));
        (void)EVP_DecryptFinal_ex(c, out, &l); /* the tag fails: we time the pass only */
        EVP_CIPHER_CTX_free(c);
        double g = now_s() - t0;
        t0 = now_s();
        unsigned int ml;
        EVP_Digest(buf, (size_t)n, md, &ml, EVP_sha256(), NULL);
        double h = now_s() - t0;
        best_gcm = g < best_gcm ? g : best_gcm;
        best_sha = h < best_sha ? h : best_sha;
    }
    double gb = (double)n / 1e9;
    printf("bytes %lld rounds %d (best of) clock %s\n", (long long)n, rounds,
           getenv("CG_BENCH_WALL") != NULL ? "wall" : "thread-cpu");
    printf("plain_read_s %.3f plain_GBps %.2f\n", best_plain, gb / best_plain);
    printf("unseal_s %.3f unseal_GBps %.2f\n", best_sealed, gb / best_sealed);
    printf("aes256gcm_only_GBps %.2f sha256_only_GBps %.2f\n", gb / best_gcm, gb / best_sha);
    printf("RATIO sealed_over_plain_load %.2f\n", best_sealed / best_plain);
    free(buf);
    free(out);
    return 0;
}
