#include "ccgate/gpuev.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "ccgate/file.h"
#include "ccgate/rim.h"

#define CMWC_TYPE "tag:ccgate.dev,2026:gpu"
#define NONCE_DOMAIN "ccgate gpu nonce v1"

void cg_gpuev_clear(struct cg_gpuev *e)
{
    for (size_t i = 0; i < e->n_gpus; i++) {
        free(e->gpus[i].report);
        free(e->gpus[i].chain_pem);
    }
    for (size_t i = 0; i < e->n_rims; i++)
        free(e->rims[i]);
    for (size_t i = 0; i < e->n_ocsp; i++)
        free(e->ocsp[i]);
    memset(e, 0, sizeof(*e));
}

int cg_gpuev_add_collateral(struct cg_gpuev *e, int rim, const uint8_t *data, size_t len)
{
    size_t *n = rim ? &e->n_rims : &e->n_ocsp;
    size_t max = rim ? CG_GPUEV_MAX_RIMS : CG_OCSP_MAX_RESPONSES;
    if (*n == max || len > (rim ? (size_t)CG_RIM_MAX_BYTES : (size_t)CG_OCSP_MAX_BYTES))
        return CG_ELIMIT;
    uint8_t *copy = malloc(len > 0 ? len : 1);
    if (copy == NULL)
        return -ENOMEM;
    memcpy(copy, data, len);
    if (rim) {
        e->rims[*n] = copy;
        e->rim_lens[(*n)++] = len;
    } else {
        e->ocsp[*n] = copy;
        e->ocsp_lens[(*n)++] = len;
    }
    return 0;
}

int cg_gpuev_load_collateral(const char *dir, struct cg_gpuev *e, char *err, size_t errlen)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return CG_ECONFIG;
    }
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char path[4096];
        uint8_t *buf = NULL;
        size_t n = 0, i = 0;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        rc = cg_file_read(path, CG_RIM_MAX_BYTES, &buf, &n);
        if (rc == 0) {
            while (i < n && (buf[i] == ' ' || buf[i] == '\n' || buf[i] == '\r' || buf[i] == '\t'))
                i++;
            rc = cg_gpuev_add_collateral(e, i < n && buf[i] == '<', buf, n);
        }
        if (rc != 0)
            snprintf(err, errlen, "%s: %s", path,
                     rc == CG_ELIMIT ? "too large, or too many files" : cg_strerror(rc));
        free(buf);
    }
    closedir(d);
    return rc;
}

void cg_gpuev_nonce(const uint8_t pubkey_hash[32], int64_t iat, const uint8_t (*nonces)[32],
                    size_t n_nonces, uint8_t out[32])
{
    uint8_t num[12];
    for (int i = 0; i < 8; i++)
        num[i] = (uint8_t)((uint64_t)iat >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        num[8 + i] = (uint8_t)((uint32_t)n_nonces >> (24 - 8 * i));
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, NONCE_DOMAIN, sizeof(NONCE_DOMAIN)) == 1 && /* with its NUL */
             EVP_DigestUpdate(md, pubkey_hash, 32) == 1 &&
             EVP_DigestUpdate(md, num, sizeof(num)) == 1 &&
             (n_nonces == 0 || EVP_DigestUpdate(md, nonces, 32 * n_nonces) == 1) &&
             EVP_DigestFinal_ex(md, out, NULL) == 1;
    EVP_MD_CTX_free(md);
    if (!ok) /* no nonce any report could carry: verification then fails on gpu.nonce */
        memset(out, 0, 32);
}

/* ---- base64 ------------------------------------------------------------------------- */

/* Base64 (url: the URL alphabet, no padding) of in; NULL on allocation failure. */
static char *b64(const uint8_t *in, size_t n, int url)
{
    char *out = malloc(n / 3 * 4 + 5);
    if (out == NULL || n > INT32_MAX / 2)
        return free(out), NULL;
    int len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    if (url) {
        while (len > 0 && out[len - 1] == '=')
            len--;
        for (int i = 0; i < len; i++)
            out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
    }
    out[len] = '\0';
    return out;
}

