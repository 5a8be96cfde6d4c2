"""asyncpg (speaks the PostgreSQL protocol itself, no libpq): one connection
leaked in a module global, another opened, used and closed properly. The leak
is opened as the password user (SCRAM): the password must appear nowhere in
connleak's output. Prints the leaked connection's backend pid for the test."""
import asyncio
import os

import asyncpg

PARAMS = dict(host=os.environ["CONNLEAK_TEST_PG_HOST"], port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
              user=os.environ["CONNLEAK_TEST_PG_APP_USER"], password=os.environ["CONNLEAK_TEST_PG_APP_PASSWORD"],
              database=os.environ["CONNLEAK_TEST_PG_APP_DB"])

CONN = None


async def get_conn():
    return await asyncpg.connect(**PARAMS)  # LEAK-LINE


async def use_and_close():
    conn = await asyncpg.connect(**PARAMS)
    await conn.fetchval("select 1")
    await conn.close()


async def main():
    global CONN
    CONN = await get_conn()
    await use_and_close()
    print("server_id", CONN.get_server_pid(), flush=True)


asyncio.run(main())
print("done")
