/* X.509 helpers shared by the verifiers. */
#include "ccgate/x509.h"

#include <limits.h>
#include <string.h>

#include <openssl/pem.h>

#include "ccgate/roots.h"

X509 *cg_x509_der(const uint8_t *der, size_t len)
{
    if (der == NULL || len == 0 || len > LONG_MAX)
        return NULL;
    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)len);
    if (x != NULL && p != der + len) {
        X509_free(x);
        return NULL;
    }
    return x;
}

X509 *cg_x509_pinned(const char *name)
{
    for (const struct cg_root *r = cg_roots; r->name != NULL; r++) {
        if (strcmp(r->name, name) != 0)
            continue;
        BIO *b = BIO_new_mem_buf(r->pem, (int)r->len);
        X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        return x;
    }
    return NULL;
}
