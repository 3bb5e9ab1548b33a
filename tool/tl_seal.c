/* `ccgate seal`, `ccgate seal --inspect`, `ccgate unseal`: sealed model files. */
#include "tl_seal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ccgate/jose.h"
#include "ccgate/kbc.h"
#include "ccgate/log.h"
#include "ccgate/opts.h"
#include "ccgate/sealed.h"
#include "tl_cli.h"

#define KEY_FILE_MAX (64 * 1024)

static int parse_or_usage(const char *prog, int argc, char **argv, struct cg_opt *o, size_t n,
                          const char *usage, const char *summary)
{
    char err[256];
    if (cg_opts_parse(argc, argv, 2, o, n, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 2;
    }
    for (size_t i = 0; i < n; i++) /* defaults only: no environment or config here */
        if (o[i].value == NULL)
            o[i].value = o[i].def;
    if (cg_opts_get(o, n, "help")->value != NULL) {
        cg_opts_usage(stdout, usage, summary, o, n);
        return 0;
    }
    return -1;
}

/* Reads a 32-byte oct JWK (a sealing key) into key. 0, or -1 after a message. */
static int read_key(const char *prog, const char *path, uint8_t key[CG_SEAL_KEY_LEN], char *kid,
                    size_t kidlen)
{
    struct tl_file f;
    if (tl_cli_read_file(prog, path, KEY_FILE_MAX, &f) != 0)
        return -1;
    int rc = cg_kbc_seal_key_parse(f.p, f.n, key, kid, kidlen, NULL);
    OPENSSL_cleanse(f.p, f.n);
    free(f.p);
    if (rc != 0)
        fprintf(stderr, "%s: %s: expected a JWK {\"kty\":\"oct\",\"k\":<32 bytes>}\n", prog, path);
    return rc != 0 ? -1 : 0;
}

/* Writes the new key as a JWK to path (0600, never over an existing file). */
static int write_key(const char *path, const uint8_t key[CG_SEAL_KEY_LEN], const char *kid)
{
    struct cg_jose_key *k = NULL;
    json_t *j = NULL;
    char *txt = NULL;
    int rc = -1, fd = -1;
    if (cg_jose_key_from_oct(key, CG_SEAL_KEY_LEN, &k) != 0 ||
        (j = cg_jose_key_to_jwk(k, 1)) == NULL ||
        json_object_set_new(j, "kid", json_string(kid)) != 0 ||
        json_object_set_new(j, "use", json_string("enc")) != 0 ||
        (txt = json_dumps(j, JSON_COMPACT)) == NULL)
        goto out;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "ccgate seal: --key-out %s: %s%s\n", path, strerror(errno),
                errno == EEXIST ? " (a key is never overwritten)" : "");
        goto out;
    }
    size_t n = strlen(txt);
    if (write(fd, txt, n) != (ssize_t)n || write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
        fprintf(stderr, "ccgate seal: --key-out %s: %s\n", path, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (txt != NULL)
        OPENSSL_cleanse(txt, strlen(txt));
    free(txt);
    json_decref(j);
    cg_jose_key_free(k);
    return rc;
}

static json_t *header_json(const struct cg_seal_header *h)
{
    json_t *o = json_object();
    json_object_set_new(o, "format", json_integer(h->format));
    json_object_set_new(o, "name", json_string(h->name));
    json_object_set_new(o, "version", json_integer((json_int_t)h->version));
    json_object_set_new(o, "kid", json_string(h->kid));
    json_object_set_new(o, "chunk_size", json_integer(h->chunk_size));
    json_object_set_new(o, "chunks", json_integer((json_int_t)h->n_chunks));
    json_object_set_new(o, "plaintext_length", json_integer((json_int_t)h->plain_len));
    tl_cli_put_hex(o, "plaintext_sha256", h->plain_sha256, 32);
    tl_cli_put_hex(o, "header_sha256", h->digest, 32);
    json_object_set_new(o, "sealed_length", json_integer((json_int_t)h->sealed_len));
    return o;
}

static int inspect(const char *path)
{
    struct cg_seal_header h;
    struct cg_verdict v = {0};
    uint8_t hdr[CG_SEAL_HEADER_MAX + CG_SEAL_TAG_LEN];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "ccgate seal --inspect: %s: %s\n", path, strerror(errno));
        return 2;
    }
    int rc = cg_seal_read_header(fd, &h, hdr, &v);
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "ccgate seal --inspect: %s: %s: %s%s%s\n", path,
                v.check[0] ? v.check : cg_strerror(rc), v.actual,
                v.expected[0] ? ", expected " : "", v.expected);
        return 2;
    }
    json_t *o = header_json(&h);
    json_object_set_new(o, "authenticated", json_false());
    rc = tl_cli_print(o);
    json_decref(o);
    return rc == 0 ? 0 : 2;
}

