"""asyncpg pool (min_size 3): connections acquired concurrently, used and
released. A pooled connection between checkouts holds no transaction: never
flagged. The canary, a separate connection, holds a transaction from after the
pool went idle until the test sends a line: its alert proves the watchdog ran
while the pool sat idle. Everything is closed at the end: nothing leaks."""
import asyncio
import os
import sys

import asyncpg

PARAMS = dict(host=os.environ["CONNLEAK_TEST_PG_HOST"], port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
              user="postgres", database="postgres")


async def work(pool, i, all_checked_out):
    async with pool.acquire() as conn:
        assert await conn.fetchval("select $1::int", i) == i
        await all_checked_out.wait()  # all three are checked out at once


async def canary_holds_transaction(conn):
    await conn.execute("BEGIN")  # CANARY-LINE


async def main():
    pool = await asyncpg.create_pool(**PARAMS, min_size=3, max_size=3)
    for _ in range(3):
        all_checked_out = asyncio.Barrier(3)
        await asyncio.gather(*(work(pool, i, all_checked_out) for i in range(3)))
    canary = await asyncpg.connect(**PARAMS)
    await canary_holds_transaction(canary)
    print("idle", flush=True)
    # The pool sits idle until the test has seen the canary flagged.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    await canary.execute("COMMIT")
    await canary.close()
    await pool.close()


asyncio.run(main())
print("done")
