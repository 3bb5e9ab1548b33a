/* GGUF reader/writer: round trip, malformed and fuzzed files, model loading errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ccgate/err.h"
#include "gb_gguf.h"
#include "gb_model.h"
#include "gb_quant.h"
#include "gb_tiny.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_round_trip(void **state)
{
    (void)state;
    struct gb_gguf_writer *w;
    const char *strs[] = {"a", "", "\xe2\x96\x81x"};
    float fs[3] = {1.5f, -2.0f, 0.25f};
    int32_t is[2] = {-7, 42};
    float data[64];
    for (int i = 0; i < 64; i++)
        data[i] = (float)i * 0.5f - 10.0f;
    uint32_t types[] = {GB_F32, GB_F16, GB_BF16, GB_Q8_0, GB_Q4_0};
    uint8_t q[5][256];
    assert_int_equal(gb_gguf_writer_new(&w), 0);
    assert_int_equal(gb_gguf_w_u32(w, "k.u32", 123456), 0);
    assert_int_equal(gb_gguf_w_i32(w, "k.i32", -5), 0);
    assert_int_equal(gb_gguf_w_f32(w, "k.f32", 0.125f), 0);
    assert_int_equal(gb_gguf_w_bool(w, "k.bool", 1), 0);
    assert_int_equal(gb_gguf_w_str(w, "k.str", "hello"), 0);
    assert_int_equal(gb_gguf_w_arr_str(w, "k.astr", strs, 3), 0);
    assert_int_equal(gb_gguf_w_arr_f32(w, "k.af32", fs, 3), 0);
    assert_int_equal(gb_gguf_w_arr_i32(w, "k.ai32", is, 2), 0);
    for (int t = 0; t < 5; t++) {
        char name[32];
        uint64_t ne[2] = {32, 2};
        snprintf(name, sizeof(name), "t%d", t);
        assert_int_equal(gb_quant_row(types[t], data, q[t], 32), 0);
        assert_int_equal(
            gb_quant_row(types[t], data + 32, q[t] + gb_type_row_bytes(types[t], 32), 32), 0);
        assert_int_equal(gb_gguf_w_tensor(w, name, types[t], 2, ne, q[t]), 0);
    }
    uint8_t *img;
    size_t len;
    assert_int_equal(gb_gguf_writer_finish(w, &img, &len), 0);
    gb_gguf_writer_free(w);

    struct gb_gguf *g;
    char err[256];
    assert_int_equal(gb_gguf_parse(img, len, 1, &g, err, sizeof(err)), 0);
    assert_int_equal(g->version, 3);
    uint64_t u;
    double f;
    assert_int_equal(gb_gguf_get_u64(g, "k.u32", &u), 0);
    assert_int_equal(u, 123456);
    assert_int_not_equal(gb_gguf_get_u64(g, "k.i32", &u), 0); /* negative */
    assert_int_equal(gb_gguf_get_f64(g, "k.f32", &f), 0);
    assert_true(f == 0.125);
    assert_int_equal(gb_gguf_get_u64(g, "k.bool", &u), 0);
    assert_int_equal(u, 1);
    char *s = gb_gguf_get_str(g, "k.str");
    assert_string_equal(s, "hello");
    free(s);
    assert_null(gb_gguf_get_str(g, "k.missing"));
    const struct gb_gguf_kv *a = gb_gguf_find(g, "k.astr");
    assert_non_null(a);
    assert_int_equal(a->arr_n, 3);
    assert_int_equal(a->arr_str[1].len, 0);
    assert_memory_equal(a->arr_str[2].p, "\xe2\x96\x81x", 4);
    a = gb_gguf_find(g, "k.af32");
    assert_true(gb_gguf_arr_num(a, 1) == -2.0);
    a = gb_gguf_find(g, "k.ai32");
    assert_true(gb_gguf_arr_num(a, 0) == -7.0);
    for (int t = 0; t < 5; t++) {
        char name[32];
        snprintf(name, sizeof(name), "t%d", t);
        const struct gb_gguf_tensor *tt = gb_gguf_tensor(g, name);
        assert_non_null(tt);
        assert_int_equal(tt->type, types[t]);
        assert_int_equal(tt->ne[0], 32);
        assert_int_equal(tt->ne[1], 2);
        assert_int_equal((uintptr_t)tt->data % 32, (uintptr_t)g->base % 32);
        assert_memory_equal(tt->data, q[t], gb_type_row_bytes(types[t], 32) * 2);
        float back[64];
        gb_dequant_row(types[t], tt->data, back, 64);
        float tol = types[t] == GB_F32 ? 0 : types[t] == GB_Q4_0 ? 1.5f : 0.1f;
        for (int i = 0; i < 64; i++)
            assert_true(back[i] - data[i] <= tol && data[i] - back[i] <= tol);
    }
    gb_gguf_free(g);
}

