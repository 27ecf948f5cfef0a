"""cymemtrack -- scopes for Python code, on top of the preloaded tracker's public API.

Owns the Python view of cymemtrack(3): scope objects that work as context managers and
decorators, per-thread bookkeeping that mirrors the library's scope stacks, and the statistics
and snapshot calls. It binds the cmt_* functions that libcymemtrack.so puts into the process's
global namespace when it is preloaded, and must never load that library itself: its
initial-exec TLS is not made for dlopen(), and tracking that started halfway through a process
would misread every block allocated before. Without the preload every call is a cheap no-op.

    import cymemtrack

    with cymemtrack.scope("parse"):
        doc = parse(text)

    @cymemtrack.scope("render")
    def render(doc): ...

    print(cymemtrack.stats("parse"))

Run the program under cymemtrack(1), which sets PYTHONMALLOC=malloc so that the interpreter's
small objects reach the tracker instead of staying inside pymalloc's arenas.
"""

import ctypes
import functools
import threading
from collections import namedtuple

__all__ = [
    "Error", "ScopeStats", "ProcessStats", "SCOPE_NAME_MAX",
    "scope", "stats", "snapshot", "active", "process_stats",
]

__version__ = "0.1.0"

#: Scope names and snapshot labels are at most this many bytes (UTF-8), as in cymemtrack.h.
SCOPE_NAME_MAX = 127

_CMT_BULK_FREE = 0x1


class Error(RuntimeError):
    """A call the tracker refused: a scope closed twice, or by a thread that did not open it,
    or a snapshot label that is too long. The library says the same on standard error, in
    one line that starts with "cymemtrack:"."""


#: The counters of one scope instance (struct cmt_scope_stats).
ScopeStats = namedtuple("ScopeStats", [
    "allocations", "bytes_allocated", "frees", "live_blocks", "live_bytes",
    "peak_live_bytes", "bulk_freed_blocks", "bulk_freed_bytes",
])

#: The process-wide totals (struct cmt_process_stats).
ProcessStats = namedtuple("ProcessStats", [
    "allocations", "bytes_allocated", "frees", "live_blocks", "live_bytes",
    "peak_live_bytes", "invalid_frees", "double_frees", "stale_frees",
    "bulk_freed_blocks", "bulk_freed_bytes",
])


class _CScopeStats(ctypes.Structure):
    _fields_ = [(f, ctypes.c_uint64) for f in ScopeStats._fields]


class _CProcessStats(ctypes.Structure):
    _fields_ = [(f, ctypes.c_uint64) for f in ProcessStats._fields]


def _bind():
    """The preloaded library's API, or None when this process is not tracked.

    PyDLL(None) is dlopen(NULL): a handle on the program and what was loaded with it,
    LD_PRELOAD first, so it finds the tracker's symbols without loading anything. PyDLL
    keeps the GIL across the calls, which are short, so that no other Python thread runs in
    the middle of this module's bookkeeping. A process that only linked libcymemtrack-api.so
    finds its no-ops, which say they are not active.
    """
    try:
        lib = ctypes.PyDLL(None)
        cmt_active = lib.cmt_active
    except (OSError, AttributeError):
        return None
    u64, i64, c_int = ctypes.c_uint64, ctypes.c_int64, ctypes.c_int
    sigs = {
        "cmt_active": ([], c_int),
        "cmt_scope_open": ([ctypes.c_char_p, ctypes.c_uint], u64),
        "cmt_scope_close": ([u64], i64),
        "cmt_scope_stats": ([u64, ctypes.POINTER(_CScopeStats)], c_int),
        "cmt_process_stats": ([ctypes.POINTER(_CProcessStats)], c_int),
        "cmt_snapshot": ([ctypes.c_char_p], c_int),
    }
    try:
        for name, (args, res) in sigs.items():
            fn = getattr(lib, name)
            fn.argtypes = args
            fn.restype = res
    except AttributeError:
        return None             # an older or foreign library: stay a no-op
    if cmt_active() != 1:
        return None
    return lib


def _measure_argument():
    """(blocks, bytes) of the object ctypes makes for each argument it passes to C: a block
    the tracker sees, in whatever scope is innermost, when the interpreter's small objects go
    through malloc (PYTHONMALLOC=malloc), and nothing under pymalloc. Measured, not guessed:
    the allocator is chosen at startup and the object's size varies between versions."""
    a, b = _CProcessStats(), _CProcessStats()
    ra, rb = ctypes.byref(a), ctypes.byref(b)
    _lib.cmt_process_stats(ra)
    probe = ctypes.byref(a)     # the one thing made between the two calls
    _lib.cmt_process_stats(rb)
    del probe
    blocks, size = b.live_blocks - a.live_blocks, b.live_bytes - a.live_bytes
    return (1, size) if blocks == 1 and 0 < size < 4096 else (0, 0)


