#include "ccgate/policy.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/file.h"
#include "ccgate/log.h"

#define PATH_CAP 128

static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes "path: message" into err and returns CG_ECONFIG. */
static int fail(char *err, size_t errlen, const char *path, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        char msg[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(err, errlen, "%s: %s", path, msg);
    }
    return CG_ECONFIG;
}

static void subpath(char *out, const char *path, const char *key)
{
    /* A path only names a place in an error message: a long one is cut, not refused. */
    if (snprintf(out, PATH_CAP, "%s%s%.64s", path, path[0] != '\0' ? "." : "", key) >= PATH_CAP)
        cg_log(CG_LOG_DEBUG, "policy", "path cut to %d bytes", PATH_CAP - 1);
}

/* Every key of obj must be one of keys (NULL-terminated). */
static int only_keys(json_t *obj, const char *path, const char *const *keys, char *err,
                     size_t errlen)
{
    const char *key;
    json_t *val;
    json_object_foreach(obj, key, val)
    {
        const char *const *k = keys;
        while (*k != NULL && strcmp(*k, key) != 0)
            k++;
        if (*k == NULL) {
            char p[PATH_CAP];
            subpath(p, path, key);
            return fail(err, errlen, p, "unknown key");
        }
    }
    return 0;
}

/* An optional object member; *out NULL when absent. Present but not an object is an error. */
static int get_object(json_t *obj, const char *path, const char *key, json_t **out, char *err,
                      size_t errlen)
{
    char p[PATH_CAP];
    *out = json_object_get(obj, key);
    subpath(p, path, key);
    if (*out != NULL && !json_is_object(*out))
        return fail(err, errlen, p, "expected an object");
    return 0;
}

static int get_bool(json_t *obj, const char *path, const char *key, int *out, char *err,
                    size_t errlen)
{
    char p[PATH_CAP];
    json_t *j = json_object_get(obj, key);
    if (j == NULL)
        return 0;
    subpath(p, path, key);
    if (!json_is_boolean(j))
        return fail(err, errlen, p, "expected true or false");
    *out = json_is_true(j);
    return 0;
}

static int get_int(json_t *obj, const char *path, const char *key, int required, long long min,
                   long long max, long long *out, char *err, size_t errlen)
{
    char p[PATH_CAP];
    json_t *j = json_object_get(obj, key);
    subpath(p, path, key);
    if (j == NULL)
        return required ? fail(err, errlen, p, "missing (an integer from %lld to %lld)", min, max)
                        : 0;
    if (!json_is_integer(j) || json_integer_value(j) < min || json_integer_value(j) > max)
        return fail(err, errlen, p, "expected an integer from %lld to %lld", min, max);
    *out = json_integer_value(j);
    return 0;
}

static int hex_value(json_t *j, const char *p, size_t n, uint8_t *out, char *err, size_t errlen)
{
    if (!json_is_string(j) || cg_unhex(out, n, json_string_value(j)) != 0)
        return fail(err, errlen, p, "expected %zu hex digits", 2 * n);
    return 0;
}

static int get_hex(json_t *obj, const char *path, const char *key, size_t n, uint8_t *out, int *has,
                   char *err, size_t errlen)
{
    char p[PATH_CAP];
    json_t *j = json_object_get(obj, key);
    if (j == NULL)
        return 0;
    subpath(p, path, key);
    *has = 1;
    return hex_value(j, p, n, out, err, errlen);
}

/* A non-empty array of at most CG_POLICY_MAX_MEASUREMENTS hex strings of n bytes each. */
static int get_hex_list(json_t *obj, const char *path, const char *key, size_t n, uint8_t *out,
                        size_t *count, char *err, size_t errlen)
{
    char p[PATH_CAP], item[PATH_CAP + 24];
    json_t *j = json_object_get(obj, key);
    if (j == NULL)
        return 0;
    subpath(p, path, key);
    if (!json_is_array(j) || json_array_size(j) == 0)
        return fail(err, errlen, p, "expected a non-empty array of %zu-hex-digit strings", 2 * n);
    if (json_array_size(j) > CG_POLICY_MAX_MEASUREMENTS)
        return fail(err, errlen, p, "at most %d entries", CG_POLICY_MAX_MEASUREMENTS);
    size_t i;
    json_t *e;
    json_array_foreach(j, i, e)
    {
        snprintf(item, sizeof(item), "%s[%zu]", p, i);
        int rc = hex_value(e, item, n, out + i * n, err, errlen);
        if (rc != 0)
            return rc;
    }
    *count = json_array_size(j);
    return 0;
}

