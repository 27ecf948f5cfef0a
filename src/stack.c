/*
 * stack.c — the stack of each allocation: capture, and the table that deduplicates stacks.
 *
 * Owns the unwinder (unwind rules cached by return address, read from each module's
 * .eh_frame; libunwind for any stack holding a frame those rules cannot describe), also
 * walked frame by frame for the func: scopes found on the stack (envscope.c), and the
 * stack table (frames -> id). Runs inside the malloc hooks: never allocates through the
 * tracked allocator, never calls stdio, and locks only to add a rule or a stack not seen yet.
 */
#define _GNU_SOURCE
#include "config.h"

#include <link.h>
#include <stddef.h>
#include <string.h>

#ifdef HAVE_LIBUNWIND
#define UNW_LOCAL_ONLY
#include <libunwind.h>
#endif

#include "cmt.h"

/* Weak: stack.c is also linked, without the entry hooks, into test programs. */
extern char cmt_funchook_return_stub[] __attribute__((weak));
uintptr_t cmt_funchook_real_return(uintptr_t pc, uintptr_t sp) __attribute__((weak));

/* ---- knobs for tests and bench/unwind (not part of the interface) ------------------- */

__thread int cmt_in_libunwind CMT_TLS;

/* Which unwinder captures: 0 the cached rules (libunwind for what they cannot describe),
 * 1 libunwind alone. The tests compare the two; the benchmark times them. */
int cmt_stack_unwinder;
/* Most stacks the table takes; tests lower it to see the table fill up. */
#define STACK_LIMIT_MAX (UINT32_C(1) << 20)
uint32_t cmt_stack_limit = STACK_LIMIT_MAX;
/* Captures the cached rules handed to libunwind, for bench/unwind/crosscheck. */
atomic_ulong cmt_stack_fallbacks;

/* ---- state ------------------------------------------------------------------------- */

/* One unwind rule, a word: how to find the caller's frame from a frame at a given pc. */
#define RULE_KIND       0x3u
#define RULE_STANDARD   0x1u    /* CFA = base + cfa_off; the return address is at CFA - 8 */
#define RULE_LAST       0x2u    /* outermost frame: the return address is undefined */
#define RULE_SLOW       0x3u    /* anything else: libunwind unwinds the whole stack */
#define RULE_CFA_RBP    0x4u    /* the base is rbp, else rsp */
#define RULE_RBP_SAVED  0x8u    /* the caller's rbp is at CFA + rbp_off, else unchanged */
#define RULE_GEN_SHIFT  4       /* 12 bits: the module generation the rule belongs to */
#define RULE_GEN_MASK   0xfffu
#define RULE_RBP_SHIFT  16      /* int16 */
#define RULE_CFA_SHIFT  32      /* int32 */
#define RULE_GEN(r)     ((unsigned)((r) >> RULE_GEN_SHIFT) & RULE_GEN_MASK)

/* Rules by pc (a return address minus one, or the pc of the capture itself). Readers take no
 * lock: a slot's key is written once, after its rule; a rule may be rewritten in place (same
 * key, new generation). A full table is replaced by one twice its size and never unmapped,
 * since a reader may still be in it. */
struct rule_slot {
    atomic_uintptr_t key;
    _Atomic uint64_t rule;
};
struct rule_table {
    uint32_t mask;
    uint32_t used;              /* under stk.rules_lock */
    struct rule_slot slot[];
};
#define RULES_INITIAL (1u << 12)
#define RULES_MAX     (1u << 18)

/* A stack: its frames, innermost first. Written once, before its id is published. */
struct stack_rec {
    uint64_t hash;
    uint32_t depth;
    uint32_t unused;
    uintptr_t pcs[];
};

/* The stack table's hash: (hash >> 32) << 32 | id per slot, 0 when empty. Open addressing
 * kept at most half full, read without a lock, replaced like the rule table when full. */
struct stack_slots {
    uint32_t mask;
    uint32_t unused;
    _Atomic uint64_t slot[];
};
#define SLOTS_INITIAL (1u << 12)
#define INDEX_CHUNK   4096u     /* ids per index chunk */
#define POOL_CHUNK    ((size_t)1 << 20)

static struct {
    atomic_int ready;
    atomic_int started;

    /* The unwinder. */
    _Atomic(struct rule_table *) rules;
    atomic_uint gen;                /* bumped when a module is seen to have been unloaded */
    cmt_spinlock rules_lock;
    unsigned long long subs;        /* dl_iterate_phdr's unload count at the last bump */
    uintptr_t own_lo, own_hi;       /* the tracker's code, when it is a shared object */
    atomic_int rules_full_said;

    /* The stack table. */
    cmt_spinlock lock;              /* taken to add a stack, never to find one */
    _Atomic(struct stack_slots *) slots;
    atomic_uint count;              /* ids 1..count are readable */
    _Atomic(struct stack_rec **) index[STACK_LIMIT_MAX / INDEX_CHUNK];
    char *pool, *pool_end;          /* under lock */
    atomic_int full_said;
} stk;

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= UINT64_C(0xff51afd7ed558ccd);
    h ^= h >> 33;
    h *= UINT64_C(0xc4ceb9fe1a85ec53);
    h ^= h >> 33;
    return h;
}

/* A stack's hash: each frame mixed on its own and summed, so that the multiplications do not
 * wait on each other; the position is part of each term. */
static inline uint64_t hash_frame(uint64_t h, uint32_t i, uintptr_t pc)
{
    uint64_t v = (pc ^ (i * UINT64_C(0x9E3779B97F4A7C15))) * UINT64_C(0xff51afd7ed558ccd);
    return h + (v ^ (v >> 29));
}

static inline uint64_t hash_done(uint64_t h, uint32_t n)
{
    return mix64(h + n);
}

static inline uint64_t hash_pcs(const uintptr_t *pcs, uint32_t n)
{
    uint64_t h = 0;
    for (uint32_t i = 0; i < n; i++)
        h = hash_frame(h, i, pcs[i]);
    return hash_done(h, n);
}

/* ---- the tracker's own frames -------------------------------------------------------- */

/* The tracker's frames are skipped in two steps: every frame up to the one that
 * cmt_stack_capture returns into (exact, whether this file is in libcymemtrack.so or linked
 * into a test program), then any frame still in libcymemtrack.so's code (the hooks). */
