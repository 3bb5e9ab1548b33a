#include "gb_gguf.h"

#include "ccgate/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int gb_type_block(uint32_t type, size_t *block_bytes, size_t *block_elems)
{
    switch (type) {
    case GB_F32:
        *block_bytes = 4, *block_elems = 1;
        return 0;
    case GB_F16:
    case GB_BF16:
        *block_bytes = 2, *block_elems = 1;
        return 0;
    case GB_Q8_0:
        *block_bytes = 34, *block_elems = 32;
        return 0;
    case GB_Q4_0:
        *block_bytes = 18, *block_elems = 32;
        return 0;
    default:
        return CG_ECONFIG;
    }
}

const char *gb_type_name(uint32_t type)
{
    switch (type) {
    case GB_F32:
        return "f32";
    case GB_F16:
        return "f16";
    case GB_BF16:
        return "bf16";
    case GB_Q8_0:
        return "q8_0";
    case GB_Q4_0:
        return "q4_0";
    default:
        return "unknown";
    }
}

int gb_type_from_name(const char *name, uint32_t *out)
{
    static const uint32_t types[] = {GB_F32, GB_F16, GB_BF16, GB_Q8_0, GB_Q4_0};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(name, gb_type_name(types[i])) == 0) {
            *out = types[i];
            return 0;
        }
    return CG_ECONFIG;
}

size_t gb_type_row_bytes(uint32_t type, uint64_t n)
{
    size_t bb, be;
    if (gb_type_block(type, &bb, &be) != 0 || n % be != 0 || n > (1ull << 40))
        return 0;
    return (size_t)(n / be) * bb;
}

/* A bounded cursor over the file image. */
struct rd {
    const uint8_t *p;
    size_t len, off;
    char *err;
    size_t errlen;
};

__attribute__((format(printf, 2, 3))) static int fail(struct rd *r, const char *fmt, ...)
{
    if (r->errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->errlen, fmt, ap);
        va_end(ap);
    }
    return CG_ECONFIG;
}

static int take(struct rd *r, void *dst, size_t n, const char *what)
{
    if (r->len - r->off < n)
        return fail(r, "gguf: truncated file reading %s at offset %zu", what, r->off);
    memcpy(dst, r->p + r->off, n);
    r->off += n;
    return 0;
}

static int rd_u32(struct rd *r, uint32_t *v, const char *what)
{
    return take(r, v, 4, what);
}

static int rd_u64(struct rd *r, uint64_t *v, const char *what)
{
    return take(r, v, 8, what);
}

static int rd_str(struct rd *r, struct gb_gguf_str *s, const char *what)
{
    uint64_t n = 0;
    int rc = rd_u64(r, &n, what);
    if (rc != 0)
        return rc;
    if (n > GB_GGUF_MAX_STR)
        return fail(r, "gguf: %s string length %llu over the limit", what, (unsigned long long)n);
    if (r->len - r->off < n)
        return fail(r, "gguf: truncated file reading %s at offset %zu", what, r->off);
    s->p = (const char *)r->p + r->off;
    s->len = n;
    r->off += n;
    return 0;
}

static size_t scalar_size(uint32_t t)
{
    switch (t) {
    case GB_GGUF_U8:
    case GB_GGUF_I8:
    case GB_GGUF_BOOL:
        return 1;
    case GB_GGUF_U16:
    case GB_GGUF_I16:
        return 2;
    case GB_GGUF_U32:
    case GB_GGUF_I32:
    case GB_GGUF_F32:
        return 4;
    case GB_GGUF_U64:
    case GB_GGUF_I64:
    case GB_GGUF_F64:
        return 8;
    default:
        return 0;
    }
}

