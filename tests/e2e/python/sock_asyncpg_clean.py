"""asyncpg: open, query, close. Nothing leaks."""
import asyncio
import os

import asyncpg


async def main():
    conn = await asyncpg.connect(host=os.environ["CONNLEAK_TEST_PG_HOST"], port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
                                 user="postgres", database="postgres")
    assert await conn.fetchval("select 41 + 1") == 42
    await conn.close()


asyncio.run(main())
print("done")
