/*
 * report.c — the report file: gathering what the tracker knows and writing it to disk.
 *
 * Owns the file's name (the CYMEMTRACK_OUTPUT template, creation with O_EXCL so that no
 * other process's file is ever clobbered, the $TMPDIR and /tmp fallbacks), the buffered
 * writer, and the gathering of every record of report-format.h. Never allocates through the
 * tracked allocator (memory comes from mmap) and never calls stdio: file I/O is raw system
 * calls, which are async-signal-safe, are no cancellation points and cannot be intercepted by
 * another preloaded library. Its own I/O trouble gives one diagnostic line a process and
 * never changes the program's exit status.
 */
#define _GNU_SOURCE
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cmt.h"
#include "report-format.h"

/* The write buffer. Every record is built whole in it, so that its length can be filled in
 * after its payload: the largest record (PROCESS, bounded by PROCESS_MAX) must fit. */
#define WBUF_SIZE ((size_t)256 * 1024)
/* ---- the report's own memory ---------------------------------------------------------- */

/* A final report or a snapshot that can get no mapping (the program has used up its address
 * space or vm.max_map_count: a program that maps until mmap fails, then exits) takes its
 * arrays and its buffer from this spare area instead, so that it is written whole. It lies
 * in the library's .bss: it costs no memory until such a report touches it, and none is
 * given back after (the process is ending, or made a snapshot with nothing to spare). One
 * writer at a time uses it, under the report lock; each write starts it empty. */
#define SPARE_SIZE ((size_t)2 << 20)
static unsigned char spare[SPARE_SIZE] __attribute__((aligned(4096)));
static size_t spare_used;
static bool spare_allowed;

/* Zeroed memory of size bytes for the report being written; NULL when none can be had. */
static void *report_map(size_t size)
{
    void *p = cmt_raw_map(size);
    if (p || !spare_allowed)
        return p;
    size = (size + 63) & ~(size_t)63;
    if (size > SPARE_SIZE - spare_used)
        return NULL;
    p = spare + spare_used;
    spare_used += size;
    memset(p, 0, size);
    return p;
}

static void report_unmap(void *p, size_t size)
{
    if ((unsigned char *)p < spare || (unsigned char *)p >= spare + SPARE_SIZE)
        cmt_raw_unmap(p, size);
}
#define PROCESS_MAX ((size_t)96 * 1024)
/* Bytes of command line a report keeps; a longer one loses its last arguments. */
#define ARGV_BUDGET ((size_t)64 * 1024)
#define LABEL_MAX 4096u
#define BUILD_ID_MAX 64u
#define NAME_STR_MAX 256u
/* Suffixes tried when the file name is taken: name.1.cmt ... name.999.cmt. */
#define SUFFIX_MAX 999

enum { FLAG_CAREFUL = 1, FLAG_TRY = 2 };

/* ---- raw system calls ----------------------------------------------------------------- */

static int sys_open(const char *path, int flags, int mode)
{
    return (int)syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, mode);
}

static void sys_close(int fd)
{
    syscall(SYS_close, fd);
}

static long sys_read(int fd, void *buf, size_t n)
{
    long r;
    do
        r = syscall(SYS_read, fd, buf, n);
    while (r < 0 && errno == EINTR);
    return r;
}

static pid_t sys_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A reason for a diagnostic, without strerror (which may allocate and consult the locale). */
static const char *reason(int e)
{
    switch (e) {
    case EACCES: return "permission denied";
    case EPERM: return "operation not permitted";
    case EROFS: return "read-only file system";
    case ENOSPC: return "no space left on device";
    case EDQUOT: return "disk quota exceeded";
    case EFBIG: return "file size limit reached";
    case ENOENT: return "no such file or directory";
    case ENOTDIR: return "a path component is not a directory";
    case EISDIR: return "is a directory";
    case ENAMETOOLONG: return "file name too long";
    case ELOOP: return "too many symbolic links";
    case EEXIST: return "file exists";
    case EMFILE: case ENFILE: return "too many open files";
    case ENOMEM: return "out of memory";
    case EIO: return "input/output error";
    case ENOSYS: return "function not implemented (refused by a sandbox?)";
    default: return "system error";
    }
}

/* ---- state -------------------------------------------------------------------------- */

static struct {
    atomic_int owner;           /* thread id of the writer, 0 when none; the report lock */
    bool held_for_fork;         /* the fork handler got the lock (it gives up after 10 s) */
    /* Everything below is used only by the lock's owner, or before threads exist. */
    pid_t file_pid;             /* the process whose file `path` names; 0 before any */
    bool have_file;             /* path was created by this process */
    bool final_written;         /* an ending was written: checkpoints stop */
    bool said;                  /* this process has had its diagnostic about the file */
    uint64_t start_ns;          /* when the tracker started in this process */
    rlim_t fsize_limit;         /* RLIMIT_FSIZE during the current write */
    char path[CMT_PATH_MAX + 16];
    char tmp[CMT_PATH_MAX + 32];
    char expanded[CMT_PATH_MAX];
    char first_try[CMT_PATH_MAX];
    char exe[CMT_PATH_MAX];     /* /proc/self/exe at start */
    char cwd[CMT_PATH_MAX];     /* the working directory at start; "" when unknown */
    char tmpdir[CMT_PATH_MAX];  /* $TMPDIR at start; "" when unset */
    /* Allocation sites, per scope name: what all of them add up to, and what the sites too
     * small to list add up to (see site_listed). */
    struct site_sum {
        uint64_t allocs, bytes;
    } site_total[CMT_NAME_MAX], site_small[CMT_NAME_MAX];
    char io[8192];              /* /proc reads */
    char line[CMT_PATH_MAX + 256];
    char obj_path[CMT_PATH_MAX];
    char dir[CMT_PATH_MAX];     /* a fallback directory, with its slash */
} rep;

/* ---- the buffered writer ------------------------------------------------------------ */

struct writer {
    int fd;
    unsigned char *buf;
    size_t len;
    size_t rec;                 /* start of the record being built */
    uint64_t off;               /* file offset of buf[0] */
    int error;                  /* errno of the first failed write; 0 while all is well */
};

/* Writes out the buffer. Never writes at or past RLIMIT_FSIZE: the kernel would send
 * SIGXFSZ, whose default action kills the program; a short write up to the limit is safe. */
static void w_flush(struct writer *w)
{
    size_t done = 0;
    while (done < w->len && !w->error) {
        size_t n = w->len - done;
        uint64_t at = w->off + done;
        if (rep.fsize_limit != RLIM_INFINITY) {
            if (at >= rep.fsize_limit) {
                w->error = EFBIG;
                break;
            }
            if (n > rep.fsize_limit - at)
                n = (size_t)(rep.fsize_limit - at);
        }
        long r = syscall(SYS_write, w->fd, w->buf + done, n);
        if (r < 0) {
            if (errno != EINTR)
                w->error = errno;
            continue;
        }
        if (r == 0) {
            w->error = ENOSPC;
            break;
        }
        done += (size_t)r;
    }
    w->off += done;
    w->len = 0;
}

static void put_bytes(struct writer *w, const void *p, size_t n)
{
    if (n > WBUF_SIZE - w->len)     /* cannot happen: records reserve their room */
        n = WBUF_SIZE - w->len;
    if (n)      /* p may be NULL then (a module without build-id): memcpy must not see it */
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_u8(struct writer *w, uint8_t v)
{
    put_bytes(w, &v, 1);
}

static void put_u32(struct writer *w, uint32_t v)
{
    unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24) };
    put_bytes(w, b, 4);
}

