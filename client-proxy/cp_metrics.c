#include <stddef.h>
#include <stdio.h>

#include "cp_int.h"

/*
 * The client's /metrics: each family once, with its HELP and TYPE, and one sample per forward
 * labelled forward="NAME" (Prometheus rejects a family that appears twice, so the forwards'
 * samples are grouped by family, not by forward).
 */

/* Where a plain family's value comes from. */
enum src {
    S_STAT,     /* a uint64_t counter in struct cp_stats, at off */
    S_ACCEPTED, /* the connection core's counts */
    S_LIVE,
    S_POOL,       /* idle attested connections now */
    S_HS_SECONDS, /* the handshake time's sum */
    S_READY,
};

static const struct family {
    const char *name, *type, *help;
    enum src src;
    size_t off;
} plain_before[] =
    {
        {"ccgate_client_connections_total", "counter", "App connections accepted.", S_ACCEPTED, 0},
        {"ccgate_client_connections_active", "gauge", "App connections open now.", S_LIVE, 0},
        {"ccgate_client_requests_total", "counter", "App requests forwarded to the server.", S_STAT,
         offsetof(struct cp_stats, requests_total)},
        {"ccgate_client_local_requests_total", "counter",
         "App requests answered by the client itself.", S_STAT,
         offsetof(struct cp_stats, local_requests)},
},
  plain_after[] =
      {
          {"ccgate_client_handshakes_total", "counter", "Attested handshakes completed.", S_STAT,
           offsetof(struct cp_stats, handshakes)},
          {"ccgate_client_handshakes_with_nonce_total", "counter",
           "Handshakes that asked for fresh evidence.", S_STAT,
           offsetof(struct cp_stats, handshakes_with_nonce)},
          {"ccgate_client_handshake_seconds_total", "counter", "Time spent in attested handshakes.",
           S_HS_SECONDS, 0},
          {"ccgate_client_key_changes_total", "counter", "Times the server's verified key changed.",
           S_STAT, offsetof(struct cp_stats, key_changes)},
          {"ccgate_client_server_unreachable_total", "counter",
           "Connections to the server that failed.", S_STAT,
           offsetof(struct cp_stats, server_unreachable)},
          {"ccgate_client_connections_refused_total", "counter",
           "App connections over max-connections (503).", S_STAT,
           offsetof(struct cp_stats, conns_refused)},
          {"ccgate_client_response_timeouts_total", "counter",
           "Responses that did not begin in time (504).", S_STAT,
           offsetof(struct cp_stats, response_timeouts)},
          {"ccgate_client_pool_connections", "gauge", "Idle attested connections in the pool.",
           S_POOL, 0},
          {"ccgate_client_pool_reused_total", "counter",
           "Requests sent on a pooled attested connection.", S_STAT,
           offsetof(struct cp_stats, pool_reused)},
          {"ccgate_client_pool_dropped_total", "counter", "Pooled connections closed unused.",
           S_STAT, offsetof(struct cp_stats, pool_dropped)},
          {"ccgate_client_retries_total", "counter",
           "Requests sent again after their connection died unanswered.", S_STAT,
           offsetof(struct cp_stats, retries)},
},
  plain_ready[] = {
      {"ccgate_client_ready", "gauge", "1 when the forward is ready (/readyz).", S_READY, 0},
};

/* key="VALUE", the value escaped as the exposition format asks. */
static void label(struct cg_buf *out, const char *key, const char *value)
{
    (void)cg_buf_printf(out, "%s=\"", key);
    for (const char *p = value; *p != '\0'; p++) {
        if (*p == '\\' || *p == '"')
            (void)cg_buf_printf(out, "\\%c", *p);
        else if (*p == '\n')
            (void)cg_buf_printf(out, "\\n");
        else
            (void)cg_buf_append(out, p, 1);
    }
    (void)cg_buf_printf(out, "\"");
}

