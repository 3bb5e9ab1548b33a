/* JOSE: base64, JWK, JWE (both algorithms), ES256 JWT, JCS; every check has a failing case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccgate/jose.h"

static void test_base64(void **state)
{
    (void)state;
    uint8_t *p;
    size_t n;
    char *s = cg_b64url_encode((const uint8_t *)"\xfb\xff\x01", 3);
    assert_string_equal(s, "-_8B");
    free(s);
    s = cg_b64_encode((const uint8_t *)"ab", 2);
    assert_string_equal(s, "YWI=");
    free(s);
    assert_int_equal(cg_b64url_decode("YWI", 16, &p, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(p, "ab", 2);
    free(p);
    assert_int_equal(cg_b64_decode("YWI=", 16, &p, &n), 0);
    free(p);
    assert_int_equal(cg_b64url_decode("YWI=", 16, &p, &n), CG_EEVIDENCE); /* padding */
    assert_int_equal(cg_b64_decode("YWI", 16, &p, &n), CG_EEVIDENCE);     /* no padding */
    assert_int_equal(cg_b64url_decode("YWJ", 16, &p, &n), CG_EEVIDENCE);  /* stray bits */
    assert_int_equal(cg_b64url_decode("Y WI", 16, &p, &n), CG_EEVIDENCE);
    assert_int_equal(cg_b64url_decode("Y", 16, &p, &n), CG_EEVIDENCE);
    assert_int_equal(cg_b64url_decode("YWJjZGVm", 3, &p, &n), CG_ELIMIT);
}

static struct cg_jose_key *roundtrip_key(struct cg_jose_key *k, int with_private)
{
    json_t *j = cg_jose_key_to_jwk(k, with_private);
    assert_non_null(j);
    struct cg_jose_key *back;
    char err[128];
    int rc = cg_jose_key_from_jwk(j, &back, err, sizeof(err));
    if (rc != 0)
        fail_msg("%s", err);
    json_decref(j);
    return back;
}

static void jwe_roundtrip(enum cg_jose_kty kty, const char *alg)
{
    struct cg_jose_key *k, *pub, *priv;
    assert_int_equal(cg_jose_key_generate(kty, &k), 0);
    pub = roundtrip_key(k, 0);
    priv = roundtrip_key(k, 1);
    const char msg[] = "{\"kty\":\"oct\",\"k\":\"secret\"}";
    json_t *jwe;
    assert_int_equal(cg_jwe_encrypt(pub, (const uint8_t *)msg, strlen(msg), &jwe), 0);
    uint8_t *pt;
    size_t n;
    char err[160];
    assert_int_equal(cg_jwe_decrypt(priv, jwe, &pt, &n, err, sizeof(err)), 0);
    assert_int_equal(n, strlen(msg));
    assert_memory_equal(pt, msg, n);
    free(pt);
    /* The public half cannot decrypt. */
    assert_int_equal(cg_jwe_decrypt(pub, jwe, &pt, &n, err, sizeof(err)), CG_ECONFIG);
    /* The header names the algorithm. */
    uint8_t *h;
    size_t hn;
    assert_int_equal(
        cg_b64url_decode(json_string_value(json_object_get(jwe, "protected")), 4096, &h, &hn), 0);
    assert_non_null(strstr((char *)h, alg));
    assert_non_null(strstr((char *)h, "\"enc\":\"A256GCM\""));
    free(h);

    /* One changed character in each member fails, each with its own message. */
    const char *members[] = {"protected", "encrypted_key", "iv", "ciphertext", "tag"};
    const char *expect[] = {"jwe.", "jwe.encrypted_key", "jwe.tag", "jwe.tag", "jwe.tag"};
    for (size_t i = 0; i < 5; i++) {
        json_t *t = json_deep_copy(jwe);
        char *s = strdup(json_string_value(json_object_get(t, members[i])));
        s[2] = s[2] == 'A' ? 'B' : 'A';
        json_object_set_new(t, members[i], json_string(s));
        free(s);
        err[0] = '\0';
        assert_int_not_equal(cg_jwe_decrypt(priv, t, &pt, &n, err, sizeof(err)), 0);
        if (strstr(err, expect[i]) == NULL)
            fail_msg("%s: %s", members[i], err);
        json_decref(t);
    }
    /* A missing member, an extra aad, a non-object. */
    json_t *t = json_deep_copy(jwe);
    json_object_del(t, "iv");
    assert_int_equal(cg_jwe_decrypt(priv, t, &pt, &n, err, sizeof(err)), CG_EEVIDENCE);
    assert_non_null(strstr(err, "jwe.iv"));
    json_object_set_new(t, "aad", json_string("AAAA"));
    assert_int_equal(cg_jwe_decrypt(priv, t, &pt, &n, err, sizeof(err)), CG_EEVIDENCE);
    assert_non_null(strstr(err, "aad"));
    json_decref(t);
    json_decref(jwe);
    cg_jose_key_free(k);
    cg_jose_key_free(pub);
    cg_jose_key_free(priv);
}

