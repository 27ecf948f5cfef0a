/*
 * merge.c — puts the processes of several report files in order (a process, then the
 * children it forked and the image its exec started, depth first) and sums them into a
 * total: scopes by name and kind, stacks, leak sites and allocation sites by module and file
 * offset (leaks of the processes that exited only). It owns the total's memory, laid out like a reader's
 * process so that cmt_process_free releases it; it never changes the processes it was given.
 */
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "render.h"

static int oom(void)
{
    return cmt_error("out of memory while merging the reports");
}

/* ---- the tree ----------------------------------------------------------------------- */

/* Earlier start first; pid and file order break ties so that the order never depends on
 * the order of the command line's files beyond that. */
static int cmp_entry(const void *a, const void *b)
{
    const struct cmt_view_entry *x = a, *y = b;
    if (x->p->start_unix_ns != y->p->start_unix_ns)
        return x->p->start_unix_ns < y->p->start_unix_ns ? -1 : 1;
    if (x->p->pid != y->p->pid)
        return x->p->pid < y->p->pid ? -1 : 1;
    if (x->p->write_unix_ns != y->p->write_unix_ns)
        return x->p->write_unix_ns < y->p->write_unix_ns ? -1 : 1;
    return (x->p > y->p) - (x->p < y->p);
}

/* The report that started p: the image of the same pid that called exec before p started,
 * else the latest image of p's parent pid started before p. Superseded reports are never
 * parents: the report that supersedes one stands for its image. */
static size_t find_parent(const struct cmt_view_entry *e, size_t n, size_t i,
                          enum cmt_relation *rel)
{
    const struct cmt_process *p = e[i].p;
    size_t best = SIZE_MAX;
    for (size_t j = 0; j < n; j++) {
        const struct cmt_process *q = e[j].p;
        if (j == i || e[j].superseded || q->pid != p->pid || q->how != CMT_END_EXEC ||
            q->start_unix_ns >= p->start_unix_ns)
            continue;
        if (best == SIZE_MAX || q->start_unix_ns > e[best].p->start_unix_ns)
            best = j;
    }
    if (best != SIZE_MAX) {
        *rel = CMT_REL_EXEC;
        return best;
    }
    for (size_t j = 0; j < n; j++) {
        const struct cmt_process *q = e[j].p;
        if (j == i || e[j].superseded || q->pid != p->ppid || q->pid == p->pid ||
            q->start_unix_ns > p->start_unix_ns)
            continue;
        if (best == SIZE_MAX || q->start_unix_ns > e[best].p->start_unix_ns)
            best = j;
    }
    *rel = best == SIZE_MAX ? CMT_REL_ROOT : CMT_REL_FORK;
    return best;
}

/* Appends entry i and, depth first, its children (in start order) to out. Entries already
 * placed are skipped, which also ends any cycle a forged set of files could make. */
static void place(const struct cmt_view_entry *e, const size_t *parent, size_t n, size_t i,
                  unsigned depth, bool *placed, struct cmt_view_entry *out, size_t *nout)
{
    if (placed[i])
        return;
    placed[i] = true;
    out[*nout] = e[i];
    out[*nout].depth = depth;
    ++*nout;
    for (size_t j = 0; j < n; j++)
        if (parent[j] == i)
            place(e, parent, n, j, depth + 1, placed, out, nout);
}

/* ---- the total ---------------------------------------------------------------------- */

/* Open addressing over 64-bit hashes; values are indexes into the total's arrays. */
struct hmap {
    struct { uint64_t hash; size_t val; } *slot;
    size_t cap, n;
};

static bool hmap_grow(struct hmap *m)
{
    if (2 * (m->n + 1) <= m->cap)
        return true;
    size_t cap = m->cap ? 2 * m->cap : 64;
    void *slot = calloc(cap, sizeof *m->slot);
    if (!slot)
        return false;
    struct hmap old = *m;
    m->slot = slot;
    m->cap = cap;
    for (size_t i = 0; i < old.cap; i++) {
        if (!old.slot[i].val)
            continue;
        size_t k = old.slot[i].hash & (cap - 1);
        while (m->slot[k].val)
            k = (k + 1) & (cap - 1);
        m->slot[k] = old.slot[i];
    }
    free(old.slot);
    return true;
}

