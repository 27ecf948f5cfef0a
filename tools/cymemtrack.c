/*
 * cymemtrack.c — the wrapper: runs a program with libcymemtrack.so preloaded, then shows
 * cymem-report's view of every report the run produced on stderr, and exits as the program
 * did (a signal death raised again). A C program, not a script, to get exactly that, and exec
 * failures told apart as a shell does (127, 126). It never changes what the program sees
 * beyond LD_PRELOAD, the CYMEMTRACK_* settings and, for a Python interpreter the user has not
 * configured, PYTHONMALLOC.
 */
#define _GNU_SOURCE
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <glob.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"

#ifndef CMT_LIBDIR
#error "CMT_LIBDIR must name the directory libcymemtrack.so is installed in"
#endif
#ifndef CMT_BINDIR
#error "CMT_BINDIR must name the directory cymem-report is installed in"
#endif

/* Our own failures (bad usage, no library): 125, as env(1) and timeout(1) do, so that they
 * cannot be mistaken for the program's own statuses or the shell's 126 and 127. */
enum { EXIT_WRAPPER = 125, EXIT_CANNOT_RUN = 126, EXIT_NOT_FOUND = 127 };

static const char usage_line[] = "usage: cymemtrack [OPTIONS] [--] PROGRAM [ARGS...]";

static void help(void)
{
    printf("%s\n\n"
           "Runs PROGRAM with the cymemtrack allocation tracker preloaded, then shows the\n"
           "report of PROGRAM and of every process it started on standard error.\n\n"
           "Options:\n"
           "  -o, --output TEMPLATE  keep the report files at TEMPLATE (%%p: pid,\n"
           "                         %%e: executable name); default: a temporary directory\n"
           "  -d, --depth N          frames per allocation stack (CYMEMTRACK_STACK_DEPTH)\n"
           "  -s, --scopes SCOPES    scopes to open from the environment (CYMEMTRACK_SCOPES)\n"
           "  --quarantine SIZE      bytes of bulk-freed blocks held back\n"
           "                         (CYMEMTRACK_QUARANTINE)\n"
           "  --json FILE            also write the report as JSON to FILE\n"
           "  --html FILE            also write the report as an HTML page to FILE\n"
           "  --suppressions FILE    hide the leaks FILE describes (see cymem-report(1))\n"
           "  --top N                leak sites shown per scope\n"
           "  --fail-on-leak         exit with status 1 when PROGRAM succeeded but leaked\n"
           "  --keep-pymalloc        leave PYTHONMALLOC alone when PROGRAM is a Python\n"
           "                         interpreter (by default it is set to malloc, unless\n"
           "                         already set, so that Python's small objects are seen)\n"
           "  -h, --help             show this help and exit\n"
           "  --version              show the version and exit\n\n"
           "Exit status: PROGRAM's (a signal that killed it kills cymemtrack too); 1 with\n"
           "--fail-on-leak when PROGRAM exited with 0 and leaked; 125 cymemtrack's own\n"
           "errors; 126 PROGRAM cannot be run; 127 PROGRAM was not found.\n",
           usage_line);
}

static int usage_error(const char *fmt, const char *arg)
{
    cmt_error(fmt, arg);
    fprintf(stderr, "%s\n(see cymemtrack --help)\n", usage_line);
    return EXIT_WRAPPER;
}

struct settings {
    const char *output, *depth, *scopes, *quarantine;
    const char *json, *html, *top;
    const char **supp;
    size_t nsupp;
    bool fail_on_leak;
    bool keep_pymalloc;
};

/* ---- finding our parts -------------------------------------------------------------- */

static char *library_path(void)
{
    const char *env = getenv("CYMEMTRACK_LIBRARY");
    if (env && *env)
        return strdup(env);
    return strdup(CMT_LIBDIR "/libcymemtrack.so");
}

/* The cymem-report beside this program (the build tree, or a relocated install), else the
 * one installed with it. */
