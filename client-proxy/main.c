/* ccgate-client: the client sidecar, next to the app. */
#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ccgate/admin.h"
#include "ccgate/err.h"
#include "ccgate/log.h"
#include "ccgate/opts.h"
#include "ccgate/policy.h"
#include "ccgate/signals.h"
#include "cp_proxy.h"

static struct cg_opt opts[] = {
    {"listen", "ADDR:PORT", "HTTP listener for the app (loopback)", NULL, NULL, NULL},
    {"server", "HOST:PORT...",
     "a ccgate-server to attest and forward to; several (repeated or comma-separated) share the "
     "load",
     NULL, NULL, NULL},
    {"servers", "HOST:PORT...", "more servers, as --server (in a config file: a list)", NULL, NULL,
     NULL},
    {"policy", "FILE", "appraisal policy JSON (docs/policy.md); required", NULL, NULL, NULL},
    {"name", "NAME", "the forward's name in logs and metrics (default: the --listen address)", NULL,
     NULL, NULL},
    {"forwards", "JSON",
     "several forwards, each with its listen, servers, policy, mode and limits (usually in "
     "--config; docs/guide.md); instead of --listen/--server/--policy",
     NULL, NULL, NULL},
    {"admin", "ADDR:PORT", "admin listener: /healthz /readyz /metrics", NULL, NULL, NULL},
    {"config", "FILE", "JSON config file (keys = these option names)", NULL, NULL, NULL},
    {"log-format", "text|json", "log line format", "text", NULL, NULL},
    {"log-level", "error|warn|info|debug",
     "lowest level logged; info (production) has no line per connection", "info", NULL, NULL},
    {"access-log", "on|off",
     "one info line per request: method, path, status, duration_ms, request_id, ...", "on", NULL,
     NULL},
    {"mode", "http|tcp", "http: HTTP/1.1 proxy; tcp: raw byte pipe (ALPN ccgate-tcp)", "http", NULL,
     NULL},
    /* From here to drain-timeout-s: the limits a forward may set for itself (limits[]). */
    {"handshake-timeout-ms", "N", "limit for connect + attested handshake", "10000", NULL, NULL},
    {"server-wait-ms", "N",
     "how long a request waits for a server refusing connections (502 after)", "3000", NULL, NULL},
    {"idle-timeout-s", "N", "close idle app connections after this", "60", NULL, NULL},
    {"header-timeout-s", "N", "time for a request head once begun (408 after)", "30", NULL, NULL},
    {"response-timeout-s", "N", "time for a response head after the request (504 after)", "300",
     NULL, NULL},
    {"max-connections", "N", "most concurrent app connections", "4096", NULL, NULL},
    {"pool-max", "N", "idle attested connections kept for reuse, 0 = none (HTTP mode)", "64", NULL,
     NULL},
    {"pool-idle-timeout-s", "N", "close a pooled connection unused this long", "30", NULL, NULL},
    {"max-header-bytes", "N", "request line + headers limit (431 above)", "32768", NULL, NULL},
    {"max-headers", "N", "header count limit (431 above)", "100", NULL, NULL},
    {"max-body-bytes", "N", "request body limit, 0 = none (413 above)", "0", NULL, NULL},
    {"drain-timeout-s", "N", "on SIGTERM, how long in-flight requests may finish", "30", NULL,
     NULL},
    {"help", NULL, "print this help and exit", NULL, NULL, NULL},
    {"version", NULL, "print the version and exit", NULL, NULL, NULL},
};
#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const char usage_line[] =
    "ccgate-client --listen ADDR:PORT --server HOST:PORT --policy FILE [--admin ADDR:PORT] "
    "[--config FILE] [--log-format text|json]\n"
    "       ccgate-client --config FILE   (with a \"forwards\" list: several forwards)";
static const char summary[] =
    "Client sidecar: the app sends plain HTTP here; requests go to ccgate-server only over\n"
    "TLS 1.3 whose key is proven, by hardware evidence appraised against the policy, to live\n"
    "in a TEE. A failed appraisal answers 502 with the failed check; nothing is sent.\n"
    "GET /.well-known/ccgate/verification on the listener shows the last verified evidence.\n"
    "One process may serve several forwards (each its listener, servers, policy and limits):\n"
    "a \"forwards\" list in --config (docs/guide.md); the limit options below are then every\n"
    "forward's defaults. An option may be given once; --server is a list (repeat it or join\n"
    "with ','): each server is appraised on its own and the requests go to the verified one\n"
    "with the fewest outstanding.";

