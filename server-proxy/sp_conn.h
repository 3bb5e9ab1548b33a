#ifndef SP_CONN_H
#define SP_CONN_H

/* The server's connection, shared by the relay (sp_proxy.c) and the message layer (sp_msg.c). */

#include <stdint.h>

#include "ccgate/buf.h"
#include "ccgate/conn.h"
#include "ccgate/http.h"
#include "ccgate/stream.h"
#include "ccgate/token.h"
#include "sp_proxy.h"

#define TRACK_MAX 64 /* pipelined requests followed (access control: waited for beyond) */
#define EARLY_MAX (CG_STREAM_HIGH_WATER + 64 * 1024)

struct sp_reqlog;

/* What the connection's one timer means now. */
enum sp_phase {
    PH_HANDSHAKE,  /* the client's TLS handshake */
    PH_CONNECTING, /* connecting to the upstream */
    PH_RELAY,      /* relaying; the timer is the idle timeout */
    PH_GRACE,      /* stopping, idle: a request may still arrive */
    PH_LINGER,     /* a 502 sent or close_notify sent: waiting for the client to close */
};

/* Where the request side stands (fed message by message: access control). */
enum sp_rq {
    RQ_IDLE,   /* between requests */
    RQ_HEAD,   /* a head began; access control holds its bytes */
    RQ_PASS,   /* the head was forwarded: the rest of the message follows it */
    RQ_DROP,   /* refused (401): the rest of the message is read and dropped */
    RQ_CLOSED, /* refused without a way to go on: input ignored until the connection ends */
};

struct sp_conn {
    struct cg_conn conn;
    struct sp_server *srv;
    struct cg_stream down; /* RA-TLS towards the client sidecar: legs[0] */
    struct cg_stream up;   /* plain towards the upstream: legs[1] once initialized */
    struct sp_waiter waiter;
    struct cg_buf early; /* client bytes that arrived before the upstream connected */
    /* HTTP mode: the bytes pass untouched, but parsers follow the message boundaries so that
     * a stop can end a connection between messages (the client pools them). */
    struct cg_http_parser *reqp, *respp;
    uint8_t is_head[TRACK_MAX]; /* per request awaiting its response: was it HEAD */
    uint32_t t0_us[TRACK_MAX];  /* ... and when its head arrived (low 32 bits of µs) */
    struct sp_reqlog **logs;    /* access log: TRACK_MAX slots, one per request awaiting */
    struct sp_reqlog *cur;      /* access log: the request being received */
    struct sp_reqlog *rej_log;  /* access log: the refused request (its 401 not sent yet) */
    size_t track_head, track_len;
    uint64_t req_seq;
    uint64_t req_bytes, resp_bytes; /* body bytes of the messages being received */
    enum sp_rq rq;
    struct cg_buf hold;                /* access control: a request head held until complete */
    struct cg_buf pending;             /* client bytes read while the request side is blocked */
    enum cg_token_fail refused;        /* why the request in RQ_DROP (or its waiting 401) was */
    const struct cg_http_header *auth; /* during on_head: the Authorization header */
    int tracking; /* boundaries known; 0 after an upgrade, a parse error or an overflow */
    int resp_status;
    struct cg_buf held; /* stopping: a response head held until complete (Connection: close) */
    size_t held_scan;   /* where the search for the head's end resumes */
    enum sp_phase phase;
    unsigned up_inited : 1, up_connected : 1, up_dead : 1, announced : 1, answered_since_stop : 1,
        grace_over : 1;
    unsigned gated : 1,      /* access control on */
        by_message : 1,      /* the request side is fed message by message (= gated) */
        req_paused : 1,      /* the request parser stopped at a boundary */
        refused_v1 : 1,      /* the refused request's path is an OpenAI one (/v1/...) */
        refused_close : 1,   /* ... and the connection cannot go on after its 401 */
        refused_head : 1,    /* ... and it was a HEAD request (its 401 has no body) */
        reject_waiting : 1,  /* a 401 waits for the responses to earlier requests */
        upgrade_waiting : 1, /* access control: an Upgrade request forwarded, no 101 yet */
        upgrade_refused : 1, /* ... and its answer was not 101 */
        tunnel : 1,          /* the upstream switched protocols: bytes pass as they are */
        req_ended : 1;       /* the request parser completed a message in this feed */
};

/* sp_proxy.c: the one close path; a clean end (close_notify and FIN both ways, then linger). */
void sp_conn_close(struct sp_conn *c, int err, const char *reason);
void sp_end_gracefully(struct sp_conn *c);

/*
 * sp_msg.c, HTTP mode: the message layer. sp_msg_init creates the parsers that follow message
 * boundaries both ways (0 or UV_ENOMEM); sp_msg_free frees what the layer holds.
 * sp_msg_from_client takes the client's bytes: with access control on it feeds them message
 * by message (heads held and checked), forwards what passes
 * (into early before the upstream is connected) and returns 1; otherwise it only follows them
 * and returns 0: the caller forwards them. sp_msg_track_response follows
 * the upstream's bytes (the caller relays them). sp_msg_unblock runs after upstream bytes: a
 * waiting 401, the bytes kept meanwhile, reading resumed. sp_msg_blocked: the request side
 * waits (reading stays stopped). sp_msg_between: every request answered, nothing half-parsed,
 * queued or held. sp_msg_count_status counts an answer in the server's metrics.
 */
int sp_msg_init(struct sp_conn *c);
void sp_msg_free(struct sp_conn *c);
int sp_msg_from_client(struct sp_conn *c, const uint8_t *data, size_t len);
void sp_msg_track_response(struct sp_conn *c, const uint8_t *data, size_t len);
void sp_msg_unblock(struct sp_conn *c);
int sp_msg_blocked(const struct sp_conn *c);
int sp_msg_between(const struct sp_conn *c);
void sp_msg_count_status(struct sp_server *srv, int status);

#endif
