/*
 * Intel TDX DCAP quote verification, offline, following the order of checks of Intel's QVL
 * and Phala's dcap-qvl (shared/ATTESTATION.md section 2): the pipeline that runs the quote
 * parser (tdx_quote.c), the chain and CRL checks (tdx_pck.c) and the collateral
 * (tdx_collateral.c).
 */
#include <string.h>

#include <openssl/err.h>

#include "tdx_int.h"

/* ---- verification -------------------------------------------------------------------- */

static int check_qe_binding(const struct cg_tdx_quote *q, struct cg_verdict *v)
{
    uint8_t want[64] = {0};
    char hex[129];
    unsigned int dlen = 0;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, q->attest_key, 64) == 1 &&
             EVP_DigestUpdate(md, q->qe_auth, q->qe_auth_len) == 1 &&
             EVP_DigestFinal_ex(md, want, &dlen) == 1 && dlen == 32;
    EVP_MD_CTX_free(md);
    if (!ok)
        return CG_ECRYPTO;
    if (memcmp(want, q->qe_report.report_data, 64) != 0) {
        cg_hex(hex, sizeof(hex), q->qe_report.report_data, 64);
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_report_data",
                         "SHA-256(attestation key || QE auth data) || 0^32", "%s", hex);
    }
    return 0;
}

static int collateral_shape(const struct cg_tdx_collateral *col, struct cg_verdict *v)
{
    int n = (col->tcb_info != NULL) + (col->qe_identity != NULL) + (col->tcb_chain != NULL);
    if (n != 0 && n != 3)
        return cg_reject(v, CG_EEVIDENCE, "tdx.collateral",
                         "TCB info, QE identity and their chain together", "%d of 3", n);
    if (col->n_crls > CG_TDX_MAX_CRLS)
        return cg_reject(v, CG_EEVIDENCE, "tdx.collateral", "<= 4 CRLs", "%zu", col->n_crls);
    return 0;
}

int cg_tdx_verify(const uint8_t *quote, size_t len, const struct cg_tdx_collateral *col, time_t at,
                  struct cg_tdx_quote *q, struct cg_tdx_status *st, struct cg_verdict *v)
{
    static const char *const pck_leaf_cn[] = {"Intel SGX PCK Certificate", NULL};
    static const char *const pck_ca_cn[] = {"Intel SGX PCK Platform CA",
                                            "Intel SGX PCK Processor CA", NULL};
    static const char *const tcb_cn[] = {"Intel SGX TCB Signing", NULL};
    X509 *chain[CG__TDX_MAX_CHAIN] = {NULL}, *tchain[CG__TDX_MAX_CHAIN] = {NULL};
    X509 *root = NULL, *pck_ca = NULL;
    EVP_PKEY *ak = NULL;
    json_t *tcb_info = NULL, *qe_id = NULL;
    int rc, ok;
    memset(st, 0, sizeof(*st));
    rc = cg_tdx_quote_parse(quote, len, q, v);
    if (rc != 0)
        goto out;
    if (col != NULL && (rc = collateral_shape(col, v)) != 0)
        goto out;
    root = cg__tdx_pinned_root();
    if (root == NULL) {
        rc = cg_reject(v, CG_ECRYPTO, "tdx.root", CG__TDX_ROOT_NAME, "not embedded");
        goto out;
    }

    /* PCK chain, then the identity of what it certifies. */
    int n = cg__tdx_read_chain(q->pck_chain, q->pck_chain_len, chain);
    if (n < 2) {
        rc = cg_reject(v, CG_EEVIDENCE, "tdx.pck_chain.parse", "2 to 4 PEM certificates",
                       "unreadable");
        goto out;
    }
    rc = cg__tdx_verify_chain(chain, n, root, at, 3, "tdx.pck_chain", &pck_ca, v);
    if (rc != 0)
        goto out;
    if (!cg__tdx_subject_cn_is(chain[0], pck_leaf_cn) ||
        !cg__tdx_subject_cn_is(pck_ca, pck_ca_cn)) {
        rc = cg_reject(v, CG_EEVIDENCE, "tdx.pck_chain.subject",
                       "Intel SGX PCK Certificate under a PCK Platform/Processor CA", "other");
        goto out;
    }
    rc = cg__tdx_pck_extension(chain[0], &q->pck, v);
    if (rc != 0)
        goto out;

