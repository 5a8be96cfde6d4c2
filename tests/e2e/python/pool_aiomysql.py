"""aiomysql pool (minsize=2, maxsize=2): five clean requests, one leaky
delete_notification_user() that never releases its connection, then a
request bounded by asyncio.wait_for while both connections are taken by
hold_device_b and the leak: the pool runs dry. The pool is never closed."""
import asyncio
import os

import aiomysql

POOL = None


async def handle_request(i):
    async with POOL.acquire() as conn:
        async with conn.cursor() as cur:
            await cur.execute("select %s", (i,))
            assert (await cur.fetchone())[0] == i


async def delete_notification_user(user_id):
    conn = await POOL.acquire()  # LEAK-LINE
    async with conn.cursor() as cur:
        await cur.execute("select %s", (user_id,))
    return conn  # never released


async def hold_device_b():
    return await POOL.acquire()  # HOLD-B-LINE


async def main():
    global POOL
    POOL = await aiomysql.create_pool(host=os.environ["CONNLEAK_TEST_MYSQL_HOST"],
                                      port=int(os.environ["CONNLEAK_TEST_MYSQL_PORT"]),
                                      user=os.environ["CONNLEAK_TEST_MYSQL_USER"],
                                      password=os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"],
                                      db=os.environ["CONNLEAK_TEST_MYSQL_DB"], minsize=2, maxsize=2)
    for i in range(5):
        await handle_request(i)
    await delete_notification_user(7)
    held = await hold_device_b()
    try:
        await asyncio.wait_for(handle_request(8), 0.5)  # the pool is dry
    except asyncio.TimeoutError:
        print("timeout", flush=True)
    POOL.release(held)
    await handle_request(9)
    print("done", flush=True)


# The loop is left open: the never-closed pool's connections are finalized at
# interpreter exit and close their transports on it (asyncio.run would have
# closed it: "Event loop is closed" noise, with or without connleak).
asyncio.new_event_loop().run_until_complete(main())
