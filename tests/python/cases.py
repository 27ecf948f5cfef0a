"""cases.py -- the Python side of tests/check_python.c: each case exercises the cymemtrack
package in this process and prints what it measured as NAME=VALUE lines, which the Check
suite asserts exactly. A case never judges its own numbers.

usage: cases.py CASE [ARG...]      (run by check_python with /usr/bin/python3 or $PYTHON)

Blocks are allocated with the C library's malloc through ctypes: under the default pymalloc
the interpreter's own small objects stay out of the tracker's sight, so a scope's counters
hold exactly those blocks. Cases that run with PYTHONMALLOC=malloc say so.
"""

import ctypes
import gc
import sys
import threading

import cymemtrack

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.restype = None
libc.free.argtypes = [ctypes.c_void_p]


def say(key, value):
    print("%s=%s" % (key, value))


def say_stats(prefix, st):
    if st is None:
        say(prefix + ".none", 1)
        return
    for field, value in st._asdict().items():
        say("%s.%s" % (prefix, field), value)


def leak(n):
    """One block of n bytes that nobody frees."""
    libc.malloc(n)


def expect_raise(kind, fn, *args):
    """Calls fn; prints the exception's class and message on stdout, 1 when it was kind."""
    try:
        fn(*args)
    except Exception as e:      # noqa: BLE001 -- the kind is what is tested
        print("raised %s: %s" % (type(e).__name__, e))
        return int(isinstance(e, kind))
    print("raised nothing")
    return 0


def case_noop():
    """No preload: everything is a cheap no-op, and type errors still raise."""
    say("active", int(cymemtrack.active()))
    s = cymemtrack.scope("idle")
    with s as same:
        say("enter_returns_self", int(same is s))
        p = libc.malloc(10)
        libc.free(p)

    def f(x):
        return x + 1
    say("decorator_is_identity", int(cymemtrack.scope("d")(f) is f))
    say("decorated_result", cymemtrack.scope("d")(f)(41))
    s.open()
    say("close", s.close())
    say("close_again", s.close())           # nothing to say without the tracker
    say("stats_none", int(cymemtrack.stats("idle") is None))
    say("scope_stats_none", int(s.stats() is None))
    say("snapshot", int(cymemtrack.snapshot("x")))
    say("process_stats_none", int(cymemtrack.process_stats() is None))
    say("typeerror", expect_raise(TypeError, cymemtrack.scope, 42))
    say("stats_typeerror", expect_raise(TypeError, cymemtrack.stats, None))


def case_basic():
    say("active", int(cymemtrack.active()))
    s = cymemtrack.scope("basic")
    with s:
        a = libc.malloc(1000)
        libc.malloc(2000)
        libc.free(a)
        say_stats("open", cymemtrack.stats("basic"))
    say_stats("closed", cymemtrack.stats("basic"))
    say_stats("object", s.stats())
    say("unknown_none", int(cymemtrack.stats("never opened") is None))

    outer = cymemtrack.scope("outer")
    outer.open()
    leak(100)
    with cymemtrack.scope("inner"):
        leak(200)
        leak(300)
    leak(400)
    say("outer_left", outer.close())
    say_stats("outer", cymemtrack.stats("outer"))
    say_stats("inner", cymemtrack.stats("inner"))

    # Recursion through one decorated function: an instance per call, nested.
    depth = []

    @cymemtrack.scope("recursive")
    def down(n):
        leak(10 + n)
        if n:
            down(n - 1)
        depth.append(cymemtrack.stats("recursive").live_bytes)
    down(2)
    say("recursive_live_bytes", ",".join(str(b) for b in depth))

    b = cymemtrack.scope("bulk", bulk=True)
    with b:
        leak(500)
        leak(600)
    say("bulk_left_stats", b.stats().bulk_freed_blocks)
    say_stats("bulk", b.stats())
    say("repr", repr(b))


