/*
 * main.c — cymem-report's command line: options, the order of the stages (read, symbolize,
 * merge, suppress, render) and the exit status, which scripts rely on: 0 success, 1 leaks
 * left with --fail-on-leak, 2 usage errors and unreadable or corrupt input. Every message
 * goes through diag.c; nothing here knows the file format or the output formats.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "diag.h"
#include "parse-size.h"
#include "render.h"

enum { EXIT_LEAKS = 1, EXIT_USAGE = 2 };

static const char usage_line[] = "usage: cymem-report [OPTIONS] FILE...";

static void help(void)
{
    printf("%s\n\n"
           "Shows the cymemtrack report files FILE... (a process and its fork and exec\n"
           "children merged into one view): per process the scopes, the largest leak sites\n"
           "with their stacks, bad frees and totals, then the total of all processes.\n\n"
           "Options:\n"
           "  --json               write JSON (see cymem-report(1)) instead of text\n"
           "  --folded[=VALUE]     write collapsed stacks for flame graph tools instead:\n"
           "                       VALUE is leaked (bytes leaked, the default), blocks\n"
           "                       (blocks leaked) or allocated (bytes allocated)\n"
           "  --html FILE          write a self-contained HTML page to FILE (- for\n"
           "                       standard output), and nothing else unless --json or\n"
           "                       --folded asks\n"
           "  --scope NAME         show only scopes named NAME (a glob; repeatable)\n"
           "  --top N              show at most N leak (or allocation) sites per scope\n"
           "                       (default 10 in text, all in JSON; 0 for all)\n"
           "  --min-bytes N        hide sites under N bytes (K, M, G suffixes)\n"
           "  --suppressions FILE  hide the leaks FILE describes (leak:PATTERN and\n"
           "                       scope:NAME lines; repeatable)\n"
           "  --fail-on-leak       exit with status 1 when leaks remain\n"
           "  -h, --help           show this help and exit\n"
           "  --version            show the version and exit\n\n"
           "Exit status: 0 success; 1 leaks remain and --fail-on-leak was given;\n"
           "2 a usage error, or an unreadable or corrupt report file.\n",
           usage_line);
}

static int usage_error(const char *fmt, const char *arg)
{
    cmt_error(fmt, arg);
    fprintf(stderr, "%s\n(see cymem-report --help)\n", usage_line);
    return EXIT_USAGE;
}

/* COLUMNS first, as ls(1) does, so that a caller can ask for a width; then the terminal's;
 * else no limit (a file or a pipe takes any width). */
static unsigned terminal_width(void)
{
    const char *c = getenv("COLUMNS");
    if (c && *c) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(c, &end, 10);
        if (!*end && !errno && v > 0 && v < 100000)
            return (unsigned)v;
    }
    struct winsize ws;
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

/* The program, with the two arrays main() owns: every way out of here leaves them to main to
 * free, so that no return path leaks (valgrind and LeakSanitizer check cymem-report's error
 * paths too). */
