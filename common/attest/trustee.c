/* SEV-SNP evidence in Trustee's JSON encoding, both ways (trustee.h). */
#include "ccgate/trustee.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/snp.h"

#define CERT_MAX (16 * 1024)

/* The fixed-size byte fields of the report, in the encoder's and decoder's order. */
#define BYTE_FIELDS(X)                                                                             \
    X(family_id, 16)                                                                               \
    X(image_id, 16)                                                                                \
    X(report_data, 64)                                                                             \
    X(measurement, 48)                                                                             \
    X(host_data, 32)                                                                               \
    X(id_key_digest, 48)                                                                           \
    X(author_key_digest, 48)                                                                       \
    X(report_id, 32)                                                                               \
    X(report_id_ma, 32)                                                                            \
    X(chip_id, 64)

static const char *const cert_types[] = {"VCEK", "VLEK", "ASK", "ASVK", "ARK"};

static json_t *byte_array(const uint8_t *p, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a != NULL && i < n; i++)
        if (json_array_append_new(a, json_integer(p[i])) != 0) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* A TCB_VERSION as Trustee writes it; Turin (family 0x1A) has an FMC byte first. */
static json_t *tcb_json(uint64_t raw, int turin)
{
    struct cg_snp_tcb t;
    cg_snp_tcb_decode(raw, turin ? CG_SNP_TURIN : CG_SNP_MILAN, &t);
    return json_pack("{s:o,s:i,s:i,s:i,s:i}", "fmc", turin ? json_integer(t.fmc) : json_null(),
                     "bootloader", t.bootloader, "tee", t.tee, "snp", t.snp, "microcode",
                     t.microcode);
}

json_t *cg_trustee_snp_to_json(const struct cg_evidence *ev)
{
    struct cg_snp_report r;
    struct cg_verdict v;
    if (ev->tag != CG_TAG_SNP || cg_snp_report_parse(ev->evidence, ev->evidence_len, &r, &v) != 0)
        return NULL;
    int turin = r.version >= 3 && r.cpuid_fam_id == 0x1A;
    json_t *o = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:o,s:I,s:I,s:o,s:o,s:o,s:o,s:{s:i,s:i,s:i},s:{s:i,s:i,s:i},s:{s:o,"
        "s:o}}",
        "version", (json_int_t)r.version, "guest_svn", (json_int_t)r.guest_svn, "policy",
        (json_int_t)r.policy, "vmpl", (json_int_t)r.vmpl, "sig_algo", (json_int_t)r.signature_algo,
        "current_tcb", tcb_json(r.current_tcb, turin), "plat_info", (json_int_t)r.platform_info,
        "key_info", (json_int_t)r.signer_info, "reported_tcb", tcb_json(r.reported_tcb, turin),
        "committed_tcb", tcb_json(r.committed_tcb, turin), "launch_tcb",
        tcb_json(r.launch_tcb, turin), "cpuid_fam_id", json_integer(r.cpuid_fam_id), "current",
        "major", r.current_major, "minor", r.current_minor, "build", r.current_build, "committed",
        "major", r.committed_major, "minor", r.committed_minor, "build", r.committed_build,
        "signature", "r", byte_array(r.sig_r, 72), "s", byte_array(r.sig_s, 72));
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "cpuid_mod_id", json_integer(r.cpuid_mod_id));
    json_object_set_new(o, "cpuid_step", json_integer(r.cpuid_step));
#define PUT(name, n) json_object_set_new(o, #name, byte_array(r.name, n));
    BYTE_FIELDS(PUT)
#undef PUT
    if (r.version >= 5) {
        json_object_set_new(o, "launch_mit_vector", json_integer((json_int_t)r.launch_mit_vector));
        json_object_set_new(o, "current_mit_vector",
                            json_integer((json_int_t)r.current_mit_vector));
    }
    json_t *chain = json_array();
    for (size_t i = 0; chain != NULL && i < ev->n_certs; i++) {
        /* certs: the signing key's certificate first, then ASK/ASVK, then ARK. */
        const char *type = i == 0   ? (((r.signer_info >> 2) & 7) == 1 ? "VLEK" : "VCEK")
                           : i == 1 ? (((r.signer_info >> 2) & 7) == 1 ? "ASVK" : "ASK")
                                    : "ARK";
        json_array_append_new(chain, json_pack("{s:s,s:o}", "cert_type", type, "data",
                                               byte_array(ev->certs[i], ev->cert_lens[i])));
    }
    return json_pack("{s:o,s:o}", "attestation_report", o, "cert_chain", chain);
}

