/*
 * libFuzzer target: the RA-TLS certificate path and the whole verify pipeline
 * (cg_ratls_verify) at a fixed verification time, nothing stubbed. Input byte 0 picks:
 *  even: the rest is a certificate (DER): X.509 -> extensions -> CMW -> claims -> evidence;
 *  odd:  the rest is a claims-buffer; the harness (the simulated TEE of its own state folder)
 *        binds it to its key (pubkey-hash and iat replaced), has the sim TEE sign a report
 *        over it and mints the certificate, so mutations of the claims (nonces, the GPU
 *        evidence bundle) reach the report binding, freshness, the SNP checks, the policy and
 *        the GPU appraisal.
 * Every rejection is named; an accepted certificate was made by the harness.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ccgate/cbor.h"
#include "ccgate/gpusim.h"
#include "ccgate/policy.h"
#include "ccgate/ratls.h"
#include "ccgate/sim.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    char dir[64];
    struct cg_provider *cpu;
    struct cg_ratls_key *key;
    struct cg_policy policy;
    time_t at;
} H;

static void cleanup(void)
{
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", H.dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_ratls: could not remove %s\n", H.dir);
}

static void setup(void)
{
    uint8_t ark[32], gpu_root[32];
    char a[65], g[65], json[512], err[256];
    snprintf(H.dir, sizeof(H.dir), "/tmp/cg_fuzz_ratls_XXXXXX");
    if (mkdtemp(H.dir) == NULL || cg_sim_init(H.dir, ark) != 0 ||
        cg_gpusim_init(H.dir, gpu_root) != 0 ||
        cg_sim_provider_new(H.dir, "/proc/self/exe", &H.cpu) != 0 || cg_ratls_key_new(&H.key) != 0)
        abort();
    atexit(cleanup);
    cg_hex(a, sizeof(a), ark, 32);
    cg_hex(g, sizeof(g), gpu_root, 32);
    snprintf(json, sizeof(json),
             "{\"sim\": {\"allow\": true, \"root_sha256\": \"%s\"}, \"snp\": {}, \"gpu\": "
             "{\"required\": false, \"allow_sim\": true, \"sim_root_sha256\": \"%s\"}}",
             a, g);
    if (cg_policy_parse(json, strlen(json), &H.policy, err, sizeof(err)) != 0)
        abort();
    H.at = time(NULL);
}

/* The harness state is made once, before the first input (RSA-4096 for the sim ARK/ASK can
 * take longer than one input may). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setup();
    return 0;
}

/* Claims bound to the harness key, a sim report over them, the certificate. */
static int mint(const uint8_t *claims_in, size_t len, uint8_t **der, size_t *der_len,
                uint8_t nonce[32], int *has_nonce)
{
    static struct cg_claims c;
    uint8_t *claims = NULL, rd[CG_REPORT_DATA_LEN] = {0};
    size_t claims_len = 0;
    struct cg_evidence ev = {0};
    if (cg_claims_decode(claims_in, len, &c) != 0)
        return -1;
    cg_ratls_key_spki_hash(H.key, c.pubkey_hash);
    c.iat = H.at;
    *has_nonce = c.n_nonces > 0;
    if (*has_nonce)
        memcpy(nonce, c.nonces[c.n_nonces - 1], 32);
    int rc = cg_claims_encode(&c, &claims, &claims_len);
    if (rc == 0 && cg_sha256(claims, claims_len, rd) != 0)
        rc = -1;
    if (rc == 0)
        rc = H.cpu->get(H.cpu, rd, &ev);
    if (rc == 0)
        rc = cg_ratls_cert_new(H.key, claims, claims_len, &ev, H.at, 600, der, der_len);
    cg_evidence_clear(&ev);
    free(claims);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct cg_attestation out;
    if (size < 1)
        return 0;
    struct cg_verdict v = {{0}, {0}, {0}};
    uint8_t *der = NULL, nonce[32];
    size_t der_len = 0;
    int has_nonce = 0, minted = data[0] & 1;
    if (minted) {
        if (mint(data + 1, size - 1, &der, &der_len, nonce, &has_nonce) != 0)
            return 0;
    } else {
        der_len = size - 1;
        der = malloc(der_len ? der_len : 1);
        if (der == NULL)
            return 0;
        memcpy(der, data + 1, der_len);
    }
    int rc = cg_ratls_verify(der, der_len, &H.policy, has_nonce ? nonce : NULL, H.at, &out, &v);
    if (rc != 0 && v.check[0] == '\0' && rc != CG_ECRYPTO)
        abort();
    if (rc == 0 && !minted)
        abort(); /* only the harness key's certificates can pass */
    free(der);
    return 0;
}
