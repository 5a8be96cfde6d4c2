"""The Python twin of leaky3.c for the peers' recall table: five requests
that close their asyncpg connection, then open_report_conn() opens three
connections that are never closed (kept in a list, so neither the garbage
collector nor the event loop's end closes them before exit).
Usage: py_leaky3.py HOST PORT"""
import asyncio
import sys

import asyncpg

kept = []


async def serve_request(host, port):
    conn = await asyncpg.connect(host=host, port=port, user="postgres", database="postgres")
    await conn.fetchval("SELECT 1")
    await conn.close()


async def open_report_conn(host, port):
    conn = await asyncpg.connect(host=host, port=port, user="postgres", database="postgres")
    kept.append(conn)


async def main(host, port):
    for _ in range(5):
        await serve_request(host, port)
    for _ in range(3):
        await open_report_conn(host, port)
    print("opened 8, closed 5")


loop = asyncio.new_event_loop()
loop.run_until_complete(main(sys.argv[1], int(sys.argv[2])))