static inline bool own_pc(uintptr_t pc)
{
    return pc - stk.own_lo < stk.own_hi - stk.own_lo;
}

static inline bool skip_frame(uintptr_t pc, uintptr_t from, bool *reached)
{
    if (!*reached) {
        if (pc != from)
            return true;
        *reached = true;
    }
    return own_pc(pc);
}

/* Leading frames of the tracker's own skipped at most; past that the stack is not trusted. */
#define SKIP_MAX 16

struct own_search {
    uintptr_t addr;
    unsigned seen;
    bool in_main, found;
    uintptr_t lo, hi;
    unsigned long long subs;
};

static int find_own(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct own_search *s = arg;
    if (s->seen++ == 0 &&
        size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        s->subs = info->dlpi_subs;
    bool hit = false;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD)
            continue;
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (s->addr - start < ph->p_memsz)
            hit = true;
        if (ph->p_flags & PF_X) {
            lo = start < lo ? start : lo;
            hi = start + ph->p_memsz > hi ? start + ph->p_memsz : hi;
        }
    }
    if (!hit)
        return 0;
    s->found = true;
    s->in_main = s->seen == 1;  /* dl_iterate_phdr lists the program first */
    s->lo = lo;
    s->hi = hi;
    return 1;
}

/* ---- the unwinder ------------------------------------------------------------------ */

/* What a walk does with the frames it finds. A capture keeps up to depth return addresses;
 * an inspection (cmt_stack_walk) hands each frame's pc and CFA to visit, up to depth frames,
 * until visit says stop. Each walker below is written once and instantiated for both, with
 * `frames` a constant, so that the capture's loop carries nothing of the inspection's. */
struct walk {
    uintptr_t *pcs;
    int depth;
    cmt_stack_visit visit;
    void *arg;
};

#ifdef HAVE_LIBUNWIND

/* Reading the modules' unwind tables. Every read is bounded by the segment that holds
 * .eh_frame_hdr, which on every GNU toolchain also holds .eh_frame. */
struct reader {
    const uint8_t *p, *end;
    bool bad;
};

static uint64_t rd_fixed(struct reader *r, size_t n)
{
    uint64_t v = 0;
    if ((size_t)(r->end - r->p) < n) {
        r->bad = true;
        return 0;
    }
    memcpy(&v, r->p, n);        /* little-endian host */
    r->p += n;
    return v;
}

static uint64_t rd_uleb(struct reader *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

static int64_t rd_sleb(struct reader *r)
{
    uint64_t v = 0;
    unsigned shift = 0;
    for (; r->p < r->end; ) {
        uint8_t b = *r->p++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
        if (!(b & 0x80)) {
            if (shift < 64 && (b & 0x40))
                v |= ~UINT64_C(0) << shift;
            return (int64_t)v;
        }
    }
    r->bad = true;
    return 0;
}

static void rd_skip(struct reader *r, uint64_t n)
{
    if (n > (uint64_t)(r->end - r->p))
        r->bad = true;
    else
        r->p += n;
}

enum {
    PE_ABSPTR = 0x00, PE_ULEB128 = 0x01, PE_UDATA2 = 0x02, PE_UDATA4 = 0x03, PE_UDATA8 = 0x04,
    PE_SLEB128 = 0x09, PE_SDATA2 = 0x0a, PE_SDATA4 = 0x0b, PE_SDATA8 = 0x0c,
    PE_PCREL = 0x10, PE_DATAREL = 0x30, PE_INDIRECT = 0x80, PE_OMIT = 0xff,
};

/* A pointer in encoding enc; indirect pointers are never followed (only the personality
 * routine uses them, and it is skipped). datarel is relative to base. */
static uintptr_t rd_encoded(struct reader *r, uint8_t enc, uintptr_t base)
{
    uintptr_t at = (uintptr_t)r->p, v;
    switch (enc & 0x0f) {
    case PE_ABSPTR:  v = (uintptr_t)rd_fixed(r, 8); break;
    case PE_ULEB128: v = (uintptr_t)rd_uleb(r); break;
    case PE_UDATA2:  v = (uintptr_t)rd_fixed(r, 2); break;
    case PE_UDATA4:  v = (uintptr_t)rd_fixed(r, 4); break;
    case PE_UDATA8:  v = (uintptr_t)rd_fixed(r, 8); break;
    case PE_SLEB128: v = (uintptr_t)rd_sleb(r); break;
    case PE_SDATA2:  v = (uintptr_t)(int16_t)rd_fixed(r, 2); break;
    case PE_SDATA4:  v = (uintptr_t)(int32_t)rd_fixed(r, 4); break;
    case PE_SDATA8:  v = (uintptr_t)rd_fixed(r, 8); break;
    default:         r->bad = true; return 0;
    }
    switch (enc & 0x70) {
    case 0:          return v;
    case PE_PCREL:   return v + at;
    case PE_DATAREL: if (base) return v + base; break;
    default:         break;
    }
    r->bad = true;
    return 0;
}

/* The module holding a pc, found with dl_iterate_phdr. */
struct module {
    uintptr_t addr;
    unsigned seen;
    bool found;
    uintptr_t seg_hi;               /* end of the segment holding addr */
    const uint8_t *hdr;             /* .eh_frame_hdr, NULL when there is none */
    size_t hdr_len;
    const uint8_t *lo, *hi;         /* the segment holding .eh_frame_hdr */
    unsigned long long subs;
};

static int find_module(struct dl_phdr_info *info, size_t size, void *arg)
{
    struct module *m = arg;
    if (m->seen++ == 0 &&
        size >= offsetof(struct dl_phdr_info, dlpi_subs) + sizeof info->dlpi_subs)
        m->subs = info->dlpi_subs;
    const ElfW(Phdr) *eh = NULL;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t start = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && m->addr - start < ph->p_memsz) {
            m->found = true;
            m->seg_hi = start + ph->p_memsz;
        } else if (ph->p_type == PT_GNU_EH_FRAME) {
            eh = ph;
        }
    }
    if (!m->found)
        return 0;
    if (eh) {
        uintptr_t hdr = info->dlpi_addr + eh->p_vaddr;
        for (unsigned i = 0; i < info->dlpi_phnum; i++) {
            const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
            uintptr_t start = info->dlpi_addr + ph->p_vaddr;
            if (ph->p_type == PT_LOAD && hdr - start < ph->p_memsz &&
                eh->p_memsz <= start + ph->p_memsz - hdr) {
                m->hdr = (const uint8_t *)hdr;
                m->hdr_len = eh->p_memsz;
                m->lo = (const uint8_t *)start;
                m->hi = (const uint8_t *)(start + ph->p_memsz);
            }
        }
    }
    return 1;
}

