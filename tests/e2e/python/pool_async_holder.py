"""An asyncio task holds a pool checkout while it is suspended in
slow_report(); the holder's suspended coroutine stack is what the shim must
show as "what the holder is doing now".

  pool_async_holder.py asyncpg|aiomysql exhaust
      the pool (one connection) is held by task "report-task", suspended in
      slow_report() on an asyncio.Event; main's acquire times out (asyncpg's
      acquire timeout; aiomysql's acquire bounded by asyncio.wait_for): one
      pool_exhausted snapshot. Then the event is set and the connection
      comes back: nothing leaks.
  pool_async_holder.py asyncpg|aiomysql threshold
      "report-task" holds the connection suspended in slow_report() until a
      line arrives on stdin (the test sends it once the checkout_threshold
      warning is out), then returns it.
Line-driven: "holding" on stdout once the checkout is taken."""
import asyncio
import os
import sys

DRIVER, MODE = sys.argv[1], sys.argv[2]
POOL = None


async def create_pool():
    if DRIVER == "asyncpg":
        import asyncpg

        return await asyncpg.create_pool(host=os.environ["CONNLEAK_TEST_PG_HOST"],
                                         port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
                                         user="postgres", database="postgres", min_size=1, max_size=1)
    import aiomysql

    return await aiomysql.create_pool(host=os.environ["CONNLEAK_TEST_MYSQL_HOST"],
                                      port=int(os.environ["CONNLEAK_TEST_MYSQL_PORT"]),
                                      user=os.environ["CONNLEAK_TEST_MYSQL_USER"],
                                      password=os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"],
                                      db=os.environ["CONNLEAK_TEST_MYSQL_DB"], minsize=1, maxsize=1)


async def release(conn):
    if DRIVER == "asyncpg":
        await POOL.release(conn)
    else:
        POOL.release(conn)


async def wait_for_operator():
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


async def slow_report(taken, finished):
    conn = await POOL.acquire()  # ACQUIRE-LINE
    taken.set()
    if MODE == "exhaust":
        await finished.wait()  # SUSPEND-LINE
    else:
        await wait_for_operator()  # OPERATOR-LINE
    await release(conn)


async def acquire_bounded():
    if DRIVER == "asyncpg":
        return await POOL.acquire(timeout=0.3)
    return await asyncio.wait_for(POOL.acquire(), 0.3)


async def main():
    global POOL
    POOL = await create_pool()
    taken, finished = asyncio.Event(), asyncio.Event()
    holder = asyncio.create_task(slow_report(taken, finished), name="report-task")
    await taken.wait()
    print("holding", flush=True)
    if MODE == "exhaust":
        try:
            await acquire_bounded()
        except asyncio.TimeoutError:
            print("timeout", flush=True)
        finished.set()
    await holder
    print("done", flush=True)
    if DRIVER == "asyncpg":
        await POOL.close()
    else:
        POOL.close()
        await POOL.wait_closed()


asyncio.run(main())
