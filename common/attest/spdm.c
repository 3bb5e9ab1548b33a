#include "ccgate/spdm.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPDM_VERSION_11 0x11
#define SPDM_GET_MEASUREMENTS 0xE0
#define SPDM_MEASUREMENTS 0x60
#define DMTF_SPEC 0x01
#define RESP_FIXED 8 /* version, code, param1, param2, NumberOfBlocks, RecordLength[3] */

/* A cursor over the report: every read is checked against what remains. */
struct cur {
    const uint8_t *p;
    size_t left;
};

static const uint8_t *take(struct cur *c, size_t n)
{
    if (n > c->left)
        return NULL;
    const uint8_t *p = c->p;
    c->p += n;
    c->left -= n;
    return p;
}

static unsigned le16(const uint8_t *p)
{
    return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static int parse_request(struct cur *c, struct cg_spdm_report *r, struct cg_verdict *v)
{
    const uint8_t *q = take(c, CG_SPDM_REQ_LEN);
    if (q == NULL)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.request", "37 bytes", "%zu", c->left);
    if (q[0] != SPDM_VERSION_11)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.request.version", "0x11", "0x%02x", q[0]);
    if (q[1] != SPDM_GET_MEASUREMENTS)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.request.code", "0xe0 (GET_MEASUREMENTS)",
                         "0x%02x", q[1]);
    if ((q[2] & 0x01) == 0)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.request.param1", "signature requested (bit 0)",
                         "0x%02x", q[2]);
    r->request_param1 = q[2];
    r->request_param2 = q[3];
    memcpy(r->nonce, q + 4, CG_SPDM_NONCE_LEN);
    r->slot = q[36];
    return 0;
}

static int parse_blocks(const uint8_t *rec, size_t rec_len, unsigned n_blocks,
                        struct cg_spdm_report *r, struct cg_verdict *v)
{
    struct cur c = {rec, rec_len};
    uint8_t seen[256] = {0};
    for (unsigned i = 0; i < n_blocks; i++) {
        const uint8_t *h = take(&c, 4);
        if (h == NULL)
            return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.measurement_record",
                             "NumberOfBlocks blocks", "block %u of %u truncated", i + 1, n_blocks);
        unsigned index = h[0], size = le16(h + 2);
        if (index == 0 || index == 0xFF || seen[index])
            return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.block.index", "unique, 1 to 254",
                             "%u (block %u)", index, i + 1);
        seen[index] = 1;
        if (h[1] != DMTF_SPEC)
            return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.block.spec", "1 (DMTF)", "%u (index %u)",
                             h[1], index);
        const uint8_t *m = take(&c, size);
        if (m == NULL || size < 3 || le16(m + 1) != size - 3)
            return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.block.size",
                             "MeasurementSize = 3 + ValueSize within the record", "%u (index %u)",
                             size, index);
        if (size - 3 > CG_SPDM_VALUE_MAX)
            return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.block.size", "a value of at most 64 bytes",
                             "%u (index %u)", size - 3, index);
        struct cg_spdm_block *b = &r->blocks[r->n_blocks++];
        b->index = (uint8_t)index;
        b->type = m[0];
        b->len = (uint16_t)(size - 3);
        memcpy(b->value, m + 3, b->len);
    }
    if (c.left != 0)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.measurement_record",
                         "exactly NumberOfBlocks blocks", "%zu bytes left over", c.left);
    return 0;
}

/* A NUL-padded ASCII field: printable up to the first NUL, only NULs after it. */
static int opaque_text(const uint8_t *val, unsigned len, char *out, const char *field,
                       struct cg_verdict *v)
{
    unsigned n = 0;
    while (n < len && val[n] != 0)
        n++;
    for (unsigned i = n; i < len; i++)
        if (val[i] != 0)
            return cg_reject(v, CG_EEVIDENCE, field, "NUL-padded text", "a byte after the NUL");
    if (n >= CG_SPDM_TEXT_MAX)
        return cg_reject(v, CG_EEVIDENCE, field, "at most 31 characters", "%u", n);
    for (unsigned i = 0; i < n; i++)
        if (val[i] < 0x20 || val[i] > 0x7e)
            return cg_reject(v, CG_EEVIDENCE, field, "printable ASCII", "byte 0x%02x", val[i]);
    memcpy(out, val, n);
    out[n] = '\0';
    return 0;
}

