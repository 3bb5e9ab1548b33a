#include "ccgate/conn.h"

#include <malloc.h>
#include <string.h>

#include "ccgate/err.h"
#include "ccgate/log.h"

static void unlink_conn(struct cg_conn **head, struct cg_conn *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void push_conn(struct cg_conn **head, struct cg_conn *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head != NULL)
        (*head)->prev = c;
    *head = c;
}

/* After a burst: once this many connections were freed, the heap's free pages go back to
 * the system a second later (glibc keeps them otherwise; malloc_trim walks the heap, so it
 * runs at most once a second, and only after many frees). */
#define TRIM_AFTER_FREES 64
#define TRIM_DELAY_MS 1000

static void on_trim(uv_timer_t *t)
{
    struct cg_conns *set = t->data;
    set->freed_since_trim = 0;
    (void)malloc_trim(0);
}

static void set_handle_closed(uv_handle_t *h)
{
    struct cg_conns *set = h->data;
    if (--set->handles == 0 && set->ops->on_stopped != NULL)
        set->ops->on_stopped(set);
}

/* Draining and nothing left: close the set's own handles; on_stopped follows from the loop. */
static void maybe_stop(struct cg_conns *set)
{
    if (!set->draining || set->stopped || set->unfreed > 0 || set->live != NULL ||
        set->closeq != NULL)
        return;
    set->stopped = 1;
    uv_close((uv_handle_t *)&set->reaper, set_handle_closed);
    uv_close((uv_handle_t *)&set->trim, set_handle_closed);
}

void cg_conns_count_free(struct cg_conns *set)
{
    if (++set->freed_since_trim >= TRIM_AFTER_FREES && !set->stopped &&
        !uv_is_active((uv_handle_t *)&set->trim))
        (void)uv_timer_start(&set->trim, on_trim, TRIM_DELAY_MS, 0);
}

void cg_conn_release(struct cg_conn *c)
{
    if (--c->refs > 0)
        return;
    c->state = CG_CONN_CLOSED;
    struct cg_conns *set = c->set;
    set->unfreed--;
    set->ops->on_free(c);
    cg_conns_count_free(set);
    maybe_stop(set);
}

void cg_conn_hold(struct cg_conn *c)
{
    c->refs++;
}

static void timer_closed(uv_handle_t *h)
{
    cg_conn_release(h->data);
}

static void leg_closed(struct cg_stream *s, void *arg)
{
    (void)s;
    cg_conn_release(arg);
}

static void log_close(const struct cg_conn *c)
{
    char legs[160] = "";
    size_t off = 0;
    static const char *const names[CG_CONN_LEGS] = {"down", "up"};
    for (int i = 0; i < CG_CONN_LEGS; i++) {
        const struct cg_stream *s = c->legs[i];
        if (s == NULL || off >= sizeof(legs))
            continue;
        int n =
            snprintf(legs + off, sizeof(legs) - off, " %s_in=%llu %s_out=%llu", names[i],
                     (unsigned long long)s->bytes_in, names[i], (unsigned long long)s->bytes_out);
        if (n > 0)
            off += (size_t)n;
    }
    const struct cg_conns *set = c->set;
    cg_log(CG_LOG_DEBUG, "conn.close", "set=%s id=%llu reason=%s err=\"%s\"%s",
           set->name ? set->name : "-", (unsigned long long)c->id, c->reason,
           c->err < 0 ? cg_strerror(c->err) : "none", legs);
}

/* The deferred half of cg_conn_close(), from a loop turn of its own. */
static void on_reap(uv_idle_t *h)
{
    struct cg_conns *set = h->data;
    (void)uv_idle_stop(h);
    /* on_close may close more connections: they join the queue and are reaped on a later turn,
     * never inside this one's on_close. */
    struct cg_conn *q = set->closeq;
    set->closeq = NULL;
    while (q != NULL) {
        struct cg_conn *c = q;
        q = c->next;
        c->prev = c->next = NULL;
        log_close(c);
        if (set->ops->on_close != NULL)
            set->ops->on_close(c);
        uv_close((uv_handle_t *)&c->timer, timer_closed);
        for (int i = 0; i < CG_CONN_LEGS; i++)
            if (c->legs[i] != NULL)
                cg_stream_close(c->legs[i], leg_closed, c);
        cg_conn_release(c); /* the queue's reference */
    }
    maybe_stop(set);
}

static void on_timer(uv_timer_t *t)
{
    struct cg_conn *c = t->data;
    if (c->state != CG_CONN_LIVE)
        return;
    if (c->set->ops->on_timeout != NULL)
        c->set->ops->on_timeout(c);
    else
        cg_conn_close(c, UV_ETIMEDOUT, "timeout");
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct cg_conns *set = listener->data;
    if (status < 0) {
        cg_log_warn("accept", "set=%s err=\"%s\"", set->name ? set->name : "-",
                    cg_strerror(status));
        return;
    }
    if (set->draining)
        return;
    set->ops->on_accept(set, listener);
}

