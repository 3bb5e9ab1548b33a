#ifndef TL_VERIFY_SNP_H
#define TL_VERIFY_SNP_H

/*
 * `ccgate verify snp REPORT --vcek CERT [--chain CERTS] [--at RFC3339] [--policy FILE]`:
 * verifies a raw SEV-SNP report (or the one inside an Azure HCL report) offline against the
 * AMD roots pinned in certs/amd/ and prints a JSON verdict on stdout (the parsed claims, or
 * {"verified": false, "check", "expected", "actual"}). CERT is the VCEK or VLEK (DER or PEM,
 * possibly followed by its ASK and ARK); CERTS any bundle of ASK, ASVK and ARK; the chain is
 * picked from them by issuer (cg_snp_chain_pick()), the pinned certificates fill the rest.
 * FILE is a ccgate policy (docs/policy.md) whose snp section is applied. argv[0] is "snp".
 * Returns the exit status: 0 verified, 1 rejected, 2 usage error or unreadable input.
 */
int tl_verify_snp_main(int argc, char **argv);

#endif
