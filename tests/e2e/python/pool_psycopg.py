"""psycopg_pool.ConnectionPool (psycopg 3; Debian's is the pure-Python build,
libpq through ctypes): min_size=2, max_size=2, five clean requests, one leaky
export_report() that takes a connection with getconn() and never puts it
back, then a request that times out (the pool is dry). Never closed."""
import os

import psycopg_pool

POOL = psycopg_pool.ConnectionPool(os.environ["CONNLEAK_TEST_PG_CONNINFO"], min_size=2, max_size=2, timeout=0.5)
FORGOTTEN = []


def handle_request(i):
    with POOL.connection() as conn:
        assert conn.execute("select %s::int", (i,)).fetchone()[0] == i


def export_report():
    conn = POOL.getconn()  # LEAK-LINE
    conn.execute("select 1")
    conn.commit()
    FORGOTTEN.append(conn)  # never put back


def hold_device_b():
    return POOL.getconn()  # HOLD-B-LINE


POOL.wait()
for i in range(5):
    handle_request(i)
export_report()
held = hold_device_b()
try:
    handle_request(8)
except psycopg_pool.PoolTimeout:
    print("timeout", flush=True)
POOL.putconn(held)
handle_request(9)
print("done", flush=True)
