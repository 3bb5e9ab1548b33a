#ifndef TL_HEALTH_H
#define TL_HEALTH_H

/* `ccgate health URL [--timeout-ms N]`: GETs a plain-HTTP URL; exit 0 on a 2xx status, 1 on
 * any other status, a refused or timed-out connection, 2 on a bad URL or flag. */
int tl_health_main(int argc, char **argv);

#endif
