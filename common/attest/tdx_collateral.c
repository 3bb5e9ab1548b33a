/*
 * TDX collateral (shared/ATTESTATION.md section 2): TCB statuses and dates, Intel-signed
 * PCS JSON (TCB info, QE identity) checked over the exact signed bytes, and how they apply
 * to a verified quote (platform TCB level, TDX module, QE identity).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "tdx_int.h"

/* ---- statuses and dates -------------------------------------------------------------- */

static const char *const status_names[] = {
    [CG_TDX_TCB_NOT_EVALUATED] = "NotEvaluated",
    [CG_TDX_TCB_UP_TO_DATE] = "UpToDate",
    [CG_TDX_TCB_SW_HARDENING_NEEDED] = "SWHardeningNeeded",
    [CG_TDX_TCB_CONFIGURATION_NEEDED] = "ConfigurationNeeded",
    [CG_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED] = "ConfigurationAndSWHardeningNeeded",
    [CG_TDX_TCB_OUT_OF_DATE] = "OutOfDate",
    [CG_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED] = "OutOfDateConfigurationNeeded",
    [CG_TDX_TCB_REVOKED] = "Revoked",
};

const char *cg_tdx_tcb_status_name(enum cg_tdx_tcb_status s)
{
    if ((unsigned)s >= sizeof(status_names) / sizeof(status_names[0]))
        return "?";
    return status_names[s];
}

int cg_tdx_tcb_status_parse(const char *name, enum cg_tdx_tcb_status *out)
{
    for (unsigned i = CG_TDX_TCB_UP_TO_DATE; i <= CG_TDX_TCB_REVOKED; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (enum cg_tdx_tcb_status)i;
            return 0;
        }
    }
    return CG_ECONFIG;
}

/* Intel's convergence of two statuses: the worse one, keeping "configuration needed". */
static enum cg_tdx_tcb_status merge_status(enum cg_tdx_tcb_status a, enum cg_tdx_tcb_status b)
{
    if (a == CG_TDX_TCB_REVOKED || b == CG_TDX_TCB_REVOKED)
        return CG_TDX_TCB_REVOKED;
#define HAS(s, x) ((a) == (x) || (b) == (x))
    int ood = HAS(a, CG_TDX_TCB_OUT_OF_DATE) || HAS(a, CG_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED);
    int conf = HAS(a, CG_TDX_TCB_CONFIGURATION_NEEDED) ||
               HAS(a, CG_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED) ||
               HAS(a, CG_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED);
    int sw = HAS(a, CG_TDX_TCB_SW_HARDENING_NEEDED) ||
             HAS(a, CG_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED);
#undef HAS
    if (ood)
        return conf ? CG_TDX_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED : CG_TDX_TCB_OUT_OF_DATE;
    if (conf)
        return sw ? CG_TDX_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED
                  : CG_TDX_TCB_CONFIGURATION_NEEDED;
    return sw ? CG_TDX_TCB_SW_HARDENING_NEEDED : CG_TDX_TCB_UP_TO_DATE;
}

int cg_tdx_time_parse(const char *s, time_t *out)
{
    struct tm tm;
    int y, mo, d, h, mi, se, used = 0;
    if (s == NULL || strlen(s) != 20 ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2dZ%n", &y, &mo, &d, &h, &mi, &se, &used) != 6 ||
        used != 20)
        return CG_ECONFIG;
    for (int i = 0; i < 20; i++) {
        static const char shape[] = "dddd-dd-ddTdd:dd:ddZ";
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return CG_ECONFIG;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59)
        return CG_ECONFIG;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    struct tm back;
    /* timegm() normalizes (Feb 31 -> Mar 3): only dates that exist are accepted. */
    if (t == (time_t)-1 || gmtime_r(&t, &back) == NULL || back.tm_mday != d ||
        back.tm_mon != mo - 1 || back.tm_sec != se)
        return CG_ECONFIG;
    *out = t;
    return 0;
}

