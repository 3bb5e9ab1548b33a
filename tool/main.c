/* ccgate: the command-line tool (sim TEE set-up, policies, evidence inspection, verification). */
#include <stdio.h>
#include <string.h>

#include "ccgate/err.h"
#include "ccgate/gpusim.h"
#include "ccgate/log.h"
#include "ccgate/opts.h"
#include "ccgate/sim.h"
#include "tl_audit.h"
#include "tl_health.h"
#include "tl_seal.h"
#include "tl_token.h"
#include "tl_tool.h"
#include "tl_verify_gpu.h"
#include "tl_verify_snp.h"
#include "tl_verify_tdx.h"

static const char usage[] =
    "usage: ccgate COMMAND [options]\n"
    "\n"
    "commands:\n"
    "  sim-init --state-dir DIR [--gpu]  create the simulated TEE's ARK/ASK/VCEK chain in DIR\n"
    "                                    (INSECURE, for development); prints the sim ARK's\n"
    "                                    SHA-256 fingerprint; --gpu: also the simulated GPU,\n"
    "                                    its root's fingerprint on a second line\n"
    "  policy from-evidence --server HOST:PORT [--allow-sim] [--wait S] [--out FILE]\n"
    "                                    connect, verify the evidence chain, print a policy\n"
    "                                    pinning what was seen (trust on first use)\n"
    "  evidence inspect FILE             print the claims of an SNP report or an RA-TLS\n"
    "                                    certificate (PEM or DER), without trusting them\n"
    "  verify snp REPORT --vcek CERT [--chain CERTS] [--at RFC3339] [--policy FILE]\n"
    "  verify tdx QUOTE [--collateral F | --tcb-info F --qe-identity F --tcb-chain F]\n"
    "             [--crl F ...]\n"
    "             [--at RFC3339] [--policy FILE]\n"
    "  verify gpu REPORT --certs CHAIN --nonce HEX [--driver-rim F --vbios-rim F]\n"
    "             [--ocsp DIR] [--at RFC3339] [--policy FILE]\n"
    "                                    verify evidence offline against the pinned vendor\n"
    "                                    roots; JSON verdict; exit 0 verified, 1 rejected,\n"
    "                                    2 usage or unreadable input\n"
    "  seal --in PLAIN --out SEALED --key-out KEY.jwk [--name NAME] [--version N]\n"
    "  seal --inspect SEALED             seal a model (chunked AES-256-GCM); print a header\n"
    "  unseal --in SEALED --out PATH (--key KEY.jwk | --kbs URL --kbs-resource R ...)\n"
    "                                    decrypt onto tmpfs (inside the TEE only)\n"
    "  audit verify LOG                  check a key broker's audit log chain; exit 0 intact,\n"
    "                                    1 with the first bad line\n"
    "  health URL [--timeout-ms N]       GET http://HOST:PORT/PATH; exit 0 on a 2xx status,\n"
    "                                    1 otherwise (container HEALTHCHECKs, probes)\n"
    "  token hash [--name NAME] < TOKEN  print the ccgate-server --tokens entry (a SHA-256\n"
    "                                    digest) for a bearer token read from stdin\n"
    "  --help, --version\n"
    "\n"
    "`ccgate COMMAND --help` (e.g. `ccgate verify snp --help`) describes one command.\n";

static const char verify_usage[] =
    "usage: ccgate verify snp REPORT --vcek CERT [--chain CERTS] [--at RFC3339] [--policy FILE]\n"
    "       ccgate verify tdx QUOTE [--collateral FILE | --tcb-info F --qe-identity F\n"
    "                         --tcb-chain F] [--crl F ...] [--at RFC3339] [--policy FILE]\n"
    "       ccgate verify gpu REPORT --certs CHAIN --nonce HEX [--driver-rim F --vbios-rim F]\n"
    "                         [--ocsp DIR] [--at RFC3339] [--policy FILE]\n"
    "\n"
    "Verifies evidence offline against the pinned vendor roots and prints a JSON verdict;\n"
    "exit 0 verified, 1 rejected (the JSON names the check), 2 usage or unreadable input.\n"
    "`ccgate verify snp|tdx|gpu --help` describe the options.\n";

