/*
 * report-builder.c — writes report files byte by byte for tests (see report-builder.h).
 * It knows the format from src/report-format.h only, never from the library's writer, so a
 * bug shared by writer and reader cannot hide. Aborts on misuse or lack of memory: it is
 * test scaffolding, not product code.
 */
#include "report-builder.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report-format.h"

void cmt_rb_init(struct cmt_rb *b)
{
    memset(b, 0, sizeof *b);
    b->open = SIZE_MAX;
}

void cmt_rb_free(struct cmt_rb *b)
{
    free(b->buf);
    cmt_rb_init(b);
}

void cmt_rb_bytes(struct cmt_rb *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        while (ncap < b->len + n)
            ncap *= 2;
        unsigned char *nb = realloc(b->buf, ncap);
        if (!nb)
            abort();
        b->buf = nb;
        b->cap = ncap;
    }
    if (n)
        memcpy(b->buf + b->len, p, n);
    b->len += n;
}

void cmt_rb_u8(struct cmt_rb *b, uint8_t v)
{
    cmt_rb_bytes(b, &v, 1);
}

void cmt_rb_u32(struct cmt_rb *b, uint32_t v)
{
    unsigned char le[4];
    for (int i = 0; i < 4; i++)
        le[i] = (unsigned char)(v >> (8 * i));
    cmt_rb_bytes(b, le, 4);
}

void cmt_rb_u64(struct cmt_rb *b, uint64_t v)
{
    cmt_rb_u32(b, (uint32_t)v);
    cmt_rb_u32(b, (uint32_t)(v >> 32));
}

void cmt_rb_str(struct cmt_rb *b, const char *s, size_t n)
{
    if (n == SIZE_MAX)
        n = strlen(s);
    cmt_rb_u32(b, (uint32_t)n);
    cmt_rb_bytes(b, s, n);
}

void cmt_rb_header(struct cmt_rb *b, uint32_t version, uint32_t header_size)
{
    cmt_rb_bytes(b, CMT_REPORT_MAGIC, CMT_REPORT_MAGIC_LEN);
    cmt_rb_u32(b, version);
    cmt_rb_u32(b, header_size);
    /* A header larger than today's is padded, as a later writer's would be. */
    for (uint32_t i = CMT_REPORT_HEADER_SIZE; i < header_size; i++)
        cmt_rb_u8(b, 0xEE);
}

size_t cmt_rb_begin(struct cmt_rb *b, uint32_t type)
{
    if (b->open != SIZE_MAX)
        abort();
    b->open = b->len;
    cmt_rb_u32(b, type);
    cmt_rb_u32(b, 0);
    return b->open;
}

size_t cmt_rb_end(struct cmt_rb *b)
{
    size_t at = b->open;
    if (at == SIZE_MAX)
        abort();
    cmt_rb_patch32(b, at + 4, (uint32_t)(b->len - at - 8));
    b->open = SIZE_MAX;
    return at;
}

void cmt_rb_patch32(struct cmt_rb *b, size_t off, uint32_t v)
{
    if (off + 4 > b->len)
        abort();
    for (int i = 0; i < 4; i++)
        b->buf[off + i] = (unsigned char)(v >> (8 * i));
}

void cmt_rb_patch64(struct cmt_rb *b, size_t off, uint64_t v)
{
    cmt_rb_patch32(b, off, (uint32_t)v);
    cmt_rb_patch32(b, off + 4, (uint32_t)(v >> 32));
}

size_t cmt_rb_process(struct cmt_rb *b, uint32_t pid, uint32_t ppid, uint64_t start_ns,
                      uint64_t write_ns, const char *exe, uint32_t argc,
                      const char *const *argv)
{
    cmt_rb_begin(b, CMT_REC_PROCESS);
    cmt_rb_u32(b, pid);
    cmt_rb_u32(b, ppid);
    cmt_rb_u64(b, start_ns);
    cmt_rb_u64(b, write_ns);
    cmt_rb_str(b, exe, SIZE_MAX);
    cmt_rb_u32(b, argc);
    for (uint32_t i = 0; i < argc; i++)
        cmt_rb_str(b, argv[i], SIZE_MAX);
    return cmt_rb_end(b);
}

