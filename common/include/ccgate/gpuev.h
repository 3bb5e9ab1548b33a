#ifndef CCGATE_GPUEV_H
#define CCGATE_GPUEV_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ccgate/cbor.h"
#include "ccgate/err.h"
#include "ccgate/gpu.h"
#include "ccgate/ocsp.h"

/*
 * The GPU evidence a server attaches to its RA-TLS claims ("gpu", DESIGN.md section 3) and
 * its appraisal. The bytes are a JSON CMW collection (draft-ietf-rats-msg-wrap):
 *   {"__cmwc_t": "tag:ccgate.dev,2026:gpu",
 *    "evidence":   ["application/vnd.veraison.nvidia-gpu-evidence+json", b64url(JSON)],
 *    "collateral": ["application/vnd.ccgate.nvidia-gpu-collateral+json", b64url(JSON)]}
 * where the evidence is NVIDIA's evidence list, one object per GPU
 *   {"arch", "nonce" (hex), "evidence" (base64 SPDM request || response),
 *    "certificate" (base64 PEM chain), "cc_mode", "devtools"}
 * (cc_mode and devtools are what the attested server read from NVML), and the collateral
 *   {"rims": [base64 RIM...], "ocsp": [base64 DER OCSP response...]}.
 * The CPU report covers these bytes (report_data = SHA-256 of the claims holding them), and
 * each GPU's SPDM nonce is cg_gpuev_nonce() of the same claims: a GPU report cannot be
 * replayed from another handshake nor moved under another CPU report.
 */
#define CG_GPUEV_MEDIA_TYPE "application/vnd.veraison.nvidia-gpu-evidence+json"
#define CG_GPUEV_COLLATERAL_TYPE "application/vnd.ccgate.nvidia-gpu-collateral+json"
#define CG_GPUEV_MAX_GPUS 8
#define CG_GPUEV_MAX_RIMS 16
#define CG_GPUEV_MAX_BYTES CG_CLAIMS_GPU_MAX_BYTES
#define CG_GPUEV_MAX_VERSIONS 16

struct cg_gpuev_gpu {
    char arch[16];
    uint8_t *report;
    size_t report_len;
    char *chain_pem;
    size_t chain_len;
    int cc_mode;  /* NVML said CC mode is on */
    int devtools; /* NVML said DEVTOOLS mode is on */
};

/* Everything owned: release with cg_gpuev_clear(). */
struct cg_gpuev {
    size_t n_gpus;
    struct cg_gpuev_gpu gpus[CG_GPUEV_MAX_GPUS];
    size_t n_rims;
    uint8_t *rims[CG_GPUEV_MAX_RIMS];
    size_t rim_lens[CG_GPUEV_MAX_RIMS];
    size_t n_ocsp;
    uint8_t *ocsp[CG_OCSP_MAX_RESPONSES];
    size_t ocsp_lens[CG_OCSP_MAX_RESPONSES];
};

void cg_gpuev_clear(struct cg_gpuev *e);

/* Serializes e (caller frees *out). 0, CG_ELIMIT past CG_GPUEV_MAX_BYTES, or -ENOMEM. */
int cg_gpuev_encode(const struct cg_gpuev *e, uint8_t **out, size_t *len);

/* Parses the bytes (strict: known members, media types, limits). 0 or CG_EEVIDENCE with v. */
int cg_gpuev_decode(const uint8_t *buf, size_t len, struct cg_gpuev *e, struct cg_verdict *v);

/* Adds a copy of data to e's RIMs (rim != 0) or OCSP responses. 0, CG_ELIMIT or -ENOMEM. */
int cg_gpuev_add_collateral(struct cg_gpuev *e, int rim, const uint8_t *data, size_t len);

/*
 * Adds every file of the collateral folder dir to e: XML files (the first non-blank byte
 * '<') as RIMs, the others as DER OCSP responses. 0, or a negative code (CG_ECONFIG,
 * CG_ELIMIT, -errno) with err
 * naming the file.
 */
int cg_gpuev_load_collateral(const char *dir, struct cg_gpuev *e, char *err, size_t errlen);