static int opaque_byte(const uint8_t *val, unsigned len, uint8_t *out, int *has, const char *field,
                       struct cg_verdict *v)
{
    if (len != 1)
        return cg_reject(v, CG_EEVIDENCE, field, "1 byte", "%u", len);
    *out = val[0];
    *has = 1;
    return 0;
}

static int opaque_field(unsigned type, const uint8_t *val, unsigned len, struct cg_spdm_report *r,
                        struct cg_verdict *v)
{
    switch (type) {
    case CG_SPDM_OPAQUE_DRIVER_VERSION:
        return opaque_text(val, len, r->driver_version, "gpu.spdm.opaque.driver_version", v);
    case CG_SPDM_OPAQUE_CHIP_SKU:
        return opaque_text(val, len, r->chip_sku, "gpu.spdm.opaque.chip_sku", v);
    case CG_SPDM_OPAQUE_CHIP_SKU_MOD:
        return opaque_text(val, len, r->chip_sku_mod, "gpu.spdm.opaque.chip_sku_mod", v);
    case CG_SPDM_OPAQUE_PROJECT:
        return opaque_text(val, len, r->project, "gpu.spdm.opaque.project", v);
    case CG_SPDM_OPAQUE_PROJECT_SKU:
        return opaque_text(val, len, r->project_sku, "gpu.spdm.opaque.project_sku", v);
    case CG_SPDM_OPAQUE_PROJECT_SKU_MOD:
        return opaque_text(val, len, r->project_sku_mod, "gpu.spdm.opaque.project_sku_mod", v);
    case CG_SPDM_OPAQUE_VBIOS_VERSION:
        if (len != 8)
            return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.opaque.vbios_version", "8 bytes", "%u",
                             len);
        snprintf(r->vbios_version, sizeof(r->vbios_version), "%02x.%02x.%02x.%02x.%02x", val[3],
                 val[2], val[1], val[0], val[4]);
        return 0;
    case CG_SPDM_OPAQUE_NVDEC0_STATUS:
        return opaque_byte(val, len, &r->nvdec0_status, &r->has_nvdec0,
                           "gpu.spdm.opaque.nvdec0_status", v);
    case CG_SPDM_OPAQUE_PROTECTED_PCIE_STATUS:
        return opaque_byte(val, len, &r->ppcie_status, &r->has_ppcie,
                           "gpu.spdm.opaque.protected_pcie_status", v);
    case CG_SPDM_OPAQUE_FWID:
        if (len != CG_SPDM_FWID_LEN)
            return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.opaque.fwid", "48 bytes", "%u", len);
        memcpy(r->fwid, val, CG_SPDM_FWID_LEN);
        r->has_fwid = 1;
        return 0;
    case CG_SPDM_OPAQUE_DATA_VERSION:
        if (len < 1 || len > 4)
            return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.opaque.opaque_data_version", "1 to 4 bytes",
                             "%u", len);
        r->opaque_version = 0;
        for (unsigned i = len; i-- > 0;)
            r->opaque_version = r->opaque_version << 8 | val[i];
        r->has_opaque_version = 1;
        return 0;
    case CG_SPDM_OPAQUE_CHIP_INFO:
        r->has_chip_info = 1;
        return 0;
    default: /* signed, carried, not interpreted */
        return 0;
    }
}

