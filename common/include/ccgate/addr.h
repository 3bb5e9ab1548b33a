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

#define CG_ADDR_UNIX 1u  /* "unix:PATH" is acceptable here */
#define CG_ADDR_PORT0 2u /* port 0 (a listener: the kernel picks one) is acceptable here */

/* Parses s under flags (CG_ADDR_*; 0 or 1 as before: whether "unix:" is acceptable). Returns
 * 0 or CG_ECONFIG with err saying what was expected. Resolves host names with getaddrinfo
 * (start-up only). */
int cg_addr_parse(const char *s, unsigned flags, struct cg_addr *out, char *err, size_t errlen);

/* 1 when a reaches only this machine: a unix socket, 127.0.0.0/8, ::1 or ::ffff:127.x. */
int cg_addr_is_loopback(const struct cg_addr *a);

/* Writes an IPv4 or IPv6 socket address as "IP:PORT" or "[IP]:PORT" into out (NUL-terminated,
 * truncated to n). Returns 0, or -EAFNOSUPPORT (out set to "") for any other family. */
int cg_addr_format(const struct sockaddr *sa, char *out, size_t n);

#endif
