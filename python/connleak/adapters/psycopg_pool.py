"""psycopg_pool (psycopg 3): ConnectionPool and AsyncConnectionPool.

_connect -> adopt (it runs in the pool's worker threads or tasks); getconn
-> checkout (`with pool.connection()` goes through it); putconn -> returned;
PoolTimeout from getconn -> exhausted. The checkout id rides on the
connection object, which psycopg_pool already tags with `_pool` while lent.
"""
import functools
import itertools
import threading
import time
import weakref

from connleak import _keys, _native

A = _native.Adapter("psycopg_pool")
_lock = threading.Lock()
_numbers = itertools.count(1)


class _State(object):
    def __init__(self, pid):
        self.pid = pid
        self.keys = weakref.WeakKeyDictionary()  # connection -> key


def _state(pool):
    st = getattr(pool, "_connleak", None)
    if st is None:
        with _lock:
            st = getattr(pool, "_connleak", None)
            if st is None:
                kind = "psycopg_pool." + type(pool).__name__
                name = "psycopg_pool#%d %s" % (next(_numbers), getattr(pool, "name", ""))
                target = getattr(pool, "conninfo", "")  # the shim redacts it
                pid = _native.api().pool_register(_native.text(kind), _native.text(name), _native.text(target),
                                                  getattr(pool, "max_size", -1))
                st = pool._connleak = _State(pid)
    return st


def _adopted(pool, conn):
    if A.on:
        try:
            st = _state(pool)
            if st.pid:
                st.keys[conn] = _keys.adopt(_native.api(), st.pid, conn)
        except Exception as exc:
            A.fail(exc)


def _exhausted(pool, started):
    if A.on:
        try:
            st = _state(pool)
            if st.pid:
                _native.api().pool_exhausted(st.pid, time.monotonic() - started)
        except Exception as exc:
            A.fail(exc)


def _returned(conn):
    if A.on:
        try:
            co = getattr(conn, "_connleak_co", 0)
            if co:
                conn._connleak_co = 0
                _native.checkin(co, _native.RETURNED)
        except Exception as exc:
            A.fail(exc)


def _hook_sync(cls, timeout_error):
    connect, getconn, putconn = cls._connect, cls.getconn, cls.putconn

    @functools.wraps(connect)
    def _connect(self, *args, **kwargs):
        conn = connect(self, *args, **kwargs)
        _adopted(self, conn)
        return conn

    @functools.wraps(getconn)
    def getconn_(self, *args, **kwargs):
        started = time.monotonic()
        try:
            conn = getconn(self, *args, **kwargs)
        except timeout_error:
            _exhausted(self, started)
            raise
        if A.on:
            try:
                st = _state(self)
                if st.pid:
                    key = st.keys.get(conn)
                    if key is None:
                        key = st.keys[conn] = _keys.adopt(_native.api(), st.pid, conn)
                    conn._connleak_co = _native.checkout(st.pid, key[0], key[1])
            except Exception as exc:
                A.fail(exc)
        return conn

    @functools.wraps(putconn)
    def putconn_(self, conn, *args, **kwargs):
        _returned(conn)
        return putconn(self, conn, *args, **kwargs)

    cls._connect, cls.getconn, cls.putconn = _connect, getconn_, putconn_


def _hook_async(cls, timeout_error):
    connect, getconn, putconn = cls._connect, cls.getconn, cls.putconn

    @functools.wraps(connect)
    async def _connect(self, *args, **kwargs):
        conn = await connect(self, *args, **kwargs)
        _adopted(self, conn)
        return conn

    @functools.wraps(getconn)
    async def getconn_(self, *args, **kwargs):
        started = time.monotonic()
        try:
            conn = await getconn(self, *args, **kwargs)
        except timeout_error:
            _exhausted(self, started)
            raise
        if A.on:
            try:
                st = _state(self)
                if st.pid:
                    key = st.keys.get(conn)
                    if key is None:
                        key = st.keys[conn] = _keys.adopt(_native.api(), st.pid, conn)
                    conn._connleak_co = _native.checkout(st.pid, key[0], key[1])
            except Exception as exc:
                A.fail(exc)
        return conn

    @functools.wraps(putconn)
    async def putconn_(self, conn, *args, **kwargs):
        _returned(conn)
        return await putconn(self, conn, *args, **kwargs)

    cls._connect, cls.getconn, cls.putconn = _connect, getconn_, putconn_


def hook(module):
    _hook_sync(module.ConnectionPool, module.PoolTimeout)
    _hook_async(module.AsyncConnectionPool, module.PoolTimeout)
