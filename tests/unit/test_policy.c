/* Policy parsing (every key, every error) and SNP appraisal (each check failing alone). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "ccgate/policy.h"
#include "ccgate/snp.h"

#define MEAS                                                                                       \
    "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3" \
    "d38c"
#define MEAS2                                                                                      \
    "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e487" \
    "2b01"
#define IDKEY                                                                                      \
    "0356215882a825279a85b300b0b742931d113bf7e32dde2e50ffde7ec743ca491ecdd7f336dc28a6e0b2bb57af7a" \
    "44a3"
#define CHIP                                                                                       \
    "c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f8e8c0bcd9a5d9286612bad4aadfb" \
    "4426205a3b9e4fea82301135a170e477524e"
#define Z32 "0000000000000000000000000000000000000000000000000000000000000000"
#define ROOT "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a"
#define TCB "{\"bootloader\": 3, \"tee\": 0, \"snp\": 8, \"microcode\": 115}"

/* Every key, with the values of trustee's test-report.bin: that report passes it. */
static const char full[] =
    "{\"sim\": {\"allow\": true, \"root_sha256\": \"" ROOT "\"},\n"
    " \"snp\": {\"measurements\": [\"" MEAS2 "\", \"" MEAS "\"],\n"
    "         \"min_tcb\": " TCB ", \"debug\": false, \"migration_agent\": false,\n"
    "         \"max_vmpl\": 0, \"host_data\": \"" Z32 "\", \"min_guest_svn\": 4,\n"
    "         \"family_id\": \"01000000000000000000000000000000\",\n"
    "         \"image_id\": \"02000000000000000000000000000000\",\n"
    "         \"id_key_digests\": [\"" IDKEY "\"], \"require_id_block\": true, \"smt\": true,\n"
    "         \"min_committed_tcb\": " TCB ", \"min_launch_tcb\": " TCB ",\n"
    "         \"min_fw\": {\"major\": 1, \"minor\": 52}, \"allow_provisional_firmware\": false,\n"
    "         \"chip_ids\": [\"" CHIP "\"]},\n"
    " \"freshness\": {\"mode\": \"max-age\", \"max_age_s\": 300}}\n";

static int parse(const char *json, struct cg_policy *p, char *err, size_t errlen)
{
    return cg_policy_parse(json, strlen(json), p, err, errlen);
}

static void test_parse_full(void **state)
{
    (void)state;
    static struct cg_policy p;
    char err[256];
    assert_int_equal(parse(full, &p, err, sizeof(err)), 0);
    assert_string_equal(err, "");
    assert_true(p.sim.allow);
    assert_true(p.sim.has_root);
    assert_int_equal(p.sim.root_sha256[0], 0x1f);
    assert_true(p.snp.present);
    assert_int_equal(p.snp.n_measurements, 2);
    assert_int_equal(p.snp.measurements[1][0], 0xa1);
    assert_int_equal(p.snp.measurements[1][47], 0x8c);
    assert_true(p.snp.has_min_tcb);
    assert_int_equal(p.snp.min_tcb.bootloader, 3);
    assert_int_equal(p.snp.min_tcb.snp, 8);
    assert_int_equal(p.snp.min_tcb.microcode, 115);
    assert_int_equal(p.snp.min_tcb.fmc, 0);
    assert_false(p.snp.debug);
    assert_false(p.snp.migration_agent);
    assert_int_equal(p.snp.max_vmpl, 0);
    assert_true(p.snp.has_host_data);
    assert_int_equal(p.snp.min_guest_svn, 4);
    assert_true(p.snp.has_family_id);
    assert_int_equal(p.snp.family_id[0], 1);
    assert_true(p.snp.has_image_id);
    assert_int_equal(p.snp.image_id[0], 2);
    assert_int_equal(p.snp.n_id_key_digests, 1);
    assert_int_equal(p.snp.id_key_digests[0][0], 0x03);
    assert_int_equal(p.snp.n_author_key_digests, 0);
    assert_true(p.snp.require_id_block);
    assert_true(p.snp.smt);
    assert_true(p.snp.has_min_committed_tcb);
    assert_true(p.snp.has_min_launch_tcb);
    assert_true(p.snp.has_min_fw);
    assert_int_equal(p.snp.min_fw_major, 1);
    assert_int_equal(p.snp.min_fw_minor, 52);
    assert_false(p.snp.allow_provisional_firmware);
    assert_int_equal(p.snp.n_chip_ids, 1);
    assert_int_equal(p.snp.chip_ids[0][63], 0x4e);
    assert_int_equal(p.freshness.mode, CG_FRESH_MAX_AGE);
    assert_int_equal(p.freshness.max_age_s, 300);
    /* digest = SHA-256 of the bytes given. */
    uint8_t h[32];
    assert_int_equal(EVP_Digest(full, strlen(full), h, NULL, EVP_sha256(), NULL), 1);
    assert_memory_equal(p.digest, h, 32);
}