/* ---- signed PCS JSON ----------------------------------------------------------------- */

static size_t skip_ws(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
        i++;
    return i;
}

/* s[i] is '"': returns the index after the closing quote, or 0. */
static size_t skip_string(const char *s, size_t n, size_t i)
{
    for (i++; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            return i + 1;
    }
    return 0;
}

/* Returns the index after the JSON value starting at s[i], or 0. Never reads outside
 * s[0..n), whatever s holds; the answer is exact when s is valid JSON. */
static size_t skip_value(const char *s, size_t n, size_t i)
{
    if (i >= n)
        return 0;
    if (s[i] == '"')
        return skip_string(s, n, i);
    if (s[i] == '{' || s[i] == '[') {
        size_t depth = 0;
        for (; i < n; i++) {
            if (s[i] == '"') {
                size_t e = skip_string(s, n, i);
                if (e == 0)
                    return 0;
                i = e - 1;
            } else if (s[i] == '{' || s[i] == '[') {
                depth++;
            } else if (s[i] == '}' || s[i] == ']') {
                if (--depth == 0)
                    return i + 1;
            }
        }
        return 0;
    }
    while (i < n && strchr(",}] \t\r\n", s[i]) == NULL)
        i++;
    return i;
}

/*
 * Finds the raw text of the top-level member `key` of the JSON object in s[0..n): the
 * bytes Intel signed, exactly as transmitted. Keys are compared unescaped-as-written, so a
 * key spelled with escapes is not found (and the document is refused).
 */
static int raw_member(const char *s, size_t n, const char *key, const char **val, size_t *vlen)
{
    size_t klen = strlen(key);
    size_t i = skip_ws(s, n, 0);
    if (i >= n || s[i] != '{')
        return -1;
    i = skip_ws(s, n, i + 1);
    while (i < n && s[i] == '"') {
        size_t kend = skip_string(s, n, i);
        if (kend == 0)
            return -1;
        int match = kend - i - 2 == klen && memcmp(s + i + 1, key, klen) == 0;
        i = skip_ws(s, n, kend);
        if (i >= n || s[i] != ':')
            return -1;
        i = skip_ws(s, n, i + 1);
        size_t vend = skip_value(s, n, i);
        if (vend == 0)
            return -1;
        if (match) {
            *val = s + i;
            *vlen = vend - i;
            return 0;
        }
        i = skip_ws(s, n, vend);
        if (i < n && s[i] == ',')
            i = skip_ws(s, n, i + 1);
    }
    return -1;
}

/*
 * Checks a PCS response {"<member>": {...}, "signature": "<hex r||s>"} signed by key and
 * returns in *out the member parsed from the very bytes that were signed (caller frees).
 * what names the document in verdicts ("tcb_info", "qe_identity").
 */
