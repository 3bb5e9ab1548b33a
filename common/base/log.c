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

/* Appends s to out as a JSON string body (without quotes); returns the new length. JSON
 * must be UTF-8, so an invalid byte (or a sequence cut by the message limit) becomes
 * U+FFFD. */
static size_t json_escape(char *out, size_t o, size_t cap, const char *s)
{
    while (*s != '\0' && o + 7 < cap) {
        unsigned char c = (unsigned char)*s;
        size_t n = utf8_len((const unsigned char *)s);
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else if (n == 0) {
            o += (size_t)snprintf(out + o, cap - o, "\\ufffd");
        } else {
            memcpy(out + o, s, n);
            o += n;
            s += n;
            continue;
        }
        s++;
    }
    return o;
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

    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    size_t w = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(when + w, sizeof(when) - w, ".%03ldZ", ts.tv_nsec / 1000000);

    char line[4096];
    size_t o;
    if (log_format == CG_LOG_JSON) {
        o = (size_t)snprintf(line, sizeof(line),
                             "{\"ts\":\"%s\",\"level\":\"%s\",\"prog\":\"%s\",\"event\":\"", when,
                             level_names[level], log_prog);
        o = json_escape(line, o, sizeof(line) - 16, event);
        o += (size_t)snprintf(line + o, sizeof(line) - o, "\",\"msg\":\"");
        o = json_escape(line, o, sizeof(line) - 8, msg);
        o += (size_t)snprintf(line + o, sizeof(line) - o, "\"}\n");
    } else {
        int n = snprintf(line, sizeof(line) - 1, "%s %s %s %s %s", when, level_names[level],
                         log_prog, event, msg);
        o = n < 0 ? 0 : (size_t)n;
        if (o > sizeof(line) - 2)
            o = sizeof(line) - 2;
        line[o++] = '\n';
    }
    (void)!write(STDERR_FILENO, line, o);
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