static char *report_path(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash && (size_t)(slash - self) + sizeof "/cymem-report" <= sizeof self) {
            strcpy(slash, "/cymem-report");
            if (access(self, X_OK) == 0)
                return strdup(self);
        }
    }
    return strdup(CMT_BINDIR "/cymem-report");
}

/* ---- which files the run wrote ------------------------------------------------------ */

/* The template as a glob(3) pattern: %p and %e become *, %% a literal %, and every
 * character glob would read specially is escaped. */
static char *template_glob(const char *t)
{
    size_t len = strlen(t);
    char *g = malloc(2 * len + 1), *o = g;
    if (!g)
        return NULL;
    for (const char *p = t; *p; p++) {
        if (p[0] == '%' && (p[1] == 'p' || p[1] == 'e')) {
            *o++ = '*';
            p++;
        } else if (p[0] == '%' && p[1] == '%') {
            *o++ = '%';
            p++;
        } else {
            if (strchr("*?[]\\", *p))
                *o++ = '\\';
            *o++ = *p;
        }
    }
    *o = '\0';
    return g;
}

/* The report files that match the template and were written since `since` (only files
 * this run wrote, when the template is shared with earlier runs). */
static size_t collect(const char *template, const struct timespec *since, glob_t *g,
                      char ***files)
{
    char *pattern = template_glob(template);
    *files = NULL;
    if (!pattern || glob(pattern, 0, NULL, g) != 0) {
        free(pattern);
        memset(g, 0, sizeof *g);
        return 0;
    }
    free(pattern);
    size_t n = 0;
    *files = calloc(g->gl_pathc + 1, sizeof **files);
    for (size_t i = 0; *files && i < g->gl_pathc; i++) {
        struct stat st;
        if (stat(g->gl_pathv[i], &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (st.st_mtim.tv_sec < since->tv_sec ||
            (st.st_mtim.tv_sec == since->tv_sec && st.st_mtim.tv_nsec < since->tv_nsec))
            continue;
        (*files)[n++] = g->gl_pathv[i];
    }
    return n;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char path[PATH_MAX];
            if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) < sizeof path)
                unlink(path);
        }
        closedir(d);
    }
    rmdir(dir);
}

/* ---- Python ------------------------------------------------------------------------ */

/* pymalloc serves the interpreter's small objects from arenas it maps itself, so the tracker
 * never sees them: a Python program gets PYTHONMALLOC=malloc unless its user chose. */

static bool python_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return strncmp(slash ? slash + 1 : path, "python", 6) == 0;
}

/* The file execvp() would run for prog, or NULL. */
static char *find_program(const char *prog)
{
    if (strchr(prog, '/'))
        return strdup(prog);
    const char *path = getenv("PATH");
    if (!path)
        path = "/bin:/usr/bin";
    for (const char *dir = path;; dir++) {
        size_t len = strcspn(dir, ":");
        char file[PATH_MAX];
        int n = snprintf(file, sizeof file, "%.*s%s%s", (int)len, len ? dir : ".",
                         len ? "/" : "", prog);
        struct stat st;
        if (n > 0 && (size_t)n < sizeof file && stat(file, &st) == 0 && S_ISREG(st.st_mode) &&
            access(file, X_OK) == 0)
            return strdup(file);
        dir += len;
        if (!*dir)
            return NULL;
    }
}

/* Whether file is a Python interpreter, by its name or the name its symlinks lead to, or a
 * script whose "#!" line runs one, directly or through env(1). */
static bool python_file(const char *file, bool follow_script)
{
    if (python_name(file))
        return true;
    char real[PATH_MAX];
    if (realpath(file, real) && python_name(real))
        return true;
    if (!follow_script)
        return false;
    char line[256] = "";
    FILE *f = fopen(file, "re");
    if (!f)
        return false;
    bool got = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    if (!got || strncmp(line, "#!", 2) != 0)
        return false;
    char *save = NULL, *word = strtok_r(line + 2, " \t\r\n", &save);
    if (!word)
        return false;
    const char *slash = strrchr(word, '/');
    if (strcmp(slash ? slash + 1 : word, "env") != 0)
        return python_file(word, false);
    /* env [-S] [-u NAME]... [NAME=VALUE]... PROGRAM: the first word that is neither. */
    while ((word = strtok_r(NULL, " \t\r\n", &save)) &&
           (word[0] == '-' || strchr(word, '=')))
        ;
    if (!word)
        return false;
    char *interp = find_program(word);
    bool yes = python_name(word) || (interp && python_file(interp, false));
    free(interp);
    return yes;
}

