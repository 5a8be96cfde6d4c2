"""asyncpg.Pool: _get_new_connection -> adopt; _acquire -> checkout (both
`await pool.acquire()` and `async with pool.acquire()` go through it, in the
caller's task); release -> returned; an acquire timeout -> exhausted.

Pool, its proxies and holders have __slots__: state is kept here, by id(),
for objects the pool keeps alive (a pool while it is used, a proxy while it
is checked out).
"""
import functools
import itertools
import threading
import time

from connleak import _keys, _native

A = _native.Adapter("asyncpg")
_lock = threading.Lock()
_numbers = itertools.count(1)
_pools = {}  # id(pool) -> pool id
_keys_of = {}  # id(connection) -> key
_checkouts = {}  # id(proxy) -> checkout id


def _target(pool):
    kwargs = getattr(pool, "_connect_kwargs", None) or {}
    args = getattr(pool, "_connect_args", None) or ()
    if args and isinstance(args[0], str):  # a DSN: the shim redacts it
        return args[0]
    parts = ["%s=%s" % (k, kwargs[k]) for k in ("host", "port", "database", "user") if kwargs.get(k) is not None]
    return " ".join(parts)


def _pool_id(pool):
    pid = _pools.get(id(pool))
    if pid is None:
        with _lock:
            pid = _pools.get(id(pool))
            if pid is None:
                target = _target(pool)
                max_size = getattr(pool, "_maxsize", -1)
                pid = _native.api().pool_register(b"asyncpg.Pool",
                                                  _native.text("asyncpg#%d" % next(_numbers)),
                                                  _native.text(target), max_size)
                _pools[id(pool)] = pid
    return pid


def hook(module):
    Pool = module.Pool
    new_connection = Pool._get_new_connection
    acquire = Pool._acquire
    release = Pool.release
    close = Pool.close

    @functools.wraps(new_connection)
    async def _get_new_connection(self):
        con = await new_connection(self)
        if A.on:
            try:
                pid = _pool_id(self)
                if pid:
                    _keys_of[id(con)] = _keys.adopt(_native.api(), pid, con)
            except Exception as exc:
                A.fail(exc)
        return con

    @functools.wraps(acquire)
    async def _acquire(self, timeout):
        started = time.monotonic()
        try:
            proxy = await acquire(self, timeout)
        except _timeout_errors:
            if A.on:
                try:
                    pid = _pool_id(self)
                    if pid:
                        _native.api().pool_exhausted(pid, time.monotonic() - started)
                except Exception as exc:
                    A.fail(exc)
            raise
        if A.on:
            try:
                pid = _pool_id(self)
                if pid:
                    con = proxy._con
                    key = _keys_of.get(id(con))
                    if key is None:
                        key = _keys_of[id(con)] = _keys.adopt(_native.api(), pid, con)
                    _checkouts[id(proxy)] = _native.checkout(pid, key[0], key[1])
            except Exception as exc:
                A.fail(exc)
        return proxy

    @functools.wraps(release)
    async def release_(self, connection, *args, **kwargs):
        if A.on:
            try:
                co = _checkouts.pop(id(connection), 0)
                if co:
                    _native.checkin(co, _native.RETURNED)
            except Exception as exc:
                A.fail(exc)
        return await release(self, connection, *args, **kwargs)

    @functools.wraps(close)
    async def close_(self):
        # Forget this pool's connections (their ids may be reused later).
        try:
            for holder in getattr(self, "_holders", ()):
                _keys_of.pop(id(getattr(holder, "_con", None)), None)
        except Exception as exc:
            A.fail(exc)
        return await close(self)

    Pool._get_new_connection = _get_new_connection
    Pool._acquire = _acquire
    Pool.release = release_
    Pool.close = close_


import asyncio  # noqa: E402  (asyncpg has imported it already)

_timeout_errors = (asyncio.TimeoutError,)
