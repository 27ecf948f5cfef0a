/*
 * parse-size.h — the size syntax of the CYMEMTRACK_* settings (cymemtrack(7)) and of the
 * command-line options that take a size, in one place for the library and the tools.
 *
 * Header-only: the library may not call stdio or allocate, and the tools link none of the
 * library's objects.
 */
#ifndef CMT_PARSE_SIZE_H
#define CMT_PARSE_SIZE_H

#include <stdbool.h>
#include <stdint.h>

/* A whole decimal number with an optional K, M or G suffix (powers of 1024; "KiB" spelled
 * out is taken too), into *out. False for anything else, and when it overflows 64 bits. */
static inline bool cmt_parse_size(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = s;
    if (*p < '0' || *p > '9')
        return false;
    for (; *p >= '0' && *p <= '9'; p++)
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
            return false;
    unsigned shift = 0;
    switch (*p) {
    case 'k': case 'K': shift = 10; p++; break;
    case 'm': case 'M': shift = 20; p++; break;
    case 'g': case 'G': shift = 30; p++; break;
    default: break;
    }
    if (shift && *p == 'i')
        p++;
    if (shift && *p == 'B')
        p++;
    if (*p != '\0' || (shift && v > (UINT64_MAX >> shift)))
        return false;
    *out = v << shift;
    return true;
}

#endif
