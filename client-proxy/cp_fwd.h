#ifndef CP_FWD_H
#define CP_FWD_H

#include <stddef.h>
#include <stdint.h>

#include "ccgate/http.h"

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
};

/* Writes the rewritten head of h; keep_alive says whether this hop keeps the connection.
 * Returns 0, CG_ELIMIT (head too large) or CG_EHTTP (not writable): nothing was written. */
int cp_fwd_head(struct cp_fwd *f, const struct cg_http_head *h, int keep_alive);

/* Writes one decoded body piece (len > 0) in the framing announced by the head. */
void cp_fwd_body(struct cp_fwd *f, const uint8_t *data, size_t len);

/* The message is complete: writes the last chunk when re-chunking. */
void cp_fwd_end(struct cp_fwd *f);

#endif
