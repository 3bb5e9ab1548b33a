#include "tl_cli.h"

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
