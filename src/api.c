/*
 * api.c — the public cmt_* functions of cymemtrack.h, as the preloaded library has them.
 *
 * Thin: each checks its arguments, says what is wrong in one line, and calls into scope.c.
 * api-noop.c has the same functions as cheap no-ops for programs running without the preload.
 */
#include "config.h"

#include <string.h>

#include "cmt.h"
#include "cymemtrack.h"

CMT_EXPORT int cmt_active(void)
{
    return atomic_load_explicit(&cmt_ready, memory_order_acquire);
}

CMT_EXPORT int cmt_process_stats(struct cmt_process_stats *stats)
{
    if (!stats)
        return -1;
    memset(stats, 0, sizeof *stats);
    if (!cmt_active())
        return -1;
    struct cmt_thread *t = &cmt_self;
    t->busy++;
    cmt_totals_flush(t);
    for (uint32_t n = 0; n < cmt_name_count(); n++) {
        struct cmt_counters c;
        uint64_t instances;
        cmt_name_counters(n, &c, &instances);
        stats->allocations += c.allocs;
        stats->bytes_allocated += c.bytes_allocated;
        stats->frees += c.frees;
        stats->live_bytes += c.bytes_allocated - c.bytes_freed;
    }
    stats->live_blocks = cmt_table_count(&cmt_live);
    stats->peak_live_bytes = atomic_load(&cmt_peak_live_bytes);
    stats->invalid_frees = atomic_load(&cmt_invalid_frees);
    stats->double_frees = atomic_load(&cmt_double_frees);
    t->busy--;
    return 0;
}
