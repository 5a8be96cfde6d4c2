"""Leaks one psycopg2 connection in a module global; closes another properly.
At interpreter exit CPython tears the global down and psycopg2's dealloc calls
PQfinish: connleak must still call it a leak (the program never closed it)."""
import os

import psycopg2

CONN = None


def get_conn():
    return psycopg2.connect(os.environ["CONNLEAK_TEST_PG_CONNINFO"])  # LEAK-LINE


def use_and_close():
    conn = psycopg2.connect(os.environ["CONNLEAK_TEST_PG_CONNINFO"])
    with conn.cursor() as cur:
        cur.execute("select 1")
    conn.close()


CONN = get_conn()
use_and_close()
print("done")
