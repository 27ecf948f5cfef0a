/*
 * flame.c — known leaks from known call chains in known scopes, for check_html: every chain
 * is main -> MIDDLE -> LEAF -> malloc, so that a report taken with CYMEMTRACK_STACK_DEPTH=3
 * names the same three frames on any machine (the C library's frames fall outside). Default
 * mode leaks, per scope:
 *   global  main -> make_global -> global_leaf   1 x 100 bytes
 *   parser  main -> parse_input -> parse_leaf    3 x 64, and 4 x 16 allocated and freed
 *           main -> parse_input -> parse_token   2 x 48
 *   render  main -> render_page -> render_leaf   5 x 32
 * "grow": scope "grower" gains 4096 bytes a millisecond for 300 ms while scope "steady" keeps
 * 64 KiB, then both leak what they hold (for the timeline). Uses no stdio, so that the C
 * library's own buffers never show up.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cymemtrack.h>

/* GCC's noipa keeps a function and its callers' view of it exactly as written; clang has no
 * such attribute, and noinline is the closest. */
#if defined(__clang__)
#define CMT_NOIPA __attribute__((noinline))
#else
#define CMT_NOIPA __attribute__((noipa))
#endif

void *volatile cmt_keep[512];
static unsigned kept;

static void keep(void *p)
{
    cmt_keep[kept++ % 512] = p;
}

CMT_NOIPA static void global_leaf(void)
{
    keep(malloc(100));
}

CMT_NOIPA static void make_global(void)
{
    global_leaf();
    keep(NULL);     /* work after the call: it cannot become a jump */
}

CMT_NOIPA static void *parse_leaf(size_t size)
{
    void *p = malloc(size);
    keep(p);
    return p;
}

CMT_NOIPA static void parse_token(void)
{
    keep(malloc(48));
}

CMT_NOIPA static void parse_input(void)
{
    for (int i = 0; i < 3; i++)
        parse_leaf(64);
    for (int i = 0; i < 4; i++)
        free(parse_leaf(16));
    for (int i = 0; i < 2; i++)
        parse_token();
    keep(NULL);
}

CMT_NOIPA static void render_leaf(void)
{
    keep(malloc(32));
}

CMT_NOIPA static void render_page(void)
{
    for (int i = 0; i < 5; i++)
        render_leaf();
    keep(NULL);
}

static void grow(void)
{
    cmt_scope_t steady = cmt_scope_open("steady", 0);
    for (int i = 0; i < 16; i++)
        keep(malloc(4096));
    cmt_scope_close(steady);
    cmt_scope_t grower = cmt_scope_open("grower", 0);
    struct timespec ms = { 0, 1000000 };
    for (int i = 0; i < 300; i++) {
        keep(malloc(4096));
        nanosleep(&ms, NULL);
    }
    cmt_scope_close(grower);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "grow") == 0) {
        grow();
        return 0;
    }
    make_global();
    cmt_scope_t parser = cmt_scope_open("parser", 0);
    parse_input();
    cmt_scope_close(parser);
    cmt_scope_t render = cmt_scope_open("render", 0);
    render_page();
    cmt_scope_close(render);
    return 0;
}