static void test_parse_defaults_and_rest(void **state)
{
    (void)state;
    static struct cg_policy p;
    char err[256];
    assert_int_equal(parse("{\"snp\": {}}", &p, err, sizeof(err)), 0);
    assert_false(p.sim.allow);
    assert_true(p.snp.present);
    assert_int_equal(p.snp.n_measurements, 0);
    assert_false(p.snp.has_min_tcb);
    assert_false(p.snp.debug);
    assert_false(p.snp.migration_agent);
    assert_int_equal(p.snp.max_vmpl, 0);
    assert_true(p.snp.smt);
    assert_false(p.snp.allow_provisional_firmware);
    assert_false(p.snp.require_id_block);
    assert_int_equal(p.freshness.mode, CG_FRESH_NONCE);
    assert_int_equal(p.freshness.max_age_s, 600);

    assert_int_equal(
        parse("{\"sim\": {\"allow\": true, \"root_sha256\": \"" ROOT "\"}}", &p, err, sizeof(err)),
        0);
    assert_true(p.sim.allow);
    assert_false(p.snp.present);
    assert_false(p.tdx.present);

    /* A tdx section alone accepts TDX evidence (and no other), with the TDX defaults. */
    assert_int_equal(parse("{\"tdx\": {\"mrtd\": \"" MEAS "\"}}", &p, err, sizeof(err)), 0);
    assert_true(p.tdx.present);
    assert_false(p.snp.present);
    assert_false(p.sim.allow);
    assert_int_equal(p.tdx.mrtd.n, 1);
    assert_true(p.tdx.require_crls);
    assert_true(p.tdx.require_sept_ve_disable);
    assert_int_equal(p.tdx.accepted_tcb, 1u << CG_TDX_TCB_UP_TO_DATE);

    const char *rest = "{\"snp\": {\"debug\": true, \"migration_agent\": true, \"max_vmpl\": 3,"
                       " \"smt\": false, \"allow_provisional_firmware\": true,"
                       " \"min_guest_svn\": 4294967295,"
                       " \"author_key_digests\": [\"" IDKEY "\"],"
                       " \"min_tcb\": {\"bootloader\": 1, \"tee\": 2, \"snp\": 3,"
                       " \"microcode\": 255, \"fmc\": 5}},"
                       " \"freshness\": {\"mode\": \"nonce\", \"max_age_s\": 86400}}";
    assert_int_equal(parse(rest, &p, err, sizeof(err)), 0);
    assert_true(p.snp.debug);
    assert_true(p.snp.migration_agent);
    assert_int_equal(p.snp.max_vmpl, 3);
    assert_false(p.snp.smt);
    assert_true(p.snp.allow_provisional_firmware);
    assert_int_equal(p.snp.min_guest_svn, 4294967295u);
    assert_int_equal(p.snp.n_author_key_digests, 1);
    assert_int_equal(p.snp.min_tcb.fmc, 5);
    assert_int_equal(p.snp.min_tcb.microcode, 255);
    assert_int_equal(p.freshness.mode, CG_FRESH_NONCE);
    assert_int_equal(p.freshness.max_age_s, 86400);
}