static void put_u64(struct writer *w, uint64_t v)
{
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}

static void patch_u32(struct writer *w, size_t at, uint32_t v)
{
    unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24) };
    memcpy(w->buf + at, b, 4);
}

static void put_str(struct writer *w, const char *s, size_t n)
{
    put_u32(w, (uint32_t)n);
    put_bytes(w, s, n);
}

/* Opens a record whose payload is at most max bytes. */
static void w_begin(struct writer *w, uint32_t type, size_t max)
{
    if (WBUF_SIZE - w->len < 8 + max)
        w_flush(w);
    w->rec = w->len;
    put_u32(w, type);
    put_u32(w, 0);
}

static void w_end(struct writer *w)
{
    patch_u32(w, w->rec + 4, (uint32_t)(w->len - w->rec - 8));
}

/* ---- leaks, aggregated per (scope name, stack) -------------------------------------- */

struct leak {
    uint64_t key;               /* LEAK_USED | name << 32 | stack; 0 when empty */
    uint64_t blocks, bytes, blocks_closed, bytes_closed;
    uint32_t nsamples;
    uint64_t sample[CMT_LEAK_SAMPLES];
};

#define LEAK_USED (UINT64_C(1) << 63)
#define LEAKS_INITIAL 4096u

struct gather {
    struct leak *slot;
    size_t cap, used;           /* cap: a power of two, or 0 when out of memory */
    bool oom;
    uint64_t blocks, bytes;     /* every live block seen, with or without a leak entry */
    uint64_t skipped_shards;    /* careful walks: shards locked by somebody who never let go */
    /* The entry leak_visit found last, for which instance and stack, and whether that
     * instance was closed; last is NULL when there is none. */
    struct leak *last;
    uint32_t last_instance, last_stack;
    bool last_closed;
    /* The records the walk of the young sets saw, and their index by address (see
     * young_visit); seen_cap is 0 when there is no index. */
    struct cmt_block *young;
    size_t nyoung;
    bool young_oom;
    uint32_t *seen;
    size_t seen_cap;
    uint8_t *stack_used;        /* bitmap of stack ids referenced */
    size_t stack_used_size;
    uint32_t stacks;            /* ids 1..stacks may be referenced */
};

static size_t leak_home(uint64_t key, size_t cap)
{
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 20) & (cap - 1);
}

static bool leaks_grow(struct gather *g)
{
    size_t cap = g->cap ? g->cap * 2 : LEAKS_INITIAL;
    struct leak *slot = report_map(cap * sizeof *slot);
    if (!slot)
        return false;
    for (size_t i = 0; i < g->cap; i++) {
        if (!g->slot[i].key)
            continue;
        size_t j = leak_home(g->slot[i].key, cap);
        while (slot[j].key)
            j = (j + 1) & (cap - 1);
        slot[j] = g->slot[i];
    }
    if (g->slot)
        report_unmap(g->slot, g->cap * sizeof *g->slot);
    g->slot = slot;
    g->cap = cap;
    g->last = NULL;     /* it pointed into the old slots */
    return true;
}

static struct leak *leak_find(struct gather *g, uint32_t name, uint32_t stack)
{
    if (g->oom)
        return NULL;
    if ((g->used + 1) * 2 > g->cap && !leaks_grow(g)) {
        g->oom = true;
        return NULL;
    }
    uint64_t key = LEAK_USED | (uint64_t)name << 32 | stack;
    size_t i = leak_home(key, g->cap);
    while (g->slot[i].key && g->slot[i].key != key)
        i = (i + 1) & (g->cap - 1);
    if (!g->slot[i].key) {
        g->slot[i].key = key;
        g->used++;
    }
    return &g->slot[i];
}

/* Called for each live block with its shard locked: touches nothing but the gather. */
static void leak_visit(const struct cmt_block *b, void *arg)
{
    struct gather *g = arg;
    if (b->flags & CMT_BLOCK_QUARANTINED)
        return;     /* bulk-freed, waiting in quarantine: no live block */
    size_t size = cmt_block_size(b);
    g->blocks++;
    g->bytes += size;
    /* Blocks met one after the other mostly share instance and stack (with stacks off, all
     * of a scope's do): the entry found last is tried first, with the instance's state as it
     * was then. */
    struct leak *l = g->last;
    if (!l || b->instance != g->last_instance || b->stack != g->last_stack) {
        const struct cmt_instance *inst = cmt_instance_get(b->instance);
        uint32_t name = inst ? inst->name : CMT_NAME_GLOBAL;
        if (!(l = leak_find(g, name, b->stack)))
            return;
        g->last = l;
        g->last_instance = b->instance;
        g->last_stack = b->stack;
        g->last_closed = inst && atomic_load_explicit(&inst->state, memory_order_acquire) ==
                                     CMT_STATE_CLOSED;
    }
    l->blocks++;
    l->bytes += size;
    if (g->last_closed) {
        l->blocks_closed++;
        l->bytes_closed += size;
    }
    if (l->nsamples < CMT_LEAK_SAMPLES)
        l->sample[l->nsamples++] = b->ptr;
}

/* The young sets are walked before the table. A block always is in one or the other: its
 * owner moves it to the table (under the shard lock) before it empties its slot. Walked in
 * this order, a block moved meanwhile is seen in its slot and again in the table, never in
 * neither; the table's copy of a record the sets' walk saw (same address, sequence number
 * and thread) is then skipped. The records seen are kept in the order seen, and indexed by
 * address in a table sized to their number: every block of the table is looked up there,
 * so the index must stay small enough to live in the cache (a few KiB for one thread). */
#define YOUNG_MAX ((size_t)CMT_YOUNG_SETS * CMT_YOUNG_SLOTS)

static size_t seen_home(uintptr_t ptr, size_t cap)
{
    return (size_t)(((uint64_t)ptr * UINT64_C(0x9E3779B97F4A7C15)) >> 40) & (cap - 1);
}

static void young_visit(const struct cmt_block *b, void *arg)
{
    struct gather *g = arg;
    leak_visit(b, g);
    if (!g->young && !g->young_oom) {
        g->young = report_map(YOUNG_MAX * sizeof *g->young);  /* touched as far as used */
        g->young_oom = g->young == NULL;
    }
    /* Out of memory, a block moved during the walk may be counted twice. The walk sees each
     * slot once: no more than YOUNG_MAX records. */
    if (g->young && g->nyoung < YOUNG_MAX)
        g->young[g->nyoung++] = *b;
}

/* Indexes the records of the sets' walk: seen[i] is 1 + their position, 0 when empty. */
static void seen_index(struct gather *g)
{
    if (!g->nyoung)
        return;
    /* Mostly empty, so that most lookups (blocks that were not young) end at once. */
    size_t cap = 16;
    while (cap < 8 * g->nyoung)
        cap *= 2;
    g->seen = report_map(cap * sizeof *g->seen);
    if (!g->seen)
        return;     /* as in young_visit */
    g->seen_cap = cap;
    for (size_t k = 0; k < g->nyoung; k++) {
        size_t i = seen_home(g->young[k].ptr, cap);
        while (g->seen[i])
            i = (i + 1) & (cap - 1);
        g->seen[i] = (uint32_t)(k + 1);
    }
}