static int run(int argc, char **argv, const char **scopes, const char **supp_files)
{
    enum { OPT_JSON = 256, OPT_SCOPE, OPT_TOP, OPT_MIN_BYTES, OPT_SUPP, OPT_FAIL, OPT_VERSION,
           OPT_FOLDED, OPT_HTML };
    static const struct option longopts[] = {
        { "json", no_argument, NULL, OPT_JSON },
        { "folded", optional_argument, NULL, OPT_FOLDED },
        { "html", required_argument, NULL, OPT_HTML },
        { "scope", required_argument, NULL, OPT_SCOPE },
        { "top", required_argument, NULL, OPT_TOP },
        { "min-bytes", required_argument, NULL, OPT_MIN_BYTES },
        { "suppressions", required_argument, NULL, OPT_SUPP },
        { "fail-on-leak", no_argument, NULL, OPT_FAIL },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 },
    };
    bool json = false, fail_on_leak = false, top_given = false, folded = false;
    enum cmt_folded_value folded_value = CMT_FOLDED_LEAKED;
    const char *html = NULL;
    struct cmt_render_opts o = { 0 };
    size_t nsupp = 0;
    o.scopes = scopes;

    cmt_diag_prog("cymem-report");
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        uint64_t n;
        switch (c) {
        case OPT_JSON:
            json = true;
            break;
        case OPT_FOLDED:
            folded = true;
            if (!optarg || !strcmp(optarg, "leaked"))
                folded_value = CMT_FOLDED_LEAKED;
            else if (!strcmp(optarg, "blocks"))
                folded_value = CMT_FOLDED_BLOCKS;
            else if (!strcmp(optarg, "allocated"))
                folded_value = CMT_FOLDED_ALLOCATED;
            else
                return usage_error("--folded=%s: expected leaked, blocks or allocated", optarg);
            break;
        case OPT_HTML:
            if (!*optarg)
                return usage_error("%s", "--html: the file name is empty");
            html = optarg;
            break;
        case OPT_SCOPE:
            scopes[o.nscopes++] = optarg;
            break;
        case OPT_TOP:
            if (!cmt_parse_size(optarg, &n) || strpbrk(optarg, "kKmMgG") || n > SIZE_MAX)
                return usage_error("--top %s: expected a number of leak sites (0 for all)",
                                   optarg);
            o.top = (size_t)n;
            top_given = true;
            break;
        case OPT_MIN_BYTES:
            if (!cmt_parse_size(optarg, &o.min_bytes))
                return usage_error("--min-bytes %s: expected a size in bytes (with K, M or "
                                   "G)", optarg);
            break;
        case OPT_SUPP:
            supp_files[nsupp++] = optarg;
            break;
        case OPT_FAIL:
            fail_on_leak = true;
            break;
        case 'h':
            help();
            return 0;
        case OPT_VERSION:
            printf("cymem-report (%s) %s\nsymbolization: %s\n", PACKAGE_NAME,
                   PACKAGE_VERSION, cmt_symbolizer_version());
            return 0;
        case ':':
            return usage_error("%s: needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind == argc)
        return usage_error("%s", "no report file given");
    if (json && folded)
        return usage_error("%s", "--json and --folded: choose one");
    if (html && !strcmp(html, "-") && (json || folded))
        return usage_error("%s", "--html - and --json or --folded: both would go to standard "
                           "output");
    /* Text is for reading in a terminal; the other views are for tools and browsers, which
     * can take every site. */
    if (!top_given)
        o.top = json || folded || html ? 0 : 10;

    /* Suppressions first: a mistake in them is a usage error, found before any work. */
    struct cmt_suppressions supp = { 0 };
    for (size_t i = 0; i < nsupp; i++)
        if (cmt_suppressions_load(&supp, supp_files[i])) {
            cmt_suppressions_free(&supp);
            return EXIT_USAGE;
        }

    size_t nfiles = (size_t)(argc - optind), nprocs = 0;
    struct cmt_process *procs = calloc(nfiles + 1, sizeof *procs);
    if (!procs)
        cmt_die("out of memory");
    int status = 0;
    /* A bad file does not hide the others: each good one is still shown, and the exit
     * status says that something was wrong. */
    for (int i = optind; i < argc; i++) {
        if (cmt_report_read(argv[i], &procs[nprocs]) == 0)
            nprocs++;
        else
            status = EXIT_USAGE;
    }
    if (nprocs == 0) {
        free(procs);
        cmt_suppressions_free(&supp);
        return EXIT_USAGE;
    }

    struct cmt_symbolizer *sym = cmt_symbolizer_new();
    for (size_t i = 0; i < nprocs; i++)
        cmt_symbolize(sym, &procs[i]);
    cmt_symbolizer_free(sym);

    struct cmt_view view;
    if (cmt_view_build(&view, procs, nprocs)) {
        for (size_t i = 0; i < nprocs; i++)
            cmt_process_free(&procs[i]);
        free(procs);
        cmt_suppressions_free(&supp);
        return EXIT_USAGE;
    }
    for (size_t i = 0; i < nprocs; i++)
        cmt_suppressions_apply(&supp, &procs[i]);
    if (view.has_total)
        cmt_suppressions_apply(&supp, &view.total);

    if (html) {
        bool to_stdout = !strcmp(html, "-");
        FILE *f = to_stdout ? stdout : fopen(html, "w");
        if (!f) {
            cmt_error_errno("cannot write %s", html);
            status = EXIT_USAGE;
        } else {
            if (cmt_render_html(f, &view, &o))
                status = EXIT_USAGE;
            if (!to_stdout && fclose(f) != 0) {
                cmt_error_errno("cannot write %s", html);
                status = EXIT_USAGE;
            }
        }
    }
    if (folded) {
        if (cmt_render_folded(stdout, &view, &o, folded_value))
            status = EXIT_USAGE;
    } else if (json) {
        if (cmt_render_json(stdout, &view, &o))
            status = EXIT_USAGE;
    } else if (!html) {
        const char *no_color = getenv("NO_COLOR");
        o.color = isatty(STDOUT_FILENO) && !(no_color && *no_color);
        o.width = terminal_width();
        if (cmt_render_text(stdout, &view, &o))
            status = EXIT_USAGE;
    }
    if (status == 0 && fail_on_leak && cmt_view_failing_sites(&view, &o) > 0)
        status = EXIT_LEAKS;

    cmt_view_free(&view);
    for (size_t i = 0; i < nprocs; i++)
        cmt_process_free(&procs[i]);
    free(procs);
    cmt_suppressions_free(&supp);
    return status;
}

int main(int argc, char **argv)
{
    const char **scopes = calloc((size_t)argc + 1, sizeof *scopes);
    const char **supp_files = calloc((size_t)argc + 1, sizeof *supp_files);
    if (!scopes || !supp_files)
        cmt_die("out of memory");
    int status = run(argc, argv, scopes, supp_files);
    free(scopes);
    free(supp_files);
    return status;
}
