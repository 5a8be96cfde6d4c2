"""asyncpg pool (min_size 3): connections acquired concurrently, used and
released, then the program idles for over 3x the txn_threshold the test sets.
A pooled connection between checkouts holds no transaction: never flagged.
pool.close() closes all three: nothing leaks."""
import asyncio
import os

import asyncpg


async def work(pool, i):
    async with pool.acquire() as conn:
        assert await conn.fetchval("select $1::int", i) == i
        await asyncio.sleep(0.05)  # all three are checked out at once


async def main():
    pool = await asyncpg.create_pool(host=os.environ["CONNLEAK_TEST_PG_HOST"],
                                     port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
                                     user="postgres", database="postgres", min_size=3, max_size=3)
    for _ in range(3):
        await asyncio.gather(*(work(pool, i) for i in range(3)))
    await asyncio.sleep(3.5)  # the pool sits idle
    await pool.close()


asyncio.run(main())
print("done")