static void scalar_decode(uint32_t t, const uint8_t *p, struct gb_gguf_kv *kv)
{
    uint8_t u8;
    uint16_t u16;
    uint32_t u32;
    uint64_t u64;
    float f;
    switch (t) {
    case GB_GGUF_U8:
    case GB_GGUF_BOOL:
        memcpy(&u8, p, 1), kv->v.u = u8, kv->v.i = u8;
        break;
    case GB_GGUF_I8:
        memcpy(&u8, p, 1), kv->v.i = (int8_t)u8;
        break;
    case GB_GGUF_U16:
        memcpy(&u16, p, 2), kv->v.u = u16;
        break;
    case GB_GGUF_I16:
        memcpy(&u16, p, 2), kv->v.i = (int16_t)u16;
        break;
    case GB_GGUF_U32:
        memcpy(&u32, p, 4), kv->v.u = u32;
        break;
    case GB_GGUF_I32:
        memcpy(&u32, p, 4), kv->v.i = (int32_t)u32;
        break;
    case GB_GGUF_F32:
        memcpy(&f, p, 4), kv->v.f = f;
        break;
    case GB_GGUF_U64:
        memcpy(&u64, p, 8), kv->v.u = u64;
        break;
    case GB_GGUF_I64:
        memcpy(&u64, p, 8), kv->v.i = (int64_t)u64;
        break;
    case GB_GGUF_F64:
        memcpy(&kv->v.f, p, 8);
        break;
    default:
        break;
    }
}

static int read_kv(struct rd *r, struct gb_gguf_kv *kv)
{
    struct gb_gguf_str key;
    uint32_t t = 0;
    int rc = rd_str(r, &key, "metadata key");
    if (rc != 0)
        return rc;
    if (key.len == 0 || key.len > GB_GGUF_MAX_NAME)
        return fail(r, "gguf: metadata key length %llu invalid", (unsigned long long)key.len);
    kv->key = malloc(key.len + 1);
    if (kv->key == NULL)
        return -ENOMEM;
    memcpy(kv->key, key.p, key.len);
    kv->key[key.len] = 0;
    if ((rc = rd_u32(r, &t, "metadata type")) != 0)
        return rc;
    kv->type = (enum gb_gguf_vtype)t;
    if (t == GB_GGUF_STR)
        return rd_str(r, &kv->v.s, kv->key);
    if (t != GB_GGUF_ARR) {
        size_t sz = scalar_size(t);
        uint8_t tmp[8];
        if (sz == 0)
            return fail(r, "gguf: metadata %s has unknown type %u", kv->key, t);
        if ((rc = take(r, tmp, sz, kv->key)) != 0)
            return rc;
        scalar_decode(t, tmp, kv);
        return 0;
    }
    uint32_t et = 0;
    if ((rc = rd_u32(r, &et, kv->key)) != 0 || (rc = rd_u64(r, &kv->arr_n, kv->key)) != 0)
        return rc;
    kv->arr_type = (enum gb_gguf_vtype)et;
    if (kv->arr_n > GB_GGUF_MAX_ARR)
        return fail(r, "gguf: metadata %s array of %llu elements over the limit", kv->key,
                    (unsigned long long)kv->arr_n);
    if (et == GB_GGUF_STR) {
        kv->arr_str = calloc(kv->arr_n ? kv->arr_n : 1, sizeof(*kv->arr_str));
        if (kv->arr_str == NULL)
            return -ENOMEM;
        for (uint64_t i = 0; i < kv->arr_n; i++)
            if ((rc = rd_str(r, &kv->arr_str[i], kv->key)) != 0)
                return rc;
        return 0;
    }
    size_t sz = scalar_size(et);
    if (sz == 0)
        return fail(r, "gguf: metadata %s is an array of unsupported type %u", kv->key, et);
    if ((r->len - r->off) / sz < kv->arr_n)
        return fail(r, "gguf: truncated file reading array %s", kv->key);
    kv->arr_data = r->p + r->off;
    r->off += (size_t)kv->arr_n * sz;
    return 0;
}

