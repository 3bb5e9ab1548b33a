/*
 * The configfs-tsm / sev-guest providers against a fake configfs tree in a temp folder. A
 * fake tree has no kernel: the provider's hook lets the test play the kernel's part (create
 * the attribute files on mkdir, fill outblob/auxblob and bump generation on an inblob write,
 * act as a concurrent writer between the reads, drop the attributes on rmdir), with the
 * bytes of real vendor evidence. What comes out is then checked by the real verifiers.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ccgate/evidence.h"
#include "ccgate/snp.h"
#include "ccgate/tdx.h"
#include "ccgate/tsm.h"

#define MILAN_AT 1672531200 /* 2023-01-01T00:00:00Z: the go-sev-guest VCEK is valid */

struct blob {
    uint8_t *data;
    size_t len;
};

static struct blob load(const char *rel)
{
    char path[1024];
    const char *vectors = getenv("CG_VECTORS");
    assert_non_null(vectors);
    snprintf(path, sizeof(path), "%s/%s", vectors, rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    struct blob b = {malloc(1 << 20), 0};
    b.len = fread(b.data, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static void put(const char *dir, const char *name, const void *data, size_t len)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len > 0)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void drop(const char *dir, const char *name)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    assert_int_equal(remove(path), 0);
}

static void put_text(const char *dir, const char *name, const char *text)
{
    put(dir, name, text, strlen(text));
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_tree(const char *dir)
{
    (void)nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* ---- the fake kernel -------------------------------------------------------------------- */

struct fake {
    char root[64];
    const char *provider; /* content of the provider attribute */
    struct blob outblob, auxblob;
    int has_auxblob;
    uint8_t want_inblob[CG_REPORT_DATA_LEN];
    uint64_t gen;
    int concurrent_writes; /* READ steps at which another writer bumps generation */
    int mkdirs, inblob_writes, rmdirs;
};

static void set_gen(struct fake *f, const char *entry, uint64_t gen)
{
    char text[32];
    f->gen = gen;
    snprintf(text, sizeof(text), "%llu\n", (unsigned long long)gen);
    put_text(entry, "generation", text);
}

static void fake_kernel(void *arg, enum cg_tsm_step step, const char *entry)
{
    struct fake *f = arg;
    char path[1024];
    switch (step) {
    case CG_TSM_STEP_MKDIR:
        f->mkdirs++;
        put_text(entry, "provider", f->provider);
        put(entry, "inblob", "", 0);
        put(entry, "outblob", "", 0);
        if (f->has_auxblob)
            put(entry, "auxblob", "", 0);
        set_gen(f, entry, 0);
        break;
    case CG_TSM_STEP_INBLOB: {
        f->inblob_writes++;
        snprintf(path, sizeof(path), "%s/inblob", entry);
        FILE *in = fopen(path, "rb");
        assert_non_null(in);
        uint8_t got[2 * CG_REPORT_DATA_LEN];
        size_t n = fread(got, 1, sizeof(got), in);
        fclose(in);
        assert_int_equal(n, CG_REPORT_DATA_LEN);
        assert_memory_equal(got, f->want_inblob, CG_REPORT_DATA_LEN);
        put(entry, "outblob", f->outblob.data, f->outblob.len);
        if (f->has_auxblob)
            put(entry, "auxblob", f->auxblob.data, f->auxblob.len);
        set_gen(f, entry, f->gen + 1);
        break;
    }
    case CG_TSM_STEP_READ:
        if (f->concurrent_writes > 0) {
            f->concurrent_writes--;
            set_gen(f, entry, f->gen + 1);
        }
        break;
    case CG_TSM_STEP_RMDIR:
        f->rmdirs++;
        rm_tree(entry);
        /* rm_tree removed the folder too: recreate it so the provider's rmdir finds it. */
        assert_int_equal(mkdir(entry, 0700), 0);
        break;
    }
}

static struct fake F;

static void fake_init(const char *provider, struct blob outblob, int has_auxblob,
                      struct blob auxblob)
{
    memset(&F, 0, sizeof(F));
    snprintf(F.root, sizeof(F.root), "/tmp/cg-test-tsm-XXXXXX");
    assert_non_null(mkdtemp(F.root));
    F.provider = provider;
    F.outblob = outblob;
    F.auxblob = auxblob;
    F.has_auxblob = has_auxblob;
}

static void fake_done(void)
{
    rm_tree(F.root);
    free(F.outblob.data);
    free(F.auxblob.data);
}

static struct cg_tsm_config fake_config(void)
{
    struct cg_tsm_config c = {.root = F.root,
                              .sev_guest = "/nonexistent/sev-guest",
                              .fake_kernel = fake_kernel,
                              .fake_arg = &F};
    return c;
}

/* ---- certificate tables ------------------------------------------------------------------ */

static const char *const GUID_TEXT[] = {
    "63da758d-e664-4564-adc5-f4b93be8accd", "a8074bc2-a25a-483e-aae6-39c045a0b8a1",
    "4ab7b379-bbac-4fe4-a02f-05aef327c782", "c0b406a4-a803-4952-9743-3fb6014cd0ae"};

static void guid_bytes(const char *text, uint8_t out[16])
{
    size_t n = 0;
    for (const char *p = text; *p != '\0' && n < 16; p++) {
        if (*p == '-')
            continue;
        unsigned v;
        assert_int_equal(sscanf(p, "%2x", &v), 1);
        out[n++] = (uint8_t)v;
        p++;
    }
    assert_int_equal(n, 16);
}

static void le32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

struct tentry {
    int kind; /* index into GUID_TEXT, or -1 for an unknown GUID */
    const struct blob *cert;
};

/* A table of n entries followed by their certificates, page-padded like the kernel's. */
static struct blob make_table(const struct tentry *e, size_t n)
{
    size_t table = (n + 1) * 24, total = table;
    for (size_t i = 0; i < n; i++)
        total += e[i].cert->len;
    size_t padded = (total + 4095) / 4096 * 4096;
    struct blob b = {calloc(1, padded), padded};
    size_t off = table;
    for (size_t i = 0; i < n; i++) {
        uint8_t *row = b.data + i * 24;
        if (e[i].kind >= 0)
            guid_bytes(GUID_TEXT[e[i].kind], row);
        else
            memset(row, 0x5a, 16);
        le32_put(row + 16, (uint32_t)off);
        le32_put(row + 20, (uint32_t)e[i].cert->len);
        memcpy(b.data + off, e[i].cert->data, e[i].cert->len);
        off += e[i].cert->len;
    }
    return b;
}

/* The Milan VCEK (DER) and the ASK and ARK (DER, from the PEM bundle). */
static struct blob G_vcek, G_ask, G_ark;

static int setup(void **state)
{
    (void)state;
    G_vcek = load("go-sev-guest/vcek.testcer");
    struct blob pem = load("go-sev-guest/ask_ark_milan.pem");
    struct cg_evidence e = {0};
    if (cg_snp_certs_load(pem.data, pem.len, &e) != 0 || e.n_certs != 2)
        return -1;
    G_ask = (struct blob){e.certs[0], e.cert_lens[0]};
    G_ark = (struct blob){e.certs[1], e.cert_lens[1]};
    free(pem.data);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(G_vcek.data);
    free(G_ask.data);
    free(G_ark.data);
    return 0;
}

static struct blob milan_report(uint8_t report_data[CG_REPORT_DATA_LEN])
{
    struct blob r = load("go-sev-guest/attestation.bin");
    assert_int_equal(r.len, CG_SNP_REPORT_SIZE);
    memcpy(report_data, r.data + 0x50, CG_REPORT_DATA_LEN);
    return r;
}

static struct blob full_table(void)
{
    struct tentry e[] = {{0, &G_vcek}, {2, &G_ask}, {3, &G_ark}};
    return make_table(e, 3);
}

/* The endorsements a provider attached must let the real verifier accept the report. */
static void expect_verifies(const struct cg_evidence *ev)
{
    struct cg_snp_report r;
    struct cg_verdict v = {{0}, {0}, {0}};
    struct cg_snp_anchor amd = {0};
    int rc = cg_snp_verify(ev->evidence, ev->evidence_len, (const uint8_t *const *)ev->certs,
                           ev->cert_lens, ev->n_certs, &amd, MILAN_AT, &r, &v);
    if (rc != 0)
        fail_msg("verify: %s expected %s actual %s", v.check, v.expected, v.actual);
    assert_int_equal(r.product, CG_SNP_MILAN);
}

/* ---- provider tests ----------------------------------------------------------------------- */

static void test_snp_cert_table(void **state)
{
    (void)state;
    uint8_t rd[CG_REPORT_DATA_LEN];
    struct blob rep = milan_report(rd);
    fake_init("sev_guest\n", rep, 1, full_table());
    memcpy(F.want_inblob, rd, sizeof(rd));
    struct cg_tsm_config cfg = fake_config();
    struct cg_provider *p;
    assert_int_equal(cg_tsm_provider_new("snp", &cfg, &p), 0);
    assert_string_equal(p->name, "snp");
    struct cg_evidence ev;
    assert_int_equal(p->get(p, rd, &ev), 0);
    assert_int_equal(ev.tag, CG_TAG_SNP);
    assert_int_equal(ev.evidence_len, CG_SNP_REPORT_SIZE);
    assert_memory_equal(ev.evidence, rep.data, CG_SNP_REPORT_SIZE);
    /* VCEK then ASK; the ARK stays out (the verifier pins its own). */
    assert_int_equal(ev.n_certs, 2);
    assert_int_equal(ev.cert_lens[0], G_vcek.len);
    assert_memory_equal(ev.certs[0], G_vcek.data, G_vcek.len);
    assert_int_equal(ev.cert_lens[1], G_ask.len);
    assert_memory_equal(ev.certs[1], G_ask.data, G_ask.len);
    expect_verifies(&ev);
    cg_evidence_clear(&ev);
    assert_int_equal(F.inblob_writes, 1);
    assert_int_equal(F.rmdirs, 1);
    assert_int_equal(count_entries(F.root), 0); /* the entry was removed */

    /* A second request uses a fresh entry. */
    assert_int_equal(p->get(p, rd, &ev), 0);
    cg_evidence_clear(&ev);
    assert_int_equal(F.mkdirs, 2);
    assert_int_equal(count_entries(F.root), 0);

    /* An outblob that is not for our report_data (another request's answer). */
    uint8_t other[CG_REPORT_DATA_LEN];
    memcpy(other, rd, sizeof(other));
    other[7] ^= 1;
    memcpy(F.want_inblob, other, sizeof(other));
    assert_int_equal(p->get(p, other, &ev), CG_EEVIDENCE);
    assert_null(ev.evidence);
    assert_int_equal(ev.n_certs, 0);
    assert_int_equal(count_entries(F.root), 0);
    p->free(p);
    fake_done();
}

static void test_generation_race(void **state)
{
    (void)state;
    uint8_t rd[CG_REPORT_DATA_LEN];
    fake_init("sev_guest\n", milan_report(rd), 1, full_table());
    memcpy(F.want_inblob, rd, sizeof(rd));
    struct cg_tsm_config cfg = fake_config();
    struct cg_provider *p;
    assert_int_equal(cg_tsm_provider_new("snp", &cfg, &p), 0);
    struct cg_evidence ev;

    /* Another writer between our reads, once: the provider asks again and succeeds. */
    F.concurrent_writes = 1;
    assert_int_equal(p->get(p, rd, &ev), 0);
    assert_int_equal(F.inblob_writes, 2);
    assert_int_equal(F.concurrent_writes, 0);
    expect_verifies(&ev);
    cg_evidence_clear(&ev);

    /* A writer that never stops: a bounded number of tries, then an error. */
    F.inblob_writes = 0;
    F.concurrent_writes = 1000;
    assert_int_equal(p->get(p, rd, &ev), -EBUSY);
    assert_int_equal(F.inblob_writes, CG_TSM_MAX_TRIES);
    assert_null(ev.evidence);
    assert_int_equal(count_entries(F.root), 0);
    p->free(p);
    fake_done();
}

/* A writer between our inblob write and the first generation read: the generation moved by
 * two, so the outblob may answer their inblob. */
static int early_writes;
static void early_writer(void *arg, enum cg_tsm_step step, const char *entry)
{
    struct fake *f = arg;
    fake_kernel(arg, step, entry);
    if (step == CG_TSM_STEP_INBLOB && early_writes > 0) {
        early_writes--;
        set_gen(f, entry, f->gen + 1);
    }
}

static void test_generation_early_writer(void **state)
{
    (void)state;
    uint8_t rd[CG_REPORT_DATA_LEN];
    fake_init("sev_guest\n", milan_report(rd), 1, full_table());
    memcpy(F.want_inblob, rd, sizeof(rd));
    struct cg_tsm_config cfg = fake_config();
    cfg.fake_kernel = early_writer;
    struct cg_provider *p;
    assert_int_equal(cg_tsm_provider_new("snp", &cfg, &p), 0);
    struct cg_evidence ev;
    early_writes = 2;
    assert_int_equal(p->get(p, rd, &ev), 0);
    assert_int_equal(F.inblob_writes, 3);
    cg_evidence_clear(&ev);
    p->free(p);
    fake_done();
}

static void test_snp_certs_dir(void **state)
{
    (void)state;
    uint8_t rd[CG_REPORT_DATA_LEN];
    struct blob none = {NULL, 0};
    /* Empty auxblob: the host gives no certificates. */
    fake_init("sev_guest\n", milan_report(rd), 1, none);
    memcpy(F.want_inblob, rd, sizeof(rd));
    struct cg_tsm_config cfg = fake_config();
    struct cg_provider *p;
    struct cg_evidence ev;

    /* No --snp-certs: nothing to verify the report with, an error at the source. */
    assert_int_equal(cg_tsm_provider_new("snp", &cfg, &p), 0);
    assert_int_equal(p->get(p, rd, &ev), CG_ECONFIG);
    p->free(p);

    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/cg-test-tsm-certs-XXXXXX");
    assert_non_null(mkdtemp(dir));
    cfg.snp_certs = dir;
    assert_int_equal(cg_tsm_provider_new("snp", &cfg, &p), 0);
    /* A folder without a VCEK. */
    assert_int_equal(p->get(p, rd, &ev), CG_ECONFIG);
    /* A VLEK file does not stand in for a VCEK-signed report. */
    put(dir, "vlek.der", G_vcek.data, G_vcek.len);
    assert_int_equal(p->get(p, rd, &ev), CG_ECONFIG);
    /* A VCEK that is not a certificate. */
    put_text(dir, "vcek.der", "not a certificate");
    assert_int_equal(p->get(p, rd, &ev), CG_ECONFIG);
    /* A DER VCEK and KDS's cert_chain (ASK then ARK, PEM). */
    put(dir, "vcek.der", G_vcek.data, G_vcek.len);
    struct blob chain = load("go-sev-guest/ask_ark_milan.pem");
    put(dir, "cert_chain", chain.data, chain.len);
    free(chain.data);
    assert_int_equal(p->get(p, rd, &ev), 0);
    assert_int_equal(ev.n_certs, 3);
    assert_memory_equal(ev.certs[0], G_vcek.data, G_vcek.len);
    assert_memory_equal(ev.certs[1], G_ask.data, G_ask.len);
    expect_verifies(&ev);
    cg_evidence_clear(&ev);
    p->free(p);

    /* The table wins over the folder when it has the VCEK; the folder fills in the ASK. */
    free(F.auxblob.data);
    struct tentry only_vcek[] = {{-1, &G_ark}, {0, &G_vcek}};
    F.auxblob = make_table(only_vcek, 2);
    drop(dir, "vcek.der");
    assert_int_equal(cg_tsm_provider_new("snp", &cfg, &p), 0);
    assert_int_equal(p->get(p, rd, &ev), 0);
    assert_int_equal(ev.n_certs, 3);
    assert_memory_equal(ev.certs[0], G_vcek.data, G_vcek.len);
    expect_verifies(&ev);
    cg_evidence_clear(&ev);

    /* A malformed table is an error, not a silent fall-back to the folder. */
    le32_put(F.auxblob.data + 24 + 20, 0x7fffffff);
    assert_int_equal(p->get(p, rd, &ev), CG_EEVIDENCE);
    assert_null(ev.evidence);
    p->free(p);
    rm_tree(dir);
    fake_done();
}

static void test_provider_mismatch(void **state)
{
    (void)state;
    uint8_t rd[CG_REPORT_DATA_LEN];
    fake_init("tdx_guest\n", milan_report(rd), 1, full_table());
    memcpy(F.want_inblob, rd, sizeof(rd));
    struct cg_tsm_config cfg = fake_config();
    struct cg_provider *p;
    struct cg_evidence ev;
    assert_int_equal(cg_tsm_provider_new("snp", &cfg, &p), 0);
    assert_int_equal(p->get(p, rd, &ev), CG_ENOTEE);
    assert_int_equal(F.inblob_writes, 0);
    assert_int_equal(count_entries(F.root), 0);
    p->free(p);
    fake_done();
}

/* A kernel that writes a non-number into generation. */
static void bad_generation(void *arg, enum cg_tsm_step step, const char *entry)
{
    fake_kernel(arg, step, entry);
    if (step == CG_TSM_STEP_INBLOB)
        put_text(entry, "generation", "2x\n");
}

static void test_bad_attributes(void **state)
{
    (void)state;
    uint8_t rd[CG_REPORT_DATA_LEN];
    fake_init("sev_guest\n", milan_report(rd), 1, full_table());
    memcpy(F.want_inblob, rd, sizeof(rd));
    struct cg_tsm_config cfg = fake_config();
    struct cg_provider *p;
    struct cg_evidence ev;

    cfg.fake_kernel = bad_generation;
    assert_int_equal(cg_tsm_provider_new("snp", &cfg, &p), 0);
    assert_int_equal(p->get(p, rd, &ev), CG_EEVIDENCE);
    assert_int_equal(count_entries(F.root), 0);
    p->free(p);

    /* An outblob over the limit is refused unread, not truncated. */
    cfg.fake_kernel = fake_kernel;
    free(F.outblob.data);
    F.outblob.len = CG_TSM_BLOB_MAX + 1;
    F.outblob.data = calloc(1, F.outblob.len);
    assert_int_equal(cg_tsm_provider_new("snp", &cfg, &p), 0);
    assert_int_equal(p->get(p, rd, &ev), CG_ELIMIT);
    /* An outblob that is no report (a kernel answering in another format). */
    F.outblob.len = 1000;
    assert_int_equal(p->get(p, rd, &ev), CG_EEVIDENCE);
    assert_null(ev.evidence);
    assert_int_equal(count_entries(F.root), 0);
    p->free(p);
    fake_done();
}

static time_t tdx_at(void)
{
    time_t t;
    assert_int_equal(cg_tdx_time_parse("2025-11-01T00:00:00Z", &t), 0);
    return t;
}

static void test_tdx(void **state)
{
    (void)state;
    struct blob quote = load("trustee/tdx/tdx_quote_6.dat");
    struct cg_tdx_quote q;
    struct cg_verdict v = {{0}, {0}, {0}};
    assert_int_equal(cg_tdx_quote_parse(quote.data, quote.len, &q, &v), 0);
    struct blob none = {NULL, 0};
    fake_init("tdx_guest\n", quote, 0, none);
    memcpy(F.want_inblob, q.report_data, CG_REPORT_DATA_LEN);

    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/cg-test-tsm-col-XXXXXX");
    assert_non_null(mkdtemp(dir));
    struct cg_tsm_config cfg = fake_config();
    cfg.tdx_collateral = dir;
    struct cg_provider *p;
    struct cg_evidence ev;
    assert_int_equal(cg_tsm_provider_new("tdx", &cfg, &p), 0);
    assert_string_equal(p->name, "tdx");

    /* Half the collateral is refused: TCB info without its QE identity and chain. */
    struct blob tcb = load("trustee/tdx/tcbInfo.json");
    put(dir, "tcb_info.json", tcb.data, tcb.len);
    assert_int_equal(p->get(p, q.report_data, &ev), CG_ECONFIG);

    struct blob qe = load("trustee/tdx/enclaveIdentity.json");
    struct blob chain = load("trustee/tdx/tcb_signing_chain_2025.pem");
    put(dir, "qe_identity.json", qe.data, qe.len);
    put(dir, "tcb_signing_chain.pem", chain.data, chain.len);
    assert_int_equal(p->get(p, q.report_data, &ev), 0);
    assert_int_equal(ev.tag, CG_TAG_TDX);
    assert_int_equal(ev.evidence_len, quote.len);
    assert_memory_equal(ev.evidence, quote.data, quote.len);
    assert_int_equal(ev.n_certs, 3);
    assert_int_equal(count_entries(F.root), 0);

    /* The endorsements are exactly what the verifier needs: it evaluates the TCB offline. */
    struct cg_tdx_collateral col;
    struct cg_tdx_status st;
    assert_int_equal(cg_tdx_collateral_from_blobs((const uint8_t *const *)ev.certs, ev.cert_lens,
                                                  ev.n_certs, &col, &v),
                     0);
    int rc = cg_tdx_verify(ev.evidence, ev.evidence_len, &col, tdx_at(), &q, &st, &v);
    if (rc != 0)
        fail_msg("verify: %s expected %s actual %s", v.check, v.expected, v.actual);
    assert_int_equal(st.collateral, 1);
    assert_int_equal(st.tcb_status, CG_TDX_TCB_OUT_OF_DATE); /* as the manifest says */
    cg_evidence_clear(&ev);

    /* A file that is no collateral at all. */
    put_text(dir, "root_crl.der", "hello");
    assert_int_equal(p->get(p, q.report_data, &ev), CG_ECONFIG);

    /* A quote for other report data. */
    drop(dir, "root_crl.der");
    uint8_t other[CG_REPORT_DATA_LEN];
    memcpy(other, q.report_data, sizeof(other));
    other[63] ^= 0x80;
    memcpy(F.want_inblob, other, sizeof(other));
    assert_int_equal(p->get(p, other, &ev), CG_EEVIDENCE);
    p->free(p);

    /* No collateral folder: the quote alone. */
    cfg.tdx_collateral = NULL;
    assert_int_equal(cg_tsm_provider_new("tdx", &cfg, &p), 0);
    memcpy(F.want_inblob, q.report_data, CG_REPORT_DATA_LEN);
    assert_int_equal(p->get(p, q.report_data, &ev), 0);
    assert_int_equal(ev.n_certs, 0);
    cg_evidence_clear(&ev);
    p->free(p);

    free(tcb.data);
    free(qe.data);
    free(chain.data);
    rm_tree(dir);
    fake_done();
}

static void test_detect(void **state)
{
    (void)state;
    struct blob none = {NULL, 0};
    const char *tee = NULL;
    char how[256];
    struct cg_tsm_config cfg;

    fake_init("sev_guest\n", none, 0, none);
    cfg = fake_config();
    assert_int_equal(cg_tsm_detect(&cfg, &tee, how, sizeof(how)), 0);
    assert_string_equal(tee, "snp");
    assert_non_null(strstr(how, "sev_guest"));
    assert_int_equal(count_entries(F.root), 0); /* the probe entry is gone */
    F.provider = "tdx_guest\n";
    assert_int_equal(cg_tsm_detect(&cfg, &tee, how, sizeof(how)), 0);
    assert_string_equal(tee, "tdx");
    F.provider = "arm_cca_guest\n";
    assert_int_equal(cg_tsm_detect(&cfg, &tee, how, sizeof(how)), CG_ENOTEE);
    assert_non_null(strstr(how, "arm_cca_guest"));

    /* No configfs-tsm: /dev/sev-guest (here a plain file standing in for it). */
    char dev[128];
    snprintf(dev, sizeof(dev), "%s/sev-guest", F.root);
    put_text(F.root, "sev-guest", "");
    cfg.root = "/nonexistent/tsm/report";
    cfg.sev_guest = dev;
    assert_int_equal(cg_tsm_detect(&cfg, &tee, how, sizeof(how)), 0);
    assert_string_equal(tee, "snp");
    assert_non_null(strstr(how, dev));

    /* Nothing: never sim. */
    cfg.sev_guest = "/nonexistent/sev-guest";
    assert_int_equal(cg_tsm_detect(&cfg, &tee, how, sizeof(how)), CG_ENOTEE);
    assert_non_null(strstr(how, "/nonexistent/tsm/report"));
    fake_done();
}

static void test_provider_new(void **state)
{
    (void)state;
    struct cg_tsm_config cfg = {.root = "/nonexistent/tsm", .sev_guest = "/nonexistent/sev"};
    struct cg_provider *p = NULL;
    assert_int_equal(cg_tsm_provider_new("snp", &cfg, &p), CG_ENOTEE);
    assert_int_equal(cg_tsm_provider_new("tdx", &cfg, &p), CG_ENOTEE);
    assert_int_equal(cg_tsm_provider_new("sim", &cfg, &p), CG_ECONFIG);
    assert_int_equal(cg_tsm_provider_new("auto", &cfg, &p), CG_ECONFIG);
    assert_null(p);

    /* TDX has no /dev fallback; SNP uses /dev/sev-guest, and a file that is not the
     * device fails the ioctl cleanly. */
    char dir[64];
    snprintf(dir, sizeof(dir), "/tmp/cg-test-tsm-dev-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char dev[128];
    snprintf(dev, sizeof(dev), "%s/sev-guest", dir);
    put_text(dir, "sev-guest", "");
    cfg.sev_guest = dev;
    assert_int_equal(cg_tsm_provider_new("tdx", &cfg, &p), CG_ENOTEE);
    assert_int_equal(cg_tsm_provider_new("snp", &cfg, &p), 0);
    uint8_t rd[CG_REPORT_DATA_LEN] = {1};
    struct cg_evidence ev;
    assert_int_equal(p->get(p, rd, &ev), -ENOTTY);
    assert_null(ev.evidence);
    p->free(p);
    rm_tree(dir);
}

/* ---- certificate table parser --------------------------------------------------------- */

static void expect_table_reject(const struct blob *b, const char *why)
{
    struct cg_snp_certtable t;
    struct cg_verdict v = {{0}, {0}, {0}};
    assert_int_equal(cg_snp_certtable_parse(b->data, b->len, &t, &v), CG_EEVIDENCE);
    assert_string_equal(v.check, "snp.cert_table");
    if (strstr(v.actual, why) == NULL && strstr(v.expected, why) == NULL)
        fail_msg("want '%s', got expected '%s' actual '%s'", why, v.expected, v.actual);
}

static void test_certtable(void **state)
{
    (void)state;
    struct cg_snp_certtable t;
    struct cg_verdict v = {{0}, {0}, {0}};

    struct blob b = full_table();
    assert_int_equal(cg_snp_certtable_parse(b.data, b.len, &t, &v), 0);
    assert_int_equal(t.n_entries, 3);
    assert_true(t.present[CG_SNP_CERT_VCEK] && t.present[CG_SNP_CERT_ASK] &&
                t.present[CG_SNP_CERT_ARK] && !t.present[CG_SNP_CERT_VLEK]);
    assert_int_equal(t.off[CG_SNP_CERT_VCEK], 4 * 24);
    assert_int_equal(t.len[CG_SNP_CERT_VCEK], G_vcek.len);
    assert_memory_equal(b.data + t.off[CG_SNP_CERT_ASK], G_ask.data, G_ask.len);

    /* Unknown GUIDs are skipped; a VLEK is found by its own GUID. */
    struct tentry vl[] = {{-1, &G_ark}, {1, &G_vcek}, {2, &G_ask}};
    struct blob c = make_table(vl, 3);
    assert_int_equal(cg_snp_certtable_parse(c.data, c.len, &t, &v), 0);
    assert_int_equal(t.n_entries, 3);
    assert_true(t.present[CG_SNP_CERT_VLEK] && !t.present[CG_SNP_CERT_VCEK]);
    free(c.data);

    /* An empty table (just the terminator) is valid and names nothing. */
    uint8_t zero[24] = {0};
    assert_int_equal(cg_snp_certtable_parse(zero, sizeof(zero), &t, &v), 0);
    assert_int_equal(t.n_entries, 0);

    struct blob m = {malloc(b.len), b.len};
#define RESET() memcpy(m.data, b.data, b.len)

    /* No terminator: the blob ends inside the entries. */
    RESET();
    m.len = 3 * 24 + 10;
    expect_table_reject(&m, "terminating");
    m.len = 0;
    expect_table_reject(&m, "terminating");
    m.len = b.len;
    /* No terminator: the terminator slot holds a fourth entry, and nothing follows. */
    RESET();
    memset(m.data + 3 * 24, 0x11, 16);
    le32_put(m.data + 3 * 24 + 16, (uint32_t)(b.len - 8));
    le32_put(m.data + 3 * 24 + 20, 8);
    m.len = 4 * 24;
    expect_table_reject(&m, "terminating");
    m.len = b.len;

    /* Out of bounds: offset past the end, length past the end, offset + length overflowing. */
    RESET();
    le32_put(m.data + 16, (uint32_t)b.len + 1);
    expect_table_reject(&m, "entry 0");
    RESET();
    le32_put(m.data + 24 + 20, (uint32_t)b.len);
    expect_table_reject(&m, "entry 1");
    RESET();
    le32_put(m.data + 16, 0xfffffff0u);
    le32_put(m.data + 20, 0x20);
    expect_table_reject(&m, "entry 0");
    /* An entry that points into the table itself, or is empty. */
    RESET();
    le32_put(m.data + 16, 8);
    expect_table_reject(&m, "entry 0");
    RESET();
    le32_put(m.data + 2 * 24 + 20, 0);
    expect_table_reject(&m, "entry 2");

    /* Overlapping entries: the ASK entry starts inside the VCEK. */
    RESET();
    le32_put(m.data + 24 + 16, (uint32_t)(4 * 24 + G_vcek.len - 1));
    expect_table_reject(&m, "overlap");
    RESET();
    le32_put(m.data + 2 * 24 + 16, 4 * 24); /* the ARK entry starts where the VCEK does */
    le32_put(m.data + 2 * 24 + 20, 1);
    expect_table_reject(&m, "overlap");

    /* The same GUID twice. */
    RESET();
    memcpy(m.data + 24, m.data, 16);
    expect_table_reject(&m, "VCEK twice");

    /* A zero GUID with a location is not a terminator. */
    RESET();
    memset(m.data + 24, 0, 16);
    expect_table_reject(&m, "zero GUID");
#undef RESET
    free(m.data);
    free(b.data);

    /* More entries than the limit. */
    size_t n = CG_SNP_CERTTABLE_MAX_ENTRIES + 1;
    struct blob big = {calloc(n + 1, 24), (n + 1) * 24};
    for (size_t i = 0; i < n; i++)
        memset(big.data + i * 24, 0x22, 24);
    expect_table_reject(&big, "at most 64");
    free(big.data);
}

static void test_sev_guest_abi(void **state)
{
    (void)state;
    uint8_t resp[4000] = {0};
    uint8_t rd[CG_REPORT_DATA_LEN];
    struct blob rep = milan_report(rd);
    memcpy(resp + 0x20, rep.data, rep.len);
    le32_put(resp + 4, CG_SNP_REPORT_SIZE);
    const uint8_t *r = NULL;
    assert_int_equal(cg__snp_report_rsp(resp, sizeof(resp), &r), 0);
    assert_ptr_equal(r, resp + 0x20);
    assert_int_equal(cg__snp_report_rsp(resp, 0x20 + CG_SNP_REPORT_SIZE - 1, &r), CG_EEVIDENCE);
    le32_put(resp, 0x16); /* firmware: invalid parameters */
    assert_int_equal(cg__snp_report_rsp(resp, sizeof(resp), &r), CG_EEVIDENCE);
    le32_put(resp, 0);
    le32_put(resp + 4, CG_SNP_REPORT_SIZE + 1);
    assert_int_equal(cg__snp_report_rsp(resp, sizeof(resp), &r), CG_EEVIDENCE);
    free(rep.data);

    /* "Buffer too small": EIO (or EINVAL on older kernels), VMM error 1
     * (SNP_GUEST_VMM_ERR_INVALID_LEN), and the needed length. */
    size_t next = 0;
    assert_int_equal(cg__snp_ext_certs_retry(EINVAL, 1, 16384, 20000, &next), 1);
    assert_int_equal(next, 20480);
    assert_int_equal(cg__snp_ext_certs_retry(EINVAL, 1, 16384, 65536, &next), 1);
    assert_int_equal(next, 65536);
    assert_int_equal(cg__snp_ext_certs_retry(EINVAL, 1, 16384, 65537, &next), CG_ELIMIT);
    assert_int_equal(cg__snp_ext_certs_retry(EINVAL, 1, 16384, 16384, &next), 0);
    assert_int_equal(cg__snp_ext_certs_retry(EINVAL, 2, 16384, 20000, &next), 0);
    assert_int_equal(cg__snp_ext_certs_retry(EIO, 1, 16384, 24576, &next), 1);
    assert_int_equal(next, 24576);
    assert_int_equal(cg__snp_ext_certs_retry(EFAULT, 1, 16384, 20000, &next), 0);
    assert_int_equal(cg__snp_ext_certs_retry(EIO, 0, 16384, 20000, &next), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snp_cert_table),
        cmocka_unit_test(test_generation_race),
        cmocka_unit_test(test_generation_early_writer),
        cmocka_unit_test(test_snp_certs_dir),
        cmocka_unit_test(test_provider_mismatch),
        cmocka_unit_test(test_bad_attributes),
        cmocka_unit_test(test_tdx),
        cmocka_unit_test(test_detect),
        cmocka_unit_test(test_provider_new),
        cmocka_unit_test(test_certtable),
        cmocka_unit_test(test_sev_guest_abi),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
