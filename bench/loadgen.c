/*
 * ccgate-loadgen: the benchmark's own load generator, for what wrk cannot measure: the
 * latency of each SSE event (against the "t_us" send time the mock worker puts in it),
 * open-loop constant-rate latency, a new connection per request, uploads of any size, idle
 * connections and connection storms. One thread on libuv; responses parsed with cg_http.
 * Prints one JSON line of results on stdout; on stderr "ready" when idle connections are up,
 * "measure" when a --warmup ends (counters restart there) and "end" when the measured window
 * closes (before any connection is closed), so that a caller can read CPU counters at both.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "ccgate/err.h"
#include "ccgate/http.h"

#define PROG "ccgate-loadgen"
#define READ_SIZE (64u * 1024u)
#define PIECE (64u * 1024u)
#define HEAD_MAX 8192u
#define EVENT_MAX 4096u
#define SAMPLES_MAX (1u << 24)  /* latency samples kept; more are counted, not kept */
#define QUEUE_MAX (1u << 20)    /* open-loop requests waiting for a free connection */
#define MAX_CONNS 100000u
#define MAX_ERRORS_BEFORE_STOP 100000u

enum mode { M_CLOSED, M_NEWCONN, M_RATE, M_SSE, M_IDLE, M_STORM };
#define M_COUNT 6
static const char *const mode_names[M_COUNT] = {"closed", "newconn", "rate",
                                                "sse",    "idle",    "storm"};

struct samples {
    uint32_t *v; /* microseconds */
    size_t n, cap;
    uint64_t dropped;
};

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    struct cg_http_parser *parser;
    struct conn *next_free;
    int busy;            /* a request is out and its answer not complete */
    int closing;
    int bad_status;      /* the current answer is not 2xx */
    int first_event;     /* SSE: the first event has been seen */
    unsigned n_events;   /* SSE: events seen in the current stream */
    uint64_t t_event;    /* ns: when the previous event of the stream arrived */
    uint64_t t_intended; /* ns: when the request should have left (open loop) */
    uint64_t t_sent;     /* ns: when it left */
    uint64_t body_left;  /* upload bytes still to write */
    size_t ev_len;
    char ev[EVENT_MAX]; /* SSE: an event not yet ended by a blank line */
};

static struct {
    enum mode mode;
    struct sockaddr_storage addr;
    char host[128];
    unsigned conns;
    double duration_s, rate, hold_s, timeout_s;
    double warmup_s;       /* closed/newconn/rate/sse --keepalive: not measured, counters reset */
    double stagger_s;      /* sse: connections opened evenly over this long */
    unsigned skip_events;  /* sse: the first events of each stream give no latency sample */
    unsigned cancel_after; /* sse: close the connection after this many events (0: never) */
    int keepalive;         /* sse: each connection streams again until --duration */
    uint64_t max_requests; /* closed: stop after this many answers (0: run for duration) */
    const char *method, *path, *body;
    const char *header; /* one more header line ("Name: value"), or NULL */
    uint64_t body_size;
} opt = {.mode = M_CLOSED, .conns = 1, .duration_s = 5, .rate = 1000, .hold_s = 2,
         .timeout_s = 60, .method = "GET", .path = "/bytes/1024"};

static struct {
    uv_loop_t *loop;
    uv_timer_t stop_timer, tick_timer, warm_timer, stagger_timer;
    char head[HEAD_MAX];
    size_t head_len;
    int stopping;
    unsigned active, answered_once, opened;
    uint64_t t0, t_measure, t_end, t_last_answer;
    uint64_t requests, errors, body_in, body_out, events, issued, issued0, cancelled;
    struct samples lat, ttfe, ev_lat, gap;
    struct conn *free_list;
    uint64_t *queue; /* open loop: intended start times waiting for a connection */
    size_t q_head, q_len;
} g;

static char zeros[PIECE];

static void conn_open(void);
static void on_stop(uv_timer_t *t);
static void conn_close(struct conn *c);
static void send_request(struct conn *c, uint64_t intended);

static uint64_t now_ns(void)
{
    return uv_hrtime();
}