static void test_parse_gpu(void **state)
{
    (void)state;
    struct cg_policy p;
    char err[256];
    const char *min = "{\"snp\": {}, \"gpu\": {}}";
    assert_int_equal(cg_policy_parse(min, strlen(min), &p, err, sizeof(err)), 0);
    assert_true(p.gpu.present && p.gpu.required && p.gpu.require_rims);
    assert_int_equal(p.gpu.min_count, 1);
    assert_int_equal(p.gpu.count, 0);
    assert_int_equal(p.gpu.ocsp, CG_GPU_OCSP_REQUIRE);
    assert_false(p.gpu.allow_sim || p.gpu.allow_devtools || p.gpu.allow_cc_off);
    const char *all =
        "{\"gpu\": {\"required\": false, \"count\": 8, \"min_count\": 2, "
        "\"allow_sim\": true, \"sim_root_sha256\": \"" ROOT "\", "
        "\"drivers\": [\"550.90.07\", \"580.95.05\"], \"vbios\": [\"96.00.9F.00.01\"], "
        "\"require_rims\": false, \"ocsp\": \"off\", \"ocsp_grace_s\": 172800, "
        "\"allow_devtools\": true, \"allow_cc_off\": true}}";
    assert_int_equal(cg_policy_parse(all, strlen(all), &p, err, sizeof(err)), 0);
    assert_false(p.gpu.required || p.gpu.require_rims);
    assert_int_equal(p.gpu.count, 8);
    assert_int_equal(p.gpu.min_count, 2);
    assert_true(p.gpu.allow_sim && p.gpu.has_sim_root && p.gpu.allow_devtools &&
                p.gpu.allow_cc_off);
    assert_int_equal(p.gpu.n_drivers, 2);
    assert_string_equal(p.gpu.drivers[1], "580.95.05");
    assert_int_equal(p.gpu.n_vbios, 1);
    assert_int_equal(p.gpu.ocsp, CG_GPU_OCSP_OFF);
    assert_int_equal(p.gpu.ocsp_grace_s, 172800);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *json, *err;
    } cases[] = {
        {"", "policy: line 1 column 0: "},
        {"[]", "policy: expected a JSON object"},
        {"{\"snp\": {}} x", "policy: line 1 column 13: "},
        {"{\"snp\": {}, \"snp\": {}}", "policy: line 1 column "}, /* duplicate key */
        {"{}", "policy: accepts no evidence"},
        {"{\"sim\": {\"allow\": false}}", "policy: accepts no evidence"},
        {"{\"snp\": {}, \"tpm\": {}}", "tpm: unknown key"},
        {"{\"gpu\": {\"cc\": 1}}", "gpu.cc: unknown key"},
        {"{\"gpu\": {\"required\": 1}}", "gpu.required: expected true or false"},
        {"{\"gpu\": {\"count\": 0}}", "gpu.count: expected an integer from 1 to 8"},
        {"{\"gpu\": {\"min_count\": 9}}", "gpu.min_count: expected an integer from 0 to 8"},
        {"{\"gpu\": {\"count\": 2, \"min_count\": 3}}", "gpu.min_count: at most gpu.count"},
        {"{\"gpu\": {\"allow_sim\": true}}", "gpu.sim_root_sha256: required when gpu.allow_sim"},
        {"{\"gpu\": {\"sim_root_sha256\": \"ab\"}}", "gpu.sim_root_sha256: expected 64 hex"},
        {"{\"gpu\": {\"drivers\": []}}", "gpu.drivers: expected 1 to 16 version strings"},
        {"{\"gpu\": {\"vbios\": [1]}}", "gpu.vbios: item 0: expected a version string"},
        {"{\"gpu\": {\"require_rims\": \"yes\"}}", "gpu.require_rims: expected true or false"},
        {"{\"gpu\": {\"ocsp\": \"soft\"}}", "gpu.ocsp: expected \"require\" or \"off\""},
        {"{\"gpu\": {\"ocsp_grace_s\": -1}}", "gpu.ocsp_grace_s: expected an integer from 0 to"},
        {"{\"gpu\": {\"allow_devtools\": 0}}", "gpu.allow_devtools: expected true or false"},
        {"{\"snp\": {}, \"model\": []}", "model: expected an object"},
        {"{\"snp\": {}, \"model\": {\"digest\": 1}}", "model.digest: unknown key"},
        {"{\"snp\": {}, \"model\": {\"name\": \"\"}}", "model.name: expected 1 to 255"},
        {"{\"snp\": {}, \"model\": {\"name\": \"a\\u0001\"}}", "model.name: expected 1 to 255"},
        {"{\"snp\": {}, \"model\": {\"name\": 3}}", "model.name: expected 1 to 255"},
        {"{\"snp\": {}, \"model\": {\"sha256\": []}}", "model.sha256: expected a non-empty"},
        {"{\"snp\": {}, \"model\": {\"sha256\": [\"ab\"]}}", "model.sha256[0]: expected 64 hex"},
        {"{\"snp\": {}, \"model\": {\"min_version\": -1}}",
         "model.min_version: expected an integer from 0"},
        {"{\"gpu\": {\"allow_cc_off\": null}}", "gpu.allow_cc_off: expected true or false"},
        {"{\"tdx\": []}", "tdx: expected an object"},
        {"{\"tdx\": {\"colour\": 1}}", "tdx.colour: unknown key"},
        {"{\"tdx\": {\"mrtd\": [\"" MEAS "\", \"" Z32 "\"]}}",
         "tdx.mrtd[1]: expected 96 hex digits"},
        {"{\"tdx\": {\"accepted_tcb_statuses\": [\"Revoked\"]}}",
         "tdx.accepted_tcb_statuses[0]: Revoked is never acceptable"},
        {"{\"snp\": {\"measurment\": []}}", "snp.measurment: unknown key"},
        {"{\"snp\": {\"min_tcb\": " TCB ", \"min_tcb_x\": 1}}", "snp.min_tcb_x: unknown key"},
        {"{\"snp\": {\"min_tcb\": {\"bootloader\": 1, \"tee\": 0, \"snp\": 0, \"microcode\": 0,"
         " \"ucode\": 1}}}",
         "snp.min_tcb.ucode: unknown key"},
        {"{\"snp\": {\"min_fw\": {\"major\": 1, \"minor\": 0, \"build\": 1}}}",
         "snp.min_fw.build: unknown key"},
        {"{\"sim\": {\"allow\": true, \"root_sha256\": \"" ROOT "\", \"root\": 1}}",
         "sim.root: unknown key"},
        {"{\"snp\": {}, \"freshness\": {\"maxage\": 1}}", "freshness.maxage: unknown key"},
        {"{\"snp\": []}", "snp: expected an object"},
        {"{\"sim\": true}", "sim: expected an object"},
        {"{\"snp\": {}, \"freshness\": 1}", "freshness: expected an object"},
        {"{\"snp\": {\"min_tcb\": 1}}", "snp.min_tcb: expected an object"},
        {"{\"snp\": {\"min_fw\": \"1.52\"}}", "snp.min_fw: expected an object"},
        {"{\"sim\": {\"allow\": 1}, \"snp\": {}}", "sim.allow: expected true or false"},
        {"{\"sim\": {\"allow\": true}}", "sim.root_sha256: required when sim.allow is true"},
        {"{\"sim\": {\"allow\": true, \"root_sha256\": \"abc\"}}",
         "sim.root_sha256: expected 64 hex digits"},
        {"{\"snp\": {\"measurements\": \"" MEAS "\"}}",
         "snp.measurements: expected a non-empty array of 96-hex-digit strings"},
        {"{\"snp\": {\"measurements\": []}}", "snp.measurements: expected a non-empty array"},
        {"{\"snp\": {\"measurements\": [\"" MEAS "\", \"" Z32 "\"]}}",
         "snp.measurements[1]: expected 96 hex digits"},
        {"{\"snp\": {\"measurements\": [\"" MEAS "\", 1]}}",
         "snp.measurements[1]: expected 96 hex digits"},
        {"{\"snp\": {\"measurements\": [\"" MEAS2 "x\"]}}",
         "snp.measurements[0]: expected 96 hex digits"},
        {"{\"snp\": {\"min_tcb\": {\"bootloader\": 1, \"tee\": 0, \"snp\": 0}}}",
         "snp.min_tcb.microcode: missing (an integer from 0 to 255)"},
        {"{\"snp\": {\"min_tcb\": {\"bootloader\": 256, \"tee\": 0, \"snp\": 0, \"microcode\": "
         "0}}}",
         "snp.min_tcb.bootloader: expected an integer from 0 to 255"},
        {"{\"snp\": {\"min_tcb\": {\"bootloader\": 1, \"tee\": -1, \"snp\": 0, \"microcode\": 0}}}",
         "snp.min_tcb.tee: expected an integer from 0 to 255"},
        {"{\"snp\": {\"min_tcb\": {\"bootloader\": 1, \"tee\": 0, \"snp\": 1.5, \"microcode\": "
         "0}}}",
         "snp.min_tcb.snp: expected an integer from 0 to 255"},
        {"{\"snp\": {\"min_committed_tcb\": {\"bootloader\": 1, \"tee\": 0, \"snp\": 0,"
         " \"microcode\": 0, \"fmc\": \"1\"}}}",
         "snp.min_committed_tcb.fmc: expected an integer from 0 to 255"},
        {"{\"snp\": {\"min_launch_tcb\": {}}}",
         "snp.min_launch_tcb.bootloader: missing (an integer from 0 to 255)"},
        {"{\"snp\": {\"debug\": \"false\"}}", "snp.debug: expected true or false"},
        {"{\"snp\": {\"migration_agent\": null}}", "snp.migration_agent: expected true or false"},
        {"{\"snp\": {\"smt\": 0}}", "snp.smt: expected true or false"},
        {"{\"snp\": {\"require_id_block\": 1}}", "snp.require_id_block: expected true or false"},
        {"{\"snp\": {\"allow_provisional_firmware\": \"yes\"}}",
         "snp.allow_provisional_firmware: expected true or false"},
        {"{\"snp\": {\"max_vmpl\": 4}}", "snp.max_vmpl: expected an integer from 0 to 3"},
        {"{\"snp\": {\"max_vmpl\": \"0\"}}", "snp.max_vmpl: expected an integer from 0 to 3"},
        {"{\"snp\": {\"host_data\": \"" MEAS "\"}}", "snp.host_data: expected 64 hex digits"},
        {"{\"snp\": {\"min_guest_svn\": 4294967296}}",
         "snp.min_guest_svn: expected an integer from 0 to 4294967295"},
        {"{\"snp\": {\"family_id\": \"01\"}}", "snp.family_id: expected 32 hex digits"},
        {"{\"snp\": {\"image_id\": 2}}", "snp.image_id: expected 32 hex digits"},
        {"{\"snp\": {\"id_key_digests\": [\"" Z32 "\"]}}",
         "snp.id_key_digests[0]: expected 96 hex digits"},
        {"{\"snp\": {\"author_key_digests\": {}}}",
         "snp.author_key_digests: expected a non-empty array of 96-hex-digit strings"},
        {"{\"snp\": {\"chip_ids\": [\"" MEAS "\"]}}", "snp.chip_ids[0]: expected 128 hex digits"},
        {"{\"snp\": {\"min_fw\": {\"major\": 1}}}",
         "snp.min_fw.minor: missing (an integer from 0 to 255)"},
        {"{\"snp\": {\"min_fw\": {\"major\": 1, \"minor\": 300}}}",
         "snp.min_fw.minor: expected an integer from 0 to 255"},
        {"{\"snp\": {}, \"freshness\": {\"mode\": \"fresh\"}}",
         "freshness.mode: expected \"nonce\" or \"max-age\""},
        {"{\"snp\": {}, \"freshness\": {\"mode\": 1}}",
         "freshness.mode: expected \"nonce\" or \"max-age\""},
        {"{\"snp\": {}, \"freshness\": {\"max_age_s\": 0}}",
         "freshness.max_age_s: expected an integer from 1 to 86400"},
        {"{\"snp\": {}, \"freshness\": {\"max_age_s\": 86401}}",
         "freshness.max_age_s: expected an integer from 1 to 86400"},
    };
    static struct cg_policy p;
    char err[256];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = parse(cases[i].json, &p, err, sizeof(err));
        if (rc != CG_ECONFIG || strncmp(err, cases[i].err, strlen(cases[i].err)) != 0)
            fail_msg("case %zu: %s\n  want rc %d, \"%s...\"\n  got rc %d, \"%s\"", i, cases[i].json,
                     CG_ECONFIG, cases[i].err, rc, err);
        /* A failed parse leaves nothing half-filled. */
        assert_false(p.sim.allow);
        assert_false(p.snp.present);
        assert_false(p.tdx.present);
    }
    /* More list entries than the cap. */
    char big[CG_POLICY_MAX_MEASUREMENTS * 100 + 64];
    size_t o = (size_t)snprintf(big, sizeof(big), "{\"snp\": {\"measurements\": [");
    for (int i = 0; i <= CG_POLICY_MAX_MEASUREMENTS; i++)
        o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"%s\"", i ? "," : "", MEAS);
    snprintf(big + o, sizeof(big) - o, "]}}");
    assert_int_equal(parse(big, &p, err, sizeof(err)), CG_ECONFIG);
    assert_string_equal(err, "snp.measurements: at most 64 entries");
}