/* A list of n numbers 0..255 (n 0: any length up to max, returned in *got). */
static int bytes_from(const json_t *a, const char *name, uint8_t *out, size_t n, size_t max,
                      size_t *got, char *err, size_t errlen)
{
    size_t len = json_array_size(a);
    if (!json_is_array(a) || (n != 0 && len != n) || (n == 0 && (len == 0 || len > max)))
        return cg_errf(err, errlen, CG_EEVIDENCE, "%s: expected a list of %zu numbers", name,
                       n != 0 ? n : max);
    for (size_t i = 0; i < len; i++) {
        const json_t *e = json_array_get(a, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > 255)
            return cg_errf(err, errlen, CG_EEVIDENCE, "%s[%zu]: expected 0 to 255", name, i);
        out[i] = (uint8_t)json_integer_value(e);
    }
    if (got != NULL)
        *got = len;
    return 0;
}

static int num_from(const json_t *o, const char *name, uint64_t max, uint64_t *out, char *err,
                    size_t errlen)
{
    const json_t *e = json_object_get(o, name);
    if (!json_is_integer(e) || json_integer_value(e) < 0 || (uint64_t)json_integer_value(e) > max)
        return cg_errf(err, errlen, CG_EEVIDENCE, "attestation_report.%s: expected 0 to %llu", name,
                       (unsigned long long)max);
    *out = (uint64_t)json_integer_value(e);
    return 0;
}

static int tcb_from(const json_t *o, const char *name, uint64_t *raw, char *err, size_t errlen)
{
    const json_t *t = json_object_get(o, name);
    static const char *const parts[] = {"bootloader", "tee", "snp", "microcode"};
    uint64_t v[4], fmc = 0;
    char path[64];
    if (!json_is_object(t))
        return cg_errf(err, errlen, CG_EEVIDENCE, "attestation_report.%s: expected an object",
                       name);
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof(path), "%s.%s", name, parts[i]);
        const json_t *e = json_object_get(t, parts[i]);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > 255)
            return cg_errf(err, errlen, CG_EEVIDENCE, "attestation_report.%s: expected 0 to 255",
                           path);
        v[i] = (uint64_t)json_integer_value(e);
    }
    const json_t *f = json_object_get(t, "fmc");
    if (f != NULL && !json_is_null(f)) {
        if (!json_is_integer(f) || json_integer_value(f) < 0 || json_integer_value(f) > 255)
            return cg_errf(err, errlen, CG_EEVIDENCE,
                           "attestation_report.%s.fmc: expected null or 0 to 255", name);
        fmc = (uint64_t)json_integer_value(f);
        *raw = fmc | v[0] << 8 | v[1] << 16 | v[2] << 24 | v[3] << 56; /* Turin */
    } else {
        *raw = v[0] | v[1] << 8 | v[2] << 48 | v[3] << 56; /* Milan, Genoa */
    }
    return 0;
}

static int version_from(const json_t *o, const char *name, uint8_t *major, uint8_t *minor,
                        uint8_t *build, char *err, size_t errlen)
{
    const json_t *t = json_object_get(o, name);
    uint64_t v[3];
    static const char *const parts[] = {"major", "minor", "build"};
    for (size_t i = 0; i < 3; i++) {
        const json_t *e = json_object_get(t, parts[i]);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > 255)
            return cg_errf(err, errlen, CG_EEVIDENCE, "attestation_report.%s.%s: expected 0 to 255",
                           name, parts[i]);
        v[i] = (uint64_t)json_integer_value(e);
    }
    *major = (uint8_t)v[0];
    *minor = (uint8_t)v[1];
    *build = (uint8_t)v[2];
    return 0;
}

