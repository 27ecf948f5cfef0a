/*
 * check_compat.c — the shim is invisible to programs nobody here wrote: each real program from
 * the system runs plain and under the library just built, and its stdout, stderr and exit
 * status must be byte-identical; under the preload, every process it starts must account
 * exactly at exit (allocations - frees = live blocks, no invalid or double frees), as
 * tests/progs/totals.c records. Then the same again with jemalloc chained behind the tracker.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef CMT_TOTALS_SO
#error "CMT_TOTALS_SO must name tests/progs/.libs/cmttotals.so"
#endif
#ifndef CMT_JEMALLOC_SO
#define CMT_JEMALLOC_SO ""
#endif

#define CMT_ARRAY_LEN_(a) (sizeof(a) / sizeof((a)[0]))

/* ---- the scratch area of one case: its inputs, the totals file, the reports ------------ */

struct scratch {
    char dir[PATH_MAX];
    char data[PATH_MAX];        /* inputs, made before either run, read by both */
    char totals[PATH_MAX];      /* one line a tracked process, from cmttotals.so */
    char reports[PATH_MAX];     /* the tracker's report files: never in the program's cwd */
};

static void scratch_make(struct scratch *s)
{
    snprintf(s->dir, sizeof s->dir, "%s/cmt-compat.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_msg(mkdtemp(s->dir) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(s->data, sizeof s->data, "%s/data", s->dir);
    snprintf(s->totals, sizeof s->totals, "%s/totals", s->dir);
    snprintf(s->reports, sizeof s->reports, "%s/reports", s->dir);
    ck_assert_int_eq(mkdir(s->data, 0755), 0);
    ck_assert_int_eq(mkdir(s->reports, 0755), 0);
}

static void scratch_remove(struct scratch *s)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s->dir);
}

/* A deterministic text of `lines` lines "word number word", about 40 bytes each: enough
 * variety for sort, regexes and hashes, and compressible like real text. */
