#include "ccgate/signals.h"

#include <signal.h>

#include "ccgate/log.h"

static void on_deadline(uv_timer_t *t)
{
    struct cg_signals *sg = t->data;
    cg_log_warn("shutdown.deadline", "drain_ms=%llu: closing what is left",
                (unsigned long long)sg->drain_ms);
    sg->on_deadline(sg);
}

void cg_signals_drain(struct cg_signals *sg, int signum)
{
    if (sg->draining)
        return;
    sg->draining = 1;
    cg_log_info("shutdown", "signal=%d drain_ms=%llu", signum, (unsigned long long)sg->drain_ms);
    if (sg->started) {
        (void)uv_timer_start(&sg->deadline, on_deadline, sg->drain_ms, 0);
        uv_unref((uv_handle_t *)&sg->deadline);
    }
    sg->on_drain(sg, signum);
}

static void on_term(uv_signal_t *h, int signum)
{
    cg_signals_drain(h->data, signum);
}

static void on_hup(uv_signal_t *h, int signum)
{
    struct cg_signals *sg = h->data;
    (void)signum;
    sg->on_reload(sg);
}

int cg_signals_start(struct cg_signals *sg, uv_loop_t *loop)
{
    int rc = uv_signal_init(loop, &sg->term);
    if (rc < 0)
        return rc;
    /* After the first init nothing below fails on Linux (no resources are taken). */
    (void)uv_signal_init(loop, &sg->intr);
    (void)uv_signal_init(loop, &sg->hup);
    (void)uv_timer_init(loop, &sg->deadline);
    sg->term.data = sg->intr.data = sg->hup.data = sg->deadline.data = sg;
    (void)uv_signal_start(&sg->term, on_term, SIGTERM);
    (void)uv_signal_start(&sg->intr, on_term, SIGINT);
    if (sg->on_reload != NULL)
        (void)uv_signal_start(&sg->hup, on_hup, SIGHUP);
    sg->started = 1;
    return 0;
}

void cg_signals_close(struct cg_signals *sg)
{
    if (!sg->started)
        return;
    sg->started = 0;
    uv_close((uv_handle_t *)&sg->term, NULL);
    uv_close((uv_handle_t *)&sg->intr, NULL);
    uv_close((uv_handle_t *)&sg->hup, NULL);
    uv_close((uv_handle_t *)&sg->deadline, NULL);
}
