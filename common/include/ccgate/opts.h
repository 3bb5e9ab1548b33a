#ifndef CCGATE_OPTS_H
#define CCGATE_OPTS_H

#include <stddef.h>
#include <stdio.h>

/*
 * Options of a binary, from three sources in this order of precedence: command-line flags
 * (--name VALUE or --name=VALUE), CCGATE_<NAME> environment variables (dashes become
 * underscores), and the JSON config file (keys = option names, string/number/bool values).
 *
 * An option takes one value: given twice on the command line it is an error naming it. Two
 * kinds are marked by their arg_name:
 * - a list ("HOST:PORT..."): may be repeated; its value is the values joined with ',' in
 *   order (so "--server a --server b" equals "--server a,b"); in the config a string or an
 *   array of strings;
 * - "JSON": in the config any JSON value, kept as its compact JSON text for the binary to
 *   read (e.g. the client's list of forwards).
 */
struct cg_opt {
    const char *name;     /* long flag name without dashes */
    const char *arg_name; /* NULL for a flag that takes no value */
    const char *help;
    const char *def;   /* default value, or NULL */
    const char *value; /* result: NULL when unset and without default */
    char *owned;       /* storage for a value from the environment or config */
};

/*
 * Parses argv[first..argc) into opts; a flag without value is set to "1". Positional
 * arguments and an option given twice (unless a list) are errors. Returns 0 or CG_ECONFIG
 * with err naming the flag. A repeated list's joined value is owned (cg_opts_free).
 */
int cg_opts_parse(int argc, char **argv, int first, struct cg_opt *opts, size_t n, char *err,
                  size_t errlen);

/*
 * Fills unset options from CCGATE_* variables, then from the config file at path (NULL: the
 * value of the option "config" once the environment is read, so CCGATE_CONFIG works), then
 * from defaults. A boolean's variable may say 1/0, true/false, yes/no, on/off (0 keeps it
 * off whatever the config says). In the config, relative values of FILE, DIR and PATH
 * options are taken from the config file's folder. Unknown config keys and wrong types are
 * errors naming the key.
 */
int cg_opts_fill(struct cg_opt *opts, size_t n, const char *path, char *err, size_t errlen);

/* Whether o is a list option (its arg_name ends with "..."). */
int cg_opts_is_list(const struct cg_opt *o);

/* The option named name (must exist). */
struct cg_opt *cg_opts_get(struct cg_opt *opts, size_t n, const char *name);

/* Parses an unsigned integer option within [min, max]; CG_ECONFIG with err otherwise. */
int cg_opts_uint(const struct cg_opt *o, unsigned long min, unsigned long max, unsigned long *out,
                 char *err, size_t errlen);

/* cg_opts_uint() at start-up: on a bad value prints the reason and exits with status 2. */
unsigned long cg_opts_uint_or_exit(const struct cg_opt *o, unsigned long min, unsigned long max);

/* An "on|off" option at start-up: 1 or 0; anything else prints the reason and exits with
 * status 2. */
int cg_opts_onoff_or_exit(const struct cg_opt *o);

/*
 * The start-up every binary shares: parses argv, answers --help and --version on stdout,
 * fills the rest from the environment and --config, and sets up logging from --log-format
 * and --log-level (the table must have "help", "version", "config", "log-format" and
 * "log-level"); then warns about each CCGATE_* variable that names none of the options.
 * Returns 1 when the
 * process should exit 0 (help or version shown), 0 to go on; exits 2 on bad input.
 */
int cg_opts_startup(const char *prog, int argc, char **argv, struct cg_opt *opts, size_t n,
                    const char *usage, const char *summary);

/* Prints "usage: <usage>" and one line per option. */
void cg_opts_usage(FILE *f, const char *usage, const char *summary, const struct cg_opt *opts,
                   size_t n);

/* Frees the values taken from the environment or config. */
void cg_opts_free(struct cg_opt *opts, size_t n);

#endif