int cg__tdx_verify_signed_json(const char *doc, size_t n, const char *member, EVP_PKEY *key,
                               const char *what, json_t **out, struct cg_verdict *v)
{
    char check[64];
    uint8_t sig[64];
    const char *raw = NULL;
    size_t raw_len = 0;
    json_error_t jerr;
    int rc = CG_EEVIDENCE;
    *out = NULL;
    json_t *top = NULL;
    if (n > CG_TDX_COLLATERAL_MAX) {
        snprintf(check, sizeof(check), "tdx.%s.size", what);
        return cg_reject(v, CG_EEVIDENCE, check, "<= 262144 bytes", "%zu", n);
    }
    top = json_loadb(doc, n, JSON_REJECT_DUPLICATES, &jerr);
    snprintf(check, sizeof(check), "tdx.%s.json", what);
    if (top == NULL || !json_is_object(top) || json_object_size(top) != 2 ||
        !json_is_object(json_object_get(top, member))) {
        rc = cg_reject(v, CG_EEVIDENCE, check, "{member, signature}", "%s",
                       top == NULL ? jerr.text : "other members");
        goto out;
    }
    const char *sig_hex = json_string_value(json_object_get(top, "signature"));
    snprintf(check, sizeof(check), "tdx.%s.signature", what);
    if (sig_hex == NULL || cg_unhex(sig, sizeof(sig), sig_hex) != 0) {
        rc = cg_reject(v, CG_EEVIDENCE, check, "128 hex digits", "malformed");
        goto out;
    }
    if (raw_member(doc, n, member, &raw, &raw_len) != 0) {
        rc = cg_reject(v, CG_EEVIDENCE, check, "signed member found", "not found verbatim");
        goto out;
    }
    int ok = cg__tdx_ecdsa_verify(key, (const uint8_t *)raw, raw_len, sig);
    if (ok != 1) {
        rc = ok < 0 ? ok
                    : cg_reject(v, CG_EEVIDENCE, check, "signed by Intel SGX TCB Signing",
                                "bad signature");
        goto out;
    }
    *out = json_loadb(raw, raw_len, JSON_REJECT_DUPLICATES, &jerr);
    if (*out == NULL || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        snprintf(check, sizeof(check), "tdx.%s.json", what);
        rc = cg_reject(v, CG_EEVIDENCE, check, "an object", "unparsable");
        goto out;
    }
    rc = 0;
out:
    json_decref(top);
    return rc;
}

/* Reads obj[key] as hex of exactly n bytes. */
static int json_hex(json_t *obj, const char *key, uint8_t *out, size_t n)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s != NULL && cg_unhex(out, n, s) == 0 ? 0 : -1;
}

/* Reads obj[key] as an integer in [0, max]. */
static int json_uint(json_t *obj, const char *key, json_int_t max, unsigned *out)
{
    json_t *j = json_object_get(obj, key);
    if (!json_is_integer(j) || json_integer_value(j) < 0 || json_integer_value(j) > max)
        return -1;
    *out = (unsigned)json_integer_value(j);
    return 0;
}

