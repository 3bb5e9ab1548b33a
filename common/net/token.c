#include "ccgate/token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ccgate/err.h"
#include "ccgate/file.h"

#define NAME_MAX_LEN 64

struct entry {
    uint8_t digest[32];
    char name[NAME_MAX_LEN + 1];
};

struct cg_tokens {
    EVP_MD *sha256;  /* fetched once: a fetch per request costs more than the digest */
    EVP_MD_CTX *ctx; /* reused by every check (one thread uses a set) */
    size_t n;
    struct entry e[];
};

static int is_b64char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '+' || ch == '/';
}

/* RFC 6750 b64token: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int is_b64token(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && is_b64char(s[i]))
        i++;
    if (i == 0)
        return 0;
    while (i < len && s[i] == '=')
        i++;
    return i == len;
}

static int is_name(const char *s, size_t len)
{
    if (len == 0 || len > NAME_MAX_LEN)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '@' || ch == '-'))
            return 0;
    }
    return 1;
}

static const char name_expect[] = "letters, digits, '.', '_', '@' or '-', 1 to 64 of them";

static int check_token(const char *token, size_t len, char *err, size_t errlen)
{
    if (len < CG_TOKEN_MIN_LEN || len > CG_TOKEN_MAX_LEN)
        return cg_errf(err, errlen, CG_ECONFIG,
                       "token: expected %d to %d characters (random, e.g. `openssl rand -hex 32`), "
                       "got %zu",
                       CG_TOKEN_MIN_LEN, CG_TOKEN_MAX_LEN, len);
    if (!is_b64token(token, len))
        return cg_errf(err, errlen, CG_ECONFIG,
                       "token: expected only letters, digits and -._~+/ (then '=' padding): "
                       "what an Authorization: Bearer header can carry");
    return 0;
}

/* Parses one line (NUL-terminated, without its newline) into e; 1 when it holds no entry. */
static int parse_line(char *line, size_t lineno, struct entry *e, char *err, size_t errlen)
{
    static const char expect[] = "expected `sha256:<64 hex digits> [NAME]` (from `ccgate token "
                                 "hash`), a `#` comment or a blank line";
    size_t len = strlen(line);
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    char *p = line;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || *p == '#')
        return 1;
    if (strncmp(p, "sha256:", 7) != 0)
        return cg_errf(err, errlen, CG_ECONFIG, "line %zu: %s", lineno, expect);
    p += 7;
    size_t hex_len = strcspn(p, " \t");
    char hex[65];
    if (hex_len != 64)
        return cg_errf(err, errlen, CG_ECONFIG, "line %zu: digest: expected 64 hex digits, got %zu",
                       lineno, hex_len);
    memcpy(hex, p, 64);
    hex[64] = '\0';
    if (cg_unhex(e->digest, 32, hex) != 0)
        return cg_errf(err, errlen, CG_ECONFIG, "line %zu: digest: expected 64 hex digits", lineno);
    p += 64;
    while (*p == ' ' || *p == '\t')
        p++;
    size_t name_len = strcspn(p, " \t");
    if (name_len > 0) {
        if (!is_name(p, name_len))
            return cg_errf(err, errlen, CG_ECONFIG, "line %zu: name: expected %s", lineno,
                           name_expect);
        const char *rest = p + name_len;
        while (*rest == ' ' || *rest == '\t')
            rest++;
        if (*rest != '\0')
            return cg_errf(err, errlen, CG_ECONFIG, "line %zu: %s (text after the name)", lineno,
                           expect);
        memcpy(e->name, p, name_len);
        e->name[name_len] = '\0';
    } else {
        snprintf(e->name, sizeof(e->name), "sha256:%.12s", hex);
    }
    return 0;
}

