"""MySQLdb (autocommit off, the DB-API default): a query opens a transaction
that stays open until commit. One connection holds it across "slow work" (it
waits for a line on stdin, sent once connleak has flagged it); another runs in
autocommit mode and sits idle: never flagged."""
import os
import sys

import MySQLdb


def connect():
    return MySQLdb.connect(host=os.environ["CONNLEAK_TEST_MYSQL_HOST"],
                           port=int(os.environ["CONNLEAK_TEST_MYSQL_PORT"]),
                           user=os.environ["CONNLEAK_TEST_MYSQL_USER"],
                           passwd=os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"],
                           db=os.environ["CONNLEAK_TEST_MYSQL_DB"])


def update_orders(conn):
    # The server reports "in transaction" once a transactional (InnoDB) table
    # is touched: a bare "select 1" with autocommit off opens nothing.
    conn.cursor().execute("update orders set n = n + 1")  # TXN-LINE
    print("holding", flush=True)
    sys.stdin.readline()  # slow work inside the transaction
    conn.commit()


idle = connect()
idle.autocommit(True)
idle.cursor().execute("create table if not exists orders (n int) engine=InnoDB")
idle.cursor().execute("insert into orders values (0)")
busy = connect()
update_orders(busy)
busy.close()
idle.close()
print("done", flush=True)
