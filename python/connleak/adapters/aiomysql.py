"""aiomysql.Pool: _fill_free_pool -> adopt what it opened; _acquire ->
checkout (in the caller's task); release -> returned (invalidated when the
pool closed it instead: a connection returned inside a transaction, or a
closing pool); terminate's connections -> invalidated.

aiomysql's acquire has no timeout of its own: it waits for a free
connection for ever. A program bounds it with asyncio.wait_for; an acquire
cancelled while the pool is at maxsize with nothing free is the pool running
dry -> exhausted.
"""
import asyncio
import functools
import itertools
import threading
import time
import weakref

from connleak import _keys, _native

A = _native.Adapter("aiomysql")
_lock = threading.Lock()
_numbers = itertools.count(1)


class _State(object):
    def __init__(self, pid):
        self.pid = pid
        self.keys = weakref.WeakKeyDictionary()  # connection -> key
        self.checkouts = {}  # id(connection) -> checkout id, while checked out


def _state(pool):
    st = getattr(pool, "_connleak", None)
    if st is None:
        with _lock:
            st = getattr(pool, "_connleak", None)
            if st is None:
                kw = getattr(pool, "_conn_kwargs", {}) or {}
                target = " ".join("%s=%s" % (k, kw[k]) for k in ("host", "port", "db", "user") if kw.get(k) is not None)
                pid = _native.api().pool_register(b"aiomysql.Pool",
                                                  _native.text("aiomysql#%d" % next(_numbers)),
                                                  _native.text(target), pool.maxsize or -1)
                st = pool._connleak = _State(pid)
    return st


def _adopt_new(st, conns):
    for conn in list(conns):
        if conn not in st.keys:
            st.keys[conn] = _keys.adopt(_native.api(), st.pid, conn)


def hook(module):
    Pool = module.Pool
    fill = Pool._fill_free_pool
    acquire = Pool._acquire
    release = Pool.release
    terminate = Pool.terminate

    @functools.wraps(fill)
    async def _fill_free_pool(self, override_min):
        try:
            return await fill(self, override_min)
        finally:
            if A.on:
                try:
                    st = _state(self)
                    if st.pid:
                        _adopt_new(st, self._free)
                except Exception as exc:
                    A.fail(exc)

    @functools.wraps(acquire)
    async def _acquire(self):
        started = time.monotonic()
        try:
            conn = await acquire(self)
        except asyncio.CancelledError:
            if A.on:
                try:
                    st = _state(self)
                    if st.pid and self.maxsize and self.freesize == 0 and self.size >= self.maxsize:
                        _native.api().pool_exhausted(st.pid, time.monotonic() - started)
                except Exception as exc:
                    A.fail(exc)
            raise
        if A.on:
            try:
                st = _state(self)
                if st.pid:
                    key = st.keys.get(conn)
                    if key is None:
                        key = st.keys[conn] = _keys.adopt(_native.api(), st.pid, conn)
                    st.checkouts[id(conn)] = _native.checkout(st.pid, key[0], key[1])
            except Exception as exc:
                A.fail(exc)
        return conn

    @functools.wraps(release)
    def release_(self, conn):
        result = release(self, conn)
        if A.on:
            try:
                st = _state(self)
                co = st.checkouts.pop(id(conn), 0)
                if co:
                    back = conn in self._free
                    _native.checkin(co, _native.RETURNED if back else _native.INVALIDATED)
            except Exception as exc:
                A.fail(exc)
        return result

    @functools.wraps(terminate)
    def terminate_(self):
        if A.on:
            try:
                st = _state(self)
                for conn in list(self._used):
                    co = st.checkouts.pop(id(conn), 0)
                    if co:
                        _native.checkin(co, _native.INVALIDATED)
            except Exception as exc:
                A.fail(exc)
        return terminate(self)

    Pool._fill_free_pool = _fill_free_pool
    Pool._acquire = _acquire
    Pool.release = release_
    Pool.terminate = terminate_
