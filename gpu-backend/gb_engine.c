#include "gb_engine.h"

#include "ccgate/err.h"
#include "ccgate/log.h"
#include "gb_backend.h"
#include "gb_model.h"
#include "gb_sample.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct gb_req {
    atomic_int refs;
    struct gb_ids prompt;
    struct gb_gen_params p;
    struct gb_req *next; /* queue or running list */
    /* engine thread only */
    int slot, n_past, n_gen;
    int32_t last;
    struct gb_rng rng;
    char *text;
    size_t text_len, text_cap, emitted;
    /* under the engine lock */
    char *out;
    size_t out_len, out_cap;
    int done, cancelled, n_completion;
    const char *finish_reason;
};

struct gb_engine {
    const struct gb_model *m;
    struct gb_backend *b;
    struct gb_engine_opts o;
    void (*notify)(void *);
    void *notify_arg;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int quit, started;
    struct gb_req *queue, **queue_tail;
    int n_queue;
    struct gb_req **slots; /* running requests by slot */
    uint64_t seq_counter, steps, tokens;
    /* step buffers (engine thread) */
    int32_t *tok, *pos, *seq;
    uint8_t *want;
    struct gb_req **want_req;
    float *logits;
    struct gb_cand *cand;
    const char **reasons;
    int *ended;
};

struct gb_req *gb_req_new(struct gb_ids *prompt, const struct gb_gen_params *p)
{
    struct gb_req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    atomic_init(&r->refs, 1);
    r->prompt = *prompt;
    memset(prompt, 0, sizeof(*prompt));
    r->p = *p;
    r->slot = -1;
    return r;
}

void gb_req_unref(struct gb_req *r)
{
    if (r == NULL || atomic_fetch_sub(&r->refs, 1) != 1)
        return;
    gb_ids_free(&r->prompt);
    for (size_t i = 0; i < r->p.n_stop; i++)
        free(r->p.stop[i]);
    free(r->text);
    free(r->out);
    free(r);
}

static int grow(char **buf, size_t *cap, size_t need)
{
    if (*cap >= need)
        return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *n = realloc(*buf, c);
    if (n == NULL)
        return -ENOMEM;
    *buf = n;
    *cap = c;
    return 0;
}

/* Under the lock: hands text[from..to) to the consumer as valid UTF-8. */
static void emit(struct gb_req *r, size_t to)
{
    size_t n = to - r->emitted;
    if (n == 0 || grow(&r->out, &r->out_cap, r->out_len + 3 * n) != 0)
        return;
    r->out_len += gb_utf8_sanitize(r->text + r->emitted, n, r->out + r->out_len);
    r->emitted = to;
    r->n_completion = r->n_gen;
}

/* Under the lock: ends r, flushing its remaining text, and frees its slot. */
static void finish(struct gb_engine *e, struct gb_req *r, const char *reason)
{
    if (r->done)
        return;
    emit(r, r->text_len);
    r->n_completion = r->n_gen;
    r->done = 1;
    r->finish_reason = reason;
    if (r->slot >= 0) {
        e->slots[r->slot] = NULL;
        r->slot = -1;
        gb_req_unref(r);
    }
}

/* Engine thread: appends the sampled token, checks stop strings; 1 when r ends. */
static int on_token(struct gb_engine *e, struct gb_req *r, int32_t id, const char **reason)
{
    const struct gb_tok *tok = e->m->tok;
    char piece[256];
    r->n_gen++;
    r->last = id;
    if (!r->p.ignore_eos && gb_tok_is_eog(tok, id)) {
        r->n_gen--; /* the end marker is not part of the completion */
        *reason = "stop";
        return 1;
    }
    size_t n = gb_tok_piece(tok, id, piece, sizeof(piece));
    if (n > sizeof(piece))
        n = sizeof(piece);
    size_t old = r->text_len;
    if (grow(&r->text, &r->text_cap, r->text_len + n + 1) != 0) {
        *reason = "error";
        return 1;
    }
    memcpy(r->text + r->text_len, piece, n);
    r->text_len += n;
    size_t hold = 0;
    for (size_t i = 0; i < r->p.n_stop; i++) {
        const char *s = r->p.stop[i];
        size_t sl = strlen(s);
        if (sl == 0)
            continue;
        size_t from = old >= sl ? old - sl + 1 : 0;
        if (from < r->emitted)
            from = r->emitted;
        char *hit =
            r->text_len >= from + sl ? memmem(r->text + from, r->text_len - from, s, sl) : NULL;
        if (hit != NULL) {
            r->text_len = (size_t)(hit - r->text);
            *reason = "stop";
            return 1;
        }
        /* hold back a tail that may be the start of this stop string */
        for (size_t k = sl - 1; k > hold && k > 0; k--)
            if (k <= r->text_len - r->emitted && memcmp(r->text + r->text_len - k, s, k) == 0) {
                hold = k;
                break;
            }
    }
    if (r->n_gen >= r->p.max_tokens || r->n_past >= e->o.n_ctx) {
        *reason = "length";
        return 1;
    }
    size_t safe = gb_utf8_complete(r->text, r->text_len - hold);
    pthread_mutex_lock(&e->mu);
    if (safe > r->emitted)
        emit(r, safe);
    pthread_mutex_unlock(&e->mu);
    return 0;
}