size_t cmt_rb_module(struct cmt_rb *b, uint64_t start, uint64_t end, uint64_t file_offset,
                     const char *path, const void *build_id, size_t build_id_len)
{
    cmt_rb_begin(b, CMT_REC_MODULE);
    cmt_rb_u64(b, start);
    cmt_rb_u64(b, end);
    cmt_rb_u64(b, file_offset);
    cmt_rb_str(b, path, SIZE_MAX);
    cmt_rb_str(b, build_id, build_id_len);
    return cmt_rb_end(b);
}

size_t cmt_rb_stack(struct cmt_rb *b, uint32_t id, uint32_t depth, const uint64_t *pcs)
{
    cmt_rb_begin(b, CMT_REC_STACK);
    cmt_rb_u32(b, id);
    cmt_rb_u32(b, depth);
    for (uint32_t i = 0; i < depth; i++)
        cmt_rb_u64(b, pcs[i]);
    return cmt_rb_end(b);
}

size_t cmt_rb_scope(struct cmt_rb *b, uint32_t id, uint8_t kind, const char *name,
                    const struct cmt_rb_scope *c)
{
    cmt_rb_begin(b, CMT_REC_SCOPE);
    cmt_rb_u32(b, id);
    cmt_rb_u8(b, kind);
    cmt_rb_str(b, name, SIZE_MAX);
    const uint64_t v[] = { c->instances, c->allocations, c->bytes_allocated, c->frees,
                           c->bytes_freed, c->outlived_at_close, c->bulk_freed_blocks,
                           c->bulk_freed_bytes, c->peak_live_bytes };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        cmt_rb_u64(b, v[i]);
    return cmt_rb_end(b);
}

size_t cmt_rb_leak(struct cmt_rb *b, uint32_t scope, uint32_t stack, uint64_t blocks,
                   uint64_t bytes, uint64_t blocks_in_closed, uint64_t bytes_in_closed,
                   uint32_t nsamples, const uint64_t *samples)
{
    cmt_rb_begin(b, CMT_REC_LEAK);
    cmt_rb_u32(b, scope);
    cmt_rb_u32(b, stack);
    cmt_rb_u64(b, blocks);
    cmt_rb_u64(b, bytes);
    cmt_rb_u64(b, blocks_in_closed);
    cmt_rb_u64(b, bytes_in_closed);
    cmt_rb_u32(b, nsamples);
    for (uint32_t i = 0; i < nsamples; i++)
        cmt_rb_u64(b, samples[i]);
    return cmt_rb_end(b);
}

size_t cmt_rb_badfree(struct cmt_rb *b, uint8_t kind, uint32_t stack, uint32_t scope,
                      uint64_t count, uint64_t sample_addr)
{
    cmt_rb_begin(b, CMT_REC_BADFREE);
    cmt_rb_u8(b, kind);
    cmt_rb_u32(b, stack);
    cmt_rb_u32(b, scope);
    cmt_rb_u64(b, count);
    cmt_rb_u64(b, sample_addr);
    return cmt_rb_end(b);
}

size_t cmt_rb_allocsite(struct cmt_rb *b, uint32_t scope, uint32_t stack, uint64_t allocations,
                        uint64_t bytes)
{
    cmt_rb_begin(b, CMT_REC_ALLOCSITE);
    cmt_rb_u32(b, scope);
    cmt_rb_u32(b, stack);
    cmt_rb_u64(b, allocations);
    cmt_rb_u64(b, bytes);
    return cmt_rb_end(b);
}

size_t cmt_rb_totals(struct cmt_rb *b, const uint64_t v[9])
{
    cmt_rb_begin(b, CMT_REC_TOTALS);
    for (int i = 0; i < 9; i++)
        cmt_rb_u64(b, v[i]);
    return cmt_rb_end(b);
}

size_t cmt_rb_end_rec(struct cmt_rb *b, uint8_t how, int32_t code, const char *label)
{
    cmt_rb_begin(b, CMT_REC_END);
    cmt_rb_u8(b, how);
    cmt_rb_u32(b, (uint32_t)code);
    cmt_rb_str(b, label, SIZE_MAX);
    return cmt_rb_end(b);
}

int cmt_rb_write(const struct cmt_rb *b, const char *path, size_t len)
{
    if (len == SIZE_MAX || len > b->len)
        len = b->len;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, b->buf + off, len - off);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    return close(fd);
}
