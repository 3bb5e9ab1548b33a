#ifndef CCGATE_LOG_H
#define CCGATE_LOG_H

/*
 * One line per event on stderr. Text: `2026-11-27T04:50:00.123Z info ccgate-client event k=v ...`;
 * JSON: {"ts":..., "level":..., "prog":..., "event":..., "msg":"k=v ..."}. Never log a payload
 * byte or a credential. Thread-safe (one write(2) per line).
 */
enum cg_log_format { CG_LOG_TEXT, CG_LOG_JSON };
enum cg_log_level { CG_LOG_DEBUG, CG_LOG_INFO, CG_LOG_WARN, CG_LOG_ERROR };

/* Sets the program name, the format and the lowest level printed (default: info, text). */
void cg_log_init(const char *prog, enum cg_log_format format, enum cg_log_level min_level);

/* Parses "text" or "json"; returns 0 or CG_ECONFIG. */
int cg_log_parse_format(const char *s, enum cg_log_format *out);

/* Parses "error", "warn", "info" or "debug"; returns 0 or CG_ECONFIG. */
int cg_log_parse_level(const char *s, enum cg_log_level *out);

/* Logs one event; fmt renders the message (space-separated key=value pairs by convention). */
void cg_log(enum cg_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define cg_log_info(...) cg_log(CG_LOG_INFO, __VA_ARGS__)
#define cg_log_warn(...) cg_log(CG_LOG_WARN, __VA_ARGS__)
#define cg_log_error(...) cg_log(CG_LOG_ERROR, __VA_ARGS__)
#define cg_log_debug(...) cg_log(CG_LOG_DEBUG, __VA_ARGS__)

/* Start-up only: prints "prog: message" on stderr and exits with status 2. */
void cg_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
