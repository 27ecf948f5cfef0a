/*
 * config.c — every CYMEMTRACK_* setting except CYMEMTRACK_SCOPES (envscope.c), read once at
 * start.
 *
 * Owns cmt_cfg and its parsing. A value that does not parse gets one "cymemtrack:" line that
 * names the variable, what it expected and the default used instead; the program runs on.
 * Runs inside the first malloc: getenv and the diagnostics below allocate nothing.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "cmt.h"
#include "parse-size.h"

struct cmt_config cmt_cfg = {
    .stack_depth = CMT_STACK_DEPTH_DEFAULT,
    .output = CMT_OUTPUT_DEFAULT,
    .quarantine_bytes = CMT_QUARANTINE_DEFAULT,
};

/* A size (parse-size.h) of at most max. */
static bool parse_size(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t v;
    if (!cmt_parse_size(s, &v) || v > max)
        return false;
    *out = v;
    return true;
}

void cmt_config_init(void)
{
    const char *v;
    uint64_t n;

    if ((v = getenv("CYMEMTRACK_STACK_DEPTH")) && *v) {
        if (parse_size(v, CMT_STACK_MAX_DEPTH, &n) && v[strspn(v, "0123456789")] == '\0')
            cmt_cfg.stack_depth = (int)n;
        else
            cmt_diag("CYMEMTRACK_STACK_DEPTH=%s: expected a number of frames from 0 to %d; "
                     "using %d", v, CMT_STACK_MAX_DEPTH, CMT_STACK_DEPTH_DEFAULT);
    }
    if ((v = getenv("CYMEMTRACK_OUTPUT"))) {
        if (*v && strlen(v) < CMT_PATH_MAX)
            cmt_cfg.output = v;
        else
            cmt_diag("CYMEMTRACK_OUTPUT: expected a file name template of 1 to %d bytes; "
                     "using %s", CMT_PATH_MAX - 1, CMT_OUTPUT_DEFAULT);
    }
    if ((v = getenv("CYMEMTRACK_QUARANTINE")) && *v) {
        if (parse_size(v, UINT64_C(1) << 40, &n))
            cmt_cfg.quarantine_bytes = n;
        else
            cmt_diag("CYMEMTRACK_QUARANTINE=%s: expected a size in bytes (with K, M or G); "
                     "using %llu", v, (unsigned long long)CMT_QUARANTINE_DEFAULT);
    }
}
