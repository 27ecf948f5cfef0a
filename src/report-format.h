/*
 * report-format.h — the report file format, shared by the library (writer) and tools/
 * (reader). Documented for users in cymemtrack-report(5); change both together.
 *
 * A report is a file header followed by records. Every number is little-endian. Every
 * record starts with a type and the length of what follows, so a reader skips record types
 * it does not know and detects a file cut short: a complete file ends with exactly one END
 * record, and a file without one was cut short (the process was killed, or the disk filled).
 * The size of a report grows with the distinct stacks, scopes and leak sites, never with the
 * number of allocations.
 *
 *   header  := magic[8] = "CYMEMTRK", u32 version, u32 header_size (bytes from file start to
 *              the first record; readers skip anything after the version they do not know)
 *   record  := u32 type, u32 length, payload[length]
 *   str     := u32 n, n bytes (UTF-8 or whatever bytes the system gave; not NUL-terminated)
 *
 * Record payloads, in the order a writer emits them (readers accept any order, but each
 * STACK, MODULE and SCOPE must precede the records that refer to it):
 *
 *   PROCESS  u32 pid, u32 ppid, u64 start_unix_ns, u64 write_unix_ns, str exe,
 *            u32 argc, str argv[argc]
 *   MODULE   u64 start, u64 end, u64 file_offset, str path, str build_id (raw bytes, may be
 *            empty). [start, end) is one executable mapping; file_offset is the file offset
 *            that start maps, so a return address pc lies at file offset
 *            pc - start + file_offset of path.
 *   STACK    u32 id, u32 depth, u64 pc[depth], innermost first. Ids start at 1; 0 means "no
 *            stack" wherever a stack id appears.
 *   SCOPE    u32 id, u8 kind (CMT_KIND_*), str name, u64 instances, u64 allocations,
 *            u64 bytes_allocated, u64 frees, u64 bytes_freed, u64 outlived_at_close,
 *            u64 bulk_freed_blocks, u64 bulk_freed_bytes, u64 peak_live_bytes
 *            (outlived_at_close: blocks still live when their instance closed, whether or
 *            not the program freed them later.)
 *   LEAK     u32 scope, u32 stack, u64 blocks, u64 bytes, u64 blocks_in_closed,
 *            u64 bytes_in_closed, u32 nsamples, u64 sample_addr[nsamples] (at most
 *            CMT_LEAK_SAMPLES). One record per (scope, stack) with blocks still live;
 *            *_in_closed counts those whose scope instance had closed.
 *   ALLOCSITE u32 scope, u32 stack, u64 allocations, u64 bytes_allocated (version 3):
 *            allocations per (scope, stack), written when stacks were captured
 *            (CYMEMTRACK_STACK_DEPTH > 0; without them there are none). Stack 0 counts the
 *            allocations whose stack was not captured, or came after the tracker's table of
 *            (scope, stack) pairs was full. One key may come in several records, whose counts
 *            add up. Summed over a scope they equal its SCOPE allocations and bytes_allocated
 *            (exactly, unless other threads were allocating while the report was written).
 *   BADFREE  u8 kind (CMT_BADFREE_*), u32 stack, u32 scope (the bulk-freeing scope of a
 *            stale free, or UINT32_MAX), u64 count, u64 sample_addr
 *   TIMELINE u64 time_unix_ns, u32 n, then n times (u32 scope, u64 live_bytes): one sample
 *            of live bytes per scope (version 2). The scopes with the most live bytes at that
 *            moment, at most CMT_TIMELINE_MAX_SCOPES, each at most once; scope UINT32_MAX
 *            stands for all the other scopes together. A scope not named had none or was
 *            among the others. Samples come in no particular order (readers sort them by
 *            time); the writer keeps at most a few thousand, thinned as the run goes on, and
 *            the last one is taken as the report is written.
 *   TOTALS   u64 allocations, u64 bytes_allocated, u64 frees, u64 live_blocks,
 *            u64 live_bytes, u64 peak_live_bytes, u64 invalid_frees, u64 double_frees,
 *            u64 stale_frees
 *   END      u8 how (CMT_END_*), i32 code (exit status, or signal number for
 *            CMT_END_SIGNAL and CMT_END_ABORT), str label (cmt_snapshot's label, or empty)
 *
 * A report written while the process still runs (the periodic checkpoint, so that at most
 * about a second is lost when the process is killed) ends with END how=CMT_END_RUNNING; a
 * reader shows such a file as "killed" and incomplete when no later write replaced it.
 */
#ifndef CMT_REPORT_FORMAT_H
#define CMT_REPORT_FORMAT_H

#define CMT_REPORT_MAGIC "CYMEMTRK"
#define CMT_REPORT_MAGIC_LEN 8
/* Version 2 added TIMELINE, version 3 ALLOCSITE; a file without them reads as version 1
 * did. */
#define CMT_REPORT_VERSION 3u
#define CMT_REPORT_HEADER_SIZE 16u

enum cmt_record_type {
    CMT_REC_PROCESS = 1,
    CMT_REC_MODULE = 2,
    CMT_REC_STACK = 3,
    CMT_REC_SCOPE = 4,
    CMT_REC_LEAK = 5,
    CMT_REC_BADFREE = 6,
    CMT_REC_TOTALS = 7,
    CMT_REC_END = 8,
    CMT_REC_TIMELINE = 9,
    CMT_REC_ALLOCSITE = 10,
};

/* How the process ended (END.how). */
enum cmt_end_how {
    CMT_END_EXIT = 0,       /* returned from main or called exit(); code = status */
    CMT_END_SIGNAL = 1,     /* a fatal signal; code = signal number */
    CMT_END_ABORT = 2,      /* abort(); code = SIGABRT */
    CMT_END_EXEC = 3,       /* replaced by execve(); code = 0 */
    CMT_END_UNDERSCORE_EXIT = 4,   /* _exit() or _Exit(); code = status */
    CMT_END_RUNNING = 5,    /* a checkpoint: the process was still running */
    CMT_END_SNAPSHOT = 6,   /* cmt_snapshot(); label = its label; the process went on */
};

/* Scope kinds (SCOPE.kind); the same values as the library's enum cmt_scope_kind. */
enum cmt_report_scope_kind {
    CMT_REPORT_KIND_GLOBAL = 0,
    CMT_REPORT_KIND_API = 1,
    CMT_REPORT_KIND_FUNC = 2,
    CMT_REPORT_KIND_THREAD = 3,
    CMT_REPORT_KIND_SIGNAL = 4,
};

/* Bad-free kinds (BADFREE.kind). */
enum cmt_report_badfree_kind {
    CMT_REPORT_BADFREE_INVALID = 0,
    CMT_REPORT_BADFREE_DOUBLE = 1,
    CMT_REPORT_BADFREE_STALE = 2,
};

#define CMT_LEAK_SAMPLES 4u
/* Scopes a TIMELINE record names, "the others" included. */
#define CMT_TIMELINE_MAX_SCOPES 16u

/* Sanity bounds a reader enforces, so a corrupt length cannot make it allocate wildly. */
#define CMT_REPORT_MAX_RECORD (64u << 20)
#define CMT_REPORT_MAX_DEPTH 256u

#endif /* CMT_REPORT_FORMAT_H */
