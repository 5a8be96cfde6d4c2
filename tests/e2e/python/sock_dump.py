"""A dump (SIGUSR2) while socket-level connections are open: an asyncpg
connection idle, one inside a transaction begun in begin_here, and a PyMySQL
connection idle. Prints "ready", waits for a line on stdin (the test sends it
after reading the dump), then commits and closes everything."""
import asyncio
import os
import sys

import asyncpg
import pymysql

PG = dict(host=os.environ["CONNLEAK_TEST_PG_HOST"], port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
          user="postgres", database="postgres")
MY = dict(host=os.environ["CONNLEAK_TEST_MYSQL_HOST"], port=int(os.environ["CONNLEAK_TEST_MYSQL_PORT"]),
          user=os.environ["CONNLEAK_TEST_MYSQL_USER"], password=os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"],
          database=os.environ["CONNLEAK_TEST_MYSQL_DB"], autocommit=True)


async def begin_here(conn):
    await conn.execute("BEGIN")  # TXN-LINE


loop = asyncio.new_event_loop()
idle = loop.run_until_complete(asyncpg.connect(**PG))
busy = loop.run_until_complete(asyncpg.connect(**PG))
loop.run_until_complete(begin_here(busy))
my = pymysql.connect(**MY)
print("idle", idle.get_server_pid(), flush=True)
print("busy", busy.get_server_pid(), flush=True)
print("mysql", my.thread_id(), flush=True)
print("ready", flush=True)
sys.stdin.readline()
loop.run_until_complete(busy.execute("COMMIT"))
loop.run_until_complete(busy.close())
loop.run_until_complete(idle.close())
my.close()
loop.close()
print("done", flush=True)