static bool seen_young(const struct gather *g, const struct cmt_block *b)
{
    for (size_t i = seen_home(b->ptr, g->seen_cap); g->seen[i]; i = (i + 1) & (g->seen_cap - 1)) {
        const struct cmt_block *y = &g->young[g->seen[i] - 1];
        if (y->ptr == b->ptr && y->seq == b->seq && y->size_thread == b->size_thread)
            return true;
    }
    return false;
}

static void table_visit(const struct cmt_block *b, void *arg)
{
    struct gather *g = arg;
    if (!g->seen_cap || !seen_young(g, b))
        leak_visit(b, g);
}

/* Takes a shard lock the way a signal handler may: the interrupted code of this very thread
 * may hold it and cannot let go until the handler returns, so give up after a while. Other
 * threads hold a shard lock for a few instructions. */
static bool shard_lock_patient(cmt_spinlock *l)
{
    for (int n = 0; n < 2000; n++) {
        if (cmt_spin_trylock(l))
            return true;
        __builtin_ia32_pause();
    }
    for (int n = 0; n < 200; n++) {
        syscall(SYS_sched_yield);
        if (cmt_spin_trylock(l))
            return true;
    }
    return false;
}

static void walk_careful(struct gather *g)
{
    for (size_t k = 0; k < CMT_TABLE_SHARDS; k++) {
        struct cmt_shard *s = &cmt_live.shard[k];
        if (!shard_lock_patient(&s->lock)) {
            g->skipped_shards++;
            continue;
        }
        if (s->slots)
            for (uint32_t i = 0; i <= s->mask; i++)
                if (s->slots[i].ptr != 0)
                    table_visit(&s->slots[i], g);
        cmt_spin_unlock(&s->lock);
    }
}

static void mark_stack(struct gather *g, uint32_t id)
{
    if (id != 0 && id <= g->stacks && g->stack_used)
        g->stack_used[id >> 3] |= (uint8_t)(1u << (id & 7));
}

static bool stack_marked(const struct gather *g, uint32_t id)
{
    return id != 0 && id <= g->stacks && g->stack_used &&
           (g->stack_used[id >> 3] & (1u << (id & 7)));
}

/* Stack ids are handed out in order and never taken back, so every id already stored in a
 * block or a bad-free entry is at most the count read after the walk. */
static void mark_bf(const struct cmt_badfree_entry *e, void *arg)
{
    mark_stack(arg, e->stack);
}

/* An allocation site is listed with its stack when it has at least 1/SITE_SHARE of its
 * scope's allocations or bytes; the others are summed under no stack. A flame graph cannot
 * show them (a ten-thousandth of its width), and an interpreter has thousands of them: a
 * python3 run had 5570 sites, of which 33 held 99.6% of the bytes, and listing them all made
 * its report 30 times larger. Each record is judged alone (a pair counted in a thread's cache
 * and in the shared table may come in two), which only moves bytes between a site and no
 * stack: per scope, the sums stay exact. */
#define SITE_SHARE 10000u

static void sum_sc(const struct cmt_stackcount_entry *e, void *arg)
{
    (void)arg;
    if (e->name < CMT_NAME_MAX) {
        rep.site_total[e->name].allocs += e->allocs;
        rep.site_total[e->name].bytes += e->bytes;
    }
}

static bool site_listed(const struct cmt_stackcount_entry *e)
{
    if (e->stack == 0 || e->name >= CMT_NAME_MAX)
        return false;
    const struct site_sum *t = &rep.site_total[e->name];
    return e->allocs >= t->allocs / SITE_SHARE + (t->allocs % SITE_SHARE != 0) ||
           e->bytes >= t->bytes / SITE_SHARE + (t->bytes % SITE_SHARE != 0);
}

static void mark_sc(const struct cmt_stackcount_entry *e, void *arg)
{
    if (site_listed(e))
        mark_stack(arg, e->stack);
}

static void gather(struct gather *g, bool careful)
{
    memset(g, 0, sizeof *g);
    cmt_young_foreach(young_visit, g);      /* first: see table_visit */
    seen_index(g);
    if (careful)
        walk_careful(g);
    else
        cmt_table_foreach(&cmt_live, table_visit, g);
    g->stacks = cmt_stack_count();
    g->stack_used_size = ((size_t)g->stacks >> 3) + 1;
    g->stack_used = report_map(g->stack_used_size);
    if (!g->stack_used)
        g->stacks = 0;  /* out of memory: leaks are listed without their stacks */
    for (size_t i = 0; i < g->cap; i++)
        if (g->slot[i].key)
            mark_stack(g, (uint32_t)g->slot[i].key);
    cmt_badfree_foreach(mark_bf, g);
    memset(rep.site_total, 0, sizeof rep.site_total);
    cmt_stackcount_foreach(sum_sc, g);
    cmt_stackcount_foreach(mark_sc, g);
}

static void gather_release(struct gather *g)
{
    if (g->young)
        report_unmap(g->young, YOUNG_MAX * sizeof *g->young);
    if (g->seen)
        report_unmap(g->seen, g->seen_cap * sizeof *g->seen);
    if (g->slot)
        report_unmap(g->slot, g->cap * sizeof *g->slot);
    if (g->stack_used)
        report_unmap(g->stack_used, g->stack_used_size);
}

/* ---- PROCESS ------------------------------------------------------------------------ */

/* Streams /proc/self/cmdline into the open record: u32 argc, then each argument. */
static void put_argv(struct writer *w)
{
    size_t argc_at = w->len;
    put_u32(w, 0);
    uint32_t argc = 0;
    size_t budget = ARGV_BUDGET;
    size_t arg_at = 0;
    bool in_arg = false, full = false;
    int fd = sys_open("/proc/self/cmdline", O_RDONLY, 0);
    if (fd >= 0) {
        long n;
        while (!full && (n = sys_read(fd, rep.io, sizeof rep.io)) > 0) {
            for (long i = 0; i < n && !full; i++) {
                if (!in_arg) {
                    if (budget < 5) {
                        full = true;
                        break;
                    }
                    arg_at = w->len;
                    put_u32(w, 0);
                    budget -= 4;
                    in_arg = true;
                    argc++;
                }
                if (rep.io[i] == '\0') {
                    patch_u32(w, arg_at, (uint32_t)(w->len - arg_at - 4));
                    in_arg = false;
                } else if (budget > 0) {
                    put_u8(w, (uint8_t)rep.io[i]);
                    budget--;
                }
            }
        }
        sys_close(fd);
    }
    if (in_arg)     /* a last argument without its NUL (a program that rewrote its argv) */
        patch_u32(w, arg_at, (uint32_t)(w->len - arg_at - 4));
    patch_u32(w, argc_at, argc);
}

static void put_process(struct writer *w)
{
    w_begin(w, CMT_REC_PROCESS, PROCESS_MAX);
    put_u32(w, (uint32_t)syscall(SYS_getpid));
    put_u32(w, (uint32_t)syscall(SYS_getppid));
    put_u64(w, rep.start_ns);
    put_u64(w, clock_ns(CLOCK_REALTIME));
    put_str(w, rep.exe, strlen(rep.exe));
    put_argv(w);
    w_end(w);
}

/* ---- MODULE ------------------------------------------------------------------------- */

