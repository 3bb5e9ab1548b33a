#ifndef CCGATE_NVML_H
#define CCGATE_NVML_H

#include <stddef.h>

#include "ccgate/gpuev.h"

/*
 * The NVIDIA GPU provider: NVML loaded at run time (dlopen of libnvidia-ml.so.1; the build
 * never links it). Start-up requires the system's confidential-computing feature on and
 * DEVTOOLS mode off (nvmlSystemGetConfComputeState) and at least one GPU; each get() asks
 * every GPU for nvmlDeviceGetConfComputeGpuAttestationReport over the nonce with its
 * attestation certificate chain, and reads the collateral folder (RIMs, OCSP responses:
 * cg_gpuev_load_collateral) afresh, so an operator can refresh it while the server runs.
 */

/*
 * Returns 0 with *out (caller frees with p->free), or:
 * CG_ENOTEE: no NVML library, no GPU, or no confidential-computing support (err says which);
 * CG_EPOLICY: a CC-capable GPU whose CC mode is off or DEVTOOLS on (err names the mode);
 * CG_ECONFIG: the collateral folder is unreadable. err is one line.
 */
int cg_nvml_provider_new(const char *collateral_dir, struct cg_gpu_provider **out, char *err,
                         size_t errlen);

#endif