static int parse_opaque(const uint8_t *op, size_t op_len, struct cg_spdm_report *r,
                        struct cg_verdict *v)
{
    struct cur c = {op, op_len};
    uint8_t seen[8192] = {0}; /* one bit per u16 type */
    while (c.left > 0) {
        const uint8_t *h = take(&c, 4);
        if (h == NULL)
            return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.opaque", "type(2) length(2) value TLVs",
                             "%zu stray bytes", c.left);
        unsigned type = le16(h), len = le16(h + 2);
        const uint8_t *val = take(&c, len);
        if (val == NULL)
            return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.opaque", "TLVs within OpaqueLength",
                             "type %u: length %u past the end", type, len);
        if (seen[type >> 3] & (1u << (type & 7)))
            return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.opaque", "each type once", "type %u twice",
                             type);
        seen[type >> 3] |= (uint8_t)(1u << (type & 7));
        int rc = opaque_field(type, val, len, r, v);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int cg_spdm_parse(const uint8_t *buf, size_t len, struct cg_spdm_report *r, struct cg_verdict *v)
{
    memset(r, 0, sizeof(*r));
    if (len > CG_SPDM_MAX_BYTES + CG_SPDM_MAX_PADDING)
        return cg_reject(v, CG_ELIMIT, "gpu.spdm.size", "at most 8208 bytes", "%zu", len);
    struct cur c = {buf, len};
    int rc = parse_request(&c, r, v);
    if (rc != 0)
        return rc;
    const uint8_t *h = take(&c, RESP_FIXED);
    if (h == NULL)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.response", "an 8-byte header", "%zu bytes",
                         c.left);
    if (h[0] != SPDM_VERSION_11)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.response.version", "0x11", "0x%02x", h[0]);
    if (h[1] != SPDM_MEASUREMENTS)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.response.code", "0x60 (MEASUREMENTS)", "0x%02x",
                         h[1]);
    size_t rec_len = (size_t)h[5] | (size_t)h[6] << 8 | (size_t)h[7] << 16;
    const uint8_t *rec = take(&c, rec_len);
    if (rec == NULL)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.measurement_record_length", "within the report",
                         "%zu (%zu bytes left)", rec_len, c.left);
    if ((rc = parse_blocks(rec, rec_len, h[4], r, v)) != 0)
        return rc;
    const uint8_t *nonce = take(&c, CG_SPDM_NONCE_LEN);
    const uint8_t *ol = nonce != NULL ? take(&c, 2) : NULL;
    if (ol == NULL)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.response", "nonce and OpaqueLength",
                         "truncated");
    memcpy(r->responder_nonce, nonce, CG_SPDM_NONCE_LEN);
    const uint8_t *op = take(&c, le16(ol));
    if (op == NULL)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.opaque_length", "within the report",
                         "%u (%zu bytes left)", le16(ol), c.left);
    if ((rc = parse_opaque(op, le16(ol), r, v)) != 0)
        return rc;
    r->signed_len = len - c.left;
    const uint8_t *sig = take(&c, CG_SPDM_SIG_LEN);
    if (sig == NULL)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.signature", "96 bytes", "%zu", c.left);
    memcpy(r->signature, sig, CG_SPDM_SIG_LEN);
    if (c.left > CG_SPDM_MAX_PADDING)
        return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.trailing", "at most 16 zero bytes", "%zu bytes",
                         c.left);
    for (size_t i = 0; i < c.left; i++)
        if (c.p[i] != 0)
            return cg_reject(v, CG_EEVIDENCE, "gpu.spdm.trailing", "zero padding",
                             "byte 0x%02x at %zu", c.p[i], len - c.left + i);
    return 0;
}

const struct cg_spdm_block *cg_spdm_block(const struct cg_spdm_report *r, unsigned index)
{
    for (size_t i = 0; i < r->n_blocks; i++)
        if (r->blocks[i].index == index)
            return &r->blocks[i];
    return NULL;
}

int cg_spdm_read(const uint8_t *data, size_t len, uint8_t **out, size_t *out_len)
{
    const size_t max = CG_SPDM_MAX_BYTES + CG_SPDM_MAX_PADDING;
    if (len > 0 && data[0] == SPDM_VERSION_11) {
        if (len > max)
            return CG_ELIMIT;
        if ((*out = malloc(len)) == NULL)
            return -ENOMEM;
        memcpy(*out, data, len);
        *out_len = len;
        return 0;
    }
    while (len > 0 && isspace(data[len - 1]))
        len--;
    while (len > 0 && isspace(data[0])) {
        data++;
        len--;
    }
    if (len == 0 || len % 2 != 0)
        return CG_EEVIDENCE;
    if (len / 2 > max)
        return CG_ELIMIT;
    char *text = malloc(len + 1);
    uint8_t *b = malloc(len / 2);
    if (text == NULL || b == NULL) {
        free(text);
        free(b);
        return -ENOMEM;
    }
    memcpy(text, data, len);
    text[len] = '\0';
    int rc = cg_unhex(b, len / 2, text);
    free(text);
    if (rc != 0) {
        free(b);
        return CG_EEVIDENCE;
    }
    *out = b;
    *out_len = len / 2;
    return 0;
}