    if (col != NULL && col->tcb_chain != NULL) {
        int tn = cg__tdx_read_chain(col->tcb_chain, col->tcb_chain_len, tchain);
        if (tn < 1) {
            rc = cg_reject(v, CG_EEVIDENCE, "tdx.tcb_chain.parse", "1 to 4 PEM certificates",
                           "unreadable");
            goto out;
        }
        rc = cg__tdx_verify_chain(tchain, tn, root, at, 2, "tdx.tcb_chain", NULL, v);
        if (rc != 0)
            goto out;
        if (!cg__tdx_subject_cn_is(tchain[0], tcb_cn)) {
            rc = cg_reject(v, CG_EEVIDENCE, "tdx.tcb_chain.subject", "Intel SGX TCB Signing",
                           "other");
            goto out;
        }
    }

    /* CRLs: the root's covers the PCK CA and the TCB signer, the PCK CA's the PCK leaf. */
    if (col != NULL) {
        X509 *const cas[] = {root, pck_ca};
        X509 *const covered[] = {chain[0], pck_ca, tchain[0]};
        static const char *const names[] = {"pck", "pck_ca", "tcb_signing"};
        for (size_t i = 0; i < col->n_crls; i++) {
            size_t issuer = 0;
            rc = cg__tdx_apply_crl(col->crls[i], col->crl_lens[i], cas, 2, covered, names, 3, at,
                                   &issuer, v);
            if (rc != 0)
                goto out;
            *(issuer == 0 ? &st->root_crl : &st->pck_crl) = 1;
        }
        st->n_crls = col->n_crls;
    }

    /* The QE report, signed by the PCK, binds the attestation key. */
    EVP_PKEY *pck_key = X509_get0_pubkey(chain[0]);
    if (!cg__tdx_is_p256(pck_key)) {
        rc = cg_reject(v, CG_EEVIDENCE, "tdx.pck.key", "EC P-256", "other");
        goto out;
    }
    ok = cg__tdx_ecdsa_verify(pck_key, q->qe_report_raw, CG_TDX_QE_REPORT_SIZE, q->qe_report_sig);
    if (ok != 1) {
        rc = ok < 0 ? ok
                    : cg_reject(v, CG_EEVIDENCE, "tdx.qe_report_signature",
                                "signed by the PCK leaf", "bad signature");
        goto out;
    }
    rc = check_qe_binding(q, v);
    if (rc != 0)
        goto out;
    ak = cg__tdx_p256_key(q->attest_key);
    if (ak == NULL) {
        rc = cg_reject(v, CG_EEVIDENCE, "tdx.attestation_key", "a P-256 point", "invalid");
        goto out;
    }
    ok = cg__tdx_ecdsa_verify(ak, quote, q->signed_len, q->signature);
    if (ok != 1) {
        rc = ok < 0 ? ok
                    : cg_reject(v, CG_EEVIDENCE, "tdx.quote_signature",
                                "signed by the attestation key", "bad signature");
        goto out;
    }

    if (col != NULL && col->tcb_info != NULL) {
        EVP_PKEY *tkey = X509_get0_pubkey(tchain[0]);
        if (!cg__tdx_is_p256(tkey)) {
            rc = cg_reject(v, CG_EEVIDENCE, "tdx.tcb_chain.key", "EC P-256", "other");
            goto out;
        }
        rc = cg__tdx_verify_signed_json(col->tcb_info, col->tcb_info_len, "tcbInfo", tkey,
                                        "tcb_info", &tcb_info, v);
        if (rc != 0)
            goto out;
        rc = cg__tdx_verify_signed_json(col->qe_identity, col->qe_identity_len, "enclaveIdentity",
                                        tkey, "qe_identity", &qe_id, v);
        if (rc != 0)
            goto out;
        rc = cg__tdx_collateral_json(tcb_info, qe_id, q, at, st, v);
        if (rc != 0)
            goto out;
    }
    rc = 0;
out:
    ERR_clear_error();
    json_decref(tcb_info);
    json_decref(qe_id);
    EVP_PKEY_free(ak);
    X509_free(pck_ca);
    X509_free(root);
    cg__tdx_free_chain(chain);
    cg__tdx_free_chain(tchain);
    return rc;
}
