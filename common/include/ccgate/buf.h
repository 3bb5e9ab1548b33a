#ifndef CCGATE_BUF_H
#define CCGATE_BUF_H

#include <stddef.h>

/* A growable byte buffer with a hard limit: appends past max fail and mark it truncated. */
struct cg_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    int overflow;
};

/* Initializes an empty buffer that never grows beyond max bytes. */
void cg_buf_init(struct cg_buf *b, size_t max);

/* Frees the storage and empties the buffer. */
void cg_buf_free(struct cg_buf *b);

/* Appends n bytes; returns 0, or CG_ELIMIT (over max, overflow set) or UV_ENOMEM. */
int cg_buf_append(struct cg_buf *b, const void *data, size_t n);

/* Appends printf-formatted text (data stays NUL-terminated). Same returns. */
int cg_buf_printf(struct cg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Drops the first n bytes. */
void cg_buf_consume(struct cg_buf *b, size_t n);

#endif