_lib = _bind()
_ARG_BLOCKS, _ARG_BYTES = _measure_argument() if _lib is not None else (0, 0)

# This thread's open scopes, innermost last: the mirror of the library's scope stack for the
# instances Python opened. Each entry is [scope, handle box, stats buffer, thread ident].
_tls = threading.local()

# name -> ScopeStats of the most recently closed instance of that name, any thread.
_closed = {}


def _stack():
    try:
        return _tls.stack
    except AttributeError:
        _tls.stack = []
        return _tls.stack


def _ask(box, st):
    """Fills st with the counters of the instance in box; False when the library no longer
    knows it. Makes nothing that outlives the call (its results are read from st later)."""
    return _lib.cmt_scope_stats(box, ctypes.byref(st)) == 0


def _read(st, innermost):
    """The counters in st. When the instance was the thread's innermost scope, the two
    argument objects of the stats call were live in it while the library counted: they are
    taken out."""
    got = ScopeStats(*(getattr(st, f) for f in ScopeStats._fields))
    if innermost and _ARG_BLOCKS:
        got = got._replace(live_blocks=max(got.live_blocks - 2 * _ARG_BLOCKS, 0),
                           live_bytes=max(got.live_bytes - 2 * _ARG_BYTES, 0))
    return got


def _encode(what, text):
    if not isinstance(text, str):
        raise TypeError("cymemtrack: %s must be a str, not %s" % (what, type(text).__name__))
    b = text.encode("utf-8")
    if b"\0" in b:
        raise ValueError("cymemtrack: %s contains a NUL character" % what)
    return b


class scope(object):
    """A named scope: ``with scope(name):`` opens an instance of it on the current thread and
    closes it when the block ends, whichever way it ends; ``@scope(name)`` does the same
    around each call of a function.

    Every block the thread allocates while the instance is its innermost open scope belongs
    to it, as cymemtrack(3) says of cmt_scope_open(). With ``bulk=True``, closing frees what
    the instance still owns (CMT_BULK_FREE): only for memory that nothing refers to any more,
    such as a C library's scratch space; never for Python objects that are still alive.

    One object may be entered again while open (recursion) and from several threads at once:
    each thread has its own stack of instances. Names longer than SCOPE_NAME_MAX bytes are
    cut by the library, which says so. An instance must close on the thread that opened it:
    a generator that yields inside a scope lends it to whatever runs between its steps.
    """

    __slots__ = ("_name", "_bulk", "_cname", "_flags", "_open_by", "_last")

    def __init__(self, name, bulk=False):
        self._cname = _encode("the scope name", name)
        self._name = name
        self._bulk = bool(bulk)
        self._flags = _CMT_BULK_FREE if bulk else 0
        self._open_by = {}      # thread ident -> instances of this object open there
        self._last = None       # the handle box of the last instance opened

    @property
    def name(self):
        return self._name

    @property
    def bulk(self):
        return self._bulk

    def __repr__(self):
        return "cymemtrack.scope(%r%s)" % (self.name, ", bulk=True" if self.bulk else "")

    def open(self):
        """Opens an instance on the current thread; ``with`` calls this. Returns self."""
        if _lib is None:
            return self
        # What this bookkeeping keeps is made before the instance opens, so that it belongs
        # to the enclosing scope: made inside, it would still be live in the instance when it
        # closes. The handle lives in a ctypes box, handed to C as it is.
        me = threading.get_ident()
        self._open_by[me] = self._open_by.get(me, 0) + 1
        entry = [self, ctypes.c_uint64(0), _CScopeStats(), me]
        _stack().append(entry)
        # A handle of 0: the library refused (it said why) or stopped tracking. The entry
        # stays, so that the matching close pairs with it and closes nothing.
        entry[1].value = _lib.cmt_scope_open(self._cname, self._flags)
        if entry[1]:
            self._last = entry[1]
        return self

    def close(self):
        """Closes the innermost instance of this scope that the current thread opened, and
        first any scope opened inside it and still open (the library says so, a line each).
        Returns the number of blocks the instance still owned when it closed, bulk-freed ones
        included. Raises Error when this thread has no instance of it open."""
        if _lib is None:
            return 0
        stack = _stack()
        top = i = len(stack) - 1
        while i >= 0 and stack[i][0] is not self:
            i -= 1
        if i < 0:
            self._refused()
        _, box, buf, me = stack[i]
        for entry in stack[i:]:
            count = entry[0]._open_by
            count[me] -= 1
            if not count[me]:
                del count[me]
        if not box:
            del stack[i:]
            return 0
        # Asked before closing, since an instance that owns nothing once closed is gone at
        # once; read after, since the answer's Python objects would be live in it.
        have = _ask(box, buf)
        left = _lib.cmt_scope_close(box)
        del stack[i:]
        if left < 0:
            # Only a close behind this module's back (the C API on its handle) gets here.
            raise Error('cymemtrack: scope "%s" was closed already' % self.name)
        if i == top:
            left = max(left - _ARG_BLOCKS, 0)   # the argument of the close call itself
        if have:
            final = _read(buf, i == top)
            if self.bulk:
                final = final._replace(
                    live_blocks=0, live_bytes=0,
                    bulk_freed_blocks=final.bulk_freed_blocks + left,
                    bulk_freed_bytes=final.bulk_freed_bytes + final.live_bytes)
            _closed[self.name] = final
        return left

    def _refused(self):
        """Raises the Error for a close with no instance open on this thread, after letting
        the library say it, in its own words, about the last instance this object opened."""
        if self._last is not None:
            _lib.cmt_scope_close(self._last)
        me = threading.get_ident()
        if any(n for t, n in list(self._open_by.items()) if t != me):
            raise Error('cymemtrack: scope "%s" was opened by another thread; only that '
                        'thread can close it' % self.name)
        raise Error('cymemtrack: scope "%s" is not open on this thread: closed already, or '
                    'never opened' % self.name)

    def __enter__(self):
        return self.open()

    def __exit__(self, exc_type, exc, tb):
        if _lib is None:
            return False
        try:
            self.close()
        except Error:
            # The block closed its own scope: misuse, unless an exception is already on its
            # way out, which must not be replaced (the library's line is on stderr anyway).
            if exc_type is None:
                raise
        return False

    def __call__(self, func):
        """As a decorator: each call of func runs inside an instance of this scope."""
        if _lib is None:
            return func

        @functools.wraps(func)
        def scoped(*args, **kwargs):
            with self:
                return func(*args, **kwargs)
        return scoped

    def stats(self):
        """The counters of this scope's innermost instance open on the current thread, else
        of the last instance of its name that closed, as they were then; None when there is
        neither, or nothing is tracked."""
        return _stats_of(self.name, self)


