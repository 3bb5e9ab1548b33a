#include "ccgate/opts.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ccgate/err.h"
#include "ccgate/file.h"
#include "ccgate/log.h"

#define CONFIG_MAX_BYTES (1024 * 1024)

static struct cg_opt *find(struct cg_opt *opts, size_t n, const char *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0)
            return &opts[i];
    return NULL;
}

struct cg_opt *cg_opts_get(struct cg_opt *opts, size_t n, const char *name)
{
    return find(opts, n, name, strlen(name));
}

int cg_opts_is_list(const struct cg_opt *o)
{
    size_t len = o->arg_name != NULL ? strlen(o->arg_name) : 0;
    return len > 3 && strcmp(o->arg_name + len - 3, "...") == 0;
}

/* Whether o's config value is any JSON, kept as its text. */
static int is_json(const struct cg_opt *o)
{
    return o->arg_name != NULL && strcmp(o->arg_name, "JSON") == 0;
}

/* A list given again: its value becomes "old,v" (owned). */
static int append(struct cg_opt *o, const char *v)
{
    size_t cap = strlen(o->value) + 1 + strlen(v) + 1;
    char *joined = malloc(cap);
    if (joined == NULL)
        return CG_ECONFIG;
    snprintf(joined, cap, "%s,%s", o->value, v);
    free(o->owned);
    o->owned = joined;
    o->value = joined;
    return 0;
}

int cg_opts_parse(int argc, char **argv, int first, struct cg_opt *opts, size_t n, char *err,
                  size_t errlen)
{
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            snprintf(err, errlen, "unexpected argument '%s' (see --help)", a);
            return CG_ECONFIG;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq != NULL ? (size_t)(eq - name) : strlen(name);
        struct cg_opt *o = find(opts, n, name, len);
        if (o == NULL) {
            snprintf(err, errlen, "unknown flag '--%.*s' (see --help)", (int)len, name);
            return CG_ECONFIG;
        }
        const char *v;
        if (o->arg_name == NULL) {
            if (eq != NULL) {
                snprintf(err, errlen, "flag '--%s' takes no value", o->name);
                return CG_ECONFIG;
            }
            v = "1";
        } else if (eq != NULL) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            snprintf(err, errlen, "flag '--%s' needs a value: %s", o->name, o->arg_name);
            return CG_ECONFIG;
        }
        if (o->value == NULL) {
            o->value = v;
        } else if (!cg_opts_is_list(o)) {
            /* Keeping the first or the last would silently drop what the user wrote. */
            snprintf(err, errlen, "flag '--%s' given more than once%s (see --help)", o->name,
                     o->arg_name != NULL ? ": it takes one value" : "");
            return CG_ECONFIG;
        } else if (append(o, v) < 0) {
            snprintf(err, errlen, "out of memory");
            return CG_ECONFIG;
        }
    }
    return 0;
}

static int set_owned(struct cg_opt *o, const char *v)
{
    char *dup = strdup(v);
    if (dup == NULL)
        return CG_ECONFIG;
    free(o->owned);
    o->owned = dup;
    o->value = dup;
    return 0;
}

/* The environment variable of an option: CCGATE_ and its name in upper case, '-' as '_'. */
static void env_name(const char *name, char *var, size_t cap)
{
    size_t o = (size_t)snprintf(var, cap, "CCGATE_");
    for (const char *p = name; *p != '\0' && o + 1 < cap; p++)
        var[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    var[o] = '\0';
}

/* A boolean's spelling in the environment: 1 on, 0 off, -1 neither. */
static int env_bool(const char *v)
{
    static const char *const on[] = {"1", "true", "yes", "on"}, *const off[] = {"0", "false", "no",
                                                                                "off", ""};
    for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++)
        if (strcasecmp(v, on[i]) == 0)
            return 1;
    for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++)
        if (strcasecmp(v, off[i]) == 0)
            return 0;
    return -1;
}

/* Fills unset options from CCGATE_* variables; off[i] = 1 where a variable turned a
 * boolean off (so that the config file cannot turn it on). */
static int fill_from_env(struct cg_opt *opts, size_t n, unsigned char *off, char *err,
                         size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        char var[96];
        env_name(opts[i].name, var, sizeof(var));
        const char *v = opts[i].value == NULL ? getenv(var) : NULL;
        if (v == NULL)
            continue;
        if (opts[i].arg_name == NULL) {
            int b = env_bool(v);
            if (b < 0) {
                snprintf(err, errlen, "%s: expected 1/0, true/false, yes/no or on/off, got '%s'",
                         var, v);
                return CG_ECONFIG;
            }
            off[i] = b == 0;
            if (b == 0)
                continue;
            v = "1";
        }
        if (set_owned(&opts[i], v) < 0)
            return CG_ECONFIG;
    }
    return 0;
}