/* {bootloader, tee, snp, microcode, fmc?}: each SPL 0..255; fmc (Turin only) defaults to 0. */
static int get_tcb(json_t *obj, const char *path, const char *key, struct cg_snp_tcb *t, int *has,
                   char *err, size_t errlen)
{
    static const char *const keys[] = {"bootloader", "tee", "snp", "microcode", "fmc", NULL};
    char p[PATH_CAP];
    json_t *j;
    int rc = get_object(obj, path, key, &j, err, errlen);
    if (rc != 0 || j == NULL)
        return rc;
    subpath(p, path, key);
    if ((rc = only_keys(j, p, keys, err, errlen)) != 0)
        return rc;
    long long v[5] = {0, 0, 0, 0, 0};
    for (int i = 0; i < 5; i++)
        if ((rc = get_int(j, p, keys[i], i < 4, 0, 255, &v[i], err, errlen)) != 0)
            return rc;
    memset(t, 0, sizeof(*t));
    t->bootloader = (uint8_t)v[0];
    t->tee = (uint8_t)v[1];
    t->snp = (uint8_t)v[2];
    t->microcode = (uint8_t)v[3];
    t->fmc = (uint8_t)v[4];
    *has = 1;
    return 0;
}

static int parse_sim(json_t *sim, struct cg_policy *p, char *err, size_t errlen)
{
    static const char *const keys[] = {"allow", "root_sha256", NULL};
    int rc;
    if ((rc = only_keys(sim, "sim", keys, err, errlen)) != 0 ||
        (rc = get_bool(sim, "sim", "allow", &p->sim.allow, err, errlen)) != 0 ||
        (rc = get_hex(sim, "sim", "root_sha256", 32, p->sim.root_sha256, &p->sim.has_root, err,
                      errlen)) != 0)
        return rc;
    if (p->sim.allow && !p->sim.has_root)
        return fail(err, errlen, "sim.root_sha256",
                    "required when sim.allow is true (64 hex digits: ccgate sim-init prints it)");
    return 0;
}