static void test_f16_conversion(void **state)
{
    (void)state;
    float vals[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f, 0.333333f};
    uint16_t bits[] = {0x0000, 0x3c00, 0xc100, 0x7bff, 0x0400, 0x0001, 0x3555};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        assert_int_equal(gb_f32_to_f16(vals[i]), bits[i]);
        if (i != 6)
            assert_true(gb_f16_to_f32(bits[i]) == vals[i]);
    }
    assert_int_equal(gb_f32_to_f16(1e6f), 0x7c00);
    assert_int_equal(gb_f32_to_bf16(1.0f), 0x3f80);
    assert_true(gb_bf16_to_f32(0xc040) == -3.0f);
}

static int parse_img(const uint8_t *img, size_t len, char *err, size_t errlen)
{
    struct gb_gguf *g;
    uint8_t *copy = malloc(len ? len : 1); /* exact size so ASan sees any overread */
    assert_non_null(copy);
    memcpy(copy, img, len);
    int rc = gb_gguf_parse(copy, len, 1, &g, err, errlen);
    if (rc == 0) {
        struct gb_model *m;
        rc = gb_model_load(g, &m, err, errlen);
        gb_model_free(m);
    }
    return rc;
}

static void tiny(uint8_t **img, size_t *len)
{
    struct gb_tiny_opts o = {.wtype = GB_Q8_0};
    assert_int_equal(gb_tiny_build(&o, img, len), 0);
}

static void test_tiny_loads(void **state)
{
    (void)state;
    uint8_t *img;
    size_t len;
    char err[256] = "";
    tiny(&img, &len);
    assert_int_equal(parse_img(img, len, err, sizeof(err)), 0);
    free(img);
    struct gb_model *m;
    assert_int_equal(gb_model_open("builtin:tiny", &m, err, sizeof(err)), 0);
    assert_string_equal(m->hp.arch, "llama");
    assert_int_equal(m->hp.n_layer, 2);
    assert_true(gb_model_weight_bytes(m) > 0);
    gb_model_free(m);
    assert_int_equal(gb_model_open("builtin:huge", &m, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "builtin:huge"));
    assert_int_not_equal(gb_model_open("/nonexistent.gguf", &m, err, sizeof(err)), 0);
}

static void test_truncated(void **state)
{
    (void)state;
    uint8_t *img;
    size_t len;
    char err[256];
    tiny(&img, &len);
    /* every prefix through the metadata and tensor table, then a stride over the data */
    for (size_t n = 0; n < len; n += n < 16384 ? 1 : 997) {
        err[0] = 0;
        assert_int_not_equal(parse_img(img, n, err, sizeof(err)), 0);
        assert_true(err[0] != 0);
    }
    assert_int_equal(parse_img(img, 3, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "truncated"));
    free(img);
}

static void test_bad_headers(void **state)
{
    (void)state;
    uint8_t *img;
    size_t len;
    char err[256];
    tiny(&img, &len);
    uint8_t *b = malloc(len);
    memcpy(b, img, len);
    b[0] = 'X';
    assert_int_equal(parse_img(b, len, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "magic"));
    memcpy(b, img, len);
    b[4] = 1; /* version 1 */
    assert_int_equal(parse_img(b, len, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "version 1"));
    memcpy(b, img, len);
    memcpy(b + 4, "\0\0\0\3", 4); /* a big-endian file */
    assert_int_equal(parse_img(b, len, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "big-endian"));
    memcpy(b, img, len);
    memset(b + 16, 0xff, 8); /* metadata count */
    assert_int_equal(parse_img(b, len, err, sizeof(err)), CG_ECONFIG);
    /* a tensor type this project does not compute with (12 = q4_K) */
    memcpy(b, img, len);
    const char *nm = "blk.0.attn_q.weight";
    uint8_t *p = memmem(b, len, nm, strlen(nm));
    assert_non_null(p);
    uint32_t t12 = 12;
    memcpy(p + strlen(nm) + 4 + 16, &t12, 4);
    assert_int_equal(parse_img(b, len, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "blk.0.attn_q.weight has unsupported type 12"));
    /* an architecture outside the Llama family */
    memcpy(b, img, len);
    p = memmem(b, len, "llama", 5);
    assert_non_null(p);
    memcpy(p, "gptnx", 5);
    assert_int_equal(parse_img(b, len, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "unsupported architecture \"gptnx\""));
    free(b);
    free(img);
}

/* Streamed tensors: i-th tensor's bytes are i + 1 everywhere; tensor 2 fails when fail_at. */
struct stream_arg {
    int calls, fail_at;
};

static int fill_bytes(void *arg, uint64_t i, void *dst, size_t nbytes)
{
    struct stream_arg *a = arg;
    a->calls++;
    if ((int)i == a->fail_at)
        return CG_ECONFIG;
    memset(dst, (int)i + 1, nbytes);
    return 0;
}

