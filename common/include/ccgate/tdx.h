#ifndef CCGATE_TDX_H
#define CCGATE_TDX_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ccgate/err.h"

/*
 * Intel TDX DCAP ECDSA quotes, versions 4 and 5 (Intel TDX DCAP Quote Generation / Quote
 * Verification Library, appendix "quote format"; shared/ATTESTATION.md section 2), and
 * their offline verification against Intel's pinned SGX Root CA and PCS collateral.
 */
#define CG_TDX_QUOTE_MAX (64 * 1024)       /* a bigger buffer is refused unread */
#define CG_TDX_COLLATERAL_MAX (256 * 1024) /* per TCB info, QE identity, chain or CRL */
#define CG_TDX_HEADER_SIZE 48
#define CG_TDX_BODY10_SIZE 584 /* TD 1.0 report body (v4, v5 type 2) */
#define CG_TDX_BODY15_SIZE 648 /* TD 1.5 body (v5 type 3) */
#define CG_TDX_QE_REPORT_SIZE 384
#define CG_TDX_MAX_CRLS 4
#define CG_TDX_MAX_ADVISORIES 32

/* TDATTRIBUTES bits (Intel TDX Module spec A.3.4). */
#define CG_TDX_ATTR_DEBUG (1ull << 0)
#define CG_TDX_ATTR_SEPT_VE_DISABLE (1ull << 28)
#define CG_TDX_ATTR_PKS (1ull << 30)
#define CG_TDX_ATTR_KL (1ull << 31)
#define CG_TDX_ATTR_PERFMON (1ull << 63)
/* Every bit the module spec reserves: must be zero. */
#define CG_TDX_ATTR_RESERVED                                                                       \
    (~(CG_TDX_ATTR_DEBUG | CG_TDX_ATTR_SEPT_VE_DISABLE | CG_TDX_ATTR_PKS | CG_TDX_ATTR_KL |        \
       CG_TDX_ATTR_PERFMON))

/* SGX REPORT BODY of the Quoting Enclave, as embedded in the certification data. */
struct cg_tdx_qe_report {
    uint8_t cpusvn[16];
    uint32_t miscselect;
    uint8_t attributes[16];
    uint8_t mrenclave[32];
    uint8_t mrsigner[32];
    uint16_t isvprodid;
    uint16_t isvsvn;
    uint8_t report_data[64];
};

/* Values of the PCK leaf's SGX extension (OID 1.2.840.113741.1.13.1). */
struct cg_tdx_pck_info {
    uint8_t ppid[16];
    uint8_t sgx_tcb[16]; /* SGX TCB component SVNs .2.1 - .2.16 */
    uint16_t pcesvn;
    uint8_t cpusvn[16];
    uint8_t pceid[2];
    uint8_t fmspc[6];
};

/*
 * A parsed quote. Integers are host order; measurements are the quote's bytes. The
 * pointers qe_auth and pck_chain are borrowed from the buffer given to
 * cg_tdx_quote_parse(), which must outlive the struct.
 */
struct cg_tdx_quote {
    uint16_t version;      /* 4 or 5 */
    uint16_t att_key_type; /* 2 */
    uint32_t tee_type;     /* 0x81 */
    uint8_t qe_vendor_id[16];
    uint8_t user_data[20];
    uint16_t body_type; /* 2 = TD 1.0 (v4 always), 3 = TD 1.5 */
    uint8_t tee_tcb_svn[16];
    uint8_t mrseam[48];
    uint8_t mrsignerseam[48];
    uint64_t seam_attributes;
    uint64_t td_attributes;
    uint64_t xfam;
    uint8_t mrtd[48];
    uint8_t mrconfigid[48];
    uint8_t mrowner[48];
    uint8_t mrownerconfig[48];
    uint8_t rtmr[4][48];
    uint8_t report_data[64];
    uint8_t tee_tcb_svn2[16]; /* body type 3 only, else zero */
    uint8_t mrservicetd[48];  /* body type 3 only, else zero */
    size_t signed_len;        /* bytes [0, signed_len) are covered by the quote signature */
    uint8_t signature[64];    /* r || s, big-endian */
    uint8_t attest_key[64];   /* X || Y */
    uint8_t qe_report_raw[CG_TDX_QE_REPORT_SIZE];
    struct cg_tdx_qe_report qe_report;
    uint8_t qe_report_sig[64];
    const uint8_t *qe_auth;
    size_t qe_auth_len;
    const char *pck_chain; /* PEM, leaf first, trailing NULs removed */
    size_t pck_chain_len;
    /* Set by cg_tdx_verify() once the PCK chain is verified. */
    struct cg_tdx_pck_info pck;
};

/* TCB statuses, best first; the numeric order is how statuses are merged (worst wins). */
enum cg_tdx_tcb_status {
    CG_TDX_TCB_NOT_EVALUATED = 0, /* no collateral given */
    CG_TDX_TCB_UP_TO_DATE,
    CG_TDX_TCB_SW_HARDENING_NEEDED,
    CG_TDX_TCB_CONFIGURATION_NEEDED,
    CG_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
    CG_TDX_TCB_OUT_OF_DATE,
    CG_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
    CG_TDX_TCB_REVOKED,
};