/* Finds the GNU build-id in a note segment the caller made sure is mapped and readable. */
static size_t build_id_in(const unsigned char *p, size_t len, size_t align,
                          const unsigned char **id)
{
    if (align != 8)
        align = 4;
    size_t off = 0;
    while (len - off >= sizeof(ElfW(Nhdr))) {
        ElfW(Nhdr) nh;
        memcpy(&nh, p + off, sizeof nh);
        size_t name_at = off + sizeof nh;
        size_t desc_at = name_at + ((nh.n_namesz + align - 1) & ~(align - 1));
        size_t next = desc_at + ((nh.n_descsz + align - 1) & ~(align - 1));
        if (nh.n_namesz > len || nh.n_descsz > len || desc_at > len || next > len ||
            desc_at + nh.n_descsz > len)
            return 0;
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 &&
            memcmp(p + name_at, "GNU", 4) == 0 && nh.n_descsz <= BUILD_ID_MAX) {
            *id = p + desc_at;
            return nh.n_descsz;
        }
        off = next;
    }
    return 0;
}

/* The build-id of an object whose program headers are at phdr, loaded with bias; only
 * notes inside [lo, hi) are read. */
static size_t build_id_of(uintptr_t bias, const ElfW(Phdr) *phdr, size_t phnum, uintptr_t lo,
                          uintptr_t hi, const unsigned char **id)
{
    for (size_t i = 0; i < phnum; i++) {
        if (phdr[i].p_type != PT_NOTE)
            continue;
        uintptr_t at = bias + phdr[i].p_vaddr;
        size_t len = phdr[i].p_filesz;
        if (at < lo || at > hi || len > hi - at)
            continue;
        size_t n = build_id_in((const unsigned char *)at, len, phdr[i].p_align, id);
        if (n)
            return n;
    }
    return 0;
}

static void put_module(struct writer *w, uint64_t start, uint64_t end, uint64_t offset,
                       const char *path, size_t path_len, const unsigned char *id,
                       size_t id_len)
{
    if (path_len >= CMT_PATH_MAX)
        path_len = CMT_PATH_MAX - 1;
    w_begin(w, CMT_REC_MODULE, 24 + 8 + CMT_PATH_MAX + BUILD_ID_MAX);
    put_u64(w, start);
    put_u64(w, end);
    put_u64(w, offset);
    put_str(w, path, path_len);
    put_u32(w, (uint32_t)id_len);
    put_bytes(w, id, id_len);
    w_end(w);
}

/* From the loader's list: exact segments, and no dependence on /proc. */
static int module_visit(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct writer *w = arg;
    if ((uintptr_t)info->dlpi_addr != 0 &&
        info->dlpi_addr == (ElfW(Addr))getauxval(AT_SYSINFO_EHDR))
        return 0;   /* the vDSO: no file to symbolize from */
    const char *path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : rep.exe;
    if (!path[0])
        return 0;
    uintptr_t page = (uintptr_t)getpagesize();
    /* Notes live in a loaded segment; reading them is bounded by that segment. */
    const unsigned char *id = NULL;
    size_t id_len = 0;
    for (size_t i = 0; i < info->dlpi_phnum && !id_len; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD)
            id_len = build_id_of(info->dlpi_addr, info->dlpi_phdr, info->dlpi_phnum,
                                 info->dlpi_addr + ph->p_vaddr,
                                 info->dlpi_addr + ph->p_vaddr + ph->p_filesz, &id);
    }
    for (size_t i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X))
            continue;
        uintptr_t start = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
        uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        put_module(w, start, end, ph->p_offset & ~(uint64_t)(page - 1), path, strlen(path), id,
                   id_len);
    }
    return 0;
}

static bool parse_hex(const char **p, uint64_t *out)
{
    uint64_t v = 0;
    const char *s = *p;
    int n = 0;
    for (;; s++, n++) {
        unsigned d;
        if (*s >= '0' && *s <= '9')
            d = (unsigned)(*s - '0');
        else if (*s >= 'a' && *s <= 'f')
            d = (unsigned)(*s - 'a' + 10);
        else
            break;
        v = v << 4 | d;
    }
    *p = s;
    *out = v;
    return n > 0;
}

/* The mapping that holds an object's ELF header, the most recent one seen. */
struct obj {
    uintptr_t start, end;
    bool readable;
};

static size_t build_id_from_header(const struct obj *o, const unsigned char **id)
{
    if (!o->readable || o->end - o->start < sizeof(ElfW(Ehdr)))
        return 0;
    const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)o->start;
    if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_phentsize != sizeof(ElfW(Phdr)) || eh->e_phoff > o->end - o->start ||
        (size_t)eh->e_phnum * sizeof(ElfW(Phdr)) > o->end - o->start - eh->e_phoff)
        return 0;
    const ElfW(Phdr) *ph = (const ElfW(Phdr) *)(o->start + eh->e_phoff);
    /* The first PT_LOAD maps file offset 0 at this mapping's start. */
    uintptr_t page = (uintptr_t)getpagesize();
    for (size_t i = 0; i < eh->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD)
            continue;
        uintptr_t bias = o->start - (ph[i].p_vaddr & ~(page - 1));
        return build_id_of(bias, ph, eh->e_phnum, o->start, o->end, id);
    }
    return 0;
}

static void maps_line(struct writer *w, const char *s, struct obj *o)
{
    uint64_t start, end, offset, ignored;
    if (!parse_hex(&s, &start) || *s++ != '-' || !parse_hex(&s, &end) || *s++ != ' ')
        return;
    char perm_r = s[0], perm_x = s[2];
    while (*s && *s != ' ')
        s++;
    if (*s++ != ' ' || !parse_hex(&s, &offset) || *s++ != ' ')
        return;
    while (*s && *s != ' ')     /* device */
        s++;
    if (*s++ != ' ' || !parse_hex(&s, &ignored))  /* inode, decimal, parsed loosely */
        return;
    while (*s == ' ' || (*s >= '0' && *s <= '9'))
        s++;
    const char *path = s;
    size_t path_len = strlen(path);
    if (path[0] != '/')
        return;     /* anonymous memory, [stack], [vdso]: nothing to symbolize from */
    if (offset == 0) {
        o->start = (uintptr_t)start;
        o->end = (uintptr_t)end;
        o->readable = perm_r == 'r';
        if (path_len >= sizeof rep.obj_path)
            path_len = sizeof rep.obj_path - 1;
        memcpy(rep.obj_path, path, path_len);
        rep.obj_path[path_len] = '\0';
    }
    if (perm_x != 'x')
        return;
    const unsigned char *id = NULL;
    size_t id_len = 0;
    if (strcmp(path, rep.obj_path) == 0)
        id_len = build_id_from_header(o, &id);
    put_module(w, start, end, offset, path, path_len, id, id_len);
}

/* From /proc/self/maps: no lock, so usable where the loader's lock may be held by the code
 * this thread interrupted. Returns false when the file cannot be read. */
static bool modules_from_maps(struct writer *w)
{
    int fd = sys_open("/proc/self/maps", O_RDONLY, 0);
    if (fd < 0)
        return false;
    struct obj o = { 0, 0, false };
    rep.obj_path[0] = '\0';
    size_t line_len = 0;
    bool too_long = false;
    long n;
    while ((n = sys_read(fd, rep.io, sizeof rep.io)) > 0) {
        for (long i = 0; i < n; i++) {
            char c = rep.io[i];
            if (c != '\n') {
                if (line_len < sizeof rep.line - 1)
                    rep.line[line_len++] = c;
                else
                    too_long = true;
                continue;
            }
            rep.line[line_len] = '\0';
            if (!too_long)
                maps_line(w, rep.line, &o);
            line_len = 0;
            too_long = false;
        }
    }
    sys_close(fd);
    return true;
}

