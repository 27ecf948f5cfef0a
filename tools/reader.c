/*
 * reader.c — reads one report file (format: src/report-format.h) into a struct cmt_process
 * (tools/report.h), validating everything: the file is untrusted input. It owns the checks
 * and the messages (one "error:" line naming the file and byte offset, or one "warning:" line
 * for a file cut short). It must never read past the bytes it has, never trust a length or a
 * count before checking it against what is left of the file, and never leave a partly built
 * record behind. Symbolization (function, file, line) is symbolize.c's business, not this.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag.h"
#include "report.h"

/* What a record parser returns besides 0 (parsed) and -1 (error said): the file ended
 * before the record did, which is a report cut short, not a corrupt one. */
#define CUT 1

/* An id → index map, so that every reference is checked against the records already read
 * (which is also how "must precede" is enforced) in file order, at the record at fault.
 * Each entry keeps where its record starts, for the message about a duplicate. */
struct idmap {
    struct idmap_slot { uint64_t key; size_t off; uint32_t val; bool used; } *slots;
    size_t cap, n;              /* cap is 0 or a power of two; n <= cap / 2 */
};

/* All of one read's state. */
struct reader {
    const char *path;
    const unsigned char *data;
    size_t size;
    struct cmt_process *p;
    size_t cap_modules, cap_stacks, cap_scopes, cap_leaks, cap_badfrees, cap_samples;
    size_t cap_allocsites;
    struct idmap stacks, scopes;
    struct idmap allocsites;    /* scope << 32 | stack -> index in p->allocsites */
    bool have_process, have_totals, have_end;
};

/* The bytes of one record: [pos, rec_end) is what its length claims, of which
 * [pos, avail_end) is in the file. */
struct cursor {
    struct reader *r;
    const char *what;           /* the record type, for messages */
    size_t rec;                 /* where the record starts */
    size_t pos, rec_end, avail_end;
};

static const char *const record_names[] = {
    [CMT_REC_PROCESS] = "PROCESS", [CMT_REC_MODULE] = "MODULE", [CMT_REC_STACK] = "STACK",
    [CMT_REC_SCOPE] = "SCOPE",     [CMT_REC_LEAK] = "LEAK",     [CMT_REC_BADFREE] = "BADFREE",
    [CMT_REC_TOTALS] = "TOTALS",   [CMT_REC_END] = "END",
    [CMT_REC_TIMELINE] = "TIMELINE", [CMT_REC_ALLOCSITE] = "ALLOCSITE",
};

static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t le64(const unsigned char *b)
{
    return (uint64_t)le32(b) | (uint64_t)le32(b + 4) << 32;
}

static int bad(const struct reader *r, size_t off, const char *msg)
{
    return cmt_error("%s: offset %zu: %s", r->path, off, msg);
}

static int oom(const struct reader *r)
{
    return cmt_error("%s: out of memory while reading the report", r->path);
}

/* ---- id maps ------------------------------------------------------------------------- */

static size_t idmap_hash(uint64_t key, size_t cap)
{
    key ^= key >> 31;
    key *= UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(key >> 17) & (cap - 1);
}

static struct idmap_slot *idmap_find(const struct idmap *m, uint64_t key)
{
    if (m->cap == 0)
        return NULL;
    for (size_t i = idmap_hash(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (!m->slots[i].used)
            return NULL;
        if (m->slots[i].key == key)
            return &m->slots[i];
    }
}

/* Adds key → val for the record at off; the caller has checked that key is absent. False
 * when out of memory. */
static bool idmap_add(struct idmap *m, uint64_t key, uint32_t val, size_t off)
{
    if (m->n + 1 > m->cap / 2) {
        size_t ncap = m->cap ? m->cap * 2 : 64;
        struct idmap_slot *ns = calloc(ncap, sizeof *ns);
        if (!ns)
            return false;
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->slots[i].used)
                continue;
            size_t j = idmap_hash(m->slots[i].key, ncap);
            while (ns[j].used)
                j = (j + 1) & (ncap - 1);
            ns[j] = m->slots[i];
        }
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    size_t j = idmap_hash(key, m->cap);
    while (m->slots[j].used)
        j = (j + 1) & (m->cap - 1);
    m->slots[j] = (struct idmap_slot){ .key = key, .off = off, .val = val, .used = true };
    m->n++;
    return true;
}

/* Makes room for element n of arr, an array of *cap elements of elem bytes. Returns the
 * array, perhaps moved, or NULL when out of memory (arr is then still valid). */
