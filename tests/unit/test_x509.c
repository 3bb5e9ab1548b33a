/* x509: one DER certificate exactly, and the roots pinned at build time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ccgate/x509.h"

static void test_pinned(void **state)
{
    (void)state;
    X509 *x = cg_x509_pinned("amd/ark_milan.pem");
    assert_non_null(x);
    X509_free(x);
    assert_null(cg_x509_pinned("amd/no_such_root.pem"));
}

static void test_der_exact(void **state)
{
    (void)state;
    X509 *root = cg_x509_pinned("intel/sgx_root_ca.pem");
    assert_non_null(root);
    unsigned char *der = NULL;
    int n = i2d_X509(root, &der);
    assert_true(n > 0);
    X509 *x = cg_x509_der(der, (size_t)n);
    assert_non_null(x);
    assert_int_equal(X509_cmp(x, root), 0);
    X509_free(x);
    /* One byte more or less than the certificate, nothing, or no buffer: refused. */
    unsigned char *longer = malloc((size_t)n + 1);
    assert_non_null(longer);
    memcpy(longer, der, (size_t)n);
    longer[n] = 0;
    assert_null(cg_x509_der(longer, (size_t)n + 1));
    assert_null(cg_x509_der(der, (size_t)n - 1));
    assert_null(cg_x509_der(der, 0));
    assert_null(cg_x509_der(NULL, 10));
    free(longer);
    OPENSSL_free(der);
    X509_free(root);
}

/* The leaf-key rule of the SNP and GPU verifiers: EC P-384 only, and the verdict names what
 * else it was. */
static void test_key_p384(void **state)
{
    (void)state;
    static const struct {
        const char *root, *what;
        int ok;
    } cases[] = {
        {"nvidia/device_identity_ca.pem", "secp384r1", 1},
        {"intel/sgx_root_ca.pem", "prime256v1", 0},
        {"amd/ark_milan.pem", "another key type", 0}, /* RSA */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        X509 *x = cg_x509_pinned(cases[i].root);
        assert_non_null(x);
        char what[32];
        assert_int_equal(cg_x509_key_p384(x, what, sizeof(what)), cases[i].ok);
        assert_string_equal(what, cases[i].what);
        X509_free(x);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pinned),
        cmocka_unit_test(test_der_exact),
        cmocka_unit_test(test_key_p384),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
