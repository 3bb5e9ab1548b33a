#ifndef TL_VERIFY_TDX_H
#define TL_VERIFY_TDX_H

/*
 * `ccgate verify tdx QUOTE [--tcb-info F --qe-identity F --tcb-chain F] [--crl F ...]
 * [--at RFC3339] [--policy FILE]`: verifies a TDX quote offline and prints a JSON verdict
 * on stdout (the parsed claims, or {"verified": false, "check", "expected", "actual"}).
 * argv[0] is the command's own name ("tdx"), as for main(). FILE for --policy is a JSON
 * object whose "tdx" member is a TDX policy (cg_tdx_policy_parse()). --at defaults to now.
 * Returns the exit status: 0 verified (and accepted by the policy, if one is given),
 * 1 rejected, 2 usage error or unreadable input (message on stderr).
 */
int tl_verify_tdx_main(int argc, char **argv);

#endif
