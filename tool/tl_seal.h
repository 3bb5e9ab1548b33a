#ifndef TL_SEAL_H
#define TL_SEAL_H

/* `ccgate seal ...` and `ccgate seal --inspect SEALED`: exit 0, or 2 on bad input. */
int tl_seal_main(int argc, char **argv);

/* `ccgate unseal ...`: exit 0, 1 when the file, key or broker refused, 2 on bad input. */
int tl_unseal_main(int argc, char **argv);

#endif
