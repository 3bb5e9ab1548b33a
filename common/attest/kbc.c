/* The RCAR 0.4.0 key broker client: blocking HTTP(S), evidence, JWE (kbc.h). */
#include "ccgate/kbc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "ccgate/addr.h"
#include "ccgate/buf.h"
#include "ccgate/httpc.h"
#include "ccgate/jose.h"
#include "ccgate/sim.h"
#include "ccgate/trustee.h"
#include "ccgate/tsm.h"

int cg_kbc_binding(const char *alg, const json_t *jwk, const char *nonce, const char *additional,
                   uint8_t out[CG_REPORT_DATA_LEN])
{
    const EVP_MD *md = strcmp(alg, "sha256") == 0   ? EVP_sha256()
                       : strcmp(alg, "sha384") == 0 ? EVP_sha384()
                       : strcmp(alg, "sha512") == 0 ? EVP_sha512()
                                                    : NULL;
    if (md == NULL)
        return CG_ECONFIG;
    json_t *o = json_pack("{s:O,s:s,s:s}", "tee-pubkey", jwk, "nonce", nonce, "additional-evidence",
                          additional);
    char *canon = NULL;
    int rc = o != NULL ? cg_jcs(o, &canon) : -ENOMEM;
    json_decref(o);
    if (rc != 0)
        return rc;
    unsigned int n = 0;
    memset(out, 0, CG_REPORT_DATA_LEN);
    rc = EVP_Digest(canon, strlen(canon), out, &n, md, NULL) == 1 ? 0 : CG_ECRYPTO;
    free(canon);
    return rc;
}

json_t *cg_kbc_evidence_json(const struct cg_evidence *ev, const char **tee)
{
    if (ev->tag == CG_TAG_SNP) {
        *tee = "snp";
        return cg_trustee_snp_to_json(ev);
    }
    if (ev->tag == CG_TAG_TDX) {
        /* Trustee's encoding; the verifier finds its own collateral. */
        char *q = cg_b64_encode(ev->evidence, ev->evidence_len);
        json_t *o = q != NULL ? json_pack("{s:s,s:n}", "quote", q, "cc_eventlog") : NULL;
        free(q);
        *tee = "tdx";
        return o;
    }
    if (ev->tag != CG_TAG_SIM)
        return NULL;
    *tee = CG_KBC_TEE_SIM;
    json_t *certs = json_array();
    char *r = cg_b64_encode(ev->evidence, ev->evidence_len);
    for (size_t i = 0; certs != NULL && i < ev->n_certs; i++) {
        char *c = cg_b64_encode(ev->certs[i], ev->cert_lens[i]);
        if (c == NULL || json_array_append_new(certs, json_string(c)) != 0) {
            json_decref(certs);
            certs = NULL;
        }
        free(c);
    }
    json_t *o =
        r != NULL && certs != NULL ? json_pack("{s:s,s:O}", "report", r, "certs", certs) : NULL;
    free(r);
    json_decref(certs);
    return o;
}

/* ---- a blocking HTTP/1.1 client, one request per connection ---- */

struct url {
    int tls;
    char host[128];
    char hostport[160];
};

static int url_parse(const char *s, struct url *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    const char *rest;
    if (strncmp(s, "http://", 7) == 0) {
        rest = s + 7;
    } else if (strncmp(s, "https://", 8) == 0) {
        rest = s + 8;
        u->tls = 1;
    } else {
        return cg_errf(err, errlen, CG_ECONFIG, "--kbs %s: expected http://HOST:PORT or https://",
                       s);
    }
    size_t n = strcspn(rest, "/");
    if (n == 0 || n >= sizeof(u->hostport) || (rest[n] == '/' && rest[n + 1] != '\0'))
        return cg_errf(err, errlen, CG_ECONFIG, "--kbs %s: expected SCHEME://HOST:PORT", s);
    memcpy(u->hostport, rest, n);
    if (strchr(u->hostport, ':') == NULL || u->hostport[n - 1] == ']')
        snprintf(u->hostport + n, sizeof(u->hostport) - n, ":%s", u->tls ? "443" : "80");
    const char *h = u->hostport, *end = strrchr(u->hostport, ':');
    if (h[0] == '[') {
        h++;
        end--;
    }
    snprintf(u->host, sizeof(u->host), "%.*s", (int)(end - h), h);
    return 0;
}

/* One exchange with the broker at u. */
static int http_do(const struct url *u, const char *ca_file, const char *method, const char *path,
                   const char *cookie, const char *body, struct cg_httpc_resp *r, char *err,
                   size_t errlen)
{
    struct cg_addr a;
    int rc = cg_addr_parse(u->hostport, 0, &a, err, errlen);
    if (rc != 0)
        return rc;
    const struct cg_httpc_req q = {.addr = &a,
                                   .tls = u->tls,
                                   .tls_name = u->host,
                                   .ca_file = ca_file,
                                   .method = method,
                                   .path = path,
                                   .cookie = cookie,
                                   .body = body,
                                   .cookie_name = CG_KBC_SESSION_COOKIE,
                                   .timeout_ms = CG_KBC_TIMEOUT_MS,
                                   .max_body = CG_KBC_MAX_BODY};
    rc = cg_httpc_do(&q, r, err, errlen);
    if (rc == CG_ECONFIG) /* the CA file: the only configuration the exchange reads */
        return cg_errf(err, errlen, rc, "--kbs-ca %s: no usable CA certificates",
                       ca_file != NULL ? ca_file : "(system)");
    return rc;
}

