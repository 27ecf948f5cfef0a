/*
 * diag.c — the tracker's voice: one line on stderr per problem, starting "cymemtrack:".
 *
 * Owns a small printf-like formatter that works on the stack, so diagnostics can be given
 * from inside malloc and from signal handlers: no stdio, no allocation, one write(2) per
 * line, errno preserved. Never blocks on anything but the write itself.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

#include "cmt.h"

#define DIAG_LINE_MAX 512

struct out {
    char *buf;
    size_t size;    /* capacity including the NUL */
    size_t len;
};

static void put_char(struct out *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void put_str(struct out *o, const char *s)
{
    if (!s)
        s = "(null)";
    while (*s)
        put_char(o, *s++);
}

static void put_unsigned(struct out *o, unsigned long long v, unsigned base)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (n)
        put_char(o, digits[--n]);
}

static void put_signed(struct out *o, long long v)
{
    if (v < 0) {
        put_char(o, '-');
        put_unsigned(o, (unsigned long long)0 - (unsigned long long)v, 10);
    } else {
        put_unsigned(o, (unsigned long long)v, 10);
    }
}

static void vformat(struct out *o, const char *fmt, va_list ap)
{
    for (const char *p = fmt; *p; p++) {
        if (*p != '%') {
            put_char(o, *p);
            continue;
        }
        int longs = 0, precision = -1;
        bool size_t_arg = false, alternate = false;
        p++;
        if (*p == '#') {
            alternate = true;
            p++;
        }
        if (p[0] == '.' && p[1] == '*') {   /* only for %.*s: at most that many bytes */
            precision = va_arg(ap, int);
            p += 2;
        }
        while (*p == 'l') {
            longs++;
            p++;
        }
        if (*p == 'z') {
            size_t_arg = true;
            p++;
        }
        switch (*p) {
        case 'd':
            if (size_t_arg)
                put_signed(o, va_arg(ap, ssize_t));
            else if (longs >= 2)
                put_signed(o, va_arg(ap, long long));
            else if (longs == 1)
                put_signed(o, va_arg(ap, long));
            else
                put_signed(o, va_arg(ap, int));
            break;
        case 'u':
        case 'x': {
            unsigned base = *p == 'x' ? 16 : 10;
            if (alternate && base == 16)
                put_str(o, "0x");
            if (size_t_arg)
                put_unsigned(o, va_arg(ap, size_t), base);
            else if (longs >= 2)
                put_unsigned(o, va_arg(ap, unsigned long long), base);
            else if (longs == 1)
                put_unsigned(o, va_arg(ap, unsigned long), base);
            else
                put_unsigned(o, va_arg(ap, unsigned), base);
            break;
        }
        case 'p':
            put_str(o, "0x");
            put_unsigned(o, (uintptr_t)va_arg(ap, void *), 16);
            break;
        case 's': {
            /* Strings come from the environment and from the program: a control character
             * in one (a newline above all) must not break the message into two lines. */
            const char *str = va_arg(ap, const char *);
            if (!str)
                str = "(null)";
            for (int i = 0; (precision < 0 || i < precision) && str[i]; i++) {
                unsigned char c = (unsigned char)str[i];
                put_char(o, c < 0x20 || c == 0x7f ? '?' : (char)c);
            }
            break;
        }
        case 'c':
            put_char(o, (char)va_arg(ap, int));
            break;
        case '%':
            put_char(o, '%');
            break;
        case '\0':
            return;
        default:    /* an unknown conversion is shown, not interpreted */
            put_char(o, '%');
            put_char(o, *p);
            break;
        }
    }
}

size_t cmt_format(char *buf, size_t size, const char *fmt, ...)
{
    struct out o = { buf, size, 0 };
    va_list ap;
    va_start(ap, fmt);
    vformat(&o, fmt, ap);
    va_end(ap);
    if (size)
        buf[o.len < size ? o.len : size - 1] = '\0';
    return o.len < size ? o.len : (size ? size - 1 : 0);
}

static void vdiag(const char *fmt, va_list ap)
{
    int saved_errno = errno;
    char line[DIAG_LINE_MAX];
    struct out o = { line, sizeof line - 1, 0 };   /* keep one byte for the newline */
    put_str(&o, "cymemtrack: ");
    vformat(&o, fmt, ap);
    size_t len = o.len < o.size ? o.len : o.size - 1;
    line[len++] = '\n';
    /* One write: lines from several threads or processes do not interleave. A failed or
     * short write is not retried; stderr trouble must not become the program's trouble. */
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
    errno = saved_errno;
}

void cmt_diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vdiag(fmt, ap);
    va_end(ap);
}

void cmt_diag_limited(atomic_int *budget, const char *fmt, ...)
{
    int left = atomic_fetch_sub_explicit(budget, 1, memory_order_relaxed);
    if (left <= 0) {
        if (left == 0)
            cmt_diag("(further messages of this kind are not shown)");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    vdiag(fmt, ap);
    va_end(ap);
}