/* Under the lock: fills free slots from the queue; returns how many requests it ended. */
static int admit(struct gb_engine *e)
{
    int ended = 0;
    for (int s = 0; s < e->o.n_slots && e->queue != NULL; s++) {
        if (e->slots[s] != NULL)
            continue;
        struct gb_req *r = e->queue;
        e->queue = r->next;
        if (e->queue == NULL)
            e->queue_tail = &e->queue;
        e->n_queue--;
        r->next = NULL;
        if (r->cancelled) {
            r->done = 1;
            r->finish_reason = "error";
            gb_req_unref(r);
            ended++;
            s--;
            continue;
        }
        r->slot = s;
        e->slots[s] = r;
        gb_rng_seed(&r->rng, r->p.has_seed ? r->p.seed : e->o.seed + e->seq_counter);
        e->seq_counter++;
    }
    return ended;
}

static void *engine_main(void *arg)
{
    struct gb_engine *e = arg;
    uint32_t nv = e->m->hp.n_vocab;
    pthread_mutex_lock(&e->mu);
    while (!e->quit) {
        int active = 0, n_ended = admit(e);
        for (int s = 0; s < e->o.n_slots; s++) {
            struct gb_req *r = e->slots[s];
            if (r != NULL && r->cancelled) {
                finish(e, r, "error");
                n_ended++;
            } else if (r != NULL) {
                active++;
            }
        }
        if (n_ended > 0) {
            /* cancelled requests: tell the consumer, then look at the slots again */
            pthread_mutex_unlock(&e->mu);
            e->notify(e->notify_arg);
            pthread_mutex_lock(&e->mu);
            continue;
        }
        if (active == 0) {
            pthread_cond_wait(&e->cv, &e->mu);
            continue;
        }
        pthread_mutex_unlock(&e->mu);

        /* decode tokens first, then prompt chunks with what is left of the budget */
        int n = 0, nw = 0, budget = e->o.step_tokens;
        for (int s = 0; s < e->o.n_slots && n < budget; s++) {
            struct gb_req *r = e->slots[s];
            if (r == NULL || r->n_past < (int)r->prompt.n)
                continue;
            e->tok[n] = r->last, e->pos[n] = r->n_past, e->seq[n] = s, e->want[n] = 1;
            e->want_req[nw++] = r;
            r->n_past++;
            n++;
        }
        for (int s = 0; s < e->o.n_slots && n < budget; s++) {
            struct gb_req *r = e->slots[s];
            if (r == NULL || r->n_past >= (int)r->prompt.n)
                continue;
            while (n < budget && r->n_past < (int)r->prompt.n) {
                e->tok[n] = r->prompt.v[r->n_past], e->pos[n] = r->n_past, e->seq[n] = s;
                e->want[n] = ++r->n_past == (int)r->prompt.n;
                if (e->want[n])
                    e->want_req[nw++] = r;
                n++;
            }
        }
        struct gb_batch bt = {n, e->tok, e->pos, e->seq, e->want};
        int rc = e->b->forward(e->b, &bt, e->logits);
        const char **reasons = e->reasons;
        int *ended = e->ended;
        for (int i = 0; i < nw; i++) {
            struct gb_req *r = e->want_req[i];
            reasons[i] = "error";
            ended[i] = rc != 0;
            if (rc == 0) {
                struct gb_sample_params sp = {r->p.temperature, r->p.top_p, r->p.top_k};
                int32_t id = gb_sample(e->logits + (size_t)i * nv, nv, &sp, &r->rng, e->cand);
                ended[i] = on_token(e, r, id, &reasons[i]);
            }
        }
        if (rc != 0)
            cg_logf(CG_LOG_ERROR, "engine.forward", CG_LF_STR("err", cg_strerror(rc)),
                    CG_LF_INT("tokens", n));
        pthread_mutex_lock(&e->mu);
        e->steps++;
        e->tokens += (uint64_t)n;
        for (int i = 0; i < nw; i++)
            if (ended[i])
                finish(e, e->want_req[i], reasons[i]);
        if (rc != 0)
            for (int s = 0; s < e->o.n_slots; s++)
                if (e->slots[s] != NULL)
                    finish(e, e->slots[s], "error");
        pthread_mutex_unlock(&e->mu);
        e->notify(e->notify_arg);
        pthread_mutex_lock(&e->mu);
    }
    for (int s = 0; s < e->o.n_slots; s++)
        if (e->slots[s] != NULL)
            finish(e, e->slots[s], "error");
    while (e->queue != NULL) {
        struct gb_req *r = e->queue;
        e->queue = r->next;
        r->done = 1;
        r->finish_reason = "error";
        gb_req_unref(r);
    }
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

void gb_engine_free(struct gb_engine *e)
{
    if (e == NULL)
        return;
    if (e->started) {
        pthread_mutex_lock(&e->mu);
        e->quit = 1;
        pthread_cond_signal(&e->cv);
        pthread_mutex_unlock(&e->mu);
        pthread_join(e->th, NULL);
    }
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e->slots);
    free(e->tok);
    free(e->pos);
    free(e->seq);
    free(e->want);
    free(e->want_req);
    free(e->logits);
    free(e->cand);
    free(e->reasons);
    free(e->ended);
    free(e);
}

