#ifndef CCGATE_ROOTS_H
#define CCGATE_ROOTS_H

#include <stddef.h>

/* A vendor root certificate pinned at build time from certs/ (PEM, NUL-terminated). */
struct cg_root {
    const char *name; /* path below certs/, e.g. "amd/ark_milan.pem" */
    const unsigned char *pem;
    size_t len;
};

/* Every pinned root, terminated by an entry whose name is NULL. */
extern const struct cg_root cg_roots[];

#endif
