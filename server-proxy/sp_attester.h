#ifndef SP_ATTESTER_H
#define SP_ATTESTER_H

#include <stdint.h>
#include <uv.h>

#include "ccgate/evidence.h"
#include "ccgate/ratls.h"
#include "ccgate/tls.h"

/*
 * Owns the server's TLS key and its certificates. The periodic certificate (evidence without
 * nonces, refreshed on a timer) answers every handshake without a nonce; handshakes with a
 * nonce are parked and batched: the nonces arriving within the window (or up to the batch
 * limit) share one evidence request, made on libuv's thread pool, never on the loop.
 */
struct sp_attester;

/* A parked handshake. The connection embeds it and passes it as the cg_tls data. */
struct sp_waiter {
    struct sp_waiter *prev, *next;
    struct cg_tls *tls;
    void *batch; /* non-NULL while parked */
    uint8_t nonce[CG_NONCE_LEN];
    /* The certificate is set (status 0) or evidence failed: resume or fail the handshake. */
    void (*ready)(struct sp_waiter *w, int status);
};

struct sp_attester_stats {
    uint64_t evidence_requests;
    uint64_t evidence_failures;
    uint64_t nonce_handshakes;
    uint64_t refreshes;
    int64_t cert_iat;
};

struct cg_gpu_provider;

/*
 * The GPU provider for --gpu mode: "none" (*out NULL), "sim" (only with the sim TEE, from
 * state_dir), "nvml" (NVML must find a GPU in CC mode), "auto" (NVML when a CC-capable GPU is
 * present, else none; never sim). collateral_dir: RIMs and OCSP responses for nvml/auto.
 * Returns 0 or a negative code with err one line naming what is wrong (a GPU not in CC
 * mode names the mode).
 */
int sp_attester_gpu_provider(const char *mode, const char *tee, const char *state_dir,
                             const char *collateral_dir, struct cg_gpu_provider **out, char *err,
                             size_t errlen);

/*
 * Creates the attester: generates the key and, blocking (start-up only), the first periodic
 * certificate. provider is borrowed; gpu (NULL: none) is owned from here on, freed even on
 * failure. Returns 0 or a negative code; caller frees with sp_attester_free() after the loop
 * stopped using it.
 */
int sp_attester_new(uv_loop_t *loop, struct cg_provider *provider, struct cg_gpu_provider *gpu,
                    unsigned refresh_s, unsigned window_ms, unsigned batch_max,
                    struct sp_attester **out);

/* Test only (benchmarks on the simulated TEE): every later evidence request, periodic or
 * with nonces, takes ms longer, as a real one does (an SNP report ~8 ms, a TDX quote up to
 * 1 s). The delay runs on libuv's thread pool, never on the loop. */
void sp_attester_set_evidence_delay(struct sp_attester *a, unsigned ms);

/* The sealed model the upstream loaded (NULL or not present: none), named in the claims of
 * every certificate made from now on; a change makes a new periodic certificate at once. */
void sp_attester_set_model(struct sp_attester *a, const struct cg_model_claim *m);

/* Stops the timers (for a clean loop exit); parked handshakes are failed. */
void sp_attester_close(struct sp_attester *a);
void sp_attester_free(struct sp_attester *a);

/* The cg_tls_cert_cb for the server context; arg is the attester. */
int sp_attester_cert_cb(void *arg, struct cg_tls *t, const uint8_t *nonce);

/* Removes a parked waiter (its connection is closing). Safe when not parked. */
void sp_attester_cancel(struct sp_waiter *w);

const struct sp_attester_stats *sp_attester_stats(const struct sp_attester *a);

#endif
