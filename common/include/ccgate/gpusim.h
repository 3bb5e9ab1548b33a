#ifndef CCGATE_GPUSIM_H
#define CCGATE_GPUSIM_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * The simulated NVIDIA GPU, for the simulated TEE: a sim root (EC P-384) that issues a
 * device leaf (with a Hopper-form FWID extension) and a RIM signer, kept in
 * <state_dir>/gpu-sim.pem. It produces byte-exact SPDM 1.1 measurement reports signed by
 * the leaf, a driver RIM and a VBIOS RIM signed like NVIDIA's, and OCSP responses signed by
 * the root: so the real verifier checks it, against the sim root the policy names.
 */
#define CG_GPUSIM_DRIVER_VERSION "999.00.01"
#define CG_GPUSIM_VBIOS_VERSION "96.00.99.00.01"
#define CG_GPUSIM_BLOCKS 40
#define CG_GPUSIM_NVDEC_INDEX 35 /* RIM index; the report's block 36 */

struct cg_gpusim;

/*
 * Creates the sim GPU's keys and certificates in state_dir if missing (never overwrites)
 * and writes the SHA-256 of the sim root certificate (DER) into root_sha256. 0 or negative.
 */
int cg_gpusim_init(const char *state_dir, uint8_t root_sha256[32]);

/* Loads the sim GPU of state_dir (cg_gpusim_init first). Caller frees with cg_gpusim_free. */
int cg_gpusim_open(const char *state_dir, struct cg_gpusim **out);
void cg_gpusim_free(struct cg_gpusim *s);

/* What a report should say; zeroed = a genuine report over nonce. */
struct cg_gpusim_report_opts {
    uint8_t nonce[32];
    unsigned tamper_block;      /* non-zero: this block's value differs from the RIM (signed) */
    uint8_t nvdec0_status;      /* 0: disabled (0x55) */
    const char *driver_version; /* NULL: CG_GPUSIM_DRIVER_VERSION */
    int tamper_fwid;            /* the opaque FWID differs from the leaf's (signed) */
};

/* A signed request || response. Caller frees *out. 0 or CG_ECRYPTO. */
int cg_gpusim_report(struct cg_gpusim *s, const struct cg_gpusim_report_opts *o, uint8_t **out,
                     size_t *len);

/* ECDSA P-384 / SHA-384 by the sim leaf over data, r || s big-endian: how reports are signed
 * (and how the GPU fuzz target re-signs what it mutated). 0 or CG_ECRYPTO. */
int cg_gpusim_sign(struct cg_gpusim *s, const uint8_t *data, size_t len, uint8_t sig[96]);

/* The device chain as PEM, leaf first, root last. Caller frees. */
int cg_gpusim_chain_pem(struct cg_gpusim *s, char **out, size_t *len);

/* Which RIM: the driver's (indices 20-39), the VBIOS's (0-19), or for tests a VBIOS RIM that
 * also claims the driver's index 20. */
enum cg_gpusim_rim_kind { CG_GPUSIM_RIM_DRIVER, CG_GPUSIM_RIM_VBIOS, CG_GPUSIM_RIM_VBIOS_OVERLAP };

/* A signed RIM for the sim's versions. Caller frees. */
int cg_gpusim_rim(struct cg_gpusim *s, enum cg_gpusim_rim_kind kind, uint8_t **out, size_t *len);

/* Which certificate an OCSP response is about. */
enum cg_gpusim_cert { CG_GPUSIM_LEAF, CG_GPUSIM_RIM_SIGNER };

/*
 * A DER OCSP response about cert, signed by the root: status 0 good, 1 revoked at
 * revoked_at; valid from this_update to next_update. Caller frees. 0 or CG_ECRYPTO.
 */
int cg_gpusim_ocsp(struct cg_gpusim *s, enum cg_gpusim_cert cert, int revoked, time_t revoked_at,
                   time_t this_update, time_t next_update, uint8_t **out, size_t *len);

struct cg_gpu_provider;

/*
 * A GPU provider (gpuev.h) that presents one simulated GPU of state_dir: a report over the
 * nonce, its chain, CC on and DEVTOOLS off, both RIMs (signed once here) and fresh OCSP
 * responses (valid from a minute ago for a day) for the leaf and the RIM signer. Caller
 * frees with p->free(p). 0 or a negative code.
 */
int cg_gpusim_provider_new(const char *state_dir, struct cg_gpu_provider **out);

#endif
