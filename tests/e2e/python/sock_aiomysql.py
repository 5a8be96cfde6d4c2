"""aiomysql (speaks the MySQL protocol itself over asyncio).
  leak:  one connection leaked in a module global, another used and closed.
  clean: open, query, close.
Prints the leaked connection's server thread id (SHOW PROCESSLIST Id)."""
import asyncio
import os
import sys

import aiomysql

PARAMS = dict(host=os.environ["CONNLEAK_TEST_MYSQL_HOST"], port=int(os.environ["CONNLEAK_TEST_MYSQL_PORT"]),
              user=os.environ["CONNLEAK_TEST_MYSQL_USER"], password=os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"],
              db=os.environ["CONNLEAK_TEST_MYSQL_DB"])

CONN = None


async def get_conn():
    return await aiomysql.connect(**PARAMS)  # LEAK-LINE


async def use_and_close():
    conn = await aiomysql.connect(**PARAMS)
    async with conn.cursor() as cur:
        await cur.execute("select 41 + 1")
        assert (await cur.fetchone())[0] == 42
    conn.close()


async def main(mode):
    global CONN
    if mode == "leak":
        CONN = await get_conn()
    await use_and_close()
    if CONN is not None:
        print("server_id", CONN.server_thread_id[0], flush=True)


asyncio.run(main(sys.argv[1]))
print("done")