int cg_conns_init(struct cg_conns *set, uv_loop_t *loop, const struct cg_conn_ops *ops, void *data)
{
    memset(&set->listener, 0, sizeof(set->listener));
    set->loop = loop;
    set->ops = ops;
    set->data = data;
    set->live = set->closeq = NULL;
    set->unfreed = 0;
    memset(&set->stats, 0, sizeof(set->stats));
    set->listening = set->draining = set->stopped = 0;
    int rc = uv_idle_init(loop, &set->reaper);
    if (rc < 0)
        return rc;
    (void)uv_timer_init(loop, &set->trim); /* cannot fail once the loop runs */
    uv_unref((uv_handle_t *)&set->trim);
    set->reaper.data = set->trim.data = set;
    set->freed_since_trim = 0;
    set->handles = 2;
    return 0;
}

int cg_conns_listen(struct cg_conns *set, const struct cg_addr *a, int backlog)
{
    int rc;
    if (a->is_unix) {
        rc = uv_pipe_init(set->loop, &set->listener.pipe, 0);
        if (rc == 0)
            rc = uv_pipe_bind(&set->listener.pipe, a->path);
    } else {
        rc = uv_tcp_init(set->loop, &set->listener.tcp);
        if (rc == 0)
            rc = uv_tcp_bind(&set->listener.tcp, (const struct sockaddr *)&a->ss, 0);
    }
    if (set->listener.handle.loop == NULL)
        return rc; /* nothing to close */
    set->listener.handle.data = set;
    set->handles++;
    set->listening = 1;
    if (rc == 0)
        rc = uv_listen(&set->listener.stream, backlog, on_connection);
    if (rc < 0) {
        set->listening = 0;
        uv_close(&set->listener.handle, set_handle_closed);
    }
    return rc;
}

int cg_conns_full(const struct cg_conns *set)
{
    return set->max_conns > 0 && set->stats.live > set->max_conns;
}

void cg_conns_drain(struct cg_conns *set)
{
    if (set->draining)
        return;
    set->draining = 1;
    if (set->listening) {
        set->listening = 0;
        uv_close(&set->listener.handle, set_handle_closed);
    }
    for (struct cg_conn *c = set->live, *next; c != NULL; c = next) {
        next = c->next; /* on_drain may close c (which leaves the live list) */
        if (set->ops->on_drain != NULL)
            set->ops->on_drain(c);
        else
            cg_conn_close(c, 0, "shutdown");
    }
    maybe_stop(set);
}

void cg_conns_abort(struct cg_conns *set, const char *reason)
{
    cg_conns_drain(set);
    while (set->live != NULL)
        cg_conn_close(set->live, UV_ECANCELED, reason);
}

void cg_conn_init(struct cg_conn *c, struct cg_conns *set, void *data)
{
    memset(c, 0, sizeof(*c));
    c->set = set;
    c->data = data;
    c->id = ++set->stats.accepted;
    c->reason = "";
    c->refs = 2; /* the timer and the close queue */
    c->state = CG_CONN_LIVE;
    (void)uv_timer_init(set->loop, &c->timer); /* cannot fail on Linux */
    c->timer.data = c;
    push_conn(&set->live, c);
    set->stats.live++;
    set->unfreed++;
}

void cg_conn_add_leg(struct cg_conn *c, int slot, struct cg_stream *s)
{
    c->legs[slot] = s;
    c->refs++;
}

void cg_conn_drop_leg(struct cg_conn *c, int slot)
{
    struct cg_stream *s = c->legs[slot];
    if (s == NULL)
        return;
    c->legs[slot] = NULL;
    cg_stream_close(s, leg_closed, c);
}

int cg_conn_accept(struct cg_conn *c, struct cg_stream *s, uv_stream_t *listener,
                   const struct cg_stream_callbacks *cb)
{
    int rc = cg_stream_init(s, c->set->loop, listener->type == UV_NAMED_PIPE, cb, c->data);
    if (rc < 0)
        return rc; /* libuv's stream init allocates nothing and does not fail on Linux */
    cg_conn_add_leg(c, 0, s);
    return cg_stream_accept(s, listener);
}

void cg_conn_timer(struct cg_conn *c, uint64_t ms)
{
    if (c->state != CG_CONN_LIVE)
        return;
    if (ms == 0)
        (void)uv_timer_stop(&c->timer);
    else
        (void)uv_timer_start(&c->timer, on_timer, ms, 0);
}

void cg_conn_close(struct cg_conn *c, int err, const char *reason)
{
    if (c->state != CG_CONN_LIVE)
        return;
    struct cg_conns *set = c->set;
    c->state = CG_CONN_CLOSING;
    c->err = err;
    c->reason = reason;
    unlink_conn(&set->live, c);
    set->stats.live--;
    push_conn(&set->closeq, c);
    (void)uv_timer_stop(&c->timer);
    for (int i = 0; i < CG_CONN_LEGS; i++)
        if (c->legs[i] != NULL)
            cg_stream_mute(c->legs[i]);
    (void)uv_idle_start(&set->reaper, on_reap);
}
