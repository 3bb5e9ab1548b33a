#ifndef CCGATE_AUDIT_H
#define CCGATE_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * A hash-chained JSON-lines audit log (the key broker's decisions). Each line is one JSON
 * object: "seq" (1, 2, ...), "time" (RFC 3339 UTC), "prev" (the previous line's hash; 64
 * zeros for the first line), the event's members, and last "hash": hex SHA-256 of the
 * line's bytes before `,"hash":`. Editing a line fails at that line (its hash); an editor
 * who also rewrites the hash fails at the next line (its prev), as do deleting and
 * reordering. Cutting lines off the end is seen only by comparing the head hash with one
 * kept elsewhere (the broker logs it at start).
 */

#define CG_AUDIT_MAX_LINE (64 * 1024)

struct cg_audit;

/*
 * Opens (creates, mode 0600) the log at path for appending. An existing log is verified
 * first and the chain continues from its last line; a broken one is refused (CG_EEVIDENCE,
 * err naming the line). Caller closes.
 */
int cg_audit_open(const char *path, struct cg_audit **out, char *err, size_t errlen);

/*
 * Appends event (an object; its members follow seq, time and prev) as one line, written
 * with one write(2) and fdatasync'd. Returns 0 or a negative errno / CG_ELIMIT.
 */
int cg_audit_append(struct cg_audit *a, const json_t *event);

/* Lines so far and the hex hash of the last one (64 zeros when empty). */
uint64_t cg_audit_head(const struct cg_audit *a, char hex[65]);

void cg_audit_close(struct cg_audit *a);

struct cg_audit_summary {
    uint64_t lines;
    uint64_t granted, denied; /* lines whose "decision" is "granted" / "denied" */
    char head[65];            /* hex SHA-256 of the last line */
    char first_time[32], last_time[32];
    uint64_t bad_line; /* the first line that breaks the chain (1-based); 0 if none */
    char why[160];
};

/*
 * Verifies the log at path: every line a JSON object with seq equal to its line number,
 * its own hash right and prev equal to the previous line's hash, no line over CG_AUDIT_MAX_LINE, a
 * final newline. Returns 0, CG_EEVIDENCE with s->bad_line and s->why, or a negative errno.
 */
int cg_audit_verify(const char *path, struct cg_audit_summary *s);

#endif
