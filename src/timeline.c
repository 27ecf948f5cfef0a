/*
 * timeline.c — live bytes per scope over time: a bounded set of samples, thinned as the run
 * goes on, that the report writes as TIMELINE records (report-format.h).
 *
 * Owns the sample rows, the sampling clock and the thinning. Samples are taken by whichever
 * thread's tracked allocation or free finds the deadline passed (cmt_checkpoint_poll, then
 * cmt_clock_look), by one thread at a time, never waiting for another. Never allocates
 * through the tracked allocator, never takes a lock, and lets the report writer read the rows
 * at any moment, from a signal handler too: a row being rewritten is skipped, not torn.
 */
#define _GNU_SOURCE
#include "config.h"

#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cmt.h"

/* A thread looks at the clocks, for a timeline sample and for a checkpoint, at most every
 * this many tracked events: the two clock reads (20 to 30 ns) then cost about 0.1 ns an
 * event, and a busy program still gets a sample within ten microseconds or so of its
 * deadline. A thread whose events are far apart looks more often, down to every event, so
 * that a slow program is sampled and checkpointed on time too. The price: when a burst of
 * events ends and they become rare, up to this many less one pass before the next look. */
#define EVENTS_PER_LOOK_MAX 256u
/* The wall-clock second of the checkpoints (ending.c). */
#define CHECKPOINT_PERIOD_NS 1000000000ull
/* The first interval between samples; it doubles each time the rows fill up, so that after a
 * run of T the samples are between T / CMT_TIMELINE_ROWS and 2T / CMT_TIMELINE_ROWS apart. */
#define FIRST_INTERVAL_NS 1000000ull
/* A sample that took D keeps the next one at least this many times D away: sampling never
 * costs more than about 1% of the run, however many scope instances there are to walk (a
 * sample walks every instance record: about 5 us for the first thousand, measured). */
#define COST_FACTOR 100u

/* One sample as stored: `t` doubles as the row's version. The sampler sets it to 0 before
 * rewriting the row and to the sample's time after, so that a reader that sees the same
 * non-zero t before and after copying the row has a whole sample. */
struct row {
    atomic_ullong t;
    atomic_uint n;
    atomic_uint name[CMT_TIMELINE_TOP + 1];
    atomic_ullong live[CMT_TIMELINE_TOP + 1];
};

static struct {
    /* The pid of the process whose thread is sampling, 0 when nobody is. A fork child finds
     * its parent's pid here if the fork came in the middle of a sample, and takes over. */
    atomic_int claim;
    atomic_ullong next_ns;          /* CLOCK_MONOTONIC time of the next sample */
    atomic_int pid;                 /* the process the rows belong to; 0 before any */
    struct row *rows;               /* CMT_TIMELINE_ROWS of them, mapped at the first sample */
    atomic_int oom_said;
    /* The sampler's own, under the claim. */
    atomic_ullong interval_ns;      /* written by the sampler; read by every thread's clock */
    uint32_t used;                          /* rows holding samples */
    uint16_t order[CMT_TIMELINE_ROWS];      /* those rows, oldest first */
    uint16_t free_rows[CMT_TIMELINE_ROWS];  /* the others, a stack */
    uint32_t nfree;
    int64_t sum[CMT_NAME_MAX];
    /* The report writer's own (one writer at a time: the report lock). */
    int64_t wsum[CMT_NAME_MAX];
} tl;

static uint64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Live bytes of every scope name, summed over its instances now: those retired have none.
 * The counts of an instance other threads are updating may be a little stale or, for an
 * instance being recycled, mixed up: a sum below zero is taken as zero. Lock-free. */
static void live_by_name(int64_t sum[CMT_NAME_MAX], uint32_t names)
{
    memset(sum, 0, sizeof(int64_t) * CMT_NAME_MAX);
    /* Instance records come in chunks published in order, each whole: the first id without
     * a record ends them. */
    const struct cmt_instance *inst;
    for (uint32_t id = 0; (inst = cmt_instance_get(id)) != NULL; id++) {
        if (atomic_load_explicit(&inst->state, memory_order_acquire) == CMT_STATE_FREE)
            continue;
        uint32_t name = inst->name;
        if (name >= names)
            continue;
        struct cmt_counters c;
        cmt_instance_counters(inst, &c);
        sum[name] += (int64_t)(c.bytes_allocated - c.bytes_freed - c.bulk_freed_bytes);
    }
}

