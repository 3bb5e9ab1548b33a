#ifndef TL_TOKEN_H
#define TL_TOKEN_H

/* `ccgate token hash [--name NAME]`: reads one bearer token from stdin (never from argv, which
 * other users of the machine can read) and prints its ccgate-server --tokens file entry.
 * Exit 0; 2 on a bad token, name or flag. */
int tl_token_main(int argc, char **argv);

#endif