#define NAME_MAX_LEN 64

/* One forward: its proxy and its policy (the current one and the slot a reload loads into). */
struct fwd {
    struct cp_server server;
    char name[sizeof(((struct cg_addr *)0)->text)]; /* given, or the listen address */
    char *policy_path;                              /* owned */
    struct cg_policy policies[2];
    struct cg_policy *policy;
};

struct app {
    uv_loop_t *loop;
    struct fwd *fwds; /* owned */
    size_t n_fwds, n_idle;
    const struct cp_server **servers; /* owned: the forwards' servers, for /metrics */
    struct cg_admin *admin;
    struct cg_signals sig;
};

/* The value of option name. */
#define opt(name) cg_opts_get(opts, N_OPTS, (name))->value

/* The limits a forward may set for itself; the option of the same name is the default. */
enum limit_type { L_UNSIGNED, L_SIZE, L_U64 };
static const struct limit {
    const char *key;
    unsigned long min, max, scale;
    enum limit_type type;
    size_t off; /* in struct cp_server */
} limits[] = {
    {"handshake-timeout-ms", 100, 600000, 1, L_UNSIGNED,
     offsetof(struct cp_server, handshake_timeout_ms)},
    {"server-wait-ms", 0, 600000, 1, L_UNSIGNED, offsetof(struct cp_server, server_wait_ms)},
    {"idle-timeout-s", 1, 86400, 1000, L_UNSIGNED, offsetof(struct cp_server, idle_timeout_ms)},
    {"header-timeout-s", 1, 3600, 1000, L_UNSIGNED, offsetof(struct cp_server, header_timeout_ms)},
    {"response-timeout-s", 1, 86400, 1000, L_UNSIGNED,
     offsetof(struct cp_server, response_timeout_ms)},
    {"max-connections", 1, 1000000, 1, L_UNSIGNED, offsetof(struct cp_server, max_conns)},
    {"pool-max", 0, 100000, 1, L_UNSIGNED, offsetof(struct cp_server, pool_max)},
    {"pool-idle-timeout-s", 1, 3600, 1000, L_UNSIGNED, offsetof(struct cp_server, pool_idle_ms)},
    {"max-header-bytes", 1024, 1024 * 1024, 1, L_SIZE,
     offsetof(struct cp_server, limits.max_header_bytes)},
    {"max-headers", 8, CG_HTTP_MAX_HEADERS_CAP, 1, L_SIZE,
     offsetof(struct cp_server, limits.max_headers)},
    {"max-body-bytes", 0, (unsigned long)-1, 1, L_U64,
     offsetof(struct cp_server, limits.max_body_bytes)},
};
#define N_LIMITS (sizeof(limits) / sizeof(limits[0]))

/* A forward's keys in the config besides the limits. */
static const char *const forward_keys[] = {"name", "listen", "servers", "policy", "mode"};
#define N_FORWARD_KEYS (sizeof(forward_keys) / sizeof(forward_keys[0]))

/* Sets the limits of srv: from the forward's object obj where it has the key (NULL: none),
 * else from the option of that name. where names the forward in errors ("" for the one of
 * the command line, whose errors name the flag as they always did). */
static void set_limits(struct cp_server *srv, json_t *obj, const char *where)
{
    for (size_t i = 0; i < N_LIMITS; i++) {
        const struct limit *l = &limits[i];
        struct cg_opt o = *cg_opts_get(opts, N_OPTS, l->key);
        char num[32], err[256];
        json_t *v = obj != NULL ? json_object_get(obj, l->key) : NULL;
        if (json_is_integer(v) && json_integer_value(v) >= 0) {
            snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
            o.value = num;
        } else if (json_is_string(v)) {
            o.value = json_string_value(v);
        } else if (v != NULL) {
            cg_fatal("%s: %s: expected a non-negative integer", where, l->key);
        }
        unsigned long x;
        if (cg_opts_uint(&o, l->min, l->max, &x, err, sizeof(err)) < 0) {
            if (v != NULL)
                cg_fatal("%s: %s", where, err + 2); /* the key, not a flag: no "--" */
            cg_fatal("%s", err);
        }
        char *field = (char *)srv + l->off;
        if (l->type == L_UNSIGNED)
            *(unsigned *)field = (unsigned)(x * l->scale);
        else if (l->type == L_SIZE)
            *(size_t *)field = (size_t)x;
        else
            *(uint64_t *)field = (uint64_t)x;
    }
}

