#ifndef CCGATE_GPU_H
#define CCGATE_GPU_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ccgate/err.h"
#include "ccgate/spdm.h"

/*
 * The NVIDIA GPU verifier (ATTESTATION.md 3.3, 3.4): an SPDM measurement report, its device
 * certificate chain to the pinned NVIDIA Device Identity CA, the FWID binding, the nonce,
 * and (cg_gpu_verify) the RIMs and stapled OCSP responses.
 */
#define CG_GPU_MAX_CHAIN 5
#define CG_GPU_CHAIN_MAX_BYTES (16 * 1024)
#define CG_GPU_OID_DICE_TCB "2.23.133.5.4.1"

enum cg_gpu_arch { CG_GPU_ARCH_UNKNOWN, CG_GPU_HOPPER, CG_GPU_BLACKWELL };

/* "hopper", "blackwell" or "unknown". */
const char *cg_gpu_arch_name(enum cg_gpu_arch a);

/* Whom a chain must end at: NVIDIA's pinned root, or a simulated root named by its hash. */
struct cg_gpu_anchor {
    int sim;
    uint8_t sim_root_sha256[32]; /* SHA-256 of the sim root certificate (DER) */
};

/* A device certificate chain, DER, leaf first. Owned: release with cg_gpu_chain_clear(). */
struct cg_gpu_chain {
    uint8_t *certs[CG_GPU_MAX_CHAIN];
    size_t cert_lens[CG_GPU_MAX_CHAIN];
    size_t n;
};

/*
 * Reads a PEM chain (leaf first, as NVML's attestationCertChain) into c. Returns 0, or
 * CG_EEVIDENCE with v set ("gpu.chain": unreadable, none, or more than CG_GPU_MAX_CHAIN).
 */
int cg_gpu_chain_load(const uint8_t *pem, size_t len, struct cg_gpu_chain *c, struct cg_verdict *v);
void cg_gpu_chain_clear(struct cg_gpu_chain *c);

/*
 * The FWID of a leaf certificate (DER) and the architecture its extension's form tells
 * (Hopper or Blackwell). Returns 0 or CG_EEVIDENCE with v ("gpu.fwid", "gpu.leaf").
 */
int cg_gpu_leaf_fwid(const uint8_t *der, size_t len, enum cg_gpu_arch *arch,
                     uint8_t fwid[CG_SPDM_FWID_LEN], struct cg_verdict *v);

/* What a verified report says, beside the parsed report itself. */
struct cg_gpu_device {
    enum cg_gpu_arch arch;
    char model[64]; /* the leaf's common name, e.g. "GH100 A01 GSP FMC LF" */
    uint8_t fwid[CG_SPDM_FWID_LEN];
    uint8_t root_sha256[32];
};

/*
 * Verifies a report against its chain: parse (cg_spdm_parse), at least leaf and root and at
 * most CG_GPU_MAX_CHAIN certificates, ECDSA P-384 / SHA-384 signature by the leaf over
 * request || response-without-signature, the chain to the anchor at time at (the pinned
 * NVIDIA Device Identity CA, or the sim root), the leaf's FWID (Hopper: the last 48 bytes of
 * its 2.23.133.5.4.1 extension; Blackwell: DiceTcbInfo fwids[0]) equal to the opaque FWID,
 * and (nonce != NULL) the request nonce equal to nonce. r and d are filled on success (r
 * is also filled as far as parsing got). Returns 0 or CG_EEVIDENCE with v naming the check
 * ("gpu.signature", "gpu.chain", "gpu.fwid", "gpu.nonce", ...).
 */
int cg_gpu_verify_report(const uint8_t *report, size_t len, const struct cg_gpu_chain *chain,
                         const struct cg_gpu_anchor *anchor, const uint8_t *nonce, time_t at,
                         struct cg_spdm_report *r, struct cg_gpu_device *d, struct cg_verdict *v);

#endif
