/* The engine: continuous batching gives the same tokens as one request at a time; stop
 * strings, max_tokens, cancellation and the queue limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ccgate/err.h"
#include "gb_backend.h"
#include "gb_engine.h"
#include "gb_model.h"
#include "gb_tok.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fx {
    struct gb_model *m;
    struct gb_backend *b;
    struct gb_engine *e;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int notified;
};

static void notify(void *arg)
{
    struct fx *f = arg;
    pthread_mutex_lock(&f->mu);
    f->notified++;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char err[256];
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    assert_int_equal(gb_model_open("builtin:tiny", &f->m, err, sizeof(err)), 0);
    assert_int_equal(gb_cpu_new(f->m, 4, 256, 64, 2, &f->b), 0);
    struct gb_engine_opts o = {
        .n_slots = 4, .n_ctx = 256, .step_tokens = 64, .max_queue = 8, .seed = 1};
    assert_int_equal(gb_engine_new(f->m, f->b, &o, notify, f, &f->e), 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    gb_engine_free(f->e);
    gb_backend_free(f->b);
    gb_model_free(f->m);
    pthread_mutex_destroy(&f->mu);
    pthread_cond_destroy(&f->cv);
    free(f);
    return 0;
}

struct result {
    char text[4096];
    size_t len;
    const char *reason;
    int n_prompt, n_completion;
};

static struct gb_req *submit_ex(struct fx *f, const char *prompt, int max_tokens, float temp,
                                uint64_t seed, const char *stop, int ignore_eos)
{
    struct gb_ids ids = {0};
    assert_int_equal(gb_ids_push(&ids, gb_tok_bos(f->m->tok)), 0);
    assert_int_equal(gb_tok_encode(f->m->tok, prompt, strlen(prompt), 0, 1, &ids), 0);
    struct gb_gen_params p = {.max_tokens = max_tokens,
                              .temperature = temp,
                              .top_p = 0.9f,
                              .top_k = 20,
                              .seed = seed,
                              .has_seed = 1,
                              .ignore_eos = ignore_eos};
    if (stop != NULL) {
        p.stop[0] = strdup(stop);
        p.n_stop = 1;
    }
    struct gb_req *r = gb_req_new(&ids, &p);
    assert_non_null(r);
    assert_int_equal(gb_engine_submit(f->e, r), 0);
    return r;
}

static struct gb_req *submit(struct fx *f, const char *prompt, int max_tokens, float temp,
                             uint64_t seed, const char *stop)
{
    return submit_ex(f, prompt, max_tokens, temp, seed, stop, 0);
}

/* Collects output until every request is done. */
static void wait_all(struct fx *f, struct gb_req **r, struct result *res, int n)
{
    int left = n;
    for (int i = 0; i < n; i++)
        res[i].len = 0, res[i].reason = NULL;
    while (left > 0) {
        pthread_mutex_lock(&f->mu);
        int seen = f->notified;
        pthread_mutex_unlock(&f->mu);
        left = 0;
        for (int i = 0; i < n; i++) {
            if (res[i].reason != NULL)
                continue;
            struct gb_out o;
            assert_int_equal(gb_engine_take(f->e, r[i], &o), 0);
            assert_true(res[i].len + o.len < sizeof(res[i].text));
            if (o.len > 0)
                memcpy(res[i].text + res[i].len, o.text, o.len);
            res[i].len += o.len;
            free(o.text);
            if (o.done) {
                res[i].reason = o.finish_reason;
                res[i].n_prompt = o.n_prompt;
                res[i].n_completion = o.n_completion;
            } else {
                left++;
            }
        }
        pthread_mutex_lock(&f->mu);
        while (left > 0 && f->notified == seen)
            pthread_cond_wait(&f->cv, &f->mu);
        pthread_mutex_unlock(&f->mu);
    }
}

static const char *const prompts[] = {"hello world", "the model is", "secure enclave of",
                                      "what time",   "people who",   "one two"};

