/*
 * TDX policy: parsing the "tdx" member of a policy document and appraising a verified quote
 * and its statuses against it.
 */
#include "ccgate/tdx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

/* ---- policy -------------------------------------------------------------------------- */

void cg_tdx_policy_default(struct cg_tdx_policy *p)
{
    memset(p, 0, sizeof(*p));
    p->present = 1;
    p->require_sept_ve_disable = 1;
    p->require_crls = 1;
    p->accepted_tcb = 1u << CG_TDX_TCB_UP_TO_DATE;
}

static int perr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int perr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err != NULL && errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return CG_ECONFIG;
}

/* A 48-byte allowlist: one hex string or an array of them. */
static int parse_allow48(json_t *j, const char *key, struct cg_tdx_allow48 *out, char *err,
                         size_t errlen)
{
    if (json_is_string(j)) {
        if (cg_unhex(out->v[0], 48, json_string_value(j)) != 0)
            return perr(err, errlen, "tdx.%s: expected 96 hex digits", key);
        out->n = 1;
        return 0;
    }
    if (!json_is_array(j) || json_array_size(j) == 0)
        return perr(err, errlen, "tdx.%s: expected a hex string or a non-empty array", key);
    if (json_array_size(j) > CG_TDX_POLICY_MAX_VALUES)
        return perr(err, errlen, "tdx.%s: at most %d values", key, CG_TDX_POLICY_MAX_VALUES);
    size_t i;
    json_t *e;
    json_array_foreach(j, i, e)
    {
        const char *s = json_string_value(e);
        if (s == NULL || cg_unhex(out->v[i], 48, s) != 0)
            return perr(err, errlen, "tdx.%s[%zu]: expected 96 hex digits", key, i);
    }
    out->n = json_array_size(j);
    return 0;
}

/* The boolean policy keys. */
static int *bool_key(struct cg_tdx_policy *p, const char *key)
{
    if (strcmp(key, "allow_debug") == 0)
        return &p->allow_debug;
    if (strcmp(key, "require_sept_ve_disable") == 0)
        return &p->require_sept_ve_disable;
    if (strcmp(key, "require_crls") == 0)
        return &p->require_crls;
    return NULL;
}

int cg_tdx_policy_parse(const void *json_object, struct cg_tdx_policy *out, char *err,
                        size_t errlen)
{
    json_t *obj = (json_t *)json_object;
    const char *key;
    json_t *val;
    int *flag;
    cg_tdx_policy_default(out);
    if (!json_is_object(obj))
        return perr(err, errlen, "tdx: expected an object");
    json_object_foreach(obj, key, val)
    {
        struct cg_tdx_allow48 *allow = NULL;
        if (strcmp(key, "mrtd") == 0)
            allow = &out->mrtd;
        else if (strncmp(key, "rtmr", 4) == 0 && key[4] >= '0' && key[4] <= '3' && key[5] == 0)
            allow = &out->rtmr[key[4] - '0'];
        else if (strcmp(key, "mrseam") == 0)
            allow = &out->mrseam;
        else if (strcmp(key, "mrconfigid") == 0)
            allow = &out->mrconfigid;
        else if (strcmp(key, "mrowner") == 0)
            allow = &out->mrowner;
        else if (strcmp(key, "mrownerconfig") == 0)
            allow = &out->mrownerconfig;
        else if (strcmp(key, "mrservicetd") == 0)
            allow = &out->mrservicetd;
        if (allow != NULL) {
            int rc = parse_allow48(val, key, allow, err, errlen);
            if (rc != 0)
                return rc;
        } else if ((flag = bool_key(out, key)) != NULL) {
            if (!json_is_boolean(val))
                return perr(err, errlen, "tdx.%s: expected true or false", key);
            *flag = json_is_true(val);
        } else if (strcmp(key, "xfam") == 0) {
            const char *s = json_string_value(val);
            if (s == NULL || cg_unhex(out->xfam, 8, s) != 0)
                return perr(err, errlen, "tdx.xfam: expected 16 hex digits");
            out->has_xfam = 1;
        } else if (strcmp(key, "accepted_tcb_statuses") == 0) {
            size_t i;
            json_t *e;
            if (!json_is_array(val) || json_array_size(val) == 0)
                return perr(err, errlen, "tdx.accepted_tcb_statuses: expected a non-empty array");
            out->accepted_tcb = 0;
            json_array_foreach(val, i, e)
            {
                enum cg_tdx_tcb_status s;
                const char *name = json_string_value(e);
                /* NotEvaluated (no collateral) is never a PCS status, but a policy may
                 * accept it explicitly. */
                if (name != NULL && strcmp(name, "NotEvaluated") == 0)
                    s = CG_TDX_TCB_NOT_EVALUATED;
                else if (name == NULL || cg_tdx_tcb_status_parse(name, &s) != 0)
                    return perr(err, errlen, "tdx.accepted_tcb_statuses[%zu]: unknown status", i);
                if (s == CG_TDX_TCB_REVOKED)
                    return perr(err, errlen,
                                "tdx.accepted_tcb_statuses[%zu]: Revoked is never acceptable", i);
                out->accepted_tcb |= 1u << s;
            }
        } else {
            return perr(err, errlen, "tdx.%s: unknown key", key);
        }
    }
    return 0;
}