static int read_tensor(struct rd *r, struct gb_gguf_tensor *t)
{
    struct gb_gguf_str name;
    int rc = rd_str(r, &name, "tensor name");
    if (rc != 0)
        return rc;
    if (name.len == 0 || name.len >= GB_GGUF_MAX_NAME)
        return fail(r, "gguf: tensor name length %llu invalid", (unsigned long long)name.len);
    memcpy(t->name, name.p, name.len);
    t->name[name.len] = 0;
    if ((rc = rd_u32(r, &t->n_dims, t->name)) != 0)
        return rc;
    if (t->n_dims == 0 || t->n_dims > GB_GGUF_MAX_DIMS)
        return fail(r, "gguf: tensor %s has %u dimensions (1..4 supported)", t->name, t->n_dims);
    for (uint32_t d = 0; d < GB_GGUF_MAX_DIMS; d++)
        t->ne[d] = 1;
    uint64_t n = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if ((rc = rd_u64(r, &t->ne[d], t->name)) != 0)
            return rc;
        if (t->ne[d] == 0 || t->ne[d] > (1ull << 40) || n > (1ull << 48) / t->ne[d])
            return fail(r, "gguf: tensor %s has a bad dimension", t->name);
        n *= t->ne[d];
    }
    if ((rc = rd_u32(r, &t->type, t->name)) != 0 || (rc = rd_u64(r, &t->offset, t->name)) != 0)
        return rc;
    size_t row = gb_type_row_bytes(t->type, t->ne[0]);
    size_t bb, be;
    if (gb_type_block(t->type, &bb, &be) == 0 && row == 0)
        return fail(r, "gguf: tensor %s: row of %llu not a multiple of the %s block", t->name,
                    (unsigned long long)t->ne[0], gb_type_name(t->type));
    t->nbytes = (uint64_t)row * (n / t->ne[0]);
    return 0;
}

void gb_gguf_free(struct gb_gguf *g)
{
    if (g == NULL)
        return;
    for (uint64_t i = 0; g->kv != NULL && i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].arr_str);
    }
    free(g->kv);
    free(g->tensors);
    if (g->map != NULL)
        munmap(g->map, g->size);
    free(g->owned);
    free(g);
}