static int parse_snp(json_t *snp, struct cg_policy *p, char *err, size_t errlen)
{
    static const char *const keys[] = {"measurements",
                                       "min_tcb",
                                       "debug",
                                       "migration_agent",
                                       "max_vmpl",
                                       "host_data",
                                       "min_guest_svn",
                                       "family_id",
                                       "image_id",
                                       "id_key_digests",
                                       "author_key_digests",
                                       "require_id_block",
                                       "smt",
                                       "min_committed_tcb",
                                       "min_launch_tcb",
                                       "min_fw",
                                       "allow_provisional_firmware",
                                       "chip_ids",
                                       NULL};
    static const char *const fw_keys[] = {"major", "minor", NULL};
    int rc;
    long long n = 0;
    if ((rc = only_keys(snp, "snp", keys, err, errlen)) != 0 ||
        (rc = get_hex_list(snp, "snp", "measurements", 48, &p->snp.measurements[0][0],
                           &p->snp.n_measurements, err, errlen)) != 0 ||
        (rc = get_tcb(snp, "snp", "min_tcb", &p->snp.min_tcb, &p->snp.has_min_tcb, err, errlen)) !=
            0 ||
        (rc = get_bool(snp, "snp", "debug", &p->snp.debug, err, errlen)) != 0 ||
        (rc = get_bool(snp, "snp", "migration_agent", &p->snp.migration_agent, err, errlen)) != 0)
        return rc;
    n = p->snp.max_vmpl;
    if ((rc = get_int(snp, "snp", "max_vmpl", 0, 0, 3, &n, err, errlen)) != 0)
        return rc;
    p->snp.max_vmpl = (int)n;
    n = 0;
    if ((rc = get_hex(snp, "snp", "host_data", 32, p->snp.host_data, &p->snp.has_host_data, err,
                      errlen)) != 0 ||
        (rc = get_int(snp, "snp", "min_guest_svn", 0, 0, UINT32_MAX, &n, err, errlen)) != 0)
        return rc;
    p->snp.min_guest_svn = (uint32_t)n;
    if ((rc = get_hex(snp, "snp", "family_id", 16, p->snp.family_id, &p->snp.has_family_id, err,
                      errlen)) != 0 ||
        (rc = get_hex(snp, "snp", "image_id", 16, p->snp.image_id, &p->snp.has_image_id, err,
                      errlen)) != 0 ||
        (rc = get_hex_list(snp, "snp", "id_key_digests", 48, &p->snp.id_key_digests[0][0],
                           &p->snp.n_id_key_digests, err, errlen)) != 0 ||
        (rc = get_hex_list(snp, "snp", "author_key_digests", 48, &p->snp.author_key_digests[0][0],
                           &p->snp.n_author_key_digests, err, errlen)) != 0 ||
        (rc = get_bool(snp, "snp", "require_id_block", &p->snp.require_id_block, err, errlen)) !=
            0 ||
        (rc = get_bool(snp, "snp", "smt", &p->snp.smt, err, errlen)) != 0 ||
        (rc = get_tcb(snp, "snp", "min_committed_tcb", &p->snp.min_committed_tcb,
                      &p->snp.has_min_committed_tcb, err, errlen)) != 0 ||
        (rc = get_tcb(snp, "snp", "min_launch_tcb", &p->snp.min_launch_tcb,
                      &p->snp.has_min_launch_tcb, err, errlen)) != 0 ||
        (rc = get_bool(snp, "snp", "allow_provisional_firmware", &p->snp.allow_provisional_firmware,
                       err, errlen)) != 0 ||
        (rc = get_hex_list(snp, "snp", "chip_ids", 64, &p->snp.chip_ids[0][0], &p->snp.n_chip_ids,
                           err, errlen)) != 0)
        return rc;
    json_t *fw;
    if ((rc = get_object(snp, "snp", "min_fw", &fw, err, errlen)) != 0)
        return rc;
    if (fw != NULL) {
        long long major = 0, minor = 0;
        if ((rc = only_keys(fw, "snp.min_fw", fw_keys, err, errlen)) != 0 ||
            (rc = get_int(fw, "snp.min_fw", "major", 1, 0, 255, &major, err, errlen)) != 0 ||
            (rc = get_int(fw, "snp.min_fw", "minor", 1, 0, 255, &minor, err, errlen)) != 0)
            return rc;
        p->snp.has_min_fw = 1;
        p->snp.min_fw_major = (uint8_t)major;
        p->snp.min_fw_minor = (uint8_t)minor;
    }
    return 0;
}

/* A non-empty array of at most CG_GPUEV_MAX_VERSIONS version strings. */
static int get_versions(json_t *obj, const char *key, char (*out)[32], size_t *count, char *err,
                        size_t errlen)
{
    char p[PATH_CAP];
    json_t *j = json_object_get(obj, key), *e;
    size_t i;
    if (j == NULL)
        return 0;
    subpath(p, "gpu", key);
    if (!json_is_array(j) || json_array_size(j) == 0 || json_array_size(j) > CG_GPUEV_MAX_VERSIONS)
        return fail(err, errlen, p, "expected 1 to %d version strings", CG_GPUEV_MAX_VERSIONS);
    json_array_foreach(j, i, e)
    {
        if (!json_is_string(e) || json_string_length(e) == 0 || json_string_length(e) >= 32)
            return fail(err, errlen, p, "item %zu: expected a version string under 32 characters",
                        i);
        strcpy(out[i], json_string_value(e));
    }
    *count = json_array_size(j);
    return 0;
}