/* The FDE covering pc, from the binary-search table in .eh_frame_hdr; NULL when none. */
static const uint8_t *fde_lookup(const struct module *m, uintptr_t pc)
{
    const uint8_t *h = m->hdr;
    if (m->hdr_len < 4 || h[0] != 1 || h[2] != PE_UDATA4 || h[3] != (PE_DATAREL | PE_SDATA4))
        return NULL;
    struct reader r = { h + 4, h + m->hdr_len, false };
    if (h[1] != PE_OMIT)
        rd_encoded(&r, h[1], (uintptr_t)h);
    uint64_t count = rd_fixed(&r, 4);
    if (r.bad || count == 0 || (uint64_t)(r.end - r.p) / 8 < count)
        return NULL;
    const uint8_t *table = r.p;
    int64_t target = (int64_t)(pc - (uintptr_t)h);
    uint64_t lo = 0, hi = count;     /* the answer is the last entry whose start <= target */
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        int32_t start;
        memcpy(&start, table + mid * 8, 4);
        if (start <= target)
            lo = mid;
        else
            hi = mid;
    }
    int32_t start, fde;
    memcpy(&start, table + lo * 8, 4);
    memcpy(&fde, table + lo * 8 + 4, 4);
    if (start > target)
        return NULL;
    const uint8_t *p = h + fde;
    return p >= m->lo && p < m->hi ? p : NULL;
}

/* A CIE or FDE: its body, bounded by the module segment. */
static bool cfi_entry(const struct module *m, const uint8_t *at, struct reader *body)
{
    struct reader r = { at, m->hi, false };
    uint64_t len = rd_fixed(&r, 4);
    /* 64-bit entries (length 0xffffffff) do not occur in .eh_frame in practice; 0 ends it. */
    if (r.bad || len == 0 || len >= 0xfffffff0u || len > (uint64_t)(m->hi - r.p))
        return false;
    body->p = r.p;
    body->end = r.p + len;
    body->bad = false;
    return true;
}

/* What the unwinder needs to know of a register: rbp, rsp and the return address. */
enum { HOW_SAME, HOW_UNDEF, HOW_OFFSET, HOW_OTHER };
struct reg_rule {
    uint8_t how;
    int64_t off;
};
struct cfa_row {
    uint64_t cfa_reg;
    int64_t cfa_off;
    bool cfa_expr;
    struct reg_rule rbp, rsp, ra;
};

struct cie {
    uint64_t caf;                   /* code alignment factor */
    int64_t daf;                    /* data alignment factor */
    uint64_t ra_reg;
    uint8_t fde_enc;
    bool aug_z, signal;
    struct reader ins;              /* initial instructions */
};

enum { DWREG_RBP = 6, DWREG_RSP = 7 };

static bool cie_parse(const struct module *m, const uint8_t *at, struct cie *c)
{
    struct reader r;
    if (!cfi_entry(m, at, &r) || rd_fixed(&r, 4) != 0)
        return false;
    uint64_t version = rd_fixed(&r, 1);
    if (version != 1 && version != 3 && version != 4)
        return false;
    const char *aug = (const char *)r.p;
    size_t aug_len = strnlen(aug, (size_t)(r.end - r.p));
    rd_skip(&r, aug_len + 1);
    if (version == 4) {
        if (rd_fixed(&r, 1) != 8 || rd_fixed(&r, 1) != 0)   /* address and segment size */
            return false;
    }
    c->caf = rd_uleb(&r);
    c->daf = rd_sleb(&r);
    c->ra_reg = version == 1 ? rd_fixed(&r, 1) : rd_uleb(&r);
    c->fde_enc = PE_ABSPTR;
    c->aug_z = aug_len > 0 && aug[0] == 'z';
    c->signal = false;
    if (aug_len > 0 && !c->aug_z)
        return false;
    if (c->aug_z) {
        uint64_t n = rd_uleb(&r);
        if (r.bad || n > (uint64_t)(r.end - r.p))
            return false;
        struct reader a = { r.p, r.p + n, false };
        for (size_t i = 1; i < aug_len && !a.bad; i++) {
            switch (aug[i]) {
            case 'L': rd_fixed(&a, 1); break;
            case 'P': rd_encoded(&a, (uint8_t)rd_fixed(&a, 1) & ~PE_INDIRECT, 0); break;
            case 'R': c->fde_enc = (uint8_t)rd_fixed(&a, 1); break;
            case 'S': c->signal = true; break;
            default: return false;  /* unknown meaning: not ours to guess */
            }
        }
        if (a.bad)
            return false;
        r.p += n;
    }
    if (r.bad || c->ra_reg == DWREG_RBP || c->ra_reg == DWREG_RSP)
        return false;
    c->ins = r;
    return true;
}

static void set_rule(struct cfa_row *row, const struct cie *c, uint64_t reg, uint8_t how,
                     int64_t off)
{
    struct reg_rule *rule = reg == DWREG_RBP ? &row->rbp : reg == DWREG_RSP ? &row->rsp
                          : reg == c->ra_reg ? &row->ra : NULL;
    if (rule) {
        rule->how = how;
        rule->off = off;
    }
}

static void restore_rule(struct cfa_row *row, const struct cfa_row *init, const struct cie *c,
                         uint64_t reg)
{
    if (reg == DWREG_RBP)
        row->rbp = init->rbp;
    else if (reg == DWREG_RSP)
        row->rsp = init->rsp;
    else if (reg == c->ra_reg)
        row->ra = init->ra;
}

#define CFI_STATES 8

/* Runs call frame instructions from loc until the row that covers target. False when they
 * cannot be read or use an instruction not known here. */