int gb_gguf_parse(const uint8_t *buf, size_t len, int take_ownership, struct gb_gguf **out,
                  char *err, size_t errlen)
{
    struct rd r = {.p = buf, .len = len, .err = err, .errlen = errlen};
    struct gb_gguf *g = calloc(1, sizeof(*g));
    int rc;
    char magic[4] = {0};
    *out = NULL;
    if (errlen > 0)
        err[0] = 0;
    if (g == NULL) {
        if (take_ownership)
            free((void *)buf);
        return -ENOMEM;
    }
    g->base = buf;
    g->size = len;
    if (take_ownership)
        g->owned = (uint8_t *)buf;
    g->alignment = 32;
    if ((rc = take(&r, magic, 4, "magic")) != 0)
        goto out;
    if (memcmp(magic, "GGUF", 4) != 0) {
        rc = fail(&r, "gguf: not a GGUF file (bad magic)");
        goto out;
    }
    if ((rc = rd_u32(&r, &g->version, "version")) != 0)
        goto out;
    if (g->version == 0x02000000u || g->version == 0x03000000u) {
        rc = fail(&r, "gguf: big-endian GGUF files are not supported");
        goto out;
    }
    if (g->version != 2 && g->version != 3) {
        rc = fail(&r, "gguf: unsupported GGUF version %u (2 and 3 are supported)", g->version);
        goto out;
    }
    if ((rc = rd_u64(&r, &g->n_tensors, "tensor count")) != 0 ||
        (rc = rd_u64(&r, &g->n_kv, "metadata count")) != 0)
        goto out;
    if (g->n_tensors > GB_GGUF_MAX_TENSORS || g->n_kv > GB_GGUF_MAX_KV) {
        rc = fail(&r, "gguf: %llu tensors / %llu metadata entries over the limit",
                  (unsigned long long)g->n_tensors, (unsigned long long)g->n_kv);
        goto out;
    }
    /* Each entry needs at least 12 bytes on disk, which bounds the allocations below. */
    if ((g->n_kv + g->n_tensors) > (len - r.off) / 12) {
        rc = fail(&r, "gguf: truncated file: counts exceed the file size");
        goto out;
    }
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof(*g->kv));
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof(*g->tensors));
    if (g->kv == NULL || g->tensors == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    for (uint64_t i = 0; i < g->n_kv; i++)
        if ((rc = read_kv(&r, &g->kv[i])) != 0)
            goto out;
    const struct gb_gguf_kv *al = gb_gguf_find(g, "general.alignment");
    if (al != NULL) {
        if (al->type != GB_GGUF_U32 || al->v.u == 0 || al->v.u > 65536 ||
            (al->v.u & (al->v.u - 1)) != 0) {
            rc = fail(&r, "gguf: general.alignment must be a power of two u32 up to 65536");
            goto out;
        }
        g->alignment = al->v.u;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if ((rc = read_tensor(&r, &g->tensors[i])) != 0)
            goto out;
    size_t data_off = (r.off + g->alignment - 1) / g->alignment * g->alignment;
    if (data_off > len && g->n_tensors > 0) {
        rc = fail(&r, "gguf: truncated file: no tensor data section");
        goto out;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct gb_gguf_tensor *t = &g->tensors[i];
        for (uint64_t j = 0; j < i; j++)
            if (strcmp(g->tensors[j].name, t->name) == 0) {
                rc = fail(&r, "gguf: duplicate tensor %s", t->name);
                goto out;
            }
        if (t->offset % g->alignment != 0) {
            rc = fail(&r, "gguf: tensor %s data offset not aligned", t->name);
            goto out;
        }
        if (t->nbytes == 0)
            continue; /* unknown type: usable only if nobody needs it */
        if (t->offset > len - data_off || t->nbytes > len - data_off - t->offset) {
            rc =
                fail(&r, "gguf: truncated file: tensor %s data (%llu bytes at %llu) beyond the end",
                     t->name, (unsigned long long)t->nbytes, (unsigned long long)t->offset);
            goto out;
        }
        t->data = buf + data_off + t->offset;
    }
    *out = g;
    g = NULL;
    rc = 0;
out:
    gb_gguf_free(g);
    return rc;
}

int gb_gguf_open(const char *path, struct gb_gguf **out, char *err, size_t errlen)
{
    struct stat st;
    int rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *out = NULL;
    if (fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0) {
        snprintf(err, errlen, "%s: not a regular non-empty file", path);
        close(fd);
        return CG_ECONFIG;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        snprintf(err, errlen, "cannot map %s: %s", path, strerror(errno));
        return -ENOMEM;
    }
    rc = gb_gguf_parse(m, (size_t)st.st_size, 0, out, err, errlen);
    if (rc != 0) {
        munmap(m, (size_t)st.st_size);
        return rc;
    }
    (*out)->map = m;
    return 0;
}

const struct gb_gguf_kv *gb_gguf_find(const struct gb_gguf *g, const char *key)
{
    for (uint64_t i = 0; i < g->n_kv; i++)
        if (g->kv[i].key != NULL && strcmp(g->kv[i].key, key) == 0)
            return &g->kv[i];
    return NULL;
}

int gb_gguf_get_u64(const struct gb_gguf *g, const char *key, uint64_t *out)
{
    const struct gb_gguf_kv *kv = gb_gguf_find(g, key);
    if (kv == NULL)
        return CG_ECONFIG;
    switch (kv->type) {
    case GB_GGUF_U8:
    case GB_GGUF_U16:
    case GB_GGUF_U32:
    case GB_GGUF_U64:
    case GB_GGUF_BOOL:
        *out = kv->v.u;
        return 0;
    case GB_GGUF_I8:
    case GB_GGUF_I16:
    case GB_GGUF_I32:
    case GB_GGUF_I64:
        if (kv->v.i < 0)
            return CG_ECONFIG;
        *out = (uint64_t)kv->v.i;
        return 0;
    default:
        return CG_ECONFIG;
    }
}

int gb_gguf_get_f64(const struct gb_gguf *g, const char *key, double *out)
{
    const struct gb_gguf_kv *kv = gb_gguf_find(g, key);
    uint64_t u;
    if (kv == NULL)
        return CG_ECONFIG;
    if (kv->type == GB_GGUF_F32 || kv->type == GB_GGUF_F64) {
        *out = kv->v.f;
        return 0;
    }
    if (gb_gguf_get_u64(g, key, &u) == 0) {
        *out = (double)u;
        return 0;
    }
    return CG_ECONFIG;
}

char *gb_gguf_get_str(const struct gb_gguf *g, const char *key)
{
    const struct gb_gguf_kv *kv = gb_gguf_find(g, key);
    if (kv == NULL || kv->type != GB_GGUF_STR)
        return NULL;
    char *s = malloc(kv->v.s.len + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, kv->v.s.p, kv->v.s.len);
    s[kv->v.s.len] = 0;
    return s;
}

const struct gb_gguf_tensor *gb_gguf_tensor(const struct gb_gguf *g, const char *name)
{
    for (uint64_t i = 0; i < g->n_tensors; i++)
        if (strcmp(g->tensors[i].name, name) == 0)
            return &g->tensors[i];
    return NULL;
}

double gb_gguf_arr_num(const struct gb_gguf_kv *kv, uint64_t i)
{
    struct gb_gguf_kv e = {0};
    size_t sz = scalar_size(kv->arr_type);
    if (kv->type != GB_GGUF_ARR || kv->arr_data == NULL || i >= kv->arr_n || sz == 0)
        return 0;
    scalar_decode(kv->arr_type, kv->arr_data + i * sz, &e);
    switch (kv->arr_type) {
    case GB_GGUF_F32:
    case GB_GGUF_F64:
        return e.v.f;
    case GB_GGUF_I8:
    case GB_GGUF_I16:
    case GB_GGUF_I32:
    case GB_GGUF_I64:
        return (double)e.v.i;
    default:
        return (double)e.v.u;
    }
}

/* ---- writer ---- */

struct buf {
    uint8_t *p;
    size_t len, cap;
};

static int put(struct buf *b, const void *d, size_t n)
{
    if (b->cap - b->len < n) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len < n)
            cap *= 2;
        uint8_t *np = realloc(b->p, cap);
        if (np == NULL)
            return -ENOMEM;
        b->p = np;
        b->cap = cap;
    }
    if (n > 0)
        memcpy(b->p + b->len, d, n);
    b->len += n;
    return 0;
}

