/*
 * diag.c — one-line diagnostics for the tools (see diag.h). Each message is formatted into a
 * stack buffer and written with one write(2): no stdio buffering that could reorder it
 * against the tool's stdout, and no allocation. Never exits except in cmt_die().
 */
#include "diag.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct cmt_diag_state cmt_diag_state = { .prog = "cymem-report", .fd = 2 };

void cmt_diag_prog(const char *name)
{
    cmt_diag_state.prog = name;
}

/* kind is "error", "warning" or "fatal"; errnum non-zero appends strerror(errnum). */
static void __attribute__((format(printf, 3, 0)))
report(const char *kind, int errnum, const char *fmt, va_list ap)
{
    char buf[4096];
    size_t cap = sizeof buf - 1;        /* room kept for the newline */
    int n = snprintf(buf, cap, "%s: %s: ", cmt_diag_state.prog, kind);
    size_t len = n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
    n = vsnprintf(buf + len, cap - len, fmt, ap);
    len += n < 0 ? 0 : (size_t)n < cap - len ? (size_t)n : cap - len - 1;
    if (errnum) {
        n = snprintf(buf + len, cap - len, ": %s", strerror(errnum));
        len += n < 0 ? 0 : (size_t)n < cap - len ? (size_t)n : cap - len - 1;
    }
    /* A message must stay one line, whatever bytes a file name or a report brought in. */
    for (size_t i = 0; i < len; i++)
        if (buf[i] == '\n' || buf[i] == '\r')
            buf[i] = ' ';
    buf[len++] = '\n';

    if (kind[0] == 'w')
        cmt_diag_state.warnings++;
    else
        cmt_diag_state.errors++;
    if (cmt_diag_state.fd < 0)
        return;
    for (size_t off = 0; off < len;) {
        ssize_t w = write(cmt_diag_state.fd, buf + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

int cmt_error(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    report("error", 0, fmt, ap);
    va_end(ap);
    errno = saved;
    return -1;
}

int cmt_error_errno(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    report("error", saved, fmt, ap);
    va_end(ap);
    errno = saved;
    return -1;
}

void cmt_warning(const char *fmt, ...)
{
    int saved = errno;
    va_list ap;
    va_start(ap, fmt);
    report("warning", 0, fmt, ap);
    va_end(ap);
    errno = saved;
}

void cmt_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report("fatal", 0, fmt, ap);
    va_end(ap);
    exit(2);
}