static void put_modules(struct writer *w, bool careful)
{
    /* dl_iterate_phdr takes the loader's lock, which the code a signal interrupted may hold
     * with the list of objects half updated; so a careful write reads /proc/self/maps. */
    if (careful) {
        if (modules_from_maps(w))
            return;
        if (!rep.said)
            cmt_diag("cannot read /proc/self/maps; the report has no module map");
        rep.said = true;
        return;
    }
    dl_iterate_phdr(module_visit, w);
}

/* ---- the other records -------------------------------------------------------------- */

static void put_stacks(struct writer *w, const struct gather *g)
{
    for (uint32_t id = 1; id <= g->stacks; id++) {
        if (!stack_marked(g, id))
            continue;
        const uintptr_t *pcs = NULL;
        uint32_t depth = 0;
        if (!cmt_stack_get(id, &pcs, &depth))
            depth = 0;  /* keeps the id defined for the records that name it */
        if (depth > CMT_REPORT_MAX_DEPTH)
            depth = CMT_REPORT_MAX_DEPTH;
        w_begin(w, CMT_REC_STACK, 8 + 8 * CMT_REPORT_MAX_DEPTH);
        put_u32(w, id);
        put_u32(w, depth);
        for (uint32_t i = 0; i < depth; i++)
            put_u64(w, pcs[i]);
        w_end(w);
    }
}

static uint32_t stack_ref(const struct gather *g, uint32_t id)
{
    return stack_marked(g, id) ? id : 0;
}

struct sums {
    uint64_t allocs, bytes_allocated, frees;
    uint32_t names;     /* SCOPE records written, ids 0 to names - 1 */
};

static void put_scopes(struct writer *w, struct sums *sum)
{
    uint32_t names = cmt_name_count();
    sum->names = names;
    for (uint32_t n = 0; n < names; n++) {
        struct cmt_counters c;
        uint64_t instances;
        cmt_name_counters(n, &c, &instances);
        sum->allocs += c.allocs;
        sum->bytes_allocated += c.bytes_allocated;
        sum->frees += c.frees;
        const char *name = cmt_name_string(n);
        size_t len = strnlen(name, NAME_STR_MAX);
        w_begin(w, CMT_REC_SCOPE, 4 + 1 + 4 + NAME_STR_MAX + 9 * 8);
        put_u32(w, n);
        put_u8(w, (uint8_t)cmt_name_kind(n));
        put_str(w, name, len);
        put_u64(w, instances);
        put_u64(w, c.allocs);
        put_u64(w, c.bytes_allocated);
        put_u64(w, c.frees);
        put_u64(w, c.bytes_freed);
        put_u64(w, c.outlived_at_close);
        put_u64(w, c.bulk_freed_blocks);
        put_u64(w, c.bulk_freed_bytes);
        put_u64(w, c.peak_live_bytes);
        w_end(w);
    }
}

static void put_leaks(struct writer *w, const struct gather *g)
{
    for (size_t i = 0; i < g->cap; i++) {
        const struct leak *l = &g->slot[i];
        if (!l->key)
            continue;
        w_begin(w, CMT_REC_LEAK, 4 + 4 + 4 * 8 + 4 + 8 * CMT_LEAK_SAMPLES);
        put_u32(w, (uint32_t)(l->key >> 32) & 0x7fffffffu);
        put_u32(w, stack_ref(g, (uint32_t)l->key));
        put_u64(w, l->blocks);
        put_u64(w, l->bytes);
        put_u64(w, l->blocks_closed);
        put_u64(w, l->bytes_closed);
        put_u32(w, l->nsamples);
        for (uint32_t k = 0; k < l->nsamples; k++)
            put_u64(w, l->sample[k]);
        w_end(w);
    }
}

struct bf_ctx {
    struct writer *w;
    const struct gather *g;
};

/* A name interned after put_scopes ran has no SCOPE record: its counts are left out, as
 * its allocations are of the SCOPE records. A stack not marked (captured after the gather)
 * is written as 0, so that the counts still add up. */
struct sc_ctx {
    struct writer *w;
    const struct gather *g;
    uint32_t names;
};

static void put_allocsite_record(struct writer *w, uint32_t name, uint32_t stack,
                                 uint64_t allocs, uint64_t bytes)
{
    w_begin(w, CMT_REC_ALLOCSITE, 4 + 4 + 8 + 8);
    put_u32(w, name);
    put_u32(w, stack);
    put_u64(w, allocs);
    put_u64(w, bytes);
    w_end(w);
}

static void put_allocsite(const struct cmt_stackcount_entry *e, void *arg)
{
    struct sc_ctx *c = arg;
    if (e->name >= c->names)
        return;
    if (site_listed(e)) {
        put_allocsite_record(c->w, e->name, stack_ref(c->g, e->stack), e->allocs, e->bytes);
    } else {
        rep.site_small[e->name].allocs += e->allocs;
        rep.site_small[e->name].bytes += e->bytes;
    }
}

/* Every allocation site of the scopes, those too small to list summed under no stack. */
static void put_allocsites(struct writer *w, const struct gather *g, uint32_t names)
{
    struct sc_ctx sc = { w, g, names };
    memset(rep.site_small, 0, sizeof rep.site_small);
    cmt_stackcount_foreach(put_allocsite, &sc);
    for (uint32_t n = 0; n < names && n < CMT_NAME_MAX; n++)
        if (rep.site_small[n].allocs)
            put_allocsite_record(w, n, 0, rep.site_small[n].allocs, rep.site_small[n].bytes);
}

static void put_badfree(const struct cmt_badfree_entry *e, void *arg)
{
    struct bf_ctx *c = arg;
    w_begin(c->w, CMT_REC_BADFREE, 1 + 4 + 4 + 8 + 8);
    put_u8(c->w, (uint8_t)e->kind);
    put_u32(c->w, stack_ref(c->g, e->stack));
    put_u32(c->w, e->name);
    put_u64(c->w, e->count);
    put_u64(c->w, e->sample);
    w_end(c->w);
}

_Static_assert(CMT_TIMELINE_TOP + 1 <= CMT_TIMELINE_MAX_SCOPES,
               "a timeline sample must fit a TIMELINE record");

/* A sample names scope names, which are the SCOPE records' ids (put_scopes); a name interned
 * after put_scopes ran joins "the others". */
struct tl_ctx {
    struct writer *w;
    uint32_t names;
};

static void put_timeline(const struct cmt_timeline_sample *s, void *arg)
{
    struct tl_ctx *c = arg;
    uint64_t other = 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->name[i] < c->names)
            n++;
        else
            other += s->live[i];
    }
    w_begin(c->w, CMT_REC_TIMELINE, 8 + 4 + 12 * CMT_TIMELINE_MAX_SCOPES);
    put_u64(c->w, s->unix_ns);
    put_u32(c->w, n + (other ? 1 : 0));
    for (uint32_t i = 0; i < s->n; i++) {
        if (s->name[i] < c->names) {
            put_u32(c->w, s->name[i]);
            put_u64(c->w, s->live[i]);
        }
    }
    if (other) {
        put_u32(c->w, UINT32_MAX);
        put_u64(c->w, other);
    }
    w_end(c->w);
}