static void test_jwe_ec(void **state)
{
    (void)state;
    jwe_roundtrip(CG_JOSE_EC, "ECDH-ES+A256KW");
}

static void test_jwe_rsa(void **state)
{
    (void)state;
    jwe_roundtrip(CG_JOSE_RSA, "RSA-OAEP-256");
}

static void test_jwe_header_checks(void **state)
{
    (void)state;
    struct cg_jose_key *ec, *rsa;
    assert_int_equal(cg_jose_key_generate(CG_JOSE_EC, &ec), 0);
    assert_int_equal(cg_jose_key_generate(CG_JOSE_RSA, &rsa), 0);
    json_t *jwe;
    uint8_t *pt;
    size_t n;
    char err[160];
    /* A JWE for an RSA key offered to an EC key: the alg check names it. */
    assert_int_equal(cg_jwe_encrypt(rsa, (const uint8_t *)"x", 1, &jwe), 0);
    assert_int_equal(cg_jwe_decrypt(ec, jwe, &pt, &n, err, sizeof(err)), CG_EEVIDENCE);
    assert_non_null(strstr(err, "jwe.protected.alg"));
    json_decref(jwe);
    /* Headers with another enc, with zip, and with an off-curve epk. */
    const char *hdrs[] = {
        "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A128GCM\"}",
        "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"zip\":\"DEF\"}",
        "{\"alg\":\"ECDH-ES+A256KW\",\"enc\":\"A256GCM\",\"epk\":{\"kty\":\"EC\",\"crv\":"
        "\"P-256\",\"x\":\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"y\":"
        "\"AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}}",
    };
    const char *want[] = {"jwe.protected.enc", "zip", "jwe.protected.epk"};
    for (size_t i = 0; i < 3; i++) {
        char *prot = cg_b64url_encode((const uint8_t *)hdrs[i], strlen(hdrs[i]));
        jwe = json_pack("{s:s,s:s,s:s,s:s,s:s}", "protected", prot, "encrypted_key",
                        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "iv",
                        "AAAAAAAAAAAAAAAA", "ciphertext", "AA", "tag", "AAAAAAAAAAAAAAAAAAAAAA");
        assert_int_equal(cg_jwe_decrypt(ec, jwe, &pt, &n, err, sizeof(err)), CG_EEVIDENCE);
        if (strstr(err, want[i]) == NULL)
            fail_msg("%zu: %s", i, err);
        json_decref(jwe);
        free(prot);
    }
    /* A member in both the protected and the unprotected header. */
    assert_int_equal(cg_jwe_encrypt(ec, (const uint8_t *)"x", 1, &jwe), 0);
    json_object_set_new(jwe, "header", json_pack("{s:s}", "enc", "A128GCM"));
    assert_int_equal(cg_jwe_decrypt(ec, jwe, &pt, &n, err, sizeof(err)), CG_EEVIDENCE);
    assert_non_null(strstr(err, "jwe.header.enc"));
    json_decref(jwe);
    cg_jose_key_free(ec);
    cg_jose_key_free(rsa);
}

