/*
 * cmt.h — the library's internal interface, grouped by the file that defines each part.
 *
 * Everything here is hidden (-fvisibility=hidden); only the interposed malloc family and the
 * public cmt_* API in cymemtrack.h are exported, each marked CMT_EXPORT where it is defined.
 * Nothing declared here may allocate through the tracked allocator or call stdio.
 */
#ifndef CMT_H
#define CMT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#ifdef HAVE_SYS_SINGLE_THREADED_H
#include <sys/single_threaded.h>
#endif

#define cmt_likely(x)   __builtin_expect(!!(x), 1)
#define cmt_unlikely(x) __builtin_expect(!!(x), 0)
#define CMT_EXPORT      __attribute__((visibility("default")))
#define CMT_NOINLINE    __attribute__((noinline))
#define CMT_TLS         __attribute__((tls_model("initial-exec")))
#define CMT_CACHELINE   64
#define CMT_ALIGNED     __attribute__((aligned(CMT_CACHELINE)))
#define CMT_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

typedef void (*cmt_free_fn_t)(void *);

/* ---- diag.c: one-line diagnostics on stderr, async-signal-safe, never allocating ------ */

/* Formats "cymemtrack: " + fmt + "\n" and writes it with one write(2); errno is preserved.
 * Understands %s %.*s %c %d %u %ld %lu %lld %llu %zu %zd %x %lx %p %% and the # flag. */
void cmt_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Like cmt_diag, but says nothing after *budget messages have been spent; the first message
 * past the budget says that further ones are suppressed. */
