#include "ccgate/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ccgate/err.h"

int cg_addr_parse(const char *s, unsigned flags, struct cg_addr *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (strlen(s) >= sizeof(out->text)) {
        snprintf(err, errlen, "address too long: expected HOST:PORT");
        return CG_ECONFIG;
    }
    snprintf(out->text, sizeof(out->text), "%s", s);
    if (strncmp(s, "unix:", 5) == 0) {
        if (!(flags & CG_ADDR_UNIX)) {
            snprintf(err, errlen, "'%s': expected HOST:PORT (no unix socket here)", s);
            return CG_ECONFIG;
        }
        if (s[5] == '\0' || strlen(s + 5) >= sizeof(out->path)) {
            snprintf(err, errlen, "'%s': expected unix:/path of at most %zu bytes", s,
                     sizeof(out->path) - 1);
            return CG_ECONFIG;
        }
        out->is_unix = 1;
        snprintf(out->path, sizeof(out->path), "%s", s + 5);
        return 0;
    }

    char host[128];
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || close[1] != ':' || (size_t)(close - s - 1) >= sizeof(host)) {
            snprintf(err, errlen, "'%s': expected [IPV6]:PORT", s);
            return CG_ECONFIG;
        }
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL || colon == s || (size_t)(colon - s) >= sizeof(host) ||
            memchr(s, ':', (size_t)(colon - s)) != NULL) {
            snprintf(err, errlen, "'%s': expected HOST:PORT", s);
            return CG_ECONFIG;
        }
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    long min_port = (flags & CG_ADDR_PORT0) ? 0 : 1;
    if (colon[1] == '\0' || *end != '\0' || port < min_port || port > 65535) {
        snprintf(err, errlen, "'%s': expected a port between %ld and 65535", s, min_port);
        return CG_ECONFIG;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errlen, "'%s': cannot resolve host '%s': %s", s, host, gai_strerror(rc));
        return CG_ECONFIG;
    }
    memcpy(&out->ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (out->ss.ss_family == AF_INET)
        ((struct sockaddr_in *)&out->ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&out->ss)->sin6_port = htons((uint16_t)port);
    return 0;
}

int cg_addr_is_loopback(const struct cg_addr *a)
{
    if (a->is_unix)
        return 1;
    if (a->ss.ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *v6 = &((const struct sockaddr_in6 *)&a->ss)->sin6_addr;
    if (a->ss.ss_family != AF_INET6)
        return 0;
    return IN6_IS_ADDR_LOOPBACK(v6) || (IN6_IS_ADDR_V4MAPPED(v6) && v6->s6_addr[12] == 127);
}

int cg_addr_format(const struct sockaddr *sa, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "";
    if (n > 0)
        out[0] = '\0';
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        (void)inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(out, n, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        (void)inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(out, n, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
        return 0;
    }
    return -EAFNOSUPPORT;
}
