#ifndef CCGATE_SNP_H
#define CCGATE_SNP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ccgate/err.h"
#include "ccgate/evidence.h"

/* AMD SEV-SNP ATTESTATION_REPORT (SEV-SNP ABI spec #56860, Table 22). */
#define CG_SNP_REPORT_SIZE 1184
#define CG_SNP_SIGNED_LEN 0x2A0

enum cg_snp_product { CG_SNP_PRODUCT_UNKNOWN, CG_SNP_MILAN, CG_SNP_GENOA, CG_SNP_TURIN };

/* A TCB_VERSION decoded for its product (Turin adds FMC and moves every field). */
struct cg_snp_tcb {
    uint64_t raw;
    uint8_t fmc; /* Turin only; 0 elsewhere */
    uint8_t bootloader;
    uint8_t tee;
    uint8_t snp;
    uint8_t microcode;
};

struct cg_snp_report {
    uint32_t version;
    uint32_t guest_svn;
    uint64_t policy;
    uint8_t family_id[16];
    uint8_t image_id[16];
    uint32_t vmpl;
    uint32_t signature_algo;
    uint64_t current_tcb;
    uint64_t platform_info;
    uint32_t signer_info;
    uint8_t report_data[64];
    uint8_t measurement[48];
    uint8_t host_data[32];
    uint8_t id_key_digest[48];
    uint8_t author_key_digest[48];
    uint8_t report_id[32];
    uint8_t report_id_ma[32];
    uint64_t reported_tcb;
    uint8_t cpuid_fam_id, cpuid_mod_id, cpuid_step; /* v3+ */
    uint8_t chip_id[64];
    uint64_t committed_tcb;
    uint8_t current_build, current_minor, current_major;
    uint8_t committed_build, committed_minor, committed_major;
    uint64_t launch_tcb;
    uint64_t launch_mit_vector, current_mit_vector; /* v5 */
    uint8_t sig_r[72], sig_s[72];                   /* little-endian, as in the report */
    /* Set by cg_snp_verify(): the product of the signing chain and the decoded TCBs. */
    enum cg_snp_product product;
    int vlek; /* signed by a VLEK rather than a VCEK */
    struct cg_snp_tcb reported, current, committed, launch;
};

/* Policy bits (ABI spec 1.2). */
#define CG_SNP_POLICY_SMT (1ull << 16)
#define CG_SNP_POLICY_RESERVED1 (1ull << 17)
#define CG_SNP_POLICY_MIGRATE_MA (1ull << 18)
#define CG_SNP_POLICY_DEBUG (1ull << 19)

/*
 * Parses a raw report (exactly CG_SNP_REPORT_SIZE bytes, version 2 to 5, MBZ fields zero)
 * into r. Returns 0, or CG_EEVIDENCE with v naming the field.
 */
int cg_snp_report_parse(const uint8_t *buf, size_t len, struct cg_snp_report *r,
                        struct cg_verdict *v);

/* Serializes r into out (CG_SNP_REPORT_SIZE bytes, signature included): the sim TEE's encoder. */
void cg_snp_report_write(const struct cg_snp_report *r, uint8_t out[CG_SNP_REPORT_SIZE]);

/* Decodes a raw TCB_VERSION with the byte layout of product p. */
void cg_snp_tcb_decode(uint64_t raw, enum cg_snp_product p, struct cg_snp_tcb *out);

/* "Milan", "Genoa", "Turin" or "unknown". */
const char *cg_snp_product_name(enum cg_snp_product p);

/* Whom the chain must end at: AMD's ARKs pinned in certs/amd/, or one simulated ARK. */
struct cg_snp_anchor {
    int sim;                    /* 0: the pinned AMD ARK of the VCEK's product */
    uint8_t sim_ark_sha256[32]; /* sim: SHA-256 of the sim ARK certificate (DER) */
};

