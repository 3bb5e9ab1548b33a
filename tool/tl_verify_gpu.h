#ifndef TL_VERIFY_GPU_H
#define TL_VERIFY_GPU_H

/*
 * `ccgate verify gpu REPORT --certs CHAIN --nonce HEX [--driver-rim FILE] [--vbios-rim FILE]
 * [--ocsp DIR] [--at RFC3339] [--policy FILE]`: verifies an NVIDIA GPU attestation report
 * (SPDM request || response, hex text or raw bytes) offline: signature, device chain (PEM,
 * leaf first) to the pinned NVIDIA Device Identity CA, FWID, nonce, and when given the RIMs
 * (both or neither) and the OCSP responses (every DER file of DIR), then the policy's gpu
 * section. Without --policy: RIMs are checked when given, OCSP when --ocsp is given. Prints
 * a JSON verdict like `verify snp`; argv[0] is "gpu". Returns 0 verified, 1 rejected, 2 usage
 * error or unreadable input.
 */
int tl_verify_gpu_main(int argc, char **argv);

#endif