static uint64_t realtime_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void sample_add(struct samples *s, uint64_t us)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        uint32_t *v = cap <= SAMPLES_MAX ? realloc(s->v, cap * sizeof(*v)) : NULL;
        if (v == NULL) {
            s->dropped++;
            return;
        }
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints "name":{"n":..,"p50":..,...} with percentiles in microseconds. */
static void sample_print(const char *name, struct samples *s)
{
    printf(",\"%s\":{\"n\":%zu", name, s->n);
    if (s->n > 0) {
        qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
        static const double ps[] = {50, 90, 99, 99.9};
        static const char *const pn[] = {"p50", "p90", "p99", "p999"};
        for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
            size_t k = (size_t)((double)(s->n - 1) * ps[i] / 100.0 + 0.5);
            printf(",\"%s\":%" PRIu32, pn[i], s->v[k]);
        }
        uint64_t sum = 0;
        for (size_t i = 0; i < s->n; i++)
            sum += s->v[i];
        printf(",\"min\":%" PRIu32 ",\"max\":%" PRIu32 ",\"mean\":%.1f", s->v[0], s->v[s->n - 1],
               (double)sum / (double)s->n);
    }
    printf("}");
}

static void count_error(void)
{
    g.errors++;
    if (g.errors >= MAX_ERRORS_BEFORE_STOP)
        g.stopping = 1;
}

/* SSE: one complete event; its latency is now minus the upstream's send time. */
static void sse_event(struct conn *c, const char *ev, size_t len)
{
    static const char key[] = "\"t_us\":";
    const char *p = NULL;
    for (size_t i = 0; i + sizeof(key) - 1 <= len; i++) {
        if (memcmp(ev + i, key, sizeof(key) - 1) == 0) {
            p = ev + i + sizeof(key) - 1;
            break;
        }
    }
    if (p == NULL)
        return; /* data: [DONE] */
    uint64_t sent = strtoull(p, NULL, 10);
    uint64_t now = realtime_us(), t = now_ns();
    g.events++;
    if (++c->n_events > opt.skip_events)
        sample_add(&g.ev_lat, now > sent ? now - sent : 0);
    if (!c->first_event) {
        c->first_event = 1;
        sample_add(&g.ttfe, (t - c->t_sent) / 1000u);
    } else {
        sample_add(&g.gap, (t - c->t_event) / 1000u);
    }
    c->t_event = t;
    if (opt.cancel_after > 0 && c->n_events == opt.cancel_after) {
        g.cancelled++;
        conn_close(c); /* the client goes away mid-stream */
    }
}

static void sse_feed(struct conn *c, const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len && !c->closing; i++) {
        if (c->ev_len < EVENT_MAX)
            c->ev[c->ev_len++] = (char)data[i];
        if (data[i] == '\n' && c->ev_len >= 2 && c->ev[c->ev_len - 2] == '\n') {
            sse_event(c, c->ev, c->ev_len);
            c->ev_len = 0;
        }
    }
}

static int on_head(void *arg, const struct cg_http_head *h)
{
    struct conn *c = arg;
    c->bad_status = h->status < 200 || h->status > 299;
    return 0;
}

static int on_body(void *arg, const uint8_t *data, size_t len)
{
    struct conn *c = arg;
    g.body_in += len;
    if (opt.mode == M_SSE)
        sse_feed(c, data, len);
    return 0;
}

/* idle: once every connection has had its answer (or failed), say so and hold them. */
static void idle_check(void)
{
    if (g.answered_once + g.errors != opt.conns)
        return;
    fprintf(stderr, "ready\n");
    fflush(stderr);
    uv_timer_start(&g.stop_timer, on_stop, (uint64_t)(opt.hold_s * 1000), 0);
}

/* The next free connection for an open-loop request, or NULL. */
static struct conn *pop_free(void)
{
    struct conn *c = g.free_list;
    if (c != NULL)
        g.free_list = c->next_free;
    return c;
}