static void test_load(void **state)
{
    (void)state;
    static struct cg_policy p;
    char err[256], path[64];
    assert_int_not_equal(cg_policy_load("/nonexistent/policy.json", &p, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "/nonexistent/policy.json"));
    snprintf(path, sizeof(path), "/tmp/cg_test_policy_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, full, strlen(full)), (ssize_t)strlen(full));
    assert_int_equal(cg_policy_load(path, &p, err, sizeof(err)), 0);
    uint8_t h[32];
    assert_int_equal(EVP_Digest(full, strlen(full), h, NULL, EVP_sha256(), NULL), 1);
    assert_memory_equal(p.digest, h, 32);
    /* Over the size limit (padding with spaces would still be valid JSON). */
    char pad[4096];
    memset(pad, ' ', sizeof(pad));
    for (int i = 0; i < CG_POLICY_MAX_BYTES / (int)sizeof(pad) + 1; i++)
        assert_int_equal(write(fd, pad, sizeof(pad)), (ssize_t)sizeof(pad));
    assert_int_equal(cg_policy_load(path, &p, err, sizeof(err)), CG_ECONFIG);
    assert_non_null(strstr(err, "larger than 262144 bytes"));
    close(fd);
    unlink(path);
}

static uint8_t *load(const char *rel, size_t *len)
{
    char path[1024];
    const char *base = getenv("CG_VECTORS");
    snprintf(path, sizeof(path), "%s/%s", base != NULL ? base : CG_SOURCE_DIR "/tests/vectors",
             rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *b = malloc(1 << 16);
    assert_non_null(b);
    *len = fread(b, 1, 1 << 16, f);
    fclose(f);
    return b;
}

static time_t utc(int y, int mo, int d)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d};
    return timegm(&tm);
}

