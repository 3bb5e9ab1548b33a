/* The simulated TEE: state folder, report layout, and verification by the SNP verifier. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccgate/sim.h"
#include "ccgate/snp.h"

static char dir[64];
static uint8_t ark_sha[32];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/cg_test_sim_XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    /* Creates the folder itself (mode 0700) when missing. */
    if (rmdir(dir) != 0)
        return -1;
    return cg_sim_init(dir, ark_sha);
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t cap, const char *d, const char *name)
{
    snprintf(out, cap, "%s/%s", d, name);
}

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return n;
}

static void test_init_idempotent(void **state)
{
    (void)state;
    static const char *const files[] = {"chip_id", "ark.pem",  "ark.key", "ask.pem",
                                        "ask.key", "vcek.pem", "vcek.key"};
    uint8_t before[7][8192], after[8192];
    size_t len[7];
    char path[128];
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    for (size_t i = 0; i < 7; i++) {
        path_of(path, sizeof(path), dir, files[i]);
        len[i] = read_file(path, before[i], sizeof(before[i]));
        assert_true(len[i] > 0);
        assert_int_equal(stat(path, &st), 0);
        if (strstr(files[i], ".pem") == NULL)
            assert_int_equal(st.st_mode & 0777, 0600);
    }
    uint8_t again[32];
    assert_int_equal(cg_sim_init(dir, again), 0);
    assert_memory_equal(again, ark_sha, 32);
    for (size_t i = 0; i < 7; i++) {
        path_of(path, sizeof(path), dir, files[i]);
        assert_int_equal(read_file(path, after, sizeof(after)), len[i]);
        assert_memory_equal(after, before[i], len[i]);
    }
}

/* Half a key pair is never completed by overwriting: the user must remove it. */
static void test_init_half_pair(void **state)
{
    (void)state;
    char d[64], path[128];
    uint8_t sha[32];
    snprintf(d, sizeof(d), "/tmp/cg_test_sim_half_XXXXXX");
    assert_non_null(mkdtemp(d));
    path_of(path, sizeof(path), d, "ark.key");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a key\n", f);
    fclose(f);
    assert_int_equal(cg_sim_init(d, sha), CG_ECONFIG);
    uint8_t buf[64];
    assert_int_equal(read_file(path, buf, sizeof(buf)), 10);
    assert_memory_equal(buf, "not a key\n", 10);
    /* A regular file where the folder should be. */
    assert_int_not_equal(cg_sim_init(path, sha), 0);
    /* A provider needs the state sim-init makes. */
    struct cg_provider *p = NULL;
    assert_int_equal(cg_sim_provider_new(d, path, &p), CG_ECONFIG);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
}