/* 1 for the options whose value names a file or folder (by their argument's name). */
static int is_path(const struct cg_opt *o)
{
    return o->arg_name != NULL &&
           (strcmp(o->arg_name, "FILE") == 0 || strcmp(o->arg_name, "DIR") == 0 ||
            strcmp(o->arg_name, "PATH") == 0);
}

/* Sets o from a config file's value: a relative path is taken from the config file's
 * folder (dir, dir_len bytes, "" for the working directory), as users write configs. */
static int set_from_config(struct cg_opt *o, const char *v, const char *dir, size_t dir_len)
{
    if (!is_path(o) || v[0] == '/' || dir_len == 0)
        return set_owned(o, v);
    size_t cap = dir_len + 1 + strlen(v) + 1;
    char *joined = malloc(cap);
    if (joined == NULL)
        return CG_ECONFIG;
    snprintf(joined, cap, "%.*s/%s", (int)dir_len, dir, v);
    int rc = set_owned(o, joined);
    free(joined);
    return rc;
}

/* A list's config array joined with ',' (caller frees); NULL unless every element is a
 * non-empty string without ','. */
static char *join_strings(const json_t *arr)
{
    size_t cap = 1, i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        const char *s = json_string_value(e);
        if (s == NULL || s[0] == '\0' || strchr(s, ',') != NULL)
            return NULL;
        cap += strlen(s) + 1;
    }
    if (json_array_size(arr) == 0)
        return NULL;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    json_array_foreach(arr, i, e)
    {
        o += (size_t)snprintf(out + o, cap - o, "%s%s", i > 0 ? "," : "", json_string_value(e));
    }
    return out;
}

static int fill_from_config(struct cg_opt *opts, size_t n, const unsigned char *off,
                            const char *path, char *err, size_t errlen)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
    json_error_t jerr;
    uint8_t *text = NULL;
    size_t len = 0;
    int rd = cg_file_read(path, CONFIG_MAX_BYTES, &text, &len);
    if (rd == CG_ELIMIT) {
        snprintf(err, errlen, "config '%s': expected at most %d bytes", path, CONFIG_MAX_BYTES);
        return CG_ECONFIG;
    }
    if (rd < 0) {
        snprintf(err, errlen, "config '%s': cannot open: %s", path, cg_strerror(rd));
        return CG_ECONFIG;
    }
    json_t *root = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (root == NULL || !json_is_object(root)) {
        snprintf(err, errlen, "config '%s': expected a JSON object (line %d: %s)", path,
                 root == NULL ? jerr.line : 1, root == NULL ? jerr.text : "not an object");
        json_decref(root);
        return CG_ECONFIG;
    }
    int rc = 0;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val)
    {
        struct cg_opt *o = find(opts, n, key, strlen(key));
        if (o == NULL || strcmp(key, "config") == 0) {
            snprintf(err, errlen, "config '%s': unknown key '%s'", path, key);
            rc = CG_ECONFIG;
            break;
        }
        if (o->value != NULL || off[o - opts])
            continue; /* the command line and environment win */
        char num[32];
        const char *v = NULL;
        char *joined = NULL; /* a JSON option's text, or a list's values */
        if (is_json(o)) {
            v = joined = json_dumps(val, JSON_COMPACT | JSON_ENCODE_ANY);
        } else if (cg_opts_is_list(o) && json_is_array(val)) {
            v = joined = join_strings(val);
        } else if (o->arg_name != NULL && json_is_string(val)) {
            v = json_string_value(val);
        } else if (o->arg_name != NULL && json_is_integer(val) && json_integer_value(val) >= 0) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(val));
            v = num;
        } else if (json_is_boolean(val) && o->arg_name == NULL) {
            if (json_is_false(val))
                continue;
            v = "1";
        }
        if (v == NULL) {
            snprintf(err, errlen, "config '%s': key '%s': expected %s", path, key,
                     o->arg_name == NULL  ? "a boolean"
                     : cg_opts_is_list(o) ? "a string or an array of non-empty strings"
                                          : "a string or a non-negative integer");
            rc = CG_ECONFIG;
            break;
        }
        rc = set_from_config(o, v, path, dir_len);
        free(joined);
        if (rc < 0)
            break;
    }
    json_decref(root);
    return rc;
}

int cg_opts_fill(struct cg_opt *opts, size_t n, const char *path, char *err, size_t errlen)
{
    unsigned char *off = calloc(n + 1, 1);
    if (off == NULL) {
        snprintf(err, errlen, "out of memory");
        return CG_ECONFIG;
    }
    int rc = fill_from_env(opts, n, off, err, errlen);
    struct cg_opt *config = find(opts, n, "config", 6);
    if (path == NULL && config != NULL)
        path = config->value; /* --config, else CCGATE_CONFIG */
    if (rc == 0 && path != NULL)
        rc = fill_from_config(opts, n, off, path, err, errlen);
    free(off);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        if (opts[i].value == NULL)
            opts[i].value = opts[i].def;
    return 0;
}

