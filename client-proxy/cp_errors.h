#ifndef CP_ERRORS_H
#define CP_ERRORS_H

#include "ccgate/buf.h"
#include "ccgate/err.h"

/*
 * The errors the client sidecar answers itself, in two shapes. On an OpenAI API path (see
 * cg_httpmsg_openai_path) the body is what the OpenAI SDKs parse:
 *   {"error": {"message": "...", "type": "ccgate_attestation_error", "code": "snp.measurement",
 *              "param": null, "ccgate": {"error": "attestation_failed", "check": ...}}}
 * with code the failed check's name (or the error's name when no check failed) and an
 * x-should-retry header that tells the SDKs whether sending again can help. Elsewhere the
 * plain ccgate shape: {"error": "attestation_failed", "check": ..., "expected": ...}.
 * docs/guide.md "Errors the app sees" lists every error, its status, type and retry.
 */

/* One error answer. The strings are borrowed. */
struct cp_error {
    int status;
    const char *error;          /* its name: "attestation_failed", "bad_request", ... */
    const struct cg_verdict *v; /* the failed check, or NULL */
    const char *reason;         /* NULL or a short text */
    const char *server;         /* NULL or the server's address */
    int retried;                /* server_closed: whether the client sent it again already */
};

/* The x-should-retry value for e: 1 when the same request may succeed if sent again (the
 * server could not be reached, the client was full), 0 otherwise (a failed appraisal never). */
int cp_error_retry(const struct cp_error *e);

/* The OpenAI "type" of e ("ccgate_attestation_error", ...). */
const char *cp_error_type(const struct cp_error *e);

/* Appends e's JSON body, newline-terminated: the OpenAI shape when openai, else the plain one.
 * out needs room for CP_ERROR_BODY_MAX bytes (the texts are bounded, escaping at most 6x). */
#define CP_ERROR_BODY_MAX 16384
void cp_error_body(struct cg_buf *out, const struct cp_error *e, int openai);

#endif
