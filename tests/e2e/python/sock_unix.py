"""Unix-socket connections: asyncpg through the PostgreSQL socket directory and
PyMySQL through the MariaDB socket, each leaked in a module global."""
import asyncio
import os

import asyncpg
import pymysql

APG = None
MY = None


async def get_asyncpg():
    return await asyncpg.connect(host=os.environ["CONNLEAK_TEST_PG_SOCKET_DIR"], port=int(os.environ["CONNLEAK_TEST_PG_PORT"]), user="postgres", database="postgres")  # PG-LINE


def get_pymysql():
    return pymysql.connect(unix_socket=os.environ["CONNLEAK_TEST_MYSQL_SOCKET"], user=os.environ["CONNLEAK_TEST_MYSQL_USER"], password=os.environ["CONNLEAK_TEST_MYSQL_PASSWORD"], database=os.environ["CONNLEAK_TEST_MYSQL_DB"])  # MY-LINE


async def main():
    global APG
    APG = await get_asyncpg()
    assert await APG.fetchval("select 1") == 1


asyncio.run(main())
MY = get_pymysql()
print("pg_server_id", APG.get_server_pid(), flush=True)
print("mysql_server_id", MY.thread_id(), flush=True)
print("done")
