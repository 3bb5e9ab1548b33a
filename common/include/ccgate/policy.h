#ifndef CCGATE_POLICY_H
#define CCGATE_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "ccgate/err.h"
#include "ccgate/gpuev.h"
#include "ccgate/snp.h"
#include "ccgate/tdx.h"

#define CG_POLICY_MAX_MEASUREMENTS 64
#define CG_POLICY_MAX_BYTES (256 * 1024)

enum cg_freshness { CG_FRESH_NONCE, CG_FRESH_MAX_AGE };

/* The user's appraisal policy (docs/policy.md). Plain data: parse fills it, nothing to free. */
struct cg_policy {
    struct {
        int allow;
        int has_root;
        uint8_t root_sha256[32];
    } sim;
    struct cg_policy_snp {
        int present; /* an "snp" object was given: real SNP evidence is acceptable */
        size_t n_measurements;
        uint8_t measurements[CG_POLICY_MAX_MEASUREMENTS][48];
        int has_min_tcb;
        struct cg_snp_tcb min_tcb; /* against REPORTED_TCB (the TCB the VCEK certifies) */
        int debug;                 /* allowed? default false */
        int migration_agent;       /* allowed? default false */
        int max_vmpl;              /* default 0 */
        int has_host_data;
        uint8_t host_data[32];
        uint32_t min_guest_svn;
        /* Added beyond the first draft (docs/policy.md): */
        int has_family_id;
        uint8_t family_id[16];
        int has_image_id;
        uint8_t image_id[16];
        size_t n_id_key_digests; /* 0: any; else ID_KEY_DIGEST must be one of these */
        uint8_t id_key_digests[CG_POLICY_MAX_MEASUREMENTS][48];
        size_t n_author_key_digests; /* 0: any; else AUTHOR_KEY_EN and one of these */
        uint8_t author_key_digests[CG_POLICY_MAX_MEASUREMENTS][48];
        int require_id_block; /* default false: ID_KEY_DIGEST must be non-zero */
        int smt;              /* allowed? default true */
        int has_min_committed_tcb;
        struct cg_snp_tcb min_committed_tcb;
        int has_min_launch_tcb;
        struct cg_snp_tcb min_launch_tcb;
        int has_min_fw;
        uint8_t min_fw_major, min_fw_minor; /* current firmware at least major.minor */
        int allow_provisional_firmware;     /* default false: committed == current fw */
        size_t n_chip_ids;                  /* 0: any; else CHIP_ID must be one of these */
        uint8_t chip_ids[CG_POLICY_MAX_MEASUREMENTS][64];
    } snp;
    /* The "tdx" object (cg_tdx_policy_parse()); tdx.present: real TDX evidence is acceptable. */
    struct cg_tdx_policy tdx;
    /* The "gpu" object (docs/policy.md); gpu.present: GPU evidence is appraised. */
    struct cg_gpu_policy gpu;
    /* The "model" object (docs/policy.md): the claims must name a sealed model that matches. */
    struct cg_model_policy {
        int present;
        char name[CG_MODEL_NAME_MAX + 1]; /* "": any */
        size_t n_sha256;                  /* 0: any; else the plaintext digest is one of these */
        uint8_t sha256[CG_POLICY_MAX_MEASUREMENTS][32];
        uint64_t min_version;
    } model;
    struct {
        enum cg_freshness mode; /* default nonce */
        uint32_t max_age_s;     /* default 600 */
    } freshness;
    uint8_t digest[32]; /* SHA-256 of the policy file's bytes */
};

/*
 * Parses policy JSON. Unknown keys, wrong types and bad values are errors: returns
 * CG_ECONFIG with err holding e.g. "snp.measurements[1]: expected 96 hex digits".
 */
int cg_policy_parse(const char *json, size_t len, struct cg_policy *p, char *err, size_t errlen);

/* Reads and parses a policy file (at most CG_POLICY_MAX_BYTES). Same errors, plus I/O. */
int cg_policy_load(const char *path, struct cg_policy *p, char *err, size_t errlen);

/*
 * Appraises a verified SNP (or sim) report against the policy's snp section (sim evidence
 * is appraised with the same checks: the sim section only decides whether sim is acceptable
 * and by which root). r->product, set by cg_snp_verify(), decodes the TCBs. Returns 0 or CG_EPOLICY with v naming the check ("snp.measurement",
 * "snp.debug", "snp.min_tcb.microcode", ...) and the expected and actual values.
 */
int cg_policy_appraise_snp(const struct cg_policy *p, const struct cg_snp_report *r,
                           struct cg_verdict *v);

/*
 * Appraises the claims' model against the policy's model section (nothing to do without
 * one): "model.present" (the claims name no model), "model.name", "model.sha256",
 * "model.version". Returns 0 or CG_EPOLICY with v set.
 */
int cg_policy_appraise_model(const struct cg_model_policy *p, const struct cg_model_claim *m,
                             struct cg_verdict *v);

#endif
