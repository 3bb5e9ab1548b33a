#include "tl_health.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ccgate/addr.h"
#include "ccgate/opts.h"

#define URL_MAX 512
#define STATUS_LINE_MAX 1024

static const char help[] =
    "usage: ccgate health URL [--timeout-ms N]\n"
    "\n"
    "GETs URL (http://HOST:PORT/PATH, plain HTTP: an admin endpoint such as /healthz or\n"
    "the worker's /health) and exits 0 when the answer's status is 2xx, 1 when it is\n"
    "anything else, the connection fails or the timeout (default 3000 ms) passes, 2 on\n"
    "a bad URL. For container HEALTHCHECKs and probes where no curl is installed.\n";

/* Milliseconds left until deadline (a CLOCK_MONOTONIC time in ms), at least 0. */
static int left_ms(long long deadline)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    return now >= deadline ? 0 : (int)(deadline - now);
}

/* Waits for fd to be ready for events before the deadline: 0, or -ETIMEDOUT / -errno. */
static int wait_fd(int fd, short events, long long deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int n = poll(&p, 1, left_ms(deadline));
        if (n > 0)
            return 0;
        if (n == 0)
            return -ETIMEDOUT;
        if (errno != EINTR)
            return -errno;
    }
}

/* Connects, sends a GET for path and reads the status line; the status code or -errno. */
static int get_status(const struct cg_addr *a, const char *hostport, const char *path,
                      long long deadline)
{
    char req[URL_MAX + 128], line[STATUS_LINE_MAX + 1];
    size_t got = 0;
    int rc, fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    socklen_t alen =
        a->ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (connect(fd, (const struct sockaddr *)&a->ss, alen) < 0 && errno != EINPROGRESS) {
        rc = -errno;
        goto out;
    }
    if ((rc = wait_fd(fd, POLLOUT, deadline)) < 0)
        goto out;
    int soerr = 0;
    socklen_t sl = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr != 0) {
        rc = soerr != 0 ? -soerr : -errno;
        goto out;
    }
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ccgate-health\r\n"
                     "Connection: close\r\n\r\n",
                     path, hostport);
    for (size_t off = 0; off < (size_t)n;) {
        ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if ((rc = wait_fd(fd, POLLOUT, deadline)) < 0)
                goto out;
            continue;
        }
        if (w < 0) {
            rc = -errno;
            goto out;
        }
        off += (size_t)w;
    }
    /* Only the status line matters: "HTTP/1.x NNN reason\r\n". */
    while (memchr(line, '\n', got) == NULL && got < STATUS_LINE_MAX) {
        ssize_t r = recv(fd, line + got, STATUS_LINE_MAX - got, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            if ((rc = wait_fd(fd, POLLIN, deadline)) < 0)
                goto out;
            continue;
        }
        if (r <= 0) {
            rc = r < 0 ? -errno : -ECONNRESET;
            goto out;
        }
        got += (size_t)r;
    }
    line[got] = '\0';
    if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
        line[9] < '1' || line[9] > '5' || line[10] < '0' || line[10] > '9' || line[11] < '0' ||
        line[11] > '9' || (line[12] != ' ' && line[12] != '\r')) {
        rc = -EPROTO;
        goto out;
    }
    rc = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
out:
    close(fd);
    return rc;
}

int tl_health_main(int argc, char **argv)
{
    struct cg_opt o[] = {
        {"timeout-ms", "N", "give up after this many milliseconds", "3000", NULL, NULL},
        {"help", NULL, "print this help", NULL, NULL, NULL},
    };
    const char *url = NULL;
    char err[256];
    if (argc >= 3 && strncmp(argv[2], "--", 2) != 0) {
        url = argv[2];
        if (cg_opts_parse(argc, argv, 3, o, 2, err, sizeof(err)) < 0) {
            fprintf(stderr, "ccgate health: %s\n", err);
            return 2;
        }
    } else if (cg_opts_parse(argc, argv, 2, o, 2, err, sizeof(err)) < 0) {
        fprintf(stderr, "ccgate health: %s\n", err);
        return 2;
    }
    if (o[1].value != NULL) {
        fputs(help, stdout);
        return 0;
    }
    if (url == NULL) {
        fprintf(stderr, "ccgate health: a URL is needed: http://HOST:PORT/PATH\n");
        return 2;
    }
    unsigned long timeout;
    if (o[0].value == NULL)
        o[0].value = o[0].def;
    if (cg_opts_uint(&o[0], 1, 600000, &timeout, err, sizeof(err)) < 0) {
        fprintf(stderr, "ccgate health: %s\n", err);
        return 2;
    }

    /* http://HOST:PORT[/PATH]: the port is required (admin ports have no default). */
    char hostport[128], path[URL_MAX];
    const char *hp = strncmp(url, "http://", 7) == 0 ? url + 7 : NULL;
    size_t hp_len = hp != NULL ? strcspn(hp, "/?#") : 0;
    if (hp == NULL || hp_len == 0 || hp_len >= sizeof(hostport) || strlen(url) >= URL_MAX ||
        strpbrk(url, " \t\r\n") != NULL || hp[hp_len] == '#') {
        fprintf(stderr,
                "ccgate health: '%s': expected http://HOST:PORT/PATH (plain HTTP, at "
                "most %d bytes)\n",
                url, URL_MAX - 1);
        return 2;
    }
    memcpy(hostport, hp, hp_len);
    hostport[hp_len] = '\0';
    snprintf(path, sizeof(path), "%s%s", hp[hp_len] == '/' ? "" : "/", hp + hp_len);
    struct cg_addr a;
    if (cg_addr_parse(hostport, 0, &a, err, sizeof(err)) < 0) {
        fprintf(stderr, "ccgate health: %s\n", err);
        return 2;
    }

    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long deadline = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + (long long)timeout;
    int status = get_status(&a, hostport, path, deadline);
    if (status < 0) {
        fprintf(stderr, "ccgate health: %s: %s\n", url,
                status == -EPROTO ? "the answer is not an HTTP/1.x status line"
                                  : strerror(-status));
        return 1;
    }
    printf("%d\n", status);
    if (status < 200 || status > 299) {
        fprintf(stderr, "ccgate health: %s: status %d, expected 2xx\n", url, status);
        return 1;
    }
    return 0;
}