static int parse_gpu(json_t *g, struct cg_gpu_policy *p, char *err, size_t errlen)
{
    static const char *const keys[] = {
        "required", "count",        "min_count", "allow_sim",    "sim_root_sha256", "drivers",
        "vbios",    "require_rims", "ocsp",      "ocsp_grace_s", "allow_devtools",  "allow_cc_off",
        NULL};
    long long count = 0, min_count = 1, grace = 0;
    int rc;
    p->present = p->required = p->require_rims = 1;
    p->ocsp = CG_GPU_OCSP_REQUIRE;
    if ((rc = only_keys(g, "gpu", keys, err, errlen)) != 0 ||
        (rc = get_bool(g, "gpu", "required", &p->required, err, errlen)) != 0 ||
        (rc = get_int(g, "gpu", "count", 0, 1, CG_GPUEV_MAX_GPUS, &count, err, errlen)) != 0 ||
        (rc = get_int(g, "gpu", "min_count", 0, 0, CG_GPUEV_MAX_GPUS, &min_count, err, errlen)) !=
            0 ||
        (rc = get_bool(g, "gpu", "allow_sim", &p->allow_sim, err, errlen)) != 0 ||
        (rc = get_hex(g, "gpu", "sim_root_sha256", 32, p->sim_root_sha256, &p->has_sim_root, err,
                      errlen)) != 0 ||
        (rc = get_versions(g, "drivers", p->drivers, &p->n_drivers, err, errlen)) != 0 ||
        (rc = get_versions(g, "vbios", p->vbios, &p->n_vbios, err, errlen)) != 0 ||
        (rc = get_bool(g, "gpu", "require_rims", &p->require_rims, err, errlen)) != 0 ||
        (rc = get_int(g, "gpu", "ocsp_grace_s", 0, 0, 30 * 86400, &grace, err, errlen)) != 0 ||
        (rc = get_bool(g, "gpu", "allow_devtools", &p->allow_devtools, err, errlen)) != 0 ||
        (rc = get_bool(g, "gpu", "allow_cc_off", &p->allow_cc_off, err, errlen)) != 0)
        return rc;
    json_t *mode = json_object_get(g, "ocsp");
    if (mode != NULL) {
        const char *m = json_is_string(mode) ? json_string_value(mode) : "";
        if (strcmp(m, "require") == 0)
            p->ocsp = CG_GPU_OCSP_REQUIRE;
        else if (strcmp(m, "off") == 0)
            p->ocsp = CG_GPU_OCSP_OFF;
        else
            return fail(err, errlen, "gpu.ocsp", "expected \"require\" or \"off\"");
    }
    p->count = (unsigned)count;
    p->min_count = (unsigned)min_count;
    p->ocsp_grace_s = (uint32_t)grace;
    if (p->count != 0 && p->min_count > p->count)
        return fail(err, errlen, "gpu.min_count", "at most gpu.count");
    if (p->allow_sim && !p->has_sim_root)
        return fail(err, errlen, "gpu.sim_root_sha256",
                    "required when gpu.allow_sim is true (ccgate sim-init --gpu prints it)");
    return 0;
}

static int parse_model(json_t *m, struct cg_model_policy *p, char *err, size_t errlen)
{
    static const char *const keys[] = {"name", "sha256", "min_version", NULL};
    int rc = only_keys(m, "model", keys, err, errlen);
    if (rc != 0)
        return rc;
    json_t *name = json_object_get(m, "name");
    if (name != NULL) {
        const char *n = json_is_string(name) ? json_string_value(name) : "";
        size_t nl = json_is_string(name) ? json_string_length(name) : 0;
        if (!cg_model_name_ok(n, nl))
            return fail(err, errlen, "model.name", "expected 1 to %d printable ASCII characters",
                        CG_MODEL_NAME_MAX);
        memcpy(p->name, n, nl + 1);
    }
    long long min_version = 0;
    if ((rc = get_hex_list(m, "model", "sha256", 32, &p->sha256[0][0], &p->n_sha256, err,
                           errlen)) != 0 ||
        (rc = get_int(m, "model", "min_version", 0, 0, INT64_MAX, &min_version, err, errlen)) != 0)
        return rc;
    p->min_version = (uint64_t)min_version;
    p->present = 1;
    return 0;
}

