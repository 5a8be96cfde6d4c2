"""aiomysql: one connection holds an explicit transaction across slow work
(flagged by txn_threshold), another in autocommit mode sits idle the whole
time (never flagged). Both are closed: nothing leaks."""
import asyncio
import os
import sys

import aiomysql

PARAMS = dict(host=os.environ["CONNLEAK_TEST_MYSQL_HOST"], port=int(os.environ["CONNLEAK_TEST_MYSQL_PORT"]),
              user=os.environ["CONNLEAK_TEST_MYSQL_USER"], password=os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"],
              db=os.environ["CONNLEAK_TEST_MYSQL_DB"])


async def hold_transaction(conn):
    await conn.begin()  # TXN-LINE
    async with conn.cursor() as cur:
        await cur.execute("select 1")
    assert conn.get_transaction_status()  # the server's SERVER_STATUS_IN_TRANS flag
    # slow work while the transaction stays open: until the test has seen the
    # alert and closes our stdin (no sleep decides the timing)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await conn.commit()


async def main():
    idle = await aiomysql.connect(autocommit=True, **PARAMS)
    async with idle.cursor() as cur:
        await cur.execute("select 1")
    busy = await aiomysql.connect(**PARAMS)
    print("server_id", busy.server_thread_id[0], flush=True)
    await hold_transaction(busy)
    await busy.ensure_closed()  # sends COM_QUIT, then closes
    idle.close()  # closes the socket without COM_QUIT


asyncio.run(main())
print("done")