static bool cfi_run(struct reader *r, const struct cie *c, struct cfa_row *row,
                    const struct cfa_row *init, uintptr_t loc, uintptr_t target)
{
    struct cfa_row saved[CFI_STATES];
    unsigned nsaved = 0;
    while (r->p < r->end && !r->bad) {
        uint8_t op = (uint8_t)rd_fixed(r, 1);
        uint64_t reg, delta;
        int64_t off;
        switch (op & 0xc0) {
        case 0x40:                                  /* advance_loc */
            delta = op & 0x3f;
            goto advance;
        case 0x80:                                  /* offset */
            off = (int64_t)rd_uleb(r) * c->daf;
            set_rule(row, c, op & 0x3f, HOW_OFFSET, off);
            continue;
        case 0xc0:                                  /* restore */
            restore_rule(row, init, c, op & 0x3f);
            continue;
        default:
            break;
        }
        switch (op) {
        case 0x00:                                  /* nop */
            continue;
        case 0x01:                                  /* set_loc */
            loc = rd_encoded(r, c->fde_enc, 0);
            if (loc > target)
                return !r->bad;
            continue;
        case 0x02: delta = rd_fixed(r, 1); goto advance;
        case 0x03: delta = rd_fixed(r, 2); goto advance;
        case 0x04: delta = rd_fixed(r, 4); goto advance;
        case 0x05:                                  /* offset_extended */
            reg = rd_uleb(r);
            off = (int64_t)rd_uleb(r) * c->daf;
            set_rule(row, c, reg, HOW_OFFSET, off);
            continue;
        case 0x06:                                  /* restore_extended */
            restore_rule(row, init, c, rd_uleb(r));
            continue;
        case 0x07:                                  /* undefined */
            set_rule(row, c, rd_uleb(r), HOW_UNDEF, 0);
            continue;
        case 0x08:                                  /* same_value */
            set_rule(row, c, rd_uleb(r), HOW_SAME, 0);
            continue;
        case 0x09:                                  /* register */
            reg = rd_uleb(r);
            rd_uleb(r);
            set_rule(row, c, reg, HOW_OTHER, 0);
            continue;
        case 0x0a:                                  /* remember_state */
            if (nsaved == CFI_STATES)
                return false;
            saved[nsaved++] = *row;
            continue;
        case 0x0b:                                  /* restore_state: the CFA too, as GCC does */
            if (nsaved == 0)
                return false;
            *row = saved[--nsaved];
            continue;
        case 0x0c:                                  /* def_cfa */
            row->cfa_reg = rd_uleb(r);
            row->cfa_off = (int64_t)rd_uleb(r);
            row->cfa_expr = false;
            continue;
        case 0x0d:                                  /* def_cfa_register */
            row->cfa_reg = rd_uleb(r);
            if (row->cfa_expr)
                return false;
            continue;
        case 0x0e:                                  /* def_cfa_offset */
            row->cfa_off = (int64_t)rd_uleb(r);
            if (row->cfa_expr)
                return false;
            continue;
        case 0x0f:                                  /* def_cfa_expression */
            rd_skip(r, rd_uleb(r));
            row->cfa_expr = true;
            continue;
        case 0x10:                                  /* expression */
        case 0x16:                                  /* val_expression */
            reg = rd_uleb(r);
            rd_skip(r, rd_uleb(r));
            set_rule(row, c, reg, HOW_OTHER, 0);
            continue;
        case 0x11:                                  /* offset_extended_sf */
            reg = rd_uleb(r);
            off = rd_sleb(r) * c->daf;
            set_rule(row, c, reg, HOW_OFFSET, off);
            continue;
        case 0x12:                                  /* def_cfa_sf */
            row->cfa_reg = rd_uleb(r);
            row->cfa_off = rd_sleb(r) * c->daf;
            row->cfa_expr = false;
            continue;
        case 0x13:                                  /* def_cfa_offset_sf */
            row->cfa_off = rd_sleb(r) * c->daf;
            if (row->cfa_expr)
                return false;
            continue;
        case 0x14:                                  /* val_offset */
            reg = rd_uleb(r);
            rd_uleb(r);
            set_rule(row, c, reg, HOW_OTHER, 0);
            continue;
        case 0x15:                                  /* val_offset_sf */
            reg = rd_uleb(r);
            rd_sleb(r);
            set_rule(row, c, reg, HOW_OTHER, 0);
            continue;
        case 0x2e:                                  /* GNU_args_size: no effect on the CFA */
            rd_uleb(r);
            continue;
        case 0x2f:                                  /* GNU_negative_offset_extended */
            reg = rd_uleb(r);
            off = -(int64_t)rd_uleb(r) * c->daf;
            set_rule(row, c, reg, HOW_OFFSET, off);
            continue;
        default:
            return false;
        }
    advance:
        loc += delta * c->caf;
        if (loc > target)
            return !r->bad;
    }
    return !r->bad;
}

/* The x86-64 sigreturn trampoline: mov $15, %rax; syscall. A frame returning there is a
 * signal frame whatever the unwind tables say, and only libunwind knows its layout. */
static bool is_sigreturn(uintptr_t pc, uintptr_t seg_hi)
{
    static const uint8_t code[] = { 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05 };
    return seg_hi - pc >= sizeof code && memcmp((const void *)pc, code, sizeof code) == 0;
}

/* The FDE that covers pc, and its CIE: *r is left at the FDE's instructions, *begin and
 * *range are the code it covers. False when there is none or it cannot be read. */
static bool fde_open(const struct module *m, uintptr_t pc, struct reader *r, struct cie *c,
                     uintptr_t *begin, uintptr_t *range)
{
    const uint8_t *fde = fde_lookup(m, pc);
    if (!fde || !cfi_entry(m, fde, r))
        return false;
    uint64_t cie_off = rd_fixed(r, 4);
    const uint8_t *cie_at = r->p - 4 - cie_off;
    if (r->bad || cie_off == 0 || cie_at < m->lo || cie_at >= m->hi || !cie_parse(m, cie_at, c))
        return false;
    *begin = rd_encoded(r, c->fde_enc, 0);
    *range = rd_encoded(r, c->fde_enc & 0x0f, 0);
    if (c->aug_z)
        rd_skip(r, rd_uleb(r));
    return !r->bad && pc - *begin < *range;
}

/* The rule for the frame executing at pc, from the module's .eh_frame. is_ra: pc is a return
 * address minus one. */