int cg_opts_uint(const struct cg_opt *o, unsigned long min, unsigned long max, unsigned long *out,
                 char *err, size_t errlen)
{
    char *end;
    const char *v = o->value;
    unsigned long x = 0;
    errno = 0;
    if (v != NULL && *v >= '0' && *v <= '9')
        x = strtoul(v, &end, 10);
    /* ERANGE: strtoul clamped to ULONG_MAX, which max may allow. */
    if (v == NULL || *v < '0' || *v > '9' || *end != '\0' || errno == ERANGE || x < min ||
        x > max) {
        snprintf(err, errlen, "--%s: expected an integer from %lu to %lu, got '%s'", o->name, min,
                 max, v != NULL ? v : "");
        return CG_ECONFIG;
    }
    *out = x;
    return 0;
}

unsigned long cg_opts_uint_or_exit(const struct cg_opt *o, unsigned long min, unsigned long max)
{
    char err[256];
    unsigned long v;
    if (cg_opts_uint(o, min, max, &v, err, sizeof(err)) < 0)
        cg_fatal("%s", err);
    return v;
}

int cg_opts_onoff_or_exit(const struct cg_opt *o)
{
    const char *v = o->value != NULL ? o->value : "";
    if (strcmp(v, "on") == 0)
        return 1;
    if (strcmp(v, "off") != 0)
        cg_fatal("--%s: expected on or off, got '%s'", o->name, v);
    return 0;
}

/*
 * CCGATE_* variables that name no option of this binary: a warning each, not an error,
 * because one environment (a compose file, a shell profile) is often shared by the
 * client, the server and the worker, each ignoring the others' variables.
 */
static void warn_unknown_env(const struct cg_opt *opts, size_t n)
{
    extern char **environ;
    for (char **e = environ; *e != NULL; e++) {
        if (strncmp(*e, "CCGATE_", 7) != 0)
            continue;
        size_t len = strcspn(*e, "=");
        size_t i;
        for (i = 0; i < n; i++) {
            char var[96];
            env_name(opts[i].name, var, sizeof(var));
            if (strlen(var) == len && strncmp(var, *e, len) == 0)
                break;
        }
        if (i == n)
            cg_log_warn("config.env", "var=%.*s err=\"no such option here: ignored (see --help)\"",
                        (int)len, *e);
    }
}

int cg_opts_startup(const char *prog, int argc, char **argv, struct cg_opt *opts, size_t n,
                    const char *usage, const char *summary)
{
    char err[512];
    cg_log_init(prog, CG_LOG_TEXT, CG_LOG_INFO);
    if (cg_opts_parse(argc, argv, 1, opts, n, err, sizeof(err)) < 0)
        cg_fatal("%s", err);
    if (cg_opts_get(opts, n, "help")->value != NULL) {
        cg_opts_usage(stdout, usage, summary, opts, n);
        return 1;
    }
    if (cg_opts_get(opts, n, "version")->value != NULL) {
        printf("%s %s\n", prog, CCGATE_VERSION);
        return 1;
    }
    if (cg_opts_fill(opts, n, NULL, err, sizeof(err)) < 0)
        cg_fatal("%s", err);
    enum cg_log_format fmt;
    const char *f = cg_opts_get(opts, n, "log-format")->value;
    if (cg_log_parse_format(f, &fmt) < 0)
        cg_fatal("--log-format: expected text or json, got '%s'", f);
    enum cg_log_level level;
    const char *l = cg_opts_get(opts, n, "log-level")->value;
    if (cg_log_parse_level(l, &level) < 0)
        cg_fatal("--log-level: expected error, warn, info or debug, got '%s'", l);
    cg_log_init(prog, fmt, level);
    warn_unknown_env(opts, n);
    return 0;
}

void cg_opts_usage(FILE *f, const char *usage, const char *summary, const struct cg_opt *opts,
                   size_t n)
{
    fprintf(f, "usage: %s\n\n%s\n\noptions:\n", usage, summary);
    for (size_t i = 0; i < n; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s%s", opts[i].name, opts[i].arg_name ? " " : "",
                 opts[i].arg_name ? opts[i].arg_name : "");
        fprintf(f, "  %-28s %s", left, opts[i].help);
        if (opts[i].def != NULL)
            fprintf(f, " (default: %s)", opts[i].def);
        fputc('\n', f);
    }
}

void cg_opts_free(struct cg_opt *opts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(opts[i].owned);
        opts[i].owned = NULL;
    }
}
