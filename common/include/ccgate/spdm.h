#ifndef CCGATE_SPDM_H
#define CCGATE_SPDM_H

#include <stddef.h>
#include <stdint.h>

#include "ccgate/err.h"

/*
 * An NVIDIA GPU attestation report: the SPDM 1.1 GET_MEASUREMENTS request followed by the
 * MEASUREMENTS response (DSP0274 1.1.0; ATTESTATION.md 3.2), as NVML returns it.
 */
#define CG_SPDM_REQ_LEN 37
#define CG_SPDM_NONCE_LEN 32
#define CG_SPDM_SIG_LEN 96       /* ECDSA P-384 r || s, big-endian */
#define CG_SPDM_MAX_BYTES 0x2000 /* NVML's attestationReport buffer */
#define CG_SPDM_MAX_BLOCKS 255
#define CG_SPDM_VALUE_MAX 64
#define CG_SPDM_FWID_LEN 48
/* Unsigned zero bytes accepted after the signature (one real H100 capture has one). */
#define CG_SPDM_MAX_PADDING 16

/* Opaque data types (nvtrust OpaqueData ids) that ccgate reads. */
enum {
    CG_SPDM_OPAQUE_DRIVER_VERSION = 3,
    CG_SPDM_OPAQUE_VBIOS_VERSION = 6,
    CG_SPDM_OPAQUE_NVDEC0_STATUS = 11,
    CG_SPDM_OPAQUE_CHIP_SKU = 15,
    CG_SPDM_OPAQUE_CHIP_SKU_MOD = 16,
    CG_SPDM_OPAQUE_PROJECT = 17,
    CG_SPDM_OPAQUE_PROJECT_SKU = 18,
    CG_SPDM_OPAQUE_PROJECT_SKU_MOD = 19,
    CG_SPDM_OPAQUE_FWID = 20,
    CG_SPDM_OPAQUE_PROTECTED_PCIE_STATUS = 21,
    CG_SPDM_OPAQUE_DATA_VERSION = 34,
    CG_SPDM_OPAQUE_CHIP_INFO = 35,
};

/* NVDEC0_STATUS values (NVIDIA attestation SDK). */
#define CG_SPDM_NVDEC_ENABLED 0xAA
#define CG_SPDM_NVDEC_DISABLED 0x55

/* One DMTF measurement block. */
struct cg_spdm_block {
    uint8_t index; /* 1..254 */
    uint8_t type;  /* DMTFSpecMeasurementValueType */
    uint16_t len;
    uint8_t value[CG_SPDM_VALUE_MAX];
};

#define CG_SPDM_TEXT_MAX 32

struct cg_spdm_report {
    uint8_t nonce[CG_SPDM_NONCE_LEN]; /* the requester's nonce */
    uint8_t responder_nonce[CG_SPDM_NONCE_LEN];
    uint8_t request_param1, request_param2, slot;
    size_t n_blocks;
    struct cg_spdm_block blocks[CG_SPDM_MAX_BLOCKS];
    /* Opaque data; text fields are NUL-trimmed printable ASCII ("" when absent). */
    char driver_version[CG_SPDM_TEXT_MAX];
    char vbios_version[CG_SPDM_TEXT_MAX]; /* "96.00.9f.00.01": b3.b2.b1.b0.b4 */
    char chip_sku[CG_SPDM_TEXT_MAX], chip_sku_mod[CG_SPDM_TEXT_MAX];
    char project[CG_SPDM_TEXT_MAX], project_sku[CG_SPDM_TEXT_MAX];
    char project_sku_mod[CG_SPDM_TEXT_MAX];
    int has_nvdec0;
    uint8_t nvdec0_status;
    int has_ppcie;
    uint8_t ppcie_status;
    int has_fwid;
    uint8_t fwid[CG_SPDM_FWID_LEN];
    int has_chip_info; /* Blackwell reports carry CHIP_INFO */
    int has_opaque_version;
    uint32_t opaque_version;
    size_t signed_len; /* request || response up to the signature */
    uint8_t signature[CG_SPDM_SIG_LEN];
};

/*
 * Parses request || response. Every length is bounded by what remains: the request is 37
 * bytes (version 0x11, GET_MEASUREMENTS with a signature requested), the response version
 * 0x11 code 0x60, NumberOfBlocks blocks of DMTF measurements filling MeasurementRecordLength
 * exactly, unique indices, opaque TLVs filling OpaqueLength exactly with no type twice, the
 * 96-byte signature, then at most CG_SPDM_MAX_PADDING zero bytes. Returns 0, or
 * CG_EEVIDENCE with v naming the field ("gpu.spdm.<field>").
 */
int cg_spdm_parse(const uint8_t *buf, size_t len, struct cg_spdm_report *r, struct cg_verdict *v);

/* The block with this index, or NULL. */
const struct cg_spdm_block *cg_spdm_block(const struct cg_spdm_report *r, unsigned index);

/*
 * Reads a report given as raw bytes or as hex text (NVML samples, nvattest; surrounding
 * whitespace allowed) into *out (caller frees). CG_EEVIDENCE when neither, CG_ELIMIT past
 * CG_SPDM_MAX_BYTES + CG_SPDM_MAX_PADDING bytes.
 */
int cg_spdm_read(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len);

#endif
