#include "ccgate/nvml.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The NVML ABI this module uses (nvml.h; ATTESTATION.md 3.1). */
typedef int nvml_return_t;
typedef struct nvml_device *nvml_device_t;
#define NVML_SUCCESS 0
#define NVML_ERROR_NOT_SUPPORTED 3
#define NVML_CC_FEATURE_ENABLED 1
#define NVML_CC_DEVTOOLS_ON 1
#define NVML_ARCH_HOPPER 9
#define NVML_ARCH_BLACKWELL 10
#define NVML_NONCE_SIZE 0x20
#define NVML_REPORT_SIZE 0x2000
#define NVML_CEC_REPORT_SIZE 0x1000
#define NVML_CERT_CHAIN_SIZE 0x1000
#define NVML_ATTESTATION_CHAIN_SIZE 0x1400

struct nvml_cc_state {
    unsigned int environment;
    unsigned int cc_feature;
    unsigned int devtools_mode;
};

struct nvml_report {
    unsigned int is_cec_report_present;
    unsigned int report_size;
    unsigned int cec_report_size;
    unsigned char nonce[NVML_NONCE_SIZE];
    unsigned char report[NVML_REPORT_SIZE];
    unsigned char cec_report[NVML_CEC_REPORT_SIZE];
};

struct nvml_certificate {
    unsigned int cert_chain_size;
    unsigned int attestation_chain_size;
    unsigned char cert_chain[NVML_CERT_CHAIN_SIZE];
    unsigned char attestation_chain[NVML_ATTESTATION_CHAIN_SIZE];
};

struct nvml {
    struct cg_gpu_provider base;
    void *lib;
    char *collateral_dir;
    nvml_return_t (*init)(void);
    nvml_return_t (*shutdown)(void);
    nvml_return_t (*count)(unsigned int *);
    nvml_return_t (*handle)(unsigned int, nvml_device_t *);
    nvml_return_t (*cc_state)(struct nvml_cc_state *);
    nvml_return_t (*report)(nvml_device_t, struct nvml_report *);
    nvml_return_t (*certificate)(nvml_device_t, struct nvml_certificate *);
    nvml_return_t (*arch)(nvml_device_t, unsigned int *);
    const char *(*error_string)(nvml_return_t);
    unsigned n_gpus;
};

static const char *why(struct nvml *n, nvml_return_t r)
{
    const char *s = n->error_string != NULL ? n->error_string(r) : NULL;
    return s != NULL ? s : "unknown NVML error";
}

/* dlsym into a function pointer without a cast warning (POSIX guarantees the size). */
static int sym(void *lib, const char *name, void *fn)
{
    void *p = dlsym(lib, name);
    memcpy(fn, &p, sizeof(p));
    return p != NULL ? 0 : -1;
}

static void nvml_free(struct cg_gpu_provider *base)
{
    struct nvml *n = (struct nvml *)base;
    if (n->shutdown != NULL)
        (void)n->shutdown();
    if (n->lib != NULL)
        dlclose(n->lib);
    free(n->collateral_dir);
    free(n);
}

/* The system's CC state: 0, or an error with err naming the mode. */
static int check_state(struct nvml *n, char *err, size_t errlen)
{
    struct nvml_cc_state st = {0};
    nvml_return_t r = n->cc_state(&st);
    if (r == NVML_ERROR_NOT_SUPPORTED) {
        snprintf(err, errlen, "GPU: no confidential-computing support on this system (NVML: %s)",
                 why(n, r));
        return CG_ENOTEE;
    }
    if (r != NVML_SUCCESS) {
        snprintf(err, errlen, "GPU: cannot read the confidential-computing state (NVML: %s)",
                 why(n, r));
        return CG_ENOTEE;
    }
    if (st.cc_feature != NVML_CC_FEATURE_ENABLED) {
        snprintf(err, errlen,
                 "GPU: confidential-computing mode is off (NVML ccFeature=%u, expected 1 = on; "
                 "environment=%u)",
                 st.cc_feature, st.environment);
        return CG_EPOLICY;
    }
    if (st.devtools_mode == NVML_CC_DEVTOOLS_ON) {
        snprintf(err, errlen, "GPU: DEVTOOLS mode is on (NVML devToolsMode=1, expected 0 = off)");
        return CG_EPOLICY;
    }
    return 0;
}