static void put_totals(struct writer *w, const struct gather *g, const struct sums *sum,
                       bool careful)
{
    /* The writing thread's live bytes join the shared total first, unless a signal
     * interrupted it in the middle of updating them. */
    if (!careful)
        cmt_totals_flush(&cmt_self);
    uint64_t peak = atomic_load_explicit(&cmt_peak_live_bytes, memory_order_relaxed);
    if (peak < g->bytes)
        peak = g->bytes;    /* other threads' unfolded deltas; the peak is at least now */
    w_begin(w, CMT_REC_TOTALS, 9 * 8);
    put_u64(w, sum->allocs);
    put_u64(w, sum->bytes_allocated);
    put_u64(w, sum->frees);
    put_u64(w, g->blocks);
    put_u64(w, g->bytes);
    put_u64(w, peak);
    put_u64(w, atomic_load_explicit(&cmt_invalid_frees, memory_order_relaxed));
    put_u64(w, atomic_load_explicit(&cmt_double_frees, memory_order_relaxed));
    put_u64(w, atomic_load_explicit(&cmt_stale_frees, memory_order_relaxed));
    w_end(w);
}

static void put_end(struct writer *w, int how, int code, const char *label)
{
    size_t len = label ? strnlen(label, LABEL_MAX) : 0;
    w_begin(w, CMT_REC_END, 1 + 4 + 4 + LABEL_MAX);
    put_u8(w, (uint8_t)how);
    put_u32(w, (uint32_t)code);
    put_str(w, label ? label : "", len);
    w_end(w);
}

/* ---- the file ----------------------------------------------------------------------- */

/* Appends s to buf (size CMT_PATH_MAX) at *len; false when it does not fit. */
static bool append(char *buf, size_t size, size_t *len, const char *s, size_t n)
{
    if (*len + n >= size)
        return false;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
    return true;
}

static const char *exe_base(void)
{
    const char *slash = strrchr(rep.exe, '/');
    const char *base = slash ? slash + 1 : rep.exe;
    if (!*base) {
        extern char *program_invocation_short_name;
        base = program_invocation_short_name ? program_invocation_short_name : "unknown";
    }
    return base;
}

/* Appends template t, expanded, to rep.expanded at *len. */
static bool expand_part(const char *t, pid_t pid, size_t *len)
{
    bool ok = true;
    for (const char *p = t; *p && ok; p++) {
        if (p[0] == '%' && p[1] == 'p') {
            char num[16];
            size_t n = cmt_format(num, sizeof num, "%d", (int)pid);
            ok = append(rep.expanded, sizeof rep.expanded, len, num, n);
            p++;
        } else if (p[0] == '%' && p[1] == 'e') {
            const char *base = exe_base();
            ok = append(rep.expanded, sizeof rep.expanded, len, base, strlen(base));
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            ok = append(rep.expanded, sizeof rep.expanded, len, "%", 1);
            p++;
        } else {
            ok = append(rep.expanded, sizeof rep.expanded, len, p, 1);
        }
    }
    return ok;
}

/* Expands the template into rep.expanded, made absolute with the start directory. A template
 * that ends in a slash names a directory, for files of the default name. */
static bool expand_template(pid_t pid)
{
    const char *t = cmt_cfg.output && cmt_cfg.output[0] ? cmt_cfg.output : CMT_OUTPUT_DEFAULT;
    size_t len = 0;
    rep.expanded[0] = '\0';
    bool ok = true;
    if (t[0] != '/' && rep.cwd[0]) {
        ok = append(rep.expanded, sizeof rep.expanded, &len, rep.cwd, strlen(rep.cwd));
        if (rep.cwd[strlen(rep.cwd) - 1] != '/')
            ok = ok && append(rep.expanded, sizeof rep.expanded, &len, "/", 1);
    }
    ok = ok && expand_part(t, pid, &len);
    if (ok && t[strlen(t) - 1] == '/')
        ok = expand_part(CMT_OUTPUT_DEFAULT, pid, &len);
    return ok;
}

/* Puts dir/base with suffix n (none for 0) in rep.path: name.cmt, name.1.cmt ... */
static bool suffixed_name(const char *dir, size_t dir_len, const char *base, int n)
{
    size_t base_len = strlen(base);
    size_t stem = base_len;
    if (base_len > 4 && strcmp(base + base_len - 4, ".cmt") == 0)
        stem = base_len - 4;
    size_t len = 0;
    char num[16];
    size_t num_len = n ? cmt_format(num, sizeof num, ".%d", n) : 0;
    rep.path[0] = '\0';
    if (!append(rep.path, sizeof rep.path, &len, dir, dir_len) ||
        !append(rep.path, sizeof rep.path, &len, base, stem) ||
        !append(rep.path, sizeof rep.path, &len, num, num_len) ||
        !append(rep.path, sizeof rep.path, &len, base + stem, base_len - stem)) {
        errno = ENAMETOOLONG;
        return false;
    }
    return true;
}

/* Creates the first of dir/base's names (see suffixed_name) not taken, never opening an
 * existing file; the name is left in rep.path. Returns the descriptor, or -1 with errno. */