static void make_lines(const struct scratch *s, const char *name, unsigned lines)
{
    static const char *syl[] = { "ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "ve", "zu",
                                 "an", "el", "is", "or", "ub", "qua", "tri", "sho" };
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", s->data, name);
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    uint64_t x = 88172645463325252ull;
    for (unsigned i = 0; i < lines; i++) {
        char w[2][32];
        for (int k = 0; k < 2; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int n = 1 + (int)(x % 4);
            w[k][0] = '\0';
            for (int j = 0; j < n; j++)
                strcat(w[k], syl[(x >> (8 + 5 * j)) % CMT_ARRAY_LEN_(syl)]);
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        fprintf(f, "%s %llu %s\n", w[0], (unsigned long long)(x % 1000000), w[1]);
    }
    ck_assert_int_eq(fclose(f), 0);
}

/* Each case: what to run, what must be tracked, and its expected status. The shell of a
 * script (dash) leaves with _exit and writes no totals; the programs it runs do. */
struct compat_case {
    const char *name;
    const char *exe;            /* a program that must be among the tracked processes */
    int min_processes;          /* tracked processes that write their totals at exit */
    int exit_code;
    unsigned data_lines;        /* lines.txt in $CMT_DATA, 0 for none */
    const char *argv[8];
    const char *env;            /* one more NAME=VALUE for both runs, or NULL */
};

/* ---- the runs ------------------------------------------------------------------------ */

enum chain { CHAIN_NONE, CHAIN_JEMALLOC };

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *jemalloc_so(void)
{
    return CMT_JEMALLOC_SO[0] && access(CMT_JEMALLOC_SO, R_OK) == 0 ? CMT_JEMALLOC_SO : NULL;
}

/* The environment of both runs: the same, but for LD_PRELOAD. Everything that could make
 * two runs differ (locale, time zone, hash seeds, the user's git configuration) is pinned. */
static void build_env(const struct scratch *s, const char *extra, enum chain chain,
                      int preload, char **env, char store[][PATH_MAX * 2])
{
    int n = 0;
#define ENV(...) (snprintf(store[n], sizeof store[n], __VA_ARGS__), env[n] = store[n], n++)
    ENV("LC_ALL=C");
    ENV("TZ=UTC");
    ENV("PYTHONHASHSEED=0");
    ENV("PYTHONDONTWRITEBYTECODE=1");
    ENV("PERL_HASH_SEED=0");
    ENV("GIT_CONFIG_NOSYSTEM=1");
    ENV("GIT_CONFIG_GLOBAL=/dev/null");
    ENV("GIT_AUTHOR_NAME=Ada Tester");
    ENV("GIT_AUTHOR_EMAIL=ada@example.org");
    ENV("GIT_AUTHOR_DATE=2021-03-04T05:06:07+0000");
    ENV("GIT_COMMITTER_NAME=Ada Tester");
    ENV("GIT_COMMITTER_EMAIL=ada@example.org");
    ENV("GIT_COMMITTER_DATE=2021-03-04T05:06:07+0000");
    ENV("CMT_DATA=%s", s->data);
    ENV("CMT_TOTALS_FILE=%s", s->totals);
    ENV("CYMEMTRACK_OUTPUT=%s/cymemtrack.%%e.%%p.cmt", s->reports);
    if (extra)
        ENV("%s", extra);
    if (!preload)
        ENV("LD_PRELOAD=");     /* removed */
    else if (chain == CHAIN_JEMALLOC)
        ENV("LD_PRELOAD=%s %s", jemalloc_so(), CMT_TOTALS_SO);   /* behind the tracker */
    else
        ENV("LD_PRELOAD=%s", CMT_TOTALS_SO);
    env[n] = NULL;
#undef ENV
}

/* The first difference between two outputs, for the failure message. */
static void describe_diff(char *msg, size_t size, const char *what, const char *a, size_t alen,
                          const char *b, size_t blen)
{
    size_t i = 0;
    while (i < alen && i < blen && a[i] == b[i])
        i++;
    size_t from = i > 60 ? i - 60 : 0;
    snprintf(msg, size,
             "%s differs at byte %zu (plain %zu bytes, preloaded %zu bytes)\n"
             "plain:     \"%.*s\"\npreloaded: \"%.*s\"",
             what, i, alen, blen, (int)((alen - from) < 160 ? alen - from : 160), a + from,
             (int)((blen - from) < 160 ? blen - from : 160), b + from);
}

/* What the totals file says about all the processes of one run. */
struct tally {
    int processes;
    unsigned long long allocations, frees;
    int main_seen;                          /* a line from the program itself */
    unsigned long long main_bytes_allocated;
    unsigned long long main_jemalloc_bytes; /* jemalloc's thread.allocated in that process */
};

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    ck_assert_ptr_nonnull(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            ck_assert_ptr_nonnull(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Checks every line of the totals file and sums them up. main_exe is the real path of a
 * program whose own line must be there. */
static void check_totals(const struct scratch *s, const char *name, const char *main_exe,
                         int min_processes, enum chain chain, struct tally *t)
{
    memset(t, 0, sizeof *t);
    size_t len;
    char *text = slurp(s->totals, &len);
    ck_assert_msg(text != NULL, "%s: no process wrote its totals (%s: %s)", name, s->totals,
                  strerror(errno));
    char *whole = strdup(text);
    ck_assert_ptr_nonnull(whole);
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        ck_assert_msg(strstr(line, " active=1 ") != NULL,
                      "%s: a process ran untracked under the preload: %s", name, line);
        unsigned long long a = cmt_field(line, "allocations"), f = cmt_field(line, "frees");
        unsigned long long lb = cmt_field(line, "live_blocks");
        unsigned long long inv = cmt_field(line, "invalid_frees");
        unsigned long long dbl = cmt_field(line, "double_frees");
        unsigned long long stale = cmt_field(line, "stale_frees");
        unsigned long long bulk = cmt_field(line, "bulk_freed_blocks");
        ck_assert_msg(a - f - bulk == lb,
                      "%s: allocations - frees - bulk-freed = %lld, but the table holds %llu "
                      "live blocks: %s", name, (long long)(a - f - bulk), lb, line);
        ck_assert_msg(inv == 0 && dbl == 0 && stale == 0,
                      "%s: expected no invalid, double or stale frees in a working program, "
                      "got %llu, %llu and %llu: %s", name, inv, dbl, stale, line);
        ck_assert_msg(a > 0, "%s: a tracked process made no allocation at all: %s", name,
                      line);
        t->processes++;
        t->allocations += a;
        t->frees += f;
        const char *exe = strstr(line, " exe=");
        if (exe && strcmp(exe + 5, main_exe) == 0) {
            t->main_seen = 1;
            t->main_bytes_allocated = cmt_field(line, "bytes_allocated");
            if (chain == CHAIN_JEMALLOC)
                t->main_jemalloc_bytes = cmt_field(line, "jemalloc_thread_allocated");
        }
        if (chain == CHAIN_JEMALLOC)
            ck_assert_msg(strstr(line, " jemalloc_thread_allocated=") != NULL,
                          "%s: jemalloc is not loaded in a process of the chain: %s", name,
                          line);
    }
    ck_assert_msg(t->main_seen, "%s: no totals line from %s; the file says:\n%s", name,
                  main_exe, whole);
    ck_assert_msg(t->processes >= min_processes,
                  "%s: expected at least %d tracked processes, %d wrote their totals:\n%s", name,
                  min_processes, t->processes, whole);
    free(whole);
    free(text);
}

/* Runs case c (with argv, its paths resolved) plain and under the preload (with chain behind
 * the tracker), in a fresh directory each time, and asserts identical stdout, stderr and exit
 * status, and exact accounting in every process of the preloaded run, c->exe's among them.
 * The caller has put the inputs in s->data; the totals are summed up in *t. */
static void compat_run(struct scratch *s, const struct compat_case *c, char *const argv[],
                       enum chain chain, struct tally *t)
{
    const char *name = c->name;
    char *env[32];
    static char store[32][PATH_MAX * 2];
    char real_exe[PATH_MAX];
    ck_assert_msg(realpath(c->exe, real_exe) != NULL, "%s: %s", c->exe, strerror(errno));

    struct cmt_run plain, pre;
    build_env(s, c->env, chain, 0, env, store);
    double t0 = now_seconds();
    cmt_run(&plain, 0, argv, env);
    double t1 = now_seconds();
    unlink(s->totals);
    build_env(s, c->env, chain, 1, env, store);
    cmt_run(&pre, 1, argv, env);
    double t2 = now_seconds();

    char msg[1024];
    ck_assert_msg(plain.signal == 0 && plain.exit_code == c->exit_code,
                  "%s: the plain run itself failed (exit %d, signal %d), stderr:\n%.2000s", name,
                  plain.exit_code, plain.signal, plain.err);
    ck_assert_msg(pre.exit_code == plain.exit_code && pre.signal == plain.signal,
                  "%s: exit status %d (signal %d) under the preload, %d (signal %d) plain; "
                  "stderr:\n%.2000s", name, pre.exit_code, pre.signal, plain.exit_code,
                  plain.signal, pre.err);
    if (pre.out_len != plain.out_len || memcmp(pre.out, plain.out, plain.out_len) != 0) {
        describe_diff(msg, sizeof msg, "stdout", plain.out, plain.out_len, pre.out,
                      pre.out_len);
        ck_abort_msg("%s: %s", name, msg);
    }
    if (pre.err_len != plain.err_len || memcmp(pre.err, plain.err, plain.err_len) != 0) {
        describe_diff(msg, sizeof msg, "stderr", plain.err, plain.err_len, pre.err,
                      pre.err_len);
        ck_abort_msg("%s: %s", name, msg);
    }
    check_totals(s, name, real_exe, c->min_processes, chain, t);
    /* Figures for the log, and for tests/RELIABILITY.md; the times are not checked. */
    printf("compat: %-22s %s %3d processes %9llu allocations %9llu frees, %zu+%zu bytes "
           "of output identical; %.2fs plain, %.2fs tracked\n", name,
           chain == CHAIN_JEMALLOC ? "+jemalloc" : "         ", t->processes, t->allocations,
           t->frees, plain.out_len, plain.err_len, t1 - t0, t2 - t1);
    fflush(stdout);
    cmt_run_free(&plain);
    cmt_run_free(&pre);
}

/* ---- the programs -------------------------------------------------------------------- */


static const char py_work[] =
    "import collections, hashlib, json, os, re, sys\n"
    "with open(os.path.join(os.environ['CMT_DATA'], 'lines.txt')) as f:\n"
    "    lines = f.read().splitlines()\n"
    "pat = re.compile(r'^(\\w+) (\\d+) (\\w+)$')\n"
    "counts = collections.Counter()\n"
    "nums = {}\n"
    "for line in lines:\n"
    "    m = pat.match(line)\n"
    "    a, n, b = m.groups()\n"
    "    counts[a] += 1\n"
    "    nums.setdefault(b, []).append(int(n))\n"
    "doc = {k: {'n': len(v), 'sum': sum(v), 'max': max(v), 'tag': k.upper() * 40}\n"
    "       for k, v in nums.items()}\n"
    "text = json.dumps(doc, sort_keys=True, indent=1)\n"
    "assert json.loads(text) == doc\n"
    "sub = re.sub(r'[aeiou]+', lambda m: str(len(m.group())), text)\n"
    "big = ['%s:%d' % (w, c) * 50 for w, c in counts.items()]\n"
    "print(len(lines), len(counts), len(doc), len(text), len(sub), sum(map(len, big)))\n"
    "print(hashlib.sha256(sub.encode()).hexdigest())\n"
    "for w, c in counts.most_common(8):\n"
    "    print(w, c)\n"
    "rev = ' '.join(sorted({w[::-1] for w in nums}))\n"
    "print(len(rev), rev[:120])\n"
    "print('python done', file=sys.stderr)\n"
    "sys.exit(3)\n";

/* A slice of CPython's own test suite that Debian ships with python3 itself (the rest is in
 * libpython3.11-testsuite), run without unittest's timings so that two runs compare equal. */
static const char py_tests[] =
    "import sys, unittest\n"
    "import test.test_support as m\n"
    "suite = unittest.defaultTestLoader.loadTestsFromModule(m)\n"
    "r = unittest.TestResult()\n"
    "suite.run(r)\n"
    "print('ran', r.testsRun, 'failures', len(r.failures), 'errors', len(r.errors),\n"
    "      'skipped', len(r.skipped))\n"
    "for t, why in r.failures + r.errors:\n"
    "    print('FAILED', t.id(), why, file=sys.stderr)\n"
    "for t, why in r.skipped:\n"
    "    print('skipped', t.id(), why)\n"
    "sys.exit(0 if r.wasSuccessful() else 1)\n";

static const char perl_work[] =
    "use strict; use warnings;\n"
    "my (%count, %sum, @kept);\n"
    "open my $fh, '<', \"$ENV{CMT_DATA}/lines.txt\" or die \"lines.txt: $!\";\n"
    "while (my $l = <$fh>) {\n"
    "  chomp $l;\n"
    "  $l =~ /^(\\w+) (\\d+) (\\w+)$/ or die \"bad line $.\";\n"
    "  $count{$1}++; $sum{$3} += $2;\n"
    "  (my $t = $l) =~ s/([aeiou]+)/uc($1) . length($1)/ge;\n"
    "  push @kept, $t if $. % 7 == 0;\n"
    "}\n"
    "my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0..7];\n"
    "print \"$_ $count{$_}\\n\" for @top;\n"
    "my @s = sort keys %sum;\n"
    "print scalar(@s), ' ', join(',', map { \"$_=$sum{$_}\" } @s[0..4]), \"\\n\";\n"
    "my $j = join '|', @kept; my @back = split /\\|/, $j;\n"
    "print scalar(@back), ' ', length($j), ' ', ($j =~ tr/A-Z//), \"\\n\";\n"
    "my %inv; push @{$inv{$count{$_}}}, $_ for keys %count;\n"
    "print join(' ', map { \"$_:\" . scalar(@{$inv{$_}}) } sort { $a <=> $b } keys %inv), "
    "\"\\n\";\n"
    "warn \"perl done\\n\"; exit 2;\n";

/* Three translation units and a header, one with a warning (so stderr has something to
 * compare), compiled one by one and linked by the gcc driver (cc1, as, collect2, ld), then
 * in one driver call; then a C++ program, whose `new` and std::string go through malloc. */
static const char gcc_work[] =
    "set -e\n"
    "cat > shapes.h <<'EOF'\n"
    "struct shape { const char *name; double (*area)(double); };\n"
    "extern const struct shape shapes[];\n"
    "extern const int nshapes;\n"
    "char *describe(const struct shape *s, double x);\n"
    "EOF\n"
    "cat > shapes.c <<'EOF'\n"
    "#include \"shapes.h\"\n"
    "static double square(double x) { return x * x; }\n"
    "static double circle(double x) { return 3.14159265358979 * x * x; }\n"
    "const struct shape shapes[] = { { \"square\", square }, { \"circle\", circle } };\n"
    "const int nshapes = 2;\n"
    "EOF\n"
    "cat > describe.c <<'EOF'\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include \"shapes.h\"\n"
    "char *describe(const struct shape *s, double x)\n"
    "{\n"
    "    int unused;\n"
    "    char *out = NULL;\n"
    "    if (asprintf(&out, \"%s(%g) = %.3f\", s->name, x, s->area(x)) < 0)\n"
    "        return NULL;\n"
    "    return out;\n"
    "}\n"
    "EOF\n"
    "cat > main.c <<'EOF'\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#include <string.h>\n"
    "#include \"shapes.h\"\n"
    "int main(void)\n"
    "{\n"
    "    for (int i = 0; i < nshapes; i++)\n"
    "        for (double x = 0.5; x < 4; x += 0.5) {\n"
    "            char *d = describe(&shapes[i], x);\n"
    "            char *copy = strdup(d);\n"
    "            puts(copy);\n"
    "            free(copy);\n"
    "            free(d);\n"
    "        }\n"
    "    return 4;\n"
    "}\n"
    "EOF\n"
    "cat > words.cc <<'EOF'\n"
    "#include <iostream>\n"
    "#include <map>\n"
    "#include <memory>\n"
    "#include <sstream>\n"
    "#include <string>\n"
    "#include <vector>\n"
    "int main()\n"
    "{\n"
    "    std::map<std::string, std::vector<int>> m;\n"
    "    for (int i = 0; i < 20000; i++) {\n"
    "        std::ostringstream k;\n"
    "        k << \"key\" << (i * 7919) % 1000;\n"
    "        m[k.str()].push_back(i);\n"
    "    }\n"
    "    auto boxed = std::make_unique<std::vector<std::string>>();\n"
    "    for (auto &e : m)\n"
    "        boxed->push_back(e.first + \"/\" + std::to_string(e.second.size()));\n"
    "    std::cout << m.size() << ' ' << boxed->front() << ' ' << boxed->back() << '\\n';\n"
    "    return 0;\n"
    "}\n"
    "EOF\n"
    "gcc -Wall -O2 -c shapes.c\n"
    "gcc -Wall -O2 -c describe.c\n"
    "gcc -Wall -O2 -o prog main.c shapes.o describe.o\n"
    "./prog || echo \"prog exited $?\"\n"
    "gcc -O1 -o prog2 main.c shapes.c describe.c\n"
    "./prog2 | cksum\n"
    "g++ -O1 -o words words.cc\n"
    "./words\n";

static const char tar_work[] =
    "set -e\n"
    "tar --sort=name -cJf perl.tar.xz -C /usr/share/perl/5.36.0 Pod unicore/lib/Sc\n"
    "xz -t perl.tar.xz\n"
    "sha256sum perl.tar.xz\n"
    "mkdir out\n"
    "tar -xJf perl.tar.xz -C out\n"
    "diff -r out/Pod /usr/share/perl/5.36.0/Pod\n"
    "diff -r out/unicore/lib/Sc /usr/share/perl/5.36.0/unicore/lib/Sc\n"
    "tar -tvJf perl.tar.xz | sort -k6 | head -40\n"
    "xz -l perl.tar.xz\n";

static const char git_work[] =
    "set -e\n"
    "git init -q -b main repo\n"
    "cd repo\n"
    "cp -R /usr/share/perl/5.36.0/File /usr/share/perl/5.36.0/Getopt .\n"
    "git add -A\n"
    "git commit -q -m 'perl modules'\n"
    "sed -i 's/use strict;/use strict; # checked/' File/*.pm\n"
    "git rm -q -r Getopt\n"
    "git diff --stat\n"
    "git diff | head -80\n"
    "git commit -q -am 'mark the strict lines'\n"
    "git checkout -q -b side HEAD~1\n"
    "echo 'side change' > side.txt && git add side.txt && git commit -q -m side\n"
    "git checkout -q main\n"
    "git merge -q --no-edit side\n"
    "git log --graph --stat --format='%H %an <%ae> %ad %s'\n"
    "git gc -q\n"
    "git fsck --no-progress --strict\n"
    "git count-objects -v | grep -v size\n"
    "git grep -c 'strict' | head -20\n"
    "git blame -s File/Temp.pm | tail -5\n"
    "git log --oneline | wc -l\n";

static const char sqlite_work[] =
    "CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, grp INTEGER, val REAL, doc TEXT);\n"
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)\n"
    "INSERT INTO t (name, grp, val, doc)\n"
    "  SELECT printf('row%06d', i), i % 97, (i * 7919) % 10007 / 3.0,\n"
    "         json_object('i', i, 'tags', json_array(i % 3, i % 5, 'x' || (i % 11)))\n"
    "  FROM n;\n"
    "CREATE INDEX t_grp ON t (grp, val);\n"
    "SELECT count(*), sum(grp), printf('%.3f', avg(val)) FROM t;\n"
    "SELECT grp, count(*), printf('%.2f', max(val)) FROM t GROUP BY grp ORDER BY grp LIMIT 10;\n"
    "SELECT name, json_extract(doc, '$.tags[2]') FROM t WHERE grp = 42 AND val > 3000\n"
    "  ORDER BY val DESC LIMIT 5;\n"
    "UPDATE t SET doc = json_set(doc, '$.seen', 1) WHERE id % 10 = 0;\n"
    "DELETE FROM t WHERE grp > 90;\n"
    "SELECT count(*), sum(json_extract(doc, '$.seen')) FROM t;\n"
    "SELECT group_concat(name, ',') FROM (SELECT name FROM t ORDER BY name DESC LIMIT 8);\n"
    "VACUUM;\n"
    "PRAGMA integrity_check;\n";

/* Multithreaded: xz with two threads over blocks small enough that both work at once, both
 * ways; pigz when it is installed. */
static const char xz_work[] =
    "set -e\n"
    "xz -T2 --block-size=256KiB -3 -c \"$CMT_DATA/lines.txt\" > lines.xz\n"
    "sha256sum lines.xz\n"
    "xz -l lines.xz\n"
    "xz -T2 -dc lines.xz | cmp - \"$CMT_DATA/lines.txt\"\n"
    "if command -v pigz >/dev/null; then\n"
    "  pigz -n -p 2 -b 128 -c \"$CMT_DATA/lines.txt\" > lines.gz\n"
    "  pigz -l lines.gz | tail -1 | cut -c1-30\n"
    "  cksum < lines.gz\n"
    "  pigz -dc -p 2 lines.gz | cmp - \"$CMT_DATA/lines.txt\"\n"
    "fi\n"
    "echo same\n";

static const char sort_work[] =
    "set -e\n"
    "sort -t' ' -k2,2n -k1,1r --parallel=2 -S 1M \"$CMT_DATA/lines.txt\" > by-number\n"
    "sort -u -k3,3 -k1,1 \"$CMT_DATA/lines.txt\" | cksum\n"
    "sort -c -t' ' -k2,2n -k1,1r by-number\n"
    "cut -d' ' -f1 by-number | sort | uniq -c | sort -k1,1nr -k2 | head -20\n"
    "cksum by-number\n";

static const struct compat_case cases[] = {
    { "ls -lR", "/bin/ls", 1, 0, 0,
      { "ls", "-lR", "--full-time", "/usr/share/perl/5.36.0", NULL } },
    { "sort", "/usr/bin/sort", 1, 0, 100000, { "sort", "data/lines.txt", NULL } },
    { "sort pipeline", "/usr/bin/sort", 9, 0, 100000, { "sh", "-c", sort_work, NULL } },
    /* Every Python object through malloc, not only the large ones: millions of calls. */
    { "python3 real work", "/usr/bin/python3", 1, 3, 60000,
      { "/usr/bin/python3", "-c", py_work, NULL }, "PYTHONMALLOC=malloc" },
    { "python3 test_support", "/usr/bin/python3", 10, 0, 0,
      { "/usr/bin/python3", "-c", py_tests, NULL } },
    { "perl hash and regex", "/usr/bin/perl", 1, 2, 100000,
      { "/usr/bin/perl", "-e", perl_work, NULL } },
    { "gcc multi-file", "/usr/bin/gcc", 20, 0, 0, { "sh", "-c", gcc_work, NULL } },
    { "tar and xz", "/bin/tar", 8, 0, 0, { "sh", "-c", tar_work, NULL } },
    { "git scratch repository", "/usr/bin/git", 20, 0, 0, { "sh", "-c", git_work, NULL } },
    { "sqlite3", "/usr/bin/sqlite3", 1, 0, 0,
      { "sqlite3", "-bail", "db.sqlite", ".read data/work.sql", NULL } },
    { "xz -T2 and pigz", "/usr/bin/xz", 4, 0, 100000, { "sh", "-c", xz_work, NULL } },
};

/* Runs case i, with its inputs made first. Paths "data/..." in argv name $CMT_DATA. */
static void run_case(int i, enum chain chain, struct tally *t)
{
    const struct compat_case *c = &cases[i];
    struct scratch s;
    scratch_make(&s);
    if (c->data_lines)
        make_lines(&s, "lines.txt", c->data_lines);
    if (strcmp(c->name, "sqlite3") == 0) {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/work.sql", s.data);
        FILE *f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs(sqlite_work, f);
        ck_assert_int_eq(fclose(f), 0);
    }
    char *argv[CMT_ARRAY_LEN_(c->argv)];
    static char args[CMT_ARRAY_LEN_(c->argv)][PATH_MAX + 64];
    for (size_t k = 0; k < CMT_ARRAY_LEN_(c->argv); k++) {
        const char *a = c->argv[k];
        if (a && strncmp(a, "data/", 5) == 0) {
            snprintf(args[k], sizeof args[k], "%s/%s", s.data, a + 5);
            argv[k] = args[k];
        } else if (a && strncmp(a, ".read data/", 11) == 0) {
            snprintf(args[k], sizeof args[k], ".read %s/%s", s.data, a + 11);
            argv[k] = args[k];
        } else {
            argv[k] = (char *)a;
        }
    }
    compat_run(&s, c, argv, chain, t);
    scratch_remove(&s);
}

START_TEST(real_program_is_unchanged)
{
    struct tally t;
    run_case(_i, CHAIN_NONE, &t);
}
END_TEST

/* With jemalloc behind the tracker: the same output, exact accounting, and proof that
 * jemalloc served: in the program's own (single-threaded) process, jemalloc handed out at
 * least every byte the tracker saw requested. Were the tracker calling glibc instead,
 * jemalloc would have served nothing. */
START_TEST(real_program_is_unchanged_with_jemalloc)
{
    static const int single_threaded[] = { 3, 5 };    /* python3 real work, perl */
    int i = single_threaded[_i];
    struct tally t;
    run_case(i, CHAIN_JEMALLOC, &t);
    ck_assert_msg(t.main_bytes_allocated > 0 &&
                      t.main_jemalloc_bytes >= t.main_bytes_allocated,
                  "%s: expected jemalloc to serve at least the %llu bytes the tracker counted, "
                  "it served %llu", cases[i].name, t.main_bytes_allocated,
                  t.main_jemalloc_bytes);
}
END_TEST

/* The rest of the chained runs, where the proof above does not apply (several threads or
 * processes): identical output and exact accounting. */
START_TEST(real_program_chained_is_unchanged)
{
    static const int others[] = { 1, 8, 10 };   /* sort, git, xz -T2 */
    struct tally t;
    run_case(others[_i], CHAIN_JEMALLOC, &t);
}
END_TEST

static Suite *compat_suite(void)
{
    Suite *s = suite_create("compat");
    TCase *tc = tcase_create("real programs");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, real_program_is_unchanged, 0, (int)CMT_ARRAY_LEN_(cases));
    suite_add_tcase(s, tc);

    if (jemalloc_so()) {
        tc = tcase_create("chained with jemalloc");
        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, real_program_is_unchanged_with_jemalloc, 0, 2);
        tcase_add_loop_test(tc, real_program_chained_is_unchanged, 0, 3);
        suite_add_tcase(s, tc);
    } else {
        printf("check_compat: libjemalloc.so.2 not found (configure's JEMALLOC_SO is \"%s\"); "
               "the chaining tests are skipped\n", CMT_JEMALLOC_SO);
    }
    return s;
}

int main(void)
{
    return cmt_run_suite(compat_suite());
}
