#include "tl_tool.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ccgate/addr.h"
#include "ccgate/buf.h"
#include "ccgate/err.h"
#include "ccgate/evidence.h"
#include "ccgate/file.h"
#include "ccgate/gpu.h"
#include "ccgate/gpuev.h"
#include "ccgate/json.h"
#include "ccgate/log.h"
#include "ccgate/opts.h"
#include "ccgate/policy.h"
#include "ccgate/ratls.h"
#include "ccgate/snp.h"
#include "ccgate/tls.h"

#define FILE_MAX (1024 * 1024)
#define IO_TIMEOUT_S 15

/* Sends all pending ciphertext of t on fd. */
static int flush_out(int fd, struct cg_tls *t)
{
    uint8_t buf[16384];
    size_t n;
    while ((n = cg_tls_take_out(t, buf, sizeof(buf))) > 0) {
        size_t off = 0;
        while (off < n) {
            ssize_t w = send(fd, buf + off, n - off, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -errno;
            off += (size_t)w;
        }
    }
    return 0;
}

/*
 * Connects to a, completes a TLS handshake that carries a fresh nonce, and returns the
 * server's certificate (caller frees *der) and the nonce. Nothing is trusted yet. On a TLS
 * failure why[] says what the handshake saw (else it is left as it is).
 */
static int fetch_cert(const struct cg_addr *a, uint8_t **der, size_t *der_len,
                      uint8_t nonce[CG_NONCE_LEN], char *why, size_t why_len)
{
    struct cg_tls_ctx *ctx = NULL;
    struct cg_tls *t = NULL;
    int rc, fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    socklen_t alen =
        a->ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (connect(fd, (const struct sockaddr *)&a->ss, alen) < 0) {
        rc = -errno;
        goto out;
    }
    rc = cg_tls_client_ctx_new_capture(CG_ALPN_HTTP, &ctx);
    if (rc == 0)
        rc = cg_tls_new(ctx, 1, &t);
    while (rc == 0) {
        int h = cg_tls_handshake(t);
        rc = flush_out(fd, t);
        if (rc < 0 || h == 0)
            break;
        if (h != CG_TLS_WANT) {
            rc = h;
            break;
        }
        uint8_t buf[16384];
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) {
            rc = n == 0 ? CG_ETLS : -errno;
            break;
        }
        rc = cg_tls_feed(t, buf, (size_t)n);
    }
    if (rc == 0) {
        cg_tls_shutdown(t);
        (void)flush_out(fd, t);
        size_t n;
        const uint8_t *cert = cg_tls_peer_cert(t, &n);
        *der = cert != NULL ? malloc(n) : NULL;
        if (*der == NULL) {
            rc = cert == NULL ? CG_ETLS : (-ENOMEM);
        } else {
            memcpy(*der, cert, n);
            *der_len = n;
            memcpy(nonce, cg_tls_nonce(t), CG_NONCE_LEN);
        }
    }
out:
    if (rc < 0 && t != NULL && cg_tls_verdict(t)->check[0] != '\0')
        snprintf(why, why_len, "%s", cg_tls_verdict(t)->actual);
    cg_tls_free(t);
    cg_tls_ctx_free(ctx);
    close(fd);
    return rc;
}

/* The snp section and freshness of a from-evidence policy, pinning what r showed. */
static void print_snp_policy(struct cg_buf *b, const struct cg_snp_report *r)
{
    (void)cg_buf_printf(b, "  \"snp\": {\n    \"measurements\": [");
    cg_json_hex(b, r->measurement, sizeof(r->measurement));
    (void)cg_buf_printf(b,
                        "],\n    \"min_tcb\": {\"bootloader\": %u, \"tee\": %u, \"snp\": %u, "
                        "\"microcode\": %u},\n    \"host_data\": ",
                        r->reported.bootloader, r->reported.tee, r->reported.snp,
                        r->reported.microcode);
    cg_json_hex(b, r->host_data, sizeof(r->host_data));
    (void)cg_buf_printf(b,
                        ",\n    \"min_guest_svn\": %u,\n    \"max_vmpl\": %u,\n    \"debug\": "
                        "false,\n    \"migration_agent\": false\n  },\n  \"freshness\": "
                        "{\"mode\": \"nonce\", \"max_age_s\": 600}\n}\n",
                        r->guest_svn, r->vmpl);
}

