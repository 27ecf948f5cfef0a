/*
 * cymemtrack.h — the public interface of cymemtrack.
 *
 * Every function here is safe to call whether or not libcymemtrack.so is preloaded: a program
 * linked with `pkg-config --libs cymemtrack` gets cheap no-op versions that the preloaded
 * library overrides. See cymemtrack(3).
 */
#ifndef CYMEMTRACK_H
#define CYMEMTRACK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CMT_API_VERSION 1

/* Process-wide totals, as the tracker sees them now. */
struct cmt_process_stats {
    uint64_t allocations;       /* blocks handed out (a realloc counts as one, and one free) */
    uint64_t bytes_allocated;   /* bytes requested over all those allocations */
    uint64_t frees;             /* blocks given back by the program */
    uint64_t live_blocks;       /* blocks live now */
    uint64_t live_bytes;        /* bytes live now */
    uint64_t peak_live_bytes;   /* highest live bytes seen (see cymemtrack(3) for threads) */
    uint64_t invalid_frees;     /* frees of pointers never handed out: ignored */
    uint64_t double_frees;      /* frees of blocks already freed: ignored */
};

/* 1 when the tracker is recording this process, 0 when the calls are no-ops. */
int cmt_active(void);

/* Fills *stats and returns 0; returns -1 and zeroes *stats when the tracker is not active. */
int cmt_process_stats(struct cmt_process_stats *stats);

#ifdef __cplusplus
}
#endif

#endif /* CYMEMTRACK_H */