void cmt_diag_limited(atomic_int *budget, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Formats into buf (always NUL-terminated, truncated to size); returns the length written. */
size_t cmt_format(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- rawmem.c: the tracker's own memory, straight from mmap -------------------------- */

/* Small, permanent allocations (never freed): zeroed, 16-byte aligned, NULL when the system
 * is out of memory. Thread-safe. */
void *cmt_raw_alloc(size_t size);
/* Whole mappings for large arrays that grow and shrink (table shards): zeroed. */
void *cmt_raw_map(size_t size);
void cmt_raw_unmap(void *p, size_t size);
/* Address space only, for arrays that grow in place (table shards): no memory behind it
 * until committed. NULL when it cannot be had (RLIMIT_AS, say). */
void *cmt_raw_reserve(size_t size);
/* Makes [p, p + size) of a reservation usable, zeroed and faulted in; false when the system
 * refuses the memory (the range is then left as it was). */
bool cmt_raw_commit(void *p, size_t size);
/* Held across fork() so that the child never inherits the arena lock held. */
void cmt_raw_lock(void);
void cmt_raw_unlock(void);

/* ---- spin.h style lock, used where a critical section is a handful of instructions ---- */

typedef struct { atomic_uchar held; } cmt_spinlock;

static inline void cmt_spin_lock(cmt_spinlock *l)
{
    for (;;) {
        if (!atomic_exchange_explicit(&l->held, 1, memory_order_acquire))
            return;
        while (atomic_load_explicit(&l->held, memory_order_relaxed))
            __builtin_ia32_pause();
    }
}

static inline bool cmt_spin_trylock(cmt_spinlock *l)
{
    return !atomic_load_explicit(&l->held, memory_order_relaxed) &&
           !atomic_exchange_explicit(&l->held, 1, memory_order_acquire);
}

static inline void cmt_spin_unlock(cmt_spinlock *l)
{
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

/* ---- table.c: the live-block table -------------------------------------------------- */

/* One live block: 32 bytes. size and thread share a word (sizes are below 2^40 bytes on any
 * machine this runs on; larger requests fail in the allocator first). */
struct cmt_block {
    uintptr_t ptr;          /* 0 marks an empty slot */
    uint64_t size_thread;   /* size in the low 40 bits, allocating thread in the high 24 */
    uint32_t instance;      /* owning scope instance (scope.c) */
    uint32_t stack;         /* stack id (stack.c), 0 when none was captured */
    uint32_t seq;           /* the allocating thread's sequence number of this allocation */
    uint32_t flags;         /* CMT_BLOCK_* */
};

/* The block came from its scope's own allocator (cmt_scope_open_with) and goes back there. */
#define CMT_BLOCK_CUSTOM 0x1u
/* The block was bulk-freed and waits in quarantine (bulk.c): it stays in the live table so
 * that a stale free of it is recognized, but belongs to no scope (instance is
 * CMT_INSTANCE_QUARANTINE, seq the name of the scope that freed it) and is no live block. */
#define CMT_BLOCK_QUARANTINED 0x2u
#define CMT_INSTANCE_QUARANTINE (UINT32_MAX - 1)

#define CMT_SIZE_BITS 40
#define CMT_SIZE_MASK ((UINT64_C(1) << CMT_SIZE_BITS) - 1)

static inline size_t cmt_block_size(const struct cmt_block *b)
{
    return (size_t)(b->size_thread & CMT_SIZE_MASK);
}

static inline uint32_t cmt_block_thread(const struct cmt_block *b)
{
    return (uint32_t)(b->size_thread >> CMT_SIZE_BITS);
}

/* A table of blocks keyed by address: the live blocks, and (scope.c) the quarantine of
 * bulk-freed ones. Sharded by address, a spinlock per shard; a shard grows on its own, so a
 * resize pauses only the threads that touch that one shard. */
#define CMT_TABLE_SHARDS 1024
struct cmt_shard {
    cmt_spinlock lock;
    uint32_t count;                 /* used slots */
    uint32_t quarantined;           /* of them, CMT_BLOCK_QUARANTINED blocks (bulk.c) */
    uint32_t mask;                  /* capacity - 1; capacity 0 before the first insert */
    /* The count at which the next claim grows the shard first: the load limit, 0 before the
     * first insert. One comparison on the hot path. */
    uint32_t room;
    /* Slots of address space reserved at `slots`, of which mask + 1 are in use: the shard
     * doubles in place until it fills them (table.c). */
    uint32_t span;
    struct cmt_block *slots;
} CMT_ALIGNED;

struct cmt_table {
    struct cmt_shard shard[CMT_TABLE_SHARDS];
    atomic_int oom_said;
    /* The copy a shard growing in its span rehashes from (table.c); one growth at a time
     * uses it, with the growing shard's lock held. */
    cmt_spinlock scratch_lock;
    uint32_t scratch_cap;           /* slots */
    struct cmt_block *scratch;
};

extern struct cmt_table cmt_live;

/* Shard-level operations, for a caller that must change a block and its accounting in one
 * critical section (so that fork, which takes every shard lock, never sees one without the
 * other). Lock order: the live table's shard before a quarantine shard; never hold a shard
 * lock while taking a scope, bulk or report lock. */
/* A block's shard: its 64 KiB region's (see table.c on why regions). */
#define CMT_TABLE_REGION_SHIFT 16
static inline uint64_t cmt_table_region_hash(uintptr_t ptr)
{
    return (uint64_t)(ptr >> CMT_TABLE_REGION_SHIFT) * UINT64_C(0x9E3779B97F4A7C15);
}

static inline struct cmt_shard *cmt_table_lock_ptr(struct cmt_table *tab, uintptr_t ptr)
{
    /* The top 10 bits of the hash: CMT_TABLE_SHARDS == 1024. */
    struct cmt_shard *s = &tab->shard[cmt_table_region_hash(ptr) >> 54];
    cmt_spin_lock(&s->lock);
    return s;
}

static inline void cmt_shard_unlock(struct cmt_shard *s)
{
    cmt_spin_unlock(&s->lock);
}
/* Where a block goes in its shard. Blocks an allocator hands out one after another lie next
 * to each other, so the table keeps them next to each other too: the 64 KiB region of an
 * address picks its shard and a pseudo-random base slot, and within the region slots follow
 * the address (one slot per 16-byte granule). A heap that grows then touches one new cache
 * line of the table every few blocks, not one per block; regions' random bases keep the
 * probe runs of different regions apart. */
#define CMT_SHARD_GRANULE_SHIFT 4
/* Grow at 50% load: linear probing stays short and the table under 2×32 B a block. */
#define CMT_SHARD_MAX_LOAD_NUM 1u
#define CMT_SHARD_MAX_LOAD_DEN 2u

static inline uint32_t cmt_shard_home(const struct cmt_shard *s, uintptr_t ptr)
{
    return (uint32_t)((ptr >> CMT_SHARD_GRANULE_SHIFT) + (cmt_table_region_hash(ptr) >> 24)) &
           s->mask;
}

/* ptr's slot, or the empty slot where it would go. The shard must be locked and have slots. */
static inline uint32_t cmt_shard_probe(const struct cmt_shard *s, uintptr_t ptr)
{
    uint32_t i = cmt_shard_home(s, ptr);
    while (s->slots[i].ptr != 0 && s->slots[i].ptr != ptr)
        i = (i + 1) & s->mask;
    return i;
}

/* Grows s for one more block; false (said once) when out of memory. */
bool cmt_shard_make_room(struct cmt_table *tab, struct cmt_shard *s);

/* The slot for ptr, new (counted) or ptr's own, with the shard locked; the caller writes
 * every field, in place: a record built elsewhere and copied in would be read back wide
 * before its narrow stores land, which stalls. NULL when out of memory. Inline, with
 * cmt_shard_find: every allocation and free runs one of them. */
static inline struct cmt_block *cmt_shard_claim(struct cmt_table *tab, struct cmt_shard *s,
                                                uintptr_t ptr)
{
    if (cmt_unlikely(s->count >= s->room) && !cmt_shard_make_room(tab, s))
        return NULL;
    uint32_t i = cmt_shard_probe(s, ptr);
    if (s->slots[i].ptr == 0)
        s->count++;
    return &s->slots[i];
}

/* ptr's slot, or NULL; valid until the shard is unlocked or changed. */
static inline struct cmt_block *cmt_shard_find(struct cmt_shard *s, uintptr_t ptr)
{
    if (cmt_unlikely(!s->slots))
        return NULL;
    uint32_t i = cmt_shard_probe(s, ptr);
    return s->slots[i].ptr == ptr ? &s->slots[i] : NULL;
}
bool cmt_shard_insert(struct cmt_table *tab, struct cmt_shard *s, const struct cmt_block *b);
/* Empties a slot cmt_shard_find or cmt_shard_claim returned. */
void cmt_shard_delete(struct cmt_shard *s, const struct cmt_block *slot);
/* Removes ptr when its instance is `instance` (any instance for UINT32_MAX). */
bool cmt_shard_remove(struct cmt_shard *s, uintptr_t ptr, uint32_t instance,
                      struct cmt_block *out);
/* Starts loading ptr's slot into the cache, for a lookup in s soon; s is locked. */
void cmt_shard_prefetch(const struct cmt_shard *s, uintptr_t ptr);
/* Inserts b (b->ptr is not in the table). Returns false only when the tracker has run out of
 * memory for the table; the block is then untracked and that was said once on stderr. */
bool cmt_table_insert(struct cmt_table *tab, const struct cmt_block *b);
/* Removes ptr and copies its record to *out; false when ptr is not in the table. */
bool cmt_table_remove(struct cmt_table *tab, uintptr_t ptr, struct cmt_block *out);
/* Removes ptr only when its record belongs to instance; false (and nothing removed) when ptr
 * is not in the table or belongs to another instance. */
bool cmt_table_remove_owned(struct cmt_table *tab, uintptr_t ptr, uint32_t instance,
                            struct cmt_block *out);
/* Copies ptr's record to *out without removing it; false when ptr is not in the table. */
bool cmt_table_lookup(struct cmt_table *tab, uintptr_t ptr, struct cmt_block *out);
/* Calls fn for every block, one shard at a time with that shard locked: fn must not touch
 * the same table. */
void cmt_table_foreach(struct cmt_table *tab,
                       void (*fn)(const struct cmt_block *b, void *arg), void *arg);
/* Number of blocks, summed over the shards without locking them. */
size_t cmt_table_count(struct cmt_table *tab);
/* The same, less the quarantined ones: the live blocks. */
size_t cmt_table_count_live(struct cmt_table *tab);
/* Held across fork() so that the child inherits a consistent table. */
void cmt_table_lock_all(struct cmt_table *tab);
void cmt_table_unlock_all(struct cmt_table *tab);

/* ---- young.c: each thread's newest blocks, outside the table ------------------------ */

/* A thread's newest blocks are kept in a small direct-mapped array of its own, its young set,
 * instead of the sharded table: no hash, no shard lock, no probe, plain stores, and a block
 * freed young never reaches the table at all. Only the owner fills and empties its slots. A
 * young block moves to the table when another of the owner's blocks takes its slot, when its
 * scope instance closes, and when the owner exits.
 *
 * Another thread may free a young block (a block handed over soon after it was made): it
 * looks in the table first and then in the other threads' sets, with the block's shard
 * locked, and claims the slot by swapping its address for the address with the low bit set
 * (a claimed slot: the block is gone, and its owner empties the slot when it next passes).
 * The owner moves a block to the table under the same shard lock, so the block is found in
 * one place or the other, never in neither.
 *
 * fork() must not copy a set in the middle of its owner's change: fork's prepare handler
 * closes a gate and waits until no owner is between cmt_young_enter and cmt_young_leave
 * (with a bounded wait: an owner stopped there for good cannot hang the fork). The owner
 * stores its announcement before it looks at the gate, and fork looks at the owners after
 * closing the gate; a full barrier must stand between store and load on each side for the
 * two to see each other. Where the kernel offers membarrier(2), fork's side has every
 * running thread of the process pass one, and the owner's side need only keep the compiler
 * from reordering: a plain store. Otherwise the owner's store is sequentially consistent,
 * an xchg on x86, two of which cost a threaded malloc/free pair 12 ns on our test machine
 * (32 ns a pair with them, 20 without). */
#define CMT_YOUNG_SLOTS 256u
/* Threads past this many at once keep their blocks in the table only. */
#define CMT_YOUNG_SETS 64u
#define CMT_YOUNG_CLAIMED ((uintptr_t)1)

struct cmt_young_set {
    /* The instance the owner's allocations go to here: its innermost scope as last found
     * eligible (owned by it, open, neither bulk nor with its own allocator, no signal:
     * window or inspected function active); NULL when none. Others may only clear it. */
    struct cmt_instance *_Atomic target;
    atomic_uint owner;          /* the owning thread's number; 0 while the set is free */
    atomic_int changing;        /* the owner is changing the slots (see cmt_young_enter) */
    /* Some slot may be in use: set with every target, cleared when the set is emptied.
     * Lets a walk skip the slots in one load. */
    atomic_bool any;
    /* Records as in the table; ptr 0 marks an empty slot, ptr | CMT_YOUNG_CLAIMED a claimed
     * one. A slot is written ptr last and emptied ptr first, so that a reader sees a block
     * whole or not at all. */
    _Alignas(CMT_CACHELINE) struct cmt_block slot[CMT_YOUNG_SLOTS];
};

struct cmt_young {
    atomic_int gate;            /* nonzero while fork() prepares: no owner may begin */
    /* Owners announce a change with a plain store: fork's membarrier() is the barrier. Set
     * once at start, before any set is used; cleared if membarrier ever fails. */
    atomic_bool light;
    atomic_uint sets;           /* set[0 .. sets) have been made */
    cmt_spinlock lock;          /* handing sets out and taking them back; held across fork */
    struct cmt_young_set *_Atomic set[CMT_YOUNG_SETS];
};

extern struct cmt_young cmt_young;

/* True while the process is known to have one thread. */
static inline bool cmt_solo(void)
{
#ifdef HAVE_SYS_SINGLE_THREADED_H
    return __libc_single_threaded != 0;
#else
    return false;
#endif
}

/* The slot of y an address goes to: neighbouring blocks to neighbouring slots. */
static inline struct cmt_block *cmt_young_slot(struct cmt_young_set *y, uintptr_t ptr)
{
    return &y->slot[(ptr >> CMT_SHARD_GRANULE_SHIFT) & (CMT_YOUNG_SLOTS - 1)];
}

/* Waits while fork() is prepared, then enters y (see cmt_young_enter). */
void cmt_young_wait_gate(struct cmt_young_set *y);

/* The owner of y is about to change its slots or the counts of its blocks; waits while
 * fork() is being prepared. cmt_young_leave(y) ends the change. */
static inline void cmt_young_enter(struct cmt_young_set *y)
{
    /* Alone, no other thread can be forking. With others, the store must be visible before
     * the gate is read (see the comment above struct cmt_young_set). */
    if (cmt_likely(cmt_solo()))
        return;
    bool closed;
    if (cmt_likely(atomic_load_explicit(&cmt_young.light, memory_order_relaxed))) {
        atomic_store_explicit(&y->changing, 1, memory_order_relaxed);
        atomic_signal_fence(memory_order_seq_cst);
        closed = atomic_load_explicit(&cmt_young.gate, memory_order_relaxed);
    } else {
        atomic_store_explicit(&y->changing, 1, memory_order_seq_cst);
        closed = atomic_load_explicit(&cmt_young.gate, memory_order_seq_cst);
    }
    if (cmt_unlikely(closed)) {
        atomic_store_explicit(&y->changing, 0, memory_order_release);
        cmt_young_wait_gate(y);
    }
}

static inline void cmt_young_leave(struct cmt_young_set *y)
{
    atomic_store_explicit(&y->changing, 0, memory_order_release);
}

/* At start, before any set is used: lets owners announce their changes with plain stores
 * when membarrier(2) can stand in for their barrier. */
void cmt_young_init(void);

/* Moves the block in slot b (of the caller's own set, entered) to the table and empties the
 * slot; a claimed slot is only emptied. A block the table has no memory for is handed to the
 * hooks' untracked set so that its free still goes through. */
void cmt_young_evict(struct cmt_block *b);
/* Empties slot b, whose record is stale (its block was freed while the tracker was busy, and
 * the next allocator has handed the same address out again) or claimed. */
void cmt_young_drop(struct cmt_block *b);
/* The caller's young set for an allocation now, made or handed out on first use; NULL when
 * there is none to have (every set is taken, or out of memory: the thread then looks again
 * only after many allocations). */
struct cmt_thread;
struct cmt_young_set *cmt_young_acquire(struct cmt_thread *t);
/* t is exiting (its instances are closed): empties its set and gives it back. */
void cmt_young_thread_exit(struct cmt_thread *t);
/* With p's shard locked and p not in the table: looks for p among the other threads' young
 * blocks and, when it is there and of `instance` (any for UINT32_MAX), claims it and copies
 * its record to *out. */
bool cmt_young_claim(const struct cmt_thread *t, uintptr_t p, uint32_t instance,
                     struct cmt_block *out);
/* The same, without claiming: a copy of p's record, from another thread's set. */
bool cmt_young_peek(const struct cmt_thread *t, uintptr_t p, struct cmt_block *out);
/* inst, owned by the caller, is closing: its young blocks move to the table, and it stops
 * being the target. */
struct cmt_instance;
void cmt_young_release(struct cmt_thread *t, struct cmt_instance *inst);
/* Makes inst (checked eligible) y's target. */
void cmt_young_set_target(struct cmt_young_set *y, struct cmt_instance *inst);
/* Forgets every set's target, so that the next allocation checks its instance again (a
 * signal: window opened, an inspected function began to be looked for). */
void cmt_young_retarget(void);
/* Calls fn for every young block of every set. Lock-free and async-signal-safe, for the
 * report: a block its owner changes meanwhile is skipped. */
void cmt_young_foreach(void (*fn)(const struct cmt_block *b, void *arg), void *arg);
/* The number of young blocks (a walk of the sets). */
size_t cmt_young_count(void);
/* fork(): before every other tracker lock, closes the gate and waits for the owners; after,
 * opens it. The child also moves the other threads' young blocks to the table, since those
 * threads do not exist in it. */
void cmt_young_fork_prepare(void);
void cmt_young_fork_parent(void);
void cmt_young_fork_child(const struct cmt_thread *t);

/* ---- scope.c: scope instances, their counters and the scope names ------------------- */

enum cmt_scope_kind {
    CMT_KIND_GLOBAL = 0,
    CMT_KIND_API = 1,
    CMT_KIND_FUNC = 2,
    CMT_KIND_THREAD = 3,
    CMT_KIND_SIGNAL = 4,
};

/* Counters of one scope, or of all instances of a scope name. */
struct cmt_counters {
    uint64_t allocs;
    uint64_t bytes_allocated;
    uint64_t frees;
    uint64_t bytes_freed;
    uint64_t outlived_at_close;   /* blocks still live when their instance closed */
    uint64_t bulk_freed_blocks;
    uint64_t bulk_freed_bytes;
    uint64_t peak_live_bytes;
};

/* A scope instance. The thread that opened it (the owner) updates the owner_* counters with
 * plain stores while it is open; every other update is atomic. `refs` is a biased reference
 * count: while the instance is open it holds (allocations by other threads) - (frees by other
 * threads); at close the owner adds its own live count, after which it is the number of live
 * blocks and whoever brings it to zero retires the instance. */
struct cmt_instance {
    /* Written by the owner only, while open. */
    uint64_t own_allocs, own_bytes_allocated, own_frees, own_bytes_freed;
    uint64_t peak_live_bytes;
    struct cmt_instance *parent;    /* enclosing instance on the owner's scope stack */
    uint32_t id;                    /* index in the instance registry */
    uint32_t generation;            /* bumped at each reuse; part of the public handle */
    uint32_t name;                  /* index in the name registry */
    uint32_t owner;                 /* thread number, CMT_NO_OWNER for the shared instance */
    uint32_t flags;                 /* CMT_INST_* */
    uint8_t kind;                   /* enum cmt_scope_kind */
    atomic_uint state;              /* CMT_STATE_* */
    uint64_t own_bulk_freed;        /* blocks bulk-freed at close, by the owner */
    uint32_t young_blocks;          /* of its blocks, those in its owner's young set (young.c) */
    /* The scope's own allocator (cmt_scope_open_with), or NULL for the next allocator. */
    void *(*malloc_fn)(size_t);
    cmt_free_fn_t free_fn;
    /* Addresses allocated in a bulk instance, for the bulk-free walk at close. Some may be
     * gone (freed, or reused by another scope): the walk checks each against the table. */
    cmt_spinlock bulk_lock;
    uintptr_t *bulk_ptrs;
    size_t bulk_len, bulk_cap;

    /* Written by any thread. */
    _Alignas(CMT_CACHELINE) atomic_llong refs;
    atomic_ullong far_allocs, far_bytes_allocated, far_frees, far_bytes_freed;
    atomic_ullong bulk_freed_blocks, bulk_freed_bytes;
    uint64_t outlived_at_close;     /* set once, by the owner, at close */
};

#define CMT_NO_OWNER UINT32_MAX
enum { CMT_STATE_FREE = 0, CMT_STATE_OPEN = 1, CMT_STATE_CLOSED = 2 };
#define CMT_INST_BULK 0x1u

/* The instance registry: chunks of records, published once, never moved. */
#define CMT_INSTANCE_CHUNK_BITS 10
#define CMT_INSTANCE_MAX_CHUNKS 1024u   /* a million instances open or outlived at once */
extern _Atomic(struct cmt_instance *) cmt_instance_chunk[CMT_INSTANCE_MAX_CHUNKS];

/* The instance that owns a block with this id; NULL for an id never handed out. Inline: the
 * hooks call it on every free. */
static inline struct cmt_instance *cmt_instance_get(uint32_t id)
{
    uint32_t c = id >> CMT_INSTANCE_CHUNK_BITS;
    if (cmt_unlikely(c >= CMT_INSTANCE_MAX_CHUNKS))
        return NULL;
    struct cmt_instance *chunk =
        atomic_load_explicit(&cmt_instance_chunk[c], memory_order_acquire);
    return chunk ? &chunk[id & ((1u << CMT_INSTANCE_CHUNK_BITS) - 1)] : NULL;
}

/* Scope names: interned once, never removed. Index 0 is "global". */
#define CMT_NAME_GLOBAL 0u
#define CMT_NAME_MAX 256
uint32_t cmt_name_intern(const char *name, enum cmt_scope_kind kind);
const char *cmt_name_string(uint32_t name);
enum cmt_scope_kind cmt_name_kind(uint32_t name);
uint32_t cmt_name_count(void);
/* Counters of every instance of a name, retired and live. */
void cmt_name_counters(uint32_t name, struct cmt_counters *out, uint64_t *instances);

/* An instance from a public handle (cmt_scope_t); NULL when the handle is not one of an
 * instance that is open or closed-but-not-retired. */
struct cmt_instance *cmt_instance_from_handle(uint64_t handle);
uint64_t cmt_instance_handle(const struct cmt_instance *inst);

struct cmt_thread;
/* Opens an instance on the calling thread's scope stack. NULL when out of memory. */
struct cmt_instance *cmt_instance_open(struct cmt_thread *t, uint32_t name, uint32_t flags);
/* Closes t's innermost instance, which must be inst: bulk-frees its blocks first when it is a
 * bulk instance. Returns the blocks live at close (bulk-freed ones included). */
uint64_t cmt_instance_close(struct cmt_thread *t, struct cmt_instance *inst);
/* An instance on no thread's stack (a signal: window): every thread counts into it through
 * the atomics. NULL when out of memory. */
struct cmt_instance *cmt_instance_open_detached(uint32_t name, uint32_t flags);
uint64_t cmt_instance_close_detached(struct cmt_thread *t, struct cmt_instance *inst);
/* The open signal: window, if any: allocations that would go to a thread's global instance
 * go there instead. */
extern _Atomic(struct cmt_instance *) cmt_window;
/* The counting paths of threads other than an open instance's owner. */
void cmt_instance_count_alloc_far(struct cmt_instance *inst, size_t size);
bool cmt_instance_count_free_far(struct cmt_instance *inst, size_t size);
/* Folds a closed instance without blocks into its name and recycles it. */
void cmt_instance_retire(struct cmt_instance *inst);
/* A temporary reference that keeps inst from being retired (realloc holds one while the old
 * block is counted as freed and the new one not yet as allocated). unhold returns true when
 * the caller must retire inst. */
void cmt_instance_hold(struct cmt_instance *inst);
bool cmt_instance_unhold(struct cmt_instance *inst);
/* Takes back a free counted by cmt_instance_count_free (a realloc that failed). */
void cmt_instance_undo_free(struct cmt_thread *t, struct cmt_instance *inst, size_t size);
/* Counters of one instance as they are now. */
void cmt_instance_counters(const struct cmt_instance *inst, struct cmt_counters *out);
/* The instance that owns allocations made after a thread's own state is gone. */
struct cmt_instance *cmt_instance_shared(void);
void cmt_scope_init(void);
void cmt_scope_lock_all(void);
void cmt_scope_unlock_all(void);
void cmt_scope_after_fork_child(void);

/* ---- bulk.c: bulk-free and the quarantine ------------------------------------------- */

/* Remembers p, just recorded in bulk instance inst, for the walk at close. */
void cmt_bulk_note(struct cmt_instance *inst, uintptr_t p);
/* Frees every block still owned by inst (the owner closing it) into the quarantine; adds
 * them to inst's bulk counters and returns how many there were. */
uint64_t cmt_bulk_free(struct cmt_thread *t, struct cmt_instance *inst);
/* True when p is a bulk-freed block still in quarantine; *name is its scope's name. */
bool cmt_quarantine_find(uintptr_t p, uint32_t *name);
/* Gives every quarantined block back (at exit, or when the quarantine is turned off). */
void cmt_quarantine_drain(struct cmt_thread *t);
/* Held across fork(), before the live table's shards. */
void cmt_bulk_lock_all(void);
void cmt_bulk_unlock_all(void);

/* ---- thread.c: per-thread state ----------------------------------------------------- */

/* A thread's sampling clock (timeline.c): tracked events left before it next looks at the
 * time, how many it lets pass between looks (1 to 256: fewer when its events are far apart in
 * time), and when it last looked. */
struct cmt_timeline_clock {
    int32_t countdown;          /* the look comes when it goes below 0 */
    uint32_t step;
    uint64_t last_look_ns;
};

struct cmt_thread {
    int busy;                       /* inside the tracker: nested calls are forwarded */
    int state;                      /* CMT_THREAD_* */
    uint32_t number;                /* thread number, from 1, unique in the process */
    uint32_t seq;                   /* allocations this thread has made */
    struct cmt_instance *top;       /* innermost open scope instance */
    int64_t live_delta;             /* live bytes not yet folded into the process total */
    int64_t peak_seen;              /* highest process live bytes this thread has seen */
    void *expect_free;              /* a scope's free_fn is handing this block back */
    struct cmt_young_set *young;    /* its young set (young.c), NULL until it has one */
    uint32_t young_retry;           /* allocations before it asks for a set again */
    /* Here rather than in a TLS variable of its own: every call counts it down, and this
     * block's address is already at hand. */
    struct cmt_timeline_clock clock;
};

enum { CMT_THREAD_NEW = 0, CMT_THREAD_LIVE = 1, CMT_THREAD_GONE = 2 };

extern __thread struct cmt_thread cmt_self CMT_TLS;

/* Sets up the calling thread's state (first call on a thread). */
void cmt_thread_attach(struct cmt_thread *t);

/* The calling thread's state, set up if this is its first call. */
static inline struct cmt_thread *cmt_thread_self(void)
{
    struct cmt_thread *t = &cmt_self;
    if (cmt_unlikely(t->state == CMT_THREAD_NEW))
        cmt_thread_attach(t);
    return t;
}
void cmt_thread_init(void);
/* Forgets the other threads in a fork child. */
void cmt_thread_after_fork_child(void);

/* ---- scope.c's counting rules, inline because every allocation and free runs them ---- */

/* The owner of an open instance counts with plain stores; everybody else, and the owner once
 * the instance has closed, through the atomics. */
static inline bool cmt_counts_as_owner(const struct cmt_thread *t,
                                       const struct cmt_instance *inst)
{
    return inst->owner == t->number &&
           atomic_load_explicit(&inst->state, memory_order_relaxed) == CMT_STATE_OPEN;
}

/* Accounts an allocation of size bytes to inst by its owner, inst open; far_live is its far
 * bytes allocated less far bytes freed, for the peak. */
static inline void cmt_instance_count_alloc_own(struct cmt_instance *inst, size_t size,
                                                uint64_t far_live)
{
    inst->own_allocs++;
    inst->own_bytes_allocated += size;
    uint64_t live = inst->own_bytes_allocated - inst->own_bytes_freed + far_live;
    if (live > inst->peak_live_bytes && live < (UINT64_C(1) << 63))
        inst->peak_live_bytes = live;
}

/* Accounts an allocation of size bytes to inst, made by thread t. */
static inline void cmt_instance_count_alloc(struct cmt_thread *t, struct cmt_instance *inst,
                                            size_t size)
{
    if (cmt_likely(cmt_counts_as_owner(t, inst)))
        cmt_instance_count_alloc_own(
            inst, size,
            atomic_load_explicit(&inst->far_bytes_allocated, memory_order_relaxed) -
                atomic_load_explicit(&inst->far_bytes_freed, memory_order_relaxed));
    else
        cmt_instance_count_alloc_far(inst, size);
}

/* Accounts a free of size bytes from inst, made by thread t (which may be anybody). Returns
 * true when that was the last block of a closed instance: the caller must then call
 * cmt_instance_retire(inst), outside any table lock. */
static inline bool cmt_instance_count_free(struct cmt_thread *t, struct cmt_instance *inst,
                                           size_t size)
{
    if (cmt_likely(cmt_counts_as_owner(t, inst))) {
        inst->own_frees++;
        inst->own_bytes_freed += size;
        return false;
    }
    return cmt_instance_count_free_far(inst, size);
}

/* ---- totals.c: process-wide live bytes and their peak ------------------------------- */

/* Live bytes are folded into a shared total from per-thread deltas, and each thread keeps the
 * highest total it has seen until its next fold: the peak is exact for a single thread and
 * low by at most (threads × CMT_LIVE_FLUSH) bytes with several. */
#define CMT_LIVE_FLUSH (256 * 1024)
extern atomic_llong cmt_live_bytes;
extern atomic_ullong cmt_peak_live_bytes;
void cmt_totals_flush(struct cmt_thread *t);

static inline void cmt_totals_alloc(struct cmt_thread *t, size_t size)
{
    t->live_delta += (int64_t)size;
    int64_t now = atomic_load_explicit(&cmt_live_bytes, memory_order_relaxed) + t->live_delta;
    if (now > t->peak_seen)
        t->peak_seen = now;
    if (cmt_unlikely(t->live_delta > CMT_LIVE_FLUSH))
        cmt_totals_flush(t);
}

static inline void cmt_totals_free(struct cmt_thread *t, size_t size)
{
    t->live_delta -= (int64_t)size;
    if (cmt_unlikely(t->live_delta < -CMT_LIVE_FLUSH))
        cmt_totals_flush(t);
}

/* ---- hooks.c: the interposed entry points ------------------------------------------- */

/* The next allocator in the lookup order (glibc, jemalloc, ...), found with RTLD_NEXT. */
struct cmt_next {
    void *(*malloc)(size_t);
    void *(*calloc)(size_t, size_t);
    void *(*realloc)(void *, size_t);
    void (*free)(void *);
    int (*posix_memalign)(void **, size_t, size_t);
    void *(*aligned_alloc)(size_t, size_t);
    void *(*memalign)(size_t, size_t);
    void *(*valloc)(size_t);
    void *(*pvalloc)(size_t);
    size_t (*malloc_usable_size)(void *);
};
extern struct cmt_next cmt_next;
/* Set once cmt_next is filled in. */
extern atomic_int cmt_resolved;
/* Fills in cmt_next; called once, by cmt_init. Exits the process when no allocator is found,
 * since nothing can run without one. */
void cmt_hooks_resolve(void);

/* Bad frees, counted process-wide. */
extern atomic_ullong cmt_invalid_frees, cmt_double_frees, cmt_stale_frees;

/* Records p, just allocated for size bytes, in inst (the pool calls' path). False when the
 * table is out of memory. */
bool cmt_record_alloc_in(struct cmt_thread *t, struct cmt_instance *inst, void *p,
                         size_t size);
/* Takes p, a live block of `instance` (of any instance for UINT32_MAX), out of the table and
 * counts it as freed by the program, as free() does; *free_fn gets the allocator it goes
 * back to (NULL: the next allocator). False, and nothing changed, when p is no such block. */
bool cmt_take_block(struct cmt_thread *t, void *p, uint32_t instance, cmt_free_fn_t *free_fn);
/* Copies p's record (young or in the table) to *out; false when p is no block of the
 * tracker's. t is busy. */
struct cmt_block;
bool cmt_lookup_block(struct cmt_thread *t, void *p, struct cmt_block *out);
/* Remembers p, a block the tracker could not record, so that its free goes through. */
void cmt_hooks_untracked_add(void *p);
/* Hands a block whose record is gone back to the allocator it came from: the next
 * allocator, or its scope's free_fn. */
void cmt_release(struct cmt_thread *t, void *p, cmt_free_fn_t free_fn);

/* ---- config.c: the CYMEMTRACK_* settings ------------------------------------------- */

#define CMT_STACK_MAX_DEPTH 64
#define CMT_STACK_DEPTH_DEFAULT 16
#define CMT_OUTPUT_DEFAULT "cymemtrack.%e.%p.cmt"
#define CMT_QUARANTINE_DEFAULT (UINT64_C(16) << 20)
#define CMT_PATH_MAX 4096

struct cmt_config {
    int stack_depth;            /* CYMEMTRACK_STACK_DEPTH: frames a stack, 0 for none */
    const char *output;         /* CYMEMTRACK_OUTPUT: report path template (%p, %e) */
    uint64_t quarantine_bytes;  /* CYMEMTRACK_QUARANTINE: bulk-freed bytes held back */
};
extern struct cmt_config cmt_cfg;
/* Reads the environment; called once at start, before anything is recorded. */
void cmt_config_init(void);

/* ---- stack.c: stack capture and the deduplicating stack table ----------------------- */

/* Captures the calling thread's stack, outermost frames dropped past cmt_cfg.stack_depth and
 * the tracker's own frames skipped, and returns its id in the stack table: equal stacks get
 * equal ids. Returns 0 when capture is off or fails, or the table is full. Called inside the
 * hooks with t->busy set: must not allocate through the tracked allocator. */
uint32_t cmt_stack_capture(void);
/* Called by cmt_stack_walk for each frame, innermost first: pc is the frame's return address
 * into its function, cfa its canonical frame address (the stack pointer before the call that
 * made it; deeper frames have lower ones). Returns false to end the walk. A call with pc 0
 * means the walk starts over from the innermost frame (another unwinder took over). */
typedef bool (*cmt_stack_visit)(void *arg, uintptr_t pc, uintptr_t cfa);
/* Walks the calling thread's stack past the tracker's own frames, up to max frames, whatever
 * cmt_cfg.stack_depth is; the outermost frame is not visited. Returns the frames visited (0
 * when there is no unwinder). Same constraints as cmt_stack_capture. */
int cmt_stack_walk(cmt_stack_visit visit, void *arg, int max);
/* The extent of the code whose unwind entry (.eh_frame) starts exactly at fn, or 0: the size
 * of a function whose symbol gives none. */
size_t cmt_stack_code_extent(const void *fn);
/* The return addresses of stack id, innermost first. False for an unknown id. */
bool cmt_stack_get(uint32_t id, const uintptr_t **pcs, uint32_t *depth);
/* Stack ids run from 1 to cmt_stack_count(). */
uint32_t cmt_stack_count(void);
void cmt_stack_init(void);
void cmt_stack_lock_all(void);
void cmt_stack_unlock_all(void);
/* Nonzero while the thread is inside a call to libunwind (see unwind-pipe.c). */
extern __thread int cmt_in_libunwind CMT_TLS;

/* ---- unwind-pipe.c (the shim only): libunwind's pipe, kept out of the program's way ---- */

/* False once the descriptors of libunwind's memory-check pipe have become files of the
 * program's own: libunwind must not run again. Weak: programs that link stack.c without the
 * shim have no such pipe to watch. */
bool cmt_unwind_pipe_intact(void) __attribute__((weak));
/* At start: finds the pipe and pipe2 that the exported ones forward to. */
void cmt_unwind_pipe_init(void);

/* ---- stackcount.c: allocations and bytes allocated per (scope name, stack) ---------- */

/* Every allocation recorded while stacks are captured (cmt_cfg.stack_depth > 0) is counted
 * under its scope's name and its stack id (0 when the capture failed). A thread counts into
 * a small direct-mapped cache of its own, without a shared write; an entry goes to the
 * shared table when another key takes its slot, when the thread exits, and in a fork child
 * (the threads that did not follow it). The report reads the shared table and every cache.
 * The shared table holds CMT_STACKCOUNT_KEYS keys; past that, an allocation is counted under
 * its scope name with stack 0, so that per scope the sums stay exact. */
#define CMT_STACKCOUNT_KEYS (UINT32_C(1) << 16)
#define CMT_STACKCOUNT_CACHE_BITS 9
#define CMT_STACKCOUNT_KEY_USED (UINT64_C(1) << 63)

struct cmt_stackcount_slot {
    /* USED | name << 32 | stack, 0 when empty. Written by the owning thread only; atomic
     * (relaxed: plain moves) because the report writer reads them from another thread. */
    _Atomic uint64_t key, allocs, bytes;
};

struct cmt_stackcount_cache {
    struct cmt_stackcount_slot slot[1u << CMT_STACKCOUNT_CACHE_BITS];
    struct cmt_stackcount_cache *all_next;      /* every cache made, never unlinked */
    struct cmt_stackcount_cache *free_next;     /* while no thread owns it */
};

/* The calling thread's cache; NULL before its first counted allocation and after its exit. */
extern __thread struct cmt_stackcount_cache *cmt_stackcount_mine CMT_TLS;

void cmt_stackcount_note_slow(struct cmt_thread *t, uint64_t key, size_t size);

/* The cache slot of a key, and a key's two halves. */
static inline struct cmt_stackcount_slot *cmt_stackcount_slot_of(struct cmt_stackcount_cache *c,
                                                                 uint64_t key)
{
    return &c->slot[(key * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - CMT_STACKCOUNT_CACHE_BITS)];
}

static inline uint32_t cmt_stackcount_key_name(uint64_t key)
{
    return (uint32_t)(key >> 32) & 0x7fffffffu;
}

/* Counts one allocation of size bytes in inst, made by t with stack id `stack`. Called by
 * the hooks in the critical section that records the block, so that fork (which holds every
 * shard lock) never sees one without the other; never blocks then, except on the first
 * allocation of a thread, which maps its cache. */
static inline void cmt_stackcount_note(struct cmt_thread *t, const struct cmt_instance *inst,
                                       uint32_t stack, size_t size)
{
    if (!cmt_cfg.stack_depth)
        return;
    uint64_t key = CMT_STACKCOUNT_KEY_USED | (uint64_t)inst->name << 32 | stack;
    struct cmt_stackcount_cache *c = cmt_stackcount_mine;
    if (cmt_likely(c != NULL)) {
        struct cmt_stackcount_slot *s = cmt_stackcount_slot_of(c, key);
        if (cmt_likely(atomic_load_explicit(&s->key, memory_order_relaxed) == key)) {
            atomic_store_explicit(&s->allocs,
                                  atomic_load_explicit(&s->allocs, memory_order_relaxed) + 1,
                                  memory_order_relaxed);
            atomic_store_explicit(&s->bytes,
                                  atomic_load_explicit(&s->bytes, memory_order_relaxed) + size,
                                  memory_order_relaxed);
            return;
        }
    }
    cmt_stackcount_note_slow(t, key, size);
}

/* One (scope name, stack) count, as the report lists it. A key may come more than once
 * (from the shared table and from threads' caches): the counts of equal keys add up. */
struct cmt_stackcount_entry {
    uint32_t name, stack;
    uint64_t allocs, bytes;
};
/* Calls fn for every count kept: the shared table, the per-name counts past its size (as
 * stack 0) and every thread's cache. Lock-free and async-signal-safe; allocations counted
 * meanwhile by other threads may be left out or, once, seen twice. */
void cmt_stackcount_foreach(void (*fn)(const struct cmt_stackcount_entry *e, void *arg),
                            void *arg);
/* The calling thread is exiting (thread.c): its cache goes to the shared table and is
 * recycled; its later allocations count straight into the shared table. */
void cmt_stackcount_thread_exit(void);
/* Held across fork(), after the live table's shards: the list of free caches. */
void cmt_stackcount_lock(void);
void cmt_stackcount_unlock(void);
/* In a fork child: the caches of the threads that did not follow go to the shared table. */
void cmt_stackcount_after_fork_child(void);

/* ---- badfree.c: frees the tracker refused, by kind and stack ------------------------ */

enum cmt_badfree_kind {
    CMT_BADFREE_INVALID = 0,    /* a pointer never handed out */
    CMT_BADFREE_DOUBLE = 1,     /* a block already freed */
    CMT_BADFREE_STALE = 2,      /* a block the tracker bulk-freed with its scope */
};
/* Records one refused free of ptr, from the stack with id stack; name is the scope that
 * bulk-freed it (CMT_BADFREE_STALE) or UINT32_MAX. Bounded memory: past the table's size the
 * counts go on, without new stacks. Async-signal-safe. */
void cmt_badfree_record(enum cmt_badfree_kind kind, uintptr_t ptr, uint32_t stack,
                        uint32_t name);
/* One (kind, stack, scope) key of refused frees, as the report lists it. */
struct cmt_badfree_entry {
    enum cmt_badfree_kind kind;
    uint32_t stack;             /* 0 for the frees counted after the table filled up */
    uint32_t name;              /* the bulk-freeing scope of a stale free, or UINT32_MAX */
    uint64_t count;
    uintptr_t sample;           /* the address of the first such free */
};
/* Calls fn for each key recorded so far, each key once. Lock-free: frees recorded meanwhile
 * may be left out. Async-signal-safe. */
void cmt_badfree_foreach(void (*fn)(const struct cmt_badfree_entry *e, void *arg), void *arg);
/* Frees of one kind recorded so far, those past the table's size included. */
uint64_t cmt_badfree_total(enum cmt_badfree_kind kind);

/* ---- report.c: the report file ------------------------------------------------------ */

/* How the process ended, as the report file says it (report-format.h, CMT_END_*). */
/* Writes the report now. how is a CMT_END_* value, code the exit status or signal number,
 * label the cmt_snapshot label or NULL. Never allocates through the tracked allocator;
 * usable from a fatal-signal handler. A write failure gives one diagnostic line. */
void cmt_report_write(int how, int code, const char *label);
/* The same, for a caller that may have interrupted the tracker on this thread (a fatal-signal
 * handler, or _exit or exec called from a program's signal handler): waits only briefly for
 * a table lock and reads the module map from /proc/self/maps instead of the loader's list,
 * whose lock the interrupted code may hold. */
void cmt_report_write_careful(int how, int code, const char *label);
/* A checkpoint (CMT_END_RUNNING), skipped when another thread is writing or an ending was
 * written already. The caller holds no tracker lock. */
void cmt_report_checkpoint(void);
/* Notes what later writes need and may no longer find (executable, start directory,
 * $TMPDIR); called once, from the library constructor. */
void cmt_report_init(void);
/* Held across fork(), so that a child never inherits a report half written. */
void cmt_report_lock(void);
void cmt_report_unlock(void);
/* In a fork child: a new process, which gets a file of its own at its first write. */
void cmt_report_after_fork_child(void);

/* ---- timeline.c: live bytes per scope over time ------------------------------------ */

/* Samples kept (fewer as they are thinned: every other one goes when the rows are full) and
 * scopes a sample names; the others are summed into one value. */
#define CMT_TIMELINE_ROWS 1024u
#define CMT_TIMELINE_TOP 15u

/* One sample: the CMT_TIMELINE_TOP scope names with the most live bytes (those with none left
 * out), then, under the name UINT32_MAX, the live bytes of all the other names when there are
 * any. */
struct cmt_timeline_sample {
    uint64_t unix_ns;
    uint32_t n;
    uint32_t name[CMT_TIMELINE_TOP + 1];
    uint64_t live[CMT_TIMELINE_TOP + 1];
};

/* A look at the clock, from cmt_clock_look: adapts the thread's step and takes a sample
 * when its time has come. */
void cmt_timeline_tick(void);
/* Calls fn for each sample kept, in no particular order, then for one taken now. For the
 * report writer (one at a time): lock-free and async-signal-safe, a row being rewritten
 * meanwhile is left out. */
void cmt_timeline_foreach(void (*fn)(const struct cmt_timeline_sample *s, void *arg),
                          void *arg);

/* ---- ending.c: exit, _exit, exec, fatal signals and checkpoints --------------------- */

/* Registers the exit handler, the fatal-signal handlers (where the program left the default
 * action) and the checkpoint clock; called once, from the library constructor. */
void cmt_ending_init(void);
void cmt_ending_after_fork_child(void);

/* The wall-clock second of the last checkpoint decision. */
extern atomic_long cmt_checkpoint_clock;
void cmt_checkpoint_slow(long now);
/* A thread's look at the clocks (the timeline's sampling clock decided it was time): takes
 * a timeline sample when one is due, and writes a checkpoint when the wall-clock second has
 * changed since the last one, so that a process killed by SIGKILL loses at most about its
 * last second. */
void cmt_clock_look(void);
/* Called by the hooks after each tracked allocation and free, busy, with no tracker lock
 * held: one thread-local decrement; the clocks are read every 1 to 256 calls (every call
 * when calls are far apart in time, see timeline.c). Never blocks. */
static inline void cmt_checkpoint_poll(void)
{
    if (cmt_unlikely(--cmt_self.clock.countdown < 0))
        cmt_clock_look();
}

/* ---- elfsyms.c: finding functions in the loaded modules ----------------------------- */

/* Finds the address of the function named `symbol` in the executable or any loaded shared
 * object, through the dynamic symbol table and, where the file on disk has one, .symtab (so
 * static functions are found). Returns NULL when absent; *size gets the symbol's size (0 if
 * unknown). Never allocates through the tracked allocator. Modules are searched in the
 * loader's order (the executable first), the tracker's own library never; in a module the
 * dynamic table wins, then a global .symtab symbol, then the first static one of that name.
 * An IFUNC (strlen, memcpy...) is resolved as the loader does, by calling its resolver: the
 * address is that of the implementation this CPU runs, its size 0 unless a symbol gives it. */
void *cmt_elfsyms_find(const char *symbol, size_t *size);
/* The definition of `symbol` (a function) that a call from this library would reach if this
 * library did not define it: the first in another module's dynamic table. No dlsym, so
 * usable from a signal handler. NULL when none. */
void *cmt_elfsyms_next(const char *symbol);
/* The size of the function symbol that starts exactly at addr (the largest, for aliases);
 * 0 when no symbol does or none says. */
size_t cmt_elfsyms_func_size(const void *addr);
/* The PROT_* bits of the module segment holding addr; -1 when no module maps it. */
int cmt_elfsyms_prot(const void *addr);
/* Arms the watch on the loader: from then on cmt_envscope_module_loaded() is called each time
 * modules were added (dlopen, dlmopen, glibc's own NSS/iconv loads), after they are mapped
 * and before their relocation and constructors, on the loading thread with the loader's lock
 * held (it may look symbols up, install hooks and allocate; never dlopen/dlclose). Done by an
 * entry hook on r_debug.r_brk (_dl_debug_state), not by interposing dlopen, which would make
 * the loader search the tracker's RUNPATH instead of the caller's. Returns 0, or -1 with a
 * static reason in *why. Idempotent. */
int cmt_elfsyms_watch_loads(const char **why);

/* ---- funchook.c: hooking a function's entry and return in memory --------------------- */

/* Called on the hooked function's thread at its entry, and at its return (or when an
 * exception or longjmp unwinds past it); arg is the one given at install. Both may allocate
 * through the hooks; errno is saved around them. They are called whatever cmt_self.busy is
 * (a function the tracker itself calls may be hooked): the callback checks it. A hooked call
 * made from inside a callback runs unhooked. What each way of leaving a call does is written
 * at the top of funchook.c. */
typedef void (*cmt_funchook_cb)(void *arg);

/* Hooks the function at addr so that on_enter runs at every call, before its first
 * instruction, and on_exit when that call ends. Returns 0, or -1 with *why set to a reason
 * ("too short to patch", "a jump into its first bytes, from the instruction at +12",
 * "already hooked", ...: static, or in a thread-local buffer valid until the thread's next
 * install), in which case nothing was changed. x86-64 with Zydis only; elsewhere always -1.
 * Serialized; meant for start-up, see funchook.c on installs while other threads run. */
int cmt_funchook_install(void *addr, cmt_funchook_cb on_enter, cmt_funchook_cb on_exit,
                         void *arg, const char **why);
/* An entry-only hook (no return redirection), for the loader watch (elfsyms.c) on
 * _dl_debug_state, a lone `ret`: like every hook, it may end in the alignment padding after
 * a function shorter than the jump. */
int cmt_funchook_install_notify(void *addr, cmt_funchook_cb fn, void *arg, const char **why);
/* Where every redirected return goes (funchook-stub.S). A stack walk from inside a hooked
 * call reads it as the hooked frame's return address; no unwind rule covers it, so the walk
 * must translate it (compare first: the call is for that case only). */
extern char cmt_funchook_return_stub[];
/* The real return address for pc == cmt_funchook_return_stub read at sp - 8 (sp: the
 * hooked frame's CFA); any other pc is returned as is. Calling thread only. */
uintptr_t cmt_funchook_real_return(uintptr_t pc, uintptr_t sp);
/* In an on_enter callback: the hooked call's stack pointer at its entry (the address of its
 * return address). Calling thread only; meaningless elsewhere. */
uintptr_t cmt_funchook_entry_sp(void);
/* Hooked calls that ran unhooked because the thread's shadow stack (128 deep) was full. */
uint64_t cmt_funchook_missed(void);

/* ---- envscope.c: CYMEMTRACK_SCOPES -------------------------------------------------- */

/* Parses CYMEMTRACK_SCOPES and arms its triggers; called once at start. */
void cmt_envscope_init(void);
/* A thread was just attached (thread.c): opens its thread: scope if its name matches. */
void cmt_envscope_thread_start(struct cmt_thread *t);
/* Does what a signal handler asked for (a signal: window opening or closing); called by a
 * thread that saw CMT_READY_PENDING, not busy. */
void cmt_envscope_pending(struct cmt_thread *t);
/* A module was dlopen'ed: func: entries not found so far are looked for again. */
void cmt_envscope_module_loaded(void);
/* Set while some func: entry whose function could not be hooked is found by inspecting the
 * stack: the hooks then choose every allocation's instance in their slow path, through
 * cmt_envscope_owner. */
extern atomic_int cmt_envscope_inspect;
/* The instance an allocation by t (live, busy) belongs to: top, t's innermost scope, or the
 * instance of an inspected function running deeper than every scope top stands for. */
struct cmt_instance *cmt_envscope_owner(struct cmt_thread *t, struct cmt_instance *top);

/* ---- lifecycle.c: init, fork, exit -------------------------------------------------- */

/* CMT_READY once the tracker records; 0 before init and while it is resolving. Other bits
 * ask the next call into the tracker to do deferred work (cmt_envscope_pending). */
extern atomic_int cmt_ready;
#define CMT_READY 1
#define CMT_READY_PENDING 2
void cmt_init(void);

#endif /* CMT_H */
