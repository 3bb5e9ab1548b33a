#include "ccgate/ocsp.h"
#include "ccgate/x509.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>

const char *cg_ocsp_status_name(enum cg_ocsp_status s)
{
    switch (s) {
    case CG_OCSP_GOOD:
        return "good";
    case CG_OCSP_REVOKED_IN_GRACE:
        return "revoked-in-grace";
    default:
        return "not-checked";
    }
}

/* The verdict's check: what + "." + field, e.g. "gpu.ocsp.device.status". */
static const char *name(const char *what, const char *field, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s", what, field[0] != '\0' ? "." : "", field);
    return buf;
}

/* The single response about cert (issued by issuer) in basic, or NULL. */
static OCSP_SINGLERESP *find_single(OCSP_BASICRESP *bs, X509 *cert, X509 *issuer)
{
    for (int i = 0; i < OCSP_resp_count(bs); i++) {
        OCSP_SINGLERESP *sr = OCSP_resp_get0(bs, i);
        const OCSP_CERTID *id = OCSP_SINGLERESP_get0_id(sr);
        ASN1_OBJECT *md_obj = NULL;
        if (OCSP_id_get0_info(NULL, &md_obj, NULL, NULL, (OCSP_CERTID *)id) != 1)
            continue;
        const EVP_MD *md = EVP_get_digestbyobj(md_obj);
        OCSP_CERTID *mine = md != NULL ? OCSP_cert_to_id(md, cert, issuer) : NULL;
        int same = mine != NULL && OCSP_id_cmp(mine, id) == 0;
        OCSP_CERTID_free(mine);
        if (same)
            return sr;
    }
    return NULL;
}

/* One certificate: find its response among set, verify it, read the status. */
static int check_one(X509 *cert, X509 *issuer, STACK_OF(X509) * chain_certs, X509_STORE *store,
                     const struct cg_ocsp_set *set, uint32_t grace_s, time_t at, const char *what,
                     size_t depth, enum cg_ocsp_status *status, struct cg_verdict *v)
{
    char n[64], sub[64];
    int rc = 0;
    OCSP_RESPONSE *resp = NULL;
    OCSP_BASICRESP *bs = NULL;
    OCSP_SINGLERESP *sr = NULL;
    X509_NAME_oneline(X509_get_subject_name(cert), sub, sizeof(sub));
    for (size_t i = 0; i < set->n && sr == NULL; i++) {
        OCSP_BASICRESP_free(bs);
        OCSP_RESPONSE_free(resp);
        bs = NULL;
        const unsigned char *p = set->resp[i];
        resp = set->lens[i] <= CG_OCSP_MAX_BYTES ? d2i_OCSP_RESPONSE(NULL, &p, (long)set->lens[i])
                                                 : NULL;
        if (resp == NULL || p != set->resp[i] + set->lens[i] ||
            OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
            (bs = OCSP_response_get1_basic(resp)) == NULL)
            continue;
        sr = find_single(bs, cert, issuer);
    }
    if (sr == NULL) {
        rc = cg_reject(v, CG_EEVIDENCE, name(what, "missing", n, sizeof(n)),
                       "a successful OCSP response for each certificate",
                       "none for certificate %zu (%.40s)", depth, sub);
        goto out;
    }
    /* The responder: the issuer itself, or a delegate with id-kp-OCSPSigning that the
     * issuer signed; OCSP_basic_verify checks both and the chain at the store's time. */
    if (OCSP_basic_verify(bs, chain_certs, store, 0) != 1) {
        unsigned long e = ERR_peek_last_error();
        rc = cg_reject(v, CG_EEVIDENCE, name(what, "signature", n, sizeof(n)),
                       "signed by the issuer or its delegated responder", "%s (certificate %zu)",
                       e != 0 ? ERR_reason_error_string(e) : "invalid", depth);
        goto out;
    }
    int reason = 0, st = OCSP_single_get0_status(sr, &reason, NULL, NULL, NULL);
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    (void)OCSP_single_get0_status(sr, &reason, &rev, &thisupd, &nextupd);
    if (thisupd == NULL || X509_cmp_time(thisupd, &at) > 0) {
        rc = cg_reject(v, CG_EEVIDENCE, name(what, "this_update", n, sizeof(n)),
                       "thisUpdate <= the verification time", "later (certificate %zu)", depth);
        goto out;
    }
    if (nextupd == NULL || X509_cmp_time(nextupd, &at) < 0) {
        rc = cg_reject(v, CG_EEVIDENCE, name(what, "next_update", n, sizeof(n)),
                       "nextUpdate >= the verification time", "%s (certificate %zu)",
                       nextupd == NULL ? "absent" : "earlier: the response expired", depth);
        goto out;
    }
    if (st == V_OCSP_CERTSTATUS_GOOD) {
        if (*status == CG_OCSP_NOT_CHECKED)
            *status = CG_OCSP_GOOD;
        goto out;
    }
    if (st == V_OCSP_CERTSTATUS_REVOKED && rev != NULL) {
        time_t limit = at - (time_t)grace_s;
        if (grace_s > 0 && X509_cmp_time(rev, &limit) >= 0) {
            *status = CG_OCSP_REVOKED_IN_GRACE;
            goto out;
        }
        rc = cg_reject(v, CG_EEVIDENCE, name(what, "status", n, sizeof(n)), "good",
                       "revoked (reason %d) beyond the %us grace (certificate %zu: %.40s)", reason,
                       (unsigned)grace_s, depth, sub);
        goto out;
    }
    rc = cg_reject(v, CG_EEVIDENCE, name(what, "status", n, sizeof(n)), "good",
                   "%s (certificate %zu)", OCSP_cert_status_str(st), depth);
out:
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    return rc;
}

