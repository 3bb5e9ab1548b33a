#ifndef KB_CONFIG_H
#define KB_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "ccgate/evidence.h"
#include "ccgate/policy.h"

/*
 * The broker's JSON config (docs/model-protection.md):
 *   {"resources": {"repo/type/tag": {"file": PATH, "policy": PATH}, ...},
 *    "audit_log": PATH, "tls_cert": PATH, "tls_key": PATH,
 *    "session_timeout_s": 300, "token_lifetime_s": 300, "tdx_collateral": DIR}
 * Relative paths are taken from the config file's folder. A resource policy is a client
 * policy (docs/policy.md) plus an optional "model": {"min_version": N}.
 */

#define KB_MAX_RESOURCES 256
#define KB_MAX_SECRET (64 * 1024)
#define KB_RESOURCE_ID_MAX 256

struct kb_resource {
    char id[KB_RESOURCE_ID_MAX + 1];
    uint8_t *secret; /* the file's bytes, released as the JWE plaintext */
    size_t secret_len;
    struct cg_policy *policy; /* digest: SHA-256 of the policy file */
    int has_min_version;
    uint64_t min_version;
};

struct kb_config {
    struct kb_resource *res;
    size_t n_res;
    char *audit_log;
    char *tls_cert, *tls_key; /* NULL: plain HTTP (loopback only) */
    unsigned session_timeout_s;
    unsigned token_lifetime_s;
    struct cg_evidence tdx_collateral; /* blobs from "tdx_collateral" DIR (may be none) */
};

/* Loads and checks the config and every file it names. 0, or CG_ECONFIG with err. */
int kb_config_load(const char *path, struct kb_config *c, char *err, size_t errlen);

/*
 * Parses a resource policy: the "model" object ({"min_version": N}, unknown keys refused)
 * is taken out, the rest goes to cg_policy_parse(); p->digest is SHA-256 of all of text.
 */
int kb_policy_parse(const char *text, size_t len, struct cg_policy *p, int *has_min,
                    uint64_t *min_version, char *err, size_t errlen);

/* Whether id is REPO/TYPE/TAG: three non-empty parts of [A-Za-z0-9._-], none "." or "..". */
int kb_resource_id_ok(const char *id);

/* The resource named id, or NULL. */
const struct kb_resource *kb_config_find(const struct kb_config *c, const char *id);

/* Frees what c owns (secrets are wiped first). */
void kb_config_free(struct kb_config *c);

#endif