static int put_u32(struct buf *b, uint32_t v)
{
    return put(b, &v, 4);
}

static int put_u64(struct buf *b, uint64_t v)
{
    return put(b, &v, 8);
}

static int put_str(struct buf *b, const char *s)
{
    size_t n = strlen(s);
    int rc = put_u64(b, n);
    return rc != 0 ? rc : put(b, s, n);
}

struct gb_gguf_writer {
    struct buf kv, info, data;
    uint64_t n_kv, n_tensors;
    /* tensors added by gb_gguf_w_tensor_info: their bytes come from the stream's fill */
    uint64_t n_reserved, reserved_end, max_reserved;
    uint64_t *reserved_bytes;
    size_t cap_reserved;
};

int gb_gguf_writer_new(struct gb_gguf_writer **out)
{
    *out = calloc(1, sizeof(**out));
    return *out == NULL ? -ENOMEM : 0;
}

void gb_gguf_writer_free(struct gb_gguf_writer *w)
{
    if (w == NULL)
        return;
    free(w->kv.p);
    free(w->info.p);
    free(w->data.p);
    free(w->reserved_bytes);
    free(w);
}

static int kv_head(struct gb_gguf_writer *w, const char *key, uint32_t type)
{
    int rc = put_str(&w->kv, key);
    if (rc == 0)
        rc = put_u32(&w->kv, type);
    if (rc == 0)
        w->n_kv++;
    return rc;
}

int gb_gguf_w_u32(struct gb_gguf_writer *w, const char *key, uint32_t v)
{
    int rc = kv_head(w, key, GB_GGUF_U32);
    return rc != 0 ? rc : put_u32(&w->kv, v);
}

int gb_gguf_w_i32(struct gb_gguf_writer *w, const char *key, int32_t v)
{
    int rc = kv_head(w, key, GB_GGUF_I32);
    return rc != 0 ? rc : put(&w->kv, &v, 4);
}

