#ifndef TL_CLI_H
#define TL_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "ccgate/err.h"

/* Helpers shared by the `ccgate` subcommands. */

struct tl_file {
    char *p; /* NUL-terminated; caller frees */
    size_t n;
};

/* Reads a whole file of at most max bytes; 0, or -1 after a message "PROG: PATH: why". */
int tl_cli_read_file(const char *prog, const char *path, size_t max, struct tl_file *out);

/* The value of option argv[*i] ("--x F" or "--x=F"), advancing *i; NULL if not that option. */
const char *tl_cli_opt_value(int argc, char **argv, int *i, const char *name);

/*
 * Says on stderr why argv[i] is none of a command's options (names: "--x" spellings,
 * NULL-terminated): "PROG: flag '--x' needs a value" or "PROG: unknown flag '--y'", or
 * "unexpected argument" for a second positional one, then "(see PROG --help)".
 */
void tl_cli_bad_arg(const char *prog, const char *arg, const char *const *names);

/* 1 when argv[1..argc) asks for help (--help or -h). */
int tl_cli_wants_help(int argc, char **argv);

/*
 * Parses an RFC 3339 date-time: "2026-11-27T05:00:00Z", with an offset ("+02:00",
 * "-0500"), fractional seconds (dropped), 't'/'z' or a space for 'T'. 0, or -1.
 */
int tl_cli_time_parse(const char *s, time_t *out);

/* Sets key to the lower-case hex of p[0..n) (n at most 64). */
void tl_cli_put_hex(json_t *o, const char *key, const uint8_t *p, size_t n);

/* Sets key to t as RFC 3339 UTC ("2026-11-27T05:00:00Z"). */
void tl_cli_put_time(json_t *o, const char *key, time_t t);

/* {"verified": false, "check", "expected", "actual"}; caller owns the reference. */
json_t *tl_cli_rejection(const struct cg_verdict *v);

/* Prints o on stdout, indented; 0 or -1. */
int tl_cli_print(json_t *o);

#endif
