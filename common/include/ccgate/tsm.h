#ifndef CCGATE_TSM_H
#define CCGATE_TSM_H

#include <stddef.h>
#include <stdint.h>

#include "ccgate/err.h"
#include "ccgate/evidence.h"

/*
 * Hardware evidence providers (server side): Linux configfs-tsm for SEV-SNP and TDX
 * (Documentation/ABI/testing/configfs-tsm), and /dev/sev-guest SNP_GET_EXT_REPORT for SNP
 * on kernels without it (shared/ATTESTATION.md 1.5 and 2.6).
 */
#define CG_TSM_ROOT "/sys/kernel/config/tsm/report"
#define CG_SEV_GUEST_DEV "/dev/sev-guest"
#define CG_TSM_MAX_TRIES 4          /* report requests before a changing generation wins */
#define CG_TSM_BLOB_MAX (64 * 1024) /* outblob, auxblob and each operator file */
#define CG_SNP_CERTTABLE_MAX_ENTRIES 64
#define CG_SNP_EXT_CERTS_MAX (64 * 1024) /* certificate buffer for SNP_GET_EXT_REPORT */

/* Where the fake configfs tree of a test stands when the provider calls its hook. */
enum cg_tsm_step {
    CG_TSM_STEP_MKDIR,  /* the entry was created: the kernel would add its attribute files */
    CG_TSM_STEP_INBLOB, /* inblob was written: the kernel would bump generation */
    CG_TSM_STEP_READ,   /* outblob (and auxblob) were read, generation not yet re-read */
    CG_TSM_STEP_RMDIR,  /* the entry is about to be removed: configfs drops its attributes */
};

/* Tests only: lets a fake configfs tree play the kernel's part at each step. */
typedef void (*cg_tsm_hook)(void *arg, enum cg_tsm_step step, const char *entry);

/* What the operator configured; strings are copied by cg_tsm_provider_new(). */
struct cg_tsm_config {
    const char *root;           /* configfs-tsm report folder; NULL: CG_TSM_ROOT */
    const char *sev_guest;      /* NULL: CG_SEV_GUEST_DEV */
    const char *snp_certs;      /* --snp-certs DIR, or NULL */
    const char *tdx_collateral; /* --tdx-collateral DIR, or NULL */
    cg_tsm_hook fake_kernel;    /* NULL except in tests of a fake tree */
    void *fake_arg;
};

/*
 * Finds the TEE of this machine for `--tee auto`: configfs-tsm's provider, read from the
 * `provider` file of a probe entry (sev_guest -> "snp", tdx_guest -> "tdx"), else
 * /dev/sev-guest ("snp"). Never "sim". Sets *tee to a static string and how[] to a line
 * saying what was found. Returns 0, or CG_ENOTEE with how[] saying what is missing.
 */
int cg_tsm_detect(const struct cg_tsm_config *cfg, const char **tee, char *how, size_t howlen);

/*
 * A provider for tee "snp" or "tdx". SNP uses configfs-tsm when cfg->root is a folder, else
 * /dev/sev-guest; TDX only configfs-tsm. Each get() creates an entry, writes report_data to
 * inblob, reads outblob (and for SNP auxblob), re-reads generation and starts over (at most
 * CG_TSM_MAX_TRIES times, then -EBUSY) when another writer changed it, checks that the
 * report or quote carries report_data, and removes the entry. Endorsements: SNP: the
 * VCEK or VLEK (by the report's signing key) and the ASK/ASVK from the host's certificate
 * table, else vcek.der|vcek.pem / vlek.der|vlek.pem and ask.der|ask.pem|asvk.der|asvk.pem|
 * cert_chain from cfg->snp_certs; TDX: tcb_info.json, qe_identity.json,
 * tcb_signing_chain.pem, root_crl.der, pck_crl.der from cfg->tdx_collateral (those present).
 * Tags CG_TAG_SNP / CG_TAG_TDX. *out is freed with (*out)->free(*out). Returns 0,
 * CG_ENOTEE when neither interface exists, or CG_ECONFIG for a bad tee.
 */
int cg_tsm_provider_new(const char *tee, const struct cg_tsm_config *cfg, struct cg_provider **out);

/*
 * The TDX collateral files of folder dir (those present of tcb_info.json, qe_identity.json,
 * tcb_signing_chain.pem, root_crl.der, pck_crl.der) appended to out->certs as blobs, checked
 * for shape (the three JSON/chain files together or none). dir NULL: nothing. Returns 0,
 * CG_ECONFIG, CG_ELIMIT or -errno (a log line says which file).
 */
int cg_tsm_tdx_collateral_load(const char *dir, struct cg_evidence *out);

/* An SNP certificate table (GHCB spec, "certificate table"): where each known entry lies. */
enum cg_snp_cert_kind { CG_SNP_CERT_VCEK, CG_SNP_CERT_VLEK, CG_SNP_CERT_ASK, CG_SNP_CERT_ARK };
#define CG_SNP_CERT_KINDS 4

struct cg_snp_certtable {
    size_t n_entries; /* before the terminator, unknown GUIDs included */
    int present[CG_SNP_CERT_KINDS];
    size_t off[CG_SNP_CERT_KINDS];
    size_t len[CG_SNP_CERT_KINDS];
};

/*
 * Parses a certificate table: entries {GUID[16], u32 offset, u32 length} (little-endian,
 * offsets from the blob's start) up to an all-zero entry. Every entry must lie inside the
 * blob, after the table, be non-empty and not overlap another; a known GUID may appear
 * once; unknown GUIDs are skipped. Returns 0, or CG_EEVIDENCE with v ("snp.cert_table",
 * the reason in actual).
 */
int cg_snp_certtable_parse(const uint8_t *blob, size_t len, struct cg_snp_certtable *out,
                           struct cg_verdict *v);

/*
 * Internal, for tests: the report inside a firmware MSG_REPORT_RSP as /dev/sev-guest returns
 * it (u32 status, u32 report_size, 24 reserved bytes, the report). Sets *report to point
 * into resp. Returns 0 or CG_EEVIDENCE (status not 0, size not CG_SNP_REPORT_SIZE or past
 * the buffer).
 */
int cg__snp_report_rsp(const uint8_t *resp, size_t len, const uint8_t **report);

/*
 * Internal, for tests: after SNP_GET_EXT_REPORT failed with errno err (EIO or EINVAL) and
 * the VMM error vmm_error, whether to try again with a bigger certificate buffer: 1 and
 * *next set when the kernel reported the length it needs (`needed`, more than `had`, at most
 * CG_SNP_EXT_CERTS_MAX, rounded up to pages), 0 when the failure is something else,
 * CG_ELIMIT when the needed length is over the limit.
 */
int cg__snp_ext_certs_retry(int err, uint32_t vmm_error, uint32_t had, uint32_t needed,
                            size_t *next);

#endif