int tl_seal_main(int argc, char **argv)
{
    struct cg_opt o[] = {
        {"in", "PLAIN", "the file to seal (a GGUF model, or any file)", NULL, NULL, NULL},
        {"out", "SEALED", "the sealed file to write", NULL, NULL, NULL},
        {"key-out", "KEY.jwk", "write a new random key here (mode 0600, never overwritten)", NULL,
         NULL, NULL},
        {"key", "KEY.jwk", "seal with this existing key instead (a new model version)", NULL, NULL,
         NULL},
        {"name", "NAME", "model name in the header", NULL, NULL, NULL},
        {"version", "N", "model version in the header (the broker's minimum applies)", "1", NULL,
         NULL},
        {"chunk-size", "BYTES", "plaintext bytes per chunk", "4194304", NULL, NULL},
        {"inspect", "SEALED", "print the header of a sealed file as JSON (no key needed)", NULL,
         NULL, NULL},
        {"help", NULL, "print this help", NULL, NULL, NULL},
    };
    size_t n = sizeof(o) / sizeof(o[0]);
    int rc = parse_or_usage("ccgate seal", argc, argv, o, n,
                            "ccgate seal --in PLAIN --out SEALED --key-out KEY.jwk [--name NAME] "
                            "[--version N]\n       ccgate seal --inspect SEALED",
                            "Encrypts a model into chunks of AES-256-GCM bound to a header "
                            "(docs/model-protection.md).");
    if (rc >= 0)
        return rc;
    const char *in = o[0].value, *out = o[1].value, *key_out = o[2].value, *key_in = o[3].value;
    if (o[7].value != NULL)
        return inspect(o[7].value);
    if (in == NULL || out == NULL || (key_out == NULL) == (key_in == NULL)) {
        fprintf(stderr, "ccgate seal: --in, --out and one of --key-out or --key are required\n");
        return 2;
    }
    unsigned long version, chunk;
    char err[256] = "";
    if (cg_opts_uint(&o[5], 0, ~0ul, &version, err, sizeof(err)) != 0 ||
        cg_opts_uint(&o[6], CG_SEAL_MIN_CHUNK, CG_SEAL_MAX_CHUNK, &chunk, err, sizeof(err)) != 0) {
        fprintf(stderr, "ccgate seal: %s\n", err);
        return 2;
    }
    uint8_t key[CG_SEAL_KEY_LEN];
    char kid[CG_SEAL_MAX_KID + 1] = "";
    if (key_in != NULL && read_key("ccgate seal", key_in, key, kid, sizeof(kid)) != 0)
        return 2;
    if (key_in == NULL && RAND_bytes(key, sizeof(key)) != 1) {
        fprintf(stderr, "ccgate seal: no randomness\n");
        return 2;
    }
    struct cg_seal_params p = {
        .name = o[4].value,
        .kid = kid[0] ? kid : NULL,
        .version = version,
        .chunk_size = (uint32_t)chunk,
    };
    struct cg_seal_header h;
    int ifd = open(in, O_RDONLY | O_CLOEXEC);
    int ofd = ifd < 0 ? -1 : open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    rc = 2;
    if (ifd < 0 || ofd < 0) {
        fprintf(stderr, "ccgate seal: %s: %s\n", ifd < 0 ? in : out, strerror(errno));
        goto out;
    }
    if (cg_seal_fd(ifd, ofd, key, &p, &h, err, sizeof(err)) != 0 || fsync(ofd) != 0) {
        fprintf(stderr, "ccgate seal: %s\n", err[0] ? err : strerror(errno));
        (void)unlink(out);
        goto out;
    }
    if (key_out != NULL && write_key(key_out, key, h.kid) != 0) {
        (void)unlink(out);
        goto out;
    }
    json_t *j = header_json(&h);
    rc = tl_cli_print(j) == 0 ? 0 : 2;
    json_decref(j);
out:
    OPENSSL_cleanse(key, sizeof(key));
    if (ifd >= 0)
        close(ifd);
    if (ofd >= 0)
        close(ofd);
    return rc;
}