static bool runs_python(const char *prog)
{
    if (python_name(prog))
        return true;
    char *file = find_program(prog);
    bool yes = file && python_file(file, true);
    free(file);
    return yes;
}

/* ---- running things ----------------------------------------------------------------- */

static pid_t child_pid;

/* A termination request sent to the wrapper alone (kill PID) goes on to the program, which
 * is what the sender meant; the wrapper stays to report what the program did. */
static void forward(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

static int wait_for(pid_t pid)
{
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status;
}

/* SIGINT and SIGQUIT as the wrapper found them, for the program. */
static struct sigaction old_int, old_quit;

/* In the child: the settings, then the program. Never returns; an exec failure is sent to
 * the parent as the errno value over fd. */
static void exec_program(const struct settings *s, const char *lib, const char *template,
                         char **argv, int fd)
{
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGQUIT, &old_quit, NULL);
    const char *old = getenv("LD_PRELOAD");
    size_t len = strlen(lib) + (old ? strlen(old) : 0) + 2;
    char *preload = malloc(len);
    if (preload) {
        /* First, so that our malloc is the one every later object binds to. */
        snprintf(preload, len, old && *old ? "%s %s" : "%s", lib, old);
        setenv("LD_PRELOAD", preload, 1);
    }
    setenv("CYMEMTRACK_OUTPUT", template, 1);
    if (s->depth)
        setenv("CYMEMTRACK_STACK_DEPTH", s->depth, 1);
    if (s->scopes)
        setenv("CYMEMTRACK_SCOPES", s->scopes, 1);
    if (s->quarantine)
        setenv("CYMEMTRACK_QUARANTINE", s->quarantine, 1);
    if (!s->keep_pymalloc && !getenv("PYTHONMALLOC") && runs_python(argv[0]))
        setenv("PYTHONMALLOC", "malloc", 1);
    execvp(argv[0], argv);
    int e = errno;
    ssize_t w = write(fd, &e, sizeof e);
    (void)w;
    _exit(EXIT_NOT_FOUND);
}

/* Runs cymem-report on files with its stdout on fd; returns its exit status, or -1. With
 * html, cymem-report writes the page to that file. */
