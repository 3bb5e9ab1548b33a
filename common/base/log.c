#include "ccgate/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ccgate/err.h"

static const char *log_prog = "ccgate";
static enum cg_log_format log_format = CG_LOG_TEXT;
static enum cg_log_level log_min = CG_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void cg_log_init(const char *prog, enum cg_log_format format, enum cg_log_level min_level)
{
    log_prog = prog;
    log_format = format;
    log_min = min_level;
}

int cg_log_parse_format(const char *s, enum cg_log_format *out)
{
    if (strcmp(s, "text") == 0)
        *out = CG_LOG_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = CG_LOG_JSON;
    else
        return CG_ECONFIG;
    return 0;
}

int cg_log_parse_level(const char *s, enum cg_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum cg_log_level)i;
            return 0;
        }
    }
    return CG_ECONFIG;
}

/* Length of the valid UTF-8 sequence starting at s (1 to 4), or 0 when it is invalid
 * (stray continuation, overlong form, surrogate, beyond U+10FFFF, or cut short). */
static size_t utf8_len(const unsigned char *s)
{
    unsigned char lo = 0x80, hi = 0xbf;
    size_t n;
    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        lo = s[0] == 0xe0 ? 0xa0 : lo;
        hi = s[0] == 0xed ? 0x9f : hi;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        lo = s[0] == 0xf0 ? 0x90 : lo;
        hi = s[0] == 0xf4 ? 0x8f : hi;
    } else {
        return 0;
    }
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* A log line being built, never longer than its buffer: appends past the end are dropped
 * and JSON strings cut at a character boundary, so that the line stays valid. */
struct line {
    char buf[4096];
    size_t len;
};

/* Room kept for what closes a line ("\"}\n" at most). */
#define LINE_RESERVE 8

