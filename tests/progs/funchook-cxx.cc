// funchook-cxx.cc — C++ exceptions through hooked functions (src/funchook.c linked in, no
// preload): throws, catches inside and outside hooked calls, rethrows, and prints the hook
// events in order, one line a case, for tests/check_funchook.c to compare exactly.
#include <cstdio>
#include <cstring>
#include <stdexcept>

extern "C" {
typedef void (*cmt_funchook_cb)(void *arg);
int cmt_funchook_install(void *addr, cmt_funchook_cb on_enter, cmt_funchook_cb on_exit,
                         void *arg, const char **why);
void *cmt_elfsyms_find(const char *symbol, size_t *size);
}

// The events of one case, without allocating: "+name" at entry, "-name" at exit, "|mark"
// where the program itself says where it is.
static char events[1024];

static void note(char sign, const char *what)
{
    size_t n = strlen(events);
    snprintf(events + n, sizeof events - n, "%s%c%s", n ? " " : "", sign, what);
}

static void hook_enter(void *arg) { note('+', static_cast<const char *>(arg)); }
static void hook_exit(void *arg) { note('-', static_cast<const char *>(arg)); }

static volatile int sink;

extern "C" {
__attribute__((noipa)) void fh_thrower(int v)
{
    sink = v;
    if (v >= 0)
        throw std::runtime_error("thrown");
    sink = 0;
}

__attribute__((noipa)) void fh_middle(int v)
{
    sink = v + 1;
    fh_thrower(v);
    sink = v + 2;
}

// Catches inside itself: its own exit must come at its return, after the catch.
__attribute__((noipa)) int fh_catches_inside(int v)
{
    int r = 0;
    try {
        fh_thrower(v);
    } catch (const std::exception &) {
        note('|', "caught");
        r = 7;
    }
    sink = r;
    return r;
}

__attribute__((noipa)) void fh_rethrower(int v)
{
    try {
        fh_thrower(v);
    } catch (...) {
        note('|', "rethrow");
        throw;
    }
}

__attribute__((noipa)) int fh_deep(int n)
{
    if (n == 0)
        fh_thrower(1);
    int r = fh_deep(n - 1);
    sink = r;
    return r + 1;
}
}

static bool hook(const char *name)
{
    size_t size = 0;
    void *f = cmt_elfsyms_find(name, &size);
    const char *why = "not found";
    if (!f || cmt_funchook_install(f, hook_enter, hook_exit, const_cast<char *>(name + 3),
                                   &why) != 0) {
        printf("cannot hook %s: %s\n", name, why);
        return false;
    }
    return true;
}

static void report(const char *label)
{
    printf("%s: %s\n", label, events);
    events[0] = '\0';
}

int main()
{
    if (!hook("fh_thrower") || !hook("fh_middle") || !hook("fh_catches_inside") ||
        !hook("fh_rethrower") || !hook("fh_deep"))
        return 1;

    try {
        fh_middle(1);
    } catch (const std::exception &) {
        note('|', "caught");
    }
    report("through");

    int r = fh_catches_inside(1);
    note('|', r == 7 ? "seven" : "wrong");
    report("inside");

    try {
        fh_rethrower(1);
    } catch (const std::exception &) {
        note('|', "caught");
    }
    report("rethrow");

    try {
        fh_deep(3);
    } catch (const std::exception &) {
        note('|', "caught");
    }
    report("deep");

    // Hooks still work, and nothing is left over: one enter, one exit.
    fh_thrower(-1);
    report("after");
    return 0;
}
