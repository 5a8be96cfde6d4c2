"""asyncpg: one connection holds a transaction across slow work (flagged by
txn_threshold), another sits idle outside any transaction the whole time
(never flagged). Both are closed: nothing leaks."""
import asyncio
import os
import sys

import asyncpg

PARAMS = dict(host=os.environ["CONNLEAK_TEST_PG_HOST"], port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
              user="postgres", database="postgres")


async def hold_transaction(conn):
    await conn.execute("BEGIN")  # TXN-LINE
    await conn.fetchval("select 1")
    # slow work while the transaction stays open: until the test has seen the
    # alert and closes our stdin (no sleep decides the timing)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await conn.execute("COMMIT")


async def main():
    idle = await asyncpg.connect(**PARAMS)
    await idle.fetchval("select 1")
    busy = await asyncpg.connect(**PARAMS)
    print("server_id", busy.get_server_pid(), flush=True)
    await hold_transaction(busy)
    await busy.close()
    await idle.close()


asyncio.run(main())
print("done")