int gb_gguf_w_f32(struct gb_gguf_writer *w, const char *key, float v)
{
    int rc = kv_head(w, key, GB_GGUF_F32);
    return rc != 0 ? rc : put(&w->kv, &v, 4);
}

int gb_gguf_w_bool(struct gb_gguf_writer *w, const char *key, int v)
{
    uint8_t b = v ? 1 : 0;
    int rc = kv_head(w, key, GB_GGUF_BOOL);
    return rc != 0 ? rc : put(&w->kv, &b, 1);
}

int gb_gguf_w_str(struct gb_gguf_writer *w, const char *key, const char *v)
{
    int rc = kv_head(w, key, GB_GGUF_STR);
    return rc != 0 ? rc : put_str(&w->kv, v);
}

static int arr_head(struct gb_gguf_writer *w, const char *key, uint32_t et, size_t n)
{
    int rc = kv_head(w, key, GB_GGUF_ARR);
    if (rc == 0)
        rc = put_u32(&w->kv, et);
    if (rc == 0)
        rc = put_u64(&w->kv, n);
    return rc;
}

int gb_gguf_w_arr_str(struct gb_gguf_writer *w, const char *key, const char *const *v, size_t n)
{
    int rc = arr_head(w, key, GB_GGUF_STR, n);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = put_str(&w->kv, v[i]);
    return rc;
}

int gb_gguf_w_arr_f32(struct gb_gguf_writer *w, const char *key, const float *v, size_t n)
{
    int rc = arr_head(w, key, GB_GGUF_F32, n);
    return rc != 0 ? rc : put(&w->kv, v, n * 4);
}

int gb_gguf_w_arr_i32(struct gb_gguf_writer *w, const char *key, const int32_t *v, size_t n)
{
    int rc = arr_head(w, key, GB_GGUF_I32, n);
    return rc != 0 ? rc : put(&w->kv, v, n * 4);
}

/* The tensor info of a tensor whose bytes start at data offset off. */
static int put_info(struct gb_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                    const uint64_t *ne, uint64_t off)
{
    int rc = put_str(&w->info, name);
    if (rc == 0)
        rc = put_u32(&w->info, n_dims);
    for (uint32_t d = 0; rc == 0 && d < n_dims; d++)
        rc = put_u64(&w->info, ne[d]);
    if (rc == 0)
        rc = put_u32(&w->info, type);
    if (rc == 0)
        rc = put_u64(&w->info, off);
    if (rc == 0)
        w->n_tensors++;
    return rc;
}

/* Bytes of a tensor, or 0 when the type, the dimensions or their product are unusable. */
static uint64_t tensor_bytes(uint32_t type, uint32_t n_dims, const uint64_t *ne)
{
    uint64_t rows = 1, row = gb_type_row_bytes(type, ne[0]);
    if (row == 0 || n_dims == 0 || n_dims > GB_GGUF_MAX_DIMS)
        return 0;
    for (uint32_t d = 1; d < n_dims; d++) {
        if (ne[d] == 0 || rows > UINT64_MAX / ne[d])
            return 0;
        rows *= ne[d];
    }
    return rows > UINT64_MAX / row ? 0 : row * rows;
}

int gb_gguf_w_tensor(struct gb_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                     const uint64_t *ne, const void *data)
{
    static const uint8_t zeros[32];
    uint64_t nbytes = tensor_bytes(type, n_dims, ne);
    if (nbytes == 0 || nbytes > SIZE_MAX || w->n_reserved > 0)
        return CG_ECONFIG;
    size_t pad = (32 - w->data.len % 32) % 32;
    int rc = put(&w->data, zeros, pad);
    uint64_t off = w->data.len;
    if (rc == 0)
        rc = put(&w->data, data, (size_t)nbytes);
    return rc != 0 ? rc : put_info(w, name, type, n_dims, ne, off);
}

