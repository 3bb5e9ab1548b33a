#ifndef GB_GGUF_H
#define GB_GGUF_H

#include <stddef.h>
#include <stdint.h>

/*
 * GGUF (v2/v3) reading and writing. The reader never trusts the file: every count, length
 * and offset is bounded, and a bad file yields CG_ECONFIG with a message that names what
 * is wrong, never a crash. Little-endian files only.
 */

enum gb_gguf_vtype {
    GB_GGUF_U8 = 0,
    GB_GGUF_I8 = 1,
    GB_GGUF_U16 = 2,
    GB_GGUF_I16 = 3,
    GB_GGUF_U32 = 4,
    GB_GGUF_I32 = 5,
    GB_GGUF_F32 = 6,
    GB_GGUF_BOOL = 7,
    GB_GGUF_STR = 8,
    GB_GGUF_ARR = 9,
    GB_GGUF_U64 = 10,
    GB_GGUF_I64 = 11,
    GB_GGUF_F64 = 12
};

/* ggml tensor types this project computes with (others parse but cannot be used). */
enum gb_type { GB_F32 = 0, GB_F16 = 1, GB_Q4_0 = 2, GB_Q8_0 = 8, GB_BF16 = 30 };

#define GB_GGUF_MAX_DIMS 4
#define GB_GGUF_MAX_KV 65536
#define GB_GGUF_MAX_TENSORS 16384 /* duplicate names are checked pairwise */
#define GB_GGUF_MAX_STR (1u << 24)
#define GB_GGUF_MAX_ARR (1u << 24)
#define GB_GGUF_MAX_NAME 256

struct gb_gguf_str {
    const char *p; /* into the file image, not NUL-terminated */
    uint64_t len;
};

struct gb_gguf_kv {
    char *key; /* NUL-terminated copy */
    enum gb_gguf_vtype type;
    union {
        uint64_t u;
        int64_t i;
        double f;
        struct gb_gguf_str s;
    } v;
    /* arrays */
    enum gb_gguf_vtype arr_type;
    uint64_t arr_n;
    const uint8_t *arr_data;     /* scalar arrays: packed elements in the file image */
    struct gb_gguf_str *arr_str; /* string arrays: one entry per element */
};

struct gb_gguf_tensor {
    char name[GB_GGUF_MAX_NAME];
    uint32_t n_dims;
    uint64_t ne[GB_GGUF_MAX_DIMS]; /* ne[0] is the innermost (row) dimension; unused = 1 */
    uint32_t type;
    uint64_t offset;  /* relative to the data section */
    uint64_t nbytes;  /* 0 when the type is unknown */
    const void *data; /* NULL when the type is unknown */
};

struct gb_gguf {
    uint32_t version;
    uint64_t n_kv;
    struct gb_gguf_kv *kv;
    uint64_t n_tensors;
    struct gb_gguf_tensor *tensors;
    uint64_t alignment;
    const uint8_t *base; /* the whole file image */
    size_t size;
    void *map;      /* mmap of the file when opened from a path */
    uint8_t *owned; /* heap image when given ownership */
};

/* Element size data of a ggml type: bytes per block and elements per block; 0 if unknown. */
int gb_type_block(uint32_t type, size_t *block_bytes, size_t *block_elems);
/* Short name of a ggml type ("f16", "q8_0", ...) or "unknown". */
const char *gb_type_name(uint32_t type);
/* The type a short name (f32, f16, bf16, q8_0, q4_0) names: 0, or CG_ECONFIG when unknown. */
int gb_type_from_name(const char *name, uint32_t *out);
/* Bytes of a row of n elements of type, or 0 when unknown or n is not a block multiple. */
size_t gb_type_row_bytes(uint32_t type, uint64_t n);

/*
 * Parses the GGUF image buf[0..len). The result points into buf, which must outlive it
 * unless take_ownership is set (then buf, from malloc, is freed with the result, also on
 * error). Returns 0 or CG_ECONFIG / -ENOMEM with a reason in err. Caller frees *out.
 */
int gb_gguf_parse(const uint8_t *buf, size_t len, int take_ownership, struct gb_gguf **out,
                  char *err, size_t errlen);

/* Maps the file at path and parses it. Same contract as gb_gguf_parse. */
int gb_gguf_open(const char *path, struct gb_gguf **out, char *err, size_t errlen);

void gb_gguf_free(struct gb_gguf *g);

/* Lookups: NULL / CG_ECONFIG when absent or of an unsuitable type. */
const struct gb_gguf_kv *gb_gguf_find(const struct gb_gguf *g, const char *key);
int gb_gguf_get_u64(const struct gb_gguf *g, const char *key, uint64_t *out);
int gb_gguf_get_f64(const struct gb_gguf *g, const char *key, double *out);
/* A NUL-terminated copy of a string value; caller frees. NULL when absent. */
char *gb_gguf_get_str(const struct gb_gguf *g, const char *key);
const struct gb_gguf_tensor *gb_gguf_tensor(const struct gb_gguf *g, const char *name);
/* Numeric array element i as double (any integer or float element type). */
double gb_gguf_arr_num(const struct gb_gguf_kv *kv, uint64_t i);

/* Writer: collects metadata and tensors, then writes a GGUF v3 image. */
struct gb_gguf_writer;

int gb_gguf_writer_new(struct gb_gguf_writer **out);
void gb_gguf_writer_free(struct gb_gguf_writer *w);
int gb_gguf_w_u32(struct gb_gguf_writer *w, const char *key, uint32_t v);
int gb_gguf_w_i32(struct gb_gguf_writer *w, const char *key, int32_t v);
int gb_gguf_w_f32(struct gb_gguf_writer *w, const char *key, float v);
int gb_gguf_w_bool(struct gb_gguf_writer *w, const char *key, int v);
int gb_gguf_w_str(struct gb_gguf_writer *w, const char *key, const char *v);
int gb_gguf_w_arr_str(struct gb_gguf_writer *w, const char *key, const char *const *v, size_t n);
int gb_gguf_w_arr_f32(struct gb_gguf_writer *w, const char *key, const float *v, size_t n);
int gb_gguf_w_arr_i32(struct gb_gguf_writer *w, const char *key, const int32_t *v, size_t n);
/* Adds a tensor; data (gb_type_row_bytes(type, ne[0]) * rows bytes) is copied. */
int gb_gguf_w_tensor(struct gb_gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                     const uint64_t *ne, const void *data);
/*
 * Streaming, for files larger than memory: tensors added with gb_gguf_w_tensor_info (not
 * mixed with gb_gguf_w_tensor) get their bytes from fill(arg, i, dst, nbytes), called once
 * per tensor in the order they were added, when gb_gguf_writer_stream writes path. A fill
 * error stops the write, removes the file and is returned.
 */
int gb_gguf_w_tensor_info(struct gb_gguf_writer *w, const char *name, uint32_t type,
                          uint32_t n_dims, const uint64_t *ne);
int gb_gguf_writer_stream(struct gb_gguf_writer *w, const char *path,
                          int (*fill)(void *arg, uint64_t i, void *dst, size_t nbytes), void *arg);
/* The finished image (not for a writer with gb_gguf_w_tensor_info tensors); caller frees *buf. */
int gb_gguf_writer_finish(struct gb_gguf_writer *w, uint8_t **buf, size_t *len);
/* Writes the finished image to path. */
int gb_gguf_writer_save(struct gb_gguf_writer *w, const char *path);

#endif