/* Checks a forward's name: logs and metric labels carry it, so no space, quote or '='. where
 * prefixes the error ("--" for the flag). */
static void check_name(const char *name, const char *where)
{
    size_t len = strlen(name);
    if (len == 0 || len > NAME_MAX_LEN ||
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@/[]-") !=
            len)
        cg_fatal("%sname: expected 1 to %d letters, digits or ._:@/[]-, got '%s'", where,
                 NAME_MAX_LEN, name);
}

/* Adds each server of list ("HOST:PORT[,HOST:PORT...]") to srv. */
static int add_servers(struct cp_server *srv, const char *list, char *err, size_t errlen)
{
    char one[512];
    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof(one)) {
            snprintf(err, errlen, "expected HOST:PORT[,HOST:PORT...], got '%s'", list);
            return CG_ECONFIG;
        }
        memcpy(one, p, n);
        one[n] = '\0';
        int rc = cp_server_add_server(srv, one, err, errlen);
        if (rc < 0)
            return rc;
        p += n + (p[n] == ',');
    }
    return 0;
}

/* Fills the forward f (name, listener, servers, mode, policy); limits apart. servers: the
 * server list, comma-separated. */
static void set_forward(struct fwd *f, const char *where, const char *name, const char *listen,
                        const char *servers, const char *mode, const char *policy)
{
    char err[512];
    struct cp_server *srv = &f->server;
    if (cg_addr_parse(listen, 0, &srv->listen_addr, err, sizeof(err)) < 0)
        cg_fatal("%slisten: %s", where, err);
    if (name != NULL)
        check_name(name, where);
    snprintf(f->name, sizeof(f->name), "%s", name != NULL ? name : srv->listen_addr.text);
    srv->name = f->name;
    const char *server_key = where[0] == '-' ? "server" : "servers";
    if (add_servers(srv, servers, err, sizeof(err)) < 0)
        cg_fatal("%s%s: %s", where, server_key, err);
    if (strcmp(mode, "tcp") == 0)
        srv->tcp_mode = 1;
    else if (strcmp(mode, "http") != 0)
        cg_fatal("%smode: expected http or tcp, got '%s'", where, mode);
    f->policy_path = strdup(policy);
    f->policy = &f->policies[0];
    if (f->policy_path == NULL || cg_policy_load(policy, f->policy, err, sizeof(err)) < 0)
        cg_fatal("%spolicy %s: %s", where, policy, f->policy_path ? err : "out of memory");
    srv->policy = f->policy;
}

/* The forward of the command line (--listen, --server, --policy, --mode, --name). */
static void forward_from_flags(struct app *a)
{
    char servers[4096];
    if (opt("listen") == NULL || (opt("server") == NULL && opt("servers") == NULL))
        cg_fatal("--listen and --server are required, or a forwards list (see --help)");
    int n =
        snprintf(servers, sizeof(servers), "%s%s%s", opt("server") ? opt("server") : "",
                 opt("server") && opt("servers") ? "," : "", opt("servers") ? opt("servers") : "");
    if (n < 0 || (size_t)n >= sizeof(servers))
        cg_fatal("--server: longer than %zu bytes", sizeof(servers));
    if (opt("policy") == NULL)
        cg_fatal("--policy FILE is required: without a policy nothing can be trusted "
                 "(see docs/policy.md, or `ccgate policy from-evidence`)");
    a->n_fwds = 1;
    a->fwds = calloc(1, sizeof(*a->fwds));
    if (a->fwds == NULL)
        cg_fatal("out of memory");
    set_forward(&a->fwds[0], "--", opt("name"), opt("listen"), servers, opt("mode"), opt("policy"));
    set_limits(&a->fwds[0].server, NULL, "");
}

/* The folder relative paths in the forwards list are taken from: the config file's when the
 * list came from it (not from --forwards or CCGATE_FORWARDS), else the working directory. */
