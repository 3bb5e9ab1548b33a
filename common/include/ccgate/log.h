#ifndef CCGATE_LOG_H
#define CCGATE_LOG_H

#include <stddef.h>

/*
 * One line per event on stderr. Text: `2026-11-27T04:50:00.123Z info ccgate-client event k=v ...`;
 * JSON: {"ts":..., "level":..., "prog":..., "event":..., "k": v, ...}: each key=value pair a
 * top-level field (numbers as numbers), text that is no pair in "msg". Never log a payload
 * byte or a credential. Thread-safe (one write(2) per line, at most 4096 bytes: longer
 * values are cut, the line stays valid JSON).
 */
enum cg_log_format { CG_LOG_TEXT, CG_LOG_JSON };
enum cg_log_level { CG_LOG_DEBUG, CG_LOG_INFO, CG_LOG_WARN, CG_LOG_ERROR };

/* Sets the program name, the format and the lowest level printed (default: info, text). */
void cg_log_init(const char *prog, enum cg_log_format format, enum cg_log_level min_level);

/* Parses "text" or "json"; returns 0 or CG_ECONFIG. */
int cg_log_parse_format(const char *s, enum cg_log_format *out);

/* Parses "error", "warn", "info" or "debug"; returns 0 or CG_ECONFIG. */
int cg_log_parse_level(const char *s, enum cg_log_level *out);

/* Logs one event; fmt renders the message: space-separated key=value pairs, a value with
 * spaces in double quotes (key="a b"); in JSON the pairs become fields (see above). */
void cg_log(enum cg_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define cg_log_info(...) cg_log(CG_LOG_INFO, __VA_ARGS__)
#define cg_log_warn(...) cg_log(CG_LOG_WARN, __VA_ARGS__)
#define cg_log_error(...) cg_log(CG_LOG_ERROR, __VA_ARGS__)
#define cg_log_debug(...) cg_log(CG_LOG_DEBUG, __VA_ARGS__)

/* One field of a structured log line: a key and a typed value. */
enum cg_log_type { CG_LOG_STR, CG_LOG_INT, CG_LOG_UINT, CG_LOG_DBL };
struct cg_log_field {
    const char *key;
    enum cg_log_type type;
    const char *s; /* CG_LOG_STR; NULL logs "" */
    long long i;
    unsigned long long u;
    double d; /* printed with 3 decimals (milliseconds to the microsecond) */
};

#define CG_LF_STR(k, v) ((struct cg_log_field){.key = (k), .type = CG_LOG_STR, .s = (v)})
#define CG_LF_INT(k, v) ((struct cg_log_field){.key = (k), .type = CG_LOG_INT, .i = (long long)(v)})
#define CG_LF_UINT(k, v)                                                                           \
    ((struct cg_log_field){.key = (k), .type = CG_LOG_UINT, .u = (unsigned long long)(v)})
#define CG_LF_DBL(k, v) ((struct cg_log_field){.key = (k), .type = CG_LOG_DBL, .d = (double)(v)})

/*
 * Logs one event with typed fields: text `... event k=v k2="two words"` (a string value is
 * quoted when it holds a space, '=', a quote or a backslash, which are escaped), JSON
 * `{..., "event":..., "k": "v", "n": 12}`. No parsing, so any value is safe; the structured
 * form request logs (method, path, status, duration_ms, ...) use.
 */
void cg_log_fields(enum cg_log_level level, const char *event, const struct cg_log_field *f,
                   size_t n);

/* cg_log_fields() with the fields as arguments: cg_logf(CG_LOG_INFO, "req", CG_LF_STR(...)). */
#define cg_logf(level, event, ...)                                                                 \
    do {                                                                                           \
        const struct cg_log_field cg__fields[] = {__VA_ARGS__};                                    \
        cg_log_fields((level), (event), cg__fields, sizeof(cg__fields) / sizeof(cg__fields[0]));   \
    } while (0)

/* The program name given to cg_log_init() ("ccgate-client", ...). */
const char *cg_log_prog(void);

/* Start-up only: prints "prog: message" on stderr and exits with status 2. */
void cg_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
