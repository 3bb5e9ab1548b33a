#ifndef TL_AUDIT_H
#define TL_AUDIT_H

/* `ccgate audit verify LOG`: exit 0 when the chain holds, 1 at the first bad line, 2 usage. */
int tl_audit_verify_main(int argc, char **argv);

#endif