static uint64_t rule_compute(uintptr_t pc, bool is_ra, unsigned long long *subs)
{
    struct module m = { .addr = pc };
    dl_iterate_phdr(find_module, &m);
    *subs = m.subs;
    if (!m.found || !m.hdr || (is_ra && is_sigreturn(pc + 1, m.seg_hi)))
        return RULE_SLOW;
    struct reader r;
    struct cie c;
    uintptr_t begin, range;
    if (!fde_open(&m, pc, &r, &c, &begin, &range) || c.signal)
        return RULE_SLOW;

    struct cfa_row row = { .cfa_reg = ~UINT64_C(0) }, init;
    if (!cfi_run(&c.ins, &c, &row, &row, 0, UINTPTR_MAX))
        return RULE_SLOW;
    init = row;
    if (!cfi_run(&r, &c, &row, &init, begin, pc))
        return RULE_SLOW;

    if (row.cfa_expr || (row.cfa_reg != DWREG_RSP && row.cfa_reg != DWREG_RBP) ||
        row.cfa_off > INT32_MAX || row.cfa_off < INT32_MIN ||
        (row.cfa_reg == DWREG_RSP && row.cfa_off < 8))
        return RULE_SLOW;
    if (row.ra.how == HOW_UNDEF)
        return RULE_LAST;
    if (row.ra.how != HOW_OFFSET || row.ra.off != -8 || row.rsp.how != HOW_SAME)
        return RULE_SLOW;
    uint64_t rule = RULE_STANDARD | (row.cfa_reg == DWREG_RBP ? RULE_CFA_RBP : 0) |
                    (uint64_t)(uint32_t)(int32_t)row.cfa_off << RULE_CFA_SHIFT;
    if (row.rbp.how == HOW_OFFSET) {
        if (row.rbp.off == 0 || row.rbp.off < INT16_MIN || row.rbp.off > INT16_MAX)
            return RULE_SLOW;
        rule |= RULE_RBP_SAVED | (uint64_t)(uint16_t)(int16_t)row.rbp.off << RULE_RBP_SHIFT;
    } else if (row.rbp.how != HOW_SAME) {
        return RULE_SLOW;
    }
    return rule;
}

/* The code a function's unwind entry covers, when one starts exactly at fn: the extent of a
 * function whose symbol gives no size. 0 when there is no such entry. */
static size_t code_extent(uintptr_t fn)
{
    struct module m = { .addr = fn };
    dl_iterate_phdr(find_module, &m);
    struct reader r;
    struct cie c;
    uintptr_t begin, range;
    if (!m.found || !m.hdr || !fde_open(&m, fn, &r, &c, &begin, &range) || begin != fn)
        return 0;
    return range;
}

static inline uint32_t hash_pc(uintptr_t pc)
{
    return (uint32_t)(((uint64_t)pc * UINT64_C(0x9E3779B97F4A7C15)) >> 32);
}

static inline uint64_t rule_find(const struct rule_table *t, uintptr_t pc, unsigned gen)
{
    if (cmt_unlikely(!t))
        return 0;
    for (uint32_t i = hash_pc(pc) & t->mask;; i = (i + 1) & t->mask) {
        uintptr_t k = atomic_load_explicit(&t->slot[i].key, memory_order_acquire);
        if (k == pc) {
            uint64_t r = atomic_load_explicit(&t->slot[i].rule, memory_order_relaxed);
            return RULE_GEN(r) == gen ? r : 0;
        }
        if (k == 0)
            return 0;
    }
}

static struct rule_table *rules_new(uint32_t size)
{
    struct rule_table *t = cmt_raw_map(sizeof *t + size * sizeof t->slot[0]);
    if (t)
        t->mask = size - 1;
    return t;
}

/* A table twice the size of t holding t's rules of generation gen; NULL when out of memory
 * or at the size limit. Called with rules_lock held. */
static struct rule_table *rules_grow(const struct rule_table *t, unsigned gen)
{
    struct rule_table *n = t->mask + 1 < RULES_MAX ? rules_new((t->mask + 1) * 2) : NULL;
    if (!n)
        return NULL;
    for (uint32_t j = 0; j <= t->mask; j++) {
        uintptr_t k = atomic_load_explicit(&t->slot[j].key, memory_order_relaxed);
        uint64_t r = atomic_load_explicit(&t->slot[j].rule, memory_order_relaxed);
        if (k == 0 || RULE_GEN(r) != gen)
            continue;
        uint32_t x = hash_pc(k) & n->mask;
        while (atomic_load_explicit(&n->slot[x].key, memory_order_relaxed))
            x = (x + 1) & n->mask;
        atomic_store_explicit(&n->slot[x].rule, r, memory_order_relaxed);
        atomic_store_explicit(&n->slot[x].key, k, memory_order_relaxed);
        n->used++;
    }
    return n;
}

/* Adds pc's rule; called with rules_lock held. A rule already there for pc (from an older
 * generation, or added meanwhile by another thread) is rewritten in place: same key, so a
 * reader gets one or the other, both right for that key. */
static void rules_put(uintptr_t pc, uint64_t rule)
{
    struct rule_table *t = atomic_load_explicit(&stk.rules, memory_order_relaxed);
    if (!t)
        return;
    uint32_t i = hash_pc(pc) & t->mask;
    for (uintptr_t k; (k = atomic_load_explicit(&t->slot[i].key, memory_order_relaxed));
         i = (i + 1) & t->mask) {
        if (k == pc) {
            atomic_store_explicit(&t->slot[i].rule, rule, memory_order_relaxed);
            return;
        }
    }
    if ((t->used + 1) * 2 > t->mask + 1) {
        /* Half full: the old table stays mapped for readers still in it. */
        struct rule_table *n = rules_grow(t, RULE_GEN(rule));
        if (!n) {
            if (!atomic_exchange(&stk.rules_full_said, 1))
                cmt_diag("unwind rule cache full; stacks through new code are slower to "
                         "capture");
            return;
        }
        atomic_store_explicit(&stk.rules, n, memory_order_release);
        t = n;
        i = hash_pc(pc) & t->mask;
        while (atomic_load_explicit(&t->slot[i].key, memory_order_relaxed))
            i = (i + 1) & t->mask;
    }
    atomic_store_explicit(&t->slot[i].rule, rule, memory_order_relaxed);
    atomic_store_explicit(&t->slot[i].key, pc, memory_order_release);
    t->used++;
}