static int one_gpu(struct nvml *n, unsigned index, const uint8_t nonce[32], struct cg_gpuev_gpu *g)
{
    nvml_device_t dev;
    struct nvml_report *rep = calloc(1, sizeof(*rep));
    struct nvml_certificate *cert = calloc(1, sizeof(*cert));
    unsigned int arch = 0;
    int rc = -ENOMEM;
    if (rep == NULL || cert == NULL)
        goto out;
    rc = CG_ENOTEE;
    memcpy(rep->nonce, nonce, NVML_NONCE_SIZE);
    if (n->handle(index, &dev) != NVML_SUCCESS || n->report(dev, rep) != NVML_SUCCESS ||
        n->certificate(dev, cert) != NVML_SUCCESS || rep->report_size == 0 ||
        rep->report_size > NVML_REPORT_SIZE || cert->attestation_chain_size == 0 ||
        cert->attestation_chain_size > NVML_ATTESTATION_CHAIN_SIZE)
        goto out;
    rc = -ENOMEM;
    g->report = malloc(rep->report_size);
    g->chain_pem = malloc(cert->attestation_chain_size + 1);
    if (g->report == NULL || g->chain_pem == NULL)
        goto out;
    memcpy(g->report, rep->report, rep->report_size);
    g->report_len = rep->report_size;
    memcpy(g->chain_pem, cert->attestation_chain, cert->attestation_chain_size);
    g->chain_pem[cert->attestation_chain_size] = '\0';
    g->chain_len = strnlen(g->chain_pem, cert->attestation_chain_size);
    if (n->arch == NULL || n->arch(dev, &arch) != NVML_SUCCESS)
        arch = 0;
    snprintf(g->arch, sizeof(g->arch), "%s",
             arch == NVML_ARCH_HOPPER      ? "HOPPER"
             : arch == NVML_ARCH_BLACKWELL ? "BLACKWELL"
                                           : "UNKNOWN");
    rc = 0;
out:
    free(rep);
    free(cert);
    return rc;
}

static int nvml_get(struct cg_gpu_provider *base, const uint8_t nonce[32], struct cg_gpuev *out)
{
    struct nvml *n = (struct nvml *)base;
    struct nvml_cc_state st = {0};
    char err[256];
    if (n->cc_state(&st) != NVML_SUCCESS)
        return CG_ENOTEE;
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < n->n_gpus; i++) {
        out->n_gpus = i + 1;
        out->gpus[i].cc_mode = st.cc_feature == NVML_CC_FEATURE_ENABLED;
        out->gpus[i].devtools = st.devtools_mode == NVML_CC_DEVTOOLS_ON;
        rc = one_gpu(n, i, nonce, &out->gpus[i]);
    }
    if (rc == 0 && n->collateral_dir != NULL)
        rc = cg_gpuev_load_collateral(n->collateral_dir, out, err, sizeof(err));
    return rc;
}

int cg_nvml_provider_new(const char *collateral_dir, struct cg_gpu_provider **out, char *err,
                         size_t errlen)
{
    struct nvml *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return -ENOMEM;
    n->base.name = "nvml";
    n->base.get = nvml_get;
    n->base.free = nvml_free;
    int rc = CG_ENOTEE;
    n->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (n->lib == NULL) {
        snprintf(err, errlen, "GPU: NVML (libnvidia-ml.so.1) not found: no NVIDIA driver here");
        goto fail;
    }
    (void)sym(n->lib, "nvmlErrorString", &n->error_string);
    (void)sym(n->lib, "nvmlDeviceGetArchitecture", &n->arch);
    if (sym(n->lib, "nvmlInit_v2", &n->init) != 0 ||
        sym(n->lib, "nvmlShutdown", &n->shutdown) != 0 ||
        sym(n->lib, "nvmlDeviceGetCount_v2", &n->count) != 0 ||
        sym(n->lib, "nvmlDeviceGetHandleByIndex_v2", &n->handle) != 0 ||
        sym(n->lib, "nvmlSystemGetConfComputeState", &n->cc_state) != 0 ||
        sym(n->lib, "nvmlDeviceGetConfComputeGpuAttestationReport", &n->report) != 0 ||
        sym(n->lib, "nvmlDeviceGetConfComputeGpuCertificate", &n->certificate) != 0) {
        n->shutdown = NULL;
        snprintf(err, errlen,
                 "GPU: this NVML lacks the confidential-computing calls (driver "
                 "too old; R535 or later needed)");
        goto fail;
    }
    nvml_return_t r = n->init();
    if (r != NVML_SUCCESS) {
        n->shutdown = NULL;
        snprintf(err, errlen, "GPU: NVML did not start (%s)", why(n, r));
        goto fail;
    }
    unsigned int count = 0;
    if ((r = n->count(&count)) != NVML_SUCCESS || count == 0) {
        snprintf(err, errlen, "GPU: no NVIDIA GPU (NVML: %s, %u devices)",
                 r == NVML_SUCCESS ? "ok" : why(n, r), count);
        goto fail;
    }
    if (count > CG_GPUEV_MAX_GPUS) {
        snprintf(err, errlen, "GPU: %u GPUs, at most %d supported", count, CG_GPUEV_MAX_GPUS);
        rc = CG_ELIMIT;
        goto fail;
    }
    n->n_gpus = count;
    if ((rc = check_state(n, err, errlen)) != 0)
        goto fail;
    if (collateral_dir != NULL) {
        struct cg_gpuev probe = {0};
        rc = cg_gpuev_load_collateral(collateral_dir, &probe, err, errlen);
        cg_gpuev_clear(&probe);
        if (rc != 0 || (n->collateral_dir = strdup(collateral_dir)) == NULL) {
            rc = rc != 0 ? rc : -ENOMEM;
            goto fail;
        }
    }
    *out = &n->base;
    return 0;
fail:
    nvml_free(&n->base);
    return rc;
}
