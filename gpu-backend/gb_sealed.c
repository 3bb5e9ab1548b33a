/* The worker's sealed-model loader: key from the broker, plaintext only in memory. */
#include "gb_sealed.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ccgate/log.h"

#define PAGE 4096u

int gb_sealed_is(const char *path)
{
    uint8_t magic[8];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, magic, sizeof(magic));
    close(fd);
    return n == (ssize_t)sizeof(magic) && memcmp(magic, CG_SEAL_MAGIC, sizeof(magic)) == 0;
}

int gb_sealed_open(const char *path, const struct cg_kbc_config *kbc, struct gb_gguf **out,
                   struct gb_sealed_info *info, char *err, size_t errlen)
{
    struct cg_seal_header h;
    struct cg_verdict v = {0};
    uint8_t hdr[CG_SEAL_HEADER_MAX + CG_SEAL_TAG_LEN], key[CG_SEAL_KEY_LEN];
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc, fd = open(path, O_RDONLY | O_CLOEXEC);
    *out = NULL;
    if (fd < 0) {
        snprintf(err, errlen, "--model %s: %s", path, strerror(errno));
        return -errno;
    }
    rc = cg_seal_read_header(fd, &h, hdr, &v);
    if (rc != 0) {
        snprintf(err, errlen, "--model %s: %s: %s", path, v.check[0] ? v.check : "read",
                 v.check[0] ? v.actual : cg_strerror(rc));
        goto out;
    }
    if (h.plain_len > (uint64_t)SIZE_MAX - PAGE) {
        rc = CG_ELIMIT;
        snprintf(err, errlen, "--model %s: %llu bytes do not fit in memory here", path,
                 (unsigned long long)h.plain_len);
        goto out;
    }
    char kerr[512];
    rc = cg_kbc_fetch_seal_key(kbc, key, &info->min_version, kerr, sizeof(kerr));
    if (rc != 0) {
        snprintf(err, errlen, "--kbs %s: %s", kbc->url, kerr);
        goto out;
    }
    cap = ((size_t)h.plain_len + PAGE - 1) / PAGE * PAGE;
    if (cap == 0)
        cap = PAGE;
    if (posix_memalign((void **)&buf, PAGE, cap) != 0) {
        buf = NULL;
        rc = -ENOMEM;
        snprintf(err, errlen, "--model %s: no memory for %llu bytes", path,
                 (unsigned long long)h.plain_len);
        goto out;
    }
    /* Plaintext weights stay out of core dumps (best effort: the kernel may refuse). */
    (void)madvise(buf, cap, MADV_DONTDUMP);
    rc = cg_unseal_fd(fd, &h, hdr, key, info->min_version, buf, &v);
    explicit_bzero(key, sizeof(key));
    if (rc != 0) {
        if (v.check[0] != '\0')
            snprintf(err, errlen, "--model %s: %s: expected %s, got %s", path, v.check,
                     v.expected[0] ? v.expected : "(see check)", v.actual);
        else
            snprintf(err, errlen, "--model %s: %s", path, cg_strerror(rc));
        goto out;
    }
    snprintf(info->name, sizeof(info->name), "%s", h.name);
    info->version = h.version;
    memcpy(info->plain_sha256, h.plain_sha256, 32);
    rc = gb_gguf_parse(buf, (size_t)h.plain_len, 1, out, err, errlen);
    buf = NULL; /* the GGUF owns it now, also on error */
out:
    explicit_bzero(key, sizeof(key));
    free(buf);
    close(fd);
    return rc;
}
