/*
 * ratls-mint: a test tool that makes an RA-TLS certificate and key on the simulated TEE, the
 * way ccgate-server does, but with chosen claims (a nonce nobody sent, an old issue time), so
 * that integration tests can serve it with `openssl s_server` and watch the client refuse it.
 * Never part of a deployment: it writes the private key to a file.
 *
 *   ratls-mint STATE_DIR MEASURED_FILE CERT_OUT KEY_OUT [random-nonce] [IAT_OFFSET_S]
 */
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccgate/ratls.h"
#include "ccgate/sim.h"

static int fail(const char *what)
{
    fprintf(stderr, "ratls-mint: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--version") == 0) {
        printf("ratls-mint %s\n", CCGATE_VERSION);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "--help") == 0) {
        printf("usage: ratls-mint STATE_DIR MEASURED_FILE CERT_OUT KEY_OUT [random-nonce|none] "
               "[IAT_OFFSET_S]\n\nMints an RA-TLS certificate and key from the simulated TEE "
               "in STATE_DIR (tests only).\n");
        return 0;
    }
    if (argc < 5 || argc > 7)
        return fail("usage: ratls-mint STATE_DIR MEASURED_FILE CERT_OUT KEY_OUT "
                    "[random-nonce|none] [IAT_OFFSET_S]");
    int with_nonce = argc > 5 && strcmp(argv[5], "random-nonce") == 0;
    long offset = argc > 6 ? strtol(argv[6], NULL, 10) : 0;

    struct cg_provider *prov;
    struct cg_ratls_key *key;
    if (cg_sim_provider_new(argv[1], argv[2], &prov) != 0 || cg_ratls_key_new(&key) != 0)
        return fail("cannot load the sim TEE or make a key");
    uint8_t nonce[1][CG_NONCE_LEN];
    if (RAND_bytes(nonce[0], CG_NONCE_LEN) != 1)
        return fail("no randomness");
    int64_t iat = (int64_t)time(NULL) + offset;
    uint8_t *claims, *der, rd[CG_REPORT_DATA_LEN];
    size_t claims_len, der_len;
    struct cg_evidence ev = {0};
    if (cg_ratls_claims(key, (const uint8_t(*)[CG_NONCE_LEN])nonce, with_nonce ? 1 : 0, iat,
                        &claims, &claims_len, rd) != 0 ||
        prov->get(prov, rd, &ev) != 0 ||
        cg_ratls_cert_new(key, claims, claims_len, &ev, iat, 7200, &der, &der_len) != 0)
        return fail("cannot make the certificate");

    const unsigned char *p = der;
    X509 *x = d2i_X509(NULL, &p, (long)der_len);
    FILE *fc = fopen(argv[3], "w"), *fk = fopen(argv[4], "w");
    if (x == NULL || fc == NULL || fk == NULL || PEM_write_X509(fc, x) != 1 ||
        PEM_write_PrivateKey(fk, cg__ratls_key_pkey(key), NULL, NULL, 0, NULL, NULL) != 1)
        return fail("cannot write the files");
    fclose(fc);
    fclose(fk);
    X509_free(x);
    free(der);
    free(claims);
    cg_evidence_clear(&ev);
    cg_ratls_key_free(key);
    prov->free(prov);
    return 0;
}