/* The PCS spelling of s ("UpToDate", ...; "NotEvaluated" for CG_TDX_TCB_NOT_EVALUATED). */
const char *cg_tdx_tcb_status_name(enum cg_tdx_tcb_status s);

/* Parses a PCS status name (exact spelling); returns 0 or CG_ECONFIG. */
int cg_tdx_tcb_status_parse(const char *name, enum cg_tdx_tcb_status *out);

/* Parses "YYYY-MM-DDTHH:MM:SSZ" (the PCS date format, UTC); returns 0 or CG_ECONFIG. */
int cg_tdx_time_parse(const char *s, time_t *out);

/*
 * PCS collateral for one quote, all borrowed from the caller. tcb_info and qe_identity are
 * the PCS response bodies ({"tcbInfo":...,"signature":...}, {"enclaveIdentity":...}),
 * tcb_chain their issuer chain (PEM: Intel SGX TCB Signing, optionally the root). The three
 * go together: all NULL, or all given. crls[] are DER or PEM CRLs issued by the Intel SGX
 * Root CA or the PCK Platform/Processor CA of the quote's chain, any number up to
 * CG_TDX_MAX_CRLS, in any order.
 */
struct cg_tdx_collateral {
    const char *tcb_info;
    size_t tcb_info_len;
    const char *qe_identity;
    size_t qe_identity_len;
    const char *tcb_chain;
    size_t tcb_chain_len;
    const uint8_t *crls[CG_TDX_MAX_CRLS];
    size_t crl_lens[CG_TDX_MAX_CRLS];
    size_t n_crls;
};

/*
 * Sorts endorsement blobs (e.g. cg_evidence.certs[]) into col by their content: a PCS body
 * {"tcbInfo":...} or {"enclaveIdentity":...}, a PEM certificate chain (the TCB signing
 * chain), or a CRL (DER or PEM). col borrows the blobs. Returns 0, or CG_EEVIDENCE with v
 * set ("tdx.collateral") for an unrecognized blob, a second TCB info, QE identity or chain,
 * or more than CG_TDX_MAX_CRLS CRLs.
 */
int cg_tdx_collateral_from_blobs(const uint8_t *const *blobs, const size_t *lens, size_t n,
                                 struct cg_tdx_collateral *col, struct cg_verdict *v);

/* What verification learned beyond the quote: TCB statuses, advisories, what was checked. */
struct cg_tdx_status {
    int collateral;                    /* TCB info and QE identity were verified and applied */
    size_t n_crls;                     /* CRLs verified and applied */
    int root_crl;                      /* one of them was the Intel SGX Root CA's */
    int pck_crl;                       /* one of them was the PCK CA's */
    enum cg_tdx_tcb_status tcb_status; /* platform, module and QE merged */
    enum cg_tdx_tcb_status platform_status;
    enum cg_tdx_tcb_status module_status;
    enum cg_tdx_tcb_status qe_status;
    char tcb_date[32]; /* of the matching platform TCB level */
    uint32_t tcb_evaluation_data_number;
    size_t n_advisories;
    char advisories[CG_TDX_MAX_ADVISORIES][32];
};

/*
 * Parses a quote from buf[0..len) by its length fields; only zero padding may follow the
 * signature data ("tdx.quote.trailing" otherwise): v4 or
 * v5 (body type 2 or 3), ECDSA P-256 attestation key, TDX TEE type, Intel QE vendor id,
 * certification data type 6 holding the QE report, its signature, the QE authentication
 * data and a type 5 PEM PCK chain. No cryptography. Returns 0, or CG_EEVIDENCE with v
 * naming the field ("tdx.quote.version", "tdx.quote.size", ...).
 */
int cg_tdx_quote_parse(const uint8_t *buf, size_t len, struct cg_tdx_quote *q,
                       struct cg_verdict *v);

/*
 * Verifies a quote at time `at`, as Intel's QVL does: parse; PCK chain (leaf -> PCK
 * Platform/Processor CA -> the Intel SGX Root CA pinned in certs/intel/); CRLs when given
 * (signature, validity, revocation of every certificate they cover); QE report signed by
 * the PCK leaf; QE report data == SHA-256(attestation key || QE auth data) || 0^32; quote
 * signature by the attestation key; then, when col holds TCB info and QE identity: their
 * signing chain and signatures, validity, FMSPC/PCE-ID against the PCK certificate, QE
 * identity, platform TCB level, TDX module identity, giving st's statuses and advisories.
 * col may be NULL (st->collateral = 0, statuses NOT_EVALUATED). Fills q and st (both may
 * be used after a failure only to report). Returns 0 or CG_EEVIDENCE with v set
 * ("tdx.quote_signature", "tdx.pck_chain", "tdx.tcb_info.expired", ...). A TCB status that
 * is merely out of date is not a failure here: cg_tdx_appraise() decides.
 */
