/* `ccgate audit verify LOG`: checks a key broker's hash-chained audit log offline. */
#include "tl_audit.h"

#include <stdio.h>
#include <string.h>

#include "ccgate/audit.h"
#include "ccgate/err.h"
#include "tl_cli.h"

int tl_audit_verify_main(int argc, char **argv)
{
    if (argc != 4 || strcmp(argv[3], "--help") == 0) {
        fprintf(argc == 4 ? stdout : stderr,
                "usage: ccgate audit verify LOG\nChecks the hash chain of a ccgate-kbs audit "
                "log; prints a JSON summary; exit 0 intact, 1 at the first bad line.\n");
        return argc == 4 ? 0 : 2;
    }
    struct cg_audit_summary s;
    int rc = cg_audit_verify(argv[3], &s);
    if (rc < 0 && rc != CG_EEVIDENCE) {
        fprintf(stderr, "ccgate audit verify: %s: %s\n", argv[3], strerror(-rc));
        return 2;
    }
    json_t *o = json_object();
    json_object_set_new(o, "intact", json_boolean(rc == 0));
    json_object_set_new(o, "lines", json_integer((json_int_t)s.lines));
    json_object_set_new(o, "granted", json_integer((json_int_t)s.granted));
    json_object_set_new(o, "denied", json_integer((json_int_t)s.denied));
    if (rc == 0) {
        json_object_set_new(o, "head_sha256", json_string(s.head));
        json_object_set_new(o, "first", json_string(s.first_time));
        json_object_set_new(o, "last", json_string(s.last_time));
    } else {
        json_object_set_new(o, "bad_line", json_integer((json_int_t)s.bad_line));
        json_object_set_new(o, "why", json_string(s.why));
        fprintf(stderr, "ccgate audit verify: %s: line %llu: %s\n", argv[3],
                (unsigned long long)s.bad_line, s.why);
    }
    if (tl_cli_print(o) != 0)
        rc = -1;
    json_decref(o);
    return rc == 0 ? 0 : 1;
}