static int create_named(const char *dir, size_t dir_len, const char *base)
{
    for (int n = 0; n <= SUFFIX_MAX; n++) {
        if (!suffixed_name(dir, dir_len, base, n))
            return -1;
        int fd = sys_open(rep.path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    errno = EEXIST;
    return -1;
}

/* A new report file is written without a name (O_TMPFILE) in its directory and given one
 * when it is written (name_unnamed): a file created under its name first and then written
 * was found empty when the process was killed in between, which no reader can take. Where
 * the file system has no unnamed files, the file is created under its name at once. */
static struct {
    bool unnamed;               /* the file being written has no name yet */
    char dir[CMT_PATH_MAX];     /* its directory, and the base of the names it may take */
    size_t dir_len;
    char base[NAME_STR_MAX];
} pend;

/* Creates a new file for dir/base (or a suffixed name when that is taken), never opening an
 * existing one: unnamed when it can (pend says so; rep.path then holds the name it would take
 * first, for messages), else under the name, left in rep.path. Returns the descriptor, or -1
 * with errno set. */
static int create_excl(const char *dir, size_t dir_len, const char *base)
{
    pend.unnamed = false;
    size_t len = 0;
    pend.dir[0] = '\0';
    if (!append(pend.dir, sizeof pend.dir, &len, dir_len ? dir : ".", dir_len ? dir_len : 1) ||
        strlen(base) >= sizeof pend.base || !suffixed_name(dir, dir_len, base, 0)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = sys_open(pend.dir, O_TMPFILE | O_RDWR, 0644);
    if (fd >= 0) {
        pend.unnamed = true;
        pend.dir_len = dir_len;
        memcpy(pend.base, base, strlen(base) + 1);
        return fd;
    }
    /* No unnamed files here (an old kernel, or a file system without them); any other error
     * a named file would meet too. */
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return -1;
    return create_named(dir, dir_len, base);
}

/* Copies what was written to the unnamed file fd into a new named file, for when it cannot
 * be linked (no /proc to name it through), through buf (size bytes) and w_flush, which
 * keeps to RLIMIT_FSIZE. Returns false with errno set when the copy failed. */
static bool copy_to_named(int fd, unsigned char *buf, size_t size)
{
    struct writer out = { .fd = create_named(pend.dir, pend.dir_len, pend.base), .buf = buf };
    if (out.fd < 0)
        return false;
    while (!out.error) {
        long n = syscall(SYS_pread64, fd, buf, size, out.off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            out.error = n < 0 ? errno : 0;
            break;
        }
        out.len = (size_t)n;
        w_flush(&out);
    }
    sys_close(out.fd);
    if (out.error) {
        syscall(SYS_unlink, rep.path);
        errno = out.error;
        return false;
    }
    return true;
}

/* Gives the unnamed file fd, written, the first of its names not taken (link never replaces
 * a file), left in rep.path. buf (size bytes) is scratch for the copy when linking is not
 * possible. Returns false with errno set when it could not be named. */
static bool name_unnamed(int fd, unsigned char *buf, size_t size)
{
    char proc[40];
    cmt_format(proc, sizeof proc, "/proc/self/fd/%d", fd);
    for (int n = 0; n <= SUFFIX_MAX; n++) {
        if (!suffixed_name(pend.dir, pend.dir_len, pend.base, n))
            return false;
        if (syscall(SYS_linkat, AT_FDCWD, proc, AT_FDCWD, rep.path, AT_SYMLINK_FOLLOW) == 0)
            return true;
        if (errno != EEXIST)
            return copy_to_named(fd, buf, size);
    }
    errno = EEXIST;
    return false;
}

/* The first write of a process: picks and creates its file. */
static int create_first(pid_t pid)
{
    if (!expand_template(pid)) {
        if (!rep.said)
            cmt_diag("the report file name from CYMEMTRACK_OUTPUT is too long; no report "
                     "is written");
        rep.said = true;
        errno = ENAMETOOLONG;
        return -1;
    }
    const char *slash = strrchr(rep.expanded, '/');
    const char *base = slash ? slash + 1 : rep.expanded;
    size_t dir_len = (size_t)(base - rep.expanded);
    int fd = create_excl(rep.expanded, dir_len, base);
    if (fd >= 0)
        return fd;
    int first_errno = errno;
    memcpy(rep.first_try, rep.path, sizeof rep.first_try - 1);
    rep.first_try[sizeof rep.first_try - 1] = '\0';

    const char *fallback[2] = { rep.tmpdir, "/tmp" };
    for (int i = 0; i < 2; i++) {
        const char *dir = fallback[i];
        size_t len = strlen(dir);
        while (len > 1 && dir[len - 1] == '/')
            len--;
        if (len == 0 || (i == 1 && rep.tmpdir[0] && strncmp(rep.tmpdir, "/tmp", 4) == 0 &&
                         (rep.tmpdir[4] == '\0' || strcmp(rep.tmpdir + 4, "/") == 0)))
            continue;   /* unset, or the same directory again */
        size_t dl = 0;
        if (!append(rep.dir, sizeof rep.dir, &dl, dir, len) ||
            !append(rep.dir, sizeof rep.dir, &dl, "/", 1))
            continue;
        fd = create_excl(rep.dir, dl, base);
        if (fd >= 0) {
            if (!rep.said)
                cmt_diag("cannot create %s (%s); writing the report to %s", rep.first_try,
                         reason(first_errno), rep.path);
            rep.said = true;
            return fd;
        }
    }
    if (!rep.said)
        cmt_diag("cannot create %s (%s), nor a report file in $TMPDIR or /tmp; no report "
                 "is written", rep.first_try, reason(first_errno));
    rep.said = true;
    errno = first_errno;
    return -1;
}

/* A snapshot's own file, beside the process's report: NAME.snapshot.cmt, then
 * NAME.snapshot.1.cmt and so on, so that every snapshot is kept and the final report does not
 * replace it. Leaves rep.path as it was. Returns the descriptor or -1. */
static int create_snapshot(pid_t pid)
{
    char saved[sizeof rep.path];
    memcpy(saved, rep.path, sizeof saved);
    int fd = -1;
    if (expand_template(pid)) {
        const char *slash = strrchr(rep.expanded, '/');
        const char *base = slash ? slash + 1 : rep.expanded;
        size_t base_len = strlen(base);
        size_t stem = base_len > 4 && strcmp(base + base_len - 4, ".cmt") == 0 ? base_len - 4
                                                                               : base_len;
        char name[NAME_STR_MAX];
        size_t len = 0;
        name[0] = '\0';
        if (append(name, sizeof name, &len, base, stem) &&
            append(name, sizeof name, &len, ".snapshot.cmt", 13))
            fd = create_excl(rep.expanded, (size_t)(base - rep.expanded), name);
        else
            errno = ENAMETOOLONG;
    } else {
        errno = ENAMETOOLONG;
    }
    if (fd < 0)
        cmt_diag("cannot create a snapshot file beside %s (%s); snapshot not written",
                 rep.expanded, reason(errno));
    memcpy(rep.path, saved, sizeof saved);
    return fd;
}

/* ---- writing ------------------------------------------------------------------------ */

static bool report_acquire(pid_t tid, bool try_only, bool careful)
{
    if (atomic_load_explicit(&rep.owner, memory_order_relaxed) == tid)
        return false;   /* a signal arrived while this thread was writing: let it finish */
    uint64_t deadline = 0;
    for (unsigned n = 0;; n++) {
        int expected = 0;
        if (atomic_compare_exchange_weak_explicit(&rep.owner, &expected, tid,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
        if (try_only)
            return false;
        if (n < 1000) {
            __builtin_ia32_pause();
            continue;
        }
        /* Another thread is writing, which takes milliseconds; a writer that never finishes
         * (stopped by a debugger, say) must not hang the program's exit for good. */
        uint64_t now = clock_ns(CLOCK_MONOTONIC);
        unsigned wait_s = careful ? 2 : 10;
        if (!deadline) {
            deadline = now + (uint64_t)wait_s * 1000000000u;
        } else if (now > deadline) {
            cmt_diag("another thread has been writing the report for %u s; this one is not "
                     "written", wait_s);
            return false;
        }
        struct timespec ms = { 0, 1000000 };
        syscall(SYS_nanosleep, &ms, NULL);
    }
}

static void report_release(void)
{
    atomic_store_explicit(&rep.owner, 0, memory_order_release);
}

static bool is_final(int how)
{
    return how == CMT_END_EXIT || how == CMT_END_SIGNAL || how == CMT_END_ABORT ||
           how == CMT_END_UNDERSCORE_EXIT;
}

static void write_records(struct writer *w, int how, int code, const char *label,
                          const struct gather *g, bool careful)
{
    put_bytes(w, CMT_REPORT_MAGIC, CMT_REPORT_MAGIC_LEN);
    put_u32(w, CMT_REPORT_VERSION);
    put_u32(w, CMT_REPORT_HEADER_SIZE);
    put_process(w);
    put_modules(w, careful);
    put_stacks(w, g);
    struct sums sum = { 0, 0, 0, 0 };
    put_scopes(w, &sum);
    put_leaks(w, g);
    put_allocsites(w, g, sum.names);
    struct bf_ctx bc = { w, g };
    cmt_badfree_foreach(put_badfree, &bc);
    struct tl_ctx tc = { w, sum.names };
    cmt_timeline_foreach(put_timeline, &tc);
    put_totals(w, g, &sum, careful);
    put_end(w, how, code, label);
    w_flush(w);
}

/* Writes the file with the lock held. */
static void write_locked(int how, int code, const char *label, bool careful)
{
    pid_t pid = (pid_t)syscall(SYS_getpid);
    if (pid != rep.file_pid) {
        /* A new process (a fork child; fork handlers reset this too): its own file. */
        rep.file_pid = pid;
        rep.have_file = false;
        rep.final_written = false;
        rep.said = false;
    }
    if (how == CMT_END_RUNNING && rep.final_written)
        return;

    struct gather g;
    spare_used = 0;
    spare_allowed = how != CMT_END_RUNNING;
    gather(&g, careful);
    struct writer w = { .fd = -1 };
    w.buf = report_map(WBUF_SIZE);
    if (how == CMT_END_RUNNING && (!w.buf || g.oom)) {
        /* Short of memory for a checkpoint: the previous one stays, and nothing is said; the
         * next checkpoint or the ending tries again, and speaks if it fails too. */
        if (w.buf)
            report_unmap(w.buf, WBUF_SIZE);
        gather_release(&g);
        return;
    }
    if (!w.buf) {
        if (!rep.said)
            cmt_diag("out of memory for writing the report; no report is written");
        rep.said = true;
        gather_release(&g);
        return;
    }
    if (g.oom && !rep.said) {
        cmt_diag("out of memory while listing leaks; the report lists some of them");
        rep.said = true;
    }
    if (g.skipped_shards && !rep.said) {
        cmt_diag("%llu parts of the block table were locked by interrupted code; the "
                 "report leaves their blocks out", (unsigned long long)g.skipped_shards);
        rep.said = true;
    }
    struct rlimit fsize;
    rep.fsize_limit = getrlimit(RLIMIT_FSIZE, &fsize) == 0 ? fsize.rlim_cur : RLIM_INFINITY;

    bool replace = rep.have_file && how != CMT_END_SNAPSHOT;
    if (how == CMT_END_SNAPSHOT) {
        w.fd = create_snapshot(pid);
    } else if (replace) {
        /* Later writes go to a temporary name and replace the file in one rename, so that
         * a reader, or a kill in the middle, never sees half a report. */
        size_t len = 0;
        rep.tmp[0] = '\0';
        append(rep.tmp, sizeof rep.tmp, &len, rep.path, strlen(rep.path));
        append(rep.tmp, sizeof rep.tmp, &len, ".tmp", 4);
        /* Non-blocking open: something else at that name (a FIFO nobody reads) must not
         * stop the program inside its malloc; the writes themselves block as usual. */
        w.fd = sys_open(rep.tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK, 0644);
        if (w.fd >= 0)
            syscall(SYS_fcntl, w.fd, F_SETFL, 0);
        if (w.fd < 0 && !rep.said) {
            cmt_diag("cannot create %s (%s); %s keeps the previous report", rep.tmp,
                     reason(errno), rep.path);
            rep.said = true;
        }
    } else {
        w.fd = create_first(pid);
        if (w.fd >= 0)
            rep.have_file = true;
    }
    if (w.fd >= 0) {
        write_records(&w, how, code, label, &g, careful);
        /* A first write that did not even get the header out leaves a file no reader can
         * tell from a corrupt one: better none, and a later write tries again. */
        bool nothing = w.error && !replace && how != CMT_END_SNAPSHOT &&
                       w.off < CMT_REPORT_HEADER_SIZE;
        bool unnamed = !replace && pend.unnamed;
        if (unnamed && !nothing) {
            char saved[sizeof rep.path];
            if (how == CMT_END_SNAPSHOT)
                memcpy(saved, rep.path, sizeof saved);     /* the process's own file's */
            if (!name_unnamed(w.fd, w.buf, WBUF_SIZE)) {
                if (!w.error)
                    w.error = errno ? errno : EIO;
                nothing = how != CMT_END_SNAPSHOT;
            }
            if (how == CMT_END_SNAPSHOT)
                memcpy(rep.path, saved, sizeof saved);
        }
        sys_close(w.fd);    /* an unnamed file left unnamed goes with it */
        if (replace && !w.error && syscall(SYS_rename, rep.tmp, rep.path) != 0)
            w.error = errno;
        if (w.error) {
            if (replace)
                syscall(SYS_unlink, rep.tmp);
            if (nothing) {
                if (!unnamed)
                    syscall(SYS_unlink, rep.path);
                rep.have_file = false;
            }
            if (!rep.said)
                cmt_diag(replace   ? "cannot write the report to %s (%s); the previous one "
                                     "stays"
                         : nothing ? "cannot write the report to %s (%s); no report is written"
                                   : "cannot write the report to %s (%s); it is cut short",
                         rep.path, reason(w.error));
            rep.said = true;
        }
    }
    report_unmap(w.buf, WBUF_SIZE);
    gather_release(&g);
    if (is_final(how))
        rep.final_written = true;
}

static void report_write(int how, int code, const char *label, unsigned flags)
{
    if (!atomic_load_explicit(&cmt_ready, memory_order_acquire))
        return;
    int saved_errno = errno;
    if (report_acquire(sys_gettid(), flags & FLAG_TRY, flags & FLAG_CAREFUL)) {
        cmt_self.busy++;
        write_locked(how, code, label, flags & FLAG_CAREFUL);
        cmt_self.busy--;
        report_release();
    }
    errno = saved_errno;
}

void cmt_report_write(int how, int code, const char *label)
{
    report_write(how, code, label, 0);
}

void cmt_report_write_careful(int how, int code, const char *label)
{
    report_write(how, code, label, FLAG_CAREFUL);
}

void cmt_report_checkpoint(void)
{
    report_write(CMT_END_RUNNING, 0, NULL, FLAG_TRY);
}

/* ---- start and fork ----------------------------------------------------------------- */

void cmt_report_init(void)
{
    rep.start_ns = clock_ns(CLOCK_REALTIME);
    rep.file_pid = (pid_t)syscall(SYS_getpid);
    long n = syscall(SYS_readlink, "/proc/self/exe", rep.exe, sizeof rep.exe - 1);
    if (n > 0) {
        rep.exe[n] = '\0';
    } else {
        /* No /proc: the name the program was started by, as good as it gets. */
        const char *fn = (const char *)getauxval(AT_EXECFN);
        size_t len = 0;
        rep.exe[0] = '\0';
        if (fn)
            append(rep.exe, sizeof rep.exe, &len, fn, strnlen(fn, sizeof rep.exe - 1));
    }
    /* The start directory, so that a program that changes directory (a daemon going to /)
     * still writes where it started, and every write of a process goes to one file. */
    if (syscall(SYS_getcwd, rep.cwd, sizeof rep.cwd) < 0 || rep.cwd[0] != '/')
        rep.cwd[0] = '\0';
    const char *tmpdir = getenv("TMPDIR");
    size_t len = 0;
    rep.tmpdir[0] = '\0';
    if (tmpdir && tmpdir[0] == '/')
        append(rep.tmpdir, sizeof rep.tmpdir, &len, tmpdir, strnlen(tmpdir, CMT_PATH_MAX));
}

void cmt_report_lock(void)
{
    rep.held_for_fork = report_acquire(sys_gettid(), false, false);
}

void cmt_report_unlock(void)
{
    if (rep.held_for_fork)
        report_release();
    rep.held_for_fork = false;
}

void cmt_report_after_fork_child(void)
{
    rep.file_pid = (pid_t)syscall(SYS_getpid);
    rep.have_file = false;
    rep.final_written = false;
    rep.said = false;
    rep.start_ns = clock_ns(CLOCK_REALTIME);
}
