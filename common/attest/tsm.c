#include "ccgate/tsm.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/sev-guest.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ccgate/file.h"
#include "ccgate/log.h"
#include "ccgate/snp.h"
#include "ccgate/tdx.h"

#define PAGE 4096u
#define ENTRY_SIZE 24 /* GUID[16], u32 offset, u32 length */
#define GEN_MAX_BYTES 32
#define PROVIDER_MAX_BYTES 64
#define BUSY_TRIES 3

/* GHCB spec certificate-table GUIDs, stored in RFC 4122 byte order (as libuuid's uuid_parse()
 * and go-sev-guest write them): the text form read left to right. */
static const uint8_t guids[CG_SNP_CERT_KINDS][16] = {
    /* VCEK 63da758d-e664-4564-adc5-f4b93be8accd */
    {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac,
     0xcd},
    /* VLEK a8074bc2-a25a-483e-aae6-39c045a0b8a1 */
    {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e, 0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8,
     0xa1},
    /* ASK/ASVK 4ab7b379-bbac-4fe4-a02f-05aef327c782 */
    {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4, 0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7,
     0x82},
    /* ARK c0b406a4-a803-4952-9743-3fb6014cd0ae */
    {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52, 0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0,
     0xae},
};

static const char *const kind_names[CG_SNP_CERT_KINDS] = {"VCEK", "VLEK", "ASK", "ARK"};

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int all_zero(const uint8_t *p, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

int cg_snp_certtable_parse(const uint8_t *blob, size_t len, struct cg_snp_certtable *out,
                           struct cg_verdict *v)
{
    size_t offs[CG_SNP_CERTTABLE_MAX_ENTRIES], lens[CG_SNP_CERTTABLE_MAX_ENTRIES];
    size_t n = 0;
    int terminated = 0;

    memset(out, 0, sizeof(*out));
    while ((n + 1) * ENTRY_SIZE <= len) {
        const uint8_t *e = blob + n * ENTRY_SIZE;
        if (all_zero(e, ENTRY_SIZE)) {
            terminated = 1;
            break;
        }
        if (n == CG_SNP_CERTTABLE_MAX_ENTRIES)
            return cg_reject(v, CG_EEVIDENCE, "snp.cert_table", "at most 64 entries", "more");
        if (all_zero(e, 16))
            return cg_reject(v, CG_EEVIDENCE, "snp.cert_table", "a GUID in every entry",
                             "entry %zu has a zero GUID", n);
        offs[n] = le32(e + 16);
        lens[n] = le32(e + 20);
        n++;
    }
    if (!terminated)
        return cg_reject(v, CG_EEVIDENCE, "snp.cert_table", "an all-zero terminating entry",
                         "none in %zu bytes", len);
    size_t table_end = (n + 1) * ENTRY_SIZE;
    for (size_t i = 0; i < n; i++) {
        if (lens[i] == 0 || offs[i] < table_end || offs[i] > len || lens[i] > len - offs[i])
            return cg_reject(v, CG_EEVIDENCE, "snp.cert_table",
                             "entries non-empty, after the table and inside the blob",
                             "entry %zu: offset %zu length %zu in %zu bytes", i, offs[i], lens[i],
                             len);
        for (size_t j = 0; j < i; j++)
            if (offs[i] < offs[j] + lens[j] && offs[j] < offs[i] + lens[i])
                return cg_reject(v, CG_EEVIDENCE, "snp.cert_table", "entries that do not overlap",
                                 "entries %zu and %zu overlap", j, i);
        for (int k = 0; k < CG_SNP_CERT_KINDS; k++) {
            if (memcmp(blob + i * ENTRY_SIZE, guids[k], 16) != 0)
                continue;
            if (out->present[k])
                return cg_reject(v, CG_EEVIDENCE, "snp.cert_table", "each GUID at most once",
                                 "%s twice", kind_names[k]);
            out->present[k] = 1;
            out->off[k] = offs[i];
            out->len[k] = lens[i];
        }
    }
    out->n_entries = n;
    return 0;
}

int cg__snp_report_rsp(const uint8_t *resp, size_t len, const uint8_t **report)
{
    if (len < 0x20 + CG_SNP_REPORT_SIZE)
        return CG_EEVIDENCE;
    uint32_t status = le32(resp), size = le32(resp + 4);
    if (status != 0) {
        cg_log_error("snp.report", "err=\"firmware status 0x%" PRIx32 "\"", status);
        return CG_EEVIDENCE;
    }
    if (size != CG_SNP_REPORT_SIZE) {
        cg_log_error("snp.report", "err=\"report size %" PRIu32 ", expected %d\"", size,
                     CG_SNP_REPORT_SIZE);
        return CG_EEVIDENCE;
    }
    *report = resp + 0x20;
    return 0;
}

int cg__snp_ext_certs_retry(int err, uint32_t vmm_error, uint32_t had, uint32_t needed,
                            size_t *next)
{
    /* Kernels answer EIO (they reissue the request without certificates so that the
     * message sequence number advances) or, older ones, EINVAL; the VMM error is the sign. */
    if ((err != EIO && err != EINVAL) || vmm_error != SNP_GUEST_VMM_ERR_INVALID_LEN ||
        needed <= had)
        return 0;
    size_t want = ((size_t)needed + PAGE - 1) / PAGE * PAGE;
    if (want > CG_SNP_EXT_CERTS_MAX)
        return CG_ELIMIT;
    *next = want;
    return 1;
}

/* ---- files ----------------------------------------------------------------------------- */

static int join(char *out, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", dir, name);
    return n > 0 && (size_t)n < cap ? 0 : CG_ELIMIT;
}

static int write_all(const char *path, const uint8_t *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t done = 0;
    int rc = 0;
    while (rc == 0 && done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = w < 0 ? -errno : -EIO;
        else
            done += (size_t)w;
    }
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

/* The text of a small attribute file without its trailing newline. */
static int read_text(const char *path, char *out, size_t cap)
{
    uint8_t *buf;
    size_t n;
    int rc = cg_file_read(path, cap - 1, &buf, &n);
    if (rc != 0)
        return rc;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\0'))
        n--;
    memcpy(out, buf, n);
    out[n] = '\0';
    free(buf);
    return 0;
}

static int read_generation(const char *entry, uint64_t *gen)
{
    char path[4096], text[GEN_MAX_BYTES], *end;
    int rc = join(path, sizeof(path), entry, "generation");
    if (rc == 0)
        rc = read_text(path, text, sizeof(text));
    if (rc != 0)
        return rc;
    errno = 0;
    unsigned long long g = strtoull(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || errno != 0) {
        cg_log_error("tsm.generation", "entry=%s err=\"not a number: '%s'\"", entry, text);
        return CG_EEVIDENCE;
    }
    *gen = g;
    return 0;
}

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- configfs-tsm ---------------------------------------------------------------------- */

struct tsm_entry {
    char path[4096];
    const struct cg_tsm_config *cfg;
};

static void hook(const struct tsm_entry *e, enum cg_tsm_step step)
{
    if (e->cfg->fake_kernel != NULL)
        e->cfg->fake_kernel(e->cfg->fake_arg, step, e->path);
}

/* Creates a fresh entry under root (a name no other process uses: pid and a counter). */
static int entry_create(const struct cg_tsm_config *cfg, const char *root, struct tsm_entry *e)
{
    static _Atomic unsigned seq;
    e->cfg = cfg;
    for (int i = 0; i < 8; i++) {
        char name[64];
        snprintf(name, sizeof(name), "ccgate-%ld-%u", (long)getpid(), seq++);
        if (join(e->path, sizeof(e->path), root, name) != 0)
            return CG_ELIMIT;
        if (mkdir(e->path, 0700) == 0) {
            hook(e, CG_TSM_STEP_MKDIR);
            return 0;
        }
        if (errno != EEXIST) {
            int err = -errno;
            cg_log_error("tsm.mkdir", "path=%s err=\"%s\"", e->path, strerror(errno));
            return err;
        }
    }
    return -EEXIST;
}

static void entry_remove(struct tsm_entry *e)
{
    hook(e, CG_TSM_STEP_RMDIR);
    if (rmdir(e->path) != 0)
        cg_log_warn("tsm.rmdir", "path=%s err=\"%s\"", e->path, strerror(errno));
}

static int entry_read(const struct tsm_entry *e, const char *attr, char *out, size_t cap)
{
    char path[4096];
    int rc = join(path, sizeof(path), e->path, attr);
    return rc == 0 ? read_text(path, out, cap) : rc;
}

static const char *root_of(const struct cg_tsm_config *cfg)
{
    return cfg->root != NULL ? cfg->root : CG_TSM_ROOT;
}

/*
 * One report through configfs-tsm: write inblob, read generation, outblob and auxblob (when
 * want_aux), generation again. The generation must move by exactly our write and then stay:
 * anything else means another writer on the entry, and the blobs may be theirs.
 */
static int tsm_report(const struct cg_tsm_config *cfg, const char *want_provider,
                      const uint8_t report_data[CG_REPORT_DATA_LEN], int want_aux,
                      uint8_t **outblob, size_t *out_len, uint8_t **auxblob, size_t *aux_len)
{
    struct tsm_entry e;
    char path[4096], provider[PROVIDER_MAX_BYTES];
    uint64_t g0, g1, g2;
    int rc = entry_create(cfg, root_of(cfg), &e);
    if (rc != 0)
        return rc;
    *outblob = *auxblob = NULL;
    *out_len = *aux_len = 0;
    if ((rc = entry_read(&e, "provider", provider, sizeof(provider))) != 0) {
        cg_log_error("tsm.provider", "entry=%s err=\"%s\"", e.path, cg_strerror(rc));
        goto out;
    }
    if (strcmp(provider, want_provider) != 0) {
        cg_log_error("tsm.provider", "entry=%s provider=%s expected=%s", e.path, provider,
                     want_provider);
        rc = CG_ENOTEE;
        goto out;
    }
    for (int attempt = 0;; attempt++) {
        if (attempt == CG_TSM_MAX_TRIES) {
            cg_log_error("tsm.generation", "entry=%s err=\"changed by another writer %d times\"",
                         e.path, CG_TSM_MAX_TRIES);
            rc = -EBUSY;
            goto out;
        }
        free(*outblob);
        free(*auxblob);
        *outblob = *auxblob = NULL;
        *aux_len = 0;
        if ((rc = read_generation(e.path, &g0)) != 0 ||
            (rc = join(path, sizeof(path), e.path, "inblob")) != 0 ||
            (rc = write_all(path, report_data, CG_REPORT_DATA_LEN)) != 0)
            goto io;
        hook(&e, CG_TSM_STEP_INBLOB);
        if ((rc = read_generation(e.path, &g1)) != 0)
            goto io;
        if ((rc = join(path, sizeof(path), e.path, "outblob")) != 0 ||
            (rc = cg_file_read(path, CG_TSM_BLOB_MAX, outblob, out_len)) != 0)
            goto io;
        if (want_aux) {
            if ((rc = join(path, sizeof(path), e.path, "auxblob")) != 0)
                goto io;
            rc = cg_file_read(path, CG_TSM_BLOB_MAX, auxblob, aux_len);
            /* No auxblob attribute, or an empty one: the host supplies no certificates. */
            if (rc == -ENOENT)
                rc = 0;
            if (rc != 0)
                goto io;
        }
        hook(&e, CG_TSM_STEP_READ);
        if ((rc = read_generation(e.path, &g2)) != 0)
            goto io;
        if (g1 == g0 + 1 && g2 == g1)
            break;
        cg_log_warn("tsm.generation",
                    "entry=%s before=%" PRIu64 " after_write=%" PRIu64 " after_read=%" PRIu64
                    " retry=1",
                    e.path, g0, g1, g2);
    }
    rc = 0;
    goto out;
io:
    cg_log_error("tsm.report", "entry=%s err=\"%s\"", e.path, cg_strerror(rc));
out:
    if (rc != 0) {
        free(*outblob);
        free(*auxblob);
        *outblob = *auxblob = NULL;
        *out_len = *aux_len = 0;
    }
    entry_remove(&e);
    return rc;
}

int cg_tsm_detect(const struct cg_tsm_config *cfg, const char **tee, char *how, size_t howlen)
{
    const char *root = root_of(cfg);
    const char *dev = cfg->sev_guest != NULL ? cfg->sev_guest : CG_SEV_GUEST_DEV;
    if (is_dir(root)) {
        struct tsm_entry e;
        char provider[PROVIDER_MAX_BYTES];
        int rc = entry_create(cfg, root, &e);
        if (rc == 0) {
            rc = entry_read(&e, "provider", provider, sizeof(provider));
            entry_remove(&e);
        }
        if (rc != 0) {
            snprintf(how, howlen, "configfs-tsm at %s, but no readable provider (%s)", root,
                     cg_strerror(rc));
            return CG_ENOTEE;
        }
        if (strcmp(provider, "sev_guest") == 0)
            *tee = "snp";
        else if (strcmp(provider, "tdx_guest") == 0)
            *tee = "tdx";
        else {
            snprintf(how, howlen,
                     "configfs-tsm at %s with provider '%s', which ccgate does not "
                     "support",
                     root, provider);
            return CG_ENOTEE;
        }
        snprintf(how, howlen, "configfs-tsm at %s, provider %s", root, provider);
        return 0;
    }
    if (exists(dev)) {
        *tee = "snp";
        snprintf(how, howlen, "%s (no configfs-tsm at %s)", dev, root);
        return 0;
    }
    snprintf(how, howlen, "neither configfs-tsm at %s nor %s", root, dev);
    return CG_ENOTEE;
}

/* ---- /dev/sev-guest -------------------------------------------------------------------- */

static int sev_guest_report(const char *dev, const uint8_t report_data[CG_REPORT_DATA_LEN],
                            uint8_t **report, uint8_t **certs, size_t *certs_len)
{
    struct snp_ext_report_req req;
    struct snp_report_resp resp;
    struct snp_guest_request_ioctl greq;
    size_t cap = 4 * PAGE;
    uint8_t *buf = NULL;
    const uint8_t *r;
    int rc, busy = 0;
    int fd = open(dev, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        cg_log_error("sev_guest.open", "path=%s err=\"%s\"", dev, strerror(errno));
        return rc;
    }
    for (;;) {
        free(buf);
        buf = aligned_alloc(PAGE, cap);
        if (buf == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        memset(buf, 0, cap);
        memset(&req, 0, sizeof(req));
        memset(&resp, 0, sizeof(resp));
        memset(&greq, 0, sizeof(greq));
        memcpy(req.data.user_data, report_data, CG_REPORT_DATA_LEN);
        req.certs_address = (uint64_t)(uintptr_t)buf;
        req.certs_len = (uint32_t)cap;
        greq.msg_version = 1;
        greq.req_data = (uint64_t)(uintptr_t)&req;
        greq.resp_data = (uint64_t)(uintptr_t)&resp;
        if (ioctl(fd, SNP_GET_EXT_REPORT, &greq) == 0)
            break;
        int err = errno;
        size_t next;
        rc = cg__snp_ext_certs_retry(err, greq.vmm_error, (uint32_t)cap, req.certs_len, &next);
        if (rc == 1) {
            cap = next;
            continue;
        }
        if (rc == 0 && greq.vmm_error == SNP_GUEST_VMM_ERR_BUSY && ++busy < BUSY_TRIES) {
            /* The host throttles guest requests; wait a little, as the kernel does. */
            (void)usleep(200 * 1000);
            continue;
        }
        cg_log_error("sev_guest.ext_report",
                     "path=%s err=\"%s\" fw_error=0x%" PRIx32 " vmm_error=0x%" PRIx32
                     " certs_len=%" PRIu32,
                     dev, strerror(err), greq.fw_error, greq.vmm_error, req.certs_len);
        if (rc == 0)
            rc = -err;
        goto out;
    }
    if ((rc = cg__snp_report_rsp(resp.data, sizeof(resp.data), &r)) != 0)
        goto out;
    *report = malloc(CG_SNP_REPORT_SIZE);
    if (*report == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    memcpy(*report, r, CG_SNP_REPORT_SIZE);
    *certs = buf;
    *certs_len = cap;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}

/* ---- endorsements ---------------------------------------------------------------------- */

/* Appends the first of names[] found in dir (DER or PEM); 0 and *found, or an error. */
static int load_first(const char *dir, const char *const *names, struct cg_evidence *out,
                      const char **found)
{
    *found = NULL;
    for (size_t i = 0; names[i] != NULL; i++) {
        char path[4096];
        uint8_t *data;
        size_t len;
        int rc = join(path, sizeof(path), dir, names[i]);
        if (rc == 0)
            rc = cg_file_read(path, CG_TSM_BLOB_MAX, &data, &len);
        if (rc == -ENOENT)
            continue;
        if (rc != 0) {
            cg_log_error("snp.certs", "path=%s err=\"%s\"", path, cg_strerror(rc));
            return rc;
        }
        rc = cg_snp_certs_load(data, len, out);
        free(data);
        if (rc != 0) {
            cg_log_error("snp.certs", "path=%s err=\"not a DER or PEM certificate (%s)\"", path,
                         cg_strerror(rc));
            return CG_ECONFIG;
        }
        *found = names[i];
        return 0;
    }
    return 0;
}

/* certs[] for a report: the signing key's certificate first, then ASK/ASVK when known. */
static int snp_endorse(const struct cg_tsm_config *cfg, const uint8_t *aux, size_t aux_len,
                       struct cg_evidence *out)
{
    static const char *const vcek_files[] = {"vcek.der", "vcek.pem", NULL};
    static const char *const vlek_files[] = {"vlek.der", "vlek.pem", NULL};
    static const char *const ask_files[] = {"ask.der",  "ask.pem",    "asvk.der",
                                            "asvk.pem", "cert_chain", NULL};
    struct cg_snp_report r;
    struct cg_snp_certtable t = {0};
    struct cg_verdict v = {{0}, {0}, {0}};
    const char *found = NULL;
    int rc = cg_snp_report_parse(out->evidence, out->evidence_len, &r, &v);
    if (rc != 0) {
        cg_log_error("snp.report", "err=\"%s\" expected=\"%s\" actual=\"%s\"", v.check, v.expected,
                     v.actual);
        return rc;
    }
    unsigned key = (r.signer_info >> 2) & 7;
    if (key > 1) {
        cg_log_error("snp.report", "err=\"signing key %u is neither VCEK (0) nor VLEK (1)\"", key);
        return CG_EEVIDENCE;
    }
    enum cg_snp_cert_kind kind = key == 1 ? CG_SNP_CERT_VLEK : CG_SNP_CERT_VCEK;
    if (aux_len > 0 && (rc = cg_snp_certtable_parse(aux, aux_len, &t, &v)) != 0) {
        cg_log_error("snp.cert_table", "expected=\"%s\" actual=\"%s\"", v.expected, v.actual);
        return rc;
    }
    if (t.present[kind] && (rc = cg_snp_certs_load(aux + t.off[kind], t.len[kind], out)) != 0) {
        cg_log_error("snp.cert_table", "err=\"the %s entry is not a certificate\"",
                     kind_names[kind]);
        return rc;
    }
    if (!t.present[kind] && cfg->snp_certs != NULL &&
        (rc = load_first(cfg->snp_certs, key == 1 ? vlek_files : vcek_files, out, &found)) != 0)
        return rc;
    if (out->n_certs == 0) {
        cg_log_error("snp.certs", "err=\"no %s: the host's certificate table has none and %s\"",
                     kind_names[kind],
                     cfg->snp_certs == NULL ? "--snp-certs DIR is not given"
                                            : "--snp-certs DIR holds no vcek/vlek .der or .pem");
        return CG_ECONFIG;
    }
    /* Without an ASK the verifier uses the pinned one of the product: not an error. */
    if (t.present[CG_SNP_CERT_ASK] &&
        (rc = cg_snp_certs_load(aux + t.off[CG_SNP_CERT_ASK], t.len[CG_SNP_CERT_ASK], out)) != 0) {
        cg_log_error("snp.cert_table", "err=\"the ASK entry is not a certificate\"");
        return rc;
    }
    if (!t.present[CG_SNP_CERT_ASK] && cfg->snp_certs != NULL &&
        (rc = load_first(cfg->snp_certs, ask_files, out, &found)) != 0)
        return rc;
    return 0;
}

/* certs[] for a quote: the collateral files the operator put in the folder, checked for
 * shape so that a wrong file fails at start-up rather than at every client. */
int cg_tsm_tdx_collateral_load(const char *dir, struct cg_evidence *out)
{
    static const char *const files[] = {"tcb_info.json", "qe_identity.json",
                                        "tcb_signing_chain.pem", "root_crl.der", "pck_crl.der"};
    size_t total = 0;
    if (dir == NULL)
        return 0;
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[4096];
        uint8_t *data;
        size_t len;
        int rc = join(path, sizeof(path), dir, files[i]);
        if (rc == 0)
            rc = cg_file_read(path, CG_TSM_BLOB_MAX, &data, &len);
        if (rc == -ENOENT)
            continue;
        if (rc != 0) {
            cg_log_error("tdx.collateral", "path=%s err=\"%s\"", path, cg_strerror(rc));
            return rc;
        }
        total += len;
        if (total > CG_EVIDENCE_MAX_BYTES * 3) {
            free(data);
            cg_log_error("tdx.collateral", "dir=%s err=\"over %d bytes together\"", dir,
                         CG_EVIDENCE_MAX_BYTES * 3);
            return CG_ELIMIT;
        }
        out->certs[out->n_certs] = data;
        out->cert_lens[out->n_certs++] = len;
    }
    struct cg_tdx_collateral col;
    struct cg_verdict v = {{0}, {0}, {0}};
    int n = 0;
    int rc = cg_tdx_collateral_from_blobs((const uint8_t *const *)out->certs, out->cert_lens,
                                          out->n_certs, &col, &v);
    if (rc == 0) {
        n = (col.tcb_info != NULL) + (col.qe_identity != NULL) + (col.tcb_chain != NULL);
        if (n != 0 && n != 3)
            rc = cg_reject(&v, CG_EEVIDENCE, "tdx.collateral",
                           "tcb_info.json, qe_identity.json and tcb_signing_chain.pem together",
                           "%d of 3", n);
    }
    if (rc != 0) {
        cg_log_error("tdx.collateral", "dir=%s expected=\"%s\" actual=\"%s\"", dir, v.expected,
                     v.actual);
        return CG_ECONFIG;
    }
    return 0;
}

/* ---- the provider ---------------------------------------------------------------------- */

enum backend { BACKEND_TSM, BACKEND_SEV_GUEST };

struct tsm_provider {
    struct cg_provider base; /* first: the provider API hands this pointer back */
    int tdx;
    enum backend backend;
    struct cg_tsm_config cfg; /* strings owned */
};

/* The report or quote must carry our report_data: else it answers someone else's request. */
static int check_binding(int tdx, const uint8_t *ev, size_t len,
                         const uint8_t report_data[CG_REPORT_DATA_LEN])
{
    struct cg_verdict v = {{0}, {0}, {0}};
    const uint8_t *got;
    struct cg_snp_report r;
    struct cg_tdx_quote *q = NULL;
    int rc;
    if (tdx) {
        q = malloc(sizeof(*q));
        if (q == NULL)
            return -ENOMEM;
        rc = cg_tdx_quote_parse(ev, len, q, &v);
        got = q->report_data;
    } else {
        rc = cg_snp_report_parse(ev, len, &r, &v);
        got = r.report_data;
    }
    if (rc != 0)
        cg_log_error("tsm.outblob", "err=\"%s\" expected=\"%s\" actual=\"%s\"", v.check, v.expected,
                     v.actual);
    else if (memcmp(got, report_data, CG_REPORT_DATA_LEN) != 0) {
        cg_log_error("tsm.outblob", "err=\"report_data is not the one requested\"");
        rc = CG_EEVIDENCE;
    }
    free(q);
    return rc;
}

static int tsm_get(struct cg_provider *base, const uint8_t report_data[CG_REPORT_DATA_LEN],
                   struct cg_evidence *out)
{
    struct tsm_provider *p = (struct tsm_provider *)base;
    uint8_t *aux = NULL;
    size_t aux_len = 0;
    int rc;
    memset(out, 0, sizeof(*out));
    out->tag = p->tdx ? CG_TAG_TDX : CG_TAG_SNP;
    if (p->backend == BACKEND_TSM)
        rc = tsm_report(&p->cfg, p->tdx ? "tdx_guest" : "sev_guest", report_data, !p->tdx,
                        &out->evidence, &out->evidence_len, &aux, &aux_len);
    else {
        rc = sev_guest_report(p->cfg.sev_guest, report_data, &out->evidence, &aux, &aux_len);
        if (rc == 0)
            out->evidence_len = CG_SNP_REPORT_SIZE;
    }
    if (rc != 0)
        goto out;
    if ((rc = check_binding(p->tdx, out->evidence, out->evidence_len, report_data)) != 0)
        goto out;
    rc = p->tdx ? cg_tsm_tdx_collateral_load(p->cfg.tdx_collateral, out)
                : snp_endorse(&p->cfg, aux, aux_len, out);
out:
    free(aux);
    if (rc != 0)
        cg_evidence_clear(out);
    return rc;
}

static void tsm_free(struct cg_provider *base)
{
    struct tsm_provider *p = (struct tsm_provider *)base;
    if (p == NULL)
        return;
    free((char *)p->cfg.root);
    free((char *)p->cfg.sev_guest);
    free((char *)p->cfg.snp_certs);
    free((char *)p->cfg.tdx_collateral);
    free(p);
}

static int dup_opt(const char *s, const char *def, const char **out)
{
    *out = NULL;
    if (s == NULL && def == NULL)
        return 0;
    *out = strdup(s != NULL ? s : def);
    return *out != NULL ? 0 : -ENOMEM;
}

int cg_tsm_provider_new(const char *tee, const struct cg_tsm_config *cfg, struct cg_provider **out)
{
    int tdx;
    if (strcmp(tee, "snp") == 0)
        tdx = 0;
    else if (strcmp(tee, "tdx") == 0)
        tdx = 1;
    else
        return CG_ECONFIG;
    struct tsm_provider *p = calloc(1, sizeof(*p));
    if (p == NULL)
        return -ENOMEM;
    p->base.name = tdx ? "tdx" : "snp";
    p->base.get = tsm_get;
    p->base.free = tsm_free;
    p->tdx = tdx;
    p->cfg.fake_kernel = cfg->fake_kernel;
    p->cfg.fake_arg = cfg->fake_arg;
    int rc;
    if ((rc = dup_opt(cfg->root, CG_TSM_ROOT, &p->cfg.root)) != 0 ||
        (rc = dup_opt(cfg->sev_guest, CG_SEV_GUEST_DEV, &p->cfg.sev_guest)) != 0 ||
        (rc = dup_opt(cfg->snp_certs, NULL, &p->cfg.snp_certs)) != 0 ||
        (rc = dup_opt(cfg->tdx_collateral, NULL, &p->cfg.tdx_collateral)) != 0)
        goto out;
    if (is_dir(p->cfg.root))
        p->backend = BACKEND_TSM;
    else if (!tdx && exists(p->cfg.sev_guest))
        p->backend = BACKEND_SEV_GUEST;
    else {
        rc = CG_ENOTEE;
        goto out;
    }
    *out = &p->base;
out:
    if (rc != 0)
        tsm_free(&p->base);
    return rc;
}
