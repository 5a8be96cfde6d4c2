"""SQLAlchemy's asyncio engine over asyncpg: three checkouts returned to the
pool and left idle (never flagged: an idle pooled connection holds no
transaction), one checkout held inside a transaction across slow work
(flagged by txn_threshold), then dispose() closes everything."""
import asyncio
import os
import sys

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

URL = "postgresql+asyncpg://postgres@{}:{}/postgres".format(os.environ["CONNLEAK_TEST_PG_HOST"],
                                                            os.environ["CONNLEAK_TEST_PG_PORT"])
engine = create_async_engine(URL, pool_size=5)


async def warm_up_pool():
    conns = [await engine.connect() for _ in range(3)]
    for c in conns:
        await c.execute(text("select 1"))
    for c in conns:
        await c.close()  # back to the pool, which rolls back: no transaction left open


async def update_service_files():
    async with engine.begin() as conn:
        await conn.execute(text("select 1"))  # TXN-LINE
        # slow work while the transaction stays open: until the test has seen the
        # alert and closes our stdin (no sleep decides the timing)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def main():
    await warm_up_pool()
    await update_service_files()
    await engine.dispose()


asyncio.run(main())
print("done")