static size_t forwards_base(const char **dir)
{
    const struct cg_opt *f = cg_opts_get(opts, N_OPTS, "forwards");
    const char *config = opt("config");
    *dir = "";
    if (f->owned == NULL || config == NULL || getenv("CCGATE_FORWARDS") != NULL)
        return 0; /* from the command line or the environment */
    const char *slash = strrchr(config, '/');
    *dir = config;
    return slash == NULL ? 0 : slash == config ? 1 : (size_t)(slash - config);
}

/* The server list of a forward: a non-empty array of HOST:PORT strings, joined with ','. */
static void join_servers(json_t *arr, const char *where, char *out, size_t cap)
{
    size_t i, o = 0;
    json_t *e;
    if (!json_is_array(arr) || json_array_size(arr) == 0)
        cg_fatal("%sservers: expected a non-empty array of HOST:PORT strings", where);
    json_array_foreach(arr, i, e)
    {
        const char *v = json_string_value(e);
        if (v == NULL || v[0] == '\0' || strchr(v, ',') != NULL)
            cg_fatal("%sservers[%zu]: expected a HOST:PORT string", where, i);
        int n = snprintf(out + o, cap - o, "%s%s", i > 0 ? "," : "", v);
        if (n < 0 || (size_t)n >= cap - o)
            cg_fatal("%sservers: longer than %zu bytes", where, cap);
        o += (size_t)n;
    }
}

/* The forwards of the "forwards" list. */
static void forwards_from_json(struct app *a, const char *text)
{
    static const char *const top[] = {"listen", "server", "servers", "policy", "name"};
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
        if (opt(top[i]) != NULL)
            cg_fatal("forwards: a forwards list and --%s (top-level \"%s\") exclude each other: "
                     "set %s inside each forward",
                     top[i], top[i], strncmp(top[i], "server", 6) == 0 ? "servers" : top[i]);
    json_error_t jerr;
    json_t *list = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_array(list) || json_array_size(list) == 0)
        cg_fatal("forwards: expected a non-empty array of forward objects%s%s",
                 list == NULL ? ": " : "", list == NULL ? jerr.text : "");
    a->n_fwds = json_array_size(list);
    a->fwds = calloc(a->n_fwds, sizeof(*a->fwds));
    if (a->fwds == NULL)
        cg_fatal("out of memory");
    const char *dir;
    size_t dir_len = forwards_base(&dir);
    size_t idx;
    json_t *fw;
    json_array_foreach(list, idx, fw)
    {
        /* label names the forward in errors; where is label and ": ", the prefix of a key's */
        char label[96], where[100], servers[4096], policy[4096];
        const char *name = json_string_value(json_object_get(fw, "name"));
        snprintf(label, sizeof(label), "forwards[%zu]%s%.64s%s", idx, name ? " (" : "",
                 name ? name : "", name ? ")" : "");
        snprintf(where, sizeof(where), "%s: ", label);
        if (!json_is_object(fw))
            cg_fatal("%sexpected an object with listen, servers and policy", where);
        const char *key;
        json_t *v;
        json_object_foreach(fw, key, v)
        {
            size_t k = 0;
            while (k < N_LIMITS && strcmp(limits[k].key, key) != 0)
                k++;
            size_t j = 0;
            while (j < N_FORWARD_KEYS && strcmp(forward_keys[j], key) != 0)
                j++;
            if (k == N_LIMITS && j == N_FORWARD_KEYS)
                cg_fatal("%sunknown key '%s'%s", where, key,
                         strcmp(key, "server") == 0 ? " (the list is \"servers\")" : "");
            if (j < N_FORWARD_KEYS && strcmp(key, "servers") != 0 && !json_is_string(v))
                cg_fatal("%s%s: expected a string", where, key);
        }
        const char *listen = json_string_value(json_object_get(fw, "listen"));
        const char *pol = json_string_value(json_object_get(fw, "policy"));
        const char *mode = json_string_value(json_object_get(fw, "mode"));
        if (listen == NULL)
            cg_fatal("%slisten: required (ADDR:PORT of the app listener)", where);
        if (json_object_get(fw, "servers") == NULL)
            cg_fatal("%sservers: required (a non-empty array of HOST:PORT)", where);
        if (pol == NULL)
            cg_fatal("%spolicy: required (the policy FILE): without a policy nothing can be "
                     "trusted",
                     where);
        join_servers(json_object_get(fw, "servers"), where, servers, sizeof(servers));
        if (pol[0] != '/' && dir_len > 0)
            snprintf(policy, sizeof(policy), "%.*s/%s", (int)dir_len, dir, pol);
        else
            snprintf(policy, sizeof(policy), "%s", pol);
        struct fwd *f = &a->fwds[idx];
        set_forward(f, where, name, listen, servers, mode != NULL ? mode : opt("mode"), policy);
        set_limits(&f->server, fw, label);
        for (size_t p = 0; p < idx; p++) {
            if (strcmp(a->fwds[p].name, f->name) == 0)
                cg_fatal("%s: name '%s' is also forwards[%zu]'s: names label logs and metrics, "
                         "so they differ",
                         label, f->name, p);
            char x[64], y[64];
            if (cg_addr_format((struct sockaddr *)&a->fwds[p].server.listen_addr.ss, x,
                               sizeof(x)) == 0 &&
                cg_addr_format((struct sockaddr *)&f->server.listen_addr.ss, y, sizeof(y)) == 0 &&
                strcmp(x, y) == 0)
                cg_fatal("%s: listen %s is also forwards[%zu]'s: each forward needs its own", label,
                         y, p);
        }
    }
    json_decref(list);
}