static int on_complete(void *arg)
{
    struct conn *c = arg;
    uint64_t t = now_ns();
    c->busy = 0;
    if (c->bad_status) {
        count_error();
    } else {
        g.requests++;
        g.t_last_answer = t;
        sample_add(&g.lat, (t - c->t_intended) / 1000u);
    }
    switch (opt.mode) {
    case M_CLOSED:
        if (opt.max_requests > 0 && g.requests >= opt.max_requests)
            on_stop(&g.stop_timer);
        else if (!g.stopping)
            send_request(c, t);
        break;
    case M_NEWCONN:
        conn_close(c);
        if (!g.stopping)
            conn_open();
        break;
    case M_RATE:
        if (g.q_len > 0 && !g.stopping) {
            uint64_t intended = g.queue[g.q_head];
            g.q_head = (g.q_head + 1) % QUEUE_MAX;
            g.q_len--;
            send_request(c, intended);
        } else {
            c->next_free = g.free_list;
            g.free_list = c;
        }
        break;
    case M_SSE:
        if (opt.keepalive && !g.stopping)
            send_request(c, t);
        else
            conn_close(c);
        break;
    case M_STORM:
        conn_close(c);
        break;
    case M_IDLE:
        g.answered_once++;
        idle_check();
        break;
    }
    return 0;
}

static const struct cg_http_callbacks http_cb = {on_head, on_body, on_complete};

static void on_close(uv_handle_t *h)
{
    struct conn *c = h->data;
    cg_http_parser_free(c->parser);
    free(c);
    g.active--;
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (opt.mode == M_RATE) {
        /* Drop it from the free list so it is never handed out again. */
        for (struct conn **p = &g.free_list; *p != NULL; p = &(*p)->next_free) {
            if (*p == c) {
                *p = c->next_free;
                break;
            }
        }
    }
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)h;
    (void)hint;
    static char rbuf[READ_SIZE]; /* one thread, and data is parsed before the next read */
    buf->base = rbuf;
    buf->len = sizeof(rbuf);
}

/* A connection lost while in use: count it, and keep the offered load going. */
static void conn_lost(struct conn *c)
{
    int was_busy = c->busy || cg_http_parser_in_message(c->parser);
    conn_close(c);
    if (g.stopping)
        return;
    if (was_busy || opt.mode == M_SSE || opt.mode == M_STORM || opt.mode == M_IDLE)
        count_error();
    if (opt.mode == M_IDLE)
        idle_check();
    if (opt.mode == M_CLOSED || opt.mode == M_NEWCONN || opt.mode == M_RATE)
        conn_open();
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        conn_lost(c);
        return;
    }
    long n = cg_http_parser_feed(c->parser, (const uint8_t *)buf->base, (size_t)nread);
    if (n < 0) {
        count_error();
        conn_close(c);
        if (!g.stopping && (opt.mode == M_CLOSED || opt.mode == M_NEWCONN || opt.mode == M_RATE))
            conn_open();
    }
}

static void on_write(uv_write_t *w, int status);

/* Writes the next piece of an upload body, or nothing when the request is all out. */
static void write_more(struct conn *c)
{
    if (c->body_left == 0 || c->closing)
        return;
    size_t n = c->body_left < PIECE ? (size_t)c->body_left : PIECE;
    c->body_left -= n;
    g.body_out += n;
    uv_buf_t b = uv_buf_init(zeros, (unsigned)n);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0)
        conn_lost(c);
}

static void on_write(uv_write_t *w, int status)
{
    struct conn *c = w->data;
    if (c->closing)
        return;
    if (status < 0) {
        conn_lost(c);
        return;
    }
    write_more(c);
}

static void send_request(struct conn *c, uint64_t intended)
{
    c->busy = 1;
    c->first_event = 0;
    c->n_events = 0;
    c->ev_len = 0;
    c->t_intended = intended;
    c->t_sent = now_ns();
    c->body_left = opt.body ? 0 : opt.body_size;
    g.issued++;
    uv_buf_t b = uv_buf_init(g.head, (unsigned)g.head_len);
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write) != 0)
        conn_lost(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->closing)
        return;
    if (status < 0) {
        c->busy = 1; /* a refused or failed connect is an error in every mode */
        conn_lost(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        conn_lost(c);
        return;
    }
    if (opt.mode == M_RATE) {
        if (g.q_len > 0 && !g.stopping) {
            uint64_t intended = g.queue[g.q_head];
            g.q_head = (g.q_head + 1) % QUEUE_MAX;
            g.q_len--;
            send_request(c, intended);
        } else {
            c->next_free = g.free_list;
            g.free_list = c;
        }
        return;
    }
    send_request(c, now_ns());
}