static void test_batched_equals_alone(void **state)
{
    struct fx *f = *state;
    enum { N = 6 };
    struct gb_req *r[N];
    struct result together[N], alone[1];
    for (int i = 0; i < N; i++)
        r[i] = submit(f, prompts[i], 24 + i, i % 2 ? 0.8f : 0.0f, 100 + (uint64_t)i, NULL);
    wait_all(f, r, together, N);
    for (int i = 0; i < N; i++) {
        gb_req_unref(r[i]);
        /* the model may pick its end-of-sequence token before max_tokens */
        if (strcmp(together[i].reason, "length") == 0)
            assert_int_equal(together[i].n_completion, 24 + i);
        else
            assert_string_equal(together[i].reason, "stop");
        assert_true(together[i].n_completion <= 24 + i);
        assert_true(together[i].len > 0);
    }
    for (int i = 0; i < N; i++) {
        struct gb_req *one =
            submit(f, prompts[i], 24 + i, i % 2 ? 0.8f : 0.0f, 100 + (uint64_t)i, NULL);
        wait_all(f, &one, alone, 1);
        gb_req_unref(one);
        assert_int_equal(alone[0].len, together[i].len);
        assert_memory_equal(alone[0].text, together[i].text, alone[0].len);
        assert_int_equal(alone[0].n_prompt, together[i].n_prompt);
        assert_int_equal(alone[0].n_completion, together[i].n_completion);
        assert_string_equal(alone[0].reason, together[i].reason);
    }
    struct gb_engine_stats st;
    gb_engine_stats(f->e, &st);
    assert_int_equal(st.running, 0);
    assert_true(st.steps > 0);
}

static void test_stop_string(void **state)
{
    struct fx *f = *state;
    struct result full[1], cut[1];
    struct gb_req *r = submit(f, "hello world", 40, 0, 1, NULL);
    wait_all(f, &r, full, 1);
    gb_req_unref(r);
    assert_true(full[0].len > 12);
    /* stop at three ASCII letters from the middle of the greedy output (the random model
     * also emits bytes that are not UTF-8, which the output shows as U+FFFD) */
    char stop[8] = "";
    for (size_t i = full[0].len / 3; i + 3 <= full[0].len && stop[0] == 0; i++) {
        const char *c = full[0].text + i;
        if (c[0] >= 'a' && c[0] <= 'z' && c[1] >= 'a' && c[1] <= 'z' && c[2] >= 'a' &&
            c[2] <= 'z') {
            memcpy(stop, c, 3);
            stop[3] = 0;
        }
    }
    assert_true(stop[0] != 0);
    r = submit(f, "hello world", 40, 0, 1, stop);
    wait_all(f, &r, cut, 1);
    gb_req_unref(r);
    assert_string_equal(cut[0].reason, "stop");
    char *first = memmem(full[0].text, full[0].len, stop, 3);
    assert_non_null(first);
    assert_int_equal(cut[0].len, (size_t)(first - full[0].text));
    assert_memory_equal(cut[0].text, full[0].text, cut[0].len);
}

static void test_cancel(void **state)
{
    struct fx *f = *state;
    struct gb_req *r[8];
    struct result res[1];
    /* 4 running and 4 waiting, all cancelled long before their 200 tokens (through any
     * end-of-sequence token: the random model may sample one within the first steps) */
    for (int i = 0; i < 8; i++)
        r[i] = submit_ex(f, "one two", 200, 0.5f, (uint64_t)i, NULL, 1);
    for (int i = 0; i < 8; i++)
        gb_engine_cancel(f->e, r[i]);
    for (int i = 0; i < 8; i++) {
        wait_all(f, &r[i], res, 1);
        gb_req_unref(r[i]);
        assert_string_equal(res[0].reason, "error");
        assert_true(res[0].n_completion < 200);
    }
    struct gb_engine_stats st;
    gb_engine_stats(f->e, &st);
    assert_int_equal(st.running + st.waiting, 0);
}

static void test_queue_limit(void **state)
{
    struct fx *f = *state;
    struct gb_ids ids = {0};
    struct gb_gen_params p = {.max_tokens = 1};
    struct gb_req *r = gb_req_new(&ids, &p); /* empty prompt is refused */
    assert_int_equal(gb_engine_submit(f->e, r), CG_ELIMIT);
    gb_req_unref(r);
    /* an engine without a waiting queue refuses what it cannot start */
    struct gb_engine *e0;
    struct gb_engine_opts o = {.n_slots = 1, .n_ctx = 64, .step_tokens = 8, .max_queue = 0};
    assert_int_equal(gb_engine_new(f->m, f->b, &o, notify, f, &e0), 0);
    assert_int_equal(gb_ids_push(&ids, 1), 0);
    r = gb_req_new(&ids, &p);
    assert_int_equal(gb_engine_submit(e0, r), CG_ELIMIT);
    gb_req_unref(r);
    gb_engine_free(e0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batched_equals_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_string, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_queue_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
