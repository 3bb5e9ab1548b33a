#ifndef CP_FWD_H
#define CP_FWD_H

#include <stddef.h>
#include <stdint.h>

#include "ccgate/http.h"
#include "ccgate/httpmsg.h"

/*
 * The forwarder: how one parsed HTTP message goes on to the next hop. The head is rewritten
 * (cg_http_head_write: hop-by-hop headers out, Via in, framing re-derived); a body delimited
 * by Content-Length or by the close passes through as received; a chunked one is re-chunked
 * from the parser's decoded pieces (its extensions and trailers are dropped, so nothing the
 * parser did not check reaches the next hop). The client sidecar forwards with it both ways
 * and tests/fuzz/fuzz_proxy_http.c checks it against a second parser.
 */

/* Receives the bytes for the next hop; data is borrowed for the call only. */
typedef void (*cp_fwd_out_fn)(void *arg, const void *data, size_t len);

struct cp_fwd {
    cp_fwd_out_fn out;
    void *arg;
    enum cg_http_framing framing; /* how the current message's body goes out */
    /* When set (borrowed, a valid id), the next head carries exactly one
     * "x-request-id: <request_id>": others of that name are dropped. */
    const char *request_id;
    uint64_t body_bytes; /* decoded body bytes of the current message so far */
};

/* Writes the rewritten head of h; keep_alive says whether this hop keeps the connection.
 * Returns 0, CG_ELIMIT (head too large) or CG_EHTTP (not writable): nothing was written. */
int cp_fwd_head(struct cp_fwd *f, const struct cg_http_head *h, int keep_alive);

/* Writes one decoded body piece (len > 0) in the framing announced by the head. */
void cp_fwd_body(struct cp_fwd *f, const uint8_t *data, size_t len);

/* The message is complete: writes the last chunk when re-chunking. */
void cp_fwd_end(struct cp_fwd *f);

/*
 * Request ids. The app's x-request-id is passed on when it is one header and a valid id
 * (cg_httpmsg_request_id_valid); otherwise the client makes one. Either way the server gets it
 * and the app's answer carries it.
 */
#define CP_REQUEST_ID_MAX CG_REQUEST_ID_MAX

/* Copies h's x-request-id into out (NUL-terminated) and returns 1 when h has exactly one
 * and it is valid; else returns 0 and out is "". */
int cp_fwd_request_id_take(const struct cg_http_head *h, char out[CP_REQUEST_ID_MAX + 1]);

/* Writes a new request id into out: 32 lower-case hex digits, a random per-process half and a
 * half that never repeats within the process. */
void cp_fwd_request_id_new(char out[33]);

#endif
