"""asyncpg's activity (issue 15), from the bytes it sends: one connection whose
last statement went through the simple Query protocol, one whose statement
went through Parse/Bind (asyncpg prepares every statement with arguments under
a name and then binds it; the second run binds the cached one). Literals carry
"hunter2", which must appear in no output. Both connections are kept in
globals until exit. Prints "ready" and waits for a line on stdin (the test
takes a dump meanwhile)."""
import asyncio
import os
import sys

import asyncpg

PARAMS = dict(host=os.environ["CONNLEAK_TEST_PG_HOST"], port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
              user="postgres", database="postgres")

SIMPLE = None
EXTENDED = None


async def simple_queries():
    conn = await asyncpg.connect(**PARAMS)
    await conn.execute("SET application_name = 'hunter2-app'")
    await conn.execute("SELECT md5('hunter2-md5'), 42")
    return conn


async def extended_queries():
    conn = await asyncpg.connect(**PARAMS)
    for _ in range(2):
        assert await conn.fetchval("SELECT $1::int + 42 AS v, 'hunter2-ext'", 5) == 47
    return conn


async def main():
    global SIMPLE, EXTENDED
    SIMPLE = await simple_queries()
    EXTENDED = await extended_queries()
    print("simple", SIMPLE.get_server_pid(), flush=True)
    print("extended", EXTENDED.get_server_pid(), flush=True)


loop = asyncio.new_event_loop()
loop.run_until_complete(main())
print("ready", flush=True)
sys.stdin.readline()
print("done", flush=True)
