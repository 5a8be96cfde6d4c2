"""mysqlclient (MySQLdb): one connection leaked in a module global."""
import os

import MySQLdb

CONN = None


def get_conn():
    return MySQLdb.connect(host=os.environ["CONNLEAK_TEST_MYSQL_HOST"],  # LEAK-LINE
                           port=int(os.environ["CONNLEAK_TEST_MYSQL_PORT"]),
                           user=os.environ["CONNLEAK_TEST_MYSQL_USER"],
                           passwd=os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"],
                           db=os.environ["CONNLEAK_TEST_MYSQL_DB"])


def use_and_close():
    conn = get_conn()
    conn.cursor().execute("select 1")
    conn.close()


CONN = get_conn()
use_and_close()
print("done")