/* A genuine report, verified: what cg_policy_appraise_snp() is given in real use. */
static void verified(const char *report, const char *vcek, time_t at, struct cg_snp_report *r)
{
    size_t rl, vl;
    uint8_t *rb = load(report, &rl), *vb = load(vcek, &vl);
    const uint8_t *certs[1] = {vb};
    struct cg_verdict v;
    static const struct cg_snp_anchor amd = {0, {0}};
    assert_int_equal(cg_snp_verify(rb, rl, certs, &vl, 1, &amd, at, r, &v), 0);
    free(rb);
    free(vb);
}

static void expect(const struct cg_policy *p, const struct cg_snp_report *r, const char *check)
{
    struct cg_verdict v;
    memset(&v, 0, sizeof(v));
    int rc = cg_policy_appraise_snp(p, r, &v);
    if (check == NULL) {
        if (rc != 0)
            fail_msg("rejected by %s: expected %s, actual %s", v.check, v.expected, v.actual);
        return;
    }
    if (rc != CG_EPOLICY || strcmp(v.check, check) != 0)
        fail_msg("want %s, got rc %d check \"%s\"", check, rc, v.check);
}

static void test_appraise_each_check(void **state)
{
    (void)state;
    static struct cg_policy p;
    struct cg_snp_report base, r;
    char err[256];
    verified("trustee/snp/test-report.bin", "trustee/snp/test-vcek.der", utc(2024, 7, 1), &base);
    assert_int_equal(parse(full, &p, err, sizeof(err)), 0);
    expect(&p, &base, NULL);

    /* Each edit makes exactly one check fail. */
#define ONE(edit, check)                                                                           \
    do {                                                                                           \
        r = base;                                                                                  \
        edit;                                                                                      \
        expect(&p, &r, check);                                                                     \
    } while (0)
    ONE(r.measurement[0] ^= 1, "snp.measurement");
    ONE(r.policy |= CG_SNP_POLICY_DEBUG, "snp.debug");
    ONE(r.policy |= CG_SNP_POLICY_MIGRATE_MA, "snp.migration_agent");
    ONE(r.vmpl = 1, "snp.vmpl");
    ONE(r.host_data[31] = 1, "snp.host_data");
    ONE(r.family_id[0] = 9, "snp.family_id");
    ONE(r.image_id[15] = 9, "snp.image_id");
    ONE(memset(r.id_key_digest, 0, 48), "snp.id_block");
    ONE(r.id_key_digest[47] ^= 1, "snp.id_key_digest");
    ONE(r.guest_svn = 3, "snp.guest_svn");
    ONE(r.reported_tcb -= 1, "snp.min_tcb.bootloader");
    ONE(r.committed_tcb -= 1, "snp.min_committed_tcb.bootloader");
    ONE(r.committed_tcb -= 1ull << 48, "snp.min_committed_tcb.snp");
    ONE(r.launch_tcb -= 1ull << 56, "snp.min_launch_tcb.microcode");
    ONE((r.current_minor = r.committed_minor = 51), "snp.min_fw");
    ONE((r.current_major = r.committed_major = 0), "snp.min_fw");
    ONE(r.committed_build = 3, "snp.provisional_firmware");
    ONE(r.committed_minor = 51, "snp.provisional_firmware");
    ONE(r.chip_id[0] ^= 1, "snp.chip_id");
    ONE(r.product = CG_SNP_PRODUCT_UNKNOWN, "snp.product");
    /* Each min_tcb component, against the same minimum raised by one. */
    static const char *const comps[] = {"bootloader", "tee", "snp", "microcode", "fmc"};
    for (int i = 0; i < 5; i++) {
        static struct cg_policy q;
        char check[64];
        q = p;
        uint8_t *f[] = {&q.snp.min_tcb.bootloader, &q.snp.min_tcb.tee, &q.snp.min_tcb.snp,
                        &q.snp.min_tcb.microcode, &q.snp.min_tcb.fmc};
        (*f[i])++;
        snprintf(check, sizeof(check), "snp.min_tcb.%s", comps[i]);
        expect(&q, &base, check);
    }
    /* Values in the verdict. */
    struct cg_verdict v;
    r = base;
    r.guest_svn = 3;
    assert_int_equal(cg_policy_appraise_snp(&p, &r, &v), CG_EPOLICY);
    assert_string_equal(v.expected, ">= 4");
    assert_string_equal(v.actual, "3");
    r = base;
    r.vmpl = 2;
    assert_int_equal(cg_policy_appraise_snp(&p, &r, &v), CG_EPOLICY);
    assert_string_equal(v.expected, "<= 0");
    assert_string_equal(v.actual, "2");
    r = base;
    r.measurement[47] ^= 1;
    assert_int_equal(cg_policy_appraise_snp(&p, &r, &v), CG_EPOLICY);
    assert_non_null(strstr(v.expected, "one of 2 allowed"));
    assert_string_equal(v.actual,
                        "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c2"
                        "3500644e0e692e6be917f9050d3d38d");

    /* Checks that need another policy. */
    static struct cg_policy q;
    assert_int_equal(parse("{\"snp\": {\"smt\": false}}", &q, err, sizeof(err)), 0);
    expect(&q, &base, "snp.smt");
    r = base;
    r.policy &= ~CG_SNP_POLICY_SMT;
    expect(&q, &r, NULL);
    assert_int_equal(parse("{\"snp\": {\"max_vmpl\": 2, \"debug\": true, \"migration_agent\": true,"
                           " \"allow_provisional_firmware\": true}}",
                           &q, err, sizeof(err)),
                     0);
    r = base;
    r.vmpl = 2;
    r.policy |= CG_SNP_POLICY_DEBUG | CG_SNP_POLICY_MIGRATE_MA;
    r.committed_build = 0;
    expect(&q, &r, NULL);
    r.vmpl = 3;
    expect(&q, &r, "snp.vmpl");
    assert_int_equal(
        parse("{\"snp\": {\"author_key_digests\": [\"" MEAS2 "\"]}}", &q, err, sizeof(err)), 0);
    expect(&q, &base, "snp.author_key_digest"); /* AUTHOR_KEY_EN is 0 */
    r = base;
    r.signer_info |= 1;
    assert_int_equal(cg_unhex(r.author_key_digest, 48, MEAS2), 0);
    expect(&q, &r, NULL);
    r.author_key_digest[0] ^= 1;
    expect(&q, &r, "snp.author_key_digest");
    /* Turin: fmc is the first byte of each TCB. */
    assert_int_equal(parse("{\"snp\": {\"min_tcb\": {\"bootloader\": 0, \"tee\": 0, \"snp\": 0,"
                           " \"microcode\": 0, \"fmc\": 2}}}",
                           &q, err, sizeof(err)),
                     0);
    r = base;
    r.product = CG_SNP_TURIN;
    r.reported_tcb = 0x0900000000000001ull;
    expect(&q, &r, "snp.min_tcb.fmc");
    r.reported_tcb = 0x0900000000000002ull;
    expect(&q, &r, NULL);
#undef ONE
}

