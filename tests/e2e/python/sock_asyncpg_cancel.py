"""asyncpg cancels a query that times out by opening a side connection that
sends a CancelRequest (after an SSLRequest, with the default sslmode=prefer)
and is closed by the server. That side connection is not a database session:
connleak must count one connection opened and closed, not two."""
import asyncio
import os

import asyncpg


async def main():
    conn = await asyncpg.connect(host=os.environ["CONNLEAK_TEST_PG_HOST"], port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
                                 user="postgres", database="postgres")
    try:
        await conn.fetchval("select pg_sleep(5)", timeout=0.5)
        raise SystemExit("pg_sleep was not cancelled")
    except asyncio.TimeoutError:
        print("timed out", flush=True)
    assert await conn.fetchval("select 1") == 1  # the session survived the cancel
    await conn.close()


asyncio.run(main())
print("done")