/* The CMT_TIMELINE_TOP names with the most live bytes into s, and the rest summed under
 * UINT32_MAX when they have any. */
static void pick_top(const int64_t sum[CMT_NAME_MAX], uint32_t names,
                     struct cmt_timeline_sample *s)
{
    s->n = 0;
    uint64_t rest = 0;
    for (uint32_t k = 0; k < names; k++) {
        uint64_t v = sum[k] > 0 ? (uint64_t)sum[k] : 0;
        if (!v)
            continue;
        if (s->n < CMT_TIMELINE_TOP) {
            s->name[s->n] = k;
            s->live[s->n++] = v;
            continue;
        }
        /* Full: v replaces the smallest kept when larger, which then joins the rest. */
        uint32_t min = 0;
        for (uint32_t j = 1; j < s->n; j++)
            if (s->live[j] < s->live[min])
                min = j;
        if (v > s->live[min]) {
            rest += s->live[min];
            s->name[min] = k;
            s->live[min] = v;
        } else {
            rest += v;
        }
    }
    if (rest) {
        s->name[s->n] = UINT32_MAX;
        s->live[s->n++] = rest;
    }
}

static void row_store(struct row *r, const struct cmt_timeline_sample *s)
{
    atomic_store_explicit(&r->t, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&r->n, s->n, memory_order_relaxed);
    for (uint32_t i = 0; i < s->n; i++) {
        atomic_store_explicit(&r->name[i], s->name[i], memory_order_relaxed);
        atomic_store_explicit(&r->live[i], s->live[i], memory_order_relaxed);
    }
    atomic_store_explicit(&r->t, s->unix_ns, memory_order_release);
}

/* Copies row r into *s; false when it holds no whole sample. */
static bool row_load(struct row *r, struct cmt_timeline_sample *s)
{
    uint64_t t = atomic_load_explicit(&r->t, memory_order_acquire);
    if (!t)
        return false;
    uint32_t n = atomic_load_explicit(&r->n, memory_order_relaxed);
    if (n > CMT_TIMELINE_TOP + 1)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        s->name[i] = atomic_load_explicit(&r->name[i], memory_order_relaxed);
        s->live[i] = atomic_load_explicit(&r->live[i], memory_order_relaxed);
    }
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&r->t, memory_order_relaxed) != t)
        return false;
    s->unix_ns = t;
    s->n = n;
    return true;
}

/* Forgets every sample: the first sample of a process, or of a fork child, whose rows are its
 * parent's past. Under the claim. */
static void reset(int pid)
{
    if (tl.rows)
        for (uint32_t i = 0; i < CMT_TIMELINE_ROWS; i++)
            atomic_store_explicit(&tl.rows[i].t, 0, memory_order_relaxed);
    tl.used = 0;
    tl.nfree = CMT_TIMELINE_ROWS;
    for (uint32_t i = 0; i < CMT_TIMELINE_ROWS; i++)
        tl.free_rows[i] = (uint16_t)(CMT_TIMELINE_ROWS - 1 - i);
    atomic_store_explicit(&tl.interval_ns, FIRST_INTERVAL_NS, memory_order_relaxed);
    atomic_store_explicit(&tl.pid, pid, memory_order_release);
}

/* The rows are full: every other sample goes, oldest kept, and the interval doubles. */
static void thin(void)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < tl.used; i++) {
        uint16_t slot = tl.order[i];
        if (i % 2 == 0) {
            tl.order[kept++] = slot;
        } else {
            atomic_store_explicit(&tl.rows[slot].t, 0, memory_order_release);
            tl.free_rows[tl.nfree++] = slot;
        }
    }
    tl.used = kept;
    atomic_store_explicit(&tl.interval_ns,
                          2 * atomic_load_explicit(&tl.interval_ns, memory_order_relaxed),
                          memory_order_relaxed);
}

