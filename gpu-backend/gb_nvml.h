#ifndef GB_NVML_H
#define GB_NVML_H

/*
 * The GPU's confidential-computing mode through NVML, loaded at run time (dlopen of
 * libnvidia-ml.so.1, no build dependency): "on", "off", "devtools" (CC on with DevTools
 * mode, which is not confidential), or "unknown" when NVML or the query is missing.
 */
const char *gb_nvml_cc_mode(void);

#endif
