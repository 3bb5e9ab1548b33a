#ifndef CCGATE_SIGNALS_H
#define CCGATE_SIGNALS_H

#include <stdint.h>
#include <uv.h>

/*
 * The signal wiring every daemon shares. The first SIGTERM or SIGINT starts a drain
 * (on_drain: stop accepting, let messages in flight finish) and a deadline timer
 * (on_deadline after drain_ms: close what is left); later ones are ignored. SIGHUP calls
 * on_reload (when set; otherwise SIGHUP keeps its default action). The deadline timer does
 * not keep the loop alive. The caller fills the fields, then cg_signals_start(); it closes
 * the handles with cg_signals_close() once its own handles are gone, so that the loop ends.
 */
struct cg_signals {
    void *data; /* the owner's */
    void (*on_drain)(struct cg_signals *sg, int signum);
    void (*on_deadline)(struct cg_signals *sg);
    void (*on_reload)(struct cg_signals *sg); /* may be NULL */
    uint64_t drain_ms;
    int draining; /* set by the first SIGTERM/SIGINT (or cg_signals_drain) */
    uv_signal_t term, intr, hup;
    uv_timer_t deadline;
    int started;
};

/* Installs the handlers on loop. Returns 0 or a libuv code (nothing left open then). */
int cg_signals_start(struct cg_signals *sg, uv_loop_t *loop);

/* What the first SIGTERM does, for callers that decide to stop on their own. Idempotent. */
void cg_signals_drain(struct cg_signals *sg, int signum);

/* Closes the handles (idempotent); the loop may then end. */
void cg_signals_close(struct cg_signals *sg);

#endif