static void *grow(void *arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *na = realloc(arr, ncap * elem);
    if (na)
        *cap = ncap;
    return na;
}

/* ---- reading fields ------------------------------------------------------------------ */

/* Checks that n more bytes of field belong to the record and are in the file. */
static int need(struct cursor *c, uint64_t n, const char *field)
{
    if (n > c->rec_end - c->pos)
        return cmt_error("%s: offset %zu: %s of the %s record at offset %zu runs past the "
                         "end of the record (%llu bytes needed, %zu left)",
                         c->r->path, c->pos, field, c->what, c->rec, (unsigned long long)n,
                         c->rec_end - c->pos);
    if (n > c->avail_end - c->pos)
        return CUT;
    return 0;
}

static int get_u8(struct cursor *c, uint8_t *v, const char *field)
{
    int rc = need(c, 1, field);
    if (rc)
        return rc;
    *v = c->r->data[c->pos++];
    return 0;
}

static int get_u32(struct cursor *c, uint32_t *v, const char *field)
{
    int rc = need(c, 4, field);
    if (rc)
        return rc;
    *v = le32(c->r->data + c->pos);
    c->pos += 4;
    return 0;
}

static int get_u64(struct cursor *c, uint64_t *v, const char *field)
{
    int rc = need(c, 8, field);
    if (rc)
        return rc;
    *v = le64(c->r->data + c->pos);
    c->pos += 8;
    return 0;
}

/* A str: u32 n, then n bytes, returned NUL-terminated in a fresh allocation of n + 1 bytes
 * (made only once the n bytes are known to be there). *len, when asked for, gets n. */
static int get_str(struct cursor *c, char **out, size_t *len, const char *field)
{
    uint32_t n;
    size_t at = c->pos;
    int rc = get_u32(c, &n, field);
    if (rc)
        return rc;
    if (n > c->rec_end - c->pos)
        return cmt_error("%s: offset %zu: %s of the %s record at offset %zu is %u bytes "
                         "long, longer than the %zu bytes left in its record",
                         c->r->path, at, field, c->what, c->rec, n, c->rec_end - c->pos);
    if (n > c->avail_end - c->pos)
        return CUT;
    char *s = malloc((size_t)n + 1);
    if (!s)
        return oom(c->r);
    memcpy(s, c->r->data + c->pos, n);
    s[n] = '\0';
    c->pos += n;
    *out = s;
    if (len)
        *len = n;
    return 0;
}

#define TRY(call)               \
    do {                        \
        int rc_ = (call);       \
        if (rc_) {              \
            ret = rc_;          \
            goto out;           \
        }                       \
    } while (0)

/* ---- records ------------------------------------------------------------------------- */

static int read_process(struct cursor *c)
{
    struct reader *r = c->r;
    struct cmt_process *p = r->p;
    char *exe = NULL, **argv = NULL;
    uint32_t pid, ppid, argc = 0, done = 0;
    uint64_t start, wrote;
    int ret = 0;

    if (r->have_process) {
        ret = bad(r, c->rec, "a second PROCESS record");
        goto out;
    }
    TRY(get_u32(c, &pid, "pid"));
    TRY(get_u32(c, &ppid, "ppid"));
    TRY(get_u64(c, &start, "start_unix_ns"));
    TRY(get_u64(c, &wrote, "write_unix_ns"));
    TRY(get_str(c, &exe, NULL, "exe"));
    size_t argc_at = c->pos;
    TRY(get_u32(c, &argc, "argc"));
    /* Each argument takes at least its 4-byte length: refuse a count the record cannot
     * hold before allocating for it. */
    if ((uint64_t)argc * 4 > c->rec_end - c->pos) {
        ret = cmt_error("%s: offset %zu: PROCESS record claims %u arguments, more than its "
                        "remaining %zu bytes can hold", r->path, argc_at, argc,
                        c->rec_end - c->pos);
        goto out;
    }
    TRY(need(c, (uint64_t)argc * 4, "argv"));
    argv = calloc((size_t)argc + 1, sizeof *argv);
    if (!argv) {
        ret = oom(r);
        goto out;
    }
    for (; done < argc; done++)
        TRY(get_str(c, &argv[done], NULL, "argv"));

    free(p->exe);
    free(p->argv);
    p->pid = pid;
    p->ppid = ppid;
    p->start_unix_ns = start;
    p->write_unix_ns = wrote;
    p->exe = exe;
    p->argc = argc;
    p->argv = argv;
    r->have_process = true;
    return 0;
out:
    free(exe);
    for (uint32_t i = 0; argv && i < done; i++)
        free(argv[i]);
    free(argv);
    return ret;
}

