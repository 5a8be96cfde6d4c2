"""Checkout + return from a SQLAlchemy QueuePool, 20 Python frames deep,
timed from Python in CPU time of the calling thread (time.thread_time: a loaded machine does not inflate it). Run three ways to split the cost:
  python3 py_pool_checkout.py N                       no connleak
  LD_PRELOAD=libconnleak.so python3 ...               shim, no pool hooks
  LD_PRELOAD=... PYTHONPATH=<share/connleak/python>   shim + pool hooks
The pooled connection is a stand-in object (no I/O: reset_on_return=None),
so what is timed is the pool, the hooks and the shim, not a server. With the
hooks, the bare API pair (connleak_checkout + connleak_checkin as the adapters
call them, then through ctypes) is timed too. Prints nanoseconds per checkout + return (best of 5 rounds)."""
import sys
import time

from sqlalchemy.pool import QueuePool


class StandIn:
    def close(self):
        pass

    def rollback(self):
        pass


pool = QueuePool(StandIn, pool_size=1, max_overflow=0, reset_on_return=None)


def deep(frames, fn, n):
    if frames > 1:
        return deep(frames - 1, fn, n)
    return fn(n)


def pool_pairs(n):
    start = time.thread_time()
    for _ in range(n):
        pool.connect().close()
    return time.thread_time() - start


def api_pairs(n):
    """The adapters' calls: the shim's builtins (ctypes where they are missing)."""
    from connleak import _native

    pid = pool._connleak_pool
    checkout, checkin = _native.checkout, _native.checkin
    start = time.thread_time()
    for _ in range(n):
        checkin(checkout(pid, 0, 0), 0)
    return time.thread_time() - start


def ctypes_pairs(n):
    """The same two calls through ctypes (the fallback)."""
    from connleak import _native

    api = _native.api()
    pid = pool._connleak_pool
    start = time.thread_time()
    for _ in range(n):
        api.checkin(api.checkout(pid, 0, 0, None), 0)
    return time.thread_time() - start


def best(fn, n):
    deep(20, fn, n // 10)  # warm-up: interned frames, symbol lookups
    return min(deep(20, fn, n) for _ in range(5)) / n * 1e9


n = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
hooked = "connleak.adapters.sqlalchemy" in sys.modules
print("pool checkout+return: %.0f ns%s" % (best(pool_pairs, n), " (hooks on)" if hooked else ""))
if hooked and getattr(pool, "_connleak_pool", 0):
    from connleak import _native

    fast = _native.api().checkin_fn is not _native.api().checkin
    print("api checkout+checkin: %.0f ns (%s)" % (best(api_pairs, n), "builtins" if fast else "ctypes"))
    print("ctypes checkout+checkin: %.0f ns" % best(ctypes_pairs, n))