/* go-sev-guest's report is genuine but launched with DEBUG: even an empty snp policy refuses. */
static void test_appraise_debug_vector(void **state)
{
    (void)state;
    static struct cg_policy p;
    struct cg_snp_report r;
    struct cg_verdict v;
    char err[256];
    verified("go-sev-guest/attestation.bin", "go-sev-guest/vcek.testcer", utc(2023, 1, 1), &r);
    assert_int_equal(parse("{\"snp\": {}}", &p, err, sizeof(err)), 0);
    assert_int_equal(cg_policy_appraise_snp(&p, &r, &v), CG_EPOLICY);
    assert_string_equal(v.check, "snp.debug");
    assert_string_equal(v.expected, "false");
    assert_string_equal(v.actual, "true");
    assert_int_equal(parse("{\"snp\": {\"debug\": true}}", &p, err, sizeof(err)), 0);
    assert_int_equal(cg_policy_appraise_snp(&p, &r, &v), 0);
    /* virtee's report (no DEBUG) passes the empty policy. */
    verified("virtee-sev/report_milan.bin", "virtee-sev/vcek_milan.der", utc(2024, 1, 1), &r);
    assert_int_equal(parse("{\"snp\": {}}", &p, err, sizeof(err)), 0);
    assert_int_equal(cg_policy_appraise_snp(&p, &r, &v), 0);
    /* The VLEK report runs at VMPL 1: the default max_vmpl 0 refuses it. */
    verified("trustee/snp/test-vlek-report.bin", "trustee/snp/test-vlek.der", utc(2025, 6, 1), &r);
    assert_int_equal(cg_policy_appraise_snp(&p, &r, &v), CG_EPOLICY);
    assert_string_equal(v.check, "snp.vmpl");
}

