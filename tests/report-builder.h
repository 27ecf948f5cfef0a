/*
 * report-builder.h — builds report files record by record for the reader's tests and the
 * fuzz seeds, independently of the library's writer: valid files, and broken ones through
 * the raw calls (any type, any length, bytes patched after the fact). Test code only:
 * allocates with malloc and aborts when it cannot.
 */
#ifndef CMT_TEST_REPORT_BUILDER_H
#define CMT_TEST_REPORT_BUILDER_H

#include <stddef.h>
#include <stdint.h>

struct cmt_rb {
    unsigned char *buf;
    size_t len, cap;
    size_t open;            /* start of the record being built, or SIZE_MAX */
};

/* Starts an empty buffer; cmt_rb_free releases it. */
void cmt_rb_init(struct cmt_rb *b);
void cmt_rb_free(struct cmt_rb *b);

/* The 16-byte header: "CYMEMTRK", version, header size. */
void cmt_rb_header(struct cmt_rb *b, uint32_t version, uint32_t header_size);

/* Raw pieces, appended little-endian. */
void cmt_rb_u8(struct cmt_rb *b, uint8_t v);
void cmt_rb_u32(struct cmt_rb *b, uint32_t v);
void cmt_rb_u64(struct cmt_rb *b, uint64_t v);
void cmt_rb_bytes(struct cmt_rb *b, const void *p, size_t n);
/* A str: u32 length, then the bytes (n of them; n = strlen(s) when n is SIZE_MAX). */
void cmt_rb_str(struct cmt_rb *b, const char *s, size_t n);

/* A record by hand: begin writes type and a length that end fills in. Both return the
 * offset where the record starts. */
size_t cmt_rb_begin(struct cmt_rb *b, uint32_t type);
size_t cmt_rb_end(struct cmt_rb *b);

/* Overwrites 4 or 8 bytes at off (to corrupt a length or a field after the fact). */
void cmt_rb_patch32(struct cmt_rb *b, size_t off, uint32_t v);
void cmt_rb_patch64(struct cmt_rb *b, size_t off, uint64_t v);

/* Whole records; each returns the offset where it starts. Field offsets inside a record:
 * the payload starts at +8. */
size_t cmt_rb_process(struct cmt_rb *b, uint32_t pid, uint32_t ppid, uint64_t start_ns,
                      uint64_t write_ns, const char *exe, uint32_t argc,
                      const char *const *argv);
size_t cmt_rb_module(struct cmt_rb *b, uint64_t start, uint64_t end, uint64_t file_offset,
                     const char *path, const void *build_id, size_t build_id_len);
size_t cmt_rb_stack(struct cmt_rb *b, uint32_t id, uint32_t depth, const uint64_t *pcs);

/* A scope's counters, in the record's order. */
struct cmt_rb_scope {
    uint64_t instances, allocations, bytes_allocated, frees, bytes_freed;
    uint64_t outlived_at_close, bulk_freed_blocks, bulk_freed_bytes, peak_live_bytes;
};
size_t cmt_rb_scope(struct cmt_rb *b, uint32_t id, uint8_t kind, const char *name,
                    const struct cmt_rb_scope *c);
size_t cmt_rb_leak(struct cmt_rb *b, uint32_t scope, uint32_t stack, uint64_t blocks,
                   uint64_t bytes, uint64_t blocks_in_closed, uint64_t bytes_in_closed,
                   uint32_t nsamples, const uint64_t *samples);
size_t cmt_rb_badfree(struct cmt_rb *b, uint8_t kind, uint32_t stack, uint32_t scope,
                      uint64_t count, uint64_t sample_addr);
size_t cmt_rb_allocsite(struct cmt_rb *b, uint32_t scope, uint32_t stack, uint64_t allocations,
                        uint64_t bytes);
/* The nine TOTALS counters, in the record's order. */
size_t cmt_rb_totals(struct cmt_rb *b, const uint64_t v[9]);
size_t cmt_rb_end_rec(struct cmt_rb *b, uint8_t how, int32_t code, const char *label);

/* Writes the first len bytes (all of them when len is SIZE_MAX) to path; 0 or -1. */
int cmt_rb_write(const struct cmt_rb *b, const char *path, size_t len);

#endif
