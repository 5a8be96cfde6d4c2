"""aiomysql's activity (issue 15), from the COM_QUERY bytes it sends
(aiomysql interpolates parameters on the client: the literal is in the
statement text). Literals carry "hunter2", which must appear in no output. The
connection is kept in a global until exit. Prints "ready" and waits for a line
on stdin (the test takes a dump meanwhile)."""
import asyncio
import os
import sys

import aiomysql

PARAMS = dict(host=os.environ["CONNLEAK_TEST_MYSQL_HOST"], port=int(os.environ["CONNLEAK_TEST_MYSQL_PORT"]),
              user=os.environ["CONNLEAK_TEST_MYSQL_USER"], password=os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"],
              db=os.environ["CONNLEAK_TEST_MYSQL_DB"], autocommit=True)

CONN = None


async def queries():
    conn = await aiomysql.connect(**PARAMS)
    async with conn.cursor() as cur:
        await cur.execute("SET @k = 'hunter2-set'")
        await cur.execute("SELECT %s = @k, 42 AS n", ("hunter2-param",))
        assert (await cur.fetchone())[1] == 42
    return conn


async def main():
    global CONN
    CONN = await queries()
    print("server_id", CONN.server_thread_id[0], flush=True)


loop = asyncio.new_event_loop()
loop.run_until_complete(main())
print("ready", flush=True)
sys.stdin.readline()
print("done", flush=True)
