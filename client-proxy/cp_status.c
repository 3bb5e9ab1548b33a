#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ccgate/json.h"
#include "cp_int.h"

/* Appraisal results as the app and the operator see them, and the counters behind /metrics. */

const double cp_hist_bounds[CP_HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                1,     2.5,  5,     10,   30,  60,   HUGE_VAL};

void cp__observe(struct cp_hist *h, uint64_t since_ns)
{
    double v = (double)(uv_hrtime() - since_ns) / 1e9;
    size_t i = 0;
    while (i + 1 < CP_HIST_BUCKETS && v > cp_hist_bounds[i])
        i++;
    h->counts[i]++;
    h->count++;
    h->sum += v;
}

void cp__count_status(struct cp_server *srv, int status)
{
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        srv->stats.responses_by_class[cls]++;
}

void cp__record_failure(struct cp_server *srv, const struct cg_verdict *v)
{
    srv->peer.failed = 1;
    srv->peer.last_failure = *v;
    srv->peer.last_failure_at = time(NULL);
    srv->stats.verify_failed++;
    for (size_t i = 0; i < srv->stats.n_checks; i++) {
        if (strcmp(srv->stats.failed_checks[i].check, v->check) == 0) {
            srv->stats.failed_checks[i].count++;
            return;
        }
    }
    if (srv->stats.n_checks < CP_MAX_CHECKS) {
        size_t i = srv->stats.n_checks++;
        snprintf(srv->stats.failed_checks[i].check, sizeof(srv->stats.failed_checks[i].check), "%s",
                 v->check);
        srv->stats.failed_checks[i].count = 1;
    }
}

void cp__record_success(struct cp_server *srv)
{
    srv->peer.failed = 0;
}

int cp_server_verification_json(const struct cp_server *s, struct cg_buf *out)
{
    const struct cg_attestation *a = cp_fresh_attestation(&s->peer.fresh);
    if (a == NULL || s->peer.failed) {
        (void)cg_buf_printf(out, "{\"verified\": false, \"server\": ");
        cg_json_str(out, s->peer.addr.text);
        if (s->peer.last_failure_at != 0) {
            (void)cg_buf_printf(out, ", \"last_failure\": {\"check\": ");
            cg_json_str(out, s->peer.last_failure.check);
            (void)cg_buf_printf(out, ", \"expected\": ");
            cg_json_str(out, s->peer.last_failure.expected);
            (void)cg_buf_printf(out, ", \"actual\": ");
            cg_json_str(out, s->peer.last_failure.actual);
            (void)cg_buf_printf(out, "}");
        }
        (void)cg_buf_printf(out, "}\n");
        return 503;
    }
    char when[32], iat[32];
    struct tm tm;
    gmtime_r(&a->verified_at, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    time_t iat_t = (time_t)a->iat;
    gmtime_r(&iat_t, &tm);
    strftime(iat, sizeof(iat), "%Y-%m-%dT%H:%M:%SZ", &tm);
    (void)cg_buf_printf(out, "{\"verified\": true, \"server\": ");
    cg_json_str(out, s->peer.addr.text);
    (void)cg_buf_printf(out, ", \"tee\": \"%s\", \"insecure\": %s", cg_ratls_tee_name(a->tag),
                        a->insecure ? "true" : "false");
    if (a->insecure)
        (void)cg_buf_printf(out, ", \"warning\": \"INSECURE: simulated TEE, no hardware "
                                 "protection\"");
    if (a->tag == CG_TAG_TDX) {
        (void)cg_buf_printf(out, ", \"measurement\": ");
        cg_json_hex(out, a->tdx.mrtd, sizeof(a->tdx.mrtd));
        (void)cg_buf_printf(out, ", \"tcb\": ");
        cg_json_tdx_status(out, &a->tdx_status);
    } else {
        (void)cg_buf_printf(out, ", \"measurement\": ");
        cg_json_hex(out, a->snp.measurement, sizeof(a->snp.measurement));
        (void)cg_buf_printf(out, ", \"tcb\": {\"reported\": ");
        cg_json_tcb(out, &a->snp.reported);
        (void)cg_buf_printf(out, ", \"committed\": ");
        cg_json_tcb(out, &a->snp.committed);
        (void)cg_buf_printf(out, ", \"launch\": ");
        cg_json_tcb(out, &a->snp.launch);
        (void)cg_buf_printf(out, "}");
    }
    if (a->gpu_appraised) {
        (void)cg_buf_printf(out, ", \"gpus\": [");
        for (size_t i = 0; i < a->n_gpus; i++) {
            (void)cg_buf_printf(out, i > 0 ? ", " : "");
            cg_json_gpu(out, &a->gpus[i]);
        }
        (void)cg_buf_printf(out, "]");
    }
    (void)cg_buf_printf(out, ", \"model\": ");
    cg_json_model(out, &a->model);
    (void)cg_buf_printf(out, ", \"policy_digest\": ");
    cg_json_hex(out, s->policy->digest, sizeof(s->policy->digest));
    (void)cg_buf_printf(out, ", \"cert_sha256\": ");
    cg_json_hex(out, a->cert_sha256, sizeof(a->cert_sha256));
    (void)cg_buf_printf(out, ", \"pubkey_sha256\": ");
    cg_json_hex(out, a->spki_sha256, sizeof(a->spki_sha256));
    (void)cg_buf_printf(out, ", \"evidence_iat\": \"%s\", \"verified_at\": \"%s\"", iat, when);
    (void)cg_buf_printf(
        out, ", \"freshness\": \"%s\", \"report\": ", a->nonce_matched ? "nonce" : "max-age");
    if (a->tag == CG_TAG_TDX)
        cg_json_tdx_quote(out, &a->tdx);
    else
        cg_json_snp_report(out, &a->snp);
    (void)cg_buf_printf(out, "}\n");
    return 200;
}

int cp_server_ready(const struct cp_server *s, time_t now, struct cg_buf *why)
{
    const struct cg_attestation *a = cp_fresh_attestation(&s->peer.fresh);
    if (s->peer.failed) {
        if (why != NULL)
            (void)cg_buf_printf(why,
                                "not ready: the last appraisal failed: check=%s expected=\"%s\" "
                                "actual=\"%s\"\n",
                                s->peer.last_failure.check, s->peer.last_failure.expected,
                                s->peer.last_failure.actual);
        return 0;
    }
    if (a == NULL || now - a->verified_at > (time_t)s->policy->freshness.max_age_s) {
        if (why != NULL)
            (void)cg_buf_printf(why, "not ready: no server verified within max_age_s\n");
        return 0;
    }
    return 1;
}