static void conn_open(void)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL || cg_http_parser_new(CG_HTTP_RESPONSE, NULL, &http_cb, c, &c->parser) != 0) {
        free(c);
        count_error();
        return;
    }
    uv_tcp_init(g.loop, &c->tcp);
    c->tcp.data = c;
    c->creq.data = c;
    c->wreq.data = c;
    g.active++;
    int rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&opt.addr, on_connect);
    if (rc != 0) {
        count_error();
        conn_close(c);
    }
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (h->type == UV_TCP)
        conn_close(h->data);
    else if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_stop(uv_timer_t *t)
{
    (void)t;
    if (g.stopping)
        return;
    g.stopping = 1;
    g.t_end = now_ns();
    fprintf(stderr, "end\n");
    fflush(stderr);
    uv_walk(g.loop, close_walk, NULL);
}

static void samples_reset(struct samples *s)
{
    s->n = 0;
    s->dropped = 0;
}

/* The warm-up is over: what follows is measured. */
static void on_warm(uv_timer_t *t)
{
    (void)t;
    g.t_measure = now_ns();
    g.requests = g.body_in = g.body_out = g.events = g.cancelled = 0;
    g.issued0 = g.issued;
    samples_reset(&g.lat);
    samples_reset(&g.ttfe);
    samples_reset(&g.ev_lat);
    samples_reset(&g.gap);
    fprintf(stderr, "measure\n");
    fflush(stderr);
}

/* sse --stagger: opens the connections that are due by now. */
static void on_stagger(uv_timer_t *t)
{
    uint64_t due = (uint64_t)((double)(now_ns() - g.t0) / 1e9 / opt.stagger_s * opt.conns) + 1;
    while (g.opened < opt.conns && g.opened < due && !g.stopping) {
        g.opened++;
        conn_open();
    }
    if (g.opened == opt.conns)
        uv_timer_stop(t);
}

/* Open loop: issues every request that is due by now, each with its intended start. */
static void on_tick(uv_timer_t *t)
{
    (void)t;
    uint64_t now = now_ns();
    uint64_t due = (uint64_t)((double)(now - g.t0) / 1e9 * opt.rate);
    while (g.issued + g.q_len < due) {
        uint64_t intended = g.t0 + (uint64_t)((double)(g.issued + g.q_len) / opt.rate * 1e9);
        struct conn *c = pop_free();
        if (c != NULL) {
            send_request(c, intended);
        } else if (g.q_len < QUEUE_MAX) {
            g.queue[(g.q_head + g.q_len) % QUEUE_MAX] = intended;
            g.q_len++;
        } else {
            count_error();
            g.issued++;
        }
    }
}

