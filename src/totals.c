/*
 * totals.c — process-wide live bytes and their peak.
 *
 * Each thread keeps a local delta of live bytes and folds it into one shared total when it
 * moves by more than CMT_LIVE_FLUSH, at thread exit and before a report, so the shared cache
 * lines are written rarely. Each thread also remembers the highest total it has seen, which
 * it folds into the shared peak at the same moments. The peak is exact for one thread, and
 * low by at most threads × CMT_LIVE_FLUSH bytes with several.
 */
#include "config.h"

#include "cmt.h"

atomic_llong cmt_live_bytes;
atomic_ullong cmt_peak_live_bytes;

void cmt_totals_flush(struct cmt_thread *t)
{
    int64_t now = atomic_fetch_add_explicit(&cmt_live_bytes, t->live_delta,
                                            memory_order_relaxed) + t->live_delta;
    t->live_delta = 0;
    if (now > t->peak_seen)
        t->peak_seen = now;
    unsigned long long peak = atomic_load_explicit(&cmt_peak_live_bytes, memory_order_relaxed);
    while (t->peak_seen > 0 && (uint64_t)t->peak_seen > peak &&
           !atomic_compare_exchange_weak_explicit(&cmt_peak_live_bytes, &peak,
                                                  (uint64_t)t->peak_seen,
                                                  memory_order_relaxed, memory_order_relaxed))
        ;
}