static int readyz(void *arg, struct cg_buf *out)
{
    struct app *a = arg;
    if (a->sig.draining) {
        (void)cg_buf_printf(out, "draining\n");
        return 503;
    }
    int ready = 1;
    time_t now = time(NULL);
    for (size_t i = 0; i < a->n_fwds; i++) {
        if (cp_server_ready(&a->fwds[i].server, now, NULL))
            continue;
        (void)cg_buf_printf(out, "forward %s: ", a->fwds[i].name);
        (void)cp_server_ready(&a->fwds[i].server, now, out);
        ready = 0;
    }
    if (!ready)
        return 503;
    (void)cg_buf_printf(out, "ready\n");
    return 200;
}

static int metrics(void *arg, struct cg_buf *out)
{
    struct app *a = arg;
    for (size_t i = 0; i < a->n_fwds; i++)
        cp_server_count_bytes(&a->fwds[i].server);
    cp_metrics_write(out, a->servers, a->n_fwds, time(NULL));
    return 200;
}

static struct cg_admin_handlers admin_handlers = {NULL, NULL, readyz, metrics};

static struct app the_app;

/* A forward finished draining; the last one lets the loop end. */
static void on_idle(struct cp_server *s)
{
    (void)s;
    if (++the_app.n_idle == the_app.n_fwds)
        cg_signals_close(&the_app.sig);
}

/* SIGHUP: loads every forward's policy file again; new handshakes use it, established
 * connections stay. A policy that does not load leaves that forward's current one in force. */
static void on_sighup(struct cg_signals *sg)
{
    struct app *a = sg->data;
    for (size_t i = 0; i < a->n_fwds; i++) {
        struct fwd *f = &a->fwds[i];
        char err[512], digest[65];
        struct cg_policy *next = f->policy == &f->policies[0] ? &f->policies[1] : &f->policies[0];
        if (cg_policy_load(f->policy_path, next, err, sizeof(err)) < 0) {
            cg_log_error("reload.failed",
                         "forward=%s policy=%s err=\"%s\": the current policy stays", f->name,
                         f->policy_path, err);
            continue;
        }
        cp_server_set_policy(&f->server, next);
        f->policy = next;
        cg_hex(digest, sizeof(digest), next->digest, sizeof(next->digest));
        cg_log_info("reload", "forward=%s policy=%s policy_sha256=%s", f->name, f->policy_path,
                    digest);
    }
}

static void on_drain_deadline(struct cg_signals *sg)
{
    struct app *a = sg->data;
    for (size_t i = 0; i < a->n_fwds; i++)
        cp_server_abort(&a->fwds[i].server);
}

static void on_drain(struct cg_signals *sg, int signum)
{
    struct app *a = sg->data;
    (void)signum;
    unsigned long long active = 0;
    for (size_t i = 0; i < a->n_fwds; i++)
        active += a->fwds[i].server.set.stats.live;
    cg_log_info("shutdown.client", "active=%llu", active);
    cg_admin_close(a->admin);
    a->admin = NULL;
    for (size_t i = 0; i < a->n_fwds; i++)
        cp_server_stop(&a->fwds[i].server);
}

