#include "cp_errors.h"

#include <stdio.h>
#include <string.h>

#include "ccgate/json.h"

/* What each error means to an app: its OpenAI type, whether sending again can help, and the
 * words that begin its message. */
struct kind {
    const char *error;
    const char *type;
    int retry; /* -1: server_closed, retryable unless the client already sent it again */
    const char *summary;
};

static const struct kind kinds[] = {
    {"attestation_failed", "ccgate_attestation_error", 0,
     "the server failed attestation, nothing was sent"},
    {"server_unreachable", "ccgate_unavailable", 1,
     "the attested server could not be reached, nothing was sent"},
    {"too_many_connections", "ccgate_unavailable", 1, "the client sidecar is at max-connections"},
    {"bad_request", "ccgate_request_error", 0, "the request was refused"},
    {"request_timeout", "ccgate_request_error", 1, "the request head did not arrive in time"},
    {"server_closed", "ccgate_server_error", -1, "the server connection ended before an answer"},
    {"upstream_timeout", "ccgate_server_error", 0, "no response from the server in time"},
};

/* An error name missing above (a bug) still gets a valid, non-retryable answer. */
static const struct kind unknown = {"", "ccgate_error", 0, "the request failed"};

static const struct kind *kind_of(const char *error)
{
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].error, error) == 0)
            return &kinds[i];
    return &unknown;
}

int cp_error_retry(const struct cp_error *e)
{
    int r = kind_of(e->error)->retry;
    return r < 0 ? !e->retried : r;
}

const char *cp_error_type(const struct cp_error *e)
{
    return kind_of(e->error)->type;
}

/* The fields of the plain shape after "error", shared with the OpenAI shape's "ccgate". */
static void details(struct cg_buf *out, const struct cp_error *e)
{
    if (e->v != NULL) {
        (void)cg_buf_printf(out, ", \"check\": ");
        cg_json_str(out, e->v->check);
        (void)cg_buf_printf(out, ", \"expected\": ");
        cg_json_str(out, e->v->expected);
        (void)cg_buf_printf(out, ", \"actual\": ");
        cg_json_str(out, e->v->actual);
    }
    if (e->reason != NULL) {
        (void)cg_buf_printf(out, ", \"reason\": ");
        cg_json_str(out, e->reason);
    }
    if (e->server != NULL) {
        (void)cg_buf_printf(out, ", \"server\": ");
        cg_json_str(out, e->server);
    }
    if (strcmp(e->error, "server_closed") == 0)
        (void)cg_buf_printf(out, ", \"retried\": %s", e->retried ? "true" : "false");
}

void cp_error_body(struct cg_buf *out, const struct cp_error *e, int openai)
{
    if (!openai) {
        (void)cg_buf_printf(out, "{\"error\": ");
        cg_json_str(out, e->error);
        details(out, e);
        (void)cg_buf_printf(out, "}\n");
        return;
    }
    const struct kind *k = kind_of(e->error);
    char msg[1024];
    if (e->v != NULL)
        snprintf(msg, sizeof(msg), "ccgate: %s: check %s failed: expected %s, actual %s",
                 k->summary, e->v->check, e->v->expected, e->v->actual);
    else if (e->reason != NULL)
        snprintf(msg, sizeof(msg), "ccgate: %s: %s", k->summary, e->reason);
    else
        snprintf(msg, sizeof(msg), "ccgate: %s", k->summary);
    (void)cg_buf_printf(out, "{\"error\": {\"message\": ");
    cg_json_str(out, msg);
    (void)cg_buf_printf(out, ", \"type\": ");
    cg_json_str(out, k->type);
    (void)cg_buf_printf(out, ", \"code\": ");
    cg_json_str(out, e->v != NULL ? e->v->check : e->error);
    (void)cg_buf_printf(out, ", \"param\": null, \"ccgate\": {\"error\": ");
    cg_json_str(out, e->error);
    details(out, e);
    (void)cg_buf_printf(out, "}}}\n");
}
