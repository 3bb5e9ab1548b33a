#ifndef CCGATE_ADMIN_H
#define CCGATE_ADMIN_H

#include <stdint.h>
#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/buf.h"

/*
 * The admin listener (loopback): GET /healthz, /readyz and /metrics (Prometheus text; the
 * listener adds ccgate_build_info{program,version} after the handler's metrics, each of
 * which needs HELP and TYPE lines: a test runs promtool on them).
 * Each handler writes the body into out and returns the HTTP status. A NULL healthz answers
 * 200 "ok": the process is alive and its loop turns.
 */
struct cg_admin_handlers {
    void *arg;
    int (*healthz)(void *arg, struct cg_buf *out);
    int (*readyz)(void *arg, struct cg_buf *out);
    int (*metrics)(void *arg, struct cg_buf *out);
};

struct cg_admin;

/* Listens on a; handlers are borrowed. Returns 0 or a libuv code. Caller closes it. */
int cg_admin_start(uv_loop_t *loop, const struct cg_addr *a, const struct cg_admin_handlers *h,
                   struct cg_admin **out);

/* Closes the listener and its connections; frees itself once the handles are closed. */
void cg_admin_close(struct cg_admin *ad);

/* A latency histogram for /metrics: counts[i] holds the observations <= cg_hist_bounds[i]
 * seconds (not cumulative; the last bucket is +Inf). */
#define CG_HIST_BUCKETS 16
extern const double cg_hist_bounds[CG_HIST_BUCKETS];

struct cg_hist {
    uint64_t counts[CG_HIST_BUCKETS];
    uint64_t count;
    double sum;
};

/* Adds one observation of seconds. */
void cg_hist_observe(struct cg_hist *h, double seconds);

/* Appends h as a Prometheus histogram named name (HELP, TYPE, cumulative buckets, sum,
 * count) to out. */
void cg_hist_write(struct cg_buf *out, const char *name, const char *help, const struct cg_hist *h);

#endif