static int parse_addr(const char *s)
{
    char host[128];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return CG_ECONFIG;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    int port = atoi(colon + 1);
    snprintf(opt.host, sizeof(opt.host), "%s", s);
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&opt.addr) == 0)
        return 0;
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        host[strlen(host) - 1] = '\0';
        if (uv_ip6_addr(host + 1, port, (struct sockaddr_in6 *)&opt.addr) == 0)
            return 0;
    }
    return CG_ECONFIG;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: " PROG " --target HOST:PORT [options]\n"
               "  --mode closed|newconn|rate|sse|idle|storm   (default closed)\n"
               "     closed   --conns N keep-alive connections, each sends again when answered\n"
               "     newconn  like closed, but a new connection for every request\n"
               "     rate     open loop: --rate R requests/s over up to --conns connections;\n"
               "              latency counts from when a request should have left\n"
               "     sse      --conns N streams of one request each; per-event latency from t_us\n"
               "     idle     --conns N connections, one request each, then idle --hold S s\n"
               "     storm    --conns N connections at once, one request each\n"
               "  --duration S      closed/newconn/rate run length (default 5)\n"
               "  --requests N      closed: stop after N answers (a fixed workload)\n"
               "  --method M --path P                      (default GET /bytes/1024)\n"
               "  --header LINE     one more request header, e.g. \"Authorization: Bearer T\"\n"
               "  --body TEXT       request body (Content-Type: application/json)\n"
               "  --body-size N     request body of N bytes (upload)\n"
               "  --timeout S       sse/storm/idle give up after S s (default 60)\n"
               "  --warmup S        closed/newconn/rate (and sse --keepalive): S s first, not\n"
               "                    measured; \"measure\" on stderr when the window opens\n"
               "  --stagger S       sse: open the connections evenly over S s\n"
               "  --skip-events N   sse: no latency sample for the first N events of a stream\n"
               "  --cancel-after N  sse: close each connection after its N-th event\n"
               "  --keepalive       sse: stream again on the same connection until --duration\n"
               "  --help, --version\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {{"target", required_argument, NULL, 't'},
                                       {"mode", required_argument, NULL, 'm'},
                                       {"conns", required_argument, NULL, 'c'},
                                       {"duration", required_argument, NULL, 'd'},
                                       {"rate", required_argument, NULL, 'r'},
                                       {"method", required_argument, NULL, 'M'},
                                       {"path", required_argument, NULL, 'p'},
                                       {"body", required_argument, NULL, 'b'},
                                       {"header", required_argument, NULL, 'E'},
                                       {"body-size", required_argument, NULL, 's'},
                                       {"hold", required_argument, NULL, 'H'},
                                       {"timeout", required_argument, NULL, 'T'},
                                       {"requests", required_argument, NULL, 'n'},
                                       {"warmup", required_argument, NULL, 'w'},
                                       {"stagger", required_argument, NULL, 'g'},
                                       {"skip-events", required_argument, NULL, 'k'},
                                       {"cancel-after", required_argument, NULL, 'x'},
                                       {"keepalive", no_argument, NULL, 'K'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
    int have_target = 0, ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 't':
            if (parse_addr(optarg) != 0) {
                fprintf(stderr, PROG ": bad --target %s\n", optarg);
                return 2;
            }
            have_target = 1;
            break;
        case 'm': {
            size_t i = 0;
            while (i < M_COUNT && strcmp(mode_names[i], optarg) != 0)
                i++;
            if (i == M_COUNT) {
                fprintf(stderr, PROG ": bad --mode %s\n", optarg);
                return 2;
            }
            opt.mode = (enum mode)i;
            break;
        }
        case 'c':
            opt.conns = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'd':
            opt.duration_s = strtod(optarg, NULL);
            break;
        case 'r':
            opt.rate = strtod(optarg, NULL);
            break;
        case 'M':
            opt.method = optarg;
            break;
        case 'p':
            opt.path = optarg;
            break;
        case 'b':
            opt.body = optarg;
            break;
        case 'E':
            if (strpbrk(optarg, "\r\n") != NULL || strchr(optarg, ':') == NULL) {
                fprintf(stderr, PROG ": --header: expected one \"Name: value\" line\n");
                return 2;
            }
            opt.header = optarg;
            break;
        case 's':
            opt.body_size = strtoull(optarg, NULL, 10);
            break;
        case 'H':
            opt.hold_s = strtod(optarg, NULL);
            break;
        case 'T':
            opt.timeout_s = strtod(optarg, NULL);
            break;
        case 'n':
            opt.max_requests = strtoull(optarg, NULL, 10);
            break;
        case 'w':
            opt.warmup_s = strtod(optarg, NULL);
            break;
        case 'g':
            opt.stagger_s = strtod(optarg, NULL);
            break;
        case 'k':
            opt.skip_events = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'x':
            opt.cancel_after = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'K':
            opt.keepalive = 1;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf(PROG " %s\n", CCGATE_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (!have_target || opt.conns == 0 || opt.conns > MAX_CONNS || opt.duration_s <= 0 ||
        opt.rate <= 0 || opt.hold_s < 0 || opt.timeout_s <= 0 || opt.warmup_s < 0 ||
        opt.stagger_s < 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(zeros, 'x', sizeof(zeros));

    uint64_t blen = opt.body ? strlen(opt.body) : opt.body_size;
    int n = snprintf(g.head, HEAD_MAX, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: " PROG "\r\n",
                     opt.method, opt.path, opt.host);
    if (n > 0 && (size_t)n < HEAD_MAX && opt.header != NULL)
        n += snprintf(g.head + n, HEAD_MAX - (size_t)n, "%s\r\n", opt.header);
    if (n > 0 && (size_t)n < HEAD_MAX && (opt.body || opt.body_size > 0))
        n += snprintf(g.head + n, HEAD_MAX - (size_t)n,
                      "Content-Type: %s\r\nContent-Length: %" PRIu64 "\r\n",
                      opt.body ? "application/json" : "application/octet-stream", blen);
    if (n > 0 && (size_t)n < HEAD_MAX)
        n += snprintf(g.head + n, HEAD_MAX - (size_t)n, "\r\n%s", opt.body ? opt.body : "");
    if (n < 0 || (size_t)n >= HEAD_MAX) {
        fprintf(stderr, PROG ": request head too long\n");
        return 2;
    }
    g.head_len = (size_t)n;

    g.loop = uv_default_loop();
    uv_timer_init(g.loop, &g.stop_timer);
    uv_timer_init(g.loop, &g.tick_timer);
    uv_timer_init(g.loop, &g.warm_timer);
    uv_timer_init(g.loop, &g.stagger_timer);
    if (opt.mode == M_RATE) {
        g.queue = malloc(QUEUE_MAX * sizeof(*g.queue));
        if (g.queue == NULL)
            return 1;
    }
    g.t0 = g.t_measure = now_ns();
    if (opt.mode == M_SSE && opt.stagger_s > 0) {
        uv_timer_start(&g.stagger_timer, on_stagger, 0, 1);
    } else {
        g.opened = opt.conns;
        for (unsigned i = 0; i < opt.conns; i++)
            conn_open();
    }
    int timed = opt.mode == M_CLOSED || opt.mode == M_NEWCONN || opt.mode == M_RATE ||
                (opt.mode == M_SSE && opt.keepalive);
    double warm = timed ? opt.warmup_s : 0;
    if (warm > 0)
        uv_timer_start(&g.warm_timer, on_warm, (uint64_t)(warm * 1000), 0);
    uv_timer_start(&g.stop_timer, on_stop,
                   (uint64_t)(((timed ? opt.duration_s : opt.timeout_s) + warm) * 1000), 0);
    if (opt.mode == M_RATE)
        uv_timer_start(&g.tick_timer, on_tick, 1, 1);
    if ((opt.mode == M_SSE && !opt.keepalive) || opt.mode == M_STORM) {
        /* These end when every connection has had its answer; the timer is a limit only. */
        uv_unref((uv_handle_t *)&g.stop_timer);
    }
    uv_run(g.loop, UV_RUN_DEFAULT);
    if (!g.stopping) { /* sse, storm: all answered; close the timers */
        on_stop(&g.stop_timer);
        uv_run(g.loop, UV_RUN_DEFAULT);
    }

    double elapsed = (double)(g.t_end - g.t_measure) / 1e9;
    if (opt.mode == M_STORM && g.t_last_answer > g.t0)
        elapsed = (double)(g.t_last_answer - g.t0) / 1e9;
    if (opt.body)
        g.body_out = (g.issued - g.issued0) * blen;
    printf(
        "{\"mode\":\"%s\",\"conns\":%u,\"elapsed_s\":%.6f,\"warmup_s\":%.3f,\"requests\":%" PRIu64
        ",\"errors\":%" PRIu64 ",\"issued\":%" PRIu64 ",\"body_in\":%" PRIu64
        ",\"body_out\":%" PRIu64 ",\"events\":%" PRIu64 ",\"cancelled\":%" PRIu64 ",\"rps\":%.1f",
        mode_names[opt.mode], opt.conns, elapsed, warm, g.requests, g.errors, g.issued - g.issued0,
        g.body_in, g.body_out, g.events, g.cancelled,
        elapsed > 0 ? (double)g.requests / elapsed : 0.0);
    sample_print("lat_us", &g.lat);
    sample_print("ttfe_us", &g.ttfe);
    sample_print("event_us", &g.ev_lat);
    sample_print("gap_us", &g.gap);
    printf("}\n");
    free(g.lat.v);
    free(g.ttfe.v);
    free(g.ev_lat.v);
    free(g.gap.v);
    free(g.queue);
    uv_loop_close(g.loop);
    return 0;
}