static const char policy_usage[] =
    "usage: ccgate policy from-evidence --server HOST:PORT [--allow-sim] [--wait SECONDS]\n"
    "                                   [--out FILE]\n"
    "\n"
    "Connects to a ccgate-server, verifies its evidence and prints (or writes) a policy that\n"
    "pins what was seen: trust on first use. `ccgate policy from-evidence --help` describes\n"
    "the options; docs/policy.md the policy file.\n";

static const char evidence_usage[] =
    "usage: ccgate evidence inspect FILE\n"
    "\n"
    "Prints the claims of an SNP report or an RA-TLS certificate (PEM or DER) without\n"
    "trusting them. `ccgate verify` checks them.\n";

/* A command group (verify, policy, evidence) without a known subcommand: its usage, on
 * stdout with status 0 for --help, else on stderr with status 2. */
static int group_usage(const char *group, const char *text, int argc, char **argv)
{
    if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        fputs(text, stdout);
        return 0;
    }
    if (argc >= 3)
        fprintf(stderr, "ccgate %s: unknown subcommand '%s'\n", group, argv[2]);
    fputs(text, stderr);
    return 2;
}

static int sim_init(int argc, char **argv)
{
    struct cg_opt o[] = {
        {"state-dir", "DIR", "state folder", NULL, NULL, NULL},
        {"help", NULL, "print this help", NULL, NULL, NULL},
        {"gpu", NULL, "also the simulated NVIDIA GPU; its root's SHA-256 on a second line", NULL,
         NULL, NULL},
    };
    char err[256];
    if (cg_opts_parse(argc, argv, 2, o, 3, err, sizeof(err)) < 0)
        cg_fatal("sim-init: %s", err);
    if (o[1].value != NULL) {
        cg_opts_usage(stdout, "ccgate sim-init --state-dir DIR [--gpu]",
                      "Creates (or loads) the simulated TEE's chain and prints the sim ARK's "
                      "SHA-256.",
                      o, 3);
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
    if (o[2].value != NULL) {
        if ((rc = cg_gpusim_init(o[0].value, root)) < 0)
            cg_fatal("sim-init --gpu: %s: %s", o[0].value, cg_strerror(rc));
        cg_hex(hex, sizeof(hex), root, sizeof(root));
        printf("%s\n", hex);
    }
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
    if (strcmp(cmd, "verify") == 0 && argc >= 3 && strcmp(argv[2], "gpu") == 0)
        return tl_verify_gpu_main(argc - 2, argv + 2);
    if (strcmp(cmd, "evidence") == 0 && argc >= 3 && strcmp(argv[2], "inspect") == 0)
        return tl_tool_evidence_inspect(argc, argv);
    if (strcmp(cmd, "health") == 0)
        return tl_health_main(argc, argv);
    if (strcmp(cmd, "token") == 0)
        return tl_token_main(argc, argv);
    if (strcmp(cmd, "seal") == 0)
        return tl_seal_main(argc, argv);
    if (strcmp(cmd, "unseal") == 0)
        return tl_unseal_main(argc, argv);
    if (strcmp(cmd, "audit") == 0 && argc >= 3 && strcmp(argv[2], "verify") == 0)
        return tl_audit_verify_main(argc, argv);
    if (strcmp(cmd, "verify") == 0)
        return group_usage("verify", verify_usage, argc, argv);
    if (strcmp(cmd, "policy") == 0)
        return group_usage("policy", policy_usage, argc, argv);
    if (strcmp(cmd, "evidence") == 0)
        return group_usage("evidence", evidence_usage, argc, argv);
    cg_fatal("unknown command '%s' (see --help)", cmd);
}
