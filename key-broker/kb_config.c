/* ccgate-kbs configuration: resources, their release policies, the audit log path. */
#include "kb_config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "ccgate/err.h"
#include "ccgate/file.h"
#include "ccgate/ratls.h"
#include "ccgate/tsm.h"

#define CONFIG_MAX (1024 * 1024)

/* path, or path taken from dir when relative; caller frees. */
static char *resolve(const char *dir, const char *path)
{
    if (path[0] == '/' || dir[0] == '\0')
        return strdup(path);
    size_t n = strlen(dir) + 1 + strlen(path) + 1;
    char *s = malloc(n);
    if (s != NULL)
        snprintf(s, n, "%s/%s", dir, path);
    return s;
}

int kb_resource_id_ok(const char *id)
{
    size_t n = strlen(id), parts = 0, len = 0;
    if (n == 0 || n > KB_RESOURCE_ID_MAX)
        return 0;
    for (size_t i = 0; i <= n; i++) {
        char ch = id[i];
        if (ch == '/' || ch == '\0') {
            if (len == 0 || (len == 1 && id[i - 1] == '.') ||
                (len == 2 && id[i - 1] == '.' && id[i - 2] == '.'))
                return 0;
            parts++;
            len = 0;
            continue;
        }
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '_' || ch == '-'))
            return 0;
        len++;
    }
    return parts == 3;
}

int kb_policy_parse(const char *text, size_t len, struct cg_policy *p, int *has_min,
                    uint64_t *min_version, char *err, size_t errlen)
{
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    char *rest = NULL;
    int rc = CG_ECONFIG;
    *has_min = 0;
    *min_version = 0;
    if (!json_is_object(j)) {
        cg_errf(err, errlen, CG_ECONFIG, "line %d: %s", je.line,
                j == NULL ? je.text : "expected an object");
        goto out;
    }
    json_t *model = json_object_get(j, "model");
    if (model != NULL) {
        const char *key;
        json_t *v;
        if (!json_is_object(model)) {
            cg_errf(err, errlen, CG_ECONFIG, "model: expected an object {\"min_version\": N}");
            goto out;
        }
        json_object_foreach(model, key, v)
        {
            if (strcmp(key, "min_version") != 0) {
                cg_errf(err, errlen, CG_ECONFIG, "model.%s: unknown key (expected min_version)",
                        key);
                goto out;
            }
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                cg_errf(err, errlen, CG_ECONFIG,
                        "model.min_version: expected a non-negative integer");
                goto out;
            }
            *has_min = 1;
            *min_version = (uint64_t)json_integer_value(v);
        }
        json_object_del(j, "model");
    }
    rest = json_dumps(j, JSON_COMPACT);
    if (rest == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    rc = cg_policy_parse(rest, strlen(rest), p, err, errlen);
    if (rc == 0)
        rc = cg_sha256((const uint8_t *)text, len, p->digest);
out:
    free(rest);
    json_decref(j);
    return rc;
}

