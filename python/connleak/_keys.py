"""Which tracked connection record a driver's connection object is.

The shim keys libpq and MySQL client connections by handle (PGconn*, MYSQL*)
and the drivers that speak the protocol themselves by socket descriptor. One
extractor per driver type, chosen once per type and cached.
"""
from connleak._native import KEY_FD, KEY_HANDLE, KEY_NONE

_by_type = {}


def _none(conn):
    return KEY_NONE, 0


def _psycopg2(conn):  # psycopg2 >= 2.8
    return KEY_HANDLE, conn.pgconn_ptr


def _psycopg3(conn):
    return KEY_HANDLE, conn.pgconn.pgconn_ptr


def _transport_fd(transport):
    sock = transport.get_extra_info("socket") if transport is not None else None
    return (KEY_FD, sock.fileno()) if sock is not None else (KEY_NONE, 0)


def _asyncpg(conn):
    con = getattr(conn, "_con", None) or conn  # a pool's PoolConnectionProxy
    return _transport_fd(con._transport)


def _aiomysql(conn):
    writer = conn._writer
    return _transport_fd(writer.transport if writer is not None else None)


def _pymysql(conn):
    sock = conn._sock
    return (KEY_FD, sock.fileno()) if sock is not None else (KEY_NONE, 0)


def _mysqldb(conn):
    # mysqlclient's connection object embeds its MYSQL struct right after the
    # object header: that address is the handle mysql_init was given. Callers
    # confirm it with connleak_pool_adopt (-1 for a handle the shim does not
    # know) and fall back to KEY_NONE.
    return KEY_HANDLE, id(conn) + object.__basicsize__


def _sqlalchemy_adapted(conn):
    # SQLAlchemy's asyncio dialects wrap the driver's connection.
    return key_of(conn.driver_connection)


def _pick(cls):
    module = cls.__module__ or ""
    root = module.split(".", 1)[0]
    if root == "psycopg2":
        return _psycopg2
    if root == "psycopg":
        return _psycopg3
    if root == "asyncpg":
        return _asyncpg
    if root == "aiomysql":
        return _aiomysql
    if root == "pymysql":
        return _pymysql
    if root == "MySQLdb":
        return _mysqldb
    if root == "sqlalchemy" and hasattr(cls, "driver_connection"):
        return _sqlalchemy_adapted
    return _none


def key_of(conn):
    """(key kind, key) for a driver connection; (KEY_NONE, 0) when unknown or closed."""
    if conn is None:
        return KEY_NONE, 0
    cls = type(conn)
    extract = _by_type.get(cls)
    if extract is None:
        extract = _by_type[cls] = _pick(cls)
    return extract(conn)


def adopt(api, pool_id, conn):
    """Tells the shim `conn` belongs to the pool; returns the key to lend it
    under: the driver's key when the shim knows it, else (KEY_NONE, 0)."""
    kind, key = key_of(conn)
    if kind != KEY_NONE and api.pool_adopt(pool_id, kind, key) != 0:
        return KEY_NONE, 0
    return kind, key
