#ifndef CCGATE_RIM_H
#define CCGATE_RIM_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ccgate/err.h"

/*
 * NVIDIA Reference Integrity Manifests (ATTESTATION.md 3.4): ISO 19770-2 SWID tags with the
 * TCG RIM binding, signed with an enveloped XML-DSig (c14n 1.1, ecdsa-sha384, sha384), the
 * signing chain in KeyInfo up to the RIM root (certs/nvidia/rim_root.pem).
 */
#define CG_RIM_MAX_BYTES (256 * 1024)
#define CG_RIM_MAX_MEASUREMENTS 256
#define CG_RIM_MAX_ALTERNATIVES 8
#define CG_RIM_HASH_LEN 48
#define CG_RIM_MAX_CHAIN 5

struct cg_rim_measurement {
    unsigned index; /* the report's block index minus one */
    int active;
    size_t n_alts;
    uint8_t alts[CG_RIM_MAX_ALTERNATIVES][CG_RIM_HASH_LEN];
};

struct cg_rim {
    char tag_id[128];
    char version[32]; /* Meta colloquialVersion: driver "550.90.07", VBIOS "96.00.9F.00.01" */
    char product[32]; /* Meta product, e.g. "GH100" */
    size_t n;
    struct cg_rim_measurement m[CG_RIM_MAX_MEASUREMENTS];
    /* The verified signing path (DER, the signer first, the root last), for the OCSP checks. */
    size_t n_chain;
    uint8_t *chain[CG_RIM_MAX_CHAIN];
    size_t chain_lens[CG_RIM_MAX_CHAIN];
};

/* Frees what r owns (the chain). Safe on a zeroed struct. */
void cg_rim_clear(struct cg_rim *r);

/*
 * Reads the SWID content (tag id, Meta, Measurement resources) of a RIM without checking
 * its signature: for inspection and fuzzing. No DTD, no entities, no network; at most
 * CG_RIM_MAX_BYTES. Returns 0 or CG_EEVIDENCE with v naming the field ("gpu.rim.*").
 */
int cg_rim_parse(const uint8_t *xml, size_t len, struct cg_rim *r, struct cg_verdict *v);

/*
 * Verifies a RIM: exactly one enveloped signature with exactly one Reference URI="" over
 * the whole document (enveloped-signature, c14n 1.1, sha384), signature method ecdsa-sha384
 * with the key of the first KeyInfo certificate, that certificate's chain (the KeyInfo
 * certificates) valid at `at` up to the RIM root: the pinned NVIDIA one, or (sim_root !=
 * NULL) the certificate with that SHA-256. Then parses it as cg_rim_parse() does. Returns 0
 * or CG_EEVIDENCE with v naming the check ("gpu.rim.signature", "gpu.rim.chain", ...).
 */
int cg_rim_verify(const uint8_t *xml, size_t len, const uint8_t *sim_root_sha256, time_t at,
                  struct cg_rim *r, struct cg_verdict *v);

/*
 * Signs an unsigned SWID document with an enveloped signature of the kind cg_rim_verify()
 * accepts: key_pem the signer's private key, chain_pem its chain (leaf first) for KeyInfo.
 * For the simulated GPU. *out is the signed document (caller frees). 0 or CG_ECRYPTO.
 */
int cg_rim_sign(const char *xml, const char *key_pem, const char *chain_pem, uint8_t **out,
                size_t *out_len);

#endif
