"""The issue's asyncpg service: a pool (min_size=2, max_size=4), five clean
requests, one leaky delete_notification_user() that takes a connection and
never gives it back. The pool is never closed: its idle connections are the
pool's, not leaks.
  leak: as above, then exit.
  hold: the leaky request runs in a task named "notify-worker" that keeps the
        connection and waits for a line on stdin (a dump is taken meanwhile),
        then releases it: nothing leaks."""
import asyncio
import os
import sys

import asyncpg

POOL = None


async def get_connection():
    return await POOL.acquire()  # ACQUIRE-LINE


async def handle_request(i):
    async with POOL.acquire() as conn:
        assert await conn.fetchval("select $1::int", i) == i


async def delete_notification_user(user_id):
    conn = await get_connection()  # LEAK-LINE
    await conn.execute("select $1::int", user_id)
    return conn  # never released


async def wait_for_operator():
    loop = asyncio.get_running_loop()
    line = loop.run_in_executor(None, sys.stdin.readline)
    # call_soon runs on the loop's next turn, once this task is suspended in
    # the await below: a dump taken after "holding" finds it there, not still
    # running (printing from the task itself raced with the dump).
    loop.call_soon(lambda: print("holding", flush=True))
    await line  # AWAIT-LINE


async def notify_worker():
    conn = await delete_notification_user(7)
    await wait_for_operator()
    await POOL.release(conn)


async def main(mode):
    global POOL
    POOL = await asyncpg.create_pool(host=os.environ["CONNLEAK_TEST_PG_HOST"],
                                     port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
                                     user="postgres", database="postgres", min_size=2, max_size=4)
    for i in range(5):
        await handle_request(i)
    if mode == "leak":
        await delete_notification_user(7)
    else:
        await asyncio.create_task(notify_worker(), name="notify-worker")
    print("done", flush=True)


asyncio.run(main(sys.argv[1]))