int gb_engine_new(const struct gb_model *m, struct gb_backend *b, const struct gb_engine_opts *o,
                  void (*notify)(void *arg), void *notify_arg, struct gb_engine **out)
{
    struct gb_engine *e = calloc(1, sizeof(*e));
    size_t T = (size_t)o->step_tokens, S = (size_t)o->n_slots;
    *out = NULL;
    if (e == NULL)
        return -ENOMEM;
    e->m = m;
    e->b = b;
    e->o = *o;
    e->notify = notify;
    e->notify_arg = notify_arg;
    e->queue_tail = &e->queue;
    pthread_mutex_init(&e->mu, NULL);
    pthread_cond_init(&e->cv, NULL);
    e->slots = calloc(S, sizeof(*e->slots));
    e->tok = malloc(T * sizeof(int32_t));
    e->pos = malloc(T * sizeof(int32_t));
    e->seq = malloc(T * sizeof(int32_t));
    e->want = malloc(T);
    e->want_req = malloc(T * sizeof(*e->want_req));
    e->logits = malloc(S * m->hp.n_vocab * sizeof(float));
    e->cand = malloc(m->hp.n_vocab * sizeof(*e->cand));
    e->reasons = malloc(T * sizeof(*e->reasons));
    e->ended = malloc(T * sizeof(*e->ended));
    if (!e->reasons || !e->ended || !e->slots || !e->tok || !e->pos || !e->seq || !e->want ||
        !e->want_req || !e->logits || !e->cand || o->step_tokens < o->n_slots ||
        o->step_tokens > b->max_tokens || o->n_slots > b->n_slots || o->n_ctx > b->n_ctx) {
        gb_engine_free(e);
        return o->step_tokens < o->n_slots || o->n_slots > b->n_slots ? CG_ECONFIG : -ENOMEM;
    }
    if (pthread_create(&e->th, NULL, engine_main, e) != 0) {
        gb_engine_free(e);
        return -EAGAIN;
    }
    e->started = 1;
    *out = e;
    return 0;
}

int gb_engine_submit(struct gb_engine *e, struct gb_req *r)
{
    int rc = 0;
    pthread_mutex_lock(&e->mu);
    if (e->n_queue >= e->o.max_queue || r->prompt.n == 0) {
        rc = CG_ELIMIT;
    } else {
        atomic_fetch_add(&r->refs, 1);
        r->next = NULL;
        *e->queue_tail = r;
        e->queue_tail = &r->next;
        e->n_queue++;
        pthread_cond_signal(&e->cv);
    }
    pthread_mutex_unlock(&e->mu);
    return rc;
}

void gb_engine_cancel(struct gb_engine *e, struct gb_req *r)
{
    pthread_mutex_lock(&e->mu);
    r->cancelled = 1;
    pthread_cond_signal(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

int gb_engine_take(struct gb_engine *e, struct gb_req *r, struct gb_out *o)
{
    memset(o, 0, sizeof(*o));
    pthread_mutex_lock(&e->mu);
    if (r->out_len > 0) {
        o->text = r->out;
        o->len = r->out_len;
        r->out = NULL;
        r->out_len = r->out_cap = 0;
    }
    o->done = r->done;
    o->finish_reason = r->finish_reason;
    o->n_prompt = (int)r->prompt.n;
    o->n_completion = r->n_completion;
    pthread_mutex_unlock(&e->mu);
    return 0;
}

void gb_engine_stats(struct gb_engine *e, struct gb_engine_stats *s)
{
    pthread_mutex_lock(&e->mu);
    s->running = 0;
    for (int i = 0; i < e->o.n_slots; i++)
        s->running += e->slots[i] != NULL;
    s->waiting = e->n_queue;
    s->steps = e->steps;
    s->tokens = e->tokens;
    pthread_mutex_unlock(&e->mu);
}
