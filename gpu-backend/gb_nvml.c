#include "gb_nvml.h"

#include <dlfcn.h>
#include <stddef.h>

/* nvmlConfComputeSystemState_t of nvml.h (NVML 535+). */
struct cc_state {
    unsigned int environment, cc_feature, dev_tools_mode;
};

const char *gb_nvml_cc_mode(void)
{
    const char *mode = "unknown";
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
        return mode;
    int (*init)(void) = (int (*)(void))dlsym(lib, "nvmlInit_v2");
    int (*shutdown)(void) = (int (*)(void))dlsym(lib, "nvmlShutdown");
    int (*get)(struct cc_state *) =
        (int (*)(struct cc_state *))dlsym(lib, "nvmlSystemGetConfComputeState");
    if (init != NULL && shutdown != NULL && init() == 0) {
        struct cc_state st = {0};
        if (get != NULL && get(&st) == 0)
            mode = st.cc_feature == 0 ? "off" : st.dev_tools_mode != 0 ? "devtools" : "on";
        shutdown();
    }
    dlclose(lib);
    return mode;
}