def _stats_of(name, obj):
    if _lib is None:
        return None
    stack = _stack()
    for i in range(len(stack) - 1, -1, -1):
        entry = stack[i]
        if entry[1] and (entry[0] is obj if obj is not None else entry[0].name == name):
            if _ask(entry[1], entry[2]):
                return _read(entry[2], i == len(stack) - 1)
    return _closed.get(name)


def stats(name):
    """The counters (a ScopeStats) of the innermost open instance of the scope called name on
    the current thread, else of the most recently closed instance of that name on any thread,
    as they were when it closed; None when there is neither, or nothing is tracked.

    Only instances opened through this module are known here; cymem-report(1) shows the sum
    over every instance of a name."""
    if not isinstance(name, str):
        raise TypeError("cymemtrack: the scope name must be a str, not %s"
                        % type(name).__name__)
    return _stats_of(name, None)


def snapshot(label=None):
    """Writes a report of the process as it is now, beside the final one (cmt_snapshot()).
    Returns True when written, False when nothing is tracked. Raises Error for a label the
    library refuses: one longer than SCOPE_NAME_MAX bytes."""
    raw = None if label is None else _encode("the snapshot label", label)
    if _lib is None:
        return False
    if _lib.cmt_snapshot(raw) == 0:
        return True
    if raw is not None and len(raw) > SCOPE_NAME_MAX:
        raise Error("cymemtrack: snapshot label longer than %d bytes; not written"
                    % SCOPE_NAME_MAX)
    return False


def active():
    """True when libcymemtrack.so is preloaded and recording this process."""
    return _lib is not None and _lib.cmt_active() == 1


def process_stats():
    """The process-wide totals (a ProcessStats), or None when nothing is tracked."""
    if _lib is None:
        return None
    st = _CProcessStats()
    if _lib.cmt_process_stats(ctypes.byref(st)) != 0:
        return None
    return ProcessStats(*(getattr(st, f) for f in ProcessStats._fields))