/* A pc not in the rule cache: work its rule out and keep it. */
static CMT_NOINLINE uint64_t rule_miss(uintptr_t pc, bool is_ra)
{
    unsigned long long subs;
    uint64_t rule = rule_compute(pc, is_ra, &subs);
    cmt_spin_lock(&stk.rules_lock);
    unsigned gen = atomic_load_explicit(&stk.gen, memory_order_relaxed);
    if (subs != stk.subs) {
        /* A module was unloaded since the rules were read: another may now sit at the
         * same addresses, so every rule of the old generation is forgotten. */
        stk.subs = subs;
        gen = (gen + 1) & RULE_GEN_MASK;
        atomic_store_explicit(&stk.gen, gen, memory_order_relaxed);
    }
    rule |= (uint64_t)gen << RULE_GEN_SHIFT;
    rules_put(pc, rule);
    cmt_spin_unlock(&stk.rules_lock);
    return rule;
}

/* A frame bigger than this means the rules went wrong: libunwind takes over. */
#define FRAME_MAX_BYTES ((uintptr_t)256 << 20)

/* The calling thread's last walk: the rule used at each step, with the pc it was for. A walk
 * down the same path finds its rules here by position, after one compare the CPU predicts,
 * so it runs ahead instead of waiting on a hash lookup at every frame. A step is rewritten
 * key first (to 0), then rule, then key; a reader checks the key again after reading the
 * rule, so a signal handler's walk in the middle of either never yields a wrong rule. */
#define MEMO_STEPS 32
struct memo {
    unsigned gen;
    struct {
        uintptr_t key;
        uint64_t rule;
    } step[MEMO_STEPS];
};
static __thread struct memo memo CMT_TLS;

static inline uint64_t memo_get(const struct memo *m, unsigned s, uintptr_t key)
{
    if (s >= MEMO_STEPS || m->step[s].key != key)
        return 0;
    atomic_signal_fence(memory_order_seq_cst);
    uint64_t rule = m->step[s].rule;
    atomic_signal_fence(memory_order_seq_cst);
    return m->step[s].key == key ? rule : 0;
}

static inline void memo_put(struct memo *m, unsigned s, uintptr_t key, uint64_t rule)
{
    if (s >= MEMO_STEPS)
        return;
    m->step[s].key = 0;
    atomic_signal_fence(memory_order_seq_cst);
    m->step[s].rule = rule;
    atomic_signal_fence(memory_order_seq_cst);
    m->step[s].key = key;
}

/* Forgets a walk made with rules of another generation. */
static CMT_NOINLINE void memo_reset(struct memo *m, unsigned gen)
{
    for (unsigned s = 0; s < MEMO_STEPS; s++)
        m->step[s].key = 0;
    atomic_signal_fence(memory_order_seq_cst);
    m->gen = gen;
}

/* Walks the calling thread's stack with the cached rules, past the tracker's own frames (see
 * skip_frame; from is where the interface function returns to). Returns how many frames it
 * gave, or -1 when a frame needs libunwind. Reads only what the unwind tables say the frames
 * hold, with the CFA checked to move up the stack. m is the walk's memo: a capture and an
 * inspection start from different frames, and would only evict each other's. */
static inline __attribute__((always_inline)) int walk_cached(struct walk *w, uintptr_t from,
                                                            struct memo *m, bool frames)
{
    uintptr_t pc, sp, bp;
    __asm__ volatile("lea 0(%%rip), %0\n\t"
                     "mov %%rsp, %1\n\t"
                     "mov %%rbp, %2"
                     : "=r"(pc), "=r"(sp), "=r"(bp));
    const struct rule_table *t = atomic_load_explicit(&stk.rules, memory_order_acquire);
    unsigned gen = atomic_load_explicit(&stk.gen, memory_order_relaxed);
    if (cmt_unlikely(m->gen != gen))
        memo_reset(m, gen);
    uintptr_t key = pc, last = 0;
    int n = 0, skipped = 0;
    bool reached = false;
    for (unsigned step = 0;; step++) {
        uint64_t rule = memo_get(m, step, key);
        if (cmt_unlikely(!rule)) {
            rule = rule_find(t, key, gen);
            if (cmt_unlikely(!rule)) {
                rule = rule_miss(key, key != pc);
                t = atomic_load_explicit(&stk.rules, memory_order_acquire);
                gen = atomic_load_explicit(&stk.gen, memory_order_relaxed);
                if (cmt_unlikely(m->gen != gen))
                    memo_reset(m, gen);     /* a module went away: forget the rest too */
            }
            memo_put(m, step, key, rule);
        }
        unsigned kind = rule & RULE_KIND;
        if (kind == RULE_LAST)
            break;
        if (kind != RULE_STANDARD)
            return -1;
        uintptr_t cfa = ((rule & RULE_CFA_RBP) ? bp : sp) +
                        (uintptr_t)(intptr_t)(int32_t)(rule >> RULE_CFA_SHIFT);
        if (cmt_unlikely(cfa <= sp || cfa - sp > FRAME_MAX_BYTES || (cfa & 7)))
            return -1;
        /* The frame at key, whose return address the previous step read, has its CFA now. */
        if (frames && n > 0 && (!w->visit(w->arg, last, cfa) || n == w->depth))
            break;
        uintptr_t ra = ((const uintptr_t *)cfa)[-1];
        /* A call hooked by a func: scope returns through funchook's stub, which has no
         * unwind rule: the real return address is on the thread's shadow stack. */
        if (cmt_unlikely(cmt_funchook_return_stub && ra == (uintptr_t)cmt_funchook_return_stub))
            ra = cmt_funchook_real_return(ra, cfa);
        if (rule & RULE_RBP_SAVED)
            bp = *(const uintptr_t *)(cfa + (intptr_t)(int16_t)(rule >> RULE_RBP_SHIFT));
        sp = cfa;
        if (ra == 0)
            break;          /* the end of the stack, as libunwind sees it too */
        if (n == 0 && skip_frame(ra, from, &reached)) {
            if (++skipped > SKIP_MAX)
                return 0;
        } else if (frames) {
            last = ra;
            n++;
        } else {
            w->pcs[n++] = ra;
            if (n == w->depth)
                break;
        }
        key = ra - 1;       /* the call instruction: ra may already be the next function */
    }
    return n;
}

static CMT_NOINLINE int unwind_cached(uintptr_t *pcs, int depth, uintptr_t from)
{
    struct walk w = { .pcs = pcs, .depth = depth };
    return walk_cached(&w, from, &memo, false);
}

/* The inspection's own memo (see walk_cached). */
static __thread struct memo frames_memo CMT_TLS;

static CMT_NOINLINE int frames_cached(struct walk *w, uintptr_t from)
{
    return walk_cached(w, from, &frames_memo, true);
}