/*
 * A GPU evidence provider (server side). get() blocks (NVML takes a while) and runs on a
 * worker thread, one call at a time: it fills out (zeroed by the caller; the caller clears
 * it) with every GPU's report over nonce, its chain, CC and DEVTOOLS state, and the
 * collateral.
 */
struct cg_gpu_provider {
    const char *name; /* "sim", "nvml" */
    int (*get)(struct cg_gpu_provider *p, const uint8_t nonce[32], struct cg_gpuev *out);
    void (*free)(struct cg_gpu_provider *p);
};

/*
 * The SPDM nonce for the GPUs of a claims set: SHA-256("ccgate gpu nonce v1" || 0x00 ||
 * pubkey_hash || iat (8 bytes big-endian) || n_nonces (4 bytes big-endian) || nonces).
 */
void cg_gpuev_nonce(const uint8_t pubkey_hash[32], int64_t iat, const uint8_t (*nonces)[32],
                    size_t n_nonces, uint8_t out[32]);

enum cg_gpu_ocsp_mode { CG_GPU_OCSP_OFF, CG_GPU_OCSP_REQUIRE };

/* The policy's "gpu" section (docs/policy.md); plain data. */
struct cg_gpu_policy {
    int present;        /* a "gpu" object was given */
    int required;       /* default true: the server must present GPU evidence */
    unsigned count;     /* 0: any; else exactly this many GPUs */
    unsigned min_count; /* default 1 */
    int allow_sim;
    int has_sim_root;
    uint8_t sim_root_sha256[32];
    size_t n_drivers; /* 0: any */
    char drivers[CG_GPUEV_MAX_VERSIONS][32];
    size_t n_vbios; /* 0: any */
    char vbios[CG_GPUEV_MAX_VERSIONS][32];
    int require_rims;           /* default true */
    enum cg_gpu_ocsp_mode ocsp; /* default require */
    uint32_t ocsp_grace_s;      /* revoked accepted this long after revocation; default 0 */
    int allow_devtools;         /* default false */
    int allow_cc_off;           /* default false */
};

/* One appraised GPU, for logs and /verification. */
struct cg_gpuev_result {
    struct cg_gpu_device dev;
    char driver_version[CG_SPDM_TEXT_MAX];
    char vbios_version[CG_SPDM_TEXT_MAX];
    int sim;
    int rims_checked; /* measurements matched the driver and VBIOS RIMs */
    enum cg_ocsp_status ocsp;
};

/* Collateral for one GPU, borrowed: RIMs (NULL when absent) and stapled OCSP responses. */
struct cg_gpuev_collateral {
    const uint8_t *driver_rim, *vbios_rim;
    size_t driver_rim_len, vbios_rim_len;
    struct cg_ocsp_set ocsp;
};

/*
 * Verifies one GPU: cg_gpu_verify_report (anchor: the pinned root, or the policy's sim root
 * when allow_sim), then (when RIMs are given, or the policy requires them) both RIMs
 * (cg_rim_verify at `at`, their version equal to the report's driver / VBIOS version), no
 * active index in both, every active index of each present in the report with a value
 * equal to one of its alternatives, the NVDEC0 index skipped only when the report says
 * NVDEC0 is disabled; OCSP (policy mode require: every device and RIM certificate but the
 * roots); then the policy's driver and VBIOS allowlists. nonce may be NULL (not checked).
 * Returns 0 with out filled, or CG_EEVIDENCE / CG_EPOLICY with v naming the check.
 */
int cg_gpuev_verify_one(const uint8_t *report, size_t report_len, const struct cg_gpu_chain *chain,
                        const struct cg_gpuev_collateral *col, const struct cg_gpu_policy *p,
                        const uint8_t *nonce, time_t at, struct cg_gpuev_result *out,
                        struct cg_verdict *v);

/*
 * Appraises a decoded bundle against the policy: the GPU count, each GPU's cc_mode and
 * devtools, cg_gpuev_verify_one for each (with the bundle's collateral, the RIMs chosen by
 * version) over the expected nonce. out has room for CG_GPUEV_MAX_GPUS; *n_out is set.
 */
int cg_gpuev_verify(const struct cg_gpuev *e, const struct cg_gpu_policy *p,
                    const uint8_t nonce[32], time_t at, struct cg_gpuev_result *out, size_t *n_out,
                    struct cg_verdict *v);

#endif
