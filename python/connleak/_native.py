"""The pool calls of include/connleak/connleak.h, through ctypes.

Why PyDLL for the hot calls: the shim takes the Python stack inside
connleak_checkout, in the calling thread. PyDLL keeps the GIL across the
call, so that stack is the caller's frame chain exactly as it stands, and the
shim's PyGILState_Ensure is a counter increment instead of a GIL hand-off
(CDLL would release the GIL and take it back twice per call: slower, and
under contention other threads would run in between).
connleak_pool_exhausted goes through CDLL: it writes a snapshot (stderr, a
dump file) and looks at other threads' stacks, so it must not hold the GIL
the shim may need to take from another thread.
"""
import ctypes
import sys

KEY_NONE = 0
KEY_HANDLE = 1
KEY_FD = 2
RETURNED = 0
RECLAIMED = 1
INVALIDATED = 2

_state = None  # None: not looked for yet; False: no shim; else the bound functions


class _Api(object):
    def __init__(self, py, c):
        u64, cint, cstr = ctypes.c_ulonglong, ctypes.c_int, ctypes.c_char_p
        self.pool_register = py.connleak_pool_register
        self.pool_register.argtypes = (cstr, cstr, cstr, cint)
        self.pool_register.restype = u64
        self.pool_adopt = py.connleak_pool_adopt
        self.pool_adopt.argtypes = (u64, cint, u64)
        self.pool_adopt.restype = cint
        self.checkout = py.connleak_checkout
        self.checkout.argtypes = (u64, cint, u64, cstr)
        self.checkout.restype = u64
        self.checkin = py.connleak_checkin
        self.checkin.argtypes = (u64, cint)
        self.checkin.restype = cint
        self.pool_exhausted = c.connleak_pool_exhausted
        self.pool_exhausted.argtypes = (u64, ctypes.c_double)
        self.pool_exhausted.restype = cint


def available():
    """True when libconnleak.so (with the pool API) is loaded in this process."""
    global _state
    if _state is None:
        try:
            # dlopen(NULL): the program and everything in its global scope,
            # LD_PRELOADed libraries included. Never loads anything.
            _state = _Api(ctypes.PyDLL(None), ctypes.CDLL(None))
        except (OSError, AttributeError):
            _state = False
    return bool(_state)


def api():
    return _state


def text(value):
    """A C string for the API (None stays NULL); the shim copies and redacts it."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "replace")


def task_name():
    """The running asyncio task's name, or None outside a task. asyncio is
    never imported for this: a program that has not imported it has no task."""
    aio = sys.modules.get("asyncio")
    if aio is None:
        return None
    # Not current_task() alone: outside a loop it raises, and an exception per
    # checkout was a measurable part of a checkout's cost (BENCHMARKS.md).
    loop = aio._get_running_loop()
    if loop is None:
        return None
    task = aio.current_task(loop)
    if task is None:
        return None
    return task.get_name().encode("utf-8", "replace")


class Adapter(object):
    """One pool's switch: the first failure of any hook turns that pool's
    tracking off with one line on stderr; the program itself never sees it."""

    def __init__(self, name):
        self.name = name
        self.on = True

    def fail(self, exc):
        if self.on:
            self.on = False
            try:
                sys.stderr.write("connleak: %s checkout tracking disabled: %s: %s\n"
                                 % (self.name, type(exc).__name__, exc))
            except Exception:
                pass
