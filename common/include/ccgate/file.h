#ifndef CCGATE_FILE_H
#define CCGATE_FILE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads all of path, at most max bytes, into a new buffer (caller frees *out) that holds a
 * NUL after the *len bytes, so text can be used as a string. The buffer grows with what is
 * read, not with max. Returns 0; -errno from open/read (-ENOENT when absent, -EISDIR for a
 * folder); CG_ELIMIT when the file holds more than max bytes. Works on files whose size
 * stat() cannot tell (configfs, pipes).
 */
int cg_file_read(const char *path, size_t max, uint8_t **out, size_t *len);

/*
 * Replaces path with data[0..len) atomically: written to a new file beside it (mode 0644
 * less the umask), flushed to disk, then renamed over path. Readers see the old content or
 * the new, never a part; on any failure path is untouched and the temporary file removed.
 * Returns 0 or -errno.
 */
int cg_file_write_atomic(const char *path, const void *data, size_t len);

#endif
