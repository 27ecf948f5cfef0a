/*
 * request-loop.c — the cymemtrack demo: a tiny server loop with one scope per request.
 *
 * Each request opens a "request" scope, parses its input and renders a reply into a
 * "render" scope opened with CMT_BULK_FREE: the renderer allocates freely and never frees,
 * because closing the scope frees everything it still owns, as cymem's Pool does. One code
 * path forgets a free: slow requests keep a note that nobody releases. Run it under the
 * tracker (`make demo`, or `cymemtrack ./request-loop`) and the report shows, per scope,
 * that "request" leaks one block per slow request and "render" leaks nothing.
 *
 * It runs the same without the tracker: linked with `pkg-config --libs cymemtrack`, the
 * scope calls are no-ops then.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cymemtrack.h>

struct request {
    char *path;
    char *body;
    int slow;
};

static struct request *parse(int n)
{
    struct request *r = malloc(sizeof *r);
    char path[64];
    snprintf(path, sizeof path, "/items/%d", n);
    r->path = strdup(path);
    r->body = calloc(256, 1);
    snprintf(r->body, 256, "{\"item\": %d}", n);
    r->slow = n % 10 == 0;
    return r;
}

/* Builds the reply from many small pieces and frees none of them: the scope does. */
static size_t render(const struct request *r)
{
    size_t total = 0;
    for (int i = 0; i < 20; i++) {
        char *piece = malloc(64);
        total += (size_t)snprintf(piece, 64, "<li>%s #%d</li>", r->path, i);
    }
    return total;
}

static char *slow_note(const struct request *r)
{
    char *note = malloc(128);
    snprintf(note, 128, "slow request: %s", r->path);
    return note;
}

static size_t handle(int n)
{
    cmt_scope_t request = cmt_scope_open("request", 0);
    struct request *r = parse(n);
    if (r->slow)
        slow_note(r);   /* the bug: the note is never freed */

    cmt_scope_t page = cmt_scope_open("render", CMT_BULK_FREE);
    size_t bytes = render(r);
    cmt_scope_close(page);

    free(r->path);
    free(r->body);
    free(r);
    cmt_scope_close(request);
    return bytes;
}

int main(int argc, char **argv)
{
    int requests = argc > 1 ? atoi(argv[1]) : 1000;
    size_t bytes = 0;
    for (int n = 0; n < requests; n++)
        bytes += handle(n);
    printf("handled %d requests, rendered %zu bytes\n", requests, bytes);
    return 0;
}
