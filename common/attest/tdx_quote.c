/*
 * Intel TDX DCAP quote parsing (shared/ATTESTATION.md section 2): the header, the TD report
 * body (v4, v5 types 2 and 3), the signature data and the QE certification data. No
 * cryptography here: tdx.c verifies what this file has located.
 */
#include "ccgate/tdx.h"

#include <string.h>

#define TDX_TEE_TYPE 0x81u
#define ATT_KEY_ECDSA_P256 2
#define CERT_TYPE_PCK_CHAIN 5
#define CERT_TYPE_QE_REPORT 6
/* Offsets in the signature data (att_key_type 2). */
#define SIG_QUOTE 0
#define SIG_KEY 64
#define SIG_CERT_TYPE 128
#define SIG_CERT_SIZE 130
#define SIG_CERT_DATA 134

static const uint8_t intel_qe_vendor[16] = {0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9,
                                            0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07};

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* ---- quote parsing ------------------------------------------------------------------- */

static void parse_body(const uint8_t *b, struct cg_tdx_quote *q)
{
    memcpy(q->tee_tcb_svn, b + 0x00, 16);
    memcpy(q->mrseam, b + 0x10, 48);
    memcpy(q->mrsignerseam, b + 0x40, 48);
    q->seam_attributes = le64(b + 0x70);
    q->td_attributes = le64(b + 0x78);
    q->xfam = le64(b + 0x80);
    memcpy(q->mrtd, b + 0x88, 48);
    memcpy(q->mrconfigid, b + 0xB8, 48);
    memcpy(q->mrowner, b + 0xE8, 48);
    memcpy(q->mrownerconfig, b + 0x118, 48);
    for (int i = 0; i < 4; i++)
        memcpy(q->rtmr[i], b + 0x148 + 48 * i, 48);
    memcpy(q->report_data, b + 0x208, 64);
    if (q->body_type == 3) {
        memcpy(q->tee_tcb_svn2, b + 0x248, 16);
        memcpy(q->mrservicetd, b + 0x258, 48);
    }
}

static void parse_qe_report(const uint8_t *r, struct cg_tdx_qe_report *qe)
{
    memcpy(qe->cpusvn, r, 16);
    qe->miscselect = le32(r + 16);
    memcpy(qe->attributes, r + 48, 16);
    memcpy(qe->mrenclave, r + 64, 32);
    memcpy(qe->mrsigner, r + 128, 32);
    qe->isvprodid = le16(r + 256);
    qe->isvsvn = le16(r + 258);
    memcpy(qe->report_data, r + 320, 64);
}

/* Parses the certification data of type 6 (cd[0..n)): every length must add up exactly. */
static int parse_qe_cert_data(const uint8_t *cd, size_t n, struct cg_tdx_quote *q,
                              struct cg_verdict *v)
{
    const size_t fixed = CG_TDX_QE_REPORT_SIZE + 64 + 2;
    if (n < fixed)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.qe_cert_data", ">= 450 bytes", "%zu", n);
    memcpy(q->qe_report_raw, cd, CG_TDX_QE_REPORT_SIZE);
    parse_qe_report(cd, &q->qe_report);
    memcpy(q->qe_report_sig, cd + CG_TDX_QE_REPORT_SIZE, 64);
    size_t auth_len = le16(cd + CG_TDX_QE_REPORT_SIZE + 64);
    size_t off = fixed;
    if (auth_len > n - off || n - off - auth_len < 6)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.qe_auth_size", "within the QE cert data",
                         "%zu", auth_len);
    q->qe_auth = cd + off;
    q->qe_auth_len = auth_len;
    off += auth_len;
    uint16_t type = le16(cd + off);
    if (type != CERT_TYPE_PCK_CHAIN)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.pck_cert_type", "5", "%u", type);
    size_t chain_len = le32(cd + off + 2);
    off += 6;
    if (chain_len != n - off)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.pck_chain_size", "rest of the QE cert data",
                         "%zu of %zu", chain_len, n - off);
    /* The PEM text may be NUL-terminated; a chain that is all NULs is no chain. */
    while (chain_len > 0 && cd[off + chain_len - 1] == 0)
        chain_len--;
    if (chain_len == 0)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.pck_chain_size", "> 0", "0");
    q->pck_chain = (const char *)cd + off;
    q->pck_chain_len = chain_len;
    return 0;
}