/* Whether path's folder lies on a memory-backed file system (tmpfs, ramfs). */
static int memory_backed(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    struct statfs sf;
    if (statfs(dir, &sf) != 0)
        return 0;
    return sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
}

/* Decrypts in (fd) into out chunk by chunk; a failure removes what was written. */
static int unseal_to(int fd, const struct cg_seal_header *h, const uint8_t *hdr,
                     const uint8_t key[CG_SEAL_KEY_LEN], uint64_t min_version, const char *out,
                     struct cg_verdict *v)
{
    struct cg_unseal *u = NULL;
    uint8_t *buf = malloc(h->chunk_size + CG_SEAL_TAG_LEN);
    int ofd = -1, rc = -ENOMEM;
    struct stat st;
    if (buf == NULL)
        goto out;
    rc = cg_unseal_begin(h, hdr, key, min_version, &u, v);
    if (rc == 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size != h->sealed_len)
        rc = cg_reject(v, CG_EEVIDENCE, "sealed.length", "", "%lld bytes, header says %" PRIu64,
                       (long long)st.st_size, h->sealed_len);
    if (rc != 0)
        goto out;
    ofd = open(out, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (ofd < 0) {
        rc = -errno;
        goto out;
    }
    for (uint64_t i = 0; i < h->n_chunks; i++) {
        size_t n = cg_seal_chunk_plain_len(h, i);
        ssize_t r = read(fd, buf, n + CG_SEAL_TAG_LEN); /* regular file: full reads */
        if (r != (ssize_t)(n + CG_SEAL_TAG_LEN)) {
            rc = r < 0 ? -errno
                       : cg_reject(v, CG_EEVIDENCE, "sealed.truncated", "", "chunk %" PRIu64, i);
            goto out;
        }
        rc = cg_unseal_chunk(u, buf, n, buf + n, buf, v);
        if (rc == 0 && write(ofd, buf, n) != (ssize_t)n)
            rc = -errno;
        if (rc != 0)
            goto out;
    }
    rc = cg_unseal_finish(u, v);
out:
    if (buf != NULL)
        OPENSSL_clear_free(buf, h->chunk_size + CG_SEAL_TAG_LEN);
    cg_unseal_free(u);
    if (ofd >= 0) {
        if (rc == 0 && fsync(ofd) != 0)
            rc = -errno;
        close(ofd);
        if (rc != 0)
            (void)unlink(out);
    }
    return rc;
}

int tl_unseal_main(int argc, char **argv)
{
    struct cg_opt o[] = {
        {"in", "SEALED", "the sealed file", NULL, NULL, NULL},
        {"out", "PATH", "where to write the plaintext (a tmpfs or ramfs unless --force)", NULL,
         NULL, NULL},
        {"key", "KEY.jwk", "the key, from a file (outside a TEE: for the model owner only)", NULL,
         NULL, NULL},
        {"kbs", "URL", "fetch the key from a key broker after attestation", NULL, NULL, NULL},
        {"kbs-resource", "REPO/TYPE/TAG", "the broker's name of the key", NULL, NULL, NULL},
        {"kbs-ca", "FILE", "CA certificate(s) for an https:// broker", NULL, NULL, NULL},
        {"tee", "sim|snp|tdx|auto", "evidence provider for the broker", "auto", NULL, NULL},
        {"state-dir", "DIR", "the simulated TEE's state (--tee sim)", NULL, NULL, NULL},
        {"min-version", "N", "refuse a model version below N (the broker's minimum also applies)",
         "0", NULL, NULL},
        {"force", NULL, "write to a disk-backed file system anyway", NULL, NULL, NULL},
        {"help", NULL, "print this help", NULL, NULL, NULL},
    };
    size_t n = sizeof(o) / sizeof(o[0]);
    int rc = parse_or_usage(
        "ccgate unseal", argc, argv, o, n,
        "ccgate unseal --in SEALED --out PATH (--key KEY.jwk | --kbs URL --kbs-resource R "
        "[--kbs-ca F] [--tee T] [--state-dir D]) [--min-version N] [--force]",
        "Decrypts a sealed model for servers that read a plaintext file (vLLM, llama.cpp). "
        "Only safe inside the TEE, onto memory-backed storage.");
    if (rc >= 0)
        return rc;
    const char *in = o[0].value, *out = o[1].value, *keyf = o[2].value, *kbs = o[3].value;
    if (in == NULL || out == NULL || (keyf == NULL) == (kbs == NULL)) {
        fprintf(stderr, "ccgate unseal: --in, --out and one of --key or --kbs are required\n");
        return 2;
    }
    unsigned long min_version;
    char err[512];
    if (cg_opts_uint(&o[8], 0, ~0ul, &min_version, err, sizeof(err)) != 0) {
        fprintf(stderr, "ccgate unseal: %s\n", err);
        return 2;
    }
    fprintf(stderr, "ccgate unseal: WARNING: the plaintext model is only protected inside the "
                    "TEE, in memory; never unseal it on a host you do not trust\n");
    if (!memory_backed(out)) {
        if (o[9].value == NULL) {
            fprintf(stderr,
                    "ccgate unseal: %s is not on a memory-backed file system (tmpfs, "
                    "ramfs): refused (--force to write it anyway)\n",
                    out);
            return 2;
        }
        fprintf(stderr, "ccgate unseal: WARNING: writing plaintext to disk-backed %s (--force)\n",
                out);
    }
    uint8_t key[CG_SEAL_KEY_LEN];
    uint64_t broker_min = 0;
    if (keyf != NULL) {
        if (read_key("ccgate unseal", keyf, key, NULL, 0) != 0)
            return 2;
    } else {
        struct cg_kbc_config kc = {
            .url = kbs,
            .resource = o[4].value,
            .ca_file = o[5].value,
            .tee = o[6].value,
            .state_dir = o[7].value,
        };
        if (kc.resource == NULL) {
            fprintf(stderr, "ccgate unseal: --kbs needs --kbs-resource REPO/TYPE/TAG\n");
            return 2;
        }
        if (cg_kbc_fetch_seal_key(&kc, key, &broker_min, err, sizeof(err)) != 0) {
            fprintf(stderr, "ccgate unseal: key broker: %s\n", err);
            return 1;
        }
    }
    if (broker_min > min_version)
        min_version = broker_min;
    struct cg_seal_header h;
    struct cg_verdict v = {0};
    uint8_t hdr[CG_SEAL_HEADER_MAX + CG_SEAL_TAG_LEN];
    int fd = open(in, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "ccgate unseal: %s: %s\n", in, strerror(errno));
        OPENSSL_cleanse(key, sizeof(key));
        return 2;
    }
    rc = cg_seal_read_header(fd, &h, hdr, &v);
    if (rc == 0)
        rc = unseal_to(fd, &h, hdr, key, min_version, out, &v);
    close(fd);
    OPENSSL_cleanse(key, sizeof(key));
    if (rc != 0) {
        if (v.check[0] != '\0')
            fprintf(stderr, "ccgate unseal: %s: %s: expected %s, got %s\n", in, v.check,
                    v.expected[0] ? v.expected : "(see check)", v.actual);
        else
            fprintf(stderr, "ccgate unseal: %s: %s\n", in, cg_strerror(rc));
        return 1;
    }
    json_t *j = header_json(&h);
    json_object_set_new(j, "authenticated", json_true());
    rc = tl_cli_print(j) == 0 ? 0 : 2;
    json_decref(j);
    return rc;
}
