/*
 * stats-delta.c — the process totals' change over a window, for suites that run under the
 * preload. Its own member of libcmttest.a: only suites that call it need the cymemtrack API.
 *
 * Check's assertions allocate (they record where they are), so a test measures a window
 * between cmt_stats_snap() and cmt_stats_delta() that holds no assertion, and asserts after.
 */
#include "harness.h"

#include <stdlib.h>

#include "cymemtrack.h"

static struct cmt_process_stats before;

void cmt_stats_snap(void)
{
    if (cmt_process_stats(&before) != 0)
        abort();
}

struct cmt_process_stats cmt_stats_delta(void)
{
    struct cmt_process_stats now, d;
    if (cmt_process_stats(&now) != 0)
        abort();
    d.allocations = now.allocations - before.allocations;
    d.bytes_allocated = now.bytes_allocated - before.bytes_allocated;
    d.frees = now.frees - before.frees;
    d.live_blocks = now.live_blocks - before.live_blocks;
    d.live_bytes = now.live_bytes - before.live_bytes;
    d.peak_live_bytes = now.peak_live_bytes;
    d.invalid_frees = now.invalid_frees - before.invalid_frees;
    d.double_frees = now.double_frees - before.double_frees;
    d.stale_frees = now.stale_frees - before.stale_frees;
    d.bulk_freed_blocks = now.bulk_freed_blocks - before.bulk_freed_blocks;
    d.bulk_freed_bytes = now.bulk_freed_bytes - before.bulk_freed_bytes;
    return d;
}