int cg_tdx_verify(const uint8_t *quote, size_t len, const struct cg_tdx_collateral *col, time_t at,
                  struct cg_tdx_quote *q, struct cg_tdx_status *st, struct cg_verdict *v);

/*
 * Internal (and the fuzz target of the PCK certificate's SGX extension): parses the content
 * of extension 1.2.840.113741.1.13.1 into pck: PPID, TCB (SGX components 1-16, PCESVN,
 * CPUSVN, each once), PCE-ID and FMSPC required. 0 or -1.
 */
int cg__tdx_pck_extension_parse(const uint8_t *data, size_t len, struct cg_tdx_pck_info *pck);

/*
 * Internal, for tests: applies one CRL (DER or PEM) issued by ca_pem to cert_pem exactly as
 * cg_tdx_verify() applies CRLs to the PCK chain (issuer, signature, validity at `at`,
 * revocation, reported as "tdx.pck.revoked"). Returns 0, CG_EEVIDENCE with v set, or
 * CG_ECONFIG if a certificate is unreadable.
 */
int cg__tdx_crl_check(const uint8_t *crl, size_t crl_len, const char *ca_pem, size_t ca_len,
                      const char *cert_pem, size_t cert_len, time_t at, struct cg_verdict *v);

/*
 * Internal, for tests: applies the "tcbInfo" and "enclaveIdentity" objects (their JSON text,
 * taken as authentic: no signature here) to q, which cg_tdx_verify() has verified, exactly
 * as cg_tdx_verify() does after checking their signatures. Fills st. Returns 0,
 * CG_EEVIDENCE with v set, or CG_ECONFIG if either text is not a JSON object.
 */
int cg__tdx_apply_collateral(const char *tcb_info, size_t tcb_info_len, const char *qe_identity,
                             size_t qe_identity_len, const struct cg_tdx_quote *q, time_t at,
                             struct cg_tdx_status *st, struct cg_verdict *v);

#define CG_TDX_POLICY_MAX_VALUES 64

/* An allowlist of 48-byte measurements; n == 0 means "any". */
struct cg_tdx_allow48 {
    size_t n;
    uint8_t v[CG_TDX_POLICY_MAX_VALUES][48];
};

/*
 * The "tdx" section of a policy (docs: each key below; unknown keys are errors). Plain
 * data: nothing to free. Measurement keys take one hex string or an array of them.
 *   mrtd, rtmr0..rtmr3, mrseam, mrconfigid, mrowner, mrownerconfig: allowlists
 *   allow_debug (false): accept TDATTRIBUTES.DEBUG
 *   require_sept_ve_disable (true): require TDATTRIBUTES.SEPT_VE_DISABLE, without which the
 *     host can inject #VE on EPT violations into the TD (Phala dcap-qvl's default too)
 *   xfam: 16 hex digits, the quote's 8 XFAM bytes as they appear in the quote
 *   mrservicetd: allowlist; when absent it must be all zero (no service TD bound)
 *   accepted_tcb_statuses (["UpToDate"]): "Revoked" can never be accepted
 *   require_crls (true): the Root CA CRL and the PCK CA CRL must both have been applied,
 *     as Intel's QVL requires
 */
struct cg_tdx_policy {
    int present;
    struct cg_tdx_allow48 mrtd;
    struct cg_tdx_allow48 rtmr[4];
    struct cg_tdx_allow48 mrseam;
    struct cg_tdx_allow48 mrconfigid;
    struct cg_tdx_allow48 mrowner;
    struct cg_tdx_allow48 mrownerconfig;
    struct cg_tdx_allow48 mrservicetd;
    int allow_debug;
    int require_sept_ve_disable;
    int require_crls;
    int has_xfam;
    uint8_t xfam[8];
    uint32_t accepted_tcb; /* bit (1 << status) per accepted status */
};

/* Fills p with the defaults above (present = 1). */
void cg_tdx_policy_default(struct cg_tdx_policy *p);

/*
 * Parses the "tdx" policy object (a json_t *, passed as const void * so that callers need
 * not include jansson) into out, defaults first. Returns 0, or CG_ECONFIG with err naming
 * the path ("tdx.mrtd[2]: expected 96 hex digits", "tdx.colour: unknown key").
 */
int cg_tdx_policy_parse(const void *json_object, struct cg_tdx_policy *out, char *err,
                        size_t errlen);

/*
 * Appraises a verified quote q with status st against p: reserved TD attributes, debug,
 * SEPT_VE_DISABLE, XFAM, MRTD, RTMR0-3, MRSEAM, MRCONFIGID, MROWNER, MROWNERCONFIG,
 * MRSERVICETD, CRLs applied, TCB status. Returns 0 or CG_EPOLICY with v naming the check
 * ("tdx.mrtd", "tdx.rtmr2", "tdx.attributes.debug", "tdx.tcb_status", ...).
 */
int cg_tdx_appraise(const struct cg_tdx_policy *p, const struct cg_tdx_quote *q,
                    const struct cg_tdx_status *st, struct cg_verdict *v);

#endif