/* Checks issueDate <= at < nextUpdate of a collateral document. */
static int check_validity(json_t *doc, time_t at, const char *what, struct cg_verdict *v)
{
    char check[64], now[32];
    struct tm tm;
    if (gmtime_r(&at, &tm) == NULL || strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(now, sizeof(now), "%lld", (long long)at);
    time_t issue, next;
    const char *si = json_string_value(json_object_get(doc, "issueDate"));
    const char *sn = json_string_value(json_object_get(doc, "nextUpdate"));
    snprintf(check, sizeof(check), "tdx.%s.dates", what);
    if (cg_tdx_time_parse(si, &issue) != 0 || cg_tdx_time_parse(sn, &next) != 0)
        return cg_reject(v, CG_EEVIDENCE, check, "issueDate and nextUpdate", "malformed");
    if (at < issue) {
        snprintf(check, sizeof(check), "tdx.%s.not_yet_valid", what);
        return cg_reject(v, CG_EEVIDENCE, check, si, "now %s", now);
    }
    if (at >= next) {
        snprintf(check, sizeof(check), "tdx.%s.expired", what);
        return cg_reject(v, CG_EEVIDENCE, check, sn, "now %s", now);
    }
    return 0;
}

/* Reads a tcbLevels entry's status and appends its advisory IDs to st. */
static int level_status(json_t *level, enum cg_tdx_tcb_status *out, struct cg_tdx_status *st,
                        const char *what, struct cg_verdict *v)
{
    char check[64];
    snprintf(check, sizeof(check), "tdx.%s.tcb_level", what);
    const char *s = json_string_value(json_object_get(level, "tcbStatus"));
    if (s == NULL || cg_tdx_tcb_status_parse(s, out) != 0)
        return cg_reject(v, CG_EEVIDENCE, check, "a known tcbStatus", "%s", s ? s : "none");
    json_t *adv = json_object_get(level, "advisoryIDs");
    if (adv == NULL)
        return 0;
    if (!json_is_array(adv))
        return cg_reject(v, CG_EEVIDENCE, check, "advisoryIDs array", "other");
    size_t i;
    json_t *a;
    json_array_foreach(adv, i, a)
    {
        const char *id = json_string_value(a);
        if (id == NULL || strlen(id) >= sizeof(st->advisories[0]))
            return cg_reject(v, CG_EEVIDENCE, check, "advisory ids < 32 chars", "malformed");
        int dup = 0;
        for (size_t k = 0; k < st->n_advisories && !dup; k++)
            dup = strcmp(st->advisories[k], id) == 0;
        if (dup)
            continue;
        if (st->n_advisories == CG_TDX_MAX_ADVISORIES)
            return cg_reject(v, CG_EEVIDENCE, check, "<= 32 advisory ids", "more");
        snprintf(st->advisories[st->n_advisories++], sizeof(st->advisories[0]), "%s", id);
    }
    return 0;
}

/* QE identity (TD_QE): identity of the QE that signed the quote and its TCB status. */
static int check_qe_identity(json_t *id, const struct cg_tdx_quote *q, time_t at,
                             struct cg_tdx_status *st, struct cg_verdict *v)
{
    const struct cg_tdx_qe_report *qe = &q->qe_report;
    uint8_t mrsigner[32], attr[16], attr_mask[16], misc[4], misc_mask[4];
    unsigned version, prodid;
    char hex[65];
    const char *sid = json_string_value(json_object_get(id, "id"));
    if (sid == NULL || strcmp(sid, "TD_QE") != 0)
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.id", "TD_QE", "%s", sid ? sid : "none");
    if (json_uint(id, "version", 3, &version) != 0 || version < 2)
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.version", "2 or 3", "other");
    int rc = check_validity(id, at, "qe_identity", v);
    if (rc != 0)
        return rc;
    if (json_hex(id, "mrsigner", mrsigner, 32) != 0 || json_hex(id, "attributes", attr, 16) != 0 ||
        json_hex(id, "attributesMask", attr_mask, 16) != 0 ||
        json_hex(id, "miscselect", misc, 4) != 0 ||
        json_hex(id, "miscselectMask", misc_mask, 4) != 0 ||
        json_uint(id, "isvprodid", 0xFFFF, &prodid) != 0)
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.json", "identity fields", "malformed");
    if (memcmp(mrsigner, qe->mrsigner, 32) != 0) {
        cg_hex(hex, sizeof(hex), qe->mrsigner, 32);
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.mrsigner",
                         json_string_value(json_object_get(id, "mrsigner")), "%s", hex);
    }
    if (prodid != qe->isvprodid)
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.isvprodid", "as in QE identity",
                         "%u != %u", qe->isvprodid, prodid);
    /* miscselect is written as a big-endian number; the report holds it little-endian. */
    uint32_t want_misc =
        (uint32_t)misc[0] << 24 | (uint32_t)misc[1] << 16 | (uint32_t)misc[2] << 8 | misc[3];
    uint32_t mask_misc = (uint32_t)misc_mask[0] << 24 | (uint32_t)misc_mask[1] << 16 |
                         (uint32_t)misc_mask[2] << 8 | misc_mask[3];
    if ((qe->miscselect & mask_misc) != want_misc)
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.miscselect", "masked match", "0x%08x",
                         qe->miscselect);
    for (int i = 0; i < 16; i++) {
        if ((qe->attributes[i] & attr_mask[i]) != attr[i]) {
            cg_hex(hex, sizeof(hex), qe->attributes, 16);
            return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.attributes", "masked match", "%s",
                             hex);
        }
    }
    json_t *levels = json_object_get(id, "tcbLevels");
    size_t i;
    json_t *level;
    if (!json_is_array(levels))
        return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.json", "tcbLevels", "missing");
    json_array_foreach(levels, i, level)
    {
        unsigned isvsvn;
        if (json_uint(json_object_get(level, "tcb"), "isvsvn", 0xFFFF, &isvsvn) != 0)
            return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.tcb_level", "tcb.isvsvn",
                             "malformed");
        if (isvsvn <= qe->isvsvn)
            return level_status(level, &st->qe_status, st, "qe_identity", v);
    }
    return cg_reject(v, CG_EEVIDENCE, "tdx.qe_identity.tcb", "a TCB level for the QE ISVSVN",
                     "isvsvn %u below every level", qe->isvsvn);
}

