/*
 * libFuzzer target: the RA-TLS CBOR decoders on arbitrary bytes: the conceptual message
 * wrapper (cg_cmw_decode), the claims map (cg_claims_decode) and the endorsements
 * (cg_endorsements_decode). Spans they return must lie inside the input, counts within
 * their limits, and what decodes must re-encode and decode to the same values.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/cbor.h"
#include "ccgate/evidence.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t size)
{
    return p >= buf && n <= size && (size_t)(p - buf) <= size - n;
}

static void cmw(const uint8_t *buf, size_t size)
{
    uint32_t tag;
    const uint8_t *ev, *claims;
    size_t ev_len, claims_len;
    if (cg_cmw_decode(buf, size, &tag, &ev, &ev_len, &claims, &claims_len) != 0)
        return;
    if (!inside(ev, ev_len, buf, size) || !inside(claims, claims_len, buf, size))
        abort();
    uint8_t *out = NULL;
    size_t out_len;
    uint32_t tag2;
    const uint8_t *ev2, *claims2;
    size_t ev2_len, claims2_len;
    if (cg_cmw_encode(tag, ev, ev_len, claims, claims_len, &out, &out_len) == 0) {
        if (cg_cmw_decode(out, out_len, &tag2, &ev2, &ev2_len, &claims2, &claims2_len) != 0 ||
            tag2 != tag || ev2_len != ev_len || claims2_len != claims_len ||
            memcmp(ev2, ev, ev_len) != 0 || memcmp(claims2, claims, claims_len) != 0)
            abort();
    }
    free(out);
}

static void claims(const uint8_t *buf, size_t size)
{
    static struct cg_claims c, c2;
    if (cg_claims_decode(buf, size, &c) != 0)
        return;
    if (c.n_nonces > CG_MAX_NONCES || (c.gpu != NULL && !inside(c.gpu, c.gpu_len, buf, size)))
        abort();
    uint8_t *out = NULL;
    size_t out_len;
    if (cg_claims_encode(&c, &out, &out_len) == 0) {
        if (cg_claims_decode(out, out_len, &c2) != 0 || c2.n_nonces != c.n_nonces ||
            c2.iat != c.iat || memcmp(c2.pubkey_hash, c.pubkey_hash, 32) != 0 ||
            memcmp(c2.nonces, c.nonces, c.n_nonces * CG_NONCE_LEN) != 0 ||
            c2.gpu_len != c.gpu_len || c2.model.present != c.model.present ||
            strcmp(c2.model.name, c.model.name) != 0 || c2.model.version != c.model.version ||
            memcmp(c2.model.sha256, c.model.sha256, 32) != 0)
            abort();
    }
    free(out);
}

static void endorsements(const uint8_t *buf, size_t size)
{
    struct cg_evidence e = {0};
    if (cg_endorsements_decode(buf, size, &e) == 0) {
        if (e.n_certs > CG_EVIDENCE_MAX_CERTS)
            abort();
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < e.n_certs; i++)
            for (size_t j = 0; j < e.cert_lens[i]; j++)
                sink ^= e.certs[i][j];
        (void)sink;
    }
    cg_evidence_clear(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A private copy of exactly size bytes, so that any overread is caught. */
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    cmw(buf, size);
    claims(buf, size);
    endorsements(buf, size);
    free(buf);
    return 0;
}
