#ifndef CCGATE_X509_H
#define CCGATE_X509_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

/*
 * X.509 helpers the verifiers share (SNP, TDX, NVIDIA GPU, RIMs, OCSP); only verifier modules
 * include this header, as only they see OpenSSL types.
 */

/* Exactly one DER certificate in der[0..len) (no trailing bytes). Caller frees; NULL when
 * der is NULL, empty or not one well-formed certificate. */
X509 *cg_x509_der(const uint8_t *der, size_t len);

/* The root pinned at build time under name (a path below certs/, e.g. "amd/ark_milan.pem"),
 * parsed. Caller frees; NULL when no such root is embedded. */
X509 *cg_x509_pinned(const char *name);

/* Whether x's public key is EC P-384 (what AMD's VCEK/VLEK and NVIDIA's device keys are):
 * 1 or 0; the key's group name, or "another key type", goes to what[0..n) for a verdict. */
int cg_x509_key_p384(const X509 *x, char *what, size_t n);

#endif
