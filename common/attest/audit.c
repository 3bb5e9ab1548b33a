/* The key broker's hash-chained audit log (audit.h). */
#include "ccgate/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ccgate/err.h"
#include "ccgate/ratls.h"

struct cg_audit {
    int fd;
    uint64_t seq;
    uint8_t head[32];
};

#define HASH_PREFIX ",\"hash\":\""
#define HASH_SUFFIX_LEN (sizeof(HASH_PREFIX) - 1 + 64 + 2) /* ,"hash":"<64 hex>"} */

/* SHA-256 of a line's bytes before its hash member (n: that prefix's length). */
static void line_hash(const char *line, size_t n, uint8_t out[32])
{
    if (cg_sha256((const uint8_t *)line, n, out) != 0)
        memset(out, 0xff, 32); /* never matches a real hash: the chain reads as broken */
}

/* Checks one line against the chain state (seq so far, head) and advances it. */
static int check_line(const char *line, size_t n, struct cg_audit_summary *s, uint8_t head[32])
{
    char want[65];
    json_error_t je;
    cg_hex(want, sizeof(want), head, 32);
    json_t *o = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
    int rc = CG_EEVIDENCE;
    if (!json_is_object(o)) {
        snprintf(s->why, sizeof(s->why), "not a JSON object (%.100s)", je.text);
        goto out;
    }
    json_t *seq = json_object_get(o, "seq");
    const char *prev = json_string_value(json_object_get(o, "prev"));
    const char *t = json_string_value(json_object_get(o, "time"));
    const char *d = json_string_value(json_object_get(o, "decision"));
    if (!json_is_integer(seq) || (uint64_t)json_integer_value(seq) != s->lines + 1) {
        snprintf(s->why, sizeof(s->why), "seq: expected %llu", (unsigned long long)s->lines + 1);
        goto out;
    }
    if (prev == NULL || strcmp(prev, want) != 0) {
        snprintf(s->why, sizeof(s->why),
                 "prev: expected %.16s... (the hash of line %llu), got %.16s... (a line before "
                 "was edited, removed or moved)",
                 want, (unsigned long long)s->lines, prev != NULL ? prev : "none");
        goto out;
    }
    /* The line's own hash, its last member: an edited line fails here, at its own number. */
    uint8_t mine[32];
    char mine_hex[65];
    if (n <= HASH_SUFFIX_LEN ||
        memcmp(line + n - HASH_SUFFIX_LEN, HASH_PREFIX, sizeof(HASH_PREFIX) - 1) != 0) {
        snprintf(s->why, sizeof(s->why), "hash: expected as the last member");
        goto out;
    }
    line_hash(line, n - HASH_SUFFIX_LEN, mine);
    cg_hex(mine_hex, sizeof(mine_hex), mine, 32);
    if (memcmp(line + n - 66, mine_hex, 64) != 0) {
        snprintf(s->why, sizeof(s->why), "hash: the line was edited (its hash does not match)");
        goto out;
    }
    if (t != NULL) {
        if (s->first_time[0] == '\0')
            snprintf(s->first_time, sizeof(s->first_time), "%s", t);
        snprintf(s->last_time, sizeof(s->last_time), "%s", t);
    }
    s->granted += d != NULL && strcmp(d, "granted") == 0;
    s->denied += d != NULL && strcmp(d, "denied") == 0;
    s->lines++;
    memcpy(head, mine, 32);
    rc = 0;
out:
    json_decref(o);
    return rc;
}