static int load_resource(const char *dir, const char *id, json_t *spec, struct kb_resource *r,
                         char *err, size_t errlen)
{
    char perr[256];
    char *file = NULL, *pol = NULL, *ptxt = NULL;
    size_t plen;
    int rc = CG_ECONFIG;
    const char *key;
    json_t *v;
    if (!kb_resource_id_ok(id))
        return cg_errf(err, errlen, CG_ECONFIG,
                       "resources.%.64s: expected REPO/TYPE/TAG of [A-Za-z0-9._-]", id);
    snprintf(r->id, sizeof(r->id), "%s", id);
    if (!json_is_object(spec))
        return cg_errf(err, errlen, CG_ECONFIG,
                       "resources.%s: expected {\"file\": ..., \"policy\": ...}", id);
    json_object_foreach(spec, key, v)
    {
        if (strcmp(key, "file") != 0 && strcmp(key, "policy") != 0)
            return cg_errf(err, errlen, CG_ECONFIG, "resources.%s.%s: unknown key", id, key);
        if (!json_is_string(v))
            return cg_errf(err, errlen, CG_ECONFIG, "resources.%s.%s: expected a path", id, key);
    }
    const char *f = json_string_value(json_object_get(spec, "file"));
    const char *p = json_string_value(json_object_get(spec, "policy"));
    if (f == NULL || p == NULL)
        return cg_errf(err, errlen, CG_ECONFIG, "resources.%s: both file and policy are required",
                       id);
    file = resolve(dir, f);
    pol = resolve(dir, p);
    r->policy = calloc(1, sizeof(*r->policy));
    if (file == NULL || pol == NULL || r->policy == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    rc = cg_file_read(file, KB_MAX_SECRET, &r->secret, &r->secret_len);
    if (rc != 0) {
        cg_errf(err, errlen, CG_ECONFIG, "resources.%s.file %s: %s", id, file,
                rc == CG_ELIMIT ? "larger than 64 KiB" : strerror(-rc));
        rc = CG_ECONFIG;
        goto out;
    }
    rc = cg_file_read(pol, 256 * 1024, (uint8_t **)&ptxt, &plen);
    if (rc != 0) {
        cg_errf(err, errlen, CG_ECONFIG, "resources.%s.policy %s: %s", id, pol,
                rc == CG_ELIMIT ? "larger than 256 KiB" : strerror(-rc));
        rc = CG_ECONFIG;
        goto out;
    }
    rc = kb_policy_parse(ptxt, plen, r->policy, &r->has_min_version, &r->min_version, perr,
                         sizeof(perr));
    if (rc != 0) {
        cg_errf(err, errlen, CG_ECONFIG, "resources.%s.policy %s: %s", id, pol, perr);
        goto out;
    }
    if (r->has_min_version) {
        /* The minimum travels inside the released JSON object (a sealing key's JWK). */
        json_t *s = json_loadb((const char *)r->secret, r->secret_len, 0, NULL);
        int obj = json_is_object(s);
        json_decref(s);
        if (!obj) {
            rc = cg_errf(err, errlen, CG_ECONFIG,
                         "resources.%s: model.min_version needs a JSON object (a key's JWK) in "
                         "%s",
                         id, file);
            goto out;
        }
    }
out:
    free(file);
    free(pol);
    free(ptxt);
    return rc;
}

int kb_config_load(const char *path, struct kb_config *c, char *err, size_t errlen)
{
    char *text = NULL, dir[4096];
    size_t len;
    json_error_t je;
    json_t *j = NULL;
    int rc;
    memset(c, 0, sizeof(*c));
    c->session_timeout_s = 300;
    c->token_lifetime_s = 300;
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
    else
        dir[0] = '\0';
    rc = cg_file_read(path, CONFIG_MAX, (uint8_t **)&text, &len);
    if (rc != 0)
        return cg_errf(err, errlen, CG_ECONFIG, "--config %s: %s", path,
                       rc == CG_ELIMIT ? "larger than 1 MiB" : strerror(-rc));
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    rc = CG_ECONFIG;
    if (!json_is_object(j)) {
        cg_errf(err, errlen, CG_ECONFIG, "--config %s: line %d: %s", path, je.line,
                j == NULL ? je.text : "expected an object");
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(j, key, v)
    {
        if (strcmp(key, "resources") == 0)
            continue;
        if (strcmp(key, "tdx_collateral") == 0) {
            char *d = json_is_string(v) ? resolve(dir, json_string_value(v)) : NULL;
            struct stat st;
            int lrc = d != NULL && stat(d, &st) == 0 && S_ISDIR(st.st_mode)
                          ? cg_tsm_tdx_collateral_load(d, &c->tdx_collateral)
                          : CG_ECONFIG;
            free(d);
            if (lrc != 0) {
                cg_errf(err, errlen, CG_ECONFIG,
                        "tdx_collateral: expected a folder with tcb_info.json, qe_identity.json, "
                        "tcb_signing_chain.pem (and CRLs), as ccgate-server's --tdx-collateral");
                goto out;
            }
        } else if (strcmp(key, "audit_log") == 0 || strcmp(key, "tls_cert") == 0 ||
                   strcmp(key, "tls_key") == 0) {
            if (!json_is_string(v)) {
                cg_errf(err, errlen, CG_ECONFIG, "%s: expected a path", key);
                goto out;
            }
            char **dst = key[0] == 'a' ? &c->audit_log : key[4] == 'c' ? &c->tls_cert : &c->tls_key;
            *dst = resolve(dir, json_string_value(v));
        } else if (strcmp(key, "session_timeout_s") == 0 || strcmp(key, "token_lifetime_s") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 86400) {
                cg_errf(err, errlen, CG_ECONFIG, "%s: expected seconds from 1 to 86400", key);
                goto out;
            }
            *(key[0] == 's' ? &c->session_timeout_s : &c->token_lifetime_s) =
                (unsigned)json_integer_value(v);
        } else {
            cg_errf(err, errlen, CG_ECONFIG,
                    "%s: unknown key (expected resources, audit_log, tls_cert, tls_key, "
                    "session_timeout_s, token_lifetime_s, tdx_collateral)",
                    key);
            goto out;
        }
    }
    if (c->audit_log == NULL) {
        cg_errf(err, errlen, CG_ECONFIG, "audit_log: required (every decision is recorded)");
        goto out;
    }
    if ((c->tls_cert == NULL) != (c->tls_key == NULL)) {
        cg_errf(err, errlen, CG_ECONFIG, "tls_cert and tls_key: give both or neither");
        goto out;
    }
    json_t *res = json_object_get(j, "resources");
    if (!json_is_object(res) || json_object_size(res) == 0 ||
        json_object_size(res) > KB_MAX_RESOURCES) {
        cg_errf(err, errlen, CG_ECONFIG, "resources: expected an object of 1 to %d resources",
                KB_MAX_RESOURCES);
        goto out;
    }
    c->res = calloc(json_object_size(res), sizeof(*c->res));
    if (c->res == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    json_object_foreach(res, key, v)
    {
        rc = load_resource(dir, key, v, &c->res[c->n_res++], err, errlen);
        if (rc != 0)
            goto out;
    }
    rc = 0;
out:
    free(text);
    json_decref(j);
    if (rc != 0)
        kb_config_free(c);
    return rc;
}

const struct kb_resource *kb_config_find(const struct kb_config *c, const char *id)
{
    for (size_t i = 0; i < c->n_res; i++)
        if (strcmp(c->res[i].id, id) == 0)
            return &c->res[i];
    return NULL;
}

void kb_config_free(struct kb_config *c)
{
    for (size_t i = 0; i < c->n_res; i++) {
        if (c->res[i].secret != NULL) {
            explicit_bzero(c->res[i].secret, c->res[i].secret_len);
            free(c->res[i].secret);
        }
        free(c->res[i].policy);
    }
    free(c->res);
    free(c->audit_log);
    free(c->tls_cert);
    free(c->tls_key);
    cg_evidence_clear(&c->tdx_collateral);
    memset(c, 0, sizeof(*c));
}