/* Reads a 16-entry [{"svn": n}, ...] component array. */
static int read_components(json_t *arr, uint8_t out[16])
{
    size_t i;
    json_t *c;
    unsigned svn;
    if (!json_is_array(arr) || json_array_size(arr) != 16)
        return -1;
    json_array_foreach(arr, i, c)
    {
        if (json_uint(c, "svn", 255, &svn) != 0)
            return -1;
        out[i] = (uint8_t)svn;
    }
    return 0;
}

/* Matches MRSIGNERSEAM and SEAMATTRIBUTES against a tdxModule(Identity) object. */
static int check_module_identity(json_t *m, const struct cg_tdx_quote *q, struct cg_verdict *v)
{
    uint8_t mrsigner[48], attr[8], mask[8], seam[8];
    char hex[97];
    if (json_hex(m, "mrsigner", mrsigner, 48) != 0 || json_hex(m, "attributes", attr, 8) != 0 ||
        json_hex(m, "attributesMask", mask, 8) != 0)
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.json", "tdxModule fields", "malformed");
    if (memcmp(mrsigner, q->mrsignerseam, 48) != 0) {
        cg_hex(hex, sizeof(hex), q->mrsignerseam, 48);
        return cg_reject(v, CG_EEVIDENCE, "tdx.tdx_module.mrsigner",
                         json_string_value(json_object_get(m, "mrsigner")), "%s", hex);
    }
    for (int i = 0; i < 8; i++)
        seam[i] = (uint8_t)(q->seam_attributes >> (8 * i));
    for (int i = 0; i < 8; i++) {
        if ((seam[i] & mask[i]) != attr[i]) {
            cg_hex(hex, sizeof(hex), seam, 8);
            return cg_reject(v, CG_EEVIDENCE, "tdx.tdx_module.attributes", "masked match", "%s",
                             hex);
        }
    }
    return 0;
}

/* TDX module: by TEE_TCB_SVN[1] (major version) in tdxModuleIdentities, else tdxModule. */
static int check_tdx_module(json_t *info, const struct cg_tdx_quote *q, struct cg_tdx_status *st,
                            struct cg_verdict *v)
{
    uint8_t version = q->tee_tcb_svn[1], isvsvn = q->tee_tcb_svn[0];
    json_t *module = json_object_get(info, "tdxModule");
    if (!json_is_object(module))
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.json", "tdxModule", "missing");
    if (version == 0) {
        st->module_status = CG_TDX_TCB_UP_TO_DATE;
        return check_module_identity(module, q, v);
    }
    char want[8];
    snprintf(want, sizeof(want), "TDX_%02X", version);
    json_t *ids = json_object_get(info, "tdxModuleIdentities"), *id, *found = NULL;
    size_t i;
    json_array_foreach(ids, i, id)
    {
        const char *s = json_string_value(json_object_get(id, "id"));
        /* Intel's QVL compares the identity ids case-insensitively. */
        if (s != NULL && strcasecmp(s, want) == 0) {
            found = id;
            break;
        }
    }
    if (found == NULL)
        return cg_reject(v, CG_EEVIDENCE, "tdx.tdx_module.identity", want, "not in TCB info");
    int rc = check_module_identity(found, q, v);
    if (rc != 0)
        return rc;
    json_t *levels = json_object_get(found, "tcbLevels"), *level;
    json_array_foreach(levels, i, level)
    {
        unsigned svn;
        if (json_uint(json_object_get(level, "tcb"), "isvsvn", 255, &svn) != 0)
            return cg_reject(v, CG_EEVIDENCE, "tdx.tdx_module.tcb_level", "tcb.isvsvn",
                             "malformed");
        if (svn <= isvsvn)
            return level_status(level, &st->module_status, st, "tdx_module", v);
    }
    return cg_reject(v, CG_EEVIDENCE, "tdx.tdx_module.tcb", "a TCB level for the module ISVSVN",
                     "%s isvsvn %u below every level", want, isvsvn);
}