static void test_model(void **state)
{
    (void)state;
    struct cg_policy p;
    struct cg_verdict v = {0};
    char err[256];
    struct cg_model_claim m = {.present = 1, .version = 5};
    snprintf(m.name, sizeof(m.name), "llama-8b");
    memset(m.sha256, 0x11, sizeof(m.sha256));
    static const char one[] = "1111111111111111111111111111111111111111111111111111111111111111";
    static const char two[] = "2222222222222222222222222222222222222222222222222222222222222222";

    /* Without a model section any claim (or none) passes. */
    assert_int_equal(parse("{\"snp\": {}}", &p, err, sizeof(err)), 0);
    assert_false(p.model.present);
    assert_int_equal(cg_policy_appraise_model(&p.model, &m, &v), 0);

    char json[512];
    snprintf(json, sizeof(json),
             "{\"snp\": {}, \"model\": {\"name\": \"llama-8b\", \"sha256\": [\"%s\", \"%s\"], "
             "\"min_version\": 5}}",
             two, one);
    assert_int_equal(parse(json, &p, err, sizeof(err)), 0);
    assert_true(p.model.present);
    assert_int_equal(p.model.n_sha256, 2);
    assert_int_equal(p.model.min_version, 5);
    assert_int_equal(cg_policy_appraise_model(&p.model, &m, &v), 0);

    /* Each check fails alone. */
    struct cg_model_claim bad = m;
    bad.present = 0;
    assert_int_equal(cg_policy_appraise_model(&p.model, &bad, &v), CG_EPOLICY);
    assert_string_equal(v.check, "model.present");
    bad = m;
    snprintf(bad.name, sizeof(bad.name), "llama-8b-evil");
    assert_int_equal(cg_policy_appraise_model(&p.model, &bad, &v), CG_EPOLICY);
    assert_string_equal(v.check, "model.name");
    assert_string_equal(v.actual, "llama-8b-evil");
    bad = m;
    bad.sha256[31] ^= 1;
    assert_int_equal(cg_policy_appraise_model(&p.model, &bad, &v), CG_EPOLICY);
    assert_string_equal(v.check, "model.sha256");
    bad = m;
    bad.version = 4;
    assert_int_equal(cg_policy_appraise_model(&p.model, &bad, &v), CG_EPOLICY);
    assert_string_equal(v.check, "model.version");
    assert_string_equal(v.expected, "at least 5");
    assert_string_equal(v.actual, "4");

    /* An empty section only asks that some sealed model be named. */
    assert_int_equal(parse("{\"snp\": {}, \"model\": {}}", &p, err, sizeof(err)), 0);
    assert_int_equal(cg_policy_appraise_model(&p.model, &m, &v), 0);
    bad.present = 0;
    assert_int_equal(cg_policy_appraise_model(&p.model, &bad, &v), CG_EPOLICY);
    assert_string_equal(v.check, "model.present");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_full),
        cmocka_unit_test(test_parse_defaults_and_rest),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_parse_gpu),
        cmocka_unit_test(test_appraise_each_check),
        cmocka_unit_test(test_appraise_debug_vector),
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