static void test_jwk_checks(void **state)
{
    (void)state;
    struct cg_jose_key *k;
    char err[160];
    json_t *j = json_pack("{s:s,s:s,s:s,s:s}", "kty", "EC", "crv", "P-384", "x", "AA", "y", "AA");
    assert_int_equal(cg_jose_key_from_jwk(j, &k, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "jwk.crv"));
    json_decref(j);
    /* An off-curve point. */
    j = json_pack("{s:s,s:s,s:s,s:s}", "kty", "EC", "crv", "P-256", "x",
                  "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "y",
                  "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_int_equal(cg_jose_key_from_jwk(j, &k, err, sizeof(err)), CG_ECONFIG);
    json_decref(j);
    /* A small RSA modulus. */
    j = json_pack("{s:s,s:s,s:s}", "kty", "RSA", "n", "AQAB", "e", "AQAB");
    assert_int_equal(cg_jose_key_from_jwk(j, &k, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "jwk.n"));
    json_decref(j);
    j = json_pack("{s:s}", "kty", "OKP");
    assert_int_equal(cg_jose_key_from_jwk(j, &k, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "jwk.kty"));
    json_decref(j);
    /* oct keys round-trip. */
    j = json_pack("{s:s,s:s}", "kty", "oct", "k", "AAECAw");
    assert_int_equal(cg_jose_key_from_jwk(j, &k, err, sizeof(err)), 0);
    size_t n;
    const uint8_t *p = cg_jose_key_oct(k, &n);
    assert_int_equal(n, 4);
    assert_int_equal(p[3], 3);
    cg_jose_key_free(k);
    json_decref(j);
}

static void test_jwt(void **state)
{
    (void)state;
    struct cg_jose_key *k, *other;
    assert_int_equal(cg_jose_key_generate(CG_JOSE_EC, &k), 0);
    assert_int_equal(cg_jose_key_generate(CG_JOSE_EC, &other), 0);
    json_t *claims = json_pack("{s:I,s:s}", "exp", (json_int_t)2000, "tee", "sim");
    char *tok, err[160];
    assert_int_equal(cg_jwt_sign(k, claims, &tok), 0);
    json_t *back;
    assert_int_equal(cg_jwt_verify(k, tok, 1000, &back, err, sizeof(err)), 0);
    assert_string_equal(json_string_value(json_object_get(back, "tee")), "sim");
    json_decref(back);
    assert_int_equal(cg_jwt_verify(k, tok, 2000, &back, err, sizeof(err)), CG_EEVIDENCE);
    assert_non_null(strstr(err, "jwt.exp"));
    assert_int_equal(cg_jwt_verify(other, tok, 1000, &back, err, sizeof(err)), CG_EEVIDENCE);
    assert_non_null(strstr(err, "jwt.signature"));
    /* A changed claim breaks the signature. */
    char *dot = strchr(tok, '.');
    dot[3] = dot[3] == 'A' ? 'B' : 'A';
    assert_int_equal(cg_jwt_verify(k, tok, 1000, &back, err, sizeof(err)), CG_EEVIDENCE);
    free(tok);
    /* alg none is refused. */
    assert_int_equal(cg_jwt_verify(k, "eyJhbGciOiJub25lIn0.e30.", 1000, &back, err, sizeof(err)),
                     CG_EEVIDENCE);
    json_decref(claims);
    cg_jose_key_free(k);
    cg_jose_key_free(other);
}

static void test_jcs(void **state)
{
    (void)state;
    json_t *v = json_loads("{\"b\": [1, \"x/y\"], \"a\": {\"d\": null, \"c\": true}}", 0, NULL);
    char *s;
    assert_int_equal(cg_jcs(v, &s), 0);
    assert_string_equal(s, "{\"a\":{\"c\":true,\"d\":null},\"b\":[1,\"x/y\"]}");
    free(s);
    json_decref(v);
    v = json_loads("{\"a\": 1.5}", 0, NULL);
    assert_int_equal(cg_jcs(v, &s), CG_EEVIDENCE);
    json_decref(v);
    v = json_loads("{\"a\": \"\\u0001\"}", 0, NULL);
    assert_int_equal(cg_jcs(v, &s), CG_EEVIDENCE);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),     cmocka_unit_test(test_jwe_ec),
        cmocka_unit_test(test_jwe_rsa),    cmocka_unit_test(test_jwe_header_checks),
        cmocka_unit_test(test_jwk_checks), cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_jcs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