/* The tdx section and freshness of a from-evidence policy: the TD's measurements, the
 * module's, and XFAM as seen; TCB status and CRLs at their defaults. */
static void print_tdx_policy(struct cg_buf *b, const struct cg_tdx_quote *q)
{
    static const char *const names[] = {"mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3", "mrseam"};
    const uint8_t *values[] = {q->mrtd, q->rtmr[0], q->rtmr[1], q->rtmr[2], q->rtmr[3], q->mrseam};
    uint8_t xfam[8];
    (void)cg_buf_printf(b, "  \"tdx\": {\n");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        (void)cg_buf_printf(b, "    \"%s\": ", names[i]);
        cg_json_hex(b, values[i], 48);
        (void)cg_buf_printf(b, ",\n");
    }
    for (int i = 0; i < 8; i++)
        xfam[i] = (uint8_t)(q->xfam >> (8 * i));
    (void)cg_buf_printf(b, "    \"xfam\": ");
    cg_json_hex(b, xfam, sizeof(xfam));
    (void)cg_buf_printf(b,
                        "\n  },\n  \"freshness\": {\"mode\": \"nonce\", \"max_age_s\": 600}\n}\n");
}

/* Seconds since an arbitrary start, monotonic. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* fetch_cert(), again every 200 ms while nothing listens yet (a server still starting), for
 * up to wait_s seconds. Other failures (a server that answers wrongly) are final. */