/*
 * Verifies a report: parse, chain (VCEK/VLEK -> ASK/ASVK -> ARK, RSA-PSS, validity at `at`)
 * up to the anchor, VCEK TCB extensions equal to REPORTED_TCB, hwID equal to CHIP_ID
 * (unless masked), signer-info key type matching the certificate, ECDSA P-384 signature
 * over bytes 0x000-0x29F. certs are DER: certs[0] the VCEK/VLEK, then ASK/ASVK, then
 * (sim, or when given) the ARK. Fills r on success. Returns 0 or CG_EEVIDENCE with v set.
 * No policy is applied here (see cg_policy_appraise_snp()). Order: certificates, product
 * (VCEK productName, CPUID of v3+ reports), chain, signature, then the strict parse of the
 * signed fields, signing key type, TCB and hwID: so a tampered byte fails "snp.signature".
 * Real AMD: an ASK/ASVK or ARK left out is taken from the pinned ones; an ARK given must be
 * the pinned one. Verdict names: docs/policy.md.
 */
int cg_snp_verify(const uint8_t *report, size_t len, const uint8_t *const *certs,
                  const size_t *cert_lens, size_t n_certs, const struct cg_snp_anchor *anchor,
                  time_t at, struct cg_snp_report *r, struct cg_verdict *v);

/*
 * Internal (the fuzz target of the VCEK extensions): the checks cg_snp_verify() makes of the
 * leaf's extensions once its chain and signature verified: productName, each SPL against
 * r's REPORTED_TCB, hwID against r's CHIP_ID. 0 or CG_EEVIDENCE with v set.
 */
int cg__snp_vcek_check(const uint8_t *der, size_t len, const struct cg_snp_report *r,
                       struct cg_verdict *v);

/*
 * Appends the certificates in data (one DER certificate, or any number of PEM ones in order,
 * as AMD KDS serves its ASK+ARK bundle) to out->certs as DER. Returns 0, CG_EEVIDENCE when
 * nothing readable is there, or CG_ELIMIT past CG_EVIDENCE_MAX_CERTS.
 */
int cg_snp_certs_load(const uint8_t *data, size_t len, struct cg_evidence *out);

/*
 * Picks from a bundle of DER certificates (certs[0] the VCEK or VLEK, the others in any
 * order: AMD's ASK+ARK+ASVK files, Azure's VCEK+ASK+ARK file) those cg_snp_verify() takes,
 * in its order: idx[0] = 0, then the certificate whose subject is the leaf's issuer (ASK or
 * ASVK), then its issuer (ARK), as far as they are there; others are left out (the ASVK
 * beside a VCEK). Returns how many (1 to 3), or CG_EEVIDENCE with v set: "snp.vcek.der",
 * "snp.certs.der" (unreadable), "snp.ask" (other certificates, none the leaf's issuer).
 */
int cg_snp_chain_pick(const uint8_t *const *certs, const size_t *cert_lens, size_t n,
                      size_t idx[3], struct cg_verdict *v);

/* An Azure HCL report ("HCLA" header, the SNP report at 0x20..0x4BF, then runtime data). */
struct cg_snp_hcl {
    const uint8_t *report;  /* CG_SNP_REPORT_SIZE bytes inside the buffer parsed */
    const uint8_t *runtime; /* the runtime data (the HCL's JSON), runtime_len bytes */
    size_t runtime_len;
    int runtime_bound; /* REPORT_DATA starts with the runtime data's hash, zero after it */
};

/*
 * Recognizes an Azure HCL report in buf[0..len): 0 when buf is none (no "HCLA" magic), 1
 * when it is one (out points into buf), CG_EEVIDENCE with v set when it is malformed
 * ("snp.hcl.size", "snp.hcl.report_type", "snp.hcl.runtime_size"). Nothing is verified: the
 * report still goes through cg_snp_verify(); runtime_bound tells whether the runtime data
 * is the one the report vouches for.
 */
int cg_snp_hcl_parse(const uint8_t *buf, size_t len, struct cg_snp_hcl *out,
                     struct cg_verdict *v);

#endif