int cg_policy_appraise_model(const struct cg_model_policy *p, const struct cg_model_claim *m,
                             struct cg_verdict *v)
{
    char a[65];
    if (!p->present)
        return 0;
    if (!m->present)
        return cg_reject(v, CG_EPOLICY, "model.present", "a sealed model named in the claims",
                         "none (the server's upstream names no sealed model)");
    if (p->name[0] != '\0' && strcmp(p->name, m->name) != 0)
        return cg_reject(v, CG_EPOLICY, "model.name", p->name, "%s", m->name);
    int found = p->n_sha256 == 0;
    for (size_t i = 0; !found && i < p->n_sha256; i++)
        found = memcmp(p->sha256[i], m->sha256, 32) == 0;
    if (!found) {
        cg_hex(a, sizeof(a), m->sha256, 32);
        return cg_reject(v, CG_EPOLICY, "model.sha256", "one of the policy's model.sha256", "%s",
                         a);
    }
    if (m->version < p->min_version) {
        snprintf(a, sizeof(a), "at least %llu", (unsigned long long)p->min_version);
        return cg_reject(v, CG_EPOLICY, "model.version", a, "%llu", (unsigned long long)m->version);
    }
    return 0;
}

static int parse_freshness(json_t *f, struct cg_policy *p, char *err, size_t errlen)
{
    static const char *const keys[] = {"mode", "max_age_s", NULL};
    int rc = only_keys(f, "freshness", keys, err, errlen);
    if (rc != 0)
        return rc;
    json_t *mode = json_object_get(f, "mode");
    if (mode != NULL) {
        const char *m = json_is_string(mode) ? json_string_value(mode) : "";
        if (strcmp(m, "nonce") == 0)
            p->freshness.mode = CG_FRESH_NONCE;
        else if (strcmp(m, "max-age") == 0)
            p->freshness.mode = CG_FRESH_MAX_AGE;
        else
            return fail(err, errlen, "freshness.mode", "expected \"nonce\" or \"max-age\"");
    }
    long long age = p->freshness.max_age_s;
    if ((rc = get_int(f, "freshness", "max_age_s", 0, 1, 86400, &age, err, errlen)) != 0)
        return rc;
    p->freshness.max_age_s = (uint32_t)age;
    return 0;
}

int cg_policy_parse(const char *json, size_t len, struct cg_policy *p, char *err, size_t errlen)
{
    static const char *const keys[] = {"sim", "snp", "tdx", "gpu", "model", "freshness", NULL};
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    memset(p, 0, sizeof(*p));
    p->snp.smt = 1;
    p->freshness.mode = CG_FRESH_NONCE;
    p->freshness.max_age_s = 600;
    if (len > CG_POLICY_MAX_BYTES)
        return fail(err, errlen, "policy", "larger than %d bytes", CG_POLICY_MAX_BYTES);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return fail(err, errlen, "policy", "line %d column %d: %s", jerr.line, jerr.column,
                    jerr.text);
    json_t *sim, *snp, *tdx, *gpu, *model, *fresh;
    int rc;
    if (!json_is_object(root)) {
        rc = fail(err, errlen, "policy", "expected a JSON object");
        goto out;
    }
    if ((rc = only_keys(root, "", keys, err, errlen)) != 0 ||
        (rc = get_object(root, "", "sim", &sim, err, errlen)) != 0 ||
        (rc = get_object(root, "", "snp", &snp, err, errlen)) != 0 ||
        (rc = get_object(root, "", "tdx", &tdx, err, errlen)) != 0 ||
        (rc = get_object(root, "", "gpu", &gpu, err, errlen)) != 0 ||
        (rc = get_object(root, "", "model", &model, err, errlen)) != 0 ||
        (rc = get_object(root, "", "freshness", &fresh, err, errlen)) != 0)
        goto out;
    if ((sim != NULL && (rc = parse_sim(sim, p, err, errlen)) != 0) ||
        (snp != NULL && (rc = parse_snp(snp, p, err, errlen)) != 0) ||
        (tdx != NULL && (rc = cg_tdx_policy_parse(tdx, &p->tdx, err, errlen)) != 0) ||
        (gpu != NULL && (rc = parse_gpu(gpu, &p->gpu, err, errlen)) != 0) ||
        (model != NULL && (rc = parse_model(model, &p->model, err, errlen)) != 0) ||
        (fresh != NULL && (rc = parse_freshness(fresh, p, err, errlen)) != 0))
        goto out;
    p->snp.present = snp != NULL;
    if (!p->sim.allow && !p->snp.present && !p->tdx.present && !p->gpu.present) {
        rc = fail(err, errlen, "policy",
                  "accepts no evidence: give an \"snp\", \"tdx\" or \"gpu\" section or set "
                  "sim.allow to true");
        goto out;
    }
    if (EVP_Digest(json, len, p->digest, NULL, EVP_sha256(), NULL) != 1)
        rc = fail(err, errlen, "policy", "cannot hash");
out:
    json_decref(root);
    if (rc != 0)
        memset(p, 0, sizeof(*p));
    return rc;
}

