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

The two hot calls, checkout() and checkin() below, are not ctypes calls when
the shim can avoid it: connleak_python_functions hands out the same two
calls as Python builtin functions made by the shim from the interpreter's C
API (no ctypes argument conversion, no libffi), a third of a checkout's cost
(BENCHMARKS.md). ctypes is the fallback (Python 3.7, a shim without them).
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
        self.checkout_task = getattr(py, "connleak_checkout_task", None)
        if self.checkout_task is not None:
            self.checkout_task.argtypes = (u64, ctypes.py_object)
            self.checkout_task.restype = cint
        self.raw_checkout, self.checkin_fn = self._fast(py) or (self._ctypes_checkout, self.checkin)

    @staticmethod
    def _fast(py):
        """The shim's builtin (checkout, checkin), or None."""
        if sys.version_info < (3, 8):
            return None
        try:
            get = py.connleak_python_functions
            get.argtypes = ()
            get.restype = ctypes.py_object
            return get()
        except Exception:  # an older shim, or the C API was not found (ValueError: NULL)
            return None

    def _ctypes_checkout(self, pool_id, key_kind, key, task_name, task):
        name = task_name.encode("utf-8", "replace") if task_name is not None else None
        co = self.checkout(pool_id, key_kind, key, name)
        if co and task is not None and self.checkout_task is not None:
            self.checkout_task(co, task)
        return co


def available():
    """True when libconnleak.so (with the pool API) is loaded in this process."""
    global _state, checkin
    if _state is None:
        try:
            # dlopen(NULL): the program and everything in its global scope,
            # LD_PRELOADed libraries included. Never loads anything.
            _state = _Api(ctypes.PyDLL(None), ctypes.CDLL(None))
            checkin = _state.checkin_fn
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


def checkout(pool_id, key_kind, key):
    """connleak_checkout for the calling thread (and asyncio task, if one is
    running): the checkout id, 0 when not recorded. Only after available()."""
    # asyncio is never imported for this: a program that has not imported it
    # has no task. Not current_task() alone: outside a loop it raises, and an
    # exception per checkout was a measurable part of a checkout's cost.
    aio = _modules.get("asyncio")
    if aio is not None:
        loop = aio._get_running_loop()
        if loop is not None:
            task = aio.current_task(loop)
            if task is not None:
                return _state.raw_checkout(pool_id, key_kind, key, task.get_name(), task)
    return _state.raw_checkout(pool_id, key_kind, key, None, None)


def checkin(checkout_id, how):
    """connleak_checkin (`how`: RETURNED, RECLAIMED, INVALIDATED); replaced by
    the bound call itself once available() has found the shim."""
    return _state.checkin_fn(checkout_id, how)


_modules = sys.modules


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