static void get_evidence(const uint8_t rd[64], struct cg_evidence *ev, uint8_t measurement[48])
{
    char file[128];
    path_of(file, sizeof(file), dir, "measured");
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("abc", f);
    fclose(f);
    struct cg_provider *p = NULL;
    assert_int_equal(cg_sim_provider_new(dir, file, &p), 0);
    assert_string_equal(p->name, "sim");
    assert_int_equal(p->get(p, rd, ev), 0);
    p->free(p);
    if (measurement != NULL)
        memcpy(measurement, ev->evidence + 0x90, 48);
    assert_int_equal(unlink(file), 0);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void test_report_layout(void **state)
{
    (void)state;
    uint8_t rd[64], chip[64], m[48];
    char path[128];
    for (int i = 0; i < 64; i++)
        rd[i] = (uint8_t)(0xA0 + i);
    struct cg_evidence ev = {0}, ev2 = {0};
    get_evidence(rd, &ev, m);
    assert_int_equal(ev.tag, CG_TAG_SIM);
    assert_int_equal(ev.evidence_len, CG_SNP_REPORT_SIZE);
    assert_int_equal(ev.n_certs, 3);
    const uint8_t *b = ev.evidence;
    assert_int_equal(le32(b + 0x00), 3);       /* version */
    assert_int_equal(le32(b + 0x08), 0x30000); /* policy: SMT, reserved bit 17 */
    assert_int_equal(le32(b + 0x0C), 0);
    assert_int_equal(le32(b + 0x30), 0); /* VMPL */
    assert_int_equal(le32(b + 0x34), 1); /* ECDSA P-384 SHA-384 */
    assert_int_equal(le32(b + 0x48), 0); /* signer info: VCEK */
    assert_memory_equal(b + 0x50, rd, 64);
    /* SHA-384("abc") (FIPS 180-2 example). */
    static const uint8_t abc[48] = {0xcb, 0x00, 0x75, 0x3f, 0x45, 0xa3, 0x5e, 0x8b, 0xb5, 0xa0,
                                    0x3d, 0x69, 0x9a, 0xc6, 0x50, 0x07, 0x27, 0x2c, 0x32, 0xab,
                                    0x0e, 0xde, 0xd1, 0x63, 0x1a, 0x8b, 0x60, 0x5a, 0x43, 0xff,
                                    0x5b, 0xed, 0x80, 0x86, 0x07, 0x2b, 0xa1, 0xe7, 0xcc, 0x23,
                                    0x58, 0xba, 0xec, 0xa1, 0x34, 0xc8, 0x25, 0xa7};
    assert_memory_equal(m, abc, 48);
    for (int i = 0; i < 32; i++)
        assert_int_equal(b[0x160 + i], 0xff); /* REPORT_ID_MA: no migration agent */
    assert_int_equal(b[0x188], 0x19);         /* CPUID family: Milan */
    assert_int_equal(b[0x189], 0x01);
    path_of(path, sizeof(path), dir, "chip_id");
    assert_int_equal(read_file(path, chip, sizeof(chip)), 64);
    assert_memory_equal(b + 0x1A0, chip, 64);
    assert_memory_equal(b + 0x180, b + 0x38, 8); /* reported = current TCB */
    assert_memory_equal(b + 0x1E0, b + 0x38, 8); /* committed */
    assert_memory_equal(b + 0x1F0, b + 0x38, 8); /* launch */
    assert_int_equal(b[0x1EA], 1);               /* firmware 1.55 */
    assert_int_equal(b[0x1E9], 55);
    for (size_t o = 0x330; o < CG_SNP_REPORT_SIZE; o++)
        assert_int_equal(b[o], 0);

    struct cg_snp_report r;
    struct cg_verdict v;
    assert_int_equal(cg_snp_report_parse(b, ev.evidence_len, &r, &v), 0);
    uint8_t out[CG_SNP_REPORT_SIZE];
    cg_snp_report_write(&r, out);
    assert_memory_equal(out, b, CG_SNP_REPORT_SIZE);

    /* Every report gets a fresh REPORT_ID. */
    get_evidence(rd, &ev2, NULL);
    assert_memory_not_equal(ev.evidence + 0x140, ev2.evidence + 0x140, 32);
    cg_evidence_clear(&ev);
    cg_evidence_clear(&ev2);
    cg_evidence_clear(&ev); /* safe on a cleared struct */
}

static int verify_ev(const struct cg_evidence *ev, size_t n_certs,
                     const struct cg_snp_anchor *anchor, struct cg_snp_report *r,
                     struct cg_verdict *v)
{
    memset(v, 0, sizeof(*v));
    return cg_snp_verify(ev->evidence, ev->evidence_len, (const uint8_t *const *)ev->certs,
                         ev->cert_lens, n_certs, anchor, time(NULL), r, v);
}

static void test_verify(void **state)
{
    (void)state;
    uint8_t rd[64] = {42};
    struct cg_evidence ev = {0};
    struct cg_snp_report r;
    struct cg_verdict v;
    struct cg_snp_anchor sim = {1, {0}};
    memcpy(sim.sim_ark_sha256, ark_sha, 32);
    get_evidence(rd, &ev, NULL);
    assert_int_equal(verify_ev(&ev, 3, &sim, &r, &v), 0);
    assert_int_equal(r.product, CG_SNP_MILAN);
    assert_int_equal(r.vlek, 0);
    assert_memory_equal(r.report_data, rd, 64);
    assert_int_equal(r.reported.bootloader, 3);
    assert_int_equal(r.reported.snp, 20);
    assert_int_equal(r.reported.microcode, 209);

    /* Another sim root. */
    struct cg_snp_anchor other = sim;
    other.sim_ark_sha256[0] ^= 1;
    assert_int_equal(verify_ev(&ev, 3, &other, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.sim_root");
    /* The sim ARK needs to travel with the evidence. */
    assert_int_equal(verify_ev(&ev, 2, &sim, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.certs");

    /* Under the AMD anchor: the sim ARK is not AMD's, nor the sim ASK. */
    struct cg_snp_anchor amd = {0, {0}};
    assert_int_equal(verify_ev(&ev, 3, &amd, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.ark");
    assert_int_equal(verify_ev(&ev, 2, &amd, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.ask");
    assert_string_equal(v.actual, "SEV-Milan-SIM");
    assert_int_equal(verify_ev(&ev, 1, &amd, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.vcek.subject");

    /* The ARK in the ASK's place: the VCEK's issuer is missing. */
    uint8_t *ask = ev.certs[1];
    size_t ask_len = ev.cert_lens[1];
    ev.certs[1] = ev.certs[2];
    ev.cert_lens[1] = ev.cert_lens[2];
    assert_int_equal(verify_ev(&ev, 3, &sim, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.chain");
    ev.certs[1] = ask;
    ev.cert_lens[1] = ask_len;

    /* One bit of REPORT_DATA. */
    ev.evidence[0x50] ^= 1;
    assert_int_equal(verify_ev(&ev, 3, &sim, &r, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.signature");
    ev.evidence[0x50] ^= 1;
    assert_int_equal(verify_ev(&ev, 3, &sim, &r, &v), 0);
    /* The sim VCEK is valid for 7 years from sim-init. */
    memset(&v, 0, sizeof(v));
    assert_int_equal(cg_snp_verify(ev.evidence, ev.evidence_len, (const uint8_t *const *)ev.certs,
                                   ev.cert_lens, 3, &sim, time(NULL) + 8 * 365 * 86400L, &r, &v),
                     CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.chain.validity");
    cg_evidence_clear(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_idempotent),
        cmocka_unit_test(test_init_half_pair),
        cmocka_unit_test(test_report_layout),
        cmocka_unit_test(test_verify),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
