/*
 * young.c — each thread's newest blocks, kept out of the live table.
 *
 * Owns the young sets (cmt.h says why they exist and how threads share them): handing them
 * out and taking them back, every move of a block from a set to the table, the claim of a
 * block by a thread that frees another thread's young block, the report's walk, and the
 * passage through fork(). The hot path that fills and empties a thread's own slots is in
 * hooks.c, inline. Never allocates through the tracked allocator; takes a shard lock only
 * after the sets' own lock, never the other way round.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cmt.h"

struct cmt_young cmt_young;

/* ---- the owners' barrier (see struct cmt_young_set) ------------------------------------ */

static long membarrier(int cmd)
{
    return syscall(SYS_membarrier, cmd, 0, 0);
}

/* Does a seccomp filter watch this process's system calls ("Seccomp: 2" in
 * /proc/self/status)? A filter may answer a call it does not know, membarrier among them,
 * by killing the process: then the tracker does not make that call. False when the file
 * cannot be read. */
static bool seccomp_filtered(void)
{
    char buf[4096];
    int fd = (int)syscall(SYS_openat, AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t len = 0;
    for (;;) {
        long n = syscall(SYS_read, fd, buf + len, sizeof buf - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        if (len == sizeof buf - 1)
            break;
    }
    syscall(SYS_close, fd);
    buf[len] = '\0';
    const char *at = strstr(buf, "\nSeccomp:");
    if (!at)
        return false;
    at += strlen("\nSeccomp:");
    while (*at == ' ' || *at == '\t')
        at++;
    return *at == '2';
}

/* Can fork's prepare handler make every running thread of the process pass a full barrier?
 * Then owners need none. Not where the kernel is older than 4.14, or a sandbox (seccomp)
 * filters the process's calls. */
static bool light_possible(void)
{
    if (seccomp_filtered())
        return false;
    long cmds = membarrier(MEMBARRIER_CMD_QUERY);
    return cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
           membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

/* The registration belongs to the address space: a fork child has it too (the kernel clears
 * it at exec only), so the child needs no call of its own, which its sandbox, if it installs
 * one, might not allow. */
void cmt_young_init(void)
{
    atomic_store_explicit(&cmt_young.light, light_possible(), memory_order_relaxed);
}

/* fork's half of the owners' barrier, after the gate has closed. */
static void barrier_for_owners(void)
{
    if (!atomic_load_explicit(&cmt_young.light, memory_order_relaxed) || cmt_solo())
        return;     /* the owners' own stores are sequentially consistent, or none run */
    int e = errno;
    /* A sandbox the program installed since the start may kill a membarrier call. */
    bool filtered = seccomp_filtered();
    if (!filtered && membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) {
        errno = e;
        return;
    }
    /* From now on owners take the barrier themselves. One that announced a change with a
     * plain store just now may not be seen; its store leaves the core within nanoseconds,
     * and the wait that follows yields first. */
    int why = errno;
    errno = e;
    atomic_store_explicit(&cmt_young.light, false, memory_order_seq_cst);
    if (!filtered)
        cmt_diag("fork: membarrier() failed (errno %d); threads inside the tracker now "
                 "take their own barrier", why);
    sched_yield();
}

/* A block leaves its set: its instance's count of young blocks goes down. Only the set's
 * owner changes that count, or a fork child for a thread that is gone. */
static void count_out(const struct cmt_block *b)
{
    struct cmt_instance *inst = cmt_instance_get(b->instance);
    if (inst)
        __atomic_store_n(&inst->young_blocks,
                         __atomic_load_n(&inst->young_blocks, __ATOMIC_RELAXED) - 1,
                         __ATOMIC_RELAXED);
}

void cmt_young_drop(struct cmt_block *b)
{
    count_out(b);
    __atomic_store_n(&b->ptr, 0, __ATOMIC_RELEASE);
}

void cmt_young_evict(struct cmt_block *b)
{
    uintptr_t ptr = __atomic_load_n(&b->ptr, __ATOMIC_ACQUIRE);
    if (ptr == 0)
        return;
    if (!(ptr & CMT_YOUNG_CLAIMED)) {
        /* Claims take the same shard lock: once it is held the slot cannot change under us,
         * and whoever looks for the block finds it in the slot or in the table. */
        struct cmt_shard *s = cmt_table_lock_ptr(&cmt_live, ptr);
        if (__atomic_load_n(&b->ptr, __ATOMIC_ACQUIRE) == ptr) {
            bool moved = cmt_shard_insert(&cmt_live, s, b);
            __atomic_store_n(&b->ptr, 0, __ATOMIC_RELEASE);
            cmt_shard_unlock(s);
            if (!moved)
                cmt_hooks_untracked_add((void *)ptr);
            count_out(b);
            return;
        }
        cmt_shard_unlock(s);
    }
    cmt_young_drop(b);      /* claimed: the block is gone already, and counted */
}

void cmt_young_wait_gate(struct cmt_young_set *y)
{
    for (;;) {
        while (atomic_load_explicit(&cmt_young.gate, memory_order_acquire))
            sched_yield();
        atomic_store_explicit(&y->changing, 1, memory_order_seq_cst);
        if (!atomic_load_explicit(&cmt_young.gate, memory_order_seq_cst))
            return;
        atomic_store_explicit(&y->changing, 0, memory_order_release);
    }
}

/* ---- handing sets out ---------------------------------------------------------------- */

/* After a thread found every set taken, how many of its allocations go to the table before
 * it looks again (another thread may have exited meanwhile). */
#define ACQUIRE_RETRY 65536u

struct cmt_young_set *cmt_young_acquire(struct cmt_thread *t)
{
    if (t->young)
        return t->young;
    if (t->young_retry) {
        t->young_retry--;
        return NULL;
    }
    struct cmt_young_set *y = NULL;
    cmt_spin_lock(&cmt_young.lock);
    unsigned n = atomic_load_explicit(&cmt_young.sets, memory_order_relaxed);
    for (unsigned i = 0; i < n && !y; i++) {
        struct cmt_young_set *c = atomic_load_explicit(&cmt_young.set[i], memory_order_relaxed);
        if (atomic_load_explicit(&c->owner, memory_order_relaxed) == 0)
            y = c;
    }
    if (!y && n < CMT_YOUNG_SETS) {
        y = cmt_raw_map(sizeof *y);     /* zeroed: every slot empty, no target */
        if (y) {
            atomic_store_explicit(&cmt_young.set[n], y, memory_order_release);
            atomic_store_explicit(&cmt_young.sets, n + 1, memory_order_release);
        }
    }
    if (y) {
        atomic_store_explicit(&y->owner, t->number, memory_order_relaxed);
        t->young = y;
    } else {
        t->young_retry = ACQUIRE_RETRY;
    }
    cmt_spin_unlock(&cmt_young.lock);
    return y;
}

/* Moves every block of y to the table (its owner's, entered, or a fork child's for a thread
 * that is gone) and forgets the target. */
static void empty_set(struct cmt_young_set *y)
{
    atomic_store_explicit(&y->target, NULL, memory_order_relaxed);
    if (!atomic_load_explicit(&y->any, memory_order_acquire))
        return;
    for (uint32_t i = 0; i < CMT_YOUNG_SLOTS; i++)
        cmt_young_evict(&y->slot[i]);
    atomic_store_explicit(&y->any, false, memory_order_relaxed);
}

void cmt_young_thread_exit(struct cmt_thread *t)
{
    struct cmt_young_set *y = t->young;
    if (!y)
        return;
    cmt_young_enter(y);
    empty_set(y);
    cmt_young_leave(y);
    cmt_spin_lock(&cmt_young.lock);
    t->young = NULL;
    atomic_store_explicit(&y->owner, 0, memory_order_release);
    cmt_spin_unlock(&cmt_young.lock);
}

/* ---- another thread's young block ---------------------------------------------------- */

/* Copies slot b's record, which held ptr when looked at, field by field: its owner may be
 * rewriting it (then ptr has changed, which the caller's claim or second look sees). */
static void copy_record(const struct cmt_block *b, uintptr_t ptr, struct cmt_block *out)
{
    out->ptr = ptr;
    out->size_thread = __atomic_load_n(&b->size_thread, __ATOMIC_RELAXED);
    out->instance = __atomic_load_n(&b->instance, __ATOMIC_RELAXED);
    out->stack = __atomic_load_n(&b->stack, __ATOMIC_RELAXED);
    out->seq = __atomic_load_n(&b->seq, __ATOMIC_RELAXED);
    out->flags = __atomic_load_n(&b->flags, __ATOMIC_RELAXED);
}

/* p's slot in a set other than t's own that holds p, with a copy of its record; NULL when
 * there is none. */
static struct cmt_block *find_elsewhere(const struct cmt_thread *t, uintptr_t p,
                                        struct cmt_block *out)
{
    unsigned n = atomic_load_explicit(&cmt_young.sets, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        struct cmt_young_set *y = atomic_load_explicit(&cmt_young.set[i], memory_order_acquire);
        if (y == t->young || !atomic_load_explicit(&y->any, memory_order_acquire))
            continue;
        struct cmt_block *b = cmt_young_slot(y, p);
        if (__atomic_load_n(&b->ptr, __ATOMIC_ACQUIRE) == p) {
            copy_record(b, p, out);
            return b;
        }
    }
    return NULL;
}

bool cmt_young_claim(const struct cmt_thread *t, uintptr_t p, uint32_t instance,
                     struct cmt_block *out)
{
    struct cmt_block *b = find_elsewhere(t, p, out);
    if (!b || (instance != UINT32_MAX && out->instance != instance))
        return false;
    uintptr_t expected = p;
    /* Fails only when the owner freed p at this very moment too: a double free. */
    return __atomic_compare_exchange_n(&b->ptr, &expected, p | CMT_YOUNG_CLAIMED, false,
                                       __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

bool cmt_young_peek(const struct cmt_thread *t, uintptr_t p, struct cmt_block *out)
{
    return find_elsewhere(t, p, out) != NULL;
}

/* ---- targets and closing instances --------------------------------------------------- */

void cmt_young_set_target(struct cmt_young_set *y, struct cmt_instance *inst)
{
    /* Before the first block can go in: a walk looks at the slots from here on. */
    atomic_store_explicit(&y->any, true, memory_order_release);
    atomic_store_explicit(&y->target, inst, memory_order_relaxed);
}

void cmt_young_release(struct cmt_thread *t, struct cmt_instance *inst)
{
    struct cmt_young_set *y = t->young;
    if (!y)
        return;
    if (atomic_load_explicit(&y->target, memory_order_relaxed) == inst)
        atomic_store_explicit(&y->target, NULL, memory_order_relaxed);
    /* Most instances close with none: a scope that freed what it made closes without a
     * walk of the slots. */
    if (!__atomic_load_n(&inst->young_blocks, __ATOMIC_RELAXED))
        return;
    cmt_young_enter(y);
    for (uint32_t i = 0; i < CMT_YOUNG_SLOTS && __atomic_load_n(&inst->young_blocks,
                                                                 __ATOMIC_RELAXED); i++) {
        struct cmt_block *b = &y->slot[i];
        if (__atomic_load_n(&b->ptr, __ATOMIC_RELAXED) != 0 && b->instance == inst->id)
            cmt_young_evict(b);
    }
    cmt_young_leave(y);
}

void cmt_young_retarget(void)
{
    unsigned n = atomic_load_explicit(&cmt_young.sets, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        struct cmt_young_set *y = atomic_load_explicit(&cmt_young.set[i], memory_order_acquire);
        atomic_store_explicit(&y->target, NULL, memory_order_relaxed);
    }
}

/* ---- the report's walk ------------------------------------------------------------- */

void cmt_young_foreach(void (*fn)(const struct cmt_block *b, void *arg), void *arg)
{
    unsigned n = atomic_load_explicit(&cmt_young.sets, memory_order_acquire);
    for (unsigned i = 0; i < n; i++) {
        struct cmt_young_set *y = atomic_load_explicit(&cmt_young.set[i], memory_order_acquire);
        if (!atomic_load_explicit(&y->any, memory_order_acquire))
            continue;
        /* A slot's other fields are written before its ptr, which is emptied before they
         * are rewritten: a record read between two equal looks at ptr is whole. (A signal
         * handler's walk cannot see its own thread change a slot meanwhile at all.) */
        for (uint32_t j = 0; j < CMT_YOUNG_SLOTS; j++) {
            const struct cmt_block *b = &y->slot[j];
            uintptr_t ptr = __atomic_load_n(&b->ptr, __ATOMIC_ACQUIRE);
            if (ptr == 0 || (ptr & CMT_YOUNG_CLAIMED))
                continue;
            struct cmt_block copy;
            copy_record(b, ptr, &copy);
            atomic_thread_fence(memory_order_acquire);
            if (__atomic_load_n(&b->ptr, __ATOMIC_RELAXED) == ptr)
                fn(&copy, arg);
        }
    }
}

static void count_one(const struct cmt_block *b, void *arg)
{
    (void)b;
    ++*(size_t *)arg;
}

size_t cmt_young_count(void)
{
    size_t n = 0;
    cmt_young_foreach(count_one, &n);
    return n;
}

/* ---- fork ---------------------------------------------------------------------------- */

/* How long fork() waits for one owner to finish its change: an owner can only be stopped
 * there for good by a signal handler that blocks, and the fork must go on then. */
#define FORK_WAIT_YIELDS 100000u

void cmt_young_fork_prepare(void)
{
    atomic_store_explicit(&cmt_young.gate, 1, memory_order_seq_cst);
    barrier_for_owners();
    cmt_spin_lock(&cmt_young.lock);
    struct cmt_young_set *mine = cmt_self.young;
    unsigned n = atomic_load_explicit(&cmt_young.sets, memory_order_relaxed);
    bool said = false;
    for (unsigned i = 0; i < n; i++) {
        struct cmt_young_set *y = atomic_load_explicit(&cmt_young.set[i], memory_order_relaxed);
        if (y == mine)
            continue;
        unsigned yields = 0;
        while (atomic_load_explicit(&y->changing, memory_order_seq_cst) &&
               yields < FORK_WAIT_YIELDS) {
            sched_yield();
            yields++;
        }
        if (yields == FORK_WAIT_YIELDS && !said) {
            said = true;
            cmt_diag("fork: a thread stayed inside the tracker; the child's counts of its "
                     "newest blocks may be off by one");
        }
    }
}

void cmt_young_fork_parent(void)
{
    cmt_spin_unlock(&cmt_young.lock);
    atomic_store_explicit(&cmt_young.gate, 0, memory_order_release);
}

void cmt_young_fork_child(const struct cmt_thread *t)
{
    /* The other owners are gone: their blocks, which the child has too, go to the table,
     * and their sets are free for the child's next threads. */
    unsigned n = atomic_load_explicit(&cmt_young.sets, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++) {
        struct cmt_young_set *y = atomic_load_explicit(&cmt_young.set[i], memory_order_relaxed);
        if (y == t->young)
            continue;
        empty_set(y);
        atomic_store_explicit(&y->changing, 0, memory_order_relaxed);
        atomic_store_explicit(&y->owner, 0, memory_order_relaxed);
    }
    cmt_spin_unlock(&cmt_young.lock);
    atomic_store_explicit(&cmt_young.gate, 0, memory_order_release);
}
