/*
 * thread.c — per-thread state: the thread's number, its scope stack and its counters.
 *
 * Owns the initial-exec TLS block every hook reads first, the first-use setup of a thread and
 * its end: at thread exit the scopes it left open close, its own instance of the global scope
 * closes (its live blocks stay accounted), and later allocations by the dying thread go to the
 * shared instance. Never allocates through the tracked allocator.
 */
#include "config.h"

#include <pthread.h>

#include "cmt.h"

__thread struct cmt_thread cmt_self CMT_TLS;

static struct {
    pthread_key_t exit_key;
    bool have_key;
    atomic_uint next_number;
} th = { .next_number = 1 };

/* Runs as the thread exits (a pthread key destructor), before its TLS goes away. */
static void thread_exit(void *arg)
{
    (void)arg;
    struct cmt_thread *t = &cmt_self;
    if (t->state != CMT_THREAD_LIVE)
        return;
    t->busy++;
    while (t->top) {
        struct cmt_instance *inst = t->top;
        if (inst->kind != CMT_KIND_GLOBAL && inst->kind != CMT_KIND_THREAD)
            cmt_diag("scope \"%s\" was still open when its thread exited; closed it",
                     cmt_name_string(inst->name));
        cmt_instance_close(t, inst);
    }
    cmt_young_thread_exit(t);   /* empty now but for blocks other threads claimed */
    cmt_stackcount_thread_exit();
    cmt_totals_flush(t);
    t->state = CMT_THREAD_GONE;
    t->busy--;
}

void cmt_thread_attach(struct cmt_thread *t)
{
    if (t->state == CMT_THREAD_GONE)
        return;     /* a thread past its exit: callers use the shared instance */
    t->number = atomic_fetch_add_explicit(&th.next_number, 1, memory_order_relaxed);
    t->top = NULL;
    if (!cmt_instance_open(t, CMT_NAME_GLOBAL, 0)) {
        t->state = CMT_THREAD_GONE;     /* out of memory: count this thread as shared */
        return;
    }
    t->state = CMT_THREAD_LIVE;
    /* Any non-NULL value makes the destructor run. The key was made at init, among the
     * first of the process, so this stores into the thread's static key slots and does not
     * allocate. */
    if (th.have_key)
        pthread_setspecific(th.exit_key, t);
    cmt_envscope_thread_start(t);
}

void cmt_thread_init(void)
{
    th.have_key = pthread_key_create(&th.exit_key, thread_exit) == 0;
    if (!th.have_key)
        cmt_diag("no thread-exit hook available; scopes left open by exiting threads stay "
                 "open");
}

void cmt_thread_after_fork_child(void)
{
    /* The other threads are gone; their instances stay, with their live blocks, owned by
     * thread numbers that will never count again, which is what those blocks are. */
}
