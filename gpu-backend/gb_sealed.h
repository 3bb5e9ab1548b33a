#ifndef GB_SEALED_H
#define GB_SEALED_H

#include <stddef.h>
#include <stdint.h>

#include "ccgate/kbc.h"
#include "ccgate/sealed.h"
#include "gb_gguf.h"

/* What the worker loaded from a sealed model (for logs and the verification document). */
struct gb_sealed_info {
    char name[CG_SEAL_MAX_NAME + 1];
    uint64_t version;
    uint64_t min_version; /* the broker's minimum (0: none) */
    uint8_t plain_sha256[32];
};

/* Whether the file at path starts with the sealed-file magic (0 also when unreadable). */
int gb_sealed_is(const char *path);

/*
 * Loads a sealed GGUF: reads its header, fetches the key from the broker (kbc: RCAR with
 * evidence from kbc->tee), then decrypts chunk by chunk straight into the memory the GGUF
 * is parsed from (page-aligned, excluded from core dumps); the plaintext never touches a
 * file and the key is wiped once used. Checks the header tag, every chunk, the plaintext
 * digest and the version against the broker's minimum. Returns 0 with *out (owned by the
 * caller, as from gb_gguf_parse) and info, or a negative code with err naming the step and
 * the check ("sealed.version: expected at least 2, got 1").
 */
int gb_sealed_open(const char *path, const struct cg_kbc_config *kbc, struct gb_gguf **out,
                   struct gb_sealed_info *info, char *err, size_t errlen);

#endif
