"""SQLAlchemy (1.4, 2.0): every Pool class through the pool events.

connect -> adopt; checkout -> checkout; checkin -> returned (invalidated when
the DBAPI connection was discarded meanwhile); detach -> invalidated (the
connection leaves the pool); a checked-out connection the garbage collector
reclaims (_finalize_fairy called with the fairy's weakref: "non-checked-in
connection") -> reclaimed, a leak; QueuePool's TimeoutError -> exhausted.
State lives on the pool (_connleak_pool) and on the _ConnectionRecord
(_connleak_lend: the checkout call's arguments, pool id and connection key;
_connleak_co), which SQLAlchemy keeps for the life of the pooled connection.
The checkout and checkin listeners run at every loan: one attribute read
each before the shim's call.
"""
import functools
import itertools
import threading
import time

from connleak import _keys, _native

A = _native.Adapter("sqlalchemy")
_lock = threading.Lock()
_engines = itertools.count(1)
_pools = itertools.count(1)


def _pool_id(pool):
    pid = getattr(pool, "_connleak_pool", None)
    if pid is not None:
        return pid
    with _lock:
        pid = getattr(pool, "_connleak_pool", None)
        if pid is None:
            dialect = getattr(pool, "_dialect", None)
            label = getattr(dialect, "_connleak_label", None)
            if label is None:  # a Pool built by hand, not by create_engine
                label = ("sqlalchemy#p%d" % next(_pools), "")
            overflow = getattr(pool, "_max_overflow", None)
            size = getattr(pool, "size", None)
            max_size = -1
            if overflow is not None and overflow > -1 and callable(size):
                max_size = size() + overflow
            kind = "sqlalchemy." + type(pool).__name__
            pid = _native.api().pool_register(_native.text(kind), _native.text(label[0]),
                                              _native.text(label[1]), max_size)
            pool._connleak_pool = pid
    return pid


def _pool_of(record):
    return getattr(record, "_ConnectionRecord__pool", None)


def on_connect(dbapi_connection, record):
    if not A.on:
        return
    try:
        pid = _pool_id(_pool_of(record))
        record._connleak_lend = _lend(pid, dbapi_connection)
    except Exception as exc:
        A.fail(exc)


def _lend(pid, dbapi_connection):
    """(pool id, key kind, key): what connleak_checkout is given for this
    connection; pool id 0 when the shim does not track the pool."""
    if not pid:
        return (0, 0, 0)
    kind, key = _keys.adopt(_native.api(), pid, dbapi_connection)
    return (pid, kind, key)


def on_checkout(dbapi_connection, record, fairy):
    if not A.on:
        return
    try:
        lend = getattr(record, "_connleak_lend", None)
        if lend is None:  # connected before the hooks were in place
            lend = record._connleak_lend = _lend(_pool_id(fairy._pool), dbapi_connection)
        if lend[0]:
            record._connleak_co = _native.checkout(*lend)
    except Exception as exc:
        A.fail(exc)


def _end(record, how):
    co = getattr(record, "_connleak_co", 0)
    if co:
        record._connleak_co = 0
        _native.checkin(co, how)


def on_checkin(dbapi_connection, record):
    if not A.on:
        return
    try:
        co = getattr(record, "_connleak_co", 0)
        if co:
            record._connleak_co = 0
            _native.checkin(co, _native.RETURNED if dbapi_connection is not None else _native.INVALIDATED)
    except Exception as exc:
        A.fail(exc)


def on_detach(dbapi_connection, record):
    if not A.on:
        return
    try:
        _end(record, _native.INVALIDATED)
    except Exception as exc:
        A.fail(exc)


def on_close(dbapi_connection, record):
    # The record will reconnect later: the next connect event adopts the new one.
    if not A.on:
        return
    try:
        record._connleak_lend = None
    except Exception as exc:
        A.fail(exc)


def _wrap_finalize_fairy(base):
    original = base._finalize_fairy

    @functools.wraps(original)
    def _finalize_fairy(dbapi_connection, connection_record, pool, ref, *args, **kwargs):
        # ref is the fairy's weakref only when the garbage collector reclaims
        # a connection the program never checked in.
        if A.on and ref is not None and connection_record is not None:
            try:
                if connection_record.fairy_ref is ref:
                    _end(connection_record, _native.RECLAIMED)
            except Exception as exc:
                A.fail(exc)
        return original(dbapi_connection, connection_record, pool, ref, *args, **kwargs)

    base._finalize_fairy = _finalize_fairy


def _wrap_do_get(cls, timeout_error):
    original = cls._do_get

    @functools.wraps(original)
    def _do_get(self):
        started = time.monotonic()
        try:
            return original(self)
        except timeout_error:
            if A.on:
                try:
                    pid = _pool_id(self)
                    if pid:
                        _native.api().pool_exhausted(pid, time.monotonic() - started)
                except Exception as exc:
                    A.fail(exc)
            raise

    cls._do_get = _do_get


def hook_pool(module):
    """sqlalchemy.pool has just been executed."""
    from sqlalchemy import event, exc
    from sqlalchemy.pool import base

    pool_cls = module.Pool
    for name, fn in (("connect", on_connect), ("checkout", on_checkout), ("checkin", on_checkin),
                     ("detach", on_detach), ("close", on_close)):
        event.listen(pool_cls, name, fn)
    _wrap_finalize_fairy(base)
    _wrap_do_get(module.QueuePool, exc.TimeoutError)


def hook_create_engine(module):
    """sqlalchemy.engine.create: pools get the engine's URL (password hidden)
    as their name; engine.dispose() recreates the pool with the same dialect,
    so the name carries over."""
    original = module.create_engine

    @functools.wraps(original)
    def create_engine(*args, **kwargs):
        engine = original(*args, **kwargs)
        if A.on:
            try:
                url = engine.url.render_as_string(hide_password=True)
                engine.dialect._connleak_label = ("sqlalchemy#%d" % next(_engines), url)
            except Exception as exc:
                A.fail(exc)
        return engine

    module.create_engine = create_engine
