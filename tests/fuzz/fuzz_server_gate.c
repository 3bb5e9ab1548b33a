/*
 * libFuzzer target for ccgate-server's access control (server-proxy/sp_msg.c): the client's
 * bytes, split at points the first input byte seeds, go through the request side with
 * --tokens on and the access log on, the upstream not yet connected (what passes is kept in
 * the connection's early buffer) and no response ever coming. Invariants: what reaches the
 * upstream parses as HTTP/1.1 with no Authorization header, and its requests are, in order, a
 * prefix of the input's requests that carried exactly one listed bearer token.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccgate/http.h"
#include "ccgate/token.h"
#include "sp_conn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOKEN "0123456789abcdef0123456789abcdef"
#define MAX_TARGETS 256

static struct cg_tokens *tokens;

/* sp_proxy.c's two functions, as far as the message layer can tell. */
void sp_conn_close(struct sp_conn *c, int err, const char *reason)
{
    (void)err;
    (void)reason;
    c->conn.state = CG_CONN_CLOSING;
}

void sp_end_gracefully(struct sp_conn *c)
{
    c->down.shut = 1;
}

/* The request heads a parse saw: "1 TARGET" for one with a listed token, "0 TARGET" else. */
struct seen {
    char targets[MAX_TARGETS][32];
    int n, auth_headers, valid_now;
};

static int seen_head(void *arg, const struct cg_http_head *h)
{
    struct seen *s = arg;
    int auths = 0;
    const struct cg_http_header *a = NULL;
    for (size_t i = 0; i < h->n_headers; i++)
        if (h->headers[i].name_len == 13 &&
            strncasecmp(h->headers[i].name, "authorization", 13) == 0) {
            auths++;
            a = &h->headers[i];
        }
    s->auth_headers += auths;
    const char *name;
    s->valid_now =
        auths == 1 && cg_tokens_check(tokens, a->value, a->value_len, &name) == CG_TOKEN_OK;
    if (s->n < MAX_TARGETS)
        snprintf(s->targets[s->n++], sizeof(s->targets[0]), "%d %s", s->valid_now, h->target);
    return 0;
}

static void parse_all(const uint8_t *d, size_t len, struct seen *s)
{
    struct cg_http_limits lim = {.max_header_bytes = 1024 * 1024,
                                 .max_headers = CG_HTTP_MAX_HEADERS_CAP};
    struct cg_http_callbacks cb = {seen_head, NULL, NULL};
    struct cg_http_parser *p;
    if (cg_http_parser_new(CG_HTTP_REQUEST, &lim, &cb, s, &p) != 0)
        abort();
    (void)cg_http_parser_feed(p, d, len);
    cg_http_parser_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (tokens == NULL) {
        char path[] = "/tmp/fuzz_server_gate.XXXXXX";
        int fd = mkstemp(path);
        char line[160], err[256];
        if (fd < 0 ||
            cg_token_entry(TOKEN, strlen(TOKEN), "f", line, sizeof(line), err, sizeof(err)) != 0 ||
            write(fd, line, strlen(line)) != (ssize_t)strlen(line))
            abort();
        close(fd);
        if (cg_tokens_load(path, &tokens, err, sizeof(err)) != 0)
            abort();
        unlink(path);
    }
    if (size < 1)
        return 0;
    unsigned seed = data[0];
    data++;
    size--;

    struct sp_server srv = {0};
    srv.tokens = tokens;
    srv.access_log = 1;
    struct sp_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return 0;
    c->srv = &srv;
    c->conn.state = CG_CONN_LIVE;
    c->down.shut = 1; /* the client's answers (401, 400) are refused quietly */
    cg_buf_init(&c->early, 1u << 24);
    if (sp_msg_init(c) != 0)
        abort();
    size_t off = 0;
    while (off < size && cg_conn_live(&c->conn)) {
        size_t n = 1 + (seed * 131 + off * 7) % 97;
        if (n > size - off)
            n = size - off;
        if (c->pending.len > 0 || sp_msg_blocked(c))
            break; /* waits for responses that never come */
        (void)sp_msg_from_client(c, data + off, n);
        off += n;
    }

    struct seen in = {0}, out = {0};
    parse_all(data, size, &in);
    struct cg_http_limits lim = {.max_header_bytes = 1024 * 1024,
                                 .max_headers = CG_HTTP_MAX_HEADERS_CAP};
    struct cg_http_callbacks cb = {seen_head, NULL, NULL};
    struct cg_http_parser *p;
    if (cg_http_parser_new(CG_HTTP_REQUEST, &lim, &cb, &out, &p) != 0)
        abort();
    if (cg_http_parser_feed(p, (const uint8_t *)c->early.data, c->early.len) < 0)
        abort(); /* the upstream got something that is not HTTP */
    cg_http_parser_free(p);
    if (out.auth_headers != 0)
        abort(); /* a credential reached the upstream */
    /* every forwarded request is the next valid one of the input */
    int k = 0;
    for (int i = 0; i < out.n; i++) {
        while (k < in.n && in.targets[k][0] != '1')
            k++;
        if (k == in.n || strcmp(in.targets[k] + 1, out.targets[i] + 1) != 0)
            abort();
        k++;
    }
    sp_msg_free(c);
    cg_buf_free(&c->early);
    free(c);
    return 0;
}