static void test_stream(void **state)
{
    (void)state;
    char path[] = "/tmp/test_gb_gguf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    struct gb_gguf_writer *w;
    uint64_t ne_a[2] = {64, 3}, ne_b[1] = {5}, ne_c[2] = {32, 2};
    assert_int_equal(gb_gguf_writer_new(&w), 0);
    assert_int_equal(gb_gguf_w_str(w, "general.name", "streamed"), 0);
    assert_int_equal(gb_gguf_w_tensor_info(w, "a", GB_Q8_0, 2, ne_a), 0);
    assert_int_equal(gb_gguf_w_tensor_info(w, "b", GB_F32, 1, ne_b), 0);
    assert_int_equal(gb_gguf_w_tensor_info(w, "c", GB_F16, 2, ne_c), 0);
    /* not mixed with stored tensors; no in-memory image of reserved ones */
    assert_int_equal(gb_gguf_w_tensor(w, "d", GB_F32, 1, ne_b, "12345678901234567890"), CG_ECONFIG);
    uint8_t *img;
    size_t len;
    assert_int_equal(gb_gguf_writer_finish(w, &img, &len), CG_ECONFIG);
    /* a row that is not a whole number of blocks */
    uint64_t bad[2] = {33, 1};
    assert_int_equal(gb_gguf_w_tensor_info(w, "e", GB_Q4_0, 2, bad), CG_ECONFIG);
    struct stream_arg a = {0, -1};
    assert_int_equal(gb_gguf_writer_stream(w, path, fill_bytes, &a), 0);
    assert_int_equal(a.calls, 3);
    struct gb_gguf *g;
    char err[256];
    assert_int_equal(gb_gguf_open(path, &g, err, sizeof(err)), 0);
    assert_int_equal(g->n_tensors, 3);
    const char *names[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        const struct gb_gguf_tensor *t = gb_gguf_tensor(g, names[i]);
        assert_non_null(t);
        assert_non_null(t->data);
        assert_int_equal(t->offset % 32, 0);
        for (uint64_t k = 0; k < t->nbytes; k++)
            assert_int_equal(((const uint8_t *)t->data)[k], i + 1);
    }
    assert_int_equal(gb_gguf_tensor(g, "a")->nbytes, 3 * 2 * 34);
    assert_int_equal(gb_gguf_tensor(g, "b")->nbytes, 20);
    gb_gguf_free(g);
    /* a failing fill stops the write and leaves no file */
    struct stream_arg f = {0, 1};
    assert_int_equal(gb_gguf_writer_stream(w, path, fill_bytes, &f), CG_ECONFIG);
    assert_int_equal(f.calls, 2);
    assert_int_equal(access(path, F_OK), -1);
    gb_gguf_writer_free(w);
}

/* gen-model's shapes: known names only; a small model written and loaded back. */
static void test_gen_model(void **state)
{
    (void)state;
    assert_null(gb_tiny_shape_find("llama-70b"));
    const struct gb_tiny_shape *sh = gb_tiny_shape_find("tinyllama-1.1b");
    assert_non_null(sh);
    assert_int_equal(sh->dim, 2048);
    assert_int_equal(sh->n_vocab, 32000);
    /* a vocabulary smaller than builtin:tiny's own cannot be padded */
    struct gb_tiny_shape few = {"few", 64, 1, 4, 2, 160, 100, 256};
    char path[] = "/tmp/test_gb_gguf_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(gb_tiny_write(&few, GB_Q8_0, 1, path), CG_ECONFIG);
    /* an unsupported shape: width not a multiple of 32 */
    struct gb_tiny_shape odd = {"odd", 48, 1, 4, 2, 160, 1000, 256};
    assert_int_equal(gb_tiny_write(&odd, GB_F16, 1, path), CG_ECONFIG);
    struct gb_tiny_shape mini = {"mini", 64, 2, 4, 2, 160, 1000, 256};
    assert_int_equal(gb_tiny_write(&mini, GB_Q4_0, 1, path), 0);
    struct gb_model *m;
    char err[256];
    assert_int_equal(gb_model_open(path, &m, err, sizeof(err)), 0);
    assert_int_equal(m->hp.n_vocab, 1000);
    assert_int_equal(m->hp.n_layer, 2);
    assert_int_equal(m->layers[1].w_down.type, GB_Q4_0);
    assert_string_equal(m->name, "mini");
    gb_model_free(m);
    unlink(path);
}

static void test_fuzz(void **state)
{
    (void)state;
    uint8_t *img;
    size_t len;
    char err[256];
    tiny(&img, &len);
    uint8_t *b = malloc(len);
    uint64_t s = 12345;
    size_t head = 12000 < len ? 12000 : len; /* mutate where the structure is */
    for (int iter = 0; iter < 1500; iter++) {
        memcpy(b, img, len);
        for (int k = 0; k < 1 + iter % 4; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            size_t at = (size_t)(s >> 33) % head;
            b[at] = (uint8_t)(s >> 25);
        }
        (void)parse_img(b, len, err, sizeof(err));
    }
    free(b);
    free(img);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),  cmocka_unit_test(test_f16_conversion),
        cmocka_unit_test(test_tiny_loads),  cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_bad_headers), cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_stream),      cmocka_unit_test(test_gen_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
