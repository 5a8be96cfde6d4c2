"""A Python service's database loop, for the peers table: an asyncpg pool
(4 connections) serving `SELECT 1` requests, each one acquire + fetchval +
release, for SECONDS of wall time after the pool is up. Prints the number of
requests, the loop's wall time and the process CPU time the loop used, so
that interpreter start-up (long under valgrind) stays out of the rates.
Usage: py_asyncpg_load.py HOST PORT SECONDS"""
import asyncio
import sys
import time

import asyncpg


async def main(host, port, seconds):
    pool = await asyncpg.create_pool(host=host, port=port, user="postgres", database="postgres",
                                     min_size=4, max_size=4)
    requests = 0
    cpu0, t0 = time.process_time(), time.monotonic()
    while time.monotonic() - t0 < seconds:
        async with pool.acquire() as conn:
            await conn.fetchval("SELECT 1")
        requests += 1
    wall, cpu = time.monotonic() - t0, time.process_time() - cpu0
    await pool.close()
    print(f"requests {requests} wall {wall:.6f} cpu {cpu:.6f}")


asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
