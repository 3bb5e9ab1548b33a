#include "tl_token.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ccgate/opts.h"
#include "ccgate/token.h"

static const char help[] =
    "usage: ccgate token hash [--name NAME] < TOKEN\n"
    "\n"
    "Reads one bearer token from stdin (a trailing newline is dropped) and prints the line\n"
    "to add to ccgate-server's --tokens file: `sha256:<hex> NAME`. Only the digest is kept\n"
    "there. The token must be random, 32 to 512 characters that an Authorization: Bearer\n"
    "header can carry, e.g.:\n"
    "    openssl rand -hex 32 > alice.token\n"
    "    ccgate token hash --name alice < alice.token >> tokens\n"
    "    kill -HUP <ccgate-server pid>      # reload the file without a restart\n";

int tl_token_main(int argc, char **argv)
{
    struct cg_opt o[] = {
        {"name", "NAME", "names the token in logs (letters, digits, ._@-)", NULL, NULL, NULL},
        {"help", NULL, "print this help", NULL, NULL, NULL},
    };
    char err[256];
    if (argc >= 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
        fputs(help, stdout);
        return 0;
    }
    if (argc < 3 || strcmp(argv[2], "hash") != 0) {
        if (argc >= 3)
            fprintf(stderr, "ccgate token: unknown subcommand '%s'\n", argv[2]);
        fputs(help, stderr);
        return 2;
    }
    if (cg_opts_parse(argc, argv, 3, o, 2, err, sizeof(err)) < 0) {
        fprintf(stderr, "ccgate token hash: %s\n", err);
        fputs(help, stderr);
        return 2;
    }
    if (o[1].value != NULL) {
        fputs(help, stdout);
        return 0;
    }
    if (isatty(STDIN_FILENO))
        fprintf(stderr, "ccgate token hash: reading the token from the terminal\n");
    char buf[CG_TOKEN_MAX_LEN + 3];
    size_t len = fread(buf, 1, sizeof(buf), stdin);
    if (ferror(stdin)) {
        fprintf(stderr, "ccgate token hash: cannot read stdin\n");
        return 2;
    }
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    char line[128];
    int rc = cg_token_entry(buf, len, o[0].value, line, sizeof(line), err, sizeof(err));
    memset(buf, 0, sizeof(buf));
    if (rc < 0) {
        fprintf(stderr, "ccgate token hash: %s\n", err);
        return 2;
    }
    fputs(line, stdout);
    return 0;
}