/* forward="NAME" */
static void forward_label(struct cg_buf *out, const struct cp_server *s)
{
    label(out, "forward", s->name);
}

static void header(struct cg_buf *out, const char *name, const char *type, const char *help)
{
    (void)cg_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void write_plain(struct cg_buf *out, const struct family *f, size_t n_f,
                        const struct cp_server *const *srv, size_t n, time_t now)
{
    for (size_t i = 0; i < n_f; i++) {
        header(out, f[i].name, f[i].type, f[i].help);
        for (size_t j = 0; j < n; j++) {
            const struct cp_server *s = srv[j];
            (void)cg_buf_printf(out, "%s{", f[i].name);
            forward_label(out, s);
            (void)cg_buf_printf(out, "} ");
            switch (f[i].src) {
            case S_STAT:
                (void)cg_buf_printf(
                    out, "%llu\n",
                    (unsigned long long)*(const uint64_t *)((const char *)&s->stats + f[i].off));
                break;
            case S_ACCEPTED:
                (void)cg_buf_printf(out, "%llu\n", (unsigned long long)s->set.stats.accepted);
                break;
            case S_LIVE:
                (void)cg_buf_printf(out, "%llu\n", (unsigned long long)s->set.stats.live);
                break;
            case S_POOL:
                (void)cg_buf_printf(out, "%zu\n", cp_server_pool_len(s));
                break;
            case S_HS_SECONDS:
                (void)cg_buf_printf(out, "%.6f\n", s->stats.handshake_seconds_sum);
                break;
            case S_READY:
                (void)cg_buf_printf(out, "%d\n", cp_server_ready(s, now, NULL));
                break;
            }
        }
    }
}

static void write_hist(struct cg_buf *out, const char *name, const char *help,
                       const struct cp_server *const *srv, size_t n, size_t off)
{
    header(out, name, "histogram", help);
    for (size_t j = 0; j < n; j++) {
        const struct cg_hist *h = (const struct cg_hist *)((const char *)&srv[j]->stats + off);
        uint64_t cum = 0;
        for (size_t i = 0; i < CG_HIST_BUCKETS; i++) {
            cum += h->counts[i];
            (void)cg_buf_printf(out, "%s_bucket{", name);
            forward_label(out, srv[j]);
            if (i + 1 == CG_HIST_BUCKETS)
                (void)cg_buf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
            else
                (void)cg_buf_printf(out, ",le=\"%g\"} %llu\n", cg_hist_bounds[i],
                                    (unsigned long long)cum);
        }
        (void)cg_buf_printf(out, "%s_sum{", name);
        forward_label(out, srv[j]);
        (void)cg_buf_printf(out, "} %.6f\n%s_count{", h->sum, name);
        forward_label(out, srv[j]);
        (void)cg_buf_printf(out, "} %llu\n", (unsigned long long)h->count);
    }
}

/* forward="NAME",server="HOST:PORT" */
static void server_labels(struct cg_buf *out, const struct cp_server *s, const struct cp_peer *p)
{
    forward_label(out, s);
    (void)cg_buf_printf(out, ",");
    label(out, "server", p->addr.text);
}

static unsigned long long ejections(const struct cp_peer *p)
{
    return p->ejections;
}

static unsigned long long outstanding(const struct cp_peer *p)
{
    return p->outstanding;
}

/* A family with one sample per server of each forward: value(server). */
static void write_per_server(struct cg_buf *out, const char *name, const char *type,
                             const char *help, const struct cp_server *const *srv, size_t n,
                             unsigned long long (*value)(const struct cp_peer *p))
{
    header(out, name, type, help);
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < srv[j]->n_peers; i++) {
            (void)cg_buf_printf(out, "%s{", name);
            server_labels(out, srv[j], srv[j]->peers[i]);
            (void)cg_buf_printf(out, "} %llu\n", value(srv[j]->peers[i]));
        }
}

/* Per server of each forward: the state it is in (a sample per state, 1 for its own), its
 * ejections and its outstanding requests. */
