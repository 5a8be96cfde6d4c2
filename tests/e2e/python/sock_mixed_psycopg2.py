"""psycopg2 (libpq) and asyncpg in one process, each leaking one connection in
a module global. libpq's own socket must not be recorded a second time at
socket level: one libpq record, one socket record. Prints both backend pids."""
import asyncio
import os

import asyncpg
import psycopg2

PARAMS = dict(host=os.environ["CONNLEAK_TEST_PG_HOST"], port=int(os.environ["CONNLEAK_TEST_PG_PORT"]),
              user="postgres", database="postgres")

PG = None
APG = None


def get_psycopg2():
    return psycopg2.connect(os.environ["CONNLEAK_TEST_PG_CONNINFO"])  # LIBPQ-LINE


async def get_asyncpg():
    return await asyncpg.connect(**PARAMS)  # SOCKET-LINE


async def main():
    global APG
    APG = await get_asyncpg()
    await APG.fetchval("select 1")


PG = get_psycopg2()
with PG.cursor() as cur:
    cur.execute("select 1")
PG.commit()
asyncio.run(main())
print("libpq_server_id", PG.get_backend_pid(), flush=True)
print("socket_server_id", APG.get_server_pid(), flush=True)
print("done")