int gb_gguf_w_tensor_info(struct gb_gguf_writer *w, const char *name, uint32_t type,
                          uint32_t n_dims, const uint64_t *ne)
{
    uint64_t nbytes = tensor_bytes(type, n_dims, ne);
    if (nbytes == 0 || nbytes > SIZE_MAX || w->data.len > 0)
        return CG_ECONFIG;
    if (w->n_reserved == w->cap_reserved) {
        size_t cap = w->cap_reserved ? w->cap_reserved * 2 : 64;
        uint64_t *nb = realloc(w->reserved_bytes, cap * sizeof(*nb));
        if (nb == NULL)
            return -ENOMEM;
        w->reserved_bytes = nb;
        w->cap_reserved = cap;
    }
    uint64_t off = (w->reserved_end + 31) / 32 * 32;
    int rc = put_info(w, name, type, n_dims, ne, off);
    if (rc != 0)
        return rc;
    w->reserved_bytes[w->n_reserved++] = nbytes;
    w->reserved_end = off + nbytes;
    w->max_reserved = nbytes > w->max_reserved ? nbytes : w->max_reserved;
    return 0;
}

/* Magic, counts, metadata and tensor infos, padded to the data section. */
static int put_header(const struct gb_gguf_writer *w, struct buf *b)
{
    static const uint8_t zeros[32];
    int rc = put(b, "GGUF", 4);
    if (rc == 0)
        rc = put_u32(b, 3);
    if (rc == 0)
        rc = put_u64(b, w->n_tensors);
    if (rc == 0)
        rc = put_u64(b, w->n_kv);
    if (rc == 0)
        rc = put(b, w->kv.p, w->kv.len);
    if (rc == 0)
        rc = put(b, w->info.p, w->info.len);
    if (rc == 0)
        rc = put(b, zeros, (32 - b->len % 32) % 32);
    return rc;
}

int gb_gguf_writer_finish(struct gb_gguf_writer *w, uint8_t **out, size_t *len)
{
    struct buf b = {0};
    if (w->n_reserved > 0)
        return CG_ECONFIG; /* their bytes only exist in gb_gguf_writer_stream */
    int rc = put_header(w, &b);
    if (rc == 0)
        rc = put(&b, w->data.p, w->data.len);
    if (rc != 0) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    *len = b.len;
    return 0;
}

int gb_gguf_writer_save(struct gb_gguf_writer *w, const char *path)
{
    uint8_t *img;
    size_t len;
    int rc = gb_gguf_writer_finish(w, &img, &len);
    if (rc != 0)
        return rc;
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        rc = -errno;
        goto out;
    }
    if (fwrite(img, 1, len, f) != len)
        rc = -EIO;
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
out:
    free(img);
    return rc;
}

int gb_gguf_writer_stream(struct gb_gguf_writer *w, const char *path,
                          int (*fill)(void *arg, uint64_t i, void *dst, size_t nbytes), void *arg)
{
    static const uint8_t zeros[32];
    struct buf hdr = {0};
    uint8_t *tmp = NULL;
    uint64_t at = 0;
    int rc = w->data.len > 0 ? CG_ECONFIG : put_header(w, &hdr);
    if (rc != 0) {
        free(hdr.p);
        return rc;
    }
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        free(hdr.p);
        return -errno;
    }
    if (w->max_reserved > 0 && (tmp = malloc((size_t)w->max_reserved)) == NULL)
        rc = -ENOMEM;
    if (rc == 0 && fwrite(hdr.p, 1, hdr.len, f) != hdr.len)
        rc = -EIO;
    for (uint64_t i = 0; rc == 0 && i < w->n_reserved; i++) {
        size_t pad = (size_t)((32 - at % 32) % 32), nb = (size_t)w->reserved_bytes[i];
        if (fwrite(zeros, 1, pad, f) != pad)
            rc = -EIO;
        if (rc == 0)
            rc = fill(arg, i, tmp, nb);
        if (rc == 0 && fwrite(tmp, 1, nb, f) != nb)
            rc = -EIO;
        at += pad + nb;
    }
    if (fclose(f) != 0 && rc == 0)
        rc = -EIO;
    if (rc != 0)
        remove(path);
    free(tmp);
    free(hdr.p);
    return rc;
}