/* Values are stored plus one, so that 0 marks an empty slot. eq(arg, val) compares the key
 * with the entry at val. Returns the value, or SIZE_MAX when absent. */
static size_t hmap_find(const struct hmap *m, uint64_t hash, bool (*eq)(void *, size_t),
                        void *arg)
{
    if (!m->cap)
        return SIZE_MAX;
    for (size_t k = hash & (m->cap - 1); m->slot[k].val; k = (k + 1) & (m->cap - 1))
        if (m->slot[k].hash == hash && eq(arg, m->slot[k].val - 1))
            return m->slot[k].val - 1;
    return SIZE_MAX;
}

static bool hmap_add(struct hmap *m, uint64_t hash, size_t val)
{
    if (!hmap_grow(m))
        return false;
    size_t k = hash & (m->cap - 1);
    while (m->slot[k].val)
        k = (k + 1) & (m->cap - 1);
    m->slot[k].hash = hash;
    m->slot[k].val = val + 1;
    m->n++;
    return true;
}

static uint64_t mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

static uint64_t hash_bytes(uint64_t h, const void *data, size_t len)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < len; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return mix(h, len);
}

static bool grow_array(void **arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap)
        return true;
    size_t c = *cap ? 2 * *cap : 16;
    void *a = realloc(*arr, c * elem);
    if (!a)
        return false;
    *arr = a;
    *cap = c;
    return true;
}

struct merger {
    struct cmt_process *t;
    size_t cap_modules, cap_stacks, cap_scopes, cap_leaks, cap_badfrees, cap_allocsites;
    struct hmap modules, stacks, scopes, leaks, badfrees, allocsites;
    /* Per process being merged: its module, stack and scope index -> the total's. */
    size_t *module_map, *stack_map, *scope_map;
};

struct module_key { struct merger *mg; const struct cmt_module *m; };

static bool module_eq(void *arg, size_t i)
{
    const struct module_key *k = arg;
    const struct cmt_module *a = &k->mg->t->modules[i], *b = k->m;
    return strcmp(a->path, b->path) == 0 && a->build_id_len == b->build_id_len &&
           (!a->build_id_len || memcmp(a->build_id, b->build_id, a->build_id_len) == 0);
}

static uint64_t module_hash(const struct cmt_module *m)
{
    uint64_t h = hash_bytes(1469598103934665603ull, m->path, strlen(m->path));
    return hash_bytes(h, m->build_id, m->build_id_len);
}

static size_t merge_module(struct merger *mg, const struct cmt_module *m)
{
    struct module_key k = { mg, m };
    uint64_t h = module_hash(m);
    size_t i = hmap_find(&mg->modules, h, module_eq, &k);
    if (i != SIZE_MAX)
        return i;
    struct cmt_process *t = mg->t;
    if (!grow_array((void **)&t->modules, &mg->cap_modules, t->nmodules, sizeof *t->modules))
        return SIZE_MAX;
    struct cmt_module *n = &t->modules[t->nmodules];
    memset(n, 0, sizeof *n);
    n->start = m->start;
    n->end = m->end;
    n->file_offset = m->file_offset;
    n->path = strdup(m->path);
    n->build_id = m->build_id_len ? malloc(m->build_id_len) : NULL;
    if (!n->path || (m->build_id_len && !n->build_id)) {
        free(n->path);
        free(n->build_id);
        return SIZE_MAX;
    }
    if (m->build_id_len)
        memcpy(n->build_id, m->build_id, m->build_id_len);
    n->build_id_len = m->build_id_len;
    if (!hmap_add(&mg->modules, h, t->nmodules)) {
        free(n->path);
        free(n->build_id);
        return SIZE_MAX;
    }
    return t->nmodules++;
}

/* A frame's identity across processes: its module (as merged) and file offset, or its pc
 * when it lies in no known module. */
static uint64_t frame_key(const struct merger *mg, const struct cmt_process *p,
                          const struct cmt_frame *f, uint64_t *where)
{
    if (!f->module) {
        *where = f->pc;
        return 0;
    }
    *where = f->offset;
    return mg->module_map[f->module - p->modules] + 1;
}