/* Reads the log at fd from the start, checking the chain; head and s filled. */
static int verify_fd(int fd, struct cg_audit_summary *s, uint8_t head[32])
{
    char *buf = malloc(CG_AUDIT_MAX_LINE + 1);
    size_t have = 0;
    int rc = 0;
    memset(s, 0, sizeof(*s));
    memset(head, 0, 32);
    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        ssize_t r = read(fd, buf + have, CG_AUDIT_MAX_LINE + 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        have += (size_t)r;
        char *p = buf, *nl;
        while ((nl = memchr(p, '\n', have - (size_t)(p - buf))) != NULL) {
            if ((rc = check_line(p, (size_t)(nl - p), s, head)) != 0)
                goto bad;
            p = nl + 1;
        }
        have -= (size_t)(p - buf);
        memmove(buf, p, have);
        if (have > CG_AUDIT_MAX_LINE) {
            snprintf(s->why, sizeof(s->why), "longer than %d bytes", CG_AUDIT_MAX_LINE);
            rc = CG_EEVIDENCE;
            goto bad;
        }
        if (r == 0)
            break;
    }
    if (rc == 0 && have > 0) {
        snprintf(s->why, sizeof(s->why), "no final newline (a cut or partial write)");
        rc = CG_EEVIDENCE;
        goto bad;
    }
    cg_hex(s->head, sizeof(s->head), head, 32);
    free(buf);
    return rc;
bad:
    s->bad_line = s->lines + 1;
    free(buf);
    return rc;
}

int cg_audit_verify(const char *path, struct cg_audit_summary *s)
{
    uint8_t head[32];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        memset(s, 0, sizeof(*s));
        return -errno;
    }
    int rc = verify_fd(fd, s, head);
    close(fd);
    return rc;
}

int cg_audit_open(const char *path, struct cg_audit **out, char *err, size_t errlen)
{
    struct cg_audit_summary s;
    *out = NULL;
    int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "audit_log %s: %s", path, strerror(errno));
        return -errno;
    }
    struct cg_audit *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        close(fd);
        return -ENOMEM;
    }
    a->fd = fd;
    int rc = verify_fd(fd, &s, a->head);
    if (rc != 0) {
        if (rc == CG_EEVIDENCE)
            snprintf(err, errlen, "audit_log %s: line %llu breaks the chain: %s", path,
                     (unsigned long long)s.bad_line, s.why);
        else
            snprintf(err, errlen, "audit_log %s: %s", path, strerror(-rc));
        cg_audit_close(a);
        return rc;
    }
    a->seq = s.lines;
    *out = a;
    return 0;
}

int cg_audit_append(struct cg_audit *a, const json_t *event)
{
    char prev[65], ts[32];
    struct tm tm;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t tl = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + tl, sizeof(ts) - tl, ".%03ldZ", now.tv_nsec / 1000000);
    cg_hex(prev, sizeof(prev), a->head, 32);
    json_t *o =
        json_pack("{s:I,s:s,s:s}", "seq", (json_int_t)(a->seq + 1), "time", ts, "prev", prev);
    if (o == NULL || json_object_update(o, (json_t *)event) != 0) {
        json_decref(o);
        return -ENOMEM;
    }
    /* seq, time, prev and hash are the chain's: an event cannot set them. */
    json_object_set_new(o, "seq", json_integer((json_int_t)(a->seq + 1)));
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "prev", json_string(prev));
    json_object_del(o, "hash");
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER), *line = NULL;
    json_decref(o);
    if (text == NULL)
        return -ENOMEM;
    /* The object without its closing brace, then its own hash as the last member. */
    size_t pre = strlen(text) - 1, n = pre + HASH_SUFFIX_LEN;
    uint8_t h[32];
    char hex[65];
    int rc = 0;
    if (n + 1 > CG_AUDIT_MAX_LINE) {
        rc = CG_ELIMIT;
        goto out;
    }
    line_hash(text, pre, h);
    cg_hex(hex, sizeof(hex), h, 32);
    line = malloc(n + 2);
    if (line == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    snprintf(line, n + 2, "%.*s" HASH_PREFIX "%s\"}\n", (int)pre, text, hex);
    ssize_t w = write(a->fd, line, n + 1); /* one write for the whole line */
    if (w != (ssize_t)(n + 1) || fdatasync(a->fd) != 0) {
        rc = w < 0 ? -errno : -EIO;
        goto out;
    }
    a->seq++;
    memcpy(a->head, h, 32);
out:
    free(text);
    free(line);
    return rc;
}

uint64_t cg_audit_head(const struct cg_audit *a, char hex[65])
{
    cg_hex(hex, 65, a->head, 32);
    return a->seq;
}

void cg_audit_close(struct cg_audit *a)
{
    if (a == NULL)
        return;
    close(a->fd);
    free(a);
}