/* Checks value against an allowlist (n == 0: any value, unless zero_default). */
static int check_allow48(const struct cg_tdx_allow48 *a, const uint8_t value[48], int zero_default,
                         const char *check, struct cg_verdict *v)
{
    static const uint8_t zero[48];
    char hex[97], want[256];
    if (a->n == 0 && (!zero_default || memcmp(value, zero, 48) == 0))
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (memcmp(a->v[i], value, 48) == 0)
            return 0;
    if (a->n == 0) {
        snprintf(want, sizeof(want), "all zero");
    } else {
        cg_hex(want, sizeof(want), a->v[0], 48);
        if (a->n > 1)
            snprintf(want + 96, sizeof(want) - 96, " or %zu other allowed values", a->n - 1);
    }
    cg_hex(hex, sizeof(hex), value, 48);
    return cg_reject(v, CG_EPOLICY, check, want, "%s", hex);
}

int cg_tdx_appraise(const struct cg_tdx_policy *p, const struct cg_tdx_quote *q,
                    const struct cg_tdx_status *st, struct cg_verdict *v)
{
    static const char *const rtmr_checks[4] = {"tdx.rtmr0", "tdx.rtmr1", "tdx.rtmr2", "tdx.rtmr3"};
    uint64_t attr = q->td_attributes;
    int rc;
    if (attr & CG_TDX_ATTR_RESERVED)
        return cg_reject(v, CG_EPOLICY, "tdx.attributes.reserved", "0", "0x%016llx",
                         (unsigned long long)(attr & CG_TDX_ATTR_RESERVED));
    if ((attr & CG_TDX_ATTR_DEBUG) && !p->allow_debug)
        return cg_reject(v, CG_EPOLICY, "tdx.attributes.debug", "false", "true");
    if (!(attr & CG_TDX_ATTR_SEPT_VE_DISABLE) && p->require_sept_ve_disable)
        return cg_reject(v, CG_EPOLICY, "tdx.attributes.sept_ve_disable", "true", "false");
    if (p->has_xfam) {
        uint8_t xfam[8];
        char want[17], got[17];
        for (int i = 0; i < 8; i++)
            xfam[i] = (uint8_t)(q->xfam >> (8 * i));
        if (memcmp(xfam, p->xfam, 8) != 0) {
            cg_hex(want, sizeof(want), p->xfam, 8);
            cg_hex(got, sizeof(got), xfam, 8);
            return cg_reject(v, CG_EPOLICY, "tdx.xfam", want, "%s", got);
        }
    }
    if ((rc = check_allow48(&p->mrtd, q->mrtd, 0, "tdx.mrtd", v)) != 0)
        return rc;
    for (int i = 0; i < 4; i++)
        if ((rc = check_allow48(&p->rtmr[i], q->rtmr[i], 0, rtmr_checks[i], v)) != 0)
            return rc;
    if ((rc = check_allow48(&p->mrseam, q->mrseam, 0, "tdx.mrseam", v)) != 0 ||
        (rc = check_allow48(&p->mrconfigid, q->mrconfigid, 0, "tdx.mrconfigid", v)) != 0 ||
        (rc = check_allow48(&p->mrowner, q->mrowner, 0, "tdx.mrowner", v)) != 0 ||
        (rc = check_allow48(&p->mrownerconfig, q->mrownerconfig, 0, "tdx.mrownerconfig", v)) != 0 ||
        (rc = check_allow48(&p->mrservicetd, q->mrservicetd, 1, "tdx.mrservicetd", v)) != 0)
        return rc;
    if (p->require_crls && !(st->root_crl && st->pck_crl))
        return cg_reject(v, CG_EPOLICY, "tdx.crls", "root CA CRL and PCK CA CRL applied",
                         "root CRL %s, PCK CRL %s", st->root_crl ? "applied" : "missing",
                         st->pck_crl ? "applied" : "missing");
    if (!(p->accepted_tcb & (1u << st->tcb_status))) {
        char want[256] = "";
        size_t o = 0;
        for (unsigned s = CG_TDX_TCB_NOT_EVALUATED; s < CG_TDX_TCB_REVOKED; s++)
            if (p->accepted_tcb & (1u << s))
                o += (size_t)snprintf(want + o, sizeof(want) - o, "%s%s", o ? "," : "",
                                      cg_tdx_tcb_status_name((enum cg_tdx_tcb_status)s));
        return cg_reject(v, CG_EPOLICY, "tdx.tcb_status", want, "%s",
                         cg_tdx_tcb_status_name(st->tcb_status));
    }
    return 0;
}
