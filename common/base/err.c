#include "ccgate/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

const char *cg_strerror(int err)
{
    switch (err) {
    case 0:
        return "success";
    case CG_ETLS:
        return "TLS failure";
    case CG_EHTTP:
        return "malformed HTTP";
    case CG_EEVIDENCE:
        return "evidence rejected";
    case CG_EPOLICY:
        return "policy rejected the evidence";
    case CG_ECONFIG:
        return "bad configuration";
    case CG_ECBOR:
        return "malformed CBOR";
    case CG_ELIMIT:
        return "limit exceeded";
    case CG_ECRYPTO:
        return "cryptographic failure";
    case CG_ETIMEOUT:
        return "timed out";
    case CG_ENOTEE:
        return "TEE not available";
    default:
        break;
    }
    /* Only codes libuv knows: for others uv_strerror() allocates a string nobody frees. */
#define CG_UV_KNOWN(name, text) case UV_##name:
    switch (err) {
        UV_ERRNO_MAP(CG_UV_KNOWN)
        return uv_strerror(err);
    default:
        return "unknown error";
    }
#undef CG_UV_KNOWN
}

int cg_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

int cg_reject(struct cg_verdict *v, int err, const char *check, const char *expected,
              const char *actual_fmt, ...)
{
    if (v == NULL)
        return err;
    snprintf(v->check, sizeof(v->check), "%s", check);
    snprintf(v->expected, sizeof(v->expected), "%s", expected);
    va_list ap;
    va_start(ap, actual_fmt);
    vsnprintf(v->actual, sizeof(v->actual), actual_fmt, ap);
    va_end(ap);
    return err;
}

void cg_hex(char *out, size_t outlen, const uint8_t *in, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    if (outlen == 0)
        return;
    for (size_t i = 0; i < n && o + 2 < outlen; i++) {
        out[o++] = digits[in[i] >> 4];
        out[o++] = digits[in[i] & 15];
    }
    out[o] = '\0';
}

static int nibble(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cg_unhex(uint8_t *out, size_t n, const char *hex)
{
    if (strlen(hex) != 2 * n)
        return CG_ECONFIG;
    for (size_t i = 0; i < n; i++) {
        int hi = nibble(hex[2 * i]);
        int lo = nibble(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return CG_ECONFIG;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