/* Decodes base64 (url: URL alphabet, unpadded) of at most max bytes; caller frees. */
static int unb64(const char *s, int url, size_t max, uint8_t **out, size_t *out_len)
{
    size_t n = strlen(s);
    if (n > max / 3 * 4 + 8)
        return -1;
    char *t = malloc(n + 4);
    uint8_t *d = malloc(n / 4 * 3 + 6);
    if (t == NULL || d == NULL)
        goto bad;
    memcpy(t, s, n);
    size_t pad = 0;
    if (url) {
        for (size_t i = 0; i < n; i++) {
            if (t[i] == '+' || t[i] == '/' || t[i] == '=')
                goto bad;
            t[i] = t[i] == '-' ? '+' : t[i] == '_' ? '/' : t[i];
        }
        while ((n + pad) % 4 != 0)
            t[n + pad++] = '=';
    } else {
        for (size_t i = n; i > 0 && t[i - 1] == '='; i--)
            pad++;
    }
    if ((n + (url ? pad : 0)) % 4 != 0 || pad > 2)
        goto bad;
    int len = EVP_DecodeBlock(d, (const unsigned char *)t, (int)(n + (url ? pad : 0)));
    if (len < 0 || (size_t)len < pad)
        goto bad;
    *out_len = (size_t)len - pad;
    if (*out_len > max)
        goto bad;
    free(t);
    *out = d;
    return 0;
bad:
    free(t);
    free(d);
    return -1;
}

/* ---- encode / decode ----------------------------------------------------------------- */

static json_t *cmw(const char *type, json_t *value)
{
    char *text = value != NULL ? json_dumps(value, JSON_COMPACT) : NULL;
    json_decref(value);
    char *enc = text != NULL ? b64((const uint8_t *)text, strlen(text), 1) : NULL;
    free(text);
    json_t *arr = enc != NULL ? json_pack("[ss]", type, enc) : NULL;
    free(enc);
    return arr;
}

static json_t *b64_list(uint8_t *const *items, const size_t *lens, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && i < n; i++) {
        char *s = b64(items[i], lens[i], 0);
        if (s == NULL || json_array_append_new(arr, json_string(s)) != 0) {
            free(s);
            json_decref(arr);
            return NULL;
        }
        free(s);
    }
    return arr;
}

int cg_gpuev_encode(const struct cg_gpuev *e, uint8_t **out, size_t *len)
{
    int rc = -ENOMEM;
    json_t *list = json_array(), *col = json_object(), *top = json_object();
    for (size_t i = 0; list != NULL && i < e->n_gpus; i++) {
        const struct cg_gpuev_gpu *g = &e->gpus[i];
        char *rep = b64(g->report, g->report_len, 0);
        char *chain = b64((const uint8_t *)g->chain_pem, g->chain_len, 0);
        char nonce[65] = "";
        if (g->report_len >= 4 + 32)
            cg_hex(nonce, sizeof(nonce), g->report + 4, 32);
        json_t *o =
            rep != NULL && chain != NULL
                ? json_pack("{ss ss ss ss ss ss}", "arch", g->arch, "nonce", nonce, "evidence", rep,
                            "certificate", chain, "cc_mode", g->cc_mode ? "on" : "off", "devtools",
                            g->devtools ? "on" : "off")
                : NULL;
        free(rep);
        free(chain);
        if (o == NULL || json_array_append_new(list, o) != 0)
            goto out;
    }
    if (col == NULL || top == NULL ||
        json_object_set_new(col, "rims", b64_list(e->rims, e->rim_lens, e->n_rims)) != 0 ||
        json_object_set_new(col, "ocsp", b64_list(e->ocsp, e->ocsp_lens, e->n_ocsp)) != 0 ||
        json_object_set_new(top, "__cmwc_t", json_string(CMWC_TYPE)) != 0 ||
        json_object_set_new(top, "evidence", cmw(CG_GPUEV_MEDIA_TYPE, list)) != 0 ||
        json_object_set_new(top, "collateral", cmw(CG_GPUEV_COLLATERAL_TYPE, col)) != 0) {
        list = col = NULL; /* handed over, even on failure */
        goto out;
    }
    list = col = NULL;
    char *text = json_dumps(top, JSON_COMPACT);
    if (text == NULL)
        goto out;
    *len = strlen(text);
    *out = (uint8_t *)text;
    rc = *len > CG_GPUEV_MAX_BYTES ? CG_ELIMIT : 0;
    if (rc != 0)
        free(text);
out:
    json_decref(list);
    json_decref(col);
    json_decref(top);
    return rc;
}