/* The same walks by libunwind, for the stacks the cached rules cannot describe (signal
 * frames, frames without unwind tables, unusual CFA rules). A frame's CFA is the stack
 * pointer libunwind gives its caller's frame, so an inspection steps before it visits. */
static inline __attribute__((always_inline)) int walk_libunwind(struct walk *w, uintptr_t from,
                                                               bool frames)
{
    unw_context_t uc;
    unw_cursor_t cursor;
    if (unw_getcontext(&uc) != 0 || unw_init_local(&cursor, &uc) != 0)
        return 0;
    int n = 0, skipped = 0;
    bool reached = false;
    for (;;) {
        unw_word_t ip, cfa;
        if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || ip == 0)
            break;
        if (n == 0 && skip_frame(ip, from, &reached)) {
            if (++skipped > SKIP_MAX)
                return 0;
        } else if (frames) {
            if (unw_step(&cursor) <= 0 || unw_get_reg(&cursor, UNW_REG_SP, &cfa) != 0)
                break;
            n++;
            if (!w->visit(w->arg, ip, cfa) || n == w->depth)
                break;
            continue;
        } else {
            w->pcs[n++] = ip;
            if (n == w->depth)
                break;
        }
        if (unw_step(&cursor) <= 0)
            break;
    }
    return n;
}

/* libunwind starts on the first stack that needs it, not with the tracker: it opens a pipe
 * when it starts (see unwind-pipe.c), which most processes then never have. */
enum { LIBUNWIND_IDLE, LIBUNWIND_STARTED, LIBUNWIND_BARRED };
static atomic_int libunwind_state;

/* May libunwind walk this stack? Starts it the first time; bars it for good once its pipe's
 * descriptors have been taken over by the program. */
static CMT_NOINLINE bool libunwind_ready(void)
{
    int state = atomic_load_explicit(&libunwind_state, memory_order_acquire);
    if (state == LIBUNWIND_BARRED)
        return false;
    if (cmt_unwind_pipe_intact && !cmt_unwind_pipe_intact()) {
        atomic_store(&libunwind_state, LIBUNWIND_BARRED);
        return false;
    }
    if (state == LIBUNWIND_IDLE) {
        /* Per-thread caches: with the default global one, every libunwind step takes a
         * lock and masks signals. Two threads may both set it: the same setting. */
        cmt_in_libunwind++;
        unw_set_caching_policy(unw_local_addr_space, UNW_CACHE_PER_THREAD);
        cmt_in_libunwind--;
        int idle = LIBUNWIND_IDLE;
        atomic_compare_exchange_strong(&libunwind_state, &idle, LIBUNWIND_STARTED);
    }
    return true;
}

static CMT_NOINLINE int unwind_libunwind(uintptr_t *pcs, int depth, uintptr_t from)
{
    if (!libunwind_ready())
        return 0;
    struct walk w = { .pcs = pcs, .depth = depth };
    cmt_in_libunwind++;
    int n = walk_libunwind(&w, from, false);
    cmt_in_libunwind--;
    return n;
}

static CMT_NOINLINE int frames_libunwind(struct walk *w, uintptr_t from)
{
    if (!libunwind_ready())
        return 0;
    cmt_in_libunwind++;
    int n = walk_libunwind(w, from, true);
    cmt_in_libunwind--;
    return n;
}

static void unwinder_init(void)
{
    atomic_store_explicit(&stk.rules, rules_new(RULES_INITIAL), memory_order_release);
}

static inline int unwind(uintptr_t *pcs, int depth, uintptr_t from)
{
    int n = cmt_likely(cmt_stack_unwinder == 0) ? unwind_cached(pcs, depth, from) : -1;
    if (n >= 0)
        return n;
    if (cmt_stack_unwinder == 0)
        atomic_fetch_add_explicit(&cmt_stack_fallbacks, 1, memory_order_relaxed);
    return unwind_libunwind(pcs, depth, from);
}

static inline int walk_frames(struct walk *w, uintptr_t from)
{
    int n = cmt_likely(cmt_stack_unwinder == 0) ? frames_cached(w, from) : -1;
    if (n >= 0)
        return n;
    w->visit(w->arg, 0, 0);     /* start over: libunwind walks again from the top */
    return frames_libunwind(w, from);
}

static void unwinder_lock(void)
{
    cmt_spin_lock(&stk.rules_lock);
}

static void unwinder_unlock(void)
{
    cmt_spin_unlock(&stk.rules_lock);
}

#else /* !HAVE_LIBUNWIND: built without an unwinder, no stacks */

static void unwinder_init(void) {}
static inline int unwind(uintptr_t *pcs, int depth, uintptr_t from)
{
    (void)pcs;
    (void)depth;
    (void)from;
    return 0;
}
static inline int walk_frames(struct walk *w, uintptr_t from)
{
    (void)w;
    (void)from;
    return 0;
}
static size_t code_extent(uintptr_t fn)
{
    (void)fn;
    return 0;
}
static void unwinder_lock(void) {}
static void unwinder_unlock(void) {}

#endif

/* ---- the stack table --------------------------------------------------------------- */

static inline const struct stack_rec *rec_of(uint32_t id)
{
    struct stack_rec **chunk =
        atomic_load_explicit(&stk.index[(id - 1) / INDEX_CHUNK], memory_order_acquire);
    return chunk[(id - 1) % INDEX_CHUNK];
}

static inline uint32_t slots_find(const struct stack_slots *s, uint64_t h,
                                  const uintptr_t *pcs, uint32_t n)
{
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & s->mask;; i = (i + 1) & s->mask) {
        uint64_t v = atomic_load_explicit(&s->slot[i], memory_order_acquire);
        if (v == 0)
            return 0;
        if ((uint32_t)(v >> 32) == tag) {
            const struct stack_rec *r = rec_of((uint32_t)v);
            if (r->depth == n && memcmp(r->pcs, pcs, n * sizeof *pcs) == 0)
                return (uint32_t)v;
        }
    }
}

static void slots_put(struct stack_slots *s, uint64_t h, uint32_t id)
{
    uint32_t i = (uint32_t)h & s->mask;
    while (atomic_load_explicit(&s->slot[i], memory_order_relaxed))
        i = (i + 1) & s->mask;
    atomic_store_explicit(&s->slot[i], (h >> 32) << 32 | id, memory_order_release);
}