def case_malloc_mode():
    """Under PYTHONMALLOC=malloc: every Python object is a tracked block, the module's own
    bookkeeping leaves nothing live in a scope, and what a block keeps is seen."""
    gc.disable()
    say("pythonmalloc_seen", int(cymemtrack._ARG_BLOCKS))
    s = cymemtrack.scope("tidy")
    for _ in range(3):
        s.open()
        p = libc.malloc(4096)
        libc.free(p)
        p = None
        say("tidy_left", s.close())
        say("tidy_live", cymemtrack.stats("tidy").live_blocks)
    k = cymemtrack.scope("c-block")
    with k:
        leak(3000)
    say_stats("c_block", k.stats())
    kept = []
    with cymemtrack.scope("strings"):
        kept.extend("%d-%s" % (i, "x" * 20) for i in range(1000))
    say("strings_live_at_least_1000", int(cymemtrack.stats("strings").live_blocks >= 1000))
    t = cymemtrack.scope("left")
    t.open()
    leak(123)
    say("close_left", t.close())


def case_exceptions():
    boom = cymemtrack.scope("boom")
    with cymemtrack.scope("outer"):
        try:
            with boom:
                leak(111)
                raise ValueError("inside")
        except ValueError as e:
            say("caught", str(e))
        leak(222)
        say_stats("outer_open", cymemtrack.stats("outer"))
    say_stats("boom", cymemtrack.stats("boom"))
    say("depth_after", len(cymemtrack._stack()))

    @cymemtrack.scope("deco")
    def fails():
        leak(333)
        raise KeyError("k")
    say("deco_raises", expect_raise(KeyError, fails))
    say_stats("deco", cymemtrack.stats("deco"))
    say("depth_after_deco", len(cymemtrack._stack()))

    # The block closed its own scope and then raised: the block's exception goes on, the
    # second close is not allowed to replace it.
    s = cymemtrack.scope("self-closed")

    def closes_then_raises():
        with s:
            s.close()
            raise IndexError("the block's own")
    say("original_kept", expect_raise(IndexError, closes_then_raises))

    # Nested decorated calls that raise from the innermost: every instance closes.
    @cymemtrack.scope("deep-inner")
    def inner():
        leak(444)
        raise RuntimeError("from the inside")

    @cymemtrack.scope("deep-outer")
    def outer():
        inner()
    say("deep_raises", expect_raise(RuntimeError, outer))
    say_stats("deep_inner", cymemtrack.stats("deep-inner"))
    say_stats("deep_outer", cymemtrack.stats("deep-outer"))
    say("depth_end", len(cymemtrack._stack()))


def case_misuse():
    s = cymemtrack.scope("twice")
    s.open()
    say("first_close", s.close())
    say("second_close_error", expect_raise(cymemtrack.Error, s.close))

    w = cymemtrack.scope("with-twice")

    def with_close():
        with w:
            w.close()
    say("with_close_error", expect_raise(cymemtrack.Error, with_close))

    say("never_opened_error", expect_raise(cymemtrack.Error, cymemtrack.scope("never").close))
    say("int_name", expect_raise(TypeError, cymemtrack.scope, 42))
    say("bytes_name", expect_raise(TypeError, cymemtrack.scope, b"bytes"))
    say("none_name", expect_raise(TypeError, cymemtrack.scope, None))
    say("nul_name", expect_raise(ValueError, cymemtrack.scope, "a\0b"))
    say("long_label", expect_raise(cymemtrack.Error, cymemtrack.snapshot, "x" * 200))
    say("int_label", expect_raise(TypeError, cymemtrack.snapshot, 7))

    # Another thread's instance: this thread may not close it, its owner still can.
    shared = cymemtrack.scope("shared")
    opened, release = threading.Event(), threading.Event()
    result = {}

    def owner():
        with shared:
            leak(50)
            opened.set()
            release.wait()
        result["owner_close"] = shared.stats().live_blocks

    t = threading.Thread(target=owner)
    t.start()
    opened.wait()
    say("other_thread_error", expect_raise(cymemtrack.Error, shared.close))
    release.set()
    t.join()
    say("owner_closed_live_blocks", result["owner_close"])
    # Long names are cut by the library, which says so; that is not an error.
    with cymemtrack.scope("n" * 300):
        pass
    say("still_fine", 1)


