#ifndef KB_RCAR_H
#define KB_RCAR_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ccgate/audit.h"
#include "ccgate/buf.h"
#include "kb_config.h"

/*
 * The broker's side of RCAR 0.4.0 without any I/O: requests in, responses out, every
 * decision into the audit log. Sessions: POST /kbs/v0/auth opens one (cookie
 * kbs-session-id, a 32-byte nonce); POST /kbs/v0/attest consumes its nonce once, verifies
 * the evidence (genuine, bound to tee-pubkey and the nonce) and returns an ES256 token;
 * GET /kbs/v0/resource/R (cookie or "Authorization: Bearer <token>") appraises that
 * evidence against R's policy and releases R once, as a JWE to tee-pubkey. A session
 * lives session_timeout_s from auth.
 */

#define KB_MAX_SESSIONS 1024
#define KB_MAX_BODY (1024 * 1024)

struct kb_broker;

struct kb_request {
    const char *method;
    const char *target;
    const char *cookie;        /* the Cookie header, or NULL */
    const char *authorization; /* the Authorization header, or NULL */
    const char *peer;          /* client address, for the audit log */
    const char *body;          /* NUL-terminated */
    size_t body_len;
    time_t now;
};

struct kb_response {
    int status;
    char set_cookie[128]; /* "" when none */
    struct cg_buf body;   /* JSON; initialized by kb_broker_handle, caller frees */
};

/*
 * A broker for c (borrowed) writing to audit (borrowed): generates its token-signing key.
 * Returns 0 or a negative code.
 */
int kb_broker_new(const struct kb_config *c, struct cg_audit *audit, struct kb_broker **out);
void kb_broker_free(struct kb_broker *b);

/* Answers one request (always fills rs): kb_broker_begin, then the job's steps in place. */
void kb_broker_handle(struct kb_broker *b, const struct kb_request *rq, struct kb_response *rs);

/*
 * The same in steps, so that the evidence is verified off the event loop. Returns with *job
 * NULL and rs filled, or, for an /kbs/v0/attest that passed the checks before verification,
 * with *job set and rs empty (nothing to free): the session waits ("session.verifying") with
 * its nonce spent. Then kb_attest_job_verify(job) on any thread (it touches only the job, and
 * the broker's config, read-only), then kb_attest_job_finish() on the broker's thread, which
 * fills rs, records the decision and frees job. The job owns copies of what it needs: the
 * session may expire meanwhile (finish then denies with "session.expired").
 */
struct kb_attest_job;
void kb_broker_begin(struct kb_broker *b, const struct kb_request *rq, struct kb_response *rs,
                     struct kb_attest_job **job);
void kb_attest_job_verify(struct kb_attest_job *job);
void kb_attest_job_finish(struct kb_broker *b, struct kb_attest_job *job, struct kb_response *rs);

#endif