static void put(struct line *l, const char *s, size_t n)
{
    if (n > sizeof(l->buf) - LINE_RESERVE - l->len)
        n = sizeof(l->buf) - LINE_RESERVE - l->len;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* Appends s[0..n) as the body of a JSON string (no quotes). JSON must be UTF-8, so an
 * invalid byte (or a sequence cut by the message limit) becomes U+FFFD. */
static void put_json(struct line *l, const char *s, size_t n)
{
    char esc[8];
    for (size_t i = 0; i < n && l->len + 7 < sizeof(l->buf) - LINE_RESERVE;) {
        unsigned char c = (unsigned char)s[i];
        /* The sequence is judged on what is left of s only (zero-padded). */
        unsigned char seq[4] = {0};
        memcpy(seq, s + i, n - i < 4 ? n - i : 4);
        size_t k = utf8_len(seq);
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            put(l, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            put(l, esc, 6);
        } else if (c >= 0x80 && k == 0) {
            put(l, "\\ufffd", 6);
        } else {
            put(l, s + i, k);
            i += k;
            continue;
        }
        i++;
    }
}

/* 1 when a field with a key of klen bytes still fits: its key whole and a value (perhaps cut)
 * with its closing quote. A field that does not fit is left out. */
static int room_for_field(const struct line *l, size_t klen)
{
    return l->len + klen + 32 < sizeof(l->buf) - LINE_RESERVE;
}

static void put_json_str(struct line *l, const char *s, size_t n)
{
    put(l, "\"", 1);
    put_json(l, s, n);
    put(l, "\"", 1);
}

/* A bare logfmt value that reads as a JSON number: an integer or decimal of at most 15
 * digits (so it survives a double), no exponent, no leading zero. */
static int is_number(const char *s, size_t n)
{
    size_t i = s[0] == '-' ? 1 : 0, digits = 0;
    if (i == n || s[i] < '0' || s[i] > '9' || (s[i] == '0' && i + 1 < n && s[i + 1] != '.'))
        return 0;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        digits++;
    if (i < n && s[i] == '.') {
        if (++i == n)
            return 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
            digits++;
    }
    return i == n && digits <= 15;
}

/* Length of a logfmt key at s followed by '=' ([A-Za-z_][A-Za-z0-9_.-]*), or 0. */
static size_t key_len(const char *s)
{
    size_t i = 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    while ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
           (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.' || s[i] == '-')
        i++;
    return s[i] == '=' ? i : 0;
}

/* The closing quote of a logfmt value opened at s[0]: the first '"' that ends the message or
 * is followed by spaces and the next key, else the last '"' (then free text follows, as in
 * `actual="..."`: nothing was sent`). Quotes inside a value (a TLS reason quoting an ALPN
 * name) do not end it. NULL when there is none. */
static const char *closing_quote(const char *s)
{
    const char *last = NULL;
    for (const char *q = strchr(s + 1, '"'); q != NULL; q = strchr(q + 1, '"')) {
        if (q[-1] == '\\')
            continue;
        const char *after = q + 1;
        while (*after == ' ')
            after++;
        if (*after == '\0' || (after > q + 1 && key_len(after) > 0))
            return q;
        last = q;
    }
    return last;
}

/*
 * A printf-style message in JSON: its leading key=value pairs (the logging convention)
 * become top-level fields, bare numbers as numbers, quoted values unquoted; the first part
 * that is no key=value pair, and all after it, goes to "msg".
 */
static void put_logfmt_fields(struct line *l, const char *msg)
{
    const char *s = msg;
    for (;;) {
        while (*s == ' ')
            s++;
        size_t k = key_len(s);
        if (k == 0 || !room_for_field(l, k))
            break;
        const char *v = s + k + 1, *end;
        size_t vlen;
        int quoted = *v == '"';
        if (quoted) {
            end = closing_quote(v);
            if (end == NULL)
                break;
            vlen = (size_t)(end - v - 1);
            end++;
        } else {
            vlen = strcspn(v, " ");
            end = v + vlen;
        }
        put(l, ",", 1);
        put_json_str(l, s, k);
        put(l, ":", 1);
        if (quoted)
            put_json_str(l, v + 1, vlen);
        else if (vlen > 0 && is_number(v, vlen))
            put(l, v, vlen);
        else
            put_json_str(l, v, vlen);
        s = end;
    }
    if (*s != '\0' && room_for_field(l, 3)) {
        puts_(l, ",\"msg\":");
        put_json_str(l, s, strlen(s));
    }
}

/* Writes v in decimal into out (room for 21 bytes); returns the length. */
static size_t fmt_u64(char *out, unsigned long long v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    out[n] = '\0';
    return n;
}

static void fmt_i64(char *out, long long v)
{
    if (v < 0) {
        out[0] = '-';
        (void)fmt_u64(out + 1, 0ULL - (unsigned long long)v);
    } else {
        (void)fmt_u64(out, (unsigned long long)v);
    }
}

/* "%.3f" of d (out: 64 bytes): by hand for the values logs hold, which per-request lines made
 * worth it; snprintf for the rest (NaN, infinities, 1e15 and beyond). */
static void fmt_3f(char *out, double d)
{
    if (!(d > -1e15 && d < 1e15)) {
        snprintf(out, 64, "%.3f", d);
        return;
    }
    char *p = out;
    if (d < 0) {
        *p++ = '-';
        d = -d;
    }
    unsigned long long m = (unsigned long long)(d * 1000 + 0.5);
    p += fmt_u64(p, m / 1000);
    p[0] = '.';
    p[1] = (char)('0' + m / 100 % 10);
    p[2] = (char)('0' + m / 10 % 10);
    p[3] = (char)('0' + m % 10);
    p[4] = '\0';
}

/* The line's start: time, level, program and event, in the format of the moment. */
static void put_head(struct line *l, enum cg_log_level level, const char *event)
{
    /* The date and second change once a second: each thread formats them once per second. */
    static _Thread_local time_t sec = -1;
    static _Thread_local char sec_text[32];
    static _Thread_local size_t sec_len;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        sec_len = strftime(sec_text, sizeof(sec_text), "%Y-%m-%dT%H:%M:%S", &tm);
        sec = ts.tv_sec;
    }
    char when[40];
    long ms = ts.tv_nsec / 1000000;
    memcpy(when, sec_text, sec_len);
    when[sec_len] = '.';
    when[sec_len + 1] = (char)('0' + ms / 100);
    when[sec_len + 2] = (char)('0' + ms / 10 % 10);
    when[sec_len + 3] = (char)('0' + ms % 10);
    when[sec_len + 4] = 'Z';
    when[sec_len + 5] = '\0';
    if (log_format == CG_LOG_JSON) {
        puts_(l, "{\"ts\":\"");
        puts_(l, when);
        puts_(l, "\",\"level\":\"");
        puts_(l, level_names[level]);
        puts_(l, "\",\"prog\":");
        put_json_str(l, log_prog, strlen(log_prog));
        puts_(l, ",\"event\":");
        put_json_str(l, event, strlen(event));
    } else {
        puts_(l, when);
        put(l, " ", 1);
        puts_(l, level_names[level]);
        put(l, " ", 1);
        puts_(l, log_prog);
        put(l, " ", 1);
        puts_(l, event);
    }
}

static void put_end(struct line *l)
{
    /* LINE_RESERVE keeps room for this. */
    if (log_format == CG_LOG_JSON)
        l->buf[l->len++] = '}';
    l->buf[l->len++] = '\n';
    (void)!write(STDERR_FILENO, l->buf, l->len);
}

void cg_log(enum cg_log_level level, const char *event, const char *fmt, ...)
{
    if (level < log_min)
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct line l = {.len = 0};
    put_head(&l, level, event);
    if (log_format == CG_LOG_JSON) {
        put_logfmt_fields(&l, msg);
    } else {
        put(&l, " ", 1);
        puts_(&l, msg);
    }
    put_end(&l);
}

/* A string value in text: bare when it is one word, else quoted with \" and \\ escaped. */
static void put_text_value(struct line *l, const char *s)
{
    if (*s != '\0' && strpbrk(s, " \"=\\\t\r\n") == NULL) {
        puts_(l, s);
        return;
    }
    put(l, "\"", 1);
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            put(l, "\\", 1);
        if (*s == '\n' || *s == '\r' || *s == '\t')
            put(l, " ", 1);
        else
            put(l, s, 1);
    }
    put(l, "\"", 1);
}

