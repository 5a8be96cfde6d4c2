"""psycopg 3, pure-Python build: libpq is reached through ctypes (dlsym on
libpq's handle), which no PLT hook sees; connleak's dlsym interposition does."""
import os

import psycopg

CONN = None


def get_conn():
    return psycopg.connect(os.environ["CONNLEAK_TEST_PG_CONNINFO"])  # LEAK-LINE


def use_and_close():
    with psycopg.connect(os.environ["CONNLEAK_TEST_PG_CONNINFO"]) as conn:
        conn.execute("select 1")


print("impl", psycopg.pq.__impl__)
CONN = get_conn()
use_and_close()
print("done")
