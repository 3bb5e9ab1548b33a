#include "tl_cli.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/file.h"

int tl_cli_read_file(const char *prog, const char *path, size_t max, struct tl_file *out)
{
    uint8_t *data = NULL;
    out->p = NULL;
    out->n = 0;
    int rc = cg_file_read(path, max, &data, &out->n);
    if (rc == CG_ELIMIT) {
        fprintf(stderr, "%s: %s: larger than %zu bytes\n", prog, path, max);
        return -1;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, cg_strerror(rc));
        return -1;
    }
    out->p = (char *)data;
    return 0;
}

const char *tl_cli_opt_value(int argc, char **argv, int *i, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != 0 || *i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

void tl_cli_put_hex(json_t *o, const char *key, const uint8_t *p, size_t n)
{
    char hex[2 * 64 + 1];
    cg_hex(hex, sizeof(hex), p, n);
    json_object_set_new(o, key, json_string(hex));
}

void tl_cli_put_time(json_t *o, const char *key, time_t t)
{
    struct tm tm;
    char s[32];
    gmtime_r(&t, &tm);
    strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(o, key, json_string(s));
}

json_t *tl_cli_rejection(const struct cg_verdict *v)
{
    json_t *o = json_object();
    json_object_set_new(o, "verified", json_false());
    json_object_set_new(o, "check", json_string(v->check));
    json_object_set_new(o, "expected", json_string(v->expected));
    json_object_set_new(o, "actual", json_string(v->actual));
    return o;
}

int tl_cli_print(json_t *o)
{
    if (json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0 ||
        fputc('\n', stdout) == EOF || fflush(stdout) != 0)
        return -1;
    return 0;
}

void tl_cli_bad_arg(const char *prog, const char *arg, const char *const *names)
{
    if (strncmp(arg, "--", 2) != 0) {
        fprintf(stderr, "%s: unexpected argument '%s' (see %s --help)\n", prog, arg, prog);
        return;
    }
    size_t len = strcspn(arg, "=");
    for (; *names != NULL; names++) {
        if (strlen(*names) == len && strncmp(arg, *names, len) == 0) {
            fprintf(stderr, "%s: flag '%.*s' needs a value (see %s --help)\n", prog, (int)len, arg,
                    prog);
            return;
        }
    }
    fprintf(stderr, "%s: unknown flag '%.*s' (see %s --help)\n", prog, (int)len, arg, prog);
}

int tl_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

/* n decimal digits at s into *out; 0 or -1. */
static int digits(const char *s, int n, int *out)
{
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        x = x * 10 + (s[i] - '0');
    }
    *out = x;
    return 0;
}

int tl_cli_time_parse(const char *s, time_t *out)
{
    int y, mo, d, h, mi, se, oh = 0, om = 0;
    if (s == NULL || strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) ||
        s[7] != '-' || digits(s + 8, 2, &d) || strchr("Tt ", s[10]) == NULL ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' ||
        digits(s + 17, 2, &se))
        return -1;
    const char *p = s + 19;
    if (*p == '.') {
        if (!isdigit((unsigned char)p[1]))
            return -1;
        for (p++; isdigit((unsigned char)*p); p++)
            ;
    }
    int sign = 0;
    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == 0) {
        sign = 0;
    } else if ((p[0] == '+' || p[0] == '-') && digits(p + 1, 2, &oh) == 0) {
        sign = p[0] == '+' ? 1 : -1;
        const char *m = p[3] == ':' ? p + 4 : p + 3;
        if (digits(m, 2, &om) != 0 || m[2] != 0 || oh > 23 || om > 59)
            return -1;
    } else {
        return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return -1;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se == 60 ? 59 : se};
    time_t t = timegm(&tm);
    struct tm back;
    /* timegm() normalizes (Feb 31 -> Mar 3): only dates that exist are accepted. */
    if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL || back.tm_mday != d)
        return -1;
    *out = t - sign * (oh * 3600 + om * 60);
    return 0;
}