static int report_from(const json_t *o, struct cg_snp_report *r, char *err, size_t errlen)
{
    uint64_t x = 0;
    int rc;
    char path[64];
    memset(r, 0, sizeof(*r));
    if (!json_is_object(o))
        return cg_errf(err, errlen, CG_EEVIDENCE, "attestation_report: expected an object");
#define NUM(field, name, max)                                                                      \
    if ((rc = num_from(o, name, max, &x, err, errlen)) != 0)                                       \
        return rc;                                                                                 \
    r->field = x;
    NUM(version, "version", 0xffffffffu)
    NUM(guest_svn, "guest_svn", 0xffffffffu)
    NUM(policy, "policy", INT64_MAX)
    NUM(vmpl, "vmpl", 0xffffffffu)
    NUM(signature_algo, "sig_algo", 0xffffffffu)
    NUM(platform_info, "plat_info", INT64_MAX)
    NUM(signer_info, "key_info", 0xffffffffu)
    NUM(cpuid_fam_id, "cpuid_fam_id", 255)
    NUM(cpuid_mod_id, "cpuid_mod_id", 255)
    NUM(cpuid_step, "cpuid_step", 255)
#undef NUM
    if (json_object_get(o, "launch_mit_vector") != NULL) {
        if ((rc = num_from(o, "launch_mit_vector", INT64_MAX, &r->launch_mit_vector, err,
                           errlen)) != 0 ||
            (rc = num_from(o, "current_mit_vector", INT64_MAX, &r->current_mit_vector, err,
                           errlen)) != 0)
            return rc;
    }
    if ((rc = tcb_from(o, "current_tcb", &r->current_tcb, err, errlen)) != 0 ||
        (rc = tcb_from(o, "reported_tcb", &r->reported_tcb, err, errlen)) != 0 ||
        (rc = tcb_from(o, "committed_tcb", &r->committed_tcb, err, errlen)) != 0 ||
        (rc = tcb_from(o, "launch_tcb", &r->launch_tcb, err, errlen)) != 0 ||
        (rc = version_from(o, "current", &r->current_major, &r->current_minor, &r->current_build,
                           err, errlen)) != 0 ||
        (rc = version_from(o, "committed", &r->committed_major, &r->committed_minor,
                           &r->committed_build, err, errlen)) != 0)
        return rc;
#define BYTES(name, n)                                                                             \
    snprintf(path, sizeof(path), "attestation_report.%s", #name);                                  \
    if ((rc = bytes_from(json_object_get(o, #name), path, r->name, n, n, NULL, err, errlen)) != 0) \
        return rc;
    BYTE_FIELDS(BYTES)
#undef BYTES
    const json_t *sig = json_object_get(o, "signature");
    if ((rc = bytes_from(json_object_get(sig, "r"), "attestation_report.signature.r", r->sig_r, 72,
                         72, NULL, err, errlen)) != 0 ||
        (rc = bytes_from(json_object_get(sig, "s"), "attestation_report.signature.s", r->sig_s, 72,
                         72, NULL, err, errlen)) != 0)
        return rc;
    return 0;
}

int cg_trustee_snp_from_json(const json_t *j, struct cg_evidence *out, char *err, size_t errlen)
{
    struct cg_snp_report r;
    int rc;
    memset(out, 0, sizeof(*out));
    if ((rc = report_from(json_object_get(j, "attestation_report"), &r, err, errlen)) != 0)
        return rc;
    const json_t *chain = json_object_get(j, "cert_chain");
    if (!json_is_array(chain) || json_array_size(chain) == 0 ||
        json_array_size(chain) > CG_EVIDENCE_MAX_CERTS)
        return cg_errf(err, errlen, CG_EEVIDENCE,
                       "cert_chain: expected the VCEK or VLEK (and optionally ASK/ASVK, ARK); this "
                       "broker does not fetch certificates from AMD");
    /* Order for the verifier: the signing key's certificate, then ASK/ASVK, then ARK. */
    const uint8_t rank[] = {0, 0, 1, 1, 2};
    out->tag = CG_TAG_SNP;
    for (int want = 0; want < 3; want++) {
        for (size_t i = 0; i < json_array_size(chain); i++) {
            const json_t *c = json_array_get(chain, i);
            const char *type = json_string_value(json_object_get(c, "cert_type"));
            size_t t = 0;
            while (t < 5 && (type == NULL || strcmp(type, cert_types[t]) != 0))
                t++;
            if (t == 5) {
                cg_evidence_clear(out);
                return cg_errf(err, errlen, CG_EEVIDENCE,
                               "cert_chain[%zu].cert_type: expected VCEK, VLEK, ASK, "
                               "ASVK or ARK",
                               i);
            }
            if (rank[t] != want)
                continue;
            uint8_t *der = malloc(CERT_MAX);
            char path[48];
            snprintf(path, sizeof(path), "cert_chain[%zu].data", i);
            if (der == NULL || out->n_certs >= CG_EVIDENCE_MAX_CERTS ||
                (rc = bytes_from(json_object_get(c, "data"), path, der, 0, CERT_MAX,
                                 &out->cert_lens[out->n_certs], err, errlen)) != 0) {
                free(der);
                cg_evidence_clear(out);
                return der == NULL ? -ENOMEM : CG_EEVIDENCE;
            }
            out->certs[out->n_certs++] = der;
        }
        if (want == 0 && out->n_certs != 1) {
            cg_evidence_clear(out);
            return cg_errf(err, errlen, CG_EEVIDENCE,
                           "cert_chain: expected exactly one VCEK or VLEK");
        }
    }
    out->evidence = malloc(CG_SNP_REPORT_SIZE);
    if (out->evidence == NULL) {
        cg_evidence_clear(out);
        return -ENOMEM;
    }
    cg_snp_report_write(&r, out->evidence);
    out->evidence_len = CG_SNP_REPORT_SIZE;
    return 0;
}