/* "403 {"type":..., "detail":...}" as text, for messages. */
static const char *detail(const struct cg_httpc_resp *r)
{
    return r->body.len > 0 ? r->body.data : "(empty)";
}

static int make_provider(const struct cg_kbc_config *c, struct cg_provider **p, char *err,
                         size_t errlen)
{
    const char *tee = c->tee != NULL ? c->tee : "auto";
    struct cg_tsm_config cfg = {0};
    char how[256];
    int rc;
    if (strcmp(tee, "auto") == 0 && cg_tsm_detect(&cfg, &tee, how, sizeof(how)) != 0)
        return cg_errf(err, errlen, CG_ENOTEE, "--tee auto: no TEE found (%s)", how);
    if (strcmp(tee, "sim") == 0) {
        if (c->state_dir == NULL)
            return cg_errf(err, errlen, CG_ECONFIG, "--tee sim needs --state-dir DIR");
        rc = cg_sim_provider_new(c->state_dir, "/proc/self/exe", p);
    } else if (strcmp(tee, "snp") == 0 || strcmp(tee, "tdx") == 0) {
        rc = cg_tsm_provider_new(tee, &cfg, p);
    } else {
        return cg_errf(err, errlen, CG_ECONFIG, "--tee: expected sim, snp, tdx or auto, got '%s'",
                       tee);
    }
    if (rc != 0)
        return cg_errf(err, errlen, rc, "--tee %s: %s", tee, cg_strerror(rc));
    return 0;
}