static int run_report(const char *report, const struct settings *s, bool json,
                      const char *html, char **files, size_t nfiles, int fd)
{
    const char **argv = calloc(nfiles + 2 * s->nsupp + 10, sizeof *argv);
    if (!argv)
        return -1;
    size_t n = 0;
    argv[n++] = report;
    if (json)
        argv[n++] = "--json";
    if (html) {
        argv[n++] = "--html";
        argv[n++] = html;
    }
    for (size_t i = 0; i < s->nsupp; i++) {
        argv[n++] = "--suppressions";
        argv[n++] = s->supp[i];
    }
    if (s->top) {
        argv[n++] = "--top";
        argv[n++] = s->top;
    }
    if (s->fail_on_leak)
        argv[n++] = "--fail-on-leak";
    argv[n++] = "--";
    for (size_t i = 0; i < nfiles; i++)
        argv[n++] = files[i];
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        free(argv);
        return cmt_error_errno("cannot start %s", report);
    }
    if (pid == 0) {
        if (fd != STDOUT_FILENO && dup2(fd, STDOUT_FILENO) < 0)
            _exit(2);
        execv(report, (char **)argv);
        cmt_error_errno("cannot run %s", report);
        _exit(2);
    }
    free(argv);
    int status = wait_for(pid);
    if (status < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* Ends the wrapper the way the program ended: by the same signal when one killed it. */
static void __attribute__((noreturn)) exit_like(int status)
{
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        /* The program may have dumped core; a second core, of the wrapper, would only
         * mislead. */
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        signal(sig, SIG_DFL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        raise(sig);
        exit(128 + sig);        /* a signal whose default is not to terminate */
    }
    exit(WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_WRAPPER);
}

int main(int argc, char **argv)
{
    enum { OPT_QUARANTINE = 256, OPT_JSON, OPT_SUPP, OPT_TOP, OPT_FAIL, OPT_VERSION,
           OPT_KEEP_PYMALLOC, OPT_HTML };
    static const struct option longopts[] = {
        { "output", required_argument, NULL, 'o' },
        { "depth", required_argument, NULL, 'd' },
        { "scopes", required_argument, NULL, 's' },
        { "quarantine", required_argument, NULL, OPT_QUARANTINE },
        { "json", required_argument, NULL, OPT_JSON },
        { "html", required_argument, NULL, OPT_HTML },
        { "suppressions", required_argument, NULL, OPT_SUPP },
        { "top", required_argument, NULL, OPT_TOP },
        { "fail-on-leak", no_argument, NULL, OPT_FAIL },
        { "keep-pymalloc", no_argument, NULL, OPT_KEEP_PYMALLOC },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 },
    };
    struct settings s = { 0 };
    s.supp = calloc((size_t)argc + 1, sizeof *s.supp);
    if (!s.supp)
        cmt_die("out of memory");
    cmt_diag_prog("cymemtrack");
    opterr = 0;
    int c;
    /* "+": options end at PROGRAM, whose own options are its business. */
    while ((c = getopt_long(argc, argv, "+:o:d:s:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (!*optarg)
                return usage_error("%s", "-o: the template is empty");
            s.output = optarg;
            break;
        case 'd':
            s.depth = optarg;
            break;
        case 's':
            s.scopes = optarg;
            break;
        case OPT_QUARANTINE:
            s.quarantine = optarg;
            break;
        case OPT_JSON:
            s.json = optarg;
            break;
        case OPT_HTML:
            if (!*optarg)
                return usage_error("%s", "--html: the file name is empty");
            s.html = optarg;
            break;
        case OPT_SUPP:
            if (access(optarg, R_OK) != 0)
                return usage_error("--suppressions %s: cannot read it", optarg);
            s.supp[s.nsupp++] = optarg;
            break;
        case OPT_TOP:
            /* Checked now, not after a run that may have taken an hour. */
            if (!*optarg || optarg[strspn(optarg, "0123456789")] || strlen(optarg) > 9)
                return usage_error("--top %s: expected a number of leak sites", optarg);
            s.top = optarg;
            break;
        case OPT_FAIL:
            s.fail_on_leak = true;
            break;
        case OPT_KEEP_PYMALLOC:
            s.keep_pymalloc = true;
            break;
        case 'h':
            help();
            return 0;
        case OPT_VERSION:
            printf("cymemtrack (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
            return 0;
        case ':':
            return usage_error("%s: needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option %s", argv[optind - 1]);
        }
    }
    if (optind == argc)
        return usage_error("%s", "no program given");

    char *lib = library_path(), *report = report_path();
    if (!lib || !report)
        cmt_die("out of memory");
    if (access(lib, R_OK) != 0) {
        cmt_error_errno("cannot use the tracker library %s (set CYMEMTRACK_LIBRARY to "
                        "use another)", lib);
        return EXIT_WRAPPER;
    }
    if (access(report, X_OK) != 0) {
        cmt_error_errno("cannot run %s", report);
        return EXIT_WRAPPER;
    }

    /* Reports go where the user said (-o, or CYMEMTRACK_OUTPUT already set), and are
     * kept; else into a private directory, removed at the end. Either way every process
     * of the run, children included, writes under the same template. */
    char dir[PATH_MAX] = "";
    char template[PATH_MAX];
    const char *keep = s.output ? s.output : getenv("CYMEMTRACK_OUTPUT");
    if (keep && *keep) {
        /* Relative to the wrapper's directory, not each process's: a child that changes
         * directory (make -C) still writes where the wrapper will look. */
        char cwd[PATH_MAX];
        int n;
        if (keep[0] != '/' && getcwd(cwd, sizeof cwd))
            n = snprintf(template, sizeof template, "%s/%s", cwd, keep);
        else
            n = snprintf(template, sizeof template, "%s", keep);
        if (n < 0 || (size_t)n >= sizeof template)
            return usage_error("%s: the output template is too long", keep);
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/cymemtrack.XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir)) {
            cmt_error_errno("cannot make a directory for the reports in %s",
                            tmp && *tmp ? tmp : "/tmp");
            return EXIT_WRAPPER;
        }
        snprintf(template, sizeof template, "%s/cymemtrack.%%e.%%p.cmt", dir);
    }
    /* The coarse clock is the one the kernel stamps files with: a report written after
     * this point never looks older than it. */
    struct timespec start;
    clock_gettime(CLOCK_REALTIME_COARSE, &start);

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        cmt_error_errno("pipe");
        return EXIT_WRAPPER;
    }
    /* Ctrl-C and Ctrl-\ reach the program from the terminal; the wrapper outlives them to
     * show the report, as system(3) does for its caller. */
    struct sigaction ign = { .sa_handler = SIG_IGN }, fwd = { .sa_handler = forward };
    sigemptyset(&ign.sa_mask);
    sigemptyset(&fwd.sa_mask);
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        cmt_error_errno("cannot start %s", argv[optind]);
        return EXIT_WRAPPER;
    }
    if (pid == 0) {
        close(pipefd[0]);
        exec_program(&s, lib, template, argv + optind, pipefd[1]);
    }
    child_pid = pid;
    sigaction(SIGTERM, &fwd, NULL);
    sigaction(SIGHUP, &fwd, NULL);
    close(pipefd[1]);
    int exec_errno = 0;
    ssize_t got;
    while ((got = read(pipefd[0], &exec_errno, sizeof exec_errno)) < 0 && errno == EINTR)
        ;
    close(pipefd[0]);
    int status = wait_for(pid);
    signal(SIGTERM, SIG_DFL);
    signal(SIGHUP, SIG_DFL);

    if (got == (ssize_t)sizeof exec_errno) {
        /* The shell's words and statuses, so that `cymemtrack cmd` fails like `cmd`. */
        const char *prog = argv[optind];
        if (exec_errno == ENOENT && !strchr(prog, '/'))
            fprintf(stderr, "cymemtrack: %s: command not found\n", prog);
        else
            fprintf(stderr, "cymemtrack: %s: %s\n", prog, strerror(exec_errno));
        if (dir[0])
            remove_dir(dir);
        return exec_errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
    }
    if (status < 0) {
        cmt_error_errno("waiting for %s", argv[optind]);
        return EXIT_WRAPPER;
    }

    glob_t g;
    char **files;
    size_t nfiles = collect(template, &start, &g, &files);
    int report_status = 0;
    if (nfiles == 0) {
        cmt_warning("%s wrote no report (a statically linked or set-user-ID program does "
                    "not load the tracker)", argv[optind]);
    } else {
        report_status = run_report(report, &s, false, NULL, files, nfiles, STDERR_FILENO);
        if (s.json) {
            int fd = open(s.json, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
            if (fd < 0) {
                cmt_error_errno("cannot write %s", s.json);
                report_status = -1;
            } else {
                int js = run_report(report, &s, true, NULL, files, nfiles, fd);
                if (js < 0 || js == 2)
                    report_status = js;
                close(fd);
            }
        }
        if (s.html) {
            int hs = run_report(report, &s, false, s.html, files, nfiles, STDOUT_FILENO);
            if (hs < 0 || hs == 2)
                report_status = hs;
        }
    }
    free(files);
    globfree(&g);
    if (dir[0])
        remove_dir(dir);
    free(lib);
    free(report);
    free(s.supp);

    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok && s.fail_on_leak) {
        if (report_status == 1)
            exit(1);
        if (report_status != 0 || nfiles == 0)
            exit(EXIT_WRAPPER);     /* leaks could not be checked */
    }
    exit_like(status);
}
