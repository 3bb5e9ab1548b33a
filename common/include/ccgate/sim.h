#ifndef CCGATE_SIM_H
#define CCGATE_SIM_H

#include <stdint.h>

#include "ccgate/evidence.h"
#include "ccgate/snp.h"

/*
 * The simulated TEE. `ccgate sim-init` creates, in state_dir (mode 0700), a sim ARK and
 * ASK (RSA-4096, RSA-PSS SHA-384 like AMD's) and a sim VCEK (EC P-384) with AMD's VCEK
 * extensions. Creates only what is missing; never overwrites. Writes the SHA-256 of the
 * ARK's DER into ark_sha256. Returns 0 or a negative code (message on stderr via the log).
 */
int cg_sim_init(const char *state_dir, uint8_t ark_sha256[32]);

/*
 * Signs r with the sim VCEK of state_dir (which must exist) and writes the report into out:
 * r's signature fields are ignored, everything else is taken as given. For tests and tools
 * that need a validly signed report with chosen fields. Returns 0 or a negative code.
 */
int cg_sim_sign_report(const char *state_dir, const struct cg_snp_report *r,
                       uint8_t out[CG_SNP_REPORT_SIZE]);

/*
 * A provider that signs byte-exact SEV-SNP reports with the sim VCEK from state_dir. The
 * measurement is SHA-384 of measured_file (the server binary, /proc/self/exe), computed
 * once here. Reports are version 3 with Milan's CPUID (family 0x19, model 0x01), policy
 * 0x30000, the sim TCB of the VCEK's extensions and a random REPORT_ID; certs are [VCEK,
 * ASK, ARK] (DER) and the tag CG_TAG_SIM. The state must exist (cg_sim_init). Caller frees
 * with p->free(p).
 */
int cg_sim_provider_new(const char *state_dir, const char *measured_file, struct cg_provider **out);

/* Internal to the sim modules (sim.c, gpusim.c): creates path with mode, failing if it
 * exists (state is never overwritten); reads a whole file of at most max bytes (caller frees,
 * -ENOENT when absent). 0 or a negative code, logged. */
int cg__sim_write_new(const char *path, const void *data, size_t len, unsigned mode);
int cg__sim_read_all(const char *path, size_t max, uint8_t **out, size_t *out_len);

#endif
