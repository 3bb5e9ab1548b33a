/* X.509 helpers shared by the verifiers. */
#include "ccgate/x509.h"

#include <limits.h>
#include <stdio.h>
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

int cg_x509_key_p384(const X509 *x, char *what, size_t n)
{
    EVP_PKEY *pk = X509_get0_pubkey(x);
    char group[32] = "";
    size_t glen = 0;
    int ok = pk != NULL && EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
             EVP_PKEY_get_group_name(pk, group, sizeof(group), &glen) == 1 &&
             strcmp(group, "secp384r1") == 0;
    snprintf(what, n, "%s", group[0] != '\0' ? group : "another key type");
    return ok;
}