def case_threads(n):
    """n threads, each inside its own scope and an instance of one shared scope object, all
    open at once; each leaks known blocks."""
    n = int(n)
    barrier = threading.Barrier(n)
    shared = cymemtrack.scope("shared")
    seen = {}

    def worker(i):
        with cymemtrack.scope("t%d" % i):
            barrier.wait()
            leak(1000 + i)
            with shared:
                barrier.wait()      # every thread's "shared" instance is open now
                leak(10 + i)
                seen[i] = (shared.stats(), len(cymemtrack._stack()))
            barrier.wait()
            seen[i] += (cymemtrack.stats("t%d" % i),)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(n):
        sh, depth, own = seen[i]
        say("t%d.shared_live_bytes" % i, sh.live_bytes)
        say("t%d.depth" % i, depth)
        say("t%d.own_live_bytes" % i, own.live_bytes)
        say("t%d.own_allocations" % i, own.allocations)
    say("main_depth", len(cymemtrack._stack()))


def case_strings():
    """1000 small strings kept in a scope: malloc blocks only under PYTHONMALLOC=malloc."""
    kept = []
    with cymemtrack.scope("strings"):
        kept.extend("%d-%s" % (i, "x" * 20) for i in range(1000))
    say("strings_live_blocks", cymemtrack.stats("strings").live_blocks)


def case_snapshot():
    with cymemtrack.scope("before-snapshot"):
        leak(777)
    say("snapshot", int(cymemtrack.snapshot("mid-run")))
    say("snapshot_nolabel", int(cymemtrack.snapshot()))


def case_process_stats():
    a = cymemtrack.process_stats()
    leak(5000)
    b = cymemtrack.process_stats()
    say("live_blocks_delta", b.live_blocks - a.live_blocks)
    say("live_bytes_delta", b.live_bytes - a.live_bytes)
    say("allocations_delta", b.allocations - a.allocations)


def cy_module(directory):
    sys.path.insert(0, directory)
    import cyleak
    return cyleak


def case_cython(directory):
    """Under PYTHONMALLOC=malloc: the extension's scopes, whose numbers the report shows."""
    gc.disable()
    cy = cy_module(directory)
    say("cy_active", cy.active())
    say("cy_malloc_close", cy.malloc_blocks(b"cy-malloc", 10, 3))
    say("cy_malloc_close_again", cy.malloc_blocks(b"cy-malloc", 10, 3))
    say("cy_bulk_close", cy.malloc_blocks(b"cy-bulk", 5, 5, True))
    blocks_live, py_left = cy.routed_pool(b"cy-pool-blocks", b"cy-pool-python", 20, False)
    say("cy_pool_blocks_live", blocks_live)
    say("cy_pool_python_left", py_left)
    blocks_live, py_left = cy.routed_pool(b"cy-kept-blocks", b"cy-kept-python", 12, True)
    say("cy_kept_blocks_live", blocks_live)
    say("cy_default_pool_close", cy.default_pool(b"cy-default-pool", 30))
    # A Python scope around C code that leaks: its blocks are the scope's.
    with cymemtrack.scope("py-around-cy"):
        cy.leak_in_current(4)
    say("py_around_live_blocks", cymemtrack.stats("py-around-cy").live_blocks)


def case_cython_noop(directory):
    """Without the preload the extension's calls are libcymemtrack-api.so's no-ops."""
    cy = cy_module(directory)
    say("cy_active", cy.active())
    say("py_active", int(cymemtrack.active()))
    say("cy_malloc_close", cy.malloc_blocks(b"cy-malloc", 10, 0))
    say("cy_pool", ",".join(str(v) for v in cy.routed_pool(b"a", b"b", 5, False)))


def main():
    name, args = sys.argv[1], sys.argv[2:]
    globals()["case_" + name](*args)


if __name__ == "__main__":
    main()
