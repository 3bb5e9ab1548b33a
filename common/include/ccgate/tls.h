#ifndef CCGATE_TLS_H
#define CCGATE_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "ccgate/err.h"
#include "ccgate/ratls.h"

/*
 * The attested TLS 1.3 channel as an engine that does no I/O: ciphertext goes in with
 * cg_tls_feed() and comes out with cg_tls_take_out(); plaintext with cg_tls_read() and
 * cg_tls_write(). Two memory BIOs underneath; the caller moves bytes and owns backpressure.
 * The engine appraises nothing itself: a client context takes a verify callback (as picotls
 * does), and the caller's module decides what to trust and how long to remember it.
 */

#define CG_TLS_WANT (-5101)    /* needs more input (or pending output to be sent) */
#define CG_TLS_PENDING (-5102) /* server: handshake waits for a certificate (evidence) */
#define CG_TLS_CLOSED 0        /* cg_tls_read(): the peer sent close_notify */

#define CG_ALPN_HTTP "http/1.1"
#define CG_ALPN_TCP "ccgate-tcp"

/* ClientHello extension carrying the client's 32-byte nonce (private-use code point). */
#define CG_TLS_NONCE_EXT 0xFFCCu

struct cg_tls_ctx;
struct cg_tls;

/*
 * Server: asked once per handshake, from the ClientHello, for the certificate to present.
 * nonce is the client's nonce or NULL. Return 0 after calling cg_tls_use_cert(), or
 * CG_TLS_PENDING to park the handshake (cg_tls_handshake() then returns CG_TLS_PENDING until
 * the caller calls cg_tls_use_cert() and cg_tls_handshake() again), or an error to abort.
 */
typedef int (*cg_tls_cert_cb)(void *arg, struct cg_tls *t, const uint8_t *nonce);

/* Server context: TLS 1.3 only, AES-256-GCM / ChaCha20-Poly1305 / AES-128-GCM, the ALPN
 * given (a client offering another fails), session tickets on. Caller frees. */
int cg_tls_server_ctx_new(const char *alpn, cg_tls_cert_cb cb, void *cb_arg,
                          struct cg_tls_ctx **out);

/*
 * Client: decides on the server's leaf certificate, inside the handshake (OpenSSL's verify
 * step; chain building is not used). der is the certificate; cg_tls_cert_hash(),
 * cg_tls_peer_spki(), cg_tls_sent_nonce() and cg_tls_nonce() describe it and this connection.
 * Return 0 to accept, or a negative code (CG_EEVIDENCE, CG_EPOLICY, ...) after filling
 * *verdict (check, expected, actual): the handshake then fails with that code and
 * cg_tls_verdict() returns the verdict.
 */
typedef int (*cg_tls_verify_cb)(void *arg, struct cg_tls *t, const uint8_t *der, size_t der_len,
                                struct cg_verdict *verdict);

/*
 * Client context: TLS 1.3 only, the ALPN given (required of the server), the certificate
 * decided by verify (borrowed arg). Holds one session ticket, stored only from a handshake
 * that verify accepted (or that resumed such a session); cg_tls_ctx_ticket() tells which key
 * it belongs to and when it arrived, and the caller offers it (CG_TLS_TICKET) only while it
 * trusts that key. Caller frees.
 */
int cg_tls_client_ctx_new(const char *alpn, cg_tls_verify_cb verify, void *verify_arg,
                          struct cg_tls_ctx **out);

/* Client: whether a resumable ticket is held; its key's SPKI hash and when it was stored. */
int cg_tls_ctx_ticket(const struct cg_tls_ctx *c, uint8_t spki[32], time_t *stored_at);

/* Client: forgets the ticket (the caller no longer trusts its key). */
void cg_tls_ctx_drop_ticket(struct cg_tls_ctx *c);

/* Frees a context; its connections must have been freed before. */
void cg_tls_ctx_free(struct cg_tls_ctx *c);