int cg_kbc_fetch(const struct cg_kbc_config *c, uint8_t **secret, size_t *secret_len, char *err,
                 size_t errlen)
{
    struct url u;
    struct cg_httpc_resp r = {0};
    struct cg_provider *prov = NULL;
    struct cg_jose_key *eph = NULL;
    struct cg_evidence ev = {0};
    json_t *jwk = NULL, *ans = NULL, *evj = NULL, *body = NULL;
    char *txt = NULL, cookie[160], path[512];
    const char *tee_name = NULL;
    uint8_t rd[CG_REPORT_DATA_LEN];
    int rc;

    *secret = NULL;
    *secret_len = 0;
    if ((rc = url_parse(c->url, &u, err, errlen)) != 0)
        return rc;
    if (c->resource == NULL || strlen(c->resource) > 256 ||
        strspn(c->resource, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") !=
            strlen(c->resource) ||
        strstr(c->resource, "..") != NULL)
        return cg_errf(err, errlen, CG_ECONFIG, "--kbs-resource: expected REPO/TYPE/TAG");
    if ((rc = make_provider(c, &prov, err, errlen)) != 0)
        return rc;
    /* The protocol's TEE name is known once the provider is: sim has its own. */
    const char *proto_tee = strcmp(prov->name, "sim") == 0 ? CG_KBC_TEE_SIM : prov->name;

    /* 1. auth */
    body = json_pack("{s:s,s:s,s:{s:[s,s,s]}}", "version", CG_KBC_VERSION, "tee", proto_tee,
                     "extra-params", "supported-hash-algorithms", "sha384", "sha256", "sha512");
    txt = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (txt == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if ((rc = http_do(&u, c->ca_file, "POST", "/kbs/v0/auth", NULL, txt, &r, err, errlen)) != 0)
        goto out;
    if (r.status != 200) {
        rc = cg_errf(err, errlen, CG_EPOLICY, "auth: %d %s", r.status, detail(&r));
        goto out;
    }
    snprintf(cookie, sizeof(cookie), "%s", r.cookie);
    ans = json_loadb(r.body.data, r.body.len, JSON_REJECT_DUPLICATES, NULL);
    const char *nonce = json_string_value(json_object_get(ans, "nonce"));
    const char *alg = json_string_value(
        json_object_get(json_object_get(ans, "extra-params"), "selected-hash-algorithm"));
    if (alg == NULL)
        alg = "sha384"; /* Trustee's default */
    if (cookie[0] == '\0' || nonce == NULL || strlen(nonce) > 128) {
        rc = cg_errf(err, errlen, CG_EHTTP, "auth: expected a %s cookie and a nonce, got %s",
                     CG_KBC_SESSION_COOKIE, detail(&r));
        goto out;
    }
    /* 2. evidence bound to an ephemeral key and the nonce */
    if ((rc = cg_jose_key_generate(CG_JOSE_EC, &eph)) != 0 ||
        (jwk = cg_jose_key_to_jwk(eph, 0)) == NULL ||
        json_object_set_new(jwk, "alg", json_string("ECDH-ES+A256KW")) != 0) {
        rc = cg_errf(err, errlen, CG_ECRYPTO, "ephemeral key: OpenSSL failed");
        goto out;
    }
    if ((rc = cg_kbc_binding(alg, jwk, nonce, "", rd)) != 0) {
        cg_errf(err, errlen, rc, "auth: selected-hash-algorithm '%.16s' not supported", alg);
        goto out;
    }
    if ((rc = prov->get(prov, rd, &ev)) != 0) {
        cg_errf(err, errlen, rc, "evidence from %s: %s", prov->name, cg_strerror(rc));
        goto out;
    }
    evj = cg_kbc_evidence_json(&ev, &tee_name);
    if (evj == NULL) {
        rc = cg_errf(err, errlen, CG_ENOTEE,
                     "evidence of tee %s: no encoding for the broker (docs/model-protection.md)",
                     prov->name);
        goto out;
    }
    json_decref(body);
    free(txt);
    body = json_pack("{s:{s:s,s:O},s:{s:O,s:s}}", "runtime-data", "nonce", nonce, "tee-pubkey", jwk,
                     "tee-evidence", "primary_evidence", evj, "additional_evidence", "");
    txt = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    if (txt == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    cg_buf_free(&r.body);
    if ((rc = http_do(&u, c->ca_file, "POST", "/kbs/v0/attest", cookie, txt, &r, err, errlen)) != 0)
        goto out;
    if (r.status != 200) {
        rc = cg_errf(err, errlen, CG_EPOLICY, "attest: %d %s", r.status, detail(&r));
        goto out;
    }
    /* 3. the resource, as a JWE to the ephemeral key */
    snprintf(path, sizeof(path), "/kbs/v0/resource/%s", c->resource);
    cg_buf_free(&r.body);
    if ((rc = http_do(&u, c->ca_file, "GET", path, cookie, NULL, &r, err, errlen)) != 0)
        goto out;
    if (r.status != 200) {
        rc = cg_errf(err, errlen, r.status == 404 ? CG_ECONFIG : CG_EPOLICY, "resource %s: %d %s",
                     c->resource, r.status, detail(&r));
        goto out;
    }
    json_decref(ans);
    ans = json_loadb(r.body.data, r.body.len, JSON_REJECT_DUPLICATES, NULL);
    char jerr[160];
    if ((rc = cg_jwe_decrypt(eph, ans, secret, secret_len, jerr, sizeof(jerr))) != 0)
        cg_errf(err, errlen, rc, "resource %s: %s", c->resource, jerr);
out:
    if (prov != NULL)
        prov->free(prov);
    cg_evidence_clear(&ev);
    cg_jose_key_free(eph);
    json_decref(jwk);
    json_decref(ans);
    json_decref(evj);
    json_decref(body);
    free(txt);
    cg_buf_free(&r.body);
    return rc;
}

int cg_kbc_seal_key_parse(const char *text, size_t len, uint8_t key[CG_SEAL_KEY_LEN], char *kid,
                          size_t kidlen, uint64_t *min_version)
{
    char err[128];
    struct cg_jose_key *k = NULL;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL);
    int rc = CG_ECONFIG;
    size_t n = 0;
    const uint8_t *p;
    if (j == NULL || cg_jose_key_from_jwk(j, &k, err, sizeof(err)) != 0 ||
        (p = cg_jose_key_oct(k, &n)) == NULL || n != CG_SEAL_KEY_LEN)
        goto out;
    const json_t *mv = json_object_get(j, CG_KBC_MIN_VERSION_MEMBER);
    if (mv != NULL && (!json_is_integer(mv) || json_integer_value(mv) < 0))
        goto out;
    memcpy(key, p, CG_SEAL_KEY_LEN);
    if (kid != NULL) {
        const char *s = json_string_value(json_object_get(j, "kid"));
        snprintf(kid, kidlen, "%s", s != NULL ? s : "");
    }
    if (min_version != NULL)
        *min_version = mv != NULL ? (uint64_t)json_integer_value(mv) : 0;
    rc = 0;
out:
    cg_jose_key_free(k);
    json_decref(j);
    return rc;
}

int cg_kbc_fetch_seal_key(const struct cg_kbc_config *c, uint8_t key[CG_SEAL_KEY_LEN],
                          uint64_t *min_version, char *err, size_t errlen)
{
    uint8_t *secret;
    size_t n;
    int rc = cg_kbc_fetch(c, &secret, &n, err, errlen);
    if (rc != 0)
        return rc;
    rc = cg_kbc_seal_key_parse((const char *)secret, n, key, NULL, 0, min_version);
    if (rc != 0)
        cg_errf(err, errlen, rc, "resource %s: expected a sealing key (oct JWK of 32 bytes)",
                c->resource);
    OPENSSL_clear_free(secret, n);
    return rc;
}
