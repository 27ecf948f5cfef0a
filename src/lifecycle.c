/*
 * lifecycle.c — the tracker's start and its passage through fork.
 *
 * Owns the one-time initialization, which may be triggered by the first allocation of any
 * thread (long before constructors run) or by the library constructor, whichever comes
 * first; and the fork handlers that hold every tracker lock across fork(), so that a child
 * never inherits a lock that a thread which no longer exists was holding.
 */
#include "config.h"

#include <pthread.h>

#include "cmt.h"

atomic_int cmt_ready;

enum { PHASE_NONE, PHASE_RUNNING, PHASE_DONE };
static atomic_int phase;

/* Fork handlers. Ours is registered first, so its prepare handler runs last, after every
 * other library's, and nothing allocates between it and the fork itself. */
static void fork_prepare(void)
{
    cmt_self.busy++;
    /* First: a thread changing its young set may write a checkpoint, capture a stack or
     * move a block to the table, which takes the locks below. */
    cmt_young_fork_prepare();
    cmt_report_lock();      /* a report being written takes the locks below */
    cmt_scope_lock_all();
    cmt_bulk_lock_all();
    cmt_stack_lock_all();   /* before the arena lock: adding a stack takes it */
    cmt_raw_lock();
    cmt_table_lock_all(&cmt_live);
    cmt_stackcount_lock();  /* last: a thread may take it with a shard lock held */
}

static void fork_parent(void)
{
    cmt_stackcount_unlock();
    cmt_table_unlock_all(&cmt_live);
    cmt_raw_unlock();
    cmt_stack_unlock_all();
    cmt_bulk_unlock_all();
    cmt_scope_unlock_all();
    cmt_report_unlock();
    cmt_young_fork_parent();
    cmt_self.busy--;
}

static void fork_child(void)
{
    cmt_stackcount_after_fork_child();     /* unlocks it */
    cmt_table_unlock_all(&cmt_live);
    cmt_raw_unlock();
    cmt_stack_unlock_all();
    cmt_bulk_unlock_all();
    cmt_scope_unlock_all();
    cmt_scope_after_fork_child();
    cmt_thread_after_fork_child();
    cmt_report_unlock();
    cmt_young_fork_child(&cmt_self);    /* moves blocks to the table: after its unlock */
    cmt_ending_after_fork_child();
    cmt_self.busy--;
}

void cmt_init(void)
{
    int expected = PHASE_NONE;
    if (atomic_compare_exchange_strong(&phase, &expected, PHASE_RUNNING)) {
        cmt_hooks_resolve();
        cmt_unwind_pipe_init();
        cmt_config_init();
        cmt_stack_init();
        cmt_scope_init();
        if (!cmt_instance_shared()) {
            cmt_diag("out of memory while starting; nothing will be tracked");
            atomic_store(&phase, PHASE_DONE);
            return;
        }
        cmt_thread_init();
        cmt_young_init();
        if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0)
            cmt_diag("cannot register fork handlers; a child forked while other threads "
                     "allocate may hang");
        atomic_store_explicit(&cmt_ready, 1, memory_order_release);
        atomic_store(&phase, PHASE_DONE);
        return;
    }
    /* Another thread is starting the tracker: wait for it. (This thread's own nested calls
     * during start never get here: they are marked busy and take the forwarding route.) */
    while (atomic_load(&phase) != PHASE_DONE)
        __builtin_ia32_pause();
}

/* Starts the tracker even in a program that never allocates before main. */
__attribute__((constructor)) static void cmt_constructor(void)
{
    cmt_self.busy++;
    cmt_init();
    /* Here, not in cmt_init: that may run inside the first malloc, called by libc code
     * holding the lock that registering an exit handler takes. */
    if (atomic_load_explicit(&cmt_ready, memory_order_acquire)) {
        cmt_ending_init();
        cmt_envscope_init();
    }
    cmt_self.busy--;
}