/* A table for count + 1 stacks, at most half full; the old one stays mapped for readers
 * still in it. Called with the lock held. */
static struct stack_slots *slots_make_room(struct stack_slots *s, uint32_t count)
{
    if (s && (count + 1) * 2 <= s->mask + 1)
        return s;
    uint32_t size = s ? (s->mask + 1) * 2 : SLOTS_INITIAL;
    struct stack_slots *n = cmt_raw_map(sizeof *n + size * sizeof n->slot[0]);
    if (!n)
        return NULL;
    n->mask = size - 1;
    for (uint32_t id = 1; id <= count; id++)
        slots_put(n, rec_of(id)->hash, id);
    atomic_store_explicit(&stk.slots, n, memory_order_release);
    return n;
}

static struct stack_rec *pool_take(size_t size)
{
    if ((size_t)(stk.pool_end - stk.pool) < size) {
        char *chunk = cmt_raw_map(POOL_CHUNK);
        if (!chunk)
            return NULL;
        stk.pool = chunk;
        stk.pool_end = chunk + POOL_CHUNK;
    }
    struct stack_rec *r = (struct stack_rec *)stk.pool;
    stk.pool += size;
    return r;
}

enum { ADD_OK, ADD_FULL, ADD_NOMEM };

/* A stack not found without the lock: add it, unless another thread just did. */
static CMT_NOINLINE uint32_t stack_add(uint64_t h, const uintptr_t *pcs, uint32_t n)
{
    int outcome = ADD_OK;
    uint32_t id = 0, count = 0;
    cmt_spin_lock(&stk.lock);
    struct stack_slots *s = atomic_load_explicit(&stk.slots, memory_order_relaxed);
    if (s && (id = slots_find(s, h, pcs, n)) != 0)
        goto out;
    count = atomic_load_explicit(&stk.count, memory_order_relaxed);
    if (count >= cmt_stack_limit || count >= STACK_LIMIT_MAX) {
        outcome = ADD_FULL;
        goto out;
    }
    _Atomic(struct stack_rec **) *slot = &stk.index[count / INDEX_CHUNK];
    struct stack_rec **chunk = atomic_load_explicit(slot, memory_order_relaxed);
    if (!chunk) {
        chunk = cmt_raw_alloc(INDEX_CHUNK * sizeof *chunk);
        if (chunk)
            atomic_store_explicit(slot, chunk, memory_order_release);
    }
    struct stack_rec *r = NULL;
    if (!chunk || !(s = slots_make_room(s, count)) ||
        !(r = pool_take(sizeof *r + n * sizeof *pcs))) {
        outcome = ADD_NOMEM;
        goto out;
    }
    r->hash = h;
    r->depth = n;
    memcpy(r->pcs, pcs, n * sizeof *pcs);
    chunk[count % INDEX_CHUNK] = r;
    id = count + 1;
    /* The count first: whoever finds the id in the table can then read its record. */
    atomic_store_explicit(&stk.count, id, memory_order_release);
    slots_put(s, h, id);
out:
    cmt_spin_unlock(&stk.lock);
    if (outcome != ADD_OK && !atomic_exchange(&stk.full_said, 1)) {
        if (outcome == ADD_FULL)
            cmt_diag("stack table full at %u stacks; allocations from new call paths get "
                     "no stack", count);
        else
            cmt_diag("out of memory for the stack table; allocations from new call paths "
                     "get no stack");
    }
    return id;
}

/* ---- the interface ----------------------------------------------------------------- */

CMT_NOINLINE uint32_t cmt_stack_capture(void)
{
    uintptr_t from = (uintptr_t)__builtin_return_address(0);
    int depth = cmt_cfg.stack_depth;
    if (depth <= 0 || !atomic_load_explicit(&stk.ready, memory_order_acquire))
        return 0;
    if (depth > CMT_STACK_MAX_DEPTH)
        depth = CMT_STACK_MAX_DEPTH;
    uintptr_t pcs[CMT_STACK_MAX_DEPTH];
    int n = unwind(pcs, depth, from);
    if (n <= 0)
        return 0;
    uint64_t h = hash_pcs(pcs, (uint32_t)n);
    const struct stack_slots *s = atomic_load_explicit(&stk.slots, memory_order_acquire);
    uint32_t id = s ? slots_find(s, h, pcs, (uint32_t)n) : 0;
    return cmt_likely(id != 0) ? id : stack_add(h, pcs, (uint32_t)n);
}

CMT_NOINLINE int cmt_stack_walk(cmt_stack_visit visit, void *arg, int max)
{
    uintptr_t from = (uintptr_t)__builtin_return_address(0);
    /* Whatever cmt_cfg.stack_depth says: func: scopes that inspect the stack need it even
     * when allocations get no stacks. */
    if (max <= 0 || !atomic_load_explicit(&stk.ready, memory_order_acquire))
        return 0;
    struct walk w = { .depth = max, .visit = visit, .arg = arg };
    return walk_frames(&w, from);
}

size_t cmt_stack_code_extent(const void *fn)
{
    return fn ? code_extent((uintptr_t)fn) : 0;
}

bool cmt_stack_get(uint32_t id, const uintptr_t **pcs, uint32_t *depth)
{
    if (id == 0 || id > atomic_load_explicit(&stk.count, memory_order_acquire))
        return false;
    const struct stack_rec *r = rec_of(id);
    *pcs = r->pcs;
    *depth = r->depth;
    return true;
}

uint32_t cmt_stack_count(void)
{
    return atomic_load_explicit(&stk.count, memory_order_acquire);
}

void cmt_stack_init(void)
{
    if (atomic_exchange(&stk.started, 1))
        return;
    /* The tracker's own code, skipped at the top of every stack: libcymemtrack.so's text
     * when that is where this file lives; nothing more when it is linked into a program. */
    struct own_search s = { .addr = (uintptr_t)cmt_stack_capture };
    dl_iterate_phdr(find_own, &s);
    if (s.found && !s.in_main) {
        stk.own_lo = s.lo;
        stk.own_hi = s.hi;
    }
    stk.subs = s.subs;
    unwinder_init();
    atomic_store_explicit(&stk.ready, 1, memory_order_release);
}

void cmt_stack_lock_all(void)
{
    unwinder_lock();
    cmt_spin_lock(&stk.lock);
}

void cmt_stack_unlock_all(void)
{
    cmt_spin_unlock(&stk.lock);
    unwinder_unlock();
}
