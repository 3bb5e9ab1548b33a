#ifndef CCGATE_EVIDENCE_H
#define CCGATE_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

/* CBOR tags of the RA-TLS conceptual message wrapper (DESIGN.md section 3). */
#define CG_TAG_TDX 60000u
#define CG_TAG_SNP 0x1a7504u
#define CG_TAG_SIM 0x63636773u /* "ccgs": ccgate's simulated TEE, SNP report layout */

#define CG_REPORT_DATA_LEN 64
#define CG_EVIDENCE_MAX_CERTS 8
#define CG_EVIDENCE_MAX_BYTES (64 * 1024)

/*
 * Hardware evidence and what a verifier needs beside it. For SNP and sim: evidence is the
 * 1184-byte report, certs[] the DER certificates VCEK/VLEK, ASK/ASVK and (sim only) ARK.
 * For TDX: evidence is the quote, certs[] the collateral blobs. Owned by the struct:
 * release with cg_evidence_clear().
 */
struct cg_evidence {
    uint32_t tag;
    uint8_t *evidence;
    size_t evidence_len;
    uint8_t *certs[CG_EVIDENCE_MAX_CERTS];
    size_t cert_lens[CG_EVIDENCE_MAX_CERTS];
    size_t n_certs;
};

/* Frees what e owns and zeroes it. Safe on a zeroed struct. */
void cg_evidence_clear(struct cg_evidence *e);

/*
 * An evidence provider (server side). get() blocks (a hardware request can take a second)
 * and is only ever called from a worker thread, never the event loop; one call at a time.
 * It fills out with evidence whose report_data equals the given 64 bytes.
 */
struct cg_provider {
    const char *name; /* "sim", "snp", "tdx" */
    int (*get)(struct cg_provider *p, const uint8_t report_data[CG_REPORT_DATA_LEN],
               struct cg_evidence *out);
    void (*free)(struct cg_provider *p);
};

#endif
