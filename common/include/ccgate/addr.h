#ifndef CCGATE_ADDR_H
#define CCGATE_ADDR_H

#include <sys/socket.h>
#include <sys/un.h>

/* A listen or connect address: "127.0.0.1:8080", "[::1]:8443", "localhost:80" (numeric or
 * resolved once at start-up) or "unix:/path/to.sock". */
struct cg_addr {
    int is_unix;
    struct sockaddr_storage ss; /* TCP */
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    char text[128]; /* as given, for logs and server identity */
};

/* Parses s; allow_unix says whether "unix:" is acceptable here. Returns 0 or CG_ECONFIG with
 * err saying what was expected. Resolves host names with getaddrinfo (start-up only). */
int cg_addr_parse(const char *s, int allow_unix, struct cg_addr *out, char *err, size_t errlen);

/* 1 when a reaches only this machine: a unix socket, 127.0.0.0/8, ::1 or ::ffff:127.x. */
int cg_addr_is_loopback(const struct cg_addr *a);

#endif