static CMT_NOINLINE void sample(uint64_t mono)
{
    int pid = (int)syscall(SYS_getpid);
    int held = atomic_load_explicit(&tl.claim, memory_order_relaxed);
    if (held == pid)
        return;     /* another thread of this process is sampling */
    /* 0, or the pid of a parent that forked in the middle of a sample. */
    if (!atomic_compare_exchange_strong(&tl.claim, &held, pid))
        return;
    if (mono < atomic_load_explicit(&tl.next_ns, memory_order_relaxed) && held == 0)
        goto out;   /* somebody sampled since this thread looked at the deadline */
    if (atomic_load_explicit(&tl.pid, memory_order_relaxed) != pid)
        reset(pid);
    if (!tl.rows) {
        tl.rows = cmt_raw_map(CMT_TIMELINE_ROWS * sizeof *tl.rows);
        if (!tl.rows) {
            if (!atomic_exchange(&tl.oom_said, 1))
                cmt_diag("out of memory for the live-bytes timeline; the report has none");
            atomic_store_explicit(&tl.next_ns, UINT64_MAX, memory_order_relaxed);
            goto out;
        }
    }
    if (tl.nfree == 0)
        thin();
    /* The cost that throttles: the walk, not the one-time set-up above. */
    uint64_t t0 = now_ns(CLOCK_MONOTONIC);
    struct cmt_timeline_sample s;
    uint32_t names = cmt_name_count();
    if (names > CMT_NAME_MAX)
        names = CMT_NAME_MAX;
    live_by_name(tl.sum, names);
    pick_top(tl.sum, names, &s);
    s.unix_ns = now_ns(CLOCK_REALTIME);
    if (!s.unix_ns)
        s.unix_ns = 1;
    uint16_t slot = tl.free_rows[--tl.nfree];
    row_store(&tl.rows[slot], &s);
    tl.order[tl.used++] = slot;

    uint64_t cost = now_ns(CLOCK_MONOTONIC) - t0;
    uint64_t interval = atomic_load_explicit(&tl.interval_ns, memory_order_relaxed);
    uint64_t wait = interval > COST_FACTOR * cost ? interval : COST_FACTOR * cost;
    atomic_store_explicit(&tl.next_ns, mono + wait, memory_order_relaxed);
out:
    atomic_store_explicit(&tl.claim, 0, memory_order_release);
}

void cmt_timeline_tick(void)
{
    struct cmt_timeline_clock *c = &cmt_self.clock;
    uint64_t mono = now_ns(CLOCK_MONOTONIC);
    /* A stale interval only makes the step adapt a little late. */
    uint64_t interval = atomic_load_explicit(&tl.interval_ns, memory_order_relaxed);
    if (!interval)
        interval = FIRST_INTERVAL_NS;
    /* The same looks decide the checkpoints (cmt_clock_look), owed once a wall-clock second:
     * however far apart samples are, a look comes at least every quarter second or so. */
    if (interval > CHECKPOINT_PERIOD_NS)
        interval = CHECKPOINT_PERIOD_NS;
    uint64_t since = mono - c->last_look_ns;
    if (since > interval / 4 || c->step == 0)
        c->step = c->step > 1 ? c->step / 2 : 1;
    else if (since < interval / 16 && c->step < EVENTS_PER_LOOK_MAX)
        c->step *= 2;
    c->last_look_ns = mono;
    c->countdown = (int32_t)c->step - 1;
    if (mono >= atomic_load_explicit(&tl.next_ns, memory_order_relaxed))
        sample(mono);
}

void cmt_timeline_foreach(void (*fn)(const struct cmt_timeline_sample *s, void *arg),
                          void *arg)
{
    struct cmt_timeline_sample s;
    struct row *rows = tl.rows;
    if (rows && atomic_load_explicit(&tl.pid, memory_order_acquire) == (int)syscall(SYS_getpid))
        for (uint32_t i = 0; i < CMT_TIMELINE_ROWS; i++)
            if (row_load(&rows[i], &s))
                fn(&s, arg);
    /* And one taken now, so that the timeline reaches the moment the report describes. */
    uint32_t names = cmt_name_count();
    if (names > CMT_NAME_MAX)
        names = CMT_NAME_MAX;
    live_by_name(tl.wsum, names);
    pick_top(tl.wsum, names, &s);
    s.unix_ns = now_ns(CLOCK_REALTIME);
    if (s.unix_ns)
        fn(&s, arg);
}