int cg_tdx_quote_parse(const uint8_t *buf, size_t len, struct cg_tdx_quote *q, struct cg_verdict *v)
{
    memset(q, 0, sizeof(*q));
    if (buf == NULL || len < CG_TDX_HEADER_SIZE || len > CG_TDX_QUOTE_MAX)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.size", "48 to 65536 bytes", "%zu", len);
    q->version = le16(buf);
    q->att_key_type = le16(buf + 2);
    q->tee_type = le32(buf + 4);
    memcpy(q->qe_vendor_id, buf + 12, 16);
    memcpy(q->user_data, buf + 28, 20);
    if (q->version != 4 && q->version != 5)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.version", "4 or 5", "%u", q->version);
    if (q->att_key_type != ATT_KEY_ECDSA_P256)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.att_key_type", "2 (ECDSA P-256)", "%u",
                         q->att_key_type);
    if (q->tee_type != TDX_TEE_TYPE)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.tee_type", "0x81 (TDX)", "0x%x", q->tee_type);
    if (memcmp(q->qe_vendor_id, intel_qe_vendor, 16) != 0) {
        char hex[33];
        cg_hex(hex, sizeof(hex), q->qe_vendor_id, 16);
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.qe_vendor_id",
                         "939a7233f79c4ca9940a0db3957f0607", "%s", hex);
    }

    size_t body_off = CG_TDX_HEADER_SIZE, body_size = CG_TDX_BODY10_SIZE;
    q->body_type = 2;
    if (q->version == 5) {
        if (len < CG_TDX_HEADER_SIZE + 6)
            return cg_reject(v, CG_EEVIDENCE, "tdx.quote.size", ">= 54 bytes", "%zu", len);
        q->body_type = le16(buf + CG_TDX_HEADER_SIZE);
        uint32_t declared = le32(buf + CG_TDX_HEADER_SIZE + 2);
        if (q->body_type == 3)
            body_size = CG_TDX_BODY15_SIZE;
        else if (q->body_type != 2)
            return cg_reject(v, CG_EEVIDENCE, "tdx.quote.body_type", "2 or 3 (TDX)", "%u",
                             q->body_type);
        if (declared != body_size)
            return cg_reject(v, CG_EEVIDENCE, "tdx.quote.body_size",
                             q->body_type == 3 ? "648" : "584", "%u", declared);
        body_off += 6;
    }
    q->signed_len = body_off + body_size;
    if (len < q->signed_len + 4)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.size", "header, body and signature length",
                         "%zu", len);
    parse_body(buf + body_off, q);

    size_t sig_len = le32(buf + q->signed_len);
    const uint8_t *sd = buf + q->signed_len + 4;
    if (sig_len > len - q->signed_len - 4)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.sig_len", "within the quote", "%zu", sig_len);
    if (sig_len < SIG_CERT_DATA)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.sig_len", ">= 134", "%zu", sig_len);
    /* Nothing unsigned may follow the signature data but the zero padding of a fixed-size
     * quote buffer (the legacy GET_QUOTE ABI; trustee's tdx_quote_6.dat carries 70 bytes). */
    size_t end = q->signed_len + 4 + sig_len;
    for (size_t i = end; i < len; i++)
        if (buf[i] != 0)
            return cg_reject(v, CG_EEVIDENCE, "tdx.quote.trailing",
                             "nothing or zero padding after the signature data",
                             "%zu bytes, byte %zu = 0x%02x", len - end, i - end, buf[i]);
    memcpy(q->signature, sd + SIG_QUOTE, 64);
    memcpy(q->attest_key, sd + SIG_KEY, 64);
    uint16_t cert_type = le16(sd + SIG_CERT_TYPE);
    if (cert_type != CERT_TYPE_QE_REPORT)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.cert_type", "6 (QE report)", "%u", cert_type);
    size_t cert_size = le32(sd + SIG_CERT_SIZE);
    if (cert_size != sig_len - SIG_CERT_DATA)
        return cg_reject(v, CG_EEVIDENCE, "tdx.quote.cert_size", "rest of the signature data",
                         "%zu of %zu", cert_size, sig_len - SIG_CERT_DATA);
    return parse_qe_cert_data(sd + SIG_CERT_DATA, cert_size, q, v);
}