/* The value of a CMW record [type, b64url], parsed as JSON. */
static json_t *uncmw(json_t *top, const char *member, const char *type)
{
    json_t *rec = json_object_get(top, member);
    const char *t = json_string_value(json_array_get(rec, 0));
    const char *val = json_string_value(json_array_get(rec, 1));
    uint8_t *raw = NULL;
    size_t n = 0;
    if (!json_is_array(rec) || json_array_size(rec) != 2 || t == NULL || strcmp(t, type) != 0 ||
        val == NULL || unb64(val, 1, CG_GPUEV_MAX_BYTES, &raw, &n) != 0)
        return NULL;
    json_t *j = json_loadb((const char *)raw, n, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    return j;
}

static int decode_list(json_t *arr, size_t max, size_t max_bytes, uint8_t **items, size_t *lens,
                       size_t *n)
{
    size_t i;
    json_t *s;
    if (!json_is_array(arr) || json_array_size(arr) > max)
        return -1;
    json_array_foreach(arr, i, s)
    {
        if (!json_is_string(s) ||
            unb64(json_string_value(s), 0, max_bytes, &items[i], &lens[i]) != 0)
            return -1;
        *n = i + 1;
    }
    return 0;
}

static int decode_gpu(json_t *o, struct cg_gpuev_gpu *g)
{
    const char *arch, *nonce, *rep, *chain, *cc, *dev;
    if (json_unpack(o, "{s:s, s:s, s:s, s:s, s:s, s:s !}", "arch", &arch, "nonce", &nonce,
                    "evidence", &rep, "certificate", &chain, "cc_mode", &cc, "devtools",
                    &dev) != 0 ||
        strlen(arch) >= sizeof(g->arch) || (strcmp(cc, "on") != 0 && strcmp(cc, "off") != 0) ||
        (strcmp(dev, "on") != 0 && strcmp(dev, "off") != 0))
        return -1;
    strcpy(g->arch, arch);
    g->cc_mode = strcmp(cc, "on") == 0;
    g->devtools = strcmp(dev, "on") == 0;
    uint8_t *pem = NULL;
    if (unb64(rep, 0, CG_SPDM_MAX_BYTES + CG_SPDM_MAX_PADDING, &g->report, &g->report_len) != 0 ||
        unb64(chain, 0, CG_GPU_CHAIN_MAX_BYTES, &pem, &g->chain_len) != 0)
        return -1;
    g->chain_pem = malloc(g->chain_len + 1);
    if (g->chain_pem == NULL) {
        free(pem);
        return -1;
    }
    memcpy(g->chain_pem, pem, g->chain_len);
    g->chain_pem[g->chain_len] = '\0';
    free(pem);
    /* The "nonce" member restates the report's; it must not say something else. */
    char want[65] = "";
    if (g->report_len >= 4 + 32)
        cg_hex(want, sizeof(want), g->report + 4, 32);
    return strcmp(want, nonce) == 0 ? 0 : -1;
}

int cg_gpuev_decode(const uint8_t *buf, size_t len, struct cg_gpuev *e, struct cg_verdict *v)
{
    memset(e, 0, sizeof(*e));
    if (len > CG_GPUEV_MAX_BYTES)
        return cg_reject(v, CG_EEVIDENCE, "gpu.evidence", "at most 262144 bytes", "%zu", len);
    json_t *top = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
    json_t *list = NULL, *col = NULL;
    const char *t = json_string_value(json_object_get(top, "__cmwc_t"));
    int rc = CG_EEVIDENCE;
    if (!json_is_object(top) || json_object_size(top) != 3 || t == NULL ||
        strcmp(t, CMWC_TYPE) != 0) {
        cg_reject(v, rc, "gpu.evidence", "a " CMWC_TYPE " CMW collection", "another document");
        goto out;
    }
    list = uncmw(top, "evidence", CG_GPUEV_MEDIA_TYPE);
    col = uncmw(top, "collateral", CG_GPUEV_COLLATERAL_TYPE);
    if (!json_is_array(list) || json_array_size(list) == 0 ||
        json_array_size(list) > CG_GPUEV_MAX_GPUS) {
        cg_reject(v, rc, "gpu.evidence", "1 to 8 NVIDIA evidence objects", "%s",
                  list == NULL ? "malformed" : "another count");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(list); i++) {
        e->n_gpus = i + 1;
        if (decode_gpu(json_array_get(list, i), &e->gpus[i]) != 0) {
            cg_reject(v, rc, "gpu.evidence",
                      "arch, nonce, evidence, certificate, cc_mode, devtools", "GPU %zu malformed",
                      i);
            goto out;
        }
    }
    if (!json_is_object(col) || json_object_size(col) != 2 ||
        decode_list(json_object_get(col, "rims"), CG_GPUEV_MAX_RIMS, CG_RIM_MAX_BYTES, e->rims,
                    e->rim_lens, &e->n_rims) != 0 ||
        decode_list(json_object_get(col, "ocsp"), CG_OCSP_MAX_RESPONSES, CG_OCSP_MAX_BYTES, e->ocsp,
                    e->ocsp_lens, &e->n_ocsp) != 0) {
        cg_reject(v, rc, "gpu.collateral", "{rims: [base64], ocsp: [base64]}", "malformed");
        goto out;
    }
    rc = 0;
out:
    json_decref(list);
    json_decref(col);
    json_decref(top);
    if (rc != 0)
        cg_gpuev_clear(e);
    return rc;
}

/* ---- appraisal ----------------------------------------------------------------------- */

/* The report's measurements against one RIM; skip_index: the NVDEC0 index, or -1. */
static int match_rim(const struct cg_spdm_report *r, const struct cg_rim *rim, const char *which,
                     int skip_index, struct cg_verdict *v)
{
    char check[64], e[2 * CG_RIM_HASH_LEN + 1], a[2 * CG_RIM_HASH_LEN + 1];
    snprintf(check, sizeof(check), "gpu.measurement.%s", which);
    for (size_t i = 0; i < rim->n; i++) {
        const struct cg_rim_measurement *m = &rim->m[i];
        if (!m->active || (int)m->index == skip_index)
            continue;
        const struct cg_spdm_block *b = cg_spdm_block(r, m->index + 1);
        cg_hex(e, sizeof(e), m->alts[0], CG_RIM_HASH_LEN);
        if (b == NULL)
            return cg_reject(v, CG_EEVIDENCE, check, e, "index %u absent from the report",
                             m->index);
        for (size_t k = 0; k < m->n_alts; k++)
            if (b->len == CG_RIM_HASH_LEN && memcmp(b->value, m->alts[k], CG_RIM_HASH_LEN) == 0)
                goto next;
        cg_hex(a, sizeof(a), b->value, b->len < CG_RIM_HASH_LEN ? b->len : CG_RIM_HASH_LEN);
        return cg_reject(v, CG_EEVIDENCE, check, e, "index %u: %s (%zu alternatives)", m->index, a,
                         m->n_alts);
    next:;
    }
    return 0;
}

static int check_rims(const struct cg_spdm_report *r, const struct cg_gpuev_collateral *col,
                      const uint8_t *sim_root, uint32_t grace, int ocsp, time_t at,
                      enum cg_ocsp_status *st, struct cg_verdict *v)
{
    struct cg_rim *drv = calloc(1, sizeof(*drv)), *vb = calloc(1, sizeof(*vb));
    int rc = -ENOMEM;
    if (drv == NULL || vb == NULL)
        goto out;
    if ((rc = cg_rim_verify(col->driver_rim, col->driver_rim_len, sim_root, at, drv, v)) != 0 ||
        (rc = cg_rim_verify(col->vbios_rim, col->vbios_rim_len, sim_root, at, vb, v)) != 0)
        goto out;
    if (strcasecmp(drv->version, r->driver_version) != 0) {
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.rim.driver_version", r->driver_version,
                       "driver RIM for %s", drv->version);
        goto out;
    }
    if (strcasecmp(vb->version, r->vbios_version) != 0) {
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.rim.vbios_version", r->vbios_version,
                       "VBIOS RIM for %s", vb->version);
        goto out;
    }
    for (size_t i = 0; i < drv->n; i++)
        for (size_t j = 0; j < vb->n; j++)
            if (drv->m[i].active && vb->m[j].active && drv->m[i].index == vb->m[j].index) {
                rc = cg_reject(v, CG_EEVIDENCE, "gpu.rim.index_conflict",
                               "driver and VBIOS RIMs without a common active index",
                               "index %u in both", drv->m[i].index);
                goto out;
            }
    if (!r->has_nvdec0) {
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.nvdec0_status", "0xaa (enabled) or 0x55 (disabled)",
                       "absent");
        goto out;
    }
    if (r->nvdec0_status != CG_SPDM_NVDEC_ENABLED && r->nvdec0_status != CG_SPDM_NVDEC_DISABLED) {
        rc = cg_reject(v, CG_EEVIDENCE, "gpu.nvdec0_status", "0xaa (enabled) or 0x55 (disabled)",
                       "0x%02x", r->nvdec0_status);
        goto out;
    }
    int skip = r->nvdec0_status == CG_SPDM_NVDEC_DISABLED ? 35 : -1;
    if ((rc = match_rim(r, drv, "driver", skip, v)) != 0 ||
        (rc = match_rim(r, vb, "vbios", skip, v)) != 0)
        goto out;
    if (ocsp) {
        enum cg_ocsp_status s1, s2;
        if ((rc = cg_ocsp_check_chain((const uint8_t *const *)drv->chain, drv->chain_lens,
                                      drv->n_chain, &col->ocsp, grace, at, "gpu.ocsp.driver_rim",
                                      &s1, v)) != 0 ||
            (rc =
                 cg_ocsp_check_chain((const uint8_t *const *)vb->chain, vb->chain_lens, vb->n_chain,
                                     &col->ocsp, grace, at, "gpu.ocsp.vbios_rim", &s2, v)) != 0)
            goto out;
        if (s1 == CG_OCSP_REVOKED_IN_GRACE || s2 == CG_OCSP_REVOKED_IN_GRACE)
            *st = CG_OCSP_REVOKED_IN_GRACE;
    }
    rc = 0;