int cg_ocsp_check_chain(const uint8_t *const *chain, const size_t *lens, size_t n,
                        const struct cg_ocsp_set *set, uint32_t grace_s, time_t at,
                        const char *what, enum cg_ocsp_status *status, struct cg_verdict *v)
{
    int rc = CG_ECRYPTO;
    X509 *x[16] = {0};
    X509_STORE *store = X509_STORE_new();
    STACK_OF(X509) *certs = sk_X509_new_null();
    char nm[64];
    *status = CG_OCSP_NOT_CHECKED;
    if (n < 2 || n > 16 || set->n > CG_OCSP_MAX_RESPONSES) {
        rc = cg_reject(v, CG_EEVIDENCE, name(what, "", nm, sizeof(nm)),
                       "a chain of 2 to 16 certificates, at most 16 responses",
                       "%zu certificates, %zu responses", n, set->n);
        goto out;
    }
    if (store == NULL || certs == NULL)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if ((x[i] = cg_x509_der(chain[i], lens[i])) == NULL) {
            rc = cg_reject(v, CG_EEVIDENCE, name(what, "", nm, sizeof(nm)), "DER certificates",
                           "certificate %zu unparsable", i);
            goto out;
        }
        if (sk_X509_push(certs, x[i]) <= 0) /* the root too: it may sign the responses */
            goto out;
    }
    if (X509_STORE_add_cert(store, x[n - 1]) != 1)
        goto out;
    X509_VERIFY_PARAM_set_time(X509_STORE_get0_param(store), at);
    for (size_t i = 0; i + 1 < n; i++) {
        enum cg_ocsp_status s = CG_OCSP_NOT_CHECKED;
        rc = check_one(x[i], x[i + 1], certs, store, set, grace_s, at, what, i, &s, v);
        if (rc != 0)
            goto out;
        if (s == CG_OCSP_REVOKED_IN_GRACE || *status == CG_OCSP_NOT_CHECKED)
            *status = s;
    }
    rc = 0;
out:
    sk_X509_free(certs);
    X509_STORE_free(store);
    for (size_t i = 0; i < 16; i++)
        X509_free(x[i]);
    ERR_clear_error();
    return rc;
}
