"""PyMySQL (blocking, pure Python, speaks the MySQL protocol itself).
  leak:  one connection leaked in a module global, another used and closed.
  clean: open, query, close.
Prints the leaked connection's server thread id (SHOW PROCESSLIST Id)."""
import os
import sys

import pymysql

PARAMS = dict(host=os.environ["CONNLEAK_TEST_MYSQL_HOST"], port=int(os.environ["CONNLEAK_TEST_MYSQL_PORT"]),
              user=os.environ["CONNLEAK_TEST_MYSQL_USER"], password=os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"],
              database=os.environ["CONNLEAK_TEST_MYSQL_DB"])

CONN = None


def get_conn():
    return pymysql.connect(**PARAMS)  # LEAK-LINE


def use_and_close():
    conn = pymysql.connect(**PARAMS)
    with conn.cursor() as cur:
        cur.execute("select 41 + 1")
        assert cur.fetchone()[0] == 42
    conn.close()


if sys.argv[1] == "leak":
    CONN = get_conn()
use_and_close()
if CONN is not None:
    print("server_id", CONN.thread_id(), flush=True)
print("done")