/*
 * A client context that trusts nothing and verifies nothing: every handshake completes and
 * keeps the server's certificate for the caller, who must verify it (cg_ratls_verify() with
 * the nonce this connection sent) before believing any of it. For `ccgate policy
 * from-evidence` only. Caller frees.
 */
int cg_tls_client_ctx_new_capture(const char *alpn, struct cg_tls_ctx **out);

/* Capture contexts: the server's certificate (DER, owned by t) or NULL. */
const uint8_t *cg_tls_peer_cert(const struct cg_tls *t, size_t *len);

/* Client: the nonce this connection sent (meaningful when cg_tls_sent_nonce()). */
const uint8_t *cg_tls_nonce(const struct cg_tls *t);

#define CG_TLS_NONCE 1u  /* client: send a fresh random nonce (CG_TLS_NONCE_EXT) */
#define CG_TLS_TICKET 2u /* client, without CG_TLS_NONCE: offer the ticket held, if any */

/* A connection (flags: 0 for a server); caller frees with cg_tls_free(). */
int cg_tls_new(struct cg_tls_ctx *c, unsigned flags, struct cg_tls **out);
void cg_tls_free(struct cg_tls *t);

/* Caller data attached to a connection (for the server callback). */
void cg_tls_set_data(struct cg_tls *t, void *data);
void *cg_tls_get_data(const struct cg_tls *t);

/* Server: sets the certificate (DER) and key for this handshake; data is copied. */
int cg_tls_use_cert(struct cg_tls *t, const uint8_t *der, size_t der_len,
                    const struct cg_ratls_key *key);

/* Hands ciphertext received from the network to the engine. Never refuses bytes. */
int cg_tls_feed(struct cg_tls *t, const uint8_t *data, size_t len);

/* Advances the handshake: 0 when complete, CG_TLS_WANT, CG_TLS_PENDING, or CG_ETLS /
 * CG_EEVIDENCE / CG_EPOLICY (the client's appraisal failed: cg_tls_verdict() says why). */
int cg_tls_handshake(struct cg_tls *t);

/* Reads plaintext: >0 bytes, CG_TLS_CLOSED on close_notify, CG_TLS_WANT, or CG_ETLS (also
 * before the handshake completed). Call it until CG_TLS_WANT: the records that completed the
 * handshake may be followed by application data already fed. */
long cg_tls_read(struct cg_tls *t, uint8_t *buf, size_t cap);

/* Encrypts all len bytes (records go to the output queue); returns len or CG_ETLS (also
 * before the handshake completed, and after cg_tls_shutdown()). */
long cg_tls_write(struct cg_tls *t, const uint8_t *data, size_t len);

/* Queues close_notify (never after a fatal error, nor before the handshake completed). */
void cg_tls_shutdown(struct cg_tls *t);

/* Bytes of ciphertext waiting to be sent, and taking them (returns count copied). */
size_t cg_tls_pending_out(const struct cg_tls *t);
size_t cg_tls_take_out(struct cg_tls *t, uint8_t *buf, size_t cap);

/* After a failed client handshake: why the appraisal failed (check, expected, actual). */
const struct cg_verdict *cg_tls_verdict(const struct cg_tls *t);

/* Client: whether this connection carried a nonce. */
int cg_tls_sent_nonce(const struct cg_tls *t);

/* Client, from the verify callback on: SHA-256 of the server's SubjectPublicKeyInfo (after a
 * resumption: of the key of the ticket's session). */
void cg_tls_peer_spki(const struct cg_tls *t, uint8_t out[32]);

/* After the handshake: whether it resumed a session from a ticket (no certificate was sent;
 * the client only offers tickets of verified sessions of the key it remembers). */
int cg_tls_resumed(const struct cg_tls *t);

/* Server: SHA-256 of the certificate presented. Client: of the certificate received (after a
 * resumption: of the one received in the session's original, verified handshake). */
void cg_tls_cert_hash(const struct cg_tls *t, uint8_t out[32]);

#endif
