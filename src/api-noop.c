/*
 * api-noop.c — libcymemtrack-api.so: the cymemtrack.h functions for a process that runs
 * without the tracker.
 *
 * A program links this (`pkg-config --libs cymemtrack`) and runs unchanged: each call is a
 * cheap no-op. When libcymemtrack.so is preloaded, the dynamic linker finds its definitions
 * first, and these are never called. Keep every signature here identical to api.c's.
 */
#include "config.h"

#include <string.h>

#include "cymemtrack.h"

#define CMT_EXPORT __attribute__((visibility("default")))

CMT_EXPORT int cmt_active(void)
{
    return 0;
}

CMT_EXPORT int cmt_process_stats(struct cmt_process_stats *stats)
{
    if (stats)
        memset(stats, 0, sizeof *stats);
    return -1;
}
