#include <stdio.h>
#include <string.h>

#include "ccgate/json.h"
#include "cp_int.h"

/* Appraisal results as the app and the operator see them, and the counters behind /metrics. */

void cp__observe(struct cg_hist *h, uint64_t since_ns)
{
    cg_hist_observe(h, (double)(uv_hrtime() - since_ns) / 1e9);
}

void cp__count_status(struct cp_server *srv, int status)
{
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        srv->stats.responses_by_class[cls]++;
}

void cp__note_failure(struct cp_peer *p, const struct cg_verdict *v)
{
    p->last_failure = *v;
    p->last_failure_at = time(NULL);
}

void cp__record_failure(struct cp_peer *p, const struct cg_verdict *v)
{
    struct cp_stats *st = &p->srv->stats;
    cp__note_failure(p, v);
    p->failed = 1;
    p->last_appraisal_at = p->last_failure_at;
    st->verify_failed++;
    for (size_t i = 0; i < st->n_checks; i++) {
        if (strcmp(st->failed_checks[i].check, v->check) == 0) {
            st->failed_checks[i].count++;
            return;
        }
    }
    if (st->n_checks < CP_MAX_CHECKS) {
        size_t i = st->n_checks++;
        snprintf(st->failed_checks[i].check, sizeof(st->failed_checks[i].check), "%s", v->check);
        st->failed_checks[i].count = 1;
    }
}

void cp__record_success(struct cp_peer *p)
{
    p->failed = 0;
    p->last_appraisal_at = time(NULL);
}

/* In rotation with a key verified within max_age_s. */
static int peer_ready(const struct cp_server *s, const struct cp_peer *p, time_t now)
{
    const struct cg_attestation *a = cp_fresh_attestation(&p->fresh);
    return p->state == CP_PEER_VERIFIED && a != NULL &&
           now - a->verified_at <= (time_t)s->policy->freshness.max_age_s;
}

static void json_time(struct cg_buf *out, const char *key, time_t t)
{
    char when[32];
    struct tm tm;
    (void)cg_buf_printf(out, ", \"%s\": ", key);
    if (t == 0) {
        (void)cg_buf_printf(out, "null");
        return;
    }
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    (void)cg_buf_printf(out, "\"%s\"", when);
}

/* What was verified: the fields after "server" of a verified server. */
static void json_attestation(const struct cp_server *s, const struct cg_attestation *a,
                             struct cg_buf *out)
{
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
    json_time(out, "evidence_iat", (time_t)a->iat);
    json_time(out, "verified_at", a->verified_at);
    (void)cg_buf_printf(
        out, ", \"freshness\": \"%s\", \"report\": ", a->nonce_matched ? "nonce" : "max-age");
    if (a->tag == CG_TAG_TDX)
        cg_json_tdx_quote(out, &a->tdx);
    else
        cg_json_snp_report(out, &a->snp);
}

/* One server's fields: address, state, what was verified (when ready), the last appraisal and
 * the last failure. */
static void json_peer(const struct cp_server *s, const struct cp_peer *p, time_t now,
                      struct cg_buf *out)
{
    (void)cg_buf_printf(out, "\"server\": ");
    cg_json_str(out, p->addr.text);
    (void)cg_buf_printf(out, ", \"state\": \"%s\", \"ready\": %s", cp__peer_state_name(p->state),
                        peer_ready(s, p, now) ? "true" : "false");
    if (peer_ready(s, p, now))
        json_attestation(s, cp_fresh_attestation(&p->fresh), out);
    json_time(out, "last_appraisal", p->last_appraisal_at);
    (void)cg_buf_printf(out, ", \"outstanding\": %u, \"ejections\": %llu", p->outstanding,
                        (unsigned long long)p->ejections);
    if (p->last_failure_at != 0) {
        (void)cg_buf_printf(out, ", \"last_failure\": {\"check\": ");
        cg_json_str(out, p->last_failure.check);
        (void)cg_buf_printf(out, ", \"expected\": ");
        cg_json_str(out, p->last_failure.expected);
        (void)cg_buf_printf(out, ", \"actual\": ");
        cg_json_str(out, p->last_failure.actual);
        json_time(out, "at", p->last_failure_at);
        (void)cg_buf_printf(out, "}");
    }
}

int cp_server_verification_json(const struct cp_server *s, struct cg_buf *out)
{
    time_t now = time(NULL);
    int ready = cp_server_ready(s, now, NULL);
    (void)cg_buf_printf(out, "{\"verified\": %s, ", ready ? "true" : "false");
    if (s->n_peers == 1) {
        /* One server: its fields at the top level too, as before there were several. */
        json_peer(s, s->peers[0], now, out);
    } else {
        (void)cg_buf_printf(out, "\"policy_digest\": ");
        cg_json_hex(out, s->policy->digest, sizeof(s->policy->digest));
    }
    (void)cg_buf_printf(out, ", \"servers\": [");
    for (size_t i = 0; i < s->n_peers; i++) {
        (void)cg_buf_printf(out, i > 0 ? ", {" : "{");
        json_peer(s, s->peers[i], now, out);
        (void)cg_buf_printf(out, "}");
    }
    (void)cg_buf_printf(out, "]}\n");
    return ready ? 200 : 503;
}

int cp_server_ready(const struct cp_server *s, time_t now, struct cg_buf *why)
{
    for (size_t i = 0; i < s->n_peers; i++)
        if (peer_ready(s, s->peers[i], now))
            return 1;
    for (size_t i = 0; why != NULL && i < s->n_peers; i++) {
        const struct cp_peer *p = s->peers[i];
        const struct cg_verdict *f = &p->last_failure;
        if (p->state == CP_PEER_NEVER)
            (void)cg_buf_printf(why, "not ready: server %s: not appraised yet\n", p->addr.text);
        else if (p->state == CP_PEER_VERIFIED)
            (void)cg_buf_printf(why, "not ready: server %s: no key verified within max_age_s\n",
                                p->addr.text);
        else
            (void)cg_buf_printf(why,
                                "not ready: server %s %s%s: check=%s expected=\"%s\" "
                                "actual=\"%s\"\n",
                                p->addr.text, cp__peer_state_name(p->state),
                                p->failed ? ", the last appraisal failed" : "", f->check,
                                f->expected, f->actual);
    }
    return 0;
}
