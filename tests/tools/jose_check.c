/*
 * jose-check: ccgate's JOSE code on files, so that an independent implementation
 * (python3-jwcrypto in tests/integration/test_jose_interop.sh) can check it both ways.
 *   jose-check decrypt KEY.jwk JWE.json   prints the plaintext
 *   jose-check encrypt PUB.jwk            reads stdin, prints a flattened JWE
 *   jose-check verify PUB.jwk TOKEN       verifies an ES256 JWT, prints its claims
 *   jose-check sign KEY.jwk CLAIMS.json   prints an ES256 JWT
 * Exit 0, 1 on a rejected input (message on stderr), 2 on usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccgate/jose.h"

static json_t *load(const char *path)
{
    json_error_t je;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        fprintf(stderr, "jose-check: %s: %s\n", path, je.text);
    return j;
}

static struct cg_jose_key *key(const char *path)
{
    char err[160];
    struct cg_jose_key *k = NULL;
    json_t *j = load(path);
    if (j != NULL && cg_jose_key_from_jwk(j, &k, err, sizeof(err)) != 0)
        fprintf(stderr, "jose-check: %s: %s\n", path, err);
    json_decref(j);
    return k;
}

int main(int argc, char **argv)
{
    char err[160];
    if (argc < 3) {
        fprintf(stderr, "usage: jose-check decrypt|encrypt|verify|sign KEY [FILE|TOKEN]\n");
        return 2;
    }
    struct cg_jose_key *k = key(argv[2]);
    if (k == NULL)
        return 1;
    int rc = 1;
    if (strcmp(argv[1], "decrypt") == 0 && argc == 4) {
        json_t *jwe = load(argv[3]);
        uint8_t *pt;
        size_t n;
        if (jwe != NULL && cg_jwe_decrypt(k, jwe, &pt, &n, err, sizeof(err)) == 0) {
            fwrite(pt, 1, n, stdout);
            free(pt);
            rc = 0;
        } else if (jwe != NULL) {
            fprintf(stderr, "jose-check: %s\n", err);
        }
        json_decref(jwe);
    } else if (strcmp(argv[1], "encrypt") == 0) {
        static uint8_t buf[1 << 16];
        size_t n = fread(buf, 1, sizeof(buf), stdin);
        json_t *jwe;
        if (cg_jwe_encrypt(k, buf, n, &jwe) == 0) {
            json_dumpf(jwe, stdout, JSON_COMPACT);
            json_decref(jwe);
            rc = 0;
        }
    } else if (strcmp(argv[1], "verify") == 0 && argc == 4) {
        json_t *claims;
        if (cg_jwt_verify(k, argv[3], time(NULL), &claims, err, sizeof(err)) == 0) {
            json_dumpf(claims, stdout, JSON_COMPACT | JSON_SORT_KEYS);
            json_decref(claims);
            rc = 0;
        } else {
            fprintf(stderr, "jose-check: %s\n", err);
        }
    } else if (strcmp(argv[1], "sign") == 0 && argc == 4) {
        json_t *claims = load(argv[3]);
        char *tok;
        if (claims != NULL && cg_jwt_sign(k, claims, &tok) == 0) {
            puts(tok);
            free(tok);
            rc = 0;
        }
        json_decref(claims);
    } else {
        rc = 2;
    }
    cg_jose_key_free(k);
    return rc;
}