int cg_tokens_load(const char *path, struct cg_tokens **out, char *err, size_t errlen)
{
    uint8_t *data = NULL;
    size_t len = 0;
    struct cg_tokens *t = NULL;
    *out = NULL;
    int rc = cg_file_read(path, CG_TOKEN_FILE_MAX, &data, &len);
    if (rc == CG_ELIMIT) {
        cg_errf(err, errlen, rc, "larger than %d bytes", CG_TOKEN_FILE_MAX);
        goto out;
    }
    if (rc < 0) {
        cg_errf(err, errlen, rc, "cannot read: %s", cg_strerror(rc));
        goto out;
    }
    if (memchr(data, '\0', len) != NULL) {
        rc = cg_errf(err, errlen, CG_ECONFIG, "holds a NUL byte: expected a text file");
        goto out;
    }
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += data[i] == '\n';
    size_t cap = lines < CG_TOKEN_MAX_ENTRIES ? lines : CG_TOKEN_MAX_ENTRIES;
    t = calloc(1, sizeof(*t) + cap * sizeof(t->e[0]));
    if (t == NULL) {
        rc = cg_errf(err, errlen, CG_ELIMIT, "out of memory");
        goto out;
    }
    size_t lineno = 0;
    char *cur = (char *)data;
    while (cur != NULL) {
        char *nl = strchr(cur, '\n');
        if (nl != NULL)
            *nl = '\0';
        lineno++;
        struct entry e = {{0}, {0}};
        rc = parse_line(cur, lineno, &e, err, errlen);
        cur = nl != NULL ? nl + 1 : NULL;
        if (rc < 0)
            goto out;
        if (rc == 1)
            continue;
        for (size_t i = 0; i < t->n; i++) {
            if (memcmp(t->e[i].digest, e.digest, 32) == 0) {
                rc = cg_errf(err, errlen, CG_ECONFIG,
                             "line %zu: expected each token once; this digest repeats entry '%s'",
                             lineno, t->e[i].name);
                goto out;
            }
            if (strcmp(t->e[i].name, e.name) == 0) {
                rc = cg_errf(err, errlen, CG_ECONFIG,
                             "line %zu: name '%s': expected each name once (logs tell tokens apart "
                             "by it)",
                             lineno, e.name);
                goto out;
            }
        }
        if (t->n == CG_TOKEN_MAX_ENTRIES) {
            rc = cg_errf(err, errlen, CG_ECONFIG, "line %zu: expected at most %d entries", lineno,
                         CG_TOKEN_MAX_ENTRIES);
            goto out;
        }
        t->e[t->n++] = e;
    }
    t->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    t->ctx = EVP_MD_CTX_new();
    if (t->sha256 == NULL || t->ctx == NULL) {
        rc = cg_errf(err, errlen, CG_ECRYPTO, "SHA-256 unavailable");
        goto out;
    }
    if (t->n == 0) {
        rc = cg_errf(err, errlen, CG_ECONFIG,
                     "no entry: expected at least one `sha256:<hex> [NAME]` line (an empty list "
                     "would refuse every request)");
        goto out;
    }
    *out = t;
    t = NULL;
    rc = 0;
out:
    if (data != NULL)
        OPENSSL_cleanse(data, len);
    free(data);
    cg_tokens_free(t);
    return rc;
}

void cg_tokens_free(struct cg_tokens *t)
{
    if (t == NULL)
        return;
    EVP_MD_CTX_free(t->ctx);
    EVP_MD_free(t->sha256);
    free(t);
}

size_t cg_tokens_count(const struct cg_tokens *t)
{
    return t->n;
}

enum cg_token_fail cg_tokens_check(const struct cg_tokens *t, const char *value, size_t len,
                                   const char **name)
{
    *name = NULL;
    if (value == NULL)
        return CG_TOKEN_MISSING;
    /* auth-scheme is case-insensitive (RFC 9110 11.1); one or more spaces follow it */
    if (len < 7 || strncasecmp(value, "bearer ", 7) != 0)
        return CG_TOKEN_SCHEME;
    size_t i = 7;
    while (i < len && value[i] == ' ')
        i++;
    const char *token = value + i;
    size_t tlen = len - i;
    if (tlen == 0 || tlen > CG_TOKEN_MAX_LEN || !is_b64token(token, tlen))
        return CG_TOKEN_MALFORMED;
    uint8_t digest[32];
    unsigned dlen = 0;
    if (EVP_DigestInit_ex2(t->ctx, t->sha256, NULL) != 1 ||
        EVP_DigestUpdate(t->ctx, token, tlen) != 1 ||
        EVP_DigestFinal_ex(t->ctx, digest, &dlen) != 1 || dlen != sizeof(digest))
        return CG_TOKEN_UNKNOWN; /* cannot check: refuse */
    size_t found = SIZE_MAX;
    for (size_t k = 0; k < t->n; k++) {
        /* every entry compared, without an early exit */
        size_t hit = (size_t)(CRYPTO_memcmp(t->e[k].digest, digest, 32) == 0);
        size_t mask = (size_t)0 - hit;
        found = (found & ~mask) | (k & mask);
    }
    OPENSSL_cleanse(digest, sizeof(digest));
    if (found == SIZE_MAX)
        return CG_TOKEN_UNKNOWN;
    *name = t->e[found].name;
    return CG_TOKEN_OK;
}

const char *cg_token_fail_name(enum cg_token_fail f)
{
    switch (f) {
    case CG_TOKEN_OK:
        return "ok";
    case CG_TOKEN_MISSING:
        return "missing";
    case CG_TOKEN_SCHEME:
        return "scheme";
    case CG_TOKEN_MALFORMED:
        return "malformed";
    case CG_TOKEN_UNKNOWN:
        return "unknown";
    }
    return "unknown";
}

int cg_token_entry(const char *token, size_t len, const char *name, char *out, size_t cap,
                   char *err, size_t errlen)
{
    int rc = check_token(token, len, err, errlen);
    if (rc < 0)
        return rc;
    if (name != NULL && !is_name(name, strlen(name)))
        return cg_errf(err, errlen, CG_ECONFIG, "--name: expected %s", name_expect);
    uint8_t digest[32];
    char hex[65];
    SHA256((const unsigned char *)token, len, digest);
    cg_hex(hex, sizeof(hex), digest, sizeof(digest));
    int n = snprintf(out, cap, "sha256:%s%s%s\n", hex, name != NULL ? " " : "",
                     name != NULL ? name : "");
    if (n < 0 || (size_t)n >= cap)
        return cg_errf(err, errlen, CG_ELIMIT, "output buffer too small");
    return 0;
}