static int read_module(struct cursor *c)
{
    struct reader *r = c->r;
    struct cmt_process *p = r->p;
    struct cmt_module m = { 0 };
    char *build_id = NULL;
    int ret = 0;

    TRY(get_u64(c, &m.start, "start"));
    TRY(get_u64(c, &m.end, "end"));
    TRY(get_u64(c, &m.file_offset, "file_offset"));
    if (m.start >= m.end) {
        ret = cmt_error("%s: offset %zu: MODULE record has an empty range [0x%llx, 0x%llx)",
                        r->path, c->rec + 8, (unsigned long long)m.start,
                        (unsigned long long)m.end);
        goto out;
    }
    TRY(get_str(c, &m.path, NULL, "path"));
    TRY(get_str(c, &build_id, &m.build_id_len, "build_id"));
    struct cmt_module *mods = grow(p->modules, p->nmodules, &r->cap_modules, sizeof m);
    if (!mods) {
        ret = oom(r);
        goto out;
    }
    p->modules = mods;
    if (m.build_id_len == 0) {
        free(build_id);
        build_id = NULL;
    }
    m.build_id = (unsigned char *)build_id;
    p->modules[p->nmodules++] = m;
    return 0;
out:
    free(m.path);
    free(build_id);
    return ret;
}

static int read_stack(struct cursor *c)
{
    struct reader *r = c->r;
    struct cmt_process *p = r->p;
    struct cmt_frame *frames = NULL;
    uint32_t id, depth;
    int ret = 0;

    TRY(get_u32(c, &id, "id"));
    if (id == 0) {
        ret = bad(r, c->rec + 8, "STACK record has id 0, which means \"no stack\"");
        goto out;
    }
    struct idmap_slot *dup = idmap_find(&r->stacks, id);
    if (dup) {
        ret = cmt_error("%s: offset %zu: duplicate STACK id %u (first at offset %zu)",
                        r->path, c->rec + 8, id, dup->off);
        goto out;
    }
    TRY(get_u32(c, &depth, "depth"));
    if (depth > CMT_REPORT_MAX_DEPTH) {
        ret = cmt_error("%s: offset %zu: STACK %u has depth %u, over the limit of %u",
                        r->path, c->rec + 12, id, depth, CMT_REPORT_MAX_DEPTH);
        goto out;
    }
    TRY(need(c, (uint64_t)depth * 8, "pc"));
    if (depth) {
        frames = calloc(depth, sizeof *frames);
        if (!frames) {
            ret = oom(r);
            goto out;
        }
    }
    for (uint32_t i = 0; i < depth; i++)
        TRY(get_u64(c, &frames[i].pc, "pc"));
    struct cmt_stack *stacks = grow(p->stacks, p->nstacks, &r->cap_stacks, sizeof *stacks);
    if (stacks)
        p->stacks = stacks;
    if (!stacks || !idmap_add(&r->stacks, id, (uint32_t)p->nstacks, c->rec)) {
        ret = oom(r);
        goto out;
    }
    p->stacks[p->nstacks++] = (struct cmt_stack){ .id = id, .depth = depth, .frames = frames };
    return 0;
out:
    free(frames);
    return ret;
}