int cg_policy_load(const char *path, struct cg_policy *p, char *err, size_t errlen)
{
    uint8_t *buf = NULL;
    size_t n = 0;
    int rc = cg_file_read(path, CG_POLICY_MAX_BYTES, &buf, &n);
    if (rc == CG_ELIMIT)
        return fail(err, errlen, path, "larger than %d bytes", CG_POLICY_MAX_BYTES);
    if (rc < 0) {
        fail(err, errlen, path, "%s", cg_strerror(rc));
        return rc;
    }
    rc = cg_policy_parse((const char *)buf, n, p, err, errlen);
    free(buf);
    return rc;
}

static int in_list(const uint8_t *list, size_t n, size_t size, const uint8_t *value)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(list + i * size, value, size) == 0)
            return 1;
    return 0;
}

static int is_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* A value against an allowlist: "snp.<name>" with the first allowed value as expected. */
static int check_list(const char *check, const uint8_t *list, size_t n, size_t size,
                      const uint8_t *value, struct cg_verdict *v)
{
    if (n == 0 || in_list(list, n, size, value))
        return 0;
    char exp[256], act[2 * 64 + 1];
    char first[2 * 64 + 1];
    cg_hex(first, sizeof(first), list, size);
    cg_hex(act, sizeof(act), value, size);
    if (n == 1)
        snprintf(exp, sizeof(exp), "%s", first);
    else
        snprintf(exp, sizeof(exp), "one of %zu allowed values (%.16s...)", n, first);
    return cg_reject(v, CG_EPOLICY, check, exp, "%s", act);
}

static int check_equal(const char *check, int has, const uint8_t *want, const uint8_t *got,
                       size_t n, struct cg_verdict *v)
{
    if (!has || memcmp(want, got, n) == 0)
        return 0;
    char exp[2 * 48 + 1], act[2 * 48 + 1];
    cg_hex(exp, sizeof(exp), want, n);
    cg_hex(act, sizeof(act), got, n);
    return cg_reject(v, CG_EPOLICY, check, exp, "%s", act);
}

/* Each SPL of raw (decoded for product) at least the minimum: "snp.<prefix>.<component>". */
static int check_tcb(const char *prefix, int has, const struct cg_snp_tcb *min, uint64_t raw,
                     enum cg_snp_product product, struct cg_verdict *v)
{
    if (!has)
        return 0;
    if (product == CG_SNP_PRODUCT_UNKNOWN)
        return cg_reject(v, CG_EPOLICY, "snp.product", "a verified report (Milan, Genoa, Turin)",
                         "unknown: its TCB cannot be decoded");
    struct cg_snp_tcb t;
    cg_snp_tcb_decode(raw, product, &t);
    const struct {
        const char *name;
        unsigned want, got;
    } c[] = {
        {"bootloader", min->bootloader, t.bootloader},
        {"tee", min->tee, t.tee},
        {"snp", min->snp, t.snp},
        {"microcode", min->microcode, t.microcode},
        {"fmc", min->fmc, t.fmc},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        if (c[i].got >= c[i].want)
            continue;
        char check[64], exp[16];
        snprintf(check, sizeof(check), "snp.%s.%s", prefix, c[i].name);
        snprintf(exp, sizeof(exp), ">= %u", c[i].want);
        return cg_reject(v, CG_EPOLICY, check, exp, "%u", c[i].got);
    }
    return 0;
}

