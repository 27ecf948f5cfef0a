/*
 * diag.h — the tools' diagnostics, in git's style: one line on stderr per message,
 * "cymem-report: error: ..." / "warning: ..." / "fatal: ...", written with a single write(2)
 * so that lines from concurrent processes never interleave. Never used inside the library
 * (src/ has its own async-signal-safe cmt_diag); never allocates.
 */
#ifndef CMT_TOOLS_DIAG_H
#define CMT_TOOLS_DIAG_H

/* All of the module's state. Tests and the fuzz target read the counters to check that a
 * failure said exactly one thing; fd -1 silences the output but still counts. */
struct cmt_diag_state {
    const char *prog;       /* the prefix, "cymem-report" unless cmt_diag_prog() changed it */
    int fd;                 /* where messages go; 2 unless changed */
    unsigned errors, warnings;
};
extern struct cmt_diag_state cmt_diag_state;

/* Sets the program name that prefixes every message (e.g. "cymemtrack"). */
void cmt_diag_prog(const char *name);

/* "PROG: error: MESSAGE". Returns -1, so that a caller can `return cmt_error(...)`. */
int cmt_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* As cmt_error, with ": strerror(errno)" appended (errno as it was on entry). */
int cmt_error_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "PROG: warning: MESSAGE". */
void cmt_warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "PROG: fatal: MESSAGE", then exit(2): the CLI's status for usage errors and bad input. */
void cmt_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif /* CMT_TOOLS_DIAG_H */
