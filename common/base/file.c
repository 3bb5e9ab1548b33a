#include "ccgate/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ccgate/err.h"

#define FIRST_CHUNK (16 * 1024)

int cg_file_read(const char *path, size_t max, uint8_t **out, size_t *len)
{
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    for (;;) {
        /* Room for max + 1 bytes (to see a file that is too long) and the NUL. */
        if (n == cap) {
            size_t want = cap == 0 ? FIRST_CHUNK : cap * 2;
            if (want > max + 1)
                want = max + 1;
            uint8_t *grown = realloc(buf, want + 1);
            if (grown == NULL) {
                rc = -ENOMEM;
                break;
            }
            buf = grown;
            cap = want;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > max) {
            rc = CG_ELIMIT;
            break;
        }
    }
    close(fd);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    if (buf == NULL && (buf = malloc(1)) == NULL)
        return -ENOMEM;
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

int cg_file_write_atomic(const char *path, const void *data, size_t len)
{
    static unsigned counter;
    size_t cap = strlen(path) + 48;
    char *tmp = malloc(cap);
    if (tmp == NULL)
        return -ENOMEM;
    /* O_EXCL on a fresh name (not mkstemp: its 0600 would ignore the umask). */
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(tmp, cap, "%s.tmp.%ld.%u", path, (long)getpid(), counter++);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        int rc = -errno;
        free(tmp);
        return rc;
    }
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < len;) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            rc = -errno;
        else
            off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -errno;
    if (rc != 0)
        (void)unlink(tmp);
    free(tmp);
    return rc;
}