void cg_log_fields(enum cg_log_level level, const char *event, const struct cg_log_field *f,
                   size_t n)
{
    if (level < log_min)
        return;
    struct line l = {.len = 0};
    put_head(&l, level, event);
    for (size_t i = 0; i < n && room_for_field(&l, strlen(f[i].key)); i++) {
        char num[64];
        num[0] = '\0';
        if (f[i].type == CG_LOG_INT)
            fmt_i64(num, f[i].i);
        else if (f[i].type == CG_LOG_UINT)
            (void)fmt_u64(num, f[i].u);
        else if (f[i].type == CG_LOG_DBL)
            fmt_3f(num, f[i].d);
        const char *str = f[i].s != NULL ? f[i].s : "";
        if (log_format == CG_LOG_JSON) {
            put(&l, ",", 1);
            put_json_str(&l, f[i].key, strlen(f[i].key));
            put(&l, ":", 1);
            if (f[i].type == CG_LOG_STR)
                put_json_str(&l, str, strlen(str));
            else
                puts_(&l, num);
        } else {
            put(&l, " ", 1);
            puts_(&l, f[i].key);
            put(&l, "=", 1);
            if (f[i].type == CG_LOG_STR)
                put_text_value(&l, str);
            else
                puts_(&l, num);
        }
    }
    put_end(&l);
}

const char *cg_log_prog(void)
{
    return log_prog;
}

void cg_fatal(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s: %s\n", log_prog, msg);
    exit(2);
}