int cg_policy_appraise_snp(const struct cg_policy *p, const struct cg_snp_report *r,
                           struct cg_verdict *v)
{
    const struct cg_policy_snp *s = &p->snp;
    char exp[64];
    int rc;
    if ((rc = check_list("snp.measurement", &s->measurements[0][0], s->n_measurements, 48,
                         r->measurement, v)) != 0)
        return rc;
    if ((r->policy & CG_SNP_POLICY_DEBUG) && !s->debug)
        return cg_reject(v, CG_EPOLICY, "snp.debug", "false", "true");
    if ((r->policy & CG_SNP_POLICY_MIGRATE_MA) && !s->migration_agent)
        return cg_reject(v, CG_EPOLICY, "snp.migration_agent", "false", "true");
    if ((r->policy & CG_SNP_POLICY_SMT) && !s->smt)
        return cg_reject(v, CG_EPOLICY, "snp.smt", "false", "true");
    if (r->vmpl > (uint32_t)s->max_vmpl) {
        snprintf(exp, sizeof(exp), "<= %d", s->max_vmpl);
        return cg_reject(v, CG_EPOLICY, "snp.vmpl", exp, "%u", r->vmpl);
    }
    if ((rc = check_equal("snp.host_data", s->has_host_data, s->host_data, r->host_data, 32, v)) !=
            0 ||
        (rc = check_equal("snp.family_id", s->has_family_id, s->family_id, r->family_id, 16, v)) !=
            0 ||
        (rc = check_equal("snp.image_id", s->has_image_id, s->image_id, r->image_id, 16, v)) != 0)
        return rc;
    if (s->require_id_block && is_zero(r->id_key_digest, sizeof(r->id_key_digest)))
        return cg_reject(v, CG_EPOLICY, "snp.id_block", "launched with an ID block",
                         "ID_KEY_DIGEST is zero");
    if ((rc = check_list("snp.id_key_digest", &s->id_key_digests[0][0], s->n_id_key_digests, 48,
                         r->id_key_digest, v)) != 0)
        return rc;
    if (s->n_author_key_digests > 0 && (r->signer_info & 1) == 0)
        return cg_reject(v, CG_EPOLICY, "snp.author_key_digest", "an author key",
                         "none (AUTHOR_KEY_EN is 0)");
    if ((rc = check_list("snp.author_key_digest", &s->author_key_digests[0][0],
                         s->n_author_key_digests, 48, r->author_key_digest, v)) != 0)
        return rc;
    if (r->guest_svn < s->min_guest_svn) {
        snprintf(exp, sizeof(exp), ">= %u", s->min_guest_svn);
        return cg_reject(v, CG_EPOLICY, "snp.guest_svn", exp, "%u", r->guest_svn);
    }
    if ((rc = check_tcb("min_tcb", s->has_min_tcb, &s->min_tcb, r->reported_tcb, r->product, v)) !=
            0 ||
        (rc = check_tcb("min_committed_tcb", s->has_min_committed_tcb, &s->min_committed_tcb,
                        r->committed_tcb, r->product, v)) != 0 ||
        (rc = check_tcb("min_launch_tcb", s->has_min_launch_tcb, &s->min_launch_tcb, r->launch_tcb,
                        r->product, v)) != 0)
        return rc;
    if (s->has_min_fw &&
        (r->current_major < s->min_fw_major ||
         (r->current_major == s->min_fw_major && r->current_minor < s->min_fw_minor))) {
        snprintf(exp, sizeof(exp), ">= %u.%u", s->min_fw_major, s->min_fw_minor);
        return cg_reject(v, CG_EPOLICY, "snp.min_fw", exp, "%u.%u", r->current_major,
                         r->current_minor);
    }
    if (!s->allow_provisional_firmware &&
        (r->committed_major != r->current_major || r->committed_minor != r->current_minor ||
         r->committed_build != r->current_build)) {
        snprintf(exp, sizeof(exp), "committed = current (%u.%u build %u)", r->current_major,
                 r->current_minor, r->current_build);
        return cg_reject(v, CG_EPOLICY, "snp.provisional_firmware", exp, "committed %u.%u build %u",
                         r->committed_major, r->committed_minor, r->committed_build);
    }
    return check_list("snp.chip_id", &s->chip_ids[0][0], s->n_chip_ids, 64, r->chip_id, v);
}