struct stack_key { struct merger *mg; const struct cmt_process *p; const struct cmt_stack *s; };

static bool stack_eq(void *arg, size_t i)
{
    const struct stack_key *k = arg;
    const struct cmt_stack *a = &k->mg->t->stacks[i];
    if (a->depth != k->s->depth)
        return false;
    for (uint32_t f = 0; f < a->depth; f++) {
        uint64_t where;
        uint64_t mod = frame_key(k->mg, k->p, &k->s->frames[f], &where);
        const struct cmt_frame *af = &a->frames[f];
        uint64_t amod = af->module ? (uint64_t)(af->module - k->mg->t->modules) + 1 : 0;
        uint64_t awhere = af->module ? af->offset : af->pc;
        if (mod != amod || where != awhere)
            return false;
    }
    return true;
}

static char *dup_or_null(const char *s, bool *failed)
{
    if (!s)
        return NULL;
    char *d = strdup(s);
    if (!d)
        *failed = true;
    return d;
}

static size_t merge_stack(struct merger *mg, const struct cmt_process *p,
                          const struct cmt_stack *s)
{
    uint64_t h = 7;
    for (uint32_t f = 0; f < s->depth; f++) {
        uint64_t where;
        uint64_t mod = frame_key(mg, p, &s->frames[f], &where);
        h = mix(mix(h, mod), where);
    }
    struct stack_key k = { mg, p, s };
    size_t i = hmap_find(&mg->stacks, h, stack_eq, &k);
    if (i != SIZE_MAX)
        return i;
    struct cmt_process *t = mg->t;
    if (!grow_array((void **)&t->stacks, &mg->cap_stacks, t->nstacks, sizeof *t->stacks))
        return SIZE_MAX;
    struct cmt_stack *n = &t->stacks[t->nstacks];
    n->id = (uint32_t)t->nstacks + 1;
    n->depth = s->depth;
    n->frames = s->depth ? calloc(s->depth, sizeof *n->frames) : NULL;
    if (s->depth && !n->frames)
        return SIZE_MAX;
    bool failed = false;
    for (uint32_t f = 0; f < s->depth; f++) {
        const struct cmt_frame *src = &s->frames[f];
        struct cmt_frame *dst = &n->frames[f];
        dst->pc = src->pc;
        dst->module = src->module ? &t->modules[mg->module_map[src->module - p->modules]] : NULL;
        dst->offset = src->offset;
        dst->function = dup_or_null(src->function, &failed);
        dst->file = dup_or_null(src->file, &failed);
        dst->line = src->line;
    }
    /* Counted now, so that cmt_process_free releases whatever was copied. */
    t->nstacks++;
    if (failed || !hmap_add(&mg->stacks, h, t->nstacks - 1))
        return SIZE_MAX;
    return t->nstacks - 1;
}

struct scope_key { struct merger *mg; const struct cmt_scope *s; };

static bool scope_eq(void *arg, size_t i)
{
    const struct scope_key *k = arg;
    const struct cmt_scope *a = &k->mg->t->scopes[i];
    return a->kind == k->s->kind && strcmp(a->name, k->s->name) == 0;
}