out:
    if (drv != NULL)
        cg_rim_clear(drv);
    if (vb != NULL)
        cg_rim_clear(vb);
    free(drv);
    free(vb);
    return rc;
}

static int in_versions(char (*list)[32], size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(list[i], s) == 0)
            return 1;
    return n == 0;
}

int cg_gpuev_verify_one(const uint8_t *report, size_t report_len, const struct cg_gpu_chain *chain,
                        const struct cg_gpuev_collateral *col, const struct cg_gpu_policy *p,
                        const uint8_t *nonce, time_t at, struct cg_gpuev_result *out,
                        struct cg_verdict *v)
{
    struct cg_gpu_anchor anchor = {0};
    struct cg_spdm_report *r = malloc(sizeof(*r));
    int rc = -ENOMEM;
    memset(out, 0, sizeof(*out));
    if (r == NULL)
        return rc;
    if (p->allow_sim && p->has_sim_root) {
        anchor.sim = 1;
        memcpy(anchor.sim_root_sha256, p->sim_root_sha256, 32);
    }
    if ((rc = cg_gpu_verify_report(report, report_len, chain, &anchor, nonce, at, r, &out->dev,
                                   v)) != 0)
        goto out;
    out->sim = anchor.sim;
    snprintf(out->driver_version, sizeof(out->driver_version), "%s", r->driver_version);
    snprintf(out->vbios_version, sizeof(out->vbios_version), "%s", r->vbios_version);
    int ocsp = p->ocsp == CG_GPU_OCSP_REQUIRE;
    if (ocsp && (rc = cg_ocsp_check_chain((const uint8_t *const *)chain->certs, chain->cert_lens,
                                          chain->n, &col->ocsp, p->ocsp_grace_s, at,
                                          "gpu.ocsp.device", &out->ocsp, v)) != 0)
        goto out;
    int have_rims = col->driver_rim != NULL && col->vbios_rim != NULL;
    if (!have_rims && p->require_rims) {
        rc = cg_reject(v, CG_EPOLICY, "gpu.rim.missing", "a driver RIM and a VBIOS RIM", "%s",
                       col->driver_rim == NULL ? "no driver RIM" : "no VBIOS RIM");
        goto out;
    }
    if (have_rims) {
        enum cg_ocsp_status rim_st = out->ocsp;
        if ((rc = check_rims(r, col, anchor.sim ? anchor.sim_root_sha256 : NULL, p->ocsp_grace_s,
                             ocsp, at, &rim_st, v)) != 0)
            goto out;
        out->ocsp = rim_st;
        out->rims_checked = 1;
    }
    if (!in_versions((char(*)[32])p->drivers, p->n_drivers, r->driver_version)) {
        rc = cg_reject(v, CG_EPOLICY, "gpu.driver_version", "one of gpu.drivers", "%s",
                       r->driver_version);
        goto out;
    }
    if (!in_versions((char(*)[32])p->vbios, p->n_vbios, r->vbios_version)) {
        rc = cg_reject(v, CG_EPOLICY, "gpu.vbios_version", "one of gpu.vbios", "%s",
                       r->vbios_version);
        goto out;
    }
    rc = 0;
out:
    free(r);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* The RIM among e's whose version is `version` (unverified read; verified later), or -1. */
static int find_rim(const struct cg_gpuev *e, const char *version)
{
    struct cg_rim *r = malloc(sizeof(*r));
    int found = -1;
    for (size_t i = 0; r != NULL && found < 0 && i < e->n_rims; i++) {
        if (cg_rim_parse(e->rims[i], e->rim_lens[i], r, NULL) == 0 &&
            strcasecmp(r->version, version) == 0)
            found = (int)i;
        cg_rim_clear(r);
    }
    free(r);
    return found;
}

int cg_gpuev_verify(const struct cg_gpuev *e, const struct cg_gpu_policy *p,
                    const uint8_t nonce[32], time_t at, struct cg_gpuev_result *out, size_t *n_out,
                    struct cg_verdict *v)
{
    *n_out = 0;
    if (p->count != 0 && e->n_gpus != p->count)
        return cg_reject(v, CG_EPOLICY, "gpu.count", "exactly the policy's count", "%zu (want %u)",
                         e->n_gpus, p->count);
    if (e->n_gpus < p->min_count)
        return cg_reject(v, CG_EPOLICY, "gpu.min_count", "at least the policy's min_count",
                         "%zu (want %u)", e->n_gpus, p->min_count);
    struct cg_gpuev_collateral col = {0};
    for (size_t i = 0; i < e->n_ocsp; i++) {
        col.ocsp.resp[i] = e->ocsp[i];
        col.ocsp.lens[i] = e->ocsp_lens[i];
    }
    col.ocsp.n = e->n_ocsp;
    for (size_t i = 0; i < e->n_gpus; i++) {
        const struct cg_gpuev_gpu *g = &e->gpus[i];
        if (!g->cc_mode && !p->allow_cc_off)
            return cg_reject(v, CG_EPOLICY, "gpu.cc_mode", "on", "off (GPU %zu)", i);
        if (g->devtools && !p->allow_devtools)
            return cg_reject(v, CG_EPOLICY, "gpu.devtools", "off", "on (GPU %zu)", i);
        struct cg_gpu_chain chain;
        int rc = cg_gpu_chain_load((const uint8_t *)g->chain_pem, g->chain_len, &chain, v);
        if (rc != 0)
            return rc;
        /* The RIMs for this GPU's versions, read from its (still unverified) report. */
        struct cg_spdm_report *r = malloc(sizeof(*r));
        col.driver_rim = col.vbios_rim = NULL;
        col.driver_rim_len = col.vbios_rim_len = 0;
        if (r != NULL && cg_spdm_parse(g->report, g->report_len, r, NULL) == 0) {
            int d = find_rim(e, r->driver_version), b = find_rim(e, r->vbios_version);
            if (d >= 0) {
                col.driver_rim = e->rims[d];
                col.driver_rim_len = e->rim_lens[d];
            }
            if (b >= 0) {
                col.vbios_rim = e->rims[b];
                col.vbios_rim_len = e->rim_lens[b];
            }
        }
        free(r);
        rc = cg_gpuev_verify_one(g->report, g->report_len, &chain, &col, p, nonce, at, &out[i], v);
        cg_gpu_chain_clear(&chain);
        if (rc != 0) {
            if (v != NULL && e->n_gpus > 1)
                snprintf(v->actual + strlen(v->actual), sizeof(v->actual) - strlen(v->actual),
                         " (GPU %zu)", i);
            return rc;
        }
        *n_out = i + 1;
    }
    return 0;
}
