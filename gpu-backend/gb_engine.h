#ifndef GB_ENGINE_H
#define GB_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "gb_tok.h"

struct gb_model;
struct gb_backend;

/*
 * The inference engine: one thread that runs continuous batching over the backend. Each
 * step decodes one token for every running sequence and spends what is left of the step's
 * token budget on prompt chunks (chunked prefill), so new requests join without stalling
 * the others. It never touches the event loop: it appends output to each request and calls
 * notify(), which the server turns into a uv_async_send.
 */

#define GB_MAX_STOP 4

struct gb_gen_params {
    int max_tokens;
    float temperature, top_p;
    int top_k;
    uint64_t seed;
    int has_seed;
    int ignore_eos; /* generate through end-of-sequence tokens (vLLM / llama.cpp extension) */
    char *stop[GB_MAX_STOP]; /* owned by the request */
    size_t n_stop;
};

struct gb_req;

/* A request for prompt (moved in: the request owns its ids afterwards). Caller unrefs. */
struct gb_req *gb_req_new(struct gb_ids *prompt, const struct gb_gen_params *p);

/* Output handed to the consumer by gb_engine_take. */
struct gb_out {
    char *text; /* new UTF-8 text since the last take (caller frees), may be NULL */
    size_t len;
    int done;
    const char *finish_reason; /* "stop", "length" or "error" once done */
    int n_prompt, n_completion;
};

struct gb_engine_opts {
    int n_slots;     /* concurrent sequences */
    int n_ctx;       /* positions per sequence */
    int step_tokens; /* token budget of one step (backend max_tokens) */
    int max_queue;   /* waiting requests beyond the slots */
    uint64_t seed;   /* for requests without their own seed */
};

struct gb_engine;

/* Starts the engine thread. Borrows m and b, which must outlive the engine. */
int gb_engine_new(const struct gb_model *m, struct gb_backend *b, const struct gb_engine_opts *o,
                  void (*notify)(void *arg), void *notify_arg, struct gb_engine **out);

/* Stops the thread (finishing every request with "error") and frees the engine. */
void gb_engine_free(struct gb_engine *e);

/* Queues r (the engine takes its own reference). CG_ELIMIT when the queue is full. */
int gb_engine_submit(struct gb_engine *e, struct gb_req *r);

/* The consumer is gone: the engine frees r's sequence at its next step. */
void gb_engine_cancel(struct gb_engine *e, struct gb_req *r);

/* Moves r's pending output into *o. Returns 0 or -ENOMEM. */
int gb_engine_take(struct gb_engine *e, struct gb_req *r, struct gb_out *o);

/* Drops a reference; the last one frees r. */
void gb_req_unref(struct gb_req *r);

/* Counters for /health and tests. */
struct gb_engine_stats {
    int running, waiting;
    uint64_t steps, tokens;
};
void gb_engine_stats(struct gb_engine *e, struct gb_engine_stats *s);

#endif