/* Starts forward f: its TLS context and listener, then says so. */
static void start_forward(struct app *a, struct fwd *f)
{
    struct cp_server *srv = &f->server;
    srv->loop = a->loop;
    srv->on_idle = on_idle;
    if (!cg_addr_is_loopback(&srv->listen_addr))
        cg_log_warn("listen.exposed",
                    "addr=%s forward=%s err=\"the app listener speaks plain HTTP: whoever reaches "
                    "it reads and sends requests in clear; use 127.0.0.1 unless that network is "
                    "trusted\"",
                    srv->listen_addr.text, f->name);
    int rc = cp_server_start(srv);
    if (rc == CG_ETLS || rc == CG_ECONFIG)
        cg_fatal("forward %s: TLS context setup failed: %s", f->name, cg_strerror(rc));
    if (rc < 0)
        cg_fatal("forward %s: listen %s: %s", f->name, srv->listen_addr.text, cg_strerror(rc));
    if (f->policy->sim.allow)
        cg_log_warn("policy.sim", "forward=%s INSECURE: the policy accepts the simulated TEE",
                    f->name);
    if (f->policy->snp.n_measurements == 0)
        cg_log_warn("policy.measurements",
                    "forward=%s snp.measurements is empty: ANY guest image is accepted; pin it",
                    f->name);
    char digest[65];
    cg_hex(digest, sizeof(digest), f->policy->digest, sizeof(f->policy->digest));
    cg_log_info("listening",
                "addr=%s forward=%s server=%s servers=%zu mode=%s policy=%s policy_sha256=%s "
                "admin=%s",
                srv->listen_addr.text, f->name, srv->peers[0]->addr.text, srv->n_peers,
                srv->tcp_mode ? "tcp" : "http", f->policy_path, digest,
                opt("admin") ? opt("admin") : "-");
}

int main(int argc, char **argv)
{
    char err[512];
    if (cg_opts_startup("ccgate-client", argc, argv, opts, N_OPTS, usage_line, summary) != 0)
        return 0;

    struct app *a = &the_app;
    a->loop = uv_default_loop();
    int access_log = cg_opts_onoff_or_exit(cg_opts_get(opts, N_OPTS, "access-log"));
    if (opt("forwards") != NULL)
        forwards_from_json(a, opt("forwards"));
    else
        forward_from_flags(a);
    a->servers = calloc(a->n_fwds, sizeof(*a->servers));
    if (a->servers == NULL)
        cg_fatal("out of memory");
    for (size_t i = 0; i < a->n_fwds; i++) {
        a->servers[i] = &a->fwds[i].server;
        a->fwds[i].server.access_log = access_log;
    }
    a->sig.drain_ms =
        cg_opts_uint_or_exit(cg_opts_get(opts, N_OPTS, "drain-timeout-s"), 0, 3600) * 1000;
    struct cg_addr admin_addr;
    if (opt("admin") != NULL && cg_addr_parse(opt("admin"), 1, &admin_addr, err, sizeof(err)) < 0)
        cg_fatal("--admin: %s", err);

    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < a->n_fwds; i++)
        start_forward(a, &a->fwds[i]);
    if (opt("admin") != NULL) {
        admin_handlers.arg = a;
        int rc = cg_admin_start(a->loop, &admin_addr, &admin_handlers, &a->admin);
        if (rc < 0)
            cg_fatal("--admin %s: %s", admin_addr.text, cg_strerror(rc));
    }
    a->sig.data = a;
    a->sig.on_drain = on_drain;
    a->sig.on_deadline = on_drain_deadline;
    a->sig.on_reload = on_sighup;
    if (cg_signals_start(&a->sig, a->loop) < 0)
        cg_fatal("signal handlers: setup failed");

    uv_run(a->loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < a->n_fwds; i++) {
        cp_server_free(&a->fwds[i].server);
        free(a->fwds[i].policy_path);
    }
    free(a->fwds);
    free(a->servers);
    (void)uv_loop_close(a->loop);
    cg_opts_free(opts, N_OPTS);
    cg_log_info("stopped", "clean=1");
    return 0;
}
