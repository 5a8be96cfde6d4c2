"""SQLAlchemy's asyncio engine over asyncpg: a checked-out AsyncConnection is
dropped without close(). When the garbage collector finalizes it, SQLAlchemy
1.4 cannot roll back (no IO outside the greenlet: it logs "Exception during
reset or similar", MissingGreenlet) and invalidates the connection, which
terminates it (asyncpg sends Terminate and aborts the transport). The program
never closed it: a leak. Another connection, used properly, stays in the pool
until dispose()."""
import asyncio
import gc
import os

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

URL = "postgresql+asyncpg://postgres@{}:{}/postgres".format(os.environ["CONNLEAK_TEST_PG_HOST"],
                                                            os.environ["CONNLEAK_TEST_PG_PORT"])
engine = create_async_engine(URL, pool_size=5)


def open_sockets():
    return sum(os.readlink("/proc/self/fd/" + fd).startswith("socket:") for fd in os.listdir("/proc/self/fd")
               if os.path.exists("/proc/self/fd/" + fd))


async def checkout_and_forget():
    conn = await engine.connect()  # LEAK-LINE
    await conn.execute(text("select 1"))
    # returns without conn.close(): the AsyncConnection becomes garbage


async def main():
    async with engine.connect() as kept:  # held, so the forgotten checkout gets its own connection
        await kept.execute(text("select 1"))
        sockets_before = open_sockets() + 1  # with the forgotten checkout's
        await checkout_and_forget()
        print("gc", gc.collect() > 0, flush=True)
        # The invalidation aborted the transport; the loop closes its socket in a
        # later iteration. Wait for that to have happened, not for a time.
        for _ in range(10000):
            if open_sockets() < sockets_before:
                break
            await asyncio.sleep(0)
        await kept.execute(text("select 2"))
    print("pool", engine.pool.status(), flush=True)
    await engine.dispose()


asyncio.run(main())
print("done")