static int read_scope(struct cursor *c)
{
    struct reader *r = c->r;
    struct cmt_process *p = r->p;
    struct cmt_scope s = { 0 };
    uint8_t kind;
    int ret = 0;

    TRY(get_u32(c, &s.id, "id"));
    struct idmap_slot *dup = idmap_find(&r->scopes, s.id);
    if (dup) {
        ret = cmt_error("%s: offset %zu: duplicate SCOPE id %u (first at offset %zu)",
                        r->path, c->rec + 8, s.id, dup->off);
        goto out;
    }
    TRY(get_u8(c, &kind, "kind"));
    if (kind > CMT_REPORT_KIND_SIGNAL) {
        ret = cmt_error("%s: offset %zu: SCOPE %u has unknown kind %u", r->path, c->rec + 12,
                        s.id, kind);
        goto out;
    }
    s.kind = kind;
    TRY(get_str(c, &s.name, NULL, "name"));
    uint64_t *fields[] = { &s.instances, &s.allocations, &s.bytes_allocated, &s.frees,
                           &s.bytes_freed, &s.outlived_at_close, &s.bulk_freed_blocks,
                           &s.bulk_freed_bytes, &s.peak_live_bytes };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        TRY(get_u64(c, fields[i], "counters"));
    struct cmt_scope *scopes = grow(p->scopes, p->nscopes, &r->cap_scopes, sizeof s);
    if (scopes)
        p->scopes = scopes;
    if (!scopes || !idmap_add(&r->scopes, s.id, (uint32_t)p->nscopes, c->rec)) {
        ret = oom(r);
        goto out;
    }
    p->scopes[p->nscopes++] = s;
    return 0;
out:
    free(s.name);
    return ret;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

/* A stack id in a LEAK or BADFREE must be 0 or name a STACK read before. */
static int check_stack_ref(struct cursor *c, uint32_t stack, size_t at)
{
    if (stack == 0 || idmap_find(&c->r->stacks, stack))
        return 0;
    return cmt_error("%s: offset %zu: %s record refers to unknown stack %u", c->r->path, at,
                     c->what, stack);
}

static int read_leak(struct cursor *c)
{
    struct reader *r = c->r;
    struct cmt_process *p = r->p;
    struct cmt_leak l = { 0 };
    struct idmap_slot *scope;
    int ret;

    if ((ret = get_u32(c, &l.scope, "scope")))
        return ret;
    if (!(scope = idmap_find(&r->scopes, l.scope)))
        return cmt_error("%s: offset %zu: LEAK record refers to unknown scope %u", r->path,
                         c->rec + 8, l.scope);
    if ((ret = get_u32(c, &l.stack, "stack")) ||
        (ret = check_stack_ref(c, l.stack, c->rec + 12)))
        return ret;
    /* Two LEAK records for one (scope, stack) are accepted and both kept: a writer short of
     * memory for its stack marks folds several stacks into 0, and the counts stay true. */
    if ((ret = get_u64(c, &l.blocks, "blocks")) || (ret = get_u64(c, &l.bytes, "bytes")) ||
        (ret = get_u64(c, &l.blocks_in_closed, "blocks_in_closed")) ||
        (ret = get_u64(c, &l.bytes_in_closed, "bytes_in_closed")))
        return ret;
    if (l.blocks_in_closed > l.blocks || l.bytes_in_closed > l.bytes)
        return cmt_error("%s: offset %zu: LEAK record counts more in closed instances "
                         "(%llu blocks, %llu bytes) than in all (%llu blocks, %llu bytes)",
                         r->path, c->rec + 32, (unsigned long long)l.blocks_in_closed,
                         (unsigned long long)l.bytes_in_closed, (unsigned long long)l.blocks,
                         (unsigned long long)l.bytes);
    if ((ret = get_u32(c, &l.nsamples, "nsamples")))
        return ret;
    if (l.nsamples > CMT_LEAK_SAMPLES || l.nsamples > l.blocks)
        return cmt_error("%s: offset %zu: LEAK record has %u samples, more than %s (%llu)",
                         r->path, c->rec + 48, l.nsamples,
                         l.nsamples > CMT_LEAK_SAMPLES ? "the format allows" : "its blocks",
                         l.nsamples > CMT_LEAK_SAMPLES ? (unsigned long long)CMT_LEAK_SAMPLES
                                                       : (unsigned long long)l.blocks);
    for (uint32_t i = 0; i < l.nsamples; i++)
        if ((ret = get_u64(c, &l.samples[i], "sample_addr")))
            return ret;
    struct cmt_leak *leaks = grow(p->leaks, p->nleaks, &r->cap_leaks, sizeof l);
    if (!leaks)
        return oom(r);
    p->leaks = leaks;
    p->leaks[p->nleaks++] = l;
    struct cmt_scope *s = &p->scopes[scope->val];
    s->leaked_blocks = sat_add(s->leaked_blocks, l.blocks);
    s->leaked_bytes = sat_add(s->leaked_bytes, l.bytes);
    /* Until finish() derives it, outlived_blocks sums the blocks leaked from closed
     * instances. */
    s->outlived_blocks = sat_add(s->outlived_blocks, l.blocks_in_closed);
    return 0;
}

static int read_badfree(struct cursor *c)
{
    struct reader *r = c->r;
    struct cmt_process *p = r->p;
    struct cmt_badfree b = { 0 };
    uint8_t kind;
    int ret;

    if ((ret = get_u8(c, &kind, "kind")))
        return ret;
    if (kind > CMT_REPORT_BADFREE_STALE)
        return cmt_error("%s: offset %zu: BADFREE record has unknown kind %u", r->path,
                         c->rec + 8, kind);
    b.kind = kind;
    if ((ret = get_u32(c, &b.stack, "stack")) || (ret = check_stack_ref(c, b.stack, c->rec + 9)))
        return ret;
    if ((ret = get_u32(c, &b.scope, "scope")))
        return ret;
    if (b.scope != UINT32_MAX && !idmap_find(&r->scopes, b.scope))
        return cmt_error("%s: offset %zu: BADFREE record refers to unknown scope %u",
                         r->path, c->rec + 13, b.scope);
    if ((ret = get_u64(c, &b.count, "count")) || (ret = get_u64(c, &b.sample_addr, "sample_addr")))
        return ret;
    struct cmt_badfree *bads = grow(p->badfrees, p->nbadfrees, &r->cap_badfrees, sizeof b);
    if (!bads)
        return oom(r);
    p->badfrees = bads;
    p->badfrees[p->nbadfrees++] = b;
    return 0;
}

/* Records of one (scope, stack) add up: a writer lists the counts of each thread's cache
 * apart from the shared table's. */
static int read_allocsite(struct cursor *c)
{
    struct reader *r = c->r;
    struct cmt_process *p = r->p;
    struct cmt_allocsite a = { 0 };
    int ret;

    if ((ret = get_u32(c, &a.scope, "scope")))
        return ret;
    if (!idmap_find(&r->scopes, a.scope))
        return cmt_error("%s: offset %zu: ALLOCSITE record refers to unknown scope %u",
                         r->path, c->rec + 8, a.scope);
    if ((ret = get_u32(c, &a.stack, "stack")) ||
        (ret = check_stack_ref(c, a.stack, c->rec + 12)))
        return ret;
    if ((ret = get_u64(c, &a.allocations, "allocations")) ||
        (ret = get_u64(c, &a.bytes, "bytes_allocated")))
        return ret;
    if (a.allocations == 0 && a.bytes != 0)
        return cmt_error("%s: offset %zu: ALLOCSITE record counts %llu bytes in no allocation",
                         r->path, c->rec + 24, (unsigned long long)a.bytes);
    p->has_allocsites = true;
    uint64_t key = (uint64_t)a.scope << 32 | a.stack;
    struct idmap_slot *seen = idmap_find(&r->allocsites, key);
    if (seen) {
        struct cmt_allocsite *s = &p->allocsites[seen->val];
        s->allocations = sat_add(s->allocations, a.allocations);
        s->bytes = sat_add(s->bytes, a.bytes);
        return 0;
    }
    struct cmt_allocsite *sites = grow(p->allocsites, p->nallocsites, &r->cap_allocsites,
                                       sizeof a);
    if (sites)
        p->allocsites = sites;
    if (!sites || !idmap_add(&r->allocsites, key, (uint32_t)p->nallocsites, c->rec))
        return oom(r);
    p->allocsites[p->nallocsites++] = a;
    return 0;
}

static int read_timeline(struct cursor *c)
{
    struct reader *r = c->r;
    struct cmt_process *p = r->p;
    struct cmt_sample smp = { 0 };
    int ret;

    if ((ret = get_u64(c, &smp.unix_ns, "time_unix_ns")) || (ret = get_u32(c, &smp.n, "n")))
        return ret;
    if (smp.n > CMT_TIMELINE_MAX_SCOPES)
        return cmt_error("%s: offset %zu: TIMELINE record names %u scopes, more than the %u "
                         "the format allows", r->path, c->rec + 16, smp.n,
                         CMT_TIMELINE_MAX_SCOPES);
    for (uint32_t i = 0; i < smp.n; i++) {
        size_t at = c->pos;
        struct cmt_sample_value *v = &smp.v[i];
        if ((ret = get_u32(c, &v->scope, "scope")) || (ret = get_u64(c, &v->bytes, "bytes")))
            return ret;
        if (v->scope != CMT_TIMELINE_OTHERS && !idmap_find(&r->scopes, v->scope))
            return cmt_error("%s: offset %zu: TIMELINE record refers to unknown scope %u",
                             r->path, at, v->scope);
        for (uint32_t j = 0; j < i; j++)
            if (smp.v[j].scope == v->scope)
                return cmt_error("%s: offset %zu: TIMELINE record names scope %u twice",
                                 r->path, at, v->scope);
    }
    struct cmt_sample *samples = grow(p->samples, p->nsamples, &r->cap_samples, sizeof smp);
    if (!samples)
        return oom(r);
    p->samples = samples;
    p->samples[p->nsamples++] = smp;
    return 0;
}

static int read_totals(struct cursor *c)
{
    struct reader *r = c->r;
    struct cmt_totals t = { 0 };
    uint64_t *fields[] = { &t.allocations, &t.bytes_allocated, &t.frees, &t.live_blocks,
                           &t.live_bytes, &t.peak_live_bytes, &t.invalid_frees,
                           &t.double_frees, &t.stale_frees };
    int ret;

    if (r->have_totals)
        return bad(r, c->rec, "a second TOTALS record");
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        if ((ret = get_u64(c, fields[i], "counters")))
            return ret;
    r->p->totals = t;
    r->have_totals = true;
    return 0;
}

static int read_end(struct cursor *c)
{
    struct reader *r = c->r;
    struct cmt_process *p = r->p;
    uint8_t how;
    uint32_t code;
    char *label = NULL;
    int ret;

    if ((ret = get_u8(c, &how, "how")))
        return ret;
    if (how > CMT_END_SNAPSHOT)
        return cmt_error("%s: offset %zu: END record has unknown way of ending %u", r->path,
                         c->rec + 8, how);
    if ((ret = get_u32(c, &code, "code")) || (ret = get_str(c, &label, NULL, "label")))
        return ret;
    free(p->label);
    p->label = label;
    p->how = how;
    p->code = (int32_t)code;
    p->complete = how != CMT_END_RUNNING;
    r->have_end = true;
    return 0;
}

/* ---- the file ------------------------------------------------------------------------ */

/* The whole file, with read(2): a report another process rewrites while we read cannot
 * fault us as a shrinking mmap would (SIGBUS). Pipes and /dev/stdin work too. */
static int slurp(const char *path, unsigned char **data, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cmt_error_errno("%s: cannot open", path);
    struct stat st;
    size_t cap = 1 << 16, len = 0;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
        cap = (size_t)st.st_size + 1;   /* + 1: EOF is seen without growing */
    unsigned char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return cmt_error("%s: out of memory for a file of %zu bytes", path, cap - 1);
    }
    for (;;) {
        if (len == cap) {
            unsigned char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                close(fd);
                return cmt_error("%s: out of memory after %zu bytes", path, len);
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            free(buf);
            close(fd);
            errno = e;
            return cmt_error_errno("%s: cannot read", path);
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    *data = buf;
    *size = len;
    return 0;
}

static int read_header(struct reader *r, size_t *first)
{
    static const char need_more[] = "the file ends inside the header";
    size_t size = r->size;

    if (size == 0)
        return bad(r, 0, "empty file");
    if (memcmp(r->data, CMT_REPORT_MAGIC,
               size < CMT_REPORT_MAGIC_LEN ? size : CMT_REPORT_MAGIC_LEN) != 0)
        return bad(r, 0, "not a cymemtrack report (bad magic)");
    if (size < CMT_REPORT_MAGIC_LEN + 4)
        return bad(r, size, need_more);
    uint32_t version = le32(r->data + 8);
    if (version > CMT_REPORT_VERSION)
        return cmt_error("%s: offset 8: report format version %u is newer than this "
                         "cymem-report reads (version %u); use a newer cymem-report", r->path,
                         version, CMT_REPORT_VERSION);
    if (version == 0)
        return bad(r, 8, "report format version 0 does not exist");
    r->p->version = version;
    if (size < CMT_REPORT_HEADER_SIZE)
        return bad(r, size, need_more);
    uint32_t header_size = le32(r->data + 12);
    if (header_size < CMT_REPORT_HEADER_SIZE)
        return cmt_error("%s: offset 12: header size %u is smaller than the %u bytes every "
                         "header has", r->path, header_size, CMT_REPORT_HEADER_SIZE);
    if (header_size > size)
        return cmt_error("%s: offset 12: header size %u runs past the end of the file "
                         "(%zu bytes)", r->path, header_size, size);
    *first = header_size;
    return 0;
}

static int cmp_stack(const void *a, const void *b)
{
    uint32_t x = ((const struct cmt_stack *)a)->id, y = ((const struct cmt_stack *)b)->id;
    return (x > y) - (x < y);
}

static int cmp_sample(const void *a, const void *b)
{
    uint64_t x = ((const struct cmt_sample *)a)->unix_ns;
    uint64_t y = ((const struct cmt_sample *)b)->unix_ns;
    return (x > y) - (x < y);
}

static int cmp_module(const void *a, const void *b)
{
    const struct cmt_module *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Sorts the modules by start and points every frame at the module holding its pc. Modules
 * may overlap (a library unloaded and another loaded in its place): a pc then goes to the
 * one starting closest below it if that one holds it, else to one that does. */
static int map_frames(struct reader *r)
{
    struct cmt_process *p = r->p;
    size_t n = p->nmodules;
    if (n == 0)
        return 0;
    qsort(p->modules, n, sizeof *p->modules, cmp_module);
    /* widest[i]: among modules 0..i, the one reaching furthest; it holds any pc that some
     * module in 0..i holds, since all of those start at or below the pc. */
    size_t *widest = malloc(n * sizeof *widest);
    if (!widest)
        return oom(r);
    for (size_t i = 0; i < n; i++)
        widest[i] = i && p->modules[widest[i - 1]].end > p->modules[i].end ? widest[i - 1] : i;
    for (size_t s = 0; s < p->nstacks; s++) {
        for (uint32_t f = 0; f < p->stacks[s].depth; f++) {
            struct cmt_frame *fr = &p->stacks[s].frames[f];
            size_t lo = 0, hi = n;          /* first module starting above pc */
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (p->modules[mid].start <= fr->pc)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            if (lo == 0)
                continue;
            const struct cmt_module *m = &p->modules[lo - 1];
            if (fr->pc >= m->end)
                m = &p->modules[widest[lo - 1]];
            if (fr->pc >= m->end)
                continue;
            fr->module = m;
            fr->offset = fr->pc - m->start + m->file_offset;
        }
    }
    free(widest);
    return 0;
}

static int finish(struct reader *r)
{
    struct cmt_process *p = r->p;
    if (p->nstacks)     /* qsort's base must not be NULL, even for no elements */
        qsort(p->stacks, p->nstacks, sizeof *p->stacks, cmp_stack);
    if (p->nsamples)
        qsort(p->samples, p->nsamples, sizeof *p->samples, cmp_sample);
    if (map_frames(r))
        return -1;
    for (size_t i = 0; i < p->nscopes; i++) {
        struct cmt_scope *s = &p->scopes[i];
        uint64_t gone = sat_add(s->bulk_freed_blocks, s->outlived_blocks);
        s->outlived_blocks = s->outlived_at_close > gone ? s->outlived_at_close - gone : 0;
    }
    /* Every string a renderer prints exists, even when its record was missing. */
    if (!p->exe && !(p->exe = strdup("")))
        return oom(r);
    if (!p->argv && !(p->argv = calloc(1, sizeof *p->argv)))
        return oom(r);
    if (!p->label && !(p->label = strdup("")))
        return oom(r);
    return 0;
}

static int parse(struct reader *r)
{
    size_t off = 0;
    if (read_header(r, &off))
        return -1;

    bool cut = false;           /* the file is incomplete */
    const char *cut_in = NULL;  /* the type of the record it ends in */
    while (!r->have_end) {
        if (r->size - off < 8) {     /* no room for another record's header */
            cut = true;
            break;
        }
        uint32_t type = le32(r->data + off), len = le32(r->data + off + 4);
        if (len > CMT_REPORT_MAX_RECORD)
            return cmt_error("%s: offset %zu: record length %u is over the limit of %u bytes",
                             r->path, off + 4, len, CMT_REPORT_MAX_RECORD);
        const char *name = type < sizeof record_names / sizeof record_names[0]
                               ? record_names[type] : NULL;
        struct cursor c = { .r = r, .what = name, .rec = off, .pos = off + 8,
                            .rec_end = off + 8 + (size_t)len };
        c.avail_end = c.rec_end < r->size ? c.rec_end : r->size;
        int rc = 0;
        switch (type) {
        case CMT_REC_PROCESS: rc = read_process(&c); break;
        case CMT_REC_MODULE:  rc = read_module(&c);  break;
        case CMT_REC_STACK:   rc = read_stack(&c);   break;
        case CMT_REC_SCOPE:   rc = read_scope(&c);   break;
        case CMT_REC_LEAK:    rc = read_leak(&c);    break;
        case CMT_REC_BADFREE: rc = read_badfree(&c); break;
        case CMT_REC_TOTALS:  rc = read_totals(&c);  break;
        case CMT_REC_END:     rc = read_end(&c);     break;
        case CMT_REC_TIMELINE: rc = read_timeline(&c); break;
        case CMT_REC_ALLOCSITE: rc = read_allocsite(&c); break;
        default:
            /* A record type from a later writer: skipped, which is why records carry
             * their length. */
            if (c.rec_end > r->size)
                rc = CUT;
            break;
        }
        if (rc < 0)
            return -1;
        if (rc == CUT) {
            cut = true;
            cut_in = name ? name : "unknown-type";
            break;
        }
        if (name && c.pos != c.rec_end) {
            /* Either the length is wrong or the fields are: both mean corruption (a file
             * cut short runs out of bytes inside a field instead). */
            if (c.rec_end > r->size)
                return cmt_error("%s: offset %zu: %s record length %u runs past the end of "
                                 "the file (%zu bytes); its fields end at offset %zu",
                                 r->path, off + 4, name, len, r->size, c.pos);
            return cmt_error("%s: offset %zu: %s record length %u does not match its "
                             "fields (%zu bytes)", r->path, off + 4, name, len,
                             c.pos - off - 8);
        }
        off = c.rec_end;
    }
    if (r->have_end && off != r->size)
        return cmt_error("%s: offset %zu: %zu bytes after the END record", r->path, off,
                         r->size - off);
    if (finish(r))
        return -1;
    if (cut) {
        struct cmt_process *p = r->p;
        p->truncated = true;
        p->complete = false;
        p->how = CMT_END_RUNNING;
        p->code = 0;
        char where[96];
        if (off == r->size)
            snprintf(where, sizeof where, "the report has no END record");
        else if (!cut_in)
            snprintf(where, sizeof where, "the file ends inside the header of the record at "
                     "offset %zu", off);
        else
            snprintf(where, sizeof where, "the file ends inside the %s record at offset %zu",
                     cut_in, off);
        cmt_warning("%s: offset %zu: %s; it was cut short (the process was killed, or the "
                    "disk filled): showing what could be read", r->path, r->size, where);
    }
    return 0;
}

int cmt_report_read(const char *path, struct cmt_process *p)
{
    struct reader r = { .path = path, .p = p };
    unsigned char *data = NULL;
    memset(p, 0, sizeof *p);
    if (slurp(path, &data, &r.size))
        return -1;
    r.data = data;
    int ret = -1;
    if (!(p->file = strdup(path)))
        oom(&r);
    else
        ret = parse(&r);
    free(data);
    free(r.stacks.slots);
    free(r.scopes.slots);
    free(r.allocsites.slots);
    if (ret)
        cmt_process_free(p);    /* nothing half-read escapes; p is left empty */
    return ret;
}

void cmt_process_free(struct cmt_process *p)
{
    free(p->file);
    free(p->exe);
    for (uint32_t i = 0; p->argv && i < p->argc; i++)
        free(p->argv[i]);
    free(p->argv);
    free(p->label);
    for (size_t i = 0; i < p->nmodules; i++) {
        free(p->modules[i].path);
        free(p->modules[i].build_id);
    }
    free(p->modules);
    for (size_t i = 0; i < p->nstacks; i++) {
        for (uint32_t f = 0; f < p->stacks[i].depth; f++) {
            free(p->stacks[i].frames[f].function);
            free(p->stacks[i].frames[f].file);
        }
        free(p->stacks[i].frames);
    }
    free(p->stacks);
    for (size_t i = 0; i < p->nscopes; i++)
        free(p->scopes[i].name);
    free(p->scopes);
    free(p->leaks);
    free(p->badfrees);
    free(p->samples);
    free(p->allocsites);
    memset(p, 0, sizeof *p);
}

const struct cmt_stack *cmt_process_stack(const struct cmt_process *p, uint32_t id)
{
    size_t lo = 0, hi = p->nstacks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->stacks[mid].id == id)
            return &p->stacks[mid];
        if (p->stacks[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Scopes stay in file order, which writers make ascending by id: a binary search finds the
 * scope then, and a linear scan stands behind it for files in any other order. */
const struct cmt_scope *cmt_process_scope(const struct cmt_process *p, uint32_t id)
{
    size_t lo = 0, hi = p->nscopes;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->scopes[mid].id == id)
            return &p->scopes[mid];
        if (p->scopes[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < p->nscopes; i++)
        if (p->scopes[i].id == id)
            return &p->scopes[i];
    return NULL;
}