/* TCB info (TDX, v3): FMSPC/PCE-ID, platform TCB level, TDX module. */
static int check_tcb_info(json_t *info, const struct cg_tdx_quote *q, time_t at,
                          struct cg_tdx_status *st, struct cg_verdict *v)
{
    uint8_t fmspc[6], pceid[2];
    unsigned version, evalnum, tcb_type;
    char hex[16];
    const char *sid = json_string_value(json_object_get(info, "id"));
    if (sid == NULL || strcmp(sid, "TDX") != 0)
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.id", "TDX", "%s", sid ? sid : "none");
    if (json_uint(info, "version", 1000, &version) != 0 || version != 3)
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.version", "3", "other");
    int rc = check_validity(info, at, "tcb_info", v);
    if (rc != 0)
        return rc;
    if (json_hex(info, "fmspc", fmspc, 6) != 0 || json_hex(info, "pceId", pceid, 2) != 0 ||
        json_uint(info, "tcbEvaluationDataNumber", UINT32_MAX, &evalnum) != 0 ||
        json_uint(info, "tcbType", 255, &tcb_type) != 0 || tcb_type != 0)
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.json", "fmspc, pceId, tcbType 0",
                         "malformed");
    st->tcb_evaluation_data_number = evalnum;
    if (memcmp(fmspc, q->pck.fmspc, 6) != 0) {
        cg_hex(hex, sizeof(hex), q->pck.fmspc, 6);
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.fmspc",
                         json_string_value(json_object_get(info, "fmspc")), "%s", hex);
    }
    if (memcmp(pceid, q->pck.pceid, 2) != 0) {
        cg_hex(hex, sizeof(hex), q->pck.pceid, 2);
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.pceid",
                         json_string_value(json_object_get(info, "pceId")), "%s", hex);
    }

    json_t *levels = json_object_get(info, "tcbLevels"), *level;
    json_t *match = NULL;
    size_t i;
    if (!json_is_array(levels))
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.json", "tcbLevels", "missing");
    /*
     * Intel's QVL (TcbLevelCheck matchTcbLevels): levels come highest first; the platform's
     * is the first one whose SGX components and PCESVN the PCK certificate meets and whose
     * TDX components TEE_TCB_SVN meets. When TEE_TCB_SVN[1] (the module's major version) is
     * not 0, components 0 and 1 are the module's and are graded by its identity instead.
     */
    int tdx_from = q->tee_tcb_svn[1] > 0 ? 2 : 0;
    json_array_foreach(levels, i, level)
    {
        json_t *tcb = json_object_get(level, "tcb");
        uint8_t sgx[16], tdx[16];
        unsigned pcesvn;
        if (read_components(json_object_get(tcb, "sgxtcbcomponents"), sgx) != 0 ||
            read_components(json_object_get(tcb, "tdxtcbcomponents"), tdx) != 0 ||
            json_uint(tcb, "pcesvn", 0xFFFF, &pcesvn) != 0)
            return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.tcb_level",
                             "sgx/tdx components and pcesvn", "malformed level %zu", i);
        int ok = q->pck.pcesvn >= pcesvn;
        for (int k = 0; k < 16 && ok; k++)
            ok = q->pck.sgx_tcb[k] >= sgx[k];
        for (int k = tdx_from; k < 16 && ok; k++)
            ok = q->tee_tcb_svn[k] >= tdx[k];
        if (ok) {
            match = level;
            break;
        }
    }
    if (match == NULL) {
        cg_hex(hex, sizeof(hex), q->tee_tcb_svn, 4);
        return cg_reject(v, CG_EEVIDENCE, "tdx.tcb_info.tcb_level",
                         "a TCB level the platform meets (TCB not supported)",
                         "pcesvn %u, tee_tcb_svn %s...", q->pck.pcesvn, hex);
    }
    rc = level_status(match, &st->platform_status, st, "tcb_info", v);
    if (rc != 0)
        return rc;
    const char *date = json_string_value(json_object_get(match, "tcbDate"));
    snprintf(st->tcb_date, sizeof(st->tcb_date), "%s", date ? date : "");
    return check_tdx_module(info, q, st, v);
}