static int fetch_cert_wait(const struct cg_addr *a, unsigned long wait_s, uint8_t **der,
                           size_t *der_len, uint8_t nonce[CG_NONCE_LEN], char *why, size_t why_len)
{
    double deadline = now_s() + (double)wait_s;
    for (;;) {
        int rc = fetch_cert(a, der, der_len, nonce, why, why_len);
        if ((rc != -ECONNREFUSED && rc != -ECONNRESET) || now_s() >= deadline)
            return rc;
        struct timespec pause = {.tv_nsec = 200 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

/*
 * The gpu section a TOFU check verifies with, from the server's (untrusted) GPU bundle: RIMs
 * and OCSP checked when the server staples them, the sim GPU's root when allowed. Appends
 * `, "gpu": {...}` to base (a JSON object without its closing brace). 0, or 1 after a
 * message.
 */
static int gpu_base(const char *server, const uint8_t *gpu, size_t gpu_len, int allow_sim,
                    char *base, size_t cap)
{
    struct cg_gpuev *e = calloc(1, sizeof(*e));
    struct cg_gpu_chain chain = {0};
    struct cg_verdict v = {0};
    char sim[160] = "";
    int rc = 1;
    if (e == NULL || cg_gpuev_decode(gpu, gpu_len, e, &v) != 0) {
        fprintf(stderr, "ccgate: %s: unreadable GPU evidence: %s\n", server, v.actual);
        goto out;
    }
    /* Every GPU's chain ends at the same root: NVIDIA's pinned one, or a sim root. */
    if (cg_gpu_chain_load((const uint8_t *)e->gpus[0].chain_pem, e->gpus[0].chain_len, &chain,
                          &v) == 0 &&
        chain.n > 0) {
        uint8_t root[32];
        char hex[65];
        struct cg_gpu_anchor nvidia = {0};
        struct cg_spdm_report *r = malloc(sizeof(*r));
        struct cg_gpu_device d;
        int pinned =
            r != NULL && cg_gpu_verify_report(e->gpus[0].report, e->gpus[0].report_len, &chain,
                                              &nvidia, NULL, time(NULL), r, &d, &v) == 0;
        free(r);
        if (!pinned && strcmp(v.check, "gpu.chain.root") == 0) {
            if (!allow_sim) {
                fprintf(stderr,
                        "ccgate: %s presents a SIMULATED GPU; pass --allow-sim to accept "
                        "it for development\n",
                        server);
                goto out;
            }
            (void)cg_sha256(chain.certs[chain.n - 1], chain.cert_lens[chain.n - 1], root);
            cg_hex(hex, sizeof(hex), root, 32);
            snprintf(sim, sizeof(sim), "\"allow_sim\": true, \"sim_root_sha256\": \"%s\", ", hex);
        }
    }
    size_t n = strlen(base);
    snprintf(base + n, cap - n, ", \"gpu\": {%s\"require_rims\": %s, \"ocsp\": \"%s\"}", sim,
             e->n_rims > 0 ? "true" : "false", e->n_ocsp > 0 ? "require" : "off");
    rc = 0;
out:
    cg_gpu_chain_clear(&chain);
    if (e != NULL)
        cg_gpuev_clear(e);
    free(e);
    return rc;
}

/* The gpu section of a from-evidence policy: what the appraised GPUs showed. */
static void print_gpu_policy(struct cg_buf *b, const struct cg_gpu_policy *base,
                             const struct cg_attestation *att)
{
    (void)cg_buf_printf(b, "  \"gpu\": {\"count\": %zu", att->n_gpus);
    if (base->allow_sim) {
        (void)cg_buf_printf(b, ", \"allow_sim\": true, \"sim_root_sha256\": ");
        cg_json_hex(b, base->sim_root_sha256, 32);
    }
    const char *lists[] = {"drivers", "vbios"};
    for (int l = 0; l < 2; l++) {
        (void)cg_buf_printf(b, ", \"%s\": [", lists[l]);
        for (size_t i = 0; i < att->n_gpus; i++) {
            const char *ver = l == 0 ? att->gpus[i].driver_version : att->gpus[i].vbios_version;
            size_t j = 0;
            while (j < i && strcmp(ver, l == 0 ? att->gpus[j].driver_version
                                               : att->gpus[j].vbios_version) != 0)
                j++;
            if (j < i)
                continue; /* listed already */
            (void)cg_buf_printf(b, i > 0 ? ", " : "");
            cg_json_str(b, ver);
        }
        (void)cg_buf_printf(b, "]");
    }
    (void)cg_buf_printf(b, ", \"require_rims\": %s, \"ocsp\": \"%s\"},\n",
                        base->require_rims ? "true" : "false",
                        base->ocsp == CG_GPU_OCSP_REQUIRE ? "require" : "off");
}

int tl_tool_policy_from_evidence(int argc, char **argv)
{
    struct cg_opt o[] = {
        {"server", "HOST:PORT", "the ccgate-server to ask", NULL, NULL, NULL},
        {"allow-sim", NULL, "accept a simulated TEE (INSECURE, development only)", NULL, NULL,
         NULL},
        {"wait", "SECONDS", "retry while the server does not listen yet, this long", "0", NULL,
         NULL},
        {"out", "FILE", "write the policy to FILE (atomically, only on success), not stdout", NULL,
         NULL, NULL},
        {"help", NULL, "print this help", NULL, NULL, NULL},
    };
    enum { OPT_SERVER, OPT_ALLOW_SIM, OPT_WAIT, OPT_OUT, OPT_HELP, N_OPT };
    char err[256];
    if (cg_opts_parse(argc, argv, 3, o, N_OPT, err, sizeof(err)) < 0)
        cg_fatal("policy from-evidence: %s", err);
    if (o[OPT_HELP].value != NULL) {
        cg_opts_usage(stdout,
                      "ccgate policy from-evidence --server HOST:PORT [--allow-sim] "
                      "[--wait SECONDS] [--out FILE]",
                      "Connects with a fresh nonce, verifies the evidence chain and binding, and "
                      "prints a policy\npinning the measurement and TCB it saw (trust on first "
                      "use: check the measurement!).\nExit status: 0 policy written, 1 evidence "
                      "refused or server unreachable, 2 usage.",
                      o, N_OPT);
        return 0;
    }
    struct cg_addr addr;
    if (o[OPT_SERVER].value == NULL)
        cg_fatal("policy from-evidence: --server HOST:PORT is required");
    if (cg_addr_parse(o[OPT_SERVER].value, 0, &addr, err, sizeof(err)) < 0)
        cg_fatal("policy from-evidence: --server: %s", err);
    o[OPT_WAIT].value = o[OPT_WAIT].value != NULL ? o[OPT_WAIT].value : o[OPT_WAIT].def;
    unsigned long wait_s = cg_opts_uint_or_exit(&o[OPT_WAIT], 0, 3600);

    uint8_t *der = NULL;
    size_t der_len = 0;
    uint8_t nonce[CG_NONCE_LEN];
    char why[256] = "";
    int rc = fetch_cert_wait(&addr, wait_s, &der, &der_len, nonce, why, sizeof(why));
    if (rc < 0) {
        if (why[0] == '\0')
            snprintf(why, sizeof(why), "%s", cg_strerror(rc));
        fprintf(stderr, "ccgate: policy from-evidence: %s: no TLS 1.3 RA-TLS handshake: %s%s\n",
                addr.text, why,
                rc == -ECONNREFUSED && wait_s == 0 ? " (is it up yet? --wait SECONDS retries)"
                                                   : "");
        return 1;
    }

    struct cg_evidence ev = {0};
    struct cg_claims claims;
    rc = cg_ratls_inspect(der, der_len, &ev, &claims);
    if (rc < 0) {
        free(der);
        fprintf(stderr, "ccgate: %s presents no readable evidence: %s\n", addr.text,
                cg_strerror(rc));
        return 1;
    }
    /* Trust on first use: accept the vendor chain (or, with --allow-sim, the sim chain the
     * server shows) under the default policy, verify everything else, then pin what was seen. */
    static struct cg_policy p;
    char base[512] = "{\"snp\": {}, \"tdx\": {}";
    if (ev.tag == CG_TAG_SIM) {
        uint8_t root[32];
        char hex[65];
        if (o[OPT_ALLOW_SIM].value == NULL) {
            cg_evidence_clear(&ev);
            free(der);
            fprintf(stderr,
                    "ccgate: %s runs on the SIMULATED TEE (no hardware protection); "
                    "pass --allow-sim to accept it for development\n",
                    addr.text);
            return 1;
        }
        if (ev.n_certs == 0 ||
            cg_sha256(ev.certs[ev.n_certs - 1], ev.cert_lens[ev.n_certs - 1], root) < 0) {
            cg_evidence_clear(&ev);
            free(der);
            fprintf(stderr, "ccgate: %s: the sim evidence carries no root certificate\n",
                    addr.text);
            return 1;
        }
        cg_hex(hex, sizeof(hex), root, sizeof(root));
        snprintf(base, sizeof(base),
                 "{\"sim\": {\"allow\": true, \"root_sha256\": \"%s\"}, \"snp\": {}", hex);
    }
    cg_evidence_clear(&ev);
    uint8_t *gpu = NULL;
    size_t gpu_len = 0;
    if (cg_ratls_inspect_gpu(der, der_len, &gpu, &gpu_len) == 0 && gpu != NULL &&
        gpu_base(addr.text, gpu, gpu_len, o[1].value != NULL, base, sizeof(base) - 2) != 0) {
        free(gpu);
        free(der);
        return 1;
    }
    free(gpu);
    strcat(base, "}");
    if (cg_policy_parse(base, strlen(base), &p, err, sizeof(err)) < 0)
        cg_fatal("policy from-evidence: %s", err);
    struct cg_attestation att;
    struct cg_verdict v = {0};
    rc = cg_ratls_verify(der, der_len, &p, nonce, time(NULL), &att, &v);
    free(der);
    if (rc < 0) {
        fprintf(stderr, "ccgate: %s: evidence rejected: check=%s expected=\"%s\" actual=\"%s\"\n",
                addr.text, v.check, v.expected, v.actual);
        return 1;
    }

    struct cg_buf b;
    cg_buf_init(&b, 64 * 1024);
    (void)cg_buf_printf(&b, "{\n");
    if (att.tag == CG_TAG_SIM) {
        (void)cg_buf_printf(&b, "  \"sim\": {\"allow\": true, \"root_sha256\": ");
        cg_json_hex(&b, p.sim.root_sha256, sizeof(p.sim.root_sha256));
        (void)cg_buf_printf(&b, "},\n");
    }
    if (att.gpu_appraised)
        print_gpu_policy(&b, &p.gpu, &att);
    if (att.model.present) {
        /* The model the server's worker loaded: this digest, this name, no older version. */
        (void)cg_buf_printf(&b, "  \"model\": {\"name\": ");
        cg_json_str(&b, att.model.name);
        (void)cg_buf_printf(&b, ", \"sha256\": [");
        cg_json_hex(&b, att.model.sha256, sizeof(att.model.sha256));
        (void)cg_buf_printf(&b, "], \"min_version\": %llu},\n",
                            (unsigned long long)att.model.version);
    }
    if (att.tag == CG_TAG_TDX)
        print_tdx_policy(&b, &att.tdx);
    else
        print_snp_policy(&b, &att.snp);
    if (b.overflow)
        rc = CG_ELIMIT;
    else if (o[OPT_OUT].value != NULL)
        rc = cg_file_write_atomic(o[OPT_OUT].value, b.data, b.len);
    else
        rc = fputs(b.data, stdout) == EOF || fflush(stdout) != 0 ? -EIO : 0;
    cg_buf_free(&b);
    if (rc < 0) {
        fprintf(stderr, "ccgate: policy from-evidence: cannot write %s: %s\n",
                o[OPT_OUT].value != NULL ? o[OPT_OUT].value : "the policy", cg_strerror(rc));
        return 1;
    }
    fprintf(stderr,
            "ccgate: verified %s evidence from %s%s; the policy %s pins its "
            "measurement: compare it with the one you expect\n",
            cg_ratls_tee_name(att.tag), addr.text, att.insecure ? " (INSECURE simulated TEE)" : "",
            o[OPT_OUT].value != NULL ? o[OPT_OUT].value : "above");
    return 0;
}

int tl_tool_evidence_inspect(int argc, char **argv)
{
    if (argc != 4 || strncmp(argv[3], "--", 2) == 0) {
        if (argc == 4 && strcmp(argv[3], "--help") == 0) {
            puts("usage: ccgate evidence inspect FILE\n\nPrints the claims in FILE (a raw "
                 "SEV-SNP report, or an RA-TLS certificate in PEM or DER) as JSON. Nothing is "
                 "verified: use `ccgate verify` for that.");
            return 0;
        }
        cg_fatal("evidence inspect: expected exactly one FILE");
    }
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = cg_file_read(argv[3], FILE_MAX, &data, &len);
    if (rc < 0)
        cg_fatal("evidence inspect: %s: %s", argv[3], cg_strerror(rc));
    struct cg_buf b;
    cg_buf_init(&b, 256 * 1024);
    struct cg_snp_report r;
    struct cg_verdict v = {0};
    if (len == CG_SNP_REPORT_SIZE) {
        rc = cg_snp_report_parse(data, len, &r, &v);
        if (rc == 0) {
            (void)cg_buf_printf(&b, "{\"format\": \"sev-snp-report\", \"verified\": false, "
                                    "\"report\": ");
            cg_json_snp_report(&b, &r);
            (void)cg_buf_printf(&b, "}\n");
        }
    } else {
        struct cg_evidence ev = {0};
        struct cg_claims claims;
        rc = cg_ratls_inspect(data, len, &ev, &claims);
        if (rc == 0) {
            (void)cg_buf_printf(&b,
                                "{\"format\": \"ra-tls-certificate\", \"verified\": false, "
                                "\"tee\": \"%s\", \"claims\": {\"pubkey_sha256\": ",
                                cg_ratls_tee_name(ev.tag));
            cg_json_hex(&b, claims.pubkey_hash, 32);
            (void)cg_buf_printf(&b, ", \"iat\": %lld, \"nonces\": [", (long long)claims.iat);
            for (size_t i = 0; i < claims.n_nonces; i++) {
                (void)cg_buf_printf(&b, i ? ", " : "");
                cg_json_hex(&b, claims.nonces[i], CG_NONCE_LEN);
            }
            (void)cg_buf_printf(&b, "], \"model\": ");
            cg_json_model(&b, &claims.model);
            (void)cg_buf_printf(&b, "}, \"endorsements\": %zu", ev.n_certs);
            if ((ev.tag == CG_TAG_SIM || ev.tag == CG_TAG_SNP) &&
                cg_snp_report_parse(ev.evidence, ev.evidence_len, &r, &v) == 0) {
                (void)cg_buf_printf(&b, ", \"report\": ");
                cg_json_snp_report(&b, &r);
            }
            (void)cg_buf_printf(&b, "}\n");
        }
        cg_evidence_clear(&ev);
    }
    free(data);
    if (rc < 0) {
        cg_buf_free(&b);
        if (v.check[0] != '\0')
            cg_fatal("evidence inspect: %s: %s: expected %s, got %s", argv[3], v.check, v.expected,
                     v.actual);
        cg_fatal("evidence inspect: %s: neither an SNP report (%d bytes) nor an RA-TLS "
                 "certificate: %s",
                 argv[3], CG_SNP_REPORT_SIZE, cg_strerror(rc));
    }
    fputs(b.data, stdout);
    cg_buf_free(&b);
    return 0;
}