static uint64_t sat(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

static size_t merge_scope(struct merger *mg, const struct cmt_scope *s, bool final)
{
    struct scope_key k = { mg, s };
    uint64_t h = mix(hash_bytes(3, s->name, strlen(s->name)), (uint64_t)s->kind);
    size_t i = hmap_find(&mg->scopes, h, scope_eq, &k);
    struct cmt_process *t = mg->t;
    if (i == SIZE_MAX) {
        if (!grow_array((void **)&t->scopes, &mg->cap_scopes, t->nscopes, sizeof *t->scopes))
            return SIZE_MAX;
        struct cmt_scope *n = &t->scopes[t->nscopes];
        memset(n, 0, sizeof *n);
        n->id = (uint32_t)t->nscopes;
        n->kind = s->kind;
        if (!(n->name = strdup(s->name)))
            return SIZE_MAX;
        t->nscopes++;
        if (!hmap_add(&mg->scopes, h, t->nscopes - 1))
            return SIZE_MAX;
        i = t->nscopes - 1;
    }
    struct cmt_scope *n = &t->scopes[i];
    n->instances = sat(n->instances, s->instances);
    n->allocations = sat(n->allocations, s->allocations);
    n->bytes_allocated = sat(n->bytes_allocated, s->bytes_allocated);
    n->frees = sat(n->frees, s->frees);
    n->bytes_freed = sat(n->bytes_freed, s->bytes_freed);
    n->outlived_at_close = sat(n->outlived_at_close, s->outlived_at_close);
    n->bulk_freed_blocks = sat(n->bulk_freed_blocks, s->bulk_freed_blocks);
    n->bulk_freed_bytes = sat(n->bulk_freed_bytes, s->bulk_freed_bytes);
    n->peak_live_bytes = max64(n->peak_live_bytes, s->peak_live_bytes);
    if (final) {
        n->leaked_blocks = sat(n->leaked_blocks, s->leaked_blocks);
        n->leaked_bytes = sat(n->leaked_bytes, s->leaked_bytes);
    }
    n->outlived_blocks = sat(n->outlived_blocks, s->outlived_blocks);
    return i;
}

struct pair_key { struct merger *mg; uint32_t a, b; int kind; };

static bool leak_eq(void *arg, size_t i)
{
    const struct pair_key *k = arg;
    const struct cmt_leak *l = &k->mg->t->leaks[i];
    return l->scope == k->a && l->stack == k->b;
}

static bool allocsite_eq(void *arg, size_t i)
{
    const struct pair_key *k = arg;
    const struct cmt_allocsite *a = &k->mg->t->allocsites[i];
    return a->scope == k->a && a->stack == k->b;
}

/* Adds allocations to the total's (scope, stack) site. */
static int add_allocsite(struct merger *mg, uint32_t scope, uint32_t stack,
                         uint64_t allocations, uint64_t bytes)
{
    struct cmt_process *t = mg->t;
    struct pair_key k = { mg, scope, stack, 0 };
    uint64_t h = mix(mix(17, k.a), k.b);
    size_t j = hmap_find(&mg->allocsites, h, allocsite_eq, &k);
    if (j == SIZE_MAX) {
        if (!grow_array((void **)&t->allocsites, &mg->cap_allocsites, t->nallocsites,
                        sizeof *t->allocsites) ||
            !hmap_add(&mg->allocsites, h, t->nallocsites))
            return oom();
        j = t->nallocsites++;
        t->allocsites[j] = (struct cmt_allocsite){ .scope = scope, .stack = stack };
    }
    t->allocsites[j].allocations = sat(t->allocsites[j].allocations, allocations);
    t->allocsites[j].bytes = sat(t->allocsites[j].bytes, bytes);
    return 0;
}

static bool badfree_eq(void *arg, size_t i)
{
    const struct pair_key *k = arg;
    const struct cmt_badfree *b = &k->mg->t->badfrees[i];
    return b->kind == k->kind && b->stack == k->a && b->scope == k->b;
}

/* A stack id of p as a stack id of the total (0 stays 0: no stack). */
static uint32_t total_stack_id(const struct merger *mg, const struct cmt_process *p,
                               uint32_t id)
{
    const struct cmt_stack *s = id ? cmt_process_stack(p, id) : NULL;
    return s ? mg->t->stacks[mg->stack_map[s - p->stacks]].id : 0;
}

static int merge_process(struct merger *mg, const struct cmt_process *p)
{
    struct cmt_process *t = mg->t;
    bool final = cmt_process_final(p);
    free(mg->module_map);
    free(mg->stack_map);
    free(mg->scope_map);
    mg->module_map = calloc(p->nmodules + 1, sizeof *mg->module_map);
    mg->stack_map = calloc(p->nstacks + 1, sizeof *mg->stack_map);
    mg->scope_map = calloc(p->nscopes + 1, sizeof *mg->scope_map);
    if (!mg->module_map || !mg->stack_map || !mg->scope_map)
        return oom();
    for (size_t i = 0; i < p->nmodules; i++)
        if ((mg->module_map[i] = merge_module(mg, &p->modules[i])) == SIZE_MAX)
            return oom();
    for (size_t i = 0; i < p->nstacks; i++)
        if ((mg->stack_map[i] = merge_stack(mg, p, &p->stacks[i])) == SIZE_MAX)
            return oom();
    for (size_t i = 0; i < p->nscopes; i++)
        if ((mg->scope_map[i] = merge_scope(mg, &p->scopes[i], final)) == SIZE_MAX)
            return oom();

    /* Only an exit turns live blocks into leaks: what an exec'd image, a crashed or a
     * killed process still held would make the total's leaks say more than is true. */
    for (size_t i = 0; final && i < p->nleaks; i++) {
        const struct cmt_leak *l = &p->leaks[i];
        const struct cmt_scope *sc = cmt_process_scope(p, l->scope);
        if (!sc)
            continue;
        struct pair_key k = { mg, t->scopes[mg->scope_map[sc - p->scopes]].id,
                              total_stack_id(mg, p, l->stack), 0 };
        uint64_t h = mix(mix(11, k.a), k.b);
        size_t j = hmap_find(&mg->leaks, h, leak_eq, &k);
        if (j == SIZE_MAX) {
            if (!grow_array((void **)&t->leaks, &mg->cap_leaks, t->nleaks, sizeof *t->leaks) ||
                !hmap_add(&mg->leaks, h, t->nleaks))
                return oom();
            j = t->nleaks++;
            memset(&t->leaks[j], 0, sizeof t->leaks[j]);
            t->leaks[j].scope = k.a;
            t->leaks[j].stack = k.b;
        }
        /* Sample addresses mean nothing outside their process: the total keeps none. */
        struct cmt_leak *n = &t->leaks[j];
        n->blocks = sat(n->blocks, l->blocks);
        n->bytes = sat(n->bytes, l->bytes);
        n->blocks_in_closed = sat(n->blocks_in_closed, l->blocks_in_closed);
        n->bytes_in_closed = sat(n->bytes_in_closed, l->bytes_in_closed);
    }

    /* A process whose report has no allocation sites adds its scopes' allocations without a
     * stack, so that the total's sites still add up to its scopes' allocations. */
    if (p->has_allocsites) {
        t->has_allocsites = true;
        for (size_t i = 0; i < p->nallocsites; i++) {
            const struct cmt_allocsite *a = &p->allocsites[i];
            const struct cmt_scope *sc = cmt_process_scope(p, a->scope);
            if (sc && add_allocsite(mg, t->scopes[mg->scope_map[sc - p->scopes]].id,
                                    total_stack_id(mg, p, a->stack), a->allocations,
                                    a->bytes))
                return -1;
        }
    } else {
        for (size_t i = 0; i < p->nscopes; i++)
            if (p->scopes[i].allocations &&
                add_allocsite(mg, t->scopes[mg->scope_map[i]].id, 0,
                              p->scopes[i].allocations, p->scopes[i].bytes_allocated))
                return -1;
    }

    for (size_t i = 0; i < p->nbadfrees; i++) {
        const struct cmt_badfree *b = &p->badfrees[i];
        const struct cmt_scope *sc = b->scope == UINT32_MAX ? NULL
                                                            : cmt_process_scope(p, b->scope);
        struct pair_key k = { mg, total_stack_id(mg, p, b->stack),
                              sc ? t->scopes[mg->scope_map[sc - p->scopes]].id : UINT32_MAX,
                              b->kind };
        uint64_t h = mix(mix(mix(13, k.a), k.b), (uint64_t)k.kind);
        size_t j = hmap_find(&mg->badfrees, h, badfree_eq, &k);
        if (j == SIZE_MAX) {
            if (!grow_array((void **)&t->badfrees, &mg->cap_badfrees, t->nbadfrees,
                            sizeof *t->badfrees) ||
                !hmap_add(&mg->badfrees, h, t->nbadfrees))
                return oom();
            j = t->nbadfrees++;
            /* As with leaks, no sample address: it would name one process's memory. */
            t->badfrees[j] = (struct cmt_badfree){ .kind = b->kind, .stack = k.a,
                                                   .scope = k.b };
        }
        t->badfrees[j].count = sat(t->badfrees[j].count, b->count);
    }

    struct cmt_totals *a = &t->totals;
    const struct cmt_totals *b = &p->totals;
    a->allocations = sat(a->allocations, b->allocations);
    a->bytes_allocated = sat(a->bytes_allocated, b->bytes_allocated);
    a->frees = sat(a->frees, b->frees);
    a->live_blocks = sat(a->live_blocks, b->live_blocks);
    a->live_bytes = sat(a->live_bytes, b->live_bytes);
    a->peak_live_bytes = max64(a->peak_live_bytes, b->peak_live_bytes);
    a->invalid_frees = sat(a->invalid_frees, b->invalid_frees);
    a->double_frees = sat(a->double_frees, b->double_frees);
    a->stale_frees = sat(a->stale_frees, b->stale_frees);
    t->complete = t->complete && p->complete;
    t->truncated = t->truncated || p->truncated;
    return 0;
}

static int build_total(struct cmt_view *v)
{
    struct merger mg = { .t = &v->total };
    struct cmt_process *t = &v->total;
    memset(t, 0, sizeof *t);
    t->complete = true;
    t->how = CMT_END_EXIT;
    int rc = 0;
    if (!(t->file = strdup("")) || !(t->exe = strdup("")) || !(t->label = strdup("")) ||
        !(t->argv = calloc(1, sizeof *t->argv)))
        rc = oom();
    /* Every module first: frames point into t->modules, which must not move after. */
    for (size_t i = 0; rc == 0 && i < v->n; i++) {
        const struct cmt_process *p = v->entries[i].p;
        for (size_t j = 0; rc == 0 && !v->entries[i].superseded && j < p->nmodules; j++)
            if (merge_module(&mg, &p->modules[j]) == SIZE_MAX)
                rc = oom();
    }
    for (size_t i = 0; rc == 0 && i < v->n; i++)
        if (!v->entries[i].superseded)
            rc = merge_process(&mg, v->entries[i].p);
    free(mg.module_map);
    free(mg.stack_map);
    free(mg.scope_map);
    free(mg.modules.slot);
    free(mg.stacks.slot);
    free(mg.scopes.slot);
    free(mg.leaks.slot);
    free(mg.badfrees.slot);
    free(mg.allocsites.slot);
    return rc;
}

int cmt_view_build(struct cmt_view *v, struct cmt_process *procs, size_t n)
{
    memset(v, 0, sizeof *v);
    struct cmt_view_entry *e = calloc(n + 1, sizeof *e);
    size_t *parent = calloc(n + 1, sizeof *parent);
    bool *placed = calloc(n + 1, sizeof *placed);
    v->entries = calloc(n + 1, sizeof *v->entries);
    if (!e || !parent || !placed || !v->entries) {
        free(e);
        free(parent);
        free(placed);
        free(v->entries);
        v->entries = NULL;
        return oom();
    }
    for (size_t i = 0; i < n; i++)
        e[i].p = &procs[i];
    qsort(e, n, sizeof *e, cmp_entry);
    /* A later report of the same image (same pid, same start) replaces an earlier one. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (e[j].p->pid == e[i].p->pid && e[j].p->start_unix_ns == e[i].p->start_unix_ns)
                e[i].superseded = true;
    for (size_t i = 0; i < n; i++) {
        parent[i] = find_parent(e, n, i, &e[i].rel);
        e[i].parent = parent[i] == SIZE_MAX ? NULL : e[parent[i]].p;
    }
    for (size_t i = 0; i < n; i++)
        if (parent[i] == SIZE_MAX)
            place(e, parent, n, i, 0, placed, v->entries, &v->n);
    /* Whatever a cycle kept out of the tree is shown as a root of its own. */
    for (size_t i = 0; i < n; i++)
        if (!placed[i]) {
            e[i].parent = NULL;
            e[i].rel = CMT_REL_ROOT;
            parent[i] = SIZE_MAX;
            place(e, parent, n, i, 0, placed, v->entries, &v->n);
        }
    free(e);
    free(parent);
    free(placed);

    for (size_t i = 0; i < v->n; i++)
        if (!v->entries[i].superseded)
            v->total_processes++;
    if (v->total_processes > 1) {
        v->has_total = true;
        if (build_total(v)) {
            cmt_view_free(v);
            return -1;
        }
    }
    return 0;
}

void cmt_view_free(struct cmt_view *v)
{
    if (v->has_total)
        cmt_process_free(&v->total);
    free(v->entries);
    memset(v, 0, sizeof *v);
}