/* Applies authenticated TCB info and QE identity to a verified quote: statuses into st. */
int cg__tdx_collateral_json(json_t *tcb_info, json_t *qe_id, const struct cg_tdx_quote *q,
                            time_t at, struct cg_tdx_status *st, struct cg_verdict *v)
{
    int rc = check_tcb_info(tcb_info, q, at, st, v);
    if (rc != 0)
        return rc;
    rc = check_qe_identity(qe_id, q, at, st, v);
    if (rc != 0)
        return rc;
    st->tcb_status =
        merge_status(merge_status(st->platform_status, st->module_status), st->qe_status);
    st->collateral = 1;
    return 0;
}

int cg__tdx_apply_collateral(const char *tcb_info, size_t tcb_info_len, const char *qe_identity,
                             size_t qe_identity_len, const struct cg_tdx_quote *q, time_t at,
                             struct cg_tdx_status *st, struct cg_verdict *v)
{
    json_error_t jerr;
    json_t *ti = json_loadb(tcb_info, tcb_info_len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *qi = json_loadb(qe_identity, qe_identity_len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = CG_ECONFIG;
    if (json_is_object(ti) && json_is_object(qi))
        rc = cg__tdx_collateral_json(ti, qi, q, at, st, v);
    json_decref(ti);
    json_decref(qi);
    return rc;
}

/* 1 when s[0..n) contains the NUL-free string needle. */
static int contains(const uint8_t *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            return 1;
    return 0;
}

int cg_tdx_collateral_from_blobs(const uint8_t *const *blobs, const size_t *lens, size_t n,
                                 struct cg_tdx_collateral *col, struct cg_verdict *v)
{
    memset(col, 0, sizeof(*col));
    for (size_t i = 0; i < n; i++) {
        const char *text = (const char *)blobs[i], *member;
        size_t len = lens[i], mlen, ws = skip_ws(text, len, 0);
        const char **slot = NULL;
        size_t *slot_len = NULL;
        if (ws < len && text[ws] == '{' && raw_member(text, len, "tcbInfo", &member, &mlen) == 0) {
            slot = &col->tcb_info;
            slot_len = &col->tcb_info_len;
        } else if (ws < len && text[ws] == '{' &&
                   raw_member(text, len, "enclaveIdentity", &member, &mlen) == 0) {
            slot = &col->qe_identity;
            slot_len = &col->qe_identity_len;
        } else if (contains(blobs[i], len, "-----BEGIN CERTIFICATE-----")) {
            slot = &col->tcb_chain;
            slot_len = &col->tcb_chain_len;
        } else if ((len > 0 && blobs[i][0] == 0x30) ||
                   contains(blobs[i], len, "-----BEGIN X509 CRL-----")) {
            if (col->n_crls == CG_TDX_MAX_CRLS)
                return cg_reject(v, CG_EEVIDENCE, "tdx.collateral", "<= 4 CRLs", "more");
            col->crls[col->n_crls] = blobs[i];
            col->crl_lens[col->n_crls++] = len;
            continue;
        } else {
            return cg_reject(v, CG_EEVIDENCE, "tdx.collateral",
                             "TCB info, QE identity, TCB signing chain or CRL",
                             "unrecognized blob %zu", i);
        }
        if (*slot != NULL)
            return cg_reject(v, CG_EEVIDENCE, "tdx.collateral", "one of each document",
                             "blob %zu repeats one", i);
        *slot = text;
        *slot_len = len;
    }
    return 0;
}
