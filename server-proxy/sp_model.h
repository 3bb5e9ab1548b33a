#ifndef SP_MODEL_H
#define SP_MODEL_H

#include <stddef.h>
#include <uv.h>

#include "ccgate/addr.h"
#include "ccgate/cbor.h"
#include "sp_attester.h"

/*
 * Which sealed model the upstream loaded: GET /health of the upstream (ccgate-worker answers
 * "sealed": {"name", "version", "sha256"}) every interval_s, from libuv's thread pool; the
 * answer goes into the attestation claims (sp_attester_set_model), so that clients see, and
 * their policy can pin, the model the TEE serves. Until the first answer it asks every second.
 * An upstream without "sealed" in its /health (a plain model, another server) gives no claim.
 */
struct sp_model_query;

int sp_model_query_start(uv_loop_t *loop, const struct cg_addr *upstream, unsigned interval_s,
                         struct sp_attester *a, struct sp_model_query **out);

/* Stops asking; frees itself once a query in flight has returned. */
void sp_model_query_close(struct sp_model_query *q);

/* Parses a /health body: 0 with *m (present 0 when the body names no sealed model), or
 * CG_EEVIDENCE with err naming the member and what was expected. */
int sp_model_parse_health(const char *body, size_t len, struct cg_model_claim *m, char *err,
                          size_t errlen);

#endif
