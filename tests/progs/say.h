/*
 * say.h — one line of output for the suites to read, written with one write(2): the
 * programs under test keep stdio's buffers (blocks of their own) out of their counts, and a
 * line never splits across a kill. Exits 120 when stdout is gone.
 */
#ifndef CMT_TEST_PROGS_SAY_H
#define CMT_TEST_PROGS_SAY_H

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static inline __attribute__((format(printf, 1, 2))) void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof line)
        n = (int)sizeof line - 1;     /* cut, as vsnprintf did */
    if (n > 0 && write(STDOUT_FILENO, line, (size_t)n) < 0)
        _exit(120);
}

#endif
