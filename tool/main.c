/* ccgate: the command-line tool (sim TEE set-up, policies, evidence inspection, verification). */
#include <stdio.h>
#include <string.h>

#include "ccgate/err.h"
#include "ccgate/log.h"
#include "ccgate/opts.h"
#include "ccgate/sim.h"
#include "tl_health.h"
#include "tl_tool.h"
#include "tl_verify_snp.h"
#include "tl_verify_tdx.h"

static const char usage[] =
    "usage: ccgate COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  sim-init --state-dir DIR          create the simulated TEE's ARK/ASK/VCEK chain in DIR\n"
    "                                    (INSECURE, for development); prints the sim ARK's\n"
    "                                    SHA-256 fingerprint\n"
    "  policy from-evidence --server HOST:PORT [--allow-sim]\n"
    "                                    connect, verify the evidence chain, print a policy\n"
    "                                    pinning what was seen (trust on first use)\n"
    "  evidence inspect FILE             print the claims of an SNP report or an RA-TLS\n"
    "                                    certificate (PEM or DER), without trusting them\n"
    "  verify snp REPORT --vcek CERT --chain ASK_ARK.pem [--at RFC3339] [--policy FILE]\n"
    "  verify tdx QUOTE [--tcb-info F --qe-identity F --tcb-chain F] [--crl F ...]\n"
    "             [--at RFC3339] [--policy FILE]\n"
    "                                    verify evidence offline against the pinned vendor\n"
    "                                    roots; JSON verdict; exit 0 verified, 1 rejected,\n"
    "                                    2 usage or unreadable input\n"
    "  health URL [--timeout-ms N]       GET http://HOST:PORT/PATH; exit 0 on a 2xx status,\n"
    "                                    1 otherwise (container HEALTHCHECKs, probes)\n"
    "  --help, --version\n";

static int sim_init(int argc, char **argv)
{
    struct cg_opt o[] = {
        {"state-dir", "DIR", "state folder", NULL, NULL, NULL},
        {"help", NULL, "print this help", NULL, NULL, NULL},
    };
    char err[256];
    if (cg_opts_parse(argc, argv, 2, o, 2, err, sizeof(err)) < 0)
        cg_fatal("sim-init: %s", err);
    if (o[1].value != NULL) {
        cg_opts_usage(stdout, "ccgate sim-init --state-dir DIR",
                      "Creates (or loads) the simulated TEE's chain and prints the sim ARK's "
                      "SHA-256.",
                      o, 2);
        return 0;
    }
    if (o[0].value == NULL)
        cg_fatal("sim-init: --state-dir DIR is required");
    uint8_t root[32];
    int rc = cg_sim_init(o[0].value, root);
    if (rc < 0)
        cg_fatal("sim-init: %s: %s", o[0].value, cg_strerror(rc));
    char hex[65];
    cg_hex(hex, sizeof(hex), root, sizeof(root));
    fprintf(stderr, "ccgate: simulated TEE ready in %s (INSECURE: for development only)\n",
            o[0].value);
    printf("%s\n", hex);
    return 0;
}

int main(int argc, char **argv)
{
    cg_log_init("ccgate", CG_LOG_TEXT, CG_LOG_WARN);
    if (argc < 2)
        cg_fatal("a command is needed (see --help)");
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("ccgate %s\n", CCGATE_VERSION);
        return 0;
    }
    if (strcmp(cmd, "sim-init") == 0)
        return sim_init(argc, argv);
    if (strcmp(cmd, "policy") == 0 && argc >= 3 && strcmp(argv[2], "from-evidence") == 0)
        return tl_tool_policy_from_evidence(argc, argv);
    if (strcmp(cmd, "verify") == 0 && argc >= 3 && strcmp(argv[2], "snp") == 0)
        return tl_verify_snp_main(argc - 2, argv + 2);
    if (strcmp(cmd, "verify") == 0 && argc >= 3 && strcmp(argv[2], "tdx") == 0)
        return tl_verify_tdx_main(argc - 2, argv + 2);
    if (strcmp(cmd, "evidence") == 0 && argc >= 3 && strcmp(argv[2], "inspect") == 0)
        return tl_tool_evidence_inspect(argc, argv);
    if (strcmp(cmd, "health") == 0)
        return tl_health_main(argc, argv);
    cg_fatal("unknown command '%s' (see --help)", cmd);
}
