/*
 * libFuzzer target: the JOSE parsers a key broker client and the broker run on input from
 * the network: a flattened JWE (cg_jwe_decrypt with fixed EC and RSA keys), a JWT
 * (cg_jwt_verify), a JWK (cg_jose_key_from_jwk), JCS. No input may crash or leak, and no
 * random JWE may decrypt.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/jose.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cg_jose_key *ec, *rsa;
    if (ec == NULL && (cg_jose_key_generate(CG_JOSE_EC, &ec) != 0 ||
                       cg_jose_key_generate(CG_JOSE_RSA, &rsa) != 0))
        abort();
    char err[256];
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (j != NULL) {
        uint8_t *pt;
        size_t n;
        if (cg_jwe_decrypt(ec, j, &pt, &n, err, sizeof(err)) == 0 ||
            cg_jwe_decrypt(rsa, j, &pt, &n, err, sizeof(err)) == 0)
            abort(); /* nobody but us holds these keys */
        struct cg_jose_key *k;
        if (cg_jose_key_from_jwk(j, &k, err, sizeof(err)) == 0)
            cg_jose_key_free(k);
        char *c;
        if (cg_jcs(j, &c) == 0)
            free(c);
        json_decref(j);
    }
    char *tok = malloc(size + 1);
    if (tok == NULL)
        return 0;
    memcpy(tok, data, size);
    tok[size] = '\0';
    json_t *claims;
    if (cg_jwt_verify(ec, tok, 0, &claims, err, sizeof(err)) == 0)
        abort();
    uint8_t *p;
    size_t n;
    if (cg_b64url_decode(tok, 4096, &p, &n) == 0)
        free(p);
    free(tok);
    return 0;
}
