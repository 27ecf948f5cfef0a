/*
 * bench/reference.c — two preloadable yardsticks for the cost of a malloc/free pair, never
 * part of the tracker. They answer "how much of the tracker's price is the preload itself,
 * and how much would any exact tracker pay", so that issue 4's target can be read against
 * them (bench/run's micro pairs rows "ref-forward" and "ref-floor").
 *
 * Built twice:
 * - libref-forward.so: malloc and free found with dlsym(RTLD_NEXT) and called, nothing more.
 *   The price of interposing at all: two calls through a pointer and a reentrancy test.
 * - libref-floor.so (REF_FLOOR): the least that keeps an exact record of every block the
 *   pair loop makes. malloc stores the block's record (address, size, sequence number) in
 *   a thread-local slot chosen by address and counts it (allocations, bytes, live bytes and
 *   its peak, the process's live bytes and their peak); free finds the slot, empties it,
 *   counts the free and remembers the address for double-free detection. That is the work
 *   the tracker's own fast path does for a block that lives and dies in one scope on one
 *   thread, with everything else left out: a table for blocks that outlive their slot (an
 *   occupied slot is simply overwritten), scopes, other threads' frees, fork, signals, other
 *   entry points (calloc, realloc... go straight to the next allocator, untracked). It is a
 *   lower bound, not a tracker: its records are dropped whenever two blocks share a slot.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define TLS __attribute__((tls_model("initial-exec")))

extern void *__libc_malloc(size_t size);
extern void __libc_free(void *p);

static void *(*next_malloc)(size_t);
static void (*next_free)(void *);
static atomic_bool ready;

/* Set while this thread is inside dlsym or the next allocator: its calls go to glibc. */
static TLS __thread int busy;

__attribute__((constructor)) static void resolve(void)
{
    busy = 1;
    next_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
    next_free = (void (*)(void *))dlsym(RTLD_NEXT, "free");
    busy = 0;
    atomic_store_explicit(&ready, next_malloc && next_free, memory_order_release);
}

#ifdef REF_FLOOR
#define SLOTS 256u          /* as the tracker's young sets */
#define GRAVES 16384u       /* as the tracker's graveyard */

struct record {
    uintptr_t ptr;
    uint64_t size;
    uint32_t seq;
};

struct counts {
    uint64_t allocs, frees, bytes, live, peak;
    int64_t process_delta, process_peak;
    uint32_t seq;
};

static TLS __thread struct record slot[SLOTS];
static TLS __thread struct counts counts;
static atomic_int_fast64_t process_live;        /* never flushed to: read, as the tracker does */
static atomic_uintptr_t grave[GRAVES];

static inline struct record *slot_of(void *p)
{
    return &slot[((uintptr_t)p >> 4) & (SLOTS - 1)];
}

static inline void note_alloc(void *p, size_t size)
{
    struct counts *c = &counts;
    struct record *r = slot_of(p);
    r->size = size;
    r->seq = ++c->seq;
    __atomic_store_n(&r->ptr, (uintptr_t)p, __ATOMIC_RELEASE);
    c->allocs++;
    c->bytes += size;
    c->live += size;
    if (c->live > c->peak)
        c->peak = c->live;
    c->process_delta += (int64_t)size;
    int64_t now =
        atomic_load_explicit(&process_live, memory_order_relaxed) + c->process_delta;
    if (now > c->process_peak)
        c->process_peak = now;
}

static inline void note_free(void *p)
{
    struct record *r = slot_of(p);
    if (r->ptr != (uintptr_t)p)
        return;
    struct counts *c = &counts;
    uint64_t size = r->size;
    __atomic_store_n(&r->ptr, 0, __ATOMIC_RELEASE);
    c->frees++;
    c->live -= size;
    c->process_delta -= (int64_t)size;
    uint64_t g = ((uint64_t)((uintptr_t)p >> 4) * UINT64_C(0x9E3779B97F4A7C15)) >> 50;
    atomic_store_explicit(&grave[g], (uintptr_t)p, memory_order_relaxed);
}
#else
static inline void note_alloc(void *p, size_t size)
{
    (void)p;
    (void)size;
}

static inline void note_free(void *p)
{
    (void)p;
}
#endif

void *malloc(size_t size)
{
    if (__builtin_expect(busy || !atomic_load_explicit(&ready, memory_order_relaxed), 0))
        return __libc_malloc(size);
    busy = 1;
    void *p = next_malloc(size);
    if (__builtin_expect(p != NULL, 1))
        note_alloc(p, size);
    busy = 0;
    return p;
}

void free(void *p)
{
    if (__builtin_expect(busy || !atomic_load_explicit(&ready, memory_order_relaxed), 0)) {
        __libc_free(p);
        return;
    }
    if (p)
        note_free(p);
    next_free(p);
}