static void write_servers(struct cg_buf *out, const struct cp_server *const *srv, size_t n)
{
    header(out, "ccgate_client_server_state", "gauge",
           "1 for the state each server is in (never, verified, ejected, unreachable).");
    for (size_t j = 0; j < n; j++)
        for (size_t i = 0; i < srv[j]->n_peers; i++)
            for (int st = CP_PEER_NEVER; st <= CP_PEER_UNREACHABLE; st++) {
                (void)cg_buf_printf(out, "ccgate_client_server_state{");
                server_labels(out, srv[j], srv[j]->peers[i]);
                (void)cg_buf_printf(out, ",state=\"%s\"} %d\n", cp__peer_state_name(st),
                                    (int)srv[j]->peers[i]->state == st);
            }
    write_per_server(out, "ccgate_client_server_ejections_total", "counter",
                     "Times each server was taken out of rotation.", srv, n, ejections);
    write_per_server(out, "ccgate_client_server_outstanding", "gauge",
                     "Requests (TCP mode: connections) on each server now.", srv, n, outstanding);
}

void cp_metrics_write(struct cg_buf *out, const struct cp_server *const *srv, size_t n, time_t now)
{
    write_plain(out, plain_before, sizeof(plain_before) / sizeof(plain_before[0]), srv, n, now);
    header(out, "ccgate_client_responses_total", "counter",
           "Responses to the app, by status class.");
    for (size_t j = 0; j < n; j++)
        for (int i = 1; i <= 5; i++) {
            (void)cg_buf_printf(out, "ccgate_client_responses_total{");
            forward_label(out, srv[j]);
            (void)cg_buf_printf(out, ",class=\"%dxx\"} %llu\n", i,
                                (unsigned long long)srv[j]->stats.responses_by_class[i]);
        }
    header(out, "ccgate_client_bytes_total", "counter",
           "Bytes from and to apps, open connections included.");
    for (size_t j = 0; j < n; j++) {
        (void)cg_buf_printf(out, "ccgate_client_bytes_total{");
        forward_label(out, srv[j]);
        (void)cg_buf_printf(out, ",direction=\"from_app\"} %llu\nccgate_client_bytes_total{",
                            (unsigned long long)srv[j]->stats.bytes_from_app);
        forward_label(out, srv[j]);
        (void)cg_buf_printf(out, ",direction=\"to_app\"} %llu\n",
                            (unsigned long long)srv[j]->stats.bytes_to_app);
    }
    write_plain(out, plain_after, sizeof(plain_after) / sizeof(plain_after[0]), srv, n, now);
    header(out, "ccgate_attestation_verifications_total", "counter",
           "Evidence appraisals by result.");
    for (size_t j = 0; j < n; j++) {
        const struct cp_stats *st = &srv[j]->stats;
        (void)cg_buf_printf(out, "ccgate_attestation_verifications_total{");
        forward_label(out, srv[j]);
        (void)cg_buf_printf(out, ",result=\"ok\"} %llu\n", (unsigned long long)st->verify_ok);
        for (size_t i = 0; i < st->n_checks; i++) {
            (void)cg_buf_printf(out, "ccgate_attestation_verifications_total{");
            forward_label(out, srv[j]);
            (void)cg_buf_printf(out, ",result=\"failed\",check=\"%s\"} %llu\n",
                                st->failed_checks[i].check,
                                (unsigned long long)st->failed_checks[i].count);
        }
    }
    write_plain(out, plain_ready, 1, srv, n, now);
    write_servers(out, srv, n);
    write_hist(out, "ccgate_client_upstream_response_seconds",
               "From the request sent to the response head from the server.", srv, n,
               offsetof(struct cp_stats, response_latency));
    write_hist(out, "ccgate_attestation_verification_seconds",
               "Connect to verified handshake, for handshakes with fresh evidence.", srv, n,
               offsetof(struct cp_stats, verification_latency));
}
